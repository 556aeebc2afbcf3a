/* test_stream.c — results streamed row by row (single-row mode) on the real
 * server: a tenant streams only its own rows (also when it asks for
 * another's); a long result is read to the end one row at a time; closing
 * early cancels the rest and the same backend comes back pristine, and
 * inside a tenant transaction the transaction goes on; an error mid-stream
 * or at once is classified; a backend terminated mid-stream gives
 * GP_ERR_CONNECT and the connection is closed, not reused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_scratch.h"
#include "gp_test.h"
#include "gp_test_conn.h"
#include "gp_test_data.h"
#include "internal.h"

static gp_scratch_t scratch;
static gp_config_t cfg;
static gp_pool_t *pool;
static char tenant_a[37], tenant_b[37], cat_a[37], cat_b[37];

static int64_t admin_count(const char *sql)
{
    PGconn *c = gp_scratch_connect(scratch.admin); /* the superuser: the owner is subject to FORCEd policies */
    char buf[32];
    int64_t n = atoll(gp_scratch_value(c, sql, buf, sizeof buf));
    PQfinish(c);
    return n;
}

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "stream");
    gp_scratch_migrate(&scratch);
    gp_scratch_config(&scratch, &cfg);
    cfg.db.pool_min = 0;
    cfg.db.pool_max = 1;
    cfg.db.acquire_timeout_ms = 5000;
    cfg.db.query_timeout_ms = 10000;
    assert_int_equal(gp_pool_create(&cfg, &pool, NULL), GP_OK);
    gp_test_data_tenant(pool, "stream-a", tenant_a);
    gp_test_data_tenant(pool, "stream-b", tenant_b);
    gp_test_data_category(pool, tenant_a, "Mains", 1, cat_a);
    gp_test_data_category(pool, tenant_b, "Mains", 1, cat_b);
    char id[37], name[32];
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof name, "a-item-%02d", i);
        gp_test_data_item(pool, tenant_a, cat_a, name, 100 + i, true, id);
    }
    gp_test_data_item(pool, tenant_b, cat_b, "b-secret", 999, true, id);
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

static uint64_t closed_total(void)
{
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(pool, &m), GP_OK);
    uint64_t n = 0;
    for (int i = 0; i < GP_CLOSE_REASON_COUNT_; i++)
        n += m.closed[i];
    return n;
}

/* The backend of the pool's one connection, checked pristine. */
static int pool_backend(void)
{
    gp_conn_t *c;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(pool, "test", -1, &c, &e), GP_OK);
    gp_result_t *r = NULL;
    assert_int_equal(gp_query(c, "SELECT pg_backend_pid(), coalesce(current_setting('growplate.tenant_token', true), ''),"
                             " pg_current_xact_id_if_assigned() IS NULL", 0, NULL, &r, &e), GP_OK);
    int32_t pid = 0;
    const char *token = NULL;
    bool no_xid = false;
    assert_int_equal(gp_get_int32(r, 0, 0, &pid), GP_OK);
    assert_int_equal(gp_get_text(r, 0, 1, &token, NULL), GP_OK);
    assert_string_equal(token, "");
    assert_int_equal(gp_get_bool(r, 0, 2, &no_xid), GP_OK);
    assert_true(no_xid);
    gp_result_free(r);
    gp_pool_release(c);
    return pid;
}

static void expect_ok(gp_status_t st, const gp_error_t *e)
{
    if (st != GP_OK)
        fprintf(stderr, "unexpected: %s: %s (%s)\n", gp_strerror(st), e->message, e->sqlstate);
    assert_int_equal(st, GP_OK);
}

typedef struct job {
    const char *sql;
    int nparams;
    const gp_value_t *params;
    int read_max;          /* stop after this many rows (0: to the end) */
    int64_t rows;
    int64_t sum;
    bool saw_other;        /* a row of another tenant's */
    gp_status_t next_st, close_st;
    gp_error_t err;
} job_t;

static gp_status_t stream_fn(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    job_t *j = ud;
    gp_stream_t *s = NULL;
    gp_status_t st = gp_tenant_tx_stream_open(tx, j->sql, j->nparams, j->params, &s, err);
    if (st != GP_OK)
        return st;
    for (;;) {
        const gp_result_t *row = NULL;
        j->next_st = gp_stream_next(s, &row, &j->err);
        if (j->next_st != GP_OK || !row)
            break;
        assert_int_equal(gp_result_rows(row), 1);
        const char *name = NULL;
        int32_t price = 0;
        assert_int_equal(gp_get_text(row, 0, 0, &name, NULL), GP_OK);
        assert_int_equal(gp_get_int32(row, 0, 1, &price), GP_OK);
        if (strncmp(name, "a-", 2) != 0)
            j->saw_other = true;
        j->rows++;
        j->sum += price;
        if (j->read_max && j->rows == j->read_max)
            break;
    }
    j->close_st = gp_stream_close(s, err);
    return j->next_st != GP_OK ? j->next_st : j->close_st;
}

