/* cache_conn.c — the cache's connections: a bounded pool of blocking hiredis
 * contexts, the time budget of every call, the circuit breaker (which is
 * also the reconnect backoff), and the cache object's life cycle. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"

#define NS_PER_MS 1000000LL

/* ---- errors ---------------------------------------------------------------- */

gp_status_t gp__cache_fail(gp_error_t *err, gp_status_t st, gp_error_class_t klass, const char *fmt, ...)
{
    if (!err)
        return st;
    gp_error_clear(err);
    err->status = st;
    err->klass = klass;
    err->retriable = st == GP_ERR_UNAVAILABLE || st == GP_ERR_TIMEOUT;
    char raw[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    gp_redact(raw, err->message, sizeof err->message);
    return st;
}

gp_status_t gp__cache_server_error(gp_cache_t *c, const redisReply *r, gp_error_t *err)
{
    atomic_fetch_add_explicit(&c->n.server_errors, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->n.errors, 1, memory_order_relaxed);
    return gp__cache_fail(err, GP_ERR_SERVER, GP_ECLASS_INTERNAL, "Redis replied: %.*s",
                          r->str ? (int)(r->len > 400 ? 400 : r->len) : 0, r->str ? r->str : "");
}

/* ---- circuit breaker (every function here runs under c->mu) ----------------- */

typedef enum outcome { OUT_SUCCESS, OUT_FAILURE, OUT_NEUTRAL } outcome_t;

static void set_state(gp_cache_t *c, gp_cache_circuit_t to)
{
    gp_cache_circuit_t from = c->state;
    c->state = to;
    atomic_store(&c->state_pub, (int)to);
    switch (to) {
    case GP_CACHE_CIRCUIT_OPEN:
        atomic_fetch_add(&c->opened, 1);
        gp__log(GP_LOG_WARN, "cache",
                "circuit %s -> open: %s unavailable (%s); calls fail fast with \"cache unavailable\" for %lld ms, "
                "then one probe",
                gp_cache_circuit_name(from), c->display, c->last_error, (long long)c->cooldown_ms);
        break;
    case GP_CACHE_CIRCUIT_HALF_OPEN:
        atomic_fetch_add(&c->half_opened, 1);
        gp__log(GP_LOG_DEBUG, "cache", "circuit open -> half_open: probing %s", c->display);
        break;
    case GP_CACHE_CIRCUIT_CLOSED:
        atomic_fetch_add(&c->closed, 1);
        gp__log(GP_LOG_INFO, "cache", "circuit %s -> closed: %s is back", gp_cache_circuit_name(from), c->display);
        break;
    default:
        break;
    }
}

static void open_circuit(gp_cache_t *c, int64_t now)
{
    c->open_until_ns = now + gp__jitter(c->cooldown_ms * NS_PER_MS, 0.2);
    set_state(c, GP_CACHE_CIRCUIT_OPEN);
}

/* May this call go to the network? Sets *probe when it is the half-open probe. */
static bool admit(gp_cache_t *c, int64_t now, bool *probe)
{
    if (*probe || c->state == GP_CACHE_CIRCUIT_CLOSED)
        return true;
    if (c->state == GP_CACHE_CIRCUIT_OPEN) {
        if (now < c->open_until_ns)
            return false;
        set_state(c, GP_CACHE_CIRCUIT_HALF_OPEN);
    }
    if (c->probe_busy)
        return false;
    c->probe_busy = true;
    *probe = true;
    return true;
}

static void record(gp_cache_t *c, bool probe, outcome_t o)
{
    int64_t now = gp__now_ns();
    if (probe) {
        c->probe_busy = false;
        if (o == OUT_SUCCESS) {
            c->consecutive = 0;
            c->cooldown_ms = c->opt.breaker_cooldown_ms;
            set_state(c, GP_CACHE_CIRCUIT_CLOSED);
        } else if (o == OUT_FAILURE) {
            c->cooldown_ms *= 2;
            if (c->cooldown_ms > c->opt.breaker_max_cooldown_ms)
                c->cooldown_ms = c->opt.breaker_max_cooldown_ms;
            open_circuit(c, now);
        } /* neutral: stay half-open; the next caller probes */
        return;
    }
    if (c->state != GP_CACHE_CIRCUIT_CLOSED)
        return; /* admitted before the circuit opened: the probe decides */
    if (o == OUT_SUCCESS) {
        c->consecutive = 0;
    } else if (o == OUT_FAILURE && ++c->consecutive >= c->opt.breaker_threshold) {
        c->cooldown_ms = c->opt.breaker_cooldown_ms;
        open_circuit(c, now);
    }
}

/* ---- slots ------------------------------------------------------------------- */

typedef struct lease {
    cache_slot_t *slot;
    bool probe;     /* this call is the half-open probe */
    bool fresh;     /* the connection was opened by this call */
} lease_t;

/* The only two functions that move a slot between idle, broken and leased. */
static cache_slot_t *slot_take(gp_cache_t *c)
{
    if (c->n_idle)
        return &c->slots[c->idle[--c->n_idle]];
    if (c->n_broken)
        return &c->slots[c->broken[--c->n_broken]];
    return NULL;
}

static void slot_put(gp_cache_t *c, cache_slot_t *s)
{
    if (s->ctx)
        c->idle[c->n_idle++] = s->index;
    else
        c->broken[c->n_broken++] = s->index;
    pthread_cond_signal(&c->cv);
}

static void note_error(gp_cache_t *c, const char *msg)
{
    pthread_mutex_lock(&c->mu);
    snprintf(c->last_error, sizeof c->last_error, "%s", msg);
    pthread_mutex_unlock(&c->mu);
}

static void drop_ctx(gp_cache_t *c, cache_slot_t *s)
{
    if (!s->ctx)
        return;
    redisFree(s->ctx);
    s->ctx = NULL;
    pthread_mutex_lock(&c->mu);
    c->connected--;
    pthread_mutex_unlock(&c->mu);
}

static bool is_timeout(const redisContext *ctx, int e)
{
    return ctx->err == REDIS_ERR_IO &&
           (e == EAGAIN || e == EWOULDBLOCK || e == ETIMEDOUT || strstr(ctx->errstr, "timed out") ||
            strstr(ctx->errstr, "temporarily unavailable"));
}

static struct timeval tv_ms(int64_t ms)
{
    if (ms < 1)
        ms = 1;
    return (struct timeval){(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
}

/* Run one setup command on a new connection. */
static gp_status_t setup_cmd(const char *display, redisContext *ctx, int argc, const char **argv, const char *what,
                             gp_error_class_t reply_class, gp_error_t *err)
{
    redisReply *r = redisCommandArgv(ctx, argc, argv, NULL);
    if (!r)
        return gp__cache_fail(err, GP_ERR_UNAVAILABLE,
                              is_timeout(ctx, errno) ? GP_ECLASS_TIMEOUT : GP_ECLASS_CONNECTION, "%s: %s: %s",
                              display, what, ctx->errstr);
    gp_status_t st = GP_OK;
    if (r->type == REDIS_REPLY_ERROR)
        st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, reply_class, "%s: %s rejected: %.200s%s", display, what,
                            r->str, reply_class == GP_ECLASS_AUTH ? " (check REDIS_USERNAME/REDIS_PASSWORD)"
                                                                  : " (check REDIS_DB)");
    freeReplyObject(r);
    return st;
}

gp_status_t gp__redis_open(const gp__redis_target_t *t, const char *display, int64_t deadline, int connect_timeout_ms,
                           int command_timeout_ms, redisContext **out, int *tmo_ms, gp_error_t *err)
{
    *out = NULL;
    int64_t left = (deadline - gp__now_ns()) / NS_PER_MS;
    if (left < 1)
        return gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_TIMEOUT, "%s: no time left to connect", display);
    int64_t ct = left < connect_timeout_ms ? left : connect_timeout_ms;
    redisContext *ctx = redisConnectWithTimeout(t->host, t->port, tv_ms(ct));
    if (!ctx)
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory creating a Redis connection");
    gp_status_t st = GP_OK;
    if (ctx->err) {
        st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, is_timeout(ctx, errno) ? GP_ECLASS_TIMEOUT : GP_ECLASS_CONNECTION,
                            "%s: cannot connect: %s", display, ctx->errstr);
        goto fail;
    }
    left = (deadline - gp__now_ns()) / NS_PER_MS;
    int tmo = (int)(left < command_timeout_ms ? left : command_timeout_ms);
    if (tmo < 1 || redisSetTimeout(ctx, tv_ms(tmo)) != REDIS_OK) {
        st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_TIMEOUT, "%s: connected, but no time left for setup",
                            display);
        goto fail;
    }
    redisEnableKeepAlive(ctx);
    if (t->password[0]) {
        const char *a[3] = {"AUTH", t->username[0] ? t->username : t->password, t->password};
        if ((st = setup_cmd(display, ctx, t->username[0] ? 3 : 2, a, "AUTH", GP_ECLASS_AUTH, err)) != GP_OK)
            goto fail;
    }
    if (t->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", t->db);
        const char *a[2] = {"SELECT", db};
        if ((st = setup_cmd(display, ctx, 2, a, "SELECT", GP_ECLASS_CLIENT, err)) != GP_OK)
            goto fail;
    }
    *out = ctx;
    if (tmo_ms)
        *tmo_ms = tmo;
    return GP_OK;
