#!/usr/bin/env bash
# test_bench.sh — every `growplate bench` workload runs briefly against the
# private servers: exit 0, a JSON line with ops > 0, no errors and the
# runner's client CPU figures; the one-shot pipelining figures and
# --pipeline-batch; and `scripts/bench autopipe` once, one round of 1 s.
# Figures are not judged here (BENCHMARKS.md and `make bench` are where
# they live).
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
  check "$w reports its client CPU per op" grep -q '"cpu_us_per_op":[0-9]' "$out"
done

# The one-shot figures: more callers than connections, sharing allowed
# and not; the counters are consistent whether or not the library
# pipelines one-shots (all 0 until it does).
oneshot_consistent() {
  awk -v u="$(field oneshot_units)" -v r="$(field oneshot_round_trips)" -v s="$(field oneshot_shared)" \
      -v k="$(field oneshot_unknown)" -v pct="$(field oneshot_shared_pct)" -v per="$(field oneshot_units_per_round_trip)" \
      'BEGIN { exit !(u != "" && r <= u && s <= u && k <= u && pct >= 0 && pct <= 100 &&
                     (u == 0 ? per == 0 : per >= 1 && per <= 256)) }'
}
for w in select1 scoped; do
  "$gp" bench "$w" --threads 6 --pool-size 2 --seconds 0.5 --json >"$out" 2>&1; rc=$?
  check "$w 6 on 2 exits 0" test $rc -eq 0
  check "$w 6 on 2: the configured batch (16 by default)" test "$(field pipeline_batch)" = 16
  check "$w 6 on 2: consistent one-shot figures" oneshot_consistent
  "$gp" bench "$w" --threads 6 --pool-size 2 --seconds 0.5 --pipeline-batch 1 --json >"$out" 2>&1; rc=$?
  check "$w --pipeline-batch 1 exits 0" test $rc -eq 0
  check "$w --pipeline-batch 1 is used" test "$(field pipeline_batch)" = 1
  check "$w --pipeline-batch 1: no unit shared a round trip" test "$(field oneshot_shared)" = 0
  check "$w --pipeline-batch 1: consistent one-shot figures" oneshot_consistent
done
DATABASE_PIPELINE_BATCH=3 "$gp" bench select1 --threads 2 --seconds 0.2 --json >"$out" 2>&1
check "DATABASE_PIPELINE_BATCH is read" test "$(field pipeline_batch)" = 3
"$gp" bench select1 --threads 4 --pool-size 2 --seconds 0.2 >"$out" 2>&1
check "the summary says the client CPU" grep -q '^  client CPU [0-9.]* us/op' "$out"
check "the summary says the one-shot figures" grep -q '^  one-shots (batch 16): ' "$out"
for bad in 0 257 x; do
  "$gp" bench select1 --pipeline-batch "$bad" >/dev/null 2>"$out"; rc=$?
  check "--pipeline-batch $bad is a usage error (exit 3)" test $rc -eq 3
done

# scripts/bench autopipe, one round of 1 s (pgbench -T takes whole
# seconds): every comparison printed, with a figure on both sides.
if command -v pgbench >/dev/null; then
  BENCH_GROWPLATE=$gp BENCH_SECONDS=1 BENCH_ROUNDS=1 "${GP_SOURCE_DIR:?}/scripts/bench" autopipe >"$out" 2>&1; rc=$?
  check "scripts/bench autopipe exits 0" test $rc -eq 0
  for line in 'select1 (64 on 8)' 'scoped (64 on 8)' 'select1 (8 on 8)' 'select1-lease (8 on 8)' \
              'select1 p99 (64 on 8)' 'scoped p99 (64 on 8)'; do
    check "autopipe prints '$line'" grep -qF "$line " "$out"
  done
  check "autopipe: every ratio has both sides" sh -c "! grep -q 'n/a' '$out'"
  check "autopipe: pgbench ran every script" sh -c "! grep -q 'pgbench -f .* failed' '$out'"
  check "autopipe: no failed calls" sh -c "! grep -q 'failed calls' '$out'"
  check "autopipe: 13 measurements, each in its rounds line" test "$(grep -c ' rounds: [0-9]' "$out")" = 13
  check "autopipe: ... and in the table" test "$(grep -E '^  (growplate|pgbench) ' "$out" | grep -vc ' rounds: ')" = 13
  [ $rc -eq 0 ] || cat "$out"
else
  echo "ok - scripts/bench autopipe # SKIP no pgbench"
fi
"$gp" bench no-such-workload >/dev/null 2>"$out"; rc=$?
check "an unknown workload is a usage error (exit 3)" test $rc -eq 3
check "... that says so" grep -q 'no-such-workload' "$out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
