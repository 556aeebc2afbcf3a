/* test_sentinel.c — the cache on a real Redis Sentinel setup (scripts/
 * services start sentinel, with a private GP_SERVICES_KEY: a master, a
 * replica and three sentinels of this test's own): REDIS_SENTINELS and
 * REDIS_SENTINEL_MASTER validation, discovering the master, a cache pointed
 * at a master that a failover turns into a replica (READONLY is a
 * wrong-node failure: counted, logged, health degraded, the replica
 * refused), SENTINEL FAILOVER under 8 threads of writes (no acknowledged
 * write lost outside the switch, writes resume on the new master within
 * 1 s of +switch-master, no READONLY storm, tenants stay apart) and the
 * master killed. */
/* ctest-labels: concurrency */
/* ctest-serial */
/* ctest-timeout: 300 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gp_test.h"
#include "gp_test_cache.h"


static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static char key[64], sentinels[256], master_name[64];

static int services(const char *args) { return gp_test_key_services(key, args); }

static int setup(void **state)
{
    (void)state;
    snprintf(key, sizeof key, "sentinel-%d", (int)getpid());
    if (services("start sentinel >/dev/null") != 0) {
        services("clean >/dev/null 2>&1");
        return -1;
    }
    if (!gp_test_key_env(key, "GP_REDIS_SENTINELS", sentinels, sizeof sentinels) ||
        !gp_test_key_env(key, "GP_REDIS_SENTINEL_MASTER", master_name, sizeof master_name))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    services("clean >/dev/null 2>&1");
    return 0;
}

static int sentinel_port(int k)
{
    /* sentinels is "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3" */
    const char *p = sentinels;
    for (int i = 0; i < k; i++)
        p = strchr(p, ',') + 1;
    return atoi(strchr(p, ':') + 1);
}

static redisContext *connect_port(int port)
{
    redisContext *r = redisConnectWithTimeout("127.0.0.1", port, (struct timeval){2, 0});
    assert_non_null(r);
    assert_int_equal(r->err, 0);
    return r;
}

/* The master's port, as sentinel 0 names it now. */
static int master_port(void)
{
    redisContext *r = connect_port(sentinel_port(0));
    redisReply *rep = gp_test_redis_cmd(r, "SENTINEL get-master-addr-by-name %s", master_name);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    int port = atoi(rep->element[1]->str);
    freeReplyObject(rep);
    redisFree(r);
    return port;
}

/* What ROLE says the node on port is ("" when it does not answer). */
static void role_of(int port, char *out, size_t len)
{
    out[0] = 0;
    redisContext *r = redisConnectWithTimeout("127.0.0.1", port, (struct timeval){1, 0});
    if (r && !r->err) {
        redisReply *rep = redisCommand(r, "ROLE");
        if (rep && rep->type == REDIS_REPLY_ARRAY)
            snprintf(out, len, "%s", rep->element[0]->str);
        if (rep)
            freeReplyObject(rep);
    }
    redisFree(r);
}

/* Wait (bounded) until every sentinel names a master other than `old` and
 * the setup is settled (the old master, when alive, a replica of it). */
static int wait_switch(int old, bool old_alive)
{
    int64_t deadline = gp_test_now_ms() + 60000;
    for (;;) {
        int now = master_port();
        char role[32] = "slave";
        if (old_alive)
            role_of(old, role, sizeof role);
        if (now != old && strcmp(role, "slave") == 0)
            return now;
        assert_true(gp_test_now_ms() < deadline);
        gp_test_poll_pause();
    }
}

static gp_cache_t *sentinel_cache(gp_config_t *cfg, int pool_size)
{
    gp_test_config(cfg);
    cfg->redis.url = NULL;
    cfg->redis.sentinels = sentinels;
    cfg->redis.sentinel_master = master_name;
    cfg->redis.pool_size = pool_size;
    gp_cache_t *c = NULL;
    gp_error_t err;
    if (gp_cache_create(cfg, NULL, &c, &err) != GP_OK)
        fail_msg("gp_cache_create: %s", err.message);
    return c;
}