fail:
    redisFree(ctx);
    return st;
}

/* Open s->ctx within the budget: connect, AUTH, SELECT. */
static gp_status_t slot_connect(gp_cache_t *c, cache_slot_t *s, int64_t deadline, gp_error_t *err)
{
    if ((deadline - gp__now_ns()) / NS_PER_MS < 1)
        return gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_TIMEOUT,
                              "%s: no time left to connect within REDIS_TIMEOUT (%d ms)", c->display, c->timeout_ms);
    redisContext *ctx;
    int tmo;
    gp_status_t st =
        gp__redis_open(&c->target, c->display, deadline, c->connect_timeout_ms, c->timeout_ms, &ctx, &tmo, err);
    if (st != GP_OK) {
        atomic_fetch_add(&c->n.connect_failures, 1);
        note_error(c, err->message);
        gp__log(GP_LOG_DEBUG, "cache", "connect failed: %s", err->message);
        return st;
    }
    s->ctx = ctx;
    s->timeout_ms = tmo;
    atomic_fetch_add(&c->n.connects, 1);
    pthread_mutex_lock(&c->mu);
    c->connected++;
    pthread_mutex_unlock(&c->mu);
    return GP_OK;
}

static struct timespec abs_mono(int64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
}

/* Admission, then a slot (connected if possible), then a connection. Never
 * waits past `deadline`. */
