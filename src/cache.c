/* cache.c — the cache's operations: single keys, batches in one round trip,
 * JSON values. Connections, budget and breaker live in cache_conn.c, the
 * keyspace in cache_keys.c, cache-aside in cache_load.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"
#include "json_codec.h"

#define COUNT(field) atomic_fetch_add_explicit(&c->n.field, 1, memory_order_relaxed)

/* Validate, resolve the generation, build the full key. */
static gp_status_t begin(gp_cache_t *c, const char *tenant, const char *key, char *fk, size_t *fkl, gp_error_t *err)
{
    gp_error_clear(err);
    if (!c)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "cache is NULL");
    gp_status_t st = gp__cache_check(tenant, key, err);
    if (st != GP_OK)
        return st;
    uint64_t gen;
    st = gp__cache_generation(c, tenant, &gen, err);
    if (st != GP_OK)
        return st;
    *fkl = gp__cache_key(c, tenant, gen, "", key, fk);
    return GP_OK;
}

static gp_status_t unexpected(const char *cmd, gp_error_t *err)
{
    return gp__cache_fail(err, GP_ERR_PROTOCOL, GP_ECLASS_INTERNAL, "unexpected reply type to %s", cmd);
}

/* One command on one key; *out is the reply (in `arena`, which the caller
 * initialised and frees) unless it is an error reply, which becomes
 * GP_ERR_SERVER. */
static gp_status_t one(gp_cache_t *c, int argc, const char **argv, const size_t *lens, bool idempotent,
                       cache_arena_t *arena, redisReply **out, gp_error_t *err)
{
    cache_cmd_t cmd = {argc, argv, lens};
    gp_status_t st = gp__cache_exec(c, 1, &cmd, out, arena, idempotent, err);
    if (st == GP_OK && (*out)->type == REDIS_REPLY_ERROR) {
        st = gp__cache_server_error(c, *out, err);
        *out = NULL;
    }
    return st;
}

/* GET: GP_OK with a string reply (in `arena`), or GP_ERR_MISS (counted). */
static gp_status_t fetch(gp_cache_t *c, const char *tenant, const char *key, cache_arena_t *arena, redisReply **out,
                         gp_error_t *err)
{
    char fk[CACHE_FULLKEY_MAX];
    size_t fkl;
    gp_status_t st = begin(c, tenant, key, fk, &fkl, err);
    if (st != GP_OK)
        return st;
    const char *argv[2] = {"GET", fk};
    size_t lens[2] = {3, fkl};
    st = one(c, 2, argv, lens, true, arena, out, err);
    if (st != GP_OK)
        return st;
    if ((*out)->type == REDIS_REPLY_STRING)
        return GP_OK;
    st = (*out)->type == REDIS_REPLY_NIL ? GP_ERR_MISS : unexpected("GET", err);
    if (st == GP_ERR_MISS)
        COUNT(misses);
    *out = NULL;
    return st;
}

static char *copy_bytes(const char *p, size_t n)
{
    char *v = malloc(n + 1);
    if (v) {
        memcpy(v, p, n);
        v[n] = 0;
    }
    return v;
}

gp_status_t gp_cache_get(gp_cache_t *c, const char *tenant, const char *key, char **value, size_t *len,
                         gp_error_t *err)
{
    if (len)
        *len = 0;
    if (!value)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "gp_cache_get: value is NULL");
    *value = NULL;
    redisReply *r;
    cache_arena_t arena;
    gp__cache_arena_init(&arena);
    gp_status_t st = fetch(c, tenant, key, &arena, &r, err);
    if (st == GP_OK) {
        COUNT(hits);
        *value = copy_bytes(r->str, r->len);
        if (!*value)
            st = gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory copying a %zu-byte value", r->len);
        else if (len)
            *len = r->len;
    }
    gp__cache_arena_free(&arena);
    return st;
}

static int64_t ttl_or_default(const gp_cache_t *c, int64_t ttl_ms)
{
    return ttl_ms > 0 ? ttl_ms : c->opt.default_ttl_ms;
}

