/**
 * The sidecar template as pure functions: istiod's `injection-template.yaml` (Istio 1.24, sidecar
 * mode, no CNI, no native sidecars) rendered for one pod: the `istio-init` init container, the
 * `istio-proxy` container, the volumes they mount, and the labels and annotations injection adds.
 * Pod annotations override the template as in Istio (`sidecar.istio.io/proxyImage`,
 * `sidecar.istio.io/interceptionMode`, `traffic.sidecar.istio.io/*`, log levels, proxy resources,
 * readiness probe timings).
 */
import type { FieldError } from '../model/objects';
import { imageWithType } from '../model/proxy-config';
import type { Labels } from './decide';
import type { InjectionOptions, ResourceRequirements } from './options';
import { type Json, type WorkloadMeta, ownerUri, records, str } from './workload';

export const PROXY_CONTAINER = 'istio-proxy';
export const INIT_CONTAINER = 'istio-init';
export const PROXY_UID = 1337;
export const ENVOY_PROM_PORT = 15090;
export const STATUS_PORT = 15021;

export interface TemplateInput {
  labels: Labels;
  annotations: Labels;
  /** The pod's own containers (an `istio-proxy` among them is left out of APP_CONTAINERS). */
  containers: readonly Json[];
  workload: WorkloadMeta;
  opts: InjectionOptions;
}

export interface SidecarParts {
  initContainers: Json[];
  containers: Json[];
  volumes: Json[];
  /** Labels to set when the pod does not already have them. */
  labels: Record<string, string>;
  /** Annotations to set when the pod does not already have them. */
  annotations: Record<string, string>;
}

const ann = (a: Labels, key: string, def: string): string => a[key] ?? def;

const fieldEnv = (name: string, fieldPath: string): Json => ({ name, valueFrom: { fieldRef: { fieldPath } } });
const resourceEnv = (name: string, resource: string): Json => ({ name, valueFrom: { resourceFieldRef: { divisor: '1', resource } } });

/** Integer annotations (probe timings): a bad value is an error, not a silent default. */
function intAnnotation(a: Labels, key: string, def: number, errors: FieldError[]): number {
  const v = a[key];
  if (v === undefined) return def;
  if (!/^\d+$/.test(v.trim())) {
    errors.push({ path: `metadata.annotations[${JSON.stringify(key)}]`, message: `must be a non-negative integer (got ${JSON.stringify(v)})` });
    return def;
  }
  return Number(v.trim());
}

function proxyResources(a: Labels, def: ResourceRequirements): Json {
  const pick = (cpu: string, memory: string): Record<string, string> | undefined => {
    const r: Record<string, string> = {};
    if (a[cpu] !== undefined) r['cpu'] = a[cpu] as string;
    if (a[memory] !== undefined) r['memory'] = a[memory] as string;
    return Object.keys(r).length > 0 ? r : undefined;
  };
  const requests = pick('sidecar.istio.io/proxyCPU', 'sidecar.istio.io/proxyMemory');
  const limits = pick('sidecar.istio.io/proxyCPULimit', 'sidecar.istio.io/proxyMemoryLimit');
  if (requests || limits) return { ...(limits ? { limits } : {}), ...(requests ? { requests } : {}) };
  return { ...(def.limits ? { limits: { ...def.limits } } : {}), ...(def.requests ? { requests: { ...def.requests } } : {}) };
}

/** `excludeInboundPort` in Istio's template: the status port joins the excluded list once. */
function excludedInbound(statusPort: number, annotated: string): string {
  const ports = annotated
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const status = String(statusPort);
  if (statusPort === 0 || ports.includes(status)) return ports.join(',');
  return [...ports, status].join(',');
}

/** ISTIO_META_POD_PORTS: every declared container port, as the template's `structToJSON`. */
function podPortsJson(containers: readonly Json[]): string {
  const entries: string[] = [];
  for (const c of containers) {
    for (const p of records(c['ports'])) {
      const o: Json = {};
      for (const k of ['name', 'hostPort', 'containerPort', 'protocol', 'hostIP']) if (p[k] !== undefined) o[k] = p[k];
      entries.push(`${entries.length === 0 ? '' : ','}${JSON.stringify(o)}`);
    }
  }
  return `[${entries.map((e) => `\n    ${e}`).join('')}\n]`;
}

