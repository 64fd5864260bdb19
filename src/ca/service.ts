/**
 * `istio.v1.auth.IstioCertificateService/CreateCertificate`, as istiod serves it: authenticate
 * the caller, read the CSR, refuse a request for any identity the caller did not prove, sign for
 * the caller's identity, answer the chain one certificate per element (leaf … root). Every
 * decision is counted under istiod's metric names and logged without tokens, CSRs or keys.
 */
import { X509Certificate } from 'node:crypto';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from 'pino';
import { authenticateCaller } from './authn/common';
import { splitPemCertificates } from './authn/mtls';
import { CaMetrics } from './metrics';
import { CsrReadError, readCsr } from './service-csr';
import { type Authenticator, CaError, type CertificateAuthority } from './types';

export const CREATE_CERTIFICATE_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';
/** Metadata key with which a node agent asks for another workload's identity (istiod: security.ImpersonatedIdentity). */
export const IMPERSONATED_IDENTITY = 'ImpersonatedIdentity';
export const DEFAULT_WORKLOAD_TTL_SECONDS = 24 * 3600;
export const MAX_WORKLOAD_TTL_SECONDS = 90 * 24 * 3600;

export const CA_PROTO_FILE = path.join(__dirname, '..', '..', 'proto', 'istioca.proto');

export interface PbValue {
  stringValue?: string;
  kind?: string;
}

export interface IstioCertificateRequest {
  csr?: string;
  validity_duration?: number | string;
  metadata?: { fields?: Record<string, PbValue> } | null;
}

export interface IstioCertificateResponse {
  cert_chain: string[];
}

/** Loads proto/istioca.proto (keepCase: `validity_duration`, `cert_chain`). */
export function loadCaProto(): grpc.GrpcObject {
  const def = protoLoader.loadSync(CA_PROTO_FILE, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  return grpc.loadPackageDefinition(def);
}

export function certificateServiceDefinition(): grpc.ServiceDefinition {
  const pkg = loadCaProto() as unknown as { istio: { v1: { auth: { IstioCertificateService: { service: grpc.ServiceDefinition } } } } };
  return pkg.istio.v1.auth.IstioCertificateService.service;
}

export interface CertificateServiceOptions {
  ca: CertificateAuthority;
  /** Tried in order; the first that proves an identity wins. */
  authenticators: readonly Authenticator[];
  metrics: CaMetrics;
  log: Logger;
  /** Lifetime when the request asks for none (istiod: DEFAULT_WORKLOAD_CERT_TTL, 24 h). */
  defaultTtlSeconds?: number;
  /** Longest lifetime handed out; longer requests are capped (istiod: MAX_WORKLOAD_CERT_TTL, 90 d). */
  maxTtlSeconds?: number;
}

type UnaryCall = grpc.ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>;

/** The request's metadata as plain strings (binary values are left out). */
function metadataRecord(md: grpc.Metadata): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(md.getMap())) if (typeof v === 'string') out[k] = md.get(k).filter((x): x is string => typeof x === 'string');
  return out;
}

/**
 * Where the client certificate of a call's connection comes from: `peer` is `call.getPeer()`. The
 * 15012 listener (SecurePort) keeps every certificate presented, verified by TLS or not, so the
 * authenticator can say why it refuses one; without it, grpc-js's auth context (verified ones only).
 */
export type PeerCertificateLookup = (peer: string) => Buffer | undefined;

/** The client certificate of a TLS connection, as PEM (none on plaintext). */
function peerCertificatePem(call: UnaryCall, lookup: PeerCertificateLookup | undefined): string | undefined {
  const raw = lookup?.(call.getPeer()) ?? call.getAuthContext()?.sslPeerCertificate?.raw;
  if (!raw || raw.length === 0) return undefined;
  try {
    return new X509Certificate(raw).toString();
  } catch {
    return undefined;
  }
}

/** One PEM certificate per element with a trailing newline, as istiod answers (ztunnel expects it). */
function expandChain(chain: readonly string[]): string[] {
  return chain.flatMap((pem) => splitPemCertificates(pem)).map((c) => `${c}\n`);
}

export class CertificateService {
  private readonly defaultTtl: number;
  private readonly maxTtl: number;

  constructor(private readonly opts: CertificateServiceOptions) {
    this.defaultTtl = opts.defaultTtlSeconds ?? DEFAULT_WORKLOAD_TTL_SECONDS;
    this.maxTtl = opts.maxTtlSeconds ?? MAX_WORKLOAD_TTL_SECONDS;
    if (!(this.defaultTtl > 0) || !(this.maxTtl >= this.defaultTtl))
      throw new Error(`workload certificate TTLs: default ${this.defaultTtl}s must be > 0 and <= max ${this.maxTtl}s`);
  }

