/**
 * EnvoyFilter (networking.istio.io/v1alpha3) as typed records, after istio/api
 * networking/v1alpha3/envoy_filter.proto. Specs reach the model only after validation; patch
 * values stay as the user wrote them (Envoy's proto JSON) until a generator converts them against
 * Envoy's message types.
 */

import type { PolicyTargetReference } from './objects-security';

export const ENVOY_FILTER_APPLY_TO = [
  'LISTENER',
  'FILTER_CHAIN',
  'NETWORK_FILTER',
  'HTTP_FILTER',
  'ROUTE_CONFIGURATION',
  'VIRTUAL_HOST',
  'HTTP_ROUTE',
  'CLUSTER',
  'EXTENSION_CONFIG',
  'BOOTSTRAP',
  'LISTENER_FILTER',
] as const;
export type EnvoyFilterApplyTo = (typeof ENVOY_FILTER_APPLY_TO)[number];

export const ENVOY_FILTER_CONTEXTS = ['ANY', 'SIDECAR_INBOUND', 'SIDECAR_OUTBOUND', 'GATEWAY'] as const;
export type EnvoyFilterContext = (typeof ENVOY_FILTER_CONTEXTS)[number];

export const ENVOY_FILTER_OPERATIONS = ['MERGE', 'ADD', 'REMOVE', 'INSERT_BEFORE', 'INSERT_AFTER', 'INSERT_FIRST', 'REPLACE'] as const;
export type EnvoyFilterOperation = (typeof ENVOY_FILTER_OPERATIONS)[number];

export const ROUTE_ACTIONS = ['ANY', 'ROUTE', 'REDIRECT', 'DIRECT_RESPONSE'] as const;

export interface EnvoyFilterListenerMatch {
  portNumber?: number;
  portName?: string;
  name?: string;
  listenerFilter?: string;
  filterChain?: {
    name?: string;
    sni?: string;
    transportProtocol?: string;
    applicationProtocols?: string;
    destinationPort?: number;
    filter?: { name?: string; subFilter?: { name?: string } };
  };
}

export interface EnvoyFilterRouteMatch {
  portNumber?: number;
  portName?: string;
  gateway?: string;
  name?: string;
  vhost?: { name?: string; route?: { name?: string; action?: (typeof ROUTE_ACTIONS)[number] } };
}

export interface EnvoyFilterClusterMatch {
  portNumber?: number;
  service?: string;
  subset?: string;
  name?: string;
}

export interface EnvoyFilterMatch {
  context?: EnvoyFilterContext;
  proxy?: { proxyVersion?: string; metadata?: Readonly<Record<string, string>> };
  listener?: EnvoyFilterListenerMatch;
  routeConfiguration?: EnvoyFilterRouteMatch;
  cluster?: EnvoyFilterClusterMatch;
}

export type JsonPatchValue = null | boolean | number | string | readonly JsonPatchValue[] | { readonly [k: string]: JsonPatchValue };

export interface EnvoyFilterPatch {
  operation?: EnvoyFilterOperation;
  value?: { readonly [k: string]: JsonPatchValue };
  filterClass?: 'UNSPECIFIED' | 'AUTHN' | 'AUTHZ' | 'STATS';
}

export interface EnvoyConfigObjectPatch {
  applyTo?: EnvoyFilterApplyTo;
  match?: EnvoyFilterMatch;
  patch?: EnvoyFilterPatch;
}

export interface EnvoyFilterSpec {
  workloadSelector?: { labels?: Readonly<Record<string, string>> };
  targetRefs?: readonly PolicyTargetReference[];
  configPatches?: readonly EnvoyConfigObjectPatch[];
  priority?: number;
}
