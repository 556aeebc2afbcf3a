/* tenant.c — tenant-scoped work three ways: a one-shot statement, a
 * retried transaction (gp_tenant_run), and a transaction by hand on a
 * leased connection; typed getters and the generated row decoders. The
 * README's "Tenant isolation", "Queries" and "Row types" samples are
 * excerpts of this file. It renames one of the tenant's items and puts the
 * name back, so it leaves the data as it found it.
 *   eval "$(scripts/services env)"; build/growplate demo; build/examples/tenant trattoria-demo */
#include <stdio.h>
#include <string.h>

#include <growplate/growplate.h>

typedef struct rename {
    const char *item_id;
    const char *name;
} rename_t;

/* a transaction: the first statement carries BEGIN and the setting */
static gp_status_t rename_item(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    const rename_t *r = ud;
    const char *cols[] = {"name"};
    gp_value_t vals[] = {gp_text(r->name)};
    return gp_tenant_update(tx, "menu_items", "id", gp_uuid_str(r->item_id), 1, cols, vals, NULL, err);
}

/* Typed getters, by hand, in a transaction on a leased connection. */
static int cheap_items(gp_pool_t *pool, const char *tenant_id, const char *category_id)
{
    int found = -1;
    gp_conn_t *conn;
    gp_error_t err;
    if (gp_pool_acquire(pool, "menu-service", -1, &conn, &err) != GP_OK) {
        fprintf(stderr, "acquire: %s\n", err.message); /* nothing to release */
        return -1;
    }

    gp_tenant_tx_t *tx;
    gp_result_t *res;
    if (gp_tenant_begin(conn, tenant_id, NULL, &tx, &err) == GP_OK) {
        if (gp_tenant_tx_query(tx, "SELECT id, name, price_cents FROM public.menu_items "
                                   "WHERE category_id = $1 AND price_cents < $2",
                               GP_ARGS(gp_uuid_str(category_id), gp_int32(1250)), &res, &err) == GP_OK) {
            for (int row = 0; row < gp_result_rows(res); row++) {
                gp_uuid_t id; const char *name; int32_t cents;
                gp_get_uuid(res, row, gp_col(res, "id"), &id);          /* GP_ERR_NULL / _TYPE / _RANGE / _NOT_FOUND */
                gp_get_text(res, row, gp_col(res, "name"), &name, NULL); /* borrowed from res */
                gp_get_int32(res, row, gp_col(res, "price_cents"), &cents);
            }
            found = gp_result_rows(res);
            gp_result_free(res);
        } else if (err.klass == GP_ECLASS_UNIQUE) { /* err.sqlstate, err.constraint_name, err.detail ... */ }
        gp_tenant_commit(tx, &err); /* frees tx */
    }
    gp_pool_release(conn);
    return found;
}

/* The generated row type: every column of menu_items, decoded at once. */
static int decode_menu(gp_pool_t *pool, const char *tenant_id)
{
    gp_error_t err;
    gp_result_t *r;
    if (gp_tenant_query(pool, tenant_id, "SELECT " GP_MENU_ITEMS_COLUMNS " FROM menu_items ORDER BY name", 0, NULL,
                        &r, &err) != GP_OK)
        return -1;
    int n_tags = 0;
    gp_row_menu_items_t *items; size_t n;
    if (gp_row_menu_items_decode_all(r, &items, &n, &err) == GP_OK) {
        /* items[i].price_cents, items[i].description_is_null, items[i].tags[j] ... */
        for (size_t i = 0; i < n; i++)
            n_tags += (int)items[i].tags_count;
        gp_row_menu_items_free_all(items, n);
    }
    gp_result_free(r);
    return n_tags;
}

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
    gp_pool_t *pool;
    gp_error_t err;
    if (gp_pool_create(&cfg, &pool, &err) != GP_OK) {
        fprintf(stderr, "pool: %s\n", err.message);
        gp_config_release(&cfg);
        return 2;
    }
    int rc = 1;
    char tenant_id[37] = "";
    gp_result_t *res;
    if (gp_pool_query(pool, "SELECT public.tenant_id_for_slug($1)", GP_ARGS(gp_text(slug)), &res, &err) == GP_OK) {
        gp_uuid_t id;
        if (gp_get_uuid(res, 0, 0, &id) == GP_OK)
            gp_uuid_format(&id, tenant_id);
        gp_result_free(res);
    }
    if (!tenant_id[0]) {
        fprintf(stderr, "no active tenant '%s' (run `growplate demo` first)\n", slug);
        goto out;
    }

    /* one statement for one tenant: the tenant secret set transaction-locally;
     * the statement; the session sweep — one pipeline, one implicit
     * transaction, one round trip */
    gp_result_t *r;
    gp_status_t st = gp_tenant_query(pool, tenant_id,
        "SELECT id, name, category_id FROM menu_items WHERE available ORDER BY name", 0, NULL, &r, &err);
    if (st != GP_OK || gp_result_rows(r) == 0) {
        fprintf(stderr, "menu: %s\n", st != GP_OK ? err.message : "no items");
        gp_result_free(r);
        goto out;
    }
    char item_id[37], category_id[37], name[128];
    gp_uuid_t u;
    const char *text;
    size_t len;
    gp_get_uuid(r, 0, 0, &u);
    gp_uuid_format(&u, item_id);
    gp_get_text(r, 0, 1, &text, &len);
    snprintf(name, sizeof name, "%.*s", (int)len, text);
    gp_get_uuid(r, 0, 2, &u);
    gp_uuid_format(&u, category_id);
    printf("%d available items; the first is %s\n", gp_result_rows(r), name);
    gp_result_free(r);

    char renamed[160];
    snprintf(renamed, sizeof renamed, "%s (renamed)", name);
    rename_t to = {item_id, renamed}, back = {item_id, name};
    st = gp_tenant_run(pool, tenant_id, NULL, rename_item, &to, NULL, &err);
    if (st == GP_OK)
        st = gp_tenant_run(pool, tenant_id, NULL, rename_item, &back, NULL, &err);
    if (st != GP_OK) {
        fprintf(stderr, "rename: %s\n", err.message);
        goto out;
    }
    printf("renamed '%s' and back\n", name);

    int cheap = cheap_items(pool, tenant_id, category_id);
    int tags = decode_menu(pool, tenant_id);
    if (cheap < 0 || tags < 0) {
        fprintf(stderr, "queries failed\n");
        goto out;
    }
    printf("%d items under 12.50 in its category; %d tags on the whole menu\n", cheap, tags);
    rc = 0;
out:
    gp_pool_close(pool, 5000);
    gp_config_release(&cfg);
    return rc;
}
