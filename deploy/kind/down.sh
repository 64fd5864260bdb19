#!/usr/bin/env bash
# Deletes the kind cluster that up.sh created (and everything in it).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need kind

if kind get clusters 2>/dev/null | grep -qx "${KIND_CLUSTER}"; then
  log "deleting kind cluster ${KIND_CLUSTER}"
  kind delete cluster --name "${KIND_CLUSTER}"
else
  log "no kind cluster named ${KIND_CLUSTER}"
fi
