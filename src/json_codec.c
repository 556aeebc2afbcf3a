/* json_codec.c — fast text <-> json_t conversion over jansson's public API,
 * exactly equivalent to jansson 2.14's json_dumpb / json_loadb with the
 * flags the cache uses (see json_codec.h for the contract).
 *
 * Why it is faster: jansson's encoder goes through a callback per fragment,
 * snprintf per integer and a hash table of parents per call; its decoder
 * reads through a per-byte stream with UTF-8 buffering and copies every
 * token into a growing buffer before converting it. Here both directions
 * work on contiguous memory: unescaped strings go straight from the input
 * to json_stringn_nocheck, output goes straight into the caller's buffer.
 *
 * What is left to jansson (the "fall back" answer) is chosen so that
 * equivalence holds by construction: reals are formatted by json_dumpb
 * itself, parsed by the same strtod jansson calls (only where the locale's
 * decimal point is '.', so jansson passes the text unchanged), and anything
 * unusual — errors included — is handed to jansson whole. */
#include "json_codec.h"

#include <errno.h>
#include <langinfo.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FLAGS_DUMP (JSON_COMPACT | JSON_ENCODE_ANY)
#define FLAGS_LOAD (JSON_DECODE_ANY | JSON_ALLOW_NUL)

/* ---- shared: byte classes and UTF-8 ------------------------------------------------ */

/* Inside a JSON string: ordinary ASCII, the quote, the backslash, a control
 * character (U+0000..U+001F, escaped on output, an error on input), or a
 * byte of a multi-byte UTF-8 sequence. */
enum { PLAIN = 0, QUOTE, BSLASH, CTRL, HIGH };

static const unsigned char sclass[256] = {
    [0x00 ... 0x1F] = CTRL,
    ['"'] = QUOTE,
    ['\\'] = BSLASH,
    [0x80 ... 0xFF] = HIGH,
};

/* The length (2..4) of the valid UTF-8 sequence starting at p (p[0] >=
 * 0x80), given n >= 1 readable bytes; 0 when invalid. Exactly jansson's
 * utf8_check_first + utf8_check_full: no continuation byte first, no
 * overlong form, no surrogate, nothing above U+10FFFF, no truncation. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        uint32_t v = (uint32_t)(c & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
        return v >= 0x800 && (v < 0xD800 || v > 0xDFFF) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        uint32_t v = (uint32_t)(c & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 | (uint32_t)(p[2] & 0x3F) << 6 |
                     (p[3] & 0x3F);
        return v >= 0x10000 && v <= 0x10FFFF ? 4 : 0;
    }
    return 0; /* a continuation byte, 0xC0/0xC1, or 0xF5.. */
}

/* Eight string bytes at a time: nonzero when any byte of x is not PLAIN
 * (below 0x20, '"', '\\', or 0x80 and above). Exact for "any": the borrow
 * tricks only ever add false positives above a true one. */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t load8(const unsigned char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof x);
    return x;
}

