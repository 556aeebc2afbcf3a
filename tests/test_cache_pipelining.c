/* test_cache_pipelining.c — automatic pipelining: calls that wait for a busy
 * connection share one round trip, each gets its own replies and status, and
 * none waits past its budget. Redis is held still with CLIENT PAUSE ... WRITE
 * (writes wait in the server, reads go on), so the calls are known to be
 * queued before the connection comes free: the batching is deterministic.
 * Serial: the pause holds every client of the private Redis. Also runs under
 * ThreadSanitizer. */
/* ctest-labels: concurrency */
/* ctest-serial */
/* ctest-timeout: 120 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_test_cache.h"
#include "internal.h"

#define CALLERS 16

/* Pause writes on the whole server for ms milliseconds (they wait in Redis;
 * the pause ends by itself). */
static void pause_writes(int ms)
{
    redisContext *r = gp_test_redis();
    redisReply *rep = gp_test_redis_cmd(r, "CLIENT PAUSE %d WRITE", ms);
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    redisFree(r);
}

/* Poll the metrics until `waiting` reaches n, for at most ms. */
static bool wait_for_queue(gp_cache_t *c, int n, int64_t ms)
{
    int64_t until = gp__now_ns() + ms * 1000000LL;
    while (gp__now_ns() < until) {
        if (gp_test_cache_metrics(c).waiting >= n)
            return true;
        gp_test_poll_pause();
    }
    return false;
}

typedef struct shared {
    gp_cache_t *c;
    char tenant[37];
} shared_t;

typedef struct caller {
    shared_t *s;
    int i;
    gp_status_t st;
    int64_t value;     /* incr: the counter's value */
    int64_t took_ns;
    gp_error_t err;
} caller_t;

/* Every kind of write, with a different number of commands per call, so a
 * shared round trip has to hand out replies in uneven slices: caller i sets
 * its own key (i % 3 == 0), adds i + 1 to its own fresh counter (1), or
 * stores two keys of its own in one mset (2). */
static void *writer(void *p)
{
    caller_t *a = p;
    char k1[32], k2[32], v1[32], v2[32];
    snprintf(k1, sizeof k1, "w:%d:a", a->i);
    snprintf(k2, sizeof k2, "w:%d:b", a->i);
    snprintf(v1, sizeof v1, "value-%d-a", a->i);
    snprintf(v2, sizeof v2, "value-%d-b", a->i);
    int64_t t0 = gp__now_ns();
    switch (a->i % 3) {
    case 0:
        a->st = gp_cache_set(a->s->c, a->s->tenant, k1, v1, strlen(v1), 60000, &a->err);
        break;
    case 1:
        a->st = gp_cache_incr(a->s->c, a->s->tenant, k1, a->i + 1, 60000, &a->value, &a->err);
        break;
    default: {
        const char *keys[2] = {k1, k2};
        gp_cache_value_t vals[2] = {{v1, strlen(v1)}, {v2, strlen(v2)}};
        a->st = gp_cache_mset(a->s->c, a->s->tenant, 2, keys, vals, 60000, &a->err);
    }
    }
    a->took_ns = gp__now_ns() - t0;
    return NULL;
}

static void start_writers(shared_t *s, caller_t *a, pthread_t *th, int from, int to)
{
    for (int i = from; i < to; i++) {
        a[i] = (caller_t){.s = s, .i = i};
        assert_int_equal(pthread_create(&th[i], NULL, writer, &a[i]), 0);
    }
}

static void assert_stored(shared_t *s, const char *key, const char *want)
{
    char *v = NULL;
    size_t len = 0;
    assert_int_equal(gp_cache_get(s->c, s->tenant, key, &v, &len, NULL), GP_OK);
    assert_string_equal(v, want);
    free(v);
}

/* One connection, 16 callers: the first holds the connection (its write is
 * paused in Redis), the other 15 queue; when the pause ends the first call's
 * thread sends all 15 in one write. 16 calls, 2 round trips, and every
 * caller got its own answer. */
