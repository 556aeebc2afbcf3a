/* internal.h — helpers shared by every layer; never installed. Names are
 * gp__-prefixed. */
#ifndef GROWPLATE_INTERNAL_H
#define GROWPLATE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "growplate/common.h"
#include "growplate/config.h"

#if defined(__GNUC__)
#  define GP__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define GP__PRINTF(f, a)
#endif

/* Log through the application's handler. The message is redacted with
 * gp_redact() before it reaches the handler. */
void gp__log(gp_log_level_t level, const char *component, const char *fmt, ...) GP__PRINTF(3, 4);
bool gp__log_enabled(gp_log_level_t level);

/* Format in full, then gp_redact() into out (truncated to outlen): a
 * message truncated first could end inside a URL's user info, before the
 * '@' that marks its password. On out of memory, writes a fixed notice. */
void gp__vredact(char *out, size_t outlen, const char *fmt, va_list ap) GP__PRINTF(3, 0);
void gp__redactf(char *out, size_t outlen, const char *fmt, ...) GP__PRINTF(3, 4);

/* A fixed description of a libpq "cannot parse this URL/conninfo" message,
 * or NULL when msg is not one. Those messages quote part of the string
 * (the password itself, for a bad percent-encoding), so they are never
 * shown when the string may hold a secret. */
const char *gp__conninfo_error_phrase(const char *msg);

/* Monotonic clock. */
static inline int64_t gp__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Absolute CLOCK_REALTIME deadline `ms` from now, for pthread_cond_timedwait
 * on condition variables created with the default clock; prefer
 * gp__deadline_mono with a CLOCK_MONOTONIC condattr. */
struct timespec gp__deadline_mono(int64_t ms);

/* Append printf-formatted text to a bounded, NUL-terminated buffer; never
 * overflows, silently truncates. buf may be NULL (then nothing happens). */
void gp__bufappend(char *buf, size_t len, const char *fmt, ...) GP__PRINTF(3, 4);

/* A growable string buffer. Zero-initialise; after any failed allocation
 * `oom` is set and further appends do nothing. The caller frees `s`. */
typedef struct gp__sbuf {
    char *s;
    size_t n, cap;
    bool oom;
} gp__sbuf_t;
void gp__sbuf_add(gp__sbuf_t *b, const char *fmt, ...) GP__PRINTF(2, 3);

/* Thread-safe random 64-bit value (xorshift per thread, seeded from time and
 * the thread); for jitter, not for secrets. */
uint64_t gp__rand64(void);

/* Uniform jitter: returns a value in [base*(1-frac), base*(1+frac)]. */
int64_t gp__jitter(int64_t base, double frac);

/* libpq connection parameters resolved from a gp_db_config_t, ready for
 * PQconnectdbParams(kw, val, 1). When `migration` is true the migration URL
 * is used alone (plus timeouts); otherwise DATABASE_URL merged with its
 * parts, plus `options=-c statement_timeout=N` when statement_timeout_ms is
 * set (appended to any options the URL gives). Fails (GP_ERR_CONFIG, message
 * in err) when the required URL is missing. */
typedef struct gp__pg_params {
    const char *kw[32];
    const char *val[32];
    char port[16];
    char connect_timeout[16];
    char options[256];          /* URL options plus -c statement_timeout=N */
} gp__pg_params_t;
gp_status_t gp__pg_params(const gp_db_config_t *db, bool migration, gp__pg_params_t *out,
                          char *err, size_t errlen);

/* The effective Redis target: URL merged with parts and defaults. */
typedef struct gp__redis_target {
    char host[256];
    int port;
    char username[128];
    char password[256];
    int db;
} gp__redis_target_t;
gp_status_t gp__redis_target(const gp_redis_config_t *r, gp__redis_target_t *out,
                             char *err, size_t errlen);

#endif
