#!/usr/bin/env bash
# test_cli.sh — the CLI's conventions: help, version, exit codes (0 ok, 1
# findings, 2 failed, 3 invalid configuration or usage), messages that name
# the variable, --json failures as one JSON error object for every
# subcommand, libpq's PG* variables, and no password or tenant key in any
# output. The checks that need the private servers run when
# `scripts/services env` is in the environment.
set -uo pipefail
gp=${GP_BUILD_DIR:?}/growplate
srv_url=${DATABASE_URL:-} srv_owner=${DATABASE_MIGRATION_URL:-} srv_redis=${REDIS_URL:-}
# Judge the CLI on the environments this test sets, not the developer's.
unset DATABASE_URL DATABASE_MIGRATION_URL REDIS_URL DATABASE_PASSWORD REDIS_PASSWORD GROWPLATE_ENV \
      DATABASE_TENANT_KEY DATABASE_TENANT_KEY_FILE DATABASE_TENANT_KEY_PREVIOUS
for v in $(compgen -e | grep '^PG'); do unset "$v"; done
passed=0 failed=0
check() { # name, condition...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok - $name"; else failed=$((failed + 1)); echo "not ok - $name"; fi
}
tmp=$(mktemp -d)
listener=
trap 'rm -rf "$tmp"; [ -n "$listener" ] && kill "$listener" 2>/dev/null' EXIT
run() { out=$("$@" 2>"$tmp/err"); rc=$?; err=$(cat "$tmp/err"); }

