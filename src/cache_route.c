/* cache_route.c — where each call goes. One Redis or the Sentinel master:
 * the cache's own pool. Redis Cluster (REDIS_CLUSTER_NODES): one pool, and
 * so one circuit breaker and its own automatic pipelining, per master
 * node, each a cache object of its own (cluster_node) counting into this
 * cache's counters; a slot map read with CLUSTER SLOTS and corrected by
 * every MOVED; the slot of a call is that of its tenant's hash tag (every
 * key of a call has it, the generation key too). Also the calls that look
 * at every node: gp_cache_ping and gp_cache_metrics. Sits on cache_conn.c;
 * the keyspace and the operations sit on it. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"

#define NS_PER_MS 1000000LL
#define SLOTS 16384
#define NODES_MAX 64
#define NO_NODE 0xff
#define HOPS_MAX 5

struct cache_cluster {
    pthread_mutex_t mu;               /* adding nodes, reading the map */
    gp_cache_t *nodes[NODES_MAX];     /* published by n_nodes (release); kept until close */
    _Atomic int n_nodes;
    _Atomic unsigned char slot[SLOTS]; /* node index per slot, NO_NODE when unknown */
    _Atomic bool loaded;              /* the map was read once */
};

/* ---- slots ------------------------------------------------------------------------ */

