/* test_health.c — health in each state (both up, Redis stopped, PostgreSQL
 * stopped), the deadline against a server that accepts but never answers,
 * the JSON shape, the Prometheus exposition's syntax, and the CLI's exit
 * codes. Stops and restarts the shared servers, so it runs alone. */
/* ctest-serial */
/* ctest-timeout: 180 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "gp_test.h"

static gp_config_t cfg;
static gp_pool_t *pool;
static gp_cache_t *cache;

static int setup(void **state)
{
    (void)state;
    gp_test_config(&cfg);
    cfg.db.pool_min = 1;
    cfg.db.pool_max = 2;
    cfg.db.acquire_timeout_ms = 1000;
    cfg.redis.connect_timeout_ms = 500;
    cfg.redis.timeout_ms = 500;
    assert_int_equal(gp_pool_create(&cfg, &pool, NULL), GP_OK);
    gp_cache_options_t co = {.breaker_threshold = 2, .breaker_cooldown_ms = 20, .breaker_max_cooldown_ms = 50};
    assert_int_equal(gp_cache_create(&cfg, &co, &cache, NULL), GP_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_pool_close(pool, 1000);
    gp_cache_close(cache);
    gp_config_release(&cfg);
    /* Leave the servers running for the other tests, whatever happened. */
    gp_test_services("start");
    return 0;
}

static gp_health_report_t check(gp_pool_t *p, int deadline_ms)
{
    gp_health_options_t o = {.cfg = &cfg, .pool = p, .cache = p ? cache : NULL, .deadline_ms = deadline_ms};
    gp_health_report_t r;
    assert_int_equal(gp_health_check(&o, &r), GP_OK);
    return r;
}

/* Run the CLI with the test's environment; returns its exit code and
 * captures stdout. */
static int cli(const char *args, char *out, size_t outlen)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s/growplate' %s 2>/dev/null", getenv("GP_BUILD_DIR"), args);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, outlen - 1, f);
    out[n] = 0;
    int rc = pclose(f);
    return WEXITSTATUS(rc);
}

static void assert_json_shape(const char *text, const char *status)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")), status);
    assert_true(json_is_integer(json_object_get(j, "deadline_ms")));
    assert_true(json_is_number(json_object_get(j, "elapsed_ms")));
    for (int i = 0; i < 2; i++) {
        json_t *s = json_object_get(j, i ? "redis" : "postgres");
        assert_non_null(s);
        assert_true(json_is_boolean(json_object_get(s, "ok")));
        assert_true(json_is_number(json_object_get(s, "latency_ms")));
        if (!json_is_true(json_object_get(s, "ok")))
            assert_true(json_is_string(json_object_get(s, "error")));
    }
    json_decref(j);
}

static void test_both_up(void **state)
{
    (void)state;
    gp_health_report_t r = check(pool, 2000);
    assert_int_equal(r.state, GP_HEALTH_UP);
    assert_int_equal(r.postgres.status, GP_OK);
    assert_true(strncmp(r.postgres.server_version, "15.", 3) == 0);
    assert_true(r.postgres.latency_ns > 0);
    assert_int_equal(r.redis.status, GP_OK);
    assert_true(r.have_pool);
    assert_true(r.pool.acquires >= 1);
    assert_true(r.have_cache);
    assert_int_equal(r.cache.circuit, GP_CACHE_CIRCUIT_CLOSED);
    char *j = NULL;
    assert_int_equal(gp_health_to_json(&r, &j), GP_OK);
    assert_json_shape(j, "up");
    free(j);
    char out[8192];
    assert_int_equal(cli("health", out, sizeof out), 0);
    assert_non_null(strstr(out, "growplate health: up"));
    assert_int_equal(cli("health --json", out, sizeof out), 0);
    assert_json_shape(out, "up");
}

/* Every line is a comment (# HELP/# TYPE name ...) or a sample
 * `name{labels} value`; every sample's metric has a TYPE line before it. */
