/* test_cluster.c — the cache on a real 3-master Redis Cluster (scripts/
 * services start cluster, with a private GP_SERVICES_KEY): configuration;
 * 64 tenants, each one's keys (and generation) on the master of its slot,
 * checked on the nodes themselves, with no redirect once the map is read;
 * tenants apart across nodes; a resharding (redis-cli --cluster reshard)
 * of the slots of 16 tenants under 8 threads of writes and reads: never a
 * wrong value, redirects followed (MOVED, ASK) within the calls' budgets;
 * one master killed: the tenants on the other two never fail, those on it
 * are GP_ERR_UNAVAILABLE. */
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

static char key[64], nodes[256];
static int ports[3];

static int setup(void **state)
{
    (void)state;
    snprintf(key, sizeof key, "cluster-%d", (int)getpid());
    if (gp_test_key_services(key, "start cluster >/dev/null") != 0 ||
        !gp_test_key_env(key, "GP_REDIS_CLUSTER_NODES", nodes, sizeof nodes)) {
        gp_test_key_services(key, "clean >/dev/null 2>&1");
        return -1;
    }
    const char *p = nodes;
    for (int i = 0; i < 3; i++, p = strchr(p, ',') + 1)
        ports[i] = atoi(strchr(p, ':') + 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_test_key_services(key, "clean >/dev/null 2>&1");
    return 0;
}


static redisContext *node(int i)
{
    redisContext *r = redisConnectWithTimeout("127.0.0.1", ports[i], (struct timeval){2, 0});
    assert_non_null(r);
    assert_int_equal(r->err, 0);
    return r;
}

static gp_cache_t *cluster_cache(gp_config_t *cfg)
{
    gp_test_config(cfg);
    cfg->redis.url = NULL;
    cfg->redis.cluster_nodes = nodes;
    gp_cache_t *c = NULL;
    gp_error_t err;
    if (gp_cache_create(cfg, NULL, &c, &err) != GP_OK)
        fail_msg("gp_cache_create: %s", err.message);
    return c;
}

/* The node (0..2) that holds the tenant's generation key, asked of each
 * node itself: exactly one has it, the others answer MOVED. */
static int owner_of(const char *tenant)
{
    int owner = -1;
    for (int i = 0; i < 3; i++) {
        redisContext *r = node(i);
        redisReply *rep = gp_test_redis_cmd(r, "EXISTS growplate:t:{%s}:gen", tenant);
        if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1) {
            assert_int_equal(owner, -1);
            owner = i;
        } else {
            assert_int_equal(rep->type, REDIS_REPLY_ERROR);
            assert_true(strncmp(rep->str, "MOVED ", 6) == 0 || strncmp(rep->str, "ASK ", 4) == 0);
        }
        freeReplyObject(rep);
        redisFree(r);
    }
    return owner;
}

static void test_config(void **state)
{
    (void)state;
    gp_config_t cfg;
    char msg[1024];
    gp_test_config(&cfg);
    cfg.redis.url = NULL;
    cfg.redis.cluster_nodes = "10.0.0.1:7000,10.0.0.2:7000";
    if (gp_test_validate(&cfg, msg, sizeof msg) != GP_OK)
        fail_msg("%s", msg);
    char shown[300];
    cfg.redis.password = "hunter2";
    gp_config_redis_display(&cfg.redis, shown, sizeof shown);
    assert_string_equal(shown, "redis-cluster://:********@10.0.0.1:7000,10.0.0.2:7000");
    cfg.redis.url = "redis://10.0.0.1:7000/0";
    assert_int_equal(gp_test_validate(&cfg, msg, sizeof msg), GP_ERR_CONFIG);
    assert_non_null(strstr(msg, "REDIS_CLUSTER_NODES: set together with REDIS_URL"));
    cfg.redis.url = NULL;
    cfg.redis.db = 2;
    assert_int_equal(gp_test_validate(&cfg, msg, sizeof msg), GP_ERR_CONFIG);
    assert_non_null(strstr(msg, "database 0 only"));
    cfg.redis.db = -1;
    cfg.redis.cluster_nodes = "10.0.0.1";
    assert_int_equal(gp_test_validate(&cfg, msg, sizeof msg), GP_ERR_CONFIG);
    assert_non_null(strstr(msg, "REDIS_CLUSTER_NODES: '10.0.0.1'"));
    gp_config_release(&cfg);
}

