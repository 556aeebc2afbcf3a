/* handlers.c — the endpoints: the tenant from the request, the menu through
 * the cache (cache-aside, the database behind it), orders (created in the
 * tenant's scope; the cached list of recent ones invalidated), health and
 * metrics of this process's pool and cache. */
#include "handlers.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Cache keys (per tenant: the cache puts every key in the tenant's own
 * keyspace). The JSON shape's version is part of the key, so a release that
 * changes the shape reads fresh keys instead of an older release's values. */
#define MENU_KEY "menu:v1"
/* The recent orders are cached under a version that every new order bumps
 * (see handle_order_list). The counter lives far longer than any list. */
#define ORDERS_VERSION_KEY "orders:version"
#define ORDERS_VERSION_TTL_MS (24 * 3600 * 1000)
#define ORDERS_RECENT_LIMIT 20
#define NOTE_MAX_BYTES 1000

static const char slug_rule[] = "a tenant slug is 1 to 63 characters of a-z, 0-9 and '-', "
                                "neither first nor last a '-'";

/* ---- which tenant ---------------------------------------------------------------- */

static bool ipv4_literal(const char *host, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)host[i]) && host[i] != '.')
            return false;
    return true;
}

/* The tenant of the request: the X-Tenant header when present, else the
 * first label of the Host name (trattoria-demo.example.com,
 * trattoria-demo.localhost:8080). On success writes the tenant id and
 * returns true; otherwise answers (400 no or malformed slug, 404 no such
 * tenant, 503 the database cannot say) into *answer and returns false. */
static bool request_tenant(request_t *rq, char id[37], enum MHD_Result *answer)
{
    char slug[TENANT_SLUG_MAX + 1];
    const char *h = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "X-Tenant");
    if (h) {
        size_t len = strlen(h);
        if (!tenant_slug_valid(h, len)) {
            *answer = respond_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_tenant", slug_rule);
            return false;
        }
        memcpy(slug, h, len + 1);
    } else {
        const char *host = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
        size_t hlen = host ? strcspn(host, ":") : 0; /* without the port */
        const char *dot = host ? memchr(host, '.', hlen) : NULL;
        if (!host || host[0] == '[' || !dot || ipv4_literal(host, hlen)) {
            *answer = respond_error(rq, MHD_HTTP_BAD_REQUEST, "tenant_required",
                                    "name the tenant: an X-Tenant header, or a Host of the form "
                                    "<slug>.<domain> (trattoria-demo.localhost:8080)");
            return false;
        }
        size_t len = (size_t)(dot - host);
        if (len > TENANT_SLUG_MAX) {
            *answer = respond_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_tenant", slug_rule);
            return false;
        }
        for (size_t i = 0; i < len; i++) /* host names are case-insensitive */
            slug[i] = (char)tolower((unsigned char)host[i]);
        slug[len] = 0;
        if (!tenant_slug_valid(slug, len)) {
            *answer = respond_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_tenant", slug_rule);
            return false;
        }
    }
    memcpy(rq->tenant_slug, slug, sizeof slug); /* validated: safe to log and echo */

    gp_error_t err;
    gp_status_t st = tenant_resolve(rq->svc->tenants, rq->svc->pool, slug, id, &err);
    if (st == GP_OK)
        return true;
    if (st == GP_ERR_NOT_FOUND) {
        char msg[128];
        snprintf(msg, sizeof msg, "no active tenant '%s'", slug);
        *answer = respond_error(rq, MHD_HTTP_NOT_FOUND, "tenant_not_found", msg);
    } else {
        *answer = respond_failure(rq, "resolving the tenant", st, &err);
    }
    return false;
}

/* ---- JSON of rows ----------------------------------------------------------------------- */

/* Append v (taken over, NULL accepted) to arr; false when either is NULL or
 * the append fails (v is then released). */
static bool append(json_t *arr, json_t *v)
{
    return v && json_array_append_new(arr, v) == 0;
}

static json_t *uuid_json(const gp_uuid_t *u)
{
    char text[37];
    return json_string(gp_uuid_format(u, text));
}

