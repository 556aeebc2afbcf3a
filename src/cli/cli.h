/* cli.h — shared conventions of the growplate command-line tool. The CLI uses
 * only the public API. */
#ifndef GROWPLATE_CLI_H
#define GROWPLATE_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "growplate/growplate.h"

/* Exit codes shared by every subcommand. */
enum {
    CLI_OK = 0,        /* success / healthy / clean */
    CLI_FINDINGS = 1,  /* ran fine, but found something (audit findings, degraded health) */
    CLI_FAILURE = 2,   /* invalid configuration, usage, or failure (down) */
};

typedef struct cli_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
    void (*help)(FILE *out);
} cli_cmd_t;

/* True when argv has --help or -h. */
bool cli_wants_help(int argc, char **argv);

/* Load and validate the configuration from the environment; on failure print
 * the messages to stderr, prefixed with the command name, and return false. */
bool cli_load_config(const char *cmd, gp_config_t *cfg);

/* True when stderr is a terminal and progress may be shown. */
bool cli_progress_enabled(void);

/* Write s as a JSON string literal (quoted, escaped). */
void cli_json_string(FILE *out, const char *s);

/* Subcommands. */
int cmd_config(int argc, char **argv);
void cmd_config_help(FILE *out);
int cmd_health(int argc, char **argv);
void cmd_health_help(FILE *out);
int cmd_metrics(int argc, char **argv);
void cmd_metrics_help(FILE *out);
int cmd_demo(int argc, char **argv);
void cmd_demo_help(FILE *out);
int cmd_migrate(int argc, char **argv);
void cmd_migrate_help(FILE *out);
int cmd_audit(int argc, char **argv);
void cmd_audit_help(FILE *out);
int cmd_gen_types(int argc, char **argv);
void cmd_gen_types_help(FILE *out);

#endif
