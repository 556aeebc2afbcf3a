/* cache_keys.c — the tenant-scoped keyspace: key validation, key layout and
 * the per-tenant generations that make tenant-wide invalidation O(1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cache_internal.h"

/* The bytes a key may hold: printable ASCII other than space and
 * { } * ? [ ]. Braces would open a hash tag of their own; glob characters
 * make keys ambiguous in KEYS/SCAN patterns an operator might use. */
#define BIT(b) (1ULL << (b))
static const uint64_t key_ok[4] = {
    (~0ULL << 0x21) & ~BIT('*') & ~BIT('?'),                                   /* 0x21..0x3f */
    (~0ULL >> 1) & ~BIT('[' - 64) & ~BIT(']' - 64) & ~BIT('{' - 64) & ~BIT('}' - 64), /* 0x40..0x7e */
    0, 0,                                                                     /* 0x80..0xff */
};
#undef BIT

static bool key_byte_ok(unsigned char ch)
{
    return (key_ok[ch >> 6] >> (ch & 63)) & 1;
}

size_t gp__cache_key_len(const char *key)
{
    size_t n = strnlen(key, GP_CACHE_KEY_MAX + 1);
    if (n > GP_CACHE_KEY_MAX)
        return 0;
    /* branch-free: one bad byte anywhere clears bit 0 */
    uint64_t ok = 1;
    for (const unsigned char *p = (const unsigned char *)key, *e = p + n; p < e; p++)
        ok &= key_ok[*p >> 6] >> (*p & 63);
    return ok & 1 ? n : 0;
}

bool gp_cache_key_valid(const char *key, char *why, size_t whylen)
{
    if (!why)
        whylen = 0;
    if (whylen)
        why[0] = 0;
    if (!key) {
        if (whylen)
            snprintf(why, whylen, "cache key is missing (NULL)");
        return false;
    }
    size_t n = strnlen(key, GP_CACHE_KEY_MAX + 1);
    if (n == 0 || n > GP_CACHE_KEY_MAX) {
        if (whylen)
            snprintf(why, whylen, "cache key is %s; expected 1 to %d bytes", n ? "longer than 512 bytes" : "empty",
                     GP_CACHE_KEY_MAX);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (!key_byte_ok(ch)) {
            if (whylen) {
                if (ch > 0x20 && ch < 0x7f)
                    snprintf(why, whylen,
                             "cache key has '%c' at position %zu; keys are printable ASCII without space and { } * ? [ ]",
                             ch, i);
                else
                    snprintf(why, whylen,
                             "cache key has byte 0x%02x at position %zu; keys are printable ASCII without space and "
                             "{ } * ? [ ]",
                             ch, i);
            }
            return false;
        }
    }
    return true;
}

gp_status_t gp__cache_check(const char *tenant, const char *key, gp_error_t *err)
{
    char why[256];
    if (!gp_tenant_id_valid(tenant, why, sizeof why))
        return gp__cache_fail(err, GP_ERR_TENANT, GP_ECLASS_CLIENT, "%s", why);
    if (key != CACHE_NO_KEY && !(key && gp__cache_key_len(key)) && !gp_cache_key_valid(key, why, sizeof why))
        return gp__cache_fail(err, GP_ERR_KEY, GP_ECLASS_CLIENT, "%s", why);
    return GP_OK;
}

/* prefix "t:{" tenant "}:" -- the part every key of a tenant shares. */
static size_t put_tenant(const gp_cache_t *c, const char *tenant, char *buf)
{
    size_t n = c->prefix_len;
    memcpy(buf, c->prefix, n);
    memcpy(buf + n, "t:{", 3);
    n += 3;
    memcpy(buf + n, tenant, GP_TENANT_ID_LEN);
    n += GP_TENANT_ID_LEN;
    memcpy(buf + n, "}:", 2);
    return n + 2;
}

size_t gp__cache_key_prefix(const gp_cache_t *c, const char *tenant, uint64_t gen, const char *kind, char *buf)
{
    size_t n = put_tenant(c, tenant, buf);
    n += gp__cache_put_dec(buf + n, gen);
    size_t k = strlen(kind);
    memcpy(buf + n, kind, k);
    n += k;
    buf[n++] = ':';
    return n;
}

size_t gp__cache_key(const gp_cache_t *c, const char *tenant, uint64_t gen, const char *kind, const char *key,
                     char *buf)
{
    size_t n = gp__cache_key_prefix(c, tenant, gen, kind, buf);
    size_t kl = strlen(key);
    memcpy(buf + n, key, kl + 1);
    return n + kl;
}

/* ---- generations ------------------------------------------------------------
 * Cached per process in a direct-mapped table (bounded memory whatever the
 * number of tenants; a collision just costs a fetch). Generations only grow,
 * so a slow fetch that read an older value never overwrites a newer one. */

static uint32_t tenant_hash(const char *t)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < GP_TENANT_ID_LEN; i++)
        h = (h ^ (unsigned char)t[i]) * 16777619u;
    return h;
}

static void gen_store(gp_cache_t *c, const char *tenant, uint64_t gen)
{
    uint32_t i = tenant_hash(tenant) % GEN_ENTRIES;
    pthread_mutex_t *mu = &c->gen_mu[i % GEN_STRIPES];
    gen_entry_t *e = &c->gens[i];
    pthread_mutex_lock(mu);
    if (memcmp(e->tenant, tenant, GP_TENANT_ID_LEN) != 0) {
        memcpy(e->tenant, tenant, GP_TENANT_ID_LEN);
        e->gen = gen;
    } else if (gen > e->gen) {
        e->gen = gen;
    }
    e->fetched_ns = gp__now_ns();
    pthread_mutex_unlock(mu);
}

