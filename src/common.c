/* common.c — version, status names, logging and redaction shared by every layer. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

const char *gp_version(void) { return GP_VERSION_STRING; }

static const char *const status_names[GP_STATUS_COUNT_] = {
    [GP_OK] = "success",
    [GP_ERR_NOMEM] = "out of memory",
    [GP_ERR_INVALID] = "invalid argument",
    [GP_ERR_CONFIG] = "invalid configuration",
    [GP_ERR_CONNECT] = "cannot connect to the server",
    [GP_ERR_AUTH] = "authentication failed",
    [GP_ERR_TIMEOUT] = "timed out",
    [GP_ERR_CLOSED] = "closed",
    [GP_ERR_SERVER] = "the server reported an error",
    [GP_ERR_TYPE] = "value has a different type",
    [GP_ERR_NOT_FOUND] = "not found",
    [GP_ERR_RANGE] = "out of range",
    [GP_ERR_TENANT] = "invalid tenant id",
    [GP_ERR_KEY] = "invalid cache key",
    [GP_ERR_UNAVAILABLE] = "cache unavailable",
    [GP_ERR_COMMIT_UNKNOWN] = "commit outcome unknown",
    [GP_ERR_PROTOCOL] = "unexpected reply from the server",
    [GP_ERR_CANCELED] = "canceled",
    [GP_ERR_NULL] = "value is NULL",
    [GP_ERR_MISS] = "cache miss",
    [GP_ERR_MIGRATION] = "migration failed",
    [GP_ERR_IO] = "I/O error",
};

const char *gp_strerror(gp_status_t status)
{
    if ((int)status < 0 || status >= GP_STATUS_COUNT_ || !status_names[status])
        return "unknown status";
    return status_names[status];
}

static const char *const class_names[GP_ECLASS_COUNT_] = {
    [GP_ECLASS_NONE] = "none",
    [GP_ECLASS_CONNECTION] = "connection",
    [GP_ECLASS_AUTH] = "auth",
    [GP_ECLASS_TIMEOUT] = "timeout",
    [GP_ECLASS_UNIQUE] = "unique_violation",
    [GP_ECLASS_FOREIGN_KEY] = "foreign_key_violation",
    [GP_ECLASS_CHECK] = "check_violation",
    [GP_ECLASS_NOT_NULL] = "not_null_violation",
    [GP_ECLASS_SERIALIZATION] = "serialization_failure",
    [GP_ECLASS_DEADLOCK] = "deadlock",
    [GP_ECLASS_PRIVILEGE] = "insufficient_privilege",
    [GP_ECLASS_SYNTAX] = "syntax_or_undefined",
    [GP_ECLASS_DATA] = "data_exception",
    [GP_ECLASS_RESOURCE] = "insufficient_resources",
    [GP_ECLASS_CONSTRAINT] = "constraint_violation",
    [GP_ECLASS_TRANSACTION] = "invalid_transaction_state",
    [GP_ECLASS_CLIENT] = "client",
    [GP_ECLASS_INTERNAL] = "internal",
};

const char *gp_error_class_name(gp_error_class_t klass)
{
    if ((int)klass < 0 || klass >= GP_ECLASS_COUNT_ || !class_names[klass])
        return "unknown";
    return class_names[klass];
}

void gp_error_clear(gp_error_t *err)
{
    if (!err)
        return;
    memset(err, 0, sizeof *err);
    err->statement_index = -1;
}

/* ---- logging ----------------------------------------------------------- */

typedef struct log_sink {
    gp_log_fn fn;
    void *userdata;
} log_sink_t;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static log_sink_t log_sink;                     /* guarded by log_lock */
static _Atomic int log_min_level = GP_LOG_WARN; /* read lock-free on hot paths */

const char *gp_log_level_name(gp_log_level_t level)
{
    switch (level) {
    case GP_LOG_DEBUG: return "debug";
    case GP_LOG_INFO: return "info";
    case GP_LOG_WARN: return "warn";
    case GP_LOG_ERROR: return "error";
    case GP_LOG_OFF: return "off";
    }
    return "unknown";
}

void gp_log_set_handler(gp_log_fn fn, void *userdata, gp_log_level_t min_level)
{
    pthread_mutex_lock(&log_lock);
    log_sink.fn = fn;
    log_sink.userdata = userdata;
    pthread_mutex_unlock(&log_lock);
    atomic_store(&log_min_level, (int)min_level);
}

