/**
 * Two meshd revisions, `stable` and `canary`, side by side on one (fake) Kubernetes API server,
 * sharing the mesh's existing root (Secret istio-ca-secret), with the revision tags
 * `meshctl tag set` writes (`default` and `prod` → stable):
 *
 * - each injects only the namespaces and pods its revision and tags select (admission requests to
 *   each one's /inject, over HTTPS under its own Service name istiod-<rev>), and points the proxy
 *   at its own discovery address;
 * - each leads only its own per-revision Lease and patches only the webhook configurations
 *   labelled with its revision (its own, its tags', and istiod-default-validator for the default);
 * - only the default revision's replicas join the shared namespace-controller election: exactly
 *   one replica writes istio-ca-root-cert, and nobody rewrites the shared root Secret;
 * - moving the default tag to canary hands the default role over: canary now leads the shared
 *   election and injects `istio-injection=enabled` namespaces, stable stops.
 */
import assert from 'node:assert/strict';
import * as https from 'node:https';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { generateSelfSignedRoot } from '../src/ca/roots';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { type KubeApiServer, startKubeApiServer } from './helpers/kube-api-server';

const TIMINGS = { leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 200 };
const ADM = 'admissionregistration.k8s.io/v1';
let api: KubeApiServer;
const running: MeshdHandle[] = [];
const root = generateSelfSignedRoot({ trustDomain: 'cluster.local', now: new Date(), ttlMs: 10 * 365 * 24 * 3600_000 });
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const rootPem = root.certPem.replace(/\r\n/g, '\n');
/** The caBundle every revision writes: the shared root bundle as meshd reads it (set once canary's CA is ready). */
let rootBundle = '';

