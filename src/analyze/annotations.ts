/**
 * Istio's annotations.K8sAnalyzer: every annotation in an `istio.io` domain on a Namespace,
 * Service or Pod must be one Istio defines (istio/api annotation/annotations.yaml), on a kind it
 * applies to, and not deprecated. The table is Istio's, resource kinds included.
 */
import { MSG } from './messages';
import { type AnalysisContext, type Analyzer } from './util';

interface AnnotationDef {
  kinds: readonly string[];
  deprecated?: boolean;
}

const POD = ['Pod'];
const SERVICE = ['Service'];
const WORKLOAD_ENTRY = ['WorkloadEntry'];
const GATEWAY = ['Gateway'];
const ANY = ['Any'];

/** Istio's annotations (istio/api annotation), by name: the kinds each applies to. */
export const ISTIO_ANNOTATIONS: ReadonlyMap<string, AnnotationDef> = new Map<string, AnnotationDef>([
  ['alpha.istio.io/canonical-serviceaccounts', { kinds: SERVICE, deprecated: true }],
  ['alpha.istio.io/kubernetes-serviceaccounts', { kinds: SERVICE, deprecated: true }],
  ['ambient.istio.io/bypass-inbound-capture', { kinds: POD }],
  ['ambient.istio.io/redirection', { kinds: POD }],
  ['ambient.istio.io/waypoint-inbound-binding', { kinds: ['GatewayClass', 'Gateway'] }],
  ['galley.istio.io/analyze-suppress', { kinds: ANY }],
  ['gateway.istio.io/controller-version', { kinds: ANY }],
  ['gateway.istio.io/name-override', { kinds: GATEWAY }],
  ['gateway.istio.io/service-account', { kinds: GATEWAY }],
  ['inject.istio.io/templates', { kinds: POD }],
  ['install.operator.istio.io/chart-owner', { kinds: ANY }],
  ['install.operator.istio.io/owner-generation', { kinds: ANY }],
  ['install.operator.istio.io/version', { kinds: ANY }],
  ['istio.io/autoRegistrationGroup', { kinds: WORKLOAD_ENTRY }],
  ['istio.io/connectedAt', { kinds: WORKLOAD_ENTRY }],
  ['istio.io/disconnectedAt', { kinds: WORKLOAD_ENTRY }],
  ['istio.io/dry-run', { kinds: ['AuthorizationPolicy'] }],
  ['istio.io/rev', { kinds: POD }],
  ['istio.io/workloadController', { kinds: WORKLOAD_ENTRY }],
  ['networking.istio.io/exportTo', { kinds: SERVICE }],
  ['networking.istio.io/service-type', { kinds: GATEWAY }],
  ['networking.istio.io/traffic-distribution', { kinds: ['Service', 'ServiceEntry'] }],
  ['prometheus.istio.io/merge-metrics', { kinds: POD }],
  ['proxy.istio.io/config', { kinds: POD }],
  ['proxy.istio.io/overrides', { kinds: POD }],
  ['readiness.status.sidecar.istio.io/applicationPorts', { kinds: POD }],
  ['readiness.status.sidecar.istio.io/failureThreshold', { kinds: POD }],
  ['readiness.status.sidecar.istio.io/initialDelaySeconds', { kinds: POD }],
  ['readiness.status.sidecar.istio.io/periodSeconds', { kinds: POD }],
  ['sidecar.istio.io/agentLogLevel', { kinds: POD }],
  ['sidecar.istio.io/bootstrapOverride', { kinds: POD }],
  ['sidecar.istio.io/componentLogLevel', { kinds: POD }],
  ['sidecar.istio.io/controlPlaneAuthPolicy', { kinds: POD, deprecated: true }],
  ['sidecar.istio.io/discoveryAddress', { kinds: POD, deprecated: true }],
  ['sidecar.istio.io/enableCoreDump', { kinds: POD }],
  ['sidecar.istio.io/extraStatTags', { kinds: POD, deprecated: true }],
  ['sidecar.istio.io/inject', { kinds: POD, deprecated: true }],
  ['sidecar.istio.io/interceptionMode', { kinds: POD }],
  ['sidecar.istio.io/logLevel', { kinds: POD }],
  ['sidecar.istio.io/nativeSidecar', { kinds: POD }],
  ['sidecar.istio.io/proxyCPU', { kinds: POD }],
  ['sidecar.istio.io/proxyCPULimit', { kinds: POD }],
  ['sidecar.istio.io/proxyImage', { kinds: POD }],
  ['sidecar.istio.io/proxyImageType', { kinds: POD }],
  ['sidecar.istio.io/proxyMemory', { kinds: POD }],
  ['sidecar.istio.io/proxyMemoryLimit', { kinds: POD }],
  ['sidecar.istio.io/rewriteAppHTTPProbers', { kinds: POD }],
  ['sidecar.istio.io/statsHistogramBuckets', { kinds: POD }],
  ['sidecar.istio.io/statsInclusionPrefixes', { kinds: POD, deprecated: true }],
  ['sidecar.istio.io/statsInclusionRegexps', { kinds: POD, deprecated: true }],
  ['sidecar.istio.io/statsInclusionSuffixes', { kinds: POD, deprecated: true }],
  ['sidecar.istio.io/status', { kinds: POD }],
  ['sidecar.istio.io/userVolume', { kinds: POD }],
  ['sidecar.istio.io/userVolumeMount', { kinds: POD }],
  ['status.sidecar.istio.io/port', { kinds: POD }],
  ['topology.istio.io/controlPlaneClusters', { kinds: ['Namespace'] }],
  ['traffic.istio.io/nodeSelector', { kinds: SERVICE }],
  ['traffic.sidecar.istio.io/excludeInboundPorts', { kinds: POD }],
  ['traffic.sidecar.istio.io/excludeInterfaces', { kinds: POD }],
  ['traffic.sidecar.istio.io/excludeOutboundIPRanges', { kinds: POD }],
  ['traffic.sidecar.istio.io/excludeOutboundPorts', { kinds: POD }],
  ['traffic.sidecar.istio.io/includeInboundPorts', { kinds: POD }],
  ['traffic.sidecar.istio.io/includeOutboundIPRanges', { kinds: POD }],
  ['traffic.sidecar.istio.io/includeOutboundPorts', { kinds: POD }],
  ['traffic.sidecar.istio.io/kubevirtInterfaces', { kinds: POD }],
]);

