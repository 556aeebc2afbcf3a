/* test_listen.c — notifications on the real server: a tenant's NOTIFY is
 * delivered on commit only, to that tenant's subscription only (callback
 * or pollable queue), service channels carry the sending tenant; hostile
 * SQL of tenant A (pg_notify on B's channel: garbage, a forged tag, A's own
 * genuine message replayed) never reaches B and is counted as rejected;
 * the listener's backend terminated: it reconnects, LISTENs again, reports
 * the gap and receives again; commit-coupled cache invalidation, in this
 * process at once and in another cache through the notification, nothing
 * on rollback; a database where harden.sql revoked pg_notify(). Every wait polls a condition with a deadline. */
/* ctest-labels: concurrency */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_scratch.h"
#include "gp_test.h"
#include "gp_test_conn.h"
#include "gp_test_data.h"
#include "internal.h"

static gp_scratch_t scratch;
static gp_config_t cfg;
static gp_pool_t *pool;
static char tenant_a[37], tenant_b[37];

/* What a callback saw, under a lock (the listener's thread writes). */
typedef struct seen {
    pthread_mutex_t mu;
    int messages, gaps;
    char log[4096]; /* "kind:tenant:channel:payload;" */
} seen_t;

static void record(void *ud, const gp_notification_t *n)
{
    seen_t *s = ud;
    pthread_mutex_lock(&s->mu);
    size_t len = strlen(s->log);
    if (n->kind == GP_NOTIFY_GAP) {
        s->gaps++;
        snprintf(s->log + len, sizeof s->log - len, "gap;");
    } else {
        s->messages++;
        snprintf(s->log + len, sizeof s->log - len, "%s:%.8s:%s:%s;", n->service ? "svc" : "msg", n->tenant_id,
                 n->channel, n->payload);
    }
    pthread_mutex_unlock(&s->mu);
}

static int messages_of(seen_t *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->messages;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static int gaps_of(seen_t *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->gaps;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void log_of(seen_t *s, char *out, size_t len)
{
    pthread_mutex_lock(&s->mu);
    snprintf(out, len, "%s", s->log);
    pthread_mutex_unlock(&s->mu);
}

/* Poll cond(arg) every 5 ms for up to 10 s. */
static bool eventually(bool (*cond)(void *), void *arg)
{
    int64_t end = gp__now_ns() + INT64_C(10000000000);
    while (gp__now_ns() < end) {
        if (cond(arg))
            return true;
        gp_test_pause_ms(5);
    }
    return cond(arg);
}

typedef struct want {
    seen_t *s;
    int n;
} want_t;
static bool has_messages(void *arg) { want_t *w = arg; return messages_of(w->s) >= w->n; }
static bool has_gaps(void *arg) { want_t *w = arg; return gaps_of(w->s) >= w->n; }

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "listen");
    gp_scratch_migrate(&scratch);
    gp_scratch_config(&scratch, &cfg);
    cfg.db.pool_min = 0;
    cfg.db.pool_max = 2;
    cfg.db.acquire_timeout_ms = 5000;
    assert_int_equal(gp_pool_create(&cfg, &pool, NULL), GP_OK);
    gp_test_data_tenant(pool, "listen-a", tenant_a);
    gp_test_data_tenant(pool, "listen-b", tenant_b);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_pool_close(pool, 2000);
    gp_config_release(&cfg);
    gp_scratch_drop(&scratch);
    return 0;
}

typedef struct send {
    const char *name, *payload;
    bool service, rollback;
} send_t;

static gp_status_t send_fn(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    const send_t *s = ud;
    gp_status_t st = s->service ? gp_tenant_tx_notify_service(tx, s->name, s->payload, err)
                                : gp_tenant_tx_notify(tx, s->name, s->payload, err);
    if (st == GP_OK && s->rollback)
        return GP_ERR_CANCELED; /* gp_tenant_run rolls back */
    return st;
}

static gp_status_t send(const char *tenant, const char *name, const char *payload, bool service, bool rollback)
{
    send_t s = {name, payload, service, rollback};
    gp_error_t e;
    gp_status_t st = gp_tenant_run(pool, tenant, NULL, send_fn, &s, NULL, &e);
    if (st != GP_OK && !rollback)
        fprintf(stderr, "send: %s\n", e.message);
    return st;
}

