#!/usr/bin/env bash
# test_install.sh — what a library user does: install into a staged prefix
# (`cmake --install --prefix`), then build a program against it with
# pkg-config and with the CMake package, and run it. The sample uses
# json_decref and PQstatus as the README does: the headers expose jansson
# and libpq, so the pkg-config file must name them.
# ctest-labels: nosan
set -uo pipefail
build=${GP_BUILD_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
check() { # name, condition...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok - $name"; else failed=$((failed + 1)); echo "not ok - $name"; fi
}

cmake --install "$build" --prefix "$tmp/stage" >"$tmp/install.log" 2>&1
check "cmake --install --prefix into a staging directory" test $? -eq 0
pc=$(find "$tmp/stage" -name growplate.pc | head -1)
check "growplate.pc installed" test -n "$pc"
check "growplate.pc names no absolute prefix" bash -c '! grep -q "^prefix=/" "$0"' "$pc"
check "growplate.pc requires libpq and jansson publicly" grep -q '^Requires: libpq jansson' "$pc"

cat >"$tmp/consumer.c" <<'C'
#include <stdio.h>
#include <libpq-fe.h>
#include <growplate/growplate.h>
int main(void)
{
    gp_config_t cfg; /* straight off the stack, as the README does */
    char err[256];
    gp_status_t st = gp_config_from_env(&cfg, err, sizeof err);
    json_t *j = json_pack("{s:s}", "status", gp_strerror(st));
    char *s = json_dumps(j, JSON_COMPACT);
    printf("%s %d\n", s, (int)(PQstatus(NULL) == CONNECTION_BAD));
    free(s);
    json_decref(j);
    gp_config_release(&cfg);
    return 0;
}
C
libdir=$(dirname "$(dirname "$pc")")
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs growplate 2>"$tmp/pc.err")
check "pkg-config resolves growplate" test $? -eq 0
cc -Wall -Werror -o "$tmp/consumer-pc" "$tmp/consumer.c" $flags 2>"$tmp/cc.err"
check "a program builds against the staged prefix with pkg-config" test $? -eq 0 || cat "$tmp/cc.err"
out=$(env -i PATH="$PATH" LD_LIBRARY_PATH="$libdir" GROWPLATE_ENV=development "$tmp/consumer-pc" 2>&1)
check "it runs (gp_config_from_env on an uninitialised config, jansson, libpq)" grep -q '^{"status":"success"} 1$' <<<"$out"

mkdir -p "$tmp/cmake-consumer"
cp "$tmp/consumer.c" "$tmp/cmake-consumer/"
cat >"$tmp/cmake-consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(growplate REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE growplate::growplate PkgConfig::LIBPQ PkgConfig::JANSSON)
CM
cmake -S "$tmp/cmake-consumer" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$tmp/stage" >"$tmp/cm.log" 2>&1 &&
  cmake --build "$tmp/cmake-build" >>"$tmp/cm.log" 2>&1
rc=$?
check "a program builds against the staged prefix with find_package(growplate)" test $rc -eq 0 || tail -20 "$tmp/cm.log"
out=$(env -i PATH="$PATH" LD_LIBRARY_PATH="$libdir" GROWPLATE_ENV=development "$tmp/cmake-build/consumer" 2>&1)
check "and runs" grep -q '^{"status":"success"} 1$' <<<"$out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
