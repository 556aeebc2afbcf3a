/* cache_internal.h — what the cache's files share, bottom to top (each
 * calls only those below it): opening connections, Sentinel, TLS and the
 * wrong-node replies (cache_net.c); the cache object's connection pool and
 * circuit breaker (cache_conn.c); where each call goes, Redis Cluster
 * (cache_route.c); the keyspace (cache_keys.c); the
 * operations (cache.c); cache-aside (cache_load.c); and the life cycle
 * that sets them all up (cache_life.c). Never installed. */
#ifndef GROWPLATE_CACHE_INTERNAL_H
#define GROWPLATE_CACHE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>

#include "growplate/cache.h"
#include "internal.h"

/* One pooled connection. `ctx` is NULL when the slot is disconnected. A slot
 * is in exactly one place: the `idle` stack (connected), the `broken` stack
 * (disconnected) or leased to one caller; only slot_take/slot_put in
 * cache_conn.c move it. */
typedef struct cache_slot {
    redisContext *ctx;
    SSL *ssl;                   /* TLS on ctx's socket, or NULL */
    int timeout_ms;             /* the socket timeout set on ctx now */
    int index;
    uint64_t epoch;             /* topo.epoch when ctx was opened: an older one is dropped before use */
    char node[280];             /* "host:port" of ctx, for messages */
} cache_slot_t;

/* ---- cache_net.c ---------------------------------------------------------- */

/* The most elements an array reply may announce: more than any command of
 * the cache can be answered with (GP_CACHE_BATCH_MAX keys). More is a broken
 * reply, which ends the connection as any protocol error does. */
#define REPLY_MAX_ELEMENTS (1 << 20)

/* Where connections go, and what the cache learnt about the topology. With
 * Sentinel (t->n_sentinels > 0) the master's address is asked from the
 * sentinels and followed (+switch-master, by a watcher thread); without,
 * it is t->host:t->port. Knows nothing of the pool above it. */
typedef struct cache_topo {
    const gp__redis_target_t *t;  /* borrowed from the cache */
    SSL_CTX *tls;                 /* when t->tls: certificates loaded once, shared by every connection */
    char display[300];            /* the redacted configured target */
    int connect_timeout_ms;
    pthread_mutex_t mu;
    /* ---- guarded by mu ---- */
    char host[256];               /* Sentinel: the master last named (port 0: never asked yet) */
    int port;
    bool stale;                   /* Sentinel: ask again before the next connect */
    int next;                     /* Sentinel: the one to ask first (the last that answered) */
    char last_wrong[256];         /* the last wrong-node reply, with the node, for health */
    /* ---- lock-free ---- */
    _Atomic uint64_t epoch;       /* bumped when connections to the old node must go */
    _Atomic uint64_t switches;
    _Atomic uint64_t wrong[GP_CACHE_WRONG_COUNT_];
    _Atomic int64_t wrong_last_ns;                 /* 0 = none yet */
    _Atomic int64_t wrong_logged_ns[GP_CACHE_WRONG_COUNT_];
    _Atomic uint64_t wrong_unlogged[GP_CACHE_WRONG_COUNT_];
    /* the +switch-master watcher (Sentinel only) */
    bool watching;
    pthread_t watcher;
    int wake[2];                  /* a pipe: gp__topo_free writes to end the watcher's wait */
    _Atomic bool closing;
} cache_topo_t;

/* Set up tp for target t (borrowed, must outlive tp); with Sentinel, start
 * the watcher thread. GP_ERR_NOMEM (err filled) when a thread or pipe
 * cannot be made. */
gp_status_t gp__topo_init(cache_topo_t *tp, const gp__redis_target_t *t, const char *display, int connect_timeout_ms,
                          gp_error_t *err);
/* Stop the watcher (waits for it: at most one connect timeout) and free. */
void gp__topo_free(cache_topo_t *tp);

/* Something says the node connections go to may not be the master any more
 * (a connection lost, a connect failed, a replica answered): with Sentinel,
 * ask the sentinels again before the next connect; `drop_all` also makes
 * every open connection go (epoch). No-op without Sentinel. */
void gp__topo_suspect(cache_topo_t *tp, bool drop_all);

/* The kind of a wrong-node error reply (gp_cache_wrong_node_t), or -1. */
int gp__redis_wrong_node(const redisReply *r);

/* Count, time and (rate-limited) log a wrong-node reply `r` of kind `kind`
 * from the node `node`; fill err (GP_ERR_UNAVAILABLE) with what to do. A
 * READONLY calls gp__topo_suspect(tp, true). */
void gp__topo_wrong_node(cache_topo_t *tp, int kind, const redisReply *r, const char *node, gp_error_t *err);
/* The two halves of gp__topo_wrong_node: count one (a redirect the
 * cluster router follows), and report one (time, log, err). */
