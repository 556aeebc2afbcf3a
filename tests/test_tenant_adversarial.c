/* test_tenant_adversarial.c — many threads, many tenants, a small pool:
 * random interleaved reads, writes, failing statements, rollbacks, attempts
 * to write into or move rows to another tenant, and statement timeouts. No
 * operation may ever see or change another tenant's row, and every
 * committed insert — and nothing else — is there at the end. */
/* ctest-labels: concurrency */
/* ctest-timeout: 300 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_scratch.h"
#include "gp_test.h"

#define TENANTS 6
#define THREADS 8
#define OPS 120

static gp_scratch_t scratch;
static gp_config_t cfg;
static gp_pool_t *pool;
static char tenants[TENANTS][37];

typedef struct worker {
    int id;
    uint64_t rng;
    int committed[TENANTS];
    int violations; /* anything seen or done across tenants */
    int unexpected; /* an operation failed in a way it should not */
    char last_error[256];
} worker_t;

static uint64_t next(worker_t *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

static void violation(worker_t *w, const char *what)
{
    w->violations++;
    fprintf(stderr, "worker %d: ISOLATION VIOLATION: %s\n", w->id, what);
}

static void unexpected(worker_t *w, const char *what, const gp_error_t *e)
{
    w->unexpected++;
    snprintf(w->last_error, sizeof w->last_error, "%s: %s (%s)", what, e->message, e->sqlstate);
}

typedef struct insert_ctx {
    worker_t *w;
    int tenant, op;
    int fail_after; /* 0: commit; 1: divide by zero after insert; 2: explicit rollback */
} insert_ctx_t;

static gp_status_t insert_fn(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    insert_ctx_t *c = ud;
    char name[80];
    snprintf(name, sizeof name, "%.8s-w%d-op%d", tenants[c->tenant], c->w->id, c->op);
    const char *cols[] = {"name"};
    gp_value_t vals[] = {gp_text(name)};
    gp_status_t st = gp_tenant_insert(tx, "menu_categories", 1, cols, vals, NULL, NULL, err);
    if (st != GP_OK)
        return st;
    if (c->fail_after == 1)
        return gp_tenant_tx_exec(tx, "SELECT 1/0", 0, NULL, NULL, err);
    if (c->fail_after == 2)
        return GP_ERR_CANCELED;
    return GP_OK;
}

/* Every visible row belongs to the tenant and carries its name prefix. */
static void read_check(worker_t *w, int t)
{
    gp_result_t *r = NULL;
    gp_error_t e;
    if (gp_tenant_query(pool, tenants[t], "SELECT tenant_id::text, name FROM menu_categories", 0, NULL, &r, &e) !=
        GP_OK) {
        unexpected(w, "read", &e);
        return;
    }
    for (int i = 0; i < gp_result_rows(r); i++) {
        const char *tid, *name;
        gp_get_text(r, i, 0, &tid, NULL);
        gp_get_text(r, i, 1, &name, NULL);
        if (strcmp(tid, tenants[t]) != 0 || strncmp(name, tenants[t], 8) != 0)
            violation(w, "read another tenant's row");
    }
    gp_result_free(r);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    for (int op = 0; op < OPS; op++) {
        int t = (int)(next(w) % TENANTS), other = (t + 1 + (int)(next(w) % (TENANTS - 1))) % TENANTS;
        int action = (int)(next(w) % 7);
        gp_error_t e;
        insert_ctx_t ic = {w, t, op, 0};
        switch (action) {
        case 0: /* commit an insert */
        case 1:
            if (gp_tenant_run(pool, tenants[t], NULL, insert_fn, &ic, NULL, &e) == GP_OK)
                w->committed[t]++;
            else
                unexpected(w, "insert", &e);
            break;
        case 2: /* an insert, then a failing statement: all rolled back */
            ic.fail_after = 1;
            if (gp_tenant_run(pool, tenants[t], NULL, insert_fn, &ic, NULL, &e) != GP_ERR_SERVER ||
                e.klass != GP_ECLASS_DATA)
                unexpected(w, "failing insert", &e);
            break;
        case 3: /* an insert, then the caller rolls back */
            ic.fail_after = 2;
            if (gp_tenant_run(pool, tenants[t], NULL, insert_fn, &ic, NULL, &e) != GP_ERR_CANCELED)
                unexpected(w, "rolled-back insert", &e);
            break;
        case 4: { /* try to move every row to another tenant: WITH CHECK refuses */
            gp_value_t v = gp_uuid_str(tenants[other]);
            int64_t moved = 0;
            gp_status_t st = gp_tenant_exec(pool, tenants[t], "UPDATE menu_categories SET tenant_id = $1", 1, &v,
                                            &moved, &e);
            /* Succeeding is only acceptable when there was nothing to move. */
            if (st == GP_OK && moved != 0)
                violation(w, "moved rows to another tenant");
            else if (st != GP_OK && strcmp(e.sqlstate, "42501") != 0)
                unexpected(w, "move", &e);
            break;
        }
        case 5: { /* try to delete another tenant's rows by naming it */
            gp_value_t v = gp_uuid_str(tenants[other]);
            int64_t n = -1;
            if (gp_tenant_exec(pool, tenants[t], "DELETE FROM menu_categories WHERE tenant_id = $1", 1, &v, &n, &e) !=
                GP_OK)
                unexpected(w, "cross delete", &e);
            else if (n != 0)
                violation(w, "deleted another tenant's rows");
            /* and to insert a row for it */
            char name[64];
            snprintf(name, sizeof name, "smuggled-w%d-op%d", w->id, op);
            gp_value_t p[2] = {gp_uuid_str(tenants[other]), gp_text(name)};
            if (gp_tenant_exec(pool, tenants[t], "INSERT INTO menu_categories (tenant_id, name) VALUES ($1, $2)", 2,
                               p, NULL, &e) == GP_OK)
                violation(w, "inserted a row for another tenant");
            break;
        }
        case 6: { /* a statement timeout in the middle of a scoped transaction */
            gp_conn_t *c;
            if (gp_pool_acquire(pool, "adversary", -1, &c, &e) != GP_OK) {
                unexpected(w, "acquire", &e);
                break;
            }
            gp_tx_opts_t o = {.statement_timeout_ms = 20};
            gp_tenant_tx_t *tx;
            if (gp_tenant_begin(c, tenants[t], &o, &tx, &e) == GP_OK) {
                gp_tenant_tx_exec(tx, "SELECT pg_sleep(1) FROM menu_categories LIMIT 1", 0, NULL, NULL, &e);
                if (next(w) % 2)
                    gp_tenant_rollback(tx, &e);
                else
                    free(tx); /* forgotten: the pool rolls back on release */
            }
            gp_pool_release(c);
            break;
        }
        }
        read_check(w, (int)(next(w) % TENANTS));
    }
    return NULL;
}

static void test_interleaved_tenants_never_cross(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "adversarial");
    gp_scratch_migrate(&scratch);
    gp_scratch_config(&scratch, &cfg);
    cfg.db.pool_min = 0;
    cfg.db.pool_max = 3;
    cfg.db.acquire_timeout_ms = 20000;
    assert_int_equal(gp_pool_create(&cfg, &pool, NULL), GP_OK);
    gp_conn_t *c;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(pool, "setup", -1, &c, &e), GP_OK);
    for (int i = 0; i < TENANTS; i++) {
        char slug[32];
        snprintf(slug, sizeof slug, "adv-%d", i);
        gp_value_t p[2] = {gp_text(slug), gp_text(slug)};
        gp_result_t *r = NULL;
        assert_int_equal(gp_query(c, "SELECT create_tenant($1, $2)::text", 2, p, &r, &e), GP_OK);
        const char *id;
        gp_get_text(r, 0, 0, &id, NULL);
        snprintf(tenants[i], sizeof tenants[i], "%s", id);
        gp_result_free(r);
    }
    gp_pool_release(c);

    worker_t w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].id = i;
        w[i].rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    int expected[TENANTS] = {0};
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        if (w[i].unexpected)
            fprintf(stderr, "worker %d: %d unexpected failures, last: %s\n", i, w[i].unexpected, w[i].last_error);
        assert_int_equal(w[i].violations, 0);
        assert_int_equal(w[i].unexpected, 0);
        for (int t = 0; t < TENANTS; t++)
            expected[t] += w[i].committed[t];
    }
    /* Exactly the committed inserts, each in its own tenant. */
    int total = 0;
    for (int t = 0; t < TENANTS; t++) {
        gp_result_t *r = NULL;
        assert_int_equal(gp_tenant_query(pool, tenants[t], "SELECT count(*) FROM menu_categories WHERE "
                                         "left(name, 8) = left(public.growplate_tenant()::text, 8)",
                                         0, NULL, &r, &e),
                         GP_OK);
        int64_t n;
        gp_get_int64(r, 0, 0, &n);
        gp_result_free(r);
        assert_int_equal(n, expected[t]);
        total += expected[t];
    }
    fprintf(stderr, "%d committed inserts across %d tenants, %d operations\n", total, TENANTS, THREADS * OPS);
    assert_true(total > 0);
    /* As the owner (row-level security applies to it too: use the admin
     * view of the table through the superuser) nothing foreign exists. */
    PGconn *admin = gp_scratch_connect(scratch.admin);
    char buf[32];
    gp_scratch_value(admin, "SELECT count(*) FROM menu_categories m JOIN tenants t ON t.id = m.tenant_id "
                            "WHERE left(m.name, 8) <> left(t.id::text, 8)", buf, sizeof buf);
    assert_string_equal(buf, "0");
    PQfinish(admin);
    gp_pool_close(pool, 5000);
    gp_config_release(&cfg);
    gp_scratch_drop(&scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interleaved_tenants_never_cross),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
