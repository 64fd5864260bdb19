/**
 * The admission webhooks over real HTTPS: the served certificate, issued by a real meshd CA,
 * verified with that CA's root; injected pods compared with goldens (the returned JSONPatch applied to the
 * input), which namespaces and pods are injected, Istio config rejected with the same messages
 * as `meshd validate`, and garbage answered 400 without taking the server down.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { parse as parseYaml, stringify } from 'yaml';
import { validateFiles } from '../src/cli/validate';
import { applyPatch, type Labels, type PatchOp, type ProxyConfigSet } from '../src/inject';
import { buildProxyConfigs } from '../src/model/proxy-config';
import { loadText } from '../src/sources/file-source';
import { checkObject } from '../src/model/validate';
import { MeshdAuthority } from '../src/ca/authority';
import { FolderRootStore } from '../src/ca/root-store';
import type { ServingCertificate } from '../src/ca/tls-server';
import { followCertificates, startWebhookServer, webhookServingCertificate, type WebhookServerHandle } from '../src/webhook/server';

const GOLDEN = path.join(__dirname, 'golden-inject', 'webhook');
const PROXY_CONFIG_GOLDEN = path.join(__dirname, 'golden-inject', 'proxyconfig');
const update = process.env.UPDATE_GOLDEN === '1';
const SERVICE_NAME = 'istiod.istio-system.svc';

const NAMESPACES: Record<string, Labels> = {
  default: { 'istio-injection': 'enabled' },
  enabled: { 'istio-injection': 'enabled' },
  off: { 'istio-injection': 'disabled' },
  plain: { team: 'a' },
  rev: { 'istio.io/rev': 'default' },
  canary: { 'istio.io/rev': 'canary' },
  'kube-system': { 'istio-injection': 'enabled' },
};

let server: WebhookServerHandle;
/** The ProxyConfig objects the webhook sees (as meshd passes those of its current snapshot). */
let proxyConfigs: ProxyConfigSet | undefined;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-webhook-'));
const quiet = pino({ level: 'silent' });
const authorities: MeshdAuthority[] = [];
const issuers: ServingCertificate[] = [];
/** The root that the served certificate chains to (the webhook configurations' caBundle). */
let rootPem: string;

/** A self-signed meshd CA in its own folder. */
async function authority(name: string): Promise<MeshdAuthority> {
  const a = await MeshdAuthority.start({ mode: 'self-signed', store: new FolderRootStore(path.join(tmp, name)), log: quiet, checkIntervalMs: 0 });
  authorities.push(a);
  return a;
}

/** The webhook certificate issuer for istiod's names in istio-system, started (first certificate issued). */
async function issuer(ca: MeshdAuthority, customHosts: readonly string[] = []): Promise<ServingCertificate> {
  const i = webhookServingCertificate({ ca, namespace: 'istio-system', domain: 'cluster.local', customHosts, log: quiet });
  issuers.push(i);
  await i.start();
  return i;
}

/** Serves `i`'s certificates on `s`; resolves (with the function that stops) once the first is served. */
function serveFrom(i: ServingCertificate, s: WebhookServerHandle): Promise<() => void> {
  return new Promise((resolve) => {
    let first = true;
    const stop = followCertificates(i, (c) => {
      s.setCertificate(c);
      if (first) resolve(stop);
      first = false;
    });
  });
}

