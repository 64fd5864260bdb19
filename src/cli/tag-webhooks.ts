/**
 * Revision tags as istioctl builds them (istioctl/pkg/tag/generate.go, rendering the
 * istio-discovery chart's revision-tags template): a tag is a MutatingWebhookConfiguration
 * `istio-revision-tag-<tag>` labelled `istio.io/tag=<tag>` and `istio.io/rev=<rev>`, made from the
 * revision's own injector webhook (its clientConfig, caBundle and reinvocationPolicy) with the
 * selectors that route namespaces and pods labelled `istio.io/rev=<tag>` to that revision. The
 * `default` tag also takes over `istio-injection=enabled` namespaces and opted-in pods of unlabelled
 * namespaces, and owns the cluster-wide ValidatingWebhookConfiguration `istiod-default-validator`.
 *
 * Pure: no I/O. The commands in tag.ts read the cluster and apply what these return.
 */

export const TAG_LABEL = 'istio.io/tag';
export const REV_LABEL = 'istio.io/rev';
export const DEFAULT_REVISION = 'default';
export const DEFAULT_VALIDATOR = 'istiod-default-validator';
const INJECTION_WEBHOOK_SUFFIX = 'sidecar-injector.istio.io';
const OPERATOR_NAMESPACE = 'operator.istio.io';
/** istioctl's `util.NeverMatch`: what a deactivated default injector selects. */
export const NEVER_MATCH: LabelSelector = { matchLabels: { 'istio.io/deactivated': 'never-match' } };

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface ServiceReference {
  name: string;
  namespace: string;
  path?: string;
  port?: number;
}

export interface WebhookClientConfig {
  url?: string;
  service?: ServiceReference;
  caBundle?: string;
}

export interface RuleWithOperations {
  operations: string[];
  apiGroups: string[];
  apiVersions: string[];
  resources: string[];
}

export interface Webhook {
  name: string;
  clientConfig: WebhookClientConfig;
  rules?: RuleWithOperations[];
  failurePolicy?: string;
  reinvocationPolicy?: string;
  sideEffects?: string;
  admissionReviewVersions?: string[];
  namespaceSelector?: LabelSelector;
  objectSelector?: LabelSelector;
}

export interface ObjectMeta {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
}

export interface WebhookConfiguration {
  apiVersion: 'admissionregistration.k8s.io/v1';
  kind: 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration';
  metadata: ObjectMeta;
  webhooks: Webhook[];
}

export interface TagOptions {
  tag: string;
  /** The revision the tag points at (as its injector webhook's `istio.io/rev` label says). */
  revision: string;
  istioNamespace: string;
  /** `--webhook-name`: overrides the MutatingWebhookConfiguration's name. */
  webhookName?: string;
  /** `--auto-inject-namespaces`: the default tag also injects pods of namespaces without any label. */
  autoInjectNamespaces?: boolean;
}

/** The name istioctl gives a tag's MutatingWebhookConfiguration. */
export function tagWebhookName(tag: string, istioNamespace: string): string {
  return istioNamespace === 'istio-system' ? `istio-revision-tag-${tag}` : `istio-revision-tag-${tag}-${istioNamespace}`;
}

const inject = (op: 'In' | 'NotIn' | 'DoesNotExist', values?: string[]): LabelSelectorRequirement => ({
  key: 'sidecar.istio.io/inject',
  operator: op,
  ...(values ? { values } : {}),
});
const rev = (op: 'In' | 'DoesNotExist', values?: string[]): LabelSelectorRequirement => ({ key: REV_LABEL, operator: op, ...(values ? { values } : {}) });
const injection = (op: 'In' | 'DoesNotExist', values?: string[]): LabelSelectorRequirement => ({ key: 'istio-injection', operator: op, ...(values ? { values } : {}) });

/**
 * The chart's selectors for a tag (or a revision: its injector uses the same two with the
 * revision's name), namespace label preferred over the pod's, as istiod installs by default.
 */
