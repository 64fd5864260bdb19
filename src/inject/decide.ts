/**
 * Whether a pod gets a sidecar from this injector, as istiod's webhook configuration selectors
 * (the Helm chart's `rev.namespace.`, `rev.object.`, `namespace.` and `object.` webhooks) and its
 * in-webhook `injectRequired` decide together. For this injector's names S (its revision, and
 * the revision tags that point at it):
 *
 * - `rev.namespace`: the namespace has `istio.io/rev` in S and no `istio-injection` label;
 * - `rev.object`: the namespace has neither label and the pod has the label `istio.io/rev` in S;
 * - only for the default revision (revision `default`, or the one the `default` tag names):
 *   `namespace`: the namespace has `istio-injection=enabled` (whatever its `istio.io/rev`), and
 *   `object`: the namespace has neither label, the pod has no `istio.io/rev` and the label
 *   `sidecar.istio.io/inject=true`;
 * - every one of them skips a pod labelled `sidecar.istio.io/inject=false`; so a namespace with
 *   `istio-injection=disabled`, or with `istio-injection=enabled` and `istio.io/rev=<rev>`, is
 *   left to the default revision or to none, as istiod;
 * - then `injectRequired`: the pod's `sidecar.istio.io/inject` (label, else annotation) that is
 *   set and not y/yes/true/on opts out; hostNetwork pods, pods already injected
 *   (`sidecar.istio.io/status`) and pods in Kubernetes' own namespaces are never injected.
 *
 * When the namespace's labels are not known (offline `kube-inject`, or a webhook without a
 * namespace lookup) the namespace counts as selected: the API server only calls the webhook for
 * namespaces its selectors match; a pod labelled for another revision is still refused.
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

/** Who this injector is: its revision, the tags that point at it, and whether it is the default revision. */
export interface InjectorRole {
  revision: string;
  /** Revision tags (`istio-revision-tag-<tag>`) that route to this revision. */
  tags?: readonly string[];
  /** Default: true for revision `default`. */
  isDefault?: boolean;
}

export function decideInjection(pod: PodFacts, namespaceLabels: Labels | undefined, role: string | InjectorRole): Decision {
  const r: InjectorRole = typeof role === 'string' ? { revision: role } : role;
  const revision = r.revision;
  const names = new Set([revision, ...(r.tags ?? [])]);
  const isDefault = r.isDefault ?? revision === 'default';
  const which = names.size > 1 ? `${revision} (tags ${[...names].filter((n) => n !== revision).join(', ')})` : revision;
  if (pod.hostNetwork) return { inject: false, reason: 'pods with hostNetwork are not injected' };
  if (IGNORED_NAMESPACES.includes(pod.namespace)) return { inject: false, reason: `namespace ${pod.namespace} is never injected` };
  if (pod.annotations[STATUS_ANNOTATION] !== undefined) return { inject: false, reason: `already injected (${STATUS_ANNOTATION} is set)` };
  const podRev = pod.labels[REVISION_LABEL];
  const choice = podChoice(pod);
  const optedOut = choice !== undefined && !truthy(choice);
  const optOut: Decision = { inject: false, reason: `pod sets ${INJECT_KEY}: ${JSON.stringify(choice)}` };
  if (namespaceLabels === undefined) {
    if (podRev !== undefined && !names.has(podRev)) return { inject: false, reason: `pod label ${REVISION_LABEL}=${podRev} names another revision (this is ${which})` };
    return optedOut ? optOut : { inject: true, reason: 'injection requested' };
  }
  // The webhook configurations' selectors (objectSelector reads labels only).
  const podLabel = pod.labels[INJECT_KEY];
  const nsInjection = namespaceLabels[NAMESPACE_INJECTION_LABEL];
  const nsRev = namespaceLabels[REVISION_LABEL];
  let selected: string | undefined;
  if (podLabel === 'false') return { inject: false, reason: `pod label ${INJECT_KEY}=false` };
  if (nsRev !== undefined && names.has(nsRev) && nsInjection === undefined) selected = `namespace ${pod.namespace} has ${REVISION_LABEL}=${nsRev}`;
  else if (nsRev === undefined && nsInjection === undefined && podRev !== undefined && names.has(podRev)) selected = `pod label ${REVISION_LABEL}=${podRev}`;
  else if (isDefault && nsInjection === 'enabled') selected = `namespace ${pod.namespace} has ${NAMESPACE_INJECTION_LABEL}=enabled`;
  else if (isDefault && nsInjection === undefined && nsRev === undefined && podRev === undefined && podLabel === 'true') selected = `pod label ${INJECT_KEY}=true`;
  if (selected === undefined) {
    if (nsInjection !== undefined && nsInjection !== 'enabled') return { inject: false, reason: `namespace ${pod.namespace} has ${NAMESPACE_INJECTION_LABEL}=${nsInjection}` };
    if (nsInjection === 'enabled')
      return { inject: false, reason: `namespace ${pod.namespace} has ${NAMESPACE_INJECTION_LABEL}=enabled, which selects the default revision only (this is ${which})` };
    if (nsRev !== undefined) return { inject: false, reason: `namespace ${pod.namespace} has ${REVISION_LABEL}=${nsRev} (this is ${which})` };
    if (podRev !== undefined) return { inject: false, reason: `pod label ${REVISION_LABEL}=${podRev} names another revision (this is ${which})` };
    return { inject: false, reason: `namespace ${pod.namespace} does not enable injection and the pod does not ask for it` };
  }
  // istiod's injectRequired, with its default policy `enabled`.
  if (optedOut) return optOut;
  return { inject: true, reason: selected };
}
