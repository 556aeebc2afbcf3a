/* tenant_listen.c — the notification listener (a connection of its own on
 * a thread of its own: LISTEN, reconnect with the pool's backoff, LISTEN
 * again, report the gap), keyed channels and authenticated messages, and
 * NOTIFY from a tenant-scoped transaction. See growplate/listen.h.
 *
 * Why keyed: PostgreSQL lets every session of the application role NOTIFY
 * any channel, so a channel's name or a payload's shape proves nothing;
 * only the tenant key, which SQL cannot read, does. A channel is
 * "gp_" + 24 hex digits of HMAC(key, "ch1.t.<tenant>.<name>") (a service
 * channel: "ch1.s.<name>"); a message is "<tag>.<tenant>.<payload>" where
 * tag is 32 hex digits of HMAC(key, "msg1.<channel>.<tenant>.<payload>"). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "growplate/listen.h"
#include "schema_internal.h" /* gp__pg_log_notices */
#include "tenant_internal.h"

#define CHANNEL_LEN 27 /* "gp_" + 24 hex */
#define TAG_LEN 32
#define MAX_PARAMS 32
/* Wake-up period of the listener's thread when nothing happens (it sleeps
 * in poll on its socket and its wake pipe: this only bounds how long a
 * lost connection that sends nothing goes unnoticed by libpq). */
#define IDLE_POLL_MS 1000

/* ---- channels and messages --------------------------------------------------------- */

static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > GP_CHANNEL_NAME_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static gp_status_t bad_name(gp_error_t *err)
{
    return gp__client_error(err, GP_ERR_INVALID, "a channel name is 1 to %d characters of [a-z0-9_] (e.g. "
                            "\"orders\")", GP_CHANNEL_NAME_MAX);
}

static void derive_channel(const gp__tenant_key_t *k, const char *tenant, const char *name, char out[CHANNEL_LEN + 1])
{
    char msg[160];
    int n = tenant ? snprintf(msg, sizeof msg, "ch1.t.%s.%s", tenant, name) : snprintf(msg, sizeof msg, "ch1.s.%s", name);
    unsigned char mac[32];
    gp__hmac_sha256(k->key, k->len, msg, (size_t)n, mac);
    memcpy(out, "gp_", 3);
    gp__hex(mac, 12, out + 3);
    gp__wipe(mac, sizeof mac);
}

static void message_tag(const gp__tenant_key_t *k, const char *channel, const char *tenant, const char *payload,
                        size_t len, char tag[TAG_LEN + 1])
{
    unsigned char ipad[64], opad[64], inner[32], mac[32];
    gp__hmac_pads(k->key, k->len, ipad, opad);
    gp__sha256_t c;
    gp__sha256_init(&c);
    gp__sha256_update(&c, ipad, 64);
    gp__sha256_update(&c, "msg1.", 5);
    gp__sha256_update(&c, channel, strlen(channel));
    gp__sha256_update(&c, ".", 1);
    gp__sha256_update(&c, tenant, strlen(tenant));
    gp__sha256_update(&c, ".", 1);
    gp__sha256_update(&c, payload, len);
    gp__sha256_final(&c, inner);
    gp__sha256_init(&c);
    gp__sha256_update(&c, opad, 64);
    gp__sha256_update(&c, inner, 32);
    gp__sha256_final(&c, mac);
    gp__hex(mac, TAG_LEN / 2, tag);
    gp__wipe(ipad, sizeof ipad);
    gp__wipe(opad, sizeof opad);
    gp__wipe(mac, sizeof mac);
}

static bool same_tag(const char *a, const char *b)
{
    unsigned d = 0;
    for (int i = 0; i < TAG_LEN; i++)
        d |= (unsigned)(a[i] ^ b[i]);
    return d == 0;
}