/* Decimal text of v (may be negative) into buf (24 bytes), NUL-terminated. */
static size_t fmt_i64(char *buf, int64_t v)
{
    size_t n = 0;
    if (v < 0)
        buf[n++] = '-';
    n += gp__cache_put_dec(buf + n, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    buf[n] = 0;
    return n;
}

gp_status_t gp_cache_set(gp_cache_t *c, const char *tenant, const char *key, const void *value, size_t len,
                         int64_t ttl_ms, gp_error_t *err)
{
    if (!value && len)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "gp_cache_set: value is NULL");
    char fk[CACHE_FULLKEY_MAX], ttl[24];
    size_t fkl;
    gp_status_t st = begin(c, tenant, key, fk, &fkl, err);
    if (st != GP_OK)
        return st;
    size_t tl = fmt_i64(ttl, ttl_or_default(c, ttl_ms));
    const char *argv[5] = {"SET", fk, value ? value : "", "PX", ttl};
    size_t lens[5] = {3, fkl, len, 2, tl};
    redisReply *r;
    cache_arena_t arena;
    gp__cache_arena_init(&arena);
    st = one(c, 5, argv, lens, true, &arena, &r, err);
    if (st == GP_OK && r->type != REDIS_REPLY_STATUS)
        st = unexpected("SET", err);
    gp__cache_arena_free(&arena);
    return st;
}

/* A command on one key answering an integer. */
static gp_status_t int_cmd(gp_cache_t *c, const char *cmd, const char *tenant, const char *key, const char *arg,
                           long long *out, gp_error_t *err)
{
    char fk[CACHE_FULLKEY_MAX];
    size_t fkl;
    gp_status_t st = begin(c, tenant, key, fk, &fkl, err);
    if (st != GP_OK)
        return st;
    const char *argv[3] = {cmd, fk, arg};
    size_t lens[3] = {strlen(cmd), fkl, arg ? strlen(arg) : 0};
    redisReply *r;
    cache_arena_t arena;
    gp__cache_arena_init(&arena);
    st = one(c, arg ? 3 : 2, argv, lens, true, &arena, &r, err);
    if (st == GP_OK) {
        if (r->type == REDIS_REPLY_INTEGER)
            *out = r->integer;
        else
            st = unexpected(cmd, err);
    }
    gp__cache_arena_free(&arena);
    return st;
}

gp_status_t gp_cache_del(gp_cache_t *c, const char *tenant, const char *key, gp_error_t *err)
{
    long long n = 0;
    gp_status_t st = int_cmd(c, "DEL", tenant, key, NULL, &n, err);
    return st == GP_OK && n == 0 ? GP_ERR_MISS : st;
}

gp_status_t gp_cache_exists(gp_cache_t *c, const char *tenant, const char *key, gp_error_t *err)
{
    long long n = 0;
    gp_status_t st = int_cmd(c, "EXISTS", tenant, key, NULL, &n, err);
    return st == GP_OK && n == 0 ? GP_ERR_MISS : st;
}

gp_status_t gp_cache_expire(gp_cache_t *c, const char *tenant, const char *key, int64_t ttl_ms, gp_error_t *err)
{
    if (ttl_ms <= 0)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT,
                              "gp_cache_expire: ttl_ms is %lld; expected > 0 (use gp_cache_del to remove a key)",
                              (long long)ttl_ms);
    char ttl[24];
    fmt_i64(ttl, ttl_ms);
    long long n = 0;
    gp_status_t st = int_cmd(c, "PEXPIRE", tenant, key, ttl, &n, err);
    return st == GP_OK && n == 0 ? GP_ERR_MISS : st;
}

gp_status_t gp_cache_ttl(gp_cache_t *c, const char *tenant, const char *key, int64_t *ttl_ms, gp_error_t *err)
{
    if (!ttl_ms)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "gp_cache_ttl: ttl_ms is NULL");
    *ttl_ms = 0;
    long long n = 0;
    gp_status_t st = int_cmd(c, "PTTL", tenant, key, NULL, &n, err);
    if (st != GP_OK)
        return st;
    if (n == -2)
        return GP_ERR_MISS;
    *ttl_ms = n;
    return GP_OK;
}

