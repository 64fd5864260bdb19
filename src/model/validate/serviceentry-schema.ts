/**
 * The full field sets of Istio's ServiceEntry and WorkloadEntry specs (networking.istio.io v1 /
 * v1beta1 / v1alpha3), as in Istio's CRDs. A ServiceEntry's endpoints are WorkloadEntry specs.
 */
import { arrayOf, closed, mapOf, oneOf, str, u32 } from './schema';

export const RESOLUTIONS = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'] as const;

export const workloadEntrySchema = closed({
  address: str,
  ports: mapOf(u32),
  labels: mapOf(str),
  network: str,
  locality: str,
  weight: u32,
  serviceAccount: str,
});

export const serviceEntrySchema = closed({
  hosts: arrayOf(str),
  addresses: arrayOf(str),
  ports: arrayOf(closed({ number: u32, protocol: str, name: str, targetPort: u32 })),
  location: oneOf('MESH_EXTERNAL', 'MESH_INTERNAL'),
  resolution: oneOf(...RESOLUTIONS),
  endpoints: arrayOf(workloadEntrySchema),
  workloadSelector: closed({ labels: mapOf(str) }),
  exportTo: arrayOf(str),
  subjectAltNames: arrayOf(str),
});

/** List and map size limits from the CRDs (`maxItems` / `maxProperties`). */
export const SERVICE_ENTRY_LIMITS: ReadonlyArray<readonly [string, number]> = [
  ['hosts', 256],
  ['addresses', 256],
  ['ports', 256],
  ['endpoints', 4096],
];
export const WORKLOAD_ENTRY_LIMITS: ReadonlyArray<readonly [string, number]> = [
  ['ports', 128],
  ['labels', 256],
];