before(async () => {
  const ca = await authority('ca');
  rootPem = ca.rootBundlePem();
  server = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    log: quiet,
    validate: checkObject,
    namespaceLabels: (ns) => NAMESPACES[ns],
    proxyConfigs: () => proxyConfigs,
    bodyLimit: 256 * 1024,
  });
  await serveFrom(await issuer(ca), server);
});
after(async () => {
  await server?.close();
  for (const i of issuers) i.close();
  for (const a of authorities) a.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Reply {
  status: number;
  body: string;
  json: Record<string, unknown>;
}

function post(urlPath: string, body: string, o: { ca?: string | null; servername?: string; contentType?: string; method?: string; port?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: o.port ?? server.port,
        path: urlPath,
        method: o.method ?? 'POST',
        servername: o.servername ?? SERVICE_NAME,
        ...(o.ca === null ? {} : { ca: o.ca ?? rootPem }),
        agent: false,
        timeout: 10_000,
        headers: { 'content-type': o.contentType ?? 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, body: text, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

let uids = 0;
function reviewOf(object: unknown, o: { namespace?: string; operation?: string; kind?: string; group?: string; apiVersion?: string } = {}): string {
  return JSON.stringify({
    apiVersion: o.apiVersion ?? 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `uid-${++uids}`,
      kind: { group: o.group ?? '', version: 'v1', kind: o.kind ?? 'Pod' },
      resource: { group: o.group ?? '', version: 'v1', resource: 'pods' },
      namespace: o.namespace ?? 'default',
      operation: o.operation ?? 'CREATE',
      object,
    },
  });
}

interface Response {
  uid: string;
  allowed: boolean;
  patchType?: string;
  patch?: string;
  warnings?: string[];
  status?: { code: number; reason: string; message: string; details?: { causes: Array<{ field: string; message: string }> } };
}

async function admit(urlPath: string, body: string): Promise<Response> {
  const r = await post(urlPath, body);
  assert.equal(r.status, 200, r.body);
  assert.equal(r.json['kind'], 'AdmissionReview');
  const resp = r.json['response'] as Response;
  assert.equal(resp.uid, (JSON.parse(body) as { request: { uid: string } }).request.uid, 'the response carries the request uid');
  return resp;
}

function patchOf(resp: Response): PatchOp[] {
  assert.equal(resp.patchType, 'JSONPatch');
  return JSON.parse(Buffer.from(resp.patch ?? '', 'base64').toString()) as PatchOp[];
}

function pod(o: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string>; hostNetwork?: boolean } = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: o.name ?? 'p', labels: o.labels ?? { app: 'p' }, ...(o.annotations ? { annotations: o.annotations } : {}) },
    spec: { ...(o.hostNetwork ? { hostNetwork: true } : {}), containers: [{ name: 'app', image: 'example.com/app:1' }] },
  };
}

describe('TLS', () => {
  test("the serving certificate, issued by the mesh CA, verifies with the CA's root for every istiod service name", async () => {
    for (const servername of [SERVICE_NAME, `${SERVICE_NAME}.cluster.local`, 'istiod.istio-system', 'istiod']) {
      const r = await post('/ready', '', { servername, method: 'GET' });
      assert.equal(r.status, 200, servername);
    }
    assert.equal(server.hasCertificate(), true);
  });

  test('a client that does not trust the root, or expects another name, refuses the connection', async () => {
    await assert.rejects(post('/ready', '', { ca: null, method: 'GET' }), /self[- ]signed|unable to (get|verify)/i);
    await assert.rejects(post('/ready', '', { servername: 'example.com', method: 'GET' }), /does not match|altnames/i);
  });

  test('a replaced certificate is served to new connections, and only its root verifies it', async () => {
    const other = await authority('other');
    const stop = await serveFrom(await issuer(other), server);
    try {
      assert.equal((await post('/ready', '', { method: 'GET', ca: other.rootBundlePem() })).status, 200);
      await assert.rejects(post('/ready', '', { method: 'GET', ca: rootPem }), /unable to (get|verify)|self[- ]signed|signature failure/i);
    } finally {
      stop();
      // Back to the first CA's certificate for the tests that follow.
      (await serveFrom(issuers[0] as ServingCertificate, server))();
    }
    assert.equal((await post('/ready', '', { method: 'GET' })).status, 200);
  });

  test('before its first certificate the server refuses handshakes and keeps running; then it serves', async () => {
    const bare = await startWebhookServer({ host: '127.0.0.1', port: 0, log: quiet, validate: checkObject });
    try {
      assert.equal(bare.hasCertificate(), false);
      await assert.rejects(post('/ready', '', { method: 'GET', port: bare.port }), /handshake|alert|socket hang up|ECONNRESET/i);
      (await serveFrom(issuers[0] as ServingCertificate, bare))();
      assert.equal((await post('/ready', '', { method: 'GET', port: bare.port })).status, 200);
    } finally {
      await bare.close();
    }
  });
});

describe('injection goldens', () => {
  const cases = fs.readdirSync(GOLDEN).filter((f) => f.endsWith('.yaml') && !f.endsWith('.injected.yaml'));
  assert.ok(cases.length >= 3, 'golden cases exist');
  for (const file of cases) {
    test(file, async () => {
      const input = parseYaml(fs.readFileSync(path.join(GOLDEN, file), 'utf8')) as Record<string, unknown>;
      const resp = await admit('/inject', reviewOf(input, { namespace: 'default' }));
      assert.equal(resp.allowed, true);
      const patched = applyPatch(input, patchOf(resp));
      const actual = stringify(patched, { sortMapEntries: true, lineWidth: 0 });
      const expectedFile = path.join(GOLDEN, file.replace(/\.yaml$/, '.injected.yaml'));
      if (update) fs.writeFileSync(expectedFile, actual);
      assert.ok(fs.existsSync(expectedFile), `${path.basename(expectedFile)} is missing; run with UPDATE_GOLDEN=1 and review it`);
      assert.equal(actual, fs.readFileSync(expectedFile, 'utf8'), `${path.basename(expectedFile)} differs; if intended, UPDATE_GOLDEN=1 and review the diff`);
    });
  }

  test('the patch only adds: the pod as sent is kept, istio-init first and istio-proxy last', async () => {
    const input = parseYaml(fs.readFileSync(path.join(GOLDEN, 'pod-from-deployment.yaml'), 'utf8')) as Record<string, unknown>;
    const ops = patchOf(await admit('/inject', reviewOf(input)));
    assert.ok(
      ops.every((o) => o.op === 'add'),
      JSON.stringify(ops.map((o) => `${o.op} ${o.path}`)),
    );
    const paths = ops.map((o) => o.path);
    assert.ok(paths.includes('/spec/initContainers/0'));
    assert.ok(paths.includes('/spec/containers/2'));
    assert.ok(paths.includes('/metadata/annotations/sidecar.istio.io~1status'), 'slashes in keys are escaped (RFC 6901)');
    const out = applyPatch(input, ops) as { spec: { containers: Array<{ name: string; env?: Array<{ name: string; value?: string }> }> } };
    const proxy = out.spec.containers.find((c) => c.name === 'istio-proxy');
    const env = Object.fromEntries((proxy?.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env['ISTIO_META_WORKLOAD_NAME'], 'reviews-v2', 'the workload is the Deployment');
    assert.equal(env['ISTIO_META_OWNER'], 'kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-v2');
    assert.equal(env['ISTIO_META_APP_CONTAINERS'], 'reviews,log-shipper');
    assert.deepEqual(JSON.parse(env['PROXY_CONFIG'] ?? ''), { discoveryAddress: 'istiod.istio-system.svc:15012' });
  });
});

describe('ProxyConfig goldens: mesh default < root namespace < namespace < annotation < workload', () => {
  const cases = fs.readdirSync(PROXY_CONFIG_GOLDEN).filter((f) => f.endsWith('.yaml') && !f.endsWith('.injected.yaml'));
  assert.ok(cases.length >= 3, 'golden cases exist');
  const proxyEnv = (out: unknown): Record<string, string | undefined> => {
    const c = (out as { spec: { containers: Array<{ name: string; env?: Array<{ name: string; value?: string }> }> } }).spec.containers.find((x) => x.name === 'istio-proxy');
    return Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]));
  };
  const injectWith = async (file: string): Promise<{ input: Record<string, unknown>; out: Record<string, unknown> }> => {
    const text = fs.readFileSync(path.join(PROXY_CONFIG_GOLDEN, file), 'utf8');
    // ProxyConfigs are read and validated as a config folder reads them; the pod is the last document.
    const loaded = loadText(text, file);
    assert.deepEqual(loaded.errors, [], `${file}: every ProxyConfig is valid`);
    const pods = loaded.objects.filter((o) => o.kind === 'Pod');
    assert.equal(pods.length, 1);
    const input = structuredClone(pods[0]?.body) as Record<string, unknown>;
    proxyConfigs = { rootNamespace: 'istio-system', byNamespace: buildProxyConfigs(loaded.objects.filter((o) => o.kind === 'ProxyConfig')) };
    try {
      const resp = await admit('/inject', reviewOf(input, { namespace: 'default' }));
      assert.equal(resp.allowed, true, JSON.stringify(resp.status));
      return { input, out: applyPatch(input, patchOf(resp)) as Record<string, unknown> };
    } finally {
      proxyConfigs = undefined;
    }
  };
  for (const file of cases) {
    test(file, async () => {
      const { out } = await injectWith(file);
      const actual = stringify(out, { sortMapEntries: true, lineWidth: 0 });
      const expectedFile = path.join(PROXY_CONFIG_GOLDEN, file.replace(/\.yaml$/, '.injected.yaml'));
      if (update) fs.writeFileSync(expectedFile, actual);
      assert.ok(fs.existsSync(expectedFile), `${path.basename(expectedFile)} is missing; run with UPDATE_GOLDEN=1 and review it`);
      assert.equal(actual, fs.readFileSync(expectedFile, 'utf8'), `${path.basename(expectedFile)} differs; if intended, UPDATE_GOLDEN=1 and review the diff`);
    });
  }

  test('what each layer contributes reaches PROXY_CONFIG, the proxy env and the image', async () => {
    const { out } = await injectWith('workload-wins.yaml');
    const env = proxyEnv(out);
    const pc = JSON.parse(env['PROXY_CONFIG'] ?? '{}') as Record<string, unknown>;
    assert.equal(pc['concurrency'], 1, 'the workload ProxyConfig wins over the annotation (3) and the root (4)');
    assert.deepEqual(pc['proxyMetadata'], { LAYER_ROOT: 'root', SHARED_B: 'namespace', SHARED_C: 'workload', LAYER_ANNOTATION: 'annotation' });
    assert.deepEqual(
      [env['LAYER_ROOT'], env['SHARED_B'], env['SHARED_C'], env['LAYER_ANNOTATION']],
      ['root', 'namespace', 'workload', 'annotation'],
      'proxyMetadata entries are proxy env variables',
    );
    const images = (out as { spec: { containers: Array<{ name: string; image: string }>; initContainers: Array<{ name: string; image: string }> } }).spec;
    assert.equal(images.containers.find((c) => c.name === 'istio-proxy')?.image, 'docker.io/istio/proxyv2:1.24.0-debug');
    assert.equal(images.initContainers.find((c) => c.name === 'istio-init')?.image, 'docker.io/istio/proxyv2:1.24.0-debug');

    const zero = proxyEnv((await injectWith('annotation-zero.yaml')).out);
    const zpc = JSON.parse(zero['PROXY_CONFIG'] ?? '{}') as Record<string, unknown>;
    assert.equal(zpc['concurrency'], 0, 'concurrency 0 in the annotation overrides the root namespace (2)');
    const ns = proxyEnv((await injectWith('namespace-default.yaml')).out);
    assert.equal((JSON.parse(ns['PROXY_CONFIG'] ?? '{}') as Record<string, unknown>)['concurrency'], 6, 'the oldest namespace-wide ProxyConfig wins');
  });

  test('an unusable proxy.istio.io/config annotation refuses injection with its field path', async () => {
    const bad = pod({ annotations: { 'proxy.istio.io/config': 'concurrency: -1' } });
    const resp = await admit('/inject', reviewOf(bad, { namespace: 'default' }));
    assert.equal(resp.allowed, false);
    assert.deepEqual(resp.status?.details?.causes, [
      { reason: 'FieldValueInvalid', field: 'metadata.annotations["proxy.istio.io/config"]', message: 'concurrency must be a non-negative integer (got -1)' },
    ]);
  });
});

