/* bench_fair.c — `growplate bench noisy-neighbour`: one tenant floods the
 * pool while eight others do small work, to measure what the tenant-fair
 * pool (pool.h, "Fairness") protects.
 *
 * Threads 0..7 are the victims, one tenant each: lease a connection (the
 * wait is timed exactly, on the client), run a tenant-scoped SELECT 1 in a
 * transaction on it, release. Every other thread is the aggressor, one
 * tenant for all of them: lease, `SELECT pg_sleep(0.002)` (a short query
 * of realistic length), release; a GP_ERR_BUSY is answered like a 429, by
 * pausing 10 ms. `--threads 8` gives the victims alone; DATABASE_TENANT_FAIR=0
 * turns fairness off. scripts/bench alternates the three. Extra JSON:
 * victim_ops_per_sec, victim_wait_p50_us / _p99_us, aggressor_ops_per_sec,
 * busy, fair. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define VICTIMS 8
#define AGGRESSOR "00000000-0000-4000-8000-00000000a66e"

typedef struct fair_shared {
    gp_pool_t *pool;
    gp_hist_t *victim_wait;
    _Atomic uint64_t victim_ops, aggressor_ops, busy;
    int64_t t0;
    int fair;
} fair_shared_t;

static int fair_setup(const bench_opts_t *o, void **shared)
{
    fair_shared_t *s = calloc(1, sizeof *s);
    if (!s || !(s->victim_wait = gp_hist_new())) {
        free(s);
        cli_fail(CLI_FAILURE, GP_ERR_NOMEM, "out of memory");
        return 1;
    }
    gp_error_t e;
    if (o->cfg->db.migration_url && (e.status = gp_migrate(o->cfg, NULL, NULL, &e)) != GP_OK) {
        cli_fail_error(cli_exit_for(e.status), &e, "migrate");
        gp_hist_free(s->victim_wait);
        free(s);
        return 1;
    }
    if (!(s->pool = bench_full_pool(o, o->pool_size))) {
        gp_hist_free(s->victim_wait);
        free(s);
        return 1;
    }
    s->fair = o->cfg->db.tenant_fair;
    s->t0 = bench_now_ns();
    *shared = s;
    return 0;
}

static int victim_op(fair_shared_t *s, int tid)
{
    char tenant[37];
    snprintf(tenant, sizeof tenant, "00000000-0000-4000-8000-%012x", (unsigned)tid + 1);
    gp_conn_t *conn = NULL;
    int64_t t0 = bench_now_ns();
    if (gp_pool_acquire(s->pool, tenant, -1, &conn, NULL) != GP_OK)
        return 0;
    gp_hist_record(s->victim_wait, bench_now_ns() - t0);
    gp_tenant_tx_t *tx = NULL;
    gp_result_t *r = NULL;
    bool ok = gp_tenant_begin(conn, tenant, NULL, &tx, NULL) == GP_OK &&
              gp_tenant_tx_query(tx, "SELECT 1", 0, NULL, &r, NULL) == GP_OK;
    gp_result_free(r);
    if (tx)
        ok = (ok ? gp_tenant_commit(tx, NULL) : gp_tenant_rollback(tx, NULL)) == GP_OK && ok;
    gp_pool_release(conn);
    if (ok)
        atomic_fetch_add_explicit(&s->victim_ops, 1, memory_order_relaxed);
    return ok ? 1 : 0;
}

static int aggressor_op(fair_shared_t *s)
{
    gp_conn_t *conn = NULL;
    gp_status_t st = gp_pool_acquire(s->pool, AGGRESSOR, -1, &conn, NULL);
    if (st == GP_ERR_BUSY) { /* a 429: back off (10 ms: far shorter than a real Retry-After) */
        atomic_fetch_add_explicit(&s->busy, 1, memory_order_relaxed);
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
        return 0;
    }
    if (st != GP_OK)
        return 0;
    st = gp_exec(conn, "SELECT pg_catalog.pg_sleep(0.002)", 0, NULL, NULL, NULL);
    gp_pool_release(conn);
    if (st == GP_OK)
        atomic_fetch_add_explicit(&s->aggressor_ops, 1, memory_order_relaxed);
    return st == GP_OK ? 1 : 0;
}

static int fair_op(void *shared, void **local, int tid)
{
    (void)local;
    fair_shared_t *s = shared;
    return tid < VICTIMS ? victim_op(s, tid) : aggressor_op(s);
}

static void fair_report(void *shared, FILE *out, bool json)
{
    fair_shared_t *s = shared;
    double secs = (double)(bench_now_ns() - s->t0) / 1e9;
    double vops = (double)atomic_load(&s->victim_ops) / secs, aops = (double)atomic_load(&s->aggressor_ops) / secs;
    double p50 = (double)gp_hist_quantile(s->victim_wait, 0.50) / 1e3;
    double p99 = (double)gp_hist_quantile(s->victim_wait, 0.99) / 1e3;
    unsigned long long busy = (unsigned long long)atomic_load(&s->busy);
    if (json)
        fprintf(out,
                ",\"fair\":%d,\"victim_ops_per_sec\":%.1f,\"victim_wait_p50_us\":%.1f,\"victim_wait_p99_us\":%.1f,"
                "\"aggressor_ops_per_sec\":%.1f,\"busy\":%llu",
                s->fair, vops, p50, p99, aops, busy);
    else
        fprintf(out,
                "  fairness %s; victims %.0f ops/s, acquire wait p50 %.1f us, p99 %.1f us; aggressor %.0f ops/s, "
                "%llu throttled\n",
                s->fair ? "on" : "off", vops, p50, p99, aops, busy);
}

static void fair_teardown(void *shared)
{
    fair_shared_t *s = shared;
    gp_pool_close(s->pool, 5000);
    gp_hist_free(s->victim_wait);
    free(s);
}

const bench_workload_t bench_noisy_neighbour = {
    .name = "noisy-neighbour",
    .summary = "8 victim tenants (scoped SELECT 1) beside one tenant flooding the pool (threads 8+: 2 ms queries)",
    .unit = "ops",
    .setup = fair_setup,
    .op = fair_op,
    .report = fair_report,
    .teardown = fair_teardown,
};
