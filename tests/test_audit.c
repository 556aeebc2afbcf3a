/* test_audit.c — the isolation audit: our schema audits clean, and every
 * kind of finding fires on a deliberately broken object (created by the
 * owner or the superuser in a scratch database, or through scratch roles
 * that are dropped afterwards), and goes away when the object is removed.
 *
 * Roles are cluster-wide: a test never makes growplate_app itself a member
 * of anything (other tests audit it in parallel); memberships are given to
 * `login`, a scratch login role that is, like a production login role, a
 * member of growplate_app (NOINHERIT: everything it reaches, it reaches by
 * SET ROLE, which the audit must count too). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gp_scratch.h"

static gp_scratch_t scratch;
static char bad_role[64];
/* login: LOGIN NOINHERIT, member of growplate_app; grp: a plain group role;
 * mid: NOINHERIT, a link of a chain; byp: BYPASSRLS; su: SUPERUSER. */
static char login_role[64], grp_role[64], mid_role[64], byp_role[64], su_role[64];
static char login_url[1200];
static char *const scratch_roles[] = {bad_role, login_role, grp_role, mid_role, byp_role, su_role};

static void exec_on(const char *conninfo, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void exec_on(const char *conninfo, const char *fmt, ...)
{
    char sql[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof sql);
    PGconn *c = gp_scratch_connect(conninfo);
    gp_scratch_exec(c, sql);
    PQfinish(c);
}

static void drop_scratch_roles(void)
{
    PGconn *c = gp_scratch_connect(getenv("GP_PG_ADMIN_CONNINFO"));
    for (size_t i = 0; i < sizeof scratch_roles / sizeof *scratch_roles; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", scratch_roles[i]);
        gp_scratch_exec(c, sql);
    }
    PQfinish(c);
}

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "audit");
    gp_scratch_migrate(&scratch);
    int pid = (int)getpid();
    snprintf(bad_role, sizeof bad_role, "gp_audit_bad_%d", pid);
    snprintf(login_role, sizeof login_role, "gp_audit_login_%d", pid);
    snprintf(grp_role, sizeof grp_role, "gp_audit_grp_%d", pid);
    snprintf(mid_role, sizeof mid_role, "gp_audit_mid_%d", pid);
    snprintf(byp_role, sizeof byp_role, "gp_audit_byp_%d", pid);
    snprintf(su_role, sizeof su_role, "gp_audit_su_%d", pid);
    drop_scratch_roles();
    exec_on(scratch.admin,
            "CREATE ROLE %s LOGIN NOINHERIT; GRANT CONNECT ON DATABASE %s TO %s; GRANT growplate_app TO %s;"
            "CREATE ROLE %s NOLOGIN; CREATE ROLE %s NOLOGIN NOINHERIT; CREATE ROLE %s NOLOGIN BYPASSRLS;"
            "CREATE ROLE %s NOLOGIN SUPERUSER;",
            login_role, scratch.db, login_role, login_role, grp_role, mid_role, byp_role, su_role);
    snprintf(login_url, sizeof login_url, "%s user=%s", scratch.admin, login_role);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_scratch_drop(&scratch);
    drop_scratch_roles();
    return 0;
}

static gp_audit_report_t *audit_as(const char *url)
{
    gp_config_t cfg;
    gp_scratch_config(&scratch, &cfg);
    if (url)
        cfg.db.url = url;
    gp_audit_report_t *rep = NULL;
    gp_error_t err;
    gp_status_t st = gp_audit(&cfg, &rep, &err);
    if (st != GP_OK)
        fprintf(stderr, "audit: %s\n", err.message);
    assert_int_equal(st, GP_OK);
    gp_config_release(&cfg);
    return rep;
}

static bool has(const gp_audit_report_t *r, gp_audit_kind_t kind, const char *object)
{
    for (size_t i = 0; i < r->count; i++)
        if (r->findings[i].kind == kind && strcmp(r->findings[i].object, object) == 0)
            return true;
    return false;
}

/* A finding of that kind about that object (an object may have several
 * of one kind) says `text`. */
static bool mentions(const gp_audit_report_t *r, gp_audit_kind_t kind, const char *object, const char *text)
{
    for (size_t i = 0; i < r->count; i++)
        if (r->findings[i].kind == kind && strcmp(r->findings[i].object, object) == 0 &&
            strstr(r->findings[i].message, text))
            return true;
    return false;
}

/* The same, telling what the findings say instead when none says it (for
 * assert_true; assert_false takes mentions()). */
static bool says(const gp_audit_report_t *r, gp_audit_kind_t kind, const char *object, const char *text)
{
    if (mentions(r, kind, object, text))
        return true;
    for (size_t i = 0; i < r->count; i++)
        if (r->findings[i].kind == kind && strcmp(r->findings[i].object, object) == 0)
            fprintf(stderr, "  %s %s does not say \"%s\": %s\n", gp_audit_kind_name(kind), object, text,
                    r->findings[i].message);
    return false;
}

/* How many findings of that kind about that object. */
static size_t count_of(const gp_audit_report_t *r, gp_audit_kind_t kind, const char *object)
{
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++)
        n += r->findings[i].kind == kind && strcmp(r->findings[i].object, object) == 0;
    return n;
}

static bool has_kind(const gp_audit_report_t *r, gp_audit_kind_t kind)
{
    for (size_t i = 0; i < r->count; i++)
        if (r->findings[i].kind == kind)
            return true;
    return false;
}

static void dump(const gp_audit_report_t *r)
{
    for (size_t i = 0; i < r->count; i++)
        fprintf(stderr, "  %s %s: %s\n", gp_audit_kind_name(r->findings[i].kind), r->findings[i].object,
                r->findings[i].message);
}

/* After a test's cleanup: nothing left, for the application role and for
 * a login role that is a member of it. */
static void assert_clean(void)
{
    gp_audit_report_t *r = audit_as(NULL);
    dump(r);
    assert_int_equal(r->count, 0);
    gp_audit_report_free(r);
    r = audit_as(login_url);
    dump(r);
    assert_int_equal(r->count, 0);
    assert_string_equal(r->role, login_role);
    gp_audit_report_free(r);
}

static void test_core_schema_is_clean(void **state)
{
    (void)state;
    gp_audit_report_t *r = audit_as(NULL);
    dump(r);
    assert_int_equal(r->count, 0);
    assert_string_equal(r->role, "growplate_app");
    assert_int_equal(r->tables_checked, 6); /* tenants and the five tenant-owned tables */
    gp_audit_report_free(r);
    /* A production-style login role, a member of growplate_app: clean too. */
    assert_clean();
}

/* Every kind has a distinct lower_snake_case name (what --json prints). */
static void test_kind_names(void **state)
{
    (void)state;
    for (int k = GP_AUDIT_RLS_DISABLED; k < GP_AUDIT_KIND_COUNT_; k++) {
        const char *name = gp_audit_kind_name((gp_audit_kind_t)k);
        assert_string_not_equal(name, "unknown");
        for (const char *p = name; *p; p++)
            assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
        for (int j = GP_AUDIT_RLS_DISABLED; j < k; j++)
            assert_string_not_equal(name, gp_audit_kind_name((gp_audit_kind_t)j));
    }
    assert_string_equal(gp_audit_kind_name(GP_AUDIT_ROLE_MEMBER_BYPASS), "role_member_bypass");
    assert_string_equal(gp_audit_kind_name(GP_AUDIT_DEFINER_WITHOUT_TENANT), "definer_without_tenant");
    assert_string_equal(gp_audit_kind_name(GP_AUDIT_UNSAFE_TABLE_PRIVILEGE), "unsafe_table_privilege");
    assert_string_equal(gp_audit_kind_name(GP_AUDIT_TABLE_WITHOUT_RLS), "table_without_rls");
    assert_string_equal(gp_audit_kind_name(GP_AUDIT_TEMPORARY_GRANTED), "temporary_granted");
    assert_string_equal(gp_audit_kind_name(GP_AUDIT_FORGEABLE_CONTEXT), "forgeable_context");
    assert_string_equal(gp_audit_kind_name(GP_AUDIT_TENANT_CONTEXT_ALTERED), "tenant_context_altered");
    assert_int_equal(GP_AUDIT_FORGEABLE_CONTEXT, 17); /* appended: the values before it never change */
    assert_int_equal(GP_AUDIT_TENANT_CONTEXT_ALTERED, 18);
    assert_string_equal(gp_audit_kind_name(GP_AUDIT_KIND_COUNT_), "unknown");
    assert_string_equal(gp_audit_kind_name((gp_audit_kind_t)0), "unknown");
}