describe('which pods are injected', () => {
  const table: Array<[string, string, Record<string, unknown>, boolean]> = [
    ['namespace istio-injection=enabled', 'enabled', pod(), true],
    ['enabled namespace, pod annotation inject "false"', 'enabled', pod({ annotations: { 'sidecar.istio.io/inject': 'false' } }), false],
    ['enabled namespace, pod label inject "false"', 'enabled', pod({ labels: { 'sidecar.istio.io/inject': 'false' } }), false],
    ['namespace istio-injection=disabled wins over a pod asking', 'off', pod({ labels: { 'sidecar.istio.io/inject': 'true' } }), false],
    // istiod's object selector reads the pod's labels: an annotation alone does not select it.
    ['unlabelled namespace, pod annotation inject "true"', 'plain', pod({ annotations: { 'sidecar.istio.io/inject': 'true' } }), false],
    ['unlabelled namespace, pod label inject "true"', 'plain', pod({ labels: { 'sidecar.istio.io/inject': 'true' } }), true],
    ['unlabelled namespace, pod label istio.io/rev=default', 'plain', pod({ labels: { 'istio.io/rev': 'default' } }), true],
    ['unlabelled namespace, pod silent', 'plain', pod(), false],
    ['namespace istio.io/rev=default', 'rev', pod(), true],
    ['namespace of another revision', 'canary', pod(), false],
    // istio-injection=enabled selects the default revision whatever the pod's istio.io/rev (istioctl analyze warns).
    ['enabled namespace, pod of another revision', 'enabled', pod({ labels: { 'istio.io/rev': 'canary' } }), true],
    ['hostNetwork pod', 'enabled', pod({ hostNetwork: true }), false],
    ['already injected pod', 'enabled', pod({ annotations: { 'sidecar.istio.io/status': '{}' } }), false],
    ['kube-system, even labelled', 'kube-system', pod(), false],
    ['namespace unknown to meshd (the webhook selectors chose it)', 'elsewhere', pod(), true],
  ];
  for (const [name, namespace, object, injected] of table) {
    test(`${name} → ${injected ? 'injected' : 'not injected'}`, async () => {
      const resp = await admit('/inject', reviewOf(object, { namespace }));
      assert.equal(resp.allowed, true);
      assert.equal(resp.patch !== undefined, injected, JSON.stringify(resp));
      if (injected) {
        const out = applyPatch(object, patchOf(resp)) as { spec: { containers: Array<{ name: string }>; initContainers: Array<{ name: string }> } };
        assert.deepEqual(
          out.spec.containers.map((c) => c.name),
          ['app', 'istio-proxy'],
        );
        assert.deepEqual(
          out.spec.initContainers.map((c) => c.name),
          ['istio-init'],
        );
      }
    });
  }

  test('other kinds and operations are allowed untouched', async () => {
    assert.equal((await admit('/inject', reviewOf(pod(), { operation: 'UPDATE' }))).patch, undefined);
    const svc = await admit('/inject', reviewOf({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: {} }, { kind: 'Service' }));
    assert.deepEqual([svc.allowed, svc.patch], [true, undefined]);
  });

  test('a bad injection annotation is refused with its field path', async () => {
    const resp = await admit(
      '/inject',
      reviewOf(pod({ annotations: { 'sidecar.istio.io/interceptionMode': 'MAGIC', 'readiness.status.sidecar.istio.io/periodSeconds': 'soon' } })),
    );
    assert.equal(resp.allowed, false);
    assert.match(resp.status?.message ?? '', /interceptionMode"\]: must be REDIRECT, TPROXY or NONE \(got "MAGIC"\)/);
    assert.match(resp.status?.message ?? '', /periodSeconds"\]: must be a non-negative integer \(got "soon"\)/);
  });
});

describe('validation', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-webhook-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** `path: message` lines of `meshd validate` for one object. */
  function cliMessages(obj: Record<string, unknown>): string[] {
    const file = path.join(dir, `${uids++}.yaml`);
    fs.writeFileSync(file, stringify(obj));
    const { output, ok } = validateFiles([file]);
    assert.equal(ok, false);
    const meta = obj['metadata'] as { name: string; namespace: string };
    const prefix = `${file}: ${obj['kind'] as string} ${meta.namespace}/${meta.name}: `;
    return output
      .split('\n')
      .filter((l) => l.startsWith(prefix))
      .map((l) => l.slice(prefix.length));
  }

  const invalid: Record<string, unknown>[] = [
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'reviews', namespace: 'shop' },
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 150 }, { destination: { host: '' } }] }] },
    },
    {
      apiVersion: 'networking.istio.io/v1beta1',
      kind: 'DestinationRule',
      metadata: { name: 'r', namespace: 'shop' },
      spec: { host: 'reviews', subsets: [{ name: 'v1' }, { name: 'v1' }], trafficPolicy: { loadBalancer: { simple: 'FASTEST' } } },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'gw', namespace: 'shop' },
      spec: { servers: [{ port: { number: 70000, name: 'http', protocol: 'HTTP' }, hosts: [] }] },
    },
  ];
  for (const obj of invalid) {
    test(`an invalid ${obj['kind'] as string} is rejected with the messages of meshd validate`, async () => {
      const want = cliMessages(obj);
      assert.ok(want.length > 0);
      const meta = obj['metadata'] as { name: string; namespace: string };
      const resp = await admit('/validate', reviewOf(obj, { namespace: meta.namespace, group: 'networking.istio.io', kind: obj['kind'] as string }));
      assert.equal(resp.allowed, false);
      assert.equal(resp.status?.code, 422);
      assert.equal(resp.status?.message, `${obj['kind'] as string} ${meta.namespace}/${meta.name} is invalid: ${want.join('; ')}`);
      assert.deepEqual(
        resp.status?.details?.causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)),
        want,
      );
    });
  }

  test('a valid object is allowed; the namespace comes from the request when the object has none', async () => {
    const vs = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'ok' },
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] },
    };
    const resp = await admit('/validate', reviewOf(vs, { namespace: 'shop', group: 'networking.istio.io', kind: 'VirtualService' }));
    assert.deepEqual([resp.allowed, resp.status], [true, undefined]);
  });

  test('an unsupported apiVersion is rejected with the folder source message; unknown kinds pass with a warning; DELETE passes', async () => {
    const bad = { apiVersion: 'networking.istio.io/v2', kind: 'VirtualService', metadata: { name: 'x', namespace: 'shop' }, spec: {} };
    const r1 = await admit('/validate', reviewOf(bad, { namespace: 'shop' }));
    assert.equal(r1.allowed, false);
    assert.match(r1.status?.message ?? '', /apiVersion: unsupported apiVersion "networking.istio.io\/v2" for kind VirtualService/);
    const ext = { apiVersion: 'extensions.istio.io/v1alpha1', kind: 'TrafficExtension', metadata: { name: 'a', namespace: 'shop' }, spec: {} };
    const r2 = await admit('/validate', reviewOf(ext, { namespace: 'shop' }));
    assert.equal(r2.allowed, true);
    assert.deepEqual(r2.warnings, ['meshd does not support kind TrafficExtension (extensions.istio.io/v1alpha1): admitted unchecked, and ignored by meshd']);
    // EnvoyFilter is validated; an accepted one carries istiod's warning.
    const filter = { apiVersion: 'networking.istio.io/v1alpha3', kind: 'EnvoyFilter', metadata: { name: 'a', namespace: 'shop' }, spec: {} };
    const r7 = await admit('/validate', reviewOf(filter, { namespace: 'shop' }));
    assert.match(r7.warnings?.join('\n') ?? r7.status?.message ?? '', /EnvoyFilter exposes internal implementation details/);
    // WasmPlugin is validated: a url of a scheme istiod does not fetch is refused with its field path.
    const wasm = { apiVersion: 'extensions.istio.io/v1alpha1', kind: 'WasmPlugin', metadata: { name: 'a', namespace: 'shop' }, spec: { url: 'ftp://host/a.wasm' } };
    const r8 = await admit('/validate', reviewOf(wasm, { namespace: 'shop' }));
    assert.equal(r8.allowed, false);
    assert.match(r8.status?.message ?? '', /spec\.url: url contains unsupported scheme: ftp/);
    // Sidecar is validated: an empty one is refused with Istio's message.
    const sidecar = { apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'a', namespace: 'shop' }, spec: {} };
    const r6 = await admit('/validate', reviewOf(sidecar, { namespace: 'shop' }));
    assert.equal(r6.allowed, false);
    assert.match(r6.status?.message ?? '', /sidecar: empty configuration provided/);
    // RequestAuthentication is validated: a JWKS over plain http is refused with its field path.
    const ra = {
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'a', namespace: 'shop' },
      spec: { jwtRules: [{ issuer: 'https://idp.example', jwksUri: 'http://idp.example/jwks' }] },
    };
    const r5 = await admit('/validate', reviewOf(ra, { namespace: 'shop' }));
    assert.equal(r5.allowed, false);
    assert.match(r5.status?.message ?? '', /spec\.jwtRules\[0\]\.jwksUri: jwksUri "http:\/\/idp\.example\/jwks" uses http/);
    const goodRa = { ...ra, spec: { jwtRules: [{ issuer: 'https://idp.example', jwksUri: 'https://idp.example/jwks' }] } };
    assert.equal((await admit('/validate', reviewOf(goodRa, { namespace: 'shop' }))).allowed, true);
    // AuthorizationPolicy is validated now: a DENY without rules is refused with meshd validate's message.
    const ap = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'a', namespace: 'shop' }, spec: { action: 'DENY' } };
    const r4 = await admit('/validate', reviewOf(ap, { namespace: 'shop' }));
    assert.equal(r4.allowed, false);
    assert.match(r4.status?.message ?? '', /spec\.rules: DENY action without `rules` is meaningless/);
    const r3 = await admit('/validate', reviewOf(null, { namespace: 'shop', operation: 'DELETE' }));
    assert.equal(r3.allowed, true);
  });
});

