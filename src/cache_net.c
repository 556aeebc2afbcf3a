/* cache_net.c — the bottom layer of the cache: opening one Redis
 * connection (connect, AUTH, SELECT, ROLE), finding the master through
 * Redis Sentinel and following its switches (a watcher thread subscribed
 * to +switch-master), and the error replies that mean "wrong node". Knows
 * nothing of the pool, the breaker or the keyspace above it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache_internal.h"

#define NS_PER_MS 1000000LL

/* ---- small things every layer uses ------------------------------------------ */

gp_status_t gp__cache_fail(gp_error_t *err, gp_status_t st, gp_error_class_t klass, const char *fmt, ...)
{
    if (!err)
        return st;
    gp_error_clear(err);
    err->status = st;
    err->klass = klass;
    err->retriable = st == GP_ERR_UNAVAILABLE || st == GP_ERR_TIMEOUT;
    va_list ap;
    va_start(ap, fmt);
    gp__vredact(err->message, sizeof err->message, fmt, ap); /* formatted in full, then redacted */
    va_end(ap);
    return st;
}

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                      "8081828384858687888990919293949596979899";

size_t gp__cache_put_dec(char *p, uint64_t v)
{
    if (v < 10) {
        p[0] = (char)('0' + v);
        return 1;
    }
    char tmp[20], *e = tmp + sizeof tmp, *q = e;
    for (; v >= 100; v /= 100) {
        q -= 2;
        memcpy(q, digit_pairs + 2 * (v % 100), 2);
    }
    if (v >= 10) {
        q -= 2;
        memcpy(q, digit_pairs + 2 * v, 2);
    } else {
        *--q = (char)('0' + v);
    }
    memcpy(p, q, (size_t)(e - q));
    return (size_t)(e - q);
}

bool gp__redis_is_timeout(const redisContext *ctx, int e)
{
    return ctx->err == REDIS_ERR_IO &&
           (e == EAGAIN || e == EWOULDBLOCK || e == ETIMEDOUT || strstr(ctx->errstr, "timed out") ||
            strstr(ctx->errstr, "temporarily unavailable"));
}

