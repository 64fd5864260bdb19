/**
 * istiod's automated deployment for one Gateway (its `kube-gateway.yaml` template, pure): the
 * ServiceAccount, Deployment and Service `<gateway>-istio`, owned by the Gateway so Kubernetes
 * garbage-collects them with it. The proxy container is the injector's (same image, env,
 * volumes, PROXY_CONFIG), run as `proxy router`.
 */
import type { InjectionOptions } from '../inject/options';
import { sidecarTemplate, PROXY_CONTAINER, STATUS_PORT, ENVOY_PROM_PORT } from '../inject/template';
import {
  deploymentNames,
  GATEWAY_API_GROUP,
  GATEWAY_CLASS_LABEL,
  GATEWAY_MANAGED_LABEL,
  GATEWAY_MANAGED_VALUE,
  GATEWAY_NAME_LABEL,
  ISTIO_GATEWAY_NAME_LABEL,
  OMITTED_ANNOTATIONS,
  SERVICE_TYPE_ANNOTATION,
} from './names';
import { type Json, isRecord, records, str } from './kube-rest';

export interface RenderedGateway {
  serviceAccount: Json;
  deployment: Json;
  service: Json;
}

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isRecord(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

/** spec.infrastructure labels and annotations; without infrastructure, the Gateway's own (istiod's fallback). */
export function infrastructureOf(gw: Json): { labels: Record<string, string>; annotations: Record<string, string> } {
  const meta = isRecord(gw['metadata']) ? gw['metadata'] : {};
  const spec = isRecord(gw['spec']) ? gw['spec'] : {};
  const infra = spec['infrastructure'];
  if (isRecord(infra)) return { labels: stringMap(infra['labels']), annotations: stringMap(infra['annotations']) };
  return { labels: stringMap(meta['labels']), annotations: stringMap(meta['annotations']) };
}

/**
 * A Gateway deployed by hand, as istiod's IsManaged decides: more than one address, or one of
 * type Hostname (or NamedAddress) naming an existing Service. One IPAddress is still automated
 * (it becomes the Service's loadBalancerIP).
 */
export function isManual(gw: Json): boolean {
  const spec = isRecord(gw['spec']) ? gw['spec'] : {};
  return manualAddresses(records(spec['addresses']));
}

export function manualAddresses(addresses: readonly Json[]): boolean {
  if (addresses.length === 0) return false;
  if (addresses.length > 1) return true;
  const t = str(addresses[0]?.['type']);
  return t !== undefined && t !== 'IPAddress';
}

/** Listener ports as istiod's extractServicePorts: status-port first, then one port per listener port number. */
export function servicePorts(gw: Json): Json[] {
  const spec = isRecord(gw['spec']) ? gw['spec'] : {};
  const ports: Json[] = [{ name: 'status-port', port: STATUS_PORT, protocol: 'TCP', appProtocol: 'tcp' }];
  const seen = new Set<number>();
  records(spec['listeners']).forEach((l, i) => {
    const port = l['port'];
    if (typeof port !== 'number' || seen.has(port)) return;
    seen.add(port);
    const protocol = (str(l['protocol']) ?? 'TCP').toLowerCase();
    const listenerName = str(l['name']) ?? '';
    const name = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(listenerName) && listenerName.length <= 63 ? listenerName : `${protocol}-${i}`;
    ports.push({ name, port, protocol: 'TCP', appProtocol: protocol });
  });
  return ports;
}

function without(annotations: Record<string, string>, omit: readonly string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(annotations).filter(([k]) => !omit.includes(k)));
}

