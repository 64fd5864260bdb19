/**
 * End to end, security: real mTLS and RBAC between proxyless gRPC workloads, with certificates
 * from meshd's CA and TLS/RBAC config from meshd's xDS.
 *
 *   meshd:    startMeshd with a JWKS (jose); config folder with Service `echo` (→ the server's
 *             real port), pods echo-0 (sa echo) and sleep-0 (sa sleep), a DestinationRule
 *             ISTIO_MUTUAL, PeerAuthentication STRICT for app=echo, and later an
 *             AuthorizationPolicy DENY on one method
 *   agents:   one `meshd agent` process per workload, authenticated by a JWT for its service
 *             account, writing cert-chain.pem / key.pem / root-cert.pem and the gRPC bootstrap
 *             (file_watcher provider `default`, node sidecar~127.0.0.1~<pod>.default~…)
 *   server:   @grpc/grpc-js-xds XdsServer (child process) on 127.0.0.1:<port>, XdsServerCredentials;
 *             Who answers the caller's SPIFFE ID from its client certificate, Ping `pong`
 *   clients:  @grpc/grpc-js-xds (child processes) dialling xds:///echo.default.svc.cluster.local:7070
 *             with XdsChannelCredentials, or with plain insecure credentials
 *
 * Every scenario is checked on what clients received and on what the server counted.
 * The certificates live 8 s (renewed at half-life), so they rotate throughout; the server
 * recycles connections every 2 s so that new handshakes keep using the newest certificates.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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
  PING,
  SLEEP,
  WHO,
  type AgentProcess,
  type XdsServerProcess,
  denyPath,
  freePort,
  meshObjects,
  mintToken,
  peerAuthentication,
  spiffe,
  startAgentProcess,
  startXdsServerProcess,
} from './helpers/security-mesh';
import { closeInOrder } from './helpers/teardown';
import { runUntil, startGrpcJsXdsClient, type CallResult, type XdsClient } from './helpers/xds-clients';

const PERMISSION_DENIED = 7;
const UNAVAILABLE = 14;
const CONVERGE_MS = 15_000;
const CERT_TTL = '8s';
const CALLS = 60;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-e2e-security-'));
const configDir = path.join(dir, 'config');
const logLines: string[] = [];
let meshd: MeshdHandle;
let serverAgent: AgentProcess;
let clientAgent: AgentProcess;
/**
 * Every certificate serial either agent has written, sampled from the files for the whole run:
 * a process may still hold a certificate written before a test began (its file_watcher refreshes
 * about every second), so the rotation test checks handshakes against this history.
 */
const written = { server: new Set<string>(), client: new Set<string>() };
let sampling: ReturnType<typeof setInterval> | undefined;
let server: XdsServerProcess;
let mtlsClient: XdsClient;
const extraClients: XdsClient[] = [];

function writeConfig(name: string, objects: readonly object[]): void {
  const tmp = path.join(dir, `.${name}.tmp`);
  fs.writeFileSync(tmp, toYaml(objects));
  fs.renameSync(tmp, path.join(configDir, name));
}

function allOk(n: number, body: string): (r: CallResult) => boolean {
  return (r) => r.errors === 0 && r.counts[body] === n;
}

function allFailWith(n: number, code: number): (r: CallResult) => boolean {
  return (r) => r.errorCodes[String(code)] === n;
}

before(async () => {
  fs.mkdirSync(configDir);
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
  const port = await freePort();
  writeConfig('mesh.yaml', meshObjects(port));
  writeConfig('peerauthentication.yaml', [peerAuthentication('STRICT')]);
  meshd = await startMeshd({
    // The agents get their certificates over plaintext 15010, beside their plaintext xDS: the
    // development flag (this test is about mTLS between workloads, not the CA's transport).
    configDir,
    xdsPort: 0,
    secureXdsPort: -1,
    plaintextCa: true,
    debugPort: 0,
    monitoringPort: -1,
    caDir: path.join(dir, 'ca'),
    jwks: path.join(dir, 'jwks.json'),
    jwtIssuer: JWT_ISSUER,
    jwtAudiences: [JWT_AUDIENCE],
    logger: pino({ level: 'info' }, { write: (l: string) => void logLines.push(l) }),
  });
  await meshd.caReady();
  const agents = dir + '/agents';
  [serverAgent, clientAgent] = await Promise.all([
    startAgentProcess({ dir: agents, xdsPort: meshd.xdsPort, w: ECHO, token: await mintToken(privateKey, ECHO.serviceAccount), ttl: CERT_TTL, rootPem: meshd.caRootPem() }),
    startAgentProcess({ dir: agents, xdsPort: meshd.xdsPort, w: SLEEP, token: await mintToken(privateKey, SLEEP.serviceAccount), ttl: CERT_TTL, rootPem: meshd.caRootPem() }),
  ]);
  const sample = (): void => {
    try {
      written.server.add(serverAgent.serial());
      written.client.add(clientAgent.serial());
    } catch {
      // A file caught between writes: the next sample reads it.
    }
  };
  sample();
  sampling = setInterval(sample, 100);
  server = await startXdsServerProcess({ port, bootstrapFile: serverAgent.bootstrapFile, maxConnectionAgeMs: 2000 });
  mtlsClient = await startGrpcJsXdsClient({ xdsPort: meshd.xdsPort, target: ECHO_TARGET, bootstrapFile: clientAgent.bootstrapFile, credentials: 'xds' });
});

