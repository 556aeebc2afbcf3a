/* test_rows.c — the generated row types against real query results (pool
 * and query layer, as the application role with a tenant set): every
 * column type of the schema decodes, NULLs included; enums decode from
 * their own type and from a text cast; a result with a missing or wrongly
 * typed column, a NULL in a NOT NULL column or an unknown enum label is an
 * error naming the column. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_scratch.h"
#include "growplate/rows.h"
#include "growplate/tenant.h"

#define TENANT "11111111-2222-4333-8444-555555555555"
#define CATEGORY "aaaaaaaa-0000-4000-8000-000000000001"
#define SOUP "aaaaaaaa-0000-4000-8000-000000000002"
#define PIE "aaaaaaaa-0000-4000-8000-000000000003"
#define CHEF "aaaaaaaa-0000-4000-8000-000000000004"
#define ORDER1 "aaaaaaaa-0000-4000-8000-000000000005"
#define ORDER2 "aaaaaaaa-0000-4000-8000-000000000006"
#define T_US 1704164645678901LL /* 2024-01-02 03:04:05.678901 UTC */

static gp_scratch_t scratch;
static gp_pool_t *pool;

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "rows");
    gp_scratch_migrate(&scratch);
    PGconn *admin = gp_scratch_connect(scratch.admin);
    gp_scratch_exec(admin,
        "INSERT INTO tenants (id, slug, name, status, plan, settings, created_at, updated_at) VALUES ('" TENANT "',"
        " 'rows', 'Rows & Co', 'suspended', 'enterprise', '{\"currency\": \"EUR\", \"seats\": 40}',"
        " '2024-01-02 03:04:05.678901+00', '-infinity');"
        "INSERT INTO menu_categories (tenant_id, id, name, position) VALUES ('" TENANT "', '" CATEGORY "', 'Mains', -3);"
        "INSERT INTO menu_items (tenant_id, id, category_id, name, description, price_cents, calories, available, tags)"
        " VALUES ('" TENANT "', '" SOUP "', '" CATEGORY "', 'Soupe à l''oignon', 'Hot \"and\" cheesy', 2147483647, 0,"
        "         true, '{vegetarian,\"with space\",\"\"}'),"
        "        ('" TENANT "', '" PIE "', '" CATEGORY "', 'Pie', NULL, 0, NULL, false, '{}');"
        "INSERT INTO users (tenant_id, id, email, display_name, role) VALUES ('" TENANT "', '" CHEF "',"
        " 'chef@example.com', 'Chef', 'manager');"
        "INSERT INTO orders (tenant_id, id, customer_id, status, total_cents, note, placed_at, completed_at) VALUES"
        " ('" TENANT "', '" ORDER1 "', '" CHEF "', 'cancelled', 9000000000, 'no onions', '2024-01-02 03:04:05.678901+00',"
        "  '2024-01-02 03:04:05.678901+00'),"
        " ('" TENANT "', '" ORDER2 "', NULL, 'pending', 0, NULL, '2024-01-02 03:04:05.678901+00', NULL);"
        "INSERT INTO order_items (tenant_id, order_id, line_no, menu_item_id, quantity, unit_price_cents) VALUES"
        " ('" TENANT "', '" ORDER1 "', 1, '" SOUP "', 1000, 650);");
    PQfinish(admin);
    gp_config_t cfg;
    gp_scratch_config(&scratch, &cfg);
    cfg.db.pool_min = 0;
    cfg.db.pool_max = 2;
    assert_int_equal(gp_pool_create(&cfg, &pool, NULL), GP_OK);
    gp_config_release(&cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_pool_close(pool, 5000);
    gp_scratch_drop(&scratch);
    return 0;
}

/* Run one query as the tenant and return its result. */
static gp_result_t *query(const char *sql)
{
    gp_error_t err;
    gp_result_t *r = NULL;
    gp_status_t st = gp_tenant_query(pool, TENANT, sql, 0, NULL, &r, &err);
    if (st != GP_OK)
        fprintf(stderr, "query failed: %s\n", err.message);
    assert_int_equal(st, GP_OK);
    return r;
}

