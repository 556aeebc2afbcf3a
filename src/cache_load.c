/* cache_load.c — cache-aside: gp_cache_get_or_load with single-flight loads
 * (one loader per tenant and key across the process's threads) and
 * probabilistic early refresh (XFetch). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"
#include "json_codec.h"

#define COUNT(field) atomic_fetch_add_explicit(&c->n.field, 1, memory_order_relaxed)

/* A load in progress. Lives in c->flights while the loader runs (found by
 * tenant and key); freed when the leader and every waiter have let go. All
 * fields are guarded by c->flight_mu; `text` is immutable once `done`. */
struct flight {
    flight_t *next;
    uint32_t hash;
    char *id;          /* tenant + key: the tenant's fixed length makes this unambiguous */
    int refs;          /* the leader and each waiter */
    bool done;
    gp_status_t st;    /* the load's outcome */
    char *text;        /* on GP_OK: the value, serialized, for the waiters */
    size_t len;
    pthread_cond_t cv; /* CLOCK_MONOTONIC; broadcast when done */
};

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static flight_t **bucket(gp_cache_t *c, uint32_t h) { return &c->flights[h % FLIGHT_BUCKETS]; }

static void flight_free(flight_t *f)
{
    pthread_cond_destroy(&f->cv);
    free(f->id);
    free(f->text);
    free(f);
}

/* Under flight_mu. */
static void flight_unref(flight_t *f)
{
    if (--f->refs == 0)
        flight_free(f);
}

