/* bench_tenant.c — `growplate bench scoped`: a one-shot tenant-scoped
 * SELECT 1 through the pool (set_config('app.tenant_id', ..., true);
 * SELECT 1; the session sweep, in one pipeline and one implicit
 * transaction); scripts/bench compares it with pgbench sending BEGIN;
 * set_config; SELECT 1; COMMIT, and with pgbench sending its statements. */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

typedef struct scoped_shared {
    gp_pool_t *pool;
} scoped_shared_t;

/* One tenant id per thread; the ids need not exist for SELECT 1. */
typedef struct scoped_local {
    char tenant[37];
} scoped_local_t;

static int scoped_setup(const bench_opts_t *o, void **shared)
{
    scoped_shared_t *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "growplate bench scoped: out of memory\n");
        return 1;
    }
    if (!(s->pool = bench_full_pool(o, o->pool_size, "scoped"))) {
        free(s);
        return 1;
    }
    *shared = s;
    return 0;
}

static int scoped_op(void *shared, void **local, int tid)
{
    scoped_shared_t *s = shared;
    scoped_local_t *l = *local;
    if (!l) {
        if (!(l = malloc(sizeof *l)))
            return 0;
        snprintf(l->tenant, sizeof l->tenant, "00000000-0000-4000-8000-%012x", (unsigned)tid + 1);
        *local = l;
    }
    gp_result_t *r = NULL;
    gp_status_t st = gp_tenant_query(s->pool, l->tenant, "SELECT 1", 0, NULL, &r, NULL);
    gp_result_free(r);
    return st == GP_OK ? 1 : 0;
}

static void scoped_thread_done(void *shared, void *local)
{
    (void)shared;
    free(local);
}

static void scoped_teardown(void *shared)
{
    scoped_shared_t *s = shared;
    gp_pool_close(s->pool, 5000);
    free(s);
}

const bench_workload_t bench_scoped = {
    .name = "scoped",
    .summary = "tenant-scoped SELECT 1: set_config, SELECT 1 and the session sweep in one pipeline",
    .unit = "txns",
    .setup = scoped_setup,
    .op = scoped_op,
    .thread_done = scoped_thread_done,
    .teardown = scoped_teardown,
};
