/* cache_net.c — the bottom layer of the cache: opening one Redis
 * connection (connect, AUTH, SELECT, ROLE), finding the master through
 * Redis Sentinel and following its switches (a watcher thread subscribed
 * to +switch-master), and the error replies that mean "wrong node". Knows
 * nothing of the pool, the breaker or the keyspace above it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache_internal.h"

#define NS_PER_MS 1000000LL

/* ---- small things every layer uses ------------------------------------------ */

gp_status_t gp__cache_fail(gp_error_t *err, gp_status_t st, gp_error_class_t klass, const char *fmt, ...)
{
    if (!err)
        return st;
    gp_error_clear(err);
    err->status = st;
    err->klass = klass;
    err->retriable = st == GP_ERR_UNAVAILABLE || st == GP_ERR_TIMEOUT;
    va_list ap;
    va_start(ap, fmt);
    gp__vredact(err->message, sizeof err->message, fmt, ap); /* formatted in full, then redacted */
    va_end(ap);
    return st;
}

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                      "8081828384858687888990919293949596979899";

size_t gp__cache_put_dec(char *p, uint64_t v)
{
    if (v < 10) {
        p[0] = (char)('0' + v);
        return 1;
    }
    char tmp[20], *e = tmp + sizeof tmp, *q = e;
    for (; v >= 100; v /= 100) {
        q -= 2;
        memcpy(q, digit_pairs + 2 * (v % 100), 2);
    }
    if (v >= 10) {
        q -= 2;
        memcpy(q, digit_pairs + 2 * v, 2);
    } else {
        *--q = (char)('0' + v);
    }
    memcpy(p, q, (size_t)(e - q));
    return (size_t)(e - q);
}

bool gp__redis_is_timeout(const redisContext *ctx, int e)
{
    return ctx->err == REDIS_ERR_IO &&
           (e == EAGAIN || e == EWOULDBLOCK || e == ETIMEDOUT || strstr(ctx->errstr, "timed out") ||
            strstr(ctx->errstr, "temporarily unavailable"));
}

