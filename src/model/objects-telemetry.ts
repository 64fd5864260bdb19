/**
 * The Telemetry API (telemetry.istio.io v1 / v1alpha1) as typed records, after istio/api
 * telemetry/v1alpha1/telemetry.proto. Specs reach the model only after validation.
 */

import type { PolicyTargetReference } from './objects-security';

export const ISTIO_TELEMETRY_VERSIONS: readonly string[] = ['v1', 'v1alpha1'];

export type WorkloadMode = 'CLIENT' | 'SERVER' | 'CLIENT_AND_SERVER';

export const ISTIO_METRICS = [
  'ALL_METRICS',
  'REQUEST_COUNT',
  'REQUEST_DURATION',
  'REQUEST_SIZE',
  'RESPONSE_SIZE',
  'TCP_OPENED_CONNECTIONS',
  'TCP_CLOSED_CONNECTIONS',
  'TCP_SENT_BYTES',
  'TCP_RECEIVED_BYTES',
  'GRPC_REQUEST_MESSAGES',
  'GRPC_RESPONSE_MESSAGES',
] as const;
export type IstioMetric = (typeof ISTIO_METRICS)[number];

export interface ProviderRef {
  name: string;
}

export interface TagOverride {
  operation?: 'UPSERT' | 'REMOVE';
  value?: string;
}

export interface MetricSelector {
  metric?: IstioMetric;
  customMetric?: string;
  mode?: WorkloadMode;
}

export interface MetricsOverrides {
  match?: MetricSelector;
  disabled?: boolean;
  tagOverrides?: Readonly<Record<string, TagOverride>>;
}

export interface Metrics {
  providers?: readonly ProviderRef[];
  overrides?: readonly MetricsOverrides[];
  reportingInterval?: string;
}

export interface AccessLogging {
  match?: { mode?: WorkloadMode };
  providers?: readonly ProviderRef[];
  disabled?: boolean;
  filter?: { expression: string };
}

export interface CustomTag {
  literal?: { value: string };
  environment?: { name: string; defaultValue?: string };
  header?: { name: string; defaultValue?: string };
}

export interface Tracing {
  match?: { mode?: WorkloadMode };
  providers?: readonly ProviderRef[];
  randomSamplingPercentage?: number;
  disableSpanReporting?: boolean;
  customTags?: Readonly<Record<string, CustomTag>>;
  useRequestIdForTraceSampling?: boolean;
  enableIstioTags?: boolean;
}

export interface TelemetrySpec {
  selector?: { matchLabels?: Readonly<Record<string, string>> };
  targetRef?: PolicyTargetReference;
  targetRefs?: readonly PolicyTargetReference[];
  tracing?: readonly Tracing[];
  metrics?: readonly Metrics[];
  accessLogging?: readonly AccessLogging[];
}
