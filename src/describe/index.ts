/**
 * `meshctl x describe pod|service`: what istioctl's `x describe` prints (istioctl/pkg/describe),
 * computed from the objects with meshd's own model: the DestinationRule and VirtualService are
 * the ones meshd's generator picks for the pod's namespace (model/lookup.ts), the effective
 * mTLS mode and the RBAC policy names are those of meshd's inbound config
 * (generate/security/peer-authn.ts, authz.ts). istioctl reads the same from the pod's Envoy
 * config dump; meshd computes it from the config meshd would send, so no proxy needs to be
 * connected. Pure: objects in, text out.
 */
import { DEFAULT_INPUT_LIMITS } from '../config/limits';
import { selects, toFqdn } from '../analyze/util';
import { buildSnapshot } from '../model/build';
import { destinationRuleFor, virtualServiceFor } from '../model/lookup';
import type { ConfigObject, DestinationRuleSpec, HTTPMatchRequest, HTTPRoute, ServicePortSpec, ServiceSpec, StringMatch, Subset, TCPRoute, TrafficPolicy } from '../model/objects';
import { protocolOf, AUTO } from '../model/protocol';
import type { MeshSnapshot } from '../model/snapshot';
import { validateOne } from '../sources/source';
import { workloadPolicies } from '../generate/security/authz';
import { policyName } from '../generate/security/rbac';
import { workloadMtls } from '../generate/security/peer-authn';
import { decideInjection, REVISION_LABEL, STATUS_ANNOTATION } from '../inject/decide';

export interface DescribeOptions {
  domain: string;
  /** The namespace names are printed relative to (`-n`): objects there print without `.ns`. */
  namespace: string;
  /** The control plane's revision, for the injection decision (`default`). */
  revision: string;
}

interface Container {
  name?: string;
  ports?: Array<{ name?: string; containerPort?: number; protocol?: string }>;
}

interface PodBody {
  spec?: { containers?: Container[]; initContainers?: Container[]; hostNetwork?: boolean };
  status?: { phase?: string; hostIP?: string };
}

const SEP = '--------------------\n';
const sp = (n: number): string => ' '.repeat(n);
const L1 = 3;
const L2 = 6;

/** The objects meshd would serve (invalid ones left out) and the snapshot built from them. */
export class DescribeContext {
  readonly snap: MeshSnapshot;
  readonly objects: readonly ConfigObject[];

  constructor(
    objects: readonly ConfigObject[],
    readonly options: DescribeOptions,
  ) {
    this.objects = objects.filter((o) => validateOne(o, DEFAULT_INPUT_LIMITS).length === 0);
    this.snap = buildSnapshot({ objects: this.objects, errors: [], sequence: 1, now: new Date(0), domain: options.domain });
  }

  of(kind: string, namespace?: string): ConfigObject[] {
    return this.objects.filter((o) => o.kind === kind && (namespace === undefined || o.metadata.namespace === namespace));
  }

  get(kind: string, namespace: string, name: string): ConfigObject | undefined {
    return this.objects.find((o) => o.kind === kind && o.metadata.namespace === namespace && o.metadata.name === name);
  }

  /** istioctl's kname: the name, with `.namespace` outside the describe namespace. */
  kname(o: { namespace: string; name: string }): string {
    return o.namespace === this.options.namespace ? o.name : `${o.name}.${o.namespace}`;
  }

  /** A pod is in the mesh when it carries the sidecar, or its namespace injects it. */
  meshed(pod: ConfigObject): boolean {
    const b = pod.body as PodBody;
    if ([...(b.spec?.containers ?? []), ...(b.spec?.initContainers ?? [])].some((c) => c.name === 'istio-proxy')) return true;
    if (pod.metadata.annotations[STATUS_ANNOTATION] !== undefined) return true;
    const ns = this.objects.find((o) => o.kind === 'Namespace' && o.metadata.name === pod.metadata.namespace);
    return decideInjection(
      { namespace: pod.metadata.namespace, labels: pod.metadata.labels, annotations: pod.metadata.annotations, hostNetwork: b.spec?.hostNetwork === true },
      ns?.metadata.labels,
      this.options.revision,
    ).inject;
  }
}

const spec = <T>(o: ConfigObject): T => (o.body['spec'] ?? {}) as T;

function podPhase(pod: ConfigObject): string | undefined {
  return (pod.body as PodBody).status?.phase;
}