static gp_status_t notify(gp_tenant_tx_t *tx, bool service, const char *name, const char *payload, gp_error_t *err)
{
    if (!name_ok(name))
        return bad_name(err);
    if (!payload)
        payload = "";
    size_t len = strlen(payload);
    if (len > GP_NOTIFY_PAYLOAD_MAX)
        return gp__client_error(err, GP_ERR_INVALID, "the payload is %zu bytes; at most %d (send an id and let "
                                "the receiver read the rest)", len, GP_NOTIFY_PAYLOAD_MAX);
    if (gp__utf8_invalid_at((const unsigned char *)payload, len) >= 0)
        return gp__client_error(err, GP_ERR_INVALID, "the payload is not UTF-8 text");
    gp_conn_t *conn;
    gp_status_t st = gp__tenant_tx_scope(tx, &conn, err);
    if (st != GP_OK)
        return st;
    const gp__tenant_key_t *k = conn->tenant_key;
    if (!k || !k->set)
        return gp__client_error(err, GP_ERR_CONFIG, "DATABASE_TENANT_KEY is not set: notifications are keyed with "
                                "the tenant key (give every process of the service the same one)");
    const char *tenant = gp_tenant_tx_tenant(tx);
    char channel[CHANNEL_LEN + 1], tag[TAG_LEN + 1];
    derive_channel(k, service ? NULL : tenant, name, channel);
    message_tag(k, channel, tenant, payload, len, tag);
    char wire[TAG_LEN + 1 + GP_TENANT_ID_LEN + 1 + GP_NOTIFY_PAYLOAD_MAX + 1];
    snprintf(wire, sizeof wire, "%s.%s.%s", tag, tenant, payload);
    /* The NOTIFY command, not pg_notify(): scripts/harden.sql revokes the
     * function from the application role, and the command cannot be
     * revoked. It takes no parameters, so the payload is a literal quoted
     * by libpq for this connection; the channel is our own hex name. The
     * library's own statement leaves no session state: not judged by its
     * tag as caller SQL is. */
    char *lit = PQescapeLiteral(conn->pg, wire, strlen(wire));
    if (!lit)
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory quoting the payload");
    gp__sbuf_t b = {0};
    gp__sbuf_add(&b, "NOTIFY %s, %s", channel, lit);
    PQfreemem(lit);
    if (b.oom) {
        free(b.s);
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
    }
    if ((st = gp__check_conn(conn, err)) == GP_OK) {
        PGresult *r = gp__exec(conn, b.s);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            st = gp__fail(conn, r, err);
        else if (err)
            gp_error_clear(err);
        PQclear(r);
    }
    free(b.s);
    return st;
}

gp_status_t gp_tenant_tx_notify(gp_tenant_tx_t *tx, const char *name, const char *payload, gp_error_t *err)
{
    return notify(tx, false, name, payload, err);
}

gp_status_t gp_tenant_tx_notify_service(gp_tenant_tx_t *tx, const char *name, const char *payload, gp_error_t *err)
{
    return notify(tx, true, name, payload, err);
}

/* ---- the listener ------------------------------------------------------------------ */

typedef struct sub {
    char channel[CHANNEL_LEN + 1];
    char name[GP_CHANNEL_NAME_MAX + 1];
    char tenant[GP_TENANT_ID_LEN + 1]; /* "" for a service channel */
    gp_notify_fn fn;
    void *userdata;
    bool listening; /* LISTEN in force on the current connection */
} sub_t;

typedef struct qnode {
    struct qnode *next;
    gp_notification_t *n;
} qnode_t;

struct gp_listener {
    char *kw[MAX_PARAMS + 1], *val[MAX_PARAMS + 1];
    int connect_timeout_ms;
    gp__tenant_key_t key;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;   /* everything below but pg */
    pthread_cond_t cv;    /* a LISTEN confirmed, the connection lost */
    bool stop;
    bool connected;
    sub_t *subs;
    size_t nsubs, capsubs;
    char (*drop)[CHANNEL_LEN + 1]; /* channels unsubscribed, to UNLISTEN */
    size_t ndrop, capdrop;
    qnode_t *qhead, *qtail;
    int wake[2]; /* API -> thread: subscriptions to LISTEN, stop */
    int qfd[2];  /* readable while the queue is not empty */

    PGconn *pg;  /* the thread's (the creator's until the thread starts) */
    _Atomic int pid;
    _Atomic uint64_t rejected, gaps;
};

