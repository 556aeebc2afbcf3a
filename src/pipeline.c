/* pipeline.c — many statements in one round trip with libpq's pipeline
 * mode: send all (preparing cache misses in the same flight), one Sync,
 * then collect the results in order and say precisely what became of each
 * statement when one fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query_internal.h"

typedef struct pstmt {
    const char *sql;
    char *own_sql;            /* sql when copied (gp_pipeline_add), else NULL: borrowed */
    bool caller;              /* caller SQL (judged by its tag), not the library's own */
    unsigned effects;         /* GP__EFFECT_*: the library's own, or what the tag said in the last run */
    bool keep_result;         /* build a gp_result_t (else only the outcome is recorded) */
    gp__params_t params;      /* copied (heap) when the SQL is; else may borrow the caller's text */
    gp_stmt_outcome_t outcome;
    gp_result_t *result;
    gp__stmt_t *prepared_now; /* the cache entry this run sent a PREPARE for */
    bool prepared_ok;         /* ... and the server acknowledged it */
} pstmt_t;

struct gp_pipeline {
    pstmt_t *st;
    int n, cap;
};

gp_pipeline_t *gp_pipeline_new(void) { return calloc(1, sizeof(gp_pipeline_t)); }

static void clear_results(gp_pipeline_t *p)
{
    for (int i = 0; i < p->n; i++) {
        gp_result_free(p->st[i].result);
        p->st[i].result = NULL;
        p->st[i].outcome = GP_STMT_PENDING;
        p->st[i].prepared_now = NULL;
        p->st[i].prepared_ok = false;
    }
}

void gp_pipeline_clear(gp_pipeline_t *p)
{
    if (!p)
        return;
    clear_results(p);
    for (int i = 0; i < p->n; i++) {
        free(p->st[i].own_sql);
        gp__params_free(&p->st[i].params);
    }
    p->n = 0;
}

void gp_pipeline_free(gp_pipeline_t *p)
{
    if (!p)
        return;
    gp_pipeline_clear(p);
    free(p->st);
    free(p);
}

int gp_pipeline_count(const gp_pipeline_t *p) { return p ? p->n : 0; }

/* Append a statement; `copy`: the pipeline owns copies of the SQL and the
 * parameters, else it borrows them (they must outlive the run, and the
 * statement array must not move: no growth once one is borrowed). */
static gp_status_t add(gp_pipeline_t *p, const char *sql, int nparams, const gp_value_t *params, unsigned effects,
                       bool copy, bool keep_result, gp_error_t *err)
{
    if (!p || !sql)
        return gp__client_error(err, GP_ERR_INVALID, "no pipeline or SQL given");
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 8;
        pstmt_t *st = realloc(p->st, (size_t)cap * sizeof *st);
        if (!st)
            return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
        p->st = st;
        p->cap = cap;
    }
    pstmt_t *s = &p->st[p->n];
    /* Field by field: zeroing the whole struct would also clear the
     * parameters' inline storage, which the encoding overwrites. */
    s->own_sql = NULL;
    s->outcome = GP_STMT_PENDING;
    s->result = NULL;
    s->prepared_now = NULL;
    s->prepared_ok = false;
    gp_status_t rc = gp__params_encode(&s->params, nparams, params, copy, err);
    if (rc != GP_OK) {
        if (err)
            err->statement_index = p->n;
        return rc;
    }
    s->sql = sql;
    if (copy && !(s->sql = s->own_sql = strdup(sql))) {
        gp__params_free(&s->params);
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
    }
    s->caller = (effects & GP__EFFECT_UNKNOWN) != 0;
    s->effects = s->caller ? 0 : effects;
    s->keep_result = keep_result;
    p->n++;
    return GP_OK;
}

gp_status_t gp_pipeline_add(gp_pipeline_t *p, const char *sql, int nparams, const gp_value_t *params,
                            gp_error_t *err)
{
    /* Caller SQL: what it did to the session is judged from the command
     * tag the server reports for it. */
    return add(p, sql, nparams, params, GP__EFFECT_UNKNOWN, true, true, err);
}

