/* test_data.c — typed data access on the real schema: tenants, categories
 * and menu items created and decoded; menu listing filters and order;
 * orders priced from the stored prices only, atomically, refusing another
 * tenant's items; the order status state machine; and another tenant
 * neither reading nor changing an order. Each test makes its own tenants in
 * one scratch database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_scratch.h"
#include "gp_test.h"
#include "gp_test_data.h"

static gp_scratch_t scratch;
static gp_config_t cfg;
static gp_pool_t *pool;

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "data");
    gp_scratch_migrate(&scratch);
    gp_scratch_config(&scratch, &cfg);
    cfg.db.pool_min = 0;
    cfg.db.pool_max = 2;
    cfg.db.acquire_timeout_ms = 5000;
    assert_int_equal(gp_pool_create(&cfg, &pool, NULL), GP_OK);
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

static uint64_t acquires(void)
{
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(pool, &m), GP_OK);
    return m.acquires;
}

static void exec_ok(const char *tenant, const char *sql, const char *uuid_param)
{
    gp_error_t e;
    gp_value_t p = gp_uuid_str(uuid_param);
    gp_status_t st = gp_tenant_exec(pool, tenant, sql, 1, &p, NULL, &e);
    if (st != GP_OK)
        fprintf(stderr, "%s: %s\n", sql, e.message);
    assert_int_equal(st, GP_OK);
}

static int64_t orders_of(const char *tenant)
{
    return gp_test_data_scalar(pool, tenant, "SELECT count(*) FROM orders", NULL);
}

static int64_t order_items_of(const char *tenant)
{
    return gp_test_data_scalar(pool, tenant, "SELECT count(*) FROM order_items", NULL);
}

static gp_status_t order1(const char *tenant, const char *item, int32_t qty, gp_row_orders_t *out, gp_error_t *e)
{
    gp_data_order_line_t line = {item, qty};
    gp_data_new_order_t o = {.lines = &line, .n_lines = 1};
    return gp_data_create_order(pool, tenant, &o, out, NULL, NULL, e);
}

static void test_create_tenant(void **state)
{
    (void)state;
    gp_error_t e;
    char id[37];
    assert_int_equal(gp_data_create_tenant(pool, "tenant-new", "New Place", "pro", id, &e), GP_OK);
    assert_true(gp_tenant_id_valid(id, NULL, 0));
    gp_result_t *r = NULL;
    assert_int_equal(gp_tenant_query(pool, id, "SELECT " GP_TENANTS_COLUMNS " FROM tenants", 0, NULL, &r, &e), GP_OK);
    gp_row_tenants_t *t;
    size_t n;
    assert_int_equal(gp_row_tenants_decode_all(r, &t, &n, &e), GP_OK);
    gp_result_free(r);
    assert_int_equal(n, 1);
    assert_string_equal(t[0].slug, "tenant-new");
    assert_string_equal(t[0].name, "New Place");
    assert_string_equal(t[0].plan, "pro");
    assert_int_equal(t[0].status, GP_TENANT_STATUS_ACTIVE);
    char got[37];
    assert_string_equal(gp_uuid_format(&t[0].id, got), id);
    gp_row_tenants_free_all(t, n);

    /* Default plan; a 200-character name of 2-byte characters is fine (the
     * limit counts characters, as the schema's length() does). */
    char name[401];
    for (int i = 0; i < 200; i++)
        memcpy(name + 2 * i, "\xc3\xa9", 2);
    name[400] = 0;
    char id2[37];
    assert_int_equal(gp_data_create_tenant(pool, "tenant-accent", name, NULL, id2, &e), GP_OK);
    assert_int_equal(gp_test_data_scalar(pool, id2, "SELECT count(*) FROM tenants WHERE plan = 'free'", NULL), 1);

    /* The slug is taken: the server's unique violation, no id. */
    assert_int_equal(gp_data_create_tenant(pool, "tenant-new", "Again", NULL, id, &e), GP_ERR_SERVER);
    assert_int_equal(e.klass, GP_ECLASS_UNIQUE);
    assert_string_equal(e.constraint_name, "tenants_slug_key");
    assert_string_equal(id, "");
    /* A plan the schema refuses. */
    assert_int_equal(gp_data_create_tenant(pool, "tenant-gold", "Gold", "gold", id, &e), GP_ERR_SERVER);
    assert_int_equal(e.klass, GP_ECLASS_CHECK);
    assert_string_equal(e.constraint_name, "tenants_plan_check");

    /* Malformed input never reaches SQL and is not echoed. */
    uint64_t before = acquires();
    char long_slug[65];
    memset(long_slug, 'a', 64);
    long_slug[64] = 0;
    const char *bad_slugs[] = {"", "-lead", "trail-", "Upper", "a b", long_slug, "x';DROP TABLE tenants;--"};
    for (size_t i = 0; i < sizeof bad_slugs / sizeof *bad_slugs; i++) {
        assert_int_equal(gp_data_create_tenant(pool, bad_slugs[i], "Name", NULL, id, &e), GP_ERR_INVALID);
        assert_non_null(strstr(e.message, "slug"));
        assert_null(strstr(e.message, "DROP"));
    }
    char long_name[202];
    memset(long_name, 'n', 201);
    long_name[201] = 0;
    assert_int_equal(gp_data_create_tenant(pool, "ok-slug", "   ", NULL, id, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "empty"));
    assert_int_equal(gp_data_create_tenant(pool, "ok-slug", long_name, NULL, id, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "201 characters"));
    assert_int_equal(gp_data_create_tenant(pool, "ok-slug", NULL, NULL, id, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_create_tenant(pool, NULL, "Name", NULL, id, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_create_tenant(pool, "ok-slug", "Name", "", id, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_create_tenant(pool, "ok-slug", "Name", NULL, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_create_tenant(NULL, "ok-slug", "Name", NULL, id, &e), GP_ERR_INVALID);
    assert_int_equal(acquires(), before);
}

static void test_create_category_and_item(void **state)
{
    (void)state;
    char a[37], b[37];
    gp_test_data_tenant(pool, "cat-a", a);
    gp_test_data_tenant(pool, "cat-b", b);
    gp_error_t e;
    gp_row_menu_categories_t cat;
    assert_int_equal(gp_data_create_category(pool, a, "Mains", 3, &cat, &e), GP_OK);
    char s[37];
    assert_string_equal(gp_uuid_format(&cat.tenant_id, s), a);
    assert_string_equal(cat.name, "Mains");
    assert_int_equal(cat.position, 3);
    assert_true(cat.created_at > 0 && cat.updated_at == cat.created_at);
    char cat_id[37];
    gp_uuid_format(&cat.id, cat_id);
    gp_row_menu_categories_free(&cat);
    /* Without an out row; a duplicate name is the server's unique violation. */
    assert_int_equal(gp_data_create_category(pool, a, "Drinks", 1, NULL, &e), GP_OK);
    assert_int_equal(gp_data_create_category(pool, a, "Mains", 9, NULL, &e), GP_ERR_SERVER);
    assert_int_equal(e.klass, GP_ECLASS_UNIQUE);
    /* Same name in another tenant is another category. */
    assert_int_equal(gp_data_create_category(pool, b, "Mains", 1, NULL, &e), GP_OK);

    const char *tags[] = {"vegan", "spicy"};
    gp_row_menu_items_t it;
    assert_int_equal(gp_data_create_menu_item(pool, a, cat_id, "Curry", NULL, 1450, tags, 2, false, &it, &e), GP_OK);
    assert_string_equal(gp_uuid_format(&it.tenant_id, s), a);
    assert_string_equal(gp_uuid_format(&it.category_id, s), cat_id);
    assert_string_equal(it.name, "Curry");
    assert_true(it.description_is_null);
    assert_null(it.description);
    assert_int_equal(it.price_cents, 1450);
    assert_true(it.calories_is_null);
    assert_false(it.available);
    assert_int_equal(it.tags_count, 2);
    assert_string_equal(it.tags[0], "vegan");
    assert_string_equal(it.tags[1], "spicy");
    gp_row_menu_items_free(&it);
    assert_int_equal(gp_data_create_menu_item(pool, a, cat_id, "Rice", "Steamed, jasmine", 0, NULL, 0, true, &it, &e),
                     GP_OK);
    assert_false(it.description_is_null);
    assert_string_equal(it.description, "Steamed, jasmine");
    assert_int_equal(it.tags_count, 0);
    assert_true(it.available);
    gp_row_menu_items_free(&it);
    assert_int_equal(gp_data_create_menu_item(pool, a, cat_id, "Rice", NULL, 1, NULL, 0, true, NULL, &e),
                     GP_ERR_SERVER);
    assert_int_equal(e.klass, GP_ECLASS_UNIQUE);

    /* Another tenant's category does not exist for this one. */
    assert_int_equal(gp_data_create_menu_item(pool, b, cat_id, "Stolen", NULL, 100, NULL, 0, true, &it, &e),
                     GP_ERR_NOT_FOUND);
    assert_non_null(strstr(e.message, cat_id));
    assert_int_equal(gp_test_data_scalar(pool, b, "SELECT count(*) FROM menu_items", NULL), 0);
    assert_int_equal(gp_data_create_menu_item(pool, a, "00000000-0000-4000-8000-000000000000", "Ghost", NULL, 100,
                                              NULL, 0, true, NULL, &e),
                     GP_ERR_NOT_FOUND);

    /* Bad arguments never reach SQL. */
    uint64_t before = acquires();
    const char *null_tag[] = {"ok", NULL};
    assert_int_equal(gp_data_create_category(pool, "not-a-tenant", "X", 0, NULL, &e), GP_ERR_TENANT);
    assert_int_equal(gp_data_create_category(pool, a, "", 0, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_create_category(NULL, a, "X", 0, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_create_menu_item(pool, a, "nope", "X", NULL, 1, NULL, 0, true, NULL, &e),
                     GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "category id is not a UUID"));
    assert_int_equal(gp_data_create_menu_item(pool, a, NULL, "X", NULL, 1, NULL, 0, true, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_create_menu_item(pool, a, cat_id, "X", NULL, -1, NULL, 0, true, NULL, &e),
                     GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "negative"));
    assert_int_equal(gp_data_create_menu_item(pool, a, cat_id, "X", NULL, 1, null_tag, 2, true, NULL, &e),
                     GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "tag 2"));
    assert_int_equal(gp_data_create_menu_item(pool, a, cat_id, "X", NULL, 1, NULL, 1, true, NULL, &e),
                     GP_ERR_INVALID);
    assert_int_equal(gp_data_create_menu_item(pool, a, cat_id, "X", NULL, 1, tags, GP_DATA_MAX_TAGS + 1, true, NULL,
                                              &e),
                     GP_ERR_INVALID);
    assert_int_equal(gp_data_create_menu_item(pool, "", cat_id, "X", NULL, 1, NULL, 0, true, NULL, &e),
                     GP_ERR_TENANT);
    assert_int_equal(acquires(), before);
}

static void test_list_menu_items(void **state)
{
    (void)state;
    char a[37], b[37], mains[37], drinks[37], desserts[37], id[37];
    gp_test_data_tenant(pool, "list-a", a);
    gp_test_data_tenant(pool, "list-b", b);
    /* Positions 2, 1, 2: drinks first, then desserts and mains by name. */
    gp_test_data_category(pool, a, "Mains", 2, mains);
    gp_test_data_category(pool, a, "Drinks", 1, drinks);
    gp_test_data_category(pool, a, "Desserts", 2, desserts);
    gp_test_data_item(pool, a, mains, "Steak", 2500, true, id);
    gp_test_data_item(pool, a, mains, "Burger", 1200, false, id);
    gp_test_data_item(pool, a, drinks, "Water", 100, true, id);
    gp_test_data_item(pool, a, drinks, "Cola", 300, true, id);
    gp_test_data_item(pool, a, desserts, "Tart", 600, false, id);
    gp_test_data_item(pool, a, desserts, "Ice cream", 500, true, id);
    char b_cat[37], b_item[37];
    gp_test_data_category(pool, b, "Mains", 0, b_cat);
    gp_test_data_item(pool, b, b_cat, "Secret", 1, true, b_item);

    struct {
        const char *cat;
        bool avail;
        const char *expect;
    } cases[] = {
        {NULL, false, "Cola,Water,Ice cream,Tart,Burger,Steak,"},
        {NULL, true, "Cola,Water,Ice cream,Steak,"},
        {mains, false, "Burger,Steak,"},
        {mains, true, "Steak,"},
        {desserts, true, "Ice cream,"},
        {b_cat, false, ""}, /* another tenant's category: nothing */
        {"00000000-0000-4000-8000-000000000000", false, ""},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        gp_row_menu_items_t *rows = (gp_row_menu_items_t *)1;
        size_t n = 99;
        gp_error_t e;
        assert_int_equal(gp_data_list_menu_items(pool, a, cases[c].cat, cases[c].avail, &rows, &n, &e), GP_OK);
        char got[256] = "";
        for (size_t i = 0; i < n; i++) {
            char s[37];
            assert_string_equal(gp_uuid_format(&rows[i].tenant_id, s), a);
            if (cases[c].avail)
                assert_true(rows[i].available);
            if (cases[c].cat)
                assert_string_equal(gp_uuid_format(&rows[i].category_id, s), cases[c].cat);
            strcat(got, rows[i].name);
            strcat(got, ",");
        }
        assert_string_equal(got, cases[c].expect);
        if (n == 0)
            assert_null(rows);
        gp_row_menu_items_free_all(rows, n);
    }
    /* Tenant b sees its own item only. */
    gp_row_menu_items_t *rows;
    size_t n;
    gp_error_t e;
    assert_int_equal(gp_data_list_menu_items(pool, b, NULL, false, &rows, &n, &e), GP_OK);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].name, "Secret");
    gp_row_menu_items_free_all(rows, n);
    assert_int_equal(gp_data_list_menu_items(pool, b, mains, false, &rows, &n, &e), GP_OK);
    assert_int_equal(n, 0);

    uint64_t before = acquires();
    assert_int_equal(gp_data_list_menu_items(pool, a, "{bad", false, &rows, &n, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_list_menu_items(pool, a, NULL, false, NULL, &n, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_list_menu_items(pool, a, NULL, false, &rows, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_list_menu_items(pool, "A", NULL, false, &rows, &n, &e), GP_ERR_TENANT);
    assert_int_equal(acquires(), before);
}

static void test_order_totals_from_stored_prices(void **state)
{
    (void)state;
    char t[37], cat[37], burger[37], fries[37];
    gp_test_data_tenant(pool, "price-a", t);
    gp_test_data_category(pool, t, "Mains", 0, cat);
    gp_test_data_item(pool, t, cat, "Burger", 1250, true, burger);
    gp_test_data_item(pool, t, cat, "Fries", 399, true, fries);

    /* The same item may appear on two lines. */
    gp_data_order_line_t lines[] = {{burger, 2}, {fries, 3}, {burger, 1}};
    gp_data_new_order_t o = {.note = "no onions", .lines = lines, .n_lines = 3};
    gp_row_orders_t first;
    gp_row_order_items_t *items;
    size_t n;
    gp_error_t e;
    assert_int_equal(gp_data_create_order(pool, t, &o, &first, &items, &n, &e), GP_OK);
    assert_int_equal(first.total_cents, 3 * 1250 + 3 * 399);
    assert_int_equal(first.status, GP_ORDER_STATUS_PENDING);
    assert_true(first.customer_id_is_null);
    assert_string_equal(first.note, "no onions");
    assert_true(first.completed_at_is_null);
    assert_true(first.placed_at > 0);
    char s[37], first_id[37];
    assert_string_equal(gp_uuid_format(&first.tenant_id, s), t);
    gp_uuid_format(&first.id, first_id);
    assert_int_equal(n, 3);
    const int32_t want_qty[] = {2, 3, 1}, want_price[] = {1250, 399, 1250};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(items[i].line_no, (int32_t)i + 1);
        assert_string_equal(gp_uuid_format(&items[i].menu_item_id, s), lines[i].menu_item_id);
        assert_string_equal(gp_uuid_format(&items[i].order_id, s), first_id);
        assert_int_equal(items[i].quantity, want_qty[i]);
        assert_int_equal(items[i].unit_price_cents, want_price[i]);
    }
    gp_row_order_items_free_all(items, n);
    gp_row_orders_free(&first);

    /* The price changes: new orders pay the new price, the old one keeps its. */
    exec_ok(t, "UPDATE menu_items SET price_cents = 1500 WHERE id = $1", burger);
    gp_row_orders_t second;
    assert_int_equal(order1(t, burger, 2, &second, &e), GP_OK);
    assert_int_equal(second.total_cents, 3000);
    gp_row_orders_free(&second);
    gp_row_orders_t again;
    assert_int_equal(gp_data_get_order(pool, t, first_id, &again, &items, &n, &e), GP_OK);
    assert_int_equal(again.total_cents, 3 * 1250 + 3 * 399);
    assert_int_equal(n, 3);
    assert_int_equal(items[0].unit_price_cents, 1250);
    assert_int_equal(items[2].unit_price_cents, 1250);
    gp_row_order_items_free_all(items, n);
    gp_row_orders_free(&again);
    /* Every stored total is the sum of its lines. */
    assert_int_equal(gp_test_data_scalar(pool, t,
                                         "SELECT count(*) FROM orders o WHERE total_cents <> (SELECT "
                                         "sum(quantity * unit_price_cents) FROM order_items i WHERE i.order_id = o.id)",
                                         NULL),
                     0);

    /* A customer of the tenant; another tenant's user is not one. */
    char other[37];
    gp_test_data_tenant(pool, "price-b", other);
    gp_result_t *r = NULL;
    const char *user_sql = "INSERT INTO users (tenant_id, email, display_name, role) VALUES "
                           "(growplate_tenant(), 'ann@example.com', 'Ann', 'customer') "
                           "RETURNING id::text";
    assert_int_equal(gp_tenant_query(pool, t, user_sql, 0, NULL, &r, &e), GP_OK);
    const char *txt;
    char ann[37], bob[37];
    assert_int_equal(gp_get_text(r, 0, 0, &txt, NULL), GP_OK);
    snprintf(ann, sizeof ann, "%s", txt);
    gp_result_free(r);
    assert_int_equal(gp_tenant_query(pool, other, user_sql, 0, NULL, &r, &e), GP_OK);
    assert_int_equal(gp_get_text(r, 0, 0, &txt, NULL), GP_OK);
    snprintf(bob, sizeof bob, "%s", txt);
    gp_result_free(r);

    gp_data_order_line_t one = {fries, 1};
    gp_data_new_order_t with_customer = {.customer_id = ann, .lines = &one, .n_lines = 1};
    gp_row_orders_t third;
    assert_int_equal(gp_data_create_order(pool, t, &with_customer, &third, NULL, NULL, &e), GP_OK);
    assert_false(third.customer_id_is_null);
    assert_string_equal(gp_uuid_format(&third.customer_id, s), ann);
    assert_true(third.note_is_null);
    assert_int_equal(third.total_cents, 399);
    gp_row_orders_free(&third);
    int64_t orders = orders_of(t), lines_before = order_items_of(t);
    with_customer.customer_id = bob;
    assert_int_equal(gp_data_create_order(pool, t, &with_customer, &third, NULL, NULL, &e), GP_ERR_NOT_FOUND);
    assert_non_null(strstr(e.message, bob));
    assert_non_null(strstr(e.message, "customer"));
    assert_int_equal(orders_of(t), orders);
    assert_int_equal(order_items_of(t), lines_before);
}

static void test_order_refuses_foreign_unavailable_and_bad_lines(void **state)
{
    (void)state;
    char a[37], b[37], cat_a[37], cat_b[37], soup[37], gone[37], theirs[37];
    gp_test_data_tenant(pool, "refuse-a", a);
    gp_test_data_tenant(pool, "refuse-b", b);
    gp_test_data_category(pool, a, "Soups", 0, cat_a);
    gp_test_data_category(pool, b, "Soups", 0, cat_b);
    gp_test_data_item(pool, a, cat_a, "Soup", 700, true, soup);
    gp_test_data_item(pool, a, cat_a, "Bisque", 900, false, gone);
    gp_test_data_item(pool, b, cat_b, "Their soup", 1, true, theirs);

    gp_error_t e;
    gp_row_orders_t o;
    gp_data_order_line_t foreign[] = {{soup, 1}, {theirs, 5}};
    gp_data_new_order_t in = {.lines = foreign, .n_lines = 2};
    assert_int_equal(gp_data_create_order(pool, a, &in, &o, NULL, NULL, &e), GP_ERR_NOT_FOUND);
    assert_non_null(strstr(e.message, theirs));
    assert_non_null(strstr(e.message, "line 2"));
    assert_int_equal(orders_of(a), 0);
    assert_int_equal(order_items_of(a), 0);
    assert_int_equal(orders_of(b), 0);
    assert_int_equal(order_items_of(b), 0);

    gp_data_order_line_t unavailable[] = {{soup, 1}, {gone, 1}};
    in.lines = unavailable;
    assert_int_equal(gp_data_create_order(pool, a, &in, &o, NULL, NULL, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "'Bisque'"));
    assert_non_null(strstr(e.message, "not available"));
    assert_int_equal(orders_of(a), 0);

    /* Quantities: 1..1000. */
    uint64_t before = acquires();
    gp_data_order_line_t qty[] = {{soup, 1}, {soup, 0}};
    in.lines = qty;
    assert_int_equal(gp_data_create_order(pool, a, &in, &o, NULL, NULL, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "line 2: quantity 0"));
    qty[1].quantity = GP_DATA_MAX_QUANTITY + 1;
    assert_int_equal(gp_data_create_order(pool, a, &in, &o, NULL, NULL, &e), GP_ERR_INVALID);
    qty[1].quantity = -5;
    assert_int_equal(gp_data_create_order(pool, a, &in, &o, NULL, NULL, &e), GP_ERR_INVALID);
    /* Ids, line counts, pointers. */
    gp_data_order_line_t bad_id[] = {{"not-a-uuid", 1}};
    in.lines = bad_id;
    in.n_lines = 1;
    assert_int_equal(gp_data_create_order(pool, a, &in, &o, NULL, NULL, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "line 1: menu item id is not a UUID"));
    bad_id[0].menu_item_id = NULL;
    assert_int_equal(gp_data_create_order(pool, a, &in, &o, NULL, NULL, &e), GP_ERR_INVALID);
    in.lines = qty;
    in.n_lines = 0;
    assert_int_equal(gp_data_create_order(pool, a, &in, &o, NULL, NULL, &e), GP_ERR_INVALID);
    in.n_lines = GP_DATA_MAX_ORDER_LINES + 1;
    assert_int_equal(gp_data_create_order(pool, a, &in, &o, NULL, NULL, &e), GP_ERR_INVALID);
    in.n_lines = 1;
    in.customer_id = "nobody";
    assert_int_equal(gp_data_create_order(pool, a, &in, &o, NULL, NULL, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "customer id"));
    in.customer_id = NULL;
    size_t n;
    gp_row_order_items_t *items;
    assert_int_equal(gp_data_create_order(pool, a, &in, NULL, NULL, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_create_order(pool, a, NULL, &o, NULL, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_create_order(pool, a, &in, &o, &items, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_create_order(pool, "", &in, &o, &items, &n, &e), GP_ERR_TENANT);
    assert_int_equal(acquires(), before);
    assert_int_equal(orders_of(a), 0);

    /* The limits themselves are fine. */
    qty[0].quantity = GP_DATA_MAX_QUANTITY;
    assert_int_equal(gp_data_create_order(pool, a, &in, &o, &items, &n, &e), GP_OK);
    assert_int_equal(o.total_cents, (int64_t)GP_DATA_MAX_QUANTITY * 700);
    assert_int_equal(n, 1);
    gp_row_order_items_free_all(items, n);
    gp_row_orders_free(&o);
}

static void test_status_transitions(void **state)
{
    (void)state;
    /* The whole table of the state machine. */
    static const char *const allowed[GP_ORDER_STATUS_COUNT_] = {
        [GP_ORDER_STATUS_PENDING] = "confirmed,cancelled",
        [GP_ORDER_STATUS_CONFIRMED] = "preparing,cancelled",
        [GP_ORDER_STATUS_PREPARING] = "ready,cancelled",
        [GP_ORDER_STATUS_READY] = "completed,cancelled",
        [GP_ORDER_STATUS_COMPLETED] = "",
        [GP_ORDER_STATUS_CANCELLED] = "",
    };
    for (int f = 0; f < GP_ORDER_STATUS_COUNT_; f++) {
        char got[128] = "";
        for (int t = 0; t < GP_ORDER_STATUS_COUNT_; t++)
            if (gp_data_order_status_can_change(f, t))
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", *got ? "," : "",
                         gp_order_status_label(t));
        assert_string_equal(got, allowed[f]);
        assert_false(gp_data_order_status_can_change(f, GP_ORDER_STATUS_COUNT_));
        assert_false(gp_data_order_status_can_change(GP_ORDER_STATUS_COUNT_, f));
    }

    char t[37], cat[37], item[37];
    gp_test_data_tenant(pool, "status-a", t);
    gp_test_data_category(pool, t, "All", 0, cat);
    gp_test_data_item(pool, t, cat, "Thing", 100, true, item);
    gp_error_t e;
    gp_row_orders_t o;
    assert_int_equal(order1(t, item, 1, &o, &e), GP_OK);
    char id[37];
    gp_uuid_format(&o.id, id);
    gp_row_orders_free(&o);

    /* Refused: skipping steps, staying put. Nothing changes. */
    assert_int_equal(gp_data_set_order_status(pool, t, id, GP_ORDER_STATUS_READY, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, id));
    assert_non_null(strstr(e.message, "from 'pending' to 'ready'"));
    assert_int_equal(gp_data_set_order_status(pool, t, id, GP_ORDER_STATUS_PENDING, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "already"));
    assert_int_equal(gp_data_set_order_status(pool, t, id, GP_ORDER_STATUS_COMPLETED, &e), GP_ERR_INVALID);

    /* The happy path; each step sets updated_at (reset to the past first). */
    const gp_order_status_t path[] = {GP_ORDER_STATUS_CONFIRMED, GP_ORDER_STATUS_PREPARING, GP_ORDER_STATUS_READY,
                                      GP_ORDER_STATUS_COMPLETED};
    for (size_t i = 0; i < sizeof path / sizeof *path; i++) {
        exec_ok(t, "UPDATE orders SET updated_at = '2000-01-01Z' WHERE id = $1", id);
        assert_int_equal(gp_data_set_order_status(pool, t, id, path[i], &e), GP_OK);
        assert_int_equal(gp_data_get_order(pool, t, id, &o, NULL, NULL, &e), GP_OK);
        assert_int_equal(o.status, path[i]);
        assert_true(o.updated_at > INT64_C(946684800000000));
        if (path[i] == GP_ORDER_STATUS_COMPLETED) {
            assert_false(o.completed_at_is_null);
            assert_int_equal(o.completed_at, o.updated_at); /* the same transaction's time */
        } else {
            assert_true(o.completed_at_is_null);
        }
        gp_row_orders_free(&o);
    }
    /* Completed is final. */
    assert_int_equal(gp_data_set_order_status(pool, t, id, GP_ORDER_STATUS_CANCELLED, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "from 'completed' to 'cancelled' (completed is final)"));
    assert_int_equal(gp_data_set_order_status(pool, t, id, GP_ORDER_STATUS_PENDING, &e), GP_ERR_INVALID);

    /* Every non-final status can be cancelled; cancelled is final. */
    for (size_t steps = 0; steps < 4; steps++) {
        assert_int_equal(order1(t, item, 1, &o, &e), GP_OK);
        char oid[37];
        gp_uuid_format(&o.id, oid);
        gp_row_orders_free(&o);
        for (size_t i = 0; i < steps; i++)
            assert_int_equal(gp_data_set_order_status(pool, t, oid, path[i], &e), GP_OK);
        assert_int_equal(gp_data_set_order_status(pool, t, oid, GP_ORDER_STATUS_CANCELLED, &e), GP_OK);
        assert_int_equal(gp_data_get_order(pool, t, oid, &o, NULL, NULL, &e), GP_OK);
        assert_int_equal(o.status, GP_ORDER_STATUS_CANCELLED);
        assert_true(o.completed_at_is_null);
        gp_row_orders_free(&o);
        assert_int_equal(gp_data_set_order_status(pool, t, oid, GP_ORDER_STATUS_CONFIRMED, &e), GP_ERR_INVALID);
        assert_non_null(strstr(e.message, "cancelled is final"));
    }

    uint64_t before = acquires();
    assert_int_equal(gp_data_set_order_status(pool, t, id, GP_ORDER_STATUS_COUNT_, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_set_order_status(pool, t, id, (gp_order_status_t)-1, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_set_order_status(pool, t, "x", GP_ORDER_STATUS_CONFIRMED, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_set_order_status(pool, t, NULL, GP_ORDER_STATUS_CONFIRMED, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_set_order_status(NULL, t, id, GP_ORDER_STATUS_CONFIRMED, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_set_order_status(pool, "x", id, GP_ORDER_STATUS_CONFIRMED, &e), GP_ERR_TENANT);
    assert_int_equal(acquires(), before);
}

static void test_other_tenant_cannot_read_or_update_an_order(void **state)
{
    (void)state;
    char a[37], b[37], cat[37], item[37];
    gp_test_data_tenant(pool, "iso-a", a);
    gp_test_data_tenant(pool, "iso-b", b);
    gp_test_data_category(pool, a, "All", 0, cat);
    gp_test_data_item(pool, a, cat, "Thing", 250, true, item);
    gp_error_t e;
    gp_row_orders_t o;
    assert_int_equal(order1(a, item, 4, &o, &e), GP_OK);
    char id[37];
    gp_uuid_format(&o.id, id);
    gp_row_orders_free(&o);

    gp_row_order_items_t *items = (gp_row_order_items_t *)1;
    size_t n = 7;
    assert_int_equal(gp_data_get_order(pool, b, id, &o, &items, &n, &e), GP_ERR_NOT_FOUND);
    assert_non_null(strstr(e.message, id));
    assert_null(items);
    assert_int_equal(n, 0);
    assert_int_equal(gp_data_set_order_status(pool, b, id, GP_ORDER_STATUS_CANCELLED, &e), GP_ERR_NOT_FOUND);
    assert_non_null(strstr(e.message, id));
    /* Nor can b order a's item. */
    assert_int_equal(order1(b, item, 1, &o, &e), GP_ERR_NOT_FOUND);
    assert_int_equal(orders_of(b), 0);
    /* Unchanged for a. */
    assert_int_equal(gp_data_get_order(pool, a, id, &o, &items, &n, &e), GP_OK);
    assert_int_equal(o.status, GP_ORDER_STATUS_PENDING);
    assert_int_equal(o.total_cents, 1000);
    assert_int_equal(n, 1);
    gp_row_order_items_free_all(items, n);
    gp_row_orders_free(&o);
    /* A well-formed id that exists nowhere. */
    assert_int_equal(gp_data_get_order(pool, a, "ffffffff-ffff-4fff-bfff-ffffffffffff", &o, NULL, NULL, &e),
                     GP_ERR_NOT_FOUND);
    assert_int_equal(gp_data_set_order_status(pool, a, "ffffffff-ffff-4fff-bfff-ffffffffffff",
                                              GP_ORDER_STATUS_CONFIRMED, &e),
                     GP_ERR_NOT_FOUND);
}

static void test_get_order(void **state)
{
    (void)state;
    char t[37], cat[37], x[37], y[37];
    gp_test_data_tenant(pool, "get-a", t);
    gp_test_data_category(pool, t, "All", 0, cat);
    gp_test_data_item(pool, t, cat, "X", 10, true, x);
    gp_test_data_item(pool, t, cat, "Y", 20, true, y);
    gp_data_order_line_t lines[5] = {{y, 1}, {x, 2}, {y, 3}, {x, 4}, {y, 5}};
    gp_data_new_order_t in = {.lines = lines, .n_lines = 5};
    gp_error_t e;
    gp_row_orders_t created, o;
    assert_int_equal(gp_data_create_order(pool, t, &in, &created, NULL, NULL, &e), GP_OK);
    assert_int_equal(created.total_cents, 20 + 20 + 60 + 40 + 100);
    char id[37];
    gp_uuid_format(&created.id, id);

    /* The order alone, then with its items in line order. */
    assert_int_equal(gp_data_get_order(pool, t, id, &o, NULL, NULL, &e), GP_OK);
    assert_memory_equal(o.id.bytes, created.id.bytes, 16);
    assert_int_equal(o.total_cents, created.total_cents);
    assert_int_equal(o.placed_at, created.placed_at);
    gp_row_orders_free(&o);
    gp_row_order_items_t *items;
    size_t n;
    /* Any form gp_uuid_parse accepts; uppercase here. */
    char upper[37];
    for (int i = 0; i < 37; i++)
        upper[i] = (char)(id[i] >= 'a' && id[i] <= 'f' ? id[i] - 32 : id[i]);
    assert_int_equal(gp_data_get_order(pool, t, upper, &o, &items, &n, &e), GP_OK);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        char s[37];
        assert_int_equal(items[i].line_no, (int32_t)i + 1);
        assert_int_equal(items[i].quantity, lines[i].quantity);
        assert_string_equal(gp_uuid_format(&items[i].menu_item_id, s), lines[i].menu_item_id);
        assert_int_equal(items[i].unit_price_cents, lines[i].menu_item_id == x ? 10 : 20);
    }
    gp_row_order_items_free_all(items, n);
    gp_row_orders_free(&o);
    gp_row_orders_free(&created);

    uint64_t before = acquires();
    assert_int_equal(gp_data_get_order(pool, t, "nope", &o, NULL, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_get_order(pool, t, id, NULL, NULL, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_get_order(pool, t, id, &o, &items, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_get_order(pool, NULL, id, &o, NULL, NULL, &e), GP_ERR_TENANT);
    assert_int_equal(acquires(), before);
    /* err may be NULL. */
    assert_int_equal(gp_data_get_order(pool, t, id, &o, NULL, NULL, NULL), GP_OK);
    gp_row_orders_free(&o);
    assert_int_equal(gp_data_get_order(pool, t, "ffffffff-ffff-4fff-bfff-ffffffffffff", &o, NULL, NULL, NULL),
                     GP_ERR_NOT_FOUND);
}

/* Every page of a listing joined: "name,name,...", and the page sizes "3,3,1". */
static void pages_of(const char *tenant, const char *cat, bool avail, int limit, const char *first_cursor, char *names,
                     size_t nlen, char *sizes, size_t slen)
{
    names[0] = sizes[0] = 0;
    char *cursor = first_cursor ? strdup(first_cursor) : NULL;
    for (int guard = 0; guard < 100; guard++) {
        gp_data_page_opts_t page = {.limit = limit, .cursor = cursor};
        gp_row_menu_items_t *rows = NULL;
        size_t n = 0;
        char *next = NULL;
        gp_error_t e;
        gp_status_t st = gp_data_list_menu_items_page(pool, tenant, cat, avail, &page, &rows, &n, &next, &e);
        if (st != GP_OK)
            fprintf(stderr, "page: %s\n", e.message);
        assert_int_equal(st, GP_OK);
        for (size_t i = 0; i < n; i++)
            snprintf(names + strlen(names), nlen - strlen(names), "%s,", rows[i].name);
        snprintf(sizes + strlen(sizes), slen - strlen(sizes), "%s%zu", sizes[0] ? "," : "", n);
        gp_row_menu_items_free_all(rows, n);
        free(cursor);
        cursor = next;
        if (!cursor)
            return;
    }
    fail_msg("no last page after 100 pages");
}

static void test_list_menu_items_pages(void **state)
{
    (void)state;
    char a[37], b[37], mains[37], drinks[37], desserts[37], id[37];
    gp_test_data_tenant(pool, "page-a", a);
    gp_test_data_tenant(pool, "page-b", b);
    gp_test_data_category(pool, a, "Mains", 2, mains);
    gp_test_data_category(pool, a, "Drinks", 1, drinks);
    gp_test_data_category(pool, a, "Desserts", 2, desserts);
    gp_test_data_item(pool, a, mains, "Steak", 2500, true, id);
    gp_test_data_item(pool, a, mains, "Burger", 1200, false, id);
    gp_test_data_item(pool, a, drinks, "Water", 100, true, id);
    gp_test_data_item(pool, a, drinks, "Cola", 300, true, id);
    gp_test_data_item(pool, a, desserts, "Tart", 600, false, id);
    gp_test_data_item(pool, a, desserts, "Ice cream", 500, true, id);
    gp_test_data_item(pool, a, desserts, "Crème brûlée", 700, true, id);
    char b_cat[37];
    gp_test_data_category(pool, b, "Aaa first", -5, b_cat);
    gp_test_data_item(pool, b, b_cat, "B secret", 1, true, id);
    gp_test_data_item(pool, b, b_cat, "B hidden", 1, true, id);

    char names[512], sizes[64];
    pages_of(a, NULL, false, 3, NULL, names, sizeof names, sizes, sizeof sizes);
    assert_string_equal(names, "Cola,Water,Crème brûlée,Ice cream,Tart,Burger,Steak,");
    assert_string_equal(sizes, "3,3,1");
    pages_of(a, NULL, false, 7, NULL, names, sizeof names, sizes, sizeof sizes);
    assert_string_equal(sizes, "7"); /* exactly one page: no cursor to an empty page */
    pages_of(a, NULL, true, 2, NULL, names, sizeof names, sizes, sizeof sizes);
    assert_string_equal(names, "Cola,Water,Crème brûlée,Ice cream,Steak,");
    assert_string_equal(sizes, "2,2,1");
    pages_of(a, mains, false, 1, NULL, names, sizeof names, sizes, sizeof sizes);
    assert_string_equal(names, "Burger,Steak,");
    pages_of(a, b_cat, false, 5, NULL, names, sizeof names, sizes, sizeof sizes);
    assert_string_equal(names, ""); /* another tenant's category: nothing */

    /* Rows added and removed between pages: none repeated, none that stays skipped. */
    gp_data_page_opts_t page = {.limit = 3};
    gp_row_menu_items_t *rows = NULL;
    size_t n = 0;
    char *next = NULL;
    gp_error_t e;
    assert_int_equal(gp_data_list_menu_items_page(pool, a, NULL, false, &page, &rows, &n, &next, &e), GP_OK);
    assert_int_equal(n, 3);
    assert_non_null(next);
    gp_row_menu_items_free_all(rows, n);
    gp_test_data_item(pool, a, drinks, "Apple juice", 250, true, id); /* sorts before the cursor */
    assert_int_equal(gp_test_data_scalar(pool, a, "SELECT count(*) FROM menu_items WHERE name = 'Tart'", NULL), 1);
    gp_value_t tp = gp_text("Tart");
    assert_int_equal(gp_tenant_exec(pool, a, "DELETE FROM menu_items WHERE name = $1", 1, &tp, NULL, &e), GP_OK);
    pages_of(a, NULL, false, 3, next, names, sizeof names, sizes, sizeof sizes);
    assert_string_equal(names, "Ice cream,Burger,Steak,");
    free(next);

    /* The attack: B's own cursor (its rows sort first), used as A: only A's rows, nothing of B's. */
    page = (gp_data_page_opts_t){.limit = 1};
    assert_int_equal(gp_data_list_menu_items_page(pool, b, NULL, false, &page, &rows, &n, &next, &e), GP_OK);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].name, "B hidden");
    gp_row_menu_items_free_all(rows, n);
    pages_of(a, NULL, false, 100, next, names, sizeof names, sizes, sizeof sizes);
    assert_string_equal(names, "Apple juice,Cola,Water,Crème brûlée,Ice cream,Burger,Steak,");
    free(next);
    assert_int_equal(gp_test_data_scalar(pool, b, "SELECT count(*) FROM menu_items", NULL), 2); /* B untouched */

    /* Refused before anything is sent. */
    const char *bad[] = {"garbage", "m1.1.41.42", "m2.1.41.42.00000000-0000-4000-8000-000000000000",
                         "m1.x.41.42.00000000-0000-4000-8000-000000000000", "m1.1.4.42.00000000-0000-4000-8000-000000000000",
                         "m1.1.41.42.not-a-uuid-not-a-uuid-not-a-uuid-not-a",
                         "m1.01.41.42.00000000-0000-4000-8000-000000000000", /* one spelling per key */
                         "m1.+1.41.42.00000000-0000-4000-8000-000000000000",
                         "m1. 1.41.42.00000000-0000-4000-8000-000000000000",
                         "m1.1.41.42.0000000A-0000-4000-8000-000000000000",
                         "m1.1.4A.42.00000000-0000-4000-8000-000000000000"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        page = (gp_data_page_opts_t){.cursor = bad[i]};
        assert_int_equal(gp_data_list_menu_items_page(pool, a, NULL, false, &page, &rows, &n, &next, &e), GP_ERR_INVALID);
        assert_non_null(strstr(e.message, "page cursor"));
        assert_null(next);
    }
    page = (gp_data_page_opts_t){.limit = GP_DATA_MAX_PAGE + 1};
    assert_int_equal(gp_data_list_menu_items_page(pool, a, NULL, false, &page, &rows, &n, &next, &e), GP_ERR_INVALID);
    page = (gp_data_page_opts_t){.limit = -1};
    assert_int_equal(gp_data_list_menu_items_page(pool, a, NULL, false, &page, &rows, &n, &next, &e), GP_ERR_INVALID);
    assert_int_equal(gp_data_list_menu_items_page(pool, a, NULL, false, NULL, &rows, &n, NULL, &e), GP_ERR_INVALID);
    /* NULL page: the first page of GP_DATA_DEFAULT_PAGE. */
    assert_int_equal(gp_data_list_menu_items_page(pool, a, NULL, false, NULL, &rows, &n, &next, &e), GP_OK);
    assert_int_equal(n, 7);
    assert_null(next);
    gp_row_menu_items_free_all(rows, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_tenant),
        cmocka_unit_test(test_create_category_and_item),
        cmocka_unit_test(test_list_menu_items),
        cmocka_unit_test(test_list_menu_items_pages),
        cmocka_unit_test(test_order_totals_from_stored_prices),
        cmocka_unit_test(test_order_refuses_foreign_unavailable_and_bad_lines),
        cmocka_unit_test(test_status_transitions),
        cmocka_unit_test(test_other_tenant_cannot_read_or_update_an_order),
        cmocka_unit_test(test_get_order),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