static gp_listener_t *listener(void)
{
    gp_listener_t *l = NULL;
    gp_error_t e;
    gp_status_t st = gp_listener_create(&cfg, &l, &e);
    if (st != GP_OK)
        fprintf(stderr, "listener: %s\n", e.message);
    assert_int_equal(st, GP_OK);
    return l;
}

/* Wait (poll the descriptor, 10 s at most) for the next queued notification. */
static gp_notification_t *next_queued(gp_listener_t *l)
{
    int64_t end = gp__now_ns() + INT64_C(10000000000);
    for (;;) {
        gp_notification_t *n = NULL;
        assert_int_equal(gp_listener_next(l, &n), GP_OK);
        if (n || gp__now_ns() > end)
            return n;
        struct pollfd p = {.fd = gp_listener_fd(l), .events = POLLIN};
        poll(&p, 1, 100);
    }
}

static void test_delivered_on_commit_to_its_tenant_only(void **state)
{
    (void)state;
    gp_listener_t *l = listener();
    seen_t a = {.mu = PTHREAD_MUTEX_INITIALIZER};
    gp_error_t e;
    assert_int_equal(gp_listener_listen_tenant(l, tenant_a, "orders", record, &a, &e), GP_OK);
    assert_int_equal(gp_listener_listen_tenant(l, tenant_b, "orders", NULL, NULL, &e), GP_OK); /* queued */

    assert_int_equal(send(tenant_a, "orders", "rolled back", false, true), GP_ERR_CANCELED);
    assert_int_equal(send(tenant_a, "orders", "order 1 ready", false, false), GP_OK);
    want_t w = {&a, 1};
    assert_true(eventually(has_messages, &w));
    /* B's sentinel, sent after A's: in commit order, so anything of A's
     * that reached B's queue would be in front of it. */
    assert_int_equal(send(tenant_b, "orders", "b sentinel", false, false), GP_OK);
    gp_notification_t *n = next_queued(l);
    assert_non_null(n);
    assert_int_equal(n->kind, GP_NOTIFY_MESSAGE);
    assert_string_equal(n->payload, "b sentinel");
    assert_string_equal(n->tenant_id, tenant_b);
    assert_string_equal(n->channel, "orders");
    assert_false(n->service);
    gp_notification_free(n);
    assert_int_equal(gp_listener_next(l, &n), GP_OK);
    assert_null(n);
    struct pollfd p = {.fd = gp_listener_fd(l), .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0); /* an empty queue: not readable */
    char log[4096];
    log_of(&a, log, sizeof log);
    char expect[128];
    snprintf(expect, sizeof expect, "msg:%.8s:orders:order 1 ready;", tenant_a);
    assert_string_equal(log, expect); /* nothing rolled back, nothing of B */

    /* A service channel: every tenant's messages, each with its tenant. */
    seen_t svc = {.mu = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(gp_listener_listen_service(l, "events", record, &svc, &e), GP_OK);
    assert_int_equal(send(tenant_a, "events", "from a", true, false), GP_OK);
    assert_int_equal(send(tenant_b, "events", "from b", true, false), GP_OK);
    w = (want_t){&svc, 2};
    assert_true(eventually(has_messages, &w));
    log_of(&svc, log, sizeof log);
    snprintf(expect, sizeof expect, "svc:%.8s:events:from a;svc:%.8s:events:from b;", tenant_a, tenant_b);
    assert_string_equal(log, expect);
    assert_int_equal(gp_listener_rejected(l), 0);
    gp_listener_free(l);
}

/* The channel and a genuine message as the library makes them (the test
 * holds the key, which the attacker does not; the attacker here is given
 * a genuine message of its own to replay). */
static void channel_for(const char *tenant, const char *name, char out[28])
{
    gp__tenant_key_t k;
    assert_true(gp__tenant_key_decode(cfg.db.tenant_key, 0, &k));
    char msg[160];
    int n = snprintf(msg, sizeof msg, "ch1.t.%s.%s", tenant, name);
    unsigned char mac[32];
    gp__hmac_sha256(k.key, k.len, msg, (size_t)n, mac);
    memcpy(out, "gp_", 3);
    gp__hex(mac, 12, out + 3);
}

static void genuine(const char *channel, const char *tenant, const char *payload, char *out, size_t len)
{
    gp__tenant_key_t k;
    assert_true(gp__tenant_key_decode(cfg.db.tenant_key, 0, &k));
    char msg[512];
    int n = snprintf(msg, sizeof msg, "msg1.%s.%s.%s", channel, tenant, payload);
    unsigned char mac[32];
    char tag[33];
    gp__hmac_sha256(k.key, k.len, msg, (size_t)n, mac);
    gp__hex(mac, 16, tag);
    snprintf(out, len, "%s.%s.%s", tag, tenant, payload);
}

static bool rejected3(void *l) { return gp_listener_rejected(l) >= 3; }

static void test_another_tenant_cannot_reach_a_subscription(void **state)
{
    (void)state;
    gp_listener_t *l = listener();
    seen_t b = {.mu = PTHREAD_MUTEX_INITIALIZER}, a = {.mu = PTHREAD_MUTEX_INITIALIZER};
    gp_error_t e;
    assert_int_equal(gp_listener_listen_tenant(l, tenant_b, "orders", record, &b, &e), GP_OK);
    assert_int_equal(gp_listener_listen_tenant(l, tenant_a, "orders", record, &a, &e), GP_OK);
    char b_chan[28], a_chan[28], forged[512], replay[512];
    channel_for(tenant_b, "orders", b_chan);
    channel_for(tenant_a, "orders", a_chan);
    snprintf(forged, sizeof forged, "00000000000000000000000000000000.%s.refund everything", tenant_b);
    genuine(a_chan, tenant_a, "order 7 ready", replay, sizeof replay); /* A's own message, replayed on B's channel */
    const char *attacks[] = {"garbage", forged, replay};
    for (int i = 0; i < 3; i++) {
        gp_value_t p[2] = {gp_text(b_chan), gp_text(attacks[i])};
        assert_int_equal(gp_tenant_exec(pool, tenant_a, "SELECT pg_notify($1, $2)", 2, p, NULL, &e), GP_OK);
    }
    assert_true(eventually(rejected3, l));
    assert_int_equal(send(tenant_b, "orders", "b sentinel", false, false), GP_OK);
    want_t w = {&b, 1};
    assert_true(eventually(has_messages, &w));
    char log[4096], expect[128];
    log_of(&b, log, sizeof log);
    snprintf(expect, sizeof expect, "msg:%.8s:orders:b sentinel;", tenant_b);
    assert_string_equal(log, expect);
    log_of(&a, log, sizeof log);
    assert_string_equal(log, ""); /* and A saw nothing of B's */
    assert_int_equal(gp_listener_rejected(l), 3);
    gp_listener_free(l);
}

static void test_reconnects_and_reports_the_gap(void **state)
{
    (void)state;
    gp_listener_t *l = listener();
    seen_t a = {.mu = PTHREAD_MUTEX_INITIALIZER};
    gp_error_t e;
    assert_int_equal(gp_listener_listen_tenant(l, tenant_a, "orders", record, &a, &e), GP_OK);
    assert_int_equal(gp_listener_listen_tenant(l, tenant_a, "queued", NULL, NULL, &e), GP_OK);
    int pid = gp_listener_backend_pid(l);
    assert_true(pid > 0);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 5000)", pid);
    gp_test_admin_exec(sql);
    want_t w = {&a, 1};
    assert_true(eventually(has_gaps, &w));
    assert_int_equal(gp_listener_gaps(l), 1);
    assert_int_not_equal(gp_listener_backend_pid(l), pid);
    gp_notification_t *n = next_queued(l); /* the queue learns of the gap too */
    assert_non_null(n);
    assert_int_equal(n->kind, GP_NOTIFY_GAP);
    assert_true(n->gap_ms >= 0);
    gp_notification_free(n);
    /* Listening again: a message after the gap arrives. */
    assert_int_equal(send(tenant_a, "orders", "after the gap", false, false), GP_OK);
    assert_true(eventually(has_messages, &w));
    char log[4096], expect[128];
    log_of(&a, log, sizeof log);
    snprintf(expect, sizeof expect, "gap;msg:%.8s:orders:after the gap;", tenant_a);
    assert_string_equal(log, expect);
    gp_listener_free(l);
}