static inline uint64_t special8(uint64_t x)
{
    uint64_t q = x ^ (ONES * '"'), s = x ^ (ONES * '\\');
    return (((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((s - ONES) & ~s) | x) & HIGHS;
}

/* ---- the output buffer ------------------------------------------------------------- */

void gp__jbuf_init(gp__jbuf_t *b, char *initial, size_t cap)
{
    b->data = initial;
    b->len = 0;
    b->cap = initial ? cap : 0;
    b->heap = false;
}

void gp__jbuf_free(gp__jbuf_t *b)
{
    if (b->heap)
        free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->heap = false;
}

/* Make room for n more bytes (the slow path of room()). */
static bool grow(gp__jbuf_t *b, size_t n)
{
    if (n > SIZE_MAX - b->len)
        return false;
    size_t want = b->len + n, cap = b->cap > 64 ? b->cap : 64;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    char *p;
    if (b->heap) {
        p = realloc(b->data, cap);
    } else {
        p = malloc(cap);
        if (p && b->len)
            memcpy(p, b->data, b->len);
    }
    if (!p)
        return false;
    b->data = p;
    b->cap = cap;
    b->heap = true;
    return true;
}

static inline bool room(gp__jbuf_t *b, size_t n)
{
    return b->cap - b->len >= n || grow(b, n);
}

/* ---- encoder ----------------------------------------------------------------------- */

static const char hexdig[] = "0123456789ABCDEF";

/* A quoted string, escaped as jansson's dump_string does without
 * JSON_ENSURE_ASCII / JSON_ESCAPE_SLASH: '"', '\\' and U+0000..U+001F only
 * (\b \f \n \r \t by name, the rest as \u00XX in upper case); valid
 * multi-byte UTF-8 passes through. */
static gp__json_rc_t put_string(gp__jbuf_t *b, const char *str, size_t n)
{
    const unsigned char *p = (const unsigned char *)str, *end = p + n;
    if (n > SIZE_MAX - 2 || !room(b, n + 2))
        return GP__JSON_NOMEM;
    char *o = b->data + b->len;
    *o++ = '"';
    for (;;) {
        /* Runs of plain bytes: a word, then a byte at a time. Output never
         * runs ahead of input here, so the room reserved suffices. */
        for (uint64_t x; end - p >= 8 && !special8(x = load8(p)); p += 8, o += 8)
            memcpy(o, &x, 8);
        while (p < end && sclass[*p] == PLAIN)
            *o++ = (char)*p++;
        if (p == end)
            break;
        unsigned c = *p;
        if (sclass[c] == HIGH) {
            size_t m = utf8_seq(p, (size_t)(end - p));
            if (!m)
                return GP__JSON_FALLBACK; /* jansson fails on it */
            memcpy(o, p, m);
            o += m;
            p += m;
            continue;
        }
        /* An escape: up to 6 bytes for this one, then the rest unescaped and
         * the closing quote. */
        b->len = (size_t)(o - b->data);
        if (!room(b, (size_t)(end - p) + 6))
            return GP__JSON_NOMEM;
        o = b->data + b->len;
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            memcpy(o, "u00", 3);
            o[3] = hexdig[c >> 4];
            o[4] = hexdig[c & 15];
            o += 5;
        }
        p++;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return GP__JSON_OK;
}

/* "%lld" without snprintf. */
static gp__json_rc_t put_int(gp__jbuf_t *b, json_int_t v)
{
    char tmp[24], *t = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--t = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--t = '-';
    size_t n = (size_t)(tmp + sizeof tmp - t);
    if (!room(b, n))
        return GP__JSON_NOMEM;
    memcpy(b->data + b->len, t, n);
    b->len += n;
    return GP__JSON_OK;
}

static inline gp__json_rc_t put_ch(gp__jbuf_t *b, char c)
{
    if (!room(b, 1))
        return GP__JSON_NOMEM;
    b->data[b->len++] = c;
    return GP__JSON_OK;
}

static gp__json_rc_t put_raw(gp__jbuf_t *b, const char *s, size_t n)
{
    if (!room(b, n))
        return GP__JSON_NOMEM;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return GP__JSON_OK;
}

/* json_dumpb's encoding of v, straight into the buffer (grown when it does
 * not fit): reals, and the fallback of gp__json_dump. GP__JSON_FALLBACK
 * when jansson cannot encode it either. */
static gp__json_rc_t put_jansson(gp__jbuf_t *b, const json_t *v)
{
    size_t avail = b->cap - b->len, n = json_dumpb(v, avail ? b->data + b->len : NULL, avail, FLAGS_DUMP);
    if (n > avail) {
        if (!room(b, n))
            return GP__JSON_NOMEM;
        n = json_dumpb(v, b->data + b->len, n, FLAGS_DUMP);
    }
    if (n == 0)
        return GP__JSON_FALLBACK;
    b->len += n;
    return GP__JSON_OK;
}

static gp__json_rc_t encode(const json_t *v, gp__jbuf_t *b, int depth)
{
    gp__json_rc_t rc;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (depth >= GP__JSON_MAX_DEPTH)
            return GP__JSON_FALLBACK;
        void *it = json_object_iter((json_t *)v);
        if ((rc = put_ch(b, '{')) != GP__JSON_OK)
            return rc;
        for (bool first = true; it; it = json_object_iter_next((json_t *)v, it), first = false) {
            if (!first && (rc = put_ch(b, ',')) != GP__JSON_OK)
                return rc;
            if ((rc = put_string(b, json_object_iter_key(it), json_object_iter_key_len(it))) != GP__JSON_OK ||
                (rc = put_ch(b, ':')) != GP__JSON_OK ||
                (rc = encode(json_object_iter_value(it), b, depth + 1)) != GP__JSON_OK)
                return rc;
        }
        return put_ch(b, '}');
    }
    case JSON_ARRAY: {
        if (depth >= GP__JSON_MAX_DEPTH)
            return GP__JSON_FALLBACK;
        size_t n = json_array_size(v);
        if ((rc = put_ch(b, '[')) != GP__JSON_OK)
            return rc;
        for (size_t i = 0; i < n; i++)
            if ((i > 0 && (rc = put_ch(b, ',')) != GP__JSON_OK) ||
                (rc = encode(json_array_get(v, i), b, depth + 1)) != GP__JSON_OK)
                return rc;
        return put_ch(b, ']');
    }
    case JSON_STRING:
        return put_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return put_int(b, json_integer_value(v));
    case JSON_REAL: /* jansson's own formatting */
        return put_jansson(b, v);
    case JSON_TRUE:
        return put_raw(b, "true", 4);
    case JSON_FALSE:
        return put_raw(b, "false", 5);
    case JSON_NULL:
        return put_raw(b, "null", 4);
    }
    return GP__JSON_FALLBACK;
}

