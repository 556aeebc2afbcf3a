#!/usr/bin/env bash
# test_cli.sh — the CLI's conventions: help, version, config check exit codes,
# messages that name the variable, and no password in any output.
set -uo pipefail
gp=${GP_BUILD_DIR:?}/growplate
# Judge the CLI on the environments this test sets, not the developer's.
unset DATABASE_URL DATABASE_MIGRATION_URL REDIS_URL DATABASE_PASSWORD REDIS_PASSWORD
passed=0 failed=0
check() { # name, condition...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok - $name"; else failed=$((failed + 1)); echo "not ok - $name"; fi
}
run() { out=$("$@" 2>/tmp/gp-cli-err.$$); rc=$?; err=$(cat /tmp/gp-cli-err.$$); }
trap 'rm -f /tmp/gp-cli-err.$$' EXIT

run "$gp" --help;     check "--help exits 0 on stdout" test $rc -eq 0 -a -n "$out"
run "$gp" --version;  check "--version" grep -q '^growplate [0-9]' <<<"$out"
run "$gp" -V;         check "-V" grep -q '^growplate [0-9]' <<<"$out"
run "$gp";            check "no command: usage on stderr, exit 2" test $rc -eq 2 -a -n "$err" -a -z "$out"
run "$gp" nosuch;     check "unknown command exits 2" test $rc -eq 2
run "$gp" config --help; check "config --help" grep -q 'config check' <<<"$out"

run env DATABASE_POOL_MAX=abc "$gp" config check
check "POOL_MAX=abc exits 2" test $rc -eq 2
check "POOL_MAX=abc names the variable on stderr" grep -q "DATABASE_POOL_MAX: 'abc' is not a whole number" <<<"$err"
check "invalid config prints nothing on stdout" test -z "$out"

secret='pa55-w0rd-XYZ'
run env DATABASE_URL="postgresql://u:$secret@db.example:5432/app" REDIS_URL="redis://:$secret@cache:6379/1" \
    DATABASE_PASSWORD="$secret" "$gp" config check
check "valid config exits 0" test $rc -eq 0
check "no password in output" bash -c '! grep -q -- "$0" <<<"$1$2"' "$secret" "$out" "$err"
check "URL shown redacted" grep -q 'postgresql://u:\*\*\*\*\*\*\*\*@db.example:5432/app' <<<"$out"

# The shipped example loads clean as it is.
run bash -c 'set -a; . "$1"; set +a; exec "$2" config check' _ "${GP_SOURCE_DIR:?}/.env.example" "$gp"
check ".env.example passes config check" test $rc -eq 0
[ $rc -eq 0 ] || echo "$err" >&2

run env DATABASE_URL="postgresql://u:$secret@db:notaport/app" "$gp" config check
check "bad URL exits 2" test $rc -eq 2
check "bad URL message has no password" bash -c '! grep -q -- "$0" <<<"$1$2"' "$secret" "$out" "$err"

# Bytes that used to end the scan of a URL's user info: quote, double quote,
# blank, '?' (tests/test_redact.c tries every byte in every position). Redis
# URLs must percent-encode '?' and '#'.
for pw in "it's-$secret" "say-\"$secret\"" "two words $secret" "why?$secret" "$secret#frag"; do
  redis="redis://u:$pw@cache:6379/1"
  case $pw in *[?#]*) redis="redis://cache:6379/1" ;; esac
  for json in "" --json; do
    run env DATABASE_URL="postgresql://u:$pw@db.example:5432/app" REDIS_URL="$redis" \
        DATABASE_MIGRATION_URL="host=db.example password='${pw//\'/\\\'}' dbname=app" "$gp" config check $json
    check "password '$pw' ${json:-text}: no password in output" \
        bash -c '! grep -q -- "$0" <<<"$1$2"' "$secret" "$out" "$err"
    check "password '$pw' ${json:-text}: host still shown" grep -q 'u:\*\{8\}@db.example:5432/app' <<<"$out"
  done
done

run env DATABASE_PASSWORD="$secret" "$gp" config check --json
check "--json exits 0" test $rc -eq 0
check "--json is one object, password masked" grep -qE '^\{.*"DATABASE_PASSWORD":"\*{8}".*\}$' <<<"$out"

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
