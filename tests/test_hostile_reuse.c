/* test_hostile_reuse.c — tenant A's single hostile call must leave nothing
 * on the pooled connection that tenant B's correct calls (on the very same
 * backend: a one-connection pool, and the pid is checked) could leak
 * through: settings (in every spelling), role, temporary objects, held
 * cursors, SQL-level prepared statements (including replacing the
 * library's own), LISTEN registrations, session advisory locks, raw libpq
 * use, COMMIT AND CHAIN. Each attack runs through every path a caller's SQL
 * can take: a tenant one-shot call, a plain lease, a pipeline and a
 * tenant transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_scratch.h"
#include "gp_test.h"
#include "gp_test_data.h"

static gp_scratch_t scratch;
static gp_config_t cfg;
static gp_pool_t *pool;
static char ta[37], tb[37];
static PGconn *admin;
static char timezone[64]; /* the server's default, read before any attack */

/* ---- helpers ------------------------------------------------------------------------- */

static bool is_null(const gp_result_t *r)
{
    bool n = false;
    assert_int_equal(gp_get_is_null(r, 0, 0, &n), GP_OK);
    return n;
}

static int64_t pool_scalar(const char *sql)
{
    gp_result_t *r = NULL;
    gp_error_t e;
    gp_status_t st = gp_pool_query(pool, sql, 0, NULL, &r, &e);
    if (st != GP_OK)
        fprintf(stderr, "%s: %s\n", sql, e.message);
    assert_int_equal(st, GP_OK);
    int64_t v = 0;
    if (!is_null(r))
        assert_int_equal(gp_get_int64(r, 0, 0, &v), GP_OK);
    gp_result_free(r);
    return v;
}

static const char *pool_text(const char *sql, char *buf, size_t len)
{
    gp_result_t *r = NULL;
    gp_error_t e;
    assert_int_equal(gp_pool_query(pool, sql, 0, NULL, &r, &e), GP_OK);
    const char *s = NULL;
    size_t n = 0;
    if (is_null(r))
        snprintf(buf, len, "(null)");
    else {
        assert_int_equal(gp_get_text(r, 0, 0, &s, &n), GP_OK);
        snprintf(buf, len, "%.*s", (int)n, s);
    }
    gp_result_free(r);
    return buf;
}

static int backend_pid(void) { return (int)pool_scalar("SELECT pg_backend_pid()::int8"); }

/* Everything a correct call can observe of the session, in one statement:
 * it must be the first thing B runs after A's attack (every call of the
 * library's ends by sweeping the session, so a second look would see a
 * clean one whatever A left). Unqualified names on purpose: a temporary
 * table would shadow them. */
#define OBSERVE                                                                                              \
    "SELECT pg_backend_pid()::int8, coalesce(public.growplate_tenant()::text, ''),"                     \
    " current_setting('search_path'), current_setting('work_mem'), current_setting('TimeZone'),"               \
    " (current_user = session_user)::int::int8,"                                                               \
    " (SELECT count(*) FROM pg_cursors WHERE name <> ''),"                                                     \
    " (SELECT count(*) FROM pg_prepared_statements WHERE from_sql),"                                           \
    " (SELECT count(*) FROM pg_listening_channels()),"                                                         \
    " (SELECT count(*) FROM pg_class WHERE relpersistence = 't'),"                                             \
    " (SELECT count(*) FROM menu_items), (SELECT count(*) FROM menu_items WHERE name LIKE 'b-%'),"             \
    " (SELECT count(*) FROM users WHERE tenant_id <> $1::uuid)"

static int64_t col_int(const gp_result_t *r, int col)
{
    int64_t v = -1;
    assert_int_equal(gp_get_int64(r, 0, col, &v), GP_OK);
    return v;
}

static const char *col_text(const gp_result_t *r, int col, char *buf, size_t len)
{
    const char *s;
    size_t n;
    assert_int_equal(gp_get_text(r, 0, col, &s, &n), GP_OK);
    snprintf(buf, len, "%.*s", (int)n, s);
    return buf;
}

/* What tenant B sees first on the one connection, then what a system call
 * without a tenant sees: exactly what a fresh connection shows. */
