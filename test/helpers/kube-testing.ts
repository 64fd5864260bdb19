/**
 * Shared pieces of the Kubernetes source tests: a KubeSource on a fake API server with a
 * captured log, polling, a "caught up" barrier through BOOKMARKs, the model a state builds,
 * and one valid object of every kind meshd watches.
 */
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { buildSnapshot } from '../../src/model/build';
import { loadKubeConfig } from '../../src/sources/kube-http';
import { KubeSource, type KubeSourceOptions } from '../../src/sources/kube-source';
import type { ConfigState } from '../../src/sources/source';
import type { KubeApiServer } from './kube-api-server';

export interface LogCapture {
  log: Logger;
  /** Every record logged so far, parsed. */
  records(): Array<Record<string, unknown>>;
}

export function captureLog(level = 'debug'): LogCapture {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l.trim() !== ''),
      );
      cb();
    },
  });
  return { log: pino({ level }, stream), records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

export interface SourceUnderTest {
  src: KubeSource;
  /** What each `change` event named, in order. */
  changes: string[];
  logs: LogCapture;
}

/** A KubeSource on `api` with short backoffs; not loaded yet. */
export function kubeSource(api: KubeApiServer, opts: Partial<KubeSourceOptions> = {}): SourceUnderTest {
  const logs = captureLog();
  const src = new KubeSource({
    kubeConfig: loadKubeConfig({ kubeconfig: api.kubeconfigPath }),
    log: logs.log,
    backoffInitialMs: 20,
    backoffMaxMs: 500,
    missingRetryMs: 200,
    ...opts,
  });
  const changes: string[] = [];
  src.on('change', (what: string) => changes.push(what));
  return { src, changes, logs };
}

/** Polls `fn` until it returns something truthy; fails with `what` (and the last value) after timeoutMs. */
export async function waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const start = Date.now();
  let last: T | undefined;
  for (;;) {
    last = await fn();
    if (last) return last as NonNullable<T>;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Barrier: the source has applied everything up to the server's current resourceVersion.
 * BOOKMARKs carry that resourceVersion down every open watch, after all earlier events, so
 * once every running kind reports it, its cache holds the server's state at that point.
 */
export async function caughtUp(api: KubeApiServer, src: KubeSource): Promise<void> {
  const rv = Number(api.store.resourceVersion());
  await waitFor(
    () => {
      // Every running kind must have its watch open (a bookmark each), and be at rv.
      const running = src.status().filter((s) => s.phase !== 'missing');
      return api.sendBookmarks() >= running.length && running.every((s) => s.phase === 'running' && s.synced && Number(s.resourceVersion) >= rv);
    },
    `the source to catch up with resourceVersion ${rv}: ${JSON.stringify(src.status())}`,
  );
}

export interface Model {
  /** Snapshot version with a fixed sequence: the content hash. */
  hash: string;
  objects: string[];
  errors: string;
}

/** The model a state builds (what meshd would serve), reduced to comparable parts. */
export function modelOf(state: ConfigState): Model {
  const snap = buildSnapshot({ objects: state.objects, errors: state.errors, sequence: 1, now: new Date(0), domain: 'cluster.local' });
  return { hash: snap.version, objects: state.objects.map((o) => o.origin.source).sort(), errors: JSON.stringify(snap.errors) };
}

/** The model a brand-new KubeSource builds from a fresh list of the same server. */
export async function freshModel(api: KubeApiServer, opts: Partial<KubeSourceOptions> = {}): Promise<Model> {
  const { src } = kubeSource(api, opts);
  try {
    await src.load();
    return modelOf(src.state());
  } finally {
    await src.close();
  }
}

export const SHOP = 'shop';

/** One valid object of every kind the source watches, in namespace `shop`. */
export function shopObjects(): Array<Record<string, unknown>> {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: SHOP, labels: { 'istio-injection': 'enabled' } } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: SHOP },
      spec: { selector: { app: 'web' }, clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-abc', namespace: SHOP, labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: [{ addresses: ['10.1.0.5'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'web-0', namespace: SHOP } }],
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-0', namespace: SHOP, labels: { app: 'web', version: 'v1' } },
      spec: { serviceAccountName: 'web', containers: [{ name: 'web', image: 'web:1', ports: [{ containerPort: 8080 }] }] },
      status: { phase: 'Running', podIP: '10.1.0.5', podIPs: [{ ip: '10.1.0.5' }], conditions: [{ type: 'Ready', status: 'True' }] },
    },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: SHOP }, type: 'Opaque', data: { token: Buffer.from('s3cret').toString('base64') } },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'web', namespace: SHOP },
      spec: { hosts: ['web'], http: [{ route: [{ destination: { host: 'web', subset: 'v1' } }] }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'web', namespace: SHOP },
      spec: { host: 'web', subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'ext', namespace: SHOP },
      spec: { hosts: ['api.example.com'], ports: [{ number: 443, name: 'tls', protocol: 'TLS' }], resolution: 'DNS', location: 'MESH_EXTERNAL' },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { name: 'vm1', namespace: SHOP },
      spec: { address: '10.2.0.1', labels: { app: 'web', version: 'v1' } },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadGroup',
      metadata: { name: 'vms', namespace: SHOP },
      spec: { metadata: { labels: { app: 'web' } }, template: { serviceAccount: 'web', ports: { http: 8080 } }, probe: { httpGet: { port: 8080, path: '/ready' } } },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'gw', namespace: SHOP },
      spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Sidecar',
      metadata: { name: 'default', namespace: SHOP },
      spec: { egress: [{ hosts: ['./*', 'istio-system/*'] }] },
    },
    { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: SHOP }, spec: { mtls: { mode: 'STRICT' } } },
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'web', namespace: SHOP },
      spec: { selector: { matchLabels: { app: 'web' } }, rules: [{ to: [{ operation: { methods: ['GET'] } }] }] },
    },
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'web', namespace: SHOP },
      spec: { selector: { matchLabels: { app: 'web' } }, jwtRules: [{ issuer: 'https://idp.example', jwksUri: 'https://idp.example/jwks' }] },
    },
    {
      apiVersion: 'telemetry.istio.io/v1',
      kind: 'Telemetry',
      metadata: { name: 'web', namespace: SHOP },
      spec: { selector: { matchLabels: { app: 'web' } }, accessLogging: [{ providers: [{ name: 'envoy' }] }] },
    },
    {
      apiVersion: 'extensions.istio.io/v1alpha1',
      kind: 'WasmPlugin',
      metadata: { name: 'web-auth', namespace: SHOP },
      spec: { selector: { matchLabels: { app: 'web' } }, url: 'oci://registry.example/web-auth:1.0', phase: 'AUTHN' },
    },
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'istio' }, spec: { controllerName: 'istio.io/gateway-controller' } },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'shop-gw', namespace: SHOP },
      spec: { gatewayClassName: 'istio', listeners: [{ name: 'http', port: 80, protocol: 'HTTP', hostname: 'shop.example.com' }] },
    },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'web', namespace: SHOP },
      spec: { parentRefs: [{ name: 'shop-gw' }], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: 'web', port: 80 }] }] },
    },
    {
      apiVersion: 'networking.istio.io/v1alpha3',
      kind: 'EnvoyFilter',
      metadata: { name: 'web-lua', namespace: SHOP },
      spec: {
        workloadSelector: { labels: { app: 'web' } },
        configPatches: [
          {
            applyTo: 'HTTP_FILTER',
            match: {
              context: 'SIDECAR_INBOUND',
              listener: { filterChain: { filter: { name: 'envoy.filters.network.http_connection_manager', subFilter: { name: 'envoy.filters.http.router' } } } },
            },
            patch: {
              operation: 'INSERT_BEFORE',
              value: {
                name: 'envoy.lua',
                typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua', inlineCode: 'function envoy_on_request(h) end' },
              },
            },
          },
        ],
      },
    },
    {
      apiVersion: 'networking.istio.io/v1beta1',
      kind: 'ProxyConfig',
      metadata: { name: 'web', namespace: SHOP },
      spec: { selector: { matchLabels: { app: 'web' } }, concurrency: 2, environmentVariables: { ISTIO_META_DNS_CAPTURE: 'true' }, image: { imageType: 'distroless' } },
    },
  ];
}

/** `kubernetes:<Kind>/<ns>/<name>` of an object, as the source names it (the Gateway API's Gateway: KubernetesGateway). */
export function originOfObject(o: Record<string, unknown>): string {
  const m = o['metadata'] as { name: string; namespace?: string };
  // The Gateway API's Gateway is KubernetesGateway to meshd (`Gateway` is Istio's).
  const kind = o['kind'] === 'Gateway' && String(o['apiVersion']).startsWith('gateway.networking.k8s.io/') ? 'KubernetesGateway' : String(o['kind']);
  return `kubernetes:${kind}/${m.namespace ? `${m.namespace}/` : ''}${m.name}`;
}
