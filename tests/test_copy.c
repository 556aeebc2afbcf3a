/* test_copy.c — COPY FROM STDIN / TO STDOUT, tenant-scoped, on the real
 * server: tenant A copies out only its own rows (table and query form, text
 * and binary) and imports only into its own menu (a row aimed at tenant B's
 * category is refused, and the owner sees B unchanged); every failure path
 * — a producer or consumer that fails, a bad row, a COPY into a table with
 * row-level security, a statement that is not the COPY expected, a backend
 * terminated mid-COPY in either direction — gives a classified error and
 * leaves the connection either back in the pool pristine (same backend, no
 * transaction, no tenant setting) or closed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_scratch.h"
#include "gp_test.h"
#include "gp_test_conn.h"
#include "gp_test_data.h"

static gp_scratch_t scratch;
static gp_config_t cfg;
static gp_pool_t *pool;
static char tenant_a[37], tenant_b[37], cat_a[37], cat_b[37];

static int64_t owner_count(const char *sql)
{
    PGconn *c = gp_scratch_connect(scratch.admin); /* the superuser: the owner is subject to FORCEd policies */
    char buf[32];
    int64_t n = atoll(gp_scratch_value(c, sql, buf, sizeof buf));
    PQfinish(c);
    return n;
}

static int64_t items_of(const char *tenant)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM public.menu_items WHERE tenant_id = '%s'", tenant);
    return owner_count(sql);
}

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "copy");
    gp_scratch_migrate(&scratch);
    gp_scratch_config(&scratch, &cfg);
    cfg.db.pool_min = 0;
    cfg.db.pool_max = 1; /* every call gets the same connection back, unless one was closed */
    cfg.db.acquire_timeout_ms = 5000;
    cfg.db.query_timeout_ms = 10000;
    assert_int_equal(gp_pool_create(&cfg, &pool, NULL), GP_OK);
    gp_test_data_tenant(pool, "copy-a", tenant_a);
    gp_test_data_tenant(pool, "copy-b", tenant_b);
    gp_test_data_category(pool, tenant_a, "Mains", 1, cat_a);
    gp_test_data_category(pool, tenant_b, "Mains", 1, cat_b);
    char id[37];
    gp_test_data_item(pool, tenant_a, cat_a, "a-soup", 500, true, id);
    gp_test_data_item(pool, tenant_a, cat_a, "a-stew", 900, true, id);
    gp_test_data_item(pool, tenant_b, cat_b, "b-secret-dish", 1200, true, id);
    gp_test_data_item(pool, tenant_b, cat_b, "b-other-dish", 1300, false, id);
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

/* The backend of the pool's one connection, and that its session is
 * pristine: no transaction, no tenant secret, no listen, nothing held. */
static int pool_backend(void)
{
    gp_conn_t *c;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(pool, "test", -1, &c, &e), GP_OK);
    gp_result_t *r = NULL;
    gp_status_t st = gp_query(c, "SELECT pg_backend_pid(), coalesce(current_setting('growplate.tenant_token', true), ''),"
                              " (SELECT count(*) FROM pg_listening_channels())::int, pg_current_xact_id_if_assigned() IS NULL",
                              0, NULL, &r, &e);
    if (st != GP_OK)
        fprintf(stderr, "pool_backend: %s\n", e.message);
    assert_int_equal(st, GP_OK);
    int32_t pid = 0, listens = -1;
    const char *token = NULL;
    bool no_xid = false;
    assert_int_equal(gp_get_int32(r, 0, 0, &pid), GP_OK);
    assert_int_equal(gp_get_text(r, 0, 1, &token, NULL), GP_OK);
    assert_string_equal(token, "");
    assert_int_equal(gp_get_int32(r, 0, 2, &listens), GP_OK);
    assert_int_equal(listens, 0);
    assert_int_equal(gp_get_bool(r, 0, 3, &no_xid), GP_OK);
    assert_true(no_xid);
    gp_result_free(r);
    gp_pool_release(c);
    return pid;
}

/* ---- callbacks ------------------------------------------------------------- */

typedef struct sink {
    char data[1 << 16];
    size_t len;
    int calls;
    int stop_after;   /* > 0: fail on that call */
    int kill_on;      /* > 0: terminate the backend on that call */
    int pid;
} sink_t;

static void terminate(int pid)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 5000)", pid);
    gp_test_admin_exec(sql);
}

static gp_status_t to_sink(void *ud, const char *data, size_t len, gp_error_t *err)
{
    sink_t *s = ud;
    s->calls++;
    if (s->kill_on && s->calls == s->kill_on)
        terminate(s->pid);
    if (s->stop_after && s->calls == s->stop_after) {
        gp_error_clear(err);
        snprintf(err->message, sizeof err->message, "the sink is full");
        return GP_ERR_RANGE;
    }
    if (s->len + len < sizeof s->data) {
        memcpy(s->data + s->len, data, len);
        s->len += len;
    }
    return GP_OK;
}

