/* pool.c — the PostgreSQL connection pool: a state machine over physical
 * connections, FIFO hand-off to waiters, and a maintenance thread that opens,
 * reaps and watches connections.
 *
 * Every connection is in exactly one state, and every state but GONE has a
 * list. set_state() is the only function that moves a connection between
 * lists; everything else decides *when*. All lists, counters and waiters are
 * guarded by pool->mu. No I/O ever happens under pool->mu: connections are
 * opened, validated, cleaned and closed by the thread that owns them
 * (a connection in OPENING belongs to the maintenance thread, one in LEASED to
 * its caller, one in GONE to whoever moved it there).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pool_fair.h"
#include "pool_internal.h"

#define LABEL_MAX 64
_Static_assert(LABEL_MAX == GP__FAIR_NAME_MAX, "labels are fairness keys: one length limit");
#define BACKOFF_BASE_NS (25 * 1000000LL)   /* first retry after a failed open */
#define BACKOFF_CAP_NS (500 * 1000000LL)   /* never longer: recovery stays quick */
/* How often the maintenance thread looks for idle connections the server
 * dropped (without a round trip). */
#define IDLE_CHECK_NS (1000LL * 1000000)
#define LIFETIME_JITTER 0.10               /* +-10% of max lifetime */
#define LEAK_BATCH 16                      /* leak reports logged per maintenance pass */

typedef enum conn_state {
    CS_NEW = 0, /* just allocated, in no list */
    CS_OPENING,
    CS_IDLE,
    CS_LEASED,
    CS_GONE,    /* out of the pool: to be finalized by whoever moved it here */
} conn_state_t;

typedef struct gp__pool_conn_priv pconn_t;

struct gp__pool_conn_priv {
    struct gp_conn conn;        /* the public part; conn.priv points back here */
    gp_pool_t *pool;
    conn_state_t state;
    pconn_t *prev, *next;       /* links in the list of `state` */
    int64_t created_ns;
    int64_t expires_ns;         /* 0 = no max lifetime */
    int64_t idle_since_ns;      /* valid in IDLE */
    int64_t leased_ns;          /* valid in LEASED */
    bool leak_reported;         /* once per lease */
    const char *site;           /* while LEASED: the acquiring call site (borrowed), or NULL */
    gp__fair_key_t *key;        /* while LEASED by a caller: its fairness key */
};

typedef struct clist {
    pconn_t *head, *tail;
    int n;
} clist_t;

/* A thread blocked in gp_pool_acquire(). It lives on that thread's stack; it
 * is in the queue exactly while `done` is false. Whoever serves it sets
 * `conn` (handed over, already LEASED) or `status`, sets `done`, removes it
 * from the queue and signals its private condition variable — so a hand-off
 * wakes exactly the waiter being served. */
typedef struct waiter {
    struct waiter *prev, *next;
    gp__fair_node_t node;       /* its place in its key's queue */
    gp__fair_key_t *key;
    const char *site;
    int64_t t0;                 /* when it called gp_pool_acquire */
    pthread_cond_t cv;
    pconn_t *conn;
    gp_status_t status;
    bool done;
} waiter_t;

struct gp_pool {
    pthread_mutex_t mu;
    pthread_condattr_t cattr;   /* CLOCK_MONOTONIC for every condition variable */
    pthread_cond_t maint_cv;    /* the maintenance thread sleeps here until its next deadline */
    pthread_cond_t close_cv;    /* gp_pool_close() waits here for leases and the thread */

    /* OPENING: a slot reserved by the maintenance thread, which is connecting
     * outside the lock; conn.pg is NULL; counts towards max. */
    clist_t opening;
    /* IDLE: open, CONNECTION_OK, no transaction, session state clean, not
     * expired when it arrived here; head = most recently released (LIFO
     * reuse), tail = idle longest (reaped first). Non-empty only while no
     * caller waits. */
    clist_t idle;
    /* LEASED: owned by exactly one caller (or by the acquiring/releasing
     * thread while it validates or cleans it); leased_ns and key are set;
     * the pool only reads them (leak detection). */
    clist_t leased;
    /* Callers waiting for a connection, oldest first; each also in its
     * fairness key's queue (pool_fair.h), which decides who is served. */
    struct { waiter_t *head, *tail; int n; } waiters;
    gp__fair_t fair;
    uint64_t id;                /* unique in the process, never 0 */
    bool fair_on;               /* DATABASE_TENANT_FAIR; else FIFO across keys */
    int share_cap;              /* DATABASE_TENANT_MAX_SHARE of max, in connections (>= 1) */
    int max_waiting;            /* DATABASE_TENANT_MAX_WAITING (resolved) */

    /* settings, read-only after creation */
    int min, max;
    int acquire_timeout_ms;
    int64_t idle_timeout_ns, max_lifetime_ns, validate_after_ns, leak_threshold_ns;
    gp_db_config_t db;          /* deep copy; strings below (the tenant keys: not kept) */
    gp__tenant_key_t tenant_key;
    gp__tenant_cache_t *tenant_cache;
    char *strings[8];
    gp__pg_params_t params;
    char display[256];          /* redacted target, for messages */

    /* lifecycle */
    bool closed;                /* no new acquires; set once */
    atomic_bool closing;        /* same, readable without the lock (release skips cleaning) */
    bool handle_dropped;        /* gp_pool_close() returned: free when nothing else holds the pool */
    bool maint_running;
    pthread_t maint;

    int64_t next_idle_check_ns; /* maintenance: next look for idle connections the server dropped */

    /* reconnection */
    int failures;               /* consecutive failed opens */
    int64_t next_attempt_ns;    /* no open before this (backoff) */
    gp_error_t last_error;      /* the last failed open; status GP_OK when the last open worked */

    /* counters */
    uint64_t acquires, acquire_timeouts, acquire_errors;
    uint64_t opened, open_failures, leaks_reported;
    uint64_t closed_by[GP_CLOSE_REASON_COUNT_];
    gp_hist_t *wait_hist, *hold_hist, *connect_hist;
    gp__stmt_stats_t stmt_stats;

    bool txpooler;              /* DATABASE_POOLER=transaction */
    /* Read routing (pool_read.c): the read pool (DATABASE_READ_URL) and its
     * routing state, or, in a read pool, the primary pool it reads for. */
    gp_pool_t *read;
    gp_pool_t *writer;
    gp__read_state_t *rstate;
    gp__oneshot_queue_t oneshots; /* the query layer's (query_batch.c) */
    _Atomic int oneshot_users;    /* threads inside it (gp__pool_enter): the pool outlives them */
    bool freeing;                 /* someone decided to free the pool (under mu) */
    int sleepers;                 /* callers inside gp_pool_acquire's wait (under mu): the pool outlives them */
};

static void set_error(gp_error_t *err, gp_status_t st, gp_error_class_t klass, int retriable, const char *fmt, ...)
    GP__PRINTF(5, 6);
static void set_error(gp_error_t *err, gp_status_t st, gp_error_class_t klass, int retriable, const char *fmt, ...)
{
    if (!err)
        return;
    gp_error_clear(err);
    err->status = st;
    err->klass = klass;
    err->retriable = retriable;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

static struct timespec mono_ts(int64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000LL), .tv_nsec = (long)(ns % 1000000000LL)};
}

/* ---- the state machine ------------------------------------------------------ */

static clist_t *list_of(gp_pool_t *p, conn_state_t s)
{
    switch (s) {
    case CS_OPENING: return &p->opening;
    case CS_IDLE: return &p->idle;
    case CS_LEASED: return &p->leased;
    default: return NULL;
    }
}

static void list_unlink(clist_t *l, pconn_t *c)
{
    if (c->prev) c->prev->next = c->next; else l->head = c->next;
    if (c->next) c->next->prev = c->prev; else l->tail = c->prev;
    c->prev = c->next = NULL;
    l->n--;
}

static void list_push_head(clist_t *l, pconn_t *c)
{
    c->prev = NULL;
    c->next = l->head;
    if (l->head) l->head->prev = c; else l->tail = c;
    l->head = c;
    l->n++;
}

static void list_push_tail(clist_t *l, pconn_t *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail) l->tail->next = c; else l->head = c;
    l->tail = c;
    l->n++;
}

/* The one place a connection changes state (pool->mu held). `now` stamps the
 * new state; `why` is counted when a connection that was open leaves the
 * pool (pass -1 for a failed open, which never was a connection). */
