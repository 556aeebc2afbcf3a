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

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "growplate/pool.h"
#include "internal.h" /* gp__tenant_key_t */

/* The tenant layer's record of the tenant secrets already published
 * (tenant.c), one per pool: an anchor is the database's, valid for every
 * connection. 4-way set-associative by tenant (GP__PUBLISHED_SLOTS / 4 sets,
 * a set's oldest way replaced first), under `mu`. `epoch` counts
 * connections that broke (GP_CLOSE_BROKEN, GP_CLOSE_VALIDATION): a slot
 * recorded in an earlier epoch is published again, so after a failover to
 * a server that lost recent writes (an anchor among them) no call runs
 * without its anchor. The pool owns it (created and freed with the pool);
 * the tenant layer alone reads and writes the slots. */
#define GP__PUBLISHED_SLOTS 1024
typedef struct gp__published {
    char tenant[37];
    char secret[65];
    int64_t expires;  /* unix seconds; 0 = empty slot */
    uint64_t epoch;
} gp__published_t;
typedef struct gp__tenant_cache {
    pthread_mutex_t mu;
    _Atomic uint64_t epoch;
    gp__published_t slot[GP__PUBLISHED_SLOTS];
    uint8_t next_way[GP__PUBLISHED_SLOTS / 4];
} gp__tenant_cache_t;

/* The query layer's call statistics of one pool (gp_pool_metrics_t's
 * statements, rows, calls_failed and call): owned by the pool, recorded by
 * the query layer through gp__stmt_stats_record, lock-free. */
typedef struct gp__stmt_stats {
    _Atomic uint64_t statements, rows;
    _Atomic uint64_t failed[GP_ECLASS_COUNT_];
    gp_hist_t *duration;
} gp__stmt_stats_t;

/* Record one call: `statements` of the caller's, `rows` (when it
 * succeeded), its duration, and its error class (GP_ECLASS_NONE: it
 * succeeded). NULL stats are ignored. Safe from any thread. */
void gp__stmt_stats_record(gp__stmt_stats_t *s, int statements, uint64_t rows, int64_t ns, gp_error_class_t klass);

/* The queue of one-shot units waiting for a round trip (query_batch.c):
 * owned by the pool (made and destroyed with it, settings filled from its
 * configuration), operated by the query layer under `mu`; the counters are
 * gp_pool_metrics_t's oneshot_*. */
typedef struct gp__oneshot gp__oneshot_t;
typedef struct gp__oneshot_queue {
    pthread_mutex_t mu;
    gp__oneshot_t *head, *tail;
    _Atomic int queued;        /* units in the list (changed under mu, readable without it) */
    int leaders;               /* callers leading (acquiring or holding a connection for the queue) */
    int gathering;             /* ... of which not yet taken their units (at most one: the others queue for it) */
    uint64_t seq;
    /* When each key's units were last taken (a take counter), direct
     * mapped by the key's hash: the key served longest ago goes first. */
    uint64_t takes;
    struct { uint64_t key, at; } served[256];
    /* settings, read-only after creation */
    int batch;                 /* DATABASE_PIPELINE_BATCH; 0: no automatic pipelining (a transaction pooler) */
    int max_leaders;           /* the pool's maximum size */
    int max_waiting;           /* per key (DATABASE_TENANT_MAX_WAITING, resolved) */
    int query_timeout_ms, statement_timeout_ms;
    _Atomic uint64_t units, round_trips, shared, unknown;
} gp__oneshot_queue_t;
gp__oneshot_queue_t *gp__pool_oneshots(gp_pool_t *p);
/* A thread starts using the queue (GP_ERR_CLOSED: the pool is closing, do
 * not) and stops using it: a closed pool is freed only when the last
 * user has left (it may be freed inside gp__pool_leave). */
/* An idle connection for `label` at once, without waiting, validating or
 * counting a failure: false when none is idle (or the pool's lock is
 * taken, or the idle one is due for validation). */