/* CRC16-CCITT (XMODEM), as Redis Cluster hashes keys. */
static uint16_t crc16(const char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((unsigned char)p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* The slot of a key: of its first {...} hash tag when not empty. */
static int key_slot(const char *k, size_t n)
{
    const char *open = memchr(k, '{', n);
    if (open) {
        const char *close = memchr(open + 1, '}', n - (size_t)(open + 1 - k));
        if (close && close > open + 1)
            return crc16(open + 1, (size_t)(close - open - 1)) & (SLOTS - 1);
    }
    return crc16(k, n) & (SLOTS - 1);
}

/* The slot of a command's key, -1 when it has none (PING, INFO, ROLE). */
static int cmd_slot(const cache_cmd_t *cmd)
{
    int at = cmd->argc >= 4 && strcmp(cmd->argv[0], "EVAL") == 0 ? 3 : 1; /* EVAL script numkeys key ... */
    if (cmd->argc <= at)
        return -1;
    size_t n = cmd->argvlen ? cmd->argvlen[at] : strlen(cmd->argv[at]);
    return key_slot(cmd->argv[at], n);
}

/* ---- nodes ------------------------------------------------------------------------ */

static void node_free(gp_cache_t *n)
{
    if (!n)
        return;
    gp__topo_free(&n->topo);
    gp__cache_pool_free(n);
    memset(&n->target, 0, sizeof n->target);
    free(n);
}

/* A node's own cache object: c's settings and credentials, one address. */
static gp_cache_t *node_new(gp_cache_t *c, const char *host, int port, gp_error_t *err)
{
    gp_cache_t *n = calloc(1, sizeof *n);
    if (!n) {
        gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory adding a Redis Cluster node");
        return NULL;
    }
    n->target = c->target;
    n->target.n_cluster = 0;
    snprintf(n->target.host, sizeof n->target.host, "%s", host);
    n->target.port = port;
    bool v6 = strchr(host, ':') != NULL;
    snprintf(n->display, sizeof n->display, "redis%s://%s%s%s:%d/0 (Redis Cluster node)", c->target.tls ? "s" : "",
             v6 ? "[" : "", host, v6 ? "]" : "", port);
    memcpy(n->prefix, c->prefix, sizeof n->prefix);
    n->prefix_len = c->prefix_len;
    n->timeout_ms = c->timeout_ms;
    n->connect_timeout_ms = c->connect_timeout_ms;
    n->pool_size = c->pool_size;
    n->opt = c->opt;
    n->cluster_node = true;
    n->cnt = &c->n;
    n->latency = c->latency;
    if (gp__topo_init(&n->topo, &n->target, n->display, n->connect_timeout_ms, err) != GP_OK) {
        free(n);
        return NULL;
    }
    if (gp__cache_pool_init(n, err) != GP_OK) {
        gp__topo_free(&n->topo);
        free(n);
        return NULL;
    }
    return n;
}

static int n_nodes(const struct cache_cluster *cl) { return atomic_load_explicit(&cl->n_nodes, memory_order_acquire); }

/* The index of host:port, added when new; -1 when the table is full or
 * memory ran out (err filled). */
static int node_index(gp_cache_t *c, const char *host, int port, gp_error_t *err)
{
    struct cache_cluster *cl = c->cluster;
    pthread_mutex_lock(&cl->mu);
    int n = n_nodes(cl), found = -1;
    for (int i = 0; i < n && found < 0; i++)
        if (cl->nodes[i]->target.port == port && strcmp(cl->nodes[i]->target.host, host) == 0)
            found = i;
    if (found < 0 && n == NODES_MAX)
        gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION,
                       "%s: more than %d Redis Cluster nodes named; %s:%d is not used", c->display, NODES_MAX, host,
                       port);
    else if (found < 0 && (cl->nodes[n] = node_new(c, host, port, err))) {
        atomic_store_explicit(&cl->n_nodes, n + 1, memory_order_release);
        found = n;
    }
    pthread_mutex_unlock(&cl->mu);
    return found;
}

gp_status_t gp__cluster_init(gp_cache_t *c, gp_error_t *err)
{
    if (!c->target.n_cluster)
        return GP_OK;
    struct cache_cluster *cl = calloc(1, sizeof *cl);
    if (!cl)
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory creating the cache");
    pthread_mutex_init(&cl->mu, NULL);
    for (int s = 0; s < SLOTS; s++)
        atomic_init(&cl->slot[s], NO_NODE);
    c->cluster = cl;
    for (int i = 0; i < c->target.n_cluster; i++)
        if (node_index(c, c->target.cluster[i].host, c->target.cluster[i].port, err) < 0) {
            gp__cluster_free(c);
            return err ? err->status : GP_ERR_NOMEM;
        }
    return GP_OK;
}

void gp__cluster_free(gp_cache_t *c)
{
    struct cache_cluster *cl = c->cluster;
    if (!cl)
        return;
    for (int i = 0; i < n_nodes(cl); i++)
        node_free(cl->nodes[i]);
    pthread_mutex_destroy(&cl->mu);
    free(cl);
    c->cluster = NULL;
}

/* ---- the slot map ----------------------------------------------------------------- */

/* CLUSTER SLOTS from one node after the other until one answers:
 * [[start, end, [ip, port, id], replicas...], ...]. */
static gp_status_t load_map(gp_cache_t *c, int64_t deadline, gp_error_t *err)
{
    struct cache_cluster *cl = c->cluster;
    const char *argv[2] = {"CLUSTER", "SLOTS"};
    cache_cmd_t cmd = {2, argv, NULL};
    gp_error_t e;
    gp__cache_fail(&e, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION, "no node answered");
    for (int i = 0; i < n_nodes(cl) && gp__now_ns() < deadline; i++) {
        gp_cache_t *node = cl->nodes[i];
        redisReply *r;
        cache_arena_t arena;
        gp__cache_arena_init(&arena);
        gp_status_t st = gp__cache_pool_exec(node, deadline, 1, &cmd, &r, &arena, true, &e);
        if (st == GP_OK && r->type != REDIS_REPLY_ARRAY) {
            gp__cache_fail(&e, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION, "%s: CLUSTER SLOTS: %.200s%s", node->display,
                           r->type == REDIS_REPLY_ERROR ? r->str : "not an array",
                           r->type == REDIS_REPLY_ERROR ? " (is it a cluster node? check REDIS_CLUSTER_NODES)" : "");
            st = GP_ERR_UNAVAILABLE;
        }
        for (size_t k = 0; st == GP_OK && k < r->elements; k++) {
            const redisReply *range = r->element[k];
            if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
                range->element[0]->type != REDIS_REPLY_INTEGER || range->element[1]->type != REDIS_REPLY_INTEGER ||
                range->element[2]->type != REDIS_REPLY_ARRAY || range->element[2]->elements < 2 ||
                range->element[2]->element[0]->type != REDIS_REPLY_STRING ||
                range->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
                continue;
            long long lo = range->element[0]->integer, hi = range->element[1]->integer;
            const char *ip = range->element[2]->element[0]->str;
            if (!ip[0]) /* the node does not know its own address: the one we asked */
                ip = node->target.host;
            int idx = node_index(c, ip, (int)range->element[2]->element[1]->integer, &e);
            for (long long s = lo < 0 ? 0 : lo; idx >= 0 && s <= hi && s < SLOTS; s++)
                atomic_store(&cl->slot[s], (unsigned char)idx);
        }
        gp__cache_arena_free(&arena);
        if (st == GP_OK) {
            atomic_store(&cl->loaded, true);
            return GP_OK;
        }
    }
    return gp__cache_fail(err, GP_ERR_UNAVAILABLE, e.klass, "%s: cannot read the slot map: %s", c->display,
                          e.message);
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK ...": the node's index (added when
 * new), -1 when the reply cannot be read. */
static int redirect_target(gp_cache_t *c, const redisReply *r, gp_error_t *err)
{
    const char *sp = strchr(r->str, ' '), *addr = sp ? strchr(sp + 1, ' ') : NULL;
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    if (!colon || colon - addr - 1 <= 0 || colon - addr - 1 >= 256)
        return -1;
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr - 1), addr + 1);
    if (host[0] == '[') { /* [v6]:port */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = 0;
    }
    int port = atoi(colon + 1);
    return port > 0 && port <= 65535 ? node_index(c, host, port, err) : -1;
}