struct timeval gp__tv_ms(int64_t ms)
{
    if (ms < 1)
        ms = 1;
    return (struct timeval){(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
}

redisReply *gp__redis_command(redisContext *ctx, SSL *ssl, int argc, const char **argv)
{
    if (ssl) {
        char *cmd = NULL;
        long long n = redisFormatCommandArgv(&cmd, argc, argv, NULL);
        if (n < 0) {
            ctx->err = REDIS_ERR_OOM;
            snprintf(ctx->errstr, sizeof ctx->errstr, "%s", "Out of memory");
            return NULL;
        }
        int e = gp__tls_write(ctx, ssl, cmd, (size_t)n);
        free(cmd);
        void *r = NULL;
        if (e || gp__redis_read_reply(ctx, ssl, &r) != REDIS_OK)
            return NULL;
        return r;
    }
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    redisReply *r = redisCommandArgv(ctx, argc, argv, NULL);
    if (!was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
        const struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

static void addr_text(const char *host, int port, char *out, size_t len)
{
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, len, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

/* ---- TLS -----------------------------------------------------------------------
 * OpenSSL on the socket hiredis connected: hiredis keeps the fd, the reader
 * and the error fields; every byte goes through SSL_write/SSL_read, over a
 * BIO that sends with MSG_NOSIGNAL (OpenSSL's own socket BIO uses write(),
 * which raises SIGPIPE on a connection the server has closed). The socket
 * timeouts hiredis sets (SO_RCVTIMEO/SO_SNDTIMEO) still bound each read and
 * write; the handshake runs non-blocking, within the connect timeout. */

static int bio_write(BIO *b, const char *buf, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = send(fd, buf, (size_t)len, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_write(b);
    return (int)n;
}

static int bio_read(BIO *b, char *buf, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = recv(fd, buf, (size_t)len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_read(b);
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "growplate socket");
    if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) && BIO_meth_set_ctrl(m, bio_ctrl) &&
        BIO_meth_set_create(m, bio_create))
        bio_method = m;
    else
        BIO_meth_free(m);
}

/* The oldest OpenSSL error of this thread as text, the queue cleared. */
static const char *ssl_why(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "%s", errno ? strerror(errno) : "connection closed during the handshake");
    ERR_clear_error();
    return buf;
}

gp_status_t gp__tls_new(const gp__redis_target_t *t, SSL_CTX **out, gp_error_t *err)
{
    *out = NULL;
    if (!t->tls)
        return GP_OK;
    char why[256];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "TLS: cannot create a context: %s",
                              ssl_why(why, sizeof why));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    const char *bad = NULL;
    if (t->tls_ca_file ? SSL_CTX_load_verify_locations(ctx, t->tls_ca_file, NULL) != 1
                       : SSL_CTX_set_default_verify_paths(ctx) != 1)
        bad = t->tls_ca_file ? "REDIS_TLS_CA_FILE: cannot load the CA certificates"
                             : "TLS: cannot load the system's CA certificates (set REDIS_TLS_CA_FILE)";
    else if (t->tls_cert_file && SSL_CTX_use_certificate_chain_file(ctx, t->tls_cert_file) != 1)
        bad = "REDIS_TLS_CERT_FILE: cannot load the client certificate";
    else if (t->tls_key_file && SSL_CTX_use_PrivateKey_file(ctx, t->tls_key_file, SSL_FILETYPE_PEM) != 1)
        bad = "REDIS_TLS_KEY_FILE: cannot load the private key";
    else if (t->tls_cert_file && SSL_CTX_check_private_key(ctx) != 1)
        bad = "REDIS_TLS_KEY_FILE: the private key does not match REDIS_TLS_CERT_FILE";
    if (bad) {
        SSL_CTX_free(ctx);
        return gp__cache_fail(err, GP_ERR_CONFIG, GP_ECLASS_CLIENT, "%s (%s)", bad, ssl_why(why, sizeof why));
    }
    *out = ctx;
    return GP_OK;
}

void gp__tls_free(SSL_CTX *ctx) { SSL_CTX_free(ctx); }

/* Wait until fd is ready for `out` (else reading) or the deadline. */
static bool wait_fd(int fd, bool out, int64_t deadline)
{
    for (;;) {
        int64_t left = (deadline - gp__now_ns()) / NS_PER_MS;
        if (left <= 0)
            return false;
        struct pollfd p = {fd, (short)(out ? POLLOUT : POLLIN), 0};
        int n = poll(&p, 1, (int)(left > 1000000 ? 1000000 : left));
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

static bool is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* The TLS handshake on ctx's socket, verifying the certificate for
 * t->tls_server_name or `host`, by `deadline`. GP_ERR_CONNECT when the
 * certificate is not accepted (a configuration problem, not an outage). */
static gp_status_t tls_handshake(SSL_CTX *tls, const gp__redis_target_t *t, const char *host, redisContext *ctx,
                                 const char *display, int64_t deadline, SSL **out, gp_error_t *err)
{
    *out = NULL;
    char why[256];
    pthread_once(&bio_once, bio_method_init);
    ERR_clear_error();
    SSL *ssl = bio_method ? SSL_new(tls) : NULL;
    BIO *bio = ssl ? BIO_new(bio_method) : NULL;
    if (!bio) {
        SSL_free(ssl);
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory starting TLS");
    }
    BIO_set_data(bio, (void *)(intptr_t)ctx->fd);
    SSL_set_bio(ssl, bio, bio);
    const char *name = t->tls_server_name ? t->tls_server_name : host;
    bool ip = is_ip(name);
    if ((!ip && SSL_set_tlsext_host_name(ssl, name) != 1) ||
        (ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1 : SSL_set1_host(ssl, name) != 1)) {
        SSL_free(ssl);
        return gp__cache_fail(err, GP_ERR_CONFIG, GP_ECLASS_CLIENT,
                              "%s: TLS: '%s' cannot be checked against a certificate (REDIS_TLS_SERVER_NAME)", display,
                              name);
    }
    int fl = fcntl(ctx->fd, F_GETFL);
    fcntl(ctx->fd, F_SETFL, fl | O_NONBLOCK);
    gp_status_t st = GP_OK;
    for (;;) {
        errno = 0;
        int rc = SSL_connect(ssl);
        if (rc == 1)
            break;
        int e = SSL_get_error(ssl, rc);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && wait_fd(ctx->fd, e == SSL_ERROR_WANT_WRITE, deadline))
            continue;
        long vr = SSL_get_verify_result(ssl);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_TIMEOUT,
                                "%s: TLS handshake not done within REDIS_CONNECT_TIMEOUT (is the server's port TLS? a "
                                "plain Redis waits for more of what it takes for a command)",
                                display);
        else if (vr != X509_V_OK)
            st = gp__cache_fail(err, GP_ERR_CONNECT, GP_ECLASS_CONNECTION,
                                "%s: TLS: the server's certificate was not accepted: %s (check %s)", display,
                                X509_verify_cert_error_string(vr),
                                vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH
                                    ? "REDIS_TLS_SERVER_NAME: the certificate is for another name"
                                    : "REDIS_TLS_CA_FILE: it must hold the CA that signed the server's certificate");
        else
            st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION,
                                "%s: TLS handshake failed: %s (is the server's port TLS? does it require a client "
                                "certificate: REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE?)",
                                display, ssl_why(why, sizeof why));
        break;
    }
    ERR_clear_error();
    fcntl(ctx->fd, F_SETFL, fl);
    if (st != GP_OK) {
        SSL_free(ssl);
        return st;
    }
    *out = ssl;
    return GP_OK;
}

/* A TLS read or write that failed: ctx's error fields as hiredis would set
 * them (errno EAGAIN for the socket timeout, which gp__redis_is_timeout
 * tells). */
static void tls_io_error(redisContext *ctx, SSL *ssl, int rc)
{
    int e = SSL_get_error(ssl, rc), saved = errno;
    char why[256];
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ctx->err = REDIS_ERR_IO;
        errno = EAGAIN;
        snprintf(ctx->errstr, sizeof ctx->errstr, "%s", "Resource temporarily unavailable");
    } else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && saved == 0)) {
        ctx->err = REDIS_ERR_EOF;
        snprintf(ctx->errstr, sizeof ctx->errstr, "%s", "Server closed the connection");
    } else {
        ctx->err = REDIS_ERR_IO;
        snprintf(ctx->errstr, sizeof ctx->errstr, "TLS: %s",
                 e == SSL_ERROR_SYSCALL ? strerror(saved) : ssl_why(why, sizeof why));
        errno = saved;
    }
    ERR_clear_error();
}

int gp__tls_write(redisContext *ctx, SSL *ssl, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        int chunk = len > INT32_MAX ? INT32_MAX : (int)len;
        ERR_clear_error();
        int rc = SSL_write(ssl, p, chunk);
        if (rc <= 0) {
            tls_io_error(ctx, ssl, rc);
            return errno ? errno : EIO;
        }
        p += rc;
        len -= (size_t)rc;
    }
    return 0;
}

