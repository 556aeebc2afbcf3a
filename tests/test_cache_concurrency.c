/* test_cache_concurrency.c — the cache under threads: single-flight loads
 * (16 threads, one loader run), a pool smaller than the number of threads
 * (bounded waits, no lost connection), invalidation racing with readers.
 * Also runs under ThreadSanitizer. */
/* ctest-labels: concurrency */
/* ctest-timeout: 180 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_test_cache.h"
#include "internal.h"

#define THREADS 16

typedef struct sf {
    gp_cache_t *c;
    char tenant[37];
    _Atomic int loader_runs;
    pthread_barrier_t start;
    json_t *results[THREADS];
    gp_status_t status[THREADS];
} sf_t;

/* The loader holds its flight open until every other thread is waiting on
 * it (polled through the metrics, bounded), so no thread can arrive late. */
static gp_status_t slow_loader(void *ud, const char *tenant, const char *key, json_t **value, int64_t *ttl_ms)
{
    sf_t *s = ud;
    (void)tenant, (void)ttl_ms;
    int run = atomic_fetch_add(&s->loader_runs, 1) + 1;
    int64_t t0 = gp__now_ns();
    while (gp_test_cache_metrics(s->c).load_waits < THREADS - 1 && gp__now_ns() - t0 < 20000000000LL)
        gp_test_poll_pause();
    *value = json_pack("{s:s, s:i}", "key", key, "run", run);
    return GP_OK;
}

typedef struct arg {
    sf_t *s;
    int i;
} arg_t;

static void *sf_thread(void *p)
{
    arg_t *a = p;
    pthread_barrier_wait(&a->s->start);
    gp_cache_load_opts_t o = {.ttl_ms = 60000, .wait_ms = 30000};
    a->s->status[a->i] = gp_cache_get_or_load(a->s->c, a->s->tenant, "menu:today", &o, slow_loader, a->s,
                                              &a->s->results[a->i], NULL);
    return NULL;
}

static void test_single_flight_16_threads(void **state)
{
    (void)state;
    gp_config_t cfg;
    sf_t s = {0};
    s.c = gp_test_cache(&cfg, NULL, 0, 4);
    gp_test_tenant(s.tenant);
    pthread_barrier_init(&s.start, NULL, THREADS);
    pthread_t th[THREADS];
    arg_t args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (arg_t){&s, i};
        assert_int_equal(pthread_create(&th[i], NULL, sf_thread, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&s.loader_runs), 1);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(s.status[i], GP_OK);
        assert_non_null(s.results[i]);
        assert_true(json_equal(s.results[i], s.results[0]));
        if (i)
            assert_ptr_not_equal(s.results[i], s.results[0]); /* each thread owns its json_t */
    }
    for (int i = 0; i < THREADS; i++)
        json_decref(s.results[i]);
    gp_cache_metrics_t m = gp_test_cache_metrics(s.c);
    assert_int_equal(m.loads, 1);
    assert_int_equal(m.load_waits, THREADS - 1);
    /* and the value is cached for everyone after */
    json_t *v;
    assert_int_equal(gp_cache_get_json(s.c, s.tenant, "menu:today", &v, NULL), GP_OK);
    json_decref(v);
    pthread_barrier_destroy(&s.start);
    gp_cache_close(s.c);
    gp_config_release(&cfg);
}

/* A loader whose value has an object key with a NUL byte: the loading
 * thread gets its value, but a waiting thread, which reads the value back
 * from its JSON text, cannot (jansson rejects such a key): it gets
 * GP_ERR_INVALID naming the cause, not "out of memory". */
static gp_status_t nul_key_loader(void *ud, const char *tenant, const char *key, json_t **value, int64_t *ttl_ms)
{
    sf_t *s = ud;
    (void)tenant, (void)key, (void)ttl_ms;
    atomic_fetch_add(&s->loader_runs, 1);
    int64_t t0 = gp__now_ns();
    while (gp_test_cache_metrics(s->c).load_waits < 1 && gp__now_ns() - t0 < 20000000000LL)
        gp_test_poll_pause();
    *value = json_object();
    json_object_setn_new(*value, "a\0b", 3, json_true());
    return GP_OK;
}

static _Atomic int nul_reason_named;