/* The tenant comparison of migration 0004 (the one shape the audit accepts),
 * and the forgeable one of the schemas before it. */
#define SCOPED "(SELECT tenant_context.tenant FROM growplate.tenant_context)"
#define LEGACY "(SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)"

#define POLICY(t) "CREATE POLICY p ON broken." t " USING (tenant_id = " SCOPED "); "
#define SECURE(t) "ALTER TABLE broken." t " ENABLE ROW LEVEL SECURITY; ALTER TABLE broken." t " FORCE ROW LEVEL SECURITY; "

static void create_broken_objects(void)
{
    PGconn *owner = gp_scratch_connect(scratch.owner_url);
    gp_scratch_exec(owner,
        "CREATE SCHEMA broken; GRANT USAGE ON SCHEMA broken TO growplate_app;"
        /* not a tenant table (no tenant_id): only referenced below */
        "CREATE TABLE broken.keys_target (id uuid PRIMARY KEY);"
        /* no RLS at all */
        "CREATE TABLE broken.no_rls (tenant_id uuid NOT NULL, id int, PRIMARY KEY (tenant_id, id));"
        /* enabled, not forced */
        "CREATE TABLE broken.not_forced (tenant_id uuid NOT NULL, id int, PRIMARY KEY (tenant_id, id));"
        "ALTER TABLE broken.not_forced ENABLE ROW LEVEL SECURITY;" POLICY("not_forced")
        /* forced, no policy */
        "CREATE TABLE broken.no_policy (tenant_id uuid NOT NULL, id int, PRIMARY KEY (tenant_id, id));"
        SECURE("no_policy")
        /* a read-only tenant policy plus a permissive USING (true) for writes */
        "CREATE TABLE broken.loose (tenant_id uuid NOT NULL, id int, PRIMARY KEY (tenant_id, id));"
        SECURE("loose")
        "CREATE POLICY reads ON broken.loose FOR SELECT USING (tenant_id = " SCOPED ");"
        "CREATE POLICY anything ON broken.loose FOR ALL USING (true);"
        /* the same, but the loose policy is only for a role the app is not in: clean */
        "CREATE TABLE broken.other_role (tenant_id uuid NOT NULL, id int, PRIMARY KEY (tenant_id, id));"
        SECURE("other_role") POLICY("other_role")
        "CREATE POLICY admin ON broken.other_role TO growplate_owner USING (true);"
        /* nullable tenant_id */
        "CREATE TABLE broken.nullable (tenant_id uuid, id int, UNIQUE (tenant_id, id));"
        SECURE("nullable") POLICY("nullable")
        /* keys without tenant_id */
        "CREATE TABLE broken.keys (tenant_id uuid NOT NULL, id int PRIMARY KEY, email text,"
        "  CONSTRAINT keys_email_key UNIQUE (email));"
        "CREATE UNIQUE INDEX keys_code_idx ON broken.keys (email) INCLUDE (tenant_id);"
        SECURE("keys") POLICY("keys")
        /* foreign keys: omitting tenant_id, and pairing it with the wrong column */
        "CREATE TABLE broken.target (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id),"
        "  UNIQUE (id, tenant_id));"
        SECURE("target") POLICY("target")
        "CREATE TABLE broken.refs (tenant_id uuid NOT NULL, id int, target_id uuid,"
        "  PRIMARY KEY (tenant_id, id),"
        "  CONSTRAINT refs_loose_fkey FOREIGN KEY (target_id) REFERENCES broken.keys_target (id),"
        "  CONSTRAINT refs_swapped_fkey FOREIGN KEY (tenant_id, target_id) REFERENCES broken.target (id, tenant_id));"
        SECURE("refs") POLICY("refs")
        /* views over tenant tables */
        "CREATE VIEW broken.definer_view AS SELECT * FROM public.menu_items;"
        "CREATE VIEW broken.invoker_view WITH (security_invoker = true) AS SELECT * FROM public.menu_items;"
        "CREATE VIEW broken.nested_view AS SELECT * FROM broken.invoker_view;"
        "CREATE VIEW broken.harmless_view AS SELECT 1 AS one;"
        "CREATE MATERIALIZED VIEW broken.mat_view AS SELECT * FROM public.orders;");
    PQfinish(owner);
}

static void test_each_finding_fires(void **state)
{
    (void)state;
    create_broken_objects();
    gp_audit_report_t *r = audit_as(NULL);
    dump(r);
    assert_true(has(r, GP_AUDIT_RLS_DISABLED, "broken.no_rls"));
    assert_true(has(r, GP_AUDIT_RLS_NOT_FORCED, "broken.no_rls"));
    assert_true(has(r, GP_AUDIT_NO_TENANT_POLICY, "broken.no_rls"));
    assert_true(has(r, GP_AUDIT_RLS_NOT_FORCED, "broken.not_forced"));
    assert_false(has(r, GP_AUDIT_RLS_DISABLED, "broken.not_forced"));
    assert_false(has(r, GP_AUDIT_NO_TENANT_POLICY, "broken.not_forced"));
    assert_true(has(r, GP_AUDIT_NO_TENANT_POLICY, "broken.no_policy"));
    assert_false(has(r, GP_AUDIT_RLS_NOT_FORCED, "broken.no_policy"));
    assert_true(has(r, GP_AUDIT_LOOSE_POLICY, "broken.loose.anything"));
    assert_true(has(r, GP_AUDIT_NO_TENANT_POLICY, "broken.loose")); /* INSERT/UPDATE/DELETE */
    assert_false(has(r, GP_AUDIT_LOOSE_POLICY, "broken.other_role.admin"));
    assert_false(has(r, GP_AUDIT_NO_TENANT_POLICY, "broken.other_role"));
    assert_true(has(r, GP_AUDIT_TENANT_ID_NULLABLE, "broken.nullable"));
    assert_true(has(r, GP_AUDIT_KEY_WITHOUT_TENANT, "broken.keys.keys_pkey"));
    assert_true(has(r, GP_AUDIT_KEY_WITHOUT_TENANT, "broken.keys.keys_email_key"));
    assert_true(has(r, GP_AUDIT_KEY_WITHOUT_TENANT, "broken.keys.keys_code_idx")); /* INCLUDE is not key */
    assert_true(has(r, GP_AUDIT_FK_WITHOUT_TENANT, "broken.refs.refs_loose_fkey"));
    assert_true(has(r, GP_AUDIT_FK_WITHOUT_TENANT, "broken.refs.refs_swapped_fkey"));
    assert_false(has(r, GP_AUDIT_KEY_WITHOUT_TENANT, "broken.target.target_id_tenant_id_key"));
    assert_true(has(r, GP_AUDIT_VIEW_NOT_INVOKER, "broken.definer_view"));
    assert_true(has(r, GP_AUDIT_VIEW_NOT_INVOKER, "broken.nested_view")); /* through an invoker view */
    assert_true(has(r, GP_AUDIT_VIEW_NOT_INVOKER, "broken.mat_view"));
    assert_false(has(r, GP_AUDIT_VIEW_NOT_INVOKER, "broken.invoker_view"));
    assert_false(has(r, GP_AUDIT_VIEW_NOT_INVOKER, "broken.harmless_view"));
    /* Nothing in our own schema, and no role findings for growplate_app. */
    for (size_t i = 0; i < r->count; i++) {
        assert_true(strncmp(r->findings[i].object, "broken.", 7) == 0);
        assert_true(r->findings[i].kind != GP_AUDIT_ROLE_SUPERUSER && r->findings[i].kind != GP_AUDIT_ROLE_BYPASSRLS &&
                    r->findings[i].kind != GP_AUDIT_ROLE_OWNS_TABLE);
    }
    /* Sorted by kind, then object. */
    for (size_t i = 1; i < r->count; i++)
        assert_true(r->findings[i - 1].kind < r->findings[i].kind ||
                    (r->findings[i - 1].kind == r->findings[i].kind &&
                     strcmp(r->findings[i - 1].object, r->findings[i].object) <= 0));
    gp_audit_report_free(r);
    exec_on(scratch.owner_url, "DROP SCHEMA broken CASCADE");
    assert_clean();
}

