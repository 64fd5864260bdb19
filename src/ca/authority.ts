/**
 * meshd's CertificateAuthority, with istiod's two root modes:
 *
 * - self-signed: a root made on first start and kept in a RootStore (`istio-ca-secret`, or a
 *   folder). Only a replica allowed to write (the leader) creates or rotates it; the others wait
 *   for it and re-read it. When the root has less than `rootGracePercent` of its life left, a new
 *   root (new key) replaces it for signing, and the bundle carries old and new until
 *   `rootOverlapSeconds` have passed (or the old one expires).
 * - plug-in: `cacerts` (folder or Secret) read at start and re-read on change (watched) or on the
 *   periodic check; a replaced CA signs from then on, without a restart. Bad material is refused
 *   and the previous CA keeps signing.
 */
import type { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { toPem } from './der';
import { issueFromCsr } from './issue';
import { type RootMaterial, RootMaterialError, type SigningCa, generateSelfSignedRoot, loadSigningCa, pemOf, rotationDue, selfSignedBundle } from './roots';
import type { RootStore } from './root-store';
import { SignPool } from './sign-pool';
import { CaError, type CertificateAuthority, type SignRequest, type SignedCertificate } from './types';

const DAY = 86_400;
export const CA_DEFAULTS = Object.freeze({
  trustDomain: 'cluster.local',
  defaultTtlSeconds: DAY,
  maxTtlSeconds: 90 * DAY,
  rootTtlSeconds: 3650 * DAY,
  rootGracePercent: 20,
  rootKeySize: 2048,
  checkIntervalMs: 60_000,
  waitPollMs: 1_000,
  backdateSeconds: 120,
  signWorkers: 0,
  signQueue: 1024,
});

const GRPC = { INVALID_ARGUMENT: 3, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;

export interface AuthorityOptions {
  /** `self-signed`: create/rotate in `store`; `plugin`: read `store` (cacerts) and follow its changes. */
  mode: 'self-signed' | 'plugin';
  store: RootStore;
  log: Logger;
  trustDomain?: string;
  /** Self-signed mode: may this replica create or rotate the root? Default always (one replica). */
  mayWrite?: () => boolean;
  defaultTtlSeconds?: number;
  maxTtlSeconds?: number;
  rootTtlSeconds?: number;
  /** Rotate when less than this percentage of the root's lifetime is left (istiod: 20). */
  rootGracePercent?: number;
  /** How long the previous root stays in the bundle after a rotation. Default maxTtlSeconds. */
  rootOverlapSeconds?: number;
  rootKeySize?: number;
  /** Re-read the store (and rotate if due) this often. 0 turns the timer off (tests call check()). */
  checkIntervalMs?: number;
  /** A replica that may not write polls for the root this often at start. */
  waitPollMs?: number;
  /** Leaf notBefore is this far in the past (clock skew). */
  backdateSeconds?: number;
  /** Worker threads that verify CSRs and sign (sign-pool.ts); 0 (the default) signs on the calling thread. */
  signWorkers?: number;
  /** With workers: requests in flight before new ones are refused (RESOURCE_EXHAUSTED). Default 1024. */
  signQueue?: number;
  /** The clock; default the system's. */
  now?: () => Date;
  /** Called with the new bundle whenever it changes (e.g. to republish istio-ca-root-cert). */
  onRootsChanged?: (bundlePem: string) => void;
  /** Aborts waiting for the root at start. */
  signal?: AbortSignal;
}

type Settings = Required<Omit<AuthorityOptions, 'onRootsChanged' | 'signal' | 'rootOverlapSeconds'>> & { rootOverlapSeconds: number };

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('aborted while waiting for the CA root'));
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(new Error('aborted while waiting for the CA root'))), { once: true });
  });

const sameMaterial = (a: RootMaterial | undefined, b: RootMaterial): boolean =>
  !!a && a.caCertPem === b.caCertPem && a.caKeyPem === b.caKeyPem && a.rootCertPem === b.rootCertPem && a.certChainPem === b.certChainPem;