static void test_exposition_parses(void **state)
{
    (void)state;
    gp_health_report_t r = check(pool, 2000);
    char *text = NULL;
    assert_int_equal(gp_health_to_prometheus(&r, &text), GP_OK);
    char typed[64][96];
    int ntyped = 0, samples = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[96], type[32];
            assert_int_equal(sscanf(line + 7, "%95s %31s", name, type), 2);
            assert_true(strcmp(type, "gauge") == 0 || strcmp(type, "counter") == 0 || strcmp(type, "summary") == 0);
            if (strcmp(type, "counter") == 0)
                assert_non_null(strstr(name, "_total"));
            assert_true(ntyped < 64);
            snprintf(typed[ntyped++], sizeof typed[0], "%s", name);
            continue;
        }
        /* A sample: a valid metric name, optional {labels}, one value. */
        const char *p = line;
        assert_true(isalpha((unsigned char)*p) || *p == '_');
        while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
            p++;
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)(p - line), line);
        if (*p == '{') {
            const char *close = strchr(p, '}');
            assert_non_null(close);
            assert_non_null(strstr(p, "=\""));
            p = close + 1;
        }
        assert_int_equal(*p, ' ');
        char *end;
        strtod(p + 1, &end);
        assert_true(end > p + 1 && *end == 0);
        bool found = false;
        for (int i = 0; i < ntyped && !found; i++) {
            size_t n = strlen(typed[i]);
            found = strncmp(name, typed[i], n) == 0 &&
                    (name[n] == 0 || strcmp(name + n, "_sum") == 0 || strcmp(name + n, "_count") == 0);
        }
        if (!found)
            fprintf(stderr, "sample without TYPE: %s\n", line);
        assert_true(found);
        samples++;
    }
    assert_true(samples > 20);
    free(text);
    char out[16384];
    assert_int_equal(cli("metrics", out, sizeof out), 0);
    assert_non_null(strstr(out, "# TYPE growplate_pool_connections gauge"));
    assert_non_null(strstr(out, "growplate_cache_circuit_state{state=\"closed\"} 1"));
    assert_non_null(strstr(out, "# TYPE growplate_cache_hits_total counter"));
    assert_non_null(strstr(out, "growplate_pool_connections{state=\"idle\"}"));
}

static void test_redis_down_is_degraded(void **state)
{
    (void)state;
    assert_int_equal(gp_test_services("stop redis"), 0);
    gp_health_report_t r = check(pool, 2000);
    assert_int_equal(r.state, GP_HEALTH_DEGRADED);
    assert_int_equal(r.postgres.status, GP_OK);
    assert_int_not_equal(r.redis.status, GP_OK);
    assert_non_null(strstr(r.redis.message, "is the server running"));
    /* Checked again, through the cache: its circuit opens and says so. */
    check(pool, 2000);
    gp_health_report_t again = check(pool, 2000);
    assert_int_equal(again.state, GP_HEALTH_DEGRADED);
    assert_true(again.cache.circuit_opened >= 1);
    char out[8192];
    assert_int_equal(cli("health", out, sizeof out), 1);
    assert_int_equal(cli("health --json", out, sizeof out), 1);
    assert_json_shape(out, "degraded");
    assert_int_equal(gp_test_services("start redis"), 0);
    /* Back up within a bounded time (the circuit's cool-down is short). */
    gp_health_state_t s = GP_HEALTH_DEGRADED;
    for (int i = 0; i < 100 && s != GP_HEALTH_UP; i++) {
        s = check(pool, 2000).state;
        if (s != GP_HEALTH_UP) {
            struct timespec ts = {0, 20000000}; /* waiting for the breaker's cool-down to pass */
            nanosleep(&ts, NULL);
        }
    }
    assert_int_equal(s, GP_HEALTH_UP);
}

static void test_postgres_down_is_down(void **state)
{
    (void)state;
    assert_int_equal(gp_test_services("stop postgres"), 0);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    gp_health_report_t r = check(pool, 1500);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(secs < 1.5 + 0.5);
    assert_int_equal(r.state, GP_HEALTH_DOWN);
    assert_int_not_equal(r.postgres.status, GP_OK);
    assert_int_equal(r.redis.status, GP_OK);
    gp_health_report_t fresh = check(NULL, 1500); /* without a pool: fresh connection */
    assert_int_equal(fresh.state, GP_HEALTH_DOWN);
    char out[8192];
    assert_int_equal(cli("health --deadline 1500", out, sizeof out), 2);
    assert_int_equal(cli("health --json --deadline 1500", out, sizeof out), 2);
    assert_json_shape(out, "down");
    assert_int_equal(gp_test_services("start postgres"), 0);
}

/* A server that completes the TCP handshake (the kernel does, from the
 * backlog) but never answers: only the deadline can end the check. */
