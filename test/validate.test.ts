import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateObject } from '../src/model/validate';
import { parseDocuments } from '../src/sources/parse';
import type { ConfigObject, Kind } from '../src/model/objects';

type J = Record<string, unknown>;
interface Meta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
}

function object(kind: Kind, apiVersion: string, body: J, meta: Meta = {}): ConfigObject {
  const metadata = {
    name: meta.name ?? 'reviews',
    namespace: meta.namespace ?? 'default',
    labels: meta.labels ?? {},
    annotations: {},
  };
  return { kind, apiVersion, metadata, body: { apiVersion, kind, metadata, ...body }, origin: { source: 'test' } };
}

// ---- builders: each invalid case is one change to a valid base ----

const dest = (extra: J = {}, destination: J = { host: 'reviews', subset: 'v1' }): J => ({ destination, ...extra });
const vs = (spec: J, meta: Meta = {}): ConfigObject => object('VirtualService', 'networking.istio.io/v1', { spec }, meta);
const vsRoute = (http0: J, top: J = {}): ConfigObject => vs({ hosts: ['reviews'], http: [http0], ...top });
const vsMatch = (match: J): ConfigObject => vsRoute({ match: [match], route: [dest()] });
const vsDest = (destination: J, extra: J = {}): ConfigObject => vsRoute({ route: [dest(extra, destination)] });
const dr = (spec: J): ConfigObject => object('DestinationRule', 'networking.istio.io/v1', { spec });
const drBase = (extra: J): ConfigObject => dr({ host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }], ...extra });
const drPolicy = (trafficPolicy: J): ConfigObject => drBase({ trafficPolicy });
const svc = (spec: J, meta: Meta = {}): ConfigObject => object('Service', 'v1', { spec }, meta);
const svcPorts = (ports: J[], extra: J = {}): ConfigObject => svc({ ports, selector: { app: 'reviews' }, ...extra });
const SLICE_LABELS = { 'kubernetes.io/service-name': 'reviews' };
const slice = (extra: J, labels: Record<string, string> = SLICE_LABELS): ConfigObject =>
  object(
    'EndpointSlice',
    'discovery.k8s.io/v1',
    {
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.0.12'], conditions: { ready: true } }],
      ports: [{ name: 'http', port: 9080, protocol: 'TCP' }],
      ...extra,
    },
    { name: 'reviews-abc12', labels },
  );
const pod = (extra: J, meta: Meta = {}): ConfigObject =>
  object(
    'Pod',
    'v1',
    { spec: { serviceAccountName: 'bookinfo-reviews', containers: [{ name: 'reviews', ports: [{ containerPort: 9080 }] }] }, status: { podIP: '10.244.0.12' }, ...extra },
    { name: 'reviews-v1', ...meta },
  );
const endpoints = (subsets: J[]): ConfigObject => object('Endpoints', 'v1', { subsets });

interface Case {
  name: string;
  obj: ConfigObject;
  path: string;
  message: string;
}

