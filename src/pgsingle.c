/* pgsingle.c — one dedicated libpq connection, outside the pool, for the
 * tools that need exactly one: migrations (as the owner role), the
 * isolation audit and gen-types (as the application role). */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "pool_internal.h"
#include "schema_internal.h"

gp_status_t gp__pg_connect_single(const gp_db_config_t *db, bool migration, PGconn **out, gp_error_t *err)
{
    *out = NULL;
    char msg[GP_ERRBUF_SIZE] = "";
    gp__pg_params_t p;
    if (gp__pg_params(db, migration, &p, msg, sizeof msg) != GP_OK) {
        size_t n = strlen(msg);
        while (n && msg[n - 1] == '\n')
            msg[--n] = 0;
        return gp__client_error(err, GP_ERR_CONFIG, "%s", msg);
    }
    PGconn *c = PQconnectdbParams(p.kw, p.val, 1);
    if (!c)
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory creating a libpq connection");
    if (PQstatus(c) != CONNECTION_OK) {
        char target[256], raw[sizeof err->message];
        gp_error_t local;
        gp_error_t *e = err ? err : &local;
        gp_status_t st = gp__error_from_connect(c, e); /* classified and redacted */
        if (strstr(e->message, "timeout expired"))
            st = e->status = GP_ERR_TIMEOUT;
        PQfinish(c);
        if (migration)
            gp_redact(db->migration_url, target, sizeof target);
        else
            gp_config_db_display(db, target, sizeof target);
        snprintf(raw, sizeof raw, "%s", e->message);
        snprintf(e->message, sizeof e->message, "%s (%s): %s", target,
                 migration ? "DATABASE_MIGRATION_URL" : "DATABASE_URL", raw);
        return st;
    }
    gp__pg_log_notices(c, migration ? "migrate" : "schema");
    /* Migrations and audits need a session with the server itself (advisory
     * locks, several statements): never through a connection pooler. */
    int server_pid = 0;
    int pooler = gp__pooler_check(c, gp__now_ns() + (int64_t)db->connect_timeout_ms * 1000000LL, &server_pid);
    if (pooler != 0) {
        char target[256];
        const char *var = migration ? "DATABASE_MIGRATION_URL" : "DATABASE_URL";
        int client_pid = PQbackendPID(c);
        if (migration)
            gp_redact(db->migration_url, target, sizeof target);
        else
            gp_config_db_display(db, target, sizeof target);
        PQfinish(c);
        if (pooler < 0)
            return gp__client_error(err, GP_ERR_TIMEOUT, "%s (%s): no answer to the first statement in time", target, var);
        return gp__client_error(err, GP_ERR_CONFIG,
                                "%s (%s) goes through a connection pooler (the server's backend is %d, the connection "
                                "says %d); migrations and the audit need a session with the server itself: point %s "
                                "at the server",
                                target, var, server_pid, client_pid, var);
    }
    /* Independent of the role's search_path defaults. */
    PGresult *r = PQexec(c, "SET search_path = public, pg_catalog");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        gp_status_t st = gp__error_from_pg(c, r, err);
        PQclear(r);
        PQfinish(c);
        return st;
    }
    PQclear(r);
    *out = c;
    return GP_OK;
}

static void notice_to_log(void *arg, const char *message)
{
    gp__log(GP_LOG_INFO, (const char *)arg, "server notice: %s", message);
}

void gp__pg_log_notices(PGconn *c, const char *component)
{
    PQsetNoticeProcessor(c, notice_to_log, (void *)component);
}

gp_status_t gp__pg_select(PGconn *pg, const char *sql, PGresult **out, gp_error_t *err)
{
    *out = PQexec(pg, sql);
    if (PQresultStatus(*out) == PGRES_TUPLES_OK)
        return GP_OK;
    gp_status_t st = gp__error_from_pg(pg, *out, err);
    PQclear(*out);
    *out = NULL;
    return st;
}
