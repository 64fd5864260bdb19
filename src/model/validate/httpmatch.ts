/** HTTPMatchRequest checks (Istio's validateHTTPRouteMatchRequest). */
import { Issues, isRecord, num, pathKey, recordItems, str, type JsonObject } from './common';
import { checkGatewayNames, checkLabelMap, headerMatchNameError, isJwtClaimHeader, portError } from './istio-common';
import { isIstioDnsLabel } from './names';
import { checkStringMatch } from './stringmatch';

export interface RouteContext {
  /** The VirtualService is bound only to gateways (not to the `mesh` sidecars). */
  gatewayOnly: boolean;
}

export function checkHttpMatches(issues: Issues, path: string, v: unknown, ctx: RouteContext): void {
  for (const [i, m] of recordItems(v)) checkHttpMatch(issues, `${path}[${i}]`, m, ctx);
}

function checkHttpMatch(issues: Issues, path: string, m: JsonObject, ctx: RouteContext): void {
  checkStringMatch(issues, pathKey(path, 'uri'), m['uri'], { allowEmptyPrefix: true });
  for (const field of ['scheme', 'method', 'authority']) {
    checkStringMatch(issues, pathKey(path, field), m[field], { allowEmptyPrefix: false });
  }
  for (const field of ['headers', 'withoutHeaders'] as const) {
    const headers = m[field];
    if (!isRecord(headers)) continue;
    for (const [name, match] of Object.entries(headers)) {
      const p = pathKey(pathKey(path, field), name);
      issues.addIf(p, headerMatchNameError(name));
      if (isJwtClaimHeader(name) && !ctx.gatewayOnly) {
        issues.add(p, `JWT claim based routing (${name}) is only supported for VirtualServices bound to gateways`);
      }
      // in withoutHeaders, regex "*" is not RE2: it means "header present"
      if (field === 'withoutHeaders' && isRecord(match) && match['regex'] === '*') continue;
      checkStringMatch(issues, p, match, { allowEmptyPrefix: false });
    }
  }
  const query = m['queryParams'];
  if (isRecord(query)) {
    for (const [name, match] of Object.entries(query)) {
      checkStringMatch(issues, pathKey(pathKey(path, 'queryParams'), name), match, { allowEmptyPrefix: false });
    }
  }
  const port = num(m['port']);
  if (port !== undefined && port !== 0 && Number.isInteger(port)) issues.addIf(pathKey(path, 'port'), portError(port));
  checkLabelMap(issues, pathKey(path, 'sourceLabels'), m['sourceLabels']);
  checkGatewayNames(issues, pathKey(path, 'gateways'), m['gateways']);
  const ns = str(m['sourceNamespace']);
  if (ns !== undefined && ns !== '' && !isIstioDnsLabel(ns)) {
    issues.add(pathKey(path, 'sourceNamespace'), `sourceNamespace ${JSON.stringify(ns)} is not a valid namespace name`);
  }
}
