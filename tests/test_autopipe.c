/* test_autopipe.c — automatic pipelining of one-shot calls (query.h,
 * "automatic pipelining of one-shot calls") against a real server: many
 * more callers than connections, and every caller gets exactly its own
 * result and status — under contention with many statements (more than
 * the statement cache holds), with errors, with statement timeouts, with
 * hostile SQL of other tenants in the same round trips, with disguised
 * statements that must not share one, with backends terminated, frozen
 * and a server restarted in the middle of batches, with large results, with
 * statements the server forgot, without a statement cache, with
 * DATABASE_PIPELINE_BATCH=1, for the statements that must run alone; and
 * tenant fairness, and a pool closed with calls queued.
 *
 * The checks of gp_pool_metrics' one-shot counters (oneshot_shared > 0
 * and the like) and of the sweep's refusals need the pipelining itself;
 * everything else is what a one-shot call promised before it and holds
 * with or without it.
 *
 * No sleep stands in for a synchronisation: a test's threads start
 * together at a barrier, disruptions wait for progress counts, and a
 * watchdog reports a caller that hangs (and terminates the pool's
 * backends so that the test can end). Failed calls are paced by a
 * couple of milliseconds while a server is away. Sections are numbered as
 * the issue lists what to test. One test alone:
 * GP_TEST_FILTER=test_errors_isolated build/tests/test_autopipe */
/* ctest-labels: concurrency */
/* ctest-timeout: 600 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "gp_scratch.h"
#include "gp_test.h"
#include "gp_test_data.h"
#include "internal.h"
#include "pool_internal.h" /* the one-shot queue's length, for the close test */

#define NTENANTS 32
#define MAX_CREW 96
#define HANG_S 120 /* a caller still running after this is hung (generous: ThreadSanitizer, 2 shared cores) */

static gp_scratch_t scratch;
static const char *admin_conninfo; /* the server of the running test's pool: the watchdog looks there */
static char evil[64];              /* a role growplate_app may switch to */
static char tenants[NTENANTS][37];
static char prefixes[NTENANTS][9]; /* the first 8 characters of each tenant id: its rows' names start so */

static int after_test(void **state);

/* ---- bookkeeping for threads ------------------------------------------------------------ */

/* What one thread saw: its calls, and the first thing that was wrong
 * (cmocka's assertions are for the main thread only). */
typedef struct tally {
    int id;
    uint64_t rng;
    int calls, bad;
    char first_bad[900];
} tally_t;

static void tally_init(tally_t *t, int id)
{
    memset(t, 0, sizeof *t);
    t->id = id;
    t->rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(id + 1);
}

static uint64_t next(tally_t *t)
{
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    return t->rng;
}

