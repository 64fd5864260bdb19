/**
 * ProxyConfig (networking.istio.io/v1beta1), after istiod's ValidateProxyConfig and its CRD's
 * field set: a workload selector without empty keys or wildcards, concurrency ≥ 0, environment
 * variables as strings (the CRD caps each at 2048 characters), an image type.
 */
import type { ConfigObject } from '../objects';
import { Issues, num, pathKey, rec, stringEntries } from './common';
import { checkSelectorLabels } from './istio-common';
import { checkSchema, closed, i32, mapOf, str as strSchema } from './schema';

export const proxyConfigSchema = closed({
  selector: closed({ matchLabels: mapOf(strSchema) }),
  concurrency: i32,
  environmentVariables: mapOf(strSchema),
  image: closed({ imageType: strSchema }),
});

/** The CRD's maxLength of one environment variable's value. */
const MAX_ENV_VALUE = 2048;

export function validateProxyConfig(obj: ConfigObject, issues: Issues): void {
  // No spec is an empty ProxyConfig (it sets nothing), as istiod reads it.
  const raw = obj.body['spec'];
  if (raw === undefined || raw === null) return;
  checkSchema(raw, proxyConfigSchema, 'spec', issues);
  const spec = rec(raw);
  if (spec === undefined) return;
  const selector = rec(spec['selector']);
  if (selector !== undefined) checkSelectorLabels(issues, 'spec.selector.matchLabels', selector['matchLabels']);
  const concurrency = num(spec['concurrency']);
  if (concurrency !== undefined && concurrency < 0) issues.add('spec.concurrency', 'concurrency must be greater than or equal to 0');
  for (const [k, v] of stringEntries(spec['environmentVariables'])) {
    if (v.length > MAX_ENV_VALUE) issues.add(pathKey('spec.environmentVariables', k), `must be at most ${MAX_ENV_VALUE} characters (got ${v.length})`);
  }
}
