/* growplate/data.h — typed data access for GrowPlate's core tables: tenants,
 * menu categories, menu items, orders and their items.
 *
 * A layer above tenant.h: every statement on a tenant-owned table runs
 * tenant-scoped (gp_tenant_query / gp_tenant_run), so row-level security
 * applies, and the SQL also carries a tenant_id predicate (or value). A row
 * of another tenant is therefore indistinguishable from a row that does not
 * exist: reading, updating or referencing it is GP_ERR_NOT_FOUND. Results
 * come back as the generated row types of rows.h.
 *
 * Arguments are validated before anything is sent: a tenant id that is not
 * a canonical lowercase UUID is GP_ERR_TENANT (tenant_id.h); a NULL pointer
 * where one is required, an id that is not a UUID, an empty or over-long
 * name, a negative price or a quantity outside 1..GP_DATA_MAX_QUANTITY is
 * GP_ERR_INVALID with a message naming the argument. Ids of other rows
 * (categories, menu items, orders, customers) may be given in any form
 * gp_uuid_parse() accepts; messages show them in canonical form and never
 * echo text that failed validation.
 *
 * Errors (besides those above, in every function): the pool's acquire
 * errors (GP_ERR_TIMEOUT, GP_ERR_CLOSED, GP_ERR_CONNECT...), server errors
 * as GP_ERR_SERVER with the SQLSTATE, class and constraint in err (e.g. a
 * duplicate name: class GP_ECLASS_UNIQUE), GP_ERR_COMMIT_UNKNOWN when the
 * connection broke after COMMIT was sent (never retried: check for the
 * effect), GP_ERR_NOMEM. err may be NULL.
 *
 * Ownership: output rows belong to the caller. A single row (*out) is freed
 * with the generated gp_row_T_free() (which frees what it owns, not the
 * struct); an array with gp_row_T_free_all(rows, n). On failure every
 * output is left empty (zeroed rows, NULL arrays, n = 0): nothing to free,
 * though freeing is harmless.
 *
 * Thread-safety: every function is safe from any thread and concurrently
 * (each leases its own connection from the pool, which is thread-safe).
 */
#ifndef GROWPLATE_DATA_H
#define GROWPLATE_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "growplate/common.h"
#include "growplate/pool.h"
#include "growplate/rows.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits checked before any SQL. */
#define GP_DATA_MAX_NAME_CHARS 200   /* names: 1..200 characters once spaces are trimmed */
#define GP_DATA_MAX_TAGS 64          /* tags per menu item */
#define GP_DATA_MAX_ORDER_LINES 200  /* lines per order */
#define GP_DATA_MAX_QUANTITY 1000    /* quantity per line: 1..1000 */

/* ---- tenants ---------------------------------------------------------------------- */

/* Create a tenant through the schema's create_tenant() function (the
 * application role cannot insert tenants itself) and write its id, a
 * canonical lowercase UUID, into out_id (NUL-terminated). `slug` must match
 * [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])? (1..63 bytes, no leading or trailing
 * '-'); `name` 1..200 characters; `plan` NULL for "free", otherwise passed
 * to the schema, which allows "free", "pro" and "enterprise".
 * Errors: GP_ERR_INVALID (NULL pool/slug/name/out_id, a malformed slug or
 * name: nothing was sent), GP_ERR_SERVER class GP_ECLASS_UNIQUE (the slug is
 * taken; constraint tenants_slug_key), class GP_ECLASS_CHECK (a plan the
 * schema refuses; constraint tenants_plan_check). Not tenant-scoped: it
 * creates the scope. out_id is "" on failure. */
GP_EXPORT gp_status_t gp_data_create_tenant(gp_pool_t *pool, const char *slug, const char *name, const char *plan,
                                            char out_id[37], gp_error_t *err);

/* ---- menu --------------------------------------------------------------------------- */

/* Create a menu category of the tenant with a display position (lower
 * first). *out (may be NULL) receives the new row: free it with
 * gp_row_menu_categories_free(). Errors: GP_ERR_INVALID (name), GP_ERR_SERVER
 * class GP_ECLASS_UNIQUE (the tenant already has a category of that name). */