gp_stmt_outcome_t gp_pipeline_outcome(const gp_pipeline_t *p, int i)
{
    return p && i >= 0 && i < p->n ? p->st[i].outcome : GP_STMT_PENDING;
}

const gp_result_t *gp_pipeline_result(const gp_pipeline_t *p, int i)
{
    return p && i >= 0 && i < p->n ? p->st[i].result : NULL;
}

/* Leave pipeline mode, or give the connection up. */
static void leave(gp_conn_t *conn)
{
    if (PQpipelineStatus(conn->pg) != PQ_PIPELINE_OFF && !PQexitPipelineMode(conn->pg))
        conn->discard = true;
}

/* The next result, which must be followed by the NULL that ends it. */
static PGresult *next_result(gp_conn_t *conn, bool *protocol_ok)
{
    PGresult *r = gp__get_result(conn);
    if (!r) {
        *protocol_ok = false;
        return NULL;
    }
    ExecStatusType rs = PQresultStatus(r);
    if (rs != PGRES_PIPELINE_SYNC) {
        PGresult *end = gp__get_result(conn);
        if (end) { /* more than one result for one statement (e.g. COPY): not supported */
            PQclear(end);
            *protocol_ok = false;
        }
    }
    return r;
}

/* One attempt. *gone is set when a statement failed because the server
 * forgot a prepared statement. */
