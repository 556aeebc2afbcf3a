/* test_cache_wrong_node.c — wrong-node replies on real servers. A node that stops being a master under the
 * cache's open connections (REPLICAOF, which, unlike a Sentinel failover,
 * leaves its clients connected): the writes get READONLY, which is a
 * wrong-node failure, never "the server works": GP_ERR_UNAVAILABLE naming
 * the reply and what to do, counted by kind, logged, health degraded with
 * the node's role, and the connection dropped; the replica is then refused
 * at connect (ROLE), and the cache works again once it is a master. A
 * plain cache pointed at one node of a 3-master Redis Cluster: the tenants
 * whose slot lives elsewhere get MOVED (counted per call, logged, never a
 * silent miss, also through get_or_load), and a slot no node serves gives
 * CLUSTERDOWN. Private servers of this test's own (scripts/services with
 * their own GP_SERVICES_KEY), never the shared ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gp_test.h"
#include "gp_test_cache.h"

static char key_a[64], key_b[64], url_a[128], url_b[128], cluster[256];

static int setup(void **state)
{
    (void)state;
    snprintf(key_a, sizeof key_a, "wrongnode-a-%d", (int)getpid());
    snprintf(key_b, sizeof key_b, "wrongnode-b-%d", (int)getpid());
    if (gp_test_key_services(key_a, "start redis >/dev/null") != 0 ||
        gp_test_key_services(key_b, "start redis >/dev/null") != 0 ||
        !gp_test_key_env(key_a, "REDIS_URL", url_a, sizeof url_a) ||
        !gp_test_key_env(key_b, "REDIS_URL", url_b, sizeof url_b) ||
        gp_test_key_services(key_a, "start cluster >/dev/null") != 0 ||
        !gp_test_key_env(key_a, "GP_REDIS_CLUSTER_NODES", cluster, sizeof cluster)) {
        gp_test_key_services(key_a, "clean >/dev/null 2>&1");
        gp_test_key_services(key_b, "clean >/dev/null 2>&1");
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_test_key_services(key_a, "clean >/dev/null 2>&1");
    gp_test_key_services(key_b, "clean >/dev/null 2>&1");
    return 0;
}

static int port_of(const char *url) { return atoi(strrchr(url, ':') + 1); }

/* REPLICAOF 127.0.0.1 port on the server of url; port 0: REPLICAOF NO ONE. */
static void replicaof(const char *url, int port)
{
    redisContext *r = redisConnectWithTimeout("127.0.0.1", port_of(url), (struct timeval){2, 0});
    assert_non_null(r);
    assert_int_equal(r->err, 0);
    redisReply *rep = port ? gp_test_redis_cmd(r, "REPLICAOF 127.0.0.1 %d", port) : gp_test_redis_cmd(r, "REPLICAOF NO ONE");
    if (rep->type == REDIS_REPLY_ERROR)
        fail_msg("REPLICAOF: %s", rep->str);
    freeReplyObject(rep);
    redisFree(r);
}

