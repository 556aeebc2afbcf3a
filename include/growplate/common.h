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
#define GP_VERSION_MINOR 3
#define GP_VERSION_PATCH 0
#define GP_VERSION_STRING "0.3.0"

/* The library's version at run time ("0.3.0"). Static string. */
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
    GP_ERR_BUSY = 22,        /* throttled: this key has too many callers waiting (retry later; HTTP 429) */
    GP_STATUS_COUNT_         /* not a status; keep last */
} gp_status_t;

/* A short, static, English description of a status ("acquire timed out"...).
 * Never NULL; unknown values give "unknown status". */
GP_EXPORT const char *gp_strerror(gp_status_t status);

/* What kind of failure an error is; drives retry decisions. Values are only
 * ever appended. */
typedef enum gp_error_class {
    GP_ECLASS_NONE = 0,
    GP_ECLASS_CONNECTION = 1,   /* connection lost/refused, server shutting down (08xxx, 57P01-57P03) */
    GP_ECLASS_AUTH = 2,         /* authentication or authorization to connect (28xxx) */
    GP_ECLASS_TIMEOUT = 3,      /* statement timeout, acquire timeout, query canceled (57014) */
    GP_ECLASS_UNIQUE = 4,       /* unique violation (23505) */
    GP_ECLASS_FOREIGN_KEY = 5,  /* foreign key violation (23503) */
    GP_ECLASS_CHECK = 6,        /* check violation (23514) */
    GP_ECLASS_NOT_NULL = 7,     /* not-null violation (23502) */
    GP_ECLASS_SERIALIZATION = 8,/* serialization failure (40001) */
    GP_ECLASS_DEADLOCK = 9,     /* deadlock detected (40P01) */
    GP_ECLASS_PRIVILEGE = 10,   /* insufficient privilege or row-level security violation (42501) */
    GP_ECLASS_SYNTAX = 11,      /* syntax error or undefined object (42xxx) */
    GP_ECLASS_DATA = 12,        /* data exception (22xxx) */
    GP_ECLASS_RESOURCE = 13,    /* insufficient resources, too many connections (53xxx) */
    GP_ECLASS_CONSTRAINT = 14,  /* other integrity constraint violations (23xxx) */
    GP_ECLASS_TRANSACTION = 15, /* invalid transaction state (25xxx) */
    GP_ECLASS_CLIENT = 16,      /* misuse detected before anything reached the server */
    GP_ECLASS_INTERNAL = 17,    /* anything else the server reported */
    GP_ECLASS_THROTTLED = 18,   /* refused by a fairness limit (GP_ERR_BUSY): retry after a pause */
    GP_ECLASS_WRONG_SERVER = 19,/* a write reached a read-only server (25006 on a standby or a server made
                                   read-only): the connection is closed; retry (a multi-host URL with
                                   target_session_attrs=read-write finds the primary) */
    GP_ECLASS_COUNT_            /* not a class; keep last */
} gp_error_class_t;

/* A lowercase name for a class ("unique_violation", "timeout", ...). */
GP_EXPORT const char *gp_error_class_name(gp_error_class_t klass);

/* A caller-owned error report, filled by functions that take a
 * `gp_error_t *err` argument (which may be NULL when the caller only wants
 * the status). No allocation; copy it freely. Every string is
 * NUL-terminated, possibly truncated, and never contains a secret. Fields the
 * server did not supply are "". */
typedef struct gp_error {
    gp_status_t status;         /* same as the function's return value */
    gp_error_class_t klass;
    int retriable;              /* nonzero when retrying the same work can succeed */
    char sqlstate[6];           /* e.g. "23505"; "" for client-side errors */
    char message[512];          /* primary message */
    char detail[512];
    char hint[256];
    char constraint_name[64];
    char table_name[64];
    char column_name[64];
    int statement_index;        /* in a pipeline: 0-based index of the failing statement; -1 otherwise */
} gp_error_t;

/* Reset *err to "no error" (status GP_OK, statement_index -1). NULL is accepted. */
GP_EXPORT void gp_error_clear(gp_error_t *err);

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

/* A log message with its fields, for structured logging (JSON lines,
 * journald, syslog with structured data). Built by the library for the
 * duration of the handler's call: every pointer is borrowed, never NULL.
 * New fields are only ever appended. */
