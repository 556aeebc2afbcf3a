/* gp_test_conn.h — connections for the query layer's tests without a pool:
 * a PGconn opened with gp__pg_params() wrapped in a heap struct gp_conn,
 * exactly as the pool leases them, plus owner-role fixtures. */
#ifndef GP_TEST_CONN_H
#define GP_TEST_CONN_H

#include <libpq-fe.h>

#include "gp_test.h"
#include "growplate/query.h"

/* Open a connection as the application role (DATABASE_URL); fails the test
 * when it cannot. Close with gp_test_conn_close(). */
gp_conn_t *gp_test_conn_open(void);

/* Close it the way the pool does: query_state_free(query_state), PQfinish. */
void gp_test_conn_close(gp_conn_t *conn);

/* Run SQL (several statements allowed) as the owner role
 * (DATABASE_MIGRATION_URL) for fixtures; fails the test on error. */
void gp_test_owner_exec(const char *sql);

/* Run SQL as the superuser (GP_PG_ADMIN_CONNINFO), e.g.
 * pg_terminate_backend(); fails the test on error. */
void gp_test_admin_exec(const char *sql);

/* The backend PID of a connection. */
int gp_test_conn_pid(gp_conn_t *conn);

#endif
