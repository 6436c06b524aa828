#!/usr/bin/env bash
# `make demo`: Ashiato end to end on a laptop, against kubesim (no cluster, no root).
#
#   bash tests/demo/run_demo.sh [BUILD_DIR]      (BUILD_DIR defaults to build)
#   DEMO_SECONDS=20 make demo                    (stop by itself after 20 s)
#
# Starts kubesim (3 nodes, 1 pod change/s), creates one agent pod per node and mints
# each a push token bound to it with `kubectl create token`, starts ashiato-aggregator
# (TokenReview auth, node-bound pushes, authorized reads, hourly ConfigMaps) and one
# ashiato-agent per node, grants a reader the ashiato-reader role, then shows the
# unified log as it happens, a per-node agent log, the query API (with the reader's
# token) and the hourly ConfigMaps. Runs until
# Ctrl-C or DEMO_SECONDS, stops every process it started (and checks with ps that
# none is left), prints where the logs are and exits 0; 1 if a daemon died or a
# process could not be stopped.
#
# Environment: DEMO_SECONDS (0 = until Ctrl-C), DEMO_NODES (3), DEMO_CHURN (1 pod
# change/s), DEMO_DIR (work and log directory; default a new mktemp directory).
# Needs kubectl, curl and awk; jq is not needed.
set -euo pipefail

BUILD_DIR="${1:-build}"
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="$(cd "$BUILD_DIR" 2>/dev/null && pwd)/bin" || BIN="$BUILD_DIR/bin"
DEMO_SECONDS="${DEMO_SECONDS:-0}"
NODES="${DEMO_NODES:-3}"
CHURN="${DEMO_CHURN:-1}"
NS=ashiato

for b in kubesim ashiato-agent ashiato-aggregator; do
  if [[ ! -x "$BIN/$b" ]]; then
    echo "run_demo: $BIN/$b not found; build first (make build)" >&2
    exit 1
  fi
done
for t in kubectl curl awk setsid ps pgrep; do
  command -v "$t" >/dev/null || { echo "run_demo: $t is required" >&2; exit 1; }
done

if [[ -n "${DEMO_DIR:-}" ]]; then
  mkdir -p "$DEMO_DIR"
  DIR="$(cd "$DEMO_DIR" && pwd)"
else
  DIR="$(mktemp -d "${TMPDIR:-/tmp}/ashiato-demo.XXXXXX")"
fi
KCFG="$DIR/kubeconfig"
export KUBECONFIG="$KCFG"
PIDS=()        # daemons, each in its own session; stopped in reverse start order
NAMES=()
FOLLOWERS=()   # log followers (tail | awk), each its own process group
START=$SECONDS
STATUS=0

if [[ -t 1 ]]; then B=$'\033[1m' D=$'\033[2m' R=$'\033[0m'; else B='' D='' R=''; fi
say() { printf '\n%s== %s%s\n' "$B" "$*" "$R"; }
# Shows a command as the user would type it, then runs it.
run() {
  printf '%s$ %s%s\n' "$D" "$*" "$R"
  "$@"
}