gp__json_rc_t gp__json_encode(const json_t *v, gp__jbuf_t *out)
{
    if (!v)
        return GP__JSON_FALLBACK;
    size_t start = out->len;
    gp__json_rc_t rc = encode(v, out, 0);
    if (rc == GP__JSON_FALLBACK)
        out->len = start;
    return rc;
}

gp__json_rc_t gp__json_dump(const json_t *v, gp__jbuf_t *out)
{
    gp__json_rc_t rc = gp__json_encode(v, out);
    if (rc == GP__JSON_FALLBACK)
        rc = put_jansson(out, v);
    return rc == GP__JSON_FALLBACK ? GP__JSON_INVALID : rc;
}

char *gp__json_dumps(const json_t *v, size_t *len)
{
    char small[512];
    gp__jbuf_t b;
    gp__jbuf_init(&b, small, sizeof small);
    if (gp__json_dump(v, &b) != GP__JSON_OK || !room(&b, 1)) {
        gp__jbuf_free(&b);
        return NULL;
    }
    b.data[b.len] = '\0';
    char *s = b.data;
    if (!b.heap) {
        s = malloc(b.len + 1);
        if (s)
            memcpy(s, b.data, b.len + 1);
    }
    if (s && len)
        *len = b.len;
    return s;
}

/* ---- decoder ----------------------------------------------------------------------- */

typedef struct dec {
    const unsigned char *p, *end;
    gp__json_rc_t rc; /* why parsing stopped */
    int depth;
    /* Unescaped strings are written here: a stack of spans (an object's
     * escaped key stays below its value's strings until the member is set).
     * Starts on the caller's stack. */
    char *arena;
    size_t alen, acap;
    bool aheap;
} dec_t;

/* A decoded string: at s (in the input, no escapes) or, when in_arena, at
 * arena + mark (re-read after any arena growth). */
typedef struct str {
    const char *s;
    size_t n, mark;
    bool in_arena, nul;
} str_t;

static json_t *stop(dec_t *d, gp__json_rc_t rc)
{
    d->rc = rc;
    return NULL;
}

static inline void skip_ws(dec_t *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
        d->p++;
}

static bool arena_room(dec_t *d, size_t n)
{
    if (d->acap - d->alen >= n)
        return true;
    if (n > SIZE_MAX / 2 - d->alen)
        return false;
    size_t cap = d->acap * 2;
    if (cap < d->alen + n)
        cap = d->alen + n;
    char *p = d->aheap ? realloc(d->arena, cap) : malloc(cap);
    if (!p)
        return false;
    if (!d->aheap && d->alen)
        memcpy(p, d->arena, d->alen);
    d->arena = p;
    d->acap = cap;
    d->aheap = true;
    return true;
}

