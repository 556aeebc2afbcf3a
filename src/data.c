/* data.c — typed data access for the core tables, built on the tenant layer
 * (every statement tenant-scoped, with a tenant_id predicate as well) and
 * the generated row types. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "growplate/data.h"
#include "growplate/tenant.h"
#include "data_internal.h"
#include "query_internal.h" /* gp__client_error */

/* ---- validation --------------------------------------------------------------------- */

static gp_status_t check_tenant(const char *tenant_id, gp_error_t *err)
{
    char why[200];
    if (gp_tenant_id_valid(tenant_id, why, sizeof why))
        return GP_OK;
    return gp__client_error(err, GP_ERR_TENANT, "%s", why);
}

/* The schema's name rule: length(btrim(name)) BETWEEN 1 AND 200, btrim
 * removing spaces only and length counting characters. Invalid UTF-8 is
 * caught by the query layer before sending. */
static gp_status_t check_name(const char *what, const char *s, gp_error_t *err)
{
    if (!s)
        return gp__client_error(err, GP_ERR_INVALID, "%s is NULL", what);
    while (*s == ' ')
        s++;
    size_t len = strlen(s);
    while (len && s[len - 1] == ' ')
        len--;
    size_t chars = 0;
    for (size_t i = 0; i < len; i++)
        chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    if (chars == 0)
        return gp__client_error(err, GP_ERR_INVALID, "%s is empty (or only spaces)", what);
    if (chars > GP_DATA_MAX_NAME_CHARS)
        return gp__client_error(err, GP_ERR_INVALID, "%s has %zu characters; at most %d", what, chars,
                                GP_DATA_MAX_NAME_CHARS);
    return GP_OK;
}

/* [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])? — the tenants_slug_check constraint. */
static gp_status_t check_slug(const char *slug, gp_error_t *err)
{
    if (!slug)
        return gp__client_error(err, GP_ERR_INVALID, "slug is NULL");
    size_t len = strlen(slug);
    if (len < 1 || len > 63)
        return gp__client_error(err, GP_ERR_INVALID, "slug has %zu bytes; expected 1 to 63", len);
    for (size_t i = 0; i < len; i++) {
        char c = slug[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && i > 0 && i + 1 < len))
            return gp__client_error(err, GP_ERR_INVALID, "slug has a byte 0x%02x at position %zu; expected "
                                    "lowercase letters, digits and inner '-'", (unsigned char)c, i + 1);
    }
    return GP_OK;
}

/* Parse an id the caller gave; canon (may be NULL) receives its canonical
 * form for messages. The text is never echoed when it does not parse. */
static gp_status_t parse_id(const char *what, const char *text, gp_uuid_t *out, char canon[37], gp_error_t *err)
{
    if (!text)
        return gp__client_error(err, GP_ERR_INVALID, "%s is NULL", what);
    if (gp_uuid_parse(text, out) != GP_OK)
        return gp__client_error(err, GP_ERR_INVALID, "%s is not a UUID", what);
    if (canon)
        gp_uuid_format(out, canon);
    return GP_OK;
}

/* Hand the internal error report to the caller. */
static gp_status_t finish(gp_status_t st, const gp_error_t *e, gp_error_t *err)
{
    if (err) {
        *err = *e;
        err->status = st;
    }
    return st;
}

/* A foreign key of ours that failed: the referenced row does not exist for
 * this tenant (every foreign key includes tenant_id, so another tenant's
 * row never matches). Turn it into GP_ERR_NOT_FOUND naming the thing. */
static bool fk_failed(gp_status_t st, const gp_error_t *e, const char *constraint)
{
    return st == GP_ERR_SERVER && e->klass == GP_ECLASS_FOREIGN_KEY && strcmp(e->constraint_name, constraint) == 0;
}

/* Decode the single row of a RETURNING / key lookup into *out. */
#define DECODE_ONE(T)                                                                                          \
    static gp_status_t decode_one_##T(const gp_result_t *r, gp_row_##T##_t *out, gp_error_t *err)             \
    {                                                                                                          \
        gp_row_##T##_map_t map;                                                                                \
        gp_status_t st = gp_row_##T##_bind(r, &map, err);                                                     \
        if (st != GP_OK)                                                                                       \
            return st;                                                                                         \
        if (gp_result_rows(r) != 1)                                                                            \
            return gp__client_error(err, GP_ERR_NOT_FOUND, "%s: expected one row, got %d", #T,                \
                                    gp_result_rows(r));                                                        \
        return gp_row_##T##_decode(r, &map, 0, out, err);                                                     \
    }
DECODE_ONE(menu_categories)
DECODE_ONE(menu_items)
DECODE_ONE(orders)

