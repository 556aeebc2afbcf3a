/* http.h — the libmicrohttpd side: one request's state, JSON answers, and
 * how a library status becomes an HTTP status. */
#ifndef SERVICE_HTTP_H
#define SERVICE_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "service.h"

/* One request, from its headers to its completion (MHD's *con_cls). */
typedef struct request {
    service_t *svc;
    struct MHD_Connection *conn;
    const char *method, *url; /* MHD's, valid for the whole request */
    route_t route;
    int64_t started_ns;
    char *body;               /* the upload, NUL-terminated; NULL when none */
    size_t body_len, body_cap;
    bool body_too_large;
    size_t discarded;         /* bytes of an oversized chunked body read and dropped */
    int status;               /* the answer's status, once queued */
    char tenant_slug[TENANT_SLUG_MAX + 1]; /* for the access log: a validated slug or "" */
} request_t;

/* The MHD callbacks (main.c registers them; cls is the service_t). */
enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                const char *version, const char *upload_data, size_t *upload_data_size,
                                void **con_cls);
void http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                       enum MHD_RequestTerminationCode toe);

/* Answer with `body` (a reference the call takes over) as compact JSON.
 * Every answer of this service goes through the respond_* functions, so
 * every one has a Content-Type. */
enum MHD_Result respond_json(request_t *rq, int status, json_t *body);

/* The same with one more header (Location of a created order...). */
enum MHD_Result respond_json_with(request_t *rq, int status, json_t *body, const char *header, const char *value);

/* Answer with malloc'd `text` (taken over) of the given Content-Type. */
enum MHD_Result respond_text(request_t *rq, int status, const char *content_type, char *text);

/* Answer {"error":{"status":..,"code":"..","message":".."}}. `message` must
 * be safe to show (no secret; request text only once validated). 503s
 * carry Retry-After. */
enum MHD_Result respond_error(request_t *rq, int status, const char *code, const char *message);

/* Answer a failed library call: the status and class decide the HTTP
 * status (see http.c), the log gets the details (`what` names the
 * operation), the client a short static text for server-side failures and
 * the library's message for its own bad input. */
enum MHD_Result respond_failure(request_t *rq, const char *what, gp_status_t st, const gp_error_t *err);

#endif
