/* cache_conn.c — the cache's connections: a bounded pool of blocking hiredis
 * contexts (opened by cache_net.c), the time budget of every call, the
 * circuit breaker (which is also the reconnect backoff), and the pool's
 * health and metrics. */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cache_internal.h"

#define NS_PER_MS 1000000LL

/* ---- errors ---------------------------------------------------------------- */

gp_status_t gp__cache_server_error(gp_cache_t *c, const redisReply *r, gp_error_t *err)
{
    atomic_fetch_add_explicit(&c->cnt->server_errors, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->cnt->errors, 1, memory_order_relaxed);
    return gp__cache_fail(err, GP_ERR_SERVER, GP_ECLASS_INTERNAL, "Redis replied: %.*s",
                          r->str ? (int)(r->len > 400 ? 400 : r->len) : 0, r->str ? r->str : "");
}

/* ---- circuit breaker (every function here runs under c->mu) ----------------- */

typedef enum outcome { OUT_SUCCESS, OUT_FAILURE, OUT_NEUTRAL } outcome_t;

static void set_state(gp_cache_t *c, gp_cache_circuit_t to)
{
    gp_cache_circuit_t from = c->state;
    c->state = to;
    atomic_store(&c->state_pub, (int)to);
    switch (to) {
    case GP_CACHE_CIRCUIT_OPEN:
        atomic_fetch_add(&c->opened, 1);
        gp__log(GP_LOG_WARN, "cache",
                "circuit %s -> open: %s unavailable (%s); calls fail fast with \"cache unavailable\" for %lld ms, "
                "then one probe",
                gp_cache_circuit_name(from), c->display, c->last_error, (long long)c->cooldown_ms);
        break;
    case GP_CACHE_CIRCUIT_HALF_OPEN:
        atomic_fetch_add(&c->half_opened, 1);
        gp__log(GP_LOG_DEBUG, "cache", "circuit open -> half_open: probing %s", c->display);
        break;
    case GP_CACHE_CIRCUIT_CLOSED:
        atomic_fetch_add(&c->closed, 1);
        gp__log(GP_LOG_INFO, "cache", "circuit %s -> closed: %s is back", gp_cache_circuit_name(from), c->display);
        break;
    default:
        break;
    }
}

static void open_circuit(gp_cache_t *c, int64_t now)
{
    c->open_until_ns = now + gp__jitter(c->cooldown_ms * NS_PER_MS, 0.2);
    set_state(c, GP_CACHE_CIRCUIT_OPEN);
}

/* May this call go to the network? Sets *probe when it is the half-open probe. */
static bool admit(gp_cache_t *c, int64_t now, bool *probe)
{
    if (*probe || c->state == GP_CACHE_CIRCUIT_CLOSED)
        return true;
    if (c->state == GP_CACHE_CIRCUIT_OPEN) {
        if (now < c->open_until_ns)
            return false;
        set_state(c, GP_CACHE_CIRCUIT_HALF_OPEN);
    }
    if (c->probe_busy)
        return false;
    c->probe_busy = true;
    *probe = true;
    return true;
}

static void record(gp_cache_t *c, bool probe, outcome_t o)
{
    int64_t now = gp__now_ns();
    if (probe) {
        c->probe_busy = false;
        if (o == OUT_SUCCESS) {
            c->consecutive = 0;
            c->cooldown_ms = c->opt.breaker_cooldown_ms;
            set_state(c, GP_CACHE_CIRCUIT_CLOSED);
        } else if (o == OUT_FAILURE) {
            c->cooldown_ms *= 2;
            if (c->cooldown_ms > c->opt.breaker_max_cooldown_ms)
                c->cooldown_ms = c->opt.breaker_max_cooldown_ms;
            open_circuit(c, now);
        } /* neutral: stay half-open; the next caller probes */
        return;
    }
    if (c->state != GP_CACHE_CIRCUIT_CLOSED)
        return; /* admitted before the circuit opened: the probe decides */
    if (o == OUT_SUCCESS) {
        c->consecutive = 0;
    } else if (o == OUT_FAILURE && ++c->consecutive >= c->opt.breaker_threshold) {
        c->cooldown_ms = c->opt.breaker_cooldown_ms;
        open_circuit(c, now);
    }
}

/* ---- slots ------------------------------------------------------------------- */

/* The only two functions that move a slot between idle, broken and leased. */
static cache_slot_t *slot_take(gp_cache_t *c)
{
    if (c->n_idle)
        return &c->slots[c->idle[--c->n_idle]];
    if (c->n_broken)
        return &c->slots[c->broken[--c->n_broken]];
    return NULL;
}

static void slot_put(gp_cache_t *c, cache_slot_t *s)
{
    if (s->ctx)
        c->idle[c->n_idle++] = s->index;
    else
        c->broken[c->n_broken++] = s->index;
}

static void note_error(gp_cache_t *c, const char *msg)
{
    pthread_mutex_lock(&c->mu);
    snprintf(c->last_error, sizeof c->last_error, "%s", msg);
    pthread_mutex_unlock(&c->mu);
}

static void drop_ctx(gp_cache_t *c, cache_slot_t *s)
{
    if (!s->ctx)
        return;
    gp__redis_close(s->ctx, s->ssl);
    s->ctx = NULL;
    s->ssl = NULL;
    pthread_mutex_lock(&c->mu);
    c->connected--;
    pthread_mutex_unlock(&c->mu);
}

