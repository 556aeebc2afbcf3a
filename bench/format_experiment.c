/* format_experiment.c — the measurement behind the query layer's choice of
 * binary result format (see the comment at the top of src/query.c and
 * BENCHMARKS.md, "Queries"). Fetches the same rows of typical columns in
 * text and in binary format with plain libpq and decodes every value into
 * C types the way an application needs them; prints the median time of
 * each. Run with scripts/format-experiment. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

static const char *SQL =
    "SELECT i::int8, i * 1.5::float8, timestamptz '2024-01-01 00:00:00+00' + i * interval '1.5 s', "
    "md5(i::text)::uuid, (i * 1.25)::numeric(14,2), 'name-' || i, decode(repeat('ab', 64), 'hex') "
    "FROM generate_series(1, $1::int) i";

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t be64(const char *p)
{
    uint32_t hi, lo;
    memcpy(&hi, p, 4);
    memcpy(&lo, p + 4, 4);
    return (uint64_t)ntohl(hi) << 32 | ntohl(lo);
}

static volatile uint64_t sink;

static void decode_text(PGresult *r)
{
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t a = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        double d = strtod(PQgetvalue(r, i, 1), NULL);
        int y, mo, da, h, mi, s, us = 0, tz = 0;
        sscanf(PQgetvalue(r, i, 2), "%d-%d-%d %d:%d:%d.%d%d", &y, &mo, &da, &h, &mi, &s, &us, &tz);
        unsigned char u[16];
        const char *t = PQgetvalue(r, i, 3);
        for (int k = 0, j = 0; k < 16; j++)
            if (t[j] != '-') {
                sscanf(t + j, "%2hhx", &u[k++]);
                j++;
            }
        char *num = strdup(PQgetvalue(r, i, 4));
        const char *name = PQgetvalue(r, i, 5);
        size_t blen;
        unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 6), &blen);
        sink += (uint64_t)a + (uint64_t)d + (uint64_t)(y + us + tz) + u[3] + (uint64_t)num[0] + (uint64_t)name[0] + b[blen - 1];
        free(num);
        PQfreemem(b);
    }
}

static void decode_binary(PGresult *r)
{
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t a = (int64_t)be64(PQgetvalue(r, i, 0));
        uint64_t bits = be64(PQgetvalue(r, i, 1));
        double d;
        memcpy(&d, &bits, 8);
        int64_t ts = (int64_t)be64(PQgetvalue(r, i, 2)) + INT64_C(946684800000000);
        unsigned char u[16];
        memcpy(u, PQgetvalue(r, i, 3), 16);
        /* numeric: base-10000 digits to decimal text, as result.c does */
        const unsigned char *n = (const unsigned char *)PQgetvalue(r, i, 4);
        int nd = n[0] << 8 | n[1], w = (int16_t)(n[2] << 8 | n[3]), dscale = n[6] << 8 | n[7];
        char *num = malloc(16 + 4 * (size_t)(nd + 2) + (size_t)dscale), *p = num;
        for (int k = 0; k <= w; k++) {
            int dig = k < nd ? (n[8 + 2 * k] << 8 | n[9 + 2 * k]) : 0;
            p += sprintf(p, k ? "%04d" : "%d", dig);
        }
        if (dscale) {
            *p++ = '.';
            for (int k = w + 1, left = dscale; left > 0; k++, left -= 4) {
                int dig = (k >= 0 && k < nd) ? (n[8 + 2 * k] << 8 | n[9 + 2 * k]) : 0;
                p += sprintf(p, "%04d", dig);
            }
        }
        const char *name = PQgetvalue(r, i, 5);
        const unsigned char *b = (const unsigned char *)PQgetvalue(r, i, 6);
        int blen = PQgetlength(r, i, 6);
        sink += (uint64_t)a + (uint64_t)d + (uint64_t)ts + u[3] + (uint64_t)num[0] + (uint64_t)name[0] + b[blen - 1];
        free(num);
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *conninfo = argc > 1 ? argv[1] : getenv("DATABASE_URL");
    int rows = argc > 2 ? atoi(argv[2]) : 20000, runs = 7;
    PGconn *c = PQconnectdb(conninfo ? conninfo : "");
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "%s", PQerrorMessage(c));
        return 2;
    }
    char nrows[16];
    snprintf(nrows, sizeof nrows, "%d", rows);
    const char *vals[] = {nrows};
    PQclear(PQprepare(c, "s", SQL, 1, NULL));
    for (int fmt = 0; fmt <= 1; fmt++) {
        double t[16], bytes = 0;
        for (int k = 0; k < runs + 1; k++) { /* the first run warms up */
            double t0 = now_ms();
            PGresult *r = PQexecPrepared(c, "s", 1, vals, NULL, NULL, fmt);
            if (PQresultStatus(r) != PGRES_TUPLES_OK) {
                fprintf(stderr, "%s", PQresultErrorMessage(r));
                return 2;
            }
            fmt ? decode_binary(r) : decode_text(r);
            if (k > 0)
                t[k - 1] = now_ms() - t0;
            bytes = 0;
            for (int i = 0; i < PQntuples(r); i++)
                for (int j = 0; j < PQnfields(r); j++)
                    bytes += PQgetlength(r, i, j);
            PQclear(r);
        }
        qsort(t, (size_t)runs, sizeof *t, cmp);
        printf("%-6s %d rows: median %.2f ms (min %.2f, max %.2f), %.0f value bytes\n", fmt ? "binary" : "text", rows,
               t[runs / 2], t[0], t[runs - 1], bytes);
    }
    PQfinish(c);
    return 0;
}
