/**
 * Which revision injects a pod, as istiod's webhook selectors (rev.namespace, rev.object, and for
 * the default revision namespace and object) and its in-webhook injectRequired decide together:
 * one table over namespace labels × pod labels/annotations × injector (revision, tags, default).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import pino from 'pino';
import { startMeshd } from '../src/meshd';
import { decideInjection, type InjectorRole } from '../src/inject';
import { revisionNames, checkRevision, labelsInRevision, objectsOfRevision, perRevisionLeaseName } from '../src/config/revision';
import { roleFrom } from '../src/leader/revision-tags';
import { istiodDnsNames } from '../src/ca/tls-server';
import { webhookCertificateNames } from '../src/webhook/certs';

type L = Record<string, string>;
const pod = (labels: L = {}, annotations: L = {}) => ({ namespace: 'app', labels, annotations, hostNetwork: false });

const DEFAULT: InjectorRole = { revision: 'default' };
const STABLE: InjectorRole = { revision: 'stable', tags: [], isDefault: false };
const CANARY: InjectorRole = { revision: 'canary', tags: [], isDefault: false };
// `meshctl tag set prod --revision stable` and `meshctl tag set default --revision stable`.
const STABLE_TAGGED: InjectorRole = { revision: 'stable', tags: ['default', 'prod'], isDefault: true };
// revision default while the default tag names stable: istiod's default webhooks are deactivated.
const DEFAULT_DEMOTED: InjectorRole = { revision: 'default', tags: [], isDefault: false };

const table: Array<[string, L, ReturnType<typeof pod>, InjectorRole, boolean]> = [
  // rev.namespace: istio.io/rev=<rev> and no istio-injection
  ['ns rev=canary → canary', { 'istio.io/rev': 'canary' }, pod(), CANARY, true],
  ['ns rev=canary → not stable', { 'istio.io/rev': 'canary' }, pod(), STABLE, false],
  ['ns rev=canary → not default', { 'istio.io/rev': 'canary' }, pod(), DEFAULT, false],
  ['ns rev=default → default', { 'istio.io/rev': 'default' }, pod(), DEFAULT, true],
  ['ns rev=canary, pod rev=stable → canary (the namespace wins)', { 'istio.io/rev': 'canary' }, pod({ 'istio.io/rev': 'stable' }), CANARY, true],
  ['ns rev=canary, pod rev=stable → not stable', { 'istio.io/rev': 'canary' }, pod({ 'istio.io/rev': 'stable' }), STABLE, false],
  ['ns rev=canary, pod label inject=false → no', { 'istio.io/rev': 'canary' }, pod({ 'sidecar.istio.io/inject': 'false' }), CANARY, false],
  ['ns rev=canary, pod annotation inject=false → no (injectRequired)', { 'istio.io/rev': 'canary' }, pod({}, { 'sidecar.istio.io/inject': 'false' }), CANARY, false],
  ['ns rev=canary, pod label inject=no → no (injectRequired)', { 'istio.io/rev': 'canary' }, pod({ 'sidecar.istio.io/inject': 'no' }), CANARY, false],
  ['ns rev=canary, pod annotation inject=true → yes', { 'istio.io/rev': 'canary' }, pod({}, { 'sidecar.istio.io/inject': 'true' }), CANARY, true],
  // rev.object: unlabelled namespace, pod label istio.io/rev=<rev>
  ['unlabelled ns, pod rev=stable → stable', {}, pod({ 'istio.io/rev': 'stable' }), STABLE, true],
  ['unlabelled ns, pod rev=stable → not canary', {}, pod({ 'istio.io/rev': 'stable' }), CANARY, false],
  ['unlabelled ns, pod rev=stable + label inject=false → no', {}, pod({ 'istio.io/rev': 'stable', 'sidecar.istio.io/inject': 'false' }), STABLE, false],
  ['unlabelled ns, pod silent → nobody', {}, pod(), DEFAULT, false],
  // istio-injection: only the default revision
  ['ns istio-injection=enabled → default', { 'istio-injection': 'enabled' }, pod(), DEFAULT, true],
  ['ns istio-injection=enabled → not canary', { 'istio-injection': 'enabled' }, pod(), CANARY, false],
  ['ns istio-injection=enabled → the revision the default tag names', { 'istio-injection': 'enabled' }, pod(), STABLE_TAGGED, true],
  ['ns istio-injection=enabled → not revision default once the default tag moved', { 'istio-injection': 'enabled' }, pod(), DEFAULT_DEMOTED, false],
  ['ns both labels (enabled + rev=canary) → default, as istiod', { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' }, pod(), DEFAULT, true],
  ['ns both labels (enabled + rev=canary) → not canary', { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' }, pod(), CANARY, false],
  ['ns istio-injection=enabled, pod rev=canary → default', { 'istio-injection': 'enabled' }, pod({ 'istio.io/rev': 'canary' }), DEFAULT, true],
  ['ns istio-injection=enabled, pod rev=canary → not canary', { 'istio-injection': 'enabled' }, pod({ 'istio.io/rev': 'canary' }), CANARY, false],
  ['ns istio-injection=enabled, pod label inject=false → no', { 'istio-injection': 'enabled' }, pod({ 'sidecar.istio.io/inject': 'false' }), DEFAULT, false],
  // istio-injection=disabled wins over everything
  ['ns istio-injection=disabled, pod inject=true → no', { 'istio-injection': 'disabled' }, pod({ 'sidecar.istio.io/inject': 'true' }), DEFAULT, false],
  ['ns istio-injection=disabled + rev=canary → not canary', { 'istio-injection': 'disabled', 'istio.io/rev': 'canary' }, pod(), CANARY, false],
  ['ns istio-injection=disabled, pod rev=canary → not canary', { 'istio-injection': 'disabled' }, pod({ 'istio.io/rev': 'canary' }), CANARY, false],
  // object: the default revision, pod label sidecar.istio.io/inject=true in an unlabelled namespace
  ['unlabelled ns, pod label inject=true → default', {}, pod({ 'sidecar.istio.io/inject': 'true' }), DEFAULT, true],
  ['unlabelled ns, pod label inject=true → not canary', {}, pod({ 'sidecar.istio.io/inject': 'true' }), CANARY, false],
  ['unlabelled ns, pod annotation inject=true → nobody (selectors read labels)', {}, pod({}, { 'sidecar.istio.io/inject': 'true' }), DEFAULT, false],
  ['unlabelled ns, pod label inject=true + rev=canary → canary', {}, pod({ 'sidecar.istio.io/inject': 'true', 'istio.io/rev': 'canary' }), CANARY, true],
  ['unlabelled ns, pod label inject=true + rev=canary → not default', {}, pod({ 'sidecar.istio.io/inject': 'true', 'istio.io/rev': 'canary' }), DEFAULT, false],
  // tags route to the revision they name
  ['ns rev=prod (tag of stable) → stable', { 'istio.io/rev': 'prod' }, pod(), STABLE_TAGGED, true],
  ['ns rev=prod (tag of stable) → not canary', { 'istio.io/rev': 'prod' }, pod(), CANARY, false],
  ['ns rev=default with the default tag on stable → stable', { 'istio.io/rev': 'default' }, pod(), STABLE_TAGGED, true],
  ['unlabelled ns, pod rev=prod → stable', {}, pod({ 'istio.io/rev': 'prod' }), STABLE_TAGGED, true],
  // never
  ['kube-system, labelled → no', { 'istio.io/rev': 'canary' }, { ...pod(), namespace: 'kube-system' }, CANARY, false],
  ['hostNetwork → no', { 'istio.io/rev': 'canary' }, { ...pod(), hostNetwork: true }, CANARY, false],
  ['already injected → no', { 'istio.io/rev': 'canary' }, pod({}, { 'sidecar.istio.io/status': '{}' }), CANARY, false],
];

describe('which revision injects a pod (istiod webhook selectors + injectRequired)', () => {
  for (const [name, ns, p, role, want] of table) {
    test(name, () => {
      const d = decideInjection(p, ns, role);
      assert.equal(d.inject, want, d.reason);
      assert.ok(d.reason.length > 0);
    });
  }

  test('exactly one of stable, canary and default injects, or none, for every namespace and pod of the table', () => {
    for (const [name, ns, p] of table) {
      const injectors = [DEFAULT, STABLE, CANARY].filter((r) => decideInjection(p, ns, r).inject);
      assert.ok(injectors.length <= 1, `${name}: ${injectors.map((r) => r.revision).join(', ')}`);
    }
  });

  test('namespace labels unknown (offline kube-inject): a pod labelled for another revision is refused', () => {
    assert.equal(decideInjection(pod({ 'istio.io/rev': 'stable' }), undefined, 'canary').inject, false);
    assert.equal(decideInjection(pod({ 'istio.io/rev': 'canary' }), undefined, 'canary').inject, true);
    assert.equal(decideInjection(pod(), undefined, 'canary').inject, true);
  });
});

describe('revision names (istiod and its Helm chart)', () => {
  test('a revision other than default', () => {
    assert.deepEqual(revisionNames('canary', 'istio-system'), {
      revision: 'canary',
      isDefaultName: false,
      service: 'istiod-canary',
      discoveryAddress: 'istiod-canary.istio-system.svc:15012',
      injectorWebhookConfig: 'istio-sidecar-injector-canary',
      validatorWebhookConfig: 'istio-validator-canary-istio-system',
      meshConfigMap: 'istio-canary',
    });
  });
  test('default keeps the unrevisioned names', () => {
    for (const r of [undefined, '', 'default']) {
      const n = revisionNames(r, 'mesh');
      assert.deepEqual(
        [n.revision, n.service, n.discoveryAddress, n.injectorWebhookConfig, n.validatorWebhookConfig, n.meshConfigMap],
        ['default', 'istiod', 'istiod.mesh.svc:15012', 'istio-sidecar-injector', 'istio-validator-mesh', 'istio'],
      );
    }
  });
  test("the 15012 and webhook certificates also name the revision's Service, as istiod's", () => {
    assert.deepEqual(istiodDnsNames('istio-system', 'cluster.local', 'canary'), [
      'istiod.istio-system.svc',
      'istiod.istio-system.svc.cluster.local',
      'istio-pilot.istio-system.svc',
      'istio-pilot.istio-system.svc.cluster.local',
      'istiod-canary.istio-system.svc',
      'istiod-canary.istio-system.svc.cluster.local',
    ]);
    assert.ok(!istiodDnsNames('istio-system', 'cluster.local', 'default').some((n) => n.startsWith('istiod-')));
    assert.ok(webhookCertificateNames('istio-system', 'cluster.local', [], 'canary').includes('istiod-canary.istio-system.svc'));
  });
  test('per-revision elections append the revision, as istiod', () => {
    assert.equal(perRevisionLeaseName('meshd-webhook-patcher', 'canary'), 'meshd-webhook-patcher-canary');
  });
  test('a revision that is not a DNS label is refused, naming the flag', () => {
    assert.throws(() => checkRevision('Canary_1'), /--revision: "Canary_1" is not a revision name/);
    assert.throws(() => checkRevision('-x'), /--revision/);
    assert.equal(checkRevision('1-23-4'), '1-23-4');
  });
});

describe('revision role from the tag webhooks (istiod DefaultWatcher)', () => {
  const tag = (t: string, rev: string) => ({ 'istio.io/tag': t, 'istio.io/rev': rev });
  test('no tags: revision default is the default', () => {
    assert.deepEqual(roleFrom('default', []), { tags: [], isDefault: true, defaultRevision: '' });
    assert.deepEqual(roleFrom('canary', []), { tags: [], isDefault: false, defaultRevision: '' });
  });
  test('the default tag names the default revision; other tags route to theirs', () => {
    const labels = [tag('default', 'stable'), tag('prod', 'stable'), tag('next', 'canary')];
    assert.deepEqual(roleFrom('stable', labels), { tags: ['default', 'prod'], isDefault: true, defaultRevision: 'stable' });
    assert.deepEqual(roleFrom('canary', labels), { tags: ['next'], isDefault: false, defaultRevision: 'stable' });
    assert.deepEqual(roleFrom('default', labels), { tags: [], isDefault: false, defaultRevision: 'stable' });
  });
});

describe('Istio config by revision (istiod LabelsInRevision)', () => {
  test("unlabelled config is every revision's; labelled, only its own; other kinds are never filtered", () => {
    assert.equal(labelsInRevision({}, 'canary'), true);
    assert.equal(labelsInRevision({ 'istio.io/rev': 'canary' }, 'canary'), true);
    assert.equal(labelsInRevision({ 'istio.io/rev': 'stable' }, 'canary'), false);
    const objs: Array<{ apiVersion: string; metadata: { labels: Record<string, string> } }> = [
      { apiVersion: 'networking.istio.io/v1', metadata: { labels: { 'istio.io/rev': 'stable' } } },
      { apiVersion: 'security.istio.io/v1', metadata: { labels: {} } },
      { apiVersion: 'v1', metadata: { labels: { 'istio.io/rev': 'stable' } } },
    ];
    assert.deepEqual(objectsOfRevision(objs, 'canary'), [objs[1], objs[2]]);
    assert.equal(objectsOfRevision(objs.slice(1), 'canary').length, 2);
  });

  test('two meshd revisions on one config folder each serve the unlabelled config and only their own labelled config', { timeout: 30_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-rev-config-'));
    const vs = (name: string, labels: Record<string, string>) => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name, namespace: 'default', labels },
      spec: { hosts: [`${name}.default.svc.cluster.local`], http: [{ route: [{ destination: { host: `${name}.default.svc.cluster.local` } }] }] },
    });
    fs.writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [vs('shared', {}), vs('for-canary', { 'istio.io/rev': 'canary' }), vs('for-stable', { 'istio.io/rev': 'stable' })] }),
    );
    const start = (revision: string) => startMeshd({ configDir: dir, revision, xdsPort: 0, debugPort: 0, monitoringPort: -1, logger: pino({ level: 'silent' }) });
    const [stable, canary] = await Promise.all([start('stable'), start('canary')]);
    try {
      const names = (m: typeof stable) => (m.snapshot()?.virtualServices ?? []).map((v) => v.meta.name).sort();
      assert.deepEqual(names(stable), ['for-stable', 'shared']);
      assert.deepEqual(names(canary), ['for-canary', 'shared']);
    } finally {
      await stable.close();
      await canary.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('meshd --revision and REVISION', () => {
  const main = path.join(__dirname, '..', 'src', 'main.ts');
  const run = (args: string[], env: Record<string, string>) =>
    spawnSync(process.execPath, ['--import', 'tsx', main, '--config-dir', os.tmpdir(), ...args], {
      cwd: path.join(__dirname, '..'),
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, ...env },
    });
  test('REVISION is read, and --revision wins over it; a bad name is refused before anything listens', { timeout: 60_000 }, () => {
    const fromEnv = run([], { REVISION: 'Bad_Env' });
    assert.equal(fromEnv.status, 1);
    assert.match(fromEnv.stderr, /--revision: "Bad_Env" is not a revision name/);
    const flagWins = run(['--revision', 'Bad_Flag'], { REVISION: 'canary' });
    assert.equal(flagWins.status, 1);
    assert.match(flagWins.stderr, /--revision: "Bad_Flag" is not a revision name/);
  });
});
