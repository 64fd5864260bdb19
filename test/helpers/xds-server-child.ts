/**
 * Child process: an xDS-enabled gRPC server (@grpc/grpc-js-xds `XdsServer`), driven by JSON lines.
 *
 * Run as `node --import tsx test/helpers/xds-server-child.ts <port> [maxConnectionAgeMs]` with
 * GRPC_XDS_BOOTSTRAP set to the bootstrap its workload's agent wrote. It binds
 * `127.0.0.1:<port>` with XdsServerCredentials (fallback insecure), so TLS and RBAC come from the
 * listener meshd serves for `xds.istio.io/grpc/lds/inbound/127.0.0.1:<port>`, and the certificates
 * from the bootstrap's `file_watcher` provider.
 *
 * Service `meshd.test.Echo` (identity serializers on Buffers, no .proto):
 *   Who  → the caller's SPIFFE ID as the server saw it in the client certificate (`none` over
 *          plaintext), so a client's counts show which identity reached the server;
 *   Ping → `pong`.
 * With a max connection age, connections are closed (GOAWAY) after that long, so clients make
 * new TLS handshakes during a test and rotated certificates are actually used.
 *
 * Protocol (one JSON object per line; only stdout carries it, logs go to stderr):
 *   stdout once serving:   {"ready": true, "port": N}
 *   stdin  {"id": 1, "op": "stats"} → {"id": 1, "stats": {...ServerStats}}
 *   stdin  {"id": 2, "op": "reset"} → {"id": 2, "stats": {...before the reset}}
 * It shuts down and exits when stdin closes.
 */
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import * as readline from 'node:readline';
import type { ServerStats } from './security-mesh';

const ECHO_SERVICE = 'meshd.test.Echo';

function emptyStats(): ServerStats {
  return { calls: {}, peers: {}, clientSerials: {}, transports: {}, servingStatus: [] };
}

function send(obj: object): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function bump(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1;
}

/** The URI SAN of a peer certificate (`URI:spiffe://…, DNS:…` in Node's notation). */
function spiffeOf(san: string | undefined): string {
  const uri = (san ?? '').split(', ').find((e) => e.startsWith('URI:'));
  return uri ? uri.slice(4) : 'none';
}

const identity = (b: Buffer): Buffer => b;

function method(name: string): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: `/${ECHO_SERVICE}/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

function main(): void {
  const port = Number(process.argv[2]);
  const maxAge = Number(process.argv[3] ?? 0);
  if (!Number.isInteger(port) || port <= 0) {
    process.stderr.write('usage: xds-server-child.ts <port> [maxConnectionAgeMs]\n');
    process.exit(2);
  }
  // register() also registers the HTTP filters (router, RBAC) the server's listener validation needs.
  grpcXds.register();
  let stats = emptyStats();
  const record = (call: grpc.ServerUnaryCall<Buffer, Buffer>, name: string): string => {
    const auth = call.getAuthContext();
    const cert = auth.sslPeerCertificate;
    const peer = spiffeOf(cert?.subjectaltname);
    bump(stats.calls, name);
    bump(stats.peers, peer);
    bump(stats.transports, auth.transportSecurityType ?? 'insecure');
    if (cert?.serialNumber) bump(stats.clientSerials, cert.serialNumber);
    return peer;
  };
  const options: grpc.ServerOptions = maxAge > 0 ? { 'grpc.max_connection_age_ms': maxAge, 'grpc.max_connection_age_grace_ms': 5000 } : {};
  const server = new grpcXds.XdsServer(options);
  server.addService(
    { Who: method('Who'), Ping: method('Ping') },
    {
      Who: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(record(call, 'Who'))),
      Ping: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        record(call, 'Ping');
        cb(null, Buffer.from('pong'));
      },
    },
  );
  const address = `127.0.0.1:${port}`;
  server.bindAsync(address, new grpcXds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()), (err, bound) => {
    if (err) {
      process.stderr.write(`bind failed: ${err.message}\n`);
      process.exit(1);
    }
    send({ ready: true, port: bound });
  });
  server.addServingStateListener(address, (s) => {
    stats.servingStatus = [...stats.servingStatus, `${s.code} ${s.details}`].slice(-20);
  });

  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on('line', (line) => {
    if (line.trim() === '') return;
    let cmd: { id?: number; op?: string };
    try {
      cmd = JSON.parse(line) as { id?: number; op?: string };
    } catch (e) {
      send({ error: `bad command: ${(e as Error).message}` });
      return;
    }
    const current = stats;
    if (cmd.op === 'reset') stats = { ...emptyStats(), servingStatus: current.servingStatus };
    if (cmd.op === 'stats' || cmd.op === 'reset') send({ id: cmd.id, stats: current });
    else send({ id: cmd.id, error: `unknown op ${String(cmd.op)}` });
  });
  rl.on('close', () => {
    const force = setTimeout(() => {
      server.forceShutdown();
      process.exit(0);
    }, 2000);
    server.tryShutdown(() => {
      clearTimeout(force);
      process.exit(0);
    });
  });
}

main();
