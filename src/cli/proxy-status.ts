/**
 * `meshctl proxy-status`: istioctl's sync table from the `istio.io/debug/syncz` answer (one
 * envoy.service.status.v3.ClientConfig per proxy), and for one proxy, what istioctl's comparator
 * prints, from the data meshd has (see proxyDiff).
 */
import type { EnvoyProtos } from '../xds/protos';
import type { AnyMsg } from '../xds/wire';
import { tabulate } from './tables';

const CLIENT_CONFIG = 'type.googleapis.com/envoy.service.status.v3.ClientConfig';
const SHORT: Record<string, string> = { Cluster: 'CDS', Listener: 'LDS', ClusterLoadAssignment: 'EDS', RouteConfiguration: 'RDS', TypedExtensionConfig: 'ECDS' };

export interface ProxyStatus {
  name: string;
  cluster: string;
  namespace: string;
  /** Per short type (CDS, LDS, EDS, RDS, ECDS): istioctl's word for it. */
  status: Record<string, string>;
  /** Per short type, the proxy's rejection message when it NACKed. */
  errors: Record<string, string>;
  istiod: string;
  version: string;
}

interface ClientConfigObj {
  node?: { id?: string; metadata?: { fields?: Record<string, { stringValue?: string }> } };
  generic_xds_configs?: { type_url?: string; config_status?: string; client_status?: string; error_state?: { details?: string } }[];
}

/** istioctl's spelling of a ConfigStatus (NOT_SENT is printed "NOT SENT"); ERROR with a NACK reads NACKED. */
function word(configStatus: string, clientStatus: string | undefined): string {
  if (clientStatus === 'NACKED') return 'NACKED';
  if (configStatus === 'NOT_SENT') return 'NOT SENT';
  return configStatus || 'NOT SENT';
}

export function readStatuses(protos: EnvoyProtos, resources: readonly AnyMsg[], cp: { id: string; version: string }): ProxyStatus[] {
  const T = protos.type('envoy.service.status.v3.ClientConfig');
  const out: ProxyStatus[] = [];
  for (const any of resources) {
    if (any.type_url !== CLIENT_CONFIG) continue;
    const cc = T.toObject(T.decode(any.value), { enums: String, defaults: false }) as ClientConfigObj;
    const fields = cc.node?.metadata?.fields ?? {};
    const status: Record<string, string> = {};
    const errors: Record<string, string> = {};
    for (const g of cc.generic_xds_configs ?? []) {
      const t = g.type_url ?? '';
      const short = SHORT[t.slice(t.lastIndexOf('.') + 1)] ?? t;
      status[short] = word(g.config_status ?? '', g.client_status);
      if (g.error_state?.details) errors[short] = g.error_state.details;
    }
    out.push({
      name: cc.node?.id ?? '',
      cluster: fields['CLUSTER_ID']?.stringValue ?? '',
      namespace: fields['NAMESPACE']?.stringValue ?? '',
      status,
      errors,
      istiod: cp.id,
      version: cp.version,
    });
  }
  // istioctl sorts by cluster, then by proxy name.
  return out.sort((a, b) => (a.cluster !== b.cluster ? (a.cluster < b.cluster ? -1 : 1) : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** istioctl's name for a proxy in the table: `<pod>.<namespace>` for a sidecar or gateway node ID. */
export function displayName(id: string): string {
  const p = id.split('~');
  return p.length === 4 && p[2] ? (p[2] as string) : id;
}

export function statusTable(list: readonly ProxyStatus[]): string {
  const cols = ['CDS', 'LDS', 'EDS', 'RDS', 'ECDS'];
  const rows = [['NAME', 'CLUSTER', ...cols, 'ISTIOD', 'VERSION']];
  for (const p of list) rows.push([displayName(p.name), p.cluster, ...cols.map((c) => p.status[c] ?? 'NOT SENT'), p.istiod, p.version]);
  return tabulate(rows, 5);
}

/**
 * For one proxy, what istioctl's comparator prints per type ("Clusters Match", or what differs).
 * istioctl diffs Envoy's own admin dump against istiod's; meshd has no access to the proxy's
 * admin port, so it compares what it would send now with what the proxy acknowledged: a type
 * matches when the proxy ACKed the last response meshd sent for it.
 */
export function proxyDiff(p: ProxyStatus): string {
  const label: [string, string][] = [
    ['CDS', 'Clusters'],
    ['LDS', 'Listeners'],
    ['RDS', 'Routes'],
    ['EDS', 'Endpoints'],
  ];
  const lines: string[] = [];
  for (const [short, name] of label) {
    const st = p.status[short] ?? 'NOT SENT';
    if (st === 'SYNCED') lines.push(`${name} Match`);
    else if (st === 'NOT SENT') lines.push(`${name} Not Sent (the proxy has not subscribed to ${short})`);
    else if (st === 'NACKED') lines.push(`${name} Don't Match (the proxy rejected meshd's last ${short} response: ${p.errors[short] ?? 'no message'})`);
    else lines.push(`${name} Don't Match (meshd's last ${short} response is not yet acknowledged)`);
  }
  return `${lines.join('\n')}\n`;
}
