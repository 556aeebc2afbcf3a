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
            "exit codes: 0 up; 1 degraded (cache down, database up); 2 down (database\n"
            "unreachable), invalid configuration or usage.\n",
            GP_HEALTH_DEFAULT_DEADLINE_MS);
}

void cmd_metrics_help(FILE *out)
{
    fprintf(out,
            "usage: growplate metrics [--deadline MS]\n"
            "\n"
            "Run one health check and print every metric in the Prometheus text\n"
            "exposition format (HELP/TYPE lines, seconds, _total counters, summaries).\n"
            "\n"
            "exit codes: 0 printed; 2 invalid configuration or usage.\n");
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

static bool parse_args(const char *cmd, int argc, char **argv, bool allow_watch, health_args_t *a)
{
    *a = (health_args_t){.deadline_ms = GP_HEALTH_DEFAULT_DEADLINE_MS};
    for (int i = 1; i < argc; i++) {
        char *end;
        if (allow_watch && strcmp(argv[i], "--json") == 0) {
            a->json = true;
        } else if (allow_watch && strcmp(argv[i], "--watch") == 0 && i + 1 < argc) {
            a->watch = strtod(argv[++i], &end);
            if (*end || !(a->watch >= 0.1 && a->watch <= 86400)) {
                fprintf(stderr, "growplate %s: --watch '%s' is not valid; expected seconds from 0.1 to 86400\n", cmd,
                        argv[i]);
                return false;
            }
        } else if (strcmp(argv[i], "--deadline") == 0 && i + 1 < argc) {
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 600000) {
                fprintf(stderr, "growplate %s: --deadline '%s' is not valid; expected milliseconds from 1 to 600000\n",
                        cmd, argv[i]);
                return false;
            }
            a->deadline_ms = (int)v;
        } else {
            fprintf(stderr, "growplate %s: unknown or incomplete option '%s'; see 'growplate %s --help'\n", cmd,
                    argv[i], cmd);
            return false;
        }
    }
    return true;
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
    printf("  %-9s %-7s %10s  %-8s %s\n", "server", "status", "latency", "version", "detail");
    const gp_probe_t *p[2] = {&r->postgres, &r->redis};
    const char *names[2] = {"postgres", "redis"};
    for (int i = 0; i < 2; i++) {
        char lat[32] = "-";
        if (p[i]->status == GP_OK)
            snprintf(lat, sizeof lat, "%.2f ms", (double)p[i]->latency_ns / 1e6);
        printf("  %-9s %-7s %10s  %-8s %s\n", names[i], p[i]->status == GP_OK ? "ok" : "FAIL", lat,
               p[i]->server_version[0] ? p[i]->server_version : "-", p[i]->status == GP_OK ? "" : p[i]->message);
    }
    for (int i = 0; i < 2; i++)
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

int cmd_health(int argc, char **argv)
{
    health_args_t a;
    if (!parse_args("health", argc, argv, true, &a))
        return CLI_FAILURE;
    gp_config_t cfg;
    gp_config_init(&cfg);
    if (!cli_load_config("health", &cfg)) {
        gp_config_release(&cfg);
        return CLI_FAILURE;
    }
    gp_pool_t *pool = open_pool(&cfg);
    gp_cache_t *cache = open_cache(&cfg);
    signal(SIGINT, on_sigint);
    int rc = CLI_FAILURE;
    for (;;) {
        gp_health_options_t o = {.cfg = &cfg, .pool = pool, .cache = cache, .deadline_ms = a.deadline_ms};
        gp_health_report_t r;
        if (gp_health_check(&o, &r) != GP_OK) {
            fprintf(stderr, "growplate health: out of memory\n");
            break;
        }
        rc = exit_code(r.state);
        if (a.json) {
            char *s = NULL;
            if (gp_health_to_json(&r, &s) == GP_OK)
                printf("%s\n", s);
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
    if (!parse_args("metrics", argc, argv, false, &a))
        return CLI_FAILURE;
    gp_config_t cfg;
    gp_config_init(&cfg);
    if (!cli_load_config("metrics", &cfg)) {
        gp_config_release(&cfg);
        return CLI_FAILURE;
    }
    gp_pool_t *pool = open_pool(&cfg);
    gp_cache_t *cache = open_cache(&cfg);
    gp_health_options_t o = {.cfg = &cfg, .pool = pool, .cache = cache, .deadline_ms = a.deadline_ms};
    gp_health_report_t r;
    int rc = CLI_FAILURE;
    char *s = NULL;
    if (gp_health_check(&o, &r) == GP_OK && gp_health_to_prometheus(&r, &s) == GP_OK) {
        fputs(s, stdout);
        rc = CLI_OK;
    } else {
        fprintf(stderr, "growplate metrics: out of memory\n");
    }
    free(s);
    gp_pool_close(pool, CLOSE_WAIT_MS);
    gp_cache_close(cache);
    gp_config_release(&cfg);
    return rc;
}