static void assert_pristine(int pid, const char *what)
{
    gp_result_t *r = NULL;
    gp_error_t e;
    char buf[256];
    for (int as_system = 0; as_system < 2; as_system++) {
        gp_value_t t = gp_text(tb);
        gp_status_t st = as_system ? gp_pool_query(pool, OBSERVE, 1, &t, &r, &e)
                                   : gp_tenant_query(pool, tb, OBSERVE, 1, &t, &r, &e);
        if (st != GP_OK)
            fprintf(stderr, "%s: tenant B's call failed: %s (%s)\n", what, e.message, e.sqlstate);
        assert_int_equal(st, GP_OK);
        if (col_int(r, 0) != pid)
            fprintf(stderr, "%s: the backend changed (%d -> %lld): not tried on the same one\n", what, pid,
                    (long long)col_int(r, 0));
        assert_int_equal(col_int(r, 0), pid);
        const char *setting = col_text(r, 1, buf, sizeof buf);
        if (strcmp(setting, as_system ? "" : tb) != 0)
            fprintf(stderr, "%s: the verified tenant is '%s'\n", what, setting);
        assert_string_equal(setting, as_system ? "" : tb);
        assert_string_equal(col_text(r, 2, buf, sizeof buf), "\"$user\", public");
        assert_string_equal(col_text(r, 3, buf, sizeof buf), "4MB");
        assert_string_equal(col_text(r, 4, buf, sizeof buf), timezone);
        static const char *const names[] = {NULL, NULL, NULL, NULL, NULL, "role switched", "cursors",
                                            "SQL-level prepared statements", "listen channels",
                                            "temporary relations"};
        static const int64_t want[] = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
        for (int c = 5; c <= 9; c++) {
            if (col_int(r, c) != want[c])
                fprintf(stderr, "%s: %s: %lld\n", what, names[c], (long long)col_int(r, c));
            assert_int_equal(col_int(r, c), want[c]);
        }
        int64_t all = col_int(r, 10), own = col_int(r, 11), other_users = col_int(r, 12);
        if (all != (as_system ? 0 : 2) || own != all || other_users != 0)
            fprintf(stderr, "%s: %s saw %lld items (%lld of B's), %lld users of other tenants\n", what,
                    as_system ? "a call without a tenant" : "tenant B", (long long)all, (long long)own,
                    (long long)other_users);
        assert_int_equal(all, as_system ? 0 : 2);
        assert_int_equal(own, all);
        assert_int_equal(other_users, 0);
        gp_result_free(r);
    }
    char sql[160], v[64];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %d", pid);
    if (strcmp(gp_scratch_value(admin, sql, v, sizeof v), "0") != 0)
        fprintf(stderr, "%s: the backend holds %s advisory locks\n", what, v);
    assert_string_equal(v, "0");
}

/* The paths a caller's SQL takes. */
typedef enum { VIA_ONE_SHOT, VIA_LEASE, VIA_PIPELINE, VIA_TENANT_TX, VIA_POOL_PIPELINE, VIA_POOL_TX, VIA_COUNT } via_t;
static const char *const via_name[] = {"one-shot", "lease", "pipeline", "tenant-tx", "pool pipeline",
                                       "pool pipeline transaction"};

static gp_status_t tx_fn(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    return gp_tenant_tx_exec(tx, ud, 0, NULL, NULL, err);
}

/* Tenant A's hostile call; its outcome does not matter (some fail by
 * design), only what it leaves behind. */
static void attack(via_t via, const char *sql)
{
    gp_error_t e;
    switch (via) {
    case VIA_ONE_SHOT:
        gp_tenant_exec(pool, ta, sql, 0, NULL, NULL, &e);
        break;
    case VIA_LEASE: {
        gp_conn_t *c;
        assert_int_equal(gp_pool_acquire(pool, "attacker", 5000, &c, &e), GP_OK);
        gp_exec(c, sql, 0, NULL, NULL, &e);
        gp_pool_release(c);
        break;
    }
    case VIA_PIPELINE: {
        gp_conn_t *c;
        assert_int_equal(gp_pool_acquire(pool, "attacker", 5000, &c, &e), GP_OK);
        gp_pipeline_t *p = gp_pipeline_new();
        assert_non_null(p);
        gp_pipeline_add(p, "SELECT 1", 0, NULL, &e);
        gp_pipeline_add(p, sql, 0, NULL, &e);
        gp_pipeline_run(c, p, &e);
        gp_pipeline_free(p);
        gp_pool_release(c);
        break;
    }
    case VIA_TENANT_TX:
        gp_tenant_run(pool, ta, NULL, tx_fn, (void *)sql, NULL, &e);
        break;
    case VIA_POOL_PIPELINE:
    case VIA_POOL_TX: { /* the sweep goes after the last statement, or just before a final COMMIT */
        gp_pipeline_t *p = gp_pipeline_new();
        assert_non_null(p);
        if (via == VIA_POOL_TX)
            gp_pipeline_add(p, "BEGIN", 0, NULL, &e);
        gp_pipeline_add(p, sql, 0, NULL, &e);
        if (via == VIA_POOL_TX)
            gp_pipeline_add(p, "commit;", 0, NULL, &e);
        gp_pool_pipeline_run(pool, p, &e);
        gp_pipeline_free(p);
        break;
    }
    default:
        break;
    }
}

