/* bench_copy.c — bulk transfer workloads (units: rows):
 *  - `growplate bench copy-in`: 1000 menu items imported with
 *    gp_tenant_tx_copy_in through public.menu_items_import in one tenant
 *    transaction, rolled back (the table does not grow);
 *  - `growplate bench insert-rows`: the same 1000 rows as one INSERT
 *    statement each (gp_tenant_tx_exec) in one transaction, rolled back;
 *  - `growplate bench stream`: 100,000 rows read with gp_stream (one row
 *    in memory at a time);
 *  - `growplate bench materialise`: the same rows read with gp_query.
 * stream and materialise report the process's peak resident memory
 * (getrusage): run each in its own process, as `growplate bench` does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"

#define COPY_ROWS 1000
#define STREAM_ROWS 100000
#define STREAM_SQL "SELECT g::bigint, pg_catalog.repeat('x', 100) FROM pg_catalog.generate_series(1, $1::int) g"

typedef struct copy_shared {
    gp_pool_t *pool;
    char tenant[37], category[37];
} copy_shared_t;

/* One thread's 1000 rows of text COPY, names unique per thread and op. */
typedef struct copy_local {
    char *text;
    size_t len, off;
    uint64_t seq;
} copy_local_t;

static int copy_setup(const bench_opts_t *o, void **shared)
{
    copy_shared_t *s = calloc(1, sizeof *s);
    if (!s) {
        cli_fail(CLI_FAILURE, GP_ERR_NOMEM, "out of memory");
        return 1;
    }
    if (!(s->pool = bench_full_pool(o, o->pool_size)) || bench_menu_fixture(o, s->pool, s->tenant, s->category)) {
        gp_pool_close(s->pool, 1000);
        free(s);
        return 1;
    }
    *shared = s;
    return 0;
}

static void copy_teardown(void *shared)
{
    copy_shared_t *s = shared;
    gp_pool_close(s->pool, 2000);
    free(s);
}

static void copy_thread_done(void *shared, void *local)
{
    (void)shared;
    copy_local_t *l = local;
    if (l)
        free(l->text);
    free(l);
}

static copy_local_t *local_rows(copy_shared_t *s, void **local, int tid)
{
    copy_local_t *l = *local;
    if (!l) {
        if (!(l = calloc(1, sizeof *l)) || !(l->text = malloc(COPY_ROWS * 96))) {
            free(l);
            return NULL;
        }
        *local = l;
    }
    l->seq++;
    l->len = 0;
    for (int i = 0; i < COPY_ROWS; i++)
        l->len += (size_t)snprintf(l->text + l->len, 96, "%s\tbench t%d op%llu row%d\t%d\n", s->category, tid,
                                   (unsigned long long)l->seq, i, 100 + i);
    l->off = 0;
    return l;
}

static gp_status_t read_rows(void *ud, char *buf, size_t cap, size_t *len, gp_error_t *err)
{
    (void)err;
    copy_local_t *l = ud;
    *len = l->len - l->off < cap ? l->len - l->off : cap;
    memcpy(buf, l->text + l->off, *len);
    l->off += *len;
    return GP_OK;
}

/* A rolled-back tenant transaction doing `rows_in` on the thread's rows. */
static int in_rolled_back_tx(copy_shared_t *s, copy_local_t *l,
                             gp_status_t (*rows_in)(gp_tenant_tx_t *tx, copy_shared_t *s, copy_local_t *l))
{
    gp_conn_t *conn;
    if (gp_pool_acquire(s->pool, "bench-copy", -1, &conn, NULL) != GP_OK)
        return 0;
    gp_tenant_tx_t *tx;
    gp_status_t st = gp_tenant_begin(conn, s->tenant, NULL, &tx, NULL);
    if (st == GP_OK) {
        st = rows_in(tx, s, l);
        gp_tenant_rollback(tx, NULL);
    }
    gp_pool_release(conn);
    return st == GP_OK ? COPY_ROWS : 0;
}

static gp_status_t by_copy(gp_tenant_tx_t *tx, copy_shared_t *s, copy_local_t *l)
{
    (void)s;
    int64_t rows = 0;
    gp_status_t st = gp_tenant_tx_copy_in(tx, "COPY public.menu_items_import (category_id, name, price_cents) FROM STDIN",
                                          read_rows, l, &rows, NULL);
    return st == GP_OK && rows == COPY_ROWS ? GP_OK : GP_ERR_PROTOCOL;
}