/* One SSL_read into ctx's reader; REDIS_ERR with ctx's error fields set. */
static int tls_read_more(redisContext *ctx, SSL *ssl)
{
    char buf[16384];
    ERR_clear_error();
    int n = SSL_read(ssl, buf, sizeof buf);
    if (n <= 0) {
        tls_io_error(ctx, ssl, n);
        return REDIS_ERR;
    }
    if (redisReaderFeed(ctx->reader, buf, (size_t)n) != REDIS_OK) {
        ctx->err = ctx->reader->err;
        snprintf(ctx->errstr, sizeof ctx->errstr, "%s", ctx->reader->errstr);
        return REDIS_ERR;
    }
    return REDIS_OK;
}

int gp__redis_read_reply(redisContext *ctx, SSL *ssl, void **reply)
{
    *reply = NULL;
    if (!ssl)
        return redisGetReply(ctx, reply);
    for (;;) {
        if (redisReaderGetReply(ctx->reader, reply) != REDIS_OK) {
            ctx->err = ctx->reader->err;
            snprintf(ctx->errstr, sizeof ctx->errstr, "%s", ctx->reader->errstr);
            return REDIS_ERR;
        }
        if (*reply)
            return REDIS_OK;
        if (tls_read_more(ctx, ssl) != REDIS_OK)
            return REDIS_ERR;
    }
}

void gp__redis_close(redisContext *ctx, SSL *ssl)
{
    SSL_free(ssl); /* the BIO does not own the socket: hiredis closes it */
    redisFree(ctx);
}

/* ---- replies outside the pool's arenas ------------------------------------------
 * Setup commands (AUTH, SELECT, ROLE), the sentinels and the watcher read
 * with hiredis' blocking calls into malloc'd replies that freeReplyObject
 * frees, as hiredis' own functions build them, but an array reply may not
 * announce more than REPLY_MAX_ELEMENTS (hiredis 0.14 would allocate what
 * any server announces). The reader's privdata points to a bool set when
 * one was refused. */

static void *attach(const redisReadTask *t, redisReply *r)
{
    if (r && t->parent) {
        redisReply *parent = t->parent->obj;
        parent->element[t->idx] = r;
    }
    return r;
}

static void *plain_string(const redisReadTask *t, char *str, size_t len)
{
    redisReply *r = calloc(1, sizeof *r);
    char *buf = r && len < SIZE_MAX / 2 ? malloc(len + 1) : NULL;
    if (!buf) {
        free(r);
        return NULL;
    }
    memcpy(buf, str, len);
    buf[len] = 0;
    r->type = t->type;
    r->str = buf;
    r->len = len;
    return attach(t, r);
}

static void *plain_array(const redisReadTask *t, int elements)
{
    if (elements < 0 || elements > REPLY_MAX_ELEMENTS) {
        if (t->privdata)
            *(bool *)t->privdata = true;
        return NULL;
    }
    redisReply *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->type = REDIS_REPLY_ARRAY;
    if (elements && !(r->element = calloc((size_t)elements, sizeof *r->element))) {
        free(r);
        return NULL;
    }
    r->elements = (size_t)elements;
    return attach(t, r);
}

static void *plain_integer(const redisReadTask *t, long long v)
{
    redisReply *r = calloc(1, sizeof *r);
    if (r) {
        r->type = REDIS_REPLY_INTEGER;
        r->integer = v;
    }
    return attach(t, r);
}

static void *plain_nil(const redisReadTask *t)
{
    redisReply *r = calloc(1, sizeof *r);
    if (r)
        r->type = REDIS_REPLY_NIL;
    return attach(t, r);
}

static redisReplyObjectFunctions plain_replies = {plain_string, plain_array, plain_integer, plain_nil,
                                                  freeReplyObject};

/* Why the last command on ctx got no reply. */
static const char *no_reply(const redisContext *ctx, char *buf, size_t len)
{
    const bool *refused = ctx->reader->privdata;
    if (refused && *refused) {
        snprintf(buf, len, "Protocol error, an array reply of more than %d elements", REPLY_MAX_ELEMENTS);
        return buf;
    }
    return ctx->errstr[0] ? ctx->errstr : "connection lost";
}

/* ---- one node ------------------------------------------------------------------ */

/* With TLS 1.3 a server that wants a client certificate says so after the
 * handshake: the first command fails. */
#define TLS_SETUP_HINT " (right after the TLS handshake: does the server require a client certificate? " \
                       "REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE)"

/* Run one setup command on a new connection. */
static gp_status_t setup_cmd(const char *display, redisContext *ctx, SSL *ssl, int argc, const char **argv,
                             const char *what, gp_error_class_t reply_class, gp_error_t *err)
{
    redisReply *r = gp__redis_command(ctx, ssl, argc, argv);
    char why[96];
    if (!r)
        return gp__cache_fail(err, GP_ERR_UNAVAILABLE,
                              gp__redis_is_timeout(ctx, errno) ? GP_ECLASS_TIMEOUT : GP_ECLASS_CONNECTION,
                              "%s: %s: %s%s", display, what, no_reply(ctx, why, sizeof why), ssl ? TLS_SETUP_HINT : "");
    gp_status_t st = GP_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        /* A SELECT refused for want of a password is about credentials. */
        if (r->str && (strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "WRONGPASS", 9) == 0))
            reply_class = GP_ECLASS_AUTH;
        st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, reply_class, "%s: %s rejected: %.200s%s", display, what,
                            r->str, reply_class == GP_ECLASS_AUTH ? " (check REDIS_USERNAME/REDIS_PASSWORD)"
                                                                  : " (check REDIS_DB)");
    }
    freeReplyObject(r);
    return st;
}

