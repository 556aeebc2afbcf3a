/* cmd_demo.c — `growplate demo`: the main job behind `make demo`, a short
 * tour of what the library does against the private servers. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cmd_demo_help(FILE *out)
{
    fprintf(out,
            "usage: growplate demo\n"
            "\n"
            "A short tour against the configured servers (make demo starts private ones\n"
            "and sets the environment): the redacted configuration, then both servers'\n"
            "reachability and latency.\n"
            "\n"
            "exit codes: 0 tour completed; 2 a server unreachable or invalid configuration.\n");
}

static void show_probe(const char *name, const gp_probe_t *p)
{
    if (p->status == GP_OK)
        printf("  %-10s reachable   version %-8s round trip %.2f ms\n", name, p->server_version,
               (double)p->latency_ns / 1e6);
    else
        printf("  %-10s UNREACHABLE %s\n", name, p->message);
}

int cmd_demo(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "growplate demo: takes no arguments; see 'growplate demo --help'\n");
        return CLI_FAILURE;
    }
    gp_config_t cfg;
    gp_config_init(&cfg);
    if (!cli_load_config("demo", &cfg)) {
        gp_config_release(&cfg);
        return CLI_FAILURE;
    }
    char *text = NULL;
    if (gp_config_describe(&cfg, &text) != GP_OK) {
        gp_config_release(&cfg);
        return CLI_FAILURE;
    }
    printf("== 1. Configuration (from the environment, secrets redacted)\n\n%s\n", text);
    free(text);

    printf("== 2. Servers\n\n");
    gp_probe_t pg, rd;
    gp_probe_postgres(&cfg, &pg);
    gp_probe_redis(&cfg, &rd);
    show_probe("postgres", &pg);
    show_probe("redis", &rd);
    gp_config_release(&cfg);
    return pg.status == GP_OK && rd.status == GP_OK ? CLI_OK : CLI_FAILURE;
}
