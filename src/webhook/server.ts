/**
 * The admission webhooks over HTTPS (istiod's 15017): `POST /inject` (mutating: sidecar
 * injection; also `/inject/*`, the paths Istio's multi-cluster webhook configurations use) and
 * `POST /validate` (validating: Istio config). Bodies are bounded; anything that is not an
 * AdmissionReview is answered 400 with a message saying why, never with a crash. The serving
 * certificate comes from meshd's CA (certs.ts); until the first one arrives, TLS handshakes fail
 * (as on 15012) and the API server retries.
 */
import type * as https from 'node:https';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { InjectorRole, Labels, ProxyConfigSet } from '../inject';
import { type InjectionConfig, type InjectionOptions, resolveInjectionOptions } from '../inject/options';
import type { ConfigObject } from '../model/objects';
import type { Validation } from '../model/validate';
import { admitInjection, admitValidation, BadReview, readReview, review } from './admission';
import type { WebhookCertificate } from './certs';

export { type WebhookCertificate, followCertificates, webhookCertificateNames, webhookDnsNames, webhookServingCertificate } from './certs';

/** Kubernetes objects are at most ~1.5 MiB; a review carries the object and the old one. */
export const DEFAULT_BODY_LIMIT = 6 * 1024 * 1024;

export interface WebhookServerOptions {
  host: string;
  /** 15017 in Istio; 0 picks a free port. */
  port: number;
  log: Logger;
  /** Validation of Istio/Kubernetes objects, errors and warnings: `checkObject` from the model. */
  validate: (obj: ConfigObject) => Validation;
  /** The sidecar template's settings (image, discovery address, revision, …). */
  injection?: InjectionConfig;
  /**
   * Settings from the MeshConfig in effect (its `defaultConfig` and trust domain), read for each
   * review so a MeshConfig change reaches the next injected pod; they win over `injection`.
   */
  meshInjection?: () => InjectionConfig | undefined;
  /** A namespace's labels from the Kubernetes source; undefined when unknown (then the webhook configuration's selectors are trusted). */
  namespaceLabels?: (namespace: string) => Labels | undefined;
  /** The ProxyConfig objects in effect, read for each review. */
  proxyConfigs?: () => ProxyConfigSet | undefined;
  /** The revision tags pointing at this revision and whether it is the default one (as istiod's selectors see them). */
  role?: () => Omit<InjectorRole, 'revision'>;
  /** The first serving certificate, if already known; else none is served until `setCertificate`. */
  certificate?: WebhookCertificate;
  bodyLimit?: number;
  /** istiod's webhook counters (galley_validation_*, sidecar_injection_*_total); uncounted when absent. */
  metrics?: WebhookMetrics;
}

/** The counters the webhooks move, as istiod's names them. */
export interface WebhookMetrics {
  validationPassed: Counter<'group' | 'version' | 'resource'>;
  validationFailed: Counter<'group' | 'version' | 'resource' | 'reason'>;
  injectionRequests: Counter;
  injectionSuccess: Counter;
  injectionFailure: Counter;
  injectionSkip: Counter;
}

export interface WebhookServerHandle {
  port: number;
  /** Serve a new certificate from now on (existing connections keep theirs). */
  setCertificate(c: WebhookCertificate): void;
  /** Whether a certificate is served (TLS handshakes fail before the first). */
  hasCertificate(): boolean;
  close(): Promise<void>;
}

function badRequest(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).send({ error: 'Bad Request', message });
}

/** The injection options for the MeshConfig settings in effect, resolved again only when they change. */
function injectionOptions(o: WebhookServerOptions, base: InjectionOptions): () => InjectionOptions {
  let last: { mesh: InjectionConfig | undefined; opts: InjectionOptions } = { mesh: undefined, opts: base };
  return () => {
    const mesh = o.meshInjection?.();
    if (mesh !== last.mesh) last = { mesh, opts: mesh ? resolveInjectionOptions({ ...o.injection, ...mesh }) : base };
    return last.opts;
  };
}

