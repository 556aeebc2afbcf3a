/* test_failover.c — past one server: a primary and its streaming standby of
 * this test's own (scripts/services with a private GP_SERVICES_KEY: the
 * shared servers are never touched).
 *  - A read-only switch of the primary (default_transaction_read_only on,
 *    reloaded): every write fails with GP_ERR_SERVER class wrong_server
 *    (25006), retriable, and its connection is closed, not reused; health
 *    says degraded with the role read-only; writable again, writes work.
 *  - Health of a standby: role standby, a replay lag.
 *  - Failover under load: 4 writer threads through a multi-host URL
 *    (primary, standby; target_session_attrs=read-write); the primary is
 *    stopped and the standby promoted: no crash, no call past its acquire
 *    timeout, every failure classified and retriable, and writes succeed
 *    again soon after the promotion (the outage is printed).
 * ctest-labels: concurrency
 * ctest-timeout: 240 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "gp_test.h"
#include "internal.h"

static char key[64], owner_url[512], admin[512], replica_admin[512];
static int pg_port, replica_port;

static int services(const char *args) { return gp_test_key_services(key, args); }

static bool env_value(const char *name, char *out, size_t len) { return gp_test_key_env(key, name, out, len); }

static void admin_sql(const char *conninfo, const char *sql)
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

static int setup(void **state)
{
    (void)state;
    snprintf(key, sizeof key, "failover-%d", (int)getpid());
    if (services("start postgres >/dev/null") != 0 || services("start replica >/dev/null") != 0) {
        services("clean >/dev/null 2>&1"); /* nothing left running */
        return -1;
    }
    char port[16];
    if (!env_value("DATABASE_MIGRATION_URL", owner_url, sizeof owner_url) ||
        !env_value("GP_PG_ADMIN_CONNINFO", admin, sizeof admin) ||
        !env_value("GP_PG_REPLICA_ADMIN_CONNINFO", replica_admin, sizeof replica_admin) ||
        !env_value("GP_PG_REPLICA_PORT", port, sizeof port))
        return -1;
    replica_port = atoi(port);
    const char *p = strrchr(owner_url, ':');
    pg_port = p ? atoi(p + 1) : 0;
    /* A table for the writers (the owner role owns schema public here). */
    PGconn *c = PQconnectdb(owner_url);
    if (PQstatus(c) != CONNECTION_OK)
        return -1;
    PQclear(PQexec(c, "CREATE TABLE IF NOT EXISTS failover_probe (id bigserial PRIMARY KEY, v int NOT NULL)"));
    PQfinish(c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (!getenv("GP_TEST_KEEP_SERVICES"))
        services("clean >/dev/null 2>&1");
    return 0;
}

/* The owner URL with the host list `hosts` and extra query parameters. */
static void url_for(char *out, size_t len, const char *hosts, const char *query)
{
    const char *at = strrchr(owner_url, '@'), *slash = strchr(at, '/');
    snprintf(out, len, "%.*s%s%s%s", (int)(at + 1 - owner_url), owner_url, hosts, slash, query);
}

static gp_pool_t *pool_at(gp_config_t *cfg, const char *url, int max)
{
    gp_test_config(cfg);
    cfg->db.url = url;
    cfg->db.migration_url = NULL;
    cfg->db.pool_min = 1;
    cfg->db.pool_max = max;
    cfg->db.acquire_timeout_ms = 3000;
    cfg->db.connect_timeout_ms = 2000;
    gp_pool_t *p = NULL;
    gp_error_t e;
    if (gp_pool_create(cfg, &p, &e) != GP_OK)
        fprintf(stderr, "pool: %s\n", e.message);
    assert_non_null(p);
    return p;
}

static gp_status_t write_one(gp_pool_t *p, gp_error_t *e)
{
    return gp_pool_exec(p, "INSERT INTO failover_probe (v) VALUES ($1)", GP_ARGS(gp_int32(1)), NULL, e);
}

