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

/* The exposition format's rules, as a scraper applies them: every line is
 * a comment (# HELP / # TYPE name type) or a sample `name{labels} value`;
 * each family is typed once, before its samples; counters end in _total;
 * a histogram's samples are NAME_bucket{...,le="..."} (non-decreasing in
 * le, the last le="+Inf" equal to NAME_count), NAME_sum and NAME_count.
 * Returns the number of samples. */
typedef struct hseries {
    char key[256];      /* family + labels without le */
    double last;        /* the last bucket's count */
    double inf;         /* the +Inf bucket, -1 until seen */
    double count;       /* NAME_count, -1 until seen */
} hseries_t;

static int check_exposition(const char *input)
{
    char *text = strdup(input);
    assert_non_null(text);
    enum { MAXT = 160, MAXH = 1024 };
    static char typed[MAXT][96], types[MAXT][16];
    static hseries_t hs[MAXH];
    int ntyped = 0, nh = 0, samples = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[96], type[32];
            assert_int_equal(sscanf(line + 7, "%95s %31s", name, type), 2);
            assert_true(strcmp(type, "gauge") == 0 || strcmp(type, "counter") == 0 ||
                        strcmp(type, "histogram") == 0);
            if (strcmp(type, "counter") == 0)
                assert_non_null(strstr(name, "_total"));
            for (int i = 0; i < ntyped; i++)
                if (strcmp(typed[i], name) == 0) {
                    fprintf(stderr, "family typed twice: %s\n", name);
                    fail();
                }
            assert_true(ntyped < MAXT);
            snprintf(typed[ntyped], sizeof typed[0], "%s", name);
            snprintf(types[ntyped++], sizeof types[0], "%s", type);
            continue;
        }
        const char *p = line;
        assert_true(isalpha((unsigned char)*p) || *p == '_');
        while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
            p++;
        char name[96], labels[256] = "", le[32] = "";
        snprintf(name, sizeof name, "%.*s", (int)(p - line), line);
        if (*p == '{') {
            /* The closing brace outside any quoted (escaped) label value. */
            const char *close = NULL;
            bool quoted = false;
            for (const char *q = p + 1; *q && !close; q++) {
                if (quoted && *q == '\\' && q[1])
                    q++;
                else if (*q == '"')
                    quoted = !quoted;
                else if (!quoted && *q == '}')
                    close = q;
            }
            assert_non_null(close);
            assert_non_null(strstr(p, "=\""));
            const char *lp = strstr(p, "le=\"");
            if (lp && lp < close) {
                const char *q = strchr(lp + 4, '"');
                snprintf(le, sizeof le, "%.*s", (int)(q - lp - 4), lp + 4);
                int n = (int)(lp - p - 1); /* the labels before le, without their comma */
                snprintf(labels, sizeof labels, "%.*s", n > 0 && p[n] == ',' ? n - 1 : n, p + 1);
            } else {
                snprintf(labels, sizeof labels, "%.*s", (int)(close - p - 1), p + 1);
            }
            p = close + 1;
        }
        assert_int_equal(*p, ' ');
        char *end;
        double v = strtod(p + 1, &end);
        assert_true(end > p + 1 && *end == 0);
        int fam = -1;
        const char *suffix = "";
        for (int i = 0; i < ntyped && fam < 0; i++) {
            size_t n = strlen(typed[i]);
            if (strncmp(name, typed[i], n) != 0)
                continue;
            bool hist = strcmp(types[i], "histogram") == 0;
            if (name[n] == 0 && !hist)
                fam = i;
            else if (hist && (strcmp(name + n, "_bucket") == 0 || strcmp(name + n, "_sum") == 0 ||
                              strcmp(name + n, "_count") == 0))
                fam = i, suffix = name + n;
        }
        if (fam < 0)
            fprintf(stderr, "sample without TYPE: %s\n", line);
        assert_true(fam >= 0);
        if (*suffix) {
            char key[256];
            snprintf(key, sizeof key, "%s{%s}", typed[fam], labels);
            hseries_t *h = NULL;
            for (int i = 0; i < nh && !h; i++)
                if (strcmp(hs[i].key, key) == 0)
                    h = &hs[i];
            if (!h) {
                assert_true(nh < MAXH);
                h = &hs[nh++];
                snprintf(h->key, sizeof h->key, "%s", key);
                h->last = 0, h->inf = -1, h->count = -1;
            }
            if (strcmp(suffix, "_bucket") == 0) {
                assert_true(le[0] != 0);
                assert_true(h->inf < 0);        /* nothing after +Inf */
                assert_true(v >= h->last);      /* cumulative */
                h->last = v;
                if (strcmp(le, "+Inf") == 0)
                    h->inf = v;
            } else if (strcmp(suffix, "_count") == 0) {
                h->count = v;
            }
        }
        samples++;
    }
    for (int i = 0; i < nh; i++) {
        if (hs[i].inf < 0 || hs[i].count != hs[i].inf)
            fprintf(stderr, "histogram %s: +Inf %g, count %g\n", hs[i].key, hs[i].inf, hs[i].count);
        assert_true(hs[i].inf >= 0 && hs[i].count == hs[i].inf);
    }
    free(text);
    return samples;
}

