/**
 * What Istio checks on every Istio object's metadata before its spec (pkg/config/validation's
 * validateMetadata): the `internal.istio.io/webhook-always-reject` annotation (istiod's own probe
 * of its webhook) is always refused, and `istio.io/dry-run` is an AuthorizationPolicy-only
 * annotation with a boolean value, for ALLOW and DENY policies.
 */
import { KNOWN_KINDS, type ConfigObject } from '../objects';
import { Issues, isRecord, pathKey, str } from './common';

export const ALWAYS_REJECT_ANNOTATION = 'internal.istio.io/webhook-always-reject';
export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

/** Go's strconv.ParseBool. */
const GO_BOOLS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False']);

function isIstioKind(obj: ConfigObject): boolean {
  return KNOWN_KINDS[obj.kind].group.endsWith('istio.io');
}

export function validateIstioMetadata(obj: ConfigObject, issues: Issues): void {
  if (!isIstioKind(obj)) return;
  const annotations = obj.metadata.annotations;
  const who = `${obj.metadata.namespace}/${obj.metadata.name}`;
  const dryRun = annotations[DRY_RUN_ANNOTATION];
  const dryRunPath = pathKey('metadata.annotations', DRY_RUN_ANNOTATION);
  if (dryRun !== undefined) {
    if (obj.kind !== 'AuthorizationPolicy') {
      issues.add(dryRunPath, `${who} has unsupported annotation ${DRY_RUN_ANNOTATION}, please remove the annotation`);
    } else {
      const spec = obj.body['spec'];
      const action = (isRecord(spec) ? str(spec['action']) : undefined) ?? 'ALLOW';
      if (action !== 'ALLOW' && action !== 'DENY') {
        issues.add(dryRunPath, `the annotation ${DRY_RUN_ANNOTATION} currently only supports action ALLOW/DENY, found action ${action} in ${who}`);
      } else if (!GO_BOOLS.has(dryRun)) {
        issues.add(dryRunPath, `${who} has annotation ${DRY_RUN_ANNOTATION} with invalid value (${dryRun}): must be true or false`);
      }
    }
  }
  if (annotations[ALWAYS_REJECT_ANNOTATION] !== undefined) {
    issues.add(pathKey('metadata.annotations', ALWAYS_REJECT_ANNOTATION), `"${ALWAYS_REJECT_ANNOTATION}" annotation found, rejecting`);
  }
}
