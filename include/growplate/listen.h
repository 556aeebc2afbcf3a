/* growplate/listen.h — LISTEN/NOTIFY for services: a dedicated listener
 * (its own connection, outside the pool), tenant-scoped channels, and
 * NOTIFY from inside a tenant-scoped transaction (delivered on commit).
 *
 * Pooled connections stay as they are: LISTEN on one of them still forces
 * a session reset on release, and whatever arrives for it is dropped. The
 * listener is the one place notifications are received.
 *
 * Channels. A service names a channel with 1 to 48 characters of
 * [a-z0-9_] ("orders", "menu_changed"). A tenant channel belongs to one
 * tenant: the PostgreSQL channel is derived from the tenant id and the
 * name with DATABASE_TENANT_KEY (an HMAC, so it tells nothing of the
 * tenant and cannot be guessed without the key). A service channel (for
 * the service's own processes, such as the cache's invalidations) is
 * derived from the name alone. Every message carries an HMAC of its
 * channel, sending tenant and payload made with the same key; the listener
 * drops (and counts, gp_listener_rejected) anything that does not verify,
 * and a tenant channel's message must come from that tenant. So SQL of
 * one tenant's — any NOTIFY or pg_notify() it runs, on any channel — can
 * never deliver a message to another tenant's subscription, and messages
 * are only sent by gp_tenant_tx_notify*. The processes of one service
 * share the key (as they must for tenant-scoped calls anyway).
 *
 * Delivery. Each subscription either has a callback (called on the
 * listener's own thread, one at a time; keep it short, do not call
 * gp_listener_free from it) or, without one, its messages are queued: the
 * descriptor gp_listener_fd() is readable while the queue is not empty
 * (poll/epoll it in the service's event loop) and gp_listener_next() takes
 * one. PostgreSQL delivers a NOTIFY when its transaction commits, in
 * commit order per sender, at most once, and never a rolled-back one.
 *
 * Reconnection. When the listener's connection breaks (server restart,
 * backend terminated, network), it reconnects with the pool's backoff (25
 * ms doubling to 500 ms, with jitter), issues every LISTEN again, and then
 * reports a gap (GP_NOTIFY_GAP, to every callback and once to the queue):
 * messages sent while it was away are lost, so resynchronise (reload what
 * the messages would have told, invalidate caches).
 *
 * Thread-safety: every function is safe from any thread, except
 * gp_listener_free(), which must not race with other calls on the same
 * listener.
 */
#ifndef GROWPLATE_LISTEN_H
#define GROWPLATE_LISTEN_H

#include <stddef.h>
#include <stdint.h>

#include "growplate/common.h"
#include "growplate/config.h"
#include "growplate/tenant.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GP_CHANNEL_NAME_MAX 48
/* The longest payload, in bytes (PostgreSQL's limit less the message's
 * tenant and HMAC). */
#define GP_NOTIFY_PAYLOAD_MAX 7900

typedef enum gp_notify_kind {
    GP_NOTIFY_MESSAGE = 0, /* a message on a channel subscribed */
    GP_NOTIFY_GAP = 1,     /* the connection was lost and is back: messages of the gap are lost */
} gp_notify_kind_t;

typedef struct gp_notification {
    gp_notify_kind_t kind;
    const char *channel;   /* MESSAGE: the channel's name as subscribed */
    const char *tenant_id; /* MESSAGE: the sending transaction's tenant (a tenant channel's own) */
    const char *payload;   /* MESSAGE: the payload ("" when none), NUL-terminated UTF-8 */
    size_t payload_len;
    int service;           /* MESSAGE: nonzero on a service channel */
    int64_t gap_ms;        /* GAP: how long the listener was without its connection */
} gp_notification_t;

/* A subscription's callback: n and its strings are valid for the call. */
typedef void (*gp_notify_fn)(void *userdata, const gp_notification_t *n);

typedef struct gp_listener gp_listener_t;

