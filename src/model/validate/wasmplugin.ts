/**
 * WasmPlugin (extensions.istio.io/v1alpha1), after istiod's ValidateWasmPlugin and its CRD's field
 * set: one of selector / targetRef(s) (the policy kinds' rule), a url with a scheme istiod fetches
 * (oci, file, http, https; none means an OCI reference), a sha256 of 64 lowercase hex digits, an
 * imagePullSecret and pluginName within the CRD's lengths, vmConfig.env entries named and unique,
 * and match ports given by number (port names are not supported in WasmPlugin).
 */
import type { ConfigObject } from '../objects';
import { WASM_FAIL_STRATEGIES, WASM_PHASES, WASM_PLUGIN_TYPES, WASM_PULL_POLICIES } from '../objects-wasm';
import { checkPolicyTargets, targetRefSchema } from './authorizationpolicy';
import { Issues, arr, pathIdx, pathKey, rec, str } from './common';
import { any, arrayOf, checkSchema, closed, i32, mapOf, oneOf, str as strSchema, u32 } from './schema';

export const wasmPluginSchema = closed({
  selector: closed({ matchLabels: mapOf(strSchema) }),
  targetRef: targetRefSchema,
  targetRefs: arrayOf(targetRefSchema),
  url: strSchema,
  sha256: strSchema,
  imagePullPolicy: oneOf(...WASM_PULL_POLICIES),
  imagePullSecret: strSchema,
  pluginConfig: mapOf(any),
  pluginName: strSchema,
  failStrategy: oneOf(...WASM_FAIL_STRATEGIES),
  phase: oneOf(...WASM_PHASES),
  priority: i32,
  vmConfig: closed({ env: arrayOf(closed({ name: strSchema, valueFrom: oneOf('INLINE', 'HOST'), value: strSchema })) }),
  match: arrayOf(closed({ mode: oneOf('UNDEFINED', 'CLIENT', 'SERVER', 'CLIENT_AND_SERVER'), ports: arrayOf(closed({ number: u32, name: strSchema })) })),
  type: oneOf(...WASM_PLUGIN_TYPES),
});

const SCHEMES = new Set(['oci', 'file', 'http', 'https']);
const SHA256 = /^[a-f0-9]{64}$/;
/** The CRD's maxLength of imagePullSecret (a Secret name) and of pluginName. */
const MAX_SECRET = 253;
const MAX_PLUGIN_NAME = 256;

/** `scheme` of a `scheme://…` url, '' for a bare OCI reference (istiod reads those as oci://). */
export function wasmUrlScheme(url: string): string {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(url);
  return m ? (m[1] ?? '').toLowerCase() : '';
}

function checkUrl(issues: Issues, url: string | undefined): void {
  if (!url) return issues.add('spec.url', 'url field needs to be set');
  if (/\s/.test(url)) return issues.add('spec.url', `failed to parse url: invalid character in ${JSON.stringify(url)}`);
  const scheme = wasmUrlScheme(url);
  if (scheme !== '' && !SCHEMES.has(scheme)) return issues.add('spec.url', `url contains unsupported scheme: ${scheme}`);
  if (scheme === 'file' && url.length <= 'file://'.length) issues.add('spec.url', 'failed to parse url: a file:// url needs a path');
  if (scheme !== '' && scheme !== 'file' && url.slice(scheme.length + 3).length === 0) issues.add('spec.url', `failed to parse url: a ${scheme}:// url needs a host`);
}

export function validateWasmPlugin(obj: ConfigObject, issues: Issues): void {
  const raw = obj.body['spec'];
  if (raw === undefined || raw === null) return issues.add('spec.url', 'url field needs to be set');
  checkSchema(raw, wasmPluginSchema, 'spec', issues);
  const spec = rec(raw);
  if (spec === undefined) return;
  checkPolicyTargets(issues, spec);
  checkUrl(issues, str(spec['url']));
  const sha = str(spec['sha256']);
  if (sha) {
    if (sha.length !== 64) issues.add('spec.sha256', 'sha256 field must be 64 characters long');
    else if (!SHA256.test(sha)) issues.add('spec.sha256', 'sha256 field must match [a-f0-9]{64} pattern');
  }
  const secret = str(spec['imagePullSecret']);
  if (secret && secret.length > MAX_SECRET) issues.add('spec.imagePullSecret', `imagePullSecret field must be less than ${MAX_SECRET} characters long`);
  const pluginName = str(spec['pluginName']);
  if (pluginName && pluginName.length > MAX_PLUGIN_NAME) issues.add('spec.pluginName', 'pluginName field must be less than 255 characters long');
  const seen = new Set<string>();
  (arr(rec(spec['vmConfig'])?.['env']) ?? []).forEach((e, i) => {
    const p = pathIdx('spec.vmConfig.env', i);
    const name = str(rec(e)?.['name']);
    if (!name) return issues.add(pathKey(p, 'name'), 'spec.vmConfig.env invalid');
    if (seen.has(name)) issues.add(pathKey(p, 'name'), `duplicate env ${JSON.stringify(name)}`);
    seen.add(name);
    if (rec(e)?.['valueFrom'] === 'HOST' && rec(e)?.['value'] !== undefined) issues.add(pathKey(p, 'value'), 'value must not be set when valueFrom is HOST');
  });
  (arr(spec['match']) ?? []).forEach((m, i) => {
    (arr(rec(m)?.['ports']) ?? []).forEach((port, j) => {
      const p = pathIdx(pathKey(pathIdx('spec.match', i), 'ports'), j);
      if (str(rec(port)?.['name'])) issues.add(pathKey(p, 'name'), `spec.Match[${i}].Ports[${j}] is not supported in WasmPlugin`);
    });
  });
}
