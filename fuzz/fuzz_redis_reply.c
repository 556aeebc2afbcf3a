/* fuzz_redis_reply.c — the cache's Redis reply path: the hiredis reader set
 * up as the cache sets up its connections' readers (replies built in a
 * call's arena, gp__cache_reader_setup in src/cache_conn.c), fed the
 * input's bytes in chunks the input chooses; then the same bytes, in the
 * same chunks, as the server's side of a connection the cache adopts
 * (gp__cache_adopt: a SOCK_SEQPACKET socketpair, so every chunk is one
 * read), through one public cache call, whose reply handling (cache.c,
 * cache_keys.c, cache_conn.c: settle, the error replies) turns them into
 * a status. No server; a reconnect goes to a port bound but not listening
 * (refused at once).
 *
 * Input: op byte (call OPS[(b & 0x0f) % N], MGET/MSET with 1 + (b >> 4 & 3)
 * keys), a split count (% 33), that many chunk lengths (0 counts as 1),
 * then the bytes the server sends (the rest is the last chunk).
 * Seeds: fuzz/gen_seeds.py.
 *
 * Oracle:
 *  - Reader: the replies equal, one for one (type, bytes, length, integer,
 *    elements, recursively), what a plain hiredis reader (default reply
 *    functions) gives on the same chunks, and the reader ends in the same
 *    state: waiting for more, or the same error (code and text). The one
 *    documented difference: an array announcing more than
 *    REPLY_MAX_ELEMENTS (1 << 20) elements is refused as out of memory.
 *    (The plain reader is spared arrays too big to be completed by the
 *    input, which it would calloc: then the cache's reader must not give
 *    that reply either.) Strings are NUL-terminated; nothing is allocated
 *    outside the arenas (LSan: they are the only thing freed).
 *  - Call: the status, error class and outputs an independent model of the
 *    call's commands gives from the replies the reader made: the
 *    generation round trip first (SET NX + GET, or INCR for
 *    gp_cache_invalidate_tenant: an error reply is GP_ERR_SERVER, a value
 *    other than a non-negative integer or 1-20 digits GP_ERR_PROTOCOL),
 *    then the call's own; too few replies (the connection ends, the reader
 *    fails, a refused array included) GP_ERR_UNAVAILABLE, class connection
 *    (never GP_ERR_NOMEM: nothing ran out of memory); an error reply
 *    LOADING / BUSY / MASTERDOWN / TRYAGAIN / NOAUTH / CLUSTERDOWN, or a
 *    wrong-node reply MOVED / ASK / READONLY, anywhere in a round trip
 *    GP_ERR_UNAVAILABLE (class auth for NOAUTH); another
 *    error reply
 *    GP_ERR_SERVER ("Redis replied: ..."); a reply of the wrong type
 *    GP_ERR_PROTOCOL; GET: a string is the value (bytes, length, NUL after),
 *    nil a miss; JSON: jansson's value, or a miss; DEL/EXISTS/PEXPIRE 0 a
 *    miss; PTTL -2 a miss; MGET an array of exactly n strings or nils;
 *    MSET n status replies. A failed call leaves its outputs empty, and
 *    err carries the status and a message; GP_ERR_UNAVAILABLE is
 *    retriable.
 *  - Nothing reaches stdout. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cache_internal.h"
#include "fuzz_common.h"

#define MAX_REPLIES 2048
#define NARENAS 16
#define REPLY_MAX_ELEMENTS (1 << 20) /* as in cache_conn.c */

static const char TENANT[] = "11111111-2222-4333-8444-555555555555";
static const char *const KEYS[] = {"k0", "k1", "k2", "k3"};

enum { OP_PING, OP_GET, OP_GET_JSON, OP_SET, OP_DEL, OP_EXISTS, OP_TTL, OP_EXPIRE, OP_INCR, OP_MGET, OP_MSET,
       OP_INVALIDATE, NOPS };
static const char *const OP_NAMES[] = {"ping", "get", "get_json", "set", "del", "exists", "ttl", "expire", "incr",
                                       "mget", "mset", "invalidate"};

