/**
 * WasmPlugin: istiod's validation rules and messages, and ECDS over real ADS streams. meshd serves
 * the wasmplugin golden case's folder; a sidecar that subscribes to LDS and then to the ECDS names
 * its listeners reference gets exactly those TypedExtensionConfigs; a changed pluginConfig pushes
 * ECDS and not LDS, a changed phase pushes LDS; a delta stream gets ECDS by name as well.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import YAML from 'yaml';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import type { ConfigObject } from '../src/model/objects';
import { validateObject } from '../src/model/validate';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient, type Response } from './helpers/ads-client';
import { DeltaAdsClient } from './helpers/delta-client';

const ROOT = path.join(__dirname, '..');
const IN = path.join(ROOT, 'test', 'golden', 'wasmplugin', 'in');
const SIDECAR_ID = 'sidecar~10.244.0.12~reviews-v1.default~default.svc.cluster.local';
const PREFIX = 'extensions.istio.io/wasmplugin/';
const protos = new EnvoyProtos();

type J = Record<string, unknown>;

function wasmPlugin(spec: unknown): ConfigObject {
  return {
    kind: 'WasmPlugin',
    apiVersion: 'extensions.istio.io/v1alpha1',
    metadata: { name: 'p', namespace: 'default', labels: {}, annotations: {} },
    body: { spec },
    origin: { source: 'test' },
  };
}

const URL = 'oci://registry.example/p:1';
const CASES: Array<[string, unknown, string[]]> = [
  ['a plain OCI plugin', { url: URL }, []],
  ['a bare image reference (read as oci://)', { url: 'registry.example/p:1' }, []],
  ['file, http and https urls', { url: 'file:///opt/p.wasm', phase: 'AUTHZ', priority: 5, type: 'HTTP' }, []],
  ['no spec', undefined, ['spec.url: url field needs to be set']],
  ['no url', { phase: 'AUTHN' }, ['spec.url: url field needs to be set']],
  ['an unsupported scheme', { url: 'ftp://host/p.wasm' }, ['spec.url: url contains unsupported scheme: ftp']],
  ['a short sha256', { url: URL, sha256: 'abc' }, ['spec.sha256: sha256 field must be 64 characters long']],
  ['an uppercase sha256', { url: URL, sha256: 'A'.repeat(64) }, ['spec.sha256: sha256 field must match [a-f0-9]{64} pattern']],
  ['a long imagePullSecret', { url: URL, imagePullSecret: 's'.repeat(254) }, ['spec.imagePullSecret: imagePullSecret field must be less than 253 characters long']],
  ['a long pluginName', { url: URL, pluginName: 'n'.repeat(257) }, ['spec.pluginName: pluginName field must be less than 255 characters long']],
  ['an env without a name', { url: URL, vmConfig: { env: [{ value: 'x' }] } }, ['spec.vmConfig.env[0].name: spec.vmConfig.env invalid']],
  [
    'a duplicate env',
    {
      url: URL,
      vmConfig: {
        env: [
          { name: 'A', value: '1' },
          { name: 'A', value: '2' },
        ],
      },
    },
    ['spec.vmConfig.env[1].name: duplicate env "A"'],
  ],
  [
    'a match port by name',
    { url: URL, match: [{ mode: 'SERVER', ports: [{ name: 'http' }] }] },
    ['spec.match[0].ports[0].name: spec.Match[0].Ports[0] is not supported in WasmPlugin'],
  ],
  ['an unknown phase', { url: URL, phase: 'AUTH' }, ['spec.phase: must be one of UNSPECIFIED_PHASE, AUTHN, AUTHZ, STATS (got "AUTH")']],
  [
    'selector and targetRefs together',
    { url: URL, selector: { matchLabels: { app: 'a' } }, targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'gw' }] },
    ['spec: only one of targetRefs or workloadSelector can be set'],
  ],
];

for (const [name, spec, want] of CASES) {
  test(`WasmPlugin validation: ${name}`, () => {
    assert.deepEqual(
      validateObject(wasmPlugin(spec)).map((e) => `${e.path}: ${e.message}`),
      want,
    );
  });
}

test('WasmPlugin validation: an unknown field says which one was meant', () => {
  const errs = validateObject(wasmPlugin({ url: URL, pluginConfg: {} })).map((e) => `${e.path}: ${e.message}`);
  assert.equal(errs.length, 1);
  assert.match(errs[0] ?? '', /^spec\.pluginConfg: .*did you mean "pluginConfig"/);
});

let dir: string;
let meshd: MeshdHandle;
const clients: { close(): void }[] = [];

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-wasm-'));
  for (const f of fs.readdirSync(IN)) fs.copyFileSync(path.join(IN, f), path.join(dir, f));
  meshd = await startMeshd({ configDir: dir, xdsPort: 0, secureXdsPort: -1, debugPort: 0, monitoringPort: -1, logger: pino({ level: 'silent' }) });
});

after(async () => {
  for (const c of clients) c.close();
  await meshd.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Every ECDS name the listeners reference (config_discovery filters, HTTP and network). */
