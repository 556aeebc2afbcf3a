/* cmd_demo.c — `growplate demo`: the main job behind `make demo`, a short
 * tour of the library against the configured (private) servers: schema,
 * two tenants with menus, isolation, an order, the cache, health. Re-runnable:
 * it reuses the demo tenants of an earlier run. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

void cmd_demo_help(FILE *out)
{
    fprintf(out,
            "usage: growplate demo\n"
            "\n"
            "A short tour against the configured servers (make demo starts private ones\n"
            "and sets the environment): migrate, create two demo restaurants with menus,\n"
            "show that tenant-scoped queries and the cache keep them apart, place an\n"
            "order priced from the stored menu, show a cache miss then a hit, and print\n"
            "the health table. Needs DATABASE_URL, DATABASE_MIGRATION_URL and REDIS_URL\n"
            "(eval \"$(scripts/services env)\"). Safe to run again: it reuses its tenants.\n"
            "\n"
            "exit codes: 0 tour completed; 2 a step failed (the message says which and\n"
            "why); 3 invalid configuration or usage. No --json (given, it is a usage\n"
            "error, reported as a JSON error object like every failure with --json).\n");
}

typedef struct demo {
    gp_config_t cfg;
    gp_pool_t *pool;
    gp_cache_t *cache;
    int failed;
} demo_t;

static void step(const char *title) { printf("\n== %s\n\n", title); }

static bool check(demo_t *d, gp_status_t st, const gp_error_t *e, const char *what)
{
    if (st == GP_OK)
        return true;
    if (e) {
        gp_error_t copy = *e;
        copy.status = st;
        cli_fail_error(cli_exit_for(st), &copy, "%s failed: %s", what, gp_strerror(st));
    } else {
        cli_fail(cli_exit_for(st), st, "%s failed: %s", what, gp_strerror(st));
    }
    d->failed = 1;
    return false;
}

static void money(int64_t cents, char *out, size_t len)
{
    snprintf(out, len, "%lld.%02lld", (long long)(cents / 100), (long long)(cents % 100));
}

static void progress_line(void *ud, const char *line)
{
    (void)ud;
    if (cli_progress_enabled())
        fprintf(stderr, "  ... %s\n", line);
}

/* ---- 1. schema ---------------------------------------------------------------------- */

static bool schema_step(demo_t *d)
{
    step("1. Schema: migrations (owner role) and the isolation audit (application role)");
    gp_migrate_opts_t mo = {.progress = progress_line};
    gp_migrate_report_t *rep = NULL;
    gp_error_t e;
    gp_status_t st = gp_migrate(&d->cfg, &mo, &rep, &e);
    if (!check(d, st, &e, "migrate")) {
        gp_migrate_report_free(rep);
        return false;
    }
    for (size_t i = 0; i < rep->count; i++)
        printf("  migration %04d %-24s %s\n", rep->entries[i].version, rep->entries[i].name,
               rep->entries[i].state == GP_MIGRATION_APPLIED_NOW ? "applied now" : "already applied");
    gp_migrate_report_free(rep);

    if (d->cfg.db.pooler && strcmp(d->cfg.db.pooler, "transaction") == 0) {
        /* The audit needs a session of the application role with the server. */
        printf("  isolation audit: skipped (DATABASE_URL goes through a transaction pooler; run `growplate audit` "
               "with DATABASE_URL at the server)\n");
        return true;
    }
    gp_audit_report_t *audit = NULL;
    st = gp_audit(&d->cfg, &audit, &e);
    if (!check(d, st, &e, "audit"))
        return false;
    printf("  isolation audit: %s (%zu findings)\n", audit->count == 0 ? "clean" : "FINDINGS", audit->count);
    gp_audit_report_free(audit);
    return true;
}

/* ---- 2. tenants and menus ------------------------------------------------------------------- */

typedef struct demo_item {
    const char *category;
    const char *name;
    int32_t price_cents;
    const char *tag;
} demo_item_t;

typedef struct demo_tenant {
    const char *slug, *name;
    demo_item_t items[4];
    char id[37];
    bool reused;
} demo_tenant_t;