void gp__topo_wrong_count(cache_topo_t *tp, int kind);
void gp__topo_wrong_report(cache_topo_t *tp, int kind, const redisReply *r, const char *node, gp_error_t *err);

/* "host:port" where new connections go now ("" when not known yet). */
void gp__topo_node(cache_topo_t *tp, char *out, size_t len);

/* Per-tenant generation, cached locally (direct-mapped, bounded). */
#define GEN_ENTRIES 1024
#define GEN_STRIPES 16
typedef struct gen_entry {
    char tenant[GP_TENANT_ID_LEN + 1];
    uint64_t gen;
    int64_t fetched_ns;
} gen_entry_t;

typedef struct flight flight_t; /* cache_load.c */
typedef struct cache_job cache_job_t; /* one call in flight (cache_conn.c) */
#define FLIGHT_BUCKETS 64

typedef struct cache_counters {
    _Atomic uint64_t hits, misses, invalid_json;
    _Atomic uint64_t errors, unavailable, timeouts, rejected, server_errors, retries;
    _Atomic uint64_t connects, connect_failures, disconnects;
    _Atomic uint64_t calls, commands, round_trips;
    _Atomic uint64_t invalidations, generation_fetches;
    _Atomic uint64_t loads, load_failures, load_waits, load_wait_timeouts, early_refreshes;
} cache_counters_t;

struct gp_cache {
    /* configuration (immutable after create) */
    gp__redis_target_t target;  /* holds the password: wiped on close */
    char display[300];          /* redacted redis://host:port/db for messages */
    char prefix[80];
    size_t prefix_len;
    int timeout_ms, connect_timeout_ms, pool_size;
    gp_cache_options_t opt;
    cache_topo_t topo;
    /* Redis Cluster (cache_route.c): the router's table (NULL: not a
     * cluster); a node's own cache object has cluster_node set, counts into
     * its router's counters (cnt) and records into its histogram. */
    struct cache_cluster *cluster;
    bool cluster_node;
    cache_counters_t *cnt;      /* &n, or the router's */
    gp_hist_t *hist_owned;      /* latency, when this object made it */

    /* ---- guarded by mu ---- */
    pthread_mutex_t mu;
    cache_slot_t *slots;
    int *idle, n_idle;          /* stack of connected, unleased slots */
    int *broken, n_broken;      /* stack of disconnected, unleased slots */
    cache_job_t *qhead, *qtail; /* calls waiting for a connection, FIFO (cache_conn.c) */
    int waiting, connected;     /* waiting = the queue's length */
    /* circuit breaker */
    gp_cache_circuit_t state;
    int consecutive;            /* failures in a row while closed */
    int64_t open_until_ns;      /* open: when the next probe may start */
    int64_t cooldown_ms;        /* current open period (doubles per failed probe) */
    bool probe_busy;            /* half-open: the probe is running */
    char last_error[256];       /* the last failure, for the "circuit open" log line */
    _Atomic int state_pub;      /* copy of state, read lock-free for metrics */
    _Atomic uint64_t opened, half_opened, closed;

    cache_counters_t n;
    gp_hist_t *latency;

    /* generations (cache_keys.c) */
    pthread_mutex_t gen_mu[GEN_STRIPES];
    gen_entry_t gens[GEN_ENTRIES];

    /* single-flight table (cache_load.c) */
    pthread_mutex_t flight_mu;
    flight_t *flights[FLIGHT_BUCKETS];
};

/* Open a blocking hiredis connection to the node that serves t, all within
 * `deadline` (monotonic ns): with Sentinel, ask the sentinels for the
 * master (tp remembers it; tp NULL: ask every time); connect (at most
 * connect_timeout_ms), a socket timeout of min(command_timeout_ms, what is
 * left) (*tmo_ms, may be NULL), keepalive, AUTH (with the ACL user when
 * set), SELECT, and ROLE: a node that says it is a replica is refused (no
 * write must go to it). Messages start with `display` (the redacted
 * target); *node (may be NULL, 280 bytes) gets "host:port". On failure
 * *out is NULL and the status is GP_ERR_UNAVAILABLE with err->klass
 * TIMEOUT, CONNECTION, AUTH or CLIENT (SELECT refused), or GP_ERR_NOMEM.
 * Shared by the cache's pool and the health check. */
gp_status_t gp__redis_open(const gp__redis_target_t *t, cache_topo_t *tp, const char *display, int64_t deadline,
                           int connect_timeout_ms, int command_timeout_ms, redisContext **out, SSL **ssl,
                           int *tmo_ms, char *node, gp_error_t *err);

