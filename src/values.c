/* values.c — typed parameters: validation and wire encoding (binary where
 * the type has a fixed binary form, text otherwise), plus the small value
 * helpers of types.h (UUIDs, calendar dates). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query_internal.h"

static const char *const type_names[GP_TYPE_COUNT_] = {
    [GP_TYPE_NULL] = "null",          [GP_TYPE_INT16] = "int16",          [GP_TYPE_INT32] = "int32",
    [GP_TYPE_INT64] = "int64",        [GP_TYPE_DOUBLE] = "double",        [GP_TYPE_BOOL] = "bool",
    [GP_TYPE_TEXT] = "text",          [GP_TYPE_UUID] = "uuid",            [GP_TYPE_TIMESTAMPTZ] = "timestamptz",
    [GP_TYPE_DATE] = "date",          [GP_TYPE_NUMERIC] = "numeric",      [GP_TYPE_JSON] = "json",
    [GP_TYPE_JSONB] = "jsonb",        [GP_TYPE_BYTEA] = "bytea",          [GP_TYPE_TEXT_ARRAY] = "text[]",
    [GP_TYPE_INT_ARRAY] = "int64[]",
};

const char *gp_type_name(gp_type_t type)
{
    if ((int)type < 0 || type >= GP_TYPE_COUNT_)
        return "unknown";
    return type_names[type];
}

gp_status_t gp__client_error(gp_error_t *err, gp_status_t status, const char *fmt, ...)
{
    if (err) {
        gp_error_clear(err);
        err->status = status;
        err->klass = GP_ECLASS_CLIENT;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* ---- UUIDs and dates ------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

gp_status_t gp_uuid_parse(const char *text, gp_uuid_t *out)
{
    if (!text || !out)
        return GP_ERR_INVALID;
    const char *p = text;
    bool brace = *p == '{';
    if (brace)
        p++;
    gp_uuid_t u;
    for (int i = 0; i < 16; i++) {
        /* PostgreSQL accepts a hyphen after any group of four hex digits. */
        if (i > 0 && i % 2 == 0 && *p == '-')
            p++;
        int hi = hexval((unsigned char)p[0]), lo = hi < 0 ? -1 : hexval((unsigned char)p[1]);
        if (hi < 0 || lo < 0)
            return GP_ERR_INVALID;
        u.bytes[i] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    if (brace && *p++ != '}')
        return GP_ERR_INVALID;
    if (*p)
        return GP_ERR_INVALID;
    *out = u;
    return GP_OK;
}

char *gp_uuid_format(const gp_uuid_t *uuid, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[uuid->bytes[i] >> 4];
        *o++ = hex[uuid->bytes[i] & 15];
    }
    *o = 0;
    return out;
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
gp_status_t gp_date_from_ymd(int y, int m, int d, int32_t *days)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!days || m < 1 || m > 12 || d < 1 || y < -5877000 || y > 5874000)
        return GP_ERR_RANGE;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] + (m == 2 && leap))
        return GP_ERR_RANGE;
    int64_t yy = y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *days = (int32_t)(era * 146097 + doe - 719468);
    return GP_OK;
}

void gp_date_to_ymd(int32_t days, int *year, int *month, int *day)
{
    int64_t z = (int64_t)days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (year) *year = (int)(y + (m <= 2));
    if (month) *month = (int)m;
    if (day) *day = (int)d;
}

/* ---- validation ---------------------------------------------------------------- */


static bool numeric_text_ok(const char *s, size_t len)
{
    const char *e = s + len;
    while (s < e && *s == ' ')
        s++;
    while (e > s && e[-1] == ' ')
        e--;
    size_t n = (size_t)(e - s);
    if ((n == 3 && strncasecmp(s, "NaN", 3) == 0))
        return true;
    const char *p = s;
    if (p < e && (*p == '+' || *p == '-'))
        p++;
    if ((size_t)(e - p) == 8 && strncasecmp(p, "Infinity", 8) == 0)
        return true;
    size_t digits = 0;
    while (p < e && *p >= '0' && *p <= '9')
        p++, digits++;
    if (p < e && *p == '.') {
        p++;
        while (p < e && *p >= '0' && *p <= '9')
            p++, digits++;
    }
    if (digits == 0)
        return false;
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        size_t ed = 0;
        while (p < e && *p >= '0' && *p <= '9')
            p++, ed++;
        if (ed == 0)
            return false;
    }
    return p == e;
}

/* ---- encoding ------------------------------------------------------------------ */

