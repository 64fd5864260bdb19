/**
 * `meshctl tag` against the fake Kubernetes API server, through client-node as a user's
 * kubeconfig reaches a cluster: set/list/remove round trips with istioctl's output and
 * refusals, and where pod admissions go afterwards, evaluating every stored injector webhook's
 * namespaceSelector and objectSelector with Kubernetes label-selector semantics. The cluster
 * starts as meshd's default install (deploy/meshd/webhooks.yaml) plus two revisions, `stable`
 * and `canary`, each with its own injector as a revisioned install has it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { Command } from 'commander';
import { tagCommand } from '../src/cli/tag';
import { type WebhookConfiguration, tagSelectors } from '../src/cli/tag-webhooks';
import { type KubeApiServer, startKubeApiServer } from './helpers/kube-api-server';
import { mutatingConfigs, namespaceLabels, podCreateRoutes, podCreateServices, validatingConfigs } from './helpers/webhook-routing';

const ROOT = path.join(__dirname, '..');
const ADM = 'admissionregistration.k8s.io/v1';
let api: KubeApiServer;

/** A revision's own injector, as a revisioned install names and selects it. */
function revisionInjector(rev: string): WebhookConfiguration {
  return {
    apiVersion: ADM,
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: `istio-sidecar-injector-${rev}`, labels: { app: 'sidecar-injector', 'istio.io/rev': rev, 'app.kubernetes.io/part-of': 'meshd' } },
    webhooks: tagSelectors(rev).map((s) => ({
      name: `${s.prefix}sidecar-injector.istio.io`,
      clientConfig: { service: { name: `istiod-${rev}`, namespace: 'istio-system', path: '/inject', port: 443 }, caBundle: Buffer.from(`ca of ${rev}`).toString('base64') },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
      failurePolicy: 'Fail',
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      namespaceSelector: s.namespaceSelector,
      objectSelector: s.objectSelector,
    })),
  };
}

function defaultInstallWebhooks(): WebhookConfiguration[] {
  const text = fs.readFileSync(path.join(ROOT, 'deploy', 'meshd', 'webhooks.yaml'), 'utf8');
  return parseAllDocuments(text).map((d) => d.toJS() as WebhookConfiguration);
}

interface Run {
  out: string;
  err: string;
  code: number;
}

async function run(args: string[], stdin = ''): Promise<Run> {
  let out = '';
  let err = '';
  const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, stdin: () => stdin };
  const before = process.exitCode;
  process.exitCode = 0;
  await new Command('meshctl')
    .exitOverride()
    .addCommand(tagCommand(io))
    .parseAsync(['node', 'meshctl', ...args]);
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { out, err, code };
}

const tag = (...args: string[]): Promise<Run> => run(['tag', ...args, '--kubeconfig', api.kubeconfigPath]);

function ns(name: string, labels: Record<string, string> = {}): void {
  api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
}

/** The Services a pod CREATE in namespace `nsName` reaches. */
function injectors(nsName: string, podLabels: Record<string, string> = {}): string[] {
  const n = api.store.get('v1', 'Namespace', '', nsName);
  assert.ok(n, `namespace ${nsName}`);
  const labels = ((n['metadata'] as { labels?: Record<string, string> }).labels ?? {}) as Record<string, string>;
  return podCreateServices(mutatingConfigs(api), namespaceLabels(nsName, labels), podLabels);
}

before(async () => {
  api = await startKubeApiServer();
});
after(async () => {
  await api.close();
});

beforeEach(() => {
  for (const o of defaultInstallWebhooks()) api.store.create(o);
  for (const rev of ['stable', 'canary']) api.store.create(revisionInjector(rev));
  ns('legacy', { 'istio-injection': 'enabled' });
  ns('prod-apps', { 'istio.io/rev': 'prod' });
  ns('stable-apps', { 'istio.io/rev': 'stable' });
  ns('plain');
});

afterEach(() => {
  for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
    for (const o of api.store.list(ADM, kind)) api.store.delete(ADM, kind, '', String((o['metadata'] as { name: string }).name));
  }
  for (const n of ['legacy', 'prod-apps', 'stable-apps', 'plain']) api.store.delete('v1', 'Namespace', '', n);
});