/* Create a listener for cfg's database (DATABASE_URL, as the application
 * role; never through a connection pooler, where LISTEN does not work):
 * connect now (so a bad configuration or an unreachable server is
 * reported here), then keep the connection on a thread of its own.
 * Errors: GP_ERR_CONFIG (no DATABASE_TENANT_KEY: channels and messages are
 * keyed with it; a pooler in the way), the connect errors (GP_ERR_CONNECT,
 * GP_ERR_AUTH, GP_ERR_TIMEOUT), GP_ERR_NOMEM. *out is NULL on failure.
 * Free with gp_listener_free (NULL accepted). */
GP_EXPORT gp_status_t gp_listener_create(const gp_config_t *cfg, gp_listener_t **out, gp_error_t *err);
GP_EXPORT void gp_listener_free(gp_listener_t *l);

/* Subscribe to a tenant's channel `name` (fn NULL: queue its messages).
 * When the call returns GP_OK the LISTEN is in force, or — while the
 * listener is reconnecting — will be at the reconnection (then a gap is
 * reported). Errors: GP_ERR_TENANT, GP_ERR_INVALID (a name that is not
 * [a-z0-9_]{1,48}, a second subscription to the same channel and
 * tenant), GP_ERR_SERVER (the LISTEN failed), GP_ERR_NOMEM. */
GP_EXPORT gp_status_t gp_listener_listen_tenant(gp_listener_t *l, const char *tenant_id, const char *name,
                                                gp_notify_fn fn, void *userdata, gp_error_t *err);

/* Subscribe to the service channel `name` (messages from every tenant's
 * transactions, each with its tenant). Errors as above. */
GP_EXPORT gp_status_t gp_listener_listen_service(gp_listener_t *l, const char *name, gp_notify_fn fn,
                                                 void *userdata, gp_error_t *err);

/* End a subscription (tenant_id NULL: the service channel `name`): from
 * the return on, its messages are delivered nowhere (those already queued
 * stay queued); the UNLISTEN follows on the listener's thread. The same
 * channel may be subscribed again. Errors: GP_ERR_NOT_FOUND (not
 * subscribed), GP_ERR_TENANT, GP_ERR_INVALID, GP_ERR_NOMEM. */
GP_EXPORT gp_status_t gp_listener_unlisten(gp_listener_t *l, const char *tenant_id, const char *name,
                                           gp_error_t *err);

/* The descriptor that is readable while queued notifications wait (for
 * poll/epoll; never read it yourself). -1 for NULL. */
GP_EXPORT int gp_listener_fd(const gp_listener_t *l);

/* Take the next queued notification into *out (NULL when none waits):
 * free it with gp_notification_free. Errors: GP_ERR_INVALID. */
GP_EXPORT gp_status_t gp_listener_next(gp_listener_t *l, gp_notification_t **out);
GP_EXPORT void gp_notification_free(gp_notification_t *n);

/* Counters: messages that did not verify (forged or on a tenant's channel
 * from another tenant) and were dropped; gaps reported; reconnections. */
GP_EXPORT uint64_t gp_listener_rejected(const gp_listener_t *l);
GP_EXPORT uint64_t gp_listener_gaps(const gp_listener_t *l);
/* The backend PID of the listener's connection now, 0 while it has none. */
GP_EXPORT int gp_listener_backend_pid(const gp_listener_t *l);

/* ---- sending ------------------------------------------------------------------
 * NOTIFY inside a tenant-scoped transaction (its first statement carries
 * BEGIN and the tenant setting, as gp_tenant_tx_query): delivered when the
 * transaction commits, never when it rolls back. Errors: GP_ERR_INVALID (a
 * bad name, a payload longer than GP_NOTIFY_PAYLOAD_MAX or not UTF-8, an
 * ended transaction), GP_ERR_CONFIG (no DATABASE_TENANT_KEY), the server's
 * (in a transaction that failed). */

/* To the transaction's tenant's channel `name`. */
GP_EXPORT gp_status_t gp_tenant_tx_notify(gp_tenant_tx_t *tx, const char *name, const char *payload,
                                          gp_error_t *err);
/* To the service channel `name`, as the transaction's tenant. */
GP_EXPORT gp_status_t gp_tenant_tx_notify_service(gp_tenant_tx_t *tx, const char *name, const char *payload,
                                                  gp_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
