/* growplate/cache.h — a resilient, tenant-scoped Redis cache on hiredis 0.14.
 *
 * Connections. A small pool of REDIS_POOL_SIZE blocking hiredis connections;
 * the thread that leads a connection does its I/O (see "Automatic
 * pipelining"). Connects use REDIS_CONNECT_TIMEOUT,
 * then AUTH (with REDIS_USERNAME when set), SELECT REDIS_DB and ROLE: a
 * node that says it is a replica is refused (GP_ERR_UNAVAILABLE), so no
 * write goes to one. A broken connection is dropped and reopened by the
 * next call that needs it.
 *
 * Sentinel. With REDIS_SENTINELS and REDIS_SENTINEL_MASTER, connections go
 * to the master the sentinels name (asked in turn, without AUTH, within
 * the call's budget), asked again after a lost connection, a failed
 * connect, READONLY or a replica's ROLE. One watcher thread per cache
 * stays subscribed to +switch-master on one sentinel at a time; a switch
 * makes every connection to the old master go before its next use.
 * gp_cache_close() stops that thread (waiting at most
 * REDIS_CONNECT_TIMEOUT). Wrong-node replies: see gp_cache_wrong_node_t.
 *
 * Redis Cluster. With REDIS_CLUSTER_NODES the slot map is read from the
 * seeds at the first call; every call goes to the master of its tenant's
 * slot (all keys of a tenant share one, see "Keyspace"), through that
 * node's own pool of REDIS_POOL_SIZE connections, circuit breaker and
 * automatic pipelining: a node down fails only the calls of its tenants.
 * MOVED (the map learns), ASK (once, with ASKING) and TRYAGAIN (after a
 * short backoff) are followed within the budget, at most 5 hops; a
 * redirect left when it runs out is a wrong-node failure. gp_cache_ping
 * pings every node; gp_cache_metrics adds the nodes up.
 *
 * The time budget. Every call that talks to Redis finishes within
 * REDIS_TIMEOUT ("the budget"), counted from its start: waiting for a free
 * connection, (re)connecting (at most min(REDIS_CONNECT_TIMEOUT, what is
 * left)) and the round trip all come out of it. The socket timeout is set to
 * what is left, so a hung server costs a caller at most the budget (per
 * socket operation: a reply trickling in byte by byte could take longer).
 * Host name resolution (getaddrinfo) is the only step hiredis cannot bound;
 * use an IP address where that matters. A caller that cannot get a
 * connection within its budget fails; nothing is queued beyond the callers
 * themselves.
 *
 * Automatic pipelining. A call that finds every connection busy waits in a
 * FIFO (one entry per waiting caller, gone by the end of its budget). The
 * next call to lead a connection sends its own commands together with those
 * of every waiting call (up to 1024 commands or 512 KiB), in one write, and
 * reads all the replies in one go; each caller gets its own replies and its
 * own status. Concurrent callers thus share round trips, and Redis answers
 * many commands per system call: with more threads than REDIS_POOL_SIZE
 * this is faster than a connection per thread. A batch has the socket
 * timeout of its oldest call, so no call waits past its budget. Pipelining
 * changes no result: commands of different calls never interleave, and each
 * call's commands run in order. A failure of the connection fails the calls
 * of its batch that got no reply (idempotent ones are resent once, as below).
 *
 * Degradation. A circuit breaker watches the calls' outcomes. After
 * `breaker_threshold` consecutive failures (connection refused or lost, a
 * timeout, AUTH rejected, LOADING) it opens: every call then fails at once
 * with GP_ERR_UNAVAILABLE ("cache unavailable") without touching the network.
 * After a cool-down (exponential backoff with ±20% jitter: breaker_cooldown_ms,
 * doubled after each failed probe, capped at breaker_max_cooldown_ms) it
 * turns half-open: the next caller becomes the one probe (it reconnects and
 * runs its own command); everyone else still fails fast. A successful probe
 * closes the circuit, a failed one reopens it. Reconnection is this same
 * backoff: while the circuit is open nothing but the probe connects.
 * Each transition is counted and logged (component "cache", warn when
 * opening, info when closing). Error replies that mean "the server works"
 * (WRONGTYPE...) are not failures.
 *
 * TLS (rediss://, REDIS_TLS_*): OpenSSL under the cache's own socket I/O;
 * the handshake counts in REDIS_CONNECT_TIMEOUT. A server certificate that
 * is not accepted (unknown CA, another name) fails a call with
 * GP_ERR_CONNECT (err->klass GP_ECLASS_CONNECTION, not retriable: a
 * configuration problem, not an outage); files that cannot be loaded are
 * GP_ERR_CONFIG from gp_cache_create().
 *
 * GP_ERR_UNAVAILABLE is the one status for "Redis cannot serve this now"
 * (open circuit, connect or I/O failure, timeout, no free connection within
 * the budget): callers treat it as a miss and carry on. err->klass tells
 * GP_ECLASS_TIMEOUT / GP_ECLASS_CONNECTION / GP_ECLASS_AUTH apart;
 * err->retriable is 1.
 *
 * Keyspace. Every Redis key is
 *     REDIS_KEY_PREFIX "t:{" tenant "}:" generation ":" key
 * e.g. "growplate:t:{123e4567-e89b-12d3-a456-426614174000}:1718000000000000:menu:42".
 * The tenant id is a canonical lowercase UUID (growplate/tenant_id.h) inside
 * a Redis Cluster hash tag, so all of a tenant's keys share one slot and the
 * batched calls work on a cluster. Keys are NUL-terminated C strings of 1 to
 * GP_CACHE_KEY_MAX bytes of printable ASCII other than space and
 * { } * ? [ ] (an embedded NUL simply ends the key). As the tenant id has a
 * fixed length and no '}', and the generation is digits, the mapping
 * (tenant, generation, key) -> Redis key is injective: no key or tenant id
 * can name another tenant's data. Every data key gets a TTL.
 *
 * Tenant-wide invalidation. The generation is a per-tenant counter in Redis
 * (key REDIS_KEY_PREFIX "t:{" tenant "}:gen", the only key without a TTL: one
 * small key per tenant). gp_cache_invalidate_tenant() increments it — O(1),
 * no SCAN, no DEL — so every older key becomes unreachable and expires by
 * itself. When the counter is missing (never set, or evicted) it is created
 * from the wall clock in microseconds, so a generation is never reused.
 * Each process caches the generations it uses for `generation_ttl_ms`
 * (default 1000): an invalidation is seen at once by the process that made
 * it, and by every other process within generation_ttl_ms. Cost: one extra
 * round trip per tenant per generation_ttl_ms (0 = fetch it on every call,
 * one extra round trip per call).
 *
 * Thread-safety: every gp_cache_* function is safe from any thread, except
 * gp_cache_close(), which must not race with other calls on the same cache.
 *
 * Ownership: values returned by the get functions are the caller's
 * (malloc'd: free(); json_t: json_decref()); arguments are borrowed for the
 * duration of the call only.
 */
