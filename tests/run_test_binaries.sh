#!/usr/bin/env bash
# Runs whole test binaries of BUILD_DIR/bin, JOBS at a time, each with its
# output in BUILD_DIR/test-logs/<name>.log, and prints how long each took.
# Exits non-zero if any failed (its log's tail is printed). Used by
# `make test-sanitize` and `make tsan` (docs/reliability.md), where running
# a binary whole is simpler than selecting its tests in ctest.
#
#   tests/run_test_binaries.sh BUILD_DIR JOBS BINARY...
set -uo pipefail
build=${1:?usage: run_test_binaries.sh BUILD_DIR JOBS BINARY...}
jobs=${2:?usage: run_test_binaries.sh BUILD_DIR JOBS BINARY...}
shift 2
logs="$build/test-logs"
mkdir -p "$logs"
run_one() {
  local build=$1 name=$2 logs=$3
  local start=$(date +%s)
  "$build/bin/$name" --gtest_brief=1 >"$logs/$name.log" 2>&1
  local rc=$?
  local took=$(( $(date +%s) - start ))
  if [ $rc -eq 0 ]; then
    echo "PASS $name (${took}s)"
  else
    echo "FAIL $name (${took}s, exit $rc): $logs/$name.log"
    tail -40 "$logs/$name.log" | sed "s/^/  [$name] /"
  fi
  return $rc
}
export -f run_one
start=$(date +%s)
printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one "$0" "$1" "$2"' "$build" {} "$logs"
rc=$?
echo "$# binaries in $(( $(date +%s) - start ))s: $([ $rc -eq 0 ] && echo all passed || echo FAILURES)"
exit $rc
