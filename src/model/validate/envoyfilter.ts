/**
 * EnvoyFilter (networking.istio.io/v1alpha3), after istiod's ValidateEnvoyFilter
 * (pkg/config/validation/envoyfilter) and its CRD's field set, with Istio's messages: the
 * workload selector (or targetRefs, not both), each patch's applyTo, operation and value, the
 * proxy version regex (RE2), and that applyTo, match and value line up. Patch values are checked
 * as Envoy messages where they are applied (an invalid one is withheld and reported there);
 * here they must be objects.
 */
import type { ConfigObject } from '../objects';
import { ENVOY_FILTER_APPLY_TO, ENVOY_FILTER_CONTEXTS, ENVOY_FILTER_OPERATIONS, ROUTE_ACTIONS } from '../objects-envoyfilter';
import { checkPolicyTargets, targetRefSchema } from './authorizationpolicy';
import { Issues, arr, pathIdx, pathKey, rec, str } from './common';
import { re2Error } from './re2';
import { any, arrayOf, checkSchema, closed, i32, mapOf, oneOf, str as strSchema, u32 } from './schema';

const HCM = 'envoy.filters.network.http_connection_manager';

export const envoyFilterSchema = closed({
  workloadSelector: closed({ labels: mapOf(strSchema) }),
  targetRefs: arrayOf(targetRefSchema),
  priority: i32,
  configPatches: arrayOf(
    closed({
      applyTo: oneOf('INVALID', ...ENVOY_FILTER_APPLY_TO),
      match: closed({
        context: oneOf(...ENVOY_FILTER_CONTEXTS),
        proxy: closed({ proxyVersion: strSchema, metadata: mapOf(strSchema) }),
        listener: closed({
          portNumber: u32,
          portName: strSchema,
          name: strSchema,
          listenerFilter: strSchema,
          filterChain: closed({
            name: strSchema,
            sni: strSchema,
            transportProtocol: strSchema,
            applicationProtocols: strSchema,
            destinationPort: u32,
            filter: closed({ name: strSchema, subFilter: closed({ name: strSchema }) }),
          }),
        }),
        routeConfiguration: closed({
          portNumber: u32,
          portName: strSchema,
          gateway: strSchema,
          name: strSchema,
          vhost: closed({ name: strSchema, route: closed({ name: strSchema, action: oneOf(...ROUTE_ACTIONS) }) }),
        }),
        cluster: closed({ portNumber: u32, service: strSchema, subset: strSchema, name: strSchema }),
      }),
      patch: closed({ operation: oneOf('INVALID', ...ENVOY_FILTER_OPERATIONS), value: any, filterClass: oneOf('UNSPECIFIED', 'AUTHN', 'AUTHZ', 'STATS') }),
    }),
  ),
});

const LISTENER_CLASS = new Set(['LISTENER', 'FILTER_CHAIN', 'NETWORK_FILTER', 'HTTP_FILTER']);
const ROUTE_CLASS = new Set(['ROUTE_CONFIGURATION', 'VIRTUAL_HOST', 'HTTP_ROUTE']);
/** Filter names Istio still maps from their deprecated spelling (xds.ReverseDeprecatedFilterNames). */
const DEPRECATED_NAMES: Readonly<Record<string, string>> = {
  'envoy.http_connection_manager': HCM,
  'envoy.tcp_proxy': 'envoy.filters.network.tcp_proxy',
  'envoy.router': 'envoy.filters.http.router',
  'envoy.cors': 'envoy.filters.http.cors',
  'envoy.fault': 'envoy.filters.http.fault',
  'envoy.lua': 'envoy.filters.http.lua',
  'envoy.listener.tls_inspector': 'envoy.filters.listener.tls_inspector',
  'envoy.listener.http_inspector': 'envoy.filters.listener.http_inspector',
  'envoy.listener.original_dst': 'envoy.filters.listener.original_dst',
};

function deprecatedName(issues: Issues, path: string, name: string | undefined): void {
  const now = name ? DEPRECATED_NAMES[name] : undefined;
  if (name && now && now !== name) issues.warn(path, `using deprecated filter name ${JSON.stringify(name)}; use ${JSON.stringify(now)} instead`);
}

