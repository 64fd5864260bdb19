/**
 * The HTTP filter chain of an HttpConnectionManager, per kind of listener. Routes carry their
 * fault and CORS settings in `typed_per_filter_config`, which only takes effect when the filter
 * itself is in the chain, so the filters are always present (empty config = no effect), as
 * istiod does. Proxyless gRPC implements fault injection and the router only; any other
 * non-optional filter would make it reject the listener.
 */
import type { ProtoObject } from './types';
import { routerFilter } from './util';

export const FAULT_FILTER_NAME = 'envoy.filters.http.fault';
export const CORS_FILTER_NAME = 'envoy.filters.http.cors';
export const HTTP_FAULT_FILTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
export const CORS_FILTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors';

/** `sidecar`: outbound sidecar listeners; `gateway`: gateway HTTP servers; `grpc`: proxyless api listeners. */
export type HttpFilterKind = 'sidecar' | 'gateway' | 'grpc';

export function faultFilter(): ProtoObject {
  return { name: FAULT_FILTER_NAME, typed_config: { '@type': HTTP_FAULT_FILTER_TYPE } };
}

export function corsFilter(): ProtoObject {
  return { name: CORS_FILTER_NAME, typed_config: { '@type': CORS_FILTER_TYPE } };
}

/** The `http_filters` list for one kind of HCM; the router is always last. */
export function httpFilters(kind: HttpFilterKind): ProtoObject[] {
  if (kind === 'grpc') return [faultFilter(), routerFilter()];
  return [faultFilter(), corsFilter(), routerFilter()];
}
