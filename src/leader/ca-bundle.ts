/**
 * A leader-only task: keeps `caBundle` of meshd's webhook configurations (istiod's names:
 * MutatingWebhookConfiguration `istio-sidecar-injector`, ValidatingWebhookConfiguration
 * `istio-validator-istio-system`) equal to the mesh CA's root bundle, which every replica's webhook
 * serving certificate chains to, as istiod's webhook controller does.
 * It checks at start and then periodically, so a configuration applied later (or reset by a
 * `kubectl apply`) is patched too. A configuration that does not exist is skipped quietly.
 */
import { AdmissionregistrationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { statusOf } from './lease';
import { type LeaderTask, abortableDelay, unlessAborted } from './tasks';

export const INJECTOR_WEBHOOK_CONFIG = 'istio-sidecar-injector';
export const VALIDATOR_WEBHOOK_CONFIG = 'istio-validator-istio-system';

export interface CaBundlePatcherOptions {
  kubeConfig: KubeConfig;
  /** The bundle to trust (the CA's roots); undefined until known (the task waits). */
  caPem: () => string | undefined;
  log: Logger;
  /** How often to re-check. Default 30 s. */
  intervalMs?: number;
}

type Api = Pick<
  AdmissionregistrationV1Api,
  'readMutatingWebhookConfiguration' | 'replaceMutatingWebhookConfiguration' | 'readValidatingWebhookConfiguration' | 'replaceValidatingWebhookConfiguration'
>;

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

  private async round(api: Api, bundle: string, signal: AbortSignal): Promise<void> {
    await this.patch('MutatingWebhookConfiguration', INJECTOR_WEBHOOK_CONFIG, bundle, signal, async () => {
      const c = await api.readMutatingWebhookConfiguration({ name: INJECTOR_WEBHOOK_CONFIG });
      return { webhooks: c.webhooks ?? [], save: async () => void (await api.replaceMutatingWebhookConfiguration({ name: INJECTOR_WEBHOOK_CONFIG, body: c })) };
    });
    await this.patch('ValidatingWebhookConfiguration', VALIDATOR_WEBHOOK_CONFIG, bundle, signal, async () => {
      const c = await api.readValidatingWebhookConfiguration({ name: VALIDATOR_WEBHOOK_CONFIG });
      return { webhooks: c.webhooks ?? [], save: async () => void (await api.replaceValidatingWebhookConfiguration({ name: VALIDATOR_WEBHOOK_CONFIG, body: c })) };
    });
  }

  private async patch(
    kind: string,
    name: string,
    bundle: string,
    signal: AbortSignal,
    load: () => Promise<{ webhooks: Array<{ clientConfig: { caBundle?: string } }>; save: () => Promise<void> }>,
  ): Promise<void> {
    try {
      if (signal.aborted) return;
      const { webhooks, save } = await load();
      const stale = webhooks.filter((w) => w.clientConfig.caBundle !== bundle);
      // No longer leading: whoever leads now writes it.
      if (stale.length === 0 || signal.aborted) return;
      for (const w of stale) w.clientConfig.caBundle = bundle;
      await save();
      this.opts.log.info({ kind, name, webhooks: stale.length }, 'patched webhook caBundle');
    } catch (err) {
      // Not installed (404), or changed meanwhile (409): the next round tries again.
      const status = statusOf(err);
      if (status === 404 || status === 409) return;
      this.opts.log.warn({ kind, name, status, err: status === undefined ? String(err) : undefined }, 'could not patch webhook caBundle');
    }
  }
}