/* An application role that bypasses row-level security or owns a tenant
 * table: a scratch login role (dropped in teardown), and the superuser. */
static void test_role_findings(void **state)
{
    (void)state;
    PGconn *admin = gp_scratch_connect(scratch.admin);
    char sql[512];
    snprintf(sql, sizeof sql,
             "CREATE ROLE %s LOGIN BYPASSRLS; GRANT CONNECT ON DATABASE %s TO %s;"
             "CREATE TABLE public.owned_by_app (tenant_id uuid NOT NULL, id int, PRIMARY KEY (tenant_id, id));"
             "ALTER TABLE public.owned_by_app OWNER TO %s;",
             bad_role, scratch.db, bad_role, bad_role);
    gp_scratch_exec(admin, sql);
    char url[1200];
    snprintf(url, sizeof url, "%s user=%s", scratch.admin, bad_role);
    gp_audit_report_t *r = audit_as(url);
    dump(r);
    assert_string_equal(r->role, bad_role);
    assert_true(has(r, GP_AUDIT_ROLE_BYPASSRLS, bad_role));
    assert_true(has(r, GP_AUDIT_ROLE_OWNS_TABLE, "public.owned_by_app"));
    assert_false(has(r, GP_AUDIT_ROLE_OWNS_TABLE, "public.users"));
    assert_false(has(r, GP_AUDIT_ROLE_SUPERUSER, bad_role));
    gp_audit_report_free(r);

    r = audit_as(scratch.admin); /* as the superuser */
    assert_true(has(r, GP_AUDIT_ROLE_SUPERUSER, "postgres"));
    assert_true(has(r, GP_AUDIT_ROLE_OWNS_TABLE, "public.users")); /* a superuser is a member of every role */
    gp_audit_report_free(r);
    gp_scratch_exec(admin, "DROP TABLE public.owned_by_app");
    PQfinish(admin);
    assert_clean();
}

/* 1. A member, through a chain of memberships, of a BYPASSRLS or superuser
 * role: SET ROLE gets there, whatever INHERIT says. */
static void test_member_of_bypassing_role(void **state)
{
    (void)state;
    exec_on(scratch.admin, "GRANT %s TO %s; GRANT %s TO %s; GRANT %s TO %s;", byp_role, mid_role, mid_role,
            login_role, su_role, login_role);
    gp_audit_report_t *r = audit_as(login_url);
    dump(r);
    char chain[256];
    snprintf(chain, sizeof chain, "(%s -> %s -> %s)", login_role, mid_role, byp_role);
    assert_true(says(r, GP_AUDIT_ROLE_MEMBER_BYPASS, byp_role, chain));
    assert_true(says(r, GP_AUDIT_ROLE_MEMBER_BYPASS, byp_role, "has BYPASSRLS"));
    assert_true(says(r, GP_AUDIT_ROLE_MEMBER_BYPASS, su_role, "is a superuser"));
    assert_false(has(r, GP_AUDIT_ROLE_MEMBER_BYPASS, mid_role));
    assert_false(has(r, GP_AUDIT_ROLE_MEMBER_BYPASS, "growplate_app"));
    assert_false(has_kind(r, GP_AUDIT_ROLE_BYPASSRLS)); /* its own attributes are clean */
    assert_false(has_kind(r, GP_AUDIT_ROLE_SUPERUSER));
    assert_int_equal(r->count, 2);
    gp_audit_report_free(r);

    r = audit_as(NULL); /* growplate_app is a member of none of them */
    assert_false(has_kind(r, GP_AUDIT_ROLE_MEMBER_BYPASS));
    gp_audit_report_free(r);

    exec_on(scratch.admin, "REVOKE %s FROM %s; REVOKE %s FROM %s; REVOKE %s FROM %s;", byp_role, mid_role, mid_role,
            login_role, su_role, login_role);
    assert_clean();
}

/* 2. SECURITY DEFINER functions the application may EXECUTE that read
 * tenant tables as an owner row-level security does not confine. */