/* INCRBY, and a TTL for a counter that has none, atomically (a crash between
 * two separate commands would leave a key without TTL). */
static const char INCR_LUA[] = "local v = redis.call('INCRBY', KEYS[1], ARGV[1])\n"
                               "if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end\n"
                               "return v\n";

gp_status_t gp_cache_incr(gp_cache_t *c, const char *tenant, const char *key, int64_t delta, int64_t ttl_ms,
                          int64_t *value, gp_error_t *err)
{
    if (value)
        *value = 0;
    char fk[CACHE_FULLKEY_MAX], d[24], ttl[24];
    size_t fkl;
    gp_status_t st = begin(c, tenant, key, fk, &fkl, err);
    if (st != GP_OK)
        return st;
    size_t dl = fmt_i64(d, delta), tl = fmt_i64(ttl, ttl_or_default(c, ttl_ms));
    const char *argv[6] = {"EVAL", INCR_LUA, "1", fk, d, ttl};
    size_t lens[6] = {4, sizeof INCR_LUA - 1, 1, fkl, dl, tl};
    redisReply *r;
    cache_arena_t arena;
    gp__cache_arena_init(&arena);
    st = one(c, 6, argv, lens, false, &arena, &r, err);
    if (st == GP_OK) {
        if (r->type != REDIS_REPLY_INTEGER)
            st = unexpected("INCRBY", err);
        else if (value)
            *value = r->integer;
    }
    gp__cache_arena_free(&arena);
    return st;
}

/* ---- batches ------------------------------------------------------------------ */

/* Batches of up to BATCH_INLINE keys keep their scratch arrays, and keys of
 * up to BATCH_KEYBUF bytes in all, on the stack: no allocation but the
 * values' own. */
#define BATCH_INLINE 32
#define BATCH_KEYBUF 2048

static gp_status_t batch_size(size_t n, gp_error_t *err)
{
    return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "batch of %zu keys; expected 1 to %d", n,
                          GP_CACHE_BATCH_MAX);
}

/* Validate a batch and build its full keys into `keybuf` (BATCH_KEYBUF bytes
 * on the caller's stack) or, when they do not fit, into a malloc'd buffer
 * (*heap: free it); fks[i]/fkls[i] point into it. */
static gp_status_t batch_keys(gp_cache_t *c, const char *tenant, size_t n, const char *const *keys, char *keybuf,
                              char **heap, const char **fks, size_t *fkls, gp_error_t *err)
{
    *heap = NULL;
    gp_error_clear(err);
    if (!c)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "cache is NULL");
    if (!keys)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "batch: keys is NULL");
    gp_status_t st = gp__cache_check(tenant, CACHE_NO_KEY, err);
    if (st != GP_OK)
        return st;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        /* fkls holds each key's own length until the full keys are built */
        if (!(fkls[i] = keys[i] ? gp__cache_key_len(keys[i]) : 0)) {
            char why[256];
            gp_cache_key_valid(keys[i], why, sizeof why);
            return gp__cache_fail(err, GP_ERR_KEY, GP_ECLASS_CLIENT, "key %zu of the batch: %s", i, why);
        }
        total += fkls[i];
    }
    uint64_t gen;
    st = gp__cache_generation(c, tenant, &gen, err);
    if (st != GP_OK)
        return st;
    /* Every key of the batch shares prefix, tenant and generation: the
     * prefix is written once and copied. */
    char prefix[CACHE_FULLKEY_MAX];
    size_t pl = gp__cache_key_prefix(c, tenant, gen, "", prefix);
    char *buf = keybuf;
    if (total + n * (pl + 1) > BATCH_KEYBUF && !(buf = *heap = malloc(total + n * (pl + 1))))
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory building %zu keys", n);
    for (size_t i = 0; i < n; i++) {
        fks[i] = buf;
        memcpy(buf, prefix, pl);
        memcpy(buf + pl, keys[i], fkls[i]);
        buf[pl + fkls[i]] = 0;
        fkls[i] += pl;
        buf += fkls[i] + 1;
    }
    return GP_OK;
}

