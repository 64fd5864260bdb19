/**
 * Who an xDS stream is, and whether it may have credentials: the identity must match the proxy it
 * speaks for (istiod's checkConnectionIdentity), and with a Kubernetes source its service account
 * must be allowed to list Secrets in its namespace, asked of the API server with a real
 * SubjectAccessReview (the client library against a server speaking the real protocol).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { SecretAccessReviewer } from '../src/ca/secret-access';
import { parseProxy } from '../src/model/proxy';
import { PLAINTEXT_REASON, StreamAuthError, matchIdentity, streamIdentity } from '../src/xds/authn';
import { type KubeApiServer, startKubeApiServer } from './helpers/kube-api-server';

const GW = parseProxy('router~10.0.0.1~gw-0.shop~shop.svc.cluster.local', { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'gw' });
const proved = (...ids: string[]) => ({ identities: ids, via: 'mtls' });

test("the first proved identity in the proxy's namespace and service account is the stream's", () => {
  assert.deepEqual(matchIdentity(GW, proved('spiffe://cluster.local/ns/default/sa/gw', 'spiffe://cluster.local/ns/shop/sa/gw')), {
    id: 'spiffe://cluster.local/ns/shop/sa/gw',
    trustDomain: 'cluster.local',
    namespace: 'shop',
    serviceAccount: 'gw',
    via: 'mtls',
  });
  assert.throws(
    () => matchIdentity(GW, proved('spiffe://cluster.local/ns/shop/sa/other')),
    (e: unknown) => e instanceof StreamAuthError && e.code === 7 && /do not match/.test(e.message),
  );
  assert.throws(() => matchIdentity(GW, proved('spiffe://cluster.local/ns/default/sa/gw')), StreamAuthError);
});

test('no proof: no identity, and the reason names the plaintext stream', async () => {
  assert.deepEqual(await streamIdentity(GW, undefined, undefined), { credentialsDenied: PLAINTEXT_REASON });
});

subjectAccessReviewTests();

function subjectAccessReviewTests(): void {
  let api: KubeApiServer;
  const asked: unknown[] = [];
  before(async () => {
    api = await startKubeApiServer({
      handlers: [
        {
          method: 'POST',
          path: '/apis/authorization.k8s.io/v1/subjectaccessreviews',
          handle: (body) => {
            const spec = (body as { spec?: { user?: string; resourceAttributes?: Record<string, string> } }).spec ?? {};
            asked.push(spec);
            const allowed = spec.user === 'system:serviceaccount:shop:gw' && spec.resourceAttributes?.['resource'] === 'secrets' && spec.resourceAttributes['namespace'] === 'shop';
            return { status: 201, body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec, status: { allowed } } };
          },
        },
      ],
    });
  });
  after(() => api.close());

  test('a service account RBAC lets list Secrets gets credentials; another is refused with the reason; answers are kept', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(api.kubeconfigPath);
    const sar = new SecretAccessReviewer({ kubeConfig: kc });
    const auth = { authenticate: () => Promise.reject(new Error('unused')), mayReadSecrets: (ns: string, sa: string) => sar.mayReadSecrets(ns, sa) };
    const ok = await streamIdentity(GW, proved('spiffe://cluster.local/ns/shop/sa/gw'), auth);
    assert.equal(ok.credentialsDenied, undefined);
    assert.equal(ok.verified?.id, 'spiffe://cluster.local/ns/shop/sa/gw');
    const other = parseProxy('router~10.0.0.2~gw-1.shop~shop.svc.cluster.local', { NAMESPACE: 'shop' });
    const no = await streamIdentity(other, proved('spiffe://cluster.local/ns/shop/sa/default'), auth);
    assert.match(no.credentialsDenied ?? '', /shop\/default may not list Secrets in namespace shop/);
    assert.deepEqual(asked[0], {
      user: 'system:serviceaccount:shop:gw',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated'],
      resourceAttributes: { namespace: 'shop', verb: 'list', resource: 'secrets' },
    });
    await streamIdentity(GW, proved('spiffe://cluster.local/ns/shop/sa/gw'), auth);
    assert.equal(asked.length, 2, 'the answer for shop/gw was kept');
  });
}
