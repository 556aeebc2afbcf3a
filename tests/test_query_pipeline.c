/* test_query_pipeline.c — pipelines on the real server: results in order,
 * a failure in the middle reported precisely (which statement, what became
 * of the others, what was rolled back), parameters copied at add time,
 * reuse, and a prepared statement vanishing between runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_test_conn.h"
#include "pool_internal.h"

static gp_conn_t *conn;

static int setup(void **state)
{
    (void)state;
    /* The application may not create temporary tables: a scratch schema
     * of the owner's, first on this (pool-less) connection's path. */
    gp_test_owner_exec("DROP SCHEMA IF EXISTS gp_test_pipeline CASCADE; CREATE SCHEMA gp_test_pipeline;"
                       "CREATE TABLE gp_test_pipeline.items (id int PRIMARY KEY, name text);"
                       "GRANT USAGE ON SCHEMA gp_test_pipeline TO growplate_app;"
                       "GRANT SELECT, INSERT, UPDATE, DELETE ON gp_test_pipeline.items TO growplate_app;");
    conn = gp_test_conn_open();
    gp_error_t e;
    assert_int_equal(gp_exec(conn, "SET search_path = gp_test_pipeline", 0, NULL, NULL, &e), GP_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_test_conn_close(conn);
    gp_test_owner_exec("DROP SCHEMA IF EXISTS gp_test_pipeline CASCADE");
    return 0;
}

static int64_t count_items(void)
{
    gp_result_t *r;
    gp_error_t e;
    assert_int_equal(gp_query(conn, "SELECT count(*) FROM items", 0, NULL, &r, &e), GP_OK);
    int64_t n;
    assert_int_equal(gp_get_int64(r, 0, 0, &n), GP_OK);
    gp_result_free(r);
    return n;
}

static void add(gp_pipeline_t *p, const char *sql, int n, const gp_value_t *v)
{
    gp_error_t e;
    assert_int_equal(gp_pipeline_add(p, sql, n, v, &e), GP_OK);
}

static void test_results_in_order(void **state)
{
    (void)state;
    gp_pipeline_t *p = gp_pipeline_new();
    assert_non_null(p);
    char name[16];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "item-%d", i);
        /* the buffer is reused: values must be copied when added */
        add(p, "INSERT INTO items VALUES ($1, $2) RETURNING id * 10 AS x, name", GP_ARGS(gp_int32(i), gp_text(name)));
    }
    add(p, "SELECT count(*) FROM items", 0, NULL);
    assert_int_equal(gp_pipeline_count(p), 11);
    gp_error_t e;
    assert_int_equal(gp_pipeline_run(conn, p, &e), GP_OK);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(gp_pipeline_outcome(p, i), GP_STMT_OK);
        const gp_result_t *r = gp_pipeline_result(p, i);
        int32_t x;
        const char *t;
        assert_int_equal(gp_get_int32(r, 0, gp_col(r, "x"), &x), GP_OK);
        assert_int_equal(x, i * 10);
        assert_int_equal(gp_get_text(r, 0, gp_col(r, "name"), &t, NULL), GP_OK);
        snprintf(name, sizeof name, "item-%d", i);
        assert_string_equal(t, name);
        assert_int_equal(gp_result_affected(r), 1);
    }
    int64_t n;
    assert_int_equal(gp_get_int64(gp_pipeline_result(p, 10), 0, 0, &n), GP_OK);
    assert_int_equal(n, 10);
    assert_null(gp_pipeline_result(p, 11));
    assert_int_equal(gp_pipeline_outcome(p, 11), GP_STMT_PENDING);
    gp_pipeline_free(p);
    gp_pipeline_free(NULL);
    assert_int_equal(gp_exec(conn, "DELETE FROM items", 0, NULL, NULL, &e), GP_OK);
}

