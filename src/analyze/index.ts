/**
 * Cross-object analysis, as `istioctl analyze` does it: a pure function from a set of
 * ConfigObjects (read from files, or from the cluster) to Istio's analysis messages. No I/O,
 * no clock; the same objects always give the same messages, in the same order.
 *
 * Every object first goes through meshd's own validation (the folder source's and the
 * webhook's): errors become IST0106 with the field path, warnings IST0133. Objects with errors
 * are left out of the cross-object checks, as meshd leaves them out of the config it serves.
 */
import { DEFAULT_INPUT_LIMITS } from '../config/limits';
import type { ConfigError, ConfigObject, ServiceEntrySpec, ServiceSpec } from '../model/objects';
import { checkObject } from '../model/validate';
import { type Message, type MessageResource, MSG, compareMessages } from './messages';
import { virtualServiceAnalyzers } from './virtualservice';
import { gatewayAnalyzers } from './gateway';
import { otherAnalyzers } from './others';
import { annotationsAnalyzer, suppressedByAnnotation } from './annotations';
import { type AnalysisContext, type AnalysisOptions, type Analyzer, type RegistryHost, DEFAULT_ANALYSIS_OPTIONS, specOf, toFqdn } from './util';

export * from './messages';
export * from './util';

function registryHosts(objects: readonly ConfigObject[], domain: string): RegistryHost[] {
  const out: RegistryHost[] = [];
  for (const o of objects) {
    if (o.kind === 'Service') {
      const s = specOf<ServiceSpec>(o);
      const exportAnn = o.metadata.annotations['networking.istio.io/exportTo'];
      out.push({
        host: `${o.metadata.name}.${o.metadata.namespace}.svc.${domain}`,
        namespace: o.metadata.namespace,
        exportTo: exportAnn ? exportAnn.split(',').map((x) => x.trim()) : [],
        ports: (s.ports ?? []).map((p) => p.port),
      });
    } else if (o.kind === 'ServiceEntry') {
      const s = specOf<ServiceEntrySpec>(o);
      for (const h of s.hosts ?? []) {
        out.push({ host: toFqdn(h, o.metadata.namespace, domain), namespace: o.metadata.namespace, exportTo: s.exportTo ?? [], ports: (s.ports ?? []).map((p) => p.number) });
      }
    }
  }
  return out;
}

/** Every analyzer meshd runs, in Istio's names. */
export function allAnalyzers(): readonly Analyzer[] {
  return [schemaAnalyzer, annotationsAnalyzer, ...virtualServiceAnalyzers, ...gatewayAnalyzers, ...otherAnalyzers];
}

const schemaAnalyzer: Analyzer = {
  name: 'schema.ValidationAnalyzer',
  description: "Runs meshd's schema validation (the webhook's and the folder source's) on every object",
  run: () => undefined, // done by analyze() itself: it decides which objects the others see
};

function resourceOf(o: ConfigObject): MessageResource {
  const file = o.origin.source.startsWith('kubernetes:') ? undefined : o.origin.source;
  return {
    kind: o.kind,
    namespace: o.metadata.namespace,
    name: o.metadata.name,
    ...(file !== undefined ? { file } : {}),
    ...(o.origin.document !== undefined ? { document: o.origin.document } : {}),
  };
}

export interface AnalysisInput {
  objects: readonly ConfigObject[];
  /** Objects the reader already refused (a missing name, an Istio kind at an unknown version): IST0106 each. */
  refused?: readonly ConfigError[];
}

export interface AnalysisResult {
  messages: Message[];
  analyzers: string[];
}

/** Runs every analyzer over the objects; messages sorted as istioctl sorts them. */
export function analyze(input: AnalysisInput, options: AnalysisOptions = DEFAULT_ANALYSIS_OPTIONS): AnalysisResult {
  const messages: Message[] = [];
  const seen = new Set<string>();
  const push = (m: Message): void => {
    const key = `${m.type.code}|${m.resource ? `${m.resource.kind}/${m.resource.namespace}/${m.resource.name}|${m.resource.file ?? ''}` : ''}|${m.field ?? ''}|${m.text}`;
    if (seen.has(key)) return;
    seen.add(key);
    messages.push(m);
  };
  for (const e of input.refused ?? []) {
    const resource: MessageResource | undefined =
      e.kind !== undefined
        ? {
            kind: e.kind,
            namespace: e.namespace ?? '',
            name: e.name ?? '',
            ...(e.source.startsWith('kubernetes:') ? {} : { file: e.source }),
            ...(e.document !== undefined ? { document: e.document } : {}),
          }
        : undefined;
    for (const fe of e.errors)
      push({
        type: MSG.SchemaValidationError,
        text: `Schema validation error: ${fe.path ? `${fe.path}: ` : ''}${fe.message}`,
        ...(resource ? { resource } : {}),
        ...(fe.path ? { field: fe.path } : {}),
      });
  }
  const valid: ConfigObject[] = [];
  for (const o of input.objects) {
    let result;
    try {
      result = checkObject(o, DEFAULT_INPUT_LIMITS.maxErrorsPerObject);
    } catch (err) {
      result = { errors: [{ path: '', message: `internal validation error: ${(err as Error).message}` }], warnings: [] };
    }
    for (const fe of result.errors)
      push({
        type: MSG.SchemaValidationError,
        text: `Schema validation error: ${fe.path ? `${fe.path}: ` : ''}${fe.message}`,
        resource: resourceOf(o),
        ...(fe.path ? { field: fe.path } : {}),
      });
    for (const fe of result.warnings)
      push({
        type: MSG.SchemaWarning,
        text: `Schema validation warning: ${fe.path ? `${fe.path}: ` : ''}${fe.message}`,
        resource: resourceOf(o),
        ...(fe.path ? { field: fe.path } : {}),
      });
    if (result.errors.length === 0) valid.push(o);
  }
  const byKind = new Map<string, ConfigObject[]>();
  for (const o of valid) {
    const list = byKind.get(o.kind);
    if (list) list.push(o);
    else byKind.set(o.kind, [o]);
  }
  const ctx: AnalysisContext = {
    options,
    objects: valid,
    of: (kind) => byKind.get(kind) ?? [],
    hosts: registryHosts(valid, options.domain),
    report: (type, o, text, field) => {
      // A resource may silence codes for itself, as in Istio (`galley.istio.io/analyze-suppress`).
      if (suppressedByAnnotation(o.metadata.annotations, type.code)) return;
      push({ type, text, resource: resourceOf(o), ...(field !== undefined ? { field } : {}) });
    },
  };
  const names: string[] = [];
  for (const a of allAnalyzers()) {
    names.push(a.name);
    try {
      a.run(ctx);
    } catch (err) {
      // A crash in one analyzer is a bug; it must not hide what the others found.
      push({ type: { code: 'IST0001', name: 'InternalError', level: 'Error', description: 'internal error' }, text: `Internal error: ${a.name}: ${(err as Error).message}` });
    }
  }
  messages.sort(compareMessages);
  return { messages, analyzers: names };
}
