/**
 * The names istiod gives a control-plane revision (istiod's `REVISION`, the Helm chart's
 * `revision` value): the Service, the webhook configurations, the MeshConfig ConfigMap and the
 * per-revision Lease names, plus the `istio.io/rev` label on what meshd writes. Revision
 * `default` keeps the unrevisioned names, so an install without `--revision` is unchanged.
 */

export const DEFAULT_REVISION = 'default';
/** The label naming the revision of a namespace, pod or control-plane object. */
export const REVISION_LABEL = 'istio.io/rev';
/** The label of a revision tag's webhook configurations (`istio-revision-tag-<tag>`). */
export const TAG_LABEL = 'istio.io/tag';
/** The webhook configuration of tag `<tag>`; the `default` tag's carries the default revision. */
export const TAG_WEBHOOK_PREFIX = 'istio-revision-tag-';
/** The cluster-wide validating webhook the default tag owns (istioctl's `istiod-default-validator`). */
export const DEFAULT_VALIDATOR_WEBHOOK_CONFIG = 'istiod-default-validator';

/** A revision must be a DNS-1123 label: it becomes part of Service and object names. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export interface RevisionNames {
  revision: string;
  /** True for revision `default` (unrevisioned names). */
  isDefaultName: boolean;
  /** Service `istiod` or `istiod-<rev>`. */
  service: string;
  /** The discovery address the injector writes into pods: `istiod-<rev>.<ns>.svc:15012`. */
  discoveryAddress: string;
  /** MutatingWebhookConfiguration `istio-sidecar-injector[-<rev>]`. */
  injectorWebhookConfig: string;
  /** ValidatingWebhookConfiguration `istio-validator[-<rev>]-<ns>`. */
  validatorWebhookConfig: string;
  /** MeshConfig ConfigMap `istio[-<rev>]`. */
  meshConfigMap: string;
}

/** A clear error naming the flag when `revision` cannot be a revision name. */
export function checkRevision(revision: string): string {
  if (revision.length > 63 || !DNS_LABEL.test(revision)) {
    throw new Error(`--revision: ${JSON.stringify(revision)} is not a revision name (a DNS label: lower-case letters, digits and inner '-', at most 63 characters)`);
  }
  return revision;
}

export function revisionNames(revision: string | undefined, namespace: string): RevisionNames {
  const rev = revision && revision !== '' ? revision : DEFAULT_REVISION;
  const isDefaultName = rev === DEFAULT_REVISION;
  const suffix = isDefaultName ? '' : `-${rev}`;
  const service = `istiod${suffix}`;
  return {
    revision: rev,
    isDefaultName,
    service,
    discoveryAddress: `${service}.${namespace}.svc:15012`,
    injectorWebhookConfig: `istio-sidecar-injector${suffix}`,
    validatorWebhookConfig: `istio-validator${suffix}-${namespace}`,
    meshConfigMap: `istio${suffix}`,
  };
}

/**
 * istiod's per-revision elections (`NewPerRevisionLeaderElection`) append the revision to the
 * election ID, also for `default`; its shared ones keep the bare ID.
 */
export function perRevisionLeaseName(electionId: string, revision: string): string {
  return `${electionId}-${revision}`;
}

/**
 * istiod's `LabelsInRevision`: Istio config without `istio.io/rev` is everyone's; labelled, it is
 * only its revision's (a literal comparison: tags are not resolved, as in istiod).
 */
export function labelsInRevision(labels: Readonly<Record<string, string>>, revision: string): boolean {
  const rev = labels[REVISION_LABEL];
  return rev === undefined || rev === revision;
}

/** Istio's own config kinds (networking, security, telemetry, extensions): the ones istiod filters by revision. */
export function isIstioConfig(apiVersion: string): boolean {
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  return group.endsWith('.istio.io');
}

/** The objects this revision reads: every object but Istio config labelled for another revision (the same array when none is). */
export function objectsOfRevision<T extends { apiVersion: string; metadata: { labels: Readonly<Record<string, string>> } }>(objects: readonly T[], revision: string): readonly T[] {
  const foreign = (o: T): boolean => isIstioConfig(o.apiVersion) && !labelsInRevision(o.metadata.labels, revision);
  return objects.some(foreign) ? objects.filter((o) => !foreign(o)) : objects;
}
