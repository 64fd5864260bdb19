/**
 * The fake Kubernetes API server's request handling: routing of /api and /apis paths to a
 * resource, LIST (with limit/continue), WATCH, GET, POST, PUT, PATCH, DELETE and discovery,
 * bearer-token authentication, injected failures, and the request log.
 */
import { randomBytes } from 'node:crypto';
import type * as http from 'node:http';
import { parse as parseYaml } from 'yaml';
import { type ApiResource, apiGroup, apiGroupList, apiResourceList, apiVersions, groupVersion } from './kube-api-resources';
import { type JsonObject, isObject } from './kube-api-patch';
import { KubeApiError, type KubeStore, type PatchType, type StoreEvent, statusObject } from './kube-api-store';
import { WatchStream } from './kube-api-watch';

export interface RequestLogEntry {
  method: string;
  path: string;
  query: Record<string, string>;
  watch: boolean;
  status: number;
  userAgent?: string;
}

export interface Failure {
  status: number;
  /** Only requests with this method (GET, POST, …). */
  method?: string;
  /** Only requests whose path contains this string. */
  path?: string;
  /** Only watches (true) or only non-watch requests (false). */
  watch?: boolean;
  /** How many matching requests fail; default 1. */
  count?: number;
}

/** A request the generic REST model cannot answer (e.g. POST …/tokenreviews): answered by a test's function. */
export interface CustomHandler {
  method: string;
  /** The exact request path, e.g. `/apis/authentication.k8s.io/v1/tokenreviews`. */
  path: string;
  handle(body: unknown): { status: number; body: unknown };
}

export interface HandlerDeps {
  /** Consulted (after authentication) before the REST model. */
  custom?: readonly CustomHandler[];
  store: KubeStore;
  /** Open watches (the handler adds to it; each removes itself when it ends). */
  watches: Set<WatchStream>;
  requests: RequestLogEntry[];
  failures: Array<Failure & { left: number }>;
  /** Snapshots of paginated lists, by continue-token id. */
  pages: Map<string, { items: JsonObject[]; rv: number }>;
  token: string;
  expiredWatchAs?: 'event' | 'status';
  /** `host:port` for /api's serverAddressByClientCIDRs. */
  address(): string;
}

