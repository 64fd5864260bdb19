/**
 * `meshd bootstrap`: the Envoy bootstrap for an injected pod, made from the environment the
 * injection template gives istio-proxy (resolved as the kubelet would), checked against Envoy's
 * Bootstrap proto and its validate.rules, and read back by meshd's own proxy model.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, test } from 'node:test';
import type * as protobuf from 'protobufjs';
import { parse as parseYaml } from 'yaml';
import { buildBootstrap, parsePodInfoLabels, SDS_UDS_PATH } from '../src/cli/bootstrap';
import { parseProxy, type ProxyMetadata } from '../src/model/proxy';
import { EnvoyProtos, loadEnvoyRoot } from '../src/xds/protos';
import { ResourceValidator } from '../src/xds/validate-rules';
import { message } from './helpers/proto-json';

const ROOT = path.join(__dirname, '..');
const BOOTSTRAP = 'type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap';
type Obj = Record<string, unknown>;

/** The value at a dotted path (`a.b.0.c`) of a JSON value. */
function dig(v: unknown, p: string): unknown {
  let cur: unknown = v;
  for (const k of p.split('.')) cur = cur !== null && typeof cur === 'object' ? (cur as Obj)[k] : undefined;
  return cur;
}
const list = (v: unknown, p: string): Obj[] => (dig(v, p) as Obj[] | undefined) ?? [];

let root: protobuf.Root;
let protos: EnvoyProtos;
let validator: ResourceValidator;

before(() => {
  root = loadEnvoyRoot();
  root.loadSync('envoy/config/bootstrap/v3/bootstrap.proto', { keepCase: true });
  root.resolveAll();
  protos = new EnvoyProtos(root);
  validator = new ResourceValidator(protos);
});

/** Proto3 JSON → protobufjs form, checked by validate.rules; returns the violations. */
function check(bootstrap: unknown): string[] {
  const obj = message(root, root.lookupType('envoy.config.bootstrap.v3.Bootstrap'), bootstrap) as object;
  return validator.validate(BOOTSTRAP, obj).map((v) => `${v.path}: ${v.message}`);
}

/** istio-proxy's environment in the golden injected pod, resolved as the kubelet would. */
function injectedEnv(): { env: Record<string, string>; labels: Record<string, string> } {
  const pod = parseYaml(fs.readFileSync(path.join(ROOT, 'test', 'golden-inject', 'webhook', 'pod-from-deployment.injected.yaml'), 'utf8')) as unknown;
  const fields: Record<string, string> = {
    'metadata.name': 'reviews-v2-6f8b7c9d4d-x7k2p',
    'metadata.namespace': String(dig(pod, 'metadata.namespace')),
    'status.podIP': '10.244.1.17',
    'status.hostIP': '172.18.0.2',
    'spec.serviceAccountName': String(dig(pod, 'spec.serviceAccountName')),
    'spec.nodeName': 'kind-worker',
  };
  const proxy = list(pod, 'spec.containers').find((c) => c['name'] === 'istio-proxy');
  const env: Record<string, string> = {};
  for (const e of list(proxy, 'env')) {
    const name = String(e['name']);
    const fieldPath = dig(e, 'valueFrom.fieldRef.fieldPath');
    if (typeof e['value'] === 'string') env[name] = e['value'];
    else if (typeof fieldPath === 'string') env[name] = fields[fieldPath] ?? '';
  }
  return { env, labels: dig(pod, 'metadata.labels') as Record<string, string> };
}

test("the bootstrap of an injected pod passes Envoy's Bootstrap proto and validate.rules", () => {
  const { env, labels } = injectedEnv();
  const r = buildBootstrap({ env, labels });
  assert.deepEqual(r.errors, []);
  assert.deepEqual(check(r.bootstrap), []);
  // Encodes to protobuf and back with the node intact.
  const obj = message(root, root.lookupType('envoy.config.bootstrap.v3.Bootstrap'), r.bootstrap) as object;
  const back = protos.decode(BOOTSTRAP, protos.encode(BOOTSTRAP, obj));
  assert.equal(dig(back, 'node.id'), 'sidecar~10.244.1.17~reviews-v2-6f8b7c9d4d-x7k2p.default~default.svc.cluster.local');
  assert.equal(list(back, 'static_resources.clusters').length, 3);
});

test('node ID and metadata are what meshd reads a sidecar from', () => {
  const { env, labels } = injectedEnv();
  const b = buildBootstrap({ env, labels }).bootstrap;
  assert.equal(dig(b, 'node.cluster'), 'reviews.default');
  const proxy = parseProxy(String(dig(b, 'node.id')), dig(b, 'node.metadata') as ProxyMetadata);
  assert.equal(proxy.type, 'sidecar');
  assert.equal(proxy.podName, 'reviews-v2-6f8b7c9d4d-x7k2p');
  assert.equal(proxy.namespace, 'default');
  assert.deepEqual(proxy.ips, ['10.244.1.17']);
  assert.equal(proxy.serviceAccount, 'bookinfo-reviews');
  assert.equal(proxy.clusterId, 'Kubernetes');
  assert.equal(proxy.istioVersion, '1.24.0');
  assert.equal(proxy.labels['version'], 'v2');
  assert.equal(proxy.generator, 'envoy');
  assert.equal(dig(b, 'node.metadata.WORKLOAD_NAME'), 'reviews-v2');
  assert.equal(dig(b, 'node.metadata.MESH_ID'), 'cluster.local');
  assert.deepEqual(dig(b, 'node.metadata.PROXY_CONFIG'), { discoveryAddress: 'istiod.istio-system.svc:15012' });
});