/** The three objects for a Gateway (its raw JSON, with metadata.uid) of class `className`. */
export function renderGateway(gw: Json, className: string, injection: InjectionOptions): RenderedGateway {
  const meta = isRecord(gw['metadata']) ? gw['metadata'] : {};
  const name = str(meta['name']) ?? '';
  const namespace = str(meta['namespace']) ?? 'default';
  const uid = str(meta['uid']) ?? '';
  const gwAnnotations = stringMap(meta['annotations']);
  const infra = infrastructureOf(gw);
  const names = deploymentNames(name, gwAnnotations);
  const annotations = without(infra.annotations, OMITTED_ANNOTATIONS);
  const ownerReferences = [{ apiVersion: `${GATEWAY_API_GROUP}/v1`, kind: 'Gateway', name, uid }];
  const objectLabels = { ...infra.labels, [GATEWAY_NAME_LABEL]: name, [GATEWAY_CLASS_LABEL]: className };
  const meta0 = (objName: string, labels: Record<string, string>): Json => ({ name: objName, namespace, labels, annotations, ownerReferences });

  const serviceAccount: Json = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta0(names.serviceAccount, objectLabels) };

  // The injector's proxy for this workload: same image, environment and volumes, no init container.
  const { parts } = sidecarTemplate({
    labels: {},
    annotations: { ...gwAnnotations, ...infra.annotations },
    containers: [],
    workload: { name: names.deployment, namespace, kind: 'Deployment', apiVersion: 'apps/v1' },
    opts: injection,
  });
  const sidecar = parts.containers[0] ?? {};
  const a = (key: string, def: string): string => infra.annotations[key] ?? gwAnnotations[key] ?? def;
  const image = sidecar['image'];
  const probe = (failureThreshold: number, initialDelaySeconds: number, periodSeconds: number): Json => ({
    failureThreshold,
    httpGet: { path: '/healthz/ready', port: STATUS_PORT, scheme: 'HTTP' },
    initialDelaySeconds,
    periodSeconds,
    successThreshold: 1,
    timeoutSeconds: 1,
  });
  const proxy: Json = {
    name: PROXY_CONTAINER,
    image,
    ...(injection.imagePullPolicy ? { imagePullPolicy: injection.imagePullPolicy } : {}),
    resources: sidecar['resources'],
    securityContext: {
      capabilities: { drop: ['ALL'] },
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsUser: 1337,
      runAsGroup: 1337,
      runAsNonRoot: true,
    },
    ports: [
      { containerPort: injection.statusPort, name: 'metrics', protocol: 'TCP' },
      { containerPort: STATUS_PORT, name: 'status-port', protocol: 'TCP' },
      { containerPort: ENVOY_PROM_PORT, protocol: 'TCP', name: 'http-envoy-prom' },
    ],
    args: [
      'proxy',
      'router',
      '--domain',
      `$(POD_NAMESPACE).svc.${injection.clusterDomain}`,
      '--proxyLogLevel',
      a('sidecar.istio.io/logLevel', injection.proxyLogLevel),
      '--proxyComponentLogLevel',
      a('sidecar.istio.io/componentLogLevel', injection.proxyComponentLogLevel),
      '--log_output_level',
      a('sidecar.istio.io/agentLogLevel', injection.agentLogLevel),
    ],
    env: sidecar['env'],
    startupProbe: probe(30, 1, 1),
    readinessProbe: probe(4, 0, 15),
    volumeMounts: sidecar['volumeMounts'],
  };
  const podLabels = {
    'sidecar.istio.io/inject': 'false',
    'service.istio.io/canonical-name': names.deployment,
    'service.istio.io/canonical-revision': 'latest',
    ...infra.labels,
    [GATEWAY_NAME_LABEL]: name,
    [ISTIO_GATEWAY_NAME_LABEL]: name,
    [GATEWAY_CLASS_LABEL]: className,
    [GATEWAY_MANAGED_LABEL]: GATEWAY_MANAGED_VALUE,
    'istio.io/rev': injection.revision,
  };
  const deployment: Json = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta0(names.deployment, { ...objectLabels, [GATEWAY_MANAGED_LABEL]: GATEWAY_MANAGED_VALUE }),
    spec: {
      selector: { matchLabels: { [GATEWAY_NAME_LABEL]: name } },
      template: {
        metadata: {
          annotations: {
            ...annotations,
            'istio.io/rev': injection.revision,
            'prometheus.io/path': '/stats/prometheus',
            'prometheus.io/port': String(injection.statusPort),
            'prometheus.io/scrape': 'true',
          },
          labels: podLabels,
        },
        spec: {
          securityContext: { sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }] },
          serviceAccountName: names.serviceAccount,
          containers: [proxy],
          volumes: parts.volumes,
        },
      },
    },
  };

  const wantedType = a(SERVICE_TYPE_ANNOTATION, 'LoadBalancer');
  const type = SERVICE_TYPES.includes(wantedType) ? wantedType : 'LoadBalancer';
  const spec = isRecord(gw['spec']) ? gw['spec'] : {};
  const lbIp = str(records(spec['addresses'])[0]?.['value']);
  const service: Json = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta0(names.deployment, objectLabels),
    spec: {
      ipFamilyPolicy: 'PreferDualStack',
      ports: servicePorts(gw),
      selector: { [GATEWAY_NAME_LABEL]: name },
      ...(type === 'LoadBalancer' && lbIp ? { loadBalancerIP: lbIp } : {}),
      type,
    },
  };
  return { serviceAccount, deployment, service };
}