interface Target {
  res: ApiResource;
  version: string;
  namespace?: string;
  name?: string;
  subresource?: string;
  watch: boolean;
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const PATCH_TYPES: Readonly<Record<string, PatchType>> = {
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
  'application/json-patch+json': 'json',
  'application/apply-patch+yaml': 'apply',
};

export function requestHandler(d: HandlerDeps): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const { store, watches, requests, failures, pages, token } = d;
  const opts = { expiredWatchAs: d.expiredWatchAs };
  const send = (res: http.ServerResponse, code: number, body: unknown): number => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
    return code;
  };
  const fail = (res: http.ServerResponse, e: KubeApiError): number => send(res, e.code, statusObject(e.code, e.reason, e.message, e.details));
  const notFound = (): KubeApiError => new KubeApiError(404, 'NotFound', 'the server could not find the requested resource');

  /** `/api/v1/...` or `/apis/<group>/<version>/...` → the resource it addresses. */
  const route = (parts: string[]): Target | object | undefined => {
    let group: string;
    let version: string;
    let rest: string[];
    if (parts[0] === 'api') {
      if (parts.length === 1) return apiVersions(d.address());
      [group, version, rest] = ['', parts[1] as string, parts.slice(2)];
      if (version !== 'v1') return undefined;
      if (rest.length === 0) return apiResourceList(store.installed(), '', 'v1');
    } else if (parts[0] === 'apis') {
      if (parts.length === 1) return apiGroupList(store.installed());
      if (parts.length === 2) return apiGroup(store.installed(), parts[1] as string);
      [group, version, rest] = [parts[1] as string, parts[2] as string, parts.slice(3)];
      if (rest.length === 0) return apiResourceList(store.installed(), group, version);
    } else {
      return undefined;
    }
    let watch = false;
    if (rest[0] === 'watch') {
      watch = true;
      rest = rest.slice(1);
    }
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3 && store.byPath(group, version, rest[2] as string)?.namespaced) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const res = store.byPath(group, version, rest[0] as string);
    if (!res || rest.length > 3 || (namespace === undefined && res.namespaced && rest.length > 1)) return notFound();
    if (rest[2] !== undefined && !(rest[2] === 'status' && res.status)) return notFound();
    return { res, version, namespace, name: rest[1], subresource: rest[2], watch };
  };

  const list = (t: Target, q: URLSearchParams): object => {
    const limit = Number(q.get('limit') ?? 0);
    const cont = q.get('continue');
    let items: JsonObject[];
    let rv: number;
    let offset = 0;
    let id: string;
    if (cont) {
      const tok = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8')) as { id: string; offset: number; rv: number };
      const page = pages.get(tok.id);
      if (!page || tok.rv < store.oldestResourceVersion()) {
        throw new KubeApiError(
          410,
          'Expired',
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
        );
      }
      ({ items, rv } = page);
      ({ offset, id } = tok);
    } else {
      items = store.list(t.res, { namespace: t.namespace, labelSelector: q.get('labelSelector') ?? undefined, fieldSelector: q.get('fieldSelector') ?? undefined });
      rv = store.resourceVersion();
      id = randomBytes(6).toString('hex');
    }
    const end = limit > 0 ? Math.min(items.length, offset + limit) : items.length;
    const metadata: JsonObject = { resourceVersion: String(rv) };
    if (end < items.length) {
      pages.set(id, { items, rv });
      metadata['continue'] = Buffer.from(JSON.stringify({ id, offset: end, rv })).toString('base64url');
      metadata['remainingItemCount'] = items.length - end;
    } else {
      pages.delete(id);
    }
    const shown = items.slice(offset, end).map((o) => (t.res.crd ? store.present(t.res, t.version, o) : o));
    return { kind: `${t.res.kind}List`, apiVersion: groupVersion(t.res.group, t.version), metadata, items: shown };
  };

  const startWatch = (t: Target, q: URLSearchParams, req: http.IncomingMessage, res: http.ServerResponse): number => {
    const rvParam = q.get('resourceVersion') ?? '';
    const fromRv = rvParam === '' || rvParam === '0' ? undefined : Number(rvParam);
    if (fromRv !== undefined && !Number.isInteger(fromRv)) throw new KubeApiError(400, 'BadRequest', `invalid resource version: ${rvParam}`);
    let backlog: StoreEvent[] | undefined = [];
    try {
      if (fromRv !== undefined) backlog = store.eventsSince(t.res, fromRv);
    } catch (e) {
      backlog = undefined;
      if (!(e instanceof KubeApiError) || opts.expiredWatchAs === 'status') throw e;
    }
    const timeout = q.get('timeoutSeconds');
    const w = new WatchStream(
      {
        res: t.res,
        version: t.version,
        namespace: t.namespace,
        resourceVersion: rvParam,
        bookmarks: q.get('allowWatchBookmarks') === 'true',
        labelSelector: q.get('labelSelector') ?? undefined,
        fieldSelector: q.get('fieldSelector') ?? undefined,
        timeoutSeconds: timeout ? Number(timeout) : undefined,
      },
      res,
      (x) => watches.delete(x),
    );
    req.on('close', () => w.end());
    w.open();
    if (!backlog) {
      // A real server's watch cache answers a too-old resourceVersion inside the stream.
      w.error(410, 'Expired', `too old resource version: ${rvParam} (${store.oldestResourceVersion()})`);
      return 200;
    }
    if (fromRv === undefined) w.initial(store);
    for (const e of backlog) w.deliver(store, e);
    watches.add(w);
    return 200;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, u: URL, entry: RequestLogEntry): Promise<number> => {
    const method = req.method ?? 'GET';
    if (req.headers.authorization !== `Bearer ${token}`) throw new KubeApiError(401, 'Unauthorized', 'Unauthorized');
    const custom = d.custom?.find((c) => c.method === method && c.path === u.pathname);
    if (custom) {
      const text = await readBody(req);
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        throw new KubeApiError(400, 'BadRequest', 'the request body could not be decoded');
      }
      const r = custom.handle(parsed);
      return send(res, r.status, r.body);
    }
    const parts = u.pathname.split('/').filter((p) => p !== '');
    if (parts.length === 1 && ['healthz', 'livez', 'readyz'].includes(parts[0] as string)) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return 200;
    }
    if (parts[0] === 'version' && parts.length === 1) return send(res, 200, { major: '1', minor: '31', gitVersion: 'v1.31.0-meshd-fake', platform: 'linux/amd64' });
    const t = route(parts);
    if (t instanceof KubeApiError) throw t;
    if (t === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('404 page not found\n');
      return 404;
    }
    if (!('res' in t)) {
      if (method !== 'GET') throw new KubeApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
      return send(res, 200, t);
    }
    const target = t as Target;
    const q = u.searchParams;
    entry.watch = target.watch || q.get('watch') === 'true' || q.get('watch') === '1';
    for (const f of failures) {
      if (f.left > 0 && (!f.method || f.method === method) && (!f.path || u.pathname.includes(f.path)) && (f.watch === undefined || f.watch === entry.watch)) {
        f.left--;
        throw new KubeApiError(f.status, f.status === 429 ? 'TooManyRequests' : f.status >= 500 ? 'InternalError' : 'BadRequest', `injected failure (${f.status})`);
      }
    }
    const ns = target.namespace ?? '';
    const fieldManager = q.get('fieldManager') ?? undefined;
    const sub = target.subresource === 'status' ? ('status' as const) : undefined;
    const out = (o: JsonObject): JsonObject => store.present(target.res, target.version, o);
    const body = async (): Promise<unknown> => {
      const text = await readBody(req);
      try {
        return (req.headers['content-type'] ?? '').includes('yaml') ? parseYaml(text) : JSON.parse(text);
      } catch {
        throw new KubeApiError(400, 'BadRequest', 'the request body could not be decoded');
      }
    };
    const needNs = (): void => {
      if (target.res.namespaced && target.namespace === undefined)
        throw new KubeApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    };
    switch (method) {
      case 'GET':
        if (target.name === undefined) return entry.watch ? startWatch(target, q, req, res) : send(res, 200, list(target, q));
        if (entry.watch) return startWatch(target, new URLSearchParams({ ...Object.fromEntries(q), fieldSelector: `metadata.name=${target.name}` }), req, res);
        return send(res, 200, out(store.get(target.res, ns, target.name)));
      case 'POST': {
        needNs();
        if (target.name !== undefined) throw new KubeApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
        const b = await body();
        if (!isObject(b)) throw new KubeApiError(400, 'BadRequest', 'the body must be an object');
        return send(res, 201, out(store.create(target.res, ns, b, { fieldManager })));
      }
      case 'PUT': {
        if (target.name === undefined) throw new KubeApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
        const b = await body();
        if (!isObject(b)) throw new KubeApiError(400, 'BadRequest', 'the body must be an object');
        return send(res, 200, out(store.replace(target.res, ns, target.name, b, { fieldManager, subresource: sub })));
      }
      case 'PATCH': {
        const type = PATCH_TYPES[(req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? ''];
        if (!type)
          throw new KubeApiError(
            415,
            'UnsupportedMediaType',
            `the body of the request was in an unknown format - accepted media types include: ${Object.keys(PATCH_TYPES).join(', ')}`,
          );
        if (target.name === undefined) throw new KubeApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
        return send(res, 200, out(store.patch(target.res, ns, target.name, type, await body(), { fieldManager, subresource: sub })));
      }
      case 'DELETE': {
        const text = await readBody(req);
        const opts = text ? (JSON.parse(text) as { preconditions?: { resourceVersion?: string; uid?: string } }) : {};
        if (target.name === undefined) {
          const gone = store
            .list(target.res, { namespace: target.namespace, labelSelector: q.get('labelSelector') ?? undefined })
            .map((o) => store.remove(target.res, String((o['metadata'] as JsonObject)['namespace'] ?? ''), String((o['metadata'] as JsonObject)['name'])));
          return send(res, 200, {
            kind: `${target.res.kind}List`,
            apiVersion: groupVersion(target.res.group, target.version),
            metadata: { resourceVersion: String(store.resourceVersion()) },
            items: gone.map(out),
          });
        }
        return send(res, 200, out(store.remove(target.res, ns, target.name, opts.preconditions ?? {})));
      }
      default:
        throw new KubeApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    }
  };

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const u = new URL(req.url ?? '/', 'http://fake');
    const entry: RequestLogEntry = {
      method: req.method ?? 'GET',
      path: u.pathname,
      query: Object.fromEntries(u.searchParams),
      watch: false,
      status: 0,
      userAgent: req.headers['user-agent'],
    };
    requests.push(entry);
    handle(req, res, u, entry).then(
      (status) => (entry.status = status),
      (err: unknown) => {
        const e = err instanceof KubeApiError ? err : new KubeApiError(500, 'InternalError', `fake API server: ${(err as Error).message}`);
        entry.status = res.headersSent ? 200 : fail(res, e);
      },
    );
  };

  return onRequest;
}
