/**
 * Which revision is the mesh's default, and which tags point at this one, as istiod's
 * `revisions.DefaultWatcher` reads them: the MutatingWebhookConfigurations labelled `istio.io/tag`
 * (`istio-revision-tag-<tag>`, written by `meshctl tag set` or `istioctl tag set`) map a tag to
 * the revision in their `istio.io/rev` label; the `default` tag's names the default revision.
 * Without a `default` tag, revision `default` is the default one.
 *
 * Read by listing every `intervalMs` (one small list; tags change rarely). Until the first list
 * answers, revision `default` counts as the default and no tag is known.
 */
import { AdmissionregistrationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { DEFAULT_REVISION, REVISION_LABEL, TAG_LABEL } from '../config/revision';
import { statusOf } from './lease';
import { abortableDelay } from './tasks';

export interface RevisionRole {
  /** The tags whose webhooks route to this revision (`default` among them when it is the default). */
  tags: readonly string[];
  /** Whether this revision is the mesh's default (the `default` tag names it, or it is `default` and there is no such tag). */
  isDefault: boolean;
  /** The default revision as last read ('' when the `default` tag is absent and revision `default` counts). */
  defaultRevision: string;
}

export interface RevisionTagWatcherOptions {
  kubeConfig: KubeConfig;
  revision: string;
  log: Logger;
  /** Default 5 s. */
  intervalMs?: number;
  /** Called when the role changes (not for the initial assumption). */
  onChange?(role: RevisionRole): void;
}

type Api = Pick<AdmissionregistrationV1Api, 'listMutatingWebhookConfiguration'>;

/** The role of `revision` given the tag webhooks' labels. */
export function roleFrom(revision: string, tagLabels: Readonly<Array<Readonly<Record<string, string>>>>): RevisionRole {
  const tags = new Set<string>();
  let defaultRevision = '';
  for (const labels of tagLabels) {
    const tag = labels[TAG_LABEL];
    const rev = labels[REVISION_LABEL];
    if (!tag || !rev) continue;
    if (tag === DEFAULT_REVISION) defaultRevision = rev;
    if (rev === revision) tags.add(tag);
  }
  const isDefault = defaultRevision !== '' ? defaultRevision === revision : revision === DEFAULT_REVISION;
  return { tags: [...tags].sort(), isDefault, defaultRevision };
}

const sameRole = (a: RevisionRole, b: RevisionRole): boolean => a.isDefault === b.isDefault && a.defaultRevision === b.defaultRevision && a.tags.join(',') === b.tags.join(',');

export class RevisionTagWatcher {
  private current: RevisionRole;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private firstRead: Promise<void>;
  private markRead: () => void = () => undefined;

  constructor(private readonly opts: RevisionTagWatcherOptions) {
    this.current = roleFrom(opts.revision, []);
    this.firstRead = new Promise((r) => (this.markRead = r));
  }

  role(): RevisionRole {
    return this.current;
  }

  /** Resolves once the tags were listed once (or the watcher stopped). */
  read(): Promise<void> {
    return this.firstRead;
  }

  start(): void {
    if (this.loop) return;
    const api: Api = this.opts.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    this.loop = (async () => {
      const signal = this.abort.signal;
      while (!signal.aborted) {
        await this.poll(api);
        this.markRead();
        await abortableDelay(this.opts.intervalMs ?? 5000, signal);
      }
    })();
  }

  private async poll(api: Api): Promise<void> {
    try {
      const list = await api.listMutatingWebhookConfiguration({ labelSelector: TAG_LABEL });
      if (this.abort.signal.aborted) return;
      const next = roleFrom(
        this.opts.revision,
        list.items.map((c) => c.metadata?.labels ?? {}),
      );
      if (sameRole(next, this.current)) return;
      this.opts.log.info(
        { revision: this.opts.revision, tags: next.tags, isDefault: next.isDefault, defaultRevision: next.defaultRevision || DEFAULT_REVISION },
        'revision tags changed',
      );
      this.current = next;
      this.opts.onChange?.(next);
    } catch (err) {
      // Keep the last known role: an API hiccup must not move leadership around.
      this.opts.log.warn({ status: statusOf(err), err: statusOf(err) === undefined ? String(err) : undefined }, 'could not list revision tag webhooks');
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.markRead();
    await this.loop;
  }
}
