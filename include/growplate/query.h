/* growplate/query.h — parameterised queries, typed results, transactions,
 * pipelines and cancellation on a leased connection (see pool.h).
 *
 * Values are never spliced into SQL: every function sends the SQL text and
 * the typed parameters ($1, $2, ... — see types.h) separately. Statements
 * are prepared transparently and kept in a bounded per-connection LRU cache
 * (see gp_query_set_statement_cache(); 0 = unnamed statements only, for
 * PgBouncer in transaction mode). A cached statement the server forgot
 * (DISCARD ALL, DEALLOCATE, a server restart behind a proxy) is re-prepared
 * and the call retried once when no transaction was open.
 *
 * Errors: functions return a gp_status_t and, when `err` is not NULL, fill
 * it (see common.h): GP_ERR_SERVER with the SQLSTATE, message, detail,
 * hint, constraint/table/column, class and retriable flag; GP_ERR_TIMEOUT
 * (statement timeout), GP_ERR_CANCELED (gp_cancel()), GP_ERR_CONNECT (the
 * connection broke; it will be discarded on release), GP_ERR_INVALID (a
 * bad argument or parameter value, nothing was sent; the message names the
 * parameter), GP_ERR_NOMEM.
 *
 * Thread-safety: a leased connection has one owner at a time; the functions
 * taking a gp_conn_t must not be called concurrently on the same
 * connection. A gp_result_t is immutable and may cross threads and be read
 * concurrently. A gp_pipeline_t is not synchronised (one thread at a time).
 * gp_cancel() is safe from any thread.
 *
 * Session state: a connection goes back to the pool indistinguishable from
 * a fresh one (apart from the library's own prepared statements and the
 * connect-time settings), whatever SQL ran on it. The library never reads
 * the SQL to decide this. After SQL of the caller's, the session is swept:
 * RESET ALL, pg_advisory_unlock_all(), and a check that the role was not
 * switched and that no temporary object exists. The one-shot calls
 * (gp_pool_query/gp_pool_exec/gp_pool_pipeline_run here,
 * gp_tenant_query/gp_tenant_exec and gp_tenant_run in tenant.h) send the
 * sweep in the same round trip as the caller's statement; a lease of the
 * caller's own is swept when it is released (one round trip), also with
 * CLOSE ALL and UNLISTEN *, and checked for SQL-level prepared statements
 * and cursors. When the server reports a command the sweep
 * does not undo (any command tag other than SELECT, INSERT, UPDATE,
 * DELETE, MERGE, SHOW, EXPLAIN, FETCH, MOVE, BEGIN, START TRANSACTION,
 * COMMIT, ROLLBACK, SAVEPOINT, RELEASE, LOCK TABLE), when the check fails,
 * or after gp_conn_pgconn(), the pool runs DISCARD ALL on release and the
 * statement cache starts afresh. So session state (SET, a temporary
 * table...) lives at most until the lease ends; within a lease it behaves
 * as PostgreSQL says. A transaction left open is rolled back on release.
 */
#ifndef GROWPLATE_QUERY_H
#define GROWPLATE_QUERY_H

#include "growplate/common.h"
#include "growplate/pool.h"
#include "growplate/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- execution ------------------------------------------------------------ */

typedef struct gp_result gp_result_t;

/* Run one SQL statement with nparams typed parameters ($1..$n) and return
 * its rows in *out (also for statements without rows: then 0 rows, and
 * gp_result_affected() says how many were changed). params may be NULL when
 * nparams is 0. *out is NULL on failure; free a result with
 * gp_result_free(). Errors: see the top of this file. */
GP_EXPORT gp_status_t gp_query(gp_conn_t *conn, const char *sql, int nparams, const gp_value_t *params,
                               gp_result_t **out, gp_error_t *err);

/* The same when no rows are wanted: *affected (may be NULL) receives the
 * number of rows inserted/updated/deleted/selected (0 for other commands). */
GP_EXPORT gp_status_t gp_exec(gp_conn_t *conn, const char *sql, int nparams, const gp_value_t *params,
                              int64_t *affected, gp_error_t *err);

/* One-shot statements for work that needs no transaction of its own and no
 * tenant (system work; tenant work goes through gp_tenant_query): acquire
 * a connection from `pool` (label "gp_pool_query", the pool's acquire
 * timeout), run `sql` as its own implicit transaction followed by the
 * session sweep in the same round trip, release. Results and errors as
 * gp_query()/gp_exec(), plus the pool's acquire errors (GP_ERR_TIMEOUT,
 * GP_ERR_CONNECT, GP_ERR_CLOSED). The statement cannot affect any later
 * caller of the connection (see "Session state" above). Safe from any
 * thread. */
