/**
 * Where the API server would send a pod CREATE, given the MutatingWebhookConfigurations stored in
 * the fake API server: every webhook whose rules cover pods and whose namespaceSelector and
 * objectSelector match (Kubernetes label-selector semantics), as the Services it calls.
 */
import type { KubeApiServer } from './kube-api-server';
import { type WebhookConfiguration, selectorMatches } from '../../src/cli/tag-webhooks';

const ADM = 'admissionregistration.k8s.io/v1';

export function mutatingConfigs(api: KubeApiServer): WebhookConfiguration[] {
  return api.store.list(ADM, 'MutatingWebhookConfiguration') as unknown as WebhookConfiguration[];
}

export function validatingConfigs(api: KubeApiServer): WebhookConfiguration[] {
  return api.store.list(ADM, 'ValidatingWebhookConfiguration') as unknown as WebhookConfiguration[];
}

/** The labels a real API server gives a namespace: its own, plus kubernetes.io/metadata.name. */
export function namespaceLabels(name: string, labels: Record<string, string>): Record<string, string> {
  return { ...labels, 'kubernetes.io/metadata.name': name };
}

/** `<config>/<webhook> → <service namespace>/<service name>` for each webhook a pod CREATE reaches. */
export function podCreateRoutes(configs: readonly WebhookConfiguration[], nsLabels: Record<string, string>, podLabels: Record<string, string>): string[] {
  const out: string[] = [];
  for (const c of configs) {
    for (const w of c.webhooks) {
      const coversPods = (w.rules ?? []).some(
        (r) => r.operations.some((o) => o === 'CREATE' || o === '*') && r.apiGroups.includes('') && r.resources.some((x) => x === 'pods' || x === '*'),
      );
      if (!coversPods) continue;
      if (!selectorMatches(w.namespaceSelector, nsLabels) || !selectorMatches(w.objectSelector, podLabels)) continue;
      out.push(`${c.metadata.name}/${w.name} → ${w.clientConfig.service ? `${w.clientConfig.service.namespace}/${w.clientConfig.service.name}` : String(w.clientConfig.url)}`);
    }
  }
  return out.sort();
}

/** Just the Services a pod CREATE reaches, deduplicated. */
export function podCreateServices(configs: readonly WebhookConfiguration[], nsLabels: Record<string, string>, podLabels: Record<string, string>): string[] {
  return [...new Set(podCreateRoutes(configs, nsLabels, podLabels).map((r) => r.slice(r.indexOf(' → ') + 3)))].sort();
}
