/* growplate/tenant.h — tenant-scoped queries and transactions, and helpers
 * that inject tenant_id. GrowPlate's security boundary on the SQL side.
 *
 * How isolation holds by construction:
 *  - A tenant id must be a canonical lowercase UUID (gp_tenant_id_valid() in
 *    tenant_id.h); anything else fails with GP_ERR_TENANT, naming the
 *    problem, and never reaches SQL.
 *  - The tenant is set with set_config('app.tenant_id', id, true): local to
 *    the transaction, never to the session. Row-level security policies on
 *    every tenant-owned table compare tenant_id with it, fail-closed.
 *  - The setting and the caller's statement go out in ONE round trip (a
 *    one-shot call: the setting, the statement and the session sweep in
 *    one implicit transaction; a transaction: BEGIN, the setting and its
 *    first statement), so scoping costs no extra round trip.
 *  - The setting cannot outlive the transaction: COMMIT and ROLLBACK end it,
 *    and the pool rolls back any transaction still open on release (after
 *    an error, a cancellation, a caller that forgot). A caller's COMMIT or
 *    ROLLBACK inside a scoped transaction, also AND CHAIN (which opens a
 *    new, unscoped transaction) and ROLLBACK TO SAVEPOINT (same command
 *    tag; use gp_tx_savepoint/gp_tx_rollback_to), ends the scope: the
 *    transaction's later statements fail with GP_ERR_INVALID.
 *  - Nothing a call leaves in the session reaches the next caller of the
 *    connection (query.h, "Session state"): the session is swept after the
 *    caller's SQL, or reset with DISCARD ALL when the server reports a
 *    command the sweep does not undo. The library never reads the SQL text
 *    to decide this.
 *  - The library's own SQL names every table and function with its schema
 *    (public.menu_items, pg_catalog.set_config), and the application role
 *    may not create temporary objects (migration 0002), so nothing can
 *    shadow them.
 *  - The helpers (gp_tenant_insert/get/update/delete) also put tenant_id in
 *    the SQL, so they stay correct with row-level security off and route to
 *    one shard on a sharded deployment. Their tables live in schema public.
 *
 * The trust boundary. Isolation holds against tenant-controlled data
 * always (values are parameters; ids are validated). Against SQL passed to
 * gp_tenant_* (and to any call on a pooled connection): its effects never
 * outlive its own call or lease — the next tenant on the connection gets a
 * pristine session. What a hostile statement can still do INSIDE its own
 * call is not closed here: it runs with the plain setting app.tenant_id,
 * which SQL in the same transaction can change (set_config(...,
 * true) in a sub-select, SET LOCAL), so an injected statement can read or
 * change another tenant's rows within that one call. Pass only SQL your
 * code wrote; an unforgeable tenant context is the subject of the next
 * security change (see the README's threat model).
 *
 * Thread-safety: gp_tenant_query/gp_tenant_exec/gp_tenant_run are safe from
 * any thread (each leases its own connection). A gp_tenant_tx_t belongs to
 * the thread using its connection; it must not be used concurrently.
 */
#ifndef GROWPLATE_TENANT_H
#define GROWPLATE_TENANT_H

#include "growplate/common.h"
#include "growplate/pool.h"
#include "growplate/query.h"
#include "growplate/tenant_id.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- one-shot scoped statements --------------------------------------------- */

/* Run one statement for a tenant: lease a connection (labelled with the
 * tenant id), send set_config(...); the statement; the session sweep as
 * one pipeline in one implicit transaction (committed at its end, rolled
 * back whole on an error), release. *out receives the statement's rows (free with
 * gp_result_free); NULL on failure.
 * Errors: GP_ERR_TENANT (invalid id: nothing was sent), the pool's acquire
 * errors, and the statement's errors as gp_query() reports them
 * (err->statement_index is not set: the statement is the only one). */
GP_EXPORT gp_status_t gp_tenant_query(gp_pool_t *pool, const char *tenant_id, const char *sql, int nparams,
                                      const gp_value_t *params, gp_result_t **out, gp_error_t *err);

/* The same without rows: *affected (may be NULL) receives the row count. */
GP_EXPORT gp_status_t gp_tenant_exec(gp_pool_t *pool, const char *tenant_id, const char *sql, int nparams,
                                     const gp_value_t *params, int64_t *affected, gp_error_t *err);

/* ---- scoped transactions ------------------------------------------------------- */

typedef struct gp_tenant_tx gp_tenant_tx_t;