/* ---- automatic pipelining of one-shot calls ------------------------------
 *
 * gp_pool_query/gp_pool_exec and gp_tenant_query/gp_tenant_exec (tenant.h)
 * are one-shots: each is a unit of work of its own, [the library's head
 * (the tenant's set_config, a per-unit statement_timeout); the caller's
 * statement; the sweep], ended by its own Sync, so it commits or rolls
 * back alone. When callers outnumber the idle connections, a caller that
 * holds a connection (the leader) sends the queued units of other callers
 * in the same round trip (libpq pipeline mode, one Sync per unit) and
 * hands each caller exactly its own result and status; the others wait.
 * Nothing about a unit depends on whether it shared its round trip: the
 * same statements are sent either way.
 *
 * Which statements: a one-shot whose first keyword (after blanks,
 * comments and parentheses) is SELECT, INSERT, UPDATE, DELETE, MERGE,
 * WITH, VALUES or TABLE. Anything else (SET, PREPARE, DECLARE, LISTEN,
 * CREATE ...) runs on a connection of its own, as before: its effect on
 * the session is judged by its command tag, which arrives too late to
 * protect a unit already sent behind it. A statement that returned more
 * than 64 KiB or ran longer than 10 ms when it last ran (remembered per
 * SQL text) also runs alone, so it cannot hold up the small ones.
 *
 * The sweep of a pipelined unit refuses what it cannot undo before the
 * next unit runs: after RESET ALL, a switched role (set_config('role',
 * ...)) or a temporary object in the session fails the unit (rolled back
 * whole, GP_ERR_INVALID naming the cause), and session advisory locks are
 * released. What survives a unit that failed (a session advisory lock
 * taken before its error) is released by the next unit's sweep; it cannot
 * change what another unit reads or writes.
 *
 * Deadlines: with DATABASE_QUERY_TIMEOUT (or DATABASE_STATEMENT_TIMEOUT)
 * each unit runs under a transaction-local statement_timeout of its own
 * (a cancel request cannot be aimed at one caller's statement on a shared
 * connection), so a slow statement fails alone with GP_ERR_TIMEOUT; the
 * leader stops waiting for a server that does not answer at the last
 * unit's deadline plus DATABASE_QUERY_TIMEOUT, and closes the connection.
 * A unit waits for a connection at most the pool's acquire timeout
 * (GP_ERR_TIMEOUT, retriable: it never ran).
 *
 * A connection that fails with units in flight: a unit whose error
 * arrived rolled back (its error); a unit whose statements all succeeded
 * but whose end (ReadyForQuery) did not arrive may have committed:
 * GP_ERR_COMMIT_UNKNOWN (class connection, not retriable: check before
 * repeating it); a unit not reached never ran: GP_ERR_CONNECT (retriable).
 * Success is reported only for units whose end arrived.
 *
 * Bounds: at most DATABASE_PIPELINE_BATCH units (default 16; 1 turns
 * sharing off) and 1 MiB of parameters per round trip. Fairness: the
 * leader takes queued units one per tenant (fairness key) in turn, oldest
 * first, so a tenant with many queued callers gets no more of a round trip
 * than one with a single caller while both wait; DATABASE_TENANT_MAX_WAITING
 * bounds a tenant's queued units as it bounds its waiting acquires
 * (GP_ERR_BUSY). Leaders release their connection after each round trip,
 * so exclusive leases (gp_pool_acquire, transactions) share the same
 * connections in the pool's usual order. gp_pool_metrics_t counts the
 * units and round trips. */

GP_EXPORT gp_status_t gp_pool_query(gp_pool_t *pool, const char *sql, int nparams, const gp_value_t *params,
                                    gp_result_t **out, gp_error_t *err);
GP_EXPORT gp_status_t gp_pool_exec(gp_pool_t *pool, const char *sql, int nparams, const gp_value_t *params,
                                   int64_t *affected, gp_error_t *err);

/* One-shot reads, routed to the pool's read pool when a standby can serve
 * them (pool.h, "Read replicas"; ropts may be NULL, or name a WAL position
 * the read must see): `sql` runs in a READ ONLY transaction with the
 * session sweep, in one round trip, wherever it is served, so a write in
 * it fails (SQLSTATE 25006, class transaction) on the primary too. Results
 * and errors as gp_pool_query/gp_pool_exec, plus GP_ERR_INVALID for an
 * `after` that is not a WAL position. Safe from any thread. */
