/* health_metrics.c — every metric of this process's pools and caches in the
 * Prometheus text exposition format (0.0.4): gp_metrics_render for a
 * service's own /metrics, and gp_health_to_prometheus for a health report.
 *
 * Each metric family is written once (one HELP and TYPE, then one sample
 * per source, told apart by a `pool` or `cache` label), as the format
 * requires. Durations are histograms with the fixed power-of-two buckets
 * of gp_latency_t, in seconds, so they aggregate across instances. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "growplate/health.h"
#include "internal.h"
#include "query_internal.h" /* gp__client_error */

typedef struct src {
    const char *name;
    bool pool, cache;
    bool has_read;      /* the pool has a read pool (its series follow as "<name>.read") */
    char read_name[GP_METRICS_NAME_MAX + 8];
    gp_pool_metrics_t pm;
    gp_cache_metrics_t cm;
} src_t;

typedef struct out {
    gp__sbuf_t b;
    const src_t *s;
    size_t n;
} out_t;

static void head(out_t *o, const char *name, const char *type, const char *help)
{
    gp__sbuf_add(&o->b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A bound in seconds, as Prometheus clients print them: shortest exact. */
static void le_text(char *buf, size_t len, int i)
{
    snprintf(buf, len, "%.12g", (double)gp_latency_bucket_ns(i) / 1e9); /* exact: 2^(10+i) ns has at most 11 digits */
}

static void histogram_samples(out_t *o, const char *name, const char *labels, const gp_latency_t *l)
{
    char le[32];
    for (int i = 0; i < GP_LATENCY_BUCKETS; i++) {
        le_text(le, sizeof le, i);
        gp__sbuf_add(&o->b, "%s_bucket{%s,le=\"%s\"} %llu\n", name, labels, le, (unsigned long long)l->le[i]);
    }
    gp__sbuf_add(&o->b, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)l->count);
    gp__sbuf_add(&o->b, "%s_sum{%s} %.9f\n", name, labels, l->sum_us / 1e6);
    gp__sbuf_add(&o->b, "%s_count{%s} %llu\n", name, labels, (unsigned long long)l->count);
}

/* ---- the pool's families ---------------------------------------------------------- */

typedef enum { K_COUNTER, K_GAUGE_INT, K_HIST } kind_t;

typedef struct family {
    const char *name, *help;
    kind_t kind;
    size_t off;
} family_t;

#define PF(name, kind, field, help) {name, help, kind, offsetof(gp_pool_metrics_t, field)}
static const family_t pool_families[] = {
    PF("growplate_pool_connections_min", K_GAUGE_INT, min, "Configured minimum pool size."),
    PF("growplate_pool_connections_max", K_GAUGE_INT, max, "Configured maximum pool size."),
    PF("growplate_pool_waiting", K_GAUGE_INT, waiting, "Callers waiting to acquire a connection."),
    PF("growplate_pool_acquires_total", K_COUNTER, acquires, "Connections handed out."),
    PF("growplate_pool_acquire_timeouts_total", K_COUNTER, acquire_timeouts, "Acquires that timed out."),
    PF("growplate_pool_acquire_errors_total", K_COUNTER, acquire_errors, "Acquires that failed for another reason."),
    PF("growplate_pool_connections_opened_total", K_COUNTER, opened, "Connections opened."),
    PF("growplate_pool_connection_failures_total", K_COUNTER, open_failures, "Connection attempts that failed."),
    PF("growplate_pool_leaks_total", K_COUNTER, leaks_reported, "Leases held past the leak threshold."),
    PF("growplate_pool_throttled_total", K_COUNTER, throttled,
       "Acquires refused at once with GP_ERR_BUSY (DATABASE_TENANT_MAX_WAITING)."),
    PF("growplate_pool_acquire_wait_seconds", K_HIST, wait, "Time callers waited for a connection."),
    PF("growplate_pool_hold_seconds", K_HIST, hold, "Time connections were held by callers."),
    PF("growplate_pool_connect_seconds", K_HIST, connect, "Time to open a connection."),
    PF("growplate_query_statements_total", K_COUNTER, statements,
       "Statements of the application's sent through the query layer."),
    PF("growplate_query_rows_total", K_COUNTER, rows, "Rows returned or affected by query-layer calls that succeeded."),
    PF("growplate_query_duration_seconds", K_HIST, call,
       "Duration of query-layer calls (a pipeline or one-shot call counts once), connection in hand."),
};

static void field_samples(out_t *o, const family_t *f, const char *labels, const void *m)
{
    const char *p = (const char *)m + f->off;
    uint64_t u;
    int i;
    switch (f->kind) {
    case K_COUNTER:
        memcpy(&u, p, sizeof u);
        gp__sbuf_add(&o->b, "%s{%s} %llu\n", f->name, labels, (unsigned long long)u);
        break;
    case K_GAUGE_INT:
        memcpy(&i, p, sizeof i);
        gp__sbuf_add(&o->b, "%s{%s} %d\n", f->name, labels, i);
        break;
    case K_HIST:
        histogram_samples(o, f->name, labels, (const gp_latency_t *)(const void *)p);
        break;
    }
}

static const char *kind_type(kind_t k) { return k == K_COUNTER ? "counter" : k == K_HIST ? "histogram" : "gauge"; }

/* For each source with a pool (pool) or a cache (!pool): `s` and its
 * label ("pool=\"name\"" / "cache=\"name\"") in `labels`. */
#define EACH_SOURCE(o, is_pool, body)                                                             \
    for (size_t k_ = 0; k_ < (o)->n; k_++) {                                                      \
        const src_t *s = &(o)->s[k_];                                                             \
        if (!((is_pool) ? s->pool : s->cache))                                                    \
            continue;                                                                             \
        snprintf(labels, sizeof labels, "%s=\"%s\"", (is_pool) ? "pool" : "cache", s->name);      \
        body                                                                                      \
    }

static bool any_source(const out_t *o, bool pool)
{
    for (size_t k = 0; k < o->n; k++)
        if (pool ? o->s[k].pool : o->s[k].cache)
            return true;
    return false;
}

/* Every family of a table, each once, with one sample (set) per source. */
static void table(out_t *o, bool pool, const family_t *fams, size_t nfams)
{
    char labels[128];
    for (size_t f = 0; f < nfams; f++) {
        head(o, fams[f].name, kind_type(fams[f].kind), fams[f].help);
        EACH_SOURCE(o, pool, field_samples(o, &fams[f], labels, pool ? (const void *)&s->pm : (const void *)&s->cm);)
    }
}

/* A key as a label value: tenant ids and labels are the caller's text, so
 * escape what the format requires. */
static void key_label(char *buf, size_t len, const gp_pool_key_metrics_t *k)
{
    if (k->other) {
        snprintf(buf, len, "other=\"true\",key=\"\"");
        return;
    }
    size_t j = (size_t)snprintf(buf, len, "key=\"");
    for (size_t i = 0; k->key[i] && i < sizeof k->key && j + 4 < len; i++) {
        char c = k->key[i];
        if (c == '\\' || c == '"' || c == '\n') {
            buf[j++] = '\\';
            c = c == '\n' ? 'n' : c;
        }
        buf[j++] = c;
    }
    if (j + 2 < len) {
        buf[j++] = '"';
        buf[j] = 0;
    }
}

/* Per fairness key: the heaviest keys and one "other" row per pool. */
static void keys(out_t *o)
{
    char labels[128], kl[200], all[340];
#define EACH_KEY(body)                                                                            \
    EACH_SOURCE(o, true, for (int r = 0; r < s->pm.n_keys; r++) {                                  \
        const gp_pool_key_metrics_t *k = &s->pm.keys[r];                                          \
        key_label(kl, sizeof kl, k);                                                              \
        snprintf(all, sizeof all, "%s,%s", labels, kl);                                           \
        body                                                                                      \
    })
    head(o, "growplate_pool_key_connections", "gauge",
         "Connections held and callers waiting per fairness key (the heaviest keys, then other).");
    EACH_KEY(gp__sbuf_add(&o->b, "growplate_pool_key_connections{%s,state=\"held\"} %d\n", all, k->held);
             gp__sbuf_add(&o->b, "growplate_pool_key_connections{%s,state=\"waiting\"} %d\n", all, k->waiting);)
    head(o, "growplate_pool_key_acquires_total", "counter", "Connections handed out per fairness key.");
    EACH_KEY(gp__sbuf_add(&o->b, "growplate_pool_key_acquires_total{%s} %llu\n", all, (unsigned long long)k->acquires);)
    head(o, "growplate_pool_key_timeouts_total", "counter", "Acquires that timed out per fairness key.");
    EACH_KEY(gp__sbuf_add(&o->b, "growplate_pool_key_timeouts_total{%s} %llu\n", all, (unsigned long long)k->timeouts);)
    head(o, "growplate_pool_key_throttled_total", "counter", "Acquires refused with GP_ERR_BUSY per fairness key.");
    EACH_KEY(gp__sbuf_add(&o->b, "growplate_pool_key_throttled_total{%s} %llu\n", all, (unsigned long long)k->throttled);)
    head(o, "growplate_pool_key_wait_seconds", "histogram", "Time callers of a fairness key waited for a connection.");
    EACH_KEY(histogram_samples(o, "growplate_pool_key_wait_seconds", all, &k->wait);)
    head(o, "growplate_pool_key_hold_seconds", "histogram", "Time a fairness key held its connections.");
    EACH_KEY(histogram_samples(o, "growplate_pool_key_hold_seconds", all, &k->hold);)
#undef EACH_KEY
}

static void pools(out_t *o)
{
    if (!any_source(o, true))
        return;
    char labels[128];
    head(o, "growplate_pool_connections", "gauge", "PostgreSQL pool connections by state.");
    EACH_SOURCE(o, true,
                gp__sbuf_add(&o->b, "growplate_pool_connections{%s,state=\"idle\"} %d\n", labels, s->pm.idle);
                gp__sbuf_add(&o->b, "growplate_pool_connections{%s,state=\"leased\"} %d\n", labels, s->pm.leased);
                gp__sbuf_add(&o->b, "growplate_pool_connections{%s,state=\"opening\"} %d\n", labels, s->pm.opening);)
    head(o, "growplate_pool_connections_closed_total", "counter", "Connections closed, by reason.");
    EACH_SOURCE(o, true,
                for (int r = 0; r < GP_CLOSE_REASON_COUNT_; r++) gp__sbuf_add(
                    &o->b, "growplate_pool_connections_closed_total{%s,reason=\"%s\"} %llu\n", labels,
                    gp_close_reason_name((gp_close_reason_t)r), (unsigned long long)s->pm.closed[r]);)
    table(o, true, pool_families, sizeof pool_families / sizeof pool_families[0]);
    keys(o);
    bool reads = false;
    for (size_t k = 0; k < o->n; k++)
        reads = reads || (o->s[k].pool && o->s[k].has_read);
    if (reads) {
        head(o, "growplate_pool_reads_total", "counter",
             "Routed reads (gp_pool_acquire_read and the calls on it) by where they were served and why.");
        EACH_SOURCE(o, true, if (s->has_read) for (int r = 0; r < GP_READ_SERVED_COUNT_; r++) gp__sbuf_add(
                        &o->b, "growplate_pool_reads_total{%s,served_by=\"%s\"} %llu\n", labels,
                        gp_read_served_name((gp_read_served_t)r), (unsigned long long)s->pm.reads[r]);)
        head(o, "growplate_pool_read_lag_seconds", "gauge",
             "The read pool's standby replay lag as last measured by a routed read; -1 when unknown.");
        EACH_SOURCE(o, true, if (s->has_read) gp__sbuf_add(&o->b, "growplate_pool_read_lag_seconds{%s} %.3f\n",
                                                           labels, s->pm.read_lag_ms >= 0 ? (double)s->pm.read_lag_ms / 1e3 : -1.0);)
    }
    head(o, "growplate_query_errors_total", "counter", "Query-layer calls that failed, by error class.");
    EACH_SOURCE(o, true,
                for (int c = 1; c < GP_ECLASS_COUNT_; c++) gp__sbuf_add(
                    &o->b, "growplate_query_errors_total{%s,class=\"%s\"} %llu\n", labels,
                    gp_error_class_name((gp_error_class_t)c), (unsigned long long)s->pm.calls_failed[c]);)
}

/* ---- the cache's families --------------------------------------------------------- */

#define CF(name, kind, field, help) {name, help, kind, offsetof(gp_cache_metrics_t, field)}
static const family_t cache_families[] = {
    CF("growplate_cache_hits_total", K_COUNTER, hits, "Cache reads that found a value."),
    CF("growplate_cache_misses_total", K_COUNTER, misses, "Cache reads that found nothing usable."),
    CF("growplate_cache_invalid_json_total", K_COUNTER, invalid_json, "Stored values that were not valid JSON (misses)."),
    CF("growplate_cache_errors_total", K_COUNTER, errors, "Calls that failed (unavailable or server error)."),
    CF("growplate_cache_unavailable_total", K_COUNTER, unavailable, "Calls that returned cache unavailable."),
    CF("growplate_cache_timeouts_total", K_COUNTER, timeouts, "Calls whose time budget ran out."),
    CF("growplate_cache_rejected_total", K_COUNTER, rejected, "Calls failed fast by the open circuit."),
    CF("growplate_cache_server_errors_total", K_COUNTER, server_errors, "Error replies from Redis."),
    CF("growplate_cache_retries_total", K_COUNTER, retries, "Idempotent commands resent on a fresh connection."),
    CF("growplate_cache_connections_max", K_GAUGE_INT, pool_size, "Configured Redis connection pool size."),
    CF("growplate_cache_waiting", K_GAUGE_INT, waiting, "Callers waiting for a Redis connection."),
    CF("growplate_cache_connects_total", K_COUNTER, connects, "Redis connections opened."),
    CF("growplate_cache_connect_failures_total", K_COUNTER, connect_failures, "Redis connection attempts that failed."),
    CF("growplate_cache_disconnects_total", K_COUNTER, disconnects, "Redis connections dropped after an error."),
    CF("growplate_cache_calls_total", K_COUNTER, calls, "Calls that reached Redis."),
    CF("growplate_cache_commands_total", K_COUNTER, commands, "Redis commands sent."),
    CF("growplate_cache_round_trips_total", K_COUNTER, round_trips,
       "Writes to Redis answered in one go (calls share them)."),
    CF("growplate_cache_call_seconds", K_HIST, latency, "Duration of calls that reached Redis, wait included."),
    CF("growplate_cache_invalidations_total", K_COUNTER, invalidations, "Tenant-wide invalidations."),
    CF("growplate_cache_generation_fetches_total", K_COUNTER, generation_fetches, "Tenant generations read from Redis."),
    CF("growplate_cache_loads_total", K_COUNTER, loads, "Cache-aside loader runs."),
    CF("growplate_cache_load_failures_total", K_COUNTER, load_failures, "Loader runs that failed."),
    CF("growplate_cache_load_waits_total", K_COUNTER, load_waits, "Callers that waited for another thread's load."),
    CF("growplate_cache_load_wait_timeouts_total", K_COUNTER, load_wait_timeouts,
       "Waits for another thread's load that timed out."),
    CF("growplate_cache_early_refreshes_total", K_COUNTER, early_refreshes, "Values refreshed early (probabilistic)."),
    CF("growplate_cache_master_switches_total", K_COUNTER, master_switches,
       "Sentinel: times the cache's master changed."),
};

static void caches(out_t *o)
{
    if (!any_source(o, false))
        return;
    char labels[128];
    head(o, "growplate_cache_circuit_state", "gauge", "Redis circuit breaker state (1 for the current state).");
    EACH_SOURCE(o, false,
                for (int c = 0; c < GP_CACHE_CIRCUIT_COUNT_; c++) gp__sbuf_add(
                    &o->b, "growplate_cache_circuit_state{%s,state=\"%s\"} %d\n", labels,
                    gp_cache_circuit_name((gp_cache_circuit_t)c), (int)s->cm.circuit == c);)
    head(o, "growplate_cache_circuit_transitions_total", "counter", "Circuit breaker transitions, by new state.");
    EACH_SOURCE(o, false,
                gp__sbuf_add(&o->b, "growplate_cache_circuit_transitions_total{%s,to=\"open\"} %llu\n", labels,
                             (unsigned long long)s->cm.circuit_opened);
                gp__sbuf_add(&o->b, "growplate_cache_circuit_transitions_total{%s,to=\"half_open\"} %llu\n", labels,
                             (unsigned long long)s->cm.circuit_half_opened);
                gp__sbuf_add(&o->b, "growplate_cache_circuit_transitions_total{%s,to=\"closed\"} %llu\n", labels,
                             (unsigned long long)s->cm.circuit_closed);)
    head(o, "growplate_cache_connections", "gauge", "Redis connections by state.");
    EACH_SOURCE(o, false,
                gp__sbuf_add(&o->b, "growplate_cache_connections{%s,state=\"open\"} %d\n", labels, s->cm.connected);
                gp__sbuf_add(&o->b, "growplate_cache_connections{%s,state=\"leased\"} %d\n", labels, s->cm.leased);)
    head(o, "growplate_cache_wrong_node_total", "counter",
         "Error replies meaning the command went to the wrong node (MOVED, ASK, READONLY, ...), by kind.");
    EACH_SOURCE(o, false,
                for (int k = 0; k < GP_CACHE_WRONG_COUNT_; k++) gp__sbuf_add(
                    &o->b, "growplate_cache_wrong_node_total{%s,kind=\"%s\"} %llu\n", labels,
                    gp_cache_wrong_node_name((gp_cache_wrong_node_t)k), (unsigned long long)s->cm.wrong_node[k]);)
    table(o, false, cache_families, sizeof cache_families / sizeof cache_families[0]);
}

/* A label value from a server (its version): \, " and newlines escaped as
 * the format requires, cut at 63 bytes. */
static void label_value(char *buf, size_t len, const char *v)
{
    size_t j = 0;
    for (size_t i = 0; v[i] && i < 63 && j + 3 < len; i++) {
        char c = v[i];
        if (c == '\\' || c == '"' || c == '\n') {
            buf[j++] = '\\';
            c = c == '\n' ? 'n' : c;
        }
        buf[j++] = c;
    }
    buf[j] = 0;
}

static void build_info(out_t *o)
{
    int pq = PQlibVersion();
    head(o, "growplate_build_info", "gauge", "The library's version and the client libraries it runs with (always 1).");
    gp__sbuf_add(&o->b, "growplate_build_info{version=\"%s\",libpq=\"%d.%d\",hiredis=\"%d.%d.%d\"} 1\n", gp_version(),
                 pq / 10000, pq % 100, HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
}

static gp_status_t finish(out_t *o, char **out, gp_error_t *err)
{
    if (o->b.oom || !o->b.s) {
        free(o->b.s);
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory rendering the metrics");
    }
    *out = o->b.s;
    return GP_OK;
}

/* A label value that needs no escaping and stays readable. */
static bool name_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.' || c == ':'))
            return false;
    }
    return n >= 1 && n <= GP_METRICS_NAME_MAX;
}

