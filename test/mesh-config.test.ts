/**
 * MeshConfig as istiod reads it: defaults, merge rules, unknown fields (warnings with a "did you
 * mean"), ValidateMeshConfig's checks with field paths, the last good MeshConfig kept when a new
 * one is invalid, the settings reaching the snapshot, and mesh-wide defaultConfig reaching
 * injected pods through the webhook.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { buildSnapshot } from '../src/model/build';
import { parseMeshConfig } from '../src/model/mesh-config';
import type { ConfigObject } from '../src/model/objects';
import { webhookApp } from '../src/webhook/server';
import { resolveInjectionOptions } from '../src/inject/options';
import { checkObject } from '../src/model/validate';
import { FileSource, holdsObjects } from '../src/sources/file-source';

function build(
  text: string | undefined,
  previous?: ReturnType<typeof buildSnapshot>,
  objects: ConfigObject[] = [],
  flags: { trustDomain?: string; trustDomainAliases?: string[] } = {},
) {
  return buildSnapshot({
    objects,
    errors: [],
    sequence: previous ? 2 : 1,
    now: new Date(0),
    domain: 'cluster.local',
    ...flags,
    ...(text !== undefined ? { mesh: { source: 'mesh.yaml', text } } : {}),
    ...(previous ? { previous } : {}),
  });
}

test('no MeshConfig: istiod defaults (ALLOW_ANY, no access log, 10s, auto mTLS, istio-system)', () => {
  const s = build(undefined);
  assert.equal(s.outboundTrafficPolicy, 'ALLOW_ANY');
  assert.equal(s.accessLog, undefined);
  assert.deepEqual(s.connectTimeout, { seconds: 10, nanos: 0 });
  assert.equal(s.enableAutoMtls, true);
  assert.equal(s.rootNamespace, 'istio-system');
  assert.deepEqual(s.localityLbSetting, { enabled: true });
  assert.equal(s.meshConfig.defaultConfig['discoveryAddress'], 'istiod.istio-system.svc:15012');
  assert.equal(s.meshStatus.source, undefined);
});

test('fields given replace defaults; defaultConfig merges into the default ProxyConfig; snake_case names accepted', () => {
  const r = parseMeshConfig(
    [
      'outboundTrafficPolicy: { mode: REGISTRY_ONLY }',
      'access_log_file: /dev/stdout',
      'connectTimeout: 0.25s',
      'rootNamespace: mesh-root',
      'defaultConfig:',
      '  holdApplicationUntilProxyStarts: true',
      '  proxyMetadata: { ISTIO_META_DNS_CAPTURE: "true" }',
    ].join('\n'),
  );
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.warnings, []);
  const c = r.config;
  assert.ok(c);
  assert.equal(c.outboundTrafficPolicy.mode, 'REGISTRY_ONLY');
  assert.equal(c.accessLogFile, '/dev/stdout');
  assert.equal(c.connectTimeout, '0.25s');
  assert.equal(c.rootNamespace, 'mesh-root');
  assert.equal(c.defaultConfig['holdApplicationUntilProxyStarts'], true);
  assert.deepEqual(c.defaultConfig['proxyMetadata'], { ISTIO_META_DNS_CAPTURE: 'true' });
  // The rest of the default ProxyConfig stays.
  assert.equal(c.defaultConfig['statusPort'], 15020);
  // Fields meshd does not act on are stored as given, defaults kept.
  assert.equal(parseMeshConfig('enablePrometheusMerge: false').config?.other['enablePrometheusMerge'], false);
  assert.equal(parseMeshConfig('').config?.other['ingressClass'], 'istio');
});

test('the ConfigMap istio itself is accepted (its data.mesh)', () => {
  const r = parseMeshConfig('apiVersion: v1\nkind: ConfigMap\nmetadata: { name: istio }\ndata:\n  mesh: |\n    accessLogFile: /dev/stdout\n');
  assert.equal(r.config?.accessLogFile, '/dev/stdout');
});

test('unknown fields are warnings with a field path and a "did you mean"; the rest applies', () => {
  const r = parseMeshConfig('outboundTraficPolicy: { mode: REGISTRY_ONLY }\naccessLogFile: /dev/stdout\ndefaultConfig:\n  proxyMetadta: { A: b }\nnoSuchThing: 1\n');
  assert.deepEqual(r.errors, []);
  assert.ok(r.config);
  assert.equal(r.config.accessLogFile, '/dev/stdout');
  assert.equal(r.config.outboundTrafficPolicy.mode, 'ALLOW_ANY');
  assert.deepEqual(
    r.warnings.map((w) => `${w.path}: ${w.message}`),
    [
      'outboundTraficPolicy: unknown field "outboundTraficPolicy" (did you mean "outboundTrafficPolicy"?)',
      'defaultConfig.proxyMetadta: unknown field "proxyMetadta" (did you mean "proxyMetadata"?)',
      'noSuchThing: unknown field "noSuchThing"',
    ],
  );
});

test("ValidateMeshConfig's checks, with field paths", () => {
  const cases: Array<[string, string, RegExp]> = [
    ['connectTimeout: 0s', 'connectTimeout', /duration must be greater than 1ms/],
    ['connectTimeout: 0.0005s', 'connectTimeout', /greater than 1ms/],
    ['connectTimeout: 1.0001s', 'connectTimeout', /ms precision/],
    ['connectTimeout: 7200s', 'connectTimeout', /must be >1ms and <1h0m0s/],
    ['connectTimeout: 100ms', 'connectTimeout', /invalid duration "100ms"/],
    ['protocolDetectionTimeout: 0.0000001s', 'protocolDetectionTimeout', /ms precision/],
    ['trustDomain: Bad_Domain', 'trustDomain', /trust domain name "Bad_Domain" invalid/],
    ['trustDomainAliases: [ok.example, "x..y"]', 'trustDomainAliases[1]', /domain `x..y`/],
    ['outboundTrafficPolicy: { mode: DENY }', 'outboundTrafficPolicy.mode', /must be one of REGISTRY_ONLY, ALLOW_ANY/],
    ['accessLogEncoding: XML', 'accessLogEncoding', /must be one of TEXT, JSON/],
    ['enableAutoMtls: "yes"', 'enableAutoMtls', /must be true or false/],
    ['proxyListenPort: 70000', 'proxyListenPort', /port number 70000/],
    ['defaultConfig: { discoveryAddress: "istiod" }', 'defaultConfig.discoveryAddress', /invalid discovery address: unable to split/],
    ['defaultConfig: { discoveryAddress: "bad_host:15012" }', 'defaultConfig.discoveryAddress', /not a valid hostname/],
    ['defaultConfig: { proxyMetadata: { A: 1 } }', 'defaultConfig.proxyMetadata.A', /must be a string/],
    ['defaultConfig: { statusPort: 0 }', 'defaultConfig.statusPort', /invalid status port/],
    [
      'localityLbSetting: { distribute: [{ from: a/b, to: { c: 50 } }], failover: [{ from: a, to: b }] }',
      'localityLbSetting',
      /can not simultaneously specify 'distribute' and 'failover'/,
    ],
    ['localityLbSetting: { distribute: [{ from: "a/*", to: { c: 40, d: 50 } }] }', 'localityLbSetting.distribute[0].to', /total locality weight 90 != 100/],
    ['localityLbSetting: { failover: [{ from: us, to: us }] }', 'localityLbSetting.failover[0]', /must specify different regions/],
    ['defaultServiceExportTo: ["Not A Namespace"]', 'defaultServiceExportTo[0]', /is not a namespace name/],
    ['rootNamespace: Root_NS', 'rootNamespace', /is not a namespace name/],
    ['accessLogFile: [a]', 'accessLogFile', /must be a string/],
    ['{ unterminated', '', /cannot parse mesh config/],
    ['- a list', '', /must be a mapping/],
  ];
  for (const [text, path, message] of cases) {
    const r = parseMeshConfig(text);
    assert.equal(r.config, undefined, `${text} must be refused`);
    assert.ok(
      r.errors.some((e) => e.path === path && message.test(e.message)),
      `${text}: expected ${path}: ${message}, got ${JSON.stringify(r.errors)}`,
    );
  }
});

test('an invalid MeshConfig keeps the last good one, with the error reported; a fixed one applies', () => {
  const good = build('outboundTrafficPolicy: { mode: REGISTRY_ONLY }\naccessLogFile: /dev/stdout\n');
  assert.equal(good.outboundTrafficPolicy, 'REGISTRY_ONLY');
  const bad = build('outboundTrafficPolicy: { mode: ALLOW_ANY }\nconnectTimeout: 0s\n', good);
  assert.equal(bad.outboundTrafficPolicy, 'REGISTRY_ONLY', 'the last good MeshConfig stays');
  assert.equal(bad.meshConfig, good.meshConfig, 'the same object: nothing generated from it is rebuilt');
  assert.equal(bad.accessLog, good.accessLog);
  assert.equal(bad.meshStatus.keptLastGood, true);
  const err = bad.errors.find((e) => e.kind === 'MeshConfig');
  assert.ok(err, 'reported with the other config errors');
  assert.equal(err.source, 'mesh.yaml');
  assert.ok(err.errors.some((f) => f.path === 'connectTimeout' && /greater than 1ms/.test(f.message)));
  assert.ok(err.errors.some((f) => /last good one is kept/.test(f.message)));
  // Invalid from the start: the defaults, and the error.
  const first = build('connectTimeout: 0s');
  assert.equal(first.outboundTrafficPolicy, 'ALLOW_ANY');
  assert.ok(first.errors.some((e) => e.kind === 'MeshConfig' && e.errors.some((f) => /defaults are used/.test(f.message))));
  // Fixed: applies, no error.
  const fixed = build('outboundTrafficPolicy: { mode: ALLOW_ANY }', bad);
  assert.equal(fixed.outboundTrafficPolicy, 'ALLOW_ANY');
  assert.equal(fixed.errors.length, 0);
  // The content hash follows the MeshConfig, so a MeshConfig change alone is a new version to push.
  assert.notEqual(fixed.version.split('-')[1], bad.version.split('-')[1]);
});

test('trust domain: the flags are the defaults; MeshConfig trustDomain wins, aliases add up', () => {
  const flags = { trustDomain: 'flag.example', trustDomainAliases: ['old.example'] };
  assert.deepEqual(build(undefined, undefined, [], flags).trustDomains, ['flag.example', 'old.example']);
  assert.deepEqual(build('trustDomainAliases: [legacy.example]', undefined, [], flags).trustDomains, ['flag.example', 'legacy.example', 'old.example']);
  assert.deepEqual(build('trustDomain: mesh.example', undefined, [], flags).trustDomains, ['mesh.example', 'old.example']);
});

const obj = (kind: ConfigObject['kind'], namespace: string, name: string, body: Record<string, unknown>): ConfigObject => ({
  kind,
  apiVersion: kind === 'Service' ? 'v1' : 'networking.istio.io/v1',
  metadata: { name, namespace, labels: {}, annotations: {} },
  body: { metadata: { name, namespace }, ...body },
  origin: { source: 'test' },
});

test('default exportTo and rootNamespace from the MeshConfig', () => {
  const objects = [
    obj('Service', 'a', 'svc', { spec: { ports: [{ name: 'http', port: 80 }] } }),
    obj('VirtualService', 'a', 'vs', { spec: { hosts: ['svc'], http: [{ route: [{ destination: { host: 'svc' } }] }] } }),
    obj('DestinationRule', 'a', 'dr', { spec: { host: 'svc' } }),
    obj('Service', 'b', 'open', { metadata: { name: 'open', namespace: 'b', annotations: { 'networking.istio.io/exportTo': '*' } }, spec: { ports: [{ port: 81 }] } }),
  ];
  const s = build(
    'defaultServiceExportTo: ["."]\ndefaultVirtualServiceExportTo: ["~"]\ndefaultDestinationRuleExportTo: [".", "b"]\nrootNamespace: mesh-root\n',
    undefined,
    objects,
  );
  assert.deepEqual(s.serviceByHost.get('svc.a.svc.cluster.local')?.exportTo, ['a']);
  assert.deepEqual(s.virtualServices[0]?.exportTo, []);
  assert.deepEqual(s.destinationRules[0]?.exportTo, ['a', 'b']);
  assert.equal(s.rootNamespace, 'mesh-root');
  const d = build(undefined, undefined, objects);
  assert.deepEqual(d.serviceByHost.get('svc.a.svc.cluster.local')?.exportTo, ['*']);
});

test('the webhook injects the MeshConfig defaultConfig: mesh-wide proxyMetadata without an annotation, and holdApplicationUntilProxyStarts', async () => {
  const s = build('defaultConfig:\n  holdApplicationUntilProxyStarts: true\n  proxyMetadata: { ISTIO_META_DNS_CAPTURE: "true", MESH_WIDE: "yes" }\n');
  const injection = { clusterDomain: 'cluster.local' };
  const meshInjection = () => ({ proxyConfig: s.meshConfig.defaultConfig, trustDomain: s.meshConfig.trustDomain });
  const log = pino({ level: 'silent' });
  const app = webhookApp({ host: '127.0.0.1', port: 0, log, validate: (o) => checkObject(o), injection, meshInjection }, undefined, resolveInjectionOptions(injection));
  try {
    const body = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u1',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        resource: { group: '', version: 'v1', resource: 'pods' },
        namespace: 'default',
        operation: 'CREATE',
        object: {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'app', namespace: 'default', labels: { 'sidecar.istio.io/inject': 'true' } },
          spec: { containers: [{ name: 'app', image: 'app' }] },
        },
      },
    };
    const res = await app.inject({ method: 'POST', url: '/inject', payload: body });
    assert.equal(res.statusCode, 200, res.body);
    const response = (res.json() as { response: { allowed: boolean; patch: string } }).response;
    assert.equal(response.allowed, true);
    const patch = JSON.parse(Buffer.from(response.patch, 'base64').toString()) as Array<{ op: string; path: string; value: unknown }>;
    // holdApplicationUntilProxyStarts puts istio-proxy first: the patch inserts it at index 0.
    const first = patch.find((p) => p.op === 'add' && p.path === '/spec/containers/0');
    assert.ok(first, JSON.stringify(patch.map((p) => p.path)));
    const proxy = first.value as { name: string; env?: Array<{ name: string; value?: string }>; lifecycle?: unknown };
    assert.equal(proxy.name, 'istio-proxy');
    assert.deepEqual(proxy?.lifecycle, { postStart: { exec: { command: ['pilot-agent', 'wait'] } } });
    const env = new Map((proxy?.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.get('MESH_WIDE'), 'yes');
    assert.equal(env.get('ISTIO_META_DNS_CAPTURE'), 'true');
    const pc = JSON.parse(env.get('PROXY_CONFIG') ?? '{}') as Record<string, unknown>;
    assert.deepEqual(pc['proxyMetadata'], { ISTIO_META_DNS_CAPTURE: 'true', MESH_WIDE: 'yes' });
  } finally {
    await app.close();
  }
});

test('a folder mesh.yaml holding objects stays objects; one holding a MeshConfig or the istio ConfigMap is the MeshConfig', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-meshyaml-'));
  try {
    const svc = 'apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: default}\nspec: {ports: [{name: http, port: 80}]}\n';
    fs.writeFileSync(path.join(dir, 'mesh.yaml'), svc);
    let src = new FileSource(dir);
    src.load();
    let st = src.state();
    assert.deepEqual(
      st.objects.map((o) => `${o.kind}/${o.metadata.name}`),
      ['Service/a'],
    );
    assert.equal(st.mesh, undefined);
    assert.deepEqual(st.errors, []);
    for (const text of [
      'outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n',
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: "enableTracing: true"\n',
    ]) {
      fs.writeFileSync(path.join(dir, 'mesh.yaml'), text);
      src = new FileSource(dir);
      src.load();
      st = src.state();
      assert.deepEqual(st.objects, []);
      assert.equal(st.mesh?.text, text);
    }
    assert.equal(holdsObjects(`${svc}---\n${svc}`), true);
    assert.equal(holdsObjects('---\nenableTracing: true\n'), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