#ifndef GROWPLATE_CACHE_H
#define GROWPLATE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "growplate/common.h"
#include "growplate/config.h"
#include "growplate/pool.h"       /* gp_latency_t */
#include "growplate/tenant_id.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gp_cache gp_cache_t;

/* The longest key accepted, in bytes. */
#define GP_CACHE_KEY_MAX 512
/* The most keys in one gp_cache_mget / gp_cache_mset call. */
#define GP_CACHE_BATCH_MAX 1024

/* Tuning beyond the configuration. Zero fields take the defaults. */
typedef struct gp_cache_options {
    int default_ttl_ms;          /* TTL of a value set with ttl_ms <= 0; default 300000 (5 min) */
    int breaker_threshold;       /* consecutive failures that open the circuit; default 5 */
    int breaker_cooldown_ms;     /* first open period; default 50 */
    int breaker_max_cooldown_ms; /* cap of the doubling open period; default 500 */
    int generation_ttl_ms;       /* how long a process trusts a cached generation; default 1000;
                                    -1 = never cache it (an extra round trip per call) */
    int load_wait_ms;            /* gp_cache_get_or_load: longest wait for another thread's loader;
                                    default 5000 */
} gp_cache_options_t;

/* Create a cache from cfg->redis (copied; cfg may be freed afterwards) and
 * opts (NULL = defaults). No connection is opened yet: the first calls open
 * them, so a cache can be created while Redis is down.
 * Errors: GP_ERR_CONFIG (invalid configuration, message in err),
 * GP_ERR_INVALID (negative option), GP_ERR_NOMEM. *out is NULL on failure.
 * `err` may be NULL. */
