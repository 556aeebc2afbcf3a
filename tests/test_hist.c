/* test_hist.c — the latency histogram: quantiles within its stated error,
 * merge, concurrent recording. */
/* ctest-labels: concurrency */
#include <pthread.h>

#include "gp_test.h"

static void test_quantiles(void **state)
{
    (void)state;
    gp_hist_t *h = gp_hist_new();
    assert_non_null(h);
    assert_int_equal(gp_hist_quantile(h, 0.5), 0);
    for (int64_t v = 1; v <= 100000; v++)
        gp_hist_record(h, v * 1000); /* 1 us .. 100 ms */
    assert_int_equal(gp_hist_count(h), 100000);
    int64_t p50 = gp_hist_quantile(h, 0.5), p99 = gp_hist_quantile(h, 0.99);
    assert_true(p50 > 50000000 * 0.96 && p50 < 50000000 * 1.04);
    assert_true(p99 > 99000000 * 0.96 && p99 < 99000000 * 1.04);
    assert_int_equal(gp_hist_max(h), 100000000);
    assert_true(gp_hist_quantile(h, 1.0) <= gp_hist_max(h));
    gp_hist_record(h, -5); /* clamped, not a crash */
    gp_hist_t *g = gp_hist_new();
    gp_hist_merge(g, h);
    assert_int_equal(gp_hist_count(g), gp_hist_count(h));
    gp_hist_reset(h);
    assert_int_equal(gp_hist_count(h), 0);
    gp_hist_free(h);
    gp_hist_free(g);
    gp_hist_free(NULL);
}

static void *recorder(void *arg)
{
    for (int i = 0; i < 100000; i++)
        gp_hist_record(arg, i);
    return NULL;
}

/* The Prometheus buckets: fixed powers of two, exact at their edges
 * (le[i] counts exactly the samples below 2^(10+i) ns), cumulative, and
 * consistent with count. */
static void test_latency_buckets(void **state)
{
    (void)state;
    assert_int_equal(gp_latency_bucket_ns(0), 1024);
    assert_int_equal(gp_latency_bucket_ns(GP_LATENCY_BUCKETS - 1), (int64_t)1 << (10 + GP_LATENCY_BUCKETS - 1));
    assert_int_equal(gp_latency_bucket_ns(-1), 0);
    assert_int_equal(gp_latency_bucket_ns(GP_LATENCY_BUCKETS), 0);
    gp_latency_t l;
    gp_hist_latency(NULL, &l);
    assert_true(l.count == 0 && l.le[GP_LATENCY_BUCKETS - 1] == 0);
    gp_hist_t *h = gp_hist_new();
    assert_non_null(h);
    /* Samples on both sides of every edge, and past the last. */
    uint64_t expect[GP_LATENCY_BUCKETS] = {0};
    int64_t samples[] = {0, 1, 1023, 1024, 1025, 2047, 2048, 65535, 65536, 1000000, (int64_t)1 << 35,
                         ((int64_t)1 << 35) - 1, (int64_t)1 << 40};
    for (size_t k = 0; k < sizeof samples / sizeof samples[0]; k++) {
        gp_hist_record(h, samples[k]);
        for (int i = 0; i < GP_LATENCY_BUCKETS; i++)
            expect[i] += samples[k] < gp_latency_bucket_ns(i);
    }
    gp_hist_latency(h, &l);
    assert_int_equal(l.count, sizeof samples / sizeof samples[0]);
    for (int i = 0; i < GP_LATENCY_BUCKETS; i++) {
        assert_int_equal(l.le[i], expect[i]);
        if (i)
            assert_true(l.le[i] >= l.le[i - 1]);
    }
    /* The percentiles agree with gp_hist_quantile. */
    assert_true(l.p50_us == (double)gp_hist_quantile(h, 0.5) / 1e3);
    assert_true(l.p99_us == (double)gp_hist_quantile(h, 0.99) / 1e3);
    assert_true(l.max_us == (double)gp_hist_max(h) / 1e3);
    gp_hist_free(h);
}

static void test_concurrent(void **state)
{
    (void)state;
    gp_hist_t *h = gp_hist_new();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, recorder, h);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(gp_hist_count(h), 400000);
    gp_hist_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_latency_buckets),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