static void test_exposition_parses(void **state)
{
    (void)state;
    gp_health_report_t r = check(pool, 2000);
    char *text = NULL;
    assert_int_equal(gp_health_to_prometheus(&r, &text), GP_OK);
    assert_true(check_exposition(text) > 20);
    assert_non_null(strstr(text, "growplate_build_info{version=\"" GP_VERSION_STRING "\""));
    assert_non_null(strstr(text, "growplate_server_info{server=\"redis\",version=\""));
    assert_non_null(strstr(text, "growplate_pool_acquire_wait_seconds_bucket{pool=\"default\",le=\"1.024e-06\"}"));
    assert_non_null(strstr(text, "growplate_pool_acquire_wait_seconds_bucket{pool=\"default\",le=\"+Inf\"}"));
    free(text);
    static char out[131072];
    assert_int_equal(cli("metrics", out, sizeof out), 0);
    assert_true(strlen(out) < sizeof out - 1); /* all of it */
    assert_non_null(strstr(out, "# TYPE growplate_pool_connections gauge"));
    assert_non_null(strstr(out, "growplate_cache_circuit_state{cache=\"default\",state=\"closed\"} 1"));
    assert_non_null(strstr(out, "# TYPE growplate_cache_hits_total counter"));
    assert_non_null(strstr(out, "growplate_pool_connections{pool=\"default\",state=\"idle\"}"));
    check_exposition(out);
}

/* A value in the text: the sample line that starts with `series `. */
static double sample(const char *text, const char *series)
{
    char needle[256];
    snprintf(needle, sizeof needle, "\n%s ", series);
    const char *p = strstr(text, needle);
    if (!p) {
        fprintf(stderr, "no sample %s\n", series);
        fail();
    }
    return strtod(p + strlen(needle), NULL);
}

/* gp_metrics_render: two pools told apart by their names, the query
 * layer's statements, rows, failures by class and call durations. */
