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

# Every C sample is part of an example, whitespace aside, so it is compiled
# and run and cannot rot: each paragraph of each ```c block of README.md,
# and each sample in a public header (comment lines indented four past
# " * " that call a gp_ function, with their continuation lines).
unquoted=$(awk '
  function squash(s) { gsub(/[ \t]+/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s); return s }
  function flush() { if (cur != "") { n++; sample[n] = squash(cur); origin[n] = at }; cur = "" }
  FNR == 1 { flush(); incode = 0; inhdr = 0 }
  FILENAME ~ /\/examples\// { text[FILENAME] = text[FILENAME] " " $0; next }
  FILENAME ~ /README\.md$/ {
    if ($0 == "```c") { incode = 1; next }
    if (incode && $0 == "```") { flush(); incode = 0; next }
    if (!incode) next
    if ($0 ~ /^[ \t]*$/) { flush(); next }
    if (cur == "") at = FILENAME ":" FNR
    cur = cur " " $0; next
  }
  {  # a public header
    if ($0 ~ /^ \*     / && (inhdr || $0 ~ /gp_[a-z0-9_]*\(/)) {
      line = $0; sub(/^ \*/, "", line); sub(/\*\/[ \t]*$/, "", line)
      if (!inhdr) at = FILENAME ":" FNR
      inhdr = 1; cur = cur " " line; next
    }
    if (inhdr) { flush(); inhdr = 0 }
  }
  END {
    flush()
    for (f in text) text[f] = squash(text[f])
    for (i = 1; i <= n; i++) {
      found = 0
      for (f in text) if (index(text[f], sample[i])) { found = 1; break }
      if (!found) print origin[i] ": " substr(sample[i], 1, 100)
    }
  }' "$src"/examples/*.c "$src"/examples/*/*.c "$src/README.md" "$src"/include/growplate/*.h 2>/dev/null)
check "every C sample of README.md and the headers is part of a built example" test -z "$unquoted"
[ -z "$unquoted" ] || printf '  not in any example: %s\n' "$unquoted"

for ex in "$src"/examples/*.c; do
  name=$(basename "$ex" .c)
  check "examples/$name.c is built" test -x "$build/examples/$name"
done
check "examples/quickstart.c is quoted verbatim (whole) in README.md" quoted "$src/examples/quickstart.c"

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

# The README's samples, run (each prints what it did; exit 0 on success).
out=$("$build/examples/pool" 2>&1); rc=$?
check "pool: leases, typed values, metrics" test $rc -eq 0 -a -n "$(grep '^id 42, price 25.00$' <<<"$out")"
out=$("$build/examples/tenant" trattoria-demo 2>&1); rc=$?
check "tenant: one-shot, retried transaction, transaction by hand, row types" \
  test $rc -eq 0 -a -n "$(grep "^renamed '.*' and back$" <<<"$out")"
out=$("$build/examples/quickstart" trattoria-demo 2>&1)
check "tenant: the renamed item has its name back" grep -q '^Margherita  *9\.50$' <<<"$out"
out=$("$build/examples/data" 2>&1); rc=$?
check "data: tenant, menu, order priced by the database, status" \
  test $rc -eq 0 -a -n "$(grep '2 lines, 32.50, confirmed$' <<<"$out")"
check "data: the menu in keyset pages" grep -q '^menu in pages of 1: Curry Rice (2 pages)$' <<<"$out"
out=$("$build/examples/cache" trattoria-demo 2>&1); rc=$?
check "cache: set/get, cache-aside, tenant invalidation" \
  test $rc -eq 0 -a -n "$(grep '^menu from the database: 4 items (1 load)$' <<<"$out")"
"$build/examples/observability" json >"$tmp/metrics" 2>"$tmp/log"; rc=$?
check "observability: metrics rendered" test $rc -eq 0
check "observability: both pools labelled" \
  grep -q '^growplate_query_statements_total{pool="replica"} 0$' "$tmp/metrics"
check "observability: the failing statement counted by class" \
  grep -q '^growplate_query_errors_total{pool="primary",class="syntax_or_undefined"} 1$' "$tmp/metrics"
check "observability: histograms" grep -q '^growplate_query_duration_seconds_bucket{pool="primary",le="+Inf"} 3$' "$tmp/metrics"
check "observability: JSON-lines records carry the tenant" \
  grep -q '^{"level":"info","component":"cache","message":"tenant [0-9a-f-]* invalidated: .*","tenant":"[0-9a-f-]\{36\}"}$' "$tmp/log"
"$build/examples/observability" syslog >/dev/null 2>"$tmp/log"; rc=$?
check "observability: syslog records (LOG_PERROR copy)" \
  test $rc -eq 0 -a -n "$(grep 'growplate-example.*\[cache\] tenant .* invalidated: .* tenant=' "$tmp/log")"

"$build/examples/copy" trattoria-demo >"$tmp/copy.out" 2>"$tmp/copy.csv"; rc=$?
check "copy: export, import (rolled back), stream closed early" test $rc -eq 0 -a -n "$(grep '^streamed 2 rows, closed early$' "$tmp/copy.out")"
check "copy: the CSV export is the tenant's menu" grep -q '^Margherita,950$' "$tmp/copy.csv"
check "copy: the export shows nothing of another tenant" bash -c '! grep -q -i "sushi\|nigiri\|maki" "$0"' "$tmp/copy.csv"
check "copy: three rows imported through the view" grep -q '^imported 3 items (3 visible in the transaction, rolled back)$' "$tmp/copy.out"
out=$("$build/examples/quickstart" trattoria-demo 2>&1)
check "copy: the import was rolled back" bash -c '! grep -q "Imported" <<<"$0"' "$out"

out=$("$build/examples/listen" trattoria-demo 2>&1); rc=$?
check "listen: the tenant's NOTIFY arrives through the descriptor" \
  test $rc -eq 0 -a -n "$(grep "^received 'order 42 ready' on channel orders for tenant trattoria-demo$" <<<"$out")"
check "listen: the cache was invalidated on commit" grep -q '^cache after commit: invalidated$' <<<"$out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
