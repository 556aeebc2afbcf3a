/* test_half_open.c — connections whose server vanished without a word.
 *
 * The pool reaches the private PostgreSQL through a TCP relay in this
 * process. "Freezing" a relayed connection keeps both of its sockets open
 * and silently drops everything, in both directions: the client's socket
 * stays writable, nothing ever arrives, no FIN, no RST — what a client sees
 * when a firewall or NAT forgets an idle flow, or the server's host is
 * cut off. Checked: a statement on such a connection returns
 * GP_ERR_TIMEOUT at DATABASE_QUERY_TIMEOUT and the connection is closed;
 * an idle one is found out by validation within half the acquire's wait
 * and replaced by a new connection, so the caller still gets one; closing
 * the pool does not wait for such connections.
 * ctest-labels: concurrency */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gp_test.h"
#include "internal.h"

#define QUERY_TIMEOUT_MS 300
#define ACQUIRE_TIMEOUT_MS 2000
#define SLACK_MS 250

/* ---- the relay ---------------------------------------------------------------------- */

#define MAX_PAIRS 32

typedef struct pair {
    int client, server; /* -1 when closed */
    bool frozen;        /* drop everything, close nothing */
} pair_t;

typedef struct relay {
    int listen_fd, port;
    struct sockaddr_in target;
    int wake[2];
    pthread_t thread;
    pthread_mutex_t mu; /* guards what follows; the relay thread holds it between polls */
    bool stop;
    bool freeze_new;    /* connections accepted from now on are frozen */
    pair_t pairs[MAX_PAIRS];
    int npairs;
} relay_t;

static void poke(relay_t *r)
{
    char c = 1;
    ssize_t n = write(r->wake[1], &c, 1);
    (void)n;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void relay_accept(relay_t *r)
{
    int c = accept(r->listen_fd, NULL, NULL);
    if (c < 0)
        return;
    int slot = 0; /* a closed pair's, or a new one */
    while (slot < r->npairs && (r->pairs[slot].client >= 0 || r->pairs[slot].server >= 0))
        slot++;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&r->target, sizeof r->target) != 0 || slot == MAX_PAIRS) {
        fprintf(stderr, "relay: cannot relay a connection (%s)\n", slot == MAX_PAIRS ? "too many" : strerror(errno));
        close(c);
        if (s >= 0)
            close(s);
        return;
    }
    r->pairs[slot] = (pair_t){c, s, r->freeze_new};
    if (slot == r->npairs)
        r->npairs++;
}

/* Data from one side of a pair: forwarded, or dropped when frozen. EOF or
 * an error from the client closes the pair; from the server, it closes the
 * server side only when frozen (the client must not learn of it). */
static void relay_data(pair_t *p, bool from_client)
{
    char buf[16384];
    int from = from_client ? p->client : p->server, to = from_client ? p->server : p->client;
    ssize_t n = read(from, buf, sizeof buf);
    if (n <= 0) {
        if (from_client || !p->frozen) {
            close_fd(&p->client);
            close_fd(&p->server);
        } else {
            close_fd(&p->server);
        }
        return;
    }
    if (p->frozen)
        return;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, (size_t)(n - off));
        if (w <= 0) {
            close_fd(&p->client);
            close_fd(&p->server);
            return;
        }
        off += w;
    }
}

