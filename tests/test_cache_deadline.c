/* test_cache_deadline.c — REDIS_TIMEOUT is a hard bound: with Redis frozen
 * (SIGSTOP; a private Redis of this test's own, started by
 * scripts/services under its own instance key, so no other test is
 * disturbed), no call of 8 threads returns later than its budget plus a
 * small scheduling slack, whether it leads a batch, waits in another's, or
 * waits for a connection. Prints the largest overshoot seen.
 * ctest-labels: concurrency
 * ctest-timeout: 120 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "gp_test.h"
#include "growplate/cache.h"
#include "internal.h"

#define BUDGET_MS 100
#define SLACK_MS 25
#define THREADS 8
#define FROZEN_NS (1500 * 1000000LL)

static char key[64], url[256], pidfile[256];
static gp_cache_t *cache;
static const char tenant[] = "00000000-0000-4000-8000-0000000000c1";

static int services(const char *args)
{
    char cmd[512];
    const char *src = getenv("GP_SOURCE_DIR");
    snprintf(cmd, sizeof cmd, "GP_SERVICES_KEY=%s '%s/scripts/services' %s", key, src ? src : ".", args);
    return system(cmd);
}

static int setup(void **state)
{
    (void)state;
    snprintf(key, sizeof key, "cache-deadline-%d", (int)getpid());
    if (services("start redis >/dev/null") != 0)
        return -1;
    char cmd[512];
    const char *src = getenv("GP_SOURCE_DIR");
    snprintf(cmd, sizeof cmd, "GP_SERVICES_KEY=%s '%s/scripts/services' env | sed -n \"s/^export REDIS_URL='\\(.*\\)'$/\\1/p\"",
             key, src ? src : ".");
    FILE *f = popen(cmd, "r");
    if (!f || !fgets(url, sizeof url, f))
        return -1;
    pclose(f);
    url[strcspn(url, "\n")] = 0;
    snprintf(cmd, sizeof cmd, "GP_SERVICES_KEY=%s '%s/scripts/services' env | sed -n \"s/^export GP_PG_ADMIN_CONNINFO='host=\\([^ ]*\\)\\/pg\\/sock .*/\\1/p\"",
             key, src ? src : ".");
    f = popen(cmd, "r");
    char base[256] = "";
    if (!f || !fgets(base, sizeof base, f))
        return -1;
    pclose(f);
    base[strcspn(base, "\n")] = 0;
    snprintf(pidfile, sizeof pidfile, "%s/redis/redis.pid", base);
    gp_config_t cfg;
    gp_test_config(&cfg);
    cfg.redis.url = url;
    cfg.redis.host = NULL;
    cfg.redis.port = 0;
    cfg.redis.password = NULL;
    cfg.redis.timeout_ms = BUDGET_MS;
    cfg.redis.connect_timeout_ms = BUDGET_MS;
    cfg.redis.pool_size = 2; /* fewer connections than threads: some calls wait for one */
    gp_error_t e;
    gp_cache_options_t o = {.breaker_threshold = 1000000}; /* keep calling the frozen server */
    gp_status_t st = gp_cache_create(&cfg, &o, &cache, &e);
    gp_config_release(&cfg);
    if (st != GP_OK) {
        fprintf(stderr, "cache: %s\n", e.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_cache_close(cache);
    services("clean >/dev/null 2>&1");
    return 0;
}

static int redis_pid(void)
{
    FILE *f = fopen(pidfile, "r");
    assert_non_null(f);
    int pid = 0;
    assert_int_equal(fscanf(f, "%d", &pid), 1);
    fclose(f);
    return pid;
}

typedef struct worker {
    int64_t stop_ns;
    int64_t worst_ms_x10;
    int calls, failed;
} worker_t;

static void *work(void *arg)
{
    worker_t *w = arg;
    char k[32];
    snprintf(k, sizeof k, "k%p", (void *)w);
    while (gp__now_ns() < w->stop_ns) {
        int64_t t0 = gp__now_ns();
        char *v = NULL;
        size_t n = 0;
        gp_error_t e;
        gp_status_t st = (w->calls % 2) ? gp_cache_get(cache, tenant, k, &v, &n, &e)
                                         : gp_cache_set(cache, tenant, k, "value", 5, 60000, &e);
        int64_t took = (gp__now_ns() - t0) / 100000; /* tenths of ms */
        free(v);
        if (took > w->worst_ms_x10)
            w->worst_ms_x10 = took;
        w->calls++;
        w->failed += st != GP_OK && st != GP_ERR_MISS;
    }
    return NULL;
}

static void test_frozen_redis_bound(void **state)
{
    (void)state;
    /* warm: every connection open */
    gp_error_t e;
    for (int i = 0; i < 4; i++)
        assert_int_equal(gp_cache_set(cache, tenant, "warm", "x", 1, 60000, &e), GP_OK);
    int pid = redis_pid();
    assert_int_equal(kill(pid, SIGSTOP), 0);
    worker_t w[THREADS] = {0};
    pthread_t t[THREADS];
    int64_t stop = gp__now_ns() + FROZEN_NS;
    for (int i = 0; i < THREADS; i++) {
        w[i].stop_ns = stop;
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    int thawed = kill(pid, SIGCONT);
    int64_t worst = 0;
    int calls = 0, failed = 0;
    for (int i = 0; i < THREADS; i++) {
        worst = w[i].worst_ms_x10 > worst ? w[i].worst_ms_x10 : worst;
        calls += w[i].calls;
        failed += w[i].failed;
    }
    fprintf(stderr, "%d calls against a frozen Redis, %d failed; the slowest returned after %.1f ms "
            "(budget %d ms: overshoot %.1f ms)\n", calls, failed, worst / 10.0, BUDGET_MS,
            worst / 10.0 - BUDGET_MS);
    assert_int_equal(thawed, 0);
    assert_true(calls > THREADS);
    assert_int_equal(failed, calls);
    assert_true(worst <= (BUDGET_MS + SLACK_MS) * 10);
    /* thawed: calls work again */
    int64_t until = gp__now_ns() + 5000 * 1000000LL;
    while (gp_cache_set(cache, tenant, "after", "x", 1, 60000, &e) != GP_OK)
        assert_true(gp__now_ns() < until);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frozen_redis_bound),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