static demo_tenant_t tenants[2] = {
    {"trattoria-demo", "Trattoria Demo",
     {{"Pizza", "Margherita", 950, "vegetarian"},
      {"Pizza", "Diavola", 1150, "spicy"},
      {"Dolci", "Tiramisu", 600, "vegetarian"},
      {"Dolci", "Panna cotta", 550, "gluten-free"}},
     "", false},
    {"sushi-demo", "Sushi Demo",
     {{"Nigiri", "Salmon nigiri", 480, "raw"},
      {"Nigiri", "Tuna nigiri", 520, "raw"},
      {"Rolls", "Avocado maki", 390, "vegan"},
      {"Rolls", "Dragon roll", 1290, "signature"}},
     "", false},
};

/* The tenant of an earlier run, if any ("" when none). */
static bool find_tenant(demo_t *d, const char *slug, char out[37])
{
    gp_conn_t *c;
    gp_error_t e;
    out[0] = 0;
    if (!check(d, gp_pool_acquire(d->pool, "demo", -1, &c, &e), &e, "acquire"))
        return false;
    gp_value_t p = gp_text(slug);
    gp_result_t *r = NULL;
    gp_status_t st = gp_query(c, "SELECT public.tenant_id_for_slug($1)::pg_catalog.text", 1, &p, &r, &e);
    gp_pool_release(c);
    if (!check(d, st, &e, "tenant lookup"))
        return false;
    const char *id;
    if (gp_get_text(r, 0, 0, &id, NULL) == GP_OK)
        snprintf(out, 37, "%s", id);
    gp_result_free(r);
    return true;
}

static bool create_menu(demo_t *d, demo_tenant_t *t)
{
    char cat_ids[4][37] = {{0}};
    for (int i = 0; i < 4; i++) {
        const demo_item_t *it = &t->items[i];
        int c = i / 2; /* two items per category */
        gp_error_t e;
        if (!cat_ids[c][0]) {
            gp_row_menu_categories_t cat;
            if (!check(d, gp_data_create_category(d->pool, t->id, it->category, c + 1, &cat, &e), &e,
                       "create category"))
                return false;
            gp_uuid_format(&cat.id, cat_ids[c]);
            gp_row_menu_categories_free(&cat);
        }
        const char *tags[] = {it->tag};
        if (!check(d, gp_data_create_menu_item(d->pool, t->id, cat_ids[c], it->name, NULL, it->price_cents, tags, 1,
                                               true, NULL, &e),
                   &e, "create menu item"))
            return false;
    }
    return true;
}

static bool tenants_step(demo_t *d)
{
    step("2. Two restaurants (tenants), each with its menu");
    for (int i = 0; i < 2; i++) {
        demo_tenant_t *t = &tenants[i];
        gp_error_t e;
        if (!find_tenant(d, t->slug, t->id))
            return false;
        t->reused = t->id[0] != 0;
        if (!t->reused) {
            if (!check(d, gp_data_create_tenant(d->pool, t->slug, t->name, "pro", t->id, &e), &e, "create tenant") ||
                !create_menu(d, t))
                return false;
        }
        printf("  %-16s %-15s tenant %s%s\n", t->name, t->slug, t->id, t->reused ? " (from an earlier run)" : "");
    }
    return true;
}

/* ---- 3. isolation ---------------------------------------------------------------------------- */

