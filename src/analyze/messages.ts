/**
 * Istio's analysis message types (pkg/config/analysis/msg/messages.yaml): the same codes,
 * levels and templates, so `meshctl analyze` output reads as `istioctl analyze` output and
 * suppressions written for one work for the other.
 */

export type Level = 'Error' | 'Warning' | 'Info';

/** Error first, as istioctl sorts them. */
export const LEVEL_ORDER: readonly Level[] = ['Error', 'Warning', 'Info'];

/** True when `a` is at least as severe as `b`. */
export function atLeast(a: Level, b: Level): boolean {
  return LEVEL_ORDER.indexOf(a) <= LEVEL_ORDER.indexOf(b);
}

export function parseLevel(s: string): Level | undefined {
  const l = s.toLowerCase();
  return LEVEL_ORDER.find((x) => x.toLowerCase() === l);
}

export interface MessageType {
  readonly code: string;
  readonly name: string;
  readonly level: Level;
  readonly description: string;
}

const t = (code: string, name: string, level: Level, description: string): MessageType => ({ code, name, level, description });

/** The message types meshd's analyzers emit (a subset of Istio's; the codes are Istio's). */
export const MSG = {
  ReferencedResourceNotFound: t('IST0101', 'ReferencedResourceNotFound', 'Error', 'A resource being referenced does not exist.'),
  NamespaceNotInjected: t('IST0102', 'NamespaceNotInjected', 'Info', 'A namespace is not enabled for Istio injection.'),
  SchemaValidationError: t('IST0106', 'SchemaValidationError', 'Error', 'The resource has a schema validation error.'),
  MisplacedAnnotation: t('IST0107', 'MisplacedAnnotation', 'Warning', 'An Istio annotation is applied to the wrong kind of resource.'),
  UnknownAnnotation: t('IST0108', 'UnknownAnnotation', 'Warning', 'An Istio annotation is not recognized for any kind of resource'),
  ConflictingMeshGatewayVirtualServiceHosts: t(
    'IST0109',
    'ConflictingMeshGatewayVirtualServiceHosts',
    'Error',
    'Conflicting hosts on VirtualServices associated with mesh gateway',
  ),
  ConflictingSidecarWorkloadSelectors: t('IST0110', 'ConflictingSidecarWorkloadSelectors', 'Error', 'A Sidecar resource selects the same workloads as another Sidecar resource'),
  MultipleSidecarsWithoutWorkloadSelectors: t(
    'IST0111',
    'MultipleSidecarsWithoutWorkloadSelectors',
    'Error',
    'More than one sidecar resource in a namespace has no workload selector',
  ),
  VirtualServiceDestinationPortSelectorRequired: t(
    'IST0112',
    'VirtualServiceDestinationPortSelectorRequired',
    'Error',
    'A VirtualService routes to a service with more than one port exposed, but does not specify which to use.',
  ),
  PortNameIsNotUnderNamingConvention: t(
    'IST0118',
    'PortNameIsNotUnderNamingConvention',
    'Info',
    'Port name is not under naming convention. Protocol detection is applied to the port.',
  ),
  NamespaceMultipleInjectionLabels: t('IST0123', 'NamespaceMultipleInjectionLabels', 'Warning', 'A namespace has more than one type of injection labels'),
  NoServerCertificateVerificationDestinationLevel: t(
    'IST0128',
    'NoServerCertificateVerificationDestinationLevel',
    'Warning',
    'No caCertificates are set in DestinationRule, this results in no verification of presented server certificate.',
  ),
  NoServerCertificateVerificationPortLevel: t(
    'IST0129',
    'NoServerCertificateVerificationPortLevel',
    'Warning',
    'No caCertificates are set in DestinationRule, this results in no verification of presented server certificate for traffic to a given port.',
  ),
  NoMatchingWorkloadsFound: t('IST0127', 'NoMatchingWorkloadsFound', 'Warning', "There aren't workloads matching the resource labels"),
  VirtualServiceUnreachableRule: t('IST0130', 'VirtualServiceUnreachableRule', 'Warning', 'A VirtualService rule will never be used because a previous rule uses the same match.'),
  VirtualServiceIneffectiveMatch: t('IST0131', 'VirtualServiceIneffectiveMatch', 'Info', 'A VirtualService rule match duplicates a match in a previous rule.'),
  VirtualServiceHostNotFoundInGateway: t('IST0132', 'VirtualServiceHostNotFoundInGateway', 'Warning', 'Host defined in VirtualService not found in Gateway.'),
  SchemaWarning: t('IST0133', 'SchemaWarning', 'Warning', 'The resource has a schema validation warning.'),
  ServiceEntryAddressesRequired: t('IST0134', 'ServiceEntryAddressesRequired', 'Warning', 'Virtual IP addresses are required for ports serving TCP (or unset) protocol'),
  DeprecatedAnnotation: t('IST0135', 'DeprecatedAnnotation', 'Info', 'A resource is using a deprecated Istio annotation.'),
  ConflictingGateways: t('IST0145', 'ConflictingGateways', 'Error', 'Gateway should not have the same selector, port and matched hosts of server'),
  InvalidTelemetryProvider: t('IST0157', 'InvalidTelemetryProvider', 'Warning', 'The Telemetry with empty providers will be ignored'),
  ConflictingTelemetryWorkloadSelectors: t(
    'IST0159',
    'ConflictingTelemetryWorkloadSelectors',
    'Error',
    'A Telemetry resource selects the same workloads as another Telemetry resource',
  ),
  MultipleTelemetriesWithoutWorkloadSelectors: t(
    'IST0160',
    'MultipleTelemetriesWithoutWorkloadSelectors',
    'Error',
    'More than one telemetry resource in a namespace has no workload selector',
  ),
  GatewayPortNotDefinedOnService: t('IST0162', 'GatewayPortNotDefinedOnService', 'Warning', 'Gateway port not exposed by service'),
} as const satisfies Record<string, MessageType>;

