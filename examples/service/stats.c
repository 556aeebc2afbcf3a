/* stats.c — counters and latency histograms (the library's gp_hist_t) per
 * route; every update is one atomic add or a lock-free record. */
#include "stats.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const route_names[ROUTE_COUNT_] = {
    "menu", "order_create", "order_list", "order_get", "healthz", "metrics", "other",
};

/* The statuses this service answers with; anything else counts as "other". */
static const int codes[] = {200, 201, 400, 404, 405, 409, 413, 415, 422, 500, 503};
#define NCODES (sizeof codes / sizeof codes[0])

struct stats {
    atomic_uint_fast64_t requests[ROUTE_COUNT_][NCODES + 1];
    gp_hist_t *latency[ROUTE_COUNT_];
};

stats_t *stats_new(void)
{
    stats_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    for (int r = 0; r < ROUTE_COUNT_; r++) {
        if (!(s->latency[r] = gp_hist_new())) {
            stats_free(s);
            return NULL;
        }
    }
    return s;
}

void stats_free(stats_t *s)
{
    if (!s)
        return;
    for (int r = 0; r < ROUTE_COUNT_; r++)
        gp_hist_free(s->latency[r]);
    free(s);
}

void stats_record(stats_t *s, route_t route, int http_status, int64_t duration_ns)
{
    size_t c = 0;
    while (c < NCODES && codes[c] != http_status)
        c++;
    atomic_fetch_add_explicit(&s->requests[route][c], 1, memory_order_relaxed);
    gp_hist_record(s->latency[route], duration_ns);
}

/* ---- a growing text buffer ------------------------------------------------ */

typedef struct buf {
    char *p;
    size_t len, cap;
    bool failed;
} buf_t;

__attribute__((format(printf, 2, 3))) static void bprintf(buf_t *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 > b->len + (size_t)n + 1 ? b->cap * 2 : b->len + (size_t)n + 1;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

char *stats_render(stats_t *s, tenant_map_t *tenants, char *text)
{
    buf_t b = {.p = text, .len = text ? strlen(text) : 0};
    b.cap = b.len + 1;
    if (!b.p && !(b.p = malloc(b.cap = 4096))) /* a fresh buffer */
        return NULL;
    b.p[b.len] = 0;

    bprintf(&b, "# HELP growplate_service_requests_total HTTP requests answered, by route and status.\n"
                "# TYPE growplate_service_requests_total counter\n");
    for (int r = 0; r < ROUTE_COUNT_; r++) {
        for (size_t c = 0; c <= NCODES; c++) {
            uint64_t n = atomic_load_explicit(&s->requests[r][c], memory_order_relaxed);
            if (n == 0)
                continue;
            if (c < NCODES)
                bprintf(&b, "growplate_service_requests_total{route=\"%s\",code=\"%d\"} %llu\n", route_names[r],
                        codes[c], (unsigned long long)n);
            else
                bprintf(&b, "growplate_service_requests_total{route=\"%s\",code=\"other\"} %llu\n", route_names[r],
                        (unsigned long long)n);
        }
    }
    /* Histograms with the library's fixed power-of-two buckets, as its own
     * duration families: they add up across instances. */
    bprintf(&b, "# HELP growplate_service_request_duration_seconds Time from a request's headers to its answer "
                "sent, by route.\n"
                "# TYPE growplate_service_request_duration_seconds histogram\n");
    for (int r = 0; r < ROUTE_COUNT_; r++) {
        gp_latency_t l;
        gp_hist_latency(s->latency[r], &l);
        if (l.count == 0)
            continue;
        for (int i = 0; i < GP_LATENCY_BUCKETS; i++)
            bprintf(&b, "growplate_service_request_duration_seconds_bucket{route=\"%s\",le=\"%.12g\"} %llu\n",
                    route_names[r], (double)gp_latency_bucket_ns(i) / 1e9, (unsigned long long)l.le[i]);
        bprintf(&b, "growplate_service_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                route_names[r], (unsigned long long)l.count);
        bprintf(&b, "growplate_service_request_duration_seconds_sum{route=\"%s\"} %.9f\n", route_names[r],
                l.sum_us / 1e6);
        bprintf(&b, "growplate_service_request_duration_seconds_count{route=\"%s\"} %llu\n", route_names[r],
                (unsigned long long)l.count);
    }

    tenant_map_stats_t t;
    tenant_map_stats(tenants, &t);
    bprintf(&b,
            "# HELP growplate_service_tenant_lookups_total Slug to tenant resolutions, by where the answer came from.\n"
            "# TYPE growplate_service_tenant_lookups_total counter\n"
            "growplate_service_tenant_lookups_total{result=\"hit\"} %llu\n"
            "growplate_service_tenant_lookups_total{result=\"negative_hit\"} %llu\n"
            "growplate_service_tenant_lookups_total{result=\"database\"} %llu\n"
            "growplate_service_tenant_lookups_total{result=\"error\"} %llu\n"
            "# HELP growplate_service_tenant_map_evictions_total Live entries of the tenant map replaced to make room.\n"
            "# TYPE growplate_service_tenant_map_evictions_total counter\n"
            "growplate_service_tenant_map_evictions_total %llu\n"
            "# HELP growplate_service_tenant_map_entries Live entries in the tenant map.\n"
            "# TYPE growplate_service_tenant_map_entries gauge\n"
            "growplate_service_tenant_map_entries %zu\n"
            "# HELP growplate_service_tenant_map_capacity Entries the tenant map can hold.\n"
            "# TYPE growplate_service_tenant_map_capacity gauge\n"
            "growplate_service_tenant_map_capacity %zu\n",
            (unsigned long long)t.hits, (unsigned long long)t.negative_hits, (unsigned long long)(t.misses - t.errors),
            (unsigned long long)t.errors, (unsigned long long)t.evictions, t.entries, t.capacity);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