static bool isolation_step(demo_t *d, char margherita_id[37])
{
    step("3. Each tenant sees only its own rows (tenant-scoped queries + row-level security)");
    margherita_id[0] = 0;
    for (int i = 0; i < 2; i++) {
        gp_row_menu_items_t *rows = NULL;
        size_t n = 0;
        gp_error_t e;
        if (!check(d, gp_data_list_menu_items(d->pool, tenants[i].id, NULL, true, &rows, &n, &e), &e, "list menu"))
            return false;
        printf("  %s sees %zu menu items:", tenants[i].name, n);
        for (size_t k = 0; k < n; k++) {
            char price[32];
            money(rows[k].price_cents, price, sizeof price);
            printf("%s %s %s", k ? "," : "", rows[k].name, price);
            if (i == 0 && strcmp(rows[k].name, "Margherita") == 0)
                gp_uuid_format(&rows[k].id, margherita_id);
        }
        printf("\n");
        gp_row_menu_items_free_all(rows, n);
    }

    /* The other tenant asks for that row by its id. */
    gp_result_t *r = NULL;
    gp_error_t e;
    gp_value_t id = gp_uuid_str(margherita_id);
    if (!check(d,
               gp_tenant_query(d->pool, tenants[1].id, "SELECT name FROM public.menu_items WHERE id = $1", 1, &id,
                               &r, &e),
               &e, "cross-tenant read"))
        return false;
    printf("  %s asks for %s's Margherita by its id: %d rows\n", tenants[1].name, tenants[0].name,
           gp_result_rows(r));
    gp_result_free(r);

    /* And tries to write into the other tenant. */
    gp_value_t p[2] = {gp_uuid_str(tenants[0].id), gp_text("Smuggled category")};
    gp_status_t st = gp_tenant_exec(d->pool, tenants[1].id,
                                    "INSERT INTO public.menu_categories (tenant_id, name) VALUES ($1, $2)", 2, p,
                                    NULL, &e);
    printf("  %s inserts a row for %s: %s (SQLSTATE %s, %s)\n", tenants[1].name, tenants[0].name,
           st == GP_OK ? "ACCEPTED" : "refused", e.sqlstate, gp_error_class_name(e.klass));
    if (st == GP_OK) {
        cli_fail(CLI_FAILURE, GP_ERR_TENANT, "isolation: a row for another tenant was accepted");
        d->failed = 1;
        return false;
    }

    /* Raw SQL as the application role, no tenant set: nothing is visible. */
    gp_conn_t *c;
    if (!check(d, gp_pool_acquire(d->pool, "demo", -1, &c, &e), &e, "acquire"))
        return false;
    st = gp_query(c, "SELECT pg_catalog.count(*) FROM public.menu_items", 0, NULL, &r, &e);
    gp_pool_release(c);
    if (!check(d, st, &e, "unscoped count"))
        return false;
    int64_t n = -1;
    gp_get_int64(r, 0, 0, &n);
    gp_result_free(r);
    printf("  raw SQL as the application role with no tenant set: %lld menu items visible\n", (long long)n);

    /* An invalid tenant id never reaches SQL. */
    st = gp_tenant_query(d->pool, "' OR 1=1 --", "SELECT 1", 0, NULL, &r, &e);
    printf("  a crafted tenant id (' OR 1=1 --): %s, nothing sent: %s\n", gp_strerror(st), e.message);
    return true;
}

/* ---- 4. an order -------------------------------------------------------------------------------- */

static bool order_step(demo_t *d, const char *margherita_id)
{
    step("4. An order, priced from the stored menu in one transaction");
    gp_row_menu_items_t *rows = NULL;
    size_t n = 0;
    gp_error_t e;
    if (!check(d, gp_data_list_menu_items(d->pool, tenants[0].id, NULL, true, &rows, &n, &e), &e, "list menu"))
        return false;
    char tiramisu[37] = "";
    for (size_t k = 0; k < n; k++)
        if (strcmp(rows[k].name, "Tiramisu") == 0)
            gp_uuid_format(&rows[k].id, tiramisu);
    gp_row_menu_items_free_all(rows, n);
    gp_data_order_line_t lines[] = {{margherita_id, 2}, {tiramisu, 1}};
    gp_data_new_order_t order = {.note = "demo order", .lines = lines, .n_lines = 2};
    gp_row_orders_t o;
    gp_row_order_items_t *items = NULL;
    size_t n_items = 0;
    if (!check(d, gp_data_create_order(d->pool, tenants[0].id, &order, &o, &items, &n_items, &e), &e,
               "create order"))
        return false;
    char oid[37], total[32];
    gp_uuid_format(&o.id, oid);
    money(o.total_cents, total, sizeof total);
    printf("  %s order %s:", tenants[0].name, oid);
    for (size_t k = 0; k < n_items; k++) {
        char unit[32];
        money(items[k].unit_price_cents, unit, sizeof unit);
        printf("%s %d x %s", k ? " +" : "", items[k].quantity, unit);
    }
    printf(" = %s (status %s)\n", total, gp_order_status_label(o.status));
    gp_row_order_items_free_all(items, n_items);
    gp_row_orders_free(&o);

    gp_status_t st = gp_data_set_order_status(d->pool, tenants[0].id, oid, GP_ORDER_STATUS_CONFIRMED, &e);
    printf("  status pending -> confirmed: %s\n", st == GP_OK ? "ok" : e.message);
    st = gp_data_set_order_status(d->pool, tenants[1].id, oid, GP_ORDER_STATUS_CANCELLED, &e);
    printf("  %s tries to cancel it: %s\n", tenants[1].name, gp_strerror(st));
    st = gp_data_set_order_status(d->pool, tenants[0].id, oid, GP_ORDER_STATUS_PENDING, &e);
    printf("  confirmed -> pending: refused: %s\n", st == GP_OK ? "ACCEPTED" : e.message);
    return true;
}