struct timeval gp__tv_ms(int64_t ms)
{
    if (ms < 1)
        ms = 1;
    return (struct timeval){(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
}

redisReply *gp__redis_command(redisContext *ctx, int argc, const char **argv)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    redisReply *r = redisCommandArgv(ctx, argc, argv, NULL);
    if (!was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
        const struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

static void addr_text(const char *host, int port, char *out, size_t len)
{
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, len, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

/* ---- replies outside the pool's arenas ------------------------------------------
 * Setup commands (AUTH, SELECT, ROLE), the sentinels and the watcher read
 * with hiredis' blocking calls into malloc'd replies that freeReplyObject
 * frees, as hiredis' own functions build them, but an array reply may not
 * announce more than REPLY_MAX_ELEMENTS (hiredis 0.14 would allocate what
 * any server announces). The reader's privdata points to a bool set when
 * one was refused. */

static void *attach(const redisReadTask *t, redisReply *r)
{
    if (r && t->parent) {
        redisReply *parent = t->parent->obj;
        parent->element[t->idx] = r;
    }
    return r;
}

static void *plain_string(const redisReadTask *t, char *str, size_t len)
{
    redisReply *r = calloc(1, sizeof *r);
    char *buf = r && len < SIZE_MAX / 2 ? malloc(len + 1) : NULL;
    if (!buf) {
        free(r);
        return NULL;
    }
    memcpy(buf, str, len);
    buf[len] = 0;
    r->type = t->type;
    r->str = buf;
    r->len = len;
    return attach(t, r);
}

static void *plain_array(const redisReadTask *t, int elements)
{
    if (elements < 0 || elements > REPLY_MAX_ELEMENTS) {
        if (t->privdata)
            *(bool *)t->privdata = true;
        return NULL;
    }
    redisReply *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->type = REDIS_REPLY_ARRAY;
    if (elements && !(r->element = calloc((size_t)elements, sizeof *r->element))) {
        free(r);
        return NULL;
    }
    r->elements = (size_t)elements;
    return attach(t, r);
}

static void *plain_integer(const redisReadTask *t, long long v)
{
    redisReply *r = calloc(1, sizeof *r);
    if (r) {
        r->type = REDIS_REPLY_INTEGER;
        r->integer = v;
    }
    return attach(t, r);
}

static void *plain_nil(const redisReadTask *t)
{
    redisReply *r = calloc(1, sizeof *r);
    if (r)
        r->type = REDIS_REPLY_NIL;
    return attach(t, r);
}

static redisReplyObjectFunctions plain_replies = {plain_string, plain_array, plain_integer, plain_nil,
                                                  freeReplyObject};

/* Why the last command on ctx got no reply. */
static const char *no_reply(const redisContext *ctx, char *buf, size_t len)
{
    const bool *refused = ctx->reader->privdata;
    if (refused && *refused) {
        snprintf(buf, len, "Protocol error, an array reply of more than %d elements", REPLY_MAX_ELEMENTS);
        return buf;
    }
    return ctx->errstr[0] ? ctx->errstr : "connection lost";
}

/* ---- one node ------------------------------------------------------------------ */

/* Run one setup command on a new connection. */
static gp_status_t setup_cmd(const char *display, redisContext *ctx, int argc, const char **argv, const char *what,
                             gp_error_class_t reply_class, gp_error_t *err)
{
    redisReply *r = gp__redis_command(ctx, argc, argv);
    char why[96];
    if (!r)
        return gp__cache_fail(err, GP_ERR_UNAVAILABLE,
                              gp__redis_is_timeout(ctx, errno) ? GP_ECLASS_TIMEOUT : GP_ECLASS_CONNECTION,
                              "%s: %s: %s", display, what, no_reply(ctx, why, sizeof why));
    gp_status_t st = GP_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        /* A SELECT refused for want of a password is about credentials. */
        if (r->str && (strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "WRONGPASS", 9) == 0))
            reply_class = GP_ECLASS_AUTH;
        st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, reply_class, "%s: %s rejected: %.200s%s", display, what,
                            r->str, reply_class == GP_ECLASS_AUTH ? " (check REDIS_USERNAME/REDIS_PASSWORD)"
                                                                  : " (check REDIS_DB)");
    }
    freeReplyObject(r);
    return st;
}

/* Connect to host:port within the deadline (at most connect_timeout_ms),
 * with a socket timeout of min(command_timeout_ms, what is left). */
static gp_status_t connect_node(const char *host, int port, const char *display, int64_t deadline,
                                int connect_timeout_ms, int command_timeout_ms, redisContext **out, int *tmo_ms,
                                bool *refused, gp_error_t *err)
{
    *out = NULL;
    int64_t left = (deadline - gp__now_ns()) / NS_PER_MS;
    if (left < 1)
        return gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_TIMEOUT, "%s: no time left to connect", display);
    int64_t ct = left < connect_timeout_ms ? left : connect_timeout_ms;
    redisContext *ctx = redisConnectWithTimeout(host, port, gp__tv_ms(ct));
    if (!ctx)
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory creating a Redis connection");
    gp_status_t st;
    if (ctx->err) {
        st = gp__cache_fail(err, GP_ERR_UNAVAILABLE,
                            gp__redis_is_timeout(ctx, errno) ? GP_ECLASS_TIMEOUT : GP_ECLASS_CONNECTION,
                            "%s: cannot connect: %s", display, ctx->errstr);
        redisFree(ctx);
        return st;
    }
    left = (deadline - gp__now_ns()) / NS_PER_MS;
    int tmo = (int)(left < command_timeout_ms ? left : command_timeout_ms);
    if (tmo < 1 || redisSetTimeout(ctx, gp__tv_ms(tmo)) != REDIS_OK) {
        redisFree(ctx);
        return gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_TIMEOUT, "%s: connected, but no time left for setup",
                              display);
    }
    redisEnableKeepAlive(ctx);
    ctx->reader->fn = &plain_replies;
    *refused = false;
    ctx->reader->privdata = refused;
    *out = ctx;
    if (tmo_ms)
        *tmo_ms = tmo;
    return GP_OK;
}