static gp_status_t lease_get(gp_cache_t *c, int64_t deadline, lease_t *l, gp_error_t *err)
{
    *l = (lease_t){0};
    pthread_mutex_lock(&c->mu);
    for (;;) {
        int64_t now = gp__now_ns();
        if (!admit(c, now, &l->probe)) {
            int64_t wait = c->state == GP_CACHE_CIRCUIT_OPEN ? (c->open_until_ns - now) / NS_PER_MS : 0;
            pthread_mutex_unlock(&c->mu);
            atomic_fetch_add(&c->n.rejected, 1);
            return gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION,
                                  "circuit open: %s failed %d times in a row; next probe in %lld ms",
                                  c->display, c->opt.breaker_threshold, (long long)(wait > 0 ? wait : 0));
        }
        if ((l->slot = slot_take(c)))
            break;
        if (now >= deadline) {
            if (l->probe)
                record(c, true, OUT_NEUTRAL);
            pthread_mutex_unlock(&c->mu);
            atomic_fetch_add(&c->n.timeouts, 1);
            return gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_TIMEOUT,
                                  "no free Redis connection within REDIS_TIMEOUT (%d ms; all %d in use)",
                                  c->timeout_ms, c->pool_size);
        }
        struct timespec ts = abs_mono(deadline);
        c->waiting++;
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        c->waiting--;
    }
    pthread_mutex_unlock(&c->mu);
    if (l->slot->ctx)
        return GP_OK;
    gp_status_t st = slot_connect(c, l->slot, deadline, err);
    if (st == GP_OK) {
        l->fresh = true;
        return GP_OK;
    }
    if (err->klass == GP_ECLASS_TIMEOUT)
        atomic_fetch_add(&c->n.timeouts, 1);
    pthread_mutex_lock(&c->mu);
    slot_put(c, l->slot);
    record(c, l->probe, OUT_FAILURE);
    pthread_mutex_unlock(&c->mu);
    return st;
}

