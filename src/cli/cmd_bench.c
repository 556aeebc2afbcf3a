/* cmd_bench.c — `growplate bench <workload>`: the runner shared by every
 * workload (threads, deadline, latency histogram, error counting, output). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"

/* The workloads; each is defined in its own bench_<layer>.c. */
static const bench_workload_t *const workloads[] = {
    &bench_select1,
    &bench_select1_lease,
    &bench_read1,
    &bench_pool_acquire,
    &bench_pool_memory,
    &bench_txn,
    &bench_scoped,
    &bench_menu,
    &bench_noisy_neighbour,
    &bench_cache,
    &bench_cache_bytes,
    &bench_cache_batch,
    &bench_copy_in,
    &bench_insert_rows,
    &bench_stream,
    &bench_materialise,
    NULL /* end */
};

void cmd_bench_help(FILE *out)
{
    fprintf(out,
            "usage: growplate bench <workload> [--threads N] [--seconds S] [--pool-size N]\n"
            "                       [--pipeline-batch N] [--json]\n"
            "\n"
            "Run a workload against the configured servers and print throughput and\n"
            "latency. Errors are counted and the run goes on (it can run through a\n"
            "server restart). `make bench` runs every workload next to its reference\n"
            "tool (pgbench, redis-benchmark) and prints the ratios.\n"
            "\n"
            "workloads:\n");
    for (size_t i = 0; workloads[i]; i++)
        fprintf(out, "  %-15s %s\n", workloads[i]->name, workloads[i]->summary);
    fprintf(out,
            "\n"
            "options:\n"
            "  --threads N     client threads (default 8)\n"
            "  --seconds S     duration (default 5)\n"
            "  --pool-size N   connections in the pool (default: as many as threads)\n"
            "  --pipeline-batch N\n"
            "                  one-shot calls per round trip, 1 (no sharing) to 256; overrides\n"
            "                  DATABASE_PIPELINE_BATCH (query.h, automatic pipelining)\n"
            "  --json          one JSON object on stdout: ops_per_sec, p50_us, p99_us, errors,\n"
            "                  cpu_us_per_op, oneshot_*, ...\n"
            "\n"
            "Every run reports the latency of each call (p50, p99, max; acquire waits\n"
            "included), the client CPU of the whole process (user + system, getrusage\n"
            "over the measured interval) per operation, and for the workloads on a\n"
            "pool its one-shot pipelining over the interval: the units sent, the round\n"
            "trips that carried them, the share of units that shared a round trip and\n"
            "units per round trip (0 when the pool counted none).\n"
            "\n"
            "exit codes: 0 ran (even with errors counted); 2 setup failure (a server\n"
            "unreachable, the pool not filling, out of memory); 3 invalid configuration\n"
            "or usage. With --json a failure is one JSON error object on stdout (see\n"
            "'growplate --help').\n");
}

typedef struct worker {
    const bench_workload_t *w;
    void *shared;
    int tid;
    int64_t deadline_ns;
    gp_hist_t *hist;
    uint64_t ops, units, errors;
    _Atomic uint64_t progress_ops;
    pthread_t thread;
} worker_t;

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

gp_pool_t *bench_full_pool(const bench_opts_t *o, int size)
{
    gp_config_t cfg = *o->cfg;
    if (size > 0)
        cfg.db.pool_min = cfg.db.pool_max = size;
    gp_pool_t *pool = NULL;
    gp_error_t e;
    if ((e.status = gp_pool_create(&cfg, &pool, &e)) != GP_OK) {
        cli_fail_error(cli_exit_for(e.status), &e, NULL);
        return NULL;
    }
    int64_t until = bench_now_ns() + 30 * 1000000000LL;
    gp_pool_metrics_t m;
    for (;;) {
        gp_pool_metrics(pool, &m);
        if (m.idle >= m.min)
            return pool;
        if (bench_now_ns() > until || m.open_failures > 0) {
            gp_conn_t *c = NULL;
            /* The pool hands a waiter the classified error of its next
             * failed attempt: wait for that (its backoff and a slow
             * handshake, e.g. under a sanitizer, can take longer than a
             * moment), within the acquire timeout. */
            if ((e.status = gp_pool_acquire(pool, "bench", -1, &c, &e)) != GP_OK)
                cli_fail_error(CLI_FAILURE, &e, "the pool did not fill");
            else
                cli_fail(CLI_FAILURE, GP_ERR_TIMEOUT, "the pool did not fill to %d connections", m.min);
            gp_pool_release(c);
            gp_pool_close(pool, 1000);
            return NULL;
        }
        struct timespec ts = {0, 2000000}; /* polling the pool's fill level */
        nanosleep(&ts, NULL);
    }
}

