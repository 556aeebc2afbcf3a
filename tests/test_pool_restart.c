/* test_pool_restart.c — a PostgreSQL restart (scripts/services restart
 * postgres) during an 8-thread load: no crash, no acquire that outlives its
 * timeout, every failure a classified retriable error, and every thread
 * working again shortly after the server accepts connections. */
/* ctest-serial */
/* ctest-labels: concurrency */
/* ctest-timeout: 240 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gp_test.h"
#include "internal.h"
#include "pool_internal.h"

#define THREADS 8
#define ACQUIRE_TIMEOUT_MS 2000

typedef struct worker {
    gp_pool_t *pool;
    _Atomic bool *stop;
    _Atomic uint64_t ok;
    _Atomic int64_t last_ok_ns;
    uint64_t errors, unclassified;
    int64_t longest_acquire_ns;
    char first_bad[600];
} worker_t;

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void bad(worker_t *w, const gp_error_t *e, const char *where)
{
    w->unclassified++;
    if (!w->first_bad[0])
        snprintf(w->first_bad, sizeof w->first_bad, "%s: status %s class %s retriable %d: %s", where,
                 gp_strerror(e->status), gp_error_class_name(e->klass), e->retriable, e->message);
}

static void *work(void *arg)
{
    worker_t *w = arg;
    while (!atomic_load(w->stop)) {
        gp_conn_t *c = NULL;
        gp_error_t e;
        int64_t t0 = gp__now_ns();
        gp_status_t st = gp_pool_acquire(w->pool, "restart", ACQUIRE_TIMEOUT_MS, &c, &e);
        int64_t took = gp__now_ns() - t0;
        if (took > w->longest_acquire_ns)
            w->longest_acquire_ns = took;
        if (st != GP_OK) {
            w->errors++;
            if (!e.retriable || (st != GP_ERR_CONNECT && st != GP_ERR_TIMEOUT) ||
                (e.klass != GP_ECLASS_CONNECTION && e.klass != GP_ECLASS_TIMEOUT))
                bad(w, &e, "acquire");
            continue;
        }
        PGconn *pg = gp_conn_pgconn(c);
        PGresult *r = PQexec(pg, "SELECT 1");
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            atomic_fetch_add(&w->ok, 1);
            atomic_store(&w->last_ok_ns, gp__now_ns());
        } else {
            w->errors++;
            gp__error_from_pg(pg, r, &e);
            if (!e.retriable || e.klass != GP_ECLASS_CONNECTION)
                bad(w, &e, "query");
            if (gp__sqlstate_is_fatal(e.sqlstate))
                c->discard = true;
        }
        PQclear(r);
        gp_pool_release(c);
    }
    return NULL;
}

static uint64_t total_ok(worker_t *w)
{
    uint64_t n = 0;
    for (int i = 0; i < THREADS; i++)
        n += atomic_load(&w[i].ok);
    return n;
}

static void test_restart_under_load(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_test_config(&cfg);
    cfg.db.pool_min = THREADS;
    cfg.db.pool_max = THREADS;
    cfg.db.acquire_timeout_ms = ACQUIRE_TIMEOUT_MS;
    cfg.db.connect_timeout_ms = 2000;
    gp_test_capture_logs(GP_LOG_WARN); /* the expected connection warnings, kept off the test output */
    gp_pool_t *pool = NULL;
    assert_int_equal(gp_pool_create(&cfg, &pool, NULL), GP_OK);

    _Atomic bool stop = false;
    worker_t w[THREADS];
    pthread_t th[THREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < THREADS; i++) {
        w[i].pool = pool;
        w[i].stop = &stop;
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    int64_t until = gp__now_ns() + 10000 * 1000000LL;
    while (total_ok(w) < 200) {
        assert_true(gp__now_ns() < until);
        pause_ms(2);
    }
    uint64_t before = total_ok(w);
    int64_t t_before = gp__now_ns();
    pause_ms(300); /* a throughput sample for the report below, not synchronisation */
    double rate_before = (double)(total_ok(w) - before) / ((double)(gp__now_ns() - t_before) / 1e9);

    int64_t t_restart = gp__now_ns();
    assert_int_equal(gp_test_services("restart postgres"), 0); /* returns once it accepts connections */
    int64_t t_up = gp__now_ns();

    /* Every thread completes a query again. */
    int64_t deadline = t_up + 5000 * 1000000LL;
    int64_t t_all = 0;
    for (;;) {
        int back = 0;
        for (int i = 0; i < THREADS; i++)
            back += atomic_load(&w[i].last_ok_ns) > t_up;
        if (back == THREADS) {
            t_all = gp__now_ns();
            break;
        }
        if (gp__now_ns() > deadline)
            break;
        pause_ms(1);
    }
    uint64_t after = total_ok(w);
    int64_t t_after = gp__now_ns();
    pause_ms(300);
    double rate_after = (double)(total_ok(w) - after) / ((double)(gp__now_ns() - t_after) / 1e9);
    atomic_store(&stop, true);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);

    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(pool, &m), GP_OK);
    uint64_t errors = 0, unclassified = 0;
    int64_t longest = 0;
    for (int i = 0; i < THREADS; i++) {
        errors += w[i].errors;
        unclassified += w[i].unclassified;
        if (w[i].longest_acquire_ns > longest)
            longest = w[i].longest_acquire_ns;
        if (w[i].first_bad[0])
            fprintf(stderr, "thread %d: %s\n", i, w[i].first_bad);
    }
    fprintf(stderr,
            "restart took %.0f ms; all %d threads working again %.0f ms after the server accepted; "
            "%.0f q/s before, %.0f q/s after; %llu errors (all classified: %s); longest acquire %.0f ms; "
            "opened %llu, open failures %llu, closed broken %llu\n",
            (double)(t_up - t_restart) / 1e6, THREADS, t_all ? (double)(t_all - t_up) / 1e6 : -1.0, rate_before,
            rate_after, (unsigned long long)errors, unclassified ? "no" : "yes", (double)longest / 1e6,
            (unsigned long long)m.opened, (unsigned long long)m.open_failures,
            (unsigned long long)m.closed[GP_CLOSE_BROKEN]);
    assert_true(t_all > 0);
    /* Backoff is capped at 0.5 s (+25% jitter), then 8 connects: 2 s is a generous bound. */
    assert_true(t_all - t_up < 2000 * 1000000LL);
    assert_int_equal(unclassified, 0);
    assert_true(longest < (ACQUIRE_TIMEOUT_MS + 1000) * 1000000LL); /* no hang beyond the acquire timeout */
    assert_true(m.closed[GP_CLOSE_BROKEN] > 0); /* the restart broke connections; they were discarded */
    assert_int_equal(m.leased, 0);
    /* And the pool refills to min by itself. */
    int64_t refill = gp__now_ns() + 20000 * 1000000LL;
    while (gp_pool_metrics(pool, &m) == GP_OK && m.idle < THREADS) {
        assert_true(gp__now_ns() < refill);
        pause_ms(2);
    }
    assert_int_equal(gp_pool_close(pool, 2000), GP_OK);
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
    gp_config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_under_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
