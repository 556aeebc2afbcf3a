/* test_rls.c — row-level security at the SQL level, as the application
 * role over raw libpq (no library tenant context): nothing is visible or
 * writable without a tenant (never set, or '' after an earlier transaction
 * set it); a tenant can neither insert into nor move a row to another
 * tenant; unique constraints and composite foreign keys reveal nothing of
 * another tenant; the tenants table and the app role's privileges. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_scratch.h"

static gp_scratch_t scratch;
static char tenant_a[40], tenant_b[40];
static char cat_a[40], cat_b[40], item_b[40], user_b[40];

static const char *const TABLES[] = {"tenants", "users", "menu_categories", "menu_items", "orders", "order_items"};
#define NTABLES (sizeof TABLES / sizeof TABLES[0])

static PGconn *app(void) { return gp_scratch_connect(scratch.app_url); }

static int count(PGconn *c, const char *sql)
{
    char buf[32];
    return atoi(gp_scratch_value(c, sql, buf, sizeof buf));
}

/* BEGIN and set the tenant's secret transaction-locally, as the library
 * does. */
static void begin_as(PGconn *c, const char *tenant)
{
    gp_scratch_exec(c, "BEGIN");
    gp_scratch_set_tenant(c, tenant);
}

static void seed_tenant(PGconn *c, const char *slug, char *tenant, char *cat, char *item, char *user)
{
    char sql[512], buf[40];
    snprintf(sql, sizeof sql, "SELECT create_tenant('%s', 'Restaurant %s', 'pro')", slug, slug);
    snprintf(tenant, 40, "%s", gp_scratch_value(c, sql, buf, sizeof buf));
    begin_as(c, tenant);
    snprintf(sql, sizeof sql, "INSERT INTO menu_categories (tenant_id, name) VALUES ('%s', 'Mains') RETURNING id",
             tenant);
    snprintf(cat, 40, "%s", gp_scratch_value(c, sql, buf, sizeof buf));
    snprintf(sql, sizeof sql,
             "INSERT INTO menu_items (tenant_id, category_id, name, price_cents, tags) VALUES "
             "('%s', '%s', 'Soup', 650, '{vegan}') RETURNING id", tenant, cat);
    snprintf(item, 40, "%s", gp_scratch_value(c, sql, buf, sizeof buf));
    snprintf(sql, sizeof sql,
             "INSERT INTO users (tenant_id, email, display_name, role) VALUES ('%s', 'chef@example.com', 'Chef', "
             "'owner') RETURNING id", tenant);
    snprintf(user, 40, "%s", gp_scratch_value(c, sql, buf, sizeof buf));
    snprintf(sql, sizeof sql,
             "WITH o AS (INSERT INTO orders (tenant_id, customer_id, total_cents) VALUES ('%s', '%s', 1300) "
             "RETURNING id) INSERT INTO order_items (tenant_id, order_id, line_no, menu_item_id, quantity, "
             "unit_price_cents) SELECT '%s', o.id, 1, '%s', 2, 650 FROM o", tenant, user, tenant, item);
    gp_scratch_exec(c, sql);
    gp_scratch_exec(c, "COMMIT");
}

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "rls");
    gp_scratch_migrate(&scratch);
    PGconn *c = app();
    char item_a[40], user_a[40];
    seed_tenant(c, "alpha", tenant_a, cat_a, item_a, user_a);
    seed_tenant(c, "beta", tenant_b, cat_b, item_b, user_b);
    PQfinish(c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_scratch_drop(&scratch);
    return 0;
}

/* Each table holds a row of each tenant (checked as the superuser, to whom
 * row-level security does not apply), and the app without a tenant sees
 * none of them. */
static void assert_sees_nothing(PGconn *c)
{
    char sql[128];
    for (size_t i = 0; i < NTABLES; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", TABLES[i]);
        assert_int_equal(count(c, sql), 0);
    }
    /* Writes without a tenant match nothing and insert nothing. */
    PGresult *r = PQexec(c, "DELETE FROM menu_categories");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdTuples(r), "0");
    PQclear(r);
    r = PQexec(c, "UPDATE menu_items SET price_cents = 1");
    assert_string_equal(PQcmdTuples(r), "0");
    PQclear(r);
    snprintf(sql, sizeof sql, "INSERT INTO menu_categories (tenant_id, name) VALUES ('%s', 'Sneaky')", tenant_a);
    gp_scratch_exec_fails(c, sql, "42501");
}

