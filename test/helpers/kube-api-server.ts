/**
 * A fake Kubernetes API server for tests: the real REST protocol over HTTP (or HTTPS) on
 * 127.0.0.1, generic over every group/version/resource it has installed, namespaced and
 * cluster-scoped.
 *
 *   LIST    GET  …/<resource>                    resourceVersion in list metadata; limit/continue
 *   WATCH   GET  …/<resource>?watch=true&resourceVersion=N[&allowWatchBookmarks=true]
 *           (and the legacy …/watch/… paths): newline-delimited JSON events after N; a
 *           compacted N answers 200 + one ERROR event with a 410 Status (or HTTP 410, see
 *           `expiredWatchAs`)
 *   GET, POST (409 AlreadyExists), PUT (409 Conflict on a stale resourceVersion),
 *   PATCH (merge, strategic merge treated as merge, JSON patch, apply), DELETE,
 *   …/status subresources, discovery (/api, /apis, /apis/<group>[/<version>]), /version
 *
 * One global resourceVersion increases with every write. Errors are `Status` objects. A
 * resource that is not installed answers 404, so a missing CRD can be simulated (and
 * installed later). Every request needs the bearer token written into `kubeconfigPath`.
 *
 * Differences from a real API server: no admission or schema validation (EndpointSlices may
 * hold loopback addresses, which a real one refuses), strategic merge and server-side apply are
 * plain merges, deleting a Namespace deletes its objects at once, and garbage collection (objects
 * whose ownerReferences all name deleted uids) runs at once on every delete.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import forge from 'node-forge';
import { makeCa } from './certs';
import { type CustomHandler, type Failure, type RequestLogEntry, requestHandler } from './kube-api-http';
import { KubeObjectStore } from './kube-api-objects';
import type { JsonObject } from './kube-api-patch';
import { type ApiResource, DEFAULT_RESOURCES } from './kube-api-resources';
import { KubeStore } from './kube-api-store';
import type { WatchInfo, WatchStream } from './kube-api-watch';

export { DEFAULT_RESOURCES, resourcesWithout, resourcesWithVersions, type ApiResource } from './kube-api-resources';
export { KubeApiError } from './kube-api-store';
export type { WatchInfo } from './kube-api-watch';
export type { KubeObjectStore } from './kube-api-objects';
export type { CustomHandler, Failure, RequestLogEntry } from './kube-api-http';

export interface KubeApiServerOptions {
  /** Installed resource types; default DEFAULT_RESOURCES. */
  resources?: readonly ApiResource[];
  /** Serve HTTPS with a fresh self-signed CA (written into the kubeconfig). Default plain HTTP. */
  tls?: boolean;
  /** Port to listen on (127.0.0.1); default 0 = a free port. */
  port?: number;
  /** How a watch from a compacted resourceVersion fails: 'event' (default, as a real server) or 'status' (HTTP 410). */
  expiredWatchAs?: 'event' | 'status';
  /** Refuse namespaced objects in namespaces that do not exist (404). Default false. */
  requireNamespace?: boolean;
  /** The first resourceVersion handed out; default 1000. */
  firstResourceVersion?: number;
  /** Extra endpoints outside the REST model (e.g. TokenReview), checked before it. */
  handlers?: readonly CustomHandler[];
}

export interface KubeApiServer {
  readonly url: string;
  readonly port: number;
  /** A kubeconfig file (temporary) for this server, its token and, with tls, its CA. */
  readonly kubeconfigPath: string;
  /** The same kubeconfig as text. */
  readonly kubeconfig: string;
  readonly token: string;
  /** Direct access to the objects, bypassing HTTP (and authentication). */
  readonly store: KubeObjectStore;
  /** Every request so far, in order. */
  readonly requests: readonly RequestLogEntry[];
  clearRequests(): void;
  /** Watches open right now. */
  watches(): readonly WatchInfo[];
  /**
   * Compacts history: every resourceVersion issued so far (or, with `olderThan`, those
   * before it) becomes too old to watch from. With `errorOpenWatches`, open watches also get
   * an ERROR event (410) and are ended.
   */
  expireResourceVersions(opts?: { errorOpenWatches?: boolean; olderThan?: string | number }): void;
  /** Ends every open watch: abruptly (half an event, then the socket is destroyed) or, with graceful, cleanly. Returns how many. */
  dropWatches(opts?: { graceful?: boolean }): number;
  /** A BOOKMARK with the current resourceVersion on every open watch that asked for bookmarks. Returns how many got one. */
  sendBookmarks(): number;
  /** Next matching requests fail with this status (a Status body). */
  injectFailures(f: Failure): void;
  install(res: ApiResource): void;
  /** Removes a resource type and its objects, ends its watches; later requests get 404. */
  uninstall(kind: string, group?: string): void;
  /** Stops listening and cuts every connection. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** stop() + start(); `resetState` forgets every object (resourceVersions keep increasing). */
  restart(opts?: { resetState?: boolean; downMs?: number }): Promise<void>;
  close(): Promise<void>;
}