static void bad(tally_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(tally_t *t, const char *fmt, ...)
{
    t->bad++;
    if (t->first_bad[0])
        return;
    int n = snprintf(t->first_bad, sizeof t->first_bad, "thread %d: ", t->id);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->first_bad + n, sizeof t->first_bad - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Print a thread's first problem; returns how many it had. */
static int report(const tally_t *t)
{
    if (t->bad)
        fprintf(stderr, "  %s (%d in all)\n", t->first_bad, t->bad);
    return t->bad;
}

static bool get_int(const gp_result_t *r, int row, int col, int64_t *v)
{
    if (gp_get_int64(r, row, col, v) == GP_OK)
        return true;
    int32_t w;
    if (gp_get_int32(r, row, col, &w) != GP_OK)
        return false;
    *v = w;
    return true;
}

static bool int_is(const gp_result_t *r, int row, int col, int64_t want)
{
    int64_t v;
    return get_int(r, row, col, &v) && v == want;
}

static int64_t int_of(const gp_result_t *r, int row, int col)
{
    int64_t v = -999;
    get_int(r, row, col, &v);
    return v;
}

static bool text_is(const gp_result_t *r, int row, int col, const char *want)
{
    const char *s;
    size_t n;
    return gp_get_text(r, row, col, &s, &n) == GP_OK && n == strlen(want) && memcmp(s, want, n) == 0;
}

static const char *text_of(const gp_result_t *r, int row, int col)
{
    const char *s;
    return r && gp_get_text(r, row, col, &s, NULL) == GP_OK ? s : "(no text)";
}

/* A crew of threads started together; the main thread waits for them
 * with a deadline. */
typedef struct crew crew_t;
typedef struct crew_slot {
    crew_t *crew;
    void (*fn)(void *);
    void *arg;
} crew_slot_t;
struct crew {
    int n, finished;
    pthread_t th[MAX_CREW];
    crew_slot_t slot[MAX_CREW];
    pthread_barrier_t go;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void crew_add(crew_t *c, void (*fn)(void *), void *arg)
{
    assert_true(c->n < MAX_CREW);
    c->slot[c->n] = (crew_slot_t){c, fn, arg};
    c->n++;
}

static void *crew_main(void *p)
{
    crew_slot_t *s = p;
    pthread_barrier_wait(&s->crew->go);
    s->fn(s->arg);
    pthread_mutex_lock(&s->crew->mu);
    s->crew->finished++;
    pthread_cond_broadcast(&s->crew->cv);
    pthread_mutex_unlock(&s->crew->mu);
    return NULL;
}

static struct timespec in_ms(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

static bool crew_wait(crew_t *c, int seconds)
{
    struct timespec until = in_ms((int64_t)seconds * 1000);
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    while (c->finished < c->n && rc == 0)
        rc = pthread_cond_timedwait(&c->cv, &c->mu, &until);
    bool all = c->finished == c->n;
    pthread_mutex_unlock(&c->mu);
    return all;
}

/* What the application role's sessions on the test's server are doing;
 * with `terminate`, end them (a hung caller then gets an error back). */
static void sessions(bool terminate)
{
    PGconn *c = PQconnectdb(admin_conninfo);
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, "SELECT pid, state, coalesce(wait_event_type, '') || ':' || coalesce(wait_event, ''),"
                                " left(query, 160) FROM pg_catalog.pg_stat_activity"
                                " WHERE datname = current_database() AND usename = 'growplate_app'");
        for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
            fprintf(stderr, "    backend %s %s %s: %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                    PQgetvalue(r, i, 3));
        PQclear(r);
        if (terminate)
            PQclear(PQexec(c, "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity"
                              " WHERE datname = current_database() AND usename = 'growplate_app'"));
    }
    PQfinish(c);
}

/* Start the crew at once, wait for every member at most `seconds`. A
 * hang is reported with what the backends were doing, then unblocked;
 * returns whether all finished on time. */
static bool crew_run_within(crew_t *c, const char *what, int seconds)
{
    assert_int_equal(pthread_barrier_init(&c->go, NULL, (unsigned)c->n + 1), 0);
    pthread_mutex_init(&c->mu, NULL);
    cond_init(&c->cv);
    for (int i = 0; i < c->n; i++)
        assert_int_equal(pthread_create(&c->th[i], NULL, crew_main, &c->slot[i]), 0);
    pthread_barrier_wait(&c->go);
    bool on_time = crew_wait(c, seconds);
    if (!on_time) {
        fprintf(stderr, "%s: HANG: %d of %d threads still running after %d s; the backends:\n", what,
                c->n - c->finished, c->n, seconds);
        sessions(true);
        if (!crew_wait(c, 60)) {
            fprintf(stderr, "%s: still hung after terminating the backends\n", what);
            abort();
        }
    }
    for (int i = 0; i < c->n; i++)
        pthread_join(c->th[i], NULL);
    pthread_barrier_destroy(&c->go);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    return on_time;
}

static bool crew_run(crew_t *c, const char *what) { return crew_run_within(c, what, HANG_S); }

/* A counter threads advance and others wait on (progress of a load). */
typedef struct progress {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long count;
    bool flag; /* a phase is over (the disruption, the slow calls...) */
} progress_t;

static void progress_init(progress_t *p)
{
    pthread_mutex_init(&p->mu, NULL);
    cond_init(&p->cv);
    p->count = 0;
    p->flag = false;
}

static void progress_destroy(progress_t *p)
{
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

static void progress_add(progress_t *p)
{
    pthread_mutex_lock(&p->mu);
    p->count++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void progress_set_flag(progress_t *p)
{
    pthread_mutex_lock(&p->mu);
    p->flag = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static bool progress_flag(progress_t *p)
{
    pthread_mutex_lock(&p->mu);
    bool f = p->flag;
    pthread_mutex_unlock(&p->mu);
    return f;
}

/* Wait until the count reaches `at`, at most HANG_S; false on timeout. */
static bool progress_wait(progress_t *p, long at)
{
    struct timespec until = in_ms((int64_t)HANG_S * 1000);
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    while (p->count < at && rc == 0)
        rc = pthread_cond_timedwait(&p->cv, &p->mu, &until);
    bool ok = p->count >= at;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

/* ---- pools and metrics ------------------------------------------------------------------- */

static void base_config(gp_config_t *cfg, int max)
{
    gp_scratch_config(&scratch, cfg);
    cfg->db.pool_min = max;
    cfg->db.pool_max = max;
    /* 64 callers on 8 connections, under ThreadSanitizer too: a caller
     * waits long, but never fails for it. */
    cfg->db.acquire_timeout_ms = 60000;
    /* All system one-shots are one fairness key: let them all wait (the
     * GP_ERR_BUSY bound is not what this file tests). */
    cfg->db.tenant_max_waiting = 1000;
}

/* The pools a test has open: a failed assertion leaves the test early,
 * and the test's teardown closes them (their maintenance threads must not
 * outlive the test). */
static gp_pool_t *live_pools[4];

static gp_pool_t *track(gp_pool_t *pool)
{
    for (int i = 0; i < 4; i++)
        if (!live_pools[i]) {
            live_pools[i] = pool;
            return pool;
        }
    fail();
    return NULL;
}

static gp_pool_t *open_pool(const gp_config_t *cfg)
{
    admin_conninfo = scratch.admin;
    return track(gp_test_pool(cfg));
}

static void close_pool(gp_pool_t *pool, gp_config_t *cfg)
{
    for (int i = 0; i < 4; i++)
        if (live_pools[i] == pool)
            live_pools[i] = NULL;
    gp_status_t st = gp_pool_close(pool, 10000);
    gp_config_release(cfg);
    assert_int_equal(st, GP_OK);
}

static gp_pool_metrics_t metrics(gp_pool_t *pool, const char *what)
{
    gp_pool_metrics_t m;
    assert_int_equal(gp_pool_metrics(pool, &m), GP_OK);
    fprintf(stderr, "%s: one-shot units %llu in %llu round trips, %llu shared, %llu of unknown outcome\n", what,
            (unsigned long long)m.oneshot_units, (unsigned long long)m.oneshot_round_trips,
            (unsigned long long)m.oneshot_shared, (unsigned long long)m.oneshot_unknown);
    return m;
}

/* The load made callers share round trips (needs the pipelining). */
static void expect_sharing(const gp_pool_metrics_t *m, const char *what)
{
    if (m->oneshot_shared == 0 || m->oneshot_round_trips >= m->oneshot_units)
        fprintf(stderr, "%s: no one-shot shared a round trip with another caller's "
                        "(is automatic pipelining there?)\n", what);
    assert_true(m->oneshot_shared > 0);
    assert_true(m->oneshot_round_trips < m->oneshot_units);
}

/* SQL on the test's server as the superuser, from the main thread. */
static void admin_sql(const char *sql)
{
    PGconn *c = gp_scratch_connect(admin_conninfo);
    gp_scratch_exec(c, sql);
    PQfinish(c);
}

static int64_t admin_int(const char *sql)
{
    char buf[64];
    PGconn *c = gp_scratch_connect(admin_conninfo);
    gp_scratch_value(c, sql, buf, sizeof buf);
    PQfinish(c);
    return atoll(buf);
}

static bool temporary_granted;

static void grant_temporary(bool on)
{
    temporary_granted = on;
    char sql[200];
    snprintf(sql, sizeof sql, on ? "GRANT TEMPORARY ON DATABASE %s TO growplate_app"
                                 : "REVOKE TEMPORARY ON DATABASE %s FROM growplate_app",
             scratch.db);
    admin_conninfo = scratch.admin;
    admin_sql(sql);
}

/* Session advisory locks held by the application's sessions of the test's
 * database (every call has returned: none may be left). */
static int64_t advisory_locks(void)
{
    return admin_int("SELECT count(*) FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a USING (pid)"
                     " WHERE l.locktype = 'advisory' AND a.usename = 'growplate_app'"
                     " AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())");
}

/* ---- 1. results routed to their callers --------------------------------------------------------- */

/* Many distinct statements (and the same text with different parameter
 * types, another statement again): more than a small statement cache
 * holds, so pipelines prepare and evict. Each returns (v*7 + k, tag/k, k). */
#define NTEXTS 48
static char texts[NTEXTS][256];

static void build_texts(void)
{
    for (int k = 0; k < NTEXTS; k++) {
        switch (k % 4) {
        case 0:
            snprintf(texts[k], sizeof texts[k], "SELECT $1::int8 * 7 + %d, $2::text || '/%d', %d::int4", k, k, k);
            break;
        case 1:
            snprintf(texts[k], sizeof texts[k], "/* text %d */ VALUES ($1::int8 * 7 + %d, $2::text || '/%d', %d::int4)",
                     k, k, k, k);
            break;
        case 2:
            snprintf(texts[k], sizeof texts[k],
                     "WITH t(a, b) AS (SELECT $1::int8, $2::text) SELECT a * 7 + %d, b || '/%d', %d::int4 FROM t", k, k, k);
            break;
        default: /* untyped: the parameters' types (int4 or int8) make two statements of one text */
            snprintf(texts[k], sizeof texts[k], "select $1 * 7 + %d, $2 || '/%d', %d::int4", k, k, k);
            break;
        }
    }
}

typedef struct route_cfg {
    gp_pool_t *pool;
    int iters;
    bool tenants; /* mix in tenant one-shots */
} route_cfg_t;

typedef struct route_worker {
    tally_t t;
    const route_cfg_t *cfg;
    progress_t *progress; /* may be NULL */
} route_worker_t;

static void route_call(route_worker_t *w, int iter)
{
    gp_pool_t *pool = w->cfg->pool;
    uint64_t r = next(&w->t);
    int64_t v = (int64_t)w->t.id * 1000000 + iter;
    char tag[400], want[420];
    int pad = (int)((r >> 24) % 300);
    int n = snprintf(tag, sizeof tag, "w%d-i%d-", w->t.id, iter);
    memset(tag + n, 'a' + w->t.id % 26, (size_t)pad);
    tag[n + pad] = 0;
    gp_result_t *res = NULL;
    gp_error_t e;
    gp_status_t st;
    int kind = (int)(r % 16);
    if (kind == 14 && !w->cfg->tenants)
        kind = 15;
    w->t.calls++;
    switch (kind) {
    default: { /* one of the texts */
        int k = (int)((r >> 8) % NTEXTS);
        bool narrow = k % 4 == 3 && ((r >> 20) & 1);
        gp_value_t p[2] = {narrow ? gp_int32((int32_t)v) : gp_int64(v), gp_text(tag)};
        st = gp_pool_query(pool, texts[k], 2, p, &res, &e);
        snprintf(want, sizeof want, "%s/%d", tag, k);
        if (st != GP_OK)
            bad(&w->t, "text %d: %s: %s (%s)", k, gp_strerror(st), e.message, e.sqlstate);
        else if (gp_result_rows(res) != 1 || !int_is(res, 0, 0, v * 7 + k) || !text_is(res, 0, 1, want) ||
                 !int_is(res, 0, 2, k))
            bad(&w->t, "text %d with %lld: got %lld, '%.40s', %lld: not its own answer", k, (long long)v,
                (long long)int_of(res, 0, 0), text_of(res, 0, 1), (long long)int_of(res, 0, 2));
        break;
    }
    case 10: { /* rows counted, none wanted */
        int64_t affected = -1;
        int32_t rows = iter % 5;
        st = gp_pool_exec(pool, "SELECT generate_series(1, $1::int4)", GP_ARGS(gp_int32(rows)), &affected, &e);
        if (st != GP_OK || affected != rows)
            bad(&w->t, "exec of %d rows: %s, affected %lld: %s", rows, gp_strerror(st), (long long)affected, e.message);
        break;
    }
    case 11: /* no row at all */
        st = gp_pool_query(pool, "SELECT $1::int8 WHERE $1::int8 < 0", GP_ARGS(gp_int64(v)), &res, &e);
        if (st != GP_OK || gp_result_rows(res) != 0)
            bad(&w->t, "zero rows: %s, %d rows: %s", gp_strerror(st), st == GP_OK ? gp_result_rows(res) : -1, e.message);
        break;
    case 12: { /* a NULL parameter */
        bool is_null = false;
        st = gp_pool_query(pool, "SELECT $1::text IS NULL, $2::int8", GP_ARGS(gp_null(), gp_int64(v)), &res, &e);
        if (st != GP_OK || gp_get_bool(res, 0, 0, &is_null) != GP_OK || !is_null || !int_is(res, 0, 1, v))
            bad(&w->t, "null parameter: %s: %s", gp_strerror(st), e.message);
        break;
    }
    case 13: /* TABLE */
        st = gp_pool_query(pool, "TABLE ap_const", 0, NULL, &res, &e);
        if (st != GP_OK || gp_result_rows(res) != 1 || !int_is(res, 0, 0, 7) || !text_is(res, 0, 1, "seven"))
            bad(&w->t, "TABLE ap_const: %s: %s", gp_strerror(st), e.message);
        break;
    case 14: { /* a tenant's unit between the system ones */
        int t = (int)((r >> 32) % NTENANTS);
        st = gp_tenant_query(pool, tenants[t], "SELECT coalesce(public.growplate_tenant()::text, ''), $1::int8",
                             GP_ARGS(gp_int64(v)), &res, &e);
        if (st != GP_OK)
            bad(&w->t, "tenant call: %s: %s (%s)", gp_strerror(st), e.message, e.sqlstate);
        else if (!text_is(res, 0, 0, tenants[t]) || !int_is(res, 0, 1, v))
            bad(&w->t, "tenant call for %s got tenant '%s' and %lld", tenants[t], text_of(res, 0, 0),
                (long long)int_of(res, 0, 1));
        break;
    }
    case 15:
        st = gp_pool_query(pool, "SELECT $1::int8, pg_catalog.length($2::text)", GP_ARGS(gp_int64(v), gp_text(tag)),
                           &res, &e);
        if (st != GP_OK || !int_is(res, 0, 0, v) || !int_is(res, 0, 1, (int64_t)strlen(tag)))
            bad(&w->t, "echo: %s: %s", gp_strerror(st), e.message);
        break;
    }
    gp_result_free(res);
}

static void route_main(void *arg)
{
    route_worker_t *w = arg;
    for (int i = 0; i < w->cfg->iters; i++) {
        route_call(w, i);
        if (w->progress)
            progress_add(w->progress);
    }
}

/* `threads` callers, `iters` calls each; every answer checked. `nextra`
 * more crew members fn(args[i]) (args: an array of elements of `size`
 * bytes) may run alongside. Returns the number of wrong answers (-1: a
 * caller hung). */
static int run_routing_with(gp_pool_t *pool, int threads, int iters, bool with_tenants, void (*fn)(void *),
                            void *args, int nextra, size_t size, progress_t *progress, const char *what)
{
    route_cfg_t rc = {pool, iters, with_tenants};
    route_worker_t *w = calloc((size_t)threads, sizeof *w);
    crew_t *crew = calloc(1, sizeof *crew);
    assert_non_null(w);
    assert_non_null(crew);
    for (int i = 0; i < threads; i++) {
        tally_init(&w[i].t, i);
        w[i].cfg = &rc;
        w[i].progress = progress;
        crew_add(crew, route_main, &w[i]);
    }
    for (int i = 0; fn && i < nextra; i++)
        crew_add(crew, fn, (char *)args + (size_t)i * size);
    bool on_time = crew_run(crew, what);
    int nbad = 0, calls = 0;
    for (int i = 0; i < threads; i++) {
        nbad += report(&w[i].t);
        calls += w[i].t.calls;
    }
    fprintf(stderr, "%s: %d calls by %d threads, %d wrong\n", what, calls, threads, nbad);
    free(w);
    free(crew);
    return on_time ? nbad : -1;
}

static int run_routing(gp_pool_t *pool, int threads, int iters, bool with_tenants, const char *what)
{
    return run_routing_with(pool, threads, iters, with_tenants, NULL, NULL, 0, 0, NULL, what);
}

/* 64 callers on 8 connections, a 16-statement cache and 48 texts (96
 * statements with the parameter types): every caller gets its own answer,
 * and callers shared round trips. */
static void test_routing_under_contention(void **state)
{
    (void)state;
    gp_config_t cfg;
    base_config(&cfg, 8);
    cfg.db.statement_cache = 16;
    gp_pool_t *pool = open_pool(&cfg);
    int wrong = run_routing(pool, 64, 50, true, "routing");
    gp_pool_metrics_t m = metrics(pool, "routing");
    close_pool(pool, &cfg);
    assert_int_equal(wrong, 0);
    expect_sharing(&m, "routing");
}

/* ---- 2. errors isolated per caller --------------------------------------------------------------- */

#define ERR_THREADS 64
#define ERR_ITERS 40
#define ERR_ID(w, i) (1000000LL + (int64_t)(w) * 10000 + (i))

typedef struct err_worker {
    tally_t t;
    gp_pool_t *pool;
    signed char expect[ERR_ITERS]; /* 1: its row committed; 0: no row may exist; -1: no row of its own */
    int ok, failed;
} err_worker_t;

/* The call failed exactly as wanted: its own SQLSTATE, reported as the
 * caller's only statement. */
static bool failed_as(err_worker_t *w, const char *what, gp_status_t st, const gp_error_t *e, const char *sqlstate)
{
    if (st != GP_ERR_SERVER || e->status != st || strcmp(e->sqlstate, sqlstate) != 0 || e->statement_index != -1) {
        bad(&w->t, "%s: want SQLSTATE %s, got %s (%s: %s), statement_index %d", what, sqlstate, gp_strerror(st),
            e->sqlstate, e->message, e->statement_index);
        return false;
    }
    w->failed++;
    return true;
}

static void err_main(void *arg)
{
    err_worker_t *w = arg;
    for (int i = 0; i < ERR_ITERS; i++) {
        uint64_t r = next(&w->t);
        int64_t id = ERR_ID(w->t.id, i);
        gp_result_t *res = NULL;
        gp_error_t e;
        gp_status_t st;
        int64_t affected = -1;
        char s[96];
        w->expect[i] = -1;
        w->t.calls++;
        switch (r % 12) {
        case 0:
        case 1: /* a neighbour that succeeds */
            st = gp_pool_query(w->pool, "SELECT $1::int8 + 1", GP_ARGS(gp_int64(id)), &res, &e);
            if (st != GP_OK || !int_is(res, 0, 0, id + 1))
                bad(&w->t, "select: %s: %s", gp_strerror(st), e.message);
            else
                w->ok++;
            break;
        case 2:
            st = gp_pool_query(w->pool, "SELECT 1 / $1::int4", GP_ARGS(gp_int32(0)), &res, &e);
            if (failed_as(w, "division by zero", st, &e, "22012") && e.klass != GP_ECLASS_DATA)
                bad(&w->t, "division by zero: class %s", gp_error_class_name(e.klass));
            break;
        case 3:
        case 4: /* an INSERT that commits, exactly once */
            snprintf(s, sizeof s, "w%d-i%d", w->t.id, i);
            st = gp_pool_exec(w->pool, "INSERT INTO ap_items (id, v) VALUES ($1, $2)", GP_ARGS(gp_int64(id), gp_text(s)),
                              &affected, &e);
            if (st != GP_OK || affected != 1)
                bad(&w->t, "insert %lld: %s, affected %lld: %s (%s)", (long long)id, gp_strerror(st),
                    (long long)affected, e.message, e.sqlstate);
            else
                w->ok++;
            w->expect[i] = st == GP_OK ? 1 : 0;
            break;
        case 5: { /* a unique violation: its own key in the detail */
            int64_t dup = 1 + (int64_t)((r >> 16) % 100);
            st = gp_pool_exec(w->pool, "INSERT INTO ap_items (id, v) VALUES ($1, 'dup')", GP_ARGS(gp_int64(dup)), NULL,
                              &e);
            snprintf(s, sizeof s, "(id)=(%lld)", (long long)dup);
            if (failed_as(w, "unique violation", st, &e, "23505") &&
                (e.klass != GP_ECLASS_UNIQUE || strcmp(e.constraint_name, "ap_items_pkey") != 0 || !strstr(e.detail, s)))
                bad(&w->t, "unique violation of %lld: class %s, constraint '%s', detail '%s'", (long long)dup,
                    gp_error_class_name(e.klass), e.constraint_name, e.detail);
            break;
        }
        case 6: /* a bad cast: its own value in the message */
            snprintf(s, sizeof s, "bad-w%d-i%d", w->t.id, i);
            st = gp_pool_query(w->pool, "SELECT ($1::text)::int4", GP_ARGS(gp_text(s)), &res, &e);
            if (failed_as(w, "bad cast", st, &e, "22P02") && !strstr(e.message, s))
                bad(&w->t, "bad cast of '%s': the message is someone else's: %s", s, e.message);
            break;
        case 7: /* an INSERT that fails at its second row: nothing committed */
            st = gp_pool_exec(w->pool, "INSERT INTO ap_items (id, v) VALUES ($1, 'a'), ($1, 'b')", GP_ARGS(gp_int64(id)),
                              NULL, &e);
            failed_as(w, "two-row insert", st, &e, "23505");
            w->expect[i] = 0;
            break;
        case 8: /* an INSERT in a CTE, then a failure: nothing committed */
            st = gp_pool_query(w->pool,
                               "WITH ins AS (INSERT INTO ap_items (id, v) VALUES ($1, 'c') RETURNING id)"
                               " SELECT id / (id - id) FROM ins",
                               GP_ARGS(gp_int64(id)), &res, &e);
            failed_as(w, "insert then division by zero", st, &e, "22012");
            w->expect[i] = 0;
            break;
        case 9: /* an INSERT whose value fails to cast */
            snprintf(s, sizeof s, "x%d", i);
            st = gp_pool_exec(w->pool, "INSERT INTO ap_items (id, v) VALUES ($1, ($2::text)::int4::text)",
                              GP_ARGS(gp_int64(id), gp_text(s)), NULL, &e);
            failed_as(w, "insert of a bad cast", st, &e, "22P02");
            w->expect[i] = 0;
            break;
        case 10:
            st = gp_pool_query(w->pool, "SELEC $1::int8", GP_ARGS(gp_int64(id)), &res, &e);
            failed_as(w, "syntax error", st, &e, "42601");
            break;
        default: { /* a tenant's failing unit */
            int t = (int)((r >> 24) % NTENANTS);
            st = gp_tenant_query(w->pool, tenants[t], "SELECT 1 / (count(*) - count(*)) FROM menu_items", 0, NULL, &res,
                                 &e);
            failed_as(w, "tenant division by zero", st, &e, "22012");
            break;
        }
        }
        gp_result_free(res);
    }
}

static void test_errors_isolated(void **state)
{
    (void)state;
    admin_conninfo = scratch.admin;
    admin_sql("DELETE FROM ap_items WHERE id > 100");
    gp_config_t cfg;
    base_config(&cfg, 8);
    gp_pool_t *pool = open_pool(&cfg);
    err_worker_t *w = calloc(ERR_THREADS, sizeof *w);
    crew_t *crew = calloc(1, sizeof *crew);
    for (int i = 0; i < ERR_THREADS; i++) {
        tally_init(&w[i].t, i);
        w[i].pool = pool;
        crew_add(crew, err_main, &w[i]);
    }
    assert_true(crew_run(crew, "errors"));
    int nbad = 0, ok = 0, failed = 0;
    for (int i = 0; i < ERR_THREADS; i++) {
        nbad += report(&w[i].t);
        ok += w[i].ok;
        failed += w[i].failed;
    }
    fprintf(stderr, "errors: %d succeeded, %d failed as they should, %d wrong\n", ok, failed, nbad);
    gp_pool_metrics_t m = metrics(pool, "errors");

    /* Exactly the committed INSERTs are there, each once; the seeds untouched. */
    PGconn *c = gp_scratch_connect(scratch.admin);
    PGresult *r = PQexec(c, "SELECT id, count(*) FROM ap_items WHERE id > 100 GROUP BY id");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    static int seen[ERR_THREADS][ERR_ITERS];
    memset(seen, 0, sizeof seen);
    int stray = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        long long id = atoll(PQgetvalue(r, i, 0)) - 1000000;
        int wi = (int)(id / 10000), it = (int)(id % 10000);
        if (id < 0 || wi >= ERR_THREADS || it >= ERR_ITERS)
            stray++;
        else
            seen[wi][it] = atoi(PQgetvalue(r, i, 1));
    }
    PQclear(r);
    int missing = 0, extra = 0;
    for (int i = 0; i < ERR_THREADS; i++)
        for (int it = 0; it < ERR_ITERS; it++) {
            int want = w[i].expect[it] == 1 ? 1 : 0;
            if (seen[i][it] != want) {
                if (want)
                    missing++;
                else
                    extra++;
                fprintf(stderr, "  row %lld: %d copies, want %d\n", (long long)ERR_ID(i, it), seen[i][it], want);
            }
        }
    char buf[64];
    gp_scratch_value(c, "SELECT count(*) FILTER (WHERE v = 'seed') || '/' || count(*) FROM ap_items WHERE id <= 100",
                     buf, sizeof buf);
    PQfinish(c);
    free(w);
    free(crew);
    close_pool(pool, &cfg);
    assert_int_equal(nbad, 0);
    assert_int_equal(stray, 0);
    assert_int_equal(missing, 0);
    assert_int_equal(extra, 0);
    assert_string_equal(buf, "100/100");
    expect_sharing(&m, "errors");
}

/* ---- 3. statement timeouts isolated per caller ------------------------------------------------------ */

#define TMO_MS 300
#define TMO_FAST 32
#define TMO_SLOW 4
#define TMO_SLOW_CALLS 2

typedef struct tmo_worker {
    tally_t t;
    gp_pool_t *pool;
    progress_t *progress;
    _Atomic int *slow_left; /* the last slow caller to finish raises progress->flag */
    bool slow;
    int64_t max_ms;
} tmo_worker_t;

static void tmo_slow(tmo_worker_t *w)
{
    /* Among the fast ones: once the fast callers have had a few calls each. */
    if (!progress_wait(w->progress, TMO_FAST * 3)) {
        bad(&w->t, "the fast callers made no progress");
        return;
    }
    for (int j = 0; j < TMO_SLOW_CALLS; j++) {
        char sql[96]; /* a text never run before: nothing remembers it as slow */
        snprintf(sql, sizeof sql, "SELECT pg_sleep(5), %d", w->t.id * 10 + j);
        gp_error_t e;
        int64_t t0 = gp__now_ns();
        gp_status_t st = gp_pool_exec(w->pool, sql, 0, NULL, NULL, &e);
        int64_t ms = (gp__now_ns() - t0) / 1000000;
        w->t.calls++;
        if (ms > w->max_ms)
            w->max_ms = ms;
        if (st != GP_ERR_TIMEOUT || !e.retriable)
            bad(&w->t, "slow call: %s (%s: %s), retriable %d, after %lld ms; want a timeout", gp_strerror(st),
                e.sqlstate, e.message, e.retriable, (long long)ms);
        else if (ms < TMO_MS * 3 / 4 - 10 || ms > TMO_SLOW * TMO_MS + 1000)
            bad(&w->t, "slow call timed out after %lld ms (deadline %d ms)", (long long)ms, TMO_MS);
    }
}

static void tmo_main(void *arg)
{
    tmo_worker_t *w = arg;
    if (w->slow) {
        tmo_slow(w);
        if (atomic_fetch_sub(w->slow_left, 1) == 1)
            progress_set_flag(w->progress);
        return;
    }
    for (int i = 0; i < 10 || !progress_flag(w->progress); i++) {
        int64_t v = (int64_t)w->t.id * 100000 + i;
        gp_result_t *res = NULL;
        gp_error_t e;
        int64_t t0 = gp__now_ns();
        gp_status_t st = i % 3 == 2 ? gp_tenant_query(w->pool, tenants[w->t.id % NTENANTS], "SELECT $1::int8 + 1",
                                                      GP_ARGS(gp_int64(v)), &res, &e)
                                    : gp_pool_query(w->pool, "SELECT $1::int8 + 1", GP_ARGS(gp_int64(v)), &res, &e);
        int64_t ms = (gp__now_ns() - t0) / 1000000;
        w->t.calls++;
        if (ms > w->max_ms)
            w->max_ms = ms;
        if (st != GP_OK || !int_is(res, 0, 0, v + 1))
            bad(&w->t, "fast call %d: %s (%s: %s) after %lld ms", i, gp_strerror(st), e.sqlstate, e.message,
                (long long)ms);
        gp_result_free(res);
        progress_add(w->progress);
    }
}

/* One pool with the deadline; 32 fast callers while 4 others run
 * pg_sleep(5) twice each (new texts every time): each slow call fails
 * alone with GP_ERR_TIMEOUT near the deadline, every fast call succeeds,
 * and none of them waits for a sleep to end. A unit's own statement
 * timeout is three quarters of DATABASE_QUERY_TIMEOUT (README, "Deadlines");
 * units in one flight run one after the other, so a call behind the 4
 * slow ones may wait for each one's timeout. */
static gp_pool_metrics_t timeouts_case(bool client_deadline)
{
    const char *what = client_deadline ? "DATABASE_QUERY_TIMEOUT" : "DATABASE_STATEMENT_TIMEOUT";
    gp_config_t cfg;
    base_config(&cfg, 8);
    if (client_deadline)
        cfg.db.query_timeout_ms = TMO_MS;
    else
        cfg.db.statement_timeout_ms = TMO_MS;
    gp_test_capture_logs(GP_LOG_WARN); /* connections closed at their deadline, off the output */
    gp_pool_t *pool = open_pool(&cfg);
    progress_t prog;
    progress_init(&prog);
    _Atomic int slow_left = TMO_SLOW;
    tmo_worker_t w[TMO_FAST + TMO_SLOW];
    crew_t *crew = calloc(1, sizeof *crew);
    for (int i = 0; i < TMO_FAST + TMO_SLOW; i++) {
        tally_init(&w[i].t, i);
        w[i].pool = pool;
        w[i].progress = &prog;
        w[i].slow_left = &slow_left;
        w[i].slow = i >= TMO_FAST;
        w[i].max_ms = 0;
        crew_add(crew, tmo_main, &w[i]);
    }
    bool on_time = crew_run(crew, what);
    int nbad = 0, calls = 0;
    int64_t fast_max = 0, slow_max = 0;
    for (int i = 0; i < TMO_FAST + TMO_SLOW; i++) {
        nbad += report(&w[i].t);
        calls += w[i].t.calls;
        if (w[i].slow && w[i].max_ms > slow_max)
            slow_max = w[i].max_ms;
        if (!w[i].slow && w[i].max_ms > fast_max)
            fast_max = w[i].max_ms;
    }
    fprintf(stderr, "%s: %d calls; the slowest fast call took %lld ms, the slowest timed-out one %lld ms\n", what,
            calls, (long long)fast_max, (long long)slow_max);
    gp_pool_metrics_t m = metrics(pool, what);
    progress_destroy(&prog);
    free(crew);
    close_pool(pool, &cfg);
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
    assert_true(on_time);
    assert_int_equal(nbad, 0);
    assert_true(fast_max < TMO_SLOW * TMO_MS + 1500); /* no fast call waited for a pg_sleep(5) to end */
    return m;
}

static void test_timeouts_isolated(void **state)
{
    (void)state;
    gp_pool_metrics_t client = timeouts_case(true);
    gp_pool_metrics_t server = timeouts_case(false);
    expect_sharing(&client, "DATABASE_QUERY_TIMEOUT");
    expect_sharing(&server, "DATABASE_STATEMENT_TIMEOUT");
}

/* ---- 4. tenants sharing round trips with attackers -------------------------------------------------- */

/* Replaces the library's prepared tenant-setting statements of the session
 * with ones that set the attacker's own tenant secret: should a unit of
 * another tenant run after it on the same session before a reset, it
 * would act as the attacker. A DO block: never eligible, so it runs alone
 * and the session is reset after it. */
#define HIJACK                                                                                                     \
    "DO $$DECLARE r record; tok text := pg_catalog.current_setting('growplate.tenant_token', true); BEGIN"           \
    " FOR r IN SELECT name, parameter_types FROM pg_catalog.pg_prepared_statements"                                \
    "  WHERE NOT from_sql AND statement LIKE '%tenant_token%' LOOP"                                                  \
    "  EXECUTE pg_catalog.format('DEALLOCATE %I', r.name);"                                                          \
    "  EXECUTE pg_catalog.format('PREPARE %I%s AS SELECT pg_catalog.set_config(''growplate.tenant_token'', %L, true)'," \
    "   r.name, CASE WHEN pg_catalog.cardinality(r.parameter_types) > 0 THEN"                                       \
    "   '(' || pg_catalog.array_to_string(r.parameter_types::text[], ',') || ')' ELSE '' END, tok);"                 \
    " END LOOP; END$$"

#define MAX_ATTACKS 48
typedef struct attack {
    char sql[1400];
    bool must_fail; /* a call that must not succeed */
} attack_t;

static attack_t attacks[MAX_ATTACKS], disguised[MAX_ATTACKS];
static int nattacks, ndisguised;

static void add_attack(attack_t *list, int *n, bool must_fail, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void add_attack(attack_t *list, int *n, bool must_fail, const char *fmt, ...)
{
    assert_true(*n < MAX_ATTACKS);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(list[*n].sql, sizeof list[*n].sql, fmt, ap);
    va_end(ap);
    list[*n].must_fail = must_fail;
    (*n)++;
}

static void build_attacks(void)
{
    attack_t *a = attacks;
    int *n = &nattacks;
    /* settings, in several spellings; some failing after the setting */
    add_attack(a, n, false, "SELECT set_config('growplate.tenant_token', 'forged', false)");
    add_attack(a, n, false, "select pg_catalog.set_config('growplate.tenant_token', "
                            "pg_catalog.current_setting('growplate.tenant_token'), false)");
    add_attack(a, n, false, "SELECT set_config('app.tenant_token', 'x', false)");
    add_attack(a, n, false, "/* c */ SELECT set_config('app.tenant_id', '%s', false)", tenants[0]);
    add_attack(a, n, false, "SELECT set_config('search_path', 'pg_temp,public', false)");
    add_attack(a, n, false, "((select set_config('search_path', 'pg_temp, public', false)))");
    add_attack(a, n, true, "SELECT set_config('search_path','x',false), 1/0");
    add_attack(a, n, false, "SELECT set_config('statement_timeout', '1', false)");
    add_attack(a, n, false, "--\nSELECT set_config('default_transaction_read_only', 'on', false)");
    add_attack(a, n, false, "SELECT set_config('default_transaction_isolation', 'serializable', false),"
                            " set_config('work_mem', '64MB', false)");
    /* the role */
    add_attack(a, n, false, "SELECT set_config('role', '%s', false)", evil);
    add_attack(a, n, false, "(SELECT pg_catalog.set_config('role', '%s', false))", evil);
    add_attack(a, n, false, "-- x\nselect set_config('ROLE', '%s', false)", evil);
    add_attack(a, n, true, "SELECT set_config('role', '%s', false), 1/0", evil);
    /* session advisory locks, also before an error */
    add_attack(a, n, false, "SELECT pg_advisory_lock(42)");
    add_attack(a, n, true, "select pg_advisory_lock(42), 1/0");
    add_attack(a, n, false, "SELECT pg_advisory_lock_shared(43), pg_advisory_lock(44)");
    /* temporary tables shadowing the victims' tables (TEMPORARY granted) */
    add_attack(a, n, false, "SELECT * INTO TEMP menu_items FROM public.menu_items");
    add_attack(a, n, false, "select * into temporary table menu_categories from public.menu_categories");
    add_attack(a, n, false, "WITH q AS (SELECT * FROM public.menu_items) SELECT * INTO TEMP menu_items FROM q");
    add_attack(a, n, false, "(SELECT * INTO TEMP menu_items FROM public.menu_items)");
    add_attack(a, n, true, "SELECT * INTO TEMP menu_items FROM public.menu_items WHERE 1/0 = 1");
    add_attack(a, n, false, "CREATE TEMP TABLE menu_items AS SELECT * FROM public.menu_items");
    add_attack(a, n, false, "create temporary table menu_categories (LIKE public.menu_categories)");
    /* what the sweep leaves to the reset on release */
    add_attack(a, n, false, "PREPARE gp_evil AS SELECT name FROM public.menu_items");
    add_attack(a, n, false, "DEALLOCATE ALL");
    add_attack(a, n, false, "DISCARD ALL");
    add_attack(a, n, false, "LISTEN gp_evil");
    add_attack(a, n, false, "DECLARE gp_evil CURSOR WITH HOLD FOR SELECT name FROM public.menu_items");
    add_attack(a, n, false, "SET search_path = pg_temp, public");
    add_attack(a, n, false, "SET ROLE %s", evil);
    add_attack(a, n, false, "SET SESSION work_mem = '64MB'");
    add_attack(a, n, false, "%s", HIJACK);
    add_attack(a, n, false, "SELECT lastval()");
    add_attack(a, n, false, "SELECT pg_catalog.count(*) FROM public.menu_items WHERE tenant_id <> public.growplate_tenant()");

    /* Statements that are not eligible but look so to a careless reader
     * of the first keyword: nested comments (/ * / * * / SELECT * / is
     * one comment), a comment opened by "/ * /", a line comment ended by a
     * carriage return. Each runs alone; one that shared a round trip would
     * reach the units behind it before its command tag arrived. */
    a = disguised;
    n = &ndisguised;
    add_attack(a, n, false, "/* /* */ SELECT */ %s", HIJACK);
    add_attack(a, n, false, "/*/ SELECT */ %s", HIJACK);
    add_attack(a, n, false, "--x\r%s /*\nSELECT */", HIJACK);
    add_attack(a, n, false, "/* /* */ SELECT */ BEGIN");
    add_attack(a, n, false, "/*/ SELECT */ START TRANSACTION");
    add_attack(a, n, false, "--\rBEGIN /*\nSELECT */");
    add_attack(a, n, false, "/* /* */ SELECT */ DECLARE gp_evil CURSOR WITH HOLD FOR SELECT name FROM public.menu_items");
    add_attack(a, n, false, "/*/ select */ PREPARE gp_evil AS SELECT 1");
    add_attack(a, n, false, "--\rLISTEN gp_evil /*\nSELECT */");
    add_attack(a, n, false, "/* /* */ WITH */ SET ROLE %s", evil);
    add_attack(a, n, false, "/*/ VALUES */ SET search_path = pg_temp, public");
    add_attack(a, n, false, "/* /* */ TABLE */ CREATE TEMP TABLE menu_items AS SELECT * FROM public.menu_items");
    add_attack(a, n, false, "/*/ ( */ SET work_mem = '64MB'");
    /* and several statements in one string: refused whole, eligible or not */
    add_attack(a, n, true, "SELECT 1; %s", HIJACK);
    add_attack(a, n, true, "SELECT 1; SET ROLE %s", evil);
    add_attack(a, n, true, "select 1;BEGIN");
}

/* A victim's first look at the session, in its own unit: its tenant, only
 * its own rows (unqualified names: a temporary table would shadow them),
 * and a pristine session. $1: the tenant's name prefix ('' for a call
 * without a tenant), $2: an echo. */
static const char OBSERVE[] =
    "SELECT coalesce(public.growplate_tenant()::text, ''),"
    " (SELECT count(*) FROM menu_items),"
    " (SELECT count(*) FROM menu_items WHERE left(name, 8) <> $1::text)"
    "  + (SELECT count(*) FROM menu_categories WHERE left(name, 8) <> $1::text),"
    " pg_catalog.current_setting('search_path') || ' ' || pg_catalog.current_setting('work_mem')"
    "  || ' ' || pg_catalog.current_setting('statement_timeout')"
    "  || ' ' || pg_catalog.current_setting('default_transaction_read_only')"
    "  || ' ' || pg_catalog.current_setting('transaction_isolation')"
    "  || ' [' || coalesce(pg_catalog.current_setting('app.tenant_token', true), '')"
    "  || coalesce(pg_catalog.current_setting('app.tenant_id', true), '') || ']',"
    " (CURRENT_USER = SESSION_USER)::int4,"
    " (SELECT count(*) FROM pg_catalog.pg_cursors WHERE name <> '')"
    "  + (SELECT count(*) FROM pg_catalog.pg_prepared_statements WHERE from_sql)"
    "  + (SELECT count(*) FROM pg_catalog.pg_listening_channels())"
    "  + (SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()),"
    " $2::int8";
#define PRISTINE "\"$user\", public 4MB 0 off read committed []"

/* Check an OBSERVE result: tenant t (-1: a call without a tenant). */
static void check_observe(tally_t *w, gp_status_t st, const gp_error_t *e, const gp_result_t *r, int t, int64_t echo)
{
    const char *who = t >= 0 ? tenants[t] : "no tenant";
    if (st != GP_OK) {
        bad(w, "victim (%s): %s: %s (%s)", who, gp_strerror(st), e->message, e->sqlstate);
        return;
    }
    if (!int_is(r, 0, 6, echo))
        bad(w, "victim (%s): echo %lld, want %lld: another caller's result", who, (long long)int_of(r, 0, 6),
            (long long)echo);
    else if (!text_is(r, 0, 0, t >= 0 ? tenants[t] : ""))
        bad(w, "ISOLATION: victim (%s) acted as tenant '%s'", who, text_of(r, 0, 0));
    else if (!int_is(r, 0, 1, t >= 0 ? 2 : 0) || !int_is(r, 0, 2, 0))
        bad(w, "ISOLATION: victim (%s) saw %lld items, %lld rows not its own", who, (long long)int_of(r, 0, 1),
            (long long)int_of(r, 0, 2));
    else if (!text_is(r, 0, 3, PRISTINE) || !int_is(r, 0, 4, 1) || !int_is(r, 0, 5, 0))
        bad(w, "victim (%s): the session was not pristine: '%s', role kept %lld, %lld cursors, SQL-level prepared "
            "statements, listens and temporary objects", who, text_of(r, 0, 3), (long long)int_of(r, 0, 4),
            (long long)int_of(r, 0, 5));
}

typedef struct victim {
    tally_t t;
    gp_pool_t *pool;
    int iters;
    char marker; /* its inserted categories are named <prefix>-<marker><thread>-<i> */
    int inserted[NTENANTS];
} victim_t;

static void victim_main(void *arg)
{
    victim_t *v = arg;
    for (int i = 0; i < v->iters; i++) {
        uint64_t r = next(&v->t);
        int t = (int)(r % NTENANTS), kind = (int)((r >> 8) % 10);
        int64_t echo = (int64_t)v->t.id * 100000 + i;
        gp_result_t *res = NULL;
        gp_error_t e;
        gp_status_t st;
        v->t.calls++;
        if (kind < 6) {
            st = gp_tenant_query(v->pool, tenants[t], OBSERVE, GP_ARGS(gp_text(prefixes[t]), gp_int64(echo)), &res, &e);
            check_observe(&v->t, st, &e, res, t, echo);
        } else if (kind < 8) {
            char name[64];
            int64_t n = -1;
            snprintf(name, sizeof name, "%s-%c%d-%d", prefixes[t], v->marker, v->t.id, i);
            st = gp_tenant_exec(v->pool, tenants[t], "INSERT INTO menu_categories (tenant_id, name)"
                                " VALUES (public.growplate_tenant(), $1)", GP_ARGS(gp_text(name)), &n, &e);
            if (st != GP_OK || n != 1)
                bad(&v->t, "victim insert for %s: %s, %lld rows: %s (%s)", tenants[t], gp_strerror(st), (long long)n,
                    e.message, e.sqlstate);
            else
                v->inserted[t]++;
        } else {
            st = gp_pool_query(v->pool, OBSERVE, GP_ARGS(gp_text(""), gp_int64(echo)), &res, &e);
            check_observe(&v->t, st, &e, res, -1, echo);
        }
        gp_result_free(res);
    }
}

typedef struct attacker {
    tally_t t;
    gp_pool_t *pool;
    int iters;
    const attack_t *list;
    int n;
    int outcome[MAX_ATTACKS][4]; /* OK, SERVER, INVALID, other */
} attacker_t;

static void attacker_main(void *arg)
{
    attacker_t *a = arg;
    for (int i = 0; i < a->iters; i++) {
        uint64_t r = next(&a->t);
        int k = (int)(r % (uint64_t)a->n), t = (int)((r >> 8) % NTENANTS);
        gp_error_t e;
        gp_status_t st = (r >> 16) % 4 ? gp_tenant_exec(a->pool, tenants[t], a->list[k].sql, 0, NULL, NULL, &e)
                                       : gp_pool_exec(a->pool, a->list[k].sql, 0, NULL, NULL, &e);
        a->t.calls++;
        a->outcome[k][st == GP_OK ? 0 : st == GP_ERR_SERVER ? 1 : st == GP_ERR_INVALID ? 2 : 3]++;
        if (st == GP_OK && a->list[k].must_fail)
            bad(&a->t, "attack succeeded: %.80s", a->list[k].sql);
        /* An attack that sets a tiny statement_timeout for the session may
         * have the rest of its own unit (the sweep) cancelled: it times out
         * and rolls back, which harms nobody but the attacker. */
        bool own_timeout = st == GP_ERR_TIMEOUT && strstr(a->list[k].sql, "statement_timeout");
        if (st != GP_OK && st != GP_ERR_SERVER && st != GP_ERR_INVALID && !own_timeout)
            bad(&a->t, "attack %.60s: %s: %s", a->list[k].sql, gp_strerror(st), e.message);
    }
}

static void print_outcomes(attacker_t *a, int nattackers, const attack_t *list, int n)
{
    for (int k = 0; k < n; k++) {
        int o[4] = {0};
        for (int i = 0; i < nattackers; i++)
            for (int j = 0; j < 4; j++)
                o[j] += a[i].outcome[k][j];
        char one_line[64];
        snprintf(one_line, sizeof one_line, "%s", list[k].sql);
        for (char *p = one_line; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        fprintf(stderr, "  ok %2d, server error %2d, invalid %2d, other %d: %s\n", o[0], o[1], o[2], o[3], one_line);
    }
}

/* Victims' inserted categories (names with the marker) per tenant, as the
 * superuser sees them, against what the victims were told committed; and
 * no row anywhere in a tenant that is not its own. */
static int check_inserted(const victim_t *v, int nvictims, char marker)
{
    int want[NTENANTS] = {0}, wrong = 0;
    for (int i = 0; i < nvictims; i++)
        for (int t = 0; t < NTENANTS; t++)
            want[t] += v[i].inserted[t];
    PGconn *c = gp_scratch_connect(scratch.admin);
    for (int t = 0; t < NTENANTS; t++) {
        char sql[300], buf[32];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM public.menu_categories WHERE tenant_id = '%s'"
                 " AND name LIKE '%s-%c%%'", tenants[t], prefixes[t], marker);
        gp_scratch_value(c, sql, buf, sizeof buf);
        if (atoi(buf) != want[t]) {
            fprintf(stderr, "  tenant %s: %s categories stored, %d reported committed\n", tenants[t], buf, want[t]);
            wrong++;
        }
    }
    char buf[32];
    gp_scratch_value(c, "SELECT (SELECT count(*) FROM public.menu_categories WHERE left(name, 8) <> left(tenant_id::text, 8))"
                        " + (SELECT count(*) FROM public.menu_items WHERE left(name, 8) <> left(tenant_id::text, 8))",
                     buf, sizeof buf);
    if (atoi(buf) != 0) {
        fprintf(stderr, "  %s rows stored in a tenant not their own\n", buf);
        wrong++;
    }
    PQfinish(c);
    return wrong;
}

/* Victims and attackers at once on 8 connections; returns the pool's
 * metrics of the run. */
static gp_pool_metrics_t victims_and_attackers(const attack_t *list, int n, char marker, int nvictims, int nattackers,
                                               int iters, const char *what)
{
    grant_temporary(true); /* the temporary shadows are real */
    gp_config_t cfg;
    base_config(&cfg, 8);
    gp_test_capture_logs(GP_LOG_WARN); /* resets after hostile calls may log; off the output */
    gp_pool_t *pool = open_pool(&cfg);
    victim_t *v = calloc((size_t)nvictims, sizeof *v);
    attacker_t *a = calloc((size_t)nattackers, sizeof *a);
    crew_t *crew = calloc(1, sizeof *crew);
    /* interleaved in the crew, so that they start mixed */
    for (int i = 0; i < nvictims || i < nattackers; i++) {
        if (i < nvictims) {
            tally_init(&v[i].t, i);
            v[i].pool = pool;
            v[i].iters = iters;
            v[i].marker = marker;
            crew_add(crew, victim_main, &v[i]);
        }
        if (i < nattackers) {
            tally_init(&a[i].t, 1000 + i);
            a[i].pool = pool;
            a[i].iters = iters;
            a[i].list = list;
            a[i].n = n;
            crew_add(crew, attacker_main, &a[i]);
        }
    }
    bool on_time = crew_run(crew, what);
    int nbad = 0, calls = 0;
    for (int i = 0; i < nvictims; i++) {
        nbad += report(&v[i].t);
        calls += v[i].t.calls;
    }
    for (int i = 0; i < nattackers; i++) {
        nbad += report(&a[i].t);
        calls += a[i].t.calls;
    }
    fprintf(stderr, "%s: %d calls (%d victims, %d attackers, %d tenants), %d wrong; the attacks:\n", what, calls,
            nvictims, nattackers, NTENANTS, nbad);
    print_outcomes(a, nattackers, list, n);
    gp_pool_metrics_t m = metrics(pool, what);
    int64_t locks = advisory_locks();
    int wrong_rows = check_inserted(v, nvictims, marker);
    grant_temporary(false);
    free(v);
    free(a);
    free(crew);
    close_pool(pool, &cfg);
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
    assert_true(on_time);
    assert_int_equal(nbad, 0);
    assert_int_equal(wrong_rows, 0);
    if (locks)
        fprintf(stderr, "%s: %lld session advisory locks held by idle pooled connections\n", what, (long long)locks);
    assert_int_equal(locks, 0);
    return m;
}

/* 32 tenants, 48 victims and 16 attackers on 8 connections (TEMPORARY
 * granted meanwhile, so the temporary shadows are real): every victim only ever
 * acts as its own tenant, sees its own rows and a pristine session, and
 * exactly its committed inserts are stored. */
static void test_tenants_with_attackers(void **state)
{
    (void)state;
    gp_pool_metrics_t m = victims_and_attackers(attacks, nattacks, 'v', 48, 16, 30, "tenants and attackers");
    expect_sharing(&m, "tenants and attackers");
}

/* The disguised statements against victims; then only harmless disguised
 * statements, concurrently: none of them may share a round trip. */
typedef struct alone_worker {
    tally_t t;
    gp_pool_t *pool;
    const char *const *list;
    int n, iters;
} alone_worker_t;

static void alone_main(void *arg)
{
    alone_worker_t *w = arg;
    for (int i = 0; i < w->iters; i++) {
        const char *sql = w->list[next(&w->t) % (uint64_t)w->n];
        gp_error_t e;
        gp_status_t st = w->t.id % 2 ? gp_tenant_exec(w->pool, tenants[w->t.id % NTENANTS], sql, 0, NULL, NULL, &e)
                                     : gp_pool_exec(w->pool, sql, 0, NULL, NULL, &e);
        w->t.calls++;
        if (st != GP_OK)
            bad(&w->t, "%.60s: %s: %s (%s)", sql, gp_strerror(st), e.message, e.sqlstate);
    }
}

/* `threads` callers running only statements from `list`, which must all
 * succeed; returns how many one-shots shared a round trip meanwhile. */
static uint64_t run_alone(gp_pool_t *pool, const char *const *list, int n, int threads, int iters, const char *what)
{
    gp_pool_metrics_t before = metrics(pool, what);
    alone_worker_t w[32];
    crew_t *crew = calloc(1, sizeof *crew);
    assert_true(threads <= 32);
    for (int i = 0; i < threads; i++) {
        tally_init(&w[i].t, i);
        w[i].pool = pool;
        w[i].list = list;
        w[i].n = n;
        w[i].iters = iters;
        crew_add(crew, alone_main, &w[i]);
    }
    bool on_time = crew_run(crew, what);
    int nbad = 0;
    for (int i = 0; i < threads; i++)
        nbad += report(&w[i].t);
    free(crew);
    gp_pool_metrics_t after = metrics(pool, what);
    assert_true(on_time);
    assert_int_equal(nbad, 0);
    return after.oneshot_shared - before.oneshot_shared;
}

static void test_disguised_statements_run_alone(void **state)
{
    (void)state;
    gp_pool_metrics_t m = victims_and_attackers(disguised, ndisguised, 'd', 48, 16, 30, "disguised statements");

    static const char *const harmless[] = {
        "/* /* */ SELECT */ SHOW work_mem",   "/*/ SELECT */ SET work_mem = '8MB'",
        "--x\rSHOW work_mem /*\nSELECT */",  "/* /* */ VALUES */ DO $$BEGIN END$$",
        "/*/ TABLE */ LISTEN gp_ap_phase",   "/* /* */ WITH */ RESET ALL",
        "--\r/* ( */ SHOW search_path /*\nINSERT */",
    };
    gp_config_t cfg;
    base_config(&cfg, 8);
    gp_pool_t *pool = open_pool(&cfg);
    uint64_t shared = run_alone(pool, harmless, (int)(sizeof harmless / sizeof *harmless), 24, 12, "disguised, alone");
    close_pool(pool, &cfg);
    if (shared)
        fprintf(stderr, "disguised, alone: %llu of them shared a round trip: not eligible, they must run alone\n",
                (unsigned long long)shared);
    assert_int_equal(shared, 0);
    expect_sharing(&m, "disguised statements"); /* the victims shared, among themselves */
}

/* ---- what the sweep of a unit refuses, and what it releases ---------------------------------------- */

static bool contains_ci(const char *hay, const char *needle) { return strcasestr(hay, needle) != NULL; }

static int64_t pool_int(gp_pool_t *pool, const char *sql)
{
    gp_result_t *r = NULL;
    gp_error_t e;
    gp_status_t st = gp_pool_query(pool, sql, 0, NULL, &r, &e);
    if (st != GP_OK)
        fprintf(stderr, "%s: %s\n", sql, e.message);
    assert_int_equal(st, GP_OK);
    int64_t v = int_of(r, 0, 0);
    gp_result_free(r);
    return v;
}

static void expect_refused(gp_status_t st, const gp_error_t *e, const char *cause, const char *sql)
{
    if (st != GP_ERR_INVALID || !contains_ci(e->message, cause))
        fprintf(stderr, "%s\n  -> %s (%s: %s); want GP_ERR_INVALID naming '%s'\n", sql, gp_strerror(st), e->sqlstate,
                e->message, cause);
    assert_int_equal(st, GP_ERR_INVALID);
    assert_true(contains_ci(e->message, cause));
}

/* A switched role or a temporary object fails the unit, rolled back whole
 * (query.h: the sweep of a pipelined unit refuses what it cannot undo
 * before the next unit runs; the same statements whether or not a unit
 * shares its round trip). */
static void test_sweep_refuses_role_and_temporary(void **state)
{
    (void)state;
    gp_config_t cfg;
    base_config(&cfg, 1);
    gp_pool_t *pool = open_pool(&cfg);
    admin_sql("DELETE FROM ap_log WHERE id < 0");
    char sql[400];
    gp_error_t e;
    snprintf(sql, sizeof sql, "SELECT set_config('role', '%s', false)", evil);
    expect_refused(gp_pool_exec(pool, sql, 0, NULL, NULL, &e), &e, "role", sql);
    expect_refused(gp_tenant_exec(pool, tenants[1], sql, 0, NULL, NULL, &e), &e, "role", sql);
    assert_int_equal(pool_int(pool, "SELECT (current_user = session_user)::int4"), 1);
    snprintf(sql, sizeof sql, "WITH ins AS (INSERT INTO ap_log (id, v) VALUES (-1, 'role') RETURNING id)"
             " SELECT set_config('role', '%s', false) FROM ins", evil);
    expect_refused(gp_pool_exec(pool, sql, 0, NULL, NULL, &e), &e, "role", sql);
    assert_int_equal(admin_int("SELECT count(*) FROM ap_log WHERE id = -1"), 0); /* rolled back whole */

    grant_temporary(true);
    snprintf(sql, sizeof sql, "SELECT 1 AS x INTO TEMP ap_tmp");
    expect_refused(gp_pool_exec(pool, sql, 0, NULL, NULL, &e), &e, "temporar", sql);
    snprintf(sql, sizeof sql, "WITH ins AS (INSERT INTO ap_log (id, v) VALUES (-2, 'temp') RETURNING id)"
             " SELECT * INTO TEMP menu_items FROM ins");
    expect_refused(gp_tenant_exec(pool, tenants[1], sql, 0, NULL, NULL, &e), &e, "temporar", sql);
    grant_temporary(false);
    assert_int_equal(admin_int("SELECT count(*) FROM ap_log WHERE id = -2"), 0);
    assert_int_equal(pool_int(pool, "SELECT count(*) FROM pg_catalog.pg_class"
                                    " WHERE relnamespace = pg_catalog.pg_my_temp_schema()"), 0);
    close_pool(pool, &cfg);
}

/* Session advisory locks never outlive a call, also when the unit failed
 * after taking one; and several statements in one string are refused. */
static void test_session_locks_released(void **state)
{
    (void)state;
    gp_config_t cfg;
    base_config(&cfg, 1);
    gp_pool_t *pool = open_pool(&cfg);
    gp_error_t e;
    gp_result_t *r = NULL;
    assert_int_equal(gp_pool_query(pool, "SELECT pg_advisory_lock(4242)", 0, NULL, &r, &e), GP_OK);
    gp_result_free(r);
    assert_int_equal(advisory_locks(), 0);
    assert_int_equal(gp_tenant_exec(pool, tenants[2], "SELECT pg_advisory_lock(4243), 1/0", 0, NULL, NULL, &e),
                     GP_ERR_SERVER);
    assert_string_equal(e.sqlstate, "22012");
    int64_t held = advisory_locks(); /* the connection is idle in the pool now */
    if (held)
        fprintf(stderr, "a failed unit's session advisory lock is still held by the idle connection\n");
    assert_int_equal(pool_int(pool, "SELECT 1"), 1);
    assert_int_equal(advisory_locks(), 0); /* the next unit's sweep released it at the latest */
    assert_int_equal(held, 0);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT 1; SELECT set_config('role', '%s', false)", evil);
    assert_int_equal(gp_pool_exec(pool, sql, 0, NULL, NULL, &e), GP_ERR_SERVER);
    assert_string_equal(e.sqlstate, "42601");
    assert_int_equal(pool_int(pool, "SELECT (current_user = session_user)::int4"), 1);
    close_pool(pool, &cfg);
}

/* ---- 5. and 6. connections lost in the middle of batches ------------------------------------------ */

#define LOAD_THREADS 64
#define LOAD_MIN_OPS 30
#define LOAD_MAX_OPS 4000 /* a bound, for a server that never comes back */
#define LOAD_ID(w, op) ((int64_t)(w) * 10000 + (op))

typedef struct load_worker {
    tally_t t;
    gp_pool_t *pool;
    progress_t *progress; /* flag: the disruption is over */
    int nops, ok_after;
    uint8_t st[LOAD_MAX_OPS];
    int count[GP_STATUS_COUNT_];
    char first_error[400]; /* for the report */
} load_worker_t;

/* INSERT one-shots with ids of its own until the disruption is over and
 * one more succeeded after it. Every status is the one the call may
 * give: GP_OK with its row; GP_ERR_CONNECT (retriable: never ran);
 * GP_ERR_COMMIT_UNKNOWN (class connection, not retriable); the server's
 * error of a broken connection; an acquire timeout while the server is
 * away (retriable). */
static void load_main(void *arg)
{
    load_worker_t *w = arg;
    for (int op = 0; op < LOAD_MAX_OPS; op++) {
        bool over = progress_flag(w->progress);
        if (op >= LOAD_MIN_OPS && over && w->ok_after > 0)
            break;
        gp_error_t e;
        int64_t n = -1;
        gp_status_t st = gp_pool_exec(w->pool, "INSERT INTO ap_log (id, v) VALUES ($1, 'load')",
                                      GP_ARGS(gp_int64(LOAD_ID(w->t.id, op))), &n, &e);
        w->st[op] = (uint8_t)st;
        w->nops = op + 1;
        w->t.calls++;
        if (st >= 0 && st < GP_STATUS_COUNT_)
            w->count[st]++;
        if (st != GP_OK && (!w->first_error[0] || (st != GP_ERR_CONNECT && w->first_error[0] == 'c')))
            snprintf(w->first_error, sizeof w->first_error, "%s (%s, %s): %s", gp_strerror(st), e.sqlstate,
                     gp_error_class_name(e.klass), e.message);
        switch (st) {
        case GP_OK:
            if (n != 1)
                bad(&w->t, "insert %d: OK with %lld rows", op, (long long)n);
            if (over)
                w->ok_after++;
            break;
        case GP_ERR_CONNECT:
            if (!e.retriable)
                bad(&w->t, "insert %d: GP_ERR_CONNECT not retriable: %s", op, e.message);
            break;
        case GP_ERR_COMMIT_UNKNOWN:
            if (e.retriable || e.klass != GP_ECLASS_CONNECTION)
                bad(&w->t, "insert %d: GP_ERR_COMMIT_UNKNOWN retriable %d, class %s", op, e.retriable,
                    gp_error_class_name(e.klass));
            break;
        case GP_ERR_SERVER:
            if (e.klass != GP_ECLASS_CONNECTION)
                bad(&w->t, "insert %d: server error %s: %s", op, e.sqlstate, e.message);
            break;
        case GP_ERR_TIMEOUT:
            if (!e.retriable)
                bad(&w->t, "insert %d: timeout not retriable: %s", op, e.message);
            break;
        default:
            bad(&w->t, "insert %d: %s: %s (%s)", op, gp_strerror(st), e.message, e.sqlstate);
            break;
        }
        progress_add(w->progress);
        if (st != GP_OK)
            gp_test_pause_ms(2); /* pacing while the server is away */
    }
    if (!(progress_flag(w->progress) && w->ok_after > 0))
        bad(&w->t, "no insert succeeded after the disruption (%d calls)", w->nops);
}

/* Against the rows stored: a row exactly once for each GP_OK, none for
 * any error but GP_ERR_COMMIT_UNKNOWN (0 or 1), none with an id never
 * used. Returns the number of violations. */
static int check_load(load_worker_t *w, const char *conninfo, int *unknown_out)
{
    PGconn *c = gp_scratch_connect(conninfo);
    PGresult *r = PQexec(c, "SELECT id, count(*) FROM ap_log WHERE id >= 0 GROUP BY id");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    size_t size = (size_t)LOAD_THREADS * 10000;
    uint16_t *rows = calloc(size, sizeof *rows);
    assert_non_null(rows);
    int violations = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        long long id = atoll(PQgetvalue(r, i, 0));
        if (id < 0 || (size_t)id >= size || (int)(id % 10000) >= w[id / 10000].nops) {
            fprintf(stderr, "  row %lld: nobody inserted it\n", id);
            violations++;
        } else {
            rows[id] = (uint16_t)atoi(PQgetvalue(r, i, 1));
        }
    }
    PQclear(r);
    PQfinish(c);
    int counts[GP_STATUS_COUNT_] = {0}, unknown_rows = 0;
    for (int i = 0; i < LOAD_THREADS; i++)
        for (int op = 0; op < w[i].nops; op++) {
            gp_status_t st = (gp_status_t)w[i].st[op];
            unsigned n = rows[LOAD_ID(i, op)];
            counts[st]++;
            bool fine = st == GP_OK ? n == 1 : st == GP_ERR_COMMIT_UNKNOWN ? n <= 1 : n == 0;
            if (st == GP_ERR_COMMIT_UNKNOWN)
                unknown_rows += (int)n;
            if (!fine) {
                violations++;
                fprintf(stderr, "  insert %lld: %s, %u rows stored\n", (long long)LOAD_ID(i, op), gp_strerror(st), n);
            }
        }
    free(rows);
    int total = 0;
    for (int s = 0; s < GP_STATUS_COUNT_; s++)
        total += counts[s];
    fprintf(stderr, "  ok %d, connect %d, commit unknown %d (%d of them committed), server %d, timeout %d, other %d\n",
            counts[GP_OK], counts[GP_ERR_CONNECT], counts[GP_ERR_COMMIT_UNKNOWN], unknown_rows, counts[GP_ERR_SERVER],
            counts[GP_ERR_TIMEOUT],
            total - counts[GP_OK] - counts[GP_ERR_CONNECT] - counts[GP_ERR_COMMIT_UNKNOWN] - counts[GP_ERR_SERVER] -
                counts[GP_ERR_TIMEOUT]);
    *unknown_out = counts[GP_ERR_COMMIT_UNKNOWN];
    return violations;
}

/* Runs the load with a disruptor in the same crew; checks every call.
 * *m: the pool's metrics after it. */
static void run_load(gp_pool_t *pool, progress_t *prog, void (*disrupt)(void *), void *arg, const char *conninfo,
                     const char *what, gp_pool_metrics_t *m)
{
    load_worker_t *w = calloc(LOAD_THREADS, sizeof *w);
    crew_t *crew = calloc(1, sizeof *crew);
    assert_non_null(w);
    for (int i = 0; i < LOAD_THREADS; i++) {
        tally_init(&w[i].t, i);
        w[i].pool = pool;
        w[i].progress = prog;
        crew_add(crew, load_main, &w[i]);
    }
    crew_add(crew, disrupt, arg);
    bool on_time = crew_run(crew, what);
    int nbad = 0;
    const char *first_error = "none";
    for (int i = 0; i < LOAD_THREADS; i++) {
        nbad += report(&w[i].t);
        if (w[i].first_error[0] && first_error[0] == 'n')
            first_error = w[i].first_error;
    }
    fprintf(stderr, "%s: the first error a caller got: %s\n", what, first_error);
    fprintf(stderr, "%s: every caller returned: %s; %d wrong statuses; against the table:\n", what,
            on_time ? "yes" : "NO", nbad);
    int unknown = 0;
    int violations = check_load(w, conninfo, &unknown);
    *m = metrics(pool, what);
    free(w);
    free(crew);
    assert_true(on_time);
    assert_int_equal(nbad, 0);
    assert_int_equal(violations, 0);
    assert_int_equal(m->oneshot_unknown, (uint64_t)unknown);
}

typedef struct killer {
    progress_t *progress;
    const char *conninfo;
    int rounds, killed, failed;
    char error[300];
} killer_t;

/* At evenly spaced points of the load's progress, terminate every backend
 * of the pool (a superuser's pg_terminate_backend from its own session). */
static void killer_main(void *arg)
{
    killer_t *k = arg;
    PGconn *c = PQconnectdb(k->conninfo);
    for (int round = 0; round < k->rounds && PQstatus(c) == CONNECTION_OK; round++) {
        if (!progress_wait(k->progress, (long)(round + 1) * 250)) {
            snprintf(k->error, sizeof k->error, "round %d: the load made no progress", round);
            k->failed++;
            break;
        }
        PGresult *r = PQexec(c, "SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity"
                                " WHERE datname = current_database() AND usename = 'growplate_app'");
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            k->killed += atoi(PQgetvalue(r, 0, 0));
        else {
            snprintf(k->error, sizeof k->error, "%s", PQresultErrorMessage(r));
            k->failed++;
        }
        PQclear(r);
    }
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(k->error, sizeof k->error, "%s", PQerrorMessage(c));
        k->failed++;
    }
    PQfinish(c);
    progress_set_flag(k->progress);
}

/* 64 threads of INSERT one-shots on 8 connections; the pool's backends
 * terminated five times in the middle: no caller hangs, every status is
 * truthful about the row. */
static void test_terminate_backends_mid_batch(void **state)
{
    (void)state;
    admin_conninfo = scratch.admin;
    admin_sql("TRUNCATE ap_log");
    gp_config_t cfg;
    base_config(&cfg, 8);
    gp_test_capture_logs(GP_LOG_WARN);
    gp_pool_t *pool = open_pool(&cfg);
    progress_t prog;
    progress_init(&prog);
    killer_t k = {.progress = &prog, .conninfo = scratch.admin, .rounds = 5};
    gp_pool_metrics_t m;
    run_load(pool, &prog, killer_main, &k, scratch.admin, "terminated backends", &m);
    fprintf(stderr, "terminated backends: %d backends terminated in %d rounds\n", k.killed, k.rounds);
    progress_destroy(&prog);
    close_pool(pool, &cfg);
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
    if (k.failed)
        fprintf(stderr, "killer: %s\n", k.error);
    assert_int_equal(k.failed, 0);
    assert_true(k.killed > 0);
    expect_sharing(&m, "terminated backends");
}

/* A PostgreSQL of this test's own (scripts/services with a private
 * GP_SERVICES_KEY): restarted in the middle of the load. */
static char restart_key[64], restart_url[512], restart_admin[512];

static int restart_setup(void **state)
{
    (void)state;
    snprintf(restart_key, sizeof restart_key, "autopipe-%d", (int)getpid());
    char owner[512];
    if (gp_test_key_services(restart_key, "start postgres >/dev/null") != 0 ||
        !gp_test_key_env(restart_key, "DATABASE_URL", restart_url, sizeof restart_url) ||
        !gp_test_key_env(restart_key, "DATABASE_MIGRATION_URL", owner, sizeof owner) ||
        !gp_test_key_env(restart_key, "GP_PG_ADMIN_CONNINFO", restart_admin, sizeof restart_admin)) {
        gp_test_key_services(restart_key, "clean >/dev/null 2>&1");
        return -1;
    }
    PGconn *c = PQconnectdb(owner);
    if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        return -1;
    }
    PGresult *r = PQexec(c, "CREATE TABLE ap_log (id int8 NOT NULL, v text); GRANT SELECT, INSERT ON ap_log TO growplate_app");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

static int restart_teardown(void **state)
{
    after_test(state);
    gp_test_key_services(restart_key, "clean >/dev/null 2>&1");
    return 0;
}

typedef struct restarter {
    progress_t *progress;
    int rc;
} restarter_t;

static void restarter_main(void *arg)
{
    restarter_t *rs = arg;
    if (progress_wait(rs->progress, 400))
        rs->rc = gp_test_key_services(restart_key, "restart postgres >/dev/null");
    else
        rs->rc = -2;
    progress_set_flag(rs->progress);
}

static void test_restart_mid_batch(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_test_config(&cfg);
    cfg.db.url = restart_url;
    cfg.db.migration_url = NULL;
    cfg.db.pool_min = 8;
    cfg.db.pool_max = 8;
    cfg.db.acquire_timeout_ms = 3000;
    cfg.db.connect_timeout_ms = 2000;
    admin_conninfo = restart_admin;
    gp_test_capture_logs(GP_LOG_WARN);
    gp_pool_t *pool = track(gp_test_pool(&cfg));
    progress_t prog;
    progress_init(&prog);
    restarter_t rs = {.progress = &prog, .rc = -1};
    gp_pool_metrics_t m;
    run_load(pool, &prog, restarter_main, &rs, restart_admin, "server restart", &m);
    progress_destroy(&prog);
    fprintf(stderr, "server restart: %llu connections closed broken\n", (unsigned long long)m.closed[GP_CLOSE_BROKEN]);
    close_pool(pool, &cfg);
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
    assert_int_equal(rs.rc, 0);
    assert_true(m.closed[GP_CLOSE_BROKEN] > 0); /* the restart did break connections under load */
    expect_sharing(&m, "server restart");
}

/* ---- a server that stops answering in the middle of batches ---------------------------------------- */

#define FROZEN_THREADS 24
#define FROZEN_MS 300

typedef struct frozen_worker {
    tally_t t;
    gp_pool_t *pool;
    progress_t *progress; /* flag: the backends were thawed */
    progress_t *failures; /* calls that failed */
    int64_t max_ms;
    int failed;
    char longest[400]; /* what the longest call returned */
} frozen_worker_t;

static void frozen_main(void *arg)
{
    frozen_worker_t *w = arg;
    for (int i = 0; i < 20 || !progress_flag(w->progress); i++) {
        int64_t v = (int64_t)w->t.id * 100000 + i;
        gp_result_t *res = NULL;
        gp_error_t e;
        int64_t t0 = gp__now_ns();
        gp_status_t st = i % 2 ? gp_tenant_query(w->pool, tenants[w->t.id % NTENANTS],
                                                 "SELECT $1::int8 + k FROM public.ap_block", GP_ARGS(gp_int64(v)),
                                                 &res, &e)
                               : gp_pool_query(w->pool, "SELECT $1::int8 + k FROM public.ap_block", GP_ARGS(gp_int64(v)),
                                               &res, &e);
        int64_t ms = (gp__now_ns() - t0) / 1000000;
        w->t.calls++;
        if (ms > w->max_ms) {
            w->max_ms = ms;
            snprintf(w->longest, sizeof w->longest, "%s call %d: %s (%s: %s)", i % 2 ? "tenant" : "system", i,
                     gp_strerror(st), e.sqlstate, st == GP_OK ? "" : e.message);
        }
        if (st == GP_OK && !int_is(res, 0, 0, v + 1))
            bad(&w->t, "call %d: another caller's answer", i);
        else if (st != GP_OK && st != GP_ERR_TIMEOUT && st != GP_ERR_CONNECT &&
                 !(st == GP_ERR_COMMIT_UNKNOWN && !e.retriable))
            bad(&w->t, "call %d: %s (%s: %s)", i, gp_strerror(st), e.sqlstate, e.message);
        if (st != GP_OK) {
            w->failed++;
            progress_add(w->failures);
        }
        gp_result_free(res);
        progress_add(w->progress);
    }
}

typedef struct freezer {
    progress_t *progress, *failures;
    int pids[64], n;
    char error[300];
} freezer_t;

/* Once the load runs, stop (SIGSTOP) the pool's backends in the middle of
 * their statements: each is caught waiting for a table lock held by a
 * session of ours (SIGSTOP mid-statement could catch a backend holding a
 * lightweight lock and stall the whole server; waiting for a heavyweight
 * lock it holds none), then the lock is released: the frozen backends
 * answer nothing more. Once a call failed for each of them and the callers
 * have finished more calls (on new connections), they go again. */
static void freezer_main(void *arg)
{
    freezer_t *f = arg;
    if (!progress_wait(f->progress, 200)) {
        snprintf(f->error, sizeof f->error, "the load made no progress");
        progress_set_flag(f->progress);
        return;
    }
    /* One session holds the lock; another looks (pg_stat_activity is read
     * once per transaction: not from inside the locking one). */
    PGconn *locker = PQconnectdb(admin_conninfo), *c = PQconnectdb(admin_conninfo);
    PGresult *r = PQexec(locker, "BEGIN; LOCK TABLE public.ap_block IN ACCESS EXCLUSIVE MODE");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        snprintf(f->error, sizeof f->error, "%s", PQresultErrorMessage(r));
    PQclear(r);
    for (int polls = 0; !f->error[0] && polls < 3000 && f->n < 4; polls++) { /* polled: the server tells no one */
        r = PQexec(c, "SELECT pid FROM pg_catalog.pg_stat_activity WHERE datname = current_database()"
                      " AND usename = 'growplate_app' AND wait_event_type = 'Lock'");
        for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r) && f->n < 64; i++) {
            int pid = atoi(PQgetvalue(r, i, 0)), seen = 0;
            for (int j = 0; j < f->n; j++)
                seen |= f->pids[j] == pid;
            if (!seen && kill(pid, SIGSTOP) == 0)
                f->pids[f->n++] = pid;
        }
        PQclear(r);
        if (f->n < 4)
            gp_test_pause_ms(1);
    }
    PQclear(PQexec(locker, "COMMIT"));
    PQfinish(locker);
    PQfinish(c);
    progress_wait(f->failures, f->n); /* at most HANG_S each: then the durations tell */
    pthread_mutex_lock(&f->progress->mu);
    long at = f->progress->count;
    pthread_mutex_unlock(&f->progress->mu);
    progress_wait(f->progress, at + FROZEN_THREADS * 5);
    for (int i = 0; i < f->n; i++)
        kill(f->pids[i], SIGCONT);
    progress_set_flag(f->progress);
}

/* The pool's backends frozen mid-statement under a load of 24 callers on
 * 4 connections with DATABASE_QUERY_TIMEOUT: no call outlives its deadline
 * by much (the leader gives up a server silent for DATABASE_QUERY_TIMEOUT),
 * each gets its own answer or a failure (GP_ERR_COMMIT_UNKNOWN for a unit
 * sent but unanswered, GP_ERR_CONNECT or GP_ERR_TIMEOUT for one that never
 * ran), and the pool serves again on new connections while the old
 * backends stay frozen. */
static void test_frozen_server_mid_batch(void **state)
{
    (void)state;
    gp_config_t cfg;
    base_config(&cfg, 4);
    cfg.db.query_timeout_ms = FROZEN_MS;
    gp_test_capture_logs(GP_LOG_WARN);
    gp_pool_t *pool = open_pool(&cfg);
    progress_t prog, failures;
    progress_init(&prog);
    progress_init(&failures);
    frozen_worker_t w[FROZEN_THREADS];
    freezer_t f;
    memset(&f, 0, sizeof f);
    f.progress = &prog;
    f.failures = &failures;
    crew_t *crew = calloc(1, sizeof *crew);
    for (int i = 0; i < FROZEN_THREADS; i++) {
        tally_init(&w[i].t, i);
        w[i].pool = pool;
        w[i].progress = &prog;
        w[i].failures = &failures;
        w[i].max_ms = 0;
        w[i].failed = 0;
        w[i].longest[0] = 0;
        crew_add(crew, frozen_main, &w[i]);
    }
    crew_add(crew, freezer_main, &f);
    bool on_time = crew_run(crew, "frozen server");
    for (int i = 0; i < f.n; i++) /* whatever happened: never leave a backend stopped */
        kill(f.pids[i], SIGCONT);
    int nbad = 0, failed = 0, calls = 0;
    int64_t max_ms = 0;
    const char *longest = "";
    for (int i = 0; i < FROZEN_THREADS; i++) {
        nbad += report(&w[i].t);
        failed += w[i].failed;
        calls += w[i].t.calls;
        if (w[i].max_ms > max_ms) {
            max_ms = w[i].max_ms;
            longest = w[i].longest;
        }
    }
    fprintf(stderr, "frozen server: %d backends stopped; %d calls, %d failed, the longest took %lld ms: %s\n", f.n,
            calls, failed, (long long)max_ms, longest);
    gp_pool_metrics_t m = metrics(pool, "frozen server");
    progress_destroy(&prog);
    progress_destroy(&failures);
    free(crew);
    close_pool(pool, &cfg);
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
    if (f.error[0])
        fprintf(stderr, "freezer: %s\n", f.error);
    assert_true(on_time);
    assert_int_equal(nbad, 0);
    assert_true(f.n > 0);
    assert_true(failed > 0);
    /* the unit's deadline, the leader's grace of one more, and a wait for
     * a connection meanwhile: far below a hang */
    assert_true(max_ms < 4 * FROZEN_MS + 1500);
    expect_sharing(&m, "frozen server");
}

/* ---- fairness across tenants ------------------------------------------------------------------------ */

#define FAIR_NOISY 12
#define FAIR_SLEEP_MS 50
#define FAIR_CALLS 20

typedef struct fair_worker {
    tally_t t;
    gp_pool_t *pool;
    progress_t *progress; /* count: the noisy tenant's calls; flag: the quiet one is done */
    bool quiet;
    int64_t lat_ms[FAIR_CALLS];
} fair_worker_t;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void fair_main(void *arg)
{
    fair_worker_t *w = arg;
    gp_error_t e;
    if (!w->quiet) { /* tenant 0: the same 50 ms statement, again and again (it is soon known as slow) */
        while (!progress_flag(w->progress)) {
            gp_status_t st = gp_tenant_exec(w->pool, tenants[0], "SELECT pg_sleep(0.05)", 0, NULL, NULL, &e);
            w->t.calls++;
            if (st != GP_OK)
                bad(&w->t, "noisy call: %s: %s", gp_strerror(st), e.message);
            progress_add(w->progress);
        }
        return;
    }
    /* tenant 1: one caller with a small statement, once the noisy one
     * fills the queue */
    if (!progress_wait(w->progress, FAIR_NOISY * 3)) {
        bad(&w->t, "the noisy tenant made no progress");
    } else {
        for (int i = 0; i < FAIR_CALLS; i++) {
            gp_result_t *res = NULL;
            int64_t t0 = gp__now_ns();
            gp_status_t st = gp_tenant_query(w->pool, tenants[1], "SELECT $1::int8", GP_ARGS(gp_int64(i)), &res, &e);
            w->lat_ms[i] = (gp__now_ns() - t0) / 1000000;
            w->t.calls++;
            if (st != GP_OK || !int_is(res, 0, 0, i))
                bad(&w->t, "quiet call %d: %s: %s", i, gp_strerror(st), e.message);
            gp_result_free(res);
        }
    }
    progress_set_flag(w->progress);
}

/* One tenant keeps 12 callers of a 50 ms statement queued on 2
 * connections; another tenant's single caller of a small statement is
 * served next, as the tenant-fair pool serves it without pipelining
 * (pool.h "Fairness"; query.h: "one per tenant in turn ... a tenant with
 * many queued callers gets no more of a round trip than one with a single
 * caller while both wait"): its median latency stays within a few of the
 * noisy tenant's statements, not behind all of them. Returns the median. */
static int64_t fairness_case(int batch, const char *what)
{
    gp_config_t cfg;
    base_config(&cfg, 2);
    cfg.db.pipeline_batch = batch;
    gp_pool_t *pool = open_pool(&cfg);
    progress_t prog;
    progress_init(&prog);
    fair_worker_t w[FAIR_NOISY + 1];
    crew_t *crew = calloc(1, sizeof *crew);
    for (int i = 0; i <= FAIR_NOISY; i++) {
        tally_init(&w[i].t, i);
        w[i].pool = pool;
        w[i].progress = &prog;
        w[i].quiet = i == FAIR_NOISY;
        crew_add(crew, fair_main, &w[i]);
    }
    bool on_time = crew_run(crew, what);
    int nbad = 0;
    for (int i = 0; i <= FAIR_NOISY; i++)
        nbad += report(&w[i].t);
    int64_t *lat = w[FAIR_NOISY].lat_ms;
    qsort(lat, FAIR_CALLS, sizeof *lat, cmp_i64);
    fprintf(stderr, "%s: the quiet tenant's latency: median %lld ms, max %lld ms (the noisy tenant's statement: %d ms)\n",
            what, (long long)lat[FAIR_CALLS / 2], (long long)lat[FAIR_CALLS - 1], FAIR_SLEEP_MS);
    int64_t median = lat[FAIR_CALLS / 2];
    progress_destroy(&prog);
    free(crew);
    close_pool(pool, &cfg);
    assert_true(on_time);
    assert_int_equal(nbad, 0);
    return median;
}

static void test_tenant_fairness(void **state)
{
    (void)state;
    int64_t batched = fairness_case(16, "fairness, DATABASE_PIPELINE_BATCH=16");
    int64_t single = fairness_case(1, "fairness, DATABASE_PIPELINE_BATCH=1");
    assert_true(batched < 3 * FAIR_SLEEP_MS);
    assert_true(single < 3 * FAIR_SLEEP_MS);
}

/* ---- 7. large results among small ones --------------------------------------------------------------- */

#define BIG_PARAM (300 * 1024)

typedef struct mixed_worker {
    tally_t t;
    gp_pool_t *pool;
    bool big;
    int iters;
} mixed_worker_t;

static void big_call(mixed_worker_t *w, int i)
{
    uint64_t r = next(&w->t);
    gp_result_t *res = NULL;
    gp_error_t e;
    gp_status_t st;
    char tag[64];
    snprintf(tag, sizeof tag, "w%d-i%d", w->t.id, i);
    int64_t echo = (int64_t)w->t.id * 1000 + i;
    switch (r % 3) {
    case 0: { /* about 1 MB of text */
        int32_t n = 1000000 + w->t.id * 10 + i;
        st = gp_pool_query(w->pool, "SELECT repeat('x', $1::int4) || $2::text", GP_ARGS(gp_int32(n), gp_text(tag)),
                           &res, &e);
        const char *s = NULL;
        size_t len = 0;
        if (st != GP_OK || gp_get_text(res, 0, 0, &s, &len) != GP_OK || len != (size_t)n + strlen(tag) || s[0] != 'x' ||
            strcmp(s + n, tag) != 0)
            bad(&w->t, "1 MB text %s: %s, %zu bytes: %s", tag, gp_strerror(st), len, e.message);
        break;
    }
    case 1: /* 100,000 rows */
        st = gp_pool_query(w->pool, "SELECT g, $1::int8 FROM generate_series(1, 100000) g", GP_ARGS(gp_int64(echo)), &res,
                           &e);
        if (st != GP_OK || gp_result_rows(res) != 100000 || !int_is(res, 0, 0, 1) || !int_is(res, 99999, 0, 100000) ||
            !int_is(res, 0, 1, echo) || !int_is(res, 99999, 1, echo))
            bad(&w->t, "100k rows %s: %s, %d rows: %s", tag, gp_strerror(st), st == GP_OK ? gp_result_rows(res) : -1,
                e.message);
        break;
    default: { /* a large parameter */
        char *p = malloc(BIG_PARAM + 1);
        for (int k = 0; k < BIG_PARAM; k++)
            p[k] = (char)('a' + (k + w->t.id + i) % 26);
        p[BIG_PARAM] = 0;
        snprintf(p, 17, "%-16s", tag); /* its own head... */
        p[16] = 'z';
        memcpy(p + BIG_PARAM - 16, p, 16); /* ...and tail */
        st = gp_pool_query(w->pool, "SELECT length($1::text), left($1::text, 16), right($1::text, 16), $2::int8",
                           GP_ARGS(gp_text(p), gp_int64(echo)), &res, &e);
        char head[17];
        memcpy(head, p, 16);
        head[16] = 0;
        if (st != GP_OK || !int_is(res, 0, 0, BIG_PARAM) || !text_is(res, 0, 1, head) || !text_is(res, 0, 2, head) ||
            !int_is(res, 0, 3, echo))
            bad(&w->t, "300 kB parameter %s: %s: %s", tag, gp_strerror(st), e.message);
        free(p);
        break;
    }
    }
    gp_result_free(res);
}

static void mixed_main(void *arg)
{
    mixed_worker_t *w = arg;
    for (int i = 0; i < w->iters; i++) {
        w->t.calls++;
        if (w->big) {
            big_call(w, i);
            continue;
        }
        int64_t v = (int64_t)w->t.id * 1000 + i;
        gp_result_t *res = NULL;
        gp_error_t e;
        gp_status_t st = gp_pool_query(w->pool, "SELECT $1::int8 * 3, 1", GP_ARGS(gp_int64(v)), &res, &e);
        if (st != GP_OK || gp_result_rows(res) != 1 || !int_is(res, 0, 0, v * 3))
            bad(&w->t, "small call: %s: %s", gp_strerror(st), e.message);
        gp_result_free(res);
    }
}

/* 8 callers of large results (1 MB of text, 100,000 rows, a 300 kB
 * parameter) among 56 callers of small ones: all correct. */
static void test_large_and_small_results(void **state)
{
    (void)state;
    gp_config_t cfg;
    base_config(&cfg, 8);
    gp_pool_t *pool = open_pool(&cfg);
    mixed_worker_t w[64];
    crew_t *crew = calloc(1, sizeof *crew);
    for (int i = 0; i < 64; i++) {
        tally_init(&w[i].t, i);
        w[i].pool = pool;
        w[i].big = i % 8 == 0;
        w[i].iters = w[i].big ? 6 : 40;
        crew_add(crew, mixed_main, &w[i]);
    }
    bool on_time = crew_run(crew, "large and small");
    int nbad = 0;
    for (int i = 0; i < 64; i++)
        nbad += report(&w[i].t);
    free(crew);
    gp_pool_metrics_t m = metrics(pool, "large and small");
    close_pool(pool, &cfg);
    assert_true(on_time);
    assert_int_equal(nbad, 0);
    expect_sharing(&m, "large and small");
}

/* ---- 8. the statement cache ------------------------------------------------------------------------- */

typedef struct forgetter {
    tally_t t;
    gp_pool_t *pool;
    progress_t *progress;
    int calls, outcome[4];
} forgetter_t;

/* Now and then, in the middle of the load, an eligible one-shot makes the
 * server forget every prepared statement of its session (a function
 * running DEALLOCATE ALL): the units behind it in the round trip find
 * their statements gone. */
static void forgetter_main(void *arg)
{
    forgetter_t *f = arg;
    for (int j = 0; j < f->calls; j++) {
        if (!progress_wait(f->progress, (long)(j + 1) * 60))
            break;
        gp_error_t e;
        gp_status_t st = j % 2 ? gp_tenant_exec(f->pool, tenants[j % NTENANTS], "SELECT public.ap_forget()", 0, NULL,
                                                NULL, &e)
                               : gp_pool_exec(f->pool, "SELECT public.ap_forget()", 0, NULL, NULL, &e);
        f->outcome[st == GP_OK ? 0 : st == GP_ERR_SERVER ? 1 : st == GP_ERR_INVALID ? 2 : 3]++;
    }
}

/* The server forgets the statements of a connection in the middle of
 * round trips, by `nforgetters` callers at the same moments: every other
 * caller still gets its answer. */
static void forgotten_case(int nforgetters, const char *what)
{
    gp_config_t cfg;
    base_config(&cfg, 8);
    gp_test_capture_logs(GP_LOG_WARN);
    gp_pool_t *pool = open_pool(&cfg);
    progress_t prog;
    progress_init(&prog);
    forgetter_t f[4];
    memset(f, 0, sizeof f);
    for (int i = 0; i < nforgetters; i++) {
        tally_init(&f[i].t, 900 + i);
        f[i].pool = pool;
        f[i].progress = &prog;
        f[i].calls = 15;
    }
    int wrong = run_routing_with(pool, 32, 30, true, forgetter_main, f, nforgetters, sizeof *f, &prog, what);
    int outcome[4] = {0};
    for (int i = 0; i < nforgetters; i++)
        for (int k = 0; k < 4; k++)
            outcome[k] += f[i].outcome[k];
    fprintf(stderr, "%s: the forgetting calls: ok %d, server error %d, invalid %d, other %d\n", what, outcome[0],
            outcome[1], outcome[2], outcome[3]);
    gp_pool_metrics_t m = metrics(pool, what);
    progress_destroy(&prog);
    close_pool(pool, &cfg);
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
    assert_int_equal(wrong, 0);
    assert_int_equal(outcome[0] + outcome[1] + outcome[2] + outcome[3], 15 * nforgetters);
    expect_sharing(&m, what);
}

static void test_forgotten_statements(void **state)
{
    (void)state;
    forgotten_case(1, "forgotten statements");
    forgotten_case(4, "forgotten statements, 4 forgetters at once");
}

/* DATABASE_STATEMENT_CACHE=0: unnamed statements only, in pipelines too. */
static void test_statement_cache_off(void **state)
{
    (void)state;
    gp_config_t cfg;
    base_config(&cfg, 8);
    cfg.db.statement_cache = 0;
    gp_pool_t *pool = open_pool(&cfg);
    int wrong = run_routing(pool, 48, 30, true, "statement cache off");
    gp_pool_metrics_t m = metrics(pool, "statement cache off");
    close_pool(pool, &cfg);
    assert_int_equal(wrong, 0);
    expect_sharing(&m, "statement cache off");
}

/* ---- 9. DATABASE_PIPELINE_BATCH=1 ----------------------------------------------------------------- */

static void test_batch_of_one(void **state)
{
    (void)state;
    gp_config_t cfg;
    base_config(&cfg, 8);
    cfg.db.pipeline_batch = 1;
    gp_pool_t *pool = open_pool(&cfg);
    int wrong = run_routing(pool, 48, 30, true, "DATABASE_PIPELINE_BATCH=1");
    gp_pool_metrics_t m = metrics(pool, "DATABASE_PIPELINE_BATCH=1");
    close_pool(pool, &cfg);
    assert_int_equal(wrong, 0);
    assert_int_equal(m.oneshot_shared, 0);
    assert_int_equal(m.oneshot_round_trips, m.oneshot_units);
    /* and the variable parses */
    gp_config_t c;
    gp_config_init(&c);
    assert_int_equal(c.db.pipeline_batch, 16);
    char err[GP_ERRBUF_SIZE] = "";
    c.db.pipeline_batch = 0;
    assert_int_equal(gp_config_validate(&c, err, sizeof err), GP_ERR_CONFIG);
    assert_non_null(strstr(err, "DATABASE_PIPELINE_BATCH"));
    gp_config_release(&c);
}

/* ---- 10. statements that are not eligible -------------------------------------------------------- */

typedef struct not_eligible {
    const char *sql;
    gp_status_t st;
    const char *sqlstate; /* for an error */
    const char *value;    /* row 0, column 0, when given */
} not_eligible_t;

static const not_eligible_t not_eligible[] = {
    {"SET work_mem = '64MB'", GP_OK, NULL, NULL},
    {"set search_path = pg_temp, public", GP_OK, NULL, NULL},
    {"SHOW work_mem", GP_OK, NULL, "4MB"},
    {"  show search_path", GP_OK, NULL, "\"$user\", public"},
    {"LISTEN gp_ap_chan", GP_OK, NULL, NULL},
    {"NOTIFY gp_ap_chan", GP_OK, NULL, NULL},
    {"UNLISTEN *", GP_OK, NULL, NULL},
    {"CREATE TEMP TABLE ap_t (x int)", GP_ERR_SERVER, "42501", NULL}, /* migration 0002 */
    {"PREPARE gp_ap_p AS SELECT 1", GP_OK, NULL, NULL},
    {"DECLARE gp_ap_c CURSOR WITH HOLD FOR SELECT 1", GP_OK, NULL, NULL},
    {"DO $$BEGIN PERFORM 1; END$$", GP_OK, NULL, NULL},
    {"EXPLAIN SELECT 1", GP_OK, NULL, NULL},
    {"DEALLOCATE ALL", GP_OK, NULL, NULL},
    {"RESET ALL", GP_OK, NULL, NULL},
    {"BEGIN", GP_OK, NULL, NULL},
};
#define N_NOT_ELIGIBLE ((int)(sizeof not_eligible / sizeof *not_eligible))

static void not_eligible_call(tally_t *t, gp_pool_t *pool, const not_eligible_t *x, int tenant)
{
    gp_result_t *res = NULL;
    gp_error_t e;
    gp_status_t st = tenant >= 0 ? gp_tenant_query(pool, tenants[tenant], x->sql, 0, NULL, &res, &e)
                                 : gp_pool_query(pool, x->sql, 0, NULL, &res, &e);
    t->calls++;
    if (st != x->st || (x->sqlstate && strcmp(e.sqlstate, x->sqlstate) != 0))
        bad(t, "%s: %s (%s: %s), want %s %s", x->sql, gp_strerror(st), e.sqlstate, e.message, gp_strerror(x->st),
            x->sqlstate ? x->sqlstate : "");
    else if (st == GP_OK && x->value && !text_is(res, 0, 0, x->value))
        bad(t, "%s: '%s', want '%s'", x->sql, text_of(res, 0, 0), x->value);
    else if (st == GP_OK && strncmp(x->sql, "EXPLAIN", 7) == 0 && gp_result_rows(res) < 1)
        bad(t, "%s: no plan", x->sql);
    gp_result_free(res);
}

typedef struct ne_worker {
    tally_t t;
    gp_pool_t *pool;
    int iters;
} ne_worker_t;

static void ne_main(void *arg)
{
    ne_worker_t *w = arg;
    for (int i = 0; i < w->iters; i++) {
        uint64_t r = next(&w->t);
        not_eligible_call(&w->t, w->pool, &not_eligible[r % N_NOT_ELIGIBLE], (r >> 8) % 2 ? (int)((r >> 16) % NTENANTS) : -1);
    }
}

/* SET, SHOW, LISTEN, CREATE TEMP TABLE, PREPARE, DECLARE, DO... through
 * one-shots: what they gave before, alone and among victims; when only
 * they run, concurrently, none shares a round trip. */
static void test_not_eligible_statements(void **state)
{
    (void)state;
    gp_config_t cfg;
    base_config(&cfg, 8);
    gp_test_capture_logs(GP_LOG_WARN);
    gp_pool_t *pool = open_pool(&cfg);
    tally_t t;
    tally_init(&t, 0);
    for (int i = 0; i < N_NOT_ELIGIBLE; i++) {
        not_eligible_call(&t, pool, &not_eligible[i], -1);
        not_eligible_call(&t, pool, &not_eligible[i], i % NTENANTS);
    }
    assert_int_equal(report(&t), 0);

    victim_t *v = calloc(32, sizeof *v);
    ne_worker_t nw[16];
    crew_t *crew = calloc(1, sizeof *crew);
    for (int i = 0; i < 32; i++) {
        tally_init(&v[i].t, i);
        v[i].pool = pool;
        v[i].iters = 30;
        v[i].marker = 'n';
        crew_add(crew, victim_main, &v[i]);
        if (i < 16) {
            tally_init(&nw[i].t, 100 + i);
            nw[i].pool = pool;
            nw[i].iters = 20;
            crew_add(crew, ne_main, &nw[i]);
        }
    }
    bool on_time = crew_run(crew, "not eligible, among victims");
    int nbad = 0;
    for (int i = 0; i < 32; i++)
        nbad += report(&v[i].t);
    for (int i = 0; i < 16; i++)
        nbad += report(&nw[i].t);
    int wrong_rows = check_inserted(v, 32, 'n');
    free(v);
    free(crew);
    assert_true(on_time);
    assert_int_equal(nbad, 0);
    assert_int_equal(wrong_rows, 0);

    static const char *const alone[] = {
        "SET work_mem = '64MB'",           "SHOW work_mem", "LISTEN gp_ap_chan", "PREPARE gp_ap_p AS SELECT 1",
        "DO $$BEGIN PERFORM 1; END$$",     "EXPLAIN SELECT 1", "RESET ALL", "BEGIN",
        "DECLARE gp_ap_c CURSOR WITH HOLD FOR SELECT 1",
    };
    uint64_t shared = run_alone(pool, alone, (int)(sizeof alone / sizeof *alone), 24, 12, "not eligible, alone");
    close_pool(pool, &cfg);
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
    assert_int_equal(shared, 0);
}

/* ---- eligible statements, in every spelling ---------------------------------------------------------- */

typedef enum { SP_ECHO, SP_CONST, SP_ONE_ROW, SP_NO_ROW } spelling_check_t;
typedef struct spelling {
    const char *sql;
    spelling_check_t check;
} spelling_t;

static const spelling_t spellings[] = {
    {"/* lead */ ( select $1::int8 )", SP_ECHO},
    {"-- line comment\nSELECT $1::int8", SP_ECHO},
    {"((VALUES ($1::int8)))", SP_ECHO},
    {"\t\n  with t(a) as (select $1::int8) select a from t", SP_ECHO},
    {"/* /* nested */ still a comment */ SELECT $1::int8", SP_ECHO},
    {"/*/ still a comment */ SeLeCt $1::int8", SP_ECHO},
    {"(/* inside */ (TABLE ap_const))", SP_CONST},
    {"INSERT INTO ap_log (id, v) VALUES ($1, 'spelling')", SP_ONE_ROW},
    {"  delete FROM ap_log WHERE id = $1 AND v = 'never'", SP_NO_ROW},
    {"update ap_log SET v = v WHERE id = $1 AND v = 'never'", SP_NO_ROW},
    {"MERGE INTO ap_log t USING (SELECT $1::int8 AS id) s ON false"
     " WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, 'merge')", SP_ONE_ROW},
};
#define N_SPELLINGS ((int)(sizeof spellings / sizeof *spellings))

typedef struct spell_worker {
    tally_t t;
    gp_pool_t *pool;
    const spelling_t *sp;
    int index, iters;
} spell_worker_t;

static void spell_main(void *arg)
{
    spell_worker_t *w = arg;
    for (int i = 0; i < w->iters; i++) {
        int64_t v = 500000000LL + (int64_t)w->index * 1000000 + (int64_t)w->t.id * 1000 + i;
        gp_result_t *res = NULL;
        gp_error_t e;
        gp_status_t st = w->sp->check == SP_CONST ? gp_pool_query(w->pool, w->sp->sql, 0, NULL, &res, &e)
                                                  : gp_pool_query(w->pool, w->sp->sql, GP_ARGS(gp_int64(v)), &res, &e);
        w->t.calls++;
        bool ok = st == GP_OK;
        switch (w->sp->check) {
        case SP_ECHO:
            ok = ok && gp_result_rows(res) == 1 && int_is(res, 0, 0, v);
            break;
        case SP_CONST:
            ok = ok && gp_result_rows(res) == 1 && int_is(res, 0, 0, 7);
            break;
        case SP_ONE_ROW:
            ok = ok && gp_result_affected(res) == 1;
            break;
        case SP_NO_ROW:
            ok = ok && gp_result_affected(res) == 0;
            break;
        }
        if (!ok)
            bad(&w->t, "%.60s: %s: %s (%s)", w->sp->sql, gp_strerror(st), e.message, e.sqlstate);
        gp_result_free(res);
    }
}

/* Each spelling of an eligible statement (comments, nested ones, line
 * comments, parentheses, case, blanks; SELECT, VALUES, WITH, TABLE,
 * INSERT, UPDATE, DELETE, MERGE) shares round trips when only it runs,
 * from 32 callers at once. */
static void test_eligible_spellings_share(void **state)
{
    (void)state;
    admin_conninfo = scratch.admin;
    admin_sql("DELETE FROM ap_log WHERE id >= 500000000");
    gp_config_t cfg;
    base_config(&cfg, 8);
    gp_pool_t *pool = open_pool(&cfg);
    int nbad = 0, not_shared = 0;
    for (int s = 0; s < N_SPELLINGS; s++) {
        gp_pool_metrics_t before;
        assert_int_equal(gp_pool_metrics(pool, &before), GP_OK);
        spell_worker_t w[32];
        crew_t *crew = calloc(1, sizeof *crew);
        for (int i = 0; i < 32; i++) {
            tally_init(&w[i].t, i);
            w[i].pool = pool;
            w[i].sp = &spellings[s];
            w[i].index = s;
            w[i].iters = 10;
            crew_add(crew, spell_main, &w[i]);
        }
        assert_true(crew_run(crew, spellings[s].sql));
        free(crew);
        for (int i = 0; i < 32; i++)
            nbad += report(&w[i].t);
        gp_pool_metrics_t after;
        assert_int_equal(gp_pool_metrics(pool, &after), GP_OK);
        uint64_t shared = after.oneshot_shared - before.oneshot_shared;
        fprintf(stderr, "  %llu of 320 shared: %s\n", (unsigned long long)shared, spellings[s].sql);
        if (!shared)
            not_shared++;
    }
    close_pool(pool, &cfg);
    assert_int_equal(admin_int("SELECT count(*) FROM ap_log WHERE id >= 500000000"), 2 * 320);
    assert_int_equal(nbad, 0);
    assert_int_equal(not_shared, 0);
}

/* ---- closing the pool with calls queued ----------------------------------------------------------- */

typedef struct closing_caller {
    tally_t t;
    gp_pool_t *pool;
    gp_status_t st;
} closing_caller_t;

static void closing_main(void *arg)
{
    closing_caller_t *w = arg;
    gp_result_t *res = NULL;
    gp_error_t e;
    w->st = w->t.id % 2 ? gp_tenant_query(w->pool, tenants[w->t.id % NTENANTS], "SELECT 1", 0, NULL, &res, &e)
                        : gp_pool_query(w->pool, "SELECT 1", 0, NULL, &res, &e);
    w->t.calls++;
    if (w->st != GP_OK && w->st != GP_ERR_CLOSED)
        bad(&w->t, "%s: %s", gp_strerror(w->st), e.message);
    gp_result_free(res);
}

typedef struct closer {
    gp_pool_t *pool;
    gp_conn_t *lease;
    int queued;
    gp_status_t st;
} closer_t;

/* Once the 8 callers' units are queued (polled: nothing tells), close the
 * pool and release the lease that held them up. */
static void closer_main(void *arg)
{
    closer_t *k = arg;
    gp__oneshot_queue_t *q = gp__pool_oneshots(k->pool);
    for (int polls = 0; polls < 10000 && k->queued < 8; polls++) {
        k->queued = atomic_load(&q->queued);
        if (k->queued < 8)
            gp_test_pause_ms(1);
    }
    k->st = gp_pool_close(k->pool, 0);
    gp_pool_release(k->lease); /* the last lease: the pool's memory goes with it */
}

/* The shutdown of a service: one-shot callers queued behind a lease, the
 * pool closed, the lease released at once (pool.h: waiters are woken with
 * GP_ERR_CLOSED, a release after close is safe, the memory is freed with
 * the last lease). Every caller returns GP_ERR_CLOSED (or its answer)
 * without touching freed memory (run it under ASan) and without hanging. */
static void test_close_with_queued_calls(void **state)
{
    (void)state;
    gp_config_t cfg;
    base_config(&cfg, 1);
    cfg.db.acquire_timeout_ms = 5000;
    gp_test_capture_logs(GP_LOG_WARN); /* "closed with 1 connection(s) still leased" */
    gp_pool_t *pool = open_pool(&cfg);
    gp_conn_t *c;
    gp_error_t e;
    assert_int_equal(gp_pool_acquire(pool, "hold", 5000, &c, &e), GP_OK);
    for (int i = 0; i < 4; i++) /* closed here, not by the teardown */
        if (live_pools[i] == pool)
            live_pools[i] = NULL;
    closing_caller_t w[8];
    closer_t k = {pool, c, 0, GP_OK};
    crew_t *crew = calloc(1, sizeof *crew);
    for (int i = 0; i < 8; i++) {
        tally_init(&w[i].t, i);
        w[i].pool = pool;
        w[i].st = GP_OK;
        crew_add(crew, closing_main, &w[i]);
    }
    crew_add(crew, closer_main, &k);
    bool on_time = crew_run_within(crew, "close with queued calls", 30); /* nothing here takes a second */
    int nbad = 0, closed = 0;
    for (int i = 0; i < 8; i++) {
        nbad += report(&w[i].t);
        closed += w[i].st == GP_ERR_CLOSED;
    }
    fprintf(stderr, "close with queued calls: %d queued when closed, %d callers got GP_ERR_CLOSED; close: %s\n",
            k.queued, closed, gp_strerror(k.st));
    free(crew);
    gp_config_release(&cfg);
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
    assert_true(on_time);
    assert_int_equal(nbad, 0);
    assert_int_equal(k.queued, 8);
    assert_int_equal(k.st, GP_ERR_TIMEOUT); /* the lease was still out */
    assert_int_equal(closed, 8);
}

/* ---- the fixture ------------------------------------------------------------------------------------ */

/* After every test: what a failed one left behind (its pools, TEMPORARY). */
static int after_test(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        if (live_pools[i]) {
            gp_pool_close(live_pools[i], 10000);
            live_pools[i] = NULL;
        }
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
    if (temporary_granted)
        grant_temporary(false);
    admin_conninfo = scratch.admin;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "autopipe");
    gp_scratch_migrate(&scratch);
    admin_conninfo = scratch.admin;
    snprintf(evil, sizeof evil, "gp_ap_evil_%d", (int)getpid());
    char sql[512];
    snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s; CREATE ROLE %s NOLOGIN; GRANT %s TO growplate_app", evil, evil,
             evil);
    admin_sql(sql);
    PGconn *o = gp_scratch_connect(scratch.owner_url);
    gp_scratch_exec(o, "CREATE TABLE public.ap_items (id int8 PRIMARY KEY, v text);"
                       "INSERT INTO public.ap_items SELECT g, 'seed' FROM generate_series(1, 100) g;"
                       "CREATE TABLE public.ap_log (id int8 NOT NULL, v text);" /* no key: a row stored twice shows */
                       "CREATE TABLE public.ap_const (k int4, v text);"
                       "CREATE TABLE public.ap_block (k int4); INSERT INTO public.ap_block VALUES (1);"
                       "INSERT INTO public.ap_const VALUES (7, 'seven');"
                       "CREATE FUNCTION public.ap_forget() RETURNS int4 LANGUAGE plpgsql"
                       " AS $$BEGIN EXECUTE 'DEALLOCATE ALL'; RETURN 1; END$$;"
                       "GRANT SELECT, INSERT ON public.ap_items TO growplate_app;"
                       "GRANT SELECT, INSERT, UPDATE, DELETE ON public.ap_log TO growplate_app;"
                       "GRANT SELECT ON public.ap_const, public.ap_block TO growplate_app;"
                       "GRANT EXECUTE ON FUNCTION public.ap_forget() TO growplate_app");
    PQfinish(o);
    /* 32 tenants, each with one category and two items named after it */
    gp_config_t cfg;
    base_config(&cfg, 4);
    cfg.db.pool_min = 1;
    gp_pool_t *pool = gp_test_pool(&cfg);
    for (int t = 0; t < NTENANTS; t++) {
        char slug[32], name[64], cat[37], item[37];
        snprintf(slug, sizeof slug, "ap-%d", t);
        gp_test_data_tenant(pool, slug, tenants[t]);
        memcpy(prefixes[t], tenants[t], 8);
        prefixes[t][8] = 0;
        snprintf(name, sizeof name, "%s-cat", prefixes[t]);
        gp_test_data_category(pool, tenants[t], name, 1, cat);
        snprintf(name, sizeof name, "%s-item-a", prefixes[t]);
        gp_test_data_item(pool, tenants[t], cat, name, 100, true, item);
        snprintf(name, sizeof name, "%s-item-b", prefixes[t]);
        gp_test_data_item(pool, tenants[t], cat, name, 200, true, item);
    }
    close_pool(pool, &cfg);
    build_texts();
    build_attacks();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_scratch_drop(&scratch);
    char sql[128];
    snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", evil);
    PGconn *c = gp_scratch_connect(getenv("GP_PG_ADMIN_CONNINFO"));
    gp_scratch_exec(c, sql);
    PQfinish(c);
    return 0;
}

int main(void)
{
    gp_test_require_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_routing_under_contention, after_test),
        cmocka_unit_test_teardown(test_errors_isolated, after_test),
        cmocka_unit_test_teardown(test_timeouts_isolated, after_test),
        cmocka_unit_test_teardown(test_tenants_with_attackers, after_test),
        cmocka_unit_test_teardown(test_disguised_statements_run_alone, after_test),
        cmocka_unit_test_teardown(test_sweep_refuses_role_and_temporary, after_test),
        cmocka_unit_test_teardown(test_session_locks_released, after_test),
        cmocka_unit_test_teardown(test_terminate_backends_mid_batch, after_test),
        cmocka_unit_test_setup_teardown(test_restart_mid_batch, restart_setup, restart_teardown),
        cmocka_unit_test_teardown(test_frozen_server_mid_batch, after_test),
        cmocka_unit_test_teardown(test_tenant_fairness, after_test),
        cmocka_unit_test_teardown(test_large_and_small_results, after_test),
        cmocka_unit_test_teardown(test_forgotten_statements, after_test),
        cmocka_unit_test_teardown(test_statement_cache_off, after_test),
        cmocka_unit_test_teardown(test_batch_of_one, after_test),
        cmocka_unit_test_teardown(test_not_eligible_statements, after_test),
        cmocka_unit_test_teardown(test_eligible_spellings_share, after_test),
        cmocka_unit_test_teardown(test_close_with_queued_calls, after_test),
    };
    if (getenv("GP_TEST_FILTER")) /* one test alone: GP_TEST_FILTER=test_errors_isolated */
        cmocka_set_test_filter(getenv("GP_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