/* The value of `field` in a SENTINEL reply's flat list of name, value. */
static const char *field(const redisReply *r, const char *name)
{
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0)
            return r->element[i + 1]->str;
    return "";
}

/* Wait (bounded) until every sentinel sees the master up and a replica
 * in sync that it could promote: a failover right after another (or after
 * the replica's resync) is refused with NOGOODSLAVE until then. */
static void wait_settled(void)
{
    int64_t deadline = gp_test_now_ms() + 60000;
    for (;;) {
        bool ok = true;
        for (int k = 0; k < 3 && ok; k++) {
            redisContext *r = connect_port(sentinel_port(k));
            redisReply *m = gp_test_redis_cmd(r, "SENTINEL MASTER %s", master_name);
            ok = strcmp(field(m, "flags"), "master") == 0;
            freeReplyObject(m);
            redisReply *reps = gp_test_redis_cmd(r, "SENTINEL REPLICAS %s", master_name);
            bool good = false;
            for (size_t i = 0; reps->type == REDIS_REPLY_ARRAY && i < reps->elements; i++)
                good |= strcmp(field(reps->element[i], "flags"), "slave") == 0 &&
                        strcmp(field(reps->element[i], "master-link-status"), "ok") == 0;
            ok &= good;
            freeReplyObject(reps);
            redisFree(r);
        }
        if (ok)
            return;
        assert_true(gp_test_now_ms() < deadline);
        gp_test_poll_pause();
    }
}

static void failover(void)
{
    int64_t deadline = gp_test_now_ms() + 60000;
    for (;;) {
        redisContext *r = connect_port(sentinel_port(1));
        redisReply *rep = gp_test_redis_cmd(r, "SENTINEL FAILOVER %s", master_name);
        bool retry = rep->type == REDIS_REPLY_ERROR &&
                     (strncmp(rep->str, "NOGOODSLAVE", 11) == 0 || strncmp(rep->str, "INPROG", 6) == 0);
        if (rep->type == REDIS_REPLY_ERROR && (!retry || gp_test_now_ms() >= deadline))
            fail_msg("SENTINEL FAILOVER: %s", rep->str);
        freeReplyObject(rep);
        redisFree(r);
        if (!retry)
            return;
        gp_test_poll_pause(); /* the sentinels refresh what they know of the replica */
    }
}

static void test_config(void **state)
{
    (void)state;
    gp_config_t cfg;
    char msg[1024];
    gp_config_init(&cfg);
    cfg.redis.sentinels = "127.0.0.1:26379,[::1]:26380";
    assert_int_equal(gp_test_validate(&cfg, msg, sizeof msg), GP_ERR_CONFIG);
    assert_non_null(strstr(msg, "REDIS_SENTINEL_MASTER: not set"));
    cfg.redis.sentinel_master = "mymaster";
    if (gp_test_validate(&cfg, msg, sizeof msg) != GP_OK)
        fail_msg("%s", msg);
    char shown[300];
    gp_config_redis_display(&cfg.redis, shown, sizeof shown);
    assert_string_equal(shown, "redis-sentinel://127.0.0.1:26379,[::1]:26380/mymaster/0");
    cfg.redis.password = "s3cret";
    gp_config_redis_display(&cfg.redis, shown, sizeof shown);
    assert_null(strstr(shown, "s3cret"));

    static const char *const bad[] = {"127.0.0.1", "127.0.0.1:0", "h:1,,h:2", "[::1:5", ":26379", "h:99999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.redis.sentinels = bad[i];
        assert_int_equal(gp_test_validate(&cfg, msg, sizeof msg), GP_ERR_CONFIG);
        assert_non_null(strstr(msg, "REDIS_SENTINELS: '"));
        assert_non_null(strstr(msg, "host:port"));
    }
    cfg.redis.sentinels = "127.0.0.1:26379";
    cfg.redis.url = "redis://10.0.0.1:6379/0";
    assert_int_equal(gp_test_validate(&cfg, msg, sizeof msg), GP_ERR_CONFIG);
    if (!strstr(msg, "the master's address comes from the sentinels"))
        fail_msg("%s", msg);
    cfg.redis.url = NULL;
    cfg.redis.sentinel_master = "my master";
    assert_int_equal(gp_test_validate(&cfg, msg, sizeof msg), GP_ERR_CONFIG);
    assert_non_null(strstr(msg, "REDIS_SENTINEL_MASTER: 'my master' is not allowed"));
    cfg.redis.sentinels = NULL;
    cfg.redis.sentinel_master = "mymaster";
    assert_int_equal(gp_test_validate(&cfg, msg, sizeof msg), GP_ERR_CONFIG);
    assert_non_null(strstr(msg, "set without REDIS_SENTINELS"));
}

