/* bench.h — the benchmark runner behind `growplate bench <workload>`.
 *
 * A workload supplies setup (shared state, e.g. a pool), one operation, and
 * teardown; the runner drives N threads for S seconds, counts errors without
 * stopping (so a bench can run through a server restart), records each
 * operation's latency and the process's CPU time (getrusage) over the
 * measured interval, and prints a summary or one JSON object:
 *   {"workload", "threads", "seconds", "ops", "ops_per_sec", "units_per_sec",
 *    "p50_us", "p99_us", "max_us", "errors", "pipeline_batch",
 *    "cpu_user_s", "cpu_sys_s", "cpu_us_per_op", "cpu_user_us_per_op",
 *    "cpu_sys_us_per_op", ...the pool's one-shot pipelining when the workload
 *    names its pool ("oneshot_units", "oneshot_round_trips", "oneshot_shared",
 *    "oneshot_unknown", "oneshot_shared_pct", "oneshot_units_per_round_trip",
 *    counted over the interval), ...workload extras}
 * Each workload lives in its own file (bench_<layer>.c) and is listed in
 * the table in cmd_bench.c. */
#ifndef GROWPLATE_CLI_BENCH_H
#define GROWPLATE_CLI_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include "cli.h"

typedef struct bench_opts {
    int threads;        /* --threads, default 8 */
    double seconds;     /* --seconds, default 5 */
    int pool_size;      /* --pool-size, default: threads (0 = from configuration) */
    bool json;          /* --json */
    gp_config_t *cfg;   /* loaded from the environment, validated */
} bench_opts_t;

typedef struct bench_workload {
    const char *name;
    const char *summary;
    const char *unit;   /* what units_per_sec counts: "ops", "keys", ... */
    /* Create shared state; return 0, or nonzero after reporting why (cli_fail). */
    int (*setup)(const bench_opts_t *opts, void **shared);
    /* One operation on thread `tid`: return the number of units done (>= 1),
     * or 0 on error (counted; the run goes on). `local` is per-thread state,
     * NULL at first. */
    int (*op)(void *shared, void **local, int tid);
    /* Free per-thread state (may be NULL). */
    void (*thread_done)(void *shared, void *local);
    /* Print extra JSON fields (",\"name\":value..."), or extra summary lines. May be NULL. */
    void (*report)(void *shared, FILE *out, bool json);
    void (*teardown)(void *shared);
    /* The pool the operations use, for the runner's one-shot figures
     * (borrowed). May be NULL: no such figures. */
    gp_pool_t *(*pool)(void *shared);
} bench_workload_t;

/* The workloads (bench_<layer>.c). */
extern const bench_workload_t bench_select1, bench_select1_lease, bench_read1, bench_pool_acquire, bench_pool_memory;
extern const bench_workload_t bench_txn;
extern const bench_workload_t bench_scoped, bench_menu;
extern const bench_workload_t bench_noisy_neighbour;
/* The workloads (each in its bench_<layer>.c). */
extern const bench_workload_t bench_cache, bench_cache_bytes, bench_cache_batch;

extern const bench_workload_t bench_copy_in, bench_insert_rows, bench_stream, bench_materialise;

/* Migrate (when a migration URL is configured), then find or make the
 * tenant "bench-menu" and its category of 20 items (bench_tenant.c). 0, or
 * nonzero after reporting why. */
int bench_menu_fixture(const bench_opts_t *o, gp_pool_t *pool, char tenant[37], char category[37]);

/* Monotonic clock in nanoseconds. */
int64_t bench_now_ns(void);

/* A pool of `size` connections (min = max; size <= 0 keeps the configured
 * sizes) from the bench's configuration, returned once it is full so that a
 * measurement never includes connecting. NULL after reporting why. */
gp_pool_t *bench_full_pool(const bench_opts_t *o, int size);

int cmd_bench(int argc, char **argv);
void cmd_bench_help(FILE *out);

#endif