/* ---- tenants ------------------------------------------------------------------------- */

gp_status_t gp_data_create_tenant(gp_pool_t *pool, const char *slug, const char *name, const char *plan,
                                  char out_id[37], gp_error_t *err)
{
    if (out_id)
        out_id[0] = 0;
    if (!pool || !out_id)
        return gp__client_error(err, GP_ERR_INVALID, "no pool or out_id given");
    gp_status_t st;
    if ((st = check_slug(slug, err)) != GP_OK || (st = check_name("tenant name", name, err)) != GP_OK)
        return st;
    if (plan && !*plan)
        return gp__client_error(err, GP_ERR_INVALID, "plan is empty (pass NULL for the default, free)");
    gp_error_t e;
    gp_error_clear(&e);
    gp_conn_t *conn;
    if ((st = gp_pool_acquire(pool, "create_tenant", -1, &conn, &e)) != GP_OK)
        return finish(st, &e, err);
    gp_result_t *r = NULL;
    st = gp_query(conn, "SELECT public.create_tenant($1, $2, $3)",
                  GP_ARGS(gp_text(slug), gp_text(name), gp_text(plan ? plan : "free")), &r, &e);
    gp_pool_release(conn);
    if (st == GP_OK) {
        gp_uuid_t id;
        if ((st = gp_get_uuid(r, 0, 0, &id)) == GP_OK)
            gp_uuid_format(&id, out_id);
        else
            gp__client_error(&e, st, "create_tenant() returned no id: %s", gp_strerror(st));
    }
    gp_result_free(r);
    return finish(st, &e, err);
}

/* ---- menu ----------------------------------------------------------------------------- */

gp_status_t gp_data_create_category(gp_pool_t *pool, const char *tenant_id, const char *name, int32_t position,
                                    gp_row_menu_categories_t *out, gp_error_t *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    gp_status_t st;
    if ((st = check_tenant(tenant_id, err)) != GP_OK)
        return st;
    if (!pool)
        return gp__client_error(err, GP_ERR_INVALID, "no pool given");
    if ((st = check_name("category name", name, err)) != GP_OK)
        return st;
    gp_error_t e;
    gp_error_clear(&e);
    gp_result_t *r = NULL;
    st = gp_tenant_query(pool, tenant_id,
                         "INSERT INTO public.menu_categories (tenant_id, name, position) VALUES ($1, $2, $3) "
                         "RETURNING " GP_MENU_CATEGORIES_COLUMNS,
                         GP_ARGS(gp_uuid_str(tenant_id), gp_text(name), gp_int32(position)), &r, &e);
    if (st == GP_OK && out)
        st = decode_one_menu_categories(r, out, &e);
    gp_result_free(r);
    return finish(st, &e, err);
}

gp_status_t gp_data_create_menu_item(gp_pool_t *pool, const char *tenant_id, const char *category_id,
                                     const char *name, const char *description, int32_t price_cents,
                                     const char *const *tags, size_t n_tags, bool available,
                                     gp_row_menu_items_t *out, gp_error_t *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    gp_status_t st;
    if ((st = check_tenant(tenant_id, err)) != GP_OK)
        return st;
    if (!pool)
        return gp__client_error(err, GP_ERR_INVALID, "no pool given");
    gp_uuid_t cat;
    char cat_s[37];
    if ((st = parse_id("category id", category_id, &cat, cat_s, err)) != GP_OK ||
        (st = check_name("menu item name", name, err)) != GP_OK)
        return st;
    if (price_cents < 0)
        return gp__client_error(err, GP_ERR_INVALID, "price_cents is %d; it cannot be negative", (int)price_cents);
    if (n_tags > GP_DATA_MAX_TAGS || (n_tags && !tags))
        return gp__client_error(err, GP_ERR_INVALID, "%zu tags given%s; at most %d", n_tags,
                                n_tags && !tags ? " without an array" : "", GP_DATA_MAX_TAGS);
    for (size_t i = 0; i < n_tags; i++)
        if (!tags[i])
            return gp__client_error(err, GP_ERR_INVALID, "tag %zu is NULL", i + 1);
    gp_error_t e;
    gp_error_clear(&e);
    gp_result_t *r = NULL;
    st = gp_tenant_query(pool, tenant_id,
                         "INSERT INTO public.menu_items (tenant_id, category_id, name, description, price_cents, tags, "
                         "available) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING " GP_MENU_ITEMS_COLUMNS,
                         GP_ARGS(gp_uuid_str(tenant_id), gp_uuid(cat), gp_text(name), gp_text(description),
                                 gp_int32(price_cents), gp_text_array(tags, n_tags), gp_bool(available)),
                         &r, &e);
    if (fk_failed(st, &e, "menu_items_category_fkey"))
        st = gp__client_error(&e, GP_ERR_NOT_FOUND, "category %s not found", cat_s);
    if (st == GP_OK && out)
        st = decode_one_menu_items(r, out, &e);
    gp_result_free(r);
    return finish(st, &e, err);
}

