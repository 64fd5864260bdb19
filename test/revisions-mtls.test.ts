/**
 * Two meshd revisions serving real proxyless gRPC workloads with certificates from one shared
 * plug-in root (a `cacerts` folder, as the Secret is mounted): the `echo` server in namespace
 * `default` gets its certificate and config from revision `stable`, the `sleep` client in
 * namespace `apps-canary` from revision `canary`. STRICT mTLS calls across the revisions succeed
 * and the server sees the client's identity; the client moved to `stable` (a new pod: a new
 * agent and client dialling the other meshd) keeps working.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import pino from 'pino';
import { startMeshd, type MeshdHandle } from '../src/meshd';
import { makePluginCa, writeCacerts } from './helpers/ca-openssl';
import { toYaml } from './helpers/mesh-fixture';
import {
  ECHO,
  ECHO_TARGET,
  JWT_AUDIENCE,
  JWT_ISSUER,
  WHO,
  type AgentProcess,
  type Workload,
  type XdsServerProcess,
  freePort,
  meshObjects,
  mintToken,
  peerAuthentication,
  pod,
  spiffe,
  startAgentProcess,
  startXdsServerProcess,
} from './helpers/security-mesh';
import { closeInOrder } from './helpers/teardown';
import { runUntil, startGrpcJsXdsClient, type XdsClient } from './helpers/xds-clients';

const CLIENT: Workload = { pod: 'sleep-0', serviceAccount: 'sleep', labels: { app: 'sleep', 'security.istio.io/tlsMode': 'istio' }, namespace: 'apps-canary' };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-revisions-mtls-'));
const configDir = path.join(dir, 'config');
const cacerts = path.join(dir, 'cacerts');
let stable: MeshdHandle;
let canary: MeshdHandle;
let key: CryptoKey;
const closers: Array<() => Promise<void> | void> = [];
let server: XdsServerProcess;

function revision(name: string): Promise<MeshdHandle> {
  return startMeshd({
    configDir,
    revision: name,
    cacertsDir: cacerts,
    xdsPort: 0,
    secureXdsPort: -1,
    // The agents get their certificates over plaintext beside their plaintext xDS: the development flag.
    plaintextCa: true,
    debugPort: 0,
    monitoringPort: -1,
    jwks: path.join(dir, 'jwks.json'),
    jwtIssuer: JWT_ISSUER,
    jwtAudiences: [JWT_AUDIENCE],
    logger: pino({ level: 'silent' }),
  });
}

function agent(m: MeshdHandle, w: Workload, sub: string): Promise<AgentProcess> {
  return (async () => {
    const a = await startAgentProcess({
      dir: path.join(dir, sub),
      xdsPort: m.xdsPort,
      w,
      token: await mintToken(key, w.serviceAccount, w.namespace),
      ttl: '1h',
      rootPem: m.caRootPem(),
    });
    closers.unshift(() => a.close());
    return a;
  })();
}

async function client(m: MeshdHandle, bootstrapFile: string): Promise<XdsClient> {
  const c = await startGrpcJsXdsClient({ xdsPort: m.xdsPort, target: ECHO_TARGET, bootstrapFile, credentials: 'xds' });
  closers.unshift(() => c.close());
  return c;
}

before(async () => {
  fs.mkdirSync(configDir);
  writeCacerts(cacerts, makePluginCa(dir, { name: 'mesh', intermediateKey: 'P-256' }));
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
  const port = await freePort();
  // Both revisions read the same Istio config.
  fs.writeFileSync(
    path.join(configDir, 'mesh.yaml'),
    toYaml([...meshObjects(port), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'apps-canary' } }, pod(CLIENT), peerAuthentication('STRICT')]),
  );
  [stable, canary] = await Promise.all([revision('stable'), revision('canary')]);
  await Promise.all([stable.caReady(), canary.caReady()]);
  const echoAgent = await agent(stable, ECHO, 'stable');
  server = await startXdsServerProcess({ port, bootstrapFile: echoAgent.bootstrapFile });
  closers.unshift(() => server.close());
});

after(async () => {
  await closeInOrder([...closers, () => canary?.close(), () => stable?.close(), () => fs.rmSync(dir, { recursive: true, force: true })]);
});

test('a workload of canary calls a workload of stable over STRICT mTLS; moved to stable, it keeps working', { timeout: 90_000 }, async () => {
  assert.equal(stable.caRootPem(), canary.caRootPem(), 'both revisions trust the one plug-in root');
  assert.ok(stable.caRootPem().includes('BEGIN CERTIFICATE'));

  const onCanary = await agent(canary, CLIENT, 'canary');
  const c1 = await client(canary, onCanary.bootstrapFile);
  const first = await runUntil(c1, { calls: 10, method: WHO }, (x) => x.errors === 0 && x.counts[spiffe(CLIENT)] === 10, {
    timeoutMs: 25_000,
    what: 'mTLS calls from canary’s workload to stable’s',
  });
  assert.deepEqual(first.counts, { [spiffe(CLIENT)]: 10 }, 'the server sees the apps-canary identity');

  // The pod moves: restarted against the other revision, with a new certificate from it.
  await c1.close();
  await onCanary.close();
  const onStable = await agent(stable, CLIENT, 'moved');
  assert.notEqual(onStable.serial(), onCanary.serial(), 'a new certificate, issued by stable');
  const c2 = await client(stable, onStable.bootstrapFile);
  const moved = await runUntil(c2, { calls: 10, method: WHO }, (x) => x.errors === 0 && x.counts[spiffe(CLIENT)] === 10, {
    timeoutMs: 25_000,
    what: 'mTLS calls after the move to stable',
  });
  assert.deepEqual(moved.counts, { [spiffe(CLIENT)]: 10 });
  assert.deepEqual(Object.keys((await server.stats()).peers), [spiffe(CLIENT)]);
});
