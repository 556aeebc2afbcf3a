/* health.c — deadline-bounded checks of PostgreSQL and Redis (through the
 * pool and cache when given, else with fresh connections), and the JSON
 * rendering of a report (Prometheus: health_metrics.c). */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "growplate/health.h"
#include "cache_internal.h"
#include "internal.h"
#include "pool_internal.h"

const char *gp_health_state_name(gp_health_state_t s)
{
    switch (s) {
    case GP_HEALTH_UP: return "up";
    case GP_HEALTH_DEGRADED: return "degraded";
    case GP_HEALTH_DOWN: return "down";
    }
    return "unknown";
}

static int64_t ms_left(int64_t deadline_ns)
{
    int64_t left = (deadline_ns - gp__now_ns()) / 1000000;
    return left > 0 ? left : 0;
}

/* Wait until fd is readable (or writable); false at the deadline. */
static bool wait_fd(int fd, bool for_write, int64_t deadline_ns)
{
    for (;;) {
        int64_t left = ms_left(deadline_ns);
        if (left <= 0 && gp__now_ns() >= deadline_ns)
            return false;
        struct pollfd p = {.fd = fd, .events = for_write ? POLLOUT : POLLIN};
        int rc = poll(&p, 1, (int)(left > 0 ? left : 1));
        if (rc > 0)
            return true;
        if (rc < 0 && errno != EINTR)
            return true; /* let libpq report the socket error */
    }
}

static void one_line(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = 0;
    for (char *p = s; *p; p++)
        if (*p == '\n')
            *p = ' ';
}

/* The advice for a server that could not be reached (no development hints:
 * the CLI adds those). */
#define UNREACHABLE_HINT " (is the server running, and reachable from here?)"

static void fail_probe(gp_probe_t *out, gp_status_t st, const char *target, const char *what, const char *advice)
{
    char clean[512];
    const char *phrase = gp__conninfo_error_phrase(what); /* these quote the connection string */
    if (phrase)
        what = phrase;
    gp_redact(what, clean, sizeof clean); /* the whole text: a cut one could end inside a URL's user info */
    one_line(clean);
    out->status = st;
    out->latency_ns = 0;
    snprintf(out->message, sizeof out->message, "%s: %s%s", target, clean, advice ? advice : "");
}

/* Send SELECT 1 on an idle connection and wait for its result, within the
 * deadline. Returns GP_OK, GP_ERR_TIMEOUT (the query was canceled) or the
 * classified failure. */
static gp_status_t round_trip(PGconn *pg, int64_t deadline_ns, gp_probe_t *out, const char *target)
{
    int64_t t0 = gp__now_ns();
    /* One round trip: the server's role and, on a standby, how far behind it is. */
    if (!PQsendQuery(pg, "SELECT pg_catalog.pg_is_in_recovery(), "
                         "CASE WHEN pg_catalog.pg_is_in_recovery() THEN (1000 * extract(epoch FROM "
                         "pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp()))::int8 END, "
                         "pg_catalog.current_setting('transaction_read_only')")) {
        fail_probe(out, GP_ERR_CONNECT, target, PQerrorMessage(pg), NULL);
        return out->status;
    }
    while (PQisBusy(pg)) {
        if (!wait_fd(PQsocket(pg), false, deadline_ns)) {
            PGcancel *c = PQgetCancel(pg);
            char e[64];
            if (c) {
                PQcancel(c, e, sizeof e);
                PQfreeCancel(c);
            }
            fail_probe(out, GP_ERR_TIMEOUT, target, "no answer to SELECT 1 before the health deadline", NULL);
            return out->status;
        }
        if (!PQconsumeInput(pg)) {
            fail_probe(out, GP_ERR_CONNECT, target, PQerrorMessage(pg), NULL);
            return out->status;
        }
    }
    PGresult *r;
    gp_status_t st = GP_OK;
    while ((r = PQgetResult(pg))) {
        if (PQresultStatus(r) != PGRES_TUPLES_OK && st == GP_OK) {
            gp_error_t e;
            st = gp__error_from_pg(pg, r, &e);
            fail_probe(out, st, target, e.message, NULL);
        } else if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 3) {
            bool standby = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
            bool ro = strcmp(PQgetvalue(r, 0, 2), "on") == 0;
            snprintf(out->role, sizeof out->role, "%s", standby ? "standby" : ro ? "read-only" : "primary");
            out->replay_lag_ms = standby && !PQgetisnull(r, 0, 1) ? strtoll(PQgetvalue(r, 0, 1), NULL, 10) : -1;
        }
        PQclear(r);
    }
    if (st == GP_OK) {
        out->latency_ns = gp__now_ns() - t0;
        int v = PQserverVersion(pg);
        snprintf(out->server_version, sizeof out->server_version, "%d.%d", v / 10000, v % 10000);
        out->status = GP_OK;
    }
    return st;
}