static void test_no_tenant_sees_nothing(void **state)
{
    (void)state;
    PGconn *admin = gp_scratch_connect(scratch.admin);
    char sql[128];
    for (size_t i = 0; i < NTABLES; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", TABLES[i]);
        assert_int_equal(count(admin, sql), 2);
    }
    PQfinish(admin);

    PGconn *c = app();
    char buf[64];
    /* Never set on this connection: current_setting(..., true) is NULL. */
    assert_string_equal(gp_scratch_value(c, "SELECT coalesce(current_setting('growplate.tenant_token', true), 'NULL')",
                                         buf, sizeof buf), "NULL");
    assert_sees_nothing(c);

    /* An earlier transaction set it: afterwards it reads '' — still nothing,
     * and no error. */
    begin_as(c, tenant_a);
    assert_int_equal(count(c, "SELECT count(*) FROM menu_items"), 1);
    gp_scratch_exec(c, "COMMIT");
    assert_string_equal(gp_scratch_value(c, "SELECT '[' || current_setting('growplate.tenant_token', true) || ']'",
                                         buf, sizeof buf), "[]");
    assert_sees_nothing(c);
    /* The same after a rollback, and with '' set explicitly for the session. */
    begin_as(c, tenant_a);
    gp_scratch_exec(c, "ROLLBACK");
    assert_sees_nothing(c);
    gp_scratch_exec(c, "SET growplate.tenant_token = ''");
    assert_sees_nothing(c);
    gp_scratch_exec(c, "RESET growplate.tenant_token");
    PQfinish(c);
}

static void test_tenant_sees_only_its_rows(void **state)
{
    (void)state;
    PGconn *c = app();
    char sql[256], buf[64];
    begin_as(c, tenant_a);
    for (size_t i = 0; i < NTABLES; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", TABLES[i]);
        assert_int_equal(count(c, sql), 1);
    }
    assert_string_equal(gp_scratch_value(c, "SELECT slug FROM tenants", buf, sizeof buf), "alpha");
    /* B's rows by key: invisible, and updates/deletes of them touch nothing. */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM menu_items WHERE id = '%s'", item_b);
    assert_int_equal(count(c, sql), 0);
    snprintf(sql, sizeof sql, "UPDATE menu_items SET price_cents = 1 WHERE id = '%s'", item_b);
    PGresult *r = PQexec(c, sql);
    assert_string_equal(PQcmdTuples(r), "0");
    PQclear(r);
    snprintf(sql, sizeof sql, "DELETE FROM menu_categories WHERE id = '%s'", cat_b);
    r = PQexec(c, sql);
    assert_string_equal(PQcmdTuples(r), "0");
    PQclear(r);
    snprintf(sql, sizeof sql, "UPDATE tenants SET name = 'Hijacked' WHERE id = '%s'", tenant_b);
    r = PQexec(c, sql);
    assert_string_equal(PQcmdTuples(r), "0");
    PQclear(r);
    gp_scratch_exec(c, "COMMIT");
    PQfinish(c);

    PGconn *admin = gp_scratch_connect(scratch.admin);
    snprintf(sql, sizeof sql, "SELECT price_cents FROM menu_items WHERE id = '%s'", item_b);
    assert_int_equal(count(admin, sql), 650);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM menu_categories WHERE id = '%s'", cat_b);
    assert_int_equal(count(admin, sql), 1);
    snprintf(sql, sizeof sql, "SELECT name FROM tenants WHERE id = '%s'", tenant_b);
    assert_string_equal(gp_scratch_value(admin, sql, buf, sizeof buf), "Restaurant beta");
    PQfinish(admin);
}

