/**
 * The README's traffic-management walkthrough, step by step: each step copies the files of one
 * folder under examples/traffic-management/ over a working copy of examples/bookinfo (as
 * `kubectl apply` replaces objects of the same name), and the config a productpage sidecar then
 * receives is checked for what Istio's task of the same name promises. The last test applies a
 * step to a running meshd and watches the pushed RDS change on a real ADS stream.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient } from './helpers/ads-client';
import { render, snapshotFromDir } from './helpers/render';

const ROOT = path.join(__dirname, '..');
const BOOKINFO = path.join(ROOT, 'examples', 'bookinfo');
const STEPS = path.join(ROOT, 'examples', 'traffic-management');
const PRODUCTPAGE = 'sidecar~10.244.0.10~productpage-v1.default~default.svc.cluster.local';
const REVIEWS_V2 = 'sidecar~10.244.0.13~reviews-v2.default~default.svc.cluster.local';
const protos = new EnvoyProtos();

type J = Record<string, unknown>;

const host = (svc: string): string => `${svc}.default.svc.cluster.local`;
const cluster = (port: number, subset: string, svc: string): string => `outbound|${port}|${subset}|${host(svc)}`;

let work: string;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-walkthrough-'));
  for (const f of fs.readdirSync(BOOKINFO)) fs.copyFileSync(path.join(BOOKINFO, f), path.join(work, f));
});

after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Copies one step's files into the working folder and renders a proxy's config. */
function apply(step: string, proxyId = PRODUCTPAGE): { rds: J[]; cds: J[] } {
  const dir = path.join(STEPS, step);
  for (const f of fs.readdirSync(dir)) fs.copyFileSync(path.join(dir, f), path.join(work, f));
  const snap = snapshotFromDir(work);
  assert.deepEqual(snap.errors, [], `step ${step} leaves the mesh valid`);
  const out = render(protos, snap, proxyId, { NAMESPACE: 'default' });
  assert.deepEqual(out.rejected, [], 'every resource passes Envoy validation');
  return { rds: out.byType.RDS ?? [], cds: out.byType.CDS ?? [] };
}

/** The routes of the virtual host for `svc` in the route configuration named `port`. */
function routesOf(rds: J[], port: number, svc: string): J[] {
  const rc = rds.find((r) => r.name === String(port));
  assert.ok(rc, `route configuration ${port}`);
  const vh = (rc.virtual_hosts as J[]).find((v) => v.name === `${host(svc)}:${port}`);
  assert.ok(vh, `virtual host for ${svc}`);
  return vh.routes as J[];
}

const actionOf = (r: J | undefined): J => (r?.route ?? {}) as J;

function headerMatch(r: J | undefined): Array<[string, string]> {
  const headers = ((r?.match as J | undefined)?.headers ?? []) as J[];
  return headers.map((h) => [String(h.name), String(((h.string_match ?? {}) as J).exact ?? h.exact_match)]);
}

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };
/** An Envoy FractionalPercent as a fraction of 1. */
function fraction(p: unknown): number {
  const fp = (p ?? {}) as J;
  return Number(fp.numerator ?? 0) / (DENOMINATORS[String(fp.denominator ?? 'HUNDRED')] ?? 100);
}

