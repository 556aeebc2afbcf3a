/* rows_internal.h — the table-driven decoder behind the generated row types
 * (src/rows.c, written by `growplate gen-types`); never installed. The
 * generated code describes each table's columns (name, kind, nullability,
 * where each field lives in the row struct) and calls the functions here,
 * so the decoding logic exists once and is tested once. */
#ifndef GROWPLATE_ROWS_INTERNAL_H
#define GROWPLATE_ROWS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "growplate/query.h"

typedef enum gp__col_kind {
    GP__COL_UUID,        /* gp_uuid_t */
    GP__COL_TEXT,        /* char * (malloc'd, NUL-terminated) */
    GP__COL_INT16,       /* int16_t */
    GP__COL_INT32,       /* int32_t */
    GP__COL_INT64,       /* int64_t */
    GP__COL_BOOL,        /* bool */
    GP__COL_DOUBLE,      /* double */
    GP__COL_NUMERIC,     /* char * (malloc'd decimal text) */
    GP__COL_TIMESTAMPTZ, /* int64_t µs since the Unix epoch */
    GP__COL_DATE,        /* int32_t days since 1970-01-01 */
    GP__COL_JSON,        /* json_t * (a reference) */
    GP__COL_JSONB,       /* json_t * (a reference) */
    GP__COL_TEXT_ARRAY,  /* char ** (one malloc'd block) + size_t count */
    GP__COL_ENUM,        /* a generated C enum, stored as int */
} gp__col_kind_t;

typedef struct gp__col_desc {
    const char *name;
    gp__col_kind_t kind;
    bool nullable;
    size_t offset;            /* the value field */
    size_t null_offset;       /* the bool <col>_is_null field (nullable columns) */
    size_t count_offset;      /* the size_t <col>_count field (arrays) */
    const char *const *labels;/* enum labels in sort order (enums) */
    int nlabels;
} gp__col_desc_t;

typedef struct gp__table_desc {
    const char *name;
    const gp__col_desc_t *cols;
    int ncols;
    size_t row_size;
} gp__table_desc_t;

/* Find every column of t in r by name and check its type: once per result.
 * map[i] receives the result column of t->cols[i]. Errors: GP_ERR_NOT_FOUND
 * (a column is missing), GP_ERR_TYPE (a column has another type), each with
 * a message naming table and column; GP_ERR_INVALID. */
gp_status_t gp__rows_bind(const gp__table_desc_t *t, const gp_result_t *r, int *map, gp_error_t *err);

/* Decode row `row` into *out (a zeroed struct of t->row_size bytes on
 * entry or not: it is cleared first). On failure *out holds nothing to
 * free. Errors: GP_ERR_NULL (NULL in a NOT NULL column), GP_ERR_TYPE (an
 * enum label this build does not know), GP_ERR_RANGE, GP_ERR_NOMEM. */
gp_status_t gp__rows_decode(const gp__table_desc_t *t, const gp_result_t *r, const int *map, int row, void *out,
                            gp_error_t *err);

/* Bind, then decode every row into a new array (*rows NULL when empty). */
gp_status_t gp__rows_decode_all(const gp__table_desc_t *t, const gp_result_t *r, void **rows, size_t *n,
                                gp_error_t *err);

/* Free what a row owns and zero it. NULL is accepted. */
void gp__rows_free(const gp__table_desc_t *t, void *row);
void gp__rows_free_all(const gp__table_desc_t *t, void *rows, size_t n);

/* Enum helpers: the label of v (NULL when out of range); parse a label. */
const char *gp__enum_label(const char *const *labels, int n, int v);
gp_status_t gp__enum_parse(const char *const *labels, int n, const char *label, size_t len, int *out);

#endif
