/* query_batch.c — automatic pipelining of one-shot calls (query.h,
 * "automatic pipelining of one-shot calls").
 *
 * A one-shot (gp_pool_query/exec, gp_tenant_query/exec) whose statement is
 * eligible becomes a unit: [head (the layer above's: a tenant's
 * set_config; or a statement_timeout of its own); the caller's statement;
 * RESET ALL; the refusing verdict], then a Sync of its own. Units wait in
 * the pool's queue (gp__oneshot_queue_t, pool_internal.h). A caller that
 * finds fewer leaders than the pool has connections becomes one: it
 * leases a connection, takes up to DATABASE_PIPELINE_BATCH queued units
 * (one per fairness key in turn, oldest first), sends them in one flight
 * in pipeline mode, reads each unit's results up to its Sync and hands
 * them to its owner at once, releases the connection and either leads
 * again (its own unit still waits) or passes the leadership to the owner
 * of the oldest queued unit. Everyone else sleeps on its unit's state
 * (a futex; the state is an atomic with release/acquire order, so the
 * results it publishes are visible to the owner it wakes).
 *
 * Why units can share a session: each unit ends with its own Sync, so it
 * is one implicit transaction that commits or rolls back alone; its
 * tenant setting is transaction-local; and nothing it leaves in the
 * session survives to the next unit: an eligible statement (by its first
 * keyword: no SET, PREPARE, DECLARE, LISTEN, CREATE ...) can change the
 * session only through the functions it calls, and the unit's sweep
 * undoes that (RESET ALL; advisory locks released) or refuses it (a
 * switched role, a temporary object: the verdict divides by zero, which
 * rolls the whole unit back). A unit that failed rolled back everything
 * transactional; the session advisory locks it may have taken are
 * released by the next unit's sweep.
 *
 * Files: this one depends on query.c (statement cache, errors), result.c,
 * values.c, query_txpooler.c (the SQL lexer) and the pool; nothing in the
 * query layer depends on it but query.c's one-shot entry points. */
#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "query_internal.h"

#define NS_PER_MS 1000000LL
#define BATCH_BYTES_MAX (1u << 20)        /* parameter bytes per round trip */
#define ALONE_RESULT_BYTES (64u << 10)    /* a result this large: run alone next time */
#define ALONE_NS (20 * NS_PER_MS)         /* a unit this slow ... */
#define ALONE_SLOW_TIMES 3                /* ... this many times in a row: run alone next time */
#define ALONE_FOR_NS (60000 * NS_PER_MS)  /* ... for a minute */

/* A unit's state word, also its owner's futex: QUEUED, then TAKEN by a
 * leader, then DONE (each +1), and the LEAD bit while its owner is asked
 * to lead. Whoever hands a unit over makes DONE its last write to it (the
 * owner may return at once); the futex wake after it only names the
 * address. */
enum { U_QUEUED = 0, U_TAKEN = 1, U_DONE = 2, U_STATE = 3, U_LEAD = 4 };

static int state_of(gp__oneshot_t *u) { return atomic_load_explicit(&u->state, memory_order_acquire); }

/* ---- futex sleeping on a unit's state ---------------------------------------------- */

static void futex_wait(_Atomic int *addr, int seen, int64_t deadline_ns)
{
    struct timespec ts, *tsp = NULL;
    if (deadline_ns) {
        int64_t left = deadline_ns - gp__now_ns();
        if (left <= 0)
            return;
        ts.tv_sec = (time_t)(left / 1000000000LL);
        ts.tv_nsec = (long)(left % 1000000000LL);
        tsp = &ts;
    }
    syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, seen, tsp, NULL, 0);
}

static void futex_wake(_Atomic int *addr) { syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

static void wake_leader(gp__oneshot_t *u)
{
    atomic_fetch_or_explicit(&u->state, U_LEAD, memory_order_release);
    futex_wake(&u->state);
}

/* ---- eligibility ---------------------------------------------------------------------- */

/* Statements seen to be large or slow, by a hash of their text: direct
 * mapped, racy by design (a lost update only means one more shared or one
 * more lonely run), atomics so that the race is well defined. */
#define ALONE_SLOTS 256
static _Atomic uint64_t alone_hash[ALONE_SLOTS];
static _Atomic int64_t alone_until[ALONE_SLOTS];

static uint64_t text_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h | 1; /* never 0: 0 marks an empty slot */
}

static bool marked_alone(uint64_t h, int64_t now)
{
    size_t i = h % ALONE_SLOTS;
    return atomic_load_explicit(&alone_hash[i], memory_order_relaxed) == h &&
           atomic_load_explicit(&alone_until[i], memory_order_relaxed) > now;
}

/* After a unit of text hash h ran: a result above ALONE_RESULT_BYTES
 * marks it at once; a duration above ALONE_NS only on the third time in a
 * row (a leader preempted on a busy machine makes any one unit look slow). */
static _Atomic uint64_t slow_hash[ALONE_SLOTS];
static _Atomic int slow_count[ALONE_SLOTS];

