/* growplate/health.h — health checks of both servers and the rendering of
 * every pool and cache metric (JSON, Prometheus text exposition).
 *
 * Thread-safety: every function here is safe from any thread. A report is a
 * plain struct owned by the caller.
 */
#ifndef GROWPLATE_HEALTH_H
#define GROWPLATE_HEALTH_H

#include "growplate/common.h"
#include "growplate/config.h"
#include "growplate/cache.h"
#include "growplate/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The default deadline of gp_health_check(), in milliseconds. */
#define GP_HEALTH_DEFAULT_DEADLINE_MS 2000

/* The result of a check of one server. */
typedef struct gp_probe {
    gp_status_t status;      /* GP_OK, or why the server could not be used */
    int64_t latency_ns;      /* round trip of the check query/PING; 0 when it failed */
    char server_version[64]; /* e.g. "15.18" or "7.0.15"; "" when unknown */
    char message[512];       /* on failure: what went wrong and what to try; redacted */
    /* What the server said it is. PostgreSQL, in the same round trip:
     * "primary", "standby" (in recovery) or "read-only"
     * (default_transaction_read_only on: writes fail). Redis, through a
     * cache (gp_health_check with opts->cache): "master" or "replica" (the
     * cache is then degraded). "" when unknown.
     * A standby's replay lag: now() - pg_last_xact_replay_timestamp(), in
     * ms (it grows while the primary commits nothing); -1 otherwise, and
 * while a standby has replayed no transaction yet. */
    char role[16];
    int64_t replay_lag_ms;
} gp_probe_t;

/* Open a fresh connection to PostgreSQL with cfg->db (not through a pool),
 * run one round trip, close it, all within cfg->db.connect_timeout_ms.
 * Fills *out (role and replay_lag_ms too); returns out->status: GP_ERR_CONFIG, GP_ERR_AUTH,
 * GP_ERR_CONNECT, GP_ERR_TIMEOUT or GP_ERR_NOMEM. */
GP_EXPORT gp_status_t gp_probe_postgres(const gp_config_t *cfg, gp_probe_t *out);

/* The same for Redis with cfg->redis: connect, AUTH and SELECT when
 * configured, PING, within connect_timeout_ms + timeout_ms. */
GP_EXPORT gp_status_t gp_probe_redis(const gp_config_t *cfg, gp_probe_t *out);

typedef enum gp_health_state {
    GP_HEALTH_UP = 0,       /* both servers answer, the database as a primary */
    GP_HEALTH_DEGRADED = 1, /* the database answers, but the cache does not, or the database is read-only
                               (a standby, or default_transaction_read_only: writes fail) */
    GP_HEALTH_DOWN = 2      /* the database does not answer */
} gp_health_state_t;

/* "up", "degraded", "down". */
GP_EXPORT const char *gp_health_state_name(gp_health_state_t state);

typedef struct gp_health_options {
    /* Required unless both pool and cache are given: servers without a pool
     * or cache are checked with fresh connections from this configuration. */
    const gp_config_t *cfg;
    gp_pool_t *pool;   /* optional: check PostgreSQL through it and report its metrics */
    /* Optional: check Redis through it (gp_cache_ping, subject to its
     * circuit breaker) and report its metrics. Used only when its
     * REDIS_TIMEOUT fits in the deadline; otherwise Redis is checked with a
     * fresh connection and the metrics are still reported. */
    gp_cache_t *cache;
    int deadline_ms;   /* <= 0: GP_HEALTH_DEFAULT_DEADLINE_MS */
} gp_health_options_t;

typedef struct gp_health_report {
    gp_health_state_t state;
    int deadline_ms;
    int64_t elapsed_ns;
    gp_probe_t postgres;
    gp_probe_t redis;
    int have_pool;            /* nonzero when `pool` holds a snapshot */
    gp_pool_metrics_t pool;
    int have_cache;           /* nonzero when `cache` holds a snapshot */
    gp_cache_metrics_t cache;
    /* The read pool's standby (DATABASE_READ_URL; pool.h "Read replicas"),
     * probed like `postgres` (through the pool's read pool when `pool` has
     * one): its role and replay lag. A standby that cannot be reached makes
     * the state degraded (reads fall back to the primary). */
    int have_replica;         /* nonzero when a read URL is configured */
    gp_probe_t replica;
} gp_health_report_t;