static void try_everywhere(const char *what, const char *sql)
{
    for (int v = 0; v < VIA_COUNT; v++) {
        int pid = backend_pid();
        attack((via_t)v, sql);
        char label[300];
        snprintf(label, sizeof label, "%s via %s", what, via_name[v]);
        assert_pristine(pid, label);
    }
}

/* ---- fixtures ------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "hostile");
    gp_scratch_migrate(&scratch);
    gp_scratch_config(&scratch, &cfg);
    cfg.db.pool_min = 1;
    cfg.db.pool_max = 1; /* every call of every tenant on the same backend */
    gp_error_t e;
    if (gp_pool_create(&cfg, &pool, &e) != GP_OK) {
        fprintf(stderr, "pool: %s\n", e.message);
        return -1;
    }
    gp_test_data_tenant(pool, "hostile-a", ta);
    gp_test_data_tenant(pool, "hostile-b", tb);
    char cat[37], item[37];
    gp_test_data_category(pool, ta, "a-cat", 1, cat);
    gp_test_data_item(pool, ta, cat, "a-secret-1", 100, true, item);
    gp_test_data_item(pool, ta, cat, "a-secret-2", 100, true, item);
    gp_test_data_item(pool, ta, cat, "a-secret-3", 100, true, item);
    gp_test_data_category(pool, tb, "b-cat", 1, cat);
    gp_test_data_item(pool, tb, cat, "b-soup", 100, true, item);
    gp_test_data_item(pool, tb, cat, "b-salad", 100, true, item);
    admin = gp_scratch_connect(scratch.admin);
    pool_text("SELECT current_setting('TimeZone')", timezone, sizeof timezone);
    /* A role the application could switch to, as production roles often
     * allow (the audit reports the membership; the pool must cope). */
    gp_scratch_exec(admin, "DROP ROLE IF EXISTS gp_hostile_other; CREATE ROLE gp_hostile_other NOLOGIN;"
                           "GRANT gp_hostile_other TO growplate_app");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_pool_close(pool, 5000);
    gp_config_release(&cfg);
    gp_scratch_exec(admin, "DROP ROLE IF EXISTS gp_hostile_other");
    PQfinish(admin);
    gp_scratch_drop(&scratch);
    return 0;
}

/* ---- class 1: settings, in every spelling ----------------------------------------------- */

static void test_settings_every_spelling(void **state)
{
    (void)state;
    /* A's own genuine secret, kept for the session. */
    static const char a_secret[] =
        "SELECT set_config('growplate.tenant_token', current_setting('growplate.tenant_token'), false)";
    char work_mem[] = "SELECT set_config('work_mem', '64MB', false)";
    const char *const attacks[] = {
        a_secret,
        work_mem,
        "SET search_path = pg_catalog",
        "; SET search_path = pg_catalog",
        "\f SET search_path = pg_catalog",
        "/* x */ -- y\n set search_path = pg_catalog",
        "SELECT U&\"set\\005fconfig\"('search_path', 'pg_catalog', false)",
        "SELECT \"set_config\"('search_path', 'pg_catalog', false)",
        "SELECT pg_catalog . set_config('work_mem', '64MB', false)",
        "DO $$BEGIN EXECUTE 'SET search_path = pg_catalog'; END$$",
        "DO $$BEGIN PERFORM set_config('work_mem', '64MB', false); END$$",
        "WITH x AS (SELECT set_config('search_path', 'pg_catalog', false)) SELECT * FROM x",
        "SELECT 1 FROM (SELECT set_config('work_mem', '64MB', false)) s WHERE false",
        "SET SESSION work_mem = '64MB'",
        "RESET work_mem",
        "SET TIME ZONE 'Pacific/Auckland'",
    };
    for (size_t i = 0; i < sizeof attacks / sizeof *attacks; i++)
        try_everywhere(attacks[i], attacks[i]);
}