static void test_stream_only_own_rows(void **state)
{
    (void)state;
    int pid = pool_backend();
    gp_error_t e;
    job_t j = {.sql = "SELECT name, price_cents FROM public.menu_items ORDER BY name"};
    expect_ok(gp_tenant_run(pool, tenant_a, NULL, stream_fn, &j, NULL, &e), &e);
    assert_int_equal(j.rows, 30);
    assert_false(j.saw_other);
    /* Asking for B's rows by id: none. */
    gp_value_t b = gp_uuid_str(tenant_b);
    job_t k = {.sql = "SELECT name, price_cents FROM public.menu_items WHERE tenant_id = $1", .nparams = 1, .params = &b};
    expect_ok(gp_tenant_run(pool, tenant_a, NULL, stream_fn, &k, NULL, &e), &e);
    assert_int_equal(k.rows, 0);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM public.menu_items WHERE tenant_id = '%s'", tenant_b);
    assert_int_equal(admin_count(sql), 1); /* there, but hidden */
    assert_int_equal(pool_backend(), pid);
}

static void test_stream_long_result_to_the_end(void **state)
{
    (void)state;
    int pid = pool_backend();
    gp_conn_t *c;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(pool, "test", -1, &c, &e), GP_OK);
    gp_stream_t *s = NULL;
    expect_ok(gp_stream_open(c, "SELECT g::bigint FROM generate_series(1, $1::int) g", 1,
                             (gp_value_t[]){gp_int32(200000)}, &s, &e), &e);
    int64_t sum = 0, n = 0;
    const gp_result_t *row;
    while (gp_stream_next(s, &row, &e) == GP_OK && row) {
        int64_t v;
        assert_int_equal(gp_result_rows(row), 1);
        assert_int_equal(gp_get_int64(row, 0, 0, &v), GP_OK);
        sum += v;
        n++;
    }
    assert_int_equal(e.status, GP_OK);
    assert_int_equal(n, 200000);
    assert_int_equal(gp_stream_rows(s), 200000);
    assert_true(sum == INT64_C(200000) * 200001 / 2);
    /* After the end, next keeps saying "end". */
    assert_int_equal(gp_stream_next(s, &row, &e), GP_OK);
    assert_null(row);
    assert_int_equal(gp_stream_close(s, &e), GP_OK);
    /* The connection is usable at once. */
    int64_t one = 0;
    assert_int_equal(gp_exec(c, "SELECT 1", 0, NULL, &one, &e), GP_OK);
    gp_pool_release(c);
    assert_int_equal(pool_backend(), pid);
}

static void test_stream_closed_early(void **state)
{
    (void)state;
    int pid = pool_backend();
    uint64_t closed = closed_total();
    gp_conn_t *c;
    gp_error_t e;
    /* Outside a transaction: a result far too long to wait for. */
    assert_int_equal(gp_pool_acquire(pool, "test", -1, &c, &e), GP_OK);
    gp_stream_t *s = NULL;
    expect_ok(gp_stream_open(c, "SELECT generate_series(1, 100000000), pg_catalog.repeat('x', 200)" /* ProjectSet: rows as they are made */, 0, NULL,
                             &s, &e), &e);
    const gp_result_t *row;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(gp_stream_next(s, &row, &e), GP_OK);
        assert_non_null(row);
    }
    int64_t t0 = gp__now_ns();
    assert_int_equal(gp_stream_close(s, &e), GP_OK);
    assert_true(gp__now_ns() - t0 < INT64_C(5000000000)); /* canceled, not read to the end */
    int64_t one = 0;
    assert_int_equal(gp_exec(c, "SELECT 1", 0, NULL, &one, &e), GP_OK);
    /* A short result already complete: closed without a cancel. */
    expect_ok(gp_stream_open(c, "SELECT 1 UNION ALL SELECT 2", 0, NULL, &s, &e), &e);
    assert_int_equal(gp_stream_next(s, &row, &e), GP_OK);
    assert_int_equal(gp_stream_close(s, &e), GP_OK);
    gp_pool_release(c);
    assert_int_equal(pool_backend(), pid);

    /* Inside a tenant transaction: the transaction survives the early close. */
    job_t j = {.sql = "SELECT name, price_cents FROM (SELECT name, price_cents, generate_series(1, 10000000) FROM public.menu_items) t",
               .read_max = 2};
    gp_tenant_tx_t *tx = NULL;
    assert_int_equal(gp_pool_acquire(pool, "test", -1, &c, &e), GP_OK);
    expect_ok(gp_tenant_begin(c, tenant_a, NULL, &tx, &e), &e);
    const char *cols[] = {"name"};
    gp_value_t vals[] = {gp_text("kept after an early close")};
    expect_ok(gp_tenant_insert(tx, "menu_categories", 1, cols, vals, NULL, NULL, &e), &e);
    expect_ok(stream_fn(tx, &j, &e), &e);
    assert_int_equal(j.rows, 2);
    int64_t n = 0;
    expect_ok(gp_tenant_tx_exec(tx, "SELECT FROM public.menu_categories WHERE name = 'kept after an early close'", 0,
                                NULL, &n, &e), &e);
    assert_int_equal(n, 1);
    expect_ok(gp_tenant_commit(tx, &e), &e);
    gp_pool_release(c);
    assert_int_equal(admin_count("SELECT count(*) FROM public.menu_categories WHERE name = 'kept after an early close'"), 1);
    assert_int_equal(pool_backend(), pid);
    assert_int_equal(closed_total(), closed);
}

