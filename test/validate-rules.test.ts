import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as protobuf from 'protobufjs';
import { EnvoyProtos, TypeUrl, loadEnvoyRoot } from '../src/xds/protos';
import { ResourceValidator, type RuleViolation } from '../src/xds/validate-rules';

// Synthetic messages for rule kinds Envoy's own protos do not use (exclusive ranges, string
// formats, bytes, map.no_sparse, unique, message.skip, (validate.disabled), ...). They are
// parsed into the same root as Envoy's API, so the validator sees them exactly like Envoy types.
const SYNTHETIC = `
syntax = "proto3";
package meshd.test;

enum Color { COLOR_UNSPECIFIED = 0; RED = 1; BLUE = 2; }

message Numbers {
  optional int32 outside = 1 [(validate.rules).int32 = {lt: 0, gt: 10}];
  optional int64 inside = 2 [(validate.rules).int64 = {gt: -5, lte: 5}];
  optional double ratio = 3 [(validate.rules).double = {in: [0.5, 1.5]}];
  optional fixed32 nope = 4 [(validate.rules).fixed32 = {not_in: [7, 8]}];
  optional uint64 exact = 5 [(validate.rules).uint64.const = 42];
  optional bool yes = 6 [(validate.rules).bool.const = true];
  optional sint32 gap = 7 [(validate.rules).sint32 = {lte: -1, gte: 1}];
  uint32 nonzero = 8 [(validate.rules).uint32 = {gt: 0, ignore_empty: true}];
  Color color = 9 [(validate.rules).enum = {in: [0, 1]}];
  optional Color only_blue = 10 [(validate.rules).enum.const = 2];
  uint32 must_be_positive = 11 [(validate.rules).uint32.gt = 0];
}

message Formats {
  string host = 1 [(validate.rules).string = {hostname: true, ignore_empty: true}];
  string addr = 2 [(validate.rules).string = {address: true, ignore_empty: true}];
  string ip = 3 [(validate.rules).string = {ip: true, ignore_empty: true}];
  string ip4 = 4 [(validate.rules).string = {ipv4: true, ignore_empty: true}];
  string ip6 = 5 [(validate.rules).string = {ipv6: true, ignore_empty: true}];
  string uri = 6 [(validate.rules).string = {uri: true, ignore_empty: true}];
  string affix = 7 [(validate.rules).string = {prefix: "ab", suffix: "yz", contains: "mm", ignore_empty: true}];
  string exact = 8 [(validate.rules).string = {len: 3, max_bytes: 4, ignore_empty: true}];
  string choice = 9 [(validate.rules).string = {not_in: ["bad"]}];
  string hval = 10 [(validate.rules).string = {well_known_regex: HTTP_HEADER_VALUE, ignore_empty: true}];
  string hname = 11 [(validate.rules).string = {well_known_regex: HTTP_HEADER_NAME, ignore_empty: true}];
  string re2 = 12 [(validate.rules).string = {pattern: "(?i)^\\\\Qa.b\\\\E[[:digit:]]+\\\\z", ignore_empty: true}];
  string uncompilable = 13 [(validate.rules).string = {pattern: "(?U)a+"}];
}

message Collections {
  repeated string tags = 1 [(validate.rules).repeated = {max_items: 2, unique: true, items: {string: {min_len: 2}}}];
  map<string, Numbers> by_name = 2 [(validate.rules).map = {max_pairs: 2, no_sparse: true, keys: {string: {pattern: "^[a-z]+$"}}}];
  map<int32, string> by_id = 3 [(validate.rules).map = {min_pairs: 1, keys: {int32: {gt: 0}}, values: {string: {min_len: 1}}}];
  bytes raw = 4 [(validate.rules).bytes = {min_len: 2, max_len: 4, ignore_empty: true}];
  bytes addr = 5 [(validate.rules).bytes = {ipv4: true, ignore_empty: true}];
  repeated Color colors = 6 [(validate.rules).repeated = {ignore_empty: true, min_items: 2, items: {enum: {defined_only: true}}}];
}

message Times {
  google.protobuf.Duration exactly_five = 1 [(validate.rules).duration = {const: {seconds: 5}}];
  google.protobuf.Duration not_between = 2 [(validate.rules).duration = {lt: {seconds: 1}, gt: {seconds: 5}}];
  google.protobuf.Duration listed = 3 [(validate.rules).duration = {in: {seconds: 1} in: {nanos: 500000000}}];
  google.protobuf.Timestamp stamp = 4 [(validate.rules).timestamp.required = true];
  google.protobuf.Any router_only = 5 [(validate.rules).any = {in: ["type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"]}];
  google.protobuf.Any no_router = 6 [(validate.rules).any = {not_in: ["type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"]}];
  google.protobuf.StringValue label = 7 [(validate.rules).string.min_len = 3];
}

message Off {
  option (validate.disabled) = true;
  string must = 1 [(validate.rules).string.min_len = 1];
  Formats nested = 2;
}

message Skips {
  Formats skipped = 1 [(validate.rules).message.skip = true];
  Off off = 2;
}
`;