/* Connect to host:port within the deadline (at most connect_timeout_ms),
 * with a socket timeout of min(command_timeout_ms, what is left). */
/* A connection being set up: hiredis' context, TLS on it (or NULL), and
 * the flag its reader sets when it refuses an oversized array. */
typedef struct link {
    redisContext *ctx;
    SSL *ssl;
    bool refused;
} link_t;

/* Connect to host:port within the deadline (at most connect_timeout_ms,
 * the TLS handshake included when tls is not NULL), with a socket timeout
 * of min(command_timeout_ms, what is left). l must stay where it is while
 * the connection is set up (its reader points to l->refused). */
static gp_status_t connect_node(link_t *l, const char *host, int port, const char *display, int64_t deadline,
                                int connect_timeout_ms, int command_timeout_ms, SSL_CTX *tls,
                                const gp__redis_target_t *t, int *tmo_ms, gp_error_t *err)
{
    l->ctx = NULL;
    l->ssl = NULL;
    int64_t t0 = gp__now_ns(), left = (deadline - t0) / NS_PER_MS;
    if (left < 1)
        return gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_TIMEOUT, "%s: no time left to connect", display);
    int64_t ct = left < connect_timeout_ms ? left : connect_timeout_ms;
    redisContext *ctx = redisConnectWithTimeout(host, port, gp__tv_ms(ct));
    if (!ctx)
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory creating a Redis connection");
    gp_status_t st;
    if (ctx->err) {
        st = gp__cache_fail(err, GP_ERR_UNAVAILABLE,
                            gp__redis_is_timeout(ctx, errno) ? GP_ECLASS_TIMEOUT : GP_ECLASS_CONNECTION,
                            "%s: cannot connect: %s", display, ctx->errstr);
        redisFree(ctx);
        return st;
    }
    if (tls && (st = tls_handshake(tls, t, host, ctx, display, t0 + ct * NS_PER_MS, &l->ssl, err)) != GP_OK) {
        redisFree(ctx);
        return st;
    }
    left = (deadline - gp__now_ns()) / NS_PER_MS;
    int tmo = (int)(left < command_timeout_ms ? left : command_timeout_ms);
    if (tmo < 1 || redisSetTimeout(ctx, gp__tv_ms(tmo)) != REDIS_OK) {
        gp__redis_close(ctx, l->ssl);
        l->ssl = NULL;
        return gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_TIMEOUT, "%s: connected, but no time left for setup",
                              display);
    }
    redisEnableKeepAlive(ctx);
    ctx->reader->fn = &plain_replies;
    l->refused = false;
    ctx->reader->privdata = &l->refused;
    l->ctx = ctx;
    if (tmo_ms)
        *tmo_ms = tmo;
    return GP_OK;
}

/* What ROLE says the node is: "master", "slave", "sentinel", or "" when it
 * cannot say (an ACL user without ROLE, a server without the command). */
static gp_status_t node_role(redisContext *ctx, SSL *ssl, const char *display, char *role, size_t len, char *master,
                             size_t mlen, gp_error_t *err)
{
    role[0] = master[0] = 0;
    redisReply *r = gp__redis_command(ctx, ssl, 1, (const char *[]){"ROLE"});
    char why[96];
    if (!r)
        return gp__cache_fail(err, GP_ERR_UNAVAILABLE,
                              gp__redis_is_timeout(ctx, errno) ? GP_ECLASS_TIMEOUT : GP_ECLASS_CONNECTION,
                              "%s: ROLE: %s%s", display, no_reply(ctx, why, sizeof why), ssl ? TLS_SETUP_HINT : "");
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_STRING) {
        snprintf(role, len, "%s", r->element[0]->str);
        if (strcmp(role, "slave") == 0 && r->elements >= 3 && r->element[1]->type == REDIS_REPLY_STRING &&
            r->element[2]->type == REDIS_REPLY_INTEGER)
            addr_text(r->element[1]->str, (int)r->element[2]->integer, master, mlen);
    }
    freeReplyObject(r);
    return GP_OK;
}

/* ---- Sentinel ------------------------------------------------------------------ */

/* Publish host:port as the master (under tp->mu). A different address than
 * the one known is a switch: counted, logged, and every connection to the
 * old one goes (epoch). */
static void set_master_locked(cache_topo_t *tp, const char *host, int port, const char *how)
{
    bool changed = tp->port && (tp->port != port || strcmp(tp->host, host) != 0);
    char from[280], to[280];
    addr_text(tp->host, tp->port, from, sizeof from);
    addr_text(host, port, to, sizeof to);
    snprintf(tp->host, sizeof tp->host, "%s", host);
    tp->port = port;
    tp->stale = false;
    if (changed) {
        atomic_fetch_add(&tp->switches, 1);
        atomic_fetch_add(&tp->epoch, 1);
        gp__log(GP_LOG_INFO, "cache", "%s: master \"%s\" moved from %s to %s (%s); connections follow it",
                tp->display, tp->t->sentinel_master, from, to, how);
    }
}