static void set_state(gp_pool_t *p, pconn_t *c, conn_state_t to, int64_t now, int why)
{
    clist_t *from = list_of(p, c->state);
    if (from)
        list_unlink(from, c);
    c->state = to;
    switch (to) {
    case CS_OPENING:
        list_push_tail(&p->opening, c);
        break;
    case CS_IDLE:
        c->idle_since_ns = now;
        list_push_head(&p->idle, c); /* LIFO: the warmest connection is reused first */
        break;
    case CS_LEASED:
        c->leased_ns = now;
        c->leak_reported = false;
        list_push_tail(&p->leased, c);
        break;
    case CS_GONE:
        if (why >= 0 && why < GP_CLOSE_REASON_COUNT_)
            p->closed_by[why]++;
        if (why == GP_CLOSE_BROKEN || why == GP_CLOSE_VALIDATION)
            atomic_fetch_add(&p->tenant_cache->epoch, 1); /* the server may have lost anchors: publish again */
        break;
    case CS_NEW:
        break;
    }
}

/* The connection this thread released last, as a hint only: it is compared
 * with the members of the idle list, never dereferenced, so a stale hint
 * (closed connection, another pool) is harmless. */
static _Thread_local __attribute__((tls_model("initial-exec"))) struct {
    const gp_pool_t *pool;
    const pconn_t *conn;
} last_released;

/* The fairness key this thread used last (most threads keep to one
 * label, or serve one tenant for a while): valid while the table's
 * generation has not moved, so the lookup is one comparison of the label. */
static _Thread_local __attribute__((tls_model("initial-exec"))) struct {
    uint64_t pool_id; /* not the pool's address: a new pool may reuse a freed one's */
    gp__fair_key_t *key;
    uint64_t gen;
} last_key;
static _Atomic uint64_t pool_ids;

/* The key of label[0..len) (pool->mu held). */
static gp__fair_key_t *key_of(gp_pool_t *p, const char *label, size_t len, int64_t now)
{
    if (last_key.pool_id == p->id && last_key.gen == p->fair.gen && gp__fair_same(last_key.key, label, len))
        return last_key.key;
    gp__fair_key_t *k = gp__fair_key(&p->fair, label, len, gp__fair_hash(label, len), now);
    last_key.pool_id = p->id;
    last_key.key = k;
    last_key.gen = p->fair.gen;
    return k;
}

/* How far down the idle list a thread looks for its own last connection. */
#define AFFINITY_SCAN 8

/* The idle connection to hand out: the calling thread's last one when it is
 * among the most recently released (so that client threads and server
 * backends stay paired, which saves the scheduler cross-core wake-ups),
 * otherwise the most recently released (LIFO). */
static pconn_t *idle_pick(gp_pool_t *p)
{
    if (last_released.pool == p) {
        int k = 0;
        for (pconn_t *c = p->idle.head; c && k < AFFINITY_SCAN; c = c->next, k++)
            if (c == last_released.conn)
                return c;
    }
    return p->idle.head;
}

static int total(const gp_pool_t *p) { return p->opening.n + p->idle.n + p->leased.n; }

/* Should the maintenance thread open a connection (ignoring backoff)? */
static bool need_open(const gp_pool_t *p)
{
    int t = total(p);
    if (p->closed || t >= p->max)
        return false;
    return t < p->min || p->waiters.n > p->opening.n;
}

static void waiter_remove(gp_pool_t *p, waiter_t *w)
{
    if (w->prev) w->prev->next = w->next; else p->waiters.head = w->next;
    if (w->next) w->next->prev = w->prev; else p->waiters.tail = w->prev;
    w->prev = w->next = NULL;
    p->waiters.n--;
    gp__fair_dequeue(&p->fair, w->key, &w->node);
}

static void waiter_serve(gp_pool_t *p, waiter_t *w, pconn_t *c, gp_status_t st)
{
    waiter_remove(p, w);
    w->conn = c;
    w->status = st;
    w->done = true;
    pthread_cond_signal(&w->cv);
}

/* The waiter to serve next: with fairness, the oldest of the key with the
 * least recent service (pool_fair.h); without, the oldest of all. */
static waiter_t *next_waiter(gp_pool_t *p, int64_t now)
{
    if (!p->fair_on || !p->waiters.head)
        return p->waiters.head;
    gp__fair_node_t *n = gp__fair_next(&p->fair, p->share_cap, now);
    return n ? (waiter_t *)(void *)((char *)n - offsetof(waiter_t, node)) : p->waiters.head;
}

/* Lease c to its new holder's key (pool->mu held; c already LEASED). */
static void key_handout(gp_pool_t *p, pconn_t *c, gp__fair_key_t *k, const char *site, int64_t wait_ns)
{
    c->key = k;
    c->site = site;
    gp__fair_handout(&p->fair, k, c->leased_ns, wait_ns);
}

/* A usable connection became available (released clean, or just opened):
 * hand it to the next waiter, or make it idle. pool->mu held. */
static void offer(gp_pool_t *p, pconn_t *c, int64_t now)
{
    waiter_t *w = next_waiter(p, now);
    if (w) {
        set_state(p, c, CS_LEASED, now, -1);
        key_handout(p, c, w->key, w->site, now - w->t0);
        waiter_serve(p, w, c, GP_OK);
    } else {
        set_state(p, c, CS_IDLE, now, -1);
    }
}

/* Close a connection that is out of the pool (GONE, or never added). No
 * lock: this is I/O. */
static void finalize(pconn_t *c)
{
    if (!c)
        return;
    if (c->conn.query_state && c->conn.query_state_free)
        c->conn.query_state_free(c->conn.query_state);
    PQfinish(c->conn.pg);
    free(c);
}

/* GONE connections waiting to be finalized outside the lock, chained by `next`. */
static void chain(pconn_t **head, pconn_t *c)
{
    c->next = *head;
    *head = c;
}

static void finalize_chain(pconn_t *c)
{
    while (c) {
        pconn_t *next = c->next;
        finalize(c);
        c = next;
    }
}

/* ---- creation and teardown ---------------------------------------------------- */

static void destroy(gp_pool_t *p)
{
    gp__fair_free(&p->fair);
    pthread_cond_destroy(&p->maint_cv);
    pthread_cond_destroy(&p->close_cv);
    pthread_condattr_destroy(&p->cattr);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->oneshots.mu);
    gp_hist_free(p->wait_hist);
    gp_hist_free(p->hold_hist);
    gp_hist_free(p->connect_hist);
    gp_hist_free(p->stmt_stats.duration);
    for (size_t i = 0; i < sizeof p->strings / sizeof *p->strings; i++) {
        if (p->strings[i]) {
            volatile char *s = p->strings[i]; /* may be a password */
            while (*s)
                *s++ = 0;
            free(p->strings[i]);
        }
    }
    memset(&p->params, 0, sizeof p->params);
    gp__wipe(&p->tenant_key, sizeof p->tenant_key);
    if (p->tenant_cache) {
        pthread_mutex_destroy(&p->tenant_cache->mu);
        gp__wipe(p->tenant_cache, sizeof *p->tenant_cache);
        free(p->tenant_cache);
    }
    gp__read_state_free(p->rstate);
    free(p);
}

/* The pool may be freed once close() has returned, the maintenance thread
 * has stopped and every lease is back. pool->mu held. */
static bool freeable(const gp_pool_t *p)
{
    return p->handle_dropped && !p->maint_running && p->leased.n == 0 && p->opening.n == 0 && p->sleepers == 0 &&
           atomic_load(&p->oneshot_users) == 0;
}

/* Whether this caller frees the pool: freeable, and nobody else decided
 * to already. pool->mu held. */
static bool claim_free(gp_pool_t *p)
{
    if (!freeable(p) || p->freeing)
        return false;
    p->freeing = true;
    return true;
}

gp_status_t gp__pool_enter(gp_pool_t *p)
{
    atomic_fetch_add(&p->oneshot_users, 1);
    if (!atomic_load(&p->closing))
        return GP_OK;
    gp__pool_leave(p);
    return GP_ERR_CLOSED;
}

void gp__pool_leave(gp_pool_t *p)
{
    if (atomic_fetch_sub(&p->oneshot_users, 1) != 1 || !atomic_load(&p->closing))
        return;
    pthread_mutex_lock(&p->mu);
    bool free_pool = claim_free(p);
    pthread_mutex_unlock(&p->mu);
    if (free_pool)
        destroy(p);
}

static bool copy_str(gp_pool_t *p, size_t *k, const char **field)
{
    if (!*field)
        return true;
    char *s = strdup(*field);
    if (!s)
        return false;
    p->strings[(*k)++] = s;
    *field = s;
    return true;
}

static void *maint_main(void *arg);

/* The read pool of p (DATABASE_READ_URL): the same settings, its own URL,
 * its connections knowing p as their writer. */
