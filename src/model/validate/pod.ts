/** Pod (v1): light checks on what meshd reads (service account, container ports, pod IPs). */
import type { ConfigObject } from '../objects';
import { Issues, pathIdx, pathKey, rec, recordItems, str } from './common';
import { ipError } from './ip';
import { checkPortNumber, PROTOCOL } from './k8s-common';
import { dnsSubdomainError } from './names';
import { arrayOf, checkSchema, i32, oneOf, open, str as strSchema } from './schema';

const podSchema = open({
  spec: open({
    serviceAccountName: strSchema,
    nodeName: strSchema,
    containers: arrayOf(open({ name: strSchema, ports: arrayOf(open({ name: strSchema, containerPort: i32, protocol: PROTOCOL })) })),
  }),
  status: open({
    podIP: strSchema,
    podIPs: arrayOf(open({ ip: strSchema })),
    phase: oneOf('Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'),
  }),
});

export function validatePod(obj: ConfigObject, issues: Issues): void {
  checkSchema(obj.body, podSchema, '', issues);
  const spec = rec(obj.body['spec']) ?? {};
  const sa = str(spec['serviceAccountName']);
  if (sa !== undefined && sa !== '') issues.addIf('spec.serviceAccountName', dnsSubdomainError(sa));
  for (const [i, c] of recordItems(spec['containers'])) {
    for (const [j, p] of recordItems(c['ports'])) {
      const path = pathIdx(pathKey(pathIdx('spec.containers', i), 'ports'), j);
      checkPortNumber(issues, pathKey(path, 'containerPort'), p['containerPort'], true);
    }
  }
  const status = rec(obj.body['status']) ?? {};
  const podIP = str(status['podIP']);
  if (podIP !== undefined && podIP !== '') issues.addIf('status.podIP', ipError(podIP));
  const podIPs = recordItems(status['podIPs']);
  for (const [i, entry] of podIPs) {
    const ip = str(entry['ip']);
    if (ip !== undefined) issues.addIf(pathKey(pathIdx('status.podIPs', i), 'ip'), ipError(ip));
  }
  const first = str(podIPs[0]?.[1]['ip']);
  if (podIP && first && podIP !== first) issues.add('status.podIPs[0].ip', `must equal status.podIP (${podIP})`);
}
