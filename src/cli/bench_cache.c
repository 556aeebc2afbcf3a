/* bench_cache.c — cache workloads for `growplate bench`:
 *   cache        SET with TTL + GET of a ~100-byte JSON object (set_json +
 *                get_json), tenant-scoped keys; units = Redis requests (2 per op)
 *   cache-bytes  the same with gp_cache_set + gp_cache_get of the object's
 *                JSON text: no encode/decode, what redis-benchmark does
 *   cache-batch  mset (16 pipelined SET ... PX) + mget (one MGET) of 16 keys;
 *                units = keys (32 per op)
 * Errors (e.g. "cache unavailable" while Redis restarts) are counted by the
 * runner and the run goes on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define TENANTS 8
#define KEYS_PER_THREAD 1000
#define BATCH 16

typedef struct shared {
    gp_cache_t *cache;
    char tenants[TENANTS][GP_TENANT_ID_LEN + 1];
} shared_t;

/* Per thread: the value, and every key name it uses, formatted once (the
 * bench measures the cache, not snprintf). */
typedef struct local {
    json_t *obj;
    char value[128];
    size_t value_len;
    unsigned next;
    char names[KEYS_PER_THREAD][32];      /* cache: "bench:<thread>:<i>" */
    char batch_names[KEYS_PER_THREAD][32]; /* cache-batch: "batch:<thread>:<i>" */
    const char *batch_keys[KEYS_PER_THREAD];
    gp_cache_value_t vals[BATCH];
} local_t;

/* A fixed, valid tenant id per index: these are benchmark tenants. */
static void tenant_id(int i, char out[GP_TENANT_ID_LEN + 1])
{
    snprintf(out, GP_TENANT_ID_LEN + 1, "0000be0c-0000-4000-8000-%012x", i + 1);
}

static int setup(const bench_opts_t *o, void **out)
{
    shared_t *s = calloc(1, sizeof *s);
    if (!s) {
        cli_fail(CLI_FAILURE, GP_ERR_NOMEM, "out of memory");
        return 1;
    }
    if (o->pool_size > 0)
        o->cfg->redis.pool_size = o->pool_size;
    gp_error_t err;
    if ((err.status = gp_cache_create(o->cfg, NULL, &s->cache, &err)) != GP_OK) {
        cli_fail_error(cli_exit_for(err.status), &err, "cannot create the cache");
        free(s);
        return 1;
    }
    for (int i = 0; i < TENANTS; i++)
        tenant_id(i, s->tenants[i]);
    /* Fail early and clearly when Redis is not there at all. */
    if ((err.status = gp_cache_ping(s->cache, NULL, &err)) != GP_OK) {
        cli_fail_error(CLI_FAILURE, &err, "Redis is not reachable (scripts/services start?)");
        gp_cache_close(s->cache);
        free(s);
        return 1;
    }
    *out = s;
    return 0;
}

static local_t *local_get(void **lp, int tid)
{
    if (*lp)
        return *lp;
    local_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    /* ~100 bytes of JSON, like a small menu item */
    l->obj = json_pack("{s:i, s:s, s:s, s:i, s:b, s:[s,s]}", "id", tid, "name", "Margherita pizza", "category",
                       "mains", "price_cents", 1150, "available", 1, "tags", "vegetarian", "classic");
    char *text = l->obj ? json_dumps(l->obj, JSON_COMPACT) : NULL;
    if (!text) {
        json_decref(l->obj);
        free(l);
        return NULL;
    }
    l->value_len = (size_t)snprintf(l->value, sizeof l->value, "%s", text);
    free(text);
    for (int i = 0; i < KEYS_PER_THREAD; i++) {
        snprintf(l->names[i], sizeof l->names[i], "bench:%d:%d", tid, i);
        snprintf(l->batch_names[i], sizeof l->batch_names[i], "batch:%d:%d", tid, i);
        l->batch_keys[i] = l->batch_names[i];
    }
    for (int i = 0; i < BATCH; i++)
        l->vals[i] = (gp_cache_value_t){l->value, l->value_len};
    *lp = l;
    return l;
}

static int op_cache(void *sp, void **lp, int tid)
{
    shared_t *s = sp;
    local_t *l = local_get(lp, tid);
    if (!l)
        return 0;
    const char *key = l->names[l->next++ % KEYS_PER_THREAD];
    const char *tenant = s->tenants[tid % TENANTS];
    if (gp_cache_set_json(s->cache, tenant, key, l->obj, 60000, NULL) != GP_OK)
        return 0;
    json_t *v = NULL;
    gp_status_t st = gp_cache_get_json(s->cache, tenant, key, &v, NULL);
    json_decref(v);
    return st == GP_OK ? 2 : 0;
}

