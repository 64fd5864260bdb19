/**
 * deploy/revision (deploy/meshd through components/revision): meshd as a named revision beside
 * the control plane that serves the mesh, rendered with `kubectl kustomize` as `kubectl apply -k`
 * would, and checked as deploy.test.ts checks the default install: istiod's revisioned names,
 * `istio.io/rev` everywhere, REVISION on the container and flags meshd accepts, selectors that
 * keep the revisions' pods apart, the injector and validator selecting only what is labelled for
 * the revision, and the mesh config pointing proxies at the revision's Service. Then the same
 * webhooks in the fake API server, moved by `meshctl tag set default`.
 *
 * Needs kubectl (kustomize v5); skipped without it, except on CI, where it must run.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { tagCommand } from '../src/cli/tag';
import type { WebhookConfiguration } from '../src/cli/tag-webhooks';
import { DEPLOY, ROOT, type Doc, type J, at, flagValues, haveKustomize, kustomize, meshdContainer, meta, ofKind, one, rec, recs, strs } from './helpers/deploy-manifests';
import { type KubeApiServer, startKubeApiServer } from './helpers/kube-api-server';
import { mutatingConfigs, namespaceLabels, podCreateServices, validatingConfigs } from './helpers/webhook-routing';

const NS = 'istio-system';
const REV = 'meshd';
const KUSTOMIZE = haveKustomize();
let tmp: string;
let defaultInstall: Doc[] = [];
let revision: Doc[] = [];

/** Skips without kubectl, but never on CI. */
function needKustomize(t: TestContext): boolean {
  if (KUSTOMIZE) return true;
  assert.notEqual(process.env['CI'], 'true', 'kubectl (with kustomize) is required on CI');
  t.skip('kubectl not installed');
  return false;
}

/** The names a revisioned istiod install uses (istio-discovery chart with `revision: <rev>`). */
function revisionNames(rev: string): string[] {
  return [
    `ServiceAccount/${NS}/istiod-${rev}`,
    `Role/${NS}/istiod-${rev}`,
    `RoleBinding/${NS}/istiod-${rev}`,
    `ClusterRole//istiod-clusterrole-${rev}-istio-system`,
    `ClusterRoleBinding//istiod-clusterrole-${rev}-istio-system`,
    `ClusterRole//istiod-gateway-controller-${rev}-istio-system`,
    `ClusterRoleBinding//istiod-gateway-controller-${rev}-istio-system`,
    `ConfigMap/${NS}/istio-${rev}`,
    `Deployment/${NS}/istiod-${rev}`,
    `Service/${NS}/istiod-${rev}`,
    `PodDisruptionBudget/${NS}/istiod-${rev}`,
    `HorizontalPodAutoscaler/${NS}/istiod-${rev}`,
    `MutatingWebhookConfiguration//istio-sidecar-injector-${rev}`,
    `ValidatingWebhookConfiguration//istio-validator-${rev}-istio-system`,
  ].sort();
}

const key = (o: J): string => `${String(o['kind'])}/${meta(o).namespace ?? ''}/${meta(o).name}`;

/** deploy/revision copied with another revision name, rendered from the same base and component. */
function renderRevision(rev: string): Doc[] {
  const dir = path.join(tmp, rev);
  fs.mkdirSync(dir);
  const overlay = fs.readFileSync(path.join(DEPLOY, 'revision', 'kustomization.yaml'), 'utf8');
  // The folder copied elsewhere: its references point back at deploy/ (as relative paths: kustomize refuses absolute ones).
  fs.writeFileSync(
    path.join(dir, 'kustomization.yaml'),
    overlay
      .replace('- ../meshd', `- ${path.relative(dir, path.join(DEPLOY, 'meshd'))}`)
      .replace('- ../components/revision', `- ${path.relative(dir, path.join(DEPLOY, 'components', 'revision'))}`),
  );
  fs.writeFileSync(path.join(dir, 'revision.yaml'), fs.readFileSync(path.join(DEPLOY, 'revision', 'revision.yaml'), 'utf8').replace(`revision: ${REV}`, `revision: ${rev}`));
  fs.writeFileSync(path.join(dir, 'mesh.yaml'), fs.readFileSync(path.join(DEPLOY, 'revision', 'mesh.yaml'), 'utf8').replace(`istiod-${REV}.`, `istiod-${rev}.`));
  return kustomize(dir);
}

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-deploy-rev-'));
  if (!KUSTOMIZE) return;
  defaultInstall = kustomize('.');
  revision = kustomize('revision');
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("the revision installs istiod's revisioned names only: no CRD, namespace, default validator or object of the default install", (t) => {
  if (!needKustomize(t)) return;
  assert.deepEqual(revision.map((d) => key(d.obj)).sort(), revisionNames(REV));
  const taken = new Set(defaultInstall.map((d) => key(d.obj)));
  for (const d of revision) assert.ok(!taken.has(key(d.obj)), `${key(d.obj)} would overwrite the default install's`);
  assert.doesNotMatch(JSON.stringify(revision.map((d) => d.obj)).replace(/"name":"REVISION"/g, ''), /REVISION/, 'a placeholder left unreplaced');
});