/* ---- a primary made read-only ---------------------------------------------------------- */

static void test_read_only_primary(void **state)
{
    (void)state;
    char url[512], hosts[64];
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d", pg_port);
    url_for(url, sizeof url, hosts, "");
    gp_config_t cfg;
    gp_pool_t *p = pool_at(&cfg, url, 2);
    gp_error_t e;
    assert_int_equal(write_one(p, &e), GP_OK);

    admin_sql(admin, "ALTER SYSTEM SET default_transaction_read_only = on");
    admin_sql(admin, "SELECT pg_reload_conf()");
    /* The server tells every session at its next statement; the first write
     * on an old connection may still pass while the reload lands. */
    gp_status_t st = GP_OK;
    for (int i = 0; i < 200 && st == GP_OK; i++)
        if ((st = write_one(p, &e)) == GP_OK)
            gp_test_pause_ms(5);
    assert_int_equal(st, GP_ERR_SERVER);
    assert_string_equal(e.sqlstate, "25006");
    assert_int_equal(e.klass, GP_ECLASS_WRONG_SERVER);
    assert_true(e.retriable);
    assert_string_equal(gp_error_class_name(e.klass), "wrong_server");
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    uint64_t broken = m.closed[GP_CLOSE_BROKEN];
    assert_true(broken >= 1); /* not handed out again */
    assert_int_equal(write_one(p, &e), GP_ERR_SERVER); /* a new connection: still read-only */
    assert_int_equal(e.klass, GP_ECLASS_WRONG_SERVER);
    /* Reads still work, and health says what the server is. */
    assert_int_equal(gp_pool_exec(p, "SELECT count(*) FROM failover_probe", 0, NULL, NULL, &e), GP_OK);
    gp_health_options_t ho = {.cfg = &cfg, .pool = p, .deadline_ms = 2000};
    gp_health_report_t r;
    assert_int_equal(gp_health_check(&ho, &r), GP_OK);
    assert_string_equal(r.postgres.role, "read-only");
    assert_int_equal(r.state, GP_HEALTH_DEGRADED);

    admin_sql(admin, "ALTER SYSTEM RESET default_transaction_read_only");
    admin_sql(admin, "SELECT pg_reload_conf()");
    st = GP_ERR_SERVER;
    for (int i = 0; i < 200 && st != GP_OK; i++)
        if ((st = write_one(p, &e)) != GP_OK)
            gp_test_pause_ms(5);
    assert_int_equal(st, GP_OK);
    assert_int_equal(gp_health_check(&ho, &r), GP_OK);
    assert_string_equal(r.postgres.role, "primary");
    /* A caller's own READ ONLY transaction is its own error, not the server's. */
    gp_conn_t *c = NULL;
    assert_int_equal(gp_pool_acquire(p, "ro", -1, &c, NULL), GP_OK);
    gp_tx_opts_t ro = {.read_only = true};
    assert_int_equal(gp_tx_begin(c, &ro, &e), GP_OK);
    assert_int_equal(gp_exec(c, "INSERT INTO failover_probe (v) VALUES (2)", 0, NULL, NULL, &e), GP_ERR_SERVER);
    assert_string_equal(e.sqlstate, "25006");
    assert_int_equal(e.klass, GP_ECLASS_TRANSACTION);
    gp_tx_rollback(c, NULL);
    gp_pool_release(c);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

/* ---- a standby's health ------------------------------------------------------------ */

static void test_standby_health(void **state)
{
    (void)state;
    char url[512], hosts[64];
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d", replica_port);
    url_for(url, sizeof url, hosts, "");
    /* A commit the standby has replayed (until then its lag is unknown). */
    PGconn *pc = PQconnectdb(admin), *rc = PQconnectdb(replica_admin);
    assert_int_equal(PQstatus(pc), CONNECTION_OK);
    assert_int_equal(PQstatus(rc), CONNECTION_OK);
    PGresult *x = PQexec(pc, "INSERT INTO failover_probe (v) VALUES (3) RETURNING pg_current_wal_lsn()::text");
    assert_int_equal(PQresultStatus(x), PGRES_TUPLES_OK);
    char lsn[32];
    snprintf(lsn, sizeof lsn, "%s", PQgetvalue(x, 0, 0));
    PQclear(x);
    char q[128];
    snprintf(q, sizeof q, "SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn", lsn);
    bool replayed = false;
    for (int i = 0; i < 1000 && !replayed; i++) {
        x = PQexec(rc, q);
        replayed = PQresultStatus(x) == PGRES_TUPLES_OK && strcmp(PQgetvalue(x, 0, 0), "t") == 0;
        PQclear(x);
        if (!replayed)
            gp_test_pause_ms(5);
    }
    PQfinish(pc);
    PQfinish(rc);
    assert_true(replayed);

    gp_config_t cfg;
    gp_pool_t *p = pool_at(&cfg, url, 1);
    gp_health_options_t ho = {.cfg = &cfg, .pool = p, .deadline_ms = 2000};
    gp_health_report_t r;
    assert_int_equal(gp_health_check(&ho, &r), GP_OK);
    assert_int_equal(r.postgres.status, GP_OK);
    assert_string_equal(r.postgres.role, "standby");
    assert_true(r.postgres.replay_lag_ms >= 0);
    assert_int_equal(r.state, GP_HEALTH_DEGRADED); /* writes would fail */
    gp_error_t e;
    assert_int_equal(write_one(p, &e), GP_ERR_SERVER);
    assert_int_equal(e.klass, GP_ECLASS_WRONG_SERVER);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

/* ---- the commit's token, through the pool's own read routing -------------------------------- */

/* gp_tx_commit_position hands out the commit's WAL position, and a routed
 * read given it (gp_pool_read_query with gp_read_opts_t.after) sees the row
 * on the standby, asynchronous commits included (it waits for the replay,
 * or the primary serves the read). */
static void test_commit_token_routed(void **state)
{
    (void)state;
    char purl[512], rurl[512], hosts[64];
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d", pg_port);
    url_for(purl, sizeof purl, hosts, "");
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d", replica_port);
    url_for(rurl, sizeof rurl, hosts, "");
    gp_config_t cfg;
    gp_test_config(&cfg);
    cfg.db.url = purl;
    cfg.db.read_url = rurl;
    cfg.db.pool_min = 0;
    cfg.db.pool_max = 2;
    cfg.db.acquire_timeout_ms = 3000;
    gp_pool_t *p = NULL;
    gp_error_t e;
    assert_int_equal(gp_pool_create(&cfg, &p, &e), GP_OK);
    enum { ROUNDS = 30 };
    int stale = 0;
    for (int i = 0; i < ROUNDS; i++) {
        gp_conn_t *c = NULL;
        assert_int_equal(gp_pool_acquire(p, "writer", -1, &c, &e), GP_OK);
        assert_int_equal(gp_tx_begin(c, NULL, &e), GP_OK);
        gp_result_t *r = NULL;
        assert_int_equal(gp_query(c, "INSERT INTO failover_probe (v) VALUES ($1) RETURNING id", GP_ARGS(gp_int32(3000 + i)),
                                  &r, &e), GP_OK);
        int64_t id = 0;
        assert_int_equal(gp_get_int64(r, 0, 0, &id), GP_OK);
        gp_result_free(r);
        char pos[GP_WAL_POSITION_LEN];
        assert_int_equal(gp_tx_commit_position(c, pos, &e), GP_OK);
        assert_true(strchr(pos, '/') != NULL);
        gp_pool_release(c);
        gp_read_opts_t ro = {.after = pos, .wait_ms = 1000};
        assert_int_equal(gp_pool_read_query(p, &ro, "SELECT count(*) FROM failover_probe WHERE id = $1",
                                            GP_ARGS(gp_int64(id)), &r, &e), GP_OK);
        int64_t n = 0;
        assert_int_equal(gp_get_int64(r, 0, 0, &n), GP_OK);
        gp_result_free(r);
        stale += n != 1;
    }
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    fprintf(stderr, "commit token: %d routed reads after their commit, %d stale; served by the standby %llu, by the "
            "primary (behind) %llu, (lag) %llu\n", ROUNDS, stale, (unsigned long long)m.reads[GP_READ_REPLICA],
            (unsigned long long)m.reads[GP_READ_PRIMARY_BEHIND], (unsigned long long)m.reads[GP_READ_PRIMARY_LAG]);
    assert_int_equal(stale, 0);
    assert_true(m.reads[GP_READ_REPLICA] > 0);
    /* Without a transaction there is nothing to commit. */
    gp_conn_t *c = NULL;
    char pos[GP_WAL_POSITION_LEN];
    assert_int_equal(gp_pool_acquire(p, "writer", -1, &c, &e), GP_OK);
    assert_int_equal(gp_tx_commit_position(c, pos, &e), GP_ERR_INVALID);
    assert_string_equal(pos, "");
    gp_pool_release(c);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

/* ---- read-your-writes ---------------------------------------------------------------- */

/* A write on the primary, its position, a wait for the standby to replay
 * it, then a read on the standby: never stale. With replay paused, the wait
 * ends at its timeout. */
static void test_read_your_writes(void **state)
{
    (void)state;
    char purl[512], rurl[512], hosts[64];
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d", pg_port);
    url_for(purl, sizeof purl, hosts, "");
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d", replica_port);
    url_for(rurl, sizeof rurl, hosts, "");
    gp_config_t pcfg, rcfg;
    gp_pool_t *primary = pool_at(&pcfg, purl, 2), *replica = pool_at(&rcfg, rurl, 2);
    gp_error_t e;
    enum { ROUNDS = 20 };
    int stale = 0;
    int64_t waited[2] = {0, 0};
    char pos[GP_WAL_POSITION_LEN];
    /* The private server runs synchronous_commit = off: a commit then reaches
     * the standby when the WAL writer flushes (wal_writer_delay, 200 ms).
     * Half the writes ask for a synchronous commit, as a write whose reader
     * must see it at once would. */
    for (int i = 0; i < 2 * ROUNDS; i++) {
        bool sync = i % 2;
        gp_conn_t *c = NULL;
        assert_int_equal(gp_pool_acquire(primary, "writer", -1, &c, &e), GP_OK);
        assert_int_equal(gp_tx_begin(c, NULL, &e), GP_OK);
        if (sync)
            assert_int_equal(gp_exec(c, "SET LOCAL synchronous_commit = on", 0, NULL, NULL, &e), GP_OK);
        gp_result_t *r = NULL;
        assert_int_equal(gp_query(c, "INSERT INTO failover_probe (v) VALUES ($1) RETURNING id", GP_ARGS(gp_int32(1000 + i)),
                                  &r, &e), GP_OK);
        int64_t id = 0;
        assert_int_equal(gp_get_int64(r, 0, 0, &id), GP_OK);
        gp_result_free(r);
        assert_int_equal(gp_tx_commit(c, &e), GP_OK);
        gp_pool_release(c);
        assert_int_equal(gp_pool_wal_position(primary, pos, &e), GP_OK);
        int64_t t0 = gp__now_ns();
        assert_int_equal(gp_pool_wait_replayed(replica, pos, 2000, &e), GP_OK);
        waited[sync] += gp__now_ns() - t0;
        assert_int_equal(gp_pool_query(replica, "SELECT count(*) FROM failover_probe WHERE id = $1", GP_ARGS(gp_int64(id)),
                                       &r, &e), GP_OK);
        int64_t n = 0;
        assert_int_equal(gp_get_int64(r, 0, 0, &n), GP_OK);
        gp_result_free(r);
        stale += n != 1;
    }
    fprintf(stderr,
            "read-your-writes: %d commit-then-read rounds through the standby, %d stale; average wait %.2f ms after a "
            "synchronous commit, %.2f ms after an asynchronous one\n",
            2 * ROUNDS, stale, (double)waited[1] / ROUNDS / 1e6, (double)waited[0] / ROUNDS / 1e6);
    assert_int_equal(stale, 0);
    /* The primary has its own position at once. */
    assert_int_equal(gp_pool_wait_replayed(primary, pos, 0, &e), GP_OK);
    /* Replay paused: the wait gives up at its timeout, retriable. */
    admin_sql(replica_admin, "SELECT pg_wal_replay_pause()");
    assert_int_equal(gp_pool_exec(primary, "INSERT INTO failover_probe (v) VALUES (1)", 0, NULL, NULL, &e), GP_OK);
    assert_int_equal(gp_pool_wal_position(primary, pos, &e), GP_OK);
    int64_t t0 = gp__now_ns();
    assert_int_equal(gp_pool_wait_replayed(replica, pos, 100, &e), GP_ERR_TIMEOUT);
    int64_t took = (gp__now_ns() - t0) / 1000000;
    assert_true(took >= 100 && took < 600);
    assert_true(e.retriable);
    assert_non_null(strstr(e.message, "read from the primary"));
    admin_sql(replica_admin, "SELECT pg_wal_replay_resume()");
    assert_int_equal(gp_pool_wait_replayed(replica, pos, 5000, &e), GP_OK);
    /* Bad input, and a standby has no position of its own. */
    assert_int_equal(gp_pool_wait_replayed(replica, "0/1'; DROP TABLE x", 100, &e), GP_ERR_INVALID);
    assert_int_equal(gp_pool_wait_replayed(replica, "", 100, &e), GP_ERR_INVALID);
    assert_int_equal(gp_pool_wait_replayed(replica, "123456789/0", 100, &e), GP_ERR_INVALID);
    assert_int_equal(gp_pool_wal_position(replica, pos, &e), GP_ERR_SERVER);
    assert_int_equal(gp_pool_close(primary, 1000), GP_OK);
    assert_int_equal(gp_pool_close(replica, 1000), GP_OK);
    gp_config_release(&pcfg);
    gp_config_release(&rcfg);
}

/* ---- failover under load ------------------------------------------------------------ */

typedef struct writer {
    gp_pool_t *pool;
    _Atomic bool *stop;
    _Atomic int64_t *first_ok_after; /* ns of the first success after `since`, 0 until then */
    _Atomic int64_t *since;
    _Atomic int64_t *window_from; /* the start of the second after the promotion */
    _Atomic uint64_t *ok_before, *ok_window;
    _Atomic int64_t *stop_at;
    uint64_t ok, failed, unclassified, slow;
    int64_t slowest_ns;
} writer_t;

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    while (!atomic_load(w->stop)) {
        gp_error_t e;
        int64_t t0 = gp__now_ns();
        gp_status_t st = write_one(w->pool, &e);
        int64_t took = gp__now_ns() - t0;
        if (took > w->slowest_ns)
            w->slowest_ns = took;
        if (took > (3000 + 2000 + 1000) * 1000000LL) /* acquire timeout + one connect + slack */
            w->slow++;
        if (st == GP_OK) {
            w->ok++;
            int64_t now = gp__now_ns(), wf = atomic_load(w->window_from), sa = atomic_load(w->stop_at);
            if (!sa)
                atomic_fetch_add(w->ok_before, 1);
            else if (wf && now >= wf && now < wf + 1000 * 1000000LL)
                atomic_fetch_add(w->ok_window, 1);
            int64_t since = atomic_load(w->since), zero = 0;
            if (since && t0 > since)
                atomic_compare_exchange_strong(w->first_ok_after, &zero, gp__now_ns());
        } else {
            w->failed++;
            if (e.klass == GP_ECLASS_NONE || (!e.retriable && st != GP_ERR_COMMIT_UNKNOWN))
                w->unclassified++, fprintf(stderr, "unclassified: %s (%s)\n", e.message, gp_error_class_name(e.klass));
            gp_test_pause_ms(2); /* a failed call is retried after a short pause, as a service would */
        }
    }
    return NULL;
}

static void test_failover_under_load(void **state)
{
    (void)state;
    char url[512], hosts[128];
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d,127.0.0.1:%d", pg_port, replica_port);
    url_for(url, sizeof url, hosts, "?target_session_attrs=read-write");
    gp_config_t cfg;
    gp_pool_t *p = pool_at(&cfg, url, 4);
    gp_error_t e;
    assert_int_equal(write_one(p, &e), GP_OK);
    _Atomic bool stop = false;
    _Atomic int64_t first_ok = 0, since = 0, window_from = 0, stop_at = 0;
    _Atomic uint64_t ok_before = 0, ok_window = 0;
    writer_t w[4];
    pthread_t th[4];
    int64_t load_from = gp__now_ns();
    for (int i = 0; i < 4; i++) {
        w[i] = (writer_t){.pool = p, .stop = &stop, .first_ok_after = &first_ok, .since = &since,
                          .window_from = &window_from, .ok_before = &ok_before, .ok_window = &ok_window,
                          .stop_at = &stop_at};
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    }
    gp_test_pause_ms(1000); /* writes flowing: the rate before */
    int64_t t_stop = gp__now_ns();
    atomic_store(&stop_at, t_stop);
    assert_int_equal(services("stop postgres >/dev/null"), 0);
    int64_t t_stopped = gp__now_ns();
    assert_int_equal(services("promote replica >/dev/null"), 0);
    int64_t t_promoted = gp__now_ns();
    atomic_store(&since, t_promoted);
    atomic_store(&window_from, t_promoted);
    int64_t by = t_promoted + 20000 * 1000000LL;
    while (atomic_load(&first_ok) == 0 && gp__now_ns() < by)
        gp_test_pause_ms(5);
    int64_t back = atomic_load(&first_ok);
    gp_test_pause_ms(1100); /* and keep writing on the new primary: the second after the promotion */
    atomic_store(&stop, true);
    uint64_t ok = 0, failed = 0, unclassified = 0, slow = 0;
    int64_t slowest = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok, failed += w[i].failed, unclassified += w[i].unclassified, slow += w[i].slow;
        if (w[i].slowest_ns > slowest)
            slowest = w[i].slowest_ns;
    }
    fprintf(stderr,
            "failover: primary stopped in %lld ms, promoted %lld ms later; first write on the new primary %lld ms "
            "after the promotion (%lld ms after the stop); %llu writes ok, %llu failed (all classified: %s), slowest "
            "call %lld ms\n",
            (long long)((t_stopped - t_stop) / 1000000), (long long)((t_promoted - t_stopped) / 1000000),
            back ? (long long)((back - t_promoted) / 1000000) : -1LL, back ? (long long)((back - t_stop) / 1000000) : -1LL,
            (unsigned long long)ok, (unsigned long long)failed, unclassified ? "no" : "yes", (long long)(slowest / 1000000));
    double before = (double)atomic_load(&ok_before) / ((double)(t_stop - load_from) / 1e9);
    fprintf(stderr, "failover: %.0f writes/s before the stop, %llu in the first second after the promotion (%.2f of before)\n",
            before, (unsigned long long)atomic_load(&ok_window), before > 0 ? (double)atomic_load(&ok_window) / before : 0);
    assert_true(back != 0);
    assert_int_equal(unclassified, 0);
    assert_int_equal(slow, 0);
    assert_int_equal(write_one(p, &e), GP_OK);
    assert_int_equal(gp_pool_close(p, 2000), GP_OK);
    gp_config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_only_primary),
        cmocka_unit_test(test_standby_health),
        cmocka_unit_test(test_read_your_writes),
        cmocka_unit_test(test_commit_token_routed),
        cmocka_unit_test(test_failover_under_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
