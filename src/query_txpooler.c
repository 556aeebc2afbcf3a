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
 *   1. RESET ALL: settings (SET, set_config(..., false), placeholders
 *      included). It leaves the role alone, so the verdict still sees it;
 *   2. the verdict: the unit fails (division by zero inside the library's
 *      own statement, reported as GP_ERR_INVALID naming the cause) when the
 *      server shows state that would outlive the transaction and that the
 *      caller may have meant to keep: a switched role, a temporary schema.
 *      The failure rolls the whole unit back, which undoes both. The same
 *      statement releases session advisory locks and sets the client's
 *      application_name back (RESET ALL gave it the server connection's);
 *   3. the neutralisers, which undo the rest whatever SQL spelled it:
 *      UNLISTEN * (a LISTEN takes effect only at commit: this cancels it),
 *      DISCARD SEQUENCES (currval/lastval would tell the next client our
 *      sequence values), DEALLOCATE ALL (the library names no statement
 *      here), CLOSE ALL (holdable cursors).
 * A rollback is followed, in the same message, by what a rollback does not
 * undo (session advisory locks, SQL-level prepared statements, sequence
 * values: GP__TXP_ROLLBACK).
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

/* The verdict: division by zero inside the library's own statement when
 * the server shows what would outlive the transaction and what the caller
 * may have meant to keep: a switched role, or a temporary schema (an
 * object in it would be the next client's; the schema itself is forgotten
 * when the transaction that made it rolls back). It also releases session
 * advisory locks (should the division fail first, the rollback that
 * follows does). Two cheap tests: looking into pg_prepared_statements,
 * pg_cursors or pg_depend here cost half the throughput through the pooler
 * (BENCHMARKS.md), so prepared statements and cursors are neutralised
 * instead. */
#define VERDICT                                                                                                \
    "SELECT 1 OPERATOR(pg_catalog./) (CASE WHEN CURRENT_USER OPERATOR(pg_catalog.<>) SESSION_USER"             \
    " OR pg_catalog.pg_my_temp_schema() OPERATOR(pg_catalog.<>) 0::pg_catalog.oid"                            \
    " THEN 0 ELSE 1 END), pg_catalog.pg_advisory_unlock_all()"

const char gp__txp_verdict_sql[] = VERDICT;
/* The same, setting application_name back to $1 in the same statement:
 * after RESET ALL it is the server connection's, and PgBouncer, which
 * passes the server's report on to the client it serves, would keep that
 * as the client's own (gp__txp_app_name). */
const char gp__txp_verdict_app_sql[] = VERDICT ", pg_catalog.set_config('application_name', $1, false)";

/* RESET ALL runs before the verdict (it does not reset the role, which the
 * verdict checks); the neutralisers after it undo what the verdict lets
 * through: a LISTEN, the session's sequence values, SQL-level prepared
 * statements and holdable cursors (see the top of this file). */
const char gp__txp_reset_sql[] = "RESET ALL";
const char *const gp__txp_neutralise_sql[GP__TXP_NEUTRALISE_COUNT] = {
    "UNLISTEN *", "DISCARD SEQUENCES", "DEALLOCATE ALL", "CLOSE ALL",
};

/* The same as one simple-query message, around the verdict. */
#define COMMIT_HEAD "RESET ALL; " VERDICT
#define COMMIT_TAIL "; UNLISTEN *; DISCARD SEQUENCES; DEALLOCATE ALL; CLOSE ALL; COMMIT"

/* Skip whitespace, comments (-- to the end of the line, which for
 * PostgreSQL's lexer is \n or \r, and nested block comments) and empty
 * statements (";COMMIT" is one command to the server); NULL for an
 * unterminated block comment. */
const char *gp__sql_skip_blank(const char *s)
{
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v' || *s == ';')
            s++;
        if (s[0] == '-' && s[1] == '-') {
            while (*s && *s != '\n' && *s != '\r')
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
bool gp__sql_keyword(const char *s, const char *word, const char **next)
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
    const char *s = gp__sql_skip_blank(sql), *rest;
    if (!s)
        return gp__client_error(err, GP_ERR_INVALID, "unterminated comment in the SQL");
    static const char *const ending[] = {"COMMIT", "END", "ABORT", "BEGIN", "START"};
    const char *verb = NULL;
    for (size_t i = 0; i < sizeof ending / sizeof *ending && !verb; i++)
        if (gp__sql_keyword(s, ending[i], NULL))
            verb = ending[i];
    if (!verb && gp__sql_keyword(s, "ROLLBACK", &rest)) {
        const char *t = gp__sql_skip_blank(rest);
        if (t && (gp__sql_keyword(t, "WORK", &rest) || gp__sql_keyword(t, "TRANSACTION", &rest)))
            t = gp__sql_skip_blank(rest);
        if (!t || !gp__sql_keyword(t, "TO", NULL)) /* ROLLBACK [WORK|TRANSACTION] TO SAVEPOINT keeps the transaction */
            verb = "ROLLBACK";
    }
    if (!verb && gp__sql_keyword(s, "PREPARE", &rest)) {
        const char *t = gp__sql_skip_blank(rest);
        if (t && gp__sql_keyword(t, "TRANSACTION", NULL))
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
                     "session has a switched role (SET ROLE, and SET LOCAL ROLE too: before the commit the check "
                     "cannot tell them apart) or a temporary schema, which would outlive the transaction on a "
                     "server connection that other clients of the pooler share; the transaction was rolled back. "
                     "Use a direct connection (DATABASE_MIGRATION_URL) for work under another role or with "
                     "temporary tables");
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

bool gp__txp_app_name(gp_conn_t *conn, char *out, size_t len)
{
    /* RESET ALL gives application_name the server connection's value, not
     * this client's, and PgBouncer, which passes the server's report on to
     * the client it serves, then keeps that as the client's own: from its
     * next unit on the client would run with the pooler's name. So the
     * units set it back to what the client connected with. */
    if (conn->txpooler_app_of == conn->pg) { /* looked up for this connection already */
        size_t n = strlen(conn->txpooler_app);
        if (!n || n >= len)
            return false;
        memcpy(out, conn->txpooler_app, n + 1);
        return true;
    }
    conn->txpooler_app_of = conn->pg;
    conn->txpooler_app[0] = 0;
    PQconninfoOption *o = PQconninfo(conn->pg);
    const char *name = NULL, *fallback = NULL;
    for (PQconninfoOption *k = o; k && k->keyword; k++) {
        if (k->val && *k->val && strcmp(k->keyword, "application_name") == 0)
            name = k->val;
        else if (k->val && *k->val && strcmp(k->keyword, "fallback_application_name") == 0)
            fallback = k->val;
    }
    if (!name)
        name = fallback;
    bool ok = name && strlen(name) < len && strlen(name) < sizeof conn->txpooler_app;
    if (ok) {
        memcpy(out, name, strlen(name) + 1);
        memcpy(conn->txpooler_app, name, strlen(name) + 1);
    }
    PQconninfoFree(o);
    return ok;
}

gp_status_t gp__txp_commit(gp_conn_t *conn, bool *rolled_back, gp_error_t *err)
{
    *rolled_back = false;
    PGTransactionStatusType ts = PQtransactionStatus(conn->pg);
    if (ts == PQTRANS_INERROR) { /* COMMIT would only roll back: do it with the clean-up */
        *rolled_back = true;
        return gp__txp_rollback(conn, err);
    }
    char app[64], msg[sizeof COMMIT_HEAD + sizeof COMMIT_TAIL + 200];
    const char *sql = COMMIT_HEAD COMMIT_TAIL;
    if (gp__txp_app_name(conn, app, sizeof app)) {
        char *lit = PQescapeLiteral(conn->pg, app, strlen(app));
        if (lit && snprintf(msg, sizeof msg, "%s, pg_catalog.set_config('application_name', %s, false)%s",
                            COMMIT_HEAD, lit, COMMIT_TAIL) < (int)sizeof msg)
            sql = msg;
        PQfreemem(lit);
    }
    PGresult *r = gp__exec(conn, sql);
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

gp_status_t gp__txp_in_tx(gp_conn_t *conn, const char *what, const char *sql, gp_error_t *err)
{
    if (!conn || !conn->pg || !conn->txpooler)
        return GP_OK;
    if (PQtransactionStatus(conn->pg) == PQTRANS_IDLE)
        return gp__client_error(err, GP_ERR_INVALID,
                                "%s through a transaction pooler (DATABASE_POOLER=transaction) runs inside a "
                                "transaction, whose commit checks and clears the session state it leaves: call "
                                "gp_tx_begin (or use a tenant transaction) first",
                                what);
    return sql ? gp__txp_check_sql(sql, err) : GP_OK;
}
