/**
 * `meshctl analyze`: each analyzer's code on a crafted folder (code, resource, text, file:line),
 * nothing on the bundled examples, istioctl's exit codes and thresholds, suppressions, and
 * `-k` against the fake Kubernetes API server.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { type Level, type Message } from '../src/analyze';
import { readFiles } from '../src/analyze/read';
import { EXIT_ANALYZER_FOUND_ISSUES, EXIT_DATA_ERROR, EXIT_INCORRECT_USAGE, runAnalysis } from '../src/cli/analyze';
import { SHAPES } from './helpers/fuzz';
import { type KubeApiServer, startKubeApiServer } from './helpers/kube-api-server';

const ROOT = path.join(__dirname, '..');
const MESHCTL = path.join(ROOT, 'src', 'cli', 'meshctl.ts');
const EXAMPLES = path.join(ROOT, 'examples');

/** A small mesh every case adds to: bookinfo's reviews, an injected namespace, an ingress gateway with its Service, pod and credential. */
const BASE = `
apiVersion: v1
kind: Namespace
metadata: { name: default, labels: { istio-injection: enabled } }
---
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec:
  selector: { app: reviews }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v1, namespace: default, labels: { app: reviews, version: v1 } }
spec: { containers: [{ name: reviews }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  subsets: [{ name: v1, labels: { version: v1 } }]
---
apiVersion: v1
kind: Service
metadata: { name: istio-ingressgateway, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  ports: [{ name: http2, port: 80, targetPort: 8080 }, { name: https, port: 443, targetPort: 8443 }]
---
apiVersion: v1
kind: Pod
metadata: { name: ingress-1, namespace: istio-system, labels: { istio: ingressgateway } }
spec: { containers: [{ name: istio-proxy }] }
---
apiVersion: v1
kind: Secret
metadata: { name: cred, namespace: istio-system }
type: kubernetes.io/tls
data: { tls.crt: "", tls.key: "" }
`;

let tmp = '';
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshctl-analyze-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Case {
  dir: string;
  file: string;
}

function folder(name: string, yaml: string, base = BASE): Case {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'base.yaml'), base);
  const file = path.join(dir, 'case.yaml');
  fs.writeFileSync(file, yaml.replace(/^\n/, ''));
  return { dir, file };
}

function run(
  inputs: string[],
  o: { failure?: Level; outputLevel?: Level; output?: 'log' | 'json' | 'yaml'; namespace?: string; all?: boolean; suppress?: Array<{ code: string; resource: RegExp }> } = {},
) {
  const read = readFiles(inputs);
  return runAnalysis(
    read,
    {
      allNamespaces: o.all ?? true,
      namespace: o.namespace,
      istioNamespace: 'istio-system',
      output: o.output ?? 'log',
      failure: o.failure ?? 'Error',
      outputLevel: o.outputLevel ?? 'Info',
      suppress: o.suppress ?? [],
    },
    (f) => fs.readFileSync(f, 'utf8'),
  );
}

/** The log lines of one run. */
function lines(inputs: string[]): string[] {
  return run(inputs)
    .stdout.split('\n')
    .filter((l) => l !== '');
}

/** The 1-based line of the first line of `file` containing `needle`. */
function lineOf(file: string, needle: string): number {
  const i = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `${needle} not in ${file}`);
  return i + 1;
}

test('the base mesh of the crafted cases is clean', () => {
  const c = folder('base', '');
  assert.deepEqual(lines([c.dir]), []);
});