/* Check both servers concurrently and fill *out. Never takes longer than
 * the deadline (plus scheduling noise), even when a server is unreachable or
 * stops answering mid-query: a check still running at the deadline is
 * abandoned (its pooled connection is discarded) and reported as
 * GP_ERR_TIMEOUT. Returns GP_OK when the report was produced (whatever the
 * servers' state), GP_ERR_INVALID for missing options, GP_ERR_NOMEM. */
GP_EXPORT gp_status_t gp_health_check(const gp_health_options_t *opts, gp_health_report_t *out);

/* Render a report as one JSON object:
 *   {"status":"up|degraded|down","deadline_ms":..,"elapsed_ms":..,
 *    "postgres":{"ok":true,"latency_ms":..,"version":"..","error":".."},
 *    "redis":{...}, "pool":{...metrics...}, "cache":{...metrics...}}
 * *out is malloc'd; free() it. */
GP_EXPORT gp_status_t gp_health_to_json(const gp_health_report_t *r, char **out);

/* Render the report in the Prometheus text exposition format (version
 * 0.0.4): growplate_up, growplate_server_info (each server's version),
 * growplate_health_status and growplate_check_latency_seconds, then
 * everything gp_metrics_render shows for the report's pool and cache, under
 * the name "default". *out is malloc'd; free() it. */
GP_EXPORT gp_status_t gp_health_to_prometheus(const gp_health_report_t *r, char **out);

/* ---- this process's metrics for its own /metrics ----------------------------- */

#define GP_METRICS_NAME_MAX 64
#define GP_METRICS_SOURCES_MAX 64

/* One pool and/or one cache of this process, named for the label that
 * tells its series apart (pool="primary", cache="sessions", ...). */
typedef struct gp_metrics_source {
    const char *name;   /* 1..GP_METRICS_NAME_MAX of [A-Za-z0-9_.:-]; borrowed for the call */
    gp_pool_t *pool;    /* NULL: none */
    gp_cache_t *cache;  /* NULL: none */
} gp_metrics_source_t;

/* Render the metrics of sources[0..n) (n <= GP_METRICS_SOURCES_MAX) in the
 * Prometheus text exposition format (version 0.0.4), for a service's own
 * metrics endpoint: no I/O, no server contacted, cheap enough for a scrape
 * every second. Each family has one HELP and TYPE line; base units
 * (seconds); counters end in _total; durations are histograms whose
 * buckets are gp_latency_t's fixed powers of two (le="1.024e-06" ...
 * le="34.359738368", +Inf), so they aggregate across instances; pool series
 * carry pool="<name>", cache series cache="<name>". Always present:
 * growplate_build_info{version,libpq,hiredis} 1. Per pool:
 * growplate_pool_* (connections by state, limits, acquires, timeouts,
 * closes by reason, leaks, acquire wait / hold / connect histograms) and
 * the query layer's growplate_query_statements_total,
 * growplate_query_rows_total, growplate_query_errors_total{class} and
 * growplate_query_duration_seconds. Per cache: growplate_cache_* (circuit,
 * hits, misses, errors by kind, connections, commands, round trips, the
 * call-duration histogram, loads). *out is malloc'd; free() it.
 * Errors: GP_ERR_INVALID (no output pointer; a name missing, malformed or
 * used by two pools or two caches; too many sources: err names which),
 * GP_ERR_NOMEM. Safe from any thread, concurrently with use of the pools
 * and caches (each snapshot is gp_pool_metrics / gp_cache_metrics). */
GP_EXPORT gp_status_t gp_metrics_render(const gp_metrics_source_t *sources, size_t n, char **out, gp_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
