/* query.c — parameterised execution on a leased connection: the
 * per-connection prepared-statement cache, session-state tracking, error
 * reporting, and cancellation.
 *
 * Transfer format. Results are always requested in BINARY format, and
 * fixed-size parameters are sent in binary. Measured with
 * scripts/format-experiment (bench/format_experiment.c; figures in
 * BENCHMARKS.md, "Queries"): fetching and decoding 20,000 rows of (bigint,
 * double, timestamptz, uuid, numeric, text, 64-byte bytea) over loopback
 * took a median 166 and 173 ms in text against 108 and 95 ms in binary
 * (two runs of 7, shared 2-core machine: binary 1.5-1.8x faster), with
 * 2.5 MB of values instead of 4.3 MB. Binary also makes timestamptz
 * independent of the session's DateStyle/TimeZone and lets bytea and text
 * be borrowed from the result without copying. Its costs: numeric must be
 * converted from base 10000 (result.c) and types without a binary form
 * must be cast to text in SQL.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "query_internal.h"

/* 64 unpredictable bits for a statement name. getrandom() does not fail
 * for 8 bytes once the pool is initialised; should it, the fallback still
 * never repeats on a connection (a counter mixed with the address and the
 * clock), so only unpredictability is lost, and a squatter only makes the
 * PREPARE fail (the connection is then discarded). */
static uint64_t name_bits(void)
{
    uint64_t v;
    if (getrandom(&v, sizeof v, 0) == (ssize_t)sizeof v)
        return v;
    static _Atomic uint64_t fallback;
    return gp__rand64() ^ (atomic_fetch_add(&fallback, 1) * 0x9e3779b97f4a7c15ULL);
}

/* ---- statement cache -----------------------------------------------------
 * A hash table (chained) over an LRU list of prepared statements, keyed by
 * the SQL text and the parameter type OIDs. Names are "gp_" and 64 random
 * bits from the kernel's CSPRNG: never reused, so a stale name can never
 * run another statement, and never predictable, so SQL on the connection
 * cannot claim the next name before the library does (a squatted name
 * makes the PREPARE fail with 42P05: the connection is discarded). SQL
 * that replaces one of these statements (DEALLOCATE, then PREPARE under
 * the same name) makes the server report DEALLOCATE, PREPARE or DO, which
 * the library answers with a full reset before anyone else leases the
 * connection (gp__tag_effects). Evicted names wait in `dealloc` and are
 * deallocated in one round trip once DEALLOC_BATCH accumulate. */

#define DEALLOC_BATCH 16

struct gp__stmt {
    gp__stmt_t *hnext;         /* hash chain */
    gp__stmt_t *prev, *next;   /* LRU list, most recent first */
    uint64_t hash;
    int nparams;
    bool confirmed;            /* the server acknowledged the PREPARE */
    char name[24];
    Oid *types;
    char sql[];                /* then the types */
};

struct gp__qstate {
    PGconn *pg;                /* the connection this cache describes */
    int capacity;              /* the pool's own capacity, or -1: the process-wide one */
    gp__stmt_t **buckets;
    size_t nbuckets;
    gp__stmt_t lru;            /* sentinel */
    int count;
    bool dealloc_all;          /* the server may hold statements we forgot */
    int ndealloc;
    char dealloc[DEALLOC_BATCH][24];
};

static _Atomic int cache_capacity = GP_STATEMENT_CACHE_DEFAULT;

gp_status_t gp_query_set_statement_cache(int capacity)
{
    if (capacity < 0 || capacity > 10000)
        return GP_ERR_INVALID;
    atomic_store(&cache_capacity, capacity);
    return GP_OK;
}

int gp_query_statement_cache(void) { return atomic_load(&cache_capacity); }

static int capacity_of(const gp__qstate_t *qs)
{
    return qs->capacity >= 0 ? qs->capacity : atomic_load_explicit(&cache_capacity, memory_order_relaxed);
}

static void lru_unlink(gp__stmt_t *s)
{
    s->prev->next = s->next;
    s->next->prev = s->prev;
}

static void lru_push_front(gp__qstate_t *qs, gp__stmt_t *s)
{
    s->next = qs->lru.next;
    s->prev = &qs->lru;
    qs->lru.next->prev = s;
    qs->lru.next = s;
}