const CASES: Array<{ name: string; yaml: string; expect: Array<{ level: string; code: string; origin: string; text: string; at?: string }> }> = [
  {
    name: 'IST0101 destination host',
    yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: nope
`,
    expect: [{ level: 'Error', code: 'IST0101', origin: 'VirtualService default/r', text: 'Referenced host not found: "nope"', at: 'host: nope' }],
  },
  {
    name: 'IST0101 destination host:port',
    yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
        port:
          number: 9999
`,
    expect: [{ level: 'Error', code: 'IST0101', origin: 'VirtualService default/r', text: 'Referenced host:port not found: "reviews:9999"', at: 'number: 9999' }],
  },
  {
    name: 'IST0101 subset',
    yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
        subset: v9
`,
    expect: [{ level: 'Error', code: 'IST0101', origin: 'VirtualService default/r', text: 'Referenced host+subset in destinationrule not found: "reviews+v9"', at: 'subset: v9' }],
  },
  {
    name: 'IST0101 gateway (and IST0132 with it, as Istio reports both)',
    yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: default }
spec:
  hosts: [reviews.example.com]
  gateways:
  - missing-gw
  http:
  - route:
    - destination:
        host: reviews
`,
    expect: [
      { level: 'Error', code: 'IST0101', origin: 'VirtualService default/r', text: 'Referenced gateway not found: "missing-gw"', at: '- missing-gw' },
      {
        level: 'Warning',
        code: 'IST0132',
        origin: 'VirtualService default/r',
        text: 'one or more host [reviews.example.com] defined in VirtualService default/r not found in Gateway default/missing-gw.',
        at: '- missing-gw',
      },
    ],
  },
  {
    name: 'IST0101 gateway selector and IST0101 credentialName',
    yaml: `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: nothing }
  servers:
  - port: { number: 443, name: https, protocol: HTTPS }
    hosts: ["*"]
    tls: { mode: SIMPLE, credentialName: no-such-cred }
`,
    expect: [
      { level: 'Error', code: 'IST0101', origin: 'Gateway istio-system/gw', text: 'Referenced selector not found: "istio=nothing"', at: 'selector:' },
      { level: 'Error', code: 'IST0101', origin: 'Gateway istio-system/gw', text: 'Referenced credentialName not found: "no-such-cred"', at: 'credentialName: no-such-cred' },
    ],
  },
  {
    name: 'IST0101 Sidecar egress host',
    yaml: `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: default }
spec:
  egress:
  - hosts:
    - "default/reviews.default.svc.cluster.local"
    - "default/ghost.default.svc.cluster.local"
    - "istio-system/*"
`,
    expect: [{ level: 'Error', code: 'IST0101', origin: 'Sidecar default/default', text: 'Referenced host not found: "default/ghost.default.svc.cluster.local"', at: 'ghost' }],
  },
  {
    name: 'IST0102 namespace not injected',
    yaml: `
apiVersion: v1
kind: Namespace
metadata: { name: plain }
`,
    expect: [
      {
        level: 'Info',
        code: 'IST0102',
        origin: 'Namespace plain',
        text: "The namespace is not enabled for Istio injection. Run 'kubectl label namespace plain istio-injection=enabled' to enable it, or 'kubectl label namespace plain istio-injection=disabled' to explicitly mark it as not needing injection.",
        at: 'name: plain',
      },
    ],
  },
  {
    name: 'IST0106 schema error with its field path',
    yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: bad, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: { host: reviews }
    timeout: 5x
`,
    expect: [
      { level: 'Error', code: 'IST0106', origin: 'VirtualService default/bad', text: 'Schema validation error: spec.http[0].timeout: invalid duration "5x"', at: 'timeout: 5x' },
    ],
  },
  {
    name: 'IST0109 conflicting mesh VirtualService hosts',
    yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: a, namespace: default }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews } }] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: b, namespace: default }
spec:
  hosts: [reviews.default.svc.cluster.local]
  http: [{ route: [{ destination: { host: reviews } }] }]
`,
    expect: ['a', 'b'].map((n) => ({
      level: 'Error',
      code: 'IST0109',
      origin: `VirtualService default/${n}`,
      text: 'The VirtualServices default/a,default/b associated with mesh gateway define the same host */reviews.default.svc.cluster.local which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.',
      at: `name: ${n},`,
    })),
  },
  {
    name: 'IST0111 two Sidecars without a workload selector',
    yaml: `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: s1, namespace: default }
spec: { egress: [{ hosts: ["./*"] }] }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: s2, namespace: default }
spec: { egress: [{ hosts: ["./*"] }] }
`,
    expect: ['s1', 's2'].map((n) => ({
      level: 'Error',
      code: 'IST0111',
      origin: `Sidecar default/${n}`,
      text: 'The Sidecars [default/s1 default/s2] in namespace "default" have no workload selector, which can lead to undefined behavior.',
    })),
  },
  {
    name: 'IST0101 Sidecar selector and IST0110 Sidecars selecting the same pod',
    yaml: `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: a, namespace: default }
spec:
  workloadSelector: { labels: { app: reviews } }
  egress: [{ hosts: ["./*"] }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: b, namespace: default }
spec:
  workloadSelector: { labels: { version: v1 } }
  egress: [{ hosts: ["./*"] }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: c, namespace: default }
spec:
  workloadSelector: { labels: { app: ghost } }
  egress: [{ hosts: ["./*"] }]
`,
    expect: [
      { level: 'Error', code: 'IST0101', origin: 'Sidecar default/c', text: 'Referenced selector not found: "app=ghost"' },
      ...['a', 'b'].map((n) => ({
        level: 'Error',
        code: 'IST0110',
        origin: `Sidecar default/${n}`,
        text: 'The Sidecars [default/a default/b] in namespace "default" select the same workload pod "reviews-v1", which can lead to undefined behavior.',
      })),
    ],
  },
  {
    name: 'IST0127 AuthorizationPolicy selecting no workload',
    yaml: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: default }
spec:
  selector:
    matchLabels: { app: ghost }
  action: ALLOW
`,
    expect: [
      {
        level: 'Warning',
        code: 'IST0127',
        origin: 'AuthorizationPolicy default/p',
        text: 'No matching workloads for this resource with the following labels: app=ghost',
        at: 'selector:',
      },
    ],
  },
  {
    name: 'IST0134 ServiceEntry without addresses on a TCP port',
    yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: default }
spec:
  hosts: [db.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - number: 443
    name: https
    protocol: HTTPS
  - number: 5432
    name: tcp-pg
    protocol: TCP
`,
    expect: [{ level: 'Warning', code: 'IST0134', origin: 'ServiceEntry default/db', text: 'ServiceEntry addresses are required for this protocol.', at: '- number: 5432' }],
  },
  {
    name: 'IST0107 misplaced, IST0108 unknown and IST0135 deprecated annotations; galley.istio.io/analyze-suppress',
    yaml: `
apiVersion: v1
kind: Service
metadata:
  name: annotated
  namespace: default
  annotations:
    sidecar.istio.io/proxyCPU: 100m
    sidecar.istio.io/no-such-thing: "1"
    example.com/not-istio: "x"
spec:
  selector: { app: reviews }
  ports: [{ name: http, port: 80 }]
---
apiVersion: v1
kind: Pod
metadata:
  name: old
  namespace: default
  annotations:
    sidecar.istio.io/statsInclusionPrefixes: cluster
spec: { containers: [{ name: app }] }
---
apiVersion: v1
kind: Pod
metadata:
  name: quiet
  namespace: default
  annotations:
    sidecar.istio.io/what: "1"
    galley.istio.io/analyze-suppress: IST0108
spec: { containers: [{ name: app }] }
`,
    expect: [
      {
        level: 'Warning',
        code: 'IST0107',
        origin: 'Service default/annotated',
        text: 'Misplaced annotation: sidecar.istio.io/proxyCPU can only be applied to Pod',
        at: 'sidecar.istio.io/proxyCPU',
      },
      { level: 'Warning', code: 'IST0108', origin: 'Service default/annotated', text: 'Unknown annotation: sidecar.istio.io/no-such-thing', at: 'no-such-thing' },
      {
        level: 'Info',
        code: 'IST0135',
        origin: 'Pod default/old',
        text: 'Annotation "sidecar.istio.io/statsInclusionPrefixes" has been deprecated and may not work in future Istio versions.',
        at: 'statsInclusionPrefixes',
      },
    ],
  },
  {
    name: 'IST0159 Telemetries selecting the same pod and IST0160 two selector-less Telemetries',
    yaml: `
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: t1, namespace: default }
spec: { selector: { matchLabels: { app: reviews } }, accessLogging: [{ providers: [{ name: envoy }] }] }
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: t2, namespace: default }
spec: { selector: { matchLabels: { version: v1 } }, accessLogging: [{ providers: [{ name: envoy }] }] }
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: n1, namespace: default }
spec: { accessLogging: [{ providers: [{ name: envoy }] }] }
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: n2, namespace: default }
spec: { accessLogging: [{ providers: [{ name: envoy }] }] }
`,
    expect: [
      ...['t1', 't2'].map((n) => ({
        level: 'Error',
        code: 'IST0159',
        origin: `Telemetry default/${n}`,
        text: 'The Telemetries [default/t1 default/t2] in namespace "default" select the same workload pod "reviews-v1", which can lead to undefined behavior.',
      })),
      ...['n1', 'n2'].map((n) => ({
        level: 'Error',
        code: 'IST0160',
        origin: `Telemetry default/${n}`,
        text: 'The Telemetries [default/n1 default/n2] in namespace "default" have no workload selector, which can lead to undefined behavior.',
        at: `name: ${n},`,
      })),
    ],
  },
  {
    name: 'IST0112 destination port required, IST0118 port name',
    yaml: `
apiVersion: v1
kind: Service
metadata: { name: multi, namespace: default }
spec:
  selector: { app: multi }
  ports: [{ name: http, port: 80 }, { name: metrics, port: 9090, targetPort: 19090 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: m, namespace: default }
spec:
  hosts: [multi]
  http: [{ route: [{ destination: { host: multi } }] }]
`,
    expect: [
      {
        level: 'Error',
        code: 'IST0112',
        origin: 'VirtualService default/m',
        text: 'This VirtualService routes to a service "multi" that exposes multiple ports [80 9090]. Specifying a port in the destination is required to disambiguate.',
      },
      {
        level: 'Info',
        code: 'IST0118',
        origin: 'Service default/multi',
        text: "Port name metrics (port: 9090, targetPort: 19090) doesn't follow the naming convention of Istio port.",
        at: 'metrics',
      },
    ],
  },
  {
    name: 'IST0123 two injection labels',
    yaml: `
apiVersion: v1
kind: Namespace
metadata: { name: both, labels: { istio-injection: enabled, istio.io/rev: canary } }
`,
    expect: [
      {
        level: 'Warning',
        code: 'IST0123',
        origin: 'Namespace both',
        text: 'The namespace has more than one type of injection labels [istio-injection istio.io/rev], which may lead to undefined behavior. Make sure only one injection label exists.',
      },
    ],
  },
  {
    name: 'IST0128 and IST0129 DestinationRule TLS without caCertificates',
    yaml: `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ext, namespace: default }
spec:
  host: api.example.com
  trafficPolicy:
    tls: { mode: SIMPLE }
    portLevelSettings:
    - port: { number: 8443 }
      tls: { mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem }
`,
    expect: [
      {
        level: 'Warning',
        code: 'IST0128',
        origin: 'DestinationRule default/ext',
        text: 'DestinationRule default/ext in namespace default has TLS mode set to SIMPLE but no caCertificates are set to validate server identity for host: api.example.com',
        at: 'mode: SIMPLE',
      },
      {
        level: 'Warning',
        code: 'IST0129',
        origin: 'DestinationRule default/ext',
        text: 'DestinationRule default/ext in namespace default has TLS mode set to MUTUAL but no caCertificates are set to validate server identity for host: api.example.com at port number:8443',
        at: 'mode: MUTUAL',
      },
    ],
  },
  {
    name: 'IST0130 unreachable rule and IST0131 ineffective match',
    yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: dup, namespace: default }
