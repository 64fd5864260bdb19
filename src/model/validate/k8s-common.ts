/** Checks shared by the Kubernetes core kinds: ports, protocols, selectors. */
import { Issues, num, stringEntries, pathKey } from './common';
import { labelKeyError, labelValueError } from './names';
import { oneOf } from './schema';

export const PROTOCOL = oneOf('TCP', 'UDP', 'SCTP');

/** A port number field; `required` reports absence too. */
export function checkPortNumber(issues: Issues, path: string, v: unknown, required: boolean): void {
  if (v === undefined) {
    if (required) issues.add(path, 'port is required');
    return;
  }
  const n = num(v);
  if (n !== undefined && Number.isInteger(n) && (n < 1 || n > 65535)) {
    issues.add(path, `must be between 1 and 65535, inclusive (got ${n})`);
  }
}

/** A label map as Kubernetes validates metadata.labels and selectors. */
export function checkK8sLabels(issues: Issues, path: string, v: unknown): void {
  for (const [k, value] of stringEntries(v)) {
    issues.addIf(pathKey(path, k), labelKeyError(k));
    issues.addIf(pathKey(path, k), labelValueError(value));
  }
}