static void test_definer_functions(void **state)
{
    (void)state;
    PGconn *owner = gp_scratch_connect(scratch.owner_url);
    char comment[512];
    gp_scratch_value(owner, "SELECT obj_description('public.create_tenant(text, text, text)'::regprocedure, 'pg_proc')",
                     comment, sizeof comment);
    assert_non_null(strstr(comment, "growplate:cross-tenant "));
    gp_scratch_exec(owner,
        "CREATE SCHEMA defs; GRANT USAGE ON SCHEMA defs TO growplate_app;"
        /* growplate_owner sees every tenant through its tenant_admin policy */
        "CREATE FUNCTION defs.leak_names() RETURNS text LANGUAGE sql SECURITY DEFINER"
        "  AS $$ SELECT string_agg(name, ',') FROM public.tenants $$;"
        "CREATE FUNCTION defs.upper_leak() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER"
        "  AS $$ BEGIN RETURN (SELECT count(*) FROM PUBLIC.TENANTS); END $$;"
        "CREATE FUNCTION defs.atomic_leak() RETURNS bigint LANGUAGE sql SECURITY DEFINER"
        "  BEGIN ATOMIC SELECT count(*) FROM public.tenants; END;"
        /* filtered by the verified context: the view, or growplate_tenant() */
        "CREATE FUNCTION defs.scoped_name() RETURNS text LANGUAGE sql SECURITY DEFINER"
        "  AS $$ SELECT name FROM public.tenants WHERE id = " SCOPED " $$;"
        "CREATE FUNCTION defs.func_name() RETURNS text LANGUAGE plpgsql SECURITY DEFINER"
        "  AS $$ BEGIN RETURN (SELECT name FROM public.tenants WHERE id = public.GROWPLATE_TENANT ( )); END $$;"
        /* filtered by the plain setting, which any SQL can set: not confined */
        "CREATE FUNCTION defs.setting_name() RETURNS text LANGUAGE sql SECURITY DEFINER"
        "  AS $$ SELECT name FROM public.tenants WHERE id = " LEGACY " $$;"
        /* a function whose name merely contains growplate_tenant */
        "CREATE FUNCTION defs.xgrowplate_tenant() RETURNS uuid LANGUAGE sql AS $$ SELECT NULL::uuid $$;"
        "CREATE FUNCTION defs.lookalike_name() RETURNS text LANGUAGE sql SECURITY DEFINER"
        "  AS $$ SELECT name FROM public.tenants WHERE id = defs.xgrowplate_tenant() $$;"
        /* users' only policy for its owner is the tenant comparison */
        "CREATE FUNCTION defs.count_users() RETURNS bigint LANGUAGE sql SECURITY DEFINER"
        "  AS $$ SELECT count(*) FROM public.users $$;"
        /* a tenant table whose owner bypasses RLS (not FORCEd) */
        "CREATE TABLE defs.notes (tenant_id uuid NOT NULL, id int, PRIMARY KEY (tenant_id, id));"
        "ALTER TABLE defs.notes ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY p ON defs.notes USING (tenant_id = " SCOPED ");"
        "CREATE FUNCTION defs.count_notes() RETURNS bigint LANGUAGE sql SECURITY DEFINER"
        "  AS $$ SELECT count(*) FROM defs.notes $$;"
        /* declared, with and without a reason */
        "CREATE FUNCTION defs.declared_leak() RETURNS text LANGUAGE sql SECURITY DEFINER"
        "  AS $$ SELECT string_agg(name, ',') FROM public.tenants $$;"
        "COMMENT ON FUNCTION defs.declared_leak() IS 'growplate:cross-tenant the operators'' console lists tenants';"
        "CREATE FUNCTION defs.unreasoned_leak() RETURNS text LANGUAGE sql SECURITY DEFINER"
        "  AS $$ SELECT string_agg(name, ',') FROM public.tenants $$;"
        "COMMENT ON FUNCTION defs.unreasoned_leak() IS 'growplate:cross-tenant';"
        /* not executable by the application; executable through a group role */
        "CREATE FUNCTION defs.revoked_leak() RETURNS text LANGUAGE sql SECURITY DEFINER"
        "  AS $$ SELECT string_agg(name, ',') FROM public.tenants $$;"
        "REVOKE ALL ON FUNCTION defs.revoked_leak() FROM PUBLIC;"
        "CREATE FUNCTION defs.group_leak(p_slug text) RETURNS text LANGUAGE sql SECURITY DEFINER"
        "  AS $$ SELECT name FROM public.tenants WHERE slug <> p_slug $$;"
        "REVOKE ALL ON FUNCTION defs.group_leak(text) FROM PUBLIC;"
        /* harmless: no tenant table; invoker's rights */
        "CREATE FUNCTION defs.harmless() RETURNS int LANGUAGE sql SECURITY DEFINER AS $$ SELECT 1 $$;"
        "CREATE FUNCTION defs.invoker_names() RETURNS text LANGUAGE sql"
        "  AS $$ SELECT string_agg(name, ',') FROM public.tenants $$;"
        /* the shipped declaration removed */
        "COMMENT ON FUNCTION public.create_tenant(text, text, text) IS NULL;");
    char sql[1024];
    snprintf(sql, sizeof sql,
             "GRANT EXECUTE ON FUNCTION defs.group_leak(text) TO %s; GRANT %s TO %s;"
             "CREATE FUNCTION defs.su_count_users() RETURNS bigint LANGUAGE sql SECURITY DEFINER"
             "  AS $$ SELECT count(*) FROM public.users $$;", /* owned by the superuser */
             grp_role, grp_role, login_role);
    exec_on(scratch.admin, "%s", sql);

    gp_audit_report_t *r = audit_as(NULL);
    dump(r);
    assert_true(says(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.leak_names()", "reads public.tenants as growplate_owner"));
    assert_true(says(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.leak_names()", "growplate:cross-tenant <reason>"));
    assert_true(says(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.leak_names()",
                     "never reads the verified tenant context (growplate.tenant_context or growplate_tenant())"));
    assert_false(mentions(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.leak_names()", "app.tenant_id"));
    assert_true(says(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.setting_name()",
                     "it reads current_setting('app.tenant_id'), which any SQL on the connection can set"));
    assert_true(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.lookalike_name()"));
    assert_false(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.func_name()"));
    assert_true(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.upper_leak()"));   /* any case */
    assert_true(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.atomic_leak()"));  /* prosrc is empty */
    assert_true(says(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.count_notes()", "defs.notes"));
    assert_true(says(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.su_count_users()", "public.users as postgres"));
    assert_true(says(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.unreasoned_leak()", "gives no reason"));
    assert_true(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "public.create_tenant(text, text, text)"));
    assert_false(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "public.tenant_id_for_slug(text)")); /* declared */
    assert_false(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.scoped_name()"));
    assert_false(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.count_users()"));
    assert_false(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.declared_leak()"));
    assert_false(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.revoked_leak()"));
    assert_false(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.group_leak(text)"));
    assert_false(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.harmless()"));
    assert_false(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.invoker_names()"));
    gp_audit_report_free(r);

    r = audit_as(login_url); /* reaches group_leak through its group */
    assert_true(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.group_leak(text)"));
    assert_true(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.leak_names()"));
    assert_false(has(r, GP_AUDIT_DEFINER_WITHOUT_TENANT, "defs.revoked_leak()"));
    gp_audit_report_free(r);

    char *lit = PQescapeLiteral(owner, comment, strlen(comment));
    assert_non_null(lit);
    snprintf(sql, sizeof sql, "DROP SCHEMA defs CASCADE; COMMENT ON FUNCTION public.create_tenant(text, text, text) IS %s",
             lit);
    PQfreemem(lit);
    gp_scratch_exec(owner, sql);
    PQfinish(owner);
    exec_on(scratch.admin, "REVOKE %s FROM %s", grp_role, login_role);
    assert_clean();
}

/* 3. Policies that mention the tenant column and the verified context but
 * do not scope by them, and policies that read a setting: only the one
 * shape is tenant scoping, and a setting is forgeable. */
static void test_policy_shapes(void **state)
{
    (void)state;
#define T(name) "CREATE TABLE shapes." name " (tenant_id uuid NOT NULL, id int, other_id uuid, PRIMARY KEY (tenant_id, id));" \
                "ALTER TABLE shapes." name " ENABLE ROW LEVEL SECURITY; ALTER TABLE shapes." name " FORCE ROW LEVEL SECURITY;"
    exec_on(scratch.owner_url, "%s",
        "CREATE SCHEMA shapes; GRANT USAGE ON SCHEMA shapes TO growplate_app;"
        /* a look-alike of the verified context, elsewhere */
        "CREATE VIEW shapes.tenant_context AS SELECT tenant FROM growplate.tenant_context;"
        /* almost the comparison; no setting */
        T("not_equal") "CREATE POLICY p ON shapes.not_equal USING (tenant_id <> " SCOPED ");"
        T("or_true") "CREATE POLICY p ON shapes.or_true USING (tenant_id = " SCOPED " OR true);"
        T("other_column") "CREATE POLICY p ON shapes.other_column USING (other_id = " SCOPED ");"
        T("via_function") "CREATE POLICY p ON shapes.via_function USING (tenant_id = growplate_tenant());"
        T("other_view") "CREATE POLICY p ON shapes.other_view"
        "  USING (tenant_id = (SELECT tenant_context.tenant FROM shapes.tenant_context));"
        T("in_context") "CREATE POLICY p ON shapes.in_context USING (tenant_id IN (SELECT tenant FROM growplate.tenant_context));"
        T("filtered") "CREATE POLICY p ON shapes.filtered"
        "  USING (tenant_id = (SELECT tenant_context.tenant FROM growplate.tenant_context WHERE true));"
        T("loose_check") "CREATE POLICY p ON shapes.loose_check USING (tenant_id = " SCOPED ") WITH CHECK (true);"
        /* reading a setting: forgeable, and no tenant scoping */
        T("legacy") "CREATE POLICY p ON shapes.legacy USING (tenant_id = " LEGACY ");"
        T("or_set") "CREATE POLICY p ON shapes.or_set USING (tenant_id = " SCOPED
        " OR current_setting('app.tenant_id', true) IS NOT NULL);"
        T("no_nullif") "CREATE POLICY p ON shapes.no_nullif USING (tenant_id = current_setting('app.tenant_id')::uuid);"
        T("other_setting") "CREATE POLICY p ON shapes.other_setting"
        "  USING (tenant_id = pg_catalog.current_setting('myapp.tenant')::uuid);"
        T("computed") "CREATE POLICY p ON shapes.computed"
        "  USING (tenant_id = current_setting('app.' || 'tenant_id', true)::uuid);"
        T("check_legacy") "CREATE POLICY p ON shapes.check_legacy USING (tenant_id = " SCOPED ")"
        "  WITH CHECK (tenant_id = " LEGACY ");"
        /* a forgeable restrictive policy confines nothing */
        T("restrictive_legacy") "CREATE POLICY open ON shapes.restrictive_legacy USING (true);"
        "CREATE POLICY scope ON shapes.restrictive_legacy AS RESTRICTIVE USING (tenant_id = " LEGACY ");"
        /* correct: the comparison; a forgeable policy only for another role is not the application's */
        T("good") "CREATE POLICY p ON shapes.good USING (tenant_id = " SCOPED ");"
        T("other_role") "CREATE POLICY p ON shapes.other_role USING (tenant_id = " SCOPED ");"
        "CREATE POLICY admin ON shapes.other_role TO growplate_owner USING (tenant_id = " LEGACY ");"
        /* a restrictive tenant policy confines every permissive one */
        T("restrictive") "CREATE POLICY open ON shapes.restrictive USING (true);"
        "CREATE POLICY scope ON shapes.restrictive AS RESTRICTIVE USING (tenant_id = " SCOPED ");"
        /* a tenants table: its column is id */
        "CREATE TABLE shapes.tenants (id uuid PRIMARY KEY);"
        "ALTER TABLE shapes.tenants ENABLE ROW LEVEL SECURITY; ALTER TABLE shapes.tenants FORCE ROW LEVEL SECURITY;"
        "CREATE POLICY p ON shapes.tenants USING (id = " SCOPED ");");
#undef T
    gp_audit_report_t *r = audit_as(NULL);
    dump(r);
    static const char *const loose[] = {"not_equal", "or_true", "other_column", "via_function",
                                        "other_view", "in_context", "filtered", "loose_check"};
    static const char *const forgeable[] = {"legacy", "or_set", "no_nullif", "other_setting", "computed", "check_legacy"};
    for (size_t i = 0; i < sizeof loose / sizeof *loose; i++) {
        char table[64], policy[64];
        snprintf(table, sizeof table, "shapes.%s", loose[i]);
        snprintf(policy, sizeof policy, "shapes.%s.p", loose[i]);
        assert_true(says(r, GP_AUDIT_LOOSE_POLICY, policy, "is not the tenant comparison"));
        assert_false(mentions(r, GP_AUDIT_LOOSE_POLICY, policy, "forgeable_context"));
        assert_true(says(r, GP_AUDIT_NO_TENANT_POLICY, table, "comparing tenant_id with the verified tenant context"));
        assert_false(mentions(r, GP_AUDIT_NO_TENANT_POLICY, table, "forgeable_context"));
        assert_false(has(r, GP_AUDIT_FORGEABLE_CONTEXT, policy));
    }
    for (size_t i = 0; i < sizeof forgeable / sizeof *forgeable; i++) {
        char table[64], policy[64];
        snprintf(table, sizeof table, "shapes.%s", forgeable[i]);
        snprintf(policy, sizeof policy, "shapes.%s.p", forgeable[i]);
        assert_true(says(r, GP_AUDIT_FORGEABLE_CONTEXT, policy, "a setting that any SQL on the connection can set"));
        assert_true(says(r, GP_AUDIT_FORGEABLE_CONTEXT, policy, "reaches every tenant"));
        assert_true(says(r, GP_AUDIT_FORGEABLE_CONTEXT, policy,
                         "USING (tenant_id = (SELECT tenant_context.tenant FROM growplate.tenant_context))"));
        /* and it is no tenant scoping */
        assert_true(says(r, GP_AUDIT_LOOSE_POLICY, policy, "it reads a setting that any SQL on the connection can set"));
        assert_true(says(r, GP_AUDIT_NO_TENANT_POLICY, table, "does not count (forgeable_context)"));
    }
    assert_true(says(r, GP_AUDIT_FORGEABLE_CONTEXT, "shapes.legacy.p",
                     "reads current_setting('app.tenant_id') in its USING,"));
    assert_true(says(r, GP_AUDIT_FORGEABLE_CONTEXT, "shapes.legacy.p", "the tenant setting of the schemas before migration 0004"));
    assert_true(says(r, GP_AUDIT_FORGEABLE_CONTEXT, "shapes.other_setting.p", "reads current_setting('myapp.tenant')"));
    assert_false(mentions(r, GP_AUDIT_FORGEABLE_CONTEXT, "shapes.other_setting.p", "before migration 0004"));
    assert_true(says(r, GP_AUDIT_FORGEABLE_CONTEXT, "shapes.computed.p", "reads current_setting(<an expression>)"));
    assert_true(says(r, GP_AUDIT_FORGEABLE_CONTEXT, "shapes.check_legacy.p", "in its WITH CHECK,"));
    assert_true(says(r, GP_AUDIT_LOOSE_POLICY, "shapes.check_legacy.p", "its WITH CHECK"));
    assert_true(says(r, GP_AUDIT_NO_TENANT_POLICY, "shapes.check_legacy", "for INSERT, UPDATE (")); /* not SELECT */
    assert_true(says(r, GP_AUDIT_LOOSE_POLICY, "shapes.loose_check.p", "its WITH CHECK"));
    assert_true(says(r, GP_AUDIT_NO_TENANT_POLICY, "shapes.loose_check", "for INSERT, UPDATE (")); /* not SELECT */
    /* restrictive and forgeable: reported, and it confines nothing */
    assert_true(says(r, GP_AUDIT_FORGEABLE_CONTEXT, "shapes.restrictive_legacy.scope", "app.tenant_id"));
    assert_true(has(r, GP_AUDIT_LOOSE_POLICY, "shapes.restrictive_legacy.open"));
    assert_true(has(r, GP_AUDIT_NO_TENANT_POLICY, "shapes.restrictive_legacy"));
    for (size_t i = 0; i < r->count; i++) /* nothing about good, other_role, restrictive, tenants, the view */
        assert_true(strncmp(r->findings[i].object, "shapes.good", 11) != 0 &&
                    strncmp(r->findings[i].object, "shapes.other_role", 17) != 0 &&
                    strncmp(r->findings[i].object, "shapes.restrictive.", 19) != 0 &&
                    strcmp(r->findings[i].object, "shapes.restrictive") != 0 &&
                    strncmp(r->findings[i].object, "shapes.tenants", 14) != 0 &&
                    strncmp(r->findings[i].object, "shapes.tenant_context", 21) != 0);
    assert_int_equal(r->count, 2 * (sizeof loose / sizeof *loose) + 3 * (sizeof forgeable / sizeof *forgeable) + 3);
    gp_audit_report_free(r);
    exec_on(scratch.owner_url, "DROP SCHEMA shapes CASCADE");
    assert_clean();
}

/* 3b. The schema before migration 0004: the shipped policies compare with
 * the plain setting. Each is forgeable and no tenant scoping. */
static void test_forgeable_shipped_policies(void **state)
{
    (void)state;
    exec_on(scratch.owner_url,
            "ALTER POLICY tenant_isolation ON public.orders USING (tenant_id = " LEGACY ") WITH CHECK (tenant_id = " LEGACY ");"
            "ALTER POLICY tenant_isolation ON public.tenants USING (id = " LEGACY ") WITH CHECK (id = " LEGACY ");");
    gp_audit_report_t *r = audit_as(NULL);
    dump(r);
    assert_true(says(r, GP_AUDIT_FORGEABLE_CONTEXT, "public.orders.tenant_isolation",
                     "reads current_setting('app.tenant_id') in its USING and WITH CHECK,"));
    assert_true(says(r, GP_AUDIT_FORGEABLE_CONTEXT, "public.orders.tenant_isolation", "migration 0004"));
    assert_true(says(r, GP_AUDIT_FORGEABLE_CONTEXT, "public.tenants.tenant_isolation",
                     "compare id with the verified tenant context instead"));
    assert_true(has(r, GP_AUDIT_NO_TENANT_POLICY, "public.orders"));
    assert_true(has(r, GP_AUDIT_LOOSE_POLICY, "public.orders.tenant_isolation"));
    assert_true(has(r, GP_AUDIT_NO_TENANT_POLICY, "public.tenants"));
    assert_true(has(r, GP_AUDIT_LOOSE_POLICY, "public.tenants.tenant_isolation"));
    assert_false(has_kind(r, GP_AUDIT_TENANT_CONTEXT_ALTERED)); /* the context itself is intact */
    assert_int_equal(r->count, 6);
    gp_audit_report_free(r);
    r = audit_as(login_url); /* the same for a login role of the application */
    assert_true(has(r, GP_AUDIT_FORGEABLE_CONTEXT, "public.orders.tenant_isolation"));
    gp_audit_report_free(r);
    exec_on(scratch.owner_url,
            "ALTER POLICY tenant_isolation ON public.orders USING (tenant_id = " SCOPED ") WITH CHECK (tenant_id = " SCOPED ");"
            "ALTER POLICY tenant_isolation ON public.tenants USING (id = " SCOPED ") WITH CHECK (id = " SCOPED ");");
    assert_clean();
}

/* The verified tenant context as migration 0004 creates it. */
#define SHIPPED_CONTEXT_VIEW                                                                                \
    "CREATE OR REPLACE VIEW growplate.tenant_context WITH (security_barrier) AS"                           \
    "    SELECT a.tenant"                                                                                   \
    "      FROM growplate_private.tenant_anchors a"                                                         \
    "     WHERE a.digest = (SELECT pg_catalog.sha256(pg_catalog.textsend("                                  \
    "                           pg_catalog.current_setting('growplate.tenant_token', true))))"              \
    "       AND a.expires_at > pg_catalog.now();"

/* Everything about the objects of the verified context that the test
 * changes: owners, privileges (column ones too), options, the view's
 * definition. */
static void context_state(char *buf, size_t len)
{
    PGconn *c = gp_scratch_connect(scratch.admin);
    gp_scratch_value(c,
        "SELECT string_agg(x, E'\\n' ORDER BY x) FROM ("
        " SELECT c.oid::regclass::text || ' ' || c.relkind::text || ' ' || pg_get_userbyid(c.relowner) || ' '"
        "   || coalesce(c.relacl::text, '-') || ' ' || coalesce(c.reloptions::text, '-') || ' '"
        "   || CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) ELSE '' END AS x"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('growplate', 'growplate_private')"
        " UNION ALL SELECT a.attrelid::regclass::text || '.' || a.attname || ' ' || a.attacl::text FROM pg_attribute a"
        " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname IN ('growplate', 'growplate_private') AND a.attacl IS NOT NULL"
        " UNION ALL SELECT nspname || ' ' || pg_get_userbyid(nspowner) || ' ' || coalesce(nspacl::text, '-')"
        " FROM pg_namespace WHERE nspname IN ('growplate', 'growplate_private')"
        " UNION ALL SELECT p.oid::regprocedure::text || ' ' || pg_get_userbyid(p.proowner) || ' ' || coalesce(p.proacl::text, '-')"
        " FROM pg_proc p WHERE p.proname IN ('tenant_publish', 'growplate_tenant')) s",
        buf, len);
    PQfinish(c);
}

/* 3c. The verified context itself not as migration 0004 shipped it: each
 * cause, each restored (and the restoration checked) before the next. */
static void test_tenant_context_altered(void **state)
{
    (void)state;
    static char before[16384], after[16384];
    context_state(before, sizeof before);
    assert_non_null(strstr(before, "security_barrier=true"));
    static const char view[] = "growplate.tenant_context";

    /* Replaced by the owner with the forgeable setting: the policies still
     * read "growplate.tenant_context", so only this finding shows it. */
    exec_on(scratch.owner_url, "CREATE OR REPLACE VIEW growplate.tenant_context AS"
                               " SELECT current_setting('app.tenant_id', true)::uuid AS tenant");
    gp_audit_report_t *r = audit_as(NULL);
    dump(r);
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, view, "is not defined as migration 0004 shipped it"));
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, view, "decides which tenant each connection acts as"));
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, view, "is not a security_barrier view (its options: none)"));
    assert_int_equal(count_of(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, view), 2);
    assert_false(has_kind(r, GP_AUDIT_NO_TENANT_POLICY));
    assert_false(has_kind(r, GP_AUDIT_FORGEABLE_CONTEXT));
    assert_int_equal(r->count, 2);
    gp_audit_report_free(r);
    exec_on(scratch.owner_url, "%s", SHIPPED_CONTEXT_VIEW);
    context_state(after, sizeof after);
    assert_string_equal(after, before);
    assert_clean();

    /* The same definition, not a security barrier; then barrier spelled "on". */
    exec_on(scratch.owner_url, "ALTER VIEW growplate.tenant_context RESET (security_barrier)");
    r = audit_as(NULL);
    dump(r);
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, view, "is not a security_barrier view (its options: none)"));
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, view, "SET (security_barrier = true)"));
    assert_int_equal(r->count, 1);
    gp_audit_report_free(r);
    exec_on(scratch.owner_url, "ALTER VIEW growplate.tenant_context SET (security_barrier = off)");
    r = audit_as(NULL);
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, view, "(its options: security_barrier=off)"));
    assert_int_equal(r->count, 1);
    gp_audit_report_free(r);
    exec_on(scratch.owner_url, "ALTER VIEW growplate.tenant_context SET (security_barrier = on)");
    r = audit_as(NULL);
    dump(r);
    assert_int_equal(r->count, 0);
    gp_audit_report_free(r);
    exec_on(scratch.owner_url, "ALTER VIEW growplate.tenant_context SET (security_barrier = true)");
    context_state(after, sizeof after);
    assert_string_equal(after, before);

    /* Gone (renamed away: the policies follow the view, so none is the
     * comparison any more), then a table in its place. */
    exec_on(scratch.owner_url, "ALTER VIEW growplate.tenant_context RENAME TO tenant_context_moved");
    r = audit_as(NULL);
    dump(r);
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, view, "does not exist, though there are tenant tables"));
    assert_int_equal(count_of(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, view), 1);
    assert_true(has(r, GP_AUDIT_NO_TENANT_POLICY, "public.users"));
    assert_true(has(r, GP_AUDIT_LOOSE_POLICY, "public.tenants.tenant_isolation"));
    gp_audit_report_free(r);
    exec_on(scratch.owner_url, "CREATE TABLE growplate.tenant_context (tenant uuid)");
    r = audit_as(NULL);
    dump(r);
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, view, "growplate.tenant_context is a table, not the view"));
    assert_int_equal(count_of(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, view), 1);
    gp_audit_report_free(r);
    exec_on(scratch.owner_url, "DROP TABLE growplate.tenant_context;"
                               "ALTER VIEW growplate.tenant_context_moved RENAME TO tenant_context");
    context_state(after, sizeof after);
    assert_string_equal(after, before);
    assert_clean();

    /* Privileges: directly, through PUBLIC, through a group of the login
     * role; any on the key and anchor tables, any but SELECT on the view,
     * CREATE on the schemas. */
    exec_on(scratch.admin,
            "GRANT SELECT ON growplate_private.tenant_anchors TO growplate_app;"
            "GRANT UPDATE (tenant) ON growplate_private.tenant_anchors TO PUBLIC;"
            "GRANT UPDATE ON growplate.tenant_context TO growplate_app;"
            "GRANT CREATE ON SCHEMA growplate TO PUBLIC;"
            "GRANT INSERT ON growplate_private.tenant_keys TO %s; GRANT CREATE ON SCHEMA growplate_private TO %s;"
            "GRANT %s TO %s;",
            grp_role, grp_role, grp_role, login_role);
    r = audit_as(NULL);
    dump(r);
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate_private.tenant_anchors",
                     "holds SELECT, UPDATE on the table growplate_private.tenant_anchors (granted to PUBLIC, growplate_app)"));
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate_private.tenant_anchors",
                     "makes a token of its own choosing stand for any tenant"));
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate_private.tenant_anchors",
                     "REVOKE SELECT, UPDATE ON growplate_private.tenant_anchors FROM PUBLIC, growplate_app"));
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, view,
                     "holds UPDATE on the view growplate.tenant_context (granted to growplate_app)")); /* not SELECT */
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate", "may CREATE in schema growplate (granted to PUBLIC)"));
    assert_false(has(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate_private.tenant_keys"));
    assert_false(has(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate_private"));
    assert_false(has_kind(r, GP_AUDIT_TABLE_WITHOUT_RLS)); /* not "declare it shared" */
    assert_int_equal(r->count, 3);
    gp_audit_report_free(r);
    r = audit_as(login_url);
    dump(r);
    char via[128];
    snprintf(via, sizeof via, "holds INSERT on the table growplate_private.tenant_keys (granted to %s)", grp_role);
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate_private.tenant_keys", via));
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate_private.tenant_keys", "sign a tenant secret for any tenant"));
    snprintf(via, sizeof via, "may CREATE in schema growplate_private (granted to %s)", grp_role);
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate_private", via));
    assert_true(has(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate_private.tenant_anchors"));
    assert_true(has(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, view));
    assert_int_equal(r->count, 5);
    gp_audit_report_free(r);
    exec_on(scratch.admin,
            "REVOKE SELECT ON growplate_private.tenant_anchors FROM growplate_app;"
            "REVOKE UPDATE (tenant) ON growplate_private.tenant_anchors FROM PUBLIC;"
            "REVOKE UPDATE ON growplate.tenant_context FROM growplate_app;"
            "REVOKE CREATE ON SCHEMA growplate FROM PUBLIC;"
            "REVOKE INSERT ON growplate_private.tenant_keys FROM %s; REVOKE CREATE ON SCHEMA growplate_private FROM %s;",
            grp_role, grp_role);
    context_state(after, sizeof after);
    assert_string_equal(after, before);
    assert_clean(); /* grp is still granted to login: nothing through it now */

    /* Owners: the application role itself, and a role the login role can
     * SET ROLE to (the application role cannot: nothing for it). */
    exec_on(scratch.admin,
            "ALTER TABLE growplate_private.tenant_keys OWNER TO growplate_app;"
            "ALTER VIEW growplate.tenant_context OWNER TO %s; ALTER SCHEMA growplate OWNER TO %s;"
            "ALTER FUNCTION growplate.tenant_publish(text, uuid, bigint, text) OWNER TO %s;",
            grp_role, grp_role, grp_role);
    r = audit_as(NULL);
    dump(r);
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate_private.tenant_keys",
                     "the table growplate_private.tenant_keys, part of the verified tenant context, is owned by "
                     "growplate_app, which the application role growplate_app is or can SET ROLE to"));
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate_private.tenant_keys",
                     "ALTER TABLE growplate_private.tenant_keys OWNER TO"));
    assert_int_equal(count_of(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate_private.tenant_keys"), 1); /* not also its privileges */
    assert_int_equal(r->count, 1);
    gp_audit_report_free(r);
    r = audit_as(login_url);
    dump(r);
    char owned[160];
    snprintf(owned, sizeof owned, "is owned by %s, which the application role %s is or can SET ROLE to", grp_role,
             login_role);
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, view, owned));
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, view, "replace the view's definition"));
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate", owned));
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate.tenant_publish(text, uuid, bigint, text)", owned));
    assert_true(says(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate.tenant_publish(text, uuid, bigint, text)",
                     "records anchors for secrets it never verified"));
    assert_true(has(r, GP_AUDIT_TENANT_CONTEXT_ALTERED, "growplate_private.tenant_keys")); /* through growplate_app */
    assert_int_equal(r->count, 4);
    gp_audit_report_free(r);
    exec_on(scratch.admin,
            "ALTER TABLE growplate_private.tenant_keys OWNER TO growplate_owner;"
            "ALTER VIEW growplate.tenant_context OWNER TO growplate_owner; ALTER SCHEMA growplate OWNER TO growplate_owner;"
            "ALTER FUNCTION growplate.tenant_publish(text, uuid, bigint, text) OWNER TO growplate_owner;"
            "REVOKE %s FROM %s",
            grp_role, login_role);
    context_state(after, sizeof after);
    assert_string_equal(after, before);
    assert_clean();
}

