/* pool_read.c — read routing: which pool serves a read (pool.h, "Read
 * replicas"), the standbys' replay lag, and waiting for a WAL position. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool_internal.h"

#define LAG_FRESH_NS INT64_C(1000000000)  /* a measured lag serves this long */
#define DOWN_BACKOFF_NS INT64_C(1000000000) /* an unreachable read pool is left alone this long */
#define DEFAULT_WAIT_MS 100
#define QUERY_FLOOR_NS INT64_C(500000000) /* a replay check may take this long, whatever is left of a wait */

struct gp__read_state {
    _Atomic int64_t lag_ms;        /* last measured; -1 unknown */
    _Atomic int64_t measured_ns;   /* when (monotonic); 0 never */
    _Atomic int64_t down_until_ns; /* the read pool is not tried before then */
    atomic_flag measuring;         /* one lease measures at a time */
    _Atomic uint64_t served[GP_READ_SERVED_COUNT_];
};

gp__read_state_t *gp__read_state_new(void)
{
    gp__read_state_t *rs = calloc(1, sizeof *rs);
    if (!rs)
        return NULL;
    atomic_init(&rs->lag_ms, -1);
    atomic_init(&rs->measured_ns, 0);
    atomic_init(&rs->down_until_ns, 0);
    atomic_flag_clear(&rs->measuring);
    for (int i = 0; i < GP_READ_SERVED_COUNT_; i++)
        atomic_init(&rs->served[i], 0);
    return rs;
}

void gp__read_state_free(gp__read_state_t *rs) { free(rs); }

const char *gp_read_served_name(gp_read_served_t s)
{
    static const char *const names[] = {"replica",     "primary_none",   "primary_down",
                                        "primary_lag", "primary_behind", "primary_busy"};
    return (unsigned)s < GP_READ_SERVED_COUNT_ ? names[s] : "unknown";
}

int gp_conn_is_replica(const gp_conn_t *conn) { return conn && conn->writer != NULL; }

bool gp__wal_position_ok(const char *s)
{
    if (!s)
        return false;
    int part = 0, digits = 0;
    for (; *s; s++) {
        bool hex = (*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'F') || (*s >= 'a' && *s <= 'f');
        if (hex && digits < 8) {
            digits++;
        } else if (*s == '/' && part == 0 && digits > 0) {
            part = 1;
            digits = 0;
        } else {
            return false;
        }
    }
    return part == 1 && digits > 0;
}

/* One statement of the library's with text parameters, its single value
 * in *out (NULL when it is NULL); false when it failed. Answered by
 * deadline_ns (monotonic) at the latest, whatever DATABASE_QUERY_TIMEOUT
 * says (none by default): a standby that stopped answering must leave the
 * read time for the primary; the connection is then discarded. */
static bool value_of(gp_conn_t *conn, const char *sql, int n, const char *const *params, char *out, size_t len,
                     int64_t deadline_ns)
{
    gp__arm_deadline(conn);
    if (!conn->deadline_ns || deadline_ns < conn->deadline_ns)
        conn->deadline_ns = deadline_ns;
    PGresult *r = gp__exec_params(conn, sql, n, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 1;
    if (ok) {
        const char *v = PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0);
        size_t k = strlen(v);
        ok = k < len;
        if (ok)
            memcpy(out, v, k + 1);
    } else if (PQstatus(conn->pg) != CONNECTION_OK || conn->timed_out) {
        conn->discard = true;
    }
    PQclear(r);
    return ok;
}

int gp__wait_replayed(gp_conn_t *conn, const char *position, int64_t deadline_ns)
{
    static const char sql[] =
        "SELECT CASE WHEN pg_catalog.pg_is_in_recovery() "
        "THEN coalesce(pg_catalog.pg_last_wal_replay_lsn() OPERATOR(pg_catalog.>=) $1::pg_catalog.pg_lsn, false) "
        "ELSE pg_catalog.pg_current_wal_insert_lsn() OPERATOR(pg_catalog.>=) $1::pg_catalog.pg_lsn END";
    /* A read pool's connection vouches for a position only while its
     * server is a standby: one promoted since (while the primary still
     * runs, or kept by a connection made before) writes WAL of another
     * history, whose positions say nothing of the primary's (NULL: at once
     * "not replayed"). */
    static const char standby_sql[] =
        "SELECT CASE WHEN pg_catalog.pg_is_in_recovery() "
        "THEN coalesce(pg_catalog.pg_last_wal_replay_lsn() OPERATOR(pg_catalog.>=) $1::pg_catalog.pg_lsn, false) END";
    for (;;) {
        char v[8];
        /* each check answered by the deadline, or within half a second
         * when less is left: a live standby is not dropped for a wait that
         * ran out while it answered */
        int64_t by = gp__now_ns() + QUERY_FLOOR_NS;
        if (!value_of(conn, conn->writer ? standby_sql : sql, 1, (const char *const[]){position}, v, sizeof v,
                      by > deadline_ns ? by : deadline_ns))
            return -1;
        if (v[0] == 't')
            return 1;
        if (!v[0])
            return 0;
        if (gp__now_ns() >= deadline_ns)
            return 0;
        struct timespec ts = {0, 1000000}; /* polling the server's replay position */
        nanosleep(&ts, NULL);
    }
}

