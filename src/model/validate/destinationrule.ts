/**
 * DestinationRule (networking.istio.io), after Istio's ValidateDestinationRule: strict field
 * set, host, subsets, traffic policies, exportTo and workloadSelector.
 */
import type { ConfigObject } from '../objects';
import { Issues, pathIdx, pathKey, rec, recordItems, str } from './common';
import { destinationRuleSchema } from './destinationrule-schema';
import { checkExportTo, checkLabelMap, checkSelectorLabels, subsetNameError } from './istio-common';
import { wildcardDomainError } from './names';
import { checkSpec } from './schema';
import { checkTrafficPolicy } from './trafficpolicy';

export function validateDestinationRule(obj: ConfigObject, issues: Issues): void {
  const spec = checkSpec(obj.body, destinationRuleSchema, issues);
  if (spec === undefined) return;

  const host = str(spec['host']);
  if (spec['host'] === undefined || host === '') issues.add('spec.host', 'host is required');
  else if (host !== undefined) issues.addIf('spec.host', wildcardDomainError(host));

  checkTrafficPolicy(issues, 'spec.trafficPolicy', spec['trafficPolicy']);

  const names = new Set<string>();
  for (const [i, subset] of recordItems(spec['subsets'])) {
    const p = pathIdx('spec.subsets', i);
    const name = str(subset['name']);
    if (subset['name'] === undefined || name === '') issues.add(pathKey(p, 'name'), 'subset name is required');
    else if (name !== undefined) {
      issues.addIf(pathKey(p, 'name'), subsetNameError(name));
      if (names.has(name)) issues.add(pathKey(p, 'name'), `duplicate subset name ${JSON.stringify(name)}`);
      names.add(name);
    }
    checkLabelMap(issues, pathKey(p, 'labels'), subset['labels']);
    checkTrafficPolicy(issues, pathKey(p, 'trafficPolicy'), subset['trafficPolicy']);
  }

  const selector = rec(spec['workloadSelector']);
  checkExportTo(issues, 'spec.exportTo', spec['exportTo'], obj.metadata.namespace, selector !== undefined);
  if (selector !== undefined) {
    checkSelectorLabels(issues, 'spec.workloadSelector.matchLabels', selector['matchLabels']);
  }
}