test('every object is labelled istio.io/rev=<rev>; the container gets REVISION and the flags meshd accepts', (t) => {
  if (!needKustomize(t)) return;
  for (const d of revision) assert.equal(rec(at(d.obj, 'metadata.labels'), 'labels')['istio.io/rev'], REV, key(d.obj));
  const c = meshdContainer(revision, `istiod-${REV}`);
  const env = recs(c['env'], 'env');
  assert.deepEqual(
    env.filter((e) => e['name'] === 'REVISION'),
    [{ name: 'REVISION', value: REV }],
  );
  // Everything else as the default install's container: same flags, ports, probe, security.
  const d = meshdContainer(defaultInstall);
  assert.deepEqual({ ...c, env: env.filter((e) => e['name'] !== 'REVISION') }, d);
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const accepted = new Set(r.stdout.match(/--[a-z][a-z0-9-]*/g) ?? []);
  for (const flag of flagValues(strs(c['args'], 'args')).keys()) assert.ok(accepted.has(flag), `meshd does not accept ${flag}`);
  const dep = one(revision, 'Deployment', `istiod-${REV}`, NS);
  assert.equal(at(dep, 'spec.template.spec.serviceAccountName'), `istiod-${REV}`);
  assert.equal(at(one(revision, 'HorizontalPodAutoscaler', `istiod-${REV}`, NS), 'spec.scaleTargetRef.name'), `istiod-${REV}`);
});

test("Service, Deployment and PDB select the revision's pods, and the default install's Service and PDB do not", (t) => {
  if (!needKustomize(t)) return;
  const labels = (o: J, p: string): Record<string, string> => rec(at(o, p), p) as Record<string, string>;
  const selects = (sel: Record<string, string>, pod: Record<string, string>): boolean => Object.entries(sel).every(([k, v]) => pod[k] === v);
  const revPod = labels(one(revision, 'Deployment', `istiod-${REV}`, NS), 'spec.template.metadata.labels');
  const defPod = labels(one(defaultInstall, 'Deployment', 'istiod', NS), 'spec.template.metadata.labels');
  const want = { app: 'istiod', 'istio.io/rev': REV };
  const revSelectors = [
    labels(one(revision, 'Service', `istiod-${REV}`, NS), 'spec.selector'),
    labels(one(revision, 'Deployment', `istiod-${REV}`, NS), 'spec.selector.matchLabels'),
    labels(one(revision, 'PodDisruptionBudget', `istiod-${REV}`, NS), 'spec.selector.matchLabels'),
  ];
  for (const sel of revSelectors) {
    assert.deepEqual(sel, want);
    assert.ok(selects(sel, revPod));
    assert.ok(!selects(sel, defPod), "a revision's selector picks the default install's pods");
  }
  for (const sel of [
    labels(one(defaultInstall, 'Service', 'istiod', NS), 'spec.selector'),
    labels(one(defaultInstall, 'PodDisruptionBudget', 'istiod', NS), 'spec.selector.matchLabels'),
  ]) {
    assert.ok(!selects(sel, revPod), "the default install's selector picks the revision's pods");
  }
  assert.equal(revPod['sidecar.istio.io/inject'], 'false');
  assert.deepEqual(at(one(revision, 'Service', `istiod-${REV}`, NS), 'spec.ports'), at(one(defaultInstall, 'Service', 'istiod', NS), 'spec.ports'));
});