/* ---- replies in the caller's arena ------------------------------------------
 *
 * The cache's connections build their replies with these functions instead
 * of hiredis' defaults: a reply object and its bytes are carved from the
 * arena of the call they answer (the reader's privdata, set by the leader
 * before it reads that call's replies), so a reply costs no malloc() and a
 * call's replies are freed at once. Objects never outlive their arena: a
 * reply half-read when a read fails stays in the reader only until the
 * connection is dropped, which happens at once (freeObject is then a
 * no-op: the arena's owner frees the memory). */

struct cache_arena_block {
    cache_arena_block_t *next;
    _Alignas(16) char data[];
};

#define ARENA_BLOCK 4096

void gp__cache_arena_init(cache_arena_t *a)
{
    a->p = a->first;
    a->left = sizeof a->first;
    a->blocks = NULL;
    a->refused = false;
}

void gp__cache_arena_free(cache_arena_t *a)
{
    while (a->blocks) {
        cache_arena_block_t *b = a->blocks;
        a->blocks = b->next;
        free(b);
    }
    gp__cache_arena_init(a);
}

/* n bytes, 8-aligned, or NULL when out of memory. */
static void *arena_alloc(cache_arena_t *a, size_t n)
{
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + 7) & ~(size_t)7;
    if (n > a->left) {
        size_t room = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        cache_arena_block_t *b = malloc(sizeof *b + room);
        if (!b)
            return NULL;
        b->next = a->blocks;
        a->blocks = b;
        a->p = b->data;
        a->left = room;
    }
    void *p = a->p;
    a->p += n;
    a->left -= n;
    return p;
}


static redisReply *reply_new(const redisReadTask *t, int type, size_t extra, char **extra_out)
{
    cache_arena_t *a = t->privdata;
    redisReply *r = a ? arena_alloc(a, sizeof *r + extra) : NULL;
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    r->type = type;
    if (extra_out)
        *extra_out = (char *)(r + 1);
    if (t->parent) {
        redisReply *parent = t->parent->obj;
        parent->element[t->idx] = r;
    }
    return r;
}

static void *reply_string(const redisReadTask *t, char *str, size_t len)
{
    char *buf;
    redisReply *r = len < SIZE_MAX / 2 ? reply_new(t, t->type, len + 1, &buf) : NULL;
    if (!r)
        return NULL;
    memcpy(buf, str, len);
    buf[len] = 0;
    r->str = buf;
    r->len = len;
    return r;
}

static void *reply_array(const redisReadTask *t, int elements)
{
    if (elements < 0 || elements > REPLY_MAX_ELEMENTS) {
        cache_arena_t *a = t->privdata;
        if (a) /* a broken reply, not a lack of memory (which is all hiredis can report) */
            a->refused = true;
        return NULL;
    }
    char *buf;
    redisReply *r = reply_new(t, REDIS_REPLY_ARRAY, (size_t)elements * sizeof(redisReply *), &buf);
    if (!r)
        return NULL;
    r->elements = (size_t)elements;
    if (elements) {
        r->element = (redisReply **)(void *)buf;
        memset(r->element, 0, (size_t)elements * sizeof *r->element);
    }
    return r;
}

static void *reply_integer(const redisReadTask *t, long long v)
{
    redisReply *r = reply_new(t, REDIS_REPLY_INTEGER, 0, NULL);
    if (r)
        r->integer = v;
    return r;
}

static void *reply_nil(const redisReadTask *t) { return reply_new(t, REDIS_REPLY_NIL, 0, NULL); }

static void reply_free(void *r) { (void)r; /* the arena's owner frees it */ }

static redisReplyObjectFunctions arena_replies = {reply_string, reply_array, reply_integer, reply_nil, reply_free};

void gp__cache_reader_setup(redisReader *r)
{
    r->fn = &arena_replies; /* from now on replies go to the arenas */
    r->privdata = NULL;
}

/* s (disconnected, held by the caller) gets the new connection ctx. */
static void slot_ready(gp_cache_t *c, cache_slot_t *s, redisContext *ctx, SSL *ssl, int tmo)
{
    gp__cache_reader_setup(ctx->reader);
    s->ctx = ctx;
    s->ssl = ssl;
    s->timeout_ms = tmo;
    atomic_fetch_add(&c->cnt->connects, 1);
    pthread_mutex_lock(&c->mu);
    c->connected++;
    pthread_mutex_unlock(&c->mu);
}

gp_status_t gp__cache_adopt(gp_cache_t *c, redisContext *ctx)
{
    pthread_mutex_lock(&c->mu);
    cache_slot_t *s = c->n_idle ? NULL : slot_take(c);
    pthread_mutex_unlock(&c->mu);
    if (!s) {
        redisFree(ctx);
        return GP_ERR_CLOSED;
    }
    slot_ready(c, s, ctx, NULL, c->timeout_ms);
    pthread_mutex_lock(&c->mu);
    slot_put(c, s);
    pthread_mutex_unlock(&c->mu);
    return GP_OK;
}

