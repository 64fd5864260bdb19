/**
 * Checks shared by VirtualService and DestinationRule, after Istio's pkg/config/validation:
 * destinations, ports, label maps, exportTo, gateway names, header names and values.
 */
import { Issues, num, pathIdx, pathKey, rec, str, stringEntries, stringItems, subPath } from './common';
import { fqdnError, isIstioDnsLabel, labelKeyError, labelValueError, wildcardDomainError } from './names';

export function portError(n: number): string | undefined {
  return n >= 1 && n <= 65535 ? undefined : `port number ${n} must be in the range 1..65535`;
}

/** A port field that, when present, must be 1..65535. */
export function checkPort(issues: Issues, path: string, v: unknown): void {
  const n = num(v);
  if (n !== undefined && Number.isInteger(n)) issues.addIf(path, portError(n));
}

/** Istio's labels.Instance.Validate (also used for sourceLabels and subset labels). */
export function checkLabelMap(issues: Issues, path: string, v: unknown): void {
  for (const [k, value] of stringEntries(v)) {
    issues.addIf(pathKey(path, k), labelKeyError(k));
    issues.addIf(pathKey(path, k), labelValueError(value));
  }
}

export function subsetNameError(name: string): string | undefined {
  if (name === '') return 'subset name cannot be empty';
  return isIstioDnsLabel(name) ? undefined : `subset name ${JSON.stringify(name)} is invalid: it must be a DNS label`;
}

/** validateDestination: a host (no bare `*`), an optional subset name and port number. */
export function checkDestination(issues: Issues, path: string, v: unknown): void {
  const d = rec(v);
  if (d === undefined) return;
  const host = str(d['host']);
  if (d['host'] === undefined || host === '') {
    issues.add(pathKey(path, 'host'), 'host is required');
  } else if (host === undefined) {
    // wrong type: reported by the schema pass
  } else if (host === '*') {
    issues.add(pathKey(path, 'host'), 'invalid destination host *: name a service, not a wildcard');
  } else {
    issues.addIf(pathKey(path, 'host'), wildcardDomainError(host));
  }
  const subset = str(d['subset']);
  if (subset !== undefined && subset !== '') issues.addIf(pathKey(path, 'subset'), subsetNameError(subset));
  const port = rec(d['port']);
  if (port !== undefined) {
    const n = num(port['number']);
    if (port['number'] === undefined) issues.add(subPath(path, 'port.number'), 'port number is required when port is set');
    else if (n !== undefined && Number.isInteger(n)) issues.addIf(subPath(path, 'port.number'), portError(n));
  }
}

/**
 * exportTo entries: `.`, `*` or a namespace name; no duplicates; `*` alone.
 * A DestinationRule with a workloadSelector may only be exported to its own namespace.
 */
export function checkExportTo(issues: Issues, path: string, v: unknown, namespace: string, drWithSelector = false): void {
  const items = stringItems(v);
  const seen = new Set<string>();
  for (const [i, e] of items) {
    const key = e === '.' ? namespace : e;
    if (seen.has(key)) {
      issues.add(pathIdx(path, i), e === key ? `duplicate entry ${JSON.stringify(e)}` : `duplicate entry: "." is the current namespace ${namespace}`);
      continue;
    }
    if (e === '~') {
      issues.add(pathIdx(path, i), 'exportTo ~ (none) is not allowed for Istio configuration objects');
      continue;
    }
    if (e !== '.' && e !== '*' && !isIstioDnsLabel(e)) {
      issues.add(pathIdx(path, i), `only ".", "*" or a namespace name (a DNS label) is allowed (got ${JSON.stringify(e)})`);
      continue;
    }
    seen.add(key);
  }
  if (seen.has('*') && items.length > 1) issues.add(path, 'cannot have both public (*) and non-public exportTo values');
  if (drWithSelector && seen.size > 0) {
    if (!seen.has(namespace)) issues.add(path, 'a DestinationRule with a workloadSelector cannot be exported beyond its own namespace');
    else if (seen.size > 1) issues.add(path, 'a DestinationRule with a workloadSelector cannot have multiple exportTo entries');
  }
}

