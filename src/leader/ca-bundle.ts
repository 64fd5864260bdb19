/**
 * A leader task (one replica per revision): keeps `caBundle` of this revision's webhook
 * configurations equal to the mesh CA's root bundle, which every replica's webhook serving
 * certificate chains to, as istiod's injection patcher (pkg/webhooks/webhookpatch.go) and
 * validation controller do for their revision:
 *
 * - the MutatingWebhookConfigurations labelled `istio.io/rev=<rev>` (its own
 *   `istio-sidecar-injector[-<rev>]`, and the tag webhooks `istio-revision-tag-<tag>` that route
 *   to it): their webhooks named `…sidecar-injector.istio.io`;
 * - the ValidatingWebhookConfigurations labelled `istio.io/rev=<rev>` (its own
 *   `istio-validator[-<rev>]-<ns>`, and `istiod-default-validator` when the default tag names it):
 *   every webhook.
 *
 * A configuration labelled for another revision is never touched. This revision's own names (and
 * `istiod-default-validator` while it is the default revision) are also patched when they carry
 * no `istio.io/rev` label at all, as unrevisioned installs apply them. It checks at start and then
 * periodically, so a configuration applied later (or reset by a `kubectl apply`) is patched too.
 */
import { AdmissionregistrationV1Api, type KubeConfig, type V1MutatingWebhookConfiguration, type V1ValidatingWebhookConfiguration } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { DEFAULT_VALIDATOR_WEBHOOK_CONFIG, REVISION_LABEL, revisionNames } from '../config/revision';
import { statusOf } from './lease';
import { type LeaderTask, abortableDelay, unlessAborted } from './tasks';

export const INJECTOR_WEBHOOK_CONFIG = 'istio-sidecar-injector';
export const VALIDATOR_WEBHOOK_CONFIG = 'istio-validator-istio-system';
/** istiod patches only the injector's webhooks whose name ends so (istiod's `webhookName`). */
export const INJECTOR_WEBHOOK_SUFFIX = 'sidecar-injector.istio.io';

export interface CaBundlePatcherOptions {
  kubeConfig: KubeConfig;
  /** The bundle to trust (the CA's roots); undefined until known (the task waits). */
  caPem: () => string | undefined;
  log: Logger;
  /** meshd's revision; default `default`. */
  revision?: string;
  /** meshd's namespace (the validator's name ends with it); default istio-system. */
  namespace?: string;
  /** Whether this revision is the mesh's default now (then an unlabelled `istiod-default-validator` is its too). */
  isDefault?: () => boolean;
  /** How often to re-check. Default 30 s. */
  intervalMs?: number;
}

type Api = Pick<
  AdmissionregistrationV1Api,
  'listMutatingWebhookConfiguration' | 'replaceMutatingWebhookConfiguration' | 'listValidatingWebhookConfiguration' | 'replaceValidatingWebhookConfiguration'
>;

interface Config {
  metadata?: { name?: string; labels?: Record<string, string> };
  webhooks?: Array<{ name: string; clientConfig: { caBundle?: string } }>;
}

export class CaBundlePatcher implements LeaderTask {
  readonly name = 'webhook caBundle';

  constructor(private readonly opts: CaBundlePatcherOptions) {}

  async run(signal: AbortSignal): Promise<void> {
    const api: Api = this.opts.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    while (!signal.aborted) {
      const pem = this.opts.caPem();
      if (pem === undefined) {
        await abortableDelay(500, signal);
        continue;
      }
      // A round still in flight when leadership ends is left to finish on its own: stepping down
      // (and releasing the Lease) does not wait for the API server.
      await unlessAborted(this.round(api, Buffer.from(pem).toString('base64'), signal), signal);
      await abortableDelay(this.opts.intervalMs ?? 30_000, signal);
    }
  }

  /** The configurations of `items` that are this revision's, by label (or by name when unlabelled). */
  private ours<T extends Config>(items: readonly T[], ownNames: readonly string[]): T[] {
    const rev = revisionNames(this.opts.revision, this.opts.namespace ?? 'istio-system').revision;
    return items.filter((c) => {
      const label = c.metadata?.labels?.[REVISION_LABEL];
      return label === undefined ? ownNames.includes(c.metadata?.name ?? '') : label === rev;
    });
  }

  private async round(api: Api, bundle: string, signal: AbortSignal): Promise<void> {
    const names = revisionNames(this.opts.revision, this.opts.namespace ?? 'istio-system');
    const validators = [names.validatorWebhookConfig, ...((this.opts.isDefault?.() ?? names.isDefaultName) ? [DEFAULT_VALIDATOR_WEBHOOK_CONFIG] : [])];
    // Everything is listed (labelled or not): the unlabelled own names are filtered here, and the
    // lists are small (a few configurations per revision and tag).
    let mutating: V1MutatingWebhookConfiguration[];
    let validating: V1ValidatingWebhookConfiguration[];
    try {
      mutating = (await api.listMutatingWebhookConfiguration()).items;
      validating = (await api.listValidatingWebhookConfiguration()).items;
    } catch (err) {
      this.opts.log.warn({ status: statusOf(err), err: statusOf(err) === undefined ? String(err) : undefined }, 'could not list webhook configurations');
      return;
    }
    for (const c of this.ours(mutating, [names.injectorWebhookConfig])) {
      const name = c.metadata?.name ?? '';
      await this.patch(
        'MutatingWebhookConfiguration',
        name,
        bundle,
        signal,
        c,
        (w) => w.name.endsWith(INJECTOR_WEBHOOK_SUFFIX),
        async () => {
          await api.replaceMutatingWebhookConfiguration({ name, body: c });
        },
      );
    }
    for (const c of this.ours(validating, validators)) {
      const name = c.metadata?.name ?? '';
      await this.patch(
        'ValidatingWebhookConfiguration',
        name,
        bundle,
        signal,
        c,
        () => true,
        async () => {
          await api.replaceValidatingWebhookConfiguration({ name, body: c });
        },
      );
    }
  }

  private async patch(
    kind: string,
    name: string,
    bundle: string,
    signal: AbortSignal,
    config: Config,
    mine: (w: { name: string }) => boolean,
    save: () => Promise<void>,
  ): Promise<void> {
    try {
      if (signal.aborted) return;
      const stale = (config.webhooks ?? []).filter((w) => mine(w) && w.clientConfig.caBundle !== bundle);
      // No longer leading: whoever leads now writes it.
      if (stale.length === 0 || signal.aborted) return;
      for (const w of stale) w.clientConfig.caBundle = bundle;
      await save();
      this.opts.log.info({ kind, name, webhooks: stale.length, revision: this.opts.revision ?? 'default' }, 'patched webhook caBundle');
    } catch (err) {
      // Deleted meanwhile (404), or changed meanwhile (409): the next round tries again.
      const status = statusOf(err);
      if (status === 404 || status === 409) return;
      this.opts.log.warn({ kind, name, status, err: status === undefined ? String(err) : undefined }, 'could not patch webhook caBundle');
    }
  }
}
