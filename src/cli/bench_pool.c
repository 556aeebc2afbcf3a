/* bench_pool.c — pool workloads for `growplate bench`:
 *   select1       prepared SELECT 1 through the pool: gp_pool_exec (acquire, the
 *                 statement and the session sweep in one round trip, release);
 *                 a one-shot, so it shares round trips when callers outnumber
 *                 the connections (query.h, automatic pipelining)
 *   select1-lease the same statement on an exclusive lease: gp_pool_acquire,
 *                 gp_exec, gp_pool_release (which sweeps the session the
 *                 caller's SQL ran on: a second round trip); never shared
 *   read1         SELECT 1 as a routed read: gp_pool_read_exec (a standby's
 *                 lease when DATABASE_READ_URL is set, READ ONLY, the sweep)
 *   pool-acquire  acquire+release only, in batches: the pool's own cost
 *   pool-memory   client heap per pooled connection next to bare libpq's */
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "bench.h"

#define ACQUIRE_BATCH 1000

typedef struct pool_shared {
    gp_pool_t *pool;
    int threads;
    uint64_t *thread_ops;           /* per thread, for fairness; written once by each thread */
    _Atomic uint64_t busy_ns, pairs; /* pool-acquire: time spent in batches */
    /* pool-memory */
    long bare_bytes, pooled_bytes, pool_fixed_bytes;
    int memory_conns;
} pool_shared_t;

static int setup_common(const bench_opts_t *o, void **shared)
{
    pool_shared_t *s = calloc(1, sizeof *s);
    if (!s || !(s->thread_ops = calloc((size_t)o->threads, sizeof *s->thread_ops))) {
        cli_fail(CLI_FAILURE, GP_ERR_NOMEM, "out of memory");
        free(s);
        return 1;
    }
    s->threads = o->threads;
    s->pool = bench_full_pool(o, o->pool_size);
    if (!s->pool) {
        free(s->thread_ops);
        free(s);
        return 1;
    }
    *shared = s;
    return 0;
}

static gp_pool_t *pool_of(void *shared) { return ((pool_shared_t *)shared)->pool; }

static void teardown_common(void *shared)
{
    pool_shared_t *s = shared;
    gp_pool_close(s->pool, 5000);
    free(s->thread_ops);
    free(s);
}

/* Fairness across threads and the pool's own wait figures. */
static void report_pool(pool_shared_t *s, FILE *out, bool json)
{
    gp_pool_metrics_t m;
    gp_pool_metrics(s->pool, &m);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < s->threads; i++) {
        if (s->thread_ops[i] < lo) lo = s->thread_ops[i];
        if (s->thread_ops[i] > hi) hi = s->thread_ops[i];
    }
    double fairness = hi ? (double)lo / (double)hi : 0;
    if (json)
        fprintf(out, ",\"pool_size\":%d,\"wait_p50_us\":%.1f,\"wait_p99_us\":%.1f,\"wait_max_us\":%.1f,"
                     "\"acquire_timeouts\":%llu,\"opened\":%llu,\"thread_ops_min\":%llu,\"thread_ops_max\":%llu,"
                     "\"fairness\":%.3f",
                m.max, m.wait.p50_us, m.wait.p99_us, m.wait.max_us, (unsigned long long)m.acquire_timeouts,
                (unsigned long long)m.opened, (unsigned long long)lo, (unsigned long long)hi, fairness);
    else
        fprintf(out, "  pool of %d: acquire wait p50 %.1f us, p99 %.1f us, max %.1f us; %llu acquire timeouts; "
                     "per-thread ops min/max %llu/%llu (fairness %.2f)\n",
                m.max, m.wait.p50_us, m.wait.p99_us, m.wait.max_us, (unsigned long long)m.acquire_timeouts,
                (unsigned long long)lo, (unsigned long long)hi, fairness);
}

/* ---- read1 ---------------------------------------------------------------------- */

static int read1_op(void *shared, void **local, int tid)
{
    (void)tid;
    (void)local;
    pool_shared_t *s = shared;
    return gp_pool_read_exec(s->pool, NULL, "SELECT 1", 0, NULL, NULL, NULL) == GP_OK ? 1 : 0;
}