static void test_discovers_the_master(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_t *c = sentinel_cache(&cfg, 2);
    char t[37], *v = NULL;
    gp_test_tenant(t);
    gp_error_t err;
    assert_int_equal(gp_cache_set(c, t, "k", "v", 1, 60000, &err), GP_OK);
    assert_int_equal(gp_cache_get(c, t, "k", &v, NULL, &err), GP_OK);
    assert_string_equal(v, "v");
    free(v);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", master_port());
    gp_cache_metrics_t m = gp_test_cache_metrics(c);
    assert_string_equal(m.node, want);
    gp_cache_close(c);
    gp_config_release(&cfg);

    /* A dead sentinel first: the next one answers. */
    char list[300];
    snprintf(list, sizeof list, "127.0.0.1:1,%s", sentinels);
    gp_test_config(&cfg);
    cfg.redis.url = NULL;
    cfg.redis.sentinels = list;
    cfg.redis.sentinel_master = master_name;
    assert_int_equal(gp_cache_create(&cfg, NULL, &c, &err), GP_OK);
    assert_int_equal(gp_cache_exists(c, t, "k", &err), GP_OK);
    gp_cache_close(c);

    /* A name the sentinels do not monitor: unavailable, and says why. */
    cfg.redis.sentinel_master = "nosuchmaster";
    assert_int_equal(gp_cache_create(&cfg, NULL, &c, &err), GP_OK);
    assert_int_equal(gp_cache_exists(c, t, "k", &err), GP_ERR_UNAVAILABLE);
    assert_non_null(strstr(err.message, "does not monitor a master named \"nosuchmaster\""));
    assert_non_null(strstr(err.message, "REDIS_SENTINEL_MASTER"));
    gp_cache_close(c);
    gp_config_release(&cfg);
}

/* A plain cache (REDIS_URL) on the master; a failover makes that node a
 * replica (and Sentinel closes its clients' connections). The cache
 * refuses to reconnect to it: it says it is a replica. */
