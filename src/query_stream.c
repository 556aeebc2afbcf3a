/* query_stream.c — results read row by row (libpq single-row mode): one
 * row in memory at a time, and an early close that cancels the rest and
 * leaves the connection reusable (inside a transaction, under a savepoint
 * of the stream's own, so the transaction survives it). */
#include <stdlib.h>
#include <string.h>

#include "copy_internal.h"

#define STREAM_SAVEPOINT "gp_stream"

struct gp_stream {
    gp_conn_t *conn;
    gp_result_t row;     /* the row handed out last (row.pg NULL: none) */
    PGresult *pending;   /* the first result, taken by gp_stream_open */
    int64_t rows;
    int64_t t0;
    bool done;           /* the end was reached: the connection is idle */
    bool failed;         /* an error was reported: the connection is idle or discarded */
    bool savepoint;      /* opened under STREAM_SAVEPOINT */
};

static void drain(gp_conn_t *conn)
{
    PGresult *r;
    while ((r = gp__get_result(conn)))
        PQclear(r);
}

static void record(gp_stream_t *s, gp_error_class_t klass)
{
    if (s->conn->stmt_stats)
        gp__stmt_stats_record(s->conn->stmt_stats, 1, (uint64_t)s->rows, gp__now_ns() - s->t0, klass);
}

/* Take result r (the next of the statement's) into the stream. */
static gp_status_t take(gp_stream_t *s, PGresult *r, const gp_result_t **row, gp_error_t *err)
{
    gp_conn_t *conn = s->conn;
    ExecStatusType rs = PQresultStatus(r);
    if (r && rs == PGRES_SINGLE_TUPLE) {
        s->row.pg = r;
        s->rows++;
        if (row)
            *row = &s->row;
        return GP_OK;
    }
    gp_status_t st = GP_OK;
    if (r && (rs == PGRES_TUPLES_OK || rs == PGRES_COMMAND_OK || rs == PGRES_EMPTY_QUERY)) {
        if (PQntuples(r) > 0) { /* single-row mode did not take: the rows came whole */
            st = gp__client_error(err, GP_ERR_PROTOCOL, "the server's rows did not come one at a time");
            conn->discard = true;
        } else {
            if (rs == PGRES_COMMAND_OK)
                s->rows = gp__result_affected(r);
            gp__copy_done(conn, r);
        }
        PQclear(r);
        drain(conn);
        s->done = st == GP_OK;
        s->failed = st != GP_OK;
        record(s, st == GP_OK ? GP_ECLASS_NONE : GP_ECLASS_INTERNAL);
        if (st == GP_OK && err)
            gp_error_clear(err);
        return st;
    }
    gp_error_t local;
    gp_error_t *e = err ? err : &local;
    if (!r) {
        st = gp__fail(conn, NULL, e);
    } else if (rs == PGRES_COPY_OUT || rs == PGRES_COPY_IN || rs == PGRES_COPY_BOTH) {
        PQclear(r);
        if (rs != PGRES_COPY_OUT || !gp__abandon(conn, true, NULL))
            conn->discard = true;
        st = gp__client_error(e, GP_ERR_INVALID, "a COPY cannot be streamed: use gp_copy_in/gp_copy_out");
    } else {
        st = gp__fail(conn, r, e);
        PQclear(r);
        drain(conn);
    }
    s->failed = true;
    record(s, e->klass);
    return st;
}

