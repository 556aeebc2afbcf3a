/* tenant_copy.c — COPY and streaming results inside a tenant-scoped
 * transaction: the transaction's BEGIN and tenant setting reach the server
 * first, so the row-level security policies confine the transfer. */
#include "copy_internal.h"

gp_status_t gp_tenant_tx_copy_in(gp_tenant_tx_t *tx, const char *sql, gp_copy_read_fn read, void *userdata,
                                 int64_t *rows, gp_error_t *err)
{
    if (rows)
        *rows = 0;
    gp_conn_t *conn;
    gp_status_t st = gp__tenant_tx_scope(tx, &conn, err);
    return st == GP_OK ? gp_copy_in(conn, sql, read, userdata, rows, err) : st;
}

gp_status_t gp_tenant_tx_copy_out(gp_tenant_tx_t *tx, const char *sql, gp_copy_write_fn write, void *userdata,
                                  int64_t *rows, gp_error_t *err)
{
    if (rows)
        *rows = 0;
    gp_conn_t *conn;
    gp_status_t st = gp__tenant_tx_scope(tx, &conn, err);
    return st == GP_OK ? gp_copy_out(conn, sql, write, userdata, rows, err) : st;
}

gp_status_t gp_tenant_tx_stream_open(gp_tenant_tx_t *tx, const char *sql, int nparams, const gp_value_t *params,
                                     gp_stream_t **out, gp_error_t *err)
{
    if (!out)
        return gp__client_error(err, GP_ERR_INVALID, "no stream pointer given");
    *out = NULL;
    gp_conn_t *conn;
    gp_status_t st = gp__tenant_tx_scope(tx, &conn, err);
    return st == GP_OK ? gp_stream_open(conn, sql, nparams, params, out, err) : st;
}
