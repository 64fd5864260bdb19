/**
 * Replicas and leader election. Every meshd replica serves xDS; work that must happen once in the
 * cluster (today: publishing `istio-ca-root-cert`) runs only on the replica holding the Lease.
 */
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { LEASE_NAMES, LeaderElector, type LeaseTimings, DEFAULT_LEASE_TIMINGS, leaderIdentity } from './lease';
import { CaBundlePatcher } from './ca-bundle';
import { RootCertPublisher } from './root-cert';
import { type LeaderTask, LeaderTasks } from './tasks';

export { LEASE_NAMES, DEFAULT_LEASE_TIMINGS, LeaderElector, leaderIdentity, type LeaseTimings } from './lease';
export { LeaderTasks, type LeaderTask } from './tasks';
export { CaBundlePatcher, INJECTOR_WEBHOOK_CONFIG, VALIDATOR_WEBHOOK_CONFIG } from './ca-bundle';
export { RevisionTagWatcher, type RevisionRole, roleFrom } from './revision-tags';
export { RootCertPublisher, CA_ROOT_CONFIGMAP, CA_ROOT_KEY, ROOT_CERT_IGNORED_NAMESPACES } from './root-cert';

export const DEFAULT_LEADER_NAMESPACE = 'istio-system';

export interface LeaderElectionOptions {
  kubeConfig: KubeConfig;
  /** Namespace of the Lease (meshd's own). Default istio-system. */
  namespace?: string;
  /** Lease name. Default istiod's namespace-controller election, `istio-namespace-controller-election`. */
  leaseName?: string;
  /** Unique per process; see leaderIdentity(). Default: hostname plus a random suffix. */
  identity?: string;
  log: Logger;
  /** Run while leading, stopped when not. */
  tasks: readonly LeaderTask[];
  timings?: Partial<LeaseTimings>;
  /** Called on every change of leadership of this replica. */
  onChange?(leading: boolean): void;
  /** Labels of the Lease if this replica creates it. */
  labels?: Readonly<Record<string, string>>;
}

export interface LeaderElectionHandle {
  readonly identity: string;
  /** True while this replica leads (holds and has recently renewed the Lease). */
  isLeader(): boolean;
  /** The holder this replica last saw ('' if none). */
  leader(): string;
  /** Steps down (stopping tasks), then releases the Lease unless `release: false`. */
  stop(opts?: { release?: boolean }): Promise<void>;
}

export function startLeaderElection(opts: LeaderElectionOptions): LeaderElectionHandle {
  const namespace = opts.namespace ?? DEFAULT_LEADER_NAMESPACE;
  const name = opts.leaseName ?? LEASE_NAMES.namespaceController;
  const identity = opts.identity ?? leaderIdentity();
  const timings: LeaseTimings = { ...DEFAULT_LEASE_TIMINGS, ...opts.timings };
  const log = opts.log.child({ component: 'leader' });
  const tasks = new LeaderTasks(opts.tasks, log);
  const elector = new LeaderElector({
    api: opts.kubeConfig.makeApiClient(CoordinationV1Api),
    namespace,
    name,
    identity,
    timings,
    log,
    ...(opts.labels ? { labels: opts.labels } : {}),
    callbacks: {
      onStartedLeading: () => {
        tasks.start();
        opts.onChange?.(true);
      },
      onStoppedLeading: async () => {
        await tasks.stop();
        opts.onChange?.(false);
      },
      onNewLeader: (holder) => log.info({ lease: `${namespace}/${name}`, holder: holder || '(none)' }, 'leader observed'),
    },
  });
  elector.start();
  return {
    identity,
    isLeader: () => elector.isLeader(),
    leader: () => elector.leader(),
    stop: (o) => elector.stop(o),
  };
}

export interface GatedElectionHandle extends LeaderElectionHandle {
  /** Campaign (true) or step down, release the Lease and stop campaigning (false). */
  setEnabled(on: boolean): Promise<void>;
  enabled(): boolean;
}

/**
 * An election this replica campaigns in only while allowed: istiod's shared elections are led by
 * the default revision, so meshd joins them only while its revision is the default one.
 */
export function startGatedElection(opts: LeaderElectionOptions & { identity: string }, initiallyOn: boolean): GatedElectionHandle {
  let current: LeaderElectionHandle | undefined;
  let on = false;
  let stopped = false;
  let chain: Promise<void> = Promise.resolve();
  const set = (want: boolean): Promise<void> => {
    chain = chain.then(async () => {
      if (stopped || want === on) return;
      on = want;
      if (want) {
        current = startLeaderElection(opts);
      } else {
        const c = current;
        current = undefined;
        await c?.stop();
      }
      opts.log.info({ lease: opts.leaseName ?? LEASE_NAMES.namespaceController, campaigning: want }, want ? 'joined the leader election' : 'left the leader election');
    });
    return chain;
  };
  void set(initiallyOn);
  return {
    identity: opts.identity,
    isLeader: () => current?.isLeader() ?? false,
    leader: () => current?.leader() ?? '',
    enabled: () => on,
    setEnabled: set,
    stop: async (o) => {
      // Pending changes are dropped: none starts an election once stopping.
      stopped = true;
      await chain;
      const c = current;
      current = undefined;
      await c?.stop(o);
    },
  };
}

/** meshd's leader-only tasks. The root cert publisher runs only when a root PEM is given. */
export function meshdLeaderTasks(opts: {
  kubeConfig: KubeConfig;
  log: Logger;
  rootCertPem?: string;
  webhookCaPem?: () => string | undefined;
  /** The revision whose webhook configurations are patched, its namespace, and whether it is the default now. */
  revision?: string;
  namespace?: string;
  isDefault?: () => boolean;
  webhookPatchIntervalMs?: number;
}): LeaderTask[] {
  const tasks: LeaderTask[] = [];
  if (opts.webhookCaPem) {
    tasks.push(
      new CaBundlePatcher({
        kubeConfig: opts.kubeConfig,
        caPem: opts.webhookCaPem,
        log: opts.log,
        ...(opts.revision !== undefined ? { revision: opts.revision } : {}),
        ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}),
        ...(opts.isDefault ? { isDefault: opts.isDefault } : {}),
        ...(opts.webhookPatchIntervalMs !== undefined ? { intervalMs: opts.webhookPatchIntervalMs } : {}),
      }),
    );
  }
  // meshd itself passes no root here: its CA brings its own publisher (it follows root rotations).
  if (opts.rootCertPem && opts.rootCertPem.trim()) {
    tasks.push(new RootCertPublisher({ kubeConfig: opts.kubeConfig, rootCertPem: opts.rootCertPem, log: opts.log }));
  }
  return tasks;
}