/* Open s->ctx within the budget: connect, AUTH, SELECT. */
static gp_status_t slot_connect(gp_cache_t *c, cache_slot_t *s, int64_t deadline, gp_error_t *err)
{
    if ((deadline - gp__now_ns()) / NS_PER_MS < 1)
        return gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_TIMEOUT,
                              "%s: no time left to connect within REDIS_TIMEOUT (%d ms)", c->display, c->timeout_ms);
    redisContext *ctx;
    SSL *ssl;
    int tmo;
    /* The epoch before the connect: a switch during it makes the
     * connection go at its first use, never the other way round. */
    uint64_t epoch = atomic_load(&c->topo.epoch);
    gp_status_t st = gp__redis_open(&c->target, &c->topo, c->display, deadline, c->connect_timeout_ms, c->timeout_ms,
                                    &ctx, &ssl, &tmo, s->node, err);
    if (st != GP_OK) {
        atomic_fetch_add(&c->cnt->connect_failures, 1);
        note_error(c, err->message);
        gp__log(GP_LOG_DEBUG, "cache", "connect failed: %s", err->message);
        return st;
    }
    s->epoch = epoch;
    slot_ready(c, s, ctx, ssl, tmo);
    return GP_OK;
}

static struct timespec abs_mono(int64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
}

/* Error replies that mean "this server cannot serve now", not "your command
 * was wrong". */
static bool unavailable_reply(const redisReply *r)
{
    static const char *const codes[] = {"LOADING", "BUSY", "NOAUTH"};
    if (r->type != REDIS_REPLY_ERROR || !r->str)
        return false;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        size_t n = strlen(codes[i]);
        if (strncmp(r->str, codes[i], n) == 0 && (r->str[n] == ' ' || r->str[n] == 0))
            return true;
    }
    return false;
}


/* ---- calls and automatic pipelining ------------------------------------------
 *
 * Every call becomes a job: its commands encoded in RESP, its budget, and
 * where its replies go. A call that finds a free connection leads: it sends
 * its own commands, and those of every call queued behind it (up to
 * BATCH_COMMANDS commands / BATCH_BYTES bytes), in one write, reads all the
 * replies in one go and hands each caller its own. A call that finds every
 * connection busy queues (FIFO; one entry per waiting caller, so the queue
 * never outgrows the callers) and sleeps on its own state word (a futex, so
 * a woken caller needs no lock): a leader either answers it or, when it
 * finishes its round trip, hands it the connection so it leads the next
 * batch. Concurrent callers thus share round
 * trips — automatic pipelining — and Redis reads and answers many commands
 * per system call instead of one. */

#define BATCH_COMMANDS 1024
#define BATCH_BYTES (512 * 1024)

typedef enum job_state {
    JOB_NEW,    /* not queued: its own thread holds a connection for it */
    JOB_QUEUED, /* in c->queue, waiting */
    JOB_LEAD,   /* handed a connection: its thread leads the next batch */
    JOB_SENT,   /* in another thread's batch */
    JOB_DONE,   /* finished: st, err, replies final */
} job_state_t;

struct cache_job {
    struct cache_job *next;     /* in c->queue, then in a batch */
    char *buf;                  /* the commands in RESP */
    size_t len;
    int n;                      /* replies expected */
    int got;                    /* replies received in the current attempt */
    redisReply **replies;
    cache_arena_t *arena;       /* where its replies are built */
    int64_t deadline;
    bool idempotent, probe, timed_out;
    _Atomic int state;          /* job_state_t: moved under c->mu, except to JOB_DONE by a leader */
    cache_slot_t *slot;         /* JOB_LEAD: the connection handed over */
    gp_status_t st;
    gp_error_t *err;            /* never NULL */
};

/* Sleep while *state == val, until woken or (abs != NULL) the monotonic time
 * abs; spurious returns are the caller's to handle. */
static void state_wait(_Atomic int *state, int val, const struct timespec *abs)
{
    syscall(SYS_futex, (int *)state, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val, abs, NULL,
            FUTEX_BITSET_MATCH_ANY);
}

/* Publish a job's new state (everything written before it is visible to its
 * thread) and wake its thread. After JOB_DONE the job may vanish at once:
 * the wake only uses the address. */
static void state_set(cache_job_t *j, job_state_t to)
{
    atomic_store_explicit(&j->state, (int)to, memory_order_release);
    syscall(SYS_futex, (int *)&j->state, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}

static job_state_t state_get(cache_job_t *j)
{
    return (job_state_t)atomic_load_explicit(&j->state, memory_order_acquire);
}

/* Encode n commands in RESP into one buffer: `stackbuf` when it fits, else
 * malloc'd. hiredis' own argv formatter goes through sdscatfmt per argument,
 * which profiling showed as the biggest client-side cost of a 16-command
 * batch. NULL when out of memory. */
static char *encode(int n, const cache_cmd_t *cmds, char *stackbuf, size_t stacksize, size_t *len)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        total += 1 + 20 + 2;
        for (int a = 0; a < cmds[i].argc; a++)
            total += 1 + 20 + 2 + (cmds[i].argvlen ? cmds[i].argvlen[a] : strlen(cmds[i].argv[a])) + 2;
    }
    char *buf = total <= stacksize ? stackbuf : malloc(total);
    if (!buf)
        return NULL;
    char *p = buf;
    for (int i = 0; i < n; i++) {
        *p++ = '*';
        p += gp__cache_put_dec(p, (size_t)cmds[i].argc);
        *p++ = '\r', *p++ = '\n';
        for (int a = 0; a < cmds[i].argc; a++) {
            size_t l = cmds[i].argvlen ? cmds[i].argvlen[a] : strlen(cmds[i].argv[a]);
            *p++ = '$';
            p += gp__cache_put_dec(p, l);
            *p++ = '\r', *p++ = '\n';
            memcpy(p, cmds[i].argv[a], l);
            p += l;
            *p++ = '\r', *p++ = '\n';
        }
    }
    *len = (size_t)(p - buf);
    return buf;
}

