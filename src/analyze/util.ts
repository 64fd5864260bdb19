/** What the analyzers share: the context they read, and Istio's host and selector rules. */
import type { ConfigObject } from '../model/objects';
import type { MessageType } from './messages';

export interface AnalysisOptions {
  /** The cluster domain services' hostnames end in (`cluster.local`). */
  domain: string;
  /** The control plane's namespace (`istio-system`): not checked for injection or port names. */
  istioNamespace: string;
}

export const DEFAULT_ANALYSIS_OPTIONS: AnalysisOptions = { domain: 'cluster.local', istioNamespace: 'istio-system' };

/** A Kubernetes Service or ServiceEntry host a destination can name. */
export interface RegistryHost {
  host: string;
  namespace: string;
  exportTo: readonly string[];
  /** Port numbers (Service ports, ServiceEntry ports). */
  ports: readonly number[];
}

/** The objects, indexed for the analyzers; built once per run. */
export interface AnalysisContext {
  readonly options: AnalysisOptions;
  readonly objects: readonly ConfigObject[];
  of(kind: string): readonly ConfigObject[];
  /** Registry hosts: every Service's FQDN and every ServiceEntry host. */
  readonly hosts: readonly RegistryHost[];
  report(type: MessageType, o: ConfigObject, text: string, field?: string): void;
}

export interface Analyzer {
  /** Istio's analyzer name (`virtualservice.DestinationHostAnalyzer`). */
  name: string;
  description: string;
  run(c: AnalysisContext): void;
}

/** `reviews` in namespace `default` → `reviews.default.svc.cluster.local`; names with a dot or a wildcard are kept (Istio's ConvertHostToFQDN). */
export function toFqdn(host: string, namespace: string, domain: string): string {
  return host.startsWith('*') || host.includes('.') ? host : `${host}.${namespace}.svc.${domain}`;
}

/** Istio's host.Name.Matches: `pattern` (possibly a wildcard) covers `host`. */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) {
    if (host.startsWith('*')) return host.length >= pattern.length && host.endsWith(pattern.slice(1));
    return host.endsWith(pattern.slice(1));
  }
  return pattern === host;
}

/** The two names overlap (either may be a wildcard). */
export function hostsOverlap(a: string, b: string): boolean {
  return hostMatches(a, b) || hostMatches(b, a);
}

/** Kubernetes label selector semantics for a matchLabels map: every pair present. */
export function selects(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** `a=b,c=d`, sorted, as labels.SelectorFromSet(...).String() prints it. */
export function selectorString(selector: Readonly<Record<string, string>>): string {
  return Object.entries(selector)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export function specOf<T>(o: ConfigObject): T {
  return (o.body['spec'] ?? {}) as T;
}

/** Namespace `ns` can see an object exported to `exportTo` from `owner` (default: everywhere). */
export function visibleFrom(exportTo: readonly string[] | undefined, owner: string, ns: string): boolean {
  if (exportTo === undefined || exportTo.length === 0) return true;
  return exportTo.some((e) => e === '*' || e === ns || (e === '.' && owner === ns));
}
