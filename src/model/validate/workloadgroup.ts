/**
 * WorkloadGroup (networking.istio.io), after istiod's ValidateWorkloadGroup and its CRD's field
 * set: a template is required (a WorkloadEntry spec; its address is filled in at registration,
 * so WorkloadEntry's own rules are not applied, as in Istio), metadata labels valid as labels,
 * and a readiness probe with non-negative timings and exactly one known method.
 */
import type { ConfigObject } from '../objects';
import { Issues, arr, num, pathIdx, pathKey, rec, str } from './common';
import { checkLabelMap, headerMatchNameError, portError } from './istio-common';
import { any, arrayOf, checkSpec, closed, i32, mapOf, str as strSchema, u32 } from './schema';
import { workloadEntrySchema } from './serviceentry-schema';

const probeSchema = closed({
  initialDelaySeconds: i32,
  timeoutSeconds: i32,
  periodSeconds: i32,
  successThreshold: i32,
  failureThreshold: i32,
  httpGet: closed({ path: strSchema, port: u32, host: strSchema, scheme: strSchema, httpHeaders: arrayOf(closed({ name: strSchema, value: strSchema })) }),
  tcpSocket: closed({ host: strSchema, port: u32 }),
  exec: closed({ command: arrayOf(strSchema) }),
  grpc: any,
});

export const workloadGroupSchema = closed({
  metadata: closed({ labels: mapOf(strSchema), annotations: mapOf(strSchema) }),
  template: workloadEntrySchema,
  probe: probeSchema,
});

const TIMINGS = ['periodSeconds', 'initialDelaySeconds', 'timeoutSeconds', 'successThreshold', 'failureThreshold'] as const;
const METHODS = ['httpGet', 'tcpSocket', 'exec', 'grpc'] as const;

function checkProbe(issues: Issues, probe: Readonly<Record<string, unknown>>): void {
  const path = 'spec.probe';
  for (const t of TIMINGS) {
    const n = num(probe[t]);
    if (n !== undefined && n < 0) issues.add(pathKey(path, t), `${t} must be non-negative`);
  }
  const methods = METHODS.filter((m) => probe[m] !== undefined && probe[m] !== null);
  if (methods.length === 0) {
    issues.add(path, 'unknown health check method <nil> (set one of httpGet, tcpSocket, exec, grpc)');
    return;
  }
  if (methods.length > 1) issues.add(path, `only one health check method may be set (got ${methods.join(', ')})`);
  const http = rec(probe['httpGet']);
  if (http) {
    const port = num(http['port']) ?? 0;
    issues.addIf(pathKey(pathKey(path, 'httpGet'), 'port'), portError(port));
    const scheme = str(http['scheme']) ?? '';
    if (scheme !== '' && scheme !== 'HTTP' && scheme !== 'HTTPS') issues.add(pathKey(pathKey(path, 'httpGet'), 'scheme'), 'httpGet.scheme must be one of "http", "https"');
    (arr(http['httpHeaders']) ?? []).forEach((h, i) => {
      const name = str(rec(h)?.['name']) ?? '';
      issues.addIf(pathKey(pathIdx(pathKey(pathKey(path, 'httpGet'), 'httpHeaders'), i), 'name'), headerMatchNameError(name));
    });
  }
  const tcp = rec(probe['tcpSocket']);
  if (tcp) issues.addIf(pathKey(pathKey(path, 'tcpSocket'), 'port'), portError(num(tcp['port']) ?? 0));
  const exec = rec(probe['exec']);
  if (exec && (arr(exec['command']) ?? []).length === 0) issues.add(pathKey(pathKey(path, 'exec'), 'command'), 'exec.command is required');
}

export function validateWorkloadGroup(obj: ConfigObject, issues: Issues): void {
  const spec = checkSpec(obj.body, workloadGroupSchema, issues);
  if (spec === undefined) return;
  if (spec['template'] === undefined || spec['template'] === null) issues.add('spec.template', 'template is required');
  const meta = rec(spec['metadata']);
  if (meta) checkLabelMap(issues, 'spec.metadata.labels', meta['labels']);
  const probe = rec(spec['probe']);
  if (probe) checkProbe(issues, probe);
}
