/** Every option meshd takes, as one typed object. Only main.ts reads argv or env. */
import { DEFAULT_DOMAIN } from '../model/snapshot';

export interface MeshdOptions {
  /** Folder source. Exactly one of configDir, kubeconfig and inCluster is set. */
  configDir?: string;
  /** Kubernetes source: the API server and credentials of this kubeconfig file (its current context). */
  kubeconfig?: string;
  /** Kubernetes source: the API server of the cluster meshd runs in, with its pod's service account. */
  inCluster?: boolean;
  host: string;
  xdsPort: number;
  debugPort: number;
  /** Prometheus `/metrics` as istiod serves it on 15014; -1 disables. */
  monitoringPort: number;
  domain: string;
  logLevel: string;
  /** Push debounce: quiet period and maximum delay. */
  debounceQuietMs: number;
  debounceMaxMs: number;
  /** Check every generated resource against Envoy's validate.rules before serving it. */
  validateResources: boolean;
  /** HTTPS admission webhooks (injection, validation) as istiod serves them on 15017; -1 disables. */
  webhookPort: number;
  /** This replica's pod (POD_NAME), for its leader-election identity. */
  podName?: string;
  /** meshd's own namespace (POD_NAMESPACE): where the leader Lease lives. Default istio-system. */
  podNamespace?: string;
}

export const DEFAULTS: Omit<MeshdOptions, 'configDir' | 'kubeconfig' | 'inCluster'> = {
  host: '127.0.0.1',
  xdsPort: 15010,
  debugPort: 8080,
  monitoringPort: 15014,
  domain: DEFAULT_DOMAIN,
  logLevel: 'info',
  debounceQuietMs: 100,
  debounceMaxMs: 10_000,
  validateResources: true,
  // Off for embedders and tests; the command line turns it on at 15017 as istiod.
  webhookPort: -1,
};

export function withDefaults(o: Partial<MeshdOptions>): MeshdOptions {
  const merged: MeshdOptions = { ...DEFAULTS, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) };
  const sources = [merged.configDir !== undefined, merged.kubeconfig !== undefined, merged.inCluster === true].filter(Boolean).length;
  if (sources === 0) throw new Error('a config source is required: --config-dir DIR or --kubeconfig FILE (or in-cluster config)');
  if (sources > 1) throw new Error('--config-dir and --kubeconfig (or in-cluster config) are exclusive: pick one config source');
  for (const k of ['xdsPort', 'debugPort'] as const) {
    const v = merged[k];
    if (!Number.isInteger(v) || v < 0 || v > 65535) throw new Error(`--${k === 'xdsPort' ? 'xds-port' : 'debug-port'}: ${v} is not a port (0-65535)`);
  }
  if (!Number.isInteger(merged.monitoringPort) || merged.monitoringPort < -1 || merged.monitoringPort > 65535) {
    throw new Error(`--monitoring-port: ${merged.monitoringPort} is not a port (0-65535, or -1 to disable)`);
  }
  if (!Number.isInteger(merged.webhookPort) || merged.webhookPort < -1 || merged.webhookPort > 65535) {
    throw new Error(`--webhook-port: ${merged.webhookPort} is not a port (0-65535, or -1 to disable)`);
  }
  return merged;
}