static void *nul_key_thread(void *p)
{
    arg_t *a = p;
    pthread_barrier_wait(&a->s->start);
    gp_cache_load_opts_t o = {.ttl_ms = 60000, .wait_ms = 30000};
    gp_error_t err;
    a->s->status[a->i] = gp_cache_get_or_load(a->s->c, a->s->tenant, "nul", &o, nul_key_loader, a->s,
                                              &a->s->results[a->i], &err);
    if (a->s->status[a->i] == GP_ERR_INVALID && strstr(err.message, "NUL byte"))
        atomic_fetch_add(&nul_reason_named, 1);
    return NULL;
}

static void test_waiter_cannot_read_back(void **state)
{
    (void)state;
    gp_config_t cfg;
    sf_t s = {0};
    s.c = gp_test_cache(&cfg, NULL, 0, 2);
    gp_test_tenant(s.tenant);
    pthread_barrier_init(&s.start, NULL, 2);
    pthread_t th[2];
    arg_t args[2];
    for (int i = 0; i < 2; i++) {
        args[i] = (arg_t){&s, i};
        assert_int_equal(pthread_create(&th[i], NULL, nul_key_thread, &args[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&s.loader_runs), 1);
    int ok = 0, invalid = 0;
    for (int i = 0; i < 2; i++) {
        ok += s.status[i] == GP_OK;
        invalid += s.status[i] == GP_ERR_INVALID;
        json_decref(s.results[i]);
    }
    assert_int_equal(ok, 1);
    assert_int_equal(invalid, 1);
    assert_int_equal(atomic_load(&nul_reason_named), 1);
    pthread_barrier_destroy(&s.start);
    gp_cache_close(s.c);
    gp_config_release(&cfg);
}

typedef struct hammer {
    gp_cache_t *c;
    char tenant[37];
    _Atomic int failures;
    _Atomic bool stop;
} hammer_t;

static void *hammer_thread(void *p)
{
    hammer_t *h = p;
    for (int i = 0; i < 150; i++) {
        char key[32], val[32], *got = NULL;
        snprintf(key, sizeof key, "k%d", i % 10);
        int n = snprintf(val, sizeof val, "v%d", i);
        if (gp_cache_set(h->c, h->tenant, key, val, (size_t)n, 60000, NULL) != GP_OK)
            atomic_fetch_add(&h->failures, 1);
        gp_status_t st = gp_cache_get(h->c, h->tenant, key, &got, NULL, NULL);
        if (st != GP_OK && st != GP_ERR_MISS) /* a miss: another thread invalidated */
            atomic_fetch_add(&h->failures, 1);
        free(got);
        const char *keys[3] = {"k1", "k2", "k3"};
        gp_cache_value_t vals[3];
        if (gp_cache_mget(h->c, h->tenant, 3, keys, vals, NULL) != GP_OK)
            atomic_fetch_add(&h->failures, 1);
        gp_cache_values_free(vals, 3);
    }
    return NULL;
}

static void *invalidator(void *p)
{
    hammer_t *h = p;
    while (!atomic_load(&h->stop))
        if (gp_cache_invalidate_tenant(h->c, h->tenant, NULL) != GP_OK)
            atomic_fetch_add(&h->failures, 1);
    return NULL;
}

static void test_small_pool_many_threads(void **state)
{
    (void)state;
    gp_config_t cfg;
    hammer_t h = {0};
    h.c = gp_test_cache(&cfg, NULL, 2000, 2); /* 8 threads + 1 invalidator share 2 connections */
    gp_test_tenant(h.tenant);
    pthread_t th[8], inv;
    assert_int_equal(pthread_create(&inv, NULL, invalidator, &h), 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer_thread, &h), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    atomic_store(&h.stop, true);
    pthread_join(inv, NULL);
    assert_int_equal(atomic_load(&h.failures), 0);
    gp_cache_metrics_t m = gp_test_cache_metrics(h.c);
    assert_true(m.connected <= 2);
    assert_int_equal(m.leased, 0);
    assert_int_equal(m.waiting, 0);
    assert_int_equal(m.errors, 0);
    assert_true(m.invalidations > 0);
    /* After the last invalidation, this process sees no old value. */
    assert_int_equal(gp_cache_set(h.c, h.tenant, "k1", "x", 1, 0, NULL), GP_OK);
    assert_int_equal(gp_cache_invalidate_tenant(h.c, h.tenant, NULL), GP_OK);
    assert_int_equal(gp_cache_exists(h.c, h.tenant, "k1", NULL), GP_ERR_MISS);
    gp_cache_close(h.c);
    gp_config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_flight_16_threads),
        cmocka_unit_test(test_waiter_cannot_read_back),
        cmocka_unit_test(test_small_pool_many_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
