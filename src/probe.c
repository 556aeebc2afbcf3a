/* probe.c — one-off connectivity probes of PostgreSQL and Redis, independent
 * of any pool: what `growplate health` falls back on and what the demo shows. */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "growplate/health.h"
#include "internal.h"
#include "pool_internal.h"

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = 0;
    for (char *p = s; *p; p++)
        if (*p == '\n')
            *p = ' ';
}

/* Classify a libpq connection failure (shared with the pool); a connect
 * timeout is reported as such here. */
static gp_status_t classify_connect_failure(PGconn *c, const char *msg)
{
    if (strstr(msg, "timeout expired"))
        return GP_ERR_TIMEOUT;
    return gp__error_from_connect(c, NULL);
}

gp_status_t gp_probe_postgres(const gp_config_t *cfg, gp_probe_t *out)
{
    if (!out)
        return GP_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!cfg) {
        out->status = GP_ERR_INVALID;
        snprintf(out->message, sizeof out->message, "no configuration given");
        return out->status;
    }
    gp__pg_params_t p;
    if (gp__pg_params(&cfg->db, false, &p, out->message, sizeof out->message) != GP_OK)
        return out->status = GP_ERR_CONFIG;
    int64_t t0 = gp__now_ns();
    PGconn *c = PQconnectdbParams(p.kw, p.val, 1);
    if (!c) {
        snprintf(out->message, sizeof out->message, "out of memory creating a libpq connection");
        return out->status = GP_ERR_NOMEM;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        char raw[512], target[256];
        snprintf(raw, sizeof raw, "%s", PQerrorMessage(c));
        trim(raw);
        out->status = classify_connect_failure(c, raw);
        gp_redact(raw, out->message, sizeof out->message);
        snprintf(raw, sizeof raw, "%s", out->message);
        snprintf(out->message, sizeof out->message, "%s: %s%s", gp_config_db_display(&cfg->db, target, sizeof target),
                 raw,
                 out->status == GP_ERR_AUTH ? " (check DATABASE_USER/DATABASE_PASSWORD or the URL's credentials)"
                                            : " (is the server running? scripts/services start)");
        PQfinish(c);
        return out->status;
    }
    PGresult *r = PQexec(c, "SELECT 1");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char raw[512];
        snprintf(raw, sizeof raw, "%s", PQerrorMessage(c));
        trim(raw);
        gp_redact(raw, out->message, sizeof out->message);
        out->status = GP_ERR_CONNECT;
    } else {
        out->latency_ns = gp__now_ns() - t0;
        int v = PQserverVersion(c);
        snprintf(out->server_version, sizeof out->server_version, "%d.%d", v / 10000, v % 10000);
        out->status = GP_OK;
    }
    PQclear(r);
    PQfinish(c);
    return out->status;
}

gp_status_t gp_probe_redis(const gp_config_t *cfg, gp_probe_t *out)
{
    if (!out)
        return GP_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!cfg) {
        out->status = GP_ERR_INVALID;
        snprintf(out->message, sizeof out->message, "no configuration given");
        return out->status;
    }
    gp__redis_target_t t;
    if (gp__redis_target(&cfg->redis, &t, out->message, sizeof out->message) != GP_OK)
        return out->status = GP_ERR_CONFIG;
    char target[300];
    gp_config_redis_display(&cfg->redis, target, sizeof target);
    int64_t t0 = gp__now_ns();
    struct timeval ct = {cfg->redis.connect_timeout_ms / 1000, (cfg->redis.connect_timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(t.host, t.port, ct);
    if (!c) {
        snprintf(out->message, sizeof out->message, "out of memory creating a Redis connection");
        memset(&t, 0, sizeof t);
        return out->status = GP_ERR_NOMEM;
    }
    if (c->err) {
        out->status = c->err == REDIS_ERR_IO && strstr(c->errstr, "timed out") ? GP_ERR_TIMEOUT : GP_ERR_CONNECT;
        snprintf(out->message, sizeof out->message, "%s: %s (is the server running? scripts/services start)",
                 target, c->errstr);
        goto done;
    }
    struct timeval ot = {cfg->redis.timeout_ms / 1000, (cfg->redis.timeout_ms % 1000) * 1000};
    redisSetTimeout(c, ot);
    redisReply *rep;
    if (t.password[0]) {
        rep = t.username[0] ? redisCommand(c, "AUTH %s %s", t.username, t.password)
                            : redisCommand(c, "AUTH %s", t.password);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            out->status = rep ? GP_ERR_AUTH : GP_ERR_CONNECT;
            snprintf(out->message, sizeof out->message, "%s: AUTH failed: %s (check REDIS_PASSWORD)", target,
                     rep ? rep->str : c->errstr);
            if (rep)
                freeReplyObject(rep);
            goto done;
        }
        freeReplyObject(rep);
    }
    if (t.db) {
        rep = redisCommand(c, "SELECT %d", t.db);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            out->status = rep ? GP_ERR_CONFIG : GP_ERR_CONNECT;
            snprintf(out->message, sizeof out->message, "%s: SELECT %d failed: %s (check REDIS_DB)", target, t.db,
                     rep ? rep->str : c->errstr);
            if (rep)
                freeReplyObject(rep);
            goto done;
        }
        freeReplyObject(rep);
    }
    rep = redisCommand(c, "PING");
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        out->status = !rep && c->err == REDIS_ERR_IO ? GP_ERR_TIMEOUT : GP_ERR_CONNECT;
        snprintf(out->message, sizeof out->message, "%s: PING failed: %s", target, rep ? rep->str : c->errstr);
        if (rep)
            freeReplyObject(rep);
        goto done;
    }
    freeReplyObject(rep);
    out->latency_ns = gp__now_ns() - t0;
    rep = redisCommand(c, "INFO server");
    if (rep && rep->type == REDIS_REPLY_STRING) {
        const char *v = strstr(rep->str, "redis_version:");
        if (v)
            snprintf(out->server_version, sizeof out->server_version, "%.*s", (int)strcspn(v + 14, "\r\n"), v + 14);
    }
    if (rep)
        freeReplyObject(rep);
    out->status = GP_OK;
done:
    redisFree(c);
    memset(&t, 0, sizeof t);
    return out->status;
}
