/**
 * The golden cases (test/golden/<case>/case.yaml, as golden.test.ts reads them) rendered through
 * ONE ConfigEngine, case after case and proxy after proxy, each result compared with what a
 * fresh engine renders for the same snapshot and proxy; then everything again with the shared
 * engine warm. What one case or proxy leaves in the engine (results, proxy classes, encoded
 * contents) must never show in another's config.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import YAML from 'yaml';
import type { MeshSnapshot } from '../src/model/snapshot';
import { ConfigEngine } from '../src/xds/engine';
import { EnvoyProtos } from '../src/xds/protos';
import { ResourceValidator } from '../src/xds/validate-rules';
import { render, snapshotFromDir } from './helpers/render';

const ROOT = path.join(__dirname, '..');
const GOLDEN = path.join(__dirname, 'golden');
const protos = new EnvoyProtos();
const checker = new ResourceValidator(protos);
const shared = new ConfigEngine({ protos, checker });

interface Case {
  input: string;
  /** Fetched JWKS by source key: file paths relative to the repo root. */
  jwks?: Record<string, string>;
  /** The case's resources include rejected ones (EnvoyFilter patches withheld). */
  rejections?: boolean;
  proxies: { name: string; id: string; metadata?: Record<string, unknown>; names?: Record<string, string[]> }[];
}

const cases: { name: string; c: Case; snap: MeshSnapshot }[] = [];
for (const name of fs.readdirSync(GOLDEN).sort()) {
  const file = path.join(GOLDEN, name, 'case.yaml');
  if (!fs.existsSync(file)) continue;
  const c = YAML.parse(fs.readFileSync(file, 'utf8')) as Case;
  cases.push({ name, c, snap: snapshotFromDir(path.join(ROOT, c.input), c.jwks, ROOT) });
}

test('there are golden cases to render', () => {
  assert.ok(cases.length >= 5 && cases.every((x) => x.c.proxies.length > 0), `${cases.length} cases`);
});

let reusedAfterCold = 0;
for (const pass of ['cold', 'warm'] as const) {
  for (const { name, c, snap } of cases) {
    for (const p of c.proxies) {
      test(`shared engine (${pass}) ${name}/${p.name} renders what a fresh engine does`, () => {
        const got = render(protos, snap, p.id, p.metadata ?? {}, p.names, shared);
        const want = render(protos, snap, p.id, p.metadata ?? {}, p.names);
        if (c.rejections) {
          // Rejections are the engine's, across proxies: the shared engine reports this proxy's among them.
          for (const r of want.rejected)
            assert.ok(
              got.rejected.some((g) => isDeepStrictEqual(g, r)),
              `the shared engine reports ${r.name} as a fresh one does`,
            );
          assert.ok(
            got.rejected.every((g) => g.envoyFilters?.every((ef) => (snap.envoyFilters.get(ef.split('/')[0] ?? '') ?? []).some((f) => f.key === ef))),
            "no other case's rejections",
          );
        } else {
          assert.deepEqual(want.rejected, [], 'golden inputs generate valid resources');
          assert.deepEqual(got.rejected, [], 'and so they do in the shared engine');
        }
        assert.deepEqual(Object.keys(got.byType), Object.keys(want.byType));
        for (const [type, resources] of Object.entries(want.byType)) {
          // YAML text, as the golden files hold it: a difference reads like a golden diff.
          assert.equal(YAML.stringify(got.byType[type], { lineWidth: 0 }), YAML.stringify(resources, { lineWidth: 0 }), `${name}/${p.name} ${type}`);
        }
        if (pass === 'cold') reusedAfterCold = shared.stats().contents.reused;
      });
    }
  }
}

test('the warm pass reused encoded contents from the cold one', () => {
  assert.ok(shared.stats().contents.reused > reusedAfterCold, `reused ${reusedAfterCold} → ${shared.stats().contents.reused}`);
});
