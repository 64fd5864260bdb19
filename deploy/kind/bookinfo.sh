#!/usr/bin/env bash
# Deploys Istio's bookinfo sample (pinned release) into the default namespace with Envoy sidecars
# injected by meshd's webhook, plus a curl client (sleep.yaml), then applies bookinfo's
# DestinationRules and VirtualServices from examples/bookinfo (reviews: jason → v2, others → v1).
# INJECT=kube-inject injects offline instead (meshctl kube-inject, the same template, with
# mesh-plaintext.yaml as mesh config): for as long as the webhook in the cluster does not yet
# take its proxy settings from the mesh config. It needs the repository built (npm ci).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need kubectl openssl
INJECT="${INJECT:-webhook}"
case "${INJECT}" in
  webhook) ;;
  kube-inject) need curl node ;;
  *)
    echo "error: INJECT must be webhook or kube-inject (got ${INJECT})" >&2
    exit 1
    ;;
esac

APPS=(details-v1 ratings-v1 reviews-v1 reviews-v2 reviews-v3 productpage-v1 sleep)

log "labelling namespace default for sidecar injection"
k label namespace default istio-injection=enabled --overwrite

# Injected pods mount ConfigMap istio-ca-root-cert (as with istiod). meshd's leader publishes it in
# every namespace; if it is not there yet, a throwaway self-signed certificate stands in so the
# volume mounts, and the leader puts the mesh's root back over it.
if ! k -n default get configmap istio-ca-root-cert >/dev/null 2>&1; then
  log "no istio-ca-root-cert in default yet: creating a placeholder until meshd's leader publishes it"
  tmp="$(mktemp -d)"
  trap 'rm -rf "${tmp}"' EXIT
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/O=meshd kind placeholder/CN=root" \
    -keyout "${tmp}/key.pem" -out "${tmp}/root-cert.pem" 2>/dev/null
  k -n default create configmap istio-ca-root-cert --from-file=root-cert.pem="${tmp}/root-cert.pem"
fi

log "deploying the curl client and bookinfo ${ISTIO_VERSION} (sidecars by ${INJECT})"
if [[ ${INJECT} == kube-inject ]]; then
  meshctl=(node "${REPO_ROOT}/bin/meshctl.js" kube-inject -f - --mesh-config "${DEPLOY}/kind/mesh-plaintext.yaml")
  "${meshctl[@]}" <"${DEPLOY}/kind/sleep.yaml" | k apply -f -
  curl -fsSL "${BOOKINFO_URL}" | "${meshctl[@]}" | k apply -f -
else
  k apply -f "${DEPLOY}/kind/sleep.yaml"
  k apply -f "${BOOKINFO_URL}"
  # Plaintext xDS, as the kind setup runs: the same proxy.istio.io/config as sleep.yaml carries.
  patch="$(printf '{"spec":{"template":{"metadata":{"annotations":{"proxy.istio.io/config":%s}}}}}' \
    "$(printf '%s' "${PLAINTEXT_PROXY_CONFIG}" | sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$/"/')")"
  for app in "${APPS[@]}"; do
    if [[ ${app} != sleep ]]; then
      k -n default patch deployment "${app}" --type merge -p "${patch}"
    fi
  done
fi

log "applying bookinfo's DestinationRules and VirtualServices (examples/bookinfo)"
k apply -f "${EXAMPLES}/bookinfo/destinationrules.yaml"
for vs in "${EXAMPLES}"/bookinfo/virtualservice-*.yaml; do
  k apply -f "${vs}"
done

failed=0
for app in "${APPS[@]}"; do
  if ! k -n default rollout status "deployment/${app}" --timeout=300s; then
    echo "FAIL: deployment ${app} did not become ready" >&2
    failed=1
    continue
  fi
  containers="$(k -n default get pods -l "app=${app%-v*}" -o jsonpath='{range .items[*]}{.metadata.name}{": "}{.spec.initContainers[*].name}{" "}{.spec.containers[*].name}{"\n"}{end}')"
  if grep -v istio-proxy <<<"${containers}" | grep -q .; then
    echo "FAIL: a ${app} pod has no istio-proxy container (not injected by meshd):" >&2
    echo "${containers}" >&2
    failed=1
  fi
done
if [[ ${failed} -ne 0 ]]; then
  k -n default get pods -o wide || true
  k -n default get events --sort-by=.lastTimestamp | tail -20 || true
  exit 1
fi
log "bookinfo is running with sidecars; next: deploy/kind/check.sh"
