/**
 * MeshConfig from Kubernetes: ConfigMap `istio` (key `mesh`) in meshd's namespace, read at the
 * initial list and watched through the fake API server; other ConfigMaps (another name, another
 * namespace) are not the MeshConfig; a deleted ConfigMap brings back the defaults; a revision
 * reads `istio-<revision>`.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { buildSnapshot } from '../src/model/build';
import { meshConfigMapName } from '../src/meshd';
import { loadKubeConfig } from '../src/sources/kube-http';
import { startKubeApiServer } from './helpers/kube-api-server';
import { kubeSource, waitFor, type SourceUnderTest } from './helpers/kube-testing';

const T = { timeout: 30_000 };

async function setup(t: TestContext, name = 'istio'): Promise<{ core: CoreV1Api; s: SourceUnderTest }> {
  const api = await startKubeApiServer();
  const core = loadKubeConfig({ kubeconfig: api.kubeconfigPath }).makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'istio-system' } } });
  await core.createNamespace({ body: { metadata: { name: 'other' } } });
  const s = kubeSource(api, { meshConfigMap: { namespace: 'istio-system', name } });
  t.after(async () => {
    await s.src.close();
    await api.close();
  });
  return { core, s };
}

const cm = (name: string, namespace: string, mesh: string): { metadata: { name: string; namespace: string }; data: Record<string, string> } => ({
  metadata: { name, namespace },
  data: { mesh, meshNetworks: 'networks: {}' },
});

function modeOf(s: SourceUnderTest): string {
  const st = s.src.state();
  return buildSnapshot({ objects: st.objects, errors: st.errors, sequence: 1, now: new Date(0), domain: 'cluster.local', ...(st.mesh ? { mesh: st.mesh } : {}) })
    .outboundTrafficPolicy;
}

test('ConfigMap istio in meshd namespace is the MeshConfig: read at the initial list, then watched', T, async (t) => {
  const { core, s } = await setup(t);
  await core.createNamespacedConfigMap({ namespace: 'istio-system', body: cm('istio', 'istio-system', 'outboundTrafficPolicy: { mode: REGISTRY_ONLY }\n') });
  await s.src.load();
  assert.equal(s.src.state().mesh?.source, 'kubernetes:ConfigMap/istio-system/istio');
  assert.equal(modeOf(s), 'REGISTRY_ONLY');

  // An edit through the API server arrives as a change.
  await core.replaceNamespacedConfigMap({
    name: 'istio',
    namespace: 'istio-system',
    body: cm('istio', 'istio-system', 'outboundTrafficPolicy: { mode: ALLOW_ANY }\naccessLogFile: /dev/stdout\n'),
  });
  await waitFor(() => s.changes.includes('kubernetes:ConfigMap/istio-system/istio') && modeOf(s) === 'ALLOW_ANY', 'the edited MeshConfig');
  assert.match(s.src.state().mesh?.text ?? '', /accessLogFile/);

  // Not the MeshConfig: another name, another namespace. Nothing changes.
  const before = s.changes.length;
  await core.createNamespacedConfigMap({ namespace: 'istio-system', body: cm('istio-canary', 'istio-system', 'outboundTrafficPolicy: { mode: REGISTRY_ONLY }\n') });
  await core.createNamespacedConfigMap({ namespace: 'other', body: cm('istio', 'other', 'outboundTrafficPolicy: { mode: REGISTRY_ONLY }\n') });
  // A barrier: one more write to the watched ConfigMap, seen after the two above.
  await core.replaceNamespacedConfigMap({ name: 'istio', namespace: 'istio-system', body: cm('istio', 'istio-system', 'outboundTrafficPolicy: { mode: ALLOW_ANY }\n') });
  await waitFor(() => !/accessLogFile/.test(s.src.state().mesh?.text ?? 'accessLogFile'), 'the barrier write');
  assert.equal(modeOf(s), 'ALLOW_ANY');
  assert.deepEqual(s.changes.slice(before), ['kubernetes:ConfigMap/istio-system/istio'], 'only the MeshConfig ConfigMap counts');

  // Deleted: istiod's defaults.
  await core.createNamespacedConfigMap({ namespace: 'istio-system', body: cm('unrelated', 'istio-system', '') });
  await core.deleteNamespacedConfigMap({ name: 'istio', namespace: 'istio-system' });
  await waitFor(() => s.src.state().mesh === undefined, 'the MeshConfig gone');
  assert.equal(modeOf(s), 'ALLOW_ANY');
});

test('a revision reads istio-<revision>; a ConfigMap created after the initial list is picked up', T, async (t) => {
  assert.equal(meshConfigMapName(undefined), 'istio');
  assert.equal(meshConfigMapName('default'), 'istio');
  assert.equal(meshConfigMapName('canary'), 'istio-canary');
  const { core, s } = await setup(t, meshConfigMapName('canary'));
  await s.src.load();
  assert.equal(s.src.state().mesh, undefined, 'no ConfigMap yet: defaults');
  await core.createNamespacedConfigMap({ namespace: 'istio-system', body: cm('istio', 'istio-system', 'outboundTrafficPolicy: { mode: ALLOW_ANY }\n') });
  await core.createNamespacedConfigMap({ namespace: 'istio-system', body: cm('istio-canary', 'istio-system', 'outboundTrafficPolicy: { mode: REGISTRY_ONLY }\n') });
  await waitFor(() => s.src.state().mesh !== undefined, 'the revision MeshConfig');
  assert.equal(s.src.state().mesh?.source, 'kubernetes:ConfigMap/istio-system/istio-canary');
  assert.equal(modeOf(s), 'REGISTRY_ONLY');
});
