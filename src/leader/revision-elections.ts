/**
 * meshd's elections for one revision, wired as istiod scopes its own:
 *
 * - the shared `istio-namespace-controller-election` (cluster-wide writes: the CA's root Secret,
 *   istio-ca-root-cert) is joined only while this revision is the mesh's default, as read from
 *   the revision tags, and only once they were read;
 * - the per-revision `meshd-webhook-patcher-<rev>` Lease (label `istio.io/rev`) runs the
 *   caBundle patcher of this revision's webhook configurations.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { REVISION_LABEL, type RevisionNames, perRevisionLeaseName } from '../config/revision';
import { type GatedElectionHandle, type LeaderElectionHandle, meshdLeaderTasks, startGatedElection, startLeaderElection } from './index';
import { LEASE_NAMES, type LeaseTimings } from './lease';
import { type RevisionRole, RevisionTagWatcher } from './revision-tags';
import type { LeaderTask } from './tasks';

export interface RevisionElectionsOptions {
  kubeConfig: KubeConfig;
  names: RevisionNames;
  /** meshd's namespace (the Leases'). */
  namespace: string;
  identity: string;
  log: Logger;
  /** Leader-only work on the shared Lease (the CA's root and istio-ca-root-cert). */
  sharedTasks: readonly LeaderTask[];
  /** The webhook configurations' caBundle; undefined when the webhooks are off (no per-revision Lease then). */
  webhookCaPem?: () => string | undefined;
  timings?: Partial<LeaseTimings>;
  revisionTagIntervalMs?: number;
  webhookPatchIntervalMs?: number;
}

export interface RevisionElections {
  /** The shared election (cluster-wide writes). */
  readonly shared: GatedElectionHandle;
  /** The per-revision election, when the webhooks are on. */
  readonly perRevision: (LeaderElectionHandle & { lease: string }) | undefined;
  /** The tags pointing at this revision and whether it is the default (revision `default` until the tags are read). */
  role(): RevisionRole;
  stop(): Promise<void>;
}

export function startRevisionElections(o: RevisionElectionsOptions): RevisionElections {
  let stopped = false;
  // Joined once the tags were read: a revision named default that is no longer the default must
  // not take the shared Lease (and create a root) in the meantime.
  const shared: GatedElectionHandle = startGatedElection(
    { kubeConfig: o.kubeConfig, namespace: o.namespace, identity: o.identity, log: o.log, tasks: o.sharedTasks, timings: o.timings },
    false,
  );
  const tags = new RevisionTagWatcher({
    kubeConfig: o.kubeConfig,
    revision: o.names.revision,
    log: o.log,
    ...(o.revisionTagIntervalMs !== undefined ? { intervalMs: o.revisionTagIntervalMs } : {}),
    onChange: (r) => void shared.setEnabled(r.isDefault),
  });
  const isDefault = (): boolean => tags.role().isDefault;
  const lease = perRevisionLeaseName(LEASE_NAMES.webhookPatcher, o.names.revision);
  const perRevision = o.webhookCaPem
    ? startLeaderElection({
        kubeConfig: o.kubeConfig,
        namespace: o.namespace,
        leaseName: lease,
        labels: { [REVISION_LABEL]: o.names.revision },
        identity: o.identity,
        log: o.log,
        tasks: meshdLeaderTasks({
          kubeConfig: o.kubeConfig,
          log: o.log,
          webhookCaPem: o.webhookCaPem,
          revision: o.names.revision,
          namespace: o.namespace,
          isDefault,
          ...(o.webhookPatchIntervalMs !== undefined ? { webhookPatchIntervalMs: o.webhookPatchIntervalMs } : {}),
        }),
        timings: o.timings,
      })
    : undefined;
  tags.start();
  void tags.read().then(() => (stopped ? undefined : shared.setEnabled(isDefault())));
  return {
    shared,
    perRevision: perRevision ? Object.assign(perRevision, { lease }) : undefined,
    role: () => tags.role(),
    stop: async () => {
      stopped = true;
      await tags.stop();
      await shared.stop();
      await perRevision?.stop();
    },
  };
}
