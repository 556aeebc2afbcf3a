/* internal.h — helpers shared by every layer; never installed. Names are
 * gp__-prefixed. */
#ifndef GROWPLATE_INTERNAL_H
#define GROWPLATE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
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
/* A message with fields for a record handler (gp_log_record_t): every
 * pointer may be NULL (""), duration_ns -1 when there is none. */
typedef struct gp__log_fields {
    const char *sqlstate;
    gp_error_class_t klass;
    gp_status_t status;
    const char *tenant;
    int64_t duration_ns;
} gp__log_fields_t;
void gp__logf(const gp__log_fields_t *fields, gp_log_level_t level, const char *component, const char *fmt, ...)
    GP__PRINTF(4, 5);
/* The fields of an error: its SQLSTATE, class and status; no tenant, no
 * duration (set them after). e may be NULL. */
gp__log_fields_t gp__log_fields_of(const gp_error_t *e);
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

/* ---- SHA-256 and HMAC-SHA-256 (sha256.c) ---- */
typedef struct gp__sha256 {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t n;
} gp__sha256_t;
void gp__sha256_init(gp__sha256_t *c);
void gp__sha256_update(gp__sha256_t *c, const void *data, size_t len);
/* Writes the digest and wipes *c. */
void gp__sha256_final(gp__sha256_t *c, unsigned char out[32]);
/* SHA-256 of data, as 64 lowercase hex digits plus NUL in hex[65]. */
void gp__sha256_hex(const void *data, size_t len, char hex[65]);
/* The HMAC pads of a key: K0 ^ 0x36.., K0 ^ 0x5c.. (K0: the key, hashed when
 * longer than 64 bytes, zero-padded to 64). */
void gp__hmac_pads(const unsigned char *key, size_t keylen, unsigned char ipad[64], unsigned char opad[64]);
void gp__hmac_sha256(const unsigned char *key, size_t keylen, const void *msg, size_t len, unsigned char out[32]);
/* n bytes as 2n lowercase hex digits plus NUL. */
void gp__hex(const unsigned char *bytes, size_t n, char *out);
/* Zero memory that held a secret (not optimised away). */
void gp__wipe(void *p, size_t n);

/* The tenant key of a pool (and of gp_migrate), decoded from DATABASE_TENANT_KEY when the pool
 * is created and wiped when it is freed (tenant.h, "The verified tenant
 * context"). `kid`: the key's public id, the first 8 bytes of
 * HMAC(key, GP__TENANT_KID_LABEL) in hex. */
#define GP__TENANT_KID_LABEL "growplate tenant key id"
typedef struct gp__tenant_key {
    bool set;
    size_t len;
    unsigned char key[64];
    char kid[17];
    int ttl_s;
} gp__tenant_key_t;

/* Decode a key as configured (hex, validated by gp_config_validate); NULL
 * or "" leaves out->set false. Returns false for a malformed key. */
bool gp__tenant_key_decode(const char *hex, int ttl_ms, gp__tenant_key_t *out);

/* Offset of the first byte of s[0..len) that is not valid UTF-8 (or is a
 * NUL), or -1: one validator for parameters (values.c) and displays. */
long gp__utf8_invalid_at(const unsigned char *s, size_t len);

/* A plain lowercase SQL identifier: [a-z_][a-z0-9_]*, 1 to 63 bytes (safe
 * to put in SQL between double quotes; tables and columns of the helpers,
 * bookkeeping tables). */
bool gp__plain_ident(const char *s);

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
    /* REDIS_SENTINELS (n_sentinels 0 = none): host/port above are unused
     * then; the master is asked for by sentinel_master. */
#define GP__SENTINELS_MAX 16
    int n_sentinels;
    struct gp__redis_addr {
        char host[256];
        int port;
    } sentinels[GP__SENTINELS_MAX];
    char sentinel_master[128];
    /* REDIS_CLUSTER_NODES (n_cluster 0 = none): the seeds */
    int n_cluster;
    struct gp__redis_addr cluster[GP__SENTINELS_MAX];
    /* TLS: on or off; the files and name are borrowed from the configuration */
    bool tls;
    const char *tls_ca_file, *tls_cert_file, *tls_key_file, *tls_server_name;
} gp__redis_target_t;
gp_status_t gp__redis_target(const gp_redis_config_t *r, gp__redis_target_t *out,
                             char *err, size_t errlen);

#endif
