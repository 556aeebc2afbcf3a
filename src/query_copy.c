/* query_copy.c — COPY FROM STDIN / TO STDOUT on a leased connection with
 * streaming callbacks, and the one way the query layer stops a command
 * mid-flight (gp__abandon), shared with streaming results.
 *
 * The COPY runs with the extended protocol (PQsendQueryParams, no
 * parameters) so the server accepts exactly one statement: "COPY ...;
 * anything" is refused before it runs. During the transfer the connection
 * is non-blocking, so every wait for the server is a poll bounded by the
 * connection's deadline, re-armed after each chunk. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "copy_internal.h"

#define COPY_CHUNK 65536
/* Bound of gp__abandon's wait when the connection has no deadline of its
 * own: a canceled command ends at once; one that does not is not worth
 * the connection. */
#define ABANDON_DEFAULT_MS 30000

int gp__wait_socket(gp_conn_t *conn, short events)
{
    int fd = PQsocket(conn->pg);
    if (fd < 0)
        return -1;
    for (;;) {
        int timeout = -1;
        if (conn->deadline_ns) {
            int64_t left = conn->deadline_ns - gp__now_ns();
            if (left <= 0) {
                conn->timed_out = conn->discard = true;
                return 0;
            }
            timeout = (int)((left + 999999) / 1000000);
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int r = poll(&pfd, 1, timeout);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

void gp__copy_done(gp_conn_t *conn, const PGresult *res)
{
    const char *tag = PQcmdStatus((PGresult *)res);
    if (tag && strncmp(tag, "COPY", 4) == 0 && (tag[4] == ' ' || tag[4] == 0))
        return;
    gp__caller_done(conn, gp__qstate(conn), res);
}

static bool send_cancel(gp_conn_t *conn)
{
    PGcancel *c = PQgetCancel(conn->pg);
    char why[256] = "out of memory";
    bool ok = c && PQcancel(c, why, (int)sizeof why);
    PQfreeCancel(c);
    if (!ok)
        gp__log(GP_LOG_INFO, "query", "cannot cancel an abandoned command (%s); the connection will be closed", why);
    return ok;
}

bool gp__abandon(gp_conn_t *conn, bool copy_out, bool *canceled)
{
    PGconn *pg = conn->pg;
    bool cancel_sent = false, was_canceled = false;
    int ms = gp__deadline_ms(conn);
    conn->deadline_ns = gp__now_ns() + (int64_t)(ms > 0 ? ms : ABANDON_DEFAULT_MS) * 1000000;
    /* One read of what has arrived; after that, input is read only when
     * libpq needs more (reading ahead of parsing would grow its buffer). */
    if (PQstatus(pg) == CONNECTION_BAD || !PQconsumeInput(pg))
        conn->discard = true;
    while (!conn->discard) {
        bool need_more = false;
        if (copy_out) {
            char *d = NULL;
            int n;
            while ((n = PQgetCopyData(pg, &d, 1)) > 0)
                PQfreemem(d);
            if (n == 0)
                need_more = true;
            else
                copy_out = false; /* the data ended (or the connection broke): the results follow */
        } else if (PQisBusy(pg)) {
            need_more = true;
        }
        if (need_more) {
            /* Still running: what has arrived is taken; the rest is not
             * worth waiting for. A cancel that reaches the backend after
             * the command completed is ignored by it (it is then reading
             * the next command), so it cannot hit a later statement. The
             * rest is drained meanwhile: a backend blocked writing to us
             * sees the cancel only once it can write again. */
            if (!cancel_sent) {
                cancel_sent = true;
                if (!send_cancel(conn))
                    conn->discard = true;
            } else if (gp__wait_socket(conn, POLLIN) <= 0 || !PQconsumeInput(pg)) {
                conn->discard = true;
            }
            continue;
        }
        PGresult *r = PQgetResult(pg);
        if (!r)
            break;
        ExecStatusType rs = PQresultStatus(r);
        if (rs == PGRES_FATAL_ERROR) {
            const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            was_canceled = was_canceled || (s && strcmp(s, "57014") == 0);
            if (gp__sqlstate_is_fatal(s))
                conn->discard = true;
        } else if (rs == PGRES_TUPLES_OK || rs == PGRES_COMMAND_OK) {
            gp__copy_done(conn, r);
        } else if (rs == PGRES_COPY_IN || rs == PGRES_COPY_BOTH) {
            conn->discard = true; /* not a state this can leave cleanly */
            PQclear(r);
            break;
        } else if (rs == PGRES_COPY_OUT) {
            copy_out = true;
        }
        PQclear(r);
    }
    if (canceled)
        *canceled = was_canceled;
    gp__arm_deadline(conn);
    return !conn->discard && PQtransactionStatus(pg) != PQTRANS_ACTIVE;
}

/* Collect the results that follow a COPY's data: the COPY's own (its
 * "COPY n" tag gives the rows) and the end. */
static gp_status_t finish(gp_conn_t *conn, int64_t *rows, gp_error_t *err)
{
    gp_status_t st = GP_OK;
    bool got = false;
    PGresult *r;
    while ((r = gp__get_result(conn))) {
        ExecStatusType rs = PQresultStatus(r);
        if (rs == PGRES_COPY_IN || rs == PGRES_COPY_OUT || rs == PGRES_COPY_BOTH) {
            /* libpq is still mid-copy: the data could not be ended (a
             * broken connection) */
            PQclear(r);
            conn->discard = true;
            return got ? st : gp__fail(conn, NULL, err);
        }
        if (!got) {
            got = true;
            if (rs == PGRES_COMMAND_OK) {
                if (rows)
                    *rows = strtoll(PQcmdTuples(r), NULL, 10);
                gp__copy_done(conn, r);
            } else {
                st = gp__fail(conn, r, err);
            }
        }
        PQclear(r);
    }
    if (!got)
        st = gp__fail(conn, NULL, err); /* timed out or broken before any answer */
    return st;
}

/* Everything after a first result that is not the COPY expected: bring the
 * connection back to idle and say what happened. */
static gp_status_t not_this_copy(gp_conn_t *conn, PGresult *r, bool want_in, gp_error_t *err)
{
    ExecStatusType rs = PQresultStatus(r);
    const char *want = want_in ? "COPY ... FROM STDIN" : "COPY ... TO STDOUT";
    gp_status_t st;
    if (!r) {
        st = gp__fail(conn, NULL, err);
    } else if (rs == PGRES_FATAL_ERROR || rs == PGRES_BAD_RESPONSE || rs == PGRES_NONFATAL_ERROR) {
        st = gp__fail(conn, r, err);
        PQclear(r);
        while ((r = gp__get_result(conn)))
            PQclear(r);
        return st;
    } else if (rs == PGRES_COPY_IN) {
        PQclear(r);
        /* Stop it before any row: the server fails the statement. */
        if (PQputCopyEnd(conn->pg, "growplate: expected COPY ... TO STDOUT") != 1)
            conn->discard = true;
        while ((r = gp__get_result(conn)))
            PQclear(r);
        st = gp__client_error(err, GP_ERR_INVALID, "gp_copy_out needs a %s statement; the server started COPY ... "
                              "FROM STDIN (stopped before any row; in a transaction, roll it back)", want);
        return st;
    } else if (rs == PGRES_COPY_OUT) {
        PQclear(r);
        gp__abandon(conn, true, NULL);
        return gp__client_error(err, GP_ERR_INVALID, "gp_copy_in needs a %s statement; the server started COPY ... "
                                "TO STDOUT (canceled; in a transaction, roll it back)", want);
    } else if (rs == PGRES_COPY_BOTH) {
        PQclear(r);
        conn->discard = true;
        return gp__client_error(err, GP_ERR_INVALID, "the statement started a replication COPY; not supported "
                                "(the connection will be closed)");
    } else {
        char tag[64];
        gp__redactf(tag, sizeof tag, "%s", PQcmdStatus(r));
        gp__copy_done(conn, r);
        PQclear(r);
        while ((r = gp__get_result(conn)))
            PQclear(r);
        return gp__client_error(err, GP_ERR_INVALID, "%s expects a %s statement, but the server ran the SQL as "
                                "\"%s\" (it ran: in a transaction, roll it back if that was not meant)",
                                want_in ? "gp_copy_in" : "gp_copy_out", want, tag);
    }
    return st;
}

/* Send the COPY; GP_OK once the server is in the direction wanted. */
static gp_status_t start(gp_conn_t *conn, const char *sql, bool want_in, gp_error_t *err)
{
    gp_status_t st = gp__check_conn(conn, err);
    if (st != GP_OK)
        return st;
    if ((st = gp__txp_in_tx(conn, "COPY", sql, err)) != GP_OK)
        return st;
    gp__taint(conn);
    if (!PQsendQueryParams(conn->pg, sql, 0, NULL, NULL, NULL, NULL, 0))
        return gp__fail(conn, NULL, err);
    PGresult *r = gp__get_result(conn);
    if (PQresultStatus(r) == (want_in ? PGRES_COPY_IN : PGRES_COPY_OUT) && r) {
        PQclear(r);
        return GP_OK;
    }
    return not_this_copy(conn, r, want_in, err);
}

/* Output buffered in non-blocking mode, sent; false when the connection
 * broke or the deadline passed. */
static bool flush_all(gp_conn_t *conn)
{
    for (;;) {
        int f = PQflush(conn->pg);
        if (f == 0)
            return true;
        if (f < 0 || gp__wait_socket(conn, POLLOUT | POLLIN) <= 0 || !PQconsumeInput(conn->pg))
            return false;
    }
}

static bool put_data(gp_conn_t *conn, const char *buf, size_t len)
{
    for (;;) {
        int r = PQputCopyData(conn->pg, buf, (int)len);
        if (r == 1)
            return flush_all(conn);
        if (r < 0 || gp__wait_socket(conn, POLLOUT) <= 0)
            return false;
    }
}

/* The status and error of a failed callback, named when it did not say. */
static gp_status_t callback_failed(gp_status_t cb, gp_error_t *ce, const char *which, gp_error_t *err)
{
    if (ce->message[0] == 0)
        gp__client_error(ce, cb, "the COPY's %s callback stopped it (%s); nothing of the COPY was kept", which,
                         gp_strerror(cb));
    ce->status = cb;
    if (err)
        *err = *ce;
    return cb;
}

static void record(gp_conn_t *conn, int64_t t0, gp_status_t st, int64_t rows, const gp_error_t *e)
{
    if (conn && conn->stmt_stats)
        gp__stmt_stats_record(conn->stmt_stats, 1, st == GP_OK && rows > 0 ? (uint64_t)rows : 0,
                              gp__now_ns() - t0, st == GP_OK ? GP_ECLASS_NONE : e->klass);
}

gp_status_t gp_copy_in(gp_conn_t *conn, const char *sql, gp_copy_read_fn read, void *userdata, int64_t *rows,
                       gp_error_t *err)
{
    if (rows)
        *rows = 0;
    if (!sql || !read)
        return gp__client_error(err, GP_ERR_INVALID, "gp_copy_in needs a COPY ... FROM STDIN statement and a "
                                "callback that produces its data");
    gp_error_t local;
    gp_error_t *e = err ? err : &local;
    char *buf = malloc(COPY_CHUNK);
    if (!buf)
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
    int64_t t0 = gp__now_ns(), n = 0;
    gp_status_t st = start(conn, sql, true, e);
    if (st == GP_OK) {
        PGconn *pg = conn->pg;
        bool nonblocking = PQsetnonblocking(pg, 1) == 0;
        gp_status_t cb = GP_OK;
        gp_error_t ce;
        for (;;) {
            size_t len = 0;
            gp_error_clear(&ce);
            cb = read(userdata, buf, COPY_CHUNK, &len, &ce);
            if (cb == GP_OK && len > COPY_CHUNK) {
                cb = GP_ERR_INVALID;
                gp__client_error(&ce, cb, "the COPY's read callback reported %zu bytes for a buffer of %d", len,
                                 COPY_CHUNK);
            }
            gp__arm_deadline(conn);
            if (cb != GP_OK) {
                /* The server fails the statement: nothing of it is kept. */
                if (PQputCopyEnd(pg, "the client's data callback failed") != 1 || !flush_all(conn))
                    conn->discard = conn->discard || PQstatus(pg) == CONNECTION_BAD;
                break;
            }
            if (len == 0) {
                if (PQputCopyEnd(pg, NULL) != 1 || !flush_all(conn))
                    conn->discard = conn->discard || PQstatus(pg) == CONNECTION_BAD;
                break;
            }
            if (!put_data(conn, buf, len)) {
                /* Broken, timed out, or libpq left the copy (the server
                 * failed it): end it if it can be, and let the results
                 * tell. */
                if (PQstatus(pg) != CONNECTION_BAD && !conn->timed_out && PQputCopyEnd(pg, NULL) == 1)
                    flush_all(conn);
                break;
            }
        }
        if (nonblocking && PQstatus(pg) != CONNECTION_BAD)
            PQsetnonblocking(pg, 0);
        st = finish(conn, &n, e);
        if (cb != GP_OK)
            st = callback_failed(cb, &ce, "read", e);
    }
    free(buf);
    if (st == GP_OK) {
        if (rows)
            *rows = n;
        gp_error_clear(e);
    }
    record(conn, t0, st, n, e);
    return st;
}

gp_status_t gp_copy_out(gp_conn_t *conn, const char *sql, gp_copy_write_fn write, void *userdata, int64_t *rows,
                        gp_error_t *err)
{
    if (rows)
        *rows = 0;
    if (!sql || !write)
        return gp__client_error(err, GP_ERR_INVALID, "gp_copy_out needs a COPY ... TO STDOUT statement and a "
                                "callback that consumes its data");
    gp_error_t local;
    gp_error_t *e = err ? err : &local;
    int64_t t0 = gp__now_ns(), n = 0;
    gp_status_t st = start(conn, sql, false, e);
    if (st == GP_OK) {
        PGconn *pg = conn->pg;
        gp_status_t cb = GP_OK;
        gp_error_t ce;
        gp_error_clear(&ce);
        for (;;) {
            char *data = NULL;
            int got = PQgetCopyData(pg, &data, 1);
            if (got > 0) {
                cb = write(userdata, data, (size_t)got, &ce);
                PQfreemem(data);
                if (cb != GP_OK) {
                    gp__abandon(conn, true, NULL);
                    break;
                }
                gp__arm_deadline(conn);
                continue;
            }
            if (got == 0) {
                if (gp__wait_socket(conn, POLLIN) == 0)
                    break; /* timed out: finish reports it */
                PQconsumeInput(pg); /* a broken connection makes PQgetCopyData say -2 */
                continue;
            }
            break; /* -1: the data ended; -2: an error, which the results carry */
        }
        if (cb != GP_OK)
            st = callback_failed(cb, &ce, "write", e);
        else
            st = finish(conn, &n, e);
    }
    if (st == GP_OK) {
        if (rows)
            *rows = n;
        gp_error_clear(e);
    }
    record(conn, t0, st, n, e);
    return st;
}