static void test_stream_errors(void **state)
{
    (void)state;
    int pid = pool_backend();
    gp_conn_t *c;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(pool, "test", -1, &c, &e), GP_OK);
    /* At once: the open's error. */
    gp_stream_t *s = (gp_stream_t *)&e;
    assert_int_equal(gp_stream_open(c, "SELEC 1", 0, NULL, &s, &e), GP_ERR_SERVER);
    assert_null(s);
    assert_int_equal(e.klass, GP_ECLASS_SYNTAX);
    /* Mid-stream: the rows before it, then the error, then "failed". */
    expect_ok(gp_stream_open(c, "SELECT 10 / (5 - g) FROM generate_series(1, 10) g", 0, NULL, &s, &e), &e);
    const gp_result_t *row;
    int rows = 0;
    gp_status_t st;
    while ((st = gp_stream_next(s, &row, &e)) == GP_OK && row)
        rows++;
    assert_int_equal(st, GP_ERR_SERVER);
    assert_string_equal(e.sqlstate, "22012");
    assert_true(rows <= 4);
    assert_int_equal(gp_stream_next(s, &row, &e), GP_ERR_INVALID);
    assert_int_equal(gp_stream_close(s, &e), GP_OK);
    /* COPY is not streamed. */
    assert_int_equal(gp_stream_open(c, "COPY (SELECT 1) TO STDOUT", 0, NULL, &s, &e), GP_ERR_INVALID);
    /* Bad arguments. */
    assert_int_equal(gp_stream_open(c, NULL, 0, NULL, &s, &e), GP_ERR_INVALID);
    assert_int_equal(gp_stream_next(NULL, &row, &e), GP_ERR_INVALID);
    assert_int_equal(gp_stream_close(NULL, &e), GP_OK);
    int64_t one = 0;
    assert_int_equal(gp_exec(c, "SELECT 1", 0, NULL, &one, &e), GP_OK);
    gp_pool_release(c);
    assert_int_equal(pool_backend(), pid);
}

static void test_stream_backend_killed(void **state)
{
    (void)state;
    int pid = pool_backend();
    uint64_t closed = closed_total();
    gp_conn_t *c;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(pool, "test", -1, &c, &e), GP_OK);
    gp_stream_t *s = NULL;
    expect_ok(gp_stream_open(c, "SELECT generate_series(1, 100000000)", 0, NULL, &s, &e), &e);
    const gp_result_t *row;
    assert_int_equal(gp_stream_next(s, &row, &e), GP_OK);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 5000)", gp_test_conn_pid(c));
    gp_test_admin_exec(sql);
    gp_status_t st;
    while ((st = gp_stream_next(s, &row, &e)) == GP_OK && row)
        ; /* what was buffered, then the break */
    assert_int_equal(st, GP_ERR_CONNECT);
    assert_int_equal(e.klass, GP_ECLASS_CONNECTION);
    assert_int_equal(gp_stream_close(s, &e), GP_ERR_CONNECT);
    gp_pool_release(c);
    assert_int_equal(closed_total(), closed + 1);
    assert_int_not_equal(pool_backend(), pid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_only_own_rows),
        cmocka_unit_test(test_stream_long_result_to_the_end),
        cmocka_unit_test(test_stream_closed_early),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_stream_backend_killed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
