/* query_internal.h — what the query layer's files (values.c, result.c,
 * query.c, tx.c, pipeline.c) share; never installed. */
#ifndef GROWPLATE_QUERY_INTERNAL_H
#define GROWPLATE_QUERY_INTERNAL_H

#include <libpq-fe.h>

#include "growplate/query.h"
#include "internal.h"
#include "pool_internal.h"

/* Type OIDs of the built-in types we read and write (pg_type.dat; stable
 * across PostgreSQL versions). */
enum {
    GP__OID_BOOL = 16, GP__OID_BYTEA = 17, GP__OID_CHAR = 18, GP__OID_NAME = 19, GP__OID_INT8 = 20,
    GP__OID_INT2 = 21, GP__OID_INT4 = 23, GP__OID_TEXT = 25, GP__OID_JSON = 114, GP__OID_FLOAT4 = 700,
    GP__OID_FLOAT8 = 701, GP__OID_UNKNOWN = 705, GP__OID_BPCHAR = 1042, GP__OID_VARCHAR = 1043,
    GP__OID_DATE = 1082, GP__OID_TIMESTAMPTZ = 1184, GP__OID_NUMERIC = 1700, GP__OID_UUID = 2950,
    GP__OID_JSONB = 3802,
    GP__OID_NAME_ARRAY = 1003, GP__OID_INT2_ARRAY = 1005, GP__OID_INT4_ARRAY = 1007,
    GP__OID_TEXT_ARRAY = 1009, GP__OID_BPCHAR_ARRAY = 1014, GP__OID_VARCHAR_ARRAY = 1015,
    GP__OID_INT8_ARRAY = 1016,
};

/* PostgreSQL's epoch (2000-01-01) relative to the Unix epoch. */
#define GP__PG_EPOCH_DAYS 10957
#define GP__PG_EPOCH_US INT64_C(946684800000000)

/* Parameters encoded for PQsendQueryParams/PQexecPrepared: types, values,
 * lengths and formats, with the binary encodings (and, when copied, the
 * caller's text) in storage owned by this struct. Small sets live inline;
 * `copy` (pipelines) forces everything into one heap block so the struct
 * may be moved. */
#define GP__INLINE_PARAMS 8
typedef struct gp__params {
    int n;
    Oid *types;
    const char **values;
    int *lengths;
    int *formats;
    void *heap;
    Oid types_i[GP__INLINE_PARAMS];
    const char *values_i[GP__INLINE_PARAMS];
    int lengths_i[GP__INLINE_PARAMS];
    int formats_i[GP__INLINE_PARAMS];
    char scratch_i[256];
} gp__params_t;

/* Validate and encode params[0..n). Errors: GP_ERR_INVALID with err
 * naming the parameter ("$2: ..."), class client; GP_ERR_NOMEM. On
 * failure nothing needs freeing; on success call gp__params_free(). */
gp_status_t gp__params_encode(gp__params_t *out, int n, const gp_value_t *params, bool copy, gp_error_t *err);
void gp__params_free(gp__params_t *p);

/* Fill err with a client-side error (class client, not retriable). */
gp_status_t gp__client_error(gp_error_t *err, gp_status_t status, const char *fmt, ...) GP__PRINTF(3, 4);

/* A result: an immutable libpq result in binary format. */
struct gp_result {
    PGresult *pg;
};
/* Wrap a successful PGresult (taken over; cleared on failure). NULL on
 * out of memory. */
gp_result_t *gp__result_wrap(PGresult *res);
/* The row count of a command's result (0 when it has none). */
int64_t gp__result_affected(PGresult *res);
/* For the call statistics: PQntuples of a result with rows, else the
 * affected count of its command tag (0 when it has none). */
uint64_t gp__result_rows_counted(const PGresult *res);

/* ---- per-connection state (statement cache) -------------------------------- */

typedef struct gp__stmt gp__stmt_t;
typedef struct gp__oneshot gp__oneshot_t;
typedef struct gp__qstate gp__qstate_t;

/* What a statement did, judged from the command tag the server reported
 * for it (PQcmdStatus), never from its text: a spelling of SQL cannot
 * change the tag of the command the server ran. */
enum {
    GP__EFFECT_SESSION = 1,     /* a command outside the allow-list: may have left session state the sweep
                                 * does not undo (SET ROLE, PREPARE, DECLARE, DO, CREATE TEMP...): full reset */
    GP__EFFECT_DROPS_STMTS = 2, /* DEALLOCATE / DISCARD ALL: the server forgot prepared statements */
    GP__EFFECT_ENDS_TX = 4,     /* COMMIT or ROLLBACK (also AND CHAIN and TO SAVEPOINT), PREPARE TRANSACTION */
    GP__EFFECT_UNKNOWN = 8,     /* caller SQL: judged by its tag when it completes */
};
/* The effects of a completed command from its tag ("SELECT 1", "SET",
 * "DEALLOCATE ALL"...). The allow-list (no GP__EFFECT_SESSION): SELECT,
 * INSERT, UPDATE, DELETE, MERGE, SHOW, EXPLAIN, FETCH, MOVE, BEGIN, START
 * TRANSACTION, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, LOCK TABLE and the
 * empty query; what such a command can still leave through the functions
 * it calls is undone by the sweep (pool_internal.h). */
