/* test_hostile_concurrent.c — attackers and victims at once on a small
 * pool: threads acting as tenant A send hostile statements through every
 * path (one-shot, lease, pipeline, tenant transaction) while threads acting
 * as tenant B, on the same two connections, check with their first
 * statement of each call that the session they got is pristine. Also run
 * under ThreadSanitizer. */
/* ctest-labels: concurrency */
/* ctest-timeout: 300 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_scratch.h"
#include "gp_test.h"
#include "gp_test_data.h"

#define ATTACKERS 2
#define VICTIMS 2
#define ROUNDS 60

static gp_scratch_t scratch;
static gp_config_t cfg;
static gp_pool_t *pool;
static char ta[37], tb[37];

static const char *const hostile[] = {
    "SELECT set_config('search_path', 'pg_catalog', false)",
    "SET work_mem = '64MB'",
    "DO $$BEGIN EXECUTE 'SET search_path = pg_catalog'; END$$",
    "SELECT set_config('role', 'gp_hostile_conc', false)",
    "DECLARE leak CURSOR WITH HOLD FOR SELECT name FROM public.menu_items",
    "PREPARE leak AS SELECT name FROM public.menu_items",
    "LISTEN gp_hostile_conc",
    "SELECT pg_advisory_lock(777)",
    "SELECT pg_advisory_lock(778), 1/0",
    "DO $$DECLARE r record; BEGIN FOR r IN SELECT name FROM pg_prepared_statements WHERE statement LIKE "
    "'%set_config%' LOOP EXECUTE format('DEALLOCATE %I', r.name); EXECUTE format('PREPARE %I(text) AS SELECT "
    "pg_catalog.set_config(''growplate.tenant_token'', NULL, true)', r.name); END LOOP; END$$",
};
#define NHOSTILE (sizeof hostile / sizeof *hostile)

/* First statement of a victim's call: what it sees of the session. */
static const char OBSERVE[] =
    "SELECT current_setting('search_path') = '\"$user\", public' AND current_setting('work_mem') = '4MB'"
    " AND current_user = session_user"
    " AND (SELECT count(*) FROM pg_cursors WHERE name <> '') = 0"
    " AND (SELECT count(*) FROM pg_prepared_statements WHERE from_sql) = 0"
    " AND (SELECT count(*) FROM pg_listening_channels()) = 0"
    " AND (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) = 0"
    " AND public.growplate_tenant() = $1::uuid"
    " AND (SELECT count(*) FROM menu_items) = 2 AND (SELECT count(*) FROM menu_items WHERE name LIKE 'b-%') = 2";

typedef struct worker {
    int id;
    int violations, failures, checked;
    uint64_t rng;
} worker_t;

static uint64_t next(worker_t *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

static gp_status_t tx_fn(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    return gp_tenant_tx_exec(tx, ud, 0, NULL, NULL, err);
}

static void *attacker(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        const char *sql = hostile[next(w) % NHOSTILE];
        gp_error_t e;
        switch (next(w) % 4) {
        case 0:
            gp_tenant_exec(pool, ta, sql, 0, NULL, NULL, &e);
            break;
        case 1: {
            gp_conn_t *c;
            if (gp_pool_acquire(pool, "attacker", 10000, &c, &e) == GP_OK) {
                gp_exec(c, sql, 0, NULL, NULL, &e);
                gp_pool_release(c);
            }
            break;
        }
        case 2: {
            gp_pipeline_t *p = gp_pipeline_new();
            if (p && gp_pipeline_add(p, sql, 0, NULL, &e) == GP_OK)
                gp_pool_pipeline_run(pool, p, &e);
            gp_pipeline_free(p);
            break;
        }
        default:
            gp_tenant_run(pool, ta, NULL, tx_fn, (void *)sql, NULL, &e);
            break;
        }
    }
    return NULL;
}

