/**
 * Whether a service account may read Secrets in its namespace, asked of the Kubernetes API with a
 * SubjectAccessReview (verb `list`, resource `secrets`), as istiod authorizes gateway credentials
 * (pilot/pkg/credentials/kube `Authorize`). Answers are kept for a minute, as istiod keeps them,
 * so a gateway that reconnects does not cost a review each time; a failed review is not kept.
 */
import { AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { LRUCache } from 'lru-cache';

type ReviewApi = Pick<AuthorizationV1Api, 'createSubjectAccessReview'>;

export interface SecretAccessReviewerOptions {
  kubeConfig: KubeConfig;
  /** How long an answer is kept (ms); default 60 s. */
  ttlMs?: number;
}

export class SecretAccessReviewer {
  private readonly api: ReviewApi;
  private readonly answers: LRUCache<string, boolean>;

  constructor(opts: SecretAccessReviewerOptions) {
    this.api = opts.kubeConfig.makeApiClient(AuthorizationV1Api);
    this.answers = new LRUCache<string, boolean>({ max: 10_000, ttl: opts.ttlMs ?? 60_000 });
  }

  async mayReadSecrets(namespace: string, serviceAccount: string): Promise<boolean> {
    const key = `${namespace}/${serviceAccount}`;
    const known = this.answers.get(key);
    if (known !== undefined) return known;
    let review;
    try {
      review = await this.api.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: `system:serviceaccount:${namespace}:${serviceAccount}`,
            groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
            resourceAttributes: { namespace, verb: 'list', resource: 'secrets' },
          },
        },
      });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      throw new Error(`the SubjectAccessReview failed${typeof code === 'number' ? ` (HTTP ${code})` : ''}`, { cause: err });
    }
    const allowed = review.status?.allowed === true;
    this.answers.set(key, allowed);
    return allowed;
  }
}