const INVALID: Case[] = [
  // ---- Service ----
  { name: 'service without ports', obj: svcPorts([]), path: 'spec.ports', message: 'at least one port is required' },
  { name: 'service port 0', obj: svcPorts([{ port: 0 }]), path: 'spec.ports[0].port', message: 'between 1 and 65535' },
  { name: 'service port 70000', obj: svcPorts([{ port: 70000 }]), path: 'spec.ports[0].port', message: 'between 1 and 65535' },
  { name: 'service port as a string', obj: svcPorts([{ port: '9080' }]), path: 'spec.ports[0].port', message: 'must be an integer' },
  { name: 'service port missing', obj: svcPorts([{ name: 'http' }]), path: 'spec.ports[0].port', message: 'port is required' },
  { name: 'targetPort 0', obj: svcPorts([{ port: 80, targetPort: 0 }]), path: 'spec.ports[0].targetPort', message: 'between 1 and 65535' },
  { name: 'targetPort name with upper case', obj: svcPorts([{ port: 80, targetPort: 'Http' }]), path: 'spec.ports[0].targetPort', message: 'lower-case' },
  { name: 'targetPort name too long', obj: svcPorts([{ port: 80, targetPort: 'a-very-long-port-name' }]), path: 'spec.ports[0].targetPort', message: '1 to 15 characters' },
  { name: 'targetPort name of digits only', obj: svcPorts([{ port: 80, targetPort: '8080' }]), path: 'spec.ports[0].targetPort', message: 'at least one letter' },
  { name: 'two unnamed ports', obj: svcPorts([{ port: 80 }, { port: 81 }]), path: 'spec.ports[1].name', message: 'required when a Service has more than one port' },
  {
    name: 'duplicate port names',
    obj: svcPorts([
      { name: 'http', port: 80 },
      { name: 'http', port: 81 },
    ]),
    path: 'spec.ports[1].name',
    message: 'duplicate port name',
  },
  { name: 'port name not a DNS label', obj: svcPorts([{ name: 'HTTP_1', port: 80 }]), path: 'spec.ports[0].name', message: 'not a valid DNS label' },
  { name: 'protocol HTTP', obj: svcPorts([{ port: 80, protocol: 'HTTP' }]), path: 'spec.ports[0].protocol', message: 'must be one of TCP, UDP, SCTP' },
  {
    name: 'duplicate port and protocol',
    obj: svcPorts([
      { name: 'a', port: 80 },
      { name: 'b', port: 80 },
    ]),
    path: 'spec.ports[1]',
    message: 'duplicate port 80/TCP',
  },
  { name: 'ExternalName without externalName', obj: svc({ type: 'ExternalName' }), path: 'spec.externalName', message: 'required' },
  { name: 'unknown service type', obj: svcPorts([{ port: 80 }], { type: 'Internal' }), path: 'spec.type', message: 'must be one of' },
  { name: 'clusterIP not an IP', obj: svcPorts([{ port: 80 }], { clusterIP: '10.96.0.300' }), path: 'spec.clusterIP', message: 'not a valid IP' },
  { name: 'service name with upper case', obj: svc({ ports: [{ port: 80 }] }, { name: 'Reviews' }), path: 'metadata.name', message: 'DNS-1035' },
  { name: 'service name starting with a digit', obj: svc({ ports: [{ port: 80 }] }, { name: '1reviews' }), path: 'metadata.name', message: 'DNS-1035' },
  { name: 'invalid namespace name', obj: svc({ ports: [{ port: 80 }] }, { namespace: 'Book_Info' }), path: 'metadata.namespace', message: 'DNS label' },
  { name: 'invalid label key', obj: svc({ ports: [{ port: 80 }] }, { labels: { '-app': 'x' } }), path: 'metadata.labels.-app', message: 'invalid key' },
  { name: 'invalid label value', obj: svc({ ports: [{ port: 80 }] }, { labels: { app: 'x y' } }), path: 'metadata.labels.app', message: 'invalid label value' },
  // ---- EndpointSlice ----
  { name: 'slice without the service-name label', obj: slice({}, {}), path: 'metadata.labels["kubernetes.io/service-name"]', message: 'required' },
  { name: 'slice without addressType', obj: slice({ addressType: undefined }), path: 'addressType', message: 'addressType is required' },
  { name: 'slice with addressType IP', obj: slice({ addressType: 'IP' }), path: 'addressType', message: 'must be one of IPv4, IPv6, FQDN' },
  { name: 'endpoint without addresses', obj: slice({ endpoints: [{ addresses: [] }] }), path: 'endpoints[0].addresses', message: 'at least one address' },
  { name: 'endpoint addresses missing', obj: slice({ endpoints: [{ conditions: { ready: true } }] }), path: 'endpoints[0].addresses', message: 'at least one address' },
  { name: 'IPv4 slice with a bad IPv4 address', obj: slice({ endpoints: [{ addresses: ['10.244.0.256'] }] }), path: 'endpoints[0].addresses[0]', message: 'not a valid IPv4' },
  { name: 'IPv4 slice with an IPv6 address', obj: slice({ endpoints: [{ addresses: ['fd00::1'] }] }), path: 'endpoints[0].addresses[0]', message: 'not a valid IPv4' },
  {
    name: 'IPv6 slice with an IPv4 address',
    obj: slice({ addressType: 'IPv6', endpoints: [{ addresses: ['10.0.0.1'] }] }),
    path: 'endpoints[0].addresses[0]',
    message: 'not a valid IPv6',
  },
  { name: 'slice port 0', obj: slice({ ports: [{ name: 'http', port: 0 }] }), path: 'ports[0].port', message: 'between 1 and 65535' },
  { name: 'slice port 65536', obj: slice({ ports: [{ name: 'http', port: 65536 }] }), path: 'ports[0].port', message: 'between 1 and 65535' },
  {
    name: 'endpoint condition not a boolean',
    obj: slice({ endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: 'yes' } }] }),
    path: 'endpoints[0].conditions.ready',
    message: 'true or false',
  },
  {
    name: 'duplicate slice port names',
    obj: slice({
      ports: [
        { name: 'http', port: 1 },
        { name: 'http', port: 2 },
      ],
    }),
    path: 'ports[1].name',
    message: 'duplicate port name',
  },
  // ---- Endpoints, Pod, Namespace ----
  {
    name: 'endpoints address not an IP',
    obj: endpoints([{ addresses: [{ ip: 'reviews' }], ports: [{ port: 9080 }] }]),
    path: 'subsets[0].addresses[0].ip',
    message: 'not a valid IP',
  },
  {
    name: 'endpoints with two unnamed ports',
    obj: endpoints([{ addresses: [{ ip: '10.0.0.1' }], ports: [{ port: 1 }, { port: 2 }] }]),
    path: 'subsets[0].ports[0].name',
    message: 'more than one port',
  },
  { name: 'pod IP not an IP', obj: pod({ status: { podIP: '10.244.0' } }), path: 'status.podIP', message: 'not a valid IP' },
  { name: 'pod IPs entry not an IP', obj: pod({ status: { podIP: '10.0.0.1', podIPs: [{ ip: 'x' }] } }), path: 'status.podIPs[0].ip', message: 'not a valid IP' },
  {
    name: 'container port 0',
    obj: pod({ spec: { containers: [{ name: 'c', ports: [{ containerPort: 0 }] }] } }),
    path: 'spec.containers[0].ports[0].containerPort',
    message: 'between 1 and 65535',
  },
  { name: 'pod name with underscore', obj: pod({}, { name: 'reviews_v1' }), path: 'metadata.name', message: 'DNS subdomain' },
  { name: 'namespace name with upper case', obj: object('Namespace', 'v1', {}, { name: 'Bookinfo', namespace: '' }), path: 'metadata.name', message: 'DNS label' },
  // ---- VirtualService: hosts, gateways, exportTo, shape ----
  { name: 'VirtualService without spec', obj: object('VirtualService', 'networking.istio.io/v1', {}), path: 'spec', message: 'spec is required' },
  {
    name: 'delegate (no hosts) bound to a gateway',
    obj: vs({ gateways: ['istio-system/ingress'], http: [{ route: [dest()] }] }),
    path: 'spec.gateways',
    message: 'delegate virtual service must have no gateways',
  },
  {
    name: 'delegate (empty hosts) with a tcp route',
    obj: vs({ hosts: [], tcp: [{ route: [dest()] }] }),
    path: 'spec.tcp',
    message: 'delegate virtual service must have no tcp route',
  },
  { name: 'hosts not a list', obj: vs({ hosts: 'reviews', http: [{ route: [dest()] }] }), path: 'spec.hosts', message: 'must be a list' },
  { name: 'invalid host', obj: vsRoute({ route: [dest()] }, { hosts: ['reviews_v1'] }), path: 'spec.hosts[0]', message: 'invalid' },
  { name: 'host with numeric top-level domain', obj: vsRoute({ route: [dest()] }, { hosts: ['reviews.123'] }), path: 'spec.hosts[0]', message: 'all-numeric' },
  { name: 'wildcard host * bound to the mesh', obj: vsRoute({ route: [dest()] }, { hosts: ['*'] }), path: 'spec.hosts[0]', message: 'wildcard host * is not allowed' },
  {
    name: 'wildcard host * with gateways including mesh',
    obj: vsRoute({ route: [dest()] }, { hosts: ['*'], gateways: ['mesh', 'istio-system/ingress'] }),
    path: 'spec.hosts[0]',
    message: 'wildcard host * is not allowed',
  },
  { name: 'wildcard not in the first label', obj: vsRoute({ route: [dest()] }, { hosts: ['foo.*.com'] }), path: 'spec.hosts[0]', message: 'invalid' },
  { name: 'duplicate hosts', obj: vsRoute({ route: [dest()] }, { hosts: ['reviews', 'reviews'] }), path: 'spec.hosts[1]', message: 'duplicate hosts' },
  { name: 'overlapping wildcard hosts', obj: vsRoute({ route: [dest()] }, { hosts: ['*.example.com', 'a.example.com'] }), path: 'spec.hosts[1]', message: 'duplicate hosts' },
  { name: 'no http, tcp or tls', obj: vs({ hosts: ['reviews'] }), path: 'spec', message: 'http, tcp or tls must be provided' },
  {
    name: 'invalid gateway name',
    obj: vsRoute({ route: [dest()] }, { gateways: ['istio-system/Ingress_GW'] }),
    path: 'spec.gateways[0]',
    message: 'invalid value for gateway name',
  },
  { name: 'gateway with empty namespace', obj: vsRoute({ route: [dest()] }, { gateways: ['/ingress'] }), path: 'spec.gateways[0]', message: 'cannot be empty' },
  { name: 'exportTo ~', obj: vsRoute({ route: [dest()] }, { exportTo: ['~'] }), path: 'spec.exportTo[0]', message: 'not allowed' },
  { name: 'exportTo * with others', obj: vsRoute({ route: [dest()] }, { exportTo: ['*', 'shop'] }), path: 'spec.exportTo', message: 'both public (*) and non-public' },
  { name: 'exportTo duplicates via .', obj: vsRoute({ route: [dest()] }, { exportTo: ['default', '.'] }), path: 'spec.exportTo[1]', message: 'duplicate entry' },
  { name: 'unknown field in an HTTP route', obj: vsRoute({ rout: [dest()], route: [dest()] }), path: 'spec.http[0].rout', message: 'unknown field "rout" (did you mean "route"?)' },
  { name: 'unknown field at spec level', obj: vsRoute({ route: [dest()] }, { host: 'reviews' }), path: 'spec.host', message: 'unknown field' },
  { name: 'unknown field in a destination', obj: vsDest({ host: 'reviews', name: 'v1' }), path: 'spec.http[0].route[0].destination.name', message: 'unknown field' },
  { name: 'unknown field in a match', obj: vsMatch({ url: { prefix: '/' } }), path: 'spec.http[0].match[0].url', message: 'unknown field' },
  { name: 'null HTTP route', obj: vs({ hosts: ['reviews'], http: [null] }), path: 'spec.http[0]', message: 'must not be null' },
  // ---- HTTP routes and destinations ----
  { name: 'HTTP route without route', obj: vsRoute({ timeout: '1s' }), path: 'spec.http[0].route', message: 'at least one route destination is required' },
  { name: 'HTTP route with empty route', obj: vsRoute({ route: [] }), path: 'spec.http[0].route', message: 'at least one route destination is required' },
  { name: 'route without destination', obj: vsRoute({ route: [{ weight: 100 }] }), path: 'spec.http[0].route[0].destination', message: 'destination is required' },
  { name: 'destination without host', obj: vsDest({ subset: 'v1' }), path: 'spec.http[0].route[0].destination.host', message: 'host is required' },
  { name: 'destination host *', obj: vsDest({ host: '*' }), path: 'spec.http[0].route[0].destination.host', message: 'invalid destination host' },
  { name: 'destination host not a DNS name', obj: vsDest({ host: 'reviews..default' }), path: 'spec.http[0].route[0].destination.host', message: 'invalid' },
  { name: 'destination subset not a DNS label', obj: vsDest({ host: 'reviews', subset: 'v1_beta' }), path: 'spec.http[0].route[0].destination.subset', message: 'subset name' },
  {
    name: 'destination port 0',
    obj: vsDest({ host: 'reviews', port: { number: 0 } }),
    path: 'spec.http[0].route[0].destination.port.number',
    message: 'port number 0 must be in the range 1..65535',
  },
  { name: 'destination port 70000', obj: vsDest({ host: 'reviews', port: { number: 70000 } }), path: 'spec.http[0].route[0].destination.port.number', message: 'range 1..65535' },
  { name: 'negative weight', obj: vsRoute({ route: [dest({ weight: -1 }), dest({ weight: 101 })] }), path: 'spec.http[0].route[0].weight', message: 'must not be negative' },
  { name: 'fractional weight', obj: vsRoute({ route: [dest({ weight: 1.5 })] }), path: 'spec.http[0].route[0].weight', message: 'must be an integer' },
  { name: 'weight as a string', obj: vsRoute({ route: [dest({ weight: '50' })] }), path: 'spec.http[0].route[0].weight', message: 'must be an integer' },
  {
    name: 'several destinations with zero total weight',
    obj: vsRoute({ route: [dest(), dest({}, { host: 'reviews', subset: 'v2' })] }),
    path: 'spec.http[0].route',
    message: 'total destination weight is 0',
  },
  { name: 'timeout without unit', obj: vsRoute({ route: [dest()], timeout: '10' }), path: 'spec.http[0].timeout', message: 'invalid duration' },
  { name: 'timeout below 1ms', obj: vsRoute({ route: [dest()], timeout: '500us' }), path: 'spec.http[0].timeout', message: 'at least 1ms' },
  { name: 'timeout finer than ms', obj: vsRoute({ route: [dest()], timeout: '1.0005s' }), path: 'spec.http[0].timeout', message: 'only ms precision' },
  { name: 'timeout negative', obj: vsRoute({ route: [dest()], timeout: '-1s' }), path: 'spec.http[0].timeout', message: 'at least 1ms' },
  { name: 'route and redirect together', obj: vsRoute({ route: [dest()], redirect: { uri: '/x' } }), path: 'spec.http[0]', message: 'cannot contain both route and redirect' },
  { name: 'empty redirect', obj: vsRoute({ redirect: {} }), path: 'spec.http[0].redirect', message: 'redirect must specify' },
  { name: 'redirect code 200', obj: vsRoute({ redirect: { uri: '/x', redirectCode: 200 } }), path: 'spec.http[0].redirect.redirectCode', message: 'must be 3xx' },
  { name: 'directResponse status 700', obj: vsRoute({ directResponse: { status: 700 } }), path: 'spec.http[0].directResponse.status', message: 'not in range 200-599' },
  {
    name: 'route with delegate',
    obj: vsRoute({ delegate: { name: 'r', namespace: 'n' }, route: [dest()] }, { gateways: ['istio-system/ingress'] }),
    path: 'spec.http[0].route',
    message: 'must not specify route',
  },
  {
    name: 'mirror and mirrors together',
    obj: vsRoute({ route: [dest()], mirror: { host: 'reviews' }, mirrors: [{ destination: { host: 'ratings' } }] }),
    path: 'spec.http[0]',
    message: 'both mirror and mirrors',
  },
  {
    name: 'mirrorPercentage over 100',
    obj: vsRoute({ route: [dest()], mirror: { host: 'ratings' }, mirrorPercentage: { value: 101 } }),
    path: 'spec.http[0].mirrorPercentage.value',
    message: 'percentage 101',
  },
  { name: 'negative retry attempts', obj: vsRoute({ route: [dest()], retries: { attempts: -1 } }), path: 'spec.http[0].retries.attempts', message: 'cannot be negative' },
  {
    name: 'unknown retryOn policy',
    obj: vsRoute({ route: [dest()], retries: { attempts: 3, retryOn: '5xx,bogus' } }),
    path: 'spec.http[0].retries.retryOn',
    message: '"bogus" is not a valid retryOn policy',
  },
  {
    name: 'perTryTimeout without unit',
    obj: vsRoute({ route: [dest()], retries: { attempts: 3, perTryTimeout: '2' } }),
    path: 'spec.http[0].retries.perTryTimeout',
    message: 'invalid duration',
  },
  { name: 'empty fault', obj: vsRoute({ route: [dest()], fault: {} }), path: 'spec.http[0].fault', message: 'abort and/or a delay' },
  {
    name: 'fault abort status 100',
    obj: vsRoute({ route: [dest()], fault: { abort: { httpStatus: 100 } } }),
    path: 'spec.http[0].fault.abort.httpStatus',
    message: 'not in range 200-599',
  },
  {
    name: 'fault delay percentage 150',
    obj: vsRoute({ route: [dest()], fault: { delay: { fixedDelay: '1s', percentage: { value: 150 } } } }),
    path: 'spec.http[0].fault.delay.percentage.value',
    message: 'percentage 150',
  },
  {
    name: 'CORS method FETCH',
    obj: vsRoute({ route: [dest()], corsPolicy: { allowMethods: ['GET', 'FETCH'] } }),
    path: 'spec.http[0].corsPolicy.allowMethods[1]',
    message: 'not a supported HTTP method',
  },
  { name: 'CORS maxAge in ms', obj: vsRoute({ route: [dest()], corsPolicy: { maxAge: '1500ms' } }), path: 'spec.http[0].corsPolicy.maxAge', message: 'whole number of 1s' },
  { name: 'empty rewrite', obj: vsRoute({ route: [dest()], rewrite: {} }), path: 'spec.http[0].rewrite', message: 'rewrite must specify' },
  {
    name: 'set a pseudo-header',
    obj: vsRoute({ route: [dest()], headers: { request: { set: { ':path': '/' } } } }),
    path: 'spec.http[0].headers.request.set[":path"]',
    message: 'cannot have ":" prefix',
  },
  {
    name: 'remove the Host header',
    obj: vsRoute({ route: [dest()], headers: { response: { remove: ['host'] } } }),
    path: 'spec.http[0].headers.response.remove[0]',
    message: 'cannot set Host header',
  },
  {
    name: 'header value with a lone %',
    obj: vsRoute({ route: [dest({ headers: { request: { add: { 'x-share': '100%' } } } })] }),
    path: 'spec.http[0].route[0].headers.request.add.x-share',
    message: '%VARIABLE%',
  },
  {
    name: 'authority rewritten twice',
    obj: vsRoute({ route: [dest()], rewrite: { authority: 'a' }, headers: { request: { set: { host: 'b' } } } }),
    path: 'spec.http[0]',
    message: 'authority header cannot be set multiple times',
  },
  // ---- HTTP matches ----
  { name: 'uri with exact and prefix', obj: vsMatch({ uri: { exact: '/a', prefix: '/b' } }), path: 'spec.http[0].match[0].uri', message: 'set only one of exact, prefix or regex' },
  { name: 'regex with lookahead', obj: vsMatch({ uri: { regex: '/api(?=/v1)' } }), path: 'spec.http[0].match[0].uri.regex', message: 'invalid or unsupported Perl syntax' },
  { name: 'regex with lookbehind', obj: vsMatch({ uri: { regex: '(?<!admin)/panel' } }), path: 'spec.http[0].match[0].uri.regex', message: 'invalid or unsupported Perl syntax' },
  {
    name: 'regex with a backreference',
    obj: vsMatch({ headers: { 'x-id': { regex: '(a+)-\\1' } } }),
    path: 'spec.http[0].match[0].headers.x-id.regex',
    message: 'invalid escape sequence',
  },
  { name: 'regex that does not compile', obj: vsMatch({ uri: { regex: '/api/(v1' } }), path: 'spec.http[0].match[0].uri.regex', message: 'missing closing )' },
  { name: 'empty regex', obj: vsMatch({ queryParams: { q: { regex: '' } } }), path: 'spec.http[0].match[0].queryParams.q.regex', message: 'should not be empty' },
  { name: 'regex over 1024 characters', obj: vsMatch({ authority: { regex: 'a'.repeat(1025) } }), path: 'spec.http[0].match[0].authority.regex', message: 'too large' },
  { name: 'empty method prefix', obj: vsMatch({ method: { prefix: '' } }), path: 'spec.http[0].match[0].method.prefix', message: 'should not be empty' },
  {
    name: 'header name with a space',
    obj: vsMatch({ headers: { 'end user': { exact: 'jason' } } }),
    path: 'spec.http[0].match[0].headers["end user"]',
    message: 'not a valid header name',
  },
  { name: 'empty header name', obj: vsMatch({ headers: { '': { exact: 'jason' } } }), path: 'spec.http[0].match[0].headers[""]', message: 'header name cannot be empty' },
  {
    name: 'bad regex in withoutHeaders',
    obj: vsMatch({ withoutHeaders: { 'x-test': { regex: '(?!x)' } } }),
    path: 'spec.http[0].match[0].withoutHeaders.x-test.regex',
    message: 'unsupported Perl syntax',
  },
  {
    name: 'JWT claim routing for the mesh',
    obj: vsMatch({ headers: { '@request.auth.claims.group': { exact: 'admin' } } }),
    path: 'spec.http[0].match[0].headers["@request.auth.claims.group"]',
    message: 'only supported for VirtualServices bound to gateways',
  },
  { name: 'invalid sourceNamespace', obj: vsMatch({ sourceNamespace: 'Shop_NS' }), path: 'spec.http[0].match[0].sourceNamespace', message: 'not a valid namespace name' },
  { name: 'match port 70000', obj: vsMatch({ port: 70000 }), path: 'spec.http[0].match[0].port', message: 'range 1..65535' },
  { name: 'invalid sourceLabels value', obj: vsMatch({ sourceLabels: { app: 'a b' } }), path: 'spec.http[0].match[0].sourceLabels.app', message: 'invalid label value' },
  // ---- TCP and TLS routes ----
  { name: 'TCP route without route', obj: vs({ hosts: ['reviews'], tcp: [{ match: [{ port: 3306 }] }] }), path: 'spec.tcp[0].route', message: 'TCP route is required' },
  {
    name: 'TCP match with a bad CIDR',
    obj: vs({ hosts: ['reviews'], tcp: [{ match: [{ destinationSubnets: ['10.0.0.0/33'] }], route: [dest()] }] }),
    path: 'spec.tcp[0].match[0].destinationSubnets[0]',
    message: 'not a valid CIDR',
  },
  {
    name: 'TCP destinations with zero total weight',
    obj: vs({ hosts: ['reviews'], tcp: [{ route: [dest({ weight: 0 }), dest({ weight: 0 })] }] }),
    path: 'spec.tcp[0].route',
    message: 'total destination weight is 0',
  },
  {
    name: 'TLS match without sniHosts',
    obj: vs({ hosts: ['reviews'], tls: [{ match: [{ port: 443 }], route: [dest()] }] }),
    path: 'spec.tls[0].match[0].sniHosts',
    message: 'at least one SNI host',
  },
  {
    name: 'TLS SNI host outside the hosts',
    obj: vs({ hosts: ['reviews'], tls: [{ match: [{ sniHosts: ['ratings'] }], route: [dest()] }] }),
    path: 'spec.tls[0].match[0].sniHosts[0]',
    message: 'not a compatible subset',
  },
  // ---- DestinationRule ----
  { name: 'DestinationRule without host', obj: dr({ subsets: [{ name: 'v1' }] }), path: 'spec.host', message: 'host is required' },
  { name: 'DestinationRule host invalid', obj: dr({ host: 'reviews service' }), path: 'spec.host', message: 'invalid' },
  { name: 'subset without name', obj: drBase({ subsets: [{ labels: { version: 'v1' } }] }), path: 'spec.subsets[0].name', message: 'subset name is required' },
  { name: 'subset name not a DNS label', obj: drBase({ subsets: [{ name: 'v1.0' }] }), path: 'spec.subsets[0].name', message: 'subset name' },
  { name: 'duplicate subset names', obj: drBase({ subsets: [{ name: 'v1' }, { name: 'v1' }] }), path: 'spec.subsets[1].name', message: 'duplicate subset name' },
  {
    name: 'subset label value not a string',
    obj: drBase({ subsets: [{ name: 'v1', labels: { version: 1 } }] }),
    path: 'spec.subsets[0].labels.version',
    message: 'must be a string',
  },
  {
    name: 'subset label value invalid',
    obj: drBase({ subsets: [{ name: 'v1', labels: { version: 'v1!' } }] }),
    path: 'spec.subsets[0].labels.version',
    message: 'invalid label value',
  },
  {
    name: 'loadBalancer.simple not in the enum',
    obj: drPolicy({ loadBalancer: { simple: 'FASTEST' } }),
    path: 'spec.trafficPolicy.loadBalancer.simple',
    message: 'must be one of UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST',
  },
  {
    name: 'subset loadBalancer.simple lower case',
    obj: drBase({ subsets: [{ name: 'v1', trafficPolicy: { loadBalancer: { simple: 'round_robin' } } }] }),
    path: 'spec.subsets[0].trafficPolicy.loadBalancer.simple',
    message: 'must be one of',
  },
  { name: 'empty traffic policy', obj: drPolicy({}), path: 'spec.trafficPolicy', message: 'at least one field' },
  {
    name: 'unknown traffic policy field',
    obj: drPolicy({ loadbalancer: { simple: 'RANDOM' } }),
    path: 'spec.trafficPolicy.loadbalancer',
    message: 'unknown field "loadbalancer" (did you mean "loadBalancer"?)',
  },
  { name: 'unknown spec field', obj: drBase({ subset: [] }), path: 'spec.subset', message: 'unknown field' },
  {
    name: 'outlier interval without unit',
    obj: drPolicy({ outlierDetection: { interval: '5' } }),
    path: 'spec.trafficPolicy.outlierDetection.interval',
    message: 'invalid duration',
  },
  {
    name: 'outlier maxEjectionPercent 120',
    obj: drPolicy({ outlierDetection: { maxEjectionPercent: 120 } }),
    path: 'spec.trafficPolicy.outlierDetection.maxEjectionPercent',
    message: 'not in range 0..100',
  },
  {
    name: 'maglev table size not prime',
    obj: drPolicy({ loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 100 } } } }),
    path: 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize',
    message: 'prime',
  },
  {
    name: 'httpCookie without name',
    obj: drPolicy({ loadBalancer: { consistentHash: { httpCookie: { ttl: '10s' } } } }),
    path: 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name',
    message: 'name required',
  },
  { name: 'empty connection pool', obj: drPolicy({ connectionPool: {} }), path: 'spec.trafficPolicy.connectionPool', message: 'at least one of tcp and http' },
  {
    name: 'negative maxConnections',
    obj: drPolicy({ connectionPool: { tcp: { maxConnections: -1 } } }),
    path: 'spec.trafficPolicy.connectionPool.tcp.maxConnections',
    message: 'non-negative',
  },
  {
    name: 'port traffic policy without port',
    obj: drPolicy({ portLevelSettings: [{ loadBalancer: { simple: 'RANDOM' } }] }),
    path: 'spec.trafficPolicy.portLevelSettings[0].port',
    message: 'port is required',
  },
  { name: 'MUTUAL TLS without certificates', obj: drPolicy({ tls: { mode: 'MUTUAL' } }), path: 'spec.trafficPolicy.tls.clientCertificate', message: 'required for mutual tls' },
  {
    name: 'tunnel and proxyProtocol together',
    obj: drPolicy({ tunnel: { targetHost: 'proxy.example.com', targetPort: 8080 }, proxyProtocol: { version: 'V1' } }),
    path: 'spec.trafficPolicy',
    message: 'must not be set together',
  },
  {
    name: 'workloadSelector exported beyond the namespace',
    obj: drBase({ workloadSelector: { matchLabels: { app: 'reviews' } }, exportTo: ['*'] }),
    path: 'spec.exportTo',
    message: 'beyond its own namespace',
  },
];

