/* gp_test_cache.h — helpers for the cache tests: fresh tenant ids, a cache
 * on the private Redis, and a raw hiredis connection that plays "someone
 * else" writing to the same server. */
#ifndef GP_TEST_CACHE_H
#define GP_TEST_CACHE_H

#include <hiredis/hiredis.h>

#include "gp_test.h"

/* A random, valid tenant id (lowercase UUID v4 form) in out[37]. */
void gp_test_tenant(char out[37]);

/* A cache on the private Redis with these options (NULL = defaults) and,
 * when > 0, this command timeout and pool size. Fails the test on error.
 * *cfg is filled and must be released by the caller. */
gp_cache_t *gp_test_cache(gp_config_t *cfg, const gp_cache_options_t *opts, int timeout_ms, int pool_size);

/* A snapshot of the cache's metrics; fails the test when it cannot be taken. */
gp_cache_metrics_t gp_test_cache_metrics(gp_cache_t *c);

/* A raw connection to the private Redis (REDIS_URL), or fail. */
redisContext *gp_test_redis(void);

/* Run a command on a raw connection, return its reply (caller frees), fail on NULL. */
redisReply *gp_test_redis_cmd(redisContext *r, const char *fmt, ...);

/* The full Redis key of (tenant, key) under the tenant's current generation,
 * as written by the cache with the default prefix (read through `r`). */
void gp_test_full_key(redisContext *r, const char *tenant, const char *key, char *out, size_t outlen);

/* The monotonic clock in ms (for deadlines and reported durations). */
int64_t gp_test_now_ms(void);

/* gp_config_validate into msg, which it appends to: cleared first. */
gp_status_t gp_test_validate(const gp_config_t *cfg, char *msg, size_t len);

/* Sleep briefly between polls of an external condition (a server coming up). */
void gp_test_poll_pause(void);

#endif