/* What ROLE says the node is: "master", "slave", "sentinel", or "" when it
 * cannot say (an ACL user without ROLE, a server without the command). */
static gp_status_t node_role(redisContext *ctx, const char *display, char *role, size_t len, char *master,
                             size_t mlen, gp_error_t *err)
{
    role[0] = master[0] = 0;
    redisReply *r = gp__redis_command(ctx, 1, (const char *[]){"ROLE"});
    char why[96];
    if (!r)
        return gp__cache_fail(err, GP_ERR_UNAVAILABLE,
                              gp__redis_is_timeout(ctx, errno) ? GP_ECLASS_TIMEOUT : GP_ECLASS_CONNECTION,
                              "%s: ROLE: %s", display, no_reply(ctx, why, sizeof why));
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_STRING) {
        snprintf(role, len, "%s", r->element[0]->str);
        if (strcmp(role, "slave") == 0 && r->elements >= 3 && r->element[1]->type == REDIS_REPLY_STRING &&
            r->element[2]->type == REDIS_REPLY_INTEGER)
            addr_text(r->element[1]->str, (int)r->element[2]->integer, master, mlen);
    }
    freeReplyObject(r);
    return GP_OK;
}

/* ---- Sentinel ------------------------------------------------------------------ */

/* Publish host:port as the master (under tp->mu). A different address than
 * the one known is a switch: counted, logged, and every connection to the
 * old one goes (epoch). */
static void set_master_locked(cache_topo_t *tp, const char *host, int port, const char *how)
{
    bool changed = tp->port && (tp->port != port || strcmp(tp->host, host) != 0);
    char from[280], to[280];
    addr_text(tp->host, tp->port, from, sizeof from);
    addr_text(host, port, to, sizeof to);
    snprintf(tp->host, sizeof tp->host, "%s", host);
    tp->port = port;
    tp->stale = false;
    if (changed) {
        atomic_fetch_add(&tp->switches, 1);
        atomic_fetch_add(&tp->epoch, 1);
        gp__log(GP_LOG_INFO, "cache", "%s: master \"%s\" moved from %s to %s (%s); connections follow it",
                tp->display, tp->t->sentinel_master, from, to, how);
    }
}

static void set_master(cache_topo_t *tp, const char *host, int port, const char *how)
{
    pthread_mutex_lock(&tp->mu);
    set_master_locked(tp, host, port, how);
    pthread_mutex_unlock(&tp->mu);
}

/* Ask one sentinel for the master's address. */
static gp_status_t ask_one(const gp__redis_target_t *t, int k, int64_t deadline, int connect_timeout_ms, char *host,
                           size_t hlen, int *port, char *why, size_t wlen)
{
    char name[280];
    addr_text(t->sentinels[k].host, t->sentinels[k].port, name, sizeof name);
    redisContext *ctx;
    gp_error_t e;
    bool refused;
    gp_status_t st = connect_node(t->sentinels[k].host, t->sentinels[k].port, name, deadline, connect_timeout_ms,
                                  connect_timeout_ms, &ctx, NULL, &refused, &e);
    if (st != GP_OK) {
        snprintf(why, wlen, "%s", e.message);
        return st;
    }
    redisReply *r = gp__redis_command(ctx, 3, (const char *[]){"SENTINEL", "get-master-addr-by-name", t->sentinel_master});
    st = GP_ERR_UNAVAILABLE;
    long long p = 0;
    char nr[96];
    if (!r)
        snprintf(why, wlen, "%s: %s", name, no_reply(ctx, nr, sizeof nr));
    else if (r->type == REDIS_REPLY_NIL)
        snprintf(why, wlen, "%s does not monitor a master named \"%s\" (check REDIS_SENTINEL_MASTER)", name,
                 t->sentinel_master);
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(why, wlen, "%s: %.200s (is it a sentinel? check REDIS_SENTINELS)", name, r->str);
    else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
             r->element[1]->type != REDIS_REPLY_STRING || (p = strtoll(r->element[1]->str, NULL, 10)) < 1 ||
             p > 65535 || r->element[0]->len >= hlen)
        snprintf(why, wlen, "%s: unexpected reply to SENTINEL get-master-addr-by-name", name);
    else {
        snprintf(host, hlen, "%s", r->element[0]->str);
        *port = (int)p;
        st = GP_OK;
    }
    if (r)
        freeReplyObject(r);
    redisFree(ctx);
    return st;
}

