/**
 * A temporary meshd config folder for the `reviews` service, wired to real backend ports.
 *
 * Layout (under one fs.mkdtemp root in os.tmpdir()):
 *   <root>/config/      the folder meshd watches (`configDir`)
 *   <root>/.staging/    where files are written before being renamed into config/, so meshd
 *                       never sees a half-written file nor a stray temp file in its folder
 *
 * All backends listen on 127.0.0.1, so versions differ only by port: each version gets its
 * own EndpointSlice whose single port (named `grpc`, like the Service port) is that
 * backend's port, and whose endpoint's `targetRef` names the Pod `reviews-vN`. Every Pod
 * has podIP 127.0.0.1, so a control plane can only tell subsets apart by following
 * `targetRef` to the Pod's labels — matching Pods by IP would put every backend in every
 * subset.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';

export const NAMESPACE = 'default';
export const SERVICE = 'reviews';
export const SERVICE_PORT = 9080;
export const FQDN = `${SERVICE}.${NAMESPACE}.svc.cluster.local`;
/** What a proxyless gRPC client dials. */
export const XDS_TARGET = `xds:///${FQDN}:${SERVICE_PORT}`;

export const VS_FILE = 'virtualservice-reviews.yaml';

/** One VirtualService HTTP route, in Istio's spelling (a subset of the real schema). */
export interface VsRoute {
  match?: Array<{ headers?: Record<string, { exact?: string; prefix?: string; regex?: string }> }>;
  route: Array<{ destination: { host: string; subset?: string; port?: { number: number } }; weight?: number }>;
  name?: string;
}

export interface MeshFixture {
  /** The folder to hand to meshd as `configDir`. */
  readonly configDir: string;
  /** Backend port per version name, e.g. `{ v1: 40123 }`. */
  readonly ports: Readonly<Record<string, number>>;
  /** Atomically (write to staging + rename) replace or add a file in configDir. */
  writeFile(name: string, content: string): Promise<void>;
  /** Atomically write Kubernetes objects as a multi-document YAML file. */
  writeObjects(name: string, objects: readonly object[]): Promise<void>;
  removeFile(name: string): Promise<void>;
  /** Replace the `reviews` VirtualService's `spec.http` (file VS_FILE). */
  writeVirtualService(http: readonly VsRoute[]): Promise<void>;
  /** Mark one version's endpoint ready or not ready (rewrites the EndpointSlices file). */
  setEndpointReady(version: string, ready: boolean): Promise<void>;
  /** Remove the whole temporary tree. Safe to call twice. */
  cleanup(): Promise<void>;
}

export interface MeshFixtureOptions {
  /** Backend port per version, e.g. `{ v1: 40123, v2: 40124, v3: 40125 }`. */
  ports: Readonly<Record<string, number>>;
  /** Initial VirtualService routes; default: everything to subset v1. */
  http?: readonly VsRoute[];
  /** Leave out the VirtualService file entirely. */
  noVirtualService?: boolean;
  /** Extra Pod labels per version (e.g. topology labels, or labels for custom subsets). */
  podLabels?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

// ---- route builders ----

function dest(subset: string): VsRoute['route'][number]['destination'] {
  return { host: SERVICE, subset, port: { number: SERVICE_PORT } };
}

/** Everything to one subset. */
export function routeAllTo(subset: string): VsRoute[] {
  return [{ name: `all-${subset}`, route: [{ destination: dest(subset) }] }];
}

/** Requests with header `name: value` (exact) go to `matched`; all others to `otherwise`. */
export function headerRoute(name: string, value: string, matched: string, otherwise: string): VsRoute[] {
  return [
    { name: `${name}-${value}`, match: [{ headers: { [name]: { exact: value } } }], route: [{ destination: dest(matched) }] },
    { name: 'default', route: [{ destination: dest(otherwise) }] },
  ];
}

/** A weighted split, e.g. `{ v1: 50, v3: 50 }` (weights should sum to 100). */
export function weightedRoute(weights: Readonly<Record<string, number>>): VsRoute[] {
  return [
    {
      name: 'split',
      route: Object.entries(weights).map(([subset, weight]) => ({ destination: dest(subset), weight })),
    },
  ];
}

// ---- object builders ----

function service(): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: SERVICE, namespace: NAMESPACE, labels: { app: SERVICE, service: SERVICE } },
    spec: {
      selector: { app: SERVICE },
      clusterIP: '10.96.90.80',
      ports: [{ name: 'grpc', port: SERVICE_PORT, targetPort: SERVICE_PORT, protocol: 'TCP' }],
    },
  };
}