static int hexval(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? (int)(c - 'a' + 10) : -1;
}

/* Four hex digits at p (readable), or -1. */
static int32_t hex4(const unsigned char *p)
{
    int a = hexval(p[0]), b = hexval(p[1]), c = hexval(p[2]), e = hexval(p[3]);
    return (a | b | c | e) < 0 ? -1 : (int32_t)(a << 12 | b << 8 | c << 4 | e);
}

/* The rest of a string with escapes: start is just after the opening
 * quote, p at the first backslash. Decodes into the arena; d->rc set on
 * failure. */
__attribute__((noinline)) /* the rare path: keep scan_string's frame small */
static bool unescape(dec_t *d, const unsigned char *start, const unsigned char *p, str_t *out)
{
    /* Find the closing quote (skipping escaped characters) to bound the
     * output: every escape decodes to fewer bytes than it takes. */
    const unsigned char *q = p;
    while (q < d->end && *q != '"') {
        if (*q == '\\' && ++q == d->end)
            break;
        q++;
    }
    if (q >= d->end) {
        d->rc = GP__JSON_FALLBACK;
        return false;
    }
    size_t mark = d->alen;
    if (!arena_room(d, (size_t)(q - start))) {
        d->rc = GP__JSON_NOMEM;
        return false;
    }
    char *o0 = d->arena + mark, *o = o0;
    memcpy(o, start, (size_t)(p - start));
    o += p - start;
    bool nul = false;
    d->rc = GP__JSON_FALLBACK; /* for every early return below */
    while (p < q) {
        for (uint64_t x; q - p >= 8 && !special8(x = load8(p)); p += 8, o += 8)
            memcpy(o, &x, 8);
        if (p == q)
            break;
        unsigned c = *p;
        switch (sclass[c]) {
        case PLAIN:
            *o++ = (char)c;
            p++;
            continue;
        case HIGH: {
            size_t m = utf8_seq(p, (size_t)(q - p));
            if (!m)
                return false;
            memcpy(o, p, m);
            o += m;
            p += m;
            continue;
        }
        case BSLASH:
            break;
        default: /* a control character (a quote cannot come before q) */
            return false;
        }
        if (q - p < 2)
            return false;
        switch (p[1]) {
        case '"': case '\\': case '/': *o++ = (char)p[1]; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            int32_t v = q - p >= 6 ? hex4(p + 2) : -1;
            if (v < 0 || (v >= 0xDC00 && v <= 0xDFFF))
                return false; /* bad hex, or a lone low surrogate */
            if (v >= 0xD800 && v <= 0xDBFF) {
                int32_t lo = q - p >= 12 && p[6] == '\\' && p[7] == 'u' ? hex4(p + 8) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return false; /* a high surrogate without its low half */
                v = ((v - 0xD800) << 10) + (lo - 0xDC00) + 0x10000;
                p += 6;
            }
            if (v < 0x80) {
                nul |= v == 0;
                *o++ = (char)v;
            } else if (v < 0x800) {
                *o++ = (char)(0xC0 | v >> 6);
                *o++ = (char)(0x80 | (v & 0x3F));
            } else if (v < 0x10000) {
                *o++ = (char)(0xE0 | v >> 12);
                *o++ = (char)(0x80 | (v >> 6 & 0x3F));
                *o++ = (char)(0x80 | (v & 0x3F));
            } else {
                *o++ = (char)(0xF0 | v >> 18);
                *o++ = (char)(0x80 | (v >> 12 & 0x3F));
                *o++ = (char)(0x80 | (v >> 6 & 0x3F));
                *o++ = (char)(0x80 | (v & 0x3F));
            }
            p += 4;
            break;
        }
        default:
            return false; /* an invalid escape */
        }
        p += 2;
    }
    d->rc = GP__JSON_OK;
    out->s = o0;
    out->n = (size_t)(o - o0);
    out->mark = mark;
    out->in_arena = true;
    out->nul = nul;
    d->alen = mark + out->n;
    d->p = q + 1;
    return true;
}

