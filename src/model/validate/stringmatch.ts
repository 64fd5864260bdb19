/** Istio StringMatch (`exact` | `prefix` | `regex`) and RE2 regex checks. */
import { Issues, pathKey, rec, str } from './common';
import { re2Error } from './re2';

const MAX_REGEX_LENGTH = 1024;
const RE2_HINT = 'Istio uses RE2 syntax (https://github.com/google/re2/wiki/Syntax)';

/** An error for a regex Istio would reject: empty, over 1024 characters, or not RE2 syntax. */
export function regexError(re: string): string | undefined {
  if (re === '') return 'regex string match should not be empty';
  if (re.length > MAX_REGEX_LENGTH) return `regex is too large, max length allowed is ${MAX_REGEX_LENGTH}`;
  const err = re2Error(re);
  return err === undefined ? undefined : `invalid regex ${JSON.stringify(re)}: ${err}; ${RE2_HINT}`;
}

export interface StringMatchRules {
  /** `uri` may match an empty prefix; scheme, method, authority, headers and query params may not. */
  allowEmptyPrefix: boolean;
}

/**
 * A StringMatch sets at most one of exact, prefix and regex (Istio's CRD makes them a oneof;
 * an empty match is allowed and means "present" for headers and query parameters).
 */
export function checkStringMatch(issues: Issues, path: string, v: unknown, rules: StringMatchRules): void {
  const m = rec(v);
  if (m === undefined) return;
  const set = ['exact', 'prefix', 'regex'].filter((k) => m[k] !== undefined);
  if (set.length > 1) issues.add(path, `set only one of exact, prefix or regex (got ${set.join(' and ')})`);
  const prefix = str(m['prefix']);
  if (prefix === '' && !rules.allowEmptyPrefix) issues.add(pathKey(path, 'prefix'), 'prefix string match should not be empty');
  const regex = str(m['regex']);
  if (regex !== undefined) issues.addIf(pathKey(path, 'regex'), regexError(regex));
}
