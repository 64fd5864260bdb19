/** Istio's protocol selection: `appProtocol`, else the port name's prefix; unnamed → TCP. */

export type Protocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'GRPC-Web' | 'HTTPS' | 'TLS' | 'TCP' | 'UDP' | 'Mongo' | 'Redis' | 'MySQL';

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
  // Kubernetes-standard appProtocol values
  'kubernetes.io/h2c': 'HTTP2',
  'kubernetes.io/ws': 'HTTP',
  'kubernetes.io/wss': 'HTTPS',
};

function lookup(s: string | undefined): Protocol | undefined {
  if (!s) return undefined;
  return BY_NAME[s.toLowerCase()];
}

export function protocolOf(port: { name?: string; appProtocol?: string; protocol?: string }): Protocol {
  if (port.protocol === 'UDP') return 'UDP';
  const fromApp = lookup(port.appProtocol);
  if (fromApp) return fromApp;
  const name = port.name ?? '';
  const dash = name.indexOf('-');
  // `grpc-web` is itself a prefix; try the whole name first, then the part before the dash.
  return lookup(name) ?? lookup(name.slice(0, dash < 0 ? name.length : dash)) ?? 'TCP';
}

/** HTTP-family protocols get HTTP connection managers and RDS routes. */
export function isHttp(p: Protocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-Web';
}

/** Protocols whose upstream connections must be HTTP/2. */
export function isHttp2(p: Protocol): boolean {
  return p === 'HTTP2' || p === 'GRPC';
}