async function meshd(revision: string, pod: string): Promise<MeshdHandle> {
  const m = await startMeshd({
    kubeconfig: api.kubeconfigPath,
    podName: pod,
    podNamespace: 'istio-system',
    revision,
    xdsPort: 0,
    debugPort: 0,
    monitoringPort: -1,
    webhookPort: 0,
    logger: pino({ level: 'silent' }),
    kube: { backoffInitialMs: 20, backoffMaxMs: 200, missingRetryMs: 200 },
    leaseTimings: TIMINGS,
    revisionTagIntervalMs: 100,
    webhookPatchIntervalMs: 200,
  });
  running.push(m);
  return m;
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function namespace(name: string, labels: Record<string, string>): void {
  api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
}

function webhookConfig(kind: 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration', name: string, labels: Record<string, string>, hooks: string[]): void {
  api.store.create({
    apiVersion: ADM,
    kind,
    metadata: { name, labels },
    webhooks: hooks.map((h) => ({
      name: h,
      clientConfig: { service: { name: 'istiod', namespace: 'istio-system', path: kind === 'MutatingWebhookConfiguration' ? '/inject' : '/validate' } },
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
    })),
  });
}

/** The caBundles of a configuration's webhooks ('' when unset). */
function bundles(kind: string, name: string): string[] {
  const c = api.store.get(ADM, kind, '', name) as { webhooks?: Array<{ clientConfig?: { caBundle?: string } }> } | undefined;
  return (c?.webhooks ?? []).map((w) => w.clientConfig?.caBundle ?? '');
}
const patched = (kind: string, name: string): boolean => bundles(kind, name).length > 0 && bundles(kind, name).every((b) => b === rootBundle);
const untouched = (kind: string, name: string): boolean => bundles(kind, name).length > 0 && bundles(kind, name).every((b) => b === '');

const leaseHolder = (name: string): string =>
  (api.store.get('coordination.k8s.io/v1', 'Lease', 'istio-system', name)?.['spec'] as { holderIdentity?: string } | undefined)?.holderIdentity ?? '';

let uid = 0;
/** POSTs a Pod CREATE review to a meshd's /inject over HTTPS, trusting only the shared root, as the API server does via Service istiod-<rev>. */
function inject(m: MeshdHandle, revision: string, ns: string, labels: Record<string, string> = {}): Promise<{ injected: boolean; patch: string }> {
  const body = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `u${++uid}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: ns,
      operation: 'CREATE',
      object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', labels: { app: 'p', ...labels } }, spec: { containers: [{ name: 'app', image: 'example.com/app:1' }] } },
    },
  });
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: m.webhookPort,
        path: '/inject',
        method: 'POST',
        ca: root.certPem,
        servername: `istiod-${revision}.istio-system.svc`,
        agent: false,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          try {
            const r = (JSON.parse(text) as { response: { allowed: boolean; patch?: string } }).response;
            assert.equal(r.allowed, true, text);
            const patch = r.patch ? Buffer.from(r.patch, 'base64').toString() : '';
            resolve({ injected: patch !== '', patch });
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Which namespaces (of `names`) a meshd injects a plain pod into. */
async function injects(m: MeshdHandle, revision: string, names: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const ns of names) if ((await inject(m, revision, ns)).injected) out.push(ns);
  return out;
}

const NAMESPACES = ['ns-stable', 'ns-canary', 'ns-prod', 'ns-enabled', 'ns-plain'];

before(async () => {
  api = await startKubeApiServer();
  namespace('istio-system', {});
  namespace('ns-stable', { 'istio.io/rev': 'stable' });
  namespace('ns-canary', { 'istio.io/rev': 'canary' });
  namespace('ns-prod', { 'istio.io/rev': 'prod' });
  namespace('ns-enabled', { 'istio-injection': 'enabled' });
  namespace('ns-plain', {});
  // The mesh's existing root (as the running control plane created it).
  api.store.create({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'istio.io/ca-root',
    metadata: { name: 'istio-ca-secret', namespace: 'istio-system' },
    data: { 'ca-cert.pem': b64(root.certPem), 'ca-key.pem': b64(root.keyPem), 'root-cert.pem': '', 'cert-chain.pem': '' },
  });
  const injectorHooks = ['rev.namespace.sidecar-injector.istio.io', 'rev.object.sidecar-injector.istio.io'];
  for (const rev of ['stable', 'canary']) {
    webhookConfig('MutatingWebhookConfiguration', `istio-sidecar-injector-${rev}`, { 'istio.io/rev': rev }, injectorHooks);
    webhookConfig('ValidatingWebhookConfiguration', `istio-validator-${rev}-istio-system`, { 'istio.io/rev': rev }, ['rev.validation.istio.io']);
  }
  // What `meshctl tag set default --revision stable` and `tag set prod --revision stable` leave.
  webhookConfig('MutatingWebhookConfiguration', 'istio-revision-tag-default', { 'istio.io/rev': 'stable', 'istio.io/tag': 'default' }, [
    ...injectorHooks,
    'namespace.sidecar-injector.istio.io',
    'object.sidecar-injector.istio.io',
  ]);
  webhookConfig('MutatingWebhookConfiguration', 'istio-revision-tag-prod', { 'istio.io/rev': 'stable', 'istio.io/tag': 'prod' }, injectorHooks);
  webhookConfig('ValidatingWebhookConfiguration', 'istiod-default-validator', { 'istio.io/rev': 'stable', 'istio.io/tag': 'default' }, ['validation.istio.io']);
  // An unrevisioned install's injector: revision default's, which runs nowhere here.
  webhookConfig('MutatingWebhookConfiguration', 'istio-sidecar-injector', {}, ['namespace.sidecar-injector.istio.io']);
});

after(async () => {
  for (const m of running) await m.close();
  await api.close();
});

test('stable and canary side by side: own injection, own Lease, own webhooks; one writer of cluster-wide state', { timeout: 120_000 }, async () => {
  const secretVersion = String((api.store.get('v1', 'Secret', 'istio-system', 'istio-ca-secret')?.['metadata'] as { resourceVersion?: string }).resourceVersion);
  const M = 'MutatingWebhookConfiguration';
  const V = 'ValidatingWebhookConfiguration';

  // Canary alone first: it is not the default revision.
  const canary = await meshd('canary', 'istiod-canary-a');
  await canary.whenReady();
  await canary.caReady();
  assert.equal(canary.caRootPem().trim(), rootPem.trim(), 'canary signs with the existing root');
  rootBundle = b64(canary.caRootPem());
  await until('canary patches its own webhooks', () => patched(M, 'istio-sidecar-injector-canary') && patched(V, 'istio-validator-canary-istio-system'));
  assert.equal(leaseHolder('meshd-webhook-patcher-canary'), canary.revisionLeader()?.identity);
  assert.deepEqual(canary.revision(), { revision: 'canary', tags: [], isDefault: false });
  // A few more patch rounds: canary never touches what is not labelled for it.
  await new Promise((r) => setTimeout(r, 800));
  for (const [kind, name] of [
    [M, 'istio-sidecar-injector-stable'],
    [V, 'istio-validator-stable-istio-system'],
    [M, 'istio-revision-tag-default'],
    [M, 'istio-revision-tag-prod'],
    [V, 'istiod-default-validator'],
    [M, 'istio-sidecar-injector'],
  ] as const) {
    assert.ok(untouched(kind, name), `canary left ${kind} ${name} alone`);
  }
  // Not the default revision: it does not join the shared election, so it writes nothing cluster-wide.
  assert.equal(api.store.get('coordination.k8s.io/v1', 'Lease', 'istio-system', 'istio-namespace-controller-election'), undefined);
  assert.equal(canary.leader()?.leading, false);
  assert.equal(api.store.list('v1', 'ConfigMap').filter((c) => (c['metadata'] as { name?: string }).name === 'istio-ca-root-cert').length, 0, 'no istio-ca-root-cert written');

  await until('canary knows the namespaces', () => canary.snapshot()?.namespaceLabels.get('ns-plain') !== undefined);
  assert.deepEqual(await injects(canary, 'canary', NAMESPACES), ['ns-canary']);
  const canaryPod = await inject(canary, 'canary', 'ns-canary');
  assert.match(canaryPod.patch, /discoveryAddress\\*":\\*"istiod-canary\.istio-system\.svc:15012/, 'the proxy dials its revision');
  assert.equal((await inject(canary, 'canary', 'ns-plain', { 'istio.io/rev': 'canary' })).injected, true, 'a pod labelled istio.io/rev=canary');
  assert.equal((await inject(canary, 'canary', 'ns-plain', { 'sidecar.istio.io/inject': 'true' })).injected, false, 'sidecar.istio.io/inject=true is the default revision’s');

  // Then two replicas of stable, which the default tag names.
  const a = await meshd('stable', 'istiod-stable-a');
  const b = await meshd('stable', 'istiod-stable-b');
  const all = [canary, a, b];
  const sharedLeaders = (): string[] => all.filter((m) => m.leader()?.leading === true).map((m) => m.leader()?.identity ?? '');
  let most = 0;
  let canaryLed = false;
  const sampler = setInterval(() => {
    most = Math.max(most, sharedLeaders().length);
    canaryLed ||= canary.leader()?.leading === true;
  }, 5);
  try {
    await Promise.all([a.whenReady(), b.whenReady()]);
    await until('stable is the default revision', () => a.revision().isDefault && b.revision().isDefault);
    assert.deepEqual(a.revision(), { revision: 'stable', tags: ['default', 'prod'], isDefault: true });
    await until('one stable replica leads the shared election', () => sharedLeaders().length === 1);
    const holder = leaseHolder('istio-namespace-controller-election');
    assert.ok(
      [a, b].some((m) => m.leader()?.identity === holder),
      `the shared Lease is a stable replica's (${holder})`,
    );
    await until('stable patches its webhooks, its tags and the default validator', () =>
      [
        [M, 'istio-sidecar-injector-stable'],
        [V, 'istio-validator-stable-istio-system'],
        [M, 'istio-revision-tag-default'],
        [M, 'istio-revision-tag-prod'],
        [V, 'istiod-default-validator'],
      ].every(([k, n]) => patched(k as string, n as string)),
    );
    const stableHolder = leaseHolder('meshd-webhook-patcher-stable');
    assert.ok(
      [a, b].some((m) => m.revisionLeader()?.identity === stableHolder),
      'the stable per-revision Lease is a stable replica’s',
    );
    assert.equal(leaseHolder('meshd-webhook-patcher-canary'), canary.revisionLeader()?.identity, 'canary keeps its own');
    assert.ok(untouched(M, 'istio-sidecar-injector'), 'revision default’s injector is nobody’s here');
    // The shared leader publishes the root into every namespace.
    await until('istio-ca-root-cert published', () =>
      NAMESPACES.every((ns) =>
        ((api.store.get('v1', 'ConfigMap', ns, 'istio-ca-root-cert')?.['data'] as Record<string, string> | undefined)?.['root-cert.pem'] ?? '').includes(rootPem.trim()),
      ),
    );

    const stable = a;
    await until('stable knows the namespaces', () => stable.snapshot()?.namespaceLabels.get('ns-plain') !== undefined);
    assert.deepEqual(await injects(stable, 'stable', NAMESPACES), ['ns-stable', 'ns-prod', 'ns-enabled']);
    assert.deepEqual(await injects(canary, 'canary', NAMESPACES), ['ns-canary']);
    assert.match((await inject(stable, 'stable', 'ns-enabled')).patch, /discoveryAddress\\*":\\*"istiod-stable\.istio-system\.svc:15012/);
    assert.equal((await inject(stable, 'stable', 'ns-plain', { 'sidecar.istio.io/inject': 'true' })).injected, true);

    // `meshctl tag set default --revision canary`: the default role moves.
    for (const [kind, name] of [
      [M, 'istio-revision-tag-default'],
      [V, 'istiod-default-validator'],
    ] as const) {
      const cur = api.store.get(ADM, kind, '', name) as { metadata: { labels: Record<string, string> }; webhooks: Array<{ clientConfig: { caBundle?: string } }> };
      cur.metadata.labels['istio.io/rev'] = 'canary';
      for (const w of cur.webhooks) delete w.clientConfig.caBundle;
      api.store.update(cur);
    }
    await until('canary is the default revision', () => canary.revision().isDefault && !a.revision().isDefault && !b.revision().isDefault);
    await until('canary leads the shared election', () => canary.leader()?.leading === true && leaseHolder('istio-namespace-controller-election') === canary.leader()?.identity);
    await until('canary patches the default tag and validator', () => patched(M, 'istio-revision-tag-default') && patched(V, 'istiod-default-validator'));
    assert.deepEqual(await injects(canary, 'canary', NAMESPACES), ['ns-canary', 'ns-enabled']);
    assert.deepEqual(await injects(stable, 'stable', NAMESPACES), ['ns-stable', 'ns-prod']);
  } finally {
    clearInterval(sampler);
  }
  assert.equal(most, 1, 'never two writers of cluster-wide state');
  assert.equal(canaryLed, true, 'canary led the shared election only once it was the default');
  const after = String((api.store.get('v1', 'Secret', 'istio-system', 'istio-ca-secret')?.['metadata'] as { resourceVersion?: string }).resourceVersion);
  assert.equal(after, secretVersion, 'nobody rewrote the shared root Secret');
});

