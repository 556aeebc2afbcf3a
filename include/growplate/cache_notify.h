/* growplate/cache_notify.h — cache invalidation coupled to a tenant
 * transaction's commit, in this process at once and in the service's other
 * processes through a notification (growplate/listen.h).
 *
 * gp_cache_tx_invalidate() names what a transaction makes stale: nothing
 * happens unless and until the transaction commits. Then, on the
 * committing thread, before gp_tenant_commit() (or gp_tenant_run())
 * returns, the keys are deleted from Redis, or the whole tenant is
 * invalidated (gp_cache_invalidate_tenant); and the NOTIFY sent inside the
 * transaction reaches every process whose cache listens (gp_cache_listen),
 * which then forgets its cached generation of the tenant at once instead
 * of after generation_ttl_ms. A rollback, a failed COMMIT or
 * GP_ERR_COMMIT_UNKNOWN invalidates nothing (after an unknown outcome,
 * invalidate yourself: it is always safe). The cache being unavailable
 * at that moment is logged (the keys then expire with their TTL).
 *
 * Layering: the tenant layer knows nothing of the cache; the cache
 * registers an after-commit action on the transaction.
 *
 * Thread-safety: as the transaction (one thread at a time) and the cache
 * (any thread).
 */
#ifndef GROWPLATE_CACHE_NOTIFY_H
#define GROWPLATE_CACHE_NOTIFY_H

#include <stddef.h>

#include "growplate/cache.h"
#include "growplate/listen.h"
#include "growplate/tenant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The service channel the invalidations travel on. */
#define GP_CACHE_CHANNEL "gp_cache"
/* The most keys one call names (more: invalidate the whole tenant, n = 0). */
#define GP_CACHE_TX_KEYS_MAX 64

/* After tx commits: delete keys[0..n) of tx's tenant, or (n == 0) the whole
 * tenant's cache; tell the other processes. Sends the NOTIFY now (one
 * statement in tx). Errors: GP_ERR_KEY (an invalid key: nothing
 * registered), GP_ERR_INVALID (n > GP_CACHE_TX_KEYS_MAX, NULL arguments, an
 * ended transaction), GP_ERR_RANGE (too many actions on one transaction),
 * GP_ERR_CONFIG (no DATABASE_TENANT_KEY), the server's, GP_ERR_NOMEM. */
GP_EXPORT gp_status_t gp_cache_tx_invalidate(gp_cache_t *cache, gp_tenant_tx_t *tx, size_t n,
                                             const char *const *keys, gp_error_t *err);

/* Make this process's cache follow the other processes' invalidations:
 * subscribes to GP_CACHE_CHANNEL on the listener (callback on the
 * listener's thread). After a gap (lost notifications) every cached
 * generation is forgotten. Errors: as gp_listener_listen_service. The
 * cache must outlive the listener. */
GP_EXPORT gp_status_t gp_cache_listen(gp_cache_t *cache, gp_listener_t *listener, gp_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
