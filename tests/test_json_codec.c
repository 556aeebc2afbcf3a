/* test_json_codec.c — the fast JSON codec (src/json_codec.c) against jansson
 * itself: for every document, the fast decoder either builds the value
 * json_loadb builds (equal, and dumping to the same bytes, so the same key
 * order) or leaves it to jansson, and never accepts what jansson rejects;
 * for every value, the fast encoder writes json_dumpb's bytes or leaves it
 * to jansson. A table of edge cases, seeded random trees and mutated texts,
 * and allocation failures injected into jansson. Pure unit test: no
 * servers. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_test.h"
#include "json_codec.h"

#define FLAGS_LOAD (JSON_DECODE_ANY | JSON_ALLOW_NUL)
#define FLAGS_DUMP (JSON_COMPACT | JSON_ENCODE_ANY)

/* ---- helpers ------------------------------------------------------------------------ */

static void show(const char *what, const char *text, size_t len)
{
    char hex[3 * 96 + 8] = "";
    size_t n = len < 96 ? len : 96, o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(hex + o, sizeof hex - o, "%02x ", (unsigned char)text[i]);
    print_error("%s: %zu bytes: %s%s\n", what, len, hex, len > n ? "..." : "");
}

#define CHECK(cond, what, text, len)                                                                               \
    do {                                                                                                           \
        if (!(cond)) {                                                                                             \
            show(what, text, len);                                                                                 \
            fail_msg("%s", #cond);                                                                                 \
        }                                                                                                          \
    } while (0)

/* json_dumpb's bytes for v (malloc'd; *n = 0 when jansson cannot encode). */
static char *jansson_dump(const json_t *v, size_t *n)
{
    *n = json_dumpb(v, NULL, 0, FLAGS_DUMP);
    char *s = malloc(*n + 1);
    assert_non_null(s);
    if (*n)
        assert_int_equal(json_dumpb(v, s, *n, FLAGS_DUMP), *n);
    return s;
}

static int n_encode_fast, n_encode_fallback;

/* The encoder against json_dumpb, from an initial buffer of `initial` bytes
 * (small sizes exercise the growth paths). Returns the fast path's answer. */
static gp__json_rc_t check_encode(const json_t *v, size_t initial)
{
    size_t want_n;
    char *want = jansson_dump(v, &want_n);
    char stackbuf[4096];
    gp__jbuf_t b;
    gp__jbuf_init(&b, initial ? stackbuf : NULL, initial < sizeof stackbuf ? initial : sizeof stackbuf);
    memcpy(stackbuf, "pre", 3);
    b.len = initial >= 3 ? 3 : 0; /* appends after what is there */
    size_t pre = b.len;
    gp__json_rc_t rc = gp__json_encode(v, &b);
    assert_true(rc == GP__JSON_OK || rc == GP__JSON_FALLBACK);
    if (rc == GP__JSON_OK) {
        n_encode_fast++;
        CHECK(want_n > 0, "fast encoder encoded what jansson cannot", b.data + pre, b.len - pre);
        CHECK(b.len - pre == want_n && memcmp(b.data + pre, want, want_n) == 0, "fast encoding differs",
              b.data + pre, b.len - pre);
        if (pre)
            assert_memory_equal(b.data, "pre", 3);
    } else {
        n_encode_fallback++;
        assert_int_equal(b.len, pre);
    }
    /* The wrapper: jansson's bytes, or INVALID exactly when jansson fails. */
    b.len = pre;
    gp__json_rc_t wrc = gp__json_dump(v, &b);
    if (want_n) {
        assert_int_equal(wrc, GP__JSON_OK);
        CHECK(b.len - pre == want_n && memcmp(b.data + pre, want, want_n) == 0, "gp__json_dump differs",
              b.data + pre, b.len - pre);
        size_t sl = 0;
        char *s = gp__json_dumps(v, &sl);
        assert_non_null(s);
        assert_int_equal(sl, want_n);
        assert_memory_equal(s, want, want_n);
        assert_int_equal(s[sl], '\0');
        free(s);
    } else {
        assert_int_equal(wrc, GP__JSON_INVALID);
        assert_null(gp__json_dumps(v, NULL));
    }
    gp__jbuf_free(&b);
    gp__jbuf_free(&b); /* twice is fine */
    free(want);
    return rc;
}

static int n_decode_fast, n_decode_fallback, n_accepted;

/* The decoder against json_loadb on text[0..len). Returns the fast path's
 * answer; *jansson_ok tells whether jansson accepts it. Every value that
 * decodes is also run through the encoder. */
static gp__json_rc_t differential(const char *text, size_t len, bool *jansson_ok)
{
    /* A private copy, exactly len bytes: ASan catches any read past len. */
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    json_error_t je;
    json_t *ref = json_loadb(copy, len, FLAGS_LOAD, &je);
    json_t *got = (json_t *)1;
    gp__json_rc_t rc = gp__json_decode(copy, len, &got);
    CHECK(rc == GP__JSON_OK || rc == GP__JSON_FALLBACK, "unexpected decoder answer", text, len);
    if (rc == GP__JSON_OK) {
        n_decode_fast++;
        CHECK(ref != NULL, "fast decoder accepts what jansson rejects", text, len);
        CHECK(json_equal(ref, got), "fast decoder built a different value", text, len);
        size_t a, b;
        char *da = jansson_dump(ref, &a), *db = jansson_dump(got, &b);
        CHECK(a == b && memcmp(da, db, a) == 0, "fast decoder built a value that dumps differently", text, len);
        free(da);
        free(db);
    } else {
        n_decode_fallback++;
        CHECK(got == NULL, "*out not NULL after a fallback", text, len);
    }
    /* The wrapper: jansson's verdict, and jansson's error when it rejects. */
    json_t *w = NULL;
    json_error_t we;
    gp__json_rc_t wrc = gp__json_load(copy, len, &w, &we);
    if (ref) {
        n_accepted++;
        CHECK(wrc == GP__JSON_OK && json_equal(ref, w), "gp__json_load differs from json_loadb", text, len);
        check_encode(ref, len % 3 == 0 ? 0 : len % 3 == 1 ? 8 : 4096);
    } else {
        CHECK(wrc == GP__JSON_INVALID && w == NULL, "gp__json_load accepts what jansson rejects", text, len);
        assert_string_equal(we.text, je.text);
        assert_int_equal(we.position, je.position);
    }
    json_decref(w);
    json_decref(got);
    json_decref(ref);
    free(copy);
    *jansson_ok = ref != NULL;
    return rc;
}

/* ---- the table ---------------------------------------------------------------------- */

/* jansson: accepted by json_loadb; fast: handled by the fast decoder. */
typedef struct doc {
    const char *text;
    size_t len;
    bool jansson, fast;
} doc_t;

#define OK(s) {s, sizeof(s) - 1, true, true}         /* both accept */
#define JANSSON(s) {s, sizeof(s) - 1, true, false}   /* jansson accepts, fast path leaves it */
#define BAD(s) {s, sizeof(s) - 1, false, false}      /* jansson rejects */

static const doc_t docs[] = {
    /* scalars and whitespace */
    OK("0"), OK("-0"), OK("1"), OK("-1"), OK("42"), OK("123456789012"), OK("9223372036854775807"),
    OK("-9223372036854775808"), OK("-9223372036854775807"), OK("1000000000000000000"), OK("true"), OK("false"),
    OK("null"), OK("\"\""), OK("\"abc\""), OK(" 1 "), OK("\t\r\n 1\t\r\n "), OK(" \t\r\n\"x\"\r\n"), OK("[]"),
    OK("{}"), OK(" [ ] "), OK(" { } "), OK("[\n]"), OK("{\r\n}"),
    BAD(""), BAD(" "), BAD("\t\r\n"), BAD("\v1"), BAD("\f[]"), BAD("1\v"), BAD("\xC2\xA0[]"),
    BAD("\xEF\xBB\xBF{}"), BAD("\0"), BAD("[1]\0\0"), BAD("{}\0"), BAD("[]\0"), BAD("\"a\"\0"),
    /* jansson skips one NUL byte straight after a number or word (it reads
     * it, ungets it, and its stream drops it): accepted, left to jansson */
    JANSSON("1\0"), JANSSON("true\0"), JANSSON("null\0 "), JANSSON("[1\0]"), JANSSON("{\"a\":false\0}"),
    /* numbers */
    OK("1.5"), OK("-1.5"), OK("0.0"), OK("-0.0"), OK("1e5"), OK("1E5"), OK("1e+5"), OK("1e-5"), OK("1E-05"),
    OK("0e0"), OK("-0e-0"), OK("123.456e-7"), OK("0.1"), OK("3.0"), OK("1.7976931348623157e308"),
    OK("-1.7976931348623157e308"), OK("4.9e-324"), OK("2.2250738585072014e-308"), OK("1e-400"), OK("-1e-400"),
    OK("12345678901234567890.5"), OK("1e308"), OK("9223372036854775808.0"), OK("[1.5,-2e3,0.25]"),
    JANSSON("1.0000000000000000000000000000000000000000000000000000000000000001"),
    JANSSON("0.000000000000000000000000000000000000000000000000000000000000000000000001"),
    BAD("9223372036854775808"), BAD("-9223372036854775809"), BAD("99999999999999999999"),
    BAD("18446744073709551616"), BAD("-18446744073709551616"), BAD("[9223372036854775808]"), BAD("1e400"),
    BAD("-1e400"), BAD("1e309"), BAD("01"), BAD("-01"), BAD("00"), BAD("-00"), BAD("0123"), BAD("1."), BAD("-1."),
    BAD(".5"), BAD("-.5"), BAD("-"), BAD("+1"), BAD("--1"), BAD("1e"), BAD("1e+"), BAD("1e-"), BAD("1.e5"),
    BAD("1.5e"), BAD("0x10"), BAD("1_000"), BAD("Infinity"), BAD("-Infinity"), BAD("NaN"), BAD("1 2"),
    BAD("1-2"), BAD("[1-2]"), BAD("1.5.5"), BAD("1e5e5"), BAD("12a"), BAD("-a"), BAD("1,"),
    /* words */
    BAD("tru"), BAD("truex"), BAD("true1"), BAD("True"), BAD("TRUE"), BAD("nul"), BAD("nulll"), BAD("fals"),
    BAD("falsey"), BAD("t"), BAD("[true false]"), BAD("[truefalse]"), BAD("undefined"), BAD("[nullx]"),
    OK("[true,false,null]"), OK("[true ,false, null ]"),
    /* structure */
    OK("[1,2,3]"), OK("[ 1 , 2 , 3 ]"), OK("[[[]]]"), OK("[{},[],{\"a\":[]}]"), OK("{\"a\":1}"),
    OK("{ \"a\" : 1 , \"b\" : [ true , { } ] }"), OK("{\"\":0}"), OK("{\"a\":{\"a\":{\"a\":null}}}"),
    OK("{\"a\":1,\"a\":2}"), OK("{\"a\":1,\"b\":2,\"a\":3}"), OK("{\"b\":1,\"a\":2,\"c\":3,\"a\":{},\"b\":[]}"),
    BAD("{"), BAD("}"), BAD("["), BAD("]"), BAD("[1,]"), BAD("[,1]"), BAD("[,]"), BAD("{,}"),
    BAD("{\"a\":1,}"), BAD("{\"a\"}"), BAD("{\"a\" 1}"), BAD("{\"a\":}"), BAD("{:1}"), BAD("{1:2}"),
    BAD("{null:2}"), BAD("{'a':1}"), BAD("'a'"), BAD("[1 2]"), BAD("{\"a\":1 \"b\":2}"), BAD("{} {}"),
    BAD("[]]"), BAD("[]}"), BAD("{\"a\":1}}"), BAD("[1]x"), BAD("/* */{}"), BAD("{}//"), BAD("[1,2"),
    BAD("{\"a\":1"), BAD("{\"a\""), BAD("{\"a\":"), BAD("[\"a\",]"), BAD("[\x0B]"), BAD("{\"a\":1;\"b\":2}"),
    BAD("[1]]"), BAD("{\"a\":[}"), BAD("{\"a\"::1}"),
    /* escapes */
    OK("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), OK("\"a\\/b\""), OK("\"\\u0041\\u00e9\\u20AC\\u20ac\""),
    OK("\"\\uD834\\uDD1E\""), OK("\"\\ud834\\udd1e\""), OK("\"x\\uDBFF\\uDFFFy\""), OK("\"\\uD800\\uDC00\""),
    OK("\"\\u0000\""), OK("\"a\\u0000b\""), OK("[\"\\u0000\",\"\\u0000\\u0000\"]"), OK("\"\\uFFFF\""),
    OK("\"\\uE000\""), OK("\"\\u007F\\u0080\\u07FF\\u0800\""), OK("\"\\u001f\\u0001\""),
    OK("{\"k\\n\":{\"k\\t\":\"v\\\"\",\"\\u00e9\":\"\\u00e9\"}}"), OK("{\"a\\u0062\":1,\"ab\":2}"),
    OK("{\"\\u20ac\":{\"\\n\":{\"\\t\":[\"\\\\\"]}},\"x\\/\":\"\\/\"}"),
    BAD("\"\\\""), BAD("\"\\"), BAD("\"\\x\""), BAD("\"\\a\""), BAD("\"\\U0041\""), BAD("\"\\u\""),
    BAD("\"\\u12\""), BAD("\"\\u123\""), BAD("\"\\u12G4\""), BAD("\"\\u 123\""), BAD("\"\\uD834\""),
    BAD("\"\\uD834x\""), BAD("\"\\uD834\\u0041\""), BAD("\"\\uD834\\uD834\""), BAD("\"\\uD834\\uDD1\""),
    BAD("\"\\uD834\\\""), BAD("\"\\uD834\\n\""), BAD("\"\\uDD1E\""), BAD("\"\\uDFFF\\uD800\""),
    BAD("\"\\uDC00\""), BAD("\"\\'\""), BAD("\"\\0\""),
    /* NUL in keys: jansson rejects them */
    BAD("{\"a\\u0000b\":1}"), BAD("{\"\\u0000\":1}"), BAD("{\"a\":{\"\\u0000\":1}}"),
    /* control characters and raw NUL inside strings */
    BAD("\"\t\""), BAD("\"\n\""), BAD("\"\r\""), BAD("\"\x01\""), BAD("\"\x1F\""), BAD("\"a\0b\""),
    BAD("\"\0\""), BAD("{\"a\0\":1}"), OK("\"\x7F\""), OK("\" ~\""),
    /* UTF-8 */
    OK("\"\xC3\xA9\""), OK("\"\xE2\x82\xAC\""), OK("\"\xF0\x9D\x84\x9E\""), OK("\"\xF4\x8F\xBF\xBF\""),
    OK("\"\xEF\xBF\xBF\""), OK("\"\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xF0\x90\x80\x80\""),
    OK("{\"\xC3\xA9t\xC3\xA9\":\"\xE6\x97\xA5\xE6\x9C\xAC\"}"), OK("\"\xC3\xA9\\n\xC3\xA9\""),
    BAD("\"\x80\""), BAD("\"\xBF\""), BAD("\"\xC0\x80\""), BAD("\"\xC1\xBF\""), BAD("\"\xE0\x80\x80\""),
    BAD("\"\xE0\x9F\xBF\""), BAD("\"\xED\xA0\x80\""), BAD("\"\xED\xBF\xBF\""), BAD("\"\xED\xA0\x80\xED\xB0\x80\""),
    BAD("\"\xF0\x80\x80\x80\""), BAD("\"\xF0\x8F\xBF\xBF\""), BAD("\"\xF4\x90\x80\x80\""), BAD("\"\xF5\x80\x80\x80\""),
    BAD("\"\xF8\x88\x80\x80\x80\""), BAD("\"\xFC\x84\x80\x80\x80\x80\""), BAD("\"\xFE\""), BAD("\"\xFF\""),
    BAD("\"\xC3\""), BAD("\"\xE2\x82\""), BAD("\"\xF0\x9D\x84\""), BAD("\"\xC3\x28\""), BAD("\"\xE2\x28\xA1\""),
    BAD("\"\xC3\xA9\\n\xC3\""), BAD("\"\\n\x80\""), BAD("[\"\xC3\xA9\",\xC3\xA9]"), BAD("\xC3\xA9"),
    BAD("\"\xC3"), BAD("\"\xF0\x9D\x84"), BAD("{\"\xC3\x28\":1}"),
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        const doc_t *d = &docs[i];
        bool jok;
        gp__json_rc_t rc = differential(d->text, d->len, &jok);
        CHECK(jok == d->jansson, d->jansson ? "jansson was expected to accept" : "jansson was expected to reject",
              d->text, d->len);
        CHECK((rc == GP__JSON_OK) == d->fast,
              d->fast ? "the fast decoder was expected to handle" : "the fast decoder was expected to leave",
              d->text, d->len);
    }
}

