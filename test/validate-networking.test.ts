import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateObject } from '../src/model/validate';
import type { ConfigObject, Kind } from '../src/model/objects';

type J = Record<string, unknown>;
interface Meta {
  name?: string;
  namespace?: string;
  annotations?: Record<string, string>;
}

function object(kind: Kind, apiVersion: string, body: J, meta: Meta = {}): ConfigObject {
  const metadata = {
    name: meta.name ?? 'reviews',
    namespace: meta.namespace ?? 'default',
    labels: {},
    annotations: meta.annotations ?? {},
  };
  return { kind, apiVersion, metadata, body: { apiVersion, kind, metadata, ...body }, origin: { source: 'test' } };
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const CERT = b64('-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUEXAMPLE\n-----END CERTIFICATE-----\n');
const KEY = b64('-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgEXAMPLE\n-----END PRIVATE KEY-----\n');
const CACERT = b64('-----BEGIN CERTIFICATE-----\nMIIBoTCCAUegAwIBAgIUROOT\n-----END CERTIFICATE-----\n');

// ---- builders: each invalid case is one change to a valid base ----

const NET = 'networking.istio.io/v1';
const se = (spec: J): ConfigObject => object('ServiceEntry', NET, { spec }, { name: 'external-api' });
const EGRESS: J = {
  hosts: ['api.example.com'],
  location: 'MESH_EXTERNAL',
  resolution: 'DNS',
  ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
};
const seDns = (extra: J): ConfigObject => se({ ...EGRESS, ...extra });
const STATIC: J = {
  hosts: ['db.internal.example.com'],
  addresses: ['240.0.0.10'],
  location: 'MESH_INTERNAL',
  resolution: 'STATIC',
  ports: [{ number: 5432, name: 'tcp-pg', protocol: 'TCP' }],
  endpoints: [
    { address: '10.1.0.5', labels: { app: 'db' } },
    { address: '10.1.0.6', ports: { 'tcp-pg': 15432 } },
  ],
};
const seStatic = (extra: J): ConfigObject => se({ ...STATIC, ...extra });
const SELECTED: J = {
  hosts: ['vm-app.internal.example.com'],
  location: 'MESH_INTERNAL',
  resolution: 'STATIC',
  ports: [{ number: 8080, name: 'http', protocol: 'HTTP', targetPort: 9080 }],
  workloadSelector: { labels: { app: 'vm-app' } },
};
const seSelected = (extra: J): ConfigObject => se({ ...SELECTED, ...extra });
const unixStatic = (endpoint: J, ports: J[] = [{ number: 80, name: 'http', protocol: 'HTTP' }]): ConfigObject => seStatic({ addresses: undefined, ports, endpoints: [endpoint] });

const WE: J = {
  address: '10.1.0.7',
  ports: { http: 8080 },
  labels: { app: 'vm-app', version: 'v1' },
  serviceAccount: 'vm-app',
  network: 'vpc-1',
  locality: 'us-east1/us-east1-b',
  weight: 10,
};
const we = (extra: J): ConfigObject => object('WorkloadEntry', NET, { spec: { ...WE, ...extra } }, { name: 'vm-app-1' });

const HTTP_SERVER: J = { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['bookinfo.example.com'] };
const HTTPS_SERVER: J = {
  port: { number: 443, name: 'https', protocol: 'HTTPS' },
  hosts: ['bookinfo.example.com'],
  tls: { mode: 'SIMPLE', credentialName: 'bookinfo-credential' },
};
const gw = (spec: J, name = 'bookinfo-gateway'): ConfigObject => object('Gateway', NET, { spec }, { name });
const gwServers = (servers: unknown[], extra: J = {}): ConfigObject => gw({ selector: { istio: 'ingressgateway' }, servers, ...extra });
const gwServer = (server: J): ConfigObject => gwServers([server]);
const httpServer = (extra: J): ConfigObject => gwServer({ ...HTTP_SERVER, ...extra });
const httpsTls = (tls: J): ConfigObject => gwServer({ ...HTTPS_SERVER, tls });

const secret = (body: J, meta: Meta = {}): ConfigObject => object('Secret', 'v1', body, { name: 'bookinfo-credential', ...meta });
const tlsSecret = (data: J): ConfigObject => secret({ type: 'kubernetes.io/tls', data });

interface Case {
  name: string;
  obj: ConfigObject;
  path: string;
  message: string;
}

const INVALID: Case[] = [
  // ---- ServiceEntry: shape, hosts, addresses ----
  { name: 'ServiceEntry without spec', obj: object('ServiceEntry', NET, {}), path: 'spec', message: 'spec is required' },
  { name: 'no hosts', obj: seDns({ hosts: [] }), path: 'spec.hosts', message: 'service entry must have at least one host' },
  { name: 'host *', obj: seDns({ hosts: ['*'], resolution: 'NONE' }), path: 'spec.hosts[0]', message: 'invalid host *' },
  { name: 'host with an underscore', obj: seDns({ hosts: ['api_v1.example.com'] }), path: 'spec.hosts[0]', message: 'label "api_v1" invalid' },
  { name: 'wildcard in the middle of a host', obj: seDns({ hosts: ['api.*.com'], resolution: 'NONE' }), path: 'spec.hosts[0]', message: 'invalid' },
  { name: 'IP address as a host', obj: seDns({ hosts: ['10.0.0.1'], resolution: 'NONE' }), path: 'spec.hosts[0]', message: 'all-numeric' },
  {
    name: 'wildcard host with DNS and no endpoints',
    obj: seDns({ hosts: ['*.example.com'] }),
    path: 'spec.hosts[0]',
    message: 'hosts must be FQDN if no endpoints are provided for resolution mode DNS',
  },
  { name: 'address that is a hostname', obj: seStatic({ addresses: ['db.example.com'] }), path: 'spec.addresses[0]', message: 'not a valid IP address' },
  { name: 'address with a /33 prefix', obj: seStatic({ addresses: ['10.0.0.0/33'] }), path: 'spec.addresses[0]', message: 'not a valid CIDR block' },
  {
    name: 'CIDR address with resolution DNS',
    obj: seDns({ addresses: ['10.8.0.0/16'] }),
    path: 'spec.addresses[0]',
    message: 'CIDR addresses are allowed only for NONE/STATIC resolution types',
  },
  {
    name: 'more than 256 hosts',
    obj: seDns({ hosts: Array.from({ length: 257 }, (_, i) => `h${i}.example.com`), ports: [{ number: 80, name: 'http', protocol: 'HTTP' }] }),
    path: 'spec.hosts',
    message: 'at most 256 items',
  },
  // ---- ServiceEntry: ports ----
  {
    name: 'port number 0',
    obj: seDns({ ports: [{ number: 0, name: 'tls', protocol: 'TLS' }] }),
    path: 'spec.ports[0].number',
    message: 'port number 0 must be in the range 1..65535',
  },
  { name: 'port number 70000', obj: seDns({ ports: [{ number: 70000, name: 'tls', protocol: 'TLS' }] }), path: 'spec.ports[0].number', message: 'range 1..65535' },
  { name: 'port without number', obj: seDns({ ports: [{ name: 'tls', protocol: 'TLS' }] }), path: 'spec.ports[0].number', message: 'port number is required' },
  { name: 'port number as a string', obj: seDns({ ports: [{ number: '443', name: 'tls', protocol: 'TLS' }] }), path: 'spec.ports[0].number', message: 'must be an integer' },
  { name: 'port without name', obj: seDns({ ports: [{ number: 443, protocol: 'TLS' }] }), path: 'spec.ports[0].name', message: 'port name is required' },
  { name: 'port name in upper case', obj: seDns({ ports: [{ number: 443, name: 'TLS', protocol: 'TLS' }] }), path: 'spec.ports[0].name', message: 'invalid port name' },
  {
    name: 'duplicate port names',
    obj: seDns({
      ports: [
        { number: 443, name: 'tls', protocol: 'TLS' },
        { number: 8443, name: 'tls', protocol: 'TLS' },
      ],
    }),
    path: 'spec.ports[1].name',
    message: 'service entry port name "tls" already defined',
  },
  {
    name: 'duplicate port numbers',
    obj: seDns({
      ports: [
        { number: 443, name: 'tls', protocol: 'TLS' },
        { number: 443, name: 'https', protocol: 'HTTPS' },
      ],
    }),
    path: 'spec.ports[1].number',
    message: 'service entry port 443 already defined',
  },
  { name: 'unknown protocol', obj: seDns({ ports: [{ number: 443, name: 'quic', protocol: 'QUIC' }] }), path: 'spec.ports[0].protocol', message: 'unsupported protocol "QUIC"' },
  {
    name: 'targetPort 0',
    obj: seSelected({ ports: [{ number: 8080, name: 'http', protocol: 'HTTP', targetPort: 0 }] }),
    path: 'spec.ports[0].targetPort',
    message: 'range 1..65535',
  },
  {
    name: 'unknown port field',
    obj: seDns({ ports: [{ number: 443, name: 'tls', protocl: 'TLS' }] }),
    path: 'spec.ports[0].protocl',
    message: 'unknown field "protocl" (did you mean "protocol"?)',
  },
  {
    name: 'several hosts on a TCP port with DNS',
    obj: seDns({ hosts: ['a.example.com', 'b.example.com'], ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }] }),
    path: 'spec.ports[0].protocol',
    message: 'multiple hosts provided with non-HTTP, non-TLS ports',
  },
  // ---- ServiceEntry: enums and unknown fields ----
  { name: 'resolution in lower case', obj: seDns({ resolution: 'dns' }), path: 'spec.resolution', message: 'must be one of NONE, STATIC, DNS, DNS_ROUND_ROBIN' },
  {
    name: 'resolution DYNAMIC_DNS',
    obj: seDns({ hosts: ['*.example.com'], resolution: 'DYNAMIC_DNS' }),
    path: 'spec.resolution',
    message: 'unsupported resolution type DYNAMIC_DNS',
  },
  { name: 'location EXTERNAL', obj: seDns({ location: 'EXTERNAL' }), path: 'spec.location', message: 'must be one of MESH_EXTERNAL, MESH_INTERNAL' },
  { name: 'unknown spec field', obj: seStatic({ endpoint: [] }), path: 'spec.endpoint', message: 'unknown field "endpoint" (did you mean "endpoints"?)' },
  // ---- ServiceEntry: resolution and endpoints ----
  { name: 'endpoints with resolution NONE', obj: seStatic({ resolution: 'NONE' }), path: 'spec.endpoints', message: 'no endpoints should be provided for resolution type NONE' },
  { name: 'endpoints with resolution unset (NONE)', obj: seStatic({ resolution: undefined }), path: 'spec.endpoints', message: 'resolution type NONE' },
  {
    name: 'STATIC endpoint with a hostname',
    obj: seStatic({ endpoints: [{ address: 'db-1.example.com' }] }),
    path: 'spec.endpoints[0].address',
    message: 'endpoint address "db-1.example.com" is not a valid IP address',
  },
  { name: 'STATIC endpoint without address', obj: seStatic({ endpoints: [{ labels: { app: 'db' } }] }), path: 'spec.endpoints[0].address', message: 'address is required' },
  {
    name: 'endpoint port not declared',
    obj: seStatic({ endpoints: [{ address: '10.1.0.6', ports: { grpc: 9090 } }] }),
    path: 'spec.endpoints[0].ports.grpc',
    message: 'endpoint port "grpc" is not defined by the service entry',
  },
  { name: 'endpoint port 0', obj: seStatic({ endpoints: [{ address: '10.1.0.6', ports: { 'tcp-pg': 0 } }] }), path: 'spec.endpoints[0].ports.tcp-pg', message: 'range 1..65535' },
  {
    name: 'endpoint port over 65535',
    obj: seStatic({ endpoints: [{ address: '10.1.0.6', ports: { 'tcp-pg': 65536 } }] }),
    path: 'spec.endpoints[0].ports.tcp-pg',
    message: 'range 1..65535',
  },
  {
    name: 'endpoint label value invalid',
    obj: seStatic({ endpoints: [{ address: '10.1.0.5', labels: { app: 'db!' } }] }),
    path: 'spec.endpoints[0].labels.app',
    message: 'invalid label value',
  },
  {
    name: 'endpoint locality with an empty zone',
    obj: seStatic({ endpoints: [{ address: '10.1.0.5', locality: 'us-east1//rack-1' }] }),
    path: 'spec.endpoints[0].locality',
    message: 'must not contain empty region/zone/subzone',
  },
  { name: 'endpoint weight negative', obj: seStatic({ endpoints: [{ address: '10.1.0.5', weight: -1 }] }), path: 'spec.endpoints[0].weight', message: 'between 0 and 4294967295' },
  { name: 'unix endpoint with a relative path', obj: unixStatic({ address: 'unix://var/run/app.sock' }), path: 'spec.endpoints[0].address', message: 'not an absolute path' },
  {
    name: 'unix endpoint with ports',
    obj: unixStatic({ address: 'unix:///var/run/app.sock', ports: { http: 8080 } }),
    path: 'spec.endpoints[0].ports',
    message: 'must not include ports',
  },
  {
    name: 'unix endpoint with two service ports',
    obj: unixStatic({ address: 'unix:///var/run/app.sock' }, [
      { number: 80, name: 'http', protocol: 'HTTP' },
      { number: 81, name: 'admin', protocol: 'HTTP' },
    ]),
    path: 'spec.ports',
    message: 'exactly 1 service port is required for unix endpoints',
  },
  {
    name: 'endpoints and workloadSelector together',
    obj: seSelected({ endpoints: [{ address: '10.1.0.5' }] }),
    path: 'spec',
    message: 'only one of workloadSelector or endpoints',
  },
  {
    name: 'wildcard in workloadSelector',
    obj: seSelected({ workloadSelector: { labels: { app: 'vm-*' } } }),
    path: 'spec.workloadSelector.labels.app',
    message: 'wildcard is not supported in selector',
  },
  {
    name: 'DNS endpoint that is not a DNS name',
    obj: seDns({ endpoints: [{ address: 'api_1.example.com' }] }),
    path: 'spec.endpoints[0].address',
    message: 'is not a valid FQDN or an IP address',
  },
  {
    name: 'DNS endpoint with a wildcard',
    obj: seDns({ endpoints: [{ address: '*.example.com' }] }),
    path: 'spec.endpoints[0].address',
    message: 'is not a valid FQDN or an IP address',
  },
  {
    name: 'DNS endpoint that is a unix socket',
    obj: seDns({ endpoints: [{ address: 'unix:///var/run/app.sock' }] }),
    path: 'spec.endpoints[0].address',
    message: 'unix domain sockets need resolution STATIC',
  },
  {
    name: 'DNS_ROUND_ROBIN with two endpoints',
    obj: seDns({ resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'a.example.com' }, { address: 'b.example.com' }] }),
    path: 'spec.endpoints',
    message: 'there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN',
  },
  { name: 'exportTo ~ with a namespace', obj: seDns({ exportTo: ['~', 'shop'] }), path: 'spec.exportTo', message: 'cannot export service entry to no one (~) and someone' },
  { name: 'exportTo with an invalid namespace', obj: seDns({ exportTo: ['Shop_1'] }), path: 'spec.exportTo[0]', message: 'only ".", "*" or a namespace name' },
  // ---- WorkloadEntry ----
  { name: 'WorkloadEntry without spec', obj: object('WorkloadEntry', NET, {}), path: 'spec', message: 'spec is required' },
  { name: 'WorkloadEntry without address or network', obj: we({ address: undefined, network: undefined }), path: 'spec.address', message: 'address is required' },
  {
    name: 'WorkloadEntry address not an IP or DNS name',
    obj: we({ address: 'vm 1' }),
    path: 'spec.address',
    message: 'endpoint address "vm 1" is not a valid FQDN or an IP address',
  },
  { name: 'WorkloadEntry port 0', obj: we({ ports: { http: 0 } }), path: 'spec.ports.http', message: 'range 1..65535' },
  { name: 'WorkloadEntry port name not a DNS label', obj: we({ ports: { HTTP_1: 8080 } }), path: 'spec.ports.HTTP_1', message: 'invalid port name' },
  {
    name: 'WorkloadEntry unix address with ports',
    obj: we({ address: 'unix:///var/run/vm.sock' }),
    path: 'spec.ports',
    message: 'unix endpoint "unix:///var/run/vm.sock" must not include ports',
  },
  { name: 'WorkloadEntry label key invalid', obj: we({ labels: { '-app': 'vm' } }), path: 'spec.labels.-app', message: 'invalid key' },
  { name: 'WorkloadEntry serviceAccount invalid', obj: we({ serviceAccount: 'VM_SA' }), path: 'spec.serviceAccount', message: 'invalid service account name' },
  { name: 'WorkloadEntry weight as a string', obj: we({ weight: '10' }), path: 'spec.weight', message: 'must be an integer' },
  { name: 'WorkloadEntry unknown field', obj: we({ adress: '10.0.0.1' }), path: 'spec.adress', message: 'unknown field "adress" (did you mean "address"?)' },
  // ---- Gateway: servers, hosts, ports ----
  { name: 'Gateway without servers', obj: gw({ selector: { istio: 'ingressgateway' } }), path: 'spec.servers', message: 'gateway must have at least one server' },
  { name: 'Gateway name with a dot', obj: gw({ servers: [HTTP_SERVER] }, 'bookinfo.gateway'), path: 'metadata.name', message: 'invalid gateway name' },
  { name: 'server without hosts', obj: httpServer({ hosts: [] }), path: 'spec.servers[0].hosts', message: 'server config must contain at least one host' },
  { name: 'short host name', obj: httpServer({ hosts: ['bookinfo'] }), path: 'spec.servers[0].hosts[0]', message: 'short names (non FQDN) are not allowed' },
  {
    name: 'partial wildcard host',
    obj: httpServer({ hosts: ['*bookinfo.example.com'] }),
    path: 'spec.servers[0].hosts[0]',
    message: 'partial wildcard "*bookinfo.example.com" not allowed',
  },
  {
    name: 'host with an invalid namespace',
    obj: httpServer({ hosts: ['Prod_1/bookinfo.example.com'] }),
    path: 'spec.servers[0].hosts[0]',
    message: 'invalid namespace value "Prod_1" in gateway',
  },
  {
    name: 'host with an empty dnsName',
    obj: httpServer({ hosts: ['prod/'] }),
    path: 'spec.servers[0].hosts[0]',
    message: 'config namespace and dnsName in host entry cannot be empty',
  },
  { name: 'host with a bad domain after the namespace', obj: httpServer({ hosts: ['prod/book_info.example.com'] }), path: 'spec.servers[0].hosts[0]', message: 'invalid' },
  { name: 'server without port', obj: gwServer({ hosts: ['bookinfo.example.com'] }), path: 'spec.servers[0].port', message: 'port is required' },
  { name: 'port without protocol', obj: httpServer({ port: { number: 80, name: 'http' } }), path: 'spec.servers[0].port.protocol', message: 'port protocol is required' },
  {
    name: 'unknown server protocol',
    obj: httpServer({ port: { number: 80, name: 'http', protocol: 'HTTP3' } }),
    path: 'spec.servers[0].port.protocol',
    message: 'unsupported protocol "HTTP3"',
  },
  { name: 'server port 0', obj: httpServer({ port: { number: 0, name: 'http', protocol: 'HTTP' } }), path: 'spec.servers[0].port.number', message: 'range 1..65535' },
  { name: 'server port without name', obj: httpServer({ port: { number: 80, protocol: 'HTTP' } }), path: 'spec.servers[0].port.name', message: 'port name must be set' },
  {
    name: 'server port with targetPort',
    obj: httpServer({ port: { number: 80, name: 'http', protocol: 'HTTP', targetPort: 8080 } }),
    path: 'spec.servers[0].port.targetPort',
    message: 'targetPort has no impact on Gateways',
  },
  {
    name: 'duplicate server port names',
    obj: gwServers([HTTP_SERVER, { ...HTTP_SERVER, port: { number: 8080, name: 'http', protocol: 'HTTP' } }]),
    path: 'spec.servers[1].port.name',
    message: 'port names in servers must be unique: duplicate name "http"',
  },
  { name: 'bind that is not an IP', obj: httpServer({ bind: 'localhost' }), path: 'spec.servers[0].bind', message: 'not a valid IP address' },
  {
    name: 'unix bind with a port number',
    obj: httpServer({ bind: 'unix:///var/run/gw.sock' }),
    path: 'spec.servers[0].port.number',
    message: 'port number must be 0 for unix domain socket',
  },
  { name: 'selector label value invalid', obj: gwServers([HTTP_SERVER], { selector: { istio: 'ingress gateway' } }), path: 'spec.selector.istio', message: 'invalid label value' },
  { name: 'null server', obj: gwServers([null]), path: 'spec.servers[0]', message: 'must not be null' },
  // ---- Gateway: TLS ----
  {
    name: 'HTTPS server without tls',
    obj: gwServer({ ...HTTPS_SERVER, tls: undefined }),
    path: 'spec.servers[0].tls',
    message: 'server must have TLS settings for HTTPS/TLS protocols',
  },
  {
    name: 'TLS server without tls',
    obj: gwServer({ port: { number: 15443, name: 'tls', protocol: 'TLS' }, hosts: ['*.local'] }),
    path: 'spec.servers[0].tls',
    message: 'server must have TLS settings for HTTPS/TLS protocols',
  },
  {
    name: 'HTTP server terminating TLS',
    obj: httpServer({ tls: { mode: 'SIMPLE', credentialName: 'bookinfo-credential' } }),
    path: 'spec.servers[0].tls',
    message: 'server cannot have TLS settings for plain text HTTP ports',
  },
  {
    name: 'TCP server with tls',
    obj: gwServer({ port: { number: 31400, name: 'tcp', protocol: 'TCP' }, hosts: ['*'], tls: { httpsRedirect: true } }),
    path: 'spec.servers[0].tls',
    message: 'server cannot have TLS settings for non HTTPS/TLS ports',
  },
  {
    name: 'SIMPLE without certificate or credential',
    obj: httpsTls({ mode: 'SIMPLE' }),
    path: 'spec.servers[0].tls.serverCertificate',
    message: 'SIMPLE TLS requires a server certificate',
  },
  {
    name: 'SIMPLE with a certificate but no key',
    obj: httpsTls({ mode: 'SIMPLE', serverCertificate: '/etc/certs/server.pem' }),
    path: 'spec.servers[0].tls.privateKey',
    message: 'SIMPLE TLS requires a private key',
  },
  {
    name: 'MUTUAL with files but no CA bundle',
    obj: httpsTls({ mode: 'MUTUAL', serverCertificate: '/etc/certs/server.pem', privateKey: '/etc/certs/key.pem' }),
    path: 'spec.servers[0].tls.caCertificates',
    message: 'MUTUAL TLS requires a client CA bundle',
  },
  {
    name: 'ISTIO_MUTUAL with credentialName',
    obj: httpsTls({ mode: 'ISTIO_MUTUAL', credentialName: 'bookinfo-credential' }),
    path: 'spec.servers[0].tls.credentialName',
    message: 'ISTIO_MUTUAL TLS cannot have associated credentialName',
  },
  {
    name: 'ISTIO_MUTUAL with a server certificate',
    obj: httpsTls({ mode: 'ISTIO_MUTUAL', serverCertificate: '/etc/certs/server.pem' }),
    path: 'spec.servers[0].tls.serverCertificate',
    message: 'ISTIO_MUTUAL TLS cannot have associated server certificate',
  },
  {
    name: 'unknown TLS mode',
    obj: httpsTls({ mode: 'STRICT', credentialName: 'bookinfo-credential' }),
    path: 'spec.servers[0].tls.mode',
    message: 'must be one of PASSTHROUGH, SIMPLE, MUTUAL, AUTO_PASSTHROUGH, ISTIO_MUTUAL, OPTIONAL_MUTUAL',
  },
  {
    name: 'minProtocolVersion above maxProtocolVersion',
    obj: httpsTls({ mode: 'SIMPLE', credentialName: 'c', minProtocolVersion: 'TLSV1_3', maxProtocolVersion: 'TLSV1_2' }),
    path: 'spec.servers[0].tls.maxProtocolVersion',
    message: 'maxProtocolVersion TLSV1_2 is lower than minProtocolVersion TLSV1_3',
  },
  {
    name: 'unknown cipher suite',
    obj: httpsTls({ mode: 'SIMPLE', credentialName: 'c', cipherSuites: ['ECDHE-RSA-AES128-GCM-SHA256', 'TLS_RSA_WITH_RC4_128_SHA'] }),
    path: 'spec.servers[0].tls.cipherSuites[1]',
    message: 'unknown cipher suite "TLS_RSA_WITH_RC4_128_SHA"',
  },
  {
    name: 'CRL with SIMPLE TLS',
    obj: httpsTls({ mode: 'SIMPLE', serverCertificate: '/c.pem', privateKey: '/k.pem', caCrl: '/crl.pem' }),
    path: 'spec.servers[0].tls.caCrl',
    message: 'CRL is not supported with SIMPLE TLS',
  },
  {
    name: 'credentialName and credentialNames',
    obj: httpsTls({ mode: 'SIMPLE', credentialName: 'a', credentialNames: ['b'] }),
    path: 'spec.servers[0].tls.credentialNames',
    message: 'only one of credentialName or credentialNames',
  },
  {
    name: 'three credentialNames',
    obj: httpsTls({ mode: 'SIMPLE', credentialNames: ['rsa', 'ecdsa', 'extra'] }),
    path: 'spec.servers[0].tls.credentialNames',
    message: 'at most 2 credentialNames',
  },
  {
    name: 'tlsCertificates entry without a key',
    obj: httpsTls({ mode: 'SIMPLE', tlsCertificates: [{ serverCertificate: '/etc/certs/rsa.pem' }] }),
    path: 'spec.servers[0].tls.tlsCertificates[0].privateKey',
    message: 'SIMPLE TLS requires a private key',
  },
  {
    name: 'misspelt TLS field',
    obj: httpsTls({ mode: 'SIMPLE', credentialname: 'bookinfo-credential' }),
    path: 'spec.servers[0].tls.credentialname',
    message: 'unknown field "credentialname" (did you mean "credentialName"?)',
  },
  { name: 'httpsRedirect as a string', obj: httpServer({ tls: { httpsRedirect: 'yes' } }), path: 'spec.servers[0].tls.httpsRedirect', message: 'must be true or false' },
  // ---- Secret ----
  { name: 'TLS secret without tls.key', obj: tlsSecret({ 'tls.crt': CERT }), path: 'data["tls.key"]', message: 'data key "tls.key" is required for type kubernetes.io/tls' },
  { name: 'TLS secret without tls.crt', obj: tlsSecret({ 'tls.key': KEY }), path: 'data["tls.crt"]', message: 'data key "tls.crt" is required' },
  {
    name: 'data value not base64',
    obj: tlsSecret({ 'tls.crt': CERT, 'tls.key': '-----BEGIN PRIVATE KEY-----' }),
    path: 'data["tls.key"]',
    message: 'value must be base64-encoded (illegal base64 data at input byte 0)',
  },
  { name: 'data value without padding', obj: secret({ data: { cert: 'QUJDRA' } }), path: 'data.cert', message: 'not a multiple of 4' },
  { name: 'data key with a space', obj: secret({ data: { 'tls crt': CERT } }), path: 'data["tls crt"]', message: 'a valid config key must consist of alphanumeric characters' },
  { name: 'data key ..', obj: secret({ data: { '..': CERT } }), path: 'data[".."]', message: "must not be '..'" },
  { name: 'data key starting with ..', obj: secret({ data: { '..cert': CERT } }), path: 'data["..cert"]', message: "must not start with '..'" },
  { name: 'data value a number', obj: secret({ data: { cert: 42 } }), path: 'data.cert', message: 'must be a string (got number)' },
  { name: 'data not a map', obj: secret({ data: 'cert' }), path: 'data', message: 'must be a map' },
  { name: 'stringData key invalid', obj: secret({ stringData: { 'ca cert': 'x' } }), path: 'stringData["ca cert"]', message: 'valid config key' },
  { name: 'Secret over 1 MiB', obj: secret({ stringData: { big: 'x'.repeat(1024 * 1024 + 1) } }), path: 'data', message: 'at most 1048576 bytes' },
  {
    name: 'dockerconfigjson that is not JSON',
    obj: secret({ type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{"auths":') } }),
    path: 'data[".dockerconfigjson"]',
    message: 'must be a JSON object',
  },
  {
    name: 'service account token without the annotation',
    obj: secret({ type: 'kubernetes.io/service-account-token' }),
    path: 'metadata.annotations["kubernetes.io/service-account.name"]',
    message: 'annotation is required',
  },
  {
    name: 'basic-auth without username and password',
    obj: secret({ type: 'kubernetes.io/basic-auth', data: {} }),
    path: 'data.username',
    message: '"username" or "password" is required',
  },
  {
    name: 'ssh-auth Secret with an empty key',
    obj: secret({ type: 'kubernetes.io/ssh-auth', data: { 'ssh-privatekey': '' } }),
    path: 'data.ssh-privatekey',
    message: 'is required (and must not be empty)',
  },
  { name: 'Secret type not a string', obj: secret({ type: 1, data: { cert: CERT } }), path: 'type', message: 'must be a string' },
];

const VALID: Array<{ name: string; obj: ConfigObject }> = [
  { name: 'egress ServiceEntry with DNS', obj: se(EGRESS) },
  {
    name: 'egress ServiceEntry for HTTP and HTTPS on several hosts',
    obj: seDns({
      hosts: ['api.example.com', 'www.example.com'],
      ports: [
        { number: 80, name: 'http', protocol: 'HTTP' },
        { number: 443, name: 'https', protocol: 'https' },
      ],
      exportTo: ['.'],
    }),
  },
  { name: 'STATIC ServiceEntry with endpoints', obj: se(STATIC) },
  { name: 'MESH_INTERNAL ServiceEntry with a workloadSelector', obj: se(SELECTED) },
  {
    name: 'DNS ServiceEntry with a wildcard host and endpoints',
    obj: seDns({
      hosts: ['*.example.com'],
      endpoints: [{ address: 'proxy.example.com', ports: { tls: 8443 } }, { address: '203.0.113.7' }],
      subjectAltNames: ['proxy.example.com'],
    }),
  },
  {
    name: 'DNS_ROUND_ROBIN with one endpoint',
    obj: seDns({ resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'lb.example.com', locality: 'us-east1/us-east1-b', weight: 5 }] }),
  },
  {
    name: 'NONE with CIDR addresses and several TCP hosts',
    obj: se({ hosts: ['a.example.com', 'b.example.com'], addresses: ['10.8.0.0/16', 'fd00::/64'], ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }], resolution: 'NONE' }),
  },
  { name: 'STATIC unix socket endpoint', obj: unixStatic({ address: 'unix:///var/run/app.sock' }) },
  { name: 'ServiceEntry exported to no other namespace (~)', obj: seDns({ exportTo: ['~'] }) },
  {
    name: 'ServiceEntry with protocol sniffing (no protocol) and a network-only endpoint',
    obj: seStatic({ ports: [{ number: 5432, name: 'tcp-pg' }], endpoints: [{ network: 'remote-vpc', labels: { app: 'db' } }] }),
  },
  { name: 'v1beta1 ServiceEntry', obj: object('ServiceEntry', 'networking.istio.io/v1beta1', { spec: EGRESS }) },
  { name: 'WorkloadEntry', obj: we({}) },
  { name: 'WorkloadEntry with a DNS address', obj: we({ address: 'vm-1.internal.example.com' }) },
  { name: 'WorkloadEntry with only a network', obj: we({ address: undefined }) },
  { name: 'WorkloadEntry on a unix socket', obj: we({ address: 'unix:///var/run/vm.sock', ports: undefined }) },
  { name: 'bookinfo-gateway with HTTP and HTTPS (SIMPLE, credentialName)', obj: gwServers([HTTP_SERVER, HTTPS_SERVER]) },
  { name: 'PASSTHROUGH server', obj: gwServer({ port: { number: 443, name: 'tls-passthrough', protocol: 'TLS' }, hosts: ['nginx.example.com'], tls: { mode: 'PASSTHROUGH' } }) },
  {
    name: 'PASSTHROUGH server with certificate fields (Istio ignores them with a warning)',
    obj: gwServer({ port: { number: 443, name: 'tls', protocol: 'TLS' }, hosts: ['nginx.example.com'], tls: { mode: 'PASSTHROUGH', credentialName: 'unused' } }),
  },
  { name: 'HTTPS passthrough (mode left at its default)', obj: gwServer({ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['*.example.com'], tls: {} }) },
  { name: 'AUTO_PASSTHROUGH east-west gateway', obj: gwServer({ port: { number: 15443, name: 'tls', protocol: 'TLS' }, hosts: ['*.local'], tls: { mode: 'AUTO_PASSTHROUGH' } }) },
  { name: 'HTTP server with httpsRedirect', obj: httpServer({ tls: { httpsRedirect: true } }) },
  {
    name: 'MUTUAL with credentialName and TLS options',
    obj: httpsTls({
      mode: 'MUTUAL',
      credentialName: 'bookinfo-credential',
      minProtocolVersion: 'TLSV1_2',
      maxProtocolVersion: 'TLSV1_3',
      cipherSuites: ['ECDHE-ECDSA-AES256-GCM-SHA384', '[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]'],
      subjectAltNames: ['client.example.com'],
    }),
  },
  { name: 'SIMPLE with certificate files', obj: httpsTls({ mode: 'SIMPLE', serverCertificate: '/etc/certs/server.pem', privateKey: '/etc/certs/key.pem' }) },
  { name: 'OPTIONAL_MUTUAL with two credentialNames', obj: httpsTls({ mode: 'OPTIONAL_MUTUAL', credentialNames: ['bookinfo-rsa', 'bookinfo-ecdsa'] }) },
  {
    name: 'SIMPLE with tlsCertificates',
    obj: httpsTls({
      mode: 'SIMPLE',
      tlsCertificates: [
        { serverCertificate: '/etc/certs/rsa.pem', privateKey: '/etc/certs/rsa.key' },
        { serverCertificate: '/etc/certs/ec.pem', privateKey: '/etc/certs/ec.key' },
      ],
    }),
  },
  { name: 'ISTIO_MUTUAL server', obj: httpsTls({ mode: 'ISTIO_MUTUAL' }) },
  {
    name: 'hosts with namespaces, wildcards and an IP',
    obj: httpServer({ hosts: ['prod/bookinfo.example.com', './*.example.com', '*/api.example.com', '*', 'prod/*', '192.0.2.10'] }),
  },
  {
    name: 'gRPC and Mongo servers',
    obj: gwServers([
      { port: { number: 9090, name: 'grpc', protocol: 'GRPC' }, hosts: ['grpc.example.com'] },
      { port: { number: 27017, name: 'mongo', protocol: 'MONGO' }, hosts: ['*'] },
    ]),
  },
  {
    name: 'server bound to an IP, and one to a unix socket',
    obj: gwServers([
      { ...HTTP_SERVER, bind: '10.0.0.1' },
      { ...HTTP_SERVER, port: { number: 0, name: 'uds', protocol: 'HTTP' }, bind: 'unix:///var/run/gw.sock' },
    ]),
  },
  {
    name: 'v1alpha3 Gateway',
    obj: object('Gateway', 'networking.istio.io/v1alpha3', { spec: { selector: { istio: 'ingressgateway' }, servers: [HTTP_SERVER] } }, { name: 'bookinfo-gateway' }),
  },
  { name: 'kubernetes.io/tls Secret', obj: tlsSecret({ 'tls.crt': CERT, 'tls.key': KEY, 'ca.crt': CACERT }) },
  { name: 'generic Secret with cert, key and cacert', obj: secret({ type: 'Opaque', data: { cert: CERT, key: KEY, cacert: CACERT } }) },
  {
    name: 'Secret with stringData, line-wrapped base64 and an empty value',
    obj: secret({ data: { key: `${KEY.slice(0, 64)}\n${KEY.slice(64)}`, empty: '' }, stringData: { cert: '-----BEGIN CERTIFICATE-----\n' } }),
  },
  { name: 'kubernetes.io/tls Secret given as stringData', obj: secret({ type: 'kubernetes.io/tls', stringData: { 'tls.crt': 'pem', 'tls.key': 'pem' } }) },
  { name: 'dockerconfigjson Secret', obj: secret({ type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{"auths":{}}') } }) },
];

test('the invalid-case table is large enough', () => {
  assert.ok(INVALID.length >= 50, `${INVALID.length} invalid cases`);
  const kinds = new Set(INVALID.map((c) => c.obj.kind));
  assert.deepEqual([...kinds].sort(), ['Gateway', 'Secret', 'ServiceEntry', 'WorkloadEntry']);
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
  const bases = [se(EGRESS), se(STATIC), se(SELECTED), we({}), gwServers([HTTP_SERVER, HTTPS_SERVER]), tlsSecret({ 'tls.crt': CERT, 'tls.key': KEY })];
  for (const b of bases) assert.deepEqual(validateObject(b), [], b.kind);
});

test('a Secret value that is not base64 is reported once, not also as a missing key', () => {
  const errors = validateObject(tlsSecret({ 'tls.crt': CERT, 'tls.key': 'not base64!' }));
  assert.deepEqual(
    errors.map((e) => e.path),
    ['data["tls.key"]'],
  );
});

test('Secret messages never contain the secret values', () => {
  const marker = 'TOP-SECRET-KEY-MATERIAL';
  const pem = `-----BEGIN PRIVATE KEY-----\n${marker}\n-----END PRIVATE KEY-----\n`;
  const objects = [
    // a PEM key pasted into data without base64-encoding it
    tlsSecret({ 'tls.crt': CERT, 'tls.key': pem }),
    tlsSecret({ 'tls.crt': CERT, 'tls.key': `${b64(pem)}!` }),
    secret({ data: { key: marker, 'bad key': marker } }),
    secret({ data: marker }),
    secret({ data: { key: 12345678 }, stringData: marker }),
    secret({ type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64(`{"auths": ${marker}`) } }),
    secret({ type: 'kubernetes.io/dockercfg', stringData: { '.dockercfg': `${marker} not json` } }),
    secret({ type: 'kubernetes.io/tls', stringData: { 'tls.key': pem } }, { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': pem } }),
  ];
  for (const o of objects) {
    const errors = validateObject(o);
    assert.ok(errors.length > 0, 'each object has a problem to report');
    const text = JSON.stringify(errors);
    for (const leak of [marker, 'BEGIN PRIVATE KEY', '12345678', b64(pem).slice(0, 24)]) {
      assert.ok(!text.includes(leak), `message leaks ${leak}: ${text}`);
    }
  }
});
