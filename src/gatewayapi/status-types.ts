/**
 * Gateway API status as meshd computes it from config, before the status writer adds
 * `lastTransitionTime` and `observedGeneration` and compares it with what the API server holds.
 */

/** One condition, without lastTransitionTime and observedGeneration (the writer adds both). */
export interface GatewayApiCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

/** The status meshd wants one Gateway API object to have. */
export interface GatewayApiStatus {
  /** API group: `gateway.networking.k8s.io`. */
  group: string;
  /** Kind as Kubernetes spells it: GatewayClass, Gateway, HTTPRoute, GRPCRoute, TCPRoute, TLSRoute. */
  kind: string;
  /** Absent for cluster-scoped kinds (GatewayClass). */
  namespace?: string;
  name: string;
  /**
   * The object's whole `status` as the Gateway API defines it for the kind, with every
   * condition shaped as GatewayApiCondition (GatewayClass/Gateway: `conditions`, Gateway also
   * `addresses` and `listeners[].{name,supportedKinds,attachedRoutes,conditions}`; routes:
   * `parents[].{parentRef,controllerName,conditions}`).
   */
  status: Record<string, unknown>;
}

/** Computes the wanted status of every Gateway API object of class `istio` in the current config. */
export type GatewayApiStatusSource = () => readonly GatewayApiStatus[];
