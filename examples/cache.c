/* cache.c — the tenant-scoped cache: JSON values with a TTL, a miss and
 * an outage treated alike, cache-aside with the database behind it
 * (single-flight), and invalidating a whole tenant at once. The README's
 * "Cache" sample is an excerpt of this file.
 *   eval "$(scripts/services env)"; build/growplate demo; build/examples/cache trattoria-demo */
#include <stdio.h>
#include <string.h>

#include <growplate/growplate.h>
#include <jansson.h>

typedef struct db {
    gp_pool_t *pool;
    int loads;
} db_t;

/* The loader: the tenant's menu from the database, as a JSON array. */
static gp_status_t load_menu(void *userdata, const char *tenant, const char *key, json_t **value, int64_t *ttl_ms)
{
    (void)key;
    (void)ttl_ms; /* keep the TTL the call asked for */
    db_t *db = userdata;
    db->loads++;
    gp_result_t *r;
    gp_error_t err;
    gp_status_t st = gp_tenant_query(db->pool, tenant, "SELECT name, price_cents FROM menu_items ORDER BY name", 0,
                                     NULL, &r, &err);
    if (st != GP_OK)
        return st;
    json_t *menu = json_array();
    for (int row = 0; menu && row < gp_result_rows(r); row++) {
        const char *name; size_t len; int32_t cents;
        if (gp_get_text(r, row, 0, &name, &len) == GP_OK && gp_get_int32(r, row, 1, &cents) == GP_OK)
            json_array_append_new(menu, json_pack("{s:s%,s:i}", "name", name, len, "price_cents", (int)cents));
    }
    gp_result_free(r);
    if (!menu)
        return GP_ERR_NOMEM;
    *value = menu;
    return GP_OK;
}

static void use(const json_t *v) { printf("cached menu: %zu items\n", json_array_size(v)); }

static void load_from_db(void) { printf("not cached: read the database instead\n"); }

int main(int argc, char **argv)
{
    const char *slug = argc > 1 ? argv[1] : "trattoria-demo";
    gp_config_t cfg;
    char problems[GP_ERRBUF_SIZE];
    if (gp_config_from_env(&cfg, problems, sizeof problems) != GP_OK) {
        fprintf(stderr, "%s", problems);
        gp_config_release(&cfg);
        return 2;
    }
    db_t db_state = {NULL, 0}, *db = &db_state;
    gp_error_t e;
    if (gp_pool_create(&cfg, &db->pool, &e) != GP_OK) {
        fprintf(stderr, "pool: %s\n", e.message);
        gp_config_release(&cfg);
        return 2;
    }
    char tenant_id[37] = "";
    gp_result_t *res;
    if (gp_pool_query(db->pool, "SELECT public.tenant_id_for_slug($1)", GP_ARGS(gp_text(slug)), &res, &e) == GP_OK) {
        gp_uuid_t id;
        if (gp_get_uuid(res, 0, 0, &id) == GP_OK)
            gp_uuid_format(&id, tenant_id);
        gp_result_free(res);
    }
    if (!tenant_id[0]) {
        fprintf(stderr, "no active tenant '%s' (run `growplate demo` first)\n", slug);
        gp_pool_close(db->pool, 5000);
        gp_config_release(&cfg);
        return 1;
    }
    gp_cache_t *cache;
    gp_error_t err;
    if (gp_cache_create(&cfg, NULL, &cache, &err) != GP_OK) { /* GP_ERR_CONFIG (REDIS_*): err.message */
        fprintf(stderr, "cache: %s\n", err.message);
        gp_pool_close(db->pool, 5000);
        gp_config_release(&cfg);
        return 2;
    }
    json_t *menu = json_pack("[{s:s,s:i}]", "name", "Special of the day", "price_cents", 1200);

    const char *tenant = tenant_id;
    gp_cache_set_json(cache, tenant, "menu:today", menu, 60000, &err);   /* TTL in ms; <= 0: default 5 min */
    json_t *v;
    switch (gp_cache_get_json(cache, tenant, "menu:today", &v, &err)) {
    case GP_OK:              use(v); json_decref(v); break;
    case GP_ERR_MISS:        /* absent, or not valid JSON (counted, logged) */
    case GP_ERR_UNAVAILABLE: /* Redis down or slow: treat as a miss */ load_from_db(); break;
    default:                 /* GP_ERR_TENANT / GP_ERR_KEY: a bug in the caller */ ;
    }
    /* cache-aside: one loader per (tenant, key) across the process's threads */
    if (gp_cache_get_or_load(cache, tenant, "menu:today", &(gp_cache_load_opts_t){.ttl_ms = 60000, .early_beta = 1.0},
                             load_menu, db, &v, &err) == GP_OK)
        json_decref(v);
    gp_cache_invalidate_tenant(cache, tenant, &err);   /* O(1): every key of the tenant, at once */

    /* After the invalidation the next read loads from the database. */
    int rc = 1;
    if (gp_cache_get_or_load(cache, tenant, "menu", NULL, load_menu, db, &v, &err) == GP_OK) {
        printf("menu from the database: %zu items (%d load)\n", json_array_size(v), db->loads);
        json_decref(v);
        rc = db->loads == 1 ? 0 : 1;
    } else {
        fprintf(stderr, "get_or_load: %s\n", err.message);
    }
    json_decref(menu);
    gp_cache_close(cache);
    gp_pool_close(db->pool, 5000);
    gp_config_release(&cfg);
    return rc;
}