static void *victim(void *arg)
{
    worker_t *w = arg;
    gp_value_t t = gp_text(tb);
    for (int i = 0; i < ROUNDS; i++) {
        gp_result_t *r = NULL;
        gp_error_t e;
        gp_status_t st;
        if (next(w) % 2) {
            st = gp_tenant_query(pool, tb, OBSERVE, 1, &t, &r, &e);
        } else { /* a lease of B's own: the tenant transaction's first statement */
            gp_conn_t *c;
            st = gp_pool_acquire(pool, "victim", 10000, &c, &e);
            if (st == GP_OK) {
                gp_tenant_tx_t *tx;
                st = gp_tenant_begin(c, tb, NULL, &tx, &e);
                if (st == GP_OK) {
                    st = gp_tenant_tx_query(tx, OBSERVE, 1, &t, &r, &e);
                    gp_tenant_rollback(tx, NULL);
                }
                gp_pool_release(c);
            }
        }
        bool ok = false;
        if (st == GP_OK && gp_get_bool(r, 0, 0, &ok) == GP_OK) {
            w->checked++;
            if (!ok) {
                w->violations++;
                fprintf(stderr, "victim %d: the session it got was not pristine\n", w->id);
            }
        } else {
            w->failures++;
            fprintf(stderr, "victim %d: %s (%s)\n", w->id, e.message, e.sqlstate);
        }
        gp_result_free(r);
    }
    return NULL;
}

static void test_attackers_and_victims(void **state)
{
    (void)state;
    pthread_t th[ATTACKERS + VICTIMS];
    worker_t w[ATTACKERS + VICTIMS];
    for (int i = 0; i < ATTACKERS + VICTIMS; i++) {
        w[i] = (worker_t){.id = i, .rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1)};
        assert_int_equal(pthread_create(&th[i], NULL, i < ATTACKERS ? attacker : victim, &w[i]), 0);
    }
    int violations = 0, failures = 0, checked = 0;
    for (int i = 0; i < ATTACKERS + VICTIMS; i++) {
        pthread_join(th[i], NULL);
        violations += w[i].violations;
        failures += w[i].failures;
        checked += w[i].checked;
    }
    assert_int_equal(checked, VICTIMS * ROUNDS);
    assert_int_equal(violations, 0);
    assert_int_equal(failures, 0);
}

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "hostile_conc");
    gp_scratch_migrate(&scratch);
    gp_scratch_config(&scratch, &cfg);
    cfg.db.pool_min = 2;
    cfg.db.pool_max = 2;
    gp_error_t e;
    if (gp_pool_create(&cfg, &pool, &e) != GP_OK) {
        fprintf(stderr, "pool: %s\n", e.message);
        return -1;
    }
    gp_test_data_tenant(pool, "conc-a", ta);
    gp_test_data_tenant(pool, "conc-b", tb);
    char cat[37], item[37];
    gp_test_data_category(pool, ta, "a-cat", 1, cat);
    gp_test_data_item(pool, ta, cat, "a-secret", 100, true, item);
    gp_test_data_category(pool, tb, "b-cat", 1, cat);
    gp_test_data_item(pool, tb, cat, "b-soup", 100, true, item);
    gp_test_data_item(pool, tb, cat, "b-salad", 100, true, item);
    PGconn *admin = gp_scratch_connect(scratch.admin);
    gp_scratch_exec(admin, "DROP ROLE IF EXISTS gp_hostile_conc; CREATE ROLE gp_hostile_conc NOLOGIN;"
                           "GRANT gp_hostile_conc TO growplate_app");
    PQfinish(admin);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_pool_close(pool, 5000);
    gp_config_release(&cfg);
    PGconn *admin = gp_scratch_connect(scratch.admin);
    gp_scratch_exec(admin, "DROP ROLE IF EXISTS gp_hostile_conc");
    PQfinish(admin);
    gp_scratch_drop(&scratch);
    return 0;
}

int main(void)
{
    gp_test_require_env();
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_attackers_and_victims)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