static gp_status_t run_once(gp_conn_t *conn, gp_pipeline_t *p, gp__qstate_t *qs, bool *gone, uint64_t *rows,
                            gp_error_t *err)
{
    *gone = false;
    *rows = 0;
    clear_results(p);
    bool was_idle = PQtransactionStatus(conn->pg) == PQTRANS_IDLE;
    if (!PQenterPipelineMode(conn->pg))
        return gp__fail(conn, NULL, err);
    bool sent_ok = true;
    int unqueued = -1; /* the first statement not even queued (out of memory) */
    for (int i = 0; i < p->n && sent_ok; i++) {
        pstmt_t *s = &p->st[i];
        gp__stmt_t *entry;
        bool nomem;
        const char *name = gp__stmt_lookup(qs, s->sql, &s->params, &entry, &nomem);
        if (nomem) {
            sent_ok = false;
            unqueued = i;
            break;
        }
        if (s->caller) {
            gp__taint(conn);
            s->effects = 0; /* until its tag arrives */
        }
        const gp__params_t *pp = &s->params;
        if (!entry) {
            sent_ok = PQsendQueryParams(conn->pg, s->sql, pp->n, pp->types, pp->values, pp->lengths, pp->formats, 1);
            continue;
        }
        if (!name) {
            /* A miss: prepare in the same flight. An entry already added by
             * an earlier statement of this run is being prepared there. */
            bool mine = true;
            for (int k = 0; k < i && mine; k++)
                mine = p->st[k].prepared_now != entry;
            if (mine) {
                s->prepared_now = entry;
                sent_ok = PQsendPrepare(conn->pg, gp__stmt_name(entry), s->sql, pp->n, pp->types);
            }
        }
        if (sent_ok)
            sent_ok = PQsendQueryPrepared(conn->pg, gp__stmt_name(entry), pp->n, pp->values, pp->lengths,
                                          pp->formats, 1);
    }
    if (sent_ok)
        sent_ok = PQpipelineSync(conn->pg);
    if (!sent_ok) {
        gp_status_t st = PQstatus(conn->pg) == CONNECTION_BAD ? gp__fail(conn, NULL, err)
                                                               : gp__client_error(err, GP_ERR_NOMEM, "out of memory");
        /* Out of memory before statement `unqueued` was queued: it and the
         * ones after it never left (libpq sends a pipeline at its Sync). */
        if (err && unqueued >= 0)
            err->statement_index = unqueued;
        conn->discard = true; /* statements may be queued half-sent: never reuse */
        for (int i = 0; i < p->n; i++)
            if (p->st[i].prepared_now)
                gp__stmt_drop(qs, p->st[i].prepared_now);
        leave(conn);
        return st;
    }

    gp_status_t st = GP_OK;
    bool protocol_ok = true;
    bool forget = false, forget_server_may_keep = false;
    int failed = -1;
    for (int i = 0; i < p->n && protocol_ok; i++) {
        pstmt_t *s = &p->st[i];
        PGresult *prep_err = NULL;
        if (s->prepared_now) {
            PGresult *r = next_result(conn, &protocol_ok);
            if (PQresultStatus(r) == PGRES_COMMAND_OK) {
                s->prepared_ok = true;
                PQclear(r);
            } else {
                prep_err = r; /* failed or skipped: the server does not know the name */
                gp__stmt_squatted(conn, r);
            }
            if (!protocol_ok) {
                PQclear(prep_err);
                break;
            }
        }
        PGresult *r = next_result(conn, &protocol_ok);
        if (!r) {
            PQclear(prep_err);
            protocol_ok = false;
            break;
        }
        ExecStatusType rs = PQresultStatus(r);
        if (prep_err && PQresultStatus(prep_err) == PGRES_FATAL_ERROR) {
            PQclear(r);
            r = prep_err; /* the statement failed when it was prepared */
            rs = PGRES_FATAL_ERROR;
        } else {
            PQclear(prep_err);
        }
        if (rs == PGRES_TUPLES_OK || rs == PGRES_COMMAND_OK || rs == PGRES_EMPTY_QUERY) {
            if (s->caller) { /* what the server says it ran */
                *rows += gp__result_rows_counted(r);
                s->effects = gp__tag_effects(PQcmdStatus(r));
                if (s->effects & GP__EFFECT_SESSION)
                    conn->reset_needed = true;
                if (s->effects & GP__EFFECT_DROPS_STMTS)
                    forget = forget_server_may_keep = true;
            }
            if (!s->keep_result)
                PQclear(r);
            else if (!(s->result = gp__result_wrap(r))) {
                if (failed < 0) {
                    failed = i;
                    st = gp__client_error(err, GP_ERR_NOMEM, "out of memory");
                    if (err)
                        err->statement_index = i;
                }
                continue;
            }
            s->outcome = GP_STMT_OK;
        } else if (rs == PGRES_PIPELINE_ABORTED) {
            s->outcome = GP_STMT_SKIPPED;
            PQclear(r);
        } else {
            s->outcome = GP_STMT_FAILED;
            if (failed < 0) {
                failed = i;
                st = gp__fail(conn, r, err);
                if (err)
                    err->statement_index = i;
                if (gp__stmt_gone(r))
                    *gone = forget = forget_server_may_keep = true;
            }
            PQclear(r);
        }
    }
    if (protocol_ok) {
        PGresult *sync = gp__get_result(conn);
        if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
            protocol_ok = false;
        PQclear(sync);
    }
    /* Confirm what the server prepared, forget what it did not. */
    for (int i = 0; i < p->n; i++) {
        gp__stmt_t *e = p->st[i].prepared_now;
        if (e && p->st[i].prepared_ok)
            gp__stmt_confirm(e);
        else if (e)
            gp__stmt_drop(qs, e);
        p->st[i].prepared_now = NULL;
        p->st[i].prepared_ok = false;
    }
    if (forget)
        gp__stmt_forget_all(qs, forget_server_may_keep);
    if (!protocol_ok) {
        conn->discard = true;
        if (failed < 0) {
            st = gp__fail(conn, NULL, err);
            if (PQstatus(conn->pg) != CONNECTION_BAD && !conn->timed_out)
                st = gp__client_error(err, GP_ERR_PROTOCOL, "unexpected results in a pipeline (COPY and "
                                      "multi-result statements are not supported); the connection will be "
                                      "discarded");
        }
    }
    leave(conn);
    if (failed >= 0 && was_idle && PQtransactionStatus(conn->pg) == PQTRANS_INERROR) {
        /* The pipeline opened a transaction that failed: end it, so the
         * connection is usable again (the caller had not opened it). */
        PGresult *r = gp__exec(conn, conn->txpooler ? GP__TXP_ROLLBACK : "ROLLBACK");
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            gp__fail(conn, r, NULL);
        PQclear(r);
    }
    gp__stmt_enforce(conn, qs);
    return st;
}

