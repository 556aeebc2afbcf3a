/* gp_test_conn.c — see gp_test_conn.h. */
#include <stdio.h>
#include <stdlib.h>

#include "gp_test_conn.h"
#include "internal.h"
#include "pool_internal.h"

gp_conn_t *gp_test_conn_open(void)
{
    gp_config_t cfg;
    gp_test_config(&cfg);
    gp__pg_params_t p;
    char msg[512];
    assert_int_equal(gp__pg_params(&cfg.db, false, &p, msg, sizeof msg), GP_OK);
    PGconn *pg = PQconnectdbParams(p.kw, p.val, 1);
    gp_config_release(&cfg);
    assert_non_null(pg);
    if (PQstatus(pg) != CONNECTION_OK)
        fprintf(stderr, "connect: %s", PQerrorMessage(pg));
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    gp_conn_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->pg = pg;
    return c;
}

void gp_test_conn_close(gp_conn_t *conn)
{
    if (!conn)
        return;
    if (conn->query_state_free)
        conn->query_state_free(conn->query_state);
    PQfinish(conn->pg);
    free(conn);
}

static void exec_as(const char *conninfo, const char *sql)
{
    assert_non_null(conninfo);
    PGconn *pg = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    PQclear(PQexec(pg, "SET client_min_messages = warning"));
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "fixture SQL failed: %s\n  %s\n", PQresultErrorMessage(r), sql);
    assert_true(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(pg);
}

void gp_test_owner_exec(const char *sql) { exec_as(getenv("DATABASE_MIGRATION_URL"), sql); }

void gp_test_admin_exec(const char *sql) { exec_as(getenv("GP_PG_ADMIN_CONNINFO"), sql); }

int gp_test_conn_pid(gp_conn_t *conn) { return PQbackendPID(conn->pg); }