test("RBAC: the revision's service account gets the default install's rules, under revisioned names", (t) => {
  if (!needKustomize(t)) return;
  const sa = { kind: 'ServiceAccount', name: `istiod-${REV}`, namespace: NS };
  const crb = one(revision, 'ClusterRoleBinding', `istiod-clusterrole-${REV}-istio-system`);
  assert.deepEqual(at(crb, 'roleRef'), { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `istiod-clusterrole-${REV}-istio-system` });
  assert.deepEqual(crb['subjects'], [sa]);
  const rb = one(revision, 'RoleBinding', `istiod-${REV}`, NS);
  assert.deepEqual(at(rb, 'roleRef'), { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `istiod-${REV}` });
  assert.deepEqual(rb['subjects'], [sa]);
  assert.deepEqual(one(revision, 'ClusterRole', `istiod-clusterrole-${REV}-istio-system`)['rules'], one(defaultInstall, 'ClusterRole', 'istiod-clusterrole-istio-system')['rules']);
  assert.deepEqual(one(revision, 'Role', `istiod-${REV}`, NS)['rules'], one(defaultInstall, 'Role', 'istiod', NS)['rules']);
});

test("the mesh config istio-<rev> points proxies at the revision's Service, and is otherwise the default install's", (t) => {
  if (!needKustomize(t)) return;
  const mesh = (objs: Doc[], name: string): J => rec(parseYaml(String(at(one(objs, 'ConfigMap', name, NS), 'data.mesh'))), `${name} mesh`);
  const r = mesh(revision, `istio-${REV}`);
  const d = mesh(defaultInstall, 'istio');
  assert.equal(at(r, 'defaultConfig.discoveryAddress'), `istiod-${REV}.istio-system.svc:15012`);
  assert.deepEqual(
    { ...r, defaultConfig: { ...rec(r['defaultConfig'], 'defaultConfig'), discoveryAddress: 'x' } },
    { ...d, defaultConfig: { ...rec(d['defaultConfig'], 'defaultConfig'), discoveryAddress: 'x' } },
  );
});

test("the revision's webhooks call istiod-<rev> through 443; they select only namespaces, pods and config labelled for the revision", (t) => {
  if (!needKustomize(t)) return;
  const svc = one(revision, 'Service', `istiod-${REV}`, NS);
  const p443 = recs(at(svc, 'spec.ports'), 'ports').find((p) => p['port'] === 443);
  assert.equal(p443?.['targetPort'], 15017);
  const injector = one(revision, 'MutatingWebhookConfiguration', `istio-sidecar-injector-${REV}`) as unknown as WebhookConfiguration;
  const validator = one(revision, 'ValidatingWebhookConfiguration', `istio-validator-${REV}-istio-system`) as unknown as WebhookConfiguration;
  for (const [cfg, p] of [
    [injector, '/inject'],
    [validator, '/validate'],
  ] as const) {
    for (const w of cfg.webhooks) assert.deepEqual(w.clientConfig.service, { name: `istiod-${REV}`, namespace: NS, path: p, port: 443 }, w.name);
  }
  assert.deepEqual(
    injector.webhooks.map((w) => w.name),
    ['rev.namespace.sidecar-injector.istio.io', 'rev.object.sidecar-injector.istio.io'],
  );
  // Where pod admissions go with the default install and the revision side by side.
  const both = [...ofKind(defaultInstall, 'MutatingWebhookConfiguration'), ...ofKind(revision, 'MutatingWebhookConfiguration')] as unknown as WebhookConfiguration[];
  const to = (ns: Record<string, string>, pod: Record<string, string> = {}): string[] => podCreateServices(both, namespaceLabels('apps', ns), pod);
  assert.deepEqual(to({ 'istio.io/rev': REV }), [`${NS}/istiod-${REV}`]);
  assert.deepEqual(to({ 'istio.io/rev': REV }, { 'sidecar.istio.io/inject': 'false' }), []);
  assert.deepEqual(to({}, { 'istio.io/rev': REV }), [`${NS}/istiod-${REV}`]);
  assert.deepEqual(to({ 'istio-injection': 'enabled' }), [`${NS}/istiod`], 'istio-injection=enabled stays with the default revision');
  assert.deepEqual(to({ 'istio-injection': 'enabled', 'istio.io/rev': REV }), [`${NS}/istiod`], 'istio-injection wins over istio.io/rev, as in istiod');
  assert.deepEqual(to({}, { 'sidecar.istio.io/inject': 'true' }), [`${NS}/istiod`]);
  assert.deepEqual(to({ 'istio.io/rev': 'other' }), []);
  // The revision validates only config labelled for it; no cluster-wide validator of its own.
  assert.deepEqual(validator.webhooks[0]?.objectSelector, { matchExpressions: [{ key: 'istio.io/rev', operator: 'In', values: [REV] }] });
  const defaultValidator = recs(at(one(defaultInstall, 'ValidatingWebhookConfiguration', 'istio-validator-istio-system'), 'webhooks'), 'webhooks')[0];
  assert.deepEqual(validator.webhooks[0]?.rules, defaultValidator?.['rules'], 'the same kinds as the default install validates');
  assert.equal(validator.webhooks[0]?.failurePolicy, 'Ignore');
});

