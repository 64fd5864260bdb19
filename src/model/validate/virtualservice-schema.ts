/**
 * The full field set of Istio's VirtualService spec (networking.istio.io v1 / v1beta1 /
 * v1alpha3 share one schema), as in Istio's CRD. Fields meshd does not implement yet are listed
 * too, so they are accepted rather than reported as unknown.
 */
import { arrayOf, bool, closed, i32, mapOf, number, oneOf, str, u32 } from './schema';

const stringMatch = closed({ exact: str, prefix: str, regex: str });
const portSelector = closed({ number: u32 });
export const destinationSchema = closed({ host: str, subset: str, port: portSelector });
const headerOperations = closed({ set: mapOf(str), add: mapOf(str), remove: arrayOf(str) });
const headers = closed({ request: headerOperations, response: headerOperations });
const percent = closed({ value: number });

const httpMatchRequest = closed({
  name: str,
  uri: stringMatch,
  scheme: stringMatch,
  method: stringMatch,
  authority: stringMatch,
  headers: mapOf(stringMatch),
  port: u32,
  sourceLabels: mapOf(str),
  gateways: arrayOf(str),
  queryParams: mapOf(stringMatch),
  ignoreUriCase: bool,
  withoutHeaders: mapOf(stringMatch),
  sourceNamespace: str,
  statPrefix: str,
});

const httpRouteDestination = closed({ destination: destinationSchema, weight: i32, headers });

const httpRedirect = closed({
  uri: str,
  authority: str,
  port: u32,
  derivePort: oneOf('FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'),
  scheme: str,
  redirectCode: u32,
});

const httpDirectResponse = closed({ status: u32, body: closed({ string: str, bytes: str }) });
const delegate = closed({ name: str, namespace: str });
const httpRewrite = closed({ uri: str, authority: str, uriRegexRewrite: closed({ match: str, rewrite: str }) });

const httpRetry = closed({
  attempts: i32,
  perTryTimeout: str,
  retryOn: str,
  retryRemoteLocalities: bool,
  retryIgnorePreviousHosts: bool,
  backoff: str,
});

const faultInjection = closed({
  delay: closed({ fixedDelay: str, exponentialDelay: str, percent: i32, percentage: percent }),
  abort: closed({ httpStatus: i32, grpcStatus: str, http2Error: str, percentage: percent }),
});

const mirrorPolicy = closed({ destination: destinationSchema, percentage: percent });

const corsPolicy = closed({
  allowOrigin: arrayOf(str),
  allowOrigins: arrayOf(stringMatch),
  allowMethods: arrayOf(str),
  allowHeaders: arrayOf(str),
  exposeHeaders: arrayOf(str),
  maxAge: str,
  allowCredentials: bool,
  unmatchedPreflights: oneOf('UNSPECIFIED', 'FORWARD', 'IGNORE'),
});

const httpRoute = closed({
  name: str,
  match: arrayOf(httpMatchRequest),
  route: arrayOf(httpRouteDestination),
  redirect: httpRedirect,
  directResponse: httpDirectResponse,
  delegate,
  rewrite: httpRewrite,
  timeout: str,
  retries: httpRetry,
  fault: faultInjection,
  mirror: destinationSchema,
  mirrors: arrayOf(mirrorPolicy),
  // the deprecated UInt32Value field is spelled both ways in Istio's CRD
  mirrorPercent: u32,
  mirror_percent: u32,
  mirrorPercentage: percent,
  corsPolicy,
  headers,
});

const l4Match = closed({
  destinationSubnets: arrayOf(str),
  port: u32,
  sourceLabels: mapOf(str),
  gateways: arrayOf(str),
  sourceNamespace: str,
  sourceSubnet: str,
});

const tlsMatch = closed({
  sniHosts: arrayOf(str),
  destinationSubnets: arrayOf(str),
  port: u32,
  sourceLabels: mapOf(str),
  gateways: arrayOf(str),
  sourceNamespace: str,
});

const routeDestination = closed({ destination: destinationSchema, weight: i32 });

export const virtualServiceSchema = closed({
  hosts: arrayOf(str),
  gateways: arrayOf(str),
  http: arrayOf(httpRoute),
  tls: arrayOf(closed({ match: arrayOf(tlsMatch), route: arrayOf(routeDestination) })),
  tcp: arrayOf(closed({ match: arrayOf(l4Match), route: arrayOf(routeDestination) })),
  exportTo: arrayOf(str),
});
