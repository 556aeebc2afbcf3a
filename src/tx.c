/* tx.c — transactions: BEGIN with options, COMMIT with an honest answer
 * when its outcome is unknown, savepoints, and the retrying gp_tx_run. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "query_internal.h"

static gp_status_t need_conn(gp_conn_t *conn, gp_error_t *err)
{
    if (!conn || !conn->pg)
        return gp__client_error(err, GP_ERR_INVALID, "no connection given");
    return GP_OK;
}

/* Run SQL we composed ourselves from fixed keywords, validated
 * identifiers and integers (no caller values). */
static gp_status_t simple(gp_conn_t *conn, const char *sql, PGresult **keep, gp_error_t *err)
{
    gp_status_t cst = gp__check_conn(conn, err); /* arms the deadline */
    if (cst != GP_OK)
        return cst;
    PGresult *r = gp__exec(conn, sql);
    gp_status_t st = GP_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        st = gp__fail(conn, r, err);
    else if (err)
        gp_error_clear(err);
    if (keep && st == GP_OK)
        *keep = r;
    else
        PQclear(r);
    return st;
}

gp_status_t gp__tx_begin_text(const gp_tx_opts_t *opts, char *sql, size_t len, gp_error_t *err)
{
    gp_tx_opts_t o = {0};
    if (opts)
        o = *opts;
    if (o.isolation < GP_ISOLATION_DEFAULT || o.isolation > GP_ISOLATION_SERIALIZABLE || o.statement_timeout_ms < 0 ||
        o.query_timeout_ms < 0)
        return gp__client_error(err, GP_ERR_INVALID, "invalid transaction options (isolation %d, timeout %d)",
                                (int)o.isolation, o.statement_timeout_ms);
    if (!opts || (o.isolation == GP_ISOLATION_DEFAULT && !o.read_only && !o.deferrable)) {
        snprintf(sql, len, "BEGIN"); /* the common case, without formatting */
        return GP_OK;
    }
    static const char *const iso[] = {"", " ISOLATION LEVEL READ COMMITTED", " ISOLATION LEVEL REPEATABLE READ",
                                      " ISOLATION LEVEL SERIALIZABLE"};
    snprintf(sql, len, "BEGIN%s%s%s", iso[o.isolation], o.read_only ? " READ ONLY" : "",
             o.deferrable ? " DEFERRABLE" : "");
    return GP_OK;
}

gp_status_t gp_tx_begin(gp_conn_t *conn, const gp_tx_opts_t *opts, gp_error_t *err)
{
    gp_status_t st = need_conn(conn, err);
    if (st != GP_OK)
        return st;
    char sql[160];
    gp_tx_opts_t ro;
    if (conn->read_lease) { /* a read lease reads, wherever it was routed */
        ro = opts ? *opts : (gp_tx_opts_t){0};
        ro.read_only = true;
        opts = &ro;
    }
    st = gp__tx_begin_text(opts, sql, sizeof sql, err);
    if (st != GP_OK)
        return st;
    if (PQtransactionStatus(conn->pg) != PQTRANS_IDLE)
        return gp__client_error(err, GP_ERR_INVALID, "a transaction is already open on this connection "
                                "(use gp_tx_savepoint to nest)");
    if (opts && opts->statement_timeout_ms > 0) /* transaction-local: no session state to reset */
        gp__bufappend(sql, sizeof sql, "; SET LOCAL statement_timeout = %d", opts->statement_timeout_ms);
    else if (gp__txp_timeout_ms(conn) > 0) /* DATABASE_STATEMENT_TIMEOUT, through a transaction pooler */
        gp__bufappend(sql, sizeof sql, "; SET LOCAL statement_timeout = %d", gp__txp_timeout_ms(conn));
    conn->tx_query_timeout_ms = opts ? opts->query_timeout_ms : 0;
    conn->tx_read_only = (opts && opts->read_only) || conn->read_lease;
    st = simple(conn, sql, NULL, err);
    if (st != GP_OK && PQtransactionStatus(conn->pg) == PQTRANS_IDLE)
        conn->tx_query_timeout_ms = 0;
    if (st != GP_OK && PQtransactionStatus(conn->pg) == PQTRANS_INERROR)
        simple(conn, "ROLLBACK", NULL, NULL); /* BEGIN ran, SET LOCAL failed */
    return st;
}

