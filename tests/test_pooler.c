/* test_pooler.c — a connection pooler between the library and PostgreSQL,
 * on a real PgBouncer in transaction mode (scripts/services start
 * pgbouncer, with a private GP_SERVICES_KEY: the shared servers are not
 * touched).
 *  - Without DATABASE_POOLER a pool that finds itself behind a pooler
 *    refuses the connection (GP_ERR_CONFIG), migrate refuses one always,
 *    DATABASE_POOLER=session skips the check, and validation keeps named
 *    statements out of DATABASE_POOLER=transaction.
 *  - DATABASE_POOLER=transaction: every call works through PgBouncer
 *    (statements and one-shots, pipelines, transactions, tenant calls), and
 *    DATABASE_STATEMENT_TIMEOUT applies in each transaction.
 *  - The attacker and its victim: client A (a pool) leaves session state in
 *    many spellings, as one-shots, inside transactions and in pipelines,
 *    and on success and failure paths; then client B (a second pool, so a
 *    second PgBouncer client) runs on the very server connection A last
 *    used (PgBouncer hands out the most recently released server: the two
 *    alternate single-threaded, and every check asserts that B's
 *    pg_backend_pid() is A's) and sees nothing of it. What must be refused
 *    is, with GP_ERR_INVALID, and its unit's write does not land;
 *    transaction-local forms commit and leave nothing.
 *  - The client's deadline mid-unit (DATABASE_QUERY_TIMEOUT): the server
 *    connection, with what the unit left on it, is not handed on.
 *  - No named statements: 8 threads on two pools, distinct statements and
 *    parameters, each caller gets its own answers.
 *  - Tenant isolation through the pooler, on shared server connections,
 *    after units that failed half-way too.
 * ctest-labels: concurrency */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "gp_test.h"

static char key[64], pooler_url[512], pooler_owner_url[512], direct_url[512], owner_url[512], tenant_key[160];

static int services(const char *args) { return gp_test_key_services(key, args); }

static bool env_value(const char *name, char *out, size_t len) { return gp_test_key_env(key, name, out, len); }