static gp_status_t probe_pg_fresh(const gp_config_t *cfg, int64_t deadline_ns, gp_probe_t *out)
{
    char target[256];
    gp_config_db_display(&cfg->db, target, sizeof target);
    gp__pg_params_t p;
    if (gp__pg_params(&cfg->db, false, &p, out->message, sizeof out->message) != GP_OK)
        return out->status = GP_ERR_CONFIG;
    PGconn *pg = PQconnectStartParams(p.kw, p.val, 1);
    if (!pg) {
        snprintf(out->message, sizeof out->message, "out of memory creating a libpq connection");
        return out->status = GP_ERR_NOMEM;
    }
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    while (PQstatus(pg) != CONNECTION_BAD && ps != PGRES_POLLING_OK && ps != PGRES_POLLING_FAILED) {
        if (!wait_fd(PQsocket(pg), ps == PGRES_POLLING_WRITING, deadline_ns)) {
            fail_probe(out, GP_ERR_TIMEOUT, target, "no connection before the health deadline",
                       UNREACHABLE_HINT);
            PQfinish(pg);
            return out->status;
        }
        ps = PQconnectPoll(pg);
    }
    if (PQstatus(pg) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(pg);
        gp_status_t st = strstr(msg, "timeout expired") ? GP_ERR_TIMEOUT : gp__error_from_connect(pg, NULL);
        fail_probe(out, st, target, msg,
                   st == GP_ERR_AUTH ? " (check DATABASE_USER/DATABASE_PASSWORD or the URL's credentials)"
                                     : UNREACHABLE_HINT);
        PQfinish(pg);
        return out->status;
    }
    round_trip(pg, deadline_ns, out, target);
    PQfinish(pg);
    return out->status;
}

static gp_status_t probe_pg_pool(gp_pool_t *pool, int64_t deadline_ns, gp_probe_t *out)
{
    gp_conn_t *conn = NULL;
    gp_error_t e;
    int64_t left = ms_left(deadline_ns);
    gp_status_t st = gp_pool_acquire(pool, "health", (int)(left > 0 ? left : 1), &conn, &e);
    if (st != GP_OK) {
        fail_probe(out, st, "pool", e.message, NULL);
        return out->status;
    }
    round_trip(conn->pg, deadline_ns, out, "pool");
    if (out->status != GP_OK)
        conn->discard = true; /* canceled or broken mid-query: never reuse it */
    gp_pool_release(conn);
    return out->status;
}