static void assert_uuid(const gp_uuid_t *u, const char *text)
{
    char buf[37];
    assert_string_equal(gp_uuid_format(u, buf), text);
}

static void test_tenants_and_users(void **state)
{
    (void)state;
    gp_result_t *r = query("SELECT " GP_TENANTS_COLUMNS " FROM tenants");
    gp_row_tenants_t *t = NULL;
    size_t n = 0;
    gp_error_t err;
    assert_int_equal(gp_row_tenants_decode_all(r, &t, &n, &err), GP_OK);
    assert_int_equal(n, 1);
    assert_uuid(&t[0].id, TENANT);
    assert_string_equal(t[0].slug, "rows");
    assert_string_equal(t[0].name, "Rows & Co");
    assert_int_equal(t[0].status, GP_TENANT_STATUS_SUSPENDED);
    assert_string_equal(t[0].plan, "enterprise");
    assert_true(json_is_object(t[0].settings));
    assert_string_equal(json_string_value(json_object_get(t[0].settings, "currency")), "EUR");
    assert_int_equal(json_integer_value(json_object_get(t[0].settings, "seats")), 40);
    assert_int_equal(t[0].created_at, T_US);
    assert_true(t[0].updated_at == GP_TIMESTAMP_NEG_INFINITY);
    gp_row_tenants_free_all(t, n);
    gp_result_free(r);

    r = query("SELECT " GP_USERS_COLUMNS " FROM users");
    gp_row_users_map_t map;
    assert_int_equal(gp_row_users_bind(r, &map, &err), GP_OK);
    gp_row_users_t u;
    assert_int_equal(gp_row_users_decode(r, &map, 0, &u, &err), GP_OK);
    assert_uuid(&u.tenant_id, TENANT);
    assert_uuid(&u.id, CHEF);
    assert_string_equal(u.email, "chef@example.com");
    assert_string_equal(u.display_name, "Chef");
    assert_int_equal(u.role, GP_USER_ROLE_MANAGER);
    gp_row_users_free(&u);
    assert_null(u.email);
    gp_row_users_free(&u); /* twice is harmless: free zeroes the row */
    gp_row_users_free(NULL);
    /* Out of range rows are an error, not garbage. */
    assert_int_equal(gp_row_users_decode(r, &map, 1, &u, &err), GP_ERR_RANGE);
    gp_result_free(r);
}