/* RFC 3339 in UTC with microseconds, "2024-05-01T12:34:56.123456Z". */
static json_t *time_json(int64_t unix_us)
{
    if (unix_us == GP_TIMESTAMP_INFINITY || unix_us == GP_TIMESTAMP_NEG_INFINITY)
        return json_string(unix_us > 0 ? "infinity" : "-infinity");
    int64_t s = unix_us / 1000000, us = unix_us % 1000000;
    if (us < 0) {
        us += 1000000;
        s -= 1;
    }
    time_t t = (time_t)s;
    struct tm tm;
    char text[48], frac[16];
    if (!gmtime_r(&t, &tm) || !strftime(text, sizeof text - sizeof frac, "%Y-%m-%dT%H:%M:%S", &tm))
        return NULL;
    snprintf(frac, sizeof frac, ".%06dZ", (int)us);
    strcat(text, frac);
    return json_string(text);
}

/* {"id":..,"name":..,"items":[..]} per category with at least one
 * available item, in the categories' order; items by name. */
static json_t *menu_json(const gp_row_menu_categories_t *cats, size_t nc, const gp_row_menu_items_t *items,
                         size_t ni)
{
    json_t *categories = json_array();
    if (!categories)
        return NULL;
    for (size_t c = 0; c < nc; c++) {
        json_t *list = json_array();
        for (size_t i = 0; list && i < ni; i++) {
            const gp_row_menu_items_t *it = &items[i];
            if (memcmp(&it->category_id, &cats[c].id, sizeof it->category_id) != 0)
                continue;
            json_t *tags = json_array();
            for (size_t t = 0; tags && t < it->tags_count; t++)
                if (!append(tags, json_string(it->tags[t]))) {
                    json_decref(tags);
                    tags = NULL;
                }
            json_t *item = tags ? json_pack("{s:o,s:s,s:s?,s:i,s:o,s:o}", "id", uuid_json(&it->id), "name", it->name,
                                            "description", it->description_is_null ? NULL : it->description,
                                            "price_cents", (int)it->price_cents, "calories",
                                            it->calories_is_null ? json_null() : json_integer(it->calories),
                                            "tags", tags)
                                : NULL;
            if (!append(list, item)) {
                json_decref(list);
                list = NULL;
            }
        }
        if (list && json_array_size(list) == 0) { /* nothing to order there today */
            json_decref(list);
            continue;
        }
        json_t *cat = list ? json_pack("{s:o,s:s,s:o}", "id", uuid_json(&cats[c].id), "name", cats[c].name, "items",
                                       list)
                           : NULL;
        if (!append(categories, cat)) {
            json_decref(categories);
            return NULL;
        }
    }
    return json_pack("{s:o}", "categories", categories);
}

