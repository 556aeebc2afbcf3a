/* fuzz_params.c — parameter encoding (gp__params_encode, src/values.c) on
 * values decoded from the input: up to 12 of text (with any bytes,
 * embedded NULs included), numeric text, UUID text, bytea, int16/32/64,
 * double, bool, timestamptz, date, text[] and NULL, encoded with and
 * without copying.
 *
 * Oracle:
 *  - the status is GP_OK, or GP_ERR_INVALID whose message names a
 *    parameter ("$k: ..." with 1 <= k <= n);
 *  - text is accepted only when an independent checker says it is UTF-8
 *    without NUL (what PostgreSQL's text can hold), and a text[] only when
 *    each element is;
 *  - on success: NULL is a NULL value; text is sent in text format, its
 *    bytes and length unchanged; bytea in binary, bytes unchanged; int64 as
 *    8 big-endian bytes; bool as one byte 0/1; copying or not gives the same
 *    encoding. */
#include "fuzz_common.h"
#include "growplate/types.h"
#include "query_internal.h"

#define MAX_PARAMS 12

static bool utf8_ok(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t k = c < 0x80 ? 1 : c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
        if (!k || c == 0 || i + k > n)
            return false;
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xC0) != 0x80)
                return false;
        if ((k == 3 && c == 0xE0 && p[i + 1] < 0xA0) || (k == 3 && c == 0xED && p[i + 1] >= 0xA0) ||
            (k == 4 && c == 0xF0 && p[i + 1] < 0x90) || (k == 4 && c == 0xF4 && p[i + 1] >= 0x90))
            return false;
        i += k;
    }
    return true;
}

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader_t;

static uint8_t byte(reader_t *r)
{
    if (!r->left)
        return 0;
    r->left--;
    return *r->p++;
}

static uint64_t u64(reader_t *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | byte(r);
    return v;
}

/* Bytes of the input (length from one byte), copied into a NUL-terminated
 * buffer of their own (so ASan sees any read past them). */
static char *chunk(reader_t *r, size_t *len)
{
    size_t n = byte(r);
    if (n > r->left)
        n = r->left;
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, r->p, n);
    s[n] = 0;
    r->p += n;
    r->left -= n;
    *len = n;
    return s;
}

