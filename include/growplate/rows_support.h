/* growplate/rows_support.h — the table-driven decoder behind the generated
 * row types: the library's (src/rows.c) and a service's own (`growplate
 * gen-types --prefix/--table ... --include NAME`). The generated code
 * describes each table's columns (name, kind, nullability, where each field
 * lives in the row struct) and calls the functions here, so the decoding
 * logic exists once and is tested once. For generated code: write against
 * the gp_row_<table>_* functions of the generated header instead.
 *
 * Thread-safety: no shared state (as rows.h). */
#ifndef GROWPLATE_ROWS_SUPPORT_H
#define GROWPLATE_ROWS_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "growplate/query.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gp_rows_col_kind {
    GP_ROWS_COL_UUID,        /* gp_uuid_t */
    GP_ROWS_COL_TEXT,        /* char * (malloc'd, NUL-terminated) */
    GP_ROWS_COL_INT16,       /* int16_t */
    GP_ROWS_COL_INT32,       /* int32_t */
    GP_ROWS_COL_INT64,       /* int64_t */
    GP_ROWS_COL_BOOL,        /* bool */
    GP_ROWS_COL_DOUBLE,      /* double */
    GP_ROWS_COL_NUMERIC,     /* char * (malloc'd decimal text) */
    GP_ROWS_COL_TIMESTAMPTZ, /* int64_t µs since the Unix epoch */
    GP_ROWS_COL_DATE,        /* int32_t days since 1970-01-01 */
    GP_ROWS_COL_JSON,        /* json_t * (a reference) */
    GP_ROWS_COL_JSONB,       /* json_t * (a reference) */
    GP_ROWS_COL_TEXT_ARRAY,  /* char ** (one malloc'd block) + size_t count */
    GP_ROWS_COL_ENUM,        /* a generated C enum, stored as int */
} gp_rows_col_kind_t;

typedef struct gp_rows_col_desc {
    const char *name;
    gp_rows_col_kind_t kind;
    bool nullable;
    size_t offset;            /* the value field */
    size_t null_offset;       /* the bool <col>_is_null field (nullable columns) */
    size_t count_offset;      /* the size_t <col>_count field (arrays) */
    const char *const *labels;/* enum labels in sort order (enums) */
    int nlabels;
} gp_rows_col_desc_t;

typedef struct gp_rows_table_desc {
    const char *name;
    const gp_rows_col_desc_t *cols;
    int ncols;
    size_t row_size;
} gp_rows_table_desc_t;

/* Find every column of t in r by name and check its type: once per result.
 * map[i] receives the result column of t->cols[i]. Errors: GP_ERR_NOT_FOUND
 * (a column is missing), GP_ERR_TYPE (a column has another type), each with
 * a message naming table and column; GP_ERR_INVALID. */
GP_EXPORT gp_status_t gp_rows_bind(const gp_rows_table_desc_t *t, const gp_result_t *r, int *map, gp_error_t *err);

/* Decode row `row` into *out (a zeroed struct of t->row_size bytes on
 * entry or not: it is cleared first). On failure *out holds nothing to
 * free. Errors: GP_ERR_NULL (NULL in a NOT NULL column), GP_ERR_TYPE (an
 * enum label this build does not know), GP_ERR_RANGE, GP_ERR_NOMEM. */
GP_EXPORT gp_status_t gp_rows_decode(const gp_rows_table_desc_t *t, const gp_result_t *r, const int *map, int row, void *out,
                            gp_error_t *err);

/* Bind, then decode every row into a new array (*rows NULL when empty). */
GP_EXPORT gp_status_t gp_rows_decode_all(const gp_rows_table_desc_t *t, const gp_result_t *r, void **rows, size_t *n,
                                gp_error_t *err);

/* Free what a row owns and zero it. NULL is accepted. */
GP_EXPORT void gp_rows_free(const gp_rows_table_desc_t *t, void *row);
GP_EXPORT void gp_rows_free_all(const gp_rows_table_desc_t *t, void *rows, size_t n);

/* Enum helpers: the label of v (NULL when out of range); parse a label. */
GP_EXPORT const char *gp_rows_enum_label(const char *const *labels, int n, int v);
GP_EXPORT gp_status_t gp_rows_enum_parse(const char *const *labels, int n, const char *label, size_t len, int *out);

#ifdef __cplusplus
}
#endif
#endif