static void test_every_tenant_on_its_node(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_t *c = cluster_cache(&cfg);
    gp_error_t err;
    int per_node[3] = {0, 0, 0};
    char first[3][37];
    for (int i = 0; i < 64; i++) {
        char t[37], v[16], *got = NULL;
        gp_test_tenant(t);
        snprintf(v, sizeof v, "v%d", i);
        if (gp_cache_set(c, t, "k", v, strlen(v), 60000, &err) != GP_OK)
            fail_msg("set, tenant %d: %s", i, err.message);
        assert_int_equal(gp_cache_get(c, t, "k", &got, NULL, &err), GP_OK);
        assert_string_equal(got, v);
        free(got);
        /* On the node that owns the slot: the generation and the value. */
        int o = owner_of(t);
        assert_true(o >= 0);
        if (!per_node[o])
            snprintf(first[o], sizeof first[o], "%s", t);
        per_node[o]++;
        redisContext *r = node(o);
        redisReply *g = gp_test_redis_cmd(r, "GET growplate:t:{%s}:gen", t);
        assert_int_equal(g->type, REDIS_REPLY_STRING);
        redisReply *val = gp_test_redis_cmd(r, "GET growplate:t:{%s}:%s:k", t, g->str);
        assert_int_equal(val->type, REDIS_REPLY_STRING);
        assert_string_equal(val->str, v);
        freeReplyObject(val);
        freeReplyObject(g);
        redisFree(r);
    }
    printf("64 tenants: %d, %d and %d on the three masters\n", per_node[0], per_node[1], per_node[2]);
    assert_true(per_node[0] && per_node[1] && per_node[2]);
    gp_cache_metrics_t m = gp_test_cache_metrics(c);
    assert_int_equal(m.wrong_node[GP_CACHE_WRONG_MOVED], 0); /* the map sent every call to its node */
    assert_int_equal(m.errors, 0);
    assert_true(m.connected >= 3);
    assert_int_equal(gp_cache_ping(c, NULL, &err), GP_OK);

    /* Batches, counters and invalidation on each node; tenants apart. */
    for (int o = 0; o < 3; o++) {
        const char *keys[2] = {"a", "b"};
        gp_cache_value_t vals[2] = {{"1", 1}, {"2", 1}}, got[2];
        assert_int_equal(gp_cache_mset(c, first[o], 2, keys, vals, 60000, &err), GP_OK);
        assert_int_equal(gp_cache_mget(c, first[o], 2, keys, got, &err), GP_OK);
        assert_string_equal(got[1].data, "2");
        gp_cache_values_free(got, 2);
        int64_t n;
        assert_int_equal(gp_cache_incr(c, first[o], "n", 2, 60000, &n, &err), GP_OK);
        assert_int_equal(n, 2);
        char *v = NULL;
        assert_int_equal(gp_cache_get(c, first[(o + 1) % 3], "a", &v, NULL, &err), GP_ERR_MISS);
        assert_int_equal(gp_cache_invalidate_tenant(c, first[o], &err), GP_OK);
        assert_int_equal(gp_cache_exists(c, first[o], "a", &err), GP_ERR_MISS);
    }
    gp_cache_close(c);
    gp_config_release(&cfg);
}

/* ---- resharding under load -------------------------------------------------------- */

#define THREADS 8

typedef struct worker {
    gp_cache_t *c;
    char tenants[2][37];
    _Atomic bool *stop;
    long ops, wrong, errors;
    char last_error[256];
} worker_t;

static void *work(void *arg)
{
    worker_t *w = arg;
    for (long i = 0; !atomic_load(w->stop); i++) {
        const char *t = w->tenants[i % 2];
        char v[32], *got = NULL;
        snprintf(v, sizeof v, "%ld", i);
        gp_error_t err;
        gp_status_t st = gp_cache_set(w->c, t, "k", v, strlen(v), 60000, &err);
        if (st == GP_OK)
            st = gp_cache_get(w->c, t, "k", &got, NULL, &err);
        if (st == GP_OK && strcmp(got, v) != 0)
            w->wrong++;
        else if (st != GP_OK) {
            w->errors++;
            snprintf(w->last_error, sizeof w->last_error, "%s", err.message);
        }
        free(got);
        w->ops++;
    }
    return NULL;
}

static void node_id(int i, char *out, size_t len)
{
    redisContext *r = node(i);
    redisReply *rep = gp_test_redis_cmd(r, "CLUSTER MYID");
    snprintf(out, len, "%s", rep->str);
    freeReplyObject(rep);
    redisFree(r);
}