static void lease_put(gp_cache_t *c, lease_t *l, outcome_t o)
{
    pthread_mutex_lock(&c->mu);
    slot_put(c, l->slot);
    record(c, l->probe, o);
    pthread_mutex_unlock(&c->mu);
}

/* Error replies that mean "this server cannot serve now", not "your command
 * was wrong". */
static bool unavailable_reply(const redisReply *r)
{
    static const char *const codes[] = {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "NOAUTH", "CLUSTERDOWN"};
    if (r->type != REDIS_REPLY_ERROR || !r->str)
        return false;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        size_t n = strlen(codes[i]);
        if (strncmp(r->str, codes[i], n) == 0 && (r->str[n] == ' ' || r->str[n] == 0))
            return true;
    }
    return false;
}


/* Encode the whole pipeline in RESP into one buffer and hand it to hiredis
 * in one append. hiredis' own argv formatter goes through sdscatfmt per
 * argument, which profiling showed as the biggest client-side cost of a
 * 16-command batch. */
static int append_pipeline(redisContext *ctx, int n, const cache_cmd_t *cmds)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        total += 1 + 20 + 2;
        for (int a = 0; a < cmds[i].argc; a++)
            total += 1 + 20 + 2 + (cmds[i].argvlen ? cmds[i].argvlen[a] : strlen(cmds[i].argv[a])) + 2;
    }
    char stackbuf[2048];
    char *buf = total <= sizeof stackbuf ? stackbuf : malloc(total);
    if (!buf)
        return REDIS_ERR;
    char *p = buf;
    for (int i = 0; i < n; i++) {
        *p++ = '*';
        p += gp__cache_put_dec(p, (size_t)cmds[i].argc);
        *p++ = '\r', *p++ = '\n';
        for (int a = 0; a < cmds[i].argc; a++) {
            size_t len = cmds[i].argvlen ? cmds[i].argvlen[a] : strlen(cmds[i].argv[a]);
            *p++ = '$';
            p += gp__cache_put_dec(p, len);
            *p++ = '\r', *p++ = '\n';
            memcpy(p, cmds[i].argv[a], len);
            p += len;
            *p++ = '\r', *p++ = '\n';
        }
    }
    int rc = redisAppendFormattedCommand(ctx, buf, (size_t)(p - buf));
    if (buf != stackbuf)
        free(buf);
    return rc;
}

/* One round trip on a leased, connected slot. On failure every reply is
 * freed and, when the connection can no longer be trusted, it is dropped. */
