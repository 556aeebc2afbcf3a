/* audit.c — the tenant-isolation audit: what the application role can see
 * in pg_catalog about tenant tables, their row-level security, keys and
 * views, and about itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pool_internal.h"
#include "schema_internal.h"

static const char *const kind_names[GP_AUDIT_KIND_COUNT_] = {
    [GP_AUDIT_RLS_DISABLED] = "rls_disabled",
    [GP_AUDIT_RLS_NOT_FORCED] = "rls_not_forced",
    [GP_AUDIT_NO_TENANT_POLICY] = "no_tenant_policy",
    [GP_AUDIT_LOOSE_POLICY] = "loose_policy",
    [GP_AUDIT_TENANT_ID_NULLABLE] = "tenant_id_nullable",
    [GP_AUDIT_KEY_WITHOUT_TENANT] = "key_without_tenant",
    [GP_AUDIT_FK_WITHOUT_TENANT] = "fk_without_tenant",
    [GP_AUDIT_ROLE_SUPERUSER] = "role_superuser",
    [GP_AUDIT_ROLE_BYPASSRLS] = "role_bypassrls",
    [GP_AUDIT_ROLE_OWNS_TABLE] = "role_owns_table",
    [GP_AUDIT_VIEW_NOT_INVOKER] = "view_not_invoker",
};

const char *gp_audit_kind_name(gp_audit_kind_t kind)
{
    if ((int)kind <= 0 || kind >= GP_AUDIT_KIND_COUNT_ || !kind_names[kind])
        return "unknown";
    return kind_names[kind];
}

void gp_audit_report_free(gp_audit_report_t *report)
{
    if (!report)
        return;
    for (size_t i = 0; i < report->count; i++) {
        free(report->findings[i].object);
        free(report->findings[i].message);
    }
    free(report->findings);
    free(report);
}

/* Tenant tables: every ordinary or partitioned table outside the system
 * schemas with a tenant_id column (key column tenant_id), and a table named
 * tenants without one (key column id: its id is the tenant id). */
#define TENANT_TABLES                                                                                       \
    "tt AS ("                                                                                               \
    " SELECT c.oid, n.nspname, c.relname, a.attnum, a.attname, a.attnotnull,"                              \
    "        c.relrowsecurity, c.relforcerowsecurity, a.attname = 'id' AS is_tenants,"                       \
    "        pg_has_role(current_user, c.relowner, 'MEMBER') AS owned, pg_get_userbyid(c.relowner) AS owner" \
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"                                        \
    " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"                    \
    " WHERE c.relkind IN ('r', 'p')"                                                                        \
    "   AND n.nspname NOT IN ('pg_catalog', 'information_schema')"                                          \
    "   AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'"                                                   \
    "   AND (a.attname = 'tenant_id'"                                                                       \
    "        OR (c.relname = 'tenants' AND a.attname = 'id' AND NOT EXISTS (SELECT 1 FROM pg_attribute t"   \
    "            WHERE t.attrelid = c.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped))))"

static const char Q_TABLES[] =
    "WITH " TENANT_TABLES
    " SELECT oid, nspname, relname, attname, attnotnull, relrowsecurity, relforcerowsecurity, is_tenants,"
    "        owned, owner FROM tt ORDER BY nspname, relname";

/* Policies of tenant tables; `applies` when the policy is for PUBLIC or a
 * role the current user is a member of. */
static const char Q_POLICIES[] =
    "WITH " TENANT_TABLES
    " SELECT p.polrelid, p.polname, p.polcmd, p.polpermissive,"
    "        (0::oid = ANY (p.polroles) OR EXISTS (SELECT 1 FROM unnest(p.polroles) r"
    "            WHERE pg_has_role(current_user, r, 'MEMBER'))) AS applies,"
    "        coalesce(pg_get_expr(p.polqual, p.polrelid), ''),"
    "        coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')"
    " FROM pg_policy p JOIN tt ON tt.oid = p.polrelid ORDER BY p.polrelid, p.polname";