void gp_cache_values_free(gp_cache_value_t *values, size_t n)
{
    if (!values)
        return;
    for (size_t i = 0; i < n; i++) {
        free(values[i].data);
        values[i] = (gp_cache_value_t){NULL, 0};
    }
}

gp_status_t gp_cache_mget(gp_cache_t *c, const char *tenant, size_t n, const char *const *keys,
                          gp_cache_value_t *values, gp_error_t *err)
{
    if (!values)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "gp_cache_mget: values is NULL");
    if (n < 1 || n > GP_CACHE_BATCH_MAX)
        return batch_size(n, err);
    for (size_t i = 0; i < n; i++)
        values[i] = (gp_cache_value_t){NULL, 0};
    const char *argv_s[BATCH_INLINE + 1];
    size_t lens_s[BATCH_INLINE + 1];
    char keybuf[BATCH_KEYBUF], *heap = NULL;
    bool inline_ = n <= BATCH_INLINE;
    const char **argv = inline_ ? argv_s : malloc((n + 1) * sizeof *argv);
    size_t *lens = inline_ ? lens_s : malloc((n + 1) * sizeof *lens);
    gp_status_t st = argv && lens ? batch_keys(c, tenant, n, keys, keybuf, &heap, argv + 1, lens + 1, err)
                                  : gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory");
    redisReply *r = NULL;
    cache_arena_t arena;
    gp__cache_arena_init(&arena);
    if (st == GP_OK) {
        argv[0] = "MGET";
        lens[0] = 4;
        st = one(c, (int)n + 1, argv, lens, true, &arena, &r, err);
    }
    if (st == GP_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != n))
        st = unexpected("MGET", err);
    for (size_t i = 0; st == GP_OK && i < n; i++) {
        const redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_NIL) {
            COUNT(misses);
            continue;
        }
        if (e->type != REDIS_REPLY_STRING) {
            st = unexpected("MGET", err);
            break;
        }
        COUNT(hits);
        if (!(values[i].data = copy_bytes(e->str, e->len)))
            st = gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory copying values");
        values[i].len = e->len;
    }
    if (st != GP_OK)
        gp_cache_values_free(values, n);
    gp__cache_arena_free(&arena);
    free(heap);
    if (!inline_) {
        free(argv);
        free(lens);
    }
    return st;
}

gp_status_t gp_cache_mset(gp_cache_t *c, const char *tenant, size_t n, const char *const *keys,
                          const gp_cache_value_t *values, int64_t ttl_ms, gp_error_t *err)
{
    if (!values)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "gp_cache_mset: values is NULL");
    if (n < 1 || n > GP_CACHE_BATCH_MAX)
        return batch_size(n, err);
    for (size_t i = 0; i < n; i++)
        if (!values[i].data && values[i].len)
            return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "gp_cache_mset: values[%zu].data is NULL",
                                  i);
    /* argv of the n SETs (5 each) and, after them, the n full keys */
    const char *fks_s[6 * BATCH_INLINE];
    size_t fkls_s[6 * BATCH_INLINE];
    cache_cmd_t cmds_s[BATCH_INLINE];
    redisReply *replies_s[BATCH_INLINE];
    char keybuf[BATCH_KEYBUF], *heap = NULL, ttl[24];
    bool inline_ = n <= BATCH_INLINE;
    const char **fks = inline_ ? fks_s : malloc(n * 6 * sizeof *fks);
    size_t *fkls = inline_ ? fkls_s : malloc(n * 6 * sizeof *fkls);
    cache_cmd_t *cmds = inline_ ? cmds_s : malloc(n * sizeof *cmds);
    redisReply **replies = inline_ ? replies_s : malloc(n * sizeof *replies);
    gp_status_t st = fks && fkls && cmds && replies
                         ? batch_keys(c, tenant, n, keys, keybuf, &heap, fks + 5 * n, fkls + 5 * n, err)
                         : gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory");
    cache_arena_t arena;
    gp__cache_arena_init(&arena);
    if (st == GP_OK) {
        /* n pipelined SET key value PX ttl: one write, one round trip. */
        size_t tl = fmt_i64(ttl, ttl_or_default(c, ttl_ms));
        for (size_t i = 0; i < n; i++) {
            const char **a = fks + 5 * i;
            size_t *l = fkls + 5 * i;
            a[0] = "SET", l[0] = 3;
            a[1] = fks[5 * n + i], l[1] = fkls[5 * n + i];
            a[2] = values[i].data ? values[i].data : "", l[2] = values[i].len;
            a[3] = "PX", l[3] = 2;
            a[4] = ttl, l[4] = tl;
            cmds[i] = (cache_cmd_t){5, a, l};
        }
        st = gp__cache_exec(c, (int)n, cmds, replies, &arena, true, err);
        for (size_t i = 0; st == GP_OK && i < n; i++)
            if (replies[i]->type == REDIS_REPLY_ERROR)
                st = gp__cache_server_error(c, replies[i], err);
            else if (replies[i]->type != REDIS_REPLY_STATUS)
                st = unexpected("SET", err);
    }
    gp__cache_arena_free(&arena);
    free(heap);
    if (!inline_) {
        free(fks);
        free(fkls);
        free(cmds);
        free(replies);
    }
    return st;
}