test('two revisions (stable, canary) render from the same component beside the default install, sharing no object', (t) => {
  if (!needKustomize(t)) return;
  const stable = renderRevision('stable');
  const canary = renderRevision('canary');
  assert.deepEqual(stable.map((d) => key(d.obj)).sort(), revisionNames('stable'));
  assert.deepEqual(canary.map((d) => key(d.obj)).sort(), revisionNames('canary'));
  const all = [...defaultInstall, ...stable, ...canary].map((d) => key(d.obj));
  assert.equal(new Set(all).size, all.length, 'an object name is shared');
  const both = [...stable, ...canary].flatMap((d) => (d.obj['kind'] === 'MutatingWebhookConfiguration' ? [d.obj as unknown as WebhookConfiguration] : []));
  assert.deepEqual(podCreateServices(both, namespaceLabels('a', { 'istio.io/rev': 'stable' }), {}), [`${NS}/istiod-stable`]);
  assert.deepEqual(podCreateServices(both, namespaceLabels('b', { 'istio.io/rev': 'canary' }), {}), [`${NS}/istiod-canary`]);
  assert.deepEqual(
    recs(meshdContainer(canary, 'istiod-canary')['env'], 'env').find((e) => e['name'] === 'REVISION'),
    { name: 'REVISION', value: 'canary' },
  );
});

let api: KubeApiServer | undefined;
after(async () => {
  await api?.close();
});

test('with both installed, `meshctl tag set default --revision <rev>` moves istio-injection=enabled and the default validator to the revision, and back', async (t) => {
  if (!needKustomize(t)) return;
  api = await startKubeApiServer();
  for (const d of [...defaultInstall, ...revision]) if (String(d.obj['kind']).endsWith('WebhookConfiguration')) api.store.create(d.obj);
  const tag = async (...args: string[]): Promise<void> => {
    let err = '';
    const io = { stdout: { write: (): boolean => true }, stderr: { write: (s: string) => (err += s) }, stdin: () => '' };
    const before = process.exitCode;
    await new Command('meshctl')
      .exitOverride()
      .addCommand(tagCommand(io))
      .parseAsync(['node', 'meshctl', 'tag', ...args, '--kubeconfig', (api as KubeApiServer).kubeconfigPath]);
    process.exitCode = before;
    assert.equal(err, '', args.join(' '));
  };
  const legacy = (): string[] => podCreateServices(mutatingConfigs(api as KubeApiServer), namespaceLabels('legacy', { 'istio-injection': 'enabled' }), {});
  assert.deepEqual(legacy(), [`${NS}/istiod`]);
  await tag('set', 'default', '--revision', REV);
  assert.deepEqual(legacy(), [`${NS}/istiod-${REV}`]);
  const dv = (): WebhookConfiguration | undefined => validatingConfigs(api as KubeApiServer).find((v) => v.metadata.name === 'istiod-default-validator');
  assert.equal(dv()?.webhooks[0]?.clientConfig.service?.name, `istiod-${REV}`);
  await tag('set', 'default', '--revision', 'default', '--overwrite');
  assert.deepEqual(legacy(), [`${NS}/istiod`]);
  assert.equal(dv()?.webhooks[0]?.clientConfig.service?.name, 'istiod');
});
