/**
 * Secret (v1), after Kubernetes' ValidateSecret: data keys, base64 values, the 1 MiB limit, and
 * the keys each well-known type requires (`kubernetes.io/tls` needs `tls.crt` and `tls.key`).
 * Messages name keys, never values: a Secret's contents (a private key, a token) must not end
 * up in logs, status or debug output, so the generic schema walker (which quotes values) is
 * not used for `data` and `stringData`.
 */
import type { ConfigObject } from '../objects';
import { Issues, isRecord, pathKey, str, typeName } from './common';
import { bool, checkSchema, open, str as strSchema } from './schema';

const MAX_SECRET_SIZE = 1024 * 1024;
const MAX_KEY_LENGTH = 253;
const BASE64_CHAR = /^[A-Za-z0-9+/]$/;

const secretSchema = open({ type: strSchema, immutable: bool });

/** Kubernetes' IsConfigMapKey, which Secret data keys follow. */
export function configKeyError(key: string): string | undefined {
  const q = JSON.stringify(key);
  if (key.length > MAX_KEY_LENGTH) return `invalid key ${q}: must be no more than ${MAX_KEY_LENGTH} characters`;
  if (!/^[-._a-zA-Z0-9]+$/.test(key)) {
    return `invalid key ${q}: a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name', 'KEY_NAME' or 'key-name')`;
  }
  if (key === '.') return 'invalid key ".": must not be \'.\'';
  if (key === '..') return 'invalid key "..": must not be \'..\'';
  if (key.startsWith('..')) return `invalid key ${q}: must not start with '..'`;
  return undefined;
}

/**
 * The decoded size of a base64 value as Kubernetes (Go's standard encoding, padded, line
 * breaks ignored) reads it, or an error that says where, never what, the problem is.
 */
export function base64Size(value: string): number | string {
  let chars = 0;
  let pad = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charAt(i);
    if (c === '\r' || c === '\n') continue;
    if (c === '=') {
      pad++;
      continue;
    }
    if (pad > 0 || !BASE64_CHAR.test(c)) return `illegal base64 data at input byte ${i}`;
    chars++;
  }
  if (pad > 2 || (chars + pad) % 4 !== 0) return 'illegal base64 data: the length is not a multiple of 4; is "=" padding missing?';
  return Math.floor((chars * 3) / 4);
}

interface Entry {
  field: 'data' | 'stringData';
  /** undefined when the value is not a string or not valid base64 (reported already). */
  value?: string;
  size: number;
}

export function validateSecret(obj: ConfigObject, issues: Issues): void {
  checkSchema(obj.body, secretSchema, '', issues);
  // the API server merges stringData into data (stringData wins) before validating
  const entries = new Map<string, Entry>();
  for (const field of ['data', 'stringData'] as const) {
    const map = obj.body[field];
    if (map === undefined || map === null) continue;
    if (!isRecord(map)) {
      issues.add(field, `must be a map from key to ${field === 'data' ? 'base64-encoded value' : 'string'} (got ${typeName(map)})`);
      continue;
    }
    for (const [key, value] of Object.entries(map)) {
      const p = pathKey(field, key);
      issues.addIf(p, configKeyError(key));
      if (typeof value !== 'string') {
        issues.add(p, value === null ? 'must not be null' : `must be a string (got ${typeName(value)})`);
        entries.set(key, { field, size: 0 });
        continue;
      }
      const size = field === 'data' ? base64Size(value) : Buffer.byteLength(value, 'utf8');
      if (typeof size === 'string') {
        issues.add(p, `value must be base64-encoded (${size}); use stringData for plain text`);
        entries.set(key, { field, size: 0 });
        continue;
      }
      entries.set(key, { field, value, size });
    }
  }
  const total = [...entries.values()].reduce((sum, e) => sum + e.size, 0);
  if (total > MAX_SECRET_SIZE) issues.add('data', `Secret data must be at most ${MAX_SECRET_SIZE} bytes in total (got ${total})`);
  checkType(obj, issues, entries);
}

/** The keys (and contents) each well-known Secret type requires. */
function checkType(obj: ConfigObject, issues: Issues, entries: ReadonlyMap<string, Entry>): void {
  const type = str(obj.body['type']) ?? 'Opaque';
  const require = (key: string): boolean => {
    if (entries.has(key)) return true;
    issues.add(pathKey('data', key), `data key ${JSON.stringify(key)} is required for type ${type}`);
    return false;
  };
  switch (type) {
    case 'kubernetes.io/tls':
      require('tls.crt');
      require('tls.key');
      return;
    case 'kubernetes.io/service-account-token': {
      const key = 'kubernetes.io/service-account.name';
      if (!obj.metadata.annotations[key]) issues.add(pathKey('metadata.annotations', key), `annotation is required for type ${type}`);
      return;
    }
    case 'kubernetes.io/dockercfg':
    case 'kubernetes.io/dockerconfigjson': {
      const key = type === 'kubernetes.io/dockercfg' ? '.dockercfg' : '.dockerconfigjson';
      const entry = entries.get(key);
      if (!require(key) || entry?.value === undefined) return;
      if (!isJsonObject(entry.field, entry.value)) issues.add(pathKey(entry.field, key), 'must be a JSON object (contents not shown)');
      return;
    }
    case 'kubernetes.io/basic-auth':
      if (!entries.has('username') && !entries.has('password')) {
        issues.add(pathKey('data', 'username'), `data key "username" or "password" is required for type ${type}`);
      }
      return;
    case 'kubernetes.io/ssh-auth': {
      const entry = entries.get('ssh-privatekey');
      if (entry === undefined || (entry.value !== undefined && entry.size === 0)) {
        issues.add(pathKey('data', 'ssh-privatekey'), `data key "ssh-privatekey" is required (and must not be empty) for type ${type}`);
      }
      return;
    }
  }
}

/** Whether a value parses as a JSON object. Parser messages quote the input, so they are dropped. */
function isJsonObject(field: Entry['field'], value: string): boolean {
  const text = field === 'data' ? Buffer.from(value, 'base64').toString('utf8') : value;
  try {
    const parsed: unknown = JSON.parse(text);
    return isRecord(parsed);
  } catch {
    return false;
  }
}
