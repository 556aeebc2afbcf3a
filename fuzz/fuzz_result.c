/* fuzz_result.c — the result getters (src/result.c, growplate/query.h) and
 * the row decoders (src/rows_support.c behind the generated src/rows.c,
 * growplate/rows.h) on crafted results: a real PGresult built client-side
 * with libpq's public API (PQmakeEmptyPGresult, PQsetResultAttrs,
 * PQsetvalue), wrapped with gp__result_wrap, so every byte of every cell is
 * the fuzzer's. No server.
 *
 * Input (missing bytes read as 0):
 *     nrows % 9, ncols % 17,
 *     per column: t  type: OIDS[(t & 0x7f) % N] (an entry RAW reads a
 *                    4-byte OID), text format when t & 0x80, else binary;
 *                 n  name: NAMES[n % N] when n < 0xe0 (every column of the
 *                    generated tables, a few others), else n & 0x1f bytes
 *                    (up to a NUL);
 *                 k  the synthesised table's column: kind natural for the
 *                    type when k & 0x80, else kind (k & 0x0f) % 14;
 *                    nullable when k & 0x40;
 *     then the cells row by row: a length byte L (0xff: NULL, 0xfe: a
 *     2-byte big-endian length follows) and that many bytes.
 * Seeds: fuzz/gen_seeds.py.
 *
 * Oracle. The getters read cells as the binary format the library always
 * asks for (result_format 1 in query.c and pipeline.c, the only places a
 * gp_result_t is made); a text-format cell is read the same way.
 *  - gp_result_rows/columns/affected, column_name, column_type (an
 *    independent OID table), column_index and gp_col (first exact match,
 *    -1 otherwise) agree with what was built; out-of-range columns give
 *    NULL / GP_TYPE_NULL; a NULL result reads as empty.
 *  - Every getter on every cell returns exactly the status an independent
 *    reading of the bytes gives, and then the value: GP_ERR_NULL for a
 *    NULL; int2/4/8 of exactly 2/4/8 bytes decode big-endian (int16 reads
 *    int2, int32 int2/int4, int64 all three: never narrowing); float4/8 of
 *    4/8 bytes bit for bit; bool of 1 byte; text/varchar/bpchar/name give
 *    the cell's bytes, its length and a NUL after them; uuid of 16 bytes;
 *    timestamptz/date shifted from 2000-01-01 to 1970-01-01 with
 *    ±infinity kept and GP_ERR_RANGE past the end; numeric as the decimal
 *    value of its base-10000 digits with dscale decimals (NaN, ±Infinity),
 *    integers as "%lld"; json/jsonb (version byte 1) as jansson parses the
 *    text; bytea (NULL for empty); one-dimensional text[]/int[] arrays
 *    with every length checked; anything else GP_ERR_TYPE. A failing
 *    getter leaves its outputs untouched. Bad indices: GP_ERR_NOT_FOUND
 *    (negative column), GP_ERR_RANGE; NULL result or output: GP_ERR_INVALID.
 *  - The row decoders, for each generated table (through its public
 *    gp_row_T_bind / _decode / _decode_all / _free / _free_all) and for a
 *    table synthesised from the input's columns (gp_rows_*): bind fails
 *    exactly at the first column of the table that is missing
 *    (GP_ERR_NOT_FOUND, "T: the result has no column \"c\"") or has
 *    another type (GP_ERR_TYPE, "T.c: expected ..."; an enum also binds to
 *    a binary column of a type created after initdb); decode fails exactly
 *    at the first column whose getter fails, or that is NULL but NOT NULL
 *    (GP_ERR_NULL), or whose enum label is unknown (GP_ERR_TYPE), with the
 *    message "T.c (row N): ..." and the row left zeroed; on success every
 *    field equals what its getter gives (NULL flags, array counts, enum
 *    indices included); decode_all is bind + every row, or nothing.
 *    tables_mirror[] below must describe src/rows.c's tables: checked
 *    against rows.h (names, count, order) at start-up.
 *  - Nothing leaks (LSan), nothing reads outside a value (ASan: libpq
 *    gives values of 1 KiB and more an allocation of their own), nothing
 *    reaches stdout. */
#include <inttypes.h>
#include <math.h>

#include "fuzz_common.h"
#include "growplate/rows.h"
#include "query_internal.h"
#include "growplate/rows_support.h"

#define MAX_ROWS 8
#define MAX_COLS 16
#define EPOCH_US INT64_C(946684800000000) /* 2000-01-01 in Unix µs */
#define EPOCH_DAYS 10957

/* ---- the input -------------------------------------------------------------- */

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

#define RAW 0u /* read the OID from the input */
static const Oid OIDS[] = {
    16, 17, 18, 19, 20, 21, 23, 25, 26, 114, 700, 701, 705, 1042, 1043, 1082, 1114, 1184, 1186, 1700, 2950,
    3802, 1003, 1005, 1007, 1009, 1014, 1015, 1016, 1022, 16384, 16385, 99999, RAW,
};
#define NOIDS (sizeof OIDS / sizeof OIDS[0])

static const char *const NAMES[] = {
    "tenant_id", "id", "name", "position", "created_at", "updated_at", "category_id", "description",
    "price_cents", "calories", "available", "tags", "order_id", "line_no", "menu_item_id", "quantity",
    "unit_price_cents", "customer_id", "status", "total_cents", "note", "placed_at", "completed_at", "slug",
    "plan", "settings", "email", "display_name", "role", "", "c", "ID", "Name",
};
#define NNAMES (sizeof NAMES / sizeof NAMES[0])

typedef struct cell {
    bool null;
    const char *v; /* the input's bytes */
    int len;
} cell_t;

typedef struct input {
    int nrows, ncols;
    Oid oid[MAX_COLS];
    int format[MAX_COLS];
    char name[MAX_COLS][32];
    uint8_t kind_byte[MAX_COLS];
    cell_t cell[MAX_ROWS][MAX_COLS];
} input_t;

static input_t in;
static const uint8_t *cur_data;
static size_t cur_size;

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    fuzz_show("input", (const char *)cur_data, cur_size < 400 ? cur_size : 400);
    for (int c = 0; c < in.ncols; c++)
        fprintf(stderr, "  column %d \"%s\": oid %u, %s\n", c, in.name[c], in.oid[c],
                in.format[c] ? "binary" : "text");
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fuzz_fail("%s", msg);
}

static void parse(const uint8_t *data, size_t size)
{
    reader_t r = {data, size};
    memset(&in, 0, sizeof in);
    in.nrows = byte(&r) % (MAX_ROWS + 1);
    in.ncols = byte(&r) % (MAX_COLS + 1);
    if (!in.ncols)
        in.nrows = 0; /* libpq has no rows without columns */
    for (int c = 0; c < in.ncols; c++) {
        uint8_t t = byte(&r), n = byte(&r);
        in.kind_byte[c] = byte(&r);
        in.oid[c] = OIDS[(t & 0x7f) % NOIDS];
        if (in.oid[c] == RAW)
            for (int i = 0; i < 4; i++)
                in.oid[c] = in.oid[c] << 8 | byte(&r);
        in.format[c] = (t & 0x80) ? 0 : 1;
        if (n < 0xe0) {
            snprintf(in.name[c], sizeof in.name[c], "%s", NAMES[n % NNAMES]);
        } else {
            size_t len = n & 0x1f;
            for (size_t i = 0; i < len; i++)
                in.name[c][i] = (char)byte(&r);
            in.name[c][len] = 0; /* a NUL inside ends the name */
        }
    }
    for (int row = 0; row < in.nrows; row++)
        for (int c = 0; c < in.ncols; c++) {
            cell_t *x = &in.cell[row][c];
            uint8_t l = byte(&r);
            if (l == 0xff) {
                x->null = true;
                continue;
            }
            size_t len = l;
            if (l == 0xfe) {
                len = byte(&r);
                len = len << 8 | byte(&r);
            }
            if (len > r.left)
                len = r.left;
            x->v = (const char *)r.p;
            x->len = (int)len;
            r.p += len;
            r.left -= len;
        }
}

