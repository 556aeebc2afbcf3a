/* test_query_deadline.c — DATABASE_QUERY_TIMEOUT holds when the server
 * cannot answer at all: the backend serving the pool's one connection is
 * frozen (SIGSTOP; only that backend, so other tests are not disturbed),
 * and every kind of call returns GP_ERR_TIMEOUT within the deadline plus a
 * little scheduling slack, the connection is closed (never handed out
 * again), and the pool serves the next call on a new one. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "gp_scratch.h"
#include "gp_test.h"
#include "growplate/tenant.h"
#include "internal.h"

#define DEADLINE_MS 300
#define SLACK_MS 250

static gp_config_t cfg;
static gp_pool_t *pool;
static const char tenant[] = "00000000-0000-4000-8000-0000000000d1";

static gp_scratch_t scratch;

static int setup(void **state)
{
    (void)state;
    /* A database of its own, migrated (the tenant calls need the schema). */
    gp_scratch_create(&scratch, "deadline");
    gp_scratch_migrate(&scratch);
    gp_scratch_config(&scratch, &cfg);
    cfg.db.pool_min = 1;
    cfg.db.pool_max = 1;
    cfg.db.query_timeout_ms = DEADLINE_MS;
    gp_error_t e;
    if (gp_pool_create(&cfg, &pool, &e) != GP_OK) {
        fprintf(stderr, "pool: %s\n", e.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_pool_close(pool, 5000);
    gp_config_release(&cfg);
    gp_scratch_drop(&scratch);
    return 0;
}

/* One tenant call that must work. */
static int ok_call(void)
{
    gp_result_t *r = NULL;
    gp_error_t e;
    gp_status_t st = gp_tenant_query(pool, tenant, "SELECT 1", 0, NULL, &r, &e);
    if (st != GP_OK)
        fprintf(stderr, "call failed: %s\n", e.message);
    gp_result_free(r);
    return st == GP_OK;
}

/* The pid of the backend the pool's connection talks to (a lease of its
 * own, released at once). */
static int backend_pid(void)
{
    gp_conn_t *c;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(pool, "pid", 5000, &c, &e), GP_OK);
    gp_result_t *r = NULL;
    assert_int_equal(gp_query(c, "SELECT pg_backend_pid()::int8", 0, NULL, &r, &e), GP_OK);
    int64_t pid = 0;
    assert_int_equal(gp_get_int64(r, 0, 0, &pid), GP_OK);
    gp_result_free(r);
    gp_pool_release(c);
    return (int)pid;
}

typedef enum { VIA_POOL_QUERY, VIA_TENANT_QUERY, VIA_LEASE_QUERY, VIA_TX_COMMIT, VIA_TX_OWN, VIA_COUNT } via_t;
static const char *const via_name[] = {"gp_pool_query", "gp_tenant_query", "gp_query on a lease",
                                       "gp_tx_commit", "a transaction's own query_timeout_ms"};
#define TX_OWN_MS 150

/* Freeze the backend, make the call, thaw it: the call must fail with
 * GP_ERR_TIMEOUT, on time. */