after(async () => {
  clearInterval(sampling);
  await closeInOrder([
    () => Promise.all(extraClients.map((c) => c.close())),
    () => mtlsClient?.close(),
    () => server?.close(),
    () => clientAgent?.close(),
    () => serverAgent?.close(),
    () => meshd?.close(),
    () => fs.rmSync(dir, { recursive: true, force: true }),
  ]);
});

test('STRICT: the mTLS client reaches the server, which sees its SPIFFE ID; chains verify with openssl', { timeout: 40_000 }, async () => {
  await runUntil(mtlsClient, { calls: 10, method: WHO }, allOk(10, spiffe(SLEEP)), { timeoutMs: CONVERGE_MS, what: 'mTLS calls succeed' });
  await server.reset();
  const r = await mtlsClient.run({ calls: CALLS, method: WHO });
  assert.deepEqual({ counts: r.counts, errors: r.errors }, { counts: { [spiffe(SLEEP)]: CALLS }, errors: 0 }, JSON.stringify(r));
  assert.ok(Object.keys(r.serverSerials ?? {}).length >= 1, 'the client saw the server certificate');
  const s = await server.stats();
  assert.deepEqual(s.calls, { Who: CALLS });
  assert.deepEqual(s.peers, { [spiffe(SLEEP)]: CALLS });
  assert.deepEqual(s.transports, { ssl: CALLS });
  // Each agent's files chain to meshd's root (an independent verifier), with its own identity.
  fs.writeFileSync(path.join(dir, 'root.pem'), meshd.caRootPem());
  for (const a of [serverAgent, clientAgent]) {
    const chain = path.join(a.certDir, 'cert-chain.pem');
    const v = spawnSync('openssl', ['verify', '-CAfile', path.join(dir, 'root.pem'), chain], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(v.status, 0, v.stdout + v.stderr);
  }
  const sans = spawnSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', path.join(serverAgent.certDir, 'cert-chain.pem')], { encoding: 'utf8' }).stdout;
  assert.match(sans, new RegExp(`URI:${spiffe(ECHO)}`));
});

test('STRICT: a plaintext client is refused and never reaches the server; under DISABLE it gets through', { timeout: 60_000 }, async () => {
  // Same bootstrap (same node, same xDS config), but insecure channel credentials: no TLS.
  // Each phase uses a fresh client: a channel that kept failing waits out gRPC's reconnect backoff.
  const plainClient = async (): Promise<XdsClient> => {
    const c = await startGrpcJsXdsClient({ xdsPort: meshd.xdsPort, target: ECHO_TARGET, bootstrapFile: clientAgent.bootstrapFile, credentials: 'insecure' });
    extraClients.push(c);
    return c;
  };
  await server.reset();
  const r = await (await plainClient()).run({ calls: CALLS, method: WHO, deadlineMs: 2000 });
  assert.deepEqual({ errors: r.errors, codes: r.errorCodes }, { errors: CALLS, codes: { [UNAVAILABLE]: CALLS } }, JSON.stringify(r));
  assert.deepEqual((await server.stats()).calls, {}, 'no plaintext call reached the server');

  // The control: with mTLS disabled for the workload, a plaintext client is served.
  // grpc-js-xds 1.14.1's XdsServer ignores a listener update whose only change is the chain's
  // TLS (its listenersEquivalent inverts the transport_socket null check and compares only the
  // filters' bytes; back from plaintext to TLS it even throws), so each switch also adds or
  // removes a DENY on a path nobody calls, in the same file, which changes those bytes.
  writeConfig('peerauthentication.yaml', [peerAuthentication('DISABLE'), denyPath('/meshd.test.Echo/Unused', 'deny-unused')]);
  const plain = await plainClient();
  await runUntil(plain, { calls: 10, method: WHO }, allOk(10, 'none'), { timeoutMs: CONVERGE_MS, what: 'plaintext served under DISABLE' });
  await server.reset();
  const p = await plain.run({ calls: CALLS, method: WHO });
  assert.deepEqual({ counts: p.counts, errors: p.errors }, { counts: { none: CALLS }, errors: 0 });
  assert.deepEqual((await server.stats()).transports, { insecure: CALLS });

  // Back to STRICT: plaintext refused again, mTLS served again.
  writeConfig('peerauthentication.yaml', [peerAuthentication('STRICT')]);
  await runUntil(plain, { calls: 10, method: WHO, deadlineMs: 2000 }, allFailWith(10, UNAVAILABLE), { timeoutMs: CONVERGE_MS, what: 'plaintext refused again under STRICT' });
  await mtlsClient.close();
  mtlsClient = await startGrpcJsXdsClient({ xdsPort: meshd.xdsPort, target: ECHO_TARGET, bootstrapFile: clientAgent.bootstrapFile, credentials: 'xds' });
  await runUntil(mtlsClient, { calls: 10, method: WHO }, allOk(10, spiffe(SLEEP)), { timeoutMs: CONVERGE_MS, what: 'mTLS served again' });
});

test('AuthorizationPolicy DENY on Who: Who is PERMISSION_DENIED, Ping passes; removed, both pass', { timeout: 60_000 }, async () => {
  writeConfig('authz.yaml', [denyPath(WHO)]);
  await runUntil(mtlsClient, { calls: 10, method: WHO }, allFailWith(10, PERMISSION_DENIED), { timeoutMs: CONVERGE_MS, what: 'Who denied' });
  await server.reset();
  const who = await mtlsClient.run({ calls: CALLS, method: WHO });
  const ping = await mtlsClient.run({ calls: CALLS, method: PING });
  assert.deepEqual({ errors: who.errors, codes: who.errorCodes, counts: who.counts }, { errors: CALLS, codes: { [PERMISSION_DENIED]: CALLS }, counts: {} }, JSON.stringify(who));
  assert.deepEqual({ errors: ping.errors, counts: ping.counts }, { errors: 0, counts: { pong: CALLS } }, JSON.stringify(ping));
  const s = await server.stats();
  assert.deepEqual(s.calls, { Ping: CALLS }, 'denied calls never reach the handler');
  assert.deepEqual(s.peers, { [spiffe(SLEEP)]: CALLS });

  fs.rmSync(path.join(configDir, 'authz.yaml'));
  await runUntil(mtlsClient, { calls: 10, method: WHO }, allOk(10, spiffe(SLEEP)), { timeoutMs: CONVERGE_MS, what: 'Who allowed again' });
  await server.reset();
  const who2 = await mtlsClient.run({ calls: CALLS, method: WHO });
  const ping2 = await mtlsClient.run({ calls: CALLS, method: PING });
  assert.deepEqual([who2.errors, who2.counts, ping2.errors, ping2.counts], [0, { [spiffe(SLEEP)]: CALLS }, 0, { pong: CALLS }]);
  assert.deepEqual((await server.stats()).calls, { Who: CALLS, Ping: CALLS });
});

test('rotation under steady traffic: both certificates change at least twice, zero failed calls', { timeout: 60_000 }, async (t) => {
  const seen = { server: new Set([serverAgent.serial()]), client: new Set([clientAgent.serial()]) };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      seen.server.add(serverAgent.serial());
      seen.client.add(clientAgent.serial());
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  let r: CallResult;
  try {
    await server.reset();
    // ~18 s of traffic: 360 calls started 50 ms apart, two in flight at most.
    r = await mtlsClient.run({ calls: 360, method: WHO, concurrency: 2, staggerMs: 50, deadlineMs: 5000 });
  } finally {
    sampling = false;
    await sampler;
  }
  assert.deepEqual({ errors: r.errors, samples: r.errorSamples, counts: r.counts }, { errors: 0, samples: [], counts: { [spiffe(SLEEP)]: 360 } });
  assert.ok(seen.server.size >= 3, `server certificate files rotated ${seen.server.size - 1} times`);
  assert.ok(seen.client.size >= 3, `client certificate files rotated ${seen.client.size - 1} times`);
  const s = await server.stats();
  assert.equal(s.calls['Who'], 360);
  // New handshakes (the server recycles connections) used rotated certificates on both sides.
  const clientSerialsUsed = Object.keys(s.clientSerials);
  const serverSerialsUsed = Object.keys(r.serverSerials ?? {});
  assert.ok(clientSerialsUsed.length >= 3, `the server saw client certificates ${JSON.stringify(s.clientSerials)}`);
  assert.ok(serverSerialsUsed.length >= 3, `the client saw server certificates ${JSON.stringify(r.serverSerials)}`);
  t.diagnostic(
    `files rotated: server ${seen.server.size - 1}, client ${seen.client.size - 1}; certificates used in handshakes: client ${clientSerialsUsed.length}, server ${serverSerialsUsed.length}`,
  );
  for (const x of clientSerialsUsed) assert.ok(written.client.has(x) || seen.client.has(x), `client serial ${x} came from the agent's files`);
  for (const x of serverSerialsUsed) assert.ok(written.server.has(x) || seen.server.has(x), `server serial ${x} came from the agent's files`);
});

test("no private key text in the agents' or meshd's output", () => {
  const text = logLines.join('') + serverAgent.output() + clientAgent.output() + server.stderr() + mtlsClient.stderr();
  for (const a of [serverAgent, clientAgent]) {
    const key = fs.readFileSync(path.join(a.certDir, 'key.pem'), 'utf8');
    for (const line of key.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))) assert.ok(!text.includes(line), 'key text in output');
  }
});