/* Through a transaction pooler (query_txpooler.c): p as one transaction
 * of the library's, [BEGIN; the statement timeout; p...; the verdict; the
 * neutralisers; COMMIT], in one round trip. The caller's statements are
 * borrowed (struct copies: their parameters stay where they are) and their
 * outcomes and results handed back. */
static gp_status_t run_wrapped(gp_conn_t *conn, gp_pipeline_t *p, gp__qstate_t *qs, uint64_t *rows, gp_error_t *err)
{
    *rows = 0;
    int cap = p->n + 5 + GP__TXP_NEUTRALISE_COUNT;
    /* A one-shot's wrapper fits on the stack; a long pipeline's is
     * allocated. `cap` is exact (BEGIN, the timeout, p, RESET ALL, the
     * verdict, the neutralisers, COMMIT), so add() never grows it. */
    pstmt_t small[GP__PIPELINE_ITEMS_MAX + 5 + GP__TXP_NEUTRALISE_COUNT];
    pstmt_t *w = cap <= (int)(sizeof small / sizeof *small) ? small : malloc((size_t)cap * sizeof *w);
    if (!w)
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
    gp_pipeline_t wp = {w, 0, cap};
    char timeout[64];
    gp_status_t st = add(&wp, "BEGIN", 0, NULL, 0, false, false, err);
    int tmo = gp__txp_timeout_ms(conn);
    if (st == GP_OK && tmo > 0) {
        snprintf(timeout, sizeof timeout, "SET LOCAL statement_timeout = %d", tmo);
        st = add(&wp, timeout, 0, NULL, 0, false, false, err);
    }
    int first = wp.n;
    clear_results(p);
    for (int i = 0; i < p->n; i++)
        w[wp.n++] = p->st[i];
    if (st == GP_OK)
        st = add(&wp, gp__txp_reset_sql, 0, NULL, 0, false, false, err);
    int verdict = wp.n;
    char app[64];
    bool have_app = gp__txp_app_name(conn, app, sizeof app);
    gp_value_t appv[1] = {gp_text(have_app ? app : "")}; /* (its length is taken here: after the lookup) */
    if (st == GP_OK) /* with application_name the client's own again, after RESET ALL */
        st = have_app ? add(&wp, gp__txp_verdict_app_sql, 1, appv, 0, false, false, err)
                      : add(&wp, gp__txp_verdict_sql, 0, NULL, 0, false, false, err);
    for (int i = 0; i < GP__TXP_NEUTRALISE_COUNT && st == GP_OK; i++)
        st = add(&wp, gp__txp_neutralise_sql[i], 0, NULL, 0, false, false, err);
    if (st == GP_OK)
        st = add(&wp, "COMMIT", 0, NULL, GP__EFFECT_ENDS_TX, false, false, err);
    bool gone;
    if (st == GP_OK)
        st = run_once(conn, &wp, qs, &gone, rows, err);
    else if (err)
        err->statement_index = -1; /* nothing was sent */
    for (int i = 0; i < p->n; i++) {
        p->st[i].outcome = w[first + i].outcome;
        p->st[i].result = w[first + i].result;
        p->st[i].effects = w[first + i].effects;
    }
    for (int k = 0; k < wp.n; k++) {
        if (k >= first && k < first + p->n)
            continue;
        gp_result_free(w[k].result);
        gp__params_free(&w[k].params);
    }
    if (w != small)
        free(w);
    if (st != GP_OK && err) {
        int at = err->statement_index;
        if (at == verdict && err->status == GP_ERR_SERVER) {
            gp__txp_refused(err);
            st = GP_ERR_INVALID;
        }
        err->statement_index = at >= first && at < first + p->n ? at - first : -1;
    }
    return st;
}