static gp_status_t run(gp_cache_t *c, cache_slot_t *s, int64_t deadline, int n, const cache_cmd_t *cmds,
                       redisReply **replies, bool *timed_out, gp_error_t *err)
{
    *timed_out = false;
    int64_t left = (deadline - gp__now_ns()) / NS_PER_MS;
    if (left < 1) {
        *timed_out = true;
        return gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_TIMEOUT,
                              "REDIS_TIMEOUT (%d ms) spent before the command could be sent", c->timeout_ms);
    }
    if (left > c->timeout_ms)
        left = c->timeout_ms;
    /* The socket timeout is what is left of the budget; changing it costs two
     * syscalls, so only when it matters (a waited call, or back to normal). */
    if (left < s->timeout_ms - 2 || (s->timeout_ms < c->timeout_ms && left > s->timeout_ms + 10)) {
        if (redisSetTimeout(s->ctx, tv_ms(left)) != REDIS_OK) {
            drop_ctx(c, s);
            return gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION, "cannot set the socket timeout");
        }
        s->timeout_ms = (int)left;
    }
    if (append_pipeline(s->ctx, n, cmds) != REDIS_OK) {
        drop_ctx(c, s); /* a half-written pipeline cannot be reused */
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory formatting a Redis command");
    }
    int got = 0;
    gp_status_t st = GP_OK;
    for (; got < n; got++) {
        void *r = NULL;
        if (redisGetReply(s->ctx, &r) != REDIS_OK || !r) {
            int e = errno;
            *timed_out = is_timeout(s->ctx, e);
            st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, *timed_out ? GP_ECLASS_TIMEOUT : GP_ECLASS_CONNECTION,
                                "%s: %s%s", c->display, *timed_out ? "no reply within REDIS_TIMEOUT: " : "",
                                s->ctx->errstr[0] ? s->ctx->errstr : "connection lost");
            drop_ctx(c, s);
            break;
        }
        replies[got] = r;
    }
    if (st == GP_OK) {
        for (int i = 0; i < n; i++) {
            if (unavailable_reply(replies[i])) {
                st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION, "%s: %.200s", c->display,
                                    replies[i]->str);
                if (strncmp(replies[i]->str, "NOAUTH", 6) == 0)
                    drop_ctx(c, s);
                break;
            }
        }
    }
    if (st != GP_OK) {
        for (int i = 0; i < got; i++) {
            freeReplyObject(replies[i]);
            replies[i] = NULL;
        }
    }
    return st;
}

gp_status_t gp__cache_exec(gp_cache_t *c, int n, const cache_cmd_t *cmds, redisReply **replies, bool idempotent,
                           gp_error_t *err)
{
    int64_t t0 = gp__now_ns();
    int64_t deadline = t0 + (int64_t)c->timeout_ms * NS_PER_MS;
    gp_error_t local; /* filled only on failure: the breaker's log wants the reason */
    if (!err)
        err = &local;
    lease_t l;
    gp_status_t st = lease_get(c, deadline, &l, err);
    if (st != GP_OK) {
        atomic_fetch_add(&c->n.errors, 1);
        if (st == GP_ERR_UNAVAILABLE)
            atomic_fetch_add(&c->n.unavailable, 1);
        return st;
    }
    bool timed_out = false;
    outcome_t o = OUT_SUCCESS;
    for (int attempt = 0;; attempt++) {
        atomic_fetch_add_explicit(&c->n.calls, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->n.commands, (uint64_t)n, memory_order_relaxed);
        st = run(c, l.slot, deadline, n, cmds, replies, &timed_out, err);
        if (st == GP_OK)
            break;
        if (st == GP_ERR_NOMEM) {
            o = OUT_NEUTRAL;
            break;
        }
        if (!l.slot->ctx)
            atomic_fetch_add(&c->n.disconnects, 1);
        /* A connection that sat idle may have died with a server restart:
         * resend once on a fresh one, when that cannot double an effect. */
        if (attempt == 0 && idempotent && !l.fresh && !timed_out && !l.slot->ctx) {
            gp_error_t e2;
            if (slot_connect(c, l.slot, deadline, &e2) == GP_OK) {
                l.fresh = true;
                atomic_fetch_add(&c->n.retries, 1);
                continue;
            }
            *err = e2;
            timed_out = e2.klass == GP_ECLASS_TIMEOUT;
        }
        note_error(c, err->message);
        o = timed_out && l.slot->ctx ? OUT_NEUTRAL : OUT_FAILURE;
        break;
    }
    lease_put(c, &l, o);
    gp_hist_record(c->latency, gp__now_ns() - t0);
    if (st != GP_OK) {
        atomic_fetch_add(&c->n.errors, 1);
        if (st == GP_ERR_UNAVAILABLE)
            atomic_fetch_add(&c->n.unavailable, 1);
        if (timed_out)
            atomic_fetch_add(&c->n.timeouts, 1);
    }
    return st;
}

/* ---- life cycle ------------------------------------------------------------ */

static int opt_or(int v, int def) { return v ? v : def; }