function referencedNames(lds: Response): string[] {
  const out = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const o = v as J;
    if (o['config_discovery'] && typeof o['name'] === 'string') out.add(o['name']);
    Object.values(o).forEach(walk);
  };
  walk(lds.resources);
  return [...out].sort();
}

/** The HTTP filter names of virtualInbound's first chain for port 9080 with an HTTP connection manager. */
function inboundHttpFilters(lds: Response): string[] {
  const inbound = lds.resources.find((l) => l['name'] === 'virtualInbound') as J;
  for (const chain of inbound['filter_chains'] as J[]) {
    const port = ((chain['filter_chain_match'] as J | undefined)?.['destination_port'] as J | undefined)?.['value'];
    const hcm = (chain['filters'] as J[]).find((f) => f['name'] === 'envoy.filters.network.http_connection_manager');
    if (port === 9080 && hcm) return ((hcm['typed_config'] as J)['http_filters'] as J[]).map((f) => String(f['name']));
  }
  return [];
}

/** Rewrites one WasmPlugin of wasm.yaml in the served folder. */
function editPlugin(name: string, edit: (spec: J) => void): void {
  const file = path.join(dir, 'wasm.yaml');
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJSON() as J);
  const doc = docs.find((d) => d['kind'] === 'WasmPlugin' && (d['metadata'] as J)['name'] === name);
  assert.ok(doc, name);
  edit(doc['spec'] as J);
  fs.writeFileSync(file, docs.map((d) => YAML.stringify(d)).join('---\n'));
}

