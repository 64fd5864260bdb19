/**
 * The certificate service's metrics, under istiod's names (security/pkg/server/ca/monitoring.go),
 * on the same registry as the xDS metrics (served on /metrics).
 */
import { Counter, type Registry } from 'prom-client';

/** `error` values of citadel_server_csr_sign_err_count, as istiod's caerror types spell them. */
export const SIGN_ERROR_TYPES: Readonly<Record<string, string>> = Object.freeze({
  ca_not_ready: 'CA_NOT_READY',
  csr_parse_error: 'CSR_ERROR',
  key_type: 'CSR_ERROR',
  ttl_error: 'TTL_ERROR',
  signing_error: 'CERT_GEN_ERROR',
});

export class CaMetrics {
  /** Every CreateCertificate call. */
  readonly csr: Counter;
  /** Refused callers: no credential, a bad one, or a request for another identity (`reason` is meshd's addition). */
  readonly authnFailure: Counter;
  readonly csrParsingError: Counter;
  readonly idExtractionError: Counter;
  /** Failures of the authority, by istiod's error type. */
  readonly signError: Counter;
  readonly success: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.csr = new Counter({ name: 'citadel_server_csr_count', help: 'The number of CSRs received by Citadel server.', registers });
    this.authnFailure = new Counter({
      name: 'citadel_server_authentication_failure_count',
      help: 'The number of authentication failures.',
      labelNames: ['reason'],
      registers,
    });
    this.csrParsingError = new Counter({ name: 'citadel_server_csr_parsing_err_count', help: 'The number of errors occurred when parsing the CSR.', registers });
    this.idExtractionError = new Counter({
      name: 'citadel_server_id_extraction_err_count',
      help: 'The number of errors occurred when extracting the ID from CSR.',
      registers,
    });
    this.signError = new Counter({ name: 'citadel_server_csr_sign_err_count', help: 'The number of errors occurred when signing the CSR.', labelNames: ['error'], registers });
    this.success = new Counter({ name: 'citadel_server_success_cert_issuance_count', help: 'The number of certificates issuances that have succeeded.', registers });
  }

  /** istiod's `error` label for a reason of the authority's CaError. */
  static signErrorType(reason: string): string {
    return SIGN_ERROR_TYPES[reason] ?? reason.toUpperCase();
  }
}
