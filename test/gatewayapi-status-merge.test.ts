/**
 * The status the controller writes from what was computed and what the API server holds (pure):
 * observedGeneration on every condition, transition times kept per condition while its status
 * holds (matched by type, listeners by name, route parents by parentRef and controller), other
 * controllers' route parents kept, and "changed" judged without transition times.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { composeStatus, contains, sameStatus } from '../src/gatewayapi/status-merge';

const C = 'istio.io/gateway-controller';
const T0 = '2026-01-01T00:00:00Z';
const T1 = '2026-01-01T00:05:00Z';
const ok = (type: string, status = 'True', reason = type): Record<string, unknown> => ({ type, status, reason, message: 'm' });

test('Gateway: conditions and listener conditions stamped; times kept for unchanged statuses, new for flipped ones and new listeners', () => {
  const existing = {
    conditions: [{ ...ok('Accepted'), observedGeneration: 1, lastTransitionTime: T0 }],
    listeners: [{ name: 'http', attachedRoutes: 1, supportedKinds: [], conditions: [{ ...ok('Programmed', 'False', 'Invalid'), observedGeneration: 1, lastTransitionTime: T0 }] }],
  };
  const wanted = {
    conditions: [ok('Accepted'), ok('Programmed')],
    listeners: [
      { name: 'http', attachedRoutes: 2, supportedKinds: [], conditions: [ok('Programmed')] },
      { name: 'https', attachedRoutes: 0, supportedKinds: [], conditions: [ok('Accepted')] },
    ],
  };
  const out = composeStatus('Gateway', wanted, existing, 2, T1, C);
  assert.deepEqual(out['conditions'], [
    { type: 'Accepted', status: 'True', observedGeneration: 2, lastTransitionTime: T0, reason: 'Accepted', message: 'm' },
    { type: 'Programmed', status: 'True', observedGeneration: 2, lastTransitionTime: T1, reason: 'Programmed', message: 'm' },
  ]);
  const listeners = out['listeners'] as Array<Record<string, unknown>>;
  assert.equal(listeners[0]?.['attachedRoutes'], 2);
  assert.equal((listeners[0]?.['conditions'] as Array<Record<string, unknown>>)[0]?.['lastTransitionTime'], T1, 'False → True is a transition');
  assert.equal((listeners[1]?.['conditions'] as Array<Record<string, unknown>>)[0]?.['lastTransitionTime'], T1);
  assert.equal(sameStatus(out, existing), false);
  assert.equal(sameStatus(composeStatus('Gateway', wanted, out, 2, '2030-01-01T00:00:00Z', C), out), true, 'recomputed later: the same but for times');
});

test("routes: parents matched by parentRef and controller; other controllers' entries kept in front; ours that are no longer computed dropped", () => {
  const ref = (name: string): Record<string, unknown> => ({ group: 'gateway.networking.k8s.io', kind: 'Gateway', name });
  const theirs = { parentRef: ref('x'), controllerName: 'example.com/x', conditions: [{ ...ok('Accepted'), lastTransitionTime: T0 }] };
  const existing = {
    parents: [
      { parentRef: ref('a'), controllerName: C, conditions: [{ ...ok('Accepted'), observedGeneration: 1, lastTransitionTime: T0 }] },
      theirs,
      { parentRef: ref('gone'), controllerName: C, conditions: [{ ...ok('Accepted'), observedGeneration: 1, lastTransitionTime: T0 }] },
    ],
  };
  const out = composeStatus('HTTPRoute', { parents: [{ parentRef: ref('a'), controllerName: C, conditions: [ok('Accepted'), ok('ResolvedRefs')] }] }, existing, 3, T1, C);
  const parents = out['parents'] as Array<Record<string, unknown>>;
  assert.deepEqual(parents[0], theirs);
  assert.equal(parents.length, 2);
  assert.deepEqual(
    (parents[1]?.['conditions'] as Array<Record<string, unknown>>).map((c) => [c['type'], c['observedGeneration'], c['lastTransitionTime']]),
    [
      ['Accepted', 3, T0],
      ['ResolvedRefs', 3, T1],
    ],
  );
});

test('contains: what the API server adds is ignored; a changed or missing value, or an array of another length, is not contained', () => {
  const wanted = { spec: { ports: [{ port: 80 }], type: 'LoadBalancer' } };
  assert.equal(contains({ metadata: { uid: 'u' }, spec: { ports: [{ port: 80, protocol: 'TCP' }], type: 'LoadBalancer', clusterIP: '10.0.0.1' } }, wanted), true);
  assert.equal(contains({ spec: { ports: [{ port: 80 }, { port: 443 }], type: 'LoadBalancer' } }, wanted), false);
  assert.equal(contains({ spec: { ports: [{ port: 80 }], type: 'ClusterIP' } }, wanted), false);
  assert.equal(contains({ spec: { ports: [{ port: 80 }] } }, wanted), false);
});

test('BackendTLSPolicy: ancestors merged per ancestorRef and controller; the mesh and gateway entries are ours, other controllers’ kept', () => {
  const M = 'istio.io/mesh-controller';
  const svc = { group: '', kind: 'Service', name: 'backend' };
  const gw = { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'web' };
  const existing = {
    ancestors: [
      { ancestorRef: svc, controllerName: M, conditions: [{ ...ok('Accepted'), observedGeneration: 1, lastTransitionTime: T0 }] },
      { ancestorRef: gw, controllerName: 'example.com/other', conditions: [{ ...ok('Accepted'), observedGeneration: 1, lastTransitionTime: T0 }] },
      { ancestorRef: { ...gw, name: 'gone' }, controllerName: C, conditions: [{ ...ok('Accepted'), observedGeneration: 1, lastTransitionTime: T0 }] },
    ],
  };
  const wanted = {
    ancestors: [
      { ancestorRef: svc, controllerName: M, conditions: [ok('Accepted'), ok('ResolvedRefs')] },
      { ancestorRef: gw, controllerName: C, conditions: [ok('Accepted'), ok('ResolvedRefs')] },
    ],
  };
  const out = composeStatus('BackendTLSPolicy', wanted, existing, 2, T1, C);
  const ancestors = out['ancestors'] as Array<Record<string, unknown>>;
  assert.deepEqual(
    ancestors.map((a) => [a['controllerName'], (a['ancestorRef'] as Record<string, unknown>)['name']]),
    [
      ['example.com/other', 'web'],
      [M, 'backend'],
      [C, 'web'],
    ],
    "another controller's entry stays; ours are exactly what was computed (the stale Gateway entry goes)",
  );
  const svcConds = ancestors[1]?.['conditions'] as Array<Record<string, unknown>>;
  assert.deepEqual(
    svcConds.map((c) => [c['type'], c['lastTransitionTime'], c['observedGeneration']]),
    [
      ['Accepted', T0, 2],
      ['ResolvedRefs', T1, 2],
    ],
  );
  assert.equal(sameStatus(composeStatus('BackendTLSPolicy', wanted, out, 2, '2030-01-01T00:00:00Z', C), out), true);
});
