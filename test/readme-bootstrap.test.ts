/**
 * The README's proxyless gRPC bootstrap, taken as written (only the xDS port is changed to the
 * test's meshd), must work with real clients: grpc-js-xds and gRPC C-core dial
 * `xds:///reviews.default.svc.cluster.local:9080` and reach a backend. grpc-js-xds refuses a
 * bootstrap whose node has no `locality`, which is why the example carries an empty one, as
 * does every gRPC bootstrap meshd writes (`meshd agent`).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import type { MeshdHandle } from '../src/main';
import { buildGrpcBootstrap } from '../src/agent/files';
import { startBackends, type BackendSet } from './helpers/backends';
import { requirePythonGrpc, only, startE2eMeshd } from './helpers/e2e';
import { createMeshFixture, type MeshFixture } from './helpers/mesh-fixture';
import { closeInOrder } from './helpers/teardown';
import { type ClientImpl, type XdsClient, runUntil, startGrpcCoreClient, startGrpcJsXdsClient } from './helpers/xds-clients';

const README = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');

/** The JSON block that follows the sentence naming GRPC_XDS_BOOTSTRAP, and the target the README dials. */
function readmeBootstrap(): { json: string; target: string } {
  const at = README.indexOf('needs a bootstrap file named by `GRPC_XDS_BOOTSTRAP`');
  assert.ok(at >= 0, 'README: the proxyless bootstrap section');
  const block = /```json\n([\s\S]*?)```/.exec(README.slice(at));
  assert.ok(block, 'README: a ```json block after the bootstrap sentence');
  const target = /dials `(xds:\/\/\/[^`]+)`/.exec(README.slice(at));
  assert.ok(target, 'README: the xds:/// target the client dials');
  return { json: block[1] as string, target: target[1] as string };
}

let backends: BackendSet | undefined;
let fixture: MeshFixture | undefined;
let meshd: MeshdHandle | undefined;
const clients: XdsClient[] = [];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-readme-'));

before(async () => {
  backends = await startBackends(['reviews-v1']);
  fixture = await createMeshFixture({ ports: { v1: backends.get('reviews-v1').port } });
  meshd = await startE2eMeshd(fixture.configDir);
});

after(async () => {
  await closeInOrder([...clients.map((c) => () => c.close()), () => meshd?.close(), () => backends?.close(), () => fixture?.cleanup()]);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the README bootstrap is JSON with a node locality, as every gRPC bootstrap meshd writes', () => {
  const { json } = readmeBootstrap();
  const b = JSON.parse(json) as { node?: { locality?: unknown }; xds_servers?: Array<{ server_uri?: string }> };
  assert.deepEqual(b.node?.locality, {}, 'grpc-js-xds refuses a node without locality');
  assert.equal(b.xds_servers?.[0]?.server_uri, '127.0.0.1:15010');
  const written = buildGrpcBootstrap({ xdsAddress: '127.0.0.1:15010', plaintext: true, node: { id: 'sidecar~10.0.0.1~a.default~default.svc.cluster.local', metadata: {} } });
  assert.deepEqual((written['node'] as { locality?: unknown }).locality, {});
});

async function throughReadmeBootstrap(t: TestContext, impl: ClientImpl): Promise<void> {
  if (impl === 'grpc-core' && !requirePythonGrpc(t)) return;
  assert.ok(meshd);
  const { json, target } = readmeBootstrap();
  // The example as written; only the port is the test's meshd instead of istiod's 15010.
  const file = path.join(dir, `bootstrap-${impl}.json`);
  fs.writeFileSync(file, json.replace('127.0.0.1:15010', `127.0.0.1:${meshd.xdsPort}`));
  const opts = { xdsPort: meshd.xdsPort, bootstrapFile: file, target };
  const client = impl === 'grpc-js-xds' ? await startGrpcJsXdsClient(opts) : await startGrpcCoreClient(opts);
  clients.push(client);
  await runUntil(client, { calls: 4 }, only('reviews-v1'), { timeoutMs: 15_000, intervalMs: 100, what: `${impl} through the README bootstrap` });
}

test('grpc-js-xds reaches the backend with the README bootstrap as written', { timeout: 60_000 }, (t) => throughReadmeBootstrap(t, 'grpc-js-xds'));
test('gRPC C-core reaches the backend with the README bootstrap as written', { timeout: 60_000 }, (t) => throughReadmeBootstrap(t, 'grpc-core'));
