/* test_cache.c — the cache's operations on the private Redis: every call,
 * TTLs, batches in one round trip, JSON (unicode, 1 MB, invalid JSON written
 * by someone else, out of memory while decoding), validation, cross-tenant attacks, tenant invalidation,
 * cache-aside, AUTH/SELECT, health and metrics; a broken reply from a stand-in server. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cache_internal.h"
#include "gp_test_cache.h"

static void test_single_key_operations(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_t *c = gp_test_cache(&cfg, NULL, 0, 0);
    char t[37];
    gp_test_tenant(t);
    gp_error_t err;
    char *v = (char *)1;
    size_t len = 99;

    assert_int_equal(gp_cache_get(c, t, "menu:1", &v, &len, &err), GP_ERR_MISS);
    assert_null(v);
    assert_int_equal(len, 0);
    assert_int_equal(gp_cache_exists(c, t, "menu:1", &err), GP_ERR_MISS);

    /* binary-safe: embedded NULs and high bytes survive */
    const char bin[] = {'a', 0, 'b', (char)0xff, 0, 'z'};
    assert_int_equal(gp_cache_set(c, t, "menu:1", bin, sizeof bin, 60000, &err), GP_OK);
    assert_int_equal(gp_cache_get(c, t, "menu:1", &v, &len, &err), GP_OK);
    assert_int_equal(len, sizeof bin);
    assert_memory_equal(v, bin, sizeof bin);
    assert_int_equal(v[len], 0);
    free(v);
    assert_int_equal(gp_cache_exists(c, t, "menu:1", &err), GP_OK);

    /* TTLs: explicit, changed, and the default for ttl <= 0 */
    int64_t ttl = 0;
    assert_int_equal(gp_cache_ttl(c, t, "menu:1", &ttl, &err), GP_OK);
    assert_true(ttl > 55000 && ttl <= 60000);
    assert_int_equal(gp_cache_expire(c, t, "menu:1", 5000, &err), GP_OK);
    assert_int_equal(gp_cache_ttl(c, t, "menu:1", &ttl, &err), GP_OK);
    assert_true(ttl > 0 && ttl <= 5000);
    assert_int_equal(gp_cache_expire(c, t, "menu:1", 0, &err), GP_ERR_INVALID);
    assert_int_equal(gp_cache_expire(c, t, "nope", 1000, &err), GP_ERR_MISS);
    assert_int_equal(gp_cache_ttl(c, t, "nope", &ttl, &err), GP_ERR_MISS);
    assert_int_equal(gp_cache_set(c, t, "empty", "", 0, 0, &err), GP_OK);
    assert_int_equal(gp_cache_ttl(c, t, "empty", &ttl, &err), GP_OK);
    assert_true(ttl > 290000 && ttl <= 300000); /* default TTL: 5 min */
    assert_int_equal(gp_cache_get(c, t, "empty", &v, &len, &err), GP_OK);
    assert_int_equal(len, 0);
    free(v);

    /* delete */
    assert_int_equal(gp_cache_del(c, t, "menu:1", &err), GP_OK);
    assert_int_equal(gp_cache_del(c, t, "menu:1", &err), GP_ERR_MISS);
    assert_int_equal(gp_cache_get(c, t, "menu:1", &v, NULL, &err), GP_ERR_MISS);

    /* incr: created with a TTL, which later increments keep */
    int64_t n = 0;
    assert_int_equal(gp_cache_incr(c, t, "hits", 5, 20000, &n, &err), GP_OK);
    assert_int_equal(n, 5);
    assert_int_equal(gp_cache_incr(c, t, "hits", -2, 90000, &n, &err), GP_OK);
    assert_int_equal(n, 3);
    assert_int_equal(gp_cache_ttl(c, t, "hits", &ttl, &err), GP_OK);
    assert_true(ttl > 0 && ttl <= 20000);
    assert_int_equal(gp_cache_incr(c, t, "fresh", 1, 0, NULL, &err), GP_OK);
    assert_int_equal(gp_cache_ttl(c, t, "fresh", &ttl, &err), GP_OK);
    assert_true(ttl > 290000);
    /* incr on a non-integer: a server error, not a crash, not "unavailable" */
    assert_int_equal(gp_cache_set(c, t, "text", "abc", 3, 0, &err), GP_OK);
    assert_int_equal(gp_cache_incr(c, t, "text", 1, 0, &n, &err), GP_ERR_SERVER);
    assert_non_null(strstr(err.message, "not an integer"));
    gp_cache_metrics_t m = gp_test_cache_metrics(c);
    assert_int_equal(m.server_errors, 1);
    assert_int_equal(m.circuit, GP_CACHE_CIRCUIT_CLOSED); /* the server works: no breaker failure */

    gp_cache_close(c);
    gp_config_release(&cfg);
}