static int op_bytes(void *sp, void **lp, int tid)
{
    shared_t *s = sp;
    local_t *l = local_get(lp, tid);
    if (!l)
        return 0;
    const char *key = l->names[l->next++ % KEYS_PER_THREAD];
    const char *tenant = s->tenants[tid % TENANTS];
    if (gp_cache_set(s->cache, tenant, key, l->value, l->value_len, 60000, NULL) != GP_OK)
        return 0;
    char *v = NULL;
    gp_status_t st = gp_cache_get(s->cache, tenant, key, &v, NULL, NULL);
    free(v);
    return st == GP_OK ? 2 : 0;
}

static int op_batch(void *sp, void **lp, int tid)
{
    shared_t *s = sp;
    local_t *l = local_get(lp, tid);
    if (!l)
        return 0;
    const char *const *keys = l->batch_keys + (l->next++ % (KEYS_PER_THREAD / BATCH)) * BATCH;
    const char *tenant = s->tenants[tid % TENANTS];
    if (gp_cache_mset(s->cache, tenant, BATCH, keys, l->vals, 60000, NULL) != GP_OK)
        return 0;
    gp_cache_value_t out[BATCH];
    gp_status_t st = gp_cache_mget(s->cache, tenant, BATCH, keys, out, NULL);
    gp_cache_values_free(out, BATCH);
    return st == GP_OK ? 2 * BATCH : 0;
}

static void thread_done(void *sp, void *lp)
{
    (void)sp;
    local_t *l = lp;
    if (l)
        json_decref(l->obj);
    free(l);
}

static void report(void *sp, FILE *out, bool json)
{
    shared_t *s = sp;
    gp_cache_metrics_t m;
    if (gp_cache_metrics(s->cache, &m) != GP_OK)
        return;
    if (json)
        fprintf(out,
                ",\"circuit\":\"%s\",\"circuit_opened\":%llu,\"unavailable\":%llu,\"timeouts\":%llu,"
                "\"rejected\":%llu,\"hits\":%llu,\"misses\":%llu,\"invalid_json\":%llu,\"redis_p99_us\":%.1f,"
                "\"calls\":%llu,\"round_trips\":%llu",
                gp_cache_circuit_name(m.circuit), (unsigned long long)m.circuit_opened,
                (unsigned long long)m.unavailable, (unsigned long long)m.timeouts, (unsigned long long)m.rejected,
                (unsigned long long)m.hits, (unsigned long long)m.misses, (unsigned long long)m.invalid_json,
                m.latency.p99_us, (unsigned long long)m.calls, (unsigned long long)m.round_trips);
    else
        fprintf(out,
                "  cache: circuit %s (opened %llu times), unavailable %llu (timeouts %llu, failed fast %llu), "
                "hits %llu, misses %llu; %llu calls in %llu round trips\n",
                gp_cache_circuit_name(m.circuit), (unsigned long long)m.circuit_opened,
                (unsigned long long)m.unavailable, (unsigned long long)m.timeouts, (unsigned long long)m.rejected,
                (unsigned long long)m.hits, (unsigned long long)m.misses, (unsigned long long)m.calls,
                (unsigned long long)m.round_trips);
}

static void teardown(void *sp)
{
    shared_t *s = sp;
    gp_cache_close(s->cache);
    free(s);
}

const bench_workload_t bench_cache = {
    .name = "cache",
    .summary = "set_json with TTL + get_json of a ~100-byte object, tenant-scoped (units: requests)",
    .unit = "requests",
    .setup = setup,
    .op = op_cache,
    .thread_done = thread_done,
    .report = report,
    .teardown = teardown,
};

const bench_workload_t bench_cache_bytes = {
    .name = "cache-bytes",
    .summary = "set + get of the same ~100 bytes of JSON text, no encode/decode (units: requests)",
    .unit = "requests",
    .setup = setup,
    .op = op_bytes,
    .thread_done = thread_done,
    .report = report,
    .teardown = teardown,
};

const bench_workload_t bench_cache_batch = {
    .name = "cache-batch",
    .summary = "mset (16 pipelined SET PX) + mget (one MGET) of 16 keys (units: keys)",
    .unit = "keys",
    .setup = setup,
    .op = op_batch,
    .thread_done = thread_done,
    .report = report,
    .teardown = teardown,
};
