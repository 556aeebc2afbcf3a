/* cmd_health.c — `growplate health` (table or JSON, exit code like
 * pg_isready) and `growplate metrics` (Prometheus text exposition). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

void cmd_health_help(FILE *out)
{
    fprintf(out,
            "usage: growplate health [--json] [--watch SECONDS] [--deadline MS]\n"
            "\n"
            "Check PostgreSQL (through a pool: round trip, server version, pool metrics)\n"
            "and Redis (PING latency, version) concurrently, within a deadline.\n"
            "\n"
            "  --json            one JSON object per check on stdout\n"
            "  --watch SECONDS   repeat every SECONDS until interrupted (Ctrl-C)\n"
            "  --deadline MS     the longest a check may take (default %d)\n"
            "\n"
            "exit codes (like pg_isready's): 0 up; 1 degraded (cache down, database\n"
            "up); 2 down (database unreachable, refusing or not answering in time: the\n"
            "reason on stderr); 3 invalid configuration or usage, nothing checked. With\n"
            "--json, a down report also carries \"ok\":false, \"error\":{...} and \"exit\",\n"
            "and any other failure is one JSON error object (see 'growplate --help').\n",
            GP_HEALTH_DEFAULT_DEADLINE_MS);
}

void cmd_metrics_help(FILE *out)
{
    fprintf(out,
            "usage: growplate metrics [--deadline MS]\n"
            "\n"
            "Run one health check and print every metric in the Prometheus text\n"
            "exposition format (HELP/TYPE lines, seconds, _total counters, summaries);\n"
            "a server that is down is reported in the metrics (growplate_up 0), not by\n"
            "the exit code. No --json (the output is the exposition; 'growplate health\n"
            "--json' is the JSON view).\n"
            "\n"
            "exit codes: 0 printed; 2 out of memory; 3 invalid configuration or usage.\n");
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct health_args {
    bool json;
    double watch;
    int deadline_ms;
} health_args_t;

/* Returns CLI_OK or the exit code of a usage error. */
static int parse_args(int argc, char **argv, bool allow_json, health_args_t *a)
{
    *a = (health_args_t){.deadline_ms = GP_HEALTH_DEFAULT_DEADLINE_MS};
    for (int i = 1; i < argc; i++) {
        char *end, b[128];
        if (allow_json && strcmp(argv[i], "--json") == 0) {
            a->json = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            return cli_usage("--json is not an option of metrics: its output is the Prometheus text format "
                             "('growplate health --json' is the JSON view)");
        } else if (allow_json && strcmp(argv[i], "--watch") == 0 && i + 1 < argc) {
            a->watch = strtod(argv[++i], &end);
            if (!*argv[i] || *end || !(a->watch >= 0.1 && a->watch <= 86400))
                return cli_usage("--watch '%s' is not valid; expected seconds from 0.1 to 86400",
                                 cli_shown(argv[i], b, sizeof b));
        } else if (strcmp(argv[i], "--deadline") == 0 && i + 1 < argc) {
            long v = strtol(argv[++i], &end, 10);
            if (!*argv[i] || *end || v < 1 || v > 600000)
                return cli_usage("--deadline '%s' is not valid; expected milliseconds from 1 to 600000",
                                 cli_shown(argv[i], b, sizeof b));
            a->deadline_ms = (int)v;
        } else {
            return cli_usage("unknown or incomplete option '%s'", cli_shown(argv[i], b, sizeof b));
        }
    }
    return CLI_OK;
}

/* How long closing the CLI's pool waits for a connect still in flight
 * (normally milliseconds). Against a server that accepts and never
 * answers, the connect would otherwise hold the CLI past its deadline; a
 * thread still connecting then ends with the process. */
#define CLOSE_WAIT_MS 100

/* The CLI's own small pool: one connection is enough for checks. */
static gp_pool_t *open_pool(gp_config_t *cfg)
{
    cfg->db.pool_min = 0;
    cfg->db.pool_max = 2;
    gp_pool_t *pool = NULL;
    gp_error_t e;
    if (gp_pool_create(cfg, &pool, &e) != GP_OK)
        return NULL; /* checked with fresh connections instead */
    return pool;
}