/* Forget the replies received (they stay in the arena until its owner
 * frees it). */
static void job_forget_replies(cache_job_t *j)
{
    for (int i = 0; i < j->got; i++)
        j->replies[i] = NULL;
    j->got = 0;
}

/* Finish job j with status st; err (the batch's error) is copied unless it
 * already is j's. */
static void job_fail(cache_job_t *j, gp_status_t st, const gp_error_t *err, bool timed_out)
{
    job_forget_replies(j);
    j->st = st;
    j->timed_out = timed_out;
    if (err != j->err)
        *j->err = *err;
}

static cache_job_t *queue_pop(gp_cache_t *c)
{
    cache_job_t *j = c->qhead;
    if (j) {
        c->qhead = j->next;
        if (!c->qhead)
            c->qtail = NULL;
        j->next = NULL;
        c->waiting--;
    }
    return j;
}

static void queue_remove(gp_cache_t *c, cache_job_t *j)
{
    cache_job_t **pp = &c->qhead, *prev = NULL;
    while (*pp && *pp != j)
        prev = *pp, pp = &(*pp)->next;
    if (!*pp)
        return;
    *pp = j->next;
    if (c->qtail == j)
        c->qtail = prev;
    j->next = NULL;
    c->waiting--;
}

/* A job whose budget ran out before it could be sent. */
static void expire(gp_cache_t *c, cache_job_t *j)
{
    j->st = gp__cache_fail(j->err, GP_ERR_UNAVAILABLE, GP_ECLASS_TIMEOUT,
                           "no free Redis connection within REDIS_TIMEOUT (%d ms; all %d in use)", c->timeout_ms,
                           c->pool_size);
    j->timed_out = true;
}

/* Wake the jobs of a finished batch (other than `own`, whose thread is the
 * leader). */
static void finish(cache_job_t *list, const cache_job_t *own)
{
    while (list) {
        cache_job_t *next = list->next; /* list may vanish once done */
        list->next = NULL;
        if (list != own)
            state_set(list, JOB_DONE);
        list = next;
    }
}

/* Under mu: the next batch — own (when not NULL) first, then queued jobs in
 * order while they fit. A job whose budget is spent is finished with a
 * timeout, and one queued while the circuit opened is failed fast, instead
 * of being sent; own stays in the list either way, so its thread sees it
 * finished. *batch is the list; returns its deadline (the earliest of its
 * live jobs: a batch is only as patient as its oldest call), or 0 when none
 * is live. *probe tells whether the half-open probe is among the jobs. */
static int64_t gather(gp_cache_t *c, cache_job_t *own, cache_job_t **batch, bool *probe)
{
    int64_t now = gp__now_ns(), deadline = 0;
    int cmds = 0;
    size_t bytes = 0;
    cache_job_t *tail = NULL, *j = own ? own : queue_pop(c);
    *batch = NULL;
    while (j) {
        j->next = NULL;
        *probe |= j->probe;
        if (j->deadline - now < NS_PER_MS) {
            expire(c, j);
        } else if (c->state != GP_CACHE_CIRCUIT_CLOSED && !j->probe) {
            atomic_fetch_add(&c->cnt->rejected, 1);
            j->st = gp__cache_fail(j->err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION,
                                   "circuit open: %s is failing; the call was not sent", c->display);
        } else {
            cmds += j->n;
            bytes += j->len;
            if (!deadline || j->deadline < deadline)
                deadline = j->deadline;
        }
        if (j == own || j->st == GP_OK) {
            if (j != own)
                atomic_store_explicit(&j->state, JOB_SENT, memory_order_relaxed); /* stays asleep */
            if (tail)
                tail->next = j;
            else
                *batch = j;
            tail = j;
        } else {
            state_set(j, JOB_DONE);
        }
        /* A leader whose own call is over leads nobody else's: its caller
         * would wait for their batch (the connection goes to the next
         * queued call instead). */
        if (j == own && own->st != GP_OK)
            break;
        cache_job_t *q = c->qhead;
        if (!q || cmds + q->n > BATCH_COMMANDS || bytes + q->len > BATCH_BYTES)
            break;
        j = queue_pop(c);
    }
    return deadline;
}

/* A job of the batch still to be sent: not failed, not answered before a
 * resend. */
static bool unsent(const cache_job_t *j) { return j->st == GP_OK && j->got < j->n; }

static cache_job_t *next_unsent(cache_job_t *j)
{
    while (j && !unsent(j))
        j = j->next;
    return j;
}

