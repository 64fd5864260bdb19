/**
 * The agent's SDS server for Envoy, on a Unix domain socket (Istio's
 * `./var/run/secrets/workload-spiffe-uds/socket`): envoy.service.secret.v3.SecretDiscoveryService
 * StreamSecrets, state of the world. It serves `default` (the workload's certificate chain and
 * key) and `ROOTCA` (the root to trust), and pushes a new version to every stream whose secrets
 * changed when the certificate rotates. Requests before the first certificate wait for it.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { type DiscoveryRequestMsg, type DiscoveryResponseMsg, discoveryStreamMethod, shutdownServer } from '../xds/connection';
import { type EnvoyProtos, TypeUrl } from '../xds/protos';
import type { WorkloadCert } from './cert-manager';

export const SDS_PATH = '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets';
export const WORKLOAD_SECRET = 'default';
export const ROOT_SECRET = 'ROOTCA';

type SdsStream = grpc.ServerDuplexStream<DiscoveryRequestMsg, DiscoveryResponseMsg>;

/** What a stream asked for, was sent and acknowledged (for logs and tests; no secret data). */
export interface SdsStreamState {
  id: string;
  nodeId?: string;
  names: string[];
  versionSent?: string;
  nonceSent?: string;
  versionAcked?: string;
  lastNack?: string;
}

interface StreamEntry {
  stream: SdsStream;
  state: SdsStreamState;
  hashSent?: string;
  nonces: number;
}

export interface SdsServerOptions {
  protos: EnvoyProtos;
  log: Logger;
  current: () => WorkloadCert | undefined;
}

export class SdsServer {
  private readonly server = new grpc.Server();
  private readonly streams = new Map<string, StreamEntry>();
  private counter = 0;
  private socketPath?: string;

  constructor(private readonly opts: SdsServerOptions) {
    const { protos } = opts;
    const definition: grpc.ServiceDefinition = { StreamSecrets: discoveryStreamMethod(protos, SDS_PATH, 'streamSecrets') };
    this.server.addService(definition, { StreamSecrets: (stream: SdsStream) => this.handle(stream) });
  }

