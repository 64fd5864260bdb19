/**
 * PeerAuthentication (security.istio.io), after Istio's ValidatePeerAuthentication and its CRD's
 * field set: mtls modes, portLevelMtls keyed by workload port (selector required), selector labels.
 */
import type { ConfigObject } from '../objects';
import { Issues, isRecord, pathKey, rec } from './common';
import { checkSelectorLabels } from './istio-common';
import { checkSchema, closed, mapOf, oneOf, str } from './schema';

export const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;

const mtls = closed({ mode: oneOf(...MTLS_MODES) });

export const peerAuthenticationSchema = closed({
  selector: closed({ matchLabels: mapOf(str) }),
  mtls,
  portLevelMtls: mapOf(mtls),
});

export function validatePeerAuthentication(obj: ConfigObject, issues: Issues): void {
  const raw = obj.body['spec'];
  // An empty spec is a valid mesh/namespace policy (mode UNSET: inherit, i.e. PERMISSIVE).
  if (raw === undefined || raw === null) return;
  checkSchema(raw, peerAuthenticationSchema, 'spec', issues);
  const spec = rec(raw);
  if (spec === undefined) return;
  const selector = rec(spec['selector']);
  const labels = rec(selector?.['matchLabels']);
  const emptySelector = labels === undefined || Object.keys(labels).length === 0;
  const ports = spec['portLevelMtls'];
  if (isRecord(ports)) {
    const keys = Object.keys(ports);
    if (keys.length === 0) issues.add('spec.portLevelMtls', 'port level mTLS, if defined, must have at least one element');
    else if (emptySelector) issues.add('spec.portLevelMtls', 'mesh/namespace peer authentication cannot have port level mTLS');
    for (const k of keys) {
      const n = /^[0-9]+$/.test(k) ? Number(k) : NaN;
      if (!(n >= 1 && n <= 65535)) issues.add(pathKey('spec.portLevelMtls', k), `port must be in range 1..65535 (got ${JSON.stringify(k)})`);
    }
  }
  if (selector !== undefined) checkSelectorLabels(issues, 'spec.selector.matchLabels', selector['matchLabels']);
}