export function sidecarTemplate(input: TemplateInput): { parts: SidecarParts; errors: FieldError[] } {
  const { labels, annotations: a, workload, opts } = input;
  const errors: FieldError[] = [];
  const mode = ann(a, 'sidecar.istio.io/interceptionMode', opts.interceptionMode);
  if (!['REDIRECT', 'TPROXY', 'NONE'].includes(mode)) {
    errors.push({ path: 'metadata.annotations["sidecar.istio.io/interceptionMode"]', message: `must be REDIRECT, TPROXY or NONE (got ${JSON.stringify(mode)})` });
  }
  // ProxyConfig `image.imageType` (or the pod's `sidecar.istio.io/proxyImageType`) picks the tag's
  // variant, as istiod's ProxyImage; a `sidecar.istio.io/proxyImage` annotation is used as given.
  const pcImage = opts.proxyConfig['image'];
  const pcImageType = typeof pcImage === 'object' && pcImage !== null ? (pcImage as Record<string, unknown>)['imageType'] : undefined;
  const imageType = a['sidecar.istio.io/proxyImageType'] ?? (typeof pcImageType === 'string' ? pcImageType : undefined);
  const image = ann(a, 'sidecar.istio.io/proxyImage', imageWithType(opts.image, imageType));
  const resources = proxyResources(a, opts.resources);
  const pull = opts.imagePullPolicy ? { imagePullPolicy: opts.imagePullPolicy } : {};
  const agentLog = ann(a, 'sidecar.istio.io/agentLogLevel', opts.agentLogLevel);
  const appContainers = input.containers.map((c) => str(c['name']) ?? '').filter((n) => n !== '' && n !== PROXY_CONTAINER);

  const initContainers: Json[] = [];
  if (mode !== 'NONE') {
    const args = [
      'istio-iptables',
      '-p',
      '15001',
      '-z',
      '15006',
      '-u',
      String(PROXY_UID),
      '-m',
      mode,
      '-i',
      ann(a, 'traffic.sidecar.istio.io/includeOutboundIPRanges', '*'),
      '-x',
      ann(a, 'traffic.sidecar.istio.io/excludeOutboundIPRanges', ''),
      '-b',
      ann(a, 'traffic.sidecar.istio.io/includeInboundPorts', '*'),
      '-d',
      [ENVOY_PROM_PORT, STATUS_PORT, excludedInbound(opts.statusPort, ann(a, 'traffic.sidecar.istio.io/excludeInboundPorts', ''))].filter((p) => p !== '').join(','),
    ];
    const includeOut = a['traffic.sidecar.istio.io/includeOutboundPorts'];
    if (includeOut !== undefined) args.push('-q', includeOut);
    const excludeOut = a['traffic.sidecar.istio.io/excludeOutboundPorts'];
    if (excludeOut !== undefined) args.push('-o', excludeOut);
    const kubevirt = a['traffic.sidecar.istio.io/kubevirtInterfaces'];
    if (kubevirt !== undefined) args.push('-k', kubevirt);
    const excludeIf = a['traffic.sidecar.istio.io/excludeInterfaces'];
    if (excludeIf !== undefined) args.push('-c', excludeIf);
    args.push(`--log_output_level=${agentLog}`);
    initContainers.push({
      name: INIT_CONTAINER,
      image,
      args,
      ...pull,
      resources: structuredClone(resources),
      securityContext: {
        allowPrivilegeEscalation: false,
        capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
        privileged: false,
        readOnlyRootFilesystem: false,
        runAsGroup: 0,
        runAsNonRoot: false,
        runAsUser: 0,
      },
    });
  }

  const tproxy = mode === 'TPROXY';
  const probe = (periodSeconds: number, failureThreshold: number, initialDelaySeconds: number): Json => ({
    httpGet: { path: '/healthz/ready', port: STATUS_PORT },
    ...(initialDelaySeconds > 0 ? { initialDelaySeconds } : {}),
    periodSeconds,
    timeoutSeconds: 3,
    failureThreshold,
  });
  const proxyConfig = JSON.stringify({ ...opts.proxyConfig, discoveryAddress: opts.discoveryAddress });
  const metadataEnv = Object.entries((opts.proxyConfig['proxyMetadata'] ?? {}) as Record<string, string>).map(([name, value]) => ({ name, value }));
  const overridden = new Set(metadataEnv.map((e) => e.name));
  const env: Json[] = [
    { name: 'PILOT_CERT_PROVIDER', value: 'istiod' },
    { name: 'CA_ADDR', value: opts.caAddress },
    fieldEnv('POD_NAME', 'metadata.name'),
    fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
    fieldEnv('INSTANCE_IP', 'status.podIP'),
    fieldEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
    fieldEnv('HOST_IP', 'status.hostIP'),
    resourceEnv('ISTIO_CPU_LIMIT', 'limits.cpu'),
    { name: 'PROXY_CONFIG', value: `${proxyConfig}\n` },
    { name: 'ISTIO_META_POD_PORTS', value: podPortsJson(input.containers) },
    { name: 'ISTIO_META_APP_CONTAINERS', value: appContainers.join(',') },
    resourceEnv('GOMEMLIMIT', 'limits.memory'),
    { name: 'ISTIO_META_CLUSTER_ID', value: opts.clusterId },
    fieldEnv('ISTIO_META_NODE_NAME', 'spec.nodeName'),
    { name: 'ISTIO_META_INTERCEPTION_MODE', value: mode },
    ...(workload.name
      ? [
          { name: 'ISTIO_META_WORKLOAD_NAME', value: workload.name },
          { name: 'ISTIO_META_OWNER', value: ownerUri(workload) },
        ]
      : []),
    { name: 'ISTIO_META_MESH_ID', value: opts.meshId },
    ...(opts.istioVersion ? [{ name: 'ISTIO_META_ISTIO_VERSION', value: opts.istioVersion }] : []),
    { name: 'TRUST_DOMAIN', value: opts.trustDomain },
  ].filter((e) => !overridden.has(e['name'] as string));
  env.push(...metadataEnv);
  const proxy: Json = {
    name: PROXY_CONTAINER,
    image,
    args: [
      'proxy',
      'sidecar',
      '--domain',
      `$(POD_NAMESPACE).svc.${opts.clusterDomain}`,
      `--proxyLogLevel=${ann(a, 'sidecar.istio.io/logLevel', opts.proxyLogLevel)}`,
      `--proxyComponentLogLevel=${ann(a, 'sidecar.istio.io/componentLogLevel', opts.proxyComponentLogLevel)}`,
      `--log_output_level=${agentLog}`,
    ],
    ports: [{ containerPort: ENVOY_PROM_PORT, protocol: 'TCP', name: 'http-envoy-prom' }],
    env,
    ...pull,
    readinessProbe: probe(
      intAnnotation(a, 'readiness.status.sidecar.istio.io/periodSeconds', 15, errors),
      intAnnotation(a, 'readiness.status.sidecar.istio.io/failureThreshold', 4, errors),
      intAnnotation(a, 'readiness.status.sidecar.istio.io/initialDelaySeconds', 0, errors),
    ),
    startupProbe: probe(1, 600, 0),
    // ProxyConfig holdApplicationUntilProxyStarts: the app containers start once the proxy is ready.
    ...(opts.proxyConfig['holdApplicationUntilProxyStarts'] === true ? { lifecycle: { postStart: { exec: { command: ['pilot-agent', 'wait'] } } } } : {}),
    resources,
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: tproxy ? { add: ['NET_ADMIN'], drop: ['ALL'] } : { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsGroup: PROXY_UID,
      runAsNonRoot: !tproxy,
      runAsUser: tproxy ? 0 : PROXY_UID,
    },
    volumeMounts: [
      { name: 'workload-socket', mountPath: '/var/run/secrets/workload-spiffe-uds' },
      { name: 'credential-socket', mountPath: '/var/run/secrets/credential-uds' },
      { name: 'workload-certs', mountPath: '/var/run/secrets/workload-spiffe-credentials' },
      { name: 'istiod-ca-cert', mountPath: '/var/run/secrets/istio' },
      { name: 'istio-data', mountPath: '/var/lib/istio/data' },
      { name: 'istio-envoy', mountPath: '/etc/istio/proxy' },
      { name: 'istio-token', mountPath: '/var/run/secrets/tokens' },
      { name: 'istio-podinfo', mountPath: '/etc/istio/pod' },
    ],
  };

  const volumes: Json[] = [
    { name: 'workload-socket', emptyDir: {} },
    { name: 'credential-socket', emptyDir: {} },
    { name: 'workload-certs', emptyDir: {} },
    { name: 'istio-envoy', emptyDir: { medium: 'Memory' } },
    { name: 'istio-data', emptyDir: {} },
    {
      name: 'istio-podinfo',
      downwardAPI: {
        items: [
          { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
          { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
        ],
      },
    },
    { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } }] } },
    { name: 'istiod-ca-cert', configMap: { name: 'istio-ca-root-cert' } },
  ];

  const canonicalName = labels['service.istio.io/canonical-name'] ?? labels['app.kubernetes.io/name'] ?? labels['app'] ?? workload.name;
  const canonicalRevision = labels['service.istio.io/canonical-revision'] ?? labels['app.kubernetes.io/version'] ?? labels['version'] ?? 'latest';
  const outLabels: Record<string, string> = {
    'security.istio.io/tlsMode': 'istio',
    'service.istio.io/canonical-name': canonicalName,
    'service.istio.io/canonical-revision': canonicalRevision,
  };
  const outAnnotations: Record<string, string> = { 'istio.io/rev': opts.revision };
  if (appContainers[0] !== undefined) {
    outAnnotations['kubectl.kubernetes.io/default-container'] = appContainers[0];
    outAnnotations['kubectl.kubernetes.io/default-logs-container'] = appContainers[0];
  }
  // Metrics merging: the agent serves the app's and Envoy's metrics on its status port.
  if (a['prometheus.io/scrape'] === undefined) {
    Object.assign(outAnnotations, { 'prometheus.io/path': '/stats/prometheus', 'prometheus.io/port': String(opts.statusPort), 'prometheus.io/scrape': 'true' });
  }
  return { parts: { initContainers, containers: [proxy], volumes, labels: outLabels, annotations: outAnnotations }, errors };
}
