/* test_pool.c — the connection pool against the real private server:
 * sizing and pre-fill, exhaustion and acquire timeout, FIFO fairness, idle
 * reaping and refill, max lifetime, validation of terminated connections,
 * failures at connect time, shutdown, hygiene on release, leak reports and
 * metrics. Waits poll a condition with a bounded deadline. */
/* ctest-labels: concurrency */
/* ctest-timeout: 180 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gp_test.h"
#include "internal.h"
#include "pool_internal.h"

/* A configuration from the environment with short timeouts so the suite
 * stays fast. */
static void pool_cfg(gp_config_t *cfg, int min, int max)
{
    gp_test_config(cfg);
    cfg->db.pool_min = min;
    cfg->db.pool_max = max;
    cfg->db.acquire_timeout_ms = 3000;
    cfg->db.connect_timeout_ms = 2000;
}

static gp_pool_t *make_pool(gp_config_t *cfg)
{
    gp_pool_t *p = NULL;
    gp_error_t e;
    gp_status_t st = gp_pool_create(cfg, &p, &e);
    if (st != GP_OK)
        fprintf(stderr, "gp_pool_create: %s\n", e.message);
    assert_int_equal(st, GP_OK);
    assert_non_null(p);
    return p;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Poll the pool's metrics until `cond` holds, for at most `ms`. */
#define WAIT_UNTIL(pool, m, cond, ms)                                                   \
    do {                                                                                \
        int64_t until_ = gp__now_ns() + (int64_t)(ms) * 1000000LL;                     \
        for (;;) {                                                                      \
            assert_int_equal(gp_pool_metrics((pool), &(m)), GP_OK);                    \
            if (cond)                                                                   \
                break;                                                                  \
            if (gp__now_ns() > until_) {                                                \
                fprintf(stderr, "timed out waiting for: %s\n", #cond);                  \
                fail();                                                                 \
            }                                                                           \
            pause_ms(1);                                                                \
        }                                                                               \
    } while (0)

static gp_conn_t *lease(gp_pool_t *p, const char *label)
{
    gp_conn_t *c = NULL;
    gp_error_t e;
    gp_status_t st = gp_pool_acquire(p, label, -1, &c, &e);
    if (st != GP_OK)
        fprintf(stderr, "acquire: %s: %s\n", gp_strerror(st), e.message);
    assert_int_equal(st, GP_OK);
    assert_non_null(c);
    return c;
}

/* Run one statement; return its first value (static buffer) or NULL. */
static const char *q1(gp_conn_t *c, const char *sql)
{
    static _Thread_local char buf[256];
    PGresult *r = PQexec(gp_conn_pgconn(c), sql);
    const char *out = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        snprintf(buf, sizeof buf, "%s", PQgetisnull(r, 0, 0) ? "(null)" : PQgetvalue(r, 0, 0));
        out = buf;
    } else if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        out = "";
    }
    PQclear(r);
    return out;
}

static int backend_pid(gp_conn_t *c) { return PQbackendPID(gp_conn_pgconn(c)); }

/* ---- basics ---------------------------------------------------------------- */