# One formatter for every JSON source (agent logs, unified log, /v1/pods lines):
# time, event, namespace/pod, node, IP, phase, readiness, first image. Plain awk, so
# the demo needs no jq. Field names are the documented log schema (docs/agent.md).
# shellcheck disable=SC2016  # awk program, not shell.
FMT='
function g(k,   v) {
  if (!match($0, "\"" k "\":(\"[^\"]*\"|[^],}]*)")) return ""
  v = substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3)
  gsub(/"/, "", v)
  return v
}
$0 !~ /^[{]/ { print p " " $0; fflush(); next }
{
  t = g("timestamp"); if (t != "") t = substr(t, 12, 12) " "
  ev = g("event")
  if (ev ~ /^IMAGE_/) {
    printf "%s %s%-14s %s %s  [%s|%s] pods=%s nodes=%s\n", p, t, ev, g("image"),
      substr(g("digest"), 1, 19), g("namespace"), g("pod_name"), g("pods"), g("nodes")
    fflush()
    next
  }
  if (ev != "") ev = sprintf("%-8s", ev)
  ip = g("pod_ip"); if (ip == "") ip = "-"
  rd = "-"
  if ($0 ~ /"status":"True","type":"Ready"/) rd = "ready"
  if ($0 ~ /"status":"False","type":"Ready"/) rd = "not-ready"
  if ($0 ~ /"deletion_timestamp":"/) rd = rd ",terminating"
  printf "%s %s%s%-38s %-7s %-13s %-8s %-15s %s\n", p, t, ev, g("namespace") "/" g("pod_name"),
    g("node_name"), ip, g("phase"), rd, g("image")
  fflush()
}'

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid i
  # Followers first (they may be paused), then agents, aggregator (it flushes its
  # ConfigMaps to kubesim on SIGTERM), kubesim last.
  for pid in "${FOLLOWERS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
    kill -CONT -- "-$pid" 2>/dev/null || true
  done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[i]}
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "run_demo: ${NAMES[i]} did not stop within 10 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  for pid in "${FOLLOWERS[@]}"; do
    wait "$pid" 2>/dev/null || true
    # tail and awk are reaped by init once their bash is gone: wait for that.
    local deadline=$((SECONDS + 5))
    while pgrep -g "$pid" >/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  done

  # Nothing we started may survive: no daemon, no tail/awk (their args or process
  # group name them).
  # Our ancestors (make, a test driver) may name DIR too: not ours to stop.
  local left anc=" $$ " p=$PPID
  while ((p > 1)); do
    anc+="$p "
    p=$(ps -o ppid= -p "$p" | tr -d ' ') || break
  done
  left=$(ps -e -o pid=,pgid=,args= | awk -v dir="$DIR" -v anc="$anc" -v pids=" ${PIDS[*]} ${FOLLOWERS[*]} " '
    index(anc, " " $1 " ") { next }
    $3 == "ps" && $4 == "-e" { next }
    $3 == "awk" && $4 == "-v" && index($5, "dir=") == 1 { next }
    index(pids, " " $1 " ") || index(pids, " " $2 " ") || (index($0, dir)) { print }')
  say "stopped"
  if [[ -n "$left" ]]; then
    echo "run_demo: processes left behind:" >&2
    echo "$left" >&2
    STATUS=1
  else
    echo "  no demo process left (checked with ps)"
  fi
  echo "  logs are in $DIR:"
  echo "    unified log (aggregator stdout):  $DIR/aggregator.log"
  echo "    aggregator diagnostics:           $DIR/aggregator.err"
  echo "    per-node agent logs:              $DIR/agent-<node>.log (.err: diagnostics)"
  echo "    kubesim:                          $DIR/kubesim.err"
  if ((rc == 0 && STATUS != 0)); then rc=$STATUS; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# Polls `cmd` every 0.2 s until it succeeds or `secs` pass.
wait_for() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "run_demo: timed out after ${secs}s waiting for $what" >&2
      return 1
    fi
    check_alive
    sleep 0.2
  done
}

# Prints a JSON-lines log readably as it grows, with a short prefix.
follow() {
  local file=$1 prefix=$2
  # Own process group (setsid) so cleanup stops tail and awk together; --pid makes
  # tail exit by itself should this script be killed without running cleanup.
  # shellcheck disable=SC2016  # $1.. expand in the inner bash.
  setsid bash -c 'tail -n +1 -F --pid="$4" -s 0.2 "$1" 2>/dev/null | awk -v p="$2" -v src="$1" "$3"' \
    _ "$file" "$prefix" "$FMT" $$ &
  FOLLOWERS+=($!)
}
pause_followers() { local p; for p in "${FOLLOWERS[@]}"; do kill -STOP -- "-$p" 2>/dev/null || true; done; }
resume_followers() { local p; for p in "${FOLLOWERS[@]}"; do kill -CONT -- "-$p" 2>/dev/null || true; done; }

# Exits with a message if a daemon we started is gone.
check_alive() {
  local i
  for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[i]}" 2>/dev/null; then
      echo "run_demo: ${NAMES[i]} exited unexpectedly; last diagnostics:" >&2
      tail -n 20 "$DIR/${NAMES[i]}.err" >&2 2>/dev/null || true
      STATUS=1
      exit 1
    fi
  done
}