typedef struct source {
    const char *data;
    size_t len, off;
    int calls;
    int fail_on;   /* > 0: fail on that call */
    int kill_on;   /* > 0: terminate the backend on that call (then keep sending) */
    int repeat;    /* > 0: send data that many times (a large COPY) */
    int pid;
} source_t;

static gp_status_t from_source(void *ud, char *buf, size_t cap, size_t *len, gp_error_t *err)
{
    source_t *s = ud;
    s->calls++;
    if (s->kill_on && s->calls == s->kill_on)
        terminate(s->pid);
    if (s->fail_on && s->calls == s->fail_on) {
        snprintf(err->message, sizeof err->message, "the upload was interrupted");
        return GP_ERR_IO;
    }
    if (s->off == s->len && s->repeat > 1) {
        s->repeat--;
        s->off = 0;
    }
    size_t n = s->len - s->off < cap ? s->len - s->off : cap;
    memcpy(buf, s->data + s->off, n);
    s->off += n;
    *len = n;
    return GP_OK;
}

/* ---- tenant-scoped runs ------------------------------------------------------ */

typedef struct job {
    const char *sql;
    sink_t *sink;
    source_t *source;
    int64_t rows;
    gp_status_t st;
    gp_error_t err;
    int pid;
} job_t;

static gp_status_t backend_pid(gp_tenant_tx_t *tx, int *pid, gp_error_t *err)
{
    gp_result_t *r = NULL;
    gp_status_t st = gp_tenant_tx_query(tx, "SELECT pg_backend_pid()", 0, NULL, &r, err);
    int32_t v = 0;
    if (st == GP_OK)
        gp_get_int32(r, 0, 0, &v);
    gp_result_free(r);
    *pid = v;
    return st;
}

static gp_status_t copy_fn(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    job_t *j = ud;
    gp_status_t st = backend_pid(tx, &j->pid, err);
    if (st != GP_OK)
        return st;
    if (j->sink)
        j->sink->pid = j->pid;
    if (j->source)
        j->source->pid = j->pid;
    j->st = j->sink ? gp_tenant_tx_copy_out(tx, j->sql, to_sink, j->sink, &j->rows, &j->err)
                    : gp_tenant_tx_copy_in(tx, j->sql, from_source, j->source, &j->rows, &j->err);
    if (j->st != GP_OK)
        *err = j->err;
    return j->st;
}

static gp_status_t run_copy(const char *tenant, job_t *j)
{
    gp_error_t e;
    gp_tx_opts_t opts = {.max_attempts = 1};
    return gp_tenant_run(pool, tenant, &opts, copy_fn, j, NULL, &e);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_copy_out_sees_only_own_rows(void **state)
{
    (void)state;
    int pid = pool_backend();
    static const char *const sqls[] = {
        "COPY public.menu_items (name, price_cents) TO STDOUT",                       /* table: policies apply */
        "COPY (SELECT name, price_cents FROM public.menu_items ORDER BY name) TO STDOUT", /* query */
        "COPY (SELECT name FROM public.menu_items WHERE tenant_id <> growplate_tenant()) TO STDOUT",
    };
    for (size_t i = 0; i < 3; i++) {
        sink_t *s = calloc(1, sizeof *s);
        job_t j = {.sql = sqls[i], .sink = s};
        assert_int_equal(run_copy(tenant_a, &j), GP_OK);
        s->data[s->len] = 0;
        assert_null(strstr(s->data, "b-"));
        if (i < 2) {
            assert_int_equal(j.rows, 2);
            assert_non_null(strstr(s->data, "a-soup\t500\n"));
            assert_non_null(strstr(s->data, "a-stew\t900\n"));
            assert_int_equal(s->calls, 2); /* one row per call in text format */
        } else {
            assert_int_equal(j.rows, 0); /* asking for other tenants' rows gets none */
        }
        free(s);
    }
    /* The owner sees B's rows are there: they were hidden, not missing. */
    assert_int_equal(items_of(tenant_b), 2);
    assert_int_equal(pool_backend(), pid);
}

static void test_copy_in_imports_for_own_tenant(void **state)
{
    (void)state;
    int pid = pool_backend();
    uint64_t closed = closed_total();
    int64_t a0 = items_of(tenant_a), b0 = items_of(tenant_b);
    char text[4096];
    size_t n = 0;
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s\timported %d\t%d\n", cat_a, i, 100 + i);
    source_t src = {.data = text, .len = n};
    job_t j = {.sql = "COPY public.menu_items_import (category_id, name, price_cents) FROM STDIN", .source = &src};
    assert_int_equal(run_copy(tenant_a, &j), GP_OK);
    assert_int_equal(j.rows, 50);
    assert_int_equal(items_of(tenant_a), a0 + 50);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM public.menu_items WHERE tenant_id = '%s' AND name LIKE 'imported %%'"
             " AND category_id = '%s' AND available", tenant_a, cat_a);
    assert_int_equal(owner_count(sql), 50);

    /* The attack: A aims rows at B's category (its id known somehow). */
    n = (size_t)snprintf(text, sizeof text, "%s\tsmuggled\t1\n", cat_b);
    source_t evil = {.data = text, .len = n};
    job_t k = {.sql = "COPY public.menu_items_import (category_id, name, price_cents) FROM STDIN", .source = &evil};
    assert_int_not_equal(run_copy(tenant_a, &k), GP_OK);
    assert_int_equal(k.st, GP_ERR_SERVER);
    assert_int_equal(k.err.klass, GP_ECLASS_FOREIGN_KEY); /* (tenant A, B's category) does not exist */
    assert_int_equal(items_of(tenant_b), b0);
    assert_int_equal(items_of(tenant_a), a0 + 50);
    assert_int_equal(owner_count("SELECT count(*) FROM public.menu_items WHERE name = 'smuggled'"), 0);

    /* Without a tenant context (a plain lease, no tenant): refused. */
    gp_conn_t *c;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(pool, "test", -1, &c, &e), GP_OK);
    n = (size_t)snprintf(text, sizeof text, "%s\tno tenant\t1\n", cat_a);
    source_t none = {.data = text, .len = n};
    int64_t rows = -1;
    assert_int_equal(gp_copy_in(c, "COPY public.menu_items_import (category_id, name, price_cents) FROM STDIN",
                                from_source, &none, &rows, &e), GP_ERR_SERVER);
    assert_int_equal(rows, 0);
    gp_pool_release(c);
    assert_int_equal(owner_count("SELECT count(*) FROM public.menu_items WHERE name = 'no tenant'"), 0);
    assert_int_equal(pool_backend(), pid);
    assert_int_equal(closed_total(), closed);
}