static void test_ttl_expires(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_t *c = gp_test_cache(&cfg, NULL, 0, 0);
    char t[37];
    gp_test_tenant(t);
    assert_int_equal(gp_cache_set(c, t, "short", "x", 1, 30, NULL), GP_OK);
    int64_t deadline = (int64_t)time(NULL) + 3;
    gp_status_t st;
    while ((st = gp_cache_exists(c, t, "short", NULL)) == GP_OK && time(NULL) < deadline)
        gp_test_poll_pause();
    assert_int_equal(st, GP_ERR_MISS);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

static void test_batches_one_round_trip(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_t *c = gp_test_cache(&cfg, NULL, 0, 0);
    char t[37];
    gp_test_tenant(t);
    enum { N = 16 };
    char names[N + 1][32], data[N][64];
    const char *keys[N + 1];
    gp_cache_value_t in[N], out[N + 1];
    for (int i = 0; i <= N; i++) {
        snprintf(names[i], sizeof names[i], "item:%d", i);
        keys[i] = names[i];
    }
    for (int i = 0; i < N; i++) {
        int n = snprintf(data[i], sizeof data[i], "{\"id\":%d}", i);
        in[i] = (gp_cache_value_t){data[i], (size_t)n};
    }
    gp_error_t err;
    assert_int_equal(gp_cache_exists(c, t, "warm", &err), GP_ERR_MISS); /* caches the generation */
    gp_cache_metrics_t m0 = gp_test_cache_metrics(c);
    assert_int_equal(gp_cache_mset(c, t, N, keys, in, 10000, &err), GP_OK);
    gp_cache_metrics_t m1 = gp_test_cache_metrics(c);
    assert_int_equal(m1.calls - m0.calls, 1);        /* one round trip ... */
    assert_int_equal(m1.commands - m0.commands, N);  /* ... of N pipelined SETs */
    assert_int_equal(gp_cache_mget(c, t, N + 1, keys, out, &err), GP_OK);
    gp_cache_metrics_t m2 = gp_test_cache_metrics(c);
    assert_int_equal(m2.calls - m1.calls, 1);
    assert_int_equal(m2.hits - m1.hits, N);
    assert_int_equal(m2.misses - m1.misses, 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(out[i].len, in[i].len);
        assert_memory_equal(out[i].data, in[i].data, in[i].len);
    }
    assert_null(out[N].data);
    gp_cache_values_free(out, N + 1);
    assert_null(out[0].data);
    int64_t ttl;
    assert_int_equal(gp_cache_ttl(c, t, "item:7", &ttl, &err), GP_OK);
    assert_true(ttl > 0 && ttl <= 10000);

    /* one bad key fails the whole batch, before anything is sent */
    m2 = gp_test_cache_metrics(c);
    const char *bad[2] = {"ok", "b{ad"};
    assert_int_equal(gp_cache_mget(c, t, 2, bad, out, &err), GP_ERR_KEY);
    assert_non_null(strstr(err.message, "key 1 of the batch"));
    assert_int_equal(gp_cache_mset(c, t, 2, bad, in, 0, &err), GP_ERR_KEY);
    assert_int_equal(gp_cache_mget(c, t, 0, keys, out, &err), GP_ERR_INVALID);
    assert_int_equal(gp_cache_mset(c, t, GP_CACHE_BATCH_MAX + 1, keys, in, 0, &err), GP_ERR_INVALID);
    assert_int_equal(gp_test_cache_metrics(c).commands, m2.commands);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

/* The RESP lengths and generations are written by a digit-pair formatter:
 * it must agree with printf at every length boundary. */
static void test_decimal_formatting(void **state)
{
    (void)state;
    char want[32], got[32];
    uint64_t v = 0;
    for (int i = 0; i < 200000; i++, v = i < 100000 ? (uint64_t)i : v * 3 + 7) {
        uint64_t x = i < 100000 ? (uint64_t)i : v;
        size_t n = gp__cache_put_dec(got, x);
        snprintf(want, sizeof want, "%llu", (unsigned long long)x);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(got, want, n);
    }
    uint64_t edges[] = {9, 10, 99, 100, 999, 1000, 9999999999ULL, 10000000000ULL, UINT64_MAX / 10, UINT64_MAX - 1,
                        UINT64_MAX};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        size_t n = gp__cache_put_dec(got, edges[i]);
        snprintf(want, sizeof want, "%llu", (unsigned long long)edges[i]);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(got, want, n);
    }
}

/* The largest batch, with long keys and values from empty to larger than
 * the reply arena's blocks: the paths beyond the small-batch stack space. */
static void test_largest_batch(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_t *c = gp_test_cache(&cfg, NULL, 0, 0);
    char t[37];
    gp_test_tenant(t);
    enum { N = GP_CACHE_BATCH_MAX, KEYLEN = 200 };
    char(*names)[KEYLEN + 1] = calloc(N, sizeof *names);
    const char **keys = calloc(N, sizeof *keys);
    gp_cache_value_t *in = calloc(N, sizeof *in), *out = calloc(N, sizeof *out);
    char *blob = malloc(9000 + 17);
    assert_non_null(names && keys && in && out && blob);
    for (int i = 0; i < 9000 + 17; i++)
        blob[i] = (char)(i % 251); /* every byte value but a few, NUL included */
    for (int i = 0; i < N; i++) {
        int n = snprintf(names[i], KEYLEN + 1, "long:%d:", i);
        memset(names[i] + n, 'k', (size_t)(KEYLEN - n));
        keys[i] = names[i];
        in[i] = (gp_cache_value_t){blob + i % 17, i % 3 == 0 ? 0 : (size_t)(i * 37) % 9000};
    }
    gp_error_t err;
    assert_int_equal(gp_cache_mset(c, t, N, keys, in, 10000, &err), GP_OK);
    assert_int_equal(gp_cache_mget(c, t, N, keys, out, &err), GP_OK);
    for (int i = 0; i < N; i++) {
        assert_non_null(out[i].data);
        assert_int_equal(out[i].len, in[i].len);
        assert_memory_equal(out[i].data, in[i].data, in[i].len);
        assert_int_equal(out[i].data[out[i].len], 0);
    }
    gp_cache_values_free(out, N);
    free(blob);
    free(out);
    free(in);
    free(keys);
    free(names);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

static void *no_malloc(size_t n)
{
    (void)n;
    return NULL;
}

static void test_json_round_trips(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_t *c = gp_test_cache(&cfg, NULL, 0, 0);
    char t[37];
    gp_test_tenant(t);
    gp_error_t err;
    json_t *in = json_pack("{s:s, s:i, s:f, s:b, s:n, s:[i,s], s:s%}", "name", "Café ✓ 日本 𝄞", "n", 42, "price",
                           9.5, "open", 1, "none", "list", 1, "two", "nul", "a\0b", (size_t)3);
    assert_non_null(in);
    assert_int_equal(gp_cache_set_json(c, t, "dish:1", in, 0, &err), GP_OK);
    json_t *out = NULL;
    assert_int_equal(gp_cache_get_json(c, t, "dish:1", &out, &err), GP_OK);
    assert_true(json_equal(in, out));
    json_decref(out);
    json_decref(in);

    /* scalars are JSON values too */
    json_t *s = json_string("plain");
    assert_int_equal(gp_cache_set_json(c, t, "scalar", s, 0, &err), GP_OK);
    assert_int_equal(gp_cache_get_json(c, t, "scalar", &out, &err), GP_OK);
    assert_string_equal(json_string_value(out), "plain");
    json_decref(out);
    json_decref(s);

    /* 1 MB */
    size_t big = 1 << 20;
    char *blob = malloc(big + 1);
    assert_non_null(blob);
    for (size_t i = 0; i < big; i++)
        blob[i] = "0123456789abcdef"[i % 16];
    blob[big] = 0;
    json_t *large = json_pack("{s:s, s:i}", "blob", blob, "size", (json_int_t)big);
    assert_int_equal(gp_cache_set_json(c, t, "large", large, 0, &err), GP_OK);
    assert_int_equal(gp_cache_get_json(c, t, "large", &out, &err), GP_OK);
    assert_true(json_equal(large, out));
    json_decref(out);
    json_decref(large);
    free(blob);

    assert_int_equal(gp_cache_get_json(c, t, "absent", &out, &err), GP_ERR_MISS);
    assert_null(out);
    assert_int_equal(gp_cache_set_json(c, t, "x", NULL, 0, &err), GP_ERR_INVALID);
    /* a string that is not UTF-8 (json_string_nocheck skips the check) and
     * an object that contains itself: refused, with the reason, nothing stored */
    json_t *bad = json_pack("{s:o}", "name", json_string_nocheck("caf\xe9"));
    assert_int_equal(gp_cache_set_json(c, t, "bad", bad, 0, &err), GP_ERR_INVALID);
    assert_non_null(strstr(err.message, "not valid UTF-8"));
    json_decref(bad);
    json_t *loop = json_object(), *inner = json_array();
    assert_int_equal(json_object_set(loop, "inner", inner), 0);
    assert_int_equal(json_array_append(inner, loop), 0); /* loop -> inner -> loop */
    assert_int_equal(gp_cache_set_json(c, t, "loop", loop, 0, &err), GP_ERR_INVALID);
    json_array_clear(inner);
    json_decref(inner);
    json_decref(loop);
    assert_int_equal(gp_cache_exists(c, t, "bad", &err), GP_ERR_MISS);
    assert_int_equal(gp_cache_exists(c, t, "loop", &err), GP_ERR_MISS);

    /* Out of memory while decoding a valid value: GP_ERR_NOMEM with the
     * reason, neither an invalid value nor a miss. */
    gp_cache_metrics_t m0 = gp_test_cache_metrics(c);
    json_set_alloc_funcs(no_malloc, free);
    gp_status_t st = gp_cache_get_json(c, t, "dish:1", &out, &err);
    json_set_alloc_funcs(malloc, free);
    assert_int_equal(st, GP_ERR_NOMEM);
    assert_int_equal(err.status, GP_ERR_NOMEM);
    assert_non_null(strstr(err.message, "out of memory"));
    assert_null(out);
    gp_cache_metrics_t m1 = gp_test_cache_metrics(c);
    assert_int_equal(m1.invalid_json, m0.invalid_json);
    assert_int_equal(m1.misses, m0.misses);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

static void test_invalid_json_from_someone_else(void **state)
{
    (void)state;
    gp_test_capture_logs(GP_LOG_WARN);
    gp_test_clear_logs();
    gp_config_t cfg;
    gp_cache_t *c = gp_test_cache(&cfg, NULL, 0, 0);
    char t[37], fk[700];
    gp_test_tenant(t);
    gp_error_t err;
    assert_int_equal(gp_cache_exists(c, t, "warm", &err), GP_ERR_MISS); /* creates the generation */
    redisContext *r = gp_test_redis();
    const char *garbage[] = {"{\"unterminated\": ", "not json at all", "\xff\xfe\x00binary", "{\"a\":1}trailing"};
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        gp_test_full_key(r, t, "profile", fk, sizeof fk);
        size_t len = i == 2 ? 9 : strlen(garbage[i]);
        freeReplyObject(gp_test_redis_cmd(r, "SET %s %b PX 60000", fk, garbage[i], len));
        json_t *out = (json_t *)1;
        assert_int_equal(gp_cache_get_json(c, t, "profile", &out, &err), GP_ERR_MISS);
        assert_null(out);
    }
    gp_cache_metrics_t m = gp_test_cache_metrics(c);
    assert_int_equal(m.invalid_json, 4);
    assert_true(m.misses >= 4);
    assert_int_equal(m.errors, 0);
    assert_true(gp_test_logs_contain("is not valid JSON"));
    assert_false(gp_test_logs_contain("not json at all")); /* the value itself is never logged */
    /* the raw bytes are still readable through the binary API */
    char *v;
    size_t len;
    assert_int_equal(gp_cache_get(c, t, "profile", &v, &len, &err), GP_OK);
    assert_string_equal(v, "{\"a\":1}trailing");
    free(v);
    redisFree(r);
    gp_cache_close(c);
    gp_config_release(&cfg);
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
}

static void test_validation_reaches_nothing(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_t *c = gp_test_cache(&cfg, NULL, 0, 0);
    char t[37];
    gp_test_tenant(t);
    gp_error_t err;
    char *v;
    const char *bad_tenants[] = {NULL, "", "acme", "123E4567-e89b-12d3-a456-426614174000",
                                 "{123e4567-e89b-12d3-a456-426614174000}", "123e4567-e89b-12d3-a456-42661417400}",
                                 "123e4567-e89b-12d3-a456-4266141740:0", "123e4567-e89b-12d3-a456-42661417400*",
                                 "123e4567-e89b-12d3-a456-42661417400 ", "123e4567-e89b-12d3-a456-42661417400\n"};
    for (size_t i = 0; i < sizeof bad_tenants / sizeof bad_tenants[0]; i++) {
        assert_int_equal(gp_cache_set(c, bad_tenants[i], "k", "v", 1, 0, &err), GP_ERR_TENANT);
        assert_int_equal(err.status, GP_ERR_TENANT);
        assert_non_null(strstr(err.message, "tenant id"));
        assert_int_equal(gp_cache_get(c, bad_tenants[i], "k", &v, NULL, &err), GP_ERR_TENANT);
        assert_int_equal(gp_cache_invalidate_tenant(c, bad_tenants[i], &err), GP_ERR_TENANT);
    }
    char longkey[GP_CACHE_KEY_MAX + 2];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = 0;
    const char *bad_keys[] = {NULL, "", longkey, "a b", "a{b", "a}b", "a*", "a?", "[a]", "a\nb", "a\rb", "a\tb",
                              "\x01", "a\x7f", "caf\xc3\xa9"};
    const char *expect[] = {"missing", "empty", "longer than 512", "0x20", "'{'", "'}'", "'*'", "'?'", "'['",
                            "0x0a", "0x0d", "0x09", "0x01", "0x7f", "0xc3"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        assert_int_equal(gp_cache_set(c, t, bad_keys[i], "v", 1, 0, &err), GP_ERR_KEY);
        if (!strstr(err.message, expect[i]))
            fail_msg("key %zu: '%s' not in '%s'", i, expect[i], err.message);
        assert_false(gp_cache_key_valid(bad_keys[i], NULL, 0));
    }
    longkey[GP_CACHE_KEY_MAX] = 0; /* exactly 512: fine */
    assert_true(gp_cache_key_valid(longkey, NULL, 0));
    assert_true(gp_cache_key_valid("menu:42/items|~!@#$%^&()_+=-,.<>;'\"`\\", NULL, 0));
    /* Every byte value, through the single-key and the batch paths: exactly
     * printable ASCII without space and { } * ? [ ] is accepted. */
    for (int b = 1; b < 256; b++) {
        char key[4] = {'a', (char)b, 'z', 0};
        bool want = b > 0x20 && b < 0x7f && !strchr("{}*?[]", b);
        if (gp_cache_key_valid(key, NULL, 0) != want)
            fail_msg("byte 0x%02x: expected %s", b, want ? "valid" : "invalid");
        if (!want) {
            const char *keys[2] = {"fine", key};
            gp_cache_value_t vals[2];
            assert_int_equal(gp_cache_exists(c, t, key, &err), GP_ERR_KEY);
            assert_int_equal(gp_cache_mget(c, t, 2, keys, vals, &err), GP_ERR_KEY);
            assert_non_null(strstr(err.message, "key 1 of the batch"));
        }
    }
    /* Nothing above reached Redis. */
    assert_int_equal(gp_test_cache_metrics(c).commands, 0);
    assert_int_equal(gp_cache_get(c, t, "k", NULL, NULL, &err), GP_ERR_INVALID);
    assert_int_equal(gp_cache_get(NULL, t, "k", &v, NULL, &err), GP_ERR_INVALID);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

/* Every data key written for tenant `t` lies under prefix "t:{t}:<digits>:",
 * and reading it back through the other tenant never finds it. */
static void test_cross_tenant_attacks(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_t *c = gp_test_cache(&cfg, NULL, 0, 0);
    char a[37], b[37];
    gp_test_tenant(a);
    gp_test_tenant(b);
    gp_error_t err;
    redisContext *r = gp_test_redis();
    freeReplyObject(gp_test_redis_cmd(r, "GET growplate:t:{%s}:gen", a)); /* warm the connection */
    /* Keys that try to forge the layout: separators, digits like a
     * generation, the other tenant's id, "gen", and a 512-byte key. */
    char forged[5][700], longk[GP_CACHE_KEY_MAX + 1];
    snprintf(forged[0], sizeof forged[0], "0:%s", b);
    snprintf(forged[1], sizeof forged[1], "}:%s", b); /* rejected: brace */
    snprintf(forged[2], sizeof forged[2], "gen");
    snprintf(forged[3], sizeof forged[3], ":::%s:1:x", b);
    snprintf(forged[4], sizeof forged[4], "t:%s", b);
    memset(longk, 'z', GP_CACHE_KEY_MAX);
    longk[GP_CACHE_KEY_MAX] = 0;
    const char *keys[] = {forged[0], forged[2], forged[3], forged[4], longk, "x", "1", "0:x"};
    size_t nk = sizeof keys / sizeof keys[0];
    assert_int_equal(gp_cache_set(c, a, forged[1], "A", 1, 0, &err), GP_ERR_KEY);
    for (size_t i = 0; i < nk; i++)
        assert_int_equal(gp_cache_set(c, a, keys[i], "A", 1, 60000, &err), GP_OK);
    for (size_t i = 0; i < nk; i++) {
        char *v = NULL;
        assert_int_equal(gp_cache_get(c, b, keys[i], &v, NULL, &err), GP_ERR_MISS);
        assert_int_equal(gp_cache_exists(c, b, keys[i], &err), GP_ERR_MISS);
    }
    /* The generation counter is not a data key: "gen" as a key is stored
     * elsewhere and does not disturb it. */
    char *v = NULL;
    assert_int_equal(gp_cache_get(c, a, "gen", &v, NULL, &err), GP_OK);
    assert_string_equal(v, "A");
    free(v);
    /* Every key in Redis containing A's id is under A's hash tag. */
    redisReply *ks = gp_test_redis_cmd(r, "KEYS *%s*", a);
    assert_int_equal(ks->type, REDIS_REPLY_ARRAY);
    assert_int_equal(ks->elements, nk + 1); /* + the generation counter */
    char tag[64];
    snprintf(tag, sizeof tag, "growplate:t:{%s}:", a);
    for (size_t i = 0; i < ks->elements; i++) {
        const char *k = ks->element[i]->str;
        assert_int_equal(strncmp(k, tag, strlen(tag)), 0);
        const char *p = k + strlen(tag);
        if (strcmp(p, "gen") == 0)
            continue;
        while (*p >= '0' && *p <= '9')
            p++;
        assert_int_equal(*p, ':'); /* digits, then the caller's key */
        /* exactly one hash tag: no other '{' anywhere */
        assert_null(strchr(k + strlen("growplate:t:{"), '{'));
    }
    freeReplyObject(ks);
    /* B holds nothing at all. */
    ks = gp_test_redis_cmd(r, "KEYS *{%s}*", b);
    assert_int_equal(ks->elements, 1); /* only its generation counter, created by the reads */
    freeReplyObject(ks);
    /* An embedded NUL ends the key: documented C-string behaviour. */
    assert_int_equal(gp_cache_set(c, a, "nul\0tail", "N", 1, 0, &err), GP_OK);
    assert_int_equal(gp_cache_get(c, a, "nul", &v, NULL, &err), GP_OK);
    assert_string_equal(v, "N");
    free(v);
    redisFree(r);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

static void test_tenant_invalidation(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_options_t o = {.generation_ttl_ms = 200};
    gp_cache_t *c = gp_test_cache(&cfg, &o, 0, 0);
    gp_config_t cfg2;
    gp_cache_t *other = gp_test_cache(&cfg2, &o, 0, 0); /* stands for another process */
    char t[37], u[37];
    gp_test_tenant(t);
    gp_test_tenant(u);
    gp_error_t err;
    char *v;
    assert_int_equal(gp_cache_set(c, t, "a", "1", 1, 60000, &err), GP_OK);
    assert_int_equal(gp_cache_set(c, u, "a", "1", 1, 60000, &err), GP_OK);
    assert_int_equal(gp_cache_exists(other, t, "a", &err), GP_OK);
    uint64_t calls = gp_test_cache_metrics(c).calls;
    assert_int_equal(gp_cache_invalidate_tenant(c, t, &err), GP_OK);
    assert_int_equal(gp_test_cache_metrics(c).calls - calls, 1); /* O(1): one round trip */
    /* this process: at once */
    assert_int_equal(gp_cache_get(c, t, "a", &v, NULL, &err), GP_ERR_MISS);
    assert_int_equal(gp_cache_exists(c, u, "a", &err), GP_OK); /* other tenants untouched */
    /* another process: within generation_ttl_ms (200 ms; allow 2 s on a busy machine) */
    int64_t t0 = (int64_t)time(NULL);
    gp_status_t st;
    while ((st = gp_cache_exists(other, t, "a", &err)) == GP_OK && time(NULL) < t0 + 2)
        gp_test_poll_pause();
    assert_int_equal(st, GP_ERR_MISS);
    /* The generation counter lost (eviction): reborn from the clock, so the
     * old generation's values do not come back. */
    assert_int_equal(gp_cache_set(c, t, "b", "2", 1, 60000, &err), GP_OK);
    redisContext *r = gp_test_redis();
    freeReplyObject(gp_test_redis_cmd(r, "DEL growplate:t:{%s}:gen", t));
    assert_int_equal(gp_cache_invalidate_tenant(c, t, &err), GP_OK);
    assert_int_equal(gp_cache_exists(c, t, "a", &err), GP_ERR_MISS);
    assert_int_equal(gp_cache_exists(c, t, "b", &err), GP_ERR_MISS);
    /* The old generations' keys keep their TTLs: they expire by themselves. */
    redisReply *ks = gp_test_redis_cmd(r, "KEYS growplate:t:{%s}:*:*", t);
    assert_true(ks->elements >= 2);
    for (size_t i = 0; i < ks->elements; i++) {
        redisReply *p = gp_test_redis_cmd(r, "PTTL %s", ks->element[i]->str);
        assert_true(p->integer > 0);
        freeReplyObject(p);
    }
    freeReplyObject(ks);
    redisFree(r);
    gp_cache_close(other);
    gp_cache_close(c);
    gp_config_release(&cfg2);
    gp_config_release(&cfg);
}

typedef struct loader_ctx {
    int calls;
    gp_status_t fail_with;
} loader_ctx_t;

static gp_status_t loader(void *ud, const char *tenant, const char *key, json_t **value, int64_t *ttl_ms)
{
    loader_ctx_t *l = ud;
    l->calls++;
    if (l->fail_with != GP_OK)
        return l->fail_with;
    *value = json_pack("{s:s, s:i}", "key", key, "n", l->calls);
    (void)tenant;
    (void)ttl_ms;
    return GP_OK;
}

static void test_get_or_load(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_t *c = gp_test_cache(&cfg, NULL, 0, 0);
    char t[37];
    gp_test_tenant(t);
    gp_error_t err;
    loader_ctx_t l = {0, GP_OK};
    json_t *v = NULL;
    gp_cache_load_opts_t o = {.ttl_ms = 30000};
    assert_int_equal(gp_cache_get_or_load(c, t, "row:1", &o, loader, &l, &v, &err), GP_OK);
    assert_int_equal(l.calls, 1);
    assert_int_equal(json_integer_value(json_object_get(v, "n")), 1);
    json_decref(v);
    assert_int_equal(gp_cache_get_or_load(c, t, "row:1", &o, loader, &l, &v, &err), GP_OK);
    assert_int_equal(l.calls, 1); /* a hit */
    json_decref(v);
    int64_t ttl;
    assert_int_equal(gp_cache_ttl(c, t, "row:1", &ttl, &err), GP_OK);
    assert_true(ttl > 0 && ttl <= 30000);

    /* a failing loader: its status, nothing cached */
    loader_ctx_t bad = {0, GP_ERR_NOT_FOUND};
    assert_int_equal(gp_cache_get_or_load(c, t, "row:2", NULL, loader, &bad, &v, &err), GP_ERR_NOT_FOUND);
    assert_false(err.retriable);
    assert_null(v);
    assert_int_equal(gp_cache_exists(c, t, "row:2", &err), GP_ERR_MISS);
    /* ... classified by that status: a timeout or a throttled pool is retriable */
    loader_ctx_t slow = {0, GP_ERR_TIMEOUT};
    assert_int_equal(gp_cache_get_or_load(c, t, "row:2", NULL, loader, &slow, &v, &err), GP_ERR_TIMEOUT);
    assert_int_equal(err.klass, GP_ECLASS_TIMEOUT);
    assert_true(err.retriable);
    assert_non_null(strstr(err.message, "the loader for tenant"));
    loader_ctx_t busy = {0, GP_ERR_BUSY};
    assert_int_equal(gp_cache_get_or_load(c, t, "row:2", NULL, loader, &busy, &v, &err), GP_ERR_BUSY);
    assert_int_equal(err.klass, GP_ECLASS_THROTTLED);
    assert_true(err.retriable);

    /* invalid JSON in the cache is a miss: reloaded and overwritten */
    assert_int_equal(gp_cache_set(c, t, "row:3", "{oops", 5, 0, &err), GP_OK);
    assert_int_equal(gp_cache_get_or_load(c, t, "row:3", NULL, loader, &l, &v, &err), GP_OK);
    assert_int_equal(l.calls, 2);
    json_decref(v);
    assert_int_equal(gp_cache_get_json(c, t, "row:3", &v, &err), GP_OK);
    json_decref(v);

    /* XFetch: with a huge beta every hit is refreshed early, yet the value
     * never disappears in between */
    gp_cache_load_opts_t x = {.ttl_ms = 60000, .early_beta = 1e12};
    assert_int_equal(gp_cache_get_or_load(c, t, "hot", &x, loader, &l, &v, &err), GP_OK);
    json_decref(v);
    int before = l.calls;
    assert_int_equal(gp_cache_get_or_load(c, t, "hot", &x, loader, &l, &v, &err), GP_OK);
    assert_int_equal(l.calls, before + 1);
    assert_int_equal(json_integer_value(json_object_get(v, "n")), before + 1);
    json_decref(v);
    assert_true(gp_test_cache_metrics(c).early_refreshes >= 1);
    /* with beta 0 the same hit is just a hit */
    x.early_beta = 0;
    assert_int_equal(gp_cache_get_or_load(c, t, "hot", &x, loader, &l, &v, &err), GP_OK);
    assert_int_equal(l.calls, before + 1);
    json_decref(v);
    /* a failed early refresh still returns the cached value */
    x.early_beta = 1e12;
    bad.calls = 0;
    assert_int_equal(gp_cache_get_or_load(c, t, "hot", &x, loader, &bad, &v, &err), GP_OK);
    assert_int_equal(bad.calls, 1);
    assert_int_equal(json_integer_value(json_object_get(v, "n")), before + 1);
    json_decref(v);

    assert_int_equal(gp_cache_get_or_load(c, t, "x", NULL, NULL, &l, &v, &err), GP_ERR_INVALID);
    assert_int_equal(gp_cache_get_or_load(c, "bad", "x", NULL, loader, &l, &v, &err), GP_ERR_TENANT);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

static void test_ping_metrics_auth_select(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_t *c = gp_test_cache(&cfg, NULL, 0, 2);
    int64_t lat = 0;
    gp_error_t err;
    assert_int_equal(gp_cache_ping(c, &lat, &err), GP_OK);
    assert_true(lat > 0);
    gp_cache_metrics_t m = gp_test_cache_metrics(c);
    assert_int_equal(m.circuit, GP_CACHE_CIRCUIT_CLOSED);
    assert_int_equal(m.pool_size, 2);
    assert_int_equal(m.connected, 1);
    assert_int_equal(m.leased, 0);
    assert_int_equal(m.connects, 1);
    assert_int_equal(m.latency.count, 1);
    assert_true(m.latency.p50_us > 0 && m.latency.p99_us >= m.latency.p50_us);
    assert_string_equal(gp_cache_circuit_name(GP_CACHE_CIRCUIT_CLOSED), "closed");
    assert_string_equal(gp_cache_circuit_name(GP_CACHE_CIRCUIT_OPEN), "open");
    assert_string_equal(gp_cache_circuit_name(GP_CACHE_CIRCUIT_HALF_OPEN), "half_open");
    assert_string_equal(gp_cache_circuit_name((gp_cache_circuit_t)42), "unknown");
    assert_int_equal(gp_cache_metrics(NULL, &m), GP_ERR_INVALID);
    gp_cache_close(c);
    gp_cache_close(NULL);

    /* SELECT: REDIS_DB=3 puts the keys in database 3 */
    cfg.redis.db = 3;
    cfg.redis.url = NULL;
    const char *url = getenv("REDIS_URL");
    cfg.redis.host = "127.0.0.1";
    cfg.redis.port = atoi(strrchr(url, ':') + 1);
    assert_int_equal(gp_cache_create(&cfg, NULL, &c, &err), GP_OK);
    char t[37], fk[700];
    gp_test_tenant(t);
    assert_int_equal(gp_cache_set(c, t, "in-db3", "v", 1, 0, &err), GP_OK);
    redisContext *r = gp_test_redis();
    freeReplyObject(gp_test_redis_cmd(r, "SELECT 3"));
    gp_test_full_key(r, t, "in-db3", fk, sizeof fk);
    redisReply *g = gp_test_redis_cmd(r, "GET %s", fk);
    assert_int_equal(g->type, REDIS_REPLY_STRING);
    freeReplyObject(g);
    redisFree(r);
    gp_cache_close(c);

    /* AUTH: a password the server does not expect fails, as "unavailable"
     * (a miss for callers), classified auth, never showing the password */
    cfg.redis.db = 0;
    cfg.redis.password = "S3cretPassw0rd";
    assert_int_equal(gp_cache_create(&cfg, NULL, &c, &err), GP_OK);
    assert_int_equal(gp_cache_set(c, t, "k", "v", 1, 0, &err), GP_ERR_UNAVAILABLE);
    assert_int_equal(err.klass, GP_ECLASS_AUTH);
    assert_non_null(strstr(err.message, "AUTH"));
    assert_null(strstr(err.message, "S3cretPassw0rd"));
    assert_int_equal(gp_test_cache_metrics(c).connect_failures, 1);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

/* A stand-in for a broken Redis on 127.0.0.1: answers whatever it reads
 * with `reply`, keeps each connection until the client closes it. */
typedef struct fake_redis {
    int fd, port;
    const char *reply;
    pthread_t thread;
} fake_redis_t;

static void *fake_redis_serve(void *arg)
{
    fake_redis_t *f = arg;
    int c;
    while ((c = accept(f->fd, NULL, NULL)) >= 0) { /* until the listener is shut down */
        char buf[4096];
        while (recv(c, buf, sizeof buf, 0) > 0 && send(c, f->reply, strlen(f->reply), MSG_NOSIGNAL) > 0)
            ;
        close(c);
    }
    return NULL;
}

static void fake_redis_start(fake_redis_t *f)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->fd >= 0);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->fd, 16), 0);
    assert_int_equal(getsockname(f->fd, (struct sockaddr *)&a, &al), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_redis_serve, f), 0);
}

static void fake_redis_stop(fake_redis_t *f)
{
    shutdown(f->fd, SHUT_RDWR); /* wakes accept() */
    pthread_join(f->thread, NULL);
    close(f->fd);
}

/* An array reply announcing more elements than any command of the cache is
 * answered with (found by fuzz/fuzz_redis_reply.c): a broken reply, which
 * ends the connection like any protocol error. The call is unavailable
 * (class connection, retriable), not out of memory as hiredis reports it. */
static void test_oversized_array_reply(void **state)
{
    (void)state;
    fake_redis_t f = {.reply = "*2000000\r\n"};
    fake_redis_start(&f);
    gp_config_t cfg;
    gp_config_init(&cfg);
    cfg.redis.host = "127.0.0.1";
    cfg.redis.port = f.port;
    gp_cache_t *c;
    gp_error_t err;
    assert_int_equal(gp_cache_create(&cfg, NULL, &c, &err), GP_OK);
    assert_int_equal(gp_cache_ping(c, NULL, &err), GP_ERR_UNAVAILABLE);
    assert_int_equal(err.klass, GP_ECLASS_CONNECTION);
    assert_true(err.retriable);
    assert_non_null(strstr(err.message, "an array reply of more than 1048576 elements"));
    char t[37], *v = NULL;
    gp_test_tenant(t);
    assert_int_equal(gp_cache_get(c, t, "k", &v, NULL, &err), GP_ERR_UNAVAILABLE); /* its generation's SET */
    assert_int_equal(err.klass, GP_ECLASS_CONNECTION);
    assert_null(v);
    assert_int_equal(gp_test_cache_metrics(c).connected, 0);
    gp_cache_close(c);
    gp_config_release(&cfg);
    fake_redis_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_key_operations),
        cmocka_unit_test(test_ttl_expires),
        cmocka_unit_test(test_batches_one_round_trip),
        cmocka_unit_test(test_largest_batch),
        cmocka_unit_test(test_decimal_formatting),
        cmocka_unit_test(test_json_round_trips),
        cmocka_unit_test(test_invalid_json_from_someone_else),
        cmocka_unit_test(test_validation_reaches_nothing),
        cmocka_unit_test(test_cross_tenant_attacks),
        cmocka_unit_test(test_tenant_invalidation),
        cmocka_unit_test(test_get_or_load),
        cmocka_unit_test(test_ping_metrics_auth_select),
        cmocka_unit_test(test_oversized_array_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