static void set_nonblock_cloexec(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void drain_fd(int fd)
{
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

static void poke(int fd)
{
    ssize_t w;
    do
        w = write(fd, "x", 1);
    while (w < 0 && errno == EINTR);
}

/* One connection attempt; NULL with err filled on failure. */
static PGconn *connect_once(gp_listener_t *l, gp_error_t *err)
{
    PGconn *c = PQconnectdbParams((const char *const *)l->kw, (const char *const *)l->val, 1);
    if (!c) {
        gp__client_error(err, GP_ERR_NOMEM, "out of memory creating the listener's connection");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        gp__error_from_connect(c, err);
        PQfinish(c);
        return NULL;
    }
    gp__pg_log_notices(c, "listen");
    int server_pid = 0;
    int pooler = gp__pooler_check(c, gp__now_ns() + (int64_t)l->connect_timeout_ms * 1000000LL, &server_pid);
    if (pooler != 0) {
        PQfinish(c);
        gp__client_error(err, pooler < 0 ? GP_ERR_TIMEOUT : GP_ERR_CONFIG,
                         pooler < 0 ? "the listener's connection got no answer in time"
                                    : "DATABASE_URL goes through a connection pooler: LISTEN needs a session with the "
                                      "server itself; give the listener the server's address");
        return NULL;
    }
    return c;
}

/* Issue LISTEN for every subscription not yet listening on this
 * connection; false when the connection failed. */
static bool sync_listens(gp_listener_t *l)
{
    gp__sbuf_t sql = {0}, listens = {0};
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->ndrop; i++) /* first: a channel dropped and subscribed again ends listened to */
        gp__sbuf_add(&sql, "UNLISTEN %s;", l->drop[i]);
    for (size_t i = 0; i < l->nsubs; i++)
        if (!l->subs[i].listening)
            gp__sbuf_add(&listens, "LISTEN %s;", l->subs[i].channel);
    if (listens.s)
        gp__sbuf_add(&sql, "%s", listens.s);
    bool oom = sql.oom || listens.oom;
    if (!oom)
        l->ndrop = 0;
    pthread_mutex_unlock(&l->mu);
    if (oom || !sql.s) {
        free(sql.s);
        free(listens.s);
        return true; /* nothing to do, or retried at the next wake-up */
    }
    PGresult *r = PQexec(l->pg, sql.s);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        gp_error_t e;
        gp__error_from_pg(l->pg, r, &e);
        gp__log(GP_LOG_WARN, "listen", "LISTEN failed (%s); reconnecting", e.message);
    }
    PQclear(r);
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; ok && listens.s && i < l->nsubs; i++)
        if (strstr(listens.s, l->subs[i].channel))
            l->subs[i].listening = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    free(sql.s);
    free(listens.s);
    return ok;
}

/* A copy of n in one block, for the queue. */
static gp_notification_t *copy_note(const gp_notification_t *n)
{
    size_t ch = n->channel ? strlen(n->channel) + 1 : 0, te = n->tenant_id ? strlen(n->tenant_id) + 1 : 0;
    size_t pl = n->payload ? n->payload_len + 1 : 0;
    gp_notification_t *c = malloc(sizeof *c + ch + te + pl);
    if (!c)
        return NULL;
    *c = *n;
    char *p = (char *)(c + 1);
    if (ch) {
        memcpy(p, n->channel, ch);
        c->channel = p;
        p += ch;
    }
    if (te) {
        memcpy(p, n->tenant_id, te);
        c->tenant_id = p;
        p += te;
    }
    if (pl) {
        memcpy(p, n->payload, pl);
        c->payload = p;
    }
    return c;
}

static void enqueue(gp_listener_t *l, const gp_notification_t *n)
{
    gp_notification_t *c = copy_note(n);
    qnode_t *q = c ? malloc(sizeof *q) : NULL;
    if (!q) {
        free(c);
        gp__log(GP_LOG_ERROR, "listen", "out of memory: a notification was dropped");
        return;
    }
    q->next = NULL;
    q->n = c;
    pthread_mutex_lock(&l->mu);
    bool was_empty = !l->qhead;
    if (l->qtail)
        l->qtail->next = q;
    else
        l->qhead = q;
    l->qtail = q;
    if (was_empty)
        poke(l->qfd[1]);
    pthread_mutex_unlock(&l->mu);
}

