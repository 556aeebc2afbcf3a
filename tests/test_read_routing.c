/* test_read_routing.c — reads routed to a streaming standby (DATABASE_READ_URL,
 * DATABASE_READ_MAX_LAG), on a primary and a standby of this test's own
 * (scripts/services with a private GP_SERVICES_KEY, as test_failover: the
 * shared servers are never touched; everything is stopped and removed in
 * teardown).
 *  - Reads are served by the standby (pg_is_in_recovery() in the result,
 *    the pool's reads[GP_READ_REPLICA]); writes stay on the primary; without
 *    a read pool reads are the primary's, counted as primary_none.
 *  - Read-your-writes: a read given the WAL position of the caller's commit
 *    (gp_pool_wal_position) sees it, over hundreds of commit-then-read
 *    cycles (stale reads counted: 0), synchronous and asynchronous commits,
 *    and from 4 threads at once.
 *  - Replay paused on the standby: once its lag exceeds the bound the reads
 *    go to the primary (GP_READ_PRIMARY_LAG); reads that must see a write
 *    the standby has not replayed go to the primary (GP_READ_PRIMARY_BEHIND)
 *    and see it, within the caller's timeout whatever wait they ask for;
 *    resumed, the reads return to the standby.
 *  - A write through gp_pool_read_query fails (25006) and is not taken for
 *    a wrong server.
 *  - Tenant scoping on the standby: gp_tenant_read_query and read-only
 *    gp_tenant_run return the tenant's rows only, also when tenants share
 *    one standby connection and a tenant's read failed half-way; an invalid
 *    `after` is GP_ERR_INVALID.
 *  - A busy read pool is not a down standby; a standby whose backend
 *    stopped answering (SIGSTOP) does not hold reads.
 *  - The standby stopped: reads succeed on the primary (GP_READ_PRIMARY_DOWN)
 *    within the acquire timeout, tenant reads too; started again, reads
 *    return to it.
 *  - The standby promoted while the primary runs (its WAL ahead): no read
 *    with a position is served stale by it, and plain reads leave it.
 * Every wait is a bounded poll of the condition (a short pause between
 * checks), never a sleep standing in for it.
 * ctest-labels: concurrency
 * ctest-timeout: 180 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "gp_test.h"

static char key[64], primary_url[512], owner_url[512], replica_url[600], replica_admin[512], admin[512],
    tenant_key[160];
static char tenant_a[37], tenant_b[37];
/* The pools' acquire and connect timeouts: generous, for a loaded machine
 * (two cores shared); the bounds below are stated in them. */
#define ACQUIRE_MS 6000
#define CONNECT_MS 5000
static int pg_port;
#define A_ROWS 2
#define B_ROWS 3

static int services(const char *args) { return gp_test_key_services(key, args); }

