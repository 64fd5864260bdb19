/**
 * deploy/: the manifests and the image, checked without a cluster or a Docker engine. Every YAML
 * document is a Kubernetes object; the kustomization installs every manifest; the CRDs are
 * exactly the Istio kinds meshd reads, in the versions its parser accepts; Service, Deployment,
 * webhooks and mesh config agree on ports, names and paths; RBAC grants what meshd needs (and
 * not more, where that matters); the Deployment's flags are ones meshd's CLI accepts; the
 * Dockerfile builds what bin/meshd.js runs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { ISTIO_NETWORKING_VERSIONS, ISTIO_TELEMETRY_VERSIONS, KIND_VERSIONS, KNOWN_KINDS, type Kind } from '../src/model/objects';
import { parseDocuments } from '../src/sources/parse';
import {
  DEPLOY,
  ROOT,
  type Doc,
  type J,
  at,
  documents,
  filesUnder,
  flagValues,
  haveKustomize,
  installed,
  kustomize,
  kustomizationResources,
  list,
  meshdContainer,
  meta,
  ofKind,
  one,
  readDeploy,
  rec,
  recs,
  strs,
  yamlFiles,
} from './helpers/deploy-manifests';

const NS = 'istio-system';
const SECURITY_KINDS = ['PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication'];
const SECURITY_VERSIONS = ['v1', 'v1beta1'];
/** Istio's short names, from its CRDs (Sidecar's CRD has none). */
const SHORT_NAMES: Record<string, string> = {
  VirtualService: 'vs',
  DestinationRule: 'dr',
  ServiceEntry: 'se',
  WorkloadEntry: 'we',
  WorkloadGroup: 'wg',
  Gateway: 'gw',
  PeerAuthentication: 'pa',
  AuthorizationPolicy: 'ap',
  RequestAuthentication: 'ra',
  Telemetry: 'telemetry',
};
/** istiod's Service ports: name, port, targetPort. */
const ISTIOD_PORTS: Array<[string, number, number]> = [
  ['grpc-xds', 15010, 15010],
  ['https-dns', 15012, 15012],
  ['https-webhook', 443, 15017],
  ['http-monitoring', 15014, 15014],
];

const crds = (objs: Doc[]): J[] => ofKind(objs, 'CustomResourceDefinition');
const crdOf = (objs: Doc[], kind: string): J => {
  const hit = crds(objs).find((c) => at(c, 'spec.names.kind') === kind);
  assert.ok(hit, `no CRD for ${kind}`);
  return hit;
};

test('every YAML document under deploy/ is a Kubernetes object with apiVersion, kind and metadata.name', () => {
  const files = yamlFiles();
  assert.ok(files.length >= 15, `only ${files.length} YAML files under deploy/`);
  let count = 0;
  for (const file of files) {
    for (const { obj } of documents(file)) {
      count++;
      for (const k of ['apiVersion', 'kind']) assert.ok(typeof obj[k] === 'string' && obj[k] !== '', `${file}: ${k} missing`);
      const name = rec(obj['metadata'], `${file}: metadata`)['name'];
      assert.ok(typeof name === 'string' && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name), `${file}: metadata.name ${JSON.stringify(name)}`);
    }
  }
  assert.ok(count >= 25, `only ${count} documents`);
});

test('the kustomization installs every manifest outside kind/, each once, and no object twice', () => {
  const resources = kustomizationResources();
  assert.equal(new Set(resources).size, resources.length, 'a resource is listed twice');
  // The revision overlay and its component are checked against their rendering below.
  const manifests = yamlFiles().filter((f) => !f.endsWith('kustomization.yaml') && !f.startsWith('kind/') && !f.startsWith('revision/') && !f.startsWith('components/'));
  assert.deepEqual([...resources].sort(), manifests);
  const keys = installed().map(({ obj }) => `${String(obj['kind'])}/${meta(obj).namespace ?? ''}/${meta(obj).name}`);
  assert.deepEqual(
    keys.filter((k, i) => keys.indexOf(k) !== i),
    [],
    'objects installed twice',
  );
  for (const { file, obj } of installed()) {
    if (
      obj['kind'] !== 'Namespace' &&
      obj['kind'] !== 'CustomResourceDefinition' &&
      !String(obj['kind']).startsWith('Cluster') &&
      !String(obj['kind']).endsWith('WebhookConfiguration')
    ) {
      assert.equal(meta(obj).namespace, NS, `${file}: ${String(obj['kind'])} ${meta(obj).name} must live in ${NS}`);
    }
  }
});