GP_EXPORT gp_status_t gp_pool_read_query(gp_pool_t *pool, const gp_read_opts_t *ropts, const char *sql,
                                         int nparams, const gp_value_t *params, gp_result_t **out, gp_error_t *err);
GP_EXPORT gp_status_t gp_pool_read_exec(gp_pool_t *pool, const gp_read_opts_t *ropts, const char *sql,
                                        int nparams, const gp_value_t *params, int64_t *affected, gp_error_t *err);

/* ---- read-your-writes across a primary and a streaming standby ----------- */

/* A WAL position as PostgreSQL prints a pg_lsn ("16/B374D848"), NUL included. */
#define GP_WAL_POSITION_LEN 24

/* The primary's current WAL insert position (pg_current_wal_insert_lsn()), taken through
 * `pool` after a write has committed: at or after that commit. One
 * one-shot round trip. A standby that has replayed it has the commit.
 * Errors: as gp_pool_query; GP_ERR_SERVER when the server is in recovery
 * (a standby has no current position of its own). Thread-safety: as
 * gp_pool_query. */
GP_EXPORT gp_status_t gp_pool_wal_position(gp_pool_t *pool, char out[GP_WAL_POSITION_LEN], gp_error_t *err);

/* Wait until the server behind `pool` has `position` (from
 * gp_pool_wal_position): a standby once it has replayed it, a primary once
 * its own position is past it. Waits at most timeout_ms (>= 0), asking the
 * server every millisecond on one leased connection, so a read that
 * follows sees the write; on GP_ERR_TIMEOUT (retriable) read from the
 * primary instead. Errors: GP_ERR_INVALID (a position that is not
 * "hex/hex"), the pool's acquire errors, the server's. Thread-safety: as
 * gp_pool_query. */
GP_EXPORT gp_status_t gp_pool_wait_replayed(gp_pool_t *pool, const char *position, int timeout_ms, gp_error_t *err);

/* The process-wide capacity of each connection's prepared-statement cache:
 * the number of distinct statements (SQL text + parameter types) kept
 * prepared per connection, least recently used evicted first (with
 * DEALLOCATE). 0 disables preparing: every call uses the unnamed statement
 * (one round trip each, no server-side state; required behind PgBouncer in
 * transaction mode). Default GP_STATEMENT_CACHE_DEFAULT. Takes effect on
 * each connection at its next query (shrinking evicts). Range 0..10000;
 * other values give GP_ERR_INVALID. Safe from any thread. A pool whose
 * DATABASE_STATEMENT_CACHE is set (gp_db_config_t.statement_cache >= 0)
 * uses that capacity for its connections instead. */
#define GP_STATEMENT_CACHE_DEFAULT 128
GP_EXPORT gp_status_t gp_query_set_statement_cache(int capacity);
GP_EXPORT int gp_query_statement_cache(void);

/* ---- results -------------------------------------------------------------
 * Rows and columns are 0-based. Getters return GP_OK, or, never leaving a
 * half-written *out:
 *   GP_ERR_RANGE      row or column index out of range (or a value that does
 *                     not fit the C type, see each getter)
 *   GP_ERR_NOT_FOUND  negative column index (gp_col() of an unknown name)
 *   GP_ERR_NULL       the value is SQL NULL
 *   GP_ERR_TYPE       the column's SQL type cannot be read as this C type
 *   GP_ERR_INVALID    r or out is NULL
 * Borrowed pointers (text, bytea, column names) stay valid until
 * gp_result_free(). Safe from any thread. */

/* Free a result and everything borrowed from it. NULL is accepted. */
GP_EXPORT void gp_result_free(gp_result_t *r);

GP_EXPORT int gp_result_rows(const gp_result_t *r);
GP_EXPORT int gp_result_columns(const gp_result_t *r);
/* Rows affected by INSERT/UPDATE/DELETE/SELECT/MERGE...; 0 for other commands. */
GP_EXPORT int64_t gp_result_affected(const gp_result_t *r);
/* The column's name, or NULL when col is out of range. */
GP_EXPORT const char *gp_result_column_name(const gp_result_t *r, int col);
/* The column's SQL type as a gp_type_t, or GP_TYPE_NULL for a type the
 * getters do not read (cast it to text in SQL: "SELECT interval_col::text"). */