# start NAME CMD...: runs a daemon in its own session (so Ctrl-C reaches only this
# script, which then stops the daemons in order), stdout in NAME.log, stderr in NAME.err.
start() {
  local name=$1
  shift
  setsid "$@" >"$DIR/$name.log" 2>"$DIR/$name.err" </dev/null &
  PIDS+=($!)
  NAMES+=("$name")
  echo "  started $name (pid $!): ${*/#$BIN\//}"
}

say "kubesim: a simulated Kubernetes API server, $NODES nodes, $CHURN pod change/s"
start kubesim "$BIN/kubesim" --listen 127.0.0.1:0 --nodes "$NODES" --pods-per-node 4 \
  --churn "$CHURN" --kubeconfig-out "$KCFG"
wait_for 30 "kubesim's kubeconfig" test -s "$KCFG"
wait_for 30 "kubesim to answer" kubectl get --raw /readyz
run kubectl get nodes

say "a ServiceAccount, one agent pod per node and its push token (audience ashiato, bound to the pod), as the kubelet projects them"
kubectl get ns "$NS" >/dev/null 2>&1 || run kubectl create ns "$NS"
run kubectl create sa ashiato-agent -n "$NS"
mapfile -t NODE_NAMES < <(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
N0=${NODE_NAMES[0]}
for n in "${NODE_NAMES[@]}"; do
  # What the DaemonSet would create: a pod on that node, run as ashiato-agent.
  printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"ashiato-agent-%s","namespace":"%s"},"spec":{"nodeName":"%s","serviceAccountName":"ashiato-agent","containers":[{"name":"agent","image":"ghcr.io/ashiato/ashiato-agent:0.1.0"}]}}' \
    "$n" "$NS" "$n" >"$DIR/pod-$n.json"
  kubectl create -f "$DIR/pod-$n.json" >/dev/null
done
printf '%s$ kubectl create token ashiato-agent -n %s --audience ashiato --bound-object-kind Pod --bound-object-name ashiato-agent-<node> > %s/token-<node>%s\n' \
  "$D" "$NS" "$DIR" "$R"
for n in "${NODE_NAMES[@]}"; do
  (umask 077 && kubectl create token ashiato-agent -n "$NS" --audience ashiato \
    --bound-object-kind Pod --bound-object-name "ashiato-agent-$n" >"$DIR/token-$n")
done

say "ashiato-aggregator: TokenReview auth against kubesim, hourly ConfigMaps in namespace $NS"
start aggregator "$BIN/ashiato-aggregator" --listen 127.0.0.1:0 --kubeconfig "$KCFG" \
  --auth tokenreview --store-in-cm --cm-namespace "$NS" --cm-debounce 2s --data-dir "$DIR/data"
aggregator_port() { sed -n 's/.*"serving on port \([0-9]*\).*/\1/p' "$DIR/aggregator.err" | grep .; }
wait_for 30 "the aggregator to listen" aggregator_port
URL="http://127.0.0.1:$(aggregator_port)"
wait_for 30 "the aggregator's /readyz" curl -fsS "$URL/readyz"
echo "  serving on $URL"

say "a reader: every /v1/* read needs a token whose user may list pods (docs/security.md)"
run kubectl apply --server-side -f "$SRC/daemonset/base/reader-rbac.yaml"
run kubectl create sa demo-reader -n "$NS"
run kubectl create clusterrolebinding demo-reader --clusterrole=ashiato-reader \
  --serviceaccount="$NS:demo-reader"
kubectl create clusterrolebinding demo-metrics --clusterrole=ashiato-metrics-reader \
  --serviceaccount="$NS:demo-reader" >/dev/null
# Reads take a token for the audience "ashiato"; /metrics, as kube-rbac-proxy, one for
# the API server (what Prometheus sends).
READ_TOKEN=$(kubectl create token demo-reader -n "$NS" --audience ashiato)
METRICS_TOKEN=$(kubectl create token demo-reader -n "$NS")
printf '%s$ TOKEN=$(kubectl create token demo-reader -n %s --audience ashiato)%s\n' "$D" "$NS" "$R"
curl_read() { curl -fsS -H "Authorization: Bearer $READ_TOKEN" "$@"; }