/* ---- JSON ------------------------------------------------------------------------ */

gp_status_t gp_cache_set_json(gp_cache_t *c, const char *tenant, const char *key, const json_t *value,
                              int64_t ttl_ms, gp_error_t *err)
{
    if (!value)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "gp_cache_set_json: value is NULL");
    /* Small values are encoded on the stack: no allocation on the hot path. */
    char small[1024];
    gp__jbuf_t b;
    gp__jbuf_init(&b, small, sizeof small);
    gp__json_rc_t rc = gp__json_dump(value, &b);
    gp_status_t st;
    if (rc == GP__JSON_OK)
        st = gp_cache_set(c, tenant, key, b.data, b.len, ttl_ms, err);
    else if (rc == GP__JSON_NOMEM)
        st = gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory encoding JSON");
    else
        st = gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT,
                            "gp_cache_set_json: the value cannot be encoded as JSON (a string or key that is not "
                            "valid UTF-8, or a value that contains itself)");
    gp__jbuf_free(&b);
    return st;
}

gp_status_t gp__cache_parse_json(gp_cache_t *c, const char *tenant, const char *key, const char *text, size_t len,
                                 bool count, json_t **out, gp_error_t *err)
{
    json_error_t je;
    gp__json_rc_t rc = gp__json_load(text, len, out, &je);
    if (rc == GP__JSON_OK) {
        if (count)
            COUNT(hits);
        return GP_OK;
    }
    if (rc == GP__JSON_NOMEM)
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT,
                              "tenant %s key %s: out of memory parsing %zu bytes of JSON", tenant, key, len);
    if (!count)
        return GP_ERR_MISS; /* a second look at a value already reported */
    COUNT(invalid_json);
    COUNT(misses);
    gp__logf(&(gp__log_fields_t){.tenant = tenant, .duration_ns = -1}, GP_LOG_WARN, "cache",
            "tenant %s key %s: the stored value (%zu bytes) is not valid JSON (%s, line %d column %d); "
            "treated as a miss",
            tenant, key, len, je.text, je.line, je.column);
    return GP_ERR_MISS;
}

gp_status_t gp_cache_get_json(gp_cache_t *c, const char *tenant, const char *key, json_t **value, gp_error_t *err)
{
    if (!value)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "gp_cache_get_json: value is NULL");
    *value = NULL;
    redisReply *r;
    cache_arena_t arena;
    gp__cache_arena_init(&arena);
    gp_status_t st = fetch(c, tenant, key, &arena, &r, err);
    if (st == GP_OK)
        st = gp__cache_parse_json(c, tenant, key, r->str, r->len, true, value, err);
    gp__cache_arena_free(&arena);
    return st;
}