/** pilot's FindPort: the pod port a Service port targets. */
function findPort(pod: ConfigObject, port: ServicePortSpec): number | string {
  const t = port.targetPort;
  if (t === undefined) return port.port;
  if (typeof t === 'number') return t;
  for (const c of (pod.body as PodBody).spec?.containers ?? []) {
    for (const p of c.ports ?? []) if (p.name === t && p.containerPort !== undefined) return p.containerPort;
  }
  return `failed to find port for pod ${pod.metadata.name}: no port named ${t}`;
}

function protocolName(p: ServicePortSpec): string {
  if (!p.name && p.appProtocol === undefined && p.protocol !== 'UDP') return 'auto-detect';
  const proto = protocolOf({ name: p.name, appProtocol: p.appProtocol, protocol: p.protocol, port: p.port });
  return proto === AUTO ? 'UnsupportedProtocol' : proto;
}

function printPod(c: DescribeContext, pod: ConfigObject, out: string[]): boolean {
  const b = pod.body as PodBody;
  const ports: string[] = [];
  for (const ct of b.spec?.containers ?? []) {
    for (const p of ct.ports ?? []) ports.push(`${p.containerPort ?? 0}${p.protocol && p.protocol !== 'TCP' ? `/${p.protocol}` : ''} (${ct.name ?? ''})`);
  }
  const revision = pod.metadata.annotations[REVISION_LABEL] ?? pod.metadata.labels[REVISION_LABEL] ?? (c.meshed(pod) ? c.options.revision : '');
  out.push(`Pod: ${c.kname(pod.metadata)}\n`, `   Pod Revision: ${revision}\n`);
  out.push(ports.length > 0 ? `   Pod Ports: ${ports.join(', ')}\n` : '   Pod does not expose ports\n');
  const phase = podPhase(pod);
  if (phase !== undefined && phase !== 'Running') {
    out.push(`   Pod is not Running (${phase})\n`);
    return false;
  }
  if (!c.meshed(pod)) {
    out.push(`WARNING: ${c.kname(pod.metadata)} is not part of mesh; no Istio sidecar\n`);
    return true;
  }
  const l = pod.metadata.labels;
  if (!(l['service.istio.io/canonical-name'] ?? l['app.kubernetes.io/name'] ?? l['app'])) {
    out.push('Suggestion: add required service name label for Istio telemetry. See https://istio.io/latest/docs/ops/deployment/application-requirements/.\n');
  }
  if (!(l['service.istio.io/canonical-revision'] ?? l['app.kubernetes.io/version'] ?? l['version'])) {
    out.push('Suggestion: add required service revision label for Istio telemetry. See https://istio.io/latest/docs/ops/deployment/application-requirements/.\n');
  }
  return true;
}

function printService(c: DescribeContext, svc: ConfigObject, pod: ConfigObject, out: string[]): void {
  out.push(`Service: ${c.kname(svc.metadata)}\n`);
  for (const p of spec<ServiceSpec>(svc).ports ?? []) {
    if (p.protocol !== undefined && p.protocol !== 'TCP') continue;
    const n = findPort(pod, p);
    out.push(typeof n === 'number' ? `   Port: ${p.name ?? ''} ${p.port}/${protocolName(p)} targets pod port ${n}\n` : `   ${n}\n`);
  }
}

function subsetsFor(subsets: readonly Subset[] | undefined, podsLabels: ReadonlyArray<Readonly<Record<string, string>>>): { matching: string[]; nonmatching: string[] } {
  const matching: string[] = [];
  const nonmatching: string[] = [];
  for (const s of subsets ?? []) (podsLabels.some((l) => selects(s.labels ?? {}, l)) ? matching : nonmatching).push(s.name);
  return { matching, nonmatching };
}

function shortPolicies(p: Pick<TrafficPolicy, 'loadBalancer' | 'connectionPool' | 'outlierDetection'>): string {
  const extra = [p.loadBalancer ? 'load balancer' : '', p.connectionPool ? 'connection pool' : '', p.outlierDetection ? 'outlier detection' : ''].filter((x) => x !== '');
  return extra.length > 0 ? `Policies: ${extra.join('/')}\n` : '';
}

