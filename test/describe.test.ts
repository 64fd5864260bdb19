/**
 * `meshctl x describe pod|service`: istioctl's output on the bookinfo example (from files and
 * from the fake Kubernetes API server, which must agree), and agreement with what a running
 * meshd on the same cluster serves the pod's proxy (routes and RBAC policy names).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import * as YAML from 'yaml';
import { readFiles } from '../src/analyze/read';
import { DescribeContext, describePod, describeService } from '../src/describe';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient } from './helpers/ads-client';
import { type KubeApiServer, startKubeApiServer } from './helpers/kube-api-server';

const ROOT = path.join(__dirname, '..');
const MESHCTL = path.join(ROOT, 'src', 'cli', 'meshctl.ts');
const EX = path.join(ROOT, 'examples');
const protos = new EnvoyProtos();

/** bookinfo, its ingress gateway, step 2 of the walkthrough (jason → v2) and a DENY policy on reviews. */
let tmp = '';
let inputs: string[] = [];
const POLICY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-ratings-delete, namespace: default }
spec:
  selector: { matchLabels: { app: reviews } }
  action: DENY
  rules:
  - to: [{ operation: { methods: [DELETE] } }]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: STRICT } }
`;

let api: KubeApiServer;
before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshctl-describe-'));
  fs.writeFileSync(path.join(tmp, 'policy.yaml'), POLICY);
  inputs = [path.join(EX, 'bookinfo'), path.join(EX, 'bookinfo-gateway'), path.join(EX, 'traffic-management', '2-request-routing-jason'), path.join(tmp, 'policy.yaml')];
  api = await startKubeApiServer();
  // The same objects through the API, as `kubectl apply -f` of each folder would leave them.
  for (const f of readFiles(inputs).files) {
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(f, 'utf8'))) {
      const obj = doc.toJS() as { kind?: string; metadata?: { name?: string; namespace?: string } } | null;
      if (!obj?.kind) continue;
      const existing = api.store
        .list(String((obj as { apiVersion?: string }).apiVersion), obj.kind, obj.metadata?.namespace)
        .find((o) => (o['metadata'] as { name?: string }).name === obj.metadata?.name);
      if (existing) api.store.update({ ...obj, metadata: { ...obj.metadata, resourceVersion: (existing['metadata'] as { resourceVersion?: string }).resourceVersion } });
      else api.store.create(obj);
    }
  }
});
after(async () => {
  await api.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function fromFiles(): DescribeContext {
  return new DescribeContext(readFiles(inputs).objects, { domain: 'cluster.local', namespace: 'default', revision: 'default' });
}

const REVIEWS_V1 = `Pod: reviews-v1
   Pod Revision: default
   Pod Ports: 9080 (reviews)
--------------------
Service: reviews
   Port: http 9080/HTTP targets pod port 9080
DestinationRule: reviews for "reviews"
   Matching subsets: v1
      (Non-matching subsets v2,v3)
   No Traffic Policy
VirtualService: reviews
   1 additional destination(s) that will not reach this pod
      Route to non-matching subset v2 for (Match:  when headers are end-user=jason)
RBAC policies: ns[default]-policy[no-ratings-delete]-rule[0]
--------------------
Effective PeerAuthentication:
   Workload mTLS mode: STRICT
Applied PeerAuthentication:
   default.istio-system
