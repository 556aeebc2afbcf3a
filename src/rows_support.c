/* rows_support.c — the table-driven decoder behind the generated row types:
 * bind a result's columns by name once, then decode rows field by field. */
#include <stdlib.h>
#include <string.h>

#include "query_internal.h"
#include "growplate/rows_support.h"

/* PostgreSQL assigns OIDs from here on to objects created after initdb,
 * such as our enum types. */
#define FIRST_NORMAL_OID 16384

static gp_type_t expected_type(gp_rows_col_kind_t k)
{
    switch (k) {
    case GP_ROWS_COL_UUID: return GP_TYPE_UUID;
    case GP_ROWS_COL_TEXT: return GP_TYPE_TEXT;
    case GP_ROWS_COL_INT16: return GP_TYPE_INT16;
    case GP_ROWS_COL_INT32: return GP_TYPE_INT32;
    case GP_ROWS_COL_INT64: return GP_TYPE_INT64;
    case GP_ROWS_COL_BOOL: return GP_TYPE_BOOL;
    case GP_ROWS_COL_DOUBLE: return GP_TYPE_DOUBLE;
    case GP_ROWS_COL_NUMERIC: return GP_TYPE_NUMERIC;
    case GP_ROWS_COL_TIMESTAMPTZ: return GP_TYPE_TIMESTAMPTZ;
    case GP_ROWS_COL_DATE: return GP_TYPE_DATE;
    case GP_ROWS_COL_JSON: return GP_TYPE_JSON;
    case GP_ROWS_COL_JSONB: return GP_TYPE_JSONB;
    case GP_ROWS_COL_TEXT_ARRAY: return GP_TYPE_TEXT_ARRAY;
    case GP_ROWS_COL_ENUM: return GP_TYPE_TEXT;
    }
    return GP_TYPE_NULL;
}

/* An enum column arrives either cast to text, or as its own type: a
 * user-defined type whose binary form is the label's text. */
static bool enum_as_own_type(const gp_result_t *r, int col)
{
    return gp_result_column_type(r, col) == GP_TYPE_NULL && PQftype(r->pg, col) >= FIRST_NORMAL_OID &&
           PQfformat(r->pg, col) == 1;
}

gp_status_t gp_rows_bind(const gp_rows_table_desc_t *t, const gp_result_t *r, int *map, gp_error_t *err)
{
    if (!t || !r || !map)
        return gp__client_error(err, GP_ERR_INVALID, "row decoder: result or map is NULL");
    for (int i = 0; i < t->ncols; i++) {
        const gp_rows_col_desc_t *c = &t->cols[i];
        if (gp_result_column_index(r, c->name, &map[i]) != GP_OK)
            return gp__client_error(err, GP_ERR_NOT_FOUND, "%s: the result has no column \"%s\"", t->name, c->name);
        gp_type_t want = expected_type(c->kind), got = gp_result_column_type(r, map[i]);
        if (got == want || (c->kind == GP_ROWS_COL_ENUM && enum_as_own_type(r, map[i])))
            continue;
        return gp__client_error(err, GP_ERR_TYPE, "%s.%s: expected %s%s, the result's column has %s", t->name,
                                c->name, c->kind == GP_ROWS_COL_ENUM ? "an enum (or text)" : gp_type_name(want),
                                c->nullable ? " (nullable)" : "",
                                got == GP_TYPE_NULL ? "an unsupported type" : gp_type_name(got));
    }
    return GP_OK;
}

static char *copy_text(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = 0;
    }
    return p;
}

static gp_status_t decode_enum(const gp_rows_col_desc_t *c, const gp_result_t *r, int row, int col, int *out)
{
    const char *label;
    size_t len;
    if (gp_result_column_type(r, col) == GP_TYPE_TEXT) {
        gp_status_t st = gp_get_text(r, row, col, &label, &len);
        if (st != GP_OK)
            return st;
    } else {
        label = PQgetvalue(r->pg, row, col);
        len = (size_t)PQgetlength(r->pg, row, col);
    }
    return gp_rows_enum_parse(c->labels, c->nlabels, label, len, out);
}

