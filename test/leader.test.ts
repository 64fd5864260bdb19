/**
 * Leader election between meshd replicas, against the fake Kubernetes API server over HTTP with
 * client-node: two electors as two replicas would run them, and the leader-only task that
 * publishes istio-ca-root-cert.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { test } from 'node:test';
import { KubeConfig, Watch } from '@kubernetes/client-node';
import pino from 'pino';
import {
  CaBundlePatcher,
  CA_ROOT_CONFIGMAP,
  CA_ROOT_KEY,
  type LeaderElectionHandle,
  type LeaderTask,
  LEASE_NAMES,
  LeaderTasks,
  type LeaseTimings,
  RootCertPublisher,
  meshdLeaderTasks,
  startLeaderElection,
} from '../src/leader';
import { checkTimings } from '../src/leader/lease';
import { type KubeApiServer, startKubeApiServer } from './helpers/kube-api-server';
import { closeInOrder } from './helpers/teardown';

const log = pino({ level: 'silent' });
const NS = 'istio-system';
const LEASE = LEASE_NAMES.namespaceController;
const SHORT: LeaseTimings = { leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 200 };

function kubeConfig(server: KubeApiServer, url = server.url): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(server.kubeconfig);
  if (url === server.url) return kc;
  const other = new KubeConfig();
  other.loadFromOptions({
    clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
    users: [{ name: 'fake', token: server.token }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
    currentContext: 'fake',
  });
  return other;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Samples every replica's isLeader() every few ms: the most leaders at one moment, whether each
 * ever led, and how many times each stopped leading.
 */
function sampler(replicas: ReadonlyArray<{ isLeader(): boolean }>): { maxLeaders(): number; seen(i: number): boolean; drops(i: number): number; stop(): void } {
  let max = 0;
  const seen = replicas.map(() => false);
  const drops = replicas.map(() => 0);
  const prev = replicas.map(() => false);
  const t = setInterval(() => {
    let n = 0;
    replicas.forEach((r, i) => {
      const leading = r.isLeader();
      if (leading) n++;
      if (leading) seen[i] = true;
      if (prev[i] && !leading) drops[i] = (drops[i] as number) + 1;
      prev[i] = leading;
    });
    max = Math.max(max, n);
  }, 2);
  return { maxLeaders: () => max, seen: (i) => seen[i] as boolean, drops: (i) => drops[i] as number, stop: () => clearInterval(t) };
}

function lease(server: KubeApiServer): { holderIdentity?: string; leaseTransitions?: number; leaseDurationSeconds?: number } {
  const l = server.store.get('coordination.k8s.io/v1', 'Lease', NS, LEASE);
  return (l?.['spec'] ?? {}) as { holderIdentity?: string; leaseTransitions?: number; leaseDurationSeconds?: number };
}