export class MeshdAuthority implements CertificateAuthority {
  readonly trustDomain: string;
  private readonly s: Settings;
  private readonly log: Logger;
  private material: RootMaterial | undefined;
  private signing: SigningCa | undefined;
  private lastBundle = '';
  private checking: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  private readonly pool: SignPool | undefined;

  private constructor(private readonly opts: AuthorityOptions) {
    const o = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as Partial<AuthorityOptions>;
    const maxTtl = o.maxTtlSeconds ?? CA_DEFAULTS.maxTtlSeconds;
    this.s = {
      ...CA_DEFAULTS,
      mayWrite: () => true,
      now: () => new Date(),
      rootOverlapSeconds: maxTtl,
      ...(o as AuthorityOptions),
    } as Settings;
    this.trustDomain = this.s.trustDomain;
    this.log = opts.log.child({ component: 'ca' });
    this.pool = this.s.signWorkers > 0 ? new SignPool({ workers: this.s.signWorkers, maxQueue: this.s.signQueue, log: this.log }) : undefined;
    if (this.pool) this.log.info({ workers: this.s.signWorkers, queue: this.s.signQueue }, 'CSRs are verified and signed on worker threads');
  }

  /** Loads (or, self-signed and allowed, creates) the root, then starts watching. */
  static async start(opts: AuthorityOptions): Promise<MeshdAuthority> {
    const ca = new MeshdAuthority(opts);
    await ca.init();
    ca.unwatch = opts.store.watch?.(() => void ca.check().catch(() => undefined));
    if (ca.s.checkIntervalMs > 0) {
      ca.timer = setInterval(() => void ca.check().catch(() => undefined), ca.s.checkIntervalMs);
      ca.timer.unref();
    }
    return ca;
  }

  private async init(): Promise<void> {
    const { store, log } = { store: this.opts.store, log: this.log };
    if (this.s.mode === 'plugin') {
      const m = await store.load();
      if (!m) throw new RootMaterialError(`no plug-in CA in ${store.description}`);
      this.adopt(m);
      return;
    }
    let waited = false;
    for (;;) {
      const m = await store.load();
      if (m) return this.adopt(m);
      if (this.s.mayWrite()) {
        const root = this.newRoot();
        await store.save({ caCertPem: root.certPem, caKeyPem: root.keyPem, rootCertPem: root.certPem, certChainPem: '' });
        const saved = await store.load();
        if (!saved) throw new RootMaterialError(`the self-signed root written to ${store.description} cannot be read back`);
        this.adopt(saved);
        log.info({ store: store.description, root: this.signing?.cert.fingerprint256, created: saved.caCertPem === root.certPem }, 'self-signed root ready');
        return;
      }
      if (!waited) log.info({ store: store.description }, 'waiting for the leader to create the self-signed root');
      waited = true;
      await sleep(this.s.waitPollMs, this.opts.signal);
    }
  }

  private newRoot(): { certPem: string; keyPem: string } {
    return generateSelfSignedRoot({
      trustDomain: this.trustDomain,
      now: this.s.now(),
      ttlMs: this.s.rootTtlSeconds * 1000,
      keySize: this.s.rootKeySize,
      backdateMs: this.s.backdateSeconds * 1000,
    });
  }

  /** Validates and switches to `m`; throws RootMaterialError and keeps the current CA on bad material. */
  private adopt(m: RootMaterial): void {
    if (sameMaterial(this.material, m)) return;
    const signing = loadSigningCa(m);
    this.material = m;
    this.signing = signing;
    this.pool?.setIssuer(signing.issuer);
    this.log.info(
      { mode: this.s.mode, store: this.opts.store.description, subject: signing.cert.subject, notAfter: signing.notAfter.toISOString(), roots: signing.roots.length },
      'CA material loaded',
    );
    this.notifyIfChanged();
  }

  private bundle(): X509Certificate[] {
    const sc = this.signing;
    if (!sc) return [];
    if (this.s.mode === 'self-signed' && sc.selfSigned) return selfSignedBundle(sc.cert, sc.roots, this.s.now(), this.s.rootOverlapSeconds * 1000);
    return sc.roots;
  }

