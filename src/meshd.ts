/** Composition: source → model → generate → cache → ADS server, plus debug. */
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { type MeshdOptions, withDefaults } from './config/options';
import { debugApp, listenApp, metricsApp } from './debug/server';
import { buildSnapshot } from './model/build';
import type { ConfigError } from './model/objects';
import type { MeshSnapshot } from './model/snapshot';
import { FileSource } from './sources/file-source';
import { ResourceCache } from './xds/cache';
import { Debouncer } from './xds/debounce';
import { XdsMetrics } from './xds/metrics';
import { EnvoyProtos } from './xds/protos';
import { AdsServer } from './xds/server';
import { ResourceValidator } from './xds/validate-rules';

export interface MeshdHandle {
  xdsPort: number;
  debugPort: number;
  monitoringPort: number;
  /** The snapshot being served. */
  snapshot(): MeshSnapshot | undefined;
  close(): Promise<void>;
}

export type StartOptions = Partial<MeshdOptions> & { configDir: string; logger?: Logger };

/** The content part of a snapshot version (`<sequence>-<hash>`). */
function contentHash(s: MeshSnapshot): string {
  return s.version.slice(s.version.indexOf('-') + 1);
}

function describe(e: ConfigError): string {
  const obj = e.kind ? ` ${e.kind} ${e.namespace ? `${e.namespace}/` : ''}${e.name ?? ''}` : '';
  const doc = e.document !== undefined ? `#${e.document}` : '';
  return `${e.source}${doc}${obj}: ${e.errors.map((f) => (f.path ? `${f.path}: ${f.message}` : f.message)).join('; ')}`;
}

export async function startMeshd(input: StartOptions): Promise<MeshdHandle> {
  const opts = withDefaults(input);
  const log = input.logger ?? pino({ level: opts.logLevel, base: { app: 'meshd' } });
  const protos = new EnvoyProtos();
  const metrics = new XdsMetrics();
  const cache = new ResourceCache(protos, opts.validateResources ? new ResourceValidator(protos) : undefined);
  let current: MeshSnapshot | undefined;
  let sequence = 0;
  let ready = false;
  const server = new AdsServer({ protos, cache, metrics, log, snapshots: { current: () => current } });

  const source = new FileSource(opts.configDir);
  const rebuild = (): MeshSnapshot => {
    const state = source.state();
    const snap = buildSnapshot({ objects: state.objects, errors: state.errors, sequence: ++sequence, now: new Date(), domain: opts.domain });
    metrics.invalidObjects.set(snap.errors.length);
    for (const e of snap.errors) log.warn({ source: e.source, kind: e.kind, namespace: e.namespace, name: e.name }, `config left out: ${describe(e)}`);
    return snap;
  };

  source.load();
  current = rebuild();
  log.info({ version: current.version, counts: current.counts, errors: current.errors.length, dir: opts.configDir }, 'config loaded');

  const debouncer = new Debouncer<string>({ quietMs: opts.debounceQuietMs, maxMs: opts.debounceMaxMs }, (files, firstAt) => {
    const prev = current;
    const next = rebuild();
    // Same objects and same problems (e.g. a file touched, or an invalid object edited into
    // another invalid one with the same message): keep the snapshot and its encoded resources.
    if (prev && contentHash(next) === contentHash(prev) && JSON.stringify(next.errors) === JSON.stringify(prev.errors)) {
      log.debug({ files }, 'files changed but config is the same; no push');
      return;
    }
    current = next;
    log.info({ version: next.version, files, errors: next.errors.length }, 'config changed; pushing');
    void server.push({ snap: next, triggeredAt: firstAt, reason: 'config' });
  });
  source.on('change', (file: string) => debouncer.add(file));
  source.on('error', (err: unknown) => log.error({ err }, 'config folder watch error'));
  await source.watch();

  const apps: FastifyInstance[] = [];
  let xdsPort = 0;
  let debugPort = 0;
  let monitoringPort = -1;
  try {
    xdsPort = await server.listen(opts.host, opts.xdsPort);
    const dbg = debugApp({ server, protos, cache, metrics, snapshot: () => current, ready: () => ready });
    apps.push(dbg);
    debugPort = await listenApp(dbg, opts.host, opts.debugPort);
    if (opts.monitoringPort >= 0) {
      const mon = metricsApp(metrics);
      apps.push(mon);
      monitoringPort = await listenApp(mon, opts.host, opts.monitoringPort);
    }
  } catch (err) {
    debouncer.stop();
    await source.close();
    await server.close();
    for (const a of apps) await a.close();
    throw err;
  }
  ready = true;
  log.info({ xds: `${opts.host}:${xdsPort}`, debug: `http://${opts.host}:${debugPort}`, monitoring: monitoringPort >= 0 ? `http://${opts.host}:${monitoringPort}/metrics` : 'off' }, 'meshd is serving');

  return {
    xdsPort,
    debugPort,
    monitoringPort,
    snapshot: () => current,
    close: async () => {
      ready = false;
      debouncer.stop();
      await source.close();
      await server.close();
      for (const a of apps) await a.close();
    },
  };
}
