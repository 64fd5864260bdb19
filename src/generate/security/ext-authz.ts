/**
 * AuthorizationPolicy `action: CUSTOM` as istiod builds it (authz builder, IsCustomBuilder): an
 * RBAC filter in shadow mode whose rules are the CUSTOM policies' rules (named
 * `istio-ext-authz-ns[<ns>]-policy[<name>]-rule[<i>]`, stat prefix `istio_ext_authz_`), so a
 * matched request leaves its policy name in the RBAC filter's dynamic metadata, then the ext_authz
 * filter of the provider, enabled only by that metadata. On TCP chains the same pair with the
 * network filters, for gRPC providers only (istiod ignores HTTP providers there).
 */
import type { ResolvedExtAuthz } from '../../model/ext-authz';
import type { ExtAuthzRequestBody } from '../../model/telemetry-providers';
import type { ProtoObject } from '../types';
import { duration } from '../util';

export const EXT_AUTHZ_HTTP_FILTER = 'envoy.filters.http.ext_authz';
export const EXT_AUTHZ_NETWORK_FILTER = 'envoy.filters.network.ext_authz';
export const EXT_AUTHZ_HTTP_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
export const EXT_AUTHZ_NETWORK_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz';
/** The policy name prefix that enables the ext_authz filter (istiod's extAuthzMatchPrefix). */
export const EXT_AUTHZ_MATCH_PREFIX = 'istio-ext-authz';
/** The shadow rules' stat prefix (authzmodel.RBACExtAuthzShadowRulesStatPrefix). */
export const EXT_AUTHZ_SHADOW_STAT_PREFIX = 'istio_ext_authz_';
/** istiod's default ext_authz timeout. */
const DEFAULT_TIMEOUT = { seconds: 600, nanos: 0 };

/** generateFilterMatcher: the RBAC filter's shadow effective policy starts with `istio-ext-authz`. */
function filterEnabledMetadata(rbacFilter: string): ProtoObject {
  return {
    filter: rbacFilter,
    path: [{ key: `${EXT_AUTHZ_SHADOW_STAT_PREFIX}shadow_effective_policy_id` }],
    value: { string_match: { prefix: EXT_AUTHZ_MATCH_PREFIX } },
  };
}

/** generateHeaders: `*x` suffix, `x*` prefix, else exact; case-insensitive. */
function headerList(headers: readonly string[]): ProtoObject | undefined {
  if (headers.length === 0) return undefined;
  return {
    patterns: headers.map((h) =>
      h.startsWith('*') ? { suffix: h.slice(1), ignore_case: true } : h.endsWith('*') ? { prefix: h.slice(0, -1), ignore_case: true } : { exact: h, ignore_case: true },
    ),
  };
}

function requestBody(b: ExtAuthzRequestBody | undefined): ProtoObject | undefined {
  if (!b) return undefined;
  return { max_request_bytes: b.maxRequestBytes, ...(b.allowPartialMessage ? { allow_partial_message: true } : {}), ...(b.packAsBytes ? { pack_as_bytes: true } : {}) };
}

function timeout(t: string | undefined): ProtoObject {
  return t === undefined ? { ...DEFAULT_TIMEOUT } : duration(t);
}

/** The provider's gRPC service (the authority is the cluster name with `|` replaced, as istiod). */
function grpcService(r: ResolvedExtAuthz): ProtoObject {
  return { envoy_grpc: { cluster_name: r.cluster, authority: r.cluster.replace(/\|/g, '_.') }, timeout: timeout(r.provider.timeout) };
}

/** The HTTP ext_authz filter's config (generateHTTPConfig / generateGRPCConfig). */
export function extAuthzHttpConfig(r: ResolvedExtAuthz): ProtoObject {
  const p = r.provider;
  const cfg: ProtoObject = { '@type': EXT_AUTHZ_HTTP_TYPE };
  if (p.statusOnError !== '') cfg['status_on_error'] = { code: Number(p.statusOnError) };
  if (p.failOpen) cfg['failure_mode_allow'] = true;
  cfg['transport_api_version'] = 'V3';
  if (p.kind === 'envoyExtAuthzHttp') {
    const service: ProtoObject = {
      server_uri: { uri: `http://${r.hostname}`, cluster: r.cluster, timeout: timeout(p.timeout) },
      path_prefix: p.pathPrefix,
    };
    const allowed = headerList(p.includeRequestHeadersInCheck);
    const toAdd = Object.keys(p.includeAdditionalHeadersInCheck)
      .sort()
      .map((key) => ({ key, value: p.includeAdditionalHeadersInCheck[key] ?? '' }));
    if (allowed || toAdd.length > 0)
      service['authorization_request'] = { ...(allowed ? { allowed_headers: allowed } : {}), ...(toAdd.length > 0 ? { headers_to_add: toAdd } : {}) };
    if (p.headersToUpstreamOnAllow.length > 0 || p.headersToDownstreamOnDeny.length > 0 || p.headersToDownstreamOnAllow.length > 0) {
      const resp: ProtoObject = {};
      const up = headerList(p.headersToUpstreamOnAllow);
      const deny = headerList(p.headersToDownstreamOnDeny);
      const allow = headerList(p.headersToDownstreamOnAllow);
      if (up) resp['allowed_upstream_headers'] = up;
      if (deny) resp['allowed_client_headers'] = deny;
      if (allow) resp['allowed_client_headers_on_success'] = allow;
      service['authorization_response'] = resp;
    }
    cfg['http_service'] = service;
  } else cfg['grpc_service'] = grpcService(r);
  cfg['filter_enabled_metadata'] = filterEnabledMetadata('envoy.filters.http.rbac');
  const body = requestBody(p.includeRequestBodyInCheck);
  if (body) cfg['with_request_body'] = body;
  if (p.clearRouteCache) cfg['clear_route_cache'] = true;
  return cfg;
}

/** The network ext_authz filter's config, for gRPC providers only. */
export function extAuthzNetworkConfig(r: ResolvedExtAuthz): ProtoObject | undefined {
  if (r.provider.kind !== 'envoyExtAuthzGrpc') return undefined;
  return {
    '@type': EXT_AUTHZ_NETWORK_TYPE,
    stat_prefix: 'tcp.',
    ...(r.provider.failOpen ? { failure_mode_allow: true } : {}),
    grpc_service: grpcService(r),
    transport_api_version: 'V3',
    filter_enabled_metadata: filterEnabledMetadata('envoy.filters.network.rbac'),
  };
}