`;

test('describe pod prints what istioctl prints: service ports, DestinationRule subsets, VirtualService rules, RBAC, mTLS', () => {
  assert.equal(describePod(fromFiles(), 'default', 'reviews-v1'), REVIEWS_V1);
  const v2 = describePod(fromFiles(), 'default', 'reviews-v2');
  assert.match(v2, /^ {3}Matching subsets: v2\n {6}\(Non-matching subsets v1,v3\)\n/m);
  assert.match(v2, /^VirtualService: reviews\n {3}Match: {2}when headers are end-user=jason\n {3}1 additional destination\(s\) that will not reach this pod\n/m);
});

test('describe pod shows the ingress gateway exposure and the gateway VirtualService', () => {
  const out = describePod(fromFiles(), 'default', 'productpage-v1');
  assert.ok(
    out.endsWith(
      '--------------------\nExposed on Ingress Gateway http://unknown\nVirtualService: bookinfo\n   Match: /productpage, Match: /static*, Match: /login, Match: /logout, Match: /api/v1/products*\n',
    ),
    out,
  );
  assert.match(
    out,
    /^Service: productpage\n {3}Port: http 9080\/HTTP targets pod port 9080\nDestinationRule: productpage for "productpage"\n {3}Matching subsets: v1\n {3}No Traffic Policy\nVirtualService: productpage\n {3}1 HTTP route\(s\)\n/m,
  );
});

test('describe service uses every pod of the service for subsets; an unknown name is an error', () => {
  const out = describeService(fromFiles(), 'default', 'reviews');
  assert.match(
    out,
    /^Service: reviews\n {3}Port: http 9080\/HTTP targets pod port 9080\nDestinationRule: reviews for "reviews"\n {3}Matching subsets: v1,v2,v3\n {3}No Traffic Policy\nVirtualService: reviews\n {3}Match: {2}when headers are end-user=jason\n/,
  );
  assert.throws(() => describePod(fromFiles(), 'default', 'nope'), /pods "nope" not found/);
});

function meshctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MESHCTL, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1, stdout, stderr });
    });
  });
}

test('meshctl x describe reads the cluster (fake API server) and prints the same as from the files', async () => {
  const r = await meshctl(['x', 'describe', 'pod', 'reviews-v1', '--kubeconfig', api.kubeconfigPath]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, REVIEWS_V1);
  const f = await meshctl(['x', 'describe', 'pod', 'reviews-v1.default', ...inputs.flatMap((i) => ['-f', i])]);
  assert.equal(f.stdout, REVIEWS_V1);
  const missing = await meshctl(['x', 'describe', 'svc', 'nope', '--kubeconfig', api.kubeconfigPath]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, 'Error: services "nope" not found\n');
});

test('what describe says matches what a running meshd on the same cluster serves the pod', async (t) => {
  const meshd: MeshdHandle = await startMeshd({ kubeconfig: api.kubeconfigPath, xdsPort: 0, debugPort: 0, monitoringPort: 0, logger: pino({ level: 'silent' }) });
  t.after(() => meshd.close());
  await meshd.whenReady();
  const client = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, {
    id: 'sidecar~10.244.0.12~reviews-v1.default~default.svc.cluster.local',
    metadata: { NAMESPACE: 'default', LABELS: JSON.stringify({ app: 'reviews', version: 'v1' }) },
  });
  t.after(() => client.close());
  await client.subscribe(TypeUrl.Cluster);
  const lds = await client.subscribe(TypeUrl.Listener);
  const rds = await client.subscribe(TypeUrl.Route, ['9080']);
  // RBAC: the policy names describe prints are the ones in the pod's inbound listener.
  const inbound = JSON.stringify(lds.resources.find((l) => l['name'] === 'virtualInbound'));
  const served = [...new Set(inbound.match(/ns\[[^\]]+\]-policy\[[^\]]+\]-rule\[\d+\]/g) ?? [])].sort();
  const printed = /^RBAC policies: (.*)$/m
    .exec(describePod(fromFiles(), 'default', 'reviews-v1'))?.[1]
    ?.split(', ')
    .sort();
  assert.deepEqual(printed, served);
  assert.ok(served.length > 0);
  // Routes: jason's header goes to subset v2 (the pod reviews-v2 describe says it reaches), the rest to v1.
  const vh = (
    rds.resources[0]?.['virtual_hosts'] as Array<{ domains: string[]; routes: Array<{ match: { headers?: Array<{ name: string }> }; route?: { cluster?: string } }> }>
  ).find((v) => v.domains.includes('reviews.default.svc.cluster.local'));
  assert.ok(vh);
  assert.deepEqual(
    vh.routes.map((r) => [r.match.headers?.map((h) => h.name) ?? [], r.route?.cluster]),
    [
      [['end-user'], 'outbound|9080|v2|reviews.default.svc.cluster.local'],
      [[], 'outbound|9080|v1|reviews.default.svc.cluster.local'],
    ],
  );
  // And mTLS: STRICT inbound (describe's "Workload mTLS mode: STRICT") leaves no plaintext chain.
  assert.match(inbound, /"transport_protocol":"tls"/);
  assert.ok(!/"transport_protocol":"raw_buffer"/.test(inbound), 'no plaintext inbound chain under STRICT');
});
