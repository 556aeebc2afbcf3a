/* query_txpooler.c — through a transaction pooler (DATABASE_POOLER=transaction,
 * PgBouncer's pool_mode=transaction): the rules that keep one client's
 * session state from reaching another's.
 *
 * Such a pooler gives the server connection to another client whenever a
 * transaction ends (ReadyForQuery reports "idle"). Whatever a session
 * holds at that moment — a setting made with SET or set_config(..., false),
 * a LISTEN, a SQL-level prepared statement, a holdable cursor, a temporary
 * object, a session advisory lock, a switched role — is then the next
 * client's, whoever it is. So every unit of work is one transaction of the
 * library's own (a one-shot statement or pipeline is wrapped in BEGIN ...
 * COMMIT; a caller's transaction is ended by gp_tx_commit/rollback), and
 * just before its COMMIT, in the same message or pipeline (so on the same
 * server connection):
 *   1. the verdict: the unit fails (division by zero inside the library's
 *      own statement, reported as GP_ERR_INVALID naming the cause) when the
 *      server shows state that would outlive the transaction and that the
 *      caller may have meant to keep: a switched role, a temporary object,
 *      a SQL-level prepared statement, a holdable cursor. The failure rolls
 *      the whole unit back;
 *   2. the neutralisers, which undo the rest whatever SQL spelled it: RESET
 *      ALL and RESET ROLE (settings, including placeholders), CLOSE ALL,
 *      UNLISTEN * (a LISTEN takes effect only at commit: this cancels it),
 *      DEALLOCATE ALL (the library names no statement here), DISCARD TEMP,
 *      DISCARD SEQUENCES (currval/lastval would tell the next client our
 *      sequence values), pg_advisory_unlock_all().
 * A rollback is followed, in the same message, by what a rollback does not
 * undo (session advisory locks, SQL-level prepared statements).
 * Statements that would end the library's transaction from inside it
 * (COMMIT, ROLLBACK, END, ABORT, PREPARE TRANSACTION, and BEGIN, which
 * would pretend to open one) are refused before anything is sent: a
 * caller's COMMIT would let state escape before the verdict ran. Every
 * statement is unnamed (DATABASE_STATEMENT_CACHE is forced to 0), and the
 * statement timeout (DATABASE_STATEMENT_TIMEOUT) is set in each
 * transaction, since PgBouncer refuses it as a startup option. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "query_internal.h"

/* Keep the temporary-object test in step with the pool's sweep (pool.c). */
const char gp__txp_verdict_sql[] =
    "SELECT 1 OPERATOR(pg_catalog./) (CASE WHEN CURRENT_USER OPERATOR(pg_catalog.<>) SESSION_USER"
    " OR EXISTS (SELECT FROM pg_catalog.pg_depend"
    "  WHERE refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass"
    "    AND refobjid OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema())"
    " OR EXISTS (SELECT FROM pg_catalog.pg_prepared_statements WHERE from_sql)"
    " OR EXISTS (SELECT FROM pg_catalog.pg_cursors WHERE is_holdable)"
    " THEN 0 ELSE 1 END)";

const char *const gp__txp_neutralise_sql[GP__TXP_NEUTRALISE_COUNT] = {
    "RESET ALL", "RESET ROLE", "CLOSE ALL", "UNLISTEN *", "DEALLOCATE ALL", "DISCARD TEMP", "DISCARD SEQUENCES",
    "SELECT pg_catalog.pg_advisory_unlock_all()",
};

/* The verdict, the neutralisers and COMMIT as one simple-query message. */
static const char COMMIT_MSG[] =
    "SELECT 1 OPERATOR(pg_catalog./) (CASE WHEN CURRENT_USER OPERATOR(pg_catalog.<>) SESSION_USER"
    " OR EXISTS (SELECT FROM pg_catalog.pg_depend"
    "  WHERE refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass"
    "    AND refobjid OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema())"
    " OR EXISTS (SELECT FROM pg_catalog.pg_prepared_statements WHERE from_sql)"
    " OR EXISTS (SELECT FROM pg_catalog.pg_cursors WHERE is_holdable)"
    " THEN 0 ELSE 1 END);"
    " RESET ALL; RESET ROLE; CLOSE ALL; UNLISTEN *; DEALLOCATE ALL; DISCARD TEMP; DISCARD SEQUENCES;"
    " SELECT pg_catalog.pg_advisory_unlock_all(); COMMIT";

/* Skip whitespace and comments (-- to the end of the line, and nested
 * block comments); NULL for an unterminated block comment. */
static const char *skip_blank(const char *s)
{
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
            s++;
        if (s[0] == '-' && s[1] == '-') {
            while (*s && *s != '\n')
                s++;
            continue;
        }
        if (s[0] == '/' && s[1] == '*') {
            int depth = 0;
            while (*s) {
                if (s[0] == '/' && s[1] == '*') {
                    depth++;
                    s += 2;
                } else if (s[0] == '*' && s[1] == '/') {
                    s += 2;
                    if (--depth == 0)
                        break;
                } else {
                    s++;
                }
            }
            if (depth)
                return NULL;
            continue;
        }
        return s;
    }
}