test('the CRDs are exactly the Istio kinds meshd reads, served in the versions its parser accepts', () => {
  const objs = installed();
  const networking = (Object.keys(KNOWN_KINDS) as Kind[]).filter((k) => KNOWN_KINDS[k].group === 'networking.istio.io');
  const want = [
    ...networking.map((k) => `networking.istio.io/${k}`),
    ...SECURITY_KINDS.map((k) => `security.istio.io/${k}`),
    'telemetry.istio.io/Telemetry',
    'extensions.istio.io/WasmPlugin',
  ].sort();
  assert.deepEqual(
    crds(objs)
      .map((c) => `${String(at(c, 'spec.group'))}/${String(at(c, 'spec.names.kind'))}`)
      .sort(),
    want,
  );

  for (const crd of crds(objs)) {
    const spec = rec(crd['spec'], 'spec');
    const names = rec(spec['names'], 'names');
    const kind = String(names['kind']);
    const group = String(spec['group']);
    assert.equal(meta(crd).name, `${String(names['plural'])}.${group}`);
    assert.equal(spec['scope'], 'Namespaced');
    assert.equal(names['listKind'], `${kind}List`);
    assert.equal(names['singular'], kind.toLowerCase());
    const short = SHORT_NAMES[kind];
    assert.deepEqual(names['shortNames'], short === undefined ? undefined : [short], `${kind} short names`);
    assert.deepEqual(names['categories'], ['istio-io', group.replace(/\./g, '-')], `${kind} categories`);

    const versions = recs(spec['versions'], `${kind} versions`);
    const served = versions.filter((v) => v['served'] === true).map((v) => String(v['name']));
    assert.deepEqual(
      served.sort(),
      [
        ...(KIND_VERSIONS[kind] ??
          (group === 'networking.istio.io'
            ? ISTIO_NETWORKING_VERSIONS
            : group === 'telemetry.istio.io'
              ? ISTIO_TELEMETRY_VERSIONS
              : group === 'extensions.istio.io'
                ? ['v1alpha1']
                : SECURITY_VERSIONS)),
      ].sort(),
      `${kind} served versions`,
    );
    assert.deepEqual(
      versions.filter((v) => v['storage'] === true).map((v) => v['name']),
      [KIND_VERSIONS[kind]?.[0] ?? 'v1'],
      `${kind}: ${KIND_VERSIONS[kind]?.[0] ?? 'v1'} is the one storage version`,
    );
    const columns = JSON.stringify(versions[0]?.['additionalPrinterColumns']);
    for (const v of versions) {
      const where = `${kind} ${String(v['name'])}`;
      assert.deepEqual(v['subresources'], { status: {} }, `${where}: status subresource`);
      const schema = rec(at(v, 'schema.openAPIV3Schema'), `${where} schema`);
      assert.equal(schema['type'], 'object');
      const specSchema = rec(at(schema, 'properties.spec'), `${where} spec schema`);
      assert.deepEqual([specSchema['type'], specSchema['x-kubernetes-preserve-unknown-fields']], ['object', true], `${where}: spec kept as is`);
      assert.equal(JSON.stringify(v['additionalPrinterColumns']), columns, `${where}: printer columns differ between versions`);
      assert.ok(
        recs(v['additionalPrinterColumns'], `${where} columns`).some((c) => c['name'] === 'Age' && c['jsonPath'] === '.metadata.creationTimestamp'),
        `${where}: Age column`,
      );
    }
    if (group !== 'networking.istio.io') continue;
    // meshd reads every version the CRD serves, and refuses one it does not serve.
    for (const v of [...served, 'v2']) {
      const text = `apiVersion: ${group}/${v}\nkind: ${kind}\nmetadata: { name: x, namespace: default }\nspec: {}\n`;
      const r = parseDocuments(text, 'crd-check.yaml');
      if (served.includes(v)) assert.deepEqual(r.errors, [], `meshd refuses ${kind} ${v}, which the CRD serves`);
      else assert.equal(r.objects.length, 0, `meshd accepts ${kind} ${v}, which no CRD serves`);
    }
  }
  const cols = (kind: string): string[] => recs(recs(at(crdOf(objs, kind), 'spec.versions'), 'v')[0]?.['additionalPrinterColumns'], 'c').map((c) => String(c['name']));
  assert.deepEqual(cols('VirtualService'), ['Gateways', 'Hosts', 'Age']);
  assert.deepEqual(cols('DestinationRule'), ['Host', 'Age']);
  assert.deepEqual(cols('ServiceEntry'), ['Hosts', 'Location', 'Resolution', 'Age']);
  assert.deepEqual(cols('AuthorizationPolicy'), ['Action', 'Age']);
  assert.deepEqual(cols('PeerAuthentication'), ['Mode', 'Age']);
  assert.deepEqual(cols('RequestAuthentication'), ['Age']);
});