  /** The grpc-js implementation object for certificateServiceDefinition(), reading client certificates through `peerCertificates`. */
  implementation(peerCertificates?: PeerCertificateLookup): grpc.UntypedServiceImplementation {
    return {
      CreateCertificate: (call: UnaryCall, callback: grpc.sendUnaryData<IstioCertificateResponse>) => {
        this.createCertificate(call, peerCertificates).then(
          (res) => callback(null, res),
          (err: unknown) => {
            const e = err instanceof CaError ? err : new CaError('internal', 'internal error', grpc.status.INTERNAL);
            callback({ code: e.grpcCode, details: e.message });
          },
        );
      },
    };
  }

  private async createCertificate(call: UnaryCall, peerCertificates: PeerCertificateLookup | undefined): Promise<IstioCertificateResponse> {
    const { metrics, log } = this.opts;
    metrics.csr.inc();
    const peer = call.getPeer();
    const req = call.request;
    const caller = await authenticateCaller(this.opts.authenticators, {
      metadata: metadataRecord(call.metadata),
      peerCertificatePem: peerCertificatePem(call, peerCertificates),
    }).catch((err: CaError) => {
      metrics.authnFailure.inc({ reason: err.reason });
      log.warn({ peer, reason: err.reason, error: err.message }, 'certificate request refused: authentication failed');
      throw err;
    });

    let requested: string[];
    try {
      requested = readCsr(req.csr ?? '').uris;
    } catch (err) {
      const e = err instanceof CsrReadError ? err : new CsrReadError('parse', 'unreadable CSR');
      (e.kind === 'id' ? metrics.idExtractionError : metrics.csrParsingError).inc();
      log.warn({ peer, identity: caller.identities, error: e.message }, 'certificate request refused: bad CSR');
      throw new CaError(e.kind === 'id' ? 'id_extraction_error' : 'csr_parse_error', `CSR parsing error: ${e.message}`, grpc.status.INVALID_ARGUMENT);
    }
    const impersonated = req.metadata?.fields?.[IMPERSONATED_IDENTITY]?.stringValue;
    if (impersonated) requested = [...requested, impersonated];
    const foreign = requested.filter((id) => !caller.identities.includes(id));
    if (foreign.length > 0) {
      metrics.authnFailure.inc({ reason: 'id_mismatch' });
      log.warn({ peer, identity: caller.identities, via: caller.via, requested: foreign }, 'certificate request refused: identity not proven');
      throw new CaError(
        'id_mismatch',
        `the request asks for ${foreign.join(', ')}${impersonated ? ' (ImpersonatedIdentity is not allowed)' : ''}, but the caller proved ${caller.identities.join(', ')}`,
        grpc.status.PERMISSION_DENIED,
      );
    }
    // Sign for what was asked for (a subset of what was proved), else for everything proved.
    const identities = requested.length > 0 ? [...new Set(requested)] : [...caller.identities];
    const asked = Number(req.validity_duration ?? 0);
    const ttlSeconds = Number.isFinite(asked) && asked > 0 ? Math.min(Math.floor(asked), this.maxTtl) : this.defaultTtl;

    let chain: string[];
    try {
      chain = expandChain((await this.opts.ca.sign({ csrPem: req.csr ?? '', identities, ttlSeconds })).certChainPem);
    } catch (err) {
      const e = err instanceof CaError ? err : new CaError('signing_error', 'CSR signing error', grpc.status.INTERNAL);
      if (e.reason === 'csr_parse_error') metrics.csrParsingError.inc();
      else metrics.signError.inc({ error: CaMetrics.signErrorType(e.reason) });
      const fields = { peer, identity: identities, reason: e.reason, error: err instanceof CaError ? e.message : String((err as Error)?.name ?? 'error') };
      // The caller's CSR (its signature, its key) is the caller's fault; anything else is the CA's.
      if (e.reason === 'csr_parse_error' || e.reason === 'key_type') log.warn(fields, 'certificate request refused: bad CSR');
      else log.error(fields, 'CSR signing error');
      throw e;
    }
    if (chain.length === 0) {
      metrics.signError.inc({ error: CaMetrics.signErrorType('signing_error') });
      throw new CaError('signing_error', 'CSR signing error: the authority returned no certificate', grpc.status.INTERNAL);
    }
    metrics.success.inc();
    log.info({ peer, identity: identities, via: caller.via, ttlSeconds }, 'certificate issued');
    return { cert_chain: chain };
  }
}