gp_status_t gp_metrics_render(const gp_metrics_source_t *sources, size_t n, char **out, gp_error_t *err)
{
    if (!out)
        return gp__client_error(err, GP_ERR_INVALID, "no output pointer given");
    *out = NULL;
    if (n > 0 && !sources)
        return gp__client_error(err, GP_ERR_INVALID, "%zu metric sources announced but none given", n);
    if (n > GP_METRICS_SOURCES_MAX)
        return gp__client_error(err, GP_ERR_INVALID, "%zu metric sources: at most %d", n, GP_METRICS_SOURCES_MAX);
    for (size_t k = 0; k < n; k++) {
        const char *name = sources[k].name;
        if (!name || !name_ok(name))
            return gp__client_error(err, GP_ERR_INVALID,
                                    "metric source %zu: the name must be 1 to %d characters of letters, digits, "
                                    "'_', '-', '.' or ':'",
                                    k, GP_METRICS_NAME_MAX);
        for (size_t j = 0; j < k; j++)
            if (strcmp(sources[j].name, name) == 0 &&
                ((sources[j].pool && sources[k].pool) || (sources[j].cache && sources[k].cache)))
                return gp__client_error(err, GP_ERR_INVALID,
                                        "metric sources %zu and %zu are both named '%s': give each pool and each "
                                        "cache its own name",
                                        j, k, name);
    }
    /* Each pool's read pool (DATABASE_READ_URL) is a source of its own,
     * named "<name>.read", after the given ones. */
    src_t *s = calloc(n ? 2 * n : 1, sizeof *s);
    if (!s)
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory rendering the metrics");
    size_t m = n;
    for (size_t k = 0; k < n; k++) {
        s[k].name = sources[k].name;
        s[k].pool = sources[k].pool && gp_pool_metrics(sources[k].pool, &s[k].pm) == GP_OK;
        s[k].cache = sources[k].cache && gp_cache_metrics(sources[k].cache, &s[k].cm) == GP_OK;
        gp_pool_t *rp = s[k].pool ? gp_pool_read_pool(sources[k].pool) : NULL;
        if (rp && gp_pool_metrics(rp, &s[m].pm) == GP_OK) {
            s[k].has_read = true;
            snprintf(s[k].read_name, sizeof s[k].read_name, "%s.read", sources[k].name);
            s[m].name = s[k].read_name;
            s[m].pool = true;
            m++;
        }
    }
    out_t o = {{0}, s, m};
    build_info(&o);
    pools(&o);
    caches(&o);
    free(s);
    return finish(&o, out, err);
}