static bool env_value(const char *name, char *out, size_t len) { return gp_test_key_env(key, name, out, len); }

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void pq_sql(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
    assert_true(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(c);
}

static gp_pool_t *pool_sized(int read_max_lag_ms, bool with_read_pool, int max)
{
    gp_config_t cfg;
    gp_test_config(&cfg);
    cfg.db.url = primary_url;
    cfg.db.migration_url = NULL;
    cfg.db.read_url = with_read_pool ? replica_url : NULL;
    cfg.db.read_max_lag_ms = read_max_lag_ms;
    cfg.db.tenant_key = tenant_key;
    cfg.db.tenant_key_previous = NULL;
    cfg.db.tenant_key_file = NULL;
    cfg.db.pooler = NULL;
    cfg.db.pool_min = 0;
    cfg.db.pool_max = max;
    cfg.db.acquire_timeout_ms = ACQUIRE_MS;
    cfg.db.connect_timeout_ms = CONNECT_MS;
    gp_pool_t *p = gp_test_pool(&cfg);
    gp_config_release(&cfg);
    return p;
}

static gp_pool_t *pool_with(int read_max_lag_ms, bool with_read_pool) { return pool_sized(read_max_lag_ms, with_read_pool, 3); }


static uint64_t served(gp_pool_t *p, gp_read_served_t why)
{
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    return m.reads[why];
}

static void wait_replayed(gp_pool_t *p)
{
    char pos[GP_WAL_POSITION_LEN];
    gp_error_t e;
    assert_int_equal(gp_pool_wal_position(p, pos, &e), GP_OK);
    PGconn *c = PQconnectdb(replica_admin);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    char q[128];
    snprintf(q, sizeof q, "SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn", pos);
    bool done = false;
    for (double t0 = now_ms(); !done && now_ms() - t0 < 10000;) {
        PGresult *r = PQexec(c, q);
        done = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
        if (!done)
            gp_test_pause_ms(2);
    }
    PQfinish(c);
    assert_true(done);
}

static int setup(void **state)
{
    (void)state;
    snprintf(key, sizeof key, "readroute-%d", (int)getpid());
    if (services("start postgres >/dev/null") != 0 || services("start replica >/dev/null") != 0) {
        services("clean >/dev/null 2>&1"); /* nothing left running */
        return -1;
    }
    char r[512];
    if (!env_value("DATABASE_URL", primary_url, sizeof primary_url) ||
        !env_value("DATABASE_MIGRATION_URL", owner_url, sizeof owner_url) ||
        !env_value("DATABASE_REPLICA_URL", r, sizeof r) || !env_value("GP_PG_ADMIN_CONNINFO", admin, sizeof admin) ||
        !env_value("GP_PG_REPLICA_ADMIN_CONNINFO", replica_admin, sizeof replica_admin) ||
        !env_value("DATABASE_TENANT_KEY", tenant_key, sizeof tenant_key)) {
        services("clean >/dev/null 2>&1");
        return -1;
    }
    snprintf(replica_url, sizeof replica_url, "%s?target_session_attrs=standby", r);
    const char *colon = strrchr(primary_url, ':');
    pg_port = colon ? atoi(colon + 1) : 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (!getenv("GP_TEST_KEEP_SERVICES"))
        services("clean >/dev/null 2>&1");
    return 0;
}

/* The schema (migrated on the primary, replicated), a probe table, two
 * tenants with rows; the standby has replayed all of it. */
static void test_fixtures(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_test_config(&cfg);
    cfg.db.url = primary_url;
    cfg.db.migration_url = owner_url;
    cfg.db.tenant_key = tenant_key;
    cfg.db.tenant_key_previous = NULL;
    cfg.db.tenant_key_file = NULL;
    gp_error_t e;
    gp_status_t st = gp_migrate(&cfg, NULL, NULL, &e);
    if (st != GP_OK)
        fprintf(stderr, "migrate: %s\n", e.message);
    assert_int_equal(st, GP_OK);
    gp_config_release(&cfg);
    pq_sql(owner_url, "CREATE TABLE public.rr_probe (id int PRIMARY KEY, v bigint NOT NULL);"
                      "INSERT INTO public.rr_probe VALUES (1, 0), (2, 0);"
                      "GRANT SELECT, INSERT, UPDATE ON public.rr_probe TO growplate_app");
    gp_pool_t *p = pool_with(0, false);
    char *ids[2] = {tenant_a, tenant_b};
    const char *slugs[2] = {"rr-a", "rr-b"};
    for (int t = 0; t < 2; t++) {
        gp_result_t *r = NULL;
        assert_int_equal(gp_pool_query(p, "SELECT create_tenant($1, $1)::text", GP_ARGS(gp_text(slugs[t])), &r, &e), GP_OK);
        const char *id;
        assert_int_equal(gp_get_text(r, 0, 0, &id, NULL), GP_OK);
        snprintf(ids[t], 37, "%s", id);
        gp_result_free(r);
        for (int i = 0; i < (t ? B_ROWS : A_ROWS); i++) {
            char name[32];
            snprintf(name, sizeof name, "%c-row-%d", t ? 'B' : 'A', i);
            assert_int_equal(gp_tenant_exec(p, ids[t], "INSERT INTO menu_categories (tenant_id, name) VALUES "
                                                       "(public.growplate_tenant(), $1)",
                                            GP_ARGS(gp_text(name)), NULL, &e),
                             GP_OK);
        }
    }
    wait_replayed(p);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
}

/* ---- reads on the standby ---------------------------------------------------------- */

static void test_reads_served_by_the_standby(void **state)
{
    (void)state;
    gp_pool_t *p = pool_with(0, true);
    assert_non_null(gp_pool_read_pool(p));
    gp_error_t e;
    for (int i = 0; i < 5; i++) {
        uint64_t before = served(p, GP_READ_REPLICA);
        gp_result_t *r = NULL;
        assert_int_equal(gp_pool_read_query(p, NULL, "SELECT pg_is_in_recovery(), count(*) FROM public.rr_probe", 0, NULL,
                                            &r, &e),
                         GP_OK);
        bool standby = false;
        assert_int_equal(gp_get_bool(r, 0, 0, &standby), GP_OK);
        assert_true(standby);
        assert_int_equal(gp_test_int(r, 0, 1), 2);
        gp_result_free(r);
        assert_int_equal(served(p, GP_READ_REPLICA), before + 1);
    }
    int64_t n = -1;
    assert_int_equal(gp_pool_read_exec(p, NULL, "SELECT * FROM public.rr_probe", 0, NULL, &n, &e), GP_OK);
    /* a read lease: a standby's, its transactions READ ONLY */
    gp_conn_t *c = NULL;
    assert_int_equal(gp_pool_acquire_read(p, NULL, "reader", -1, &c, &e), GP_OK);
    assert_true(gp_conn_is_replica(c));
    assert_int_equal(gp_tx_begin(c, NULL, &e), GP_OK);
    gp_result_t *r = NULL;
    assert_int_equal(gp_query(c, "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')", 0, NULL, &r, &e),
                     GP_OK);
    bool standby = false;
    const char *ro;
    gp_get_bool(r, 0, 0, &standby);
    gp_get_text(r, 0, 1, &ro, NULL);
    assert_true(standby);
    assert_string_equal(ro, "on");
    gp_result_free(r);
    assert_int_equal(gp_tx_commit(c, &e), GP_OK);
    gp_pool_release(c);
    /* everything else stays on the primary */
    assert_int_equal(gp_pool_query(p, "SELECT pg_is_in_recovery()", 0, NULL, &r, &e), GP_OK);
    gp_get_bool(r, 0, 0, &standby);
    assert_false(standby);
    gp_result_free(r);
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    fprintf(stderr, "reads: replica %llu, primary (none %llu, down %llu, lag %llu, behind %llu); lag %lld ms\n",
            (unsigned long long)m.reads[GP_READ_REPLICA], (unsigned long long)m.reads[GP_READ_PRIMARY_NONE],
            (unsigned long long)m.reads[GP_READ_PRIMARY_DOWN], (unsigned long long)m.reads[GP_READ_PRIMARY_LAG],
            (unsigned long long)m.reads[GP_READ_PRIMARY_BEHIND], (long long)m.read_lag_ms);
    assert_int_equal(m.reads[GP_READ_PRIMARY_DOWN] + m.reads[GP_READ_PRIMARY_LAG] + m.reads[GP_READ_PRIMARY_BEHIND], 0);
    assert_true(m.read_lag_ms >= 0); /* measured */
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);

    /* Without a read pool: the primary, counted as such. */
    p = pool_with(1000, false);
    assert_null(gp_pool_read_pool(p));
    assert_int_equal(gp_pool_read_query(p, NULL, "SELECT pg_is_in_recovery()", 0, NULL, &r, &e), GP_OK);
    gp_get_bool(r, 0, 0, &standby);
    assert_false(standby);
    gp_result_free(r);
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    assert_int_equal(m.read_lag_ms, -1);
    assert_int_equal(m.reads[GP_READ_PRIMARY_NONE], 1);
    assert_int_equal(m.reads[GP_READ_REPLICA], 0);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
}

/* ---- read-your-writes ------------------------------------------------------------ */

typedef struct write_ctx {
    int64_t v;
    bool synchronous;
} write_ctx_t;

