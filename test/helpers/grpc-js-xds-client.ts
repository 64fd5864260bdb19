/**
 * Child process: a proxyless gRPC client using @grpc/grpc-js-xds, driven by JSON lines.
 *
 * Run as `node --import tsx test/helpers/grpc-js-xds-client.ts <target> [insecure|xds]` with
 * GRPC_XDS_BOOTSTRAP set. `xds` uses XdsChannelCredentials (fallback insecure): clusters whose
 * xDS config carries an UpstreamTlsContext get mTLS from the bootstrap's certificate providers;
 * the default, `insecure`, never uses TLS. grpc-js-xds reads and caches its bootstrap once per process,
 * which is why each client runs in its own process.
 *
 * It opens ONE channel to <target> and keeps it for its whole life, so routing changes are
 * observed on a live xDS subscription. Protocol (one JSON object per line each way; see
 * xds-clients.ts for the types):
 *   stdout at start:  {"ready": true, "impl": "grpc-js-xds", "target": ...}
 *   stdin:  {"id": 1, "calls": 300, "metadata": {"end-user": "jason"}, "deadlineMs": 1000, "concurrency": 8}
 *   stdout: {"id": 1, "counts": {"reviews-v1": 300}, "errors": 0, "errorCodes": {}, "errorSamples": [], "serverSerials": {}}
 *   ("method" picks another unary method than /meshd.test.Echo/Who; "serverSerials" counts
 *   successful calls per serial of the server's TLS certificate, empty over plaintext)
 *   stdin:  {"id": 2, "op": "state"}   →  {"id": 2, "state": "READY"}
 * It exits when stdin closes. Only stdout carries protocol; logs go to stderr.
 */
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import * as readline from 'node:readline';

const WHO_METHOD = '/meshd.test.Echo/Who';
const MAX_CALLS = 10_000;
const MAX_SAMPLES = 5;

interface Command {
  id?: number;
  op?: 'calls' | 'state';
  calls?: number;
  metadata?: Record<string, string>;
  deadlineMs?: number;
  concurrency?: number;
  waitForReady?: boolean;
  staggerMs?: number;
  method?: string;
}

function send(obj: object): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function callOnce(
  client: grpc.Client,
  md: Record<string, string>,
  deadlineMs: number,
  waitForReady: boolean,
  method: string = WHO_METHOD,
): Promise<{ ok: true; who: string; serverSerial?: string } | { ok: false; code: number; message: string }> {
  const metadata = new grpc.Metadata(waitForReady ? { waitForReady: true } : undefined);
  for (const [k, v] of Object.entries(md)) metadata.set(k, v);
  return new Promise((resolve) => {
    const call = client.makeUnaryRequest<Buffer, Buffer>(
      method,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      metadata,
      { deadline: Date.now() + deadlineMs },
      (err, value) => {
        if (err) resolve({ ok: false, code: err.code ?? -1, message: `${err.code} ${err.details ?? err.message}` });
        else {
          const serverSerial = call.getAuthContext()?.sslPeerCertificate?.serialNumber;
          resolve({ ok: true, who: (value ?? Buffer.alloc(0)).toString('utf8'), ...(serverSerial ? { serverSerial } : {}) });
        }
      },
    );
  });
}

async function runCalls(client: grpc.Client, cmd: Command): Promise<object> {
  const total = Math.min(Math.max(0, Math.floor(cmd.calls ?? 1)), MAX_CALLS);
  const deadlineMs = Math.min(Math.max(1, cmd.deadlineMs ?? 1000), 30_000);
  const concurrency = Math.min(Math.max(1, Math.floor(cmd.concurrency ?? 8)), 64);
  const md = cmd.metadata ?? {};
  const counts: Record<string, number> = {};
  const errorCodes: Record<string, number> = {};
  const errorSamples: string[] = [];
  const serverSerials: Record<string, number> = {};
  let errors = 0;
  let next = 0;
  const stagger = Math.min(Math.max(0, cmd.staggerMs ?? 0), 1000);
  let nextStart = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      next++;
      if (stagger > 0) {
        // Successive calls start at least `stagger` ms apart, whichever worker starts them.
        const at = Math.max(Date.now(), nextStart);
        nextStart = at + stagger;
        if (at > Date.now()) await new Promise((r) => setTimeout(r, at - Date.now()));
      }
      const r = await callOnce(client, md, deadlineMs, cmd.waitForReady === true, cmd.method);
      if (r.ok) {
        counts[r.who] = (counts[r.who] ?? 0) + 1;
        if (r.serverSerial) serverSerials[r.serverSerial] = (serverSerials[r.serverSerial] ?? 0) + 1;
      } else {
        errors++;
        errorCodes[String(r.code)] = (errorCodes[String(r.code)] ?? 0) + 1;
        if (errorSamples.length < MAX_SAMPLES && !errorSamples.includes(r.message)) errorSamples.push(r.message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(total, 1)) }, worker));
  return { id: cmd.id, counts, errors, errorCodes, errorSamples, serverSerials };
}

function main(): void {
  const target = process.argv[2];
  if (!target) {
    process.stderr.write('usage: grpc-js-xds-client.ts <xds:///target>\n');
    process.exit(2);
  }
  grpcXds.register();
  const insecure = grpc.credentials.createInsecure();
  const creds = process.argv[3] === 'xds' ? new grpcXds.XdsChannelCredentials(insecure) : insecure;
  const client = new grpc.Client(target, creds);
  send({ ready: true, impl: 'grpc-js-xds', target });

  // Commands run one at a time, in order: the parent waits for each reply anyway.
  let chain: Promise<void> = Promise.resolve();
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on('line', (line) => {
    if (line.trim() === '') return;
    chain = chain.then(async () => {
      let cmd: Command;
      try {
        cmd = JSON.parse(line) as Command;
      } catch (e) {
        send({ error: `bad command: ${(e as Error).message}` });
        return;
      }
      try {
        if (cmd.op === 'state') {
          send({ id: cmd.id, state: grpc.connectivityState[client.getChannel().getConnectivityState(false)] });
        } else {
          send(await runCalls(client, cmd));
        }
      } catch (e) {
        send({ id: cmd.id, error: (e as Error).stack ?? String(e) });
      }
    });
  });
  rl.on('close', () => {
    void chain.finally(() => {
      client.close();
      process.exit(0);
    });
  });
}

main();