static void test_copy_binary_round_trip(void **state)
{
    (void)state;
    int pid = pool_backend();
    sink_t *s = calloc(1, sizeof *s);
    char sql[300];
    snprintf(sql, sizeof sql, "COPY (SELECT '%s'::uuid, 'bin ' || name, price_cents + 1 FROM public.menu_items"
             " WHERE name LIKE 'a-%%' ORDER BY name) TO STDOUT WITH (FORMAT binary)", cat_a);
    job_t j = {.sql = sql, .sink = s};
    assert_int_equal(run_copy(tenant_a, &j), GP_OK);
    assert_int_equal(j.rows, 2);
    assert_true(s->len > 19);
    assert_memory_equal(s->data, "PGCOPY\n\377\r\n\0", 11); /* the binary signature */
    assert_null(memmem(s->data, s->len, "b-", 2));
    source_t src = {.data = s->data, .len = s->len};
    job_t k = {.sql = "COPY public.menu_items_import (category_id, name, price_cents) FROM STDIN WITH (FORMAT binary)",
               .source = &src};
    assert_int_equal(run_copy(tenant_a, &k), GP_OK);
    assert_int_equal(k.rows, 2);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM public.menu_items WHERE tenant_id = '%s' AND "
             "((name = 'bin a-soup' AND price_cents = 501) OR (name = 'bin a-stew' AND price_cents = 901))", tenant_a);
    assert_int_equal(owner_count(sql), 2);
    free(s);
    assert_int_equal(pool_backend(), pid);
}