/* Nesting at and beyond both limits: the fast path handles up to
 * GP__JSON_MAX_DEPTH containers, jansson the rest (up to 2048 values deep,
 * scalars counted). */
static void test_depth(void **state)
{
    (void)state;
    static const struct {
        int n;
        bool scalar, jansson, fast;
    } cases[] = {
        {1, false, true, true},     {GP__JSON_MAX_DEPTH - 1, true, true, true},
        {GP__JSON_MAX_DEPTH, false, true, true},  {GP__JSON_MAX_DEPTH, true, true, true},
        {GP__JSON_MAX_DEPTH + 1, false, true, false}, {2047, true, true, false},
        {2048, false, true, false}, {2048, true, false, false},
        {2049, false, false, false}, {100000, false, false, false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int obj = 0; obj < 2; obj++) {
            int n = cases[c].n;
            size_t cap = (size_t)n * 6 + 8, len = 0;
            char *t = malloc(cap);
            assert_non_null(t);
            /* levels alternate [ and {"k": when obj; the innermost holds
             * the scalar or is empty */
            for (int i = 0; i < n; i++) {
                if (obj && i % 2)
                    len += (size_t)sprintf(t + len, i < n - 1 || cases[c].scalar ? "{\"k\":" : "{");
                else
                    t[len++] = '[';
            }
            if (cases[c].scalar)
                t[len++] = '7';
            for (int i = n - 1; i >= 0; i--)
                t[len++] = obj && i % 2 ? '}' : ']';
            bool jok;
            gp__json_rc_t rc = differential(t, len, &jok);
            assert_int_equal(jok, cases[c].jansson);
            assert_int_equal(rc == GP__JSON_OK, cases[c].fast);
            /* Unclosed: rejected by both, no matter how deep. */
            rc = differential(t, len - 1, &jok);
            assert_false(jok);
            assert_int_equal(rc, GP__JSON_FALLBACK);
            free(t);
        }
    }
}