function printDestinationRule(
  c: DescribeContext,
  level: number,
  dr: { namespace: string; name: string; spec: DestinationRuleSpec },
  podsLabels: ReadonlyArray<Readonly<Record<string, string>>>,
  out: string[],
): void {
  out.push(`${sp(level)}DestinationRule: ${c.kname(dr)} for ${JSON.stringify(dr.spec.host)}\n`);
  const { matching, nonmatching } = subsetsFor(dr.spec.subsets, podsLabels);
  if (matching.length > 0 || nonmatching.length > 0) {
    if (matching.length === 0) out.push(`${sp(level + L1)}WARNING POD DOES NOT MATCH ANY SUBSETS.  (Non matching subsets ${nonmatching.join(',')})\n`);
    out.push(`${sp(level + L1)}Matching subsets: ${matching.join(',')}\n`);
    if (nonmatching.length > 0) out.push(`${sp(level + L2)}(Non-matching subsets ${nonmatching.join(',')})\n`);
  }
  const tp = dr.spec.trafficPolicy;
  if (!tp) {
    out.push(`${sp(level + L1)}No Traffic Policy\n`);
    return;
  }
  if (tp.tls) out.push(`${sp(level + L1)}Traffic Policy TLS Mode: ${tp.tls.mode ?? 'DISABLE'}\n`);
  const sh = shortPolicies(tp);
  if (sh) out.push(`${sp(level + L1)}${sh}`);
  if (tp.portLevelSettings) {
    out.push(`${sp(level + L1)}Port Level Settings:\n`);
    for (const ps of tp.portLevelSettings) {
      out.push(`${sp(4)}${ps.port?.number ?? 0}:\n`);
      if (ps.tls) out.push(`${sp(level + L2)}TLS Mode: ${ps.tls.mode ?? 'DISABLE'}\n`);
      const s2 = shortPolicies(ps);
      if (s2) out.push(`${sp(level + L2)}${s2}`);
    }
  }
}

function renderStringMatch(m: StringMatch | undefined): string {
  if (!m) return '';
  if (m.exact !== undefined) return m.exact;
  if (m.prefix !== undefined) return `${m.prefix}*`;
  return m.regex !== undefined ? `regex:${JSON.stringify(m.regex)}` : '';
}

export function renderMatch(m: HTTPMatchRequest): string {
  let s = 'Match: ';
  if (m.uri) {
    s += renderStringMatch(m.uri);
    if (m.ignoreUriCase) s += ' uncased';
  }
  const headers = Object.entries(m.headers ?? {});
  if (headers.length > 0) s += ` when headers are ${headers.map(([k, v]) => `${k}=${renderStringMatch(v)}`).join('; ')}`;
  return s.trim();
}

function renderMatches(ms: readonly HTTPMatchRequest[] | undefined): string {
  return !ms || ms.length === 0 ? 'everything' : ms.map(renderMatch).join(', ');
}

function faultText(r: HTTPRoute): string {
  const parts: string[] = [];
  const d = r.fault?.delay;
  const a = r.fault?.abort;
  if (d) parts.push(`delay ${d.fixedDelay ?? d.exponentialDelay ?? ''}${d.percentage?.value !== undefined ? ` (${d.percentage.value}%)` : ''}`);
  if (a) parts.push(`abort ${a.httpStatus ?? a.grpcStatus ?? a.http2Error ?? ''}${a.percentage?.value !== undefined ? ` (${a.percentage.value}%)` : ''}`);
  return parts.join(', ');
}

interface VsRef {
  namespace: string;
  name: string;
  spec: { http?: HTTPRoute[]; tcp?: TCPRoute[]; tls?: unknown[] };
}

function httpRouteFacts(
  c: DescribeContext,
  vs: VsRef,
  route: HTTPRoute,
  svcHost: string,
  matching: string[],
  nonmatching: string[],
  drName: string | undefined,
): { match: boolean; facts: string[] } {
  const facts: string[] = [];
  const mismatch: string[] = [];
  let match = false;
  for (const rd of route.route ?? []) {
    const d = rd.destination;
    if (toFqdn(d.host, vs.namespace, c.options.domain) === svcHost) {
      if (d.subset) {
        if (nonmatching.includes(d.subset)) {
          mismatch.push(`Route to non-matching subset ${d.subset} for (${renderMatches(route.match)})`);
          continue;
        }
        if (!matching.includes(d.subset)) {
          mismatch.push(
            drName === undefined
              ? `Warning: Route to subset ${d.subset} but NO DESTINATION RULE defining subsets!`
              : `Warning: Route to UNKNOWN subset ${d.subset}; check DestinationRule ${drName}`,
          );
          continue;
        }
      }
      match = true;
      if ((rd.weight ?? 0) > 0) facts.push(`Route to host "${d.host}"${d.subset ? ` subset "${d.subset}"` : ''} with weight ${rd.weight ?? 0}%`);
    } else if (!d.subset) facts.push(`Route to host "${d.host}" with weight ${rd.weight ?? 0}%`);
    else facts.push(`Route to ${d.host} with invalid config`);
  }
  if (match) {
    const req: string[] = [];
    if (route.fault) req.push(`Fault injection ${faultText(route)}`);
    for (const m of route.match ?? []) req.push(renderMatch(m));
    if (req.length > 0) facts.push(req.join(', '));
  }
  if (!match && mismatch.length > 0) facts.push(...mismatch);
  return { match, facts };
}