/* 4. TRUNCATE, TRIGGER and REFERENCES on tenant tables: directly, through
 * PUBLIC, through a role the application is a member of. */
static void test_unsafe_table_privileges(void **state)
{
    (void)state;
    exec_on(scratch.admin,
            "GRANT TRUNCATE ON public.users TO PUBLIC; GRANT TRIGGER ON public.orders TO growplate_app;"
            "GRANT TRUNCATE ON public.tenants TO growplate_app;"
            "GRANT REFERENCES (tenant_id) ON public.menu_items TO %s; GRANT %s TO %s;",
            grp_role, grp_role, login_role);
    gp_audit_report_t *r = audit_as(NULL);
    dump(r);
    assert_true(says(r, GP_AUDIT_UNSAFE_TABLE_PRIVILEGE, "public.users", "holds TRUNCATE on the tenant table public.users (granted to PUBLIC)"));
    assert_true(says(r, GP_AUDIT_UNSAFE_TABLE_PRIVILEGE, "public.users", "REVOKE TRUNCATE ON public.users FROM PUBLIC"));
    assert_true(says(r, GP_AUDIT_UNSAFE_TABLE_PRIVILEGE, "public.orders", "TRIGGER"));
    assert_true(has(r, GP_AUDIT_UNSAFE_TABLE_PRIVILEGE, "public.tenants"));
    assert_false(has(r, GP_AUDIT_UNSAFE_TABLE_PRIVILEGE, "public.menu_items"));
    assert_int_equal(r->count, 3);
    gp_audit_report_free(r);
    r = audit_as(login_url);
    dump(r);
    assert_true(says(r, GP_AUDIT_UNSAFE_TABLE_PRIVILEGE, "public.menu_items", "REFERENCES")); /* a column grant */
    assert_true(has(r, GP_AUDIT_UNSAFE_TABLE_PRIVILEGE, "public.users"));
    assert_true(has(r, GP_AUDIT_UNSAFE_TABLE_PRIVILEGE, "public.orders")); /* through growplate_app */
    gp_audit_report_free(r);
    exec_on(scratch.admin,
            "REVOKE TRUNCATE ON public.users FROM PUBLIC; REVOKE TRIGGER ON public.orders FROM growplate_app;"
            "REVOKE TRUNCATE ON public.tenants FROM growplate_app;"
            "REVOKE REFERENCES (tenant_id) ON public.menu_items FROM %s; REVOKE %s FROM %s;",
            grp_role, grp_role, login_role);
    assert_clean();
}

