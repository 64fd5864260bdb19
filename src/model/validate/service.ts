/** Service (v1): the Kubernetes rules for the fields meshd reads. */
import type { ConfigObject } from '../objects';
import { Issues, arr, num, pathIdx, pathKey, rec, recordItems, str } from './common';
import { ipError } from './ip';
import { checkK8sLabels, checkPortNumber, PROTOCOL } from './k8s-common';
import { dnsLabelError, dnsSubdomainError, ianaSvcNameError, labelKeyError } from './names';
import { arrayOf, checkSchema, intOrString, mapOf, oneOf, open, str as strSchema, i32 } from './schema';

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];

const serviceSchema = open({
  spec: open({
    ports: arrayOf(open({ name: strSchema, port: i32, targetPort: intOrString, protocol: PROTOCOL, appProtocol: strSchema, nodePort: i32 })),
    selector: mapOf(strSchema),
    clusterIP: strSchema,
    clusterIPs: arrayOf(strSchema),
    type: oneOf(...SERVICE_TYPES),
    externalName: strSchema,
  }),
});

export function validateService(obj: ConfigObject, issues: Issues): void {
  checkSchema(obj.body, serviceSchema, '', issues);
  const spec = rec(obj.body['spec']) ?? {};
  const type = str(spec['type']) ?? 'ClusterIP';
  const clusterIP = str(spec['clusterIP']);
  const headless = clusterIP === 'None';

  if (type === 'ExternalName') {
    const name = str(spec['externalName']);
    if (!name) issues.add('spec.externalName', 'externalName is required for type ExternalName');
    else issues.addIf('spec.externalName', dnsSubdomainError(name.toLowerCase().replace(/\.$/, '')));
  }
  if (clusterIP !== undefined && clusterIP !== '' && !headless) issues.addIf('spec.clusterIP', ipError(clusterIP));
  checkK8sLabels(issues, 'spec.selector', spec['selector']);

  const ports = arr(spec['ports']) ?? [];
  if (ports.length === 0 && type !== 'ExternalName' && !headless) {
    issues.add('spec.ports', 'at least one port is required (unless type is ExternalName or clusterIP is None)');
  }
  const names = new Set<string>();
  const portProtocols = new Set<string>();
  for (const [i, p] of recordItems(ports)) {
    const path = pathIdx('spec.ports', i);
    const name = str(p['name']);
    if (name === undefined || name === '') {
      if (ports.length > 1) issues.add(pathKey(path, 'name'), 'name is required when a Service has more than one port');
    } else {
      issues.addIf(pathKey(path, 'name'), dnsLabelError(name));
      if (names.has(name)) issues.add(pathKey(path, 'name'), `duplicate port name ${JSON.stringify(name)}`);
      names.add(name);
    }
    checkPortNumber(issues, pathKey(path, 'port'), p['port'], true);
    const key = `${num(p['port']) ?? ''}/${str(p['protocol']) ?? 'TCP'}`;
    if (num(p['port']) !== undefined && portProtocols.has(key)) issues.add(path, `duplicate port ${key}`);
    portProtocols.add(key);
    checkTargetPort(issues, pathKey(path, 'targetPort'), p['targetPort']);
    const appProtocol = str(p['appProtocol']);
    if (appProtocol !== undefined && labelKeyError(appProtocol) !== undefined) {
      issues.add(
        pathKey(path, 'appProtocol'),
        `appProtocol ${JSON.stringify(appProtocol)} must be a protocol name such as http or grpc, or a prefixed name such as kubernetes.io/h2c`,
      );
    }
  }
}

function checkTargetPort(issues: Issues, path: string, v: unknown): void {
  if (typeof v === 'string') {
    issues.addIf(path, ianaSvcNameError(v));
    return;
  }
  const n = num(v);
  if (n !== undefined && Number.isInteger(n) && (n < 1 || n > 65535)) {
    issues.add(path, `must be between 1 and 65535, inclusive (got ${n}), or a port name`);
  }
}