static void test_metrics_render(void **state)
{
    (void)state;
    gp_pool_t *replica;
    assert_int_equal(gp_pool_create(&cfg, &replica, NULL), GP_OK);
    gp_metrics_source_t src[] = {{"primary", pool, cache}, {"replica", replica, NULL}};
    char *before = NULL;
    assert_int_equal(gp_metrics_render(src, 2, &before, NULL), GP_OK);
    check_exposition(before);
    double stmts0 = sample(before, "growplate_query_statements_total{pool=\"primary\"}");
    double rows0 = sample(before, "growplate_query_rows_total{pool=\"primary\"}");
    double syntax0 = sample(before, "growplate_query_errors_total{pool=\"primary\",class=\"syntax_or_undefined\"}");
    double calls0 = sample(before, "growplate_query_duration_seconds_count{pool=\"primary\"}");
    free(before);

    /* Three rows, then a failure, then a pipeline of two statements. */
    gp_result_t *r = NULL;
    assert_int_equal(gp_pool_query(pool, "SELECT generate_series(1, 3)", 0, NULL, &r, NULL), GP_OK);
    gp_result_free(r);
    gp_error_t err;
    assert_int_equal(gp_pool_exec(pool, "SELEC 1", 0, NULL, NULL, &err), GP_ERR_SERVER);
    gp_pipeline_t *p = gp_pipeline_new();
    assert_non_null(p);
    assert_int_equal(gp_pipeline_add(p, "SELECT 1", 0, NULL, NULL), GP_OK);
    assert_int_equal(gp_pipeline_add(p, "SELECT 2", 0, NULL, NULL), GP_OK);
    assert_int_equal(gp_pool_pipeline_run(pool, p, NULL), GP_OK);
    gp_pipeline_free(p);

    /* A label (a fairness key) that tries to forge series: escaped. */
    gp_conn_t *evil = NULL;
    assert_int_equal(gp_pool_acquire(pool, "x\"} 1\ngrowplate_forged{a=\"b\\", -1, &evil, NULL), GP_OK);
    gp_pool_release(evil);

    char *text = NULL;
    assert_int_equal(gp_metrics_render(src, 2, &text, NULL), GP_OK);
    check_exposition(text);
    assert_null(strstr(text, "\ngrowplate_forged"));
    assert_non_null(strstr(text, "key=\"x\\\"} 1\\ngrowplate_forged{a=\\\"b\\\\\""));
    assert_true(sample(text, "growplate_query_statements_total{pool=\"primary\"}") == stmts0 + 4);
    assert_true(sample(text, "growplate_query_rows_total{pool=\"primary\"}") == rows0 + 5);
    assert_true(sample(text, "growplate_query_errors_total{pool=\"primary\",class=\"syntax_or_undefined\"}") == syntax0 + 1);
    assert_true(sample(text, "growplate_query_duration_seconds_count{pool=\"primary\"}") == calls0 + 3);
    assert_true(sample(text, "growplate_query_duration_seconds_bucket{pool=\"primary\",le=\"+Inf\"}") == calls0 + 3);
    assert_true(sample(text, "growplate_query_statements_total{pool=\"replica\"}") == 0);
    /* Per fairness key (the label here: system work has no tenant). */
    assert_true(sample(text, "growplate_pool_key_acquires_total{pool=\"primary\",key=\"gp_pool_query\"}") >= 2);
    assert_true(sample(text, "growplate_pool_key_connections{pool=\"primary\",key=\"gp_pool_pipeline\",state=\"held\"}") == 0);
    assert_non_null(strstr(text, "growplate_pool_key_hold_seconds_bucket{pool=\"primary\",other=\"true\",key=\"\",le=\"+Inf\"}"));
    assert_non_null(strstr(text, "growplate_pool_throttled_total{pool=\"primary\"} 0"));
    assert_non_null(strstr(text, "growplate_cache_hits_total{cache=\"primary\"}"));
    assert_null(strstr(text, "cache=\"replica\""));
    assert_non_null(strstr(text, "growplate_build_info{version=\""));
    free(text);

    /* Bad names are refused, naming the source. */
    gp_metrics_source_t bad[] = {{"primary", pool, NULL}, {"primary", replica, NULL}};
    assert_int_equal(gp_metrics_render(bad, 2, &text, &err), GP_ERR_INVALID);
    assert_null(text);
    assert_non_null(strstr(err.message, "both named 'primary'"));
    gp_metrics_source_t quote[] = {{"a\"b", pool, NULL}};
    assert_int_equal(gp_metrics_render(quote, 1, &text, &err), GP_ERR_INVALID);
    assert_non_null(strstr(err.message, "metric source 0"));
    gp_metrics_source_t unnamed[] = {{NULL, pool, NULL}};
    assert_int_equal(gp_metrics_render(unnamed, 1, &text, &err), GP_ERR_INVALID);
    /* No sources: just the build info. */
    assert_int_equal(gp_metrics_render(NULL, 0, &text, NULL), GP_OK);
    assert_true(check_exposition(text) == 1);
    free(text);
    gp_pool_close(replica, 1000);
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
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_deadline_holds_when_server_hangs),
        cmocka_unit_test(test_redis_down_is_degraded),
        cmocka_unit_test(test_redis_noauth_is_auth),
        cmocka_unit_test(test_postgres_down_is_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
