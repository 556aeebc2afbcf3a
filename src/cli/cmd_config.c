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
            "values, passwords redacted (also inside URLs). libpq's own variables (PG*)\n"
            "that are set are listed with what growplate does with them: used only for\n"
            "what DATABASE_URL and the DATABASE_* variables leave out; a setting filled\n"
            "from one says so (\"(from PGHOST)\"). Connects to nothing.\n"
            "\n"
            "  --json   print one JSON object instead of a table (and, when invalid, one\n"
            "           JSON error object with every problem in error.problems)\n"
            "\n"
            "exit codes: 0 valid; 3 invalid (one message per problem on stderr, naming\n"
            "the variable, what is wrong and what is accepted) or usage error; 2 out of\n"
            "memory.\n");
}

int cmd_config(int argc, char **argv)
{
    bool json = false;
    if (argc < 2 || strcmp(argv[1], "check") != 0) {
        char b[128];
        return argc < 2 ? cli_usage("expected 'check'")
                        : cli_usage("expected 'check', not '%s'", cli_shown(argv[1], b, sizeof b));
    }
    cli_set_command("config check");
    for (int i = 2; i < argc; i++) {
        char b[128];
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else
            return cli_usage("unknown option '%s'", cli_shown(argv[i], b, sizeof b));
    }
    gp_config_t cfg;
    gp_config_init(&cfg);
    int rc = cli_load_config(&cfg);
    if (rc != CLI_OK) {
        gp_config_release(&cfg);
        return rc;
    }
    char *text = NULL;
    gp_status_t st = json ? gp_config_describe_json(&cfg, &text) : gp_config_describe(&cfg, &text);
    gp_config_release(&cfg);
    if (st != GP_OK)
        return cli_fail(CLI_FAILURE, st, "%s", gp_strerror(st));
    fputs(text, stdout);
    if (json)
        fputc('\n', stdout);
    free(text);
    return CLI_OK;
}