/* The keyword at s (letters, digits, _ and $ as PostgreSQL's lexer takes
 * them), compared without case; *next is what follows. */
static bool keyword(const char *s, const char *word, const char **next)
{
    size_t n = strlen(word);
    if (strncasecmp(s, word, n) != 0)
        return false;
    char c = s[n];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$' ||
        (unsigned char)c >= 0x80)
        return false;
    if (next)
        *next = s + n;
    return true;
}

gp_status_t gp__txp_check_sql(const char *sql, gp_error_t *err)
{
    const char *s = skip_blank(sql), *rest;
    if (!s)
        return gp__client_error(err, GP_ERR_INVALID, "unterminated comment in the SQL");
    static const char *const ending[] = {"COMMIT", "END", "ABORT", "BEGIN", "START"};
    const char *verb = NULL;
    for (size_t i = 0; i < sizeof ending / sizeof *ending && !verb; i++)
        if (keyword(s, ending[i], NULL))
            verb = ending[i];
    if (!verb && keyword(s, "ROLLBACK", &rest)) {
        const char *t = skip_blank(rest);
        if (!t || !keyword(t, "TO", NULL)) /* ROLLBACK TO SAVEPOINT keeps the transaction */
            verb = "ROLLBACK";
    }
    if (!verb && keyword(s, "PREPARE", &rest)) {
        const char *t = skip_blank(rest);
        if (t && keyword(t, "TRANSACTION", NULL))
            verb = "PREPARE TRANSACTION";
    }
    if (!verb)
        return GP_OK;
    return gp__client_error(err, GP_ERR_INVALID,
                            "%s is not allowed as a statement through a transaction pooler (DATABASE_POOLER="
                            "transaction): every call is a transaction of the library's, which checks it for "
                            "session state before it commits; use gp_tx_begin/gp_tx_commit/gp_tx_rollback (or "
                            "gp_tx_run, gp_tenant_run) for a transaction of several calls",
                            verb);
}

static bool is_verdict_failure(const gp_error_t *e) { return e && strcmp(e->sqlstate, "22012") == 0; }

/* The verdict failed: say what the server showed. */
static void refused(gp_error_t *err)
{
    gp__client_error(err, GP_ERR_INVALID,
                     "session-level state through a transaction pooler (DATABASE_POOLER=transaction): the "
                     "statement left a switched role, a temporary object, a SQL-level prepared statement or a "
                     "holdable cursor, which would outlive the transaction on a server connection that other "
                     "clients of the pooler share; the transaction was rolled back. Use transaction-local forms "
                     "(SET LOCAL, set_config(..., true), a cursor without HOLD), or a direct connection "
                     "(DATABASE_MIGRATION_URL) for session work");
}

void gp__txp_refused(gp_error_t *err) { refused(err); }


gp_status_t gp__txp_rollback(gp_conn_t *conn, gp_error_t *err)
{
    PGresult *r = gp__exec(conn, GP__TXP_ROLLBACK);
    gp_status_t st = GP_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        st = gp__fail(conn, r, err);
    else if (err)
        gp_error_clear(err);
    PQclear(r);
    if (st != GP_OK)
        conn->discard = true;
    return st;
}

gp_status_t gp__txp_commit(gp_conn_t *conn, bool *rolled_back, gp_error_t *err)
{
    *rolled_back = false;
    PGTransactionStatusType ts = PQtransactionStatus(conn->pg);
    if (ts == PQTRANS_INERROR) { /* COMMIT would only roll back: do it with the clean-up */
        *rolled_back = true;
        return gp__txp_rollback(conn, err);
    }
    PGresult *r = gp__exec(conn, COMMIT_MSG);
    ExecStatusType rs = PQresultStatus(r);
    if (rs == PGRES_COMMAND_OK) {
        *rolled_back = strcmp(PQcmdStatus(r), "ROLLBACK") == 0;
        PQclear(r);
        if (err)
            gp_error_clear(err);
        return GP_OK;
    }
    gp_status_t st = gp__fail(conn, r, err);
    bool verdict = r && PQtransactionStatus(conn->pg) == PQTRANS_INERROR && err && is_verdict_failure(err);
    PQclear(r);
    if (conn->discard || PQtransactionStatus(conn->pg) != PQTRANS_INERROR)
        return st;
    /* The verdict (or a neutraliser) failed inside the transaction: it is
     * aborted, and still on the same server connection. */
    gp_error_t rb;
    gp__txp_rollback(conn, &rb);
    *rolled_back = true;
    if (verdict) {
        refused(err);
        return GP_ERR_INVALID;
    }
    return st;
}

int gp__txp_timeout_ms(const gp_conn_t *conn) { return conn->txpooler ? conn->txpooler_timeout_ms : 0; }
