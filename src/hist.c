/* hist.c — lock-free log-linear latency histogram: 32 sub-buckets per power
 * of two, so every recorded value is within ~3% of its bucket's midpoint. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SUB_BITS 5
#define SUB (1 << SUB_BITS)
#define GROUPS 64
#define NBUCKETS (GROUPS * SUB)

struct gp_hist {
    _Atomic uint64_t buckets[NBUCKETS];
    _Atomic uint64_t count;
    _Atomic int64_t max;
    _Atomic uint64_t sum_ns; /* wraps after ~584 years of samples */
};

static int bucket_of(uint64_t v)
{
    if (v < SUB)
        return (int)v;
    int msb = 63 - __builtin_clzll(v);            /* >= SUB_BITS */
    int shift = msb - SUB_BITS;
    int sub = (int)((v >> shift) & (SUB - 1));    /* the bits below the leading one */
    int idx = (shift + 1) * SUB + sub;
    return idx < NBUCKETS ? idx : NBUCKETS - 1;
}

/* The midpoint of a bucket, in ns. */
static int64_t bucket_value(int idx)
{
    if (idx < SUB)
        return idx;
    int shift = idx / SUB - 1;
    uint64_t lo = ((uint64_t)(SUB + idx % SUB)) << shift;
    uint64_t width = 1ULL << shift;
    return (int64_t)(lo + width / 2);
}

gp_hist_t *gp_hist_new(void) { return calloc(1, sizeof(gp_hist_t)); }

void gp_hist_free(gp_hist_t *h) { free(h); }

void gp_hist_record(gp_hist_t *h, int64_t ns)
{
    if (!h)
        return;
    if (ns < 0)
        ns = 0;
    atomic_fetch_add_explicit(&h->buckets[bucket_of((uint64_t)ns)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)ns, memory_order_relaxed);
    int64_t m = atomic_load_explicit(&h->max, memory_order_relaxed);
    while (ns > m && !atomic_compare_exchange_weak_explicit(&h->max, &m, ns, memory_order_relaxed,
                                                            memory_order_relaxed))
        ;
}

void gp_hist_merge(gp_hist_t *dst, const gp_hist_t *src)
{
    if (!dst || !src)
        return;
    for (int i = 0; i < NBUCKETS; i++) {
        uint64_t n = atomic_load_explicit(&src->buckets[i], memory_order_relaxed);
        if (n)
            atomic_fetch_add_explicit(&dst->buckets[i], n, memory_order_relaxed);
    }
    atomic_fetch_add(&dst->count, atomic_load(&src->count));
    atomic_fetch_add(&dst->sum_ns, atomic_load(&src->sum_ns));
    int64_t m = atomic_load(&src->max);
    int64_t d = atomic_load(&dst->max);
    while (m > d && !atomic_compare_exchange_weak(&dst->max, &d, m))
        ;
}

void gp_hist_reset(gp_hist_t *h)
{
    if (!h)
        return;
    for (int i = 0; i < NBUCKETS; i++)
        atomic_store_explicit(&h->buckets[i], 0, memory_order_relaxed);
    atomic_store(&h->count, 0);
    atomic_store(&h->sum_ns, 0);
    atomic_store(&h->max, 0);
}

uint64_t gp_hist_count(const gp_hist_t *h) { return h ? atomic_load(&h->count) : 0; }

int64_t gp_hist_max(const gp_hist_t *h) { return h ? atomic_load(&h->max) : 0; }

double gp_hist_sum(const gp_hist_t *h) { return h ? (double)atomic_load(&h->sum_ns) : 0; }

int64_t gp_hist_quantile(const gp_hist_t *h, double q)
{
    if (!h)
        return 0;
    uint64_t total = 0;
    for (int i = 0; i < NBUCKETS; i++)
        total += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    if (total == 0)
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    uint64_t rank = (uint64_t)(q * (double)(total - 1)) + 1, seen = 0;
    for (int i = 0; i < NBUCKETS; i++) {
        seen += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (seen >= rank) {
            int64_t v = bucket_value(i), m = gp_hist_max(h);
            return m && v > m ? m : v;
        }
    }
    return gp_hist_max(h);
}

int64_t gp_latency_bucket_ns(int i)
{
    return i >= 0 && i < GP_LATENCY_BUCKETS ? (int64_t)1 << (10 + i) : 0;
}

void gp_hist_latency(const gp_hist_t *h, gp_latency_t *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!h)
        return;
    /* One pass over the buckets: the cumulative counts at the power-of-two
     * edges (2^k is the first value of bucket (k - SUB_BITS + 1) * SUB),
     * then the percentiles from the same read, so they agree. */
    uint64_t total = 0;
    int next = 0;
    uint64_t counts[NBUCKETS];
    for (int i = 0; i < NBUCKETS; i++) {
        while (next < GP_LATENCY_BUCKETS && i == bucket_of((uint64_t)gp_latency_bucket_ns(next)))
            out->le[next++] = total;
        counts[i] = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        total += counts[i];
    }
    while (next < GP_LATENCY_BUCKETS)
        out->le[next++] = total;
    out->count = total;
    out->sum_us = gp_hist_sum(h) / 1e3;
    int64_t max = gp_hist_max(h);
    out->max_us = (double)max / 1e3;
    if (total == 0)
        return;
    const double qs[3] = {0.50, 0.90, 0.99};
    double *dst[3] = {&out->p50_us, &out->p90_us, &out->p99_us};
    uint64_t seen = 0;
    int q = 0;
    for (int i = 0; i < NBUCKETS && q < 3; i++) {
        seen += counts[i];
        while (q < 3 && seen >= (uint64_t)(qs[q] * (double)(total - 1)) + 1) {
            int64_t v = bucket_value(i);
            *dst[q++] = (double)(max && v > max ? max : v) / 1e3;
        }
    }
}