/* Where the reads were served, next to the pool's figures. */
static void read1_report(void *shared, FILE *out, bool json)
{
    pool_shared_t *s = shared;
    report_pool(s, out, json);
    gp_pool_metrics_t m;
    gp_pool_metrics(s->pool, &m);
    for (int i = 0; i < GP_READ_SERVED_COUNT_; i++) {
        if (json)
            fprintf(out, ",\"reads_%s\":%llu", gp_read_served_name((gp_read_served_t)i),
                    (unsigned long long)m.reads[i]);
        else if (m.reads[i])
            fprintf(out, "  reads served %s: %llu\n", gp_read_served_name((gp_read_served_t)i),
                    (unsigned long long)m.reads[i]);
    }
}

const bench_workload_t bench_read1 = {
    .name = "read1",
    .summary = "gp_pool_read_exec(SELECT 1): routed to DATABASE_READ_URL's standby when it can serve",
    .unit = "queries",
    .setup = setup_common,
    .op = read1_op,
    .report = read1_report,
    .teardown = teardown_common,
};

/* ---- select1 -------------------------------------------------------------------- */

static int select1_setup(const bench_opts_t *o, void **shared) { return setup_common(o, shared); }

static int select1_op(void *shared, void **local, int tid)
{
    (void)tid;
    (void)local;
    pool_shared_t *s = shared;
    return gp_pool_exec(s->pool, "SELECT 1", 0, NULL, NULL, NULL) == GP_OK ? 1 : 0;
}

static void select1_done(void *shared, void *local)
{
    (void)shared;
    free(local);
}

/* Per-thread operation counts, for fairness: each slot is written only by
 * its own thread and read after the threads are joined. */
static int select1_op_counted(void *shared, void **local, int tid)
{
    int n = select1_op(shared, local, tid);
    if (n)
        ((pool_shared_t *)shared)->thread_ops[tid]++;
    return n;
}

static void select1_report(void *shared, FILE *out, bool json) { report_pool(shared, out, json); }

const bench_workload_t bench_select1 = {
    .name = "select1",
    .summary = "gp_pool_exec(SELECT 1): acquire, the statement and the session sweep, release",
    .unit = "queries",
    .setup = select1_setup,
    .op = select1_op_counted,
    .thread_done = select1_done,
    .report = select1_report,
    .teardown = teardown_common,
    .pool = pool_of,
};

/* ---- select1-lease ---------------------------------------------------------------- */

static int lease_op(void *shared, void **local, int tid)
{
    (void)local;
    pool_shared_t *s = shared;
    gp_conn_t *c = NULL;
    if (gp_pool_acquire(s->pool, "bench", -1, &c, NULL) != GP_OK)
        return 0;
    gp_status_t st = gp_exec(c, "SELECT 1", 0, NULL, NULL, NULL);
    gp_pool_release(c);
    if (st != GP_OK)
        return 0;
    s->thread_ops[tid]++;
    return 1;
}

const bench_workload_t bench_select1_lease = {
    .name = "select1-lease",
    .summary = "SELECT 1 on an exclusive lease: gp_pool_acquire, gp_exec, gp_pool_release (with its sweep)",
    .unit = "queries",
    .setup = setup_common,
    .op = lease_op,
    .report = select1_report,
    .teardown = teardown_common,
    .pool = pool_of,
};

/* ---- pool-acquire ----------------------------------------------------------------- */

static int acquire_setup(const bench_opts_t *o, void **shared) { return setup_common(o, shared); }

static int acquire_op(void *shared, void **local, int tid)
{
    (void)local;
    pool_shared_t *s = shared;
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < ACQUIRE_BATCH; i++) {
        gp_conn_t *c = NULL;
        if (gp_pool_acquire(s->pool, "bench", -1, &c, NULL) != GP_OK)
            return 0;
        gp_pool_release(c);
    }
    atomic_fetch_add_explicit(&s->busy_ns, (uint64_t)(bench_now_ns() - t0), memory_order_relaxed);
    atomic_fetch_add_explicit(&s->pairs, ACQUIRE_BATCH, memory_order_relaxed);
    s->thread_ops[tid] += ACQUIRE_BATCH;
    return ACQUIRE_BATCH;
}

static void acquire_report(void *shared, FILE *out, bool json)
{
    pool_shared_t *s = shared;
    uint64_t pairs = atomic_load(&s->pairs);
    double ns = pairs ? (double)atomic_load(&s->busy_ns) / (double)pairs : 0;
    if (json)
        fprintf(out, ",\"ns_per_acquire_release\":%.1f", ns);
    else
        fprintf(out, "  %.1f ns per acquire+release (per thread, batches of %d)\n", ns, ACQUIRE_BATCH);
    report_pool(s, out, json);
}