static void frozen_call(via_t via)
{
    /* A first call warms the connection (and the tenant secret) up. */
    assert_int_equal(ok_call(), 1);
    int pid = backend_pid();
    gp_conn_t *c = NULL;
    gp_error_t e;
    int deadline_ms = via == VIA_TX_OWN ? TX_OWN_MS : DEADLINE_MS;
    if (via == VIA_LEASE_QUERY || via == VIA_TX_COMMIT || via == VIA_TX_OWN) {
        assert_int_equal(gp_pool_acquire(pool, "frozen", 5000, &c, &e), GP_OK);
        if (via == VIA_TX_COMMIT || via == VIA_TX_OWN) {
            gp_tx_opts_t o = {.query_timeout_ms = via == VIA_TX_OWN ? TX_OWN_MS : 0};
            assert_int_equal(gp_tx_begin(c, &o, &e), GP_OK);
            assert_int_equal(gp_exec(c, "SELECT 1", 0, NULL, NULL, &e), GP_OK);
        }
    }
    assert_int_equal(kill(pid, SIGSTOP), 0);
    int64_t t0 = gp__now_ns();
    gp_result_t *r = NULL;
    gp_status_t st;
    switch (via) {
    case VIA_POOL_QUERY:
        st = gp_pool_query(pool, "SELECT 1", 0, NULL, &r, &e);
        break;
    case VIA_TENANT_QUERY:
        st = gp_tenant_query(pool, tenant, "SELECT 1", 0, NULL, &r, &e);
        break;
    case VIA_LEASE_QUERY:
    case VIA_TX_OWN:
        st = gp_query(c, "SELECT 1", 0, NULL, &r, &e);
        break;
    default:
        st = gp_tx_commit(c, &e);
        break;
    }
    int64_t took_ms = (gp__now_ns() - t0) / 1000000;
    int thawed = kill(pid, SIGCONT); /* before any assertion: never leave a backend frozen */
    if (c) {
        /* The lease is unusable now, and says why. */
        gp_result_t *r2 = NULL;
        gp_error_t e2;
        assert_int_equal(gp_query(c, "SELECT 1", 0, NULL, &r2, &e2), GP_ERR_TIMEOUT);
        assert_non_null(strstr(e2.message, "acquire another"));
        int64_t t1 = gp__now_ns();
        gp_pool_release(c); /* closes it: no clean-up against the frozen server */
        assert_true((gp__now_ns() - t1) / 1000000 < SLACK_MS);
    }
    assert_int_equal(thawed, 0);
    gp_result_free(r);
    fprintf(stderr, "%s: %s after %lld ms\n", via_name[via], gp_strerror(st), (long long)took_ms);
    /* A COMMIT without an answer may have committed: that is its own
     * status; so may a one-shot (its own transaction, committed at its
     * end). A statement on a lease was not committed by its call. */
    bool commits = via == VIA_TX_COMMIT || via == VIA_POOL_QUERY || via == VIA_TENANT_QUERY;
    assert_int_equal(st, commits ? GP_ERR_COMMIT_UNKNOWN : GP_ERR_TIMEOUT);
    assert_non_null(strstr(e.message, via == VIA_TX_OWN ? "query_timeout_ms (150 ms)" : "DATABASE_QUERY_TIMEOUT"));
    assert_int_equal(e.retriable, !commits);
    assert_true(took_ms >= deadline_ms - 5);
    assert_true(took_ms <= deadline_ms + SLACK_MS);
    /* The next call gets a new connection, on another backend. */
    assert_int_equal(ok_call(), 1);
    assert_true(backend_pid() != pid);
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(pool, &m), GP_OK);
    assert_true(m.total <= 1);
    assert_true(m.closed[GP_CLOSE_BROKEN] >= 1);
}

static void test_pool_query(void **state) { (void)state; frozen_call(VIA_POOL_QUERY); }
static void test_tenant_query(void **state) { (void)state; frozen_call(VIA_TENANT_QUERY); }
static void test_lease_query(void **state) { (void)state; frozen_call(VIA_LEASE_QUERY); }
static void test_tx_commit(void **state) { (void)state; frozen_call(VIA_TX_COMMIT); }
static void test_tx_own_deadline(void **state) { (void)state; frozen_call(VIA_TX_OWN); }

/* Off by default: a config without it has no deadline, and the range is
 * checked. */
static void test_config(void **state)
{
    (void)state;
    gp_config_t c;
    gp_config_init(&c);
    assert_int_equal(c.db.query_timeout_ms, 0);
    c.db.query_timeout_ms = -1;
    char err[GP_ERRBUF_SIZE] = "";
    assert_int_equal(gp_config_validate(&c, err, sizeof err), GP_ERR_CONFIG);
    assert_non_null(strstr(err, "DATABASE_QUERY_TIMEOUT"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_query),
        cmocka_unit_test(test_tenant_query),
        cmocka_unit_test(test_lease_query),
        cmocka_unit_test(test_tx_commit),
        cmocka_unit_test(test_tx_own_deadline),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