static void report_gap(gp_listener_t *l, int64_t gap_ms)
{
    atomic_fetch_add(&l->gaps, 1);
    gp__log(GP_LOG_WARN, "listen", "the listener was disconnected for %lld ms and is listening again; "
            "notifications of that time are lost", (long long)gap_ms);
    gp_notification_t n = {.kind = GP_NOTIFY_GAP, .gap_ms = gap_ms};
    pthread_mutex_lock(&l->mu);
    size_t count = l->nsubs;
    sub_t *copy = count ? malloc(count * sizeof *copy) : NULL;
    if (copy)
        memcpy(copy, l->subs, count * sizeof *copy);
    pthread_mutex_unlock(&l->mu);
    bool queued = false;
    for (size_t i = 0; i < count && copy; i++) {
        if (copy[i].fn)
            copy[i].fn(copy[i].userdata, &n);
        else if (!queued)
            enqueue(l, &n), queued = true;
    }
    if (count && !copy)
        enqueue(l, &n); /* out of memory: the queue still learns of it */
    free(copy);
}

static void dispatch(gp_listener_t *l, const PGnotify *pn)
{
    sub_t s;
    bool found = false;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->nsubs && !found; i++)
        if (strcmp(l->subs[i].channel, pn->relname) == 0) {
            s = l->subs[i];
            found = true;
        }
    pthread_mutex_unlock(&l->mu);
    if (!found)
        return; /* a channel no longer subscribed */
    const char *x = pn->extra ? pn->extra : "";
    size_t len = strlen(x);
    char tag[TAG_LEN + 1], tenant[GP_TENANT_ID_LEN + 1];
    bool ok = len >= TAG_LEN + 1 + GP_TENANT_ID_LEN + 1 && x[TAG_LEN] == '.' && x[TAG_LEN + 1 + GP_TENANT_ID_LEN] == '.';
    if (ok) {
        memcpy(tenant, x + TAG_LEN + 1, GP_TENANT_ID_LEN);
        tenant[GP_TENANT_ID_LEN] = 0;
        ok = gp_tenant_id_valid(tenant, NULL, 0) && (!s.tenant[0] || strcmp(tenant, s.tenant) == 0);
    }
    const char *payload = x + TAG_LEN + 1 + GP_TENANT_ID_LEN + 1;
    if (ok) {
        message_tag(&l->key, s.channel, tenant, payload, len - (size_t)(payload - x), tag);
        ok = same_tag(tag, x);
    }
    if (!ok) {
        atomic_fetch_add(&l->rejected, 1);
        gp__log(GP_LOG_WARN, "listen", "dropped a notification on channel '%s' that does not verify (not sent by "
                "this service for %s, or forged by SQL on the database)", s.name,
                s.tenant[0] ? "this tenant" : "a tenant");
        return;
    }
    gp_notification_t n = {.kind = GP_NOTIFY_MESSAGE, .channel = s.name, .tenant_id = tenant, .payload = payload,
                           .payload_len = len - (size_t)(payload - x), .service = !s.tenant[0]};
    if (s.fn)
        s.fn(s.userdata, &n);
    else
        enqueue(l, &n);
}

static void lose_connection(gp_listener_t *l)
{
    PQfinish(l->pg);
    l->pg = NULL;
    atomic_store(&l->pid, 0);
    pthread_mutex_lock(&l->mu);
    l->connected = false;
    for (size_t i = 0; i < l->nsubs; i++)
        l->subs[i].listening = false;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* Sleep up to ns, or until stop is set (false then). */
static bool pause_unless_stopped(gp_listener_t *l, int64_t ns)
{
    int64_t end = gp__now_ns() + ns;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        bool stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        int64_t left = end - gp__now_ns();
        if (stop || left <= 0)
            return !stop;
        struct pollfd p = {.fd = l->wake[0], .events = POLLIN};
        if (poll(&p, 1, (int)((left + 999999) / 1000000)) > 0)
            drain_fd(l->wake[0]);
    }
}