GP_EXPORT gp_type_t gp_result_column_type(const gp_result_t *r, int col);
/* The index of the column named `name` (exact, case-sensitive, first match)
 * in *col. Errors: GP_ERR_NOT_FOUND, GP_ERR_INVALID. */
GP_EXPORT gp_status_t gp_result_column_index(const gp_result_t *r, const char *name, int *col);
/* The same as an expression: the index, or -1 when there is no such column
 * (every getter then fails with GP_ERR_NOT_FOUND):
 *     gp_get_int64(res, 0, gp_col(res, "id"), &id) */
GP_EXPORT int gp_col(const gp_result_t *r, const char *name);

/* *is_null = whether the value is SQL NULL (errors: RANGE, NOT_FOUND). */
GP_EXPORT gp_status_t gp_get_is_null(const gp_result_t *r, int row, int col, bool *is_null);

/* Integers: int16 reads smallint; int32 reads smallint and integer; int64
 * reads smallint, integer and bigint (never narrowing: reading a bigint as
 * int32 is GP_ERR_TYPE). */
GP_EXPORT gp_status_t gp_get_int16(const gp_result_t *r, int row, int col, int16_t *out);
GP_EXPORT gp_status_t gp_get_int32(const gp_result_t *r, int row, int col, int32_t *out);
GP_EXPORT gp_status_t gp_get_int64(const gp_result_t *r, int row, int col, int64_t *out);
/* double precision and real. */
GP_EXPORT gp_status_t gp_get_double(const gp_result_t *r, int row, int col, double *out);
GP_EXPORT gp_status_t gp_get_bool(const gp_result_t *r, int row, int col, bool *out);
/* text, varchar, char(n) and name (cast other types, e.g. enums, to text
 * in SQL); *out is borrowed, NUL-
 * terminated UTF-8; *len (may be NULL) is its length in bytes. */
GP_EXPORT gp_status_t gp_get_text(const gp_result_t *r, int row, int col, const char **out, size_t *len);
GP_EXPORT gp_status_t gp_get_uuid(const gp_result_t *r, int row, int col, gp_uuid_t *out);
/* timestamptz as µs since the Unix epoch (±infinity as
 * GP_TIMESTAMP_[NEG_]INFINITY). GP_ERR_RANGE for the few instants of year
 * 294247 and later that do not fit. */
GP_EXPORT gp_status_t gp_get_timestamptz(const gp_result_t *r, int row, int col, int64_t *unix_us);
/* date as days since 1970-01-01 (±infinity as GP_DATE_[NEG_]INFINITY). */
GP_EXPORT gp_status_t gp_get_date(const gp_result_t *r, int row, int col, int32_t *days);
/* numeric as exact decimal text ("-12.50", "NaN", "Infinity"), also for
 * integer columns; *out is malloc'd: free() it. */
GP_EXPORT gp_status_t gp_get_numeric(const gp_result_t *r, int row, int col, char **out);
/* json or jsonb as a new jansson reference: json_decref() it. */
GP_EXPORT gp_status_t gp_get_json(const gp_result_t *r, int row, int col, json_t **out);
/* bytea; *data is borrowed (NULL for an empty value), *len its length. */
GP_EXPORT gp_status_t gp_get_bytea(const gp_result_t *r, int row, int col, const uint8_t **data, size_t *len);
/* A one-dimensional text[] / varchar[] (an empty array gives n = 0). *items
 * is ONE malloc'd block holding the pointers and the strings: free(*items)
 * frees everything. NULL elements are NULL pointers. Multi-dimensional
 * arrays: GP_ERR_TYPE. */
GP_EXPORT gp_status_t gp_get_text_array(const gp_result_t *r, int row, int col, char ***items, size_t *n);
/* A one-dimensional smallint[] / int[] / bigint[] as int64_t; *items is
 * malloc'd (free() it; NULL when n is 0). A NULL element: GP_ERR_NULL. */
GP_EXPORT gp_status_t gp_get_int_array(const gp_result_t *r, int row, int col, int64_t **items, size_t *n);

/* ---- transactions ----------------------------------------------------------- */

typedef enum gp_isolation {
    GP_ISOLATION_DEFAULT = 0,      /* the server's default_transaction_isolation */
    GP_ISOLATION_READ_COMMITTED = 1,
    GP_ISOLATION_REPEATABLE_READ = 2,
    GP_ISOLATION_SERIALIZABLE = 3,
} gp_isolation_t;