static void judge(uint64_t h, size_t result_bytes, int64_t ns)
{
    size_t i = h % ALONE_SLOTS;
    bool mark = result_bytes > ALONE_RESULT_BYTES;
    if (ns > ALONE_NS) {
        if (atomic_load_explicit(&slow_hash[i], memory_order_relaxed) != h) {
            atomic_store_explicit(&slow_hash[i], h, memory_order_relaxed);
            atomic_store_explicit(&slow_count[i], 0, memory_order_relaxed);
        }
        mark = mark || atomic_fetch_add_explicit(&slow_count[i], 1, memory_order_relaxed) + 1 >= ALONE_SLOW_TIMES;
    } else if (atomic_load_explicit(&slow_hash[i], memory_order_relaxed) == h &&
               atomic_load_explicit(&slow_count[i], memory_order_relaxed) != 0) {
        atomic_store_explicit(&slow_count[i], 0, memory_order_relaxed);
    }
    if (!mark)
        return;
    atomic_store_explicit(&alone_until[i], gp__now_ns() + ALONE_FOR_NS, memory_order_relaxed);
    atomic_store_explicit(&alone_hash[i], h, memory_order_relaxed);
}

bool gp__oneshot_eligible(gp_pool_t *pool, const char *sql)
{
    gp__oneshot_queue_t *q = gp__pool_oneshots(pool);
    if (!q || q->batch < 1 || !sql)
        return false;
    const char *s = gp__sql_skip_blank(sql);
    while (s && *s == '(')
        s = gp__sql_skip_blank(s + 1);
    if (!s)
        return false;
    static const char *const words[] = {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "WITH", "VALUES", "TABLE"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (gp__sql_keyword(s, words[i], NULL))
            return true;
    return false;
}

/* ---- the queue (every function here runs under q->mu) -------------------------------- */

static void unlink_unit(gp__oneshot_queue_t *q, gp__oneshot_t *u)
{
    if (u->prev)
        u->prev->next = u->next;
    else
        q->head = u->next;
    if (u->next)
        u->next->prev = u->prev;
    else
        q->tail = u->prev;
    u->next = u->prev = NULL;
    atomic_fetch_sub_explicit(&q->queued, 1, memory_order_relaxed);
}

static void push_unit(gp__oneshot_queue_t *q, gp__oneshot_t *u)
{
    u->next = NULL;
    u->prev = q->tail;
    if (q->tail)
        q->tail->next = u;
    else
        q->head = u;
    q->tail = u;
    atomic_fetch_add_explicit(&q->queued, 1, memory_order_relaxed);
}

static bool same_key(const gp__oneshot_t *a, const gp__oneshot_t *b)
{
    return a->keyhash == b->keyhash && strcmp(a->keybuf, b->keybuf) == 0;
}

/* Make the owner of the oldest queued unit that is not leading a new
 * gatherer (the queue has one leader more). */
static void promote(gp__oneshot_queue_t *q)
{
    for (gp__oneshot_t *u = q->head; u; u = u->next) {
        if (!(atomic_load_explicit(&u->state, memory_order_relaxed) & U_LEAD)) {
            q->leaders++;
            q->gathering++;
            wake_leader(u);
            return;
        }
    }
}

/* A leader gives its leadership up: to the owner of the oldest queued
 * unit that is not leading already, when units wait and nobody gathers
 * them; else the queue has one leader fewer. */
static void leave_lead(gp__oneshot_queue_t *q)
{
    if (q->gathering == 0) {
        for (gp__oneshot_t *u = q->head; u; u = u->next) {
            if (!(atomic_load_explicit(&u->state, memory_order_relaxed) & U_LEAD)) {
                q->gathering++;
                wake_leader(u);
                return;
            }
        }
    }
    q->leaders--;
}

/* Take the next round trip's units: the oldest unit first; a unit that
 * must run alone only when it is the oldest (and then nothing else);
 * otherwise one unit per key in turn (round r takes each key's r-th
 * oldest unit, in queue order), at most `max` units and BATCH_BYTES_MAX
 * parameter bytes. Linear in the queue: each unit's rank within its key
 * first, then the number of whole rounds that fit. Keys are told apart by
 * their 64-bit hash; past TAKE_KEYS distinct keys in the queue the rest
 * share one turn. */
#define TAKE_KEYS 128
typedef struct kslot {
    uint64_t h;
    int len;
} kslot_t;

static kslot_t *kslot(kslot_t *t, uint64_t h)
{
    size_t i = h % TAKE_KEYS;
    for (int probe = 0; probe < TAKE_KEYS - 1; probe++) {
        kslot_t *k = &t[(i + (size_t)probe) % (TAKE_KEYS - 1)];
        if (k->h == h || k->h == 0) {
            k->h = h;
            return k;
        }
    }
    return &t[TAKE_KEYS - 1]; /* the shared turn */
}

#define SERVED_SLOTS (sizeof ((gp__oneshot_queue_t *)0)->served / sizeof ((gp__oneshot_queue_t *)0)->served[0])

static uint64_t last_served(const gp__oneshot_queue_t *q, uint64_t key)
{
    size_t i = key % SERVED_SLOTS;
    return q->served[i].key == key ? q->served[i].at : 0;
}

static int take(gp__oneshot_queue_t *q, gp__oneshot_t **out, int max)
{
    int n = 0;
    if (!q->head)
        return 0;
    /* The first unit: the oldest of the key served longest ago (a key's
     * oldest unit comes first among its own). A unit that runs alone
     * makes a flight of its own. */
    gp__oneshot_t *first = NULL;
    uint64_t first_at = 0;
    for (gp__oneshot_t *u = q->head; u; u = u->next) {
        uint64_t at = last_served(q, u->keyhash);
        if (!first || at < first_at) {
            first = u;
            first_at = at;
            if (at == 0)
                break;
        }
    }
    if (first->alone) {
        out[n++] = first;
    } else {
        kslot_t keys[TAKE_KEYS];
        memset(keys, 0, sizeof keys);
        int maxrank = 0;
        for (gp__oneshot_t *u = q->head; u; u = u->next) {
            if (u->alone)
                continue;
            kslot_t *k = kslot(keys, u->keyhash);
            u->rank = k->len++;
            if (k->len > maxrank)
                maxrank = k->len;
        }
        /* Whole rounds: the most R with sum(min(len, R)) <= max. */
        int rounds = 0;
        for (int r = 1; r <= maxrank; r++) {
            int total = 0;
            for (int i = 0; i < TAKE_KEYS; i++)
                total += keys[i].len < r ? keys[i].len : r;
            if (total > max)
                break;
            rounds = r;
        }
        out[n++] = first;
        size_t bytes = first->bytes;
        for (int pass = 0; pass < 2 && n < max; pass++) { /* the whole rounds, then part of the next */
            for (gp__oneshot_t *u = q->head; u && n < max; u = u->next) {
                if (u == first || u->alone || (pass == 0 ? u->rank >= rounds : u->rank != rounds))
                    continue;
                        if (bytes + u->bytes > BATCH_BYTES_MAX)
                    continue;
                bytes += u->bytes;
                out[n++] = u;
            }
        }
    }
    q->takes++;
    for (int i = 0; i < n; i++) {
        size_t slot = out[i]->keyhash % SERVED_SLOTS;
        q->served[slot].key = out[i]->keyhash;
        q->served[slot].at = q->takes;
        unlink_unit(q, out[i]);
        atomic_fetch_add_explicit(&out[i]->state, 1, memory_order_relaxed); /* QUEUED -> TAKEN */
    }
    /* In queue order, so the server runs older units first. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && out[j]->seq < out[j - 1]->seq; j--) {
            gp__oneshot_t *t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

/* ---- one unit's statements ---------------------------------------------------------- */

static void free_built(gp__oneshot_t *u)
{
    for (int i = 0; i < u->n; i++)
        if (u->st[i].pp == &u->st[i].own)
            gp__params_free(&u->st[i].own);
    u->n = 0;
}

static const char SET_TIMEOUT[] = "SELECT pg_catalog.set_config('statement_timeout', $1, true)";

static void fail_unit(gp__oneshot_t *u, gp_status_t st)
{
    u->status = st;
    gp_result_free(u->result);
    u->result = NULL;
}

/* Build u's statements for conn into u->st (the caller's parameters are
 * encoded already). A failure fails u alone, before anything is sent. */
static gp_status_t build(gp__oneshot_t *u, gp_conn_t *conn, int timeout_ms)
{
    gp__pipeline_item_t head[GP__ONESHOT_HEAD_MAX];
    int nh = 0;
    u->n = 0;
    gp_status_t st = GP_OK;
    if (u->head) {
        st = u->head(u, conn, timeout_ms, head, &nh, u->err);
    } else if (timeout_ms > 0) {
        snprintf(u->tbuf, sizeof u->tbuf, "%d", timeout_ms);
        u->tval = gp_text(u->tbuf);
        head[nh++] = (gp__pipeline_item_t){SET_TIMEOUT, 1, &u->tval, 0, NULL};
    }
    if (st != GP_OK)
        return st;
    for (int i = 0; i < nh; i++) {
        gp__ostmt_t *s = &u->st[u->n];
        s->sql = head[i].sql;
        s->kind = GP__OS_HEAD;
        s->pp = &s->own;
        if ((st = gp__params_encode(&s->own, head[i].nparams, head[i].params, false, u->err)) != GP_OK) {
            free_built(u);
            return st;
        }
        u->n++;
    }
    static const gp__params_t none = {0};
    u->st[u->n++] = (gp__ostmt_t){.sql = u->sql, .kind = GP__OS_CALLER, .pp = &u->caller_params};
    u->st[u->n++] = (gp__ostmt_t){.sql = gp__sweep_sql(conn, 0), .kind = GP__OS_SWEEP, .pp = &none};
    u->st[u->n++] = (gp__ostmt_t){.sql = gp__sweep_refusing_sql(conn), .kind = GP__OS_VERDICT, .pp = &none};
    return GP_OK;
}

/* ---- a round trip ----------------------------------------------------------------------- */

/* The statements a flight prepares (a cache miss), and whether the server
 * acknowledged each. */
#define FLIGHT_PREPARES (GP__ONESHOT_BATCH_MAX * GP__ONESHOT_STMTS)
typedef struct flight {
    gp__stmt_t *entry[FLIGHT_PREPARES];
    bool ok[FLIGHT_PREPARES];
    int n;
} flight_t;

static bool preparing_here(const flight_t *f, const gp__stmt_t *e)
{
    for (int i = 0; i < f->n; i++)
        if (f->entry[i] == e)
            return true;
    return false;
}

/* Queue u's statements and its Sync. false when libpq refused (out of
 * memory, or the connection broke). */
static bool send_unit(gp_conn_t *conn, gp__qstate_t *qs, gp__oneshot_t *u, flight_t *f)
{
    for (int i = 0; i < u->n; i++) {
        gp__ostmt_t *s = &u->st[i];
        s->prep = -1;
        gp__stmt_t *entry;
        bool nomem;
        const gp__params_t *pp = s->pp;
        const char *name = gp__stmt_lookup(qs, s->sql, pp, &entry, &nomem);
        if (nomem)
            return false;
        if (!entry || (!name && preparing_here(f, entry))) {
            /* No cache, or another unit of this flight prepares it (and
             * might fail before it does): the unnamed statement. */
            if (!PQsendQueryParams(conn->pg, s->sql, pp->n, pp->types, pp->values, pp->lengths, pp->formats, 1))
                return false;
            continue;
        }
        if (!name) {
            s->prep = f->n;
            f->entry[f->n] = entry;
            f->ok[f->n++] = false;
            if (!PQsendPrepare(conn->pg, gp__stmt_name(entry), s->sql, pp->n, pp->types))
                return false;
        }
        if (!PQsendQueryPrepared(conn->pg, gp__stmt_name(entry), pp->n, pp->values, pp->lengths, pp->formats, 1))
            return false;
    }
    return PQpipelineSync(conn->pg) == 1;
}

/* How the units after the one being read fare when the connection is lost. */
typedef enum { LOST_NONE, LOST_FATAL, LOST_UNKNOWN } lost_t;

/* The next result of the statement being read, and the NULL that ends it
 * (anything else is a protocol failure). NULL when the connection failed
 * (or the deadline passed) first. */
static PGresult *next_result(gp_conn_t *conn, bool *proto_ok)
{
    PGresult *r = gp__get_result(conn);
    if (!r)
        return NULL;
    if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
        PGresult *end = gp__get_result(conn);
        if (end) {
            PQclear(end);
            *proto_ok = false;
        }
    }
    return r;
}

static void refused(gp_error_t *err)
{
    gp__client_error(err, GP_ERR_INVALID,
                     "the statement switched the role (set_config('role', ...)) or left a temporary object in the "
                     "session, which a one-shot call must not leave on a pooled connection; it was rolled back. "
                     "Use a transaction on a lease of your own (gp_pool_acquire, gp_tenant_run) for work under "
                     "another role or with temporary tables");
}

static bool is_error(const PGresult *r)
{
    ExecStatusType rs = PQresultStatus(r);
    return rs == PGRES_FATAL_ERROR || rs == PGRES_BAD_RESPONSE || rs == PGRES_NONFATAL_ERROR;
}

/* u's first error: its status, and whether the server ended the session
 * with it. */
static bool unit_error(gp_conn_t *conn, gp__oneshot_t *u, const gp__ostmt_t *s, const PGresult *r, bool *gone)
{
    u->status = gp__fail(conn, r, u->err);
    if (gp__stmt_gone(r))
        *gone = true;
    if (s->kind == GP__OS_VERDICT && strcmp(u->err->sqlstate, "22012") == 0) {
        refused(u->err);
        u->status = GP_ERR_INVALID;
    }
    return PQstatus(conn->pg) == CONNECTION_BAD || gp__sqlstate_is_fatal(u->err->sqlstate);
}

/* Read u's results up to its Sync. Returns true when u's outcome is
 * known (its end arrived, or its error did); false when the connection
 * was lost before (it may have committed). *lost: what the units after it
 * can be told. */
static bool read_unit(gp_conn_t *conn, gp__oneshot_t *u, flight_t *f, lost_t *lost, bool *gone, bool *forget)
{
    bool proto_ok = true, failed = false;
    u->status = GP_OK;
    for (int i = 0; i < u->n; i++) {
        gp__ostmt_t *s = &u->st[i];
        PGresult *prep_err = NULL;
        if (s->prep >= 0) {
            PGresult *r = next_result(conn, &proto_ok);
            if (!r)
                goto lost;
            if (PQresultStatus(r) == PGRES_COMMAND_OK) {
                f->ok[s->prep] = true;
                PQclear(r);
            } else {
                prep_err = r; /* failed (the statement's error) or skipped */
                gp__stmt_squatted(conn, r);
            }
        }
        PGresult *r = next_result(conn, &proto_ok);
        if (prep_err && is_error(prep_err)) { /* the statement failed when it was prepared */
            PQclear(r);
            r = prep_err;
        } else {
            PQclear(prep_err);
        }
        if (!r)
            goto lost;
        ExecStatusType rs = PQresultStatus(r);
        if (rs == PGRES_TUPLES_OK || rs == PGRES_COMMAND_OK || rs == PGRES_EMPTY_QUERY) {
            if (s->kind == GP__OS_CALLER) {
                u->rows = gp__result_rows_counted(r);
                u->affected = gp__result_affected(r);
                u->bytes_out = PQresultMemorySize(r);
                unsigned e = gp__tag_effects(PQcmdStatus(r));
                if (e & GP__EFFECT_SESSION)
                    conn->reset_needed = true;
                if (e & GP__EFFECT_DROPS_STMTS)
                    *forget = true;
                if (u->want_result && !failed) {
                    if (!(u->result = gp__result_wrap(r))) {
                        failed = true;
                        u->status = gp__client_error(u->err, GP_ERR_NOMEM, "out of memory");
                    }
                    r = NULL;
                }
            }
            PQclear(r);
        } else if (rs == PGRES_PIPELINE_ABORTED) {
            PQclear(r);
        } else {
            bool ended = false;
            if (!failed) {
                failed = true;
                ended = unit_error(conn, u, s, r, gone);
            }
            PQclear(r);
            if (ended || PQstatus(conn->pg) == CONNECTION_BAD) {
                /* The server ended the session while this unit ran (or
                 * the connection broke after its error arrived): it rolled
                 * back. When the server said so, no later unit ran. */
                conn->discard = true;
                fail_unit(u, u->status);
                *lost = ended && u->err->sqlstate[0] ? LOST_FATAL : LOST_UNKNOWN;
                return true;
            }
        }
        if (!proto_ok)
            goto lost;
    }
    PGresult *sync = gp__get_result(conn);
    bool synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    if (!synced)
        goto lost;
    if (failed)
        fail_unit(u, u->status);
    return true;
lost:
    conn->discard = true;
    *lost = LOST_UNKNOWN;
    if (failed) { /* its error arrived first: it rolled back */
        fail_unit(u, u->status);
        return true;
    }
    return false;
}

static void deliver(gp__oneshot_t *u, gp__oneshot_t *self)
{
    _Atomic int *word = &u->state;
    atomic_fetch_add_explicit(word, 1, memory_order_release); /* TAKEN -> DONE: the last touch of u */
    if (u != self)
        futex_wake(word);
}

/* The end of a unit on conn: the layer above's hook, statistics. */
static void finish(gp__oneshot_t *u, gp_conn_t *conn, int64_t ns)
{
    if (u->done)
        u->done(u, conn, u->status);
    gp__stmt_stats_record(conn->stmt_stats, 1, u->status == GP_OK ? u->rows : 0, ns,
                          u->status == GP_OK ? GP_ECLASS_NONE : u->err->klass);
    if (u->status == GP_OK)
        judge(u->sqlhash, u->bytes_out, ns);
}

/* A unit that got no outcome of its own: `ran_maybe` when the server may
 * have run it. */
static void orphan(gp__oneshot_t *u, gp_conn_t *conn, bool ran_maybe, gp__oneshot_queue_t *q)
{
    free_built(u);
    if (ran_maybe) {
        if (conn->timed_out)
            gp__client_error(u->err, GP_ERR_COMMIT_UNKNOWN,
                             "no answer from the server within DATABASE_QUERY_TIMEOUT (%d ms) after the one-shot "
                             "statement was sent: it may or may not have committed (check before repeating it); "
                             "the connection is closed",
                             conn->query_timeout_ms);
        else
            gp__client_error(u->err, GP_ERR_COMMIT_UNKNOWN,
                             "the connection failed after the one-shot statement was sent and before its outcome "
                             "arrived: it may or may not have committed; check before repeating it");
        u->err->klass = GP_ECLASS_CONNECTION;
        u->err->retriable = 0;
        fail_unit(u, GP_ERR_COMMIT_UNKNOWN);
        atomic_fetch_add_explicit(&q->unknown, 1, memory_order_relaxed);
    } else {
        gp__client_error(u->err, GP_ERR_CONNECT,
                         "the connection failed before this one-shot statement ran (the server ended the session "
                         "during an earlier statement on it); it did not run: retry it");
        u->err->klass = GP_ECLASS_CONNECTION;
        u->err->retriable = 1;
        fail_unit(u, GP_ERR_CONNECT);
    }
    if (u->done)
        u->done(u, conn, u->status);
    gp__stmt_stats_record(conn->stmt_stats, 1, 0, 0, GP_ECLASS_CONNECTION);
}

/* The statement timeout each unit sets for itself: DATABASE_QUERY_TIMEOUT
 * (the startup DATABASE_STATEMENT_TIMEOUT when shorter); 0 when there is
 * no client deadline (the startup setting, if any, applies as it is). */
static int unit_timeout_ms(const gp__oneshot_queue_t *q)
{
    int t = q->query_timeout_ms, s = q->statement_timeout_ms;
    if (t <= 0)
        return 0;
    /* A quarter short of the client's deadline, so that the server's own
     * cancel (a clean GP_ERR_TIMEOUT of this unit alone) arrives first,
     * even on a loaded machine: with a tenth (30 ms of 300), a cancel late
     * by that much made the leader give up on the connection, and the
     * units behind the slow one got an unknown outcome. */
    int own = t - t / 4;
    if (own < 1)
        own = 1;
    return s > 0 && s < own ? s : own;
}

/* Cork a TCP socket while a flight's units are queued (libpq writes at
 * each Sync): the server then reads the flight in as few segments as it
 * fits. Not TCP (a Unix socket): nothing happens. */
static void cork(gp_conn_t *conn, int on)
{
    int fd = PQsocket(conn->pg);
    if (fd >= 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
}

/* One flight of units[0..n) on conn (see run_flight). Units that failed
 * only because the server forgot one of our prepared statements did not
 * run: unless `retrying`, they are put in again[] (returned count)
 * instead of being handed their outcome. */
static int flight(gp__oneshot_queue_t *q, gp_conn_t *conn, gp__oneshot_t **units, int n, gp__oneshot_t *self,
                  gp__oneshot_t **again, bool retrying)
{
    gp__qstate_t *qs = gp__qstate(conn);
    int tmo = unit_timeout_ms(q), built = 0, nagain = 0;
    for (int i = 0; i < n; i++) {
        gp__oneshot_t *u = units[i];
        gp_status_t st = qs ? build(u, conn, tmo) : gp__client_error(u->err, GP_ERR_NOMEM, "out of memory");
        if (st != GP_OK) {
            fail_unit(u, st);
            if (u->done)
                u->done(u, conn, st);
            deliver(u, self);
            continue;
        }
        units[built++] = u;
    }
    n = built;
    if (n == 0)
        return 0;
    atomic_fetch_add_explicit(&q->units, (uint64_t)n, memory_order_relaxed);
    atomic_fetch_add_explicit(&q->round_trips, 1, memory_order_relaxed);
    if (n > 1)
        atomic_fetch_add_explicit(&q->shared, (uint64_t)n, memory_order_relaxed);

    gp__taint(conn);
    flight_t f;
    f.n = 0;
    /* Units whose Sync was handed to libpq (which sends at each Sync): the
     * server may run and commit them. A unit whose Sync was not (libpq
     * refused a message: out of memory, or the connection broke) never
     * commits: the connection is closed before its Sync is sent. */
    int synced = 0;
    bool send_ok = gp__check_conn(conn, NULL) == GP_OK && PQenterPipelineMode(conn->pg);
    if (send_ok && n > 1)
        cork(conn, 1);
    while (send_ok && synced < n && (send_ok = send_unit(conn, qs, units[synced], &f)))
        synced++;
    if (n > 1)
        cork(conn, 0);
    if (!send_ok)
        conn->discard = true;

    bool forget = false, last_clean = false;
    int64_t progress = gp__now_ns();
    lost_t lost = LOST_NONE;
    int i = 0;
    for (; i < synced && lost == LOST_NONE; i++) {
        gp__oneshot_t *u = units[i];
        /* Each unit's statements are bounded by its statement timeout
         * from when the unit before it ended: no answer within
         * DATABASE_QUERY_TIMEOUT of that, and the server is not
         * answering. */
        int64_t t = (int64_t)q->query_timeout_ms * NS_PER_MS;
        conn->deadline_ns = t > 0 ? progress + t : 0;
        bool gone = false;
        bool known = read_unit(conn, u, &f, &lost, &gone, &forget);
        int64_t now = gp__now_ns();
        if (!known) {
            orphan(u, conn, true, q);
            deliver(u, self);
            i++;
            break;
        }
        free_built(u);
        if (gone)
            forget = true;
        last_clean = u->status == GP_OK && !gone;
        int64_t took = now - progress;
        progress = now;
        if (gone && !retrying && lost == LOST_NONE && u->status != GP_OK) {
            /* Nothing of it ran (its Bind failed): once more, afresh. */
            gp_result_free(u->result);
            u->result = NULL;
            gp_error_clear(u->err);
            u->status = GP_OK;
            again[nagain++] = u;
        } else {
            finish(u, conn, took);
            deliver(u, self); /* u may be gone from here on: its owner returns */
        }
    }
    /* After a loss: the units the server never reached when it said why it
     * ended the session; else their outcome is unknown. Units whose Sync
     * was never sent did not commit. */
    bool oom = !send_ok && PQstatus(conn->pg) == CONNECTION_OK;
    for (; i < n; i++) {
        if (i >= synced && oom) {
            free_built(units[i]);
            fail_unit(units[i], gp__client_error(units[i]->err, GP_ERR_NOMEM, "out of memory sending the statement "
                                                 "(it did not run)"));
            if (units[i]->done)
                units[i]->done(units[i], conn, GP_ERR_NOMEM);
        } else {
            orphan(units[i], conn, i < synced && lost != LOST_FATAL, q);
        }
        deliver(units[i], self);
    }
    conn->deadline_ns = 0;
    if (qs) {
        for (int k = 0; k < f.n; k++) { /* confirm what the server prepared, forget what it did not */
            if (f.ok[k])
                gp__stmt_confirm(f.entry[k]);
            else
                gp__stmt_drop(qs, f.entry[k]);
        }
        if (forget)
            gp__stmt_forget_all(qs, true);
    }
    if (PQpipelineStatus(conn->pg) != PQ_PIPELINE_OFF && !PQexitPipelineMode(conn->pg))
        conn->discard = true;
    /* Clean when the last unit's sweep ran after everything before it. */
    if (last_clean && !conn->discard && !conn->reset_needed && PQtransactionStatus(conn->pg) == PQTRANS_IDLE)
        conn->tainted = false;
    if (qs && !conn->discard)
        gp__stmt_enforce(conn, qs);
    return nagain;
}

/* Run units[0..n) on conn in one flight and hand each its outcome as it
 * arrives; `self` (the leader's own unit, maybe among them) is not woken.
 * Units that hit a statement the server forgot run once more, afresh, on
 * the same connection, or are told they did not run when it is gone. */
static void run_flight(gp__oneshot_queue_t *q, gp_conn_t *conn, gp__oneshot_t **units, int n, gp__oneshot_t *self)
{
    gp__oneshot_t *again[GP__ONESHOT_BATCH_MAX];
    int nagain = flight(q, conn, units, n, self, again, false);
    if (nagain > 0 && !conn->discard) {
        flight(q, conn, again, nagain, self, NULL, true);
        return;
    }
    for (int k = 0; k < nagain; k++) {
        orphan(again[k], conn, false, q);
        deliver(again[k], self);
    }
}

/* ---- leading ----------------------------------------------------------------------------- */

/* Lead until the own unit `me` is taken (by this leader or another), then
 * give the leadership up or pass it on. */
static void lead(gp_pool_t *pool, gp__oneshot_queue_t *q, gp__oneshot_t *me)
{
    gp__oneshot_t *units[GP__ONESHOT_BATCH_MAX];
    int max = q->batch < GP__ONESHOT_BATCH_MAX ? q->batch : GP__ONESHOT_BATCH_MAX;
    for (;;) {
        gp_conn_t *conn = NULL;
        gp_error_t aerr;
        int64_t left_ms = (me->acquire_deadline_ns - gp__now_ns() + NS_PER_MS - 1) / NS_PER_MS;
        gp_status_t st;
        if (left_ms <= 0) {
            st = gp__client_error(&aerr, GP_ERR_TIMEOUT,
                                  "no connection for the one-shot call within the pool's acquire timeout (%d ms): "
                                  "every connection was busy",
                                  gp__pool_acquire_timeout_ms(pool));
            aerr.klass = GP_ECLASS_TIMEOUT;
            aerr.retriable = 1;
        } else {
            st = gp_pool_acquire_at(pool, me->keybuf[0] ? me->keybuf : "gp_pool_query", me->site, (int)left_ms,
                                    &conn, &aerr);
        }
        pthread_mutex_lock(&q->mu);
        if (st != GP_OK) {
            if ((atomic_load_explicit(&me->state, memory_order_relaxed) & U_STATE) == U_QUEUED) {
                unlink_unit(q, me);
                *me->err = aerr;
                me->status = st;
                atomic_fetch_add_explicit(&me->state, U_DONE, memory_order_relaxed);
            }
            atomic_fetch_and_explicit(&me->state, ~U_LEAD, memory_order_relaxed);
            q->gathering--;
            leave_lead(q);
            pthread_mutex_unlock(&q->mu);
            return;
        }
        int n = take(q, units, max);
        q->gathering--;
        /* Units left behind (more than a flight holds, or one that runs
         * alone): the next gatherer starts now, while there is a
         * connection for it. */
        if (q->head && q->leaders < q->max_leaders)
            promote(q);
        pthread_mutex_unlock(&q->mu);
        if (n > 0)
            run_flight(q, conn, units, n, me);
        pthread_mutex_lock(&q->mu);
        bool queued = (atomic_load_explicit(&me->state, memory_order_relaxed) & U_STATE) == U_QUEUED;
        bool stay = queued && q->gathering == 0;
        if (stay) {
            q->gathering++; /* the own unit still waits, and nobody gathers: lead again */
        } else {            /* done, or taken, or another leader gathers it */
            atomic_fetch_and_explicit(&me->state, ~U_LEAD, memory_order_relaxed);
            leave_lead(q);
        }
        pthread_mutex_unlock(&q->mu);
        gp_pool_release(conn);
        if (!stay)
            return;
    }
}

/* A unit that runs alone (a flight of one: DATABASE_PIPELINE_BATCH=1, a
 * large or slow statement) does not queue: it leases a connection the
 * pool's usual way (its tenant-fair hand-off decides who is next) and
 * sends the same statements as a shared unit would. */
static gp_status_t run_alone(gp_pool_t *pool, gp__oneshot_queue_t *q, gp__oneshot_t *u, gp_conn_t *conn)
{
    if (!conn) {
        gp_status_t st =
            gp_pool_acquire_at(pool, u->keybuf[0] ? u->keybuf : "gp_pool_query", u->site, -1, &conn, u->err);
        if (st != GP_OK)
            return st;
    }
    atomic_store_explicit(&u->state, U_TAKEN, memory_order_relaxed);
    gp__oneshot_t *units[1] = {u};
    run_flight(q, conn, units, 1, u);
    gp_pool_release(conn);
    return u->status;
}

/* The own unit's bytes of parameters (for the flight's bound). */
static size_t param_bytes(const gp__params_t *p)
{
    size_t n = 0;
    for (int i = 0; i < p->n; i++)
        if (p->values[i])
            n += p->formats[i] ? (size_t)p->lengths[i] : strlen(p->values[i]);
    return n;
}

static gp_status_t run(gp_pool_t *pool, gp__oneshot_queue_t *q, gp__oneshot_t *u);

gp_status_t gp__oneshot_run(gp_pool_t *pool, gp__oneshot_t *u)
{
    gp__oneshot_queue_t *q = gp__pool_oneshots(pool);
    gp_error_t local;
    if (!u->err)
        u->err = &local;
    if (gp__pool_enter(pool) != GP_OK)
        return gp__client_error(u->err, GP_ERR_CLOSED, "the pool is closed");
    gp_status_t st = run(pool, q, u);
    gp__pool_leave(pool); /* (may free a closed pool) */
    if (st == GP_OK && u->err != &local)
        gp_error_clear(u->err);
    return st;
}

static gp_status_t run(gp_pool_t *pool, gp__oneshot_queue_t *q, gp__oneshot_t *u)
{
    u->result = NULL;
    u->status = GP_OK;
    u->n = 0;
    u->rows = 0;
    u->affected = 0;
    u->bytes_out = 0;
    u->next = u->prev = NULL;
    atomic_init(&u->state, U_QUEUED);
    gp_status_t st = gp__params_encode(&u->caller_params, u->nparams, u->params, false, u->err);
    if (st != GP_OK)
        return st;
    u->bytes = strlen(u->sql) + param_bytes(&u->caller_params);
    size_t klen = u->key ? strnlen(u->key, sizeof u->keybuf - 1) : 0; /* (a tenant id: 36 bytes) */
    memcpy(u->keybuf, u->key ? u->key : "", klen);
    u->keybuf[klen] = 0;
    u->keyhash = text_hash(u->keybuf);
    u->sqlhash = text_hash(u->sql);
    int64_t now = gp__now_ns();
    u->alone = q->batch <= 1 || u->bytes > BATCH_BYTES_MAX || marked_alone(u->sqlhash, now);
    u->acquire_deadline_ns = now + (int64_t)gp__pool_acquire_timeout_ms(pool) * NS_PER_MS;
    /* Alone, or nobody queued and a connection idle (callers do not
     * outnumber connections): a flight of one at once. */
    gp_conn_t *idle = NULL;
    if (u->alone || (atomic_load_explicit(&q->queued, memory_order_relaxed) == 0 &&
                     gp__pool_try_acquire(pool, u->keybuf[0] ? u->keybuf : "gp_pool_query", u->site, &idle))) {
        st = run_alone(pool, q, u, idle);
        gp__params_free(&u->caller_params);
        return st;
    }

    pthread_mutex_lock(&q->mu);
    if (q->max_waiting > 0 && u->keybuf[0]) {
        int waiting = 0;
        for (gp__oneshot_t *w = q->head; w; w = w->next)
            waiting += same_key(w, u);
        if (waiting >= q->max_waiting) {
            pthread_mutex_unlock(&q->mu);
            gp__params_free(&u->caller_params);
            st = gp__client_error(u->err, GP_ERR_BUSY,
                                  "'%s' already has %d one-shot calls waiting (DATABASE_TENANT_MAX_WAITING = %d); "
                                  "retry later",
                                  u->keybuf, waiting, q->max_waiting);
            u->err->klass = GP_ECLASS_THROTTLED;
            u->err->retriable = 1;
            return st;
        }
    }
    u->seq = ++q->seq;
    push_unit(q, u);
    if (q->gathering == 0 && q->leaders < q->max_leaders) {
        q->leaders++;
        q->gathering++;
        atomic_store_explicit(&u->state, U_QUEUED | U_LEAD, memory_order_relaxed);
    }
    pthread_mutex_unlock(&q->mu);

    for (;;) {
        int s = state_of(u);
        if (s & U_LEAD) {
            lead(pool, q, u);
            continue;
        }
        if (s == U_DONE)
            break;
        if (s == U_QUEUED && gp__now_ns() >= u->acquire_deadline_ns) {
            /* Still queued at the acquire deadline: give up, unless the
             * leadership or a leader reached it meanwhile. */
            pthread_mutex_lock(&q->mu);
            if (atomic_load_explicit(&u->state, memory_order_relaxed) == U_QUEUED) {
                unlink_unit(q, u);
                u->status = gp__client_error(u->err, GP_ERR_TIMEOUT,
                                             "no connection for the one-shot call within the pool's acquire "
                                             "timeout (%d ms): every connection was busy",
                                             gp__pool_acquire_timeout_ms(pool));
                u->err->klass = GP_ECLASS_TIMEOUT;
                u->err->retriable = 1;
                atomic_store_explicit(&u->state, U_DONE, memory_order_relaxed);
            }
            pthread_mutex_unlock(&q->mu);
            continue;
        }
        /* Queued: sleep at most until the acquire deadline; taken: until
         * the leader hands the outcome over (bounded by its deadlines). */
        futex_wait(&u->state, s, s == U_QUEUED ? u->acquire_deadline_ns : 0);
    }
    gp__params_free(&u->caller_params);
    return u->status;
}

gp_status_t gp__oneshot_unanswered(gp_conn_t *conn, gp_status_t st, gp_error_t *err)
{
    if (st != GP_ERR_TIMEOUT || !conn || !conn->timed_out)
        return st;
    gp__client_error(err, GP_ERR_COMMIT_UNKNOWN,
                     "no answer from the server within DATABASE_QUERY_TIMEOUT (%d ms) after the one-shot statement "
                     "was sent: it may or may not have committed (check before repeating it); the connection is "
                     "closed",
                     conn->query_timeout_ms);
    if (err) {
        err->klass = GP_ECLASS_CONNECTION;
        err->retriable = 0;
    }
    return GP_ERR_COMMIT_UNKNOWN;
}
