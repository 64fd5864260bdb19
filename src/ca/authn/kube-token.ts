/**
 * Istio's KubeJWTAuthenticator: a Kubernetes service-account token, checked by the API server
 * with a TokenReview for the audience `istio-ca`; the identity is the reviewed user
 * `system:serviceaccount:<ns>:<sa>` → `spiffe://<trust domain>/ns/<ns>/sa/<sa>`.
 */
import { AuthenticationV1Api, type KubeConfig, type V1TokenReview } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Authenticator, Caller } from '../types';
import { type AuthnContext, bearerToken, scrub, serviceAccountOf, spiffeId, unauthenticated } from './common';

/** istiod's default token audience. */
export const ISTIO_CA_AUDIENCE = 'istio-ca';

export interface KubeTokenAuthenticatorOptions {
  kubeConfig: KubeConfig;
  trustDomain: string;
  /** Audiences the token must be meant for; default [`istio-ca`]. */
  audiences?: readonly string[];
  log: Logger;
}

type TokenReviewApi = Pick<AuthenticationV1Api, 'createTokenReview'>;

export class KubeTokenAuthenticator implements Authenticator {
  readonly name = 'kubernetes-token';
  private readonly api: TokenReviewApi;
  private readonly audiences: readonly string[];

  constructor(private readonly opts: KubeTokenAuthenticatorOptions) {
    this.api = opts.kubeConfig.makeApiClient(AuthenticationV1Api);
    this.audiences = opts.audiences ?? [ISTIO_CA_AUDIENCE];
  }

  async authenticate(ctx: AuthnContext): Promise<Caller | undefined> {
    const token = bearerToken(ctx.metadata);
    if (!token) return undefined;
    let review: V1TokenReview;
    try {
      review = await this.api.createTokenReview({
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [...this.audiences] } },
      });
    } catch (err) {
      // The error may carry the response body, and a TokenReview echoes the token: log its code only.
      const code = (err as { code?: unknown }).code;
      this.opts.log.warn({ status: typeof code === 'number' ? code : undefined }, 'TokenReview request failed');
      throw unauthenticated('token_review_error', `${this.name}: the Kubernetes TokenReview failed${typeof code === 'number' ? ` (HTTP ${code})` : ''}`);
    }
    const status = review.status;
    if (!status?.authenticated) {
      const why = status?.error ? `: ${scrub(status.error, token)}` : '';
      throw unauthenticated('invalid_token', `${this.name}: the Kubernetes API server did not accept the token${why}`);
    }
    if (status.audiences && status.audiences.length > 0 && !status.audiences.some((a) => this.audiences.includes(a))) {
      throw unauthenticated('invalid_token', `${this.name}: the token is not meant for audience ${this.audiences.join(', ')}`);
    }
    const username = status.user?.username ?? '';
    const sa = serviceAccountOf(username);
    if (!sa) throw unauthenticated('invalid_token', `${this.name}: the token's user ${JSON.stringify(scrub(username, token))} is not a service account`);
    return { identities: [spiffeId(this.opts.trustDomain, sa[0], sa[1])], via: this.name };
  }
}