/* TLS (t->tls): the client context for t, with the CA, client
 * certificate and key loaded and verification on (*out NULL when TLS is
 * off). GP_ERR_CONFIG naming the file that cannot be loaded. */
gp_status_t gp__tls_new(const gp__redis_target_t *t, SSL_CTX **out, gp_error_t *err);
void gp__tls_free(SSL_CTX *ctx);

/* Write all of buf with TLS (never SIGPIPE); 0 or an errno (EAGAIN: the
 * socket's send timeout), with ctx's error fields set. */
int gp__tls_write(redisContext *ctx, SSL *ssl, const void *buf, size_t len);

/* redisGetReply, through TLS when ssl is not NULL. */
int gp__redis_read_reply(redisContext *ctx, SSL *ssl, void **reply);

/* Close a connection opened by gp__redis_open (ssl may be NULL). */
void gp__redis_close(redisContext *ctx, SSL *ssl);

/* redisCommandArgv with SIGPIPE held off in the calling thread. hiredis
 * writes with write(): on a connection the server has closed, a write
 * raises SIGPIPE, which ends a process that does not ignore it. A SIGPIPE
 * this call raises is consumed; one pending before it stays pending. For
 * the commands run outside the cache's own send path (AUTH, SELECT, ROLE,
 * the sentinels, the health probe). With ssl (TLS), through it: no
 * SIGPIPE either way. */
redisReply *gp__redis_command(redisContext *ctx, SSL *ssl, int argc, const char **argv);

/* Whether the failure of an I/O on ctx (errno e) was its socket timeout. */
bool gp__redis_is_timeout(const redisContext *ctx, int e);

/* ms (at least 1) as a timeval. */
struct timeval gp__tv_ms(int64_t ms);

/* Fill err (may be NULL) and return st. */
gp_status_t gp__cache_fail(gp_error_t *err, gp_status_t st, gp_error_class_t klass, const char *fmt, ...)
    GP__PRINTF(4, 5);

/* Decimal digits of v into p (no NUL); returns how many. */
size_t gp__cache_put_dec(char *p, uint64_t v);

/* ---- cache_conn.c -------------------------------------------------------- */

/* One Redis command in argv form (binary-safe). */
typedef struct cache_cmd {
    int argc;
    const char **argv;
    const size_t *argvlen;
} cache_cmd_t;

/* Where a call's replies live. hiredis builds reply objects through
 * functions a reader may replace (redisReplyObjectFunctions); the cache's
 * connections build theirs in the calling thread's arena instead of two
 * malloc()s per reply (the object and its string), so a call's replies are
 * freed at once, with the arena. The first block sits in the struct (on the
 * caller's stack); bigger replies get malloc'd blocks. */
typedef struct cache_arena_block cache_arena_block_t;
typedef struct cache_arena {
    char *p;                     /* free room in the current block */
    size_t left;
    cache_arena_block_t *blocks; /* malloc'd blocks, newest first */
    bool refused;                /* a reply announced too many elements: hiredis says "out of memory" */
    _Alignas(16) char first[1024];
} cache_arena_t;

void gp__cache_arena_init(cache_arena_t *a);
/* Frees the malloc'd blocks: every reply built in the arena is gone. */
void gp__cache_arena_free(cache_arena_t *a);

/* The pool's slots, lock, breaker state and latency histogram (unless
 * c->latency is set already: a cluster node shares its router's), for
 * gp_cache_create (cache_life.c; c->pool_size and c->opt set); freed (open
 * connections closed) by gp__cache_pool_free. GP_ERR_NOMEM. */
gp_status_t gp__cache_pool_init(gp_cache_t *c, gp_error_t *err);
void gp__cache_pool_free(gp_cache_t *c);

/* Set up the reader of a new connection as the cache's connections are
 * set up: replies are built in the arena its privdata points to (set it
 * before reading a call's replies; NULL: every reply fails as out of
 * memory). */
void gp__cache_reader_setup(redisReader *r);

/* Give c a connection the caller opened (fuzz/fuzz_redis_reply.c: one end
 * of a socketpair standing in for the server), set up as the cache's own
 * connections are (gp__cache_reader_setup, the command timeout as its
 * socket timeout, which the caller sets), in place of a disconnected slot.
 * Takes ctx over. GP_ERR_CLOSED (ctx freed) when a slot is connected
 * already or none is free. Not for use while calls run. */
gp_status_t gp__cache_adopt(gp_cache_t *c, redisContext *ctx);