static void test_failure_in_the_middle_implicit(void **state)
{
    (void)state;
    gp_pipeline_t *p = gp_pipeline_new();
    add(p, "INSERT INTO items VALUES ($1, 'a')", GP_ARGS(gp_int32(1)));
    add(p, "INSERT INTO items VALUES ($1, 'b')", GP_ARGS(gp_int32(2)));
    add(p, "INSERT INTO items VALUES ($1, 'dup')", GP_ARGS(gp_int32(1))); /* unique violation */
    add(p, "INSERT INTO items VALUES ($1, 'c')", GP_ARGS(gp_int32(3)));
    add(p, "SELECT 1", 0, NULL);
    gp_error_t e;
    assert_int_equal(gp_pipeline_run(conn, p, &e), GP_ERR_SERVER);
    assert_int_equal(e.statement_index, 2);
    assert_int_equal(e.klass, GP_ECLASS_UNIQUE);
    assert_string_equal(e.sqlstate, "23505");
    assert_string_equal(e.constraint_name, "items_pkey");
    assert_int_equal(gp_pipeline_outcome(p, 0), GP_STMT_OK);
    assert_int_equal(gp_pipeline_outcome(p, 1), GP_STMT_OK);
    assert_int_equal(gp_pipeline_outcome(p, 2), GP_STMT_FAILED);
    assert_int_equal(gp_pipeline_outcome(p, 3), GP_STMT_SKIPPED);
    assert_int_equal(gp_pipeline_outcome(p, 4), GP_STMT_SKIPPED);
    assert_null(gp_pipeline_result(p, 2));
    assert_null(gp_pipeline_result(p, 3));
    /* one implicit transaction: the statements before the failure were rolled back */
    assert_int_equal(count_items(), 0);
    assert_int_equal(PQtransactionStatus(conn->pg), PQTRANS_IDLE);
    assert_false(conn->discard);
    gp_pipeline_free(p);
}

static void test_failure_in_explicit_transaction(void **state)
{
    (void)state;
    gp_pipeline_t *p = gp_pipeline_new();
    add(p, "BEGIN", 0, NULL);
    add(p, "INSERT INTO items VALUES ($1, 'a')", GP_ARGS(gp_int32(1)));
    add(p, "SELECT 1 / $1", GP_ARGS(gp_int32(0)));
    add(p, "INSERT INTO items VALUES ($1, 'b')", GP_ARGS(gp_int32(2)));
    add(p, "COMMIT", 0, NULL);
    gp_error_t e;
    assert_int_equal(gp_pipeline_run(conn, p, &e), GP_ERR_SERVER);
    assert_int_equal(e.statement_index, 2);
    assert_int_equal(e.klass, GP_ECLASS_DATA);
    assert_int_equal(gp_pipeline_outcome(p, 1), GP_STMT_OK);
    assert_int_equal(gp_pipeline_outcome(p, 4), GP_STMT_SKIPPED);
    /* the failed transaction the pipeline opened was rolled back for us */
    assert_int_equal(PQtransactionStatus(conn->pg), PQTRANS_IDLE);
    assert_int_equal(count_items(), 0);

    /* A syntax error is found when the statement is prepared: same report,
     * and the bad statement is not left in the cache. */
    gp_pipeline_clear(p);
    assert_int_equal(gp_pipeline_count(p), 0);
    add(p, "INSERT INTO items VALUES ($1, 'a')", GP_ARGS(gp_int32(1)));
    add(p, "SELEC oops", 0, NULL);
    add(p, "SELECT 2", 0, NULL);
    assert_int_equal(gp_pipeline_run(conn, p, &e), GP_ERR_SERVER);
    assert_int_equal(e.statement_index, 1);
    assert_int_equal(e.klass, GP_ECLASS_SYNTAX);
    assert_int_equal(gp_pipeline_outcome(p, 0), GP_STMT_OK);
    assert_int_equal(gp_pipeline_outcome(p, 1), GP_STMT_FAILED);
    assert_int_equal(gp_pipeline_outcome(p, 2), GP_STMT_SKIPPED);
    assert_int_equal(count_items(), 0);
    assert_int_equal(gp_pipeline_run(conn, p, &e), GP_ERR_SERVER); /* and again, identically */
    assert_int_equal(e.statement_index, 1);

    /* Inside the caller's own transaction the failed transaction stays for
     * the caller to roll back. */
    gp_pipeline_clear(p);
    add(p, "SELECT 1 / $1", GP_ARGS(gp_int32(0)));
    assert_int_equal(gp_tx_begin(conn, NULL, &e), GP_OK);
    assert_int_equal(gp_pipeline_run(conn, p, &e), GP_ERR_SERVER);
    assert_int_equal(e.statement_index, 0);
    assert_int_equal(PQtransactionStatus(conn->pg), PQTRANS_INERROR);
    assert_int_equal(gp_tx_rollback(conn, &e), GP_OK);
    gp_pipeline_free(p);
}

