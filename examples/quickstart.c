/* quickstart.c — a complete program on the library: configuration from
 * the environment, a pool, a tenant resolved from its slug, one
 * tenant-scoped query, typed results and classified errors.
 *   eval "$(scripts/services env)"; build/examples/quickstart trattoria-demo */
#include <stdio.h>
#include <string.h>

#include <growplate/growplate.h>

int main(int argc, char **argv)
{
    const char *slug = argc > 1 ? argv[1] : "trattoria-demo";

    gp_config_t cfg; /* gp_config_from_env fills it: no gp_config_init needed */
    char problems[GP_ERRBUF_SIZE];
    if (gp_config_from_env(&cfg, problems, sizeof problems) != GP_OK) {
        fprintf(stderr, "%s", problems); /* one line per problem, secrets redacted */
        gp_config_release(&cfg);
        return 2;
    }
    gp_pool_t *pool;
    gp_error_t err;
    if (gp_pool_create(&cfg, &pool, &err) != GP_OK) { /* returns at once; connects in the background */
        fprintf(stderr, "pool: %s\n", err.message);
        gp_config_release(&cfg);
        return 2;
    }

    /* System work, no tenant yet: the slug's tenant id (NULL: no such tenant). */
    int rc = 1;
    char tenant[37] = "";
    gp_result_t *res;
    if (gp_pool_query(pool, "SELECT public.tenant_id_for_slug($1)", GP_ARGS(gp_text(slug)), &res, &err) == GP_OK) {
        gp_uuid_t id;
        if (gp_get_uuid(res, 0, 0, &id) == GP_OK) /* GP_ERR_NULL when there is no such tenant */
            gp_uuid_format(&id, tenant);
        gp_result_free(res);
    } else {
        fprintf(stderr, "resolving '%s': %s (%s, %s)\n", slug, err.message, gp_error_class_name(err.klass),
                err.retriable ? "retriable" : "not retriable"); /* classified; never a password */
        goto out;
    }
    if (!tenant[0]) {
        fprintf(stderr, "no active tenant '%s'\n", slug);
        goto out;
    }

    /* The tenant's available items, cheapest first: row-level security
     * shows this tenant's rows and nobody else's. */
    if (gp_tenant_query(pool, tenant,
                        "SELECT name, price_cents FROM public.menu_items WHERE available ORDER BY price_cents, name",
                        0, NULL, &res, &err) != GP_OK) {
        fprintf(stderr, "menu: %s (SQLSTATE %s)\n", err.message, err.sqlstate);
        goto out;
    }
    int name_col = gp_col(res, "name"), price_col = gp_col(res, "price_cents");
    for (int row = 0; row < gp_result_rows(res); row++) {
        const char *name;
        size_t len;
        int32_t cents;
        if (gp_get_text(res, row, name_col, &name, &len) == GP_OK && /* borrowed from res */
            gp_get_int32(res, row, price_col, &cents) == GP_OK)      /* GP_ERR_NULL / _TYPE / _RANGE */
            printf("%-24.*s %6d.%02d\n", (int)len, name, cents / 100, cents % 100);
    }
    gp_result_free(res);
    rc = 0;

out:
    gp_pool_close(pool, 5000); /* waits at most 5 s for leased connections */
    gp_config_release(&cfg);
    return rc;
}
