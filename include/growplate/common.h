/* growplate/common.h — what every layer shares: the export macro, the
 * status enum, version, logging.
 *
 * Thread-safety: every function here is safe to call from any thread.
 */
#ifndef GROWPLATE_COMMON_H
#define GROWPLATE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(GP_STATIC_DEFINE)
#  define GP_EXPORT
#elif defined(GP_BUILDING_LIBRARY)
#  define GP_EXPORT __attribute__((visibility("default")))
#else
#  define GP_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define GP_VERSION_MAJOR 0
#define GP_VERSION_MINOR 1
#define GP_VERSION_PATCH 0
#define GP_VERSION_STRING "0.1.0"

/* The library's version at run time ("0.1.0"). Static string. */
GP_EXPORT const char *gp_version(void);

/* One stable status enum for every layer. GP_OK is 0; values are only ever
 * appended, never renumbered. gp_strerror() names each one. Richer details
 * (SQLSTATE, server message, the offending variable...) travel in the
 * layer's error object or message buffer. */
typedef enum gp_status {
    GP_OK = 0,
    GP_ERR_NOMEM = 1,        /* an allocation failed */
    GP_ERR_INVALID = 2,      /* a bad argument from the caller */
    GP_ERR_CONFIG = 3,       /* invalid configuration */
    GP_ERR_CONNECT = 4,      /* cannot connect / connection broken */
    GP_ERR_AUTH = 5,         /* authentication rejected */
    GP_ERR_TIMEOUT = 6,      /* a documented deadline passed */
    GP_ERR_CLOSED = 7,       /* the object is closed / shutting down */
    GP_ERR_SERVER = 8,       /* the server reported an error (see the error object) */
    GP_ERR_TYPE = 9,         /* a value read as the wrong type */
    GP_ERR_NOT_FOUND = 10,   /* unknown column, missing key, no such thing */
    GP_ERR_RANGE = 11,       /* index or value out of range */
    GP_ERR_TENANT = 12,      /* invalid tenant id */
    GP_ERR_KEY = 13,         /* invalid cache key */
    GP_ERR_UNAVAILABLE = 14, /* the cache is unavailable (treat as a miss) */
    GP_ERR_COMMIT_UNKNOWN = 15, /* COMMIT sent, outcome unknown */
    GP_ERR_PROTOCOL = 16,    /* unexpected reply from a server */
    GP_ERR_CANCELED = 17,    /* canceled by the caller or the server */
    GP_ERR_NULL = 18,        /* the value is SQL NULL */
    GP_ERR_MISS = 19,        /* cache miss (not an error for most callers) */
    GP_ERR_MIGRATION = 20,   /* a migration failed or was altered */
    GP_ERR_IO = 21,          /* a local I/O error (files) */
    GP_STATUS_COUNT_         /* not a status; keep last */
} gp_status_t;

/* A short, static, English description of a status ("acquire timed out"...).
 * Never NULL; unknown values give "unknown status". */
GP_EXPORT const char *gp_strerror(gp_status_t status);

/* Log levels, in increasing severity. */
typedef enum gp_log_level {
    GP_LOG_DEBUG = 0,
    GP_LOG_INFO = 1,
    GP_LOG_WARN = 2,
    GP_LOG_ERROR = 3,
    GP_LOG_OFF = 4
} gp_log_level_t;

/* A log handler. `component` is the layer ("pool", "cache", ...), `message`
 * a single line without a trailing newline; neither is NULL, both are
 * borrowed for the duration of the call. Messages never contain secrets
 * (passwords are redacted before they are formatted). The handler may be
 * called from any of the library's threads, concurrently: it must be
 * thread-safe and must not call back into the library. */
typedef void (*gp_log_fn)(void *userdata, gp_log_level_t level,
                          const char *component, const char *message);

/* Install a process-wide log handler and minimum level. fn == NULL restores
 * the default: lines of the form "growplate[pool] warn: ..." on stderr.
 * The default minimum level is GP_LOG_WARN. The library never writes to
 * stdout. Safe from any thread; takes effect for messages formatted after
 * the call returns. */
GP_EXPORT void gp_log_set_handler(gp_log_fn fn, void *userdata, gp_log_level_t min_level);

/* The current minimum level. */
GP_EXPORT gp_log_level_t gp_log_get_level(void);

/* A lowercase name for a level ("debug", "info", "warn", "error", "off"). */
GP_EXPORT const char *gp_log_level_name(gp_log_level_t level);

/* Copy `text` into `out` (NUL-terminated, truncated to outlen) with every
 * secret masked: the password in postgres://user:PASSWORD@host and
 * redis://:PASSWORD@host URLs, and the value of password=... in libpq
 * conninfo strings. Returns `out`. Safe from any thread. */
GP_EXPORT char *gp_redact(const char *text, char *out, size_t outlen);

#ifdef __cplusplus
}
#endif
#endif