const root = loadEnvoyRoot();
protobuf.parse(SYNTHETIC, root, { keepCase: true });
root.resolveAll();
const protos = new EnvoyProtos(root);
const validator = new ResourceValidator(protos);

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const T = (name: string): string => `type.googleapis.com/meshd.test.${name}`;
const TLS_INSPECTOR = 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';
const FQDN = 'reviews.default.svc.cluster.local';
// google.protobuf.Value's field names as this root spells them: protobufjs predefines the
// well-known Struct types in camelCase (numberValue), whatever keepCase says.
const VALUE_FIELDS = Object.keys(root.lookupType('google.protobuf.Value').fields);
const NUMBER_VALUE = VALUE_FIELDS.includes('number_value') ? 'number_value' : 'numberValue';
const OTHER_NUMBER_VALUE = NUMBER_VALUE === 'number_value' ? 'numberValue' : 'number_value';

/** Asserts exactly one violation, at `path`, whose message contains `rule`. */
function only(vs: RuleViolation[], path: string, rule: string): void {
  assert.equal(vs.length, 1, `expected one violation, got ${JSON.stringify(vs, null, 2)}`);
  assert.equal(vs[0].path, path, JSON.stringify(vs[0]));
  assert.ok(vs[0].message.includes(rule), `message ${JSON.stringify(vs[0].message)} does not name ${rule}`);
}
/** Asserts the violations are exactly these [path, rule] pairs (in any order). */
function exactly(vs: RuleViolation[], expected: ReadonlyArray<readonly [string, string]>): void {
  const got = vs.map((v) => v.path).sort();
  assert.deepEqual(got, expected.map(([p]) => p).sort(), JSON.stringify(vs, null, 2));
  for (const [path, rule] of expected) {
    const v = vs.find((x) => x.path === path && x.message.includes(rule));
    assert.ok(v, `no violation at ${path} naming ${rule}: ${JSON.stringify(vs, null, 2)}`);
  }
}

function cluster() {
  return {
    name: `outbound|9080||${FQDN}`,
    type: 'EDS',
    eds_cluster_config: { service_name: `outbound|9080||${FQDN}`, eds_config: { ads: {}, resource_api_version: 'V3' } },
    connect_timeout: { seconds: 10 },
    lb_policy: 'LEAST_REQUEST',
    circuit_breakers: { thresholds: [{ max_connections: { value: 4294967295 }, max_retries: { value: 4294967295 } }] },
    outlier_detection: { max_ejection_percent: { value: 100 } },
    common_lb_config: { locality_weighted_lb_config: {} },
    metadata: { filter_metadata: { istio: { fields: { default_original_port: { [NUMBER_VALUE]: 9080 } } } } },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: { max_concurrent_streams: { value: 1073741824 } } },
      },
    },
  };
}

function listener(hcm: Record<string, unknown> = {}) {
  return {
    name: '0.0.0.0_9080',
    address: { socket_address: { address: '0.0.0.0', port_value: 9080 } },
    traffic_direction: 'OUTBOUND',
    listener_filters: [
      {
        name: 'envoy.filters.listener.tls_inspector',
        typed_config: { '@type': TLS_INSPECTOR },
      },
    ],
    filter_chains: [
      {
        filter_chain_match: { destination_port: { value: 9080 } },
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: 'outbound_0.0.0.0_9080',
              rds: { route_config_name: '9080', config_source: { ads: {}, resource_api_version: 'V3' } },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
              use_remote_address: { value: false },
              ...hcm,
            },
          },
        ],
      },
    ],
  };
}