say "one ashiato-agent per node; the unified log follows as it happens ([unified])"
for n in "${NODE_NAMES[@]}"; do
  # Plain HTTP on loopback: the agent must be told it may send its token so.
  start "agent-$n" "$BIN/ashiato-agent" --node "$n" --kubeconfig "$KCFG" \
    --aggregator "$URL" --allow-insecure-aggregator --aggregator-token-file "$DIR/token-$n"
done
follow "$DIR/aggregator.log" "[unified]"

# Every agent has reported once the aggregator lists its node.
agents_reported() {
  local body n
  body=$(curl_read "$URL/v1/nodes") || return 1
  for n in "${NODE_NAMES[@]}"; do grep -q "\"node\":\"$n\"" <<<"$body" || return 1; done
}
wait_for 30 "every agent to report" agents_reported
# The first ConfigMap flush (debounce 2 s) also lets some churn happen.
cms_written() { kubectl get cm -l app=pod-ashiato -n "$NS" -o name | grep -q .; }
wait_for 30 "the first hourly ConfigMap" cms_written
sleep 0.5
pause_followers # keep the snapshots below in one piece; the unified log resumes after

say "sample per-node agent log ($DIR/agent-$N0.log): first 6 lines, then one raw"
awk -v p="[agent $N0]" "$FMT" <(head -n 6 "$DIR/agent-$N0.log")
tail -n 1 "$DIR/agent-$N0.log"

say "query API (docs/api.md)"
# Shows the curl command and the head of its raw JSON answer (saved to DIR/NAME.json).
show_curl() {
  local name=$1 url=$2
  printf "%s\$ curl -s -H \"Authorization: Bearer \$TOKEN\" '%s'%s\n" "$D" "$url" "$R"
  curl_read "$url" >"$DIR/$name.json"
  printf '%s …(%s bytes)\n' "$(head -c 160 "$DIR/$name.json")" "$(wc -c <"$DIR/$name.json")"
}
# Same g() as in FMT: a top-level field of a JSON object on one line.
# shellcheck disable=SC2016
G='function g(k,   v) {
  if (!match($0, "\"" k "\":(\"[^\"]*\"|[^],}]*)")) return ""
  v = substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3); gsub(/"/, "", v); return v
}'
show_curl nodes "$URL/v1/nodes"
sed 's/},{"epoch":/}\n{"epoch":/g' "$DIR/nodes.json" | awk "$G"'
  { printf "  %-8s pods=%-3s reports=%-4s last_report=%s stale=%s\n", g("node"), g("pods"),
      g("reports"), g("last_report"), g("stale") }'
show_curl pods "$URL/v1/pods?node=$N0"
sed 's/,{"conditions":/\n{"conditions":/g' "$DIR/pods.json" | awk -v p=" " "$FMT"
show_curl images "$URL/v1/images"
sed 's/{"digests":/\n{"digests":/g' "$DIR/images.json" | awk "$G"'
  /"image":/ { printf "  %-42s pods=%-3s nodes=%s\n", g("image"), g("pods"), g("nodes") }'
printf "%s\$ curl -s -H \"Authorization: Bearer \$(kubectl create token demo-reader -n %s)\" '%s/metrics' | grep -E '^ashiato_aggregator_(tokenreview_requests|reports|reads)_total'%s\n" \
  "$D" "$NS" "$URL" "$R"
curl -fsS -H "Authorization: Bearer $METRICS_TOKEN" "$URL/metrics" |
  grep -E '^ashiato_aggregator_(tokenreview_requests|reports|reads)_total' | grep -v ' 0$' || true

say "hourly ConfigMaps in kubesim"
run kubectl get cm -l app=pod-ashiato -n "$NS"
CM=$(kubectl get cm -l app=pod-ashiato -n "$NS" -o name | head -n 1)
printf '%s$ kubectl get %s -n %s -o yaml%s   (first 14 lines)\n' "$D" "$CM" "$NS" "$R"
kubectl get "$CM" -n "$NS" -o yaml | head -n 14

resume_followers
if ((DEMO_SECONDS > 0)); then
  say "the unified log, live, until $DEMO_SECONDS s have passed (DEMO_SECONDS) or Ctrl-C"
else
  say "the unified log, live, until Ctrl-C"
fi
while ((DEMO_SECONDS <= 0 || SECONDS - START < DEMO_SECONDS)); do
  check_alive
  sleep 0.5
done