static gp_cache_t *open_cache(const gp_config_t *cfg)
{
    gp_cache_t *cache = NULL;
    if (gp_cache_create(cfg, NULL, &cache, NULL) != GP_OK)
        return NULL; /* checked with fresh connections instead */
    return cache;
}

static void print_table(const gp_health_report_t *r)
{
    printf("growplate health: %s (checked in %.1f ms, deadline %d ms)\n\n", gp_health_state_name(r->state),
           (double)r->elapsed_ns / 1e6, r->deadline_ms);
    printf("  %-9s %-7s %10s  %-8s %-9s %s\n", "server", "status", "latency", "version", "role", "detail");
    const gp_probe_t *p[3] = {&r->postgres, &r->redis, &r->replica};
    const char *names[3] = {"postgres", "redis", "replica"};
    int nservers = r->have_replica ? 3 : 2;
    for (int i = 0; i < nservers; i++) {
        char lat[32] = "-";
        if (p[i]->status == GP_OK)
            snprintf(lat, sizeof lat, "%.2f ms", (double)p[i]->latency_ns / 1e6);
        char role[48] = "-";
        if (p[i]->role[0] && p[i]->replay_lag_ms >= 0)
            snprintf(role, sizeof role, "%s (lag %lld ms)", p[i]->role, (long long)p[i]->replay_lag_ms);
        else if (p[i]->role[0])
            snprintf(role, sizeof role, "%s", p[i]->role);
        const char *detail = p[i]->status != GP_OK ? p[i]->message
                             : i == 0 && strcmp(role, "-") != 0 && strcmp(p[i]->role, "primary") != 0
                                 ? "read-only: writes fail (DATABASE_URL should reach the primary)"
                             : i == 2 && strcmp(p[i]->role, "standby") != 0
                                 ? "DATABASE_READ_URL reaches a primary: reads are not offloaded"
                                 : "";
        printf("  %-9s %-7s %10s  %-8s %-9s %s\n", names[i], p[i]->status == GP_OK ? "ok" : "FAIL", lat,
               p[i]->server_version[0] ? p[i]->server_version : "-", role, detail);
    }
    for (int i = 0; i < nservers; i++)
        if (p[i]->status == GP_ERR_CONNECT || p[i]->status == GP_ERR_TIMEOUT) {
            printf("\n  (in a development checkout: scripts/services start, then eval \"$(scripts/services env)\")\n");
            break;
        }
    if (r->have_pool) {
        const gp_pool_metrics_t *m = &r->pool;
        printf("\n  pool      %d total (%d idle, %d leased, %d opening), %d waiting, size %d..%d\n", m->total, m->idle,
               m->leased, m->opening, m->waiting, m->min, m->max);
        printf("            %llu acquires, %llu timeouts, %llu open failures; wait p50 %.3f ms, p99 %.3f ms\n",
               (unsigned long long)m->acquires, (unsigned long long)m->acquire_timeouts,
               (unsigned long long)m->open_failures, m->wait.p50_us / 1e3, m->wait.p99_us / 1e3);
    }
    if (r->have_cache) {
        const gp_cache_metrics_t *c = &r->cache;
        printf("  cache     circuit %s (opened %llu times), %d/%d connections open; %llu hits, %llu misses, "
               "%llu errors\n",
               gp_cache_circuit_name(c->circuit), (unsigned long long)c->circuit_opened, c->connected, c->pool_size,
               (unsigned long long)c->hits, (unsigned long long)c->misses, (unsigned long long)c->errors);
    }
}

static int exit_code(gp_health_state_t s)
{
    return s == GP_HEALTH_UP ? CLI_OK : s == GP_HEALTH_DEGRADED ? CLI_FINDINGS : CLI_FAILURE;
}

