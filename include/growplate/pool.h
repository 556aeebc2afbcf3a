/* growplate/pool.h — a thread-safe PostgreSQL connection pool on libpq.
 *
 * The pool keeps between pool_min and pool_max connections (connections
 * still being opened count towards max), pre-fills to min in the background,
 * hands connections to waiters in FIFO order, reuses idle ones LIFO (a
 * thread first gets back the connection it released last, when that one is
 * idle and among the 8 most recently released), reaps
 * idle and expired ones, validates long-idle ones before hand-out, discards
 * broken ones, and reconnects with exponential backoff and jitter.
 *
 * Thread-safety: every gp_pool_* function is safe from any thread. A leased
 * gp_conn_t has one owner at a time: use it from one thread at a time, and
 * release it from any thread.
 *
 * Ownership: gp_pool_create() returns a pool the caller closes with
 * gp_pool_close(). A leased connection is returned with gp_pool_release(),
 * never freed by the caller.
 */
#ifndef GROWPLATE_POOL_H
#define GROWPLATE_POOL_H

#include "growplate/common.h"
#include "growplate/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gp_pool gp_pool_t;
typedef struct gp_conn gp_conn_t;

/* Create a pool from cfg->db (copied; cfg may be freed afterwards). Returns
 * at once: connections are opened in the background, so a pool can be
 * created while the server is down and recovers by itself when it comes up.
 * Errors: GP_ERR_CONFIG (invalid configuration, details in err->message),
 * GP_ERR_NOMEM. *out is NULL on failure. `err` may be NULL. */
GP_EXPORT gp_status_t gp_pool_create(const gp_config_t *cfg, gp_pool_t **out, gp_error_t *err);

/* Lease a connection, waiting at most timeout_ms (< 0: the configured
 * DATABASE_ACQUIRE_TIMEOUT; the pool never waits forever). `label` (may be
 * NULL; copied, up to 63 bytes) names the caller — a service, a tenant — in
 * metrics and leak reports, and is the acquire's fairness key ("Fairness"
 * below): the tenant-scoped calls pass the tenant id.
 * Errors: GP_ERR_TIMEOUT (class timeout, retriable; the message includes the
 * last connection failure, if any), GP_ERR_BUSY (class throttled,
 * retriable: this key already has DATABASE_TENANT_MAX_WAITING callers
 * waiting while other keys use the pool; the message names the key and
 * the bound; answer 429 with Retry-After), GP_ERR_CONNECT / GP_ERR_AUTH
 * (the server cannot be reached or refused the credentials, classified, no
 * password in the message), GP_ERR_CLOSED (the pool is closing),
 * GP_ERR_INVALID.
 *
 * Fairness (DATABASE_TENANT_FAIR, on by default). While connections are
 * scarce, a connection that comes free goes to the waiting key with the
 * least recent service — the hold time of its leases, halved every second,
 * plus its current leases counted up to now — oldest caller first within a
 * key; a key that already holds DATABASE_TENANT_MAX_SHARE percent of max
 * (default 50) is served only when no key holding less waits. A key alone
 * may use every connection (work-conserving); every caller still gives up
 * at its own timeout. Off: first come, first served across keys. */
GP_EXPORT gp_status_t gp_pool_acquire(gp_pool_t *pool, const char *label, int timeout_ms,
                                      gp_conn_t **out, gp_error_t *err);

/* The same, naming the call site for leak reports: `site` (may be NULL;
 * borrowed for the whole lease, so a string literal) is logged with the key
 * when the lease is held past DATABASE_LEAK_THRESHOLD. GP_POOL_ACQUIRE()
 * passes the caller's file and line. */
GP_EXPORT gp_status_t gp_pool_acquire_at(gp_pool_t *pool, const char *label, const char *site, int timeout_ms,
                                         gp_conn_t **out, gp_error_t *err);
#define GP__POOL_STR2(x) #x
#define GP__POOL_STR(x) GP__POOL_STR2(x)
#define GP_POOL_ACQUIRE(pool, label, timeout_ms, out, err) \
    gp_pool_acquire_at((pool), (label), __FILE__ ":" GP__POOL_STR(__LINE__), (timeout_ms), (out), (err))

/* Return a leased connection. Safe from any thread, and after
 * gp_pool_close(). A connection inside a transaction (or a failed one) is
 * rolled back first; a lease that ran SQL the library did not write is
 * swept (one round trip: RESET ALL, CLOSE ALL, UNLISTEN *, advisory locks
 * released, then a check that no role switch, temporary object, SQL-level
 * prepared statement or cursor is left), and reset with DISCARD ALL when
 * the check fails, when the server reported a command the sweep does not
 * undo, or after gp_conn_pgconn() (query.h, "Session state"). The next
 * caller gets a session indistinguishable from a fresh one. If any of that
 * fails, or libpq reports the connection broken, or the server sent a
 * fatal SQLSTATE (class 08, 57P01-57P03), the connection is closed instead
 * of reused. NULL is accepted. */
GP_EXPORT void gp_pool_release(gp_conn_t *conn);

