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
    [GP_ERR_BUSY] = "too many callers waiting for this key",
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
    [GP_ECLASS_THROTTLED] = "throttled",
    [GP_ECLASS_WRONG_SERVER] = "wrong_server",
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
    gp_log_fn fn;               /* at most one of fn and record_fn */
    gp_log_record_fn record_fn;
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
    log_sink = (log_sink_t){.fn = fn, .userdata = userdata};
    pthread_mutex_unlock(&log_lock);
    atomic_store(&log_min_level, (int)min_level);
}

void gp_log_set_record_handler(gp_log_record_fn fn, void *userdata, gp_log_level_t min_level)
{
    pthread_mutex_lock(&log_lock);
    log_sink = (log_sink_t){.record_fn = fn, .userdata = userdata};
    pthread_mutex_unlock(&log_lock);
    atomic_store(&log_min_level, (int)min_level);
}

gp_log_level_t gp_log_get_level(void) { return (gp_log_level_t)atomic_load(&log_min_level); }

bool gp__log_enabled(gp_log_level_t level)
{
    return level != GP_LOG_OFF && (int)level >= atomic_load(&log_min_level);
}

static void emit(const gp__log_fields_t *f, gp_log_level_t level, const char *component, const char *fmt, va_list ap)
{
    char clean[1024];
    gp__vredact(clean, sizeof clean, fmt, ap);
    /* One line per message: fold any newline the server put in. */
    for (char *p = clean; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';

    pthread_mutex_lock(&log_lock);
    log_sink_t sink = log_sink;
    pthread_mutex_unlock(&log_lock);
    if (sink.record_fn) {
        char tenant[64] = "";
        if (f && f->tenant) /* validated ids only reach here; cut anyway */
            snprintf(tenant, sizeof tenant, "%s", f->tenant);
        gp_log_record_t rec = {
            .level = level,
            .component = component,
            .message = clean,
            .sqlstate = f && f->sqlstate ? f->sqlstate : "",
            .klass = f ? f->klass : GP_ECLASS_NONE,
            .status = f ? f->status : GP_OK,
            .tenant = tenant,
            .duration_ns = f ? f->duration_ns : -1,
        };
        sink.record_fn(sink.userdata, &rec);
    } else if (sink.fn) {
        sink.fn(sink.userdata, level, component, clean);
    } else {
        fprintf(stderr, "growplate[%s] %s: %s\n", component, gp_log_level_name(level), clean);
    }
}

void gp__log(gp_log_level_t level, const char *component, const char *fmt, ...)
{
    if (!gp__log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(NULL, level, component, fmt, ap);
    va_end(ap);
}

void gp__logf(const gp__log_fields_t *fields, gp_log_level_t level, const char *component, const char *fmt, ...)
{
    if (!gp__log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(fields, level, component, fmt, ap);
    va_end(ap);
}

gp__log_fields_t gp__log_fields_of(const gp_error_t *e)
{
    gp__log_fields_t f = {.duration_ns = -1};
    if (e) {
        f.sqlstate = e->sqlstate;
        f.klass = e->klass;
        f.status = e->status;
    }
    return f;
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

static bool kw_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Whether [k, k+n), percent-decoded and ignoring case and surrounding
 * blanks, names a secret option: libpq's password or sslpassword (libpq
 * decodes a URL query's keys as well as its values). */
static bool secret_query_key(const char *k, size_t n)
{
    char key[16];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)k[i];
        if (c == '%' && i + 2 < n && hex_digit(k[i + 1]) >= 0 && hex_digit(k[i + 2]) >= 0) {
            c = hex_digit(k[i + 1]) * 16 + hex_digit(k[i + 2]);
            i += 2;
        }
        if (is_space(c) && o == 0)
            continue;
        if (o + 1 >= sizeof key)
            return false;
        key[o++] = (char)c;
    }
    while (o && is_space((unsigned char)key[o - 1]))
        o--;
    key[o] = 0;
    return strcasecmp(key, "password") == 0 || strcasecmp(key, "sslpassword") == 0;
}

/* Where a URL query value starting at v ends: at the first '&' that starts
 * another parameter (a name and '='), else at the end of the text. A raw
 * '&' in a password is masked with it (libpq would reject the URL). */
static const char *query_value_end(const char *v)
{
    const char *q = v;
    for (;;) {
        q += strcspn(q, "&");
        if (!*q)
            return q;
        const char *k = q + 1;
        if ((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || *k == '_') {
            while (kw_char((unsigned char)*k))
                k++;
            if (*k == '=')
                return q;
        }
        q++;
    }
}

/* The length of a conninfo secret keyword at p ("password" or
 * "sslpassword", any case) when it is followed by blanks and '=';
 * *value then points just after the '='. 0 otherwise. */
static size_t secret_conninfo_key(const char *p, const char **value)
{
    static const char *const kws[] = {"sslpassword", "password"};
    for (size_t i = 0; i < sizeof kws / sizeof *kws; i++) {
        size_t n = strlen(kws[i]);
        if (strncasecmp(p, kws[i], n) != 0)
            continue;
        const char *q = p + n;
        while (is_space((unsigned char)*q))
            q++;
        if (*q == '=') {
            *value = q + 1;
            return n;
        }
    }
    return 0;
}

/* The end of a conninfo value starting at v (blanks before it skipped):
 * a quoted one ends after its closing unescaped quote (or at the end of the
 * text), an unquoted one at the first unescaped blank, as libpq reads them. */
static const char *conninfo_value_end(const char *v)
{
    const char *q = v;
    while (is_space((unsigned char)*q))
        q++;
    bool quoted = *q == '\'';
    if (quoted)
        q++;
    while (*q && (quoted ? *q != '\'' : !is_space((unsigned char)*q))) {
        if (*q == '\\' && q[1])
            q++;
        q++;
    }
    if (quoted && *q == '\'')
        q++;
    return q;
}

/* The rule, chosen so that no reading of the text can leave a password
 * visible (when in doubt, more is masked). Three kinds of secret are found,
 * each independently of the others, at every position of the text (also
 * inside what another one already masks, so that none can hide a second),
 * and every byte inside any of them is masked; each masked run becomes one
 * "********".
 *
 * - URL user info. After every "://", the user name runs to the first ':'
 *   and the password from there to the LAST '@' of the whole text: libpq
 *   ends the user info at the first '@' before the first '/', our Redis
 *   parser at the last '@' before the first '/', '?' or '#', and a person
 *   may have meant a raw '@', '/', '?', '#', quote or blank to be part of
 *   the password; every one of those readings puts the password inside
 *   [first ':', last '@'). Nothing else ends it, so a text cut before the
 *   '@' would not be recognised: format in full, then redact (gp__vredact).
 * - URL query: after '?' or '&', a key that percent-decodes to password or
 *   sslpassword (any case): the value runs to the next '&' that starts
 *   another name=value, or to the end of the text (libpq accepts raw blanks
 *   and '#' in it).
 * - conninfo: the keyword password or sslpassword (any case, not preceded
 *   by a letter, digit, '_', or the '?' or '&' of a URL query), blanks, '=',
 *   then the value as libpq reads it (conninfo_value_end). */
char *gp_redact(const char *text, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return out;
    size_t o = 0;
#define PUT(c) do { if (o + 1 < outlen) out[o++] = (c); } while (0)
    if (!text)
        text = "";
    const char *last_at = strrchr(text, '@');
    const char *zone = NULL;            /* URL password: [zone, last_at) */
    const char *vs = NULL, *ve = NULL;  /* an option's value: [vs, ve) */
    bool in_mask = false;
    for (const char *p = text; *p; p++) {
        const char *s = NULL, *e = NULL;
        if (p[0] == ':' && p[1] == '/' && p[2] == '/' && last_at && p + 3 < last_at) {
            const char *colon = memchr(p + 3, ':', (size_t)(last_at - (p + 3)));
            if (colon && (!zone || colon + 1 < zone))
                zone = colon + 1;
        }
        if (*p == '?' || *p == '&') {
            const char *k = p + 1;
            size_t kn = strcspn(k, "=&");
            if (k[kn] == '=' && secret_query_key(k, kn)) {
                s = k + kn + 1;
                e = query_value_end(s);
            }
        }
        const char *v = NULL;
        if (!s && (p == text || !(kw_char((unsigned char)p[-1]) || p[-1] == '?' || p[-1] == '&')) &&
            secret_conninfo_key(p, &v)) { /* after '?' or '&': a URL query's, found above */
            s = v;
            e = conninfo_value_end(v);
        }
        if (s && e > s) { /* merge with a pending value: more masked, never less */
            if (!vs) {
                vs = s;
                ve = e;
            } else {
                if (s < vs)
                    vs = s;
                if (e > ve)
                    ve = e;
            }
        }
        bool masked = (zone && p >= zone && p < last_at) || (vs && p >= vs && p < ve);
        if (masked) {
            if (!in_mask)
                for (const char *m = MASK; *m; m++)
                    PUT(*m);
        } else {
            PUT(*p);
        }
        in_mask = masked;
        if (vs && p + 1 >= ve)
            vs = ve = NULL;
        if (zone && p + 1 >= last_at)
            zone = NULL;
    }
    out[o] = '\0';
#undef PUT
    return out;
}

void gp__vredact(char *out, size_t outlen, const char *fmt, va_list ap)
{
    if (!out || outlen == 0)
        return;
    char stack[2048];
    va_list ap2;
    va_copy(ap2, ap);
    int need = vsnprintf(stack, sizeof stack, fmt, ap);
    if (need < 0) {
        va_end(ap2);
        snprintf(out, outlen, "(message could not be formatted)");
        return;
    }
    if ((size_t)need < sizeof stack) {
        va_end(ap2);
        gp_redact(stack, out, outlen);
        return;
    }
    /* Redact the whole text, not a truncated one that may end inside a
     * URL's user info before its '@'. */
    char *heap = malloc((size_t)need + 1);
    if (!heap) {
        va_end(ap2);
        snprintf(out, outlen, "(message withheld: out of memory formatting it)");
        return;
    }
    vsnprintf(heap, (size_t)need + 1, fmt, ap2);
    va_end(ap2);
    gp_redact(heap, out, outlen);
    free(heap);
}

void gp__redactf(char *out, size_t outlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp__vredact(out, outlen, fmt, ap);
    va_end(ap);
}

/* libpq's messages for a URL or conninfo string it cannot parse quote part
 * of it (for a bad percent-encoding, the password itself; for an IPv6
 * typo, the whole URL), so they are never shown: each is replaced by a
 * fixed description of its kind. NULL when `msg` is not one of them. */
const char *gp__conninfo_error_phrase(const char *msg)
{
    static const struct { const char *prefix, *phrase; } table[] = {
        {"missing \"=\" after", "a word without \"=\" after it"},
        {"unterminated quoted string", "an unterminated quoted value"},
        {"invalid connection option", "an unknown connection option"},
        {"invalid URI propagated", "not a URI"},
        {"end of string reached when looking for matching \"]\"", "an IPv6 address without its closing \"]\""},
        {"IPv6 host address may not be empty", "an empty IPv6 address"},
        {"unexpected character", "an unexpected character after the host (expected \":\" or \"/\")"},
        {"extra key/value separator", "a query parameter with a second \"=\""},
        {"missing key/value separator", "a query parameter without \"=\""},
        {"invalid URI query parameter", "an unknown query parameter"},
        {"invalid percent-encoded token", "a '%' not followed by two hex digits (write '%' itself as %25)"},
        {"forbidden value %00", "a percent-encoded NUL (%00)"},
    };
    if (!msg)
        return NULL;
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (strncmp(msg, table[i].prefix, strlen(table[i].prefix)) == 0)
            return table[i].phrase;
    return NULL;
}

/* ---- UTF-8 ---- */

long gp__utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (len - i >= 8) { /* eight ASCII bytes without NUL at once (each byte in 1..0x7F) */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!((w | (w - 0x0101010101010101ULL)) & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        unsigned c = s[i];
        if (c == 0)
            return (long)i;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned min;
        if (c >= 0xC2 && c <= 0xDF) { need = 1; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; min = 0x10000; }
        else return (long)i;
        if (len - i <= need)
            return (long)i;
        unsigned cp = c & (0x3F >> need);
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return (long)i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return (long)i;
        i += need + 1;
    }
    return -1;
}

bool gp__plain_ident(const char *s)
{
    if (!s || !*s || strlen(s) > 63 || !((*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}