/** `sidecar.istio.io/inject` → true: the key's prefix (before `/`) is in an istio.io domain. */
export function isIstioAnnotation(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash < 0) return false;
  const domain = key.slice(0, slash);
  return domain === 'istio.io' || domain.endsWith('.istio.io');
}

const pathOf = (key: string): string => `metadata.annotations[${JSON.stringify(key)}]`;

export const annotationsAnalyzer: Analyzer = {
  name: 'annotations.K8sAnalyzer',
  description: 'Checks for misplaced and invalid Istio annotations in Kubernetes resources',
  run(c: AnalysisContext): void {
    for (const kind of ['Namespace', 'Service', 'Pod']) {
      for (const o of c.of(kind)) {
        for (const key of Object.keys(o.metadata.annotations).sort()) {
          if (!isIstioAnnotation(key)) continue;
          const def = ISTIO_ANNOTATIONS.get(key);
          if (!def) {
            c.report(MSG.UnknownAnnotation, o, `Unknown annotation: ${key}`, pathOf(key));
            continue;
          }
          // The injection label supersedes the annotation; both set is how Istio migrates.
          if (def.deprecated && !(key === 'sidecar.istio.io/inject' && o.metadata.labels[key] !== undefined)) {
            c.report(MSG.DeprecatedAnnotation, o, `Annotation ${JSON.stringify(key)} has been deprecated and may not work in future Istio versions.`, pathOf(key));
          }
          if (!def.kinds.includes('Any') && !def.kinds.includes(kind)) {
            c.report(MSG.MisplacedAnnotation, o, `Misplaced annotation: ${key} can only be applied to ${def.kinds.join(', ')}`, pathOf(key));
          }
        }
      }
    }
  },
};

/** Codes a resource suppresses for itself with `galley.istio.io/analyze-suppress` (`*`: every code). */
export function suppressedByAnnotation(annotations: Readonly<Record<string, string>>, code: string): boolean {
  const v = annotations['galley.istio.io/analyze-suppress'];
  if (v === undefined) return false;
  return v
    .split(',')
    .map((x) => x.trim())
    .some((x) => x === '*' || x === code);
}
