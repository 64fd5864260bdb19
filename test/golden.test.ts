/**
 * Golden tests: a config folder + proxies → the CDS/EDS/LDS/RDS each proxy receives, decoded from
 * the bytes the server would send, as YAML. UPDATE_GOLDEN=1 rewrites the expected files.
 *
 * Each case is test/golden/<case>/case.yaml:
 *   input: <folder relative to the repo root>
 *   mesh: <MeshConfig file relative to the repo root, replacing the folder's mesh.yaml> (optional)
 *   proxies: [{ name, id, metadata, names? }]   (names: { LDS: [...] } subscribes by name)
 *   rejections: true   (optional: the resources rejected for the proxy, with why, are expected in
 *                       <proxy name>/rejected.yaml; otherwise there must be none)
 * and the expected output lives in test/golden/<case>/<proxy name>/{cds,eds,lds,rds,sds,ecds}.yaml (ecds.yaml
 * only where the proxy gets some).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { EnvoyProtos } from '../src/xds/protos';
import { render, snapshotFromDir } from './helpers/render';

const ROOT = path.join(__dirname, '..');
const GOLDEN = path.join(__dirname, 'golden');
const update = process.env.UPDATE_GOLDEN === '1';
const protos = new EnvoyProtos();

interface Case {
  input: string;
  /** Fetched JWKS by source key: file paths relative to the repo root. */
  jwks?: Record<string, string>;
  /** A MeshConfig file (relative to the repo root) in place of the folder's mesh.yaml. */
  mesh?: string;
  /** Rejected resources are expected (EnvoyFilter patches withheld), kept in rejected.yaml. */
  rejections?: boolean;
  proxies: { name: string; id: string; metadata?: Record<string, unknown>; names?: Record<string, string[]> }[];
}

for (const name of fs.readdirSync(GOLDEN).sort()) {
  const caseFile = path.join(GOLDEN, name, 'case.yaml');
  if (!fs.existsSync(caseFile)) continue;
  const c = YAML.parse(fs.readFileSync(caseFile, 'utf8')) as Case;
  const snap = snapshotFromDir(path.join(ROOT, c.input), c.jwks, ROOT, c.mesh);
  for (const p of c.proxies) {
    test(`golden ${name}/${p.name}`, () => {
      assert.deepEqual(snap.errors, [], 'golden inputs must be valid');
      const out = render(protos, snap, p.id, p.metadata ?? {}, p.names);
      const outputs: [string, unknown][] = Object.entries(out.byType).map(([type, resources]) => [type.toLowerCase(), resources]);
      if (c.rejections) {
        const rejected = out.rejected.map((r) => ({ type: r.typeUrl.slice(r.typeUrl.lastIndexOf('.') + 1), name: r.name, envoyFilters: r.envoyFilters, errors: r.errors }));
        outputs.push(['rejected', rejected.sort((a, b) => (`${a.type}/${a.name}` < `${b.type}/${b.name}` ? -1 : 1))]);
      } else assert.deepEqual(out.rejected, [], 'every generated resource passes validate.rules');
      for (const [type, resources] of outputs) {
        const file = path.join(GOLDEN, name, p.name, `${type}.yaml`);
        // ECDS is kept only where a case has some (WasmPlugins); proxyless clients are not served it at all.
        if (type === 'ecds' && Array.isArray(resources) && resources.length === 0 && !fs.existsSync(file)) continue;
        const actual = YAML.stringify(resources, { sortMapEntries: false, lineWidth: 0 });
        if (update) {
          fs.mkdirSync(path.dirname(file), { recursive: true });
          fs.writeFileSync(file, actual);
          continue;
        }
        assert.ok(fs.existsSync(file), `${path.relative(ROOT, file)} is missing; run with UPDATE_GOLDEN=1 and review it`);
        assert.equal(actual, fs.readFileSync(file, 'utf8'), `${path.relative(ROOT, file)} differs; if intended, UPDATE_GOLDEN=1 and review the diff`);
      }
    });
  }
}