export function tagSelectors(tag: string, autoInject = false): Array<{ prefix: string; namespaceSelector: LabelSelector; objectSelector: LabelSelector }> {
  const out = [
    // A namespace labelled istio.io/rev=<tag>; a pod may opt out.
    {
      prefix: 'rev.namespace.',
      namespaceSelector: { matchExpressions: [rev('In', [tag]), injection('DoesNotExist')] },
      objectSelector: { matchExpressions: [inject('NotIn', ['false'])] },
    },
    // An unlabelled namespace, and a pod labelled istio.io/rev=<tag>.
    {
      prefix: 'rev.object.',
      namespaceSelector: { matchExpressions: [rev('DoesNotExist'), injection('DoesNotExist')] },
      objectSelector: { matchExpressions: [inject('NotIn', ['false']), rev('In', [tag])] },
    },
  ];
  if (tag !== DEFAULT_REVISION) return out;
  out.push(
    { prefix: 'namespace.', namespaceSelector: { matchExpressions: [injection('In', ['enabled'])] }, objectSelector: { matchExpressions: [inject('NotIn', ['false'])] } },
    {
      prefix: 'object.',
      namespaceSelector: { matchExpressions: [injection('DoesNotExist'), rev('DoesNotExist')] },
      objectSelector: { matchExpressions: [inject('In', ['true']), rev('DoesNotExist')] },
    },
  );
  if (autoInject) {
    out.push({
      prefix: 'auto.',
      namespaceSelector: {
        matchExpressions: [
          injection('DoesNotExist'),
          rev('DoesNotExist'),
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage'] },
        ],
      },
      objectSelector: { matchExpressions: [inject('DoesNotExist'), rev('DoesNotExist')] },
    });
  }
  return out;
}

/** The revision a webhook configuration serves (its `istio.io/rev` label). */
export function webhookRevision(wh: { metadata: ObjectMeta }): string {
  const r = wh.metadata.labels?.[REV_LABEL];
  if (r === undefined) throw new Error('could not extract tag revision from webhook');
  return r;
}

interface Canonical {
  /** The revision's name as the chart renders it: '' for `default`. */
  revision: string;
  clientConfig: WebhookClientConfig;
  reinvocationPolicy: string;
  labels: Record<string, string>;
  annotations: Record<string, string> | undefined;
}

/** What a tag copies from the revision's injector webhook (istioctl's tagWebhookConfigFromCanonicalWebhook). */
function fromCanonical(wh: WebhookConfiguration, istioNamespace: string): Canonical {
  const r = webhookRevision(wh);
  const revision = r === DEFAULT_REVISION ? '' : r;
  const w = wh.webhooks.find((x) => x.name.endsWith(INJECTION_WEBHOOK_SUFFIX));
  if (!w) throw new Error(`could not find sidecar-injector webhook in canonical webhook ${JSON.stringify(wh.metadata.name)}`);
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(wh.metadata.labels ?? {})) if (k !== 'app') labels[k] = v;
  // Point at the revision's Service, where the revision's own injector points: its name, namespace
  // and port as installed (istioctl renders `istiod[-<rev>]` in the Istio namespace, the same thing
  // for a chart-installed revision), and the injection path as the canonical webhook has it.
  const clientConfig: WebhookClientConfig = w.clientConfig.url
    ? { url: w.clientConfig.url }
    : {
        service: {
          name: w.clientConfig.service?.name ?? (revision ? `istiod-${revision}` : 'istiod'),
          namespace: w.clientConfig.service?.namespace ?? istioNamespace,
          path: w.clientConfig.service?.path ?? '/inject',
          port: w.clientConfig.service?.port ?? 443,
        },
      };
  if (w.clientConfig.caBundle) clientConfig.caBundle = w.clientConfig.caBundle;
  return { revision, clientConfig, reinvocationPolicy: w.reinvocationPolicy ?? 'Never', labels, annotations: wh.metadata.annotations };
}

