/**
 * An HTTPS server on 127.0.0.1 serving JWKS and OpenID discovery documents for tests, with a
 * certificate from a CA the test makes (so clients must be told to trust it). Routes can be
 * changed while it runs; it counts requests, can answer slowly, never, or with any status.
 */
import { generateKeyPairSync } from 'node:crypto';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { type Pem, issue, makeCa } from './certs';

export interface Route {
  status?: number;
  body?: string;
  /** Answer after this long. */
  delayMs?: number;
  /** Never answer. */
  hang?: boolean;
  location?: string;
}

export class JwksServer {
  readonly routes = new Map<string, Route>();
  readonly hits = new Map<string, number>();
  private readonly sockets = new Set<import('node:stream').Duplex>();
  private server?: https.Server;
  port = 0;

  constructor(readonly pem: Pem) {}

  /** A CA and a server certificate for 127.0.0.1 (IP SAN) and localhost. */
  static material(): { ca: ReturnType<typeof makeCa>; server: Pem } {
    const ca = makeCa('jwks test CA');
    return { ca, server: issue(ca, ['localhost'], '127.0.0.1', ['127.0.0.1']) };
  }

  async listen(port = 0): Promise<this> {
    const server = https.createServer({ cert: this.pem.cert, key: this.pem.key }, (req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
      const r = this.routes.get(path);
      if (!r) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`no route ${path}`);
        return;
      }
      if (r.hang) return;
      const send = (): void => {
        res.writeHead(r.status ?? 200, { 'content-type': 'application/json', ...(r.location ? { location: r.location } : {}) }).end(r.body ?? '');
      };
      if (r.delayMs) setTimeout(send, r.delayMs);
      else send();
    });
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  url(path: string): string {
    return `https://127.0.0.1:${this.port}${path}`;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** A JWKS document with one fresh EC public key. */
export function ecJwks(kid: string): string {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }] });
}
