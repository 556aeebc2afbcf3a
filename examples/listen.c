/* listen.c — notifications for one tenant: a listener with the tenant's
 * channel "orders" polled through its descriptor, an order-status NOTIFY
 * sent from a tenant transaction together with a cache invalidation, both
 * taking effect only when the transaction commits. The README's
 * "Notifications" samples are excerpts of this file.
 *   eval "$(scripts/services env)"; build/growplate demo; build/examples/listen trattoria-demo */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <growplate/growplate.h>

typedef struct status_change {
    gp_cache_t *cache;
    const char *payload;
} status_change_t;

/* NOTIFY and the invalidation ride on the transaction: nothing before COMMIT. */
static gp_status_t mark_ready(gp_tenant_tx_t *tx, void *userdata, gp_error_t *err)
{
    const status_change_t *c = userdata;
    const char *keys[] = {"orders:open"};
    gp_status_t st = gp_tenant_tx_exec(tx, "UPDATE public.tenants SET updated_at = now()", 0, NULL, NULL, err);
    if (st == GP_OK)
        st = gp_tenant_tx_notify(tx, "orders", c->payload, err);
    if (st == GP_OK)
        st = gp_cache_tx_invalidate(c->cache, tx, 1, keys, err);
    return st;
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
    gp_pool_t *pool = NULL;
    gp_cache_t *cache = NULL;
    gp_listener_t *listener = NULL;
    gp_error_t err;
    int rc = 1;
    if (gp_pool_create(&cfg, &pool, &err) != GP_OK || gp_cache_create(&cfg, NULL, &cache, &err) != GP_OK ||
        gp_listener_create(&cfg, &listener, &err) != GP_OK) {
        fprintf(stderr, "setup: %s\n", err.message);
        rc = 2;
        goto out;
    }
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

    /* subscribe without a callback: messages queue up behind a descriptor */
    if (gp_listener_listen_tenant(listener, tenant_id, "orders", NULL, NULL, &err) != GP_OK) {
        fprintf(stderr, "listen: %s\n", err.message);
        goto out;
    }
    gp_cache_set(cache, tenant_id, "orders:open", "[42]", 4, 60000, &err);
    status_change_t change = {cache, "order 42 ready"};
    if (gp_tenant_run(pool, tenant_id, NULL, mark_ready, &change, NULL, &err) != GP_OK) {
        fprintf(stderr, "notify: %s\n", err.message);
        goto out;
    }
    char *gone = NULL;
    size_t len;
    printf("cache after commit: %s\n",
           gp_cache_get(cache, tenant_id, "orders:open", &gone, &len, &err) == GP_ERR_MISS ? "invalidated" : "stale");
    free(gone);

    /* an event loop would poll this descriptor with its others */
    struct pollfd pfd = {.fd = gp_listener_fd(listener), .events = POLLIN};
    gp_notification_t *n = NULL;
    for (int waited = 0; !n && waited < 100; waited++) {
        if (poll(&pfd, 1, 100) > 0)
            gp_listener_next(listener, &n);
    }
    if (n && n->kind == GP_NOTIFY_MESSAGE) {
        printf("received '%s' on channel %s for tenant %s\n", n->payload, n->channel,
               strcmp(n->tenant_id, tenant_id) == 0 ? slug : "another tenant");
        rc = 0;
    } else if (n) {
        printf("lost notifications (%lld ms without a connection): resynchronise\n", (long long)n->gap_ms);
    }
    gp_notification_free(n);
out:
    gp_listener_free(listener);
    gp_cache_close(cache);
    gp_pool_close(pool, 1000);
    gp_config_release(&cfg);
    return rc;
}
