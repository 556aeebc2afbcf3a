/* growplate/types.h — typed query parameters (gp_value_t) and the small
 * value types the query layer reads and writes: UUIDs, timestamps, dates.
 *
 * A gp_value_t is a tagged union that BORROWS the memory it points to
 * (strings, bytes, arrays, json_t): the borrowed memory must stay valid for
 * the duration of the call that receives the value; nothing is retained
 * afterwards (gp_pipeline_add() copies what it needs). Build values with the
 * inline constructors below, typically in a compound literal:
 *
 *     gp_query(conn, "SELECT $1::int8 + 1 AS id, $2::numeric * 2 AS price",
 *              GP_ARGS(gp_int64(41), gp_numeric("12.50")), &res, &err)
 *
 * Values are validated before anything is sent (text must be valid UTF-8
 * without NUL, numeric and UUID text must parse); a bad value fails the call
 * with GP_ERR_INVALID and a message naming the parameter ("$2: ...").
 *
 * Thread-safety: plain data, no global state; every function here is safe
 * from any thread.
 */
#ifndef GROWPLATE_TYPES_H
#define GROWPLATE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "growplate/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The SQL types a parameter can carry. Values are only ever appended. */
typedef enum gp_type {
    GP_TYPE_NULL = 0,        /* SQL NULL of unspecified type (the server infers it) */
    GP_TYPE_INT16 = 1,       /* smallint */
    GP_TYPE_INT32 = 2,       /* integer */
    GP_TYPE_INT64 = 3,       /* bigint */
    GP_TYPE_DOUBLE = 4,      /* double precision (inf, -inf and NaN included) */
    GP_TYPE_BOOL = 5,        /* boolean */
    GP_TYPE_TEXT = 6,        /* text (sent untyped, so it also fits varchar, enums...) */
    GP_TYPE_UUID = 7,        /* uuid */
    GP_TYPE_TIMESTAMPTZ = 8, /* timestamp with time zone, µs since the Unix epoch */
    GP_TYPE_DATE = 9,        /* date, days since 1970-01-01 */
    GP_TYPE_NUMERIC = 10,    /* numeric, as exact decimal text */
    GP_TYPE_JSON = 11,       /* json, from a jansson json_t */
    GP_TYPE_JSONB = 12,      /* jsonb, from a jansson json_t */
    GP_TYPE_BYTEA = 13,      /* bytea */
    GP_TYPE_TEXT_ARRAY = 14, /* text[] (NULL items are SQL NULL elements) */
    GP_TYPE_INT_ARRAY = 15,  /* bigint[] (fits int[] and smallint[] columns by assignment) */
    GP_TYPE_COUNT_           /* not a type; keep last */
} gp_type_t;

/* A lowercase SQL-ish name of a type ("int64", "text[]", ...). Static. */
GP_EXPORT const char *gp_type_name(gp_type_t type);

/* A UUID as its 16 bytes, in the order they are written. */
typedef struct gp_uuid {
    uint8_t bytes[16];
} gp_uuid_t;

/* Parse "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex, either case; also
 * accepted without hyphens or in braces, as PostgreSQL does).
 * Errors: GP_ERR_INVALID. */
GP_EXPORT gp_status_t gp_uuid_parse(const char *text, gp_uuid_t *out);

/* Write the canonical lowercase form (36 characters + NUL) into out[37];
 * returns out. */
GP_EXPORT char *gp_uuid_format(const gp_uuid_t *uuid, char out[37]);

/* Timestamps (timestamptz) are int64 microseconds since 1970-01-01 00:00:00
 * UTC; PostgreSQL's 'infinity' and '-infinity' are GP_TIMESTAMP_INFINITY and
 * GP_TIMESTAMP_NEG_INFINITY. Dates are int32 days since 1970-01-01, with
 * GP_DATE_INFINITY / GP_DATE_NEG_INFINITY. */
#define GP_TIMESTAMP_INFINITY INT64_MAX
#define GP_TIMESTAMP_NEG_INFINITY INT64_MIN
#define GP_DATE_INFINITY INT32_MAX
#define GP_DATE_NEG_INFINITY INT32_MIN

/* Proleptic Gregorian calendar conversions (year 0 = 1 BC). gp_date_from_ymd
 * fails with GP_ERR_RANGE on an impossible date (2023-02-29, month 13...). */
GP_EXPORT gp_status_t gp_date_from_ymd(int year, int month, int day, int32_t *days);
GP_EXPORT void gp_date_to_ymd(int32_t days, int *year, int *month, int *day);

/* A typed parameter. Fill it with the constructors below; the fields are
 * public only so that values can live in compound literals. */
typedef struct gp_value {
    gp_type_t type;
    union {
        int64_t i;                                      /* INT16/32/64, DATE, TIMESTAMPTZ */
        double d;                                       /* DOUBLE */
        bool b;                                         /* BOOL */
        struct { const char *ptr; size_t len; } s;      /* TEXT, NUMERIC (len: bytes) */
        struct { const void *ptr; size_t len; } bytes;  /* BYTEA */
        gp_uuid_t uuid;                                 /* UUID */
        const char *uuid_text;                          /* UUID given as text (uuid_is_text) */
        const json_t *json;                             /* JSON, JSONB */
        struct { const char *const *items; size_t n; } texts;  /* TEXT_ARRAY */
        struct { const int64_t *items; size_t n; } ints;      /* INT_ARRAY */
    } u;
    unsigned flags;             /* GP_VALUE_F_* */
} gp_value_t;

