/** istiod's Gateway API constants: class, controller, API paths. */

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
/** The GatewayClass istiod creates and serves. */
export const ISTIO_GATEWAY_CLASS = 'istio';
/** spec.controllerName of the classes istiod handles (and of its route parent statuses). */
export const ISTIO_GATEWAY_CONTROLLER = 'istio.io/gateway-controller';
/** The field manager istiod's deployment controller applies with. */
export const GATEWAY_FIELD_MANAGER = 'istio.io/gateway-controller';
/** The label every generated object and pod carries (and the Deployment's selector). */
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
export const GATEWAY_CLASS_LABEL = 'gateway.networking.k8s.io/gateway-class-name';
/** istiod's older selector label, still set on the pods. */
export const ISTIO_GATEWAY_NAME_LABEL = 'istio.io/gateway-name';
export const GATEWAY_MANAGED_LABEL = 'gateway.istio.io/managed';
export const GATEWAY_MANAGED_VALUE = 'istio.io-gateway-controller';
export const SERVICE_TYPE_ANNOTATION = 'networking.istio.io/service-type';
export const NAME_OVERRIDE_ANNOTATION = 'gateway.istio.io/name-override';
export const SERVICE_ACCOUNT_ANNOTATION = 'gateway.istio.io/service-account';
/** Annotations the template never copies onto the generated objects. */
export const OMITTED_ANNOTATIONS: readonly string[] = [
  'kubectl.kubernetes.io/last-applied-configuration',
  NAME_OVERRIDE_ANNOTATION,
  SERVICE_ACCOUNT_ANNOTATION,
  'gateway.istio.io/controller-version',
];

/** Served version and plural of each kind meshd writes status for. */
export const STATUS_KINDS: Readonly<Record<string, { version: string; plural: string; namespaced: boolean }>> = {
  GatewayClass: { version: 'v1', plural: 'gatewayclasses', namespaced: false },
  Gateway: { version: 'v1', plural: 'gateways', namespaced: true },
  HTTPRoute: { version: 'v1', plural: 'httproutes', namespaced: true },
  GRPCRoute: { version: 'v1', plural: 'grpcroutes', namespaced: true },
  TCPRoute: { version: 'v1alpha2', plural: 'tcproutes', namespaced: true },
  TLSRoute: { version: 'v1alpha2', plural: 'tlsroutes', namespaced: true },
  UDPRoute: { version: 'v1alpha2', plural: 'udproutes', namespaced: true },
  BackendTLSPolicy: { version: 'v1', plural: 'backendtlspolicies', namespaced: true },
};

/** `/apis/gateway.networking.k8s.io/<version>/[namespaces/<ns>/]<plural>[/<name>]`, or undefined for a kind meshd does not write. */
export function gatewayApiPath(kind: string, namespace: string | undefined, name?: string): string | undefined {
  const k = STATUS_KINDS[kind];
  if (!k) return undefined;
  const ns = k.namespaced ? `/namespaces/${encodeURIComponent(namespace ?? 'default')}` : '';
  return `/apis/${GATEWAY_API_GROUP}/${k.version}${ns}/${k.plural}${name !== undefined ? `/${encodeURIComponent(name)}` : ''}`;
}

/** The kind's collection across all namespaces, or undefined for a kind meshd does not write. */
export function gatewayApiCollectionPath(kind: string): string | undefined {
  const k = STATUS_KINDS[kind];
  return k ? `/apis/${GATEWAY_API_GROUP}/${k.version}/${k.plural}` : undefined;
}

/** istiod's names for an automated deployment: `<gateway>-istio`, unless an annotation overrides them. */
export function deploymentNames(gatewayName: string, annotations: Readonly<Record<string, string>>): { deployment: string; serviceAccount: string } {
  const deployment = annotations[NAME_OVERRIDE_ANNOTATION] || `${gatewayName}-istio`;
  return { deployment, serviceAccount: annotations[SERVICE_ACCOUNT_ANNOTATION] || deployment };
}
