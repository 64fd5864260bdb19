/**
 * CUSTOM AuthorizationPolicy end to end over a real ADS stream: meshd serves the golden
 * security-extauthz folder (an HTTP and a gRPC ext_authz provider in mesh.yaml, CUSTOM policies
 * for web and api); the sidecars receive the shadow RBAC and ext_authz pair; removing the
 * provider's Service turns the pair into the deny-all filter (reported at spec.provider.name,
 * the rest still served), and restoring it brings the pair back.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { startMeshd } from '../src/meshd';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient, type Response } from './helpers/ads-client';

const protos = new EnvoyProtos();
const IN = path.join(__dirname, 'golden', 'security-extauthz', 'in');
const WEB = 'sidecar~10.50.0.10~web-1.shop~shop.svc.cluster.local';
const API = 'sidecar~10.50.0.20~api-1.shop~shop.svc.cluster.local';

type Obj = Record<string, unknown>;

/** The filter names of virtualInbound's chains for `port`: HTTP filters of the HCM, else the network filters. */
function inboundFilters(lds: Response, port: number): string[][] {
  const l = lds.resources.find((r) => r['name'] === 'virtualInbound') as { filter_chains: Obj[] };
  return l.filter_chains
    .filter((c) => ((c['filter_chain_match'] as Obj | undefined)?.['destination_port'] as Obj | undefined)?.['value'] === port)
    .map((c) => {
      const filters = c['filters'] as Obj[];
      const hcm = filters.find((f) => f['name'] === 'envoy.filters.network.http_connection_manager');
      const list = hcm ? ((hcm['typed_config'] as Obj)['http_filters'] as Obj[]) : filters;
      return list.map((f) => f['name'] as string);
    });
}

async function until(c: AdsClient, ok: (r: Response) => boolean): Promise<Response> {
  for (;;) {
    const r = await c.next(TypeUrl.Listener, 10_000);
    c.ack(r);
    if (ok(r)) return r;
  }
}

const hasPair = (chains: string[][]): boolean =>
  chains.length > 0 && chains.every((c) => c.includes('envoy.filters.http.ext_authz') || c.includes('envoy.filters.network.ext_authz'));

test('sidecars receive the CUSTOM pair over ADS; a provider whose service goes away becomes deny-all and comes back', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-extauthz-'));
  for (const f of fs.readdirSync(IN)) fs.copyFileSync(path.join(IN, f), path.join(dir, f));
  const meshd = await startMeshd({ configDir: dir, xdsPort: 0, debugPort: 0, monitoringPort: -1, debounceQuietMs: 20, logger: pino({ level: 'silent' }) });
  const web = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: WEB, metadata: { NAMESPACE: 'shop' } });
  const api = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: API, metadata: { NAMESPACE: 'shop' } });
  t.after(async () => {
    web.close();
    api.close();
    await meshd.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  await web.subscribe(TypeUrl.Cluster);
  await api.subscribe(TypeUrl.Cluster);
  const webLds = await web.subscribe(TypeUrl.Listener);
  const apiLds = await api.subscribe(TypeUrl.Listener);
  // web (HTTP provider): the pair first on its HTTP port, nothing of it on its TCP port.
  for (const chain of inboundFilters(webLds, 8080)) {
    assert.deepEqual(chain.slice(1, 4), ['envoy.filters.http.rbac', 'envoy.filters.http.ext_authz', 'envoy.filters.http.rbac'], 'after metadata exchange, before RBAC');
  }
  assert.ok(inboundFilters(webLds, 9191).every((c) => !c.includes('envoy.filters.network.ext_authz')));
  // api (gRPC provider): the pair on HTTP and TCP chains.
  assert.ok(hasPair(inboundFilters(apiLds, 8080)));
  assert.ok(hasPair(inboundFilters(apiLds, 9191)));
  assert.ok(JSON.stringify(apiLds.resources).includes('outbound|9000||ext-authz.auth.svc.cluster.local'));

  // The providers' Service goes away: both workloads deny all, the error names the policy field.
  const workloads = fs.readFileSync(path.join(dir, 'workloads.yaml'), 'utf8');
  const docs = workloads.split(/^---$/m);
  fs.writeFileSync(path.join(dir, 'workloads.yaml'), docs.filter((d) => !d.includes('name: ext-authz,')).join('---'));
  const denied = await until(web, (r) => JSON.stringify(r.resources).includes('default-deny-all-due-to-bad-CUSTOM-action'));
  assert.ok(!JSON.stringify(denied.resources).includes('envoy.filters.http.ext_authz'));
  await until(api, (r) => !JSON.stringify(r.resources).includes('ext_authz') && JSON.stringify(r.resources).includes('default-deny-all-due-to-bad-CUSTOM-action'));
  const errors = (meshd.snapshot()?.errors ?? []).filter((e) => e.kind === 'AuthorizationPolicy');
  assert.deepEqual(errors.map((e) => `${e.name}:${e.errors[0]?.path ?? ''}`).sort(), ['api-ext-authz:spec.provider.name', 'web-ext-authz:spec.provider.name']);
  assert.match(errors[0]?.errors[0]?.message ?? '', /could not find service/);

  // Back again: the pair returns.
  fs.writeFileSync(path.join(dir, 'workloads.yaml'), workloads);
  await until(web, (r) => hasPair(inboundFilters(r, 8080)));
  await until(api, (r) => hasPair(inboundFilters(r, 9191)));
});