static gp_status_t open_read_pool(gp_pool_t *p, const gp_config_t *cfg, gp_error_t *err)
{
    gp_config_t rc = *cfg;
    rc.db.url = cfg->db.read_url;
    rc.db.read_url = NULL;
    rc.db.host = NULL; /* where the standbys are is the read URL's to say */
    rc.db.port = 0;
    rc.db.migration_url = NULL;
    if (!(p->rstate = gp__read_state_new())) {
        set_error(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, 0, "out of memory creating the read pool");
        return GP_ERR_NOMEM;
    }
    gp_status_t st = gp__pool_create_read(&rc, p, &p->read, err);
    if (st != GP_OK && err) {
        char msg[sizeof err->message];
        snprintf(msg, sizeof msg, "%s", err->message);
        snprintf(err->message, sizeof err->message, "DATABASE_READ_URL: %s", msg);
    }
    return st;
}

gp_status_t gp_pool_create(const gp_config_t *cfg, gp_pool_t **out, gp_error_t *err)
{
    return gp__pool_create_read(cfg, NULL, out, err);
}

gp_status_t gp__pool_create_read(const gp_config_t *cfg, gp_pool_t *writer, gp_pool_t **out, gp_error_t *err)
{
    gp_error_clear(err);
    if (out)
        *out = NULL;
    if (!cfg || !out) {
        set_error(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, 0, "gp_pool_create: cfg and out must not be NULL");
        return GP_ERR_INVALID;
    }
    char msg[GP_ERRBUF_SIZE] = "";
    if (gp_config_validate(cfg, msg, sizeof msg) != GP_OK) {
        size_t n = strlen(msg);
        while (n && msg[n - 1] == '\n')
            msg[--n] = 0;
        set_error(err, GP_ERR_CONFIG, GP_ECLASS_CLIENT, 0, "%s", msg);
        return GP_ERR_CONFIG;
    }
    gp_pool_t *p = calloc(1, sizeof *p);
    if (!p)
        goto nomem;
    p->db = cfg->db;
    p->db.migration_url = NULL;
    p->db.read_url = NULL;
    p->writer = writer;
    p->txpooler = cfg->db.pooler && strcmp(cfg->db.pooler, "transaction") == 0;
    if (p->txpooler) /* unnamed statements only */
        p->db.statement_cache = 0;
    gp__tenant_key_decode(cfg->db.tenant_key, cfg->db.tenant_token_ttl_ms, &p->tenant_key); /* validated above */
    p->db.tenant_key = p->db.tenant_key_previous = p->db.tenant_key_file = NULL;
    if (!(p->tenant_cache = calloc(1, sizeof *p->tenant_cache))) {
        gp__wipe(&p->tenant_key, sizeof p->tenant_key);
        free(p);
        goto nomem;
    }
    pthread_mutex_init(&p->tenant_cache->mu, NULL);
    atomic_init(&p->tenant_cache->epoch, 0);
    size_t k = 0;
    if (!copy_str(p, &k, &p->db.url) || !copy_str(p, &k, &p->db.host) || !copy_str(p, &k, &p->db.name) ||
        !copy_str(p, &k, &p->db.user) || !copy_str(p, &k, &p->db.password) || !copy_str(p, &k, &p->db.sslmode) ||
        !copy_str(p, &k, &p->db.application_name))
        goto nomem_free;
    if (gp__pg_params(&p->db, false, &p->params, msg, sizeof msg) != GP_OK) {
        set_error(err, GP_ERR_CONFIG, GP_ECLASS_CLIENT, 0, "%s", msg);
        pthread_mutex_init(&p->mu, NULL); /* destroy() expects initialised primitives */
        pthread_mutex_init(&p->oneshots.mu, NULL);
        pthread_condattr_init(&p->cattr);
        pthread_cond_init(&p->maint_cv, NULL);
        pthread_cond_init(&p->close_cv, NULL);
        destroy(p);
        return GP_ERR_CONFIG;
    }
    gp_config_db_display(&p->db, p->display, sizeof p->display);
    p->min = cfg->db.pool_min;
    p->max = cfg->db.pool_max;
    p->acquire_timeout_ms = cfg->db.acquire_timeout_ms;
    p->idle_timeout_ns = (int64_t)cfg->db.idle_timeout_ms * 1000000LL;
    p->max_lifetime_ns = (int64_t)cfg->db.max_lifetime_ms * 1000000LL;
    p->validate_after_ns = (int64_t)cfg->db.validate_after_ms * 1000000LL;
    p->leak_threshold_ns = (int64_t)cfg->db.leak_threshold_ms * 1000000LL;
    gp__fair_init(&p->fair);
    p->id = atomic_fetch_add(&pool_ids, 1) + 1;
    p->fair_on = cfg->db.tenant_fair != 0;
    p->share_cap = (p->max * cfg->db.tenant_max_share_pct + 99) / 100;
    if (p->share_cap < 1)
        p->share_cap = 1;
    p->max_waiting = cfg->db.tenant_max_waiting > 0 ? cfg->db.tenant_max_waiting : 4 * p->max;
    if (cfg->db.tenant_max_waiting <= 0 && p->max_waiting < 16)
        p->max_waiting = 16;
    atomic_init(&p->closing, false);
    p->wait_hist = gp_hist_new();
    p->hold_hist = gp_hist_new();
    p->connect_hist = gp_hist_new();
    p->stmt_stats.duration = gp_hist_new();
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->oneshots.mu, NULL);
    /* Automatic pipelining of one-shots: not through a transaction pooler,
     * which may hand each unit (a transaction) to another server
     * connection; not in a read pool (its reads are READ ONLY
     * transactions of their own). */
    p->oneshots.batch = p->txpooler || writer ? 0 : cfg->db.pipeline_batch;
    p->oneshots.max_leaders = p->max;
    p->oneshots.max_waiting = p->max_waiting;
    p->oneshots.query_timeout_ms = cfg->db.query_timeout_ms;
    p->oneshots.statement_timeout_ms = cfg->db.statement_timeout_ms;
    pthread_condattr_init(&p->cattr);
    pthread_condattr_setclock(&p->cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->maint_cv, &p->cattr);
    pthread_cond_init(&p->close_cv, &p->cattr);
    if (!p->wait_hist || !p->hold_hist || !p->connect_hist || !p->stmt_stats.duration) {
        destroy(p);
        goto nomem;
    }
    p->maint_running = true;
    if (pthread_create(&p->maint, NULL, maint_main, p) != 0) {
        destroy(p);
        set_error(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, 0, "cannot start the pool's maintenance thread");
        return GP_ERR_NOMEM;
    }
    gp__log(GP_LOG_DEBUG, "pool", "created for %s (min %d, max %d)", p->display, p->min, p->max);
    if (cfg->db.read_url && !p->writer) {
        gp_status_t st = open_read_pool(p, cfg, err);
        if (st != GP_OK) {
            gp_pool_close(p, 0);
            return st;
        }
    } else if (!p->writer && !(p->rstate = gp__read_state_new())) { /* reads counted without a read pool too */
        gp_pool_close(p, 0);
        set_error(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, 0, "out of memory creating the pool");
        return GP_ERR_NOMEM;
    }
    *out = p;
    return GP_OK;
nomem_free:
    for (size_t i = 0; i < k; i++)
        free(p->strings[i]);
    gp__wipe(&p->tenant_key, sizeof p->tenant_key);
    pthread_mutex_destroy(&p->tenant_cache->mu);
    free(p->tenant_cache);
    free(p);
nomem:
    set_error(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, 0, "out of memory creating the pool");
    return GP_ERR_NOMEM;
}

/* ---- acquire --------------------------------------------------------------------- */


/* Wait for the server's reply to the empty query, until deadline_ns. */
static bool await_result(PGconn *pg, int64_t deadline_ns)
{
    int fd = PQsocket(pg);
    while (PQisBusy(pg)) {
        int64_t left = deadline_ns - gp__now_ns();
        if (left <= 0 || fd < 0)
            return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)((left + 999999) / 1000000));
        if (r < 0 && errno != EINTR)
            return false;
        if (r > 0 && !PQconsumeInput(pg))
            return false;
    }
    return true;
}

/* Is a connection that sat idle still usable? First a non-blocking look for
 * anything the server sent while it was idle (a terminated backend leaves a
 * FATAL message and EOF there), then a round trip with an empty query,
 * bounded by the caller's deadline. */
static bool validate(PGconn *pg, int64_t deadline_ns)
{
    int fd = PQsocket(pg);
    if (fd < 0 || PQstatus(pg) != CONNECTION_OK)
        return false;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) > 0) {
        if (!PQconsumeInput(pg) || PQstatus(pg) != CONNECTION_OK)
            return false;
        PGnotify *n;
        while ((n = PQnotifies(pg)))
            PQfreemem(n);
    }
    if (!PQsendQuery(pg, ""))
        return false;
    bool ok = true;
    for (;;) {
        if (!await_result(pg, deadline_ns))
            return false; /* the connection is mid-query: it will be discarded */
        PGresult *r = PQgetResult(pg);
        if (!r)
            break;
        if (PQresultStatus(r) != PGRES_EMPTY_QUERY)
            ok = false;
        PQclear(r);
    }
    return ok && PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) == PQTRANS_IDLE;
}

