/**
 * The control-plane metrics Istio's dashboards query, counted where the events happen: a folder
 * edit (pilot_k8s_cfg_events, pilot_k8s_reg_events), a validating webhook review
 * (galley_validation_*), an injection review (sidecar_injection_*_total), on a running meshd.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { copyExample } from './helpers/meshd-process';

const T = { timeout: 60_000 };
let meshd: MeshdHandle;
let dir: string;

before(async () => {
  dir = copyExample('bookinfo');
  meshd = await startMeshd({
    configDir: dir,
    xdsPort: 0,
    secureXdsPort: -1,
    debugPort: 0,
    monitoringPort: 0,
    webhookPort: 0,
    configRescanIntervalMs: 0,
    logger: pino({ level: 'silent' }),
  });
  await meshd.caReady();
});

after(async () => {
  await meshd.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function metrics(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${meshd.monitoringPort}/metrics`)).text();
}

/** The value of one series (0 when absent). */
function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Waits (no deadline but the test's) until the series reaches n: the folder watch is asynchronous. */
async function until(series: string, n: number): Promise<void> {
  while (value(await metrics(), series) < n) await new Promise((r) => setTimeout(r, 20));
}

async function review(urlPath: string, request: Record<string, unknown>): Promise<Record<string, unknown>> {
  for (;;) {
    if (meshd.webhookCaPem()) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u1', ...request } });
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: meshd.webhookPort,
        path: urlPath,
        method: 'POST',
        servername: 'istiod.istio-system.svc',
        ca: meshd.webhookCaPem(),
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('pilot_k8s_cfg_events and pilot_k8s_reg_events count the objects a folder edit adds, updates and deletes', T, async () => {
  const start = await metrics();
  // The initial read counts as adds, as an informer's initial list does.
  assert.ok(value(start, 'pilot_k8s_reg_events{type="Services",event="add"}') >= 4, start);
  assert.ok(value(start, 'pilot_k8s_cfg_events{type="VirtualService",event="add"}') >= 1, start);
  const vsAdd = value(start, 'pilot_k8s_cfg_events{type="VirtualService",event="add"}');
  const svcAdd = value(start, 'pilot_k8s_reg_events{type="Services",event="add"}');

  const f = path.join(dir, 'extra.yaml');
  const vs = (weight: string): string =>
    `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: extra, namespace: default }\nspec:\n  hosts: [extra]\n  http:\n  - route:\n    - destination: { host: ratings${weight} }\n`;
  const svc = 'apiVersion: v1\nkind: Service\nmetadata: { name: extra, namespace: default }\nspec:\n  ports: [{ name: http, port: 80 }]\n';
  fs.writeFileSync(f, `${vs('')}---\n${svc}`);
  await until('pilot_k8s_cfg_events{type="VirtualService",event="add"}', vsAdd + 1);
  await until('pilot_k8s_reg_events{type="Services",event="add"}', svcAdd + 1);

  fs.writeFileSync(f, `${vs('.default.svc.cluster.local')}---\n${svc}`);
  await until('pilot_k8s_cfg_events{type="VirtualService",event="update"}', 1);
  // The Service did not change: no update for it.
  assert.equal(value(await metrics(), 'pilot_k8s_reg_events{type="Services",event="update"}'), 0);

  fs.rmSync(f);
  await until('pilot_k8s_cfg_events{type="VirtualService",event="delete"}', 1);
  await until('pilot_k8s_reg_events{type="Services",event="delete"}', 1);
});

test('galley_validation_passed / galley_validation_failed count validating webhook reviews', T, async () => {
  const kind = { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' };
  const resource = { group: 'networking.istio.io', version: 'v1', resource: 'virtualservices' };
  const ok = await review('/validate', {
    kind,
    resource,
    operation: 'CREATE',
    object: {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'a', namespace: 'default' },
      spec: { hosts: ['a'], http: [{ route: [{ destination: { host: 'a' } }] }] },
    },
  });
  assert.equal((ok['response'] as { allowed: boolean }).allowed, true);
  const bad = await review('/validate', {
    kind,
    resource,
    operation: 'CREATE',
    object: {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'b', namespace: 'default' },
      spec: { hosts: ['b'], http: [{ route: [{ destination: { host: 'b', subset: 'v1' }, weight: 150 }, { destination: { host: '' } }] }] },
    },
  });
  assert.equal((bad['response'] as { allowed: boolean }).allowed, false, JSON.stringify(bad));
  const m = await metrics();
  assert.equal(value(m, 'galley_validation_passed{group="networking.istio.io",version="v1",resource="virtualservices"}'), 1, m);
  assert.equal(value(m, 'galley_validation_failed{group="networking.istio.io",version="v1",resource="virtualservices",reason="invalid_config"}'), 1, m);
});

test('sidecar_injection_requests/success/skip/failure_total count injection reviews', T, async () => {
  const pod = (annotations: Record<string, string>): Record<string, unknown> => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', labels: { app: 'p' }, annotations },
    spec: { containers: [{ name: 'app', image: 'app:1' }] },
  });
  const podKind = { group: '', version: 'v1', kind: 'Pod' };
  const injected = await review('/inject', { kind: podKind, operation: 'CREATE', namespace: 'default', object: pod({}) });
  assert.equal((injected['response'] as { patchType?: string }).patchType, 'JSONPatch');
  await review('/inject', { kind: podKind, operation: 'CREATE', namespace: 'default', object: pod({ 'sidecar.istio.io/inject': 'false' }) });
  await review('/inject', { kind: podKind, operation: 'CREATE', namespace: 'default', object: { kind: 'Pod', metadata: { name: 'x' } } });
  const m = await metrics();
  assert.deepEqual(
    ['requests', 'success', 'skip', 'failure'].map((k) => value(m, `sidecar_injection_${k}_total`)),
    [3, 1, 1, 1],
    m,
  );
});