static void test_plain_cache_on_a_demoted_master(void **state)
{
    (void)state;
    int old = master_port();
    gp_config_t cfg;
    gp_test_config(&cfg);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", old);
    cfg.redis.url = url;
    cfg.redis.pool_size = 1;
    gp_cache_options_t o = {.breaker_threshold = 1000}; /* keep the circuit out of it */
    gp_cache_t *c;
    gp_error_t err;
    assert_int_equal(gp_cache_create(&cfg, &o, &c, &err), GP_OK);
    char t[37];
    gp_test_tenant(t);
    assert_int_equal(gp_cache_set(c, t, "k", "v", 1, 60000, &err), GP_OK);

    wait_settled();
    failover();
    wait_switch(old, true);

    assert_int_equal(gp_cache_set(c, t, "k", "w", 1, 60000, &err), GP_ERR_UNAVAILABLE);
    assert_int_equal(err.klass, GP_ECLASS_CONNECTION);
    assert_true(err.retriable);
    if (!strstr(err.message, "is a replica of 127.0.0.1:") || !strstr(err.message, "REDIS_SENTINELS"))
        fail_msg("%s", err.message);
    char *v = NULL;
    assert_int_equal(gp_cache_get(c, t, "k", &v, NULL, &err), GP_ERR_UNAVAILABLE); /* no reads from it either */
    assert_null(v);
    assert_int_equal(gp_test_cache_metrics(c).connected, 0);

    gp_health_options_t ho = {.cfg = &cfg, .cache = c, .deadline_ms = 3000};
    gp_health_report_t rep;
    gp_health_check(&ho, &rep);
    assert_int_equal(rep.redis.status, GP_ERR_UNAVAILABLE);
    assert_non_null(strstr(rep.redis.message, "is a replica"));
    assert_true(rep.state != GP_HEALTH_UP);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

/* ---- a failover under load ------------------------------------------------------ */

#define WRITERS 8
#define MAX_WRITES 400000

typedef struct writer {
    gp_cache_t *c;
    char tenant[37];
    int64_t *acked_ns; /* acked_ns[i]: when write i was acknowledged, 0 = it failed */
    int n;
    _Atomic bool *stop;
} writer_t;

static void *write_loop(void *arg)
{
    writer_t *w = arg;
    while (!atomic_load(w->stop) && w->n < MAX_WRITES) {
        char k[32], v[32];
        snprintf(k, sizeof k, "w%d", w->n);
        snprintf(v, sizeof v, "%d", w->n);
        gp_status_t st = gp_cache_set(w->c, w->tenant, k, v, strlen(v), 300000, NULL);
        w->acked_ns[w->n++] = st == GP_OK ? now_ns() : 0;
    }
    return NULL;
}

static void test_failover_under_load(void **state)
{
    (void)state;
    wait_settled();
    gp_config_t cfg;
    gp_cache_t *c = sentinel_cache(&cfg, 4);
    int old = master_port();
    _Atomic bool stop = false;
    writer_t w[WRITERS];
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (writer_t){.c = c, .stop = &stop, .acked_ns = calloc(MAX_WRITES, sizeof(int64_t))};
        assert_non_null(w[i].acked_ns);
        gp_test_tenant(w[i].tenant);
        /* The tenant's generation exists (and is replicated) before the load. */
        assert_int_equal(gp_cache_set(c, w[i].tenant, "init", "1", 1, 300000, NULL), GP_OK);
    }
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, write_loop, &w[i]), 0);
    gp_test_pause_ms(500); /* pacing: a load before the failover */
    int64_t t_cmd = now_ns();
    failover();
    /* +switch-master: when sentinel 0 names the new master. */
    int64_t deadline = gp_test_now_ms() + 60000;
    while (master_port() == old) {
        assert_true(gp_test_now_ms() < deadline);
        gp_test_poll_pause();
    }
    int64_t t_switch = now_ns();
    int now_master = wait_switch(old, true);
    gp_test_pause_ms(1000); /* pacing: a load after the switch */
    atomic_store(&stop, true);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);

    /* Read everything back through the cache (now on the new master). */
    int lost_before = 0, lost_after = 0, lost_window = 0, acked = 0, resumed = 0;
    int64_t first_after = 0;
    for (int i = 0; i < WRITERS; i++) {
        for (int base = 0; base < w[i].n; base += 512) {
            int n = w[i].n - base < 512 ? w[i].n - base : 512;
            char names[512][16];
            const char *keys[512];
            gp_cache_value_t vals[512];
            for (int j = 0; j < n; j++) {
                snprintf(names[j], sizeof names[j], "w%d", base + j);
                keys[j] = names[j];
            }
            gp_error_t err;
            if (gp_cache_mget(c, w[i].tenant, (size_t)n, keys, vals, &err) != GP_OK)
                fail_msg("mget after the failover: %s", err.message);
            for (int j = 0; j < n; j++) {
                int64_t a = w[i].acked_ns[base + j];
                if (a) {
                    acked++;
                    bool ok = vals[j].data && atoi(vals[j].data) == base + j;
                    if (vals[j].data)
                        assert_int_equal(atoi(vals[j].data), base + j); /* never a wrong value */
                    if (a < t_cmd - 50000000LL)
                        lost_before += !ok;
                    else if (a > t_switch + 1000000000LL)
                        lost_after += !ok;
                    else
                        lost_window += !ok;
                    if (ok && a >= t_switch && a <= t_switch + 1000000000LL)
                        resumed++;
                    if (ok && a >= t_switch && (!first_after || a < first_after))
                        first_after = a;
                }
            }
            gp_cache_values_free(vals, (size_t)n);
        }
    }
    gp_cache_metrics_t m = gp_test_cache_metrics(c);
    printf("failover under load: %d writes acknowledged; lost: %d before the failover, %d in the window, %d after; "
           "first write on the new master %.0f ms after the switch; READONLY replies %llu; switches %llu\n",
           acked, lost_before, lost_window, lost_after, first_after ? (first_after - t_switch) / 1e6 : -1.0,
           (unsigned long long)m.wrong_node[GP_CACHE_WRONG_READONLY], (unsigned long long)m.master_switches);
    assert_int_equal(lost_before, 0);
    assert_int_equal(lost_after, 0);
    assert_true(resumed > 0); /* writes resumed within 1 s of the switch */
    assert_true(m.wrong_node[GP_CACHE_WRONG_READONLY] <= WRITERS); /* no READONLY storm */
    assert_true(m.master_switches >= 1);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", now_master);
    assert_string_equal(m.node, want);

    /* Tenants stay apart across the failover: a tenant reads none of
     * another's keys. */
    for (int i = 0; i < WRITERS; i++) {
        char *v = NULL;
        gp_status_t st = gp_cache_get(c, w[(i + 1) % WRITERS].tenant, "w0", &v, NULL, NULL);
        if (st == GP_OK) { /* its own w0, never the other's */
            assert_string_equal(v, "0");
            free(v);
        }
        assert_int_equal(gp_cache_get(c, w[i].tenant, "init", &v, NULL, NULL), GP_OK);
        free(v);
    }
    char stranger[37], *v = NULL;
    gp_test_tenant(stranger);
    assert_int_equal(gp_cache_get(c, stranger, "w0", &v, NULL, NULL), GP_ERR_MISS);
    for (int i = 0; i < WRITERS; i++)
        free(w[i].acked_ns);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