static void test_readonly_is_a_wrong_node(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_test_config(&cfg);
    cfg.redis.url = url_a;
    cfg.redis.pool_size = 1;
    gp_cache_options_t o = {.breaker_threshold = 1000}; /* the circuit is another test's subject */
    gp_cache_t *c;
    gp_error_t err;
    assert_int_equal(gp_cache_create(&cfg, &o, &c, &err), GP_OK);
    char t[37];
    gp_test_tenant(t);
    assert_int_equal(gp_cache_set(c, t, "k", "v", 1, 60000, &err), GP_OK);
    gp_test_capture_logs(GP_LOG_WARN);

    replicaof(url_a, port_of(url_b));

    /* The open connection: READONLY. */
    assert_int_equal(gp_cache_set(c, t, "k", "w", 1, 60000, &err), GP_ERR_UNAVAILABLE);
    assert_int_equal(err.klass, GP_ECLASS_CONNECTION);
    assert_true(err.retriable);
    if (!strstr(err.message, "READONLY") || !strstr(err.message, "replica now") ||
        !strstr(err.message, "REDIS_SENTINELS"))
        fail_msg("%s", err.message);
    gp_cache_metrics_t m = gp_test_cache_metrics(c);
    assert_int_equal(m.wrong_node[GP_CACHE_WRONG_READONLY], 1);
    assert_int_equal(m.wrong_node[GP_CACHE_WRONG_MOVED], 0);
    assert_true(m.wrong_node_age_ms >= 0 && m.wrong_node_age_ms < 10000);
    assert_int_equal(m.server_errors, 0); /* not "the server works" */
    assert_int_equal(m.unavailable, 1);
    assert_int_equal(m.connected, 0);     /* that connection is gone */
    assert_true(gp_test_logs_contain("wrong node"));
    assert_true(gp_test_logs_contain("READONLY"));

    gp_metrics_source_t src = {.name = "default", .cache = c};
    char *text = NULL;
    assert_int_equal(gp_metrics_render(&src, 1, &text, NULL), GP_OK);
    assert_non_null(strstr(text, "growplate_cache_wrong_node_total{cache=\"default\",kind=\"readonly\"} 1\n"));
    assert_non_null(strstr(text, "growplate_cache_wrong_node_total{cache=\"default\",kind=\"moved\"} 0\n"));
    free(text);

    /* A new connection is refused: the node says it is a replica. */
    assert_int_equal(gp_cache_set(c, t, "k", "w", 1, 60000, &err), GP_ERR_UNAVAILABLE);
    if (!strstr(err.message, "is a replica of 127.0.0.1:"))
        fail_msg("%s", err.message);
    char *v = NULL;
    assert_int_equal(gp_cache_get(c, t, "k", &v, NULL, &err), GP_ERR_UNAVAILABLE);
    assert_null(v);

    /* Health: degraded, and says why. */
    gp_health_options_t ho = {.cfg = &cfg, .cache = c, .deadline_ms = 3000};
    gp_health_report_t rep;
    gp_health_check(&ho, &rep);
    assert_int_equal(rep.redis.status, GP_ERR_UNAVAILABLE);
    assert_non_null(strstr(rep.redis.message, "is a replica"));
    assert_int_equal(rep.state, GP_HEALTH_DEGRADED);

    /* A master again: the cache uses it again (the value written before is
     * gone: a replica takes its master's data). */
    replicaof(url_a, 0);
    assert_int_equal(gp_cache_set(c, t, "k", "x", 1, 60000, &err), GP_OK);
    assert_int_equal(gp_cache_get(c, t, "k", &v, NULL, &err), GP_OK);
    assert_string_equal(v, "x");
    free(v);
    /* ... and health reports the recent wrong-node reply for a while. */
    gp_health_check(&ho, &rep);
    assert_int_equal(rep.redis.status, GP_ERR_UNAVAILABLE);
    assert_string_equal(rep.redis.role, "master");
    if (!strstr(rep.redis.message, "wrong-node replies") || !strstr(rep.redis.message, "READONLY"))
        fail_msg("%s", rep.redis.message);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

static gp_status_t load_fixed(void *userdata, const char *tenant, const char *key, json_t **value, int64_t *ttl_ms)
{
    (void)tenant, (void)key, (void)ttl_ms;
    ++*(int *)userdata;
    *value = json_integer(42);
    return *value ? GP_OK : GP_ERR_NOMEM;
}

static void test_a_cluster_node_answers_moved(void **state)
{
    (void)state;
    int port0 = atoi(strchr(cluster, ':') + 1);
    char node0[64];
    snprintf(node0, sizeof node0, "redis://127.0.0.1:%d/0", port0);
    gp_config_t cfg;
    gp_test_config(&cfg);
    cfg.redis.url = node0;
    gp_cache_options_t o = {.breaker_threshold = 1000, .generation_ttl_ms = -1}; /* every call asks its node */
    gp_cache_t *c;
    gp_error_t err;
    assert_int_equal(gp_cache_create(&cfg, &o, &c, &err), GP_OK);
    gp_test_capture_logs(GP_LOG_WARN);
    redisContext *raw = redisConnectWithTimeout("127.0.0.1", port0, (struct timeval){2, 0});
    assert_non_null(raw);
    int here = 0, moved = 0;
    char local_tenant[37] = "", far_tenant[37] = "";
    for (int i = 0; i < 16; i++) {
        char t[37];
        gp_test_tenant(t);
        /* the oracle: does node 0 serve the tenant's slot? */
        redisReply *r = gp_test_redis_cmd(raw, "EXISTS growplate:t:{%s}:gen", t);
        bool elsewhere = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MOVED ", 6) == 0;
        freeReplyObject(r);
        gp_status_t st = gp_cache_set(c, t, "k", "v", 1, 60000, &err);
        if (elsewhere) {
            moved++;
            snprintf(far_tenant, sizeof far_tenant, "%s", t);
            assert_int_equal(st, GP_ERR_UNAVAILABLE);
            if (!strstr(err.message, "MOVED ") || !strstr(err.message, "Redis Cluster"))
                fail_msg("%s", err.message);
        } else {
            here++;
            snprintf(local_tenant, sizeof local_tenant, "%s", t);
            assert_int_equal(st, GP_OK);
        }
    }
    printf("a cluster node: %d of 16 tenants served, %d answered MOVED\n", here, moved);
    assert_true(here > 0 && moved > 0); /* 16 random tenants on 3 nodes: both, but for 2 in 10^7 */
    gp_cache_metrics_t m = gp_test_cache_metrics(c);
    assert_int_equal(m.wrong_node[GP_CACHE_WRONG_MOVED], (uint64_t)moved);
    assert_int_equal(m.server_errors, 0);
    assert_true(gp_test_logs_contain("wrong node"));
    assert_true(gp_test_logs_contain("MOVED"));

    /* get_or_load for a tenant elsewhere: the loader's value, and the
     * failure counted, not a silent miss. */
    int loads = 0;
    json_t *v = NULL;
    assert_int_equal(gp_cache_get_or_load(c, far_tenant, "menu", NULL, load_fixed, &loads, &v, &err), GP_OK);
    assert_int_equal(json_integer_value(v), 42);
    json_decref(v);
    assert_int_equal(loads, 1);
    assert_true(gp_test_cache_metrics(c).wrong_node[GP_CACHE_WRONG_MOVED] > (uint64_t)moved);

    /* A slot nobody serves: CLUSTERDOWN. */
    redisReply *r = gp_test_redis_cmd(raw, "CLUSTER KEYSLOT {%s}", local_tenant);
    long long slot = r->integer;
    freeReplyObject(r);
    r = gp_test_redis_cmd(raw, "CLUSTER DELSLOTS %lld", slot);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    assert_int_equal(gp_cache_set(c, local_tenant, "k", "v", 1, 60000, &err), GP_ERR_UNAVAILABLE);
    if (!strstr(err.message, "CLUSTERDOWN"))
        fail_msg("%s", err.message);
    assert_int_equal(gp_test_cache_metrics(c).wrong_node[GP_CACHE_WRONG_CLUSTERDOWN], 1);
    r = gp_test_redis_cmd(raw, "CLUSTER ADDSLOTS %lld", slot);
    freeReplyObject(r);
    redisFree(raw);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

int main(void)
{
    gp_test_require_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readonly_is_a_wrong_node),
        cmocka_unit_test(test_a_cluster_node_answers_moved),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