/* A string token; d->p just after its opening quote. */
static bool scan_string(dec_t *d, str_t *out)
{
    const unsigned char *start = d->p, *p = start, *end = d->end;
    for (;;) {
        while (end - p >= 8 && !special8(load8(p)))
            p += 8;
        while (p < end && sclass[*p] == PLAIN)
            p++;
        if (p == end)
            break;
        switch (sclass[*p]) {
        case QUOTE:
            out->s = (const char *)start;
            out->n = (size_t)(p - start);
            out->in_arena = out->nul = false;
            d->p = p + 1;
            return true;
        case HIGH: {
            size_t m = utf8_seq(p, (size_t)(end - p));
            if (!m)
                goto fallback;
            p += m;
            continue;
        }
        case BSLASH:
            return unescape(d, start, p, out);
        default:
            goto fallback; /* a control character */
        }
    }
fallback:
    d->rc = GP__JSON_FALLBACK;
    return false;
}

static inline bool is_digit(unsigned c)
{
    return c - '0' < 10;
}

/* A number: jansson's grammar (no leading zeros, digits on both sides of
 * '.', optional exponent). Integers must fit json_int_t. */
static json_t *parse_number(dec_t *d)
{
    const unsigned char *s = d->p, *p = s, *end = d->end;
    bool neg = *p == '-';
    if (neg)
        p++;
    const unsigned char *digits = p;
    if (p >= end || !is_digit(*p))
        return stop(d, GP__JSON_FALLBACK);
    if (*p == '0') {
        if (++p < end && is_digit(*p))
            return stop(d, GP__JSON_FALLBACK);
    } else {
        while (p < end && is_digit(*p))
            p++;
    }
    const unsigned char *int_end = p;
    bool real = false;
    if (p < end && *p == '.') {
        if (++p >= end || !is_digit(*p))
            return stop(d, GP__JSON_FALLBACK);
        while (p < end && is_digit(*p))
            p++;
        real = true;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return stop(d, GP__JSON_FALLBACK);
        while (p < end && is_digit(*p))
            p++;
        real = true;
    }
    d->p = p;
    json_t *v;
    if (!real) {
        /* strtoll's range: one more on the negative side. */
        unsigned long long u = 0, lim = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
        for (const unsigned char *q = digits; q < int_end; q++) {
            unsigned dg = *q - '0';
            if (u > (lim - dg) / 10)
                return stop(d, GP__JSON_FALLBACK);
            u = u * 10 + dg;
        }
        json_int_t i = !neg ? (json_int_t)u : u == lim ? LLONG_MIN : -(json_int_t)u;
        v = json_integer(i);
    } else {
        /* jansson: strtod on the token after replacing '.' by the locale's
         * decimal point; overflow to +-HUGE_VAL is an error. With '.' as the
         * decimal point that is strtod on the token as it is. */
        char buf[64];
        size_t n = (size_t)(p - s);
        const char *radix = nl_langinfo(RADIXCHAR);
        if (n >= sizeof buf || radix[0] != '.' || radix[1] != '\0')
            return stop(d, GP__JSON_FALLBACK);
        memcpy(buf, s, n);
        buf[n] = '\0';
        char *e;
        errno = 0;
        double x = strtod(buf, &e);
        if (e != buf + n || ((x == HUGE_VAL || x == -HUGE_VAL) && errno == ERANGE))
            return stop(d, GP__JSON_FALLBACK);
        v = json_real(x);
    }
    return v ? v : stop(d, GP__JSON_NOMEM);
}

/* "true", "false", "null": jansson reads a whole run of letters, so the
 * word must not be followed by another letter. */
static bool word(dec_t *d, const char *w, size_t n)
{
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, w, n) != 0)
        return false;
    const unsigned char *p = d->p + n;
    if (p < d->end && ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z'))
        return false;
    d->p = p;
    return true;
}

static json_t *parse_value(dec_t *d);

static inline bool eat(dec_t *d, unsigned char c)
{
    if (d->p < d->end && *d->p == c) {
        d->p++;
        return true;
    }
    return false;
}

