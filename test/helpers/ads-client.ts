/** A raw ADS client over a real gRPC stream, for protocol tests: send requests, read responses. */
import * as grpc from '@grpc/grpc-js';
import { ADS_PATH } from '../../src/xds/server';
import { type DiscoveryRequestMsg, type DiscoveryResponseMsg, discoveryStreamMethod } from '../../src/xds/connection';
import { type EnvoyProtos, TypeUrl } from '../../src/xds/protos';

export interface Response {
  version_info: string;
  nonce: string;
  type_url: string;
  resources: Record<string, unknown>[];
  names: string[];
}

export interface AdsTransport {
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  metadata?: grpc.Metadata;
}

export class AdsClient {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<DiscoveryRequestMsg, DiscoveryResponseMsg>;
  private readonly queue: Response[] = [];
  private waiters: (() => void)[] = [];
  ended = false;
  error?: grpc.ServiceError;

  constructor(
    private readonly protos: EnvoyProtos,
    address: string,
    readonly node: { id: string; metadata?: Record<string, string> },
    /** 'names': decode only enough for resource names (benchmarks); 'full': Envoy-shaped JSON. */
    private readonly decodeMode: 'full' | 'names' = 'full',
    /** TLS (with or without a client certificate), channel options, and the stream's metadata (a bearer token). */
    transport: AdsTransport = {},
  ) {
    const def = { ads: discoveryStreamMethod(protos, ADS_PATH, 'streamAggregatedResources') };
    const Ctor = grpc.makeGenericClientConstructor(def, 'ADS');
    this.client = new Ctor(address, transport.credentials ?? grpc.credentials.createInsecure(), transport.channelOptions ?? {});
    this.call = (this.client as unknown as { ads: (md?: grpc.Metadata) => grpc.ClientDuplexStream<DiscoveryRequestMsg, DiscoveryResponseMsg> }).ads(transport.metadata);
    this.call.on('data', (r: DiscoveryResponseMsg) => {
      const resources =
        this.decodeMode === 'full'
          ? r.resources.map((a) => protos.decode(a.type_url, a.value))
          : r.resources.map((a) => protos.type(a.type_url).decode(a.value) as unknown as Record<string, unknown>);
      this.queue.push({
        version_info: r.version_info,
        nonce: r.nonce,
        type_url: r.type_url,
        resources,
        names: resources.map((x) => String(x.name || x.cluster_name || '')),
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

  private first = true;

  send(req: Omit<DiscoveryRequestMsg, 'node'> & { error?: string }): void {
    const msg: DiscoveryRequestMsg = {
      type_url: req.type_url,
      version_info: req.version_info ?? '',
      resource_names: req.resource_names ?? [],
      response_nonce: req.response_nonce ?? '',
    };
    if (req.error) msg.error_detail = { code: 3, message: req.error };
    if (this.first) {
      const fields: Record<string, { stringValue: string }> = {};
      for (const [k, v] of Object.entries(this.node.metadata ?? {})) fields[k] = { stringValue: v };
      msg.node = { id: this.node.id, metadata: { fields } };
      this.first = false;
    }
    this.call.write(msg);
  }

  ack(r: Response, names?: string[]): void {
    this.send({
      type_url: r.type_url,
      version_info: r.version_info,
      response_nonce: r.nonce,
      resource_names: names ?? (r.type_url === TypeUrl.Cluster || r.type_url === TypeUrl.Listener ? [] : r.names),
    });
  }

  nack(r: Response, message: string, names?: string[]): void {
    this.send({ type_url: r.type_url, version_info: '', response_nonce: r.nonce, resource_names: names ?? [], error: message });
  }

  /** Subscribes to a type (wildcard without names), waits for the response and ACKs it. */
  async subscribe(typeUrl: string, names?: string[], timeoutMs = 5000): Promise<Response> {
    this.send({ type_url: typeUrl, resource_names: names ?? [] });
    const r = await this.next(typeUrl, timeoutMs);
    this.ack(r, names);
    return r;
  }

  /** The next response (optionally of one type), or an error after timeoutMs. */
  async next(typeUrl?: string, timeoutMs = 5000): Promise<Response> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex((r) => !typeUrl || r.type_url === typeUrl);
      if (i >= 0) return this.queue.splice(i, 1)[0] as Response;
      if (this.ended) throw new Error(`stream ended${this.error ? `: ${this.error.message}` : ''}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${typeUrl ?? 'response'} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Responses that arrive within ms (to assert that nothing was sent). */
  async drain(ms: number): Promise<Response[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.queue.splice(0, this.queue.length);
  }

  close(): void {
    this.call.end();
    this.client.close();
  }
}
