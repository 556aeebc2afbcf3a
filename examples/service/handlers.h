/* handlers.h — the endpoints. Each answers exactly once, through the
 * respond_* functions of http.h. */
#ifndef SERVICE_HANDLERS_H
#define SERVICE_HANDLERS_H

#include "http.h"

enum MHD_Result handle_menu(request_t *rq);                        /* GET /menu */
enum MHD_Result handle_order_create(request_t *rq);                /* POST /orders */
enum MHD_Result handle_order_list(request_t *rq);                  /* GET /orders */
enum MHD_Result handle_order_get(request_t *rq, const char *id);   /* GET /orders/{id} */
enum MHD_Result handle_healthz(request_t *rq);                     /* GET /healthz */
enum MHD_Result handle_metrics(request_t *rq);                     /* GET /metrics */

#endif
