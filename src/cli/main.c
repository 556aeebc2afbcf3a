/* main.c — the growplate command-line tool: dispatch to subcommands.
 *
 * Conventions shared by every subcommand (see cli.h): quiet by default,
 * --json where a script would parse the output (and, with --json, every
 * failure as one JSON object on stdout), errors on stderr; exit 0 ok,
 * 1 findings/degraded, 2 failure, 3 invalid configuration or usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"

static const cli_cmd_t commands[] = {
    {"config", "check and print the configuration (config check [--json])", cmd_config, cmd_config_help},
    {"health", "check both servers: health [--json] [--watch SECONDS] [--deadline MS]", cmd_health, cmd_health_help},
    {"metrics", "every pool and cache metric, Prometheus text format", cmd_metrics, cmd_metrics_help},
    {"demo", "a short tour: servers, tenants, isolation, cache, health", cmd_demo, cmd_demo_help},
    {"migrate", "apply the schema migrations as the owner role (migrate [--dry-run] [--json])", cmd_migrate, cmd_migrate_help},
    {"audit", "audit tenant isolation as the application role (audit [--json])", cmd_audit, cmd_audit_help},
    {"gen-types", "generate C row types from the migrated schema (gen-types [--check])", cmd_gen_types, cmd_gen_types_help},
    {"bench", "benchmarks: bench <workload> [--threads N] [--seconds S] [--json]", cmd_bench, cmd_bench_help},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

bool cli_progress_enabled(void) { return isatty(STDERR_FILENO) && !getenv("CI"); }

int cli_load_config(gp_config_t *cfg)
{
    char err[GP_ERRBUF_SIZE];
    gp_status_t st = gp_config_from_env(cfg, err, sizeof err);
    return st == GP_OK ? CLI_OK : cli_fail_config(st, err);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: growplate <command> [options]\n"
            "\n"
            "GrowPlate's data layer: PostgreSQL pool, tenant isolation, Redis cache.\n"
            "Configuration comes from the environment (DATABASE_*, REDIS_*); see README.md.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "options:\n"
            "  --help         this text; 'growplate <command> --help' for a command's\n"
            "  -V, --version  print the version\n"
            "\n"
            "exit codes (every command):\n"
            "  0  ok\n"
            "  1  ran, and found something: audit findings, health degraded, gen-types\n"
            "     --check out of date\n"
            "  2  failed: a server down, unreachable or refusing (authentication), a\n"
            "     timeout, a failed or changed migration, a demo step, out of memory\n"
            "  3  invalid configuration or usage: nothing was attempted\n"
            "\n"
            "Errors go to stderr; --json output, where offered, goes to stdout. With\n"
            "--json, every failure (exit 2 or 3) also prints one JSON object on stdout:\n"
            "{\"ok\":false,\"command\":..,\"error\":{\"status\",\"class\",\"message\",\"sqlstate\",\n"
            "\"detail\",\"hint\",\"retriable\"},\"exit\":N}.\n");
}

/* --json anywhere on the command line: failures are reported as JSON too,
 * usage errors included. */
static bool wants_json(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--json") == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    bool json = wants_json(argc, argv);
    cli_begin("", json);
    if (argc < 2) {
        usage(stderr);
        return CLI_INVALID;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        if (argc > 2) {
            for (size_t i = 0; i < NCOMMANDS; i++)
                if (strcmp(argv[2], commands[i].name) == 0) {
                    commands[i].help(stdout);
                    return CLI_OK;
                }
        }
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "version") == 0) {
        printf("growplate %s\n", gp_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            if (cli_wants_help(argc - 1, argv + 1)) {
                commands[i].help(stdout);
                return CLI_OK;
            }
            cli_begin(commands[i].name, json);
            int rc = commands[i].run(argc - 1, argv + 1);
            fflush(stdout);
            cli_json_finish(rc);
            return rc;
        }
    }
    char b[128];
    int rc = cli_usage("unknown command '%s'", cli_shown(argv[1], b, sizeof b));
    cli_json_finish(rc);
    return rc;
}