static void test_prefill_acquire_release(void **state)
{
    (void)state;
    gp_config_t cfg;
    pool_cfg(&cfg, 2, 4);
    gp_pool_t *p = make_pool(&cfg);
    gp_pool_metrics_t m;
    WAIT_UNTIL(p, m, m.idle == 2, 5000); /* pre-filled in the background */
    assert_int_equal(m.total, 2);
    assert_int_equal(m.min, 2);
    assert_int_equal(m.max, 4);
    gp_conn_t *c = lease(p, "basics");
    assert_string_equal(q1(c, "SELECT 1"), "1");
    assert_string_equal(q1(c, "SELECT current_user"), "growplate_app");
    gp_pool_release(c);
    gp_conn_t *again = lease(p, NULL);
    assert_ptr_equal(again, c); /* LIFO: the warmest connection comes back */
    gp_pool_release(again);
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    assert_int_equal(m.acquires, 2);
    assert_int_equal(m.leased, 0);
    assert_int_equal(m.idle, 2);
    assert_int_equal(m.opened, 2);
    assert_int_equal(m.hold.count, 2);
    assert_int_equal(m.wait.count, 2);
    assert_true(m.connect.count == 2 && m.connect.p50_us > 0);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    gp_error_t e;
    gp_conn_t *c = (gp_conn_t *)&e;
    assert_int_equal(gp_pool_acquire(NULL, NULL, 10, &c, &e), GP_ERR_INVALID);
    assert_null(c);
    assert_int_equal(e.klass, GP_ECLASS_CLIENT);
    gp_pool_release(NULL);
    assert_int_equal(gp_pool_close(NULL, 0), GP_OK);
    assert_null(gp_conn_pgconn(NULL));
    assert_string_equal(gp_close_reason_name(GP_CLOSE_LIFETIME), "lifetime");

    gp_config_t cfg;
    pool_cfg(&cfg, 5, 2);
    gp_pool_t *p = (gp_pool_t *)&e;
    assert_int_equal(gp_pool_create(&cfg, &p, &e), GP_ERR_CONFIG);
    assert_null(p);
    assert_non_null(strstr(e.message, "DATABASE_POOL_MIN"));
    gp_config_release(&cfg);
}

/* ---- exhaustion and fairness ------------------------------------------------- */