function printVirtualService(
  c: DescribeContext,
  level: number,
  vs: VsRef,
  svcHost: string,
  matching: string[],
  nonmatching: string[],
  drName: string | undefined,
  out: string[],
): void {
  out.push(`${sp(level)}VirtualService: ${c.kname(vs)}\n`);
  let matches = 0;
  let facts = 0;
  const mismatchNotes: string[] = [];
  const http = vs.spec.http ?? [];
  const tcp = vs.spec.tcp ?? [];
  for (const r of http) {
    const res = httpRouteFacts(c, vs, r, svcHost, matching, nonmatching, drName);
    if (res.match) {
      matches++;
      for (const f of res.facts) {
        out.push(`${sp(level + L1)}${f}\n`);
        facts++;
      }
    } else mismatchNotes.push(...res.facts);
  }
  for (const r of tcp) {
    if ((r.route ?? []).some((rd) => toFqdn(rd.destination.host, vs.namespace, c.options.domain) === svcHost)) {
      matches++;
      for (const m of r.match ?? []) {
        out.push(`${sp(level + L1)}${JSON.stringify(m)}\n`);
        facts++;
      }
    }
  }
  if (matches === 0) {
    if (http.length > 0) out.push(`${sp(level + L1)}WARNING: No destinations match pod subsets (checked ${http.length} HTTP routes)\n`);
    if (tcp.length > 0) out.push(`${sp(level + L1)}WARNING: No destinations match pod subsets (checked ${tcp.length} TCP routes)\n`);
    for (const m of mismatchNotes) out.push(`${sp(level + L2)}${m}\n`);
    return;
  }
  const possible = http.length + (vs.spec.tls?.length ?? 0) + tcp.length;
  if (matches < possible) {
    out.push(`${sp(level + L1)}${possible - matches} additional destination(s) that will not reach this pod\n`);
    if (facts === 0) for (const m of mismatchNotes) out.push(`${sp(level + L2)}${m}\n`);
    return;
  }
  if (facts === 0) {
    if (http.length > 0) out.push(`${sp(level + L1)}${http.length} HTTP route(s)\n`);
    if (tcp.length > 0) out.push(`${sp(level + L1)}${tcp.length} TCP route(s)\n`);
  }
}

/** The RBAC policy names of the first RBAC filter of the pod's inbound HTTP chain (DENY, then ALLOW, as istiod orders them). */
function rbacPolicies(c: DescribeContext, pod: ConfigObject): string[] {
  const p = workloadPolicies(c.snap, pod.metadata.namespace, pod.metadata.labels);
  for (const list of [p.custom, p.deny, p.allow, p.audit]) {
    if (list.length === 0) continue;
    return list.flatMap((pol) => (pol.spec.rules ?? [{}]).map((_, i) => policyName(pol.meta.namespace, pol.meta.name, i)));
  }
  return [];
}