/* Transaction options; zero-initialise ({0}) for the defaults. */
typedef struct gp_tx_opts {
    gp_isolation_t isolation;
    bool read_only;
    bool deferrable;            /* only meaningful with SERIALIZABLE READ ONLY */
    int statement_timeout_ms;   /* > 0: SET LOCAL statement_timeout for this transaction */
    /* gp_tx_run only: */
    int max_attempts;           /* total attempts, default (0) 5 */
    int backoff_ms;             /* first retry delay, default (0) 5 ms; doubles, with jitter */
    int max_backoff_ms;         /* cap of the delay, default (0) 1000 ms */
    /* > 0: the client-side deadline of each statement of this transaction
     * (its BEGIN and COMMIT too), instead of DATABASE_QUERY_TIMEOUT; see
     * config.h. It ends with the transaction. */
    int query_timeout_ms;
} gp_tx_opts_t;

/* BEGIN with the options (NULL = defaults), one round trip. Errors:
 * GP_ERR_INVALID (already in a transaction, bad options), server errors. */
GP_EXPORT gp_status_t gp_tx_begin(gp_conn_t *conn, const gp_tx_opts_t *opts, gp_error_t *err);

/* COMMIT. A transaction that failed earlier is rolled back by the server and
 * this returns GP_ERR_SERVER (class transaction, "rolled back"). A
 * serialization failure at commit returns GP_ERR_SERVER with class
 * serialization (nothing was committed). When the connection breaks after
 * COMMIT was sent, nobody knows whether it committed:
 * GP_ERR_COMMIT_UNKNOWN (never retried by this library). */
GP_EXPORT gp_status_t gp_tx_commit(gp_conn_t *conn, gp_error_t *err);

/* ROLLBACK; also fine in a failed transaction. Rolling back when no
 * transaction is open is GP_OK. */
GP_EXPORT gp_status_t gp_tx_rollback(gp_conn_t *conn, gp_error_t *err);

/* gp_tx_commit, then the server's WAL insert position, at or after the
 * commit, in `position` (GP_WAL_POSITION_LEN, "16/B374D848"): the token a
 * read gives gp_read_opts_t.after to see this commit on a standby
 * (pool.h, "Read replicas"). One more round trip on the same connection.
 * Errors: as gp_tx_commit (position is "" unless it committed); after a
 * commit, a failure to read the position is GP_ERR_SERVER/GP_ERR_CONNECT
 * with the transaction committed (then read from the primary). */
GP_EXPORT gp_status_t gp_tx_commit_position(gp_conn_t *conn, char position[GP_WAL_POSITION_LEN], gp_error_t *err);

/* Savepoints inside a transaction. `name` must be an identifier of 1-63
 * ASCII letters, digits and '_' not starting with a digit (GP_ERR_INVALID
 * otherwise); it is quoted, so case matters. */
GP_EXPORT gp_status_t gp_tx_savepoint(gp_conn_t *conn, const char *name, gp_error_t *err);
GP_EXPORT gp_status_t gp_tx_release(gp_conn_t *conn, const char *name, gp_error_t *err);
GP_EXPORT gp_status_t gp_tx_rollback_to(gp_conn_t *conn, const char *name, gp_error_t *err);

/* The work of a transaction: run statements on conn, return GP_OK to
 * commit or any other status to roll back (fill err from the failing
 * call). Called again on retry: it must not keep effects outside the
 * database across attempts (or undo them). */
typedef gp_status_t (*gp_tx_fn)(gp_conn_t *conn, void *userdata, gp_error_t *err);

/* Run fn in a transaction with opts (NULL = defaults): BEGIN, fn, COMMIT;
 * on a serialization failure (40001) or deadlock (40P01) — from fn or from
 * COMMIT — roll back, wait (exponential backoff with jitter) and run again,
 * at most opts->max_attempts times in all. Any other failure of fn rolls
 * back and is returned as is. Never retried: GP_ERR_COMMIT_UNKNOWN (the
 * connection broke after COMMIT was sent; decide yourself, e.g. check for
 * the effect). *attempts (may be NULL) receives the number of attempts.
 * The connection must not be in a transaction (GP_ERR_INVALID). */
GP_EXPORT gp_status_t gp_tx_run(gp_conn_t *conn, const gp_tx_opts_t *opts, gp_tx_fn fn, void *userdata,
                                int *attempts, gp_error_t *err);