/* The replay lag of conn's server, a read pool's, in ms, or -1 (unknown;
 * also for a server that is not in recovery: promoted since, it may have
 * diverged from the primary without bound). A
 * standby that has replayed all it received is current: after a restart
 * its receive position starts at the beginning of a WAL segment, behind
 * what it replayed, until the primary sends more (and the last transaction
 * it replayed may be old), so "all" is <=, not =. */
static int64_t measure_lag(gp_conn_t *conn, int64_t deadline_ns)
{
    static const char sql[] =
        "SELECT CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN NULL"
        " WHEN pg_catalog.pg_last_wal_receive_lsn() OPERATOR(pg_catalog.<=) pg_catalog.pg_last_wal_replay_lsn()"
        " THEN 0"
        " ELSE coalesce((1000 OPERATOR(pg_catalog.*) extract(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-)"
        " pg_catalog.pg_last_xact_replay_timestamp()))::pg_catalog.int8, -1) END";
    char v[32];
    if (!value_of(conn, sql, 0, NULL, v, sizeof v, deadline_ns) || !v[0])
        return -1;
    long long ms = strtoll(v, NULL, 10);
    return ms < 0 ? 0 : ms; /* a clock a little ahead of the primary's: current */
}

/* A lease of the primary pool, for a read, within what is left of the
 * caller's wait (since t0; at least 1 ms). */
static gp_status_t primary_since(gp_pool_t *pool, gp__read_state_t *rs, gp_read_served_t why, const char *label,
                                 int timeout_ms, int64_t t0, gp_conn_t **out, gp_error_t *err)
{
    int64_t left = timeout_ms - (gp__now_ns() - t0) / 1000000;
    timeout_ms = left > 0 ? (int)left : 1;
    if (rs)
        atomic_fetch_add_explicit(&rs->served[why], 1, memory_order_relaxed);
    gp_status_t st = gp_pool_acquire_at(pool, label, "gp_pool_acquire_read", timeout_ms, out, err);
    if (st == GP_OK)
        (*out)->read_lease = true;
    return st;
}