gp_status_t gp_pipeline_run(gp_conn_t *conn, gp_pipeline_t *p, gp_error_t *err)
{
    gp_error_t local;
    if (!err)
        err = &local;
    if (!conn || !conn->pg || !p)
        return gp__client_error(err, GP_ERR_INVALID, "no connection or pipeline given");
    if (p->n == 0)
        return gp__client_error(err, GP_ERR_INVALID, "the pipeline is empty");
    gp_status_t st = gp__check_conn(conn, err);
    if (st != GP_OK)
        return st;
    gp__qstate_t *qs = gp__qstate(conn);
    if (!qs)
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
    bool was_idle = PQtransactionStatus(conn->pg) == PQTRANS_IDLE;
    bool gone = false;
    uint64_t rows;
    int64_t t0 = gp__now_ns();
    bool wrap = false;
    if (conn->txpooler) {
        for (int i = 0; i < p->n; i++) {
            if (p->st[i].caller && (st = gp__txp_check_sql(p->st[i].sql, err)) != GP_OK) {
                err->statement_index = i;
                if (!was_idle) {
                    /* Inside the caller's transaction: it fails, as it would
                     * had the server refused the statement, so that what ran
                     * before in it does not commit. */
                    PQclear(gp__exec(conn, "SELECT 1 OPERATOR(pg_catalog./) 0"));
                    if (PQstatus(conn->pg) != CONNECTION_OK)
                        conn->discard = true;
                }
                return st;
            }
        }
        /* Unless the library opens a transaction itself (a tenant
         * transaction's first round trip), a unit of work of its own. */
        wrap = was_idle && !(!p->st[0].caller && strncmp(p->st[0].sql, "BEGIN", 5) == 0);
    }
    if (wrap)
        st = run_wrapped(conn, p, qs, &rows, err);
    else
        st = run_once(conn, p, qs, &gone, &rows, err);
    if (st != GP_OK && gone && was_idle && !conn->discard) {
        /* A forgotten prepared statement: everything before it ran in one
         * transaction that is now rolled back, unless a statement before it
         * ended a transaction. Then running the pipeline again is safe. */
        bool safe = PQtransactionStatus(conn->pg) == PQTRANS_IDLE;
        for (int k = 0; k < err->statement_index && safe; k++)
            safe = !(p->st[k].effects & GP__EFFECT_ENDS_TX);
        if (safe) {
            gp__log(GP_LOG_INFO, "query", "prepared statement vanished on the server; running the pipeline again");
            st = run_once(conn, p, qs, &gone, &rows, err);
        }
    }
    int callers = 0;
    for (int i = 0; i < p->n; i++)
        callers += p->st[i].caller;
    if (callers) /* the library's own pipelines (sweeps) are not the application's calls */
        gp__stmt_stats_record(conn->stmt_stats, callers, rows, gp__now_ns() - t0,
                              st == GP_OK ? GP_ECLASS_NONE : err->klass);
    if (st == GP_OK && err != &local) /* the caller's: say "no error" (ours is not read) */
        gp_error_clear(err);
    return st;
}

/* Whether a statement's text is a bare COMMIT (or END): a guess that only
 * places the sweep; the tag the server reports for it decides. */
static bool looks_like_commit(const char *sql)
{
    while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r')
        sql++;
    size_t n = strncasecmp(sql, "COMMIT", 6) == 0 ? 6 : strncasecmp(sql, "END", 3) == 0 ? 3 : 0;
    if (!n)
        return false;
    for (sql += n; *sql; sql++)
        if (*sql != ' ' && *sql != '\t' && *sql != '\n' && *sql != '\r' && *sql != ';')
            return false;
    return true;
}

