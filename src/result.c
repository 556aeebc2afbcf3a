/* result.c — typed, checked reads from immutable binary-format results.
 *
 * Every getter validates row, column, NULL and the column's type OID before
 * decoding, and checks every length it reads from the wire against the
 * value's size, so a wrong call gives a status, never garbage. Results are
 * always requested in binary format; see the measurement in query.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query_internal.h"

gp_result_t *gp__result_wrap(PGresult *res)
{
    gp_result_t *r = malloc(sizeof *r);
    if (!r) {
        PQclear(res);
        return NULL;
    }
    r->pg = res;
    return r;
}

int64_t gp__result_affected(PGresult *res)
{
    const char *t = PQcmdTuples(res);
    return (t && *t) ? strtoll(t, NULL, 10) : 0;
}

void gp_result_free(gp_result_t *r)
{
    if (!r)
        return;
    PQclear(r->pg);
    free(r);
}

int gp_result_rows(const gp_result_t *r) { return r ? PQntuples(r->pg) : 0; }
int gp_result_columns(const gp_result_t *r) { return r ? PQnfields(r->pg) : 0; }
/* Parsed when asked: most results are read for their rows only. */
int64_t gp_result_affected(const gp_result_t *r) { return r ? gp__result_affected(r->pg) : 0; }

const char *gp_result_column_name(const gp_result_t *r, int col)
{
    if (!r || col < 0 || col >= PQnfields(r->pg))
        return NULL;
    return PQfname(r->pg, col);
}

gp_status_t gp_result_column_index(const gp_result_t *r, const char *name, int *col)
{
    if (!r || !name || !col)
        return GP_ERR_INVALID;
    /* Exact match: PQfnumber would case-fold unquoted names. */
    int n = PQnfields(r->pg);
    for (int i = 0; i < n; i++)
        if (strcmp(PQfname(r->pg, i), name) == 0) {
            *col = i;
            return GP_OK;
        }
    return GP_ERR_NOT_FOUND;
}

int gp_col(const gp_result_t *r, const char *name)
{
    int col;
    return gp_result_column_index(r, name, &col) == GP_OK ? col : -1;
}

gp_type_t gp_result_column_type(const gp_result_t *r, int col)
{
    if (!r || col < 0 || col >= PQnfields(r->pg))
        return GP_TYPE_NULL;
    switch (PQftype(r->pg, col)) {
    case GP__OID_INT2: return GP_TYPE_INT16;
    case GP__OID_INT4: return GP_TYPE_INT32;
    case GP__OID_INT8: return GP_TYPE_INT64;
    case GP__OID_FLOAT4: case GP__OID_FLOAT8: return GP_TYPE_DOUBLE;
    case GP__OID_BOOL: return GP_TYPE_BOOL;
    case GP__OID_TEXT: case GP__OID_VARCHAR: case GP__OID_BPCHAR: case GP__OID_NAME: return GP_TYPE_TEXT;
    case GP__OID_UUID: return GP_TYPE_UUID;
    case GP__OID_TIMESTAMPTZ: return GP_TYPE_TIMESTAMPTZ;
    case GP__OID_DATE: return GP_TYPE_DATE;
    case GP__OID_NUMERIC: return GP_TYPE_NUMERIC;
    case GP__OID_JSON: return GP_TYPE_JSON;
    case GP__OID_JSONB: return GP_TYPE_JSONB;
    case GP__OID_BYTEA: return GP_TYPE_BYTEA;
    case GP__OID_TEXT_ARRAY: case GP__OID_VARCHAR_ARRAY: case GP__OID_BPCHAR_ARRAY: case GP__OID_NAME_ARRAY:
        return GP_TYPE_TEXT_ARRAY;
    case GP__OID_INT2_ARRAY: case GP__OID_INT4_ARRAY: case GP__OID_INT8_ARRAY: return GP_TYPE_INT_ARRAY;
    default: return GP_TYPE_NULL;
    }
}

/* The checks shared by every getter; on success *v / *len are the raw
 * binary value and *oid the column's type. */
static gp_status_t cell(const gp_result_t *r, int row, int col, const void *out, Oid *oid, const char **v,
                        int *len)
{
    if (!r || !out)
        return GP_ERR_INVALID;
    if (col < 0)
        return GP_ERR_NOT_FOUND;
    if (row < 0 || row >= PQntuples(r->pg) || col >= PQnfields(r->pg))
        return GP_ERR_RANGE;
    if (PQgetisnull(r->pg, row, col))
        return GP_ERR_NULL;
    *oid = PQftype(r->pg, col);
    *v = PQgetvalue(r->pg, row, col);
    *len = PQgetlength(r->pg, row, col);
    return GP_OK;
}

