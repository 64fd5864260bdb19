/**
 * `meshctl kube-inject` and `meshctl validate` end to end, as child processes: golden files,
 * stdin and -o, injection settings from flags, a settings file and a mesh config, clear errors
 * with exit 1, idempotence, and `meshd kube-inject` as the same command.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseObject } from '../src/sources/parse';
import { validateObject } from '../src/model/validate';

const ROOT = path.join(__dirname, '..');
const GOLDEN = path.join(ROOT, 'test', 'golden-inject', 'kube-inject');
const update = process.env.UPDATE_GOLDEN === '1';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-kube-inject-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function cli(bin: 'meshctl' | 'meshd', args: string[], input?: string): Run {
  const entry = bin === 'meshctl' ? path.join(ROOT, 'src', 'cli', 'meshctl.ts') : path.join(ROOT, 'src', 'main.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000, ...(input !== undefined ? { input } : {}) });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function write(name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

type Obj = Record<string, unknown>;
const docs = (text: string): Obj[] => parseAllDocuments(text).map((d) => d.toJS() as Obj);
const template = (o: Obj): Obj => (o['spec'] as { template: Obj }).template;
function proxyEnv(podTemplate: Obj): Record<string, string | undefined> {
  const containers = (podTemplate['spec'] as { containers: Array<{ name: string; env?: Array<{ name: string; value?: string }> }> }).containers;
  const proxy = containers.find((c) => c.name === 'istio-proxy');
  assert.ok(proxy, 'istio-proxy was injected');
  return Object.fromEntries((proxy.env ?? []).map((e) => [e.name, e.value]));
}

const DEPLOYMENT = fs.readFileSync(path.join(GOLDEN, 'deployment.yaml'), 'utf8');

for (const file of fs.readdirSync(GOLDEN).filter((f) => f.endsWith('.yaml') && !f.endsWith('.injected.yaml'))) {
  test(`golden: kube-inject -f ${file}`, () => {
    const r = cli('meshctl', ['kube-inject', '-f', path.join(GOLDEN, file)]);
    assert.equal(r.status, 0, r.stderr);
    const expectedFile = path.join(GOLDEN, file.replace(/\.yaml$/, '.injected.yaml'));
    if (update) fs.writeFileSync(expectedFile, r.stdout);
    assert.ok(fs.existsSync(expectedFile), `${path.basename(expectedFile)} is missing; run with UPDATE_GOLDEN=1 and review it`);
    assert.equal(r.stdout, fs.readFileSync(expectedFile, 'utf8'), `${path.basename(expectedFile)} differs; if intended, UPDATE_GOLDEN=1 and review the diff`);
  });
}

test('workloads left alone are named on stderr with the reason, byte for byte unchanged on stdout', () => {
  const input = fs.readFileSync(path.join(GOLDEN, 'workloads.yaml'), 'utf8');
  const r = cli('meshctl', ['kube-inject', '-f', path.join(GOLDEN, 'workloads.yaml')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /DaemonSet node-agent: pod sets sidecar\.istio\.io\/inject: "false"/);
  assert.match(r.stderr, /Job host-probe: pods with hostNetwork are not injected/);
  assert.match(r.stderr, /Pod done: already injected/);
  const tail = input.slice(input.indexOf('---\napiVersion: apps/v1\nkind: DaemonSet'));
  assert.ok(r.stdout.endsWith(tail), 'the untouched documents are copied as they were, comments included');
  const out = docs(r.stdout);
  const cron = out.find((d) => d['kind'] === 'CronJob') as Obj;
  const jobTemplate = ((cron['spec'] as Obj)['jobTemplate'] as Obj)['spec'] as Obj;
  const env = proxyEnv(jobTemplate['template'] as Obj);
  assert.equal(env['ISTIO_META_OWNER'], 'kubernetes://apis/batch/v1/namespaces/data/cronjobs/report');
});

test('the injected pod template is a valid Pod for meshd, and injecting again changes nothing', () => {
  const first = cli('meshctl', ['kube-inject', '-f', path.join(GOLDEN, 'deployment.yaml')]);
  assert.equal(first.status, 0, first.stderr);
  const deployment = docs(first.stdout).find((d) => d['kind'] === 'Deployment') as Obj;
  const podTemplate = template(deployment);
  const parsed = parseObject({ apiVersion: 'v1', kind: 'Pod', metadata: { ...(podTemplate['metadata'] as Obj), name: 'p' }, spec: podTemplate['spec'] }, 'test');
  assert.deepEqual(parsed.errors, []);
  assert.deepEqual(validateObject(parsed.objects[0] as NonNullable<(typeof parsed.objects)[0]>), []);
  const again = cli('meshctl', ['kube-inject', '-f', '-'], first.stdout);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.stdout, first.stdout);
  assert.match(again.stderr, /Deployment productpage-v1: already injected/);
});

test('-o writes the file; meshd kube-inject is the same command', () => {
  const out = path.join(dir, 'out.yaml');
  const r = cli('meshctl', ['kube-inject', '-f', path.join(GOLDEN, 'deployment.yaml'), '-o', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '');
  const viaMeshd = cli('meshd', ['kube-inject', '-f', path.join(GOLDEN, 'deployment.yaml')]);
  assert.equal(viaMeshd.status, 0, viaMeshd.stderr);
  assert.equal(fs.readFileSync(out, 'utf8'), viaMeshd.stdout);
});

test('settings: flags, an injection config file and a mesh config reach the sidecar', () => {
  const flags = cli('meshctl', ['kube-inject', '-f', '-', '--image', 'registry.local/proxyv2:1.24.1', '--plaintext', '--revision', 'canary'], DEPLOYMENT);
  assert.equal(flags.status, 0, flags.stderr);
  const t1 = template(docs(flags.stdout).find((d) => d['kind'] === 'Deployment') as Obj);
  const env1 = proxyEnv(t1);
  // A revision's proxies dial its own Service, istiod-<rev>, as istiod's revisioned injector config says.
  assert.deepEqual(JSON.parse(env1['PROXY_CONFIG'] ?? ''), { discoveryAddress: 'istiod-canary.istio-system.svc:15010' });
  assert.equal(env1['ISTIO_META_ISTIO_VERSION'], '1.24.1');
  assert.equal(((t1['metadata'] as Obj)['annotations'] as Obj)['istio.io/rev'], 'canary');

  const mesh = write(
    'mesh.yaml',
    [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: {name: istio, namespace: istio-system}',
      'data:',
      '  mesh: |-',
      '    trustDomain: example.org',
      '    defaultConfig:',
      '      discoveryAddress: istiod.istio-system.svc:15010',
      '      controlPlaneAuthPolicy: NONE',
      '      proxyMetadata:',
      '        CA_ADDR: istiod.istio-system.svc:15010',
      '        ISTIO_DELTA_XDS: "false"',
      '',
    ].join('\n'),
  );
  const settings = write('inject.yaml', 'clusterId: east\nresources:\n  requests: {cpu: 10m}\n');
  const r = cli('meshctl', ['kube-inject', '-f', '-', '--mesh-config', mesh, '--inject-config', settings], DEPLOYMENT);
  assert.equal(r.status, 0, r.stderr);
  const t2 = template(docs(r.stdout).find((d) => d['kind'] === 'Deployment') as Obj);
  const env2 = proxyEnv(t2);
  assert.deepEqual(JSON.parse(env2['PROXY_CONFIG'] ?? ''), {
    discoveryAddress: 'istiod.istio-system.svc:15010',
    controlPlaneAuthPolicy: 'NONE',
    proxyMetadata: { CA_ADDR: 'istiod.istio-system.svc:15010', ISTIO_DELTA_XDS: 'false' },
  });
  assert.equal(env2['CA_ADDR'], 'istiod.istio-system.svc:15010', 'proxyMetadata overrides the template variable');
  assert.equal(env2['ISTIO_DELTA_XDS'], 'false');
  assert.equal(env2['ISTIO_META_CLUSTER_ID'], 'east');
  assert.equal(env2['TRUST_DOMAIN'], 'example.org');
  const names = (t2['spec'] as Obj)['containers'] as Array<{ name: string; env: Array<{ name: string }>; resources: unknown }>;
  const proxy = names.find((c) => c.name === 'istio-proxy');
  assert.equal(proxy?.env.filter((e) => e.name === 'CA_ADDR').length, 1, 'no duplicate variables');
  assert.deepEqual(proxy?.resources, { requests: { cpu: '10m' } });
});

test('errors: missing file, bad YAML, bad annotation, unknown setting → a message and exit 1', () => {
  const missing = cli('meshctl', ['kube-inject', '-f', path.join(dir, 'nope.yaml')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope\.yaml: no such file or directory/);
  const badYaml = cli('meshctl', ['kube-inject', '-f', '-'], 'kind: Pod\nmetadata: {name: [\n');
  assert.equal(badYaml.status, 1);
  assert.match(badYaml.stderr, /document 0: YAML syntax error/);
  const pod = parseYaml(DEPLOYMENT.split('---\n')[2] ?? '') as Obj;
  (template(pod)['metadata'] as Obj)['annotations'] = { 'sidecar.istio.io/interceptionMode': 'MAGIC' };
  const badAnn = cli('meshctl', ['kube-inject', '-f', '-'], JSON.stringify(pod));
  assert.equal(badAnn.status, 1);
  assert.match(badAnn.stderr, /Deployment productpage-v1: spec\.template\.metadata\.annotations\["sidecar\.istio\.io\/interceptionMode"\]: must be REDIRECT, TPROXY or NONE/);
  const unknown = cli('meshctl', ['kube-inject', '-f', '-', '--inject-config', write('typo.yaml', 'imag: x\n')], DEPLOYMENT);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /unknown setting\(s\) imag/);
  const noFile = cli('meshctl', ['kube-inject']);
  assert.notEqual(noFile.status, 0);
  assert.match(noFile.stderr, /--filename/);
});

test('meshctl validate: -f and arguments, the same report as meshd validate', () => {
  const bad = write(
    'bad.yaml',
    'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r, namespace: shop}\nspec:\n  host: reviews\n  subsets: [{name: v1}, {name: v1}]\n',
  );
  const a = cli('meshctl', ['validate', '-f', bad]);
  const b = cli('meshd', ['validate', bad]);
  assert.equal(a.status, 1);
  assert.equal(a.stdout, b.stdout);
  assert.match(a.stdout, /bad\.yaml: DestinationRule shop\/r: spec\.subsets\[1\]\.name/);
  const ok = cli('meshctl', ['validate', 'examples/bookinfo']);
  assert.equal(ok.status, 0, ok.stdout);
  assert.equal(cli('meshctl', ['validate']).status, 1);
});
