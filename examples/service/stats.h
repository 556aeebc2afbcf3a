/* stats.h — the service's own metrics (requests by route and status,
 * latency per route, the tenant map), rendered in the Prometheus text
 * format after the library's pool and cache metrics (gp_metrics_render). */
#ifndef SERVICE_STATS_H
#define SERVICE_STATS_H

#include <stdint.h>

#include "tenants.h"

/* The routes, as they appear in the `route` label. */
typedef enum route {
    ROUTE_MENU = 0,     /* GET /menu */
    ROUTE_ORDER_CREATE, /* POST /orders */
    ROUTE_ORDER_LIST,   /* GET /orders */
    ROUTE_ORDER_GET,    /* GET /orders/{id} */
    ROUTE_HEALTHZ,      /* GET /healthz */
    ROUTE_METRICS,      /* GET /metrics */
    ROUTE_OTHER,        /* anything else (404, 405) */
    ROUTE_COUNT_
} route_t;

typedef struct stats stats_t;

/* NULL on out of memory. */
stats_t *stats_new(void);
void stats_free(stats_t *s); /* NULL accepted */

/* Count one answered request. Lock-free; safe from any thread. */
void stats_record(stats_t *s, route_t route, int http_status, int64_t duration_ns);

/* Append the service's series to *text (malloc'd, may be NULL: then a new
 * one), in the Prometheus text format 0.0.4. Returns the new text (the old
 * one is freed or reused), or NULL on out of memory (the old one freed). */
char *stats_render(stats_t *s, tenant_map_t *tenants, char *text);

#endif
