/* test_tenant.c — the tenant layer on the real schema: invalid ids never
 * reach SQL, scoped queries and transactions see only their tenant, the
 * helpers inject tenant_id, a tenant cannot write into or move rows to
 * another, and the tenant context never survives into the next lease,
 * whatever ended the transaction. Uses its own scratch database. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_scratch.h"
#include "gp_test.h"

static gp_scratch_t scratch;
static gp_config_t cfg;
static gp_pool_t *pool; /* one connection: every lease reuses the same session */
static char tenant_a[37], tenant_b[37];

static void create_tenant(const char *slug, char out[37])
{
    gp_conn_t *c;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(pool, "setup", -1, &c, &e), GP_OK);
    gp_value_t p[2] = {gp_text(slug), gp_text(slug)};
    gp_result_t *r = NULL;
    if (gp_query(c, "SELECT create_tenant($1, $2)::text", 2, p, &r, &e) != GP_OK)
        fprintf(stderr, "create_tenant: %s\n", e.message);
    assert_non_null(r);
    const char *id;
    assert_int_equal(gp_get_text(r, 0, 0, &id, NULL), GP_OK);
    snprintf(out, 37, "%s", id);
    gp_result_free(r);
    gp_pool_release(c);
}

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "tenant");
    gp_scratch_migrate(&scratch);
    gp_scratch_config(&scratch, &cfg);
    cfg.db.pool_min = 0;
    cfg.db.pool_max = 1;
    cfg.db.acquire_timeout_ms = 5000;
    assert_int_equal(gp_pool_create(&cfg, &pool, NULL), GP_OK);
    create_tenant("tenant-a", tenant_a);
    create_tenant("tenant-b", tenant_b);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_pool_close(pool, 2000);
    gp_config_release(&cfg);
    gp_scratch_drop(&scratch);
    return 0;
}

/* No transaction left open on c: by libpq's word, or (through a
 * transaction pooler, where there is no raw libpq: tests/test_via_pgbouncer.sh)
 * by a new one beginning. */
static void assert_idle(gp_conn_t *c)
{
    PGconn *pg = gp_conn_pgconn(c);
    assert_true(pg ? PQtransactionStatus(pg) == PQTRANS_IDLE : getenv("DATABASE_POOLER") != NULL);
    gp_error_t e;
    assert_int_equal(gp_tx_begin(c, NULL, &e), GP_OK);
    assert_int_equal(gp_tx_rollback(c, &e), GP_OK);
}

static int64_t count_for(const char *tenant, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    gp_result_t *r = NULL;
    gp_error_t e;
    assert_int_equal(gp_tenant_query(pool, tenant, sql, 0, NULL, &r, &e), GP_OK);
    int64_t n = -1;
    assert_int_equal(gp_get_int64(r, 0, 0, &n), GP_OK);
    gp_result_free(r);
    return n;
}

