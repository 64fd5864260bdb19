/** Istio's control-plane metric names, on a registry owned by one meshd instance. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { MESHD_VERSION } from '../version';

export class XdsMetrics {
  readonly registry: Registry;
  /** Connected proxies by their ISTIO_VERSION (istiod's `pilot_xds{version}`). */
  readonly connected: Gauge<'version'>;
  readonly build: Gauge<'component' | 'tag'>;
  readonly pushes: Counter;
  readonly rejects: Counter;
  readonly expiredNonce: Counter;
  readonly pushTime: Histogram;
  readonly convergence: Histogram;
  readonly configSize: Histogram;
  readonly internalErrors: Counter;
  readonly pushTriggers: Counter;
  readonly invalidObjects: Gauge;
  readonly rejectedResources: Gauge;
  readonly authFailures: Counter<'reason'>;
  readonly sendTime: Histogram;
  readonly debounceTime: Histogram;
  readonly snapshotBuildTime: Histogram;
  /** Config objects added/updated/deleted, by kind (istiod's pilot_k8s_cfg_events). */
  readonly cfgEvents: Counter<'type' | 'event'>;
  /** Services, EndpointSlices, Endpoints and Pods added/updated/deleted (pilot_k8s_reg_events). */
  readonly regEvents: Counter<'type' | 'event'>;
  /** The validating webhook (istiod's galley_validation_*). */
  readonly validationPassed: Counter<'group' | 'version' | 'resource'>;
  readonly validationFailed: Counter<'group' | 'version' | 'resource' | 'reason'>;
  /** The injection webhook (istiod's sidecar_injection_*_total). */
  readonly injectionRequests: Counter;
  readonly injectionSuccess: Counter;
  readonly injectionFailure: Counter;
  readonly injectionSkip: Counter;

  constructor(registry: Registry = new Registry(), withProcessMetrics = true) {
    this.registry = registry;
    const registers = [registry];
    if (withProcessMetrics) collectDefaultMetrics({ register: registry });
    this.connected = new Gauge({ name: 'pilot_xds', help: 'Number of endpoints connected to this pilot using XDS.', labelNames: ['version'], registers });
    // istiod's build gauge, which dashboards group control planes by.
    this.build = new Gauge({ name: 'istio_build', help: 'Istio component build info', labelNames: ['component', 'tag'], registers });
    this.build.set({ component: 'pilot', tag: MESHD_VERSION }, 1);
    this.pushes = new Counter({ name: 'pilot_xds_pushes', help: 'Pilot build and send errors for lds, rds, cds and eds.', labelNames: ['type'], registers });
    this.rejects = new Counter({ name: 'pilot_total_xds_rejects', help: 'Total number of XDS responses from pilot rejected by proxy.', labelNames: ['type'], registers });
    this.expiredNonce = new Counter({ name: 'pilot_xds_expired_nonce', help: 'Total number of XDS requests with an expired nonce.', labelNames: ['type'], registers });
    this.pushTime = new Histogram({
      name: 'pilot_xds_push_time',
      help: 'Total time in seconds Pilot takes to push lds, rds, cds and eds.',
      labelNames: ['type'],
      buckets: [0.01, 0.1, 1, 3, 5, 10, 20, 30],
      registers,
    });
    this.convergence = new Histogram({
      name: 'pilot_proxy_convergence_time',
      help: 'Delay in seconds between config change and a proxy receiving all required configuration.',
      buckets: [0.1, 0.5, 1, 3, 5, 10, 20, 30],
      registers,
    });
    this.configSize = new Histogram({
      name: 'pilot_xds_config_size_bytes',
      help: 'Distribution of configuration sizes pushed to clients',
      labelNames: ['type'],
      buckets: [1, 10000, 1000000, 4000000, 10000000, 40000000],
      registers,
    });
    this.internalErrors = new Counter({ name: 'pilot_total_xds_internal_errors', help: 'Total number of internal XDS errors in pilot.', registers });
    this.pushTriggers = new Counter({
      name: 'pilot_push_triggers',
      help: 'Total number of times a push was triggered, labeled by reason for the push.',
      labelNames: ['type'],
      registers,
    });
    this.sendTime = new Histogram({
      name: 'pilot_xds_send_time',
      help: 'Total time in seconds Pilot takes to send generated configuration.',
      buckets: [0.001, 0.01, 0.1, 1, 3, 5, 10, 20, 30],
      registers,
    });
    this.debounceTime = new Histogram({
      name: 'pilot_debounce_time',
      help: 'Delay in seconds between the first config enters debouncing and the merged push request is pushed into the push queue.',
      buckets: [0.01, 0.1, 1, 3, 5, 10, 20, 30],
      registers,
    });
    this.snapshotBuildTime = new Histogram({
      name: 'pilot_pushcontext_init_seconds',
      help: 'Total time in seconds Pilot takes to init pushContext.',
      buckets: [0.01, 0.1, 0.5, 1, 3, 5],
      registers,
    });
    this.cfgEvents = new Counter({ name: 'pilot_k8s_cfg_events', help: 'Events from k8s config.', labelNames: ['type', 'event'], registers });
    this.regEvents = new Counter({ name: 'pilot_k8s_reg_events', help: 'Events from k8s registry.', labelNames: ['type', 'event'], registers });
    this.validationPassed = new Counter({ name: 'galley_validation_passed', help: 'Resource is valid', labelNames: ['group', 'version', 'resource'], registers });
    this.validationFailed = new Counter({
      name: 'galley_validation_failed',
      help: 'Resource validation failed',
      labelNames: ['group', 'version', 'resource', 'reason'],
      registers,
    });
    this.injectionRequests = new Counter({ name: 'sidecar_injection_requests_total', help: 'Total number of sidecar injection requests.', registers });
    this.injectionSuccess = new Counter({ name: 'sidecar_injection_success_total', help: 'Total number of successful sidecar injection requests.', registers });
    this.injectionFailure = new Counter({ name: 'sidecar_injection_failure_total', help: 'Total number of failed sidecar injection requests.', registers });
    this.injectionSkip = new Counter({ name: 'sidecar_injection_skip_total', help: 'Total number of skipped sidecar injection requests.', registers });
    this.invalidObjects = new Gauge({ name: 'meshd_config_invalid_objects', help: 'Objects left out of the served config because they are invalid.', registers });
    this.rejectedResources = new Gauge({ name: 'meshd_xds_rejected_resources', help: 'Generated resources withheld because they failed the Envoy proto check.', registers });
    this.authFailures = new Counter({
      name: 'meshd_xds_auth_failures',
      help: 'xDS streams refused over TLS: no or a failed credential (unauthenticated), or an identity that is not the proxy it speaks for (identity_mismatch).',
      labelNames: ['reason'],
      registers,
    });
  }
}