static void set_master(cache_topo_t *tp, const char *host, int port, const char *how)
{
    pthread_mutex_lock(&tp->mu);
    set_master_locked(tp, host, port, how);
    pthread_mutex_unlock(&tp->mu);
}

/* Ask one sentinel for the master's address. */
static gp_status_t ask_one(const gp__redis_target_t *t, SSL_CTX *tls, int k, int64_t deadline, int connect_timeout_ms,
                           char *host, size_t hlen, int *port, char *why, size_t wlen)
{
    char name[280];
    addr_text(t->sentinels[k].host, t->sentinels[k].port, name, sizeof name);
    link_t l;
    gp_error_t e;
    gp_status_t st = connect_node(&l, t->sentinels[k].host, t->sentinels[k].port, name, deadline, connect_timeout_ms,
                                  connect_timeout_ms, tls, t, NULL, &e);
    if (st != GP_OK) {
        snprintf(why, wlen, "%s", e.message);
        return st;
    }
    redisContext *ctx = l.ctx;
    redisReply *r =
        gp__redis_command(ctx, l.ssl, 3, (const char *[]){"SENTINEL", "get-master-addr-by-name", t->sentinel_master});
    st = GP_ERR_UNAVAILABLE;
    long long p = 0;
    char nr[96];
    if (!r)
        snprintf(why, wlen, "%s: %s", name, no_reply(ctx, nr, sizeof nr));
    else if (r->type == REDIS_REPLY_NIL)
        snprintf(why, wlen, "%s does not monitor a master named \"%s\" (check REDIS_SENTINEL_MASTER)", name,
                 t->sentinel_master);
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(why, wlen, "%s: %.200s (is it a sentinel? check REDIS_SENTINELS)", name, r->str);
    else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
             r->element[1]->type != REDIS_REPLY_STRING || (p = strtoll(r->element[1]->str, NULL, 10)) < 1 ||
             p > 65535 || r->element[0]->len >= hlen)
        snprintf(why, wlen, "%s: unexpected reply to SENTINEL get-master-addr-by-name", name);
    else {
        snprintf(host, hlen, "%s", r->element[0]->str);
        *port = (int)p;
        st = GP_OK;
    }
    if (r)
        freeReplyObject(r);
    gp__redis_close(ctx, l.ssl);
    return st;
}

/* Ask the sentinels in turn, starting with the last that answered, until
 * one names the master (tp may be NULL: a one-shot, nothing remembered). */
static gp_status_t ask_sentinels(const gp__redis_target_t *t, cache_topo_t *tp, SSL_CTX *tls, int64_t deadline,
                                 int connect_timeout_ms, char *host, size_t hlen, int *port, const char *display,
                                 gp_error_t *err)
{
    int first = 0;
    if (tp) {
        pthread_mutex_lock(&tp->mu);
        first = tp->next;
        pthread_mutex_unlock(&tp->mu);
    }
    char whys[1024] = "";
    for (int i = 0; i < t->n_sentinels; i++) {
        int k = (first + i) % t->n_sentinels;
        char why[300];
        if (ask_one(t, tls, k, deadline, connect_timeout_ms, host, hlen, port, why, sizeof why) == GP_OK) {
            if (tp) {
                pthread_mutex_lock(&tp->mu);
                tp->next = k;
                set_master_locked(tp, host, *port, "the sentinels say so");
                pthread_mutex_unlock(&tp->mu);
            }
            return GP_OK;
        }
        gp__bufappend(whys, sizeof whys, "%s%s", i ? "; " : "", why);
        if (gp__now_ns() >= deadline)
            break;
    }
    return gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION,
                          "%s: no sentinel named the master: %s (check REDIS_SENTINELS and that the sentinels run)",
                          display, whys);
}

/* Where to connect: the configured node, or (Sentinel) the master as known
 * or asked now. */
static gp_status_t pick_node(const gp__redis_target_t *t, cache_topo_t *tp, SSL_CTX *tls, int64_t deadline,
                             int connect_timeout_ms, char *host, size_t hlen, int *port, const char *display,
                             gp_error_t *err)
{
    if (!t->n_sentinels) {
        snprintf(host, hlen, "%s", t->host);
        *port = t->port;
        return GP_OK;
    }
    if (tp) {
        pthread_mutex_lock(&tp->mu);
        bool known = tp->port && !tp->stale;
        if (known) {
            snprintf(host, hlen, "%s", tp->host);
            *port = tp->port;
        }
        pthread_mutex_unlock(&tp->mu);
        if (known)
            return GP_OK;
    }
    return ask_sentinels(t, tp, tls, deadline, connect_timeout_ms, host, hlen, port, display, err);
}

static gp_status_t open_node(const gp__redis_target_t *t, cache_topo_t *tp, SSL_CTX *tls, const char *display,
                             int64_t deadline, int connect_timeout_ms, int command_timeout_ms, redisContext **out,
                             SSL **ssl_out, int *tmo_ms, char *node, gp_error_t *err);

gp_status_t gp__redis_open(const gp__redis_target_t *t, cache_topo_t *tp, const char *display, int64_t deadline,
                           int connect_timeout_ms, int command_timeout_ms, redisContext **out, SSL **ssl_out,
                           int *tmo_ms, char *node, gp_error_t *err)
{
    *out = NULL;
    *ssl_out = NULL;
    SSL_CTX *tls = tp ? tp->tls : NULL, *own = NULL; /* own: a one-shot's; each SSL keeps a reference */
    gp_status_t st;
    if (t->tls && !tls) {
        if ((st = gp__tls_new(t, &own, err)) != GP_OK)
            return st;
        tls = own;
    }
    st = open_node(t, tp, tls, display, deadline, connect_timeout_ms, command_timeout_ms, out, ssl_out, tmo_ms, node,
                   err);
    gp__tls_free(own);
    return st;
}

