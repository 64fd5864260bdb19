/**
 * istiod's Gateway API controllers as one leader-only task: after each config change (debounced,
 * off the xDS path) and periodically, the replica holding the Lease
 *
 * 1. creates GatewayClass `istio` (controllerName `istio.io/gateway-controller`) if absent;
 * 2. deploys every Gateway of a class it handles that has no manual address: ServiceAccount,
 *    Deployment and Service `<gateway>-istio`, owned by the Gateway, applied server-side with
 *    istiod's field manager, and only when they differ from what is wanted;
 * 3. writes each object's status to its `status` subresource when it differs from what the API
 *    server holds (ignoring lastTransitionTime), with observedGeneration and kept transition
 *    times, retrying on conflict, never for objects of another controller's class.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KNOWN_KINDS, type ConfigObject } from '../model/objects';
import type { InjectionOptions } from '../inject/options';
import { type LeaderTask, abortableDelay, unlessAborted } from '../leader/tasks';
import { isManual, renderGateway } from './deployment-render';
import { type Json, type KubeRest, KubeRestError, isRecord, kubeRest, records, str } from './kube-rest';
import { GATEWAY_API_GROUP, GATEWAY_FIELD_MANAGER, ISTIO_GATEWAY_CLASS, ISTIO_GATEWAY_CONTROLLER, STATUS_KINDS, gatewayApiCollectionPath, gatewayApiPath } from './names';
import { withClassStatuses } from './standin';
import { composeStatus, contains, kubeTime, sameStatus } from './status-merge';
import type { GatewayApiStatus, GatewayApiStatusSource } from './status-types';

export interface GatewayControllerOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  /** The wanted status of the Gateway API objects (the controller adds GatewayClass Accepted where the source has none). */
  statuses: GatewayApiStatusSource;
  /** The config objects the statuses are computed from (classes, and the generation each status belongs to). */
  objects: () => readonly ConfigObject[];
  /** The injector's settings: the gateway proxy runs the same image and environment. */
  injection: () => InjectionOptions;
  /** This control plane's revision (Gateways labelled `istio.io/rev` for another one are left alone). Default `default`. */
  revision?: string;
  controllerName?: string;
  /** Automated deployment (default on). */
  deployments?: boolean;
  /** Quiet time after a change before a round. Default 100 ms. */
  debounceMs?: number;
  /** A round also runs this long after the last one. Default 60 s. */
  resyncMs?: number;
  /** Attempts per status write when the object changes meanwhile (409). Default 5. */
  conflictRetries?: number;
  now?: () => Date;
  /** User-Agent of the controller's requests (default `meshd`). */
  userAgent?: string;
}

/** What one round did (tests and logs). */
export interface RoundResult {
  classCreated: boolean;
  applied: string[];
  written: string[];
  unchanged: number;
  skipped: string[];
}

const APPLY = 'application/apply-patch+yaml';

function objectPath(o: Json): string {
  const meta = isRecord(o['metadata']) ? o['metadata'] : {};
  const ns = encodeURIComponent(str(meta['namespace']) ?? 'default');
  const name = encodeURIComponent(str(meta['name']) ?? '');
  switch (o['kind']) {
    case 'ServiceAccount':
      return `/api/v1/namespaces/${ns}/serviceaccounts/${name}`;
    case 'Service':
      return `/api/v1/namespaces/${ns}/services/${name}`;
    case 'Deployment':
      return `/apis/apps/v1/namespaces/${ns}/deployments/${name}`;
    default:
      throw new Error(`no path for kind ${String(o['kind'])}`);
  }
}

const describe = (s: { kind: string; namespace?: string; name: string }): string => `${s.kind} ${s.namespace ? `${s.namespace}/` : ''}${s.name}`;

export class GatewayController implements LeaderTask {
  readonly name = 'gateway api controller';
  private dirty = true;
  private wake: (() => void) | undefined;
  private apiMissingLogged = false;
  /** What this replica last applied, by path: applied again when it changes even if the server's copy still contains it (a removed label). */
  private readonly applied = new Map<string, string>();
  private readonly controllerName: string;
  private readonly revision: string;
  private readonly source: GatewayApiStatusSource;

  constructor(private readonly opts: GatewayControllerOptions) {
    this.controllerName = opts.controllerName ?? ISTIO_GATEWAY_CONTROLLER;
    this.revision = opts.revision ?? 'default';
    this.source = withClassStatuses(opts.statuses, opts.objects);
  }

  /** Config changed: a round follows after the debounce (only while leading). */
  notify(): void {
    this.dirty = true;
    this.wake?.();
  }