static void *worker_main(void *arg)
{
    worker_t *wk = arg;
    void *local = NULL;
    int64_t t = bench_now_ns();
    while (t < wk->deadline_ns) {
        int units = wk->w->op(wk->shared, &local, wk->tid);
        int64_t t2 = bench_now_ns();
        gp_hist_record(wk->hist, t2 - t);
        t = t2;
        if (units > 0) {
            wk->ops++;
            wk->units += (uint64_t)units;
        } else {
            wk->errors++;
        }
        atomic_store_explicit(&wk->progress_ops, wk->ops + wk->errors, memory_order_relaxed);
    }
    if (wk->w->thread_done)
        wk->w->thread_done(wk->shared, local);
    return NULL;
}

static double tv_diff_s(const struct timeval *a, const struct timeval *b)
{
    return (double)(a->tv_sec - b->tv_sec) + (double)(a->tv_usec - b->tv_usec) / 1e6;
}

/* The pool's one-shot pipelining over the measured interval. */
typedef struct oneshot {
    uint64_t units, round_trips, shared, unknown;
    double shared_pct, per_round_trip; /* 0 when none were counted */
} oneshot_t;

static oneshot_t oneshot_delta(const gp_pool_metrics_t *m0, const gp_pool_metrics_t *m1)
{
    oneshot_t o = {
        .units = m1->oneshot_units - m0->oneshot_units,
        .round_trips = m1->oneshot_round_trips - m0->oneshot_round_trips,
        .shared = m1->oneshot_shared - m0->oneshot_shared,
        .unknown = m1->oneshot_unknown - m0->oneshot_unknown,
    };
    if (o.units)
        o.shared_pct = 100.0 * (double)o.shared / (double)o.units;
    if (o.round_trips)
        o.per_round_trip = (double)o.units / (double)o.round_trips;
    return o;
}

static bool parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