static gp_status_t open_node(const gp__redis_target_t *t, cache_topo_t *tp, SSL_CTX *tls, const char *display,
                             int64_t deadline, int connect_timeout_ms, int command_timeout_ms, redisContext **out,
                             SSL **ssl_out, int *tmo_ms, char *node, gp_error_t *err)
{
    char host[256], where[600], addr[280];
    int port = 0;
    gp_status_t st = pick_node(t, tp, tls, deadline, connect_timeout_ms, host, sizeof host, &port, display, err);
    if (st != GP_OK)
        return st;
    addr_text(host, port, addr, sizeof addr);
    if (node)
        snprintf(node, 280, "%s", addr);
    /* With Sentinel, messages name the node too: the configuration does not. */
    if (t->n_sentinels)
        snprintf(where, sizeof where, "%s (master %s)", display, addr);
    else
        snprintf(where, sizeof where, "%s", display);
    link_t l;
    int tmo;
    if ((st = connect_node(&l, host, port, where, deadline, connect_timeout_ms, command_timeout_ms, tls, t, &tmo,
                           err)) != GP_OK) {
        if (tp && st != GP_ERR_NOMEM)
            gp__topo_suspect(tp, false);
        return st;
    }
    redisContext *ctx = l.ctx;
    /* Each setup command waits at most what is left of the deadline, not
     * a whole socket timeout each. */
#define LEFT_OR_FAIL()                                                                                             \
    do {                                                                                                           \
        int64_t left_ = (deadline - gp__now_ns()) / NS_PER_MS;                                                   \
        if (left_ < 1 || redisSetTimeout(ctx, gp__tv_ms(left_ < tmo ? left_ : tmo)) != REDIS_OK) {               \
            st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_TIMEOUT, "%s: no time left for setup", where); \
            goto fail;                                                                                             \
        }                                                                                                          \
    } while (0)
    if (t->password[0]) {
        const char *a[3] = {"AUTH", t->username[0] ? t->username : t->password, t->password};
        if ((st = setup_cmd(where, ctx, l.ssl, t->username[0] ? 3 : 2, a, "AUTH", GP_ECLASS_AUTH, err)) != GP_OK)
            goto fail;
    }
    if (t->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", t->db);
        const char *a[2] = {"SELECT", db};
        if (t->password[0])
            LEFT_OR_FAIL();
        if ((st = setup_cmd(where, ctx, l.ssl, 2, a, "SELECT", GP_ECLASS_CLIENT, err)) != GP_OK)
            goto fail;
    }
    /* Never write to a node that says it is a replica: it would answer
     * READONLY (or, before a failover completes, take writes that are then
     * lost). */
    char role[32], its_master[280];
    if (t->password[0] || t->db)
        LEFT_OR_FAIL();
#undef LEFT_OR_FAIL
    if ((st = node_role(ctx, l.ssl, where, role, sizeof role, its_master, sizeof its_master, err)) != GP_OK)
        goto fail;
    if (role[0] && strcmp(role, "master") != 0) {
        if (t->n_sentinels) {
            st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION,
                                "%s: the sentinels named it as master \"%s\", but it says it is a %s%s%s (a failover "
                                "in progress?); the sentinels will be asked again",
                                where, t->sentinel_master, strcmp(role, "slave") == 0 ? "replica" : role,
                                its_master[0] ? " of " : "", its_master);
            if (tp)
                gp__topo_suspect(tp, true);
        } else {
            st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION,
                                "%s is a %s%s%s, not a master: the cache writes, and a replica refuses writes "
                                "(READONLY); point REDIS_URL at the master, or set REDIS_SENTINELS and "
                                "REDIS_SENTINEL_MASTER to follow failovers",
                                where, strcmp(role, "slave") == 0 ? "replica" : role, its_master[0] ? " of " : "",
                                its_master);
        }
        goto fail;
    }
    if ((t->password[0] || t->db) && redisSetTimeout(ctx, gp__tv_ms(tmo)) != REDIS_OK) {
        st = gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION, "%s: cannot set the socket timeout", where);
        goto fail;
    }
    ctx->reader->privdata = NULL; /* l.refused lives on this stack */
    *out = ctx;
    *ssl_out = l.ssl;
    if (tmo_ms)
        *tmo_ms = tmo;
    return GP_OK;
fail:
    gp__redis_close(ctx, l.ssl);
    return st;
}

void gp__topo_suspect(cache_topo_t *tp, bool drop_all)
{
    if (!tp->t->n_sentinels)
        return;
    pthread_mutex_lock(&tp->mu);
    tp->stale = true;
    pthread_mutex_unlock(&tp->mu);
    if (drop_all)
        atomic_fetch_add(&tp->epoch, 1);
}

void gp__topo_node(cache_topo_t *tp, char *out, size_t len)
{
    pthread_mutex_lock(&tp->mu);
    if (!tp->t->n_sentinels)
        addr_text(tp->t->host, tp->t->port, out, len);
    else if (tp->port)
        addr_text(tp->host, tp->port, out, len);
    else
        snprintf(out, len, "%s", "");
    pthread_mutex_unlock(&tp->mu);
}