static gp_status_t tx_fn_write(gp_conn_t *conn, void *ud, gp_error_t *err)
{
    const write_ctx_t *w = ud;
    /* the development server commits asynchronously (synchronous_commit =
     * off): a synchronous commit is this transaction's choice */
    gp_status_t st = gp_exec(conn, w->synchronous ? "SET LOCAL synchronous_commit = on" : "SET LOCAL synchronous_commit = off",
                             0, NULL, NULL, err);
    if (st == GP_OK)
        st = gp_exec(conn, "UPDATE public.rr_probe SET v = $1 WHERE id = 1", GP_ARGS(gp_int64(w->v)), NULL, err);
    return st;
}

static void write_v(gp_pool_t *p, int64_t v, bool synchronous)
{
    gp_conn_t *c = NULL;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(p, "writer", -1, &c, &e), GP_OK);
    write_ctx_t w = {v, synchronous};
    gp_status_t st = gp_tx_run(c, NULL, tx_fn_write, &w, NULL, &e);
    if (st != GP_OK)
        fprintf(stderr, "write: %s\n", e.message);
    assert_int_equal(st, GP_OK);
    gp_pool_release(c);
}

/* One read of v: the value and whether the standby served it. */
static void read_v(gp_pool_t *p, const gp_read_opts_t *o, int64_t *v, bool *standby)
{
    gp_result_t *r = NULL;
    gp_error_t e;
    gp_status_t st = gp_pool_read_query(p, o, "SELECT v, pg_is_in_recovery() FROM public.rr_probe WHERE id = 1", 0, NULL,
                                        &r, &e);
    if (st != GP_OK)
        fprintf(stderr, "read: %s\n", e.message);
    assert_int_equal(st, GP_OK);
    *v = gp_test_int(r, 0, 0);
    assert_int_equal(gp_get_bool(r, 0, 1, standby), GP_OK);
    gp_result_free(r);
}

#define RYW_SYNC 200
#define RYW_ASYNC 20

static void test_read_your_writes(void **state)
{
    (void)state;
    gp_pool_t *p = pool_with(0, true);
    gp_error_t e;
    int64_t v = 0;
    bool standby = false;
    /* The control: without the position, reads right after a commit may be stale. */
    int control_stale = 0;
    for (int i = 0; i < 50; i++) {
        write_v(p, 100000 + i, false);
        read_v(p, NULL, &v, &standby);
        control_stale += v != 100000 + i;
    }
    int stale = 0, on_standby = 0;
    double waited = 0, worst = 0;
    for (int i = 0; i < RYW_SYNC + RYW_ASYNC; i++) {
        bool sync = i < RYW_SYNC;
        write_v(p, i + 1, sync);
        char pos[GP_WAL_POSITION_LEN];
        assert_int_equal(gp_pool_wal_position(p, pos, &e), GP_OK);
        gp_read_opts_t o = {.after = pos, .wait_ms = 1000};
        double t0 = now_ms();
        read_v(p, &o, &v, &standby);
        double t = now_ms() - t0;
        if (v != i + 1) {
            stale++;
            fprintf(stderr, "STALE: cycle %d wrote %d, read %lld (on the %s)\n", i, i + 1, (long long)v,
                    standby ? "standby" : "primary");
        }
        on_standby += standby;
        waited += t;
        if (t > worst)
            worst = t;
        if (i == RYW_SYNC - 1 || i == RYW_SYNC + RYW_ASYNC - 1) {
            fprintf(stderr, "read-your-writes, %s commits: %d cycles, %d stale, %d served by the standby, "
                            "%.2f ms per read on average (worst %.1f ms)\n",
                    sync ? "synchronous" : "asynchronous", sync ? RYW_SYNC : RYW_ASYNC, stale, on_standby,
                    waited / (sync ? RYW_SYNC : RYW_ASYNC), worst);
            assert_int_equal(stale, 0);
            stale = on_standby = 0;
            waited = worst = 0;
        }
    }
    fprintf(stderr, "the control, no position given: %d of 50 reads right after an asynchronous commit were stale\n",
            control_stale);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
}

/* Many readers and writers at once: each thread writes its own row and
 * reads it back with the position, while the lag is measured and the
 * counters move under all of them. */
#define RYW_THREADS 4
#define RYW_EACH 50

typedef struct ryw_worker {
    gp_pool_t *pool;
    int id, stale, failed, on_standby;
    char last[200];
} ryw_worker_t;

static gp_status_t tx_fn_write_row(gp_conn_t *conn, void *ud, gp_error_t *err)
{
    const int64_t *kv = ud;
    gp_status_t st = gp_exec(conn, "SET LOCAL synchronous_commit = on", 0, NULL, NULL, err);
    if (st == GP_OK)
        st = gp_exec(conn, "UPDATE public.rr_probe SET v = $2 WHERE id = $1", GP_ARGS(gp_int32((int32_t)kv[0]), gp_int64(kv[1])),
                     NULL, err);
    return st;
}

static void *ryw_main(void *arg)
{
    ryw_worker_t *w = arg;
    for (int k = 1; k <= RYW_EACH; k++) {
        gp_error_t e;
        gp_conn_t *c = NULL;
        int64_t kv[2] = {10 + w->id, k};
        char pos[GP_WAL_POSITION_LEN];
        if (gp_pool_acquire(w->pool, "ryw", -1, &c, &e) != GP_OK) {
            w->failed++;
            snprintf(w->last, sizeof w->last, "acquire: %s", e.message);
            continue;
        }
        gp_status_t st = gp_tx_run(c, NULL, tx_fn_write_row, kv, NULL, &e);
        gp_pool_release(c);
        if (st == GP_OK)
            st = gp_pool_wal_position(w->pool, pos, &e);
        gp_result_t *r = NULL;
        if (st == GP_OK) {
            gp_read_opts_t o = {.after = pos, .wait_ms = 1000};
            st = gp_pool_read_query(w->pool, &o, "SELECT v, pg_is_in_recovery() FROM public.rr_probe WHERE id = $1",
                                    GP_ARGS(gp_int32((int32_t)kv[0])), &r, &e);
        }
        if (st != GP_OK) {
            w->failed++;
            snprintf(w->last, sizeof w->last, "%s", e.message);
            continue;
        }
        bool standby = false;
        gp_get_bool(r, 0, 1, &standby);
        w->on_standby += standby;
        w->stale += gp_test_int(r, 0, 0) != k;
        gp_result_free(r);
    }
    return NULL;
}