/* Joined with the categories (columns renamed, so the generated select list
 * stays unambiguous) for the sort order. $1 tenant[, $2 category]. */
#define LIST_SQL_HEAD                                                                                          \
    "SELECT " GP_MENU_ITEMS_COLUMNS " FROM public.menu_items JOIN (SELECT tenant_id AS c_tenant_id, "         \
    "id AS c_id, position AS c_position, name AS c_name FROM public.menu_categories WHERE tenant_id = $1) c "  \
    "ON c.c_tenant_id = menu_items.tenant_id AND c.c_id = menu_items.category_id WHERE tenant_id = $1"
#define LIST_SQL_TAIL " ORDER BY c_position, c_name, name, id"

gp_status_t gp_data_list_menu_items(gp_pool_t *pool, const char *tenant_id, const char *category_id,
                                    bool available_only, gp_row_menu_items_t **rows, size_t *n, gp_error_t *err)
{
    if (rows)
        *rows = NULL;
    if (n)
        *n = 0;
    gp_status_t st;
    if ((st = check_tenant(tenant_id, err)) != GP_OK)
        return st;
    if (!pool || !rows || !n)
        return gp__client_error(err, GP_ERR_INVALID, "no pool, rows or n given");
    gp_uuid_t cat;
    if (category_id && (st = parse_id("category id", category_id, &cat, NULL, err)) != GP_OK)
        return st;
    /* Four fixed statements rather than "($2 IS NULL OR ...)": each gets a
     * plan that can use the (tenant_id, category_id) WHERE available index. */
    static const char *const sql[2][2] = {
        {LIST_SQL_HEAD LIST_SQL_TAIL, LIST_SQL_HEAD " AND available" LIST_SQL_TAIL},
        {LIST_SQL_HEAD " AND category_id = $2" LIST_SQL_TAIL,
         LIST_SQL_HEAD " AND category_id = $2 AND available" LIST_SQL_TAIL},
    };
    gp_value_t params[2] = {gp_uuid_str(tenant_id), category_id ? gp_uuid(cat) : gp_null()};
    gp_error_t e;
    gp_error_clear(&e);
    gp_result_t *r = NULL;
    st = gp_tenant_query(pool, tenant_id, sql[category_id != NULL][available_only], category_id ? 2 : 1, params, &r,
                         &e);
    if (st == GP_OK)
        st = gp_row_menu_items_decode_all(r, rows, n, &e);
    gp_result_free(r);
    return finish(st, &e, err);
}

/* ---- keyset pages --------------------------------------------------------------------------- */

typedef gp__page_key_t page_key_t;

static char *hex_of(const char *s, size_t len, gp__sbuf_t *b)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++)
        gp__sbuf_add(b, "%c%c", digits[(unsigned char)s[i] >> 4], digits[(unsigned char)s[i] & 15]);
    return b->s;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode the hex text p[0..len) into a new string; NULL when malformed or out of memory (*nomem). */