/* 5. Tables the application can read or write without row-level security
 * and without a tenant_id column, unless declared shared. */
static void test_tables_without_rls(void **state)
{
    (void)state;
    exec_on(scratch.owner_url,
            "CREATE TABLE public.restaurant_notes (restaurant_id uuid NOT NULL, note text);"
            "GRANT SELECT ON public.restaurant_notes TO growplate_app;"
            "CREATE TABLE public.countries (code text PRIMARY KEY); GRANT SELECT ON public.countries TO growplate_app;"
            "COMMENT ON TABLE public.countries IS 'growplate:shared ISO 3166 codes, the same for every tenant';"
            "CREATE TABLE public.currencies (code text PRIMARY KEY); GRANT SELECT ON public.currencies TO PUBLIC;"
            "COMMENT ON TABLE public.currencies IS 'growplate:shared';"
            "CREATE TABLE public.rls_on (restaurant_id uuid); ALTER TABLE public.rls_on ENABLE ROW LEVEL SECURITY;"
            "GRANT SELECT ON public.rls_on TO growplate_app;"
            "CREATE TABLE public.private_notes (restaurant_id uuid);"
            "CREATE TABLE public.col_grant (restaurant_id uuid, secret text);"
            "GRANT UPDATE (secret) ON public.col_grant TO %s;"
            "CREATE TABLE public.events (restaurant_id uuid, at date) PARTITION BY RANGE (at);"
            "GRANT INSERT ON public.events TO growplate_app;"
            "CREATE TABLE public.leaky_tenant (tenant_id uuid NOT NULL, id int, PRIMARY KEY (tenant_id, id));"
            "GRANT SELECT ON public.leaky_tenant TO growplate_app;",
            grp_role);
    exec_on(scratch.admin, "GRANT %s TO %s", grp_role, login_role);
    gp_audit_report_t *r = audit_as(NULL);
    dump(r);
    assert_true(says(r, GP_AUDIT_TABLE_WITHOUT_RLS, "public.restaurant_notes", "can SELECT public.restaurant_notes"));
    assert_true(says(r, GP_AUDIT_TABLE_WITHOUT_RLS, "public.restaurant_notes", "growplate:shared <reason>"));
    assert_true(says(r, GP_AUDIT_TABLE_WITHOUT_RLS, "public.currencies", "gives no reason"));
    assert_true(says(r, GP_AUDIT_TABLE_WITHOUT_RLS, "public.events", "can INSERT"));
    assert_false(has(r, GP_AUDIT_TABLE_WITHOUT_RLS, "public.countries"));
    assert_false(has(r, GP_AUDIT_TABLE_WITHOUT_RLS, "public.rls_on"));
    assert_false(has(r, GP_AUDIT_TABLE_WITHOUT_RLS, "public.private_notes"));
    assert_false(has(r, GP_AUDIT_TABLE_WITHOUT_RLS, "public.col_grant"));
    assert_false(has(r, GP_AUDIT_TABLE_WITHOUT_RLS, "public." GP_MIGRATIONS_TABLE));
    assert_true(has(r, GP_AUDIT_RLS_DISABLED, "public.leaky_tenant")); /* a tenant table: reported as that */
    assert_false(has(r, GP_AUDIT_TABLE_WITHOUT_RLS, "public.leaky_tenant"));
    gp_audit_report_free(r);
    r = audit_as(login_url);
    assert_true(says(r, GP_AUDIT_TABLE_WITHOUT_RLS, "public.col_grant", "can UPDATE")); /* a column, via its group */
    gp_audit_report_free(r);

    /* The bookkeeping table is the owner's; readable, it is reported. */
    exec_on(scratch.owner_url, "GRANT SELECT ON public." GP_MIGRATIONS_TABLE " TO growplate_app");
    r = audit_as(NULL);
    assert_true(has(r, GP_AUDIT_TABLE_WITHOUT_RLS, "public." GP_MIGRATIONS_TABLE));
    gp_audit_report_free(r);
    exec_on(scratch.owner_url,
            "REVOKE SELECT ON public." GP_MIGRATIONS_TABLE " FROM growplate_app;"
            "DROP TABLE public.restaurant_notes, public.countries, public.currencies, public.rls_on,"
            " public.private_notes, public.col_grant, public.events, public.leaky_tenant");
    exec_on(scratch.admin, "REVOKE %s FROM %s", grp_role, login_role);
    assert_clean();
}

