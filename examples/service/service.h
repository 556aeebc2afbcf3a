/* service.h — what the parts of the example service share: its settings,
 * the one pool, the one cache, the tenant map and its own metrics. */
#ifndef SERVICE_H
#define SERVICE_H

#include <stddef.h>

#include <growplate/growplate.h>

#include "stats.h"
#include "tenants.h"

/* Settings beyond the library's (SERVICE_* variables; README.md here). */
typedef struct service_settings {
    int port;                 /* SERVICE_PORT or argv[1]; 0 = any free port (printed) */
    size_t max_body;          /* SERVICE_MAX_BODY bytes; larger bodies are 413 */
    int max_connections;      /* SERVICE_MAX_CONNECTIONS: HTTP connections (one thread each) */
    int idle_timeout_s;       /* SERVICE_IDLE_TIMEOUT: an idle keep-alive connection is closed after it */
    int menu_ttl_ms;          /* SERVICE_MENU_TTL: a cached menu's TTL */
    int orders_ttl_ms;        /* SERVICE_ORDERS_TTL: a cached list of recent orders' TTL */
    int tenant_ttl_ms;        /* SERVICE_TENANT_TTL: a resolved slug */
    int tenant_negative_ttl_ms; /* SERVICE_TENANT_NEGATIVE_TTL: an unknown slug */
    size_t tenant_map_size;   /* SERVICE_TENANT_MAP_SIZE: slugs remembered */
    int health_deadline_ms;   /* SERVICE_HEALTH_DEADLINE: of /healthz */
    int access_log;           /* SERVICE_ACCESS_LOG=1: one line per request on stderr */
} service_settings_t;

typedef struct service {
    service_settings_t set;
    gp_config_t cfg;          /* kept: gp_health_check() reads it */
    gp_pool_t *pool;
    gp_cache_t *cache;
    tenant_map_t *tenants;
    stats_t *stats;
} service_t;

/* One line on stderr, "service <level>: ...". Callers never pass a secret:
 * library messages are redacted, and request data is never logged raw. */
__attribute__((format(printf, 2, 3))) void service_log(const char *level, const char *fmt, ...);

#endif