static void test_concurrent_read_your_writes(void **state)
{
    (void)state;
    gp_pool_t *p = pool_with(0, true);
    gp_error_t e;
    assert_int_equal(gp_pool_exec(p, "INSERT INTO public.rr_probe SELECT 10 + g, 0 FROM generate_series(0, $1::int4 - 1) g "
                                     "ON CONFLICT (id) DO NOTHING", GP_ARGS(gp_int32(RYW_THREADS)), NULL, &e),
                     GP_OK);
    ryw_worker_t w[RYW_THREADS];
    pthread_t th[RYW_THREADS];
    double t0 = now_ms();
    for (int i = 0; i < RYW_THREADS; i++) {
        w[i] = (ryw_worker_t){.pool = p, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, ryw_main, &w[i]), 0);
    }
    int stale = 0, failed = 0, on_standby = 0;
    for (int i = 0; i < RYW_THREADS; i++) {
        pthread_join(th[i], NULL);
        stale += w[i].stale;
        failed += w[i].failed;
        on_standby += w[i].on_standby;
        if (w[i].failed)
            fprintf(stderr, "reader %d: %d failed, last: %s\n", i, w[i].failed, w[i].last);
    }
    fprintf(stderr, "%d threads, %d commit-then-read cycles each in %.0f ms: %d stale, %d served by the standby, "
                    "%d failed\n", RYW_THREADS, RYW_EACH, now_ms() - t0, stale, on_standby, failed);
    assert_int_equal(failed, 0);
    assert_int_equal(stale, 0);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
}

/* ---- replay paused: the lag bound, and reads that must see a write ---------------- */

static void test_lagging_standby(void **state)
{
    (void)state;
    gp_pool_t *lagged = pool_with(200, true), *unbounded = pool_with(0, true);
    int64_t v = 0;
    bool standby = false;
    /* (a measurement taken while WAL without a commit is in flight reads
     * as the time since the last commit: poll for the first standby read) */
    for (double t0 = now_ms(); !standby && now_ms() - t0 < 10000;) {
        read_v(lagged, NULL, &v, &standby);
        if (!standby)
            gp_test_pause_ms(20);
    }
    assert_true(standby);
    read_v(unbounded, NULL, &v, &standby);
    assert_true(standby);
    pq_sql(replica_admin, "SELECT pg_wal_replay_pause()");
    double t0 = now_ms();
    /* Writes keep arriving at the standby, unreplayed: the lag grows past
     * 200 ms, and the next measurement (at most a second apart) sends the
     * reads to the primary. */
    int64_t w = 5000;
    uint64_t lag_before = served(lagged, GP_READ_PRIMARY_LAG);
    bool moved = false;
    while (!moved && now_ms() - t0 < 15000) {
        write_v(lagged, ++w, true);
        read_v(lagged, NULL, &v, &standby);
        moved = !standby;
        if (!moved)
            gp_test_pause_ms(20);
    }
    double took = now_ms() - t0;
    assert_true(moved);
    assert_int_equal(v, w); /* the primary: current */
    assert_true(served(lagged, GP_READ_PRIMARY_LAG) > lag_before);
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(lagged, &m), GP_OK);
    fprintf(stderr, "replay paused: reads moved to the primary after %.0f ms (measured lag %lld ms, bound 200 ms)\n", took,
            (long long)m.read_lag_ms);
    assert_true(m.read_lag_ms > 200);
    for (int i = 0; i < 5; i++) { /* and stay there while it lags */
        uint64_t before = served(lagged, GP_READ_PRIMARY_LAG);
        read_v(lagged, NULL, &v, &standby);
        assert_false(standby);
        assert_int_equal(served(lagged, GP_READ_PRIMARY_LAG), before + 1);
    }
    /* Without a bound the standby still serves reads, but not those that
     * must see a write it has not replayed: those go to the primary after
     * wait_ms, and see it. */
    read_v(unbounded, NULL, &v, &standby);
    assert_true(standby);
    assert_true(v < w); /* stale, as asked for */
    gp_error_t e;
    for (int i = 0; i < 3; i++) {
        write_v(unbounded, ++w, true);
        char pos[GP_WAL_POSITION_LEN];
        assert_int_equal(gp_pool_wal_position(unbounded, pos, &e), GP_OK);
        uint64_t before = served(unbounded, GP_READ_PRIMARY_BEHIND);
        gp_read_opts_t o = {.after = pos, .wait_ms = 50};
        double t1 = now_ms();
        read_v(unbounded, &o, &v, &standby);
        double t = now_ms() - t1;
        assert_false(standby);
        assert_int_equal(v, w);
        assert_int_equal(served(unbounded, GP_READ_PRIMARY_BEHIND), before + 1);
        assert_true(t >= 45 && t < 2000);
        if (i == 0)
            fprintf(stderr, "a read after an unreplayed commit: served by the primary after %.0f ms (wait_ms 50)\n", t);
    }
    /* A wait longer than the caller's acquire timeout is cut to half of it:
     * the wait counts in the timeout, and the primary still serves. */
    {
        write_v(unbounded, ++w, true);
        char pos[GP_WAL_POSITION_LEN];
        assert_int_equal(gp_pool_wal_position(unbounded, pos, &e), GP_OK);
        gp_read_opts_t o = {.after = pos, .wait_ms = 20000};
        double t1 = now_ms();
        gp_result_t *r = NULL;
        gp_status_t st = gp_pool_read_query(unbounded, &o, "SELECT v FROM public.rr_probe WHERE id = 1", 0, NULL, &r, &e);
        double t = now_ms() - t1;
        fprintf(stderr, "a read asking to wait 20 s, acquire timeout %d ms: status %d after %.0f ms\n", ACQUIRE_MS, st, t);
        assert_int_equal(st, GP_OK);
        assert_int_equal(gp_test_int(r, 0, 0), w);
        gp_result_free(r);
        assert_true(t < ACQUIRE_MS);
    }
    pq_sql(replica_admin, "SELECT pg_wal_replay_resume()");
    t0 = now_ms();
    bool back = false;
    while (!back && now_ms() - t0 < 15000) {
        read_v(lagged, NULL, &v, &standby);
        back = standby;
        if (!back)
            gp_test_pause_ms(20);
    }
    assert_true(back);
    fprintf(stderr, "replay resumed: reads back on the standby after %.0f ms\n", now_ms() - t0);
    assert_int_equal(v, w); /* and it caught up */
    assert_int_equal(gp_pool_close(lagged, 1000), GP_OK);
    assert_int_equal(gp_pool_close(unbounded, 1000), GP_OK);
}

