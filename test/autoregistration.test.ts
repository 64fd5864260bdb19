/**
 * WorkloadGroup auto-registration, as istiod's WorkloadEntry controller: a real ADS stream whose
 * node metadata names `AUTO_REGISTER_GROUP` makes meshd write a WorkloadEntry from the group
 * (against the fake API server, which speaks the real protocol; in memory in folder mode); a
 * Service selecting its labels gains the VM's endpoint in the EDS another client receives; after
 * the disconnect and the grace period the entry and the endpoint are gone.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { exportJWK, generateKeyPair } from 'jose';
import { startMeshd, type MeshdHandle } from '../src/main';
import { identityError } from '../src/autoreg/registrar';
import { autoRegisteredEntryName, workloadEntryFromGroup, type RegisteringProxy, type WorkloadGroupConfig } from '../src/model/workload-group';
import { validateObject } from '../src/model/validate';
import type { ConfigObject } from '../src/model/objects';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient } from './helpers/ads-client';
import { startKubeApiServer, type KubeApiServer } from './helpers/kube-api-server';
import { captureLog, waitFor } from './helpers/kube-testing';
import { closeInOrder } from './helpers/teardown';
import { JWT_AUDIENCE, JWT_ISSUER, mintToken } from './helpers/security-mesh';
import { bearer, tlsChannel } from './helpers/verified-proxy';

const T = { timeout: 60_000 };
const NS = 'vms';
/** A documentation address (TEST-NET-1): carried in config, never dialed. */
const VM_IP = '192.0.2.7';
const CLUSTER = `outbound|8080||vm-app.${NS}.svc.cluster.local`;
const protos = new EnvoyProtos();

const group = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadGroup',
  metadata: { name: 'vm-app', namespace: NS },
  spec: {
    metadata: { labels: { app: 'vm-app', version: 'v1' }, annotations: { team: 'vms' } },
    template: { serviceAccount: 'vm-sa', ports: { http: 8080 }, labels: { app: 'template', tier: 'back' } },
    ...extra,
  },
});
const service = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'vm-app', namespace: NS },
  spec: { selector: { app: 'vm-app' }, clusterIP: '10.96.70.1', ports: [{ name: 'http', port: 8080, targetPort: 8080 }] },
};

const vmNode = (groupName = 'vm-app', ip = VM_IP): { id: string; metadata: Record<string, string> } => ({
  id: `sidecar~${ip}~vm-1.${NS}~${NS}.svc.cluster.local`,
  metadata: { NAMESPACE: NS, AUTO_REGISTER_GROUP: groupName, NETWORK: 'vpc-1', INSTANCE_IPS: ip },
});
const observerNode = { id: `sidecar~10.1.0.9~observer.${NS}~${NS}.svc.cluster.local`, metadata: { NAMESPACE: NS } };

/** The endpoints of the observer's last EDS response for the VM service (one observer at a time). */
const lastSeen: { last?: string[] } = {};

/** The observer's endpoint addresses for the VM service (waits for a response with them). */
async function endpointsSeen(client: AdsClient, want: (addrs: string[]) => boolean, what: string, state: { last?: string[] } = lastSeen): Promise<string[]> {
  // The latest response may already be the one wanted (nothing more is pushed then).
  if (state.last && want(state.last)) return state.last;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    let r;
    try {
      r = await client.next(TypeUrl.Endpoint, 1000);
    } catch {
      continue;
    }
    client.ack(r);
    const cla = r.resources.find((x) => x['cluster_name'] === CLUSTER) as
      { endpoints?: Array<{ lb_endpoints?: Array<{ endpoint?: { address?: { socket_address?: { address?: string } } } }> }> } | undefined;
    if (!cla) continue;
    const last = (cla.endpoints ?? []).flatMap((l) => (l.lb_endpoints ?? []).map((e) => e.endpoint?.address?.socket_address?.address ?? ''));
    state.last = last;
    if (want(last)) return last;
  }
  throw new Error(`timed out waiting for ${what}; last endpoints: ${JSON.stringify(state.last)}`);
}

/** An observer sidecar subscribed to CDS and to the VM service's EDS. */
async function observer(port: number): Promise<AdsClient> {
  lastSeen.last = undefined;
  const c = new AdsClient(protos, `127.0.0.1:${port}`, observerNode);
  const cds = await c.subscribe(TypeUrl.Cluster);
  assert.ok(cds.names.includes(CLUSTER), `the observer knows ${CLUSTER}`);
  c.send({ type_url: TypeUrl.Endpoint, resource_names: [CLUSTER] });
  return c;
}

/** A VM proxy's stream: opened by its first request, which carries the node. */
function connectVm(port: number, node = vmNode()): AdsClient {
  const c = new AdsClient(protos, `127.0.0.1:${port}`, node);
  c.send({ type_url: TypeUrl.Cluster });
  return c;
}