static void test_menu_items_with_nulls_and_arrays(void **state)
{
    (void)state;
    /* Columns in another order than the table's, plus an extra one: the
     * decoder maps by name. */
    gp_result_t *r = query("SELECT 42 AS extra, tags, calories, " GP_MENU_ITEMS_COLUMNS " FROM menu_items ORDER BY name");
    gp_row_menu_items_t *m = NULL;
    size_t n = 0;
    gp_error_t err;
    assert_int_equal(gp_row_menu_items_decode_all(r, &m, &n, &err), GP_OK);
    assert_int_equal(n, 2);
    /* "Pie": NULL description and calories, empty tags, unavailable. */
    assert_uuid(&m[0].id, PIE);
    assert_string_equal(m[0].name, "Pie");
    assert_true(m[0].description_is_null);
    assert_null(m[0].description);
    assert_true(m[0].calories_is_null);
    assert_int_equal(m[0].price_cents, 0);
    assert_false(m[0].available);
    assert_int_equal(m[0].tags_count, 0);
    /* The soup: every value present, UTF-8, quotes, INT32_MAX, three tags. */
    assert_uuid(&m[1].category_id, CATEGORY);
    assert_string_equal(m[1].name, "Soupe à l'oignon");
    assert_false(m[1].description_is_null);
    assert_string_equal(m[1].description, "Hot \"and\" cheesy");
    assert_int_equal(m[1].price_cents, 2147483647);
    assert_false(m[1].calories_is_null);
    assert_int_equal(m[1].calories, 0);
    assert_true(m[1].available);
    assert_int_equal(m[1].tags_count, 3);
    assert_string_equal(m[1].tags[0], "vegetarian");
    assert_string_equal(m[1].tags[1], "with space");
    assert_string_equal(m[1].tags[2], "");
    assert_true(m[1].created_at > T_US);
    gp_row_menu_items_free_all(m, n);
    gp_result_free(r);

    r = query("SELECT " GP_MENU_CATEGORIES_COLUMNS " FROM menu_categories");
    gp_row_menu_categories_t *c = NULL;
    assert_int_equal(gp_row_menu_categories_decode_all(r, &c, &n, &err), GP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].position, -3);
    assert_string_equal(c[0].name, "Mains");
    gp_row_menu_categories_free_all(c, n);
    gp_result_free(r);

    /* An empty result: no rows, no array. */
    r = query("SELECT " GP_MENU_CATEGORIES_COLUMNS " FROM menu_categories WHERE false");
    c = (gp_row_menu_categories_t *)&n;
    assert_int_equal(gp_row_menu_categories_decode_all(r, &c, &n, &err), GP_OK);
    assert_null(c);
    assert_int_equal(n, 0);
    gp_result_free(r);
}

static void test_orders_enums_bigint_timestamps(void **state)
{
    (void)state;
    gp_result_t *r = query("SELECT " GP_ORDERS_COLUMNS " FROM orders ORDER BY total_cents DESC");
    gp_row_orders_t *o = NULL;
    size_t n = 0;
    gp_error_t err;
    assert_int_equal(gp_row_orders_decode_all(r, &o, &n, &err), GP_OK);
    assert_int_equal(n, 2);
    assert_uuid(&o[0].id, ORDER1);
    assert_false(o[0].customer_id_is_null);
    assert_uuid(&o[0].customer_id, CHEF);
    assert_int_equal(o[0].status, GP_ORDER_STATUS_CANCELLED);
    assert_true(o[0].total_cents == 9000000000LL);
    assert_string_equal(o[0].note, "no onions");
    assert_int_equal(o[0].placed_at, T_US);
    assert_false(o[0].completed_at_is_null);
    assert_int_equal(o[0].completed_at, T_US);
    assert_uuid(&o[1].id, ORDER2);
    assert_true(o[1].customer_id_is_null);
    assert_int_equal(o[1].status, GP_ORDER_STATUS_PENDING);
    assert_true(o[1].note_is_null);
    assert_true(o[1].completed_at_is_null);
    gp_row_orders_free_all(o, n);
    gp_result_free(r);

    /* Enums cast to text decode the same. */
    r = query("SELECT tenant_id, id, customer_id, status::text AS status, total_cents, note, placed_at, updated_at,"
              " completed_at FROM orders ORDER BY total_cents DESC");
    assert_int_equal(gp_row_orders_decode_all(r, &o, &n, &err), GP_OK);
    assert_int_equal(o[0].status, GP_ORDER_STATUS_CANCELLED);
    gp_row_orders_free_all(o, n);
    gp_result_free(r);

    r = query("SELECT " GP_ORDER_ITEMS_COLUMNS " FROM order_items");
    gp_row_order_items_t *it = NULL;
    assert_int_equal(gp_row_order_items_decode_all(r, &it, &n, &err), GP_OK);
    assert_int_equal(n, 1);
    assert_uuid(&it[0].order_id, ORDER1);
    assert_uuid(&it[0].menu_item_id, SOUP);
    assert_int_equal(it[0].line_no, 1);
    assert_int_equal(it[0].quantity, 1000);
    assert_int_equal(it[0].unit_price_cents, 650);
    gp_row_order_items_free_all(it, n);
    gp_result_free(r);

    /* Labels both ways. */
    assert_string_equal(gp_order_status_label(GP_ORDER_STATUS_READY), "ready");
    assert_null(gp_order_status_label(GP_ORDER_STATUS_COUNT_));
    gp_user_role_t role;
    assert_int_equal(gp_user_role_parse("customer", &role), GP_OK);
    assert_int_equal(role, GP_USER_ROLE_CUSTOMER);
    assert_int_equal(gp_user_role_parse("Customer", &role), GP_ERR_TYPE);
    assert_int_equal(gp_tenant_status_parse(NULL, NULL), GP_ERR_INVALID);
}

