/**
 * What the web UI draws, computed from the current snapshot: the service graph as config says it
 * (routing edges from VirtualServices) and who may call whom (AuthorizationPolicies evaluated for
 * each pair of services by the caller's identity). Read-only; no credentials.
 */
import { type WorkloadPolicies, workloadPolicies } from '../generate/security/authz';
import type { AuthorizationPolicyConfig } from '../model/build-security';
import type { AuthzRule, AuthzSource } from '../model/objects-security';
import { type MeshSnapshot, hostMatches, resolveHost } from '../model/snapshot';

export interface GraphNode {
  /** The service's hostname. */
  id: string;
  namespace: string;
  name: string;
  kind: 'Service' | 'ServiceEntry';
  /** `<namespace>/sa/<serviceAccount>` of the workloads behind it. */
  identities: readonly string[];
}

/** One destination of one VirtualService rule, for mesh traffic (gateway `mesh`). */
export interface RouteEdge {
  from: string;
  to: string;
  /** `namespace/name` of the VirtualService. */
  virtualService: string;
  /** `http`, `tcp` or `tls`, and the rule's index in that list. */
  protocol: 'http' | 'tcp' | 'tls';
  rule: number;
  /** The rule's match, short (`uri prefix /api, header end-user`); empty: matches everything. */
  match: string;
  subset?: string;
  weight?: number;
  port?: number;
}

export type AccessDecision = 'allow' | 'deny' | 'conditional';

/** Whether the workloads of `from` may call `to`, by AuthorizationPolicy, with the policy that decided. */
export interface AccessEdge {
  from: string;
  to: string;
  decision: AccessDecision;
  /** `namespace/name (ACTION)`, or why no policy decided. */
  reason: string;
}

export interface MeshGraph {
  nodes: GraphNode[];
  routes: RouteEdge[];
  access: AccessEdge[];
  /** Set when the mesh has more services than the access matrix is computed for. */
  accessOmitted?: string;
}

/** Above this many services the access matrix (services²) is left out. */
export const ACCESS_MATRIX_MAX_SERVICES = 150;

function matchSummary(m: object): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(m)) {
    if (k === 'name' || v === undefined) continue;
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const inner = Object.entries(v as Record<string, unknown>);
      // StringMatch ({prefix: "/x"}) or a map of them (headers).
      if (inner.length === 1 && typeof inner[0]?.[1] === 'string') parts.push(`${k} ${inner[0][0]} ${String(inner[0][1])}`);
      else parts.push(`${k} ${inner.map(([n]) => n).join(',')}`);
    } else parts.push(`${k} ${JSON.stringify(v)}`);
  }
  return parts.join(', ');
}

function routeEdges(snap: MeshSnapshot, hosts: ReadonlySet<string>): RouteEdge[] {
  const out: RouteEdge[] = [];
  const domain = snap.domain;
  for (const vs of snap.virtualServices) {
    if (vs.gateways.length > 0 && !vs.gateways.includes('mesh')) continue;
    const ns = vs.meta.namespace;
    const froms = [...hosts].filter((h) => vs.hosts.some((p) => hostMatches(p, h)));
    if (froms.length === 0) continue;
    const id = `${ns}/${vs.meta.name}`;
    const add = (
      protocol: RouteEdge['protocol'],
      rule: number,
      match: string,
      d: { destination: { host: string; subset?: string; port?: { number?: number } }; weight?: number },
    ): void => {
      const to = resolveHost(d.destination.host, ns, domain);
      for (const from of froms) {
        out.push({
          from,
          to,
          virtualService: id,
          protocol,
          rule,
          match,
          ...(d.destination.subset ? { subset: d.destination.subset } : {}),
          ...(d.weight !== undefined ? { weight: d.weight } : {}),
          ...(d.destination.port?.number !== undefined ? { port: d.destination.port.number } : {}),
        });
      }
    };
    (vs.spec.http ?? []).forEach((r, i) => {
      const match = (r.match ?? []).map((m) => matchSummary(m)).join(' | ');
      for (const d of r.route ?? []) add('http', i, match, d);
    });
    (vs.spec.tcp ?? []).forEach((r, i) => {
      const match = (r.match ?? []).map((m) => matchSummary(m)).join(' | ');
      for (const d of r.route ?? []) add('tcp', i, match, d);
    });
    (vs.spec.tls ?? []).forEach((r, i) => {
      const match = (r.match ?? []).map((m) => matchSummary(m)).join(' | ');
      for (const d of r.route ?? []) add('tls', i, match, d);
    });
  }
  return out;
}

/** Istio's string match for principals and namespaces: exact, `*`, `prefix*` or `*suffix`. */
function starMatch(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith('*')) return value.endsWith(pattern.slice(1));
  return pattern === value;
}

/** The caller as a policy sees it over mTLS: its principal(s), namespace and service account. */
interface Caller {
  principals: readonly string[];
  namespace: string;
  serviceAccount: string;
}

type Match = 'yes' | 'no' | 'maybe';