/* 6. TEMPORARY on the database: through PUBLIC, directly, through a group. */
static void test_temporary_granted(void **state)
{
    (void)state;
    exec_on(scratch.admin, "GRANT TEMPORARY ON DATABASE %s TO PUBLIC", scratch.db);
    gp_audit_report_t *r = audit_as(NULL);
    dump(r);
    assert_true(says(r, GP_AUDIT_TEMPORARY_GRANTED, scratch.db, "(granted to PUBLIC)"));
    assert_true(says(r, GP_AUDIT_TEMPORARY_GRANTED, scratch.db, "pg_temp is searched first"));
    assert_int_equal(r->count, 1);
    gp_audit_report_free(r);
    exec_on(scratch.admin, "REVOKE TEMPORARY ON DATABASE %s FROM PUBLIC; GRANT TEMPORARY ON DATABASE %s TO growplate_app",
            scratch.db, scratch.db);
    r = audit_as(NULL);
    assert_true(says(r, GP_AUDIT_TEMPORARY_GRANTED, scratch.db, "(granted to growplate_app)"));
    gp_audit_report_free(r);
    exec_on(scratch.admin, "REVOKE TEMPORARY ON DATABASE %s FROM growplate_app; GRANT TEMPORARY ON DATABASE %s TO %s;"
            "GRANT %s TO %s", scratch.db, scratch.db, grp_role, grp_role, login_role);
    r = audit_as(NULL);
    assert_false(has_kind(r, GP_AUDIT_TEMPORARY_GRANTED));
    gp_audit_report_free(r);
    r = audit_as(login_url);
    assert_true(says(r, GP_AUDIT_TEMPORARY_GRANTED, scratch.db, grp_role));
    gp_audit_report_free(r);
    exec_on(scratch.admin, "REVOKE TEMPORARY ON DATABASE %s FROM %s; REVOKE %s FROM %s", scratch.db, grp_role, grp_role,
            login_role);
    assert_clean();
}