/* How long a validation may wait for its round trip: half of what is left
 * of the acquire's wait, and at most the connect timeout (or the query
 * timeout when that is set and shorter). A connection whose server went
 * away without a word (a firewall or NAT dropped the idle flow: half-open,
 * nothing to read, nothing ever answers) then costs at most half the
 * caller's wait: the rest goes to another connection, or a new one. */
static int64_t validation_deadline(const gp_pool_t *p, int64_t now, int64_t acquire_deadline)
{
    int64_t bound = (int64_t)p->db.connect_timeout_ms * 1000000LL;
    if (p->db.query_timeout_ms > 0 && (int64_t)p->db.query_timeout_ms * 1000000LL < bound)
        bound = (int64_t)p->db.query_timeout_ms * 1000000LL;
    int64_t half = (acquire_deadline - now) / 2;
    if (half < bound)
        bound = half;
    return now + bound;
}

static void timeout_error(gp_pool_t *p, int timeout_ms, gp_error_t *err)
{
    if (!err)
        return;
    set_error(err, GP_ERR_TIMEOUT, GP_ECLASS_TIMEOUT, 1,
              "no connection available within %d ms (pool max %d: %d leased, %d opening, %d waiting)", timeout_ms,
              p->max, p->leased.n, p->opening.n, p->waiters.n);
    if (p->last_error.status != GP_OK)
        gp__bufappend(err->message, sizeof err->message, "; last connection error: %s", p->last_error.message);
}

gp_status_t gp_pool_acquire(gp_pool_t *p, const char *label, int timeout_ms, gp_conn_t **out, gp_error_t *err)
{
    return gp_pool_acquire_at(p, label, NULL, timeout_ms, out, err);
}

bool gp__pool_try_acquire(gp_pool_t *p, const char *label, const char *site, gp_conn_t **out)
{
    *out = NULL;
    int64_t t0 = gp__now_ns();
    size_t label_len = gp__fair_len(label);
    if (pthread_mutex_trylock(&p->mu) != 0)
        return false; /* contended: the caller queues instead */
    pconn_t *c = p->closed ? NULL : idle_pick(p);
    if (!c || (c->expires_ns && t0 >= c->expires_ns) || t0 - c->idle_since_ns >= p->validate_after_ns) {
        pthread_mutex_unlock(&p->mu); /* (one due for a check or expired: left to gp_pool_acquire) */
        return false;
    }
    gp__fair_key_t *key = key_of(p, label, label_len, t0);
    set_state(p, c, CS_LEASED, t0, -1);
    p->acquires++;
    key_handout(p, c, key, site, 0);
    pthread_mutex_unlock(&p->mu);
    gp_hist_record(p->wait_hist, 0);
    *out = &c->conn;
    return true;
}

gp_status_t gp_pool_acquire_at(gp_pool_t *p, const char *label, const char *site, int timeout_ms, gp_conn_t **out,
                               gp_error_t *err)
{
    if (out)
        *out = NULL;
    if (!p || !out) {
        set_error(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, 0, "gp_pool_acquire: pool and out must not be NULL");
        return GP_ERR_INVALID;
    }
    if (timeout_ms < 0)
        timeout_ms = p->acquire_timeout_ms;
    int64_t t0 = gp__now_ns();
    int64_t deadline = t0 + (int64_t)timeout_ms * 1000000LL;
    size_t label_len = gp__fair_len(label); /* outside the lock: LABEL_MAX == GP__FAIR_NAME_MAX */
    /* Uncontended: the lock is free, so the wait is the few ns until the
     * hand-out below; one clock read serves the lease too. */
    bool contended = pthread_mutex_trylock(&p->mu) != 0;
    if (contended)
        pthread_mutex_lock(&p->mu);
    gp__fair_key_t *key = key_of(p, label, label_len, t0);
    for (;;) {
        if (p->closed) {
            p->acquire_errors++;
            pthread_mutex_unlock(&p->mu);
            set_error(err, GP_ERR_CLOSED, GP_ECLASS_CLIENT, 0, "the pool is closed");
            return GP_ERR_CLOSED;
        }
        pconn_t *c = idle_pick(p);
        if (c) {
            /* Fast path. Waiters exist only while nothing is idle, so taking
             * an idle connection never jumps the queue. */
            bool expired = c->expires_ns && t0 >= c->expires_ns;
            bool check = t0 - c->idle_since_ns >= p->validate_after_ns;
            set_state(p, c, CS_LEASED, t0, -1);
            if (!expired && !check) {
                p->acquires++;
                key_handout(p, c, key, site, 0);
                pthread_mutex_unlock(&p->mu);
                gp_hist_record(p->wait_hist, contended ? gp__now_ns() - t0 : 0);
                *out = &c->conn;
                return GP_OK;
            }
            pthread_mutex_unlock(&p->mu);
            bool ok = !expired && validate(c->conn.pg, validation_deadline(p, t0, deadline));
            pthread_mutex_lock(&p->mu);
            if (ok) {
                p->acquires++;
                key_handout(p, c, key, site, gp__now_ns() - t0);
                pthread_mutex_unlock(&p->mu);
                gp_hist_record(p->wait_hist, gp__now_ns() - t0);
                *out = &c->conn;
                return GP_OK;
            }
            set_state(p, c, CS_GONE, gp__now_ns(), expired ? GP_CLOSE_LIFETIME : GP_CLOSE_VALIDATION);
            pthread_cond_signal(&p->maint_cv); /* refill */
            pthread_mutex_unlock(&p->mu);
            if (!expired)
                gp__log(GP_LOG_INFO, "pool", "discarded an idle connection that failed validation");
            finalize(c);
            pthread_mutex_lock(&p->mu);
            continue;
        }

        if (gp__now_ns() >= deadline) {
            p->acquire_timeouts++;
            timeout_error(p, timeout_ms, err);
            pthread_mutex_unlock(&p->mu);
            return GP_ERR_TIMEOUT;
        }
        /* One key may not queue without bound while others use the pool:
         * over DATABASE_TENANT_MAX_WAITING it is told at once. */
        if (p->fair_on && key->waiting >= p->max_waiting &&
            (p->leased.n > key->held || p->waiters.n > key->waiting)) {
            gp__fair_throttled(&p->fair, key);
            p->acquire_errors++;
            set_error(err, GP_ERR_BUSY, GP_ECLASS_THROTTLED, 1,
                      "'%s' already has %d callers waiting for a connection (DATABASE_TENANT_MAX_WAITING = %d) "
                      "while others use the pool (max %d: %d leased); retry later",
                      key->name, key->waiting, p->max_waiting, p->max, p->leased.n);
            pthread_mutex_unlock(&p->mu);
            return GP_ERR_BUSY;
        }
        waiter_t w = {.status = GP_OK, .key = key, .site = site, .t0 = t0};
        pthread_cond_init(&w.cv, &p->cattr);
        w.prev = p->waiters.tail;
        if (p->waiters.tail) p->waiters.tail->next = &w; else p->waiters.head = &w;
        p->waiters.tail = &w;
        p->waiters.n++;
        gp__fair_enqueue(&p->fair, key, &w.node);
        if (need_open(p))
            pthread_cond_signal(&p->maint_cv);
        struct timespec abs = mono_ts(deadline);
        p->sleepers++; /* the pool outlives this wait, even when it is closed meanwhile */
        while (!w.done) {
            if (pthread_cond_timedwait(&w.cv, &p->mu, &abs) == ETIMEDOUT && !w.done) {
                waiter_remove(p, &w);
                gp__fair_timed_out(key);
                w.status = GP_ERR_TIMEOUT;
                break;
            }
        }
        pthread_cond_destroy(&w.cv);
        p->sleepers--;
        if (w.conn) {
            c = w.conn;
            p->acquires++;
            pthread_mutex_unlock(&p->mu);
            gp_hist_record(p->wait_hist, gp__now_ns() - t0);
            *out = &c->conn;
            return GP_OK;
        }
        if (w.status == GP_ERR_TIMEOUT) {
            p->acquire_timeouts++;
            timeout_error(p, timeout_ms, err);
        } else {
            p->acquire_errors++;
            if (w.status == GP_ERR_CLOSED) {
                set_error(err, GP_ERR_CLOSED, GP_ECLASS_CLIENT, 0, "the pool was closed while waiting");
            } else if (err) {
                *err = p->last_error; /* the open that failed this waiter, or a later one */
                if (err->status == GP_OK)
                    set_error(err, w.status, GP_ECLASS_CONNECTION, 1, "cannot connect to %s", p->display);
            }
        }
        gp_status_t st = w.status;
        bool free_pool = claim_free(p); /* closed meanwhile, and this was the last thing it waited for */
        pthread_mutex_unlock(&p->mu);
        if (free_pool)
            destroy(p);
        return st;
    }
}