bool gp__pool_try_acquire(gp_pool_t *p, const char *label, const char *site, gp_conn_t **out);
gp_status_t gp__pool_enter(gp_pool_t *p);
void gp__pool_leave(gp_pool_t *p);

struct gp_conn {
    PGconn *pg;                 /* the libpq connection; never NULL while leased */

    /* For the tenant layer: the pool's key (never NULL; `set` false when
     * none is configured) and its record of published secrets (never
     * NULL). */
    const gp__tenant_key_t *tenant_key;
    gp__tenant_cache_t *tenant_cache;

    /* The pool's call statistics, for the query layer (never NULL). */
    gp__stmt_stats_t *stmt_stats;

    /* The client-side deadline (DATABASE_QUERY_TIMEOUT; 0 = none). Each
     * operation of the layers above arms it (gp__arm_deadline) before it
     * sends, and every wait for the server on the connection ends by then
     * (gp__get_result, gp__exec*), even when the server cannot answer at
     * all. When it passes, `timed_out` and `discard` are set: the
     * connection is mid-protocol and is closed on release. */
    int query_timeout_ms;
    int tx_query_timeout_ms; /* > 0: the open transaction's own (gp_tx_opts_t); cleared when it ends */
    bool tx_read_only;       /* the open transaction was begun READ ONLY at the caller's request */
    bool own_statement_cache; /* DATABASE_STATEMENT_CACHE set for the pool (else the process-wide capacity) */
    int statement_cache;      /* ... and its value */
    int64_t deadline_ns;
    bool timed_out;

    /* DATABASE_POOLER=transaction: a pooler hands the server connection to
     * another client after each transaction, so the query layer runs every
     * unit of work as one transaction of its own, checked for session state
     * before it commits (query.c, "Through a transaction pooler"), with
     * unnamed statements only, and sets the statement timeout
     * (`txpooler_timeout_ms`, DATABASE_STATEMENT_TIMEOUT) in each
     * transaction. */
    bool txpooler;
    int txpooler_timeout_ms;
    /* The application_name this client connected with (query_txpooler.c
     * sets it back after each unit), looked up once per libpq connection:
     * valid while txpooler_app_of == pg. */
    char txpooler_app[64];
    PGconn *txpooler_app_of;

    /* Read routing (pool_read.c). `writer`: for a connection of a pool's
     * read pool, the primary pool (which publishes tenant secrets, since a
     * standby cannot write); NULL otherwise. `read_lease`: this lease came
     * from gp_pool_acquire_read() (from either pool): transactions begun on
     * it are READ ONLY. Cleared on release. */
    gp_pool_t *writer;
    bool read_lease;

    /* Per-connection state of the query layer (e.g. its prepared-statement
     * cache). Created lazily by the query layer on a leased connection; the
     * pool calls query_state_free(query_state) when it closes the connection
     * (never while leased). Both NULL until the query layer sets them. */
    void *query_state;
    void (*query_state_free)(void *query_state);
    /* Set with query_state: sweep a tainted session on release (see
     * `tainted` below) with the query layer's prepared statements, in one
     * round trip; true when the verdict is clean (then tainted is
     * cleared). The pool falls back to DISCARD ALL without it. */
    bool (*sweep)(struct gp_conn *conn);

    /* Set by any layer when the connection must not be reused (libpq says
     * it is broken, the server sent a fatal SQLSTATE, a protocol state the
     * layer cannot recover from). The pool closes it on release. */
    bool discard;