gp_log_level_t gp_log_get_level(void) { return (gp_log_level_t)atomic_load(&log_min_level); }

bool gp__log_enabled(gp_log_level_t level)
{
    return level != GP_LOG_OFF && (int)level >= atomic_load(&log_min_level);
}

void gp__log(gp_log_level_t level, const char *component, const char *fmt, ...)
{
    if (!gp__log_enabled(level))
        return;
    char raw[1024], clean[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    gp_redact(raw, clean, sizeof clean);
    /* One line per message: fold any newline the server put in. */
    for (char *p = clean; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';

    pthread_mutex_lock(&log_lock);
    log_sink_t sink = log_sink;
    pthread_mutex_unlock(&log_lock);
    if (sink.fn)
        sink.fn(sink.userdata, level, component, clean);
    else
        fprintf(stderr, "growplate[%s] %s: %s\n", component, gp_log_level_name(level), clean);
}

/* ---- small helpers ------------------------------------------------------- */

struct timespec gp__deadline_mono(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = ts.tv_nsec + (ms % 1000) * 1000000LL;
    ts.tv_sec += (time_t)(ms / 1000) + (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    return ts;
}

void gp__bufappend(char *buf, size_t len, const char *fmt, ...)
{
    if (!buf || len == 0)
        return;
    size_t used = strnlen(buf, len);
    if (used >= len - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

void gp__sbuf_add(gp__sbuf_t *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0)
        return;
    if (b->n + (size_t)need + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 512) + (size_t)need;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
}

uint64_t gp__rand64(void)
{
    static _Thread_local uint64_t state;
    if (state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&state;
        if (state == 0)
            state = 0x9E3779B97F4A7C15ULL;
    }
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

int64_t gp__jitter(int64_t base, double frac)
{
    if (base <= 0 || frac <= 0)
        return base;
    double u = (double)(gp__rand64() >> 11) / (double)(1ULL << 53); /* [0,1) */
    return (int64_t)((double)base * (1.0 - frac + 2.0 * frac * u));
}

/* ---- redaction ------------------------------------------------------------ */

static const char MASK[] = "********";

char *gp_redact(const char *text, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return out;
    size_t o = 0;
#define PUT(c) do { if (o + 1 < outlen) out[o++] = (c); } while (0)
    if (!text)
        text = "";
    const char *p = text;
    while (*p) {
        /* URL userinfo: scheme://user:SECRET@host */
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') {
            PUT(':'); PUT('/'); PUT('/');
            p += 3;
            const char *auth_end = p;
            while (*auth_end && *auth_end != '/' && *auth_end != ' ' && *auth_end != '\t' &&
                   *auth_end != '\n' && *auth_end != '"' && *auth_end != '\'' && *auth_end != '?')
                auth_end++;
            const char *at = NULL;
            for (const char *q = p; q < auth_end; q++)
                if (*q == '@')
                    at = q; /* the last '@' ends the userinfo */
            if (at) {
                const char *colon = memchr(p, ':', (size_t)(at - p));
                const char *user_end = colon ? colon : at;
                for (const char *q = p; q < user_end; q++)
                    PUT(*q);
                if (colon) {
                    PUT(':');
                    for (const char *m = MASK; *m; m++)
                        PUT(*m);
                }
                p = at; /* continue with '@host...' */
            }
            continue;
        }
        /* conninfo / query parameter: password=SECRET */
        if ((p == text || !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= 'A' && p[-1] <= 'Z'))) &&
            strncasecmp(p, "password", 8) == 0) {
            const char *q = p + 8;
            while (*q == ' ')
                q++;
            if (*q == '=') {
                for (const char *c = p; c <= q; c++)
                    PUT(*c);
                q++;
                while (*q == ' ')
                    q++;
                if (*q == '\'') { /* quoted value with \-escapes */
                    q++;
                    while (*q && *q != '\'') {
                        if (*q == '\\' && q[1])
                            q++;
                        q++;
                    }
                    if (*q == '\'')
                        q++;
                } else {
                    while (*q && *q != ' ' && *q != '&' && *q != '\n' && *q != '\t' && *q != '"')
                        q++;
                }
                for (const char *m = MASK; *m; m++)
                    PUT(*m);
                p = q;
                continue;
            }
        }
        PUT(*p);
        p++;
    }
    out[o] = '\0';
#undef PUT
    return out;
}
