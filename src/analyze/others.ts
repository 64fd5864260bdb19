/** Istio's destinationrule, injection, service and sidecar analyzers, as far as meshd's model reads the objects. */
import type { AuthorizationPolicySpec, ConfigObject, DestinationRuleSpec, ServiceEntrySpec, ServiceSpec, SidecarSpec, TelemetrySpec } from '../model/objects';
import { AUTO, protocolOf } from '../model/protocol';
import { MSG } from './messages';
import { type AnalysisContext, type Analyzer, hostMatches, selectorString, selects, specOf, toFqdn } from './util';

const caCertificates: Analyzer = {
  name: 'destinationrule.CaCertificateAnalyzer',
  description: 'Checks if caCertificates is set when TLS mode is SIMPLE/MUTUAL',
  run(c: AnalysisContext): void {
    for (const o of c.of('DestinationRule')) {
      const spec = specOf<DestinationRuleSpec>(o);
      const name = `${o.metadata.namespace}/${o.metadata.name}`;
      const unverified = (tls: { mode?: string; caCertificates?: string; credentialName?: string } | undefined): string | undefined =>
        tls && (tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL') && !tls.caCertificates && !tls.credentialName ? tls.mode : undefined;
      const mode = unverified(spec.trafficPolicy?.tls);
      if (mode) {
        c.report(
          MSG.NoServerCertificateVerificationDestinationLevel,
          o,
          `DestinationRule ${name} in namespace ${o.metadata.namespace} has TLS mode set to ${mode} but no caCertificates are set to validate server identity for host: ${spec.host}`,
          'spec.trafficPolicy.tls.mode',
        );
      }
      (spec.trafficPolicy?.portLevelSettings ?? []).forEach((p, i) => {
        const m = unverified(p.tls);
        if (!m) return;
        c.report(
          MSG.NoServerCertificateVerificationPortLevel,
          o,
          `DestinationRule ${name} in namespace ${o.metadata.namespace} has TLS mode set to ${m} but no caCertificates are set to validate server identity for host: ${spec.host} at port number:${p.port?.number ?? 0}`,
          `spec.trafficPolicy.portLevelSettings[${i}].tls.mode`,
        );
      });
    }
  },
};

/** Namespaces Istio's analyzers leave alone (inject.IgnoredNamespaces plus the control plane's). */
function systemNamespace(ns: string, istioNamespace: string): boolean {
  return ns === istioNamespace || ns === 'kube-system' || ns === 'kube-public' || ns === 'kube-node-lease' || ns === 'local-path-storage';
}

const injection: Analyzer = {
  name: 'injection.Analyzer',
  description: 'Checks conditions related to Istio sidecar injection',
  run(c: AnalysisContext): void {
    for (const o of c.of('Namespace')) {
      const ns = o.metadata.name;
      if (systemNamespace(ns, c.options.istioNamespace)) continue;
      const labels = o.metadata.labels;
      const legacy = labels['istio-injection'];
      const rev = labels['istio.io/rev'];
      if (legacy !== undefined && rev !== undefined) {
        c.report(
          MSG.NamespaceMultipleInjectionLabels,
          o,
          'The namespace has more than one type of injection labels [istio-injection istio.io/rev], which may lead to undefined behavior. Make sure only one injection label exists.',
          'metadata.labels',
        );
        continue;
      }
      if (legacy === undefined && rev === undefined) {
        c.report(
          MSG.NamespaceNotInjected,
          o,
          `The namespace is not enabled for Istio injection. Run 'kubectl label namespace ${ns} istio-injection=enabled' to enable it, or 'kubectl label namespace ${ns} istio-injection=disabled' to explicitly mark it as not needing injection.`,
          'metadata.name',
        );
      }
    }
  },
};

const portNames: Analyzer = {
  name: 'service.PortNameAnalyzer',
  description: 'Checks the port names associated with each service',
  run(c: AnalysisContext): void {
    for (const o of c.of('Service')) {
      if (systemNamespace(o.metadata.namespace, c.options.istioNamespace)) continue;
      const spec = specOf<ServiceSpec>(o);
      if (spec.type === 'ExternalName') continue;
      (spec.ports ?? []).forEach((p, i) => {
        if (p.protocol === 'UDP' || p.protocol === 'SCTP') return;
        if (protocolOf({ name: p.name, appProtocol: p.appProtocol, protocol: p.protocol }) !== AUTO) return;
        c.report(
          MSG.PortNameIsNotUnderNamingConvention,
          o,
          `Port name ${p.name ?? ''} (port: ${p.port}, targetPort: ${String(p.targetPort ?? p.port)}) doesn't follow the naming convention of Istio port.`,
          `spec.ports[${i}].name`,
        );
      });
    }
  },
};

const sidecarSelectors: Analyzer = {
  name: 'sidecar.DefaultSelectorAnalyzer',
  description: "Validates that there aren't multiple sidecar resources that have no workload selector",
  run(c: AnalysisContext): void {
    const byNs = new Map<string, string[]>();
    for (const o of c.of('Sidecar')) {
      const sel = specOf<SidecarSpec>(o).workloadSelector?.labels ?? {};
      if (Object.keys(sel).length > 0) continue;
      byNs.set(o.metadata.namespace, [...(byNs.get(o.metadata.namespace) ?? []), o.metadata.name]);
    }
    for (const o of c.of('Sidecar')) {
      const names = byNs.get(o.metadata.namespace) ?? [];
      if (names.length < 2 || !names.includes(o.metadata.name)) continue;
      c.report(
        MSG.MultipleSidecarsWithoutWorkloadSelectors,
        o,
        `The Sidecars [${names.map((n) => `${o.metadata.namespace}/${n}`).join(' ')}] in namespace ${JSON.stringify(o.metadata.namespace)} have no workload selector, which can lead to undefined behavior.`,
        'metadata.name',
      );
    }
  },
};

/**
 * An egress host `ns/name` that names a concrete namespace and host (no wildcard) which no
 * Service or ServiceEntry in that namespace provides: the Sidecar imports nothing by it.
 * (Istio has no analyzer for this; the code and text are IST0101's.)
 */
const sidecarEgressHosts: Analyzer = {
  name: 'sidecar.EgressHostAnalyzer',
  description: 'Checks that Sidecar egress hosts naming one namespace and one host refer to a known service',
  run(c: AnalysisContext): void {
    for (const o of c.of('Sidecar')) {
      (specOf<SidecarSpec>(o).egress ?? []).forEach((l, i) => {
        (l.hosts ?? []).forEach((h, k) => {
          const slash = h.indexOf('/');
          if (slash < 0) return;
          let ns = h.slice(0, slash);
          const name = h.slice(slash + 1);
          if (ns === '*' || ns === '~' || name.includes('*')) return;
          if (ns === '.') ns = o.metadata.namespace;
          const fqdn = toFqdn(name, ns, c.options.domain);
          if (c.hosts.some((r) => r.namespace === ns && hostMatches(r.host, fqdn))) return;
          c.report(MSG.ReferencedResourceNotFound, o, `Referenced host not found: ${JSON.stringify(h)}`, `spec.egress[${i}].hosts[${k}]`);
        });
      });
    }
  },
};

const sidecarWorkloads: Analyzer = {
  name: 'sidecar.SelectorAnalyzer',
  description: "Validates that sidecars that define a workload selector match at least one pod, and that there aren't multiple sidecar resources that select overlapping pods",
  run(c: AnalysisContext): void {
    const bySidecar = new Map<ConfigObject, ConfigObject[]>();
    for (const o of c.of('Sidecar')) {
      const sel = specOf<SidecarSpec>(o).workloadSelector?.labels ?? {};
      if (Object.keys(sel).length === 0) continue;
      const pods = c.of('Pod').filter((p) => p.metadata.namespace === o.metadata.namespace && selects(sel, p.metadata.labels));
      if (pods.length === 0) c.report(MSG.ReferencedResourceNotFound, o, `Referenced selector not found: ${JSON.stringify(selectorString(sel))}`, 'spec.workloadSelector');
      bySidecar.set(o, pods);
    }
    for (const pod of c.of('Pod')) {
      const sidecars = [...bySidecar].filter(([, pods]) => pods.includes(pod)).map(([s]) => s);
      if (sidecars.length < 2) continue;
      const names = sidecars.map((s) => `${s.metadata.namespace}/${s.metadata.name}`).join(' ');
      for (const s of sidecars) {
        c.report(
          MSG.ConflictingSidecarWorkloadSelectors,
          s,
          `The Sidecars [${names}] in namespace ${JSON.stringify(s.metadata.namespace)} select the same workload pod ${JSON.stringify(pod.metadata.name)}, which can lead to undefined behavior.`,
          'spec.workloadSelector',
        );
      }
    }
  },
};

const authorizationPolicies: Analyzer = {
  name: 'auth.AuthorizationPoliciesAnalyzer',
  description: 'Checks that AuthorizationPolicy selectors match workloads',
  run(c: AnalysisContext): void {
    for (const o of c.of('AuthorizationPolicy')) {
      const sel = specOf<AuthorizationPolicySpec>(o).selector?.matchLabels ?? {};
      if (Object.keys(sel).length === 0) continue;
      // A policy in the root namespace applies mesh-wide; elsewhere, to its own namespace.
      const meshWide = o.metadata.namespace === c.options.istioNamespace;
      if (c.of('Pod').some((p) => (meshWide || p.metadata.namespace === o.metadata.namespace) && selects(sel, p.metadata.labels))) continue;
      c.report(MSG.NoMatchingWorkloadsFound, o, `No matching workloads for this resource with the following labels: ${selectorString(sel)}`, 'spec.selector');
    }
  },
};

const serviceEntryAddresses: Analyzer = {
  name: 'serviceentry.Analyzer',
  description: 'Checks that ServiceEntries serving TCP (or unset) protocol ports have addresses',
  run(c: AnalysisContext): void {
    for (const o of c.of('ServiceEntry')) {
      const s = specOf<ServiceEntrySpec>(o);
      if ((s.addresses ?? []).length > 0) continue;
      (s.ports ?? []).forEach((p, i) => {
        if (p.protocol === undefined || p.protocol === '' || p.protocol === 'TCP')
          c.report(MSG.ServiceEntryAddressesRequired, o, 'ServiceEntry addresses are required for this protocol.', `spec.ports[${i}]`);
      });
    }
  },
};

/** Istio's telemetry selector analyzers: one selector-less Telemetry per namespace, one Telemetry per pod. */
const telemetrySelectors: Analyzer = {
  name: 'telemetry.SelectorAnalyzer',
  description: "Validates that telemetries that define a selector don't select the same pods, and that there is at most one selector-less Telemetry per namespace",
  run(c: AnalysisContext): void {
    const all = c.of('Telemetry').filter((o) => {
      const s = specOf<TelemetrySpec>(o);
      return !s.targetRef && (s.targetRefs?.length ?? 0) === 0;
    });
    const plain = new Map<string, ConfigObject[]>();
    const selecting: Array<[ConfigObject, Readonly<Record<string, string>>]> = [];
    for (const o of all) {
      const sel = specOf<TelemetrySpec>(o).selector?.matchLabels ?? {};
      if (Object.keys(sel).length === 0) plain.set(o.metadata.namespace, [...(plain.get(o.metadata.namespace) ?? []), o]);
      else selecting.push([o, sel]);
    }
    for (const [ns, list] of plain) {
      if (list.length < 2) continue;
      const names = list.map((o) => `${ns}/${o.metadata.name}`).join(' ');
      for (const o of list) {
        c.report(
          MSG.MultipleTelemetriesWithoutWorkloadSelectors,
          o,
          `The Telemetries [${names}] in namespace ${JSON.stringify(ns)} have no workload selector, which can lead to undefined behavior.`,
          'metadata.name',
        );
      }
    }
    for (const pod of c.of('Pod')) {
      const list = selecting.filter(([o, sel]) => o.metadata.namespace === pod.metadata.namespace && selects(sel, pod.metadata.labels)).map(([o]) => o);
      if (list.length < 2) continue;
      const names = list.map((o) => `${o.metadata.namespace}/${o.metadata.name}`).join(' ');
      for (const o of list) {
        c.report(
          MSG.ConflictingTelemetryWorkloadSelectors,
          o,
          `The Telemetries [${names}] in namespace ${JSON.stringify(o.metadata.namespace)} select the same workload pod ${JSON.stringify(pod.metadata.name)}, which can lead to undefined behavior.`,
          'spec.selector',
        );
      }
    }
  },
};

export const otherAnalyzers: readonly Analyzer[] = [
  telemetrySelectors,
  authorizationPolicies,
  caCertificates,
  injection,
  serviceEntryAddresses,
  portNames,
  sidecarSelectors,
  sidecarWorkloads,
  sidecarEgressHosts,
];