static void *listener_main(void *arg)
{
    gp_listener_t *l = arg;
    int failures = 0;
    int64_t lost_at = 0;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        bool stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        if (stop)
            break;
        if (!l->pg) {
            gp_error_t e;
            PGconn *c = connect_once(l, &e);
            if (!c) {
                if (++failures == 1)
                    gp__log(GP_LOG_WARN, "listen", "reconnecting the listener: %s (retrying with backoff)", e.message);
                pause_unless_stopped(l, gp__pool_backoff_ns(failures));
                continue;
            }
            failures = 0;
            l->pg = c;
            atomic_store(&l->pid, PQbackendPID(c));
            pthread_mutex_lock(&l->mu);
            l->connected = true;
            pthread_mutex_unlock(&l->mu);
            if (!sync_listens(l)) {
                lose_connection(l);
                continue;
            }
            if (lost_at) {
                report_gap(l, (gp__now_ns() - lost_at) / 1000000);
                lost_at = 0;
            }
        }
        struct pollfd p[2] = {{.fd = PQsocket(l->pg), .events = POLLIN}, {.fd = l->wake[0], .events = POLLIN}};
        int r = poll(p, 2, IDLE_POLL_MS);
        if (r < 0 && errno != EINTR)
            continue;
        if (p[1].revents & POLLIN) {
            drain_fd(l->wake[0]);
            if (!sync_listens(l)) {
                lose_connection(l);
                lost_at = gp__now_ns();
                continue;
            }
        }
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) || r == 0) {
            if (!PQconsumeInput(l->pg) || PQstatus(l->pg) == CONNECTION_BAD) {
                gp__log(GP_LOG_WARN, "listen", "the listener's connection broke; reconnecting");
                lose_connection(l);
                lost_at = gp__now_ns();
                continue;
            }
        }
        PGnotify *n;
        while ((n = PQnotifies(l->pg))) {
            dispatch(l, n);
            PQfreemem(n);
        }
    }
    PQfinish(l->pg);
    l->pg = NULL;
    return NULL;
}

void gp_listener_free(gp_listener_t *l)
{
    if (!l)
        return;
    if (l->thread_started) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_mutex_unlock(&l->mu);
        poke(l->wake[1]);
        pthread_join(l->thread, NULL);
    }
    PQfinish(l->pg);
    for (qnode_t *q = l->qhead, *next; q; q = next) {
        next = q->next;
        free(q->n);
        free(q);
    }
    for (int i = 0; i < 2; i++) {
        if (l->wake[i] >= 0)
            close(l->wake[i]);
        if (l->qfd[i] >= 0)
            close(l->qfd[i]);
    }
    for (int i = 0; i < MAX_PARAMS; i++) { /* not only up to the first NULL: a failed strdup leaves a hole */
        free(l->kw[i]);
        if (l->val[i])
            gp__wipe(l->val[i], strlen(l->val[i]));
        free(l->val[i]);
    }
    free(l->subs);
    free(l->drop);
    gp__wipe(&l->key, sizeof l->key);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