static void test_cannot_insert_or_move_into_another_tenant(void **state)
{
    (void)state;
    PGconn *c = app();
    char sql[512];
    /* INSERT with B's tenant_id while A is set: WITH CHECK rejects it. */
    begin_as(c, tenant_a);
    snprintf(sql, sizeof sql, "INSERT INTO menu_categories (tenant_id, name) VALUES ('%s', 'Planted')", tenant_b);
    gp_scratch_exec_fails(c, sql, "42501");
    gp_scratch_exec(c, "ROLLBACK");
    /* UPDATE moving A's row to B: rejected as well. */
    begin_as(c, tenant_a);
    snprintf(sql, sizeof sql, "UPDATE menu_categories SET tenant_id = '%s' WHERE id = '%s'", tenant_b, cat_a);
    gp_scratch_exec_fails(c, sql, "42501");
    gp_scratch_exec(c, "ROLLBACK");
    begin_as(c, tenant_a);
    snprintf(sql, sizeof sql, "UPDATE users SET tenant_id = '%s'", tenant_b);
    gp_scratch_exec_fails(c, sql, "42501");
    gp_scratch_exec(c, "ROLLBACK");
    /* INSERT ... ON CONFLICT cannot reach B's row either. */
    begin_as(c, tenant_a);
    snprintf(sql, sizeof sql,
             "INSERT INTO users (tenant_id, id, email, display_name) VALUES ('%s', '%s', 'x@example.com', 'X') "
             "ON CONFLICT (tenant_id, id) DO UPDATE SET display_name = 'Y'", tenant_b, user_b);
    gp_scratch_exec_fails(c, sql, "42501");
    gp_scratch_exec(c, "ROLLBACK");
    PQfinish(c);
}

static void test_unique_constraints_reveal_nothing(void **state)
{
    (void)state;
    PGconn *c = app();
    char sql[512];
    /* B already has 'chef@example.com' and a 'Mains' category: A may have
     * the same, so a collision never tells A that B's row exists. */
    begin_as(c, tenant_a);
    snprintf(sql, sizeof sql,
             "INSERT INTO users (tenant_id, email, display_name) VALUES ('%s', 'waiter@example.com', 'W');"
             "INSERT INTO menu_categories (tenant_id, name) VALUES ('%s', 'Desserts')", tenant_a, tenant_a);
    gp_scratch_exec(c, sql);
    gp_scratch_exec(c, "ROLLBACK");
    begin_as(c, tenant_b);
    snprintf(sql, sizeof sql,
             "INSERT INTO users (tenant_id, email, display_name) VALUES ('%s', 'waiter@example.com', 'W');"
             "INSERT INTO menu_categories (tenant_id, name) VALUES ('%s', 'Desserts')", tenant_b, tenant_b);
    gp_scratch_exec(c, sql);
    /* Within one tenant, uniqueness still holds. */
    snprintf(sql, sizeof sql, "INSERT INTO users (tenant_id, email, display_name) VALUES ('%s', 'chef@example.com', 'C')",
             tenant_b);
    gp_scratch_exec_fails(c, sql, "23505");
    gp_scratch_exec(c, "ROLLBACK");
    /* A can reuse B's primary key value: keys are (tenant_id, id). */
    begin_as(c, tenant_a);
    snprintf(sql, sizeof sql, "INSERT INTO menu_categories (tenant_id, id, name) VALUES ('%s', '%s', 'Same id')",
             tenant_a, cat_b);
    gp_scratch_exec(c, sql);
    gp_scratch_exec(c, "ROLLBACK");
    PQfinish(c);
}

static void test_composite_fks_stay_inside_the_tenant(void **state)
{
    (void)state;
    PGconn *c = app();
    char sql[512];
    /* A menu item of A in B's category, an order item of A for B's menu
     * item, an order of A for B's user: all fail exactly as for an id that
     * exists nowhere. */
    const char *forms[] = {
        "INSERT INTO menu_items (tenant_id, category_id, name, price_cents) VALUES ('%s', '%s', 'X', 1)",
        "WITH o AS (INSERT INTO orders (tenant_id) VALUES ('%s') RETURNING id) INSERT INTO order_items "
        "(tenant_id, order_id, line_no, menu_item_id, quantity, unit_price_cents) SELECT tenant_id, o.id, 1, '%s', "
        "1, 1 FROM o CROSS JOIN (SELECT growplate_tenant() AS tenant_id) t",
        "INSERT INTO orders (tenant_id, customer_id) VALUES ('%s', '%s')",
    };
    const char *foreign[] = {cat_b, item_b, user_b};
    for (size_t i = 0; i < 3; i++) {
        begin_as(c, tenant_a);
        snprintf(sql, sizeof sql, forms[i], tenant_a, foreign[i]);
        gp_scratch_exec_fails(c, sql, "23503");
        gp_scratch_exec(c, "ROLLBACK");
        begin_as(c, tenant_a);
        snprintf(sql, sizeof sql, forms[i], tenant_a, "00000000-0000-4000-8000-000000000000");
        gp_scratch_exec_fails(c, sql, "23503");
        gp_scratch_exec(c, "ROLLBACK");
    }
    PQfinish(c);
}

