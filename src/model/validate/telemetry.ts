/**
 * Telemetry (telemetry.istio.io), after istiod's ValidateTelemetry and its CRD's field set: one of
 * selector / targetRef(s) (the security kinds' rule, validatePolicyTargetReferences), providers
 * named, metric overrides (a known metric or a custom one, UPSERT with a value, REMOVE without),
 * access logging filter expressions, tracing sampling percentages in 0..100 and custom tags with
 * exactly one kind, and reporting intervals as positive durations.
 */
import type { ConfigObject } from '../objects';
import { ISTIO_METRICS } from '../objects-telemetry';
import { checkPolicyTargets, targetRefSchema } from './authorizationpolicy';
import { Issues, arr, num, pathIdx, pathKey, rec, str } from './common';
import { parseDuration } from './duration';
import { arrayOf, bool, checkSchema, closed, mapOf, number, oneOf, str as strSchema } from './schema';

const MODES = ['CLIENT_AND_SERVER', 'CLIENT', 'SERVER'];
const providers = arrayOf(closed({ name: strSchema }));
const header = closed({ name: strSchema, defaultValue: strSchema });

export const telemetrySchema = closed({
  selector: closed({ matchLabels: mapOf(strSchema) }),
  targetRef: targetRefSchema,
  targetRefs: arrayOf(targetRefSchema),
  tracing: arrayOf(
    closed({
      match: closed({ mode: oneOf(...MODES) }),
      providers,
      customTags: mapOf(closed({ literal: closed({ value: strSchema }), environment: header, header })),
      randomSamplingPercentage: number,
      disableSpanReporting: bool,
      useRequestIdForTraceSampling: bool,
      enableIstioTags: bool,
    }),
  ),
  metrics: arrayOf(
    closed({
      providers,
      overrides: arrayOf(
        closed({
          match: closed({ metric: oneOf(...ISTIO_METRICS), customMetric: strSchema, mode: oneOf(...MODES) }),
          disabled: bool,
          tagOverrides: mapOf(closed({ operation: oneOf('UPSERT', 'REMOVE'), value: strSchema })),
        }),
      ),
      reportingInterval: strSchema,
    }),
  ),
  accessLogging: arrayOf(closed({ match: closed({ mode: oneOf(...MODES) }), providers, disabled: bool, filter: closed({ expression: strSchema }) })),
});

function checkProviders(issues: Issues, path: string, v: unknown): void {
  (arr(v) ?? []).forEach((p, i) => {
    if (!str(rec(p)?.['name'])) issues.add(pathKey(pathIdx(path, i), 'name'), 'provider name must be set');
  });
}

export function validateTelemetry(obj: ConfigObject, issues: Issues): void {
  const raw = obj.body['spec'];
  if (raw === undefined || raw === null) return;
  checkSchema(raw, telemetrySchema, 'spec', issues);
  const spec = rec(raw);
  if (spec === undefined) return;
  checkPolicyTargets(issues, spec);

  (arr(spec['tracing']) ?? []).forEach((t, i) => {
    const p = pathIdx('spec.tracing', i);
    const tr = rec(t);
    if (!tr) return;
    checkProviders(issues, pathKey(p, 'providers'), tr['providers']);
    if ((arr(tr['providers']) ?? []).length > 1) issues.add(pathKey(p, 'providers'), 'multiple providers is not currently supported');
    const pct = num(tr['randomSamplingPercentage']);
    if (pct !== undefined && (pct < 0 || pct > 100)) issues.add(pathKey(p, 'randomSamplingPercentage'), 'must be in range [0.0, 100.0]');
    for (const [name, tag] of Object.entries(rec(tr['customTags']) ?? {})) {
      const tp = pathKey(pathKey(p, 'customTags'), name);
      const kinds = ['literal', 'environment', 'header'].filter((k) => rec(tag)?.[k] !== undefined);
      if (kinds.length !== 1) issues.add(tp, 'exactly one of literal, environment or header must be set');
      const t = rec(tag);
      if (rec(t?.['literal']) && !str(rec(t?.['literal'])?.['value'])) issues.add(pathKey(pathKey(tp, 'literal'), 'value'), 'literal value must be set');
      for (const k of ['environment', 'header']) if (rec(t?.[k]) && !str(rec(t?.[k])?.['name'])) issues.add(pathKey(pathKey(tp, k), 'name'), `${k} name must be set`);
    }
  });

  (arr(spec['metrics']) ?? []).forEach((m, i) => {
    const p = pathIdx('spec.metrics', i);
    const mt = rec(m);
    if (!mt) return;
    checkProviders(issues, pathKey(p, 'providers'), mt['providers']);
    const interval = str(mt['reportingInterval']);
    if (interval !== undefined) {
      const ns = parseDuration(interval);
      if (ns === undefined) issues.add(pathKey(p, 'reportingInterval'), `invalid duration ${JSON.stringify(interval)}`);
      else if (ns <= 0n) issues.add(pathKey(p, 'reportingInterval'), 'must be greater than zero');
    }
    (arr(mt['overrides']) ?? []).forEach((o, j) => {
      const op = pathIdx(pathKey(p, 'overrides'), j);
      const ov = rec(o);
      const match = rec(ov?.['match']);
      if (match && match['metric'] !== undefined && match['customMetric'] !== undefined) issues.add(pathKey(op, 'match'), 'only one of metric or customMetric can be set');
      if (match && match['customMetric'] !== undefined && !str(match['customMetric'])) issues.add(pathKey(pathKey(op, 'match'), 'customMetric'), 'must not be empty');
      for (const [tag, to] of Object.entries(rec(ov?.['tagOverrides']) ?? {})) {
        const tp = pathKey(pathKey(op, 'tagOverrides'), tag);
        if (tag === '') issues.add(tp, 'tag name must not be empty');
        const t = rec(to);
        const operation = str(t?.['operation']) ?? 'UPSERT';
        const value = t?.['value'];
        if (operation === 'UPSERT' && !str(value)) issues.add(pathKey(tp, 'value'), 'must be set when operation is UPSERT');
        if (operation === 'REMOVE' && value !== undefined) issues.add(pathKey(tp, 'value'), 'must not be set when operation is REMOVE');
      }
    });
  });

  (arr(spec['accessLogging']) ?? []).forEach((l, i) => {
    const p = pathIdx('spec.accessLogging', i);
    const al = rec(l);
    if (!al) return;
    checkProviders(issues, pathKey(p, 'providers'), al['providers']);
    const f = rec(al['filter']);
    if (f && !str(f['expression'])) issues.add(pathKey(pathKey(p, 'filter'), 'expression'), 'must not be empty');
  });
}