GP_EXPORT gp_status_t gp_data_create_category(gp_pool_t *pool, const char *tenant_id, const char *name,
                                              int32_t position, gp_row_menu_categories_t *out, gp_error_t *err);

/* Create a menu item in one of the tenant's categories. `description` may
 * be NULL (SQL NULL); `tags` holds n_tags NUL-terminated strings (none
 * NULL; tags may be NULL when n_tags is 0; at most GP_DATA_MAX_TAGS);
 * price_cents >= 0. *out (may be NULL) receives the new row: free it with
 * gp_row_menu_items_free(). Errors: GP_ERR_INVALID (arguments),
 * GP_ERR_NOT_FOUND (no such category for this tenant — also when the id is
 * another tenant's), GP_ERR_SERVER class GP_ECLASS_UNIQUE (the category
 * already has an item of that name). */
GP_EXPORT gp_status_t gp_data_create_menu_item(gp_pool_t *pool, const char *tenant_id, const char *category_id,
                                               const char *name, const char *description, int32_t price_cents,
                                               const char *const *tags, size_t n_tags, bool available,
                                               gp_row_menu_items_t *out, gp_error_t *err);

/* The tenant's menu items, in one category (category_id) or all of them
 * (category_id NULL), optionally only the available ones, sorted by the
 * category's position, the category's name, the item's name and the item's
 * id (deterministic). *rows receives a new array of *n rows (NULL and 0
 * when there are none, which includes an unknown category): free it with
 * gp_row_menu_items_free_all(*rows, *n). Errors: GP_ERR_INVALID (NULL rows
 * or n, a category id that is not a UUID). */
GP_EXPORT gp_status_t gp_data_list_menu_items(gp_pool_t *pool, const char *tenant_id, const char *category_id,
                                              bool available_only, gp_row_menu_items_t **rows, size_t *n,
                                              gp_error_t *err);

/* Keyset pagination. A page of a tenant list is the next `limit` rows of
 * its sort order after the last row of the previous page, found by the
 * row's sort key (WHERE (k1, k2, ...) > (last k1, last k2, ...) ORDER BY
 * k1, k2, ... LIMIT limit + 1), never by OFFSET: each page costs the same
 * however deep it is, and rows inserted or deleted meanwhile neither repeat
 * nor skip rows that stay. The sort key must be unique (end it with the
 * id). The cursor is opaque text that carries that key; it is not a
 * secret and needs no signature: the statement is tenant-scoped, so a
 * cursor made up or taken from another tenant only moves the position
 * within the caller's own rows. Options; zero-initialise ({0}); fields may
 * be appended. */
#define GP_DATA_DEFAULT_PAGE 100
#define GP_DATA_MAX_PAGE 1000
typedef struct gp_data_page_opts {
    int limit;          /* rows per page, 1..GP_DATA_MAX_PAGE; 0 = GP_DATA_DEFAULT_PAGE */
    const char *cursor; /* NULL or "": the first page; else a next_cursor this function returned */
} gp_data_page_opts_t;

/* One page of gp_data_list_menu_items (same rows, same order: the
 * category's position and name, the item's name and id). *rows and *n as
 * there (at most the limit). *next_cursor receives the cursor of the next
 * page (malloc'd: free() it), or NULL when this page is the last one.
 * page may be NULL (the first page of GP_DATA_DEFAULT_PAGE). Errors: as
 * gp_data_list_menu_items, GP_ERR_INVALID for a limit out of range or a
 * cursor this function did not make (nothing is sent). */
GP_EXPORT gp_status_t gp_data_list_menu_items_page(gp_pool_t *pool, const char *tenant_id, const char *category_id,
                                                   bool available_only, const gp_data_page_opts_t *page,
                                                   gp_row_menu_items_t **rows, size_t *n, char **next_cursor,
                                                   gp_error_t *err);

/* ---- orders ------------------------------------------------------------------------- */

/* One line of a new order: which menu item, how many. The price is never
 * the caller's: it is read from the menu inside the order's transaction. */