function faultOf(r: J | undefined): J {
  const f = ((r?.typed_per_filter_config ?? {}) as J)['envoy.filters.http.fault'] as J | undefined;
  assert.ok(f, 'route carries a fault filter config');
  assert.equal(f['@type'], 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault');
  return f;
}

test('1 request routing: every reviews request goes to v1', () => {
  const routes = routesOf(apply('1-request-routing-all-v1').rds, 9080, 'reviews');
  assert.equal(routes.length, 1);
  assert.equal(actionOf(routes[0]).cluster, cluster(9080, 'v1', 'reviews'));
});

test('2 request routing: user jason goes to v2, everyone else to v1', () => {
  const routes = routesOf(apply('2-request-routing-jason').rds, 9080, 'reviews');
  assert.deepEqual(headerMatch(routes[0]), [['end-user', 'jason']]);
  assert.equal(actionOf(routes[0]).cluster, cluster(9080, 'v2', 'reviews'));
  assert.deepEqual(headerMatch(routes[1]), []);
  assert.equal(actionOf(routes[1]).cluster, cluster(9080, 'v1', 'reviews'));
});

test('3 fault injection: a 7 s delay on every ratings call for jason, none for others', () => {
  // reviews v2 is the bookinfo workload that calls ratings.
  const routes = routesOf(apply('3-fault-delay', REVIEWS_V2).rds, 9080, 'ratings');
  assert.deepEqual(headerMatch(routes[0]), [['end-user', 'jason']]);
  const delay = faultOf(routes[0]).delay as J;
  assert.deepEqual(delay.fixed_delay, { seconds: 7, nanos: 0 });
  assert.equal(fraction(delay.percentage), 1);
  assert.equal(((routes[1]?.typed_per_filter_config ?? {}) as J)['envoy.filters.http.fault'], undefined, 'no fault for other users');
});

test('4 fault injection: HTTP 500 on every ratings call for jason', () => {
  const routes = routesOf(apply('4-fault-abort', REVIEWS_V2).rds, 9080, 'ratings');
  const abort = faultOf(routes[0]).abort as J;
  assert.equal(abort.http_status, 500);
  assert.equal(fraction(abort.percentage), 1);
  assert.equal(faultOf(routes[0]).delay, undefined, 'the abort step replaced the delay');
});

test('5 traffic shifting: reviews split 50/50 between v1 and v3', () => {
  const routes = routesOf(apply('5-traffic-shifting-50-v3').rds, 9080, 'reviews');
  assert.equal(routes.length, 1);
  const wc = actionOf(routes[0]).weighted_clusters as J;
  assert.deepEqual(
    (wc.clusters as J[]).map((c) => [c.name, (c.weight as J).value]),
    [
      [cluster(9080, 'v1', 'reviews'), 50],
      [cluster(9080, 'v3', 'reviews'), 50],
    ],
  );
});

test('6 traffic shifting: all reviews traffic to v3', () => {
  const routes = routesOf(apply('6-traffic-shifting-v3').rds, 9080, 'reviews');
  assert.equal(actionOf(routes[0]).cluster, cluster(9080, 'v3', 'reviews'));
});

test('7 request timeouts: reviews times out after 0.5 s while ratings answers after 2 s', () => {
  const pp = routesOf(apply('7-timeouts').rds, 9080, 'reviews');
  assert.equal(actionOf(pp[0]).cluster, cluster(9080, 'v2', 'reviews'));
  assert.deepEqual(actionOf(pp[0]).timeout, { seconds: 0, nanos: 500_000_000 });
  const ratings = routesOf(apply('7-timeouts', REVIEWS_V2).rds, 9080, 'ratings');
  const delay = faultOf(ratings[0]).delay as J;
  assert.deepEqual(delay.fixed_delay, { seconds: 2, nanos: 0 });
  assert.equal(fraction(delay.percentage), 1);
});

test('8 circuit breaking: one connection, one pending request, ejection after one 5xx', () => {
  const { cds } = apply('8-circuit-breaking');
  const c = cds.find((x) => x.name === cluster(8000, '', 'httpbin'));
  assert.ok(c, 'httpbin cluster');
  const t = ((c.circuit_breakers as J).thresholds as J[])[0] as J;
  assert.equal((t.max_connections as J).value, 1);
  assert.equal((t.max_pending_requests as J).value, 1);
  const opts = ((c.typed_extension_protocol_options ?? {}) as J)['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'] as J;
  assert.equal(((opts.common_http_protocol_options as J).max_requests_per_connection as J).value, 1);
  const od = c.outlier_detection as J;
  assert.equal((od.consecutive_5xx as J).value, 1);
  assert.deepEqual(od.interval, { seconds: 1, nanos: 0 });
  assert.deepEqual(od.base_ejection_time, { seconds: 180, nanos: 0 });
  assert.equal((od.max_ejection_percent as J).value, 100);
});

test('9 mirroring: httpbin traffic to v1 with a copy of every request to v2', () => {
  const routes = routesOf(apply('9-mirroring').rds, 8000, 'httpbin');
  const action = actionOf(routes[0]);
  assert.equal(action.cluster, cluster(8000, 'v1', 'httpbin'));
  const mirrors = action.request_mirror_policies as J[];
  assert.equal(mirrors.length, 1);
  assert.equal(mirrors[0]?.cluster, cluster(8000, 'v2', 'httpbin'));
  assert.equal(fraction((mirrors[0]?.runtime_fraction as J).default_value), 1);
});

test('a step applied to a running meshd reaches a connected sidecar', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-walkthrough-live-'));
  for (const f of fs.readdirSync(BOOKINFO)) fs.copyFileSync(path.join(BOOKINFO, f), path.join(dir, f));
  const meshd: MeshdHandle = await startMeshd({ configDir: dir, xdsPort: 0, debugPort: 0, monitoringPort: -1, logger: pino({ level: 'silent' }) });
  const c = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: PRODUCTPAGE, metadata: { NAMESPACE: 'default' } });
  try {
    const first = await c.subscribe(TypeUrl.Route, ['9080']);
    assert.equal(actionOf(routesOf(first.resources, 9080, 'reviews').at(-1)).cluster, cluster(9080, 'v1', 'reviews'));
    const step = path.join(STEPS, '5-traffic-shifting-50-v3', 'virtualservice-reviews.yaml');
    fs.writeFileSync(path.join(dir, '.reviews.tmp'), fs.readFileSync(step));
    fs.renameSync(path.join(dir, '.reviews.tmp'), path.join(dir, 'virtualservice-reviews.yaml'));
    const pushed = await c.next(TypeUrl.Route, 10_000);
    const wc = actionOf(routesOf(pushed.resources, 9080, 'reviews')[0]).weighted_clusters as J;
    assert.deepEqual(
      (wc.clusters as J[]).map((x) => x.name),
      [cluster(9080, 'v1', 'reviews'), cluster(9080, 'v3', 'reviews')],
    );
  } finally {
    c.close();
    await meshd.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