static gp_status_t probe_redis_until(const gp_config_t *cfg, int64_t deadline_ns, gp_probe_t *out)
{
    gp__redis_target_t t;
    if (gp__redis_target(&cfg->redis, &t, out->message, sizeof out->message) != GP_OK)
        return out->status = GP_ERR_CONFIG;
    char target[300];
    gp_config_redis_display(&cfg->redis, target, sizeof target);
    redisContext *c;
    SSL *ssl;
    gp_error_t e;
    /* The socket timeout is whatever is left of the deadline. */
    gp_status_t st =
        gp__redis_open(&t, NULL, target, deadline_ns, cfg->redis.connect_timeout_ms, INT_MAX, &c, &ssl, NULL, NULL, &e);
    memset(&t, 0, sizeof t);
    if (st != GP_OK) {
        out->status = st == GP_ERR_NOMEM              ? GP_ERR_NOMEM
                      : e.klass == GP_ECLASS_TIMEOUT ? GP_ERR_TIMEOUT
                      : e.klass == GP_ECLASS_AUTH    ? GP_ERR_AUTH
                      : e.klass == GP_ECLASS_CLIENT  ? GP_ERR_CONFIG
                                                     : GP_ERR_CONNECT;
        snprintf(out->message, sizeof out->message, "%s%s", e.message,
                 out->status == GP_ERR_CONNECT || out->status == GP_ERR_TIMEOUT
                     ? UNREACHABLE_HINT
                     : "");
        return out->status;
    }
    int64_t t1 = gp__now_ns();
    redisReply *rep = gp__redis_command(c, ssl, 1, (const char *[]){"PING"});
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        bool noauth = rep && rep->str && strncmp(rep->str, "NOAUTH", 6) == 0;
        fail_probe(out, noauth ? GP_ERR_AUTH : !rep && c->err == REDIS_ERR_IO ? GP_ERR_TIMEOUT : GP_ERR_CONNECT, target,
                   rep ? rep->str : c->errstr, noauth ? " (check REDIS_USERNAME/REDIS_PASSWORD)" : NULL);
        if (rep)
            freeReplyObject(rep);
        gp__redis_close(c, ssl);
        return out->status;
    }
    freeReplyObject(rep);
    out->latency_ns = gp__now_ns() - t1;
    rep = gp__redis_command(c, ssl, 2, (const char *[]){"INFO", "server"});
    if (rep && rep->type == REDIS_REPLY_STRING) {
        const char *v = strstr(rep->str, "redis_version:");
        if (v)
            snprintf(out->server_version, sizeof out->server_version, "%.*s", (int)strcspn(v + 14, "\r\n"), v + 14);
    }
    if (rep)
        freeReplyObject(rep);
    gp__redis_close(c, ssl);
    return out->status = GP_OK;
}

gp_status_t gp_probe_postgres(const gp_config_t *cfg, gp_probe_t *out)
{
    if (!out)
        return GP_ERR_INVALID;
    memset(out, 0, sizeof *out);
    out->replay_lag_ms = -1;
    if (!cfg) {
        snprintf(out->message, sizeof out->message, "no configuration given");
        return out->status = GP_ERR_INVALID;
    }
    return probe_pg_fresh(cfg, gp__now_ns() + (int64_t)cfg->db.connect_timeout_ms * 1000000LL, out);
}

gp_status_t gp_probe_redis(const gp_config_t *cfg, gp_probe_t *out)
{
    if (!out)
        return GP_ERR_INVALID;
    memset(out, 0, sizeof *out);
    out->replay_lag_ms = -1;
    if (!cfg) {
        snprintf(out->message, sizeof out->message, "no configuration given");
        return out->status = GP_ERR_INVALID;
    }
    int64_t budget = (int64_t)cfg->redis.connect_timeout_ms + cfg->redis.timeout_ms;
    return probe_redis_until(cfg, gp__now_ns() + budget * 1000000LL, out);
}

/* ---- the combined check ---------------------------------------------------- */

typedef struct redis_job {
    const gp_health_options_t *opts;
    int64_t deadline_ns;
    gp_probe_t *out;
} redis_job_t;