int cmd_bench(int argc, char **argv)
{
    char b[128];
    if (argc < 2)
        return cli_usage("which workload?");
    const bench_workload_t *w = NULL;
    for (size_t i = 0; workloads[i]; i++)
        if (strcmp(argv[1], workloads[i]->name) == 0)
            w = workloads[i];
    if (!w)
        return cli_usage("unknown workload '%s'", cli_shown(argv[1], b, sizeof b));
    static char command[64];
    snprintf(command, sizeof command, "bench %s", w->name);
    cli_set_command(command);
    bench_opts_t o = {.threads = 8, .seconds = 5, .pool_size = -1};
    int pipeline_batch = 0; /* 0: DATABASE_PIPELINE_BATCH or its default */
    for (int i = 2; i < argc; i++) {
        double v;
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if ((strcmp(a, "--threads") == 0 || strcmp(a, "--seconds") == 0 || strcmp(a, "--pool-size") == 0) &&
                   i + 1 < argc) {
            const char *val = argv[++i];
            bool ok = strcmp(a, "--seconds") == 0 ? parse_num(val, 0.1, 86400, &v) : parse_num(val, 1, 4096, &v);
            if (!ok || (strcmp(a, "--seconds") != 0 && v != floor(v)))
                return cli_usage("%s '%s' is not valid; expected %s", a, cli_shown(val, b, sizeof b),
                                 strcmp(a, "--seconds") == 0 ? "seconds from 0.1 to 86400"
                                                             : "a whole number from 1 to 4096");
            if (strcmp(a, "--threads") == 0) o.threads = (int)v;
            else if (strcmp(a, "--seconds") == 0) o.seconds = v;
            else o.pool_size = (int)v;
        } else if (strcmp(a, "--pipeline-batch") == 0 && i + 1 < argc) {
            const char *val = argv[++i];
            if (!parse_num(val, 1, 256, &v) || v != floor(v))
                return cli_usage("--pipeline-batch '%s' is not valid; expected a whole number from 1 to 256",
                                 cli_shown(val, b, sizeof b));
            pipeline_batch = (int)v;
        } else {
            return cli_usage("unknown or incomplete option '%s'", cli_shown(a, b, sizeof b));
        }
    }
    if (o.pool_size < 0)
        o.pool_size = o.threads;

    gp_config_t cfg;
    gp_config_init(&cfg);
    int rc = cli_load_config(&cfg);
    if (rc != CLI_OK) {
        gp_config_release(&cfg);
        return rc;
    }
    if (pipeline_batch)
        cfg.db.pipeline_batch = pipeline_batch;
    o.cfg = &cfg;
    void *shared = NULL;
    if (w->setup(&o, &shared) != 0) {
        gp_config_release(&cfg);
        return cli_failure_code(); /* reported by the workload */
    }

    worker_t *wk = calloc((size_t)o.threads, sizeof *wk);
    if (!wk) {
        w->teardown(shared);
        gp_config_release(&cfg);
        return cli_fail(CLI_FAILURE, GP_ERR_NOMEM, "out of memory");
    }
    /* The measured interval: the pool's one-shot counters and the
     * process's CPU from here to the last join (setup and teardown, with
     * their connection handshakes, are outside it). */
    gp_pool_t *pool = w->pool ? w->pool(shared) : NULL;
    gp_pool_metrics_t m0 = {0}, m1 = {0};
    if (pool)
        gp_pool_metrics(pool, &m0);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    int64_t start = bench_now_ns();
    int64_t deadline = start + (int64_t)(o.seconds * 1e9);
    int started = 0;
    for (int i = 0; i < o.threads; i++) {
        wk[i] = (worker_t){.w = w, .shared = shared, .tid = i, .deadline_ns = deadline, .hist = gp_hist_new()};
        if (!wk[i].hist || pthread_create(&wk[i].thread, NULL, worker_main, &wk[i]) != 0) {
            cli_fail(CLI_FAILURE, wk[i].hist ? GP_ERR_IO : GP_ERR_NOMEM, "cannot start thread %d", i);
            gp_hist_free(wk[i].hist);
            break;
        }
        started++;
    }
    bool progress = cli_progress_enabled() && !o.json;
    while (progress && bench_now_ns() < deadline) {
        struct timespec ts = {1, 0};
        int64_t left = deadline - bench_now_ns();
        if (left < 1000000000LL)
            ts = (struct timespec){0, (long)(left > 0 ? left : 0)};
        nanosleep(&ts, NULL); /* progress display only, not synchronisation */
        uint64_t n = 0;
        for (int i = 0; i < started; i++)
            n += atomic_load_explicit(&wk[i].progress_ops, memory_order_relaxed);
        fprintf(stderr, "\r  %s: %.0f s, %llu ops   ", w->name, (double)(bench_now_ns() - start) / 1e9,
                (unsigned long long)n);
    }
    if (progress)
        fputc('\n', stderr);
    gp_hist_t *all = gp_hist_new();
    uint64_t ops = 0, units = 0, errors = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(wk[i].thread, NULL);
        ops += wk[i].ops;
        units += wk[i].units;
        errors += wk[i].errors;
        if (all)
            gp_hist_merge(all, wk[i].hist);
        gp_hist_free(wk[i].hist);
    }
    if (!all) {
        free(wk);
        w->teardown(shared);
        gp_config_release(&cfg);
        return cli_fail(CLI_FAILURE, GP_ERR_NOMEM, "out of memory");
    }
    getrusage(RUSAGE_SELF, &ru1);
    double elapsed = (double)(bench_now_ns() - start) / 1e9;
    if (pool)
        gp_pool_metrics(pool, &m1);
    rc = started == o.threads ? CLI_OK : CLI_FAILURE;
    double user_s = tv_diff_s(&ru1.ru_utime, &ru0.ru_utime), sys_s = tv_diff_s(&ru1.ru_stime, &ru0.ru_stime);
    double per_op = ops ? 1e6 / (double)ops : 0;
    oneshot_t os = {0};
    if (pool)
        os = oneshot_delta(&m0, &m1);
    double p50 = (double)gp_hist_quantile(all, 0.50) / 1e3, p99 = (double)gp_hist_quantile(all, 0.99) / 1e3;
    double maxus = (double)gp_hist_max(all) / 1e3;
    if (o.json) {
        printf("{\"workload\":\"%s\",\"threads\":%d,\"pool_size\":%d,\"seconds\":%.3f,\"ops\":%llu,"
               "\"ops_per_sec\":%.1f,\"units\":\"%s\",\"units_per_sec\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
               "\"max_us\":%.1f,\"errors\":%llu",
               w->name, o.threads, o.pool_size, elapsed, (unsigned long long)ops, (double)ops / elapsed, w->unit,
               (double)units / elapsed, p50, p99, maxus, (unsigned long long)errors);
        printf(",\"pipeline_batch\":%d,\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"cpu_us_per_op\":%.2f,"
               "\"cpu_user_us_per_op\":%.2f,\"cpu_sys_us_per_op\":%.2f",
               cfg.db.pipeline_batch, user_s, sys_s, (user_s + sys_s) * per_op, user_s * per_op, sys_s * per_op);
        if (pool)
            printf(",\"oneshot_units\":%llu,\"oneshot_round_trips\":%llu,\"oneshot_shared\":%llu,"
                   "\"oneshot_unknown\":%llu,\"oneshot_shared_pct\":%.1f,\"oneshot_units_per_round_trip\":%.2f",
                   (unsigned long long)os.units, (unsigned long long)os.round_trips, (unsigned long long)os.shared,
                   (unsigned long long)os.unknown, os.shared_pct, os.per_round_trip);
        if (w->report)
            w->report(shared, stdout, true);
        if (rc != CLI_OK) { /* the figures of the threads that ran, and why the others did not */
            printf(",\"ok\":false,");
            cli_json_error_members(stdout, rc);
        }
        printf("}\n");
    } else {
        printf("%s: %d threads, %.1f s: %.0f ops/s (%.0f %s/s), p50 %.1f us, p99 %.1f us, max %.1f us, errors %llu\n",
               w->name, o.threads, elapsed, (double)ops / elapsed, (double)units / elapsed, w->unit, p50, p99, maxus,
               (unsigned long long)errors);
        printf("  client CPU %.2f us/op (user %.2f, sys %.2f; %.3f + %.3f s over the run)\n", (user_s + sys_s) * per_op,
               user_s * per_op, sys_s * per_op, user_s, sys_s);
        if (pool && os.units)
            printf("  one-shots (batch %d): %llu units in %llu round trips, %.2f units per round trip, %.1f%% shared, "
                   "%llu unknown\n",
                   cfg.db.pipeline_batch, (unsigned long long)os.units, (unsigned long long)os.round_trips,
                   os.per_round_trip, os.shared_pct, (unsigned long long)os.unknown);
        else if (pool)
            printf("  one-shots (batch %d): none counted by the pool (its oneshot_* metrics stayed 0)\n",
                   cfg.db.pipeline_batch);
        if (w->report)
            w->report(shared, stdout, false);
    }
    gp_hist_free(all);
    free(wk);
    w->teardown(shared);
    gp_config_release(&cfg);
    return rc;
}
