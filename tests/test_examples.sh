#!/usr/bin/env bash
# test_examples.sh — every program under examples/ is built (by the
# project's CMake, as a user's program on the public API), quoted in the
# README verbatim, and runs against the private servers.
# ctest-serial
set -uo pipefail
: "${DATABASE_URL:?run with the environment of scripts/services env}"
src=${GP_SOURCE_DIR:?}; build=${GP_BUILD_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
check() { # name, condition...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok - $name"; else failed=$((failed + 1)); echo "not ok - $name"; fi
}

# The README's C blocks, one file each.
awk -v dir="$tmp" '/^```c$/ { n++; f = dir "/block" n ".c"; printf "" > f; next }
                   /^```$/ { f = "" }
                   f { print > f }' "$src/README.md"
quoted() { local b; for b in "$tmp"/block*.c; do cmp -s "$1" "$b" && return 0; done; return 1; }

for ex in "$src"/examples/*.c; do
  name=$(basename "$ex" .c)
  check "examples/$name.c is built" test -x "$build/examples/$name"
  check "examples/$name.c is quoted verbatim in README.md" quoted "$ex"
done

# quickstart: the demo's tenants, then one that does not exist.
"$build/growplate" demo >/dev/null 2>&1
out=$("$build/examples/quickstart" trattoria-demo 2>"$tmp/err"); rc=$?
check "quickstart lists the tenant's menu" test $rc -eq 0
check "quickstart shows prices from the database" grep -q '^Margherita  *9\.50$' <<<"$out"
check "quickstart shows nothing of another tenant" bash -c '! grep -q -i "sushi\|nigiri\|maki" <<<"$0"' "$out"
out=$("$build/examples/quickstart" no-such-tenant 2>&1); rc=$?
check "quickstart: an unknown tenant is exit 1, named" test $rc -eq 1 -a -n "$(grep "no active tenant 'no-such-tenant'" <<<"$out")"
out=$(env -u DATABASE_URL DATABASE_POOL_MAX=abc "$build/examples/quickstart" 2>&1); rc=$?
check "quickstart: a bad configuration is exit 2, named" test $rc -eq 2 -a -n "$(grep DATABASE_POOL_MAX <<<"$out")"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