static char *unhex(const char *p, size_t len, bool *nomem)
{
    if (len % 2 || len > 4096)
        return NULL;
    char *out = malloc(len / 2 + 1);
    if (!out) {
        *nomem = true;
        return NULL;
    }
    for (size_t i = 0; i < len; i += 2) {
        int hi = hexval(p[i]), lo = hexval(p[i + 1]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[i / 2] = (char)(hi << 4 | lo);
    }
    out[len / 2] = 0;
    return out;
}

/* Canonical decimal of an int32: "0", or an optional '-' and no leading zero. */
static bool canonical_int32(const char *s, size_t n, int32_t *out)
{
    size_t i = n && s[0] == '-';
    if (n == i || n - i > 10 || (s[i] == '0' && (n - i > 1 || i)))
        return false;
    int64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    v = s[0] == '-' ? -v : v;
    if (v < INT32_MIN || v > INT32_MAX)
        return false;
    *out = (int32_t)v;
    return true;
}

gp_status_t gp__page_cursor_parse(const char *c, page_key_t *k, gp_error_t *err)
{
    memset(k, 0, sizeof *k);
    bool nomem = false;
    const char *f[5];
    size_t flen[5];
    const char *p = c;
    for (int i = 0; i < 5; i++) {
        f[i] = p;
        const char *dot = i < 4 ? strchr(p, '.') : p + strlen(p);
        if (!dot)
            goto bad;
        flen[i] = (size_t)(dot - p);
        p = dot + (i < 4);
    }
    if (flen[0] != 2 || memcmp(f[0], "m1", 2) != 0 || flen[4] != 36 || !canonical_int32(f[1], flen[1], &k->position))
        goto bad;
    char id[37], canon[37];
    memcpy(id, f[4], 36);
    id[36] = 0;
    if (gp_uuid_parse(id, &k->id) != GP_OK)
        goto bad;
    gp_uuid_format(&k->id, canon);
    if (strcmp(canon, id) != 0) /* one spelling per cursor */
        goto bad;
    if (!(k->category = unhex(f[2], flen[2], &nomem)) || !(k->name = unhex(f[3], flen[3], &nomem)))
        goto bad;
    return GP_OK;
bad:
    free(k->category);
    free(k->name);
    k->category = k->name = NULL;
    if (nomem)
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
    return gp__client_error(err, GP_ERR_INVALID, "the page cursor is not one gp_data_list_menu_items_page returned "
                            "(pass next_cursor unchanged, or NULL for the first page)");
}

gp_status_t gp__page_cursor_format(const page_key_t *k, char **out, gp_error_t *err)
{
    char id[37];
    gp_uuid_format(&k->id, id);
    gp__sbuf_t b = {0};
    gp__sbuf_add(&b, "m1.%d.", (int)k->position);
    hex_of(k->category, strlen(k->category), &b);
    gp__sbuf_add(&b, ".");
    hex_of(k->name, strlen(k->name), &b);
    gp__sbuf_add(&b, ".%s", id);
    if (b.oom) {
        free(b.s);
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
    }
    *out = b.s;
    return GP_OK;
}

/* The cursor after row `row` of r (the page's last). */
static gp_status_t make_cursor(const gp_result_t *r, int row, const gp_row_menu_items_t *item, char **out,
                               gp_error_t *err)
{
    page_key_t k = {.id = item->id, .name = item->name};
    const char *cat = NULL;
    if (gp_get_int32(r, row, gp_col(r, "c_position"), &k.position) != GP_OK ||
        gp_get_text(r, row, gp_col(r, "c_name"), &cat, NULL) != GP_OK)
        return gp__client_error(err, GP_ERR_PROTOCOL, "the page's sort key is missing from the result");
    k.category = (char *)cat;
    return gp__page_cursor_format(&k, out, err);
}

gp_status_t gp_data_list_menu_items_page(gp_pool_t *pool, const char *tenant_id, const char *category_id,
                                         bool available_only, const gp_data_page_opts_t *page,
                                         gp_row_menu_items_t **rows, size_t *n, char **next_cursor, gp_error_t *err)
{
    if (rows)
        *rows = NULL;
    if (n)
        *n = 0;
    if (next_cursor)
        *next_cursor = NULL;
    gp_status_t st;
    if ((st = check_tenant(tenant_id, err)) != GP_OK)
        return st;
    if (!pool || !rows || !n || !next_cursor)
        return gp__client_error(err, GP_ERR_INVALID, "no pool, rows, n or next_cursor given");
    int limit = page && page->limit ? page->limit : GP_DATA_DEFAULT_PAGE;
    if (limit < 1 || limit > GP_DATA_MAX_PAGE)
        return gp__client_error(err, GP_ERR_INVALID, "page limit %d is out of range 1..%d", limit, GP_DATA_MAX_PAGE);
    gp_uuid_t cat;
    if (category_id && (st = parse_id("category id", category_id, &cat, NULL, err)) != GP_OK)
        return st;
    page_key_t key = {0};
    bool after = page && page->cursor && *page->cursor;
    if (after && (st = gp__page_cursor_parse(page->cursor, &key, err)) != GP_OK)
        return st;
    gp_value_t params[7];
    int np = 0;
    params[np++] = gp_uuid_str(tenant_id);
    gp__sbuf_t b = {0};
    gp__sbuf_add(&b, "SELECT " GP_MENU_ITEMS_COLUMNS ", c_position, c_name FROM public.menu_items JOIN (SELECT "
                 "tenant_id AS c_tenant_id, id AS c_id, position AS c_position, name AS c_name FROM "
                 "public.menu_categories WHERE tenant_id = $1) c ON c.c_tenant_id = menu_items.tenant_id AND c.c_id = "
                 "menu_items.category_id WHERE tenant_id = $1");
    if (category_id) {
        params[np++] = gp_uuid(cat);
        gp__sbuf_add(&b, " AND category_id = $%d", np);
    }
    if (available_only)
        gp__sbuf_add(&b, " AND available");
    if (after) {
        params[np++] = gp_int32(key.position);
        params[np++] = gp_text(key.category);
        params[np++] = gp_text(key.name);
        params[np++] = gp_uuid(key.id);
        gp__sbuf_add(&b, " AND (c_position, c_name, name, id) > ($%d::pg_catalog.int4, $%d::pg_catalog.text, "
                     "$%d::pg_catalog.text, $%d::pg_catalog.uuid)", np - 3, np - 2, np - 1, np);
    }
    params[np++] = gp_int64((int64_t)limit + 1); /* one more: is there a next page? */
    gp__sbuf_add(&b, " ORDER BY c_position, c_name, name, id LIMIT $%d::pg_catalog.int8", np);
    gp_error_t e;
    gp_error_clear(&e);
    gp_result_t *r = NULL;
    if (b.oom)
        st = gp__client_error(&e, GP_ERR_NOMEM, "out of memory");
    else
        st = gp_tenant_query(pool, tenant_id, b.s, np, params, &r, &e);
    free(b.s);
    free(key.category);
    free(key.name);
    if (st == GP_OK)
        st = gp_row_menu_items_decode_all(r, rows, n, &e);
    if (st == GP_OK && *n > (size_t)limit) {
        st = make_cursor(r, limit - 1, &(*rows)[limit - 1], next_cursor, &e);
        gp_row_menu_items_free(&(*rows)[limit]);
        *n = (size_t)limit;
        if (st != GP_OK) {
            gp_row_menu_items_free_all(*rows, *n);
            *rows = NULL;
            *n = 0;
        }
    }
    gp_result_free(r);
    return finish(st, &e, err);
}

/* ---- orders ------------------------------------------------------------------------------- */

static int by_line_no(const void *a, const void *b)
{
    int32_t x = ((const gp_row_order_items_t *)a)->line_no, y = ((const gp_row_order_items_t *)b)->line_no;
    return (x > y) - (x < y);
}

/* Decode order items and sort them by line_no (RETURNING has no order). */
static gp_status_t decode_items(const gp_result_t *r, gp_row_order_items_t **items, size_t *n, gp_error_t *err)
{
    gp_status_t st = gp_row_order_items_decode_all(r, items, n, err);
    if (st == GP_OK && *n > 1)
        qsort(*items, *n, sizeof **items, by_line_no);
    return st;
}

/* An order and its items as one attempt of a transaction produced them:
 * reset at the start of every attempt, handed to the caller on success. */
typedef struct order_out {
    gp_row_orders_t order;
    gp_row_order_items_t *items;
    size_t n_items;
} order_out_t;

static void order_out_reset(order_out_t *o)
{
    gp_row_orders_free(&o->order);
    gp_row_order_items_free_all(o->items, o->n_items);
    o->items = NULL;
    o->n_items = 0;
}

/* Empty the caller's outputs (any may be NULL). */
static void order_out_clear(gp_row_orders_t *out, gp_row_order_items_t **items, size_t *n_items)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (items)
        *items = NULL;
    if (n_items)
        *n_items = 0;
}