static gp_status_t by_insert(gp_tenant_tx_t *tx, copy_shared_t *s, copy_local_t *l)
{
    gp_status_t st = GP_OK;
    char *line = l->text;
    for (int i = 0; i < COPY_ROWS && st == GP_OK; i++) {
        char *name = strchr(line, '\t') + 1, *price = strchr(name, '\t') + 1, *end = strchr(price, '\n');
        price[-1] = 0;
        *end = 0;
        st = gp_tenant_tx_exec(tx, "INSERT INTO public.menu_items (tenant_id, category_id, name, price_cents) "
                                   "VALUES (public.growplate_tenant(), $1, $2, $3)",
                               GP_ARGS(gp_uuid_str(s->category), gp_text(name), gp_int32(atoi(price))), NULL, NULL);
        line = end + 1;
    }
    return st;
}

static int copy_in_op(void *shared, void **local, int tid)
{
    copy_local_t *l = local_rows(shared, local, tid);
    return l ? in_rolled_back_tx(shared, l, by_copy) : 0;
}

static int insert_rows_op(void *shared, void **local, int tid)
{
    copy_local_t *l = local_rows(shared, local, tid);
    return l ? in_rolled_back_tx(shared, l, by_insert) : 0;
}

const bench_workload_t bench_copy_in = {
    .name = "copy-in",
    .summary = "1000 menu items by gp_tenant_tx_copy_in (text COPY through the import view), rolled back",
    .unit = "rows",
    .setup = copy_setup,
    .op = copy_in_op,
    .thread_done = copy_thread_done,
    .teardown = copy_teardown,
};

const bench_workload_t bench_insert_rows = {
    .name = "insert-rows",
    .summary = "the same 1000 rows as one INSERT each in one tenant transaction, rolled back",
    .unit = "rows",
    .setup = copy_setup,
    .op = insert_rows_op,
    .thread_done = copy_thread_done,
    .teardown = copy_teardown,
};

/* ---- reading many rows -------------------------------------------------------------- */

static int read_setup(const bench_opts_t *o, void **shared)
{
    gp_pool_t *pool = bench_full_pool(o, o->pool_size);
    if (!pool)
        return 1;
    *shared = pool;
    return 0;
}

static void read_teardown(void *shared) { gp_pool_close(shared, 2000); }

static int stream_op(void *shared, void **local, int tid)
{
    (void)local;
    (void)tid;
    gp_conn_t *conn;
    if (gp_pool_acquire(shared, "bench-stream", -1, &conn, NULL) != GP_OK)
        return 0;
    gp_stream_t *s = NULL;
    int64_t n = 0, sum = 0;
    if (gp_stream_open(conn, STREAM_SQL, GP_ARGS(gp_int32(STREAM_ROWS)), &s, NULL) == GP_OK) {
        const gp_result_t *row;
        while (gp_stream_next(s, &row, NULL) == GP_OK && row) {
            int64_t v = 0;
            gp_get_int64(row, 0, 0, &v);
            sum += v;
            n++;
        }
        gp_stream_close(s, NULL);
    }
    gp_pool_release(conn);
    return n == STREAM_ROWS && sum > 0 ? STREAM_ROWS : 0;
}

static int materialise_op(void *shared, void **local, int tid)
{
    (void)local;
    (void)tid;
    gp_result_t *r = NULL;
    int64_t n = 0, sum = 0;
    gp_conn_t *conn;
    if (gp_pool_acquire(shared, "bench-stream", -1, &conn, NULL) != GP_OK)
        return 0;
    if (gp_query(conn, STREAM_SQL, GP_ARGS(gp_int32(STREAM_ROWS)), &r, NULL) == GP_OK) {
        for (int i = 0; i < gp_result_rows(r); i++) {
            int64_t v = 0;
            gp_get_int64(r, i, 0, &v);
            sum += v;
            n++;
        }
    }
    gp_result_free(r);
    gp_pool_release(conn);
    return n == STREAM_ROWS && sum > 0 ? STREAM_ROWS : 0;
}

static void rss_report(void *shared, FILE *out, bool json)
{
    (void)shared;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (json)
        fprintf(out, ",\"max_rss_kib\":%ld", ru.ru_maxrss);
    else
        fprintf(out, "peak resident memory of the process: %ld KiB\n", ru.ru_maxrss);
}

const bench_workload_t bench_stream = {
    .name = "stream",
    .summary = "100,000 rows (bigint, 100-byte text) read one at a time with gp_stream",
    .unit = "rows",
    .setup = read_setup,
    .op = stream_op,
    .report = rss_report,
    .teardown = read_teardown,
};

const bench_workload_t bench_materialise = {
    .name = "materialise",
    .summary = "the same 100,000 rows read whole with gp_query",
    .unit = "rows",
    .setup = read_setup,
    .op = materialise_op,
    .report = rss_report,
    .teardown = read_teardown,
};
