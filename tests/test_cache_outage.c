/* test_cache_outage.c — Redis stopped in the middle of a load: every call
 * returns within the command timeout, the circuit opens and calls fail fast,
 * the application carries on (get_or_load still serves from the loader);
 * Redis started or restarted: the cache recovers within a second.
 * It stops and restarts the private Redis, so it runs alone. */
/* ctest-serial */
/* ctest-timeout: 120 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_test_cache.h"
#include "internal.h"

#define TIMEOUT_MS 300
/* Scheduling slack on a 2-core machine shared with other builds. */
#define SLACK_MS 250
#define THREADS 4

typedef struct load {
    gp_cache_t *c;
    char tenant[37];
    _Atomic bool stop;
    _Atomic uint64_t ok, unavailable, other, slowest_ns;
} load_t;

static void *worker(void *arg)
{
    load_t *l = arg;
    char key[32];
    snprintf(key, sizeof key, "k%lu", (unsigned long)(uintptr_t)pthread_self() % 1000);
    while (!atomic_load(&l->stop)) {
        int64_t t0 = gp__now_ns();
        gp_status_t st = gp_cache_set(l->c, l->tenant, key, "v", 1, 10000, NULL);
        if (st == GP_OK) {
            char *v = NULL;
            st = gp_cache_get(l->c, l->tenant, key, &v, NULL, NULL);
            free(v);
            if (st == GP_ERR_MISS)
                st = GP_OK; /* a restart empties Redis */
        }
        int64_t took = gp__now_ns() - t0;
        uint64_t prev = atomic_load(&l->slowest_ns);
        while ((uint64_t)took > prev && !atomic_compare_exchange_weak(&l->slowest_ns, &prev, (uint64_t)took))
            ;
        if (st == GP_OK)
            atomic_fetch_add(&l->ok, 1);
        else if (st == GP_ERR_UNAVAILABLE)
            atomic_fetch_add(&l->unavailable, 1);
        else
            atomic_fetch_add(&l->other, 1);
        if (st != GP_OK)
            gp_test_poll_pause(); /* a real application would serve from its database here */
    }
    return NULL;
}

/* Poll until the cache answers again; returns the time it took (ns). */
static int64_t time_to_recover(gp_cache_t *c, int64_t limit_ns)
{
    int64_t t0 = gp__now_ns();
    while (gp_cache_ping(c, NULL, NULL) != GP_OK && gp__now_ns() - t0 < limit_ns)
        gp_test_poll_pause();
    return gp__now_ns() - t0;
}

static gp_status_t loader(void *ud, const char *tenant, const char *key, json_t **value, int64_t *ttl_ms)
{
    (void)tenant, (void)key, (void)ttl_ms;
    atomic_fetch_add((_Atomic int *)ud, 1);
    *value = json_string("from the database");
    return GP_OK;
}

static void test_stop_in_the_middle_of_a_load(void **state)
{
    (void)state;
    gp_test_capture_logs(GP_LOG_INFO);
    gp_test_clear_logs();
    gp_config_t cfg;
    gp_cache_options_t o = {.breaker_threshold = 3};
    load_t l = {0};
    l.c = gp_test_cache(&cfg, &o, TIMEOUT_MS, 2);
    gp_test_tenant(l.tenant);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, &l), 0);
    while (atomic_load(&l.ok) < 200)
        gp_test_poll_pause();

    assert_int_equal(gp_test_services("stop redis"), 0);
    atomic_store(&l.slowest_ns, 0);
    /* The circuit opens within a few failures; calls then fail fast. */
    int64_t t0 = gp__now_ns();
    while (gp_test_cache_metrics(l.c).circuit == GP_CACHE_CIRCUIT_CLOSED && gp__now_ns() - t0 < 5000000000LL)
        gp_test_poll_pause();
    gp_cache_metrics_t m = gp_test_cache_metrics(l.c);
    assert_int_not_equal(m.circuit, GP_CACHE_CIRCUIT_CLOSED);
    assert_true(m.circuit_opened >= 1);
    uint64_t rejected0 = m.rejected, unavailable0 = atomic_load(&l.unavailable);
    while (atomic_load(&l.unavailable) < unavailable0 + 200 && gp__now_ns() - t0 < 10000000000LL)
        gp_test_poll_pause();
    m = gp_test_cache_metrics(l.c);
    assert_true(m.rejected > rejected0);              /* failed fast, without network I/O */
    assert_true(m.circuit_half_opened >= 1);          /* and probed in between */
    assert_int_equal(atomic_load(&l.other), 0);       /* only "unavailable", never another status */
    /* An application call during the outage: served by the loader. */
    _Atomic int loads = 0;
    json_t *v = NULL;
    int64_t c0 = gp__now_ns();
    assert_int_equal(gp_cache_get_or_load(l.c, l.tenant, "menu", NULL, loader, &loads, &v, NULL), GP_OK);
    assert_true(gp__now_ns() - c0 < (int64_t)(2 * TIMEOUT_MS + SLACK_MS) * 1000000LL);
    assert_string_equal(json_string_value(v), "from the database");
    json_decref(v);
    /* Error path timing: no call (set + get) took more than the budget each. */
    assert_true(atomic_load(&l.slowest_ns) < (uint64_t)(2 * TIMEOUT_MS + SLACK_MS) * 1000000ULL);

    assert_int_equal(gp_test_services("start redis"), 0);
    int64_t took = time_to_recover(l.c, 5000000000LL);
    fprintf(stderr, "recovered %.0f ms after the server came back\n", (double)took / 1e6);
    assert_true(took < 1000000000LL);
    int64_t before = atomic_load(&l.ok);
    t0 = gp__now_ns();
    while (atomic_load(&l.ok) < (uint64_t)before + 100 && gp__now_ns() - t0 < 5000000000LL)
        gp_test_poll_pause();
    assert_true(atomic_load(&l.ok) >= (uint64_t)before + 100);
    m = gp_test_cache_metrics(l.c);
    assert_int_equal(m.circuit, GP_CACHE_CIRCUIT_CLOSED);
    assert_true(m.circuit_closed >= 1);
    assert_true(gp_test_logs_contain("-> open"));
    assert_true(gp_test_logs_contain("-> closed"));

    /* A restart: the idle connections died with the server. */
    assert_int_equal(gp_test_services("restart redis"), 0);
    took = time_to_recover(l.c, 5000000000LL);
    fprintf(stderr, "recovered %.0f ms after the restart\n", (double)took / 1e6);
    assert_true(took < 1000000000LL);
    before = atomic_load(&l.ok);
    t0 = gp__now_ns();
    while (atomic_load(&l.ok) < (uint64_t)before + 100 && gp__now_ns() - t0 < 5000000000LL)
        gp_test_poll_pause();
    assert_true(atomic_load(&l.ok) >= (uint64_t)before + 100);

    atomic_store(&l.stop, true);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&l.other), 0);
    gp_cache_close(l.c);
    gp_config_release(&cfg);
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
}

