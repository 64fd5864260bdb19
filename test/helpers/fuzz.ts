/**
 * A seeded, reproducible fuzzer of Istio and Kubernetes objects: valid objects of every kind
 * meshd reads, mutated at random (wrong types, unknown and prototype keys, repeated items,
 * deep nesting, long strings, numbers out of range), then written as YAML or JSON and,
 * sometimes, damaged as text (cut short, stray characters, anchors, document markers).
 *
 * Besides random ones, `SHAPES` are the inputs that once hurt meshd, built at full size:
 * one host 3,000 times, a 10 MB DestinationRule nested 5,000 deep, arrays nested 850 deep,
 * routes under `spec.__proto__`, one address in two EndpointSlices, 100,000 documents, an
 * alias-heavy file, an alias bomb, a 50 MB file, megabyte keys and names.
 *
 * Objects live in namespace `fuzz` and name services `fuzz-svc-0` … `fuzz-svc-3`, so they can
 * reach what a client of those services receives, and nothing else by accident.
 */
import { stringify } from 'yaml';
import { Rng } from './random-mesh';

type Obj = Record<string, unknown>;

export const FUZZ_NAMESPACE = 'fuzz';
export const FUZZ_SERVICES = 4;
export const fuzzHost = (k: number): string => `fuzz-svc-${k}`;

// ---- valid objects of every kind ----

function meta(name: string, extra: Obj = {}): Obj {
  return { name, namespace: FUZZ_NAMESPACE, labels: { app: 'fuzz', version: 'v1' }, ...extra };
}

/** The service a second client dials: EndpointSlices reach it, routes and rules do not (but by chance). */
export const EDS_ONLY_SERVICE = FUZZ_SERVICES - 1;

function bases(i: number, k: number): Obj[] {
  const slicesFor = fuzzHost(k);
  const host = fuzzHost(k % EDS_ONLY_SERVICE);
  const ip = `10.77.${k}.${(i % 250) + 1}`;
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(`svc-${i}`),
      spec: {
        selector: { app: 'fuzz' },
        clusterIP: `10.96.77.${(i % 250) + 1}`,
        ports: [
          { name: 'grpc', port: 9080, targetPort: 9080, protocol: 'TCP' },
          { name: 'http-web', port: 8080 },
        ],
      },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: meta(`es-${i}`, { labels: { 'kubernetes.io/service-name': slicesFor } }),
      addressType: 'IPv4',
      ports: [{ name: 'grpc', port: 9080, protocol: 'TCP' }],
      endpoints: [{ addresses: [ip], conditions: { ready: true }, targetRef: { kind: 'Pod', name: `pod-${i}`, namespace: FUZZ_NAMESPACE }, zone: 'z1' }],
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: meta(`pod-${i}`),
      spec: { serviceAccountName: 'fuzz', containers: [{ name: 'app', ports: [{ name: 'grpc', containerPort: 9080 }] }] },
      status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: meta(`vs-${i}`),
      spec: {
        hosts: [host],
        http: [
          {
            name: 'jason',
            match: [{ headers: { 'end-user': { exact: 'jason' } }, uri: { prefix: '/api' } }],
            route: [{ destination: { host, subset: 'v2' } }],
            timeout: '2s',
            retries: { attempts: 3, perTryTimeout: '1s', retryOn: 'unavailable' },
          },
          {
            route: [
              { destination: { host, subset: 'v1' }, weight: 80 },
              { destination: { host, subset: 'v2' }, weight: 20 },
            ],
            fault: { delay: { percentage: { value: 10 }, fixedDelay: '5ms' } },
          },
        ],
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: meta(`dr-${i}`),
      spec: {
        host,
        trafficPolicy: {
          loadBalancer: { simple: 'ROUND_ROBIN' },
          connectionPool: { tcp: { maxConnections: 100 }, http: { http2MaxRequests: 1000 } },
          outlierDetection: { consecutive5xxErrors: 5, interval: '10s', baseEjectionTime: '30s' },
        },
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } } },
        ],
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: meta(`se-${i}`),
      spec: { hosts: [`ext-${i}.example.com`], ports: [{ number: 443, name: 'https', protocol: 'HTTPS' }], resolution: 'DNS', location: 'MESH_EXTERNAL' },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: meta(`we-${i}`),
      spec: { address: `10.78.${k}.${(i % 250) + 1}`, labels: { app: 'fuzz' }, serviceAccount: 'fuzz', ports: { grpc: 9080 } },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: meta(`gw-${i}`),
      spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: [`gw${i}.example.com`] }] },
    },
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: meta(`pa-${i}`),
      spec: { selector: { matchLabels: { app: `fuzz-${i}` } }, mtls: { mode: 'STRICT' }, portLevelMtls: { 9080: { mode: 'PERMISSIVE' } } },
    },
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: meta(`ap-${i}`),
      spec: {
        selector: { matchLabels: { app: `fuzz-${i}` } },
        action: 'ALLOW',
        rules: [
          {
            from: [{ source: { principals: ['cluster.local/ns/fuzz/sa/fuzz'] } }],
            to: [{ operation: { methods: ['GET'], paths: ['/api/*'] } }],
            when: [{ key: 'request.headers[x-user]', values: ['a'] }],
          },
        ],
      },
    },
    { apiVersion: 'v1', kind: 'Secret', metadata: meta(`secret-${i}`), type: 'kubernetes.io/tls', data: { 'tls.crt': 'LS0tLQ==', 'tls.key': 'LS0tLQ==' } },
    { apiVersion: 'v1', kind: 'Endpoints', metadata: meta(`ep-${i}`), subsets: [{ addresses: [{ ip }], ports: [{ name: 'grpc', port: 9080 }] }] },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: `fuzz-ns-${i}`, labels: { 'istio-injection': 'enabled' } } },
  ];
}