/** Whether one `source` block matches the caller; fields about requests or IPs make it `maybe`. */
function sourceMatches(s: AuthzSource, c: Caller): Match {
  const anyOf = (pats: readonly string[] | undefined, vals: readonly string[]): boolean | undefined => (pats ? pats.some((p) => vals.some((v) => starMatch(p, v))) : undefined);
  const checks: (boolean | undefined)[] = [
    anyOf(s.principals, c.principals),
    s.notPrincipals ? !anyOf(s.notPrincipals, c.principals) : undefined,
    anyOf(s.namespaces, [c.namespace]),
    s.notNamespaces ? !anyOf(s.notNamespaces, [c.namespace]) : undefined,
    anyOf(s.serviceAccounts, [`${c.namespace}/${c.serviceAccount}`]),
    s.notServiceAccounts ? !anyOf(s.notServiceAccounts, [`${c.namespace}/${c.serviceAccount}`]) : undefined,
  ];
  if (checks.some((x) => x === false)) return 'no';
  const requestScoped = s.requestPrincipals || s.notRequestPrincipals || s.ipBlocks || s.notIpBlocks || s.remoteIpBlocks || s.notRemoteIpBlocks || s.trustDomains;
  return requestScoped ? 'maybe' : 'yes';
}

function ruleMatches(r: AuthzRule, c: Caller): Match {
  let from: Match = 'yes';
  if (r.from && r.from.length > 0) {
    const each = r.from.map((f) => (f.source ? sourceMatches(f.source, c) : 'yes'));
    // Every `from` entry must match (they are ANDed).
    from = each.includes('no') ? 'no' : each.includes('maybe') ? 'maybe' : 'yes';
  }
  if (from === 'no') return 'no';
  // Operations and conditions depend on the request, not the caller.
  if ((r.to && r.to.length > 0) || (r.when && r.when.length > 0)) return 'maybe';
  return from;
}

/** Best match over a policy's rules: a policy without rules matches nothing for ALLOW, as in Istio. */
function policyMatches(p: AuthorizationPolicyConfig, c: Caller): Match {
  const rules = p.spec.rules ?? [];
  let best: Match = 'no';
  for (const r of rules) {
    const m = ruleMatches(r, c);
    if (m === 'yes') return 'yes';
    if (m === 'maybe') best = 'maybe';
  }
  return best;
}

/** The policies' verdict for a caller, as Envoy's RBAC filters order them: CUSTOM, DENY, then ALLOW. */
function decide(policies: WorkloadPolicies, c: Caller): { decision: AccessDecision; reason: string } {
  const id = (p: AuthorizationPolicyConfig): string => `${p.meta.namespace}/${p.meta.name} (${p.spec.action ?? 'ALLOW'})`;
  const custom = policies.custom[0];
  if (custom) {
    // No usable ext_authz provider: the workload's CUSTOM filter denies every request.
    if (!policies.provider) return { decision: 'deny', reason: `${id(custom)}: its provider cannot be used, so every request is denied` };
    return { decision: 'conditional', reason: `${id(custom)}: decided by the external authorizer ${policies.provider.provider.name}` };
  }
  let maybe: string | undefined;
  for (const p of policies.deny) {
    const m = policyMatches(p, c);
    if (m === 'yes') return { decision: 'deny', reason: id(p) };
    if (m === 'maybe') maybe ??= id(p);
  }
  const allows = policies.allow;
  if (allows.length === 0) return maybe ? { decision: 'conditional', reason: `${maybe} for some requests` } : { decision: 'allow', reason: 'no ALLOW policy applies' };
  for (const p of allows) {
    const m = policyMatches(p, c);
    if (m === 'yes') return maybe ? { decision: 'conditional', reason: `${id(p)}, but ${maybe} for some requests` } : { decision: 'allow', reason: id(p) };
    if (m === 'maybe') maybe ??= id(p);
  }
  return maybe ? { decision: 'conditional', reason: `${maybe} for some requests` } : { decision: 'deny', reason: 'no ALLOW policy matches the caller' };
}

export function meshGraph(snap: MeshSnapshot, maxAccessServices: number = ACCESS_MATRIX_MAX_SERVICES): MeshGraph {
  const nodes: GraphNode[] = snap.services.map((s) => ({
    id: s.hostname,
    namespace: s.namespace,
    name: s.name,
    kind: s.source.kind,
    identities: snap.serviceAccountsByHost.get(s.hostname) ?? [],
  }));
  const routes = routeEdges(snap, new Set(nodes.map((n) => n.id)));
  const callers = snap.services.filter((s) => (snap.serviceAccountsByHost.get(s.hostname) ?? []).length > 0);
  const targets = snap.services.filter((s) => s.source.kind === 'Service' && !s.meshExternal);
  if (callers.length > maxAccessServices || targets.length > maxAccessServices) {
    return { nodes, routes, access: [], accessOmitted: `the mesh has more than ${maxAccessServices} services` };
  }
  const access: AccessEdge[] = [];
  for (const to of targets) {
    // The policies a sidecar of the callee's workloads enforces (selected by the Service's selector).
    const applying = workloadPolicies(snap, to.namespace, to.selector);
    for (const from of callers) {
      if (from.hostname === to.hostname) continue;
      // The least permissive answer over the caller's identities.
      let worst: { decision: AccessDecision; reason: string } | undefined;
      for (const idn of snap.serviceAccountsByHost.get(from.hostname) ?? []) {
        const [ns = '', , sa = ''] = idn.split('/');
        const caller: Caller = { principals: snap.trustDomains.map((td) => `${td}/ns/${ns}/sa/${sa}`), namespace: ns, serviceAccount: sa };
        const d = decide(applying, caller);
        const rank = { allow: 0, conditional: 1, deny: 2 } as const;
        if (!worst || rank[d.decision] > rank[worst.decision]) worst = d;
      }
      if (worst) access.push({ from: from.hostname, to: to.hostname, ...worst });
    }
  }
  return { nodes, routes, access };
}