static const uint8_t *cur_data;
static size_t cur_size;

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    fuzz_show("input", (const char *)cur_data, cur_size < 400 ? cur_size : 400);
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fuzz_fail("%s", msg);
}

/* ---- the input ------------------------------------------------------------------ */

typedef struct input {
    int op, nkeys;
    const char *bytes; /* what the server sends */
    size_t len;
    size_t chunk[34]; /* chunk lengths, summing to len */
    int nchunks;
} input_t;

static void parse(input_t *in, const uint8_t *data, size_t size)
{
    size_t i = 0;
    uint8_t o = i < size ? data[i++] : 0;
    in->op = (o & 0x0f) % NOPS;
    in->nkeys = 1 + ((o >> 4) & 3);
    int nsplits = (i < size ? data[i++] : 0) % 33;
    uint8_t lens[33];
    for (int k = 0; k < nsplits; k++)
        lens[k] = i < size ? data[i++] : 0;
    in->bytes = (const char *)data + i;
    in->len = size - i;
    in->nchunks = 0;
    size_t at = 0;
    for (int k = 0; k < nsplits && at < in->len; k++) {
        size_t l = lens[k] ? lens[k] : 1;
        if (l > in->len - at)
            l = in->len - at;
        in->chunk[in->nchunks++] = l;
        at += l;
    }
    if (at < in->len)
        in->chunk[in->nchunks++] = in->len - at;
}

/* ---- the two readers ------------------------------------------------------------ */

enum { END_WAITING, END_ERROR, END_REFUSED };

typedef struct run {
    void *replies[MAX_REPLIES];
    int n;
    int end;       /* END_* */
    int err;       /* the reader's error code at END_ERROR */
    char errstr[128];
} run_t;

static redisReplyObjectFunctions default_fns, plain_fns;
static size_t plain_cap;   /* arrays longer than this cannot complete: refused */
static bool plain_refused;

static void *plain_array(const redisReadTask *t, int elements)
{
    if ((size_t)elements > plain_cap) {
        plain_refused = true;
        return NULL;
    }
    return default_fns.createArray(t, elements);
}

static cache_arena_t arenas[NARENAS];

/* Feed the chunks to r, collecting replies; `arena`: the cache's reader,
 * whose privdata is the arena of the reply being read. */
static void read_all(redisReader *r, const input_t *in, bool arena, run_t *out)
{
    out->n = 0;
    out->end = END_WAITING;
    size_t at = 0;
    for (int k = 0; k < in->nchunks && out->end == END_WAITING; k++) {
        if (redisReaderFeed(r, in->bytes + at, in->chunk[k]) != REDIS_OK)
            fail("redisReaderFeed failed");
        at += in->chunk[k];
        for (;;) {
            if (arena)
                r->privdata = &arenas[out->n < NARENAS ? out->n : NARENAS - 1];
            void *rep = NULL;
            if (redisReaderGetReply(r, &rep) != REDIS_OK) {
                out->end = !arena && plain_refused ? END_REFUSED : END_ERROR;
                out->err = r->err;
                snprintf(out->errstr, sizeof out->errstr, "%s", r->errstr);
                break;
            }
            if (!rep)
                break;
            if (out->n == MAX_REPLIES)
                fail("more than %d replies", MAX_REPLIES);
            out->replies[out->n++] = rep;
        }
    }
}

static void show_reply(const char *label, const redisReply *r)
{
    fprintf(stderr, "  %s: type %d, integer %lld, elements %zu\n", label, r->type, r->integer, r->elements);
    if (r->str)
        fuzz_show("  str", r->str, r->len);
}

