/**
 * How meshctl asks meshd (istioctl's multixds/adsc): one StreamAggregatedResources stream, one
 * DiscoveryRequest of an `istio.io/debug/*` type from adsc's node (GENERATOR=event, so the
 * stream is a debug connection and is sent no config), the first response of that type back.
 *
 * Transport, as istioctl's control-plane flags choose it: `--plaintext` (15010, answered only
 * when meshd runs with `--debug-endpoint-auth=false`), or TLS (15012) verified against
 * `--cert-dir`'s root-cert.pem (or not at all with `--insecure`), proving an identity with the
 * certificate in `--cert-dir` (cert-chain.pem, key.pem) or a service-account token.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type DiscoveryRequestMsg, type DiscoveryResponseMsg, discoveryStreamMethod } from '../xds/connection';
import type { EnvoyProtos } from '../xds/protos';
import { ADS_PATH } from '../xds/server';

export interface XdsTarget {
  /** host:port of meshd's xDS server. */
  address: string;
  plaintext: boolean;
  /** Folder with root-cert.pem (the server's root) and optionally cert-chain.pem + key.pem (a client certificate). */
  certDir?: string;
  /** Skip verifying the server's certificate chain and name (istioctl's `--insecure`). */
  insecure: boolean;
  /** The server name its certificate must carry (istioctl's `--xds-san`). */
  xdsSan?: string;
  /** A service-account token, sent as `authorization: Bearer`. */
  token?: string;
  /** The namespace the debug node claims (istioctl: its istio namespace). */
  namespace: string;
  timeoutMs: number;
}

export interface XdsAnswer {
  response: DiscoveryResponseMsg;
  /** The control plane's identifier: `{"Component":"istiod","ID":…,"Info":{"version":…}}`. */
  controlPlane: { id: string; version: string };
}

export const DEFAULT_XDS_SAN = 'istiod.istio-system.svc';

function readIf(dir: string, name: string): Buffer | undefined {
  const p = path.join(dir, name);
  return fs.existsSync(p) ? fs.readFileSync(p) : undefined;
}

function transport(t: XdsTarget): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions; metadata: grpc.Metadata } {
  const metadata = new grpc.Metadata();
  if (t.token) metadata.set('authorization', `Bearer ${t.token}`);
  if (t.plaintext) return { credentials: grpc.credentials.createInsecure(), options: {}, metadata };
  const root = t.certDir ? readIf(t.certDir, 'root-cert.pem') : undefined;
  const chain = t.certDir ? readIf(t.certDir, 'cert-chain.pem') : undefined;
  const key = t.certDir ? readIf(t.certDir, 'key.pem') : undefined;
  const san = t.xdsSan ?? DEFAULT_XDS_SAN;
  const credentials = grpc.credentials.createSsl(root ?? null, chain && key ? key : null, chain && key ? chain : null, t.insecure ? { rejectUnauthorized: false } : {});
  return { credentials, options: { 'grpc.ssl_target_name_override': san, 'grpc.default_authority': san }, metadata };
}

/** adsc's request: its node in `namespace`, GENERATOR=event, a nonce of the current time. */
export function debugRequest(typeUrl: string, resourceNames: readonly string[], namespace: string): DiscoveryRequestMsg {
  const meta = { GENERATOR: 'event', SERVICE_ACCOUNT: 'default', NAMESPACE: namespace, ISTIO_VERSION: '65536.65536.65536' };
  return {
    type_url: typeUrl,
    resource_names: [...resourceNames],
    response_nonce: new Date().toString(),
    node: {
      id: `sidecar~0.0.0.0~meshctl-${process.pid}.${namespace}~${namespace}.svc.cluster.local`,
      metadata: { fields: Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, { stringValue: v }])) },
    },
  };
}

/** One debug question over a real gRPC stream; rejects with the stream's status, or after timeoutMs. */
export function askXds(protos: EnvoyProtos, t: XdsTarget, typeUrl: string, resourceNames: readonly string[] = []): Promise<XdsAnswer> {
  const { credentials, options, metadata } = transport(t);
  const Ctor = grpc.makeGenericClientConstructor({ ads: discoveryStreamMethod(protos, ADS_PATH, 'streamAggregatedResources') }, 'ADS');
  const client = new Ctor(t.address, credentials, options);
  const call = (client as unknown as { ads: (md: grpc.Metadata, o: grpc.CallOptions) => grpc.ClientDuplexStream<DiscoveryRequestMsg, DiscoveryResponseMsg> }).ads(metadata, {
    deadline: Date.now() + t.timeoutMs,
  });
  return new Promise<XdsAnswer>((resolve, reject) => {
    let settled = false;
    const done = (f: () => void): void => {
      if (settled) return;
      settled = true;
      call.cancel();
      client.close();
      f();
    };
    call.on('data', (r: DiscoveryResponseMsg & { control_plane?: { identifier?: string } }) => {
      if (r.type_url !== typeUrl) return;
      let cp: { ID?: string; Info?: { version?: string } } = {};
      try {
        cp = JSON.parse(r.control_plane?.identifier || '{}') as typeof cp;
      } catch {
        // An identifier that is not istiod's JSON: show no ID.
      }
      done(() => resolve({ response: r, controlPlane: { id: cp.ID ?? '', version: cp.Info?.version ?? '' } }));
    });
    call.on('error', (e: grpc.ServiceError) => done(() => reject(new Error(`${t.address}: ${grpc.status[e.code] ?? e.code}: ${e.details || e.message}`))));
    call.on('end', () => done(() => reject(new Error(`${t.address}: the stream ended without an answer to ${typeUrl}`))));
    call.write(debugRequest(typeUrl, resourceNames, t.namespace));
  });
}
