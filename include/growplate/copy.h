/* growplate/copy.h — bulk transfer on a leased connection: COPY ... FROM
 * STDIN and COPY ... TO STDOUT with streaming callbacks, and results read
 * row by row without holding the whole result (libpq single-row mode);
 * each on a connection (query layer) and inside a tenant-scoped
 * transaction (tenant layer: row-level security applies).
 *
 * gp_query() refuses COPY and materialises every result; these are the
 * explicit paths for both. They keep the session guarantees of query.h
 * ("Session state"): the SQL is the caller's (the connection is swept on
 * release), the command is judged by the tag the server reports (COPY
 * leaves no session state by itself), and every failure path leaves the
 * connection either reusable or flagged for discard: a failed callback, a
 * server error, a connection killed mid-transfer, a stream closed early.
 *
 * Deadlines: DATABASE_QUERY_TIMEOUT (or the transaction's
 * query_timeout_ms) bounds each wait for the server — re-armed after every
 * chunk or row — not the whole transfer, so a long export that keeps
 * moving is not cut off while a server that stops answering is
 * (GP_ERR_TIMEOUT, the connection is closed on release).
 *
 * Thread-safety: as query.h: a leased connection (and a gp_tenant_tx_t)
 * has one owner at a time; the callbacks run on the calling thread. A
 * gp_stream_t belongs to its connection's thread. A row borrowed from a
 * stream is immutable until the next gp_stream_next() or gp_stream_close().
 */
#ifndef GROWPLATE_COPY_H
#define GROWPLATE_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "growplate/common.h"
#include "growplate/pool.h"
#include "growplate/query.h"
#include "growplate/tenant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- COPY ------------------------------------------------------------------
 * The statement is the caller's full COPY, parameterless (the server takes
 * no parameters in COPY): "COPY public.menu_items_import (category_id,
 * name, price_cents) FROM STDIN", "COPY (SELECT ...) TO STDOUT WITH
 * (FORMAT binary)". Text, CSV and binary formats pass through unchanged:
 * the bytes are the server's COPY format (binary: the PGCOPY signature
 * and header first). Row-level security: COPY ... TO of a table or query
 * applies the SELECT policies; the server refuses COPY ... FROM into a
 * table with row-level security (SQLSTATE 0A000) — copy into a view with
 * an INSTEAD OF INSERT trigger instead, such as public.menu_items_import
 * (migration 0005), whose inserts the policies check row by row.
 *
 * Errors: GP_ERR_INVALID (no connection, SQL or callback; a statement that
 * is not a COPY in the expected direction: "COPY ... FROM STDIN" for
 * gp_copy_in; nothing is left running), the server's errors as gp_query()
 * reports them (a bad row: GP_ERR_SERVER with the line in err->message,
 * nothing of the COPY is kept), GP_ERR_CONNECT (the connection broke, e.g.
 * its backend was terminated: it is discarded on release), GP_ERR_TIMEOUT
 * (see Deadlines), GP_ERR_NOMEM, or the status a callback returned with
 * the err it filled (the COPY is stopped and its rows are not kept). In a
 * transaction, any failure leaves the transaction aborted: roll it back. */

/* Produce the next bytes for COPY FROM STDIN into buf[0..cap) (cap is
 * 64 KiB) and set *len: GP_OK with *len > 0 sends them (rows may span
 * calls), GP_OK with *len == 0 ends the data; any other status aborts the
 * COPY (fill err to say why). */
typedef gp_status_t (*gp_copy_read_fn)(void *userdata, char *buf, size_t cap, size_t *len, gp_error_t *err);

/* Consume bytes of COPY TO STDOUT: one server data message per call (in
 * text and CSV format one row, newline included; in binary one tuple, the
 * header with the first). data is valid for the call only. Any status but
 * GP_OK stops the COPY (the server is asked to cancel it). */
typedef gp_status_t (*gp_copy_write_fn)(void *userdata, const char *data, size_t len, gp_error_t *err);

/* Run a COPY ... FROM STDIN on conn, feeding it from `read` until it
 * reports the end. *rows (may be NULL) receives the rows the server
 * stored (0 on failure). */
