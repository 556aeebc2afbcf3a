/* cli.h — shared conventions of the growplate command-line tool. The CLI uses
 * only the public API. */
#ifndef GROWPLATE_CLI_H
#define GROWPLATE_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "growplate/growplate.h"

/* Exit codes shared by every subcommand (README, "CLI"), in the spirit of
 * pg_isready: 2 when an attempt failed, 3 when nothing was attempted. */
enum {
    CLI_OK = 0,       /* success / healthy / clean */
    CLI_FINDINGS = 1, /* ran fine, but found something (audit findings, degraded health, stale row types) */
    CLI_FAILURE = 2,  /* the attempt failed: a server down or refusing, a timeout, a failed migration, out of memory */
    CLI_INVALID = 3,  /* invalid configuration or usage: nothing was attempted */
};

typedef struct cli_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
    void (*help)(FILE *out);
} cli_cmd_t;

/* True when argv has --help or -h. */
bool cli_wants_help(int argc, char **argv);

/* The exit code for a failed library call: CLI_INVALID for GP_ERR_CONFIG
 * (refused before anything was attempted), CLI_FAILURE otherwise. */
int cli_exit_for(gp_status_t st);

/* Load and validate the configuration from the environment. Returns CLI_OK,
 * or the exit code after reporting every problem (cli_fail_config). */
int cli_load_config(gp_config_t *cfg);

/* True when stderr is a terminal and progress may be shown. */
bool cli_progress_enabled(void);

/* ---- failures (cli_json.c) -------------------------------------------------
 * Every failure is reported through these: one line per message on stderr,
 * "growplate <command>: <message>", secrets masked (gp_redact); the first
 * failure is also kept for the JSON error object. With --json anywhere on the
 * command line, main() prints that object on stdout when the command exits 2
 * or 3 without a JSON document of its own:
 *   {"ok":false,"command":"...","error":{"status":"GP_ERR_CONFIG",
 *    "class":"config","message":"...","problems":[...],"sqlstate":null,
 *    "detail":null,"hint":null,"retriable":false},"exit":3}
 * Single-threaded: call from the main thread only. */

/* Called by main: the subcommand (its --help topic) and whether --json was
 * given. */
void cli_begin(const char *topic, bool json);

/* The command named in messages, when it is more than the topic
 * ("config check", "bench select1"). Static or long-lived string. */
void cli_set_command(const char *command);

/* Forget the failure kept so far (each round of `health --watch`). */
void cli_error_reset(void);

/* A usage error: "<message>; see 'growplate <topic> --help'". Returns
 * CLI_INVALID. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A failure with status st (class derived from it). Returns code. */
int cli_fail(int code, gp_status_t st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A failure described by a library error object: its message (prefixed by
 * the formatted text when fmt is not NULL), SQLSTATE, detail and hint.
 * Returns code. */
int cli_fail_error(int code, const gp_error_t *e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* An invalid configuration: one problem per line of `problems` (as
 * gp_config_from_env writes them). Returns cli_exit_for(st). */
int cli_fail_config(gp_status_t st, const char *problems);

/* The exit code of the failure kept so far; CLI_FAILURE when none is. */
int cli_failure_code(void);

/* For a command that prints a JSON document of its own on failure (migrate's
 * report, health's): print `"command":..,"error":{...},"exit":code` (no
 * braces, no leading comma) and note that the failure has been printed. */
void cli_json_error_members(FILE *out, int code);

/* Called by main after the command: the JSON error object, when due. */
void cli_json_finish(int code);

/* A command-line argument made safe to quote in a message: URL passwords
 * masked, anything that looks like a key not shown, bounded, printable. */
const char *cli_shown(const char *arg, char *buf, size_t len);

/* Write s as a JSON string literal (quoted, escaped; bytes that are not
 * UTF-8 become U+FFFD, so the output is always valid JSON). */
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
