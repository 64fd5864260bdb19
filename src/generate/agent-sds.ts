/**
 * Secrets that istio-agent (or `meshd agent`) serves to its Envoy over the local `sds-grpc`
 * cluster: the workload certificate `default`, the root bundle `ROOTCA`, and `file-cert:` /
 * `file-root:` names for certificates mounted as files.
 */
import type { ProtoObject } from './types';
import { seconds } from './util';

export const SDS_CLUSTER = 'sds-grpc';
export const SDS_DEFAULT = 'default';
export const SDS_ROOT = 'ROOTCA';

/** An SDS secret reference through the agent; workload certificates never time out waiting. */
export function agentSds(name: string): ProtoObject {
  const source: ProtoObject = {
    api_config_source: {
      api_type: 'GRPC',
      set_node_on_first_message_only: true,
      transport_api_version: 'V3',
      grpc_services: [{ envoy_grpc: { cluster_name: SDS_CLUSTER } }],
    },
    resource_api_version: 'V3',
  };
  // Workload certificates always exist; don't hold the listener or cluster waiting for them.
  if (name === SDS_DEFAULT || name === SDS_ROOT) source.initial_fetch_timeout = seconds(0);
  return { name, sds_config: source };
}