/* COMMIT's answers that are not plain success. */
static gp_status_t commit_rolled_back(gp_error_t *err)
{
    gp__client_error(err, GP_ERR_SERVER, "the transaction had failed; COMMIT rolled it back");
    if (err)
        err->klass = GP_ECLASS_TRANSACTION;
    return GP_ERR_SERVER;
}

/* The request may or may not have reached the server and been applied
 * before the connection broke: nobody can tell. */
static gp_status_t commit_unknown(gp_error_t *err)
{
    if (err) {
        char msg[sizeof err->message];
        snprintf(msg, sizeof msg, "%s", err->message);
        snprintf(err->message, sizeof err->message,
                 "the connection broke or timed out during COMMIT; the transaction may or may not have "
                 "committed (%s)", msg);
        err->status = GP_ERR_COMMIT_UNKNOWN;
        err->retriable = 0;
    }
    return GP_ERR_COMMIT_UNKNOWN;
}

static gp_status_t commit_impl(gp_conn_t *conn, gp_error_t *err)
{
    gp_status_t st = need_conn(conn, err);
    if (st != GP_OK)
        return st;
    PGTransactionStatusType ts = PQtransactionStatus(conn->pg);
    if (ts == PQTRANS_IDLE)
        return gp__client_error(err, GP_ERR_INVALID, "COMMIT without an open transaction");
    if (ts == PQTRANS_UNKNOWN) {
        gp__fail(conn, NULL, err);
        return err ? err->status : GP_ERR_CONNECT;
    }
    gp__arm_deadline(conn);
    if (conn->txpooler) {
        bool rolled_back;
        st = gp__txp_commit(conn, &rolled_back, err);
        if (st != GP_OK)
            return conn->discard ? commit_unknown(err) : st;
        return rolled_back ? commit_rolled_back(err) : GP_OK;
    }
    PGresult *r = gp__exec(conn, "COMMIT");
    ExecStatusType rs = PQresultStatus(r);
    if (rs == PGRES_COMMAND_OK) {
        /* A failed transaction "commits" as ROLLBACK. */
        bool rolled_back = strcmp(PQcmdStatus(r), "ROLLBACK") == 0;
        PQclear(r);
        if (!rolled_back) {
            if (err)
                gp_error_clear(err);
            return GP_OK;
        }
        return commit_rolled_back(err);
    }
    st = gp__fail(conn, r, err);
    PQclear(r);
    return conn->discard ? commit_unknown(err) : st;
}

static gp_status_t commit_swept_impl(gp_conn_t *conn, gp_error_t *err)
{
    if (!conn || !conn->pg || !conn->tainted || PQtransactionStatus(conn->pg) != PQTRANS_INTRANS || conn->txpooler)
        return commit_impl(conn, err);
    /* The sweep inside the transaction, then COMMIT: if the transaction
     * rolls back instead, so does the sweep, and the session is back to
     * where it was at BEGIN (clean, or the pool sweeps on release). */
    gp__pipeline_item_t items[GP__SWEEP_COUNT + 1];
    gp_result_t *verdict = NULL, *commit = NULL;
    for (int i = 0; i < GP__SWEEP_COUNT; i++)
        items[i] = (gp__pipeline_item_t){gp__sweep_sql(conn, i), 0, NULL, 0,
                                         i == GP__SWEEP_COUNT - 1 ? &verdict : NULL};
    items[GP__SWEEP_COUNT] = (gp__pipeline_item_t){"COMMIT", 0, NULL, GP__EFFECT_ENDS_TX, &commit};
    gp_error_t local;
    if (!err)
        err = &local;
    gp_status_t st = gp__pipeline_run_items(conn, GP__SWEEP_COUNT + 1, items, err);
    if (st == GP_ERR_NOMEM && err->statement_index >= 0 && err->statement_index <= GP__SWEEP_COUNT) {
        /* The COMMIT was never queued, let alone sent: not committed. */
        conn->discard = true; /* closing the connection rolls the transaction back */
        snprintf(err->message, sizeof err->message, "out of memory before COMMIT was sent: the transaction did "
                 "not commit (it is rolled back)");
        err->statement_index = -1;
        return st;
    }
    if (st != GP_OK) /* everything went out in one flight: after a break, the COMMIT may have run */
        return conn->discard ? commit_unknown(err) : st;
    bool rolled_back = strcmp(PQcmdStatus(commit->pg), "ROLLBACK") == 0;
    if (!rolled_back) /* a rolled-back sweep swept nothing */
        gp__sweep_apply(conn, verdict->pg);
    gp_result_free(verdict);
    gp_result_free(commit);
    if (rolled_back)
        return commit_rolled_back(err);
    if (err)
        gp_error_clear(err);
    return GP_OK;
}