/* ---- 5. cache ---------------------------------------------------------------------------------- */

typedef struct menu_loader {
    demo_t *d;
} menu_loader_t;

/* Cache-aside loader: the tenant's available menu as JSON, from PostgreSQL. */
static gp_status_t load_menu(void *ud, const char *tenant, const char *key, json_t **value, int64_t *ttl_ms)
{
    (void)key;
    (void)ttl_ms;
    menu_loader_t *l = ud;
    gp_row_menu_items_t *rows = NULL;
    size_t n = 0;
    gp_error_t e;
    gp_status_t st = gp_data_list_menu_items(l->d->pool, tenant, NULL, true, &rows, &n, &e);
    if (st != GP_OK)
        return st;
    json_t *arr = json_array();
    for (size_t k = 0; arr && k < n; k++)
        json_array_append_new(arr, json_pack("{s:s,s:i}", "name", rows[k].name, "price_cents", rows[k].price_cents));
    gp_row_menu_items_free_all(rows, n);
    if (!arr)
        return GP_ERR_NOMEM;
    *value = arr;
    return GP_OK;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool cache_step(demo_t *d)
{
    step("5. The cache: tenant-scoped keys, JSON values, cache-aside");
    gp_error_t e;
    /* Start from a clean slate for the tour: O(1) tenant-wide invalidation. */
    for (int i = 0; i < 2; i++)
        gp_cache_invalidate_tenant(d->cache, tenants[i].id, &e);
    menu_loader_t l = {d};
    gp_cache_metrics_t before, after;
    for (int round = 0; round < 2; round++) {
        gp_cache_metrics(d->cache, &before);
        json_t *menu = NULL;
        int64_t t0 = now_us();
        gp_status_t st = gp_cache_get_or_load(d->cache, tenants[0].id, "menu", NULL, load_menu, &l, &menu, &e);
        int64_t dt = now_us() - t0;
        if (!check(d, st, &e, "cache get_or_load"))
            return false;
        gp_cache_metrics(d->cache, &after);
        bool hit = after.hits > before.hits;
        printf("  %s \"menu\": %s, %zu items, %.2f ms%s\n", tenants[0].name, hit ? "hit " : "miss",
               json_array_size(menu), (double)dt / 1000.0, hit ? " (from Redis)" : " (loaded from PostgreSQL, stored)");
        json_decref(menu);
    }
    /* The same key for the other tenant is another key. */
    json_t *v = NULL;
    gp_status_t st = gp_cache_get_json(d->cache, tenants[1].id, "menu", &v, &e);
    printf("  %s reading \"menu\": %s (its own keyspace: prefix t:{tenant}:generation:key)\n", tenants[1].name,
           st == GP_ERR_MISS ? "miss" : st == GP_OK ? "HIT" : gp_strerror(st));
    json_decref(v);
    if (st == GP_OK) {
        cli_fail(CLI_FAILURE, GP_ERR_TENANT, "isolation: one tenant read another's cache entry");
        d->failed = 1;
        return false;
    }
    st = gp_cache_get_json(d->cache, tenants[1].id, "t:{x}:menu", &v, &e);
    printf("  a crafted key (t:{x}:menu): %s: %s\n", gp_strerror(st), e.message);
    return true;
}

/* ---- 6. health ---------------------------------------------------------------------------------- */

static bool health_step(demo_t *d)
{
    step("6. Health");
    gp_health_options_t o = {.cfg = &d->cfg, .pool = d->pool, .cache = d->cache};
    gp_health_report_t r;
    gp_status_t st = gp_health_check(&o, &r);
    if (st != GP_OK)
        return check(d, st, NULL, "health check");
    printf("  overall: %s (checked in %.1f ms)\n", gp_health_state_name(r.state), (double)r.elapsed_ns / 1e6);
    printf("  postgres  %-4s %7.2f ms  version %s\n", r.postgres.status == GP_OK ? "ok" : "FAIL",
           (double)r.postgres.latency_ns / 1e6, r.postgres.server_version);
    printf("  redis     %-4s %7.2f ms  circuit %s\n", r.redis.status == GP_OK ? "ok" : "FAIL",
           (double)r.redis.latency_ns / 1e6, gp_cache_circuit_name(r.cache.circuit));
    printf("  pool      %d connections (%d idle), %llu acquires, wait p99 %.3f ms, %llu timeouts\n", r.pool.total,
           r.pool.idle, (unsigned long long)r.pool.acquires, r.pool.wait.p99_us / 1e3,
           (unsigned long long)r.pool.acquire_timeouts);
    printf("  cache     %llu hits, %llu misses, %llu errors\n", (unsigned long long)r.cache.hits,
           (unsigned long long)r.cache.misses, (unsigned long long)r.cache.errors);
    printf("\n  (growplate health, growplate metrics and growplate audit give the same from the command line)\n");
    if (r.state != GP_HEALTH_UP)
        cli_fail(CLI_FAILURE, r.postgres.status != GP_OK ? r.postgres.status : r.redis.status, "health: %s: %s",
                 gp_health_state_name(r.state), r.postgres.status != GP_OK ? r.postgres.message : r.redis.message);
    return r.state == GP_HEALTH_UP;
}

int cmd_demo(int argc, char **argv)
{
    if (argc > 1) {
        char b[128];
        return cli_usage("takes no arguments (not '%s')", cli_shown(argv[1], b, sizeof b));
    }
    demo_t d = {0};
    gp_config_init(&d.cfg);
    int rc = cli_load_config(&d.cfg);
    if (rc != CLI_OK) {
        gp_config_release(&d.cfg);
        return rc;
    }
    char pg[256], rd[256];
    printf("growplate %s demo: PostgreSQL %s, Redis %s (passwords redacted)\n", gp_version(),
           gp_config_db_display(&d.cfg.db, pg, sizeof pg), gp_config_redis_display(&d.cfg.redis, rd, sizeof rd));
    gp_error_t e;
    d.cfg.db.pool_min = 2;
    d.cfg.db.pool_max = 4;
    if (!check(&d, gp_pool_create(&d.cfg, &d.pool, &e), &e, "pool") ||
        !check(&d, gp_cache_create(&d.cfg, NULL, &d.cache, &e), &e, "cache")) {
        gp_pool_close(d.pool, 1000);
        gp_config_release(&d.cfg);
        return cli_failure_code();
    }
    char margherita[37];
    bool ok = schema_step(&d) && tenants_step(&d) && isolation_step(&d, margherita) && order_step(&d, margherita) &&
              cache_step(&d) && health_step(&d);
    gp_cache_close(d.cache);
    gp_pool_close(d.pool, 2000);
    gp_config_release(&d.cfg);
    if (ok && !d.failed)
        printf("\nTour complete.\n");
    return ok && !d.failed ? CLI_OK : cli_failure_code();
}