/* Ask the sentinels in turn, starting with the last that answered, until
 * one names the master (tp may be NULL: a one-shot, nothing remembered). */
static gp_status_t ask_sentinels(const gp__redis_target_t *t, cache_topo_t *tp, int64_t deadline,
                                 int connect_timeout_ms, char *host, size_t hlen, int *port, const char *display,
                                 gp_error_t *err)
{
    int first = 0;
    if (tp) {
        pthread_mutex_lock(&tp->mu);
        first = tp->next;
        pthread_mutex_unlock(&tp->mu);
    }
    char whys[1024] = "";
    for (int i = 0; i < t->n_sentinels; i++) {
        int k = (first + i) % t->n_sentinels;
        char why[300];
        if (ask_one(t, k, deadline, connect_timeout_ms, host, hlen, port, why, sizeof why) == GP_OK) {
            if (tp) {
                pthread_mutex_lock(&tp->mu);
                tp->next = k;
                set_master_locked(tp, host, *port, "the sentinels say so");
                pthread_mutex_unlock(&tp->mu);
            }
            return GP_OK;
        }
        gp__bufappend(whys, sizeof whys, "%s%s", i ? "; " : "", why);
        if (gp__now_ns() >= deadline)
            break;
    }
    return gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION,
                          "%s: no sentinel named the master: %s (check REDIS_SENTINELS and that the sentinels run)",
                          display, whys);
}

/* Where to connect: the configured node, or (Sentinel) the master as known
 * or asked now. */
static gp_status_t pick_node(const gp__redis_target_t *t, cache_topo_t *tp, int64_t deadline, int connect_timeout_ms,
                             char *host, size_t hlen, int *port, const char *display, gp_error_t *err)
{
    if (!t->n_sentinels) {
        snprintf(host, hlen, "%s", t->host);
        *port = t->port;
        return GP_OK;
    }
    if (tp) {
        pthread_mutex_lock(&tp->mu);
        bool known = tp->port && !tp->stale;
        if (known) {
            snprintf(host, hlen, "%s", tp->host);
            *port = tp->port;
        }
        pthread_mutex_unlock(&tp->mu);
        if (known)
            return GP_OK;
    }
    return ask_sentinels(t, tp, deadline, connect_timeout_ms, host, hlen, port, display, err);
}

