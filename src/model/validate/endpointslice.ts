/** EndpointSlice (discovery.k8s.io/v1): Kubernetes rules plus the service-name label meshd needs. */
import type { ConfigObject } from '../objects';
import { Issues, arr, pathIdx, pathKey, recordItems, str, stringItems } from './common';
import { ipv4Error, ipv6Error } from './ip';
import { checkPortNumber, PROTOCOL } from './k8s-common';
import { dnsLabelError, dnsSubdomainError } from './names';
import { arrayOf, bool, checkSchema, i32, oneOf, open, str as strSchema } from './schema';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const MAX_ADDRESSES = 100;

const endpointSliceSchema = open({
  addressType: oneOf('IPv4', 'IPv6', 'FQDN'),
  endpoints: arrayOf(
    open({
      addresses: arrayOf(strSchema),
      conditions: open({ ready: bool, serving: bool, terminating: bool }),
      hostname: strSchema,
      nodeName: strSchema,
      zone: strSchema,
      targetRef: open({ kind: strSchema, name: strSchema, namespace: strSchema, uid: strSchema }),
    }),
  ),
  ports: arrayOf(open({ name: strSchema, port: i32, protocol: PROTOCOL, appProtocol: strSchema })),
});

export function validateEndpointSlice(obj: ConfigObject, issues: Issues): void {
  checkSchema(obj.body, endpointSliceSchema, '', issues);
  const addressType = str(obj.body['addressType']);
  if (obj.body['addressType'] === undefined) issues.add('addressType', 'addressType is required (IPv4, IPv6 or FQDN)');

  if (!obj.metadata.labels[SERVICE_NAME_LABEL]) {
    issues.add(pathKey('metadata.labels', SERVICE_NAME_LABEL), `label ${SERVICE_NAME_LABEL} is required: meshd finds an EndpointSlice's Service by it`);
  }

  for (const [i, ep] of recordItems(obj.body['endpoints'])) {
    const p = pathIdx('endpoints', i);
    const addresses = arr(ep['addresses']);
    if (addresses === undefined || addresses.length === 0) {
      issues.add(pathKey(p, 'addresses'), 'at least one address is required');
    } else if (addresses.length > MAX_ADDRESSES) {
      issues.add(pathKey(p, 'addresses'), `at most ${MAX_ADDRESSES} addresses are allowed`);
    }
    for (const [j, a] of stringItems(ep['addresses'])) {
      const ap = pathIdx(pathKey(p, 'addresses'), j);
      if (addressType === 'IPv4') issues.addIf(ap, ipv4Error(a));
      else if (addressType === 'IPv6') issues.addIf(ap, ipv6Error(a));
      else if (addressType === 'FQDN') issues.addIf(ap, dnsSubdomainError(a));
    }
    const hostname = str(ep['hostname']);
    if (hostname !== undefined) issues.addIf(pathKey(p, 'hostname'), dnsLabelError(hostname));
  }

  const names = new Set<string>();
  for (const [i, port] of recordItems(obj.body['ports'])) {
    const p = pathIdx('ports', i);
    checkPortNumber(issues, pathKey(p, 'port'), port['port'], false);
    const name = str(port['name']) ?? '';
    if (name !== '') issues.addIf(pathKey(p, 'name'), dnsLabelError(name));
    if (names.has(name)) issues.add(pathKey(p, 'name'), `duplicate port name ${JSON.stringify(name)}`);
    names.add(name);
  }
}
