/** Istio's virtualservice.* analyzers: destinations, subsets, gateways, mesh host conflicts, matches. */
import type { ConfigObject, Destination, DestinationRuleSpec, GatewaySpec, VirtualServiceSpec } from '../model/objects';
import { MSG } from './messages';
import { type AnalysisContext, type Analyzer, hostMatches, hostsOverlap, specOf, toFqdn, visibleFrom } from './util';

interface DestinationRef {
  d: Destination;
  /** Field path of the destination object. */
  path: string;
  /** A mirror (ports are not required to disambiguate). */
  mirror: boolean;
}

function destinations(vs: VirtualServiceSpec): DestinationRef[] {
  const out: DestinationRef[] = [];
  (vs.http ?? []).forEach((r, i) => {
    (r.route ?? []).forEach((rd, j) => out.push({ d: rd.destination, path: `spec.http[${i}].route[${j}].destination`, mirror: false }));
    if (r.mirror) out.push({ d: r.mirror, path: `spec.http[${i}].mirror`, mirror: true });
    (r.mirrors ?? []).forEach((m, k) => out.push({ d: m.destination, path: `spec.http[${i}].mirrors[${k}].destination`, mirror: true }));
  });
  (vs.tcp ?? []).forEach((r, i) => (r.route ?? []).forEach((rd, j) => out.push({ d: rd.destination, path: `spec.tcp[${i}].route[${j}].destination`, mirror: false })));
  (vs.tls ?? []).forEach((r, i) => (r.route ?? []).forEach((rd, j) => out.push({ d: rd.destination, path: `spec.tls[${i}].route[${j}].destination`, mirror: false })));
  return out.filter((x) => x.d !== undefined && typeof x.d.host === 'string');
}

const destinationHosts: Analyzer = {
  name: 'virtualservice.DestinationHostAnalyzer',
  description: 'Checks the destination hosts associated with each virtual service',
  run(c: AnalysisContext): void {
    for (const o of c.of('VirtualService')) {
      const ns = o.metadata.namespace;
      for (const { d, path, mirror } of destinations(specOf<VirtualServiceSpec>(o))) {
        const fqdn = toFqdn(d.host, ns, c.options.domain);
        const found = c.hosts.filter((h) => visibleFrom(h.exportTo, h.namespace, ns) && (fqdn.startsWith('*') ? hostsOverlap(h.host, fqdn) : hostMatches(h.host, fqdn)));
        if (found.length === 0) {
          c.report(MSG.ReferencedResourceNotFound, o, `Referenced host not found: ${JSON.stringify(d.host)}`, `${path}.host`);
          continue;
        }
        const ports = [...new Set(found.flatMap((h) => h.ports))].sort((a, b) => a - b);
        const port = d.port?.number;
        if (port !== undefined) {
          if (ports.length > 0 && !ports.includes(port))
            c.report(MSG.ReferencedResourceNotFound, o, `Referenced host:port not found: ${JSON.stringify(`${d.host}:${port}`)}`, `${path}.port.number`);
        } else if (!mirror && ports.length > 1) {
          c.report(
            MSG.VirtualServiceDestinationPortSelectorRequired,
            o,
            `This VirtualService routes to a service ${JSON.stringify(d.host)} that exposes multiple ports [${ports.join(' ')}]. Specifying a port in the destination is required to disambiguate.`,
            `${path}.host`,
          );
        }
      }
    }
  },
};

const destinationSubsets: Analyzer = {
  name: 'virtualservice.DestinationRuleAnalyzer',
  description: 'Checks the destination rules associated with each virtual service',
  run(c: AnalysisContext): void {
    const rules = c.of('DestinationRule').map((r) => ({ o: r, spec: specOf<DestinationRuleSpec>(r) }));
    for (const o of c.of('VirtualService')) {
      const ns = o.metadata.namespace;
      for (const { d, path } of destinations(specOf<VirtualServiceSpec>(o))) {
        if (d.subset === undefined || d.subset === '') continue;
        const fqdn = toFqdn(d.host, ns, c.options.domain);
        const ok = rules.some(
          ({ o: r, spec }) =>
            visibleFrom(spec.exportTo, r.metadata.namespace, ns) &&
            hostMatches(toFqdn(spec.host, r.metadata.namespace, c.options.domain), fqdn) &&
            (spec.subsets ?? []).some((s) => s.name === d.subset),
        );
        if (!ok) c.report(MSG.ReferencedResourceNotFound, o, `Referenced host+subset in destinationrule not found: ${JSON.stringify(`${d.host}+${d.subset}`)}`, `${path}.subset`);
      }
    }
  },
};

/** `name` or `ns/name` of a Gateway, in the VirtualService's namespace by default. */
export function gatewayKey(ref: string, vsNamespace: string): string {
  const slash = ref.indexOf('/');
  return slash < 0 ? `${vsNamespace}/${ref}` : ref;
}

/** The gateway's server hosts as Istio's analyzer sees them from `vsNamespace`: `*\/h` → `h`, `./h` → own namespace. */
function gatewayHostsFor(gw: ConfigObject, vsNamespace: string): string[] {
  const out: string[] = [];
  for (const s of specOf<GatewaySpec>(gw).servers ?? []) {
    for (const h of s.hosts ?? []) {
      const slash = h.indexOf('/');
      if (slash < 0) {
        out.push(h);
        continue;
      }
      const hostNs = h.slice(0, slash);
      const name = h.slice(slash + 1);
      if (hostNs === '*' || hostNs === vsNamespace || (hostNs === '.' && gw.metadata.namespace === vsNamespace)) out.push(name);
    }
  }
  return out;
}

