#!/usr/bin/env bash
# Settings and helpers shared by the kind scripts (sourced by them, not run on its own).
# Override any setting from the environment, e.g. KIND_CLUSTER=test ./up.sh
set -euo pipefail

KIND_CLUSTER="${KIND_CLUSTER:-meshd}"
# The Istio release whose bookinfo sample the scripts deploy (the sidecar image, proxyv2 of the
# same line, is the injector's default).
ISTIO_VERSION="${ISTIO_VERSION:-1.24.0}"
MESHD_IMAGE="${MESHD_IMAGE:-meshd:dev}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEPLOY="${REPO_ROOT}/deploy"
EXAMPLES="${REPO_ROOT}/examples"
BOOKINFO_URL="https://raw.githubusercontent.com/istio/istio/${ISTIO_VERSION}/samples/bookinfo/platform/kube/bookinfo.yaml"
# The kind setup: each sidecar talks to meshd in plaintext on 15010 (see mesh-plaintext.yaml
# for why each setting is needed). pilot-agent reads this annotation itself (downward API), and an
# injector following Istio renders proxyMetadata as the sidecar's environment.
# shellcheck disable=SC2034 # used by the scripts that source this file
PLAINTEXT_PROXY_CONFIG='{"discoveryAddress":"istiod.istio-system.svc:15010","controlPlaneAuthPolicy":"NONE","proxyMetadata":{"CA_ADDR":"istiod.istio-system.svc:15010"}}'
export KIND_CLUSTER ISTIO_VERSION MESHD_IMAGE REPO_ROOT DEPLOY EXAMPLES BOOKINFO_URL

# kubectl against the kind cluster only, whatever the current context is.
k() {
  kubectl --context "kind-${KIND_CLUSTER}" "$@"
}

need() {
  local tool
  for tool in "$@"; do
    if ! command -v "${tool}" >/dev/null 2>&1; then
      echo "error: ${tool} is required and not on PATH" >&2
      exit 1
    fi
  done
}

log() {
  printf '==> %s\n' "$*"
}
