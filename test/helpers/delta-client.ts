/**
 * A raw incremental (delta) ADS client over a real gRPC stream, for protocol tests: send
 * DeltaDiscoveryRequests, read DeltaDiscoveryResponses with each resource decoded.
 *
 * `barrier()` shows that nothing else was sent, without a timed wait: it subscribes to a
 * made-up SDS name, which every proxy kind is answered for (an empty response). The server
 * handles requests in stream order and writes a connection's types in push order (SDS last), so
 * anything an earlier request caused is written before the probe's answer.
 */
import * as grpc from '@grpc/grpc-js';
import { type DeltaDiscoveryRequestMsg, type DeltaDiscoveryResponseMsg, deltaStreamMethod } from '../../src/xds/connection';
import { type EnvoyProtos, TypeUrl } from '../../src/xds/protos';
import { DELTA_ADS_PATH } from '../../src/xds/server';

export interface DeltaResource {
  name: string;
  version: string;
  body: Record<string, unknown>;
}

export interface DeltaResponse {
  system_version_info: string;
  nonce: string;
  type_url: string;
  resources: DeltaResource[];
  /** Names of `resources`, in response order. */
  names: string[];
  /** name → per-resource version. */
  versions: Record<string, string>;
  removed: string[];
}

export interface DeltaRequest {
  type_url: string;
  subscribe?: string[];
  unsubscribe?: string[];
  initial?: Record<string, string>;
  response_nonce?: string;
  /** Sets error_detail: a NACK. */
  error?: string;
}

export class DeltaAdsClient {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<DeltaDiscoveryRequestMsg, DeltaDiscoveryResponseMsg>;
  private readonly queue: DeltaResponse[] = [];
  private waiters: (() => void)[] = [];
  private first = true;
  private probes = 0;
  private probeNonce = '';
  ended = false;
  error?: grpc.ServiceError;

  constructor(
    private readonly protos: EnvoyProtos,
    address: string,
    readonly node: { id: string; metadata?: Record<string, string> },
  ) {
    const method = deltaStreamMethod(protos, DELTA_ADS_PATH, 'deltaAggregatedResources');
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
    this.call = this.client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize);
    this.call.on('data', (r: DeltaDiscoveryResponseMsg) => {
      const resources = (r.resources ?? []).map((x) => ({ name: x.name, version: x.version, body: this.protos.decode(x.resource.type_url, x.resource.value) }));
      this.queue.push({
        system_version_info: r.system_version_info ?? '',
        nonce: r.nonce ?? '',
        type_url: r.type_url ?? '',
        resources,
        names: resources.map((x) => x.name),
        versions: Object.fromEntries(resources.map((x) => [x.name, x.version])),
        removed: r.removed_resources ?? [],
      });
      this.wake();
    });
    this.call.on('error', (e: grpc.ServiceError) => {
      this.error = e;
      this.ended = true;
      this.wake();
    });
    this.call.on('end', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(req: DeltaRequest): void {
    const msg: DeltaDiscoveryRequestMsg = {
      type_url: req.type_url,
      resource_names_subscribe: req.subscribe ?? [],
      resource_names_unsubscribe: req.unsubscribe ?? [],
      response_nonce: req.response_nonce ?? '',
    };
    if (req.initial) msg.initial_resource_versions = req.initial;
    if (req.error) msg.error_detail = { code: 3, message: req.error };
    if (this.first) {
      const fields: Record<string, { stringValue: string }> = {};
      for (const [k, v] of Object.entries(this.node.metadata ?? {})) fields[k] = { stringValue: v };
      msg.node = { id: this.node.id, metadata: { fields } };
      this.first = false;
    }
    this.call.write(msg);
  }

  ack(r: DeltaResponse): void {
    this.send({ type_url: r.type_url, response_nonce: r.nonce });
  }

  nack(r: DeltaResponse, message: string): void {
    this.send({ type_url: r.type_url, response_nonce: r.nonce, error: message });
  }

  /** Sends a subscription, waits for its answer and ACKs it. */
  async subscribe(typeUrl: string, names: string[] = [], initial?: Record<string, string>): Promise<DeltaResponse> {
    this.send({ type_url: typeUrl, subscribe: names, initial });
    const r = await this.next(typeUrl);
    this.ack(r);
    return r;
  }

  /** The next response (optionally of one type), or an error after timeoutMs. */
  async next(typeUrl?: string, timeoutMs = 5000): Promise<DeltaResponse> {
    return this.take((q) => q.findIndex((r) => !typeUrl || r.type_url === typeUrl), `no ${typeUrl ?? 'response'} within ${timeoutMs} ms`, timeoutMs).then(
      (taken) => taken[taken.length - 1] as DeltaResponse,
    );
  }

  /**
   * Every response that arrived before the answer to a fresh probe subscription (see the file
   * comment): what the server sent because of anything this client did before the call.
   */
  async barrier(timeoutMs = 5000): Promise<DeltaResponse[]> {
    const probe = `probe-${++this.probes}`;
    this.send({ type_url: TypeUrl.Secret, subscribe: [probe], response_nonce: this.probeNonce });
    const isProbe = (r: DeltaResponse): boolean => r.type_url === TypeUrl.Secret && r.resources.length === 0 && r.removed.length === 0;
    const taken = await this.take((q) => q.findIndex(isProbe), `no answer to ${probe} within ${timeoutMs} ms`, timeoutMs, true);
    this.probeNonce = (taken.pop() as DeltaResponse).nonce;
    return taken;
  }

  /** Waits until `find` finds a queued response; removes it (with all before it when `upTo`). */
  private async take(find: (q: readonly DeltaResponse[]) => number, timeoutMessage: string, timeoutMs: number, upTo = false): Promise<DeltaResponse[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = find(this.queue);
      if (i >= 0) return upTo ? this.queue.splice(0, i + 1) : this.queue.splice(i, 1);
      if (this.ended) throw new Error(`stream ended${this.error ? `: ${this.error.message}` : ''}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(timeoutMessage);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.call.end();
    this.client.close();
  }
}
