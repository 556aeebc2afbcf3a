/* data_internal.h — the data layer's page cursors (data.c), shared with
 * fuzz/fuzz_page_cursor.c; never installed. */
#ifndef GROWPLATE_DATA_INTERNAL_H
#define GROWPLATE_DATA_INTERNAL_H

#include "growplate/data.h"

/* A page cursor of gp_data_list_menu_items_page: "m1.<category position,
 * canonical decimal>.<category name, lowercase hex>.<item name, lowercase
 * hex>.<item id, canonical UUID>", the sort key of a page's last row. One
 * spelling per key: parse accepts exactly what format writes. */
typedef struct gp__page_key {
    int32_t position;
    char *category, *name; /* NUL-terminated; malloc'd by parse */
    gp_uuid_t id;
} gp__page_key_t;

/* Decode c into *k (free k->category and k->name). Errors: GP_ERR_INVALID
 * (naming the cursor as not one of ours; k holds nothing), GP_ERR_NOMEM. */
gp_status_t gp__page_cursor_parse(const char *c, gp__page_key_t *k, gp_error_t *err);

/* Encode *k into a new string in *out (free() it). Errors: GP_ERR_NOMEM. */
gp_status_t gp__page_cursor_format(const gp__page_key_t *k, char **out, gp_error_t *err);

#endif