function routeConfig() {
  return {
    name: '9080',
    validate_clusters: { value: false },
    virtual_hosts: [
      {
        name: `${FQDN}:9080`,
        domains: [FQDN, 'reviews', 'reviews:9080'],
        routes: [
          {
            name: 'jason',
            match: { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] },
            route: {
              weighted_clusters: {
                clusters: [
                  { name: `outbound|9080|v2|${FQDN}`, weight: { value: 90 } },
                  { name: `outbound|9080|v3|${FQDN}`, weight: { value: 10 } },
                ],
              },
            },
          },
          {
            name: 'default',
            match: { safe_regex: { regex: '^/api/v[0-9]+/.*' } },
            route: {
              cluster: `outbound|9080||${FQDN}`,
              timeout: { seconds: 0 },
              retry_policy: { retry_on: 'connect-failure,refused-stream,unavailable', num_retries: { value: 2 } },
            },
            request_headers_to_add: [{ header: { key: 'x-mesh', value: 'meshd' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
          },
        ],
      },
    ],
  };
}

function loadAssignment(port: number = 9080) {
  return {
    cluster_name: `outbound|9080||${FQDN}`,
    endpoints: [
      {
        locality: { region: 'us-east1', zone: 'us-east1-b' },
        lb_endpoints: [
          {
            endpoint: { address: { socket_address: { address: '10.0.0.7', port_value: port } } },
            health_status: 'HEALTHY',
            load_balancing_weight: { value: 1 },
          },
        ],
        load_balancing_weight: { value: 1 },
      },
    ],
  };
}

test('valid Cluster, Listener, RouteConfiguration and ClusterLoadAssignment have no violations', () => {
  const cases: Array<[string, object]> = [
    [TypeUrl.Cluster, cluster()],
    [TypeUrl.Listener, listener()],
    [TypeUrl.Route, routeConfig()],
    [TypeUrl.Endpoint, loadAssignment()],
  ];
  for (const [url, resource] of cases) {
    assert.deepEqual(validator.validate(url, resource), [], url);
    assert.ok(protos.encode(url, resource).length > 0);
    // The same resource with one stray key is not clean: the walk really covers it.
    only(validator.validate(url, { ...resource, bogus: 1 }), 'bogus', 'unknown field');
  }
});

test('a resource decoded back from bytes validates clean, and a leading "@type" of its own type is accepted', () => {
  const decoded = protos.decode(TypeUrl.Listener, protos.encode(TypeUrl.Listener, listener()));
  assert.deepEqual(validator.validate(TypeUrl.Listener, { '@type': TypeUrl.Listener, ...decoded }), []);
  only(validator.validate(TypeUrl.Listener, { '@type': TypeUrl.Cluster, ...decoded }), '@type', 'unknown field');
});

test('Cluster with an empty name violates string.min_len at name', () => {
  only(validator.validate(TypeUrl.Cluster, { ...cluster(), name: '' }), 'name', 'string.min_len');
  const { name: _omitted, ...nameless } = cluster();
  only(validator.validate(TypeUrl.Cluster, nameless), 'name', 'string.min_len'); // absent scalar = default ''
});

test('port_value 70000 violates uint32.lte 65535 deep inside a ClusterLoadAssignment', () => {
  only(validator.validate(TypeUrl.Endpoint, loadAssignment(70000)), 'endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value', 'uint32.lte');
  only(validator.validate(TypeUrl.Endpoint, loadAssignment(-1)), 'endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value', 'expected uint32');
});

test('HttpConnectionManager without stat_prefix inside a filter chain Any reports through typed_config', () => {
  const l = listener();
  const hcm = l.filter_chains[0].filters[0].typed_config as Record<string, unknown>;
  delete hcm.stat_prefix;
  only(validator.validate(TypeUrl.Listener, l), 'filter_chains[0].filters[0].typed_config.stat_prefix', 'string.min_len');
});

test('raw {type_url, value} Any payloads are decoded and validated too', () => {
  const l = listener();
  const raw = { type_url: HCM, value: protos.encode(HCM, { stat_prefix: '', rds: { route_config_name: '9080', config_source: { ads: {} } } }) };
  (l.filter_chains[0].filters[0] as Record<string, unknown>).typed_config = raw;
  only(validator.validate(TypeUrl.Listener, l), 'filter_chains[0].filters[0].typed_config.stat_prefix', 'string.min_len');
});

test('a route without match violates message.required; a RouteMatch without path specifier violates the required oneof', () => {
  const rc = routeConfig();
  const route = rc.virtual_hosts[0].routes[1] as Record<string, unknown>;
  delete route.match;
  only(validator.validate(TypeUrl.Route, rc), 'virtual_hosts[0].routes[1].match', 'message.required');

  const rc2 = routeConfig();
  (rc2.virtual_hosts[0].routes[1] as Record<string, unknown>).match = {};
  only(validator.validate(TypeUrl.Route, rc2), 'virtual_hosts[0].routes[1].match.path_specifier', '(validate.required)');
});

test('two members of one oneof are reported even though protobufjs would encode both', () => {
  const rc = routeConfig();
  Object.assign(rc.virtual_hosts[0].routes[0].match, { path: '/exact' });
  only(validator.validate(TypeUrl.Route, rc), 'virtual_hosts[0].routes[0].match.path_specifier', 'at most one of');
});

test('a VirtualHost with empty domains violates repeated.min_items', () => {
  const rc = routeConfig();
  rc.virtual_hosts[0].domains = [];
  only(validator.validate(TypeUrl.Route, rc), 'virtual_hosts[0].domains', 'repeated.min_items');
  const { domains: _omitted, ...noDomains } = routeConfig().virtual_hosts[0];
  only(validator.validate(TypeUrl.Route, { name: 'r', virtual_hosts: [noDomains] }), 'virtual_hosts[0].domains', 'repeated.min_items');
});

test('weighted_clusters with an empty clusters list violates repeated.min_items', () => {
  const rc = routeConfig();
  rc.virtual_hosts[0].routes[0].route.weighted_clusters!.clusters = [];
  only(validator.validate(TypeUrl.Route, rc), 'virtual_hosts[0].routes[0].route.weighted_clusters.clusters', 'repeated.min_items');
});

test('an unknown field "clsuter" in a RouteAction is reported (protobufjs would drop it silently)', () => {
  const rc = routeConfig();
  const action = rc.virtual_hosts[0].routes[1].route as Record<string, unknown>;
  action.clsuter = action.cluster;
  delete action.cluster;
  const vs = validator.validate(TypeUrl.Route, rc);
  exactly(vs, [
    ['virtual_hosts[0].routes[1].route.clsuter', 'unknown field'],
    ['virtual_hosts[0].routes[1].route.cluster_specifier', '(validate.required)'],
  ]);
  assert.match(vs.find((v) => v.path.endsWith('clsuter'))!.message, /envoy\.config\.route\.v3\.RouteAction/);
});

test('an unknown enum name is reported with the enum type; defined_only rejects undefined numbers', () => {
  only(validator.validate(TypeUrl.Cluster, { ...cluster(), type: 'EDSS' }), 'type', 'unknown enum value "EDSS"');
  only(validator.validate(TypeUrl.Cluster, { ...cluster(), lb_policy: 42 }), 'lb_policy', 'enum.defined_only');
  const hc = {
    timeout: { seconds: 1 },
    interval: { seconds: 5 },
    unhealthy_threshold: { value: 2 },
    healthy_threshold: { value: 2 },
    http_health_check: { path: '/healthz', method: 'CONNECT' },
  };
  only(validator.validate(TypeUrl.Cluster, { ...cluster(), health_checks: [hc] }), 'health_checks[0].http_health_check.method', 'enum.not_in');
});

test('an unresolvable @type is a violation at the Any', () => {
  const l = listener();
  l.filter_chains[0].filters[0].typed_config['@type'] = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManagr';
  only(validator.validate(TypeUrl.Listener, l), 'filter_chains[0].filters[0].typed_config', 'unresolvable @type');
  const l2 = listener();
  (l2.listener_filters[0].typed_config as Record<string, unknown>)['@type'] = undefined;
  only(validator.validate(TypeUrl.Listener, l2), 'listener_filters[0].typed_config', 'has no @type');
});

test('a header name with a newline violates well_known_regex HTTP_HEADER_NAME (strict=false)', () => {
  const rc = routeConfig();
  rc.virtual_hosts[0].routes[0].match.headers![0].name = 'end-user\nx-evil';
  only(validator.validate(TypeUrl.Route, rc), 'virtual_hosts[0].routes[0].match.headers[0].name', 'well_known_regex');
  const rc2 = routeConfig();
  rc2.virtual_hosts[0].routes[1].request_headers_to_add![0].header.key = 'x-mesh\r';
  only(validator.validate(TypeUrl.Route, rc2), 'virtual_hosts[0].routes[1].request_headers_to_add[0].header.key', 'HTTP_HEADER_NAME');
});

test('a Struct value key this root does not have is reported, because encode would drop it', () => {
  const c = cluster();
  c.metadata.filter_metadata.istio.fields.default_original_port = { [OTHER_NUMBER_VALUE]: 9080 };
  only(validator.validate(TypeUrl.Cluster, c), `metadata.filter_metadata["istio"].fields["default_original_port"].${OTHER_NUMBER_VALUE}`, 'unknown field');
  const decoded = protos.decode(TypeUrl.Cluster, protos.encode(TypeUrl.Cluster, c));
  assert.deepEqual(decoded.metadata, { filter_metadata: { istio: { fields: { default_original_port: {} } } } });
});

test('wrong JS value kinds are reported at the field', () => {
  const l = listener();
  (l.address.socket_address as Record<string, unknown>).port_value = '9080';
  only(validator.validate(TypeUrl.Listener, l), 'address.socket_address.port_value', 'expected uint32');
  only(validator.validate(TypeUrl.Cluster, { ...cluster(), connect_timeout: '10s' }), 'connect_timeout', 'expected an object (google.protobuf.Duration)');
  only(validator.validate(TypeUrl.Route, { ...routeConfig(), virtual_hosts: { name: 'x' } }), 'virtual_hosts', 'expected an array');
  only(
    validator.validate(TypeUrl.Cluster, { ...cluster(), circuit_breakers: { thresholds: [{ max_connections: 5 }] } }),
    'circuit_breakers.thresholds[0].max_connections',
    'expected an object (google.protobuf.UInt32Value)',
  );
  only(validator.validate(TypeUrl.Cluster, { ...cluster(), respect_dns_ttl: 'true' }), 'respect_dns_ttl', 'expected bool');
});

test('rules on wrapper fields apply to the wrapped value; duration rules on Duration fields', () => {
  only(validator.validate(TypeUrl.Cluster, { ...cluster(), outlier_detection: { max_ejection_percent: { value: 150 } } }), 'outlier_detection.max_ejection_percent', 'uint32.lte');
  only(validator.validate(TypeUrl.Cluster, { ...cluster(), least_request_lb_config: { choice_count: { value: 1 } } }), 'least_request_lb_config.choice_count', 'uint32.gte');
  only(validator.validate(TypeUrl.Cluster, { ...cluster(), connect_timeout: { seconds: 0 } }), 'connect_timeout', 'duration.gt');
  only(validator.validate(TypeUrl.Cluster, { ...cluster(), dns_refresh_rate: { nanos: 1000 } }), 'dns_refresh_rate', 'duration.gt');
  only(validator.validate(TypeUrl.Cluster, { ...cluster(), connect_timeout: { seconds: 1, nanos: -5 } }), 'connect_timeout', 'not a valid duration');
});

test('map keys rules (Metadata.filter_metadata keys min_len 1) and maps of Any', () => {
  only(validator.validate(TypeUrl.Cluster, { ...cluster(), metadata: { filter_metadata: { '': { fields: {} } } } }), 'metadata.filter_metadata[""]', 'map.keys.string.min_len');
  const c = cluster();
  const opts = c.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
  opts.explicit_http_config.http2_protocol_options.max_concurrent_streams.value = 0;
  only(
    validator.validate(TypeUrl.Cluster, c),
    'typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].explicit_http_config.http2_protocol_options.max_concurrent_streams',
    'uint32.gte+lte',
  );
});

test('repeated items rules apply per element (FilterChainMatch.source_ports)', () => {
  const l = listener();
  Object.assign(l.filter_chains[0].filter_chain_match, { source_ports: [80, 0, 70000] });
  exactly(validator.validate(TypeUrl.Listener, l), [
    ['filter_chains[0].filter_chain_match.source_ports[1]', 'repeated.items.uint32.gte+lte'],
    ['filter_chains[0].filter_chain_match.source_ports[2]', 'repeated.items.uint32.gte+lte'],
  ]);
});

test('string.in and string.pattern on real Envoy fields', () => {
  only(
    validator.validate(TypeUrl.Listener, listener({ scheme_header_transformation: { scheme_to_overwrite: 'ftp' } })),
    'filter_chains[0].filters[0].typed_config.scheme_header_transformation.scheme_to_overwrite',
    'string.in',
  );
  const rc = routeConfig();
  const route = rc.virtual_hosts[0].routes[1] as Record<string, unknown>;
  route.match = { path_separated_prefix: '/api/' };
  only(validator.validate(TypeUrl.Route, rc), 'virtual_hosts[0].routes[1].match.path_separated_prefix', 'string.pattern');
  route.match = { path_separated_prefix: '/api' };
  assert.deepEqual(validator.validate(TypeUrl.Route, rc), []);
});

test('numeric rules: exclusive and inclusive ranges, in, not_in, const, ignore_empty, proto3 optional', () => {
  const v = (o: object): RuleViolation[] => validator.validate(T('Numbers'), o);
  assert.deepEqual(v({}), [{ path: 'must_be_positive', message: 'uint32.gt: value must be greater than 0, got 0' }]);
  const base = { must_be_positive: 1 };
  assert.deepEqual(v({ ...base, outside: -1, inside: 5, ratio: 1.5, nope: 6, exact: '42', yes: true, gap: 1, nonzero: 0, color: 'RED', only_blue: 'BLUE' }), []);
  assert.deepEqual(v({ ...base, outside: 11, gap: -1 }), []);
  only(v({ ...base, outside: 0 }), 'outside', 'int32.gt+lt: value must be outside range [0, 10]');
  only(v({ ...base, outside: 10 }), 'outside', 'int32.gt+lt');
  only(v({ ...base, gap: 0 }), 'gap', 'sint32.gte+lte: value must be outside range (-1, 1)');
  only(v({ ...base, inside: -5 }), 'inside', 'int64.gt+lte: value must be inside range (-5, 5]');
  only(v({ ...base, inside: '6' }), 'inside', 'int64.gt+lte');
  only(v({ ...base, ratio: 1 }), 'ratio', 'double.in');
  only(v({ ...base, nope: 8 }), 'nope', 'fixed32.not_in');
  only(v({ ...base, exact: 41 }), 'exact', 'uint64.const');
  only(v({ ...base, exact: '18446744073709551616' }), 'exact', 'expected uint64');
  only(v({ ...base, exact: 2 ** 60 }), 'exact', 'MAX_SAFE_INTEGER');
  assert.deepEqual(v({ ...base, exact: 42n }), []);
  only(v({ ...base, yes: false }), 'yes', 'bool.const');
  only(v({ ...base, color: 'BLUE' }), 'color', 'enum.in');
  only(v({ ...base, only_blue: 'RED' }), 'only_blue', 'enum.const');
  only(v({ ...base, outside: 1.5 }), 'outside', 'expected int32');
});

test('string rules: formats, affixes, lengths, not_in, well-known regexes, RE2 patterns', () => {
  const v = (o: object): RuleViolation[] => validator.validate(T('Formats'), o);
  assert.deepEqual(
    v({
      host: 'reviews.default.svc.cluster.local.',
      addr: '10.0.0.1',
      ip: '::1',
      ip4: '192.168.0.1',
      ip6: 'fe80::1',
      uri: 'https://example.com/a?b=c',
      affix: 'abmmyz',
      exact: 'aé',
      hval: 'text/html; q=1',
      hname: ':authority',
      re2: 'A.B42',
    }),
    [{ path: 'exact', message: 'string.len: value length must be exactly 3 characters, got 2' }],
  );
  only(v({ host: '-bad-.example' }), 'host', 'string.hostname');
  only(v({ host: 'a'.repeat(64) }), 'host', 'string.hostname');
  only(v({ addr: 'not an address' }), 'addr', 'string.address');
  only(v({ ip: '1.2.3' }), 'ip', 'string.ip');
  only(v({ ip4: '::1' }), 'ip4', 'string.ipv4');
  assert.deepEqual(v({ ip4: '::ffff:10.1.2.3' }), []); // Go's To4() accepts v4-mapped
  only(v({ ip6: '10.0.0.1' }), 'ip6', 'string.ipv6');
  only(v({ ip6: '1::2::3' }), 'ip6', 'string.ipv6');
  only(v({ uri: '/relative/path' }), 'uri', 'string.uri');
  only(v({ affix: 'xxmmyz' }), 'affix', 'string.prefix');
  only(v({ affix: 'abmmxx' }), 'affix', 'string.suffix');
  only(v({ affix: 'abxxyz' }), 'affix', 'string.contains');
  only(v({ exact: 'ééé' }), 'exact', 'string.max_bytes');
  only(v({ choice: 'bad' }), 'choice', 'string.not_in');
  only(v({ hval: 'a\u0001b' }), 'hval', 'HTTP_HEADER_VALUE, strict=true');
  only(v({ hname: 'bad header' }), 'hname', 'HTTP_HEADER_NAME, strict=true');
  only(v({ re2: 'a.b' }), 're2', 'string.pattern');
  only(v({ re2: 'axb1' }), 're2', 'string.pattern'); // \Q…\E quotes the dot
  assert.deepEqual(v({ uncompilable: 'zzz' }), []); // (?U) has no JS equivalent: skipped
});

test('repeated and map rules: max_items, unique, items, pairs, no_sparse, keys, values, ignore_empty', () => {
  const v = (o: object): RuleViolation[] => validator.validate(T('Collections'), o);
  only(v({}), 'by_id', 'map.min_pairs');
  const base = { by_id: { 1: 'one' } };
  assert.deepEqual(v({ ...base, tags: ['ab', 'cd'], by_name: { a: { must_be_positive: 1 } }, raw: Buffer.from('abc'), addr: 'CgAAAQ==', colors: [] }), []);
  only(v({ ...base, tags: ['ab', 'cd', 'ef'] }), 'tags', 'repeated.max_items');
  only(v({ ...base, tags: ['ab', 'ab'] }), 'tags[1]', 'repeated.unique');
  only(v({ ...base, tags: ['a'] }), 'tags[0]', 'repeated.items.string.min_len');
  only(v({ ...base, tags: ['ab', null] }), 'tags[1]', 'must not be null');
  only(v({ ...base, by_name: { a: {}, b: { must_be_positive: 1 } } }), 'by_name["a"].must_be_positive', 'uint32.gt');
  only(v({ ...base, by_name: { a: null } }), 'by_name["a"]', 'map.no_sparse');
  only(v({ ...base, by_name: { A: { must_be_positive: 1 } } }), 'by_name["A"]', 'map.keys.string.pattern');
  only(v({ ...base, by_name: { a: { must_be_positive: 1 }, b: { must_be_positive: 1 }, c: { must_be_positive: 1 } } }), 'by_name', 'map.max_pairs');
  only(v({ by_id: { 0: 'zero' } }), 'by_id["0"]', 'map.keys.int32.gt');
  only(v({ by_id: { x: 'x' } }), 'by_id["x"]', 'not a valid int32');
  only(v({ by_id: { 1: '' } }), 'by_id["1"]', 'map.values.string.min_len');
  only(v({ ...base, raw: new Uint8Array(5) }), 'raw', 'bytes.max_len');
  only(v({ ...base, raw: 'QQ==' }), 'raw', 'bytes.min_len');
  only(v({ ...base, raw: 'not base64!' }), 'raw', 'expected bytes');
  only(v({ ...base, addr: new Uint8Array(16) }), 'addr', 'bytes.ipv4');
  only(v({ ...base, colors: ['RED'] }), 'colors', 'repeated.min_items');
  only(v({ ...base, colors: ['RED', 7] }), 'colors[1]', 'repeated.items.enum.defined_only');
});

test('duration, timestamp, any and wrapper rules', () => {
  const v = (o: object): RuleViolation[] => validator.validate(T('Times'), o);
  only(v({}), 'stamp', 'timestamp.required');
  const base = { stamp: { seconds: 1700000000 } };
  assert.deepEqual(
    v({
      ...base,
      exactly_five: { seconds: 5 },
      not_between: { nanos: 1 },
      listed: { nanos: 500000000 },
      router_only: { '@type': ROUTER },
      no_router: { '@type': TLS_INSPECTOR },
      label: { value: 'abc' },
    }),
    [],
  );
  assert.deepEqual(v({ ...base, not_between: { seconds: 6 } }), []);
  only(v({ ...base, exactly_five: { seconds: 5, nanos: 1 } }), 'exactly_five', 'duration.const');
  only(v({ ...base, not_between: { seconds: 3 } }), 'not_between', 'duration.gt+lt: value must be outside range [1s, 5s]');
  only(v({ ...base, listed: { seconds: 2 } }), 'listed', 'duration.in');
  only(v({ ...base, listed: { seconds: 'one' } }), 'listed.seconds', 'expected int64'); // no second report from duration.in
  only(v({ ...base, router_only: { '@type': TLS_INSPECTOR } }), 'router_only', 'any.in');
  only(v({ ...base, no_router: { '@type': ROUTER } }), 'no_router', 'any.not_in');
  only(v({ ...base, label: { value: 'ab' } }), 'label', 'string.min_len');
  only(v({ ...base, label: {} }), 'label', 'string.min_len'); // unset wrapper value = default ''
  only(v({ ...base, label: { value: 'abc', valeu: 1 } }), 'label.valeu', 'unknown field');
  only(v({ stamp: { seconds: 1, nanos: -1 } }), 'stamp', 'timestamp: value is not a valid timestamp');
});

test('message.skip and (validate.disabled) switch rules off below them, but not the structural checks', () => {
  const v = (o: object): RuleViolation[] => validator.validate(T('Skips'), o);
  assert.deepEqual(v({ skipped: { host: '-bad-' }, off: { must: '', nested: { ip: 'nope' } } }), []);
  only(v({ skipped: { hots: 'x' } }), 'skipped.hots', 'unknown field');
  only(v({ off: { nested: { ip: 42 } } }), 'off.nested.ip', 'expected string');
  // The same Formats message outside a skipped field is checked.
  only(validator.validate(T('Formats'), { host: '-bad-' }), 'host', 'string.hostname');
});

test('rules given only as flattened options (a JSON-loaded root) are honoured', () => {
  const jsonRoot = protobuf.Root.fromJSON({
    nested: {
      flat: {
        nested: {
          Msg: {
            fields: {
              name: { type: 'string', id: 1, options: { '(validate.rules).string.min_len': 2 } },
              items: { rule: 'repeated', type: 'uint32', id: 2, options: { '(validate.rules).repeated.items.uint32.lte': 3 } },
            },
          },
        },
      },
    },
  });
  const flat = new ResourceValidator({ root: jsonRoot });
  only(flat.validate('type.googleapis.com/flat.Msg', { name: 'ok', items: [1, 4] }), 'items[1]', 'repeated.items.uint32.lte');
  only(flat.validate('type.googleapis.com/flat.Msg', { name: 'x' }), 'name', 'string.min_len');
  only(flat.validate('type.googleapis.com/flat.Nope', {}), '', 'unknown message type');
});

test('compiled rule sets are per instance and repeated validation is stable', () => {
  const other = new ResourceValidator(protos);
  const bad = { ...cluster(), name: '' };
  const first = validator.validate(TypeUrl.Cluster, bad);
  assert.deepEqual(other.validate(TypeUrl.Cluster, bad), first);
  assert.deepEqual(validator.validate(TypeUrl.Cluster, bad), first);
  assert.equal(first.length, 1);
});
