#!/usr/bin/env bash
# test_services.sh — scripts/services: start twice, status, restart each
# server, env, stop. Uses its own instance (its own key, data and ports), so
# the servers the other tests use are never disturbed.
# ctest-timeout: 180
# ctest-labels: nosan
set -euo pipefail
src=${GP_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
export GP_SERVICES_KEY="svc-test-$$"
svc="$src/scripts/services"
fail() { echo "FAIL: $*" >&2; exit 1; }
trap '"$svc" clean >/dev/null 2>&1 || true' EXIT

passed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }

"$svc" start || fail "first start"
"$svc" start || fail "second start (must be idempotent)"
ok "start twice"

"$svc" status >/dev/null || fail "status after start"
ok "status: running"

eval "$("$svc" env)"
[[ $DATABASE_URL == postgresql://growplate_app:*@127.0.0.1:*/growplate_dev ]] || fail "DATABASE_URL shape: ${DATABASE_URL%%:*}..."
[[ $DATABASE_MIGRATION_URL == postgresql://growplate_owner:* ]] || fail "DATABASE_MIGRATION_URL shape"
[[ $REDIS_URL == redis://127.0.0.1:*/0 ]] || fail "REDIS_URL shape"
[ "$(psql "$DATABASE_URL" -XtAc 'select current_user')" = growplate_app ] || fail "app role login"
roles=$(psql "$DATABASE_URL" -XtAc "select rolsuper::int::text || rolbypassrls::int::text from pg_roles where rolname = current_user")
[ "$roles" = 00 ] || fail "growplate_app must be NOSUPERUSER NOBYPASSRLS (got $roles)"
owned=$(psql "$DATABASE_URL" -XtAc "select count(*) from pg_class c join pg_roles r on r.oid = c.relowner where r.rolname = 'growplate_app'")
[ "$owned" = 0 ] || fail "growplate_app must own nothing"
[ "$(psql "$DATABASE_MIGRATION_URL" -XtAc 'select current_user')" = growplate_owner ] || fail "owner role login"
[ "$(redis-cli -u "$REDIS_URL" ping)" = PONG ] || fail "redis ping"
ok "env: both URLs work, roles as specified"

pid_before=$(psql "$DATABASE_URL" -XtAc 'select pg_postmaster_start_time()')
"$svc" restart postgres || fail "restart postgres"
pid_after=$(psql "$DATABASE_URL" -XtAc 'select pg_postmaster_start_time()')
[ "$pid_before" != "$pid_after" ] || fail "postgres did not restart"
[ "$(redis-cli -u "$REDIS_URL" ping)" = PONG ] || fail "redis must be untouched by restart postgres"
ok "restart postgres"

redis-cli -u "$REDIS_URL" set growplate:test:marker 1 >/dev/null
"$svc" restart redis || fail "restart redis"
[ "$(redis-cli -u "$REDIS_URL" exists growplate:test:marker)" = 0 ] || fail "redis must not persist across restart"
ok "restart redis (no persistence)"

"$svc" stop redis
"$svc" status redis >/dev/null && fail "status redis after stop must fail" || true
"$svc" status postgres >/dev/null || fail "postgres must survive stop redis"
"$svc" stop
set +e; "$svc" status >/dev/null; rc=$?; set -e
[ $rc -eq 3 ] || fail "status after stop: exit $rc, expected 3"
ok "stop"

set +e; "$svc" bogus 2>/dev/null; rc=$?; set -e
[ $rc -eq 2 ] || fail "unknown command: exit $rc, expected 2"
ok "usage error exits 2"
echo "$passed passed, 0 failed"