static void same_reply(const redisReply *p, const redisReply *c, int idx, int depth)
{
    bool ok = p->type == c->type;
    if (ok) {
        switch (p->type) {
        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
        case REDIS_REPLY_ERROR:
            ok = c->str && p->len == c->len && memcmp(p->str, c->str, p->len) == 0 && c->str[c->len] == 0;
            break;
        case REDIS_REPLY_INTEGER:
            ok = p->integer == c->integer;
            break;
        case REDIS_REPLY_ARRAY:
            ok = p->elements == c->elements && (c->elements == 0 || c->element);
            for (size_t i = 0; ok && i < p->elements; i++) {
                if (!c->element[i])
                    fail("reply %d: element %zu (depth %d) is missing", idx, i, depth);
                same_reply(p->element[i], c->element[i], idx, depth + 1);
            }
            break;
        case REDIS_REPLY_NIL:
            break;
        default:
            ok = false;
        }
    }
    if (!ok) {
        show_reply("plain", p);
        show_reply("cache", c);
        fail("reply %d (depth %d) differs from the plain reader's", idx, depth);
    }
}

static void check_readers(const run_t *p, const run_t *c)
{
    int n = p->n < c->n ? p->n : c->n;
    for (int i = 0; i < n; i++)
        same_reply(p->replies[i], c->replies[i], i, 0);
    if (p->end == END_REFUSED) { /* an array the input cannot complete */
        if (c->n != p->n)
            fail("%d replies, the plain reader %d before an array too long to complete", c->n, p->n);
        return;
    }
    if (c->n != p->n || c->end != p->end || (c->end == END_ERROR && (c->err != p->err ||
                                                                   strcmp(c->errstr, p->errstr) != 0))) {
        fprintf(stderr, "  plain: %d replies, %s %d \"%s\"\n  cache: %d replies, %s %d \"%s\"\n", p->n,
                p->end == END_ERROR ? "error" : "waiting", p->err, p->errstr, c->n,
                c->end == END_ERROR ? "error" : "waiting", c->err, c->errstr);
        fail("the readers end differently");
    }
}

/* ---- the call, and its model ------------------------------------------------------ */

static int refused_port;

typedef struct model {
    const run_t *c;
    int pos;
    gp_status_t st;
    gp_error_class_t klass;
    redisReply *r[4]; /* the replies of the last round trip */
} model_t;

static bool is_err(const redisReply *r) { return r->type == REDIS_REPLY_ERROR; }

/* An error reply meaning "the server cannot serve now", or "this is the
 * wrong node" (MOVED, ASK, READONLY: the cache past one Redis, #20; a
 * single node is never asked to follow a redirect). */
static bool unavailable(const redisReply *r)
{
    static const char *const codes[] = {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "NOAUTH", "CLUSTERDOWN",
                                        "MOVED", "ASK", "READONLY"};
    if (!is_err(r))
        return false;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        size_t n = strlen(codes[i]);
        if (r->len >= n && memcmp(r->str, codes[i], n) == 0 && (r->len == n || r->str[n] == ' ' || r->str[n] == 0))
            return true;
    }
    return false;
}

/* One round trip of k commands: its replies (NULL on failure, m->st set). */
static redisReply **exec(model_t *m, int k)
{
    if (m->c->n - m->pos < k) { /* the connection ends or the reader fails: a refused array too */
        m->st = GP_ERR_UNAVAILABLE;
        m->klass = GP_ECLASS_CONNECTION;
        return NULL;
    }
    redisReply **r = m->r;
    for (int i = 0; i < k; i++)
        r[i] = m->c->replies[m->pos + i];
    m->pos += k;
    for (int i = 0; i < k; i++)
        if (unavailable(r[i])) {
            m->st = GP_ERR_UNAVAILABLE;
            m->klass = strncmp(r[i]->str, "NOAUTH", 6) == 0 ? GP_ECLASS_AUTH : GP_ECLASS_CONNECTION;
            return NULL;
        }
    return r;
}

static bool set_st(model_t *m, gp_status_t st)
{
    m->st = st;
    m->klass = st == GP_ERR_SERVER || st == GP_ERR_PROTOCOL ? GP_ECLASS_INTERNAL : GP_ECLASS_NONE;
    return st == GP_OK;
}

static bool counter(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer >= 0;
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 20)
        return false;
    for (size_t i = 0; i < r->len; i++)
        if (r->str[i] < '0' || r->str[i] > '9')
            return false;
    return true;
}

