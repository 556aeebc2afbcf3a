/* test_query.c — parameterised queries and typed results against the real
 * server: every type both ways (NULLs, extremes, unicode, quotes and
 * backslashes, large bytea), getter misuse, parameter validation, the
 * prepared-statement cache (bounded, unnamed-only mode, statements that
 * vanish on the server) and session-state tracking. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_test_conn.h"
#include "pool_internal.h"
#include "query_internal.h"

static gp_conn_t *conn;

static int setup(void **state)
{
    (void)state;
    conn = gp_test_conn_open();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_test_conn_close(conn);
    gp_query_set_statement_cache(GP_STATEMENT_CACHE_DEFAULT);
    return 0;
}

static gp_result_t *q(const char *sql, int n, const gp_value_t *params)
{
    gp_result_t *r = NULL;
    gp_error_t e;
    gp_status_t st = gp_query(conn, sql, n, params, &r, &e);
    if (st != GP_OK)
        fprintf(stderr, "query failed: %s (%s) SQLSTATE %s\n  %s\n", gp_strerror(st), e.message, e.sqlstate, sql);
    assert_int_equal(st, GP_OK);
    assert_non_null(r);
    return r;
}

static int64_t count_prepared(void)
{
    PGresult *r = PQexec(conn->pg, "SELECT count(*) FROM pg_prepared_statements");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    int64_t n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

static void test_integers_and_doubles(void **state)
{
    (void)state;
    gp_result_t *r = q("SELECT $1 AS a, $2 AS b, $3 AS c, $4 AS d, $5 AS e, $6 AS f, $7 AS g, $8 AS h, $9 AS i, "
                       "$10::float4 AS j, $11 AS k, $12 AS l",
                       GP_ARGS(gp_int16(INT16_MIN), gp_int16(INT16_MAX), gp_int32(INT32_MIN), gp_int32(INT32_MAX),
                               gp_int64(INT64_MIN), gp_int64(INT64_MAX), gp_double(INFINITY), gp_double(-INFINITY),
                               gp_double(NAN), gp_double(1.5), gp_double(-0.0), gp_bool(true)));
    assert_int_equal(gp_result_rows(r), 1);
    assert_int_equal(gp_result_columns(r), 12);
    int16_t s; int32_t i; int64_t l; double d; bool b;
    assert_int_equal(gp_get_int16(r, 0, 0, &s), GP_OK); assert_int_equal(s, INT16_MIN);
    assert_int_equal(gp_get_int16(r, 0, 1, &s), GP_OK); assert_int_equal(s, INT16_MAX);
    assert_int_equal(gp_get_int32(r, 0, 2, &i), GP_OK); assert_int_equal(i, INT32_MIN);
    assert_int_equal(gp_get_int32(r, 0, 3, &i), GP_OK); assert_int_equal(i, INT32_MAX);
    assert_int_equal(gp_get_int64(r, 0, 4, &l), GP_OK); assert_true(l == INT64_MIN);
    assert_int_equal(gp_get_int64(r, 0, 5, &l), GP_OK); assert_true(l == INT64_MAX);
    /* widening reads are fine, narrowing ones are type errors */
    assert_int_equal(gp_get_int64(r, 0, 0, &l), GP_OK); assert_true(l == INT16_MIN);
    assert_int_equal(gp_get_int32(r, 0, 1, &i), GP_OK); assert_int_equal(i, INT16_MAX);
    assert_int_equal(gp_get_int32(r, 0, 5, &i), GP_ERR_TYPE);
    assert_int_equal(gp_get_int16(r, 0, 2, &s), GP_ERR_TYPE);
    assert_int_equal(gp_get_double(r, 0, 6, &d), GP_OK); assert_true(isinf(d) && d > 0);
    assert_int_equal(gp_get_double(r, 0, 7, &d), GP_OK); assert_true(isinf(d) && d < 0);
    assert_int_equal(gp_get_double(r, 0, 8, &d), GP_OK); assert_true(isnan(d));
    assert_int_equal(gp_get_double(r, 0, 9, &d), GP_OK); assert_true(d == 1.5); /* real */
    assert_int_equal(gp_get_double(r, 0, 10, &d), GP_OK); assert_true(d == 0 && signbit(d));
    assert_int_equal(gp_get_bool(r, 0, 11, &b), GP_OK); assert_true(b);
    assert_int_equal(gp_get_double(r, 0, 5, &d), GP_ERR_TYPE);
    assert_int_equal(gp_get_bool(r, 0, 5, &b), GP_ERR_TYPE);
    assert_int_equal(gp_result_column_type(r, 5), GP_TYPE_INT64);
    assert_int_equal(gp_result_column_type(r, 9), GP_TYPE_DOUBLE);
    gp_result_free(r);
}