/* ---- the +switch-master watcher ----------------------------------------------
 * One thread per cache with Sentinel: subscribed to +switch-master on one
 * sentinel at a time (the next one when it goes away), and after every
 * (re)subscription it asks the sentinels for the master, as a switch may
 * have been missed while it was not subscribed. It waits in poll() on the
 * subscription and on a pipe that gp__topo_free writes to. */

/* Sleep up to ms, or until told to close; returns whether to go on. */
static bool nap(cache_topo_t *tp, int ms)
{
    struct pollfd p = {tp->wake[0], POLLIN, 0};
    poll(&p, 1, ms);
    return !atomic_load(&tp->closing);
}

static void on_message(cache_topo_t *tp, const redisReply *r)
{
    /* ["message", "+switch-master", "<name> <old-ip> <old-port> <new-ip> <new-port>"] */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[0]->str, "message") != 0 || r->element[2]->type != REDIS_REPLY_STRING)
        return;
    char name[128], oldh[256], newh[256];
    int oldp, newp;
    if (sscanf(r->element[2]->str, "%127s %255s %d %255s %d", name, oldh, &oldp, newh, &newp) == 5 &&
        strcmp(name, tp->t->sentinel_master) == 0 && newp > 0 && newp <= 65535)
        set_master(tp, newh, newp, "+switch-master");
}

/* Read what the socket has into ctx's reader (one read). */
static int read_more(redisContext *ctx, SSL *ssl)
{
    return ssl ? tls_read_more(ctx, ssl) : redisBufferRead(ctx);
}

/* One subscription, until it breaks or the cache closes. */
static void watch_one(cache_topo_t *tp, int k)
{
    const gp__redis_target_t *t = tp->t;
    char name[280];
    addr_text(t->sentinels[k].host, t->sentinels[k].port, name, sizeof name);
    int64_t deadline = gp__now_ns() + (int64_t)tp->connect_timeout_ms * NS_PER_MS;
    link_t l;
    gp_error_t e;
    if (connect_node(&l, t->sentinels[k].host, t->sentinels[k].port, name, deadline, tp->connect_timeout_ms,
                     tp->connect_timeout_ms, tp->tls, t, NULL, &e) != GP_OK) {
        gp__log(GP_LOG_DEBUG, "cache", "%s: cannot watch for +switch-master: %s", tp->display, e.message);
        return;
    }
    redisContext *ctx = l.ctx;
    redisReply *r = gp__redis_command(ctx, l.ssl, 2, (const char *[]){"SUBSCRIBE", "+switch-master"});
    bool ok = r && r->type == REDIS_REPLY_ARRAY;
    if (r)
        freeReplyObject(r);
    if (!ok) {
        gp__log(GP_LOG_DEBUG, "cache", "%s: %s refused SUBSCRIBE +switch-master", tp->display, name);
        gp__redis_close(ctx, l.ssl);
        return;
    }
    /* Subscribed: now a switch cannot be missed; one may have happened before. */
    char host[256];
    int port;
    int64_t d2 = gp__now_ns() + (int64_t)tp->connect_timeout_ms * NS_PER_MS;
    ask_sentinels(t, tp, tp->tls, d2, tp->connect_timeout_ms, host, sizeof host, &port, tp->display, NULL);
    while (!atomic_load(&tp->closing)) {
        void *msg = NULL;
        while (redisGetReplyFromReader(ctx, &msg) == REDIS_OK && msg) {
            on_message(tp, msg);
            freeReplyObject(msg);
            msg = NULL;
        }
        if (ctx->err)
            break;
        /* TLS may hold decrypted bytes already: no poll for those. */
        bool pending = l.ssl && SSL_pending(l.ssl) > 0;
        struct pollfd p[2] = {{ctx->fd, POLLIN, 0}, {tp->wake[0], POLLIN, 0}};
        if (!pending && poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (!pending && p[1].revents)
            break;
        if ((pending || p[0].revents) && read_more(ctx, l.ssl) != REDIS_OK)
            break;
    }
    if (!atomic_load(&tp->closing))
        gp__log(GP_LOG_DEBUG, "cache", "%s: the subscription to %s ended: %s", tp->display, name,
                ctx->err ? ctx->errstr : "closed");
    gp__redis_close(ctx, l.ssl);
}

static void *watch(void *arg)
{
    cache_topo_t *tp = arg;
    /* The watcher's own SIGPIPE stays off: it only writes through
     * gp__redis_command, but a signal for this thread must never end the
     * process. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int backoff = 50;
    for (int k = 0; !atomic_load(&tp->closing); k = (k + 1) % tp->t->n_sentinels) {
        int64_t t0 = gp__now_ns();
        watch_one(tp, k);
        /* A subscription that lasted resets the backoff; one that failed at
         * once doubles it (the next sentinel is tried after the nap). */
        backoff = gp__now_ns() - t0 > 5000 * NS_PER_MS ? 50 : backoff * 2 > 2000 ? 2000 : backoff * 2;
        if (!nap(tp, (int)gp__jitter(backoff, 0.2)))
            break;
    }
    return NULL;
}

