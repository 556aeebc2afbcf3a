/* tenants.h — which tenant a request is for: the slug syntax, and slug ->
 * tenant id through the schema's tenant_id_for_slug(), remembered in a
 * small, bounded, thread-safe in-process map with a TTL (unknown slugs for
 * a shorter one: negative caching).
 *
 * Why in process and not in Redis: the answer is needed before every
 * tenant call, is tiny, and changes rarely (a tenant is created, suspended
 * or closed); a local map costs no round trip, and its TTL bounds how long
 * a suspended tenant is still served. */
#ifndef SERVICE_TENANTS_H
#define SERVICE_TENANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <growplate/growplate.h>

/* The longest slug, without the NUL (the schema's rule, data.h). */
#define TENANT_SLUG_MAX 63

/* True when s[0..len) is a tenant slug: [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?.
 * Only such text is ever looked up, cached or echoed. */
bool tenant_slug_valid(const char *s, size_t len);

typedef struct tenant_map tenant_map_t;

/* A map of at most `capacity` slugs (rounded up to a power of two, at least
 * 4), positive answers kept ttl_ms, unknown slugs negative_ttl_ms. NULL on
 * out of memory. */
tenant_map_t *tenant_map_new(size_t capacity, int ttl_ms, int negative_ttl_ms);

/* NULL accepted. No call may be running. */
void tenant_map_free(tenant_map_t *m);

/* Resolve a valid slug: GP_OK with the tenant id in id[37], GP_ERR_NOT_FOUND
 * when there is no active tenant of that slug (remembered for the negative
 * TTL), or the database's error (GP_ERR_TIMEOUT, GP_ERR_CONNECT... in err;
 * never remembered, so the next request asks again). An answer is never
 * used past its TTL; in its last tenth, one lookup refreshes it while the
 * others go on using it (a failed refresh keeps it until its TTL). Safe
 * from any thread; the database is asked without any lock held. */
gp_status_t tenant_resolve(tenant_map_t *m, gp_pool_t *pool, const char *slug, char id[37], gp_error_t *err);

typedef struct tenant_map_stats {
    uint64_t hits;          /* answered from the map: a tenant */
    uint64_t negative_hits; /* answered from the map: no such tenant */
    uint64_t misses;        /* asked the database */
    uint64_t errors;        /* ... and it failed */
    uint64_t evictions;     /* live entries replaced to make room */
    size_t entries;         /* live entries now */
    size_t capacity;
} tenant_map_stats_t;

void tenant_map_stats(tenant_map_t *m, tenant_map_stats_t *out);

#endif
