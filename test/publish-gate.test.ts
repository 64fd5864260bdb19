/**
 * The publish gate: a listener that names a route configuration the proxy is not served, or an
 * EDS cluster whose assignment is not served, keeps the version the proxy had, and says why.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EncodedResource, RejectedResource } from '../src/xds/cache';
import { gate, referencesOf } from '../src/xds/gate';
import { TypeUrl } from '../src/xds/protos';

const res = (name: string, hash: string, refs?: string[]): EncodedResource => ({ name, bytes: new Uint8Array([1]), hash, ...(refs ? { refs } : {}) });

test('references are read from listeners (every RDS name, not inline routes) and EDS clusters', () => {
  const listener = {
    name: '0.0.0.0_9080',
    filter_chains: [
      { filters: [{ typed_config: { rds: { route_config_name: '9080' } } }] },
      { filters: [{ typed_config: { route_config: { name: 'inline', virtual_hosts: [] } } }] },
      { filters: [{ typed_config: { rds: { route_config_name: 'other' } } }] },
    ],
  };
  assert.deepEqual(referencesOf(TypeUrl.Listener, listener)?.sort(), ['9080', 'other']);
  assert.deepEqual(referencesOf(TypeUrl.Cluster, { name: 'outbound|80||a', eds_cluster_config: { service_name: 'outbound|80||a' } }), ['outbound|80||a']);
  assert.deepEqual(referencesOf(TypeUrl.Cluster, { name: 'c', eds_cluster_config: {} }), ['c'], 'no service_name: the cluster name');
  assert.equal(referencesOf(TypeUrl.Cluster, { name: 'dns', type: 'STRICT_DNS' }), undefined);
});

test('a listener naming a route that is not served keeps its previous version; the problem is reported and cleared', () => {
  const problems = new Map<string, RejectedResource>();
  const before = new Map([['0.0.0.0_9080', res('0.0.0.0_9080', 'old', ['9080'])]]);
  const now = new Map([
    ['0.0.0.0_9080', res('0.0.0.0_9080', 'new', ['9080', 'missing'])],
    ['virtualOutbound', res('virtualOutbound', 'v')],
  ]);
  const routes = new Map([['9080', {}]]);
  const out = gate(TypeUrl.Listener, now, routes, before, problems);
  assert.equal(out.get('0.0.0.0_9080')?.hash, 'old', 'the last version that resolved is kept');
  assert.equal(out.get('virtualOutbound')?.hash, 'v');
  assert.match([...problems.values()][0]?.errors[0]?.message ?? '', /refers to missing, which is not served/);
  // Once the route is served, the new listener goes out and the report is gone.
  const fixed = gate(
    TypeUrl.Listener,
    now,
    new Map([
      ['9080', {}],
      ['missing', {}],
    ]),
    before,
    problems,
  );
  assert.equal(fixed.get('0.0.0.0_9080')?.hash, 'new');
  assert.equal(problems.size, 0);
});

test('with no previous version the new one is served (Envoy waits for the missing reference)', () => {
  const problems = new Map<string, RejectedResource>();
  const now = new Map([['outbound|80||a', res('outbound|80||a', 'c1', ['outbound|80||a'])]]);
  const out = gate(TypeUrl.Cluster, now, new Map(), undefined, problems);
  assert.equal(out, now);
  assert.equal(problems.size, 1);
});