test('a sidecar subscribing LDS then ECDS gets exactly the configs its listeners reference; plugin changes push ECDS, and LDS only when the chain changes', async () => {
  const c = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: SIDECAR_ID, metadata: { NAMESPACE: 'default' } });
  clients.push(c);
  await c.subscribe(TypeUrl.Cluster);
  const lds = await c.subscribe(TypeUrl.Listener);
  const names = referencedNames(lds);
  assert.deepEqual(
    inboundHttpFilters(lds).filter((n) => n.startsWith(PREFIX) || n === 'envoy.filters.http.rbac'),
    [`${PREFIX}istio-system.mesh-authn`, `${PREFIX}default.reviews-authz-high`, `${PREFIX}default.reviews-authz-low`, 'envoy.filters.http.rbac', `${PREFIX}default.reviews-stats`],
    'AUTHN, AUTHZ by priority, RBAC, STATS; the CLIENT plugin is not on inbound',
  );
  assert.deepEqual(
    names,
    ['istio-system.mesh-authn', 'default.reviews-authz-high', 'default.reviews-authz-low', 'default.reviews-client', 'default.reviews-stats', 'default.reviews-tcp']
      .map((n) => PREFIX + n)
      .sort(),
  );
  // Asked for one more name than referenced (a plugin for another workload): it is not served.
  const ecds = await c.subscribe(TypeUrl.ExtensionConfig, [...names, `${PREFIX}default.ratings-only`]);
  assert.deepEqual([...ecds.names].sort(), names, 'exactly the referenced configs');
  const authn = ecds.resources.find((r) => r['name'] === `${PREFIX}istio-system.mesh-authn`) as J;
  const cfg = (authn['typed_config'] as J)['config'] as J;
  assert.deepEqual((cfg['configuration'] as J)['value'], '{"header":"x-mesh-user","required":true}');
  c.ack(ecds, [...names, `${PREFIX}default.ratings-only`]);
  assert.deepEqual(await c.drain(300), []);
  const syncz = (await (await fetch(`http://127.0.0.1:${meshd.debugPort}/debug/syncz`)).json()) as J[];
  const mine = syncz.find((p) => p['proxy'] === SIDECAR_ID) as J;
  assert.equal(((mine['types'] as J)['ECDS'] as J)['status'], 'SYNCED', 'syncz shows the ECDS stream synced');
  assert.equal(mine['extensionconfig_acked'], mine['extensionconfig_sent']);
  // config_dump shows them as Envoy's admin does (EcdsConfigDump).
  const dump = (await (await fetch(`http://127.0.0.1:${meshd.debugPort}/debug/config_dump?proxyID=${encodeURIComponent(SIDECAR_ID)}`)).json()) as { configs: J[] };
  const ecdsDump = dump.configs.find((x) => x['@type'] === 'type.googleapis.com/envoy.admin.v3.EcdsConfigDump') as { ecdsFilters: { ecdsFilter: J }[] };
  assert.deepEqual(ecdsDump.ecdsFilters.map((f) => f.ecdsFilter['name']).sort(), names);

  // pluginConfig only: the Wasm config changes, the filter chain does not.
  editPlugin('mesh-authn', (s) => {
    s['pluginConfig'] = { header: 'x-other-user' };
  });
  const pushed = await c.next(undefined, 5000);
  assert.equal(pushed.type_url, TypeUrl.ExtensionConfig, 'ECDS is pushed');
  assert.ok(pushed.names.includes(`${PREFIX}istio-system.mesh-authn`));
  const changed = pushed.resources.find((r) => r['name'] === `${PREFIX}istio-system.mesh-authn`) as J;
  assert.equal((((changed['typed_config'] as J)['config'] as J)['configuration'] as J)['value'], '{"header":"x-other-user"}');
  c.ack(pushed, [...names, `${PREFIX}default.ratings-only`]);
  assert.deepEqual(
    (await c.drain(400)).map((r) => r.type_url),
    [],
    'LDS is not pushed for a pluginConfig change',
  );

  // A new phase moves the filter: LDS is pushed.
  editPlugin('reviews-authz-low', (s) => {
    s['phase'] = 'STATS';
  });
  const types = new Set<string>();
  for (;;) {
    const r = await c.next(undefined, 5000);
    types.add(r.type_url);
    c.ack(r, r.type_url === TypeUrl.ExtensionConfig ? [...names, `${PREFIX}default.ratings-only`] : undefined);
    if (r.type_url === TypeUrl.Listener) {
      const order = inboundHttpFilters(r);
      assert.deepEqual(
        order.filter((n) => n.startsWith(PREFIX) || n === 'envoy.filters.http.rbac'),
        [
          `${PREFIX}istio-system.mesh-authn`,
          `${PREFIX}default.reviews-authz-high`,
          'envoy.filters.http.rbac',
          `${PREFIX}default.reviews-stats`,
          `${PREFIX}default.reviews-authz-low`,
        ],
        'the plugin moved from AUTHZ to STATS now follows RBAC, after the STATS plugin of higher priority',
      );
      break;
    }
  }
  assert.ok(types.has(TypeUrl.Listener));
});

test('a delta stream gets ECDS by name, only configs that apply to the proxy', async () => {
  const c = new DeltaAdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: SIDECAR_ID, metadata: { NAMESPACE: 'default' } });
  clients.push(c);
  const r = await c.subscribe(TypeUrl.ExtensionConfig, [`${PREFIX}default.reviews-tcp`, `${PREFIX}default.ratings-only`]);
  assert.deepEqual(r.names, [`${PREFIX}default.reviews-tcp`]);
  const body = r.resources[0]?.body as J;
  assert.equal((body['typed_config'] as J)['@type'], 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm', 'a NETWORK plugin');
});

test('a proxyless gRPC client asking for ECDS gets none (gRPC has no Wasm), even for a plugin that selects its labels', async () => {
  const c = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, {
    id: 'sidecar~10.244.0.70~client-0.default~default.svc.cluster.local',
    metadata: { NAMESPACE: 'default', GENERATOR: 'grpc' },
  });
  clients.push(c);
  const r = await c.subscribe(TypeUrl.ExtensionConfig, [`${PREFIX}istio-system.mesh-authn`]);
  assert.deepEqual(r.resources, []);
});
