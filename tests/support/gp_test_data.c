/* gp_test_data.c — fixtures for the data-layer tests (see gp_test_data.h). */
#include <stdio.h>

#include "gp_test_data.h"

static void check(gp_status_t st, const gp_error_t *e, const char *what)
{
    if (st != GP_OK)
        fprintf(stderr, "%s: %s: %s (%s)\n", what, gp_strerror(st), e->message, e->sqlstate);
    assert_int_equal(st, GP_OK);
}

void gp_test_data_tenant(gp_pool_t *pool, const char *slug, char out[37])
{
    gp_error_t e;
    check(gp_data_create_tenant(pool, slug, slug, NULL, out, &e), &e, "create tenant");
}

void gp_test_data_category(gp_pool_t *pool, const char *tenant, const char *name, int32_t position, char out[37])
{
    gp_error_t e;
    gp_row_menu_categories_t row;
    check(gp_data_create_category(pool, tenant, name, position, &row, &e), &e, "create category");
    gp_uuid_format(&row.id, out);
    gp_row_menu_categories_free(&row);
}

void gp_test_data_item(gp_pool_t *pool, const char *tenant, const char *category, const char *name,
                       int32_t price_cents, bool available, char out[37])
{
    gp_error_t e;
    gp_row_menu_items_t row;
    check(gp_data_create_menu_item(pool, tenant, category, name, NULL, price_cents, NULL, 0, available, &row, &e),
          &e, "create menu item");
    gp_uuid_format(&row.id, out);
    gp_row_menu_items_free(&row);
}

int64_t gp_test_data_scalar(gp_pool_t *pool, const char *tenant, const char *sql, const char *uuid_param)
{
    gp_error_t e;
    gp_result_t *r = NULL;
    gp_value_t p = gp_uuid_str(uuid_param);
    check(gp_tenant_query(pool, tenant, sql, uuid_param ? 1 : 0, uuid_param ? &p : NULL, &r, &e), &e, sql);
    int64_t v = 0;
    bool is_null = false;
    assert_int_equal(gp_get_is_null(r, 0, 0, &is_null), GP_OK);
    if (!is_null)
        assert_int_equal(gp_get_int64(r, 0, 0, &v), GP_OK);
    gp_result_free(r);
    return v;
}