gp_status_t gp__redis_open(const gp__redis_target_t *t, cache_topo_t *tp, const char *display, int64_t deadline,
                           int connect_timeout_ms, int command_timeout_ms, redisContext **out, int *tmo_ms, char *node,
                           gp_error_t *err)
{
    *out = NULL;
    char host[256], where[600], addr[280];
    int port = 0;
    gp_status_t st = pick_node(t, tp, deadline, connect_timeout_ms, host, sizeof host, &port, display, err);
    if (st != GP_OK)
        return st;
    addr_text(host, port, addr, sizeof addr);
    if (node)
        snprintf(node, 280, "%s", addr);
    /* With Sentinel, messages name the node too: the configuration does not. */
    if (t->n_sentinels)
        snprintf(where, sizeof where, "%s (master %s)", display, addr);
    else
        snprintf(where, sizeof where, "%s", display);
    redisContext *ctx;
    int tmo;
    bool refused;
    if ((st = connect_node(host, port, where, deadline, connect_timeout_ms, command_timeout_ms, &ctx, &tmo, &refused,
                           err)) != GP_OK) {
        if (tp && st != GP_ERR_NOMEM)
            gp__topo_suspect(tp, false);
        return st;
    }
    if (t->password[0]) {
        const char *a[3] = {"AUTH", t->username[0] ? t->username : t->password, t->password};
        if ((st = setup_cmd(where, ctx, t->username[0] ? 3 : 2, a, "AUTH", GP_ECLASS_AUTH, err)) != GP_OK)
            goto fail;
    }
    if (t->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", t->db);
        const char *a[2] = {"SELECT", db};
        if ((st = setup_cmd(where, ctx, 2, a, "SELECT", GP_ECLASS_CLIENT, err)) != GP_OK)
            goto fail;
    }
    /* Never write to a node that says it is a replica: it would answer
     * READONLY (or, before a failover completes, take writes that are then
     * lost). */
    char role[32], its_master[280];
    if ((st = node_role(ctx, where, role, sizeof role, its_master, sizeof its_master, err)) != GP_OK)
        goto fail;
    if (role[0] && strcmp(role, "master") != 0) {
        if (t->n_sentinels) {
            st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION,
                                "%s: the sentinels named it as master \"%s\", but it says it is a %s%s%s (a failover "
                                "in progress?); the sentinels will be asked again",
                                where, t->sentinel_master, strcmp(role, "slave") == 0 ? "replica" : role,
                                its_master[0] ? " of " : "", its_master);
            if (tp)
                gp__topo_suspect(tp, true);
        } else {
            st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION,
                                "%s is a %s%s%s, not a master: the cache writes, and a replica refuses writes "
                                "(READONLY); point REDIS_URL at the master, or set REDIS_SENTINELS and "
                                "REDIS_SENTINEL_MASTER to follow failovers",
                                where, strcmp(role, "slave") == 0 ? "replica" : role, its_master[0] ? " of " : "",
                                its_master);
        }
        goto fail;
    }
    ctx->reader->privdata = NULL; /* `refused` lives on this stack */
    *out = ctx;
    if (tmo_ms)
        *tmo_ms = tmo;
    return GP_OK;
fail:
    redisFree(ctx);
    return st;
}

void gp__topo_suspect(cache_topo_t *tp, bool drop_all)
{
    if (!tp->t->n_sentinels)
        return;
    pthread_mutex_lock(&tp->mu);
    tp->stale = true;
    pthread_mutex_unlock(&tp->mu);
    if (drop_all)
        atomic_fetch_add(&tp->epoch, 1);
}

void gp__topo_node(cache_topo_t *tp, char *out, size_t len)
{
    pthread_mutex_lock(&tp->mu);
    if (!tp->t->n_sentinels)
        addr_text(tp->t->host, tp->t->port, out, len);
    else if (tp->port)
        addr_text(tp->host, tp->port, out, len);
    else
        snprintf(out, len, "%s", "");
    pthread_mutex_unlock(&tp->mu);
}

/* ---- the +switch-master watcher ----------------------------------------------
 * One thread per cache with Sentinel: subscribed to +switch-master on one
 * sentinel at a time (the next one when it goes away), and after every
 * (re)subscription it asks the sentinels for the master, as a switch may
 * have been missed while it was not subscribed. It waits in poll() on the
 * subscription and on a pipe that gp__topo_free writes to. */

/* Sleep up to ms, or until told to close; returns whether to go on. */
static bool nap(cache_topo_t *tp, int ms)
{
    struct pollfd p = {tp->wake[0], POLLIN, 0};
    poll(&p, 1, ms);
    return !atomic_load(&tp->closing);
}

static void on_message(cache_topo_t *tp, const redisReply *r)
{
    /* ["message", "+switch-master", "<name> <old-ip> <old-port> <new-ip> <new-port>"] */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[0]->str, "message") != 0 || r->element[2]->type != REDIS_REPLY_STRING)
        return;
    char name[128], oldh[256], newh[256];
    int oldp, newp;
    if (sscanf(r->element[2]->str, "%127s %255s %d %255s %d", name, oldh, &oldp, newh, &newp) == 5 &&
        strcmp(name, tp->t->sentinel_master) == 0 && newp > 0 && newp <= 65535)
        set_master(tp, newh, newp, "+switch-master");
}

