/** Istio's gateway.* analyzers: the workload and Service behind a Gateway, conflicts, credentials. */
import type { ConfigObject, GatewaySpec, ServiceSpec } from '../model/objects';
import { MSG } from './messages';
import { type AnalysisContext, type Analyzer, hostsOverlap, selectorString, selects, specOf } from './util';

function gatewayPods(c: AnalysisContext, gw: ConfigObject): ConfigObject[] {
  const sel = specOf<GatewaySpec>(gw).selector ?? {};
  return c.of('Pod').filter((p) => selects(sel, p.metadata.labels));
}

const ingressPorts: Analyzer = {
  name: 'gateway.IngressGatewayPortAnalyzer',
  description: "Checks a gateway's ports against the gateway's Kubernetes service ports",
  run(c: AnalysisContext): void {
    for (const gw of c.of('Gateway')) {
      const spec = specOf<GatewaySpec>(gw);
      const sel = spec.selector ?? {};
      const pods = gatewayPods(c, gw);
      if (pods.length === 0) {
        c.report(MSG.ReferencedResourceNotFound, gw, `Referenced selector not found: ${JSON.stringify(selectorString(sel))}`, 'spec.selector');
        continue;
      }
      // A server port may name a Service port (the gateway listens on its targetPort) or the
      // targetPort itself: meshd, as istiod, binds either way. Only TCP ports count.
      const ports = new Set<number>();
      for (const pod of pods) {
        for (const svc of c.of('Service')) {
          if (svc.metadata.namespace !== pod.metadata.namespace) continue;
          const s = specOf<ServiceSpec>(svc);
          if (!s.selector || Object.keys(s.selector).length === 0 || !selects(s.selector, pod.metadata.labels)) continue;
          for (const p of s.ports ?? []) {
            if (p.protocol !== undefined && p.protocol !== 'TCP') continue;
            ports.add(p.port);
            if (typeof p.targetPort === 'number') ports.add(p.targetPort);
          }
        }
      }
      (spec.servers ?? []).forEach((server, i) => {
        const n = server.port?.number;
        if (n === undefined || ports.has(n)) return;
        c.report(
          MSG.GatewayPortNotDefinedOnService,
          gw,
          `The gateway is listening on a target port (port ${n}) that is not defined in the Service associated with its workload instances (Pod selector ${selectorString(sel)}). If you need to access the gateway port through the gateway Service, it will not be available.`,
          `spec.servers[${i}].port.number`,
        );
      });
    }
  },
};

/** `ns/host` → `host`; gateways conflict when their hosts overlap whatever namespace they admit. */
const bareHost = (h: string): string => (h.includes('/') ? h.slice(h.indexOf('/') + 1) : h);

const conflicting: Analyzer = {
  name: 'gateway.ConflictingGatewayAnalyzer',
  description: 'Checks a gateway does not share selector, port and hosts with another gateway',
  run(c: AnalysisContext): void {
    const gws = c.of('Gateway');
    for (const gw of gws) {
      const spec = specOf<GatewaySpec>(gw);
      const sel = selectorString(spec.selector ?? {});
      (spec.servers ?? []).forEach((server, i) => {
        const others: string[] = [];
        const hosts = new Set<string>();
        for (const other of gws) {
          if (other === gw) continue;
          const os = specOf<GatewaySpec>(other);
          if (selectorString(os.selector ?? {}) !== sel) continue;
          for (const s2 of os.servers ?? []) {
            if (s2.port?.number !== server.port?.number || (s2.bind ?? '') !== (server.bind ?? '')) continue;
            const overlap = (server.hosts ?? []).filter((h) => (s2.hosts ?? []).some((h2) => hostsOverlap(bareHost(h), bareHost(h2))));
            if (overlap.length === 0) continue;
            const name = `${other.metadata.namespace}/${other.metadata.name}`;
            if (!others.includes(name)) others.push(name);
            overlap.forEach((h) => hosts.add(h));
          }
        }
        if (others.length === 0) return;
        c.report(
          MSG.ConflictingGateways,
          gw,
          `Conflict with gateways ${others.join(',')} (workload selector ${sel}, port ${server.port?.number ?? 0}, hosts ${[...hosts].join(',')}).`,
          `spec.servers[${i}]`,
        );
      });
    }
  },
};

const secrets: Analyzer = {
  name: 'gateway.SecretAnalyzer',
  description: "Checks a gateway's referenced secrets for correctness",
  run(c: AnalysisContext): void {
    for (const gw of c.of('Gateway')) {
      const spec = specOf<GatewaySpec>(gw);
      const pods = gatewayPods(c, gw);
      // The credential lives in the gateway workload's namespace (the Gateway's if the pods span several or none).
      const podNs = [...new Set(pods.map((p) => p.metadata.namespace))];
      const ns = podNs.length === 1 ? (podNs[0] as string) : gw.metadata.namespace;
      (spec.servers ?? []).forEach((server, i) => {
        const tls = server.tls;
        if (!tls) return;
        const names: Array<[string, string]> = [];
        if (tls.credentialName) names.push([tls.credentialName, `spec.servers[${i}].tls.credentialName`]);
        (tls.credentialNames ?? []).forEach((n, k) => names.push([n, `spec.servers[${i}].tls.credentialNames[${k}]`]));
        for (const [cn, field] of names) {
          const name = cn.startsWith('kubernetes://') ? cn.slice('kubernetes://'.length) : cn;
          if (name.includes('/')) continue; // another namespace or a provider: not checked offline
          if (!c.of('Secret').some((s) => s.metadata.namespace === ns && s.metadata.name === name)) {
            c.report(MSG.ReferencedResourceNotFound, gw, `Referenced credentialName not found: ${JSON.stringify(cn)}`, field);
          }
        }
      });
    }
  },
};

export const gatewayAnalyzers: readonly Analyzer[] = [conflicting, ingressPorts, secrets];