typedef struct gp_log_record {
    gp_log_level_t level;
    const char *component;      /* "pool", "query", "cache", "migrate", ... */
    const char *message;        /* the formatted line, as gp_log_fn gets it (redacted) */
    const char *sqlstate;       /* the server's SQLSTATE when the message is about one, else "" */
    gp_error_class_t klass;     /* the error's class; GP_ECLASS_NONE when it is not about an error */
    gp_status_t status;         /* the error's status; GP_OK likewise */
    const char *tenant;         /* the tenant id when the message is about one tenant, else "" */
    int64_t duration_ns;        /* how long the thing took or was held; -1 when there is none */
} gp_log_record_t;

typedef void (*gp_log_record_fn)(void *userdata, const gp_log_record_t *record);

/* Install a process-wide handler that receives records (fields and the
 * line), instead of gp_log_set_handler's; the same rules: thread-safe, must
 * not call back into the library, never sees a secret. Setting either kind
 * of handler replaces the other; fn == NULL restores the default. */
GP_EXPORT void gp_log_set_record_handler(gp_log_record_fn fn, void *userdata, gp_log_level_t min_level);

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
 * secret masked as "********": in any scheme://user:PASSWORD@host URL
 * (postgres, postgresql, redis, rediss...) everything from the first ':'
 * after "://" to the LAST '@' of the text, whatever bytes it holds (so a
 * raw '@', '/', quote or blank in a password is masked too, and in doubt
 * more is masked); the value of a URL query's password= or sslpassword=
 * (its key percent-decoded); and the value of password=... or
 * sslpassword=... in libpq conninfo strings, quoted ('a b\'c') or not.
 * User, host, port and database stay visible. Give it the whole text: one
 * cut before a URL's '@' cannot be recognised. Returns `out`. Safe from any
 * thread. */
GP_EXPORT char *gp_redact(const char *text, char *out, size_t outlen);

/* ---- latency histograms ----------------------------------------------------
 * A fixed-size, log-linear histogram of durations (about 3% relative error,
 * 1 ns to ~73 years), used by the pool, the cache and the benchmarks.
 * gp_hist_record() is lock-free and safe from any thread; the readers are
 * safe concurrently with recording (they see a recent, not atomic, view). */
typedef struct gp_hist gp_hist_t;

/* NULL on out of memory. Free with gp_hist_free() (NULL accepted). */
GP_EXPORT gp_hist_t *gp_hist_new(void);
GP_EXPORT void gp_hist_free(gp_hist_t *h);
GP_EXPORT void gp_hist_record(gp_hist_t *h, int64_t ns);
/* Add every sample of src into dst. */
GP_EXPORT void gp_hist_merge(gp_hist_t *dst, const gp_hist_t *src);
GP_EXPORT void gp_hist_reset(gp_hist_t *h);
GP_EXPORT uint64_t gp_hist_count(const gp_hist_t *h);
/* The q-quantile (0 <= q <= 1) in nanoseconds; 0 when empty. */
GP_EXPORT int64_t gp_hist_quantile(const gp_hist_t *h, double q);
GP_EXPORT int64_t gp_hist_max(const gp_hist_t *h);
GP_EXPORT double gp_hist_sum(const gp_hist_t *h); /* nanoseconds */

/* A snapshot of a histogram: percentiles for people, cumulative buckets for
 * Prometheus. The buckets' upper bounds are fixed powers of two,
 * gp_latency_bucket_ns(i) = 2^(10+i) ns for i = 0..GP_LATENCY_BUCKETS-1
 * (1.024 us to 34.4 s), the same in every process and every release, so
 * bucket counts add up across instances; each bound is an exact edge of the
 * log-linear histogram, so the counts are exact (le[i] counts the samples
 * below the bound). Samples above the last bound count only in `count`
 * (the +Inf bucket). */
#define GP_LATENCY_BUCKETS 26
typedef struct gp_latency {
    uint64_t count;             /* every sample (= the +Inf bucket) */
    double p50_us, p90_us, p99_us, max_us;
    double sum_us;              /* for averages and Prometheus' _sum */
    uint64_t le[GP_LATENCY_BUCKETS]; /* cumulative: samples below gp_latency_bucket_ns(i) */
} gp_latency_t;

/* Fill *out from h (NULL h: all zero). Safe concurrently with recording;
 * count is the sum of the buckets read, so le[] never exceeds it. */
GP_EXPORT void gp_hist_latency(const gp_hist_t *h, gp_latency_t *out);
/* The upper bound of bucket i in nanoseconds; 0 for i out of range. */
GP_EXPORT int64_t gp_latency_bucket_ns(int i);

#ifdef __cplusplus
}
#endif
#endif