static gp_status_t rollback_impl(gp_conn_t *conn, gp_error_t *err)
{
    gp_status_t st = need_conn(conn, err);
    if (st != GP_OK)
        return st;
    if (PQtransactionStatus(conn->pg) == PQTRANS_IDLE) {
        if (err)
            gp_error_clear(err);
        return GP_OK;
    }
    return simple(conn, conn->txpooler ? GP__TXP_ROLLBACK : "ROLLBACK", NULL, err);
}

/* A transaction's own deadline (gp_tx_opts_t.query_timeout_ms) ends with it. */
static gp_status_t tx_over(gp_conn_t *conn, gp_status_t st)
{
    if (conn && conn->pg && PQtransactionStatus(conn->pg) != PQTRANS_INTRANS &&
        PQtransactionStatus(conn->pg) != PQTRANS_INERROR) {
        conn->tx_query_timeout_ms = 0;
        conn->tx_read_only = false;
    }
    return st;
}

gp_status_t gp_tx_commit(gp_conn_t *conn, gp_error_t *err) { return tx_over(conn, commit_impl(conn, err)); }
gp_status_t gp__tx_commit_swept(gp_conn_t *conn, gp_error_t *err)
{
    return tx_over(conn, commit_swept_impl(conn, err));
}
gp_status_t gp_tx_rollback(gp_conn_t *conn, gp_error_t *err) { return tx_over(conn, rollback_impl(conn, err)); }

gp_status_t gp__wal_position_of(gp_conn_t *conn, char out[GP_WAL_POSITION_LEN], gp_error_t *err)
{
    /* The insert position: with synchronous_commit off, the commit record
     * may still sit in the WAL buffers, ahead of pg_current_wal_lsn(). */
    gp__arm_deadline(conn);
    PGresult *r = gp__exec(conn, "SELECT pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text");
    gp_status_t st = GP_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        st = gp__fail(conn, r, err);
    else if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0) || (size_t)PQgetlength(r, 0, 0) >= GP_WAL_POSITION_LEN)
        st = gp__client_error(err, GP_ERR_PROTOCOL, "pg_current_wal_insert_lsn() gave no position");
    else
        snprintf(out, GP_WAL_POSITION_LEN, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return st;
}

gp_status_t gp_tx_commit_position(gp_conn_t *conn, char position[GP_WAL_POSITION_LEN], gp_error_t *err)
{
    if (!position)
        return gp__client_error(err, GP_ERR_INVALID, "no position buffer given");
    position[0] = 0;
    gp_status_t st = gp_tx_commit(conn, err);
    if (st != GP_OK)
        return st;
    st = gp__wal_position_of(conn, position, err);
    if (st != GP_OK && err) {
        char msg[sizeof err->message];
        snprintf(msg, sizeof msg, "%s", err->message);
        snprintf(err->message, sizeof err->message, "the transaction committed, but its WAL position could not be "
                 "read (%s); read from the primary", msg);
    }
    return st;
}

static gp_status_t savepoint_cmd(gp_conn_t *conn, const char *verb, const char *name, gp_error_t *err)
{
    gp_status_t st = need_conn(conn, err);
    if (st != GP_OK)
        return st;
    size_t n = name ? strlen(name) : 0;
    bool ok = n >= 1 && n <= 63 && !(name[0] >= '0' && name[0] <= '9');
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    }
    if (!ok)
        return gp__client_error(err, GP_ERR_INVALID, "invalid savepoint name: use 1-63 ASCII letters, digits "
                                "and '_', not starting with a digit");
    char sql[100];
    snprintf(sql, sizeof sql, "%s \"%s\"", verb, name);
    return simple(conn, sql, NULL, err);
}

gp_status_t gp_tx_savepoint(gp_conn_t *conn, const char *name, gp_error_t *err)
{
    return savepoint_cmd(conn, "SAVEPOINT", name, err);
}

gp_status_t gp_tx_release(gp_conn_t *conn, const char *name, gp_error_t *err)
{
    return savepoint_cmd(conn, "RELEASE SAVEPOINT", name, err);
}

gp_status_t gp_tx_rollback_to(gp_conn_t *conn, const char *name, gp_error_t *err)
{
    return savepoint_cmd(conn, "ROLLBACK TO SAVEPOINT", name, err);
}