  /**
   * Listens on the Unix socket `socketPath`, mode 0600 whatever the umask: the socket hands out the
   * workload's private key, so only the agent's user (Envoy runs as the same one) may connect.
   * Missing folders are created 0700; a stale socket is replaced.
   *
   * bind(2) creates the socket file with 0777 & ~umask, and a chmod after it leaves a window in
   * which another user could connect. Changing the umask around bind would be process-wide state
   * that other code (and other async work) sees meanwhile. So the socket is bound inside a fresh
   * 0700 folder beside its final path (mkdtemp: no one else can reach anything inside), chmodded
   * 0600 there, then renamed into place (atomic on one filesystem; the bound socket follows the
   * file). From the first moment anyone else can reach the path, it is 0600.
   */
  async listen(socketPath: string): Promise<void> {
    const abs = path.resolve(socketPath);
    const dir = path.dirname(abs);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // A short name: Unix socket paths are limited to 107 bytes.
    const privateDir = fs.mkdtempSync(path.join(dir, '.s'));
    const staged = path.join(privateDir, 's');
    let bound = false;
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.bindAsync(`unix:${staged}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
      });
      bound = true;
      fs.chmodSync(staged, 0o600);
      fs.renameSync(staged, abs);
      this.socketPath = abs;
    } catch (err) {
      if (bound) this.server.forceShutdown();
      throw err;
    } finally {
      fs.rmSync(privateDir, { recursive: true, force: true });
    }
  }

  async close(): Promise<void> {
    for (const e of this.streams.values()) e.stream.end();
    await shutdownServer(this.server);
    if (this.socketPath) fs.rmSync(this.socketPath, { force: true });
  }

  streamStates(): SdsStreamState[] {
    return [...this.streams.values()].map((e) => ({ ...e.state, names: [...e.state.names] }));
  }

  /** Sends the new certificate to every stream whose secrets changed. */
  push(): void {
    for (const e of [...this.streams.values()]) this.respond(e, false);
  }

  private handle(stream: SdsStream): void {
    const entry: StreamEntry = { stream, state: { id: `sds${++this.counter}`, names: [] }, nonces: 0 };
    this.streams.set(entry.state.id, entry);
    const done = (): void => {
      if (this.streams.delete(entry.state.id)) this.opts.log.debug({ stream: entry.state.id }, 'SDS stream closed');
    };
    stream.on('data', (req: DiscoveryRequestMsg) => this.onRequest(entry, req));
    stream.on('end', () => {
      done();
      stream.end();
    });
    stream.on('error', done);
    stream.on('close', done);
    stream.on('cancelled', done);
  }

  private onRequest(e: StreamEntry, req: DiscoveryRequestMsg): void {
    const { state } = e;
    if (req.node?.id) state.nodeId = req.node.id;
    if (req.type_url && req.type_url !== TypeUrl.Secret) {
      e.stream.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: `SDS serves only ${TypeUrl.Secret}` });
      return;
    }
    const names = [...new Set(req.resource_names ?? [])].sort();
    const nonce = req.response_nonce ?? '';
    const namesChanged = names.join('\n') !== state.names.join('\n');
    if (nonce !== '' && nonce !== state.nonceSent) return; // an answer to a replaced response
    if (nonce !== '' && !namesChanged) {
      if (req.error_detail && (req.error_detail.code || req.error_detail.message)) {
        state.lastNack = req.error_detail.message ?? '';
        this.opts.log.warn({ stream: state.id, node: state.nodeId, version: state.versionSent, error: state.lastNack }, 'proxy rejected secret (NACK)');
      } else {
        state.versionAcked = req.version_info ?? state.versionSent;
        state.lastNack = undefined;
      }
      return;
    }
    for (const n of names) {
      if (n !== WORKLOAD_SECRET && n !== ROOT_SECRET) this.opts.log.warn({ stream: state.id, node: state.nodeId, name: n }, 'unknown secret requested; not served');
    }
    state.names = names;
    this.respond(e, true);
  }

  /** The secrets `names` asks for (known names only), as Envoy Secret messages. */
  private secrets(names: readonly string[], cert: WorkloadCert): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const n of names) {
      if (n === WORKLOAD_SECRET) {
        out.push({ name: n, tls_certificate: { certificate_chain: { inline_bytes: Buffer.from(cert.certChainPem) }, private_key: { inline_bytes: Buffer.from(cert.keyPem) } } });
      } else if (n === ROOT_SECRET) {
        out.push({ name: n, validation_context: { trusted_ca: { inline_bytes: Buffer.from(cert.rootPem) } } });
      }
    }
    return out;
  }

  private respond(e: StreamEntry, force: boolean): void {
    const cert = this.opts.current();
    if (!cert || e.state.names.length === 0) return; // answered once the first certificate arrives
    const secrets = this.secrets(e.state.names, cert);
    if (secrets.length === 0) return;
    const { protos } = this.opts;
    const resources = secrets.map((s) => ({ type_url: TypeUrl.Secret, value: protos.encode(TypeUrl.Secret, s) }));
    const h = createHash('sha256');
    for (const r of resources) h.update(r.value);
    const hash = h.digest('hex');
    if (!force && hash === e.hashSent) return;
    const nonce = `${e.state.id}-${++e.nonces}`;
    const version = String(cert.version);
    e.stream.write({ version_info: version, resources, type_url: TypeUrl.Secret, nonce });
    e.hashSent = hash;
    e.state.versionSent = version;
    e.state.nonceSent = nonce;
    this.opts.log.info({ stream: e.state.id, node: e.state.nodeId, names: e.state.names, version }, 'SDS pushed');
  }
}