test("Service istiod exposes istiod's ports under istiod's names and selects the Deployment's pods", () => {
  const objs = installed();
  const svc = one(objs, 'Service', 'istiod', NS);
  const ports = recs(at(svc, 'spec.ports'), 'ports').map((p) => [p['name'], p['port'], p['targetPort'] ?? p['port']]);
  assert.deepEqual(ports, ISTIOD_PORTS);
  const dep = one(objs, 'Deployment', 'istiod', NS);
  const podLabels = rec(at(dep, 'spec.template.metadata.labels'), 'pod labels');
  for (const sel of [rec(at(svc, 'spec.selector'), 'selector'), rec(at(dep, 'spec.selector.matchLabels'), 'matchLabels')]) {
    for (const [k, v] of Object.entries(sel)) assert.equal(podLabels[k], v, `pod label ${k}`);
  }
  assert.equal(podLabels['app'], 'istiod');
  assert.equal(podLabels['istio'], 'pilot');
  assert.equal(podLabels['sidecar.istio.io/inject'], 'false', 'the control plane must not get a sidecar');
});

test("the Deployment's container ports are the Service's target ports, and its flags, probe and security agree", () => {
  const objs = installed();
  const c = meshdContainer(objs);
  const cports = recs(c['ports'], 'container ports');
  for (const [name, , target] of ISTIOD_PORTS) {
    const p = cports.find((x) => x['containerPort'] === target);
    assert.ok(p, `no container port ${target} for Service port ${name}`);
    assert.equal(p['name'], name, `container port ${target} name`);
  }
  const portOf = (name: string): number => Number(cports.find((x) => x['name'] === name)?.['containerPort']);
  const flags = flagValues(strs(c['args'], 'args'));
  assert.equal(flags.get('--host'), '0.0.0.0', 'meshd must listen on the pod IP, not loopback');
  assert.equal(Number(flags.get('--xds-port') ?? 15010), portOf('grpc-xds'));
  assert.equal(Number(flags.get('--monitoring-port') ?? 15014), portOf('http-monitoring'));
  assert.equal(Number(flags.get('--webhook-port') ?? 15017), portOf('https-webhook'));
  const debugPort = Number(flags.get('--debug-port') ?? 8080);
  assert.equal(debugPort, portOf('http-debug'));
  assert.deepEqual(at(c, 'readinessProbe.httpGet'), { path: '/ready', port: debugPort });
  assert.ok(!flags.has('--config-dir') && !flags.has('--kubeconfig'), 'in a pod meshd reads the cluster it runs in');

  assert.equal(c['image'], 'meshd:dev');
  assert.match(readDeploy('kind/lib.sh'), /MESHD_IMAGE="\$\{MESHD_IMAGE:-meshd:dev\}"/, 'the kind scripts build the image the Deployment runs');
  const sc = rec(c['securityContext'], 'securityContext');
  assert.deepEqual([sc['runAsNonRoot'], sc['readOnlyRootFilesystem'], sc['runAsUser'], sc['allowPrivilegeEscalation']], [true, true, 1337, false]);
  assert.deepEqual(at(sc, 'capabilities.drop'), ['ALL']);
  assert.ok(at(c, 'resources.requests.cpu'), 'CPU requests (the autoscaler scales on them)');
  const env = recs(c['env'], 'env').map((e) => e['name']);
  for (const n of ['POD_NAME', 'POD_NAMESPACE']) assert.ok(env.includes(n), `env ${n}`);

  const dep = one(objs, 'Deployment', 'istiod', NS);
  one(objs, 'ServiceAccount', String(at(dep, 'spec.template.spec.serviceAccountName')), NS);
  const pdb = one(objs, 'PodDisruptionBudget', 'istiod', NS);
  assert.equal(at(pdb, 'spec.minAvailable'), 1);
  const hpa = one(objs, 'HorizontalPodAutoscaler', 'istiod', NS);
  assert.equal(hpa['apiVersion'], 'autoscaling/v2');
  assert.deepEqual([at(hpa, 'spec.minReplicas'), at(hpa, 'spec.maxReplicas'), at(hpa, 'spec.scaleTargetRef.name')], [1, 5, 'istiod']);
  assert.deepEqual(at(rec(list(at(hpa, 'spec.metrics'), 'metrics')[0], 'metric'), 'resource'), { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } });
  assert.equal(at(dep, 'spec.replicas'), undefined, 'the autoscaler owns the replica count');
});

