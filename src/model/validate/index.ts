/**
 * Validation of one ConfigObject, following Kubernetes' rules for the core kinds and Istio's
 * pkg/config/validation (plus its CRDs' strict field sets) for networking.istio.io kinds.
 * Pure: no I/O, never throws on bad input; every problem is a FieldError with a field path.
 */
import { DEFAULT_INPUT_LIMITS } from '../../config/limits';
import type { ConfigObject, FieldError } from '../objects';
import { Issues } from './common';
import { validateAuthorizationPolicy } from './authorizationpolicy';
import { validateDestinationRule } from './destinationrule';
import { validateEndpoints } from './endpoints';
import { validateEndpointSlice } from './endpointslice';
import { validateGateway } from './gateway';
import { validateIstioMetadata } from './istio-metadata';
import { validateMetadata } from './metadata';
import { validateNamespace } from './namespace';
import { validatePeerAuthentication } from './peerauthentication';
import { validatePod } from './pod';
import { validateRequestAuthentication } from './requestauthentication';
import { validateSecret } from './secret';
import { validateTelemetry } from './telemetry';
import { validateEnvoyFilter } from './envoyfilter';
import { validateProxyConfig } from './proxyconfig';
import { validateWorkloadGroup } from './workloadgroup';
import { validateWasmPlugin } from './wasmplugin';
import { validateGatewayApi } from './gatewayapi';
import { validateService } from './service';
import { validateServiceEntry } from './serviceentry';
import { validateSidecar } from './sidecar';
import { validateVirtualService } from './virtualservice';
import { validateWorkloadEntry } from './workloadentry';

export { SERVICE_NAME_LABEL } from './endpointslice';
export { parseDuration, durationError } from './duration';
export { re2Error } from './re2';

/** Errors refuse the object; warnings (where Istio warns) are reported and the object is kept. */
export interface Validation {
  errors: FieldError[];
  warnings: FieldError[];
}

/**
 * The errors only (the sources keep or leave out an object by these): at most `maxErrors`, then
 * one saying how many more there were (the default is the input limit's; the sources pass theirs).
 */
export function validateObject(obj: ConfigObject, maxErrors: number = DEFAULT_INPUT_LIMITS.maxErrorsPerObject): FieldError[] {
  return checkObject(obj, maxErrors).errors;
}

/** Errors and warnings (each bounded as above): what the admission webhook and `meshd validate` report. */
export function checkObject(obj: ConfigObject, maxErrors: number = DEFAULT_INPUT_LIMITS.maxErrorsPerObject): Validation {
  const issues = new Issues(maxErrors);
  validateMetadata(obj, issues);
  validateIstioMetadata(obj, issues);
  switch (obj.kind) {
    case 'Namespace':
      validateNamespace(obj, issues);
      break;
    case 'Service':
      validateService(obj, issues);
      break;
    case 'Endpoints':
      validateEndpoints(obj, issues);
      break;
    case 'Pod':
      validatePod(obj, issues);
      break;
    case 'EndpointSlice':
      validateEndpointSlice(obj, issues);
      break;
    case 'VirtualService':
      validateVirtualService(obj, issues);
      break;
    case 'DestinationRule':
      validateDestinationRule(obj, issues);
      break;
    case 'ServiceEntry':
      validateServiceEntry(obj, issues);
      break;
    case 'WorkloadEntry':
      validateWorkloadEntry(obj, issues);
      break;
    case 'Gateway':
      validateGateway(obj, issues);
      break;
    case 'Sidecar':
      validateSidecar(obj, issues);
      break;
    case 'Secret':
      validateSecret(obj, issues);
      break;
    case 'PeerAuthentication':
      validatePeerAuthentication(obj, issues);
      break;
    case 'AuthorizationPolicy':
      validateAuthorizationPolicy(obj, issues);
      break;
    case 'RequestAuthentication':
      validateRequestAuthentication(obj, issues);
      break;
    case 'Telemetry':
      validateTelemetry(obj, issues);
      break;
    case 'EnvoyFilter':
      validateEnvoyFilter(obj, issues);
      break;
    case 'ProxyConfig':
      validateProxyConfig(obj, issues);
      break;
    case 'WorkloadGroup':
      validateWorkloadGroup(obj, issues);
      break;
    case 'WasmPlugin':
      validateWasmPlugin(obj, issues);
      break;
    case 'GatewayClass':
    case 'KubernetesGateway':
    case 'HTTPRoute':
    case 'GRPCRoute':
    case 'TCPRoute':
    case 'TLSRoute':
    case 'ReferenceGrant':
    case 'BackendTLSPolicy':
      validateGatewayApi(obj, issues);
      break;
  }
  return { errors: issues.result(), warnings: issues.warningsResult() };
}