static void test_deadline_holds_when_server_hangs(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    int port = ntohs(sa.sin_port);

    gp_config_t hang;
    gp_config_init(&hang);
    char pg[128], rd[128];
    snprintf(pg, sizeof pg, "postgresql://u:Secr3t@127.0.0.1:%d/db", port);
    snprintf(rd, sizeof rd, "redis://:Secr3t@127.0.0.1:%d/0", port);
    hang.db.url = pg;
    hang.redis.url = rd;
    gp_health_options_t o = {.cfg = &hang, .deadline_ms = 700};
    gp_health_report_t r;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(gp_health_check(&o, &r), GP_OK);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    fprintf(stderr, "hanging servers: check took %.3f s (deadline 0.7 s)\n", secs);
    assert_true(secs < 0.7 + 0.3);
    assert_int_equal(r.state, GP_HEALTH_DOWN);
    assert_int_equal(r.postgres.status, GP_ERR_TIMEOUT);
    assert_int_not_equal(r.redis.status, GP_OK);
    assert_null(strstr(r.postgres.message, "Secr3t"));
    assert_null(strstr(r.redis.message, "Secr3t"));

    /* The CLI too exits within its deadline and a small bound: its pool
     * does not wait for a connect that is still hanging. */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "env -u DATABASE_MIGRATION_URL DATABASE_URL='%s' REDIS_URL='%s' '%s/growplate' health --deadline 700 "
             ">/dev/null 2>&1",
             pg, rd, getenv("GP_BUILD_DIR"));
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = system(cmd);
    clock_gettime(CLOCK_MONOTONIC, &b);
    secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    fprintf(stderr, "hanging servers: growplate health took %.3f s (deadline 0.7 s)\n", secs);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
    assert_true(secs < 0.7 + 0.6); /* the deadline, the close wait (0.1 s) and starting a process */
    close(fd);
}

/* A Redis that starts requiring a password is an authentication problem,
 * named as such: the health check's fresh connection and gp_probe_redis
 * (the cache's own reconnects go through the same setup). */
static void test_redis_noauth_is_auth(void **state)
{
    (void)state;
    const char *port = strrchr(getenv("REDIS_URL"), ':') + 1;
    char cmd[256];
    /* (Connections authenticated before stay so, the cache's included:
     * only new ones are refused.) */
    snprintf(cmd, sizeof cmd, "redis-cli -h 127.0.0.1 -p %.5s CONFIG SET requirepass gp-noauth-test >/dev/null", port);
    assert_int_equal(system(cmd), 0);
    gp_health_report_t r = check(NULL, 2000);
    snprintf(cmd, sizeof cmd,
             "redis-cli -h 127.0.0.1 -p %.5s -a gp-noauth-test --no-auth-warning CONFIG SET requirepass '' >/dev/null",
             port);
    assert_int_equal(system(cmd), 0);
    if (r.redis.status != GP_ERR_AUTH)
        fprintf(stderr, "redis: %s: %s\n", gp_strerror(r.redis.status), r.redis.message);
    assert_int_equal(r.redis.status, GP_ERR_AUTH);
    assert_non_null(strstr(r.redis.message, "REDIS_PASSWORD"));
    assert_null(strstr(r.redis.message, "is the server running"));
    assert_null(strstr(r.redis.message, "gp-noauth-test"));
    gp_probe_t p;
    snprintf(cmd, sizeof cmd, "redis-cli -h 127.0.0.1 -p %.5s CONFIG SET requirepass gp-noauth-test >/dev/null", port);
    assert_int_equal(system(cmd), 0);
    gp_status_t st = gp_probe_redis(&cfg, &p);
    snprintf(cmd, sizeof cmd,
             "redis-cli -h 127.0.0.1 -p %.5s -a gp-noauth-test --no-auth-warning CONFIG SET requirepass '' >/dev/null",
             port);
    assert_int_equal(system(cmd), 0);
    if (st != GP_ERR_AUTH)
        fprintf(stderr, "probe: %s: %s\n", gp_strerror(st), p.message);
    assert_int_equal(st, GP_ERR_AUTH);
    assert_non_null(strstr(p.message, "REDIS_PASSWORD"));
    /* And serves again once the password is gone. */
    r = check(NULL, 2000);
    assert_int_equal(r.redis.status, GP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both_up),
        cmocka_unit_test(test_exposition_parses),
        cmocka_unit_test(test_deadline_holds_when_server_hangs),
        cmocka_unit_test(test_redis_down_is_degraded),
        cmocka_unit_test(test_redis_noauth_is_auth),
        cmocka_unit_test(test_postgres_down_is_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