describe('rules', () => {
  const proxy: RegisteringProxy = { id: 'vm', namespace: NS, ips: ['2001:db8::7'], labels: { app: 'from-proxy' }, network: 'n1', locality: 'r/z', readinessProbe: true };
  const cfg: WorkloadGroupConfig = {
    meta: { name: 'g', namespace: NS, labels: {}, annotations: {} },
    apiVersion: 'networking.istio.io/v1beta1',
    spec: { metadata: { labels: { app: 'group', version: 'v1' }, annotations: { a: 'b' } }, template: { labels: { app: 't', tier: 't' }, serviceAccount: 'sa', weight: 3 } },
  };

  test('entry name: group, IP with ":" as "-", network; the last 253 characters', () => {
    assert.equal(autoRegisteredEntryName('g', proxy), 'g-2001-db8--7-n1');
    assert.equal(autoRegisteredEntryName('g', { ...proxy, network: undefined, ips: ['192.0.2.1'] }), 'g-192.0.2.1');
    assert.equal(autoRegisteredEntryName('x'.repeat(260), { ...proxy, network: undefined, ips: ['192.0.2.1'] })?.length, 253);
    assert.equal(autoRegisteredEntryName('g', { ...proxy, ips: [] }), undefined);
  });

  test('entry from the group: labels template < group metadata < proxy; owned by the group', () => {
    const e = workloadEntryFromGroup('g-x', proxy, cfg, 'uid-1');
    assert.deepEqual(e.spec, { labels: { app: 'from-proxy', tier: 't', version: 'v1' }, serviceAccount: 'sa', weight: 3, address: '2001:db8::7', network: 'n1', locality: 'r/z' });
    assert.deepEqual(e.metadata.labels, e.spec.labels);
    assert.deepEqual(e.metadata.annotations, { 'istio.io/autoRegistrationGroup': 'g', a: 'b', 'proxy.istio.io/health-checks-enabled': 'true' });
    assert.deepEqual(e.metadata.ownerReferences, [{ apiVersion: 'networking.istio.io/v1beta1', kind: 'WorkloadGroup', name: 'g', uid: 'uid-1', controller: true }]);
  });

  test('identity: verified, of the namespace and the template service account (ensureProxyCanControlEntry)', () => {
    const v = (namespace: string, serviceAccount: string): Parameters<typeof identityError>[0] => ({
      verified: { namespace, serviceAccount, id: `spiffe://cluster.local/ns/${namespace}/sa/${serviceAccount}` } as never,
    });
    assert.equal(identityError({}, NS, 'sa'), 'registration of WorkloadEntry requires a verified identity');
    assert.equal(identityError(v('other', 'sa'), NS, 'sa'), 'registration of WorkloadEntry namespace mismatch: "other" vs "vms"');
    assert.equal(identityError(v(NS, 'x'), NS, 'sa'), 'registration of WorkloadEntry service account mismatch: "x" vs "sa"');
    assert.equal(identityError(v(NS, 'x'), NS, undefined), undefined);
    assert.equal(identityError(v(NS, 'sa'), NS, 'sa'), undefined);
  });

  test('WorkloadGroup validation: Istio rules with field paths', () => {
    const obj = (spec: Record<string, unknown>): ConfigObject => ({
      kind: 'WorkloadGroup',
      apiVersion: 'networking.istio.io/v1',
      metadata: { name: 'g', namespace: NS, labels: {}, annotations: {} },
      body: { spec },
      origin: { source: 't' },
    });
    const errs = (spec: Record<string, unknown>): string[] => validateObject(obj(spec)).map((e) => `${e.path}: ${e.message}`);
    assert.deepEqual(errs({ template: {} }), []);
    assert.deepEqual(errs({ metadata: { labels: { a: 'b' } } }), ['spec.template: template is required']);
    assert.deepEqual(errs({ template: {}, metadata: { labels: { 'bad key!': 'b' } } }).length, 1);
    assert.deepEqual(errs({ template: {}, probe: { periodSeconds: -1, httpGet: { port: 8080 } } }), ['spec.probe.periodSeconds: periodSeconds must be non-negative']);
    assert.deepEqual(errs({ template: {}, probe: { httpGet: { port: 0, scheme: 'FTP' } } }), [
      'spec.probe.httpGet.port: port number 0 must be in the range 1..65535',
      'spec.probe.httpGet.scheme: httpGet.scheme must be one of "http", "https"',
    ]);
    assert.deepEqual(errs({ template: {}, probe: { exec: { command: [] } } }), ['spec.probe.exec.command: exec.command is required']);
    assert.deepEqual(errs({ template: {}, probe: { periodSeconds: 5 } }), ['spec.probe: unknown health check method <nil> (set one of httpGet, tcpSocket, exec, grpc)']);
    assert.deepEqual(errs({ template: { adress: '1.2.3.4' } }), ['spec.template.adress: unknown field "adress" (did you mean "address"?)']);
  });
});