static json_t *order_json(const gp_row_orders_t *o, const gp_row_order_items_t *items, size_t n, bool with_items)
{
    json_t *j = json_pack("{s:o,s:s,s:I,s:s?,s:o,s:o,s:o,s:o}", "id", uuid_json(&o->id), "status",
                          gp_order_status_label(o->status), "total_cents", (json_int_t)o->total_cents, "note",
                          o->note_is_null ? NULL : o->note, "customer_id",
                          o->customer_id_is_null ? json_null() : uuid_json(&o->customer_id), "placed_at",
                          time_json(o->placed_at), "updated_at", time_json(o->updated_at), "completed_at",
                          o->completed_at_is_null ? json_null() : time_json(o->completed_at));
    if (!j || !with_items)
        return j;
    json_t *lines = json_array();
    for (size_t i = 0; lines && i < n; i++)
        if (!append(lines, json_pack("{s:i,s:o,s:i,s:i}", "line_no", (int)items[i].line_no, "menu_item_id",
                                     uuid_json(&items[i].menu_item_id), "quantity", (int)items[i].quantity,
                                     "unit_price_cents", (int)items[i].unit_price_cents))) {
            json_decref(lines);
            lines = NULL;
        }
    if (!lines || json_object_set_new(j, "items", lines) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ---- loaders: the database behind the cache ----------------------------------------------
 * A loader runs on the thread that missed, at most one per (tenant, key) at
 * a time in this process. The loader signature carries no gp_error_t, so it
 * keeps the details of its failure here for the caller to map. */

typedef struct load {
    service_t *svc;
    json_t *value;  /* what the transaction built */
    bool ran;       /* this thread's loader ran (rather than another thread's) */
    gp_error_t err; /* its failure */
} load_t;

/* The menu in one read-only snapshot: categories and items agree. The
 * tenant_id predicates repeat what row-level security enforces anyway, so
 * the queries stay right (and use the tenant-leading indexes) whatever the
 * policies. Runs again if gp_tenant_run retries. */
static gp_status_t menu_tx(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    load_t *l = ud;
    const char *tenant = gp_tenant_tx_tenant(tx);
    gp_result_t *cr = NULL, *ir = NULL;
    gp_row_menu_categories_t *cats = NULL;
    gp_row_menu_items_t *items = NULL;
    size_t nc = 0, ni = 0;
    gp_status_t st = gp_tenant_tx_query(tx,
                                        "SELECT " GP_MENU_CATEGORIES_COLUMNS " FROM public.menu_categories"
                                        " WHERE tenant_id = $1 ORDER BY position, name, id",
                                        GP_ARGS(gp_uuid_str(tenant)), &cr, err);
    if (st == GP_OK)
        st = gp_tenant_tx_query(tx,
                                "SELECT " GP_MENU_ITEMS_COLUMNS " FROM public.menu_items"
                                " WHERE tenant_id = $1 AND available ORDER BY name, id",
                                GP_ARGS(gp_uuid_str(tenant)), &ir, err);
    if (st == GP_OK)
        st = gp_row_menu_categories_decode_all(cr, &cats, &nc, err);
    if (st == GP_OK)
        st = gp_row_menu_items_decode_all(ir, &items, &ni, err);
    json_decref(l->value); /* an earlier attempt's */
    l->value = NULL;
    if (st == GP_OK && !(l->value = menu_json(cats, nc, items, ni)))
        st = GP_ERR_NOMEM;
    gp_row_menu_categories_free_all(cats, nc);
    gp_row_menu_items_free_all(items, ni);
    gp_result_free(cr);
    gp_result_free(ir);
    return st;
}

static gp_status_t load_menu(void *ud, const char *tenant, const char *key, json_t **value, int64_t *ttl_ms)
{
    load_t *l = ud;
    l->ran = true;
    static const gp_tx_opts_t snapshot = {.isolation = GP_ISOLATION_REPEATABLE_READ, .read_only = true};
    gp_status_t st = gp_tenant_run(l->svc->pool, tenant, &snapshot, menu_tx, l, NULL, &l->err);
    if (st != GP_OK) {
        json_decref(l->value);
        l->value = NULL;
        return st;
    }
    *value = l->value;
    l->value = NULL;
    return GP_OK;
}

static gp_status_t load_orders(void *ud, const char *tenant, const char *key, json_t **value, int64_t *ttl_ms)
{
    load_t *l = ud;
    l->ran = true;
    gp_result_t *r = NULL;
    gp_row_orders_t *rows = NULL;
    size_t n = 0;
    gp_status_t st = gp_tenant_query(l->svc->pool, tenant,
                                     "SELECT " GP_ORDERS_COLUMNS " FROM public.orders WHERE tenant_id = $1"
                                     " ORDER BY placed_at DESC, id DESC LIMIT $2",
                                     GP_ARGS(gp_uuid_str(tenant), gp_int32(ORDERS_RECENT_LIMIT)), &r, &l->err);
    if (st == GP_OK)
        st = gp_row_orders_decode_all(r, &rows, &n, &l->err);
    gp_result_free(r);
    if (st != GP_OK)
        return st;
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        if (!append(list, order_json(&rows[i], NULL, 0, false))) {
            json_decref(list);
            list = NULL;
        }
    gp_row_orders_free_all(rows, n);
    if (!list || !(*value = json_pack("{s:o}", "orders", list)))
        return GP_ERR_NOMEM;
    return GP_OK;
}

/* The status and details of a failed gp_cache_get_or_load: this thread's
 * loader's own when it ran and failed, the cache's otherwise (a wait for
 * another thread's load that timed out, or that load's status). */
static const gp_error_t *load_error(const load_t *l, gp_status_t st, const gp_error_t *err)
{
    return l->ran && l->err.status == st ? &l->err : err;
}

/* ---- GET /menu ---------------------------------------------------------------------------- */

enum MHD_Result handle_menu(request_t *rq)
{
    service_t *svc = rq->svc;
    char tenant[37];
    enum MHD_Result answer;
    if (!request_tenant(rq, tenant, &answer))
        return answer;
    /* Cache-aside: a hit is one Redis round trip; a miss runs load_menu once
     * for all the threads missing it; with Redis down the menu still comes
     * from the database (GrowPlate degraded, not down). early_beta: the
     * value is refreshed shortly before it expires, so a popular menu never
     * expires under load. */
    load_t l = {.svc = svc};
    gp_error_clear(&l.err);
    gp_cache_load_opts_t opts = {.ttl_ms = svc->set.menu_ttl_ms, .early_beta = 1.0};
    json_t *menu = NULL;
    gp_error_t err;
    gp_status_t st = gp_cache_get_or_load(svc->cache, tenant, MENU_KEY, &opts, load_menu, &l, &menu, &err);
    if (st != GP_OK)
        return respond_failure(rq, "loading the menu", st, load_error(&l, st, &err));
    if (!json_is_object(menu) ||
        json_object_set_new(menu, "tenant", json_pack("{s:s,s:s}", "id", tenant, "slug", rq->tenant_slug)) != 0) {
        json_decref(menu);
        gp_error_t e = {.status = GP_ERR_PROTOCOL};
        snprintf(e.message, sizeof e.message, "the cached %s is not a menu object (or out of memory)", MENU_KEY);
        return respond_failure(rq, "loading the menu", GP_ERR_PROTOCOL, &e);
    }
    return respond_json(rq, MHD_HTTP_OK, menu);
}

/* ---- POST /orders ---------------------------------------------------------------------------- */

static bool is_json_content(const char *ct)
{
    static const char mime[] = "application/json";
    if (!ct || strncasecmp(ct, mime, sizeof mime - 1) != 0)
        return false;
    char next = ct[sizeof mime - 1];
    return next == 0 || next == ';' || next == ' ' || next == '\t';
}

/* Check the body's shape and fill *order (strings borrowed from `in`).
 * Everything the service can check without the database; the rest (does the
 * item exist for this tenant, is it available) the library checks inside
 * the order's transaction. On failure writes a message naming the field. */
static bool parse_order(json_t *in, gp_data_new_order_t *order, gp_data_order_line_t *lines, char *why,
                        size_t whylen)
{
    if (!json_is_object(in)) {
        snprintf(why, whylen, "the body must be a JSON object: {\"lines\": [{\"menu_item_id\": \"<uuid>\", "
                              "\"quantity\": 1}], \"note\": \"...\"}");
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v)
    {
        if (strcmp(k, "lines") != 0 && strcmp(k, "note") != 0 && strcmp(k, "customer_id") != 0) {
            snprintf(why, whylen, "unknown field: an order has lines, note and customer_id");
            return false;
        }
    }
    json_t *jl = json_object_get(in, "lines");
    size_t n = json_array_size(jl);
    if (!json_is_array(jl) || n < 1 || n > GP_DATA_MAX_ORDER_LINES) {
        snprintf(why, whylen, "lines: expected an array of 1 to %d lines", GP_DATA_MAX_ORDER_LINES);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *line = json_array_get(jl, i);
        json_t *id = json_object_get(line, "menu_item_id"), *q = json_object_get(line, "quantity");
        gp_uuid_t u;
        if (!json_is_object(line) || json_object_size(line) != (size_t)(id != NULL) + (size_t)(q != NULL)) {
            snprintf(why, whylen, "lines[%zu]: expected {\"menu_item_id\": \"<uuid>\", \"quantity\": <1..%d>}", i,
                     GP_DATA_MAX_QUANTITY);
            return false;
        }
        if (!json_is_string(id) || gp_uuid_parse(json_string_value(id), &u) != GP_OK) {
            snprintf(why, whylen, "lines[%zu].menu_item_id: expected a menu item's id (a UUID)", i);
            return false;
        }
        if (!json_is_integer(q) || json_integer_value(q) < 1 || json_integer_value(q) > GP_DATA_MAX_QUANTITY) {
            snprintf(why, whylen, "lines[%zu].quantity: expected a whole number from 1 to %d", i,
                     GP_DATA_MAX_QUANTITY);
            return false;
        }
        lines[i].menu_item_id = json_string_value(id);
        lines[i].quantity = (int32_t)json_integer_value(q);
    }
    json_t *note = json_object_get(in, "note"), *customer = json_object_get(in, "customer_id");
    if (note && !json_is_null(note) && (!json_is_string(note) || json_string_length(note) > NOTE_MAX_BYTES)) {
        snprintf(why, whylen, "note: expected a string of at most %d bytes, or null", NOTE_MAX_BYTES);
        return false;
    }
    gp_uuid_t u;
    if (customer && !json_is_null(customer) &&
        (!json_is_string(customer) || gp_uuid_parse(json_string_value(customer), &u) != GP_OK)) {
        snprintf(why, whylen, "customer_id: expected a user's id (a UUID), or null");
        return false;
    }
    *order = (gp_data_new_order_t){
        .customer_id = json_is_string(customer) ? json_string_value(customer) : NULL,
        .note = json_is_string(note) ? json_string_value(note) : NULL,
        .lines = lines,
        .n_lines = n,
    };
    return true;
}

enum MHD_Result handle_order_create(request_t *rq)
{
    service_t *svc = rq->svc;
    char tenant[37];
    enum MHD_Result answer;
    if (!request_tenant(rq, tenant, &answer))
        return answer;
    if (!is_json_content(MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)))
        return respond_error(rq, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                             "send the order as Content-Type: application/json");
    if (!rq->body)
        return respond_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_json", "the body is empty; expected a JSON order");
    json_error_t jerr;
    json_t *in = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!in) { /* jansson's text may quote the input: give the position only */
        char msg[128];
        snprintf(msg, sizeof msg, "the body is not valid JSON (line %d, column %d)", jerr.line, jerr.column);
        return respond_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_json", msg);
    }
    gp_data_order_line_t lines[GP_DATA_MAX_ORDER_LINES];
    gp_data_new_order_t order;
    char why[256];
    if (!parse_order(in, &order, lines, why, sizeof why)) {
        json_decref(in);
        return respond_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_order", why);
    }

    /* One tenant-scoped transaction: prices read (and share-locked) from the
     * menu, never from the client; nothing written unless all of it is. */
    gp_row_orders_t o;
    gp_row_order_items_t *items = NULL;
    size_t n_items = 0;
    gp_error_t err;
    gp_status_t st = gp_data_create_order(svc->pool, tenant, &order, &o, &items, &n_items, &err);
    json_decref(in);
    if (st == GP_ERR_NOT_FOUND || st == GP_ERR_INVALID) /* an item unknown to this tenant, or not available */
        return respond_error(rq, MHD_HTTP_UNPROCESSABLE_CONTENT, "order_rejected", err.message);
    if (st != GP_OK)
        return respond_failure(rq, "creating the order", st, &err);

    /* The cached list of recent orders no longer holds: bump its version
     * (see handle_order_list). If Redis cannot take it now, the list is
     * stale for at most SERVICE_ORDERS_TTL. */
    gp_error_t cerr;
    gp_status_t cst = gp_cache_incr(svc->cache, tenant, ORDERS_VERSION_KEY, 1, ORDERS_VERSION_TTL_MS, NULL, &cerr);
    if (cst != GP_OK)
        service_log("warn", "tenant %s: recent orders not invalidated: %s (stale for at most %d ms)", tenant,
                    gp_strerror(cst), svc->set.orders_ttl_ms);

    char id[37], location[64];
    gp_uuid_format(&o.id, id);
    snprintf(location, sizeof location, "/orders/%s", id);
    json_t *body = order_json(&o, items, n_items, true);
    gp_row_orders_free(&o);
    gp_row_order_items_free_all(items, n_items);
    return respond_json_with(rq, MHD_HTTP_CREATED, body, MHD_HTTP_HEADER_LOCATION, location);
}

