/* copy_internal.h — what COPY (query_copy.c), streaming (query_stream.c)
 * and their tenant-scoped forms (tenant_copy.c) share; never installed. */
#ifndef GROWPLATE_COPY_INTERNAL_H
#define GROWPLATE_COPY_INTERNAL_H

#include "growplate/copy.h"
#include "query_internal.h"
#include "tenant_internal.h"

/* Wait until conn's socket is ready for `events` (POLLIN, POLLOUT) or its
 * deadline (conn->deadline_ns, 0 = none) passes. 1: ready; 0: the
 * deadline passed (conn->timed_out and conn->discard are set); -1: poll
 * failed or there is no socket. */
int gp__wait_socket(gp_conn_t *conn, short events);

/* Stop what is running on conn and bring the connection back to idle:
 * take what has already arrived without waiting; when the command is
 * still running, send a cancel request and drain the rest (COPY data when
 * `copy_out`, then every result), bounded by conn's deadline. Returns
 * whether the connection is idle and reusable (else conn->discard is
 * set); *canceled (may be NULL) says whether the command ended with the
 * cancellation (57014) rather than completing. */
bool gp__abandon(gp_conn_t *conn, bool copy_out, bool *canceled);

/* Judge a completed command of the caller's by its tag (gp__caller_done),
 * except COPY, which leaves no session state by itself: what its query
 * can leave through the functions it calls, the sweep undoes. */
void gp__copy_done(gp_conn_t *conn, const PGresult *res);


#endif