unsigned gp__tag_effects(const char *tag);

/* Before sending SQL the library did not write on conn: the session is no
 * longer known clean (conn->tainted). */
static inline void gp__taint(gp_conn_t *conn) { conn->tainted = true; }

/* After caller SQL completed with `res`: apply what its tag says (full
 * reset needed, statements forgotten) and return its effects. */
unsigned gp__caller_done(gp_conn_t *conn, gp__qstate_t *qs, const PGresult *res);

/* The query layer's state of conn, created on first use (NULL on out of
 * memory). */
gp__qstate_t *gp__qstate(gp_conn_t *conn);

/* The cached, server-side prepared statement for (sql, types), or NULL
 * when it must be prepared first (then *name receives a fresh name and
 * *entry the cache entry to confirm or drop). NULL *entry and NULL return
 * mean "use the unnamed statement" (cache capacity 0) or out of memory
 * (*nomem set). */
const char *gp__stmt_lookup(gp__qstate_t *qs, const char *sql, const gp__params_t *p, gp__stmt_t **entry,
                            bool *nomem);
const char *gp__stmt_name(const gp__stmt_t *s);
/* The server acknowledged the PREPARE of this entry. */
void gp__stmt_confirm(gp__stmt_t *s);
/* Drop one entry that the server does not know (a failed PREPARE). */
void gp__stmt_drop(gp__qstate_t *qs, gp__stmt_t *s);
/* Forget every entry (the server forgot them, or may have). When
 * `server_may_keep` the server is told DEALLOCATE ALL at the next chance. */
void gp__stmt_forget_all(gp__qstate_t *qs, bool server_may_keep);
/* Evict down to the capacity and deallocate evicted statements on the
 * server when due; call when no statement is in flight. */
void gp__stmt_enforce(gp_conn_t *conn, gp__qstate_t *qs);

/* Check the connection is usable for a new statement (not broken, not
 * mid-protocol); fills err otherwise. */
gp_status_t gp__check_conn(gp_conn_t *conn, gp_error_t *err);

/* After a failed call: fill err from res/conn, flag the connection for
 * discard when it is broken or the SQLSTATE is fatal. Returns err's status. */
gp_status_t gp__fail(gp_conn_t *conn, const PGresult *res, gp_error_t *err);

/* Whether a prepared-statement failure means "the server forgot it":
 * 26000 invalid_sql_statement_name, or 0A000 "cached plan must not change
 * result type". */
bool gp__stmt_gone(const PGresult *res);

/* After a failed PREPARE of one of the library's names: when the name was
 * taken (42P05, only SQL on the connection can have done it), the
 * connection is discarded. */
void gp__stmt_squatted(gp_conn_t *conn, const PGresult *res);

/* ---- shared with the tenant layer ------------------------------------------- */

/* The BEGIN statement for opts (without the statement timeout); validates
 * opts (GP_ERR_INVALID). */
gp_status_t gp__tx_begin_text(const gp_tx_opts_t *opts, char *sql, size_t len, gp_error_t *err);
/* COMMIT for a lease that ends with the transaction (gp_tenant_run): when
 * the connection is tainted, the sweep runs inside the transaction and the
 * COMMIT follows in the same round trip. Errors as gp_tx_commit. */
gp_status_t gp__tx_commit_swept(gp_conn_t *conn, gp_error_t *err);
/* The server's WAL insert position, on conn (idle, after a commit). */
gp_status_t gp__wal_position_of(gp_conn_t *conn, char out[GP_WAL_POSITION_LEN], gp_error_t *err);
/* Whether a failed attempt may be retried (serialization failure, deadlock). */
bool gp__tx_retriable(const gp_error_t *e);
/* The total number of attempts opts allows. */
int gp__tx_max_attempts(const gp_tx_opts_t *opts);
/* Sleep before retry number `attempt` + 1: exponential backoff with jitter. */
void gp__tx_backoff(const gp_tx_opts_t *opts, int attempt, const gp_error_t *e);