/* One subscription, until it breaks or the cache closes. */
static void watch_one(cache_topo_t *tp, int k)
{
    const gp__redis_target_t *t = tp->t;
    char name[280];
    addr_text(t->sentinels[k].host, t->sentinels[k].port, name, sizeof name);
    int64_t deadline = gp__now_ns() + (int64_t)tp->connect_timeout_ms * NS_PER_MS;
    redisContext *ctx;
    gp_error_t e;
    bool refused;
    if (connect_node(t->sentinels[k].host, t->sentinels[k].port, name, deadline, tp->connect_timeout_ms,
                     tp->connect_timeout_ms, &ctx, NULL, &refused, &e) != GP_OK) {
        gp__log(GP_LOG_DEBUG, "cache", "%s: cannot watch for +switch-master: %s", tp->display, e.message);
        return;
    }
    redisReply *r = gp__redis_command(ctx, 2, (const char *[]){"SUBSCRIBE", "+switch-master"});
    bool ok = r && r->type == REDIS_REPLY_ARRAY;
    if (r)
        freeReplyObject(r);
    if (!ok) {
        gp__log(GP_LOG_DEBUG, "cache", "%s: %s refused SUBSCRIBE +switch-master", tp->display, name);
        redisFree(ctx);
        return;
    }
    /* Subscribed: now a switch cannot be missed; one may have happened before. */
    char host[256];
    int port;
    int64_t d2 = gp__now_ns() + (int64_t)tp->connect_timeout_ms * NS_PER_MS;
    ask_sentinels(t, tp, d2, tp->connect_timeout_ms, host, sizeof host, &port, tp->display, NULL);
    while (!atomic_load(&tp->closing)) {
        void *msg = NULL;
        while (redisGetReplyFromReader(ctx, &msg) == REDIS_OK && msg) {
            on_message(tp, msg);
            freeReplyObject(msg);
            msg = NULL;
        }
        if (ctx->err)
            break;
        struct pollfd p[2] = {{ctx->fd, POLLIN, 0}, {tp->wake[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (p[0].revents && redisBufferRead(ctx) != REDIS_OK)
            break;
    }
    if (!atomic_load(&tp->closing))
        gp__log(GP_LOG_DEBUG, "cache", "%s: the subscription to %s ended: %s", tp->display, name,
                ctx->err ? ctx->errstr : "closed");
    redisFree(ctx);
}

static void *watch(void *arg)
{
    cache_topo_t *tp = arg;
    /* The watcher's own SIGPIPE stays off: it only writes through
     * gp__redis_command, but a signal for this thread must never end the
     * process. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int backoff = 50;
    for (int k = 0; !atomic_load(&tp->closing); k = (k + 1) % tp->t->n_sentinels) {
        int64_t t0 = gp__now_ns();
        watch_one(tp, k);
        /* A subscription that lasted resets the backoff; one that failed at
         * once doubles it (the next sentinel is tried after the nap). */
        backoff = gp__now_ns() - t0 > 5000 * NS_PER_MS ? 50 : backoff * 2 > 2000 ? 2000 : backoff * 2;
        if (!nap(tp, (int)gp__jitter(backoff, 0.2)))
            break;
    }
    return NULL;
}

gp_status_t gp__topo_init(cache_topo_t *tp, const gp__redis_target_t *t, const char *display, int connect_timeout_ms,
                          gp_error_t *err)
{
    memset(tp, 0, sizeof *tp);
    tp->t = t;
    snprintf(tp->display, sizeof tp->display, "%s", display);
    tp->connect_timeout_ms = connect_timeout_ms;
    tp->wake[0] = tp->wake[1] = -1;
    pthread_mutex_init(&tp->mu, NULL);
    if (!t->n_sentinels)
        return GP_OK;
    if (pipe2(tp->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        pthread_mutex_destroy(&tp->mu);
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "cannot create a pipe for the Sentinel watcher: %s",
                              strerror(errno));
    }
    int rc = pthread_create(&tp->watcher, NULL, watch, tp);
    if (rc != 0) {
        close(tp->wake[0]);
        close(tp->wake[1]);
        pthread_mutex_destroy(&tp->mu);
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "cannot start the Sentinel watcher thread: %s",
                              strerror(rc));
    }
    tp->watching = true;
    return GP_OK;
}

void gp__topo_free(cache_topo_t *tp)
{
    if (tp->watching) {
        atomic_store(&tp->closing, true);
        ssize_t w = write(tp->wake[1], "x", 1);
        (void)w; /* a full pipe is already a wake-up */
        pthread_join(tp->watcher, NULL);
    }
    if (tp->wake[0] >= 0) {
        close(tp->wake[0]);
        close(tp->wake[1]);
    }
    pthread_mutex_destroy(&tp->mu);
}

/* ---- wrong-node replies -------------------------------------------------------- */

static const char *const wrong_codes[GP_CACHE_WRONG_COUNT_] = {"MOVED", "ASK", "READONLY", "TRYAGAIN",
                                                               "CLUSTERDOWN", "MASTERDOWN"};

const char *gp_cache_wrong_node_name(gp_cache_wrong_node_t kind)
{
    static const char *const names[GP_CACHE_WRONG_COUNT_] = {"moved", "ask", "readonly", "tryagain", "clusterdown",
                                                             "masterdown"};
    return kind >= 0 && kind < GP_CACHE_WRONG_COUNT_ ? names[kind] : "unknown";
}

int gp__redis_wrong_node(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ERROR || !r->str)
        return -1;
    for (int k = 0; k < GP_CACHE_WRONG_COUNT_; k++) {
        size_t n = strlen(wrong_codes[k]);
        if (strncmp(r->str, wrong_codes[k], n) == 0 && (r->str[n] == ' ' || r->str[n] == 0))
            return k;
    }
    return -1;
}