/* Close the pool: new acquires fail with GP_ERR_CLOSED, waiters are woken
 * with GP_ERR_CLOSED, idle connections are closed, and the call waits at
 * most wait_ms for leased connections to come back. Connections released
 * later are closed then; the pool's memory is freed when the last one is.
 * Returns GP_OK when every lease came back, GP_ERR_TIMEOUT otherwise. The
 * handle must not be used after this call. NULL is accepted. */
GP_EXPORT gp_status_t gp_pool_close(gp_pool_t *pool, int wait_ms);

/* The libpq connection (a PGconn *) behind a leased connection: an escape
 * hatch for code that needs libpq directly (tools) until the query layer
 * covers it. Valid only while `conn` is leased. The caller must not close
 * it, must not leave it inside a transaction or with a command still
 * running (the pool rolls back on release, and discards connections it
 * cannot clean). Nothing the library can see tells what raw libpq did, so
 * the lease is reset with DISCARD ALL on release (which also empties the
 * statement cache of that connection): session state set through it lasts
 * until the release. Returns NULL for NULL, and through a transaction
 * pooler (DATABASE_POOLER=transaction), where nothing could undo what raw
 * SQL leaves on a server connection other clients share. Declared with the libpq struct tag so this header does not
 * include libpq-fe.h: `PGconn *pg = gp_conn_pgconn(conn);` */
struct pg_conn;
GP_EXPORT struct pg_conn *gp_conn_pgconn(gp_conn_t *conn);

/* Why connections were closed. */
typedef enum gp_close_reason {
    GP_CLOSE_IDLE = 0,       /* idle timeout */
    GP_CLOSE_LIFETIME = 1,   /* max lifetime */
    GP_CLOSE_BROKEN = 2,     /* broken or fatal SQLSTATE */
    GP_CLOSE_VALIDATION = 3, /* failed validation before hand-out */
    GP_CLOSE_RESET = 4,      /* rollback/reset failed on release */
    GP_CLOSE_SHUTDOWN = 5,   /* pool closed */
    GP_CLOSE_REASON_COUNT_
} gp_close_reason_t;

/* A lowercase name for a close reason ("idle", "lifetime", ...). */
GP_EXPORT const char *gp_close_reason_name(gp_close_reason_t reason);

/* One fairness key's share of the pool (see "Fairness" above). */
#define GP_POOL_TOP_KEYS 20
typedef struct gp_pool_key_metrics {
    char key[64];            /* the key (tenant id or label); "" for the "other" row */
    int other;               /* nonzero: the row that sums every key not listed */
    int held, waiting;       /* gauges */
    uint64_t acquires, timeouts, throttled; /* counters since creation (GP_ERR_BUSY counts as throttled) */
    uint64_t recent_hold_us; /* hold time over the last one to two minutes: the ranking */
    gp_latency_t wait, hold; /* percentiles within a factor of two (power-of-two buckets, interpolated) */
} gp_pool_key_metrics_t;

/* A consistent snapshot of the pool's metrics. */
/* Where a read was served (gp_pool_metrics_t.reads; pool.h, "Read replicas"). */
typedef enum gp_read_served {
    GP_READ_REPLICA = 0,       /* by the read pool */
    GP_READ_PRIMARY_NONE,      /* by the primary: no DATABASE_READ_URL */
    GP_READ_PRIMARY_DOWN,      /* by the primary: the read pool could not connect */
    GP_READ_PRIMARY_LAG,       /* by the primary: the standby lagged beyond DATABASE_READ_MAX_LAG (or not measured yet) */
    GP_READ_PRIMARY_BEHIND,    /* by the primary: the standby had not replayed `after` within wait_ms */
    GP_READ_PRIMARY_BUSY,      /* by the primary: every read pool connection was leased (or the caller's key throttled) */
    GP_READ_SERVED_COUNT_
} gp_read_served_t;