gp_status_t gp_pool_pipeline_run(gp_pool_t *pool, gp_pipeline_t *p, gp_error_t *err)
{
    if (!pool || !p)
        return gp__client_error(err, GP_ERR_INVALID, "no pool or pipeline given");
    if (p->n == 0)
        return gp__client_error(err, GP_ERR_INVALID, "the pipeline is empty");
    int n = p->n;
    if (p->cap < n + GP__SWEEP_COUNT) { /* room first: the sweep's statements are borrowed and must not move */
        pstmt_t *st = realloc(p->st, (size_t)(n + GP__SWEEP_COUNT) * sizeof *st);
        if (!st)
            return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
        p->st = st;
        p->cap = n + GP__SWEEP_COUNT;
    }
    /* A pipeline that ends with its own COMMIT gets the sweep just before
     * it, inside its transaction (a sweep after it would cost a
     * transaction of its own); any other, after its last statement. The
     * caller's statements own their storage and may move. */
    bool before_commit = n >= 2 && looks_like_commit(p->st[n - 1].sql);
    pstmt_t last = p->st[n - 1];
    int at = before_commit ? n - 1 : n;
    p->n = at;
    gp_status_t st = GP_OK;
    for (int i = 0; i < GP__SWEEP_COUNT && st == GP_OK; i++)
        st = add(p, "", 0, NULL, 0, false, i == GP__SWEEP_COUNT - 1, err); /* the SQL once the connection is known */
    if (before_commit)
        p->st[p->n++] = last;
    int verdict_at = at + GP__SWEEP_COUNT - 1;
    gp_conn_t *conn = NULL;
    if (st == GP_OK)
        st = gp_pool_acquire(pool, "gp_pool_pipeline", -1, &conn, err);
    if (st == GP_OK) {
        for (int i = 0; i < GP__SWEEP_COUNT; i++)
            p->st[at + i].sql = gp__sweep_sql(conn, i);
        st = gp_pipeline_run(conn, p, err);
        const gp_result_t *verdict = p->st[verdict_at].result;
        /* Swept after the caller's statements: unless the sweep sat in a
         * transaction that did not commit (then it undid nothing). */
        const gp_result_t *commit = before_commit ? p->st[p->n - 1].result : NULL;
        bool committed = !before_commit || (commit && strcmp(PQcmdStatus(commit->pg), "COMMIT") == 0);
        if (st == GP_OK && verdict && committed)
            gp__sweep_apply(conn, verdict->pg);
        gp_pool_release(conn);
        if (st != GP_OK && err && err->statement_index >= at)
            err->statement_index = before_commit && err->statement_index == at + GP__SWEEP_COUNT
                                       ? n - 1  /* the caller's COMMIT */
                                       : -1;    /* the library's own statements: not the caller's to know */
    }
    /* Take the sweep out again: the pipeline is the caller's as it was. */
    if (before_commit && p->n == n + GP__SWEEP_COUNT)
        last = p->st[--p->n];
    while (p->n > at) {
        pstmt_t *s = &p->st[--p->n];
        gp_result_free(s->result);
        gp__params_free(&s->params);
    }
    if (before_commit)
        p->st[p->n++] = last;
    return st;
}

gp_status_t gp__pipeline_run_items(gp_conn_t *conn, int n, const gp__pipeline_item_t *items, gp_error_t *err)
{
    if (n < 1 || n > GP__PIPELINE_ITEMS_MAX || !items)
        return gp__client_error(err, GP_ERR_INVALID, "between 1 and %d statements are required",
                                GP__PIPELINE_ITEMS_MAX);
    pstmt_t st[GP__PIPELINE_ITEMS_MAX];
    gp_pipeline_t p = {st, 0, GP__PIPELINE_ITEMS_MAX}; /* full capacity: never grows, never moves */
    gp_status_t rc = GP_OK;
    for (int i = 0; i < n && rc == GP_OK; i++)
        rc = add(&p, items[i].sql, items[i].nparams, items[i].params, items[i].effects, false,
                 items[i].result != NULL, err);
    if (rc == GP_OK)
        rc = gp_pipeline_run(conn, &p, err);
    for (int i = 0; i < n; i++) {
        if (items[i].result) { /* taken over: the clear below no longer frees it */
            *items[i].result = rc == GP_OK ? st[i].result : NULL;
            if (rc == GP_OK)
                st[i].result = NULL;
        }
    }
    gp_pipeline_clear(&p);
    return rc;
}
