/**
 * ProxyConfig: Istio's validation rules with field paths, and the effective proxy config of a
 * workload as istiod's EffectiveProxyConfig merges it (mesh defaultConfig < root namespace <
 * namespace < `proxy.istio.io/config` annotation < the workload's ProxyConfig), one row per rule.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConfigObject } from '../src/model/objects';
import { buildProxyConfigs, effectiveProxyConfig, imageWithType, type ProxyConfigJson } from '../src/model/proxy-config';
import { validateObject } from '../src/model/validate';
import { loadText } from '../src/sources/file-source';

type J = Record<string, unknown>;

function pc(namespace: string, name: string, spec: J | undefined, creationTimestamp?: string): ConfigObject {
  const metadata = { name, namespace, labels: {}, annotations: {} };
  const body: J = { apiVersion: 'networking.istio.io/v1beta1', kind: 'ProxyConfig', metadata: { name, namespace, ...(creationTimestamp ? { creationTimestamp } : {}) } };
  if (spec !== undefined) body['spec'] = spec;
  return { kind: 'ProxyConfig', apiVersion: 'networking.istio.io/v1beta1', metadata, body, origin: { source: 'test' } };
}

const errorsOf = (spec: J | undefined): string[] => validateObject(pc('default', 'p', spec)).map((e) => `${e.path}: ${e.message}`);

describe('validation (ValidateProxyConfig and the CRD field set)', () => {
  const table: Array<[string, J | undefined, string[]]> = [
    ['no spec: an empty ProxyConfig', undefined, []],
    ['every field', { selector: { matchLabels: { app: 'a' } }, concurrency: 2, environmentVariables: { A: 'b' }, image: { imageType: 'distroless' } }, []],
    ['concurrency 0 (one worker per core)', { concurrency: 0 }, []],
    ['concurrency null (unset)', { concurrency: null }, []],
    ['negative concurrency', { concurrency: -1 }, ['spec.concurrency: concurrency must be greater than or equal to 0']],
    ['wildcard selector value', { selector: { matchLabels: { app: 'a*' } } }, ['spec.selector.matchLabels.app: wildcard is not supported in selector: "app=a*"']],
    ['empty selector key', { selector: { matchLabels: { '': 'a' } } }, ['spec.selector.matchLabels[""]: empty key is not supported in selector']],
    ['unknown field, with a suggestion', { concurency: 2 }, ['spec.concurency: unknown field "concurency" (did you mean "concurrency"?)']],
    ['env value not a string', { environmentVariables: { A: 1 } }, ['spec.environmentVariables.A: must be a string (got number 1)']],
    ['env value over the CRD limit', { environmentVariables: { A: 'x'.repeat(2049) } }, ['spec.environmentVariables.A: must be at most 2048 characters (got 2049)']],
    ['concurrency not an integer', { concurrency: 1.5 }, ['spec.concurrency: must be an integer (got number 1.5)']],
    ['unknown image field', { image: { type: 'debug' } }, ['spec.image.type: unknown field "type"']],
  ];
  for (const [name, spec, want] of table) {
    test(name, () => {
      assert.deepEqual(errorsOf(spec), want);
    });
  }

  test('apiVersion: only v1beta1 is served, as in Istio', () => {
    const doc = (v: string): string => `apiVersion: networking.istio.io/${v}\nkind: ProxyConfig\nmetadata: { name: p, namespace: default }\nspec: { concurrency: 1 }\n`;
    assert.deepEqual(loadText(doc('v1beta1'), 'a.yaml').errors, []);
    assert.match(
      JSON.stringify(loadText(doc('v1'), 'a.yaml').errors),
      /unsupported apiVersion \\"networking.istio.io\/v1\\" for kind ProxyConfig \(want networking.istio.io\/v1beta1\)/,
    );
  });
});

describe('effective proxy config: the merge order of istiod', () => {
  const MESH: ProxyConfigJson = { concurrency: 2, proxyMetadata: { MESH: 'mesh', SHARED: 'mesh' }, holdApplicationUntilProxyStarts: false, tracing: { sampling: 1 } };
  const ALL = [
    pc('istio-system', 'root', { concurrency: 3, environmentVariables: { ROOT: 'root', SHARED: 'root' } }),
    pc('shop', 'ns', { environmentVariables: { NS: 'ns', SHARED: 'ns' }, image: { imageType: 'distroless' } }),
    pc('shop', 'web', { selector: { matchLabels: { app: 'web' } }, concurrency: 5, environmentVariables: { SHARED: 'workload' } }),
  ];
  const eff = (objects: ConfigObject[], namespace: string, labels: Record<string, string>, annotations: Record<string, string> = {}): J =>
    effectiveProxyConfig({ meshDefault: MESH, rootNamespace: 'istio-system', proxyConfigs: buildProxyConfigs(objects), target: { namespace, labels, annotations } }).config as J;

  const table: Array<[string, ConfigObject[], string, Record<string, string>, Record<string, string>, J]> = [
    ['nothing applies: the mesh default', [], 'shop', { app: 'web' }, {}, { concurrency: 2, SHARED: 'mesh' }],
    ['root namespace over the mesh default', ALL.slice(0, 1), 'shop', {}, {}, { concurrency: 3, SHARED: 'root' }],
    ['namespace over the root namespace, field by field', ALL.slice(0, 2), 'shop', {}, {}, { concurrency: 3, SHARED: 'ns', imageType: 'distroless' }],
    ['workload over the namespace', ALL, 'shop', { app: 'web', v: '1' }, {}, { concurrency: 5, SHARED: 'workload', imageType: 'distroless' }],
    ['a selector that does not match', ALL, 'shop', { app: 'ratings' }, {}, { concurrency: 3, SHARED: 'ns' }],
    [
      'annotation over the namespace',
      ALL.slice(0, 2),
      'shop',
      {},
      { 'proxy.istio.io/config': 'concurrency: 7\nproxyMetadata: { SHARED: annotation }' },
      { concurrency: 7, SHARED: 'annotation' },
    ],
    [
      'workload ProxyConfig over the annotation',
      ALL,
      'shop',
      { app: 'web' },
      { 'proxy.istio.io/config': 'concurrency: 7\nproxyMetadata: { SHARED: annotation }' },
      { concurrency: 5, SHARED: 'workload' },
    ],
    ['another namespace sees only the root', ALL, 'other', { app: 'web' }, {}, { concurrency: 3, SHARED: 'root' }],
    [
      'a workload in the root namespace: its namespace-wide one is the root one',
      [...ALL, pc('istio-system', 'gw', { selector: { matchLabels: { istio: 'ingressgateway' } }, concurrency: 0 })],
      'istio-system',
      { istio: 'ingressgateway' },
      {},
      { concurrency: 0, SHARED: 'root' },
    ],
  ];
  for (const [name, objects, ns, labels, annotations, want] of table) {
    test(name, () => {
      const got = eff(objects, ns, labels, annotations);
      assert.equal(got['concurrency'], want['concurrency'], 'concurrency');
      assert.equal((got['proxyMetadata'] as J)['SHARED'], want['SHARED'], 'proxyMetadata.SHARED');
      if (want['imageType'] !== undefined) assert.deepEqual(got['image'], { imageType: want['imageType'] });
      // The mesh default's other fields survive every layer.
      assert.deepEqual(got['tracing'], { sampling: 1 });
      assert.equal((got['proxyMetadata'] as J)['MESH'], 'mesh');
    });
  }

  test('nothing applies: the mesh default object itself (the injector output is unchanged)', () => {
    assert.equal(
      effectiveProxyConfig({ meshDefault: MESH, rootNamespace: 'istio-system', proxyConfigs: new Map(), target: { namespace: 'shop', labels: {}, annotations: {} } }).config,
      MESH,
    );
  });

  test('the first matching ProxyConfig wins, oldest first then by name; several are never merged', () => {
    const objs = [
      pc('shop', 'b', { concurrency: 1, environmentVariables: { B: 'b' } }),
      pc('shop', 'a', { concurrency: 4 }),
      pc('shop', 'z-old', { concurrency: 9 }, '2020-01-01T00:00:00Z'),
    ];
    const got = eff(objs, 'shop', {});
    assert.equal(got['concurrency'], 9);
    assert.equal((got['proxyMetadata'] as J)['B'], undefined, 'the newer ones are not merged in');
    assert.equal(eff(objs.slice(0, 2), 'shop', {})['concurrency'], 4, 'without times: by name');
  });

  test('proto.Merge: proto3 zero scalars do not override, wrapper fields do', () => {
    const got = eff([], 'shop', {}, { 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: true\ntracing: { sampling: 0 }' });
    assert.equal(got['holdApplicationUntilProxyStarts'], true);
    assert.deepEqual(got['tracing'], { sampling: 1 }, 'a double at 0 is unset in proto3');
  });

  test('an unusable annotation is reported with its path and left out', () => {
    const r = effectiveProxyConfig({
      meshDefault: MESH,
      rootNamespace: 'istio-system',
      proxyConfigs: new Map(),
      target: { namespace: 'shop', labels: {}, annotations: { 'proxy.istio.io/config': '[1, 2]' } },
    });
    assert.equal(r.config, MESH);
    assert.deepEqual(r.errors, [
      { path: 'metadata.annotations["proxy.istio.io/config"]', message: 'failed to convert to apply proxy config: must be a mapping of ProxyConfig fields' },
    ]);
  });
});

test('image types pick the tag variant as istiod ProxyImage does', () => {
  const table: Array<[string, string | undefined, string]> = [
    ['docker.io/istio/proxyv2:1.24.0', undefined, 'docker.io/istio/proxyv2:1.24.0'],
    ['docker.io/istio/proxyv2:1.24.0', 'distroless', 'docker.io/istio/proxyv2:1.24.0-distroless'],
    ['docker.io/istio/proxyv2:1.24.0', 'debug', 'docker.io/istio/proxyv2:1.24.0-debug'],
    ['docker.io/istio/proxyv2:1.24.0-distroless', 'default', 'docker.io/istio/proxyv2:1.24.0'],
    ['docker.io/istio/proxyv2:1.24.0-debug', 'distroless', 'docker.io/istio/proxyv2:1.24.0-distroless'],
    ['localhost:5000/proxyv2:dev', 'debug', 'localhost:5000/proxyv2:dev-debug'],
    ['localhost:5000/proxyv2', 'debug', 'localhost:5000/proxyv2'],
    ['docker.io/istio/proxyv2@sha256:abc', 'debug', 'docker.io/istio/proxyv2@sha256:abc'],
  ];
  for (const [image, type, want] of table) assert.equal(imageWithType(image, type), want, `${image} ${type ?? ''}`);
});