const bench_workload_t bench_pool_acquire = {
    .name = "pool-acquire",
    .summary = "acquire+release only, no query: the pool's own cost (--threads 1: uncontended)",
    .unit = "acquire+release",
    .setup = acquire_setup,
    .op = acquire_op,
    .report = acquire_report,
    .teardown = teardown_common,
};

/* ---- pool-memory ------------------------------------------------------------------ */

static long heap_in_use(void)
{
    malloc_trim(0);
    struct mallinfo2 mi = mallinfo2();
    return (long)(mi.uordblks + mi.hblkhd);
}

static int memory_setup(const bench_opts_t *o, void **shared)
{
    int n = o->pool_size > 0 ? o->pool_size : o->threads;
    if (!o->cfg->db.url) {
        cli_fail(CLI_INVALID, GP_ERR_CONFIG, "needs DATABASE_URL (bare libpq connects with it)");
        return 1;
    }
    PGconn **bare = calloc((size_t)n, sizeof *bare);
    if (!bare) {
        cli_fail(CLI_FAILURE, GP_ERR_NOMEM, "out of memory");
        return 1;
    }
    /* Warm libpq's one-time allocations so they are not charged to either side. */
    PQfinish(PQconnectdb(o->cfg->db.url));
    long m0 = heap_in_use();
    for (int i = 0; i < n; i++) {
        bare[i] = PQconnectdb(o->cfg->db.url);
        if (PQstatus(bare[i]) != CONNECTION_OK) {
            char clean[1024];
            gp_redact(PQerrorMessage(bare[i]), clean, sizeof clean);
            size_t len = strlen(clean);
            while (len && (clean[len - 1] == '\n' || clean[len - 1] == ' '))
                clean[--len] = 0;
            for (char *c = clean; *c; c++)
                if (*c == '\n')
                    *c = ' ';
            cli_fail(CLI_FAILURE, GP_ERR_CONNECT, "bare libpq: %s", clean);
            for (int j = 0; j <= i; j++)
                PQfinish(bare[j]);
            free(bare);
            return 1;
        }
    }
    long m1 = heap_in_use();
    for (int i = 0; i < n; i++)
        PQfinish(bare[i]);
    free(bare);

    /* The pool's fixed cost (histograms, settings), then per connection. */
    bench_opts_t empty = *o;
    gp_config_t cfg0 = *o->cfg;
    cfg0.db.pool_min = 0;
    cfg0.db.pool_max = n;
    empty.cfg = &cfg0;
    empty.pool_size = 0;
    long m2 = heap_in_use();
    gp_pool_t *p0 = bench_full_pool(&empty, 0);
    long m3 = heap_in_use();
    gp_pool_close(p0, 1000);
    if (setup_common(o, shared) != 0)
        return 1;
    pool_shared_t *s = *shared;
    long m4 = heap_in_use();
    s->memory_conns = n;
    s->bare_bytes = (m1 - m0) / n;
    s->pool_fixed_bytes = m3 - m2;
    s->pooled_bytes = (m4 - m2 - s->pool_fixed_bytes) / n;
    return 0;
}

static void memory_report(void *shared, FILE *out, bool json)
{
    pool_shared_t *s = shared;
    if (json)
        fprintf(out, ",\"connections\":%d,\"bare_libpq_bytes_per_conn\":%ld,\"pooled_bytes_per_conn\":%ld,"
                     "\"pool_fixed_bytes\":%ld",
                s->memory_conns, s->bare_bytes, s->pooled_bytes, s->pool_fixed_bytes);
    else
        fprintf(out, "  client heap per connection over %d: bare libpq %ld B, pooled %ld B (+%ld B per pool)\n",
                s->memory_conns, s->bare_bytes, s->pooled_bytes, s->pool_fixed_bytes);
}

const bench_workload_t bench_pool_memory = {
    .name = "pool-memory",
    .summary = "client heap per pooled connection vs bare libpq (--pool-size N connections)",
    .unit = "acquire+release",
    .setup = memory_setup,
    .op = acquire_op,
    .report = memory_report,
    .teardown = teardown_common,
};
