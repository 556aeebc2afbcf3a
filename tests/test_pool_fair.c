/* test_pool_fair.c — the tenant-fair pool: hand-off order across keys
 * (least recent service first, FIFO within a key) and plain FIFO with
 * fairness off, the share cap, GP_ERR_BUSY over the waiting bound (and
 * only while other keys use the pool), work conservation, timeouts still
 * honoured, and the per-key metrics' cardinality bound. Waiters are queued
 * in a known order by watching the pool's own gauges, never by sleeping.
 * ctest-labels: concurrency */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gp_test.h"
#include "internal.h"


/* Poll the pool's metrics until `cond` holds, for at most `ms`. */
#define WAIT_UNTIL(pool, m, cond, ms)                                                   \
    do {                                                                                \
        int64_t until_ = gp__now_ns() + (int64_t)(ms) * 1000000LL;                     \
        for (;;) {                                                                      \
            assert_int_equal(gp_pool_metrics((pool), (m)), GP_OK);                     \
            if (cond)                                                                   \
                break;                                                                  \
            if (gp__now_ns() > until_) {                                                \
                fprintf(stderr, "timed out waiting for: %s\n", #cond);                 \
                fail();                                                                 \
            }                                                                           \
            gp_test_pause_ms(1);                                                                \
        }                                                                               \
    } while (0)

static gp_pool_metrics_t *metrics(void)
{
    static gp_pool_metrics_t m; /* 13 KB: not on the stack of every test */
    return &m;
}

static gp_pool_t *make_pool(gp_config_t *cfg, int max, int fair, int share_pct, int max_waiting)
{
    gp_test_config(cfg);
    cfg->db.pool_min = 0;
    cfg->db.pool_max = max;
    cfg->db.acquire_timeout_ms = 5000;
    cfg->db.tenant_fair = fair;
    cfg->db.tenant_max_share_pct = share_pct;
    cfg->db.tenant_max_waiting = max_waiting;
    gp_pool_t *p = NULL;
    gp_error_t e;
    if (gp_pool_create(cfg, &p, &e) != GP_OK)
        fprintf(stderr, "pool: %s\n", e.message);
    assert_non_null(p);
    return p;
}

static gp_conn_t *lease(gp_pool_t *p, const char *key)
{
    gp_conn_t *c = NULL;
    gp_error_t e;
    gp_status_t st = gp_pool_acquire(p, key, -1, &c, &e);
    if (st != GP_OK)
        fprintf(stderr, "acquire '%s': %s\n", key, e.message);
    assert_int_equal(st, GP_OK);
    return c;
}

/* Spend `ms` of wall time holding whatever the caller holds (a duration
 * to be measured as service, not a wait for another thread). */
static void hold_for(int ms)
{
    int64_t until = gp__now_ns() + (int64_t)ms * 1000000LL;
    while (gp__now_ns() < until)
        gp_test_pause_ms(1);
}

static const gp_pool_key_metrics_t *key_row(const gp_pool_metrics_t *m, const char *key)
{
    for (int i = 0; i < m->n_keys; i++)
        if (!m->keys[i].other && strcmp(m->keys[i].key, key) == 0)
            return &m->keys[i];
    return NULL;
}

/* ---- waiters that record the order they were served in ---------------------------- */

#define MAXW 16

typedef struct order {
    gp_pool_t *pool;
    pthread_mutex_t mu;  /* guards next, served, gate */
    pthread_cond_t cv;
    int next;
    int served[MAXW];    /* waiter ids in the order they got a connection */
    bool gated, gate_open; /* gated: hold the connection until the gate opens */
    gp_status_t status[MAXW];
    int timeout_ms;
} order_t;

#define ORDER_INIT(p) {.pool = (p), .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER}

static int served_count(order_t *o)
{
    pthread_mutex_lock(&o->mu);
    int n = o->next;
    pthread_mutex_unlock(&o->mu);
    return n;
}

typedef struct waiter_arg {
    order_t *o;
    int id;
    char key[32];
} waiter_arg_t;

static void *waiter_main(void *arg)
{
    waiter_arg_t *a = arg;
    gp_conn_t *c = NULL;
    a->o->status[a->id] = gp_pool_acquire(a->o->pool, a->key, a->o->timeout_ms ? a->o->timeout_ms : 5000, &c, NULL);
    if (c) {
        order_t *o = a->o;
        pthread_mutex_lock(&o->mu);
        o->served[o->next++] = a->id;
        pthread_cond_broadcast(&o->cv);
        while (o->gated && !o->gate_open)
            pthread_cond_wait(&o->cv, &o->mu);
        pthread_mutex_unlock(&o->mu);
        gp_pool_release(c);
    }
    return NULL;
}

/* Start waiters for keys[0..n) one at a time, each queued before the next
 * starts (the pool's waiting gauge says so). */
static void start_waiters(gp_pool_t *p, order_t *o, waiter_arg_t *args, pthread_t *th, const char *const *keys, int n)
{
    for (int i = 0; i < n; i++) {
        args[i].o = o;
        args[i].id = i;
        snprintf(args[i].key, sizeof args[i].key, "%s", keys[i]);
        int before = (gp_pool_metrics(p, metrics()), metrics()->waiting);
        assert_int_equal(pthread_create(&th[i], NULL, waiter_main, &args[i]), 0);
        WAIT_UNTIL(p, metrics(), metrics()->waiting == before + 1, 5000);
    }
}

static void join_all(pthread_t *th, int n)
{
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

/* One connection, held by tenant A for a while; A queues three more
 * callers, then B and C one each. Fair: B and C (no service yet) go first,
 * in arrival order, then A's callers in theirs. Off: plain arrival order. */
static void handoff_order(int fair, const int *want)
{
    gp_config_t cfg;
    gp_pool_t *p = make_pool(&cfg, 1, fair, 50, 100);
    gp_conn_t *held = lease(p, "tenant-a");
    order_t o = ORDER_INIT(p);
    waiter_arg_t args[5];
    pthread_t th[5];
    const char *keys[] = {"tenant-a", "tenant-a", "tenant-a", "tenant-b", "tenant-c"};
    start_waiters(p, &o, args, th, keys, 5);
    hold_for(20); /* A's lease is its service */
    gp_pool_release(held);
    join_all(th, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(o.status[i], GP_OK);
        if (o.served[i] != want[i])
            fprintf(stderr, "fair=%d: position %d served waiter %d, expected %d\n", fair, i, o.served[i], want[i]);
        assert_int_equal(o.served[i], want[i]);
    }
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

static void test_fair_handoff_order(void **state)
{
    (void)state;
    static const int want[] = {3, 4, 0, 1, 2};
    handoff_order(1, want);
}

static void test_fifo_when_fairness_is_off(void **state)
{
    (void)state;
    static const int want[] = {0, 1, 2, 3, 4};
    handoff_order(0, want);
}

/* The share cap: B has more recent service than A (a long lease just
 * ended), but A already holds its share (2 of 4) and B holds none, so the
 * next free connection goes to B. */
static void test_share_cap(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_pool_t *p = make_pool(&cfg, 4, 1, 50, 100);
    gp_conn_t *b = lease(p, "tenant-b");
    hold_for(100);
    gp_pool_release(b);
    gp_conn_t *a1 = lease(p, "tenant-a"), *a2 = lease(p, "tenant-a");
    gp_conn_t *c1 = lease(p, "tenant-c"), *c2 = lease(p, "tenant-c");
    order_t o = ORDER_INIT(p);
    waiter_arg_t args[2];
    pthread_t th[2];
    const char *keys[] = {"tenant-a", "tenant-b"};
    o.gated = true; /* each waiter keeps its connection until the gate opens */
    start_waiters(p, &o, args, th, keys, 2);
    gp_pool_release(c1); /* one connection frees: B's, as A holds its share */
    WAIT_UNTIL(p, metrics(), served_count(&o) == 1, 5000);
    pthread_mutex_lock(&o.mu);
    assert_int_equal(o.served[0], 1);
    o.gate_open = true;
    pthread_cond_broadcast(&o.cv);
    pthread_mutex_unlock(&o.mu);
    gp_pool_release(c2);
    join_all(th, 2);
    assert_int_equal(o.served[1], 0);
    gp_pool_release(a1);
    gp_pool_release(a2);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

/* Work conservation: alone, one key may hold every connection, whatever
 * its share. */
static void test_work_conserving(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_pool_t *p = make_pool(&cfg, 4, 1, 25, 0);
    gp_conn_t *c[4];
    for (int i = 0; i < 4; i++)
        c[i] = lease(p, "tenant-solo");
    assert_int_equal(gp_pool_metrics(p, metrics()), GP_OK);
    const gp_pool_key_metrics_t *r = key_row(metrics(), "tenant-solo");
    assert_non_null(r);
    assert_int_equal(r->held, 4);
    assert_int_equal(metrics()->acquire_timeouts, 0);
    for (int i = 0; i < 4; i++)
        gp_pool_release(c[i]);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

/* DATABASE_TENANT_MAX_WAITING: a key alone may queue without it (only its
 * own callers wait); once another key uses the pool, one more caller of a
 * key already at the bound gets GP_ERR_BUSY at once, naming key and bound. */
static void test_max_waiting_busy(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_pool_t *p = make_pool(&cfg, 1, 1, 50, 2);
    gp_conn_t *held = lease(p, "tenant-a");
    order_t o = ORDER_INIT(p);
    waiter_arg_t args[4];
    pthread_t th[4];
    const char *keys[] = {"tenant-a", "tenant-a", "tenant-a", "tenant-b"};
    start_waiters(p, &o, args, th, keys, 4); /* three of A's: alone, no bound; then B */
    gp_conn_t *c = NULL;
    gp_error_t e;
    int64_t t0 = gp__now_ns();
    assert_int_equal(gp_pool_acquire(p, "tenant-a", 5000, &c, &e), GP_ERR_BUSY);
    assert_true(gp__now_ns() - t0 < 100 * 1000000LL); /* at once, not at the timeout */
    assert_null(c);
    assert_int_equal(e.status, GP_ERR_BUSY);
    assert_int_equal(e.klass, GP_ECLASS_THROTTLED);
    assert_true(e.retriable);
    assert_non_null(strstr(e.message, "'tenant-a' already has 3 callers waiting"));
    assert_non_null(strstr(e.message, "DATABASE_TENANT_MAX_WAITING = 2"));
    assert_string_equal(gp_error_class_name(GP_ECLASS_THROTTLED), "throttled");
    /* B itself is under the bound. */
    assert_int_equal(gp_pool_metrics(p, metrics()), GP_OK);
    assert_int_equal(metrics()->throttled, 1);
    const gp_pool_key_metrics_t *r = key_row(metrics(), "tenant-a");
    assert_non_null(r);
    assert_int_equal(r->throttled, 1);
    assert_int_equal(r->waiting, 3);
    gp_pool_release(held);
    join_all(th, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(o.status[i], GP_OK);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

/* A waiter still gives up at its own timeout, counted against its key. */
static void test_timeouts_honoured(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_pool_t *p = make_pool(&cfg, 1, 1, 50, 0);
    gp_conn_t *held = lease(p, "tenant-a");
    gp_conn_t *c = NULL;
    int64_t t0 = gp__now_ns();
    assert_int_equal(gp_pool_acquire(p, "tenant-b", 100, &c, NULL), GP_ERR_TIMEOUT);
    int64_t took = (gp__now_ns() - t0) / 1000000;
    assert_true(took >= 99 && took < 600);
    assert_int_equal(gp_pool_metrics(p, metrics()), GP_OK);
    const gp_pool_key_metrics_t *r = key_row(metrics(), "tenant-b");
    assert_non_null(r);
    assert_int_equal(r->timeouts, 1);
    assert_int_equal(r->waiting, 0);
    gp_pool_release(held);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

/* Thousands of keys: at most GP_POOL_TOP_KEYS rows plus "other", every
 * acquire counted once across them, the heaviest key first. */
static void test_key_metrics_cardinality(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_pool_t *p = make_pool(&cfg, 2, 1, 50, 0);
    gp_conn_t *heavy = lease(p, "tenant-heavy");
    hold_for(100);
    gp_pool_release(heavy);
    enum { NKEYS = 5000 };
    for (int i = 0; i < NKEYS; i++) {
        char key[40];
        snprintf(key, sizeof key, "tenant-%05d", i);
        gp_pool_release(lease(p, key));
    }
    assert_int_equal(gp_pool_metrics(p, metrics()), GP_OK);
    const gp_pool_metrics_t *m = metrics();
    assert_int_equal(m->n_keys, GP_POOL_TOP_KEYS + 1);
    assert_true(m->keys[m->n_keys - 1].other);
    /* The heavy key keeps its own row, and the rows are ranked by recent
     * hold. Which row is first is not asserted: on a loaded machine (the
     * sanitizer stage runs many tests at once on two cores) a preempted
     * thread can hold one of the 5000 short leases longer than 100 ms. */
    const gp_pool_key_metrics_t *hv = key_row(m, "tenant-heavy");
    assert_non_null(hv);
    assert_false(hv->other);
    assert_true(hv->recent_hold_us >= 100000);
    assert_true(m->keys[0].recent_hold_us >= hv->recent_hold_us);
    uint64_t acquires = 0;
    for (int i = 0; i < m->n_keys; i++) {
        acquires += m->keys[i].acquires;
        if (i > 0 && !m->keys[i].other)
            assert_true(m->keys[i].recent_hold_us <= m->keys[i - 1].recent_hold_us);
        assert_true(m->keys[i].hold.count == m->keys[i].acquires - (uint64_t)m->keys[i].held);
    }
    assert_int_equal(acquires, NKEYS + 1);
    assert_int_equal(m->acquires, NKEYS + 1);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

/* Many threads of many keys at once (for TSan): everything comes back,
 * the gauges end at zero. */
typedef struct churn {
    gp_pool_t *pool;
    int id;
    _Atomic int *errors;
} churn_t;

static void *churn_main(void *arg)
{
    churn_t *c = arg;
    char key[32];
    snprintf(key, sizeof key, "tenant-%d", c->id % 5);
    for (int i = 0; i < 200; i++) {
        gp_conn_t *conn = NULL;
        gp_status_t st = gp_pool_acquire(c->pool, key, 5000, &conn, NULL);
        if (st == GP_OK)
            gp_pool_release(conn);
        else if (st != GP_ERR_BUSY)
            atomic_fetch_add(c->errors, 1);
    }
    return NULL;
}

static void test_concurrent_keys(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_pool_t *p = make_pool(&cfg, 3, 1, 50, 0);
    _Atomic int errors = 0;
    churn_t args[12];
    pthread_t th[12];
    for (int i = 0; i < 12; i++) {
        args[i] = (churn_t){p, i, &errors};
        assert_int_equal(pthread_create(&th[i], NULL, churn_main, &args[i]), 0);
    }
    join_all(th, 12);
    assert_int_equal(atomic_load(&errors), 0);
    assert_int_equal(gp_pool_metrics(p, metrics()), GP_OK);
    for (int i = 0; i < metrics()->n_keys; i++) {
        assert_int_equal(metrics()->keys[i].held, 0);
        assert_int_equal(metrics()->keys[i].waiting, 0);
    }
    assert_int_equal(metrics()->waiting, 0);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

/* A leak report names the key and, through GP_POOL_ACQUIRE, the call site. */
static void test_leak_report_names_key_and_site(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_test_config(&cfg);
    cfg.db.pool_min = 0;
    cfg.db.pool_max = 1;
    cfg.db.leak_threshold_ms = 30;
    gp_test_capture_logs(GP_LOG_WARN);
    gp_test_clear_logs();
    gp_pool_t *p = NULL;
    assert_int_equal(gp_pool_create(&cfg, &p, NULL), GP_OK);
    gp_conn_t *c = NULL;
    int line = __LINE__ + 1;
    assert_int_equal(GP_POOL_ACQUIRE(p, "tenant-leaky", -1, &c, NULL), GP_OK);
    char want[256];
    snprintf(want, sizeof want, "possible leak: connection leased by 'tenant-leaky' at %s:%d held for", __FILE__, line);
    int64_t by = gp__now_ns() + 5000 * 1000000LL;
    while (!gp_test_logs_contain(want) && gp__now_ns() < by)
        gp_test_pause_ms(1);
    assert_true(gp_test_logs_contain(want));
    gp_pool_release(c);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
    gp_config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fair_handoff_order),
        cmocka_unit_test(test_fifo_when_fairness_is_off),
        cmocka_unit_test(test_share_cap),
        cmocka_unit_test(test_work_conserving),
        cmocka_unit_test(test_max_waiting_busy),
        cmocka_unit_test(test_timeouts_honoured),
        cmocka_unit_test(test_key_metrics_cardinality),
        cmocka_unit_test(test_concurrent_keys),
        cmocka_unit_test(test_leak_report_names_key_and_site),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
