/* test_side_channels.c — what every tenant shares through the one
 * application role, before and after scripts/harden.sql (run as the
 * superuser): large objects, pg_notify, advisory locks, other sessions'
 * statement text in pg_stat_activity, pg_locks, the statistics views.
 * Before: each is open to tenant A's SQL (the README's threat model lists
 * them). After: each is refused, while the library's tenant calls, its
 * session sweep (pg_advisory_unlock_all) and `growplate migrate` (advisory
 * locks, as the owner) still work. What stays open either way: the NOTIFY
 * command and pg_class.reltuples. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_scratch.h"
#include "gp_test.h"
#include "gp_test_data.h"
#include "growplate/tenant.h"

static gp_scratch_t scratch;
static gp_config_t cfg;
static gp_pool_t *pool;
static PGconn *admin, *b_session;
static char ta[37], tb[37];

/* The probes, each a statement of tenant A's, each a channel. */
static const struct {
    const char *what, *sql;
} probes[] = {
    {"large object", "SELECT lo_from_bytea(0, '\\x6869'::bytea) > 0"},
    {"pg_notify", "SELECT pg_notify('gp_side', 'from a')"},
    {"advisory lock", "SELECT pg_try_advisory_xact_lock(4711)"},
    {"pg_locks", "SELECT count(*) FROM pg_locks"},
    {"other sessions' statement text",
     "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%b-private-marker%' AND pid <> pg_backend_pid()"},
    {"row counts in the statistics views", "SELECT coalesce(sum(n_live_tup), 0) FROM pg_stat_user_tables"},
};
#define NPROBES (sizeof probes / sizeof *probes)

static gp_status_t probe(size_t i, gp_error_t *e)
{
    gp_result_t *r = NULL;
    gp_status_t st = gp_tenant_query(pool, ta, probes[i].sql, 0, NULL, &r, e);
    gp_result_free(r);
    return st;
}

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "sidech");
    gp_scratch_migrate(&scratch);
    gp_scratch_config(&scratch, &cfg);
    cfg.db.pool_min = 1;
    cfg.db.pool_max = 2;
    gp_error_t e;
    if (gp_pool_create(&cfg, &pool, &e) != GP_OK)
        return -1;
    gp_test_data_tenant(pool, "side-a", ta);
    gp_test_data_tenant(pool, "side-b", tb);
    admin = gp_scratch_connect(scratch.admin);
    /* Tenant B's session of the same role, its last statement naming
     * something private. */
    b_session = gp_scratch_connect(scratch.app_url);
    gp_scratch_exec(b_session, "SELECT 1 /* b-private-marker */");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(b_session);
    PQfinish(admin);
    gp_pool_close(pool, 5000);
    gp_config_release(&cfg);
    gp_scratch_drop(&scratch);
    return 0;
}

static void test_open_before_hardening(void **state)
{
    (void)state;
    for (size_t i = 0; i < NPROBES; i++) {
        gp_error_t e;
        gp_status_t st = probe(i, &e);
        if (st != GP_OK)
            fprintf(stderr, "%s: %s\n", probes[i].what, e.message);
        assert_int_equal(st, GP_OK);
    }
    /* B's statement text is there for A to read. */
    assert_int_equal(gp_test_data_scalar(pool, ta, probes[4].sql, NULL), 1);
}

static void test_closed_after_hardening(void **state)
{
    (void)state;
    char path[1024];
    const char *src = getenv("GP_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/scripts/harden.sql", src ? src : ".");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char sql[16384];
    size_t n = fread(sql, 1, sizeof sql - 1, f);
    fclose(f);
    sql[n] = 0;
    gp_scratch_exec(admin, sql);
    gp_scratch_exec(admin, sql); /* idempotent */

    for (size_t i = 0; i < NPROBES; i++) {
        gp_error_t e;
        gp_status_t st = probe(i, &e);
        if (st != GP_ERR_SERVER || strcmp(e.sqlstate, "42501") != 0)
            fprintf(stderr, "%s: status %d (%s) after hardening\n", probes[i].what, st, e.sqlstate);
        assert_int_equal(st, GP_ERR_SERVER);
        assert_string_equal(e.sqlstate, "42501");
    }
    /* The library still works: tenant calls, the sweep, and migrate (its
     * advisory lock, as the owner). */
    assert_int_equal(gp_test_data_scalar(pool, tb, "SELECT count(*) FROM public.tenants", NULL), 1);
    gp_error_t e;
    assert_int_equal(gp_tenant_exec(pool, ta, "NOTIFY gp_side", 0, NULL, NULL, &e), GP_OK); /* still open */
    gp_scratch_migrate(&scratch);
    char buf[32];
    PGconn *app = gp_scratch_connect(scratch.app_url);
    assert_int_equal(atoi(gp_scratch_value(app, "SELECT count(*) FROM pg_class WHERE reltuples >= 0", buf,
                                           sizeof buf)) > 0, 1); /* still open */
    PQfinish(app);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_before_hardening),
        cmocka_unit_test(test_closed_after_hardening),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