/* The server's version through the cache's own connections (INFO server). */
static void cache_version(gp_cache_t *cache, gp_probe_t *out)
{
    const char *argv[2] = {"INFO", "server"};
    size_t len[2] = {4, 6};
    cache_cmd_t cmd = {2, argv, len};
    redisReply *rep = NULL;
    cache_arena_t arena;
    gp__cache_arena_init(&arena);
    if (gp__cache_exec(cache, 1, &cmd, &rep, &arena, true, NULL) == GP_OK && rep && rep->type == REDIS_REPLY_STRING) {
        const char *v = strstr(rep->str, "redis_version:");
        if (v)
            snprintf(out->server_version, sizeof out->server_version, "%.*s", (int)strcspn(v + 14, "\r\n"), v + 14);
    }
    gp__cache_arena_free(&arena);
}

/* What the node the cache's connections go to says it is (ROLE, through
 * the cache), and whether it answered "wrong node" lately: either makes the
 * cache degraded, with the reason. A replica also makes every connection
 * of the cache go (it is the old master of a failover, or a
 * misconfiguration). */
#define WRONG_NODE_RECENT_MS 10000
static void cache_topology(gp_cache_t *cache, const char *target, gp_probe_t *out)
{
    const char *argv[1] = {"ROLE"};
    size_t len[1] = {4};
    cache_cmd_t cmd = {1, argv, len};
    redisReply *rep = NULL;
    cache_arena_t arena;
    gp__cache_arena_init(&arena);
    if (gp__cache_exec(cache, 1, &cmd, &rep, &arena, true, NULL) == GP_OK && rep && rep->type == REDIS_REPLY_ARRAY &&
        rep->elements >= 1 && rep->element[0]->type == REDIS_REPLY_STRING) {
        const char *role = rep->element[0]->str;
        snprintf(out->role, sizeof out->role, "%s", strcmp(role, "slave") == 0 ? "replica" : role);
        if (strcmp(role, "master") != 0) {
            gp__topo_suspect(&cache->topo, true);
            fail_probe(out, GP_ERR_UNAVAILABLE, target, "the node the cache's connections go to is a replica now",
                       " (writes fail with READONLY; the cache reconnects: with Sentinel to the master the sentinels "
                       "name, else point REDIS_URL at the master)");
        }
    }
    gp__cache_arena_free(&arena);
    gp_cache_metrics_t m;
    if (out->status == GP_OK && gp_cache_metrics(cache, &m) == GP_OK && m.wrong_node_age_ms >= 0 &&
        m.wrong_node_age_ms < WRONG_NODE_RECENT_MS) {
        char what[400];
        pthread_mutex_lock(&cache->topo.mu);
        snprintf(what, sizeof what, "wrong-node replies %lld ms ago, the last: %s", (long long)m.wrong_node_age_ms,
                 cache->topo.last_wrong);
        pthread_mutex_unlock(&cache->topo.mu);
        fail_probe(out, GP_ERR_UNAVAILABLE, target, what, " (see growplate_cache_wrong_node_total)");
    }
}

static void *redis_check(void *arg)
{
    redis_job_t *j = arg;
    const gp_health_options_t *o = j->opts;
    int64_t budget_ns = (int64_t)o->cfg->redis.timeout_ms * 1000000LL;
    if (o->cache && gp__now_ns() + budget_ns <= j->deadline_ns) {
        gp_error_t e;
        char target[300];
        gp_config_redis_display(&o->cfg->redis, target, sizeof target);
        memset(j->out, 0, sizeof *j->out);
        if (gp_cache_ping(o->cache, &j->out->latency_ns, &e) == GP_OK) {
            j->out->status = GP_OK;
            if (gp__now_ns() + budget_ns <= j->deadline_ns)
                cache_version(o->cache, j->out);
            if (gp__now_ns() + budget_ns <= j->deadline_ns)
                cache_topology(o->cache, target, j->out);
        }
        else if (e.klass == GP_ECLASS_AUTH) /* the message already says what to check */
            fail_probe(j->out, GP_ERR_AUTH, target, e.message, NULL);
        else
            fail_probe(j->out, e.status, target, e.message, UNREACHABLE_HINT);
    } else {
        probe_redis_until(o->cfg, j->deadline_ns, j->out);
    }
    return NULL;
}