/* ---- bounded waits for the server ------------------------------------------------------- */

int gp__deadline_ms(const gp_conn_t *conn)
{
    return conn->tx_query_timeout_ms > 0 ? conn->tx_query_timeout_ms : conn->query_timeout_ms;
}

const char *gp__deadline_source(const gp_conn_t *conn)
{
    return conn->tx_query_timeout_ms > 0 ? "the transaction's query_timeout_ms" : "DATABASE_QUERY_TIMEOUT";
}

void gp__arm_deadline(gp_conn_t *conn)
{
    int ms = gp__deadline_ms(conn);
    conn->deadline_ns = ms > 0 ? gp__now_ns() + (int64_t)ms * 1000000 : 0;
}

PGresult *gp__get_result(gp_conn_t *conn)
{
    PGconn *pg = conn->pg;
    if (conn->timed_out)
        return NULL;
    if (conn->deadline_ns) {
        int fd = PQsocket(pg);
        while (fd >= 0 && PQisBusy(pg)) {
            int64_t left = conn->deadline_ns - gp__now_ns();
            if (left <= 0) {
                conn->timed_out = conn->discard = true;
                gp__log_fields_t f = {.klass = GP_ECLASS_CONNECTION, .status = GP_ERR_TIMEOUT,
                                      .duration_ns = (int64_t)gp__deadline_ms(conn) * 1000000};
                if (gp__deadline_ms(conn) > 0)
                    gp__logf(&f, GP_LOG_WARN, "pool", "no answer from the server within %s (%d ms); the connection "
                             "will be closed", gp__deadline_source(conn), gp__deadline_ms(conn));
                else /* a bound of the library's own (read routing's checks on a standby) */
                    gp__logf(&f, GP_LOG_WARN, "pool", "no answer from the server within the library's bound for "
                             "this check; the connection will be closed");
                return NULL;
            }
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int r = poll(&pfd, 1, (int)((left + 999999) / 1000000));
            if (r < 0 && errno != EINTR)
                break; /* PQgetResult reports the connection's state */
            if (r > 0 && !PQconsumeInput(pg))
                break;
        }
    }
    return PQgetResult(pg);
}

/* Collect every result of what was sent, as PQexec does. */
static PGresult *collect(gp_conn_t *conn)
{
    PGresult *keep = NULL, *r;
    while ((r = gp__get_result(conn))) {
        ExecStatusType rs = PQresultStatus(r);
        bool failed = rs == PGRES_FATAL_ERROR || rs == PGRES_BAD_RESPONSE;
        if (!keep || (failed && PQresultStatus(keep) != PGRES_FATAL_ERROR &&
                      PQresultStatus(keep) != PGRES_BAD_RESPONSE)) {
            PQclear(keep);
            keep = r;
        } else if (PQresultStatus(keep) == PGRES_FATAL_ERROR || PQresultStatus(keep) == PGRES_BAD_RESPONSE) {
            PQclear(r); /* keep the first failure */
        } else {
            PQclear(keep);
            keep = r;
        }
        if (rs == PGRES_COPY_IN || rs == PGRES_COPY_OUT || rs == PGRES_COPY_BOTH)
            break; /* as PQexec: the caller is in COPY now */
    }
    if (conn->timed_out) {
        PQclear(keep);
        return NULL;
    }
    return keep;
}

PGresult *gp__exec(gp_conn_t *conn, const char *sql)
{
    if (conn->timed_out)
        return NULL;
    if (!conn->deadline_ns)
        return PQexec(conn->pg, sql);
    return PQsendQuery(conn->pg, sql) ? collect(conn) : NULL;
}

PGresult *gp__exec_params(gp_conn_t *conn, const char *sql, int n, const Oid *types, const char *const *values,
                          const int *lengths, const int *formats, int result_format)
{
    if (conn->timed_out)
        return NULL;
    if (!conn->deadline_ns)
        return PQexecParams(conn->pg, sql, n, types, values, lengths, formats, result_format);
    return PQsendQueryParams(conn->pg, sql, n, types, values, lengths, formats, result_format) ? collect(conn) : NULL;
}

PGresult *gp__exec_prepared(gp_conn_t *conn, const char *name, int n, const char *const *values, const int *lengths,
                            const int *formats, int result_format)
{
    if (conn->timed_out)
        return NULL;
    if (!conn->deadline_ns)
        return PQexecPrepared(conn->pg, name, n, values, lengths, formats, result_format);
    return PQsendQueryPrepared(conn->pg, name, n, values, lengths, formats, result_format) ? collect(conn) : NULL;
}

PGresult *gp__prepare(gp_conn_t *conn, const char *name, const char *sql, int n, const Oid *types)
{
    if (conn->timed_out)
        return NULL;
    if (!conn->deadline_ns)
        return PQprepare(conn->pg, name, sql, n, types);
    return PQsendPrepare(conn->pg, name, sql, n, types) ? collect(conn) : NULL;
}

/* ---- release ---------------------------------------------------------------------- */

static bool exec_ok(gp_conn_t *conn, const char *sql)
{
    PGconn *pg = conn->pg;
    PGresult *r = gp__exec(conn, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        gp_error_t e;
        gp__error_from_pg(pg, r, &e);
        gp__log_fields_t f = gp__log_fields_of(&e);
        gp__logf(&f, GP_LOG_INFO, "pool", "%s on release failed (%s%s%s); discarding the connection", sql, e.message,
                 e.sqlstate[0] ? ", SQLSTATE " : "", e.sqlstate);
    }
    PQclear(r);
    return ok;
}

/* ---- session hygiene ------------------------------------------------------------- */

/* Verdicts: 0 clean, 1 not clean, 2 a temporary schema appeared (then
 * the connection's later sweeps look into it). Evaluated left to right;
 * the advisory locks are released whatever the verdict. */
#define SWEEP_ROLE "CURRENT_USER OPERATOR(pg_catalog.<>) SESSION_USER"
#define SWEEP_TEMP_OBJECTS                                                                                   \
    "EXISTS (SELECT FROM pg_catalog.pg_depend"                                                               \
    " WHERE refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass"                \
    "   AND refobjid OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema())"
#define SWEEP_UNLOCK ", pg_catalog.pg_advisory_unlock_all()"

/* Without a temporary schema: no subquery to plan and lock on every call
 * (it would cost a sixth of a small statement's throughput). */
static const char VERDICT_FAST[] =
    "SELECT (CASE WHEN " SWEEP_ROLE " THEN 1"
    " WHEN pg_catalog.pg_my_temp_schema() OPERATOR(pg_catalog.<>) 0::pg_catalog.oid THEN 2 ELSE 0 END)::pg_catalog.int4"
    SWEEP_UNLOCK;
static const char VERDICT_TEMP[] =
    "SELECT (CASE WHEN " SWEEP_ROLE " OR " SWEEP_TEMP_OBJECTS " THEN 1 ELSE 0 END)::pg_catalog.int4" SWEEP_UNLOCK;

static const char *const sweep_release[GP__SWEEP_RELEASE_COUNT] = {
    "RESET ALL",
    "CLOSE ALL",
    "UNLISTEN *",
    "SELECT (CASE WHEN " SWEEP_ROLE " OR " SWEEP_TEMP_OBJECTS
    " OR EXISTS (SELECT FROM pg_catalog.pg_prepared_statements WHERE from_sql)"
    " OR EXISTS (SELECT FROM pg_catalog.pg_cursors WHERE name OPERATOR(pg_catalog.<>) '')"
    " THEN 1 ELSE 0 END)::pg_catalog.int4" SWEEP_UNLOCK,
};

const char *gp__sweep_sql(const gp_conn_t *conn, int i)
{
    if (i == 0)
        return "RESET ALL";
    return conn->temp_schema ? VERDICT_TEMP : VERDICT_FAST;
}

const char *gp__sweep_release_sql(int i) { return sweep_release[i]; }

/* The refusing verdicts: 1 / 0 inside the library's own statement. The
 * divisor is not a constant, so the planner cannot fold it. */