static void test_text_unicode_quotes(void **state)
{
    (void)state;
    const char *tricky = "it's \"quoted\" \\ back\\slash '); DROP TABLE x; --";
    const char *uni = "naïve café — 日本語 🍜 \xF0\x9F\x98\x80";
    gp_result_t *r = q("SELECT $1 AS empty, $2 AS tricky, $3 AS uni, length($3) AS chars, $4::varchar AS vc, "
                       "'x'::char(3) AS bp, current_user::name AS nm",
                       GP_ARGS(gp_text(""), gp_text(tricky), gp_text(uni), gp_textn("abcdef", 3)));
    const char *t;
    size_t len;
    assert_int_equal(gp_get_text(r, 0, gp_col(r, "empty"), &t, &len), GP_OK);
    assert_string_equal(t, "");
    assert_int_equal(len, 0);
    assert_int_equal(gp_get_text(r, 0, gp_col(r, "tricky"), &t, NULL), GP_OK);
    assert_string_equal(t, tricky);
    assert_int_equal(gp_get_text(r, 0, gp_col(r, "uni"), &t, &len), GP_OK);
    assert_string_equal(t, uni);
    assert_int_equal(len, strlen(uni));
    int32_t chars;
    assert_int_equal(gp_get_int32(r, 0, gp_col(r, "chars"), &chars), GP_OK);
    assert_int_equal(chars, 20);
    assert_int_equal(gp_get_text(r, 0, gp_col(r, "vc"), &t, NULL), GP_OK);
    assert_string_equal(t, "abc");
    assert_int_equal(gp_get_text(r, 0, gp_col(r, "bp"), &t, NULL), GP_OK);
    assert_string_equal(t, "x  ");
    assert_int_equal(gp_get_text(r, 0, gp_col(r, "nm"), &t, NULL), GP_OK);
    assert_string_equal(t, "growplate_app");
    int64_t l;
    assert_int_equal(gp_get_int64(r, 0, gp_col(r, "uni"), &l), GP_ERR_TYPE);
    gp_result_free(r);
}

