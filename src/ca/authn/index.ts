/** The certificate service's authenticators (Istio's: client certificate, Kubernetes token, JWT). */
export { authenticateCaller, bearerToken, parseSpiffeId, serviceAccountOf, spiffeId, type AuthnContext } from './common';
export { ISTIO_CA_AUDIENCE, KubeTokenAuthenticator, type KubeTokenAuthenticatorOptions } from './kube-token';
export { JWT_DEFAULTS, JwtAuthenticator, type JwtAuthenticatorOptions, type JwksFetch, boundedJwksFetch, jwksKeySet, jwksSourceProblem } from './jwt';
export { MtlsAuthenticator, type MtlsAuthenticatorOptions, splitPemCertificates, uriSans } from './mtls';