/* ---- a call on the cluster -------------------------------------------------------------- */

static bool is_redirect(int kind)
{
    return kind == GP_CACHE_WRONG_MOVED || kind == GP_CACHE_WRONG_ASK || kind == GP_CACHE_WRONG_TRYAGAIN;
}

/* Send again the `k` commands at idx[] to `node` (each after ASKING when
 * `asking`) and put their replies in place. */
static gp_status_t resend(gp_cache_t *node, int64_t deadline, int k, const int *idx, const cache_cmd_t *cmds,
                          redisReply **replies, cache_arena_t *arena, bool asking, bool idempotent, gp_error_t *err)
{
    static const char *const ask_argv[1] = {"ASKING"};
    static const size_t ask_len[1] = {6};
    int m = asking ? 2 * k : k;
    cache_cmd_t sub_s[64];
    redisReply *rep_s[64];
    cache_cmd_t *sub = m <= 64 ? sub_s : malloc((size_t)m * sizeof *sub);
    redisReply **rep = m <= 64 ? rep_s : malloc((size_t)m * sizeof *rep);
    gp_status_t st = GP_OK;
    if (!sub || !rep) {
        st = gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory following a Redis Cluster redirect");
        goto out;
    }
    for (int i = 0, o = 0; i < k; i++) {
        if (asking)
            sub[o++] = (cache_cmd_t){1, (const char **)ask_argv, ask_len};
        sub[o++] = cmds[idx[i]];
    }
    st = gp__cache_pool_exec(node, deadline, m, sub, rep, arena, idempotent, err);
    for (int i = 0; st == GP_OK && i < k; i++)
        replies[idx[i]] = rep[asking ? 2 * i + 1 : i];
out:
    if (sub != sub_s)
        free(sub);
    if (rep != rep_s)
        free(rep);
    return st;
}

/* Wait a little before a TRYAGAIN is tried again (the migration of the
 * slot's keys goes on meanwhile), never past the deadline. */
