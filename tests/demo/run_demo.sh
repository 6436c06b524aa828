#!/usr/bin/env bash
# `make demo`: Ashiato end to end on a laptop, against kubesim (no cluster, no root).
#
#   bash tests/demo/run_demo.sh [BUILD_DIR]      (BUILD_DIR defaults to build)
#   DEMO_SECONDS=20 make demo                    (stop by itself after 20 s)
#
# Starts kubesim (3 nodes, 1 pod/s churn), mints one agent token per node with
# `kubectl create token`, starts ashiato-aggregator and one ashiato-agent per node,
# then shows the unified log as it happens, a per-node agent log, the query API and
# the hourly ConfigMaps. Runs until Ctrl-C or DEMO_SECONDS, stops every process it
# started, prints where the logs are and exits 0 (1 if a daemon died).
set -euo pipefail

BUILD_DIR="${1:-build}"
BIN="$(cd "$BUILD_DIR" 2>/dev/null && pwd)/bin"
DEMO_SECONDS="${DEMO_SECONDS:-0}"
NODES="${DEMO_NODES:-3}"
NS=ashiato

for b in kubesim ashiato-agent ashiato-aggregator; do
  if [[ ! -x "$BIN/$b" ]]; then
    echo "run_demo: $BIN/$b not found; build first (make build)" >&2
    exit 1
  fi
done
for t in kubectl curl; do
  command -v "$t" >/dev/null || { echo "run_demo: $t is required" >&2; exit 1; }
done
HAVE_JQ=0
command -v jq >/dev/null && HAVE_JQ=1

DIR="$(mktemp -d "${TMPDIR:-/tmp}/ashiato-demo.XXXXXX")"
KCFG="$DIR/kubeconfig"
export KUBECONFIG="$KCFG"
PIDS=()        # daemons, stopped with SIGTERM then SIGKILL
FOLLOWERS=()   # log followers, each its own process group
START=$SECONDS
STATUS=0

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${FOLLOWERS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  # Reverse start order: agents, aggregator (flushes its ConfigMaps), then kubesim.
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
  local deadline=$((SECONDS + 10))
  for pid in "${PIDS[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for pid in "${FOLLOWERS[@]}"; do wait "$pid" 2>/dev/null || true; done
  say "stopped; logs are in $DIR"
  echo "  unified log (aggregator stdout):  $DIR/aggregator.log"
  echo "  aggregator diagnostics:           $DIR/aggregator.err"
  echo "  per-node agent logs:              $DIR/agent-<node>.log (.err: diagnostics)"
  echo "  kubesim:                          $DIR/kubesim.err"
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
    sleep 0.2
  done
}

# A free loopback port (bash only: nothing listens there right now).
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  return 1
}