static void put32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24); p[1] = (char)(v >> 16); p[2] = (char)(v >> 8); p[3] = (char)v;
}
static void put64(char *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

#define MAX_PARAM_LEN ((size_t)0x3FFFFFFF) /* PostgreSQL's 1 GB field limit */

/* Bytes of scratch storage parameter v needs (checked first, so that the
 * second pass cannot fail except for JSON serialisation). */
static gp_status_t measure(const gp_value_t *v, int i, bool copy, size_t *need, gp_error_t *err)
{
    *need = 0;
    switch (v->type) {
    case GP_TYPE_NULL:
        return GP_OK;
    case GP_TYPE_INT16: case GP_TYPE_INT32: case GP_TYPE_INT64: case GP_TYPE_DOUBLE: case GP_TYPE_BOOL:
        *need = 8;
        return GP_OK;
    case GP_TYPE_TIMESTAMPTZ:
        if (v->u.i != INT64_MAX && v->u.i != INT64_MIN && v->u.i < INT64_MIN + GP__PG_EPOCH_US)
            return gp__client_error(err, GP_ERR_INVALID, "$%d: timestamptz %lld is out of range", i + 1,
                                    (long long)v->u.i);
        *need = 8;
        return GP_OK;
    case GP_TYPE_DATE:
        if (v->u.i != INT32_MAX && v->u.i != INT32_MIN &&
            (v->u.i < (int64_t)INT32_MIN + GP__PG_EPOCH_DAYS || v->u.i > INT32_MAX))
            return gp__client_error(err, GP_ERR_INVALID, "$%d: date %lld is out of range", i + 1, (long long)v->u.i);
        *need = 8;
        return GP_OK;
    case GP_TYPE_UUID:
        if (v->flags & GP_VALUE_F_UUID_TEXT) {
            gp_uuid_t u;
            if (!v->u.uuid_text || gp_uuid_parse(v->u.uuid_text, &u) != GP_OK)
                return gp__client_error(err, GP_ERR_INVALID, "$%d: not a valid UUID (expected "
                                        "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", i + 1);
        }
        *need = 16;
        return GP_OK;
    case GP_TYPE_TEXT:
    case GP_TYPE_NUMERIC: {
        if (!v->u.s.ptr || v->u.s.len > MAX_PARAM_LEN)
            return gp__client_error(err, GP_ERR_INVALID, "$%d: %s value is NULL or too long", i + 1,
                                    gp_type_name(v->type));
        long bad = gp__utf8_invalid_at((const unsigned char *)v->u.s.ptr, v->u.s.len);
        if (bad >= 0)
            return gp__client_error(err, GP_ERR_INVALID, "$%d: %s at byte %ld (text must be UTF-8 without NUL)",
                                    i + 1, v->u.s.ptr[bad] ? "invalid UTF-8" : "embedded NUL", bad);
        if (v->type == GP_TYPE_NUMERIC && !numeric_text_ok(v->u.s.ptr, v->u.s.len))
            return gp__client_error(err, GP_ERR_INVALID, "$%d: not a valid numeric (expected e.g. -12.50, 1e-3, "
                                    "NaN or Infinity)", i + 1);
        if (copy || !(v->flags & GP_VALUE_F_TERMINATED))
            *need = v->u.s.len + 1;
        return GP_OK;
    }
    case GP_TYPE_JSON: case GP_TYPE_JSONB: {
        if (!v->u.json)
            return gp__client_error(err, GP_ERR_INVALID, "$%d: json value is NULL (use gp_null())", i + 1);
        size_t n = json_dumpb(v->u.json, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
        if (n == 0 || n > MAX_PARAM_LEN)
            return gp__client_error(err, GP_ERR_INVALID, "$%d: json value cannot be serialised", i + 1);
        *need = n + 1;
        return GP_OK;
    }
    case GP_TYPE_BYTEA:
        if ((!v->u.bytes.ptr && v->u.bytes.len) || v->u.bytes.len > MAX_PARAM_LEN)
            return gp__client_error(err, GP_ERR_INVALID, "$%d: bytea pointer is NULL or the value is too long",
                                    i + 1);
        *need = copy ? v->u.bytes.len : 0;
        return GP_OK;
    case GP_TYPE_TEXT_ARRAY: {
        if (!v->u.texts.items && v->u.texts.n)
            return gp__client_error(err, GP_ERR_INVALID, "$%d: text[] items pointer is NULL", i + 1);
        size_t n = 20;
        for (size_t k = 0; k < v->u.texts.n; k++) {
            const char *s = v->u.texts.items[k];
            size_t l = s ? strlen(s) : 0;
            long bad = s ? gp__utf8_invalid_at((const unsigned char *)s, l) : -1;
            if (bad >= 0)
                return gp__client_error(err, GP_ERR_INVALID, "$%d: element %zu: invalid UTF-8 at byte %ld", i + 1,
                                        k, bad);
            n += 4 + l;
            if (n > MAX_PARAM_LEN)
                return gp__client_error(err, GP_ERR_INVALID, "$%d: text[] value is too long", i + 1);
        }
        *need = n;
        return GP_OK;
    }
    case GP_TYPE_INT_ARRAY:
        if ((!v->u.ints.items && v->u.ints.n) || v->u.ints.n > MAX_PARAM_LEN / 12)
            return gp__client_error(err, GP_ERR_INVALID, "$%d: int64[] items pointer is NULL or too many items",
                                    i + 1);
        *need = 20 + 12 * v->u.ints.n;
        return GP_OK;
    case GP_TYPE_COUNT_:
        break;
    }
    return gp__client_error(err, GP_ERR_INVALID, "$%d: unknown parameter type %d", i + 1, (int)v->type);
}

/* Array header: ndim, has-nulls flag, element type, and for one dimension
 * its length and lower bound 1. Returns the header size. */
static size_t array_header(char *p, size_t n, bool has_null, Oid elem)
{
    put32(p, n ? 1 : 0);
    put32(p + 4, has_null ? 1 : 0);
    put32(p + 8, elem);
    if (!n)
        return 12;
    put32(p + 12, (uint32_t)n);
    put32(p + 16, 1);
    return 20;
}

/* Encode v into the slot i; `scratch` has the room measure() asked for. */
static void encode(const gp_value_t *v, char *scratch, size_t room, Oid *type, const char **value, int *length, int *format)
{
    *format = 1;
    *value = scratch;
    switch (v->type) {
    case GP_TYPE_NULL:
        *type = 0; *value = NULL; *length = 0; *format = 0;
        return;
    case GP_TYPE_INT16:
        *type = GP__OID_INT2; *length = 2;
        scratch[0] = (char)((uint16_t)v->u.i >> 8); scratch[1] = (char)(uint16_t)v->u.i;
        return;
    case GP_TYPE_INT32:
        *type = GP__OID_INT4; *length = 4; put32(scratch, (uint32_t)v->u.i);
        return;
    case GP_TYPE_INT64:
        *type = GP__OID_INT8; *length = 8; put64(scratch, (uint64_t)v->u.i);
        return;
    case GP_TYPE_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->u.d, 8);
        *type = GP__OID_FLOAT8; *length = 8; put64(scratch, bits);
        return;
    }
    case GP_TYPE_BOOL:
        *type = GP__OID_BOOL; *length = 1; scratch[0] = v->u.b ? 1 : 0;
        return;
    case GP_TYPE_TIMESTAMPTZ: {
        int64_t t = v->u.i;
        if (t != INT64_MAX && t != INT64_MIN)
            t -= GP__PG_EPOCH_US;
        *type = GP__OID_TIMESTAMPTZ; *length = 8; put64(scratch, (uint64_t)t);
        return;
    }
    case GP_TYPE_DATE: {
        int64_t d = v->u.i;
        if (d != INT32_MAX && d != INT32_MIN)
            d -= GP__PG_EPOCH_DAYS;
        *type = GP__OID_DATE; *length = 4; put32(scratch, (uint32_t)(int32_t)d);
        return;
    }
    case GP_TYPE_UUID:
        *type = GP__OID_UUID; *length = 16;
        if (v->flags & GP_VALUE_F_UUID_TEXT) {
            gp_uuid_t u;
            gp_uuid_parse(v->u.uuid_text, &u); /* validated by measure() */
            memcpy(scratch, u.bytes, 16);
        } else {
            memcpy(scratch, v->u.uuid.bytes, 16);
        }
        return;
    case GP_TYPE_TEXT:
    case GP_TYPE_NUMERIC:
        /* Text format. Text goes untyped (OID 0) so that the server infers
         * the parameter's type from its use (varchar, enum, citext...). */
        *type = v->type == GP_TYPE_NUMERIC ? GP__OID_NUMERIC : 0;
        *format = 0;
        *length = (int)v->u.s.len;
        if (scratch) {
            memcpy(scratch, v->u.s.ptr, v->u.s.len);
            scratch[v->u.s.len] = 0;
        } else {
            *value = v->u.s.ptr;
        }
        return;
    case GP_TYPE_JSON:
    case GP_TYPE_JSONB: {
        /* Text format: jsonb's binary form is a version byte plus this text. */
        size_t n = json_dumpb(v->u.json, scratch, room - 1, JSON_COMPACT | JSON_ENCODE_ANY);
        if (n >= room)
            n = room - 1; /* cannot happen: measured just before */
        scratch[n] = 0;
        *type = v->type == GP_TYPE_JSON ? GP__OID_JSON : GP__OID_JSONB;
        *format = 0;
        *length = (int)n;
        return;
    }
    case GP_TYPE_BYTEA:
        *type = GP__OID_BYTEA;
        *length = (int)v->u.bytes.len;
        if (scratch)
            memcpy(scratch, v->u.bytes.ptr, v->u.bytes.len);
        else
            *value = v->u.bytes.len ? v->u.bytes.ptr : "";
        return;
    case GP_TYPE_TEXT_ARRAY: {
        bool has_null = false;
        for (size_t k = 0; k < v->u.texts.n; k++)
            has_null |= v->u.texts.items[k] == NULL;
        char *p = scratch + array_header(scratch, v->u.texts.n, has_null, GP__OID_TEXT);
        for (size_t k = 0; k < v->u.texts.n; k++) {
            const char *s = v->u.texts.items[k];
            if (!s) {
                put32(p, UINT32_MAX);
                p += 4;
                continue;
            }
            size_t l = strlen(s);
            put32(p, (uint32_t)l);
            memcpy(p + 4, s, l);
            p += 4 + l;
        }
        *type = GP__OID_TEXT_ARRAY;
        *length = (int)(p - scratch);
        return;
    }
    case GP_TYPE_INT_ARRAY: {
        char *p = scratch + array_header(scratch, v->u.ints.n, false, GP__OID_INT8);
        for (size_t k = 0; k < v->u.ints.n; k++) {
            put32(p, 8);
            put64(p + 4, (uint64_t)v->u.ints.items[k]);
            p += 12;
        }
        *type = GP__OID_INT8_ARRAY;
        *length = (int)(p - scratch);
        return;
    }
    case GP_TYPE_COUNT_:
        break;
    }
}