GP_EXPORT gp_status_t gp_cache_create(const gp_config_t *cfg, const gp_cache_options_t *opts,
                                      gp_cache_t **out, gp_error_t *err);

/* Close every connection and free the cache. No other call on this cache may
 * be running or start afterwards. NULL is accepted. */
GP_EXPORT void gp_cache_close(gp_cache_t *cache);

/* ---- validation ---------------------------------------------------------- */

/* True when `key` is a valid cache key (see the keyspace rules above). When
 * it is not and `why` is not NULL, `why` receives one line naming the
 * problem (length, or the offending byte and its position). */
GP_EXPORT bool gp_cache_key_valid(const char *key, char *why, size_t whylen);

/* Common errors of every call below taking a tenant and a key:
 *   GP_ERR_TENANT   the tenant id is invalid (err->message says why)
 *   GP_ERR_KEY      the key is invalid (err->message says why)
 *   GP_ERR_INVALID  a NULL cache or output pointer, a bad count
 *   GP_ERR_UNAVAILABLE  Redis cannot serve the call now; treat as a miss
 *   GP_ERR_SERVER   Redis replied with an error (e.g. WRONGTYPE: the key
 *                   holds something this API did not write)
 *   GP_ERR_NOMEM
 * Nothing reaches Redis when validation fails. `err` may be NULL. */

/* ---- single keys ---------------------------------------------------------- */

/* Read a value. On GP_OK *value is a malloc'd copy (the caller free()s it)
 * with a NUL byte after the *len bytes (the value itself may contain NULs);
 * `len` may be NULL. GP_ERR_MISS when the key does not exist (*value NULL). */
GP_EXPORT gp_status_t gp_cache_get(gp_cache_t *cache, const char *tenant, const char *key,
                                   char **value, size_t *len, gp_error_t *err);

/* Store `len` bytes (binary-safe) with a TTL of ttl_ms milliseconds
 * (<= 0: the default TTL). Overwrites any previous value and TTL. */
GP_EXPORT gp_status_t gp_cache_set(gp_cache_t *cache, const char *tenant, const char *key,
                                   const void *value, size_t len, int64_t ttl_ms, gp_error_t *err);

/* Delete a key: GP_OK when it existed, GP_ERR_MISS when it did not. */
GP_EXPORT gp_status_t gp_cache_del(gp_cache_t *cache, const char *tenant, const char *key, gp_error_t *err);

/* Set a key's TTL to ttl_ms (> 0; GP_ERR_INVALID otherwise): GP_OK, or
 * GP_ERR_MISS when the key does not exist. */
GP_EXPORT gp_status_t gp_cache_expire(gp_cache_t *cache, const char *tenant, const char *key, int64_t ttl_ms,
                                      gp_error_t *err);

/* The key's remaining TTL in milliseconds in *ttl_ms (-1 when someone else
 * removed its TTL); GP_ERR_MISS when the key does not exist. */
GP_EXPORT gp_status_t gp_cache_ttl(gp_cache_t *cache, const char *tenant, const char *key, int64_t *ttl_ms,
                                   gp_error_t *err);

/* GP_OK when the key exists, GP_ERR_MISS when it does not. */
GP_EXPORT gp_status_t gp_cache_exists(gp_cache_t *cache, const char *tenant, const char *key, gp_error_t *err);

/* Add `delta` to an integer counter, atomically, creating it at 0 first; a
 * counter created by this call gets a TTL of ttl_ms (<= 0: the default TTL),
 * an existing one keeps its TTL (fixed windows for rate limits). The new
 * value goes to *value (may be NULL). GP_ERR_SERVER when the key holds a
 * non-integer or the result would overflow. Not retried after a lost
 * connection (it is not idempotent). */