gp_status_t gp_health_check(const gp_health_options_t *opts, gp_health_report_t *out)
{
    if (!out)
        return GP_ERR_INVALID;
    memset(out, 0, sizeof *out);
    out->postgres.replay_lag_ms = out->redis.replay_lag_ms = -1;
    if (!opts || !opts->cfg)
        return GP_ERR_INVALID;
    int64_t t0 = gp__now_ns();
    out->deadline_ms = opts->deadline_ms > 0 ? opts->deadline_ms : GP_HEALTH_DEFAULT_DEADLINE_MS;
    int64_t deadline = t0 + (int64_t)out->deadline_ms * 1000000LL;

    /* Redis in a second thread, PostgreSQL here: the deadline bounds both. */
    redis_job_t job = {opts, deadline, &out->redis};
    pthread_t th;
    bool threaded = pthread_create(&th, NULL, redis_check, &job) == 0;
    if (opts->pool)
        probe_pg_pool(opts->pool, deadline, &out->postgres);
    else
        probe_pg_fresh(opts->cfg, deadline, &out->postgres);
    out->replica.replay_lag_ms = -1;
    gp_pool_t *rp = opts->pool ? gp_pool_read_pool(opts->pool) : NULL;
    if (rp || (!opts->pool && opts->cfg->db.read_url)) {
        out->have_replica = 1;
        if (rp) {
            probe_pg_pool(rp, deadline, &out->replica);
        } else {
            gp_config_t rc = *opts->cfg;
            rc.db.url = opts->cfg->db.read_url;
            rc.db.host = NULL;
            rc.db.port = 0;
            probe_pg_fresh(&rc, deadline, &out->replica);
        }
    }
    if (threaded)
        pthread_join(th, NULL);
    else
        redis_check(&job);

    if (opts->pool && gp_pool_metrics(opts->pool, &out->pool) == GP_OK)
        out->have_pool = 1;
    if (opts->cache && gp_cache_metrics(opts->cache, &out->cache) == GP_OK)
        out->have_cache = 1;
    bool writable = !out->postgres.role[0] || strcmp(out->postgres.role, "primary") == 0;
    bool replica_ok = !out->have_replica || out->replica.status == GP_OK;
    out->state = out->postgres.status != GP_OK                         ? GP_HEALTH_DOWN
                 : out->redis.status != GP_OK || !writable || !replica_ok ? GP_HEALTH_DEGRADED
                                                                       : GP_HEALTH_UP;
    out->elapsed_ns = gp__now_ns() - t0;
    return GP_OK;
}

/* ---- JSON ---------------------------------------------------------------------- */

static json_t *probe_json(const gp_probe_t *p)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "ok", json_boolean(p->status == GP_OK));
    json_object_set_new(o, "status", json_string(gp_strerror(p->status)));
    json_object_set_new(o, "latency_ms", json_real((double)p->latency_ns / 1e6));
    json_object_set_new(o, "version", json_string(p->server_version));
    if (p->role[0])
        json_object_set_new(o, "role", json_string(p->role));
    if (p->role[0] && p->replay_lag_ms >= 0)
        json_object_set_new(o, "replay_lag_ms", json_integer((json_int_t)p->replay_lag_ms));
    if (p->status != GP_OK)
        json_object_set_new(o, "error", json_string(p->message));
    return o;
}

static json_t *latency_json(const gp_latency_t *l)
{
    return json_pack("{s:I,s:f,s:f,s:f,s:f}", "count", (json_int_t)l->count, "p50_ms", l->p50_us / 1e3, "p90_ms",
                     l->p90_us / 1e3, "p99_ms", l->p99_us / 1e3, "max_ms", l->max_us / 1e3);
}

