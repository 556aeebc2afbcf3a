/* pool_internal.h — the contract between the pool and the layers above it
 * (query, tenant). Never installed.
 *
 * A gp_conn is one physical PostgreSQL connection owned by the pool. While
 * leased, exactly one thread uses it. The layers above may read `pg`, keep
 * their own per-connection state in `query_state`, and set the flags below;
 * every other field is the pool's.
 */
#ifndef GROWPLATE_POOL_INTERNAL_H
#define GROWPLATE_POOL_INTERNAL_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "growplate/pool.h"

struct gp_conn {
    PGconn *pg;                 /* the libpq connection; never NULL while leased */

    /* Per-connection state of the query layer (e.g. its prepared-statement
     * cache). Created lazily by the query layer on a leased connection; the
     * pool calls query_state_free(query_state) when it closes the connection
     * (never while leased). Both NULL until the query layer sets them. */
    void *query_state;
    void (*query_state_free)(void *query_state);

    /* Set by any layer when the connection must not be reused (libpq says
     * it is broken, the server sent a fatal SQLSTATE, a protocol state the
     * layer cannot recover from). The pool closes it on release. */
    bool discard;

    /* Set by any layer when the caller may have changed session state
     * (SET, RESET, set_config(..., false), LISTEN, temporary objects...).
     * On release the pool runs RESET ALL (and clears the flag), or discards
     * the connection if that fails. Transaction-local state needs no flag:
     * the pool rolls back any open transaction on release. */
    bool reset_needed;

    /* The pool's own fields follow; other layers must not touch them. */
    struct gp__pool_conn_priv *priv;
};

/* Classify a server error by SQLSTATE (NULL or "" = none): fills klass and
 * retriable in *err. Shared by the pool and the query layer. */
void gp__classify_sqlstate(const char *sqlstate, gp_error_t *err);

/* True when the SQLSTATE means the connection must be discarded: class 08,
 * 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now. */
bool gp__sqlstate_is_fatal(const char *sqlstate);

/* Fill *err (if not NULL) from a libpq result or, when res is NULL, from the
 * connection's error message; classify it; redact it. Returns err->status. */
gp_status_t gp__error_from_pg(PGconn *pg, const PGresult *res, gp_error_t *err);

/* Fill *err (if not NULL) from a failed connection attempt (PQconnectdb* or
 * pg == NULL for out of memory). libpq gives no SQLSTATE for these, so the
 * message is classified: rejected credentials -> GP_ERR_AUTH (28P01/28000,
 * not retriable); unknown database -> GP_ERR_CONNECT (3D000, not
 * retriable); server starting or shutting down (57P03), too many clients
 * (53300) and unreachable servers -> GP_ERR_CONNECT, retriable. Redacted.
 * Returns err->status. */
gp_status_t gp__error_from_connect(PGconn *pg, gp_error_t *err);

#endif
