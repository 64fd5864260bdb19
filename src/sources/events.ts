/**
 * Object events as istiod counts them: `pilot_k8s_reg_events{type,event}` for the service
 * registry's inputs (Services, EndpointSlices, Endpoints, Pods) and `pilot_k8s_cfg_events{type,event}`
 * for config objects (by kind), with event `add`, `update` or `delete`. Sources call a
 * RecordEvent where an object really appears, changes or goes away.
 */
import type { Counter } from 'prom-client';
import type { ConfigObject } from '../model/objects';

export type ObjectEvent = 'add' | 'update' | 'delete';
export type RecordEvent = (kind: string, event: ObjectEvent) => void;

/** istiod's `type` label for the registry's kinds; any other kind is a config event. */
const REGISTRY_TYPES: Readonly<Record<string, string>> = { Service: 'Services', EndpointSlice: 'EndpointSlice', Endpoints: 'Endpoints', Pod: 'Pods' };
/** Kinds that are neither (their changes reach the model, but istiod counts them nowhere). */
const UNCOUNTED = new Set(['Namespace', 'Secret', 'ConfigMap']);

export function eventRecorder(m: { cfgEvents: Counter<'type' | 'event'>; regEvents: Counter<'type' | 'event'> }): RecordEvent {
  return (kind, event) => {
    const reg = REGISTRY_TYPES[kind];
    if (reg) m.regEvents.inc({ type: reg, event });
    else if (!UNCOUNTED.has(kind)) m.cfgEvents.inc({ type: kind, event });
  };
}

function keyOf(o: ConfigObject): string {
  return `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
}

/** The events between one file's objects before and after (proportional to that file). */
export function recordDiff(prev: readonly ConfigObject[], next: readonly ConfigObject[], record: RecordEvent): void {
  const before = new Map(prev.map((o) => [keyOf(o), o]));
  for (const o of next) {
    const k = keyOf(o);
    const was = before.get(k);
    before.delete(k);
    if (!was) record(o.kind, 'add');
    else if (was !== o && JSON.stringify(was.body) !== JSON.stringify(o.body)) record(o.kind, 'update');
  }
  for (const o of before.values()) record(o.kind, 'delete');
}