  private notifyIfChanged(): void {
    const pem = pemOf(this.bundle());
    if (pem === this.lastBundle) return;
    this.lastBundle = pem;
    try {
      this.opts.onRootsChanged?.(pem);
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'onRootsChanged failed');
    }
  }

  rootBundlePem(): string {
    return pemOf(this.bundle());
  }

  /** The certificate that signs now (PEM). */
  signingCertPem(): string {
    return this.signing?.cert.toString() ?? '';
  }

  /** Re-reads the store, rotates the self-signed root when due (if allowed), updates the bundle. Serialised. */
  check(): Promise<void> {
    const run = this.checking.then(() => this.checkOnce());
    this.checking = run.catch(() => undefined);
    return run;
  }

  private async checkOnce(): Promise<void> {
    const store = this.opts.store;
    try {
      const m = await store.load();
      if (m) this.adopt(m);
    } catch (err) {
      // Keep signing with what we have; say why without quoting the material.
      this.log.warn({ store: store.description, err: err instanceof Error ? err.message : String(err) }, 'CA material refused; the previous CA keeps signing');
      if (this.s.mode === 'plugin') throw err;
    }
    const sc = this.signing;
    if (this.s.mode === 'self-signed' && sc?.selfSigned && this.s.mayWrite() && rotationDue(sc.cert, this.s.now(), this.s.rootGracePercent)) {
      const root = this.newRoot();
      const keep = this.bundle(); // current root and any still overlapping
      await store.save({ caCertPem: root.certPem, caKeyPem: root.keyPem, rootCertPem: root.certPem + pemOf(keep), certChainPem: '' });
      const saved = await store.load();
      if (saved) this.adopt(saved);
      this.log.info({ store: store.description, previous: sc.cert.fingerprint256, root: this.signing?.cert.fingerprint256 }, 'self-signed root rotated');
    }
    this.notifyIfChanged();
  }

  async sign(req: SignRequest): Promise<SignedCertificate> {
    const sc = this.signing;
    if (!sc) throw new CaError('ca_not_ready', 'the CA has no signing certificate yet', GRPC.UNAVAILABLE);
    if (req.identities.length === 0) throw new CaError('authentication_failure', 'no authenticated identity to certify', GRPC.UNAUTHENTICATED);
    for (const id of req.identities) {
      if (!/^[a-z][a-z0-9+.-]*:[\x21-\x7e]+$/i.test(id)) throw new CaError('id_mismatch', 'an identity is not a URI of printable ASCII', GRPC.INVALID_ARGUMENT);
    }
    for (const name of req.dnsNames ?? []) {
      if (!/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name)) {
        throw new CaError('id_mismatch', 'a DNS name is not a valid host name', GRPC.INVALID_ARGUMENT);
      }
    }
    const now = req.now ?? this.s.now();
    const requested = Number.isFinite(req.ttlSeconds) && req.ttlSeconds > 0 ? req.ttlSeconds : this.s.defaultTtlSeconds;
    const ttlMs = Math.min(requested, this.s.maxTtlSeconds) * 1000;
    // Never outlive the signing certificate (the chain would be invalid past it).
    const notAfter = new Date(Math.min(now.getTime() + ttlMs, sc.notAfter.getTime()));
    if (notAfter.getTime() <= now.getTime()) throw new CaError('signing_error', 'the signing CA certificate has expired', GRPC.INTERNAL);
    // Parse and verify the CSR, build and sign: here, or on a worker thread (the same function, the same errors).
    const job = { csrPem: req.csrPem, uris: req.identities, dnsNames: req.dnsNames, notBefore: now.getTime() - this.s.backdateSeconds * 1000, notAfter: notAfter.getTime() };
    const der = this.pool?.ready ? await this.pool.issue(job) : issueFromCsr(sc.issuer, job);
    return { certChainPem: [toPem('CERTIFICATE', der), ...sc.chainPem] };
  }

  /** Resolves once the signing workers (if any) take requests; until then this thread signs. */
  signersReady(): Promise<void> {
    return this.pool?.whenReady() ?? Promise.resolve();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unwatch?.();
    this.unwatch = undefined;
    void this.pool?.close();
  }
}