# Prints a JSON-lines log readably (prefix + the fields people query), as it grows.
follow() {
  local file=$1 prefix=$2
  # Each follower is its own process group (setsid) so cleanup stops tail and jq together.
  # shellcheck disable=SC2016  # $1/$2 expand in the inner bash, not here.
  if ((HAVE_JQ)); then
    setsid bash -c 'tail -n +1 -F "$1" 2>/dev/null | jq -R -r --unbuffered --arg p "$2" '\''
      (fromjson? // {raw: .}) as $l
      | if ($l | type) != "object" or $l.raw then "\($p) \(.)"
        else "\($p) \($l.timestamp // "") \($l.event // "-") \($l.namespace // "")/\($l.pod_name // "") node=\($l.node_name // "") ip=\($l.pod_ip // "") phase=\($l.phase // "")"
        end'\''' _ "$file" "$prefix" &
  else
    # shellcheck disable=SC2016
    setsid bash -c 'tail -n +1 -F "$1" 2>/dev/null | sed -u "s/^/$2 /"' _ "$file" "$prefix" &
  fi
  FOLLOWERS+=($!)
}

# Exits with a message if a daemon we started is gone.
check_alive() {
  local pid name
  for pid in "${PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      name=$(cat "$DIR/pid-$pid" 2>/dev/null || echo "pid $pid")
      echo "run_demo: $name exited unexpectedly; last diagnostics:" >&2
      tail -n 20 "$DIR/$name.err" >&2 2>/dev/null || true
      STATUS=1
      exit 1
    fi
  done
}

# start NAME CMD...: runs a daemon with stdout in NAME.log, stderr in NAME.err.
start() {
  local name=$1
  shift
  "$@" >"$DIR/$name.log" 2>"$DIR/$name.err" &
  PIDS+=($!)
  echo "$name" >"$DIR/pid-$!"
  echo "  started $name (pid $!): $*"
}

say "kubesim: a simulated Kubernetes API server with $NODES nodes and 1 pod/s churn"
start kubesim "$BIN/kubesim" --listen 127.0.0.1:0 --nodes "$NODES" --pods-per-node 4 --churn 1 \
  --kubeconfig-out "$KCFG"
wait_for 30 "kubesim's kubeconfig" test -s "$KCFG"
wait_for 30 "kubesim to answer" kubectl get --raw /version
kubectl get nodes

say "service account and one push token per agent (audience ashiato), as the kubelet would project"
kubectl get ns "$NS" >/dev/null 2>&1 || kubectl create ns "$NS"
kubectl -n "$NS" get sa ashiato-agent >/dev/null 2>&1 || kubectl -n "$NS" create sa ashiato-agent
mapfile -t NODE_NAMES < <(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
for n in "${NODE_NAMES[@]}"; do
  kubectl -n "$NS" create token ashiato-agent --audience ashiato --duration 1h >"$DIR/token-$n"
  chmod 600 "$DIR/token-$n"
  echo "  $DIR/token-$n"
done

PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
say "ashiato-aggregator on $URL (TokenReview auth, hourly ConfigMaps in namespace $NS)"
start aggregator "$BIN/ashiato-aggregator" --listen "127.0.0.1:$PORT" --kubeconfig "$KCFG" \
  --store-in-cm --cm-namespace "$NS" --cm-debounce 2s
follow "$DIR/aggregator.log" "[unified]"
wait_for 30 "the aggregator's /readyz" curl -fsS "$URL/readyz"

say "one ashiato-agent per node; the unified log follows as it happens"
for n in "${NODE_NAMES[@]}"; do
  start "agent-$n" "$BIN/ashiato-agent" --node "$n" --kubeconfig "$KCFG" \
    --aggregator "$URL" --aggregator-token-file "$DIR/token-$n"
done

# Every agent has reported once its node is listed by the aggregator.
agents_reported() {
  local body n
  body=$(curl -fsS "$URL/v1/nodes") || return 1
  for n in "${NODE_NAMES[@]}"; do grep -q "\"$n\"" <<<"$body" || return 1; done
}
wait_for 30 "every agent to report" agents_reported
check_alive
sleep 2  # let a little churn happen so the samples below show changes

say "sample per-node agent log: $DIR/agent-${NODE_NAMES[0]}.log (first 3 lines)"
head -n 3 "$DIR/agent-${NODE_NAMES[0]}.log" | cut -c1-400

pretty() { if ((HAVE_JQ)); then jq .; else cat; fi; }
say "curl $URL/v1/nodes"
curl -fsS "$URL/v1/nodes" | pretty
say "curl '$URL/v1/pods?node=${NODE_NAMES[0]}' (first 40 lines)"
curl -fsS "$URL/v1/pods?node=${NODE_NAMES[0]}" | pretty | head -n 40

say "kubectl get cm -l app=pod-ashiato -n $NS"
cms_written() { kubectl get cm -l app=pod-ashiato -n "$NS" -o name | grep -q .; }
wait_for 20 "the first hourly ConfigMap" cms_written || true
kubectl get cm -l app=pod-ashiato -n "$NS"

if ((DEMO_SECONDS > 0)); then
  say "running until $DEMO_SECONDS s have passed (DEMO_SECONDS) or Ctrl-C"
else
  say "running until Ctrl-C"
fi
while ((DEMO_SECONDS <= 0 || SECONDS - START < DEMO_SECONDS)); do
  check_alive
  sleep 0.5
done