test('tag set creates istio-revision-tag-<tag> from the revision injector, with istioctl’s message; list and remove round-trip', async () => {
  const set = await tag('set', 'prod', '--revision', 'canary');
  assert.equal(set.err, '');
  assert.equal(set.code, 0);
  assert.equal(
    set.out,
    `Revision tag "prod" created, referencing control plane revision "canary". To enable injection using this\nrevision tag, use 'kubectl label namespace <NAMESPACE> istio.io/rev=prod'\n`,
  );
  const wh = api.store.get(ADM, 'MutatingWebhookConfiguration', '', 'istio-revision-tag-prod') as unknown as WebhookConfiguration | undefined;
  assert.ok(wh, 'the tag webhook exists');
  assert.equal(wh.metadata.labels?.['istio.io/tag'], 'prod');
  assert.equal(wh.metadata.labels?.['istio.io/rev'], 'canary');
  assert.deepEqual(
    wh.webhooks.map((w) => w.name),
    ['rev.namespace.sidecar-injector.istio.io', 'rev.object.sidecar-injector.istio.io'],
  );
  for (const w of wh.webhooks) {
    assert.deepEqual(w.clientConfig.service, { name: 'istiod-canary', namespace: 'istio-system', path: '/inject', port: 443 });
    assert.equal(w.clientConfig.caBundle, Buffer.from('ca of canary').toString('base64'), "the revision's caBundle is copied");
  }

  const list = await tag('list');
  assert.equal(list.code, 0, list.err);
  // The revisions' own webhooks appear untagged unless a tag points at them, with the namespaces
  // labelled with the empty tag (none): istioctl's listing.
  assert.equal(list.out, ['TAG  REVISION NAMESPACES', 'prod canary   prod-apps', '     default  ', '     stable   ', ''].join('\n'));
  const json = await tag('list', '-o', 'json');
  assert.deepEqual(JSON.parse(json.out), [
    { tag: 'prod', revision: 'canary', namespaces: ['prod-apps'] },
    { tag: '', revision: 'default', namespaces: [] },
    { tag: '', revision: 'stable', namespaces: [] },
  ]);
  assert.match(json.out, /^\[\n\t\{\n\t\t"tag": "prod",/, "istioctl's tab-indented JSON");
  const yaml = await tag('list', '-o', 'yaml');
  assert.match(yaml.out, /^- namespaces:\n {2}- prod-apps\n {2}revision: canary\n {2}tag: prod\n/);
  assert.equal((await tag('list', '-o', 'wide')).code, 1);

  // A namespace still uses the tag: removal asks, and anything but y/yes aborts.
  const refused = await tag('remove', 'prod');
  assert.equal(refused.out, 'Caution, found 1 namespace(s) still injected by tag "prod": prod-apps\nProceed with operation? [y/N] Aborting operation.\n');
  assert.ok(api.store.get(ADM, 'MutatingWebhookConfiguration', '', 'istio-revision-tag-prod'), 'still there after aborting');
  const yes = await run(['tag', 'remove', 'prod', '--kubeconfig', api.kubeconfigPath], 'y\n');
  assert.match(yes.out, /Revision tag prod removed\n$/);
  assert.equal(api.store.get(ADM, 'MutatingWebhookConfiguration', '', 'istio-revision-tag-prod'), undefined);
  assert.equal((await tag('list')).out.includes('prod'), false);

  await tag('set', 'prod', '--revision', 'canary');
  const skip = await tag('remove', 'prod', '-y');
  assert.equal(skip.out, 'Revision tag prod removed\n');
  const again = await tag('remove', 'prod');
  assert.equal(again.code, 1);
  assert.equal(again.err, 'Error: cannot remove tag "prod": cannot find MutatingWebhookConfiguration for tag\n');
});

test("tag set refuses what istioctl refuses, with istioctl's messages, and changes nothing", async () => {
  const cases: Array<[string[], string]> = [
    [['set', 'canary', '--revision', 'stable'], 'cannot create revision tag "canary": found existing control plane revision with same name'],
    [['set', 'prod', '--revision', 'nope'], 'cannot modify tag: cannot find MutatingWebhookConfiguration with revision "nope"'],
    [['set', 'prod'], 'required flag(s) "revision" not set'],
    [['set', '--revision', 'stable'], 'must provide a tag for modification'],
    [['set', 'a', 'b', '--revision', 'stable'], 'must provide a single tag for creation'],
  ];
  const before = api.store.list(ADM, 'MutatingWebhookConfiguration').length;
  for (const [args, msg] of cases) {
    const r = await tag(...args);
    assert.equal(r.code, 1, args.join(' '));
    assert.equal(r.err, `Error: ${msg}\n`, args.join(' '));
  }
  assert.equal(api.store.list(ADM, 'MutatingWebhookConfiguration').length, before);

  assert.equal((await tag('set', 'prod', '--revision', 'stable')).code, 0);
  const over = await tag('set', 'prod', '--revision', 'canary');
  assert.equal(over.err, 'Error: revision tag "prod" already exists, and --overwrite is false\n');
  assert.deepEqual(injectors('prod-apps'), ['istio-system/istiod-stable'], 'the refused overwrite left the tag alone');
  assert.equal((await tag('set', 'prod', '--revision', 'canary', '--overwrite')).code, 0);
  assert.deepEqual(injectors('prod-apps'), ['istio-system/istiod-canary']);
  // --overwrite also lets a tag take a revision's name, as istioctl allows.
  assert.equal((await tag('set', 'canary', '--revision', 'stable', '--overwrite')).code, 0);
});

test('admissions routed by the tag webhooks reach the revision `tag set` named, and only it', async () => {
  ns('pods-only');
  ns('opted-out', { 'istio.io/rev': 'prod' });
  // Before any tag: istio.io/rev=prod selects nothing; each revision serves its own label.
  assert.deepEqual(injectors('prod-apps'), []);
  assert.deepEqual(injectors('stable-apps'), ['istio-system/istiod-stable']);
  assert.deepEqual(injectors('legacy'), ['istio-system/istiod']);

  await tag('set', 'prod', '--revision', 'canary');
  assert.deepEqual(injectors('prod-apps'), ['istio-system/istiod-canary']);
  assert.deepEqual(injectors('pods-only', { 'istio.io/rev': 'prod' }), ['istio-system/istiod-canary'], 'a pod labelled with the tag in an unlabelled namespace');
  assert.deepEqual(injectors('opted-out', { 'sidecar.istio.io/inject': 'false' }), [], 'a pod that opts out');
  assert.deepEqual(injectors('stable-apps'), ['istio-system/istiod-stable'], 'other revisions keep their namespaces');
  assert.deepEqual(injectors('legacy'), ['istio-system/istiod'], 'a non-default tag leaves istio-injection=enabled alone');
  assert.deepEqual(injectors('plain'), []);
  assert.deepEqual(injectors('plain', { 'sidecar.istio.io/inject': 'true' }), ['istio-system/istiod']);

  // Re-point the tag: the namespace follows without relabelling.
  await tag('set', 'prod', '--revision', 'stable', '--overwrite');
  assert.deepEqual(injectors('prod-apps'), ['istio-system/istiod-stable']);
  assert.deepEqual(injectors('pods-only', { 'istio.io/rev': 'prod' }), ['istio-system/istiod-stable']);
});

test('the default tag takes istio-injection=enabled and opted-in pods, deactivates the default injector, and moves the default validator', async () => {
  const set = await tag('set', 'default', '--revision', 'canary');
  assert.equal(set.code, 0, set.err);
  // Every default-revision selector now reaches canary, once: the default install's own injector
  // is kept but selects nothing (istioctl's deactivation), so it can be pointed back at.
  assert.deepEqual(podCreateRoutes(mutatingConfigs(api), namespaceLabels('legacy', { 'istio-injection': 'enabled' }), {}), [
    'istio-revision-tag-default/namespace.sidecar-injector.istio.io → istio-system/istiod-canary',
  ]);
  assert.deepEqual(injectors('plain', { 'sidecar.istio.io/inject': 'true' }), ['istio-system/istiod-canary']);
  ns('rev-default', { 'istio.io/rev': 'default' });
  assert.deepEqual(injectors('rev-default'), ['istio-system/istiod-canary']);
  assert.deepEqual(injectors('plain'), [], 'no auto-injection without --auto-inject-namespaces');
  assert.deepEqual(injectors('stable-apps'), ['istio-system/istiod-stable']);
  const legacy = api.store.get(ADM, 'MutatingWebhookConfiguration', '', 'istio-sidecar-injector') as unknown as WebhookConfiguration;
  for (const w of legacy.webhooks) assert.deepEqual(w.namespaceSelector, { matchLabels: { 'istio.io/deactivated': 'never-match' } });

  const validator = (): WebhookConfiguration => {
    const v = validatingConfigs(api).find((c) => c.metadata.name === 'istiod-default-validator');
    assert.ok(v, 'istiod-default-validator exists');
    return v;
  };
  let v = validator();
  assert.equal(v.metadata.labels?.['istio.io/rev'], 'canary');
  assert.equal(v.metadata.labels?.['istio.io/tag'], 'default');
  assert.deepEqual(v.webhooks[0]?.clientConfig.service, { name: 'istiod-canary', namespace: 'istio-system', path: '/validate', port: 443 });
  assert.equal(v.webhooks[0]?.failurePolicy, 'Ignore');

  // The revision's control plane switched validation to Fail meanwhile: moving the tag keeps it.
  api.store.patch(ADM, 'ValidatingWebhookConfiguration', '', 'istiod-default-validator', [{ op: 'replace', path: '/webhooks/0/failurePolicy', value: 'Fail' }], 'json');
  assert.equal((await tag('set', 'default', '--revision', 'stable')).code, 1, 'moving the default tag needs --overwrite');
  const moved = await tag('set', 'default', '--revision', 'stable', '--overwrite');
  assert.equal(moved.code, 0, moved.err);
  v = validator();
  assert.deepEqual(v.webhooks[0]?.clientConfig.service, { name: 'istiod-stable', namespace: 'istio-system', path: '/validate', port: 443 });
  assert.equal(v.webhooks[0]?.failurePolicy, 'Fail');
  assert.deepEqual(injectors('legacy'), ['istio-system/istiod-stable']);
  assert.equal(validatingConfigs(api).filter((c) => c.metadata.name === 'istiod-default-validator').length, 1);

  // Roll back to the default install: its deactivated injector is still the default revision's.
  const back = await tag('set', 'default', '--revision', 'default', '--overwrite');
  assert.equal(back.code, 0, back.err);
  assert.deepEqual(injectors('legacy'), ['istio-system/istiod']);
  assert.deepEqual(validator().webhooks[0]?.clientConfig.service, { name: 'istiod', namespace: 'istio-system', path: '/validate', port: 443 });
  assert.equal(validator().metadata.labels?.['istio.io/rev'], 'default');

  // Removing the default tag (istioctl's behaviour): the validator stays, and with the default
  // injector deactivated, istio-injection=enabled namespaces are injected by nobody.
  assert.equal((await tag('remove', 'default', '-y')).code, 0);
  assert.deepEqual(injectors('legacy'), []);
  assert.ok(validator());
});

test('--auto-inject-namespaces makes the default tag inject unlabelled namespaces, but not kube-system', async () => {
  await tag('set', 'default', '--revision', 'stable', '--auto-inject-namespaces');
  ns('kube-system');
  assert.deepEqual(injectors('plain'), ['istio-system/istiod-stable']);
  assert.deepEqual(injectors('kube-system'), []);
  api.store.delete('v1', 'Namespace', '', 'kube-system');
});

test('tag generate prints the webhooks without applying them; --webhook-name renames the tag webhook', async () => {
  const before = JSON.stringify(mutatingConfigs(api));
  const g = await tag('generate', 'default', '--revision', 'canary', '--webhook-name', 'my-tag');
  assert.equal(g.code, 0, g.err);
  const docs = parseAllDocuments(g.out).map((d) => d.toJS() as WebhookConfiguration);
  assert.deepEqual(
    docs.map((d) => `${d.kind}/${d.metadata.name}`),
    ['MutatingWebhookConfiguration/my-tag', 'ValidatingWebhookConfiguration/istiod-default-validator'],
  );
  assert.equal(JSON.stringify(mutatingConfigs(api)), before, 'generate changes nothing');
  assert.equal(validatingConfigs(api).length, 1, 'only the default install validator');
  // What generate prints is what set applies.
  await tag('set', 'default', '--revision', 'canary', '--webhook-name', 'my-tag');
  const applied = api.store.get(ADM, 'MutatingWebhookConfiguration', '', 'my-tag') as unknown as WebhookConfiguration;
  assert.deepEqual(applied.webhooks, docs[0]?.webhooks);
  // Generating a tag that names a revision is allowed (istioctl checks that only when applying).
  assert.equal((await tag('generate', 'canary', '--revision', 'stable')).code, 0);
  // Outside istio-system the name carries the namespace, as the chart names it (both spellings of -i).
  for (const flag of ['-i', '--istio-namespace', '--istioNamespace']) {
    const other = await tag('generate', 'prod', '--revision', 'stable', flag, 'mesh-cp');
    assert.equal(other.code, 0, other.err);
    assert.equal((parseAllDocuments(other.out)[0]?.toJS() as WebhookConfiguration).metadata.name, 'istio-revision-tag-prod-mesh-cp', flag);
  }
});

test('--context picks the kubeconfig context; an unknown context is an error before any request', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshctl-tag-'));
  try {
    const file = path.join(dir, 'config');
    // Current context points nowhere reachable; --context fake reaches the fake API server.
    fs.writeFileSync(
      file,
      api.kubeconfig
        .replace('current-context: fake', 'current-context: elsewhere')
        .replace('contexts:\n', 'contexts:\n- name: elsewhere\n  context: { cluster: nowhere, user: fake }\n') + '',
    );
    const text = fs.readFileSync(file, 'utf8').replace('clusters:\n', 'clusters:\n- name: nowhere\n  cluster:\n    server: http://127.0.0.1:1\n');
    fs.writeFileSync(file, text);
    const ok = await run(['tag', 'list', '--kubeconfig', file, '--context', 'fake']);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /^TAG +REVISION +NAMESPACES\n/);
    api.clearRequests();
    const bad = await run(['tag', 'list', '--kubeconfig', file, '--context', 'nope']);
    assert.equal(bad.err, 'Error: context "nope" does not exist\n');
    assert.equal(api.requests.length, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the meshctl binary carries `tag`, reads the confirmation from standard input, and exits 1 on a refusal', async () => {
  const bin = (args: string[], input: string): Promise<{ out: string; err: string; code: number | null }> =>
    new Promise((resolve) => {
      const c = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'meshctl.ts'), 'tag', ...args, '--kubeconfig', api.kubeconfigPath], { cwd: ROOT });
      let out = '';
      let err = '';
      c.stdout.on('data', (b: Buffer) => (out += b.toString()));
      c.stderr.on('data', (b: Buffer) => (err += b.toString()));
      c.on('close', (code) => resolve({ out, err, code }));
      c.stdin.end(input);
    });
  const set = await bin(['set', 'prod', '--revision', 'canary'], '');
  assert.equal(set.code, 0, set.err);
  assert.match(set.out, /^Revision tag "prod" created/);
  const refused = await bin(['set', 'prod', '--revision', 'stable'], '');
  assert.equal(refused.code, 1);
  assert.equal(refused.err, 'Error: revision tag "prod" already exists, and --overwrite is false\n');
  const no = await bin(['remove', 'prod'], 'n\n');
  assert.match(no.out, /Aborting operation\.\n$/);
  assert.ok(api.store.get(ADM, 'MutatingWebhookConfiguration', '', 'istio-revision-tag-prod'));
  const yes = await bin(['remove', 'prod'], 'yes\n');
  assert.equal(yes.code, 0, yes.err);
  assert.match(yes.out, /Revision tag prod removed\n$/);
  assert.equal(api.store.get(ADM, 'MutatingWebhookConfiguration', '', 'istio-revision-tag-prod'), undefined);
});