static long stopped_server; /* resumed by the teardown whatever happens */

static int resume_server(void **state)
{
    (void)state;
    if (stopped_server > 0) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "kill -CONT %ld", stopped_server);
        if (system(cmd) != 0)
            return -1;
        stopped_server = 0;
    }
    return 0;
}

/* A server that accepts connections but never answers (a SIGSTOPped
 * Redis): a call costs at most the budget, the breaker opens, and the
 * calls after it fail fast. */
static void test_hung_server_bounded(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_options_t o = {.breaker_threshold = 2, .breaker_cooldown_ms = 5000, .breaker_max_cooldown_ms = 5000};
    gp_cache_t *c = gp_test_cache(&cfg, &o, TIMEOUT_MS, 1);
    char t[37];
    gp_test_tenant(t);
    assert_int_equal(gp_cache_set(c, t, "k", "v", 1, 0, NULL), GP_OK);
    redisContext *r = gp_test_redis();
    redisReply *pid = gp_test_redis_cmd(r, "INFO server");
    const char *p = strstr(pid->str, "process_id:");
    assert_non_null(p);
    long server = strtol(p + 11, NULL, 10);
    freeReplyObject(pid);
    redisFree(r);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "kill -STOP %ld", server);
    assert_int_equal(system(cmd), 0);
    stopped_server = server;
    gp_error_t err;
    for (int i = 0; i < 2; i++) {
        int64_t t0 = gp__now_ns();
        assert_int_equal(gp_cache_exists(c, t, "k", &err), GP_ERR_UNAVAILABLE);
        int64_t took = gp__now_ns() - t0;
        assert_true(took >= (int64_t)(TIMEOUT_MS - 20) * 1000000LL);
        assert_true(took < (int64_t)(TIMEOUT_MS + SLACK_MS) * 1000000LL);
        assert_int_equal(err.klass, GP_ECLASS_TIMEOUT);
    }
    int64_t t0 = gp__now_ns();
    assert_int_equal(gp_cache_exists(c, t, "k", &err), GP_ERR_UNAVAILABLE);
    assert_true(gp__now_ns() - t0 < 5000000LL); /* open: no I/O at all */
    assert_non_null(strstr(err.message, "circuit open"));
    assert_int_equal(resume_server(NULL), 0);
    gp_cache_metrics_t m;
    gp_cache_metrics(c, &m);
    assert_int_equal(m.circuit, GP_CACHE_CIRCUIT_OPEN);
    assert_true(m.timeouts >= 2);
    assert_int_equal(m.rejected, 1);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

/* A connection the server has closed: writing to it fails with EPIPE, and
 * a plain write() then raises SIGPIPE, which kills a process that does not
 * ignore it (this one does not). A large batch on a killed connection makes
 * it happen: the first write runs into the server's reset, the next one
 * gets EPIPE. The call must end in a status (resent on a fresh connection,
 * or unavailable) and the process must live on; a few rounds, as the
 * kernel decides where the reset lands. */
static void test_server_closed_connection_no_sigpipe(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_t *c = gp_test_cache(&cfg, NULL, 2000, 1);
    char t[37];
    gp_test_tenant(t);
    enum { N = 64, SIZE = 64 * 1024 };
    char *blob = malloc(SIZE), names[N][16];
    const char *keys[N];
    gp_cache_value_t vals[N];
    assert_non_null(blob);
    memset(blob, 'v', SIZE);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "big:%d", i);
        keys[i] = names[i];
        vals[i] = (gp_cache_value_t){blob, SIZE};
    }
    gp_error_t err;
    redisContext *r = gp_test_redis();
    for (int round = 0; round < 5; round++) {
        assert_int_equal(gp_cache_set(c, t, "warm", "1", 1, 0, &err), GP_OK); /* the connection is open */
        redisReply *k = gp_test_redis_cmd(r, "CLIENT KILL TYPE normal SKIPME yes");
        assert_int_equal(k->type, REDIS_REPLY_INTEGER);
        assert_true(k->integer >= 1);
        freeReplyObject(k);
        gp_status_t st = gp_cache_mset(c, t, N, keys, vals, 10000, &err);
        assert_true(st == GP_OK || st == GP_ERR_UNAVAILABLE);
    }
    redisFree(r);
    assert_int_equal(gp_cache_set(c, t, "after", "1", 1, 0, &err), GP_OK);
    free(blob);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_in_the_middle_of_a_load),
        cmocka_unit_test_teardown(test_hung_server_bounded, resume_server),
        cmocka_unit_test(test_server_closed_connection_no_sigpipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
