/* pool_fair.h — the pool's fairness keys (internal to the pool layer).
 *
 * Every acquire belongs to a key: its label (the tenant id on every
 * tenant-scoped path). The table keeps, per key, what the scheduler needs
 * (connections held, callers waiting in FIFO order, recent service) and
 * what the metrics show (acquires, timeouts, throttles, wait and hold
 * histograms). The table holds at most GP__FAIR_KEEP keys plus those that
 * hold or wait right now: a new key beyond that pushes out an idle one (of
 * the next GP__FAIR_EVICT_SCAN idle keys a clock hand passes, the one with
 * the least recent hold time; its counts fold into the "other" row), so
 * thousands of tenants cost bounded memory and a heavy key stays listed
 * while light ones come and go. Everything here runs under the pool's
 * mutex. */
#ifndef GP_POOL_FAIR_H
#define GP_POOL_FAIR_H

#include <stdbool.h>
#include <stdint.h>

#include "growplate/pool.h"

#define GP__FAIR_NAME_MAX 64 /* as the pool's labels */
#define GP__FAIR_KEEP 128    /* keys kept (more only while they hold or wait) */
#define GP__FAIR_EVICT_SCAN 16
#define GP__FAIR_BUCKETS 64  /* hash buckets */

/* A waiter's place in its key's queue (embedded in the pool's waiter). */
typedef struct gp__fair_node {
    struct gp__fair_node *prev, *next;
    uint64_t seq; /* arrival order across all keys */
} gp__fair_node_t;

typedef struct gp__fair_stats {
    uint64_t acquires, timeouts, throttled;
    uint64_t wait_n[GP_LATENCY_BUCKETS + 1], hold_n[GP_LATENCY_BUCKETS + 1]; /* per bucket; last: above */
    uint64_t wait_sum_ns, hold_sum_ns;
    int64_t wait_max_ns, hold_max_ns;
    uint64_t recent_hold_ns[2]; /* this minute, the previous one (the ranking) */
} gp__fair_stats_t;

typedef struct gp__fair_key {
    struct gp__fair_key *hnext;              /* hash chain */
    struct gp__fair_key *wprev, *wnext;       /* keys with waiters */
    gp__fair_node_t *whead, *wtail;           /* its waiters, oldest first */
    uint64_t hash;
    char name[GP__FAIR_NAME_MAX];
    bool in_table;    /* false for the "other" key (the fallback when memory runs out) */
    int held, waiting;
    int64_t held_since_sum; /* sum of the lease times of the connections it holds */
    uint64_t service_ns;    /* hold time of finished leases, halved every GP__FAIR_HALF_LIFE_NS */
    int64_t service_at;
    int64_t minute;         /* the minute of recent_hold_ns[0] */
    int64_t minute_start, minute_end; /* its bounds in ns, to roll without dividing */
    gp__fair_stats_t st;
} gp__fair_key_t;

typedef struct gp__fair {
    gp__fair_key_t *buckets[GP__FAIR_BUCKETS];
    gp__fair_key_t *whead, *wtail;       /* keys with waiters */
    int n_keys;
    int hand;                            /* the eviction scan's next bucket */
    uint64_t gen;                        /* moves whenever a key is freed (callers' cached pointers) */
    uint64_t seq;
    gp__fair_key_t other; /* evicted keys' counts; also the key of last resort */
    uint64_t throttled;   /* every GP_ERR_BUSY */
} gp__fair_t;

void gp__fair_init(gp__fair_t *f);
void gp__fair_free(gp__fair_t *f);

/* The length a label counts with (at most GP__FAIR_NAME_MAX - 1; NULL: 0),
 * and its hash: both before taking the pool's lock. */
size_t gp__fair_len(const char *label);
uint64_t gp__fair_hash(const char *label, size_t len);

/* Whether key k is label[0..len). */
bool gp__fair_same(const gp__fair_key_t *k, const char *label, size_t len);

/* The key of label[0..len) (NULL = ""), created when new (the "other" key
 * when memory runs out). */
gp__fair_key_t *gp__fair_key(gp__fair_t *f, const char *label, size_t len, uint64_t hash, int64_t now);

/* A connection handed to the key after waiting wait_ns. */
void gp__fair_handout(gp__fair_t *f, gp__fair_key_t *k, int64_t leased_ns, int64_t wait_ns);
/* Its connection (leased at leased_ns) came back at now. */
void gp__fair_release(gp__fair_t *f, gp__fair_key_t *k, int64_t leased_ns, int64_t now);

/* Waiters: queue, leave (served, timed out or woken by close). */
void gp__fair_enqueue(gp__fair_t *f, gp__fair_key_t *k, gp__fair_node_t *n);
void gp__fair_dequeue(gp__fair_t *f, gp__fair_key_t *k, gp__fair_node_t *n);
void gp__fair_timed_out(gp__fair_key_t *k);
void gp__fair_throttled(gp__fair_t *f, gp__fair_key_t *k);

/* The waiter to serve next: the oldest waiter of the key with the least
 * recent service among those under their share (held < share_cap), or
 * among all waiting keys when none is under it; NULL when nobody waits. */
gp__fair_node_t *gp__fair_next(gp__fair_t *f, int share_cap, int64_t now);

/* Fill m->keys / m->n_keys: the GP_POOL_TOP_KEYS keys with the most hold
 * time over the last one to two minutes, then one row for all the others. */
void gp__fair_metrics(gp__fair_t *f, int64_t now, gp_pool_metrics_t *m);

#endif