function describePodServices(
  c: DescribeContext,
  pod: ConfigObject,
  services: readonly ConfigObject[],
  podsLabels: ReadonlyArray<Readonly<Record<string, string>>>,
  out: string[],
): void {
  services.forEach((svc, row) => {
    if (row !== 0) out.push(SEP);
    printService(c, svc, pod, out);
    const ports = spec<ServiceSpec>(svc).ports ?? [];
    const level = ports.length > 1 ? L1 : 0;
    const host = `${svc.metadata.name}.${svc.metadata.namespace}.svc.${c.options.domain}`;
    for (const port of ports) {
      if (ports.length > 1) out.push(`${port.port}:\n`);
      const dr = destinationRuleFor(c.snap, pod.metadata.namespace, pod.metadata.labels, host);
      let matching: string[] = [];
      let nonmatching: string[] = [];
      if (dr) {
        printDestinationRule(c, level, { namespace: dr.meta.namespace, name: dr.meta.name, spec: dr.spec }, podsLabels, out);
        ({ matching, nonmatching } = subsetsFor(dr.spec.subsets, podsLabels));
      }
      const vs = virtualServiceFor(c.snap, pod.metadata.namespace, host);
      if (vs)
        printVirtualService(c, level, { namespace: vs.meta.namespace, name: vs.meta.name, spec: vs.spec }, host, matching, nonmatching, dr ? c.kname(dr.meta) : undefined, out);
      const policies = rbacPolicies(c, pod);
      if (policies.length > 0) out.push(`${ports.length > 1 ? `${port.port} ` : ''}RBAC policies: ${policies.join(', ')}\n`);
    }
  });
}

function describePeerAuthentication(c: DescribeContext, pod: ConfigObject, out: string[]): void {
  const m = workloadMtls(c.snap, pod.metadata.namespace, pod.metadata.labels);
  out.push('Effective PeerAuthentication:\n', `   Workload mTLS mode: ${m.mode}\n`);
  if (m.perPort.size > 0) {
    out.push('   Port Level mTLS mode:\n');
    for (const [port, mode] of m.perPort) out.push(`      ${port}: ${mode}\n`);
  }
  const root = c.snap.rootNamespace;
  const applied = [...c.of('PeerAuthentication', root), ...(pod.metadata.namespace === root ? [] : c.of('PeerAuthentication', pod.metadata.namespace))].filter((pa) =>
    selects(spec<{ selector?: { matchLabels?: Record<string, string> } }>(pa).selector?.matchLabels ?? {}, pod.metadata.labels),
  );
  if (applied.length > 0) out.push('Applied PeerAuthentication:\n', `   ${applied.map((pa) => `${pa.metadata.name}.${pa.metadata.namespace}`).join(', ')}\n`);
}

/** The VirtualServices bound to a Gateway that selects an ingress gateway pod, routing to `host`. */
function printIngressInfo(c: DescribeContext, services: readonly ConfigObject[], podsLabels: ReadonlyArray<Readonly<Record<string, string>>>, out: string[]): void {
  const ingressPods = c.of('Pod').filter((p) => p.metadata.labels['istio'] === 'ingressgateway' && (podPhase(p) ?? 'Running') === 'Running');
  if (ingressPods.length === 0) {
    out.push('Skipping Gateway information (no ingress gateway pods)\n');
    return;
  }
  const ingresses = c
    .of('Service')
    .filter((s) => ingressPods.some((p) => p.metadata.namespace === s.metadata.namespace && selects(spec<ServiceSpec>(s).selector ?? {}, p.metadata.labels)))
    .map((s) => ({ svc: s, pods: ingressPods.filter((p) => p.metadata.namespace === s.metadata.namespace && selects(spec<ServiceSpec>(s).selector ?? {}, p.metadata.labels)) }));
  if (ingresses.length === 0) out.push('Skipping Gateway information (no ingress gateway service)\n');
  const seen = new Set<string>();
  for (const svc of services) {
    const host = `${svc.metadata.name}.${svc.metadata.namespace}.svc.${c.options.domain}`;
    for (const vsObj of c.of('VirtualService')) {
      const vsSpec = spec<VsRef['spec'] & { gateways?: string[] }>(vsObj);
      const routes = (vsSpec.http ?? []).some((r) => (r.route ?? []).some((rd) => toFqdn(rd.destination.host, vsObj.metadata.namespace, c.options.domain) === host));
      if (!routes) continue;
      for (const g of vsSpec.gateways ?? []) {
        if (g === '' || g === 'mesh') continue;
        const [gns, gname] = g.includes('/') ? (g.split('/', 2) as [string, string]) : [vsObj.metadata.namespace, g];
        const key = `${gns}/${gname}|${vsObj.metadata.namespace}/${vsObj.metadata.name}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const gw = c.get('Gateway', gns, gname);
        if (!gw) {
          out.push(`WARNING: Proxy is stale; it references to non-existent gateway ${gns}/${gname}\n`);
          continue;
        }
        const selector = spec<{ selector?: Record<string, string> }>(gw).selector;
        const matched = ingresses.filter((i) => !selector || i.pods.some((p) => selects(selector, p.metadata.labels)));
        if (matched.length === 0) continue;
        out.push(SEP);
        for (const i of matched) {
          for (const p of spec<ServiceSpec>(i.svc).ports ?? []) {
            if ((p.protocol !== undefined && p.protocol !== 'TCP') || (p.name !== 'http' && p.name !== 'http2')) continue;
            const suffix = p.port === 80 ? '' : `:${p.port}`;
            out.push(`Exposed on Ingress Gateway http://${ingressIp(i.svc, i.pods)}${suffix}\n`);
          }
        }
        const dr = destinationRuleFor(c.snap, gns, {}, host);
        const { matching, nonmatching } = dr ? subsetsFor(dr.spec.subsets, podsLabels) : { matching: [], nonmatching: [] };
        printVirtualService(
          c,
          0,
          { namespace: vsObj.metadata.namespace, name: vsObj.metadata.name, spec: vsSpec },
          host,
          matching,
          nonmatching,
          dr ? c.kname(dr.meta) : undefined,
          out,
        );
      }
    }
  }
}