static flight_t *flight_new(uint32_t h, const char *id)
{
    flight_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->id = strdup(id);
    pthread_condattr_t ca;
    bool ok = f->id && pthread_condattr_init(&ca) == 0;
    if (ok) {
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        ok = pthread_cond_init(&f->cv, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!ok) {
        free(f->id);
        free(f);
        return NULL;
    }
    f->hash = h;
    f->refs = 1;
    return f;
}

/* The leader publishes the outcome (taking `text`), unlinks the flight and
 * wakes the waiters. */
static void flight_finish(gp_cache_t *c, flight_t *f, gp_status_t st, char *text)
{
    pthread_mutex_lock(&c->flight_mu);
    f->done = true;
    f->st = text || st != GP_OK ? st : GP_ERR_NOMEM;
    f->text = text;
    f->len = text ? strlen(text) : 0;
    for (flight_t **p = bucket(c, f->hash); *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    pthread_cond_broadcast(&f->cv);
    flight_unref(f);
    pthread_mutex_unlock(&c->flight_mu);
}

void gp__cache_flights_free(gp_cache_t *c)
{
    /* Only reached when no call is running, so every flight is finished and
     * unlinked; this guards against a leak if that contract is broken. */
    for (int i = 0; i < FLIGHT_BUCKETS; i++) {
        while (c->flights[i]) {
            flight_t *f = c->flights[i];
            c->flights[i] = f->next;
            flight_free(f);
        }
    }
}

/* -ln(x) for x in (0, 1], without libm: x = m * 2^e, m in [1, 2),
 * ln m = 2 atanh((m-1)/(m+1)). Accurate to ~1e-12, plenty for a coin toss. */
static double neg_ln(double x)
{
    int e = 0;
    while (x < 1) {
        x *= 2;
        e--;
    }
    double s = (x - 1) / (x + 1), s2 = s * s, t = s, sum = 0;
    for (int k = 1; k < 40; k += 2) {
        sum += t / k;
        t *= s2;
    }
    return -(2 * sum + e * 0.69314718055994530942);
}

static int64_t parse_ms(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 15)
        return 0;
    int64_t v = 0;
    for (size_t i = 0; i < r->len; i++) {
        if (r->str[i] < '0' || r->str[i] > '9')
            return 0;
        v = v * 10 + (r->str[i] - '0');
    }
    return v;
}

/* Read (tenant, gen, key) in one round trip: GET, or with beta > 0 MGET of
 * the value and its last load duration plus PTTL. GP_OK with *val; *early
 * when XFetch says this caller should refresh now. Counts hits and misses
 * when `count`. */
static gp_status_t lookup(gp_cache_t *c, const char *tenant, uint64_t gen, const char *key, double beta, bool count,
                          json_t **val, bool *early)
{
    *val = NULL;
    *early = false;
    char dk[CACHE_FULLKEY_MAX], mk[CACHE_FULLKEY_MAX];
    size_t dl = gp__cache_key(c, tenant, gen, "", key, dk);
    redisReply *r[2] = {NULL, NULL};
    cache_arena_t arena;
    gp__cache_arena_init(&arena);
    gp_status_t st;
    const redisReply *v;
    if (beta > 0) {
        size_t ml = gp__cache_key(c, tenant, gen, "x", key, mk);
        const char *a1[3] = {"MGET", dk, mk}, *a2[2] = {"PTTL", dk};
        size_t l1[3] = {4, dl, ml}, l2[2] = {4, dl};
        cache_cmd_t cmds[2] = {{3, a1, l1}, {2, a2, l2}};
        st = gp__cache_exec(c, 2, cmds, r, &arena, true, NULL);
        if (st != GP_OK)
            goto out;
        v = r[0]->type == REDIS_REPLY_ARRAY && r[0]->elements == 2 ? r[0]->element[0] : r[0];
    } else {
        const char *a[2] = {"GET", dk};
        size_t l[2] = {3, dl};
        cache_cmd_t cmd = {2, a, l};
        st = gp__cache_exec(c, 1, &cmd, r, &arena, true, NULL);
        if (st != GP_OK)
            goto out;
        v = r[0];
    }
    if (v->type == REDIS_REPLY_STRING) {
        st = gp__cache_parse_json(c, tenant, key, v->str, v->len, count, val, NULL);
    } else {
        st = v->type == REDIS_REPLY_ERROR ? gp__cache_server_error(c, v, NULL) : GP_ERR_MISS;
        if (st == GP_ERR_MISS && count)
            COUNT(misses);
    }
    if (st == GP_OK && beta > 0 && r[1] && r[1]->type == REDIS_REPLY_INTEGER) {
        int64_t delta = parse_ms(r[0]->type == REDIS_REPLY_ARRAY ? r[0]->element[1] : NULL);
        int64_t pttl = r[1]->integer;
        double u = (double)((gp__rand64() >> 11) + 1) / (double)(1ULL << 53); /* (0, 1] */
        *early = delta > 0 && pttl > 0 && (double)delta * beta * neg_ln(u) >= (double)pttl;
    }
out:
    gp__cache_arena_free(&arena);
    return st;
}

/* Store a loaded value under the generation read before the load (and, for
 * XFetch, how long the load took), in one round trip. A failure is counted
 * by the exec layer and otherwise ignored: the caller has its value. */
static void store(gp_cache_t *c, const char *tenant, uint64_t gen, const char *key, const char *text,
                  int64_t ttl_ms, int64_t delta_ms)
{
    char dk[CACHE_FULLKEY_MAX], mk[CACHE_FULLKEY_MAX], ttl[24], d[24];
    size_t dl = gp__cache_key(c, tenant, gen, "", key, dk);
    size_t ml = gp__cache_key(c, tenant, gen, "x", key, mk);
    size_t tl = (size_t)snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
    size_t nl = (size_t)snprintf(d, sizeof d, "%lld", (long long)(delta_ms > 0 ? delta_ms : 1));
    const char *a1[5] = {"SET", dk, text, "PX", ttl}, *a2[5] = {"SET", mk, d, "PX", ttl};
    size_t l1[5] = {3, dl, strlen(text), 2, tl}, l2[5] = {3, ml, nl, 2, tl};
    cache_cmd_t cmds[2] = {{5, a1, l1}, {5, a2, l2}};
    redisReply *r[2];
    cache_arena_t arena;
    gp__cache_arena_init(&arena);
    int n = delta_ms >= 0 ? 2 : 1;
    gp_error_t e;
    if (gp__cache_exec(c, n, cmds, r, &arena, true, &e) != GP_OK) {
        gp__log_fields_t f = gp__log_fields_of(&e);
        f.tenant = tenant;
        gp__logf(&f, GP_LOG_DEBUG, "cache", "tenant %s key %s: loaded value not stored: %s", tenant, key, e.message);
    }
    gp__cache_arena_free(&arena);
}

/* A loader's failure as the caller's error. The loader returns a status
 * only, so its class and whether a retry can help are told by the status:
 * timeouts, lost connections, an unavailable cache and a throttled pool
 * are retriable, the rest are not. */
static gp_status_t loader_failed(gp_error_t *err, gp_status_t st, const char *fmt, ...) GP__PRINTF(3, 4);
static gp_status_t loader_failed(gp_error_t *err, gp_status_t st, const char *fmt, ...)
{
    if (!err)
        return st;
    gp_error_class_t k = GP_ECLASS_NONE;
    switch (st) {
    case GP_ERR_TIMEOUT: k = GP_ECLASS_TIMEOUT; break;
    case GP_ERR_CONNECT:
    case GP_ERR_UNAVAILABLE:
    case GP_ERR_CLOSED: k = GP_ECLASS_CONNECTION; break;
    case GP_ERR_AUTH: k = GP_ECLASS_AUTH; break;
    case GP_ERR_BUSY: k = GP_ECLASS_THROTTLED; break;
    case GP_ERR_NOMEM:
    case GP_ERR_INVALID: k = GP_ECLASS_CLIENT; break;
    default: break;
    }
    char msg[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gp__cache_fail(err, st, k, "%s", msg);
    err->retriable = st == GP_ERR_TIMEOUT || st == GP_ERR_CONNECT || st == GP_ERR_UNAVAILABLE || st == GP_ERR_BUSY;
    return st;
}

/* Wait for another thread's load of the same key (flight_mu held on entry
 * and on return). */
static gp_status_t wait_for(gp_cache_t *c, flight_t *f, int wait_ms, const char *tenant, const char *key,
                            json_t **value, gp_error_t *err)
{
    f->refs++;
    COUNT(load_waits);
    struct timespec ts = gp__deadline_mono(wait_ms);
    while (!f->done)
        if (pthread_cond_timedwait(&f->cv, &c->flight_mu, &ts) == ETIMEDOUT)
            break;
    gp_status_t st;
    if (!f->done) {
        COUNT(load_wait_timeouts);
        st = gp__cache_fail(err, GP_ERR_TIMEOUT, GP_ECLASS_TIMEOUT,
                            "tenant %s key %s: another thread's load took longer than %d ms", tenant, key, wait_ms);
    } else if (f->st != GP_OK) {
        st = loader_failed(err, f->st, "tenant %s key %s: the load (by another thread) failed: %s",
                            tenant, key, gp_strerror(f->st));
    } else {
        /* text is immutable once done, and our reference keeps it alive. */
        pthread_mutex_unlock(&c->flight_mu);
        /* Our own encoding of the loaded value: it fails when out of memory,
         * or when jansson cannot read it back (a NUL byte in an object key). */
        gp__json_rc_t rc = gp__json_load(f->text, f->len, value, NULL);
        pthread_mutex_lock(&c->flight_mu);
        st = rc == GP__JSON_OK ? GP_OK
             : rc == GP__JSON_NOMEM
                 ? gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory parsing a value")
                 : gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT,
                                  "tenant %s key %s: the value loaded by another thread cannot be read back from "
                                  "its JSON text (an object key with a NUL byte?)",
                                  tenant, key);
    }
    flight_unref(f);
    return st;
}

gp_status_t gp_cache_get_or_load(gp_cache_t *c, const char *tenant, const char *key,
                                 const gp_cache_load_opts_t *opts, gp_cache_loader_fn loader, void *userdata,
                                 json_t **value, gp_error_t *err)
{
    gp_error_clear(err);
    if (!c || !loader || !value)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT,
                              "gp_cache_get_or_load: cache, loader and value must not be NULL");
    *value = NULL;
    gp_status_t st = gp__cache_check(tenant, key, err);
    if (st != GP_OK)
        return st;
    int64_t ttl = opts && opts->ttl_ms > 0 ? opts->ttl_ms : c->opt.default_ttl_ms;
    double beta = opts && opts->early_beta > 0 ? opts->early_beta : 0; /* NaN and negatives: off */
    int wait_ms = opts && opts->wait_ms > 0 ? opts->wait_ms : c->opt.load_wait_ms;

    /* The generation is read once, before any load: a value loaded before an
     * invalidation can only land in the old, unreachable generation. */
    uint64_t gen = 0;
    bool have_gen = gp__cache_generation(c, tenant, &gen, NULL) == GP_OK;
    json_t *cached = NULL;
    bool early = false;
    if (have_gen && lookup(c, tenant, gen, key, beta, true, &cached, &early) == GP_OK && !early) {
        *value = cached;
        return GP_OK;
    }

    char id[GP_TENANT_ID_LEN + GP_CACHE_KEY_MAX + 1];
    snprintf(id, sizeof id, "%s%s", tenant, key);
    uint32_t h = hash_str(id);
    pthread_mutex_lock(&c->flight_mu);
    flight_t *f = *bucket(c, h);
    while (f && !(f->hash == h && strcmp(f->id, id) == 0))
        f = f->next;
    if (f && cached) { /* someone is already refreshing it early: keep the still-valid value */
        pthread_mutex_unlock(&c->flight_mu);
        *value = cached;
        return GP_OK;
    }
    if (f) {
        st = wait_for(c, f, wait_ms, tenant, key, value, err);
        pthread_mutex_unlock(&c->flight_mu);
        return st;
    }
    f = flight_new(h, id);
    if (!f) {
        pthread_mutex_unlock(&c->flight_mu);
        json_decref(cached);
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory starting a load");
    }
    f->next = *bucket(c, h);
    *bucket(c, h) = f;
    pthread_mutex_unlock(&c->flight_mu);

    /* The leader. Another thread may have stored the value between our miss
     * and our registration: look once more before loading. */
    json_t *result = NULL;
    bool again = false;
    if (!cached && have_gen && lookup(c, tenant, gen, key, 0, false, &result, &again) == GP_OK) {
        char *text = gp__json_dumps(result, NULL);
        flight_finish(c, f, GP_OK, text);
        *value = result;
        return GP_OK;
    }
    int64_t t0 = gp__now_ns(), lttl = ttl;
    st = loader(userdata, tenant, key, &result, &lttl);
    int64_t took_ms = (gp__now_ns() - t0) / 1000000;
    COUNT(loads);
    if (st == GP_OK && !result)
        st = gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT,
                            "the loader for tenant %s key %s returned GP_OK without a value", tenant, key);
    if (st != GP_OK) {
        COUNT(load_failures);
        json_decref(result);
        result = NULL;
        if (cached) { /* a failed early refresh: the cached value is still valid */
            flight_finish(c, f, GP_OK, gp__json_dumps(cached, NULL));
            gp_error_clear(err);
            *value = cached;
            return GP_OK;
        }
        if (err && err->status == GP_OK)
            loader_failed(err, st, "the loader for tenant %s key %s failed: %s", tenant, key,
                           gp_strerror(st));
        flight_finish(c, f, st, NULL);
        return st;
    }
    if (cached) {
        COUNT(early_refreshes);
        json_decref(cached);
    }
    char *text = gp__json_dumps(result, NULL);
    if (text && have_gen)
        store(c, tenant, gen, key, text, lttl > 0 ? lttl : ttl, beta > 0 ? took_ms : -1);
    flight_finish(c, f, GP_OK, text);
    *value = result;
    return GP_OK;
}