static void test_exhaustion_and_timeout(void **state)
{
    (void)state;
    gp_config_t cfg;
    pool_cfg(&cfg, 0, 2);
    gp_pool_t *p = make_pool(&cfg);
    gp_conn_t *a = lease(p, "a"), *b = lease(p, "b");
    gp_conn_t *c = NULL;
    gp_error_t e;
    int64_t t0 = gp__now_ns();
    assert_int_equal(gp_pool_acquire(p, "c", 150, &c, &e), GP_ERR_TIMEOUT);
    int64_t waited_ms = (gp__now_ns() - t0) / 1000000;
    assert_null(c);
    assert_true(waited_ms >= 149 && waited_ms < 2000);
    assert_int_equal(e.status, GP_ERR_TIMEOUT);
    assert_int_equal(e.klass, GP_ECLASS_TIMEOUT);
    assert_true(e.retriable);
    assert_non_null(strstr(e.message, "150 ms"));
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    assert_int_equal(m.acquire_timeouts, 1);
    assert_int_equal(m.waiting, 0);
    assert_int_equal(m.total, 2); /* never above max */
    assert_int_equal(m.leased, 2);
    gp_pool_release(a);
    c = lease(p, "c");
    gp_pool_release(b);
    gp_pool_release(c);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

#define NWAITERS 6

typedef struct fair {
    gp_pool_t *pool;
    int id;
    _Atomic int *next_slot;
    int order[NWAITERS];
    gp_status_t status[NWAITERS];
} fair_t;

typedef struct fair_arg {
    fair_t *f;
    int id;
} fair_arg_t;

static void *fair_thread(void *arg)
{
    fair_arg_t *a = arg;
    gp_conn_t *c = NULL;
    a->f->status[a->id] = gp_pool_acquire(a->f->pool, "fair", 5000, &c, NULL);
    if (c) {
        a->f->order[atomic_fetch_add(a->f->next_slot, 1)] = a->id;
        gp_pool_release(c);
    }
    return NULL;
}

static void test_fifo_fairness(void **state)
{
    (void)state;
    gp_config_t cfg;
    pool_cfg(&cfg, 1, 1);
    gp_pool_t *p = make_pool(&cfg);
    gp_conn_t *held = lease(p, "holder");
    _Atomic int slot = 0;
    fair_t f = {.pool = p, .next_slot = &slot};
    fair_arg_t args[NWAITERS];
    pthread_t th[NWAITERS];
    gp_pool_metrics_t m;
    for (int i = 0; i < NWAITERS; i++) {
        args[i] = (fair_arg_t){&f, i};
        assert_int_equal(pthread_create(&th[i], NULL, fair_thread, &args[i]), 0);
        WAIT_UNTIL(p, m, m.waiting == i + 1, 5000); /* queued in this order */
    }
    gp_pool_release(held);
    for (int i = 0; i < NWAITERS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < NWAITERS; i++) {
        assert_int_equal(f.status[i], GP_OK);
        assert_int_equal(f.order[i], i); /* served first come, first served */
    }
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    assert_int_equal(m.opened, 1); /* one connection handed from waiter to waiter */
    assert_int_equal(m.acquires, NWAITERS + 1);
    assert_true(m.wait.max_us > 0);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

/* ---- lifecycle --------------------------------------------------------------------- */

static void test_idle_reaping_and_refill(void **state)
{
    (void)state;
    gp_config_t cfg;
    pool_cfg(&cfg, 1, 4);
    cfg.db.idle_timeout_ms = 100;
    gp_pool_t *p = make_pool(&cfg);
    gp_conn_t *c[4];
    for (int i = 0; i < 4; i++)
        c[i] = lease(p, "burst");
    for (int i = 0; i < 4; i++)
        gp_pool_release(c[i]);
    gp_pool_metrics_t m;
    WAIT_UNTIL(p, m, m.total == 1 && m.closed[GP_CLOSE_IDLE] == 3, 5000); /* down to min, not below */
    assert_int_equal(m.idle, 1);

    /* A broken connection is replaced to keep min. */
    gp_conn_t *x = lease(p, "breaker");
    x->discard = true;
    uint64_t opened = m.opened;
    gp_pool_release(x);
    WAIT_UNTIL(p, m, m.idle == 1 && m.opened == opened + 1, 5000);
    assert_int_equal(m.closed[GP_CLOSE_BROKEN], 1);
    assert_int_equal(m.total, 1);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

static void test_max_lifetime(void **state)
{
    (void)state;
    gp_config_t cfg;
    pool_cfg(&cfg, 2, 2);
    cfg.db.max_lifetime_ms = 150;
    gp_pool_t *p = make_pool(&cfg);
    gp_pool_metrics_t m;
    WAIT_UNTIL(p, m, m.idle == 2, 5000);
    /* Idle connections are retired and replaced, repeatedly. */
    WAIT_UNTIL(p, m, m.closed[GP_CLOSE_LIFETIME] >= 4 && m.opened >= 6, 10000);
    /* A leased connection past its lifetime is closed when it comes back. */
    gp_conn_t *c = lease(p, "old");
    int64_t until = gp__now_ns() + 400 * 1000000LL; /* past the jittered lifetime (<= 165 ms) */
    while (gp__now_ns() < until)
        pause_ms(5);
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    uint64_t before = m.closed[GP_CLOSE_LIFETIME];
    gp_pool_release(c);
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    assert_true(m.closed[GP_CLOSE_LIFETIME] >= before + 1);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

static PGconn *admin(void)
{
    const char *ci = getenv("GP_PG_ADMIN_CONNINFO");
    assert_non_null(ci);
    PGconn *a = PQconnectdb(ci);
    assert_int_equal(PQstatus(a), CONNECTION_OK);
    return a;
}

static bool backend_exists(PGconn *a, int pid)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", pid);
    PGresult *r = PQexec(a, sql);
    bool exists = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "0") != 0;
    PQclear(r);
    return exists;
}

static void test_terminated_idle_connection_is_replaced(void **state)
{
    (void)state;
    gp_config_t cfg;
    pool_cfg(&cfg, 1, 1);
    cfg.db.validate_after_ms = 0; /* validate every hand-out of an idle connection */
    gp_pool_t *p = make_pool(&cfg);
    gp_conn_t *c = lease(p, "victim");
    int pid = backend_pid(c);
    gp_pool_release(c);

    PGconn *a = admin();
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", pid);
    PGresult *r = PQexec(a, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    int64_t until = gp__now_ns() + 5000 * 1000000LL;
    while (backend_exists(a, pid)) {
        assert_true(gp__now_ns() < until);
        pause_ms(1);
    }
    PQfinish(a);

    gp_error_t e;
    c = NULL;
    assert_int_equal(gp_pool_acquire(p, "after", -1, &c, &e), GP_OK); /* the caller sees no error */
    assert_string_equal(q1(c, "SELECT 1"), "1");
    assert_int_not_equal(backend_pid(c), pid);
    gp_pool_release(c);
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    /* found by validation at hand-out, or by the maintenance thread first */
    assert_int_equal(m.closed[GP_CLOSE_VALIDATION] + m.closed[GP_CLOSE_BROKEN], 1);
    assert_int_equal(m.acquire_errors + m.acquire_timeouts, 0);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

/* Idle connections the server dropped leave the metrics within about a
 * second (the maintenance thread's look at idle sockets), without any
 * lease, and the pool refills. */
static void test_dropped_idle_connections_leave_metrics(void **state)
{
    (void)state;
    gp_config_t cfg;
    pool_cfg(&cfg, 2, 2);
    gp_pool_t *p = make_pool(&cfg);
    gp_conn_t *c1 = lease(p, "a"), *c2 = lease(p, "b");
    int pids[2] = {backend_pid(c1), backend_pid(c2)};
    gp_pool_release(c1);
    gp_pool_release(c2);
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    uint64_t acquires = m.acquires, broken = m.closed[GP_CLOSE_BROKEN];
    assert_int_equal(m.idle, 2);

    PGconn *a = admin();
    for (int i = 0; i < 2; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", pids[i]);
        PQclear(PQexec(a, sql));
    }
    PQfinish(a);
    int64_t t0 = gp__now_ns(), until = t0 + 5000 * 1000000LL;
    do {
        assert_true(gp__now_ns() < until);
        pause_ms(10);
        assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    } while (m.closed[GP_CLOSE_BROKEN] < broken + 2);
    int64_t noticed_ms = (gp__now_ns() - t0) / 1000000;
    fprintf(stderr, "both dropped connections left the metrics after %lld ms\n", (long long)noticed_ms);
    assert_true(noticed_ms < 2500); /* IDLE_CHECK_NS (1 s) plus slack */
    assert_int_equal(m.acquires, acquires); /* nobody leased anything */
    do { /* and the pool refills to its minimum */
        assert_true(gp__now_ns() < until);
        pause_ms(10);
        assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    } while (m.idle < 2);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

/* ---- failures at connect time ----------------------------------------------------- */

static void test_server_down_at_creation(void **state)
{
    (void)state;
    gp_config_t cfg;
    pool_cfg(&cfg, 1, 2);
    cfg.db.url = "postgresql://growplate_app:Secr3tPw@127.0.0.1:1/growplate_dev";
    gp_pool_t *p = make_pool(&cfg); /* creation never needs the server */
    gp_conn_t *c = NULL;
    gp_error_t e;
    int64_t t0 = gp__now_ns();
    assert_int_equal(gp_pool_acquire(p, "down", 2000, &c, &e), GP_ERR_CONNECT);
    assert_true(gp__now_ns() - t0 < 1500 * 1000000LL); /* told at the next attempt, not at the timeout */
    assert_null(c);
    assert_int_equal(e.klass, GP_ECLASS_CONNECTION);
    assert_true(e.retriable);
    assert_non_null(strstr(e.message, "cannot connect to postgresql://growplate_app:********@127.0.0.1:1"));
    assert_null(strstr(e.message, "Secr3tPw"));

    /* An acquire shorter than the backoff times out, naming the last failure. */
    bool seen_timeout = false;
    for (int i = 0; i < 200 && !seen_timeout; i++) {
        gp_status_t st = gp_pool_acquire(p, "down", 2, &c, &e);
        assert_true(st == GP_ERR_TIMEOUT || st == GP_ERR_CONNECT);
        assert_true(e.retriable);
        assert_null(strstr(e.message, "Secr3tPw"));
        if (st == GP_ERR_TIMEOUT) {
            seen_timeout = true;
            assert_non_null(strstr(e.message, "last connection error: cannot connect to"));
        }
    }
    assert_true(seen_timeout);
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    assert_true(m.open_failures >= 1);
    assert_int_equal(m.opened, 0);
    assert_int_equal(m.total, 0);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

/* The private server's URL with the user, password or database replaced. */
static void url_with(char *out, size_t len, const char *userpass, const char *db)
{
    const char *url = getenv("DATABASE_URL");
    const char *at = strchr(url, '@');
    const char *slash = strrchr(url, '/');
    assert_true(at && slash && slash > at);
    snprintf(out, len, "postgresql://%s@%.*s/%s", userpass, (int)(slash - at - 1), at + 1, db);
}

static void test_bad_password_and_unknown_database(void **state)
{
    (void)state;
    gp_config_t cfg;
    char url[512];
    pool_cfg(&cfg, 0, 2);
    url_with(url, sizeof url, "growplate_app:Wr0ngPassw0rd", "growplate_dev");
    cfg.db.url = url;
    gp_pool_t *p = make_pool(&cfg);
    gp_conn_t *c = NULL;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(p, "auth", 2000, &c, &e), GP_ERR_AUTH);
    assert_int_equal(e.klass, GP_ECLASS_AUTH);
    assert_false(e.retriable);
    assert_string_equal(e.sqlstate, "28P01");
    assert_non_null(strstr(e.message, "password authentication failed"));
    assert_null(strstr(e.message, "Wr0ngPassw0rd"));
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);

    url_with(url, sizeof url, "growplate_app:growplate_app_dev", "no_such_db");
    cfg.db.url = url;
    cfg.db.password = NULL;
    p = make_pool(&cfg);
    assert_int_equal(gp_pool_acquire(p, "db", 2000, &c, &e), GP_ERR_CONNECT);
    assert_string_equal(e.sqlstate, "3D000");
    assert_false(e.retriable);
    assert_non_null(strstr(e.message, "no_such_db"));
    assert_null(strstr(e.message, "growplate_app_dev"));
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

/* ---- shutdown ---------------------------------------------------------------------- */

typedef struct closer {
    gp_pool_t *pool;
    gp_status_t status;
    gp_error_t err;
} closer_t;

static void *blocked_acquirer(void *arg)
{
    closer_t *w = arg;
    gp_conn_t *c = NULL;
    w->status = gp_pool_acquire(w->pool, "late", 10000, &c, &w->err);
    gp_pool_release(c);
    return NULL;
}

static void test_shutdown_while_leased(void **state)
{
    (void)state;
    gp_config_t cfg;
    pool_cfg(&cfg, 0, 2);
    gp_pool_t *p = make_pool(&cfg);
    gp_conn_t *a = lease(p, "a"), *b = lease(p, "b");
    assert_string_equal(q1(a, "BEGIN"), "");
    closer_t w = {.pool = p};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, blocked_acquirer, &w), 0);
    gp_pool_metrics_t m;
    WAIT_UNTIL(p, m, m.waiting == 1, 5000);
    int64_t t0 = gp__now_ns();
    assert_int_equal(gp_pool_close(p, 100), GP_ERR_TIMEOUT); /* two leases still out */
    int64_t took_ms = (gp__now_ns() - t0) / 1000000;
    assert_true(took_ms >= 99 && took_ms < 3000); /* bounded */
    pthread_join(th, NULL);
    assert_int_equal(w.status, GP_ERR_CLOSED); /* the waiter was woken with an error */
    assert_int_equal(w.err.status, GP_ERR_CLOSED);
    /* Releases after close are safe; the last one frees the pool (ASan checks). */
    gp_pool_release(a);
    gp_pool_release(b);
    gp_config_release(&cfg);
}

static void *late_releaser(void *arg)
{
    gp_pool_release(arg);
    return NULL;
}

static void test_close_waits_for_leases(void **state)
{
    (void)state;
    gp_config_t cfg;
    pool_cfg(&cfg, 1, 2);
    gp_pool_t *p = make_pool(&cfg);
    gp_conn_t *a = lease(p, "a");
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, late_releaser, a), 0);
    assert_int_equal(gp_pool_close(p, 10000), GP_OK); /* the release arrives before or during close */
    pthread_join(th, NULL);
    gp_config_release(&cfg);
}

/* ---- hygiene on release ------------------------------------------------------------ */

static void test_rollback_on_release(void **state)
{
    (void)state;
    gp_config_t cfg;
    pool_cfg(&cfg, 1, 1);
    gp_pool_t *p = make_pool(&cfg);

    gp_conn_t *c = lease(p, "tx");
    int pid = backend_pid(c);
    assert_string_equal(q1(c, "BEGIN"), "");
    assert_string_equal(q1(c, "SELECT set_config('app.tenant_id', '42', true)"), "42");
    assert_int_equal(PQtransactionStatus(gp_conn_pgconn(c)), PQTRANS_INTRANS);
    gp_pool_release(c);
    c = lease(p, "after-tx");
    assert_int_equal(backend_pid(c), pid); /* rolled back, not replaced */
    assert_int_equal(PQtransactionStatus(gp_conn_pgconn(c)), PQTRANS_IDLE);
    const char *v = q1(c, "SELECT coalesce(current_setting('app.tenant_id', true), '')");
    assert_non_null(v);
    assert_string_equal(v, "");

    assert_string_equal(q1(c, "BEGIN"), "");
    assert_null(q1(c, "SELECT 1/0"));
    assert_int_equal(PQtransactionStatus(gp_conn_pgconn(c)), PQTRANS_INERROR);
    gp_pool_release(c);
    c = lease(p, "after-failed-tx");
    assert_int_equal(backend_pid(c), pid);
    assert_int_equal(PQtransactionStatus(gp_conn_pgconn(c)), PQTRANS_IDLE);
    assert_string_equal(q1(c, "SELECT 1"), "1");

    /* A command still running cannot be cleaned cheaply: replaced. */
    assert_int_equal(PQsendQuery(gp_conn_pgconn(c), "SELECT pg_sleep(0.01)"), 1);
    gp_pool_release(c);
    c = lease(p, "after-active");
    assert_int_not_equal(backend_pid(c), pid);
    assert_string_equal(q1(c, "SELECT 1"), "1");
    gp_pool_release(c);

    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    assert_int_equal(m.closed[GP_CLOSE_RESET], 1);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

static void test_raw_libpq_resets_fully(void **state)
{
    (void)state;
    gp_config_t cfg;
    pool_cfg(&cfg, 1, 1);
    cfg.db.statement_timeout_ms = 4321;
    gp_pool_t *p = make_pool(&cfg);
    gp_conn_t *c = lease(p, "tenant-7");
    int pid = backend_pid(c);
    assert_string_equal(q1(c, "SHOW statement_timeout"), "4321ms"); /* from the configuration */
    assert_string_equal(q1(c, "SELECT set_config('app.tenant_id', '7', false)"), "7");
    assert_string_equal(q1(c, "SET statement_timeout = '1s'"), "");
    gp_pool_release(c);
    c = lease(p, "tenant-8");
    assert_int_equal(backend_pid(c), pid);
    assert_string_equal(q1(c, "SELECT coalesce(current_setting('app.tenant_id', true), '')"), ""); /* gone */
    assert_string_equal(q1(c, "SHOW statement_timeout"), "4321ms"); /* back to the configured value */
    gp_pool_release(c);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

static _Atomic int freed_states;

static void free_state(void *s)
{
    free(s);
    atomic_fetch_add(&freed_states, 1);
}

static void test_query_state_freed_on_close(void **state)
{
    (void)state;
    gp_config_t cfg;
    pool_cfg(&cfg, 0, 2);
    gp_pool_t *p = make_pool(&cfg);
    atomic_store(&freed_states, 0);
    gp_conn_t *a = lease(p, "a"), *b = lease(p, "b");
    a->query_state = malloc(16);
    a->query_state_free = free_state;
    b->query_state = malloc(16);
    b->query_state_free = free_state;
    gp_pool_release(a);
    assert_int_equal(atomic_load(&freed_states), 0); /* kept while pooled */
    gp_conn_t *again = lease(p, "a2");
    assert_ptr_equal(again, a);
    assert_non_null(again->query_state); /* the query layer's cache survives reuse */
    again->discard = true;
    gp_pool_release(again);
    assert_int_equal(atomic_load(&freed_states), 1); /* freed when discarded */
    gp_pool_release(b);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    assert_int_equal(atomic_load(&freed_states), 2); /* and when the pool closes */
    gp_config_release(&cfg);
}

/* ---- leak detection ------------------------------------------------------------------ */

static void test_leak_detection(void **state)
{
    (void)state;
    gp_config_t cfg;
    pool_cfg(&cfg, 0, 2);
    cfg.db.leak_threshold_ms = 50;
    gp_test_capture_logs(GP_LOG_WARN);
    gp_test_clear_logs();
    gp_pool_t *p = make_pool(&cfg);
    gp_conn_t *c = lease(p, "tenant-42/report");
    gp_pool_metrics_t m;
    WAIT_UNTIL(p, m, m.leaks_reported == 1, 5000);
    /* The maintenance thread logs the report just after counting it, while
     * this thread reads: poll the captured text under its lock. */
    const char *line = "[pool] warn: possible leak: connection leased by 'tenant-42/report' held for";
    int64_t logged_by = gp__now_ns() + 5000 * 1000000LL;
    while (!gp_test_logs_contain(line) && gp__now_ns() < logged_by)
        pause_ms(1);
    assert_true(gp_test_logs_contain(line));
    /* Once per lease: after more than another threshold, still one report. */
    int64_t until = gp__now_ns() + 200 * 1000000LL;
    while (gp__now_ns() < until)
        pause_ms(5);
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    assert_int_equal(m.leaks_reported, 1);
    gp_pool_release(c);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
    gp_config_release(&cfg);
}

/* ---- structured logs --------------------------------------------------------------- */

typedef struct rec_log {
    pthread_mutex_t mu;
    int n;
    gp_log_record_t recs[16];
    char msgs[16][256], sqlstates[16][8], components[16][16];
} rec_log_t;

static void record_handler(void *ud, const gp_log_record_t *r)
{
    rec_log_t *l = ud;
    pthread_mutex_lock(&l->mu);
    if (l->n < 16) {
        int i = l->n++;
        l->recs[i] = *r;
        snprintf(l->msgs[i], sizeof l->msgs[i], "%s", r->message);
        snprintf(l->sqlstates[i], sizeof l->sqlstates[i], "%s", r->sqlstate);
        snprintf(l->components[i], sizeof l->components[i], "%s", r->component);
        assert_non_null(r->tenant);
    }
    pthread_mutex_unlock(&l->mu);
}

/* A record handler gets the fields with the line: a failed connect is
 * component pool, class connection, status GP_ERR_CONNECT, no secret; a
 * leak report carries how long the lease was held. */
static void test_structured_log_records(void **state)
{
    (void)state;
    static rec_log_t log = {.mu = PTHREAD_MUTEX_INITIALIZER};
    gp_log_set_record_handler(record_handler, &log, GP_LOG_WARN);
    gp_config_t cfg;
    pool_cfg(&cfg, 1, 1);
    cfg.db.url = "postgresql://growplate_app:Secr3tPw@127.0.0.1:1/growplate_dev";
    gp_pool_t *p = make_pool(&cfg);
    gp_conn_t *c = NULL;
    assert_int_equal(gp_pool_acquire(p, "down", 2000, &c, NULL), GP_ERR_CONNECT);
    /* The maintenance thread logs just after it records the failure. */
    int64_t by = gp__now_ns() + 5000 * 1000000LL;
    for (;;) {
        pthread_mutex_lock(&log.mu);
        int n = log.n;
        pthread_mutex_unlock(&log.mu);
        if (n > 0 || gp__now_ns() > by)
            break;
        pause_ms(1);
    }
    gp_pool_close(p, 1000);
    pthread_mutex_lock(&log.mu);
    assert_true(log.n >= 1);
    assert_int_equal(log.recs[0].level, GP_LOG_WARN);
    assert_string_equal(log.components[0], "pool");
    assert_int_equal(log.recs[0].klass, GP_ECLASS_CONNECTION);
    assert_int_equal(log.recs[0].status, GP_ERR_CONNECT);
    assert_int_equal(log.recs[0].duration_ns, -1);
    assert_non_null(strstr(log.msgs[0], "cannot connect to postgresql://growplate_app:********@127.0.0.1:1"));
    assert_null(strstr(log.msgs[0], "Secr3tPw"));
    log.n = 0;
    pthread_mutex_unlock(&log.mu);
    gp_config_release(&cfg);

    /* A leak report: the duration the lease was held. */
    pool_cfg(&cfg, 0, 1);
    cfg.db.leak_threshold_ms = 30;
    p = make_pool(&cfg);
    c = lease(p, "tenant-42/report");
    gp_pool_metrics_t m;
    WAIT_UNTIL(p, m, m.leaks_reported == 1, 5000);
    by = gp__now_ns() + 5000 * 1000000LL;
    for (;;) {
        pthread_mutex_lock(&log.mu);
        int n = log.n;
        pthread_mutex_unlock(&log.mu);
        if (n > 0 || gp__now_ns() > by)
            break;
        pause_ms(1);
    }
    gp_pool_release(c);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
    pthread_mutex_lock(&log.mu);
    assert_true(log.n >= 1);
    assert_non_null(strstr(log.msgs[0], "possible leak"));
    assert_true(log.recs[0].duration_ns >= 30 * 1000000LL);
    assert_int_equal(log.recs[0].klass, GP_ECLASS_NONE);
    assert_string_equal(log.sqlstates[0], "");
    pthread_mutex_unlock(&log.mu);
    gp_config_release(&cfg);
}

/* ---- concurrency -------------------------------------------------------------------- */

typedef struct churn {
    gp_pool_t *pool;
    _Atomic uint64_t ok, errors;
    int64_t until;
} churn_t;

static void *churn_thread(void *arg)
{
    churn_t *ch = arg;
    while (gp__now_ns() < ch->until) {
        gp_conn_t *c = NULL;
        if (gp_pool_acquire(ch->pool, "churn", 5000, &c, NULL) != GP_OK) {
            atomic_fetch_add(&ch->errors, 1);
            continue;
        }
        const char *v = q1(c, "SELECT 1");
        atomic_fetch_add(v && strcmp(v, "1") == 0 ? &ch->ok : &ch->errors, 1);
        gp_pool_release(c);
    }
    return NULL;
}

static void test_many_threads_few_connections(void **state)
{
    (void)state;
    gp_config_t cfg;
    pool_cfg(&cfg, 2, 3);
    cfg.db.idle_timeout_ms = 20; /* reaping and refilling race with the load */
    gp_pool_t *p = make_pool(&cfg);
    churn_t ch = {.pool = p, .until = gp__now_ns() + 600 * 1000000LL};
    pthread_t th[12];
    for (int i = 0; i < 12; i++)
        assert_int_equal(pthread_create(&th[i], NULL, churn_thread, &ch), 0);
    for (int i = 0; i < 12; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&ch.errors), 0);
    assert_true(atomic_load(&ch.ok) > 12);
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    assert_true(m.total <= 3);
    assert_int_equal(m.leased, 0);
    assert_int_equal(m.waiting, 0);
    assert_int_equal(m.acquires, atomic_load(&ch.ok));
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefill_acquire_release),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_exhaustion_and_timeout),
        cmocka_unit_test(test_fifo_fairness),
        cmocka_unit_test(test_idle_reaping_and_refill),
        cmocka_unit_test(test_max_lifetime),
        cmocka_unit_test(test_terminated_idle_connection_is_replaced),
        cmocka_unit_test(test_dropped_idle_connections_leave_metrics),
        cmocka_unit_test(test_server_down_at_creation),
        cmocka_unit_test(test_bad_password_and_unknown_database),
        cmocka_unit_test(test_shutdown_while_leased),
        cmocka_unit_test(test_close_waits_for_leases),
        cmocka_unit_test(test_rollback_on_release),
        cmocka_unit_test(test_raw_libpq_resets_fully),
        cmocka_unit_test(test_query_state_freed_on_close),
        cmocka_unit_test(test_leak_detection),
        cmocka_unit_test(test_structured_log_records),
        cmocka_unit_test(test_many_threads_few_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