/* ---- a write through a read ---------------------------------------------------------- */

static void test_write_through_a_read_fails(void **state)
{
    (void)state;
    for (int with = 1; with >= 0; with--) { /* on the standby; on the primary (no read pool) */
        gp_pool_t *p = pool_with(1000, with);
        gp_error_t e;
        gp_result_t *r = NULL;
        for (int i = 0; i < 3; i++) {
            gp_status_t st = gp_pool_read_query(p, NULL, "UPDATE public.rr_probe SET v = v + 1 WHERE id = 2 RETURNING v", 0,
                                                NULL, &r, &e);
            assert_int_equal(st, GP_ERR_SERVER);
            assert_string_equal(e.sqlstate, "25006");
            assert_int_not_equal(e.klass, GP_ECLASS_WRONG_SERVER);
            assert_null(r);
        }
        /* nothing was taken for a wrong server: no connection dropped, and reads go on */
        gp_pool_metrics_t m;
        assert_int_equal(gp_pool_metrics(with ? gp_pool_read_pool(p) : p, &m), GP_OK);
        assert_int_equal(m.closed[GP_CLOSE_BROKEN], 0);
        assert_int_equal(gp_pool_read_query(p, NULL, "SELECT v FROM public.rr_probe WHERE id = 2", 0, NULL, &r, &e), GP_OK);
        assert_int_equal(gp_test_int(r, 0, 0), 0);
        gp_result_free(r);
        /* and writes on the primary still work */
        assert_int_equal(gp_pool_exec(p, "UPDATE public.rr_probe SET v = v WHERE id = 2", 0, NULL, NULL, &e), GP_OK);
        assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    }
}

/* ---- tenants on the standby ------------------------------------------------------- */

typedef struct tenant_read {
    const char *tenant;
    bool standby;
    int64_t rows, foreign;
} tenant_read_t;

static gp_status_t tenant_fn_read(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    tenant_read_t *t = ud;
    gp_result_t *r = NULL;
    gp_status_t st = gp_tenant_tx_query(tx, "SELECT pg_is_in_recovery(), count(*), count(*) FILTER (WHERE tenant_id <> "
                                            "$1::uuid) FROM menu_categories", GP_ARGS(gp_text(t->tenant)), &r, err);
    if (st == GP_OK) {
        gp_get_bool(r, 0, 0, &t->standby);
        t->rows = gp_test_int(r, 0, 1);
        t->foreign = gp_test_int(r, 0, 2);
    }
    gp_result_free(r);
    return st;
}

static void tenant_read(gp_pool_t *p, const char *tenant, const gp_read_opts_t *o, tenant_read_t *out)
{
    gp_result_t *r = NULL;
    gp_error_t e;
    gp_status_t st = gp_tenant_read_query(p, tenant, o, "SELECT pg_is_in_recovery(), count(*), count(*) FILTER (WHERE "
                                                        "tenant_id <> $1::uuid) FROM menu_categories",
                                          GP_ARGS(gp_text(tenant)), &r, &e);
    if (st != GP_OK)
        fprintf(stderr, "tenant read: %s\n", e.message);
    assert_int_equal(st, GP_OK);
    out->tenant = tenant;
    gp_get_bool(r, 0, 0, &out->standby);
    out->rows = gp_test_int(r, 0, 1);
    out->foreign = gp_test_int(r, 0, 2);
    gp_result_free(r);
}

