/* bench_query.c — `growplate bench txn`: BEGIN; SELECT 1; COMMIT sent as one
 * pipeline (one round trip, the session sweep included) on a pooled
 * connection per operation (gp_pool_pipeline_run); the twin of pgbench's
 * \startpipeline script in scripts/bench. */
#include <stdlib.h>

#include "bench.h"

typedef struct txn_shared {
    gp_pool_t *pool;
} txn_shared_t;

static int txn_setup(const bench_opts_t *o, void **shared)
{
    txn_shared_t *s = calloc(1, sizeof *s);
    if (!s) {
        cli_fail(CLI_FAILURE, GP_ERR_NOMEM, "out of memory");
        return 1;
    }
    gp_error_t e;
    if (!(s->pool = bench_full_pool(o, o->pool_size))) {
        free(s);
        return 1;
    }
    /* Warm up: every connection opened and every statement prepared
     * before the clock starts (pgbench connects before measuring too). */
    gp_conn_t **held = calloc((size_t)o->pool_size, sizeof *held);
    int n = 0;
    gp_status_t st = held ? GP_OK : GP_ERR_NOMEM;
    while (st == GP_OK && n < o->pool_size) {
        st = gp_pool_acquire(s->pool, "bench", -1, &held[n], &e);
        if (st == GP_OK)
            st = gp_exec(held[n++], "SELECT 1", 0, NULL, NULL, &e);
    }
    for (int i = 0; i < n; i++)
        gp_pool_release(held[i]);
    free(held);
    if (st != GP_OK) {
        if (st == GP_ERR_NOMEM)
            cli_fail(CLI_FAILURE, st, "out of memory");
        else {
            e.status = st;
            cli_fail_error(CLI_FAILURE, &e, "warming up");
        }
        gp_pool_close(s->pool, 1000);
        free(s);
        return 1;
    }
    *shared = s;
    return 0;
}

static int txn_op(void *shared, void **local, int tid)
{
    (void)tid;
    txn_shared_t *s = shared;
    gp_pipeline_t *p = *local;
    if (!p) {
        p = gp_pipeline_new();
        if (!p || gp_pipeline_add(p, "BEGIN", 0, NULL, NULL) != GP_OK ||
            gp_pipeline_add(p, "SELECT 1", 0, NULL, NULL) != GP_OK ||
            gp_pipeline_add(p, "COMMIT", 0, NULL, NULL) != GP_OK) {
            gp_pipeline_free(p);
            return 0;
        }
        *local = p;
    }
    return gp_pool_pipeline_run(s->pool, p, NULL) == GP_OK ? 1 : 0;
}

static void txn_thread_done(void *shared, void *local)
{
    (void)shared;
    gp_pipeline_free(local);
}

static void txn_report(void *shared, FILE *out, bool json)
{
    txn_shared_t *s = shared;
    gp_pool_metrics_t m;
    if (gp_pool_metrics(s->pool, &m) != GP_OK)
        return;
    if (json)
        fprintf(out, ",\"pool_wait_p99_us\":%.1f,\"statement_cache\":%d", m.wait.p99_us, gp_query_statement_cache());
    else
        fprintf(out, "  pool wait p99 %.1f us, statement cache %d per connection\n", m.wait.p99_us,
                gp_query_statement_cache());
}

static void txn_teardown(void *shared)
{
    txn_shared_t *s = shared;
    gp_pool_close(s->pool, 5000);
    free(s);
}

const bench_workload_t bench_txn = {
    .name = "txn",
    .summary = "BEGIN; SELECT 1; COMMIT as one pipeline through the pool (gp_pool_pipeline_run)",
    .unit = "txns",
    .setup = txn_setup,
    .op = txn_op,
    .thread_done = txn_thread_done,
    .report = txn_report,
    .teardown = txn_teardown,
};