/* One special byte (or character) at every offset of plain strings of every
 * length up to 40: the word-at-a-time scans in both directions, at and
 * around their 8-byte boundaries. */
static void test_word_boundaries(void **state)
{
    (void)state;
    static const char *const specials[] = {"\"", "\\", "\x01", "\x1F", "\x7F", " ", "~", "\xC3\xA9",
                                           "\xE2\x82\xAC", "\xF0\x9D\x84\x9E", "\xFF", "\xC3", "\xED\xA0\x80",
                                           "\\n", "\\u00e9", "\\uD834\\uDD1E", "\\u0000", "\\x", "\x80\x80"};
    char text[64], raw[64];
    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
        size_t sl = strlen(specials[k]);
        for (size_t len = 0; len <= 40; len++) {
            for (size_t at = 0; at <= len; at++) {
                /* as a JSON document: "aaa<special>aaa" */
                size_t n = 0;
                text[n++] = '"';
                for (size_t i = 0; i < len; i++) {
                    if (i == at) {
                        memcpy(text + n, specials[k], sl);
                        n += sl;
                    }
                    text[n++] = (char)('a' + i % 26);
                }
                if (at == len) {
                    memcpy(text + n, specials[k], sl);
                    n += sl;
                }
                text[n++] = '"';
                bool jok;
                differential(text, n, &jok);
                /* as raw string content, to the encoder */
                memcpy(raw, text + 1, n - 2);
                json_t *v = json_stringn_nocheck(raw, n - 2);
                assert_non_null(v);
                check_encode(v, at % 2 ? 4096 : 4);
                json_decref(v);
            }
        }
    }
}

