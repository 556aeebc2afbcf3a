#!/usr/bin/env bash
# test_demo.sh — `growplate demo` (the main job behind `make demo`) runs end
# to end against the private servers, twice (it must be re-runnable), and
# never prints a password.
# ctest-timeout: 120
# ctest-labels: nosan
set -uo pipefail
gp=${GP_BUILD_DIR:?}/growplate
: "${DATABASE_URL:?run with the environment of scripts/services env}"
passed=0 failed=0
check() { local name=$1; shift; if "$@"; then passed=$((passed + 1)); echo "ok - $name"; else failed=$((failed + 1)); echo "not ok - $name"; fi; }
out=$(mktemp); err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
app_pw=$(sed -E 's|^[a-z]+://[^:]*:([^@]*)@.*|\1|' <<<"$DATABASE_URL")
owner_pw=$(sed -E 's|^[a-z]+://[^:]*:([^@]*)@.*|\1|' <<<"$DATABASE_MIGRATION_URL")

for run in 1 2; do
  "$gp" demo >"$out" 2>"$err"; rc=$?
  check "run $run exits 0" test $rc -eq 0
  check "run $run completes the tour" grep -q '^Tour complete.' "$out"
  check "run $run: the other tenant sees none of the first's rows" grep -q "Trattoria Demo's Margherita by its id: 0 rows" "$out"
  check "run $run: a cross-tenant insert is refused" grep -q 'inserts a row for Trattoria Demo: refused (SQLSTATE 42501' "$out"
  check "run $run: no tenant, no rows" grep -q 'no tenant set: 0 menu items visible' "$out"
  check "run $run: a cache miss, then a hit" bash -c 'grep -q "\"menu\": miss" "$0" && grep -q "\"menu\": hit" "$0"' "$out"
  check "run $run: health up" grep -q 'overall: up' "$out"
  check "run $run: no password printed" bash -c '! grep -qF -e "$1" -e "$2" "$0" "$3"' "$out" "$app_pw" "$owner_pw" "$err"
  check "run $run: nothing on stderr when piped" test ! -s "$err"
done
check "second run reuses the tenants" grep -q '(from an earlier run)' "$out"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