static const char VERDICT_REFUSE_FAST[] =
    "SELECT 1 OPERATOR(pg_catalog./) (CASE WHEN " SWEEP_ROLE
    " OR pg_catalog.pg_my_temp_schema() OPERATOR(pg_catalog.<>) 0::pg_catalog.oid THEN 0 ELSE 1 END)" SWEEP_UNLOCK;
static const char VERDICT_REFUSE_TEMP[] =
    "SELECT 1 OPERATOR(pg_catalog./) (CASE WHEN " SWEEP_ROLE " OR " SWEEP_TEMP_OBJECTS " THEN 0 ELSE 1 END)"
    SWEEP_UNLOCK;

const char *gp__sweep_refusing_sql(const gp_conn_t *conn)
{
    return conn->temp_schema ? VERDICT_REFUSE_TEMP : VERDICT_REFUSE_FAST;
}

bool gp__sweep_apply(gp_conn_t *conn, const PGresult *verdict)
{
    int v = 1;
    if (PQresultStatus(verdict) == PGRES_TUPLES_OK && PQntuples(verdict) == 1 && PQnfields(verdict) >= 1 &&
        !PQgetisnull(verdict, 0, 0)) {
        const char *p = PQgetvalue(verdict, 0, 0);
        if (PQfformat(verdict, 0) == 1 && PQgetlength(verdict, 0, 0) == 4)
            v = (int)(((uint32_t)(unsigned char)p[0] << 24) | ((uint32_t)(unsigned char)p[1] << 16) |
                      ((uint32_t)(unsigned char)p[2] << 8) | (uint32_t)(unsigned char)p[3]);
        else if (PQfformat(verdict, 0) == 0)
            v = atoi(p);
    }
    if (v == 0) {
        if (PQtransactionStatus(conn->pg) == PQTRANS_IDLE)
            conn->tainted = false;
        return true;
    }
    if (v == 2)
        conn->temp_schema = true;
    conn->reset_needed = true;
    return false;
}

/* Drop the query layer's per-connection state (its statement cache): after
 * DISCARD ALL the server has forgotten every prepared statement. */
static void forget_query_state(gp_conn_t *conn)
{
    if (conn->query_state && conn->query_state_free)
        conn->query_state_free(conn->query_state);
    conn->query_state = NULL;
}

/* Make a returned connection fit for the next caller. Returns -1 when it is
 * clean, or the reason to close it. I/O, without the lock. */
static int clean(gp_conn_t *conn)
{
    PGconn *pg = conn->pg;
    gp__arm_deadline(conn); /* a frozen server must not hold the releasing thread either */
    if (PQpipelineStatus(pg) != PQ_PIPELINE_OFF)
        return GP_CLOSE_RESET;
    switch (PQtransactionStatus(pg)) {
    case PQTRANS_IDLE:
        break;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
        if (!exec_ok(conn, conn->txpooler ? GP__TXP_ROLLBACK : "ROLLBACK"))
            return PQstatus(pg) == CONNECTION_OK ? GP_CLOSE_RESET : GP_CLOSE_BROKEN;
        break;
    case PQTRANS_ACTIVE: /* a command still running: cheaper to replace than to cancel and drain */
        return GP_CLOSE_RESET;
    default:
        return GP_CLOSE_BROKEN;
    }
    if (conn->tainted && !conn->reset_needed && !(conn->sweep && conn->query_state && conn->sweep(conn))) {
        if (conn->discard || PQstatus(pg) != CONNECTION_OK)
            return GP_CLOSE_BROKEN;
        if (PQpipelineStatus(pg) != PQ_PIPELINE_OFF)
            return GP_CLOSE_RESET;
        if (PQtransactionStatus(pg) != PQTRANS_IDLE && !exec_ok(conn, conn->txpooler ? GP__TXP_ROLLBACK : "ROLLBACK"))
            return GP_CLOSE_RESET;
        conn->reset_needed = true;
    }
    if (conn->reset_needed) {
        /* The reference reset (PgBouncer's server_reset_query): settings,
         * role, session authorization, cursors, prepared statements,
         * listens, advisory locks, temporary objects, cached plans,
         * sequence state. The statement cache goes with it. */
        forget_query_state(conn);
        if (!exec_ok(conn, "DISCARD ALL"))
            return PQstatus(pg) == CONNECTION_OK ? GP_CLOSE_RESET : GP_CLOSE_BROKEN;
    }
    conn->tainted = conn->reset_needed = false;
    /* Whatever arrived for a LISTEN that is gone now is nobody's. */
    PGnotify *n;
    while ((n = PQnotifies(pg)))
        PQfreemem(n);
    return PQtransactionStatus(pg) == PQTRANS_IDLE ? -1 : GP_CLOSE_RESET;
}

