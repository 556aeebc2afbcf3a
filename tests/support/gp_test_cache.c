/* gp_test_cache.c — helpers for the cache tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gp_test_cache.h"

void gp_test_tenant(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    FILE *f = fopen("/dev/urandom", "rb");
    unsigned char b[16];
    assert_non_null(f);
    assert_int_equal(fread(b, 1, sizeof b, f), sizeof b);
    fclose(f);
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = 0;
}

gp_cache_t *gp_test_cache(gp_config_t *cfg, const gp_cache_options_t *opts, int timeout_ms, int pool_size)
{
    gp_test_config(cfg);
    if (timeout_ms > 0)
        cfg->redis.timeout_ms = timeout_ms;
    if (pool_size > 0)
        cfg->redis.pool_size = pool_size;
    gp_cache_t *c = NULL;
    gp_error_t err;
    gp_status_t st = gp_cache_create(cfg, opts, &c, &err);
    if (st != GP_OK)
        fprintf(stderr, "gp_cache_create: %s\n", err.message);
    assert_int_equal(st, GP_OK);
    assert_non_null(c);
    return c;
}

redisContext *gp_test_redis(void)
{
    gp_test_require_env();
    const char *url = getenv("REDIS_URL");
    const char *p = strrchr(url, ':');
    assert_non_null(p);
    int port = atoi(p + 1);
    struct timeval tv = {2, 0};
    redisContext *r = redisConnectWithTimeout("127.0.0.1", port, tv);
    assert_non_null(r);
    if (r->err)
        fprintf(stderr, "raw redis: %s\n", r->errstr);
    assert_int_equal(r->err, 0);
    return r;
}

redisReply *gp_test_redis_cmd(redisContext *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(r, fmt, ap);
    va_end(ap);
    assert_non_null(rep);
    return rep;
}

void gp_test_full_key(redisContext *r, const char *tenant, const char *key, char *out, size_t outlen)
{
    redisReply *g = gp_test_redis_cmd(r, "GET growplate:t:{%s}:gen", tenant);
    assert_int_equal(g->type, REDIS_REPLY_STRING);
    snprintf(out, outlen, "growplate:t:{%s}:%s:%s", tenant, g->str, key);
    freeReplyObject(g);
}

gp_cache_metrics_t gp_test_cache_metrics(gp_cache_t *c)
{
    gp_cache_metrics_t m;
    assert_int_equal(gp_cache_metrics(c, &m), GP_OK);
    return m;
}

int64_t gp_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

gp_status_t gp_test_validate(const gp_config_t *cfg, char *msg, size_t len)
{
    msg[0] = 0;
    return gp_config_validate(cfg, msg, len);
}

void gp_test_poll_pause(void)
{
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
}
