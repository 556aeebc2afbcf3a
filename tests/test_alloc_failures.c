/* test_alloc_failures.c — fail the Nth allocation of the library, for every
 * N, along real paths: creating a pool, a tenant one-shot call (with the
 * secret's publication), a pool pipeline, a tenant transaction, the cache
 * (create, set, get, close), closing the pool; COPY out, a stream and
 * NOTIFY in a tenant transaction, a listener and a subscription. Every run must end without a
 * crash or a hang, each call with success or GP_ERR_NOMEM (or an error that
 * an allocation failure in the pool's background thread explains: a
 * timeout waiting for a connection, the cache unavailable), and nothing
 * leaked (LeakSanitizer, in the ASan build). N grows until a run makes no
 * more allocations than N.
 *
 * The library's objects are linked with --wrap for malloc, calloc, realloc,
 * strdup and strndup (libpq, hiredis and jansson allocate for themselves
 * and are not failed here).
 * ctest-wrap-alloc
 * ctest-timeout: 600 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_scratch.h"
#include "gp_test.h"
#include "growplate/cache.h"
#include "growplate/copy.h"
#include "growplate/listen.h"
#include "growplate/tenant.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

static _Atomic long fail_at;  /* 0: never fail */
static _Atomic long counted;  /* allocations since armed */
static _Atomic int failed_one;

static int fail_now(void)
{
    long f = atomic_load(&fail_at);
    if (!f)
        return 0;
    long n = atomic_fetch_add(&counted, 1) + 1;
    if (n != f)
        return 0;
    atomic_store(&failed_one, 1);
    return 1;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return fail_now() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return fail_now() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return fail_now() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return fail_now() ? NULL : __real_strndup(s, n); }

static gp_scratch_t scratch;
static const char tenant[] = "00000000-0000-4000-8000-0000000000a1";

static gp_status_t body(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    (void)ud;
    gp_result_t *r = NULL;
    gp_status_t st = gp_tenant_tx_query(tx, "SELECT count(*) FROM public.menu_items", 0, NULL, &r, err);
    gp_result_free(r);
    return st;
}

/* COPY out, a stream and NOTIFY in one tenant transaction (#21). */
static gp_status_t discard(void *ud, const char *data, size_t len, gp_error_t *err)
{
    (void)ud, (void)data, (void)len, (void)err;
    return GP_OK;
}

static gp_status_t bulk(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    (void)ud;
    gp_status_t st = gp_tenant_tx_copy_out(tx, "COPY (SELECT 1 UNION ALL SELECT 2) TO STDOUT", discard, NULL, NULL, err);
    gp_stream_t *s = NULL;
    if (st == GP_OK)
        st = gp_tenant_tx_stream_open(tx, "SELECT generate_series(1, 3)", 0, NULL, &s, err);
    const gp_result_t *row = NULL;
    if (st == GP_OK)
        st = gp_stream_next(s, &row, err);
    if (s) {
        gp_status_t cst = gp_stream_close(s, err);
        if (st == GP_OK)
            st = cst;
    }
    if (st == GP_OK)
        st = gp_tenant_tx_notify(tx, "alloc", "payload", err);
    return st;
}

/* The status of one call: allowed, or the run fails. */
static void allowed(const char *what, gp_status_t st, long n)
{
    if (n == 0 && st != GP_OK) { /* the run without failures: everything works */
        fprintf(stderr, "without failures, %s returned %s\n", what, gp_strerror(st));
        fail();
    }
    if (st == GP_OK || st == GP_ERR_NOMEM || st == GP_ERR_TIMEOUT || st == GP_ERR_UNAVAILABLE ||
        st == GP_ERR_MISS)
        return;
    fprintf(stderr, "allocation %ld failed: %s returned %s\n", n, what, gp_strerror(st));
    fail();
}

static void scenario(long n, const gp_config_t *base)
{
    gp_config_t cfg = *base;
    cfg.owned_ = NULL;
    gp_error_t e;
    gp_pool_t *pool = NULL;
    gp_status_t st = gp_pool_create(&cfg, &pool, &e);
    allowed("gp_pool_create", st, n);
    if (st == GP_OK) {
        gp_result_t *r = NULL;
        gp_value_t v = gp_text("hello");
        st = gp_tenant_query(pool, tenant, "SELECT $1::text", 1, &v, &r, &e);
        allowed("gp_tenant_query", st, n);
        if (st == GP_OK) {
            const char *s = NULL;
            assert_int_equal(gp_get_text(r, 0, 0, &s, NULL), GP_OK);
            assert_string_equal(s, "hello");
        }
        gp_result_free(r);
        gp_pipeline_t *p = gp_pipeline_new();
        if (p) {
            st = gp_pipeline_add(p, "SELECT 1", 0, NULL, &e);
            if (st == GP_OK)
                st = gp_pipeline_add(p, "SELECT 2", 0, NULL, &e);
            allowed("gp_pipeline_add", st, n);
            if (st == GP_OK)
                allowed("gp_pool_pipeline_run", gp_pool_pipeline_run(pool, p, &e), n);
            gp_pipeline_free(p);
        }
        allowed("gp_tenant_run", gp_tenant_run(pool, tenant, NULL, body, NULL, NULL, &e), n);
        allowed("gp_tenant_run (copy, stream, notify)", gp_tenant_run(pool, tenant, NULL, bulk, NULL, NULL, &e), n);
        gp_pool_close(pool, 2000);
    }
    gp_listener_t *l = NULL;
    st = gp_listener_create(&cfg, &l, &e);
    allowed("gp_listener_create", st, n);
    if (st == GP_OK) {
        allowed("gp_listener_listen_tenant", gp_listener_listen_tenant(l, tenant, "alloc", NULL, NULL, &e), n);
        gp_listener_free(l);
    }
    gp_cache_t *cache = NULL;
    st = gp_cache_create(&cfg, NULL, &cache, &e);
    allowed("gp_cache_create", st, n);
    if (st == GP_OK) {
        allowed("gp_cache_set", gp_cache_set(cache, tenant, "k", "value", 5, 60000, &e), n);
        char *val = NULL;
        size_t len = 0;
        allowed("gp_cache_get", st = gp_cache_get(cache, tenant, "k", &val, &len, &e), n);
        free(val);
        gp_cache_close(cache);
    }
}

static void test_every_allocation_fails_once(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "alloc");
    gp_scratch_migrate(&scratch);
    gp_config_t cfg;
    gp_scratch_config(&scratch, &cfg);
    cfg.db.pool_min = 0;
    cfg.db.pool_max = 1;
    cfg.db.acquire_timeout_ms = 1000;
    cfg.redis.timeout_ms = 500;
    scenario(0, &cfg); /* warm: the schema, the anchor */
    long n = 1;
    for (;; n++) {
        atomic_store(&counted, 0);
        atomic_store(&failed_one, 0);
        atomic_store(&fail_at, n);
        scenario(n, &cfg);
        atomic_store(&fail_at, 0);
        if (!atomic_load(&failed_one))
            break; /* the run made fewer than n allocations: every one has failed once */
        assert_true(n < 100000);
    }
    fprintf(stderr, "failed each of the first %ld allocations once; %ld were made in a full run\n", n - 1,
            (long)atomic_load(&counted));
    assert_true(n > 30);
    gp_config_release(&cfg);
    gp_scratch_drop(&scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_fails_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
