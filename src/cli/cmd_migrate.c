/* cmd_migrate.c — `growplate migrate`: apply the migrations shipped in the
 * library, as the schema owner (DATABASE_MIGRATION_URL). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cmd_migrate_help(FILE *out)
{
    fprintf(out,
            "usage: growplate migrate [--dry-run] [--json] [--dir DIR --table NAME [--lock-key N]]\n"
            "\n"
            "Apply the SQL migrations compiled into libgrowplate, as the schema owner\n"
            "(DATABASE_MIGRATION_URL). Each migration runs in its own transaction and is\n"
            "recorded with its SHA-256 in " GP_MIGRATIONS_TABLE "; an advisory lock keeps\n"
            "two migrators from colliding (the second waits, then has nothing to do).\n"
            "Refuses to run when an applied migration was changed. Idempotent.\n"
            "\n"
            "  --dry-run  verify applied migrations and list pending ones on stdout\n"
            "             (\"pending 0001 core_schema\"); change nothing\n"
            "  --json     print the outcome as one JSON object on stdout\n"
            "  --dir DIR  apply the service's own migrations instead: the files\n"
            "             DIR/NNNN_name.sql, recorded in the table --table NAME (schema\n"
            "             public, created when missing), under their own advisory lock\n"
            "             (--lock-key N, default derived from NAME); same rules.\n"
            "             Run `growplate migrate` (the library's set) first\n"
            "\n"
            "Otherwise quiet; progress goes to stderr when it is a terminal.\n"
            "exit codes: 0 up to date; 2 failure (connection, authentication, a changed\n"
            "or failed migration: the message names the version); 3 invalid\n"
            "configuration (DATABASE_MIGRATION_URL unset...) or usage. With --json a\n"
            "failure adds \"error\":{...} and \"exit\" to the object (see 'growplate --help').\n");
}

static void show_progress(void *ud, const char *line)
{
    (void)ud;
    fprintf(stderr, "growplate migrate: %s\n", line);
}

static void print_json(const gp_migrate_report_t *rep, gp_status_t st, int rc)
{
    printf("{\"ok\":%s,\"dry_run\":%s,\"applied\":%zu,\"pending\":%zu,\"waited_for_lock\":%s,\"migrations\":[",
           st == GP_OK ? "true" : "false", rep && rep->dry_run ? "true" : "false", rep ? rep->applied : 0,
           rep ? rep->pending : 0, rep && rep->waited_for_lock ? "true" : "false");
    for (size_t i = 0; rep && i < rep->count; i++) {
        const gp_migrate_entry_t *e = &rep->entries[i];
        printf("%s{\"version\":%d,\"name\":", i ? "," : "", e->version);
        cli_json_string(stdout, e->name);
        printf(",\"checksum\":\"%s\",\"state\":\"%s\",\"duration_ms\":%.3f}", e->checksum,
               gp_migration_state_name(e->state), (double)e->duration_us / 1000.0);
    }
    printf("]");
    if (st != GP_OK) {
        printf(",");
        cli_json_error_members(stdout, rc);
    }
    printf("}\n");
}

int cmd_migrate(int argc, char **argv)
{
    bool json = false;
    gp_migrate_opts_t opts = {0};
    const char *dir = NULL, *table = NULL;
    long long lock_key = 0;
    for (int i = 1; i < argc; i++) {
        char b[128];
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--dry-run") == 0)
            opts.dry_run = true;
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--table") == 0 && i + 1 < argc)
            table = argv[++i];
        else if (strcmp(argv[i], "--lock-key") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            lock_key = strtoll(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || lock_key == 0)
                return cli_usage("--lock-key: '%s' is not a nonzero 64-bit integer", cli_shown(argv[i], b, sizeof b));
        }
        else
            return cli_usage("unknown option '%s'", cli_shown(argv[i], b, sizeof b));
    }
    if ((dir != NULL) != (table != NULL) || (lock_key && !dir))
        return cli_usage("--dir and --table go together (a service's own migrations and their bookkeeping table)%s",
                         lock_key && !dir ? "; --lock-key needs them" : "");
    gp_config_t cfg;
    gp_config_init(&cfg);
    int rc = cli_load_config(&cfg);
    if (rc != CLI_OK) {
        gp_config_release(&cfg);
        return rc;
    }
    if (cli_progress_enabled())
        opts.progress = show_progress;
    gp_migrate_report_t *rep = NULL;
    gp_error_t err;
    gp_error_clear(&err);
    gp_status_t st;
    if (dir) {
        gp_migration_t *m = NULL;
        size_t n = 0;
        st = gp_migration_set_load(dir, &m, &n, &err);
        if (st == GP_OK) {
            gp_migration_set_t set = {.table = table, .lock_key = lock_key, .migrations = m, .count = n};
            st = gp_migrate_set(&cfg, &set, &opts, &rep, &err);
        }
        gp_migration_set_free(m, n);
    } else {
        st = gp_migrate(&cfg, &opts, &rep, &err);
    }
    gp_config_release(&cfg);
    if (st != GP_OK) {
        err.status = st;
        rc = cli_fail_error(cli_exit_for(st), &err, NULL);
    }
    if (!json && st == GP_OK && opts.dry_run) {
        for (size_t i = 0; i < rep->count; i++)
            if (rep->entries[i].state == GP_MIGRATION_PENDING)
                printf("pending %04d %s\n", rep->entries[i].version, rep->entries[i].name);
    }
    if (json)
        print_json(rep, st, rc);
    gp_migrate_report_free(rep);
    return rc;
}