static bool gen_lookup(gp_cache_t *c, const char *tenant, uint64_t *gen)
{
    if (c->opt.generation_ttl_ms < 0)
        return false;
    uint32_t i = tenant_hash(tenant) % GEN_ENTRIES;
    pthread_mutex_t *mu = &c->gen_mu[i % GEN_STRIPES];
    gen_entry_t *e = &c->gens[i];
    bool ok = false;
    pthread_mutex_lock(mu);
    if (memcmp(e->tenant, tenant, GP_TENANT_ID_LEN) == 0 &&
        gp__now_ns() - e->fetched_ns < (int64_t)c->opt.generation_ttl_ms * 1000000LL) {
        *gen = e->gen;
        ok = true;
    }
    pthread_mutex_unlock(mu);
    return ok;
}

void gp__cache_generation_forget(gp_cache_t *c, const char *tenant)
{
    uint32_t i = tenant_hash(tenant) % GEN_ENTRIES;
    pthread_mutex_t *mu = &c->gen_mu[i % GEN_STRIPES];
    gen_entry_t *e = &c->gens[i];
    pthread_mutex_lock(mu);
    if (memcmp(e->tenant, tenant, GP_TENANT_ID_LEN) == 0)
        e->fetched_ns = INT64_MIN / 2; /* stale: the next call fetches it */
    pthread_mutex_unlock(mu);
}

void gp__cache_generation_forget_all(gp_cache_t *c)
{
    for (uint32_t i = 0; i < GEN_ENTRIES; i++) {
        pthread_mutex_t *mu = &c->gen_mu[i % GEN_STRIPES];
        pthread_mutex_lock(mu);
        c->gens[i].fetched_ns = INT64_MIN / 2;
        pthread_mutex_unlock(mu);
    }
}

static bool parse_u64(const redisReply *r, uint64_t *v)
{
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
        *v = (uint64_t)r->integer;
        return true;
    }
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 20)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < r->len; i++) {
        if (r->str[i] < '0' || r->str[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(r->str[i] - '0');
    }
    *v = x;
    return true;
}

/* Pipelined "SET genkey <now in us> NX" + `second` (GET or INCR) on the
 * tenant's generation key: one round trip, and a missing counter is born
 * from the clock, so an evicted counter never repeats an old generation. */
static gp_status_t gen_roundtrip(gp_cache_t *c, const char *tenant, const char *second, uint64_t *gen,
                                 gp_error_t *err)
{
    char key[CACHE_FULLKEY_MAX];
    size_t kl = put_tenant(c, tenant, key);
    memcpy(key + kl, "gen", 4);
    kl += 3;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char now[24];
    size_t nl = gp__cache_put_dec(now, (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec);
    const char *a1[4] = {"SET", key, now, "NX"};
    size_t l1[4] = {3, kl, nl, 2};
    const char *a2[2] = {second, key};
    size_t l2[2] = {strlen(second), kl};
    cache_cmd_t cmds[2] = {{4, a1, l1}, {2, a2, l2}};
    redisReply *r[2];
    cache_arena_t arena;
    gp__cache_arena_init(&arena);
    gp_status_t st = gp__cache_exec(c, 2, cmds, r, &arena, strcmp(second, "GET") == 0, err);
    if (st == GP_OK && r[1]->type == REDIS_REPLY_ERROR)
        st = gp__cache_server_error(c, r[1], err);
    else if (st == GP_OK && !parse_u64(r[1], gen))
        st = gp__cache_fail(err, GP_ERR_PROTOCOL, GP_ECLASS_INTERNAL,
                            "the generation key of tenant %s holds something else than a counter", tenant);
    gp__cache_arena_free(&arena);
    return st;
}

gp_status_t gp__cache_generation(gp_cache_t *c, const char *tenant, uint64_t *gen, gp_error_t *err)
{
    if (gen_lookup(c, tenant, gen))
        return GP_OK;
    gp_status_t st = gen_roundtrip(c, tenant, "GET", gen, err);
    if (st != GP_OK)
        return st;
    atomic_fetch_add_explicit(&c->n.generation_fetches, 1, memory_order_relaxed);
    if (c->opt.generation_ttl_ms >= 0)
        gen_store(c, tenant, *gen);
    return GP_OK;
}

gp_status_t gp_cache_invalidate_tenant(gp_cache_t *c, const char *tenant, gp_error_t *err)
{
    gp_error_clear(err);
    if (!c)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "cache is NULL");
    gp_status_t st = gp__cache_check(tenant, CACHE_NO_KEY, err);
    if (st != GP_OK)
        return st;
    uint64_t gen;
    st = gen_roundtrip(c, tenant, "INCR", &gen, err);
    if (st != GP_OK)
        return st;
    gen_store(c, tenant, gen);
    atomic_fetch_add(&c->n.invalidations, 1);
    gp__logf(&(gp__log_fields_t){.tenant = tenant, .duration_ns = -1}, GP_LOG_INFO, "cache",
             "tenant %s invalidated: generation %llu", tenant, (unsigned long long)gen);
    return GP_OK;
}