/* Write the commands of every unsent job of the batch to fd, straight from
 * the jobs' buffers (sendmsg, up to SEND_IOV jobs per call), with
 * MSG_NOSIGNAL: hiredis' own write() would raise SIGPIPE on a connection
 * the server has closed. Blocks within the socket's send timeout. Returns
 * 0, or the errno of the failure (EAGAIN: the timeout). */
#define SEND_IOV 64
static int send_jobs(int fd, cache_job_t *batch)
{
    cache_job_t *j = next_unsent(batch);
    size_t off = 0; /* bytes of j already sent */
    while (j) {
        struct iovec iov[SEND_IOV];
        int n = 0;
        for (cache_job_t *k = j; k && n < SEND_IOV; k = next_unsent(k->next)) {
            size_t skip = k == j ? off : 0;
            iov[n++] = (struct iovec){k->buf + skip, k->len - skip};
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 && errno ? errno : EIO;
        for (size_t left = (size_t)w; j && left;) {
            size_t rest = j->len - off;
            if (left < rest) {
                off += left;
                break;
            }
            left -= rest;
            off = 0;
            j = next_unsent(j->next);
        }
    }
    return 0;
}

/* send_jobs over TLS: the jobs' commands gathered into records of up to
 * 16 KiB (one SSL_write each; a bigger command is written on its own). */
static int send_jobs_tls(cache_slot_t *s, cache_job_t *batch)
{
    char buf[16384];
    size_t used = 0;
    for (cache_job_t *j = next_unsent(batch); j; j = next_unsent(j->next)) {
        if (used && used + j->len > sizeof buf) {
            int e = gp__tls_write(s->ctx, s->ssl, buf, used);
            if (e)
                return e;
            used = 0;
        }
        if (j->len > sizeof buf) {
            int e = gp__tls_write(s->ctx, s->ssl, j->buf, j->len);
            if (e)
                return e;
            continue;
        }
        memcpy(buf + used, j->buf, j->len);
        used += j->len;
    }
    return used ? gp__tls_write(s->ctx, s->ssl, buf, used) : 0;
}

/* One attempt: set the socket timeout to what is left of `deadline`, send
 * every unanswered job of the batch (one sendmsg per SEND_IOV calls), then
 * wake the previous batch's callers (*prev; their wake-up overlaps this
 * round trip), then read all the replies. On an I/O failure the connection
 * is dropped and jobs keep what they received (got). */
static gp_status_t send_batch(gp_cache_t *c, cache_slot_t *s, int64_t deadline, cache_job_t *batch,
                              cache_job_t **prev, bool *timed_out, gp_error_t *err)
{
    *timed_out = false;
    int64_t left = (deadline - gp__now_ns()) / NS_PER_MS;
    if (left < 1) {
        *timed_out = true;
        return gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_TIMEOUT,
                              "REDIS_TIMEOUT (%d ms) spent before the command could be sent", c->timeout_ms);
    }
    if (left > c->timeout_ms)
        left = c->timeout_ms;
    /* The socket timeout is what is left of the budget; changing it costs two
     * syscalls, so only when it matters (a waited call, or back to normal). */
    if (left < s->timeout_ms - 2 || (s->timeout_ms < c->timeout_ms && left > s->timeout_ms + 10)) {
        if (redisSetTimeout(s->ctx, gp__tv_ms(left)) != REDIS_OK) {
            drop_ctx(c, s);
            return gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION, "cannot set the socket timeout");
        }
        s->timeout_ms = (int)left;
    }
    atomic_fetch_add_explicit(&c->cnt->round_trips, 1, memory_order_relaxed);
    for (cache_job_t *j = batch; j; j = j->next) {
        if (!unsent(j))
            continue;
        atomic_fetch_add_explicit(&c->cnt->calls, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->cnt->commands, (uint64_t)j->n, memory_order_relaxed);
    }
    int send_err = s->ssl ? send_jobs_tls(s, batch) : send_jobs(s->ctx->fd, batch);
    if (send_err) {
        *timed_out = send_err == EAGAIN || send_err == EWOULDBLOCK;
        char why[128];
        gp__cache_fail(err, GP_ERR_UNAVAILABLE, *timed_out ? GP_ECLASS_TIMEOUT : GP_ECLASS_CONNECTION,
                       "%s: cannot send%s: %s", c->display, *timed_out ? " within REDIS_TIMEOUT" : "",
                       strerror_r(send_err, why, sizeof why));
        drop_ctx(c, s); /* a half-written pipeline cannot be reused */
        return GP_ERR_UNAVAILABLE;
    }
    finish(*prev, NULL);
    *prev = NULL;
    for (cache_job_t *j = batch; j; j = j->next) {
        s->ctx->reader->privdata = j->arena;
        j->arena->refused = false;
        for (; j->st == GP_OK && j->got < j->n; j->got++) {
            void *r = NULL;
            if (gp__redis_read_reply(s->ctx, s->ssl, &r) != REDIS_OK || !r) {
                int e = errno;
                if (s->ctx->err == REDIS_ERR_OOM && !j->arena->refused) {
                    gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory reading a Redis reply");
                    drop_ctx(c, s); /* the rest of the reply is still on the socket */
                    return GP_ERR_NOMEM;
                }
                char why[80];
                snprintf(why, sizeof why, "Protocol error, an array reply of more than %d elements",
                         REPLY_MAX_ELEMENTS);
                *timed_out = gp__redis_is_timeout(s->ctx, e);
                gp__cache_fail(err, GP_ERR_UNAVAILABLE, *timed_out ? GP_ECLASS_TIMEOUT : GP_ECLASS_CONNECTION,
                               "%s: %s%s", c->display, *timed_out ? "no reply within REDIS_TIMEOUT: " : "",
                               j->arena->refused    ? why
                               : s->ctx->errstr[0] ? s->ctx->errstr
                                                   : "connection lost");
                drop_ctx(c, s);
                return GP_ERR_UNAVAILABLE;
            }
            j->replies[j->got] = r;
        }
    }
    return GP_OK;
}

