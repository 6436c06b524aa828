#!/usr/bin/env bash
# ctest `demo`: runs the demo exactly as `make demo` does (tests/demo/run_demo.sh BUILD_DIR),
# for DEMO_SECONDS=8, and checks what the user must see and that nothing is left running.
#
#   bash tests/demo/check_demo.sh BUILD_DIR WORK_DIR
#
# Exit 0 pass, 1 fail, 77 skip (no kubectl).
set -uo pipefail

BUILD_DIR=$1
WORK=$2
HERE="$(cd "$(dirname "$0")" && pwd)"
command -v kubectl >/dev/null || { echo "SKIP: kubectl not on PATH"; exit 77; }

rm -rf "$WORK"
mkdir -p "$WORK"
RUN="$WORK/run"
OUT="$WORK/demo.out"

DEMO_SECONDS=8 DEMO_DIR="$RUN" timeout 60 bash "$HERE/run_demo.sh" "$BUILD_DIR" >"$OUT" 2>&1
RC=$?

FAILED=0
fail() {
  echo "FAIL: $*"
  FAILED=1
}
# expect MIN REGEX WHAT: at least MIN lines of the output match the extended REGEX.
expect() {
  local n
  n=$(grep -cE -- "$2" "$OUT")
  ((n >= $1)) || fail "$3: expected >= $1 lines matching /$2/, got $n"
}

((RC == 0)) || fail "run_demo.sh exited $RC (124 = timed out)"
expect 1 '^\$ kubectl get nodes$' "kubesim's nodes"
expect 3 '^node-[0-9]+ +Ready ' "kubesim's nodes"
expect 1 'serviceaccount/ashiato-agent created' "the agent ServiceAccount"
# Unified log: every node's pods, as formatted lines (time, event, pod, node).
expect 10 '^\[unified\] [0-9:.]+ (CREATED|SYNC|UPDATED|DELETED) +[a-z0-9-]+/[a-z0-9-]+ +node-[0-9]' "unified log lines"
for n in 1 2 3; do
  expect 1 "^\[unified\] .* node-$n " "unified log lines from node-$n"
done
expect 3 '^\[agent node-1\] [0-9:.]+ (SYNC|CREATED|UPDATED|DELETED) ' "the per-node agent log sample"
expect 1 '^\{"event":"[A-Z]+","timestamp":"[0-9T:.Z-]+",.*"node_name":"node-1"' "a raw agent log line"
expect 1 'serviceaccount/demo-reader created' "the reader ServiceAccount"
expect 1 'clusterrolebinding.rbac.authorization.k8s.io/demo-reader created' "the reader's role binding"
expect 3 'ashiato-agent-node-[0-9]+ +node-[0-9]' "agent pods bound to their nodes"
expect 1 "^\\\$ curl -s -H \"Authorization: Bearer \\\$TOKEN\" 'http://127\.0\.0\.1:[0-9]+/v1/nodes'" "the /v1/nodes curl"
expect 1 '^\{"count":3,"nodes":\[' "the /v1/nodes answer (3 agents)"
expect 1 "^\\\$ curl -s -H \"Authorization: Bearer \\\$TOKEN\" 'http://127\.0\.0\.1:[0-9]+/v1/pods\?node=node-1'" "the /v1/pods curl"
expect 1 '^\{"count":[1-9][0-9]*,"pods":\[' "the /v1/pods answer"
expect 3 '^  [a-z0-9-]+/[a-z0-9-]+ +node-1 ' "the /v1/pods table"
expect 1 '^\{"count":[1-9][0-9]*,"images":\[' "the /v1/images answer"
expect 1 '^ashiato_aggregator_tokenreview_requests_total [1-9]' "TokenReview auth in use"
expect 1 '^ashiato_aggregator_reads_total\{result="allowed"\} [1-9]' "authorized reads"
expect 1 '^\$ kubectl get cm -l app=pod-ashiato -n ashiato$' "the ConfigMap listing"
expect 1 '^pod-ashiato-[0-9]{10}(-[0-9]+)? +[1-9][0-9]* ' "an hourly ConfigMap with data"
expect 3 '^  [a-z0-9-]+_[a-z0-9.-]+: node-[0-9]+$' "ConfigMap data (namespace_pod: node)"
expect 1 '^  no demo process left \(checked with ps\)$' "the demo's own ps check"
expect 1 "^  logs are in $RUN:$" "where the logs are"
grep -q 'did not stop within' "$OUT" && fail "a daemon had to be killed"

# Our own check: no daemon (their args name the kubeconfig) and no log follower.
# shellcheck disable=SC2009  # fixed-string match on full command lines, not a pattern
LEFT=$(ps -e -o pid=,args= | grep -F -e "$RUN/kubeconfig" -e "$RUN/aggregator.log" | grep -v -e ' grep ' || true)
[[ -z "$LEFT" ]] || fail "processes left behind:
$LEFT"
for f in kubesim.err aggregator.err agent-node-1.log aggregator.log; do
  [[ -s "$RUN/$f" ]] || fail "log $RUN/$f missing or empty"
done

if ((FAILED)); then
  echo "---- demo output ($OUT) ----"
  cat "$OUT"
  exit 1
fi
echo "PASS: demo output checked ($(grep -c '^\[unified\]' "$OUT") unified log lines); output in $OUT"
