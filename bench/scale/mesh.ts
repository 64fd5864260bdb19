/**
 * Generated mesh for the scale benchmark, written as a meshd config folder. Every address is
 * config text in 127.0.0.0/8 (nothing is ever dialled):
 *  - namespaces ns-0..ns-(N-1); Service svc-i in ns-(i % N), ports http 8080 and grpc 9090;
 *    half exported mesh-wide, half namespace-local (networking.istio.io/exportTo: "."),
 *    alternating within each namespace;
 *  - one EndpointSlice per service (eps-<i>.yaml), E endpoints each backed by a Pod svc-i-<k>
 *    (version v1 for even k, v2 for odd k) with the endpoint's address as podIP;
 *  - DestinationRules (subsets v1/v2) for the first --dr services, one file;
 *  - VirtualServices for the first --vs services, one file each (vs-<i>.yaml):
 *    end-user: jason → v2, else 90 v1 / 10 v2.
 *  - with --sidecar-scope, a Sidecar `default` in each namespace: egress `./*` and `istio-system/*`.
 * Sidecar proxies are pods svc-i-<k>: proxy s runs in pod (s % S, floor(s / S)).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ProxySpec } from './ipc';

export interface MeshSize {
  services: number;
  endpoints: number;
  namespaces: number;
  vs: number;
  dr: number;
  sidecars: number;
  grpc: number;
  /** Each namespace gets a Sidecar limiting egress to its own services and istio-system's (`./*`, `istio-system/*`). */
  sidecarScope: boolean;
}

/** The service whose VirtualService the route changes edit (exported, has a VirtualService). */
export const ROUTE_SERVICE = 0;

export const ns = (m: MeshSize, i: number): string => `ns-${i % m.namespaces}`;
/** Half the services are exported; alternating within each namespace (so every namespace has both kinds). */
export const isExported = (m: MeshSize, i: number): boolean => (i + Math.floor(i / m.namespaces)) % 2 === 0;

/** The services whose EndpointSlices the endpoint changes edit: a namespace-local and an exported one (not svc-0). */
export function endpointTargets(m: MeshSize): { local: number; exported: number } {
  const find = (exported: boolean): number => {
    for (let i = 1; i < m.services; i++) if (isExported(m, i) === exported) return i;
    throw new Error(`no ${exported ? 'exported' : 'namespace-local'} service besides svc-0; use more --services`);
  };
  return { local: find(false), exported: find(true) };
}
const b2 = (n: number): string => `${(n >> 8) & 255}.${n & 255}`;
/** Address of endpoint k of service i; `moved` gives the endpoint a new address (same pod). */
export const podIp = (i: number, k: number, moved = false): string => (moved ? `127.200.${b2(i)}` : `127.${10 + k}.${b2(i)}`);
const version = (k: number): string => (k % 2 === 0 ? 'v1' : 'v2');

/** Writes a file atomically (temporary name, then rename), so the watcher never sees half of it. */
export function atomicWrite(dir: string, file: string, text: string): void {
  const tmp = path.join(dir, `.${file}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, path.join(dir, file));
}

function serviceYaml(m: MeshSize, i: number): string {
  const annotations = isExported(m, i) ? '' : `\n  annotations:\n    networking.istio.io/exportTo: "."`;
  return `apiVersion: v1
kind: Service
metadata:
  name: svc-${i}
  namespace: ${ns(m, i)}${annotations}
spec:
  clusterIP: 10.96.${b2(i)}
  selector:
    app: svc-${i}
  ports:
  - name: http
    port: 8080
    targetPort: 8080
  - name: grpc
    port: 9090
    targetPort: 9090
`;
}

function podYaml(m: MeshSize, i: number, k: number): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: svc-${i}-${k}
  namespace: ${ns(m, i)}
  labels:
    app: svc-${i}
    version: ${version(k)}
    security.istio.io/tlsMode: istio
spec:
  serviceAccountName: svc-${i}
  containers:
  - name: app
    image: app:1
    ports:
    - containerPort: 8080
    - containerPort: 9090
status:
  phase: Running
  podIP: ${podIp(i, k)}
  podIPs:
  - ip: ${podIp(i, k)}
`;
}

/** The EndpointSlice of service i; `moved` moves its last endpoint to another address. */
export function sliceYaml(m: MeshSize, i: number, moved: boolean): string {
  const eps: string[] = [];
  for (let k = 0; k < m.endpoints; k++) {
    eps.push(`- addresses:
  - ${podIp(i, k, moved && k === m.endpoints - 1)}
  conditions:
    ready: true
    serving: true
    terminating: false
  targetRef:
    kind: Pod
    name: svc-${i}-${k}
    namespace: ${ns(m, i)}`);
  }
  return `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc-${i}-abcde
  namespace: ${ns(m, i)}
  labels:
    kubernetes.io/service-name: svc-${i}
    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
addressType: IPv4
ports:
- name: http
  port: 8080
  protocol: TCP
- name: grpc
  port: 9090
  protocol: TCP
endpoints:
${eps.join('\n')}
`;
}

function drYaml(m: MeshSize, i: number): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: svc-${i}
  namespace: ${ns(m, i)}
spec:
  host: svc-${i}
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
`;
}

/** The VirtualService of service i with weight v1/v2 = w/(100-w); `touch` adds an annotation meshd ignores. */
export function vsYaml(m: MeshSize, i: number, w: number, touch?: number): string {
  const annotations = touch === undefined ? '' : `\n  annotations:\n    bench/touch: "${touch}"`;
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: svc-${i}
  namespace: ${ns(m, i)}${annotations}
spec:
  hosts:
  - svc-${i}
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: svc-${i}
        subset: v2
  - route:
    - destination:
        host: svc-${i}
        subset: v1
      weight: ${w}
    - destination:
        host: svc-${i}
        subset: v2
      weight: ${100 - w}
`;
}

