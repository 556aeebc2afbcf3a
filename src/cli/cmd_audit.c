/* cmd_audit.c — `growplate audit`: the tenant-isolation audit, run as the
 * application role (DATABASE_URL). */
#include <string.h>

#include "cli.h"

void cmd_audit_help(FILE *out)
{
    fprintf(out,
            "usage: growplate audit [--json]\n"
            "\n"
            "Audit tenant isolation, connected as the application role (DATABASE_URL).\n"
            "Reports every table with a tenant_id column that lacks ENABLE or FORCE\n"
            "row-level security, a policy comparing tenant_id with the verified tenant\n"
            "context (" GP_TENANT_CONTEXT_VIEW ") for each command, or NOT NULL on\n"
            "tenant_id, or that has a permissive policy doing anything else; a policy\n"
            "reading a setting (such as " GP_TENANT_SETTING ", which schemas before\n"
            "migration 0004 compared with), which any SQL on the connection can set; a\n"
            "verified tenant context not as migration 0004 shipped it, or whose view,\n"
            "keys, anchors or schemas the application role owns or can change or read;\n"
            "every primary, unique or foreign key that omits tenant_id; an application\n"
            "role that is a superuser, has BYPASSRLS, is a member of a role that is or\n"
            "has, owns tenant tables, holds TRUNCATE, TRIGGER or REFERENCES on them, or\n"
            "TEMPORARY on the database; views over tenant tables that are not\n"
            "security_invoker; SECURITY DEFINER functions it may execute that read\n"
            "tenant tables unconfined without reading the verified context (unless\n"
            "COMMENTed 'growplate:cross-tenant <reason>'); tables it can use without\n"
            "row-level security (unless COMMENTed 'growplate:shared <reason>').\n"
            "\n"
            "  --json   one JSON object on stdout: role, tables_checked, findings[{kind,\n"
            "           object, message}]\n"
            "\n"
            "Without --json: one line per finding on stdout (kind, object, message).\n"
            "exit codes: 0 clean; 1 findings; 2 failure (connection, authentication,\n"
            "timeout, a query); 3 invalid configuration or usage. With --json a failure\n"
            "is one JSON error object on stdout (see 'growplate --help').\n");
}

int cmd_audit(int argc, char **argv)
{
    bool json = false;
    for (int i = 1; i < argc; i++) {
        char b[128];
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else
            return cli_usage("unknown option '%s'", cli_shown(argv[i], b, sizeof b));
    }
    gp_config_t cfg;
    gp_config_init(&cfg);
    int lrc = cli_load_config(&cfg);
    if (lrc != CLI_OK) {
        gp_config_release(&cfg);
        return lrc;
    }
    gp_audit_report_t *rep = NULL;
    gp_error_t err;
    gp_error_clear(&err);
    gp_status_t st = gp_audit(&cfg, &rep, &err);
    gp_config_release(&cfg);
    if (st != GP_OK) {
        err.status = st;
        gp_audit_report_free(rep);
        return cli_fail_error(cli_exit_for(st), &err, NULL);
    }
    if (json) {
        printf("{\"role\":");
        cli_json_string(stdout, rep->role);
        printf(",\"tables_checked\":%zu,\"clean\":%s,\"findings\":[", rep->tables_checked,
               rep->count ? "false" : "true");
        for (size_t i = 0; i < rep->count; i++) {
            const gp_audit_finding_t *f = &rep->findings[i];
            printf("%s{\"kind\":\"%s\",\"object\":", i ? "," : "", gp_audit_kind_name(f->kind));
            cli_json_string(stdout, f->object);
            printf(",\"message\":");
            cli_json_string(stdout, f->message);
            printf("}");
        }
        printf("]}\n");
    } else {
        for (size_t i = 0; i < rep->count; i++)
            printf("%s %s: %s\n", gp_audit_kind_name(rep->findings[i].kind), rep->findings[i].object,
                   rep->findings[i].message);
    }
    int rc = rep->count ? CLI_FINDINGS : CLI_OK;
    gp_audit_report_free(rep);
    return rc;
}