static void hash_unlink(gp__qstate_t *qs, gp__stmt_t *s)
{
    gp__stmt_t **pp = &qs->buckets[s->hash & (qs->nbuckets - 1)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
}

static void stmt_remove(gp__qstate_t *qs, gp__stmt_t *s)
{
    hash_unlink(qs, s);
    lru_unlink(s);
    qs->count--;
    free(s);
}

static void qstate_free(void *p)
{
    gp__qstate_t *qs = p;
    if (!qs)
        return;
    while (qs->lru.next != &qs->lru)
        stmt_remove(qs, qs->lru.next);
    free(qs->buckets);
    free(qs);
}

static bool release_sweep(gp_conn_t *conn);

gp__qstate_t *gp__qstate(gp_conn_t *conn)
{
    gp__qstate_t *qs = conn->query_state;
    if (qs && qs->pg == conn->pg)
        return qs;
    if (qs) { /* a different libpq connection under the same handle: start afresh */
        conn->query_state_free(qs);
        conn->query_state = NULL;
    }
    qs = calloc(1, sizeof *qs);
    if (!qs)
        return NULL;
    qs->nbuckets = 256;
    qs->buckets = calloc(qs->nbuckets, sizeof *qs->buckets);
    if (!qs->buckets) {
        free(qs);
        return NULL;
    }
    qs->pg = conn->pg;
    qs->capacity = conn->own_statement_cache ? conn->statement_cache : -1;
    qs->lru.next = qs->lru.prev = &qs->lru;
    conn->query_state = qs;
    conn->query_state_free = qstate_free;
    conn->sweep = release_sweep;
    return qs;
}

/* FNV-1a steps over eight bytes at a time, then murmur3's finaliser so that the
 * bucket (low) bits depend on every byte. */
static uint64_t key_hash(const char *sql, size_t len, int n, const Oid *types)
{
    const uint64_t prime = 1099511628211ULL;
    uint64_t h = 1469598103934665603ULL, w;
    size_t i = 0;
    for (; len - i >= 8; i += 8) {
        memcpy(&w, sql + i, 8);
        h = (h ^ w) * prime;
    }
    if (i < len) {
        w = 0;
        memcpy(&w, sql + i, len - i);
        h = (h ^ w) * prime;
    }
    for (int k = 0; k < n; k++)
        h = (h ^ types[k]) * prime;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

const char *gp__stmt_lookup(gp__qstate_t *qs, const char *sql, const gp__params_t *p, gp__stmt_t **entry,
                            bool *nomem)
{
    *entry = NULL;
    *nomem = false;
    if (capacity_of(qs) == 0)
        return NULL;
    size_t len = strlen(sql);
    uint64_t h = key_hash(sql, len, p->n, p->types);
    for (gp__stmt_t *s = qs->buckets[h & (qs->nbuckets - 1)]; s; s = s->hnext) {
        if (s->hash == h && s->nparams == p->n && strcmp(s->sql, sql) == 0 &&
            (p->n == 0 || memcmp(s->types, p->types, (size_t)p->n * sizeof(Oid)) == 0)) {
            if (qs->lru.next != s) {
                lru_unlink(s);
                lru_push_front(qs, s);
            }
            *entry = s;
            return s->confirmed ? s->name : NULL;
        }
    }
    gp__stmt_t *s = malloc(sizeof *s + len + 1 + sizeof(Oid) * (size_t)p->n + sizeof(Oid));
    if (!s) {
        *nomem = true;
        return NULL;
    }
    s->hash = h;
    s->nparams = p->n;
    s->confirmed = false;
    snprintf(s->name, sizeof s->name, "gp_%016llx", (unsigned long long)name_bits());
    memcpy(s->sql, sql, len + 1);
    /* the types follow the text, aligned */
    size_t off = (len + 1 + sizeof(Oid) - 1) / sizeof(Oid) * sizeof(Oid);
    s->types = (Oid *)(void *)(s->sql + off);
    if (p->n)
        memcpy(s->types, p->types, (size_t)p->n * sizeof(Oid));
    s->hnext = qs->buckets[h & (qs->nbuckets - 1)];
    qs->buckets[h & (qs->nbuckets - 1)] = s;
    lru_push_front(qs, s);
    qs->count++;
    *entry = s;
    return NULL;
}

const char *gp__stmt_name(const gp__stmt_t *s) { return s->name; }
void gp__stmt_confirm(gp__stmt_t *s) { s->confirmed = true; }

void gp__stmt_drop(gp__qstate_t *qs, gp__stmt_t *s)
{
    if (s)
        stmt_remove(qs, s);
}

void gp__stmt_forget_all(gp__qstate_t *qs, bool server_may_keep)
{
    while (qs->lru.next != &qs->lru)
        stmt_remove(qs, qs->lru.next);
    qs->ndealloc = 0;
    qs->dealloc_all = server_may_keep;
}

/* Run a utility command of our own (names we generated, no user values). */
static bool run_simple(gp_conn_t *conn, const char *sql)
{
    PGresult *r = gp__exec(conn, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        gp_error_t e;
        gp__fail(conn, r, &e);
        gp__log_fields_t f = gp__log_fields_of(&e);
        gp__logf(&f, GP_LOG_WARN, "query", "%s failed: %s", sql, e.message);
    }
    PQclear(r);
    return ok;
}

static bool flush_deallocs(gp_conn_t *conn, gp__qstate_t *qs)
{
    char sql[DEALLOC_BATCH * 40] = "";
    for (int i = 0; i < qs->ndealloc; i++)
        gp__bufappend(sql, sizeof sql, "DEALLOCATE %s;", qs->dealloc[i]);
    qs->ndealloc = 0;
    if (run_simple(conn, sql))
        return true;
    qs->dealloc_all = true; /* resynchronise at the next chance */
    return false;
}

void gp__stmt_enforce(gp_conn_t *conn, gp__qstate_t *qs)
{
    int cap = capacity_of(qs);
    PGTransactionStatusType ts = PQtransactionStatus(conn->pg);
    bool can_talk = ts == PQTRANS_IDLE || ts == PQTRANS_INTRANS; /* not in a failed transaction */
    if (qs->dealloc_all) {
        if (can_talk && run_simple(conn, "DEALLOCATE ALL"))
            gp__stmt_forget_all(qs, false);
        return;
    }
    while (qs->count > cap && qs->lru.prev != &qs->lru) {
        if (qs->ndealloc == DEALLOC_BATCH) {
            if (!can_talk || !flush_deallocs(conn, qs))
                return; /* over capacity until the transaction ends: bounded by the batch */
        }
        gp__stmt_t *victim = qs->lru.prev;
        if (victim->confirmed)
            memcpy(qs->dealloc[qs->ndealloc++], victim->name, sizeof victim->name);
        stmt_remove(qs, victim);
    }
    /* With the cache off (PgBouncer), leave nothing behind on the server. */
    if (cap == 0 && qs->ndealloc > 0 && can_talk)
        flush_deallocs(conn, qs);
}

/* ---- what a statement did to the session ------------------------------------- */

static bool tag_is(const char *tag, const char *word)
{
    size_t n = strlen(word);
    return strncmp(tag, word, n) == 0 && (tag[n] == 0 || tag[n] == ' ');
}

unsigned gp__tag_effects(const char *tag)
{
    if (!tag || !*tag) /* the empty query */
        return 0;
    /* Commands that leave nothing in the session by themselves. */
    static const char *const plain[] = {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "SHOW", "EXPLAIN",
                                        "FETCH", "MOVE", "BEGIN", "START TRANSACTION", "SAVEPOINT", "RELEASE",
                                        "LOCK TABLE"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        if (tag_is(tag, plain[i]))
            return 0;
    if (strcmp(tag, "COMMIT") == 0 || strcmp(tag, "ROLLBACK") == 0)
        return GP__EFFECT_ENDS_TX;
    unsigned e = GP__EFFECT_SESSION;
    if (tag_is(tag, "DEALLOCATE") || strcmp(tag, "DISCARD ALL") == 0)
        e |= GP__EFFECT_DROPS_STMTS;
    if (tag_is(tag, "PREPARE TRANSACTION") || tag_is(tag, "COMMIT") || tag_is(tag, "ROLLBACK"))
        e |= GP__EFFECT_ENDS_TX;
    return e;
}

unsigned gp__caller_done(gp_conn_t *conn, gp__qstate_t *qs, const PGresult *res)
{
    unsigned e = gp__tag_effects(PQcmdStatus((PGresult *)res));
    if (e & GP__EFFECT_SESSION)
        conn->reset_needed = true;
    if ((e & GP__EFFECT_DROPS_STMTS) && qs)
        gp__stmt_forget_all(qs, true); /* which ones is unknown: DEALLOCATE ALL at the next chance */
    return e;
}

/* ---- errors ---------------------------------------------------------------- */

gp_status_t gp__fail(gp_conn_t *conn, const PGresult *res, gp_error_t *err)
{
    gp_error_t local;
    if (!err)
        err = &local;
    if (conn && conn->timed_out && !res) {
        /* The server did not answer in time (frozen, partitioned, or just
         * slower than the deadline): what it did is unknown. */
        conn->discard = true;
        gp__client_error(err, GP_ERR_TIMEOUT, "no answer from the server within %s (%d ms); the statement may "
                         "or may not have run, and the connection is closed", gp__deadline_source(conn),
                         gp__deadline_ms(conn));
        err->klass = GP_ECLASS_CONNECTION;
        err->retriable = 1;
        return GP_ERR_TIMEOUT;
    }
    gp_status_t st = gp__error_from_pg(conn ? conn->pg : NULL, res, err);
    if (conn && conn->pg && strcmp(err->sqlstate, "25006") == 0 && !conn->read_lease &&
        (!conn->tx_read_only || gp__server_read_only(conn->pg))) {
        /* read_only_sql_transaction outside a READ ONLY transaction of the
         * caller's: the server is read-only (a standby, or made read-only),
         * the wrong server for this work. */
        err->klass = GP_ECLASS_WRONG_SERVER;
        err->retriable = 1;
        snprintf(err->hint, sizeof err->hint, "%s",
                 "the server is read-only (a standby, or default_transaction_read_only is on); the connection is "
                 "closed, and a multi-host DATABASE_URL with target_session_attrs=read-write finds the primary");
    }
    if (conn && (!conn->pg || PQstatus(conn->pg) == CONNECTION_BAD || gp__sqlstate_is_fatal(err->sqlstate) ||
                 err->klass == GP_ECLASS_WRONG_SERVER))
        conn->discard = true; /* a read-only server: reconnect (libpq re-resolves a multi-host URL) */
    return st;
}

void gp__stmt_squatted(gp_conn_t *conn, const PGresult *res)
{
    const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (s && strcmp(s, "42P05") == 0) {
        /* Someone prepared a statement under a name only this library can
         * have chosen: never trust this session again. */
        conn->discard = true;
        gp__log(GP_LOG_WARN, "query", "a statement name of the library's was taken on the connection; "
                "discarding the connection");
    }
}

bool gp__stmt_gone(const PGresult *res)
{
    const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (!s)
        return false;
    if (strcmp(s, "26000") == 0)
        return true;
    const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    return strcmp(s, "0A000") == 0 && m && strstr(m, "cached plan must not change result type");
}

gp_status_t gp__check_conn(gp_conn_t *conn, gp_error_t *err)
{
    if (!conn || !conn->pg)
        return gp__client_error(err, GP_ERR_INVALID, "no connection given");
    if (PQstatus(conn->pg) == CONNECTION_BAD) {
        conn->discard = true;
        gp__client_error(err, GP_ERR_CONNECT, "the connection is broken; release it and acquire another");
        if (err) {
            err->klass = GP_ECLASS_CONNECTION;
            err->retriable = 1;
        }
        return GP_ERR_CONNECT;
    }
    if (conn->timed_out) {
        gp__client_error(err, GP_ERR_TIMEOUT, "an earlier statement on this connection got no answer within "
                         "%s (%d ms); release the connection (it is closed) and acquire another",
                         gp__deadline_source(conn), gp__deadline_ms(conn));
        if (err) {
            err->klass = GP_ECLASS_CONNECTION;
            err->retriable = 1;
        }
        return GP_ERR_TIMEOUT;
    }
    if (PQpipelineStatus(conn->pg) != PQ_PIPELINE_OFF || PQisBusy(conn->pg)) {
        conn->discard = true; /* someone left it mid-protocol */
        return gp__client_error(err, GP_ERR_PROTOCOL, "the connection is in an unexpected protocol state");
    }
    gp__arm_deadline(conn); /* every operation starts here: its deadline too */
    return GP_OK;
}

/* ---- execution ------------------------------------------------------------------ */

/* Prepare `name` synchronously; false (with err filled) on failure. */
static bool prepare(gp_conn_t *conn, const char *name, const char *sql, const gp__params_t *p, gp_error_t *err)
{
    PGresult *r = gp__prepare(conn, name, sql, p->n, p->types);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        gp__fail(conn, r, err);
        gp__stmt_squatted(conn, r);
    }
    PQclear(r);
    return ok;
}

static gp_status_t run_statement(gp_conn_t *conn, const char *sql, int nparams, const gp_value_t *params,
                                 PGresult **out, gp_error_t *err);

/* The rows a successful statement returned or affected. */
uint64_t gp__result_rows_counted(const PGresult *res)
{
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        return (uint64_t)PQntuples(res);
    int64_t n = gp__result_affected((PGresult *)res);
    return n > 0 ? (uint64_t)n : 0;
}

/* One caller statement, recorded in the pool's call statistics. */
static gp_status_t run(gp_conn_t *conn, const char *sql, int nparams, const gp_value_t *params, PGresult **out,
                       gp_error_t *err)
{
    gp_error_t local;
    gp_error_t *e = err ? err : &local;
    int64_t t0 = gp__now_ns();
    /* (a transaction pooler's one-shot is a pipeline, which records itself) */
    bool piped = conn && conn->pg && conn->txpooler && PQtransactionStatus(conn->pg) == PQTRANS_IDLE;
    gp_status_t st = run_statement(conn, sql, nparams, params, out, e);
    if (conn && conn->stmt_stats && !piped)
        gp__stmt_stats_record(conn->stmt_stats, 1, st == GP_OK ? gp__result_rows_counted(*out) : 0,
                              gp__now_ns() - t0, st == GP_OK ? GP_ECLASS_NONE : e->klass);
    return st;
}

/* Through a transaction pooler, a statement outside the caller's
 * transaction is a unit of work of its own: the wrapped pipeline
 * (pipeline.c), in one round trip. */
static gp_status_t run_txpooler_one_shot(gp_conn_t *conn, const char *sql, int nparams, const gp_value_t *params,
                                         PGresult **out, gp_error_t *err)
{
    gp_result_t *r = NULL;
    const gp__pipeline_item_t item = {sql, nparams, params, GP__EFFECT_UNKNOWN, &r};
    gp_status_t st = gp__pipeline_run_items(conn, 1, &item, err);
    if (st != GP_OK) {
        if (err && err->statement_index == 0)
            err->statement_index = -1;
        return st;
    }
    *out = r->pg;
    r->pg = NULL;
    gp_result_free(r);
    return GP_OK;
}

/* Through a transaction pooler, a statement refused inside the caller's
 * transaction (one that would end it) fails that transaction on the
 * server, as a failed statement would: its work must not commit as if the
 * refused statement had not been there. */
static void txp_doom(gp_conn_t *conn)
{
    PQclear(gp__exec(conn, "SELECT 1 OPERATOR(pg_catalog./) 0"));
    if (PQstatus(conn->pg) != CONNECTION_OK)
        conn->discard = true;
}

static gp_status_t run_statement(gp_conn_t *conn, const char *sql, int nparams, const gp_value_t *params,
                                 PGresult **out, gp_error_t *err)
{
    *out = NULL;
    if (!sql)
        return gp__client_error(err, GP_ERR_INVALID, "no SQL given");
    gp_status_t st = gp__check_conn(conn, err);
    if (st != GP_OK)
        return st;
    if (conn->txpooler) {
        if (PQtransactionStatus(conn->pg) == PQTRANS_IDLE)
            return run_txpooler_one_shot(conn, sql, nparams, params, out, err);
        if ((st = gp__txp_check_sql(sql, err)) != GP_OK) {
            txp_doom(conn);
            return st;
        }
    }
    gp__params_t p;
    st = gp__params_encode(&p, nparams, params, false, err);
    if (st != GP_OK)
        return st;
    gp__qstate_t *qs = gp__qstate(conn);
    if (!qs) {
        gp__params_free(&p);
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
    }
    PGresult *res = NULL;
    gp__taint(conn);
    for (int attempt = 0; attempt < 2; attempt++) {
        gp__stmt_t *entry;
        bool nomem;
        const char *name = gp__stmt_lookup(qs, sql, &p, &entry, &nomem);
        if (nomem) {
            gp__params_free(&p);
            return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
        }
        if (!entry) { /* unnamed statements only */
            res = gp__exec_params(conn, sql, p.n, p.types, p.values, p.lengths, p.formats, 1);
            break;
        }
        if (!name) {
            if (!prepare(conn, gp__stmt_name(entry), sql, &p, err)) {
                gp__stmt_drop(qs, entry);
                gp__params_free(&p);
                return err ? err->status : GP_ERR_SERVER;
            }
            entry->confirmed = true;
            name = gp__stmt_name(entry);
        }
        res = gp__exec_prepared(conn, name, p.n, p.values, p.lengths, p.formats, 1);
        ExecStatusType rs = PQresultStatus(res);
        if ((rs == PGRES_FATAL_ERROR) && gp__stmt_gone(res)) {
            /* The server forgot our statements (DISCARD ALL, DEALLOCATE, a
             * pooler switched servers) or a plan went stale: start the
             * cache afresh, and retry once when no transaction was aborted
             * by the failure (then nothing ran). */
            bool idle = PQtransactionStatus(conn->pg) == PQTRANS_IDLE;
            gp__stmt_forget_all(qs, true);
            if (idle && attempt == 0) {
                gp__log(GP_LOG_INFO, "query", "prepared statement vanished on the server; preparing again");
                PQclear(res);
                res = NULL;
                gp__stmt_enforce(conn, qs); /* DEALLOCATE ALL: resynchronise */
                continue;
            }
        }
        break;
    }
    gp__params_free(&p);
    ExecStatusType rs = PQresultStatus(res);
    if (rs != PGRES_TUPLES_OK && rs != PGRES_COMMAND_OK && rs != PGRES_EMPTY_QUERY) {
        st = gp__fail(conn, res, err);
        if (rs == PGRES_COPY_IN || rs == PGRES_COPY_OUT || rs == PGRES_COPY_BOTH) {
            conn->discard = true; /* COPY is not supported here: the protocol is mid-copy */
            st = gp__client_error(err, GP_ERR_INVALID, "COPY is not supported by gp_query; the connection "
                                  "will be discarded");
        }
        PQclear(res);
        gp__stmt_enforce(conn, qs);
        return st;
    }
    gp__caller_done(conn, qs, res);
    gp__stmt_enforce(conn, qs);
    if (err)
        gp_error_clear(err);
    *out = res;
    return GP_OK;
}

gp_status_t gp_query(gp_conn_t *conn, const char *sql, int nparams, const gp_value_t *params, gp_result_t **out,
                     gp_error_t *err)
{
    if (!out)
        return gp__client_error(err, GP_ERR_INVALID, "no result pointer given (use gp_exec to discard rows)");
    *out = NULL;
    PGresult *res;
    gp_status_t st = run(conn, sql, nparams, params, &res, err);
    if (st != GP_OK)
        return st;
    *out = gp__result_wrap(res);
    return *out ? GP_OK : gp__client_error(err, GP_ERR_NOMEM, "out of memory");
}

gp_status_t gp_exec(gp_conn_t *conn, const char *sql, int nparams, const gp_value_t *params, int64_t *affected,
                    gp_error_t *err)
{
    if (affected)
        *affected = 0;
    PGresult *res;
    gp_status_t st = run(conn, sql, nparams, params, &res, err);
    if (st != GP_OK)
        return st;
    if (affected)
        *affected = gp__result_affected(res);
    PQclear(res);
    return GP_OK;
}

/* ---- one-shot statements and the sweep --------------------------------------------------- */

/* The pool's release-time sweep of a tainted lease: the sweep with the
 * deeper verdict, prepared like any statement (a simple-query string would
 * be parsed and planned on every release). */
static bool release_sweep(gp_conn_t *conn)
{
    gp_result_t *verdict = NULL;
    gp__pipeline_item_t items[GP__SWEEP_RELEASE_COUNT];
    for (int i = 0; i < GP__SWEEP_RELEASE_COUNT; i++)
        items[i] = (gp__pipeline_item_t){gp__sweep_release_sql(i), 0, NULL, 0,
                                         i == GP__SWEEP_RELEASE_COUNT - 1 ? &verdict : NULL};
    gp_error_t e;
    gp_status_t st = gp__pipeline_run_items(conn, GP__SWEEP_RELEASE_COUNT, items, &e);
    bool clean = st == GP_OK && gp__sweep_apply(conn, verdict->pg) && !conn->tainted;
    gp_result_free(verdict);
    if (st != GP_OK)
        gp__logf(&(gp__log_fields_t){.sqlstate = e.sqlstate, .klass = e.klass, .status = e.status, .duration_ns = -1},
                 GP_LOG_INFO, "pool", "session sweep on release failed (%s); resetting the session", e.message);
    return clean;
}

gp_status_t gp__one_shot_swept(gp_conn_t *conn, const gp__pipeline_item_t *head, int nhead, gp_error_t *err)
{
    if (conn && conn->txpooler) /* the pipeline's wrapper checks and neutralises (query_txpooler.c) */
        return gp__pipeline_run_items(conn, nhead, head, err);
    gp_result_t *verdict = NULL;
    gp__pipeline_item_t items[GP__PIPELINE_ITEMS_MAX];
    if (nhead < 1 || nhead + GP__SWEEP_COUNT > GP__PIPELINE_ITEMS_MAX)
        return gp__client_error(err, GP_ERR_INVALID, "internal: too many statements for a one-shot call");
    memcpy(items, head, (size_t)nhead * sizeof *items);
    int n = nhead;
    for (int i = 0; i < GP__SWEEP_COUNT; i++)
        items[n++] = (gp__pipeline_item_t){gp__sweep_sql(conn, i), 0, NULL, 0,
                                           i == GP__SWEEP_COUNT - 1 ? &verdict : NULL};
    gp_status_t st = gp__pipeline_run_items(conn, n, items, err);
    if (st == GP_OK) /* swept after the caller's statement: clean unless the verdict says otherwise */
        gp__sweep_apply(conn, verdict->pg);
    gp_result_free(verdict);
    return st;
}

static gp_status_t pool_one_shot(gp_pool_t *pool, const char *sql, int nparams, const gp_value_t *params,
                                 gp_result_t **out, int64_t *affected, gp_error_t *err)
{
    if (!pool || !sql)
        return gp__client_error(err, GP_ERR_INVALID, "no pool or SQL given");
    if (gp__oneshot_eligible(pool, sql)) { /* query_batch.c: may share a round trip with other callers' */
        gp__oneshot_t u;
        gp__oneshot_init(&u, NULL, "gp_pool_query", sql, nparams, params, out != NULL, err);
        gp_status_t st = gp__oneshot_run(pool, &u);
        if (st == GP_OK) {
            if (affected)
                *affected = u.affected;
            if (out)
                *out = u.result;
        }
        return st;
    }
    gp_conn_t *conn;
    gp_status_t st = gp_pool_acquire(pool, "gp_pool_query", -1, &conn, err);
    if (st != GP_OK)
        return st;
    gp_result_t *r = NULL;
    const gp__pipeline_item_t item = {sql, nparams, params, GP__EFFECT_UNKNOWN, &r};
    st = gp__oneshot_unanswered(conn, gp__one_shot_swept(conn, &item, 1, err), err);
    gp_pool_release(conn);
    if (st != GP_OK && err && err->statement_index == 0)
        err->statement_index = -1; /* the caller's statement is the only one they know of */
    if (st == GP_OK) {
        if (affected)
            *affected = gp_result_affected(r);
        if (out) {
            *out = r;
            return GP_OK;
        }
    }
    gp_result_free(r);
    return st;
}

/* ---- read-your-writes ------------------------------------------------------------ */

gp_status_t gp_pool_wal_position(gp_pool_t *pool, char out[GP_WAL_POSITION_LEN], gp_error_t *err)
{
    if (!out)
        return gp__client_error(err, GP_ERR_INVALID, "no output buffer given");
    out[0] = 0;
    gp_result_t *r = NULL;
    /* The insert position: with synchronous_commit off, the commit record may
     * still sit in the WAL buffers, ahead of pg_current_wal_lsn(). */
    gp_status_t st = gp_pool_query(pool, "SELECT pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text", 0, NULL, &r, err);
    if (st != GP_OK)
        return st;
    const char *v = NULL;
    size_t len = 0;
    if (gp_get_text(r, 0, 0, &v, &len) != GP_OK || len >= GP_WAL_POSITION_LEN) {
        gp_result_free(r);
        return gp__client_error(err, GP_ERR_PROTOCOL, "pg_current_wal_insert_lsn() gave no position");
    }
    memcpy(out, v, len);
    out[len] = 0;
    gp_result_free(r);
    return GP_OK;
}

gp_status_t gp_pool_wait_replayed(gp_pool_t *pool, const char *position, int timeout_ms, gp_error_t *err)
{
    if (!pool || !gp__wal_position_ok(position))
        return gp__client_error(err, GP_ERR_INVALID, "a WAL position like 16/B374D848 (from gp_pool_wal_position) "
                                "and a pool are required");
    if (timeout_ms < 0)
        return gp__client_error(err, GP_ERR_INVALID, "timeout_ms must be >= 0");
    int64_t deadline = gp__now_ns() + (int64_t)timeout_ms * 1000000LL;
    gp_conn_t *conn;
    gp_status_t st = gp_pool_acquire(pool, "gp_pool_wait_replayed", timeout_ms > 0 ? timeout_ms : 1, &conn, err);
    if (st != GP_OK)
        return st;
    int r = gp__wait_replayed(conn, position, deadline);
    if (r < 0)
        st = gp__client_error(err, GP_ERR_CONNECT, "the replay check failed on the server (its connection is "
                              "closed); read from the primary");
    else if (r == 0) {
        st = gp__client_error(err, GP_ERR_TIMEOUT, "the server had not replayed WAL position %s within %d ms; "
                              "read from the primary", position, timeout_ms);
        if (err) {
            err->klass = GP_ECLASS_TIMEOUT;
            err->retriable = 1;
        }
    }
    gp_pool_release(conn);
    if (st == GP_OK && err)
        gp_error_clear(err);
    return st;
}

/* A read: on a lease of gp_pool_acquire_read, in a READ ONLY transaction
 * (on a standby the server refuses writes anyway; on the primary the
 * transaction does), swept before it commits, in one round trip (through
 * a transaction pooler: BEGIN, the statement and its checked COMMIT). */
static gp_status_t pool_read_one_shot(gp_pool_t *pool, const gp_read_opts_t *ropts, const char *sql, int nparams,
                                      const gp_value_t *params, gp_result_t **out, int64_t *affected,
                                      gp_error_t *err)
{
    if (!pool || !sql)
        return gp__client_error(err, GP_ERR_INVALID, "no pool or SQL given");
    gp_conn_t *conn;
    gp_status_t st = gp_pool_acquire_read(pool, ropts, "gp_pool_read_query", -1, &conn, err);
    if (st != GP_OK)
        return st;
    gp_result_t *r = NULL;
    if (conn->txpooler) {
        if ((st = gp_tx_begin(conn, &(gp_tx_opts_t){.read_only = true}, err)) == GP_OK &&
            (st = gp_query(conn, sql, nparams, params, &r, err)) == GP_OK)
            st = gp_tx_commit(conn, err);
        else
            gp_tx_rollback(conn, NULL);
    } else {
        gp_result_t *verdict = NULL, *commit = NULL;
        gp__pipeline_item_t items[3 + GP__SWEEP_COUNT];
        int n = 0;
        items[n++] = (gp__pipeline_item_t){"BEGIN READ ONLY", 0, NULL, 0, NULL};
        items[n++] = (gp__pipeline_item_t){sql, nparams, params, GP__EFFECT_UNKNOWN, &r};
        for (int i = 0; i < GP__SWEEP_COUNT; i++)
            items[n++] = (gp__pipeline_item_t){gp__sweep_sql(conn, i), 0, NULL, 0,
                                               i == GP__SWEEP_COUNT - 1 ? &verdict : NULL};
        items[n++] = (gp__pipeline_item_t){"COMMIT", 0, NULL, GP__EFFECT_ENDS_TX, &commit};
        conn->tx_read_only = true; /* 25006 in it is the caller's write, not a read-only server */
        st = gp__pipeline_run_items(conn, n, items, err);
        if (st == GP_OK && strcmp(PQcmdStatus(commit->pg), "COMMIT") == 0)
            gp__sweep_apply(conn, verdict->pg);
        gp_result_free(verdict);
        gp_result_free(commit);
        if (err && st != GP_OK)
            err->statement_index = -1;
    }
    gp_pool_release(conn);
    if (st == GP_OK) {
        if (affected)
            *affected = gp_result_affected(r);
        if (out) {
            *out = r;
            return GP_OK;
        }
    }
    gp_result_free(r);
    return st;
}

gp_status_t gp_pool_read_query(gp_pool_t *pool, const gp_read_opts_t *ropts, const char *sql, int nparams,
                               const gp_value_t *params, gp_result_t **out, gp_error_t *err)
{
    if (!out)
        return gp__client_error(err, GP_ERR_INVALID, "no result pointer given (use gp_pool_read_exec to discard rows)");
    *out = NULL;
    return pool_read_one_shot(pool, ropts, sql, nparams, params, out, NULL, err);
}

gp_status_t gp_pool_read_exec(gp_pool_t *pool, const gp_read_opts_t *ropts, const char *sql, int nparams,
                              const gp_value_t *params, int64_t *affected, gp_error_t *err)
{
    if (affected)
        *affected = 0;
    return pool_read_one_shot(pool, ropts, sql, nparams, params, NULL, affected, err);
}

gp_status_t gp_pool_query(gp_pool_t *pool, const char *sql, int nparams, const gp_value_t *params,
                          gp_result_t **out, gp_error_t *err)
{
    if (!out)
        return gp__client_error(err, GP_ERR_INVALID, "no result pointer given (use gp_pool_exec to discard rows)");
    *out = NULL;
    return pool_one_shot(pool, sql, nparams, params, out, NULL, err);
}

gp_status_t gp_pool_exec(gp_pool_t *pool, const char *sql, int nparams, const gp_value_t *params,
                         int64_t *affected, gp_error_t *err)
{
    if (affected)
        *affected = 0;
    return pool_one_shot(pool, sql, nparams, params, NULL, affected, err);
}

/* ---- cancellation ------------------------------------------------------------------ */

struct gp_cancel {
    PGcancel *pc;
};

gp_status_t gp_cancel_new(gp_conn_t *conn, gp_cancel_t **out)
{
    if (!out)
        return GP_ERR_INVALID;
    *out = NULL;
    if (!conn || !conn->pg)
        return GP_ERR_INVALID;
    gp_cancel_t *c = malloc(sizeof *c);
    if (!c)
        return GP_ERR_NOMEM;
    c->pc = PQgetCancel(conn->pg);
    if (!c->pc) {
        free(c);
        return PQstatus(conn->pg) == CONNECTION_BAD ? GP_ERR_INVALID : GP_ERR_NOMEM;
    }
    *out = c;
    return GP_OK;
}

void gp_cancel_free(gp_cancel_t *c)
{
    if (!c)
        return;
    PQfreeCancel(c->pc);
    free(c);
}

gp_status_t gp_cancel(gp_cancel_t *c, gp_error_t *err)
{
    if (!c)
        return gp__client_error(err, GP_ERR_INVALID, "no cancel handle given");
    char buf[256];
    if (PQcancel(c->pc, buf, (int)sizeof buf))
        return err ? (gp_error_clear(err), GP_OK) : GP_OK;
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '\n')
        buf[--n] = 0;
    gp__client_error(err, GP_ERR_CONNECT, "cannot deliver the cancel request: %s", buf);
    if (err) {
        err->klass = GP_ECLASS_CONNECTION;
        err->retriable = 1;
    }
    return GP_ERR_CONNECT;
}
