/** Shared pieces of the real-traffic tests: meshd on a fixture folder, C-core availability, predicates. */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { type MeshdHandle, startMeshd } from '../../src/main';
import { type CallResult, pythonGrpcAvailable } from './xds-clients';

/** meshd serving `configDir` on free ports (the library defaults are istiod's fixed ones). */
export function startE2eMeshd(configDir: string): Promise<MeshdHandle> {
  return startMeshd({ configDir, xdsPort: 0, debugPort: 0, monitoringPort: 0, logLevel: process.env['MESHD_LOG_LEVEL'] ?? 'warn' });
}

/** Skip locally when python3-grpcio is missing; fail under CI=true. */
export function requirePythonGrpc(t: TestContext): boolean {
  const py = pythonGrpcAvailable();
  if (py.ok) return true;
  if (process.env['CI'] === 'true') assert.fail(`gRPC C-core client required under CI=true: ${py.reason} (apt-get install -y python3-grpcio)`);
  t.skip(`gRPC C-core client unavailable: ${py.reason} (apt-get install -y python3-grpcio)`);
  return false;
}

/** Every call succeeded and reached `name` only. */
export function only(name: string): (r: CallResult) => boolean {
  return (r) => r.errors === 0 && Object.keys(r.counts).length === 1 && (r.counts[name] ?? 0) > 0;
}
