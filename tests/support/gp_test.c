/* gp_test.c — shared helpers for the cmocka tests. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "gp_test.h"

void gp_test_require_env(void)
{
    if (!getenv("DATABASE_URL") || !getenv("REDIS_URL")) {
        fprintf(stderr, "this test needs the private servers: run\n"
                        "  scripts/services start && eval \"$(scripts/services env)\"\n"
                        "first (make check does both)\n");
        fail();
    }
}

void gp_test_config(gp_config_t *cfg)
{
    gp_test_require_env();
    char err[GP_ERRBUF_SIZE];
    gp_config_init(cfg);
    gp_status_t st = gp_config_from_env(cfg, err, sizeof err);
    if (st != GP_OK)
        fprintf(stderr, "configuration: %s\n", err);
    assert_int_equal(st, GP_OK);
}

int gp_test_services(const char *args)
{
    const char *src = getenv("GP_SOURCE_DIR");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/scripts/services' %s >/dev/null", src ? src : ".", args);
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[1 << 16];

static void capture(void *ud, gp_log_level_t level, const char *component, const char *message)
{
    (void)ud;
    pthread_mutex_lock(&log_mu);
    size_t n = strlen(log_buf);
    snprintf(log_buf + n, sizeof log_buf - n, "[%s] %s: %s\n", component, gp_log_level_name(level), message);
    pthread_mutex_unlock(&log_mu);
}

void gp_test_capture_logs(gp_log_level_t min_level) { gp_log_set_handler(capture, NULL, min_level); }

bool gp_test_logs_contain(const char *needle)
{
    pthread_mutex_lock(&log_mu);
    bool found = strstr(log_buf, needle) != NULL;
    pthread_mutex_unlock(&log_mu);
    return found;
}

void gp_test_clear_logs(void)
{
    pthread_mutex_lock(&log_mu);
    log_buf[0] = 0;
    pthread_mutex_unlock(&log_mu);
}

void gp_test_pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int gp_test_key_services(const char *key, const char *args)
{
    char cmd[512];
    const char *src = getenv("GP_SOURCE_DIR");
    snprintf(cmd, sizeof cmd, "GP_SERVICES_KEY=%s '%s/scripts/services' %s", key, src ? src : ".", args);
    return system(cmd);
}

bool gp_test_key_env(const char *key, const char *name, char *out, size_t len)
{
    char cmd[512];
    const char *src = getenv("GP_SOURCE_DIR");
    snprintf(cmd, sizeof cmd, "GP_SERVICES_KEY=%s '%s/scripts/services' env | sed -n \"s/^export %s='\\(.*\\)'$/\\1/p\"",
             key, src ? src : ".", name);
    FILE *f = popen(cmd, "r");
    bool ok = f && fgets(out, (int)len, f);
    if (f)
        pclose(f);
    if (ok)
        out[strcspn(out, "\n")] = 0;
    return ok && out[0];
}

gp_pool_t *gp_test_pool(const gp_config_t *cfg)
{
    gp_pool_t *p = NULL;
    gp_error_t e;
    gp_status_t st = gp_pool_create(cfg, &p, &e);
    if (st != GP_OK)
        fprintf(stderr, "pool: %s\n", e.message);
    assert_int_equal(st, GP_OK);
    return p;
}

int64_t gp_test_int(const gp_result_t *r, int row, int col)
{
    int64_t v = -1;
    if (gp_get_int64(r, row, col, &v) != GP_OK) {
        int32_t w = -1;
        assert_int_equal(gp_get_int32(r, row, col, &w), GP_OK);
        v = w;
    }
    return v;
}
