#!/usr/bin/env bash
# Runs every libFuzzer target of a -DASHIATO_FUZZ=ON build for SECONDS each,
# one after the other, and prints a table (executions, executions/s, new
# corpus entries, result). Exits non-zero if any target crashed, leaked or
# timed out; the failing input is kept in BUILD_DIR/fuzz-artifacts/.
#
#   tests/fuzz/run_fuzz.sh BUILD_DIR SECONDS [TARGET...]
#
# The seed corpus in tests/fuzz/corpus/<target> is only read; what the
# fuzzer finds goes to BUILD_DIR/fuzz-corpus/<target> (kept between runs).
set -uo pipefail
build=${1:?usage: run_fuzz.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: run_fuzz.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
src=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for d in "$src"/corpus/*/; do targets+=("$(basename "$d")"); done
fi
mkdir -p "$build/fuzz-artifacts" "$build/fuzz-logs"
# Leaks fail the run; a slow input (> 10 s) is a timeout; 2 GiB RSS at most.
common=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -max_total_time="$seconds")
failed=0
summary=()
for t in "${targets[@]}"; do
  bin="$build/bin/${t}_fuzz"
  if [ ! -x "$bin" ]; then
    echo "missing $bin (cmake -DASHIATO_FUZZ=ON, build target fuzz_targets)" >&2
    exit 2
  fi
  corpus="$build/fuzz-corpus/$t"
  mkdir -p "$corpus"
  extra=()
  case "$t" in report|watch|exec_credential|service) extra=(-dict="$src/json.dict") ;; esac
  # Inputs no longer than the parser needs keep executions fast.
  case "$t" in
    duration|byte_size|time) max_len=64 ;;
    label_selector|field_selector) max_len=512 ;;
    cm_key|exec_credential|kubeconfig) max_len=2048 ;;
    *) max_len=16384 ;;  # Report bodies, gzip included; watch streams; HTTP requests.
  esac
  extra+=(-max_len=$max_len)
  log="$build/fuzz-logs/$t.log"
  echo "== $t: ${seconds}s, log $log"
  start=$(date +%s)
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    "$bin" "${common[@]}" "${extra[@]}" -artifact_prefix="$build/fuzz-artifacts/$t-" \
    "$corpus" "$src/corpus/$t" >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  files=$(find "$corpus" -type f | wc -l)
  if [ $rc -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $rc)"
    failed=1
    grep -E 'ERROR: |FUZZ_CHECK|SUMMARY|Test unit written' "$log" | head -8
  fi
  summary+=("$(printf '%-16s %6ss %12s %9s %6s %7s  %s' "$t" "$took" "${runs:-?}" "${speed:-?}" \
    "${cov:-?}" "$files" "$result")")
done
echo
printf '%-16s %7s %12s %9s %6s %7s  %s\n' target time executions exec/s cov corpus result
printf '%s\n' "${summary[@]}"
exit $failed