/* ---- the encoder on values no text decodes to ------------------------------------- */

static void test_encode_values(void **state)
{
    (void)state;
    json_t *v;
    /* integers at the edges */
    const json_int_t ints[] = {0, 1, -1, 9, 10, -10, 99, 100, LLONG_MAX, LLONG_MIN, LLONG_MIN + 1, 1234567890123};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        v = json_integer(ints[i]);
        assert_int_equal(check_encode(v, 4096), GP__JSON_OK);
        assert_int_equal(check_encode(v, 2), GP__JSON_OK);
        json_decref(v);
    }
    /* reals: jansson's own formatting */
    const double reals[] = {0.0, -0.0, 1.0, -1.5, 0.1, 1e300, -1e-300, 4.9e-324, 1.7976931348623157e308,
                            123456789012345678.0, 3.14159265358979, 1e21, 1e-7, 100.0};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        v = json_real(reals[i]);
        assert_int_equal(check_encode(v, 4096), GP__JSON_OK);
        assert_int_equal(check_encode(v, 0), GP__JSON_OK);
        json_decref(v);
    }
    /* every byte value 0x00..0x7f in a string, and in a key */
    char all[128];
    for (int i = 0; i < 128; i++)
        all[i] = (char)i;
    v = json_object();
    json_object_setn_new_nocheck(v, all, sizeof all, json_stringn(all, sizeof all));
    json_object_setn_new_nocheck(v, "\0", 1, json_stringn("\0", 1)); /* NUL key: encodable */
    json_object_setn_new_nocheck(v, "", 0, json_stringn("", 0));
    assert_int_equal(check_encode(v, 4096), GP__JSON_OK);
    assert_int_equal(check_encode(v, 8), GP__JSON_OK);
    json_decref(v);
    /* long strings full of escapes: growth in the middle of a string */
    char *big = malloc(100000);
    assert_non_null(big);
    for (int i = 0; i < 100000; i++)
        big[i] = "a\"\\\x01\n\xC3\xA9/"[i % 8];
    v = json_stringn(big, 99999); /* ends on a whole character */
    assert_non_null(v);
    assert_int_equal(check_encode(v, 16), GP__JSON_OK);
    assert_int_equal(check_encode(v, 0), GP__JSON_OK);
    json_decref(v);
    free(big);
    /* invalid UTF-8 (json_stringn_nocheck) in a value and in a key: left to
     * jansson, which fails on the value and writes a broken key */
    v = json_pack("[s,o]", "ok", json_stringn_nocheck("a\xC0\x80", 3));
    assert_int_equal(check_encode(v, 4096), GP__JSON_FALLBACK);
    json_decref(v);
    v = json_object();
    json_object_setn_new_nocheck(v, "k\xFF", 2, json_true());
    json_object_set_new(v, "b", json_integer(1));
    assert_int_equal(check_encode(v, 4096), GP__JSON_FALLBACK);
    json_decref(v);
    const char *badutf[] = {"\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82", "\xC3", "\xF5\x80\x80\x80"};
    for (size_t i = 0; i < sizeof badutf / sizeof badutf[0]; i++) {
        v = json_stringn_nocheck(badutf[i], strlen(badutf[i]));
        assert_int_equal(check_encode(v, 4096), GP__JSON_FALLBACK);
        json_decref(v);
    }
    /* deep values: beyond GP__JSON_MAX_DEPTH jansson writes them */
    for (int n = GP__JSON_MAX_DEPTH - 1; n <= GP__JSON_MAX_DEPTH + 1; n++) {
        v = json_array();
        for (int i = 1; i < n; i++)
            v = i % 2 ? json_pack("[o]", v) : json_pack("{s:o}", "k", v);
        assert_int_equal(check_encode(v, 64), n <= GP__JSON_MAX_DEPTH ? GP__JSON_OK : GP__JSON_FALLBACK);
        json_decref(v);
    }
    /* cycles: the fast path gives up at its depth limit, jansson reports the
     * cycle */
    json_t *a = json_array(), *o = json_object();
    json_array_append(a, o);
    json_object_set(o, "a", a);
    assert_int_equal(check_encode(a, 4096), GP__JSON_FALLBACK);
    json_object_del(o, "a"); /* break the cycle to free them */
    json_decref(o);
    json_decref(a);
    /* the same child twice (not a cycle) */
    json_t *child = json_pack("{s:[i,s]}", "x", 1, "y");
    v = json_pack("[O,O,{s:O}]", child, child, "c", child);
    assert_int_equal(check_encode(v, 4096), GP__JSON_OK);
    json_decref(v);
    json_decref(child);
    /* key order after replacing values and deleting keys */
    v = json_pack("{s:i,s:i,s:i}", "z", 1, "a", 2, "m", 3);
    json_object_set_new(v, "a", json_string("again"));
    json_object_del(v, "z");
    json_object_set_new(v, "z", json_null());
    assert_int_equal(check_encode(v, 4096), GP__JSON_OK);
    json_decref(v);
    /* the bench's value */
    v = json_pack("{s:i, s:s, s:s, s:i, s:b, s:[s,s]}", "id", 3, "name", "Margherita pizza", "category", "mains",
                  "price_cents", 1150, "available", 1, "tags", "vegetarian", "classic");
    assert_int_equal(check_encode(v, 1024), GP__JSON_OK);
    json_decref(v);
    assert_int_equal(gp__json_encode(NULL, &(gp__jbuf_t){0}), GP__JSON_FALLBACK);
}

