/**
 * One webhook CA for every replica. The API server sends an admission request to any replica
 * behind Service istiod, and the webhook configurations carry one `caBundle`, so all replicas'
 * serving certificates must chain to the same CA. The first replica to start creates it in
 * Secret `meshd-webhook-ca` (meshd's namespace); creation is atomic, so a replica that loses the
 * race (409) reads the winner's. Each replica then issues its own serving certificate from it.
 * (meshd's own CA, a later issue, will take this role as istiod's does.)
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { statusOf } from '../leader/lease';
import { type WebhookCa, createWebhookCa } from './certs';

export const WEBHOOK_CA_SECRET = 'meshd-webhook-ca';
const CERT_KEY = 'ca-cert.pem';
const KEY_KEY = 'ca-key.pem';

type SecretsApi = Pick<CoreV1Api, 'readNamespacedSecret' | 'createNamespacedSecret'>;

function fromSecret(data: Record<string, string> | undefined): WebhookCa | undefined {
  const cert = data?.[CERT_KEY];
  const key = data?.[KEY_KEY];
  if (!cert || !key) return undefined;
  return { certPem: Buffer.from(cert, 'base64').toString('utf8'), keyPem: Buffer.from(key, 'base64').toString('utf8') };
}

async function read(api: SecretsApi, namespace: string): Promise<WebhookCa | undefined> {
  try {
    const s = await api.readNamespacedSecret({ name: WEBHOOK_CA_SECRET, namespace });
    const ca = fromSecret(s.data);
    if (!ca) throw new Error(`Secret ${namespace}/${WEBHOOK_CA_SECRET} lacks ${CERT_KEY} or ${KEY_KEY}`);
    return ca;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/** The shared webhook CA: read it, or create it if no replica has yet. */
export async function sharedWebhookCa(kubeConfig: KubeConfig, namespace: string, log: Logger): Promise<WebhookCa> {
  const api: SecretsApi = kubeConfig.makeApiClient(CoreV1Api);
  const existing = await read(api, namespace);
  if (existing) return existing;
  const ca = createWebhookCa();
  try {
    await api.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: WEBHOOK_CA_SECRET, namespace, labels: { app: 'istiod' } },
        type: 'Opaque',
        data: { [CERT_KEY]: Buffer.from(ca.certPem).toString('base64'), [KEY_KEY]: Buffer.from(ca.keyPem).toString('base64') },
      },
    });
    log.info({ secret: `${namespace}/${WEBHOOK_CA_SECRET}` }, 'created the webhook CA');
    return ca;
  } catch (err) {
    if (statusOf(err) !== 409) throw err;
    // Another replica created it first: use theirs.
    const theirs = await read(api, namespace);
    if (!theirs) throw new Error(`Secret ${namespace}/${WEBHOOK_CA_SECRET} vanished after a create conflict`);
    return theirs;
  }
}