/* A job with all its replies: an error reply that means "this server cannot
 * serve now" (LOADING...) or "wrong node" (READONLY, MOVED...) fails it.
 * Returns whether one did. */
static bool settle(gp_cache_t *c, cache_slot_t *s, cache_job_t *j)
{
    for (int i = 0; i < j->n; i++) {
        int wrong = gp__redis_wrong_node(j->replies[i]);
        /* A node of a cluster hands redirects to the router above
         * (cache_route.c), which follows them: the node works. */
        if (c->cluster_node && (wrong == GP_CACHE_WRONG_MOVED || wrong == GP_CACHE_WRONG_ASK ||
                                wrong == GP_CACHE_WRONG_TRYAGAIN))
            continue;
        if (wrong >= 0) {
            gp__topo_wrong_node(&c->topo, wrong, j->replies[i], s->node, j->err);
            /* This connection is to a node that must not serve the call:
             * the next one asks again where to go. */
            if (wrong == GP_CACHE_WRONG_READONLY || wrong == GP_CACHE_WRONG_MOVED || wrong == GP_CACHE_WRONG_ASK)
                drop_ctx(c, s);
            job_fail(j, GP_ERR_UNAVAILABLE, j->err, false);
            return true;
        }
        if (unavailable_reply(j->replies[i])) {
            /* NOAUTH: the server wants a password this connection did not
             * give (requirepass set after it connected, or none
             * configured): a credentials problem, not an outage. */
            bool noauth = strncmp(j->replies[i]->str, "NOAUTH", 6) == 0;
            gp__cache_fail(j->err, GP_ERR_UNAVAILABLE, noauth ? GP_ECLASS_AUTH : GP_ECLASS_CONNECTION, "%s: %.200s%s",
                           c->display, j->replies[i]->str,
                           noauth ? " (the server requires a password: set REDIS_PASSWORD, and REDIS_USERNAME "
                                    "for an ACL user)" : "");
            if (noauth)
                drop_ctx(c, s);
            job_fail(j, GP_ERR_UNAVAILABLE, j->err, false);
            return true;
        }
    }
    return false;
}

/* One batch on connection s, from connecting (when s has no connection) to
 * every job's status; returns the breaker's outcome. */
static outcome_t run_batch(gp_cache_t *c, cache_slot_t *s, int64_t deadline, cache_job_t *batch, cache_job_t **prev)
{
    gp_error_t e;
    gp_status_t st = GP_OK;
    bool timed_out = false, fresh = false;
    /* Opened before the master moved: never used again. */
    if (s->ctx && s->epoch != atomic_load(&c->topo.epoch))
        drop_ctx(c, s);
    if (!s->ctx) {
        /* The previous batch's callers are done: wake them now, not after
         * this connect (against a frozen server it takes a whole budget,
         * and they would return a budget late). */
        finish(*prev, NULL);
        *prev = NULL;
        st = slot_connect(c, s, deadline, &e);
        fresh = st == GP_OK;
        timed_out = st != GP_OK && e.klass == GP_ECLASS_TIMEOUT;
    }
    for (int attempt = 0; st == GP_OK; attempt++) {
        st = send_batch(c, s, deadline, batch, prev, &timed_out, &e);
        if (st == GP_OK || st == GP_ERR_NOMEM)
            break;
        if (!s->ctx) {
            atomic_fetch_add(&c->cnt->disconnects, 1);
            if (!timed_out) /* a lost connection may be a master gone: with Sentinel, ask again */
                gp__topo_suspect(&c->topo, false);
        }
        if (attempt > 0 || fresh || timed_out || s->ctx)
            break;
        /* A connection that sat idle may have died with a server restart:
         * resend once, on a fresh one, the unanswered commands that cannot
         * double an effect; the others fail. */
        uint64_t resend = 0;
        for (cache_job_t *j = batch; j; j = j->next) {
            if (j->st != GP_OK || j->got == j->n)
                continue;
            if (j->idempotent) {
                job_forget_replies(j);
                resend++;
            } else {
                job_fail(j, st, &e, false);
            }
        }
        if (!resend)
            break;
        gp_error_t e2;
        if (slot_connect(c, s, deadline, &e2) != GP_OK) {
            e = e2;
            timed_out = e2.klass == GP_ECLASS_TIMEOUT;
            st = GP_ERR_UNAVAILABLE;
            break;
        }
        fresh = true;
        st = GP_OK; /* the loop goes on: the resend */
        atomic_fetch_add(&c->cnt->retries, resend);
    }
    bool unavailable = false;
    for (cache_job_t *j = batch; j; j = j->next) {
        if (j->st != GP_OK)
            continue;
        if (j->got < j->n)
            job_fail(j, st, &e, timed_out);
        else
            unavailable |= settle(c, s, j);
    }
    if (st != GP_OK && st != GP_ERR_NOMEM)
        note_error(c, e.message);
    if (st == GP_ERR_NOMEM)
        return OUT_NEUTRAL;
    if (st != GP_OK)
        return timed_out && s->ctx ? OUT_NEUTRAL : OUT_FAILURE;
    return unavailable ? OUT_FAILURE : OUT_SUCCESS;
}