test("the Deployment passes only flags that meshd's CLI accepts", () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const accepted = new Set(r.stdout.match(/--[a-z][a-z0-9-]*/g) ?? []);
  assert.ok(accepted.has('--host'), `unexpected --help output:\n${r.stdout}`);
  const used = strs(meshdContainer(installed())['args'], 'args')
    .filter((a) => a.startsWith('--'))
    .map((a) => a.split('=')[0] as string);
  assert.ok(used.length > 0);
  for (const flag of used) assert.ok(accepted.has(flag), `meshd does not accept ${flag}; it accepts ${[...accepted].join(' ')}`);
});

test('the webhooks call Service istiod in istio-system on /inject and /validate, through 443 to https-webhook', () => {
  const objs = installed();
  const svcPort = recs(at(one(objs, 'Service', 'istiod', NS), 'spec.ports'), 'ports').find((p) => p['port'] === 443);
  assert.ok(svcPort, 'Service istiod has no port 443');
  const container = recs(meshdContainer(objs)['ports'], 'ports').find((p) => p['containerPort'] === svcPort['targetPort']);
  assert.equal(container?.['name'], 'https-webhook');
  const check = (cfg: J, pathName: string): J[] => {
    const hooks = recs(cfg['webhooks'], 'webhooks');
    assert.ok(hooks.length > 0);
    for (const h of hooks) {
      assert.deepEqual(at(h, 'clientConfig.service'), { name: 'istiod', namespace: NS, path: pathName, port: 443 }, String(h['name']));
      assert.equal(h['sideEffects'], 'None');
      assert.ok(strs(h['admissionReviewVersions'], 'admissionReviewVersions').includes('v1'));
    }
    return hooks;
  };
  const injector = check(one(objs, 'MutatingWebhookConfiguration', 'istio-sidecar-injector'), '/inject');
  for (const h of injector) {
    assert.equal(h['failurePolicy'], 'Fail');
    assert.deepEqual(h['rules'], [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }]);
  }
  const byNs = injector.find((h) => h['name'] === 'namespace.sidecar-injector.istio.io');
  assert.ok(byNs, 'webhook namespace.sidecar-injector.istio.io');
  assert.deepEqual(at(byNs, 'namespaceSelector.matchExpressions'), [{ key: 'istio-injection', operator: 'In', values: ['enabled'] }]);
  assert.deepEqual(at(byNs, 'objectSelector.matchExpressions'), [{ key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] }]);

  const validator = check(one(objs, 'ValidatingWebhookConfiguration', 'istio-validator-istio-system'), '/validate');
  const groups = new Set(crds(objs).map((c) => String(at(c, 'spec.group'))));
  for (const h of validator) {
    const rules = recs(h['rules'], 'rules');
    assert.deepEqual(new Set(rules.flatMap((r) => strs(r['apiGroups'], 'apiGroups'))), groups, 'validated groups = the CRDs installed');
    for (const r of rules) assert.deepEqual(r['operations'], ['CREATE', 'UPDATE']);
  }
});

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** What the ServiceAccount may do: cluster-wide, or in one namespace. */
function permissions(objs: Doc[], sa: { name: string; namespace: string }): (verb: string, group: string, resource: string, namespace?: string) => boolean {
  const rulesOf = (kind: string, name: string, namespace?: string): Rule[] => recs(one(objs, kind, name, namespace)['rules'], `${kind} ${name} rules`) as unknown as Rule[];
  const bound = (b: J): boolean => recs(b['subjects'], 'subjects').some((s) => s['kind'] === 'ServiceAccount' && s['name'] === sa.name && s['namespace'] === sa.namespace);
  const cluster: Rule[] = ofKind(objs, 'ClusterRoleBinding')
    .filter(bound)
    .flatMap((b) => rulesOf('ClusterRole', String(at(b, 'roleRef.name'))));
  const namespaced = new Map<string, Rule[]>();
  for (const b of ofKind(objs, 'RoleBinding').filter(bound)) {
    const ns = String(meta(b).namespace);
    const kind = String(at(b, 'roleRef.kind'));
    namespaced.set(ns, [...(namespaced.get(ns) ?? []), ...rulesOf(kind, String(at(b, 'roleRef.name')), kind === 'Role' ? ns : undefined)]);
  }
  const match = (rules: Rule[], verb: string, group: string, resource: string): boolean =>
    rules.some(
      (r) =>
        !r.resourceNames &&
        [group, '*'].some((g) => r.apiGroups.includes(g)) &&
        [resource, '*'].some((x) => r.resources.includes(x)) &&
        [verb, '*'].some((v) => r.verbs.includes(v)),
    );
  return (verb, group, resource, namespace) => match(cluster, verb, group, resource) || (namespace !== undefined && match(namespaced.get(namespace) ?? [], verb, group, resource));
}