export const vsFile = (i: number): string => `vs-${i}.yaml`;
export const sliceFile = (i: number): string => `eps-${i}.yaml`;

/** Writes the whole mesh into `dir` (which must exist). Returns the number of objects. */
export function writeMesh(dir: string, m: MeshSize): number {
  let objects = 0;
  const join = (docs: string[]): string => docs.join('---\n');
  const nsDocs: string[] = [];
  for (let j = 0; j < m.namespaces; j++) nsDocs.push(`apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-${j}\n  labels:\n    istio-injection: enabled\n`);
  atomicWrite(dir, 'namespaces.yaml', join(nsDocs));
  objects += nsDocs.length;
  const svcDocs: string[] = [];
  const podDocs: string[][] = Array.from({ length: m.namespaces }, () => []);
  for (let i = 0; i < m.services; i++) {
    svcDocs.push(serviceYaml(m, i));
    for (let k = 0; k < m.endpoints; k++) podDocs[i % m.namespaces]?.push(podYaml(m, i, k));
    atomicWrite(dir, sliceFile(i), sliceYaml(m, i, false));
    objects += 1 + m.endpoints + 1;
  }
  atomicWrite(dir, 'services.yaml', join(svcDocs));
  podDocs.forEach((docs, j) => docs.length && atomicWrite(dir, `pods-ns-${j}.yaml`, join(docs)));
  const drDocs: string[] = [];
  for (let i = 0; i < Math.min(m.dr, m.services); i++) drDocs.push(drYaml(m, i));
  if (drDocs.length) atomicWrite(dir, 'destinationrules.yaml', join(drDocs));
  for (let i = 0; i < Math.min(m.vs, m.services); i++) atomicWrite(dir, vsFile(i), vsYaml(m, i, 90));
  const scopeDocs: string[] = [];
  if (m.sidecarScope) {
    for (let j = 0; j < m.namespaces; j++) {
      scopeDocs.push(
        `apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: default\n  namespace: ns-${j}\nspec:\n  egress:\n  - hosts: ["./*", "istio-system/*"]\n`,
      );
    }
    atomicWrite(dir, 'sidecars.yaml', join(scopeDocs));
  }
  return objects + drDocs.length + Math.min(m.vs, m.services) + scopeDocs.length;
}

/** Sidecars (pods of the services) then proxyless gRPC clients, as Envoy / gRPC identify themselves. */
export function proxySpecs(m: MeshSize): ProxySpec[] {
  const out: ProxySpec[] = [];
  const sidecars = Math.min(m.sidecars, m.services * m.endpoints);
  for (let s = 0; s < sidecars; s++) {
    const i = s % m.services;
    const k = Math.floor(s / m.services);
    const n = ns(m, i);
    const ip = podIp(i, k);
    out.push({
      idx: out.length,
      id: `sidecar~${ip}~svc-${i}-${k}.${n}~${n}.svc.cluster.local`,
      metadata: {
        NAMESPACE: n,
        LABELS: { app: `svc-${i}`, version: version(k), 'security.istio.io/tlsMode': 'istio' },
        SERVICE_ACCOUNT: `svc-${i}`,
        CLUSTER_ID: 'Kubernetes',
        ISTIO_VERSION: '1.24.0',
        INSTANCE_IPS: ip,
      },
    });
  }
  for (let g = 0; g < m.grpc; g++) {
    const n = `ns-${g % m.namespaces}`;
    const ip = `127.20.${b2(g)}`;
    out.push({
      idx: out.length,
      id: `sidecar~${ip}~grpc-${g}.${n}~${n}.svc.cluster.local`,
      metadata: {
        NAMESPACE: n,
        LABELS: { app: `grpc-${g}`, version: 'v1' },
        SERVICE_ACCOUNT: `grpc-${g}`,
        CLUSTER_ID: 'Kubernetes',
        ISTIO_VERSION: '1.24.0',
        INSTANCE_IPS: ip,
        GENERATOR: 'grpc',
      },
    });
  }
  return out;
}
