/* fuzz_json.c — the fast JSON codec (src/json_codec.c) against jansson 2.14
 * on any bytes. The contract (json_codec.h): the fast paths either give
 * exactly what jansson gives or answer "fall back", and the wrappers fall
 * back to jansson themselves.
 *
 * Oracle, with J = json_loadb(input, JSON_DECODE_ANY | JSON_ALLOW_NUL):
 *  - gp__json_decode accepts only what jansson accepts, building an equal
 *    value that dumps to the same bytes (so the same key order, -0.0 kept);
 *  - it falls back on an input jansson accepts only for the documented
 *    reasons: nesting deeper than GP__JSON_MAX_DEPTH, a real written with
 *    64 characters or more, or jansson's one leniency met so far (it
 *    swallows a NUL byte right after a number or a word: "[1\0]" is [1],
 *    "null\0" is null); integers outside json_int_t and NUL in object keys
 *    are rejected by jansson too, and the locale here is "C";
 *  - gp__json_load accepts exactly when jansson does, with an equal value
 *    and, on rejection, jansson's own error text;
 *  - gp__json_encode of J, and of a string and an object key made of the raw
 *    input bytes (often invalid UTF-8), writes json_dumpb's bytes
 *    (JSON_COMPACT | JSON_ENCODE_ANY) exactly, after what the buffer held,
 *    or falls back leaving the buffer as it was — only for a string or key
 *    that is not valid UTF-8 or nesting deeper than GP__JSON_MAX_DEPTH;
 *    gp__json_dump / gp__json_dumps give jansson's bytes, or fail exactly
 *    when jansson does;
 *  - encode(decode(x)) decodes again (fast path and wrapper) to a value
 *    equal to decode(x). */
#include <locale.h>
#include <stdbool.h>

#include "fuzz_common.h"
#include "json_codec.h"

#define FLAGS_LOAD (JSON_DECODE_ANY | JSON_ALLOW_NUL)
#define FLAGS_DUMP (JSON_COMPACT | JSON_ENCODE_ANY)

static const uint8_t *cur_input;
static size_t cur_size;

__attribute__((noreturn, format(printf, 1, 2))) static void fail_input(const char *fmt, ...)
{
    fuzz_show("input", (const char *)cur_input, cur_size < 512 ? cur_size : 512);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fuzz_fail("%s", msg);
}

/* json_dumpb's bytes (malloc'd, *n = 0 when jansson cannot encode v). */
static char *jdump(const json_t *v, size_t *n)
{
    *n = json_dumpb(v, NULL, 0, FLAGS_DUMP);
    char *s = malloc(*n + 1);
    if (!s)
        abort();
    if (*n && json_dumpb(v, s, *n, FLAGS_DUMP) != *n)
        fail_input("json_dumpb gave two different lengths");
    return s;
}

static size_t value_depth(const json_t *v)
{
    size_t d = 0;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            size_t x = value_depth(json_array_get(v, i));
            d = x > d ? x : d;
        }
        return d + 1;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            size_t y = value_depth(x);
            d = y > d ? y : d;
        }
        return d + 1;
    }
    return 0;
}

static bool utf8_ok(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n); /* jansson's own check */
    json_decref(j);
    return j != NULL;
}

/* Whether a string or key anywhere in v is not valid UTF-8. */
static bool has_bad_utf8(const json_t *v)
{
    if (json_is_string(v))
        return !utf8_ok(json_string_value(v), json_string_length(v));
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (has_bad_utf8(json_array_get(v, i)))
                return true;
    } else if (json_is_object(v)) {
        for (void *it = json_object_iter((json_t *)v); it; it = json_object_iter_next((json_t *)v, it))
            if (!utf8_ok(json_object_iter_key(it), json_object_iter_key_len(it)) ||
                has_bad_utf8(json_object_iter_value(it)))
                return true;
    }
    return false;
}