static const char *wrong_hint(const cache_topo_t *tp, int kind)
{
    switch (kind) {
    case GP_CACHE_WRONG_MOVED:
    case GP_CACHE_WRONG_ASK:
        return "the key's slot is served by another node of a Redis Cluster, and this cache talks to one node: "
               "point REDIS_URL at a standalone Redis (or use REDIS_SENTINELS)";
    case GP_CACHE_WRONG_READONLY:
        return tp->t->n_sentinels ? "the node is a replica now (a failover); the cache reconnects to the master the "
                                    "sentinels name"
                                  : "the node is a replica now: the cache reconnects, and refuses it while it is "
                                    "one; point REDIS_URL at the master, or use REDIS_SENTINELS to follow failovers";
    case GP_CACHE_WRONG_TRYAGAIN:
        return "a Redis Cluster slot is being migrated; try again";
    case GP_CACHE_WRONG_CLUSTERDOWN:
        return "the Redis Cluster does not serve this slot now";
    default:
        return "the replica lost its master";
    }
}

void gp__topo_wrong_node(cache_topo_t *tp, int kind, const redisReply *r, const char *node, gp_error_t *err)
{
    int64_t now = gp__now_ns();
    atomic_fetch_add(&tp->wrong[kind], 1);
    atomic_store(&tp->wrong_last_ns, now);
    char text[600];
    snprintf(text, sizeof text, "%s answered %.200s: %s", node, r->str, wrong_hint(tp, kind));
    pthread_mutex_lock(&tp->mu);
    snprintf(tp->last_wrong, sizeof tp->last_wrong, "%s", text);
    pthread_mutex_unlock(&tp->mu);
    if (kind == GP_CACHE_WRONG_READONLY)
        gp__topo_suspect(tp, true);
    /* At most one line per kind per second, saying how many were not. */
    int64_t last = atomic_load(&tp->wrong_logged_ns[kind]);
    if ((last == 0 || now - last >= 1000 * NS_PER_MS) &&
        atomic_compare_exchange_strong(&tp->wrong_logged_ns[kind], &last, now)) {
        uint64_t quiet = atomic_exchange(&tp->wrong_unlogged[kind], 0);
        gp__log(GP_LOG_WARN, "cache", "wrong node: %s (%llu more %s replies since the last line)", text,
                (unsigned long long)quiet, wrong_codes[kind]);
    } else {
        atomic_fetch_add(&tp->wrong_unlogged[kind], 1);
    }
    gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION, "%s", text);
}