export function validateEnvoyFilter(obj: ConfigObject, issues: Issues): void {
  const raw = obj.body['spec'];
  if (raw === undefined || raw === null) return;
  checkSchema(raw, envoyFilterSchema, 'spec', issues);
  const spec = rec(raw);
  if (spec === undefined) return;
  issues.warn(
    'spec',
    'EnvoyFilter exposes internal implementation details that may change at any time. Prefer other APIs if possible, and exercise extreme caution, especially around upgrades.',
  );

  const ws = rec(spec['workloadSelector']);
  if (ws && (arr(spec['targetRefs']) ?? []).length > 0) issues.add('spec', 'only one of targetRefs or workloadSelector can be set');
  if (ws) {
    const labels = rec(ws['labels']) ?? {};
    for (const [k, v] of Object.entries(labels)) {
      const p = pathKey('spec.workloadSelector.labels', k);
      if (k === '') issues.add(p, `empty key is not supported in selector: ${JSON.stringify(`${k}=${String(v)}`)}`);
      if (k.includes('*') || String(v).includes('*')) issues.add(p, `wildcard is not supported in selector: ${JSON.stringify(`${k}=${String(v)}`)}`);
    }
    if (Object.keys(labels).length === 0)
      issues.warn('spec.workloadSelector', 'Envoy filter: workload selector specified without labels, will be applied to all services in namespace');
  }
  if (spec['targetRefs'] !== undefined) checkPolicyTargets(issues, { targetRefs: spec['targetRefs'] });

  (arr(spec['configPatches']) ?? []).forEach((c, i) => {
    const p = pathIdx('spec.configPatches', i);
    if (c === null || c === undefined) {
      issues.add(p, 'Envoy filter: null config patch');
      return;
    }
    const cp = rec(c);
    if (!cp) return;
    const applyTo = str(cp['applyTo']);
    if (!applyTo || applyTo === 'INVALID') {
      issues.add(pathKey(p, 'applyTo'), 'Envoy filter: missing applyTo');
      return;
    }
    const patch = rec(cp['patch']);
    if (!patch) {
      issues.add(pathKey(p, 'patch'), 'Envoy filter: missing patch');
      return;
    }
    const op = str(patch['operation']);
    if (!op || op === 'INVALID') {
      issues.add(pathKey(pathKey(p, 'patch'), 'operation'), 'Envoy filter: missing patch operation');
      return;
    }
    const value = patch['value'];
    if (op !== 'REMOVE' && (value === undefined || value === null)) {
      issues.add(pathKey(pathKey(p, 'patch'), 'value'), 'Envoy filter: missing patch value for non-remove operation');
      return;
    }
    if (value !== undefined && value !== null && rec(value) === undefined)
      issues.add(pathKey(pathKey(p, 'patch'), 'value'), 'Envoy filter: patch value must be an object (an Envoy message in proto JSON)');
    const match = rec(cp['match']);
    const version = str(rec(match?.['proxy'])?.['proxyVersion']);
    if (version) {
      const err = re2Error(version);
      if (err !== undefined) {
        issues.add(pathKey(pathKey(pathKey(p, 'match'), 'proxy'), 'proxyVersion'), `Envoy filter: invalid regex for proxy version, [${err}]`);
        return;
      }
    }
    const objectTypes = ['listener', 'routeConfiguration', 'cluster'].filter((k) => match?.[k] !== undefined);
    if (objectTypes.length > 1) issues.add(pathKey(p, 'match'), `only one of listener, routeConfiguration or cluster may be set (got ${objectTypes.join(', ')})`);
    const mp = pathKey(p, 'match');
    if (LISTENER_CLASS.has(applyTo) && objectTypes.length > 0) {
      const listener = rec(match?.['listener']);
      if (!listener) {
        issues.add(mp, 'Envoy filter: applyTo for listener class objects cannot have non listener match');
        return;
      }
      const filter = rec(rec(listener['filterChain'])?.['filter']);
      if (filter) {
        const fp = `${mp}.listener.filterChain.filter`;
        if (applyTo === 'LISTENER' || applyTo === 'FILTER_CHAIN') issues.warn(fp, `Envoy filter: filter match has no effect when used with ${applyTo}`);
        const name = str(filter['name']);
        const sub = rec(filter['subFilter']);
        if (!name) {
          issues.add(pathKey(fp, 'name'), 'Envoy filter: filter match has no name to match on');
          return;
        }
        if (sub) {
          if (applyTo !== 'HTTP_FILTER') {
            issues.add(pathKey(fp, 'subFilter'), 'Envoy filter: subfilter match can be used with applyTo HTTP_FILTER only');
            return;
          }
          if (name !== HCM && name !== 'envoy.http_connection_manager') {
            issues.add(pathKey(fp, 'name'), `Envoy filter: subfilter match requires filter match with ${HCM}`);
            return;
          }
          if (!str(sub['name'])) {
            issues.add(pathKey(pathKey(fp, 'subFilter'), 'name'), 'Envoy filter: subfilter match has no name to match on');
            return;
          }
        }
        deprecatedName(issues, pathKey(fp, 'name'), name);
        deprecatedName(issues, pathKey(pathKey(fp, 'subFilter'), 'name'), str(sub?.['name']));
      }
    } else if (ROUTE_CLASS.has(applyTo) && objectTypes.length > 0 && match?.['routeConfiguration'] === undefined) {
      issues.add(mp, 'Envoy filter: applyTo for http route class objects cannot have non route configuration match');
    } else if (applyTo === 'CLUSTER' && objectTypes.length > 0 && match?.['cluster'] === undefined) {
      issues.add(mp, 'Envoy filter: applyTo for cluster class objects cannot have non cluster match');
    }
    if (applyTo === 'BOOTSTRAP') issues.warn(pathKey(p, 'applyTo'), 'BOOTSTRAP patches are applied by the proxy agent to its bootstrap, never to xDS: meshd does not apply them');
    if (applyTo === 'EXTENSION_CONFIG' && str(patch?.['operation']) !== 'ADD')
      issues.warn(
        pathKey(pathKey(p, 'patch'), 'operation'),
        `EXTENSION_CONFIG patches are applied with operation ADD only (as istiod): ${str(patch?.['operation']) || 'unset'} is not applied`,
      );
  });
}