static uint16_t get16(const char *p) { const unsigned char *u = (const unsigned char *)p; return (uint16_t)(u[0] << 8 | u[1]); }
static uint32_t get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}
static uint64_t get64(const char *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

/* An integer column of any width, widened to int64; false if not one. */
static bool int_value(Oid oid, const char *v, int len, int64_t *out)
{
    if (oid == GP__OID_INT2 && len == 2) *out = (int16_t)get16(v);
    else if (oid == GP__OID_INT4 && len == 4) *out = (int32_t)get32(v);
    else if (oid == GP__OID_INT8 && len == 8) *out = (int64_t)get64(v);
    else return false;
    return true;
}

gp_status_t gp_get_is_null(const gp_result_t *r, int row, int col, bool *is_null)
{
    Oid oid;
    const char *v;
    int len;
    gp_status_t st = cell(r, row, col, is_null, &oid, &v, &len);
    if (st == GP_ERR_NULL) {
        *is_null = true;
        return GP_OK;
    }
    if (st == GP_OK)
        *is_null = false;
    return st;
}

gp_status_t gp_get_int16(const gp_result_t *r, int row, int col, int16_t *out)
{
    Oid oid; const char *v; int len; int64_t x;
    gp_status_t st = cell(r, row, col, out, &oid, &v, &len);
    if (st != GP_OK) return st;
    if (oid != GP__OID_INT2 || !int_value(oid, v, len, &x)) return GP_ERR_TYPE;
    *out = (int16_t)x;
    return GP_OK;
}

gp_status_t gp_get_int32(const gp_result_t *r, int row, int col, int32_t *out)
{
    Oid oid; const char *v; int len; int64_t x;
    gp_status_t st = cell(r, row, col, out, &oid, &v, &len);
    if (st != GP_OK) return st;
    if (oid == GP__OID_INT8 || !int_value(oid, v, len, &x)) return GP_ERR_TYPE;
    *out = (int32_t)x;
    return GP_OK;
}

gp_status_t gp_get_int64(const gp_result_t *r, int row, int col, int64_t *out)
{
    Oid oid; const char *v; int len; int64_t x;
    gp_status_t st = cell(r, row, col, out, &oid, &v, &len);
    if (st != GP_OK) return st;
    if (!int_value(oid, v, len, &x)) return GP_ERR_TYPE;
    *out = x;
    return GP_OK;
}

gp_status_t gp_get_double(const gp_result_t *r, int row, int col, double *out)
{
    Oid oid; const char *v; int len;
    gp_status_t st = cell(r, row, col, out, &oid, &v, &len);
    if (st != GP_OK) return st;
    if (oid == GP__OID_FLOAT8 && len == 8) {
        uint64_t b = get64(v);
        memcpy(out, &b, 8);
    } else if (oid == GP__OID_FLOAT4 && len == 4) {
        uint32_t b = get32(v);
        float f;
        memcpy(&f, &b, 4);
        *out = f;
    } else {
        return GP_ERR_TYPE;
    }
    return GP_OK;
}

gp_status_t gp_get_bool(const gp_result_t *r, int row, int col, bool *out)
{
    Oid oid; const char *v; int len;
    gp_status_t st = cell(r, row, col, out, &oid, &v, &len);
    if (st != GP_OK) return st;
    if (oid != GP__OID_BOOL || len != 1) return GP_ERR_TYPE;
    *out = v[0] != 0;
    return GP_OK;
}

gp_status_t gp_get_text(const gp_result_t *r, int row, int col, const char **out, size_t *outlen)
{
    Oid oid; const char *v; int len;
    gp_status_t st = cell(r, row, col, out, &oid, &v, &len);
    if (st != GP_OK) return st;
    if (oid != GP__OID_TEXT && oid != GP__OID_VARCHAR && oid != GP__OID_BPCHAR && oid != GP__OID_NAME)
        return GP_ERR_TYPE;
    *out = v; /* libpq NUL-terminates every value */
    if (outlen)
        *outlen = (size_t)len;
    return GP_OK;
}

gp_status_t gp_get_uuid(const gp_result_t *r, int row, int col, gp_uuid_t *out)
{
    Oid oid; const char *v; int len;
    gp_status_t st = cell(r, row, col, out, &oid, &v, &len);
    if (st != GP_OK) return st;
    if (oid != GP__OID_UUID || len != 16) return GP_ERR_TYPE;
    memcpy(out->bytes, v, 16);
    return GP_OK;
}

gp_status_t gp_get_timestamptz(const gp_result_t *r, int row, int col, int64_t *unix_us)
{
    Oid oid; const char *v; int len;
    gp_status_t st = cell(r, row, col, unix_us, &oid, &v, &len);
    if (st != GP_OK) return st;
    if (oid != GP__OID_TIMESTAMPTZ || len != 8) return GP_ERR_TYPE;
    int64_t t = (int64_t)get64(v);
    if (t != INT64_MAX && t != INT64_MIN) {
        if (t > INT64_MAX - GP__PG_EPOCH_US)
            return GP_ERR_RANGE;
        t += GP__PG_EPOCH_US;
    }
    *unix_us = t;
    return GP_OK;
}

gp_status_t gp_get_date(const gp_result_t *r, int row, int col, int32_t *days)
{
    Oid oid; const char *v; int len;
    gp_status_t st = cell(r, row, col, days, &oid, &v, &len);
    if (st != GP_OK) return st;
    if (oid != GP__OID_DATE || len != 4) return GP_ERR_TYPE;
    int32_t d = (int32_t)get32(v);
    if (d != INT32_MAX && d != INT32_MIN) {
        if (d > INT32_MAX - GP__PG_EPOCH_DAYS)
            return GP_ERR_RANGE;
        d += GP__PG_EPOCH_DAYS;
    }
    *days = d;
    return GP_OK;
}

/* PostgreSQL's binary numeric: ndigits, weight, sign, dscale (int16 each),
 * then ndigits base-10000 digits, most significant first; the value is
 * sum(digit[i] * 10000^(weight - i)), printed with dscale decimals. */
static gp_status_t numeric_to_text(const char *v, int len, char **out)
{
    if (len < 8)
        return GP_ERR_TYPE;
    int ndigits = (int16_t)get16(v), weight = (int16_t)get16(v + 2), dscale = (int16_t)get16(v + 6);
    uint16_t sign = get16(v + 4);
    if (ndigits < 0 || dscale < 0 || len != 8 + 2 * ndigits)
        return GP_ERR_TYPE;
    const char *special = sign == 0xC000 ? "NaN" : sign == 0xD000 ? "Infinity" : sign == 0xF000 ? "-Infinity" : NULL;
    if (special) {
        *out = strdup(special);
        return *out ? GP_OK : GP_ERR_NOMEM;
    }
    if (sign != 0 && sign != 0x4000)
        return GP_ERR_TYPE;
    size_t cap = 2 + (size_t)(weight >= 0 ? weight + 1 : 1) * 4 + 1 + (size_t)dscale + 4 + 1;
    char *s = malloc(cap), *p = s;
    if (!s)
        return GP_ERR_NOMEM;
    if (sign == 0x4000)
        *p++ = '-';
#define DIGIT(i) ((i) >= 0 && (i) < ndigits ? (int)get16(v + 8 + 2 * (i)) : 0)
    if (weight < 0) {
        *p++ = '0';
    } else {
        for (int i = 0; i <= weight; i++) {
            int d = DIGIT(i);
            if (d > 9999) { free(s); return GP_ERR_TYPE; }
            p += i == 0 ? sprintf(p, "%d", d) : sprintf(p, "%04d", d);
        }
    }
    if (dscale > 0) {
        *p++ = '.';
        char *frac = p;
        for (int i = weight + 1; p - frac < dscale; i++) {
            int d = DIGIT(i);
            if (d > 9999) { free(s); return GP_ERR_TYPE; }
            p += sprintf(p, "%04d", d);
        }
        p = frac + dscale;
    }
#undef DIGIT
    *p = 0;
    *out = s;
    return GP_OK;
}

gp_status_t gp_get_numeric(const gp_result_t *r, int row, int col, char **out)
{
    Oid oid; const char *v; int len; int64_t x;
    gp_status_t st = cell(r, row, col, out, &oid, &v, &len);
    if (st != GP_OK) return st;
    if (int_value(oid, v, len, &x)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRId64, x);
        *out = strdup(buf);
        return *out ? GP_OK : GP_ERR_NOMEM;
    }
    if (oid != GP__OID_NUMERIC) return GP_ERR_TYPE;
    return numeric_to_text(v, len, out);
}