spec:
  hosts: [reviews]
  http:
  - match: [{ uri: { prefix: /a } }]
    route: [{ destination: { host: reviews } }]
  - match: [{ uri: { prefix: /a } }]
    route: [{ destination: { host: reviews } }]
  - route: [{ destination: { host: reviews } }]
`,
    expect: [
      { level: 'Warning', code: 'IST0130', origin: 'VirtualService default/dup', text: 'VirtualService rule #1 not used (all matches used by prior rules).' },
      { level: 'Info', code: 'IST0131', origin: 'VirtualService default/dup', text: 'VirtualService rule #1 match #0 is not used (duplicate/overlapping match in rule #0).' },
    ],
  },
  {
    name: 'IST0132 VirtualService host not in its Gateway',
    yaml: `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["shop.example.com"] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: default }
spec:
  hosts: [reviews.example.com]
  gateways: [istio-system/gw]
  http: [{ route: [{ destination: { host: reviews } }] }]
`,
    expect: [
      {
        level: 'Warning',
        code: 'IST0132',
        origin: 'VirtualService default/r',
        text: 'one or more host [reviews.example.com] defined in VirtualService default/r not found in Gateway istio-system/gw.',
        at: 'gateways:',
      },
    ],
  },
  {
    name: 'IST0133 schema warning',
    yaml: `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: dup-hosts, namespace: default }