/* Move the results to the caller (items only when asked for). */
static void order_out_give(order_out_t *o, gp_row_orders_t *out, gp_row_order_items_t **items, size_t *n_items)
{
    *out = o->order;
    memset(&o->order, 0, sizeof o->order);
    if (items) {
        *items = o->items;
        *n_items = o->n_items;
        o->items = NULL;
        o->n_items = 0;
    }
}

typedef struct order_ctx {
    const gp_data_new_order_t *in;
    bool has_customer;
    gp_uuid_t customer;
    char customer_s[37];
    char (*item_s)[37];      /* canonical id of each line's item */
    const char **item_ptrs;  /* the same, as a text[] parameter */
    int64_t *qty, *price;    /* per line: quantity, stored unit price */
    bool want_items;
    order_out_t res; /* of the last attempt */
} order_ctx_t;

/* Read (and share-lock) the lines' menu items; fill c->price; the total. */
static gp_status_t price_lines(gp_tenant_tx_t *tx, order_ctx_t *c, int64_t *total, gp_error_t *err)
{
    gp_result_t *r = NULL;
    gp_status_t st = gp_tenant_tx_query(tx,
                                        "SELECT " GP_MENU_ITEMS_COLUMNS " FROM public.menu_items WHERE tenant_id = $1 "
                                        "AND id = ANY($2::pg_catalog.uuid[]) ORDER BY id FOR SHARE",
                                        GP_ARGS(gp_uuid_str(gp_tenant_tx_tenant(tx)),
                                                gp_text_array(c->item_ptrs, c->in->n_lines)),
                                        &r, err);
    gp_row_menu_items_t *menu = NULL;
    size_t n_menu = 0;
    if (st == GP_OK)
        st = gp_row_menu_items_decode_all(r, &menu, &n_menu, err);
    gp_result_free(r);
    if (st != GP_OK)
        return st;
    *total = 0;
    for (size_t i = 0; i < c->in->n_lines && st == GP_OK; i++) {
        gp_uuid_t id;
        gp_uuid_parse(c->item_s[i], &id); /* canonical already */
        const gp_row_menu_items_t *m = NULL;
        for (size_t j = 0; j < n_menu && !m; j++)
            if (memcmp(menu[j].id.bytes, id.bytes, sizeof id.bytes) == 0)
                m = &menu[j];
        if (!m)
            st = gp__client_error(err, GP_ERR_NOT_FOUND, "line %zu: menu item %s not found", i + 1, c->item_s[i]);
        else if (!m->available)
            st = gp__client_error(err, GP_ERR_INVALID, "line %zu: menu item '%.200s' (%s) is not available", i + 1,
                                  m->name, c->item_s[i]);
        else {
            c->price[i] = m->price_cents;
            *total += c->qty[i] * c->price[i]; /* <= 200 lines x 1000 x 2^31: no overflow */
        }
    }
    gp_row_menu_items_free_all(menu, n_menu);
    return st;
}