    /* Session hygiene. A connection goes back to the pool indistinguishable
     * from a fresh one (apart from the query layer's verified prepared
     * statements and the connect-time settings); what the caller's SQL did
     * is judged by what the server reports, never by reading the SQL.
     *
     * `tainted`: SQL the library did not write (caller SQL, raw libpq) ran
     * since the session was last known clean. The query layer sets it
     * before sending such SQL and may clear it only when a sweep
     * (gp__sweep) ran after the last such statement, the connection is
     * outside any transaction, and the sweep's verdict was clean. On
     * release the pool sweeps a tainted connection (`sweep`, one round
     * trip), and resets it fully when the verdict is not clean.
     *
     * `reset_needed`: the session may hold state a sweep does not undo (a
     * command outside the allow-list of gp__tag_effects, raw libpq access,
     * a sweep verdict that was not clean). On release the pool runs
     * DISCARD ALL and drops the query layer's state (its statement cache),
     * or discards the connection if that fails. */
    bool tainted;
    bool reset_needed;
    /* The session has a temporary schema (pg_my_temp_schema() <> 0: only
     * where an operator granted TEMPORARY): the per-call sweep then looks
     * for temporary objects in it, which costs more. */
    bool temp_schema;

    /* The pool's own fields follow; other layers must not touch them. */
    struct gp__pool_conn_priv *priv;
};

/* The sweep: what undoes the session state that SQL of the library's
 * callers may leave behind and that a plain statement (SELECT, INSERT,
 * UPDATE, DELETE...) can create through the built-in functions it calls:
 * settings (set_config(..., false), including placeholders such as
 * app.tenant_id, which pg_settings does not list) and session advisory
 * locks; then a verdict that the role was not switched (set_config('role',
 * ...)) and that no temporary object exists. The statements run in order,
 * as the last ones of a unit of work (the query layer pipelines them with
 * the caller's statement), and the verdict's first column is true when the
 * session is clean. Everything else a session can hold (cursors WITH
 * HOLD, LISTEN, SQL-level prepared statements) takes a command that the
 * server reports by its tag, and the pool resets fully; inside a plain
 * statement only a function of the schema's own can create it.
 * gp__sweep_release is the pool's sweep of a lease on release, which also
 * closes cursors and listens and whose verdict also requires that no
 * SQL-level prepared statement (PREPARE, possibly replacing one of the
 * library's) and no cursor exists. Every name is qualified: these run
 * after arbitrary SQL. */
#define GP__SWEEP_COUNT 2
#define GP__SWEEP_RELEASE_COUNT 4

/* Through a transaction pooler (query_txpooler.c): ROLLBACK, then what a
 * rollback does not undo (session advisory locks, SQL-level prepared
 * statements, currval/lastval), in one simple-query message so that it
 * reaches the same server connection; its last result is a command's. */
#define GP__TXP_ROLLBACK \
    "ROLLBACK; SELECT pg_catalog.pg_advisory_unlock_all(); DEALLOCATE ALL; DISCARD SEQUENCES"

/* Statement i of conn's per-call sweep (0 <= i < GP__SWEEP_COUNT), and of
 * its release-time sweep (0 <= i < GP__SWEEP_RELEASE_COUNT). */
const char *gp__sweep_sql(const gp_conn_t *conn, int i);
const char *gp__sweep_release_sql(int i);
/* The verdict of a pipelined one-shot (query_batch.c): it releases session
 * advisory locks, and fails (SQLSTATE 22012, inside the library's own
 * statement) when the role is switched or a temporary object exists, so
 * the unit rolls back whole and nothing of it reaches the next unit. */
const char *gp__sweep_refusing_sql(const gp_conn_t *conn);

/* Apply a sweep's verdict (the result of its last statement) to conn:
 * clean (conn->tainted cleared when the connection is outside any
 * transaction), or not (conn->reset_needed; a new temporary schema also
 * sets conn->temp_schema). Returns whether it was clean. */
bool gp__sweep_apply(gp_conn_t *conn, const PGresult *verdict);

/* Arm conn's deadline for the operation about to start: now plus
 * DATABASE_QUERY_TIMEOUT, or none. */
void gp__arm_deadline(gp_conn_t *conn);

/* The deadline in force on conn, in ms, and where it comes from ("DATABASE_QUERY_TIMEOUT" or "the
 * transaction's query_timeout_ms"), for messages. */
int gp__deadline_ms(const gp_conn_t *conn);
const char *gp__deadline_source(const gp_conn_t *conn);

