/**
 * Pieces of the end-to-end security test: a config folder with an `echo` gRPC server workload
 * and a `sleep` client workload, `meshd agent` processes that get each workload's certificate
 * from meshd's CA with a service-account JWT, and the xDS-enabled server as a child process
 * (`xds-server-child.ts`).
 *
 * Both workloads run on 127.0.0.1; meshd tells them apart by the pod name in the node ID the
 * agent puts in each bootstrap (`sidecar~127.0.0.1~<pod>.<ns>~…`) and by their LABELS.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { SignJWT, type CryptoKey } from 'jose';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(REPO_ROOT, 'src', 'main.ts');
const SERVER_CHILD = path.join(__dirname, 'xds-server-child.ts');
const KEEP = 64 * 1024;

export const NS = 'default';
export const ECHO_FQDN = `echo.${NS}.svc.cluster.local`;
export const ECHO_SERVICE_PORT = 7070;
export const ECHO_TARGET = `xds:///${ECHO_FQDN}:${ECHO_SERVICE_PORT}`;
export const WHO = '/meshd.test.Echo/Who';
export const PING = '/meshd.test.Echo/Ping';
export const JWT_ISSUER = 'https://issuer.security-e2e.test';
export const JWT_AUDIENCE = 'istio-ca';

export interface Workload {
  pod: string;
  serviceAccount: string;
  labels: Record<string, string>;
  /** Default NS. */
  namespace?: string;
}
export const ECHO: Workload = { pod: 'echo-0', serviceAccount: 'echo', labels: { app: 'echo', 'security.istio.io/tlsMode': 'istio' } };
export const SLEEP: Workload = { pod: 'sleep-0', serviceAccount: 'sleep', labels: { app: 'sleep', 'security.istio.io/tlsMode': 'istio' } };

export function spiffe(w: Workload, trustDomain = 'cluster.local'): string {
  return `spiffe://${trustDomain}/ns/${w.namespace ?? NS}/sa/${w.serviceAccount}`;
}

/** A free 127.0.0.1 port, found by binding port 0 (XdsServer needs a concrete port to name its listener). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export function pod(w: Workload): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: w.pod, namespace: w.namespace ?? NS, labels: w.labels },
    spec: { serviceAccountName: w.serviceAccount, containers: [{ name: 'app' }] },
    status: { phase: 'Running', podIP: '127.0.0.1', podIPs: [{ ip: '127.0.0.1' }] },
  };
}

/** Service `echo` (port 7070 → the server's real port), its pods, endpoints, and ISTIO_MUTUAL to it. */
export function meshObjects(serverPort: number): object[] {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } },
    pod(ECHO),
    pod(SLEEP),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo', namespace: NS },
      spec: { clusterIP: '10.96.70.70', selector: { app: 'echo' }, ports: [{ name: 'grpc', port: ECHO_SERVICE_PORT, targetPort: serverPort }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'echo-0', namespace: NS, labels: { 'kubernetes.io/service-name': 'echo' } },
      addressType: 'IPv4',
      ports: [{ name: 'grpc', port: serverPort, protocol: 'TCP' }],
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: ECHO.pod, namespace: NS } }],
    },
    // Proxyless clients get mTLS from a DestinationRule (as with istiod's grpcgen), not auto mTLS.
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'echo', namespace: NS },
      spec: { host: 'echo', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } },
    },
  ];
}

export function peerAuthentication(mode: 'STRICT' | 'DISABLE'): object {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name: 'echo', namespace: NS },
    spec: { selector: { matchLabels: { app: 'echo' } }, mtls: { mode } },
  };
}

export function denyPath(p: string, name = 'deny-who'): object {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: NS },
    spec: { selector: { matchLabels: { app: 'echo' } }, action: 'DENY', rules: [{ to: [{ operation: { paths: [p] } }] }] },
  };
}

