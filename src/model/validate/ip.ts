/** IP address and CIDR checks (node:net parsing, which rejects leading zeros in IPv4). */
import { isIPv4, isIPv6 } from 'node:net';

export function isIP(s: string): boolean {
  return isIPv4(s) || isIPv6(s);
}

export function ipError(s: string): string | undefined {
  return isIP(s) ? undefined : `${JSON.stringify(s)} is not a valid IP address`;
}

export function ipv4Error(s: string): string | undefined {
  return isIPv4(s) ? undefined : `${JSON.stringify(s)} is not a valid IPv4 address`;
}

export function ipv6Error(s: string): string | undefined {
  return isIPv6(s) ? undefined : `${JSON.stringify(s)} is not a valid IPv6 address`;
}

/** Istio's ValidateIPSubnet: `a.b.c.d/nn`, `2001:db8::/64`, or a plain address. */
export function subnetError(s: string): string | undefined {
  const parts = s.split('/');
  if (parts.length === 1) return ipError(s);
  const [addr = '', bits = ''] = parts;
  const max = isIPv4(addr) ? 32 : isIPv6(addr) ? 128 : -1;
  const n = /^[0-9]{1,3}$/.test(bits) ? Number(bits) : -1;
  if (parts.length !== 2 || max < 0 || n < 0 || n > max) return `${JSON.stringify(s)} is not a valid CIDR block`;
  return undefined;
}