spec:
  workloadSelector: { labels: { app: reviews } }
  egress: [{ hosts: ["./reviews.default.svc.cluster.local", "./reviews.default.svc.cluster.local"] }]
`,
    expect: [
      {
        level: 'Warning',
        code: 'IST0133',
        origin: 'Sidecar default/dup-hosts',
        text: 'Schema validation warning: spec.egress[0].hosts[1]: duplicated egress host: ./reviews.default.svc.cluster.local',
      },
    ],
  },
  {
    name: 'IST0145 conflicting gateways',
    yaml: `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: g1, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*.example.com"] }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: g2, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["shop.example.com"] }]
`,
    expect: [
      {
        level: 'Error',
        code: 'IST0145',
        origin: 'Gateway istio-system/g1',
        text: 'Conflict with gateways istio-system/g2 (workload selector istio=ingressgateway, port 80, hosts *.example.com).',
      },
      {
        level: 'Error',
        code: 'IST0145',
        origin: 'Gateway istio-system/g2',
        text: 'Conflict with gateways istio-system/g1 (workload selector istio=ingressgateway, port 80, hosts shop.example.com).',
      },
    ],
  },
  {
    name: 'IST0162 gateway port not on its Service',
    yaml: `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 8080, name: http, protocol: HTTP }
    hosts: ["a.example.com"]
  - port: { number: 443, name: https, protocol: HTTPS }
    hosts: ["b.example.com"]
    tls: { mode: SIMPLE, credentialName: cred }
  - port: { number: 9000, name: tcp, protocol: TCP }
    hosts: ["c.example.com"]
