#!/usr/bin/env bash
# test_service.sh — the example HTTP service (examples/service/) against the
# private servers: started on a free loopback port, ready when /healthz says
# so, driven with curl (the tenant from Host and from X-Tenant, isolation,
# bad input, an order, health, metrics), loaded with wrk for a few seconds
# (no errors, no non-2xx), and stopped with SIGTERM (exit 0, nothing left).
# Then two more instances: Redis unreachable (degraded: menus from the
# database) and PostgreSQL unreachable (down: 503 with Retry-After).
# ctest-serial
# ctest-timeout: 240
set -uo pipefail
: "${DATABASE_URL:?run with the environment of scripts/services env}"
build=${GP_BUILD_DIR:?}
service=$build/examples/service
tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0 failed=0
check() { # name, condition...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok - $name"; else failed=$((failed + 1)); echo "not ok - $name"; fi
}
fatal() { echo "not ok - $*"; echo "$passed passed, $((failed + 1)) failed"; exit 1; }

[ -x "$service" ] || fatal "$service is not built (it needs libmicrohttpd-dev: scripts/bootstrap installs it)"
for tool in curl wrk jq; do
  command -v "$tool" >/dev/null || fatal "$tool is missing (scripts/bootstrap installs it)"
done
"$build/growplate" demo >"$tmp/demo.log" 2>&1 || fatal "growplate demo (the demo tenants): $(tail -3 "$tmp/demo.log")"