static void test_refusals(void **state)
{
    (void)state;
    gp_listener_t *l = listener();
    gp_error_t e;
    assert_int_equal(gp_listener_listen_tenant(l, tenant_a, "Orders", NULL, NULL, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "[a-z0-9_]"));
    assert_int_equal(gp_listener_listen_tenant(l, tenant_a, "", NULL, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_listener_listen_tenant(l, "not-a-tenant", "orders", NULL, NULL, &e), GP_ERR_TENANT);
    assert_int_equal(gp_listener_listen_tenant(l, tenant_a, "orders", NULL, NULL, &e), GP_OK);
    assert_int_equal(gp_listener_listen_tenant(l, tenant_a, "orders", NULL, NULL, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "already subscribed"));
    char big[GP_NOTIFY_PAYLOAD_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(send(tenant_a, "orders", big, false, false), GP_ERR_INVALID);
    assert_int_equal(send(tenant_a, "no-dash", "x", false, false), GP_ERR_INVALID);
    assert_int_equal(send(tenant_a, "orders", "bad \xff utf-8", false, false), GP_ERR_INVALID);
    gp_listener_free(l);
    gp_listener_free(NULL);
    /* Without a tenant key: refused, naming it. */
    gp_config_t nokey = cfg;
    nokey.db.tenant_key = NULL;
    gp_listener_t *x = (gp_listener_t *)&e;
    assert_int_equal(gp_listener_create(&nokey, &x, &e), GP_ERR_CONFIG);
    assert_null(x);
    assert_non_null(strstr(e.message, "DATABASE_TENANT_KEY"));
}

/* ---- commit-coupled cache invalidation ------------------------------------ */

typedef struct inval {
    gp_cache_t *cache;
    size_t n;
    const char *const *keys;
    bool rollback;
} inval_t;

static gp_status_t inval_fn(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    inval_t *v = ud;
    gp_status_t st = gp_cache_tx_invalidate(v->cache, tx, v->n, v->keys, err);
    if (st == GP_OK)
        st = gp_tenant_tx_exec(tx, "UPDATE public.tenants SET name = name", 0, NULL, NULL, err);
    return st == GP_OK && v->rollback ? GP_ERR_CANCELED : st;
}

static gp_status_t cache_get(gp_cache_t *c, const char *key)
{
    char *v = NULL;
    size_t len = 0;
    gp_error_t e;
    gp_status_t st = gp_cache_get(c, tenant_a, key, &v, &len, &e);
    free(v);
    return st;
}

typedef struct miss {
    gp_cache_t *c;
    const char *key;
} miss_t;
static bool is_miss(void *arg) { miss_t *m = arg; return cache_get(m->c, m->key) == GP_ERR_MISS; }

static void test_cache_invalidated_after_commit_only(void **state)
{
    (void)state;
    gp_cache_options_t slow = {.generation_ttl_ms = 600000}; /* without the notification: ten minutes */
    gp_cache_t *here = NULL, *there = NULL;
    gp_error_t e;
    assert_int_equal(gp_cache_create(&cfg, NULL, &here, &e), GP_OK);
    assert_int_equal(gp_cache_create(&cfg, &slow, &there, &e), GP_OK); /* "another process" */
    gp_listener_t *l = listener();
    assert_int_equal(gp_cache_listen(there, l, &e), GP_OK);

    const char *keys[] = {"menu:1"};
    assert_int_equal(gp_cache_set(here, tenant_a, "menu:1", "cached", 6, 60000, &e), GP_OK);
    inval_t v = {here, 1, keys, true};
    assert_int_equal(gp_tenant_run(pool, tenant_a, NULL, inval_fn, &v, NULL, &e), GP_ERR_CANCELED);
    assert_int_equal(cache_get(here, "menu:1"), GP_OK); /* rolled back: nothing invalidated */
    v.rollback = false;
    assert_int_equal(gp_tenant_run(pool, tenant_a, NULL, inval_fn, &v, NULL, &e), GP_OK);
    assert_int_equal(cache_get(here, "menu:1"), GP_ERR_MISS); /* at once, on return */

    /* The whole tenant: "there" caches the generation for ten minutes, and
     * still sees the invalidation as soon as the notification arrives. */
    assert_int_equal(gp_cache_set(here, tenant_a, "menu:2", "cached", 6, 60000, &e), GP_OK);
    assert_int_equal(cache_get(there, "menu:2"), GP_OK);
    inval_t all = {here, 0, NULL, false};
    assert_int_equal(gp_tenant_run(pool, tenant_a, NULL, inval_fn, &all, NULL, &e), GP_OK);
    assert_int_equal(cache_get(here, "menu:2"), GP_ERR_MISS);
    miss_t m = {there, "menu:2"};
    assert_true(eventually(is_miss, &m));
    /* Refusals: a bad key registers nothing. */
    const char *bad[] = {"has space"};
    inval_t b = {here, 1, bad, false};
    assert_int_equal(gp_tenant_run(pool, tenant_a, NULL, inval_fn, &b, NULL, &e), GP_ERR_KEY);
    gp_listener_free(l);
    gp_cache_close(there);
    gp_cache_close(here);
}

/* scripts/harden.sql revokes pg_notify() from the application role: the
 * library's NOTIFY (the command, which cannot be revoked) still works. */
static void test_hardened_database(void **state)
{
    (void)state;
    PGconn *admin = gp_scratch_connect(scratch.admin);
    gp_scratch_exec(admin, "REVOKE EXECUTE ON FUNCTION pg_catalog.pg_notify(text, text) FROM PUBLIC");
    gp_error_t e;
    assert_int_equal(gp_tenant_exec(pool, tenant_a, "SELECT pg_notify('x', 'y')", 0, NULL, NULL, &e), GP_ERR_SERVER);
    assert_string_equal(e.sqlstate, "42501");
    gp_listener_t *l = listener();
    seen_t a = {.mu = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(gp_listener_listen_tenant(l, tenant_a, "orders", record, &a, &e), GP_OK);
    assert_int_equal(send(tenant_a, "orders", "it's 'quoted' \\ and \"escaped\"", false, false), GP_OK);
    want_t w = {&a, 1};
    assert_true(eventually(has_messages, &w));
    char log[4096], expect[160];
    log_of(&a, log, sizeof log);
    snprintf(expect, sizeof expect, "msg:%.8s:orders:it's 'quoted' \\ and \"escaped\";", tenant_a);
    assert_string_equal(log, expect);
    gp_listener_free(l);
    gp_scratch_exec(admin, "GRANT EXECUTE ON FUNCTION pg_catalog.pg_notify(text, text) TO PUBLIC");
    PQfinish(admin);
}

/* Unsubscribed: nothing more is delivered (a sentinel on another channel,
 * sent after, arrives); subscribed again: delivered again. */
static void test_unlisten(void **state)
{
    (void)state;
    gp_listener_t *l = listener();
    seen_t a = {.mu = PTHREAD_MUTEX_INITIALIZER}, s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    gp_error_t e;
    assert_int_equal(gp_listener_listen_tenant(l, tenant_a, "orders", record, &a, &e), GP_OK);
    assert_int_equal(gp_listener_listen_tenant(l, tenant_a, "sentinel", record, &s, &e), GP_OK);
    assert_int_equal(gp_listener_unlisten(l, tenant_a, "orders", &e), GP_OK);
    assert_int_equal(gp_listener_unlisten(l, tenant_a, "orders", &e), GP_ERR_NOT_FOUND);
    assert_int_equal(gp_listener_unlisten(l, NULL, "orders", &e), GP_ERR_NOT_FOUND); /* no such service channel */
    assert_int_equal(send(tenant_a, "orders", "after unlisten", false, false), GP_OK);
    assert_int_equal(send(tenant_a, "sentinel", "1", false, false), GP_OK);
    want_t w = {&s, 1};
    assert_true(eventually(has_messages, &w));
    assert_int_equal(messages_of(&a), 0);
    assert_int_equal(gp_listener_listen_tenant(l, tenant_a, "orders", record, &a, &e), GP_OK);
    assert_int_equal(send(tenant_a, "orders", "again", false, false), GP_OK);
    w = (want_t){&a, 1};
    assert_true(eventually(has_messages, &w));
    char log[4096], expect[128];
    log_of(&a, log, sizeof log);
    snprintf(expect, sizeof expect, "msg:%.8s:orders:again;", tenant_a);
    assert_string_equal(log, expect);
    assert_int_equal(gp_listener_rejected(l), 0);
    gp_listener_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivered_on_commit_to_its_tenant_only),
        cmocka_unit_test(test_another_tenant_cannot_reach_a_subscription),
        cmocka_unit_test(test_reconnects_and_reports_the_gap),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_unlisten),
        cmocka_unit_test(test_cache_invalidated_after_commit_only),
        cmocka_unit_test(test_hardened_database),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