GP_EXPORT gp_status_t gp_copy_in(gp_conn_t *conn, const char *sql, gp_copy_read_fn read, void *userdata,
                                 int64_t *rows, gp_error_t *err);

/* Run a COPY ... TO STDOUT on conn, handing every data message to
 * `write`. *rows (may be NULL) receives the rows the server sent. */
GP_EXPORT gp_status_t gp_copy_out(gp_conn_t *conn, const char *sql, gp_copy_write_fn write, void *userdata,
                                  int64_t *rows, gp_error_t *err);

/* The same inside a tenant-scoped transaction (the first statement of tx
 * carries BEGIN and the tenant setting, as gp_tenant_tx_query does), so
 * the policies confine the COPY to the transaction's tenant. Under
 * gp_tenant_run the callbacks may run again on a retry: make them
 * restartable. Errors: as above, and GP_ERR_INVALID when the transaction
 * has ended. */
GP_EXPORT gp_status_t gp_tenant_tx_copy_in(gp_tenant_tx_t *tx, const char *sql, gp_copy_read_fn read,
                                           void *userdata, int64_t *rows, gp_error_t *err);
GP_EXPORT gp_status_t gp_tenant_tx_copy_out(gp_tenant_tx_t *tx, const char *sql, gp_copy_write_fn write,
                                            void *userdata, int64_t *rows, gp_error_t *err);

/* ---- streaming results -------------------------------------------------------
 * A statement whose rows are read one at a time as the server sends them
 * (libpq single-row mode): memory stays at one row whatever the result's
 * size. Each row is a gp_result_t of one row (row index 0) for the usual
 * getters (query.h). The statement is not prepared (the unnamed statement:
 * one round trip, nothing cached).
 *
 * While a stream is open its connection is busy: no other call on it
 * (one would fail with GP_ERR_PROTOCOL and the connection be discarded);
 * close the stream before anything else, and before releasing.
 *
 * Closing early (before gp_stream_next reported the end) takes what has
 * already arrived without waiting; if the statement is still running it is
 * canceled and its rest drained, so the connection is reusable. Inside a
 * transaction the stream runs under a savepoint of its own (one extra
 * round trip when opened), so closing early undoes the canceled statement
 * only and the transaction goes on. */

typedef struct gp_stream gp_stream_t;

/* Send sql with nparams typed parameters ($1..$n) and open a stream of its
 * rows in *out (NULL on failure). Errors: as gp_query() for what is
 * detected before the first row (GP_ERR_INVALID, a server error that
 * comes at once, GP_ERR_CONNECT...), GP_ERR_NOMEM. A statement that fails
 * after some rows reports it from gp_stream_next. */
GP_EXPORT gp_status_t gp_stream_open(gp_conn_t *conn, const char *sql, int nparams, const gp_value_t *params,
                                     gp_stream_t **out, gp_error_t *err);

/* The same inside a tenant-scoped transaction (see gp_tenant_tx_copy_in). */
GP_EXPORT gp_status_t gp_tenant_tx_stream_open(gp_tenant_tx_t *tx, const char *sql, int nparams,
                                               const gp_value_t *params, gp_stream_t **out, gp_error_t *err);

/* The next row: GP_OK with *row a one-row result (borrowed: valid until
 * the next gp_stream_next or gp_stream_close; do not free it), or GP_OK
 * with *row NULL at the end (then gp_stream_rows() is final). Errors:
 * the statement's, as gp_query() reports them (the rows before it were
 * real, but in a transaction it is now aborted), GP_ERR_TIMEOUT (no row
 * within the deadline), GP_ERR_CONNECT; after an error, *row is NULL and
 * every later call returns GP_ERR_INVALID. */
GP_EXPORT gp_status_t gp_stream_next(gp_stream_t *s, const gp_result_t **row, gp_error_t *err);

/* Rows delivered so far (at the end: the rows the statement returned). */
GP_EXPORT int64_t gp_stream_rows(const gp_stream_t *s);

/* End the stream (early or not, see above) and free it; NULL is accepted.
 * GP_OK when the connection is reusable; otherwise the error that made it
 * unusable (it is then discarded on release). */
GP_EXPORT gp_status_t gp_stream_close(gp_stream_t *s, gp_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