/* ---- seeded random documents -------------------------------------------------------- */

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static unsigned below(unsigned n)
{
    return (unsigned)(rnd() % n);
}

/* Random string bytes: ASCII, escapes, NUL, valid multi-byte characters,
 * and (when `junk`) now and then an arbitrary byte. */
static size_t rand_bytes(char *out, size_t max, bool junk)
{
    static const char *const pieces[] = {"a", "Z", " ", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x01",
                                         "\x1F", "\x7F", "\0", "\xC3\xA9", "\xDF\xBF", "\xE2\x82\xAC",
                                         "\xEF\xBF\xBF", "\xED\x9F\xBF", "\xF0\x9D\x84\x9E", "\xF4\x8F\xBF\xBF", "u",
                                         "0", "{", "]"};
    static const size_t plen[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4, 1, 1, 1, 1};
    size_t n = 0, want = below(4) == 0 ? below((unsigned)max) : below(12);
    bool plainish = below(3) == 0; /* long plain runs, a special byte now and then */
    while (n < want) {
        if (plainish && below(12)) {
            out[n++] = (char)(0x20 + below(0x60));
            continue;
        }
        if (junk && below(16) == 0) {
            out[n++] = (char)below(256);
            continue;
        }
        unsigned k = below(sizeof plen / sizeof plen[0]);
        if (n + plen[k] > max)
            break;
        memcpy(out + n, pieces[k], plen[k]);
        n += plen[k];
    }
    return n;
}