gp_status_t gp__params_encode(gp__params_t *out, int n, const gp_value_t *params, bool copy, gp_error_t *err)
{
    out->n = 0;
    out->heap = NULL;
    out->types = NULL;
    out->values = NULL;
    out->lengths = NULL;
    out->formats = NULL;
    if (n < 0 || n > 65535 || (n > 0 && !params))
        return gp__client_error(err, GP_ERR_INVALID, "invalid parameter count %d (0..65535, params non-NULL)", n);
    if (n == 0)
        return GP_OK;
    size_t need[GP__INLINE_PARAMS], total = 0;
    for (int i = 0; i < n; i++) {
        size_t k;
        gp_status_t st = measure(&params[i], i, copy, &k, err);
        if (st != GP_OK)
            return st;
        if (i < GP__INLINE_PARAMS)
            need[i] = k;
        total += (k + 7) & ~(size_t)7;
    }
    char *scratch;
    if (!copy && n <= GP__INLINE_PARAMS && total <= sizeof out->scratch_i) {
        out->types = out->types_i;
        out->values = out->values_i;
        out->lengths = out->lengths_i;
        out->formats = out->formats_i;
        scratch = out->scratch_i;
    } else {
        size_t arrays = (size_t)n * (sizeof(Oid) + sizeof(char *) + 2 * sizeof(int));
        arrays = (arrays + 7) & ~(size_t)7;
        char *block = malloc(arrays + total + 1);
        if (!block)
            return gp__client_error(err, GP_ERR_NOMEM, "out of memory encoding %d parameters", n);
        out->heap = block;
        out->values = (const char **)(void *)block;
        out->types = (Oid *)(void *)(block + (size_t)n * sizeof(char *));
        out->lengths = (int *)(void *)((char *)out->types + (size_t)n * sizeof(Oid));
        out->formats = out->lengths + n;
        scratch = block + arrays;
    }
    for (int i = 0; i < n; i++) {
        size_t k;
        if (i < GP__INLINE_PARAMS)
            k = need[i];
        else
            measure(&params[i], i, copy, &k, NULL); /* cheap; validated above */
        encode(&params[i], k ? scratch : NULL, k, &out->types[i], &out->values[i], &out->lengths[i],
               &out->formats[i]);
        scratch += (k + 7) & ~(size_t)7;
    }
    out->n = n;
    return GP_OK;
}

void gp__params_free(gp__params_t *p)
{
    if (!p)
        return;
    free(p->heap);
    p->heap = NULL;
    p->n = 0;
}