/* A leader keeps its connection for at most this many batches in a row
 * while calls are waiting (its own caller waits for the extra ones), then
 * hands it to the oldest waiting call. Leading on saves a thread wake-up
 * between batches. */
#define LEAD_ROUNDS 4
#define LEAD_SLACK_NS (2 * NS_PER_MS)

/* Lead batches on connection s: called with mu held, returns without it;
 * own is finished on return, and s has been handed to the next queued job
 * or put back. */
static void lead(gp_cache_t *c, cache_slot_t *s, cache_job_t *own)
{
    cache_job_t *prev = NULL;
    for (int round = 0;; round++) {
        cache_job_t *batch;
        bool probe = false;
        int64_t deadline = gather(c, round == 0 ? own : NULL, &batch, &probe);
        pthread_mutex_unlock(&c->mu);
        outcome_t o = deadline ? run_batch(c, s, deadline, batch, &prev) : OUT_NEUTRAL;
        finish(prev, own);
        prev = batch;
        pthread_mutex_lock(&c->mu);
        record(c, probe, o);
        /* Lead on only for calls due no later than this caller's own
         * budget (plus LEAD_SLACK_NS): its caller waits for that batch, and
         * the batch is as patient as its oldest call. */
        if (round + 1 < LEAD_ROUNDS && c->qhead && s->ctx && c->state == GP_CACHE_CIRCUIT_CLOSED &&
            c->qhead->deadline <= own->deadline + LEAD_SLACK_NS)
            continue;
        /* The connection goes on first (to the oldest waiting call, which
         * leads the next batch), then this batch's callers get their
         * results. */
        cache_job_t *h = queue_pop(c);
        if (h) {
            h->slot = s;
            state_set(h, JOB_LEAD);
        } else {
            slot_put(c, s);
        }
        pthread_mutex_unlock(&c->mu);
        finish(prev, own);
        return;
    }
}

gp_status_t gp__cache_pool_exec(gp_cache_t *c, int64_t deadline, int n, const cache_cmd_t *cmds, redisReply **replies,
                                cache_arena_t *arena, bool idempotent, gp_error_t *err)
{
    int64_t t0 = gp__now_ns();
    gp_error_t local; /* filled only on failure: the breaker's log wants the reason */
    char stackbuf[4096];
    cache_job_t j = {.n = n, .replies = replies, .arena = arena, .idempotent = idempotent, .err = err ? err : &local,
                     .deadline = deadline ? deadline : t0 + (int64_t)c->timeout_ms * NS_PER_MS, .st = GP_OK};
    for (int i = 0; i < n; i++)
        replies[i] = NULL;
    if (!(j.buf = encode(n, cmds, stackbuf, sizeof stackbuf, &j.len)))
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory formatting a Redis command");

    pthread_mutex_lock(&c->mu);
    if (!admit(c, t0, &j.probe)) {
        int64_t wait = c->state == GP_CACHE_CIRCUIT_OPEN ? (c->open_until_ns - t0) / NS_PER_MS : 0;
        pthread_mutex_unlock(&c->mu);
        atomic_fetch_add(&c->cnt->rejected, 1);
        j.st = gp__cache_fail(j.err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION,
                              "circuit open: %s failed %d times in a row; next probe in %lld ms", c->display,
                              c->opt.breaker_threshold, (long long)(wait > 0 ? wait : 0));
        goto out;
    }
    cache_slot_t *s = c->qhead ? NULL : slot_take(c);
    if (s) {
        lead(c, s, &j);
    } else {
        atomic_store_explicit(&j.state, JOB_QUEUED, memory_order_relaxed);
        if (c->qtail)
            c->qtail->next = &j;
        else
            c->qhead = &j;
        c->qtail = &j;
        c->waiting++;
        pthread_mutex_unlock(&c->mu);
        struct timespec ts = abs_mono(j.deadline);
        job_state_t js;
        while ((js = state_get(&j)) == JOB_QUEUED) {
            if (gp__now_ns() < j.deadline) {
                state_wait(&j.state, JOB_QUEUED, &ts);
                continue;
            }
            pthread_mutex_lock(&c->mu);
            if (state_get(&j) == JOB_QUEUED) { /* nobody took it: give up */
                queue_remove(c, &j);
                if (j.probe)
                    record(c, true, OUT_NEUTRAL);
                expire(c, &j);
                atomic_store_explicit(&j.state, JOB_DONE, memory_order_relaxed);
            }
            pthread_mutex_unlock(&c->mu);
        }
        /* In another thread's batch: that leader's socket timeout is at most
         * this job's remaining budget. */
        while (js == JOB_SENT) {
            state_wait(&j.state, JOB_SENT, NULL);
            js = state_get(&j);
        }
        if (js == JOB_LEAD) {
            pthread_mutex_lock(&c->mu);
            lead(c, j.slot, &j);
        }
    }
    gp_hist_record(c->latency, gp__now_ns() - t0);
out:
    if (j.buf != stackbuf)
        free(j.buf);
    if (j.st != GP_OK) {
        atomic_fetch_add(&c->cnt->errors, 1);
        if (j.st == GP_ERR_UNAVAILABLE)
            atomic_fetch_add(&c->cnt->unavailable, 1);
        if (j.timed_out)
            atomic_fetch_add(&c->cnt->timeouts, 1);
    }
    return j.st;
}