static void backoff(int64_t deadline, int hop)
{
    int64_t ms = 2LL << hop, left = (deadline - gp__now_ns()) / NS_PER_MS - 1;
    if (ms > left)
        ms = left;
    if (ms > 0)
        poll(NULL, 0, (int)ms);
}

static gp_status_t cluster_exec(gp_cache_t *c, int n, const cache_cmd_t *cmds, redisReply **replies,
                                cache_arena_t *arena, bool idempotent, gp_error_t *err)
{
    struct cache_cluster *cl = c->cluster;
    int64_t deadline = gp__now_ns() + (int64_t)c->timeout_ms * NS_PER_MS;
    gp_error_t local;
    if (!err)
        err = &local;
    for (int i = 0; i < n; i++)
        replies[i] = NULL;
    gp_status_t st;
    if (!atomic_load(&cl->loaded) && (st = load_map(c, deadline, err)) != GP_OK) {
        atomic_fetch_add(&c->n.errors, 1);
        atomic_fetch_add(&c->n.unavailable, 1);
        return st;
    }
    int slot = cmd_slot(&cmds[0]);
    int node = slot < 0 ? 0 : atomic_load(&cl->slot[slot]);
    if (node == NO_NODE) {
        /* Not in the map: read it again (a slot added since), once. */
        if ((st = load_map(c, deadline, err)) == GP_OK && (node = atomic_load(&cl->slot[slot])) == NO_NODE)
            st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION,
                                "%s: no node serves slot %d (CLUSTER SLOTS); the cluster is missing a master", c->display,
                                slot);
        if (st != GP_OK) {
            atomic_fetch_add(&c->n.errors, 1);
            atomic_fetch_add(&c->n.unavailable, 1);
            return st;
        }
    }
    st = gp__cache_pool_exec(cl->nodes[node], deadline, n, cmds, replies, arena, idempotent, err);
    int idx_s[64], *idx = n <= 64 ? idx_s : malloc((size_t)n * sizeof *idx);
    if (!idx)
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory following a Redis Cluster redirect");
    for (int hop = 0; st == GP_OK; hop++) {
        /* The commands answered with a redirect, and what the first says. */
        int k = 0, kind = -1;
        const redisReply *first = NULL;
        for (int i = 0; i < n; i++) {
            int w = gp__redis_wrong_node(replies[i]);
            if (!is_redirect(w))
                continue;
            gp__topo_wrong_count(&c->topo, w);
            if (!first) {
                first = replies[i];
                kind = w;
            }
            idx[k++] = i;
        }
        if (!k)
            break;
        int to = kind == GP_CACHE_WRONG_TRYAGAIN ? node : redirect_target(c, first, NULL);
        if (to < 0 || hop + 1 >= HOPS_MAX || gp__now_ns() >= deadline) {
            /* Not followed: a wrong-node failure, told as such. */
            gp__topo_wrong_report(&c->topo, kind, first, cl->nodes[node]->display, err);
            atomic_fetch_add(&c->n.errors, 1);
            atomic_fetch_add(&c->n.unavailable, 1);
            st = GP_ERR_UNAVAILABLE;
            for (int i = 0; i < n; i++)
                replies[i] = NULL;
            break;
        }
        if (kind == GP_CACHE_WRONG_MOVED && slot >= 0)
            atomic_store(&cl->slot[slot], (unsigned char)to); /* the map learns; ASK is for this call only */
        if (kind == GP_CACHE_WRONG_TRYAGAIN)
            backoff(deadline, hop);
        node = to;
        atomic_fetch_add(&c->n.retries, (uint64_t)k);
        st = resend(cl->nodes[node], deadline, k, idx, cmds, replies, arena, kind == GP_CACHE_WRONG_ASK, idempotent,
                    err);
    }
    if (idx != idx_s)
        free(idx);
    return st;
}

gp_status_t gp__cache_exec(gp_cache_t *c, int n, const cache_cmd_t *cmds, redisReply **replies, cache_arena_t *arena,
                           bool idempotent, gp_error_t *err)
{
    if (!c->cluster)
        return gp__cache_pool_exec(c, 0, n, cmds, replies, arena, idempotent, err);
    return cluster_exec(c, n, cmds, replies, arena, idempotent, err);
}

