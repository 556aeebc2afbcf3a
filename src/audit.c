/* audit.c — the tenant-isolation audit: what the application role can see
 * in pg_catalog about tenant tables, their row-level security, keys,
 * privileges and views, about SECURITY DEFINER functions and tables without
 * row-level security it can reach, and about itself and the roles it
 * belongs to.
 *
 * Every catalog relation, function and type in the SQL below is qualified
 * with pg_catalog: the connection's search_path puts public first and
 * pg_temp is searched before everything, so an unqualified pg_class could
 * be someone's table (or a temporary table left on a pooled server
 * connection). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    [GP_AUDIT_ROLE_MEMBER_BYPASS] = "role_member_bypass",
    [GP_AUDIT_DEFINER_WITHOUT_TENANT] = "definer_without_tenant",
    [GP_AUDIT_UNSAFE_TABLE_PRIVILEGE] = "unsafe_table_privilege",
    [GP_AUDIT_TABLE_WITHOUT_RLS] = "table_without_rls",
    [GP_AUDIT_TEMPORARY_GRANTED] = "temporary_granted",
    [GP_AUDIT_FORGEABLE_CONTEXT] = "forgeable_context",
    [GP_AUDIT_TENANT_CONTEXT_ALTERED] = "tenant_context_altered",
};

/* The declarations, in an object's COMMENT, each followed by a reason. */
#define MARK_CROSS_TENANT "growplate:cross-tenant"
#define MARK_SHARED "growplate:shared"

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

/* The roles whose privileges the application role has or can take with
 * SET ROLE: itself and every role it is a member of, directly or through a
 * chain, whether or not the memberships INHERIT. (Privileges of PUBLIC are
 * included by the has_*_privilege functions.) A superuser role on the way
 * is left out, and so is what lies beyond it: it holds every privilege, and
 * the membership is reported once, as role_member_bypass. */
#define APP_ROLES                                                                                           \
    "app(oid) AS ("                                                                                         \
    " SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user"                              \
    " UNION SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN app ON m.member = app.oid"              \
    "   JOIN pg_catalog.pg_roles g ON g.oid = m.roleid WHERE NOT g.rolsuper)"

/* Tenant tables: every ordinary or partitioned table outside the system
 * schemas with a tenant_id column (key column tenant_id), and a table named
 * tenants without one (key column id: its id is the tenant id). */
#define TENANT_TABLES                                                                                       \
    "tt AS ("                                                                                               \
    " SELECT c.oid, n.nspname, c.relname, a.attnum, a.attname, a.attnotnull,"                              \
    "        c.relrowsecurity, c.relforcerowsecurity, a.attname = 'id' AS is_tenants,"                       \
    "        pg_catalog.pg_has_role(current_user, c.relowner, 'MEMBER') AS owned,"                           \
    "        pg_catalog.pg_get_userbyid(c.relowner) AS owner, c.relowner"                                    \
    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"                  \
    " JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"         \
    " WHERE c.relkind IN ('r', 'p')"                                                                        \
    "   AND n.nspname NOT IN ('pg_catalog', 'information_schema')"                                          \
    "   AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'"                                                   \
    "   AND (a.attname = 'tenant_id'"                                                                       \
    "        OR (c.relname = 'tenants' AND a.attname = 'id' AND NOT EXISTS (SELECT 1"                       \
    "            FROM pg_catalog.pg_attribute t"                                                            \
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
    "        (0::pg_catalog.oid = ANY (p.polroles) OR EXISTS (SELECT 1 FROM pg_catalog.unnest(p.polroles) r"
    "            WHERE pg_catalog.pg_has_role(current_user, r, 'MEMBER'))) AS applies,"
    "        coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), ''),"
    "        coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '')"
    " FROM pg_catalog.pg_policy p JOIN tt ON tt.oid = p.polrelid ORDER BY p.polrelid, p.polname";

/* Primary keys and unique constraints/indexes whose key columns omit the
 * tenant column. */
static const char Q_KEYS[] =
    "WITH " TENANT_TABLES
    " SELECT tt.nspname, tt.relname, ic.relname, i.indisprimary,"
    "        EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k"
    "            WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u'))"
    " FROM tt JOIN pg_catalog.pg_index i ON i.indrelid = tt.oid"
    " JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
    " WHERE NOT tt.is_tenants AND (i.indisunique OR i.indisprimary)"
    "   AND NOT (tt.attnum = ANY ((i.indkey::pg_catalog.int2[])[0:i.indnkeyatts - 1]))"
    " ORDER BY 1, 2, 3";

/* Foreign keys of tenant tables: whether tenant_id is in the key, and
 * whether it is paired with the referenced table's tenant_id (or with any
 * column of a referenced table that has none, such as tenants). */
static const char Q_FKEYS[] =
    "WITH " TENANT_TABLES
    " SELECT tt.nspname, tt.relname, k.conname, k.confrelid::pg_catalog.regclass::pg_catalog.text,"
    "        EXISTS (SELECT 1 FROM pg_catalog.unnest(k.conkey) a WHERE a = tt.attnum) AS has_tenant,"
    "        EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest(k.conkey), pg_catalog.unnest(k.confkey)) AS u(a, f)"
    "            JOIN pg_catalog.pg_attribute fa ON fa.attrelid = k.confrelid AND fa.attnum = u.f"
    "            WHERE u.a = tt.attnum AND (fa.attname = 'tenant_id' OR NOT EXISTS (SELECT 1"
    "                FROM pg_catalog.pg_attribute x"
    "                WHERE x.attrelid = k.confrelid AND x.attname = 'tenant_id' AND NOT x.attisdropped))) AS paired"
    " FROM tt JOIN pg_catalog.pg_constraint k ON k.conrelid = tt.oid AND k.contype = 'f'"
    " WHERE NOT tt.is_tenants ORDER BY 1, 2, 3";

/* Views (and materialized views) over tenant tables, directly or through
 * other views, that do not run with the invoker's rights. */
