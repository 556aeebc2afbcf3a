/* test_migrate_set.c — a service's own migrations: loaded from a directory
 * (other files ignored; duplicates, 0000, empty files and a missing
 * directory refused with the file named), applied under their own
 * bookkeeping table and advisory lock key beside the library's set
 * (untouched), idempotently; a changed, removed or out-of-order migration
 * refused; a failing one rolled back alone; the library's table and lock
 * key refused; the service's lock serialises its migrators while the
 * library's lock does not block them. Each test has its scratch database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gp_scratch.h"

static gp_scratch_t scratch;
static gp_config_t cfg;
static char dir[256];

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_file(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(unlink(path), 0);
}

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "mset");
    gp_scratch_migrate(&scratch);
    gp_scratch_config(&scratch, &cfg);
    snprintf(dir, sizeof dir, "/tmp/gp-mset-%d-XXXXXX", (int)getpid());
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    gp_config_release(&cfg);
    gp_scratch_drop(&scratch);
    return 0;
}

static const char *admin_value(const char *sql, char *buf, size_t len)
{
    PGconn *c = gp_scratch_connect(scratch.admin);
    gp_scratch_value(c, sql, buf, len);
    PQfinish(c);
    return buf;
}

/* Load the directory and apply it to table `table`. */
static gp_status_t apply(const char *table, int64_t lock_key, int lock_timeout_ms, gp_migrate_report_t **rep,
                         gp_error_t *e)
{
    gp_migration_t *m = NULL;
    size_t n = 0;
    gp_status_t st = gp_migration_set_load(dir, &m, &n, e);
    if (st != GP_OK)
        return st;
    gp_migration_set_t set = {.table = table, .lock_key = lock_key, .migrations = m, .count = n};
    gp_migrate_opts_t opts = {.lock_timeout_ms = lock_timeout_ms};
    st = gp_migrate_set(&cfg, &set, &opts, rep, e);
    gp_migration_set_free(m, n);
    return st;
}

