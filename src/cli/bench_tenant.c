/* bench_tenant.c — the tenant-scoped workloads:
 *  - `growplate bench scoped`: a one-shot tenant-scoped SELECT 1 through the
 *    pool (gp_tenant_query: set_config of the tenant secret; SELECT 1; the
 *    session sweep, in one pipeline and one implicit transaction, sharing
 *    round trips with other callers' one-shots when they outnumber the
 *    connections); scripts/bench compares it
 *    with pgbench sending BEGIN; set_config; SELECT 1; COMMIT, and with
 *    pgbench sending its statements.
 *  - `growplate bench menu`: a one-shot tenant-scoped read of the 20 menu
 *    items of a category, through the verified tenant context (row-level
 *    security on menu_items); scripts/bench compares it with pgbench
 *    sending the same statements, and those with the bare setting of the
 *    schema before migration 0004. Its setup migrates (idempotently) and
 *    creates the tenant "bench-menu" with a category of 20 items once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* The tenant-scoped calls need the verified tenant context (migration 0004)
 * and the tenant key installed: migrate first (idempotent) when a
 * migration URL is configured. */
static int bench_migrate(const bench_opts_t *o)
{
    gp_error_t e;
    if (o->cfg->db.migration_url && (e.status = gp_migrate(o->cfg, NULL, NULL, &e)) != GP_OK) {
        cli_fail_error(cli_exit_for(e.status), &e, "migrate");
        return 1;
    }
    return 0;
}

typedef struct scoped_shared {
    gp_pool_t *pool;
} scoped_shared_t;

/* One tenant id per thread; the ids need not exist for SELECT 1. */
typedef struct scoped_local {
    char tenant[37];
} scoped_local_t;

static int scoped_setup(const bench_opts_t *o, void **shared)
{
    scoped_shared_t *s = calloc(1, sizeof *s);
    if (!s) {
        cli_fail(CLI_FAILURE, GP_ERR_NOMEM, "out of memory");
        return 1;
    }
    if (bench_migrate(o) != 0 || !(s->pool = bench_full_pool(o, o->pool_size))) {
        free(s);
        return 1;
    }
    *shared = s;
    return 0;
}

static int scoped_op(void *shared, void **local, int tid)
{
    scoped_shared_t *s = shared;
    scoped_local_t *l = *local;
    if (!l) {
        if (!(l = malloc(sizeof *l)))
            return 0;
        snprintf(l->tenant, sizeof l->tenant, "00000000-0000-4000-8000-%012x", (unsigned)tid + 1);
        *local = l;
    }
    gp_result_t *r = NULL;
    gp_status_t st = gp_tenant_query(s->pool, l->tenant, "SELECT 1", 0, NULL, &r, NULL);
    gp_result_free(r);
    return st == GP_OK ? 1 : 0;
}

static void scoped_thread_done(void *shared, void *local)
{
    (void)shared;
    free(local);
}

static void scoped_teardown(void *shared)
{
    scoped_shared_t *s = shared;
    gp_pool_close(s->pool, 5000);
    free(s);
}

static gp_pool_t *scoped_pool(void *shared) { return ((scoped_shared_t *)shared)->pool; }

const bench_workload_t bench_scoped = {
    .name = "scoped",
    .summary = "tenant-scoped SELECT 1: set_config, SELECT 1 and the session sweep in one pipeline",
    .unit = "txns",
    .setup = scoped_setup,
    .op = scoped_op,
    .thread_done = scoped_thread_done,
    .teardown = scoped_teardown,
    .pool = scoped_pool,
};

/* ---- menu ------------------------------------------------------------------------------ */

#define MENU_ITEMS 20
#define MENU_SQL                                                                                              \
    "SELECT id, name, price_cents FROM public.menu_items WHERE category_id = $1::uuid AND available ORDER BY name"

typedef struct menu_shared {
    gp_pool_t *pool;
    char tenant[37], category[37];
} menu_shared_t;

static int menu_fail(const char *what, const gp_error_t *e)
{
    cli_fail_error(CLI_FAILURE, e, "%s", what);
    return 1;
}