GP_EXPORT gp_status_t gp_cache_incr(gp_cache_t *cache, const char *tenant, const char *key, int64_t delta,
                                    int64_t ttl_ms, int64_t *value, gp_error_t *err);

/* ---- batches: one round trip ----------------------------------------------- */

/* One value of a batch. */
typedef struct gp_cache_value {
    char *data;   /* mget: malloc'd, NUL-terminated after len bytes, or NULL on a miss; mset: borrowed */
    size_t len;
} gp_cache_value_t;

/* Read n (1..GP_CACHE_BATCH_MAX) keys of one tenant with a single MGET.
 * On GP_OK values[i].data is NULL for a missing key; free each data with
 * free() (or call gp_cache_values_free). On any error every values[i] is
 * {NULL, 0}. An invalid key fails the whole batch with GP_ERR_KEY, naming
 * its index. */
GP_EXPORT gp_status_t gp_cache_mget(gp_cache_t *cache, const char *tenant, size_t n, const char *const *keys,
                                    gp_cache_value_t *values, gp_error_t *err);

/* Store n (1..GP_CACHE_BATCH_MAX) values of one tenant, each with ttl_ms
 * (<= 0: the default TTL), as n pipelined SET ... PX commands sent in one
 * write and answered in one round trip (not a transaction: on
 * GP_ERR_UNAVAILABLE some may have been stored). */
GP_EXPORT gp_status_t gp_cache_mset(gp_cache_t *cache, const char *tenant, size_t n, const char *const *keys,
                                    const gp_cache_value_t *values, int64_t ttl_ms, gp_error_t *err);

/* free() every values[i].data and reset it to {NULL, 0}. values may be NULL. */
GP_EXPORT void gp_cache_values_free(gp_cache_value_t *values, size_t n);

/* ---- JSON ---------------------------------------------------------------------- */

/* Store any JSON value (object, array, scalar), compact, UTF-8: the bytes
 * json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) would give.
 * GP_ERR_INVALID when jansson cannot encode it either (a string that is not
 * UTF-8, a value that contains itself). */
GP_EXPORT gp_status_t gp_cache_set_json(gp_cache_t *cache, const char *tenant, const char *key,
                                        const json_t *value, int64_t ttl_ms, gp_error_t *err);

/* Read a JSON value: on GP_OK *value is a new reference (json_decref() it).
 * A stored value that is not valid JSON (written by someone else) is a
 * miss: GP_ERR_MISS, counted in metrics.invalid_json and logged (warn,
 * with the tenant, the key and jansson's reason, never the value). What
 * is valid is exactly what json_loadb(JSON_DECODE_ANY | JSON_ALLOW_NUL)
 * accepts. GP_ERR_NOMEM when memory runs out while decoding (not a miss). */
GP_EXPORT gp_status_t gp_cache_get_json(gp_cache_t *cache, const char *tenant, const char *key,
                                        json_t **value, gp_error_t *err);

/* ---- cache-aside ------------------------------------------------------------------ */

/* Produce the value of (tenant, key) from the source of truth. Return GP_OK
 * with *value set to a new reference, which the cache takes over; *ttl_ms
 * arrives holding the call's TTL and may be changed. Any other status is
 * passed to the caller (and to the threads waiting for this load) and
 * nothing is cached. Runs on the calling thread, without any cache lock
 * held; it must not call gp_cache_get_or_load for the same tenant and key. */
typedef gp_status_t (*gp_cache_loader_fn)(void *userdata, const char *tenant, const char *key, json_t **value,
                                          int64_t *ttl_ms);

typedef struct gp_cache_load_opts {
    int64_t ttl_ms;     /* TTL of the loaded value; <= 0: the default TTL */
    /* Probabilistic early refresh (XFetch, Vattani et al. 2015): when > 0, a
     * hit is refreshed before it expires with probability rising as the TTL
     * runs out: when delta * beta * -ln(U) >= remaining TTL, where delta is
     * how long the last load took (stored next to the value, same TTL) and
     * U is uniform in (0,1]. 1.0 is the usual choice; larger refreshes
     * earlier. 0 (the default) = off, and a hit costs one command less. */
    double early_beta;
    int wait_ms;        /* longest wait for another thread's load; <= 0: options.load_wait_ms */
} gp_cache_load_opts_t;

