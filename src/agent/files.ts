/**
 * Certificates as files for proxyless gRPC (its `file_watcher` certificate provider), and the gRPC
 * xDS bootstrap that points at them, as istio-agent writes both for proxyless gRPC pods.
 *
 * Each file is written whole to a temporary name in the same folder, flushed, then renamed over
 * the old one, so a reader never sees a torn file. The chain is written last: a reader that sees
 * the new chain also sees the new key and root.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { WorkloadCert } from './cert-manager';

export const CERT_CHAIN_FILE = 'cert-chain.pem';
export const KEY_FILE = 'key.pem';
export const ROOT_CERT_FILE = 'root-cert.pem';

/** Writes `content` to `file` through a temporary file and a rename, with `mode`. */
export function writeFileAtomic(file: string, content: string, mode: number): void {
  const tmp = stageFile(file, content, mode);
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** Writes and flushes `content` to a temporary file beside `file`; returns its name. */
function stageFile(file: string, content: string, mode: number): string {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    fs.writeFileSync(fd, content);
    fs.fchmodSync(fd, mode); // the umask may have narrowed or the caller widened it
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  return tmp;
}

export interface CertFiles {
  certChain: string;
  key: string;
  root: string;
}

export function certFiles(dir: string): CertFiles {
  return { certChain: path.join(dir, CERT_CHAIN_FILE), key: path.join(dir, KEY_FILE), root: path.join(dir, ROOT_CERT_FILE) };
}

/**
 * Writes root-cert.pem (0644), key.pem (0600), then cert-chain.pem (0644) into `dir`. All three
 * are written and flushed first and then renamed in a row, so a reader that opens the files one
 * by one (gRPC's file_watcher reads them in parallel every refresh) has only the time between two
 * renames, not between two writes and flushes, to see a new key beside an old chain.
 */
export function writeCertFiles(dir: string, cert: WorkloadCert): CertFiles {
  fs.mkdirSync(dir, { recursive: true });
  const f = certFiles(dir);
  const staged: Array<[string, string]> = [];
  try {
    staged.push([stageFile(f.root, cert.rootPem, 0o644), f.root]);
    staged.push([stageFile(f.key, cert.keyPem, 0o600), f.key]);
    staged.push([stageFile(f.certChain, cert.certChainPem, 0o644), f.certChain]);
    while (staged.length > 0) {
      const [tmp, file] = staged[0] as [string, string];
      fs.renameSync(tmp, file);
      staged.shift();
    }
  } finally {
    for (const [tmp] of staged) fs.rmSync(tmp, { force: true });
  }
  return f;
}

export interface GrpcBootstrapInput {
  /** meshd's xDS address (host:port). */
  xdsAddress: string;
  /** Plaintext xDS (15010); otherwise TLS with the workload certificate (gRFC A65 `tls` creds). */
  plaintext: boolean;
  node: { id: string; cluster?: string; metadata: Record<string, unknown>; locality?: Record<string, string> };
  /** Folder of cert-chain.pem, key.pem, root-cert.pem; without it no certificate provider. */
  certDir?: string;
  /** How often gRPC re-reads the files (default 900 s, istio-agent's). */
  refreshSeconds?: number;
}

/** The gRPC xDS bootstrap (GRPC_XDS_BOOTSTRAP), as istio-agent's grpcxds package shapes it. */
export function buildGrpcBootstrap(input: GrpcBootstrapInput): Record<string, unknown> {
  const files = input.certDir ? certFiles(path.resolve(input.certDir)) : undefined;
  const fileConfig = files
    ? { certificate_file: files.certChain, private_key_file: files.key, ca_certificate_file: files.root, refresh_interval: `${input.refreshSeconds ?? 900}s` }
    : undefined;
  const channelCreds =
    input.plaintext || !files
      ? [{ type: 'insecure' }]
      : [
          {
            type: 'tls',
            config: { certificate_file: files.certChain, private_key_file: files.key, ca_certificate_file: files.root, refresh_interval: fileConfig?.refresh_interval },
          },
        ];
  return {
    xds_servers: [{ server_uri: input.xdsAddress, channel_creds: channelCreds, server_features: ['xds_v3'] }],
    // grpc-js-xds refuses a bootstrap whose node has no `locality` (an empty one will do).
    node: { ...input.node, locality: input.node.locality ?? {}, metadata: { ...input.node.metadata, GENERATOR: 'grpc' } },
    ...(fileConfig ? { certificate_providers: { default: { plugin_name: 'file_watcher', config: fileConfig } } } : {}),
    server_listener_resource_name_template: 'xds.istio.io/grpc/lds/inbound/%s',
  };
}