gp_status_t gp_cache_create(const gp_config_t *cfg, const gp_cache_options_t *opts, gp_cache_t **out,
                            gp_error_t *err)
{
    gp_error_clear(err);
    if (!out)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "gp_cache_create: out is NULL");
    *out = NULL;
    if (!cfg)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "gp_cache_create: cfg is NULL");
    gp_cache_options_t o = opts ? *opts : (gp_cache_options_t){0};
    if (o.default_ttl_ms < 0 || o.breaker_threshold < 0 || o.breaker_cooldown_ms < 0 ||
        o.breaker_max_cooldown_ms < 0 || o.generation_ttl_ms < -1 || o.load_wait_ms < 0)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT,
                              "gp_cache_options_t: negative value (only generation_ttl_ms may be -1)");
    o.default_ttl_ms = opt_or(o.default_ttl_ms, 300000);
    o.breaker_threshold = opt_or(o.breaker_threshold, 5);
    o.breaker_cooldown_ms = opt_or(o.breaker_cooldown_ms, 50);
    o.breaker_max_cooldown_ms = opt_or(o.breaker_max_cooldown_ms, 500);
    if (o.breaker_max_cooldown_ms < o.breaker_cooldown_ms)
        o.breaker_max_cooldown_ms = o.breaker_cooldown_ms;
    o.generation_ttl_ms = opt_or(o.generation_ttl_ms, 1000);
    o.load_wait_ms = opt_or(o.load_wait_ms, 5000);

    char msg[GP_ERRBUF_SIZE] = "";
    if (gp_config_validate(cfg, msg, sizeof msg) != GP_OK)
        return gp__cache_fail(err, GP_ERR_CONFIG, GP_ECLASS_CLIENT, "%s", msg);
    gp_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory creating the cache");
    if (gp__redis_target(&cfg->redis, &c->target, msg, sizeof msg) != GP_OK) {
        free(c);
        return gp__cache_fail(err, GP_ERR_CONFIG, GP_ECLASS_CLIENT, "%s", msg);
    }
    gp_config_redis_display(&cfg->redis, c->display, sizeof c->display);
    snprintf(c->prefix, sizeof c->prefix, "%s", cfg->redis.key_prefix ? cfg->redis.key_prefix : "growplate:");
    c->prefix_len = strlen(c->prefix);
    c->timeout_ms = cfg->redis.timeout_ms > 0 ? cfg->redis.timeout_ms : 1000;
    c->connect_timeout_ms = cfg->redis.connect_timeout_ms > 0 ? cfg->redis.connect_timeout_ms : 1000;
    c->pool_size = cfg->redis.pool_size > 0 ? cfg->redis.pool_size : 4;
    c->opt = o;
    c->cooldown_ms = o.breaker_cooldown_ms;
    c->state = GP_CACHE_CIRCUIT_CLOSED;
    snprintf(c->last_error, sizeof c->last_error, "no error yet");

    c->slots = calloc((size_t)c->pool_size, sizeof *c->slots);
    c->idle = calloc((size_t)c->pool_size, sizeof *c->idle);
    c->broken = calloc((size_t)c->pool_size, sizeof *c->broken);
    c->latency = gp_hist_new();
    pthread_condattr_t ca;
    bool sync_ok = pthread_condattr_init(&ca) == 0;
    if (sync_ok) {
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        sync_ok = pthread_cond_init(&c->cv, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!c->slots || !c->idle || !c->broken || !c->latency || !sync_ok) {
        if (sync_ok)
            pthread_cond_destroy(&c->cv);
        free(c->slots);
        free(c->idle);
        free(c->broken);
        gp_hist_free(c->latency);
        memset(&c->target, 0, sizeof c->target);
        free(c);
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory creating the cache");
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->flight_mu, NULL);
    for (int i = 0; i < GEN_STRIPES; i++)
        pthread_mutex_init(&c->gen_mu[i], NULL);
    for (int i = 0; i < c->pool_size; i++) {
        c->slots[i].index = i;
        c->broken[c->n_broken++] = c->pool_size - 1 - i;
    }
    *out = c;
    return GP_OK;
}