static void test_reuse_and_vanished_statements(void **state)
{
    (void)state;
    gp_pipeline_t *p = gp_pipeline_new();
    add(p, "BEGIN", 0, NULL);
    add(p, "SELECT $1::int8 + 1", GP_ARGS(gp_int64(1)));
    add(p, "COMMIT", 0, NULL);
    gp_error_t e;
    for (int i = 0; i < 3; i++) {
        if (i == 2) /* behind the layer's back */
            PQclear(PQexec(conn->pg, "DEALLOCATE ALL"));
        assert_int_equal(gp_pipeline_run(conn, p, &e), GP_OK);
        int64_t v;
        assert_int_equal(gp_get_int64(gp_pipeline_result(p, 1), 0, 0, &v), GP_OK);
        assert_true(v == 2);
        assert_int_equal(PQtransactionStatus(conn->pg), PQTRANS_IDLE);
    }
    gp_result_t *r;
    assert_int_equal(gp_query(conn, "SELECT count(*) FROM pg_prepared_statements", 0, NULL, &r, &e), GP_OK);
    int64_t n;
    assert_int_equal(gp_get_int64(r, 0, 0, &n), GP_OK);
    assert_true(n >= 3 && n <= 4); /* BEGIN, SELECT, COMMIT (+ this count query) */
    gp_result_free(r);

    /* validation at add time names the parameter; nothing is added */
    assert_int_equal(gp_pipeline_add(p, "SELECT $1", GP_ARGS(gp_text("\xFF")), &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "$1"));
    assert_int_equal(e.statement_index, 3);
    assert_int_equal(gp_pipeline_count(p), 3);
    gp_pipeline_clear(p);
    assert_int_equal(gp_pipeline_run(conn, p, &e), GP_ERR_INVALID); /* empty */

    /* unnamed statements only */
    assert_int_equal(gp_query_set_statement_cache(0), GP_OK);
    add(p, "SELECT $1::text", GP_ARGS(gp_text("x")));
    add(p, "SELECT $1::int4", GP_ARGS(gp_int32(5)));
    assert_int_equal(gp_pipeline_run(conn, p, &e), GP_OK);
    int32_t x;
    assert_int_equal(gp_get_int32(gp_pipeline_result(p, 1), 0, 0, &x), GP_OK);
    assert_int_equal(x, 5);
    assert_int_equal(gp_query_set_statement_cache(GP_STATEMENT_CACHE_DEFAULT), GP_OK);
    gp_pipeline_free(p);
}

/* What a statement did to the session is judged from the tag the server
 * reports for it, with the statement cache on and off, on every run of a
 * reused pipeline. */
static void test_session_state_flag(void **state)
{
    (void)state;
    gp_error_t e;
    for (int cache = 0; cache < 2; cache++) {
        assert_int_equal(gp_query_set_statement_cache(cache ? GP_STATEMENT_CACHE_DEFAULT : 0), GP_OK);
        for (int i = 0; i < 2; i++) {
            gp_pipeline_t *p = gp_pipeline_new();
            assert_non_null(p);
            add(p, "SELECT 1", 0, NULL);
            for (int run = 0; run < 2; run++) {
                conn->reset_needed = conn->tainted = false;
                assert_int_equal(gp_pipeline_run(conn, p, &e), GP_OK);
                assert_false(conn->reset_needed);
                assert_true(conn->tainted); /* caller SQL, on every run */
            }
            add(p, "/* x */ SET application_name = 'pipelined'", 0, NULL);
            assert_int_equal(gp_pipeline_run(conn, p, &e), GP_OK);
            assert_true(conn->reset_needed);
            conn->reset_needed = conn->tainted = false;
            gp_pipeline_free(p);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_in_order),
        cmocka_unit_test(test_failure_in_the_middle_implicit),
        cmocka_unit_test(test_failure_in_explicit_transaction),
        cmocka_unit_test(test_reuse_and_vanished_statements),
        cmocka_unit_test(test_session_state_flag),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
