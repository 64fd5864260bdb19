/**
 * A generated mesh for push-engine tests, and random changes to it driven by a seeded PRNG.
 *
 * Three namespaces of services with HTTP, gRPC and TCP ports; pods labelled version v1/v2 and
 * security.istio.io/tlsMode; EndpointSlices naming their pods; DestinationRules with subsets and
 * traffic policies (one with a workloadSelector); VirtualServices with header matches, weights
 * and sourceLabels; a ServiceEntry; PeerAuthentications; an AuthorizationPolicy; RequestAuthentications
 * (with the JWKS a resolver would have fetched, which change on their own); and an ingress
 * Gateway with a TLS credential. Every object is rendered as text and parsed with loadText, as
 * the folder source does (every object must be valid), and every snapshot is built with
 * `previous` (interned).
 */
import { BuildCache } from '../../src/model/build-cache';
import { buildSnapshot } from '../../src/model/build';
import type { ConfigObject } from '../../src/model/objects';
import type { JwksEntry } from '../../src/model/jwks';
import type { MeshSnapshot } from '../../src/model/snapshot';
import { loadText } from '../../src/sources/file-source';
import type { Pem } from './certs';

/** mulberry32: a small, fast, seeded PRNG (uniform in [0, 1)). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from an empty list');
    return xs[this.int(xs.length)] as T;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

type Labels = Record<string, string>;
type Obj = Record<string, unknown>;
interface PortState {
  name: string;
  port: number;
}
interface SvcState {
  ns: string;
  name: string;
  ports: PortState[];
  clusterIP: string;
  exportTo?: string[];
  note: string;
  endpoints: { pod: string; ip: string; ready: boolean }[];
}
interface DrState {
  ns: string;
  name: string;
  host: string;
  subsets: string[];
  maxConnections: number;
  lb: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM';
  tls?: 'ISTIO_MUTUAL' | 'DISABLE';
  selector?: Labels;
}
interface VsState {
  ns: string;
  name: string;
  host: string;
  header: string;
  weight: number;
  sourceApp?: string;
  exportTo?: string[];
}

export const NAMESPACES = ['alpha', 'beta', 'gamma'] as const;
const SUBSET_LABEL = 'version';
const HTTP = (port: number): PortState => ({ name: 'http', port });
const GRPC = (port: number): PortState => ({ name: 'grpc', port });
const TCP = (port: number): PortState => ({ name: 'tcp-data', port });

/** The proxies the tests look at: id, metadata, and the names they subscribe to where it matters. */
export const PROXIES: readonly { id: string; metadata: Labels | Record<string, unknown>; names?: Record<string, string[]> }[] = [
  { id: 'sidecar~10.0.0.1~web-v1.alpha~alpha.svc.cluster.local', metadata: { NAMESPACE: 'alpha', LABELS: { app: 'web', version: 'v1' } } },
  // No LABELS: its labels come from its pod in the model.
  { id: 'sidecar~10.0.1.1~cart-v1.alpha~alpha.svc.cluster.local', metadata: { NAMESPACE: 'alpha' } },
  { id: 'sidecar~10.1.0.2~books-v2.beta~beta.svc.cluster.local', metadata: { NAMESPACE: 'beta', LABELS: { app: 'books', version: 'v2' } } },
  { id: 'sidecar~10.2.0.1~legacy-v1.gamma~gamma.svc.cluster.local', metadata: { NAMESPACE: 'gamma' } },
  {
    id: 'sidecar~10.0.2.1~pay-v1.alpha~alpha.svc.cluster.local',
    metadata: { NAMESPACE: 'alpha', GENERATOR: 'grpc' },
    names: { LDS: ['xds.istio.io/grpc/lds/inbound/0.0.0.0:9090'] },
  },
  { id: 'sidecar~10.1.9.9~grpc-client.beta~beta.svc.cluster.local', metadata: { NAMESPACE: 'beta', GENERATOR: 'grpc', LABELS: { app: 'web' } } },
  {
    id: 'router~10.3.0.1~ingress-1.istio-system~istio-system.svc.cluster.local',
    metadata: { NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway' } },
    names: { SDS: ['kubernetes://shop-cred', 'kubernetes://shop-cred-cacert'] },
  },
];

/** A Sidecar: who it selects (none: the namespace's default), its egress and ingress, its outbound policy. */
export interface SidecarState {
  ns: string;
  name: string;
  app?: string;
  /** A port-bound egress listener before the catch-all one. */
  egressPort?: { number: number; hosts: string[] };
  hosts: string[];
  ingressPort?: number;
  mode?: 'REGISTRY_ONLY' | 'ALLOW_ANY';
}

/** The mesh as data; `objects()` renders it. Every mutation keeps it valid. */
export class MeshModel {
  readonly services = new Map<string, SvcState>();
  readonly pods = new Map<string, { ns: string; name: string; ip: string; labels: Labels }>();
  readonly drs = new Map<string, DrState>();
  readonly vss = new Map<string, VsState>();
  readonly sidecars = new Map<string, SidecarState>();
  readonly peerAuth = new Map<string, string>([
    ['istio-system', 'PERMISSIVE'],
    ['alpha', 'STRICT'],
  ]);
  authz: { paths: string[]; action: 'ALLOW' | 'DENY' } | undefined = { paths: ['/api/*'], action: 'ALLOW' };
  /** RequestAuthentications by namespace/name: who they select and which issuers (JWKS sources) they name. */
  readonly reqAuthn = new Map<string, { ns: string; name: string; app?: string; issuers: string[] }>([
    ['alpha/web-jwt', { ns: 'alpha', name: 'web-jwt', app: 'web', issuers: ['a'] }],
    ['istio-system/mesh-jwt', { ns: 'istio-system', name: 'mesh-jwt', issuers: ['mesh'] }],
  ]);
  /** What the JWKS resolver has for each issuer's source: a key set (by version) or an error. */
  readonly jwks = new Map<string, { version: number } | { error: string }>([
    ['a', { version: 1 }],
    ['mesh', { version: 1 }],
    ['b', { version: 1 }],
  ]);
  entry = { port: 443, exportTo: ['*'] };
  gatewayHosts = ['shop.example.com'];
  gatewayVsTarget = 'web';
  private extra = 0;
  private ipCounter = 100;

  /** Which of `credentials` the gateway's Secret holds. */
  credential = 0;
  /** A Secret body to serve instead (e.g. a certificate with a key that is not its pair). */
  credentialOverride?: Pem & { ca: string };

  constructor(
    /** Valid gateway credentials to switch between. */
    readonly credentials: readonly (Pem & { ca: string })[],
  ) {
    const layout: [string, string, PortState[], string?][] = [
      ['alpha', 'web', [HTTP(80)]],
      ['alpha', 'cart', [HTTP(8080), TCP(6379)]],
      ['alpha', 'pay', [HTTP(8080), GRPC(9090)]],
      ['alpha', 'search', [GRPC(7070)]],
      ['beta', 'books', [HTTP(9080)]],
      ['beta', 'ratings', [HTTP(9080), TCP(9100)]],
      ['beta', 'users', [GRPC(7070)]],
      ['beta', 'inventory', [HTTP(8080)]],
      ['gamma', 'legacy', [HTTP(8080), TCP(5432)]],
      ['gamma', 'hidden', [HTTP(8080)], '.'],
      ['gamma', 'audit', [HTTP(8080)]],
      ['gamma', 'metrics', [TCP(9100)]],
    ];
    layout.forEach(([ns, name, ports, exportTo], i) => {
      const nsIdx = NAMESPACES.indexOf(ns as (typeof NAMESPACES)[number]);
      const perNs = layout.slice(0, i).filter(([n]) => n === ns).length;
      const svc: SvcState = { ns, name, ports, clusterIP: `10.96.${nsIdx}.${perNs + 1}`, note: 'a', endpoints: [], ...(exportTo ? { exportTo: [exportTo] } : {}) };
      (['v1', 'v2'] as const).forEach((version, k) => {
        const pod = `${name}-${version}`;
        const ip = `10.${nsIdx}.${perNs}.${k + 1}`;
        const labels: Labels = { app: name, [SUBSET_LABEL]: version, ...(ns === 'gamma' && name === 'legacy' ? {} : { 'security.istio.io/tlsMode': 'istio' }) };
        this.pods.set(`${ns}/${pod}`, { ns, name: pod, ip, labels });
        svc.endpoints.push({ pod, ip, ready: true });
      });
      this.services.set(`${ns}/${name}`, svc);
    });
    this.pods.set('istio-system/ingress-1', { ns: 'istio-system', name: 'ingress-1', ip: '10.3.0.1', labels: { istio: 'ingressgateway', app: 'ingress' } });
    this.drs.set('alpha/cart', { ns: 'alpha', name: 'cart', host: 'cart', subsets: ['v1', 'v2'], maxConnections: 10, lb: 'ROUND_ROBIN', tls: 'ISTIO_MUTUAL' });
    this.drs.set('alpha/pay', { ns: 'alpha', name: 'pay', host: 'pay', subsets: ['v1'], maxConnections: 20, lb: 'RANDOM' });
    this.drs.set('alpha/pay-web', { ns: 'alpha', name: 'pay-web', host: 'pay', subsets: ['v1', 'v2'], maxConnections: 5, lb: 'LEAST_REQUEST', selector: { app: 'web' } });
    this.drs.set('beta/ratings', { ns: 'beta', name: 'ratings', host: 'ratings', subsets: ['v1', 'v2'], maxConnections: 30, lb: 'LEAST_REQUEST' });
    this.drs.set('gamma/legacy', { ns: 'gamma', name: 'legacy', host: 'legacy', subsets: ['v1'], maxConnections: 40, lb: 'ROUND_ROBIN', tls: 'DISABLE' });
    this.vss.set('alpha/cart', { ns: 'alpha', name: 'cart', host: 'cart', header: 'tester', weight: 80 });
    this.vss.set('beta/ratings', { ns: 'beta', name: 'ratings', host: 'ratings', header: 'admin', weight: 50, sourceApp: 'web' });
    this.vss.set('alpha/pay', { ns: 'alpha', name: 'pay', host: 'pay', header: 'beta', weight: 100, sourceApp: 'cart' });
  }

  newIp(): string {
    return `10.9.${Math.floor(this.ipCounter / 250)}.${(this.ipCounter++ % 250) + 1}`;
  }

  /** Adds a service with one pod, in `ns`. */
  addService(ns: string, ports: PortState[]): string {
    const name = `extra${++this.extra}`;
    const ip = this.newIp();
    this.pods.set(`${ns}/${name}-v1`, { ns, name: `${name}-v1`, ip, labels: { app: name, version: 'v1', 'security.istio.io/tlsMode': 'istio' } });
    this.services.set(`${ns}/${name}`, { ns, name, ports, clusterIP: `10.97.0.${this.extra}`, note: 'a', endpoints: [{ pod: `${name}-v1`, ip, ready: true }] });
    return `${ns}/${name}`;
  }

  /** Every object, as the Kubernetes/Istio YAML (JSON is YAML) would hold it. */
  objects(): Obj[] {
    const out: Obj[] = [];
    const meta = (ns: string, name: string, extra: Obj = {}): Obj => ({ name, namespace: ns, ...extra });
    for (const ns of [...NAMESPACES, 'istio-system']) out.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    for (const p of this.pods.values()) {
      out.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: meta(p.ns, p.name, { labels: p.labels }),
        spec: { serviceAccountName: p.labels.app ?? 'default' },
        status: { podIP: p.ip },
      });
    }
    for (const s of this.services.values()) {
      const annotations: Labels = { 'example.com/note': s.note };
      if (s.exportTo) annotations['networking.istio.io/exportTo'] = s.exportTo.join(',');
      out.push({ apiVersion: 'v1', kind: 'Service', metadata: meta(s.ns, s.name, { annotations }), spec: { clusterIP: s.clusterIP, selector: { app: s.name }, ports: s.ports } });
      out.push({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: meta(s.ns, `${s.name}-slice`, { labels: { 'kubernetes.io/service-name': s.name } }),
        addressType: 'IPv4',
        ports: s.ports,
        endpoints: s.endpoints.map((e) => ({ addresses: [e.ip], conditions: { ready: e.ready }, targetRef: { kind: 'Pod', name: e.pod } })),
      });
    }
    for (const d of this.drs.values()) {
      out.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: meta(d.ns, d.name),
        spec: {
          host: d.host,
          ...(d.selector ? { workloadSelector: { matchLabels: d.selector } } : {}),
          trafficPolicy: { loadBalancer: { simple: d.lb }, connectionPool: { tcp: { maxConnections: d.maxConnections } }, ...(d.tls ? { tls: { mode: d.tls } } : {}) },
          subsets: d.subsets.map((v) => ({ name: v, labels: { [SUBSET_LABEL]: v } })),
        },
      });
    }
    for (const v of this.vss.values()) {
      const routes: Obj[] = [];
      if (v.sourceApp) routes.push({ match: [{ sourceLabels: { app: v.sourceApp } }], route: [{ destination: { host: v.host, subset: 'v2' } }] });
      routes.push({ match: [{ headers: { 'x-user': { exact: v.header } } }], route: [{ destination: { host: v.host, subset: 'v2' } }] });
      routes.push({
        route:
          v.weight === 100
            ? [{ destination: { host: v.host, subset: 'v1' } }]
            : [
                { destination: { host: v.host, subset: 'v1' }, weight: v.weight },
                { destination: { host: v.host, subset: 'v2' }, weight: 100 - v.weight },
              ],
      });
      out.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: meta(v.ns, v.name),
        spec: { hosts: [v.host], ...(v.exportTo ? { exportTo: v.exportTo } : {}), http: routes },
      });
    }
    out.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: meta('beta', 'partner'),
      spec: {
        hosts: ['api.partner.example'],
        location: 'MESH_EXTERNAL',
        resolution: 'DNS',
        exportTo: this.entry.exportTo,
        ports: [{ number: this.entry.port, name: 'tls', protocol: 'TLS' }],
      },
    });
    for (const [ns, mode] of this.peerAuth) out.push({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: meta(ns, 'default'), spec: { mtls: { mode } } });
    if (this.authz) {
      out.push({
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: meta('alpha', 'cart-policy'),
        spec: {
          selector: { matchLabels: { app: 'cart' } },
          action: this.authz.action,
          rules: [{ from: [{ source: { namespaces: ['alpha'] } }], to: [{ operation: { paths: this.authz.paths } }] }],
        },
      });
    }
    out.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('istio-system', 'istio-ingressgateway'),
      spec: {
        clusterIP: '10.96.9.1',
        selector: { istio: 'ingressgateway' },
        ports: [
          { name: 'http2', port: 80 },
          { name: 'https', port: 443 },
        ],
      },
    });
    out.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: meta('istio-system', 'ingress'),
      spec: {
        selector: { istio: 'ingressgateway' },
        servers: [
          { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: this.gatewayHosts },
          { port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['shop.example.com'], tls: { mode: 'SIMPLE', credentialName: 'shop-cred' } },
        ],
      },
    });
    out.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: meta('alpha', 'shop'),
      spec: {
        hosts: this.gatewayHosts,
        gateways: ['istio-system/ingress'],
        http: [{ match: [{ uri: { prefix: '/cart' } }], route: [{ destination: { host: 'cart' } }] }, { route: [{ destination: { host: this.gatewayVsTarget } }] }],
      },
    });
    for (const sc of this.sidecars.values()) {
      const egress = [...(sc.egressPort ? [{ port: { number: sc.egressPort.number, protocol: 'HTTP', name: 'http' }, hosts: sc.egressPort.hosts }] : []), { hosts: sc.hosts }];
      out.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'Sidecar',
        metadata: meta(sc.ns, sc.name),
        spec: {
          ...(sc.app ? { workloadSelector: { labels: { app: sc.app } } } : {}),
          egress,
          ...(sc.ingressPort ? { ingress: [{ port: { number: sc.ingressPort, protocol: 'HTTP', name: 'http' }, defaultEndpoint: `127.0.0.1:${sc.ingressPort + 1}` }] } : {}),
          ...(sc.mode ? { outboundTrafficPolicy: { mode: sc.mode } } : {}),
        },
      });
    }
    for (const ra of this.reqAuthn.values()) {
      out.push({
        apiVersion: 'security.istio.io/v1',
        kind: 'RequestAuthentication',
        metadata: meta(ra.ns, ra.name),
        spec: { ...(ra.app ? { selector: { matchLabels: { app: ra.app } } } : {}), jwtRules: ra.issuers.map((i) => ({ issuer: `https://${i}.example`, jwksUri: jwksUri(i) })) },
      });
    }
    const cred = this.credentialOverride ?? this.credentials[this.credential];
    if (cred)
      out.push({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: meta('istio-system', 'shop-cred'),
        type: 'Opaque',
        stringData: { 'tls.crt': cred.cert, 'tls.key': cred.key, 'ca.crt': cred.ca },
      });
    return out;
  }

  /** The JWKS entries a resolver would hand to buildSnapshot. */
  jwksEntries(): Map<string, JwksEntry> {
    const out = new Map<string, JwksEntry>();
    for (const [issuer, e] of this.jwks)
      out.set(jwksUri(issuer), 'error' in e ? { error: e.error } : { keys: `{"keys":[{"kty":"oct","kid":"${issuer}-${e.version}","k":"a2V5"}]}` });
    return out;
  }
}

