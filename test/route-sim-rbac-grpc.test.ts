/**
 * The route simulator's RBAC decision against real enforcement: a proxyless gRPC server
 * (@grpc/grpc-js-xds XdsServer in a child process, node `echo-0`) gets its RBAC filters from meshd
 * and grpc-js enforces them; a grpc-js-xds client (node `sleep-0`) calls it over plaintext. For each
 * AuthorizationPolicy (DENY by path, ALLOW by method, by path, by identity — which a plaintext
 * caller never has), `meshctl x route --from sleep-0` simulates Who and Ping, and the simulator's
 * ALLOW/DENY must be what the real calls got: OK or PERMISSION_DENIED.
 *
 * Not compared: source addresses (ipBlocks). grpc-js-xds 1.14's XdsServer hands connections to
 * grpc-js through a connection injector, and its RBAC filter then sees no remote address, so a
 * `direct_remote_ip` principal never matches there (Envoy matches it; the simulator follows Envoy).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { routeSimCommand } from '../src/cli/xds-commands';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { toYaml } from './helpers/mesh-fixture';
import { ECHO_FQDN, ECHO_SERVICE_PORT, ECHO_TARGET, NS, PING, WHO, type XdsServerProcess, freePort, startXdsServerProcess } from './helpers/security-mesh';
import { closeInOrder } from './helpers/teardown';
import { type XdsClient, makeBootstrap, runUntil, startGrpcJsXdsClient } from './helpers/xds-clients';

const PERMISSION_DENIED = 7;
const CALLS = 10;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-route-rbac-grpc-'));
const configDir = path.join(dir, 'config');
let meshd: MeshdHandle;
let server: XdsServerProcess;
let client: XdsClient;

function writeConfig(name: string, objects: readonly object[]): void {
  const tmp = path.join(dir, `.${name}.tmp`);
  fs.writeFileSync(tmp, toYaml(objects));
  fs.renameSync(tmp, path.join(configDir, name));
}

/** Plaintext on purpose: no tlsMode label, no DestinationRule, so the server gets no TLS and callers no identity. */
function mesh(port: number): object[] {
  const pod = (name: string, app: string, sa: string): object => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { app } },
    spec: { serviceAccountName: sa, containers: [{ name: 'app' }] },
    status: { phase: 'Running', podIP: '127.0.0.1', podIPs: [{ ip: '127.0.0.1' }] },
  });
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } },
    pod('echo-0', 'echo', 'echo'),
    pod('sleep-0', 'sleep', 'sleep'),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo', namespace: NS },
      spec: { clusterIP: '10.96.70.70', selector: { app: 'echo' }, ports: [{ name: 'grpc', port: ECHO_SERVICE_PORT, targetPort: port }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'echo-0', namespace: NS, labels: { 'kubernetes.io/service-name': 'echo' } },
      addressType: 'IPv4',
      ports: [{ name: 'grpc', port, protocol: 'TCP' }],
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'echo-0', namespace: NS } }],
    },
  ];
}

function policy(name: string, action: 'ALLOW' | 'DENY', rules: object[]): object {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: NS },
    spec: { selector: { matchLabels: { app: 'echo' } }, action, rules },
  };
}

before(async () => {
  fs.mkdirSync(configDir);
  const port = await freePort();
  writeConfig('mesh.yaml', mesh(port));
  meshd = await startMeshd({ configDir, xdsPort: 0, secureXdsPort: -1, debugPort: 0, monitoringPort: -1, logLevel: 'warn', debugEndpointAuth: false });
  const bootstrap = {
    ...makeBootstrap(meshd.xdsPort, 'echo-0', NS, { SERVICE_ACCOUNT: 'echo', LABELS: { app: 'echo' } }),
    server_listener_resource_name_template: 'xds.istio.io/grpc/lds/inbound/%s',
  };
  const bootstrapFile = path.join(dir, 'server-bootstrap.json');
  fs.writeFileSync(bootstrapFile, JSON.stringify(bootstrap));
  server = await startXdsServerProcess({ port, bootstrapFile });
  client = await startGrpcJsXdsClient({ xdsPort: meshd.xdsPort, target: ECHO_TARGET, podName: 'sleep-0', metadata: { SERVICE_ACCOUNT: 'sleep', LABELS: { app: 'sleep' } } });
  await runUntil(client, { calls: 2, method: PING, waitForReady: true, deadlineMs: 2000 }, (r) => r.errors === 0, { timeoutMs: 15_000, what: 'first call' });
});

after(async () => {
  await closeInOrder([() => client?.close(), () => server?.close(), () => meshd?.close(), () => fs.rmSync(dir, { recursive: true, force: true })]);
});

interface Simulated {
  decision: string;
  line: string;
}