# jfields JSON PATH...: one line per dotted PATH, the value there (strings
# bare with newlines as \n, the rest as JSON; "" when absent; PATH@keys: the
# object's keys, sorted, comma-separated), failing unless JSON is exactly one
# JSON object. jfield JSON PATH: one of them.
if command -v jq >/dev/null; then
  jfields() { local j=$1; shift; jq -ser --args 'if length == 1 and (.[0] | type) == "object" then .[0] as $d
      | $ARGS.positional[] | (split("@") | .[0]) as $p | (split("@") | length > 1) as $keys
      | ($d | getpath($p | split(".") | map(select(. != "") | if test("^[0-9]+$") then tonumber else . end)))
      | if $keys then (keys | join(",")) elif . == null then "" elif type == "string" then gsub("\n"; "\\n")
        else tojson end else error("not one object") end' "$@" <<<"$j" 2>/dev/null; }
elif command -v python3 >/dev/null; then
  jfields() { python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert isinstance(d, dict)
for path in sys.argv[2:]:
    p, _, keys = path.partition("@")
    v = d
    try:
        for k in filter(None, p.split(".")):
            v = v[int(k)] if isinstance(v, list) else v[k]
    except (KeyError, IndexError, TypeError):
        v = None
    print(",".join(sorted(v)) if keys else "" if v is None else v.replace("\n", "\\n") if isinstance(v, str)
          else json.dumps(v))' "$@" 2>/dev/null; }
else
  echo "not ok - no JSON parser (jq or python3) to check --json output"; exit 1
fi
jfield() { jfields "$1" "$2"; }

secret='pa55-w0rd-XYZ'
key=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
no_secret() { ! grep -qF -e "$secret" -e "$key" -e "${key:0:24}" <<<"$out$err"; }

# expect_json_error NAME STATUS CLASS EXIT: the command just run exited EXIT,
# printed exactly one JSON error object with that status, class and exit
# code, kept its human message on stderr, and showed no secret.
expect_json_error() {
  local name=$1 status=$2 class=$3 code=$4 f nl
  mapfile -t f < <(jfields "$out" ok error.status error.class exit error@keys error.message)
  check "$name: exits $code" test "$rc" -eq "$code"
  check "$name: stdout is one JSON object with ok false" test "${f[0]:-}" = false
  check "$name: error.status $status" test "${f[1]:-}" = "$status"
  check "$name: error.class $class" test "${f[2]:-}" = "$class"
  check "$name: \"exit\":$code" test "${f[3]:-}" = "$code"
  check "$name: every error field present" \
    bash -c '[[ ,$0, == *,class,detail,hint,message,*retriable,sqlstate,status, ]]' "${f[4]:-}"
  nl='\n'
  check "$name: stderr keeps the human message" grep -qF -- "${f[5]%%"$nl"*}" <<<"$err"
  check "$name: no password or tenant key" no_secret
  [ "$rc" -eq "$code" ] && [ "${f[1]:-}" = "$status" ] || printf '  rc %s\n  out %s\n  err %s\n' "$rc" "$out" "$err"
}

# ---- help, version, usage ------------------------------------------------------------
run "$gp" --help;     check "--help exits 0 on stdout" test $rc -eq 0 -a -n "$out"
check "--help has the exit-code table" bash -c 'grep -q "^  3  invalid configuration or usage" <<<"$0"' "$out"
run "$gp" --version;  check "--version" grep -q '^growplate [0-9]' <<<"$out"
run "$gp" -V;         check "-V" grep -q '^growplate [0-9]' <<<"$out"
run "$gp";            check "no command: usage on stderr, exit 3" test $rc -eq 3 -a -n "$err" -a -z "$out"
run "$gp" nosuch;     check "unknown command exits 3, nothing on stdout" test $rc -eq 3 -a -z "$out"
run "$gp" nosuch --json; expect_json_error "unknown command --json" GP_ERR_INVALID usage 3
for c in config health metrics demo migrate audit gen-types bench; do
  run "$gp" $c --help
  check "$c --help documents exit code 3" grep -q '3 invalid' <<<"$(tr '\n' ' ' <<<"$out" | tr -s ' ')"
done
run "$gp" config --help; check "config --help" grep -q 'config check' <<<"$out"

# Usage errors of every subcommand, with --json: one JSON error object.
usage_cases=(
  "config|config --json"
  "config|config chek --json"
  "config check|config check --bogus --json"
  "health|health --deadline 0 --json"
  "health|health --watch x --json"
  "health|health --bogus --json"
  "metrics|metrics --json"
  "metrics|metrics --deadline nope --json"
  "demo|demo --json"
  "migrate|migrate --bogus --json"
  "audit|audit --bogus --json"
  "gen-types|gen-types --json"
  "gen-types|gen-types --check --bogus --json"
  "bench|bench --json"
  "bench|bench no-such-workload --json"
  "bench select1|bench select1 --threads 0 --json"
  "bench select1|bench select1 --seconds x --json"
)
for c in "${usage_cases[@]}"; do
  cmd=${c%%|*} args=${c#*|}
  run env DATABASE_URL="postgresql://u:$secret@127.0.0.1:1/x" DATABASE_TENANT_KEY=$key "$gp" $args
  expect_json_error "usage: growplate $args" GP_ERR_INVALID usage 3
  check "usage: growplate $args: names the command" test "$(jfield "$out" command)" = "$cmd"
  check "usage: growplate $args: points to --help" grep -q "see 'growplate ${cmd%% *} --help'" <<<"$err"
done
# Arguments are quoted safely: a URL's password masked, a key not at all.
run "$gp" health --deadline "postgresql://u:$secret@db/x" --json
expect_json_error "a URL as an argument" GP_ERR_INVALID usage 3
run "$gp" health --deadline "$key" --json
expect_json_error "a key as an argument" GP_ERR_INVALID usage 3
check "a key as an argument: said so" grep -q 'not shown: it looks like a key' <<<"$err"

# ---- config check ------------------------------------------------------------------------
run env DATABASE_POOL_MAX=abc DATABASE_URL=postgresql://db/app "$gp" config check
check "POOL_MAX=abc exits 3" test $rc -eq 3
check "POOL_MAX=abc names the variable on stderr" grep -q "DATABASE_POOL_MAX: 'abc' is not a whole number" <<<"$err"
check "invalid config prints nothing on stdout" test -z "$out"
run env DATABASE_POOL_MAX=abc REDIS_POOL_SIZE=0 DATABASE_URL="postgresql://u:$secret@db/app" \
    DATABASE_TENANT_KEY=$key "$gp" config check --json
expect_json_error "invalid config --json" GP_ERR_CONFIG config 3
check "invalid config --json: every problem listed" test "$(jfield "$out" error.problems.1 | cut -c1-16)" = REDIS_POOL_SIZE:
check "invalid config --json: the first problem" grep -q "^DATABASE_POOL_MAX: 'abc'" <<<"$(jfield "$out" error.problems.0)"

run env DATABASE_URL="postgresql://u:$secret@db.example:5432/app" REDIS_URL="redis://:$secret@cache:6379/1" \
    DATABASE_PASSWORD="$secret" "$gp" config check
check "valid config exits 0" test $rc -eq 0
check "no password in output" no_secret
check "URL shown redacted" grep -q 'postgresql://u:\*\*\*\*\*\*\*\*@db.example:5432/app' <<<"$out"

# The shipped example loads clean as it is.
run bash -c 'set -a; . "$1"; set +a; exec "$2" config check' _ "${GP_SOURCE_DIR:?}/.env.example" "$gp"
check ".env.example passes config check" test $rc -eq 0
[ $rc -eq 0 ] || echo "$err" >&2

run env DATABASE_URL="postgresql://u:$secret@db:notaport/app" "$gp" config check
check "bad URL exits 3" test $rc -eq 3
check "bad URL message has no password" no_secret
run env DATABASE_URL="postgresql://u:$secret@db:notaport/app" "$gp" config check --json
expect_json_error "bad URL --json" GP_ERR_CONFIG config 3

# Bytes that used to end the scan of a URL's user info: quote, double quote,
# blank, '?' (tests/test_redact.c tries every byte in every position). Redis
# URLs must percent-encode '?' and '#'.
for pw in "it's-$secret" "say-\"$secret\"" "two words $secret" "why?$secret" "$secret#frag"; do
  redis="redis://u:$pw@cache:6379/1"
  case $pw in *[?#]*) redis="redis://cache:6379/1" ;; esac
  for json in "" --json; do
    run env DATABASE_URL="postgresql://u:$pw@db.example:5432/app" REDIS_URL="$redis" \
        DATABASE_MIGRATION_URL="host=db.example password='${pw//\'/\\\'}' dbname=app" "$gp" config check $json
    check "password '$pw' ${json:-text}: no password in output" no_secret
    check "password '$pw' ${json:-text}: host still shown" grep -q 'u:\*\{8\}@db.example:5432/app' <<<"$out"
  done
done

run env DATABASE_PASSWORD="$secret" DATABASE_HOST=db "$gp" config check --json
check "--json exits 0" test $rc -eq 0
check "--json is one object, password masked" grep -qE '^\{.*"DATABASE_PASSWORD":"\*{8}".*\}$' <<<"$out"
check "--json success has no error member" test "$(jfield "$out" error)" = "" -a "$(jfield "$out" DATABASE_HOST)" = db

# Nothing names the server: refused outside development, with what to do.
run env -i PATH="$PATH" "$gp" config check
check "nothing configured: exit 3" test $rc -eq 3
check "nothing configured: names DATABASE_URL and GROWPLATE_ENV" \
  bash -c 'grep -q "DATABASE_URL: is not set" <<<"$0" && grep -q "GROWPLATE_ENV=development" <<<"$0"' "$err"
check "nothing configured: the development hint" grep -q 'hint: in a development checkout: scripts/services start' <<<"$err"
run env -i PATH="$PATH" "$gp" health --json
expect_json_error "nothing configured, health --json" GP_ERR_CONFIG config 3
check "nothing configured: the hint in the JSON" grep -q 'scripts/services env' <<<"$(jfield "$out" error.hint)"
run env -i PATH="$PATH" GROWPLATE_ENV=production "$gp" config check
check "GROWPLATE_ENV=production: still refused" test $rc -eq 3
run env -i PATH="$PATH" GROWPLATE_ENV=development "$gp" config check
check "GROWPLATE_ENV=development: the built-in default" \
  bash -c '[ $0 -eq 0 ] && grep -q "^effective PostgreSQL  *postgresql://localhost:5432/growplate_dev$" <<<"$1"' "$rc" "$out"

# libpq's PG* variables: used only for what growplate's settings leave out,
# and shown with where each value came from.
run env -i PATH="$PATH" DATABASE_URL="postgresql://app@db.example/shop" PGHOST=elsewhere PGPORT=6000 \
    PGPASSWORD="$secret" PGOPTIONS='-c geqo=off' "$gp" config check
check "PG*: exits 0" test $rc -eq 0
check "PG*: a filled setting says where it came from" grep -q '^DATABASE_PORT  *6000 (from PGPORT)$' <<<"$out"
check "PG*: PGPASSWORD fills the password, masked" grep -q '^DATABASE_PASSWORD  *\*\{8\} (from PGPASSWORD)$' <<<"$out"
check "PG*: growplate's own wins" grep -q '^PGHOST  *elsewhere (not used: DATABASE_URL gives the host)$' <<<"$out"
check "PG*: libpq's own reading shown" grep -q '^PGOPTIONS  *-c geqo=off (used: libpq reads it' <<<"$out"
check "PG*: effective target" grep -q '^effective PostgreSQL  *postgresql://app:\*\{8\}@db.example:6000/shop$' <<<"$out"
check "PG*: no password" no_secret
run env -i PATH="$PATH" DATABASE_URL="postgresql://app@db.example/shop" PGPORT=6000 PGPASSWORD="$secret" \
    "$gp" config check --json
check "PG* --json: sources" test "$(jfield "$out" sources.DATABASE_PORT)" = PGPORT
check "PG* --json: PGPASSWORD masked" test "$(jfield "$out" pg_environment.PGPASSWORD.value)" = '********'
check "PG* --json: no password" no_secret
run env -i PATH="$PATH" PGHOST=pg.example PGDATABASE=shop "$gp" config check
check "PG* alone names the server" \
  bash -c '[ $0 -eq 0 ] && grep -q "^effective PostgreSQL  *postgresql://pg.example:5432/shop$" <<<"$1"' "$rc" "$out"
run env -i PATH="$PATH" DATABASE_URL=postgresql://db.example/app PGHOSTADDR=10.0.0.9 "$gp" config check --json
expect_json_error "PGHOSTADDR refused" GP_ERR_CONFIG config 3
run env -i PATH="$PATH" PGSERVICE=prod "$gp" config check
check "PGSERVICE without DATABASE_URL refused" \
  bash -c '[ $0 -eq 3 ] && grep -q "DATABASE_URL=.service=prod." <<<"$1"' "$rc" "$err"
run env -i PATH="$PATH" DATABASE_HOST=db PGPORT=abc PGPASSWORD="$secret" "$gp" config check
check "a bad PG* value names the variable" bash -c '[ $0 -eq 3 ] && grep -q "PGPORT: .abc. is not a port" <<<"$1"' "$rc" "$err"
check "a bad PG* value: no password" no_secret

# ---- failures of every subcommand against a server that is not there ------------------
down="postgresql://growplate_app:$secret@127.0.0.1:1/x"
export REDIS_URL=redis://127.0.0.1:1/0 DATABASE_TENANT_KEY=$key
run env DATABASE_URL="$down" "$gp" health --json --deadline 3000
expect_json_error "health down --json" GP_ERR_CONNECT connection 2
check "health down --json: the report is still there" test "$(jfield "$out" status)" = down
check "health down --json: the probe's message" test -n "$(jfield "$out" postgres.error)"
check "health down --json: retriable" test "$(jfield "$out" error.retriable)" = true
run env DATABASE_URL="$down" "$gp" health --deadline 3000
check "health down (table): exit 2, reason on stderr" bash -c '[ $0 -eq 2 ] && grep -q "down: PostgreSQL" <<<"$1"' "$rc" "$err"
check "health down (table): no password" no_secret
run env DATABASE_URL="$down" "$gp" metrics --deadline 3000
check "metrics with the server down: exit 0, growplate_up 0" \
  bash -c '[ $0 -eq 0 ] && grep -q "^growplate_up{server=\"postgres\"} 0$" <<<"$1"' "$rc" "$out"
run env DATABASE_URL="$down" "$gp" audit --json
expect_json_error "audit unreachable --json" GP_ERR_CONNECT connection 2
run env DATABASE_URL="$down" "$gp" gen-types --check --header "$tmp/h" --source "$tmp/c"
check "gen-types unreachable: exit 2, no password" bash -c '[ $0 -eq 2 ] && [ -n "$1" ]' "$rc" "$err"
check "gen-types unreachable: no password" no_secret
run env DATABASE_URL="$down" DATABASE_MIGRATION_URL="${down/growplate_app/growplate_owner}" "$gp" migrate --json
expect_json_error "migrate unreachable --json" GP_ERR_CONNECT connection 2
check "migrate unreachable --json: the report's members too" test "$(jfield "$out" applied)" = 0
run env DATABASE_URL="$down" "$gp" migrate --json
expect_json_error "migrate without DATABASE_MIGRATION_URL --json" GP_ERR_CONFIG config 3
check "... naming the variable" grep -q DATABASE_MIGRATION_URL <<<"$(jfield "$out" error.message)"
run env DATABASE_URL="$down" "$gp" bench select1 --seconds 0.1 --threads 1 --json
expect_json_error "bench unreachable --json" GP_ERR_CONNECT connection 2
check "bench unreachable --json: names the workload" test "$(jfield "$out" command)" = "bench select1"
run env DATABASE_URL="$down" "$gp" bench pool-memory --json
expect_json_error "bench pool-memory unreachable --json" GP_ERR_CONNECT connection 2
run env DATABASE_URL="$down" DATABASE_MIGRATION_URL="${down/growplate_app/growplate_owner}" "$gp" demo
check "demo unreachable: exit 2, the step named" bash -c '[ $0 -eq 2 ] && grep -q "migrate failed: " <<<"$1"' "$rc" "$err"
check "demo unreachable: no password" no_secret
run env DATABASE_URL="$down" "$gp" demo
check "demo without DATABASE_MIGRATION_URL: exit 3 naming it" \
  bash -c '[ $0 -eq 3 ] && grep -q "DATABASE_MIGRATION_URL: is not set" <<<"$1"' "$rc" "$err"
check "demo unreachable: no password" no_secret

# A server that accepts connections and never answers: a timeout.
if command -v python3 >/dev/null; then
  python3 -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
held = []
while True:
    held.append(s.accept()[0])' >"$tmp/port" &
  listener=$!
  for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
  silent="postgresql://growplate_app:$secret@127.0.0.1:$(cat "$tmp/port")/x"
  run env DATABASE_URL="$silent" "$gp" health --json --deadline 500
  expect_json_error "health, a silent server --json" GP_ERR_TIMEOUT timeout 2
  run env DATABASE_URL="$silent" DATABASE_TIMEOUT=1s "$gp" audit --json
  check "audit, a silent server --json: exit 2, one JSON object" \
    bash -c '[ $0 -eq 2 ] && [ "$1" = false ]' "$rc" "$(jfield "$out" ok)"
  check "audit, a silent server: no password" no_secret
  kill "$listener" 2>/dev/null; listener=
fi

# ---- with the private servers: wrong passwords ------------------------------------------
if [ -n "$srv_url" ] && [ -n "$srv_owner" ]; then
  bad_app=$(sed -E "s#^([a-z]+://[^:]*):[^@]*@#\1:Wr0ng$secret@#" <<<"$srv_url")
  bad_owner=$(sed -E "s#^([a-z]+://[^:]*):[^@]*@#\1:Wr0ng$secret@#" <<<"$srv_owner")
  run env DATABASE_URL="$bad_app" REDIS_URL="$srv_redis" "$gp" health --json
  expect_json_error "health, wrong password --json" GP_ERR_AUTH auth 2
  run env DATABASE_URL="$bad_app" "$gp" audit --json
  expect_json_error "audit, wrong password --json" GP_ERR_AUTH auth 2
  check "audit, wrong password: SQLSTATE 28P01" test "$(jfield "$out" error.sqlstate)" = 28P01
  run env DATABASE_URL="$srv_url" DATABASE_MIGRATION_URL="$bad_owner" "$gp" migrate --json
  expect_json_error "migrate, wrong password --json" GP_ERR_AUTH auth 2
  run env DATABASE_URL="$bad_app" REDIS_URL="$srv_redis" "$gp" bench select1 --seconds 0.1 --threads 1 --json
  expect_json_error "bench, wrong password --json" GP_ERR_AUTH auth 2
  run env DATABASE_URL="$srv_url" REDIS_URL="$srv_redis" "$gp" health --json
  check "health up --json: exit 0, the report unchanged (no ok/error members)" \
    bash -c '[ $0 -eq 0 ] && [ "$1" = up ] && [ -z "$2" ]' "$rc" "$(jfield "$out" status)" "$(jfield "$out" error)"
  run env DATABASE_URL="$srv_url" REDIS_URL=redis://127.0.0.1:1/0 "$gp" health --json
  check "health degraded --json: exit 1, the report unchanged" \
    bash -c '[ $0 -eq 1 ] && [ "$1" = degraded ] && [ -z "$2" ]' "$rc" "$(jfield "$out" status)" "$(jfield "$out" error)"
else
  echo "# the checks against the private servers skipped: no DATABASE_URL and DATABASE_MIGRATION_URL"
fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