/* The documented reasons for the fast decoder to leave an input jansson
 * accepts to jansson: container nesting deeper than GP__JSON_MAX_DEPTH, a
 * real of 64 characters or more. Scans the text itself. */
static bool fallback_documented(const uint8_t *s, size_t n)
{
    size_t depth = 0, maxdepth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '[' || c == '{') {
            if (++depth > maxdepth)
                maxdepth = depth;
        } else if (c == ']' || c == '}') {
            if (depth)
                depth--;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            bool real = false;
            while (j < n && (strchr("0123456789+-.eE", s[j]) && s[j]))
                real |= s[j] == '.' || s[j] == 'e' || s[j] == 'E', j++;
            if (real && j - i >= 64)
                return true;
            /* jansson 2.14 swallows one NUL byte right after a number or
             * a word ("[1\0]" is [1], "null\0" is null): its lexer's
             * unget of the byte that ends the token. */
            if (j < n && s[j] == 0)
                return true;
            i = j - 1;
        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
            size_t j = i;
            while (j < n && (s[j] | 0x20) >= 'a' && (s[j] | 0x20) <= 'z')
                j++;
            if (j < n && s[j] == 0)
                return true;
            i = j - 1;
        }
    }
    return maxdepth > GP__JSON_MAX_DEPTH;
}

/* The fast encoder and the wrappers on v, against json_dumpb. */
static void check_encode(const json_t *v, size_t initial)
{
    size_t wn;
    char *want = jdump(v, &wn);
    char stackbuf[512];
    gp__jbuf_t b;
    initial = initial < sizeof stackbuf ? initial : sizeof stackbuf;
    gp__jbuf_init(&b, initial ? stackbuf : NULL, initial);
    size_t pre = 0;
    if (initial >= 3) {
        memcpy(stackbuf, "pre", 3);
        b.len = pre = 3;
    }
    gp__json_rc_t rc = gp__json_encode(v, &b);
    if (rc == GP__JSON_OK) {
        if (!wn)
            fail_input("the fast encoder encoded a value jansson cannot");
        if (b.len - pre != wn || memcmp(b.data + pre, want, wn) != 0) {
            fuzz_show("fast", b.data + pre, b.len - pre);
            fuzz_show("jansson", want, wn);
            fail_input("the fast encoding differs from json_dumpb");
        }
        if (pre && memcmp(b.data, "pre", 3) != 0)
            fail_input("the fast encoder overwrote what the buffer held");
    } else if (rc == GP__JSON_FALLBACK) {
        if (b.len != pre)
            fail_input("the fast encoder fell back without restoring the buffer's length");
        /* Documented: invalid UTF-8 (jansson decides) and deep nesting.
         * (jansson 2.14 "encodes" an object whose key is not UTF-8 as a
         * truncated key, e.g. {":3}: that is its answer to give.) */
        if (wn && value_depth(v) <= GP__JSON_MAX_DEPTH && !has_bad_utf8(v))
            fail_input("the fast encoder fell back on a value jansson encodes (depth %zu)", value_depth(v));
    } else if (rc != GP__JSON_NOMEM) {
        fail_input("gp__json_encode returned %d", (int)rc);
    }

    b.len = pre;
    gp__json_rc_t drc = gp__json_dump(v, &b);
    if (drc == GP__JSON_OK) {
        if (!wn || b.len - pre != wn || memcmp(b.data + pre, want, wn) != 0)
            fail_input("gp__json_dump is not json_dumpb's bytes");
    } else if (drc == GP__JSON_INVALID) {
        if (wn)
            fail_input("gp__json_dump failed on a value jansson encodes");
    } else if (drc != GP__JSON_NOMEM) {
        fail_input("gp__json_dump returned %d", (int)drc);
    }
    gp__jbuf_free(&b);

    size_t sn = 12345;
    char *s = gp__json_dumps(v, &sn);
    if (wn && s && (sn != wn || memcmp(s, want, wn) != 0 || s[wn] != 0))
        fail_input("gp__json_dumps is not json_dumpb's bytes, NUL-terminated");
    if (!wn && s)
        fail_input("gp__json_dumps encoded a value jansson cannot");
    free(s);
    free(want);
}