const VALID: Array<{ name: string; obj: ConfigObject }> = [
  { name: 'relative weights (Istio no longer requires a sum of 100)', obj: vsRoute({ route: [dest({ weight: 1 }), dest({ weight: 3 }, { host: 'reviews', subset: 'v2' })] }) },
  { name: 'weights summing to 100', obj: vsRoute({ route: [dest({ weight: 90 }), dest({ weight: 10 }, { host: 'reviews', subset: 'v2' })] }) },
  { name: 'one destination without weight, with port', obj: vsDest({ host: 'reviews.default.svc.cluster.local', port: { number: 9080 } }) },
  { name: 'wildcard * host on a gateway', obj: vsRoute({ route: [dest()] }, { hosts: ['*'], gateways: ['istio-system/ingressgateway'] }) },
  { name: 'wildcard and IP hosts', obj: vsRoute({ route: [dest()] }, { hosts: ['*.example.com', '10.96.0.10', 'Reviews.Default'] }) },
  { name: 'redirect only', obj: vsRoute({ redirect: { uri: '/v2', redirectCode: 301 } }) },
  { name: 'directResponse only', obj: vsRoute({ directResponse: { status: 503, body: { string: 'unavailable' } } }) },
  { name: 'delegate at a gateway', obj: vsRoute({ delegate: { name: 'reviews-routes', namespace: 'default' } }, { gateways: ['istio-system/ingress'] }) },
  { name: 'delegate VirtualService (no hosts, HTTP routes only)', obj: vs({ http: [{ match: [{ uri: { prefix: '/reviews' } }], route: [dest()] }] }) },
  { name: 'RE2 features JavaScript lacks', obj: vsMatch({ uri: { regex: '(?i)^/api/v[0-9]+/(?P<id>[[:alnum:]]+)$' }, authority: { regex: '\\pL+\\.example\\.com' } }) },
  { name: 'header presence and absence matches', obj: vsMatch({ headers: { 'end-user': {} }, withoutHeaders: { 'x-canary': { regex: '*' } }, queryParams: { debug: {} } }) },
  { name: 'upper-case header name (Envoy lower-cases it)', obj: vsMatch({ headers: { 'End-User': { exact: 'jason' } } }) },
  {
    name: 'JWT claim routing at a gateway',
    obj: vsRoute({ match: [{ headers: { '@request.auth.claims.group': { exact: 'admin' } } }], route: [dest()] }, { gateways: ['istio-system/ingress'] }),
  },
  {
    name: 'durations in Go syntax',
    obj: vs({
      hosts: ['reviews'],
      http: [
        { route: [dest()], timeout: '1.5s' },
        { route: [dest()], timeout: '100ms' },
        { route: [dest()], timeout: '1h30m' },
      ],
    }),
  },
  {
    name: 'Istio fields meshd does not implement yet',
    obj: vsRoute(
      {
        name: 'primary',
        match: [
          {
            name: 'api',
            uri: { prefix: '/api' },
            ignoreUriCase: true,
            statPrefix: 'api',
            sourceLabels: { app: 'productpage' },
            gateways: ['mesh'],
            port: 9080,
            sourceNamespace: 'default',
          },
        ],
        route: [dest({ weight: 100, headers: { request: { set: { 'x-version': '%HOSTNAME%' } }, response: { remove: ['x-internal'] } } })],
        retries: { attempts: 3, perTryTimeout: '2s', retryOn: '5xx,connect-failure,503', retryRemoteLocalities: true, retryIgnorePreviousHosts: true, backoff: '25ms' },
        fault: { delay: { fixedDelay: '5s', percentage: { value: 0.1 } }, abort: { httpStatus: 503, percentage: { value: 1 } } },
        mirror: { host: 'reviews', subset: 'v3' },
        mirrorPercentage: { value: 50 },
        mirror_percent: 50,
        mirrorPercent: 50,
        corsPolicy: {
          allowOrigins: [{ exact: 'https://example.com' }],
          allowMethods: ['GET', 'POST'],
          allowHeaders: ['*'],
          maxAge: '24h',
          allowCredentials: true,
          unmatchedPreflights: 'IGNORE',
        },
        rewrite: { uriRegexRewrite: { match: '^/api/(.*)', rewrite: '/\\1' }, authority: 'reviews.internal' },
        headers: { request: { add: { 'x-a': 'b' } }, response: { set: { 'cache-control': 'no-store' } } },
        timeout: '10s',
      },
      { gateways: ['mesh'], exportTo: ['.'] },
    ),
  },
  { name: 'mirrors (several mirror targets)', obj: vsRoute({ route: [dest()], mirrors: [{ destination: { host: 'ratings' }, percentage: { value: 5 } }] }) },
  {
    name: 'TCP and TLS routes',
    obj: vs({
      hosts: ['*.example.com'],
      tcp: [{ match: [{ port: 3306, destinationSubnets: ['10.0.0.0/8'], sourceSubnet: '10.1.0.0/16' }], route: [dest({ weight: 100 })] }],
      tls: [{ match: [{ sniHosts: ['a.example.com'], port: 443 }], route: [dest()] }],
    }),
  },
  { name: 'v1alpha3 VirtualService', obj: object('VirtualService', 'networking.istio.io/v1alpha3', { spec: { hosts: ['reviews'], http: [{ route: [dest()] }] } }) },
  {
    name: 'DestinationRule with every traffic policy section',
    obj: drBase({
      trafficPolicy: {
        loadBalancer: {
          consistentHash: { httpCookie: { name: 'user', ttl: '10s', path: '/' }, ringHash: { minimumRingSize: 1024 } },
          localityLbSetting: { enabled: true, failover: [{ from: 'us-east', to: 'us-west' }] },
          warmup: { duration: '30s', minimumPercent: 10, aggression: 1 },
        },
        connectionPool: {
          tcp: { maxConnections: 100, connectTimeout: '30ms', tcpKeepalive: { time: '7200s', interval: '75s', probes: 9 }, idleTimeout: '1h' },
          http: {
            http1MaxPendingRequests: 10,
            http2MaxRequests: 100,
            maxRequestsPerConnection: 10,
            maxRetries: 3,
            idleTimeout: '15s',
            h2UpgradePolicy: 'UPGRADE',
            maxConcurrentStreams: 100,
          },
        },
        outlierDetection: {
          consecutive5xxErrors: 7,
          consecutiveGatewayErrors: 5,
          interval: '5m',
          baseEjectionTime: '15m',
          maxEjectionPercent: 100,
          minHealthPercent: 50,
          splitExternalLocalOriginErrors: true,
          consecutiveLocalOriginFailures: 3,
        },
        tls: { mode: 'ISTIO_MUTUAL', sni: 'reviews.default', subjectAltNames: ['spiffe://cluster.local/ns/default/sa/bookinfo-reviews'] },
        portLevelSettings: [{ port: { number: 9080 }, loadBalancer: { simple: 'LEAST_REQUEST' }, tls: { mode: 'MUTUAL', credentialName: 'client-cert' } }],
        retryBudget: { percent: 20, minRetryConcurrency: 3 },
      },
      subsets: [
        { name: 'v1', labels: { version: 'v1' }, trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } } },
        { name: 'v2-mysql', labels: { version: 'v2-mysql' } },
      ],
      exportTo: ['.', 'shop'],
    }),
  },
  {
    name: 'DestinationRule with maglev and a workload selector',
    obj: drBase({
      trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 65537 } } } },
      workloadSelector: { matchLabels: { app: 'productpage' } },
      exportTo: ['.'],
    }),
  },
  { name: 'headless Service without ports', obj: svc({ clusterIP: 'None', selector: { app: 'reviews' } }) },
  { name: 'ExternalName Service', obj: svc({ type: 'ExternalName', externalName: 'api.example.com' }) },
  {
    name: 'Service with named targetPort and appProtocol',
    obj: svcPorts([
      { name: 'http-web', port: 80, targetPort: 'http-web', appProtocol: 'kubernetes.io/h2c' },
      { name: 'grpc', port: 9090, targetPort: 9090, protocol: 'TCP' },
    ]),
  },
  {
    name: 'IPv6 EndpointSlice',
    obj: slice({
      addressType: 'IPv6',
      endpoints: [
        { addresses: ['fd00:10:244::c'], conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', name: 'reviews-v1', namespace: 'default' } },
      ],
    }),
  },
  { name: 'FQDN EndpointSlice without ports', obj: slice({ addressType: 'FQDN', endpoints: [{ addresses: ['db.example.com'] }], ports: undefined }) },
  {
    name: 'legacy Endpoints',
    obj: endpoints([
      {
        addresses: [{ ip: '10.244.0.12', targetRef: { kind: 'Pod', name: 'reviews-v1' } }],
        notReadyAddresses: [{ ip: 'fd00::1' }],
        ports: [
          { name: 'http', port: 9080, protocol: 'TCP' },
          { name: 'grpc', port: 9090 },
        ],
      },
    ]),
  },
  { name: 'Pod with IPv4 and IPv6', obj: pod({ status: { podIP: '10.244.0.12', podIPs: [{ ip: '10.244.0.12' }, { ip: 'fd00::c' }], phase: 'Running' } }) },
];