test('revision default, started while the default tag names another revision, creates no root until the tag goes', { timeout: 60_000 }, async () => {
  for (const m of running.splice(0)) await m.close();
  // No root yet, and the default tag names canary (left so by the test above), which is not running.
  api.store.delete('v1', 'Secret', 'istio-system', 'istio-ca-secret');
  const labels = (api.store.get(ADM, 'MutatingWebhookConfiguration', '', 'istio-revision-tag-default')?.['metadata'] as { labels?: Record<string, string> }).labels;
  assert.equal(labels?.['istio.io/rev'], 'canary');
  const m = await meshd('default', 'istiod-default-a');
  let led = false;
  const sampler = setInterval(() => (led ||= m.leader()?.leading === true), 5);
  try {
    await until('the tags are read', () => m.revision().tags.length === 0 && !m.revision().isDefault);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(led, false, 'it never led the shared election');
    assert.equal(api.store.get('v1', 'Secret', 'istio-system', 'istio-ca-secret'), undefined, 'no root created by a non-default revision');
    // `meshctl tag remove default`: revision default is the default again, joins, and creates the root.
    api.store.delete(ADM, 'MutatingWebhookConfiguration', '', 'istio-revision-tag-default');
    await until('revision default leads the shared election', () => m.leader()?.leading === true);
    await until('the root is created', () => api.store.get('v1', 'Secret', 'istio-system', 'istio-ca-secret') !== undefined);
    await m.caReady();
  } finally {
    clearInterval(sampler);
  }
});
