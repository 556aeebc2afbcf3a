/* pgerror.c — turning libpq failures into classified, redacted gp_error_t
 * reports; shared by the pool and the query layer. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "pool_internal.h"

static bool starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

bool gp__sqlstate_is_fatal(const char *s)
{
    if (!s || !*s)
        return false;
    return starts(s, "08") || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0;
}

void gp__classify_sqlstate(const char *s, gp_error_t *err)
{
    if (!err)
        return;
    gp_error_class_t k = GP_ECLASS_INTERNAL;
    int retriable = 0;
    if (!s || !*s) {
        k = GP_ECLASS_CONNECTION;
        retriable = 1;
    } else if (gp__sqlstate_is_fatal(s)) {
        k = GP_ECLASS_CONNECTION;
        retriable = 1;
    } else if (strcmp(s, "57014") == 0) {
        k = GP_ECLASS_TIMEOUT; /* query_canceled: statement timeout or cancel */
        retriable = 1;
    } else if (strcmp(s, "23505") == 0) {
        k = GP_ECLASS_UNIQUE;
    } else if (strcmp(s, "23503") == 0) {
        k = GP_ECLASS_FOREIGN_KEY;
    } else if (strcmp(s, "23514") == 0) {
        k = GP_ECLASS_CHECK;
    } else if (strcmp(s, "23502") == 0) {
        k = GP_ECLASS_NOT_NULL;
    } else if (starts(s, "23")) {
        k = GP_ECLASS_CONSTRAINT;
    } else if (strcmp(s, "40001") == 0) {
        k = GP_ECLASS_SERIALIZATION;
        retriable = 1;
    } else if (strcmp(s, "40P01") == 0) {
        k = GP_ECLASS_DEADLOCK;
        retriable = 1;
    } else if (starts(s, "40")) {
        k = GP_ECLASS_TRANSACTION;
    } else if (strcmp(s, "42501") == 0) {
        k = GP_ECLASS_PRIVILEGE; /* also row-level security violations */
    } else if (starts(s, "42")) {
        k = GP_ECLASS_SYNTAX;
    } else if (starts(s, "22")) {
        k = GP_ECLASS_DATA;
    } else if (starts(s, "28")) {
        k = GP_ECLASS_AUTH;
    } else if (starts(s, "53")) {
        k = GP_ECLASS_RESOURCE;
        retriable = 1;
    } else if (starts(s, "25")) {
        k = GP_ECLASS_TRANSACTION;
    } else if (strcmp(s, "55P03") == 0) {
        k = GP_ECLASS_TIMEOUT; /* lock_not_available (lock_timeout) */
        retriable = 1;
    }
    err->klass = k;
    err->retriable = retriable;
}

static void copy_clean(char *dst, size_t len, const char *src)
{
    char tmp[1024];
    gp_redact(src ? src : "", tmp, sizeof tmp);
    size_t n = strlen(tmp);
    while (n && (tmp[n - 1] == '\n' || tmp[n - 1] == ' '))
        tmp[--n] = 0;
    for (char *p = tmp; *p; p++)
        if (*p == '\n')
            *p = ' ';
    snprintf(dst, len, "%s", tmp);
}

bool gp__server_read_only(PGconn *pg)
{
    /* Both are reported by the server (PostgreSQL 14+) whenever they change,
     * so libpq knows them without a round trip. */
    const char *standby = PQparameterStatus(pg, "in_hot_standby");
    const char *ro = PQparameterStatus(pg, "default_transaction_read_only");
    return (standby && strcmp(standby, "on") == 0) || (ro && strcmp(ro, "on") == 0);
}

gp_status_t gp__error_from_pg(PGconn *pg, const PGresult *res, gp_error_t *err)
{
    gp_error_t local;
    if (!err)
        err = &local;
    gp_error_clear(err);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    bool broken = !pg || PQstatus(pg) == CONNECTION_BAD;
    if (state)
        snprintf(err->sqlstate, sizeof err->sqlstate, "%s", state);
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (primary)
        copy_clean(err->message, sizeof err->message, primary);
    else if (res && *PQresultErrorMessage(res))
        copy_clean(err->message, sizeof err->message, PQresultErrorMessage(res));
    else
        copy_clean(err->message, sizeof err->message, pg ? PQerrorMessage(pg) : "no connection");
    if (res) {
        copy_clean(err->detail, sizeof err->detail, PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
        copy_clean(err->hint, sizeof err->hint, PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
        copy_clean(err->constraint_name, sizeof err->constraint_name,
                   PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME));
        copy_clean(err->table_name, sizeof err->table_name, PQresultErrorField(res, PG_DIAG_TABLE_NAME));
        copy_clean(err->column_name, sizeof err->column_name, PQresultErrorField(res, PG_DIAG_COLUMN_NAME));
    }
    gp__classify_sqlstate(state, err);
    if (broken && !state) {
        err->klass = GP_ECLASS_CONNECTION;
        err->retriable = 1;
    }
    switch (err->klass) {
    case GP_ECLASS_CONNECTION: err->status = GP_ERR_CONNECT; break;
    case GP_ECLASS_AUTH: err->status = GP_ERR_AUTH; break;
    case GP_ECLASS_TIMEOUT: err->status = strcmp(err->sqlstate, "57014") == 0 ? GP_ERR_CANCELED : GP_ERR_TIMEOUT; break;
    default: err->status = GP_ERR_SERVER; break;
    }
    if (strcmp(err->sqlstate, "57014") == 0 && strstr(err->message, "statement timeout"))
        err->status = GP_ERR_TIMEOUT;
    return err->status;
}

gp_status_t gp__error_from_connect(PGconn *pg, gp_error_t *err)
{
    gp_error_t local;
    if (!err)
        err = &local;
    gp__error_from_pg(pg, NULL, err); /* connection class, retriable, redacted */
    const char *phrase = gp__conninfo_error_phrase(pg ? PQerrorMessage(pg) : NULL);
    if (phrase) /* libpq's text quotes the connection string, maybe its password */
        snprintf(err->message, sizeof err->message, "libpq cannot parse the connection string: %s", phrase);
    const char *m = err->message;
    const char *state = "";
    if (strstr(m, "password authentication failed") || strstr(m, "no password supplied") ||
        strstr(m, "SCRAM authentication") || strstr(m, "authentication failed")) {
        state = "28P01";
    } else if (strstr(m, "no pg_hba.conf entry") || (strstr(m, "role \"") && strstr(m, "does not exist"))) {
        state = "28000";
    } else if (strstr(m, "database \"") && strstr(m, "does not exist")) {
        state = "3D000";
    } else if (strstr(m, "starting up") || strstr(m, "shutting down") || strstr(m, "in recovery mode") ||
               strstr(m, "not yet accepting connections")) {
        state = "57P03";
    } else if (strstr(m, "too many clients") || strstr(m, "connection slots are reserved")) {
        state = "53300";
    }
    snprintf(err->sqlstate, sizeof err->sqlstate, "%s", state);
    if (*state)
        gp__classify_sqlstate(state, err);
    if (err->klass == GP_ECLASS_AUTH) {
        err->status = GP_ERR_AUTH;
    } else {
        err->status = GP_ERR_CONNECT;
        if (strcmp(state, "3D000") == 0) {
            err->klass = GP_ECLASS_CONNECTION; /* configuration problem: retrying will not help */
            err->retriable = 0;
        }
    }
    return err->status;
}
