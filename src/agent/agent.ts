/**
 * `meshd agent`: what istio-agent does for a workload, composed. A CertManager keeps a certificate
 * from meshd's CA; each rotation is written as files (proxyless gRPC's file_watcher) and pushed
 * over SDS (Envoy). The gRPC xDS bootstrap and the Envoy bootstrap are written once at start.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { EnvoyProtos } from '../xds/protos';
import { CaClient } from './ca-client';
import { CertManager, type CertEvent, type Signer, type WorkloadCert, describeCert } from './cert-manager';
import { type KeyType, spiffeId } from './csr';
import { buildGrpcBootstrap, type GrpcBootstrapInput, writeCertFiles, writeFileAtomic } from './files';
import { SdsServer } from './sds-server';
import { parseRoots } from './verify-chain';

export interface AgentOptions {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
  keyType: KeyType;
  ttlSeconds: number;
  /**
   * The CA: address and credentials (ignored when `signer` is given), and `rootCertFile`, the
   * trusted root bundle (Istio's istio-ca-root-cert), which is always required: it verifies the
   * CA's TLS certificate and every chain the CA returns, over TLS or plaintext.
   */
  ca: { address: string; plaintext: boolean; rootCertFile?: string; serverName?: string; tokenFile?: string; clusterId?: string };
  /** Overrides the CA client (tests, or another CA). */
  signer?: Signer;
  graceRatio?: number;
  graceJitter?: number;
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Write cert-chain.pem, key.pem, root-cert.pem here on every rotation. */
  outputDir?: string;
  /** Serve SDS on this Unix socket. */
  sdsSocket?: string;
  /** Write the gRPC xDS bootstrap here (pointing at outputDir's files). */
  grpcBootstrap?: { file: string } & Omit<GrpcBootstrapInput, 'certDir'>;
  /** Write this Envoy bootstrap (already built) here. */
  envoyBootstrap?: { file: string; bootstrap: Record<string, unknown> };
  log: Logger;
  /** Reuse a loaded Envoy API (loading takes ~0.5 s). */
  protos?: EnvoyProtos;
}

export interface AgentHandle {
  readonly identity: string;
  readonly certs: CertManager;
  readonly sds?: SdsServer;
  /** Resolves with the first certificate, once its files are written. */
  ready(): Promise<WorkloadCert>;
  close(): Promise<void>;
}

function readOptional(file: string | undefined): string | undefined {
  if (!file) return undefined;
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The configured root, checked once at start: without one the agent could not tell its CA's
 * chain from anyone else's (on plaintext, from whoever is on the path), so it refuses to start.
 */
function requireRoot(file: string | undefined): void {
  const where = 'mount ConfigMap istio-ca-root-cert there, as Istio does, or name the mesh root with --ca-root-cert';
  if (!file) throw new Error(`no trusted root: --ca-root-cert is required (the agent verifies every certificate chain the CA returns against it); ${where}`);
  const pem = readOptional(file);
  if (pem === undefined) throw new Error(`no trusted root: --ca-root-cert ${file} cannot be read (the agent verifies every certificate chain the CA returns against it); ${where}`);
  try {
    parseRoots(pem);
  } catch (err) {
    throw new Error(`no trusted root: --ca-root-cert ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export async function startAgent(opts: AgentOptions): Promise<AgentHandle> {
  const { log } = opts;
  const identity = spiffeId(opts.trustDomain, opts.namespace, opts.serviceAccount);
  requireRoot(opts.ca.rootCertFile);
  const rootFromFile = (): string | undefined => readOptional(opts.ca.rootCertFile);
  const signer: Signer =
    opts.signer ??
    new CaClient({
      address: opts.ca.address,
      plaintext: opts.ca.plaintext,
      rootCertPem: rootFromFile,
      ...(opts.ca.serverName ? { serverName: opts.ca.serverName } : {}),
      ...(opts.ca.tokenFile ? { tokenFile: opts.ca.tokenFile } : {}),
      ...(opts.ca.clusterId ? { metadata: { ClusterID: opts.ca.clusterId } } : {}),
    });
  const certs = new CertManager({
    signer,
    spiffeId: identity,
    keyType: opts.keyType,
    ttlSeconds: opts.ttlSeconds,
    log,
    trustedRootsPem: rootFromFile,
    ...(opts.graceRatio !== undefined ? { graceRatio: opts.graceRatio } : {}),
    ...(opts.graceJitter !== undefined ? { graceJitter: opts.graceJitter } : {}),
    ...(opts.retryInitialMs !== undefined ? { retryInitialMs: opts.retryInitialMs } : {}),
    ...(opts.retryMaxMs !== undefined ? { retryMaxMs: opts.retryMaxMs } : {}),
  });

  let sds: SdsServer | undefined;
  if (opts.sdsSocket) {
    sds = new SdsServer({ protos: opts.protos ?? new EnvoyProtos(), log, current: () => certs.current() });
    await sds.listen(opts.sdsSocket);
    log.info({ socket: path.resolve(opts.sdsSocket) }, 'SDS listening');
  }
  if (opts.grpcBootstrap) {
    const { file, ...input } = opts.grpcBootstrap;
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    writeFileAtomic(file, `${JSON.stringify(buildGrpcBootstrap({ ...input, ...(opts.outputDir ? { certDir: opts.outputDir } : {}) }), null, 2)}\n`, 0o644);
    log.info({ file }, 'gRPC xDS bootstrap written');
  }
  if (opts.envoyBootstrap) {
    fs.mkdirSync(path.dirname(path.resolve(opts.envoyBootstrap.file)), { recursive: true });
    writeFileAtomic(opts.envoyBootstrap.file, `${JSON.stringify(opts.envoyBootstrap.bootstrap, null, 2)}\n`, 0o644);
    log.info({ file: opts.envoyBootstrap.file }, 'Envoy bootstrap written');
  }

  // Outputs follow each rotation before `ready` resolves and before listeners see it.
  let firstWritten: WorkloadCert | undefined;
  const readyWaiters: Array<(c: WorkloadCert) => void> = [];
  certs.on((e: CertEvent) => {
    if (e.type !== 'rotated') return;
    if (opts.outputDir) {
      try {
        writeCertFiles(opts.outputDir, e.cert);
      } catch (err) {
        log.error({ dir: opts.outputDir, error: (err as Error).message, ...describeCert(e.cert) }, 'writing certificate files failed');
      }
    }
    sds?.push();
    if (!firstWritten) {
      firstWritten = e.cert;
      for (const w of readyWaiters.splice(0)) w(e.cert);
    }
  });
  certs.start();
  log.info({ identity, ca: opts.signer ? 'custom' : opts.ca.address, keyType: opts.keyType, ttlSeconds: opts.ttlSeconds }, 'agent started');

  return {
    identity,
    certs,
    ...(sds ? { sds } : {}),
    ready: () => (firstWritten ? Promise.resolve(firstWritten) : new Promise((resolve) => readyWaiters.push(resolve))),
    close: async () => {
      certs.stop();
      await sds?.close();
    },
  };
}