gp_status_t gp_get_json(const gp_result_t *r, int row, int col, json_t **out)
{
    Oid oid; const char *v; int len;
    gp_status_t st = cell(r, row, col, out, &oid, &v, &len);
    if (st != GP_OK) return st;
    if (oid == GP__OID_JSONB) {
        if (len < 1 || v[0] != 1) /* version 1 of jsonb's binary form */
            return GP_ERR_TYPE;
        v++;
        len--;
    } else if (oid != GP__OID_JSON) {
        return GP_ERR_TYPE;
    }
    json_error_t jerr;
    json_t *j = json_loadb(v, (size_t)len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!j)
        return GP_ERR_TYPE; /* the server sent valid JSON: this is out of memory or a jansson limit */
    *out = j;
    return GP_OK;
}

gp_status_t gp_get_bytea(const gp_result_t *r, int row, int col, const uint8_t **data, size_t *outlen)
{
    Oid oid; const char *v; int len;
    if (!outlen)
        return GP_ERR_INVALID;
    gp_status_t st = cell(r, row, col, data, &oid, &v, &len);
    if (st != GP_OK) return st;
    if (oid != GP__OID_BYTEA) return GP_ERR_TYPE;
    *data = len ? (const uint8_t *)v : NULL;
    *outlen = (size_t)len;
    return GP_OK;
}

