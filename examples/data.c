/* data.c — the typed data-access layer end to end: a new tenant, a menu
 * category and items, an order priced by the database, a status change,
 * the order read back. The README's "Typed data access" sample is an
 * excerpt of this file. Each run creates a tenant of its own (the slug from
 * argv, or bistro-<random>).
 *   eval "$(scripts/services env)"; build/examples/data */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <growplate/growplate.h>

static bool ok(gp_status_t st, const gp_error_t *err, const char *what)
{
    if (st != GP_OK)
        fprintf(stderr, "%s: %s (%s)\n", what, err->message, gp_error_class_name(err->klass));
    return st == GP_OK;
}

static int print_pages(gp_pool_t *pool, const char *t);

static int run(gp_pool_t *pool, const char *slug)
{
    gp_error_t err;
    char t[37];
    if (!ok(gp_data_create_tenant(pool, slug, "Bistro", NULL /* free */, t, &err), &err, "create tenant"))
        return 1;
    gp_row_menu_categories_t cat;
    if (!ok(gp_data_create_category(pool, t, "Mains", 1, &cat, &err), &err, "create category"))
        return 1;
    char cat_id[37]; gp_uuid_format(&cat.id, cat_id);
    gp_row_menu_categories_free(&cat);
    const char *tags[] = {"vegan"};
    gp_row_menu_items_t curry, rice;
    if (!ok(gp_data_create_menu_item(pool, t, cat_id, "Curry", NULL, 1450, tags, 1, true, &curry, &err), &err,
            "create item") ||
        !ok(gp_data_create_menu_item(pool, t, cat_id, "Rice", "steamed", 350, NULL, 0, true, &rice, &err), &err,
            "create item"))
        return 1;
    char curry_id[37], rice_id[37];
    gp_uuid_format(&curry.id, curry_id);
    gp_uuid_format(&rice.id, rice_id);
    gp_row_menu_items_free(&curry);
    gp_row_menu_items_free(&rice);

    gp_row_menu_items_t *menu; size_t n;    /* by category position, then name */
    if (!ok(gp_data_list_menu_items(pool, t, NULL /* all categories */, true /* available only */, &menu, &n, &err),
            &err, "list"))
        return 1;

    gp_data_order_line_t lines[] = {{curry_id, 2}, {rice_id, 1}};
    gp_data_new_order_t in = {.customer_id = NULL, .lines = lines, .n_lines = 2};
    gp_row_orders_t order; gp_row_order_items_t *items; size_t n_items;
    if (!ok(gp_data_create_order(pool, t, &in, &order, &items, &n_items, &err), &err, "create order")) {
        gp_row_menu_items_free_all(menu, n);
        return 1;
    }
    char order_id[37]; gp_uuid_format(&order.id, order_id);
    gp_data_set_order_status(pool, t, order_id, GP_ORDER_STATUS_CONFIRMED, &err);
    gp_row_orders_t order2; gp_row_order_items_t *items2; size_t n2;
    int rc = 1;
    if (ok(gp_data_get_order(pool, t, order_id, &order2, &items2, &n2, &err), &err, "get order")) {
        printf("tenant %s: %zu items on the menu; order %s: %zu lines, %lld.%02lld, %s\n", slug, n, order_id, n2,
               (long long)order2.total_cents / 100, (long long)order2.total_cents % 100,
               order2.status == GP_ORDER_STATUS_CONFIRMED ? "confirmed" : "not confirmed");
        rc = order2.total_cents == 2 * 1450 + 350 && order2.status == GP_ORDER_STATUS_CONFIRMED ? 0 : 1;
        gp_row_orders_free(&order2);
        gp_row_order_items_free_all(items2, n2);
    }

    gp_row_menu_items_free_all(menu, n);    /* rows are freed with the generated functions */
    gp_row_orders_free(&order);
    gp_row_order_items_free_all(items, n_items);
    if (rc == 0)
        rc = print_pages(pool, t);
    return rc;
}

/* Keyset pagination: one page per call, the cursor says where the next one starts. */
static int print_pages(gp_pool_t *pool, const char *t)
{
    gp_error_t err;
    char *cursor = NULL;    /* NULL: the first page */
    int pages = 0;
    printf("menu in pages of 1:");
    do {
        gp_data_page_opts_t page = {.limit = 1, .cursor = cursor};
        gp_row_menu_items_t *rows; size_t n; char *next;
        if (!ok(gp_data_list_menu_items_page(pool, t, NULL, true, &page, &rows, &n, &next, &err), &err, "page")) {
            free(cursor);
            return 1;
        }
        for (size_t i = 0; i < n; i++)
            printf(" %s", rows[i].name);
        gp_row_menu_items_free_all(rows, n);
        free(cursor);
        cursor = next;      /* NULL after the last page */
        pages++;
    } while (cursor);
    printf(" (%d pages)\n", pages);
    return pages == 2 ? 0 : 1;
}

int main(int argc, char **argv)
{
    char slug[64];
    if (argc > 1)
        snprintf(slug, sizeof slug, "%s", argv[1]);
    else
        snprintf(slug, sizeof slug, "bistro-%08lx", (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 16));
    gp_config_t cfg;
    char problems[GP_ERRBUF_SIZE];
    if (gp_config_from_env(&cfg, problems, sizeof problems) != GP_OK) {
        fprintf(stderr, "%s", problems);
        gp_config_release(&cfg);
        return 2;
    }
    gp_pool_t *pool;
    gp_error_t err;
    if (gp_pool_create(&cfg, &pool, &err) != GP_OK) {
        fprintf(stderr, "pool: %s\n", err.message);
        gp_config_release(&cfg);
        return 2;
    }
    int rc = run(pool, slug);
    gp_pool_close(pool, 5000);
    gp_config_release(&cfg);
    return rc;
}