gp_status_t gp_listener_create(const gp_config_t *cfg, gp_listener_t **out, gp_error_t *err)
{
    if (!out)
        return gp__client_error(err, GP_ERR_INVALID, "no listener pointer given");
    *out = NULL;
    if (!cfg)
        return gp__client_error(err, GP_ERR_INVALID, "no configuration given");
    gp_listener_t *l = calloc(1, sizeof *l);
    if (!l)
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
    l->wake[0] = l->wake[1] = l->qfd[0] = l->qfd[1] = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* gp__deadline_mono */
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    gp_status_t st = GP_OK;
    if (!gp__tenant_key_decode(cfg->db.tenant_key, 0, &l->key) || !l->key.set)
        st = gp__client_error(err, GP_ERR_CONFIG, "DATABASE_TENANT_KEY is not set (nor a DATABASE_TENANT_KEY_FILE that "
                              "exists): the listener verifies every notification with the tenant key the senders "
                              "use");
    char msg[GP_ERRBUF_SIZE] = "";
    gp__pg_params_t p;
    if (st == GP_OK && gp__pg_params(&cfg->db, false, &p, msg, sizeof msg) != GP_OK) {
        size_t n = strlen(msg);
        while (n && msg[n - 1] == '\n')
            msg[--n] = 0;
        st = gp__client_error(err, GP_ERR_CONFIG, "%s", msg);
    }
    for (int i = 0; st == GP_OK && i < MAX_PARAMS && p.kw[i]; i++) {
        l->kw[i] = strdup(p.kw[i]);
        l->val[i] = p.val[i] ? strdup(p.val[i]) : NULL;
        if (!l->kw[i] || (p.val[i] && !l->val[i]))
            st = gp__client_error(err, GP_ERR_NOMEM, "out of memory");
    }
    if (st == GP_OK)
        gp__wipe(&p, sizeof p);
    l->connect_timeout_ms = cfg->db.connect_timeout_ms > 0 ? cfg->db.connect_timeout_ms : 5000;
    if (st == GP_OK && (pipe(l->wake) != 0 || pipe(l->qfd) != 0))
        st = gp__client_error(err, GP_ERR_IO, "cannot create the listener's pipes: %s", strerror(errno));
    if (st == GP_OK) {
        for (int i = 0; i < 2; i++) {
            set_nonblock_cloexec(l->wake[i]);
            set_nonblock_cloexec(l->qfd[i]);
        }
        gp_error_t e;
        if (!(l->pg = connect_once(l, &e))) {
            char target[256];
            gp_config_db_display(&cfg->db, target, sizeof target);
            st = e.status;
            if (err) {
                *err = e;
                snprintf(err->message, sizeof err->message, "listener: %s (DATABASE_URL): %s", target, e.message);
            }
        }
    }
    if (st == GP_OK) {
        atomic_store(&l->pid, PQbackendPID(l->pg));
        l->connected = true;
        if (pthread_create(&l->thread, NULL, listener_main, l) != 0)
            st = gp__client_error(err, GP_ERR_NOMEM, "cannot start the listener's thread");
        else
            l->thread_started = true;
    }
    if (st != GP_OK) {
        gp_listener_free(l);
        return st;
    }
    *out = l;
    if (err)
        gp_error_clear(err);
    return GP_OK;
}

static gp_status_t subscribe(gp_listener_t *l, const char *tenant, const char *name, gp_notify_fn fn, void *ud,
                             gp_error_t *err)
{
    if (!l)
        return gp__client_error(err, GP_ERR_INVALID, "no listener given");
    if (!name_ok(name))
        return bad_name(err);
    sub_t s = {.fn = fn, .userdata = ud};
    derive_channel(&l->key, tenant, name, s.channel);
    snprintf(s.name, sizeof s.name, "%s", name);
    if (tenant)
        memcpy(s.tenant, tenant, GP_TENANT_ID_LEN + 1);
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->nsubs; i++)
        if (strcmp(l->subs[i].channel, s.channel) == 0) {
            pthread_mutex_unlock(&l->mu);
            return gp__client_error(err, GP_ERR_INVALID, "already subscribed to channel '%s'%s", name,
                                    tenant ? " of this tenant" : "");
        }
    if (l->nsubs == l->capsubs) {
        size_t cap = l->capsubs ? l->capsubs * 2 : 8;
        sub_t *ns = realloc(l->subs, cap * sizeof *ns);
        if (!ns) {
            pthread_mutex_unlock(&l->mu);
            return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
        }
        l->subs = ns;
        l->capsubs = cap;
    }
    size_t at = l->nsubs++;
    l->subs[at] = s;
    poke(l->wake[1]);
    /* Wait until the LISTEN is in force, or the connection is down (then
     * the reconnection issues it), bounded by the connect timeout. */
    struct timespec until = gp__deadline_mono(l->connect_timeout_ms);
    gp_status_t st = GP_OK;
    while (l->connected && !l->subs[at].listening) {
        if (pthread_cond_timedwait(&l->cv, &l->mu, &until) == ETIMEDOUT) {
            st = gp__client_error(err, GP_ERR_TIMEOUT, "the LISTEN for '%s' was not confirmed within %d ms; it "
                                  "stays subscribed and takes effect when the server answers", name,
                                  l->connect_timeout_ms);
            break;
        }
    }
    pthread_mutex_unlock(&l->mu);
    if (st == GP_OK && err)
        gp_error_clear(err);
    return st;
}

