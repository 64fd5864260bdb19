/**
 * Port 15012's TLS listener. meshd runs it (a node:tls server) instead of grpc-js, and hands each
 * connection to a gRPC server through a connection injector, for one reason: the certificate
 * service must see every client certificate a caller presents, including those TLS could not
 * verify. grpc-js shows a handler only certificates that passed verification, so an expired
 * workload certificate or one from a foreign CA looked like no certificate at all and was counted
 * as `no_credential`.
 *
 * TLS here still asks for a client certificate and checks it against the CA's roots (and
 * intermediates) without requiring it, exactly as grpc-js did: `getAuthContext()` keeps meaning
 * "verified by TLS" for ADS. The handshake proves the client holds the certificate's key either
 * way. Beside that, the certificate each connection presented is kept by peer address
 * (`peerCertificate(call.getPeer())`) for the CA's authenticator, which does its own complete
 * check and names the reason (expired, untrusted, …) when it refuses.
 */
import type { AddressInfo, Socket } from 'node:net';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';

type CertificateProvider = grpc.experimental.CertificateProvider;
type CaCertificateUpdate = grpc.experimental.CaCertificateUpdate;
type IdentityCertificateUpdate = grpc.experimental.IdentityCertificateUpdate;

export interface SecurePortOptions {
  /** The serving certificate and the CA certificates client certificates are checked against (ServingCertificate). */
  certificates: CertificateProvider;
  log: Logger;
}

/** The key grpc-js's `call.getPeer()` gives a TCP connection. */
const peerOf = (s: Socket): string => `${s.remoteAddress}:${s.remotePort}`;

export class SecurePort {
  private readonly server: tls.Server;
  /** Client certificate (DER) of each open connection, by peer address. */
  private readonly clientCerts = new Map<string, { socket: tls.TLSSocket; der: Buffer }>();
  private readonly sockets = new Set<tls.TLSSocket>();
  private identity: IdentityCertificateUpdate | undefined;
  private caCertificate: Buffer | undefined;
  private injector: grpc.ConnectionInjector | undefined;
  private closed = false;

  constructor(private readonly opts: SecurePortOptions) {
    this.server = tls.createServer({ ALPNProtocols: ['h2'], requestCert: true, rejectUnauthorized: false });
    // Until the serving certificate and the roots are known, connections are dropped (as grpc-js does).
    this.server.prependListener('connection', (socket: Socket) => {
      if (!this.identity || !this.caCertificate || this.closed) socket.destroy();
    });
    this.server.on('secureConnection', (socket: tls.TLSSocket) => this.accept(socket));
    this.server.on('tlsClientError', (err: Error) => opts.log.debug({ error: err.message }, 'TLS handshake failed on the secure xDS port'));
    opts.certificates.addIdentityCertificateListener(this.onIdentity);
    opts.certificates.addCaCertificateListener(this.onCaCertificate);
  }

  private readonly onIdentity = (update: IdentityCertificateUpdate | null): void => {
    this.identity = update ?? undefined;
    this.refreshContext();
  };

  private readonly onCaCertificate = (update: CaCertificateUpdate | null): void => {
    this.caCertificate = update?.caCertificate;
    this.refreshContext();
  };

  /** New connections get the current certificate and roots; open ones keep theirs. */
  private refreshContext(): void {
    if (!this.identity || !this.caCertificate) return;
    try {
      this.server.setSecureContext({ key: this.identity.privateKey, cert: this.identity.certificate, ca: this.caCertificate });
    } catch (err) {
      // Never the key itself: only what OpenSSL said.
      this.opts.log.error({ error: err instanceof Error ? err.message : String(err) }, 'the secure xDS port cannot use the new serving certificate');
    }
  }

  private accept(socket: tls.TLSSocket): void {
    // Socket errors also reach the HTTP/2 session; without a listener here they would be thrown (nodejs/node#35824).
    socket.on('error', () => undefined);
    const injector = this.injector;
    if (!injector || this.closed) {
      socket.destroy();
      return;
    }
    const peer = peerOf(socket);
    const raw = socket.getPeerCertificate()?.raw;
    if (raw && raw.length > 0) this.clientCerts.set(peer, { socket, der: Buffer.from(raw) });
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      if (this.clientCerts.get(peer)?.socket === socket) this.clientCerts.delete(peer);
    });
    injector.injectConnection(socket);
  }

  /** The client certificate (DER) presented on the connection of `peer` (`call.getPeer()`), verified by TLS or not. */
  peerCertificate(peer: string): Buffer | undefined {
    return this.clientCerts.get(peer)?.der;
  }

  /** Listens on host:port and hands every TLS connection to `injector`; resolves to the bound port. */
  listen(host: string, port: number, injector: grpc.ConnectionInjector): Promise<number> {
    this.injector = injector;
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        this.server.on('error', (err: Error) => this.opts.log.error({ error: err.message }, 'secure xDS port error'));
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops listening and ends the connections still open (close the gRPC server first, for a graceful end). */
  async close(): Promise<void> {
    this.closed = true;
    this.opts.certificates.removeIdentityCertificateListener(this.onIdentity);
    this.opts.certificates.removeCaCertificateListener(this.onCaCertificate);
    const closing = this.server.listening ? new Promise<void>((resolve) => this.server.close(() => resolve())) : Promise.resolve();
    for (const s of this.sockets) s.destroy();
    await closing;
  }
}