static gp_status_t decode_one(const gp_rows_col_desc_t *c, const gp_result_t *r, int row, int col, char *base)
{
    void *f = base + c->offset;
    const char *s;
    size_t len;
    gp_status_t st;
    switch (c->kind) {
    case GP_ROWS_COL_UUID: return gp_get_uuid(r, row, col, f);
    case GP_ROWS_COL_INT16: return gp_get_int16(r, row, col, f);
    case GP_ROWS_COL_INT32: return gp_get_int32(r, row, col, f);
    case GP_ROWS_COL_INT64: return gp_get_int64(r, row, col, f);
    case GP_ROWS_COL_BOOL: return gp_get_bool(r, row, col, f);
    case GP_ROWS_COL_DOUBLE: return gp_get_double(r, row, col, f);
    case GP_ROWS_COL_NUMERIC: return gp_get_numeric(r, row, col, f);
    case GP_ROWS_COL_TIMESTAMPTZ: return gp_get_timestamptz(r, row, col, f);
    case GP_ROWS_COL_DATE: return gp_get_date(r, row, col, f);
    case GP_ROWS_COL_JSON:
    case GP_ROWS_COL_JSONB: return gp_get_json(r, row, col, f);
    case GP_ROWS_COL_TEXT_ARRAY: return gp_get_text_array(r, row, col, f, (size_t *)(base + c->count_offset));
    case GP_ROWS_COL_ENUM: return decode_enum(c, r, row, col, f);
    case GP_ROWS_COL_TEXT:
        if ((st = gp_get_text(r, row, col, &s, &len)) != GP_OK)
            return st;
        if (!(*(char **)f = copy_text(s, len)))
            return GP_ERR_NOMEM;
        return GP_OK;
    }
    return GP_ERR_TYPE;
}

gp_status_t gp_rows_decode(const gp_rows_table_desc_t *t, const gp_result_t *r, const int *map, int row, void *out,
                            gp_error_t *err)
{
    if (!t || !r || !map || !out)
        return gp__client_error(err, GP_ERR_INVALID, "row decoder: result, map or row is NULL");
    char *base = out;
    memset(base, 0, t->row_size);
    for (int i = 0; i < t->ncols; i++) {
        const gp_rows_col_desc_t *c = &t->cols[i];
        bool is_null = false;
        gp_status_t st = gp_get_is_null(r, row, map[i], &is_null);
        if (st == GP_OK && is_null) {
            if (c->nullable) {
                *(bool *)(base + c->null_offset) = true;
                continue;
            }
            st = GP_ERR_NULL;
        }
        if (st == GP_OK)
            st = decode_one(c, r, row, map[i], base);
        if (st != GP_OK) {
            gp_rows_free(t, out);
            const char *why = st == GP_ERR_NULL ? "is NULL but the column is NOT NULL"
                              : st == GP_ERR_TYPE && c->kind == GP_ROWS_COL_ENUM ? "has a label this build does not know"
                                                                              : gp_strerror(st);
            return gp__client_error(err, st, "%s.%s (row %d): %s", t->name, c->name, row, why);
        }
    }
    return GP_OK;
}

gp_status_t gp_rows_decode_all(const gp_rows_table_desc_t *t, const gp_result_t *r, void **rows, size_t *n,
                                gp_error_t *err)
{
    if (!rows || !n)
        return gp__client_error(err, GP_ERR_INVALID, "row decoder: rows or n is NULL");
    *rows = NULL;
    *n = 0;
    int map[t->ncols > 0 ? t->ncols : 1];
    gp_status_t st = gp_rows_bind(t, r, map, err);
    if (st != GP_OK)
        return st;
    size_t count = (size_t)gp_result_rows(r);
    if (count == 0)
        return GP_OK;
    char *all = calloc(count, t->row_size);
    if (!all)
        return gp__client_error(err, GP_ERR_NOMEM, "%s: out of memory for %zu rows", t->name, count);
    for (size_t i = 0; i < count; i++) {
        if ((st = gp_rows_decode(t, r, map, (int)i, all + i * t->row_size, err)) != GP_OK) {
            gp_rows_free_all(t, all, i);
            return st;
        }
    }
    *rows = all;
    *n = count;
    return GP_OK;
}

void gp_rows_free(const gp_rows_table_desc_t *t, void *row)
{
    if (!t || !row)
        return;
    char *base = row;
    for (int i = 0; i < t->ncols; i++) {
        void *f = base + t->cols[i].offset;
        switch (t->cols[i].kind) {
        case GP_ROWS_COL_TEXT:
        case GP_ROWS_COL_NUMERIC: free(*(char **)f); break;
        case GP_ROWS_COL_TEXT_ARRAY: free(*(char ***)f); break;
        case GP_ROWS_COL_JSON:
        case GP_ROWS_COL_JSONB: json_decref(*(json_t **)f); break;
        default: break;
        }
    }
    memset(base, 0, t->row_size);
}

void gp_rows_free_all(const gp_rows_table_desc_t *t, void *rows, size_t n)
{
    if (!t || !rows)
        return;
    for (size_t i = 0; i < n; i++)
        gp_rows_free(t, (char *)rows + i * t->row_size);
    free(rows);
}

const char *gp_rows_enum_label(const char *const *labels, int n, int v) { return v >= 0 && v < n ? labels[v] : NULL; }

gp_status_t gp_rows_enum_parse(const char *const *labels, int n, const char *label, size_t len, int *out)
{
    if (!label || !out)
        return GP_ERR_INVALID;
    for (int i = 0; i < n; i++)
        if (strlen(labels[i]) == len && memcmp(labels[i], label, len) == 0) {
            *out = i;
            return GP_OK;
        }
    return GP_ERR_TYPE;
}