static void test_invalid_ids_never_reach_sql(void **state)
{
    (void)state;
    const char *bad[] = {"", "x", "123E4567-E89B-12D3-A456-426614174000", "{123e4567-e89b-12d3-a456-426614174000}",
                         "123e4567-e89b-12d3-a456-42661417400", "123e4567-e89b-12d3-a456-4266141740000",
                         "123e4567-e89b-12d3-a456-42661417400'", "'; DROP TABLE tenants; --",
                         "123e4567-e89b-12d3-a456-42661417400\n", " 123e4567-e89b-12d3-a456-426614174000"};
    gp_pool_metrics_t before, after;
    assert_int_equal(gp_pool_metrics(pool, &before), GP_OK);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gp_error_t e;
        gp_result_t *r = (gp_result_t *)1;
        assert_int_equal(gp_tenant_query(pool, bad[i], "SELECT 1", 0, NULL, &r, &e), GP_ERR_TENANT);
        assert_null(r);
        assert_int_equal(e.status, GP_ERR_TENANT);
        assert_non_null(strstr(e.message, "tenant id"));
        assert_null(strstr(e.message, "DROP TABLE"));
        int64_t n;
        assert_int_equal(gp_tenant_exec(pool, bad[i], "SELECT 1", 0, NULL, &n, &e), GP_ERR_TENANT);
        assert_int_equal(gp_tenant_run(pool, bad[i], NULL, NULL, NULL, NULL, &e), GP_ERR_TENANT);
    }
    gp_error_t e;
    assert_int_equal(gp_tenant_query(pool, NULL, "SELECT 1", 0, NULL, &(gp_result_t *){NULL}, &e), GP_ERR_TENANT);
    /* Not one acquire: nothing reached a connection, let alone SQL. */
    assert_int_equal(gp_pool_metrics(pool, &after), GP_OK);
    assert_int_equal(after.acquires, before.acquires);

    gp_conn_t *c;
    assert_int_equal(gp_pool_acquire(pool, "t", -1, &c, &e), GP_OK);
    gp_tenant_tx_t *tx = (gp_tenant_tx_t *)1;
    assert_int_equal(gp_tenant_begin(c, "nope", NULL, &tx, &e), GP_ERR_TENANT);
    assert_null(tx);
    gp_pool_release(c);
}