typedef struct gp_pool_metrics {
    /* gauges */
    int total, idle, leased, opening, waiting;
    int min, max;
    /* counters since creation */
    uint64_t acquires, acquire_timeouts, acquire_errors;
    uint64_t opened, open_failures;
    uint64_t closed[GP_CLOSE_REASON_COUNT_];
    uint64_t leaks_reported;
    /* latencies */
    gp_latency_t wait;       /* time from acquire call to hand-out */
    gp_latency_t hold;       /* time from hand-out to release */
    gp_latency_t connect;    /* time to open a connection */
    /* The query layer's calls on this pool's connections (gp_query,
     * gp_exec, pipelines, gp_pool_query/exec, the tenant and data calls):
     * a call is one observation, however many statements it sends. */
    uint64_t statements;     /* the caller's statements sent (the library's own BEGIN, settings and sweeps not counted) */
    uint64_t rows;           /* rows returned, or affected by INSERT/UPDATE/DELETE/MERGE, by calls that succeeded */
    uint64_t calls_failed[GP_ECLASS_COUNT_]; /* failed calls by error class ([GP_ECLASS_NONE] stays 0) */
    gp_latency_t call;       /* duration of each call, connection in hand (acquire wait not included) */
    /* Fairness: acquires refused with GP_ERR_BUSY, and the heaviest keys
     * (by hold time over the last one to two minutes, heaviest first),
     * then one row (other != 0) for every other key: at most
     * GP_POOL_TOP_KEYS + 1 rows, however many tenants use the pool. */
    uint64_t throttled;
    int n_keys;
    gp_pool_key_metrics_t keys[GP_POOL_TOP_KEYS + 1];
    /* Read routing (gp_pool_acquire_read and the calls on it): where reads
     * were served and why, and the standbys' replay lag as last measured
     * (-1: unknown, or no read pool). The read pool's own connections and
     * calls: gp_pool_metrics(gp_pool_read_pool(pool), ...). */
    uint64_t reads[GP_READ_SERVED_COUNT_];
    int64_t read_lag_ms;
    /* Automatic pipelining of one-shot calls (query.h): the units sent
     * (one per call that went through it), the round trips that carried
     * them, the units that shared their round trip with another caller's,
     * and the units whose outcome was unknown (GP_ERR_COMMIT_UNKNOWN). */
    uint64_t oneshot_units, oneshot_round_trips, oneshot_shared, oneshot_unknown;
} gp_pool_metrics_t;

/* Fill *out. Safe from any thread; cheap enough for a scrape every second. */
GP_EXPORT gp_status_t gp_pool_metrics(gp_pool_t *pool, gp_pool_metrics_t *out);

/* ---- Read replicas ----------------------------------------------------------
 *
 * With DATABASE_READ_URL (gp_db_config_t.read_url) the pool owns a second,
 * read pool on one or several hot standbys (a multi-host URL: libpq tries
 * the hosts in order; target_session_attrs=standby keeps a promoted one out),
 * with the same sizes and timeouts. Reads go there only through the calls
 * that say they read: gp_pool_acquire_read() and what is built on it
 * (gp_pool_read_query/exec in query.h, gp_tenant_read_query and
 * gp_tenant_run with gp_tx_opts_t.read_only in tenant.h). Everything else,
 * writes included, stays on the primary.
 *
 * A read is served by the primary instead (and counted by why in
 * gp_pool_metrics_t.reads) when there is no read pool, when the read pool
 * cannot connect (its last attempts failed and nothing is idle; then it is
 * left alone for a second), when the standby's replay lag, measured on a
 * read lease at most once a second, exceeds DATABASE_READ_MAX_LAG, and when
 * the read asks for a WAL position (read-your-writes) that the standby
 * does not replay within gp_read_opts_t.wait_ms. The lag is 0 while the
 * standby has replayed all it received, else the time since the last
 * transaction it replayed committed: a standby cut off from its primary
 * therefore reads as current (the primary is then down too).
 *
 * Tenant scoping is identical on both: a standby cannot write, so the
 * tenant secret it needs is published through the primary pool and waited
 * for on the standby, once per tenant and token window. */


/* "replica", "primary_none", "primary_down", "primary_lag", "primary_behind", "primary_busy". */
GP_EXPORT const char *gp_read_served_name(gp_read_served_t s);

typedef struct gp_read_opts {
    /* A WAL position from gp_pool_wal_position() (query.h) taken after the
     * caller's commit: a standby serves the read only once it has replayed
     * it, so the read sees that commit (read-your-writes). NULL = any
     * standby within DATABASE_READ_MAX_LAG. */
    const char *after;
    /* How long to wait for a standby to replay `after` before the primary
     * serves the read instead; 0 = 100 ms. */
    int wait_ms;
} gp_read_opts_t;

/* Lease a connection for reading: from the read pool when a standby can
 * serve the read (see above), else from the primary pool, as
 * gp_pool_acquire would. Either way transactions begun on the lease
 * (gp_tx_begin, gp_tenant_begin) are READ ONLY; a statement sent outside a
 * transaction is not checked on the primary, so use gp_pool_read_query for
 * one-shot reads. opts may be NULL. timeout_ms as gp_pool_acquire's
 * (-1: DATABASE_ACQUIRE_TIMEOUT); a read-your-writes wait counts in it.
 * Errors: as gp_pool_acquire; GP_ERR_INVALID for an `after` that is not a
 * WAL position ("16/B374D848"). Release with gp_pool_release(). Safe from
 * any thread. */
GP_EXPORT gp_status_t gp_pool_acquire_read(gp_pool_t *pool, const gp_read_opts_t *opts, const char *label,
                                           int timeout_ms, gp_conn_t **out, gp_error_t *err);

/* Whether a lease is the read pool's (a standby's, unless the read URL
 * names a primary). */
GP_EXPORT int gp_conn_is_replica(const gp_conn_t *conn);

/* The pool's read pool, for its metrics (gp_pool_metrics) and health;
 * borrowed, closed with the pool; NULL when there is none. */
GP_EXPORT gp_pool_t *gp_pool_read_pool(gp_pool_t *pool);

#ifdef __cplusplus
}
#endif
#endif
