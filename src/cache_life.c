/* cache_life.c — the cache object's life cycle: gp_cache_create and
 * gp_cache_close, the top of the cache's layers (net <- conn <- route <-
 * keys <- cache <- load): it sets up and tears down each of them, and
 * nothing below calls up into it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"

static int opt_or(int v, int def) { return v ? v : def; }

gp_status_t gp_cache_create(const gp_config_t *cfg, const gp_cache_options_t *opts, gp_cache_t **out,
                            gp_error_t *err)
{
    gp_error_clear(err);
    if (!out)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "gp_cache_create: out is NULL");
    *out = NULL;
    if (!cfg)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT, "gp_cache_create: cfg is NULL");
    gp_cache_options_t o = opts ? *opts : (gp_cache_options_t){0};
    if (o.default_ttl_ms < 0 || o.breaker_threshold < 0 || o.breaker_cooldown_ms < 0 ||
        o.breaker_max_cooldown_ms < 0 || o.generation_ttl_ms < -1 || o.load_wait_ms < 0)
        return gp__cache_fail(err, GP_ERR_INVALID, GP_ECLASS_CLIENT,
                              "gp_cache_options_t: negative value (only generation_ttl_ms may be -1)");
    o.default_ttl_ms = opt_or(o.default_ttl_ms, 300000);
    o.breaker_threshold = opt_or(o.breaker_threshold, 5);
    o.breaker_cooldown_ms = opt_or(o.breaker_cooldown_ms, 50);
    o.breaker_max_cooldown_ms = opt_or(o.breaker_max_cooldown_ms, 500);
    if (o.breaker_max_cooldown_ms < o.breaker_cooldown_ms)
        o.breaker_max_cooldown_ms = o.breaker_cooldown_ms;
    o.generation_ttl_ms = opt_or(o.generation_ttl_ms, 1000);
    o.load_wait_ms = opt_or(o.load_wait_ms, 5000);

    char msg[GP_ERRBUF_SIZE] = "";
    if (gp_config_validate(cfg, msg, sizeof msg) != GP_OK)
        return gp__cache_fail(err, GP_ERR_CONFIG, GP_ECLASS_CLIENT, "%s", msg);
    gp_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return gp__cache_fail(err, GP_ERR_NOMEM, GP_ECLASS_CLIENT, "out of memory creating the cache");
    if (gp__redis_target(&cfg->redis, &c->target, msg, sizeof msg) != GP_OK) {
        free(c);
        return gp__cache_fail(err, GP_ERR_CONFIG, GP_ECLASS_CLIENT, "%s", msg);
    }
    gp_config_redis_display(&cfg->redis, c->display, sizeof c->display);
    snprintf(c->prefix, sizeof c->prefix, "%s", cfg->redis.key_prefix ? cfg->redis.key_prefix : "growplate:");
    c->prefix_len = strlen(c->prefix);
    c->timeout_ms = cfg->redis.timeout_ms > 0 ? cfg->redis.timeout_ms : 1000;
    c->connect_timeout_ms = cfg->redis.connect_timeout_ms > 0 ? cfg->redis.connect_timeout_ms : 1000;
    c->pool_size = cfg->redis.pool_size > 0 ? cfg->redis.pool_size : 4;
    c->opt = o;
    gp_status_t st = gp__topo_init(&c->topo, &c->target, c->display, c->connect_timeout_ms, err);
    if (st == GP_OK && (st = gp__cache_pool_init(c, err)) != GP_OK)
        gp__topo_free(&c->topo);
    if (st == GP_OK && (st = gp__cluster_init(c, err)) != GP_OK) {
        gp__cache_pool_free(c);
        gp__topo_free(&c->topo);
    }
    if (st != GP_OK) {
        memset(&c->target, 0, sizeof c->target);
        free(c);
        return st;
    }
    pthread_mutex_init(&c->flight_mu, NULL);
    for (int i = 0; i < GEN_STRIPES; i++)
        pthread_mutex_init(&c->gen_mu[i], NULL);
    *out = c;
    return GP_OK;
}

void gp_cache_close(gp_cache_t *c)
{
    if (!c)
        return;
    gp__topo_free(&c->topo); /* first: the watcher thread reads the target */
    gp__cluster_free(c);
    gp__cache_pool_free(c);
    gp__cache_flights_free(c);
    pthread_mutex_destroy(&c->flight_mu);
    for (int i = 0; i < GEN_STRIPES; i++)
        pthread_mutex_destroy(&c->gen_mu[i]);
    memset(&c->target, 0, sizeof c->target);
    free(c);
}