/* ---- GET /orders ------------------------------------------------------------------------------ */

/* The tenant's recent orders through the cache, invalidated by versioning
 * the key: "orders:recent:v1:<version>", where <version> is a per-tenant
 * counter that every new order increments. Deleting the key instead would
 * race: a reader that loaded the list just before an order committed could
 * store it just after the delete, stale until its TTL. With a version, that
 * reader stores under the old version, which nobody reads any more.
 * (gp_cache_invalidate_tenant is the same idea for all of a tenant's keys,
 * the menu included: too much for one new order.) */
enum MHD_Result handle_order_list(request_t *rq)
{
    service_t *svc = rq->svc;
    char tenant[37];
    enum MHD_Result answer;
    if (!request_tenant(rq, tenant, &answer))
        return answer;
    load_t l = {.svc = svc};
    gp_error_clear(&l.err);
    json_t *list = NULL;
    gp_error_t err;
    char *ver = NULL;
    gp_status_t st = gp_cache_get(svc->cache, tenant, ORDERS_VERSION_KEY, &ver, NULL, &err);
    if (st == GP_OK || st == GP_ERR_MISS) {
        char key[64];
        snprintf(key, sizeof key, "orders:recent:v1:%lld", ver ? strtoll(ver, NULL, 10) : 0LL);
        free(ver);
        gp_cache_load_opts_t opts = {.ttl_ms = svc->set.orders_ttl_ms};
        st = gp_cache_get_or_load(svc->cache, tenant, key, &opts, load_orders, &l, &list, &err);
    } else {
        /* Without the version no cached list can be trusted: the database. */
        st = load_orders(&l, tenant, NULL, &list, NULL);
    }
    if (st != GP_OK)
        return respond_failure(rq, "listing orders", st, load_error(&l, st, &err));
    return respond_json(rq, MHD_HTTP_OK, list);
}