static void test_resharding_under_load(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_t *c = cluster_cache(&cfg);
    /* 16 tenants in the first 1000 slots of node 0: the ones a reshard of
     * 1000 slots from node 0 moves (redis-cli takes a node's slots in order). */
    redisContext *r0 = node(0);
    redisReply *sl = gp_test_redis_cmd(r0, "CLUSTER SLOTS");
    long long lo = -1;
    for (size_t k = 0; k < sl->elements; k++)
        if (sl->element[k]->element[2]->element[1]->integer == ports[0] &&
            (lo < 0 || sl->element[k]->element[0]->integer < lo))
            lo = sl->element[k]->element[0]->integer;
    freeReplyObject(sl);
    assert_true(lo >= 0);
    worker_t w[THREADS];
    pthread_t th[THREADS];
    _Atomic bool stop = false;
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){.c = c, .stop = &stop};
        for (int j = 0; j < 2;) {
            gp_test_tenant(w[i].tenants[j]);
            redisReply *ks = gp_test_redis_cmd(r0, "CLUSTER KEYSLOT {%s}", w[i].tenants[j]);
            j += ks->integer >= lo && ks->integer < lo + 1000;
            freeReplyObject(ks);
        }
    }
    redisFree(r0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    char from[64], to[64], cmd[512];
    node_id(0, from, sizeof from);
    node_id(1, to, sizeof to);
    snprintf(cmd, sizeof cmd,
             "redis-cli --cluster reshard 127.0.0.1:%d --cluster-from %s --cluster-to %s --cluster-slots 1000 "
             "--cluster-yes >/dev/null 2>&1",
             ports[0], from, to);
    int64_t t0 = gp_test_now_ms();
    int rc = system(cmd);
    int64_t took = gp_test_now_ms() - t0;
    gp_test_pause_ms(300); /* pacing: a load after the reshard too */
    atomic_store(&stop, true);
    long ops = 0, wrong = 0, errors = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ops += w[i].ops;
        wrong += w[i].wrong;
        errors += w[i].errors;
        if (w[i].errors)
            printf("  worker %d: %ld errors, the last: %s\n", i, w[i].errors, w[i].last_error);
    }
    gp_cache_metrics_t m = gp_test_cache_metrics(c);
    printf("resharding 1000 slots under load (%lld ms): %ld calls, %ld wrong values, %ld errors; redirects "
           "followed: %llu MOVED, %llu ASK, %llu TRYAGAIN\n",
           (long long)took, ops, wrong, errors, (unsigned long long)m.wrong_node[GP_CACHE_WRONG_MOVED],
           (unsigned long long)m.wrong_node[GP_CACHE_WRONG_ASK],
           (unsigned long long)m.wrong_node[GP_CACHE_WRONG_TRYAGAIN]);
    assert_int_equal(rc, 0);
    assert_int_equal(wrong, 0);
    assert_int_equal(errors, 0);
    assert_true(m.wrong_node[GP_CACHE_WRONG_MOVED] > 0); /* the tenants' slots did move */
    /* Every tenant now on node 1. */
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < 2; j++)
            assert_int_equal(owner_of(w[i].tenants[j]), 1);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

/* One master dies: its tenants are unavailable, the others never fail.
 * Last: the cluster stays with two masters. */
static void test_one_master_down(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_cache_t *c = cluster_cache(&cfg);
    gp_error_t err;
    char on[3][4][37];
    int count[3] = {0, 0, 0};
    while (count[0] < 4 || count[1] < 4 || count[2] < 4) {
        char t[37];
        gp_test_tenant(t);
        assert_int_equal(gp_cache_set(c, t, "k", "v", 1, 60000, &err), GP_OK);
        int o = owner_of(t);
        if (count[o] < 4)
            snprintf(on[o][count[o]++], 37, "%s", t);
    }
    redisContext *r = node(2);
    redisReply *rep = gp_test_redis_cmd(r, "INFO server");
    const char *pid = strstr(rep->str, "process_id:");
    assert_non_null(pid);
    assert_int_equal(kill((pid_t)atoi(pid + 11), SIGKILL), 0);
    freeReplyObject(rep);
    redisFree(r);

    /* 3 s (past the cluster's node timeout of 2 s): the tenants of nodes 0
     * and 1 are served every time, those of node 2 never. */
    int64_t end = gp_test_now_ms() + 3000;
    long ok = 0, down = 0;
    while (gp_test_now_ms() < end) {
        for (int o = 0; o < 3; o++)
            for (int i = 0; i < 4; i++) {
                char *v = NULL;
                gp_status_t st = gp_cache_get(c, on[o][i], "k", &v, NULL, &err);
                if (o < 2) {
                    if (st != GP_OK)
                        fail_msg("a tenant of node %d: %s", o, err.message);
                    assert_string_equal(v, "v");
                    ok++;
                } else {
                    assert_int_equal(st, GP_ERR_UNAVAILABLE);
                    down++;
                }
                free(v);
            }
    }
    gp_cache_metrics_t m = gp_test_cache_metrics(c);
    printf("one master down: %ld calls of the other nodes' tenants served, %ld of its own unavailable; circuit "
           "opened %llu times\n",
           ok, down, (unsigned long long)m.circuit_opened);
    assert_true(m.circuit_opened >= 1); /* node 2's breaker, not the others' */
    assert_int_not_equal(gp_cache_ping(c, NULL, &err), GP_OK);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

int main(void)
{
    gp_test_require_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_every_tenant_on_its_node),
        cmocka_unit_test(test_resharding_under_load),
        cmocka_unit_test(test_one_master_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
