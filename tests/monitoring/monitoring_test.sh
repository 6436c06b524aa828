#!/usr/bin/env bash
# Prometheus's own tools on Ashiato's monitoring (ctest -R Monitoring; docs/install.md#monitoring).
#
#   monitoring_test.sh rules   SRC_DIR
#       The PrometheusRule of daemonset/overlays/monitoring: `promtool check rules` on
#       its groups, then `promtool test rules` with tests/monitoring/rules_test.yaml
#       (each alert fires on a failing series and stays silent on a healthy one).
#   monitoring_test.sh metrics SRC_DIR BIN_DIR
#       Starts kubesim, a real ashiato-aggregator and ashiato-agent on 127.0.0.1, fails
#       the agent's pod requests for a moment (so the API error family has a child), scrapes
#       /metrics of both and checks:
#         - `promtool check metrics`: no lint problem (units, _total, help text);
#         - every metric the Grafana dashboard queries is in one of the scrapes, and
#           every dashboard query is valid PromQL (promtool, as recording rules);
#         - every metric the alerts use is in one of the scrapes, except PENDING below.
# Exits 77 (ctest: skipped) when promtool is missing: `make monitoring-deps` installs it.
set -euo pipefail

MODE="${1:?usage: monitoring_test.sh rules|metrics SRC_DIR [BIN_DIR]}"
SRC="${2:?SRC_DIR}"
OVERLAY="$SRC/daemonset/overlays/monitoring"
# Metrics alerts may use before the code that exports them exists.
PENDING="ashiato_deployment_records_failed_total"  # issue 12 (deployment records)

if ! command -v promtool >/dev/null; then
  echo "SKIPPED: promtool not found (Debian package prometheus; run make monitoring-deps)"
  exit 77
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ashiato-monitoring.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n "${FAILED:-}" ]]; then echo "files kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  FAILED=1
  exit 1
}

# The rule groups of the PrometheusRule: every line after "spec:", de-indented.
extract_rules() {
  awk 'f { print substr($0, 3) } /^spec:$/ { f = 1 }' "$OVERLAY/prometheusrule.yaml"
}

if [[ "$MODE" == rules ]]; then
  extract_rules >"$WORK/ashiato.rules.yaml"
  [[ -s "$WORK/ashiato.rules.yaml" ]] || fail "no spec: in $OVERLAY/prometheusrule.yaml"
  cp "$SRC/tests/monitoring/rules_test.yaml" "$WORK/"
  promtool check rules "$WORK/ashiato.rules.yaml"
  promtool test rules "$WORK/rules_test.yaml"
  # Every alert has a unit test (named in rules_test.yaml).
  for a in $(grep -oE 'alert: [A-Za-z]+' "$WORK/ashiato.rules.yaml" | awk '{print $2}'); do
    grep -q "alertname: $a\$\|alertname: $a," "$WORK/rules_test.yaml" ||
      fail "alert $a has no test in tests/monitoring/rules_test.yaml"
  done
  echo "PASS: rules"
  exit 0
fi

[[ "$MODE" == metrics ]] || fail "unknown mode $MODE"
BIN="${3:?BIN_DIR}"
for b in kubesim ashiato-agent ashiato-aggregator; do
  [[ -x "$BIN/$b" ]] || fail "$BIN/$b not built"
done
command -v curl >/dev/null || fail "curl is required"
command -v jq >/dev/null || fail "jq is required"

# Waits up to $1 seconds for a command to succeed.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}
port_of() { sed -n "s/.*\"$2 \([0-9]*\).*/\1/p" "$1" | head -n 1 | grep .; }

KC="$WORK/kubeconfig"
"$BIN/kubesim" --listen 127.0.0.1:0 --nodes 2 --pods-per-node 3 --churn 2 \
  --kubeconfig-out "$KC" >/dev/null 2>"$WORK/kubesim.err" &
PIDS+=($!)
wait_for 30 test -s "$KC" || fail "kubesim did not start: $(cat "$WORK/kubesim.err")"
API="$(sed -n 's/^ *server: //p' "$KC")"
ADMIN="$(sed -n 's/^ *token: //p' "$KC")"

# /metrics without a token (a Prometheus without one).
AGG_FLAGS=(--read-auth none)
"$BIN/ashiato-aggregator" --listen 127.0.0.1:0 --kubeconfig "$KC" --auth none \
  --data-dir "$WORK/data" --store-in-cm --cm-debounce 1s "${AGG_FLAGS[@]}" \
  >/dev/null 2>"$WORK/aggregator.err" &
PIDS+=($!)
wait_for 30 port_of "$WORK/aggregator.err" "serving on port" ||
  fail "aggregator did not start: $(cat "$WORK/aggregator.err")"
AGG="http://127.0.0.1:$(port_of "$WORK/aggregator.err" "serving on port")"

# Plain http on 127.0.0.1, --auth none.
AGENT_FLAGS=(--allow-insecure-aggregator)
"$BIN/ashiato-agent" --node node-1 --kubeconfig "$KC" --aggregator "$AGG" \
  --listen-health 127.0.0.1:0 "${AGENT_FLAGS[@]}" >/dev/null 2>"$WORK/agent.err" &