/* ---- every node ------------------------------------------------------------------------ */

static gp_status_t ping_one(gp_cache_t *c, gp_cache_t *node, int64_t *latency_ns, gp_error_t *err)
{
    const char *argv[1] = {"PING"};
    cache_cmd_t cmd = {1, argv, NULL};
    redisReply *r;
    cache_arena_t arena;
    gp__cache_arena_init(&arena);
    int64_t t0 = gp__now_ns();
    gp_status_t st = node ? gp__cache_pool_exec(node, 0, 1, &cmd, &r, &arena, true, err)
                          : gp__cache_exec(c, 1, &cmd, &r, &arena, true, err);
    if (st == GP_OK && (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0))
        st = r->type == REDIS_REPLY_ERROR ? gp__cache_server_error(c, r, err)
                                          : gp__cache_fail(err, GP_ERR_PROTOCOL, GP_ECLASS_INTERNAL,
                                                           "unexpected reply to PING");
    else if (st == GP_OK && latency_ns)
        *latency_ns += gp__now_ns() - t0;
    gp__cache_arena_free(&arena);
    return st;
}

gp_status_t gp_cache_ping(gp_cache_t *c, int64_t *latency_ns, gp_error_t *err)
{
    gp_error_clear(err);
    if (latency_ns)
        *latency_ns = 0;
    if (!c)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "cache is NULL");
    if (!c->cluster)
        return ping_one(c, NULL, latency_ns, err);
    /* Every node known: one down means some tenants cannot be served. */
    gp_status_t st = GP_OK;
    if (!atomic_load(&c->cluster->loaded))
        st = load_map(c, gp__now_ns() + (int64_t)c->timeout_ms * NS_PER_MS, err);
    for (int i = 0; st == GP_OK && i < n_nodes(c->cluster); i++)
        st = ping_one(c, c->cluster->nodes[i], latency_ns, err);
    return st;
}

gp_status_t gp_cache_metrics(gp_cache_t *c, gp_cache_metrics_t *m)
{
    if (!c || !m)
        return GP_ERR_INVALID;
    gp__cache_pool_metrics(c, m);
    if (!c->cluster)
        return GP_OK;
    /* The nodes count into this cache's counters; their gauges, circuits
     * and wrong-node replies add up here. The circuit is the worst node's. */
    m->connected = m->leased = m->waiting = m->pool_size = 0;
    m->circuit = GP_CACHE_CIRCUIT_CLOSED;
    for (int i = 0; i < n_nodes(c->cluster); i++) {
        gp_cache_metrics_t nm;
        gp__cache_pool_metrics(c->cluster->nodes[i], &nm);
        m->connected += nm.connected;
        m->leased += nm.leased;
        m->waiting += nm.waiting;
        m->pool_size += nm.pool_size;
        m->circuit_opened += nm.circuit_opened;
        m->circuit_half_opened += nm.circuit_half_opened;
        m->circuit_closed += nm.circuit_closed;
        if (nm.circuit != GP_CACHE_CIRCUIT_CLOSED && m->circuit != GP_CACHE_CIRCUIT_OPEN) {
            m->circuit = nm.circuit;
            m->circuit_open_ms = nm.circuit_open_ms;
        }
        for (int k = 0; k < GP_CACHE_WRONG_COUNT_; k++)
            m->wrong_node[k] += nm.wrong_node[k];
        if (nm.wrong_node_age_ms >= 0 && (m->wrong_node_age_ms < 0 || nm.wrong_node_age_ms < m->wrong_node_age_ms))
            m->wrong_node_age_ms = nm.wrong_node_age_ms;
    }
    snprintf(m->node, sizeof m->node, "%d Redis Cluster nodes", n_nodes(c->cluster));
    return GP_OK;
}