/** A TCP relay to the API server that can be cut, as a replica losing its network or dying. */
async function relay(port: number): Promise<{ url: string; cut(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
  return {
    url,
    cut: async () => {
      const closed = new Promise<void>((r) => srv.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

function replica(kc: KubeConfig, identity: string, timings: LeaseTimings, tasks: readonly LeaderTask[] = []): LeaderElectionHandle {
  return startLeaderElection({ kubeConfig: kc, namespace: NS, identity, log, tasks, timings });
}

test('two replicas: one leads; a graceful stop releases the Lease and the other takes over at once', async () => {
  const server = await startKubeApiServer();
  // A 30 s lease: the follower can only take over within this test's bounds through the release.
  const timings: LeaseTimings = { leaseDurationMs: 30_000, renewDeadlineMs: 20_000, retryPeriodMs: 200 };
  const a = replica(kubeConfig(server), 'meshd-a', timings);
  const b = replica(kubeConfig(server), 'meshd-b', timings);
  const s = sampler([a, b]);
  try {
    await waitFor('a leader', () => a.isLeader() || b.isLeader());
    const [leader, follower] = a.isLeader() ? [a, b] : [b, a];
    assert.equal(lease(server).holderIdentity, leader.identity);
    assert.equal(lease(server).leaseDurationSeconds, 30);
    await waitFor('the follower to observe the leader', () => follower.leader() === leader.identity);
    // Several renewals pass without a change of leader.
    const before = server.requests.filter((r) => r.method === 'PUT' && r.path.includes('/leases/')).length;
    await waitFor('renewals', () => server.requests.filter((r) => r.method === 'PUT' && r.path.includes('/leases/') && r.status === 200).length >= before + 3);
    assert.ok(leader.isLeader() && !follower.isLeader());
    const transitions = lease(server).leaseTransitions ?? 0;

    await leader.stop();
    assert.equal(leader.isLeader(), false);
    await waitFor('the follower to take over', () => follower.isLeader());
    assert.equal(lease(server).holderIdentity, follower.identity);
    assert.equal(lease(server).leaseTransitions, transitions + 1);
    assert.equal(s.maxLeaders(), 1, 'two replicas led at the same time');
  } finally {
    s.stop();
    await closeInOrder([() => a.stop(), () => b.stop(), () => server.close()]);
  }
});

test('a leader that dies without releasing is replaced once its lease expires', async () => {
  const server = await startKubeApiServer();
  const net1 = await relay(server.port);
  const a = replica(kubeConfig(server, net1.url), 'meshd-a', SHORT);
  let b: LeaderElectionHandle | undefined;
  const s = sampler([a, { isLeader: () => b?.isLeader() ?? false }]);
  try {
    await waitFor('a to lead', () => a.isLeader());
    b = replica(kubeConfig(server), 'meshd-b', SHORT);
    const follower = b;
    await waitFor('b to observe a', () => follower.leader() === 'meshd-a');
    assert.equal(follower.isLeader(), false);

    await net1.cut(); // a can no longer renew (nor release)
    await waitFor('b to take over', () => follower.isLeader());
    assert.equal(a.isLeader(), false);
    assert.equal(lease(server).holderIdentity, 'meshd-b');
    assert.equal(lease(server).leaseTransitions, 1);
    assert.equal(s.maxLeaders(), 1, 'two replicas led at the same time');
  } finally {
    s.stop();
    await closeInOrder([() => a.stop({ release: false }), () => b?.stop(), () => server.close()]);
  }
});

test('a 409 Conflict on renew is re-read and retried; the leader keeps leading', async () => {
  const server = await startKubeApiServer();
  const a = replica(kubeConfig(server), 'meshd-a', SHORT);
  let b: LeaderElectionHandle | undefined;
  const s = sampler([a, { isLeader: () => b?.isLeader() ?? false }]);
  try {
    await waitFor('a to lead', () => a.isLeader());
    b = replica(kubeConfig(server), 'meshd-b', SHORT);
    const follower = b;
    await waitFor('b to observe a', () => follower.leader() === 'meshd-a');
    const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${LEASE}`;
    for (let round = 0; round < 3; round++) {
      server.clearRequests();
      // Another writer changes the Lease: the leader's next renewal carries a stale resourceVersion.
      server.store.patch('coordination.k8s.io/v1', 'Lease', NS, LEASE, { metadata: { annotations: { touched: String(round) } } });
      await waitFor('a conflict, then a renewal', () => {
        const puts = server.requests.filter((r) => r.method === 'PUT' && r.path === leasePath);
        const conflict = puts.findIndex((r) => r.status === 409);
        return conflict >= 0 && puts.slice(conflict + 1).some((r) => r.status === 200);
      });
    }
    assert.ok(a.isLeader());
    assert.equal(s.drops(0), 0, 'the leader stepped down');
    assert.equal(lease(server).holderIdentity, 'meshd-a');
    assert.equal(s.seen(1), false, 'the follower led');
    assert.equal(s.maxLeaders(), 1);

    // The same when the API answers 409 itself.
    server.clearRequests();
    server.injectFailures({ status: 409, method: 'PUT', path: '/leases/', count: 1 });
    await waitFor('the injected conflict, then a renewal', () => {
      const puts = server.requests.filter((r) => r.method === 'PUT' && r.path === leasePath);
      return puts.some((r) => r.status === 409) && puts.at(-1)?.status === 200;
    });
    assert.ok(a.isLeader());
    assert.equal(s.drops(0), 0, 'the leader stepped down');
    assert.equal(s.seen(1), false, 'the follower led');
  } finally {
    s.stop();
    await closeInOrder([() => a.stop(), () => b?.stop(), () => server.close()]);
  }
});

const PEM_A = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
const PEM_B = '-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n';

test('the leader publishes istio-ca-root-cert into every namespace; the follower writes nothing', async () => {
  const server = await startKubeApiServer();
  for (const name of ['default', NS, 'bookinfo', 'kube-system', 'kube-public', 'kube-node-lease']) {
    server.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  }
  server.store.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'unrelated', namespace: 'default' }, data: { x: '1' } });
  // Every ConfigMap write, as seen by an independent watcher.
  const writes: Array<{ type: string; namespace: string; name: string; pem?: string }> = [];
  const watchReq = await new Watch(kubeConfig(server)).watch(
    '/api/v1/configmaps',
    {},
    (type: string, o: { metadata?: { name?: string; namespace?: string }; data?: { [k: string]: string } }) =>
      writes.push({ type, namespace: o.metadata?.namespace ?? '', name: o.metadata?.name ?? '', pem: o.data?.[CA_ROOT_KEY] }),
    () => undefined,
  );
  const kcA = kubeConfig(server);
  const kcB = kubeConfig(server);
  // Each replica publishes a different root, so any write by the follower would show.
  const a = replica(kcA, 'meshd-a', SHORT, [new RootCertPublisher({ kubeConfig: kcA, rootCertPem: PEM_A, log, rewatchDelayMs: 100 })]);
  await waitFor('a to lead', () => a.isLeader());
  const b = replica(kcB, 'meshd-b', SHORT, [new RootCertPublisher({ kubeConfig: kcB, rootCertPem: PEM_B, log, rewatchDelayMs: 100 })]);
  const cm = (ns: string): { data?: { [k: string]: string }; metadata?: { labels?: { [k: string]: string } } } | undefined =>
    server.store.get('v1', 'ConfigMap', ns, CA_ROOT_CONFIGMAP) as never;
  try {
    const expected = ['bookinfo', 'default', NS, 'kube-system'];
    await waitFor('the ConfigMaps', () => expected.every((ns) => cm(ns)?.data?.[CA_ROOT_KEY] === PEM_A));
    assert.deepEqual(cm('default')?.metadata?.labels, { 'istio.io/config': 'true' });
    for (const ns of ['kube-public', 'kube-node-lease']) assert.equal(cm(ns), undefined, `${ns} is skipped`);

    // A namespace created later gets one too.
    server.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'later' } });
    await waitFor('the new namespace', () => cm('later')?.data?.[CA_ROOT_KEY] === PEM_A);
    // An edited or deleted one is put back; other keys are kept.
    const edited = cm('bookinfo') as { data: { [k: string]: string } };
    server.store.apply({ ...edited, data: { [CA_ROOT_KEY]: 'tampered', extra: 'kept' } });
    server.store.delete('v1', 'ConfigMap', 'default', CA_ROOT_CONFIGMAP);
    await waitFor('the repairs', () => cm('bookinfo')?.data?.[CA_ROOT_KEY] === PEM_A && cm('default')?.data?.[CA_ROOT_KEY] === PEM_A);
    assert.equal(cm('bookinfo')?.data?.['extra'], 'kept');
    assert.deepEqual(server.store.get('v1', 'ConfigMap', 'default', 'unrelated')?.['data'], { x: '1' });

    // The follower wrote nothing: no write anywhere ever carried its root.
    await waitFor('b to observe a', () => b.leader() === 'meshd-a');
    assert.equal(b.isLeader(), false);
    assert.deepEqual(
      writes.filter((w) => w.pem === PEM_B),
      [],
    );
    const rootWrites = (): typeof writes => writes.filter((w) => w.name === CA_ROOT_CONFIGMAP && w.type !== 'DELETED');
    // Created 5 (4, then later), tampered 1, repaired 1, recreated 1: nothing more.
    await waitFor('the watcher to see every write', () => rootWrites().length >= 8);
    assert.equal(rootWrites().length, 8, JSON.stringify(rootWrites()));

    // Leadership moves: the old leader's task stops and the new leader's task takes over.
    await a.stop();
    await waitFor('b to lead and publish', () => b.isLeader() && ['bookinfo', 'default', NS, 'kube-system', 'later'].every((ns) => cm(ns)?.data?.[CA_ROOT_KEY] === PEM_B));
    server.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'after-handover' } });
    await waitFor('the new leader to serve a new namespace', () => cm('after-handover')?.data?.[CA_ROOT_KEY] === PEM_B);
    // Watch events come in write order: once the new leader wrote, the old one never did again.
    const firstB = writes.findIndex((w) => w.pem === PEM_B);
    assert.deepEqual(
      writes.slice(firstB).filter((w) => w.pem === PEM_A),
      [],
      'the old leader kept writing',
    );
  } finally {
    watchReq.abort();
    await closeInOrder([() => a.stop(), () => b.stop(), () => server.close()]);
  }
});

test('without a root certificate there is no leader task; bad timings are refused', () => {
  const kc = new KubeConfig();
  assert.deepEqual(meshdLeaderTasks({ kubeConfig: kc, log }), []);
  assert.equal(meshdLeaderTasks({ kubeConfig: kc, log, rootCertPem: PEM_A }).length, 1);
  assert.throws(() => checkTimings({ leaseDurationMs: 1000, renewDeadlineMs: 1000, retryPeriodMs: 200 }), /renewDeadline/);
  assert.throws(() => checkTimings({ leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 600 }), /retryPeriod/);
  assert.throws(() => new RootCertPublisher({ kubeConfig: kc, rootCertPem: ' ', log }), /empty/);
});

test('a leader task that ignores its signal is left behind after the stop timeout, with a warning', async () => {
  const warnings: string[] = [];
  const watched = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(String((JSON.parse(line) as { msg?: string }).msg)) });
  const stuck: LeaderTask = { name: 'stuck', run: () => new Promise<void>(() => undefined) };
  const tasks = new LeaderTasks([stuck], watched, { stopTimeoutMs: 100 });
  tasks.start();
  const t0 = performance.now();
  await tasks.stop();
  const took = performance.now() - t0;
  assert.ok(took >= 90 && took < 1000, `stop() took ${Math.round(took)} ms`);
  assert.ok(
    warnings.some((w) => /did not stop in time/.test(w)),
    warnings.join('\n'),
  );
});

test('leader tasks run while leading, are aborted on stop, and restart after a failure', async () => {
  const events: string[] = [];
  let runs = 0;
  const task: LeaderTask = {
    name: 'probe',
    run: async (signal) => {
      runs++;
      events.push(`start ${runs}`);
      if (runs === 1) throw new Error('first run fails');
      await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
      events.push('aborted');
    },
  };
  const tasks = new LeaderTasks([task], log, { restartDelayMs: 10 });
  tasks.start();
  await waitFor('the restart', () => runs === 2);
  assert.ok(tasks.active());
  await tasks.stop();
  assert.deepEqual(events, ['start 1', 'start 2', 'aborted']);
  assert.equal(tasks.active(), false);
});

/**
 * An HTTP proxy to the API server that holds every request whose path matches `hold` (a round
 * "in flight") until release(); other requests, watches included, pass straight through.
 */
async function holdingProxy(target: string, hold: RegExp): Promise<{ url: string; held(): number; release(): void; close(): Promise<void> }> {
  const waiting: Array<() => void> = [];
  let held = 0;
  let released = false;
  const sockets = new Set<net.Socket>();
  const srv = http.createServer((req, res) => {
    const forward = (): void => {
      const up = http.request(`${target}${req.url ?? '/'}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    if (!released && hold.test(req.url ?? '')) {
      held++;
      waiting.push(forward);
    } else forward();
  });
  srv.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`,
    held: () => held,
    release: () => {
      released = true;
      for (const f of waiting.splice(0)) f();
    },
    close: async () => {
      const closed = new Promise<void>((r) => srv.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/**
 * The leader runs both leader tasks against an API server that has not answered their first
 * round (the caBundle read, the root publisher's lists) when it is told to stop. `answerAfterMs`:
 * the held requests are answered that long after stop() (undefined: never).
 */
async function stepDownWhileTasksWait(answerAfterMs: number | undefined): Promise<void> {
  const server = await startKubeApiServer();
  server.store.create({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'istio-sidecar-injector' },
    webhooks: [
      {
        name: 'namespace.sidecar-injector.istio.io',
        clientConfig: { service: { name: 'istiod', namespace: NS, path: '/inject', port: 443 } },
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
      },
    ],
  });
  server.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
  const proxy = await holdingProxy(server.url, /mutatingwebhookconfigurations|\/configmaps|\/namespaces\?|\/namespaces$/);
  const kc = kubeConfig(server, proxy.url);
  // A 30 s lease: the follower can take over within the bounds below only if the Lease is released.
  const timings: LeaseTimings = { leaseDurationMs: 30_000, renewDeadlineMs: 20_000, retryPeriodMs: 200 };
  let steppedDownAt: number | undefined;
  // Tasks that ignore their signal are cut off after 1 s with a warning: there must be none.
  const warnings: string[] = [];
  const watched = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(String((JSON.parse(line) as { msg?: string }).msg)) });
  const a = startLeaderElection({
    kubeConfig: kc,
    namespace: NS,
    identity: 'meshd-a',
    log: watched,
    timings,
    tasks: [new CaBundlePatcher({ kubeConfig: kc, caPem: () => PEM_A, log }), new RootCertPublisher({ kubeConfig: kc, rootCertPem: PEM_A, log })],
    onChange: (leading) => {
      if (!leading) steppedDownAt = performance.now();
    },
  });
  let b: LeaderElectionHandle | undefined;
  let answer: NodeJS.Timeout | undefined;
  try {
    await waitFor('a to lead with both tasks waiting on the API server', () => a.isLeader() && proxy.held() >= 3);
    b = replica(kubeConfig(server), 'meshd-b', timings);
    const follower = b;
    await waitFor('b to observe a', () => follower.leader() === 'meshd-a');
    const t0 = performance.now();
    if (answerAfterMs !== undefined) answer = setTimeout(() => proxy.release(), answerAfterMs);
    const stopped = a.stop().then(() => performance.now());
    // Fail in seconds, not after the 30 s a stuck task would take.
    const stoppedAt = await Promise.race([stopped, new Promise<number>((r) => setTimeout(() => r(Number.NaN), 5000))]);
    assert.ok(
      steppedDownAt !== undefined && steppedDownAt - t0 < 1000,
      `the leader tasks stopped within 1 s of stop() (${steppedDownAt === undefined ? 'not at all' : `${Math.round(steppedDownAt - t0)} ms`})`,
    );
    assert.ok(stoppedAt - t0 < 2000, `stop() (step down and release) took ${Number.isNaN(stoppedAt) ? 'over 5 s' : `${Math.round(stoppedAt - t0)} ms`}`);
    assert.equal(lease(server).holderIdentity, '', 'the Lease was released');
    assert.deepEqual(
      warnings.filter((w) => /did not stop/.test(w)),
      [],
      'every task honoured its signal',
    );
    await waitFor('b to take over', () => follower.isLeader(), 5000);
  } finally {
    clearTimeout(answer);
    proxy.release();
    await closeInOrder([() => a.stop(), () => b?.stop(), () => proxy.close(), () => server.close()]);
  }
}

test('a leader whose tasks wait on an API round that is answered late steps down within a second and releases the Lease', async () => {
  await stepDownWhileTasksWait(200);
});

test('a leader whose tasks wait on an API round that is never answered steps down within a second and releases the Lease', async () => {
  await stepDownWhileTasksWait(undefined);
});
