/**
 * The full field set of Istio's DestinationRule spec (networking.istio.io v1 / v1beta1 /
 * v1alpha3), as in Istio's CRD, including fields meshd does not implement yet.
 */
import { arrayOf, bool, closed, i32, mapOf, number, oneOf, str, u32 } from './schema';

export const LB_SIMPLE = ['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'] as const;

const loadBalancer = closed({
  simple: oneOf(...LB_SIMPLE),
  consistentHash: closed({
    httpHeaderName: str,
    httpCookie: closed({
      name: str,
      path: str,
      ttl: str,
      attributes: arrayOf(closed({ name: str, value: str })),
    }),
    useSourceIp: bool,
    httpQueryParameterName: str,
    ringHash: closed({ minimumRingSize: u32 }),
    maglev: closed({ tableSize: u32 }),
    minimumRingSize: u32,
  }),
  localityLbSetting: closed({
    distribute: arrayOf(closed({ from: str, to: mapOf(u32) })),
    failover: arrayOf(closed({ from: str, to: str })),
    failoverPriority: arrayOf(str),
    enabled: bool,
  }),
  warmupDurationSecs: str,
  warmup: closed({ duration: str, minimumPercent: number, aggression: number }),
});

const connectionPool = closed({
  tcp: closed({
    maxConnections: i32,
    connectTimeout: str,
    tcpKeepalive: closed({ probes: u32, time: str, interval: str }),
    maxConnectionDuration: str,
    idleTimeout: str,
  }),
  http: closed({
    http1MaxPendingRequests: i32,
    http2MaxRequests: i32,
    maxRequestsPerConnection: i32,
    maxRetries: i32,
    idleTimeout: str,
    h2UpgradePolicy: oneOf('DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'),
    useClientProtocol: bool,
    maxConcurrentStreams: i32,
    // HTTP/2 PINGs on upstream connections: how often, and how long to wait for the answer.
    http2KeepAlive: closed({ interval: str, timeout: str }),
  }),
});

const outlierDetection = closed({
  splitExternalLocalOriginErrors: bool,
  consecutiveLocalOriginFailures: u32,
  consecutiveGatewayErrors: u32,
  consecutive5xxErrors: u32,
  consecutiveErrors: i32,
  interval: str,
  baseEjectionTime: str,
  maxEjectionPercent: i32,
  minHealthPercent: i32,
});

const clientTls = closed({
  mode: oneOf('DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'),
  clientCertificate: str,
  privateKey: str,
  caCertificates: str,
  credentialName: str,
  subjectAltNames: arrayOf(str),
  sni: str,
  insecureSkipVerify: bool,
  caCrl: str,
});

const portTrafficPolicy = closed({
  port: closed({ number: u32 }),
  loadBalancer,
  connectionPool,
  outlierDetection,
  tls: clientTls,
});

export const trafficPolicySchema = closed({
  loadBalancer,
  connectionPool,
  outlierDetection,
  tls: clientTls,
  portLevelSettings: arrayOf(portTrafficPolicy),
  tunnel: closed({ protocol: str, targetHost: str, targetPort: u32 }),
  proxyProtocol: closed({ version: oneOf('V1', 'V2') }),
  retryBudget: closed({ percent: number, minRetryConcurrency: u32 }),
});

export const destinationRuleSchema = closed({
  host: str,
  trafficPolicy: trafficPolicySchema,
  subsets: arrayOf(closed({ name: str, labels: mapOf(str), trafficPolicy: trafficPolicySchema })),
  exportTo: arrayOf(str),
  workloadSelector: closed({ matchLabels: mapOf(str) }),
});