bool gp__tx_retriable(const gp_error_t *e)
{
    return e->klass == GP_ECLASS_SERIALIZATION || e->klass == GP_ECLASS_DEADLOCK;
}

int gp__tx_max_attempts(const gp_tx_opts_t *o) { return o && o->max_attempts > 0 ? o->max_attempts : 5; }

void gp__tx_backoff(const gp_tx_opts_t *o, int attempt, const gp_error_t *e)
{
    int64_t backoff_ms = o && o->backoff_ms > 0 ? o->backoff_ms : 5;
    int64_t max_backoff_ms = o && o->max_backoff_ms > 0 ? o->max_backoff_ms : 1000;
    int64_t shift = attempt - 1 < 20 ? attempt - 1 : 20;
    int64_t delay = backoff_ms << shift;
    if (delay > max_backoff_ms)
        delay = max_backoff_ms;
    delay = gp__jitter(delay, 0.5);
    gp__log_fields_t f = gp__log_fields_of(e);
    f.duration_ns = (int64_t)delay * 1000000;
    gp__logf(&f, GP_LOG_DEBUG, "query", "transaction attempt %d failed (%s, SQLSTATE %s); retrying in %lld ms", attempt,
            gp_error_class_name(e->klass), e->sqlstate, (long long)delay);
    struct timespec ts = {(time_t)(delay / 1000), (long)(delay % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) /* backoff between attempts, interrupted sleeps resumed */
        ;
}

gp_status_t gp__tx_retry(gp_conn_t *conn, const gp_tx_opts_t *opts, const gp__tx_steps_t *steps, void *ctx,
                         int *attempts, gp_error_t *err)
{
    gp_error_t e;
    gp_error_clear(&e);
    gp_status_t st = GP_OK;
    int max_attempts = gp__tx_max_attempts(opts);
    for (int attempt = 1;; attempt++) {
        if (attempts)
            *attempts = attempt;
        gp_error_clear(&e);
        if ((st = steps->begin(ctx, &e)) != GP_OK)
            break;
        gp_error_clear(&e);
        st = steps->body(ctx, &e);
        if (st == GP_OK) {
            st = steps->commit(ctx, &e);
            if (st == GP_OK || st == GP_ERR_COMMIT_UNKNOWN)
                break;
        } else {
            if (e.status == GP_OK) { /* the body failed without saying why */
                e.status = st;
                snprintf(e.message, sizeof e.message, "the transaction function returned: %s", gp_strerror(st));
            }
            gp_error_t rb;
            if (steps->rollback(ctx, &rb) != GP_OK && conn->discard)
                break; /* the connection is gone: report the body's failure */
        }
        if (!gp__tx_retriable(&e) || attempt >= max_attempts || conn->discard)
            break;
        gp__tx_backoff(opts, attempt, &e);
    }
    if (err)
        *err = e;
    return st;
}

typedef struct plain_tx {
    gp_conn_t *conn;
    const gp_tx_opts_t *opts;
    gp_tx_fn fn;
    void *userdata;
} plain_tx_t;

static gp_status_t plain_begin(void *ctx, gp_error_t *e)
{
    plain_tx_t *t = ctx;
    return gp_tx_begin(t->conn, t->opts, e);
}
static gp_status_t plain_body(void *ctx, gp_error_t *e)
{
    plain_tx_t *t = ctx;
    return t->fn(t->conn, t->userdata, e);
}
static gp_status_t plain_commit(void *ctx, gp_error_t *e) { return gp_tx_commit(((plain_tx_t *)ctx)->conn, e); }
static gp_status_t plain_rollback(void *ctx, gp_error_t *e) { return gp_tx_rollback(((plain_tx_t *)ctx)->conn, e); }

gp_status_t gp_tx_run(gp_conn_t *conn, const gp_tx_opts_t *opts, gp_tx_fn fn, void *userdata, int *attempts,
                      gp_error_t *err)
{
    if (attempts)
        *attempts = 0;
    gp_status_t st = need_conn(conn, err);
    if (st != GP_OK)
        return st;
    if (!fn)
        return gp__client_error(err, GP_ERR_INVALID, "no transaction function given");
    static const gp__tx_steps_t steps = {plain_begin, plain_body, plain_commit, plain_rollback};
    plain_tx_t t = {conn, opts, fn, userdata};
    return gp__tx_retry(conn, opts, &steps, &t, attempts, err);
}