/* ---- class 2: what RESET ALL leaves ----------------------------------------------------- */

static void test_role(void **state)
{
    (void)state;
    try_everywhere("SET ROLE", "SET ROLE gp_hostile_other");
    try_everywhere("set_config role", "SELECT set_config('role', 'gp_hostile_other', false)");
    try_everywhere("SET ROLE in DO", "DO $$BEGIN EXECUTE 'SET ROLE gp_hostile_other'; END$$");
}

static void test_cursors(void **state)
{
    (void)state;
    try_everywhere("WITH HOLD cursor", "DECLARE leak CURSOR WITH HOLD FOR SELECT name FROM public.menu_items");
    try_everywhere("WITH HOLD cursor in DO",
                   "DO $$BEGIN EXECUTE 'DECLARE leak2 CURSOR WITH HOLD FOR SELECT name FROM public.menu_items'; END$$");
    /* The name is gone for B. */
    gp_error_t e;
    assert_int_not_equal(gp_tenant_exec(pool, tb, "FETCH ALL FROM leak", 0, NULL, NULL, &e), GP_OK);
}

static void test_prepared_listen_locks(void **state)
{
    (void)state;
    try_everywhere("PREPARE", "PREPARE leak AS SELECT name FROM public.menu_items");
    try_everywhere("PREPARE in DO", "DO $$BEGIN EXECUTE 'PREPARE leak3 AS SELECT 1'; END$$");
    try_everywhere("LISTEN", "LISTEN gp_hostile_orders");
    try_everywhere("LISTEN in DO", "DO $$BEGIN EXECUTE 'LISTEN gp_hostile_orders'; END$$");
    try_everywhere("advisory lock", "SELECT pg_advisory_lock(4242)");
    try_everywhere("advisory lock, then an error", "SELECT pg_advisory_lock(4243), 1/0");
    try_everywhere("shared advisory lock", "SELECT pg_advisory_lock_shared(4244)");
    try_everywhere("advisory lock in DO", "DO $$BEGIN PERFORM pg_advisory_lock(4245); END$$");
}

/* A notification sent to A's channel after A's call reaches nobody. */
static void test_notifications_not_delivered(void **state)
{
    (void)state;
    gp_error_t e;
    gp_tenant_exec(pool, ta, "LISTEN gp_hostile_feed", 0, NULL, NULL, &e);
    gp_scratch_exec(admin, "NOTIFY gp_hostile_feed, 'a-secret'");
    gp_conn_t *c;
    assert_int_equal(gp_pool_acquire(pool, "tenant-b", 5000, &c, &e), GP_OK);
    PGconn *pg = gp_conn_pgconn(c);
    PGresult *r = PQexec(pg, "SELECT 1"); /* gives libpq a chance to read anything pending */
    PQclear(r);
    PQconsumeInput(pg);
    PGnotify *n = PQnotifies(pg);
    if (n)
        fprintf(stderr, "tenant B received %s: %s\n", n->relname, n->extra);
    assert_null(n);
    gp_pool_release(c);
}

/* ---- class 3: the library's own statements ----------------------------------------------- */

/* Replace the library's tenant setter with one that sets A, under the
 * same name, in one statement: B's correct calls must still see B. */