static void test_setting_read_once_per_statement(void **state)
{
    (void)state;
    PGconn *c = app();
    begin_as(c, tenant_a);
    for (size_t i = 0; i < NTABLES; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "EXPLAIN (COSTS OFF) SELECT * FROM %s", TABLES[i]);
        PGresult *r = PQexec(c, sql);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        bool initplan = false, per_row_call = false;
        for (int j = 0; j < PQntuples(r); j++) {
            initplan |= strstr(PQgetvalue(r, j, 0), "InitPlan") != NULL;
            /* A correlated sub-plan would look the anchor up once per row. */
            per_row_call |= strstr(PQgetvalue(r, j, 0), "SubPlan") != NULL;
        }
        PQclear(r);
        assert_true(initplan);
        assert_false(per_row_call);
    }
    gp_scratch_exec(c, "ROLLBACK");
    /* Any other setting matches no anchor: nothing, and no error. */
    gp_scratch_exec(c, "BEGIN; SELECT set_config('growplate.tenant_token', 'not-a-secret', true)");
    assert_int_equal(count(c, "SELECT count(*) FROM menu_items"), 0);
    gp_scratch_exec(c, "ROLLBACK");
    PQfinish(c);
}

static void test_tenants_table_and_privileges(void **state)
{
    (void)state;
    PGconn *c = app();
    char sql[256], buf[64];
    /* Creating tenants goes through the validated SECURITY DEFINER function. */
    gp_scratch_exec_fails(c, "INSERT INTO tenants (slug, name) VALUES ('direct', 'Direct')", "42501");
    gp_scratch_exec_fails(c, "SELECT create_tenant('Bad Slug!', 'X')", "23514");
    gp_scratch_exec_fails(c, "SELECT create_tenant('alpha', 'Again')", "23505");
    gp_scratch_exec_fails(c, "SELECT create_tenant('gamma', 'G', 'platinum')", "23514");
    gp_scratch_exec_fails(c, "SELECT create_tenant(NULL, 'G')", "22004");
    snprintf(sql, sizeof sql, "SELECT tenant_id_for_slug('beta')");
    assert_string_equal(gp_scratch_value(c, sql, buf, sizeof buf), tenant_b);
    assert_string_equal(gp_scratch_value(c, "SELECT coalesce(tenant_id_for_slug('nobody')::text, 'none')", buf,
                                         sizeof buf), "none");
    /* Its own tenant row: updatable (not its id), never deletable. */
    begin_as(c, tenant_a);
    gp_scratch_exec(c, "UPDATE tenants SET settings = '{\"currency\": \"EUR\"}'");
    gp_scratch_exec_fails(c, "UPDATE tenants SET id = gen_random_uuid()", "42501");
    gp_scratch_exec(c, "ROLLBACK");
    begin_as(c, tenant_a);
    gp_scratch_exec_fails(c, "DELETE FROM tenants", "42501");
    gp_scratch_exec(c, "ROLLBACK");
    /* The application role cannot turn isolation off, nor read the
     * bookkeeping, nor create objects. */
    gp_scratch_exec_fails(c, "ALTER TABLE menu_items DISABLE ROW LEVEL SECURITY", "42501");
    gp_scratch_exec_fails(c, "DROP POLICY tenant_isolation ON menu_items", "42501");
    gp_scratch_exec_fails(c, "SELECT * FROM " GP_MIGRATIONS_TABLE, "42501");
    gp_scratch_exec_fails(c, "CREATE TABLE public.mine (a int)", "42501");
    assert_string_equal(gp_scratch_value(c, "SELECT rolsuper::text || rolbypassrls::text FROM pg_roles WHERE "
                                            "rolname = current_user", buf, sizeof buf), "falsefalse");
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_tenant_sees_nothing),
        cmocka_unit_test(test_tenant_sees_only_its_rows),
        cmocka_unit_test(test_cannot_insert_or_move_into_another_tenant),
        cmocka_unit_test(test_unique_constraints_reveal_nothing),
        cmocka_unit_test(test_composite_fks_stay_inside_the_tenant),
        cmocka_unit_test(test_setting_read_once_per_statement),
        cmocka_unit_test(test_tenants_table_and_privileges),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