static void test_copy_failures_leave_connection_clean(void **state)
{
    (void)state;
    int pid = pool_backend();
    uint64_t closed = closed_total();
    int64_t a0 = items_of(tenant_a);
    const char *import = "COPY public.menu_items_import (category_id, name, price_cents) FROM STDIN";
    char text[256];
    size_t n = (size_t)snprintf(text, sizeof text, "%s\tfailing row\t1\n", cat_a);

    /* A producer that fails on its second call: nothing is kept. */
    source_t src = {.data = text, .len = n, .fail_on = 2};
    job_t j = {.sql = import, .source = &src};
    assert_int_equal(run_copy(tenant_a, &j), GP_ERR_IO);
    assert_string_equal(j.err.message, "the upload was interrupted");
    assert_int_equal(j.rows, 0);

    /* A bad row: the server's error, with the line. */
    static const char bad[] = "not-a-uuid\tx\t1\n";
    source_t badsrc = {.data = bad, .len = sizeof bad - 1};
    job_t k = {.sql = import, .source = &badsrc};
    assert_int_equal(run_copy(tenant_a, &k), GP_ERR_SERVER);
    assert_string_equal(k.err.sqlstate, "22P02");
    assert_int_equal(k.err.klass, GP_ECLASS_DATA);

    /* A bad row first, then many more: the server stops it early or at the end, never hangs. */
    char big[8192];
    size_t bn = (size_t)snprintf(big, sizeof big, "%s", bad);
    while (bn + 64 < sizeof big)
        bn += (size_t)snprintf(big + bn, sizeof big - bn, "%s\tfiller\t1\n", cat_a);
    source_t bigsrc = {.data = big, .len = bn, .repeat = 200}; /* 1.6 MB */
    job_t k2 = {.sql = import, .source = &bigsrc};
    assert_int_equal(run_copy(tenant_a, &k2), GP_ERR_SERVER);
    assert_string_equal(k2.err.sqlstate, "22P02");

    /* COPY FROM into a table with row-level security: the server refuses it. */
    source_t direct = {.data = text, .len = n};
    job_t l = {.sql = "COPY public.menu_items (category_id, name, price_cents) FROM STDIN", .source = &direct};
    assert_int_equal(run_copy(tenant_a, &l), GP_ERR_SERVER);
    assert_string_equal(l.err.sqlstate, "0A000");

    /* A consumer that stops after the first row of a long COPY. */
    sink_t *s = calloc(1, sizeof *s);
    s->stop_after = 1;
    job_t m = {.sql = "COPY (SELECT generate_series(1, 20000000), repeat('x', 100)) TO STDOUT", .sink = s};
    assert_int_equal(run_copy(tenant_a, &m), GP_ERR_RANGE);
    assert_string_equal(m.err.message, "the sink is full");
    free(s);

    /* Statements that are not the COPY expected. */
    gp_conn_t *c;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(pool, "test", -1, &c, &e), GP_OK);
    source_t any = {.data = text, .len = n};
    assert_int_equal(gp_copy_in(c, "SELECT 1", from_source, &any, NULL, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "COPY ... FROM STDIN"));
    assert_int_equal(gp_copy_in(c, "COPY (SELECT 1) TO STDOUT", from_source, &any, NULL, &e), GP_ERR_INVALID);
    sink_t *s2 = calloc(1, sizeof *s2);
    assert_int_equal(gp_copy_out(c, import, to_sink, s2, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_copy_out(c, "COPY (SELECT 1) TO STDOUT; SELECT 2", to_sink, s2, NULL, &e), GP_ERR_SERVER);
    assert_string_equal(e.sqlstate, "42601"); /* one statement only */
    assert_int_equal(gp_copy_out(c, NULL, to_sink, s2, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_copy_out(c, "COPY (SELECT 7) TO STDOUT", to_sink, s2, NULL, &e), GP_OK);
    assert_int_equal(s2->len, 2);
    assert_memory_equal(s2->data, "7\n", 2);
    free(s2);
    gp_pool_release(c);

    assert_int_equal(items_of(tenant_a), a0);
    assert_int_equal(pool_backend(), pid);
    assert_int_equal(closed_total(), closed);
}

static void test_copy_backend_killed_mid_copy(void **state)
{
    (void)state;
    int pid = pool_backend();
    uint64_t closed = closed_total();
    int64_t a0 = items_of(tenant_a);
    char text[8192];
    size_t n = 0;
    while (n + 64 < sizeof text)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s\tdoomed\t1\n", cat_a);
    source_t src = {.data = text, .len = n, .kill_on = 3, .repeat = 400};
    job_t j = {.sql = "COPY public.menu_items_import (category_id, name, price_cents) FROM STDIN", .source = &src};
    assert_int_equal(run_copy(tenant_a, &j), GP_ERR_CONNECT);
    assert_int_equal(j.err.klass, GP_ECLASS_CONNECTION);
    assert_int_equal(items_of(tenant_a), a0);
    assert_int_equal(closed_total(), closed + 1); /* the broken connection was closed, not reused */
    int pid2 = pool_backend();
    assert_int_not_equal(pid2, pid);

    sink_t *s = calloc(1, sizeof *s);
    s->kill_on = 2;
    job_t k = {.sql = "COPY (SELECT generate_series(1, 50000000)) TO STDOUT", .sink = s};
    assert_int_equal(run_copy(tenant_a, &k), GP_ERR_CONNECT);
    free(s);
    assert_int_equal(closed_total(), closed + 2);
    assert_int_not_equal(pool_backend(), pid2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_out_sees_only_own_rows),
        cmocka_unit_test(test_copy_in_imports_for_own_tenant),
        cmocka_unit_test(test_copy_binary_round_trip),
        cmocka_unit_test(test_copy_failures_leave_connection_clean),
        cmocka_unit_test(test_copy_backend_killed_mid_copy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