/* Send n commands in one write and read their n replies (one round trip,
 * shared with concurrent calls when every connection is busy: automatic
 * pipelining), within the cache's time budget, through the circuit breaker
 * and the pool.
 * On GP_OK every replies[i] is set, error replies included, built in
 * `arena` (initialised by the caller, which frees it with
 * gp__cache_arena_free after using the replies, whatever the status); on
 * failure none is. When
 * `idempotent`, a command that fails on a reused connection (lost while
 * idle, e.g. after a server restart) is resent once on a fresh connection
 * if the budget allows. Counts calls, commands, errors and latency; fills
 * err. */
gp_status_t gp__cache_pool_exec(gp_cache_t *c, int64_t deadline, int n, const cache_cmd_t *cmds, redisReply **replies,
                                cache_arena_t *arena, bool idempotent, gp_error_t *err);

/* The pool's part of gp_cache_metrics (its counters, gauges, circuit,
 * topology), for c alone. */
void gp__cache_pool_metrics(gp_cache_t *c, gp_cache_metrics_t *m);

/* ---- cache_route.c -------------------------------------------------------- */

/* gp__cache_pool_exec on the node that serves the call: c itself, or with
 * Redis Cluster the master of the slot of cmds[0]'s key (every command of
 * a call is on one tenant, so one slot), following MOVED (the map is
 * updated), ASK (ASKING, once) and TRYAGAIN within the budget; only the
 * commands that were redirected are sent again. A redirect still
 * unresolved when the budget or the hops run out is a wrong-node failure.
 * deadline 0: the budget starts now. */
gp_status_t gp__cache_exec(gp_cache_t *c, int n, const cache_cmd_t *cmds, redisReply **replies, cache_arena_t *arena,
                           bool idempotent, gp_error_t *err);

/* With Redis Cluster: the seeds' node objects (no I/O). GP_ERR_NOMEM. */
gp_status_t gp__cluster_init(gp_cache_t *c, gp_error_t *err);
void gp__cluster_free(gp_cache_t *c);

/* An error reply -> GP_ERR_SERVER, counted, message in err. */
gp_status_t gp__cache_server_error(gp_cache_t *c, const redisReply *r, gp_error_t *err);

/* ---- cache_keys.c -------------------------------------------------------- */

/* Validate tenant and key (GP_ERR_TENANT / GP_ERR_KEY with the reason);
 * key == CACHE_NO_KEY checks the tenant alone. */
#define CACHE_NO_KEY ((const char *)-1)
gp_status_t gp__cache_check(const char *tenant, const char *key, gp_error_t *err);

/* The length of a valid key (1..GP_CACHE_KEY_MAX), or 0 when it is not
 * valid (gp_cache_key_valid says why): the hot path's check. */
size_t gp__cache_key_len(const char *key);

/* The room a full key needs, NUL included. */
#define CACHE_FULLKEY_MAX (80 + 3 + GP_TENANT_ID_LEN + 2 + 21 + 1 + GP_CACHE_KEY_MAX + 1)

/* Write prefix "t:{" tenant "}:" gen kind ":" into buf (the part every key of
 * a batch shares); returns its length, less than CACHE_FULLKEY_MAX -
 * GP_CACHE_KEY_MAX. */
size_t gp__cache_key_prefix(const gp_cache_t *c, const char *tenant, uint64_t gen, const char *kind, char *buf);

/* Write prefix "t:{" tenant "}:" gen kind ":" key into buf (CACHE_FULLKEY_MAX
 * bytes); `kind` is "" for values and "x" for the XFetch metadata. Returns
 * the length. Arguments must have been validated. */
size_t gp__cache_key(const gp_cache_t *c, const char *tenant, uint64_t gen, const char *kind, const char *key,
                     char *buf);

/* The tenant's current generation: from the local cache when fresh, else
 * from Redis (creating the counter if missing). */
gp_status_t gp__cache_generation(gp_cache_t *c, const char *tenant, uint64_t *gen, gp_error_t *err);
/* Forget this process's cached generation of the tenant (another process
 * invalidated it): the next call reads it from Redis. */
void gp__cache_generation_forget(gp_cache_t *c, const char *tenant);
/* ... of every tenant (notifications were lost). */
void gp__cache_generation_forget_all(gp_cache_t *c);

/* ---- cache.c ------------------------------------------------------------- */

/* Parse a stored value as JSON (the fast codec, jansson when it declines):
 * GP_OK (a hit) with *out, GP_ERR_MISS, or GP_ERR_NOMEM (in err). When
 * `count`, hits and misses are counted and an invalid value is counted as
 * invalid JSON and logged (count = false: a second look at the same
 * value). */
gp_status_t gp__cache_parse_json(gp_cache_t *c, const char *tenant, const char *key, const char *text, size_t len,
                                 bool count, json_t **out, gp_error_t *err);

/* ---- cache_load.c -------------------------------------------------------- */
void gp__cache_flights_free(gp_cache_t *c);

#endif