/** Chart labels, then the canonical webhook's; operator-owned labels are dropped (user-managed tag). */
function mergeLabels(base: Record<string, string>, canonical: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { ...base, ...canonical };
  for (const k of Object.keys(out)) if (k.includes(OPERATOR_NAMESPACE)) delete out[k];
  return out;
}

/** The tag's MutatingWebhookConfiguration, from the revision's injector webhook configuration. */
export function buildTagWebhook(canonical: WebhookConfiguration, o: TagOptions): WebhookConfiguration {
  const c = fromCanonical(canonical, o.istioNamespace);
  const labels = mergeLabels({ [TAG_LABEL]: o.tag, [REV_LABEL]: c.revision || DEFAULT_REVISION, app: 'sidecar-injector', 'app.kubernetes.io/name': 'istiod' }, c.labels);
  const webhooks: Webhook[] = tagSelectors(o.tag, o.autoInjectNamespaces).map((s) => ({
    name: `${s.prefix}${INJECTION_WEBHOOK_SUFFIX}`,
    clientConfig: structuredClone(c.clientConfig),
    sideEffects: 'None',
    rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
    failurePolicy: 'Fail',
    reinvocationPolicy: c.reinvocationPolicy,
    admissionReviewVersions: ['v1'],
    namespaceSelector: s.namespaceSelector,
    objectSelector: s.objectSelector,
  }));
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: o.webhookName || tagWebhookName(o.tag, o.istioNamespace), labels, ...(c.annotations ? { annotations: { ...c.annotations } } : {}) },
    webhooks,
  };
}

/**
 * The default tag's cluster-wide validator (the `base` chart's `istiod-default-validator`),
 * pointing at the tagged revision's Service on /validate. Its failurePolicy is kept from the one
 * in the cluster (meshd, as istiod, may have switched it to Fail once validation serves).
 */
export function buildDefaultValidator(canonical: WebhookConfiguration, o: TagOptions, existing?: WebhookConfiguration): WebhookConfiguration {
  const c = fromCanonical(canonical, o.istioNamespace);
  let clientConfig: WebhookClientConfig;
  if (c.clientConfig.url) {
    const u = new URL(c.clientConfig.url);
    u.pathname = '/validate';
    clientConfig = { url: u.toString() };
  } else {
    clientConfig = { service: { ...(c.clientConfig.service as ServiceReference), path: '/validate' } };
  }
  if (c.clientConfig.caBundle) clientConfig.caBundle = c.clientConfig.caBundle;
  const kept = existing?.webhooks.find((w) => w.name === 'validation.istio.io')?.failurePolicy;
  const labels = mergeLabels({ app: 'istiod', istio: 'istiod', [REV_LABEL]: c.revision || DEFAULT_REVISION, [TAG_LABEL]: DEFAULT_REVISION }, c.labels);
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: DEFAULT_VALIDATOR, labels },
    webhooks: [
      {
        name: 'validation.istio.io',
        clientConfig,
        rules: [
          {
            operations: ['CREATE', 'UPDATE'],
            apiGroups: ['security.istio.io', 'networking.istio.io', 'telemetry.istio.io', 'extensions.istio.io'],
            apiVersions: ['*'],
            resources: ['*'],
          },
        ],
        failurePolicy: kept ?? 'Ignore',
        sideEffects: 'None',
        admissionReviewVersions: ['v1beta1', 'v1'],
        objectSelector: { matchExpressions: [rev('DoesNotExist'), { key: 'admission.istio.io/ignore', operator: 'DoesNotExist' }] },
      },
    ],
  };
}

/** Kubernetes label-selector semantics (an empty or absent selector matches everything). */
export function selectorMatches(sel: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!sel) return true;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const r of sel.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const v = labels[r.key];
    const values = r.values ?? [];
    switch (r.operator) {
      case 'In':
        if (!has || !values.includes(v as string)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(v as string)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}