typedef struct gp_data_order_line {
    const char *menu_item_id; /* the item's id (a UUID) */
    int32_t quantity;         /* 1..GP_DATA_MAX_QUANTITY */
} gp_data_order_line_t;

/* A new order. Zero-initialise, then fill; fields may be added at the end. */
typedef struct gp_data_new_order {
    const char *customer_id;           /* a user of the tenant, or NULL (a walk-in) */
    const char *note;                  /* free text, or NULL */
    const gp_data_order_line_t *lines; /* 1..GP_DATA_MAX_ORDER_LINES lines */
    size_t n_lines;                    /* the same item may appear on several lines */
} gp_data_new_order_t;

/* Create an order with its items in ONE tenant-scoped transaction
 * (gp_tenant_run: retried on serialization failure or deadlock). Inside
 * it the menu items are read and share-locked (so their price and
 * availability cannot change before the order commits); every line must
 * name an existing, available item of the tenant; each order item's
 * unit_price_cents is the item's stored price and the order's total_cents
 * the sum of quantity × unit price. The order starts 'pending', its items
 * are numbered line_no 1..n in the order given. Nothing is written unless
 * everything succeeds.
 * *out receives the order: free it with gp_row_orders_free(). When items
 * is not NULL, *items receives its n_items items sorted by line_no: free
 * them with gp_row_order_items_free_all(*items, *n_items) (n_items must
 * then not be NULL).
 * Errors: GP_ERR_INVALID (NULL order/out, no lines or too many, a
 * quantity out of range, an id that is not a UUID — naming the line; an
 * item that is not available — naming the item and line: nothing was
 * written), GP_ERR_NOT_FOUND (a menu item — also another tenant's — or the
 * customer does not exist for this tenant, naming the id and line: nothing
 * was written). */
GP_EXPORT gp_status_t gp_data_create_order(gp_pool_t *pool, const char *tenant_id, const gp_data_new_order_t *order,
                                           gp_row_orders_t *out, gp_row_order_items_t **items, size_t *n_items,
                                           gp_error_t *err);

/* Whether an order may move from status `from` to `to`:
 *   pending → confirmed → preparing → ready → completed, one step at a time;
 *   any of pending, confirmed, preparing, ready → cancelled;
 *   completed and cancelled are final; staying in the same status is not a
 *   transition. False for values out of range. Pure; safe from any thread. */
GP_EXPORT bool gp_data_order_status_can_change(gp_order_status_t from, gp_order_status_t to);

/* Move the tenant's order `order_id` to status `to`, in one tenant-scoped
 * transaction that locks the order row, checks the transition with
 * gp_data_order_status_can_change() and updates it: updated_at is set to
 * the transaction's time, and completed_at too when `to` is completed.
 * Errors: GP_ERR_INVALID (an id that is not a UUID, `to` out of range, or a
 * transition the state machine refuses: the message names the order, from
 * and to, e.g. "order ...: cannot change status from 'completed' to
 * 'pending' (completed is final)"; nothing changed), GP_ERR_NOT_FOUND (no
 * such order for this tenant — also another tenant's order). */
GP_EXPORT gp_status_t gp_data_set_order_status(gp_pool_t *pool, const char *tenant_id, const char *order_id,
                                               gp_order_status_t to, gp_error_t *err);

/* Read the tenant's order `order_id` into *out (free with
 * gp_row_orders_free()) and, when items is not NULL, its items sorted by
 * line_no into *items / *n_items (free with gp_row_order_items_free_all()),
 * both from one snapshot (a read-only repeatable-read transaction).
 * Errors: GP_ERR_INVALID (NULL out, items without n_items, an id that is
 * not a UUID), GP_ERR_NOT_FOUND (no such order for this tenant — also
 * another tenant's order). */
GP_EXPORT gp_status_t gp_data_get_order(gp_pool_t *pool, const char *tenant_id, const char *order_id,
                                        gp_row_orders_t *out, gp_row_order_items_t **items, size_t *n_items,
                                        gp_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