static json_t *rand_value(int depth)
{
    char buf[300];
    unsigned kind = below(depth > 5 ? 7 : 10);
    switch (kind) {
    case 0: return json_null();
    case 1: return json_true();
    case 2: return json_false();
    case 3: {
        static const json_int_t edge[] = {0, -1, 1, LLONG_MAX, LLONG_MIN, 1000000007, -999999999999};
        return json_integer(below(3) ? (json_int_t)(rnd() >> (1 + below(63))) * (below(2) ? 1 : -1) : edge[below(7)]);
    }
    case 4: {
        uint64_t bits = rnd();
        double x;
        memcpy(&x, &bits, sizeof x);
        if (below(2))
            x = (double)(int64_t)(rnd() % 2000000) / 100.0;
        json_t *r = json_real(x);
        return r ? r : json_real(0.5); /* NaN and infinities are not reals in jansson */
    }
    case 5:
    case 6: {
        size_t n = rand_bytes(buf, sizeof buf, below(20) == 0);
        return json_stringn_nocheck(buf, n);
    }
    case 7:
    case 8: {
        json_t *a = json_array();
        for (unsigned i = below(6); i > 0; i--)
            json_array_append_new(a, rand_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (unsigned i = below(6); i > 0; i--) {
            size_t n = below(4) ? rand_bytes(buf, 16, below(40) == 0) : (size_t)snprintf(buf, sizeof buf, "k%u", below(4));
            json_object_setn_new_nocheck(o, buf, n, rand_value(depth + 1));
        }
        return o;
    }
    }
}

/* 1 to 3 random edits: replace, insert or delete a byte; bytes from the
 * JSON alphabet, high bytes, or anything. */
static size_t mutate(char *t, size_t len, size_t cap)
{
    static const char alpha[] = "{}[]:,\"\\/ \t\n0123456789-+.eEtrufalsn\x80\xBF\xC3\xE2\xED\xF0\xF4\xFF";
    for (unsigned e = 1 + below(3); e > 0; e--) {
        char c = below(3) ? alpha[below(sizeof alpha - 1)] : (char)below(256);
        size_t at = len ? below((unsigned)len + 1) : 0;
        switch (below(3)) {
        case 0:
            if (at < len)
                t[at] = c;
            break;
        case 1:
            if (len < cap) {
                memmove(t + at + 1, t + at, len - at);
                t[at] = c;
                len++;
            }
            break;
        default:
            if (at < len) {
                memmove(t + at, t + at + 1, len - at - 1);
                len--;
            }
        }
    }
    return len;
}

static void test_random(void **state)
{
    (void)state;
    n_decode_fast = n_decode_fallback = n_accepted = n_encode_fast = n_encode_fallback = 0;
    enum { ROUNDS = 3000, CAP = 1 << 16 };
    char *t = malloc(CAP);
    assert_non_null(t);
    for (int round = 0; round < ROUNDS; round++) {
        json_t *v = rand_value(0);
        assert_non_null(v);
        check_encode(v, round % 2 ? 4096 : 1);
        /* Its text, compact or indented (whitespace variants), when jansson
         * can write it (not with invalid UTF-8). */
        size_t flags = below(3) == 0 ? JSON_INDENT(below(4)) | JSON_ENCODE_ANY : FLAGS_DUMP;
        size_t len = json_dumpb(v, t, CAP, flags);
        if (len > 0 && len <= CAP) {
            bool jok;
            differential(t, len, &jok);
            for (int m = 0; m < 4; m++) {
                size_t ml = mutate(t, len, CAP);
                differential(t, ml, &jok);
                json_dumpb(v, t, CAP, flags); /* restore */
            }
        }
        json_decref(v);
        /* A string literal of random bytes: every UTF-8 class. */
        size_t n = 0;
        t[n++] = '"';
        for (unsigned i = below(24); i > 0; i--)
            t[n++] = below(3) ? (char)(0x80 + below(128)) : (char)below(128);
        t[n++] = '"';
        bool jok;
        differential(t, n, &jok);
    }
    free(t);
    /* The generators reach both answers on both sides (so a fast path that
     * always fell back, or a generator that only made errors, would fail). */
    print_message("decode: %d fast, %d fallback, %d accepted by jansson; encode: %d fast, %d fallback\n",
                  n_decode_fast, n_decode_fallback, n_accepted, n_encode_fast, n_encode_fallback);
    assert_true(n_decode_fast > ROUNDS);
    assert_true(n_decode_fallback > ROUNDS);
    assert_true(n_accepted > ROUNDS);
    assert_true(n_encode_fast > ROUNDS);
    assert_true(n_encode_fallback > 10);
}

/* ---- allocation failures ------------------------------------------------------------ */

static long alloc_budget = -1, alloc_live;

static void *counting_malloc(size_t n)
{
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    void *p = malloc(n);
    if (p)
        alloc_live++;
    return p;
}

static void counting_free(void *p)
{
    if (p)
        alloc_live--;
    free(p);
}

/* Every jansson allocation of a decode fails in turn: GP__JSON_NOMEM, and
 * nothing built so far is leaked (jansson's allocations are counted; ASan
 * checks ours). */
static void test_out_of_memory(void **state)
{
    (void)state;
    static const char doc[] = "{\"id\":7,\"name\":\"Margherita \\\"pizza\\\"\",\"price\":11.5,\"tags\":[\"a\",\"b\\n\","
                              "{\"k\\u00e9y\":[1,2,{\"x\":null}]}],\"k\\n\":{\"k\\t\":\"v\"},\"k\\n\":true}";
    json_decref(json_object()); /* jansson's hash seed, before counting */
    json_set_alloc_funcs(counting_malloc, counting_free);
    bool done = false;
    int failures = 0;
    for (long k = 0; !done && k < 1000; k++) {
        alloc_budget = k;
        alloc_live = 0;
        json_t *v = NULL;
        gp__json_rc_t rc = gp__json_decode(doc, sizeof doc - 1, &v);
        if (rc == GP__JSON_OK) {
            alloc_budget = -1;
            json_t *ref = json_loadb(doc, sizeof doc - 1, FLAGS_LOAD, NULL);
            assert_non_null(ref);
            assert_true(json_equal(ref, v));
            json_decref(ref);
            done = true;
        } else {
            assert_int_equal(rc, GP__JSON_NOMEM);
            assert_null(v);
            failures++;
            alloc_budget = k;
            json_t *w = (json_t *)1;
            assert_int_equal(gp__json_load(doc, sizeof doc - 1, &w, NULL), GP__JSON_NOMEM);
            assert_null(w);
        }
        json_decref(v);
        assert_int_equal(alloc_live, 0);
    }
    json_set_alloc_funcs(malloc, free);
    assert_true(done);
    assert_true(failures > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),        cmocka_unit_test(test_depth), cmocka_unit_test(test_word_boundaries),
        cmocka_unit_test(test_encode_values), cmocka_unit_test(test_random),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