describe('garbage in', () => {
  const cases: Array<[string, string, string, string | undefined, RegExp]> = [
    ['not JSON', '/inject', '{"apiVersion": ', undefined, /JSON/i],
    ['an empty body', '/validate', '', undefined, /empty/i],
    ['a JSON array', '/inject', '[1,2]', undefined, /must be an AdmissionReview object \(got array\)/],
    ['another kind', '/validate', '{"apiVersion":"v1","kind":"Pod"}', undefined, /kind must be AdmissionReview/],
    ['an old apiVersion', '/inject', '{"apiVersion":"admission.k8s.io/v1alpha1","kind":"AdmissionReview","request":{"uid":"u"}}', undefined, /apiVersion must be/],
    ['no request', '/inject', '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}', undefined, /request must be an object/],
    ['no uid', '/validate', '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"object":{}}}', undefined, /request\.uid/],
    ['a pod without a spec', '/inject', reviewOf({ metadata: { name: 'x' } }), undefined, /^$/],
    ['text/plain', '/inject', 'hello', 'text/plain', /content-type|Unsupported Media Type/i],
  ];
  for (const [name, urlPath, body, contentType, message] of cases) {
    test(`${name} → 4xx with a clear message`, async () => {
      const r = await post(urlPath, body, contentType ? { contentType } : {});
      if (name === 'a pod without a spec') {
        assert.equal(r.status, 200);
        const resp = r.json['response'] as Response;
        assert.equal(resp.allowed, false);
        assert.match(resp.status?.message ?? '', /must be a Pod with a spec/);
        return;
      }
      assert.ok(r.status === 400 || r.status === 415, `${r.status} ${r.body}`);
      assert.match(String(r.json['message'] ?? ''), message);
    });
  }

  test('a body over the limit → 413; unknown paths → 404; the server still serves afterwards', async () => {
    const big = await post('/validate', JSON.stringify({ pad: 'x'.repeat(300 * 1024) }));
    assert.equal(big.status, 413);
    const missing = await post('/mutate', '{}');
    assert.equal(missing.status, 404);
    assert.match(String(missing.json['message']), /POST \/inject or POST \/validate/);
    const resp = await admit('/inject', reviewOf(pod(), { namespace: 'enabled' }));
    assert.equal(resp.allowed, true);
    assert.ok(resp.patch);
  });

  test('an admission.k8s.io/v1beta1 review is answered in v1beta1', async () => {
    const r = await post('/inject', reviewOf(pod(), { apiVersion: 'admission.k8s.io/v1beta1', namespace: 'plain' }));
    assert.equal(r.json['apiVersion'], 'admission.k8s.io/v1beta1');
  });
});