# start NAME [VAR=value...]: run the service on port 0 (the kernel picks a
# free one) with extra environment; sets $port and $pid once it printed its
# address (polled, bounded).
start() {
  local name=$1; shift
  env "$@" "$service" 0 >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pid=$!
  pids+=("$pid")
  port=
  for _ in $(seq 1 200); do
    port=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$tmp/$name.out" 2>/dev/null)
    [ -n "$port" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  fatal "$name: the service did not start: $(cat "$tmp/$name.err")"
}

# get PATH [curl options...]: sets $code, $ctype, $body (also kept in
# $tmp/bodies for the secret check); $headers has the response headers.
n=0
get() {
  local path=$1; shift
  n=$((n + 1))
  local meta
  meta=$(curl -s --max-time 10 -D "$tmp/h$n" -o "$tmp/b$n" -w '%{http_code} %{content_type}' "$@" "http://127.0.0.1:$port$path")
  code=${meta%% *}; ctype=${meta#* }
  body=$(cat "$tmp/b$n"); headers=$(cat "$tmp/h$n")
  cat "$tmp/b$n" >>"$tmp/bodies"; echo >>"$tmp/bodies"
}
post() { get "$@" -H 'Content-Type: application/json'; } # post PATH --data-binary BODY [options]
json() { jq -r "$1" <<<"$body"; }
jq_true() { jq -e "$1" <<<"$2" >/dev/null 2>&1; } # jq_true FILTER TEXT
is_json() { [ "$ctype" = application/json ] && jq -e . <<<"$body" >/dev/null 2>&1; }
# raw BYTES (printf %b escapes): send them as they are, print the answer's first line.
raw() {
  local line=
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf '%b' "$1" >&3
  IFS= read -r -t 5 line <&3
  exec 3<&-
  printf '%s' "${line%$'\r'}"
}
has() { grep -q -- "$1" <<<"$2"; }
lacks() { ! grep -q -i -- "$1" <<<"$2"; }

# ---- the service, healthy -------------------------------------------------------
start main
main_pid=$pid
ready=0
for _ in $(seq 1 100); do # ready when the pool and cache answer: bounded, no blind sleep
  get /healthz
  [ "$code" = 200 ] && { ready=1; break; }
  sleep 0.1
done
check "ready: /healthz is 200 within 10 s" test $ready -eq 1
check "/healthz is JSON and says up" bash -c '[ "$0" = application/json ] && grep -q "\"status\":\"up\"" <<<"$1"' "$ctype" "$body"
children_of() { # the pids whose parent is $1 (from /proc: no procps needed)
  local f
  for f in /proc/[0-9]*/status; do
    [ "$(awk '$1 == "PPid:" { print $2 }' "$f" 2>/dev/null)" = "$1" ] && basename "${f%/status}"
  done
}
check "the service runs no child processes" test -z "$(children_of "$main_pid" | tr -d ' \n')"

get /menu -H "Host: trattoria-demo.localhost:$port"
check "menu by Host subdomain: 200 JSON" bash -c '[ "$0" = 200 ]' "$code"
check "menu by Host: the tenant's items, prices from the database" jq_true \
  '.tenant.slug == "trattoria-demo" and ([.categories[].items[] | {(.name): .price_cents}] | add
   | .Margherita == 950 and .Tiramisu == 600)' "$body"
check "menu by Host: nothing of another tenant" lacks 'nigiri\|maki\|dragon' "$body"
trattoria_menu=$body
margherita=$(json '.categories[].items[] | select(.name == "Margherita") | .id')

get /menu -H 'X-Tenant: sushi-demo'
check "menu by X-Tenant header: 200 JSON" bash -c '[ "$0" = 200 ] && [ "$1" = application/json ]' "$code" "$ctype"
check "menu by X-Tenant: this tenant's items only" \
  bash -c 'grep -q "Salmon nigiri" <<<"$0" && ! grep -q -i "margherita\|tiramisu" <<<"$0"' "$body"
salmon=$(json '.categories[].items[] | select(.name == "Salmon nigiri") | .id')

get /menu -H "Host: sushi-demo.localhost:$port" -H 'X-Tenant: trattoria-demo'
check "X-Tenant wins over Host" has '"slug":"trattoria-demo"' "$body"
get /menu -H "Host: Trattoria-Demo.LOCALHOST:$port"
check "a Host name is case-insensitive" bash -c '[ "$0" = 200 ] && grep -q "\"slug\":\"trattoria-demo\"" <<<"$1"' "$code" "$body"
get /menu -H 'X-Tenant: trattoria-demo'
check "the same menu again (from the cache) is identical" test "$body" = "$trattoria_menu"

# ---- tenants that are not there, or not named properly ---------------------------
get /menu -H 'X-Tenant: no-such-tenant'
check "unknown tenant: 404 JSON tenant_not_found" \
  bash -c '[ "$0" = 404 ] && grep -q "\"code\":\"tenant_not_found\"" <<<"$1"' "$code" "$body"
check "unknown tenant: error is JSON" is_json
get /menu -H 'X-Tenant: no-such-tenant'
check "unknown tenant again (negatively cached): 404" test "$code" = 404
get /menu -H "Host: nobody.localhost:$port"
check "unknown tenant by Host: 404" test "$code" = 404
get /menu
check "no tenant named (Host 127.0.0.1): 400 tenant_required" \
  bash -c '[ "$0" = 400 ] && grep -q tenant_required <<<"$1"' "$code" "$body"
get /menu -H 'X-Tenant: Bad_Slug'
check "malformed slug: 400 invalid_tenant" bash -c '[ "$0" = 400 ] && grep -q invalid_tenant <<<"$1"' "$code" "$body"
get /menu -H "X-Tenant: $(printf 'a%.0s' $(seq 1 300))"
check "over-long slug: 400, not echoed" bash -c '[ "$0" = 400 ] && ! grep -q aaaaaaaaaa <<<"$1"' "$code" "$body"
get /menu -H "X-Tenant: x' OR 1=1 --"
check "a crafted slug: 400" test "$code" = 400
get /menu -H "Host: -bad-.localhost"
check "malformed Host label: 400" test "$code" = 400

# ---- orders ----------------------------------------------------------------------------
get /orders -H 'X-Tenant: trattoria-demo' # primes the cached list of recent orders
check "recent orders: 200 JSON" bash -c '[ "$0" = 200 ] && [ "$1" = application/json ]' "$code" "$ctype"
post /orders -H 'X-Tenant: trattoria-demo' \
  --data-binary "{\"lines\":[{\"menu_item_id\":\"$margherita\",\"quantity\":2}],\"note\":\"test_service\"}"
check "create an order: 201 with Location" bash -c '[ "$0" = 201 ] && grep -qi "^location: /orders/" <<<"$1"' "$code" "$headers"
order=$(json '.id' 2>/dev/null)
check "the order is priced from the menu (2 x 9.50), pending" \
  jq_true '.total_cents == 1900 and .status == "pending" and .items[0].unit_price_cents == 950' "$body"
get "/orders/$order" -H 'X-Tenant: trattoria-demo'
check "the new order is visible" bash -c '[ "$0" = 200 ] && grep -q "\"note\":\"test_service\"" <<<"$1"' "$code" "$body"
get /orders -H 'X-Tenant: trattoria-demo'
check "the cached recent orders were invalidated: the new order is listed" has "\"$order\"" "$body"
get "/orders/$order" -H 'X-Tenant: sushi-demo'
check "another tenant cannot read the order: 404" test "$code" = 404
get /orders -H 'X-Tenant: sushi-demo'
check "another tenant's recent orders do not list it" lacks "$order" "$body"
post /orders -H 'X-Tenant: sushi-demo' --data-binary "{\"lines\":[{\"menu_item_id\":\"$margherita\",\"quantity\":1}]}"
check "ordering another tenant's item: 422 order_rejected" \
  bash -c '[ "$0" = 422 ] && grep -q order_rejected <<<"$1"' "$code" "$body"
post /orders -H 'X-Tenant: trattoria-demo' --data-binary "{\"lines\":[{\"menu_item_id\":\"$salmon\",\"quantity\":1}]}"
check "ordering from the other tenant's menu by id: 422" test "$code" = 422
post /orders -H 'X-Tenant: trattoria-demo' \
  --data-binary "{\"lines\":[{\"menu_item_id\":\"$margherita\",\"quantity\":1,\"unit_price_cents\":1}]}"
check "a client-supplied price is refused: 400" test "$code" = 400
get "/orders/not-a-uuid" -H 'X-Tenant: trattoria-demo'
check "a malformed order id: 400" test "$code" = 400
get "/orders/00000000-0000-4000-8000-000000000000" -H 'X-Tenant: trattoria-demo'
check "an unknown order: 404 JSON" bash -c '[ "$0" = 404 ] && grep -q order_not_found <<<"$1"' "$code" "$body"

# ---- bad input never crashes ------------------------------------------------------------
post /orders -H 'X-Tenant: trattoria-demo' --data-binary '{"lines": [ {'
check "bad JSON: 400 invalid_json" bash -c '[ "$0" = 400 ] && grep -q invalid_json <<<"$1"' "$code" "$body"
check "bad JSON: the error is JSON" is_json
for bad in '[]' '"x"' '{}' '{"lines":[]}' '{"lines":{}}' '{"lines":[1]}' '{"lines":[{"menu_item_id":"x","quantity":1}]}' \
  "{\"lines\":[{\"menu_item_id\":\"$margherita\",\"quantity\":0}]}" \
  "{\"lines\":[{\"menu_item_id\":\"$margherita\",\"quantity\":1.5}]}" \
  "{\"lines\":[{\"menu_item_id\":\"$margherita\",\"quantity\":99999999999999999999}]}" \
  "{\"lines\":[{\"menu_item_id\":\"$margherita\",\"quantity\":1}],\"note\":7}" \
  "{\"lines\":[{\"menu_item_id\":\"$margherita\",\"quantity\":1}],\"customer_id\":\"nobody\"}" \
  "{\"lines\":[{\"menu_item_id\":\"$margherita\",\"quantity\":1}],\"extra\":true}" \
  "{\"lines\":[{\"menu_item_id\":\"$margherita\",\"quantity\":1}],\"note\":\"a\",\"note\":\"b\"}"; do
  post /orders -H 'X-Tenant: trattoria-demo' --data-binary "$bad"
  check "invalid order $bad: 400 JSON" bash -c '[ "$0" = 400 ] && [ "$1" = application/json ]' "$code" "$ctype"
done
post /orders -H 'X-Tenant: trattoria-demo' --data-binary $'{"note":"\xff\xfe"}'
check "a body that is not UTF-8: 400" test "$code" = 400
post /orders -H 'X-Tenant: trattoria-demo' --data-binary ''
check "an empty body: 400" test "$code" = 400
get /orders -H 'X-Tenant: trattoria-demo' -H 'Content-Type: text/plain' --data-binary '{}'
check "not application/json: 415" test "$code" = 415
head -c 2000000 /dev/zero | tr '\0' ' ' >"$tmp/big.json"
post /orders -H 'X-Tenant: trattoria-demo' --data-binary @"$tmp/big.json"
check "a 2 MB body: 413 JSON" bash -c '[ "$0" = 413 ] && [ "$1" = application/json ]' "$code" "$ctype"
head -c 200000 /dev/zero | tr '\0' ' ' >"$tmp/mid.json"
post /orders -H 'X-Tenant: trattoria-demo' -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/mid.json"
check "a 200 kB chunked body (no Content-Length): 413" test "$code" = 413
get /nowhere
check "unknown path: 404 JSON" bash -c '[ "$0" = 404 ] && [ "$1" = application/json ]' "$code" "$ctype"
get /menu -X DELETE -H 'X-Tenant: trattoria-demo'
check "wrong method: 405 JSON with Allow" \
  bash -c '[ "$0" = 405 ] && [ "$1" = application/json ] && grep -qi "^allow: GET, HEAD" <<<"$2"' "$code" "$ctype" "$headers"
check "control bytes in X-Tenant: 400" test "$(raw 'GET /menu HTTP/1.1\r\nHost: x\r\nX-Tenant: \x01\x1b[2J\r\n\r\n')" = 'HTTP/1.1 400 Bad Request'
check "an absurd Content-Length: 413" test "$(raw 'POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n')" = 'HTTP/1.1 413 Content Too Large'
# The server answers 431 and closes while the 70 kB are still arriving; the
# reset of the unread bytes can discard its answer before it is read, so an
# empty answer (only that) is asked again, up to three times.
big_header() {
  local a="" i
  for i in 1 2 3; do
    a=$(raw "GET /menu HTTP/1.1\r\nHost: $(head -c 70000 /dev/zero | tr '\0' a).x\r\n\r\n")
    [ -n "$a" ] && break
  done
  printf '%s' "$a"
}
check "a 70 kB header: 431 (libmicrohttpd's own)" test "$(big_header)" = 'HTTP/1.1 431 Request Header Fields Too Large'
raw 'GARBAGE\r\n\r\n' >/dev/null; raw '\x00\xff\xfe GET / HTTP/9\r\n\r\n' >/dev/null
check "the service survived all of it" kill -0 "$main_pid"

# ---- metrics ---------------------------------------------------------------------------------
get /metrics
check "/metrics: 200 Prometheus text" bash -c '[ "$0" = 200 ] && [[ "$1" == text/plain* ]]' "$code" "$ctype"
check "/metrics: this process's pool" has '^growplate_pool_connections{pool="main",' "$body"
check "/metrics: this process's cache" has '^growplate_cache_hits_total{cache="main"}' "$body"
check "/metrics: the library's build info" has '^growplate_build_info{' "$body"
check "/metrics: the service's requests" has '^growplate_service_requests_total{route="menu",code="200"}' "$body"
check "/metrics: the service's latency histogram" \
  has '^growplate_service_request_duration_seconds_bucket{route="menu",le="+Inf"}' "$body"
check "/metrics: one TYPE line per family" bash -c '[ -z "$(grep "^# TYPE" <<<"$0" | sort | uniq -d)" ]' "$body"
check "/metrics: the tenant map (a negative hit counted)" \
  bash -c 'grep -q "^growplate_service_tenant_lookups_total{result=\"negative_hit\"} [1-9]" <<<"$0"' "$body"

# ---- load -----------------------------------------------------------------------------------------
wrk -t2 -c16 -d3s --timeout 5s -H 'X-Tenant: trattoria-demo' "http://127.0.0.1:$port/menu" >"$tmp/wrk" 2>&1
wrk_rc=$?
sed 's/^/  # /' "$tmp/wrk"
check "wrk ran" bash -c '[ "$0" -eq 0 ] && grep -q "requests in" "$1"' "$wrk_rc" "$tmp/wrk"
check "wrk: no socket errors" bash -c '! grep -q "Socket errors" "$0"' "$tmp/wrk"
check "wrk: no non-2xx answers" bash -c '! grep -q "Non-2xx" "$0"' "$tmp/wrk"
get /healthz
check "healthy after the load" test "$code" = 200

# ---- shutdown --------------------------------------------------------------------------------------
children=$(children_of "$main_pid")
kill -TERM "$main_pid"
stopped=0
for _ in $(seq 1 100); do kill -0 "$main_pid" 2>/dev/null || { stopped=1; break; }; sleep 0.1; done
wait "$main_pid"; rc=$?
check "SIGTERM: stopped within 10 s, exit 0" test $stopped -eq 1 -a $rc -eq 0
check "SIGTERM: logged as a clean shutdown" grep -q 'SIGTERM: shutting down' "$tmp/main.err"
check "SIGTERM: nothing listens any more" bash -c '! curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$0/healthz"' "$port"
check "SIGTERM: no process of the service is left" bash -c 'for p in $0 $1; do ! kill -0 "$p" 2>/dev/null || exit 1; done' "$main_pid" "$children"
check "no sanitizer complaint in the log" bash -c '! grep -E "runtime error|Sanitizer" "$0"' "$tmp/main.err"

# ---- degraded: Redis unreachable -----------------------------------------------------------------------
start degraded REDIS_URL=redis://127.0.0.1:1/0 REDIS_CONNECT_TIMEOUT=200 REDIS_TIMEOUT=200 SERVICE_ACCESS_LOG=1
get /healthz
for _ in $(seq 1 50); do [ "$code" = 200 ] && break; sleep 0.1; get /healthz; done
check "Redis down: /healthz 200 and degraded" bash -c '[ "$0" = 200 ] && grep -q "\"status\":\"degraded\"" <<<"$1"' "$code" "$body"
get /menu -H 'X-Tenant: trattoria-demo'
check "Redis down: the menu still comes (from the database)" \
  bash -c '[ "$0" = 200 ] && grep -q Margherita <<<"$1"' "$code" "$body"
kill -INT "$pid"; wait "$pid"; rc=$?
check "SIGINT: exit 0" test $rc -eq 0
check "SERVICE_ACCESS_LOG=1: one line per request, with the tenant" \
  grep -q '^service access: GET /menu 200 .* tenant=trattoria-demo$' "$tmp/degraded.err"

# ---- bad settings ------------------------------------------------------------------------------------------
out=$(SERVICE_PORT=http "$service" 2>&1); rc=$?
check "a bad setting: exit 2, named" bash -c '[ "$0" -eq 2 ] && grep -q "^SERVICE_PORT: " <<<"$1"' "$rc" "$out"
out=$(env -u DATABASE_URL DATABASE_POOL_MAX=abc "$service" 0 2>&1); rc=$?
check "a bad library setting: exit 2, named" bash -c '[ "$0" -eq 2 ] && grep -q DATABASE_POOL_MAX <<<"$1"' "$rc" "$out"

# ---- down: PostgreSQL unreachable ------------------------------------------------------------------------
start down DATABASE_URL=postgresql://growplate_app:growplate_app_dev@127.0.0.1:1/growplate_dev \
  DATABASE_ACQUIRE_TIMEOUT=300 DATABASE_POOL_MIN=0
get /healthz
check "PostgreSQL down: /healthz 503 JSON, down" \
  bash -c '[ "$0" = 503 ] && [ "$1" = application/json ] && grep -q "\"status\":\"down\"" <<<"$2"' "$code" "$ctype" "$body"
get /menu -H 'X-Tenant: trattoria-demo'
check "PostgreSQL down: the menu is 503 with Retry-After" \
  bash -c '[ "$0" = 503 ] && grep -qi "^retry-after: " <<<"$1" && [ "$2" = application/json ]' "$code" "$headers" "$ctype"
kill -TERM "$pid"; wait "$pid"; rc=$?
check "down: SIGTERM still exit 0" test $rc -eq 0

# ---- no secret anywhere ---------------------------------------------------------------------------------
secrets=(growplate_app_dev growplate_owner_dev)
[ -n "${DATABASE_TENANT_KEY:-}" ] && secrets+=("$DATABASE_TENANT_KEY")
leaked=0
for s in "${secrets[@]}"; do
  grep -q -F -- "$s" "$tmp"/*.err "$tmp"/*.out "$tmp/bodies" "$tmp"/h* && leaked=1
done
check "no password or tenant key in any log line, header or answer" test $leaked -eq 0

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