/** Resource names of the kinds meshd's model reads (Istio kinds are checked against the CRDs). */
const RESOURCE: Record<Kind, string> = {
  Namespace: 'namespaces',
  Service: 'services',
  Endpoints: 'endpoints',
  Pod: 'pods',
  EndpointSlice: 'endpointslices',
  Secret: 'secrets',
  ConfigMap: 'configmaps',
  VirtualService: 'virtualservices',
  DestinationRule: 'destinationrules',
  ServiceEntry: 'serviceentries',
  WorkloadEntry: 'workloadentries',
  Gateway: 'gateways',
  Sidecar: 'sidecars',
  PeerAuthentication: 'peerauthentications',
  AuthorizationPolicy: 'authorizationpolicies',
  RequestAuthentication: 'requestauthentications',
  Telemetry: 'telemetries',
  EnvoyFilter: 'envoyfilters',
  GatewayClass: 'gatewayclasses',
  KubernetesGateway: 'gateways',
  HTTPRoute: 'httproutes',
  GRPCRoute: 'grpcroutes',
  TCPRoute: 'tcproutes',
  TLSRoute: 'tlsroutes',
  ReferenceGrant: 'referencegrants',
  BackendTLSPolicy: 'backendtlspolicies',
  ProxyConfig: 'proxyconfigs',
  WorkloadGroup: 'workloadgroups',
  WasmPlugin: 'wasmplugins',
};
const WATCH = ['get', 'list', 'watch'];

