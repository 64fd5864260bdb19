/**
 * The JWKS resolver against a real HTTPS server on 127.0.0.1 with a certificate the test makes:
 * trust (the extra CA, never skipped verification), first fetch before the config is built,
 * refresh picking up a new key (onChange), failures (unreachable, status, timeout, not a JWKS)
 * giving no keys or keeping the old ones, with the error reported once in the log, http
 * refused, OpenID discovery, and the size and count bounds.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { JwksFetchRequest } from '../src/model/build-reqauthn';
import { parseJwks } from '../src/model/jwks';
import { JwksResolver, type JwksResolverOptions } from '../src/jwks/resolver';
import { JwksServer, ecJwks } from './helpers/jwks-server';

const { ca, server: serverPem } = JwksServer.material();
let server: JwksServer;

before(async () => {
  server = await new JwksServer(serverPem).listen();
});
after(async () => {
  await server.close();
});

const compact = (doc: string): string => {
  const r = parseJwks(doc);
  assert.ok('json' in r, JSON.stringify(r));
  return r.json;
};
const req = (path: string, extra: Partial<JwksFetchRequest> = {}): JwksFetchRequest => ({ key: server.url(path), url: server.url(path), discovery: false, ...extra });

/** A resolver trusting the test CA, logging into `lines`, never refreshing unless told to. */
function resolver(opts: JwksResolverOptions = {}): { r: JwksResolver; lines: string[]; changes: () => number } {
  const lines: string[] = [];
  let changes = 0;
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
  const r = new JwksResolver({ extraCaPems: [ca.cert], refreshIntervalMs: 3_600_000, log, onChange: () => void changes++, ...opts });
  return { r, lines, changes: () => changes };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((res) => setTimeout(res, 20));
  }
}

test('a new source is fetched over https (trusting the extra CA) before want() resolves; a refresh picks up a new key and calls onChange', async () => {
  const first = ecJwks('k1');
  server.routes.set('/rotating.json', { body: first });
  const { r, changes } = resolver({ refreshIntervalMs: 150 });
  try {
    await r.want([req('/rotating.json')]);
    assert.deepEqual(r.entries().get(server.url('/rotating.json')), { keys: compact(first) });
    const second = ecJwks('k2');
    server.routes.set('/rotating.json', { body: second });
    await until(() => changes() > 0);
    assert.deepEqual(r.entries().get(server.url('/rotating.json')), { keys: compact(second) });
    // Unchanged content on later refreshes: no further change reported.
    const hits = server.hits.get('/rotating.json') ?? 0;
    await until(() => (server.hits.get('/rotating.json') ?? 0) >= hits + 2);
    assert.equal(changes(), 1);
    assert.equal(r.status().sources[0]?.state, 'ok');
  } finally {
    r.close();
  }
});

test('without the extra CA the server certificate is refused: verification is never skipped', async () => {
  server.routes.set('/trusted.json', { body: ecJwks('k') });
  const { r, lines } = resolver({ extraCaPems: undefined });
  try {
    await r.want([req('/trusted.json')]);
    const e = r.entries().get(server.url('/trusted.json'));
    assert.equal(e?.keys, undefined);
    assert.match(e?.error ?? '', /self[- ]signed|unable to verify|certificate/i);
    assert.equal(lines.filter((l) => l.includes('could not be fetched')).length, 1);
  } finally {
    r.close();
  }
});

test('unreachable: no keys and the error, logged once; back again: the keys, logged as recovered', async () => {
  const down = await new JwksServer(serverPem).listen();
  const port = down.port;
  await down.close();
  const url = `https://127.0.0.1:${port}/keys`;
  const { r, lines, changes } = resolver();
  try {
    await r.want([{ key: url, url, discovery: false }]);
    assert.match(r.entries().get(url)?.error ?? '', /ECONNREFUSED/);
    assert.equal(r.entries().get(url)?.keys, undefined);
    assert.equal(await r.refresh(), false, 'the same error again is no change');
    assert.equal(lines.filter((l) => l.includes('could not be fetched')).length, 1, 'logged once while it lasts');
    const up = await new JwksServer(serverPem).listen(port);
    try {
      const doc = ecJwks('back');
      up.routes.set('/keys', { body: doc });
      assert.equal(await r.refresh(), true);
      assert.deepEqual(r.entries().get(url), { keys: compact(doc) });
      assert.equal(changes(), 1);
      assert.ok(lines.some((l) => l.includes('fetched after failing')));
    } finally {
      await up.close();
    }
  } finally {
    r.close();
  }
});