gp_status_t gp__topo_init(cache_topo_t *tp, const gp__redis_target_t *t, const char *display, int connect_timeout_ms,
                          gp_error_t *err)
{
    memset(tp, 0, sizeof *tp);
    tp->t = t;
    snprintf(tp->display, sizeof tp->display, "%s", display);
    tp->connect_timeout_ms = connect_timeout_ms;
    tp->wake[0] = tp->wake[1] = -1;
    gp_status_t st = gp__tls_new(t, &tp->tls, err);
    if (st != GP_OK)
        return st;
    pthread_mutex_init(&tp->mu, NULL);
    if (!t->n_sentinels)
        return GP_OK;
    if (pipe2(tp->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        gp__tls_free(tp->tls);
        pthread_mutex_destroy(&tp->mu);
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "cannot create a pipe for the Sentinel watcher: %s",
                              strerror(errno));
    }
    int rc = pthread_create(&tp->watcher, NULL, watch, tp);
    if (rc != 0) {
        close(tp->wake[0]);
        close(tp->wake[1]);
        gp__tls_free(tp->tls);
        pthread_mutex_destroy(&tp->mu);
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "cannot start the Sentinel watcher thread: %s",
                              strerror(rc));
    }
    tp->watching = true;
    return GP_OK;
}

void gp__topo_free(cache_topo_t *tp)
{
    if (tp->watching) {
        atomic_store(&tp->closing, true);
        ssize_t w = write(tp->wake[1], "x", 1);
        (void)w; /* a full pipe is already a wake-up */
        pthread_join(tp->watcher, NULL);
    }
    if (tp->wake[0] >= 0) {
        close(tp->wake[0]);
        close(tp->wake[1]);
    }
    gp__tls_free(tp->tls);
    pthread_mutex_destroy(&tp->mu);
}

/* ---- wrong-node replies -------------------------------------------------------- */

static const char *const wrong_codes[GP_CACHE_WRONG_COUNT_] = {"MOVED", "ASK", "READONLY", "TRYAGAIN",
                                                               "CLUSTERDOWN", "MASTERDOWN"};

const char *gp_cache_wrong_node_name(gp_cache_wrong_node_t kind)
{
    static const char *const names[GP_CACHE_WRONG_COUNT_] = {"moved", "ask", "readonly", "tryagain", "clusterdown",
                                                             "masterdown"};
    return kind >= 0 && kind < GP_CACHE_WRONG_COUNT_ ? names[kind] : "unknown";
}

int gp__redis_wrong_node(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ERROR || !r->str)
        return -1;
    for (int k = 0; k < GP_CACHE_WRONG_COUNT_; k++) {
        size_t n = strlen(wrong_codes[k]);
        if (strncmp(r->str, wrong_codes[k], n) == 0 && (r->str[n] == ' ' || r->str[n] == 0))
            return k;
    }
    return -1;
}

static const char *wrong_hint(const cache_topo_t *tp, int kind)
{
    switch (kind) {
    case GP_CACHE_WRONG_MOVED:
    case GP_CACHE_WRONG_ASK:
        return tp->t->n_cluster ? "the slot kept moving within the call's budget (a resharding?); try again"
                                : "the key's slot is served by another node of a Redis Cluster, and this cache talks "
                                  "to one node: set REDIS_CLUSTER_NODES (and unset REDIS_URL)";
    case GP_CACHE_WRONG_READONLY:
        return tp->t->n_sentinels ? "the node is a replica now (a failover); the cache reconnects to the master the "
                                    "sentinels name"
                                  : "the node is a replica now: the cache reconnects, and refuses it while it is "
                                    "one; point REDIS_URL at the master, or use REDIS_SENTINELS to follow failovers";
    case GP_CACHE_WRONG_TRYAGAIN:
        return "a Redis Cluster slot was being migrated for the whole of the call's budget; try again";
    case GP_CACHE_WRONG_CLUSTERDOWN:
        return "the Redis Cluster does not serve this slot now";
    default:
        return "the replica lost its master";
    }
}

void gp__topo_wrong_count(cache_topo_t *tp, int kind) { atomic_fetch_add(&tp->wrong[kind], 1); }

void gp__topo_wrong_node(cache_topo_t *tp, int kind, const redisReply *r, const char *node, gp_error_t *err)
{
    gp__topo_wrong_count(tp, kind);
    gp__topo_wrong_report(tp, kind, r, node, err);
}

void gp__topo_wrong_report(cache_topo_t *tp, int kind, const redisReply *r, const char *node, gp_error_t *err)
{
    int64_t now = gp__now_ns();
    atomic_store(&tp->wrong_last_ns, now);
    char text[600];
    snprintf(text, sizeof text, "%s answered %.200s: %s", node, r->str, wrong_hint(tp, kind));
    pthread_mutex_lock(&tp->mu);
    snprintf(tp->last_wrong, sizeof tp->last_wrong, "%s", text);
    pthread_mutex_unlock(&tp->mu);
    if (kind == GP_CACHE_WRONG_READONLY)
        gp__topo_suspect(tp, true);
    /* At most one line per kind per second, saying how many were not. */
    int64_t last = atomic_load(&tp->wrong_logged_ns[kind]);
    if ((last == 0 || now - last >= 1000 * NS_PER_MS) &&
        atomic_compare_exchange_strong(&tp->wrong_logged_ns[kind], &last, now)) {
        uint64_t quiet = atomic_exchange(&tp->wrong_unlogged[kind], 0);
        gp__log(GP_LOG_WARN, "cache", "wrong node: %s (%llu more %s replies since the last line)", text,
                (unsigned long long)quiet, wrong_codes[kind]);
    } else {
        atomic_fetch_add(&tp->wrong_unlogged[kind], 1);
    }
    gp__cache_fail(err, GP_ERR_UNAVAILABLE, GP_ECLASS_CONNECTION, "%s", text);
}