function jwksUri(issuer: string): string {
  return `https://${issuer}.example/keys`;
}

/** Parses objects as the folder source would (cached by text) and builds interned snapshots. */
export class SnapshotMaker {
  private readonly parsed = new Map<string, ConfigObject[]>();
  private seq = 0;
  /** Builds in line (interned) share a build cache, as meshd's do. */
  readonly cache = new BuildCache();
  last?: MeshSnapshot;

  build(model: MeshModel, interned = true): MeshSnapshot {
    const objects: ConfigObject[] = [];
    model.objects().forEach((o, i) => {
      const text = JSON.stringify(o);
      let parsed = this.parsed.get(text);
      if (!parsed) {
        const r = loadText(text, `object-${i}.yaml`);
        if (r.errors.length > 0) throw new Error(`generated config is invalid: ${JSON.stringify(r.errors)}`);
        parsed = r.objects;
        this.parsed.set(text, parsed);
      }
      objects.push(...parsed);
    });
    // Model-level problems (e.g. two DestinationRules merged for one host) are part of the mesh.
    const snap = buildSnapshot({
      objects,
      errors: [],
      sequence: ++this.seq,
      now: new Date(0),
      domain: 'cluster.local',
      jwks: model.jwksEntries(),
      ...(interned && this.last ? { previous: this.last } : {}),
      ...(interned ? { cache: this.cache } : {}),
    });
    this.last = snap;
    return snap;
  }
}

