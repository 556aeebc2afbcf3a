/* http.c — libmicrohttpd glue: routing, the request body (bounded),
 * answers (always JSON with its Content-Type, except /metrics), and the one
 * place where a library status becomes an HTTP status. */
#include "http.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Request text for a log line: printable ASCII only, at most 96 bytes, so
 * a hostile URL cannot forge or split log lines. */
static const char *printable(const char *s, char out[100])
{
    size_t n = 0;
    for (; s && *s && n < 96; s++)
        out[n++] = (*s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\') ? *s : '?';
    if (s && *s)
        out[n - 1] = '~'; /* truncated */
    out[n] = 0;
    return out;
}

/* ---- answers ----------------------------------------------------------------- */

/* What is sent when even building an answer fails (out of memory). */
static const char fallback_500[] =
    "{\"error\":{\"status\":500,\"code\":\"internal\",\"message\":\"out of memory\"}}";

static enum MHD_Result queue(request_t *rq, int status, struct MHD_Response *r, const char *content_type,
                             const char *header, const char *value)
{
    if (!r)
        return MHD_NO; /* cannot even answer: MHD closes the connection */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (header)
        MHD_add_response_header(r, header, value);
    enum MHD_Result ret = MHD_queue_response(rq->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    if (ret == MHD_YES)
        rq->status = status;
    return ret;
}

static enum MHD_Result respond_fallback(request_t *rq)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof fallback_500 - 1, (void *)fallback_500, MHD_RESPMEM_PERSISTENT);
    return queue(rq, 500, r, "application/json", NULL, NULL);
}

enum MHD_Result respond_text(request_t *rq, int status, const char *content_type, char *text)
{
    if (!text)
        return respond_fallback(rq);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return respond_fallback(rq);
    }
    return queue(rq, status, r, content_type, NULL, NULL);
}

enum MHD_Result respond_json_with(request_t *rq, int status, json_t *body, const char *header, const char *value)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL; /* jansson's default allocator: malloc */
    json_decref(body);
    if (!text)
        return respond_fallback(rq);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return respond_fallback(rq);
    }
    return queue(rq, status, r, "application/json", header, value);
}

enum MHD_Result respond_json(request_t *rq, int status, json_t *body)
{
    return respond_json_with(rq, status, body, NULL, NULL);
}

enum MHD_Result respond_error(request_t *rq, int status, const char *code, const char *message)
{
    json_t *body = json_pack("{s:{s:i,s:s,s:s}}", "error", "status", status, "code", code, "message", message);
    if (!body) /* a message that is not UTF-8 (a truncated library message): say less */
        body = json_pack("{s:{s:i,s:s}}", "error", "status", status, "code", code);
    return respond_json(rq, status, body);
}

/* The mapping. Failures a retry can cure — a server slow, down, restarting,
 * overloaded, or a conflict between transactions that gp_tenant_run already
 * retried — are 503 with Retry-After: the client (or its load balancer)
 * tries again. Bad input is 4xx. The rest is 500: a bug or a
 * misconfiguration (wrong tenant key, GP_ERR_AUTH...), for the operator,
 * whom the log tells the details. */