/* The steps of one attempt of a retried transaction, on a context. */
typedef struct gp__tx_steps {
    gp_status_t (*begin)(void *ctx, gp_error_t *e);
    gp_status_t (*body)(void *ctx, gp_error_t *e);
    gp_status_t (*commit)(void *ctx, gp_error_t *e);
    gp_status_t (*rollback)(void *ctx, gp_error_t *e);
} gp__tx_steps_t;

/* The retry policy of gp_tx_run and gp_tenant_run, once: begin, body,
 * commit (or rollback on a failed body); retry on serialization failure or
 * deadlock with backoff, at most gp__tx_max_attempts(opts) times; never
 * after GP_ERR_COMMIT_UNKNOWN or once conn is to be discarded. */
gp_status_t gp__tx_retry(gp_conn_t *conn, const gp_tx_opts_t *opts, const gp__tx_steps_t *steps, void *ctx,
                         int *attempts, gp_error_t *err);
/* One statement of gp__pipeline_run_items(). */
typedef struct gp__pipeline_item {
    const char *sql;          /* borrowed: must live for the call */
    int nparams;
    const gp_value_t *params; /* borrowed likewise (not copied) */
    unsigned effects;         /* GP__EFFECT_* when the library wrote the SQL itself, else GP__EFFECT_UNKNOWN */
    gp_result_t **result;     /* receives the result (NULL on failure); NULL: no result is built */
} gp__pipeline_item_t;

#define GP__PIPELINE_ITEMS_MAX 8

/* ---- through a transaction pooler (query_txpooler.c) ----------------------- */

/* The verdict that fails a unit of work whose session state would outlive
 * it, and the statements that undo the rest, in the order they run just
 * before the library's COMMIT. */
#define GP__TXP_NEUTRALISE_COUNT 4
extern const char gp__txp_reset_sql[];
extern const char gp__txp_verdict_sql[];
extern const char gp__txp_verdict_app_sql[]; /* $1: the client's application_name */
extern const char *const gp__txp_neutralise_sql[GP__TXP_NEUTRALISE_COUNT];
/* GP_ERR_INVALID (class client) when sql would end or open a transaction
 * (COMMIT, END, ABORT, ROLLBACK but not ROLLBACK TO, PREPARE TRANSACTION,
 * BEGIN, START), judged by its first keyword after blanks and comments. */
gp_status_t gp__txp_check_sql(const char *sql, gp_error_t *err);
/* The application_name conn connected with (else its fallback), into out;
 * false when it has none (or it does not fit): the units set it again
 * after their RESET ALL, which a pooler would take for the client's. */
bool gp__txp_app_name(gp_conn_t *conn, char *out, size_t len);
/* Fill err with the refusal of session-level state (the verdict failed). */
void gp__txp_refused(gp_error_t *err);
/* The caller's open transaction on conn: verdict, neutralisers and COMMIT
 * in one message (or the rollback, when it had failed). *rolled_back when
 * it did not commit; GP_ERR_INVALID when the verdict refused it. */
gp_status_t gp__txp_commit(gp_conn_t *conn, bool *rolled_back, gp_error_t *err);
/* GP__TXP_ROLLBACK on conn (discarded when it fails). */
gp_status_t gp__txp_rollback(gp_conn_t *conn, gp_error_t *err);
/* Through a transaction pooler, `what` (a COPY, a stream: caller SQL the
 * unit wrapper does not carry) needs the caller's open transaction:
 * GP_ERR_INVALID outside one, or for sql that would end it. GP_OK
 * otherwise, and always without a transaction pooler. */
gp_status_t gp__txp_in_tx(gp_conn_t *conn, const char *what, const char *sql, gp_error_t *err);
/* The statement timeout a transaction on conn must set itself (0: none). */
int gp__txp_timeout_ms(const gp_conn_t *conn);

/* Run items[0..n) (1 <= n <= GP__PIPELINE_ITEMS_MAX) as one pipeline,
 * exactly as gp_pipeline_add for each then gp_pipeline_run would, but with
 * no pipeline object: nothing is copied and nothing allocated besides the
 * results asked for (the statements live on the stack for the call). For
 * statements run once whose SQL and parameters outlive the call. Errors:
 * as gp_pipeline_add (err->statement_index names the item whose parameters
 * are invalid) and gp_pipeline_run. Thread-safety: as gp_pipeline_run (the
 * connection is the caller's lease). */
gp_status_t gp__pipeline_run_items(gp_conn_t *conn, int n, const gp__pipeline_item_t *items, gp_error_t *err);

/* A one-shot call's round trip: head[0..nhead) (the caller's statement and
 * what scopes it), then the session sweep (pool_internal.h), as one
 * pipeline in one implicit transaction. On success the sweep's verdict
 * clears conn->tainted (clean, outside any transaction) or sets
 * conn->reset_needed; on failure the connection stays tainted and the pool
 * sweeps it on release. Errors as gp__pipeline_run_items. */