void gp_pool_release(gp_conn_t *conn)
{
    if (!conn)
        return;
    pconn_t *c = conn->priv;
    gp_pool_t *p = c->pool;
    int64_t now = gp__now_ns(), released = now;
    gp_hist_record(p->hold_hist, now - c->leased_ns);
    conn->tx_query_timeout_ms = 0; /* a transaction's own deadline ends with the lease at the latest */
    conn->tx_read_only = false;
    conn->read_lease = false;
    if (conn->txpooler && PQtransactionStatus(conn->pg) == PQTRANS_IDLE && PQpipelineStatus(conn->pg) == PQ_PIPELINE_OFF) {
        /* Every unit of work through a transaction pooler was checked and
         * neutralised before it committed (query_txpooler.c): nothing
         * stays with this client connection, and a reset here would reach
         * whichever server the pooler picks. */
        conn->tainted = false;
        conn->reset_needed = false;
    }
    int why;
    if (conn->discard || PQstatus(conn->pg) != CONNECTION_OK)
        why = GP_CLOSE_BROKEN;
    else if (atomic_load_explicit(&p->closing, memory_order_relaxed))
        why = GP_CLOSE_SHUTDOWN;
    else if (c->expires_ns && now >= c->expires_ns)
        why = GP_CLOSE_LIFETIME;
    else if (PQtransactionStatus(conn->pg) == PQTRANS_IDLE && !conn->tainted && !conn->reset_needed &&
             PQpipelineStatus(conn->pg) == PQ_PIPELINE_OFF)
        why = -1; /* the common case: nothing to clean */
    else {
        why = clean(conn);
        now = gp__now_ns();
    }
    pthread_mutex_lock(&p->mu);
    if (c->key) {
        gp__fair_release(&p->fair, c->key, c->leased_ns, released);
        c->key = NULL;
    }
    if (why < 0 && p->closed)
        why = GP_CLOSE_SHUTDOWN;
    bool free_pool = false;
    if (why < 0) {
        offer(p, c, now);
        last_released.pool = p;
        last_released.conn = c;
    } else {
        set_state(p, c, CS_GONE, now, why);
        if (p->closed) {
            pthread_cond_broadcast(&p->close_cv);
            free_pool = claim_free(p);
        } else {
            pthread_cond_signal(&p->maint_cv); /* replace it if min or a waiter needs one */
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (why >= 0) {
        if (why != GP_CLOSE_SHUTDOWN)
            gp__log(GP_LOG_DEBUG, "pool", "closed a released connection (%s)",
                    gp_close_reason_name((gp_close_reason_t)why));
        finalize(c);
    }
    if (free_pool)
        destroy(p);
}

struct pg_conn *gp_conn_pgconn(gp_conn_t *conn)
{
    if (!conn || conn->txpooler) /* nothing could undo what it left on a server others share */
        return NULL;
    /* Nothing the library can see tells what raw libpq did: reset fully. */
    conn->tainted = conn->reset_needed = true;
    return conn->pg;
}

/* ---- the maintenance thread --------------------------------------------------------- */

static int64_t backoff_ns(int failures)
{
    int shift = failures > 1 ? failures - 1 : 0;
    int64_t d = shift >= 6 ? BACKOFF_CAP_NS : BACKOFF_BASE_NS << shift;
    if (d > BACKOFF_CAP_NS)
        d = BACKOFF_CAP_NS;
    return gp__jitter(d, 0.25);
}

int64_t gp__pool_backoff_ns(int failures) { return backoff_ns(failures); }

/* Server notices and asynchronous errors (a FATAL from a terminated
 * backend arrives as one) go to the log, never to stderr. The query layer
 * may install its own receiver on a leased connection. */
static void notice_to_log(void *arg, const PGresult *res)
{
    (void)arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    gp_log_level_t level = GP_LOG_DEBUG;
    if (sev && strcmp(sev, "WARNING") == 0)
        level = GP_LOG_WARN;
    else if (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0 || strcmp(sev, "ERROR") == 0))
        level = GP_LOG_INFO;
    if (gp__log_enabled(level))
        gp__log(level, "pool", "server %s: %s", sev ? sev : "notice", msg ? msg : "");
}

typedef struct leak {
    char label[LABEL_MAX];
    const char *site;
    int64_t held_ns;
} leak_t;

int gp__pooler_check(PGconn *pg, int64_t deadline_ns, int *server_pid)
{
    *server_pid = 0;
    if (!PQsendQuery(pg, "SELECT pg_catalog.pg_backend_pid()"))
        return -1;
    if (!await_result(pg, deadline_ns))
        return -1; /* mid-query: the caller closes it */
    PGresult *r;
    while ((r = PQgetResult(pg))) {
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            *server_pid = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    if (*server_pid <= 0)
        return -1;
    return *server_pid != PQbackendPID(pg) ? 1 : 0;
}

/* Open one connection in the reserved slot `c` (OPENING), without the lock.
 * Returns with the lock held again. */
static void open_one(gp_pool_t *p, pconn_t *c)
{
    pthread_mutex_unlock(&p->mu);
    int64_t t0 = gp__now_ns();
    PGconn *pg = PQconnectdbParams(p->params.kw, p->params.val, 1);
    int64_t t1 = gp__now_ns();
    gp_error_t e;
    bool ok = pg && PQstatus(pg) == CONNECTION_OK;
    if (pg)
        PQsetNoticeReceiver(pg, notice_to_log, NULL);
    int server_pid = 0, pooler = 0;
    if (ok && !(p->db.pooler && *p->db.pooler))
        pooler = gp__pooler_check(pg, t1 + (int64_t)p->db.connect_timeout_ms * 1000000LL, &server_pid);
    if (pooler < 0) {
        ok = false;
        set_error(&e, GP_ERR_TIMEOUT, GP_ECLASS_CONNECTION, 1,
                  "cannot connect to %s: no answer to the first statement within DATABASE_TIMEOUT", p->display);
        PQfinish(pg);
        pg = NULL;
    } else if (pooler > 0) {
        ok = false;
        set_error(&e, GP_ERR_CONFIG, GP_ECLASS_CLIENT, 0,
                  "%s goes through a connection pooler (the server's backend is %d, the connection says %d): in "
                  "PgBouncer's transaction mode named statements and session state cross between clients unless "
                  "growplate knows; set DATABASE_POOLER=transaction (or session, for a pooler in session mode), "
                  "or point DATABASE_URL at the server",
                  p->display, server_pid, PQbackendPID(pg));
        PQfinish(pg);
        pg = NULL;
    } else if (!ok) {
        char raw[sizeof e.message];
        gp__error_from_connect(pg, &e);
        snprintf(raw, sizeof raw, "%s", e.message);
        snprintf(e.message, sizeof e.message, "cannot connect to %s: %s", p->display, raw);
        PQfinish(pg);
        pg = NULL;
    } else {
        gp_hist_record(p->connect_hist, t1 - t0);
    }
    pthread_mutex_lock(&p->mu);
    if (ok) {
        c->conn.pg = pg;
        c->created_ns = t1;
        c->expires_ns = p->max_lifetime_ns > 0 ? t1 + gp__jitter(p->max_lifetime_ns, LIFETIME_JITTER) : 0;
        p->opened++;
        int failed = p->failures;
        p->failures = 0;
        p->next_attempt_ns = 0;
        gp_error_clear(&p->last_error);
        bool closed = p->closed;
        if (closed)
            set_state(p, c, CS_GONE, t1, GP_CLOSE_SHUTDOWN);
        else
            offer(p, c, t1);
        if (closed || failed) {
            pthread_mutex_unlock(&p->mu);
            if (closed)
                finalize(c);
            if (failed)
                gp__log(GP_LOG_INFO, "pool", "connected to %s again after %d failed attempts", p->display, failed);
            pthread_mutex_lock(&p->mu);
        }
        return;
    }
    set_state(p, c, CS_GONE, t1, -1);
    p->open_failures++;
    bool news = p->failures++ == 0 || strcmp(e.message, p->last_error.message) != 0;
    p->last_error = e;
    p->next_attempt_ns = t1 + backoff_ns(p->failures);
    /* With no connection open, nothing will come back to the waiters before
     * the next attempt: tell them now, with the classified error. */
    if (p->idle.n + p->leased.n == 0)
        while (p->waiters.head)
            waiter_serve(p, p->waiters.head, NULL, e.status);
    pthread_mutex_unlock(&p->mu);
    if (news) /* the first failure, or a different one; not every retry */
        gp__logf(&(gp__log_fields_t){.sqlstate = e.sqlstate, .klass = e.klass, .status = e.status, .duration_ns = -1},
                 GP_LOG_WARN, "pool", "%s (retrying with backoff)", e.message);
    free(c);
    pthread_mutex_lock(&p->mu);
}

/* Has the server closed this idle connection (or sent it a FATAL error)?
 * Never blocks: only what already arrived is read. */
static bool idle_dropped(PGconn *pg)
{
    int fd = PQsocket(pg);
    if (fd < 0 || PQstatus(pg) != CONNECTION_OK)
        return true;
    /* A terminated backend sends a FATAL message, then closes: the second
     * look usually finds the end of the stream right behind the message. */
    for (int look = 0; look < 2; look++) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) <= 0)
            break;
        if (!PQconsumeInput(pg) || PQstatus(pg) != CONNECTION_OK)
            return true;
    }
    PGnotify *n;
    while ((n = PQnotifies(pg)))
        PQfreemem(n);
    return false;
}

static void *maint_main(void *arg)
{
    gp_pool_t *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->closed) {
        int64_t now = gp__now_ns();
        pconn_t *dead = NULL;

        /* Retire expired idle connections, then idle ones beyond min. */
        for (pconn_t *c = p->idle.head, *next; c; c = next) {
            next = c->next;
            if (c->expires_ns && now >= c->expires_ns) {
                set_state(p, c, CS_GONE, now, GP_CLOSE_LIFETIME);
                chain(&dead, c);
            }
        }
        while (p->idle_timeout_ns > 0 && total(p) > p->min && p->idle.tail &&
               now - p->idle.tail->idle_since_ns >= p->idle_timeout_ns) {
            pconn_t *c = p->idle.tail;
            set_state(p, c, CS_GONE, now, GP_CLOSE_IDLE);
            chain(&dead, c);
        }
        /* Idle connections the server dropped (a restart, a terminated
         * backend, a pooler's timeout): the server's goodbye makes the
         * socket readable. A non-blocking look every IDLE_CHECK_NS, so the
         * metrics (and the refill) follow within that bound, not at the
         * next lease. */
        if (now >= p->next_idle_check_ns) {
            p->next_idle_check_ns = now + IDLE_CHECK_NS;
            for (pconn_t *c = p->idle.head, *next; c; c = next) {
                next = c->next;
                if (idle_dropped(c->conn.pg)) {
                    set_state(p, c, CS_GONE, now, GP_CLOSE_BROKEN);
                    chain(&dead, c);
                }
            }
        }

        /* Leak detection: each lease is reported once. */
        leak_t leaks[LEAK_BATCH];
        int nleaks = 0;
        int64_t next_wake = INT64_MAX;
        if (p->leak_threshold_ns > 0) {
            for (pconn_t *c = p->leased.head; c; c = c->next) {
                if (c->leak_reported)
                    continue;
                int64_t due = c->leased_ns + p->leak_threshold_ns;
                if (now >= due && nleaks < LEAK_BATCH) {
                    c->leak_reported = true;
                    p->leaks_reported++;
                    snprintf(leaks[nleaks].label, LABEL_MAX, "%s", c->key ? c->key->name : "");
                    leaks[nleaks].site = c->site;
                    leaks[nleaks++].held_ns = now - c->leased_ns;
                } else if (due < next_wake) {
                    next_wake = due;
                }
            }
            /* Leases taken after this pass are due no earlier than this. */
            int64_t cover = now + (p->leak_threshold_ns / 4 > 1000000 ? p->leak_threshold_ns / 4 : 1000000);
            if (cover < next_wake)
                next_wake = cover;
        }

        if (dead || nleaks) {
            pthread_mutex_unlock(&p->mu);
            finalize_chain(dead);
            for (int i = 0; i < nleaks; i++)
                gp__logf(&(gp__log_fields_t){.duration_ns = leaks[i].held_ns}, GP_LOG_WARN, "pool", "possible leak: connection leased by '%s'%s%s held for %lld ms",
                        leaks[i].label[0] ? leaks[i].label : "(no label)", leaks[i].site ? " at " : "",
                        leaks[i].site ? leaks[i].site : "", (long long)(leaks[i].held_ns / 1000000));
            pthread_mutex_lock(&p->mu);
            continue;
        }

        if (need_open(p)) {
            if (now >= p->next_attempt_ns) {
                pconn_t *c = calloc(1, sizeof *c);
                if (c) {
                    c->pool = p;
                    c->conn.priv = c;
                    c->conn.tenant_key = &p->tenant_key;
                    c->conn.tenant_cache = p->tenant_cache;
                    c->conn.stmt_stats = &p->stmt_stats;
                    c->conn.own_statement_cache = p->db.statement_cache >= 0;
                    c->conn.statement_cache = p->db.statement_cache;
                    c->conn.query_timeout_ms = p->db.query_timeout_ms;
                    c->conn.txpooler = p->txpooler;
                    c->conn.txpooler_timeout_ms = p->txpooler ? p->db.statement_timeout_ms : 0;
                    c->conn.writer = p->writer;
                    set_state(p, c, CS_OPENING, now, -1);
                    open_one(p, c);
                    continue;
                }
                gp__log(GP_LOG_ERROR, "pool", "out of memory opening a connection");
                p->next_attempt_ns = now + BACKOFF_CAP_NS;
            }
            if (p->next_attempt_ns < next_wake)
                next_wake = p->next_attempt_ns;
        }

        /* Sleep until the next thing that is due; on-demand work signals maint_cv. */
        if (p->idle_timeout_ns > 0 && total(p) > p->min && p->idle.tail) {
            int64_t due = p->idle.tail->idle_since_ns + p->idle_timeout_ns;
            if (due < next_wake)
                next_wake = due;
        }
        /* A leased connection may come back before it is reaped or expires:
         * releases do not wake this thread (that would cost the hot path a
         * syscall), so plan for them here. */
        if (p->idle_timeout_ns > 0 && total(p) > p->min && now + p->idle_timeout_ns < next_wake)
            next_wake = now + p->idle_timeout_ns;
        for (pconn_t *c = p->idle.head; c; c = c->next)
            if (c->expires_ns && c->expires_ns < next_wake)
                next_wake = c->expires_ns;
        for (pconn_t *c = p->leased.head; c; c = c->next)
            if (c->expires_ns && c->expires_ns > now && c->expires_ns < next_wake)
                next_wake = c->expires_ns;
        /* (Leased connections count: they come back idle without waking
         * this thread.) */
        if ((p->idle.head || p->leased.head) && p->next_idle_check_ns < next_wake)
            next_wake = p->next_idle_check_ns;
        if (next_wake == INT64_MAX) {
            pthread_cond_wait(&p->maint_cv, &p->mu);
        } else {
            struct timespec abs = mono_ts(next_wake);
            pthread_cond_timedwait(&p->maint_cv, &p->mu, &abs);
        }
    }
    p->maint_running = false;
    pthread_cond_broadcast(&p->close_cv);
    bool free_pool = claim_free(p);
    pthread_mutex_unlock(&p->mu);
    if (free_pool)
        destroy(p);
    return NULL;
}