/** `meshctl x route --from sleep-0.default --to echo:7070 --grpc --path <method>`, in process, JSON and text. */
async function simulate(method: string): Promise<Simulated> {
  const run = async (extra: string[]): Promise<string> => {
    const out = { stdout: '', stderr: '' };
    const before = process.exitCode;
    process.exitCode = 0;
    const cmd = routeSimCommand({ stdout: { write: (s: string) => (out.stdout += s) }, stderr: { write: (s: string) => (out.stderr += s) } });
    await cmd.parseAsync(
      ['--plaintext', '--xds-address', `127.0.0.1:${meshd.xdsPort}`, '--from', client.nodeId, '--to', `${ECHO_FQDN}:${ECHO_SERVICE_PORT}`, '--grpc', '--path', method, ...extra],
      { from: 'user' },
    );
    const code = Number(process.exitCode ?? 0);
    process.exitCode = before;
    assert.equal(code, 0, out.stderr);
    return out.stdout;
  };
  const json = JSON.parse(await run(['-o', 'json'])) as { rbac: { decision: { decision: string } }[] };
  assert.equal(json.rbac.length, 1, JSON.stringify(json));
  const line = /^RBAC: +(.*)$/m.exec(await run([]))?.[1] ?? '';
  return { decision: json.rbac[0]?.decision.decision ?? '', line };
}

/** What real calls got: OK, PERMISSION_DENIED, or something else. */
async function real(method: string, calls = CALLS): Promise<'OK' | 'PERMISSION_DENIED' | string> {
  const r = await client.run({ calls, method, deadlineMs: 2000 });
  if (r.errors === 0) return 'OK';
  if (r.errorCodes[String(PERMISSION_DENIED)] === calls) return 'PERMISSION_DENIED';
  return JSON.stringify(r);
}

interface Case {
  what: string;
  policies: object[];
  /** What the policy says for Who and Ping: the real server converges to it before comparing. */
  expect: { [WHO]: 'OK' | 'PERMISSION_DENIED'; [PING]: 'OK' | 'PERMISSION_DENIED' };
  /** The simulator's line for Who. */
  whoLine: RegExp;
}

const CASES: Case[] = [
  { what: 'no policy', policies: [], expect: { [WHO]: 'OK', [PING]: 'OK' }, whoLine: /^no policy \(allowed\)$/ },
  {
    what: 'DENY by path',
    policies: [policy('deny-who', 'DENY', [{ to: [{ operation: { paths: [WHO] } }] }])],
    expect: { [WHO]: 'PERMISSION_DENIED', [PING]: 'OK' },
    whoLine: /^DENY by default-deny-who-0 \(envoy\.filters\.http\.rbac\.DENY\)$/,
  },
  {
    what: 'ALLOW by method (gRPC calls are POST)',
    policies: [policy('allow-post', 'ALLOW', [{ to: [{ operation: { methods: ['POST'] } }] }])],
    expect: { [WHO]: 'OK', [PING]: 'OK' },
    whoLine: /^ALLOW by default-allow-post-0 \(envoy\.filters\.http\.rbac\)$/,
  },
  {
    what: 'ALLOW by path',
    policies: [policy('allow-ping', 'ALLOW', [{ to: [{ operation: { paths: [PING] } }] }])],
    expect: { [WHO]: 'PERMISSION_DENIED', [PING]: 'OK' },
    whoLine: /^DENY: no ALLOW policy matched \(envoy\.filters\.http\.rbac\)$/,
  },
  {
    what: 'ALLOW by identity: a plaintext caller has none',
    policies: [policy('allow-sleep', 'ALLOW', [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }] }])],
    expect: { [WHO]: 'PERMISSION_DENIED', [PING]: 'PERMISSION_DENIED' },
    whoLine: /^DENY: no ALLOW policy matched \(envoy\.filters\.http\.rbac\)$/,
  },
  {
    what: 'DENY unless from an identity (notPrincipals): plaintext is denied',
    policies: [policy('deny-anonymous', 'DENY', [{ from: [{ source: { notPrincipals: ['*'] } }], to: [{ operation: { paths: [WHO] } }] }])],
    expect: { [WHO]: 'PERMISSION_DENIED', [PING]: 'OK' },
    whoLine: /^DENY by default-deny-anonymous-0 \(envoy\.filters\.http\.rbac\.DENY\)$/,
  },
];

test('the simulated RBAC decision is what grpc-js enforced, for Who and Ping under six policies', { timeout: 180_000 }, async () => {
  let compared = 0;
  for (const c of CASES) {
    writeConfig('authz.yaml', c.policies);
    // The server has the new listener once both methods do what the policy says.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const now = { [WHO]: await real(WHO, 2), [PING]: await real(PING, 2) };
      if (now[WHO] === c.expect[WHO] && now[PING] === c.expect[PING]) break;
      assert.ok(Date.now() < deadline, `${c.what}: the server never enforced ${JSON.stringify(c.expect)} (last ${JSON.stringify(now)})`);
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const method of [WHO, PING] as const) {
      const got = await real(method);
      assert.equal(got, c.expect[method], `${c.what}: ${method} real calls`);
      const sim = await simulate(method);
      assert.equal(
        sim.decision === 'DENY' ? 'PERMISSION_DENIED' : sim.decision === 'ALLOW' || sim.decision === 'NO_POLICY' ? 'OK' : sim.decision,
        got,
        `${c.what}: ${method}: ${sim.line}`,
      );
      if (method === WHO) assert.match(sim.line, c.whoLine, c.what);
      compared++;
    }
  }
  assert.equal(compared, 12);
});