/* A one-dimensional binary array: *n elements starting at *elems, each an
 * int32 length (-1 = NULL) and the bytes. Checks every length. */
static gp_status_t array_elems(const char *v, int len, Oid want_elem1, Oid want_elem2, Oid want_elem3,
                               const char **elems, size_t *n, Oid *elem)
{
    if (len < 12)
        return GP_ERR_TYPE;
    int32_t ndim = (int32_t)get32(v);
    *elem = get32(v + 8);
    if (*elem != want_elem1 && *elem != want_elem2 && *elem != want_elem3)
        return GP_ERR_TYPE;
    if (ndim == 0) {
        *n = 0;
        *elems = v + 12;
        return GP_OK;
    }
    if (ndim != 1 || len < 20)
        return GP_ERR_TYPE;
    int32_t dim = (int32_t)get32(v + 12);
    if (dim < 0)
        return GP_ERR_TYPE;
    const char *p = v + 20, *end = v + len;
    for (int32_t i = 0; i < dim; i++) {
        if (end - p < 4)
            return GP_ERR_TYPE;
        int32_t l = (int32_t)get32(p);
        p += 4;
        if (l >= 0) {
            if (end - p < l)
                return GP_ERR_TYPE;
            p += l;
        }
    }
    *n = (size_t)dim;
    *elems = v + 20;
    return GP_OK;
}

gp_status_t gp_get_text_array(const gp_result_t *r, int row, int col, char ***items, size_t *n)
{
    Oid oid, elem; const char *v, *p; int len; size_t count;
    if (!n)
        return GP_ERR_INVALID;
    gp_status_t st = cell(r, row, col, items, &oid, &v, &len);
    if (st != GP_OK) return st;
    if (gp_result_column_type(r, col) != GP_TYPE_TEXT_ARRAY) return GP_ERR_TYPE;
    st = array_elems(v, len, GP__OID_TEXT, GP__OID_VARCHAR, oid == GP__OID_NAME_ARRAY ? GP__OID_NAME : GP__OID_BPCHAR,
                     &p, &count, &elem);
    if (st != GP_OK) return st;
    /* One block: count+1 pointers, then the NUL-terminated strings (the
     * array's bytes bound their total size). */
    char **block = malloc((count + 1) * sizeof(char *) + (size_t)len + 1);
    if (!block)
        return GP_ERR_NOMEM;
    char *s = (char *)(block + count + 1);
    for (size_t i = 0; i < count; i++) {
        int32_t l = (int32_t)get32(p);
        p += 4;
        if (l < 0) {
            block[i] = NULL;
            continue;
        }
        memcpy(s, p, (size_t)l);
        s[l] = 0;
        block[i] = s;
        s += l + 1;
        p += l;
    }
    block[count] = NULL;
    *items = block;
    *n = count;
    return GP_OK;
}

gp_status_t gp_get_int_array(const gp_result_t *r, int row, int col, int64_t **items, size_t *n)
{
    Oid oid, elem; const char *v, *p; int len; size_t count;
    if (!n)
        return GP_ERR_INVALID;
    gp_status_t st = cell(r, row, col, items, &oid, &v, &len);
    if (st != GP_OK) return st;
    if (gp_result_column_type(r, col) != GP_TYPE_INT_ARRAY) return GP_ERR_TYPE;
    st = array_elems(v, len, GP__OID_INT2, GP__OID_INT4, GP__OID_INT8, &p, &count, &elem);
    if (st != GP_OK) return st;
    int64_t *out = count ? malloc(count * sizeof *out) : NULL;
    if (count && !out)
        return GP_ERR_NOMEM;
    for (size_t i = 0; i < count; i++) {
        int32_t l = (int32_t)get32(p);
        p += 4;
        if (l < 0) {
            free(out);
            return GP_ERR_NULL;
        }
        if (!int_value(elem, p, l, &out[i])) {
            free(out);
            return GP_ERR_TYPE;
        }
        p += l;
    }
    *items = out;
    *n = count;
    return GP_OK;
}