static void *relay_main(void *arg)
{
    relay_t *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct pollfd pfd[2 + 2 * MAX_PAIRS];
        pair_t *owner[2 + 2 * MAX_PAIRS];
        int n = 0;
        pfd[n] = (struct pollfd){.fd = r->listen_fd, .events = POLLIN};
        owner[n++] = NULL;
        pfd[n] = (struct pollfd){.fd = r->wake[0], .events = POLLIN};
        owner[n++] = NULL;
        for (int i = 0; i < r->npairs; i++) {
            pair_t *p = &r->pairs[i];
            if (p->client >= 0) {
                pfd[n] = (struct pollfd){.fd = p->client, .events = POLLIN};
                owner[n++] = p;
            }
            if (p->server >= 0) {
                pfd[n] = (struct pollfd){.fd = p->server, .events = POLLIN};
                owner[n++] = p;
            }
        }
        pthread_mutex_unlock(&r->mu);
        int ready = poll(pfd, (nfds_t)n, -1);
        pthread_mutex_lock(&r->mu);
        if (ready < 0 && errno != EINTR)
            break;
        if (pfd[1].revents) {
            char c[64];
            ssize_t k = read(r->wake[0], c, sizeof c);
            (void)k;
        }
        for (int i = 2; i < n; i++) {
            pair_t *p = owner[i];
            if (!pfd[i].revents || (pfd[i].fd != p->client && pfd[i].fd != p->server))
                continue; /* nothing, or closed meanwhile */
            relay_data(p, pfd[i].fd == p->client);
        }
        if (pfd[0].revents)
            relay_accept(r);
    }
    for (int i = 0; i < r->npairs; i++) {
        close_fd(&r->pairs[i].client);
        close_fd(&r->pairs[i].server);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void relay_start(relay_t *r, const char *host, int port)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->target.sin_family = AF_INET;
    r->target.sin_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET, host, &r->target.sin_addr), 1);
    r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->listen_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(r->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(r->listen_fd, 16), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(r->listen_fd, (struct sockaddr *)&a, &len), 0);
    r->port = ntohs(a.sin_port);
    assert_int_equal(pipe(r->wake), 0);
    assert_int_equal(pthread_create(&r->thread, NULL, relay_main, r), 0);
}

/* Freeze every relayed connection open now; and those accepted later too
 * when `and_new`. */
static void relay_freeze(relay_t *r, bool and_new)
{
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->npairs; i++)
        r->pairs[i].frozen = true;
    r->freeze_new = and_new;
    pthread_mutex_unlock(&r->mu);
    poke(r);
}

/* New connections are relayed again (the frozen ones stay frozen). */
static void relay_thaw_new(relay_t *r)
{
    pthread_mutex_lock(&r->mu);
    r->freeze_new = false;
    pthread_mutex_unlock(&r->mu);
}

static void relay_stop(relay_t *r)
{
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_mutex_unlock(&r->mu);
    poke(r);
    pthread_join(r->thread, NULL);
    close(r->listen_fd);
    close(r->wake[0]);
    close(r->wake[1]);
    pthread_mutex_destroy(&r->mu);
}

/* ---- the tests ---------------------------------------------------------------------- */

static relay_t relay;
static char url[512];

/* DATABASE_URL with the relay's port instead of the server's. */
static int setup(void **state)
{
    (void)state;
    gp_test_require_env();
    const char *u = getenv("DATABASE_URL");
    const char *at = strrchr(u, '@');
    assert_non_null(at);
    const char *colon = strchr(at, ':'), *slash = strchr(at, '/');
    assert_true(colon && slash && colon < slash);
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(colon - at - 1), at + 1);
    relay_start(&relay, host, atoi(colon + 1));
    snprintf(url, sizeof url, "%.*s:%d%s", (int)(colon - u), u, relay.port, slash);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    relay_stop(&relay);
    return 0;
}

static gp_pool_t *relayed_pool(gp_config_t *cfg, int connect_timeout_ms, int query_timeout_ms, int validate_after_ms)
{
    gp_test_config(cfg);
    cfg->db.connect_timeout_ms = connect_timeout_ms;
    cfg->db.url = url;
    cfg->db.pool_min = 1;
    cfg->db.pool_max = 1;
    cfg->db.acquire_timeout_ms = ACQUIRE_TIMEOUT_MS;
    cfg->db.query_timeout_ms = query_timeout_ms;
    cfg->db.validate_after_ms = validate_after_ms;
    gp_pool_t *p = NULL;
    gp_error_t e;
    if (gp_pool_create(cfg, &p, &e) != GP_OK)
        fprintf(stderr, "pool: %s\n", e.message);
    assert_non_null(p);
    return p;
}

static int64_t ms_since(int64_t t0) { return (gp__now_ns() - t0) / 1000000; }

/* A statement sent on a connection that went half-open: GP_ERR_TIMEOUT at
 * the query deadline, the connection closed; once the network is back,
 * the next statement runs on a new connection. */