/* The generation round trip. */
static bool gen(model_t *m)
{
    redisReply **r = exec(m, 2);
    if (!r)
        return false;
    if (is_err(r[1]))
        return set_st(m, GP_ERR_SERVER);
    return set_st(m, counter(r[1]) ? GP_OK : GP_ERR_PROTOCOL);
}

/* One command: its reply, an error reply (GP_ERR_SERVER) or a failure. */
static const redisReply *one(model_t *m)
{
    redisReply **r = exec(m, 1);
    if (!r)
        return NULL;
    if (is_err(r[0])) {
        set_st(m, GP_ERR_SERVER);
        return NULL;
    }
    set_st(m, GP_OK);
    return r[0];
}

static void check_err(const gp_error_t *e, gp_status_t st, gp_error_class_t klass, const char *what)
{
    if (st == GP_OK || st == GP_ERR_MISS)
        return;
    if (e->status != st || !e->message[0])
        fail("%s: err has status %d and message \"%s\" for status %d", what, (int)e->status, e->message, (int)st);
    if (e->klass != klass)
        fail("%s: error class %d (%s), expected %d", what, (int)e->klass, e->message, (int)klass);
    if (st == GP_ERR_UNAVAILABLE && !e->retriable)
        fail("%s: GP_ERR_UNAVAILABLE not retriable", what);
    if (st == GP_ERR_SERVER && strncmp(e->message, "Redis replied: ", 15) != 0)
        fail("%s: a server error's message is \"%s\"", what, e->message);
}

static void expect(gp_status_t got, const model_t *m, const gp_error_t *e, const char *what)
{
    if (got != m->st) {
        fuzz_show_str("message", e->message);
        fail("%s: status %d (%s), the model says %d (%s)", what, (int)got, gp_strerror(got), (int)m->st,
             gp_strerror(m->st));
    }
    check_err(e, got, m->klass, what);
}

