/**
 * Name syntaxes: Kubernetes (RFC 1123 / 1035 labels and subdomains, IANA service names,
 * label keys and values) and Istio's hostnames (which, unlike Kubernetes names, allow upper
 * case and a wildcard first label). Functions return an error message, or undefined when valid.
 */

const K8S_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const K8S_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const K8S_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const ISTIO_LABEL = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const ISTIO_WILDCARD_LABEL = /^(\*|(\*|\*-)?[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;

/** RFC 1123 label as Kubernetes uses it (lower case, at most 63 characters). */
export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && K8S_LABEL.test(s);
}

export function dnsLabelError(s: string): string | undefined {
  if (isDnsLabel(s)) return undefined;
  return `${JSON.stringify(s)} is not a valid DNS label: use at most 63 lower-case letters, digits or '-', starting and ending with a letter or digit`;
}

export function dns1035LabelError(s: string): string | undefined {
  if (s.length <= 63 && K8S_1035_LABEL.test(s)) return undefined;
  return `${JSON.stringify(s)} is not a valid DNS-1035 label: use at most 63 lower-case letters, digits or '-', starting with a letter and ending with a letter or digit`;
}

export function dnsSubdomainError(s: string): string | undefined {
  if (s.length <= 253 && K8S_SUBDOMAIN.test(s)) return undefined;
  return `${JSON.stringify(s)} is not a valid DNS subdomain: use at most 253 lower-case letters, digits, '-' or '.', starting and ending with a letter or digit`;
}

/** IANA_SVC_NAME: the named form of a container port (`http`, `grpc-web`, …). */
export function ianaSvcNameError(s: string): string | undefined {
  if (s.length === 0 || s.length > 15) return `port name ${JSON.stringify(s)} must be 1 to 15 characters`;
  if (!/^[a-z0-9-]+$/.test(s)) return `port name ${JSON.stringify(s)} may contain only lower-case letters, digits and '-'`;
  if (!/[a-z]/.test(s)) return `port name ${JSON.stringify(s)} must contain at least one letter`;
  if (s.startsWith('-') || s.endsWith('-') || s.includes('--')) {
    return `port name ${JSON.stringify(s)} must not start or end with '-' or contain '--'`;
  }
  return undefined;
}

/** A label or annotation key: an optional DNS-subdomain prefix and `/`, then a qualified name. */
export function labelKeyError(k: string): string | undefined {
  const slash = k.indexOf('/');
  const prefix = slash >= 0 ? k.slice(0, slash) : '';
  const name = slash >= 0 ? k.slice(slash + 1) : k;
  if (slash >= 0 && (prefix.length === 0 || dnsSubdomainError(prefix) !== undefined)) {
    return `invalid key ${JSON.stringify(k)}: the prefix before '/' must be a DNS subdomain`;
  }
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    return `invalid key ${JSON.stringify(k)}: the name must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

export function labelValueError(v: string): string | undefined {
  if (v.length <= 63 && LABEL_VALUE.test(v)) return undefined;
  return `invalid label value ${JSON.stringify(v)}: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (or empty)`;
}

// ---- Istio hostnames ----

/** Istio's DNS label: like RFC 1123 but case-insensitive. */
export function isIstioDnsLabel(s: string): boolean {
  return s.length <= 63 && ISTIO_LABEL.test(s);
}

function dnsLabelsError(domain: string, labels: string[]): string | undefined {
  const last = labels[labels.length - 1] ?? '';
  if (/^[0-9]+$/.test(last)) {
    return `domain name ${JSON.stringify(domain)} invalid (top level domain ${JSON.stringify(last)} cannot be all-numeric)`;
  }
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i] ?? '';
    // a trailing dot (`istio.io.`) is allowed
    if (i === labels.length - 1 && label === '') return undefined;
    if (!isIstioDnsLabel(label)) return `domain name ${JSON.stringify(domain)} invalid (label ${JSON.stringify(label)} invalid)`;
  }
  return undefined;
}

function preconditionError(name: string): string | undefined {
  if (name.length === 0) return 'empty domain name not allowed';
  if (name.length > 255) return `domain name ${JSON.stringify(name)} too long (max 255)`;
  return undefined;
}

/** Istio's ValidateFQDN: dot-separated DNS labels; the last label may not be all digits. */
export function fqdnError(name: string): string | undefined {
  return preconditionError(name) ?? dnsLabelsError(name, name.split('.'));
}

/** Istio's ValidateWildcardDomain: an FQDN whose first label may be `*`, `*foo` or `*-foo`. */
export function wildcardDomainError(name: string): string | undefined {
  const pre = preconditionError(name);
  if (pre !== undefined) return pre;
  const dot = name.indexOf('.');
  const first = dot >= 0 ? name.slice(0, dot) : name;
  if (!(first.length <= 63 && ISTIO_WILDCARD_LABEL.test(first))) {
    return `domain name ${JSON.stringify(name)} invalid (label ${JSON.stringify(first)} invalid)`;
  }
  return dot >= 0 ? dnsLabelsError(name, name.slice(dot + 1).split('.')) : undefined;
}

/**
 * Istio's host.Name.Matches: whether two (possibly wildcard) hostnames overlap, e.g.
 * `*.foo.com` and `bar.foo.com`, or `*` and anything.
 */
export function hostsOverlap(a: string, b: string): boolean {
  const aw = a.startsWith('*');
  const bw = b.startsWith('*');
  if (!aw && !bw) return a === b;
  if (aw && bw) {
    const [longer, shorter] = a.length >= b.length ? [a, b] : [b, a];
    return longer.endsWith(shorter.slice(1));
  }
  const [wild, plain] = aw ? [a, b] : [b, a];
  return plain.endsWith(wild.slice(1));
}