static int http_status_of(gp_status_t st, const gp_error_t *err, const char **code)
{
    gp_error_class_t klass = err ? err->klass : GP_ECLASS_NONE;
    switch (st) {
    case GP_ERR_INVALID:
    case GP_ERR_TENANT:
    case GP_ERR_KEY:
    case GP_ERR_TYPE:
    case GP_ERR_RANGE:
        *code = "invalid_request";
        return MHD_HTTP_BAD_REQUEST;
    case GP_ERR_NOT_FOUND:
        *code = "not_found";
        return MHD_HTTP_NOT_FOUND;
    case GP_ERR_TIMEOUT:
        *code = "timeout";
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    case GP_ERR_UNAVAILABLE:
    case GP_ERR_CONNECT:
    case GP_ERR_CLOSED:
    case GP_ERR_CANCELED:
    case GP_ERR_NOMEM:
        *code = "unavailable";
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    case GP_ERR_COMMIT_UNKNOWN:
        *code = "commit_unknown";
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    case GP_ERR_SERVER:
        switch (klass) {
        case GP_ECLASS_TIMEOUT:
            *code = "timeout";
            return MHD_HTTP_SERVICE_UNAVAILABLE;
        case GP_ECLASS_CONNECTION:
        case GP_ECLASS_RESOURCE:
        case GP_ECLASS_SERIALIZATION:
        case GP_ECLASS_DEADLOCK:
            *code = "unavailable";
            return MHD_HTTP_SERVICE_UNAVAILABLE;
        case GP_ECLASS_UNIQUE:
            *code = "conflict";
            return MHD_HTTP_CONFLICT;
        case GP_ECLASS_FOREIGN_KEY:
        case GP_ECLASS_CHECK:
        case GP_ECLASS_NOT_NULL:
        case GP_ECLASS_CONSTRAINT:
        case GP_ECLASS_DATA:
            *code = "unprocessable";
            return MHD_HTTP_UNPROCESSABLE_CONTENT;
        default:
            break;
        }
        if (err && err->retriable) {
            *code = "unavailable";
            return MHD_HTTP_SERVICE_UNAVAILABLE;
        }
        *code = "internal";
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    default: /* GP_ERR_AUTH, GP_ERR_CONFIG, GP_ERR_PROTOCOL...: the operator's to fix */
        *code = "internal";
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

enum MHD_Result respond_failure(request_t *rq, const char *what, gp_status_t st, const gp_error_t *err)
{
    const char *code;
    int status = http_status_of(st, err, &code);
    if (status >= 500) {
        char url[100];
        service_log("error", "%s %s: %s: %s%s%s (class %s, sqlstate '%s') -> %d", rq->method, printable(rq->url, url),
                    what, gp_strerror(st), err && err->message[0] ? ": " : "", err ? err->message : "",
                    gp_error_class_name(err ? err->klass : GP_ECLASS_NONE), err ? err->sqlstate : "", status);
        /* The client learns what kind of failure, not the internals. */
        const char *msg = st == GP_ERR_COMMIT_UNKNOWN
                              ? "the database connection broke after COMMIT was sent: the change may or may not "
                                "have been made; look before retrying"
                              : gp_strerror(st);
        return respond_error(rq, status, code, msg);
    }
    /* The caller's own bad input: the library's message names the argument
     * and never echoes text that failed validation. */
    return respond_error(rq, status, code, err && err->message[0] ? err->message : gp_strerror(st));
}

/* ---- routing ------------------------------------------------------------------- */

/* Which route a request is for; for a known path with the wrong method,
 * ROUTE_OTHER and *allow the methods it takes (405); otherwise *allow NULL. */
static route_t classify(const char *method, const char *url, const char **allow)
{
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    *allow = NULL;
    if (strcmp(url, "/menu") == 0) {
        if (get)
            return ROUTE_MENU;
        *allow = "GET, HEAD";
    } else if (strcmp(url, "/orders") == 0) {
        if (post)
            return ROUTE_ORDER_CREATE;
        if (get)
            return ROUTE_ORDER_LIST;
        *allow = "GET, HEAD, POST";
    } else if (strncmp(url, "/orders/", 8) == 0) {
        if (get)
            return ROUTE_ORDER_GET;
        *allow = "GET, HEAD";
    } else if (strcmp(url, "/healthz") == 0) {
        if (get)
            return ROUTE_HEALTHZ;
        *allow = "GET, HEAD";
    } else if (strcmp(url, "/metrics") == 0) {
        if (get)
            return ROUTE_METRICS;
        *allow = "GET, HEAD";
    }
    return ROUTE_OTHER;
}

static enum MHD_Result dispatch(request_t *rq)
{
    const char *allow;
    classify(rq->method, rq->url, &allow);
    switch (rq->route) {
    case ROUTE_MENU:
        return handle_menu(rq);
    case ROUTE_ORDER_CREATE:
        return handle_order_create(rq);
    case ROUTE_ORDER_LIST:
        return handle_order_list(rq);
    case ROUTE_ORDER_GET:
        return handle_order_get(rq, rq->url + 8);
    case ROUTE_HEALTHZ:
        return handle_healthz(rq);
    case ROUTE_METRICS:
        return handle_metrics(rq);
    default:
        break;
    }
    if (allow) {
        json_t *body = json_pack("{s:{s:i,s:s,s:s}}", "error", "status", 405, "code", "method_not_allowed",
                                 "message", "this resource does not take that method (see Allow)");
        return respond_json_with(rq, MHD_HTTP_METHOD_NOT_ALLOWED, body, MHD_HTTP_HEADER_ALLOW, allow);
    }
    return respond_error(rq, MHD_HTTP_NOT_FOUND, "not_found",
                         "no such resource: this service answers /menu, /orders, /orders/{id}, /healthz, /metrics");
}

/* ---- the MHD callbacks ------------------------------------------------------- */

enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                const char *version, const char *upload_data, size_t *upload_data_size,
                                void **con_cls)
{
    service_t *svc = cls;
    request_t *rq = *con_cls;
    if (!rq) { /* the headers are in: set up, and refuse a declared oversized body at once */
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        rq->svc = svc;
        rq->conn = conn;
        rq->method = method;
        rq->url = url;
        rq->started_ns = now_ns();
        const char *allow;
        rq->route = classify(method, url, &allow);
        *con_cls = rq;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            errno = 0;
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || end == cl || n > svc->set.max_body)
                return respond_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
                                     "the request body is larger than this service accepts (SERVICE_MAX_BODY)");
        }
        return MHD_YES;
    }
    if (*upload_data_size) { /* a piece of the body (chunked uploads have no Content-Length to check first) */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->body_too_large) {
            /* Read and drop the rest, then answer 413; but a client that
             * goes on and on is cut off (MHD closes the connection). */
            rq->discarded += n;
            return rq->discarded > 16 * svc->set.max_body ? MHD_NO : MHD_YES;
        }
        if (n > svc->set.max_body - rq->body_len) {
            rq->body_too_large = true;
            free(rq->body);
            rq->body = NULL;
            rq->body_len = rq->body_cap = 0;
            return MHD_YES;
        }
        if (rq->body_len + n + 1 > rq->body_cap) {
            size_t cap = rq->body_cap ? rq->body_cap : 1024;
            while (cap < rq->body_len + n + 1)
                cap *= 2;
            if (cap > svc->set.max_body + 1)
                cap = svc->set.max_body + 1;
            char *p = realloc(rq->body, cap);
            if (!p)
                return MHD_NO;
            rq->body = p;
            rq->body_cap = cap;
        }
        memcpy(rq->body + rq->body_len, upload_data, n);
        rq->body_len += n;
        rq->body[rq->body_len] = 0;
        return MHD_YES;
    }
    /* The whole request is in. */
    if (rq->body_too_large)
        return respond_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
                             "the request body is larger than this service accepts (SERVICE_MAX_BODY)");
    return dispatch(rq);
}

void http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    service_t *svc = cls;
    request_t *rq = *con_cls;
    if (!rq)
        return;
    int64_t dt = now_ns() - rq->started_ns;
    if (rq->status) {
        stats_record(svc->stats, rq->route, rq->status, dt);
        if (svc->set.access_log) {
            char url[100];
            service_log("access", "%s %s %d %.3f ms%s%s%s", rq->method, printable(rq->url, url), rq->status,
                        (double)dt / 1e6, rq->tenant_slug[0] ? " tenant=" : "", rq->tenant_slug,
                        toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (client went away)");
        }
    }
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}