/* decode(encode(v)) == v, through the fast path and the wrapper. */
static void check_roundtrip(const json_t *v)
{
    size_t n;
    char *text = jdump(v, &n);
    if (!n) {
        free(text);
        return;
    }
    json_t *w = NULL;
    json_error_t e;
    if (gp__json_load(text, n, &w, &e) != GP__JSON_OK || !json_equal(v, w)) {
        fuzz_show("encoding", text, n);
        fail_input("the encoding of a decoded value does not decode to an equal value");
    }
    json_decref(w);
    w = NULL;
    gp__json_rc_t rc = gp__json_decode(text, n, &w);
    if (rc == GP__JSON_OK && !json_equal(v, w)) {
        fuzz_show("encoding", text, n);
        fail_input("the fast decoder reads the encoding back as another value");
    }
    json_decref(w);
    free(text);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setlocale(LC_ALL, "C");
    fuzz_guard_stdout();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cur_input = data;
    cur_size = size;
    const char *text = (const char *)data;
    json_error_t je;
    json_t *j = json_loadb(text, size, FLAGS_LOAD, &je);

    /* The fast decoder. */
    json_t *v = NULL;
    gp__json_rc_t rc = gp__json_decode(text, size, &v);
    if (rc == GP__JSON_OK) {
        if (!v)
            fail_input("gp__json_decode: OK without a value");
        if (!j)
            fail_input("the fast decoder accepts what jansson rejects (jansson: %s)", je.text);
        size_t an, bn;
        char *a = jdump(v, &an), *b = jdump(j, &bn);
        if (!json_equal(v, j) || an != bn || memcmp(a, b, an) != 0) {
            fuzz_show("fast", a, an);
            fuzz_show("jansson", b, bn);
            fail_input("the fast decoder builds another value than jansson");
        }
        free(a);
        free(b);
    } else if (rc == GP__JSON_FALLBACK) {
        if (v)
            fail_input("gp__json_decode fell back but set *out");
        if (j && !fallback_documented(data, size))
            fail_input("the fast decoder fell back on an input jansson accepts, for no documented reason");
    } else if (rc != GP__JSON_NOMEM) {
        fail_input("gp__json_decode returned %d", (int)rc);
    }

    /* The wrapper. */
    json_t *w = NULL;
    json_error_t we;
    memset(&we, 0, sizeof we);
    gp__json_rc_t wrc = gp__json_load(text, size, &w, &we);
    if (wrc == GP__JSON_OK) {
        if (!j || !w || !json_equal(w, j))
            fail_input("gp__json_load accepts%s", j ? " with another value" : " what jansson rejects");
    } else if (wrc == GP__JSON_INVALID) {
        if (j)
            fail_input("gp__json_load rejects what jansson accepts");
        if (strcmp(we.text, je.text) != 0)
            fail_input("gp__json_load's error \"%s\" is not jansson's \"%s\"", we.text, je.text);
    } else if (wrc != GP__JSON_NOMEM) {
        fail_input("gp__json_load returned %d", (int)wrc);
    }
    json_decref(w);

    /* The encoder, on what was decoded, then round trips. */
    size_t initial = size % 97;
    if (j) {
        check_encode(j, initial);
        check_roundtrip(j);
    }
    if (v)
        check_roundtrip(v);

    /* The encoder on raw bytes: a string, and an object key. */
    json_t *s = json_stringn_nocheck(text, size);
    json_t *o = json_object();
    if (s)
        check_encode(s, initial);
    if (o && json_object_setn_new_nocheck(o, text, size, json_integer((json_int_t)size)) == 0)
        check_encode(o, size % 13);
    json_decref(s);
    json_decref(o);

    json_decref(v);
    json_decref(j);
    fuzz_check_stdout();
    return 0;
}
