/**
 * One open watch of the fake Kubernetes API server: newline-delimited JSON events
 * (`{"type": …, "object": …}`) over a chunked HTTP/1.1 response, as the real server streams
 * them. Selectors are applied with the real server's transitions: an object that starts
 * matching arrives as ADDED, one that stops matching as DELETED.
 */
import type { ServerResponse } from 'node:http';
import { type ApiResource, groupVersion } from './kube-api-resources';
import { type JsonObject, fieldSelectorFields, isObject, matchesSelector, parseFieldSelector, parseLabelSelector } from './kube-api-patch';
import { type KubeStore, type StoreEvent, statusObject } from './kube-api-store';

export interface WatchInfo {
  /** `<resource>.<group>` */
  readonly resource: string;
  readonly version: string;
  /** Namespace of a namespaced watch; undefined when watching all namespaces. */
  readonly namespace?: string;
  /** The resourceVersion the watch started from ('' or '0' when it started with the current state). */
  readonly startedAt: string;
  /** The resourceVersion of the last event (or bookmark) written to it. */
  readonly lastSent: number;
  readonly bookmarks: boolean;
  /** Events written so far (bookmarks included). */
  readonly sent: number;
}

export interface WatchParams {
  res: ApiResource;
  version: string;
  namespace?: string;
  resourceVersion: string;
  bookmarks: boolean;
  labelSelector?: string;
  fieldSelector?: string;
  timeoutSeconds?: number;
}

export class WatchStream implements WatchInfo {
  readonly resource: string;
  readonly version: string;
  readonly namespace?: string;
  readonly startedAt: string;
  readonly bookmarks: boolean;
  lastSent = 0;
  sent = 0;
  private closed = false;
  private timer?: NodeJS.Timeout;
  private readonly labels: ReturnType<typeof parseLabelSelector>;
  private readonly fields: ReturnType<typeof parseFieldSelector>;

  constructor(
    private readonly p: WatchParams,
    private readonly reply: ServerResponse,
    private readonly onClose: (w: WatchStream) => void,
  ) {
    this.resource = p.res.group === '' ? p.res.resource : `${p.res.resource}.${p.res.group}`;
    this.version = p.version;
    this.namespace = p.namespace;
    this.startedAt = p.resourceVersion;
    this.bookmarks = p.bookmarks;
    this.labels = p.labelSelector ? parseLabelSelector(p.labelSelector) : [];
    this.fields = p.fieldSelector ? parseFieldSelector(p.fieldSelector) : [];
    reply.on('close', () => this.finish());
  }

  /** Sends the status line and headers; the body stays open. */
  open(): void {
    this.reply.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private' });
    this.reply.flushHeaders();
    if (this.p.timeoutSeconds !== undefined && this.p.timeoutSeconds > 0) {
      // The server ends a watch after timeoutSeconds; the client starts a new one from its last resourceVersion.
      this.timer = setTimeout(() => this.end(), this.p.timeoutSeconds * 1000);
      this.timer.unref();
    }
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  private matches(o: JsonObject | undefined): boolean {
    if (!o) return false;
    const m = isObject(o['metadata']) ? o['metadata'] : {};
    if (this.namespace !== undefined && m['namespace'] !== this.namespace) return false;
    return matchesSelector(this.labels, (m['labels'] ?? {}) as Record<string, string>) && matchesSelector(this.fields, fieldSelectorFields(o));
  }

  /** Writes one store event if it concerns this watch. */
  deliver(store: KubeStore, e: StoreEvent): void {
    if (this.closed || e.resource !== this.resource) return;
    const now = this.matches(e.object);
    const before = e.type === 'ADDED' ? false : this.matches(e.old);
    let type: string | undefined;
    if (e.type === 'DELETED') type = before ? 'DELETED' : undefined;
    else if (e.type === 'ADDED') type = now ? 'ADDED' : undefined;
    else type = now && before ? 'MODIFIED' : now ? 'ADDED' : before ? 'DELETED' : undefined;
    if (!type) return;
    this.write({ type, object: store.present(this.p.res, this.version, e.object) }, e.rv);
  }

  /** The current state as ADDED events (a watch without a resourceVersion, or from "0"). */
  initial(store: KubeStore): void {
    for (const o of store.list(this.p.res, { namespace: this.namespace })) {
      if (this.matches(o)) this.write({ type: 'ADDED', object: store.present(this.p.res, this.version, o) }, Number((o['metadata'] as JsonObject)['resourceVersion']));
    }
  }

  bookmark(rv: number): boolean {
    if (this.closed || !this.bookmarks) return false;
    this.write({ type: 'BOOKMARK', object: { kind: this.p.res.kind, apiVersion: groupVersion(this.p.res.group, this.version), metadata: { resourceVersion: String(rv) } } }, rv);
    return true;
  }

  /** An in-stream error (e.g. 410 Expired), after which the server ends the watch. */
  error(code: number, reason: string, message: string): void {
    if (this.closed) return;
    this.write({ type: 'ERROR', object: statusObject(code, reason, message) }, this.lastSent);
    this.end();
  }

  end(): void {
    if (this.closed) return;
    this.reply.end();
    this.finish();
  }

  /** Cuts the connection mid-stream: half an event, then the socket is destroyed. */
  cut(): void {
    if (this.closed) return;
    const socket = this.reply.socket;
    this.finish();
    this.reply.write('{"type":"MODIFIED","object":{"kind":', () => socket?.destroy());
  }

  private write(event: object, rv: number): void {
    this.reply.write(`${JSON.stringify(event)}\n`);
    this.lastSent = Math.max(this.lastSent, rv);
    this.sent++;
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.onClose(this);
  }
}