gp_status_t gp_pool_acquire_read(gp_pool_t *pool, const gp_read_opts_t *opts, const char *label, int timeout_ms,
                                 gp_conn_t **out, gp_error_t *err)
{
    if (out)
        *out = NULL;
    if (!pool || !out)
        return gp_pool_acquire(pool, label, timeout_ms, out, err); /* its error */
    const char *after = opts ? opts->after : NULL;
    if (after && !gp__wal_position_ok(after)) {
        if (err) {
            gp_error_clear(err);
            err->status = GP_ERR_INVALID;
            err->klass = GP_ECLASS_CLIENT;
            snprintf(err->message, sizeof err->message, "gp_read_opts_t.after: expected a WAL position like "
                     "16/B374D848 (from gp_pool_wal_position), or NULL");
        }
        return GP_ERR_INVALID;
    }
    int64_t t0 = gp__now_ns();
    if (timeout_ms < 0)
        timeout_ms = gp__pool_acquire_timeout_ms(pool);
    gp_pool_t *rp = gp_pool_read_pool(pool);
    gp__read_state_t *rs = gp__pool_rstate(pool); /* (NULL for a read pool itself) */
    if (!rp)
        return primary_since(pool, rs, GP_READ_PRIMARY_NONE, label, timeout_ms, t0, out, err);
    int64_t now = gp__now_ns(), until = atomic_load(&rs->down_until_ns);
    if (now < until)
        return primary_since(pool, rs, GP_READ_PRIMARY_DOWN, label, timeout_ms, t0, out, err);
    /* Its last attempts failed and nothing is idle: once a second one
     * caller tries it again (the others read from the primary meanwhile);
     * without that try a read pool that opens only on demand would stay
     * unused once the standby is back. */
    if (gp__pool_unreachable(rp) &&
        !atomic_compare_exchange_strong(&rs->down_until_ns, &until, now + DOWN_BACKOFF_NS))
        return primary_since(pool, rs, GP_READ_PRIMARY_DOWN, label, timeout_ms, t0, out, err);
    /* The standby gets at most the connect timeout of the caller's wait:
     * a hung standby must leave time for the primary. */
    int rt = timeout_ms / 2 > 0 ? timeout_ms / 2 : 1;
    if (rt > gp__pool_connect_timeout_ms(rp))
        rt = gp__pool_connect_timeout_ms(rp);
    gp_conn_t *c = NULL;
    gp_error_t e;
    gp_status_t ast = gp_pool_acquire_at(rp, label, "gp_pool_acquire_read", rt, &c, &e);
    if (ast != GP_OK) {
        /* A busy read pool (every connection leased, or this caller's key
         * over its share) is not a standby that cannot be reached: this
         * read goes to the primary, the next ones try the standby again. */
        gp_pool_metrics_t m;
        bool busy = ast == GP_ERR_BUSY ||
                    (ast == GP_ERR_TIMEOUT && gp_pool_metrics(rp, &m) == GP_OK && m.leased >= m.max);
        if (!busy)
            atomic_store(&rs->down_until_ns, gp__now_ns() + DOWN_BACKOFF_NS);
        return primary_since(pool, rs, busy ? GP_READ_PRIMARY_BUSY : GP_READ_PRIMARY_DOWN, label, timeout_ms, t0, out,
                             err);
    }
    /* An idle connection to a standby that has stopped since: its farewell
     * (57P01) and the end of the stream wait in the socket. Read them, no
     * round trip, rather than hand the caller a dead lease (twice: libpq
     * sees the end of the stream on the read after the one that returns
     * the farewell). */
    if (!PQconsumeInput(c->pg) || !PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK) {
        c->discard = true;
        gp_pool_release(c);
        atomic_store(&rs->down_until_ns, gp__now_ns() + DOWN_BACKOFF_NS);
        return primary_since(pool, rs, GP_READ_PRIMARY_DOWN, label, timeout_ms, t0, out, err);
    }
    int64_t measured = atomic_load(&rs->measured_ns);
    if ((measured == 0 || gp__now_ns() - measured > LAG_FRESH_NS) && !atomic_flag_test_and_set(&rs->measuring)) {
        int64_t lag = measure_lag(c, gp__now_ns() + (int64_t)rt * 1000000LL);
        atomic_store(&rs->lag_ms, lag);
        atomic_store(&rs->measured_ns, gp__now_ns());
        atomic_flag_clear(&rs->measuring);
        if (c->discard) {
            gp_pool_release(c);
            atomic_store(&rs->down_until_ns, gp__now_ns() + DOWN_BACKOFF_NS);
            return primary_since(pool, rs, GP_READ_PRIMARY_DOWN, label, timeout_ms, t0, out, err);
        }
    }
    int64_t lag = atomic_load(&rs->lag_ms);
    int max_lag = gp__pool_read_max_lag_ms(pool);
    if (lag < 0 || (max_lag > 0 && lag > max_lag)) {
        gp_pool_release(c);
        return primary_since(pool, rs, GP_READ_PRIMARY_LAG, label, timeout_ms, t0, out, err);
    }
    if (after) {
        int wait = opts->wait_ms > 0 ? opts->wait_ms : DEFAULT_WAIT_MS;
        /* The wait counts in the caller's timeout, and leaves the primary
         * half of it. */
        int64_t by = gp__now_ns() + (int64_t)wait * 1000000LL, cap = t0 + (int64_t)timeout_ms * 500000LL;
        int r = gp__wait_replayed(c, after, by < cap ? by : cap);
        if (r != 1) {
            bool broken = c->discard;
            gp_pool_release(c);
            if (broken)
                atomic_store(&rs->down_until_ns, gp__now_ns() + DOWN_BACKOFF_NS);
            return primary_since(pool, rs, broken ? GP_READ_PRIMARY_DOWN : GP_READ_PRIMARY_BEHIND, label, timeout_ms,
                                 t0, out, err);
        }
    }
    atomic_fetch_add_explicit(&rs->served[GP_READ_REPLICA], 1, memory_order_relaxed);
    c->read_lease = true;
    *out = c;
    if (err)
        gp_error_clear(err);
    return GP_OK;
}

void gp__read_metrics(gp_pool_t *pool, uint64_t served[GP_READ_SERVED_COUNT_], int64_t *lag_ms)
{
    gp__read_state_t *rs = gp__pool_rstate(pool);
    *lag_ms = rs && gp_pool_read_pool(pool) ? atomic_load(&rs->lag_ms) : -1;
    for (int i = 0; i < GP_READ_SERVED_COUNT_; i++)
        served[i] = rs ? atomic_load_explicit(&rs->served[i], memory_order_relaxed) : 0;
}
