#!/usr/bin/env bash
# Creates a kind cluster, builds and loads the meshd image, installs the Istio CRDs and meshd
# (deploy/kustomization.yaml), and waits until meshd is ready.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need docker kind kubectl

if kind get clusters 2>/dev/null | grep -qx "${KIND_CLUSTER}"; then
  log "kind cluster ${KIND_CLUSTER} exists; reusing it"
else
  create=(create cluster --name "${KIND_CLUSTER}" --wait 120s)
  if [[ -n "${KIND_NODE_IMAGE:-}" ]]; then
    create+=(--image "${KIND_NODE_IMAGE}")
  fi
  log "creating kind cluster ${KIND_CLUSTER}"
  kind "${create[@]}"
fi

log "building ${MESHD_IMAGE}"
docker build -f "${DEPLOY}/Dockerfile" -t "${MESHD_IMAGE}" "${REPO_ROOT}"
log "loading ${MESHD_IMAGE} into the cluster"
kind load docker-image "${MESHD_IMAGE}" --name "${KIND_CLUSTER}"

log "installing the Istio CRDs"
k apply -f "${DEPLOY}/crds/"
k wait --for condition=Established --timeout=60s -f "${DEPLOY}/crds/"

log "installing meshd as istiod (istio-system)"
k apply -k "${DEPLOY}/"
# The kind setup: proxies use plaintext xDS on 15010 (see deploy/README.md).
k apply -f "${DEPLOY}/kind/mesh-plaintext.yaml"
# Their CA client too (CA_ADDR on 15010), and meshd serves the CA there only with --plaintext-ca
# (as istiod, it is on 15012 alone by default). A test cluster only: tokens cross in clear.
if ! k -n istio-system get deployment istiod -o jsonpath='{.spec.template.spec.containers[0].args}' | grep -q -- '--plaintext-ca'; then
  k -n istio-system patch deployment istiod --type=json \
    -p '[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--plaintext-ca"}]'
fi
# The image tag does not change between builds: restart so a rebuilt image is picked up.
k -n istio-system rollout restart deployment/istiod
if ! k -n istio-system rollout status deployment/istiod --timeout=180s; then
  k -n istio-system get pods -l app=istiod -o wide || true
  k -n istio-system logs -l app=istiod --tail=50 || true
  echo "FAIL: meshd (deployment istiod) did not become ready" >&2
  exit 1
fi
log "meshd is ready: kubectl --context kind-${KIND_CLUSTER} -n istio-system get pods"
