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

# A service's own migrations: --dir and --table, their own bookkeeping.
svc=$(mktemp -d)
printf 'CREATE TABLE public.svc_cli_widgets (id int PRIMARY KEY);\n' >"$svc/0001_widgets.sql"
printf 'ALTER TABLE public.svc_cli_widgets ADD COLUMN label text;\n' >"$svc/0002_label.sql"
run "$gp" migrate --dir "$svc"
check "--dir without --table is usage (exit 3)" test $rc -eq 3
run "$gp" migrate --dir "$svc" --table migrations_of_svc_cli --dry-run
check "service dry run lists its pending migrations" grep -q '^pending 0002 label$' <<<"$out"
run "$gp" migrate --dir "$svc" --table migrations_of_svc_cli --json
check "service set applied (--json)" grep -q '"ok":true,"dry_run":false,"applied":2,"pending":0' <<<"$out"
check "service set recorded in its own table" \
  test "$(admin_db -tAc "SELECT string_agg(name, ',' ORDER BY version) FROM public.migrations_of_svc_cli")" = widgets,label
run "$gp" migrate --dir "$svc" --table migrations_of_svc_cli --json
check "service set: second run applies nothing" grep -q '"applied":0,"pending":0' <<<"$out"
run "$gp" migrate --dir "$svc" --table growplate_schema_migrations
check "the library's table is refused (exit 2, named)" bash -c '[ $0 -eq 2 ] && grep -q "library.s own bookkeeping table" <<<"$1"' "$rc" "$err"
run "$gp" migrate --dir "$svc/missing" --table migrations_of_svc_cli
check "a missing directory exits 2 naming it" bash -c '[ $0 -eq 2 ] && grep -q "$2/missing" <<<"$1"' "$rc" "$err" "$svc"
run "$gp" migrate --dir "$svc" --table migrations_of_svc_cli --lock-key abc
check "--lock-key abc is usage (exit 3)" test $rc -eq 3
# ... and their row types, into the service's files, compiled and linked against the library.
run "$gp" gen-types --prefix svc_cli_ --header "$svc/svc_rows.h"
check "gen-types --prefix without --source is usage (exit 3)" test $rc -eq 3
run "$gp" gen-types --prefix svc_cli_ --header "$svc/svc_rows.h" --source "$svc/svc_rows.c"
check "gen-types --prefix writes the service's files" test $rc -eq 0 -a -s "$svc/svc_rows.h" -a -s "$svc/svc_rows.c"
check "the service's header has only its tables" bash -c 'grep -q "gp_row_svc_cli_widgets_t" "$0" && ! grep -q "gp_row_menu_items_t\|migrations_of_svc_cli" "$0"' "$svc/svc_rows.h"
run "$gp" gen-types --check --prefix svc_cli_ --header "$svc/svc_rows.h" --source "$svc/svc_rows.c"
check "gen-types --check --prefix: up to date" test $rc -eq 0
printf '#include "svc_rows.h"\nint main(void) { gp_row_svc_cli_widgets_t w = {0}; gp_row_svc_cli_widgets_free(&w); return GP_SVC_CLI_WIDGETS_NCOLS == 2 ? 0 : 1; }\n' >"$svc/main.c"
# A sanitizer build's library needs its runtime in the program too.
san=$(sed -n 's/^GP_SANITIZE:STRING=//p' "$GP_BUILD_DIR/CMakeCache.txt" 2>/dev/null)
cc -Wall -Werror ${san:+-fsanitize=$san} -I"$GP_SOURCE_DIR/include" -o "$svc/main" "$svc/main.c" "$svc/svc_rows.c" \
   -L"$GP_BUILD_DIR" -lgrowplate -Wl,-rpath,"$GP_BUILD_DIR" 2>"$svc/cc.err"
check "the service's generated files compile and link against libgrowplate" bash -c '"$0"' "$svc/main"
[ -s "$svc/cc.err" ] && sed 's/^/  cc: /' "$svc/cc.err" | head -5
run "$gp" gen-types --table svc_cli_nope --header "$svc/x.h" --source "$svc/x.c"
check "gen-types --table of a missing table exits 2 naming it" bash -c '[ $0 -eq 2 ] && grep -q "no table \"svc_cli_nope\"" <<<"$1"' "$rc" "$err"
rm -rf "$svc"

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