static const char Q_VIEWS[] =
    "WITH RECURSIVE " TENANT_TABLES ","
    " dep AS (SELECT DISTINCT r.ev_class AS view, d.refobjid AS base FROM pg_catalog.pg_rewrite r"
    "         JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
    "              AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
    "              AND d.refobjid <> r.ev_class),"
    " over AS (SELECT dep.view FROM dep JOIN tt ON tt.oid = dep.base"
    "          UNION SELECT dep.view FROM dep JOIN over ON over.view = dep.base)"
    " SELECT n.nspname, c.relname, c.relkind = 'm' FROM over JOIN pg_catalog.pg_class c ON c.oid = over.view"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'm' OR (c.relkind = 'v' AND NOT EXISTS (SELECT 1"
    "     FROM pg_catalog.pg_options_to_table(c.reloptions) o"
    "     WHERE o.option_name = 'security_invoker'"
    "       AND pg_catalog.lower(o.option_value) IN ('true', 'on', 'yes', '1', 't', 'y')))"
    " ORDER BY 1, 2";

static const char Q_ROLE[] =
    "SELECT current_user, r.rolsuper, r.rolbypassrls FROM pg_catalog.pg_roles r WHERE r.rolname = current_user";

/* Superuser and BYPASSRLS roles the current user is a member of (through
 * any chain of memberships: each one allows SET ROLE), with the shortest
 * chain: the role, the chain "a -> b -> c", and the first role granted. */
static const char Q_MEMBERSHIPS[] =
    "WITH RECURSIVE m(oid, path) AS ("
    " SELECT a.roleid, ARRAY[a.member, a.roleid] FROM pg_catalog.pg_auth_members a"
    " JOIN pg_catalog.pg_roles u ON u.oid = a.member WHERE u.rolname = current_user"
    " UNION ALL SELECT a.roleid, m.path || a.roleid FROM pg_catalog.pg_auth_members a JOIN m ON a.member = m.oid"
    " WHERE a.roleid <> ALL (m.path))"
    " SELECT DISTINCT ON (r.rolname) r.rolname, r.rolsuper, r.rolbypassrls,"
    "        (SELECT pg_catalog.string_agg(pg_catalog.pg_get_userbyid(u.x), ' -> ' ORDER BY u.i)"
    "         FROM pg_catalog.unnest(m.path) WITH ORDINALITY AS u(x, i)),"
    "        pg_catalog.pg_get_userbyid(m.path[2])"
    " FROM m JOIN pg_catalog.pg_roles r ON r.oid = m.oid WHERE r.rolsuper OR r.rolbypassrls"
    " ORDER BY r.rolname, pg_catalog.array_length(m.path, 1)";

/* SECURITY DEFINER functions and procedures outside the system schemas
 * that one of the application's roles (or PUBLIC) may EXECUTE. */
#define DEFINERS                                                                                            \
    "f AS (SELECT p.oid, p.proowner,"                                                                      \
    "        pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.oidvectortypes(p.proargtypes))" \
    "            AS sig,"                                                                                   \
    "        CASE WHEN p.prosqlbody IS NULL THEN p.prosrc ELSE pg_catalog.pg_get_function_sqlbody(p.oid) END" \
    "            AS body,"                                                                                  \
    "        d.description"                                                                                 \
    " FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"                  \
    " LEFT JOIN pg_catalog.pg_description d ON d.objoid = p.oid"                                           \
    "      AND d.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objsubid = 0"                    \
    " WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')"                         \
    "   AND EXISTS (SELECT 1 FROM app WHERE pg_catalog.has_function_privilege(app.oid, p.oid, 'EXECUTE')))"

/* Each such function against each tenant table, and whether its owner
 * escapes row-level security on the table altogether: a superuser, a
 * BYPASSRLS role, the table's owner without FORCE, or no RLS at all. */
static const char Q_DEFINERS[] =
    "WITH RECURSIVE " APP_ROLES ", " TENANT_TABLES ", " DEFINERS
    " SELECT f.oid, f.sig, pg_catalog.pg_get_userbyid(f.proowner), f.proowner, coalesce(f.body, ''),"
    "        coalesce(f.description, ''), tt.oid, tt.nspname, tt.relname,"
    "        o.rolsuper OR o.rolbypassrls OR NOT tt.relrowsecurity"
    "          OR (NOT tt.relforcerowsecurity AND pg_catalog.pg_has_role(f.proowner, tt.relowner, 'USAGE')),"
    "        tt.attname"
    " FROM f JOIN pg_catalog.pg_roles o ON o.oid = f.proowner CROSS JOIN tt"
    " ORDER BY f.sig, f.oid, tt.nspname, tt.relname";

/* The policies of tenant tables that apply to the owners of those
 * functions (PUBLIC, or a role whose privileges the owner has). */
static const char Q_OWNER_POLICIES[] =
    "WITH RECURSIVE " APP_ROLES ", " TENANT_TABLES ", " DEFINERS ","
    " o AS (SELECT DISTINCT f.proowner AS oid FROM f)"
    " SELECT o.oid, p.polrelid, p.polcmd, p.polpermissive,"
    "        coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), ''),"
    "        coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), ''), p.polname"
    " FROM o CROSS JOIN pg_catalog.pg_policy p JOIN tt ON tt.oid = p.polrelid"
    " WHERE 0::pg_catalog.oid = ANY (p.polroles) OR EXISTS (SELECT 1 FROM pg_catalog.unnest(p.polroles) r"
    "     WHERE pg_catalog.pg_has_role(o.oid, r, 'USAGE'))"
    " ORDER BY 1, 2";

/* Who in `app` or PUBLIC holds one of `privs` in the ACL rows `acl`
 * (grantee, privilege_type): "PUBLIC, growplate_app", or NULL. */
#define GRANTEES(acl, privs)                                                                                \
    "(SELECT pg_catalog.string_agg(DISTINCT CASE WHEN g.grantee = 0::pg_catalog.oid THEN 'PUBLIC'"         \
    "     ELSE pg_catalog.pg_get_userbyid(g.grantee) END, ', ') FROM (" acl ") g"                           \
    "  WHERE g.privilege_type IN (" privs ")"                                                               \
    "    AND (g.grantee = 0::pg_catalog.oid OR g.grantee IN (SELECT app.oid FROM app)))"

/* TRUNCATE, TRIGGER and REFERENCES on tenant tables held by the
 * application's roles or PUBLIC (REFERENCES also on a column); not on the
 * tables the application role owns (role_owns_table: it holds them all). */
static const char Q_TABLE_PRIVS[] =
    "WITH RECURSIVE " APP_ROLES ", " TENANT_TABLES
    " SELECT tt.nspname, tt.relname, pr.privs, coalesce(pr.via, '') FROM tt CROSS JOIN LATERAL (SELECT"
    "   pg_catalog.array_to_string(ARRAY(SELECT u.x"
    "     FROM pg_catalog.unnest(ARRAY['TRUNCATE', 'TRIGGER', 'REFERENCES']::pg_catalog.text[])"
    "          WITH ORDINALITY AS u(x, i)"
    "     WHERE EXISTS (SELECT 1 FROM app WHERE CASE WHEN u.x = 'REFERENCES'"
    "         THEN pg_catalog.has_any_column_privilege(app.oid, tt.oid, u.x)"
    "         ELSE pg_catalog.has_table_privilege(app.oid, tt.oid, u.x) END)"
    "     ORDER BY u.i), ', ') AS privs, "
    GRANTEES("SELECT x.grantee, x.privilege_type FROM pg_catalog.pg_class c,"
             " pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault('r', c.relowner))) x"
             " WHERE c.oid = tt.oid"
             " UNION ALL SELECT x.grantee, x.privilege_type FROM pg_catalog.pg_attribute a,"
             " pg_catalog.aclexplode(a.attacl) x WHERE a.attrelid = tt.oid",
             "'TRUNCATE', 'TRIGGER', 'REFERENCES'") " AS via) pr"
    " WHERE pr.privs <> '' AND NOT tt.owned ORDER BY 1, 2";

/* Ordinary and partitioned tables other than tenant tables that the
 * application's roles (or PUBLIC) can read or write, without row-level
 * security (or with RLS not forced while the application role owns them).
 * Not the key and anchor tables of the verified tenant context: any access
 * to them is tenant_context_altered (declaring them shared is no remedy). */
static const char Q_UNPROTECTED[] =
    "WITH RECURSIVE " APP_ROLES ", " TENANT_TABLES
    " SELECT n.nspname, c.relname, pr.privs, c.relrowsecurity, coalesce(d.description, '')"
    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_catalog.pg_description d ON d.objoid = c.oid"
    "      AND d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid = 0"
    " CROSS JOIN LATERAL (SELECT pg_catalog.array_to_string(ARRAY(SELECT u.x"
    "     FROM pg_catalog.unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']::pg_catalog.text[])"
    "          WITH ORDINALITY AS u(x, i)"
    "     WHERE EXISTS (SELECT 1 FROM app WHERE CASE WHEN u.x = 'DELETE'"
    "         THEN pg_catalog.has_table_privilege(app.oid, c.oid, u.x)"
    "         ELSE pg_catalog.has_any_column_privilege(app.oid, c.oid, u.x) END)"
    "     ORDER BY u.i), ', ') AS privs) pr"
    " WHERE c.relkind IN ('r', 'p')"
    "   AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    "   AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'"
    "   AND NOT EXISTS (SELECT 1 FROM tt WHERE tt.oid = c.oid)"
    "   AND NOT (n.nspname = 'growplate_private' AND c.relname IN ('tenant_keys', 'tenant_anchors'))"
    "   AND (NOT c.relrowsecurity"
    "        OR (NOT c.relforcerowsecurity AND pg_catalog.pg_has_role(current_user, c.relowner, 'MEMBER')))"
    "   AND pr.privs <> '' ORDER BY 1, 2";

/* TEMPORARY on the current database, held by the application's roles or
 * PUBLIC; with the grantees of the ACL (empty for a superuser). */
static const char Q_TEMPORARY[] =
    "WITH RECURSIVE " APP_ROLES
    " SELECT d.datname, coalesce("
    GRANTEES("SELECT x.grantee, x.privilege_type"
             " FROM pg_catalog.aclexplode(coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))) x",
             "'TEMPORARY'") ", '')"
    " FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()"
    "   AND EXISTS (SELECT 1 FROM app WHERE pg_catalog.has_database_privilege(app.oid, d.oid, 'TEMPORARY'))";

/* The verified tenant context of migration 0004 as it shipped: the view
 * growplate.tenant_context (as pg_get_viewdef prints it with search_path
 * pg_catalog), security_barrier, over growplate_private.tenant_anchors. */
#define SHIPPED_CONTEXT_VIEWDEF                                                                             \
    " SELECT a.tenant\n"                                                                                    \
    "   FROM growplate_private.tenant_anchors a\n"                                                          \
    "  WHERE ((a.digest = ( SELECT sha256(textsend(current_setting('" GP_TENANT_TOKEN_SETTING "'::text, true)))"  \
    " AS sha256)) AND (a.expires_at > now()));"

/* Whatever about the verified tenant context is not as migration 0004
 * shipped it, one row each: object, cause, and for the cause a kind and a
 * detail.
 *   missing     no growplate.tenant_context, though there are tenant tables
 *   relkind     growplate.tenant_context is no view (kind: its relkind)
 *   definition  the view's definition is not the shipped one
 *   options     the view is not security_barrier (detail: its options)
 *   owner       the application role is (a member of) the owner of the view,
 *               the key or anchor table, their schemas, tenant_publish or
 *               growplate_tenant() (kind: what it is; detail: the owner)
 *   privileges  the application's roles or PUBLIC hold privileges on the key
 *               or anchor table, or any but SELECT on the view (detail: the
 *               privileges, column grants included; via: the grantees)
 *   create      CREATE on schema growplate or growplate_private (via) */
static const char Q_CONTEXT[] =
    "WITH RECURSIVE " APP_ROLES ", " TENANT_TABLES ","
    " obj(kind, name, oid, owner) AS ("
    "  SELECT 'schema'::pg_catalog.text, n.nspname::pg_catalog.text, n.oid, n.nspowner"
    "  FROM pg_catalog.pg_namespace n WHERE n.nspname IN ('growplate', 'growplate_private')"
    "  UNION ALL SELECT c.relkind::pg_catalog.text, pg_catalog.format('%I.%I', n.nspname, c.relname), c.oid,"
    "         c.relowner"
    "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    "  WHERE (n.nspname = 'growplate' AND c.relname = 'tenant_context')"
    "     OR (n.nspname = 'growplate_private' AND c.relname IN ('tenant_keys', 'tenant_anchors'))"
    "  UNION ALL SELECT 'function', pg_catalog.format('%I.%I(%s)', n.nspname, p.proname,"
    "         pg_catalog.oidvectortypes(p.proargtypes)), p.oid, p.proowner"
    "  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
    "  WHERE (n.nspname = 'growplate' AND p.proname = 'tenant_publish')"
    "     OR (n.nspname = 'public' AND p.proname = 'growplate_tenant')),"
    " own AS (SELECT obj.*, pg_catalog.pg_has_role(current_user, obj.owner, 'MEMBER') AS owned FROM obj)"
    " SELECT '" GP_TENANT_CONTEXT_VIEW "'::pg_catalog.text, 'missing'::pg_catalog.text, ''::pg_catalog.text,"
    "        ''::pg_catalog.text, ''::pg_catalog.text"
    " WHERE NOT EXISTS (SELECT 1 FROM own WHERE own.name = '" GP_TENANT_CONTEXT_VIEW "')"
    "   AND EXISTS (SELECT 1 FROM tt)"
    " UNION ALL SELECT own.name, 'relkind', own.kind, '', '' FROM own"
    " WHERE own.name = '" GP_TENANT_CONTEXT_VIEW "' AND own.kind <> 'v'"
    " UNION ALL SELECT own.name, 'definition', own.kind, '', '' FROM own"
    " WHERE own.name = '" GP_TENANT_CONTEXT_VIEW "' AND own.kind = 'v'"
    "   AND pg_catalog.pg_get_viewdef(own.oid) IS DISTINCT FROM $gp$" SHIPPED_CONTEXT_VIEWDEF "$gp$"
    " UNION ALL SELECT own.name, 'options', own.kind, coalesce(pg_catalog.array_to_string(c.reloptions, ', '), ''), ''"
    " FROM own JOIN pg_catalog.pg_class c ON c.oid = own.oid"
    " WHERE own.name = '" GP_TENANT_CONTEXT_VIEW "' AND own.kind = 'v' AND NOT EXISTS (SELECT 1"
    "     FROM pg_catalog.pg_options_to_table(c.reloptions) o"
    "     WHERE o.option_name = 'security_barrier' AND o.option_value::pg_catalog.bool)"
    " UNION ALL SELECT own.name, 'owner', own.kind, pg_catalog.pg_get_userbyid(own.owner), '' FROM own WHERE own.owned"
    " UNION ALL SELECT own.name, 'privileges', own.kind, pr.privs, coalesce("
    GRANTEES("SELECT x.grantee, x.privilege_type FROM pg_catalog.pg_class c,"
             " pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault('r', c.relowner))) x"
             " WHERE c.oid = own.oid"
             " UNION ALL SELECT x.grantee, x.privilege_type FROM pg_catalog.pg_attribute a,"
             " pg_catalog.aclexplode(a.attacl) x WHERE a.attrelid = own.oid",
             "SELECT pg_catalog.unnest(pg_catalog.string_to_array(pr.privs, ', '))") ", '')"
    " FROM own CROSS JOIN LATERAL (SELECT pg_catalog.array_to_string(ARRAY(SELECT u.x"
    "     FROM pg_catalog.unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES',"
    "          'TRIGGER']::pg_catalog.text[]) WITH ORDINALITY AS u(x, i)"
    "     WHERE NOT (own.name = '" GP_TENANT_CONTEXT_VIEW "' AND u.x = 'SELECT')"
    "       AND EXISTS (SELECT 1 FROM app WHERE CASE WHEN u.x IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')"
    "         THEN pg_catalog.has_any_column_privilege(app.oid, own.oid, u.x)"
    "         ELSE pg_catalog.has_table_privilege(app.oid, own.oid, u.x) END)"
    "     ORDER BY u.i), ', ') AS privs) pr"
    " WHERE own.kind NOT IN ('schema', 'function') AND NOT own.owned AND pr.privs <> ''"
    " UNION ALL SELECT own.name, 'create', own.kind, '', coalesce("
    GRANTEES("SELECT x.grantee, x.privilege_type FROM pg_catalog.pg_namespace n,"
             " pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) x"
             " WHERE n.oid = own.oid",
             "'CREATE'") ", '')"
    " FROM own WHERE own.kind = 'schema' AND NOT own.owned"
    "   AND EXISTS (SELECT 1 FROM app WHERE pg_catalog.has_schema_privilege(app.oid, own.oid, 'CREATE'))"
    " ORDER BY 1, 2";

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
    char msg[1536];
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

/* The policy expression our migrations write, for messages: a format
 * taking the tenant column. */
#define TENANT_PREDICATE "%s = (SELECT tenant_context.tenant FROM " GP_TENANT_CONTEXT_VIEW ")"

/* Is the policy expression (as rendered by pg_get_expr) the tenant
 * predicate on `column`? Exactly one shape is accepted: the one migration
 * 0004 writes, `column = (SELECT tenant_context.tenant FROM
 * growplate.tenant_context)`, which pg_get_expr renders as
 *   (column = ( SELECT tenant_context.tenant\n   FROM growplate.tenant_context))
 * Anything else — `<>`, an OR, another column, another relation, a
 * condition added to the sub-select, a function such as growplate_tenant()
 * (which could be replaced, and is not inlined), and the forgeable shape of
 * the schemas before 0004, `column = (SELECT NULLIF(current_setting(
 * 'app.tenant_id', true), '')::uuid)` — is not tenant scoping. The text names
 * the view only by name: that the relation of that name is the view 0004
 * shipped is checked separately (tenant_context_altered). This is the one
 * place that decides; a new accepted form goes here. */
static bool is_tenant_predicate(const char *expr, const char *column)
{
    static const char rhs[] = " = ( SELECT tenant_context.tenant\n   FROM " GP_TENANT_CONTEXT_VIEW "))";
    size_t n = strlen(column);
    return expr[0] == '(' && strncmp(expr + 1, column, n) == 0 && strcmp(expr + 1 + n, rhs) == 0;
}

/* Does `text` contain `word` (case-insensitively) not inside a longer
 * identifier? */
static bool mentions_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    if (!n)
        return false;
    for (const char *p = text; *p; p++) {
        if (strncasecmp(p, word, n) != 0)
            continue;
        if ((p > text && is_word_char(p[-1])) || is_word_char(p[n]))
            continue;
        return true;
    }
    return false;
}

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* The next call of the function `fn` (a whole word, any case, then '(',
 * white space allowed) in `text` from `from`: a pointer just past the '(',
 * or NULL. */
static const char *next_call(const char *text, const char *from, const char *fn)
{
    size_t n = strlen(fn);
    for (const char *p = from; *p; p++) {
        if (strncasecmp(p, fn, n) != 0 || (p > text && is_word_char(p[-1])))
            continue;
        const char *q = skip_space(p + n);
        if (*q == '(')
            return q + 1;
    }
    return NULL;
}

/* The setting a call of current_setting reads, from `args` (just past its
 * '('): the quoted name, its doubled quotes undone and anything but
 * printable ASCII replaced by '?', or "" when the argument is not a quoted
 * literal. */
static void setting_name(const char *args, char *name, size_t len)
{
    size_t n = 0;
    const char *q = skip_space(args);
    name[0] = 0;
    if (*q != '\'')
        return;
    for (q++; *q; q++) {
        if (*q == '\'') {
            if (q[1] != '\'') {
                name[n] = 0;
                return;
            }
            q++;
        }
        if (n + 1 < len)
            name[n++] = *q >= 0x20 && *q < 0x7f ? *q : '?';
    }
    name[0] = 0; /* unterminated: not a literal */
}

/* Does an expression or a function body read a setting with
 * current_setting? `name` (when not NULL) receives the first setting read
 * (setting_name()). */
static bool reads_setting(const char *text, char *name, size_t len)
{
    const char *args = next_call(text, text, "current_setting");
    if (args && name)
        setting_name(args, name, len);
    return args != NULL;
}

/* Does a function body read the plain setting of the schemas before
 * migration 0004, current_setting('app.tenant_id' ...)? */
static bool reads_plain_setting(const char *body)
{
    char name[64];
    for (const char *args = next_call(body, body, "current_setting"); args;
         args = next_call(body, args, "current_setting")) {
        setting_name(args, name, sizeof name);
        if (strcmp(name, GP_TENANT_SETTING) == 0)
            return true;
    }
    return false;
}

/* Does a function body read the verified tenant context: mention
 * growplate.tenant_context (so spelled, any case) or call growplate_tenant()
 * (a whole word, possibly qualified)? A textual test, as the tenant tables
 * a body reads are found: a mention in a comment or a string counts too. */
static bool reads_verified_context(const char *body)
{
    if (mentions_word(body, GP_TENANT_CONTEXT_VIEW))
        return true;
    for (const char *args = next_call(body, body, "growplate_tenant"); args;
         args = next_call(body, args, "growplate_tenant"))
        if (*skip_space(args) == ')')
            return true;
    return false;
}

typedef enum declared { UNDECLARED, DECLARED, DECLARED_WITHOUT_REASON } declared_t;

/* A COMMENT declaring an object: the marker at the start of the comment or
 * after white space, then white space and a reason (any non-space text). */
static declared_t declaration(const char *comment, const char *marker)
{
    size_t n = strlen(marker);
    for (const char *p = strstr(comment, marker); p; p = strstr(p + 1, marker)) {
        if (p > comment && p[-1] != ' ' && p[-1] != '\t' && p[-1] != '\n' && p[-1] != '\r')
            continue;
        const char *q = p + n;
        if (*q && *q != ' ' && *q != '\t' && *q != '\n' && *q != '\r')
            continue; /* a longer word */
        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
            q++;
        return *q ? DECLARED : DECLARED_WITHOUT_REASON;
    }
    return UNDECLARED;
}

typedef struct policy {
    char cmd;            /* r a w d * */
    bool permissive, applies;
    bool scoped_using, scoped_check;
    bool has_check;                    /* it has a WITH CHECK expression of its own */
    bool setting_using, setting_check; /* USING, the check (WITH CHECK, or else USING) reads a setting */
    char setting[64];                  /* the first setting it reads (setting_name()) */
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

static void policy_from_row(policy_t *q, const PGresult *r, int row, int first_expr, const char *column)
{
    const char *qual = PQgetvalue(r, row, first_expr), *check = PQgetvalue(r, row, first_expr + 1);
    q->scoped_using = is_tenant_predicate(qual, column);
    /* Without WITH CHECK, USING serves as the check (ALL, UPDATE). */
    q->scoped_check = is_tenant_predicate(*check ? check : qual, column);
    q->has_check = *check != 0;
    q->setting[0] = 0;
    q->setting_using = reads_setting(qual, q->setting, sizeof q->setting);
    q->setting_check = reads_setting(*check ? check : qual, q->setting_using ? NULL : q->setting, sizeof q->setting);
}

/* How the policies that apply to a role treat one command. */
typedef struct tally {
    bool restrictive_ok;  /* a restrictive policy scopes it: nothing else matters */
    bool any_perm;        /* some permissive policy lets rows through at all */
    bool all_perm_ok;     /* every permissive policy scopes it (true when there are none) */
    bool some_perm_ok;    /* at least one does */
} tally_t;

static tally_t tally(const policy_t *pol, size_t npol, size_t c)
{
    tally_t t = {false, false, true, false};
    for (size_t i = 0; i < npol; i++) {
        const policy_t *p = &pol[i];
        if (!p->applies || (p->cmd != '*' && p->cmd != COMMANDS[c].cmd))
            continue;
        bool ok = policy_covers(p, c);
        if (!p->permissive) {
            t.restrictive_ok |= ok;
            continue;
        }
        t.any_perm = true;
        t.all_perm_ok &= ok;
        t.some_perm_ok |= ok;
    }
    return t;
}

/* A policy of a tenant table that applies to the application role and
 * reads a setting: whatever it compares with the setting, SQL on the
 * connection can set it. Any current_setting call counts, not only
 * app.tenant_id: the policies of migration 0004 read none (the tenant token
 * is read inside growplate.tenant_context, which checks it against its
 * anchor), ordinary SQL can set every custom setting and most others, and
 * none of them is evidence of a tenant. */
static void report_forgeable(audit_t *a, const char *object, const char *column, const policy_t *p)
{
    char obj[256], call[96];
    snprintf(obj, sizeof obj, "%s.%s", object, p->name);
    if (*p->setting)
        snprintf(call, sizeof call, "current_setting('%s')", p->setting);
    else
        snprintf(call, sizeof call, "current_setting(<an expression>)");
    add(a, GP_AUDIT_FORGEABLE_CONTEXT, obj,
        "policy %s on %s reads %s in its %s, a setting that any SQL on the connection can set (set_config in a "
        "sub-select, SET LOCAL, a DO block), so SQL injected into one tenant's call reaches every tenant%s; it is "
        "no tenant scoping: compare %s with the verified tenant context instead, as migration 0004 does, USING ("
        TENANT_PREDICATE ") WITH CHECK (the same)",
        p->name, object, call,
        !p->has_check ? "USING" : !p->setting_using ? "WITH CHECK" : p->setting_check ? "USING and WITH CHECK" : "USING",
        strcmp(p->setting, GP_TENANT_SETTING) == 0 ? " (it is the tenant setting of the schemas before migration 0004)"
                                                    : "",
        column, column);
}

/* One table's policies against the four commands. */
static void check_policies(audit_t *a, const char *object, const char *column, const policy_t *pol, size_t npol)
{
    char missing[64] = "";
    bool loose_reported[64] = {false}, forgeable = false;
    for (size_t i = 0; i < npol; i++)
        if (pol[i].applies && (pol[i].setting_using || pol[i].setting_check)) {
            report_forgeable(a, object, column, &pol[i]);
            forgeable = true;
        }
    for (size_t c = 0; c < 4; c++) {
        tally_t t = tally(pol, npol, c);
        if (!t.any_perm || (!t.restrictive_ok && !t.some_perm_ok)) {
            gp__bufappend(missing, sizeof missing, "%s%s", *missing ? ", " : "", COMMANDS[c].name);
            if (!t.any_perm)
                continue;
        }
        if (t.restrictive_ok || t.all_perm_ok)
            continue;
        for (size_t i = 0; i < npol && i < 64; i++) {
            const policy_t *p = &pol[i];
            if (!p->applies || !p->permissive || (p->cmd != '*' && p->cmd != COMMANDS[c].cmd) ||
                policy_covers(p, c) || loose_reported[i])
                continue;
            loose_reported[i] = true;
            char obj[256];
            snprintf(obj, sizeof obj, "%s.%s", object, p->name);
            bool using = COMMANDS[c].using && !p->scoped_using;
            add(a, GP_AUDIT_LOOSE_POLICY, obj,
                "permissive policy %s on %s applies to the application role but its %s is not the tenant "
                "comparison with the verified context (for %s)%s; permissive policies are ORed, so it lets rows of "
                "other tenants through: write it as USING (" TENANT_PREDICATE ") WITH CHECK (the same), or "
                "restrict it TO another role",
                p->name, object, using ? "USING" : "WITH CHECK", COMMANDS[c].name,
                (using ? p->setting_using : p->setting_check)
                    ? ": it reads a setting that any SQL on the connection can set (forgeable_context)"
                    : "",
                column);
        }
    }
    if (*missing)
        add(a, GP_AUDIT_NO_TENANT_POLICY, object,
            "%s has no row-level security policy for the application role comparing %s with the verified tenant "
            "context (" GP_TENANT_CONTEXT_VIEW ") for %s (CREATE POLICY ... USING (" TENANT_PREDICATE "))%s",
            object, column, missing, column,
            forgeable ? "; a policy comparing it with a setting that any SQL on the connection can set does not "
                        "count (forgeable_context)"
                      : "");
}

static int cmp_findings(const void *x, const void *y)
{
    const gp_audit_finding_t *a = x, *b = y;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    int c = strcmp(a->object, b->object);
    return c ? c : strcmp(a->message, b->message); /* one object can have several findings of a kind */
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
            policy_from_row(q, p, j, 5, column);
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
    PGresult *r = NULL, *m = NULL, *v = NULL;
    gp_status_t st = gp__pg_select(pg, Q_ROLE, &r, err);
    if (st == GP_OK)
        st = gp__pg_select(pg, Q_MEMBERSHIPS, &m, err);
    if (st == GP_OK)
        st = gp__pg_select(pg, Q_VIEWS, &v, err);
    if (st != GP_OK) {
        PQclear(r);
        PQclear(m);
        return st;
    }
    const char *role = "the application role";
    if (PQntuples(r) == 1) {
        role = PQgetvalue(r, 0, 0);
        snprintf(a->rep->role, sizeof a->rep->role, "%s", role);
        if (is_true(r, 0, 1))
            add(a, GP_AUDIT_ROLE_SUPERUSER, role, "the application role %s is a superuser: row-level security never "
                "applies to it", role);
        if (is_true(r, 0, 2))
            add(a, GP_AUDIT_ROLE_BYPASSRLS, role, "the application role %s has BYPASSRLS: row-level security never "
                "applies to it", role);
    }
    for (int i = 0; i < PQntuples(m); i++) {
        const char *target = PQgetvalue(m, i, 0);
        add(a, GP_AUDIT_ROLE_MEMBER_BYPASS, target,
            "the application role %s is a member of %s (%s), which %s: any SQL it runs can SET ROLE %s and escape "
            "row-level security; remove the membership (REVOKE %s FROM %s, or a later link of the chain)",
            role, target, PQgetvalue(m, i, 3),
            is_true(m, i, 1) && is_true(m, i, 2) ? "is a superuser with BYPASSRLS"
            : is_true(m, i, 1)                    ? "is a superuser"
                                                  : "has BYPASSRLS",
            target, PQgetvalue(m, i, 4), role);
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
    PQclear(m);
    PQclear(v);
    return GP_OK;
}

/* Are all four commands on table `relid` tenant-scoped for `owner`, given
 * the policies that apply to it (rows of Q_OWNER_POLICIES)? */
static bool owner_scoped(const PGresult *op, policy_t *pol, const char *owner, const char *relid, const char *column)
{
    size_t npol = 0;
    for (int j = 0; j < PQntuples(op); j++) {
        if (strcmp(PQgetvalue(op, j, 0), owner) != 0 || strcmp(PQgetvalue(op, j, 1), relid) != 0)
            continue;
        policy_t *q = &pol[npol++];
        q->name = PQgetvalue(op, j, 6);
        q->cmd = PQgetvalue(op, j, 2)[0];
        q->permissive = is_true(op, j, 3);
        q->applies = true;
        policy_from_row(q, op, j, 4, column);
    }
    for (size_t c = 0; c < 4; c++) {
        tally_t t = tally(pol, npol, c);
        if (!t.restrictive_ok && !t.all_perm_ok)
            return false;
    }
    return true;
}

static void report_definer(audit_t *a, const PGresult *d, int row, const char *tables, declared_t decl)
{
    const char *sig = PQgetvalue(d, row, 1), *owner = PQgetvalue(d, row, 2);
    add(a, GP_AUDIT_DEFINER_WITHOUT_TENANT, sig,
        "the SECURITY DEFINER function %s, which the application role may EXECUTE, reads %s as %s, whom "
        "row-level security does not confine to one tenant there, and its body never reads the verified tenant "
        "context (" GP_TENANT_CONTEXT_VIEW " or growplate_tenant())%s: filter by it (WHERE tenant_id = (SELECT "
        "tenant FROM " GP_TENANT_CONTEXT_VIEW ")), REVOKE EXECUTE ON FUNCTION %s FROM the application role and "
        "PUBLIC, or, if it is cross-tenant by design, declare it with COMMENT ON FUNCTION %s IS "
        "'" MARK_CROSS_TENANT " <reason>'%s",
        sig, tables, owner,
        reads_plain_setting(PQgetvalue(d, row, 4))
            ? "; it reads current_setting('" GP_TENANT_SETTING "'), which any SQL on the connection can set, so it "
              "is no tenant context"
            : "",
        sig, sig, decl == DECLARED_WITHOUT_REASON ? " (its " MARK_CROSS_TENANT " declaration gives no reason)" : "");
}

static gp_status_t audit_definers(PGconn *pg, audit_t *a, gp_error_t *err)
{
    PGresult *d = NULL, *op = NULL;
    gp_status_t st = gp__pg_select(pg, Q_DEFINERS, &d, err);
    if (st == GP_OK)
        st = gp__pg_select(pg, Q_OWNER_POLICIES, &op, err);
    if (st != GP_OK) {
        PQclear(d);
        return st;
    }
    policy_t *pol = calloc((size_t)PQntuples(op) + 1, sizeof *pol);
    if (!pol) {
        PQclear(d);
        PQclear(op);
        return gp__client_error(err, GP_ERR_NOMEM, "audit: out of memory");
    }
    /* Rows come grouped by function: collect the unconfined tables each one
     * mentions, report when the group ends. */
    char tables[512] = "";
    for (int i = 0; i < PQntuples(d); i++) {
        const char *body = PQgetvalue(d, i, 4), *relid = PQgetvalue(d, i, 6);
        declared_t decl = declaration(PQgetvalue(d, i, 5), MARK_CROSS_TENANT);
        if (decl != DECLARED && !reads_verified_context(body) && mentions_word(body, PQgetvalue(d, i, 8)) &&
            (is_true(d, i, 9) ||
             !owner_scoped(op, pol, PQgetvalue(d, i, 3), relid, PQgetvalue(d, i, 10))))
            gp__bufappend(tables, sizeof tables, "%s%s.%s", *tables ? ", " : "", PQgetvalue(d, i, 7),
                          PQgetvalue(d, i, 8));
        bool last = i + 1 == PQntuples(d) || strcmp(PQgetvalue(d, i + 1, 0), PQgetvalue(d, i, 0)) != 0;
        if (last && *tables) {
            report_definer(a, d, i, tables, decl);
            tables[0] = 0;
        }
    }
    free(pol);
    PQclear(d);
    PQclear(op);
    return GP_OK;
}

static gp_status_t audit_privileges(PGconn *pg, audit_t *a, gp_error_t *err)
{
    PGresult *p = NULL, *u = NULL, *tmp = NULL;
    gp_status_t st = gp__pg_select(pg, Q_TABLE_PRIVS, &p, err);
    if (st == GP_OK)
        st = gp__pg_select(pg, Q_UNPROTECTED, &u, err);
    if (st == GP_OK)
        st = gp__pg_select(pg, Q_TEMPORARY, &tmp, err);
    if (st != GP_OK) {
        PQclear(p);
        PQclear(u);
        return st;
    }
    const char *role = a->rep->role[0] ? a->rep->role : "the application role";
    for (int i = 0; i < PQntuples(p); i++) {
        char object[200], via[300] = "";
        snprintf(object, sizeof object, "%s.%s", PQgetvalue(p, i, 0), PQgetvalue(p, i, 1));
        const char *privs = PQgetvalue(p, i, 2), *grantees = PQgetvalue(p, i, 3);
        if (*grantees)
            snprintf(via, sizeof via, " (granted to %s)", grantees);
        add(a, GP_AUDIT_UNSAFE_TABLE_PRIVILEGE, object,
            "the application role %s holds %s on the tenant table %s%s: TRUNCATE empties every tenant's rows "
            "regardless of row-level security, TRIGGER attaches code to every tenant's writes, REFERENCES lets "
            "a foreign key probe other tenants' keys; REVOKE %s ON %s FROM %s",
            role, privs, object, via, privs, object, *grantees ? grantees : role);
    }
    for (int i = 0; i < PQntuples(u); i++) {
        char object[200];
        snprintf(object, sizeof object, "%s.%s", PQgetvalue(u, i, 0), PQgetvalue(u, i, 1));
        declared_t decl = declaration(PQgetvalue(u, i, 4), MARK_SHARED);
        if (decl == DECLARED)
            continue;
        add(a, GP_AUDIT_TABLE_WITHOUT_RLS, object,
            "the application role %s can %s %s, which %s and has no tenant_id column: if it holds tenants' rows "
            "under another column (restaurant_id, say), every tenant sees them; make it a tenant table "
            "(tenant_id with row-level security), revoke the privileges, or, if every tenant may share it, "
            "declare it with COMMENT ON TABLE %s IS '" MARK_SHARED " <reason>'%s",
            role, PQgetvalue(u, i, 2), object,
            is_true(u, i, 3) ? "it owns, with row-level security not forced," : "has no row-level security",
            object, decl == DECLARED_WITHOUT_REASON ? " (its " MARK_SHARED " declaration gives no reason)" : "");
    }
    if (PQntuples(tmp) == 1) {
        const char *db = PQgetvalue(tmp, 0, 0), *grantees = PQgetvalue(tmp, 0, 1);
        char via[300] = "";
        if (*grantees)
            snprintf(via, sizeof via, " (granted to %s)", grantees);
        add(a, GP_AUDIT_TEMPORARY_GRANTED, db,
            "the application role %s may create temporary objects in database %s%s: pg_temp is searched first, "
            "so a temporary table or type created on a pooled connection shadows the real one for the next "
            "caller of that connection; REVOKE TEMPORARY ON DATABASE %s FROM %s",
            role, db, via, db, *grantees ? grantees : role);
    }
    PQclear(p);
    PQclear(u);
    PQclear(tmp);
    return GP_OK;
}

/* What a relkind or an object kind of Q_CONTEXT is, in words, and the
 * keyword ALTER takes for it. */
static const char *kind_words(const char *kind, bool keyword)
{
    static const struct {
        const char *kind, *words, *keyword;
    } KINDS[] = {{"schema", "schema", "SCHEMA"},          {"function", "function", "FUNCTION"},
                 {"v", "view", "VIEW"},                    {"r", "table", "TABLE"},
                 {"p", "partitioned table", "TABLE"},      {"m", "materialized view", "MATERIALIZED VIEW"},
                 {"f", "foreign table", "FOREIGN TABLE"},  {"S", "sequence", "SEQUENCE"},
                 {"c", "composite type", "TYPE"},          {"i", "index", "INDEX"},
                 {"I", "partitioned index", "INDEX"}};
    for (size_t i = 0; i < sizeof KINDS / sizeof *KINDS; i++)
        if (strcmp(kind, KINDS[i].kind) == 0)
            return keyword ? KINDS[i].keyword : KINDS[i].words;
    return keyword ? "TABLE" : "relation";
}

#define CONTEXT_RESTORE "restore it as migrations/0004_verified_tenant.sql creates it, as the schema owner"

static gp_status_t audit_context(PGconn *pg, audit_t *a, gp_error_t *err)
{
    PGresult *r = NULL;
    gp_status_t st = gp__pg_select(pg, Q_CONTEXT, &r, err);
    if (st != GP_OK)
        return st;
    const char *role = a->rep->role[0] ? a->rep->role : "the application role";
    for (int i = 0; i < PQntuples(r); i++) {
        const char *object = PQgetvalue(r, i, 0), *cause = PQgetvalue(r, i, 1), *kind = PQgetvalue(r, i, 2),
                   *detail = PQgetvalue(r, i, 3), *grantees = PQgetvalue(r, i, 4);
        char via[300] = "";
        if (*grantees)
            snprintf(via, sizeof via, " (granted to %s)", grantees);
        if (strcmp(cause, "missing") == 0)
            add(a, GP_AUDIT_TENANT_CONTEXT_ALTERED, object,
                "the verified tenant context %s does not exist, though there are tenant tables: a policy is the "
                "tenant comparison only when it compares with that view, so none is; apply migration 0004 "
                "(growplate migrate), or, if it was applied and the view dropped, " CONTEXT_RESTORE " (with the "
                "policies)",
                object);
        else if (strcmp(cause, "relkind") == 0)
            add(a, GP_AUDIT_TENANT_CONTEXT_ALTERED, object,
                "%s is a %s, not the view over growplate_private.tenant_anchors that migration 0004 creates: every "
                "tenant policy compares tenant_id with it, so whoever can write or replace it chooses the tenant "
                "of every connection; " CONTEXT_RESTORE,
                object, kind_words(kind, false));
        else if (strcmp(cause, "definition") == 0)
            add(a, GP_AUDIT_TENANT_CONTEXT_ALTERED, object,
                "the view %s is not defined as migration 0004 shipped it (the tenant of the unexpired anchor whose "
                "digest is sha256 of current_setting('" GP_TENANT_TOKEN_SETTING "')): every tenant policy "
                "compares tenant_id with it, so its definition decides which tenant each connection acts as, "
                "whatever the tenant key; " CONTEXT_RESTORE " (CREATE OR REPLACE VIEW ... WITH (security_barrier))",
                object);
        else if (strcmp(cause, "options") == 0)
            add(a, GP_AUDIT_TENANT_CONTEXT_ALTERED, object,
                "the view %s is not a security_barrier view (its options: %s): a condition of the caller's can "
                "then be evaluated before the view's own, and the error message of a function it calls can show "
                "the tenant of another connection's anchor; ALTER VIEW %s SET (security_barrier = true)",
                object, *detail ? detail : "none", object);
        else if (strcmp(cause, "owner") == 0) {
            const char *can =
                strcmp(kind, "schema") == 0 ? "drop whatever the schema holds and create its own in its place"
                : strcmp(object, GP_TENANT_CONTEXT_VIEW) == 0 ? "replace the view's definition"
                : strcmp(object, "growplate_private.tenant_keys") == 0 ? "read the tenant key's pads and install keys"
                : strcmp(object, "growplate_private.tenant_anchors") == 0 ? "write anchors for any tenant"
                : strncmp(object, "growplate.tenant_publish(", 25) == 0
                    ? "replace the function so that it records anchors for secrets it never verified"
                    : "replace the function that SECURITY DEFINER functions read the tenant through";
            add(a, GP_AUDIT_TENANT_CONTEXT_ALTERED, object,
                "the %s %s, part of the verified tenant context, is owned by %s, which the application role %s "
                "is or can SET ROLE to: it can %s, so SQL injected into the application can act as any tenant; "
                "ALTER %s %s OWNER TO the schema owner (the role of DATABASE_MIGRATION_URL)",
                kind_words(kind, false), object, detail, role, can, kind_words(kind, true), object);
        }
        else if (strcmp(cause, "privileges") == 0) {
            const char *why =
                strcmp(object, "growplate_private.tenant_keys") == 0
                    ? "the table holds the HMAC pads of the tenant key, with which a reader can sign a tenant "
                      "secret for any tenant, and a writer can install a key of its own"
                : strcmp(object, "growplate_private.tenant_anchors") == 0
                    ? "an anchor it inserts or updates makes a token of its own choosing stand for any tenant, "
                      "deleting anchors ends other connections' tenant context, and reading them shows which "
                      "tenants are active and until when"
                    : "the application role should hold nothing on it but SELECT (with UPDATE, for one: the view is "
                      "updatable, so UPDATE " GP_TENANT_CONTEXT_VIEW " SET tenant = ... rewrites the anchor of its "
                      "own token to any tenant)";
            add(a, GP_AUDIT_TENANT_CONTEXT_ALTERED, object,
                "the application role %s holds %s on the %s %s%s, part of the verified tenant context: %s; "
                "REVOKE %s ON %s FROM %s",
                role, detail, kind_words(kind, false), object, via, why, detail, object, *grantees ? grantees : role);
        } else if (strcmp(cause, "create") == 0)
            add(a, GP_AUDIT_TENANT_CONTEXT_ALTERED, object,
                "the application role %s may CREATE in schema %s%s, which holds %s: only the schema owner should "
                "put objects there, for an object of its own under a name that the owner's code or a later "
                "migration resolves there would be trusted as part of the tenant context; REVOKE CREATE ON "
                "SCHEMA %s FROM %s",
                role, object, via,
                strcmp(object, "growplate") == 0 ? "the verified tenant context" : "the tenant keys and anchors",
                object, *grantees ? grantees : role);
    }
    PQclear(r);
    return GP_OK;
}

static gp_status_t command(PGconn *pg, const char *sql, gp_error_t *err)
{
    PGresult *r = PQexec(pg, sql);
    gp_status_t st = PQresultStatus(r) == PGRES_COMMAND_OK ? GP_OK : gp__error_from_pg(pg, r, err);
    PQclear(r);
    return st;
}

/* One read-only transaction: every query sees the same catalog snapshot.
 * search_path is pg_catalog alone for it (SET LOCAL: nothing outlives the
 * transaction, should the connection be a pooler's): pg_get_expr qualifies
 * the types it prints by what is visible, so a type named text in public
 * would otherwise change the text of every policy; and operators, which
 * the SQL above does not qualify, resolve in pg_catalog. */
static gp_status_t begin(PGconn *pg, gp_error_t *err)
{
    return command(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path = pg_catalog, pg_temp",
                   err);
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
        st = begin(pg, err);
    if (st == GP_OK)
        st = audit_tables(pg, &a, err);
    if (st == GP_OK)
        st = audit_keys(pg, &a, err);
    if (st == GP_OK)
        st = audit_role_and_views(pg, &a, err);
    if (st == GP_OK)
        st = audit_definers(pg, &a, err);
    if (st == GP_OK)
        st = audit_privileges(pg, &a, err);
    if (st == GP_OK)
        st = audit_context(pg, &a, err);
    if (st == GP_OK)
        st = command(pg, "COMMIT", err);
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