// ---- mutations ----

const ODD_KEYS = ['__proto__', 'constructor', 'toString', 'prototype', 'hasOwnProperty', 'valueOf', '__defineGetter__', '', ' ', 'a.b', 'spec', 'items', 'kind'];
const ODD_STRINGS = [
  '',
  ' ',
  '*',
  '*.',
  '.*',
  '[',
  '{{',
  '\u0000',
  '\u202e',
  'é',
  '😀',
  '-1',
  '1e400',
  'null',
  'true',
  '0x10',
  '~',
  '&a',
  '*a',
  '---',
  '...',
  '!!binary',
  'a'.repeat(300),
  '../../etc/passwd',
  'http://[::1',
  '%s%n',
  '\\',
  '"',
  "'",
  '\n\n',
  '#',
  'a: b',
  '- x',
];
const ODD_NUMBERS = [0, -1, 1, 65535, 65536, -2147483649, 2147483648, 4294967296, 1.5, -0.0001, 1e21, Number.MAX_SAFE_INTEGER, 1e308];

/** A random own key, including prototype names (`__proto__` is defined, not assigned). */
function setKey(o: Obj, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

function scalar(r: Rng): unknown {
  switch (r.int(6)) {
    case 0:
      return r.pick(ODD_STRINGS);
    case 1:
      return r.pick(ODD_NUMBERS);
    case 2:
      return r.chance(0.5);
    case 3:
      return null;
    case 4:
      return 'x'.repeat(r.int(2000));
    default:
      return `v${r.int(1000)}`;
  }
}

/** A container somewhere inside `o` (the object itself, or a mapping or list under it). */
function somewhere(r: Rng, o: Obj): Obj | unknown[] {
  let cur: Obj | unknown[] = o;
  for (let d = 0; d < 8 && r.chance(0.75); d++) {
    const vals: unknown[] = Array.isArray(cur) ? cur : Object.values(cur);
    const kids: Array<Obj | unknown[]> = vals.filter((v): v is Obj | unknown[] => typeof v === 'object' && v !== null);
    if (kids.length === 0) break;
    cur = r.pick(kids);
  }
  return cur;
}

function nest(value: unknown, depth: number, arrays: boolean): unknown {
  let v = value;
  for (let i = 0; i < depth; i++) v = arrays ? [v] : { n: v };
  return v;
}

/** One random change somewhere in `o` (in place). `budget` bounds what a change may add. */
function mutate(r: Rng, o: Obj, donors: readonly Obj[]): void {
  const c = somewhere(r, o);
  const keys = Array.isArray(c) ? c.map((_, i) => String(i)) : Object.keys(c);
  const key = keys.length > 0 ? r.pick(keys) : undefined;
  const get = (k: string): unknown => (Array.isArray(c) ? c[Number(k)] : c[k]);
  const put = (k: string, v: unknown): void => {
    if (Array.isArray(c)) c[Number(k)] = v;
    else setKey(c, k, v);
  };
  switch (r.int(10)) {
    case 0: // wrong type or odd value
      if (key !== undefined) put(key, scalar(r));
      break;
    case 1: // gone
      if (key !== undefined) {
        if (Array.isArray(c)) c.splice(Number(key), 1);
        else delete c[key];
      }
      break;
    case 2: // unknown or prototype key
      if (!Array.isArray(c)) setKey(c, r.pick(ODD_KEYS), r.chance(0.5) ? scalar(r) : { hosts: ['evil'], http: [{ route: [{ destination: { host: 'evil' } }] }] });
      break;
    case 3: // repeated items
      if (key !== undefined) {
        const v = get(key);
        const n = r.chance(0.1) ? 3000 : 1 + r.int(20);
        put(
          key,
          Array.from({ length: n }, () => (Array.isArray(v) ? v[0] : v)),
        );
      }
      break;
    case 4: // deeper
      if (key !== undefined) put(key, nest(get(key), r.chance(0.05) ? 100 + r.int(2000) : 1 + r.int(80), r.chance(0.5)));
      break;
    case 5: // a value from another kind (type confusion)
      if (key !== undefined) {
        const d = r.pick(donors);
        put(key, structuredClone(r.pick(Object.values(d))));
      }
      break;
    case 6: // a list becomes a mapping and back
      if (key !== undefined) {
        const v = get(key);
        put(key, Array.isArray(v) ? Object.fromEntries(v.map((x, i) => [String(i), x])) : v && typeof v === 'object' ? Object.values(v) : [v]);
      }
      break;
    case 7: // long key or string
      if (!Array.isArray(c)) setKey(c, 'k'.repeat(r.chance(0.1) ? 100_000 : 1 + r.int(300)), scalar(r));
      break;
    case 8: // names, namespaces and hosts point elsewhere
      // (Not the EDS-only service: a route for it would hide its own endpoints from its client.)
      if (key !== undefined)
        put(
          key,
          r.pick([
            fuzzHost(r.int(EDS_ONLY_SERVICE)),
            `${fuzzHost(r.int(EDS_ONLY_SERVICE))}.${FUZZ_NAMESPACE}.svc.cluster.local`,
            '*',
            'reviews',
            'default',
            'mesh',
            r.pick(ODD_STRINGS),
          ]),
        );
      break;
    default: // a number out of range
      if (key !== undefined) put(key, r.pick(ODD_NUMBERS));
      break;
  }
}

/** Text damage: what an editor, a bad template or a truncated write leaves. */
function damage(r: Rng, text: string): string {
  const at = r.int(text.length + 1);
  switch (r.int(8)) {
    case 0:
      return text.slice(0, at);
    case 1:
      return (
        text.slice(0, at) +
        r.pick(['\t', '"', "'", '[', '{', ']', '}', ':', '- ', '&a ', '*a', '!!int ', '\n---\n', '\n...\n', '%YAML 1.2\n', '\u0000', '<<: *x\n', '? ', '|', '>']) +
        text.slice(at)
      );
    case 2:
      return text.replace(/\n {2}/g, r.chance(0.5) ? '\n' : '\n   ');
    case 3: {
      const lines = text.split('\n');
      const i = r.int(lines.length);
      lines.splice(i, 0, lines[i] ?? '');
      return lines.join('\n');
    }
    case 4:
      return `anchor: &a {x: [1, 2, 3]}\n${text}`;
    default:
      return text;
  }
}

export interface FuzzDoc {
  kind: string;
  text: string;
  /** The object before it was written (and, perhaps, damaged as text). */
  object: Record<string, unknown>;
}

export class Fuzzer {
  private readonly r: Rng;
  private n = 0;

  constructor(readonly seed: number) {
    this.r = new Rng(seed);
  }

  /** The next mutated object as text (YAML or JSON), possibly damaged. */
  next(): FuzzDoc {
    const i = this.n++;
    const all = bases(i, this.r.int(FUZZ_SERVICES));
    const o = structuredClone(this.r.pick(all));
    const kind = String(o['kind']);
    const changes = this.r.chance(0.15) ? 0 : 1 + this.r.int(4);
    for (let c = 0; c < changes; c++) mutate(this.r, o, all);
    let text: string;
    try {
      // `__proto__` keys survive JSON.stringify as own keys; YAML too, but JSON is certain.
      text = this.r.chance(0.6) && !hasOddKey(o) ? stringify(o, { aliasDuplicateObjects: false }) : JSON.stringify(o, null, this.r.chance(0.5) ? 2 : undefined);
    } catch {
      text = JSON.stringify(o);
    }
    if (this.r.chance(0.1)) text = damage(this.r, text);
    return { kind, text, object: o };
  }

  /** `count` objects as one multi-document file. */
  fileWithObjects(count: number): { text: string; docs: FuzzDoc[] } {
    const docs: FuzzDoc[] = [];
    for (let i = 0; i < count; i++) docs.push(this.next());
    return { text: docs.map((d) => d.text).join('\n---\n'), docs };
  }
}

function hasOddKey(o: unknown): boolean {
  const stack: unknown[] = [o];
  let seen = 0;
  while (stack.length > 0 && seen++ < 100_000) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (!Array.isArray(v) && Object.prototype.hasOwnProperty.call(v, '__proto__')) return true;
    for (const x of Array.isArray(v) ? v : Object.values(v)) stack.push(x);
  }
  return false;
}

