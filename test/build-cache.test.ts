/**
 * The snapshot build keeps each stage's result while the objects it read and the values it was
 * given are the same (model/build-cache.ts). A stage reused when it should have run again
 * serves stale config, so every build of a line of random changes is compared with a build of
 * the same objects from nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildSnapshot } from '../src/model/build';
import { BuildCache } from '../src/model/build-cache';
import type { MeshSnapshot } from '../src/model/snapshot';
import { loadText } from '../src/sources/load';
import { MeshModel, Rng, SnapshotMaker, randomChange } from './helpers/random-mesh';
import { issue, makeCa } from './helpers/certs';

const ca = makeCa();
const CREDENTIALS = [0, 1].map(() => ({ ...issue(ca, ['shop.example.com']), ca: ca.cert }));

/** The snapshot's content: everything but the memo and the build time. */
function content(s: MeshSnapshot): Record<string, unknown> {
  const { memo: _memo, builtAt: _builtAt, ...rest } = s;
  return rest;
}

test('a cached build equals a build from nothing, over 80 random changes, and reuses stages', () => {
  const model = new MeshModel(CREDENTIALS);
  const inLine = new SnapshotMaker();
  const fresh = new SnapshotMaker();
  const rng = new Rng(0xcac4e);
  const failures: string[] = [];
  const check = (step: number, what: string): void => {
    const a = inLine.build(model);
    const b = fresh.build(model, false);
    const ca = content(a);
    const cb = content(b);
    for (const k of new Set([...Object.keys(ca), ...Object.keys(cb)])) {
      try {
        assert.deepStrictEqual(ca[k], cb[k]);
      } catch {
        if (failures.length < 10) failures.push(`change #${step} (${what}): field ${k} differs from a build from nothing`);
      }
    }
  };
  check(0, 'initial');
  for (let i = 1; i <= 80; i++) check(i, randomChange(model, rng));
  assert.deepEqual(failures, []);
  // It did reuse: most stages of most builds were not run again.
  const { run, reused } = inLine.cache.counters;
  assert.ok(reused > run, `stages reused ${reused} times, run ${run} times`);
});

test('an EndpointSlice change runs the endpoint stages only and rebuilds that one service', () => {
  const svc = (name: string, ip: string): string => `
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ns }
spec: { ports: [{ name: http, port: 80 }], selector: { app: ${name} } }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ${name}-1, namespace: ns, labels: { kubernetes.io/service-name: ${name} } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints: [{ addresses: ["${ip}"] }]
`;
  const objs = (ipA: string) => [...loadText(svc('a', ipA), 'a.yaml').objects, ...loadText(svc('b', '127.0.0.2'), 'b.yaml').objects];
  const base = objs('127.0.0.1');
  const moved = [...objs('127.0.0.9').slice(0, 2), ...base.slice(2)];
  // Service a's object is parsed again but equal; use the first build's for identity, as a source keeps unchanged objects.
  const next = [base[0], moved[1], ...base.slice(2)].filter((o) => o !== undefined);
  const cache = new BuildCache();
  const build = (objects: typeof base, previous?: MeshSnapshot, sequence = 1): MeshSnapshot =>
    buildSnapshot({ objects, errors: [], sequence, now: new Date(0), domain: 'cluster.local', cache, ...(previous ? { previous } : {}) });
  // The second build of the same objects runs only the MeshConfig stage (now with a previous one to keep).
  const first = build(base, build(base), 2);
  const before = { ...cache.counters };
  const second = build(next, first, 3);
  const ran = cache.counters.run - before.run;
  // endpoints and the service accounts read from them; nothing else (routing, security, scoping, …).
  assert.equal(ran, 2, `stages run for an endpoint change: ${ran}`);
  assert.equal(second.endpoints.get('a.ns.svc.cluster.local')?.get(80)?.[0]?.address, '127.0.0.9');
  assert.equal(second.endpoints.get('b.ns.svc.cluster.local'), first.endpoints.get('b.ns.svc.cluster.local'), "b's endpoints are the same object");
  assert.equal(second.services, first.services);
  assert.equal(second.virtualServices, first.virtualServices);
  assert.notEqual(second.version, first.version);
});
