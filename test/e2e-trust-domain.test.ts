/**
 * The trust domain reaches generated config: with `--trust-domain example.org`, workloads get
 * certificates for spiffe://example.org/…, and the SAN matchers meshd sends clients must name
 * that trust domain, or mTLS fails. Real agents, a real proxyless gRPC server and client (as in
 * the security end-to-end test), STRICT mTLS; the server sees the caller's example.org identity.
 * Aliases: the SAN matchers and a policy's principals are spelled for every trust domain of the
 * bundle (unit level: the generated cluster and RBAC filter).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import pino from 'pino';
import { startMeshd, type MeshdHandle } from '../src/meshd';
import { toYaml } from './helpers/mesh-fixture';
import {
  ECHO,
  ECHO_TARGET,
  JWT_AUDIENCE,
  JWT_ISSUER,
  SLEEP,
  WHO,
  type AgentProcess,
  type XdsServerProcess,
  freePort,
  meshObjects,
  mintToken,
  peerAuthentication,
  spiffe,
  startAgentProcess,
  startXdsServerProcess,
} from './helpers/security-mesh';
import { closeInOrder } from './helpers/teardown';
import { runUntil, startGrpcJsXdsClient, type XdsClient } from './helpers/xds-clients';

const TD = 'example.org';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-e2e-td-'));
const configDir = path.join(dir, 'config');
let meshd: MeshdHandle;
let serverAgent: AgentProcess;
let clientAgent: AgentProcess;
let server: XdsServerProcess;
let client: XdsClient;

before(async () => {
  fs.mkdirSync(configDir);
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
  const port = await freePort();
  fs.writeFileSync(path.join(configDir, 'mesh.yaml'), toYaml([...meshObjects(port), peerAuthentication('STRICT')]));
  meshd = await startMeshd({
    // The agents get their certificates over plaintext 15010 beside their plaintext xDS: the development flag.
    configDir,
    xdsPort: 0,
    secureXdsPort: -1,
    plaintextCa: true,
    debugPort: 0,
    monitoringPort: -1,
    trustDomain: TD,
    caDir: path.join(dir, 'ca'),
    jwks: path.join(dir, 'jwks.json'),
    jwtIssuer: JWT_ISSUER,
    jwtAudiences: [JWT_AUDIENCE],
    logger: pino({ level: 'silent' }),
  });
  await meshd.caReady();
  const agents = path.join(dir, 'agents');
  [serverAgent, clientAgent] = await Promise.all([
    startAgentProcess({
      dir: agents,
      xdsPort: meshd.xdsPort,
      w: ECHO,
      token: await mintToken(privateKey, ECHO.serviceAccount),
      ttl: '1h',
      trustDomain: TD,
      rootPem: meshd.caRootPem(),
    }),
    startAgentProcess({
      dir: agents,
      xdsPort: meshd.xdsPort,
      w: SLEEP,
      token: await mintToken(privateKey, SLEEP.serviceAccount),
      ttl: '1h',
      trustDomain: TD,
      rootPem: meshd.caRootPem(),
    }),
  ]);
  server = await startXdsServerProcess({ port, bootstrapFile: serverAgent.bootstrapFile });
  client = await startGrpcJsXdsClient({ xdsPort: meshd.xdsPort, target: ECHO_TARGET, bootstrapFile: clientAgent.bootstrapFile, credentials: 'xds' });
});

after(async () => {
  await closeInOrder([
    () => client?.close(),
    () => server?.close(),
    () => clientAgent?.close(),
    () => serverAgent?.close(),
    () => meshd?.close(),
    () => fs.rmSync(dir, { recursive: true, force: true }),
  ]);
});

test('with --trust-domain example.org, STRICT mTLS between workloads succeeds and the server sees the example.org identity', { timeout: 60_000 }, async () => {
  const r = await runUntil(client, { calls: 10, method: WHO }, (x) => x.errors === 0 && x.counts[spiffe(SLEEP, TD)] === 10, {
    timeoutMs: 20_000,
    what: 'mTLS calls with example.org identities succeed',
  });
  assert.deepEqual(r.counts, { [spiffe(SLEEP, TD)]: 10 });
  const s = await server.stats();
  assert.deepEqual(Object.keys(s.peers), [spiffe(SLEEP, TD)]);
});
