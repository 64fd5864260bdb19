#!/usr/bin/env bash
# End to end with real Envoy sidecars: from the curl client in the mesh, calls reviews and
# productpage and tells which reviews version answered (its pod name, which bookinfo puts in
# every response). Istio's request-routing step (examples/traffic-management/2-request-routing-jason)
# must send end-user jason to v2 and everyone else to v1; the traffic-shifting step
# (5-traffic-shifting-50-v3) must spread calls over v1 and v3 only. Prints PASS/FAIL for each
# check and exits 1 if any failed. Run after up.sh and bookinfo.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need kubectl

CALLS="${CALLS:-20}"             # calls per routing check
SHIFT_CALLS="${SHIFT_CALLS:-40}" # calls for the 50/50 check: both sides missing has odds 2^-39
WAIT_SECONDS="${WAIT_SECONDS:-120}"
STEPS="${EXAMPLES}/traffic-management"
failures=0

pass() { printf 'PASS: %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*"
  failures=$((failures + 1))
}

in_sleep() {
  k -n default exec deploy/sleep -c sleep -- "$@"
}

# GET /reviews/0 from the client; $1 is the end-user header value ("" for none).
reviews_call() {
  if [[ -n "$1" ]]; then
    in_sleep curl -sSf --max-time 5 -H "end-user: $1" http://reviews:9080/reviews/0
  else
    in_sleep curl -sSf --max-time 5 http://reviews:9080/reviews/0
  fi
}

# GET /productpage; with $1, logged in as that user first (productpage then sends end-user: $1
# to reviews, through its own sidecar).
productpage_call() {
  if [[ -n "$1" ]]; then
    # shellcheck disable=SC2016 # expanded by the pod's shell
    in_sleep sh -c 'jar=$(mktemp) &&
      curl -sSf --max-time 5 -o /dev/null -c "$jar" -e http://productpage:9080/productpage \
        -d "username=$1" -d "passwd=$1" http://productpage:9080/login &&
      curl -sSf --max-time 5 -b "$jar" http://productpage:9080/productpage' sh "$1"
  else
    in_sleep curl -sSf --max-time 5 http://productpage:9080/productpage
  fi
}

# Which reviews version a body came from: v1, v2, v3, or "error".
version_of() {
  local body="$1"
  if [[ ${body} =~ reviews-(v[123])- ]]; then
    echo "${BASH_REMATCH[1]}"
  elif [[ ${body} == *'"color": "red"'* || ${body} == *'color="red"'* ]]; then
    echo v3
  elif [[ ${body} == *'"color": "black"'* || ${body} == *'color="black"'* ]]; then
    echo v2
  elif [[ ${body} == *'"reviewer"'* ]]; then
    echo v1
  else
    echo error
  fi
}

# tally N CMD...: runs CMD N times; prints "v1=a v2=b v3=c error=d".
tally() {
  local n="$1" i body v
  shift
  local -A count=([v1]=0 [v2]=0 [v3]=0 [error]=0)
  for ((i = 0; i < n; i++)); do
    body="$("$@" 2>&1)" || body=""
    v="$(version_of "${body}")"
    count[${v}]=$((count[${v}] + 1))
  done
  echo "v1=${count[v1]} v2=${count[v2]} v3=${count[v3]} error=${count[error]}"
}

# wait_for VERSION CMD...: until CMD is answered by VERSION (config reached the sidecars).
wait_for() {
  local want="$1" deadline=$((SECONDS + WAIT_SECONDS)) body
  shift
  while ((SECONDS < deadline)); do
    body="$("$@" 2>/dev/null)" || body=""
    if [[ "$(version_of "${body}")" == "${want}" ]]; then
      return 0
    fi
    sleep 2
  done
  return 1
}

# expect NAME WANT GOT
expect() {
  if [[ "$3" == "$2" ]]; then pass "$1 ($3)"; else fail "$1: want $2, got $3"; fi
}

log "sidecars"
for app in productpage reviews sleep; do
  names="$(k -n default get pods -l "app=${app}" -o jsonpath='{.items[*].spec.initContainers[*].name} {.items[*].spec.containers[*].name}')"
  if [[ ${names} == *istio-proxy* ]]; then pass "${app} runs an injected istio-proxy"; else fail "${app} has no istio-proxy container"; fi
done

log "request routing: end-user jason → reviews v2, everyone else → v1"
k apply -f "${STEPS}/2-request-routing-jason/"
if wait_for v2 reviews_call jason; then
  expect "reviews with end-user: jason, ${CALLS} calls" "v1=0 v2=${CALLS} v3=0 error=0" "$(tally "${CALLS}" reviews_call jason)"
  expect "reviews without end-user, ${CALLS} calls" "v1=${CALLS} v2=0 v3=0 error=0" "$(tally "${CALLS}" reviews_call "")"
  expect "productpage, anonymous, ${CALLS} calls" "v1=${CALLS} v2=0 v3=0 error=0" "$(tally "${CALLS}" productpage_call "")"
  expect "productpage logged in as jason, ${CALLS} calls" "v1=0 v2=${CALLS} v3=0 error=0" "$(tally "${CALLS}" productpage_call jason)"
else
  fail "reviews never answered end-user jason from v2 within ${WAIT_SECONDS}s"
fi

log "traffic shifting: reviews 50 % v1, 50 % v3"
k apply -f "${STEPS}/5-traffic-shifting-50-v3/"
if wait_for v3 reviews_call ""; then
  got="$(tally "${SHIFT_CALLS}" reviews_call "")"
  if [[ ${got} =~ ^v1=([0-9]+)\ v2=0\ v3=([0-9]+)\ error=0$ ]] && ((BASH_REMATCH[1] > 0 && BASH_REMATCH[2] > 0)); then
    pass "reviews over ${SHIFT_CALLS} calls reached v1 and v3 only (${got})"
  else
    fail "reviews over ${SHIFT_CALLS} calls: want v1 and v3 both > 0 and nothing else, got ${got}"
  fi
else
  fail "reviews never answered from v3 within ${WAIT_SECONDS}s after the traffic-shifting step"
fi

# Leave the cluster as bookinfo.sh set it up.
k apply -f "${EXAMPLES}/bookinfo/virtualservice-reviews.yaml" >/dev/null

if ((failures > 0)); then
  echo "FAIL: ${failures} check(s) failed"
  exit 1
fi
echo "PASS: all checks"