export function webhookApp(o: WebhookServerOptions, cert: WebhookCertificate | undefined, base: InjectionOptions): FastifyInstance {
  const currentOptions = injectionOptions(o, base);
  const app = Fastify({
    logger: false,
    bodyLimit: o.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // Without a certificate yet, handshakes fail until setSecureContext gives one.
    https: cert ? { key: cert.keyPem, cert: cert.certChainPem } : {},
  });
  const { log } = o;
  // Reviews are JSON; anything else is answered 415 rather than read as a string.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const code = err.statusCode ?? 500;
    if (code >= 500) log.error({ err }, 'webhook request failed');
    return reply.code(code).send({ error: code >= 500 ? 'Internal Server Error' : 'Bad Request', message: code >= 500 ? 'internal error' : err.message });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'Not Found', message: `no webhook at ${req.method} ${req.url}; use POST /inject or POST /validate` }));

  const m = o.metrics;
  const inject = async (req: { body: unknown }, reply: FastifyReply): Promise<unknown> => {
    m?.injectionRequests.inc();
    let parsed;
    try {
      parsed = readReview(req.body);
    } catch (err) {
      if (err instanceof BadReview) {
        m?.injectionFailure.inc();
        return badRequest(reply, err.message);
      }
      throw err;
    }
    let opts: InjectionOptions;
    try {
      opts = currentOptions();
    } catch (err) {
      // A MeshConfig the injector cannot use (validated, so unlikely): inject with the flags' settings.
      log.warn({ err: (err as Error).message }, 'injection settings from the MeshConfig are unusable');
      opts = base;
    }
    const pcs = o.proxyConfigs?.();
    const out = admitInjection(parsed.request, {
      opts,
      ...(o.namespaceLabels ? { namespaceLabels: o.namespaceLabels } : {}),
      ...(pcs ? { proxyConfigs: pcs } : {}),
      ...(o.role ? { role: o.role } : {}),
    });
    const r = parsed.request;
    (!out.response.allowed ? m?.injectionFailure : out.injected ? m?.injectionSuccess : m?.injectionSkip)?.inc();
    log.debug({ uid: r.uid, namespace: r.namespace, name: r.name, injected: out.injected, reason: out.reason }, 'sidecar injection');
    if (!out.response.allowed) log.warn({ uid: r.uid, namespace: r.namespace, reason: out.reason }, 'sidecar injection refused');
    return review(parsed.apiVersion, out.response);
  };
  app.post('/inject', inject);
  app.post('/inject/*', inject);

  app.post('/validate', async (req, reply) => {
    let parsed;
    try {
      parsed = readReview(req.body);
    } catch (err) {
      if (err instanceof BadReview) {
        m?.validationFailed.inc({ group: '', version: '', resource: '', reason: 'invalid_review' });
        return badRequest(reply, err.message);
      }
      throw err;
    }
    const response = admitValidation(parsed.request, o.validate);
    if (m) {
      const k = parsed.request.resource ?? parsed.request.kind;
      const labels = { group: k?.group ?? '', version: k?.version ?? '', resource: parsed.request.resource?.resource ?? parsed.request.kind?.kind ?? '' };
      if (response.allowed) m.validationPassed.inc(labels);
      else m.validationFailed.inc({ ...labels, reason: response.status?.code === 400 ? 'invalid_resource' : 'invalid_config' });
    }
    if (!response.allowed) log.info({ uid: parsed.request.uid, namespace: parsed.request.namespace, reason: response.status?.message }, 'config rejected');
    return review(parsed.apiVersion, response);
  });
  app.get('/ready', async () => 'ready\n');
  return app;
}

/** Starts the HTTPS webhook server. */
export async function startWebhookServer(o: WebhookServerOptions): Promise<WebhookServerHandle> {
  const opts = resolveInjectionOptions(o.injection);
  let serving = o.certificate !== undefined;
  const app = webhookApp(o, o.certificate, opts);
  await app.listen({ host: o.host, port: o.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  o.log.info({ port, image: opts.image, discoveryAddress: opts.discoveryAddress, revision: opts.revision }, 'webhooks listening (HTTPS): /inject, /validate');
  return {
    port,
    setCertificate(c: WebhookCertificate): void {
      (app.server as https.Server).setSecureContext({ key: c.keyPem, cert: c.certChainPem });
      serving = true;
    },
    hasCertificate: () => serving,
    close: async () => {
      await app.close();
    },
  };
}