test("RBAC grants istiod's service account every verb meshd needs, on every resource it watches", () => {
  const objs = installed();
  const sa = { name: String(at(one(objs, 'Deployment', 'istiod', NS), 'spec.template.spec.serviceAccountName')), namespace: NS };
  const can = permissions(objs, sa);
  // [group, resource, verbs, namespace (cluster-wide when absent)]
  const needs: Array<[string, string, string[], string?]> = [];
  for (const kind of Object.keys(KNOWN_KINDS) as Kind[]) needs.push([KNOWN_KINDS[kind].group, RESOURCE[kind], WATCH]);
  for (const crd of crds(objs)) {
    const [group, plural, kind] = [String(at(crd, 'spec.group')), String(at(crd, 'spec.names.plural')), String(at(crd, 'spec.names.kind'))];
    if (kind in RESOURCE && group !== 'gateway.networking.k8s.io') assert.equal(RESOURCE[kind as Kind], plural, `${kind} resource name`);
    needs.push([group, plural, WATCH], [group, `${plural}/status`, ['get', 'update', 'patch']]);
  }
  needs.push(
    ['', 'nodes', WATCH], // endpoint localities
    ['', 'configmaps', [...WATCH, 'create', 'update']], // istio-ca-root-cert in every namespace
    ['apiextensions.k8s.io', 'customresourcedefinitions', WATCH],
    ['authentication.k8s.io', 'tokenreviews', ['create']], // CSR callers' tokens
    ['authorization.k8s.io', 'subjectaccessreviews', ['create']], // gateway credentials
    ['admissionregistration.k8s.io', 'mutatingwebhookconfigurations', [...WATCH, 'update', 'patch']], // caBundle
    ['admissionregistration.k8s.io', 'validatingwebhookconfigurations', [...WATCH, 'update', 'patch']],
    ['coordination.k8s.io', 'leases', ['get', 'create', 'update'], NS], // leader election
    ['', 'secrets', ['create', 'update'], NS], // istio-ca-secret
    // The Gateway API controller: status, GatewayClass istio, automated deployment (applied server-side).
    ['gateway.networking.k8s.io', 'gatewayclasses/status', ['get', 'update', 'patch']],
    ['gateway.networking.k8s.io', 'gateways/status', ['get', 'update', 'patch']],
    ['gateway.networking.k8s.io', 'httproutes/status', ['get', 'update', 'patch']],
    ['gateway.networking.k8s.io', 'grpcroutes/status', ['get', 'update', 'patch']],
    ['gateway.networking.k8s.io', 'gatewayclasses', ['create']],
    ['apps', 'deployments', ['get', 'create', 'patch']],
    ['', 'services', ['get', 'create', 'patch']],
    ['', 'serviceaccounts', ['get', 'create', 'patch']],
  );
  const missing = needs.flatMap(([g, r, verbs, ns]) => verbs.filter((v) => !can(v, g, r, ns)).map((v) => `${v} ${g || 'core'}/${r}${ns ? ` in ${ns}` : ''}`));
  assert.deepEqual(missing, []);
  // Nothing broader than needed where it matters: the evaluator tells these apart.
  assert.equal(can('delete', '', 'pods'), false);
  assert.equal(can('create', '', 'secrets'), false, 'secrets are written in istio-system only');
  assert.equal(can('create', '', 'secrets', 'default'), false);
  assert.equal(can('update', 'coordination.k8s.io', 'leases', 'default'), false);
  assert.equal(can('create', 'networking.istio.io', 'virtualservices'), false);
});

test('the mesh config points proxies at Service istiod: TLS on 15012 when installed, plaintext on 15010 in kind', () => {
  const objs = installed();
  const svcPorts = recs(at(one(objs, 'Service', 'istiod', NS), 'spec.ports'), 'ports');
  const addressPortName = (address: unknown): string => {
    const m = /^istiod\.istio-system\.svc:(\d+)$/.exec(String(address));
    assert.ok(m, `${String(address)} is not Service istiod`);
    return String(svcPorts.find((p) => p['port'] === Number(m[1]))?.['name']);
  };
  const mesh = (cm: J): J => rec(parseYaml(String(at(cm, 'data.mesh'))), 'mesh');
  const installedMesh = mesh(one(objs, 'ConfigMap', 'istio', NS));
  assert.equal(addressPortName(at(installedMesh, 'defaultConfig.discoveryAddress')), 'https-dns');

  const kind = documents('kind/mesh-plaintext.yaml');
  const plain = rec(mesh(one(kind, 'ConfigMap', 'istio', NS))['defaultConfig'], 'defaultConfig');
  assert.equal(addressPortName(plain['discoveryAddress']), 'grpc-xds');
  assert.equal(plain['controlPlaneAuthPolicy'], 'NONE');
  assert.equal(addressPortName(at(plain, 'proxyMetadata.CA_ADDR')), 'grpc-xds');
  assert.equal(at(plain, 'proxyMetadata.ISTIO_DELTA_XDS'), undefined, 'meshd serves delta xDS: sidecars keep their default');
  // The same settings as the pod annotation the kind scripts use.
  const lib = /PLAINTEXT_PROXY_CONFIG='([^']+)'/.exec(readDeploy('kind/lib.sh'));
  assert.ok(lib, 'PLAINTEXT_PROXY_CONFIG in kind/lib.sh');
  const annotation = JSON.parse(lib[1] as string) as J;
  assert.deepEqual(annotation, plain);
  const sleep = one(documents('kind/sleep.yaml'), 'Deployment', 'sleep', 'default');
  assert.deepEqual(JSON.parse(String(rec(at(sleep, 'spec.template.metadata.annotations'), 'annotations')['proxy.istio.io/config'])), annotation);
});

