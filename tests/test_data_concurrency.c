/* test_data_concurrency.c — several threads create orders for several
 * tenants at once over a pool smaller than the thread count, each order
 * then confirmed; some orders deliberately reference another tenant's menu
 * item and must fail writing nothing; a bumper thread keeps touching the
 * menu rows the orders share-lock. Per tenant, the order count, the sum of
 * totals and the sum of the lines must match what the threads were told
 * succeeded, and no line may ever reference another tenant's item. */
/* ctest-labels: concurrency */
/* ctest-timeout: 300 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "gp_scratch.h"
#include "gp_test.h"
#include "gp_test_data.h"

#define TENANTS 3
#define ITEMS 4
#define THREADS 4
#define ORDERS 24

static gp_scratch_t scratch;
static gp_config_t cfg;
static gp_pool_t *pool;
static char tenants[TENANTS][37];
static char items[TENANTS][ITEMS][37];
static const int32_t prices[ITEMS] = {1250, 399, 75, 2000};
static atomic_bool stop_bumper;

typedef struct worker {
    int id;
    uint64_t rng;
    int64_t orders[TENANTS], totals[TENANTS];
    int refused;    /* cross-tenant orders refused as they must be */
    int unexpected; /* anything else that went wrong */
    char last_error[320];
} worker_t;

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void unexpected(worker_t *w, const char *what, gp_status_t st, const gp_error_t *e)
{
    w->unexpected++;
    snprintf(w->last_error, sizeof w->last_error, "%s: %s: %s", what, gp_strerror(st), e->message);
}

static void *work(void *arg)
{
    worker_t *w = arg;
    for (int k = 0; k < ORDERS; k++) {
        int t = (int)((w->id + k) % TENANTS);
        gp_data_order_line_t lines[3];
        int64_t expect = 0;
        size_t n = 1 + next(&w->rng) % 3;
        for (size_t i = 0; i < n; i++) {
            int item = (int)(next(&w->rng) % ITEMS);
            lines[i].menu_item_id = items[t][item];
            lines[i].quantity = (int32_t)(1 + next(&w->rng) % 5);
            expect += (int64_t)lines[i].quantity * prices[item];
        }
        bool cross = k % 6 == 5; /* the last line names another tenant's item */
        if (cross)
            lines[n - 1].menu_item_id = items[(t + 1) % TENANTS][0];
        gp_data_new_order_t in = {.lines = lines, .n_lines = n};
        gp_row_orders_t o;
        gp_error_t e;
        gp_status_t st = gp_data_create_order(pool, tenants[t], &in, &o, NULL, NULL, &e);
        if (cross) {
            if (st == GP_ERR_NOT_FOUND)
                w->refused++;
            else
                unexpected(w, "cross-tenant order", st, &e);
            if (st == GP_OK)
                gp_row_orders_free(&o);
            continue;
        }
        if (st != GP_OK) {
            unexpected(w, "create order", st, &e);
            continue;
        }
        char owner[37], id[37];
        gp_uuid_format(&o.tenant_id, owner);
        gp_uuid_format(&o.id, id);
        if (o.total_cents != expect || strcmp(owner, tenants[t]) != 0)
            unexpected(w, "order total or owner", GP_ERR_RANGE, &e);
        gp_row_orders_free(&o);
        w->orders[t]++;
        w->totals[t] += expect;
        if ((st = gp_data_set_order_status(pool, tenants[t], id, GP_ORDER_STATUS_CONFIRMED, &e)) != GP_OK)
            unexpected(w, "confirm", st, &e);
    }
    return NULL;
}

/* Keeps taking row locks on the menu items the orders share-lock, without
 * changing prices. Its own failures (none expected) are counted. */
