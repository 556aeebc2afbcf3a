/* copy.c — bulk transfer for one tenant: the menu exported as CSV with COPY
 * TO STDOUT, new items imported with COPY FROM STDIN (through the import
 * view, so row-level security checks every row) and rolled back, and the
 * menu streamed row by row, closed early. The README's "COPY and
 * streaming" samples are excerpts of this file; it leaves the data as it
 * found it.
 *   eval "$(scripts/services env)"; build/growplate demo; build/examples/copy trattoria-demo */
#include <stdio.h>
#include <string.h>

#include <growplate/growplate.h>

/* COPY TO STDOUT: one CSV row per call, written wherever the service wants. */
static gp_status_t write_csv(void *userdata, const char *data, size_t len, gp_error_t *err)
{
    (void)err;
    FILE *out = userdata;
    return fwrite(data, 1, len, out) == len ? GP_OK : GP_ERR_IO;
}

static gp_status_t export_menu(gp_tenant_tx_t *tx, void *userdata, gp_error_t *err)
{
    int64_t *rows = userdata;
    return gp_tenant_tx_copy_out(tx, "COPY (SELECT name, price_cents FROM public.menu_items ORDER BY name) "
                                     "TO STDOUT WITH (FORMAT csv)", write_csv, stderr, rows, err);
}

/* COPY FROM STDIN: fill buf with the next bytes; *len = 0 ends the data. */
typedef struct upload {
    const char *data;
    size_t len, off;
} upload_t;

static gp_status_t read_upload(void *userdata, char *buf, size_t cap, size_t *len, gp_error_t *err)
{
    (void)err;
    upload_t *u = userdata;
    *len = u->len - u->off < cap ? u->len - u->off : cap;
    memcpy(buf, u->data + u->off, *len);
    u->off += *len;
    return GP_OK;
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
    char tenant_id[37] = "", category_id[37] = "";
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
    if (gp_tenant_query(pool, tenant_id, "SELECT id FROM public.menu_categories ORDER BY position LIMIT 1", 0, NULL,
                        &res, &err) == GP_OK) {
        gp_uuid_t id;
        if (gp_get_uuid(res, 0, 0, &id) == GP_OK)
            gp_uuid_format(&id, category_id);
        gp_result_free(res);
    }
    if (!category_id[0]) {
        fprintf(stderr, "the tenant has no menu category\n");
        goto out;
    }

    /* export: the policies confine the COPY to the tenant */
    int64_t exported = 0;
    if (gp_tenant_run(pool, tenant_id, NULL, export_menu, &exported, NULL, &err) != GP_OK) {
        fprintf(stderr, "export: %s\n", err.message);
        goto out;
    }
    printf("exported %lld items as CSV\n", (long long)exported);

    /* import: into the view public.menu_items_import (COPY FROM into a
     * table with row-level security is refused by the server) */
    char csv[512];
    int n = snprintf(csv, sizeof csv, "%s,Imported one,700\n%s,Imported two,800\n%s,Imported three,900\n",
                     category_id, category_id, category_id);
    upload_t up = {csv, (size_t)n, 0};
    gp_conn_t *conn;
    if (gp_pool_acquire(pool, "menu-import", -1, &conn, &err) != GP_OK) {
        fprintf(stderr, "acquire: %s\n", err.message);
        goto out;
    }
    gp_tenant_tx_t *tx;
    int64_t imported = 0, visible = 0;
    if (gp_tenant_begin(conn, tenant_id, NULL, &tx, &err) == GP_OK) {
        if (gp_tenant_tx_copy_in(tx, "COPY public.menu_items_import (category_id, name, price_cents) "
                                     "FROM STDIN WITH (FORMAT csv)", read_upload, &up, &imported, &err) == GP_OK)
            gp_tenant_tx_exec(tx, "SELECT FROM public.menu_items WHERE name LIKE 'Imported %'", 0, NULL, &visible,
                              &err);
        else
            fprintf(stderr, "import: %s\n", err.message);
        gp_tenant_rollback(tx, &err); /* an example: leave the menu as it was */
    }

    /* stream: one row in memory at a time; closing early cancels the rest */
    gp_stream_t *s;
    int streamed = 0;
    if (gp_tenant_begin(conn, tenant_id, NULL, &tx, &err) == GP_OK) {
        if (gp_tenant_tx_stream_open(tx, "SELECT name, price_cents FROM public.menu_items ORDER BY name", 0, NULL,
                                     &s, &err) == GP_OK) {
            const gp_result_t *row;
            while (streamed < 2 && gp_stream_next(s, &row, &err) == GP_OK && row) {
                const char *name;
                gp_get_text(row, 0, 0, &name, NULL); /* row 0: each row is a one-row result */
                streamed++;
            }
            gp_stream_close(s, &err); /* early: the statement is canceled, the transaction goes on */
        }
        gp_tenant_commit(tx, &err);
    }
    gp_pool_release(conn);
    printf("imported %lld items (%lld visible in the transaction, rolled back)\n", (long long)imported,
           (long long)visible);
    printf("streamed %d rows, closed early\n", streamed);
    rc = imported == 3 && visible == 3 && streamed == 2 ? 0 : 1;
out:
    gp_pool_close(pool, 1000);
    gp_config_release(&cfg);
    return rc;
}