static int setup(void **state)
{
    (void)state;
    snprintf(key, sizeof key, "pooler-%d", (int)getpid());
    if (services("start postgres >/dev/null") != 0 || services("start pgbouncer >/dev/null") != 0) {
        services("clean >/dev/null 2>&1"); /* nothing left running */
        return -1;
    }
    if (!env_value("DATABASE_POOLER_URL", pooler_url, sizeof pooler_url) ||
        !env_value("DATABASE_POOLER_MIGRATION_URL", pooler_owner_url, sizeof pooler_owner_url) ||
        !env_value("DATABASE_URL", direct_url, sizeof direct_url) ||
        !env_value("DATABASE_MIGRATION_URL", owner_url, sizeof owner_url) ||
        !env_value("DATABASE_TENANT_KEY", tenant_key, sizeof tenant_key)) {
        services("clean >/dev/null 2>&1");
        return -1;
    }
    /* The PgBouncer on the derived port must be this test's, forwarding to
     * this test's server (another instance's, on a colliding port, would
     * answer the readiness check as well). */
    PGconn *c = PQconnectdb(pooler_url);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, "SHOW port") : NULL;
    const char *port = strrchr(direct_url, ':');
    bool ours = PQresultStatus(r) == PGRES_TUPLES_OK && port && atoi(PQgetvalue(r, 0, 0)) == atoi(port + 1);
    if (!ours)
        fprintf(stderr, "the PgBouncer at DATABASE_POOLER_URL does not forward to this test's PostgreSQL (%s): "
                        "another instance's on the same port?\n", PQresultStatus(r) == PGRES_TUPLES_OK ? "another port" : PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    if (!ours) {
        services("clean >/dev/null 2>&1");
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    services("clean >/dev/null 2>&1");
    return 0;
}

static void config_for(gp_config_t *cfg, const char *url)
{
    gp_test_config(cfg);
    cfg->db.url = url;
    cfg->db.pool_min = 0;
    cfg->db.pool_max = 2;
    cfg->db.acquire_timeout_ms = 3000;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- fixtures: the private database migrated, two tenants with rows ----------------- */

static char tenant_a[37], tenant_b[37];
#define A_ROWS 2
#define B_ROWS 3

static PGconn *owner_conn(void)
{
    PGconn *c = PQconnectdb(owner_url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

static void owner_sql(const char *sql)
{
    PGconn *c = owner_conn();
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "owner: %s\n  %s", sql, PQerrorMessage(c));
    assert_true(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(c);
}

/* Rows of pooler_probe with that tag, counted by the owner (what landed). */
static long owner_count(const char *tag)
{
    PGconn *c = owner_conn();
    const char *p[1] = {tag};
    PGresult *r = PQexecParams(c, "SELECT count(*) FROM public.pooler_probe WHERE tag = $1", 1, NULL, p, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    long n = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return n;
}

/* The pools of this file take the private server's tenant key. */
static void keyed(gp_config_t *cfg)
{
    cfg->db.tenant_key = tenant_key;
    cfg->db.tenant_key_previous = NULL;
    cfg->db.tenant_key_file = NULL;
}

static void fixtures(void)
{
    static bool ready;
    if (ready)
        return;
    gp_config_t cfg;
    config_for(&cfg, direct_url);
    cfg.db.migration_url = owner_url;
    keyed(&cfg);
    gp_error_t e;
    gp_status_t st = gp_migrate(&cfg, NULL, NULL, &e);
    if (st != GP_OK)
        fprintf(stderr, "migrate: %s\n", e.message);
    assert_int_equal(st, GP_OK);
    owner_sql("CREATE SEQUENCE public.pooler_seq;"
              "GRANT USAGE, SELECT ON SEQUENCE public.pooler_seq TO growplate_app;"
              "CREATE TABLE public.pooler_probe (id bigserial PRIMARY KEY, tag text NOT NULL);"
              "GRANT SELECT, INSERT ON public.pooler_probe TO growplate_app;"
              "GRANT USAGE ON SEQUENCE public.pooler_probe_id_seq TO growplate_app;"
              /* currval/lastval as a value (NULL: not set in this session), so that one
               * statement can look at everything a session may have kept */
              "CREATE FUNCTION public.pooler_currval() RETURNS bigint LANGUAGE plpgsql AS $$"
              " BEGIN RETURN currval('public.pooler_seq');"
              " EXCEPTION WHEN object_not_in_prerequisite_state THEN RETURN NULL; END $$;"
              "CREATE FUNCTION public.pooler_lastval() RETURNS bigint LANGUAGE plpgsql AS $$"
              " BEGIN RETURN lastval();"
              " EXCEPTION WHEN object_not_in_prerequisite_state THEN RETURN NULL; END $$;"
              "GRANT EXECUTE ON FUNCTION public.pooler_currval(), public.pooler_lastval() TO growplate_app;"
              /* a procedure that commits: only outside a transaction block could it end one */
              "CREATE PROCEDURE public.pooler_commit() LANGUAGE plpgsql AS $$ BEGIN COMMIT; END $$;"
              "GRANT EXECUTE ON PROCEDURE public.pooler_commit() TO growplate_app;"
              /* a role the application may switch to: SET ROLE is session state */
              "CREATE ROLE pooler_other NOLOGIN;"
              "GRANT pooler_other TO growplate_app;");
    gp_pool_t *p = NULL;
    cfg.db.migration_url = NULL;
    assert_int_equal(gp_pool_create(&cfg, &p, &e), GP_OK);
    char *ids[2] = {tenant_a, tenant_b};
    const char *slugs[2] = {"pooler-a", "pooler-b"};
    for (int t = 0; t < 2; t++) {
        gp_result_t *r = NULL;
        assert_int_equal(gp_pool_query(p, "SELECT create_tenant($1, $1)::text", GP_ARGS(gp_text(slugs[t])), &r, &e),
                         GP_OK);
        const char *id;
        assert_int_equal(gp_get_text(r, 0, 0, &id, NULL), GP_OK);
        snprintf(ids[t], 37, "%s", id);
        gp_result_free(r);
        for (int i = 0; i < (t ? B_ROWS : A_ROWS); i++) {
            char name[32];
            snprintf(name, sizeof name, "%c-row-%d", t ? 'B' : 'A', i);
            st = gp_tenant_exec(p, ids[t], "INSERT INTO menu_categories (tenant_id, name) VALUES (public.growplate_tenant(), $1)",
                                GP_ARGS(gp_text(name)), NULL, &e);
            if (st != GP_OK)
                fprintf(stderr, "seed: %s\n", e.message);
            assert_int_equal(st, GP_OK);
        }
    }
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
    ready = true;
}

/* A pool through PgBouncer in transaction mode. */
static gp_pool_t *tx_pool_q(int max, int statement_timeout_ms, int query_timeout_ms)
{
    gp_config_t cfg;
    config_for(&cfg, pooler_url);
    keyed(&cfg);
    cfg.db.pooler = "transaction";
    cfg.db.statement_cache = -1;
    cfg.db.pool_max = max;
    cfg.db.statement_timeout_ms = statement_timeout_ms;
    cfg.db.query_timeout_ms = query_timeout_ms;
    cfg.db.acquire_timeout_ms = 10000;
    gp_pool_t *p = gp_test_pool(&cfg);
    gp_config_release(&cfg);
    return p;
}

static gp_pool_t *tx_pool(int max, int statement_timeout_ms) { return tx_pool_q(max, statement_timeout_ms, 0); }


static int64_t pool_scalar(gp_pool_t *p, const char *sql)
{
    gp_result_t *r = NULL;
    gp_error_t e;
    gp_status_t st = gp_pool_query(p, sql, 0, NULL, &r, &e);
    if (st != GP_OK)
        fprintf(stderr, "%s: %s\n", sql, e.message);
    assert_int_equal(st, GP_OK);
    int64_t v = gp_test_int(r, 0, 0);
    gp_result_free(r);
    return v;
}

static int pid_of(gp_pool_t *p) { return (int)pool_scalar(p, "SELECT pg_backend_pid()"); }

/* On a lease: its own unit, or a statement of the caller's transaction. */
static int conn_pid(gp_conn_t *c)
{
    gp_result_t *r = NULL;
    gp_error_t e;
    assert_int_equal(gp_query(c, "SELECT pg_backend_pid()", 0, NULL, &r, &e), GP_OK);
    int pid = (int)gp_test_int(r, 0, 0);
    gp_result_free(r);
    return pid;
}

/* ---- the existing checks: refusal without the setting, session mode, validation ----- */

static void test_pool_refuses_a_pooler(void **state)
{
    (void)state;
    gp_config_t cfg;
    config_for(&cfg, pooler_url);
    gp_pool_t *p = NULL;
    assert_int_equal(gp_pool_create(&cfg, &p, NULL), GP_OK);
    gp_error_t e;
    gp_conn_t *c = NULL;
    assert_int_equal(gp_pool_acquire(p, "through-pgbouncer", -1, &c, &e), GP_ERR_CONFIG);
    assert_null(c);
    assert_non_null(strstr(e.message, "goes through a connection pooler"));
    assert_non_null(strstr(e.message, "DATABASE_POOLER=transaction"));
    assert_null(strstr(e.message, "growplate_app_dev")); /* no password */
    /* One-shots say the same. */
    assert_int_equal(gp_pool_exec(p, "SELECT 1", 0, NULL, NULL, &e), GP_ERR_CONFIG);
    gp_pool_close(p, 1000);
    gp_config_release(&cfg);

    /* The same server directly: fine. */
    config_for(&cfg, direct_url);
    assert_int_equal(gp_pool_create(&cfg, &p, NULL), GP_OK);
    assert_int_equal(gp_pool_exec(p, "SELECT 1", 0, NULL, NULL, &e), GP_OK);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

static void test_session_pooler_is_allowed(void **state)
{
    (void)state;
    gp_config_t cfg;
    config_for(&cfg, pooler_url);
    cfg.db.pooler = "session"; /* the operator vouches for session mode (this one is not: only the check is skipped) */
    cfg.db.statement_cache = 0;
    gp_pool_t *p = NULL;
    assert_int_equal(gp_pool_create(&cfg, &p, NULL), GP_OK);
    gp_error_t e;
    gp_result_t *r = NULL;
    assert_int_equal(gp_pool_query(p, "SELECT 41 + 1", 0, NULL, &r, &e), GP_OK);
    int32_t v = 0;
    assert_int_equal(gp_get_int32(r, 0, 0, &v), GP_OK);
    assert_int_equal(v, 42);
    gp_result_free(r);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

static void test_transaction_mode_validation(void **state)
{
    (void)state;
    gp_config_t cfg;
    config_for(&cfg, pooler_url);
    cfg.db.pooler = "transaction";
    char msg[1024] = "";
    assert_int_equal(gp_config_validate(&cfg, msg, sizeof msg), GP_OK);
    /* Named statements would be other clients' to see or collide with. */
    cfg.db.statement_cache = 16;
    assert_int_equal(gp_config_validate(&cfg, msg, sizeof msg), GP_ERR_CONFIG);
    assert_non_null(strstr(msg, "DATABASE_STATEMENT_CACHE: is 16, but DATABASE_POOLER=transaction needs unnamed"));
    gp_pool_t *p = NULL;
    gp_error_t e;
    assert_int_equal(gp_pool_create(&cfg, &p, &e), GP_ERR_CONFIG);
    cfg.db.statement_cache = -1;
    cfg.db.pooler = "bouncy";
    msg[0] = 0;
    assert_int_equal(gp_config_validate(&cfg, msg, sizeof msg), GP_ERR_CONFIG);
    assert_non_null(strstr(msg, "DATABASE_POOLER: unknown value 'bouncy'"));
    gp_config_release(&cfg);
}

static void test_migrate_refuses_a_pooler(void **state)
{
    (void)state;
    gp_config_t cfg;
    config_for(&cfg, pooler_url);
    cfg.db.migration_url = pooler_owner_url;
    gp_error_t e;
    assert_int_equal(gp_migrate(&cfg, NULL, NULL, &e), GP_ERR_CONFIG);
    assert_non_null(strstr(e.message, "DATABASE_MIGRATION_URL) goes through a connection pooler"));
    assert_non_null(strstr(e.message, "point DATABASE_MIGRATION_URL at the server"));
    assert_null(strstr(e.message, "growplate_owner_dev"));
    gp_config_release(&cfg);
}

/* ---- every kind of call through PgBouncer in transaction mode ------------------------- */

static gp_status_t tx_fn_insert(gp_conn_t *conn, void *ud, gp_error_t *err)
{
    return gp_exec(conn, "INSERT INTO public.pooler_probe (tag) VALUES ($1)", GP_ARGS(gp_text(ud)), NULL, err);
}

static gp_status_t tenant_fn_count(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    gp_result_t *r = NULL;
    gp_status_t st = gp_tenant_tx_query(tx, "SELECT count(*), coalesce(bool_and(tenant_id = public.growplate_tenant()), true) "
                                            "FROM menu_categories", 0, NULL, &r, err);
    if (st == GP_OK) {
        bool own = false;
        gp_get_bool(r, 0, 1, &own);
        *(int64_t *)ud = own ? gp_test_int(r, 0, 0) : -1;
    }
    gp_result_free(r);
    return st;
}

static void test_every_call_works(void **state)
{
    (void)state;
    fixtures();
    gp_pool_t *p = tx_pool(2, 0);
    gp_error_t e;
    gp_conn_t *c = NULL;
    assert_int_equal(gp_pool_acquire(p, "calls", -1, &c, &e), GP_OK);
    /* gp_query / gp_exec on a lease, with parameters, many times (the same
     * unnamed statement, no name to collide with) */
    for (int i = 0; i < 20; i++) {
        gp_result_t *r = NULL;
        assert_int_equal(gp_query(c, "SELECT $1::int4 * 2, $2::text", GP_ARGS(gp_int32(i), gp_text("x")), &r, &e), GP_OK);
        assert_int_equal(gp_test_int(r, 0, 0), 2 * i);
        gp_result_free(r);
    }
    int64_t n = -1;
    assert_int_equal(gp_exec(c, "INSERT INTO public.pooler_probe (tag) VALUES ($1)", GP_ARGS(gp_text("lease-exec")), &n, &e),
                     GP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(owner_count("lease-exec"), 1);
    /* a pipeline on the lease */
    gp_pipeline_t *pl = gp_pipeline_new();
    assert_int_equal(gp_pipeline_add(pl, "INSERT INTO public.pooler_probe (tag) VALUES ($1)", GP_ARGS(gp_text("lease-pipe")), &e),
                     GP_OK);
    assert_int_equal(gp_pipeline_add(pl, "SELECT count(*) FROM public.pooler_probe WHERE tag = $1", GP_ARGS(gp_text("lease-pipe")), &e),
                     GP_OK);
    assert_int_equal(gp_pipeline_run(c, pl, &e), GP_OK);
    assert_int_equal(gp_test_int(gp_pipeline_result(pl, 1), 0, 0), 1);
    assert_int_equal(owner_count("lease-pipe"), 1);
    /* transactions: commit lands, rollback does not */
    assert_int_equal(gp_tx_begin(c, NULL, &e), GP_OK);
    assert_int_equal(tx_fn_insert(c, "tx-commit", &e), GP_OK);
    assert_int_equal(gp_pipeline_run(c, pl, &e), GP_OK); /* a pipeline inside the caller's transaction */
    assert_int_equal(gp_tx_commit(c, &e), GP_OK);
    assert_int_equal(owner_count("tx-commit"), 1);
    assert_int_equal(owner_count("lease-pipe"), 2);
    assert_int_equal(gp_tx_begin(c, &(gp_tx_opts_t){.isolation = GP_ISOLATION_SERIALIZABLE}, &e), GP_OK);
    assert_int_equal(tx_fn_insert(c, "tx-rollback", &e), GP_OK);
    assert_int_equal(gp_tx_savepoint(c, "s1", &e), GP_OK);
    assert_int_equal(gp_exec(c, "SELECT 1/0", 0, NULL, NULL, &e), GP_ERR_SERVER);
    assert_int_equal(gp_tx_rollback_to(c, "s1", &e), GP_OK);
    assert_int_equal(gp_tx_rollback(c, &e), GP_OK);
    assert_int_equal(owner_count("tx-rollback"), 0);
    int attempts = 0;
    assert_int_equal(gp_tx_run(c, NULL, tx_fn_insert, "tx-run", &attempts, &e), GP_OK);
    assert_int_equal(attempts, 1);
    assert_int_equal(owner_count("tx-run"), 1);
    /* a tenant transaction on the lease */
    gp_tenant_tx_t *tt = NULL;
    assert_int_equal(gp_tenant_begin(c, tenant_b, NULL, &tt, &e), GP_OK);
    gp_result_t *r = NULL;
    assert_int_equal(gp_tenant_tx_query(tt, "SELECT count(*) FROM menu_categories", 0, NULL, &r, &e), GP_OK);
    assert_int_equal(gp_test_int(r, 0, 0), B_ROWS);
    gp_result_free(r);
    assert_int_equal(gp_tenant_commit(tt, &e), GP_OK);
    gp_pool_release(c);

    /* one-shots on the pool */
    assert_int_equal(pool_scalar(p, "SELECT 6 * 7"), 42);
    assert_int_equal(gp_pool_exec(p, "INSERT INTO public.pooler_probe (tag) VALUES ($1)", GP_ARGS(gp_text("pool-exec")), &n, &e),
                     GP_OK);
    assert_int_equal(owner_count("pool-exec"), 1);
    gp_pipeline_clear(pl);
    assert_int_equal(gp_pipeline_add(pl, "SELECT $1::int4 + 1", GP_ARGS(gp_int32(1)), &e), GP_OK);
    assert_int_equal(gp_pipeline_add(pl, "SELECT $1::int4 + 2", GP_ARGS(gp_int32(1)), &e), GP_OK);
    assert_int_equal(gp_pool_pipeline_run(p, pl, &e), GP_OK);
    assert_int_equal(gp_test_int(gp_pipeline_result(pl, 0), 0, 0), 2);
    assert_int_equal(gp_test_int(gp_pipeline_result(pl, 1), 0, 0), 3);
    gp_pipeline_free(pl);
    /* tenant calls */
    assert_int_equal(gp_tenant_query(p, tenant_a, "SELECT count(*) FROM menu_categories", 0, NULL, &r, &e), GP_OK);
    assert_int_equal(gp_test_int(r, 0, 0), A_ROWS);
    gp_result_free(r);
    int64_t seen = 0;
    assert_int_equal(gp_tenant_run(p, tenant_b, NULL, tenant_fn_count, &seen, &attempts, &e), GP_OK);
    assert_int_equal(seen, B_ROWS);
    assert_int_equal(gp_tenant_run(p, tenant_a, &(gp_tx_opts_t){.read_only = true}, tenant_fn_count, &seen, NULL, &e), GP_OK);
    assert_int_equal(seen, A_ROWS);
    assert_int_equal(gp_tenant_exec(p, tenant_a, "UPDATE menu_categories SET position = position", 0, NULL, &n, &e), GP_OK);
    assert_int_equal(n, A_ROWS);
    /* reads (no read pool: the primary, READ ONLY) */
    assert_int_equal(gp_pool_read_query(p, NULL, "SELECT count(*) FROM public.pooler_probe WHERE tag = 'pool-exec'", 0, NULL,
                                        &r, &e),
                     GP_OK);
    assert_int_equal(gp_test_int(r, 0, 0), 1);
    gp_result_free(r);
    assert_int_equal(gp_pool_read_exec(p, NULL, "INSERT INTO public.pooler_probe (tag) VALUES ('read-write')", 0, NULL, &n, &e),
                     GP_ERR_SERVER);
    assert_string_equal(e.sqlstate, "25006");
    assert_int_not_equal(e.klass, GP_ECLASS_WRONG_SERVER);
    assert_int_equal(owner_count("read-write"), 0);
    assert_int_equal(gp_tenant_read_query(p, tenant_b, NULL, "SELECT count(*) FROM menu_categories", 0, NULL, &r, &e), GP_OK);
    assert_int_equal(gp_test_int(r, 0, 0), B_ROWS);
    gp_result_free(r);
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    assert_int_equal(m.reads[GP_READ_PRIMARY_NONE], 4); /* no read pool: the primary's (a read-only gp_tenant_run too) */
    assert_int_equal(m.reads[GP_READ_REPLICA], 0);
    assert_int_equal(m.open_failures, 0);
    assert_int_equal(m.closed[GP_CLOSE_BROKEN], 0);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
}

/* ---- DATABASE_STATEMENT_TIMEOUT, per transaction ----------------------------------- */

static gp_status_t tenant_fn_sleep(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    (void)ud;
    return gp_tenant_tx_exec(tx, "SELECT pg_sleep(3)", 0, NULL, NULL, err);
}

static gp_status_t tx_fn_sleep(gp_conn_t *conn, void *ud, gp_error_t *err)
{
    (void)ud;
    return gp_exec(conn, "SELECT pg_sleep(3)", 0, NULL, NULL, err);
}

static void expect_cancelled(gp_status_t st, const gp_error_t *e, double t0, const char *what)
{
    double took = now_ms() - t0;
    if (st != GP_ERR_TIMEOUT || strcmp(e->sqlstate, "57014") != 0)
        fprintf(stderr, "%s: status %d, SQLSTATE '%s': %s\n", what, st, e->sqlstate, e->message);
    assert_int_equal(st, GP_ERR_TIMEOUT);
    assert_string_equal(e->sqlstate, "57014");
    assert_true(took < 2500); /* the timeout ended it, not the 3 s sleep */
}

static void test_statement_timeout_per_transaction(void **state)
{
    (void)state;
    fixtures();
    gp_test_clear_logs();
    gp_test_capture_logs(GP_LOG_DEBUG);
    gp_pool_t *p = tx_pool(2, 150), *plain = tx_pool(1, 0);
    gp_error_t e;
    gp_result_t *r = NULL;
    assert_int_equal(gp_pool_query(p, "SHOW statement_timeout", 0, NULL, &r, &e), GP_OK);
    const char *v;
    assert_int_equal(gp_get_text(r, 0, 0, &v, NULL), GP_OK);
    assert_string_equal(v, "150ms");
    gp_result_free(r);
    double t0 = now_ms();
    expect_cancelled(gp_pool_exec(p, "SELECT pg_sleep(3)", 0, NULL, NULL, &e), &e, t0, "gp_pool_exec");
    t0 = now_ms();
    expect_cancelled(gp_tenant_query(p, tenant_a, "SELECT pg_sleep(3) FROM menu_categories", 0, NULL, &r, &e), &e, t0,
                     "gp_tenant_query");
    t0 = now_ms();
    expect_cancelled(gp_tenant_run(p, tenant_a, NULL, tenant_fn_sleep, NULL, NULL, &e), &e, t0, "gp_tenant_run");
    t0 = now_ms();
    expect_cancelled(gp_pool_read_query(p, NULL, "SELECT pg_sleep(3)", 0, NULL, &r, &e), &e, t0, "gp_pool_read_query");
    t0 = now_ms();
    expect_cancelled(gp_tenant_read_query(p, tenant_a, NULL, "SELECT pg_sleep(3)", 0, NULL, &r, &e), &e, t0,
                     "gp_tenant_read_query");
    gp_conn_t *c = NULL;
    assert_int_equal(gp_pool_acquire(p, "timeouts", -1, &c, &e), GP_OK);
    t0 = now_ms();
    expect_cancelled(gp_exec(c, "SELECT pg_sleep(3)", 0, NULL, NULL, &e), &e, t0, "gp_exec");
    t0 = now_ms();
    expect_cancelled(gp_tx_run(c, NULL, tx_fn_sleep, NULL, NULL, &e), &e, t0, "gp_tx_run");
    assert_int_equal(gp_tx_begin(c, NULL, &e), GP_OK);
    assert_int_equal(gp_exec(c, "SELECT pg_sleep(0.01)", 0, NULL, NULL, &e), GP_OK); /* under the bound: fine */
    t0 = now_ms();
    expect_cancelled(gp_exec(c, "SELECT pg_sleep(3)", 0, NULL, NULL, &e), &e, t0, "gp_exec in gp_tx");
    assert_int_equal(gp_tx_rollback(c, &e), GP_OK);
    gp_pipeline_t *pl = gp_pipeline_new();
    assert_int_equal(gp_pipeline_add(pl, "SELECT 1", 0, NULL, &e), GP_OK);
    assert_int_equal(gp_pipeline_add(pl, "SELECT pg_sleep(3)", 0, NULL, &e), GP_OK);
    t0 = now_ms();
    expect_cancelled(gp_pipeline_run(c, pl, &e), &e, t0, "gp_pipeline_run");
    gp_pipeline_free(pl);
    gp_tenant_tx_t *tt = NULL;
    assert_int_equal(gp_tenant_begin(c, tenant_b, NULL, &tt, &e), GP_OK);
    t0 = now_ms();
    expect_cancelled(gp_tenant_tx_exec(tt, "SELECT pg_sleep(3)", 0, NULL, NULL, &e), &e, t0, "gp_tenant_tx_exec");
    gp_tenant_rollback(tt, NULL);
    /* An explicit per-transaction timeout still wins. */
    assert_int_equal(gp_tx_begin(c, &(gp_tx_opts_t){.statement_timeout_ms = 2000}, &e), GP_OK);
    assert_int_equal(gp_exec(c, "SELECT pg_sleep(0.3)", 0, NULL, NULL, &e), GP_OK);
    assert_int_equal(gp_tx_commit(c, &e), GP_OK);
    int pid = conn_pid(c);
    gp_pool_release(c);
    /* The setting stayed in its transactions: the next client on the same
     * server connection has none. */
    assert_int_equal(gp_pool_query(plain, "SELECT pg_backend_pid(), current_setting('statement_timeout')", 0, NULL, &r, &e),
                     GP_OK);
    assert_int_equal(gp_test_int(r, 0, 0), pid);
    assert_int_equal(gp_get_text(r, 0, 1, &v, NULL), GP_OK);
    assert_string_equal(v, "0");
    gp_result_free(r);
    /* No connection failed: the timeout was never a startup parameter. */
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    assert_int_equal(m.open_failures, 0);
    assert_false(gp_test_logs_contain("unsupported startup parameter"));
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    assert_int_equal(gp_pool_close(plain, 1000), GP_OK);
    gp_log_set_handler(NULL, NULL, GP_LOG_OFF);
}

/* ---- the attacker and the victim --------------------------------------------------- */

/* Everything a session may keep, seen by the victim in one statement (one
 * unit, so on one server connection). Column 0 is the backend. */
static const char OBSERVE[] =
    "SELECT pg_backend_pid()::text,"
    " current_setting('search_path'), coalesce(current_setting('x.y', true), ''),"
    " coalesce(current_setting('growplate.tenant_token', true), ''), coalesce(current_setting('app.tenant_id', true), ''),"
    " current_setting('application_name'), current_setting('TimeZone'), current_setting('work_mem'),"
    " current_setting('default_transaction_isolation'), current_setting('statement_timeout'),"
    " current_user::text, session_user::text,"
    " (SELECT count(*) FROM pg_catalog.pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory')::text,"
    " (SELECT count(*) FROM pg_catalog.pg_listening_channels())::text,"
    " (SELECT count(*) FROM pg_catalog.pg_prepared_statements)::text,"
    " (SELECT count(*) FROM pg_catalog.pg_cursors WHERE name <> '')::text,"
    " coalesce(public.pooler_currval()::text, 'unset'), coalesce(public.pooler_lastval()::text, 'unset'),"
    " (SELECT count(*) FROM public.menu_categories)::text";
static const char *const OBSERVED[] = {
    "backend", "search_path", "x.y", "growplate.tenant_token", "app.tenant_id", "application_name", "TimeZone",
    "work_mem", "default_transaction_isolation", "statement_timeout", "current_user", "session_user",
    "advisory locks", "listening channels", "prepared statements", "cursors", "currval", "lastval",
    "rows visible without a tenant"};
#define NOBS ((int)(sizeof OBSERVED / sizeof *OBSERVED))

typedef struct observation {
    char v[NOBS][96];
} observation_t;

static void observe(gp_pool_t *victim, observation_t *o)
{
    gp_result_t *r = NULL;
    gp_error_t e;
    gp_status_t st = gp_pool_query(victim, OBSERVE, 0, NULL, &r, &e);
    if (st != GP_OK)
        fprintf(stderr, "victim: %s (%s)\n", e.message, e.sqlstate);
    assert_int_equal(st, GP_OK);
    assert_int_equal(gp_result_columns(r), NOBS);
    for (int i = 0; i < NOBS; i++) {
        const char *v = NULL;
        assert_int_equal(gp_get_text(r, 0, i, &v, NULL), GP_OK);
        snprintf(o->v[i], sizeof o->v[i], "%s", v);
    }
    gp_result_free(r);
}

static observation_t baseline;
static int victim_checks, leaks;

/* The victim on the server connection the attacker last used: assert that
 * it is that one, and that it sees what a fresh session sees. */
static void victim_sees_nothing(gp_pool_t *victim, int attacker_pid, const char *what)
{
    observation_t o;
    observe(victim, &o);
    if (atoi(o.v[0]) != attacker_pid)
        fprintf(stderr, "%s: the victim ran on backend %s, the attacker on %d: not the same server connection\n", what,
                o.v[0], attacker_pid);
    assert_int_equal(atoi(o.v[0]), attacker_pid);
    victim_checks++;
    for (int i = 1; i < NOBS; i++) {
        if (strcmp(o.v[i], baseline.v[i]) != 0) {
            fprintf(stderr, "LEAK after [%s]: the next client sees %s = '%s' (a fresh session: '%s')\n", what,
                    OBSERVED[i], o.v[i], baseline.v[i]);
            leaks++;
        }
    }
}

static void take_baseline(gp_pool_t *victim)
{
    observe(victim, &baseline);
    /* a fresh session's values, as far as they are known */
    assert_string_equal(baseline.v[1], "\"$user\", public");
    assert_string_equal(baseline.v[2], "");
    assert_string_equal(baseline.v[3], "");
    assert_string_equal(baseline.v[4], "");
    assert_string_equal(baseline.v[9], "0");
    assert_string_equal(baseline.v[10], "growplate_app");
    for (int i = 12; i < 16; i++)
        assert_string_equal(baseline.v[i], "0");
    assert_string_equal(baseline.v[16], "unset");
    assert_string_equal(baseline.v[17], "unset");
    assert_string_equal(baseline.v[18], "0");
}

typedef enum {
    ALLOWED,         /* runs; what it left is undone before the unit commits */
    REFUSED_VERDICT, /* runs, and the unit is refused before it commits: GP_ERR_INVALID, rolled back */
    REFUSED_BEFORE,  /* ends or opens a transaction: refused before anything is sent */
    SERVER_ERROR,    /* the server refuses it itself */
    REFUSED_OR_UNDONE, /* either refused as REFUSED_VERDICT, or let through and undone as ALLOWED */
} expect_t;

typedef struct attack {
    const char *sql;
    expect_t expect;
} attack_t;

static const attack_t attacks[] = {
    {"SET search_path = pg_catalog", ALLOWED},
    {"SET SESSION search_path TO public, pg_catalog", ALLOWED},
    {"set session application_name = 'attacker'", ALLOWED},
    {"SET TimeZone = 'Asia/Tokyo'", ALLOWED},
    {"SET work_mem = '77MB'", ALLOWED},
    {"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE", ALLOWED},
    {"SET statement_timeout = '5min'", ALLOWED},
    {"SELECT set_config('x.y', 'v', false)", ALLOWED},
    {"SELECT pg_catalog.set_config('search_path', 'pg_catalog', false)", ALLOWED},
    {"SELECT set_config('app.tenant_id', (SELECT id::text FROM tenants LIMIT 1), false)", ALLOWED},
    {"SELECT pg_advisory_lock(4242)", ALLOWED},
    {"SELECT pg_advisory_lock_shared(4243), pg_try_advisory_lock(1, 2)", ALLOWED},
    {"LISTEN attacker_channel", ALLOWED},
    {"SELECT nextval('public.pooler_seq')", ALLOWED},
    {"PREPARE attacker_stmt AS SELECT 1", REFUSED_OR_UNDONE},
    {"DECLARE attacker_cur CURSOR WITH HOLD FOR SELECT 1", REFUSED_OR_UNDONE},
    {"SET ROLE pooler_other", REFUSED_VERDICT},
    {"SELECT set_config('role', 'pooler_other', false)", REFUSED_VERDICT},
    {"CREATE TEMP TABLE attacker_tmp (x int)", SERVER_ERROR}, /* TEMPORARY is revoked from the application */
    {"COMMIT", REFUSED_BEFORE},
    {"/* x */ commit", REFUSED_BEFORE},
    {"  End", REFUSED_BEFORE},
    {"ABORT", REFUSED_BEFORE},
    {"ROLLBACK", REFUSED_BEFORE},
    {"rollback and chain", REFUSED_BEFORE},
    {"COMMIT AND CHAIN", REFUSED_BEFORE},
    {"PREPARE TRANSACTION 'x'", REFUSED_BEFORE},
    {"COMMIT PREPARED 'x'", REFUSED_BEFORE},
    {"BEGIN", REFUSED_BEFORE},
    {"start transaction", REFUSED_BEFORE},
    {"/* a /* nested */ comment */ COMMIT", REFUSED_BEFORE},
    {"-- a comment\n\tcommit", REFUSED_BEFORE},
    {"-- a comment ending in a carriage return\rCOMMIT", REFUSED_BEFORE}, /* PostgreSQL ends "--" at \r too */
    {"\f\vCOMMIT", REFUSED_BEFORE},
    {";COMMIT", REFUSED_BEFORE},     /* an empty statement first: still one command to the server */
    {" ; ; end work", REFUSED_BEFORE},
    {"COMMIT WORK", REFUSED_BEFORE},
    {"END TRANSACTION", REFUSED_BEFORE},
    {"ROLLBACK PREPARED 'x'", REFUSED_BEFORE},
    {"/* COMMIT */ SELECT 1", ALLOWED}, /* only a comment says it */
    /* transaction control from inside: the server refuses it in the unit's transaction block */
    {"DO $$BEGIN COMMIT; END$$", SERVER_ERROR},
    {"CALL public.pooler_commit()", SERVER_ERROR},
};
#define NATTACKS ((int)(sizeof attacks / sizeof *attacks))

static void expect_refusal(gp_status_t st, const gp_error_t *e, const attack_t *a, const char *how)
{
    if (st != GP_ERR_INVALID)
        fprintf(stderr, "[%s] %s: expected GP_ERR_INVALID, got %d (%s %s)\n", a->sql, how, st, e->sqlstate, e->message);
    assert_int_equal(st, GP_ERR_INVALID);
    assert_int_equal(e->klass, GP_ECLASS_CLIENT);
    assert_non_null(strstr(e->message, "transaction pooler"));
    if (a->expect == REFUSED_BEFORE)
        assert_non_null(strstr(e->message, "is not allowed as a statement through a transaction pooler"));
    else
        assert_non_null(strstr(e->message, "session-level state"));
}

/* One attack's outcome as it must be; `st` is the status of the call that
 * ran it. */
static void expect_outcome(gp_status_t st, const gp_error_t *e, const attack_t *a, const char *how)
{
    switch (a->expect) {
    case REFUSED_OR_UNDONE:
        if (st != GP_OK)
            expect_refusal(st, e, a, how);
        break;
    case ALLOWED:
        if (st != GP_OK)
            fprintf(stderr, "[%s] %s: %s\n", a->sql, how, e->message);
        assert_int_equal(st, GP_OK);
        break;
    case REFUSED_VERDICT:
    case REFUSED_BEFORE:
        expect_refusal(st, e, a, how);
        break;
    case SERVER_ERROR:
        if (st != GP_ERR_SERVER)
            fprintf(stderr, "[%s] %s: expected GP_ERR_SERVER, got %d (%s)\n", a->sql, how, st, e->message);
        assert_int_equal(st, GP_ERR_SERVER);
        break;
    }
}

/* Whether the write of a unit with this attack in it lands, given how the
 * unit ended. */
static long landed_if(const attack_t *a, gp_status_t st)
{
    return a->expect == ALLOWED || (a->expect == REFUSED_OR_UNDONE && st == GP_OK) ? 1 : 0;
}

static void test_one_shot_attacks(void **state)
{
    (void)state;
    fixtures();
    gp_pool_t *attacker = tx_pool(1, 0), *victim = tx_pool(1, 0);
    take_baseline(victim);
    leaks = 0;
    for (int i = 0; i < NATTACKS; i++) {
        const attack_t *a = &attacks[i];
        for (int via = 0; via < 2; via++) { /* gp_exec on a lease; gp_pool_exec */
            int pid = pid_of(attacker);
            gp_error_t e;
            gp_status_t st;
            if (via == 0) {
                gp_conn_t *c = NULL;
                assert_int_equal(gp_pool_acquire(attacker, "attacker", -1, &c, &e), GP_OK);
                st = gp_exec(c, a->sql, 0, NULL, NULL, &e);
                gp_pool_release(c);
            } else {
                st = gp_pool_exec(attacker, a->sql, 0, NULL, NULL, &e);
            }
            char what[160];
            snprintf(what, sizeof what, "%s, %s", a->sql, via ? "gp_pool_exec" : "gp_exec");
            expect_outcome(st, &e, a, what);
            victim_sees_nothing(victim, pid, what);
        }
    }
    /* A refused unit's write does not land: a data-modifying CTE with a
     * role switch. */
    int pid = pid_of(attacker);
    gp_error_t e;
    static const attack_t cte = {"WITH w AS (INSERT INTO public.pooler_probe (tag) VALUES ('cte-role') RETURNING 1) "
                                 "SELECT set_config('role', 'pooler_other', false) FROM w",
                                 REFUSED_VERDICT};
    expect_outcome(gp_pool_exec(attacker, cte.sql, 0, NULL, NULL, &e), &e, &cte, "gp_pool_exec");
    assert_int_equal(owner_count("cte-role"), 0);
    victim_sees_nothing(victim, pid, cte.sql);
    /* The attacker's statement also saw its own backend: the same one. */
    gp_result_t *r = NULL;
    assert_int_equal(gp_pool_query(attacker, "SELECT pg_backend_pid(), set_config('x.y', 'v', false), "
                                             "pg_advisory_lock(99), nextval('public.pooler_seq')", 0, NULL, &r, &e),
                     GP_OK);
    pid = (int)gp_test_int(r, 0, 0);
    gp_result_free(r);
    victim_sees_nothing(victim, pid, "several at once");
    fprintf(stderr, "one-shots: %d attacks, %d victim checks on the attacker's server connection, %d leaks\n",
            NATTACKS * 2 + 2, victim_checks, leaks);
    assert_int_equal(leaks, 0);
    assert_int_equal(gp_pool_close(attacker, 1000), GP_OK);
    assert_int_equal(gp_pool_close(victim, 1000), GP_OK);
}

typedef struct attack_run {
    const char *tag, *sql;
} attack_run_t;

static gp_status_t tx_fn_attack(gp_conn_t *conn, void *ud, gp_error_t *err)
{
    const attack_run_t *a = ud;
    gp_status_t st = tx_fn_insert(conn, (void *)a->tag, err);
    return st == GP_OK ? gp_exec(conn, a->sql, 0, NULL, NULL, err) : st;
}

static void test_attacks_in_transactions(void **state)
{
    (void)state;
    fixtures();
    gp_pool_t *attacker = tx_pool(1, 0), *victim = tx_pool(1, 0);
    take_baseline(victim);
    leaks = 0;
    for (int i = 0; i < NATTACKS; i++) {
        const attack_t *a = &attacks[i];
        char tag[32];
        snprintf(tag, sizeof tag, "tx-attack-%d", i);
        gp_conn_t *c = NULL;
        gp_error_t e;
        assert_int_equal(gp_pool_acquire(attacker, "attacker", -1, &c, &e), GP_OK);
        assert_int_equal(gp_tx_begin(c, NULL, &e), GP_OK);
        int pid = conn_pid(c);
        assert_int_equal(tx_fn_insert(c, tag, &e), GP_OK);
        gp_status_t st = gp_exec(c, a->sql, 0, NULL, NULL, &e);
        gp_status_t cst = gp_tx_commit(c, &e);
        switch (a->expect) {
        case ALLOWED:
            expect_outcome(st, &e, a, "gp_exec in gp_tx");
            if (cst != GP_OK)
                fprintf(stderr, "[%s] commit: %s\n", a->sql, e.message);
            assert_int_equal(cst, GP_OK);
            assert_int_equal(owner_count(tag), 1);
            break;
        case REFUSED_OR_UNDONE:
            assert_int_equal(st, GP_OK);
            if (cst != GP_OK)
                expect_refusal(cst, &e, a, "gp_tx_commit");
            assert_int_equal(owner_count(tag), cst == GP_OK ? 1 : 0);
            break;
        case REFUSED_VERDICT: /* the statement runs; the commit is refused */
            assert_int_equal(st, GP_OK);
            expect_refusal(cst, &e, a, "gp_tx_commit");
            assert_int_equal(owner_count(tag), 0);
            break;
        case REFUSED_BEFORE: /* refused, and the transaction it tried to end does not commit */
        case SERVER_ERROR: {
            if (cst == GP_OK)
                fprintf(stderr, "[%s] in gp_tx: the commit after it succeeded\n", a->sql);
            assert_int_not_equal(cst, GP_OK);
            long landed = owner_count(tag);
            if (landed)
                fprintf(stderr, "[%s] in gp_tx: the transaction's write landed\n", a->sql);
            assert_int_equal(landed, 0);
            break;
        }
        }
        if (a->expect == REFUSED_BEFORE || a->expect == SERVER_ERROR) {
            /* (the statement's own status, checked after the commit so that the report says which failed) */
            gp_error_t e2;
            gp_tx_begin(c, NULL, &e2);
            gp_status_t st2 = gp_exec(c, a->sql, 0, NULL, NULL, &e2);
            expect_outcome(st2, &e2, a, "gp_exec in gp_tx");
            gp_tx_rollback(c, NULL);
        }
        gp_pool_release(c);
        char what[160];
        snprintf(what, sizeof what, "%s, in gp_tx", a->sql);
        victim_sees_nothing(victim, pid, what);

        /* The same in gp_tx_run, whose body fails on a refusal. */
        pid = pid_of(attacker);
        snprintf(tag, sizeof tag, "tx-run-attack-%d", i);
        assert_int_equal(gp_pool_acquire(attacker, "attacker", -1, &c, &e), GP_OK);
        attack_run_t ar = {tag, a->sql};
        st = gp_tx_run(c, NULL, tx_fn_attack, &ar, NULL, &e);
        gp_pool_release(c);
        snprintf(what, sizeof what, "%s, in gp_tx_run", a->sql);
        expect_outcome(st, &e, a, what);
        assert_int_equal(owner_count(tag), landed_if(a, st));
        victim_sees_nothing(victim, pid, what);
    }
    fprintf(stderr, "transactions: %d attacks, %d leaks\n", NATTACKS, leaks);
    assert_int_equal(leaks, 0);
    assert_int_equal(gp_pool_close(attacker, 1000), GP_OK);
    assert_int_equal(gp_pool_close(victim, 1000), GP_OK);
}

static void test_attacks_in_pipelines(void **state)
{
    (void)state;
    fixtures();
    gp_pool_t *attacker = tx_pool(1, 0), *victim = tx_pool(1, 0);
    take_baseline(victim);
    leaks = 0;
    for (int i = 0; i < NATTACKS; i++) {
        const attack_t *a = &attacks[i];
        for (int via = 0; via < 2; via++) { /* gp_pipeline_run on a lease; gp_pool_pipeline_run */
            char tag[32], what[160];
            snprintf(tag, sizeof tag, "pipe-attack-%d-%d", i, via);
            snprintf(what, sizeof what, "%s, %s", a->sql, via ? "gp_pool_pipeline_run" : "gp_pipeline_run");
            int pid = pid_of(attacker);
            gp_error_t e;
            gp_pipeline_t *pl = gp_pipeline_new();
            assert_int_equal(gp_pipeline_add(pl, "INSERT INTO public.pooler_probe (tag) VALUES ($1)", GP_ARGS(gp_text(tag)), &e),
                             GP_OK);
            assert_int_equal(gp_pipeline_add(pl, "SELECT pg_backend_pid()", 0, NULL, &e), GP_OK);
            assert_int_equal(gp_pipeline_add(pl, a->sql, 0, NULL, &e), GP_OK);
            gp_status_t st;
            if (via == 0) {
                gp_conn_t *c = NULL;
                assert_int_equal(gp_pool_acquire(attacker, "attacker", -1, &c, &e), GP_OK);
                st = gp_pipeline_run(c, pl, &e);
                gp_pool_release(c);
            } else {
                st = gp_pool_pipeline_run(attacker, pl, &e);
            }
            expect_outcome(st, &e, a, what);
            if (st == GP_OK)
                assert_int_equal(gp_test_int(gp_pipeline_result(pl, 1), 0, 0), pid); /* the unit's own backend */
            if (a->expect == REFUSED_BEFORE)
                assert_int_equal(e.statement_index, 2);
            assert_int_equal(owner_count(tag), landed_if(a, st));
            gp_pipeline_free(pl);
            victim_sees_nothing(victim, pid, what);
        }
    }
    /* A refused statement in a pipeline inside the caller's transaction:
     * the transaction fails, the write before it does not land. */
    gp_conn_t *c = NULL;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(attacker, "attacker", -1, &c, &e), GP_OK);
    assert_int_equal(gp_tx_begin(c, NULL, &e), GP_OK);
    int pid = conn_pid(c);
    gp_pipeline_t *pl = gp_pipeline_new();
    assert_int_equal(gp_pipeline_add(pl, "INSERT INTO public.pooler_probe (tag) VALUES ('pipe-in-tx')", 0, NULL, &e), GP_OK);
    assert_int_equal(gp_pipeline_run(c, pl, &e), GP_OK);
    gp_pipeline_clear(pl);
    assert_int_equal(gp_pipeline_add(pl, "SELECT 1", 0, NULL, &e), GP_OK);
    assert_int_equal(gp_pipeline_add(pl, "-- done\rcommit", 0, NULL, &e), GP_OK);
    assert_int_equal(gp_pipeline_run(c, pl, &e), GP_ERR_INVALID);
    assert_int_equal(e.statement_index, 1);
    assert_int_not_equal(gp_tx_commit(c, &e), GP_OK);
    gp_pipeline_free(pl);
    gp_pool_release(c);
    assert_int_equal(owner_count("pipe-in-tx"), 0);
    victim_sees_nothing(victim, pid, "a refused COMMIT in a pipeline inside gp_tx");
    fprintf(stderr, "pipelines: %d attacks, %d leaks\n", NATTACKS * 2, leaks);
    assert_int_equal(leaks, 0);
    assert_int_equal(gp_pool_close(attacker, 1000), GP_OK);
    assert_int_equal(gp_pool_close(victim, 1000), GP_OK);
}

/* ---- what the refusals recommend works ----------------------------------------------- */

/* Transaction-local forms, which end with the transaction, commit through
 * the pooler and leave nothing; a transaction-local role is refused, and
 * told so. */
static void test_transaction_local_forms_commit(void **state)
{
    (void)state;
    fixtures();
    gp_pool_t *attacker = tx_pool(1, 0), *victim = tx_pool(1, 0);
    take_baseline(victim);
    leaks = 0;
    static const char *const local[] = {
        "SET LOCAL search_path = pg_catalog",
        "SELECT set_config('x.y', 'v', true)",
        "SELECT pg_advisory_xact_lock(8181)",
        "DECLARE local_cur CURSOR FOR SELECT 1",
    };
    for (size_t i = 0; i < sizeof local / sizeof *local; i++) {
        char tag[32];
        snprintf(tag, sizeof tag, "local-%zu", i);
        gp_conn_t *c = NULL;
        gp_error_t e;
        assert_int_equal(gp_pool_acquire(attacker, "local", -1, &c, &e), GP_OK);
        assert_int_equal(gp_tx_begin(c, NULL, &e), GP_OK);
        int pid = conn_pid(c);
        assert_int_equal(tx_fn_insert(c, tag, &e), GP_OK);
        assert_int_equal(gp_exec(c, local[i], 0, NULL, NULL, &e), GP_OK);
        gp_status_t st = gp_tx_commit(c, &e);
        if (st != GP_OK)
            fprintf(stderr, "[%s] in gp_tx: the commit was refused: %s\n", local[i], e.message);
        assert_int_equal(st, GP_OK);
        gp_pool_release(c);
        assert_int_equal(owner_count(tag), 1);
        victim_sees_nothing(victim, pid, local[i]);
    }
    /* A role switched for the transaction only is refused all the same
     * (before the commit the verdict cannot tell SET LOCAL ROLE from SET
     * ROLE), and the refusal says so rather than recommend it. */
    static const attack_t local_role[] = {{"SET LOCAL ROLE pooler_other", REFUSED_VERDICT},
                                          {"SELECT set_config('role', 'pooler_other', true)", REFUSED_VERDICT}};
    for (int i = 0; i < 2; i++) {
        gp_conn_t *c = NULL;
        gp_error_t e;
        assert_int_equal(gp_pool_acquire(attacker, "local", -1, &c, &e), GP_OK);
        assert_int_equal(gp_tx_begin(c, NULL, &e), GP_OK);
        int pid = conn_pid(c);
        assert_int_equal(tx_fn_insert(c, "local-role", &e), GP_OK);
        assert_int_equal(gp_exec(c, local_role[i].sql, 0, NULL, NULL, &e), GP_OK);
        expect_refusal(gp_tx_commit(c, &e), &e, &local_role[i], "gp_tx_commit");
        assert_non_null(strstr(e.message, "SET LOCAL ROLE too"));
        assert_null(strstr(e.message, "Use SET LOCAL ROLE"));
        gp_pool_release(c);
        victim_sees_nothing(victim, pid, local_role[i].sql);
    }
    assert_int_equal(owner_count("local-role"), 0);
    /* Savepoints, in every spelling of ROLLBACK ... TO, keep the transaction. */
    static const char *const back_to[] = {"ROLLBACK TO SAVEPOINT s", "rollback to s", "ROLLBACK WORK TO SAVEPOINT s",
                                          "ROLLBACK TRANSACTION /* x */ TO s"};
    for (int i = 0; i < 4; i++) {
        gp_conn_t *c = NULL;
        gp_error_t e;
        char tag[32];
        snprintf(tag, sizeof tag, "savepoint-%d", i);
        assert_int_equal(gp_pool_acquire(attacker, "local", -1, &c, &e), GP_OK);
        assert_int_equal(gp_tx_begin(c, NULL, &e), GP_OK);
        assert_int_equal(tx_fn_insert(c, tag, &e), GP_OK);
        assert_int_equal(gp_exec(c, "SAVEPOINT s", 0, NULL, NULL, &e), GP_OK);
        assert_int_equal(gp_exec(c, "INSERT INTO public.pooler_probe (tag) VALUES ('savepoint-undone')", 0, NULL, NULL, &e),
                         GP_OK);
        gp_status_t st = gp_exec(c, back_to[i], 0, NULL, NULL, &e);
        if (st != GP_OK)
            fprintf(stderr, "[%s]: %s\n", back_to[i], e.message);
        assert_int_equal(st, GP_OK);
        assert_int_equal(gp_tx_commit(c, &e), GP_OK);
        gp_pool_release(c);
        assert_int_equal(owner_count(tag), 1);
    }
    assert_int_equal(owner_count("savepoint-undone"), 0);
    fprintf(stderr, "transaction-local forms: %zu committed, %d leaks\n", sizeof local / sizeof *local, leaks);
    assert_int_equal(leaks, 0);
    assert_int_equal(gp_pool_close(attacker, 1000), GP_OK);
    assert_int_equal(gp_pool_close(victim, 1000), GP_OK);
}

/* ---- units that fail half-way leave nothing either --------------------------------- */

static gp_status_t tx_fn_state_then_fail(gp_conn_t *conn, void *ud, gp_error_t *err)
{
    (void)ud;
    static const char *const steps[] = {
        "INSERT INTO public.pooler_probe (tag) VALUES ('failed-run')",
        "SELECT nextval('public.pooler_seq')",
        "SELECT pg_advisory_lock(5151)",
        "SELECT set_config('x.y', 'v', false)",
        "SET search_path = pg_catalog",
        "LISTEN failed_channel",
        "PREPARE failed_stmt AS SELECT 1",
        "SELECT 1 / (SELECT 0)",
    };
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        gp_status_t st = gp_exec(conn, steps[i], 0, NULL, NULL, err);
        if (st != GP_OK)
            return st;
    }
    return GP_OK;
}

static void test_failed_units_leave_nothing(void **state)
{
    (void)state;
    fixtures();
    gp_pool_t *attacker = tx_pool(1, 0), *victim = tx_pool(1, 0);
    take_baseline(victim);
    leaks = 0;
    gp_error_t e;
    /* One-shots that fail after their state was made. */
    static const char *const one_shots[] = {
        "SELECT nextval('public.pooler_seq') / 0",
        "SELECT CASE WHEN pg_try_advisory_lock(6161) THEN 1 / (SELECT 0) END",
        "SELECT CASE WHEN set_config('x.y', 'v', false) = 'v' THEN 1 / (SELECT 0) END",
        "SELECT CASE WHEN set_config('search_path', 'pg_catalog', false) <> '' THEN 1 / (SELECT 0) END",
        "WITH w AS (INSERT INTO public.pooler_probe (tag) VALUES ('failed-one-shot') RETURNING id) "
        "SELECT nextval('public.pooler_seq') / 0 FROM w",
    };
    for (size_t i = 0; i < sizeof one_shots / sizeof *one_shots; i++) {
        int pid = pid_of(attacker);
        assert_int_equal(gp_pool_exec(attacker, one_shots[i], 0, NULL, NULL, &e), GP_ERR_SERVER);
        assert_string_equal(e.sqlstate, "22012");
        victim_sees_nothing(victim, pid, one_shots[i]);
    }
    assert_int_equal(owner_count("failed-one-shot"), 0);
    /* A transaction that made state of every kind, then failed: rolled
     * back by gp_tx_run, by gp_tx_rollback, by the COMMIT of a failed
     * transaction, and by the pool on release. */
    for (int how = 0; how < 4; how++) {
        gp_conn_t *c = NULL;
        assert_int_equal(gp_pool_acquire(attacker, "attacker", -1, &c, &e), GP_OK);
        int pid = conn_pid(c);
        if (how == 0) {
            assert_int_equal(gp_tx_run(c, NULL, tx_fn_state_then_fail, NULL, NULL, &e), GP_ERR_SERVER);
        } else {
            assert_int_equal(gp_tx_begin(c, NULL, &e), GP_OK);
            assert_int_equal(tx_fn_state_then_fail(c, NULL, &e), GP_ERR_SERVER);
            if (how == 1)
                assert_int_equal(gp_tx_rollback(c, &e), GP_OK);
            else if (how == 2)
                assert_int_equal(gp_tx_commit(c, &e), GP_ERR_SERVER);
        }
        gp_pool_release(c);
        char what[64];
        snprintf(what, sizeof what, "state, then a failure (ended by way %d)", how);
        victim_sees_nothing(victim, pid, what);
    }
    assert_int_equal(owner_count("failed-run"), 0);
    /* A pipeline that failed half-way. */
    int pid = pid_of(attacker);
    gp_pipeline_t *pl = gp_pipeline_new();
    assert_int_equal(gp_pipeline_add(pl, "SELECT nextval('public.pooler_seq')", 0, NULL, &e), GP_OK);
    assert_int_equal(gp_pipeline_add(pl, "SELECT pg_advisory_lock(7171)", 0, NULL, &e), GP_OK);
    assert_int_equal(gp_pipeline_add(pl, "PREPARE failed_pipe AS SELECT 1", 0, NULL, &e), GP_OK);
    assert_int_equal(gp_pipeline_add(pl, "SELECT 1 / (SELECT 0)", 0, NULL, &e), GP_OK);
    assert_int_equal(gp_pool_pipeline_run(attacker, pl, &e), GP_ERR_SERVER);
    assert_int_equal(e.statement_index, 3);
    gp_pipeline_free(pl);
    victim_sees_nothing(victim, pid, "a pipeline that failed half-way");
    fprintf(stderr, "failed units: %d leaks\n", leaks);
    assert_int_equal(leaks, 0);
    assert_int_equal(gp_pool_close(attacker, 1000), GP_OK);
    assert_int_equal(gp_pool_close(victim, 1000), GP_OK);
}

/* ---- the client gives up mid-unit (DATABASE_QUERY_TIMEOUT) ------------------------ */

static long owner_scalar(const char *sql)
{
    PGconn *c = owner_conn();
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    long n = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return n;
}

/* The library's client-side deadline closes its connection to PgBouncer
 * while the server is still inside the unit, after it took a session
 * advisory lock and a sequence value: no verdict and no neutraliser ran.
 * PgBouncer must not hand that server connection to anyone: it is closed,
 * and the lock goes with it. */
static void test_client_deadline_mid_unit(void **state)
{
    (void)state;
    fixtures();
    gp_pool_t *attacker = tx_pool_q(1, 0, 300), *victim = tx_pool(1, 0);
    gp_error_t e;
    for (int how = 0; how < 2; how++) { /* a one-shot; a statement of a gp_tx */
        int pid = 0;
        gp_status_t st;
        double t0 = now_ms();
        if (how == 0) {
            pid = pid_of(attacker); /* the server it will most likely get */
            st = gp_pool_exec(attacker, "SELECT pg_advisory_lock(9191), nextval('public.pooler_seq'), pg_sleep(2)", 0,
                              NULL, NULL, &e);
        } else {
            gp_conn_t *c = NULL;
            assert_int_equal(gp_pool_acquire(attacker, "deadline", -1, &c, &e), GP_OK);
            assert_int_equal(gp_tx_begin(c, NULL, &e), GP_OK);
            pid = conn_pid(c);
            assert_int_equal(gp_exec(c, "SELECT pg_advisory_lock(9191), nextval('public.pooler_seq'), "
                                        "set_config('x.y', 'v', false)", 0, NULL, NULL, &e), GP_OK);
            st = gp_exec(c, "SELECT pg_sleep(2)", 0, NULL, NULL, &e);
            gp_pool_release(c);
        }
        /* A one-shot (its own transaction) without an answer may have
         * committed; a statement inside the caller's transaction did not. */
        assert_int_equal(st, how == 0 ? GP_ERR_COMMIT_UNKNOWN : GP_ERR_TIMEOUT);
        assert_true(now_ms() - t0 < 1500);
        /* The victim meanwhile: never on that backend, never with the lock. */
        int seen = 0;
        for (int i = 0; i < 5; i++) {
            gp_result_t *r = NULL;
            assert_int_equal(gp_pool_query(victim, "SELECT pg_backend_pid(), (SELECT count(*) FROM pg_catalog.pg_locks "
                                                   "WHERE pid = pg_backend_pid() AND locktype = 'advisory'), "
                                                   "coalesce(public.pooler_currval()::text, 'unset'), "
                                                   "coalesce(current_setting('x.y', true), '')", 0, NULL, &r, &e),
                             GP_OK);
            const char *cur, *xy;
            gp_get_text(r, 0, 2, &cur, NULL);
            gp_get_text(r, 0, 3, &xy, NULL);
            if (gp_test_int(r, 0, 0) == pid)
                seen++;
            assert_int_equal(gp_test_int(r, 0, 1), 0);
            assert_string_equal(cur, "unset");
            assert_string_equal(xy, "");
            gp_result_free(r);
        }
        assert_int_equal(seen, 0);
        /* and the backend goes away (once its sleep ends and it finds its
         * client gone), its lock with it */
        char q[160];
        snprintf(q, sizeof q, "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = %d", pid);
        bool gone = false;
        for (double t1 = now_ms(); !gone && now_ms() - t1 < 10000;) {
            gone = owner_scalar(q) == 0;
            if (!gone)
                gp_test_pause_ms(20);
        }
        assert_true(gone);
        assert_int_equal(owner_scalar("SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND objid = 9191"),
                         0);
        fprintf(stderr, "client deadline mid-unit (%s): the server connection was closed, not handed on\n",
                how ? "in gp_tx" : "one-shot");
    }
    assert_int_equal(gp_pool_close(attacker, 1000), GP_OK);
    assert_int_equal(gp_pool_close(victim, 1000), GP_OK);
}

/* ---- tenants through the pooler ------------------------------------------------- */

/* What tenant `t` sees through gp_tenant_query: the backend, the rows, and
 * whether all of them are its own. */
static void tenant_sees(gp_pool_t *p, const char *t, int *pid, int64_t *rows, int64_t *foreign)
{
    gp_result_t *r = NULL;
    gp_error_t e;
    gp_status_t st = gp_tenant_query(p, t, "SELECT pg_backend_pid(), count(*), count(*) FILTER (WHERE tenant_id <> $1::uuid "
                                           "OR left(name, 1) <> $2) FROM menu_categories",
                                     GP_ARGS(gp_text(t), gp_text(t == tenant_a ? "A" : "B")), &r, &e);
    if (st != GP_OK)
        fprintf(stderr, "tenant read: %s\n", e.message);
    assert_int_equal(st, GP_OK);
    *pid = (int)gp_test_int(r, 0, 0);
    *rows = gp_test_int(r, 0, 1);
    *foreign = gp_test_int(r, 0, 2);
    gp_result_free(r);
}

typedef struct tenant_unit {
    int how;   /* 0: read; 1: insert then fail; 2: make the context session-level, then fail */
    int pid;
    int64_t rows, foreign;
} tenant_unit_t;

static gp_status_t tenant_fn_unit(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    tenant_unit_t *u = ud;
    gp_result_t *r = NULL;
    gp_status_t st = gp_tenant_tx_query(tx, "SELECT pg_backend_pid(), count(*), count(*) FILTER (WHERE tenant_id <> "
                                            "public.growplate_tenant()) FROM menu_categories", 0, NULL, &r, err);
    if (st != GP_OK)
        return st;
    u->pid = (int)gp_test_int(r, 0, 0);
    u->rows = gp_test_int(r, 0, 1);
    u->foreign = gp_test_int(r, 0, 2);
    gp_result_free(r);
    if (u->how == 1)
        st = gp_tenant_tx_exec(tx, "INSERT INTO menu_categories (tenant_id, name) VALUES (public.growplate_tenant(), "
                                   "'A-half-way')", 0, NULL, NULL, err);
    else if (u->how == 2)
        st = gp_tenant_tx_exec(tx, "SELECT set_config('growplate.tenant_token', current_setting('growplate.tenant_token'), "
                                   "false)", 0, NULL, NULL, err);
    if (st == GP_OK && u->how)
        st = gp_tenant_tx_exec(tx, "SELECT 1 / (SELECT 0)", 0, NULL, NULL, err);
    return st;
}

static void test_tenant_context_never_reaches_another_client(void **state)
{
    (void)state;
    fixtures();
    gp_pool_t *pa = tx_pool(1, 0), *pb = tx_pool(1, 0);
    gp_error_t e;
    int pid, pid2;
    int64_t rows, foreign;
    tenant_sees(pb, tenant_b, &pid, &rows, &foreign);
    assert_int_equal(rows, B_ROWS); /* the control: B sees its rows */
    assert_int_equal(foreign, 0);
    take_baseline(pb);
    leaks = 0;
    for (int round = 0; round < 5; round++) {
        /* B's context made session-level (a one-shot), then A on the same
         * server connection. */
        gp_result_t *r = NULL;
        assert_int_equal(gp_tenant_query(pb, tenant_b, "SELECT pg_backend_pid(), set_config('growplate.tenant_token', "
                                                       "current_setting('growplate.tenant_token'), false)", 0, NULL, &r, &e),
                         GP_OK);
        pid = (int)gp_test_int(r, 0, 0);
        gp_result_free(r);
        tenant_sees(pa, tenant_a, &pid2, &rows, &foreign);
        assert_int_equal(pid2, pid);
        assert_int_equal(rows, A_ROWS);
        assert_int_equal(foreign, 0);
        /* and a client with no tenant sees nothing, and no token */
        r = NULL;
        assert_int_equal(gp_tenant_query(pb, tenant_b, "SELECT pg_backend_pid(), set_config('growplate.tenant_token', "
                                                       "current_setting('growplate.tenant_token'), false), 1 / (SELECT 0)",
                                         0, NULL, &r, &e),
                         GP_ERR_SERVER); /* the same, failing half-way */
        victim_sees_nothing(pa, pid_of(pb), "tenant B's token made session-level");
        /* B's scoped transactions failing half-way (an insert, the token
         * made session-level), then A on the same server connection. */
        for (int how = 1; how <= 2; how++) {
            tenant_unit_t u = {how, 0, 0, 0};
            assert_int_equal(gp_tenant_run(pb, tenant_b, NULL, tenant_fn_unit, &u, NULL, &e), GP_ERR_SERVER);
            assert_int_equal(u.rows, B_ROWS);
            assert_int_equal(u.foreign, 0);
            tenant_unit_t v = {0, 0, 0, 0};
            assert_int_equal(gp_tenant_run(pa, tenant_a, NULL, tenant_fn_unit, &v, NULL, &e), GP_OK);
            assert_int_equal(v.pid, u.pid);
            assert_int_equal(v.rows, A_ROWS);
            assert_int_equal(v.foreign, 0);
            tenant_sees(pa, tenant_a, &pid2, &rows, &foreign);
            assert_int_equal(rows, A_ROWS);
            assert_int_equal(foreign, 0);
            victim_sees_nothing(pa, pid_of(pb), "tenant B's transaction failed half-way");
        }
        /* A tenant transaction on a lease, failed and rolled back, then
         * the other tenant's one-shot. */
        gp_conn_t *c = NULL;
        assert_int_equal(gp_pool_acquire(pb, "b", -1, &c, &e), GP_OK);
        gp_tenant_tx_t *tt = NULL;
        assert_int_equal(gp_tenant_begin(c, tenant_b, NULL, &tt, &e), GP_OK);
        r = NULL;
        assert_int_equal(gp_tenant_tx_query(tt, "SELECT pg_backend_pid()", 0, NULL, &r, &e), GP_OK);
        pid = (int)gp_test_int(r, 0, 0);
        gp_result_free(r);
        assert_int_equal(gp_tenant_tx_exec(tt, "SELECT set_config('growplate.tenant_token', "
                                               "current_setting('growplate.tenant_token'), false)", 0, NULL, NULL, &e),
                         GP_OK);
        assert_int_equal(gp_tenant_tx_exec(tt, "ABORT", 0, NULL, NULL, &e), GP_ERR_INVALID);
        assert_int_not_equal(gp_tenant_commit(tt, &e), GP_OK);
        gp_pool_release(c);
        tenant_sees(pa, tenant_a, &pid2, &rows, &foreign);
        assert_int_equal(pid2, pid);
        assert_int_equal(rows, A_ROWS);
        assert_int_equal(foreign, 0);
        /* B's half-way insert never landed */
        assert_int_equal(gp_tenant_query(pb, tenant_b, "SELECT count(*) FROM menu_categories", 0, NULL, &r, &e), GP_OK);
        assert_int_equal(gp_test_int(r, 0, 0), B_ROWS);
        gp_result_free(r);
    }
    fprintf(stderr, "tenants: %d leaks\n", leaks);
    assert_int_equal(leaks, 0);
    assert_int_equal(gp_pool_close(pa, 1000), GP_OK);
    assert_int_equal(gp_pool_close(pb, 1000), GP_OK);
}

/* ---- no named statements: many clients, one PgBouncer ------------------------------ */

#define THREADS 8
#define OPS 60

typedef struct worker {
    int id;
    gp_pool_t *pool;
    int done, wrong, failed;
    char last[256];
} worker_t;

static void worker_failed(worker_t *w, const char *what, const gp_error_t *e)
{
    w->failed++;
    snprintf(w->last, sizeof w->last, "%s: %s (SQLSTATE %s)", what, e->message, e->sqlstate);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    char sql1[128], sql2[128];
    /* statements of this thread's own, with its own parameters */
    snprintf(sql1, sizeof sql1, "SELECT $1::int8 * 1000 + %d, $2::text || '-w%d'", w->id, w->id);
    snprintf(sql2, sizeof sql2, "SELECT $1::int8 + %d, (SELECT count(*) FROM pg_catalog.pg_prepared_statements)", 100 * w->id);
    for (int k = 0; k < OPS; k++) {
        gp_error_t e;
        char word[32], want[48];
        snprintf(word, sizeof word, "k%d", k);
        snprintf(want, sizeof want, "k%d-w%d", k, w->id);
        gp_value_t p1[2] = {gp_int64(k), gp_text(word)}, p2[1] = {gp_int64(k)};
        int64_t a = -1, b = -1, named = -1;
        const char *text = "";
        gp_result_t *r = NULL, *r2 = NULL;
        switch (k % 4) {
        case 0: /* a one-shot */
            if (gp_pool_query(w->pool, sql1, 2, p1, &r, &e) != GP_OK) {
                worker_failed(w, "gp_pool_query", &e);
                continue;
            }
            break;
        case 1: { /* a transaction of two statements */
            gp_conn_t *c = NULL;
            if (gp_pool_acquire(w->pool, "worker", -1, &c, &e) != GP_OK) {
                worker_failed(w, "acquire", &e);
                continue;
            }
            if (gp_tx_begin(c, NULL, &e) != GP_OK || gp_query(c, sql1, 2, p1, &r, &e) != GP_OK ||
                gp_query(c, sql2, 1, p2, &r2, &e) != GP_OK || gp_tx_commit(c, &e) != GP_OK) {
                worker_failed(w, "transaction", &e);
                gp_tx_rollback(c, NULL);
                gp_pool_release(c);
                gp_result_free(r);
                gp_result_free(r2);
                continue;
            }
            gp_pool_release(c);
            break;
        }
        case 2: { /* a pipeline */
            gp_pipeline_t *pl = gp_pipeline_new();
            if (gp_pipeline_add(pl, sql1, 2, p1, &e) != GP_OK || gp_pipeline_add(pl, sql2, 1, p2, &e) != GP_OK ||
                gp_pool_pipeline_run(w->pool, pl, &e) != GP_OK) {
                worker_failed(w, "pipeline", &e);
                gp_pipeline_free(pl);
                continue;
            }
            a = gp_test_int(gp_pipeline_result(pl, 0), 0, 0);
            gp_get_text(gp_pipeline_result(pl, 0), 0, 1, &text, NULL);
            if (a != k * 1000 + w->id || strcmp(text, want) != 0)
                w->wrong++;
            b = gp_test_int(gp_pipeline_result(pl, 1), 0, 0);
            named = gp_test_int(gp_pipeline_result(pl, 1), 0, 1);
            if (b != k + 100 * w->id || named != 0)
                w->wrong++;
            gp_pipeline_free(pl);
            w->done++;
            continue;
        }
        case 3: { /* a tenant's read */
            const char *t = w->id % 2 ? tenant_a : tenant_b;
            if (gp_tenant_query(w->pool, t, "SELECT count(*) FILTER (WHERE tenant_id = $1::uuid), count(*), $2::int8 + 0 "
                                            "FROM menu_categories", GP_ARGS(gp_text(t), gp_int64(k * 7 + w->id)), &r, &e) != GP_OK) {
                worker_failed(w, "gp_tenant_query", &e);
                continue;
            }
            int64_t own = gp_test_int(r, 0, 0), all = gp_test_int(r, 0, 1), echo = gp_test_int(r, 0, 2);
            if (own != all || all != (w->id % 2 ? A_ROWS : B_ROWS) || echo != k * 7 + w->id)
                w->wrong++;
            gp_result_free(r);
            w->done++;
            continue;
        }
        }
        a = gp_test_int(r, 0, 0);
        gp_get_text(r, 0, 1, &text, NULL);
        if (a != k * 1000 + w->id || strcmp(text, want) != 0)
            w->wrong++;
        if (r2) {
            b = gp_test_int(r2, 0, 0);
            named = gp_test_int(r2, 0, 1);
            if (b != k + 100 * w->id || named != 0)
                w->wrong++;
        }
        gp_result_free(r);
        gp_result_free(r2);
        w->done++;
    }
    return NULL;
}

static void test_no_named_statements_under_concurrency(void **state)
{
    (void)state;
    fixtures();
    /* The process-wide statement cache on (as another part of the program
     * may set it): a pool through the transaction pooler names nothing all
     * the same. */
    int cache_before = gp_query_statement_cache();
    assert_int_equal(gp_query_set_statement_cache(64), GP_OK);
    gp_pool_t *pools[2] = {tx_pool(4, 5000), tx_pool(4, 0)};
    worker_t w[THREADS];
    pthread_t th[THREADS];
    double t0 = now_ms();
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){.id = i, .pool = pools[i % 2]};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    int done = 0, wrong = 0, failed = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        done += w[i].done;
        wrong += w[i].wrong;
        failed += w[i].failed;
        if (w[i].failed)
            fprintf(stderr, "worker %d: %d failed, last: %s\n", i, w[i].failed, w[i].last);
    }
    fprintf(stderr, "%d threads, 2 pools through PgBouncer: %d units in %.0f ms, %d wrong answers, %d failures\n", THREADS,
            done, now_ms() - t0, wrong, failed);
    assert_int_equal(failed, 0);
    assert_int_equal(wrong, 0);
    assert_int_equal(done, THREADS * OPS);
    for (int i = 0; i < 2; i++)
        assert_int_equal(gp_pool_close(pools[i], 2000), GP_OK);
    assert_int_equal(gp_query_set_statement_cache(cache_before), GP_OK);
}

/* Every unit restores the client's own application_name after its RESET
 * ALL (PgBouncer would otherwise keep the server connection's), from the
 * first unit of a fresh pool on, in one-shots and in transactions. */
static void test_application_name_survives_units(void **state)
{
    (void)state;
    gp_config_t cfg;
    config_for(&cfg, pooler_url);
    keyed(&cfg);
    cfg.db.pooler = "transaction";
    cfg.db.pool_max = 1;
    cfg.db.application_name = "gp-test-appname-0123456789abcdefghij";
    gp_pool_t *p = gp_test_pool(&cfg);
    gp_error_t e;
    for (int i = 0; i < 4; i++) {
        gp_result_t *r = NULL;
        assert_int_equal(gp_pool_query(p, "SELECT current_setting('application_name')", 0, NULL, &r, &e), GP_OK);
        const char *v = NULL;
        assert_int_equal(gp_get_text(r, 0, 0, &v, NULL), GP_OK);
        assert_string_equal(v, "gp-test-appname-0123456789abcdefghij");
        gp_result_free(r);
        gp_conn_t *c = NULL;
        assert_int_equal(gp_pool_acquire(p, "t", -1, &c, &e), GP_OK);
        assert_int_equal(gp_tx_begin(c, NULL, &e), GP_OK);
        assert_int_equal(gp_query(c, "SELECT current_setting('application_name')", 0, NULL, &r, &e), GP_OK);
        assert_int_equal(gp_get_text(r, 0, 0, &v, NULL), GP_OK);
        assert_string_equal(v, "gp-test-appname-0123456789abcdefghij");
        gp_result_free(r);
        assert_int_equal(gp_tx_commit(c, &e), GP_OK);
        gp_pool_release(c);
    }
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_refuses_a_pooler),
        cmocka_unit_test(test_session_pooler_is_allowed),
        cmocka_unit_test(test_transaction_mode_validation),
        cmocka_unit_test(test_application_name_survives_units),
        cmocka_unit_test(test_migrate_refuses_a_pooler),
        cmocka_unit_test(test_every_call_works),
        cmocka_unit_test(test_statement_timeout_per_transaction),
        cmocka_unit_test(test_one_shot_attacks),
        cmocka_unit_test(test_attacks_in_transactions),
        cmocka_unit_test(test_attacks_in_pipelines),
        cmocka_unit_test(test_transaction_local_forms_commit),
        cmocka_unit_test(test_failed_units_leave_nothing),
        cmocka_unit_test(test_client_deadline_mid_unit),
        cmocka_unit_test(test_tenant_context_never_reaches_another_client),
        cmocka_unit_test(test_no_named_statements_under_concurrency),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