test('the Dockerfile builds what bin/meshd.js runs, as uid 1337, exposing the Deployment ports', () => {
  const lines = readDeploy('Dockerfile')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  const instr = (name: string): string[] => lines.filter((l) => l.startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim());
  const froms = instr('FROM');
  assert.equal(froms.length, 2, 'a build stage and a runtime stage');
  for (const f of froms) assert.match(f, /^node:(22|24)(-[a-z]+)*-slim\b/);
  assert.deepEqual(JSON.parse(instr('ENTRYPOINT').at(-1) ?? 'null'), ['node', 'bin/meshd.js']);
  assert.equal(instr('USER').at(-1), '1337:1337');
  assert.match(lines.join('\n'), /npm ci\b[\s\S]*npm run build/);
  // Everything the build stage copies from the context exists and is not ignored.
  const ignored = readDeploy('Dockerfile.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const copied = instr('COPY')
    .filter((c) => !c.startsWith('--from'))
    .flatMap((c) => c.split(/\s+/).slice(0, -1));
  assert.ok(copied.includes('src') && copied.includes('package-lock.json'));
  for (const src of copied) {
    assert.ok(fs.existsSync(path.join(ROOT, src)), `COPY ${src}: missing`);
    assert.ok(!ignored.includes(src), `COPY ${src}: excluded by Dockerfile.dockerignore`);
  }
  // bin/meshd.js loads dist/, which the build config writes.
  assert.match(fs.readFileSync(path.join(ROOT, 'bin', 'meshd.js'), 'utf8'), /require\('\.\.\/dist\/main\.js'\)/);
  assert.equal(at(JSON.parse(fs.readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8')) as J, 'compilerOptions.outDir'), 'dist');
  assert.ok(
    instr('COPY').some((c) => /^--from=build \S+\/dist \.\/dist$/.test(c)),
    'the runtime stage copies dist/',
  );
  const exposed = (instr('EXPOSE').at(-1) ?? '').split(/\s+/).map(Number).sort();
  const containerPorts = recs(meshdContainer(installed())['ports'], 'ports')
    .map((p) => Number(p['containerPort']))
    .sort();
  assert.deepEqual(exposed, containerPorts);
  assert.ok(filesUnder(DEPLOY, (n) => n === 'Dockerfile').length === 1);
});

test("kind's sidecars reach the CA over plaintext 15010, so up.sh turns on meshd's --plaintext-ca; the installed Deployment keeps the CA on 15012 only", () => {
  const kind = documents('kind/mesh-plaintext.yaml');
  const plain = rec(rec(parseYaml(String(at(one(kind, 'ConfigMap', 'istio', NS), 'data.mesh'))), 'mesh')['defaultConfig'], 'defaultConfig');
  assert.match(String(at(plain, 'proxyMetadata.CA_ADDR')), /:15010$/);
  const up = readDeploy('kind/up.sh');
  assert.match(up, /"path":"\/spec\/template\/spec\/containers\/0\/args\/-","value":"--plaintext-ca"/, 'up.sh adds --plaintext-ca to the Deployment');
  assert.ok(up.indexOf('--plaintext-ca') > up.indexOf('apply -k'), 'after the manifests are applied');
  assert.ok(!strs(meshdContainer(installed())['args'], 'args').includes('--plaintext-ca'), 'the installed Deployment does not serve the CA in plaintext');
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /--plaintext-ca/);
});

test('`kubectl kustomize deploy/` renders exactly the objects these checks read from the files', (t) => {
  if (!haveKustomize()) {
    assert.notEqual(process.env['CI'], 'true', 'kubectl (with kustomize) is required on CI');
    t.skip('kubectl not installed');
    return;
  }
  const norm = (d: Doc): string => JSON.stringify(d.obj, (_k, v: unknown) => (isPlain(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v));
  const isPlain = (v: unknown): v is J => typeof v === 'object' && v !== null && !Array.isArray(v);
  assert.deepEqual(kustomize('.').map(norm).sort(), installed().map(norm).sort());
});