void gp_cache_close(gp_cache_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->pool_size; i++)
        if (c->slots[i].ctx)
            redisFree(c->slots[i].ctx);
    gp__cache_flights_free(c);
    free(c->slots);
    free(c->idle);
    free(c->broken);
    gp_hist_free(c->latency);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->flight_mu);
    for (int i = 0; i < GEN_STRIPES; i++)
        pthread_mutex_destroy(&c->gen_mu[i]);
    memset(&c->target, 0, sizeof c->target);
    free(c);
}

/* ---- health and metrics --------------------------------------------------------- */

const char *gp_cache_circuit_name(gp_cache_circuit_t s)
{
    switch (s) {
    case GP_CACHE_CIRCUIT_CLOSED: return "closed";
    case GP_CACHE_CIRCUIT_OPEN: return "open";
    case GP_CACHE_CIRCUIT_HALF_OPEN: return "half_open";
    default: return "unknown";
    }
}

gp_status_t gp_cache_ping(gp_cache_t *c, int64_t *latency_ns, gp_error_t *err)
{
    gp_error_clear(err);
    if (latency_ns)
        *latency_ns = 0;
    if (!c)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "cache is NULL");
    const char *argv[1] = {"PING"};
    cache_cmd_t cmd = {1, argv, NULL};
    redisReply *r;
    int64_t t0 = gp__now_ns();
    gp_status_t st = gp__cache_exec(c, 1, &cmd, &r, true, err);
    if (st != GP_OK)
        return st;
    if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0)
        st = r->type == REDIS_REPLY_ERROR ? gp__cache_server_error(c, r, err)
                                          : gp__cache_fail(err, GP_ERR_PROTOCOL, GP_ECLASS_INTERNAL,
                                                           "unexpected reply to PING");
    else if (latency_ns)
        *latency_ns = gp__now_ns() - t0;
    freeReplyObject(r);
    return st;
}

#define LOAD(x) atomic_load_explicit(&c->n.x, memory_order_relaxed)

gp_status_t gp_cache_metrics(gp_cache_t *c, gp_cache_metrics_t *m)
{
    if (!c || !m)
        return GP_ERR_INVALID;
    memset(m, 0, sizeof *m);
    pthread_mutex_lock(&c->mu);
    m->circuit = c->state;
    m->circuit_open_ms = c->state == GP_CACHE_CIRCUIT_CLOSED ? 0 : c->cooldown_ms;
    m->connected = c->connected;
    m->leased = c->pool_size - c->n_idle - c->n_broken;
    m->waiting = c->waiting;
    pthread_mutex_unlock(&c->mu);
    m->pool_size = c->pool_size;
    m->circuit_opened = atomic_load(&c->opened);
    m->circuit_half_opened = atomic_load(&c->half_opened);
    m->circuit_closed = atomic_load(&c->closed);
    m->hits = LOAD(hits);
    m->misses = LOAD(misses);
    m->invalid_json = LOAD(invalid_json);
    m->errors = LOAD(errors);
    m->unavailable = LOAD(unavailable);
    m->timeouts = LOAD(timeouts);
    m->rejected = LOAD(rejected);
    m->server_errors = LOAD(server_errors);
    m->retries = LOAD(retries);
    m->connects = LOAD(connects);
    m->connect_failures = LOAD(connect_failures);
    m->disconnects = LOAD(disconnects);
    m->calls = LOAD(calls);
    m->commands = LOAD(commands);
    m->invalidations = LOAD(invalidations);
    m->generation_fetches = LOAD(generation_fetches);
    m->loads = LOAD(loads);
    m->load_failures = LOAD(load_failures);
    m->load_waits = LOAD(load_waits);
    m->load_wait_timeouts = LOAD(load_wait_timeouts);
    m->early_refreshes = LOAD(early_refreshes);
    m->latency.count = gp_hist_count(c->latency);
    m->latency.p50_us = (double)gp_hist_quantile(c->latency, 0.50) / 1e3;
    m->latency.p90_us = (double)gp_hist_quantile(c->latency, 0.90) / 1e3;
    m->latency.p99_us = (double)gp_hist_quantile(c->latency, 0.99) / 1e3;
    m->latency.max_us = (double)gp_hist_max(c->latency) / 1e3;
    m->latency.sum_us = gp_hist_sum(c->latency) / 1e3;
    return GP_OK;
}
