#!/usr/bin/env bash
# test_via_pgbouncer.sh — the tenant suite and the demo through a real
# PgBouncer in transaction mode (DATABASE_POOLER=transaction): the same test
# programs as against the server, with the application's DATABASE_URL at
# PgBouncer (the owner and admin connections stay direct, as
# DATABASE_MIGRATION_URL must), on a private PostgreSQL + PgBouncer of their
# own (GP_SERVICES_KEY), stopped and deleted at the end.
# ctest-timeout: 300
# ctest-labels: nosan
# ctest-serial
set -uo pipefail
src=${GP_SOURCE_DIR:?}
build=${GP_BUILD_DIR:?}
export GP_SERVICES_KEY="bouncer-$$"
services() { "$src/scripts/services" "$@"; }
trap 'services clean >/dev/null 2>&1 || true' EXIT
services start >/dev/null && services start pgbouncer >/dev/null || { echo "cannot start the servers"; exit 1; }
eval "$(services env)"
# (its Redis too: the demo uses the cache)
export DATABASE_URL=$DATABASE_POOLER_URL DATABASE_POOLER=transaction DATABASE_STATEMENT_TIMEOUT=30s
passed=0 failed=0
check() { local name=$1; shift; if "$@"; then passed=$((passed + 1)); echo "ok - $name"; else failed=$((failed + 1)); echo "not ok - $name"; fi; }
out=$(mktemp)
trap 'rm -f "$out"; services clean >/dev/null 2>&1 || true' EXIT

"$build/growplate" migrate >"$out" 2>&1 </dev/null
check "migrate (through DATABASE_MIGRATION_URL, direct)" test $? -eq 0
# The tenant suite: scoping, the verified context, hostile tenants side by
# side, the typed data layer. Not here, because what they exercise does not
# exist through a transaction pooler (tests/test_pooler.c attacks that mode
# instead): test_hostile_reuse (named statements to hijack, raw libpq,
# COMMIT inside a tenant transaction, pipelines with their own COMMIT: all
# refused in this mode), test_query_tx (backend PIDs to terminate: PgBouncer
# makes them up), test_rls and test_side_channels (raw libpq sessions that
# expect a server session of their own).
for t in tenant tenant_adversarial tenant_forgery hostile_concurrent data; do
  if [ ! -x "$build/tests/test_$t" ]; then
    check "test_$t exists" false
    continue
  fi
  (cd "$build/tests" && timeout 120 "./test_$t") >"$out" 2>&1
  rc=$?
  check "test_$t through PgBouncer" test $rc -eq 0
  [ $rc -eq 0 ] || tail -40 "$out"
done
"$build/growplate" demo >"$out" 2>&1 </dev/null
rc=$?
check "growplate demo through PgBouncer" test $rc -eq 0
check "the demo completes its tour" grep -q '^Tour complete.' "$out"
[ $rc -eq 0 ] || tail -30 "$out"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