/* PQgetResult, bounded by conn's deadline: NULL at the end of a query's
 * results, on a broken connection, or when the deadline passed (then
 * conn->timed_out and conn->discard are set). */
PGresult *gp__get_result(gp_conn_t *conn);

/* PQexec, PQexecParams, PQexecPrepared and PQprepare, bounded by conn's
 * deadline: sent, then every result collected; returns the first failed
 * result, else the last one (as PQexec does), or NULL (see gp__get_result;
 * after a timeout nothing is sent at all). */
PGresult *gp__exec(gp_conn_t *conn, const char *sql);
PGresult *gp__exec_params(gp_conn_t *conn, const char *sql, int n, const Oid *types, const char *const *values,
                          const int *lengths, const int *formats, int result_format);
PGresult *gp__exec_prepared(gp_conn_t *conn, const char *name, int n, const char *const *values, const int *lengths,
                            const int *formats, int result_format);
PGresult *gp__prepare(gp_conn_t *conn, const char *name, const char *sql, int n, const Oid *types);

/* The pool's reconnect backoff after `failures` failed opens in a row
 * (25 ms doubling to 500 ms, +-25% jitter), for other reconnecting
 * connections of the library (the notification listener). */
int64_t gp__pool_backoff_ns(int failures);

/* Classify a server error by SQLSTATE (NULL or "" = none): fills klass and
 * retriable in *err. Shared by the pool and the query layer. */
void gp__classify_sqlstate(const char *sqlstate, gp_error_t *err);

/* True when the SQLSTATE means the connection must be discarded: class 08,
 * 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now. */
bool gp__sqlstate_is_fatal(const char *sqlstate);
/* Whether the server says it is a hot standby or read-only by default
 * (parameters it reports: no round trip). */
bool gp__server_read_only(PGconn *pg);

/* ---- read routing (pool_read.c) ---------------------------------------------
 * A pool created with DATABASE_READ_URL owns a read pool (gp_pool_read_pool)
 * and its routing state: the standbys' last measured replay lag and how
 * reads were served. */
typedef struct gp__read_state gp__read_state_t;
gp__read_state_t *gp__read_state_new(void);
void gp__read_state_free(gp__read_state_t *rs);
/* gp_pool_create, for a read pool when writer is not NULL. */
gp_status_t gp__pool_create_read(const gp_config_t *cfg, gp_pool_t *writer, gp_pool_t **out, gp_error_t *err);
gp__read_state_t *gp__pool_rstate(gp_pool_t *p);
int gp__pool_read_max_lag_ms(const gp_pool_t *p);
int gp__pool_connect_timeout_ms(const gp_pool_t *p);
int gp__pool_acquire_timeout_ms(const gp_pool_t *p);
/* gp_pool_metrics_t.reads and read_lag_ms of pool. */
void gp__read_metrics(gp_pool_t *pool, uint64_t served[GP_READ_SERVED_COUNT_], int64_t *lag_ms);
/* The pool's last connection attempts failed and nothing is idle. */
bool gp__pool_unreachable(gp_pool_t *p);
/* "hex/hex", each 1..8 hex digits: what a pg_lsn prints. */
bool gp__wal_position_ok(const char *s);
/* Wait until the server of conn has replayed WAL up to position (a
 * primary has: it wrote it), polling every millisecond, until deadline_ns.
 * 1 replayed, 0 not by the deadline, -1 the query failed (conn may be
 * discarded). */
int gp__wait_replayed(gp_conn_t *conn, const char *position, int64_t deadline_ns);

/* Whether pg reaches PostgreSQL through a connection pooler: 1 when the
 * server's pg_backend_pid() is not the backend PID the connection got at
 * startup (PgBouncer makes one up for its clients), 0 when it is, -1 when
 * no answer came by deadline_ns (the connection is then mid-query: close
 * it). One round trip; *server_pid receives the server's pid. */
int gp__pooler_check(PGconn *pg, int64_t deadline_ns, int *server_pid);

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