/** One random change, applied to the model; returns what it did. */
export function randomChange(m: MeshModel, r: Rng): string {
  const svcKeys = (): string[] => [...m.services.keys()];
  const changes: (() => string | undefined)[] = [
    () => {
      const v = m.vss.get(r.pick([...m.vss.keys()]));
      if (!v) return undefined;
      v.weight = r.pick([10, 25, 50, 75, 90, 100].filter((w) => w !== v.weight));
      return `weight ${v.ns}/${v.name} → ${v.weight}`;
    },
    () => {
      const d = m.drs.get(r.pick([...m.drs.keys()]));
      if (!d) return undefined;
      d.subsets = d.subsets.includes('v3') ? d.subsets.filter((s) => s !== 'v3') : [...d.subsets, 'v3'];
      return `subset v3 toggled on ${d.ns}/${d.name}`;
    },
    () => {
      const s = m.services.get(r.pick(svcKeys()));
      const e = s && s.endpoints.length > 0 ? r.pick(s.endpoints) : undefined;
      if (!s || !e) return undefined;
      e.ip = m.newIp();
      const pod = m.pods.get(`${s.ns}/${e.pod}`);
      // Half the time the pod moved too; otherwise only the slice's address changed.
      if (pod && r.chance(0.5)) pod.ip = e.ip;
      return `endpoint ${e.pod} of ${s.ns}/${s.name} moved to ${e.ip}${pod?.ip === e.ip ? ' (pod too)' : ''}`;
    },
    () => {
      const s = m.services.get(r.pick(svcKeys()));
      const e = s && s.endpoints.length > 0 ? r.pick(s.endpoints) : undefined;
      if (!s || !e) return undefined;
      e.ready = !e.ready;
      return `endpoint ${e.pod} of ${s.ns}/${s.name} ready=${e.ready}`;
    },
    () => {
      const ns = r.pick(NAMESPACES);
      const key = m.addService(ns, r.pick([[HTTP(8080)], [GRPC(9090)], [TCP(7000)], [HTTP(80), TCP(7001)]]));
      return `service ${key} added`;
    },
    () => {
      if (m.services.size <= 8) return undefined;
      const key = r.pick(svcKeys());
      m.services.delete(key);
      return `service ${key} deleted`;
    },
    () => {
      const key = r.pick([...m.pods.keys()].filter((k) => !k.startsWith('istio-system/')));
      const p = m.pods.get(key);
      if (!p) return undefined;
      const what = r.int(3);
      if (what === 0) p.labels = { ...p.labels, version: p.labels.version === 'v1' ? 'v2' : 'v1' };
      else if (what === 1) {
        const { ['security.istio.io/tlsMode']: mode, ...rest } = p.labels;
        p.labels = mode ? rest : { ...rest, 'security.istio.io/tlsMode': 'istio' };
      } else p.labels = { ...p.labels, team: r.pick(['red', 'blue']) };
      return `pod ${key} labels ${JSON.stringify(p.labels)}`;
    },
    () => {
      const s = m.services.get(r.pick(svcKeys()));
      if (!s) return undefined;
      const other = r.pick(NAMESPACES.filter((n) => n !== s.ns));
      const choice = r.pick([undefined, ['.'], ['*'], [other], ['.', other]]);
      if (choice) s.exportTo = choice;
      else delete s.exportTo;
      return `exportTo of ${s.ns}/${s.name} = ${JSON.stringify(choice ?? 'default')}`;
    },
    () => {
      const candidates = [...m.vss.keys()];
      if (candidates.length > 1 && r.chance(0.5)) {
        const key = r.pick(candidates);
        m.vss.delete(key);
        return `virtual service ${key} deleted`;
      }
      const s = m.services.get(r.pick(svcKeys()));
      if (!s || !s.ports.some((p) => p.name === 'http' || p.name === 'grpc')) return undefined;
      const ns = r.pick(NAMESPACES);
      const name = `vs-${s.name}-${ns}`;
      const host = ns === s.ns ? s.name : `${s.name}.${s.ns}.svc.cluster.local`;
      m.vss.set(`${ns}/${name}`, {
        ns,
        name,
        host,
        header: r.pick(['a', 'b']),
        weight: r.pick([30, 100]),
        ...(r.chance(0.5) ? { sourceApp: r.pick(['web', 'cart', 'books']) } : {}),
        ...(r.chance(0.3) ? { exportTo: ['.'] } : {}),
      });
      return `virtual service ${ns}/${name} for ${host} added`;
    },
    () => {
      const ns = r.pick(['istio-system', ...NAMESPACES]);
      const mode = r.pick(['STRICT', 'PERMISSIVE', 'DISABLE', 'remove']);
      if (mode === 'remove') m.peerAuth.delete(ns);
      else m.peerAuth.set(ns, mode);
      return `peer authentication ${ns} → ${mode}`;
    },
    () => {
      const s = m.services.get(r.pick(svcKeys()));
      if (!s) return undefined;
      s.note = s.note === 'a' ? 'b' : 'a';
      return `annotation only on ${s.ns}/${s.name}`;
    },
    () => {
      const d = m.drs.get(r.pick([...m.drs.keys()]));
      if (!d) return undefined;
      d.maxConnections = 1 + r.int(100);
      d.lb = r.pick(['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM'] as const);
      if (r.chance(0.3)) d.selector = d.selector ? undefined : { app: r.pick(['web', 'cart', 'books']) };
      return `traffic policy of ${d.ns}/${d.name}: ${d.maxConnections} ${d.lb} selector=${JSON.stringify(d.selector)}`;
    },
    () => {
      const v = m.vss.get(r.pick([...m.vss.keys()]));
      if (!v) return undefined;
      v.header = r.pick(['tester', 'admin', 'beta', 'x'].filter((h) => h !== v.header));
      v.sourceApp = r.chance(0.5) ? r.pick(['web', 'cart', 'books', 'legacy']) : undefined;
      return `match of ${v.ns}/${v.name}: header ${v.header}, sourceLabels app=${v.sourceApp}`;
    },
    () => {
      m.authz = r.chance(0.2) ? undefined : { paths: r.pick([['/api/*'], ['/admin'], ['/api/*', '/health']]), action: r.pick(['ALLOW', 'DENY'] as const) };
      return `authorization policy ${JSON.stringify(m.authz)}`;
    },
    () => {
      m.entry = { port: r.pick([443, 8443]), exportTo: r.pick([['*'], ['.'], ['alpha']]) };
      return `service entry ${JSON.stringify(m.entry)}`;
    },
    () => {
      m.gatewayHosts = r.chance(0.5) ? ['shop.example.com'] : ['shop.example.com', 'admin.example.com'];
      m.gatewayVsTarget = r.pick(['web', 'books.beta.svc.cluster.local', 'search']);
      return `gateway hosts ${m.gatewayHosts.join(',')} → ${m.gatewayVsTarget}`;
    },
    () => {
      m.credential = (m.credential + 1) % m.credentials.length;
      return `gateway credential ${m.credential}`;
    },
    () => {
      const key = r.pick(['alpha/web-jwt', 'istio-system/mesh-jwt', 'beta/books-jwt']);
      const [ns = '', name = ''] = key.split('/');
      if (m.reqAuthn.has(key) && r.chance(0.3)) {
        m.reqAuthn.delete(key);
        return `request authentication ${key} deleted`;
      }
      const ra = { ns, name, ...(ns === 'istio-system' && r.chance(0.5) ? {} : { app: r.pick(['web', 'cart', 'books']) }), issuers: r.pick([['a'], ['b'], ['a', 'b'], ['mesh']]) };
      m.reqAuthn.set(key, ra);
      return `request authentication ${key}: app=${ra.app} issuers=${ra.issuers.join(',')}`;
    },
    () => {
      // The resolver refreshed a source: new keys, or a failure (keys kept or none).
      const issuer = r.pick(['a', 'b', 'mesh']);
      const e = m.jwks.get(issuer);
      const next = r.chance(0.25) ? { error: r.pick(['status 503', 'connect ECONNREFUSED']) } : { version: e && 'version' in e ? e.version + 1 : 1 };
      m.jwks.set(issuer, next);
      return `jwks ${issuer} → ${JSON.stringify(next)}`;
    },
  ];
  const sidecarChange = (): string => {
    // A namespace default, the root namespace's, or a workloadSelector one; added, changed or deleted.
    const ns = r.pick(['istio-system', ...NAMESPACES]);
    const app = ns === 'istio-system' ? undefined : r.pick([undefined, 'web', 'cart', 'books']);
    const key = `${ns}/${app ?? 'default'}`;
    if (m.sidecars.has(key) && r.chance(0.3)) {
      m.sidecars.delete(key);
      return `sidecar ${key} deleted`;
    }
    const other = r.pick(NAMESPACES.filter((n) => n !== ns));
    const sc: SidecarState = {
      ns,
      name: app ?? 'default',
      ...(app ? { app } : {}),
      hosts: r.pick([['./*'], ['./*', 'istio-system/*'], [`${other}/*`], ['*/*.svc.cluster.local'], ['~/*'], [`./*`, `${other}/ratings.${other}.svc.cluster.local`]]),
      ...(r.chance(0.3) ? { egressPort: { number: r.pick([8080, 9080]), hosts: [`${other}/*`] } } : {}),
      ...(r.chance(0.3) ? { ingressPort: r.pick([8080, 9080]) } : {}),
      ...(r.chance(0.4) ? { mode: r.pick(['REGISTRY_ONLY', 'ALLOW_ANY'] as const) } : {}),
    };
    m.sidecars.set(key, sc);
    return `sidecar ${key}: ${JSON.stringify(sc)}`;
  };
  changes.push(sidecarChange, sidecarChange);
  for (;;) {
    const what = r.pick(changes)();
    if (what) return what;
  }
}