static void test_waiting_calls_share_one_round_trip(void **state)
{
    (void)state;
    gp_config_t cfg;
    shared_t s;
    gp_cache_options_t o = {.generation_ttl_ms = 600000}; /* no generation fetch during the pause */
    s.c = gp_test_cache(&cfg, &o, 10000, 1);
    gp_test_tenant(s.tenant);
    /* the tenant's generation is fetched (and cached) before the pause */
    assert_int_equal(gp_cache_exists(s.c, s.tenant, "warm-up", NULL), GP_ERR_MISS);
    gp_cache_metrics_t before = gp_test_cache_metrics(s.c);

    pause_writes(3000);
    caller_t a[CALLERS];
    pthread_t th[CALLERS];
    start_writers(&s, a, th, 0, 1);
    /* caller 0 holds the only connection: its write waits in Redis */
    int64_t until = gp__now_ns() + 2000000000LL;
    while (gp_test_cache_metrics(s.c).leased < 1 && gp__now_ns() < until)
        gp_test_poll_pause();
    assert_int_equal(gp_test_cache_metrics(s.c).leased, 1);
    start_writers(&s, a, th, 1, CALLERS);
    assert_true(wait_for_queue(s.c, CALLERS - 1, 2500));
    for (int i = 0; i < CALLERS; i++)
        pthread_join(th[i], NULL);

    gp_cache_metrics_t m = gp_test_cache_metrics(s.c);
    assert_int_equal(m.calls - before.calls, CALLERS);
    assert_int_equal(m.round_trips - before.round_trips, 2);
    assert_int_equal(m.waiting, 0);
    assert_int_equal(m.leased, 0);
    for (int i = 0; i < CALLERS; i++) {
        if (a[i].st != GP_OK)
            fail_msg("caller %d: %s: %s", i, gp_strerror(a[i].st), a[i].err.message);
        char k1[32], k2[32], v1[32], v2[32];
        snprintf(k1, sizeof k1, "w:%d:a", i);
        snprintf(k2, sizeof k2, "w:%d:b", i);
        snprintf(v1, sizeof v1, "value-%d-a", i);
        snprintf(v2, sizeof v2, "value-%d-b", i);
        switch (i % 3) {
        case 0:
            assert_stored(&s, k1, v1);
            break;
        case 1:
            assert_int_equal(a[i].value, i + 1); /* its own counter, not a neighbour's reply */
            break;
        default:
            assert_stored(&s, k1, v1);
            assert_stored(&s, k2, v2);
        }
    }
    gp_cache_close(s.c);
    gp_config_release(&cfg);
}

/* Redis holds writes longer than the budget: the call on the connection
 * times out, and so does every call queued behind it — each within its own
 * budget, none left waiting; once the pause is over the cache serves again
 * (through the circuit breaker's probe). */
static void test_queued_calls_keep_their_budget(void **state)
{
    (void)state;
    const int budget_ms = 300;
    gp_config_t cfg;
    shared_t s;
    gp_cache_options_t o = {.generation_ttl_ms = 600000};
    s.c = gp_test_cache(&cfg, &o, budget_ms, 1);
    gp_test_tenant(s.tenant);
    assert_int_equal(gp_cache_exists(s.c, s.tenant, "warm-up", NULL), GP_ERR_MISS);

    pause_writes(1500);
    int64_t paused_at = gp__now_ns();
    caller_t a[6];
    pthread_t th[6];
    start_writers(&s, a, th, 0, 6);
    for (int i = 0; i < 6; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(a[i].st, GP_ERR_UNAVAILABLE);
        assert_true(a[i].err.retriable);
        /* the budget, plus scheduling slack (sanitizers, a busy machine) */
        if (a[i].took_ns > (budget_ms + 700) * 1000000LL)
            fail_msg("caller %d took %lld ms with a budget of %d ms", i, (long long)(a[i].took_ns / 1000000),
                     budget_ms);
    }
    gp_cache_metrics_t m = gp_test_cache_metrics(s.c);
    assert_int_equal(m.waiting, 0);
    assert_int_equal(m.leased, 0);
    assert_true(m.timeouts >= 1);

    /* after the pause: served again, within a bounded time */
    int64_t until = paused_at + 10000000000LL;
    gp_status_t st;
    while ((st = gp_cache_set(s.c, s.tenant, "after", "1", 1, 60000, NULL)) != GP_OK && gp__now_ns() < until)
        gp_test_poll_pause();
    assert_int_equal(st, GP_OK);
    assert_stored(&s, "after", "1");
    gp_cache_close(s.c);
    gp_config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waiting_calls_share_one_round_trip),
        cmocka_unit_test(test_queued_calls_keep_their_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
