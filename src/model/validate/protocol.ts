/**
 * Istio's port protocol names (pkg/config/protocol): parsed case-insensitively, with the
 * HTTP / TLS families the ServiceEntry and Gateway rules ask about.
 */

export type IstioProtocol = 'HTTP' | 'HTTPS' | 'HTTP2' | 'HTTP_PROXY' | 'GRPC' | 'GRPC-WEB' | 'TCP' | 'TLS' | 'UDP' | 'MONGO' | 'REDIS' | 'MYSQL';

const PROTOCOLS: readonly IstioProtocol[] = ['HTTP', 'HTTPS', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-WEB', 'TCP', 'TLS', 'UDP', 'MONGO', 'REDIS', 'MYSQL'];

/** The protocol a port name spells (any case), or undefined when Istio does not know it. */
export function parseProtocol(s: string): IstioProtocol | undefined {
  const upper = s.toUpperCase();
  return PROTOCOLS.find((p) => p === upper);
}

export function unsupportedProtocolError(s: string): string {
  return `unsupported protocol ${JSON.stringify(s)}: use one of ${PROTOCOLS.join(', ')} (any case)`;
}

/** Protocols carried over HTTP (Istio's IsHTTP). */
export function isHttpProtocol(p: IstioProtocol | undefined): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'HTTP_PROXY' || p === 'GRPC' || p === 'GRPC-WEB';
}

/** Protocols carried over TLS (Istio's IsTLS). */
export function isTlsProtocol(p: IstioProtocol | undefined): boolean {
  return p === 'HTTPS' || p === 'TLS';
}
