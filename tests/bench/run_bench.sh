#!/usr/bin/env bash
# `make bench`: runs every benchmark against real processes and writes
# build/bench/results.json. BENCH_SCALE (default 1.0) shrinks the cluster
# sizes for a quick look, e.g. BENCH_SCALE=0.1.
set -euo pipefail
BUILD="${1:-build/release}"
BIN="$BUILD/bin"
OUT="build/bench"
SCALE="${BENCH_SCALE:-1.0}"
mkdir -p "$OUT"
RESULTS="$OUT/results.txt"
: > "$RESULTS"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

scaled() { python3 -c "import sys; print(max(int(float(sys.argv[1]) * float(sys.argv[2])), int(sys.argv[3])))" "$1" "$SCALE" "${2:-1}"; }

run() {  # run NAME COMMAND...: prints and records "name value unit" lines
  local name="$1"; shift
  echo "== $name: $*" >&2
  local start=$SECONDS
  if ! "$@" 2> "$OUT/$name.err" | tee -a "$RESULTS"; then
    echo "bench.$name.failed 1 flag" | tee -a "$RESULTS"
    tail -5 "$OUT/$name.err" >&2 || true
  fi
  echo "bench.$name.wall_seconds $((SECONDS - start)) s" | tee -a "$RESULTS"
}

TMP=$(mktemp -d /tmp/ashiato-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

# 1. Agent footprint: 110 pods on the node, timed changes.
run agent "$BIN/agent_bench" --kubesim "$BIN/kubesim" --agent "$BIN/ashiato-agent" \
  --pods 110 --changes "$(scaled 2000 100)" --rate 100 --idle-seconds 10 --workdir "$TMP" --tls

# 1b. The same for the static agent the image ships (`make agent-static`), when built;
# its figures are named agent_static.*.
STATIC_AGENT="${STATIC_AGENT:-build-static/bin/ashiato-agent}"
if [ -x "$STATIC_AGENT" ]; then
  run agent_static bash -o pipefail -c '"$@" | sed "s/^agent\./agent_static./"' _ \
    "$BIN/agent_bench" --kubesim "$BIN/kubesim" --agent "$STATIC_AGENT" \
    --pods 110 --changes "$(scaled 2000 100)" --rate 100 --idle-seconds 10 --workdir "$TMP" --tls
fi

# 2. Aggregator ingest (load generator speaking the agent protocol).
if [ -x "$BIN/ingest_bench" ]; then
  run ingest "$BIN/ingest_bench" --aggregator "$BIN/ashiato-aggregator" \
    --agents "$(scaled 5000 50)" --pods-per-agent 30 --workdir "$TMP" \
    --saturate-seconds "$(scaled 10 5)" --churn-seconds "$(scaled 10 5)" --settle-seconds 35
fi

# 2b. History store: a simulated day of changes through dedup + SQLite commits.
run store "$BIN/store_bench" --pods "$(scaled 10000 1000)" --changes-per-pod-day 6 \
  --batch 500 --workdir "$TMP"

# 2c. The state's heap per tracked pod (in process, no connections), both pod shapes.
for shape in bench realistic; do
  run "state_mem_$shape" "$BIN/state_mem_bench" --nodes "$(scaled 5000 50)" --pods-per-node 30 \
    --shape "$shape" --workdir "$TMP"
done

# 3. API server cost: kubesim with 5,000 nodes x 30 pods and 20 changes/s.
NODES=$(scaled 5000 50)
mkdir -p "$TMP/api"
# Bookmarks once a minute, as kube-apiserver's watch cache sends them.
"$BIN/kubesim" --listen 127.0.0.1:0 --nodes "$NODES" --pods-per-node 30 --churn 20 --seed 7 \
  --bookmark-interval-ms 60000 \
  --kubeconfig-out "$TMP/api/kubeconfig" > "$TMP/api/kubesim.out" 2> "$TMP/api/kubesim.err" &
KS=$!; PIDS+=("$KS")
for _ in $(seq 1 600); do [ -s "$TMP/api/kubeconfig" ] && break; sleep 0.2; done
SERVER=$(kubectl --kubeconfig "$TMP/api/kubeconfig" config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
TOKEN=$(kubectl --kubeconfig "$TMP/api/kubeconfig" config view --raw --minify -o jsonpath='{.users[0].user.token}')
run api_cost "$BIN/api_cost_bench" --server "$SERVER" --token "$TOKEN" --nodes "$NODES" \
  --window-seconds "$(scaled 60 15)" --informer-sample 20 --stats
curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/kubesim/v1/stats" > "$OUT/kubesim_stats.json" || true
python3 - "$OUT/kubesim_stats.json" <<'PY' | tee -a "$RESULTS"
import json, sys
s = json.load(open(sys.argv[1]))
print(f"api_cost.kubesim_total.requests {s['requests_total']} requests")
print(f"api_cost.kubesim_total.response_bytes {s['response_bytes_total']} bytes")
print(f"api_cost.kubesim_total.watch_events_sent {s['watch_events_sent']} events")
for verb, by in sorted(s.get("by_verb", {}).items()):
    if "pods" in by:
        print(f"api_cost.kubesim_total.{verb}_pods_requests {by['pods']['requests']} requests")
        print(f"api_cost.kubesim_total.{verb}_pods_bytes {by['pods']['bytes']} bytes")
PY
echo "api_cost.kubesim_rss_peak $(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$KS/status) MiB" | tee -a "$RESULTS"
kill "$KS" 2>/dev/null || true

# 3b. Relist storm: 5,000 agents' reflectors, kubesim drops every watch and
# compacts; old (quorum relist) vs new (relist at the last RV) in one run.
if [ -x "$BIN/relist_bench" ]; then
  run relist "$BIN/relist_bench" --nodes "$(scaled 5000 50)" --pods-per-node 30
fi

# 3c. End-to-end latency: PATCH on kubesim -> unified log line, through 20
# real agents and the aggregator, at 20/200/2,000 changes/s; old fixed
# 500 ms batch delay vs batching only under load, in one run.
if [ -x "$BIN/latency_bench" ]; then
  run e2e_latency "$BIN/latency_bench" --aggregator "$BIN/ashiato-aggregator" \
    --agent "$BIN/ashiato-agent" --agents 20 --pods-per-node 10 --rates 20,200,2000 \
    --seconds "$(scaled 15 3)" --workdir "$TMP"
fi

# 4. ConfigMap writer at 150,000 pods.
if [ -x "$BIN/cm_bench" ]; then
  run configmaps "$BIN/cm_bench" --pods "$(scaled 150000 1000)" --nodes "$NODES"
fi

# 5. Record codec (Google Benchmark).
if [ -x "$BIN/codec_bench" ]; then
  run codec "$BIN/codec_bench" --benchmark_min_time=0.2
fi

python3 - "$RESULTS" "$OUT/results.json" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) == 3:
        try:
            rows.append({"name": parts[0], "value": float(parts[1]), "unit": parts[2]})
        except ValueError:
            pass
json.dump({"results": rows}, open(sys.argv[2], "w"), indent=1)
print(f"wrote {sys.argv[2]} ({len(rows)} figures)")
PY
