/** DestinationRule TrafficPolicy checks (Istio's validateTrafficPolicy and friends). */
import { Issues, arr, bool, has, num, pathIdx, pathKey, rec, recordItems, str, type JsonObject, subPath } from './common';
import { checkDuration } from './httppolicies';
import { portError } from './istio-common';
import { isIP } from './ip';
import { fqdnError } from './names';

const MAGLEV_MAX_TABLE = 5000011;

export function checkTrafficPolicy(issues: Issues, path: string, v: unknown): void {
  const tp = rec(v);
  if (tp === undefined) return;
  if (Object.keys(tp).length === 0) {
    issues.add(path, 'traffic policy must have at least one field');
    return;
  }
  if (has(tp, 'tunnel') && has(tp, 'proxyProtocol')) issues.add(path, 'tunnel and proxyProtocol must not be set together');
  checkPortLevel(issues, path, tp);
  for (const [i, p] of recordItems(tp['portLevelSettings'])) {
    const pp = pathIdx(pathKey(path, 'portLevelSettings'), i);
    const port = rec(p['port']);
    if (port === undefined) issues.add(pathKey(pp, 'port'), 'port is required in a port traffic policy');
    else {
      const n = num(port['number']);
      issues.addIf(subPath(pp, 'port.number'), portError(n ?? 0));
    }
    if (!['loadBalancer', 'connectionPool', 'outlierDetection', 'tls'].some((k) => has(p, k))) {
      issues.add(pp, 'port traffic policy must have at least one of loadBalancer, connectionPool, outlierDetection or tls');
    }
    checkPortLevel(issues, pp, p);
  }
  checkTunnel(issues, pathKey(path, 'tunnel'), tp['tunnel']);
  const budget = num(rec(tp['retryBudget'])?.['percent']);
  if (budget !== undefined && (budget < 0 || budget > 100)) {
    issues.add(subPath(path, 'retryBudget.percent'), `percent ${budget} is not in range 0..100`);
  }
}

/** The parts shared by a traffic policy and a port traffic policy. */
function checkPortLevel(issues: Issues, path: string, tp: JsonObject): void {
  checkLoadBalancer(issues, pathKey(path, 'loadBalancer'), tp['loadBalancer']);
  checkConnectionPool(issues, pathKey(path, 'connectionPool'), tp['connectionPool']);
  checkOutlierDetection(issues, pathKey(path, 'outlierDetection'), tp['outlierDetection']);
  checkClientTls(issues, pathKey(path, 'tls'), tp['tls']);
}

function checkLoadBalancer(issues: Issues, path: string, v: unknown): void {
  const lb = rec(v);
  if (lb === undefined) return;
  const hash = rec(lb['consistentHash']);
  if (has(lb, 'simple') && hash !== undefined) issues.add(path, 'set only one of simple and consistentHash');
  if (hash !== undefined) {
    const hp = pathKey(path, 'consistentHash');
    const keys = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'].filter((k) => has(hash, k));
    if (keys.length > 1) issues.add(hp, `set only one hash key (got ${keys.join(', ')})`);
    const cookie = rec(hash['httpCookie']);
    if (cookie !== undefined && !str(cookie['name'])) issues.add(subPath(hp, 'httpCookie.name'), 'name required for httpCookie');
    if (cookie !== undefined) checkDuration(issues, subPath(hp, 'httpCookie.ttl'), cookie['ttl']);
    const algorithms = ['ringHash', 'maglev', 'minimumRingSize'].filter((k) => has(hash, k));
    if (algorithms.length > 1) issues.add(hp, `set only one of ${algorithms.join(', ')} (minimumRingSize is deprecated; use ringHash)`);
    const maglev = rec(hash['maglev']);
    if (maglev !== undefined) {
      const size = num(maglev['tableSize']) ?? 0;
      const tp = subPath(hp, 'maglev.tableSize');
      if (size === 0) issues.add(tp, 'tableSize must be set for maglev');
      else if (size >= MAGLEV_MAX_TABLE) issues.add(tp, `tableSize must be less than ${MAGLEV_MAX_TABLE} for maglev`);
      else if (!isPrime(size)) issues.add(tp, 'tableSize must be a prime number for maglev');
    }
  }
  const locality = rec(lb['localityLbSetting']);
  if (locality !== undefined) {
    const set = ['distribute', 'failover', 'failoverPriority'].filter((k) => (Array.isArray(locality[k]) ? (locality[k] as unknown[]).length > 0 : false));
    if (set.includes('distribute') && set.includes('failover')) {
      issues.add(pathKey(path, 'localityLbSetting'), 'can not simultaneously set distribute and failover');
    }
  }
  checkDuration(issues, pathKey(path, 'warmupDurationSecs'), lb['warmupDurationSecs']);
  const warmup = rec(lb['warmup']);
  if (warmup !== undefined) {
    if (!has(warmup, 'duration')) issues.add(subPath(path, 'warmup.duration'), 'duration is required');
    checkDuration(issues, subPath(path, 'warmup.duration'), warmup['duration']);
    const minimum = num(warmup['minimumPercent']);
    if (minimum !== undefined && minimum > 100) issues.add(subPath(path, 'warmup.minimumPercent'), `minimumPercent value should be less than or equal to 100 (got ${minimum})`);
    const aggression = num(warmup['aggression']);
    if (aggression !== undefined && aggression < 1) issues.add(subPath(path, 'warmup.aggression'), `aggression should be greater than or equal to 1 (got ${aggression})`);
  }
  if (hash !== undefined && has(hash, 'minimumRingSize')) {
    issues.warn(subPath(path, 'consistentHash.minimumRingSize'), "consistent hash minimumRingSize is deprecated, use consistentHash's ringHash configuration instead");
  }
}

