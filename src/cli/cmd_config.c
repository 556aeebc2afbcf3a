/* cmd_config.c — `growplate config check`: validate and print the
 * configuration, secrets redacted. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cmd_config_help(FILE *out)
{
    fprintf(out,
            "usage: growplate config check [--json]\n"
            "\n"
            "Validate the configuration in the environment and print the effective\n"
            "values, passwords redacted (also inside URLs).\n"
            "\n"
            "  --json   print one JSON object instead of a table\n"
            "\n"
            "exit codes: 0 valid; 2 invalid (one message per problem on stderr, naming\n"
            "the variable, what is wrong and what is accepted) or usage error.\n");
}

int cmd_config(int argc, char **argv)
{
    bool json = false;
    if (argc < 2 || strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "growplate config: expected 'check'; see 'growplate config --help'\n");
        return CLI_FAILURE;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else {
            fprintf(stderr, "growplate config check: unknown option '%s'; see 'growplate config --help'\n", argv[i]);
            return CLI_FAILURE;
        }
    }
    gp_config_t cfg;
    gp_config_init(&cfg);
    if (!cli_load_config("config check", &cfg)) {
        gp_config_release(&cfg);
        return CLI_FAILURE;
    }
    char *text = NULL;
    gp_status_t st = json ? gp_config_describe_json(&cfg, &text) : gp_config_describe(&cfg, &text);
    gp_config_release(&cfg);
    if (st != GP_OK) {
        fprintf(stderr, "growplate config check: %s\n", gp_strerror(st));
        return CLI_FAILURE;
    }
    fputs(text, stdout);
    if (json)
        fputc('\n', stdout);
    free(text);
    return CLI_OK;
}