/* Down: the reason on stderr (and kept for the JSON), from the database's probe. */
static void report_down(const gp_health_report_t *r)
{
    gp_error_t e;
    gp_error_clear(&e);
    e.status = r->postgres.status;
    snprintf(e.message, sizeof e.message, "%s", r->postgres.message[0] ? r->postgres.message : gp_strerror(e.status));
    e.retriable = 1; /* the server may come back */
    cli_fail_error(CLI_FAILURE, &e, "down: PostgreSQL");
}

int cmd_health(int argc, char **argv)
{
    health_args_t a;
    int rc = parse_args(argc, argv, true, &a);
    if (rc != CLI_OK)
        return rc;
    gp_config_t cfg;
    gp_config_init(&cfg);
    if ((rc = cli_load_config(&cfg)) != CLI_OK) {
        gp_config_release(&cfg);
        return rc;
    }
    gp_pool_t *pool = open_pool(&cfg);
    gp_cache_t *cache = open_cache(&cfg);
    signal(SIGINT, on_sigint);
    rc = CLI_FAILURE;
    for (;;) {
        cli_error_reset(); /* each round reports its own state */
        gp_health_options_t o = {.cfg = &cfg, .pool = pool, .cache = cache, .deadline_ms = a.deadline_ms};
        gp_health_report_t r;
        gp_status_t st = gp_health_check(&o, &r);
        if (st != GP_OK) {
            rc = cli_fail(CLI_FAILURE, st, "%s", gp_strerror(st));
            break;
        }
        rc = exit_code(r.state);
        if (rc == CLI_FAILURE)
            report_down(&r);
        if (a.json) {
            char *s = NULL;
            if ((st = gp_health_to_json(&r, &s)) != GP_OK) {
                rc = cli_fail(CLI_FAILURE, st, "%s", gp_strerror(st));
                break;
            }
            size_t n = strlen(s);
            if (rc == CLI_FAILURE && n > 1 && s[n - 1] == '}') {
                /* The report stays as it is, plus the failure's members. */
                printf("%.*s,\"ok\":false,", (int)(n - 1), s);
                cli_json_error_members(stdout, rc);
                printf("}\n");
            } else {
                printf("%s\n", s);
            }
            free(s);
        } else {
            print_table(&r);
        }
        fflush(stdout);
        if (a.watch <= 0 || interrupted)
            break;
        if (!a.json)
            printf("\n");
        struct timespec ts = {(time_t)a.watch, (long)((a.watch - (double)(time_t)a.watch) * 1e9)};
        while (nanosleep(&ts, &ts) != 0 && !interrupted)
            ;
        if (interrupted)
            break;
    }
    gp_pool_close(pool, CLOSE_WAIT_MS);
    gp_cache_close(cache);
    gp_config_release(&cfg);
    return rc;
}

int cmd_metrics(int argc, char **argv)
{
    health_args_t a;
    int rc = parse_args(argc, argv, false, &a);
    if (rc != CLI_OK)
        return rc;
    gp_config_t cfg;
    gp_config_init(&cfg);
    if ((rc = cli_load_config(&cfg)) != CLI_OK) {
        gp_config_release(&cfg);
        return rc;
    }
    gp_pool_t *pool = open_pool(&cfg);
    gp_cache_t *cache = open_cache(&cfg);
    gp_health_options_t o = {.cfg = &cfg, .pool = pool, .cache = cache, .deadline_ms = a.deadline_ms};
    gp_health_report_t r;
    char *s = NULL;
    gp_status_t st = gp_health_check(&o, &r);
    if (st == GP_OK)
        st = gp_health_to_prometheus(&r, &s);
    if (st == GP_OK) {
        fputs(s, stdout);
        rc = CLI_OK;
    } else {
        rc = cli_fail(CLI_FAILURE, st, "%s", gp_strerror(st));
    }
    free(s);
    gp_pool_close(pool, CLOSE_WAIT_MS);
    gp_cache_close(cache);
    gp_config_release(&cfg);
    return rc;
}