/* Primary keys and unique constraints/indexes whose key columns omit the
 * tenant column. */
static const char Q_KEYS[] =
    "WITH " TENANT_TABLES
    " SELECT tt.nspname, tt.relname, ic.relname, i.indisprimary,"
    "        EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u'))"
    " FROM tt JOIN pg_index i ON i.indrelid = tt.oid JOIN pg_class ic ON ic.oid = i.indexrelid"
    " WHERE NOT tt.is_tenants AND (i.indisunique OR i.indisprimary)"
    "   AND NOT (tt.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]))"
    " ORDER BY 1, 2, 3";

/* Foreign keys of tenant tables: whether tenant_id is in the key, and
 * whether it is paired with the referenced table's tenant_id (or with any
 * column of a referenced table that has none, such as tenants). */
static const char Q_FKEYS[] =
    "WITH " TENANT_TABLES
    " SELECT tt.nspname, tt.relname, k.conname, k.confrelid::regclass::text,"
    "        EXISTS (SELECT 1 FROM unnest(k.conkey) a WHERE a = tt.attnum) AS has_tenant,"
    "        EXISTS (SELECT 1 FROM unnest(k.conkey, k.confkey) AS u(a, f)"
    "            JOIN pg_attribute fa ON fa.attrelid = k.confrelid AND fa.attnum = u.f"
    "            WHERE u.a = tt.attnum AND (fa.attname = 'tenant_id' OR NOT EXISTS (SELECT 1 FROM pg_attribute x"
    "                WHERE x.attrelid = k.confrelid AND x.attname = 'tenant_id' AND NOT x.attisdropped))) AS paired"
    " FROM tt JOIN pg_constraint k ON k.conrelid = tt.oid AND k.contype = 'f'"
    " WHERE NOT tt.is_tenants ORDER BY 1, 2, 3";

/* Views (and materialized views) over tenant tables, directly or through
 * other views, that do not run with the invoker's rights. */
