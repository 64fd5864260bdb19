/**
 * Security for a sidecar's virtualInbound: each workload port's chains by its PeerAuthentication
 * mode, with the workload's AuthorizationPolicies as RBAC filters in front of the HTTP router
 * (HTTP ports) or the tcp_proxy (other ports), and on HTTP ports its RequestAuthentications as
 * the jwt_authn filter before RBAC.
 */
import { proxyLabels } from '../../model/proxy';
import type { InboundPort } from '../inbound';
import type { GenerateContext, ProtoObject } from '../types';
import { customHttpFilterCount, rbacHttpFilters, rbacNetworkFilters, workloadPolicies } from './authz';
import { type InboundKind, inboundChains } from './inbound-tls';
import { jwtAuthnFilter } from './jwt';
import { mtlsForPort, workloadMtls } from './peer-authn';

/**
 * The filter chains of one inbound port. `app` holds the port's terminal filters: an
 * HttpConnectionManager (RBAC goes first in its http_filters) for HTTP chains, a tcp_proxy for TCP
 * chains; a sniffed port has both.
 */
export function securedInboundChains(ctx: GenerateContext, port: InboundPort, kind: InboundKind, app: { http?: ProtoObject; tcp?: ProtoObject }): ProtoObject[] {
  const labels = proxyLabels(ctx.proxy, ctx.snap);
  const ns = ctx.proxy.namespace;
  const mode = mtlsForPort(workloadMtls(ctx.snap, ns, labels), port.targetPort);
  const policies = workloadPolicies(ctx.snap, ns, labels);
  const filters: { http?: ProtoObject[]; tcp?: ProtoObject[] } = {};
  if (app.http) {
    const tc = app.http.typed_config as ProtoObject;
    const rest = (tc.http_filters as ProtoObject[] | undefined) ?? [];
    const rbac = rbacHttpFilters(policies);
    // istiod's order: the CUSTOM authorization filter, then authentication (JWT), then RBAC.
    const custom = customHttpFilterCount(policies);
    const jwt = jwtAuthnFilter(ctx.snap, ns, labels, false);
    const pre = [...rbac.slice(0, custom), ...(jwt ? [jwt] : []), ...rbac.slice(custom)];
    filters.http = [{ ...app.http, typed_config: { ...tc, http_filters: [...pre, ...rest] } }];
  }
  if (app.tcp) filters.tcp = [...rbacNetworkFilters(policies), app.tcp];
  return inboundChains(port.targetPort, mode, kind, filters);
}