/* ---- close and metrics ------------------------------------------------------------ */

gp_status_t gp_pool_close(gp_pool_t *p, int wait_ms)
{
    if (!p)
        return GP_OK;
    if (p->read) { /* its connections know this pool as their writer: first */
        gp_pool_close(p->read, wait_ms);
        p->read = NULL;
    }
    pconn_t *dead = NULL;
    pthread_mutex_lock(&p->mu);
    p->closed = true;
    atomic_store(&p->closing, true);
    while (p->waiters.head)
        waiter_serve(p, p->waiters.head, NULL, GP_ERR_CLOSED);
    int64_t now = gp__now_ns();
    while (p->idle.head) {
        pconn_t *c = p->idle.head;
        set_state(p, c, CS_GONE, now, GP_CLOSE_SHUTDOWN);
        chain(&dead, c);
    }
    pthread_cond_signal(&p->maint_cv);
    pthread_mutex_unlock(&p->mu);
    finalize_chain(dead);

    pthread_mutex_lock(&p->mu);
    struct timespec abs = mono_ts(gp__now_ns() + (int64_t)(wait_ms > 0 ? wait_ms : 0) * 1000000LL);
    while ((p->leased.n > 0 || p->maint_running) &&
           pthread_cond_timedwait(&p->close_cv, &p->mu, &abs) != ETIMEDOUT)
        ;
    int left = p->leased.n;
    bool thread_done = !p->maint_running;
    pthread_t th = p->maint; /* p may be freed by a release once unlocked */
    p->handle_dropped = true;
    bool free_pool = claim_free(p);
    pthread_mutex_unlock(&p->mu);
    /* A thread still connecting (a slow or blackholed server) finishes on
     * its own and frees the pool if it is the last user. */
    if (thread_done)
        pthread_join(th, NULL);
    else
        pthread_detach(th);
    if (left)
        gp__log(GP_LOG_WARN, "pool", "closed with %d connection(s) still leased; they are closed when released",
                left);
    if (free_pool)
        destroy(p);
    return left ? GP_ERR_TIMEOUT : GP_OK;
}

const char *gp_close_reason_name(gp_close_reason_t r)
{
    static const char *const names[] = {"idle", "lifetime", "broken", "validation", "reset", "shutdown"};
    return (unsigned)r < GP_CLOSE_REASON_COUNT_ ? names[r] : "unknown";
}

void gp__stmt_stats_record(gp__stmt_stats_t *s, int statements, uint64_t rows, int64_t ns, gp_error_class_t klass)
{
    if (!s)
        return;
    atomic_fetch_add_explicit(&s->statements, (uint64_t)(statements > 0 ? statements : 0), memory_order_relaxed);
    if (klass == GP_ECLASS_NONE)
        atomic_fetch_add_explicit(&s->rows, rows, memory_order_relaxed);
    else if ((unsigned)klass < GP_ECLASS_COUNT_)
        atomic_fetch_add_explicit(&s->failed[klass], 1, memory_order_relaxed);
    gp_hist_record(s->duration, ns);
}

gp_status_t gp_pool_metrics(gp_pool_t *p, gp_pool_metrics_t *out)
{
    if (!p || !out)
        return GP_ERR_INVALID;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&p->mu);
    out->idle = p->idle.n;
    out->leased = p->leased.n;
    out->opening = p->opening.n;
    out->total = total(p);
    out->waiting = p->waiters.n;
    out->min = p->min;
    out->max = p->max;
    out->acquires = p->acquires;
    out->acquire_timeouts = p->acquire_timeouts;
    out->acquire_errors = p->acquire_errors;
    out->opened = p->opened;
    out->open_failures = p->open_failures;
    out->leaks_reported = p->leaks_reported;
    memcpy(out->closed, p->closed_by, sizeof out->closed);
    gp__fair_metrics(&p->fair, gp__now_ns(), out);
    pthread_mutex_unlock(&p->mu);
    gp_hist_latency(p->wait_hist, &out->wait);
    gp_hist_latency(p->hold_hist, &out->hold);
    gp_hist_latency(p->connect_hist, &out->connect);
    out->statements = atomic_load_explicit(&p->stmt_stats.statements, memory_order_relaxed);
    out->rows = atomic_load_explicit(&p->stmt_stats.rows, memory_order_relaxed);
    for (int k = 0; k < GP_ECLASS_COUNT_; k++)
        out->calls_failed[k] = atomic_load_explicit(&p->stmt_stats.failed[k], memory_order_relaxed);
    gp_hist_latency(p->stmt_stats.duration, &out->call);
    gp__read_metrics(p, out->reads, &out->read_lag_ms);
    out->oneshot_units = atomic_load_explicit(&p->oneshots.units, memory_order_relaxed);
    out->oneshot_round_trips = atomic_load_explicit(&p->oneshots.round_trips, memory_order_relaxed);
    out->oneshot_shared = atomic_load_explicit(&p->oneshots.shared, memory_order_relaxed);
    out->oneshot_unknown = atomic_load_explicit(&p->oneshots.unknown, memory_order_relaxed);
    return GP_OK;
}

/* ---- for read routing (pool_read.c) ---------------------------------------------- */

gp_pool_t *gp_pool_read_pool(gp_pool_t *p) { return p ? p->read : NULL; }
gp__read_state_t *gp__pool_rstate(gp_pool_t *p) { return p->rstate; }
int gp__pool_read_max_lag_ms(const gp_pool_t *p) { return p->db.read_max_lag_ms; }
int gp__pool_connect_timeout_ms(const gp_pool_t *p) { return p->db.connect_timeout_ms; }
int gp__pool_acquire_timeout_ms(const gp_pool_t *p) { return p->acquire_timeout_ms; }
gp__oneshot_queue_t *gp__pool_oneshots(gp_pool_t *p) { return &p->oneshots; }

bool gp__pool_unreachable(gp_pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    bool down = p->failures > 0 && p->idle.n == 0;
    pthread_mutex_unlock(&p->mu);
    return down;
}