function isPrime(x: number): boolean {
  if (x !== 0 && x < 4) return true;
  if (x % 2 === 0) return false;
  for (let f = 3; f * f <= x; f += 2) if (x % f === 0) return false;
  return true;
}

function checkNonNegative(issues: Issues, path: string, o: JsonObject, fields: string[]): void {
  for (const f of fields) {
    const n = num(o[f]);
    if (n !== undefined && n < 0) issues.add(pathKey(path, f), `${f} must be non-negative`);
  }
}

function checkConnectionPool(issues: Issues, path: string, v: unknown): void {
  const pool = rec(v);
  if (pool === undefined) return;
  const http = rec(pool['http']);
  const tcp = rec(pool['tcp']);
  if (http === undefined && tcp === undefined) issues.add(path, 'connection pool must have at least one of tcp and http');
  if (http !== undefined) {
    const hp = pathKey(path, 'http');
    checkNonNegative(issues, hp, http, ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'maxConcurrentStreams']);
    checkDuration(issues, pathKey(hp, 'idleTimeout'), http['idleTimeout']);
    if (http['h2UpgradePolicy'] === 'UPGRADE' && bool(http['useClientProtocol']) === true) {
      issues.add(hp, 'useClientProtocol must not be true when h2UpgradePolicy is UPGRADE');
    }
    const ka = rec(http['http2KeepAlive']);
    if (ka !== undefined) for (const f of ['interval', 'timeout']) checkDuration(issues, subPath(hp, `http2KeepAlive.${f}`), ka[f]);
  }
  if (tcp !== undefined) {
    const tcpPath = pathKey(path, 'tcp');
    checkNonNegative(issues, tcpPath, tcp, ['maxConnections']);
    for (const f of ['connectTimeout', 'maxConnectionDuration', 'idleTimeout']) checkDuration(issues, pathKey(tcpPath, f), tcp[f]);
    const ka = rec(tcp['tcpKeepalive']);
    if (ka !== undefined) {
      for (const f of ['time', 'interval']) checkDuration(issues, pathKey(pathKey(tcpPath, 'tcpKeepalive'), f), ka[f]);
    }
  }
}

function checkOutlierDetection(issues: Issues, path: string, v: unknown): void {
  const od = rec(v);
  if (od === undefined) return;
  if ((num(od['consecutiveErrors']) ?? 0) !== 0) {
    issues.warn(pathKey(path, 'consecutiveErrors'), 'outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead');
  }
  checkDuration(issues, pathKey(path, 'baseEjectionTime'), od['baseEjectionTime']);
  checkDuration(issues, pathKey(path, 'interval'), od['interval']);
  if (bool(od['splitExternalLocalOriginErrors']) !== true && (num(od['consecutiveLocalOriginFailures']) ?? 0) > 0) {
    issues.add(pathKey(path, 'consecutiveLocalOriginFailures'), 'consecutiveLocalOriginFailures requires splitExternalLocalOriginErrors: true');
  }
  for (const f of ['maxEjectionPercent', 'minHealthPercent']) {
    const n = num(od[f]);
    if (n !== undefined && (n < 0 || n > 100)) issues.add(pathKey(path, f), `percentage ${n} is not in range 0..100`);
  }
}

function checkClientTls(issues: Issues, path: string, v: unknown): void {
  const tls = rec(v);
  if (tls === undefined) return;
  const mode = str(tls['mode']);
  if (bool(tls['insecureSkipVerify']) === true) {
    // Istio's ValidateTLS: skipping verification contradicts the settings that configure it.
    // MUTUAL's credentialName also carries the client certificate, so only SIMPLE refuses it.
    const verifying = ['caCertificates', ...(mode === 'SIMPLE' ? ['credentialName'] : [])].filter((k) => str(tls[k]));
    if ((arr(tls['subjectAltNames'])?.length ?? 0) > 0) verifying.push('subjectAltNames');
    if ((mode === 'SIMPLE' || mode === 'MUTUAL') && verifying.length > 0) {
      issues.add(pathKey(path, 'insecureSkipVerify'), `cannot set ${verifying.join(', ')} when insecureSkipVerify is true`);
    }
  }
  const fileFields = ['clientCertificate', 'privateKey', 'caCertificates', 'caCrl'].filter((k) => str(tls[k]));
  if ((mode === 'SIMPLE' || mode === 'MUTUAL') && str(tls['credentialName'])) {
    if (fileFields.length > 0) issues.add(path, `cannot set ${fileFields.join(', ')} when credentialName is set`);
    return;
  }
  if (mode === 'MUTUAL') {
    if (!str(tls['clientCertificate'])) issues.add(pathKey(path, 'clientCertificate'), 'client certificate required for mutual tls');
    if (!str(tls['privateKey'])) issues.add(pathKey(path, 'privateKey'), 'private key required for mutual tls');
  }
}

function checkTunnel(issues: Issues, path: string, v: unknown): void {
  const t = rec(v);
  if (t === undefined) return;
  const protocol = str(t['protocol']);
  if (protocol !== undefined && protocol !== '' && protocol !== 'CONNECT' && protocol !== 'POST') {
    issues.add(pathKey(path, 'protocol'), 'tunnel protocol must be "CONNECT" or "POST"');
  }
  const host = str(t['targetHost']) ?? '';
  if (fqdnError(host) !== undefined && !isIP(host)) {
    issues.add(pathKey(path, 'targetHost'), `tunnel target host must be a valid FQDN or IP address (got ${JSON.stringify(host)})`);
  }
  issues.addIf(pathKey(path, 'targetPort'), portError(num(t['targetPort']) ?? 0));
}
