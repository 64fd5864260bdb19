/** Endpoints (legacy v1): addresses are IPs, ports are valid and (when several) named uniquely. */
import type { ConfigObject } from '../objects';
import { Issues, arr, pathIdx, pathKey, recordItems, str } from './common';
import { ipError } from './ip';
import { checkPortNumber, PROTOCOL } from './k8s-common';
import { dnsLabelError } from './names';
import { arrayOf, checkSchema, i32, open, str as strSchema } from './schema';

const address = open({ ip: strSchema, hostname: strSchema, nodeName: strSchema, targetRef: open({}) });
const endpointsSchema = open({
  subsets: arrayOf(
    open({
      addresses: arrayOf(address),
      notReadyAddresses: arrayOf(address),
      ports: arrayOf(open({ name: strSchema, port: i32, protocol: PROTOCOL, appProtocol: strSchema })),
    }),
  ),
});

export function validateEndpoints(obj: ConfigObject, issues: Issues): void {
  checkSchema(obj.body, endpointsSchema, '', issues);
  for (const [i, subset] of recordItems(obj.body['subsets'])) {
    const sp = pathIdx('subsets', i);
    for (const field of ['addresses', 'notReadyAddresses']) {
      for (const [j, a] of recordItems(subset[field])) {
        const ap = pathIdx(pathKey(sp, field), j);
        const ip = str(a['ip']);
        if (ip === undefined) {
          if (a['ip'] === undefined) issues.add(pathKey(ap, 'ip'), 'ip is required');
        } else {
          issues.addIf(pathKey(ap, 'ip'), ipError(ip));
        }
      }
    }
    const ports = arr(subset['ports']) ?? [];
    const names = new Set<string>();
    for (const [j, port] of recordItems(ports)) {
      const pp = pathIdx(pathKey(sp, 'ports'), j);
      checkPortNumber(issues, pathKey(pp, 'port'), port['port'], true);
      const name = str(port['name']) ?? '';
      if (name === '' && ports.length > 1) issues.add(pathKey(pp, 'name'), 'name is required when a subset has more than one port');
      if (name !== '') issues.addIf(pathKey(pp, 'name'), dnsLabelError(name));
      if (name !== '' && names.has(name)) issues.add(pathKey(pp, 'name'), `duplicate port name ${JSON.stringify(name)}`);
      names.add(name);
    }
  }
}