/* ---- GET /orders/{id} ------------------------------------------------------------------------ */

enum MHD_Result handle_order_get(request_t *rq, const char *id)
{
    service_t *svc = rq->svc;
    char tenant[37];
    enum MHD_Result answer;
    if (!request_tenant(rq, tenant, &answer))
        return answer;
    gp_uuid_t u;
    if (gp_uuid_parse(id, &u) != GP_OK)
        return respond_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_order_id", "an order id is a UUID");
    /* Straight from the database: an order's status is what the kitchen
     * changes, and the one thing a customer must not see stale. Another
     * tenant's order is indistinguishable from a missing one. */
    gp_row_orders_t o;
    gp_row_order_items_t *items = NULL;
    size_t n = 0;
    gp_error_t err;
    gp_status_t st = gp_data_get_order(svc->pool, tenant, id, &o, &items, &n, &err);
    if (st == GP_ERR_NOT_FOUND)
        return respond_error(rq, MHD_HTTP_NOT_FOUND, "order_not_found", "no such order");
    if (st != GP_OK)
        return respond_failure(rq, "reading the order", st, &err);
    json_t *body = order_json(&o, items, n, true);
    gp_row_orders_free(&o);
    gp_row_order_items_free_all(items, n);
    return respond_json(rq, MHD_HTTP_OK, body);
}