gp_status_t gp_stream_open(gp_conn_t *conn, const char *sql, int nparams, const gp_value_t *params,
                           gp_stream_t **out, gp_error_t *err)
{
    if (!out)
        return gp__client_error(err, GP_ERR_INVALID, "no stream pointer given");
    *out = NULL;
    if (!sql)
        return gp__client_error(err, GP_ERR_INVALID, "no SQL given");
    gp_status_t st = gp__check_conn(conn, err);
    if (st != GP_OK)
        return st;
    if ((st = gp__txp_in_tx(conn, "a stream", sql, err)) != GP_OK)
        return st;
    gp_stream_t *s = calloc(1, sizeof *s);
    if (!s)
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
    s->conn = conn;
    s->t0 = gp__now_ns();
    gp__params_t p;
    if ((st = gp__params_encode(&p, nparams, params, false, err)) != GP_OK) {
        free(s);
        return st;
    }
    if (PQtransactionStatus(conn->pg) == PQTRANS_INTRANS) {
        PGresult *r = gp__exec(conn, "SAVEPOINT " STREAM_SAVEPOINT);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            st = gp__fail(conn, r, err);
            PQclear(r);
            gp__params_free(&p);
            free(s);
            return st;
        }
        PQclear(r);
        s->savepoint = true;
    }
    gp__taint(conn);
    bool sent = PQsendQueryParams(conn->pg, sql, p.n, p.types, p.values, p.lengths, p.formats, 1);
    gp__params_free(&p);
    if (!sent) {
        st = gp__fail(conn, NULL, err);
        free(s);
        return st;
    }
    if (!PQsetSingleRowMode(conn->pg))
        gp__log(GP_LOG_WARN, "query", "single-row mode was refused; the stream's rows arrive whole");
    /* The first answer: an error that comes at once is the open's. */
    PGresult *first = gp__get_result(conn);
    ExecStatusType rs = PQresultStatus(first);
    if (first && (rs == PGRES_SINGLE_TUPLE || rs == PGRES_TUPLES_OK || rs == PGRES_COMMAND_OK ||
                  rs == PGRES_EMPTY_QUERY)) {
        s->pending = first;
        *out = s;
        if (err)
            gp_error_clear(err);
        return GP_OK;
    }
    st = take(s, first, NULL, err);
    free(s);
    return st;
}

gp_status_t gp_stream_next(gp_stream_t *s, const gp_result_t **row, gp_error_t *err)
{
    if (!row)
        return gp__client_error(err, GP_ERR_INVALID, "no row pointer given");
    *row = NULL;
    if (!s)
        return gp__client_error(err, GP_ERR_INVALID, "no stream given");
    if (s->failed)
        return gp__client_error(err, GP_ERR_INVALID, "the stream failed earlier; close it");
    PQclear(s->row.pg);
    s->row.pg = NULL;
    if (s->done) {
        if (err)
            gp_error_clear(err);
        return GP_OK;
    }
    PGresult *r = s->pending;
    s->pending = NULL;
    if (!r) {
        gp__arm_deadline(s->conn); /* the deadline bounds the wait for each row */
        r = gp__get_result(s->conn);
    }
    return take(s, r, row, err);
}

int64_t gp_stream_rows(const gp_stream_t *s) { return s ? s->rows : 0; }

gp_status_t gp_stream_close(gp_stream_t *s, gp_error_t *err)
{
    if (!s)
        return GP_OK;
    gp_conn_t *conn = s->conn;
    PQclear(s->row.pg);
    PQclear(s->pending);
    gp_status_t st = GP_OK;
    if (!s->done && !s->failed) {
        bool canceled = false;
        bool idle = gp__abandon(conn, false, &canceled);
        if (idle && canceled && s->savepoint) {
            /* Undo the canceled statement only: the transaction goes on. */
            PGresult *r = gp__exec(conn, "ROLLBACK TO SAVEPOINT " STREAM_SAVEPOINT);
            if (PQresultStatus(r) != PGRES_COMMAND_OK)
                st = gp__fail(conn, r, err);
            PQclear(r);
        }
        record(s, GP_ECLASS_NONE);
    }
    if (st == GP_OK && conn->discard) {
        st = gp__client_error(err, GP_ERR_CONNECT, "the stream's statement could not be stopped cleanly; the "
                              "connection is closed on release (acquire another)");
        if (err) {
            err->klass = GP_ECLASS_CONNECTION;
            err->retriable = 1;
        }
    } else if (st == GP_OK && err) {
        gp_error_clear(err);
    }
    free(s);
    return st;
}