PIDS+=($!)
wait_for 30 port_of "$WORK/agent.err" "health and metrics on port" ||
  fail "agent did not start: $(cat "$WORK/agent.err")"
AGENT="http://127.0.0.1:$(port_of "$WORK/agent.err" "health and metrics on port")"

# The agent has reported (the aggregator knows node-1); then its watch ends and pod
# requests fail with 500 until it has counted one.
wait_for 60 sh -c "curl -fsS '$AGG/metrics' | grep -q '^ashiato_aggregator_nodes 1'" ||
  fail "the agent never reported: $(tail -n 5 "$WORK/agent.err"; tail -n 5 "$WORK/aggregator.err")"
faults() {
  curl -fsS -H "Authorization: Bearer $ADMIN" -X POST -d "$1" "$API/kubesim/v1/faults" >/dev/null
}
faults '{"error_rate":1,"error_code":500,"error_path":"/pods","drop_watches":true}'
wait_for 30 sh -c "curl -fsS '$AGENT/metrics' | grep -q '^ashiato_agent_api_errors_total{code=\"500\"}'" ||
  fail "no API error counted by the agent"
faults '{"reset":true}'
# Let the ConfigMap writer run once (debounce 1 s).
wait_for 30 sh -c "curl -fsS '$AGG/metrics' | grep -q '^ashiato_cm_writes_total{verb=\"create\"} [1-9]'" ||
  fail "the aggregator wrote no ConfigMap"

curl -fsS "$AGENT/metrics" >"$WORK/agent.metrics"
curl -fsS "$AGG/metrics" >"$WORK/aggregator.metrics"
for f in agent aggregator; do
  echo "promtool check metrics < $f /metrics ($(grep -c '^# TYPE' "$WORK/$f.metrics") families)"
  out="$(promtool check metrics <"$WORK/$f.metrics" 2>&1)" || fail "$f /metrics: $out"
  [[ -z "$out" ]] || fail "$f /metrics: $out"
  # No family without help text (promtool checks this too; be explicit).
  for name in $(awk '$1 == "#" && $2 == "TYPE" {print $3}' "$WORK/$f.metrics"); do
    grep -q "^# HELP $name [^ ]" "$WORK/$f.metrics" || fail "$f: $name has no help text"
  done
done

# Every series name exposed, plus histogram families (queried as _bucket/_sum/_count).
cat "$WORK/agent.metrics" "$WORK/aggregator.metrics" |
  awk '$1 == "#" && $2 == "TYPE" {print $3; next} $1 !~ /^#/ {sub(/[{ ].*/, ""); print}' |
  sort -u >"$WORK/exposed.txt"
echo "$(wc -l <"$WORK/exposed.txt") metric names exposed by the agent and the aggregator"

# Names a set of PromQL expressions (one per line on stdin) use: ashiato_* identifiers.
names_in() { grep -oE '\bashiato_[a-z0-9_]+' | sort -u; }
missing=0

jq -r '.. | .expr? // empty' "$OVERLAY/ashiato-dashboard.json" >"$WORK/dashboard.exprs"
[[ -s "$WORK/dashboard.exprs" ]] || fail "no queries in ashiato-dashboard.json"
for name in $(names_in <"$WORK/dashboard.exprs"); do
  grep -qx "$name" "$WORK/exposed.txt" || {
    echo "dashboard queries $name, which neither binary exposes" >&2
    missing=1
  }
done
echo "dashboard: $(wc -l <"$WORK/dashboard.exprs") queries, $(names_in <"$WORK/dashboard.exprs" | wc -l) metrics"
# Valid PromQL: each query as a recording rule ($__rate_interval is Grafana's).
{
  echo "groups:"
  echo "  - name: dashboard"
  echo "    rules:"
  i=0
  while IFS= read -r expr; do
    i=$((i + 1))
    printf '      - record: dashboard:query%d\n        expr: %s\n' "$i" \
      "$(jq -Rn --arg e "${expr//\$__rate_interval/5m}" '$e')"
  done <"$WORK/dashboard.exprs"
} >"$WORK/dashboard.rules.yaml"
promtool check rules "$WORK/dashboard.rules.yaml" >/dev/null ||
  fail "dashboard queries are not valid PromQL: $(promtool check rules "$WORK/dashboard.rules.yaml" 2>&1)"

extract_rules >"$WORK/ashiato.rules.yaml"
for name in $(grep -E '^ *expr:|^ {14}' "$WORK/ashiato.rules.yaml" | names_in); do
  grep -qx "$name" "$WORK/exposed.txt" && continue
  if [[ " $PENDING " == *" $name "* ]]; then
    echo "alerts use $name: not exported yet (pending, allowed)"
    continue
  fi
  echo "alerts use $name, which neither binary exposes" >&2
  missing=1
done
((missing == 0)) || fail "metric names above are not exposed"
echo "PASS: metrics"