/* Cache-aside: return the cached JSON value of (tenant, key) or, on a miss
 * (including an invalid-JSON miss), load it with `loader`, store it with
 * the TTL and return it. Single-flight: within this process, one loader at
 * a time runs per (tenant, key); concurrent callers missing the same key
 * wait (at most wait_ms) and receive the same result (each its own
 * json_t). The generation is read before the load and reused for the
 * store, so a value loaded before an invalidation is never stored under the
 * new generation. When Redis is unavailable the loader still runs (single-
 * flight still applies) and its value is returned, not stored.
 * On GP_OK *value is a new reference (json_decref() it). Errors: the
 * loader's status (classified by that status alone, as the loader returns
 * no error object: GP_ERR_TIMEOUT, GP_ERR_CONNECT, GP_ERR_UNAVAILABLE and
 * GP_ERR_BUSY are retriable, with their classes; others are not); GP_ERR_TIMEOUT when another thread's load took longer
 * than wait_ms; GP_ERR_INVALID for a waiting caller when the loaded value
 * cannot be read back from its JSON text (an object key with a NUL byte:
 * jansson rejects it); the common errors above, except GP_ERR_UNAVAILABLE.
 * opts may be NULL. */
GP_EXPORT gp_status_t gp_cache_get_or_load(gp_cache_t *cache, const char *tenant, const char *key,
                                           const gp_cache_load_opts_t *opts, gp_cache_loader_fn loader,
                                           void *userdata, json_t **value, gp_error_t *err);

/* ---- tenants ---------------------------------------------------------------------- */

/* Invalidate every cached key of a tenant at once (O(1): one INCR of the
 * tenant's generation). Visible immediately in this process and within
 * options.generation_ttl_ms in every other one. */
GP_EXPORT gp_status_t gp_cache_invalidate_tenant(gp_cache_t *cache, const char *tenant, gp_error_t *err);

/* ---- health and metrics --------------------------------------------------------------- */

/* PING through the pool (subject to the circuit, so it may act as the
 * half-open probe). *latency_ns (may be NULL) receives the call's duration. */
GP_EXPORT gp_status_t gp_cache_ping(gp_cache_t *cache, int64_t *latency_ns, gp_error_t *err);

typedef enum gp_cache_circuit {
    GP_CACHE_CIRCUIT_CLOSED = 0,    /* normal */
    GP_CACHE_CIRCUIT_OPEN = 1,      /* failing fast */
    GP_CACHE_CIRCUIT_HALF_OPEN = 2, /* one probe in flight */
    GP_CACHE_CIRCUIT_COUNT_
} gp_cache_circuit_t;

/* "closed", "open", "half_open" ("unknown" for other values). */
GP_EXPORT const char *gp_cache_circuit_name(gp_cache_circuit_t state);

/* Error replies that mean "this command went to the wrong node" (a
 * topology problem, never "the server works"): every one fails its call
 * with GP_ERR_UNAVAILABLE (err->klass GP_ECLASS_CONNECTION, a message with
 * the reply and what to do), counts as a failure for the circuit breaker,
 * is counted in metrics.wrong_node[kind], logged (warn, component "cache",
 * at most one line per kind per second, saying how many were not logged)
 * and makes gp_health_check report the cache degraded for 10 s.
 * READONLY (the node is a replica now) also drops the connection, and with
 * Sentinel sends every connection to the master the sentinels name next;
 * MOVED and ASK drop the connection. */
typedef enum gp_cache_wrong_node {
    GP_CACHE_WRONG_MOVED = 0,       /* Redis Cluster: the slot lives on another node */
    GP_CACHE_WRONG_ASK = 1,         /* Redis Cluster: the slot is migrating */
    GP_CACHE_WRONG_READONLY = 2,    /* a replica refused a write */
    GP_CACHE_WRONG_TRYAGAIN = 3,    /* Redis Cluster: keys of a migrating slot are split */
    GP_CACHE_WRONG_CLUSTERDOWN = 4, /* Redis Cluster: the slot is not served */
    GP_CACHE_WRONG_MASTERDOWN = 5,  /* a replica lost its master */
    GP_CACHE_WRONG_COUNT_
} gp_cache_wrong_node_t;