`,
    expect: [
      {
        level: 'Warning',
        code: 'IST0162',
        origin: 'Gateway istio-system/gw',
        text: 'The gateway is listening on a target port (port 9000) that is not defined in the Service associated with its workload instances (Pod selector istio=ingressgateway). If you need to access the gateway port through the gateway Service, it will not be available.',
        at: 'number: 9000',
      },
    ],
  },
];

for (const c of CASES) {
  test(`analyze finds ${c.name}`, () => {
    const f = folder(c.name.replace(/[^a-z0-9]+/gi, '-'), c.yaml);
    const got = lines([f.dir]);
    assert.equal(got.length, c.expect.length, got.join('\n'));
    c.expect.forEach((e, i) => {
      const ref = e.at !== undefined ? ` ${f.file}:${lineOf(f.file, e.at)}` : ` ${f.file}:\\d+`;
      const re = new RegExp(`^${e.level} \\[${e.code}\\] \\(${esc(e.origin)}${e.at !== undefined ? esc(ref) : ref}\\) ${esc(e.text)}${e.code === 'IST0106' ? '.+' : ''}$`);
      assert.match(got[i] ?? '', re);
    });
  });
}

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test('analyze finds nothing on the bundled examples (bookinfo, its gateway, each traffic-management step applied over it)', () => {
  const bookinfo = path.join(EXAMPLES, 'bookinfo');
  const gateway = path.join(EXAMPLES, 'bookinfo-gateway');
  const steps = fs.readdirSync(path.join(EXAMPLES, 'traffic-management')).map((s) => path.join(EXAMPLES, 'traffic-management', s));
  assert.ok(steps.length >= 9);
  for (const inputs of [[bookinfo], [bookinfo, gateway], ...steps.map((s) => [bookinfo, gateway, s])]) {
    const r = run(inputs);
    assert.equal(r.stdout, '\n', `${inputs.join(' ')}:\n${r.stdout}`);
    assert.equal(r.exitCode, 0);
    assert.match(r.stderr, /^\u2714 No validation issues found when analyzing /);
  }
});

test('exit codes and thresholds follow istioctl: 79 at --failure-threshold, --output-threshold filters, json/yaml never fail', () => {
  const warn = folder('thresholds', CASES.find((c) => c.name.startsWith('IST0128'))?.yaml ?? '');
  const info = folder('thresholds-info', 'apiVersion: v1\nkind: Namespace\nmetadata: { name: plain }\n');
  // Warnings only: Error threshold passes, Warning threshold fails.
  assert.equal(run([warn.dir]).exitCode, 0);
  assert.equal(run([warn.dir], { failure: 'Warning' }).exitCode, EXIT_ANALYZER_FOUND_ISSUES);
  assert.equal(run([info.dir], { failure: 'Warning' }).exitCode, 0);
  assert.equal(run([info.dir], { failure: 'Info' }).exitCode, EXIT_ANALYZER_FOUND_ISSUES);
  // The output threshold hides lower levels but does not change the exit code.
  const hidden = run([info.dir], { outputLevel: 'Warning', failure: 'Info' });
  assert.equal(hidden.stdout, '\n');
  assert.equal(hidden.exitCode, EXIT_ANALYZER_FOUND_ISSUES);
  // json: istioctl's fields, exit 0 whatever was found.
  const err = folder('json', CASES[0]?.yaml ?? '');
  const j = run([err.dir], { output: 'json' });
  assert.equal(j.exitCode, 0);
  const parsed = JSON.parse(j.stdout) as Array<Record<string, string>>;
  assert.deepEqual(parsed, [
    {
      code: 'IST0101',
      documentationUrl: 'https://istio.io/latest/docs/reference/config/analysis/ist0101/?ref=istioctl-analyze',
      level: 'Error',
      message: 'Referenced host not found: "nope"',
      origin: 'VirtualService default/r',
      reference: `${err.file}:${lineOf(err.file, 'host: nope')}`,
    },
  ]);
  assert.match(run([err.dir], { output: 'yaml' }).stdout, /^- code: IST0101\n/);
  // Namespace scope: without -A only the chosen namespace is reported.
  assert.equal(run([err.dir], { all: false, namespace: 'other' }).stdout, '\n');
  assert.equal(run([err.dir], { all: false }).exitCode, EXIT_ANALYZER_FOUND_ISSUES);
  // A suppression removes exactly that code on that resource.
  const sup = run([err.dir], { suppress: [{ code: 'IST0101', resource: /^VirtualService r\.default$/ }] });
  assert.equal(sup.exitCode, 0);
});

function meshctl(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MESHCTL, 'analyze', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the meshctl analyze command: exit 79 with istioctl lines, 65 for unparseable files, 64 for bad flags, -S, -L', () => {
  const err = folder('cli', CASES[0]?.yaml ?? '');
  const r = meshctl(['--use-kube=false', '-A', err.dir]);
  assert.equal(r.status, EXIT_ANALYZER_FOUND_ISSUES, r.stderr);
  assert.equal(r.stdout, `Error [IST0101] (VirtualService default/r ${err.file}:${lineOf(err.file, 'host: nope')}) Referenced host not found: "nope"\n`);
  assert.match(r.stderr, /Analyzers found issues when analyzing all namespaces/);
  const s = meshctl(['--use-kube=false', '-A', '-f', err.dir, '-S', 'IST0101=VirtualService r.*']);
  assert.equal(s.status, 0, s.stdout + s.stderr);
  const bad = folder('unparseable', 'kind: [unclosed\n');
  const p = meshctl(['--use-kube=false', '-A', bad.file]);
  assert.equal(p.status, EXIT_DATA_ERROR, p.stdout + p.stderr);
  assert.match(p.stderr, /could not be parsed/);
  assert.equal(meshctl(['--use-kube=false', '-o', 'table', err.dir]).status, EXIT_INCORRECT_USAGE);
  assert.equal(meshctl(['--use-kube=false', '--failure-threshold', 'Fatal', err.dir]).status, EXIT_INCORRECT_USAGE);
  const l = meshctl(['-L']);
  assert.equal(l.status, 0);
  assert.match(l.stdout, /\* virtualservice\.DestinationHostAnalyzer:\n {4}Checks/);
});

/** meshctl analyze without blocking this process's event loop (the fake API server answers from it). */
function meshctlAsync(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', MESHCTL, 'analyze', ...args],
      { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null;
        resolve({ status: code, stdout, stderr });
      },
    );
  });
}

test('analyze -k reads the cluster from the kubeconfig (fake API server) and overlays files on it', async (t) => {
  const api: KubeApiServer = await startKubeApiServer();
  t.after(() => api.close());
  api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default', labels: { 'istio-injection': 'enabled' } } });
  // Annotations from the cluster count too: this Pod's unknown one is silenced by its own suppression.
  api.store.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', annotations: { 'sidecar.istio.io/nope': '1', 'galley.istio.io/analyze-suppress': 'IST0108' } },
    spec: { containers: [{ name: 'app' }] },
  });
  api.store.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'q', namespace: 'default', annotations: { 'sidecar.istio.io/nope': '1' } },
    spec: { containers: [{ name: 'app' }] },
  });
  api.store.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'reviews', namespace: 'default' },
    spec: { selector: { app: 'reviews' }, ports: [{ name: 'http', port: 9080 }] },
  });
  api.store.create({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'r', namespace: 'default' },
    spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] },
  });
  const r = await meshctlAsync(['-k', '--kubeconfig', api.kubeconfigPath]);
  assert.equal(r.status, EXIT_ANALYZER_FOUND_ISSUES, r.stderr);
  // Cluster objects carry no file reference.
  assert.equal(
    r.stdout,
    'Error [IST0101] (VirtualService default/r) Referenced host+subset in destinationrule not found: "reviews+v2"\nWarning [IST0108] (Pod default/q) Unknown annotation: sidecar.istio.io/nope\n',
  );
  assert.ok(api.requests.some((q) => q.path.startsWith('/apis/networking.istio.io/v1/virtualservices')));
  // A file applied over the cluster: the DestinationRule that defines v2 makes it clean.
  const f = path.join(tmp, 'dr-v2.yaml');
  fs.writeFileSync(
    f,
    'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: reviews, namespace: default }\nspec: { host: reviews, subsets: [{ name: v2, labels: { version: v2 } }] }\n',
  );
  // (`-k FILE`: the flag's optional value is the file, which stays an input.)
  const o = await meshctlAsync(['--kubeconfig', api.kubeconfigPath, '-k', f]);
  assert.equal(o.status, 0, o.stdout + o.stderr);
  assert.equal(o.stdout, 'Warning [IST0108] (Pod default/q) Unknown annotation: sidecar.istio.io/nope\n');
  // Suppressed on the command line as well: nothing left.
  const quiet = await meshctlAsync(['--kubeconfig', api.kubeconfigPath, '-k', f, '-S', 'IST0108=Pod *']);
  assert.match(quiet.stderr, /No validation issues found when analyzing namespace: default\./);
  // A namespace the cluster does not have: istioctl's note, nothing analyzed.
  const none = await meshctlAsync(['-k', '--kubeconfig', api.kubeconfigPath, '-n', 'nowhere']);
  assert.equal(none.status, 0);
  assert.equal(none.stderr, 'namespace "nowhere" not found\n');
  // Without -k or files, analyze reads the cluster (istioctl's default).
  const d = await meshctlAsync([], { KUBECONFIG: api.kubeconfigPath });
  assert.equal(d.status, EXIT_ANALYZER_FOUND_ISSUES, d.stderr);
});

export type { Message };

test('analyze survives every input shape that once hurt meshd: no crash, no internal error, bounded output', () => {
  const dir = path.join(tmp, 'shapes');
  fs.mkdirSync(dir, { recursive: true });
  for (const s of SHAPES) {
    const file = path.join(dir, s.name);
    fs.writeFileSync(file, s.text());
    const r = run([file]);
    assert.doesNotMatch(r.stdout, /IST0001|Internal error/, s.name);
    // Every line bounded: a megabyte name or 3,000 errors never become megabytes of output.
    assert.ok(r.stdout.length < 200_000, `${s.name}: ${r.stdout.length} bytes of output`);
    fs.rmSync(file);
  }
});
