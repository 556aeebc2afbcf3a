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
            "exit codes: 0 clean; 1 findings; 2 failure (configuration, connection) or\n"
            "usage error.\n");
}

int cmd_audit(int argc, char **argv)
{
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else {
            fprintf(stderr, "growplate audit: unknown option '%s'; see 'growplate audit --help'\n", argv[i]);
            return CLI_FAILURE;
        }
    }
    gp_config_t cfg;
    gp_config_init(&cfg);
    if (!cli_load_config("audit", &cfg)) {
        gp_config_release(&cfg);
        return CLI_FAILURE;
    }
    gp_audit_report_t *rep = NULL;
    gp_error_t err;
    gp_status_t st = gp_audit(&cfg, &rep, &err);
    gp_config_release(&cfg);
    if (st != GP_OK) {
        fprintf(stderr, "growplate audit: %s\n", err.message);
        return CLI_FAILURE;
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
