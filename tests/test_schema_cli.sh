#!/usr/bin/env bash
# test_schema_cli.sh — `growplate migrate` and `growplate audit` from the
# outside: exit codes, --json, --dry-run, idempotence, findings, and no
# password in any output. Works in its own scratch database.
set -uo pipefail
gp=${GP_BUILD_DIR:?}/growplate
: "${GP_PG_ADMIN_CONNINFO:?run eval \"\$(scripts/services env)\" first}"
db=gp_scratch_cli_$$
admin() { psql -X -q -v ON_ERROR_STOP=1 "$GP_PG_ADMIN_CONNINFO" "$@"; }
admin_db() { psql -X -q -v ON_ERROR_STOP=1 "$GP_PG_ADMIN_CONNINFO dbname=$db" "$@"; }
with_db() { sed -E "s#(://[^/]*)/[^?]*#\1/$db#" <<<"$1"; }
app_url=$(with_db "$DATABASE_URL")
owner_url=$(with_db "$DATABASE_MIGRATION_URL")
admin -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
      -c "CREATE DATABASE $db OWNER growplate_owner"
trap 'admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1; rm -f /tmp/gp-schema-err.$$' EXIT
export DATABASE_URL=$app_url DATABASE_MIGRATION_URL=$owner_url

passed=0 failed=0
check() { local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok - $name"; else failed=$((failed + 1)); echo "not ok - $name"; fi; }
run() { out=$("$@" 2>/tmp/gp-schema-err.$$); rc=$?; err=$(cat /tmp/gp-schema-err.$$); }
secret=$(sed -E 's#.*://[^:]*:([^@]*)@.*#\1#' <<<"$owner_url")

run "$gp" migrate --help;  check "migrate --help" grep -q 'dry-run' <<<"$out"
run "$gp" audit --help;    check "audit --help" grep -q 'security_invoker' <<<"$out"
run "$gp" migrate --bogus; check "unknown option exits 3 (usage)" test $rc -eq 3

run "$gp" migrate --dry-run
check "dry run exits 0" test $rc -eq 0
check "dry run lists the core schema as pending" grep -q '^pending 0001 core_schema$' <<<"$out"
check "dry run changed nothing" test "$(admin_db -tAc "SELECT to_regclass('public.tenants') IS NULL")" = t

run "$gp" migrate
check "migrate exits 0, quietly" test $rc -eq 0 -a -z "$out" -a -z "$err"
run "$gp" migrate --json
check "second run: nothing applied" grep -q '"ok":true,"dry_run":false,"applied":0,"pending":0' <<<"$out"
check "--json names the state" grep -q '"state":"applied"' <<<"$out"

run "$gp" audit
check "our schema audits clean (exit 0, no output)" test $rc -eq 0 -a -z "$out"
run "$gp" audit --json
check "audit --json clean" grep -q '"role":"growplate_app","tables_checked":6,"clean":true,"findings":\[\]' <<<"$out"

# gen-types into a temporary directory reproduces the committed files.
tmp=$(mktemp -d)
run "$gp" gen-types --header "$tmp/rows.h" --source "$tmp/rows.c"
check "gen-types exits 0, quietly" test $rc -eq 0 -a -z "$out" -a -z "$err"
check "gen-types header is the committed one" cmp -s "$tmp/rows.h" "${GP_SOURCE_DIR:?}/include/growplate/rows.h"
check "gen-types source is the committed one" cmp -s "$tmp/rows.c" "$GP_SOURCE_DIR/src/rows.c"
run "$gp" gen-types --check --header "$GP_SOURCE_DIR/include/growplate/rows.h" --source "$GP_SOURCE_DIR/src/rows.c"
check "gen-types --check: up to date" test $rc -eq 0
echo '/* edited */' >>"$tmp/rows.c"
run "$gp" gen-types --check --header "$tmp/rows.h" --source "$tmp/rows.c"
check "gen-types --check: out of date exits 1 naming the file" test $rc -eq 1 -a -n "$(grep "$tmp/rows.c is out of date" <<<"$err")"
rm -rf "$tmp"

admin_db -c "CREATE TABLE public.leaky (tenant_id uuid NOT NULL, id int PRIMARY KEY); ALTER TABLE public.leaky OWNER TO growplate_owner"
run "$gp" audit
check "findings exit 1" test $rc -eq 1
check "findings name the table" grep -q '^rls_disabled public.leaky: ' <<<"$out"
check "findings name the key" grep -q '^key_without_tenant public.leaky.leaky_pkey: ' <<<"$out"
run "$gp" audit --json
check "audit --json findings" grep -q '"clean":false,"findings":\[{"kind":"rls_disabled","object":"public.leaky"' <<<"$out"

# An applied migration that changed: simulated by altering the recorded checksum.
admin_db -c "UPDATE growplate_schema_migrations SET checksum = repeat('0', 64) WHERE version = 1"
run "$gp" migrate
check "changed migration exits 2" test $rc -eq 2
check "changed migration names the version" grep -q 'migration 0001 (core_schema) was changed after it was applied' <<<"$err"
run "$gp" migrate --json
check "changed migration --json" grep -q '"ok":false' <<<"$out"

run env DATABASE_MIGRATION_URL="${owner_url/:$secret@/:Wr0ng$secret@}" "$gp" migrate
check "bad owner password exits 2" test $rc -eq 2
check "no password in the message" bash -c '! grep -q -- "Wr0ng" <<<"$0$1"' "$out" "$err"
run env -u DATABASE_MIGRATION_URL "$gp" migrate
check "no migration URL exits 3 naming the variable" bash -c '[ $0 -eq 3 ] && grep -q DATABASE_MIGRATION_URL <<<"$1"' "$rc" "$err"
run env DATABASE_URL="postgresql://growplate_app:S3cret@127.0.0.1:1/x" "$gp" audit
check "audit connection failure exits 2" test $rc -eq 2
check "audit failure hides the password" bash -c '! grep -q S3cret <<<"$0$1"' "$out" "$err"

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