/* The tenant, the category and its items, made once and found afterwards. */
static int menu_data(menu_shared_t *s)
{
    gp_error_t e;
    gp_result_t *r = NULL;
    gp_value_t slug = gp_text("bench-menu");
    if (gp_pool_query(s->pool, "SELECT public.tenant_id_for_slug($1)::text", 1, &slug, &r, &e) != GP_OK)
        return menu_fail("looking up the tenant", &e);
    bool none = true;
    gp_get_is_null(r, 0, 0, &none);
    const char *id = NULL;
    if (!none && gp_get_text(r, 0, 0, &id, NULL) == GP_OK)
        snprintf(s->tenant, sizeof s->tenant, "%s", id);
    gp_result_free(r);
    if (none && gp_data_create_tenant(s->pool, "bench-menu", "Bench Menu", NULL, s->tenant, &e) != GP_OK)
        return menu_fail("creating the tenant", &e);
    gp_value_t name = gp_text("bench-20");
    if (gp_tenant_query(s->pool, s->tenant,
                        "SELECT c.id::text, (SELECT count(*) FROM public.menu_items i WHERE i.category_id = c.id) "
                        "FROM public.menu_categories c WHERE c.name = $1",
                        1, &name, &r, &e) != GP_OK)
        return menu_fail("looking up the category", &e);
    int64_t items = 0;
    if (gp_result_rows(r) == 1) {
        gp_get_text(r, 0, 0, &id, NULL);
        snprintf(s->category, sizeof s->category, "%s", id);
        gp_get_int64(r, 0, 1, &items);
    }
    gp_result_free(r);
    if (!s->category[0]) {
        gp_row_menu_categories_t row;
        if (gp_data_create_category(s->pool, s->tenant, "bench-20", 1, &row, &e) != GP_OK)
            return menu_fail("creating the category", &e);
        gp_uuid_format(&row.id, s->category);
        gp_row_menu_categories_free(&row);
    }
    for (int64_t i = items; i < MENU_ITEMS; i++) {
        char item[32];
        snprintf(item, sizeof item, "item %02lld", (long long)i + 1);
        gp_row_menu_items_t row;
        if (gp_data_create_menu_item(s->pool, s->tenant, s->category, item, NULL, (int32_t)(100 + i), NULL, 0, true,
                                     &row, &e) != GP_OK)
            return menu_fail("creating the items", &e);
        gp_row_menu_items_free(&row);
    }
    return 0;
}

int bench_menu_fixture(const bench_opts_t *o, gp_pool_t *pool, char tenant[37], char category[37])
{
    menu_shared_t m = {.pool = pool};
    if (bench_migrate(o) != 0 || menu_data(&m) != 0)
        return 1;
    memcpy(tenant, m.tenant, sizeof m.tenant);
    memcpy(category, m.category, sizeof m.category);
    return 0;
}

static int menu_setup(const bench_opts_t *o, void **shared)
{
    menu_shared_t *s = calloc(1, sizeof *s);
    if (!s) {
        cli_fail(CLI_FAILURE, GP_ERR_NOMEM, "out of memory");
        return 1;
    }
    if (bench_migrate(o) != 0 || !(s->pool = bench_full_pool(o, o->pool_size))) {
        free(s);
        return 1;
    }
    if (menu_data(s) != 0) {
        gp_pool_close(s->pool, 5000);
        free(s);
        return 1;
    }
    *shared = s;
    return 0;
}

static int menu_op(void *shared, void **local, int tid)
{
    (void)local;
    (void)tid;
    menu_shared_t *s = shared;
    gp_result_t *r = NULL;
    gp_value_t cat = gp_text(s->category);
    gp_status_t st = gp_tenant_query(s->pool, s->tenant, MENU_SQL, 1, &cat, &r, NULL);
    bool ok = st == GP_OK && gp_result_rows(r) == MENU_ITEMS;
    gp_result_free(r);
    return ok ? 1 : 0;
}

static void menu_report(void *shared, FILE *out, bool json)
{
    menu_shared_t *s = shared;
    if (json)
        fprintf(out, ",\"rows_per_op\":%d,\"tenant\":\"%s\",\"category\":\"%s\"", MENU_ITEMS, s->tenant, s->category);
    else
        fprintf(out, "rows per op: %d (tenant %s, category %s)\n", MENU_ITEMS, s->tenant, s->category);
}

static void menu_teardown(void *shared)
{
    menu_shared_t *s = shared;
    gp_pool_close(s->pool, 5000);
    free(s);
}

static gp_pool_t *menu_pool(void *shared) { return ((menu_shared_t *)shared)->pool; }

const bench_workload_t bench_menu = {
    .name = "menu",
    .summary = "tenant-scoped read of 20 menu items by category (row-level security, verified tenant context)",
    .unit = "reads",
    .setup = menu_setup,
    .op = menu_op,
    .report = menu_report,
    .teardown = menu_teardown,
    .pool = menu_pool,
};