/** Workload selector labels (ValidateAlphaWorkloadSelector): no empty keys, no wildcards. */
export function checkSelectorLabels(issues: Issues, path: string, v: unknown): void {
  for (const [k, val] of stringEntries(v)) {
    const p = pathKey(path, k);
    if (k === '') issues.add(p, 'empty key is not supported in selector');
    if (k.includes('*') || val.includes('*')) issues.add(p, `wildcard is not supported in selector: ${JSON.stringify(`${k}=${val}`)}`);
  }
}

/** validateGatewayNames: `<namespace>/<name>`, or a legacy FQDN-style name (including `mesh`). */
export function checkGatewayNames(issues: Issues, path: string, v: unknown): void {
  for (const [i, g] of stringItems(v)) {
    const p = pathIdx(path, i);
    const slash = g.indexOf('/');
    if (slash < 0) {
      issues.addIf(p, fqdnError(g));
      continue;
    }
    const ns = g.slice(0, slash);
    const name = g.slice(slash + 1);
    if (ns === '' || name === '') issues.add(p, 'gateway namespace and name cannot be empty (use <namespace>/<name>)');
    else if (!isIstioDnsLabel(ns)) issues.add(p, `invalid value for namespace: ${JSON.stringify(ns)}`);
    else if (!isIstioDnsLabel(name)) issues.add(p, `invalid value for gateway name: ${JSON.stringify(name)}`);
  }
}

const HEADER_NAME = /^[-_A-Za-z0-9]+$/;
const JWT_CLAIM_PREFIX = '@request.auth.claims.';

export function isJwtClaimHeader(name: string): boolean {
  return name.startsWith(JWT_CLAIM_PREFIX) && name.length > JWT_CLAIM_PREFIX.length;
}

/** A header name to match on (or a `@request.auth.claims.…` JWT claim at gateways). */
export function headerMatchNameError(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (isJwtClaimHeader(name) || HEADER_NAME.test(name)) return undefined;
  return `header name ${JSON.stringify(name)} is not a valid header name (letters, digits, '-' and '_' only)`;
}

/** Header value as Envoy accepts it: no control characters; `%` starts `%VAR%`/`%VAR(arg)%` or is `%%`. */
export function headerValueError(value: string): string | undefined {
  if (/[\u0000-\u0008\u000A-\u001F\u007F]/.test(value)) return `header value ${JSON.stringify(value)} contains control characters`;
  for (let i = 0; i < value.length; i++) {
    if (value[i] !== '%') continue;
    if (value[i + 1] === '%') {
      i++;
      continue;
    }
    const m = /^%[A-Z0-9_]+(\([^)]*\))?(:[0-9]+)?%/.exec(value.slice(i));
    if (m === null) return `header value ${JSON.stringify(value)} has an invalid %VARIABLE% expression (write %% for a literal %)`;
    i += m[0].length - 1;
  }
  return undefined;
}

/** Headers.request/response add, set and remove (route level and destination level). */
export function checkHeaderOperations(issues: Issues, path: string, v: unknown): void {
  const h = rec(v);
  if (h === undefined) return;
  for (const side of ['request', 'response'] as const) {
    const ops = rec(h[side]);
    if (ops === undefined) continue;
    const base = pathKey(path, side);
    for (const op of ['add', 'set'] as const) {
      for (const [name, value] of stringEntries(ops[op])) {
        const p = pathKey(pathKey(base, op), name);
        issues.addIf(p, side === 'request' ? requestHeaderOpError(name) : headerOpError(name));
        issues.addIf(p, headerValueError(value));
      }
    }
    for (const [i, name] of stringItems(ops['remove'])) {
      issues.addIf(pathIdx(pathKey(base, 'remove'), i), headerOpError(name));
    }
  }
}

function isAuthority(name: string): boolean {
  const l = name.toLowerCase();
  return l === ':authority' || l === 'host';
}

/** ValidateHTTPHeaderWithAuthorityOperationName: request add/set may rewrite the authority. */
function requestHeaderOpError(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if ((name.startsWith(':') || name.toLowerCase() === 'host') && !isAuthority(name)) {
    return `invalid header ${JSON.stringify(name)}: header cannot have ":" prefix`;
  }
  return undefined;
}

/** ValidateHTTPHeaderOperationName: removes and response edits cannot touch Host or pseudo-headers. */
function headerOpError(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (name.toLowerCase() === 'host') return `invalid header ${JSON.stringify(name)}: cannot set Host header`;
  if (name.startsWith(':')) return `invalid header ${JSON.stringify(name)}: header cannot have ":" prefix`;
  return undefined;
}