static gp_status_t create_order_fn(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    order_ctx_t *c = ud;
    order_out_reset(&c->res); /* a retry starts from nothing */
    int64_t total;
    gp_status_t st = price_lines(tx, c, &total, err);
    if (st != GP_OK)
        return st;

    static const char *const cols[] = {"customer_id", "note", "total_cents"};
    gp_value_t vals[] = {c->has_customer ? gp_uuid(c->customer) : gp_null(), gp_text(c->in->note),
                         gp_int64(total)};
    gp_result_t *r = NULL;
    st = gp_tenant_insert(tx, GP_ORDERS_TABLE, 3, cols, vals, GP_ORDERS_COLUMNS, &r, err);
    if (fk_failed(st, err, "orders_customer_fkey"))
        st = gp__client_error(err, GP_ERR_NOT_FOUND, "customer %s not found", c->customer_s);
    if (st == GP_OK)
        st = decode_one_orders(r, &c->res.order, err);
    gp_result_free(r);
    if (st != GP_OK)
        return st;

    /* All lines in one statement; line_no is the position in the input. */
    gp_value_t p[] = {gp_uuid_str(gp_tenant_tx_tenant(tx)), gp_uuid(c->res.order.id),
                      gp_text_array(c->item_ptrs, c->in->n_lines), gp_int_array(c->qty, c->in->n_lines),
                      gp_int_array(c->price, c->in->n_lines)};
    static const char items_sql[] =
        "INSERT INTO public.order_items (tenant_id, order_id, line_no, menu_item_id, quantity, unit_price_cents) "
        "SELECT $1, $2, l.line_no, l.menu_item_id, l.quantity, l.unit_price_cents "
        "FROM ROWS FROM (pg_catalog.unnest($3::pg_catalog.uuid[]), pg_catalog.unnest($4::pg_catalog.int4[]), "
        "pg_catalog.unnest($5::pg_catalog.int4[])) WITH ORDINALITY "
        "AS l(menu_item_id, quantity, unit_price_cents, line_no) RETURNING " GP_ORDER_ITEMS_COLUMNS;
    if ((st = gp_tenant_tx_query(tx, items_sql, 5, p, &r, err)) != GP_OK)
        return st;
    if (gp_result_affected(r) != (int64_t)c->in->n_lines)
        st = gp__client_error(err, GP_ERR_PROTOCOL, "order items: %lld of %zu lines inserted",
                              (long long)gp_result_affected(r), c->in->n_lines);
    else if (c->want_items)
        st = decode_items(r, &c->res.items, &c->res.n_items, err);
    gp_result_free(r);
    return st;
}

