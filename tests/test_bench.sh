#!/usr/bin/env bash
# test_bench.sh — every `growplate bench` workload runs briefly against the
# private servers: exit 0, a JSON line with ops > 0 and no errors. Figures
# are not judged here (BENCHMARKS.md and `make bench` are where they live).
# ctest-timeout: 120
# ctest-labels: nosan
set -uo pipefail
gp=${GP_BUILD_DIR:?}/growplate
: "${DATABASE_URL:?run with the environment of scripts/services env}"
passed=0 failed=0
check() { local name=$1; shift; if "$@"; then passed=$((passed + 1)); echo "ok - $name"; else failed=$((failed + 1)); echo "not ok - $name"; fi; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
field() { sed -nE "s/.*\"$1\":([0-9.]+).*/\1/p" "$out"; }

workloads=$("$gp" bench --help | awk '/^workloads:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {exit}')
check "bench --help lists the workloads" test -n "$workloads"
for w in $workloads; do
  args=(--seconds 0.5 --threads 2 --json)
  [ "$w" = pool-memory ] && args=(--pool-size 2 --json)
  "$gp" bench "$w" "${args[@]}" >"$out" 2>&1; rc=$?
  check "$w exits 0" test $rc -eq 0
  check "$w names itself" grep -q "\"workload\":\"$w\"" "$out"
  check "$w did some work" awk -v n="$(field ops)" 'BEGIN { exit !(n > 0) }'
  check "$w counted no errors" test "$(field errors)" = 0
done
"$gp" bench no-such-workload >/dev/null 2>"$out"; rc=$?
check "an unknown workload is a usage error (exit 3)" test $rc -eq 3
check "... that says so" grep -q 'no-such-workload' "$out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