static void test_statement_hijack(void **state)
{
    (void)state;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "DO $$DECLARE r record; BEGIN FOR r IN SELECT name, parameter_types FROM pg_prepared_statements "
             "WHERE statement LIKE '%%set_config%%tenant_token%%' OR statement LIKE '%%menu_items%%' LOOP "
             "EXECUTE format('DEALLOCATE %%I', r.name); "
             "EXECUTE format('PREPARE %%I(text) AS SELECT pg_catalog.set_config(''growplate.tenant_token'', %%L, true)', "
             "r.name, current_setting('growplate.tenant_token')); END LOOP; END$$");
    for (int round = 0; round < 2; round++) {
        /* warm the statements up, as B, then attack */
        gp_test_data_scalar(pool, tb, "SELECT count(*) FROM public.menu_items", NULL);
        try_everywhere("hijack in DO", sql);
    }
    /* Two steps with names read first, as an attacker who can see them. */
    gp_test_data_scalar(pool, tb, "SELECT count(*) FROM public.menu_items", NULL);
    gp_result_t *r = NULL;
    gp_error_t e;
    char a_secret[80];
    assert_int_equal(gp_tenant_query(pool, ta, "SELECT current_setting('growplate.tenant_token')", 0, NULL, &r, &e),
                     GP_OK);
    col_text(r, 0, a_secret, sizeof a_secret);
    gp_result_free(r);
    assert_int_equal(gp_tenant_query(pool, ta, "SELECT name FROM pg_prepared_statements", 0, NULL, &r, &e), GP_OK);
    int n = gp_result_rows(r);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        const char *name;
        size_t len;
        assert_int_equal(gp_get_text(r, i, 0, &name, &len), GP_OK);
        assert_true(len == 19 && strncmp(name, "gp_", 3) == 0); /* 64 random bits, not a counter */
        char dealloc[80], prep[300];
        snprintf(dealloc, sizeof dealloc, "DEALLOCATE %.*s", (int)len, name);
        snprintf(prep, sizeof prep, "PREPARE %.*s(text) AS SELECT pg_catalog.set_config('growplate.tenant_token', "
                 "'%s', true)", (int)len, name, a_secret);
        int pid = backend_pid();
        attack(VIA_ONE_SHOT, dealloc);
        attack(VIA_ONE_SHOT, prep);
        assert_pristine(pid, "hijack in two steps");
    }
    gp_result_free(r);
}

/* Claiming names the library might use next makes nobody's calls fail. */
static void test_name_squatting(void **state)
{
    (void)state;
    char sql[4096] = "DO $$BEGIN FOR i IN 0..300 LOOP EXECUTE format('PREPARE gp_%s AS SELECT 1', i); "
                     "EXECUTE format('PREPARE %I AS SELECT 1', 'gp_' || to_hex(i)); END LOOP; END$$";
    int pid = backend_pid();
    attack(VIA_ONE_SHOT, sql);
    assert_pristine(pid, "squatting");
    for (int i = 0; i < 50; i++) {
        char q[100];
        snprintf(q, sizeof q, "SELECT count(*) + %d - %d FROM public.menu_items", i, i);
        assert_int_equal(gp_test_data_scalar(pool, tb, q, NULL), 2);
    }
}

/* ---- class 4: temporary objects shadowing real tables ------------------------------------- */

static void test_temporary_objects(void **state)
{
    (void)state;
    gp_error_t e;
    /* Not allowed at all (migration 0002). */
    assert_int_equal(gp_tenant_exec(pool, ta, "CREATE TEMP TABLE menu_items (name text)", 0, NULL, NULL, &e),
                     GP_ERR_SERVER);
    assert_string_equal(e.sqlstate, "42501");
    /* And when an operator grants it anyway, nothing survives the call. */
    char sql[200];
    snprintf(sql, sizeof sql, "GRANT TEMPORARY ON DATABASE %s TO growplate_app", scratch.db);
    gp_scratch_exec(admin, sql);
    try_everywhere("temp table", "CREATE TEMP TABLE menu_items AS SELECT * FROM public.menu_items");
    try_everywhere("temp table in DO",
                   "DO $$BEGIN EXECUTE 'CREATE TEMP TABLE users (LIKE public.users INCLUDING ALL)'; END$$");
    try_everywhere("temp function", "CREATE FUNCTION pg_temp.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT ''epoch''::timestamptz'");
    snprintf(sql, sizeof sql, "REVOKE TEMPORARY ON DATABASE %s FROM growplate_app", scratch.db);
    gp_scratch_exec(admin, sql);
}

/* ---- class 5: raw libpq ------------------------------------------------------------------ */

static void test_raw_libpq(void **state)
{
    (void)state;
    int pid = backend_pid();
    gp_conn_t *c;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(pool, "attacker", 5000, &c, &e), GP_OK);
    char sql[200];
    snprintf(sql, sizeof sql, "SET growplate.tenant_token = '%s'; SET search_path = pg_catalog; PREPARE raw AS SELECT 1",
             tb);
    PQclear(PQexec(gp_conn_pgconn(c), sql));
    gp_pool_release(c);
    assert_pristine(pid, "raw libpq");
}

/* ---- class 6: COMMIT AND CHAIN ends the tenant scope ---------------------------------------- */

