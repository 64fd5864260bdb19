/**
 * Whether a pod gets a sidecar, as istiod's webhook configuration and its `injectRequired` decide
 * together:
 *
 * - the namespace selects: `istio-injection=enabled`, or `istio.io/rev=<our revision>` without an
 *   `istio-injection` label; `istio-injection` with any other value (`disabled`) wins over pods;
 * - in an unlabelled namespace a pod opts in with `sidecar.istio.io/inject: "true"` (label or
 *   annotation; the label wins when both are set) or with the label `istio.io/rev=<our revision>`;
 * - in a selected namespace a pod opts out with `sidecar.istio.io/inject: "false"`;
 * - hostNetwork pods, pods already injected (`sidecar.istio.io/status`) and pods in Kubernetes'
 *   own namespaces are never injected.
 *
 * When the namespace's labels are not known (offline `kube-inject`, or a webhook without a
 * namespace lookup) the namespace counts as selected: the API server only calls the webhook for
 * namespaces its selectors match.
 */

export type Labels = Readonly<Record<string, string>>;

export const INJECT_KEY = 'sidecar.istio.io/inject';
export const STATUS_ANNOTATION = 'sidecar.istio.io/status';
export const REVISION_LABEL = 'istio.io/rev';
export const NAMESPACE_INJECTION_LABEL = 'istio-injection';

/** Namespaces istiod never injects into (kube-system, kube-public, …). */
export const IGNORED_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage'];

export interface PodFacts {
  namespace: string;
  labels: Labels;
  annotations: Labels;
  hostNetwork: boolean;
}

export interface Decision {
  inject: boolean;
  /** Why, in words fit for a log line or a `kube-inject` warning. */
  reason: string;
}

/** YAML 1.1 booleans as Istio reads them (`y`, `yes`, `true`, `on`). */
function truthy(v: string): boolean {
  return ['y', 'yes', 'true', 'on'].includes(v.toLowerCase());
}

/** The pod's own choice: the label wins over the annotation; undefined when it made none. */
function podChoice(pod: PodFacts): string | undefined {
  const v = pod.labels[INJECT_KEY] ?? pod.annotations[INJECT_KEY];
  return v === undefined || v === '' ? undefined : v;
}

export function decideInjection(pod: PodFacts, namespaceLabels: Labels | undefined, revision: string): Decision {
  if (pod.hostNetwork) return { inject: false, reason: 'pods with hostNetwork are not injected' };
  if (IGNORED_NAMESPACES.includes(pod.namespace)) return { inject: false, reason: `namespace ${pod.namespace} is never injected` };
  if (pod.annotations[STATUS_ANNOTATION] !== undefined) return { inject: false, reason: `already injected (${STATUS_ANNOTATION} is set)` };
  const podRev = pod.labels[REVISION_LABEL];
  if (podRev !== undefined && podRev !== revision) return { inject: false, reason: `pod label ${REVISION_LABEL}=${podRev} names another revision (this is ${revision})` };
  const choice = podChoice(pod);
  const optedOut = choice !== undefined && !truthy(choice);
  if (namespaceLabels === undefined) {
    return optedOut ? { inject: false, reason: `pod sets ${INJECT_KEY}: ${JSON.stringify(choice)}` } : { inject: true, reason: 'injection requested' };
  }
  const nsInjection = namespaceLabels[NAMESPACE_INJECTION_LABEL];
  const nsRev = namespaceLabels[REVISION_LABEL];
  if (nsInjection !== undefined && nsInjection !== 'enabled') {
    return { inject: false, reason: `namespace ${pod.namespace} has ${NAMESPACE_INJECTION_LABEL}=${nsInjection}` };
  }
  if (nsInjection === undefined && nsRev !== undefined && nsRev !== revision) {
    return { inject: false, reason: `namespace ${pod.namespace} has ${REVISION_LABEL}=${nsRev} (this is ${revision})` };
  }
  const selected = nsInjection === 'enabled' || nsRev === revision;
  if (selected) {
    if (optedOut) return { inject: false, reason: `pod sets ${INJECT_KEY}: ${JSON.stringify(choice)}` };
    return { inject: true, reason: `namespace ${pod.namespace} has ${nsInjection === 'enabled' ? `${NAMESPACE_INJECTION_LABEL}=enabled` : `${REVISION_LABEL}=${revision}`}` };
  }
  if (choice !== undefined && truthy(choice)) return { inject: true, reason: `pod sets ${INJECT_KEY}: ${JSON.stringify(choice)}` };
  if (podRev === revision) return { inject: true, reason: `pod label ${REVISION_LABEL}=${revision}` };
  return { inject: false, reason: `namespace ${pod.namespace} does not enable injection and the pod does not ask for it` };
}
