/* tenant_internal.h — what the tenant layer (tenant.c) offers its own
 * files (tenant_copy.c, tenant_listen.c) and the layers above (the cache's
 * commit-coupled invalidation); never installed. */
#ifndef GROWPLATE_TENANT_INTERNAL_H
#define GROWPLATE_TENANT_INTERNAL_H

#include "growplate/tenant.h"
#include "query_internal.h"

/* Make sure tx's BEGIN and tenant setting reached the server (sending them
 * with an empty SELECT when no statement ran yet) and give its connection,
 * ready for a statement of the caller's. Errors: as gp_tenant_tx_query
 * (GP_ERR_INVALID when the transaction has ended). */
gp_status_t gp__tenant_tx_scope(gp_tenant_tx_t *tx, gp_conn_t **conn, gp_error_t *err);

/* An action to take once tx has committed: run(userdata, tenant) after
 * gp_tenant_commit's COMMIT succeeded (on the committing thread, before it
 * returns), never after a rollback, a failed COMMIT or
 * GP_ERR_COMMIT_UNKNOWN; drop(userdata) (may be NULL) in every case, after
 * run. The tenant layer calls no layer above it: they register hooks. */
typedef struct gp__tenant_hook {
    void (*run)(void *userdata, const char *tenant);
    void (*drop)(void *userdata);
    void *userdata;
} gp__tenant_hook_t;
#define GP__TENANT_HOOKS_MAX 16

/* Register a hook on tx. Errors: GP_ERR_INVALID, GP_ERR_RANGE (more than
 * GP__TENANT_HOOKS_MAX: the hook is not taken, drop is not called). */
gp_status_t gp__tenant_tx_after_commit(gp_tenant_tx_t *tx, const gp__tenant_hook_t *hook, gp_error_t *err);

#endif