/* ---- the pool's life cycle (cache_life.c creates and closes the cache) ---- */

gp_status_t gp__cache_pool_init(gp_cache_t *c, gp_error_t *err)
{
    c->cooldown_ms = c->opt.breaker_cooldown_ms;
    c->state = GP_CACHE_CIRCUIT_CLOSED;
    snprintf(c->last_error, sizeof c->last_error, "no error yet");
    c->slots = calloc((size_t)c->pool_size, sizeof *c->slots);
    c->idle = calloc((size_t)c->pool_size, sizeof *c->idle);
    c->broken = calloc((size_t)c->pool_size, sizeof *c->broken);
    if (!c->cnt)
        c->cnt = &c->n;
    bool own_hist = !c->latency;
    if (own_hist)
        c->latency = c->hist_owned = gp_hist_new();
    if (!c->slots || !c->idle || !c->broken || !c->latency) {
        free(c->slots);
        free(c->idle);
        free(c->broken);
        if (own_hist)
            gp_hist_free(c->hist_owned);
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory creating the cache");
    }
    pthread_mutex_init(&c->mu, NULL);
    for (int i = 0; i < c->pool_size; i++) {
        c->slots[i].index = i;
        c->broken[c->n_broken++] = c->pool_size - 1 - i;
    }
    return GP_OK;
}

void gp__cache_pool_free(gp_cache_t *c)
{
    for (int i = 0; i < c->pool_size; i++)
        if (c->slots[i].ctx)
            gp__redis_close(c->slots[i].ctx, c->slots[i].ssl);
    free(c->slots);
    free(c->idle);
    free(c->broken);
    gp_hist_free(c->hist_owned);
    pthread_mutex_destroy(&c->mu);
}

/* ---- health and metrics --------------------------------------------------------- */

const char *gp_cache_circuit_name(gp_cache_circuit_t s)
{
    switch (s) {
    case GP_CACHE_CIRCUIT_CLOSED: return "closed";
    case GP_CACHE_CIRCUIT_OPEN: return "open";
    case GP_CACHE_CIRCUIT_HALF_OPEN: return "half_open";
    default: return "unknown";
    }
}

#define LOAD(x) atomic_load_explicit(&c->n.x, memory_order_relaxed)

void gp__cache_pool_metrics(gp_cache_t *c, gp_cache_metrics_t *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_lock(&c->mu);
    m->circuit = c->state;
    m->circuit_open_ms = c->state == GP_CACHE_CIRCUIT_CLOSED ? 0 : c->cooldown_ms;
    m->connected = c->connected;
    m->leased = c->pool_size - c->n_idle - c->n_broken;
    m->waiting = c->waiting;
    pthread_mutex_unlock(&c->mu);
    m->pool_size = c->pool_size;
    m->circuit_opened = atomic_load(&c->opened);
    m->circuit_half_opened = atomic_load(&c->half_opened);
    m->circuit_closed = atomic_load(&c->closed);
    m->hits = LOAD(hits);
    m->misses = LOAD(misses);
    m->invalid_json = LOAD(invalid_json);
    m->errors = LOAD(errors);
    m->unavailable = LOAD(unavailable);
    m->timeouts = LOAD(timeouts);
    m->rejected = LOAD(rejected);
    m->server_errors = LOAD(server_errors);
    m->retries = LOAD(retries);
    m->connects = LOAD(connects);
    m->connect_failures = LOAD(connect_failures);
    m->disconnects = LOAD(disconnects);
    m->calls = LOAD(calls);
    m->round_trips = LOAD(round_trips);
    m->commands = LOAD(commands);
    m->invalidations = LOAD(invalidations);
    m->generation_fetches = LOAD(generation_fetches);
    m->loads = LOAD(loads);
    m->load_failures = LOAD(load_failures);
    m->load_waits = LOAD(load_waits);
    m->load_wait_timeouts = LOAD(load_wait_timeouts);
    m->early_refreshes = LOAD(early_refreshes);
    for (int k = 0; k < GP_CACHE_WRONG_COUNT_; k++)
        m->wrong_node[k] = atomic_load_explicit(&c->topo.wrong[k], memory_order_relaxed);
    int64_t last = atomic_load(&c->topo.wrong_last_ns);
    m->wrong_node_age_ms = last ? (gp__now_ns() - last) / NS_PER_MS : -1;
    m->master_switches = atomic_load(&c->topo.switches);
    gp__topo_node(&c->topo, m->node, sizeof m->node);
    gp_hist_latency(c->latency, &m->latency);
}
