/* growplate/tenant.h — tenant-scoped queries and transactions, and helpers
 * that inject tenant_id. GrowPlate's security boundary on the SQL side.
 *
 * How isolation holds by construction:
 *  - A tenant id must be a canonical lowercase UUID (gp_tenant_id_valid() in
 *    tenant_id.h); anything else fails with GP_ERR_TENANT, naming the
 *    problem, and never reaches SQL.
 *  - The tenant context cannot be forged by SQL on the connection (see "The
 *    verified tenant context" below): the library sets a tenant secret,
 *    signed with DATABASE_TENANT_KEY, transaction-locally; the row-level
 *    security policies on every tenant-owned table accept only a published
 *    secret and compare tenant_id with its tenant, fail-closed.
 *  - The setting and the caller's statement go out in ONE round trip (a
 *    one-shot call: the setting, the statement and the session sweep in
 *    one implicit transaction; a transaction: BEGIN, the setting and its
 *    first statement), so scoping costs no extra round trip. (About once
 *    per pool, tenant and window, the secret is published first: in the
 *    same round trip for a one-shot call, in one of its own before a
 *    transaction.)
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
 * gp_tenant_* (and to any call on a pooled connection), hostile SQL
 * included: it acts as its own call's tenant and as no other — whatever it
 * does to the settings, in any spelling, in a sub-select, a DO block or a
 * data-modifying CTE — and its effects never outlive its own call or lease
 * (the next tenant on the connection gets a pristine session). What it can
 * still do is everything its own tenant may do, and observe what the
 * database shows every session of the application role (README, threat
 * model: other sessions' statement text, platform-wide row counts, LISTEN
 * channels, advisory locks).
 *
 * The verified tenant context (migration 0004). For a tenant T the library
 * computes the tenant secret S = HMAC-SHA-256(key, "v1.<kid>.<T>.<E>")
 * (key: DATABASE_TENANT_KEY; kid: the key's public id; E: the end of the
 * window after the current one, windows of DATABASE_TENANT_TOKEN_TTL) and
 * sets only S in the transaction-local setting GP_TENANT_TOKEN_SETTING. The
 * database holds the key as HMAC pads in a table only the schema owner can
 * read; growplate.tenant_publish() (SECURITY DEFINER) verifies S and
 * records an anchor sha256(S) -> T valid until E; the policies compare
 * tenant_id with the anchor's tenant through the view
 * GP_TENANT_CONTEXT_VIEW (an index lookup per statement, no procedural
 * code). No function signs anything: without the key nobody makes an S
 * that verifies. SQL that reads its own S (current_setting) can only act
 * as itself; a secret of another tenant, should one leak, is refused after
 * E (at most two TTLs after it was first used). public.growplate_tenant()
 * returns the verified tenant for the application's own SQL (INSERT ...
 * VALUES (growplate_tenant(), ...)).
 *
 * Keys. The service and `growplate migrate` must use the same key; without
 * DATABASE_TENANT_KEY every tenant-scoped call fails with GP_ERR_CONFIG
 * naming it, and with a key the database does not hold, with GP_ERR_AUTH
 * (SQLSTATE 28000, "tenant key <kid> is not installed"). The key is never
 * shown: not in messages, logs, `config` output, statement text or the
 * server log (it travels only as HMAC pads in migrate's parameters, and the
 * secrets only as parameters).
 *
 * Rotating the tenant key, without downtime: (1) run `growplate migrate`
 * with DATABASE_TENANT_KEY=<new> and DATABASE_TENANT_KEY_PREVIOUS=<old>:
 * both are installed, services on either key work; (2) roll the services
 * out with the new key; (3) run `growplate migrate` with only the new key:
 * the old one is removed with every secret published under it, at once
 * (services still on it then fail with GP_ERR_AUTH). Step 3 is also how a
 * leaked key is revoked.
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

/* A tenant's one-shot read, routed like gp_pool_read_query (pool.h, "Read
 * replicas"; ropts may be NULL): a READ ONLY tenant-scoped transaction on
 * a standby when one can serve it, else on the primary, with the same
 * scoping either way (row-level security and the verified tenant context
 * hold on the standby: the tenant's secret is published through the
 * primary and waited for, once per token window). Errors: as
 * gp_tenant_query; GP_ERR_TIMEOUT (retriable) when the standby did not
 * replay a new tenant secret within the pool's acquire timeout. */
GP_EXPORT gp_status_t gp_tenant_read_query(gp_pool_t *pool, const char *tenant_id, const gp_read_opts_t *ropts,
                                           const char *sql, int nparams, const gp_value_t *params, gp_result_t **out,
                                           gp_error_t *err);

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

/* gp_tenant_commit, then the WAL position of the commit for
 * read-your-writes, as gp_tx_commit_position (query.h). tx is freed
 * whatever the outcome. */
GP_EXPORT gp_status_t gp_tenant_commit_position(gp_tenant_tx_t *tx, char position[GP_WAL_POSITION_LEN],
                                                gp_error_t *err);

/* ROLLBACK (when anything was sent) and free tx. NULL is accepted. */
GP_EXPORT gp_status_t gp_tenant_rollback(gp_tenant_tx_t *tx, gp_error_t *err);

/* The work of a scoped transaction: GP_OK commits, anything else rolls
 * back. May run several times (see gp_tenant_run). */
typedef gp_status_t (*gp_tenant_fn)(gp_tenant_tx_t *tx, void *userdata, gp_error_t *err);

/* Lease a connection, run fn in a tenant-scoped transaction, commit,
 * release; retry on serialization failure or deadlock exactly as
 * gp_tx_run() does (bounded, with backoff, never after an unknown COMMIT
 * outcome). *attempts (may be NULL) receives the number of attempts. With
 * opts->read_only the lease is gp_pool_acquire_read's (a standby's when
 * one can serve the read, pool.h "Read replicas"). */
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