test('the invalid-case table is large enough', () => {
  assert.ok(INVALID.length >= 40, `${INVALID.length} invalid cases`);
});

for (const c of INVALID) {
  test(`rejects: ${c.name}`, () => {
    const errors = validateObject(c.obj);
    const hit = errors.some((e) => e.path === c.path && e.message.includes(c.message));
    assert.ok(hit, `want ${c.path}: …${c.message}…\ngot ${JSON.stringify(errors, null, 1)}`);
  });
}

for (const c of VALID) {
  test(`accepts: ${c.name}`, () => {
    assert.deepEqual(validateObject(c.obj), []);
  });
}

test('the bases the invalid cases are built from are valid', () => {
  const bases = [
    vsRoute({ route: [dest()] }),
    vsMatch({ uri: { prefix: '/' } }),
    drBase({}),
    drPolicy({ loadBalancer: { simple: 'RANDOM' } }),
    svcPorts([{ name: 'http', port: 9080 }]),
    slice({}),
    pod({}),
    endpoints([{ addresses: [{ ip: '10.0.0.1' }], ports: [{ port: 9080 }] }]),
  ];
  for (const b of bases) assert.deepEqual(validateObject(b), [], `${b.kind}`);
});

test('every object in examples/bookinfo is valid', () => {
  const dir = join(__dirname, '..', 'examples', 'bookinfo');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  assert.deepEqual(files, [
    'destinationrules.yaml',
    'endpointslices.yaml',
    'namespace.yaml',
    'pods.yaml',
    'services.yaml',
    'virtualservice-details.yaml',
    'virtualservice-productpage.yaml',
    'virtualservice-ratings.yaml',
    'virtualservice-reviews.yaml',
  ]);
  const kinds = new Map<string, number>();
  for (const f of files) {
    const parsed = parseDocuments(readFileSync(join(dir, f), 'utf8'), f);
    assert.deepEqual(parsed.errors, [], f);
    assert.ok(parsed.objects.length > 0, `${f} has no objects`);
    for (const o of parsed.objects) {
      assert.deepEqual(validateObject(o), [], `${f}: ${o.kind} ${o.metadata.name}`);
      kinds.set(o.kind, (kinds.get(o.kind) ?? 0) + 1);
    }
  }
  assert.deepEqual(Object.fromEntries(kinds), { DestinationRule: 4, EndpointSlice: 4, Namespace: 1, Pod: 6, Service: 4, VirtualService: 4 });
});

test("bookinfo endpoint slices point at the pods, with the pods' IPs", () => {
  const dir = join(__dirname, '..', 'examples', 'bookinfo');
  const read = (f: string): ConfigObject[] => parseDocuments(readFileSync(join(dir, f), 'utf8'), f).objects;
  const podIPs = new Map(read('pods.yaml').map((p) => [p.metadata.name, (p.body['status'] as J)['podIP']]));
  for (const s of read('endpointslices.yaml')) {
    for (const ep of s.body['endpoints'] as J[]) {
      const ref = ep['targetRef'] as J;
      assert.deepEqual(ep['addresses'], [podIPs.get(String(ref['name']))], `${s.metadata.name} → ${String(ref['name'])}`);
      assert.equal((ep['conditions'] as J)['ready'], true);
    }
  }
});
