/* test_audit.c — the isolation audit: our schema audits clean, and every
 * kind of finding fires on a deliberately broken object (created by the
 * owner in a scratch database's own schema, or through a scratch role that
 * is dropped afterwards). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gp_scratch.h"

static gp_scratch_t scratch;
static char bad_role[64];

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "audit");
    gp_scratch_migrate(&scratch);
    snprintf(bad_role, sizeof bad_role, "gp_audit_bad_%d", (int)getpid());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_scratch_drop(&scratch);
    PGconn *c = gp_scratch_connect(getenv("GP_PG_ADMIN_CONNINFO"));
    char sql[128];
    snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", bad_role);
    gp_scratch_exec(c, sql);
    PQfinish(c);
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

static void dump(const gp_audit_report_t *r)
{
    for (size_t i = 0; i < r->count; i++)
        fprintf(stderr, "  %s %s: %s\n", gp_audit_kind_name(r->findings[i].kind), r->findings[i].object,
                r->findings[i].message);
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
}

#define POLICY(t)                                                                                   \
    "CREATE POLICY p ON broken." t " USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', " \
    "true), '')::uuid)); "
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
        "CREATE POLICY reads ON broken.loose FOR SELECT USING (tenant_id = (SELECT NULLIF(current_setting("
        "'app.tenant_id', true), '')::uuid));"
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
        cmocka_unit_test(test_role_findings),
        cmocka_unit_test(test_connection_failure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