static const char Q_VIEWS[] =
    "WITH RECURSIVE " TENANT_TABLES ","
    " dep AS (SELECT DISTINCT r.ev_class AS view, d.refobjid AS base FROM pg_rewrite r"
    "         JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid"
    "              AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class),"
    " over AS (SELECT dep.view FROM dep JOIN tt ON tt.oid = dep.base"
    "          UNION SELECT dep.view FROM dep JOIN over ON over.view = dep.base)"
    " SELECT n.nspname, c.relname, c.relkind = 'm' FROM over JOIN pg_class c ON c.oid = over.view"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'm' OR (c.relkind = 'v' AND NOT EXISTS (SELECT 1 FROM pg_options_to_table(c.reloptions) o"
    "     WHERE o.option_name = 'security_invoker' AND lower(o.option_value) IN ('true', 'on', 'yes', '1', 't', 'y')))"
    " ORDER BY 1, 2";

static const char Q_ROLE[] =
    "SELECT current_user, r.rolsuper, r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user";

typedef struct audit {
    gp_audit_report_t *rep;
    size_t cap;
    bool oom;
} audit_t;

static void add(audit_t *a, gp_audit_kind_t kind, const char *object, const char *fmt, ...) GP__PRINTF(4, 5);
static void add(audit_t *a, gp_audit_kind_t kind, const char *object, const char *fmt, ...)
{
    if (a->oom)
        return;
    if (a->rep->count == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        gp_audit_finding_t *f = realloc(a->rep->findings, cap * sizeof *f);
        if (!f) {
            a->oom = true;
            return;
        }
        a->rep->findings = f;
        a->cap = cap;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *o = strdup(object), *m = strdup(msg);
    if (!o || !m) {
        free(o);
        free(m);
        a->oom = true;
        return;
    }
    a->rep->findings[a->rep->count++] = (gp_audit_finding_t){kind, o, m};
}

static bool is_word_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || (c >= 'A' && c <= 'Z'); }

/* Does the policy expression compare `column` with the tenant setting?
 * Recognised by text, as rendered by pg_get_expr: the setting read through
 * current_setting('app.tenant_id'...) and the column named as a word. */
static bool mentions_tenant(const char *expr, const char *column)
{
    if (!strstr(expr, "current_setting('" GP_TENANT_SETTING "'"))
        return false;
    size_t n = strlen(column);
    for (const char *p = strstr(expr, column); p; p = strstr(p + 1, column)) {
        bool before = p > expr && is_word_char(p[-1]);
        bool after = is_word_char(p[n]);
        if (!before && !after)
            return true;
    }
    return false;
}

typedef struct policy {
    char cmd;            /* r a w d * */
    bool permissive, applies;
    bool scoped_using, scoped_check;
    const char *name;
} policy_t;

static const struct {
    char cmd;
    const char *name;
    bool using, check;
} COMMANDS[] = {{'r', "SELECT", true, false}, {'a', "INSERT", false, true}, {'w', "UPDATE", true, true}, {'d', "DELETE", true, false}};

static bool policy_covers(const policy_t *p, size_t c)
{
    return (!COMMANDS[c].using || p->scoped_using) && (!COMMANDS[c].check || p->scoped_check);
}

/* One table's policies against the four commands. */
static void check_policies(audit_t *a, const char *object, const char *column, const policy_t *pol, size_t npol)
{
    char missing[64] = "";
    bool loose_reported[64] = {false};
    for (size_t c = 0; c < 4; c++) {
        bool restrictive_ok = false, any_perm = false, all_perm_ok = true, some_perm_ok = false;
        for (size_t i = 0; i < npol; i++) {
            const policy_t *p = &pol[i];
            if (!p->applies || (p->cmd != '*' && p->cmd != COMMANDS[c].cmd))
                continue;
            bool ok = policy_covers(p, c);
            if (!p->permissive) {
                restrictive_ok |= ok;
                continue;
            }
            any_perm = true;
            all_perm_ok &= ok;
            some_perm_ok |= ok;
        }
        if (!any_perm || (!restrictive_ok && !some_perm_ok)) {
            gp__bufappend(missing, sizeof missing, "%s%s", *missing ? ", " : "", COMMANDS[c].name);
            if (!any_perm)
                continue;
        }
        if (restrictive_ok || all_perm_ok)
            continue;
        for (size_t i = 0; i < npol && i < 64; i++) {
            const policy_t *p = &pol[i];
            if (!p->applies || !p->permissive || (p->cmd != '*' && p->cmd != COMMANDS[c].cmd) ||
                policy_covers(p, c) || loose_reported[i])
                continue;
            loose_reported[i] = true;
            char obj[256];
            snprintf(obj, sizeof obj, "%s.%s", object, p->name);
            add(a, GP_AUDIT_LOOSE_POLICY, obj,
                "permissive policy %s on %s applies to the application role but does not compare %s with "
                "%s (for %s); permissive policies are ORed, so it lets rows of other tenants through",
                p->name, object, column, GP_TENANT_SETTING, COMMANDS[c].name);
        }
    }
    if (*missing)
        add(a, GP_AUDIT_NO_TENANT_POLICY, object,
            "%s has no row-level security policy comparing %s with %s for %s", object, column, GP_TENANT_SETTING,
            missing);
}

static int cmp_findings(const void *x, const void *y)
{
    const gp_audit_finding_t *a = x, *b = y;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    return strcmp(a->object, b->object);
}

static bool is_true(const PGresult *r, int row, int col) { return strcmp(PQgetvalue(r, row, col), "t") == 0; }

static gp_status_t audit_tables(PGconn *pg, audit_t *a, gp_error_t *err)
{
    PGresult *t = NULL, *p = NULL;
    gp_status_t st = gp__pg_select(pg, Q_TABLES, &t, err);
    if (st == GP_OK)
        st = gp__pg_select(pg, Q_POLICIES, &p, err);
    if (st != GP_OK) {
        PQclear(t);
        return st;
    }
    a->rep->tables_checked = (size_t)PQntuples(t);
    policy_t *pol = calloc((size_t)PQntuples(p) + 1, sizeof *pol);
    if (!pol) {
        PQclear(t);
        PQclear(p);
        return gp__client_error(err, GP_ERR_NOMEM, "audit: out of memory");
    }
    for (int i = 0; i < PQntuples(t); i++) {
        const char *oid = PQgetvalue(t, i, 0), *column = PQgetvalue(t, i, 3);
        char object[200];
        snprintf(object, sizeof object, "%s.%s", PQgetvalue(t, i, 1), PQgetvalue(t, i, 2));
        if (!is_true(t, i, 4))
            add(a, GP_AUDIT_TENANT_ID_NULLABLE, object, "%s.%s is nullable; a row without a tenant belongs to no one "
                "and no tenant policy can match it (add NOT NULL)", object, column);
        if (!is_true(t, i, 5))
            add(a, GP_AUDIT_RLS_DISABLED, object, "%s does not ENABLE ROW LEVEL SECURITY: every tenant's rows are "
                "visible to the application role", object);
        if (!is_true(t, i, 6))
            add(a, GP_AUDIT_RLS_NOT_FORCED, object, "%s does not FORCE ROW LEVEL SECURITY: its owner (%s) bypasses "
                "the policies", object, PQgetvalue(t, i, 9));
        if (is_true(t, i, 8))
            add(a, GP_AUDIT_ROLE_OWNS_TABLE, object, "the application role is (a member of) %s, the owner of %s: it "
                "can disable row-level security or drop the policies", PQgetvalue(t, i, 9), object);
        size_t npol = 0;
        for (int j = 0; j < PQntuples(p); j++) {
            if (strcmp(PQgetvalue(p, j, 0), oid) != 0)
                continue;
            policy_t *q = &pol[npol++];
            q->name = PQgetvalue(p, j, 1);
            q->cmd = PQgetvalue(p, j, 2)[0];
            q->permissive = is_true(p, j, 3);
            q->applies = is_true(p, j, 4);
            const char *qual = PQgetvalue(p, j, 5), *check = PQgetvalue(p, j, 6);
            q->scoped_using = mentions_tenant(qual, column);
            /* Without WITH CHECK, USING serves as the check (ALL, UPDATE). */
            q->scoped_check = mentions_tenant(*check ? check : qual, column);
        }
        check_policies(a, object, column, pol, npol);
    }
    free(pol);
    PQclear(t);
    PQclear(p);
    return GP_OK;
}

static gp_status_t audit_keys(PGconn *pg, audit_t *a, gp_error_t *err)
{
    PGresult *k = NULL, *f = NULL;
    gp_status_t st = gp__pg_select(pg, Q_KEYS, &k, err);
    if (st == GP_OK)
        st = gp__pg_select(pg, Q_FKEYS, &f, err);
    if (st != GP_OK) {
        PQclear(k);
        return st;
    }
    for (int i = 0; i < PQntuples(k); i++) {
        char object[300];
        snprintf(object, sizeof object, "%s.%s.%s", PQgetvalue(k, i, 0), PQgetvalue(k, i, 1), PQgetvalue(k, i, 2));
        const char *what = is_true(k, i, 3) ? "primary key" : is_true(k, i, 4) ? "unique constraint" : "unique index";
        add(a, GP_AUDIT_KEY_WITHOUT_TENANT, object, "the %s %s on %s.%s omits tenant_id: a tenant's insert can "
            "collide with (and so reveal) another tenant's row", what, PQgetvalue(k, i, 2), PQgetvalue(k, i, 0),
            PQgetvalue(k, i, 1));
    }
    for (int i = 0; i < PQntuples(f); i++) {
        char object[300];
        snprintf(object, sizeof object, "%s.%s.%s", PQgetvalue(f, i, 0), PQgetvalue(f, i, 1), PQgetvalue(f, i, 2));
        if (!is_true(f, i, 4))
            add(a, GP_AUDIT_FK_WITHOUT_TENANT, object, "the foreign key %s on %s.%s (to %s) omits tenant_id: a row "
                "can point at another tenant's row", PQgetvalue(f, i, 2), PQgetvalue(f, i, 0), PQgetvalue(f, i, 1),
                PQgetvalue(f, i, 3));
        else if (!is_true(f, i, 5))
            add(a, GP_AUDIT_FK_WITHOUT_TENANT, object, "the foreign key %s on %s.%s pairs tenant_id with a column "
                "of %s other than its tenant_id: a row can point at another tenant's row", PQgetvalue(f, i, 2),
                PQgetvalue(f, i, 0), PQgetvalue(f, i, 1), PQgetvalue(f, i, 3));
    }
    PQclear(k);
    PQclear(f);
    return GP_OK;
}

static gp_status_t audit_role_and_views(PGconn *pg, audit_t *a, gp_error_t *err)
{
    PGresult *r = NULL, *v = NULL;
    gp_status_t st = gp__pg_select(pg, Q_ROLE, &r, err);
    if (st == GP_OK)
        st = gp__pg_select(pg, Q_VIEWS, &v, err);
    if (st != GP_OK) {
        PQclear(r);
        return st;
    }
    if (PQntuples(r) == 1) {
        const char *role = PQgetvalue(r, 0, 0);
        snprintf(a->rep->role, sizeof a->rep->role, "%s", role);
        if (is_true(r, 0, 1))
            add(a, GP_AUDIT_ROLE_SUPERUSER, role, "the application role %s is a superuser: row-level security never "
                "applies to it", role);
        if (is_true(r, 0, 2))
            add(a, GP_AUDIT_ROLE_BYPASSRLS, role, "the application role %s has BYPASSRLS: row-level security never "
                "applies to it", role);
    }
    for (int i = 0; i < PQntuples(v); i++) {
        char object[200];
        snprintf(object, sizeof object, "%s.%s", PQgetvalue(v, i, 0), PQgetvalue(v, i, 1));
        if (is_true(v, i, 2))
            add(a, GP_AUDIT_VIEW_NOT_INVOKER, object, "the materialized view %s stores rows of tenant tables; "
                "row-level security does not apply to it", object);
        else
            add(a, GP_AUDIT_VIEW_NOT_INVOKER, object, "the view %s reads tenant tables with its owner's rights; "
                "create it WITH (security_invoker = true)", object);
    }
    PQclear(r);
    PQclear(v);
    return GP_OK;
}

gp_status_t gp_audit(const gp_config_t *cfg, gp_audit_report_t **out, gp_error_t *err)
{
    gp_error_clear(err);
    if (!out)
        return gp__client_error(err, GP_ERR_INVALID, "gp_audit: out is NULL");
    *out = NULL;
    if (!cfg)
        return gp__client_error(err, GP_ERR_INVALID, "gp_audit: no configuration given");
    audit_t a = {.rep = calloc(1, sizeof(gp_audit_report_t))};
    if (!a.rep)
        return gp__client_error(err, GP_ERR_NOMEM, "gp_audit: out of memory");
    PGconn *pg = NULL;
    gp_status_t st = gp__pg_connect_single(&cfg->db, false, &pg, err);
    if (st == GP_OK)
        st = audit_tables(pg, &a, err);
    if (st == GP_OK)
        st = audit_keys(pg, &a, err);
    if (st == GP_OK)
        st = audit_role_and_views(pg, &a, err);
    PQfinish(pg);
    if (st == GP_OK && a.oom)
        st = gp__client_error(err, GP_ERR_NOMEM, "gp_audit: out of memory");
    if (st != GP_OK) {
        gp_audit_report_free(a.rep);
        return st;
    }
    if (a.rep->count > 1)
        qsort(a.rep->findings, a.rep->count, sizeof *a.rep->findings, cmp_findings);
    *out = a.rep;
    return GP_OK;
}
