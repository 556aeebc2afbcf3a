/* tenants.c — the slug -> tenant id map: 4-way set-associative, fixed size,
 * one mutex (held for a few compares, never across I/O). */
#include "tenants.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAYS 4

typedef struct entry {
    int64_t expires_ns; /* 0 = unused */
    int64_t refresh_ns; /* from then on, the next lookup refreshes it (expiry - a tenth of the TTL) */
    bool refreshing;    /* a thread is asking the database for it */
    char slug[TENANT_SLUG_MAX + 1];
    char id[GP_TENANT_ID_LEN + 1]; /* "" = no such tenant (a negative entry) */
} entry_t;

struct tenant_map {
    pthread_mutex_t mu;
    entry_t *slots;   /* nbuckets * WAYS; guarded by mu */
    size_t nbuckets;  /* a power of two */
    int64_t ttl_ns, negative_ttl_ns;
    atomic_uint_fast64_t hits, negative_hits, misses, errors, evictions;
};

bool tenant_slug_valid(const char *s, size_t len)
{
    if (len == 0 || len > TENANT_SLUG_MAX || s[0] == '-' || s[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

tenant_map_t *tenant_map_new(size_t capacity, int ttl_ms, int negative_ttl_ms)
{
    tenant_map_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    size_t nb = 1;
    while (nb * WAYS < capacity)
        nb <<= 1;
    m->nbuckets = nb;
    m->slots = calloc(nb * WAYS, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    m->ttl_ns = (int64_t)ttl_ms * 1000000;
    m->negative_ttl_ns = (int64_t)negative_ttl_ms * 1000000;
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void tenant_map_free(tenant_map_t *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m->slots);
    free(m);
}

static entry_t *bucket_of(tenant_map_t *m, const char *slug)
{
    return &m->slots[(fnv1a(slug) & (m->nbuckets - 1)) * WAYS];
}

/* Where to store an answer for `slug` in bucket b, or NULL to drop it. In
 * order: the slug's own entry, an unused or expired one, the negative entry
 * expiring first, and — for a positive answer only — the live entry
 * expiring first. So a flood of made-up slugs only ever replaces other
 * made-up slugs: it cannot push real tenants out of the map. */
static entry_t *victim(entry_t *b, const char *slug, bool positive, int64_t now, bool *evicts)
{
    entry_t *free_slot = NULL, *neg = NULL, *oldest = NULL;
    *evicts = false;
    for (int i = 0; i < WAYS; i++) {
        entry_t *e = &b[i];
        if (e->expires_ns != 0 && strcmp(e->slug, slug) == 0)
            return e;
        if (e->expires_ns <= now) {
            if (!free_slot)
                free_slot = e;
        } else if (!e->id[0]) {
            if (!neg || e->expires_ns < neg->expires_ns)
                neg = e;
        } else if (!oldest || e->expires_ns < oldest->expires_ns) {
            oldest = e;
        }
    }
    if (free_slot)
        return free_slot;
    *evicts = true;
    if (neg)
        return neg;
    return positive ? oldest : NULL;
}

/* Ask the database: GP_OK with id (possibly "": no such tenant), or its error. */
static gp_status_t ask_database(gp_pool_t *pool, const char *slug, char id[37], gp_error_t *err)
{
    /* System work before any tenant is set: the schema's SECURITY DEFINER
     * lookup, which answers for active tenants only (NULL otherwise). */
    gp_result_t *res = NULL;
    gp_status_t st = gp_pool_query(pool, "SELECT public.tenant_id_for_slug($1)", GP_ARGS(gp_text(slug)), &res, err);
    if (st != GP_OK)
        return st;
    gp_uuid_t uuid;
    st = gp_get_uuid(res, 0, 0, &uuid);
    gp_result_free(res);
    if (st == GP_OK) {
        gp_uuid_format(&uuid, id);
        return GP_OK;
    }
    if (st == GP_ERR_NULL) {
        id[0] = 0;
        return GP_OK;
    }
    gp_error_clear(err);
    if (err) {
        err->status = st;
        snprintf(err->message, sizeof err->message, "tenant_id_for_slug: unexpected result: %s", gp_strerror(st));
    }
    return st;
}

gp_status_t tenant_resolve(tenant_map_t *m, gp_pool_t *pool, const char *slug, char id[37], gp_error_t *err)
{
    int64_t now = now_ns();
    entry_t *b = bucket_of(m, slug);
    bool found = false, refresh = false;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < WAYS; i++) {
        entry_t *e = &b[i];
        if (e->expires_ns > now && strcmp(e->slug, slug) == 0) {
            memcpy(id, e->id, GP_TENANT_ID_LEN + 1);
            found = true;
            /* Refresh ahead: the first lookup in the last tenth of the TTL
             * asks the database while every other one goes on using the
             * entry, so a busy slug never expires under load (no stampede
             * of lookups at expiry), and is never used past its TTL. */
            if (now >= e->refresh_ns && !e->refreshing)
                refresh = e->refreshing = true;
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (found && !refresh) {
        atomic_fetch_add_explicit(id[0] ? &m->hits : &m->negative_hits, 1, memory_order_relaxed);
        return id[0] ? GP_OK : GP_ERR_NOT_FOUND;
    }

    /* A miss (two threads missing the same new slug at once both ask; the
     * answers agree), or this thread's refresh. */
    char fresh[GP_TENANT_ID_LEN + 1];
    atomic_fetch_add_explicit(&m->misses, 1, memory_order_relaxed);
    gp_status_t st = ask_database(pool, slug, fresh, err);
    if (st != GP_OK) {
        atomic_fetch_add_explicit(&m->errors, 1, memory_order_relaxed);
        if (!found)
            return st; /* an error is never remembered: the next request asks again */
        /* The entry is still within its TTL: use it, and let a later lookup
         * try the refresh again. */
        pthread_mutex_lock(&m->mu);
        for (int i = 0; i < WAYS; i++)
            if (b[i].expires_ns != 0 && strcmp(b[i].slug, slug) == 0)
                b[i].refreshing = false;
        pthread_mutex_unlock(&m->mu);
        return id[0] ? GP_OK : GP_ERR_NOT_FOUND;
    }
    memcpy(id, fresh, sizeof fresh);

    bool positive = id[0] != 0, evicts;
    int64_t ttl = positive ? m->ttl_ns : m->negative_ttl_ns;
    pthread_mutex_lock(&m->mu);
    entry_t *e = victim(b, slug, positive, now, &evicts);
    if (e) {
        snprintf(e->slug, sizeof e->slug, "%s", slug);
        memcpy(e->id, id, GP_TENANT_ID_LEN + 1);
        e->expires_ns = now + ttl;
        e->refresh_ns = now + ttl - ttl / 10;
        e->refreshing = false;
    }
    pthread_mutex_unlock(&m->mu);
    if (e && evicts)
        atomic_fetch_add_explicit(&m->evictions, 1, memory_order_relaxed);
    return positive ? GP_OK : GP_ERR_NOT_FOUND;
}

void tenant_map_stats(tenant_map_t *m, tenant_map_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->hits = atomic_load_explicit(&m->hits, memory_order_relaxed);
    out->negative_hits = atomic_load_explicit(&m->negative_hits, memory_order_relaxed);
    out->errors = atomic_load_explicit(&m->errors, memory_order_relaxed); /* first: never more than misses */
    out->misses = atomic_load_explicit(&m->misses, memory_order_relaxed);
    out->evictions = atomic_load_explicit(&m->evictions, memory_order_relaxed);
    out->capacity = m->nbuckets * WAYS;
    int64_t now = now_ns();
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < out->capacity; i++)
        out->entries += m->slots[i].expires_ns > now;
    pthread_mutex_unlock(&m->mu);
}