static void test_tenant_scoping_on_the_standby(void **state)
{
    (void)state;
    gp_pool_t *p = pool_with(0, true);
    gp_error_t e;
    tenant_read_t t;
    /* B's rows are there (the control), and A never sees them: one-shots
     * and read-only transactions, both on the standby. */
    tenant_read(p, tenant_b, NULL, &t);
    assert_true(t.standby);
    assert_int_equal(t.rows, B_ROWS);
    assert_int_equal(t.foreign, 0);
    for (int i = 0; i < 5; i++) {
        tenant_read(p, tenant_a, NULL, &t);
        assert_true(t.standby);
        assert_int_equal(t.rows, A_ROWS);
        assert_int_equal(t.foreign, 0);
        tenant_read_t u = {tenant_a, false, -1, -1};
        assert_int_equal(gp_tenant_run(p, tenant_a, &(gp_tx_opts_t){.read_only = true}, tenant_fn_read, &u, NULL, &e), GP_OK);
        assert_true(u.standby);
        assert_int_equal(u.rows, A_ROWS);
        assert_int_equal(u.foreign, 0);
    }
    /* Naming B's rows from A: nothing. */
    gp_result_t *r = NULL;
    assert_int_equal(gp_tenant_read_query(p, tenant_a, NULL, "SELECT count(*) FROM menu_categories WHERE tenant_id = $1::uuid "
                                                             "OR name LIKE 'B-%'", GP_ARGS(gp_text(tenant_b)), &r, &e),
                     GP_OK);
    assert_int_equal(gp_test_int(r, 0, 0), 0);
    gp_result_free(r);
    /* A read-only tenant transaction cannot write, on the standby either. */
    assert_int_equal(gp_tenant_read_query(p, tenant_a, NULL, "INSERT INTO menu_categories (tenant_id, name) VALUES "
                                                             "(public.growplate_tenant(), 'A-ro') RETURNING 1", 0, NULL, &r, &e),
                     GP_ERR_SERVER);
    assert_string_equal(e.sqlstate, "25006");
    /* A new tenant's first read on the standby (its context published
     * through the primary and waited for), and its own write read back
     * with the position. */
    assert_int_equal(gp_pool_query(p, "SELECT create_tenant('rr-c', 'rr-c')::text", 0, NULL, &r, &e), GP_OK);
    char tenant_c[37];
    const char *id;
    gp_get_text(r, 0, 0, &id, NULL);
    snprintf(tenant_c, sizeof tenant_c, "%s", id);
    gp_result_free(r);
    assert_int_equal(gp_tenant_exec(p, tenant_c, "INSERT INTO menu_categories (tenant_id, name) VALUES "
                                                 "(public.growplate_tenant(), 'C-row')", 0, NULL, NULL, &e),
                     GP_OK);
    char pos[GP_WAL_POSITION_LEN];
    assert_int_equal(gp_pool_wal_position(p, pos, &e), GP_OK);
    gp_read_opts_t o = {.after = pos, .wait_ms = 2000};
    tenant_read(p, tenant_c, &o, &t);
    assert_true(t.standby);
    assert_int_equal(t.rows, 1);
    assert_int_equal(t.foreign, 0);
    tenant_read(p, tenant_a, &o, &t);
    assert_int_equal(t.rows, A_ROWS);
    assert_int_equal(t.foreign, 0);
    /* An `after` that is not a WAL position. */
    static const char *const bad[] = {"", "nonsense", "0/1'; DROP TABLE x", "123456789/0", "/1", "1/", "1/2/3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gp_read_opts_t b = {.after = bad[i]};
        r = NULL;
        assert_int_equal(gp_tenant_read_query(p, tenant_a, &b, "SELECT 1", 0, NULL, &r, &e), GP_ERR_INVALID);
        assert_null(r);
        assert_int_equal(gp_pool_read_query(p, &b, "SELECT 1", 0, NULL, &r, &e), GP_ERR_INVALID);
        assert_non_null(strstr(e.message, "WAL position"));
        gp_conn_t *c = NULL;
        assert_int_equal(gp_pool_acquire_read(p, &b, "bad", -1, &c, &e), GP_ERR_INVALID);
        assert_null(c);
    }
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
}

/* One standby connection for every tenant (a read pool of one): tenant B's
 * context, made session-level or left by a read that failed half-way,
 * never reaches the next read on that connection. */
static gp_status_t tenant_fn_token_then_fail(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    (void)ud;
    gp_status_t st = gp_tenant_tx_exec(tx, "SELECT set_config('growplate.tenant_token', current_setting('growplate.tenant_token'), "
                                           "false)", 0, NULL, NULL, err);
    return st == GP_OK ? gp_tenant_tx_exec(tx, "SELECT 1 / (SELECT 0) FROM menu_categories", 0, NULL, NULL, err) : st;
}

static void expect_no_context(gp_pool_t *p, int pid, const char *after)
{
    gp_result_t *r = NULL;
    gp_error_t e;
    assert_int_equal(gp_pool_read_query(p, NULL, "SELECT pg_backend_pid(), pg_is_in_recovery(), "
                                                 "coalesce(current_setting('growplate.tenant_token', true), ''), "
                                                 "(SELECT count(*) FROM menu_categories)", 0, NULL, &r, &e),
                     GP_OK);
    bool standby = false;
    const char *token;
    gp_get_bool(r, 0, 1, &standby);
    gp_get_text(r, 0, 2, &token, NULL);
    if (gp_test_int(r, 0, 0) != pid || token[0] || gp_test_int(r, 0, 3) != 0)
        fprintf(stderr, "after %s: backend %lld (the tenant's %d), token '%s', %lld rows visible without a tenant\n", after,
                (long long)gp_test_int(r, 0, 0), pid, token, (long long)gp_test_int(r, 0, 3));
    assert_true(standby);
    assert_int_equal(gp_test_int(r, 0, 0), pid);
    assert_string_equal(token, "");
    assert_int_equal(gp_test_int(r, 0, 3), 0);
    gp_result_free(r);
}

static void test_tenant_context_on_a_shared_standby_connection(void **state)
{
    (void)state;
    gp_pool_t *p = pool_sized(0, true, 1);
    gp_error_t e;
    for (int round = 0; round < 3; round++) {
        gp_result_t *r = NULL;
        assert_int_equal(gp_tenant_read_query(p, tenant_b, NULL, "SELECT pg_backend_pid(), set_config('growplate.tenant_token', "
                                                                 "current_setting('growplate.tenant_token'), false)",
                                              0, NULL, &r, &e),
                         GP_OK);
        int pid = (int)gp_test_int(r, 0, 0);
        gp_result_free(r);
        expect_no_context(p, pid, "B's token made session-level");
        tenant_read_t t;
        tenant_read(p, tenant_a, NULL, &t);
        assert_true(t.standby);
        assert_int_equal(t.rows, A_ROWS);
        assert_int_equal(t.foreign, 0);
        /* the same, failing half-way */
        assert_int_equal(gp_tenant_read_query(p, tenant_b, NULL, "SELECT set_config('growplate.tenant_token', "
                                                                 "current_setting('growplate.tenant_token'), false), "
                                                                 "1 / (SELECT 0) FROM menu_categories",
                                              0, NULL, &r, &e),
                         GP_ERR_SERVER);
        assert_null(r);
        expect_no_context(p, pid, "B's failed read");
        assert_int_equal(gp_tenant_run(p, tenant_b, &(gp_tx_opts_t){.read_only = true}, tenant_fn_token_then_fail, NULL,
                                       NULL, &e),
                         GP_ERR_SERVER);
        expect_no_context(p, pid, "B's failed read-only transaction");
        tenant_read(p, tenant_a, NULL, &t);
        assert_int_equal(t.rows, A_ROWS);
        assert_int_equal(t.foreign, 0);
    }
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
}

/* ---- a busy read pool is not a down standby -------------------------------------- */