/* ---- GET /healthz, GET /metrics ---------------------------------------------------------------- */

/* This process's pool and cache, checked within the deadline: up and
 * degraded (the cache down: menus still come from the database) are 200,
 * so a load balancer keeps sending traffic; down (no database) is 503. */
enum MHD_Result handle_healthz(request_t *rq)
{
    service_t *svc = rq->svc;
    gp_health_options_t opts = {
        .cfg = &svc->cfg, .pool = svc->pool, .cache = svc->cache, .deadline_ms = svc->set.health_deadline_ms};
    gp_health_report_t r;
    gp_status_t st = gp_health_check(&opts, &r);
    char *json = NULL;
    if (st == GP_OK)
        st = gp_health_to_json(&r, &json);
    if (st != GP_OK)
        return respond_failure(rq, "health check", st, NULL);
    return respond_text(rq, r.state == GP_HEALTH_DOWN ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK,
                        "application/json", json);
}

/* The library's series for this process's pool and cache (no I/O: a
 * scrape never waits for a server; /healthz is for that), then the
 * service's own (requests, latencies, the tenant map). */
enum MHD_Result handle_metrics(request_t *rq)
{
    service_t *svc = rq->svc;
    gp_metrics_source_t source = {.name = "main", .pool = svc->pool, .cache = svc->cache};
    char *text = NULL;
    gp_error_t err;
    gp_status_t st = gp_metrics_render(&source, 1, &text, &err);
    if (st != GP_OK)
        return respond_failure(rq, "metrics", st, &err);
    return respond_text(rq, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                        stats_render(svc->stats, svc->tenants, text));
}