static void run_call(const input_t *in, const run_t *c, gp_cache_t *cache)
{
    model_t m = {c, 0, GP_OK, GP_ECLASS_NONE, {NULL}};
    gp_error_t e;
    gp_status_t st;
    const char *what = OP_NAMES[in->op];
    switch (in->op) {
    case OP_PING: {
        redisReply **r = exec(&m, 1);
        if (r)
            set_st(&m, r[0]->type == REDIS_REPLY_STATUS && strcmp(r[0]->str, "PONG") == 0 ? GP_OK
                       : is_err(r[0])                                                    ? GP_ERR_SERVER
                                                                                         : GP_ERR_PROTOCOL);
        int64_t lat = -1;
        st = gp_cache_ping(cache, &lat, &e);
        expect(st, &m, &e, what);
        if (st == GP_OK ? lat < 0 : lat != 0)
            fail("ping: latency %lld with status %d", (long long)lat, (int)st);
        break;
    }
    case OP_GET:
    case OP_GET_JSON: {
        const redisReply *r = gen(&m) ? one(&m) : NULL;
        json_t *want_j = NULL;
        if (r) {
            if (r->type == REDIS_REPLY_NIL)
                set_st(&m, GP_ERR_MISS);
            else if (r->type != REDIS_REPLY_STRING)
                set_st(&m, GP_ERR_PROTOCOL);
            else if (in->op == OP_GET_JSON && !(want_j = json_loadb(r->str, r->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)))
                set_st(&m, GP_ERR_MISS);
        }
        if (in->op == OP_GET) {
            char *v = (char *)&v;
            size_t len = 777;
            st = gp_cache_get(cache, TENANT, "k", &v, &len, &e);
            expect(st, &m, &e, what);
            if (st == GP_OK ? !v || len != r->len || memcmp(v, r->str, len) != 0 || v[len] != 0 : v || len)
                fail("get: the value is not the reply's bytes (or a failure left one)");
            free(v);
        } else {
            json_t *j = (json_t *)&j;
            st = gp_cache_get_json(cache, TENANT, "k", &j, &e);
            expect(st, &m, &e, what);
            if (st == GP_OK ? !json_equal(j, want_j) : j != NULL)
                fail("get_json: not jansson's value (or a failure left one)");
            if (st == GP_OK)
                json_decref(j);
        }
        json_decref(want_j);
        break;
    }
    case OP_SET: {
        const redisReply *r = gen(&m) ? one(&m) : NULL;
        if (r && r->type != REDIS_REPLY_STATUS)
            set_st(&m, GP_ERR_PROTOCOL);
        st = gp_cache_set(cache, TENANT, "k", "v\0w", 3, 0, &e);
        expect(st, &m, &e, what);
        break;
    }
    case OP_DEL:
    case OP_EXISTS:
    case OP_TTL:
    case OP_EXPIRE: {
        const redisReply *r = gen(&m) ? one(&m) : NULL;
        if (r && r->type != REDIS_REPLY_INTEGER)
            set_st(&m, GP_ERR_PROTOCOL);
        else if (r && (in->op == OP_TTL ? r->integer == -2 : r->integer == 0))
            set_st(&m, GP_ERR_MISS);
        int64_t ttl = 777;
        st = in->op == OP_DEL      ? gp_cache_del(cache, TENANT, "k", &e)
             : in->op == OP_EXISTS ? gp_cache_exists(cache, TENANT, "k", &e)
             : in->op == OP_EXPIRE ? gp_cache_expire(cache, TENANT, "k", 5000, &e)
                                   : gp_cache_ttl(cache, TENANT, "k", &ttl, &e);
        expect(st, &m, &e, what);
        if (in->op == OP_TTL && (st == GP_OK ? ttl != r->integer : ttl != 0))
            fail("ttl: %lld", (long long)ttl);
        break;
    }
    case OP_INCR: {
        const redisReply *r = gen(&m) ? one(&m) : NULL;
        if (r && r->type != REDIS_REPLY_INTEGER)
            set_st(&m, GP_ERR_PROTOCOL);
        int64_t v = 777;
        st = gp_cache_incr(cache, TENANT, "k", 3, 0, &v, &e);
        expect(st, &m, &e, what);
        if (st == GP_OK ? v != r->integer : v != 0)
            fail("incr: %lld", (long long)v);
        break;
    }
    case OP_MGET: {
        size_t n = (size_t)in->nkeys;
        const redisReply *r = gen(&m) ? one(&m) : NULL;
        if (r && (r->type != REDIS_REPLY_ARRAY || r->elements != n))
            set_st(&m, GP_ERR_PROTOCOL);
        else if (r)
            for (size_t i = 0; i < n; i++)
                if (r->element[i]->type != REDIS_REPLY_NIL && r->element[i]->type != REDIS_REPLY_STRING) {
                    set_st(&m, GP_ERR_PROTOCOL);
                    break;
                }
        gp_cache_value_t v[4];
        memset(v, 0x5a, sizeof v);
        st = gp_cache_mget(cache, TENANT, n, KEYS, v, &e);
        expect(st, &m, &e, what);
        for (size_t i = 0; i < n; i++) {
            const redisReply *x = st == GP_OK ? r->element[i] : NULL;
            bool ok = x && x->type == REDIS_REPLY_STRING
                          ? v[i].data && v[i].len == x->len && memcmp(v[i].data, x->str, x->len) == 0 &&
                                v[i].data[x->len] == 0
                          : !v[i].data && !v[i].len;
            if (!ok)
                fail("mget: value %zu is not its reply's", i);
        }
        gp_cache_values_free(v, n);
        break;
    }
    case OP_MSET: {
        size_t n = (size_t)in->nkeys;
        redisReply **r = gen(&m) ? exec(&m, (int)n) : NULL;
        for (size_t i = 0; r && i < n; i++) { /* the first bad reply decides */
            if (is_err(r[i]) || r[i]->type != REDIS_REPLY_STATUS) {
                set_st(&m, is_err(r[i]) ? GP_ERR_SERVER : GP_ERR_PROTOCOL);
                break;
            }
        }
        static char a[] = "a", b[] = "", cc[] = "c\0", d[] = "dd";
        gp_cache_value_t v[4] = {{a, 1}, {b, 0}, {cc, 2}, {d, 2}};
        st = gp_cache_mset(cache, TENANT, n, KEYS, v, 0, &e);
        expect(st, &m, &e, what);
        break;
    }
    case OP_INVALIDATE:
        gen(&m);
        st = gp_cache_invalidate_tenant(cache, TENANT, &e);
        expect(st, &m, &e, what);
        break;
    }
}