static void test_busy_read_pool(void **state)
{
    (void)state;
    gp_pool_t *p = pool_with(0, true); /* 3 connections each */
    gp_error_t e;
    gp_conn_t *held[3] = {NULL};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(gp_pool_acquire_read(p, NULL, "holder", -1, &held[i], &e), GP_OK);
        assert_true(gp_conn_is_replica(held[i]));
    }
    /* Every standby connection leased: this read is served by the primary
     * (after waiting its share for the standby). */
    int64_t v = 0;
    bool standby = true;
    double t0 = now_ms();
    read_v(p, NULL, &v, &standby);
    double waited = now_ms() - t0;
    assert_false(standby);
    assert_true(waited < ACQUIRE_MS);
    for (int i = 0; i < 3; i++)
        gp_pool_release(held[i]);
    /* The standby was busy, not down: the next read is its. */
    read_v(p, NULL, &v, &standby);
    fprintf(stderr, "read pool busy: a read went to the primary after %.0f ms; the next one, the pool free again, was "
                    "served by the %s\n", waited, standby ? "standby" : "primary");
    assert_true(standby);
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    assert_int_equal(m.reads[GP_READ_PRIMARY_BUSY], 1); /* counted as busy, not as a down standby */
    assert_int_equal(m.reads[GP_READ_PRIMARY_DOWN], 0);
    assert_string_equal(gp_read_served_name(GP_READ_PRIMARY_BUSY), "primary_busy");
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
}

/* ---- the standby hung ------------------------------------------------------------- */

typedef struct hung_read {
    gp_pool_t *pool;
    char after[GP_WAL_POSITION_LEN];
    gp_status_t st;
    bool standby, done;
    double took;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} hung_read_t;

static void *hung_read_main(void *arg)
{
    hung_read_t *h = arg;
    gp_read_opts_t o = {.after = h->after[0] ? h->after : NULL, .wait_ms = 50};
    gp_result_t *r = NULL;
    gp_error_t e;
    double t0 = now_ms();
    gp_status_t st = gp_pool_read_query(h->pool, &o, "SELECT pg_is_in_recovery()", 0, NULL, &r, &e);
    bool standby = true;
    if (st == GP_OK)
        gp_get_bool(r, 0, 0, &standby);
    gp_result_free(r);
    pthread_mutex_lock(&h->mu);
    h->st = st;
    h->standby = standby;
    h->took = now_ms() - t0;
    h->done = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* A standby whose backend stops answering (SIGSTOP: a hung server, a
 * partition): a read must still be served, by the primary, within the
 * acquire timeout — not wait for the standby forever. */
static void test_hung_standby(void **state)
{
    (void)state;
    for (int with_after = 0; with_after < 2; with_after++) {
        gp_pool_t *p = pool_with(0, true);
        gp_result_t *r = NULL;
        gp_error_t e;
        /* the read pool's one connection, and its backend */
        gp_conn_t *c = NULL;
        assert_int_equal(gp_pool_acquire_read(p, NULL, "probe", -1, &c, &e), GP_OK);
        assert_true(gp_conn_is_replica(c));
        gp_pool_release(c);
        assert_int_equal(gp_pool_read_query(p, NULL, "SELECT pg_backend_pid(), pg_is_in_recovery()", 0, NULL, &r, &e),
                         GP_OK);
        bool standby = false;
        gp_get_bool(r, 0, 1, &standby);
        assert_true(standby);
        pid_t backend = (pid_t)gp_test_int(r, 0, 0);
        gp_result_free(r);
        hung_read_t h = {.pool = p, .st = GP_ERR_INVALID};
        pthread_mutex_init(&h.mu, NULL);
        pthread_cond_init(&h.cv, NULL);
        if (with_after)
            assert_int_equal(gp_pool_wal_position(p, h.after, &e), GP_OK);
        /* (without a position the lag measurement, due a second after the
         * last, is what talks to the standby: let it fall due) */
        if (!with_after)
            gp_test_pause_ms(1100);
        assert_int_equal(kill(backend, SIGSTOP), 0);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, hung_read_main, &h), 0);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += ACQUIRE_MS / 1000 + 3;
        pthread_mutex_lock(&h.mu);
        int rc = 0;
        while (!h.done && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&h.cv, &h.mu, &until);
        bool done = h.done;
        pthread_mutex_unlock(&h.mu);
        kill(backend, SIGCONT); /* whatever happened: the thread can finish */
        pthread_join(th, NULL);
        if (!done)
            fprintf(stderr, "a read %s with the standby's backend stopped: no answer within the acquire timeout and 3 s (it took %.0f ms, "
                            "once the backend was continued)\n", with_after ? "with a position" : "due a lag measurement",
                    h.took);
        else
            fprintf(stderr, "a read %s with the standby's backend stopped: status %d after %.0f ms, on the %s\n",
                    with_after ? "with a position" : "due a lag measurement", h.st, h.took,
                    h.standby ? "standby" : "primary");
        assert_true(done);
        assert_int_equal(h.st, GP_OK);
        assert_false(h.standby);
        assert_true(h.took < ACQUIRE_MS);
        pthread_mutex_destroy(&h.mu);
        pthread_cond_destroy(&h.cv);
        assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    }
}

/* ---- the standby stopped ----------------------------------------------------------- */

