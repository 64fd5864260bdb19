/**
 * A Gateway server's TLS settings, after Istio's validateTLSOptions: what each mode needs and
 * must not have, protocol versions and cipher suites. Certificate fields are file paths or
 * secret names, never secret material, so they may appear in messages.
 */
import { Issues, arr, pathIdx, pathKey, recordItems, str, stringItems, type JsonObject } from './common';
import { TLS_VERSIONS, isValidCipherSuite } from './gateway-schema';

const MAX_CREDENTIAL_NAMES = 2;

export function checkServerTls(issues: Issues, path: string, tls: JsonObject): void {
  const mode = str(tls['mode']) ?? 'PASSTHROUGH';
  const set = (field: string): boolean => (str(tls[field]) ?? '') !== '';
  const credentialNames = arr(tls['credentialNames'])?.length ?? 0;
  const tlsCertificates = recordItems(tls['tlsCertificates']);

  checkVersions(issues, path, tls);
  for (const [j, cs] of stringItems(tls['cipherSuites'])) {
    if (!isValidCipherSuite(cs)) {
      issues.add(pathIdx(pathKey(path, 'cipherSuites'), j), `unknown cipher suite ${JSON.stringify(cs)} (use a BoringSSL name such as ECDHE-RSA-AES128-GCM-SHA256)`);
    }
  }
  if (set('credentialName') && credentialNames > 0) {
    issues.add(pathKey(path, 'credentialNames'), 'only one of credentialName or credentialNames can be set');
  }
  if (credentialNames > MAX_CREDENTIAL_NAMES) {
    issues.add(pathKey(path, 'credentialNames'), `at most ${MAX_CREDENTIAL_NAMES} credentialNames can be set (one RSA and one ECDSA certificate; got ${credentialNames})`);
  }

  if (mode === 'ISTIO_MUTUAL') {
    // the gateway's own Istio certificate is used: no other certificate may be named
    const named: Array<[string, string, boolean]> = [
      ['serverCertificate', 'server certificate', set('serverCertificate')],
      ['privateKey', 'private key', set('privateKey')],
      ['caCertificates', 'CA bundle', set('caCertificates')],
      ['credentialName', 'credentialName', set('credentialName')],
      ['credentialNames', 'credentialNames', credentialNames > 0],
      ['tlsCertificates', 'tlsCertificates', tlsCertificates.length > 0],
    ];
    for (const [field, what, present] of named) {
      if (present) issues.add(pathKey(path, field), `ISTIO_MUTUAL TLS cannot have associated ${what}`);
    }
    return;
  }

  const mutual = mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL';
  // with a credential, the certificate, key and CA bundle come from the secret
  if ((mode === 'SIMPLE' || mutual) && (set('credentialName') || credentialNames > 0)) return;
  if (mode === 'SIMPLE' || mutual) {
    const how = 'set credentialName, or serverCertificate and privateKey';
    if (tlsCertificates.length > 0) {
      for (const [j, cert] of tlsCertificates) {
        const p = pathIdx(pathKey(path, 'tlsCertificates'), j);
        if ((str(cert['serverCertificate']) ?? '') === '') issues.add(pathKey(p, 'serverCertificate'), `${mode} TLS requires a server certificate`);
        if ((str(cert['privateKey']) ?? '') === '') issues.add(pathKey(p, 'privateKey'), `${mode} TLS requires a private key`);
      }
    } else {
      if (!set('serverCertificate')) issues.add(pathKey(path, 'serverCertificate'), `${mode} TLS requires a server certificate (${how})`);
      if (!set('privateKey')) issues.add(pathKey(path, 'privateKey'), `${mode} TLS requires a private key (${how})`);
    }
    const ca = set('caCertificates') || tlsCertificates.some(([, c]) => (str(c['caCertificates']) ?? '') !== '');
    if (mutual && !ca) issues.add(pathKey(path, 'caCertificates'), `${mode} TLS requires a client CA bundle (set credentialName, or caCertificates)`);
  }
  if (set('caCrl')) {
    if (set('credentialName')) {
      issues.add(pathKey(path, 'caCrl'), 'CRL is not supported with credentialName. CRL has to be specified in the credential');
    }
    if (mode === 'SIMPLE') issues.add(pathKey(path, 'caCrl'), 'CRL is not supported with SIMPLE TLS');
  }
}

/** minProtocolVersion must not be above maxProtocolVersion (TLS_AUTO leaves either end open). */
function checkVersions(issues: Issues, path: string, tls: JsonObject): void {
  const min = str(tls['minProtocolVersion']);
  const max = str(tls['maxProtocolVersion']);
  if (min === undefined || max === undefined || min === 'TLS_AUTO' || max === 'TLS_AUTO') return;
  const order: readonly string[] = TLS_VERSIONS;
  const lo = order.indexOf(min);
  const hi = order.indexOf(max);
  if (lo >= 0 && hi >= 0 && lo > hi) {
    issues.add(pathKey(path, 'maxProtocolVersion'), `maxProtocolVersion ${max} is lower than minProtocolVersion ${min}`);
  }
}