gp_status_t gp__one_shot_swept(gp_conn_t *conn, const gp__pipeline_item_t *head, int nhead, gp_error_t *err);

/* ---- automatic pipelining of one-shots (query_batch.c) --------------------- */

/* The SQL lexer's pieces (query_txpooler.c): skip blanks, semicolons and
 * comments (NULL for an unterminated comment); whether a keyword starts at
 * s (without case; *next, if not NULL, is what follows). */
const char *gp__sql_skip_blank(const char *s);
bool gp__sql_keyword(const char *s, const char *word, const char **next);

#define GP__ONESHOT_HEAD_MAX 3                       /* statements before the caller's */
#define GP__ONESHOT_STMTS (GP__ONESHOT_HEAD_MAX + 3) /* ... the caller's, RESET ALL, the verdict */
#define GP__ONESHOT_BATCH_MAX 256                    /* DATABASE_PIPELINE_BATCH's maximum */

enum { GP__OS_HEAD, GP__OS_CALLER, GP__OS_SWEEP, GP__OS_VERDICT };
typedef struct gp__ostmt {
    const char *sql;
    int kind;                 /* GP__OS_* */
    const gp__params_t *pp;   /* &own, or the unit's caller_params, or none */
    gp__params_t own;
    int prep;                 /* index of the PREPARE this flight sent for it, or -1 */
} gp__ostmt_t;

/* One one-shot call. The caller fills the first block and calls
 * gp__oneshot_run(); the unit lives on its stack until that returns. */
struct gp__oneshot {
    const char *key;          /* fairness key (the tenant id), or NULL: the label "gp_pool_query" */
    const char *site;         /* the acquire's site label, for leak reports */
    const char *sql;
    int nparams;
    const gp_value_t *params;
    bool want_result;
    /* The statements before the caller's, built on the leader's thread for
     * the connection it holds: at most GP__ONESHOT_HEAD_MAX into items
     * (their SQL and parameters must live until done() is called), with a
     * transaction-local statement_timeout of timeout_ms when > 0. NULL: no
     * head (the batcher sets the timeout itself). An error fails this unit
     * alone, before anything of it is sent. */
    gp_status_t (*head)(gp__oneshot_t *u, gp_conn_t *conn, int timeout_ms, gp__pipeline_item_t *items, int *n,
                        gp_error_t *err);
    /* Called on the leader's thread once the unit's outcome is known
     * (status GP_OK: its end arrived and it committed), on the connection
     * it ran on. May be NULL. */
    void (*done)(gp__oneshot_t *u, gp_conn_t *conn, gp_status_t status);
    void *ctx;                /* for head() and done() */
    gp_error_t *err;          /* may be NULL */

    /* out */
    gp_result_t *result;      /* when want_result and it succeeded: the caller's */
    uint64_t rows;            /* for the statistics */
    int64_t affected;         /* gp_result_affected() of the caller's result */
    gp_status_t status;

    /* private to query_batch.c */
    gp__oneshot_t *next, *prev;
    _Atomic int state;
    uint64_t seq, keyhash, sqlhash;
    char keybuf[64];
    size_t bytes, bytes_out;
    bool alone, picked;
    int64_t acquire_deadline_ns;
    gp__params_t caller_params;
    char tbuf[16];
    gp_value_t tval;
    int n;
    gp__ostmt_t st[GP__ONESHOT_STMTS];
};

/* Fill the caller's block of u (no head, no hooks). */
static inline void gp__oneshot_init(gp__oneshot_t *u, const char *key, const char *site, const char *sql, int nparams,
                                    const gp_value_t *params, bool want_result, gp_error_t *err)
{
    u->key = key;
    u->site = site;
    u->sql = sql;
    u->nparams = nparams;
    u->params = params;
    u->want_result = want_result;
    u->head = NULL;
    u->done = NULL;
    u->ctx = NULL;
    u->err = err;
}

/* Whether a one-shot of `sql` on pool goes through the batcher: pipelining
 * is on for the pool (not through a transaction pooler, BATCH >= 1... see
 * query.h) and sql's first keyword is one whose command the sweep undoes. */
bool gp__oneshot_eligible(gp_pool_t *pool, const char *sql);
/* A one-shot on a connection of its own that got no answer within the
 * client deadline (GP_ERR_TIMEOUT with conn->timed_out): it commits at
 * its end, so its outcome is unknown: GP_ERR_COMMIT_UNKNOWN. Else st. */
gp_status_t gp__oneshot_unanswered(gp_conn_t *conn, gp_status_t st, gp_error_t *err);
/* Run u (see above); returns u->status. Safe from any thread. */
gp_status_t gp__oneshot_run(gp_pool_t *pool, gp__oneshot_t *u);

#endif