/* An object or an array; d->p just after its '{' or '['. */
static json_t *parse_container(dec_t *d, bool object)
{
    json_t *c = object ? json_object() : json_array();
    if (!c)
        return stop(d, GP__JSON_NOMEM);
    unsigned char close = object ? '}' : ']';
    skip_ws(d);
    if (eat(d, close))
        return c;
    do {
        skip_ws(d);
        str_t k;
        k.in_arena = false;
        if (object) {
            if (!eat(d, '"'))
                break;
            if (!scan_string(d, &k))
                goto fail;
            if (k.nul) /* jansson: "NUL byte in object key not supported" */
                break;
            skip_ws(d);
            if (!eat(d, ':'))
                break;
            skip_ws(d);
        }
        json_t *val = parse_value(d);
        if (!val)
            goto fail;
        /* Both steal val. Like jansson, the last of duplicate keys wins. */
        if (object ? json_object_setn_new_nocheck(c, k.in_arena ? d->arena + k.mark : k.s, k.n, val)
                   : json_array_append_new(c, val)) {
            d->rc = GP__JSON_NOMEM;
            goto fail;
        }
        if (k.in_arena)
            d->alen = k.mark;
        skip_ws(d);
        if (eat(d, close))
            return c;
    } while (eat(d, ','));
    d->rc = GP__JSON_FALLBACK;
fail:
    json_decref(c);
    return NULL;
}

/* A value at d->p (whitespace already skipped). */
static json_t *parse_value(dec_t *d)
{
    if (d->p >= d->end)
        return stop(d, GP__JSON_FALLBACK);
    json_t *v;
    switch (*d->p) {
    case '"': {
        d->p++;
        str_t s;
        if (!scan_string(d, &s))
            return NULL;
        v = json_stringn_nocheck(s.s, s.n);
        if (s.in_arena)
            d->alen = s.mark;
        return v ? v : stop(d, GP__JSON_NOMEM);
    }
    case '{':
    case '[':
        if (d->depth >= GP__JSON_MAX_DEPTH)
            return stop(d, GP__JSON_FALLBACK);
        d->depth++;
        v = parse_container(d, *d->p++ == '{');
        d->depth--;
        return v;
    case 't':
        return word(d, "true", 4) ? json_true() : stop(d, GP__JSON_FALLBACK);
    case 'f':
        return word(d, "false", 5) ? json_false() : stop(d, GP__JSON_FALLBACK);
    case 'n':
        return word(d, "null", 4) ? json_null() : stop(d, GP__JSON_FALLBACK);
    default:
        if (*d->p == '-' || is_digit(*d->p))
            return parse_number(d);
        return stop(d, GP__JSON_FALLBACK);
    }
}

gp__json_rc_t gp__json_decode(const char *text, size_t len, json_t **out)
{
    *out = NULL;
    if (!text)
        return GP__JSON_FALLBACK;
    char abuf[256];
    dec_t d = {.p = (const unsigned char *)text, .end = (const unsigned char *)text + len,
               .rc = GP__JSON_FALLBACK, .arena = abuf, .acap = sizeof abuf};
    skip_ws(&d);
    json_t *v = parse_value(&d);
    if (v) {
        skip_ws(&d);
        if (d.p != d.end) { /* trailing bytes: an error, or one of jansson's leniencies */
            json_decref(v);
            v = NULL;
            d.rc = GP__JSON_FALLBACK;
        }
    }
    if (d.aheap)
        free(d.arena);
    if (!v)
        return d.rc == GP__JSON_OK ? GP__JSON_FALLBACK : d.rc;
    *out = v;
    return GP__JSON_OK;
}

gp__json_rc_t gp__json_load(const char *text, size_t len, json_t **out, json_error_t *err)
{
    gp__json_rc_t rc = gp__json_decode(text, len, out);
    if (rc != GP__JSON_FALLBACK)
        return rc;
    *out = json_loadb(text, len, FLAGS_LOAD, err);
    return *out ? GP__JSON_OK : GP__JSON_INVALID;
}