static void *bump(void *arg)
{
    int *failures = arg;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    while (!atomic_load(&stop_bumper)) {
        int t = (int)(next(&rng) % TENANTS), i = (int)(next(&rng) % ITEMS);
        gp_value_t p = gp_uuid_str(items[t][i]);
        if (gp_tenant_exec(pool, tenants[t], "UPDATE menu_items SET updated_at = now() WHERE id = $1", 1, &p, NULL,
                           NULL) != GP_OK)
            (*failures)++;
    }
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "dataconc");
    gp_scratch_migrate(&scratch);
    gp_scratch_config(&scratch, &cfg);
    cfg.db.pool_min = 0;
    cfg.db.pool_max = 3; /* fewer connections than threads (workers + bumper) */
    cfg.db.acquire_timeout_ms = 30000;
    assert_int_equal(gp_pool_create(&cfg, &pool, NULL), GP_OK);
    for (int t = 0; t < TENANTS; t++) {
        char slug[32], cat[37], name[16];
        snprintf(slug, sizeof slug, "conc-%d", t);
        gp_test_data_tenant(pool, slug, tenants[t]);
        gp_test_data_category(pool, tenants[t], "Menu", 0, cat);
        for (int i = 0; i < ITEMS; i++) {
            snprintf(name, sizeof name, "item-%d", i);
            gp_test_data_item(pool, tenants[t], cat, name, prices[i], true, items[t][i]);
        }
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_pool_close(pool, 2000);
    gp_config_release(&cfg);
    gp_scratch_drop(&scratch);
    return 0;
}

static void test_concurrent_orders_add_up_per_tenant(void **state)
{
    (void)state;
    worker_t w[THREADS];
    pthread_t th[THREADS], bumper;
    int bump_failures = 0;
    atomic_store(&stop_bumper, false);
    assert_int_equal(pthread_create(&bumper, NULL, bump, &bump_failures), 0);
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].id = i;
        w[i].rng = 0x2545f4914f6cdd1dULL * (uint64_t)(i + 1);
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    atomic_store(&stop_bumper, true);
    assert_int_equal(pthread_join(bumper, NULL), 0);
    assert_int_equal(bump_failures, 0);

    int64_t orders[TENANTS] = {0}, totals[TENANTS] = {0};
    int refused = 0;
    for (int i = 0; i < THREADS; i++) {
        if (w[i].unexpected)
            fprintf(stderr, "worker %d: %d unexpected; last: %s\n", i, w[i].unexpected, w[i].last_error);
        assert_int_equal(w[i].unexpected, 0);
        refused += w[i].refused;
        for (int t = 0; t < TENANTS; t++) {
            orders[t] += w[i].orders[t];
            totals[t] += w[i].totals[t];
        }
    }
    assert_int_equal(refused, THREADS * (ORDERS / 6));
    int64_t all = 0;
    for (int t = 0; t < TENANTS; t++) {
        const char *id = tenants[t];
        assert_true(orders[t] > 0);
        all += orders[t];
        assert_int_equal(gp_test_data_scalar(pool, id, "SELECT count(*) FROM orders", NULL), orders[t]);
        assert_int_equal(gp_test_data_scalar(pool, id, "SELECT count(*) FROM orders WHERE status = 'confirmed'", NULL),
                         orders[t]);
        assert_int_equal(gp_test_data_scalar(pool, id, "SELECT sum(total_cents)::bigint FROM orders", NULL), totals[t]);
        assert_int_equal(gp_test_data_scalar(pool, id, "SELECT sum(quantity * unit_price_cents) FROM order_items",
                                             NULL),
                         totals[t]);
        /* Every line references this tenant's own items (checked by id, so
         * a foreign line would show even if the foreign key were gone). */
        assert_int_equal(gp_test_data_scalar(pool, id,
                                             "SELECT count(*) FROM order_items i WHERE NOT EXISTS (SELECT FROM "
                                             "menu_items m WHERE m.id = i.menu_item_id AND m.tenant_id = $1)",
                                             id),
                         0);
    }
    assert_int_equal(all, THREADS * (ORDERS - ORDERS / 6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_orders_add_up_per_tenant),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