static gp_result_t *build(void)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    if (!res)
        abort();
    PGresAttDesc attrs[MAX_COLS];
    for (int c = 0; c < in.ncols; c++)
        attrs[c] = (PGresAttDesc){.name = in.name[c], .format = in.format[c], .typid = in.oid[c], .typlen = -1,
                                  .atttypmod = -1};
    if (!PQsetResultAttrs(res, in.ncols, in.ncols ? attrs : NULL))
        abort();
    for (int row = 0; row < in.nrows; row++)
        for (int c = 0; c < in.ncols; c++) {
            const cell_t *x = &in.cell[row][c];
            /* PQsetvalue copies (and NUL-terminates) the bytes. */
            if (!PQsetvalue(res, row, c, x->null ? NULL : (char *)(uintptr_t)(x->v ? x->v : ""),
                            x->null ? -1 : x->len))
                abort();
        }
    gp_result_t *r = gp__result_wrap(res);
    if (!r)
        abort();
    return r;
}

/* ---- an independent reading of binary cells --------------------------------- */

static uint16_t be16(const char *p) { const uint8_t *u = (const uint8_t *)p; return (uint16_t)(u[0] << 8 | u[1]); }
static uint32_t be32(const char *p)
{
    const uint8_t *u = (const uint8_t *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}
static uint64_t be64(const char *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

static gp_type_t ref_type(Oid oid)
{
    switch (oid) {
    case 21: return GP_TYPE_INT16;
    case 23: return GP_TYPE_INT32;
    case 20: return GP_TYPE_INT64;
    case 700: case 701: return GP_TYPE_DOUBLE;
    case 16: return GP_TYPE_BOOL;
    case 25: case 1043: case 1042: case 19: return GP_TYPE_TEXT;
    case 2950: return GP_TYPE_UUID;
    case 1184: return GP_TYPE_TIMESTAMPTZ;
    case 1082: return GP_TYPE_DATE;
    case 1700: return GP_TYPE_NUMERIC;
    case 114: return GP_TYPE_JSON;
    case 3802: return GP_TYPE_JSONB;
    case 17: return GP_TYPE_BYTEA;
    case 1009: case 1015: case 1014: case 1003: return GP_TYPE_TEXT_ARRAY;
    case 1005: case 1007: case 1016: return GP_TYPE_INT_ARRAY;
    default: return GP_TYPE_NULL;
    }
}

/* An integer cell: int2/int4/int8 of exactly 2/4/8 bytes. */
static bool ref_int(Oid oid, const char *v, int len, int64_t *x)
{
    if (oid == 21 && len == 2)
        *x = (int16_t)be16(v);
    else if (oid == 23 && len == 4)
        *x = (int32_t)be32(v);
    else if (oid == 20 && len == 8)
        *x = (int64_t)be64(v);
    else
        return false;
    return true;
}

/* A growable string for the expected numeric text. */
typedef struct sbuf {
    char *s;
    size_t n, cap;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        if (!(b->s = realloc(b->s, b->cap)))
            abort();
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

/* PostgreSQL's binary numeric: ndigits, weight, sign, dscale, then ndigits
 * base-10000 digits; value = sum(d[i] * 10000^(weight - i)), shown with
 * dscale decimals (truncated, as numeric_out does). GP_OK with *out
 * (malloc'd), or GP_ERR_TYPE. */
static gp_status_t ref_numeric(const char *v, int len, char **out)
{
    if (len < 8)
        return GP_ERR_TYPE;
    int ndigits = (int16_t)be16(v), weight = (int16_t)be16(v + 2), dscale = (int16_t)be16(v + 6);
    uint16_t sign = be16(v + 4);
    if (ndigits < 0 || dscale < 0 || len != 8 + 2 * ndigits)
        return GP_ERR_TYPE;
    const char *special = sign == 0xC000 ? "NaN" : sign == 0xD000 ? "Infinity" : sign == 0xF000 ? "-Infinity" : NULL;
    if (special) {
        if (!(*out = strdup(special)))
            abort();
        return GP_OK;
    }
    if (sign != 0 && sign != 0x4000)
        return GP_ERR_TYPE;
    sbuf_t b = {0};
    sb_add(&b, "", 0);
    if (sign == 0x4000)
        sb_add(&b, "-", 1);
    char d4[8];
    for (int i = 0; i <= weight; i++) { /* the integer part, 4 digits a group */
        int d = i < ndigits ? be16(v + 8 + 2 * i) : 0;
        if (d > 9999) {
            free(b.s);
            return GP_ERR_TYPE;
        }
        snprintf(d4, sizeof d4, "%04d", d);
        sb_add(&b, d4, 4);
    }
    if (weight < 0)
        sb_add(&b, "0", 1);
    if (dscale > 0) {
        sb_add(&b, ".", 1);
        size_t start = b.n;
        for (int i = weight + 1; b.n - start < (size_t)dscale; i++) {
            int d = i >= 0 && i < ndigits ? be16(v + 8 + 2 * i) : 0;
            if (d > 9999) {
                free(b.s);
                return GP_ERR_TYPE;
            }
            snprintf(d4, sizeof d4, "%04d", d);
            sb_add(&b, d4, 4);
        }
        b.n = start + (size_t)dscale;
        b.s[b.n] = 0;
    }
    *out = b.s;
    return GP_OK;
}

/* Decimal text without the leading zeros of its integer part ("-0012.5"
 * -> "-12.5", "000" -> "0"), in place. */
static void strip_zeros(char *s)
{
    char *p = s + (*s == '-');
    size_t z = 0;
    while (p[z] == '0' && p[z + 1] >= '0' && p[z + 1] <= '9')
        z++;
    memmove(p, p + z, strlen(p + z) + 1);
}

static bool decimal_form(const char *s, int dscale)
{
    if (*s == '-')
        s++;
    if (!(*s >= '0' && *s <= '9'))
        return false;
    while (*s >= '0' && *s <= '9')
        s++;
    if (dscale == 0)
        return *s == 0;
    if (*s++ != '.')
        return false;
    for (int i = 0; i < dscale; i++, s++)
        if (!(*s >= '0' && *s <= '9'))
            return false;
    return *s == 0;
}

/* A one-dimensional binary array: header (ndim, flags, element OID), then
 * (size, lower bound) when ndim is 1, then per element an int32 length
 * (negative: NULL) and its bytes. */
typedef struct ref_array {
    size_t n;
    Oid elem;
    const char *elems; /* the first element's length word */
} ref_array_t;

static gp_status_t ref_array(const char *v, int len, Oid e1, Oid e2, Oid e3, ref_array_t *a)
{
    if (len < 12)
        return GP_ERR_TYPE;
    int32_t ndim = (int32_t)be32(v);
    a->elem = be32(v + 8);
    if (a->elem != e1 && a->elem != e2 && a->elem != e3)
        return GP_ERR_TYPE;
    if (ndim == 0) {
        a->n = 0;
        a->elems = v + 12;
        return GP_OK;
    }
    if (ndim != 1 || len < 20)
        return GP_ERR_TYPE;
    int32_t dim = (int32_t)be32(v + 12);
    if (dim < 0)
        return GP_ERR_TYPE;
    long left = len - 20;
    const char *p = v + 20;
    for (int32_t i = 0; i < dim; i++) {
        if (left < 4)
            return GP_ERR_TYPE;
        int32_t l = (int32_t)be32(p);
        p += 4, left -= 4;
        if (l >= 0) {
            if (left < l)
                return GP_ERR_TYPE;
            p += l, left -= l;
        }
    }
    a->n = (size_t)dim;
    a->elems = v + 20;
    return GP_OK;
}

static bool is_text_oid(Oid o) { return o == 25 || o == 1043 || o == 1042 || o == 19; }

/* ---- the getters, cell by cell -------------------------------------------- */

static const char *st_name(gp_status_t st) { return gp_strerror(st); }

static void expect_st(gp_status_t got, gp_status_t want, const char *getter, int row, int col)
{
    if (got != want)
        fail("%s(row %d, col %d): status %d (%s), expected %d (%s)", getter, row, col, (int)got, st_name(got),
             (int)want, st_name(want));
}

#define SENT64 INT64_C(0x5a5a5a5a5a5a5a5a)

static void check_int_getters(const gp_result_t *r, int row, int col, Oid oid, const cell_t *x)
{
    int64_t v = 0;
    bool ok = !x->null && ref_int(oid, x->v, x->len, &v);
    gp_status_t bad = x->null ? GP_ERR_NULL : GP_ERR_TYPE;

    int16_t i16 = 0x5a5a;
    gp_status_t st = gp_get_int16(r, row, col, &i16);
    expect_st(st, ok && oid == 21 ? GP_OK : bad, "gp_get_int16", row, col);
    if (st == GP_OK ? i16 != (int16_t)v : i16 != 0x5a5a)
        fail("gp_get_int16(%d, %d): value %d", row, col, i16);

    int32_t i32 = 0x5a5a5a5a;
    st = gp_get_int32(r, row, col, &i32);
    expect_st(st, ok && oid != 20 ? GP_OK : bad, "gp_get_int32", row, col);
    if (st == GP_OK ? i32 != (int32_t)v : i32 != 0x5a5a5a5a)
        fail("gp_get_int32(%d, %d): value %d", row, col, i32);

    int64_t i64 = SENT64;
    st = gp_get_int64(r, row, col, &i64);
    expect_st(st, ok ? GP_OK : bad, "gp_get_int64", row, col);
    if (st == GP_OK ? i64 != v : i64 != SENT64)
        fail("gp_get_int64(%d, %d): value %" PRId64 ", expected %" PRId64, row, col, i64, v);
}

static void check_scalar_getters(const gp_result_t *r, int row, int col, Oid oid, const cell_t *x)
{
    gp_status_t bad = x->null ? GP_ERR_NULL : GP_ERR_TYPE, st;
    const char *v = x->v;
    int len = x->len;

    /* double */
    double d = 12345.5, want_d = 0;
    bool ok = false;
    if (!x->null && oid == 701 && len == 8) {
        uint64_t bits = be64(v);
        memcpy(&want_d, &bits, 8);
        ok = true;
    } else if (!x->null && oid == 700 && len == 4) {
        uint32_t bits = be32(v);
        float f;
        memcpy(&f, &bits, 4);
        want_d = f;
        ok = true;
    }
    st = gp_get_double(r, row, col, &d);
    expect_st(st, ok ? GP_OK : bad, "gp_get_double", row, col);
    if (st == GP_OK ? memcmp(&d, &want_d, sizeof d) != 0 : d != 12345.5)
        fail("gp_get_double(%d, %d): value %g, expected %g", row, col, d, want_d);

    /* bool */
    bool b = true, want_b = false;
    ok = !x->null && oid == 16 && len == 1;
    if (ok)
        want_b = v[0] != 0;
    st = gp_get_bool(r, row, col, &b);
    expect_st(st, ok ? GP_OK : bad, "gp_get_bool", row, col);
    if (st == GP_OK ? b != want_b : b != true)
        fail("gp_get_bool(%d, %d): value %d", row, col, b);

    /* text */
    const char *s = (const char *)&s;
    size_t sl = 777;
    ok = !x->null && is_text_oid(oid);
    st = gp_get_text(r, row, col, &s, &sl);
    expect_st(st, ok ? GP_OK : bad, "gp_get_text", row, col);
    if (st == GP_OK) {
        if (sl != (size_t)len || memcmp(s, v, (size_t)len) != 0 || s[len] != 0) {
            fuzz_show("got", s, sl);
            fail("gp_get_text(%d, %d): not the cell's %d bytes, NUL-terminated", row, col, len);
        }
        const char *s2 = NULL;
        if (gp_get_text(r, row, col, &s2, NULL) != GP_OK || s2 != s)
            fail("gp_get_text(%d, %d) with len NULL differs", row, col);
    } else if (s != (const char *)&s || sl != 777) {
        fail("gp_get_text(%d, %d) failed but wrote its outputs", row, col);
    }

    /* uuid */
    gp_uuid_t u;
    memset(&u, 0x5a, sizeof u);
    ok = !x->null && oid == 2950 && len == 16;
    st = gp_get_uuid(r, row, col, &u);
    expect_st(st, ok ? GP_OK : bad, "gp_get_uuid", row, col);
    gp_uuid_t sent;
    memset(&sent, 0x5a, sizeof sent);
    if (st == GP_OK ? memcmp(u.bytes, v, 16) != 0 : memcmp(&u, &sent, sizeof u) != 0)
        fail("gp_get_uuid(%d, %d): wrong bytes", row, col);

    /* timestamptz */
    int64_t ts = SENT64, want_ts = 0;
    gp_status_t want = bad;
    if (!x->null && oid == 1184 && len == 8) {
        int64_t t = (int64_t)be64(v);
        if (t == INT64_MAX || t == INT64_MIN)
            want_ts = t, want = GP_OK;
        else if (t > INT64_MAX - EPOCH_US)
            want = GP_ERR_RANGE;
        else
            want_ts = t + EPOCH_US, want = GP_OK;
    }
    st = gp_get_timestamptz(r, row, col, &ts);
    expect_st(st, want, "gp_get_timestamptz", row, col);
    if (st == GP_OK ? ts != want_ts : ts != SENT64)
        fail("gp_get_timestamptz(%d, %d): %" PRId64 ", expected %" PRId64, row, col, ts, want_ts);

    /* date */
    int32_t dt = 0x5a5a5a5a, want_dt = 0;
    want = bad;
    if (!x->null && oid == 1082 && len == 4) {
        int32_t t = (int32_t)be32(v);
        if (t == INT32_MAX || t == INT32_MIN)
            want_dt = t, want = GP_OK;
        else if (t > INT32_MAX - EPOCH_DAYS)
            want = GP_ERR_RANGE;
        else
            want_dt = t + EPOCH_DAYS, want = GP_OK;
    }
    st = gp_get_date(r, row, col, &dt);
    expect_st(st, want, "gp_get_date", row, col);
    if (st == GP_OK ? dt != want_dt : dt != 0x5a5a5a5a)
        fail("gp_get_date(%d, %d): %d, expected %d", row, col, dt, want_dt);

    /* bytea */
    const uint8_t *bp = (const uint8_t *)&bp;
    size_t bl = 777;
    ok = !x->null && oid == 17;
    st = gp_get_bytea(r, row, col, &bp, &bl);
    expect_st(st, ok ? GP_OK : bad, "gp_get_bytea", row, col);
    if (st == GP_OK) {
        if (bl != (size_t)len || (len == 0) != (bp == NULL) || (len && memcmp(bp, v, (size_t)len) != 0))
            fail("gp_get_bytea(%d, %d): not the cell's %d bytes", row, col, len);
    } else if (bp != (const uint8_t *)&bp || bl != 777) {
        fail("gp_get_bytea(%d, %d) failed but wrote its outputs", row, col);
    }
}

static void check_numeric_json(const gp_result_t *r, int row, int col, Oid oid, const cell_t *x)
{
    gp_status_t bad = x->null ? GP_ERR_NULL : GP_ERR_TYPE, st, want = bad;

    /* numeric */
    char *want_s = NULL, *s = (char *)&s;
    int64_t iv;
    if (!x->null && ref_int(oid, x->v, x->len, &iv)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRId64, iv);
        if (!(want_s = strdup(buf)))
            abort();
        want = GP_OK;
    } else if (!x->null && oid == 1700) {
        want = ref_numeric(x->v, x->len, &want_s);
    }
    st = gp_get_numeric(r, row, col, &s);
    expect_st(st, want, "gp_get_numeric", row, col);
    if (st == GP_OK) {
        int dscale = oid == 1700 && strchr(want_s, '.') ? (int)strlen(strchr(want_s, '.') + 1) : 0;
        bool special = oid == 1700 && (want_s[0] == 'N' || strchr(want_s, 'I'));
        if (!special && !decimal_form(s, dscale)) {
            fuzz_show_str("got", s);
            fail("gp_get_numeric(%d, %d): not decimal text with %d decimals", row, col, dscale);
        }
        strip_zeros(s);
        strip_zeros(want_s);
        if (strcmp(s, want_s) != 0) {
            fuzz_show_str("got", s);
            fuzz_show_str("expected", want_s);
            fail("gp_get_numeric(%d, %d): another value", row, col);
        }
        free(s);
    } else if (s != (char *)&s) {
        fail("gp_get_numeric(%d, %d) failed but wrote *out", row, col);
    }
    free(want_s);

    /* json / jsonb */
    json_t *j = (json_t *)&j, *want_j = NULL;
    want = bad;
    const char *text = NULL;
    size_t tl = 0;
    if (!x->null && oid == 114) {
        text = x->v ? x->v : "", tl = (size_t)x->len;
    } else if (!x->null && oid == 3802) {
        if (x->len >= 1 && x->v[0] == 1)
            text = x->v + 1, tl = (size_t)x->len - 1;
    }
    if (text) {
        json_error_t je;
        want_j = json_loadb(text, tl, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        want = want_j ? GP_OK : GP_ERR_TYPE;
    }
    st = gp_get_json(r, row, col, &j);
    expect_st(st, want, "gp_get_json", row, col);
    if (st == GP_OK) {
        if (!json_equal(j, want_j))
            fail("gp_get_json(%d, %d): another value than jansson's", row, col);
        json_decref(j);
    } else if (j != (json_t *)&j) {
        fail("gp_get_json(%d, %d) failed but wrote *out", row, col);
    }
    json_decref(want_j);
}

static void check_arrays(const gp_result_t *r, int row, int col, Oid oid, const cell_t *x)
{
    gp_status_t bad = x->null ? GP_ERR_NULL : GP_ERR_TYPE, st, want = bad;
    ref_array_t a = {0};

    /* text[] */
    char **items = (char **)&items;
    size_t n = 777;
    if (!x->null && ref_type(oid) == GP_TYPE_TEXT_ARRAY)
        want = ref_array(x->v, x->len, 25, 1043, oid == 1003 ? 19 : 1042, &a);
    st = gp_get_text_array(r, row, col, &items, &n);
    expect_st(st, want, "gp_get_text_array", row, col);
    if (st == GP_OK) {
        if (n != a.n || items[n] != NULL)
            fail("gp_get_text_array(%d, %d): %zu items, expected %zu (NULL-terminated)", row, col, n, a.n);
        const char *p = a.elems;
        for (size_t i = 0; i < n; i++) {
            int32_t l = (int32_t)be32(p);
            p += 4;
            if (l < 0) {
                if (items[i])
                    fail("gp_get_text_array(%d, %d): item %zu should be NULL", row, col, i);
                continue;
            }
            if (!items[i] || memcmp(items[i], p, (size_t)l) != 0 || items[i][l] != 0)
                fail("gp_get_text_array(%d, %d): item %zu is not the element's %d bytes", row, col, i, l);
            p += l;
        }
        free(items);
    } else if (items != (char **)&items || n != 777) {
        fail("gp_get_text_array(%d, %d) failed but wrote its outputs", row, col);
    }

    /* int[] */
    int64_t *ints = (int64_t *)&ints;
    n = 777;
    want = bad;
    int64_t *want_v = NULL;
    if (!x->null && ref_type(oid) == GP_TYPE_INT_ARRAY) {
        want = ref_array(x->v, x->len, 21, 23, 20, &a);
        if (want == GP_OK && a.n) {
            if (!(want_v = malloc(a.n * sizeof *want_v)))
                abort();
            const char *p = a.elems;
            for (size_t i = 0; i < a.n; i++) {
                int32_t l = (int32_t)be32(p);
                p += 4;
                if (l < 0) {
                    want = GP_ERR_NULL;
                    break;
                }
                if (!ref_int(a.elem, p, l, &want_v[i])) {
                    want = GP_ERR_TYPE;
                    break;
                }
                p += l;
            }
        }
    }
    st = gp_get_int_array(r, row, col, &ints, &n);
    expect_st(st, want, "gp_get_int_array", row, col);
    if (st == GP_OK) {
        if (n != a.n || (n == 0) != (ints == NULL) || (n && memcmp(ints, want_v, n * sizeof *ints) != 0))
            fail("gp_get_int_array(%d, %d): %zu items, expected %zu, or other values", row, col, n, a.n);
        free(ints);
    } else if (ints != (int64_t *)&ints || n != 777) {
        fail("gp_get_int_array(%d, %d) failed but wrote its outputs", row, col);
    }
    free(want_v);
}

static void check_cell(const gp_result_t *r, int row, int col)
{
    const cell_t *x = &in.cell[row][col];
    Oid oid = in.oid[col];
    bool isnull = !x->null;
    if (gp_get_is_null(r, row, col, &isnull) != GP_OK || isnull != x->null)
        fail("gp_get_is_null(%d, %d) is wrong", row, col);
    check_int_getters(r, row, col, oid, x);
    check_scalar_getters(r, row, col, oid, x);
    check_numeric_json(r, row, col, oid, x);
    check_arrays(r, row, col, oid, x);
}

/* Every getter at (row, col), outside the result: the same status. */
static void check_outside(const gp_result_t *r, int row, int col, gp_status_t want)
{
    int16_t i16 = 7;
    int32_t i32 = 7;
    int64_t i64 = 7;
    double d = 7;
    bool b = true;
    const char *s = NULL;
    size_t n = 7;
    gp_uuid_t u;
    char *num = NULL, **items = NULL;
    json_t *j = NULL;
    const uint8_t *bp = NULL;
    int64_t *ints = NULL;
    gp_status_t st[] = {
        gp_get_is_null(r, row, col, &b), gp_get_int16(r, row, col, &i16), gp_get_int32(r, row, col, &i32),
        gp_get_int64(r, row, col, &i64), gp_get_double(r, row, col, &d), gp_get_bool(r, row, col, &b),
        gp_get_text(r, row, col, &s, &n), gp_get_uuid(r, row, col, &u), gp_get_timestamptz(r, row, col, &i64),
        gp_get_date(r, row, col, &i32), gp_get_numeric(r, row, col, &num), gp_get_json(r, row, col, &j),
        gp_get_bytea(r, row, col, &bp, &n), gp_get_text_array(r, row, col, &items, &n),
        gp_get_int_array(r, row, col, &ints, &n),
    };
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
        if (st[i] != want)
            fail("getter %zu at (%d, %d): status %d, expected %d", i, row, col, (int)st[i], (int)want);
    if (i16 != 7 || i32 != 7 || i64 != 7 || d != 7 || !b || s || n != 7 || num || items || j || bp || ints)
        fail("a getter failing at (%d, %d) wrote its outputs", row, col);
}

static void check_columns(const gp_result_t *r)
{
    if (gp_result_rows(r) != in.nrows || gp_result_columns(r) != in.ncols || gp_result_affected(r) != 0)
        fail("rows %d, columns %d, affected %" PRId64, gp_result_rows(r), gp_result_columns(r),
             gp_result_affected(r));
    for (int c = 0; c < in.ncols; c++) {
        const char *name = gp_result_column_name(r, c);
        if (!name || strcmp(name, in.name[c]) != 0)
            fail("gp_result_column_name(%d) is not the column's name", c);
        if (gp_result_column_type(r, c) != ref_type(in.oid[c]))
            fail("gp_result_column_type(%d) = %d, expected %d", c, (int)gp_result_column_type(r, c),
                 (int)ref_type(in.oid[c]));
        int first = 0;
        while (strcmp(in.name[first], in.name[c]) != 0)
            first++;
        int idx = -2;
        if (gp_result_column_index(r, in.name[c], &idx) != GP_OK || idx != first || gp_col(r, in.name[c]) != first)
            fail("gp_result_column_index(\"%s\") = %d, expected %d", in.name[c], idx, first);
    }
    static const char absent[] = "no column has a name this long: 32+ bytes";
    int idx = 5;
    if (gp_result_column_index(r, absent, &idx) != GP_ERR_NOT_FOUND || idx != 5 || gp_col(r, absent) != -1)
        fail("an absent column was found");
    if (gp_result_column_index(r, NULL, &idx) != GP_ERR_INVALID || gp_result_column_index(r, "id", NULL) != GP_ERR_INVALID)
        fail("gp_result_column_index accepts NULL");
    if (gp_result_column_name(r, -1) || gp_result_column_name(r, in.ncols) ||
        gp_result_column_type(r, -1) != GP_TYPE_NULL || gp_result_column_type(r, in.ncols) != GP_TYPE_NULL)
        fail("a column out of range has a name or a type");

    /* Outside the result; col < 0 is checked first. */
    check_outside(r, 0, -1, GP_ERR_NOT_FOUND);
    check_outside(r, -1, -1, GP_ERR_NOT_FOUND);
    check_outside(r, -1, 0, GP_ERR_RANGE);
    check_outside(r, in.nrows, 0, GP_ERR_RANGE);
    check_outside(r, 0, in.ncols, GP_ERR_RANGE);
    check_outside(NULL, 0, 0, GP_ERR_INVALID);
    if (gp_get_int64(r, 0, 0, NULL) != GP_ERR_INVALID || gp_get_text(r, 0, 0, NULL, NULL) != GP_ERR_INVALID ||
        gp_get_bytea(r, 0, 0, &(const uint8_t *){NULL}, NULL) != GP_ERR_INVALID ||
        gp_get_text_array(r, 0, 0, &(char **){NULL}, NULL) != GP_ERR_INVALID ||
        gp_get_int_array(r, 0, 0, &(int64_t *){NULL}, NULL) != GP_ERR_INVALID ||
        gp_get_is_null(r, 0, 0, NULL) != GP_ERR_INVALID)
        fail("a getter accepts a NULL output");
    if (gp_result_rows(NULL) || gp_result_columns(NULL) || gp_result_affected(NULL) ||
        gp_result_column_name(NULL, 0) || gp_result_column_type(NULL, 0) != GP_TYPE_NULL || gp_col(NULL, "id") != -1)
        fail("a NULL result is not empty");
}

/* ---- row decoders ------------------------------------------------------------ */

/* src/rows.c's tables, described again (checked against rows.h at start-up). */
#define COL(T, f, kind) {#f, kind, false, offsetof(T, f), 0, 0, NULL, 0}
#define NCOL(T, f, kind) {#f, kind, true, offsetof(T, f), offsetof(T, f##_is_null), 0, NULL, 0}
#define ACOL(T, f) {#f, GP_ROWS_COL_TEXT_ARRAY, false, offsetof(T, f), 0, offsetof(T, f##_count), NULL, 0}
#define ECOL(T, f, labels) {#f, GP_ROWS_COL_ENUM, false, offsetof(T, f), 0, 0, labels, (int)(sizeof labels / sizeof labels[0])}

static const char *const order_status_labels[] = {"pending", "confirmed", "preparing", "ready", "completed", "cancelled"};
static const char *const tenant_status_labels[] = {"active", "suspended", "closed"};
static const char *const user_role_labels[] = {"owner", "manager", "staff", "customer"};

static const gp_rows_col_desc_t menu_categories_cols[] = {
    COL(gp_row_menu_categories_t, tenant_id, GP_ROWS_COL_UUID), COL(gp_row_menu_categories_t, id, GP_ROWS_COL_UUID),
    COL(gp_row_menu_categories_t, name, GP_ROWS_COL_TEXT), COL(gp_row_menu_categories_t, position, GP_ROWS_COL_INT32),
    COL(gp_row_menu_categories_t, created_at, GP_ROWS_COL_TIMESTAMPTZ),
    COL(gp_row_menu_categories_t, updated_at, GP_ROWS_COL_TIMESTAMPTZ),
};
static const gp_rows_col_desc_t menu_items_cols[] = {
    COL(gp_row_menu_items_t, tenant_id, GP_ROWS_COL_UUID), COL(gp_row_menu_items_t, id, GP_ROWS_COL_UUID),
    COL(gp_row_menu_items_t, category_id, GP_ROWS_COL_UUID), COL(gp_row_menu_items_t, name, GP_ROWS_COL_TEXT),
    NCOL(gp_row_menu_items_t, description, GP_ROWS_COL_TEXT), COL(gp_row_menu_items_t, price_cents, GP_ROWS_COL_INT32),
    NCOL(gp_row_menu_items_t, calories, GP_ROWS_COL_INT32), COL(gp_row_menu_items_t, available, GP_ROWS_COL_BOOL),
    ACOL(gp_row_menu_items_t, tags), COL(gp_row_menu_items_t, created_at, GP_ROWS_COL_TIMESTAMPTZ),
    COL(gp_row_menu_items_t, updated_at, GP_ROWS_COL_TIMESTAMPTZ),
};
static const gp_rows_col_desc_t order_items_cols[] = {
    COL(gp_row_order_items_t, tenant_id, GP_ROWS_COL_UUID), COL(gp_row_order_items_t, order_id, GP_ROWS_COL_UUID),
    COL(gp_row_order_items_t, line_no, GP_ROWS_COL_INT32), COL(gp_row_order_items_t, menu_item_id, GP_ROWS_COL_UUID),
    COL(gp_row_order_items_t, quantity, GP_ROWS_COL_INT32), COL(gp_row_order_items_t, unit_price_cents, GP_ROWS_COL_INT32),
};
static const gp_rows_col_desc_t orders_cols[] = {
    COL(gp_row_orders_t, tenant_id, GP_ROWS_COL_UUID), COL(gp_row_orders_t, id, GP_ROWS_COL_UUID),
    NCOL(gp_row_orders_t, customer_id, GP_ROWS_COL_UUID), ECOL(gp_row_orders_t, status, order_status_labels),
    COL(gp_row_orders_t, total_cents, GP_ROWS_COL_INT64), NCOL(gp_row_orders_t, note, GP_ROWS_COL_TEXT),
    COL(gp_row_orders_t, placed_at, GP_ROWS_COL_TIMESTAMPTZ), COL(gp_row_orders_t, updated_at, GP_ROWS_COL_TIMESTAMPTZ),
    NCOL(gp_row_orders_t, completed_at, GP_ROWS_COL_TIMESTAMPTZ),
};
static const gp_rows_col_desc_t tenants_cols[] = {
    COL(gp_row_tenants_t, id, GP_ROWS_COL_UUID), COL(gp_row_tenants_t, slug, GP_ROWS_COL_TEXT),
    COL(gp_row_tenants_t, name, GP_ROWS_COL_TEXT), ECOL(gp_row_tenants_t, status, tenant_status_labels),
    COL(gp_row_tenants_t, plan, GP_ROWS_COL_TEXT), COL(gp_row_tenants_t, settings, GP_ROWS_COL_JSONB),
    COL(gp_row_tenants_t, created_at, GP_ROWS_COL_TIMESTAMPTZ), COL(gp_row_tenants_t, updated_at, GP_ROWS_COL_TIMESTAMPTZ),
};
static const gp_rows_col_desc_t users_cols[] = {
    COL(gp_row_users_t, tenant_id, GP_ROWS_COL_UUID), COL(gp_row_users_t, id, GP_ROWS_COL_UUID),
    COL(gp_row_users_t, email, GP_ROWS_COL_TEXT), COL(gp_row_users_t, display_name, GP_ROWS_COL_TEXT),
    ECOL(gp_row_users_t, role, user_role_labels), COL(gp_row_users_t, created_at, GP_ROWS_COL_TIMESTAMPTZ),
    COL(gp_row_users_t, updated_at, GP_ROWS_COL_TIMESTAMPTZ),
};

#define DESC(t, cols, T) {t, cols, (int)(sizeof cols / sizeof cols[0]), sizeof(T)}

/* The generated functions of one table, behind one signature each. */
typedef struct table_api {
    gp_rows_table_desc_t desc;
    const char *columns; /* GP_T_COLUMNS */
    int ncols;           /* GP_T_NCOLS */
    gp_status_t (*bind)(const gp_result_t *r, int *map, gp_error_t *e);
    gp_status_t (*decode)(const gp_result_t *r, const int *map, int row, void *out, gp_error_t *e);
    gp_status_t (*decode_all)(const gp_result_t *r, void **rows, size_t *n, gp_error_t *e);
    void (*free_row)(void *row);
    void (*free_all)(void *rows, size_t n);
} table_api_t;

#define API(T)                                                                                                    \
    static gp_status_t T##_bind(const gp_result_t *r, int *map, gp_error_t *e)                                   \
    {                                                                                                             \
        gp_row_##T##_map_t m;                                                                                     \
        memset(&m, 0, sizeof m);                                                                                  \
        gp_status_t st = gp_row_##T##_bind(r, map ? &m : NULL, e);                                                \
        if (map)                                                                                                  \
            memcpy(map, m.col, sizeof m.col);                                                                     \
        return st;                                                                                                \
    }                                                                                                             \
    static gp_status_t T##_decode(const gp_result_t *r, const int *map, int row, void *out, gp_error_t *e)      \
    {                                                                                                             \
        gp_row_##T##_map_t m;                                                                                     \
        memcpy(m.col, map, sizeof m.col);                                                                         \
        return gp_row_##T##_decode(r, &m, row, out, e);                                                           \
    }                                                                                                             \
    static gp_status_t T##_decode_all(const gp_result_t *r, void **rows, size_t *n, gp_error_t *e)              \
    {                                                                                                             \
        gp_row_##T##_t *x = (gp_row_##T##_t *)(uintptr_t)1;                                                       \
        gp_status_t st = gp_row_##T##_decode_all(r, &x, n, e);                                                    \
        *rows = x;                                                                                                \
        return st;                                                                                                \
    }                                                                                                             \
    static void T##_free_row(void *row) { gp_row_##T##_free(row); }                                               \
    static void T##_free_all(void *rows, size_t n) { gp_row_##T##_free_all(rows, n); }

API(menu_categories)
API(menu_items)
API(order_items)
API(orders)
API(tenants)
API(users)

#define TABLE(T, U, cols)                                                                                         \
    {DESC(#T, cols, gp_row_##T##_t), GP_##U##_COLUMNS, GP_##U##_NCOLS, T##_bind, T##_decode, T##_decode_all,     \
     T##_free_row, T##_free_all}

static const table_api_t tables[] = {
    TABLE(menu_categories, MENU_CATEGORIES, menu_categories_cols), TABLE(menu_items, MENU_ITEMS, menu_items_cols),
    TABLE(order_items, ORDER_ITEMS, order_items_cols), TABLE(orders, ORDERS, orders_cols),
    TABLE(tenants, TENANTS, tenants_cols), TABLE(users, USERS, users_cols),
};
#define NTABLES (sizeof tables / sizeof tables[0])

static gp_type_t kind_type(gp_rows_col_kind_t k)
{
    switch (k) {
    case GP_ROWS_COL_UUID: return GP_TYPE_UUID;
    case GP_ROWS_COL_TEXT: case GP_ROWS_COL_ENUM: return GP_TYPE_TEXT;
    case GP_ROWS_COL_INT16: return GP_TYPE_INT16;
    case GP_ROWS_COL_INT32: return GP_TYPE_INT32;
    case GP_ROWS_COL_INT64: return GP_TYPE_INT64;
    case GP_ROWS_COL_BOOL: return GP_TYPE_BOOL;
    case GP_ROWS_COL_DOUBLE: return GP_TYPE_DOUBLE;
    case GP_ROWS_COL_NUMERIC: return GP_TYPE_NUMERIC;
    case GP_ROWS_COL_TIMESTAMPTZ: return GP_TYPE_TIMESTAMPTZ;
    case GP_ROWS_COL_DATE: return GP_TYPE_DATE;
    case GP_ROWS_COL_JSON: return GP_TYPE_JSON;
    case GP_ROWS_COL_JSONB: return GP_TYPE_JSONB;
    case GP_ROWS_COL_TEXT_ARRAY: return GP_TYPE_TEXT_ARRAY;
    }
    return GP_TYPE_NULL;
}

static int first_col(const char *name)
{
    for (int c = 0; c < in.ncols; c++)
        if (strcmp(in.name[c], name) == 0)
            return c;
    return -1;
}

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* The bind the table should get: GP_OK with map, or the first failure. */
static gp_status_t model_bind(const gp_rows_table_desc_t *t, int *map, int *bad)
{
    for (int i = 0; i < t->ncols; i++) {
        const gp_rows_col_desc_t *c = &t->cols[i];
        *bad = i;
        if ((map[i] = first_col(c->name)) < 0)
            return GP_ERR_NOT_FOUND;
        gp_type_t got = ref_type(in.oid[map[i]]);
        bool own_enum = c->kind == GP_ROWS_COL_ENUM && got == GP_TYPE_NULL && in.oid[map[i]] >= 16384 &&
                        in.format[map[i]] == 1;
        if (got != kind_type(c->kind) && !own_enum)
            return GP_ERR_TYPE;
    }
    return GP_OK;
}

static void check_bind_error(const gp_rows_table_desc_t *t, gp_status_t st, int bad, const gp_error_t *e)
{
    char want[200];
    if (e->status != st)
        fail("%s: bind: err.status %d, returned %d", t->name, (int)e->status, (int)st);
    if (st == GP_ERR_NOT_FOUND) {
        snprintf(want, sizeof want, "%s: the result has no column \"%s\"", t->name, t->cols[bad].name);
        if (strcmp(e->message, want) != 0) {
            fuzz_show_str("message", e->message);
            fail("%s: bind: the message does not name the missing column %s", t->name, t->cols[bad].name);
        }
    } else {
        snprintf(want, sizeof want, "%s.%s: expected ", t->name, t->cols[bad].name);
        if (!starts_with(e->message, want)) {
            fuzz_show_str("message", e->message);
            fail("%s: bind: the message does not name the column %s", t->name, t->cols[bad].name);
        }
    }
}

/* The enum label of a cell: its text (a text column) or its raw bytes. */
static gp_status_t enum_value(const gp_rows_col_desc_t *c, const gp_result_t *r, int row, int col, int *v)
{
    const char *label = in.cell[row][col].v ? in.cell[row][col].v : "";
    size_t len = (size_t)in.cell[row][col].len;
    if (ref_type(in.oid[col]) == GP_TYPE_TEXT) {
        gp_status_t st = gp_get_text(r, row, col, &label, &len);
        if (st != GP_OK)
            return st;
    }
    for (int i = 0; i < c->nlabels; i++)
        if (strlen(c->labels[i]) == len && memcmp(c->labels[i], label, len) == 0) {
            *v = i;
            return GP_OK;
        }
    return GP_ERR_TYPE;
}

/* What a field should hold, from its getter; compares with the decoded
 * field when `field` is not NULL. Returns the getter's status. */
static gp_status_t field_check(const gp_rows_table_desc_t *t, const gp_rows_col_desc_t *c, const gp_result_t *r, int row,
                               int col, const char *base)
{
    const void *f = base ? base + c->offset : NULL;
    gp_status_t st;
    union {
        gp_uuid_t u;
        int16_t i16;
        int32_t i32;
        int64_t i64;
        bool b;
        double d;
        int e;
    } v;
    memset(&v, 0, sizeof v);
    size_t sz = 0;
    switch (c->kind) {
    case GP_ROWS_COL_UUID: st = gp_get_uuid(r, row, col, &v.u), sz = sizeof v.u; break;
    case GP_ROWS_COL_INT16: st = gp_get_int16(r, row, col, &v.i16), sz = sizeof v.i16; break;
    case GP_ROWS_COL_INT32: st = gp_get_int32(r, row, col, &v.i32), sz = sizeof v.i32; break;
    case GP_ROWS_COL_INT64: st = gp_get_int64(r, row, col, &v.i64), sz = sizeof v.i64; break;
    case GP_ROWS_COL_BOOL: st = gp_get_bool(r, row, col, &v.b), sz = sizeof v.b; break;
    case GP_ROWS_COL_DOUBLE: st = gp_get_double(r, row, col, &v.d), sz = sizeof v.d; break;
    case GP_ROWS_COL_TIMESTAMPTZ: st = gp_get_timestamptz(r, row, col, &v.i64), sz = sizeof v.i64; break;
    case GP_ROWS_COL_DATE: st = gp_get_date(r, row, col, &v.i32), sz = sizeof v.i32; break;
    case GP_ROWS_COL_ENUM: st = enum_value(c, r, row, col, &v.e), sz = sizeof v.e; break;
    case GP_ROWS_COL_TEXT: {
        const char *s;
        size_t len;
        st = gp_get_text(r, row, col, &s, &len);
        if (st == GP_OK && f) {
            const char *got = *(char *const *)f;
            if (!got || memcmp(got, s, len) != 0 || got[len] != 0)
                fail("%s.%s (row %d): the decoded text is not the getter's", t->name, c->name, row);
        }
        return st;
    }
    case GP_ROWS_COL_NUMERIC: {
        char *s = NULL;
        st = gp_get_numeric(r, row, col, &s);
        if (st == GP_OK && f && strcmp(*(char *const *)f, s) != 0)
            fail("%s.%s (row %d): the decoded numeric is not the getter's", t->name, c->name, row);
        free(s);
        return st;
    }
    case GP_ROWS_COL_JSON:
    case GP_ROWS_COL_JSONB: {
        json_t *j = NULL;
        st = gp_get_json(r, row, col, &j);
        if (st == GP_OK && f && !json_equal(*(json_t *const *)f, j))
            fail("%s.%s (row %d): the decoded JSON is not the getter's", t->name, c->name, row);
        json_decref(j);
        return st;
    }
    case GP_ROWS_COL_TEXT_ARRAY: {
        char **items = NULL;
        size_t n = 0;
        st = gp_get_text_array(r, row, col, &items, &n);
        if (st == GP_OK && f) {
            char *const *got = *(char **const *)f;
            if (*(const size_t *)(base + c->count_offset) != n)
                fail("%s.%s (row %d): the decoded count is not the getter's", t->name, c->name, row);
            for (size_t i = 0; i < n; i++)
                if ((got[i] == NULL) != (items[i] == NULL) || (got[i] && strcmp(got[i], items[i]) != 0))
                    fail("%s.%s (row %d): decoded item %zu is not the getter's", t->name, c->name, row, i);
        }
        free(items);
        return st;
    }
    default:
        fail("unknown kind %d", (int)c->kind);
    }
    if (st == GP_OK && f && memcmp(f, &v, sz) != 0)
        fail("%s.%s (row %d): the decoded value is not the getter's", t->name, c->name, row);
    return st;
}

/* The decode of row `row` the table should get: GP_OK, or the status and
 * column of the first failure. */
static gp_status_t model_decode(const gp_rows_table_desc_t *t, const gp_result_t *r, const int *map, int row, int *bad)
{
    for (int i = 0; i < t->ncols; i++) {
        const gp_rows_col_desc_t *c = &t->cols[i];
        *bad = i;
        if (in.cell[row][map[i]].null) {
            if (c->nullable)
                continue;
            return GP_ERR_NULL;
        }
        gp_status_t st = field_check(t, c, r, row, map[i], NULL);
        if (st != GP_OK)
            return st;
    }
    return GP_OK;
}

/* A decoded row against the getters. */
static void check_row(const gp_rows_table_desc_t *t, const gp_result_t *r, const int *map, int row, const char *base)
{
    for (int i = 0; i < t->ncols; i++) {
        const gp_rows_col_desc_t *c = &t->cols[i];
        bool isnull = in.cell[row][map[i]].null;
        if (c->nullable && *(const bool *)(base + c->null_offset) != isnull)
            fail("%s.%s (row %d): the NULL flag is wrong", t->name, c->name, row);
        if (!isnull)
            field_check(t, c, r, row, map[i], base);
    }
}

static bool all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void check_decode_error(const gp_rows_table_desc_t *t, gp_status_t st, int row, int bad, const gp_error_t *e)
{
    char want[200];
    snprintf(want, sizeof want, "%s.%s (row %d): ", t->name, t->cols[bad].name, row);
    if (e->status != st || !starts_with(e->message, want) || strlen(e->message) == strlen(want)) {
        fuzz_show_str("message", e->message);
        fail("%s: decode of row %d: the error does not name column %s", t->name, row, t->cols[bad].name);
    }
}

typedef gp_status_t (*bind_fn)(const gp_result_t *, int *, gp_error_t *);

/* One table's decoders on r: bind, decode row by row, decode_all. */
static void check_table(const gp_rows_table_desc_t *t, const table_api_t *api, const gp_result_t *r)
{
    int want_map[MAX_COLS + 1], map[MAX_COLS + 1], bad = 0;
    gp_error_t e;
    gp_status_t want = model_bind(t, want_map, &bad);
    memset(map, 0xff, sizeof map);
    gp_status_t st = api ? api->bind(r, map, &e) : gp_rows_bind(t, r, map, &e);
    if (st != want)
        fail("%s: bind gave %d, expected %d (column %s)", t->name, (int)st, (int)want, t->cols[bad].name);
    int bad_row = -1, bad_col = 0;
    gp_status_t want_all = want;
    if (st != GP_OK) {
        check_bind_error(t, st, bad, &e);
    } else {
        if (memcmp(map, want_map, (size_t)t->ncols * sizeof *map) != 0)
            fail("%s: bind mapped another column", t->name);
        char *row_buf = malloc(t->row_size);
        if (!row_buf)
            abort();
        for (int row = 0; row < in.nrows; row++) {
            int badc = 0;
            gp_status_t w = model_decode(t, r, map, row, &badc);
            memset(row_buf, 0xa5, t->row_size); /* decode clears it first */
            st = api ? api->decode(r, map, row, row_buf, &e) : gp_rows_decode(t, r, map, row, row_buf, &e);
            if (st != w)
                fail("%s: decode of row %d gave %d, expected %d (column %s)", t->name, row, (int)st, (int)w,
                     t->cols[badc].name);
            if (st == GP_OK) {
                check_row(t, r, map, row, row_buf);
                if (api)
                    api->free_row(row_buf);
                else
                    gp_rows_free(t, row_buf);
                if (!all_zero(row_buf, t->row_size))
                    fail("%s: a freed row is not zeroed", t->name);
            } else {
                check_decode_error(t, st, row, badc, &e);
                if (!all_zero(row_buf, t->row_size))
                    fail("%s: a row that failed to decode is not zeroed", t->name);
                if (bad_row < 0)
                    bad_row = row, bad_col = badc, want_all = st;
            }
        }
        free(row_buf);
    }

    void *rows = (void *)(uintptr_t)1;
    size_t n = 12345;
    st = api ? api->decode_all(r, &rows, &n, &e) : gp_rows_decode_all(t, r, &rows, &n, &e);
    if (st != want_all)
        fail("%s: decode_all gave %d, expected %d", t->name, (int)st, (int)want_all);
    if (st != GP_OK) {
        if (rows || n)
            fail("%s: decode_all failed but returned rows", t->name);
        if (bad_row >= 0)
            check_decode_error(t, st, bad_row, bad_col, &e);
        else
            check_bind_error(t, st, bad, &e);
        return;
    }
    if (n != (size_t)in.nrows || (n == 0) != (rows == NULL))
        fail("%s: decode_all: %zu rows, expected %d", t->name, n, in.nrows);
    for (size_t i = 0; i < n; i++)
        check_row(t, r, map, (int)i, (const char *)rows + i * t->row_size);
    if (api)
        api->free_all(rows, n);
    else
        gp_rows_free_all(t, rows, n);
}

/* A table made of the input's columns, one 32-byte slot per column: the
 * value at 0, the count at 16, the NULL flag at 24. */
static gp_rows_col_kind_t natural_kind(Oid oid)
{
    switch (ref_type(oid)) {
    case GP_TYPE_UUID: return GP_ROWS_COL_UUID;
    case GP_TYPE_INT16: return GP_ROWS_COL_INT16;
    case GP_TYPE_INT32: return GP_ROWS_COL_INT32;
    case GP_TYPE_INT64: return GP_ROWS_COL_INT64;
    case GP_TYPE_BOOL: return GP_ROWS_COL_BOOL;
    case GP_TYPE_DOUBLE: return GP_ROWS_COL_DOUBLE;
    case GP_TYPE_NUMERIC: return GP_ROWS_COL_NUMERIC;
    case GP_TYPE_TIMESTAMPTZ: return GP_ROWS_COL_TIMESTAMPTZ;
    case GP_TYPE_DATE: return GP_ROWS_COL_DATE;
    case GP_TYPE_JSON: return GP_ROWS_COL_JSON;
    case GP_TYPE_JSONB: return GP_ROWS_COL_JSONB;
    case GP_TYPE_TEXT_ARRAY: return GP_ROWS_COL_TEXT_ARRAY;
    case GP_TYPE_NULL: return GP_ROWS_COL_ENUM; /* a type of its own */
    default: return GP_ROWS_COL_TEXT;
    }
}

static void check_synth(const gp_result_t *r)
{
    gp_rows_col_desc_t cols[MAX_COLS];
    for (int c = 0; c < in.ncols; c++) {
        uint8_t k = in.kind_byte[c];
        gp_rows_col_kind_t kind = (k & 0x80) ? natural_kind(in.oid[c]) : (gp_rows_col_kind_t)((k & 0x0f) % 14);
        cols[c] = (gp_rows_col_desc_t){in.name[c], kind, (k & 0x40) != 0, (size_t)c * 32, (size_t)c * 32 + 24,
                                   (size_t)c * 32 + 16, kind == GP_ROWS_COL_ENUM ? user_role_labels : NULL,
                                   kind == GP_ROWS_COL_ENUM ? 4 : 0};
    }
    gp_rows_table_desc_t t = {"fz", cols, in.ncols, (size_t)(in.ncols ? in.ncols : 1) * 32};
    check_table(&t, NULL, r);
}

static void check_rows_invalid(const gp_result_t *r)
{
    gp_error_t e;
    int map[MAX_COLS];
    void *rows;
    size_t n;
    char buf[64];
    const gp_rows_table_desc_t *t = &tables[0].desc;
    if (gp_rows_bind(t, NULL, map, &e) != GP_ERR_INVALID || !e.message[0] ||
        gp_rows_bind(t, r, NULL, &e) != GP_ERR_INVALID || gp_rows_decode(t, r, NULL, 0, buf, &e) != GP_ERR_INVALID ||
        gp_rows_decode(t, NULL, map, 0, buf, &e) != GP_ERR_INVALID ||
        gp_rows_decode_all(t, r, NULL, &n, &e) != GP_ERR_INVALID ||
        gp_rows_decode_all(t, r, &rows, NULL, &e) != GP_ERR_INVALID ||
        gp_row_users_decode(r, NULL, 0, &(gp_row_users_t){0}, &e) != GP_ERR_INVALID)
        fail("a row decoder accepts a NULL argument");
    gp_rows_free(t, NULL);
    gp_rows_free_all(t, NULL, 3);
    gp_row_users_free(NULL);
    gp_row_users_free_all(NULL, 2);
}

/* ---- the target ---------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* The mirror of src/rows.c must still be its tables. */
    for (size_t i = 0; i < NTABLES; i++) {
        const table_api_t *a = &tables[i];
        char joined[512] = "";
        for (int c = 0; c < a->desc.ncols; c++)
            snprintf(joined + strlen(joined), sizeof joined - strlen(joined), "%s%s", c ? ", " : "",
                     a->desc.cols[c].name);
        if (a->desc.ncols != a->ncols || strcmp(joined, a->columns) != 0)
            fuzz_fail("fuzz_result.c's description of table %s is out of date (rows.h: %s)", a->desc.name,
                      a->columns);
    }
    for (int i = 0; i < GP_ORDER_STATUS_COUNT_; i++)
        if (strcmp(gp_order_status_label((gp_order_status_t)i), order_status_labels[i]) != 0)
            fuzz_fail("fuzz_result.c's order_status labels are out of date");
    for (int i = 0; i < GP_TENANT_STATUS_COUNT_; i++)
        if (strcmp(gp_tenant_status_label((gp_tenant_status_t)i), tenant_status_labels[i]) != 0)
            fuzz_fail("fuzz_result.c's tenant_status labels are out of date");
    for (int i = 0; i < GP_USER_ROLE_COUNT_; i++)
        if (strcmp(gp_user_role_label((gp_user_role_t)i), user_role_labels[i]) != 0)
            fuzz_fail("fuzz_result.c's user_role labels are out of date");
    if (sizeof order_status_labels / sizeof order_status_labels[0] != GP_ORDER_STATUS_COUNT_ ||
        sizeof tenant_status_labels / sizeof tenant_status_labels[0] != GP_TENANT_STATUS_COUNT_ ||
        sizeof user_role_labels / sizeof user_role_labels[0] != GP_USER_ROLE_COUNT_)
        fuzz_fail("fuzz_result.c's enum labels are out of date");
    fuzz_guard_stdout();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cur_data = data;
    cur_size = size;
    parse(data, size);
    gp_result_t *r = build();
    check_columns(r);
    for (int row = 0; row < in.nrows; row++)
        for (int c = 0; c < in.ncols; c++)
            check_cell(r, row, c);
    for (size_t i = 0; i < NTABLES; i++)
        check_table(&tables[i].desc, &tables[i], r);
    check_synth(r);
    check_rows_invalid(r);
    gp_result_free(r);
    fuzz_check_stdout();
    return 0;
}