static void check_same(const gp__params_t *a, const gp__params_t *b, int n)
{
    for (int i = 0; i < n; i++) {
        if (a->types[i] != b->types[i] || a->formats[i] != b->formats[i] || a->lengths[i] != b->lengths[i] ||
            (a->values[i] == NULL) != (b->values[i] == NULL) ||
            (a->values[i] && memcmp(a->values[i], b->values[i], (size_t)a->lengths[i]) != 0))
            fuzz_fail("$%d is encoded differently with and without copying", i + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader_t r = {data, size};
    gp_value_t v[MAX_PARAMS];
    char *owned[MAX_PARAMS * 4] = {0};
    size_t nowned = 0, lens[MAX_PARAMS] = {0};
    const char *items[MAX_PARAMS][3];
    bool expect_invalid = false;
    int n = byte(&r) % (MAX_PARAMS + 1);
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        switch (byte(&r) % 13) {
        case 0: v[i] = gp_null(); break;
        case 1: {
            char *s = chunk(&r, &len);
            owned[nowned++] = s;
            v[i] = gp_textn(s, len);
            lens[i] = len;
            expect_invalid |= !utf8_ok((const unsigned char *)s, len);
            break;
        }
        case 2: {
            char *s = chunk(&r, &len);
            owned[nowned++] = s;
            v[i] = gp_text(s); /* up to the first NUL */
            lens[i] = strlen(s);
            expect_invalid |= !utf8_ok((const unsigned char *)s, lens[i]);
            break;
        }
        case 3: { char *s = chunk(&r, &len); owned[nowned++] = s; v[i] = gp_numeric(s); break; }
        case 4: { char *s = chunk(&r, &len); owned[nowned++] = s; v[i] = gp_uuid_str(s); break; }
        case 5: {
            char *s = chunk(&r, &len);
            owned[nowned++] = s;
            v[i] = gp_bytea(s, len);
            lens[i] = len;
            break;
        }
        case 6: v[i] = gp_int16((int16_t)u64(&r)); break;
        case 7: v[i] = gp_int32((int32_t)u64(&r)); break;
        case 8: v[i] = gp_int64((int64_t)u64(&r)); break;
        case 9: { uint64_t b = u64(&r); double d; memcpy(&d, &b, 8); v[i] = gp_double(d); break; }
        case 10: v[i] = gp_bool(byte(&r) & 1); break;
        case 11: v[i] = (byte(&r) & 1) ? gp_timestamptz((int64_t)u64(&r)) : gp_date((int32_t)u64(&r)); break;
        default: {
            size_t k = byte(&r) % 4;
            for (size_t j = 0; j < k && j < 3; j++) {
                char *s = chunk(&r, &len);
                owned[nowned++] = s;
                items[i][j] = (byte(&r) & 7) == 0 ? NULL : s; /* a NULL element now and then */
                if (items[i][j])
                    expect_invalid |= !utf8_ok((const unsigned char *)s, strlen(s));
            }
            v[i] = gp_text_array(items[i], k > 3 ? 3 : k);
            break;
        }
        }
    }
    gp__params_t a, b;
    gp_error_t e;
    gp_status_t st = gp__params_encode(&a, n, v, false, &e);
    if (st != GP_OK && st != GP_ERR_INVALID)
        fuzz_fail("status %d", (int)st);
    if (st == GP_ERR_INVALID) {
        int k = 0;
        if (sscanf(e.message, "$%d:", &k) != 1 || k < 1 || k > n) {
            fuzz_show_str("message", e.message);
            fuzz_fail("the message does not name a parameter");
        }
    } else {
        if (expect_invalid)
            fuzz_fail("text that is not UTF-8 without NUL was accepted");
        for (int i = 0; i < n; i++) {
            const char *val = a.values[i];
            switch (v[i].type) {
            case GP_TYPE_NULL:
                if (val)
                    fuzz_fail("$%d: NULL sent as a value", i + 1);
                break;
            case GP_TYPE_TEXT:
                if (a.formats[i] != 0 || (size_t)a.lengths[i] != lens[i] || memcmp(val, v[i].u.s.ptr, lens[i]) != 0)
                    fuzz_fail("$%d: text changed in encoding", i + 1);
                break;
            case GP_TYPE_BYTEA:
                if (a.formats[i] != 1 || (size_t)a.lengths[i] != lens[i] || (lens[i] && memcmp(val, v[i].u.bytes.ptr, lens[i]) != 0))
                    fuzz_fail("$%d: bytea changed in encoding", i + 1);
                break;
            case GP_TYPE_INT64: {
                uint64_t x = 0;
                for (int j = 0; j < 8; j++)
                    x = x << 8 | (unsigned char)val[j];
                if (a.lengths[i] != 8 || a.formats[i] != 1 || x != (uint64_t)v[i].u.i)
                    fuzz_fail("$%d: int64 encoded wrongly", i + 1);
                break;
            }
            case GP_TYPE_BOOL:
                if (a.lengths[i] != 1 || (unsigned char)val[0] != (v[i].u.b ? 1 : 0))
                    fuzz_fail("$%d: bool encoded wrongly", i + 1);
                break;
            default:
                break;
            }
        }
        gp_status_t st2 = gp__params_encode(&b, n, v, true, &e);
        if (st2 != GP_OK)
            fuzz_fail("copying changed the verdict (status %d)", (int)st2);
        check_same(&a, &b, n);
        gp__params_free(&b);
        gp__params_free(&a);
    }
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
    return 0;
}