gp_status_t gp_listener_listen_tenant(gp_listener_t *l, const char *tenant_id, const char *name, gp_notify_fn fn,
                                      void *userdata, gp_error_t *err)
{
    char why[200];
    if (!gp_tenant_id_valid(tenant_id, why, sizeof why))
        return gp__client_error(err, GP_ERR_TENANT, "%s", why);
    return subscribe(l, tenant_id, name, fn, userdata, err);
}

gp_status_t gp_listener_listen_service(gp_listener_t *l, const char *name, gp_notify_fn fn, void *userdata,
                                       gp_error_t *err)
{
    return subscribe(l, NULL, name, fn, userdata, err);
}

gp_status_t gp_listener_unlisten(gp_listener_t *l, const char *tenant_id, const char *name, gp_error_t *err)
{
    if (!l)
        return gp__client_error(err, GP_ERR_INVALID, "no listener given");
    char why[200];
    if (tenant_id && !gp_tenant_id_valid(tenant_id, why, sizeof why))
        return gp__client_error(err, GP_ERR_TENANT, "%s", why);
    if (!name_ok(name))
        return bad_name(err);
    char channel[CHANNEL_LEN + 1];
    derive_channel(&l->key, tenant_id, name, channel);
    pthread_mutex_lock(&l->mu);
    size_t i = 0;
    while (i < l->nsubs && strcmp(l->subs[i].channel, channel) != 0)
        i++;
    if (i == l->nsubs) {
        pthread_mutex_unlock(&l->mu);
        return gp__client_error(err, GP_ERR_NOT_FOUND, "not subscribed to channel '%s'%s", name,
                                tenant_id ? " of this tenant" : "");
    }
    if (l->ndrop == l->capdrop) {
        size_t cap = l->capdrop ? l->capdrop * 2 : 8;
        void *nd = realloc(l->drop, cap * sizeof *l->drop);
        if (!nd) {
            pthread_mutex_unlock(&l->mu);
            return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
        }
        l->drop = nd;
        l->capdrop = cap;
    }
    memcpy(l->drop[l->ndrop++], channel, sizeof channel);
    l->subs[i] = l->subs[--l->nsubs]; /* from now on its messages are nobody's (dispatch drops them) */
    poke(l->wake[1]);
    pthread_mutex_unlock(&l->mu);
    if (err)
        gp_error_clear(err);
    return GP_OK;
}

int gp_listener_fd(const gp_listener_t *l) { return l ? l->qfd[0] : -1; }

gp_status_t gp_listener_next(gp_listener_t *l, gp_notification_t **out)
{
    if (!l || !out)
        return GP_ERR_INVALID;
    pthread_mutex_lock(&l->mu);
    qnode_t *q = l->qhead;
    if (q) {
        l->qhead = q->next;
        if (!l->qhead)
            l->qtail = NULL;
    }
    if (!l->qhead)
        drain_fd(l->qfd[0]);
    pthread_mutex_unlock(&l->mu);
    *out = q ? q->n : NULL;
    free(q);
    return GP_OK;
}

void gp_notification_free(gp_notification_t *n) { free(n); }

uint64_t gp_listener_rejected(const gp_listener_t *l) { return l ? atomic_load(&l->rejected) : 0; }
uint64_t gp_listener_gaps(const gp_listener_t *l) { return l ? atomic_load(&l->gaps) : 0; }
int gp_listener_backend_pid(const gp_listener_t *l) { return l ? atomic_load(&l->pid) : 0; }