function serverCert(): { ca: string; cert: string; key: string } {
  const ca = makeCa('fake kube-apiserver CA');
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const c = forge.pki.createCertificate();
  c.publicKey = keys.publicKey;
  c.serialNumber = `01${randomBytes(8).toString('hex')}`;
  c.validity.notBefore = new Date(Date.now() - 60_000);
  c.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  c.setSubject([{ name: 'commonName', value: 'kube-apiserver' }]);
  c.setIssuer(ca.forgeCert.subject.attributes);
  c.setExtensions([
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 7, ip: '127.0.0.1' },
        { type: 2, value: 'localhost' },
      ],
    },
  ]);
  c.sign(ca.forgeKey, forge.md.sha256.create());
  return { ca: ca.cert, cert: forge.pki.certificateToPem(c), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

function kubeconfigText(url: string, token: string, ca?: string): string {
  const cluster = ca ? `    certificate-authority-data: ${Buffer.from(ca).toString('base64')}` : '    insecure-skip-tls-verify: true';
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: fake',
    '  cluster:',
    `    server: ${url}`,
    cluster,
    'users:',
    '- name: fake',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: fake',
    '  context: { cluster: fake, user: fake, namespace: default }',
    'current-context: fake',
    '',
  ].join('\n');
}

export async function startKubeApiServer(opts: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const store = new KubeStore(opts.resources ?? DEFAULT_RESOURCES, { firstResourceVersion: opts.firstResourceVersion, requireNamespace: opts.requireNamespace });
  const objects = new KubeObjectStore(store);
  const token = randomBytes(16).toString('hex');
  const tls = opts.tls ? serverCert() : undefined;
  const watches = new Set<WatchStream>();
  const sockets = new Set<Socket>();
  const requests: RequestLogEntry[] = [];
  const failures: Array<Failure & { left: number }> = [];
  const pages = new Map<string, { items: JsonObject[]; rv: number }>();
  let port = opts.port ?? 0;
  let address = '';

  store.subscribe((e) => {
    for (const w of [...watches]) w.deliver(store, e);
  });
  const onRequest = requestHandler({ custom: opts.handlers, store, watches, requests, failures, pages, token, expiredWatchAs: opts.expiredWatchAs, address: () => address });

  const server: http.Server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, onRequest) : http.createServer(onRequest);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 60_000;

  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        port = (server.address() as { port: number }).port;
        resolve();
      });
    });
  const stop = async (): Promise<void> => {
    if (!server.listening) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const w of [...watches]) w.cut();
    for (const s of sockets) s.destroy();
    await closed;
  };

  await listen();
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  address = `127.0.0.1:${port}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-kube-'));
  const kubeconfig = kubeconfigText(url, token, tls?.ca);
  const kubeconfigPath = path.join(dir, 'kubeconfig');
  fs.writeFileSync(kubeconfigPath, kubeconfig, { mode: 0o600 });

  return {
    url,
    port,
    kubeconfigPath,
    kubeconfig,
    token,
    store: objects,
    requests,
    clearRequests: () => void requests.splice(0),
    watches: () =>
      [...watches].map((w): WatchInfo => ({
        resource: w.resource,
        version: w.version,
        namespace: w.namespace,
        startedAt: w.startedAt,
        lastSent: w.lastSent,
        bookmarks: w.bookmarks,
        sent: w.sent,
      })),
    expireResourceVersions(o = {}) {
      store.expire(o.olderThan === undefined ? undefined : Number(o.olderThan));
      pages.clear();
      if (o.errorOpenWatches) for (const w of [...watches]) w.error(410, 'Expired', `too old resource version: ${w.lastSent} (${store.oldestResourceVersion()})`);
    },
    dropWatches(o = {}) {
      const all = [...watches];
      for (const w of all) {
        if (o.graceful) w.end();
        else w.cut();
      }
      return all.length;
    },
    sendBookmarks() {
      let n = 0;
      for (const w of [...watches]) if (w.bookmark(store.resourceVersion())) n++;
      return n;
    },
    injectFailures: (f) => void failures.push({ ...f, left: f.count ?? 1 }),
    install: (r) => store.install(r),
    uninstall(kind, group) {
      const r = store.uninstall(kind, group);
      if (!r) return;
      const key = r.group === '' ? r.resource : `${r.resource}.${r.group}`;
      for (const w of [...watches]) if (w.resource === key) w.end();
    },
    stop,
    start: listen,
    async restart(o = {}) {
      await stop();
      if (o.resetState) store.reset();
      if (o.downMs) await new Promise((r) => setTimeout(r, o.downMs));
      await listen();
    },
    async close() {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