/** A service-account token as Kubernetes would mint it for the CA's audience. */
export function mintToken(key: CryptoKey, sa: string, namespace = NS): Promise<string> {
  return new SignJWT({ sub: `system:serviceaccount:${namespace}:${sa}` })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(JWT_ISSUER)
    .setAudience(JWT_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(key);
}

/** Serial of the leaf in a cert-chain.pem file. */
export function leafSerial(file: string): string {
  return new X509Certificate(fs.readFileSync(file)).serialNumber;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs: number, diag: () => string): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`${what} not within ${timeoutMs} ms\n${diag()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function collect(child: ChildProcessWithoutNullStreams, into: { text: string }): void {
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (into.text = (into.text + d).slice(-KEEP)));
}

async function stop(child: ChildProcessWithoutNullStreams, how: 'stdin' | 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (how === 'stdin') child.stdin.end();
  else child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 4000);
  await exited;
  clearTimeout(t);
}

export interface AgentProcess {
  readonly certDir: string;
  readonly bootstrapFile: string;
  /** Serial of the leaf in cert-chain.pem right now. */
  serial(): string;
  /** Everything the agent logged (stdout and stderr, last 64 KiB). */
  output(): string;
  close(): Promise<void>;
}

/** `meshd agent` for one workload: first certificate over plaintext 15010 (meshd with plaintextCa) with its JWT, verified against `rootPem`. */
export async function startAgentProcess(o: {
  dir: string;
  xdsPort: number;
  w: Workload;
  token: string;
  ttl: string;
  rootPem: string;
  trustDomain?: string;
}): Promise<AgentProcess> {
  const dir = path.join(o.dir, o.w.pod);
  fs.mkdirSync(dir, { recursive: true });
  const tokenFile = path.join(dir, 'istio-token');
  fs.writeFileSync(tokenFile, o.token);
  const rootFile = path.join(dir, 'root-cert.pem');
  fs.writeFileSync(rootFile, o.rootPem);
  const labelsFile = path.join(dir, 'labels');
  fs.writeFileSync(
    labelsFile,
    Object.entries(o.w.labels)
      .map(([k, v]) => `${k}="${v}"`)
      .join('\n') + '\n',
  );
  const certDir = path.join(dir, 'certs');
  const bootstrapFile = path.join(dir, 'grpc-bootstrap.json');
  const args = [
    '--import',
    'tsx',
    MAIN,
    'agent',
    '--plaintext',
    '--ca-address',
    `127.0.0.1:${o.xdsPort}`,
    '--token-file',
    tokenFile,
    '--ca-root-cert',
    rootFile,
    '--labels-file',
    labelsFile,
    '--output-dir',
    certDir,
    '--grpc-bootstrap',
    bootstrapFile,
    '--no-sds',
    '--cert-ttl',
    o.ttl,
    ...(o.trustDomain ? ['--trust-domain', o.trustDomain] : []),
  ];
  const env = { ...process.env, POD_NAME: o.w.pod, POD_NAMESPACE: o.w.namespace ?? NS, SERVICE_ACCOUNT: o.w.serviceAccount, INSTANCE_IP: '127.0.0.1' };
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: 'pipe' });
  const out = { text: '' };
  collect(child, out);
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => (out.text = (out.text + d).slice(-KEEP)));
  const chain = path.join(certDir, 'cert-chain.pem');
  try {
    await waitFor(
      () => fs.existsSync(chain) && fs.existsSync(bootstrapFile),
      `${o.w.pod} agent's first certificate`,
      20_000,
      () => `exit ${child.exitCode}; output:\n${out.text}`,
    );
  } catch (e) {
    await stop(child, 'SIGTERM');
    throw e;
  }
  return { certDir, bootstrapFile, serial: () => leafSerial(chain), output: () => out.text, close: () => stop(child, 'SIGTERM') };
}

/** What the server child counted (see xds-server-child.ts). */
export interface ServerStats {
  calls: Record<string, number>;
  peers: Record<string, number>;
  clientSerials: Record<string, number>;
  transports: Record<string, number>;
  servingStatus: string[];
}

export interface XdsServerProcess {
  readonly port: number;
  stats(): Promise<ServerStats>;
  /** Returns the stats before zeroing them. */
  reset(): Promise<ServerStats>;
  stderr(): string;
  close(): Promise<void>;
}

/**
 * The XdsServer child on 127.0.0.1:<port>, with its workload's agent bootstrap. Resolves once the
 * server is serving (it has meshd's listener for its port).
 */
export async function startXdsServerProcess(o: { port: number; bootstrapFile: string; maxConnectionAgeMs?: number; env?: Record<string, string> }): Promise<XdsServerProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env, GRPC_XDS_BOOTSTRAP: o.bootstrapFile };
  delete env['GRPC_XDS_BOOTSTRAP_CONFIG'];
  // grpc-js-xds 1.14 keeps xDS RBAC behind this flag; without it the server refuses (does not
  // serve) listeners that carry RBAC filters, so a DENY policy could never be enforced.
  env['GRPC_XDS_EXPERIMENTAL_RBAC'] = 'true';
  Object.assign(env, o.env);
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER_CHILD, String(o.port), String(o.maxConnectionAgeMs ?? 0)], { cwd: REPO_ROOT, env, stdio: 'pipe' });
  child.stdin.on('error', () => undefined);
  const err = { text: '' };
  collect(child, err);
  let ready = false;
  let nextId = 1;
  const waiting = new Map<number, (m: Record<string, unknown>) => void>();
  readline.createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(line) as Record<string, unknown>;
    } catch {
      err.text += `[stdout] ${line}\n`;
      return;
    }
    if (m['ready'] === true) ready = true;
    const id = typeof m['id'] === 'number' ? m['id'] : -1;
    waiting.get(id)?.(m);
    waiting.delete(id);
  });
  try {
    await waitFor(
      () => ready || child.exitCode !== null,
      'XdsServer serving',
      20_000,
      () => `stderr:\n${err.text}`,
    );
    if (!ready) throw new Error(`XdsServer exited with ${child.exitCode}\n${err.text}`);
  } catch (e) {
    await stop(child, 'stdin');
    throw e;
  }
  const ask = (op: string): Promise<ServerStats> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const t = setTimeout(() => reject(new Error(`server did not answer ${op}\n${err.text}`)), 5000);
      waiting.set(id, (m) => {
        clearTimeout(t);
        resolve(m['stats'] as ServerStats);
      });
      child.stdin.write(JSON.stringify({ id, op }) + '\n');
    });
  return { port: o.port, stats: () => ask('stats'), reset: () => ask('reset'), stderr: () => err.text, close: () => stop(child, 'stdin') };
}