/* The cache, on a connection whose other end holds the input's chunks. */
static void run_cache(const input_t *in, const run_t *c)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        fail("socketpair: %s", strerror(errno));
    size_t at = 0;
    for (int k = 0; k < in->nchunks; k++) {
        ssize_t w = send(sv[1], in->bytes + at, in->chunk[k], MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w != (ssize_t)in->chunk[k])
            fail("cannot queue chunk %d (%zu bytes): %s", k, in->chunk[k], strerror(errno));
        at += in->chunk[k];
    }
    shutdown(sv[1], SHUT_WR); /* then the cache reads the end of the connection */

    gp_config_t cfg;
    gp_config_init(&cfg);
    cfg.redis.host = "127.0.0.1";
    cfg.redis.port = refused_port;
    cfg.redis.pool_size = 1;
    cfg.redis.timeout_ms = 10000;
    gp_cache_options_t opts = {.breaker_threshold = 1000, .generation_ttl_ms = -1};
    gp_cache_t *cache = NULL;
    gp_error_t e;
    if (gp_cache_create(&cfg, &opts, &cache, &e) != GP_OK)
        fail("gp_cache_create: %s", e.message);
    redisContext *ctx = redisConnectFd(sv[0]);
    if (!ctx || ctx->err)
        fail("redisConnectFd failed");
    struct timeval tv = {10, 0}; /* the cache's socket timeout, REDIS_TIMEOUT */
    if (redisSetTimeout(ctx, tv) != REDIS_OK)
        fail("redisSetTimeout failed");
    if (gp__cache_adopt(cache, ctx) != GP_OK)
        fail("gp__cache_adopt failed");
    run_call(in, c, cache);
    gp_cache_close(cache); /* closes sv[0] */
    gp_config_release(&cfg);
    close(sv[1]);
}

/* ---- the target ------------------------------------------------------------------ */

static void quiet(void *userdata, gp_log_level_t level, const char *component, const char *message)
{
    (void)userdata, (void)level, (void)component, (void)message;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    redisReader *r = redisReaderCreate();
    if (!r)
        abort();
    default_fns = *r->fn;
    plain_fns = default_fns;
    plain_fns.createArray = plain_array;
    redisReaderFree(r);
    /* A port that refuses connections: bound, never listening. */
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(s, (struct sockaddr *)&a, &al) != 0)
        fuzz_fail("cannot reserve a port: %s", strerror(errno));
    refused_port = ntohs(a.sin_port); /* s stays open for the process's life */
    gp_log_set_handler(quiet, NULL, GP_LOG_DEBUG); /* formatted, not shown */
    fuzz_guard_stdout();
    return 0;
}

static run_t plain_run, cache_run;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cur_data = data;
    cur_size = size;
    input_t in;
    parse(&in, data, size);

    redisReader *p = redisReaderCreateWithFunctions(&plain_fns);
    redisReader *c = redisReaderCreate();
    if (!p || !c)
        abort();
    gp__cache_reader_setup(c);
    plain_cap = in.len / 3; /* each element takes 3 bytes or more ("+\r\n") */
    plain_refused = false;
    for (int i = 0; i < NARENAS; i++)
        gp__cache_arena_init(&arenas[i]);
    read_all(p, &in, false, &plain_run);
    read_all(c, &in, true, &cache_run);
    check_readers(&plain_run, &cache_run);

    run_cache(&in, &cache_run);

    for (int i = 0; i < plain_run.n; i++)
        freeReplyObject(plain_run.replies[i]);
    redisReaderFree(p);
    redisReaderFree(c); /* a reply half read is in an arena: not freed here */
    for (int i = 0; i < NARENAS; i++)
        gp__cache_arena_free(&arenas[i]);
    fuzz_check_stdout();
    return 0;
}
