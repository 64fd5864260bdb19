/** JSON views of meshd's state for the debug endpoints. Read-only; no private key material. */
import { credentialReport } from '../generate/secrets';
import { jwksSourceOf } from '../model/jwks';
import type { MeshSnapshot, ServiceEndpoint } from '../model/snapshot';
import type { Connection } from '../xds/connection';
import { PUSH_ORDER, SHORT_TYPE } from '../xds/protos';

const SYNCZ_NAMES: Readonly<Record<string, string>> = { CDS: 'cluster', EDS: 'endpoint', LDS: 'listener', RDS: 'route', SDS: 'secret', ECDS: 'extensionconfig' };

export function syncz(conns: readonly Connection[]): object[] {
  return conns
    .filter((c) => c.proxy)
    .map((c) => {
      const p = c.proxy;
      const flat: Record<string, string | undefined> = {};
      const types: Record<string, object> = {};
      for (const t of PUSH_ORDER) {
        const w = c.watches.get(t);
        if (!w) continue;
        const short = SHORT_TYPE[t];
        const key = SYNCZ_NAMES[short] ?? short.toLowerCase();
        flat[`${key}_sent`] = w.nonceSent;
        flat[`${key}_acked`] = w.nonceAcked;
        types[short] = {
          subscribed: w.names ? [...w.names].sort() : '*',
          sent_version: w.versionSent,
          sent_nonce: w.nonceSent,
          sent_at: w.sentAt,
          resources: w.resourcesSent,
          acked_version: w.versionAcked,
          acked_nonce: w.nonceAcked,
          acked_at: w.ackedAt,
          // The state of the latest response: SYNCED, STALE (sent, not answered), or NACKED.
          status: w.lastNack && w.lastNack.nonce === w.nonceSent ? 'NACKED' : w.nonceAcked === w.nonceSent ? 'SYNCED' : 'STALE',
          nack_count: w.nackCount,
          last_nack: w.lastNack,
        };
      }
      return {
        proxy: p?.id,
        connection_id: c.id,
        peer: c.peer,
        proxy_type: p?.type,
        generator: p?.generator,
        namespace: p?.namespace,
        istio_version: p?.istioVersion ?? '',
        cluster_id: p?.clusterId ?? '',
        user_agent: c.userAgent,
        connected_at: c.connectedAt,
        // Who the stream proved to be (never a credential), and which credentials it was refused and why.
        identity: c.identity?.verified ? { id: c.identity.verified.id, via: c.identity.verified.via } : null,
        ...(c.identity?.credentialsDenied ? { credentials_denied: c.identity.credentialsDenied } : {}),
        ...(c.secretsDenied.size > 0 ? { secrets_denied: Object.fromEntries([...c.secretsDenied].sort(([a], [b]) => (a < b ? -1 : 1))) } : {}),
        ...flat,
        types,
      };
    });
}

export function registryz(snap: MeshSnapshot): object[] {
  return snap.services.map((s) => ({
    hostname: s.hostname,
    name: s.name,
    namespace: s.namespace,
    cluster_ip: s.clusterIP ?? null,
    addresses: s.addresses,
    source: `${s.source.kind}/${s.source.namespace}/${s.source.name}`,
    resolution: s.resolution,
    mesh_external: s.meshExternal,
    export_to: s.exportTo,
    selector: s.selector,
    ports: s.ports.map((p) => ({ name: p.name, port: p.port, target_port: p.targetPort ?? null, protocol: p.protocol })),
    endpoints: Object.fromEntries(
      [...(snap.endpoints.get(s.hostname) ?? new Map<number, readonly ServiceEndpoint[]>()).entries()].map(([port, eps]) => [
        String(port),
        eps.map((e) => ({
          address: `${e.address}:${e.port}`,
          ready: e.ready,
          pod: e.pod ?? null,
          labels: e.labels,
          locality: e.locality,
          service_account: e.serviceAccount ?? null,
          ...(e.weight !== undefined ? { weight: e.weight } : {}),
        })),
      ]),
    ),
  }));
}

/** Each RequestAuthentication's rules, with where their keys come from and whether they are served. */
function requestAuthentications(snap: MeshSnapshot): object[] {
  return snap.requestAuthentications.map((p) => ({
    namespace: p.meta.namespace,
    name: p.meta.name,
    ...(p.spec.selector ? { selector: p.spec.selector.matchLabels ?? {} } : {}),
    ...(p.spec.targetRef || p.spec.targetRefs ? { target_refs: p.spec.targetRefs ?? [p.spec.targetRef] } : {}),
    jwt_rules: (p.spec.jwtRules ?? []).map((r) => {
      const src = jwksSourceOf(r);
      const e = src ? snap.jwks.get(src.key) : undefined;
      const keys = !src ? 'inline' : e?.keys !== undefined ? (e.error !== undefined ? 'stale' : 'fetched') : 'reject-all (not fetched)';
      return { issuer: r.issuer ?? '', audiences: r.audiences ?? [], jwks_source: src ? src.url : 'inline', keys, ...(e?.error !== undefined ? { error: e.error } : {}) };
    }),
  }));
}

export function configz(snap: MeshSnapshot): object {
  return {
    version: snap.version,
    built_at: snap.builtAt,
    counts: snap.counts,
    virtual_services: snap.virtualServices.map((v) => ({
      namespace: v.meta.namespace,
      name: v.meta.name,
      hosts: v.hosts,
      gateways: v.gateways,
      export_to: v.exportTo,
      spec: v.spec,
    })),
    // Merged rules: `sources` names every DestinationRule folded into one.
    destination_rules: snap.destinationRules.map((d) => ({
      namespace: d.meta.namespace,
      name: d.meta.name,
      host: d.host,
      export_to: d.exportTo,
      sources: d.sources,
      spec: d.spec,
    })),
    gateways: snap.gateways.map((g) => ({ namespace: g.meta.namespace, name: g.meta.name, spec: g.spec })),
    // Secrets by name, with why one cannot be served: their contents never appear in debug output.
    secrets: credentialReport(snap),
    request_authentications: requestAuthentications(snap),
    // The Gateway API objects meshd controls, with the status they should have (invalid references included).
    gateway_api: snap.gatewayApiStatuses,
    errors: snap.errors,
  };
}