/* Validate the order and prepare the per-line parameters. */
static gp_status_t order_ctx_init(order_ctx_t *c, const gp_data_new_order_t *in, gp_error_t *err)
{
    memset(c, 0, sizeof *c);
    c->in = in;
    if (!in->lines || in->n_lines < 1 || in->n_lines > GP_DATA_MAX_ORDER_LINES)
        return gp__client_error(err, GP_ERR_INVALID, "an order needs 1 to %d lines; %zu given%s",
                                GP_DATA_MAX_ORDER_LINES, in->n_lines, in->lines ? "" : " (lines is NULL)");
    if (in->customer_id) {
        gp_status_t st = parse_id("customer id", in->customer_id, &c->customer, c->customer_s, err);
        if (st != GP_OK)
            return st;
        c->has_customer = true;
    }
    size_t n = in->n_lines;
    c->item_s = calloc(n, sizeof *c->item_s);
    c->item_ptrs = calloc(n, sizeof *c->item_ptrs);
    c->qty = calloc(n, sizeof *c->qty);
    c->price = calloc(n, sizeof *c->price);
    if (!c->item_s || !c->item_ptrs || !c->qty || !c->price)
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const gp_data_order_line_t *l = &in->lines[i];
        char what[48];
        snprintf(what, sizeof what, "line %zu: menu item id", i + 1);
        gp_uuid_t id;
        gp_status_t st = parse_id(what, l->menu_item_id, &id, c->item_s[i], err);
        if (st != GP_OK)
            return st;
        if (l->quantity < 1 || l->quantity > GP_DATA_MAX_QUANTITY)
            return gp__client_error(err, GP_ERR_INVALID, "line %zu: quantity %d of menu item %s is out of range "
                                    "(1 to %d)", i + 1, (int)l->quantity, c->item_s[i], GP_DATA_MAX_QUANTITY);
        c->item_ptrs[i] = c->item_s[i];
        c->qty[i] = l->quantity;
    }
    return GP_OK;
}

static void order_ctx_free(order_ctx_t *c)
{
    order_out_reset(&c->res);
    free(c->item_s);
    free(c->item_ptrs);
    free(c->qty);
    free(c->price);
}

gp_status_t gp_data_create_order(gp_pool_t *pool, const char *tenant_id, const gp_data_new_order_t *order,
                                 gp_row_orders_t *out, gp_row_order_items_t **items, size_t *n_items,
                                 gp_error_t *err)
{
    order_out_clear(out, items, n_items);
    gp_status_t st;
    if ((st = check_tenant(tenant_id, err)) != GP_OK)
        return st;
    if (!pool || !order || !out || (items && !n_items))
        return gp__client_error(err, GP_ERR_INVALID, "no pool, order or out given (or items without n_items)");
    order_ctx_t c;
    if ((st = order_ctx_init(&c, order, err)) != GP_OK) {
        order_ctx_free(&c);
        return st;
    }
    c.want_items = items != NULL;
    gp_error_t e;
    gp_error_clear(&e);
    st = gp_tenant_run(pool, tenant_id, NULL, create_order_fn, &c, NULL, &e);
    if (st == GP_OK)
        order_out_give(&c.res, out, items, n_items);
    order_ctx_free(&c);
    return finish(st, &e, err);
}

bool gp_data_order_status_can_change(gp_order_status_t from, gp_order_status_t to)
{
    if ((unsigned)from >= GP_ORDER_STATUS_COUNT_ || (unsigned)to >= GP_ORDER_STATUS_COUNT_)
        return false;
    if (from == GP_ORDER_STATUS_COMPLETED || from == GP_ORDER_STATUS_CANCELLED)
        return false;
    if (to == GP_ORDER_STATUS_CANCELLED)
        return true;
    switch (from) {
    case GP_ORDER_STATUS_PENDING: return to == GP_ORDER_STATUS_CONFIRMED;
    case GP_ORDER_STATUS_CONFIRMED: return to == GP_ORDER_STATUS_PREPARING;
    case GP_ORDER_STATUS_PREPARING: return to == GP_ORDER_STATUS_READY;
    case GP_ORDER_STATUS_READY: return to == GP_ORDER_STATUS_COMPLETED;
    default: return false;
    }
}

typedef struct status_ctx {
    gp_uuid_t id;
    char id_s[37];
    gp_order_status_t to;
} status_ctx_t;