/* "moved", "ask", "readonly", "tryagain", "clusterdown", "masterdown"
 * ("unknown" for other values): the `kind` label of
 * growplate_cache_wrong_node_total. */
GP_EXPORT const char *gp_cache_wrong_node_name(gp_cache_wrong_node_t kind);

/* A snapshot of the cache's metrics. Counters count since creation; every
 * field is filled. */
typedef struct gp_cache_metrics {
    /* circuit */
    gp_cache_circuit_t circuit;     /* state now */
    uint64_t circuit_opened;        /* transitions into open (from closed or half-open) */
    uint64_t circuit_half_opened;   /* transitions into half-open (probes started) */
    uint64_t circuit_closed;        /* transitions into closed (successful probes) */
    int64_t circuit_open_ms;        /* current cool-down when open/half-open, else 0 */
    /* reads */
    uint64_t hits;                  /* get/get_json/get_or_load hits, mget keys found */
    uint64_t misses;                /* absent keys, invalid-JSON values included */
    uint64_t invalid_json;          /* stored values that were not valid JSON (counted as misses) */
    /* calls that did not succeed */
    uint64_t errors;                /* every call that returned GP_ERR_UNAVAILABLE or GP_ERR_SERVER */
    uint64_t unavailable;           /* calls that returned GP_ERR_UNAVAILABLE (includes the next two) */
    uint64_t timeouts;              /* ... because the budget ran out (socket timeout, no free connection) */
    uint64_t rejected;              /* ... failed fast by the open circuit, without network I/O */
    uint64_t server_errors;         /* error replies (WRONGTYPE, overflow...) */
    uint64_t retries;               /* idempotent commands resent once on a fresh connection */
    /* connections */
    int pool_size;                  /* REDIS_POOL_SIZE */
    int connected;                  /* connections open now */
    int leased;                     /* connections in use now */
    int waiting;                    /* callers waiting for a connection now */
    uint64_t connects;              /* connections opened (AUTH/SELECT done) */
    uint64_t connect_failures;      /* failed connects (refused, timeout, AUTH, SELECT) */
    uint64_t disconnects;           /* connections dropped after an I/O error or timeout */
    /* commands */
    uint64_t calls;                 /* calls that reached the network (a retry counts once more) */
    uint64_t commands;              /* Redis commands sent (a 16-key mset is 16) */
    uint64_t round_trips;           /* writes to Redis, each answered in one go: fewer than calls when
                                       concurrent calls shared one (automatic pipelining) */
    gp_latency_t latency;           /* duration of the calls that reached the network, wait included */
    /* tenants and cache-aside */
    uint64_t invalidations;         /* gp_cache_invalidate_tenant successes */
    uint64_t generation_fetches;    /* generations read from Redis (local cache misses) */
    uint64_t loads;                 /* loader runs */
    uint64_t load_failures;         /* loader runs that did not return GP_OK */
    uint64_t load_waits;            /* callers that waited for another thread's load */
    uint64_t load_wait_timeouts;    /* ... and gave up after wait_ms */
    uint64_t early_refreshes;       /* XFetch refreshes of a still-valid value */
    /* topology */
    uint64_t wrong_node[GP_CACHE_WRONG_COUNT_]; /* wrong-node error replies, by kind */
    int64_t wrong_node_age_ms;      /* ms since the last wrong-node reply; -1 = none yet */
    uint64_t master_switches;       /* Sentinel: times the master changed (+switch-master, or
                                       a different answer from the sentinels) */
    char node[300];                 /* where new connections go: "host:port" (Sentinel: the
                                       master last named, "" before the first ask) */
} gp_cache_metrics_t;

/* Fill *out. Safe from any thread, lock-free except for a short lock to read
 * the gauges; cheap enough to scrape every second. */
GP_EXPORT gp_status_t gp_cache_metrics(gp_cache_t *cache, gp_cache_metrics_t *out);

#ifdef __cplusplus
}
#endif
#endif