static void test_scoped_reads_and_writes(void **state)
{
    (void)state;
    gp_error_t e;
    int64_t n = 0;
    gp_value_t name = gp_text("Starters");
    assert_int_equal(gp_tenant_exec(pool, tenant_a, "INSERT INTO menu_categories (tenant_id, name) "
                                    "VALUES (growplate_tenant(), $1)", 1, &name, &n, &e), GP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(count_for(tenant_a, "menu_categories"), 1);
    assert_int_equal(count_for(tenant_b, "menu_categories"), 0);
    /* The tenants table shows each tenant its own row only. */
    assert_int_equal(count_for(tenant_a, "tenants"), 1);
    gp_result_t *r = NULL;
    assert_int_equal(gp_tenant_query(pool, tenant_b, "SELECT id::text FROM tenants", 0, NULL, &r, &e), GP_OK);
    const char *id;
    assert_int_equal(gp_get_text(r, 0, 0, &id, NULL), GP_OK);
    assert_string_equal(id, tenant_b);
    gp_result_free(r);
    /* A statement error inside a one-shot scoped query is reported as such. */
    assert_int_equal(gp_tenant_query(pool, tenant_a, "SELECT 1/0", 0, NULL, &r, &e), GP_ERR_SERVER);
    assert_int_equal(e.klass, GP_ECLASS_DATA);
    assert_int_equal(e.statement_index, -1);
}

static void test_cannot_write_into_or_move_to_another_tenant(void **state)
{
    (void)state;
    gp_error_t e;
    gp_value_t p[2] = {gp_uuid_str(tenant_b), gp_text("Smuggled")};
    assert_int_equal(gp_tenant_exec(pool, tenant_a, "INSERT INTO menu_categories (tenant_id, name) VALUES ($1, $2)", 2,
                                    p, NULL, &e),
                     GP_ERR_SERVER);
    assert_string_equal(e.sqlstate, "42501");
    assert_int_equal(e.klass, GP_ECLASS_PRIVILEGE);
    assert_int_equal(count_for(tenant_b, "menu_categories"), 0);

    gp_value_t mv = gp_uuid_str(tenant_b);
    assert_int_equal(gp_tenant_exec(pool, tenant_a, "UPDATE menu_categories SET tenant_id = $1", 1, &mv, NULL, &e),
                     GP_ERR_SERVER);
    assert_string_equal(e.sqlstate, "42501");
    assert_true(count_for(tenant_a, "menu_categories") >= 1);
    assert_int_equal(count_for(tenant_b, "menu_categories"), 0);
}

typedef struct helper_ctx {
    char cat_id[37];
    int64_t affected;
} helper_ctx_t;

static gp_status_t create_with_helpers(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    helper_ctx_t *h = ud;
    const char *cols[] = {"name", "position"};
    gp_value_t vals[] = {gp_text("Mains"), gp_int32(2)};
    gp_result_t *r = NULL;
    gp_status_t st = gp_tenant_insert(tx, "menu_categories", 2, cols, vals, "id, tenant_id", &r, err);
    if (st != GP_OK)
        return st;
    gp_uuid_t id;
    st = gp_get_uuid(r, 0, gp_col(r, "id"), &id);
    gp_uuid_format(&id, h->cat_id);
    gp_uuid_t owner;
    gp_get_uuid(r, 0, gp_col(r, "tenant_id"), &owner);
    char owner_s[37];
    gp_uuid_format(&owner, owner_s);
    gp_result_free(r);
    if (strcmp(owner_s, gp_tenant_tx_tenant(tx)) != 0)
        return GP_ERR_INVALID;
    return st;
}

static gp_status_t touch_by_key(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    helper_ctx_t *h = ud;
    gp_result_t *r = NULL;
    gp_status_t st = gp_tenant_get(tx, "menu_categories", "id, name", "id", gp_uuid_str(h->cat_id), &r, err);
    if (st != GP_OK)
        return st;
    int rows = gp_result_rows(r);
    gp_result_free(r);
    const char *cols[] = {"position"};
    gp_value_t vals[] = {gp_int32(7)};
    int64_t updated = 0, deleted = 0;
    if ((st = gp_tenant_update(tx, "menu_categories", "id", gp_uuid_str(h->cat_id), 1, cols, vals, &updated, err)) !=
        GP_OK)
        return st;
    if ((st = gp_tenant_delete(tx, "menu_categories", "id", gp_uuid_str(h->cat_id), &deleted, err)) != GP_OK)
        return st;
    h->affected = rows * 100 + updated * 10 + deleted;
    return GP_ERR_CANCELED; /* roll back: keep the row for the next check */
}

static void test_helpers_inject_tenant_id(void **state)
{
    (void)state;
    gp_error_t e;
    helper_ctx_t h = {0};
    int attempts = 0;
    assert_int_equal(gp_tenant_run(pool, tenant_a, NULL, create_with_helpers, &h, &attempts, &e), GP_OK);
    assert_int_equal(attempts, 1);
    /* Tenant B, by key: sees nothing, updates nothing, deletes nothing. */
    assert_int_equal(gp_tenant_run(pool, tenant_b, NULL, touch_by_key, &h, NULL, &e), GP_ERR_CANCELED);
    assert_int_equal(h.affected, 0);
    /* Tenant A: one row each. */
    assert_int_equal(gp_tenant_run(pool, tenant_a, NULL, touch_by_key, &h, NULL, &e), GP_ERR_CANCELED);
    assert_int_equal(h.affected, 111);

    /* Misuse is refused before anything is sent. */
    gp_conn_t *c;
    assert_int_equal(gp_pool_acquire(pool, "t", -1, &c, &e), GP_OK);
    gp_tenant_tx_t *tx;
    assert_int_equal(gp_tenant_begin(c, tenant_a, NULL, &tx, &e), GP_OK);
    const char *cols[] = {"tenant_id"};
    gp_value_t vals[] = {gp_uuid_str(tenant_b)};
    assert_int_equal(gp_tenant_insert(tx, "menu_categories", 1, cols, vals, NULL, NULL, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "tenant_id"));
    const char *evil[] = {"name\"; DROP TABLE users; --"};
    assert_int_equal(gp_tenant_insert(tx, "menu_categories", 1, evil, vals, NULL, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_tenant_insert(tx, "Menu_Categories", 0, NULL, NULL, NULL, NULL, &e), GP_ERR_INVALID);
    gp_result_t *r = NULL;
    assert_int_equal(gp_tenant_get(tx, "menu_categories", "id; DELETE FROM users", "id", gp_uuid_str(tenant_a), &r,
                                   &e),
                     GP_ERR_INVALID);
    assert_int_equal(gp_tenant_rollback(tx, &e), GP_OK);
    assert_idle(c);
    gp_pool_release(c);
}

/* After any ending of a scoped transaction, the next lease of the (only)
 * connection has no tenant and sees no tenant rows. */
static void assert_next_lease_is_clean(void)
{
    gp_conn_t *c;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(pool, "check", -1, &c, &e), GP_OK);
    gp_result_t *r = NULL;
    assert_int_equal(gp_query(c, "SELECT coalesce(growplate_tenant()::text, ''), "
                                 "(SELECT count(*) FROM menu_categories), (SELECT count(*) FROM tenants)",
                              0, NULL, &r, &e),
                     GP_OK);
    const char *setting;
    int64_t cats, tenants;
    assert_int_equal(gp_get_text(r, 0, 0, &setting, NULL), GP_OK);
    assert_int_equal(gp_get_int64(r, 0, 1, &cats), GP_OK);
    assert_int_equal(gp_get_int64(r, 0, 2, &tenants), GP_OK);
    assert_string_equal(setting, "");
    assert_int_equal(cats, 0);
    assert_int_equal(tenants, 0);
    gp_result_free(r);
    gp_pool_release(c);
}

static void test_context_never_survives_a_lease(void **state)
{
    (void)state;
    gp_error_t e;
    gp_conn_t *c;
    gp_tenant_tx_t *tx;
    gp_result_t *r = NULL;
    assert_true(count_for(tenant_a, "menu_categories") >= 1);
    assert_next_lease_is_clean(); /* after commits */

    /* Left open: released mid-transaction. */
    assert_int_equal(gp_pool_acquire(pool, "t", -1, &c, &e), GP_OK);
    assert_int_equal(gp_tenant_begin(c, tenant_a, NULL, &tx, &e), GP_OK);
    assert_int_equal(gp_tenant_tx_query(tx, "SELECT count(*) FROM menu_categories", 0, NULL, &r, &e), GP_OK);
    gp_result_free(r);
    free(tx); /* a caller that forgot to commit: the pool must roll back */
    gp_pool_release(c);
    assert_next_lease_is_clean();

    /* Failed statement, then released without rollback. */
    assert_int_equal(gp_pool_acquire(pool, "t", -1, &c, &e), GP_OK);
    assert_int_equal(gp_tenant_begin(c, tenant_a, NULL, &tx, &e), GP_OK);
    assert_int_equal(gp_tenant_tx_exec(tx, "SELECT count(*) FROM menu_categories", 0, NULL, NULL, &e), GP_OK);
    assert_int_equal(gp_tenant_tx_exec(tx, "SELECT 1/0", 0, NULL, NULL, &e), GP_ERR_SERVER);
    gp_pool_release(c);
    free(tx);
    assert_next_lease_is_clean();

    /* Statement timeout inside the transaction (a server-side cancel). */
    assert_int_equal(gp_pool_acquire(pool, "t", -1, &c, &e), GP_OK);
    gp_tx_opts_t o = {.statement_timeout_ms = 50};
    assert_int_equal(gp_tenant_begin(c, tenant_a, &o, &tx, &e), GP_OK);
    gp_status_t st = gp_tenant_tx_exec(tx, "SELECT pg_sleep(5)", 0, NULL, NULL, &e);
    assert_true(st == GP_ERR_TIMEOUT || st == GP_ERR_CANCELED);
    assert_int_equal(gp_tenant_rollback(tx, &e), GP_OK);
    gp_pool_release(c);
    assert_next_lease_is_clean();

    /* A caller who sets the tenant for the whole session by hand. */
    assert_int_equal(gp_pool_acquire(pool, "t", -1, &c, &e), GP_OK);
    gp_value_t t = gp_text(tenant_a);
    assert_int_equal(gp_exec(c, "SELECT set_config('growplate.tenant_token', $1, false)", 1, &t, NULL, &e), GP_OK);
    gp_pool_release(c);
    assert_next_lease_is_clean();

    /* The first statement's error in the pipeline (BEGIN + setting + it). */
    assert_int_equal(gp_pool_acquire(pool, "t", -1, &c, &e), GP_OK);
    assert_int_equal(gp_tenant_begin(c, tenant_a, NULL, &tx, &e), GP_OK);
    assert_int_equal(gp_tenant_tx_exec(tx, "SELECT no_such_column FROM menu_categories", 0, NULL, NULL, &e),
                     GP_ERR_SERVER);
    assert_int_equal(e.klass, GP_ECLASS_SYNTAX);
    assert_idle(c); /* the pipeline rolled back */
    assert_int_equal(gp_tenant_rollback(tx, &e), GP_OK);
    gp_pool_release(c);
    assert_next_lease_is_clean();
}

/* The one-shot path borrows the caller's SQL and parameters for the call:
 * what it sends must still be judged, reported and retried like any
 * pipeline's. */
static void test_one_shot_judges_reports_and_retries(void **state)
{
    (void)state;
    gp_error_t e;
    /* A session-level setting by the caller's statement, of the call's own
     * genuine tenant secret: the pool resets it, the first time (statement
     * prepared) and the next (from the statement cache). */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(gp_tenant_exec(pool, tenant_a, "SELECT set_config('growplate.tenant_token', "
                                        "current_setting('growplate.tenant_token'), false)", 0, NULL, NULL, &e),
                         GP_OK);
        assert_next_lease_is_clean();
    }
    /* An invalid parameter of the caller's statement: reported as theirs,
     * nothing sent. */
    gp_result_t *r = (gp_result_t *)1;
    gp_value_t bad = gp_text("0123456789\xFF");
    assert_int_equal(gp_tenant_query(pool, tenant_a, "SELECT $1", 1, &bad, &r, &e), GP_ERR_INVALID);
    assert_null(r);
    assert_int_equal(e.statement_index, -1);
    assert_non_null(strstr(e.message, "$1: invalid UTF-8 at byte 10"));
    assert_next_lease_is_clean();
    /* The server forgot the prepared statements: the pipeline runs again. */
    gp_conn_t *c;
    assert_int_equal(gp_pool_acquire(pool, "t", -1, &c, &e), GP_OK);
    PGconn *raw = gp_conn_pgconn(c); /* (NULL through a transaction pooler: no named statements there) */
    if (raw)
        PQclear(PQexec(raw, "DEALLOCATE ALL"));
    gp_pool_release(c);
    gp_value_t v = gp_int64(41);
    assert_int_equal(gp_tenant_query(pool, tenant_b, "SELECT $1::int8 + 1, growplate_tenant()::text", 1, &v,
                                     &r, &e), GP_OK);
    int64_t n;
    const char *s;
    assert_int_equal(gp_get_int64(r, 0, 0, &n), GP_OK);
    assert_int_equal(n, 42);
    assert_int_equal(gp_get_text(r, 0, 1, &s, NULL), GP_OK);
    assert_string_equal(s, tenant_b);
    gp_result_free(r);
    assert_next_lease_is_clean();
}

static void test_statement_sees_its_tenant(void **state)
{
    (void)state;
    gp_result_t *r = NULL;
    gp_error_t e;
    assert_int_equal(gp_tenant_query(pool, tenant_a, "SELECT growplate_tenant()::text", 0, NULL, &r, &e),
                     GP_OK);
    const char *s;
    assert_int_equal(gp_get_text(r, 0, 0, &s, NULL), GP_OK);
    assert_string_equal(s, tenant_a);
    gp_result_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_ids_never_reach_sql),
        cmocka_unit_test(test_scoped_reads_and_writes),
        cmocka_unit_test(test_cannot_write_into_or_move_to_another_tenant),
        cmocka_unit_test(test_helpers_inject_tenant_id),
        cmocka_unit_test(test_context_never_survives_a_lease),
        cmocka_unit_test(test_statement_sees_its_tenant),
        cmocka_unit_test(test_one_shot_judges_reports_and_retries),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
