/**
 * RequestAuthentication through a running meshd: the key sets are fetched from a real HTTPS
 * server on 127.0.0.1 (trusted through `jwksCaFile`, the `--jwks-ca-file` flag) before the first
 * config is served, inlined in the jwt_authn filter a sidecar receives over ADS, and a rotated
 * key reaches the sidecar as a push of its listeners alone. A source that cannot be fetched is
 * served istiod's reject-all JWKS, shown in /debug/configz with its field path and logged once;
 * when it comes up its keys are pushed and the error goes away.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { fakeJwks, parseJwks } from '../src/model/jwks';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient, type Response } from './helpers/ads-client';
import { JwksServer, ecJwks } from './helpers/jwks-server';

type P = Record<string, unknown>;
const protos = new EnvoyProtos();
const { ca, server: serverPem } = JwksServer.material();
const WEB = 'sidecar~10.60.0.10~web-1.shop~shop.svc.cluster.local';

let server: JwksServer;
let downPort = 0;
let dir: string;
let meshd: MeshdHandle;
let client: AdsClient;
const logLines: string[] = [];
const KEYS_1 = ecJwks('one');

function mesh(goodUrl: string, downUrl: string): string {
  return `
apiVersion: v1
kind: Pod
metadata: { name: web-1, namespace: shop, labels: { app: web } }
spec: { serviceAccountName: web }
status: { podIP: 10.60.0.10 }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { clusterIP: 10.96.60.1, selector: { app: web }, ports: [{ name: http, port: 8080 }] }
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: web, namespace: shop }
spec:
  selector: { matchLabels: { app: web } }
  jwtRules:
  - { issuer: "https://good.example", jwksUri: "${goodUrl}" }
  - { issuer: "https://later.example", jwksUri: "${downUrl}", timeout: 2s }
`;
}

/** issuer → the JWKS inlined for it in virtualInbound's jwt_authn filter. */
function inlined(lds: Response): Map<string, string> {
  const inbound = lds.resources.find((l) => l['name'] === 'virtualInbound');
  assert.ok(inbound, 'virtualInbound is served');
  const hcm = ((inbound['filter_chains'] as P[])[0]?.['filters'] as P[])[0]?.['typed_config'] as P;
  const jwt = (hcm['http_filters'] as P[]).find((f) => f['name'] === 'envoy.filters.http.jwt_authn');
  assert.ok(jwt, 'the jwt_authn filter is there');
  const providers = (jwt['typed_config'] as P)['providers'] as Record<string, P>;
  return new Map(Object.values(providers).map((p) => [String(p['issuer']), String((p['local_jwks'] as P)['inline_string'])]));
}

const compact = (doc: string): string => {
  const r = parseJwks(doc);
  assert.ok('json' in r);
  return r.json;
};

async function configz(): Promise<P> {
  return (await (await fetch(`http://127.0.0.1:${meshd.debugPort}/debug/configz`)).json()) as P;
}

before(async () => {
  server = await new JwksServer(serverPem).listen();
  server.routes.set('/good.json', { body: KEYS_1 });
  const probe = await new JwksServer(serverPem).listen();
  downPort = probe.port;
  await probe.close();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-reqauthn-'));
  fs.writeFileSync(path.join(dir, 'mesh.yaml'), mesh(server.url('/good.json'), `https://127.0.0.1:${downPort}/later.json`));
  const caFile = path.join(dir, '..', `${path.basename(dir)}-ca.pem`);
  fs.writeFileSync(caFile, ca.cert);
  meshd = await startMeshd({
    configDir: dir,
    xdsPort: 0,
    debugPort: 0,
    monitoringPort: -1,
    debounceQuietMs: 50,
    jwksCaFile: caFile,
    jwksResolver: { refreshIntervalMs: 400, failureIntervalMs: 400, maxFailureIntervalMs: 400 },
    logger: pino({ level: 'info' }, { write: (l: string) => void logLines.push(l) }),
  });
  fs.rmSync(caFile);
  client = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: WEB, metadata: { NAMESPACE: 'shop' } });
});

after(async () => {
  client.close();
  await meshd.close();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the first config already carries the fetched keys; an unreachable source gets the reject-all JWKS, reported with its field path and logged once', async () => {
  await client.subscribe(TypeUrl.Cluster);
  const lds = await client.subscribe(TypeUrl.Listener);
  const keys = inlined(lds);
  assert.equal(keys.get('https://good.example'), compact(KEYS_1));
  assert.equal(keys.get('https://later.example'), fakeJwks(`https://127.0.0.1:${downPort}/later.json`));
  const cz = await configz();
  const errors = cz['errors'] as { kind: string; name: string; errors: { path: string; message: string }[] }[];
  const mine = errors.find((e) => e.kind === 'RequestAuthentication' && e.name === 'web');
  assert.equal(mine?.errors[0]?.path, 'spec.jwtRules[1].jwksUri');
  assert.match(mine?.errors[0]?.message ?? '', /could not be fetched \(.*ECONNREFUSED.*\); until it can, a JWKS that rejects every token is served/);
  const ras = cz['request_authentications'] as { jwt_rules: { keys: string }[] }[];
  assert.deepEqual(
    ras[0]?.jwt_rules.map((r) => r.keys),
    ['fetched', 'reject-all (not fetched)'],
  );
  const sources = ((cz['jwks'] as P)['sources'] as { url: string; state: string }[]).map((s) => [s.url.replace(/:\d+/, ':P'), s.state]).sort();
  assert.deepEqual(sources, [
    ['https://127.0.0.1:P/good.json', 'ok'],
    ['https://127.0.0.1:P/later.json', 'failed'],
  ]);
  // Refreshes keep failing every 400 ms; the resolver logs the problem once, and so does the
  // rebuild that reports config problems.
  await new Promise((r) => setTimeout(r, 1000));
  const about = logLines.filter((l) => l.includes('later.json could not be fetched'));
  assert.equal(about.filter((l) => l.includes('"component":"jwks"')).length, 1, 'the resolver logs the failure once');
  assert.equal(about.filter((l) => !l.includes('"component":"jwks"')).length, 1, 'the config problem is logged once');
});

test('a rotated key reaches the sidecar as a listener push, and nothing else is pushed', async () => {
  const KEYS_2 = ecJwks('two');
  server.routes.set('/good.json', { body: KEYS_2 });
  const lds = await client.next(TypeUrl.Listener, 5000);
  client.ack(lds);
  assert.equal(inlined(lds).get('https://good.example'), compact(KEYS_2));
  const others = (await client.drain(300)).filter((r) => r.type_url !== TypeUrl.Listener);
  assert.deepEqual(
    others.map((r) => r.type_url),
    [],
    'clusters are untouched by a key rotation',
  );
});

test('when the unreachable source comes up, its keys are pushed and its error is gone', async () => {
  const later = await new JwksServer(serverPem).listen(downPort);
  try {
    const KEYS_3 = ecJwks('three');
    later.routes.set('/later.json', { body: KEYS_3 });
    let keys = new Map<string, string>();
    for (let i = 0; i < 10 && keys.get('https://later.example') !== compact(KEYS_3); i++) {
      const lds = await client.next(TypeUrl.Listener, 5000);
      client.ack(lds);
      keys = inlined(lds);
    }
    assert.equal(keys.get('https://later.example'), compact(KEYS_3));
    const cz = await configz();
    assert.deepEqual(
      (cz['errors'] as { kind: string }[]).filter((e) => e.kind === 'RequestAuthentication'),
      [],
    );
  } finally {
    await later.close();
  }
});