gp_status_t gp_health_to_prometheus(const gp_health_report_t *r, char **out)
{
    if (!r || !out)
        return GP_ERR_INVALID;
    src_t s = {.name = "default", .pool = r->have_pool != 0, .cache = r->have_cache != 0};
    if (s.pool)
        s.pm = r->pool;
    if (s.cache)
        s.cm = r->cache;
    out_t o = {{0}, &s, 1};
    build_info(&o);
    head(&o, "growplate_up", "gauge", "Whether the server answered the last health check (1) or not (0).");
    gp__sbuf_add(&o.b, "growplate_up{server=\"postgres\"} %d\n", r->postgres.status == GP_OK);
    gp__sbuf_add(&o.b, "growplate_up{server=\"redis\"} %d\n", r->redis.status == GP_OK);
    if (r->have_replica)
        gp__sbuf_add(&o.b, "growplate_up{server=\"replica\"} %d\n", r->replica.status == GP_OK);
    head(&o, "growplate_server_info", "gauge", "The version each server reported in the last health check (always 1).");
    char v[160];
    label_value(v, sizeof v, r->postgres.server_version);
    gp__sbuf_add(&o.b, "growplate_server_info{server=\"postgres\",version=\"%s\"} 1\n", v);
    label_value(v, sizeof v, r->redis.server_version);
    gp__sbuf_add(&o.b, "growplate_server_info{server=\"redis\",version=\"%s\"} 1\n", v);
    head(&o, "growplate_postgres_role", "gauge",
         "The role the database server reported in the last check (1 for it): primary, standby, read-only.");
    static const char *const roles[] = {"primary", "standby", "read-only"};
    for (int i = 0; i < 3; i++)
        gp__sbuf_add(&o.b, "growplate_postgres_role{role=\"%s\"} %d\n", roles[i], strcmp(r->postgres.role, roles[i]) == 0);
    head(&o, "growplate_postgres_replay_lag_seconds", "gauge",
         "A standby's replay lag in the last check (time since the last replayed commit); -1 when not a standby.");
    gp__sbuf_add(&o.b, "growplate_postgres_replay_lag_seconds %.3f\n",
                 r->postgres.replay_lag_ms >= 0 ? (double)r->postgres.replay_lag_ms / 1e3 : -1.0);
    head(&o, "growplate_health_status", "gauge", "Overall health: 0 up, 1 degraded (cache down), 2 down (database down).");
    gp__sbuf_add(&o.b, "growplate_health_status %d\n", (int)r->state);
    head(&o, "growplate_check_latency_seconds", "gauge", "Round trip of the last health check query or PING.");
    gp__sbuf_add(&o.b, "growplate_check_latency_seconds{server=\"postgres\"} %.9f\n", (double)r->postgres.latency_ns / 1e9);
    gp__sbuf_add(&o.b, "growplate_check_latency_seconds{server=\"redis\"} %.9f\n", (double)r->redis.latency_ns / 1e9);
    pools(&o);
    caches(&o);
    return finish(&o, out, NULL);
}