static json_t *pool_json(const gp_pool_metrics_t *m)
{
    json_t *closed = json_object();
    for (int i = 0; i < GP_CLOSE_REASON_COUNT_; i++)
        json_object_set_new(closed, gp_close_reason_name((gp_close_reason_t)i), json_integer((json_int_t)m->closed[i]));
    return json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:o,s:o,s:o}", "total", m->total,
                     "idle", m->idle, "leased", m->leased, "opening", m->opening, "waiting", m->waiting, "min", m->min,
                     "max", m->max, "acquires", (json_int_t)m->acquires, "acquire_timeouts",
                     (json_int_t)m->acquire_timeouts, "acquire_errors", (json_int_t)m->acquire_errors, "opened",
                     (json_int_t)m->opened, "open_failures", (json_int_t)m->open_failures, "closed", closed,
                     "leaks_reported", (json_int_t)m->leaks_reported, "wait", latency_json(&m->wait), "hold",
                     latency_json(&m->hold), "connect", latency_json(&m->connect));
}

static json_t *cache_json(const gp_cache_metrics_t *m)
{
    json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "circuit",
                          gp_cache_circuit_name(m->circuit), "circuit_opened", (json_int_t)m->circuit_opened,
                          "circuit_half_opened", (json_int_t)m->circuit_half_opened, "circuit_closed",
                          (json_int_t)m->circuit_closed, "hits", (json_int_t)m->hits, "misses", (json_int_t)m->misses,
                          "invalid_json", (json_int_t)m->invalid_json, "errors", (json_int_t)m->errors, "timeouts",
                          (json_int_t)m->timeouts, "rejected", (json_int_t)m->rejected, "server_errors",
                          (json_int_t)m->server_errors, "retries", (json_int_t)m->retries);
    if (!o)
        return NULL;
    json_object_set_new(o, "connections", json_pack("{s:i,s:i,s:i,s:i}", "pool_size", m->pool_size, "connected",
                                                    m->connected, "leased", m->leased, "waiting", m->waiting));
    json_object_set_new(o, "connects", json_integer((json_int_t)m->connects));
    json_object_set_new(o, "connect_failures", json_integer((json_int_t)m->connect_failures));
    json_object_set_new(o, "disconnects", json_integer((json_int_t)m->disconnects));
    json_object_set_new(o, "calls", json_integer((json_int_t)m->calls));
    json_object_set_new(o, "commands", json_integer((json_int_t)m->commands));
    json_object_set_new(o, "round_trips", json_integer((json_int_t)m->round_trips));
    json_object_set_new(o, "latency", latency_json(&m->latency));
    json_object_set_new(o, "invalidations", json_integer((json_int_t)m->invalidations));
    json_object_set_new(o, "loads", json_integer((json_int_t)m->loads));
    json_object_set_new(o, "load_waits", json_integer((json_int_t)m->load_waits));
    return o;
}

gp_status_t gp_health_to_json(const gp_health_report_t *r, char **out)
{
    if (!r || !out)
        return GP_ERR_INVALID;
    json_t *root = json_pack("{s:s,s:i,s:f}", "status", gp_health_state_name(r->state), "deadline_ms", r->deadline_ms,
                             "elapsed_ms", (double)r->elapsed_ns / 1e6);
    if (!root)
        return GP_ERR_NOMEM;
    json_object_set_new(root, "postgres", probe_json(&r->postgres));
    json_object_set_new(root, "redis", probe_json(&r->redis));
    if (r->have_replica)
        json_object_set_new(root, "replica", probe_json(&r->replica));
    if (r->have_pool)
        json_object_set_new(root, "pool", pool_json(&r->pool));
    if (r->have_cache)
        json_object_set_new(root, "cache", cache_json(&r->cache));
    *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return *out ? GP_OK : GP_ERR_NOMEM;
}