test('a failed refresh keeps the keys fetched before, with the error beside them', async () => {
  const doc = ecJwks('old');
  server.routes.set('/flaky.json', { body: doc });
  const { r } = resolver();
  try {
    await r.want([req('/flaky.json')]);
    server.routes.set('/flaky.json', { status: 503, body: 'x'.repeat(300) });
    assert.equal(await r.refresh(), true);
    const e = r.entries().get(server.url('/flaky.json'));
    assert.equal(e?.keys, compact(doc));
    assert.match(e?.error ?? '', /^status 503, message "x{99}\(truncated\)$/);
    assert.equal(r.status().sources[0]?.state, 'stale');
  } finally {
    r.close();
  }
});

test('http is refused (also when https redirects to it); a document that is not a JWKS is refused; a timeout is bounded', async () => {
  server.routes.set('/to-http', { status: 302, location: 'http://127.0.0.1:1/keys' });
  server.routes.set('/html', { body: '<html>login</html>' });
  server.routes.set('/empty', { body: '{"keys":[]}' });
  server.routes.set('/slow', { hang: true });
  // Long enough for the answered fetches on a loaded machine; the hanging one shows the bound.
  const { r } = resolver({ timeoutMs: 1500 });
  try {
    const started = Date.now();
    await r.want([{ key: 'http://127.0.0.1:1/keys', url: 'http://127.0.0.1:1/keys', discovery: false }, req('/to-http'), req('/html'), req('/empty'), req('/slow')]);
    assert.ok(Date.now() - started < 5000, 'want() waits no longer than the timeout');
    const err = (k: string): string => r.entries().get(k)?.error ?? '';
    assert.match(err('http://127.0.0.1:1/keys'), /http is not allowed: JWKS are fetched over https only/);
    assert.match(err(server.url('/to-http')), /http is not allowed/);
    assert.match(err(server.url('/html')), /is not a usable JWKS: not JSON/);
    assert.match(err(server.url('/empty')), /is not a usable JWKS: no key Envoy can verify with/);
    assert.equal(err(server.url('/slow')), 'timed out after 1500 ms');
    // A rule's own timeout wins over the default.
    await r.want([req('/slow', { key: 'slow-own', timeoutMs: 100 })]);
    assert.equal(r.entries().get('slow-own')?.error, 'timed out after 100 ms');
  } finally {
    r.close();
  }
});

test('OpenID discovery: the issuer document names the JWKS; an http jwks_uri there is refused', async () => {
  const doc = ecJwks('disco');
  server.routes.set('/idp/.well-known/openid-configuration', { body: JSON.stringify({ issuer: server.url('/idp'), jwks_uri: server.url('/idp/certs') }) });
  server.routes.set('/idp/certs', { body: doc });
  server.routes.set('/bad/.well-known/openid-configuration', { body: JSON.stringify({ jwks_uri: 'http://127.0.0.1/certs' }) });
  const { r } = resolver();
  try {
    const good = server.url('/idp/.well-known/openid-configuration');
    const bad = server.url('/bad/.well-known/openid-configuration');
    await r.want([
      { key: good, url: good, discovery: true },
      { key: bad, url: bad, discovery: true },
    ]);
    assert.deepEqual(r.entries().get(good), { keys: compact(doc) });
    assert.match(r.entries().get(bad)?.error ?? '', /jwks_uri "http:\/\/127\.0\.0\.1\/certs" in .* is not https/);
  } finally {
    r.close();
  }
});

test('bounds: a document over the size limit is refused; the cache holds at most maxBytes and maxEntries; sources beyond the count are not fetched', async () => {
  const small = ecJwks('s');
  for (const p of ['/a', '/b', '/c', '/zz']) server.routes.set(p, { body: small });
  server.routes.set('/huge', { body: JSON.stringify({ keys: [JSON.parse(small).keys[0]], padding: 'x'.repeat(5000) }) });
  const size = compact(small).length;
  const registry = new Registry();
  const { r } = resolver({ maxDocumentBytes: 4096, maxEntries: 4, maxBytes: size * 2 + 10, registry });
  try {
    const before = server.hits.get('/zz') ?? 0;
    await r.want([req('/zz'), req('/huge'), req('/a'), req('/b'), req('/c')]);
    const e = r.entries();
    assert.match(e.get(server.url('/huge'))?.error ?? '', /larger than the limit of 4096 bytes/);
    // Sorted by key, the fifth is over the count bound and never requested.
    assert.equal(server.hits.get('/zz') ?? 0, before, 'the source beyond maxEntries is not fetched');
    assert.match(e.get(server.url('/zz'))?.error ?? '', /not fetched: more than 4 JWKS sources are named/);
    // Three small documents do not fit in two documents' bytes: one is pushed out, and says so.
    const served = ['/a', '/b', '/c'].filter((p) => e.get(server.url(p))?.keys !== undefined);
    assert.equal(served.length, 2);
    const evicted = ['/a', '/b', '/c'].find((p) => e.get(server.url(p))?.keys === undefined) ?? '';
    assert.match(e.get(server.url(evicted))?.error ?? '', /evicted from the JWKS cache/);
    assert.ok(r.status().cache.bytes <= size * 2 + 10);
    // istiod's fetch counters.
    const metrics = await registry.metrics();
    assert.match(metrics, /pilot_jwks_resolver_network_fetch_success_total \d/);
    assert.match(metrics, /pilot_jwks_resolver_network_fetch_fail_total [1-9]/);
  } finally {
    r.close();
  }
});

test('a source named again soon reuses its keys; named again after the refresh interval, it is fetched anew', async () => {
  const first = ecJwks('first');
  server.routes.set('/again.json', { body: first });
  let now = 1_000_000;
  const { r } = resolver({ refreshIntervalMs: 60_000, now: () => now });
  try {
    await r.want([req('/again.json')]);
    await r.want([]);
    const hits = server.hits.get('/again.json') ?? 0;
    server.routes.set('/again.json', { body: ecJwks('second') });
    now += 30_000;
    await r.want([req('/again.json')]);
    assert.equal(server.hits.get('/again.json'), hits, 'not fetched again');
    assert.equal(r.entries().get(server.url('/again.json'))?.keys, compact(first));
    await r.want([]);
    now += 61_000;
    await r.want([req('/again.json')]);
    assert.equal(server.hits.get('/again.json'), hits + 1);
    assert.notEqual(r.entries().get(server.url('/again.json'))?.keys, compact(first));
  } finally {
    r.close();
  }
});