static gp_status_t set_status_fn(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    status_ctx_t *c = ud;
    gp_result_t *r = NULL;
    gp_status_t st = gp_tenant_tx_query(tx,
                                        "SELECT " GP_ORDERS_COLUMNS " FROM public.orders "
                                        "WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                                        GP_ARGS(gp_uuid_str(gp_tenant_tx_tenant(tx)), gp_uuid(c->id)), &r, err);
    if (st != GP_OK)
        return st;
    if (gp_result_rows(r) == 0) {
        gp_result_free(r);
        return gp__client_error(err, GP_ERR_NOT_FOUND, "order %s not found", c->id_s);
    }
    gp_row_orders_t o;
    st = decode_one_orders(r, &o, err);
    gp_result_free(r);
    if (st != GP_OK)
        return st;
    gp_order_status_t from = o.status;
    gp_row_orders_free(&o);
    if (!gp_data_order_status_can_change(from, c->to)) {
        const char *why = from == c->to                    ? "it already has that status"
                          : from == GP_ORDER_STATUS_COMPLETED ? "completed is final"
                          : from == GP_ORDER_STATUS_CANCELLED ? "cancelled is final"
                                                              : "an order moves pending, confirmed, preparing, "
                                                                "ready, completed one step at a time, or is "
                                                                "cancelled";
        return gp__client_error(err, GP_ERR_INVALID, "order %s: cannot change status from '%s' to '%s' (%s)",
                                c->id_s, gp_order_status_label(from), gp_order_status_label(c->to), why);
    }
    int64_t n = 0;
    st = gp_tenant_tx_exec(tx,
                           "UPDATE public.orders SET status = $3, updated_at = pg_catalog.now(), "
                           "completed_at = CASE WHEN $4 THEN pg_catalog.now() ELSE completed_at END "
                           "WHERE tenant_id = $1 AND id = $2",
                           GP_ARGS(gp_uuid_str(gp_tenant_tx_tenant(tx)), gp_uuid(c->id),
                                   gp_text(gp_order_status_label(c->to)),
                                   gp_bool(c->to == GP_ORDER_STATUS_COMPLETED)),
                           &n, err);
    if (st == GP_OK && n != 1) /* cannot happen: the row is locked */
        st = gp__client_error(err, GP_ERR_PROTOCOL, "order %s: %lld rows updated", c->id_s, (long long)n);
    return st;
}

gp_status_t gp_data_set_order_status(gp_pool_t *pool, const char *tenant_id, const char *order_id,
                                     gp_order_status_t to, gp_error_t *err)
{
    gp_status_t st;
    if ((st = check_tenant(tenant_id, err)) != GP_OK)
        return st;
    if (!pool)
        return gp__client_error(err, GP_ERR_INVALID, "no pool given");
    status_ctx_t c = {.to = to};
    if ((st = parse_id("order id", order_id, &c.id, c.id_s, err)) != GP_OK)
        return st;
    if (!gp_order_status_label(to))
        return gp__client_error(err, GP_ERR_INVALID, "order status %d is not a gp_order_status_t", (int)to);
    gp_error_t e;
    gp_error_clear(&e);
    st = gp_tenant_run(pool, tenant_id, NULL, set_status_fn, &c, NULL, &e);
    return finish(st, &e, err);
}

typedef struct get_ctx {
    gp_uuid_t id;
    char id_s[37];
    bool want_items;
    order_out_t res; /* of the last attempt */
} get_ctx_t;

static gp_status_t get_order_fn(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    get_ctx_t *c = ud;
    order_out_reset(&c->res);
    gp_result_t *r = NULL;
    gp_status_t st = gp_tenant_get(tx, GP_ORDERS_TABLE, GP_ORDERS_COLUMNS, GP_ORDERS_COL_ID, gp_uuid(c->id), &r, err);
    if (st == GP_OK && gp_result_rows(r) == 0)
        st = gp__client_error(err, GP_ERR_NOT_FOUND, "order %s not found", c->id_s);
    if (st == GP_OK)
        st = decode_one_orders(r, &c->res.order, err);
    gp_result_free(r);
    if (st != GP_OK || !c->want_items)
        return st;
    st = gp_tenant_tx_query(tx,
                            "SELECT " GP_ORDER_ITEMS_COLUMNS " FROM public.order_items WHERE tenant_id = $1 "
                            "AND order_id = $2 ORDER BY line_no",
                            GP_ARGS(gp_uuid_str(gp_tenant_tx_tenant(tx)), gp_uuid(c->id)), &r, err);
    if (st == GP_OK)
        st = gp_row_order_items_decode_all(r, &c->res.items, &c->res.n_items, err);
    gp_result_free(r);
    return st;
}

gp_status_t gp_data_get_order(gp_pool_t *pool, const char *tenant_id, const char *order_id, gp_row_orders_t *out,
                              gp_row_order_items_t **items, size_t *n_items, gp_error_t *err)
{
    order_out_clear(out, items, n_items);
    gp_status_t st;
    if ((st = check_tenant(tenant_id, err)) != GP_OK)
        return st;
    if (!pool || !out || (items && !n_items))
        return gp__client_error(err, GP_ERR_INVALID, "no pool or out given (or items without n_items)");
    get_ctx_t c = {.want_items = items != NULL};
    if ((st = parse_id("order id", order_id, &c.id, c.id_s, err)) != GP_OK)
        return st;
    /* One snapshot for the order and its items. */
    gp_tx_opts_t opts = {.isolation = GP_ISOLATION_REPEATABLE_READ, .read_only = true};
    gp_error_t e;
    gp_error_clear(&e);
    st = gp_tenant_run(pool, tenant_id, &opts, get_order_fn, &c, NULL, &e);
    if (st == GP_OK)
        order_out_give(&c.res, out, items, n_items);
    order_out_reset(&c.res);
    return finish(st, &e, err);
}