function pod(version: string, extraLabels: Readonly<Record<string, string>> = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${SERVICE}-${version}`,
      namespace: NAMESPACE,
      labels: { ...extraLabels, app: SERVICE, version },
    },
    spec: {
      serviceAccountName: `bookinfo-${SERVICE}`,
      containers: [{ name: SERVICE, ports: [{ name: 'grpc', containerPort: SERVICE_PORT, protocol: 'TCP' }] }],
    },
    status: { phase: 'Running', podIP: '127.0.0.1', podIPs: [{ ip: '127.0.0.1' }] },
  };
}

function endpointSlice(version: string, port: number, ready = true): object {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${SERVICE}-${version}`,
      namespace: NAMESPACE,
      labels: { 'kubernetes.io/service-name': SERVICE, 'endpointslice.kubernetes.io/managed-by': 'meshd-test' },
    },
    addressType: 'IPv4',
    ports: [{ name: 'grpc', port, protocol: 'TCP' }],
    endpoints: [
      {
        addresses: ['127.0.0.1'],
        conditions: { ready, serving: ready, terminating: false },
        targetRef: { kind: 'Pod', name: `${SERVICE}-${version}`, namespace: NAMESPACE },
      },
    ],
  };
}

function destinationRule(versions: readonly string[]): object {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: SERVICE, namespace: NAMESPACE },
    spec: {
      host: SERVICE,
      subsets: versions.map((v) => ({ name: v, labels: { version: v } })),
    },
  };
}

export function virtualService(http: readonly VsRoute[]): object {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: SERVICE, namespace: NAMESPACE },
    spec: { hosts: [SERVICE], http },
  };
}

export function toYaml(objects: readonly object[]): string {
  return objects.map((o) => stringify(o)).join('---\n');
}

// ---- the fixture ----

/** Write the fixture. Call `cleanup()` in an `after` hook. */
export async function createMeshFixture(opts: MeshFixtureOptions): Promise<MeshFixture> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'meshd-e2e-'));
  const configDir = path.join(root, 'config');
  const staging = path.join(root, '.staging');
  await fs.mkdir(configDir);
  await fs.mkdir(staging);
  let seq = 0;

  const writeFile = async (name: string, content: string): Promise<void> => {
    if (name.includes('/') || name.includes(path.sep)) throw new Error(`file name must not contain a path: ${name}`);
    const tmp = path.join(staging, `${name}.${process.pid}.${++seq}`);
    await fs.writeFile(tmp, content, 'utf8');
    await fs.rename(tmp, path.join(configDir, name));
  };
  const writeObjects = (name: string, objects: readonly object[]): Promise<void> => writeFile(name, toYaml(objects));

  const versions = Object.keys(opts.ports).sort();
  const notReady = new Set<string>();
  const writeSlices = (): Promise<void> =>
    writeObjects(
      'endpointslices-reviews.yaml',
      versions.map((v) => endpointSlice(v, opts.ports[v] as number, !notReady.has(v))),
    );
  try {
    await writeObjects('service-reviews.yaml', [service()]);
    await writeObjects(
      'pods-reviews.yaml',
      versions.map((v) => pod(v, opts.podLabels?.[v])),
    );
    await writeSlices();
    await writeObjects('destinationrule-reviews.yaml', [destinationRule(versions)]);
    if (!opts.noVirtualService) {
      await writeObjects(VS_FILE, [virtualService(opts.http ?? routeAllTo(versions[0] ?? 'v1'))]);
    }
  } catch (err) {
    await fs.rm(root, { recursive: true, force: true });
    throw err;
  }

  return {
    configDir,
    ports: { ...opts.ports },
    writeFile,
    writeObjects,
    async removeFile(name: string): Promise<void> {
      await fs.rm(path.join(configDir, name), { force: true });
    },
    writeVirtualService(http: readonly VsRoute[]): Promise<void> {
      return writeObjects(VS_FILE, [virtualService(http)]);
    },
    async setEndpointReady(version: string, ready: boolean): Promise<void> {
      if (!versions.includes(version)) throw new Error(`no version ${version} (have ${versions.join(', ')})`);
      if (ready) notReady.delete(version);
      else notReady.add(version);
      await writeSlices();
    },
    async cleanup(): Promise<void> {
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}