/* The audit's own SQL names pg_catalog's relations, functions and types
 * explicitly: decoys of the same names in public (which the connection's
 * search_path puts first) change nothing. */
static void test_catalog_names_qualified(void **state)
{
    (void)state;
    static const char *const tables[] = {"pg_class", "pg_namespace", "pg_attribute", "pg_policy", "pg_roles",
                                         "pg_proc", "pg_auth_members", "pg_database", "pg_index", "pg_constraint",
                                         "pg_rewrite", "pg_depend", "pg_description"};
    char sql[8192] = "", drop[4096] = "DROP TABLE ";
    size_t n = 0, d = strlen(drop);
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        n += (size_t)snprintf(sql + n, sizeof sql - n, "CREATE TABLE public.%s (x int);"
                              "ALTER TABLE public.%s ENABLE ROW LEVEL SECURITY; GRANT SELECT ON public.%s TO PUBLIC;",
                              tables[i], tables[i], tables[i]);
        d += (size_t)snprintf(drop + d, sizeof drop - d, "%spublic.%s", i ? ", " : "", tables[i]);
    }
    assert_true(n < sizeof sql && d < sizeof drop);
    exec_on(scratch.owner_url, "%s"
            "CREATE FUNCTION public.pg_get_expr(pg_node_tree, oid) RETURNS text LANGUAGE sql AS $$ SELECT 'true' $$;"
            "CREATE FUNCTION public.pg_has_role(name, oid, text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;"
            "CREATE FUNCTION public.has_table_privilege(oid, oid, text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;"
            "CREATE FUNCTION public.has_database_privilege(oid, oid, text) RETURNS boolean LANGUAGE sql"
            "  AS $$ SELECT true $$;"
            "CREATE FUNCTION public.has_function_privilege(oid, oid, text) RETURNS boolean LANGUAGE sql"
            "  AS $$ SELECT true $$;"
            "CREATE FUNCTION public.pg_get_userbyid(oid) RETURNS name LANGUAGE sql AS $$ SELECT 'decoy'::name $$;"
            "CREATE FUNCTION public.pg_get_viewdef(oid) RETURNS text LANGUAGE sql AS $$ SELECT 'decoy' $$;"
            "CREATE FUNCTION public.has_schema_privilege(oid, oid, text) RETURNS boolean LANGUAGE sql"
            "  AS $$ SELECT true $$;"
            "CREATE TYPE public.regclass AS (x int); CREATE TYPE public.oid AS (x int);"
            "CREATE TYPE public.int2 AS (x int); CREATE TYPE public.text AS (x int);"
            "GRANT TRUNCATE ON public.users TO PUBLIC;", sql);
    gp_audit_report_t *r = audit_as(NULL);
    dump(r);
    assert_int_equal(r->tables_checked, 6);
    assert_true(says(r, GP_AUDIT_UNSAFE_TABLE_PRIVILEGE, "public.users", "TRUNCATE"));
    assert_int_equal(r->count, 1);
    gp_audit_report_free(r);
    exec_on(scratch.owner_url, "%s;"
            "DROP TYPE public.regclass, public.oid, public.int2, public.text;"
            "DROP FUNCTION public.pg_get_expr(pg_node_tree, oid), public.pg_has_role(name, oid, text),"
            " public.has_table_privilege(oid, oid, text), public.has_database_privilege(oid, oid, text),"
            " public.has_function_privilege(oid, oid, text), public.pg_get_userbyid(oid),"
            " public.pg_get_viewdef(oid), public.has_schema_privilege(oid, oid, text);"
            "REVOKE TRUNCATE ON public.users FROM PUBLIC", drop);
    assert_clean();
}

static void test_connection_failure(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_scratch_config(&scratch, &cfg);
    cfg.db.url = "postgresql://growplate_app:S3cretPw@127.0.0.1:1/x";
    gp_audit_report_t *r = (gp_audit_report_t *)&cfg; /* must be reset to NULL */
    gp_error_t err;
    assert_int_equal(gp_audit(&cfg, &r, &err), GP_ERR_CONNECT);
    assert_null(r);
    assert_null(strstr(err.message, "S3cretPw"));
    gp_config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_schema_is_clean),
        cmocka_unit_test(test_each_finding_fires),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_role_findings),
        cmocka_unit_test(test_member_of_bypassing_role),
        cmocka_unit_test(test_definer_functions),
        cmocka_unit_test(test_policy_shapes),
        cmocka_unit_test(test_forgeable_shipped_policies),
        cmocka_unit_test(test_tenant_context_altered),
        cmocka_unit_test(test_unsafe_table_privileges),
        cmocka_unit_test(test_tables_without_rls),
        cmocka_unit_test(test_temporary_granted),
        cmocka_unit_test(test_catalog_names_qualified),
        cmocka_unit_test(test_connection_failure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