/* Start a tenant-scoped transaction on a leased connection with options
 * (NULL = defaults; statement_timeout_ms is applied transaction-locally).
 * Nothing is sent yet: BEGIN and the setting travel with the first
 * statement. *out is freed by gp_tenant_commit() or gp_tenant_rollback().
 * Errors: GP_ERR_TENANT, GP_ERR_INVALID (no connection, a transaction
 * already open, bad options), GP_ERR_NOMEM. */
GP_EXPORT gp_status_t gp_tenant_begin(gp_conn_t *conn, const char *tenant_id, const gp_tx_opts_t *opts,
                                      gp_tenant_tx_t **out, gp_error_t *err);

/* Run a statement inside the transaction (the first one carries BEGIN and
 * the setting in the same pipeline). As gp_query()/gp_exec(). After an
 * error the transaction is aborted: roll it back. */
GP_EXPORT gp_status_t gp_tenant_tx_query(gp_tenant_tx_t *tx, const char *sql, int nparams,
                                         const gp_value_t *params, gp_result_t **out, gp_error_t *err);
GP_EXPORT gp_status_t gp_tenant_tx_exec(gp_tenant_tx_t *tx, const char *sql, int nparams,
                                        const gp_value_t *params, int64_t *affected, gp_error_t *err);

/* The tenant id of the transaction (borrowed, valid until commit/rollback). */
GP_EXPORT const char *gp_tenant_tx_tenant(const gp_tenant_tx_t *tx);

/* COMMIT (nothing to send when no statement ran) and free tx. Errors as
 * gp_tx_commit(), including GP_ERR_COMMIT_UNKNOWN. tx is freed whatever
 * the outcome. */
GP_EXPORT gp_status_t gp_tenant_commit(gp_tenant_tx_t *tx, gp_error_t *err);

/* ROLLBACK (when anything was sent) and free tx. NULL is accepted. */
GP_EXPORT gp_status_t gp_tenant_rollback(gp_tenant_tx_t *tx, gp_error_t *err);

/* The work of a scoped transaction: GP_OK commits, anything else rolls
 * back. May run several times (see gp_tenant_run). */
typedef gp_status_t (*gp_tenant_fn)(gp_tenant_tx_t *tx, void *userdata, gp_error_t *err);

/* Lease a connection, run fn in a tenant-scoped transaction, commit,
 * release; retry on serialization failure or deadlock exactly as
 * gp_tx_run() does (bounded, with backoff, never after an unknown COMMIT
 * outcome). *attempts (may be NULL) receives the number of attempts. */
GP_EXPORT gp_status_t gp_tenant_run(gp_pool_t *pool, const char *tenant_id, const gp_tx_opts_t *opts,
                                    gp_tenant_fn fn, void *userdata, int *attempts, gp_error_t *err);

/* ---- helpers that inject tenant_id -----------------------------------------------
 * Table and column names must be plain lowercase identifiers
 * ([a-z_][a-z0-9_]*, at most 63 bytes); they are quoted in the SQL. Values
 * are parameters. A caller-supplied column named tenant_id is refused
 * (GP_ERR_INVALID): the helpers set it from the transaction's tenant.
 * `columns`/`returning` are "*" or a comma-separated list of identifiers
 * (NULL: "*" for gp_tenant_get, nothing returned for gp_tenant_insert). */

/* INSERT INTO table (tenant_id, cols...) VALUES (<tenant>, vals...)
 * [RETURNING returning]. *out (may be NULL) receives the RETURNING rows. */
GP_EXPORT gp_status_t gp_tenant_insert(gp_tenant_tx_t *tx, const char *table, int ncols, const char *const *cols,
                                       const gp_value_t *vals, const char *returning, gp_result_t **out,
                                       gp_error_t *err);

/* SELECT columns FROM table WHERE tenant_id = <tenant> AND key_col = key. */
GP_EXPORT gp_status_t gp_tenant_get(gp_tenant_tx_t *tx, const char *table, const char *columns,
                                    const char *key_col, gp_value_t key, gp_result_t **out, gp_error_t *err);

/* UPDATE table SET cols = vals WHERE tenant_id = <tenant> AND key_col = key. */
GP_EXPORT gp_status_t gp_tenant_update(gp_tenant_tx_t *tx, const char *table, const char *key_col, gp_value_t key,
                                       int ncols, const char *const *cols, const gp_value_t *vals,
                                       int64_t *affected, gp_error_t *err);

/* DELETE FROM table WHERE tenant_id = <tenant> AND key_col = key. */
GP_EXPORT gp_status_t gp_tenant_delete(gp_tenant_tx_t *tx, const char *table, const char *key_col, gp_value_t key,
                                       int64_t *affected, gp_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