static void test_standby_down(void **state)
{
    (void)state;
    gp_pool_t *p = pool_with(0, true);
    int64_t v = 0;
    bool standby = false;
    for (int i = 0; i < 3; i++) { /* idle connections to the standby in the read pool */
        read_v(p, NULL, &v, &standby);
        assert_true(standby);
    }
    assert_int_equal(services("stop replica >/dev/null"), 0);
    uint64_t down = served(p, GP_READ_PRIMARY_DOWN);
    double worst = 0;
    for (int i = 0; i < 10; i++) {
        gp_result_t *r = NULL;
        gp_error_t e;
        double t0 = now_ms();
        gp_status_t st = gp_pool_read_query(p, NULL, "SELECT v, pg_is_in_recovery() FROM public.rr_probe WHERE id = 1", 0,
                                            NULL, &r, &e);
        double t = now_ms() - t0;
        if (st != GP_OK)
            fprintf(stderr, "read %d with the standby down: %s (class %s)\n", i, e.message, gp_error_class_name(e.klass));
        assert_int_equal(st, GP_OK);
        assert_int_equal(gp_get_bool(r, 0, 1, &standby), GP_OK);
        assert_false(standby);
        gp_result_free(r);
        if (t > worst)
            worst = t;
        assert_true(t < ACQUIRE_MS);
    }
    assert_true(served(p, GP_READ_PRIMARY_DOWN) >= down + 10);
    fprintf(stderr, "standby down: 10 reads on the primary, the slowest %.1f ms\n", worst);
    /* Tenant reads too, a tenant new to the pool included (its context
     * published on the primary itself now), scoped as ever. */
    gp_error_t e;
    gp_result_t *r = NULL;
    assert_int_equal(gp_pool_query(p, "SELECT create_tenant('rr-d', 'rr-d')::text", 0, NULL, &r, &e), GP_OK);
    char tenant_d[37];
    const char *id;
    gp_get_text(r, 0, 0, &id, NULL);
    snprintf(tenant_d, sizeof tenant_d, "%s", id);
    gp_result_free(r);
    tenant_read_t t;
    tenant_read(p, tenant_d, NULL, &t);
    assert_false(t.standby);
    assert_int_equal(t.rows, 0);
    tenant_read(p, tenant_b, NULL, &t);
    assert_false(t.standby);
    assert_int_equal(t.rows, B_ROWS);
    assert_int_equal(t.foreign, 0);
    tenant_read_t u = {tenant_a, true, -1, -1};
    assert_int_equal(gp_tenant_run(p, tenant_a, &(gp_tx_opts_t){.read_only = true}, tenant_fn_read, &u, NULL, &e), GP_OK);
    assert_false(u.standby);
    assert_int_equal(u.rows, A_ROWS);
    assert_int_equal(u.foreign, 0);
    /* Started again: the reads return to it. */
    assert_int_equal(services("start replica >/dev/null"), 0);
    double t0 = now_ms();
    bool back = false;
    while (!back && now_ms() - t0 < 15000) {
        read_v(p, NULL, &v, &standby);
        back = standby;
        if (!back)
            gp_test_pause_ms(20);
    }
    assert_true(back);
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    fprintf(stderr, "standby started again: reads back on it after %.0f ms (meanwhile on the primary: down %llu, "
                    "lag %llu)\n",
            now_ms() - t0, (unsigned long long)(m.reads[GP_READ_PRIMARY_DOWN] - down - 10),
            (unsigned long long)m.reads[GP_READ_PRIMARY_LAG]);
    /* Current, though its receive position restarted behind its replay
     * position: never taken for a lagging one. */
    assert_int_equal(m.reads[GP_READ_PRIMARY_LAG], 0);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
}

/* ---- the standby promoted while the primary still runs ------------------------------ */

/* (last: the standby is a primary of its own afterwards) A read pool's
 * connection to a server that left recovery is not a standby of the
 * primary any more: its WAL positions are another history's, so a read
 * that must see the caller's commit cannot be served there. */
static void test_promoted_standby(void **state)
{
    (void)state;
    gp_pool_t *p = pool_with(0, true);
    int64_t v = 0;
    bool standby = false;
    for (int i = 0; i < 3; i++) { /* idle connections to the standby */
        read_v(p, NULL, &v, &standby);
        assert_true(standby);
    }
    assert_int_equal(services("promote replica >/dev/null"), 0);
    /* the promoted server's WAL moves ahead of the primary's (writes of
     * its own; a segment switch is the quickest) */
    pq_sql(replica_admin, "CREATE TABLE public.rr_split (x int); SELECT pg_switch_wal()");
    gp_error_t e;
    int stale = 0, there = 0;
    for (int i = 0; i < 20; i++) {
        write_v(p, 900000 + i, true);
        char pos[GP_WAL_POSITION_LEN];
        assert_int_equal(gp_pool_wal_position(p, pos, &e), GP_OK);
        gp_read_opts_t o = {.after = pos, .wait_ms = 50};
        gp_result_t *r = NULL;
        assert_int_equal(gp_pool_read_query(p, &o, "SELECT v, inet_server_port() FROM public.rr_probe WHERE id = 1", 0, NULL,
                                            &r, &e),
                         GP_OK);
        v = gp_test_int(r, 0, 0);
        there += (int)gp_test_int(r, 0, 1) != pg_port;
        gp_result_free(r);
        stale += v != 900000 + i;
    }
    fprintf(stderr, "standby promoted under a running primary: %d of 20 reads with a position were stale, %d served "
                    "by the promoted server\n", stale, there);
    assert_int_equal(stale, 0);
    assert_int_equal(there, 0);
    /* Reads without a position leave it too, by the next lag measurement
     * (a server out of recovery has no lag to trust). */
    double t0 = now_ms();
    bool moved = false;
    while (!moved && now_ms() - t0 < 5000) {
        gp_result_t *r = NULL;
        assert_int_equal(gp_pool_read_query(p, NULL, "SELECT inet_server_port()", 0, NULL, &r, &e), GP_OK);
        moved = (int)gp_test_int(r, 0, 0) == pg_port;
        gp_result_free(r);
        if (!moved)
            gp_test_pause_ms(20);
    }
    assert_true(moved);
    fprintf(stderr, "reads without a position left the promoted server after %.0f ms\n", now_ms() - t0);
    for (int i = 0; i < 5; i++) {
        read_v(p, NULL, &v, &standby);
        assert_false(standby);
        assert_int_equal(v, 900019);
    }
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_reads_served_by_the_standby),
        cmocka_unit_test(test_read_your_writes),
        cmocka_unit_test(test_concurrent_read_your_writes),
        cmocka_unit_test(test_lagging_standby),
        cmocka_unit_test(test_write_through_a_read_fails),
        cmocka_unit_test(test_tenant_scoping_on_the_standby),
        cmocka_unit_test(test_tenant_context_on_a_shared_standby_connection),
        cmocka_unit_test(test_busy_read_pool),
        cmocka_unit_test(test_hung_standby),
        cmocka_unit_test(test_standby_down),
        cmocka_unit_test(test_promoted_standby),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
