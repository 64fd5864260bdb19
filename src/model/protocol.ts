/**
 * Istio's protocol selection (istiod's kube.ConvertProtocol and protocol.Parse):
 * - Kubernetes Service ports: `appProtocol` when set (the port name is then not read), else the
 *   port name's prefix before the first `-` (`grpc-web` whole); UDP ports are UDP.
 * - ServiceEntry ports: their `protocol` field only.
 * Anything else is `UnsupportedProtocol`: istiod's "auto" protocol, detected per connection by
 * Envoy's HTTP inspector (protocol sniffing). Kubernetes ports 25, 53, 3306 and 27017 without a
 * protocol are TCP instead, since sniffing breaks their server-first protocols.
 */

export type Protocol =
  | 'HTTP'
  | 'HTTP2'
  | 'GRPC'
  | 'GRPC-Web'
  | 'HTTPS'
  | 'TLS'
  | 'TCP'
  | 'UDP'
  | 'Mongo'
  | 'Redis'
  | 'MySQL'
  /** istiod's protocol.Unsupported: not declared, so sniffed. */
  | 'UnsupportedProtocol';

export const AUTO: Protocol = 'UnsupportedProtocol';

const BY_NAME: Readonly<Record<string, Protocol>> = {
  http: 'HTTP',
  http2: 'HTTP2',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-Web',
  https: 'HTTPS',
  tls: 'TLS',
  tcp: 'TCP',
  udp: 'UDP',
  mongo: 'Mongo',
  redis: 'Redis',
  mysql: 'MySQL',
};

/** Kubernetes-standard appProtocol values (only ever read from appProtocol). */
const KUBERNETES_APP_PROTOCOLS: Readonly<Record<string, Protocol>> = {
  'kubernetes.io/h2c': 'HTTP2',
  'kubernetes.io/ws': 'HTTP',
  'kubernetes.io/wss': 'HTTPS',
};

/** Ports whose applications speak first: never sniffed (istiod's wellKnownPorts: SMTP, DNS, MySQL, MongoDB). */
const WELL_KNOWN_PORTS: ReadonlySet<number> = new Set([25, 53, 3306, 27017]);

/** istiod's protocol.Parse: a protocol name, case-insensitive; anything else is unsupported (sniffed). */
export function parseProtocol(s: string | undefined): Protocol {
  return BY_NAME[(s ?? '').toLowerCase()] ?? AUTO;
}

/** The protocol of a Kubernetes Service port. */
export function protocolOf(port: { name?: string; appProtocol?: string; protocol?: string; port?: number }): Protocol {
  if (port.protocol === 'UDP') return 'UDP';
  let name = port.name ?? '';
  if (port.appProtocol !== undefined) {
    const k8s = KUBERNETES_APP_PROTOCOLS[port.appProtocol];
    if (k8s) return k8s;
    name = port.appProtocol;
  }
  let p: Protocol;
  if (name.toLowerCase().startsWith('grpc-web')) p = 'GRPC-Web';
  else {
    const dash = name.indexOf('-');
    p = parseProtocol(dash < 0 ? name : name.slice(0, dash));
    // A UDP name on a TCP port does not make it UDP.
    if (p === 'UDP') p = 'TCP';
  }
  if (p === AUTO && port.port !== undefined && WELL_KNOWN_PORTS.has(port.port)) return 'TCP';
  return p;
}

/** The protocol of a ServiceEntry port: its `protocol` field (unset or unknown → sniffed). */
export function serviceEntryProtocol(protocol: string | undefined): Protocol {
  return parseProtocol(protocol);
}

/** HTTP-family protocols get HTTP connection managers and RDS routes. */
export function isHttp(p: Protocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-Web';
}

/** Not declared: Envoy tells HTTP from other TCP traffic per connection. */
export function isAuto(p: Protocol): boolean {
  return p === AUTO;
}

/** istiod's IsHTTPOrSniffed: the port has virtual hosts in sidecar route configurations. */
export function isHttpOrSniffed(p: Protocol): boolean {
  return isHttp(p) || isAuto(p);
}

/** Protocols whose upstream connections must be HTTP/2 (istiod's IsHTTP2: HTTP2, GRPC, GRPC-Web). */
export function isHttp2(p: Protocol): boolean {
  return p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-Web';
}