/* ---- pipelines -------------------------------------------------------------
 * Many statements sent in one round trip (libpq pipeline mode), results
 * collected in order. Without BEGIN/COMMIT in it, a pipeline runs as one
 * implicit transaction: when a statement fails, the ones before it are
 * rolled back and the ones after it are skipped. With BEGIN ... COMMIT
 * around them, the same holds and this library rolls the failed transaction
 * back (unless the caller had opened it before the pipeline). */

typedef struct gp_pipeline gp_pipeline_t;

/* What became of one statement of a pipeline. */
typedef enum gp_stmt_outcome {
    GP_STMT_PENDING = 0,  /* not run (yet): the pipeline was not run, or broke before */
    GP_STMT_OK = 1,       /* executed; its result is available */
    GP_STMT_FAILED = 2,   /* the server rejected it: the error is in the run's err */
    GP_STMT_SKIPPED = 3,  /* not executed because an earlier statement failed */
} gp_stmt_outcome_t;

/* A new empty pipeline; NULL on out of memory. Free with gp_pipeline_free()
 * (NULL accepted). */
GP_EXPORT gp_pipeline_t *gp_pipeline_new(void);
GP_EXPORT void gp_pipeline_free(gp_pipeline_t *p);

/* Append a statement. The SQL and parameter values are validated and
 * copied (the caller's buffers may go away). Errors: GP_ERR_INVALID (the
 * message in err names the parameter), GP_ERR_NOMEM. */
GP_EXPORT gp_status_t gp_pipeline_add(gp_pipeline_t *p, const char *sql, int nparams, const gp_value_t *params,
                                      gp_error_t *err);

/* Number of statements added. */
GP_EXPORT int gp_pipeline_count(const gp_pipeline_t *p);

/* Remove every statement and result (keeps the memory for reuse). */
GP_EXPORT void gp_pipeline_clear(gp_pipeline_t *p);

/* Send every statement, then collect every result. Results of a previous
 * run are freed first, so a pipeline can be run again and again. Returns
 * GP_OK when every statement succeeded; otherwise the first failure, with
 * err->statement_index its 0-based index (-1 when the connection broke
 * before any statement was reported) and the outcomes of the others from
 * gp_pipeline_outcome(). Errors: as gp_query(), GP_ERR_INVALID for an
 * empty pipeline. */
GP_EXPORT gp_status_t gp_pipeline_run(gp_conn_t *conn, gp_pipeline_t *p, gp_error_t *err);

/* The one-shot form: acquire a connection from `pool` (label
 * "gp_pool_pipeline", the pool's acquire timeout), run the pipeline as
 * gp_pipeline_run() does with the session sweep after its statements in
 * the same round trip (see "Session state" above), release. Results,
 * outcomes and errors as gp_pipeline_run(), plus the pool's acquire errors;
 * a transaction the pipeline leaves open is rolled back. Safe from any
 * thread (the pipeline itself: one thread at a time). */
GP_EXPORT gp_status_t gp_pool_pipeline_run(gp_pool_t *pool, gp_pipeline_t *p, gp_error_t *err);

/* The outcome of statement i of the last run (GP_STMT_PENDING for an index
 * out of range). */
GP_EXPORT gp_stmt_outcome_t gp_pipeline_outcome(const gp_pipeline_t *p, int i);

/* The result of statement i of the last run, borrowed (valid until the
 * next run, clear or free of the pipeline); NULL unless its outcome is
 * GP_STMT_OK. */
GP_EXPORT const gp_result_t *gp_pipeline_result(const gp_pipeline_t *p, int i);

/* ---- cancellation ----------------------------------------------------------- */

typedef struct gp_cancel gp_cancel_t;

/* A handle that can cancel the statement running on conn from another
 * thread. Create it on the thread that owns the lease, before handing it
 * to the canceling thread; free it (gp_cancel_free, NULL accepted) BEFORE
 * releasing the connection to the pool — afterwards it would reach the
 * connection's next user. Errors: GP_ERR_NOMEM, GP_ERR_INVALID. */
GP_EXPORT gp_status_t gp_cancel_new(gp_conn_t *conn, gp_cancel_t **out);
GP_EXPORT void gp_cancel_free(gp_cancel_t *c);

/* Ask the server to cancel whatever the connection is running now (the
 * statement then fails with GP_ERR_CANCELED, SQLSTATE 57014). Returns when
 * the request is delivered, not when the statement stops; a request that
 * arrives between statements has no effect. Safe from any thread and from
 * several threads at once. Errors: GP_ERR_CONNECT (message in err). */
GP_EXPORT gp_status_t gp_cancel(gp_cancel_t *c, gp_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