// ---- the shapes that once hurt ----

export interface Shape {
  name: string;
  /** The file's text (built on demand: some are tens of megabytes). */
  text: () => string;
  /** What meshd must say about it (in configz and `meshd validate`); none: it is valid. */
  expect?: RegExp;
}

const vsHeader = (name: string): Obj => ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: FUZZ_NAMESPACE } });

export const SHAPES: readonly Shape[] = [
  {
    name: 'one-host-3000-times.json',
    text: () =>
      JSON.stringify({
        ...vsHeader('dup-hosts'),
        spec: { hosts: Array.from({ length: 3000 }, () => `${fuzzHost(0)}.${FUZZ_NAMESPACE}.svc.cluster.local`), http: [{ route: [{ destination: { host: fuzzHost(0) } }] }] },
      }),
    expect: /duplicate hosts in virtual service[\s\S]*and at least \d+ more error/,
  },
  {
    name: 'destinationrule-5000-deep.json',
    text: () => {
      const deep = '['.repeat(5000) + ']'.repeat(5000);
      const subsets = Array.from({ length: 1001 }, (_, i) => `{"name":"s${i}","labels":{"version":"v${i}"},"trafficPolicy":${deep}}`).join(',');
      return `{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule","metadata":{"name":"deep","namespace":"${FUZZ_NAMESPACE}"},"spec":{"host":"${fuzzHost(1)}","subsets":[${subsets}]}}`;
    },
    expect: /nested deeper than \d+ levels/,
  },
  {
    name: 'arrays-850-deep.json',
    text: () => `{"apiVersion":"v1","kind":"Service","metadata":{"name":"deep-arrays","namespace":"${FUZZ_NAMESPACE}"},"spec":{"ports":${'['.repeat(850)}${']'.repeat(850)}}}`,
    expect: /nested deeper than \d+ levels/,
  },
  {
    name: 'routes-under-proto.json',
    text: () =>
      `{"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{"name":"proto","namespace":"${FUZZ_NAMESPACE}"},"spec":{"__proto__":{"hosts":["${fuzzHost(2)}"],"http":[{"route":[{"destination":{"host":"evil"}}]}]},"constructor":{"x":1},"toString":"y"}}`,
    expect: /spec\.__proto__: the key "__proto__" is not allowed/,
  },
  {
    name: 'unknown-prototype-fields.yaml',
    text: () =>
      `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: proto-fields, namespace: ${FUZZ_NAMESPACE}}\nspec:\n  hosts: [${fuzzHost(2)}]\n  constructor: 1\n  toString: 2\n  http:\n  - route:\n    - destination: {host: ${fuzzHost(2)}}\n`,
    expect: /spec\.constructor: unknown field "constructor"/,
  },
  {
    name: 'one-address-two-slices.yaml',
    text: () =>
      [0, 1]
        .map(
          (n) =>
            `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: twice-${n}\n  namespace: ${FUZZ_NAMESPACE}\n  labels: {kubernetes.io/service-name: ${fuzzHost(EDS_ONLY_SERVICE)}}\naddressType: IPv4\nports: [{name: grpc, port: 9080}]\nendpoints:\n- addresses: [10.79.0.1]\n  conditions: {ready: true}\n`,
        )
        .join('---\n'),
  },
  {
    name: '100000-documents.yaml',
    text: () => Array.from({ length: 100_000 }, (_, i) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: flood-${i}}\n`).join('---\n'),
    expect: /the file holds 100000 documents, more than the limit of \d+/,
  },
  {
    name: 'alias-heavy.yaml',
    text: () => {
      const wide = Array.from({ length: 1000 }, (_, i) => `    k${i}: v`).join('\n');
      const doc = (d: number): string =>
        `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: alias-${d}\n  labels: &w${d}\n${wide}\n  annotations:\n${Array.from({ length: 99 }, (_, i) => `    a${i}: *w${d}`).join('\n')}\n`;
      return Array.from({ length: 12 }, (_, d) => doc(d)).join('---\n');
    },
    expect: /YAML aliases expand to \d+ more nodes/,
  },
  {
    name: 'alias-bomb.yaml',
    text: () => {
      let bomb = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
      for (let i = 1; i < 10; i++)
        bomb += `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]\n`;
      return `${bomb}apiVersion: v1\nkind: Namespace\nmetadata: {name: bomb}\n`;
    },
    expect: /YAML aliases expand to \d+ more nodes/,
  },
  {
    name: 'fifty-megabytes.yaml',
    text: () => `apiVersion: v1\nkind: Namespace\nmetadata: {name: huge}\n# ${'x'.repeat(50 * 1024 * 1024)}\n`,
    expect: /the file is \d+ bytes, more than the limit of \d+; it is refused unread/,
  },
  {
    name: 'megabyte-key-and-name.json',
    text: () =>
      JSON.stringify({
        ...vsHeader('n'.repeat(1024 * 1024)),
        spec: { hosts: [fuzzHost(3)], ['k'.repeat(1024 * 1024)]: 1, http: [{ route: [{ destination: { host: fuzzHost(3) } }] }] },
      }),
    expect: /more characters\)/,
  },
];