static void test_apply_beside_the_library(void **state)
{
    (void)state;
    char buf[128], before[128];
    admin_value("SELECT string_agg(version || ':' || checksum, ',' ORDER BY version) FROM public.growplate_schema_migrations",
                before, sizeof before);
    write_file("0001_widgets.sql", "CREATE TABLE public.svc_widgets (id int PRIMARY KEY, label text NOT NULL);\n");
    write_file("0002_widget_colour.sql", "ALTER TABLE public.svc_widgets ADD COLUMN colour text;\n");
    write_file("README.txt", "not a migration\n");
    write_file("0003_notes.sql.bak", "not a migration either\n");

    gp_migration_t *m = NULL;
    size_t n = 0;
    gp_error_t e;
    assert_int_equal(gp_migration_set_load(dir, &m, &n, &e), GP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(m[0].version, 1);
    assert_string_equal(m[0].name, "widgets");
    assert_string_equal(m[1].name, "widget_colour");
    assert_int_equal(strlen(m[1].checksum), 64);
    gp_migration_set_free(m, n);

    gp_migrate_report_t *rep = NULL;
    assert_int_equal(apply("svc_schema_migrations", 0, 0, &rep, &e), GP_OK);
    assert_int_equal(rep->applied, 2);
    assert_int_equal(rep->tenant_keys, 0); /* the service's set installs no keys */
    gp_migrate_report_free(rep);
    assert_string_equal(admin_value("SELECT string_agg(version || ' ' || name, ',' ORDER BY version) "
                                    "FROM public.svc_schema_migrations", buf, sizeof buf),
                        "1 widgets,2 widget_colour");
    assert_string_equal(admin_value("SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.svc_widgets'::regclass "
                                    "AND attname = 'colour'", buf, sizeof buf), "1");
    /* The library's bookkeeping is untouched, and gp_migrate still finds it up to date. */
    assert_string_equal(admin_value("SELECT string_agg(version || ':' || checksum, ',' ORDER BY version) "
                                    "FROM public.growplate_schema_migrations", buf, sizeof buf), before);
    assert_int_equal(gp_migrate(&cfg, NULL, &rep, &e), GP_OK);
    assert_int_equal(rep->applied, 0);
    gp_migrate_report_free(rep);

    /* Idempotent; a new file is applied alone. */
    assert_int_equal(apply("svc_schema_migrations", 0, 0, &rep, &e), GP_OK);
    assert_int_equal(rep->applied, 0);
    gp_migrate_report_free(rep);
    write_file("0003_gadgets.sql", "CREATE TABLE public.svc_gadgets (id int PRIMARY KEY);\n");
    assert_int_equal(apply("svc_schema_migrations", 0, 0, &rep, &e), GP_OK);
    assert_int_equal(rep->applied, 1);
    assert_int_equal(rep->entries[2].state, GP_MIGRATION_APPLIED_NOW);
    gp_migrate_report_free(rep);

    /* Changed after it was applied. */
    write_file("0002_widget_colour.sql", "ALTER TABLE public.svc_widgets ADD COLUMN color text;\n");
    assert_int_equal(apply("svc_schema_migrations", 0, 0, &rep, &e), GP_ERR_MIGRATION);
    assert_non_null(strstr(e.message, "migration 0002 (widget_colour) was changed after it was applied"));
    gp_migrate_report_free(rep);
    write_file("0002_widget_colour.sql", "ALTER TABLE public.svc_widgets ADD COLUMN colour text;\n");

    /* Removed after it was applied. */
    remove_file("0003_gadgets.sql");
    assert_int_equal(apply("svc_schema_migrations", 0, 0, &rep, &e), GP_ERR_MIGRATION);
    assert_non_null(strstr(e.message, "svc_schema_migrations records migration 0003 (gadgets), which this migration "
                                      "set does not have"));
    gp_migrate_report_free(rep);
    write_file("0003_gadgets.sql", "CREATE TABLE public.svc_gadgets (id int PRIMARY KEY);\n");

    /* A gap filled later: out of order, refused. */
    write_file("0005_late.sql", "SELECT 1;\n");
    assert_int_equal(apply("svc_schema_migrations", 0, 0, &rep, &e), GP_OK);
    gp_migrate_report_free(rep);
    write_file("0004_forgotten.sql", "SELECT 1;\n");
    assert_int_equal(apply("svc_schema_migrations", 0, 0, &rep, &e), GP_ERR_MIGRATION);
    assert_non_null(strstr(e.message, "migration 0004 (forgotten) is pending but the later migration 0005"));
    gp_migrate_report_free(rep);
    remove_file("0004_forgotten.sql");

    /* A failing migration: rolled back alone, later ones not attempted. */
    write_file("0006_broken.sql", "CREATE TABLE public.svc_half (id int); SELECT 1/0;\n");
    write_file("0007_after.sql", "CREATE TABLE public.svc_after (id int);\n");
    assert_int_equal(apply("svc_schema_migrations", 0, 0, &rep, &e), GP_ERR_MIGRATION);
    assert_non_null(strstr(e.message, "migration 0006 (broken) failed"));
    assert_string_equal(e.sqlstate, "22012");
    assert_int_equal(rep->entries[4].state, GP_MIGRATION_FAILED); /* versions 1, 2, 3, 5, 6, 7 */
    assert_int_equal(rep->entries[5].state, GP_MIGRATION_PENDING);
    gp_migrate_report_free(rep);
    assert_string_equal(admin_value("SELECT to_regclass('public.svc_half') IS NULL AND to_regclass('public.svc_after') "
                                    "IS NULL", buf, sizeof buf), "t");
    remove_file("0006_broken.sql");
    remove_file("0007_after.sql");
}

static void test_refusals(void **state)
{
    (void)state;
    gp_error_t e;
    gp_migrate_report_t *rep = (gp_migrate_report_t *)&e;
    gp_migration_t one = {.version = 1, .name = "x", .sql = "SELECT 1", .sql_len = 8};
    gp_migration_set_t set = {.table = GP_MIGRATIONS_TABLE, .migrations = &one, .count = 1};
    assert_int_equal(gp_migrate_set(&cfg, &set, NULL, &rep, &e), GP_ERR_INVALID);
    assert_null(rep);
    assert_non_null(strstr(e.message, "the library's own bookkeeping table"));
    set.table = "Bad-Name";
    assert_int_equal(gp_migrate_set(&cfg, &set, NULL, NULL, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "plain identifier"));
    set.table = "svc_other_migrations";
    set.lock_key = GP_MIGRATION_LOCK_KEY;
    assert_int_equal(gp_migrate_set(&cfg, &set, NULL, NULL, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "GP_MIGRATION_LOCK_KEY"));
    assert_int_equal(gp_migrate_set(&cfg, NULL, NULL, NULL, &e), GP_ERR_INVALID);
    /* The derived key: stable, per table, never the library's. */
    assert_true(gp_migration_lock_key_for("svc_a") == gp_migration_lock_key_for("svc_a"));
    assert_true(gp_migration_lock_key_for("svc_a") != gp_migration_lock_key_for("svc_b"));
    assert_true(gp_migration_lock_key_for(GP_MIGRATIONS_TABLE) != GP_MIGRATION_LOCK_KEY);

    /* The loader. */
    char sub[300];
    snprintf(sub, sizeof sub, "%s/loader", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    char saved[256];
    memcpy(saved, dir, sizeof saved);
    snprintf(dir, sizeof dir, "%s", sub);
    gp_migration_t *m = (gp_migration_t *)&e;
    size_t n = 99;
    assert_int_equal(gp_migration_set_load(dir, &m, &n, &e), GP_OK); /* empty: an empty set */
    assert_int_equal(n, 0);
    write_file("0001_a.sql", "SELECT 1;");
    write_file("0001_b.sql", "SELECT 2;");
    assert_int_equal(gp_migration_set_load(dir, &m, &n, &e), GP_ERR_INVALID);
    assert_null(m);
    assert_non_null(strstr(e.message, "version 0001 is used twice"));
    remove_file("0001_b.sql");
    write_file("0000_zero.sql", "SELECT 0;");
    assert_int_equal(gp_migration_set_load(dir, &m, &n, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "0000_zero.sql: versions start at 0001"));
    remove_file("0000_zero.sql");
    write_file("0002_empty.sql", "");
    assert_int_equal(gp_migration_set_load(dir, &m, &n, &e), GP_ERR_INVALID);
    assert_non_null(strstr(e.message, "0002_empty.sql is empty"));
    remove_file("0002_empty.sql");
    memcpy(dir, saved, sizeof saved);
    assert_int_equal(gp_migration_set_load("/nonexistent/gp-migrations", &m, &n, &e), GP_ERR_IO);
    assert_non_null(strstr(e.message, "/nonexistent/gp-migrations"));
}

static void test_own_lock(void **state)
{
    (void)state;
    char sub[300], saved[256];
    snprintf(sub, sizeof sub, "%s/locked", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    memcpy(saved, dir, sizeof saved);
    snprintf(dir, sizeof dir, "%s", sub);
    write_file("0001_t.sql", "CREATE TABLE public.svc_locked (id int);\n");
    char sql[128];
    PGconn *holder = gp_scratch_connect(scratch.owner_url);
    /* Another migrator of the service's set holds its lock: wait, then time out. */
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", (long long)gp_migration_lock_key_for("svc_lock_migrations"));
    gp_scratch_exec(holder, sql);
    gp_migrate_report_t *rep = NULL;
    gp_error_t e;
    assert_int_equal(apply("svc_lock_migrations", 0, 200, &rep, &e), GP_ERR_TIMEOUT);
    assert_non_null(strstr(e.message, "held the migration lock for more than 200 ms"));
    gp_scratch_exec(holder, "SELECT pg_advisory_unlock_all()");
    /* The library's migrator holds its own lock: the service's set is not blocked. */
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", (long long)GP_MIGRATION_LOCK_KEY);
    gp_scratch_exec(holder, sql);
    assert_int_equal(apply("svc_lock_migrations", 0, 200, &rep, &e), GP_OK);
    assert_int_equal(rep->applied, 1);
    assert_false(rep->waited_for_lock);
    gp_migrate_report_free(rep);
    /* An explicit key is the one taken. */
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", 4242LL);
    gp_scratch_exec(holder, sql);
    assert_int_equal(apply("svc_lock_migrations", 4242, 200, &rep, &e), GP_ERR_TIMEOUT);
    PQfinish(holder);
    memcpy(dir, saved, sizeof saved);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_beside_the_library),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_own_lock),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