static void test_commit_and_chain(void **state)
{
    (void)state;
    const char *const enders[] = {"COMMIT AND CHAIN", "ROLLBACK AND CHAIN", "commit /* c */ and chain", "COMMIT",
                                  "END", "ABORT AND CHAIN"};
    for (size_t i = 0; i < sizeof enders / sizeof *enders; i++) {
        gp_conn_t *c;
        gp_error_t e;
        assert_int_equal(gp_pool_acquire(pool, "chain", 5000, &c, &e), GP_OK);
        gp_tenant_tx_t *tx;
        assert_int_equal(gp_tenant_begin(c, ta, NULL, &tx, &e), GP_OK);
        char sql[200];
        snprintf(sql, sizeof sql, "SELECT set_config('growplate.tenant_token', current_setting('growplate.tenant_token'), "
                 "false)");
        assert_int_equal(gp_tenant_tx_exec(tx, sql, 0, NULL, NULL, &e), GP_OK);
        assert_int_equal(gp_tenant_tx_exec(tx, enders[i], 0, NULL, NULL, &e), GP_OK);
        gp_result_t *r = NULL;
        gp_status_t st = gp_tenant_tx_query(tx, "SELECT name FROM public.menu_items", 0, NULL, &r, &e);
        if (st == GP_OK)
            fprintf(stderr, "%s: the transaction went on with %d rows\n", enders[i], gp_result_rows(r));
        assert_int_equal(st, GP_ERR_INVALID);
        assert_non_null(strstr(e.message, "has ended"));
        gp_tenant_rollback(tx, &e);
        gp_pool_release(c);
    }
    assert_pristine(backend_pid(), "after the chained transactions");
}

/* The one-shot pipeline hands back the caller's pipeline as it was. */
static void test_pool_pipeline_results(void **state)
{
    (void)state;
    gp_pipeline_t *p = gp_pipeline_new();
    gp_error_t e;
    assert_int_equal(gp_pipeline_add(p, "BEGIN", 0, NULL, &e), GP_OK);
    assert_int_equal(gp_pipeline_add(p, "SELECT $1::int8", GP_ARGS(gp_int64(41)), &e), GP_OK);
    assert_int_equal(gp_pipeline_add(p, "COMMIT", 0, NULL, &e), GP_OK);
    for (int run = 0; run < 2; run++) {
        assert_int_equal(gp_pool_pipeline_run(pool, p, &e), GP_OK);
        assert_int_equal(gp_pipeline_count(p), 3);
        int64_t v = 0;
        assert_int_equal(gp_get_int64(gp_pipeline_result(p, 1), 0, 0, &v), GP_OK);
        assert_int_equal(v, 41);
        assert_int_equal(gp_pipeline_outcome(p, 2), GP_STMT_OK);
        assert_int_equal(gp_pipeline_outcome(p, 3), GP_STMT_PENDING); /* nothing of the sweep shows */
    }
    /* A failing COMMIT is reported at the caller's index. */
    gp_pipeline_clear(p);
    assert_int_equal(gp_pipeline_add(p, "BEGIN", 0, NULL, &e), GP_OK);
    assert_int_equal(gp_pipeline_add(p, "SET CONSTRAINTS ALL DEFERRED", 0, NULL, &e), GP_OK);
    assert_int_equal(gp_pipeline_add(p, "SELECT 1/0", 0, NULL, &e), GP_OK);
    assert_int_equal(gp_pipeline_add(p, "COMMIT", 0, NULL, &e), GP_OK);
    assert_int_equal(gp_pool_pipeline_run(pool, p, &e), GP_ERR_SERVER);
    assert_int_equal(e.statement_index, 2);
    assert_int_equal(gp_pipeline_outcome(p, 3), GP_STMT_SKIPPED);
    gp_pipeline_free(p);
    assert_pristine(backend_pid(), "after the pool pipelines");
}

int main(void)
{
    gp_test_require_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings_every_spelling),
        cmocka_unit_test(test_role),
        cmocka_unit_test(test_cursors),
        cmocka_unit_test(test_prepared_listen_locks),
        cmocka_unit_test(test_notifications_not_delivered),
        cmocka_unit_test(test_statement_hijack),
        cmocka_unit_test(test_name_squatting),
        cmocka_unit_test(test_temporary_objects),
        cmocka_unit_test(test_raw_libpq),
        cmocka_unit_test(test_commit_and_chain),
        cmocka_unit_test(test_pool_pipeline_results),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