describe('Kubernetes mode: meshd writes the WorkloadEntry through the API server', () => {
  let api: KubeApiServer | undefined;
  let meshd: MeshdHandle | undefined;
  const clients: AdsClient[] = [];
  after(async () => {
    await closeInOrder([...clients.map((c) => () => c.close()), () => meshd?.close(), () => api?.close()]);
  });

  test('connect → WorkloadEntry from the group, endpoint in EDS; disconnect → gone after the grace period', T, async () => {
    api = await startKubeApiServer();
    api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    api.store.create(service);
    const g = api.store.create(group());
    const logs = captureLog('info');
    meshd = await startMeshd({
      kubeconfig: api.kubeconfigPath,
      xdsPort: 0,
      debugPort: 0,
      monitoringPort: 0,
      podName: 'meshd-0',
      workloadEntryGracePeriodMs: 300,
      // Plaintext streams carry no verified identity; the identity rule is covered above.
      validateWorkloadEntryIdentity: false,
      logger: logs.log,
      kube: { backoffInitialMs: 20, backoffMaxMs: 200 },
    });
    await meshd.whenReady();
    const port = meshd.xdsPort;
    const obs = await observer(port);
    clients.push(obs);
    assert.deepEqual(await endpointsSeen(obs, (a) => a.length === 0, 'no endpoint before the VM connects'), []);

    const vm = connectVm(port);
    clients.push(vm);
    const name = `vm-app-${VM_IP}-vpc-1`;
    const we = await waitFor(() => api?.store.get('networking.istio.io/v1', 'WorkloadEntry', NS, name), 'the WorkloadEntry written');
    const meta = we['metadata'] as { labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: unknown[] };
    assert.deepEqual(we['spec'], { serviceAccount: 'vm-sa', ports: { http: 8080 }, labels: { app: 'vm-app', tier: 'back', version: 'v1' }, address: VM_IP, network: 'vpc-1' });
    assert.deepEqual(meta.labels, { app: 'vm-app', tier: 'back', version: 'v1' });
    const ann = meta.annotations ?? {};
    assert.equal(ann['istio.io/autoRegistrationGroup'], 'vm-app');
    assert.equal(ann['team'], 'vms', "the group's metadata annotations");
    assert.equal(ann['istio.io/workloadController'], 'meshd-0');
    assert.ok(!Number.isNaN(Date.parse(ann['istio.io/connectedAt'] ?? '')), 'connectedAt is a time');
    assert.equal(ann['istio.io/disconnectedAt'], undefined);
    const uid = (g['metadata'] as { uid: string }).uid;
    assert.deepEqual(meta.ownerReferences, [{ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadGroup', name: 'vm-app', uid, controller: true }]);

    assert.deepEqual(await endpointsSeen(obs, (a) => a.includes(VM_IP), 'the VM endpoint in EDS'), [VM_IP]);

    vm.close();
    await waitFor(
      () =>
        (api?.store.get('networking.istio.io/v1', 'WorkloadEntry', NS, name)?.['metadata'] as { annotations?: Record<string, string> } | undefined)?.annotations?.[
          'istio.io/disconnectedAt'
        ],
      'marked disconnected',
    );
    await waitFor(() => api?.store.get('networking.istio.io/v1', 'WorkloadEntry', NS, name) === undefined, 'deleted after the grace period');
    assert.deepEqual(await endpointsSeen(obs, (a) => a.length === 0, 'the endpoint gone'), []);
    assert.ok(logs.records().some((r) => String(r['msg']).includes(`cleaned up auto-registered WorkloadEntry ${NS}/${name}`)));
  });

  test('a reconnect within the grace period keeps the entry; a missing group refuses the stream', T, async () => {
    assert.ok(meshd && api);
    const port = meshd.xdsPort;
    const name = `vm-app-${VM_IP}-vpc-1`;
    const first = connectVm(port);
    clients.push(first);
    await waitFor(() => api?.store.get('networking.istio.io/v1', 'WorkloadEntry', NS, name), 'registered');
    first.close();
    await waitFor(
      () =>
        (api?.store.get('networking.istio.io/v1', 'WorkloadEntry', NS, name)?.['metadata'] as { annotations?: Record<string, string> })?.annotations?.['istio.io/disconnectedAt'],
      'marked disconnected',
    );
    const again = connectVm(port);
    clients.push(again);
    await waitFor(
      () => (api?.store.get('networking.istio.io/v1', 'WorkloadEntry', NS, name)?.['metadata'] as { annotations?: Record<string, string> })?.annotations?.['istio.io/connectedAt'],
      'connected again',
    );
    await new Promise((r) => setTimeout(r, 800));
    const ann = (api.store.get('networking.istio.io/v1', 'WorkloadEntry', NS, name)?.['metadata'] as { annotations?: Record<string, string> }).annotations ?? {};
    assert.equal(ann['istio.io/disconnectedAt'], undefined, 'still registered past the grace period');
    again.close();

    const stray = connectVm(port, vmNode('no-such-group', '192.0.2.8'));
    clients.push(stray);
    await waitFor(() => stray.ended, 'the stream refused');
    assert.equal(stray.error?.code, grpc.status.FAILED_PRECONDITION);
    assert.match(stray.error?.details ?? '', /cannot find WorkloadGroup vms\/no-such-group/);
  });
});

describe('folder mode: the entry is held in memory', () => {
  let meshd: MeshdHandle | undefined;
  const clients: AdsClient[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-autoreg-'));
  after(async () => {
    await closeInOrder([...clients.map((c) => () => c.close()), () => meshd?.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('connect → endpoint; disconnect → gone after the grace period', T, async () => {
    fs.writeFileSync(path.join(dir, 'vm.yaml'), [service, group()].map((o) => JSON.stringify(o)).join('\n---\n'));
    meshd = await startMeshd({
      configDir: dir,
      xdsPort: 0,
      debugPort: 0,
      monitoringPort: 0,
      workloadEntryGracePeriodMs: 200,
      validateWorkloadEntryIdentity: false,
      logger: captureLog('warn').log,
    });
    await meshd.whenReady();
    const obs = await observer(meshd.xdsPort);
    clients.push(obs);
    const vm = connectVm(meshd.xdsPort);
    clients.push(vm);
    assert.deepEqual(await endpointsSeen(obs, (a) => a.includes(VM_IP), 'the VM endpoint'), [VM_IP]);
    const snap = meshd.snapshot();
    assert.ok(snap?.workloadGroups.has(`${NS}/vm-app`));
    vm.close();
    assert.deepEqual(await endpointsSeen(obs, (a) => a.length === 0, 'the endpoint gone'), []);
  });
});

describe('identity: a verified identity of the group namespace and template service account registers (the default)', () => {
  let meshd: MeshdHandle | undefined;
  const clients: AdsClient[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-autoreg-id-'));
  after(async () => {
    await closeInOrder([...clients.map((c) => () => c.close()), () => meshd?.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('TLS with a token of vms/vm-sa registers; another service account and plaintext are refused', T, async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
    fs.mkdirSync(path.join(dir, 'config'));
    fs.writeFileSync(path.join(dir, 'config', 'vm.yaml'), [service, group()].map((o) => JSON.stringify(o)).join('\n---\n'));
    meshd = await startMeshd({
      configDir: path.join(dir, 'config'),
      xdsPort: 0,
      secureXdsPort: 0,
      debugPort: 0,
      monitoringPort: 0,
      logger: captureLog('warn').log,
      jwks: path.join(dir, 'jwks.json'),
      jwtIssuer: JWT_ISSUER,
      jwtAudiences: [JWT_AUDIENCE],
    });
    await meshd.caReady();
    const m = meshd;
    const tlsVm = async (sa: string, ip: string): Promise<AdsClient> => {
      const c = new AdsClient(protos, `127.0.0.1:${m.secureXdsPort}`, vmNode('vm-app', ip), 'full', {
        ...tlsChannel(m.caRootPem()),
        metadata: bearer(await mintToken(privateKey, sa, NS)),
      });
      clients.push(c);
      c.send({ type_url: TypeUrl.Cluster });
      return c;
    };
    const wrong = await tlsVm('other', '192.0.2.9');
    await waitFor(() => wrong.ended, 'another service account refused');
    assert.equal(wrong.error?.code, grpc.status.FAILED_PRECONDITION);
    assert.match(wrong.error?.details ?? '', /registration of WorkloadEntry service account mismatch: "other" vs "vm-sa"/);
    const plain = connectVm(m.xdsPort, vmNode('vm-app', '192.0.2.10'));
    clients.push(plain);
    await waitFor(() => plain.ended, 'plaintext refused');
    assert.match(plain.error?.details ?? '', /registration of WorkloadEntry requires a verified identity/);

    const obs = await observer(m.xdsPort);
    clients.push(obs);
    await tlsVm('vm-sa', VM_IP);
    assert.deepEqual(await endpointsSeen(obs, (a) => a.includes(VM_IP), 'the verified VM registered'), [VM_IP]);
  });
});
