/* growplate/health.h — checks of the servers behind growplate.
 *
 * Thread-safety: every function here is safe from any thread.
 */
#ifndef GROWPLATE_HEALTH_H
#define GROWPLATE_HEALTH_H

#include "growplate/common.h"
#include "growplate/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The result of a one-off probe of a server. */
typedef struct gp_probe {
    gp_status_t status;     /* GP_OK, or why the server could not be used */
    int64_t latency_ns;     /* connect + round trip; 0 when it failed */
    char server_version[64];/* e.g. "15.18" or "7.0.15"; "" when unknown */
    char message[512];      /* on failure: what went wrong and what to try; redacted */
} gp_probe_t;

/* Open a fresh connection to PostgreSQL with cfg->db (not through a pool),
 * run one round trip, close it. Never takes longer than
 * cfg->db.connect_timeout_ms plus one round trip (libpq rounds the connect
 * timeout up to whole seconds, minimum 2 s). Fills *out; returns out->status:
 * GP_ERR_CONFIG, GP_ERR_AUTH, GP_ERR_CONNECT, GP_ERR_TIMEOUT or GP_ERR_NOMEM. */
GP_EXPORT gp_status_t gp_probe_postgres(const gp_config_t *cfg, gp_probe_t *out);

/* The same for Redis with cfg->redis: connect (within connect_timeout_ms),
 * AUTH and SELECT when configured, PING (within timeout_ms). */
GP_EXPORT gp_status_t gp_probe_redis(const gp_config_t *cfg, gp_probe_t *out);

#ifdef __cplusplus
}
#endif
#endif
