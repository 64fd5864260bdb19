/**
 * Two meshd replicas on one (fake) Kubernetes API: both serve xDS, exactly one holds the leader
 * Lease, and when it stops the other takes over.
 */
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { type KubeApiServer, startKubeApiServer } from './helpers/kube-api-server';

// Generous enough that a loaded machine (a stalled event loop) does not cost the leader its
// Lease; a graceful stop releases it, so failover does not wait for the lease duration.
const TIMINGS = { leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 200 };
let api: KubeApiServer;
const replicas: MeshdHandle[] = [];

async function replica(pod: string): Promise<MeshdHandle> {
  const m = await startMeshd({
    kubeconfig: api.kubeconfigPath,
    podName: pod,
    podNamespace: 'istio-system',
    xdsPort: 0,
    debugPort: 0,
    monitoringPort: -1,
    webhookPort: 0,
    logger: pino({ level: 'silent' }),
    kube: { backoffInitialMs: 20, backoffMaxMs: 200, missingRetryMs: 200 },
    leaseTimings: TIMINGS,
  });
  replicas.push(m);
  return m;
}

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

before(async () => {
  api = await startKubeApiServer();
});

after(async () => {
  for (const m of replicas) await m.close();
  await api.close();
});

/** A TLS handshake with a webhook server, trusting only `ca`, as the API server would. */
function handshake(port: number, ca: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'istiod.istio-system.svc' }, () => {
      s.end();
      resolve();
    });
    s.on('error', reject);
  });
}

test('two replicas: both serve, exactly one leads, the other takes over when it stops', { timeout: 60_000 }, async () => {
  const a = await replica('istiod-a');
  const b = await replica('istiod-b');
  await Promise.all([a.whenReady(), b.whenReady()]);
  assert.ok(a.xdsPort > 0 && b.xdsPort > 0 && a.xdsPort !== b.xdsPort, 'both replicas serve xDS');

  // Identities only: a handle holds the CA, and an assertion message must never print key material.
  const leading = (): string[] => [a, b].filter((m) => m.leader()?.leading === true).map((m) => m.leader()?.identity ?? '');
  let most = 0;
  const sampler = setInterval(() => (most = Math.max(most, leading().length)), 5);
  try {
    await until('a leader', () => leading().length === 1);
    const first = a.leader()?.leading === true ? a : b;
    const leaderId = first.leader()?.identity ?? '';
    assert.match(leaderId, /^istiod-[ab]-/);
    // The leader keeps renewing: the Lease's renewTime moves on three times, always under its name.
    type LeaseSpec = { holderIdentity?: string; renewTime?: string };
    const leaseSpec = (): LeaseSpec => (api.store.get('coordination.k8s.io/v1', 'Lease', 'istio-system', 'istio-namespace-controller-election')?.['spec'] ?? {}) as LeaseSpec;
    const renewals = new Set<string>();
    const holders = new Set<string>();
    await until('three renewals', () => {
      const spec = leaseSpec();
      holders.add(spec.holderIdentity ?? '');
      if (spec.renewTime) renewals.add(spec.renewTime);
      return renewals.size >= 4;
    });
    assert.deepEqual([...holders], [leaderId], 'the Lease stayed with the leader while it renewed');
    assert.deepEqual(leading(), [leaderId], 'the leader keeps renewing');
    assert.equal(most, 1, 'never two leaders');

    const other = first === a ? b : a;
    await first.close();
    replicas.splice(replicas.indexOf(first), 1);
    await until('failover', () => other.leader()?.leading === true, 5_000);
    assert.equal(other.ready(), true, 'the remaining replica still serves');
    assert.equal(most, 1, 'never two leaders');
  } finally {
    clearInterval(sampler);
  }
  // The next test starts from no replica: its leader's first caBundle round must find its config.
  for (const m of replicas.splice(0)) await m.close();
});

test("replicas' webhook certificates come from the shared mesh CA; the leader writes its root into the webhook configurations", { timeout: 60_000 }, async () => {
  const injector = { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'istio-sidecar-injector' } };
  api.store.create({
    ...injector,
    webhooks: [
      {
        name: 'namespace.sidecar-injector.istio.io',
        clientConfig: { service: { name: 'istiod', namespace: 'istio-system', path: '/inject', port: 443 } },
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
      },
    ],
  });
  const a = await replica('istiod-c');
  const b = await replica('istiod-d');
  await until('both replicas serve a certificate from the shared CA', () => a.webhookCaPem() !== undefined && a.webhookCaPem() === b.webhookCaPem());
  const ca = a.webhookCaPem() as string;
  // The caBundle is the mesh root (Secret istio-ca-secret, shared by the replicas), and each
  // replica's serving certificate chains to it for the istiod service name.
  assert.equal(ca, a.caRootPem());
  assert.equal(ca, b.caRootPem());
  await handshake(a.webhookPort, ca);
  await handshake(b.webhookPort, ca);
  await until('caBundle patched', () => {
    const cfg = api.store.get('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration', '', 'istio-sidecar-injector') as
      { webhooks?: Array<{ clientConfig?: { caBundle?: string } }> } | undefined;
    return cfg?.webhooks?.[0]?.clientConfig?.caBundle === Buffer.from(ca).toString('base64');
  });
});
