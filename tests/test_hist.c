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
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