/** Every code Istio defines (for `--suppress`, which warns about unknown codes as istioctl does). */
export const ISTIO_CODES: ReadonlySet<string> = new Set(
  [
    1, 2, 101, 102, 103, 106, 107, 108, 109, 110, 111, 112, 113, 116, 118, 119, 122, 123, 125, 126, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142,
    143, 144, 145,
  ]
    .concat([146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 173, 174])
    .map((n) => `IST${String(n).padStart(4, '0')}`),
);

/** The resource a message is about, and where it was read from. */
export interface MessageResource {
  kind: string;
  namespace: string;
  name: string;
  /** A file path when read from a file; absent for objects read from the cluster. */
  file?: string;
  /** 0-based document index in the file. */
  document?: number;
  /** 1-based line of the field the message is about (or of the resource), when known. */
  line?: number;
}

export interface Message {
  type: MessageType;
  text: string;
  resource?: MessageResource;
  /** The field the message is about (`spec.http[0].route[0].destination.host`), for lines. */
  field?: string;
}

/** `VirtualService default/reviews`, as Istio's Origin.FriendlyName prints it. */
export function friendlyName(r: MessageResource): string {
  return r.namespace ? `${r.kind} ${r.namespace}/${r.name}` : `${r.kind} ${r.name}`;
}

/** `file.yaml:12`, or the file alone when the line is unknown; undefined for cluster objects. */
export function reference(r: MessageResource): string | undefined {
  if (r.file === undefined) return undefined;
  return r.line !== undefined ? `${r.file}:${r.line}` : r.file;
}

/** istioctl's log line: `Error [IST0101] (VirtualService default/x file.yaml:12) Referenced host not found: "foo"`. */
export function formatMessage(m: Message): string {
  let origin = '';
  if (m.resource) {
    const ref = reference(m.resource);
    origin = ` (${friendlyName(m.resource)}${ref !== undefined ? ` ${ref}` : ''})`;
  }
  return `${m.type.level} [${m.type.code}]${origin} ${m.text}`;
}

/** Istio's documentation page for a code, with istioctl's `ref`. */
export function documentationUrl(code: string): string {
  return `https://istio.io/latest/docs/reference/config/analysis/${code.toLowerCase()}/?ref=istioctl-analyze`;
}

/** The structured form istioctl prints for `-o json|yaml`. */
export function unstructured(m: Message): Record<string, string> {
  const out: Record<string, string> = { code: m.type.code, documentationUrl: documentationUrl(m.type.code), level: m.type.level, message: m.text };
  if (m.resource) {
    out['origin'] = friendlyName(m.resource);
    const ref = reference(m.resource);
    if (ref !== undefined) out['reference'] = ref;
  }
  return out;
}

/** Error before Warning before Info, then by code, then by resource (istioctl's order). */
export function compareMessages(a: Message, b: Message): number {
  const la = LEVEL_ORDER.indexOf(a.type.level);
  const lb = LEVEL_ORDER.indexOf(b.type.level);
  if (la !== lb) return la - lb;
  if (a.type.code !== b.type.code) return a.type.code < b.type.code ? -1 : 1;
  const ka = a.resource ? `${friendlyName(a.resource)} ${a.resource.file ?? ''} ${String(a.resource.line ?? 0).padStart(8, '0')}` : '';
  const kb = b.resource ? `${friendlyName(b.resource)} ${b.resource.file ?? ''} ${String(b.resource.line ?? 0).padStart(8, '0')}` : '';
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
}