test("ADS goes to xds-grpc at the discovery address over TLS with the agent's SDS certificates", () => {
  const { env, labels } = injectedEnv();
  const b = buildBootstrap({ env, labels }).bootstrap;
  assert.deepEqual(dig(b, 'dynamic_resources.ads_config.grpc_services'), [{ envoy_grpc: { cluster_name: 'xds-grpc' } }]);
  assert.deepEqual(dig(b, 'dynamic_resources.cds_config'), { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' });
  const clusters = Object.fromEntries(list(b, 'static_resources.clusters').map((c) => [c['name'], c]));
  const xds = clusters['xds-grpc'];
  const endpoint = 'load_assignment.endpoints.0.lb_endpoints.0.endpoint.address';
  assert.equal(dig(xds, 'type'), 'STRICT_DNS');
  assert.deepEqual(dig(xds, endpoint), { socket_address: { address: 'istiod.istio-system.svc', port_value: 15012 } });
  const tls = dig(xds, 'transport_socket.typed_config');
  assert.equal(dig(tls, 'sni'), 'istiod.istio-system.svc');
  assert.equal(dig(tls, 'common_tls_context.tls_certificate_sds_secret_configs.0.name'), 'default');
  assert.equal(dig(tls, 'common_tls_context.combined_validation_context.validation_context_sds_secret_config.name'), 'ROOTCA');
  assert.deepEqual(dig(clusters['sds-grpc'], endpoint), { pipe: { path: SDS_UDS_PATH } });
  assert.equal(SDS_UDS_PATH, './var/run/secrets/workload-spiffe-uds/socket');
  assert.deepEqual(dig(b, 'admin.address'), { socket_address: { address: '127.0.0.1', port_value: 15000 } });
  assert.deepEqual(
    list(b, 'static_resources.listeners').map((l) => dig(l, 'address.socket_address.port_value')),
    [15090, 15021],
  );
});

test('plaintext on 15010 to an IP: a STATIC cluster without TLS; still valid', () => {
  const { env, labels } = injectedEnv();
  const b = buildBootstrap({ env: { ...env, PROXY_CONFIG: '{"discoveryAddress":"10.96.0.10:15010"}' }, labels, proxyType: 'router' }).bootstrap;
  assert.deepEqual(check(b), []);
  const xds = list(b, 'static_resources.clusters').find((c) => c['name'] === 'xds-grpc');
  assert.equal(dig(xds, 'type'), 'STATIC');
  assert.equal(dig(xds, 'transport_socket'), undefined);
  assert.match(String(dig(b, 'node.id')), /^router~/);
});

test('the proto check bites: a misspelt field and an out-of-range port are reported', () => {
  const { env, labels } = injectedEnv();
  const broken = structuredClone(buildBootstrap({ env, labels }).bootstrap);
  (dig(broken, 'admin.address.socket_address') as Obj)['port_value'] = 70000;
  (dig(broken, 'static_resources.clusters.0') as Obj)['conect_timeout'] = '1s';
  const violations = check(broken);
  assert.ok(
    violations.some((v) => v.includes('port_value')),
    violations.join('\n'),
  );
  assert.ok(
    violations.some((v) => v.includes('conect_timeout')),
    violations.join('\n'),
  );
});

test('missing or malformed variables are reported, not guessed', () => {
  const r = buildBootstrap({ env: { POD_NAME: 'p', INSTANCE_IP: 'not-an-ip', PROXY_CONFIG: '{"discoveryAddress":"nohost"}' } });
  assert.equal(r.bootstrap, undefined);
  assert.ok(
    r.errors.some((e) => e.startsWith('POD_NAMESPACE is not set')),
    r.errors.join('\n'),
  );
  assert.ok(r.errors.some((e) => e.includes('"not-an-ip" is not an IP address')));
  assert.ok(r.errors.some((e) => e.includes('"nohost" is not host:port')));
});

test('the downward API labels file is read as the kubelet writes it', () => {
  assert.deepEqual(parsePodInfoLabels('app="reviews"\nversion="v2"\nnote="a \\"quoted\\" value"\n'), { app: 'reviews', version: 'v2', note: 'a "quoted" value' });
});

test('meshd bootstrap prints the same bootstrap from its environment and labels file', () => {
  const { env, labels } = injectedEnv();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-bootstrap-'));
  try {
    const labelsFile = path.join(dir, 'labels');
    fs.writeFileSync(
      labelsFile,
      Object.entries(labels)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join('\n'),
    );
    const run = (extra: Record<string, string>, args: string[]): ReturnType<typeof spawnSync> =>
      spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), 'bootstrap', ...args], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 30_000,
        env: { PATH: process.env['PATH'] ?? '', ...extra },
      });
    const ok = run(env, ['--labels-file', labelsFile]);
    assert.equal(ok.status, 0, String(ok.stderr));
    assert.deepEqual(JSON.parse(String(ok.stdout)), buildBootstrap({ env: { PATH: process.env['PATH'] ?? '', ...env }, labels }).bootstrap);
    const bad = run({}, ['--labels-file', labelsFile]);
    assert.equal(bad.status, 1);
    assert.match(String(bad.stderr), /POD_NAME is not set/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