function ingressIp(svc: ConfigObject, pods: readonly ConfigObject[]): string {
  const lb = (svc.body['status'] as { loadBalancer?: { ingress?: Array<{ ip?: string }> } } | undefined)?.loadBalancer?.ingress?.[0]?.ip;
  if (lb) return lb;
  const hostIP = (pods[0]?.body as PodBody | undefined)?.status?.hostIP;
  return hostIP || 'unknown';
}

function servicesSelecting(c: DescribeContext, pod: ConfigObject): ConfigObject[] {
  return c.of('Service', pod.metadata.namespace).filter((s) => {
    const sel = spec<ServiceSpec>(s).selector ?? {};
    return Object.keys(sel).length > 0 && selects(sel, pod.metadata.labels);
  });
}

export class DescribeError extends Error {}

/** `x describe pod`: the pod, its services with their DestinationRule, VirtualService and RBAC policies, its mTLS mode, its ingress exposure. */
export function describePod(c: DescribeContext, namespace: string, name: string): string {
  const pod = c.get('Pod', namespace, name);
  if (!pod) throw new DescribeError(`pods "${name}" not found`);
  const out: string[] = [];
  printPod(c, pod, out);
  const services = servicesSelecting(c, pod);
  if (services.length === 0)
    out.push(`Warning: No Kubernetes Services select pod ${c.kname(pod.metadata)} (see https://istio.io/docs/setup/kubernetes/additional-setup/requirements/ )\n`);
  const podsLabels = [pod.metadata.labels];
  out.push(SEP);
  describePodServices(c, pod, services, podsLabels, out);
  out.push(SEP);
  describePeerAuthentication(c, pod, out);
  printIngressInfo(c, services, podsLabels, out);
  return out.join('');
}

/** `x describe service`: the service as seen by its first Istio pod, and its ingress exposure. */
export function describeService(c: DescribeContext, namespace: string, name: string): string {
  const svc = c.get('Service', namespace, name);
  if (!svc) throw new DescribeError(`services "${name}" not found`);
  const out: string[] = [];
  const sel = spec<ServiceSpec>(svc).selector ?? {};
  const selected = Object.keys(sel).length > 0 ? c.of('Pod', namespace).filter((p) => selects(sel, p.metadata.labels)) : [];
  const pods: ConfigObject[] = [];
  for (const p of selected) {
    const phase = podPhase(p);
    if (phase !== undefined && phase !== 'Running') {
      out.push(`   Pod is not Running (${phase})\n`);
      continue;
    }
    if (c.meshed(p)) pods.push(p);
  }
  if (pods.length === 0) {
    if (selected.length === 0) return `${out.join('')}Service "${c.kname(svc.metadata)}" has no pods.\n`;
    return `${out.join('')}Service "${c.kname(svc.metadata)}" has no Istio pods.  (${selected.length} pods in service).\nUse \`meshctl kube-inject\` or redeploy with Istio automatic sidecar injection.\n`;
  }
  const podsLabels = pods.map((p) => p.metadata.labels);
  describePodServices(c, pods[0] as ConfigObject, [svc], podsLabels, out);
  printIngressInfo(c, [svc], podsLabels, out);
  return out.join('');
}