#define GP_VALUE_F_UUID_TEXT 1u  /* u.uuid_text holds the UUID */
#define GP_VALUE_F_TERMINATED 2u /* u.s.ptr[u.s.len] is a NUL (no copy needed) */

static inline gp_value_t gp_null(void) { gp_value_t v; memset(&v, 0, sizeof v); return v; }
static inline gp_value_t gp_int16(int16_t x) { gp_value_t v = gp_null(); v.type = GP_TYPE_INT16; v.u.i = x; return v; }
static inline gp_value_t gp_int32(int32_t x) { gp_value_t v = gp_null(); v.type = GP_TYPE_INT32; v.u.i = x; return v; }
static inline gp_value_t gp_int64(int64_t x) { gp_value_t v = gp_null(); v.type = GP_TYPE_INT64; v.u.i = x; return v; }
static inline gp_value_t gp_double(double x) { gp_value_t v = gp_null(); v.type = GP_TYPE_DOUBLE; v.u.d = x; return v; }
static inline gp_value_t gp_bool(bool x) { gp_value_t v = gp_null(); v.type = GP_TYPE_BOOL; v.u.b = x; return v; }
/* NUL-terminated text; a NULL pointer is SQL NULL. */
static inline gp_value_t gp_text(const char *s)
{
    gp_value_t v = gp_null();
    if (s) { v.type = GP_TYPE_TEXT; v.u.s.ptr = s; v.u.s.len = strlen(s); v.flags = GP_VALUE_F_TERMINATED; }
    return v;
}
/* Text of explicit length (an embedded NUL is rejected, not truncated). */
static inline gp_value_t gp_textn(const char *s, size_t len)
{
    gp_value_t v = gp_null();
    if (s) { v.type = GP_TYPE_TEXT; v.u.s.ptr = s; v.u.s.len = len; }
    return v;
}
static inline gp_value_t gp_uuid(gp_uuid_t u) { gp_value_t v = gp_null(); v.type = GP_TYPE_UUID; v.u.uuid = u; return v; }
/* A UUID in text form, validated before sending; NULL is SQL NULL. */
static inline gp_value_t gp_uuid_str(const char *s)
{
    gp_value_t v = gp_null();
    if (s) { v.type = GP_TYPE_UUID; v.u.uuid_text = s; v.flags = GP_VALUE_F_UUID_TEXT; }
    return v;
}
/* Microseconds since the Unix epoch (UTC). */
static inline gp_value_t gp_timestamptz(int64_t unix_us) { gp_value_t v = gp_null(); v.type = GP_TYPE_TIMESTAMPTZ; v.u.i = unix_us; return v; }
/* Days since 1970-01-01. */
static inline gp_value_t gp_date(int32_t days) { gp_value_t v = gp_null(); v.type = GP_TYPE_DATE; v.u.i = days; return v; }
/* Exact decimal text: [+-]digits[.digits][e[+-]digits], NaN, Infinity,
 * -Infinity; NULL is SQL NULL. */
static inline gp_value_t gp_numeric(const char *s)
{
    gp_value_t v = gp_null();
    if (s) { v.type = GP_TYPE_NUMERIC; v.u.s.ptr = s; v.u.s.len = strlen(s); v.flags = GP_VALUE_F_TERMINATED; }
    return v;
}
/* A jansson value (borrowed; any JSON value, not only objects); NULL is SQL
 * NULL (json_null() is the JSON null). */
static inline gp_value_t gp_json(const json_t *j) { gp_value_t v = gp_null(); if (j) { v.type = GP_TYPE_JSON; v.u.json = j; } return v; }
static inline gp_value_t gp_jsonb(const json_t *j) { gp_value_t v = gp_null(); if (j) { v.type = GP_TYPE_JSONB; v.u.json = j; } return v; }
/* Bytes; ptr may be NULL only when len is 0 (an empty bytea, not NULL). */
static inline gp_value_t gp_bytea(const void *ptr, size_t len)
{
    gp_value_t v = gp_null(); v.type = GP_TYPE_BYTEA; v.u.bytes.ptr = ptr; v.u.bytes.len = len; return v;
}
/* text[]: n items, each NUL-terminated UTF-8 or NULL (an SQL NULL element). */
static inline gp_value_t gp_text_array(const char *const *items, size_t n)
{
    gp_value_t v = gp_null(); v.type = GP_TYPE_TEXT_ARRAY; v.u.texts.items = items; v.u.texts.n = n; return v;
}
/* bigint[] of n items. */
static inline gp_value_t gp_int_array(const int64_t *items, size_t n)
{
    gp_value_t v = gp_null(); v.type = GP_TYPE_INT_ARRAY; v.u.ints.items = items; v.u.ints.n = n; return v;
}

/* GP_ARGS(v1, v2, ...) expands to "count, array" for the query functions:
 *     gp_exec(conn, "SELECT $1::int", GP_ARGS(gp_int32(7)), NULL, &err)
 * With no parameters pass 0, NULL. */
#define GP_ARGS(...) \
    (int)(sizeof((gp_value_t[]){__VA_ARGS__}) / sizeof(gp_value_t)), (const gp_value_t[]){__VA_ARGS__}

#ifdef __cplusplus
}
#endif
#endif