const gateways: Analyzer = {
  name: 'virtualservice.GatewayAnalyzer',
  description: 'Checks the gateways associated with each virtual service',
  run(c: AnalysisContext): void {
    const byKey = new Map(c.of('Gateway').map((g) => [`${g.metadata.namespace}/${g.metadata.name}`, g]));
    for (const o of c.of('VirtualService')) {
      const vs = specOf<VirtualServiceSpec>(o);
      const ns = o.metadata.namespace;
      (vs.gateways ?? []).forEach((ref, i) => {
        if (ref === 'mesh') return;
        const key = gatewayKey(ref, ns);
        const gw = byKey.get(key);
        if (!gw) {
          c.report(MSG.ReferencedResourceNotFound, o, `Referenced gateway not found: ${JSON.stringify(ref)}`, `spec.gateways[${i}]`);
        }
        const gwHosts = gw ? gatewayHostsFor(gw, ns) : [];
        const hosts = vs.hosts ?? [];
        if (!gwHosts.some((gh) => hosts.some((vh) => hostMatches(gh, vh)))) {
          c.report(
            MSG.VirtualServiceHostNotFoundInGateway,
            o,
            `one or more host [${hosts.join(' ')}] defined in VirtualService ${ns}/${o.metadata.name} not found in Gateway ${key}.`,
            `spec.gateways[${i}]`,
          );
        }
      });
    }
  },
};

const conflictingMeshHosts: Analyzer = {
  name: 'virtualservice.ConflictingMeshGatewayHostsAnalyzer',
  description: 'Checks if multiple virtual services associated with the mesh gateway have conflicting hosts',
  run(c: AnalysisContext): void {
    const byHost = new Map<string, ConfigObject[]>();
    for (const o of c.of('VirtualService')) {
      const vs = specOf<VirtualServiceSpec>(o);
      const gws = vs.gateways ?? [];
      if (gws.length > 0 && !gws.includes('mesh')) continue;
      const ns = o.metadata.namespace;
      const exportTo = vs.exportTo ?? [];
      const scopes = exportTo.length === 0 || exportTo.includes('*') ? ['*'] : [...new Set(exportTo.map((e) => (e === '.' ? ns : e)))];
      for (const scope of scopes) {
        for (const h of vs.hosts ?? []) {
          const key = `${scope}/${toFqdn(h, ns, c.options.domain)}`;
          const list = byHost.get(key);
          if (list) {
            if (!list.includes(o)) list.push(o);
          } else byHost.set(key, [o]);
        }
      }
    }
    for (const [host, list] of byHost) {
      if (list.length < 2) continue;
      const names = list.map((v) => `${v.metadata.namespace}/${v.metadata.name}`).join(',');
      for (const v of list) {
        c.report(
          MSG.ConflictingMeshGatewayVirtualServiceHosts,
          v,
          `The VirtualServices ${names} associated with mesh gateway define the same host ${host} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.`,
          'metadata.name',
        );
      }
    }
  },
};

/** A canonical JSON text (sorted keys), so equal matches compare equal whatever their key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const named = (name: string | undefined, n: number): string => (name ? JSON.stringify(name) : `#${n}`);

const matches: Analyzer = {
  name: 'virtualservice.MatchesAnalyzer',
  description: 'Checks VirtualService rules for unreachable rules and duplicate matches',
  run(c: AnalysisContext): void {
    for (const o of c.of('VirtualService')) {
      const vs = specOf<VirtualServiceSpec>(o);
      const sections: Array<[string, ReadonlyArray<{ name?: string; match?: ReadonlyArray<unknown> }>]> = [
        ['http', vs.http ?? []],
        ['tcp', vs.tcp ?? []],
        ['tls', vs.tls ?? []],
      ];
      for (const [section, rules] of sections) {
        const seen = new Map<string, number>();
        let empty = -1;
        rules.forEach((rule, n) => {
          const ms = rule.match ?? [];
          if (ms.length === 0) {
            if (empty >= 0)
              c.report(
                MSG.VirtualServiceUnreachableRule,
                o,
                `VirtualService rule ${named(rule.name, n)} not used (only the last rule can have no matches).`,
                `spec.${section}[${n}]`,
              );
            empty = n;
            return;
          }
          let dups = 0;
          ms.forEach((m, k) => {
            const key = canonical(m);
            const prev = seen.get(key);
            if (prev !== undefined) {
              const pm = (m ?? {}) as { name?: string };
              c.report(
                MSG.VirtualServiceIneffectiveMatch,
                o,
                `VirtualService rule ${named(rule.name, n)} match ${named(pm.name, k)} is not used (duplicate/overlapping match in rule ${named(rules[prev]?.name, prev)}).`,
                `spec.${section}[${n}].match[${k}]`,
              );
              dups++;
            } else seen.set(key, n);
          });
          if (dups === ms.length)
            c.report(MSG.VirtualServiceUnreachableRule, o, `VirtualService rule ${named(rule.name, n)} not used (all matches used by prior rules).`, `spec.${section}[${n}]`);
        });
      }
    }
  },
};

export const virtualServiceAnalyzers: readonly Analyzer[] = [conflictingMeshHosts, destinationHosts, destinationSubsets, gateways, matches];