/* Each broken result: (select list, expected status from bind or decode,
 * text the message must contain). */
static void expect_orders_error(const char *sql, gp_status_t want, const char *needle)
{
    gp_result_t *r = query(sql);
    gp_row_orders_t *o = (gp_row_orders_t *)&want;
    size_t n = 99;
    gp_error_t err;
    assert_int_equal(gp_row_orders_decode_all(r, &o, &n, &err), want);
    assert_int_equal(err.status, want);
    assert_null(o);
    assert_int_equal(n, 0);
    if (!strstr(err.message, needle))
        fprintf(stderr, "message '%s' lacks '%s'\n", err.message, needle);
    assert_non_null(strstr(err.message, needle));
    gp_result_free(r);
}

static void test_broken_results_are_errors(void **state)
{
    (void)state;
    /* Missing column. */
    expect_orders_error("SELECT tenant_id, id, customer_id, status, total_cents, placed_at, updated_at, completed_at"
                        " FROM orders", GP_ERR_NOT_FOUND, "orders: the result has no column \"note\"");
    /* Wrong types: integer for bigint, text for uuid, integer for the enum. */
    expect_orders_error("SELECT tenant_id, id, customer_id, status, (total_cents % 1000)::int AS total_cents, note, placed_at,"
                        " updated_at, completed_at FROM orders", GP_ERR_TYPE, "orders.total_cents: expected int64");
    expect_orders_error("SELECT tenant_id, id::text AS id, customer_id, status, total_cents, note, placed_at,"
                        " updated_at, completed_at FROM orders", GP_ERR_TYPE, "orders.id: expected uuid");
    expect_orders_error("SELECT tenant_id, id, customer_id, 1 AS status, total_cents, note, placed_at, updated_at,"
                        " completed_at FROM orders", GP_ERR_TYPE, "orders.status: expected an enum");
    expect_orders_error("SELECT tenant_id, id, customer_id, status, total_cents, note, placed_at::text AS placed_at,"
                        " updated_at, completed_at FROM orders", GP_ERR_TYPE, "orders.placed_at: expected timestamptz");
    /* NULL in a NOT NULL column (an outer join, say), on the second row:
     * the first row decoded is freed, nothing is returned. */
    expect_orders_error("SELECT tenant_id, id, customer_id, status, total_cents, note,"
                        " CASE WHEN customer_id IS NULL THEN NULL ELSE placed_at END AS placed_at, updated_at,"
                        " completed_at FROM orders ORDER BY total_cents DESC", GP_ERR_NULL,
                        "orders.placed_at (row 1): is NULL but the column is NOT NULL");
    /* A label this build does not know. */
    expect_orders_error("SELECT tenant_id, id, customer_id, 'refunded' AS status, total_cents, note, placed_at,"
                        " updated_at, completed_at FROM orders", GP_ERR_TYPE,
                        "orders.status (row 0): has a label this build does not know");

    gp_row_orders_map_t map;
    gp_error_t err;
    assert_int_equal(gp_row_orders_bind(NULL, &map, &err), GP_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tenants_and_users),
        cmocka_unit_test(test_menu_items_with_nulls_and_arrays),
        cmocka_unit_test(test_orders_enums_bigint_timestamps),
        cmocka_unit_test(test_broken_results_are_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