static void test_uuid_time_date(void **state)
{
    (void)state;
    gp_uuid_t u;
    assert_int_equal(gp_uuid_parse("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", &u), GP_OK);
    assert_int_equal(gp_uuid_parse("{a0eebc999c0b4ef8bb6d6bb9bd380a11}", &u), GP_OK);
    assert_int_equal(gp_uuid_parse("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", &u), GP_ERR_INVALID);
    assert_int_equal(gp_uuid_parse("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", &u), GP_OK);
    int32_t d2024, dleap, dbc;
    assert_int_equal(gp_date_from_ymd(2024, 2, 29, &d2024), GP_OK);
    assert_int_equal(gp_date_from_ymd(2023, 2, 29, &dleap), GP_ERR_RANGE);
    assert_int_equal(gp_date_from_ymd(-99, 3, 1, &dbc), GP_OK); /* 100 BC */
    int64_t ts = INT64_C(1700000000123456); /* 2023-11-14 22:13:20.123456 UTC */
    gp_result_t *r = q("SELECT $1 AS u, $2::text AS ut, $3 AS ts, $3::text AS tst, $4 AS d, $4::text AS dt, "
                       "$5 AS inf, $6 AS ninf, 'infinity'::date AS dinf, $7 AS bc, $8 AS pre1970, $9 AS ut2",
                       GP_ARGS(gp_uuid(u), gp_uuid(u), gp_timestamptz(ts), gp_date(d2024),
                               gp_timestamptz(GP_TIMESTAMP_INFINITY), gp_timestamptz(GP_TIMESTAMP_NEG_INFINITY),
                               gp_date(dbc), gp_timestamptz(-INT64_C(1000000)), gp_uuid_str(
                                   "{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}")));
    gp_uuid_t u2;
    char buf[37];
    const char *t;
    assert_int_equal(gp_get_uuid(r, 0, 0, &u2), GP_OK);
    assert_memory_equal(u.bytes, u2.bytes, 16);
    assert_string_equal(gp_uuid_format(&u2, buf), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_int_equal(gp_get_text(r, 0, 1, &t, NULL), GP_OK);
    assert_string_equal(t, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_int_equal(gp_get_uuid(r, 0, 11, &u2), GP_OK);
    assert_memory_equal(u.bytes, u2.bytes, 16);
    int64_t got;
    assert_int_equal(gp_get_timestamptz(r, 0, 2, &got), GP_OK);
    assert_true(got == ts);
    int32_t d;
    assert_int_equal(gp_get_date(r, 0, 4, &d), GP_OK);
    assert_int_equal(d, d2024);
    assert_int_equal(gp_get_text(r, 0, 5, &t, NULL), GP_OK);
    assert_string_equal(t, "2024-02-29");
    int y, m, dd;
    gp_date_to_ymd(d, &y, &m, &dd);
    assert_true(y == 2024 && m == 2 && dd == 29);
    assert_int_equal(gp_get_timestamptz(r, 0, 6, &got), GP_OK);
    assert_true(got == GP_TIMESTAMP_INFINITY);
    assert_int_equal(gp_get_timestamptz(r, 0, 7, &got), GP_OK);
    assert_true(got == GP_TIMESTAMP_NEG_INFINITY);
    assert_int_equal(gp_get_date(r, 0, 8, &d), GP_OK);
    assert_int_equal(d, GP_DATE_INFINITY);
    assert_int_equal(gp_get_date(r, 0, 9, &d), GP_OK);
    assert_int_equal(d, dbc);
    gp_date_to_ymd(d, &y, &m, &dd);
    assert_true(y == -99 && m == 3 && dd == 1);
    assert_int_equal(gp_get_timestamptz(r, 0, 10, &got), GP_OK);
    assert_true(got == -1000000);
    assert_int_equal(gp_get_date(r, 0, 2, &d), GP_ERR_TYPE);
    assert_int_equal(gp_get_timestamptz(r, 0, 4, &got), GP_ERR_TYPE);
    gp_result_free(r);
    /* The text form does not depend on this conversion: check one against the server. */
    r = q("SELECT to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS s", GP_ARGS(gp_timestamptz(ts)));
    assert_int_equal(gp_get_text(r, 0, 0, &t, NULL), GP_OK);
    assert_string_equal(t, "2023-11-14 22:13:20.123456");
    gp_result_free(r);
}

static void test_numeric_exact(void **state)
{
    (void)state;
    static const char *const values[] = {
        "0", "-12.50", "12345678901234567890123456789.000000000000000000001", "0.0001", "-0.00000000000000000001",
        "1e-20", "NaN", "Infinity", "-Infinity", "100000000", "9999.9999", "1E+30",
    };
    static const char *const expect[] = {
        "0", "-12.50", "12345678901234567890123456789.000000000000000000001", "0.0001", "-0.00000000000000000001",
        "0.00000000000000000001", "NaN", "Infinity", "-Infinity", "100000000", "9999.9999",
        "1000000000000000000000000000000",
    };
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        gp_result_t *r = q("SELECT $1 AS n, $1::text AS t", GP_ARGS(gp_numeric(values[i])));
        char *n;
        const char *t;
        assert_int_equal(gp_get_numeric(r, 0, 0, &n), GP_OK);
        assert_int_equal(gp_get_text(r, 0, 1, &t, NULL), GP_OK);
        assert_string_equal(n, expect[i]);
        assert_string_equal(n, t); /* exactly the server's own text */
        free(n);
        gp_result_free(r);
    }
    gp_result_t *r = q("SELECT 42::int4 AS i, 1.5::float8 AS f", 0, NULL);
    char *n;
    assert_int_equal(gp_get_numeric(r, 0, 0, &n), GP_OK);
    assert_string_equal(n, "42");
    free(n);
    assert_int_equal(gp_get_numeric(r, 0, 1, &n), GP_ERR_TYPE);
    gp_result_free(r);
}

static void test_json_bytea_arrays(void **state)
{
    (void)state;
    json_t *obj = json_pack("{s:s, s:i, s:[b, n], s:s}", "name", "Café \"Zoë\" \\o/", "n", 7, "list", 1,
                            "uni", "日本");
    size_t big = 1 << 20;
    unsigned char *blob = malloc(big);
    for (size_t i = 0; i < big; i++)
        blob[i] = (unsigned char)(i * 31 + 7);
    const char *texts[] = {"a", NULL, "", "quote'\"\\", "ünï"};
    int64_t ints[] = {INT64_MIN, -1, 0, INT64_MAX};
    gp_result_t *r = q("SELECT $1 AS j, $2 AS jb, $3 AS b, $4 AS empty_b, $5 AS ta, $6 AS ia, "
                       "'{}'::text[] AS ta0, '{}'::int[] AS ia0, ARRAY[1,2,3]::int2[] AS sa, ARRAY[1,NULL]::int[] AS ian, "
                       "'{{1,2},{3,4}}'::int[] AS md, $7 AS jscalar, octet_length($3) AS blen, md5($3) AS bmd5",
                       GP_ARGS(gp_json(obj), gp_jsonb(obj), gp_bytea(blob, big), gp_bytea(NULL, 0),
                               gp_text_array(texts, 5), gp_int_array(ints, 4), gp_jsonb(json_null())));
    json_t *j;
    assert_int_equal(gp_get_json(r, 0, 0, &j), GP_OK);
    assert_true(json_equal(j, obj));
    json_decref(j);
    assert_int_equal(gp_get_json(r, 0, 1, &j), GP_OK);
    assert_true(json_equal(j, obj));
    json_decref(j);
    assert_int_equal(gp_get_json(r, 0, gp_col(r, "jscalar"), &j), GP_OK);
    assert_true(json_is_null(j));
    json_decref(j);
    const uint8_t *data;
    size_t len;
    assert_int_equal(gp_get_bytea(r, 0, 2, &data, &len), GP_OK);
    assert_int_equal(len, big);
    assert_memory_equal(data, blob, big);
    int32_t blen;
    assert_int_equal(gp_get_int32(r, 0, gp_col(r, "blen"), &blen), GP_OK);
    assert_int_equal(blen, (int32_t)big);
    assert_int_equal(gp_get_bytea(r, 0, 3, &data, &len), GP_OK);
    assert_int_equal(len, 0);
    char **items;
    size_t n;
    assert_int_equal(gp_get_text_array(r, 0, 4, &items, &n), GP_OK);
    assert_int_equal(n, 5);
    assert_string_equal(items[0], "a");
    assert_null(items[1]);
    assert_string_equal(items[2], "");
    assert_string_equal(items[3], "quote'\"\\");
    assert_string_equal(items[4], "ünï");
    free(items);
    int64_t *iv;
    assert_int_equal(gp_get_int_array(r, 0, 5, &iv, &n), GP_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(iv, ints, sizeof ints);
    free(iv);
    assert_int_equal(gp_get_text_array(r, 0, 6, &items, &n), GP_OK);
    assert_int_equal(n, 0);
    free(items);
    assert_int_equal(gp_get_int_array(r, 0, 7, &iv, &n), GP_OK);
    assert_int_equal(n, 0);
    assert_int_equal(gp_get_int_array(r, 0, 8, &iv, &n), GP_OK);
    assert_int_equal(n, 3);
    assert_true(iv[2] == 3);
    free(iv);
    assert_int_equal(gp_get_int_array(r, 0, 9, &iv, &n), GP_ERR_NULL);
    assert_int_equal(gp_get_int_array(r, 0, 10, &iv, &n), GP_ERR_TYPE); /* two dimensions */
    assert_int_equal(gp_get_text_array(r, 0, 5, &items, &n), GP_ERR_TYPE);
    assert_int_equal(gp_get_json(r, 0, 4, &j), GP_ERR_TYPE);
    assert_int_equal(gp_get_bytea(r, 0, 0, &data, &len), GP_ERR_TYPE);
    gp_result_free(r);
    json_decref(obj);
    free(blob);
}

static void test_nulls_and_misuse(void **state)
{
    (void)state;
    gp_result_t *r = q("SELECT $1::int8 AS a, $2::text AS b, $3 AS c, NULL::uuid AS d, NULL::jsonb AS e, "
                       "NULL::bytea AS f, NULL::text[] AS g, NULL::date AS h, NULL::numeric AS i",
                       GP_ARGS(gp_null(), gp_text(NULL), gp_numeric(NULL)));
    int64_t l;
    const char *t;
    gp_uuid_t u;
    json_t *j;
    const uint8_t *data;
    size_t len;
    char **items;
    int32_t d;
    char *num;
    bool isnull;
    assert_int_equal(gp_get_int64(r, 0, 0, &l), GP_ERR_NULL);
    assert_int_equal(gp_get_text(r, 0, 1, &t, NULL), GP_ERR_NULL);
    assert_int_equal(gp_get_numeric(r, 0, 2, &num), GP_ERR_NULL);
    assert_int_equal(gp_get_uuid(r, 0, 3, &u), GP_ERR_NULL);
    assert_int_equal(gp_get_json(r, 0, 4, &j), GP_ERR_NULL);
    assert_int_equal(gp_get_bytea(r, 0, 5, &data, &len), GP_ERR_NULL);
    assert_int_equal(gp_get_text_array(r, 0, 6, &items, &len), GP_ERR_NULL);
    assert_int_equal(gp_get_date(r, 0, 7, &d), GP_ERR_NULL);
    assert_int_equal(gp_get_numeric(r, 0, 8, &num), GP_ERR_NULL);
    assert_int_equal(gp_get_is_null(r, 0, 0, &isnull), GP_OK);
    assert_true(isnull);
    /* unknown column, out-of-range row and column */
    assert_int_equal(gp_col(r, "nope"), -1);
    int col;
    assert_int_equal(gp_result_column_index(r, "nope", &col), GP_ERR_NOT_FOUND);
    assert_int_equal(gp_result_column_index(r, "A", &col), GP_ERR_NOT_FOUND); /* exact names */
    assert_int_equal(gp_get_int64(r, 0, gp_col(r, "nope"), &l), GP_ERR_NOT_FOUND);
    assert_int_equal(gp_get_int64(r, 1, 0, &l), GP_ERR_RANGE);
    assert_int_equal(gp_get_int64(r, -1, 0, &l), GP_ERR_RANGE);
    assert_int_equal(gp_get_int64(r, 0, 9, &l), GP_ERR_RANGE);
    assert_int_equal(gp_get_is_null(r, 5, 0, &isnull), GP_ERR_RANGE);
    assert_null(gp_result_column_name(r, 9));
    assert_string_equal(gp_result_column_name(r, 8), "i");
    gp_result_free(r);
    gp_result_free(NULL);

    /* zero rows */
    r = q("SELECT 1 AS x WHERE false", 0, NULL);
    assert_int_equal(gp_result_rows(r), 0);
    assert_int_equal(gp_get_int64(r, 0, 0, &l), GP_ERR_RANGE);
    gp_result_free(r);
}

static void test_parameter_validation(void **state)
{
    (void)state;
    gp_result_t *r = NULL;
    gp_error_t e;
    const char bad_utf8[] = "ok \xC3\x28 no";
    assert_int_equal(gp_query(conn, "SELECT $1, $2", GP_ARGS(gp_int32(1), gp_text(bad_utf8)), &r, &e),
                     GP_ERR_INVALID);
    assert_null(r);
    assert_int_equal(e.klass, GP_ECLASS_CLIENT);
    assert_non_null(strstr(e.message, "$2"));
    assert_non_null(strstr(e.message, "invalid UTF-8 at byte 3"));
    assert_int_equal(gp_exec(conn, "SELECT $1", GP_ARGS(gp_textn("a\0b", 3)), NULL, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "$1: embedded NUL at byte 1"));
    /* Past the first eight bytes (the check reads ASCII a word at a time). */
    assert_int_equal(gp_exec(conn, "SELECT $1", GP_ARGS(gp_text("0123456789abcdef\xFFxyz")), NULL, &e),
                     GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "invalid UTF-8 at byte 16"));
    assert_int_equal(gp_exec(conn, "SELECT $1", GP_ARGS(gp_textn("0123456789a\0bcdefgh", 19)), NULL, &e),
                     GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "embedded NUL at byte 11"));
    assert_int_equal(gp_exec(conn, "SELECT $1", GP_ARGS(gp_text("01234567\xC3\xA9" "89abcdef\xC3\x28")), NULL, &e),
                     GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "invalid UTF-8 at byte 18"));
    assert_int_equal(gp_exec(conn, "SELECT $1", GP_ARGS(gp_text("\xED\xA0\x80")), NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_exec(conn, "SELECT $1", GP_ARGS(gp_text("\xC0\xAF")), NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_exec(conn, "SELECT $1", GP_ARGS(gp_uuid_str("not-a-uuid")), NULL, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "UUID"));
    assert_int_equal(gp_exec(conn, "SELECT $1", GP_ARGS(gp_numeric("1.2.3")), NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_exec(conn, "SELECT $1", GP_ARGS(gp_numeric("12; DROP")), NULL, &e), GP_ERR_INVALID);
    const char *arr[] = {"fine", "bad\xFF"};
    assert_int_equal(gp_exec(conn, "SELECT $1", GP_ARGS(gp_text_array(arr, 2)), NULL, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "element 1"));
    assert_int_equal(gp_exec(conn, NULL, 0, NULL, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_exec(conn, "SELECT 1", 2, NULL, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_query(conn, "SELECT 1", 0, NULL, NULL, &e), GP_ERR_INVALID);
    assert_int_equal(gp_exec(NULL, "SELECT 1", 0, NULL, NULL, &e), GP_ERR_INVALID);
    /* Nothing was sent: the connection is idle and usable, not flagged. */
    assert_int_equal(PQtransactionStatus(conn->pg), PQTRANS_IDLE);
    assert_false(conn->discard);
    int64_t affected;
    assert_int_equal(gp_exec(conn, "SELECT generate_series(1, $1)", GP_ARGS(gp_int32(3)), &affected, &e), GP_OK);
    assert_int_equal(affected, 3);
    /* A value the SQL text would never see: injection is impossible by construction. */
    gp_result_t *r2 = q("SELECT $1 = 'x'' OR ''1''=''1' AS eq", GP_ARGS(gp_text("x' OR '1'='1")));
    bool b;
    assert_int_equal(gp_get_bool(r2, 0, 0, &b), GP_OK);
    assert_true(b);
    gp_result_free(r2);
}

static void test_statement_cache(void **state)
{
    (void)state;
    gp_error_t e;
    assert_int_equal(gp_exec(conn, "DEALLOCATE ALL", 0, NULL, NULL, &e), GP_OK);
    assert_int_equal(count_prepared(), 0);
    for (int i = 0; i < 5; i++) {
        gp_result_t *r = q("SELECT $1::int4 * 2", GP_ARGS(gp_int32(i)));
        int32_t v;
        assert_int_equal(gp_get_int32(r, 0, 0, &v), GP_OK);
        assert_int_equal(v, i * 2);
        gp_result_free(r);
    }
    assert_int_equal(count_prepared(), 1); /* prepared once, reused */
    /* same text, different parameter types: a different statement */
    gp_result_t *r = q("SELECT $1::int4 * 2", GP_ARGS(gp_int64(4)));
    gp_result_free(r);
    assert_int_equal(count_prepared(), 2);

    /* Bounded: with capacity 2, many distinct statements never pile up
     * beyond the capacity plus one deallocation batch. */
    assert_int_equal(gp_query_set_statement_cache(2), GP_OK);
    for (int i = 0; i < 60; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT %d + $1::int4", i);
        r = q(sql, GP_ARGS(gp_int32(1)));
        int32_t v;
        assert_int_equal(gp_get_int32(r, 0, 0, &v), GP_OK);
        assert_int_equal(v, i + 1);
        gp_result_free(r);
        assert_true(count_prepared() <= 2 + 16);
    }
    /* Unnamed statements only (PgBouncer transaction mode). */
    assert_int_equal(gp_query_set_statement_cache(0), GP_OK);
    r = q("SELECT 1", 0, NULL);
    gp_result_free(r);
    assert_int_equal(count_prepared(), 0); /* shrinking deallocated everything */
    for (int i = 0; i < 3; i++) {
        r = q("SELECT $1::text || 'x'", GP_ARGS(gp_text("y")));
        gp_result_free(r);
    }
    assert_int_equal(count_prepared(), 0);
    assert_int_equal(gp_query_set_statement_cache(-1), GP_ERR_INVALID);
    assert_int_equal(gp_query_set_statement_cache(GP_STATEMENT_CACHE_DEFAULT), GP_OK);
    assert_int_equal(gp_query_statement_cache(), GP_STATEMENT_CACHE_DEFAULT);
}

/* DATABASE_STATEMENT_CACHE: a pool's own capacity, whatever the process-wide
 * one; 0 leaves nothing prepared on the server (PgBouncer's transaction mode). */
static void test_pool_statement_cache(void **state)
{
    (void)state;
    const int caps[] = {0, 1, -1};
    for (int k = 0; k < 3; k++) {
        gp_config_t cfg;
        gp_test_config(&cfg);
        assert_int_equal(cfg.db.statement_cache, -1); /* the default: the process-wide capacity */
        cfg.db.pool_min = 0;
        cfg.db.pool_max = 1;
        cfg.db.statement_cache = caps[k];
        gp_pool_t *p = NULL;
        assert_int_equal(gp_pool_create(&cfg, &p, NULL), GP_OK);
        gp_conn_t *c = NULL;
        assert_int_equal(gp_pool_acquire(p, "cache", -1, &c, NULL), GP_OK);
        for (int i = 0; i < 20; i++) { /* 20 distinct statements */
            char sql[64];
            snprintf(sql, sizeof sql, "SELECT %d + $1::int4", i);
            gp_result_t *r = NULL;
            assert_int_equal(gp_query(c, sql, GP_ARGS(gp_int32(i)), &r, NULL), GP_OK);
            gp_result_free(r);
        }
        PGresult *r = PQexec(gp_conn_pgconn(c), "SELECT count(*) FROM pg_prepared_statements");
        int n = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (caps[k] == 0)
            assert_int_equal(n, 0);        /* nothing left on the server */
        else if (caps[k] == 1)
            assert_true(n >= 1 && n <= 1 + 16); /* the capacity plus one deallocation batch */
        else
            assert_true(n >= 20);          /* the process-wide 128 */
        gp_pool_release(c);
        assert_int_equal(gp_pool_close(p, 1000), GP_OK);
        gp_config_release(&cfg);
    }
}

static void test_statement_vanishes(void **state)
{
    (void)state;
    gp_error_t e;
    gp_result_t *r = q("SELECT $1::int8 + 1", GP_ARGS(gp_int64(1)));
    gp_result_free(r);
    assert_true(count_prepared() >= 1);
    /* Behind the layer's back (as a pooler or DISCARD ALL from elsewhere would). */
    PQclear(PQexec(conn->pg, "DEALLOCATE ALL"));
    r = q("SELECT $1::int8 + 1", GP_ARGS(gp_int64(41)));
    int64_t v;
    assert_int_equal(gp_get_int64(r, 0, 0, &v), GP_OK);
    assert_true(v == 42);
    gp_result_free(r);
    assert_int_equal(count_prepared(), 1);

    /* Inside a transaction the failure aborts it: reported, and the next
     * transaction works again. */
    PQclear(PQexec(conn->pg, "DEALLOCATE ALL"));
    assert_int_equal(gp_tx_begin(conn, NULL, &e), GP_OK);
    assert_int_equal(gp_query(conn, "SELECT $1::int8 + 1", GP_ARGS(gp_int64(1)), &r, &e), GP_ERR_SERVER);
    assert_string_equal(e.sqlstate, "26000");
    assert_int_equal(gp_tx_rollback(conn, &e), GP_OK);
    assert_int_equal(gp_tx_begin(conn, NULL, &e), GP_OK);
    r = q("SELECT $1::int8 + 1", GP_ARGS(gp_int64(1)));
    gp_result_free(r);
    assert_int_equal(gp_tx_commit(conn, &e), GP_OK);
    assert_false(conn->discard);
}

static void test_session_state_flag(void **state)
{
    (void)state;
    gp_error_t e;
    /* Caller SQL taints the session; what the server says it ran decides
     * whether a sweep is enough (plain commands) or a full reset is due. */
    conn->tainted = conn->reset_needed = false;
    assert_int_equal(gp_exec(conn, "SELECT 1", 0, NULL, NULL, &e), GP_OK);
    assert_true(conn->tainted);
    assert_false(conn->reset_needed);
    /* A session-level set_config in a SELECT: the sweep's RESET ALL undoes it. */
    assert_int_equal(gp_exec(conn, "SELECT set_config('application_name', $1, false)", GP_ARGS(gp_text("z")), NULL,
                             &e), GP_OK);
    assert_false(conn->reset_needed);
    /* Any spelling of SET is a SET to the server. */
    const char *sets[] = {"  /* c */ set application_name = 'q'", "\fSET application_name = 'q'",
                          "SET LOCAL work_mem = '8MB'", "RESET ALL", "DO $$BEGIN EXECUTE 'SET work_mem = 1024'; END$$",
                          "PREPARE gp_x AS SELECT 1", "DEALLOCATE gp_x", "LISTEN gp_test_flag",
                          "UNLISTEN gp_test_flag"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
        conn->reset_needed = false;
        gp_status_t st = gp_exec(conn, sets[i], 0, NULL, NULL, &e);
        if (st != GP_OK)
            fprintf(stderr, "%s: %s\n", sets[i], e.message);
        assert_int_equal(st, GP_OK);
        if (!conn->reset_needed)
            fprintf(stderr, "not flagged: %s\n", sets[i]);
        assert_true(conn->reset_needed);
    }
    /* Transaction control needs no reset by itself. */
    conn->reset_needed = false;
    assert_int_equal(gp_tx_begin(conn, NULL, &e), GP_OK);
    assert_int_equal(gp_exec(conn, "SAVEPOINT a", 0, NULL, NULL, &e), GP_OK);
    assert_int_equal(gp_tx_rollback(conn, &e), GP_OK);
    assert_false(conn->reset_needed);
    /* DISCARD ALL drops prepared statements: the cache follows. */
    assert_int_equal(gp_exec(conn, "DISCARD ALL", 0, NULL, NULL, &e), GP_OK);
    assert_true(conn->reset_needed);
    gp_result_t *r = q("SELECT $1::int8 + 1", GP_ARGS(gp_int64(1)));
    gp_result_free(r);
    conn->tainted = conn->reset_needed = false;
}

static void test_tag_effects(void **state)
{
    (void)state;
    assert_int_equal(gp__tag_effects("SELECT 1"), 0);
    assert_int_equal(gp__tag_effects("INSERT 0 3"), 0);
    assert_int_equal(gp__tag_effects(""), 0);
    assert_int_equal(gp__tag_effects("COMMIT"), GP__EFFECT_ENDS_TX);
    assert_int_equal(gp__tag_effects("ROLLBACK"), GP__EFFECT_ENDS_TX);
    assert_int_equal(gp__tag_effects("SET"), GP__EFFECT_SESSION);
    assert_int_equal(gp__tag_effects("DO"), GP__EFFECT_SESSION);
    assert_int_equal(gp__tag_effects("SELECTX"), GP__EFFECT_SESSION); /* whole words only */
    assert_int_equal(gp__tag_effects("DEALLOCATE ALL"), GP__EFFECT_SESSION | GP__EFFECT_DROPS_STMTS);
    assert_int_equal(gp__tag_effects("DISCARD ALL"), GP__EFFECT_SESSION | GP__EFFECT_DROPS_STMTS);
    assert_int_equal(gp__tag_effects("PREPARE TRANSACTION"), GP__EFFECT_SESSION | GP__EFFECT_ENDS_TX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers_and_doubles),
        cmocka_unit_test(test_text_unicode_quotes),
        cmocka_unit_test(test_uuid_time_date),
        cmocka_unit_test(test_numeric_exact),
        cmocka_unit_test(test_json_bytea_arrays),
        cmocka_unit_test(test_nulls_and_misuse),
        cmocka_unit_test(test_parameter_validation),
        cmocka_unit_test(test_statement_cache),
        cmocka_unit_test(test_pool_statement_cache),
        cmocka_unit_test(test_statement_vanishes),
        cmocka_unit_test(test_session_state_flag),
        cmocka_unit_test(test_tag_effects),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