static void test_statement_on_half_open_connection(void **state)
{
    (void)state;
    gp_config_t cfg;
    /* A replacement opened during the partition hangs in its connect until
     * the connect timeout (libpq's, whole seconds, at least 2). */
    gp_pool_t *p = relayed_pool(&cfg, 2000, QUERY_TIMEOUT_MS, 5000);
    assert_int_equal(gp_pool_exec(p, "SELECT 1", 0, NULL, NULL, NULL), GP_OK);

    relay_freeze(&relay, true);
    gp_error_t e;
    int64_t t0 = gp__now_ns();
    /* A one-shot commits at its end: without an answer its outcome is unknown. */
    assert_int_equal(gp_pool_exec(p, "SELECT 1", 0, NULL, NULL, &e), GP_ERR_COMMIT_UNKNOWN);
    int64_t took = ms_since(t0);
    fprintf(stderr, "half-open: the statement returned after %lld ms (deadline %d ms)\n", (long long)took,
            QUERY_TIMEOUT_MS);
    assert_true(took >= QUERY_TIMEOUT_MS - 5 && took <= QUERY_TIMEOUT_MS + SLACK_MS);
    assert_int_equal(e.klass, GP_ECLASS_CONNECTION); /* the connection is lost to us, whatever the server did */
    assert_false(e.retriable);

    relay_thaw_new(&relay);
    /* A replacement connect that began before the thaw hangs until its
     * timeout and fails (GP_ERR_CONNECT, retriable, told to the waiting
     * caller): retry as a service would; the next connect gets through. */
    gp_conn_t *c = NULL;
    gp_status_t st;
    int64_t retry_until = gp__now_ns() + 8000 * 1000000LL;
    while ((st = gp_pool_acquire(p, "after-partition", 5000, &c, &e)) == GP_ERR_CONNECT && gp__now_ns() < retry_until)
        assert_true(e.retriable);
    assert_int_equal(st, GP_OK);
    assert_int_equal(gp_exec(c, "SELECT 1", 0, NULL, NULL, &e), GP_OK);
    gp_pool_release(c);
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    assert_int_equal(m.opened, 2); /* the frozen one was never used again */
    assert_true(m.open_failures <= 1); /* the connect that hung in the partition */
    uint64_t closed = 0;
    for (int i = 0; i < GP_CLOSE_REASON_COUNT_; i++)
        closed += m.closed[i];
    assert_int_equal(closed, 1);

    t0 = gp__now_ns();
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    assert_true(ms_since(t0) < 500);
    gp_config_release(&cfg);
}

/* An idle connection that went half-open, with no query timeout at all:
 * the acquire's validation gives up within half the acquire's wait, closes
 * it, and the caller gets a new connection instead of a timeout. */
static void test_idle_half_open_connection_is_replaced(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_pool_t *p = relayed_pool(&cfg, 5000, 0, 0 /* validate every hand-out */);
    assert_int_equal(gp_pool_exec(p, "SELECT 1", 0, NULL, NULL, NULL), GP_OK);

    relay_freeze(&relay, false); /* the old flow is gone; new ones get through */
    gp_conn_t *c = NULL;
    gp_error_t e;
    int64_t t0 = gp__now_ns();
    gp_status_t st = gp_pool_acquire(p, "after-partition", -1, &c, &e);
    int64_t took = ms_since(t0);
    fprintf(stderr, "half-open idle connection: replaced after %lld ms (acquire timeout %d ms)\n", (long long)took,
            ACQUIRE_TIMEOUT_MS);
    if (st != GP_OK)
        fprintf(stderr, "acquire: %s\n", e.message);
    assert_int_equal(st, GP_OK);
    assert_true(took >= ACQUIRE_TIMEOUT_MS / 2 - 5 && took <= ACQUIRE_TIMEOUT_MS / 2 + SLACK_MS);
    assert_int_equal(gp_exec(c, "SELECT 1", 0, NULL, NULL, &e), GP_OK);
    gp_pool_release(c);
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(p, &m), GP_OK);
    assert_int_equal(m.closed[GP_CLOSE_VALIDATION], 1);
    assert_int_equal(m.opened, 2);
    assert_int_equal(m.acquire_timeouts, 0);

    /* And closing a pool whose idle connection is half-open does not wait. */
    assert_int_equal(gp_pool_exec(p, "SELECT 1", 0, NULL, NULL, NULL), GP_OK);
    relay_freeze(&relay, true);
    t0 = gp__now_ns();
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    assert_true(ms_since(t0) < 500);
    relay_thaw_new(&relay);
    gp_config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statement_on_half_open_connection),
        cmocka_unit_test(test_idle_half_open_connection_is_replaced),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
