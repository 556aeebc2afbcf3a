/* cache_notify.c — commit-coupled invalidation: an after-commit action
 * registered on the tenant transaction (the tenant layer never calls the
 * cache), and the NOTIFY that tells the service's other processes. Keys
 * live in the shared Redis, so deleting them there is seen by every
 * process; what each process holds of its own is the tenant's generation
 * (cache.h, "Tenant-wide invalidation"), which the notification makes it
 * forget at once. */
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"
#include "growplate/cache_notify.h"
#include "tenant_internal.h"

typedef struct inval {
    gp_cache_t *cache;
    size_t n;
    char *keys[]; /* n copies */
} inval_t;

static void inval_run(void *ud, const char *tenant)
{
    inval_t *v = ud;
    gp_error_t e;
    gp_status_t st = GP_OK;
    if (v->n == 0)
        st = gp_cache_invalidate_tenant(v->cache, tenant, &e);
    for (size_t i = 0; i < v->n && st == GP_OK; i++)
        st = gp_cache_del(v->cache, tenant, v->keys[i], &e);
    if (st != GP_OK)
        gp__logf(&(gp__log_fields_t){.status = st, .klass = e.klass, .tenant = tenant, .duration_ns = -1},
                 GP_LOG_WARN, "cache", "after commit: the invalidation failed (%s); the keys expire with their TTL",
                 e.message);
}

static void inval_drop(void *ud)
{
    inval_t *v = ud;
    for (size_t i = 0; i < v->n; i++)
        free(v->keys[i]);
    free(v);
}

gp_status_t gp_cache_tx_invalidate(gp_cache_t *cache, gp_tenant_tx_t *tx, size_t n, const char *const *keys,
                                   gp_error_t *err)
{
    if (!cache || !tx || (n && !keys))
        return gp__client_error(err, GP_ERR_INVALID, "no cache, transaction or keys given");
    if (n > GP_CACHE_TX_KEYS_MAX)
        return gp__client_error(err, GP_ERR_INVALID, "%zu keys; at most %d per call (n = 0 invalidates the whole "
                                "tenant)", n, GP_CACHE_TX_KEYS_MAX);
    for (size_t i = 0; i < n; i++) {
        char why[160];
        if (!gp_cache_key_valid(keys[i], why, sizeof why))
            return gp__client_error(err, GP_ERR_KEY, "key %zu: %s", i, why);
    }
    inval_t *v = calloc(1, sizeof *v + n * sizeof(char *));
    if (!v)
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
    v->cache = cache;
    for (size_t i = 0; i < n; i++) {
        if (!(v->keys[i] = strdup(keys[i]))) {
            inval_drop(v);
            return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
        }
        v->n++;
    }
    /* The other processes hold only generations: tell them of a tenant-wide
     * invalidation (delivered on commit, as the action below runs). */
    gp_status_t st = n == 0 ? gp_tenant_tx_notify_service(tx, GP_CACHE_CHANNEL, "*", err) : GP_OK;
    gp__tenant_hook_t hook = {inval_run, inval_drop, v};
    if (st == GP_OK)
        st = gp__tenant_tx_after_commit(tx, &hook, err);
    if (st != GP_OK) {
        inval_drop(v);
        return st;
    }
    if (err)
        gp_error_clear(err);
    return GP_OK;
}

static void on_invalidation(void *ud, const gp_notification_t *n)
{
    gp_cache_t *cache = ud;
    if (n->kind == GP_NOTIFY_GAP)
        gp__cache_generation_forget_all(cache); /* what was missed is unknown */
    else if (n->tenant_id && strcmp(n->payload, "*") == 0)
        gp__cache_generation_forget(cache, n->tenant_id);
}

gp_status_t gp_cache_listen(gp_cache_t *cache, gp_listener_t *listener, gp_error_t *err)
{
    if (!cache || !listener)
        return gp__client_error(err, GP_ERR_INVALID, "no cache or listener given");
    return gp_listener_listen_service(listener, GP_CACHE_CHANNEL, on_invalidation, cache, err);
}