  async run(signal: AbortSignal): Promise<void> {
    const rest = kubeRest(this.opts.kubeConfig, this.opts.userAgent ?? 'meshd');
    this.dirty = true;
    while (!signal.aborted) {
      if (!this.dirty) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, this.opts.resyncMs ?? 60_000);
          function done(): void {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            resolve();
          }
          this.wake = done;
          signal.addEventListener('abort', done, { once: true });
        });
        this.wake = undefined;
      }
      await abortableDelay(this.opts.debounceMs ?? 100, signal);
      if (signal.aborted) break;
      this.dirty = false;
      // Stepping down does not wait for a round in flight: its writes finish or fail on their own.
      await unlessAborted(this.round(rest, signal), signal);
    }
  }

  /** One pass: the class, the deployments, the statuses. Failures are logged; the next round retries. */
  async round(rest: KubeRest, signal?: AbortSignal): Promise<RoundResult> {
    const result: RoundResult = { classCreated: false, applied: [], written: [], unchanged: 0, skipped: [] };
    const log = this.opts.log;
    let classes: Json[];
    try {
      classes = records((await rest.get(`/apis/${GATEWAY_API_GROUP}/v1/gatewayclasses`))['items']);
    } catch (err) {
      if (err instanceof KubeRestError && err.code === 404) {
        if (!this.apiMissingLogged) log.info('the Gateway API (gateway.networking.k8s.io/v1) is not installed; the gateway controller waits for it');
        this.apiMissingLogged = true;
        return result;
      }
      log.warn({ err: String(err) }, 'gateway controller: could not list GatewayClasses');
      return result;
    }
    this.apiMissingLogged = false;
    try {
      result.classCreated = await this.ensureClass(rest, classes);
    } catch (err) {
      log.warn({ err: String(err) }, `gateway controller: could not create GatewayClass ${ISTIO_GATEWAY_CLASS}`);
    }
    const ours = new Set(
      classes.filter((c) => isRecord(c['spec']) && c['spec']['controllerName'] === this.controllerName).map((c) => str((c['metadata'] as Json | undefined)?.['name']) ?? ''),
    );
    if (result.classCreated) ours.add(ISTIO_GATEWAY_CLASS);
    if (this.opts.deployments !== false) {
      try {
        await this.deploy(rest, ours, result, signal);
      } catch (err) {
        log.warn({ err: String(err) }, 'gateway controller: could not list Gateways');
      }
    }
    await this.writeStatuses(rest, ours, result, signal);
    if (result.applied.length > 0 || result.written.length > 0 || result.classCreated) {
      log.info({ classCreated: result.classCreated, applied: result.applied, statuses: result.written }, 'gateway controller round');
    }
    return result;
  }

  /** istiod's class controller: GatewayClass `istio` exists (created if absent). */
  private async ensureClass(rest: KubeRest, classes: readonly Json[]): Promise<boolean> {
    if (classes.some((c) => (c['metadata'] as Json | undefined)?.['name'] === ISTIO_GATEWAY_CLASS)) return false;
    try {
      await rest.post(`/apis/${GATEWAY_API_GROUP}/v1/gatewayclasses`, {
        apiVersion: `${GATEWAY_API_GROUP}/v1`,
        kind: 'GatewayClass',
        metadata: { name: ISTIO_GATEWAY_CLASS },
        spec: { controllerName: this.controllerName, description: 'The default Istio GatewayClass' },
      });
    } catch (err) {
      if (err instanceof KubeRestError && err.code === 409) return false;
      throw err;
    }
    return true;
  }

  private async deploy(rest: KubeRest, ours: ReadonlySet<string>, result: RoundResult, signal?: AbortSignal): Promise<void> {
    const gateways = records((await rest.get(`/apis/${GATEWAY_API_GROUP}/v1/gateways`))['items']);
    const wanted = new Set<string>();
    for (const gw of gateways) {
      if (signal?.aborted) return;
      const meta = isRecord(gw['metadata']) ? gw['metadata'] : {};
      const spec = isRecord(gw['spec']) ? gw['spec'] : {};
      const className = str(spec['gatewayClassName']) ?? '';
      const rev = isRecord(meta['labels']) ? str(meta['labels']['istio.io/rev']) : undefined;
      if (!ours.has(className) || isManual(gw) || (rev !== undefined && rev !== this.revision)) continue;
      const who = `${str(meta['namespace']) ?? ''}/${str(meta['name']) ?? ''}`;
      try {
        const r = renderGateway(gw, className, this.opts.injection());
        for (const obj of [r.serviceAccount, r.deployment, r.service]) {
          wanted.add(objectPath(obj));
          if (await this.apply(rest, obj))
            result.applied.push(`${String(obj['kind'])} ${str((obj['metadata'] as Json)['namespace']) ?? ''}/${str((obj['metadata'] as Json)['name']) ?? ''}`);
        }
      } catch (err) {
        this.opts.log.warn({ gateway: who, err: String(err) }, 'gateway controller: could not deploy the gateway');
      }
    }
    // Forget objects of Gateways that are gone (Kubernetes deletes the objects themselves).
    for (const path of this.applied.keys()) if (!wanted.has(path)) this.applied.delete(path);
  }

  /** Server-side apply with istiod's field manager, unless the object already is as wanted. */
  private async apply(rest: KubeRest, obj: Json): Promise<boolean> {
    const path = objectPath(obj);
    const text = JSON.stringify(obj);
    const existing = await rest.find(path);
    if (existing && contains(existing, obj) && this.applied.get(path) === text) return false;
    // Server-side apply: fields this manager applied before and no longer sends are removed.
    await rest.patch(`${path}?fieldManager=${encodeURIComponent(GATEWAY_FIELD_MANAGER)}&force=true`, obj, APPLY);
    this.applied.set(path, text);
    return true;
  }

  private async writeStatuses(rest: KubeRest, ours: ReadonlySet<string>, result: RoundResult, signal?: AbortSignal): Promise<void> {
    let wanted: readonly GatewayApiStatus[];
    try {
      wanted = this.source();
    } catch (err) {
      this.opts.log.error({ err: String(err) }, 'gateway controller: computing statuses failed');
      return;
    }
    const generations = new Map<string, number | undefined>();
    for (const o of this.opts.objects()) {
      const k = KNOWN_KINDS[o.kind];
      if (k.group === GATEWAY_API_GROUP) generations.set(`${k.kind}/${o.metadata.namespace}/${o.metadata.name}`, o.metadata.generation);
    }
    // One LIST per kind per round (not a GET per object); a conflict re-reads the one object.
    const lists = new Map<string, Promise<Map<string, Json>>>();
    const listed = (kind: string): Promise<Map<string, Json>> => {
      let l = lists.get(kind);
      if (!l) {
        const all = gatewayApiCollectionPath(kind);
        l = all
          ? rest.get(all).then((list) => {
              const byKey = new Map<string, Json>();
              for (const o of records(list['items'])) {
                const m = isRecord(o['metadata']) ? o['metadata'] : {};
                byKey.set(`${str(m['namespace']) ?? ''}/${str(m['name']) ?? ''}`, o);
              }
              return byKey;
            })
          : Promise.resolve(new Map<string, Json>());
        lists.set(kind, l);
      }
      return l;
    };
    for (const s of wanted) {
      if (signal?.aborted) return;
      if (s.group !== GATEWAY_API_GROUP) continue;
      try {
        const cached = (await listed(s.kind)).get(`${STATUS_KINDS[s.kind]?.namespaced ? (s.namespace ?? '') : ''}/${s.name}`);
        const outcome = await this.writeOne(rest, s, ours, generations.get(`${s.kind}/${s.namespace ?? ''}/${s.name}`), cached);
        if (outcome === 'written') result.written.push(describe(s));
        else if (outcome === 'unchanged') result.unchanged++;
        else result.skipped.push(`${describe(s)}: ${outcome}`);
      } catch (err) {
        this.opts.log.warn({ object: describe(s), err: String(err) }, 'gateway controller: could not write status');
      }
    }
  }

  private async writeOne(rest: KubeRest, s: GatewayApiStatus, ours: ReadonlySet<string>, configGeneration: number | undefined, listed: Json | undefined): Promise<string> {
    const path = gatewayApiPath(s.kind, s.namespace, s.name);
    const k = STATUS_KINDS[s.kind];
    if (!path || !k) return 'not a kind with status';
    const attempts = this.opts.conflictRetries ?? 5;
    for (let i = 0; ; i++) {
      // The round's list first; after a conflict, the object as it is now.
      const live = i === 0 ? listed : await rest.find(path);
      if (!live) return 'gone';
      const spec = isRecord(live['spec']) ? live['spec'] : {};
      // Never another controller's object.
      if (s.kind === 'GatewayClass' && spec['controllerName'] !== this.controllerName) return 'another controller';
      if (s.kind === 'Gateway' && !ours.has(str(spec['gatewayClassName']) ?? '')) return 'another class';
      const meta = isRecord(live['metadata']) ? live['metadata'] : {};
      const generation = typeof meta['generation'] === 'number' ? meta['generation'] : undefined;
      // Computed from an older spec: the newer one is on its way, and its status with it.
      if (configGeneration !== undefined && generation !== undefined && configGeneration !== generation) return 'stale';
      const existing = isRecord(live['status']) ? live['status'] : undefined;
      const next = composeStatus(s.kind, s.status, existing, generation, kubeTime(this.opts.now?.() ?? new Date()), this.controllerName);
      if (sameStatus(next, existing)) return 'unchanged';
      try {
        await rest.put(`${path}/status`, { ...live, apiVersion: `${GATEWAY_API_GROUP}/${k.version}`, kind: s.kind, status: next });
        return 'written';
      } catch (err) {
        if (err instanceof KubeRestError && err.code === 409 && i + 1 < attempts) continue;
        throw err;
      }
    }
  }
}