/* The master dies (SIGKILL): the sentinels promote the replica and the
 * cache follows, without the old address ever coming back. Last: it leaves
 * the setup with one node. */
static void test_master_killed(void **state)
{
    (void)state;
    wait_settled();
    gp_config_t cfg;
    gp_cache_t *c = sentinel_cache(&cfg, 2);
    char t[37];
    gp_test_tenant(t);
    gp_error_t err;
    assert_int_equal(gp_cache_set(c, t, "k", "v", 1, 300000, &err), GP_OK);
    int old = master_port();
    redisContext *r = connect_port(old);
    /* The value is on the replica before the kill: a write of this
     * connection after the cache's, and WAIT for it. */
    redisReply *rep = gp_test_redis_cmd(r, "SET growplate:test:marker 1");
    freeReplyObject(rep);
    rep = gp_test_redis_cmd(r, "WAIT 1 5000");
    assert_int_equal(rep->integer, 1);
    freeReplyObject(rep);
    rep = gp_test_redis_cmd(r, "INFO server");
    const char *pid = strstr(rep->str, "process_id:");
    assert_non_null(pid);
    assert_int_equal(kill((pid_t)atoi(pid + 11), SIGKILL), 0);
    freeReplyObject(rep);
    redisFree(r);

    int64_t t0 = gp_test_now_ms(), deadline = t0 + 60000;
    gp_status_t st;
    while ((st = gp_cache_set(c, t, "k2", "v2", 2, 300000, &err)) != GP_OK) {
        assert_int_equal(st, GP_ERR_UNAVAILABLE); /* never another failure */
        assert_true(gp_test_now_ms() < deadline);
        gp_test_poll_pause();
    }
    printf("master killed: writes back after %lld ms\n", (long long)(gp_test_now_ms() - t0));
    char *v = NULL;
    assert_int_equal(gp_cache_get(c, t, "k", &v, NULL, &err), GP_OK);
    assert_string_equal(v, "v");
    free(v);
    gp_cache_metrics_t m = gp_test_cache_metrics(c);
    char was[64];
    snprintf(was, sizeof was, "127.0.0.1:%d", old);
    assert_string_not_equal(m.node, was);
    assert_true(m.master_switches >= 1);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

int main(void)
{
    gp_test_require_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_discovers_the_master),
        cmocka_unit_test(test_plain_cache_on_a_demoted_master),
        cmocka_unit_test(test_failover_under_load),
        cmocka_unit_test(test_master_killed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
