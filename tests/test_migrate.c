/* test_migrate.c — migrations: checksums, dry run, idempotence, a changed
 * migration refused with its version named, a failing migration rolled back
 * alone, unknown and out-of-order versions refused, the lock timeout. Each
 * test works in its own scratch database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gp_scratch.h"
#include "growplate/tenant.h"
#include "schema_internal.h"

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[65];
    gp__sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    gp__sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes: padding spills */
    gp__sha256_hex(two, strlen(two), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *million = malloc(1000000);
    assert_non_null(million);
    memset(million, 'a', 1000000);
    gp__sha256_hex(million, 1000000, hex);
    free(million);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* HMAC-SHA-256 (RFC 4231 test cases 1, 2 and 6: a key longer than a block
 * is hashed first), and the incremental SHA-256 fed in uneven pieces. */
static void test_hmac_vectors(void **state)
{
    (void)state;
    unsigned char mac[32], k1[20], k6[131];
    char hex[65];
    memset(k1, 0x0b, sizeof k1);
    gp__hmac_sha256(k1, sizeof k1, "Hi There", 8, mac);
    gp__hex(mac, 32, hex);
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    gp__hmac_sha256((const unsigned char *)"Jefe", 4, "what do ya want for nothing?", 28, mac);
    gp__hex(mac, 32, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(k6, 0xaa, sizeof k6);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    gp__hmac_sha256(k6, sizeof k6, m6, strlen(m6), mac);
    gp__hex(mac, 32, hex);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    for (size_t cut = 0; cut <= strlen(two); cut += 7) {
        gp__sha256_t c;
        gp__sha256_init(&c);
        gp__sha256_update(&c, two, cut);
        gp__sha256_update(&c, two + cut, strlen(two) - cut);
        gp__sha256_final(&c, mac);
        gp__hex(mac, 32, hex);
        assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    }
}

/* CMake's SHA-256 (build time) and ours (run time) agree on every shipped
 * migration, and the list is in strictly increasing version order. */
static void test_embedded_migrations(void **state)
{
    (void)state;
    assert_true(gp_migration_count() >= 1);
    assert_null(gp_migration_get(gp_migration_count()));
    for (size_t i = 0; i < gp_migration_count(); i++) {
        const gp_migration_t *m = gp_migration_get(i);
        char hex[65];
        gp__sha256_hex(m->sql, m->sql_len, hex);
        assert_string_equal(hex, m->checksum);
        assert_int_equal(strlen(m->sql), m->sql_len);
        assert_true(m->version == (int)i + 1);
    }
    assert_string_equal(gp_migration_get(0)->name, "core_schema");
}

static int count_rows(PGconn *c, const char *sql)
{
    char buf[32];
    return atoi(gp_scratch_value(c, sql, buf, sizeof buf));
}

static void test_dry_run_then_apply_then_nothing(void **state)
{
    (void)state;
    gp_scratch_t s;
    gp_scratch_create(&s, "mig_basic");
    gp_config_t cfg;
    gp_scratch_config(&s, &cfg);
    size_t n = gp_migration_count();

    gp_migrate_opts_t dry = {.dry_run = true};
    gp_migrate_report_t *rep = NULL;
    gp_error_t err;
    assert_int_equal(gp_migrate(&cfg, &dry, &rep, &err), GP_OK);
    assert_true(rep->dry_run);
    assert_int_equal(rep->count, n);
    assert_int_equal(rep->pending, n);
    assert_int_equal(rep->applied, 0);
    assert_int_equal(rep->entries[0].state, GP_MIGRATION_PENDING);
    gp_migrate_report_free(rep);
    PGconn *owner = gp_scratch_connect(s.owner_url);
    assert_int_equal(count_rows(owner, "SELECT count(*) FROM pg_class WHERE relname IN ('tenants', '"
                                       GP_MIGRATIONS_TABLE "')"), 0);

    assert_int_equal(gp_migrate(&cfg, NULL, &rep, &err), GP_OK);
    assert_int_equal(rep->applied, n);
    assert_int_equal(rep->pending, 0);
    assert_int_equal(rep->entries[0].state, GP_MIGRATION_APPLIED_NOW);
    gp_migrate_report_free(rep);
    char buf[128];
    assert_string_equal(gp_scratch_value(owner, "SELECT checksum FROM " GP_MIGRATIONS_TABLE " WHERE version = 1",
                                         buf, sizeof buf),
                        gp_migration_get(0)->checksum);
    assert_int_equal(count_rows(owner, "SELECT count(*) FROM " GP_MIGRATIONS_TABLE), (int)n);

    /* Idempotent: a second run (and a dry run) has nothing to do. */
    assert_int_equal(gp_migrate(&cfg, NULL, &rep, &err), GP_OK);
    assert_int_equal(rep->applied, 0);
    assert_int_equal(rep->pending, 0);
    assert_int_equal(rep->entries[0].state, GP_MIGRATION_APPLIED_BEFORE);
    gp_migrate_report_free(rep);
    assert_int_equal(gp_migrate(&cfg, &dry, &rep, &err), GP_OK);
    assert_int_equal(rep->pending, 0);
    gp_migrate_report_free(rep);
    assert_int_equal(count_rows(owner, "SELECT count(*) FROM " GP_MIGRATIONS_TABLE), (int)n);

    /* The bookkeeping and the schema belong to the owner, not the app. */
    assert_int_equal(count_rows(owner, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                                       "c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' AND "
                                       "c.relowner <> 'growplate_owner'::regrole"), 0);
    PQfinish(owner);
    gp_config_release(&cfg);
    gp_scratch_drop(&s);
}

#define M(v, name, sql) {v, name, sql, sizeof sql - 1, NULL}

static void test_changed_migration_refused(void **state)
{
    (void)state;
    gp_scratch_t s;
    gp_scratch_create(&s, "mig_changed");
    gp_config_t cfg;
    gp_scratch_config(&s, &cfg);
    const gp_migration_t v1[] = {M(1, "first", "CREATE TABLE t1 (a int);")};
    gp_error_t err;
    assert_int_equal(gp__migrate_with(&cfg, v1, 1, NULL, NULL, &err), GP_OK);

    const gp_migration_t edited[] = {M(1, "first", "CREATE TABLE t1 (a int, b int);"),
                                     M(2, "second", "CREATE TABLE t2 (a int);")};
    gp_migrate_report_t *rep = NULL;
    assert_int_equal(gp__migrate_with(&cfg, edited, 2, NULL, &rep, &err), GP_ERR_MIGRATION);
    assert_int_equal(err.status, GP_ERR_MIGRATION);
    assert_non_null(strstr(err.message, "migration 0001 (first) was changed after it was applied"));
    assert_non_null(rep);
    assert_int_equal(rep->applied, 0);
    gp_migrate_report_free(rep);
    /* Nothing after the check ran: t2 does not exist. */
    PGconn *owner = gp_scratch_connect(s.owner_url);
    assert_int_equal(count_rows(owner, "SELECT count(*) FROM pg_class WHERE relname = 't2'"), 0);
    /* The dry run refuses as well. */
    gp_migrate_opts_t dry = {.dry_run = true};
    assert_int_equal(gp__migrate_with(&cfg, edited, 2, &dry, NULL, &err), GP_ERR_MIGRATION);

    /* A database newer than the build is refused too. */
    const gp_migration_t v12[] = {M(1, "first", "CREATE TABLE t1 (a int);"), M(2, "second", "CREATE TABLE t2 (a int);")};
    assert_int_equal(gp__migrate_with(&cfg, v12, 2, NULL, NULL, &err), GP_OK);
    assert_int_equal(gp__migrate_with(&cfg, v1, 1, NULL, NULL, &err), GP_ERR_MIGRATION);
    assert_non_null(strstr(err.message, "migration 0002 (second), which this build does not ship"));

    /* Out of order: 0002 pending while 0003 is applied. */
    const gp_migration_t v13[] = {M(1, "first", "CREATE TABLE t1 (a int);"), M(2, "second", "CREATE TABLE t2 (a int);"),
                                  M(4, "fourth", "CREATE TABLE t4 (a int);")};
    assert_int_equal(gp__migrate_with(&cfg, v13, 3, NULL, NULL, &err), GP_OK);
    const gp_migration_t gap[] = {M(1, "first", "CREATE TABLE t1 (a int);"), M(2, "second", "CREATE TABLE t2 (a int);"),
                                  M(3, "third", "CREATE TABLE t3 (a int);"), M(4, "fourth", "CREATE TABLE t4 (a int);")};
    assert_int_equal(gp__migrate_with(&cfg, gap, 4, NULL, NULL, &err), GP_ERR_MIGRATION);
    assert_non_null(strstr(err.message, "migration 0003 (third) is pending but the later migration 0004"));
    PQfinish(owner);
    gp_config_release(&cfg);
    gp_scratch_drop(&s);
}

static void test_failing_migration_rolls_back_alone(void **state)
{
    (void)state;
    gp_scratch_t s;
    gp_scratch_create(&s, "mig_fail");
    gp_config_t cfg;
    gp_scratch_config(&s, &cfg);
    const gp_migration_t bad[] = {M(1, "ok", "CREATE TABLE t1 (a int);"),
                                  M(2, "broken", "CREATE TABLE t2 (a int); INSERT INTO t2 VALUES (1 / 0);"),
                                  M(3, "later", "CREATE TABLE t3 (a int);")};
    gp_migrate_report_t *rep = NULL;
    gp_error_t err;
    assert_int_equal(gp__migrate_with(&cfg, bad, 3, NULL, &rep, &err), GP_ERR_MIGRATION);
    assert_non_null(strstr(err.message, "migration 0002 (broken) failed"));
    assert_non_null(strstr(err.message, "division by zero"));
    assert_string_equal(err.sqlstate, "22012");
    assert_int_equal(rep->entries[0].state, GP_MIGRATION_APPLIED_NOW);
    assert_int_equal(rep->entries[1].state, GP_MIGRATION_FAILED);
    assert_int_equal(rep->entries[2].state, GP_MIGRATION_PENDING);
    assert_int_equal(rep->applied, 1);
    assert_int_equal(rep->pending, 1);
    gp_migrate_report_free(rep);
    /* The same without an error object or a report: only the status. */
    assert_int_equal(gp__migrate_with(&cfg, bad, 3, NULL, NULL, NULL), GP_ERR_MIGRATION);
    PGconn *owner = gp_scratch_connect(s.owner_url);
    assert_int_equal(count_rows(owner, "SELECT count(*) FROM pg_class WHERE relname IN ('t1', 't2', 't3')"), 1);
    assert_int_equal(count_rows(owner, "SELECT count(*) FROM " GP_MIGRATIONS_TABLE), 1);

    /* Fixed (never applied, so it may change): the rest goes through. */
    const gp_migration_t fixed[] = {M(1, "ok", "CREATE TABLE t1 (a int);"),
                                    M(2, "broken", "CREATE TABLE t2 (a int); INSERT INTO t2 VALUES (1);"),
                                    M(3, "later", "CREATE TABLE t3 (a int);")};
    assert_int_equal(gp__migrate_with(&cfg, fixed, 3, NULL, &rep, &err), GP_OK);
    assert_int_equal(rep->applied, 2);
    gp_migrate_report_free(rep);
    assert_int_equal(count_rows(owner, "SELECT count(*) FROM " GP_MIGRATIONS_TABLE), 3);

    /* A migration that ends the transaction itself is refused. */
    const gp_migration_t commits[] = {M(1, "ok", "CREATE TABLE t1 (a int);"),
                                      M(2, "broken", "CREATE TABLE t2 (a int); INSERT INTO t2 VALUES (1);"),
                                      M(3, "later", "CREATE TABLE t3 (a int);"),
                                      M(4, "commits", "CREATE TABLE t4 (a int); COMMIT;")};
    assert_int_equal(gp__migrate_with(&cfg, commits, 4, NULL, NULL, &err), GP_ERR_MIGRATION);
    assert_non_null(strstr(err.message, "migration 0004 (commits) ended the transaction itself"));
    assert_int_equal(count_rows(owner, "SELECT count(*) FROM " GP_MIGRATIONS_TABLE), 3);
    PQfinish(owner);
    gp_config_release(&cfg);
    gp_scratch_drop(&s);
}

static void test_lock_timeout_and_config(void **state)
{
    (void)state;
    gp_scratch_t s;
    gp_scratch_create(&s, "mig_lock");
    gp_config_t cfg;
    gp_scratch_config(&s, &cfg);
    PGconn *holder = gp_scratch_connect(s.owner_url);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", (long long)GP_MIGRATION_LOCK_KEY);
    gp_scratch_exec(holder, sql);
    gp_migrate_opts_t opts = {.lock_timeout_ms = 200};
    gp_migrate_report_t *rep = NULL;
    gp_error_t err;
    assert_int_equal(gp_migrate(&cfg, &opts, &rep, &err), GP_ERR_TIMEOUT);
    assert_null(rep);
    assert_non_null(strstr(err.message, "another migrator held the migration lock for more than 200 ms"));
    PQfinish(holder);
    assert_int_equal(gp_migrate(&cfg, &opts, &rep, &err), GP_OK);
    assert_false(rep->waited_for_lock);
    gp_migrate_report_free(rep);

    /* No migration URL: a configuration error naming the variable. */
    cfg.db.migration_url = NULL;
    assert_int_equal(gp_migrate(&cfg, NULL, &rep, &err), GP_ERR_CONFIG);
    assert_non_null(strstr(err.message, "DATABASE_MIGRATION_URL"));
    /* A wrong password: an authentication error without the password. */
    char bad[1024];
    snprintf(bad, sizeof bad, "%s", s.owner_url);
    char *at = strrchr(bad, '@'), *colon = strchr(strstr(bad, "://") + 3, ':');
    assert_true(colon && at && colon < at);
    char rebuilt[1024];
    snprintf(rebuilt, sizeof rebuilt, "%.*s:Wr0ngSecret%s", (int)(colon - bad), bad, at);
    cfg.db.migration_url = rebuilt;
    assert_int_equal(gp_migrate(&cfg, NULL, &rep, &err), GP_ERR_AUTH);
    assert_null(strstr(err.message, "Wr0ngSecret"));
    gp_config_release(&cfg);
    gp_scratch_drop(&s);
}

/* Keys: installed from DATABASE_TENANT_KEY (and _PREVIOUS), idempotently;
 * a rotation keeps both, its end removes the old key with the secrets
 * published under it, so a service still on the old key fails with a
 * message naming the cause; without a key nothing changes. */
static void test_tenant_key_rotation(void **state)
{
    (void)state;
    static const char k1[] = "1111111111111111111111111111111111111111111111111111111111111111";
    static const char k2[] = "2222222222222222222222222222222222222222222222222222222222222222";
    gp_scratch_t s;
    gp_scratch_create(&s, "mig_keys");
    gp_config_t cfg;
    gp_scratch_config(&s, &cfg);
    cfg.db.tenant_key = k1;
    cfg.db.tenant_key_previous = NULL;
    gp_migrate_report_t *rep = NULL;
    gp_error_t err;
    assert_int_equal(gp_migrate(&cfg, NULL, &rep, &err), GP_OK);
    assert_int_equal(rep->tenant_keys, 1);
    assert_int_equal(rep->tenant_keys_installed, 1);
    gp_migrate_report_free(rep);
    assert_int_equal(gp_migrate(&cfg, NULL, &rep, &err), GP_OK);
    assert_int_equal(rep->tenant_keys_installed, 0);
    gp_migrate_report_free(rep);

    /* A service on k1 publishes a secret. */
    gp_pool_t *old = NULL;
    assert_int_equal(gp_pool_create(&cfg, &old, &err), GP_OK);
    gp_result_t *r = NULL;
    static const char tenant[] = "00000000-0000-4000-8000-0000000000aa";
    assert_int_equal(gp_tenant_query(old, tenant, "SELECT 1", 0, NULL, &r, &err), GP_OK);
    gp_result_free(r);
    PGconn *admin = gp_scratch_connect(s.admin);
    assert_int_equal(count_rows(admin, "SELECT count(*) FROM growplate_private.tenant_anchors"), 1);

    /* The rotation: k2 new, k1 previous; both work. */
    cfg.db.tenant_key = k2;
    cfg.db.tenant_key_previous = k1;
    assert_int_equal(gp_migrate(&cfg, NULL, &rep, &err), GP_OK);
    assert_int_equal(rep->tenant_keys, 2);
    assert_int_equal(rep->tenant_keys_installed, 1);
    assert_int_equal(rep->tenant_keys_removed, 0);
    gp_migrate_report_free(rep);
    gp_pool_t *new = NULL;
    cfg.db.tenant_key_previous = NULL;
    assert_int_equal(gp_pool_create(&cfg, &new, &err), GP_OK);
    assert_int_equal(gp_tenant_query(new, tenant, "SELECT 1", 0, NULL, &r, &err), GP_OK);
    gp_result_free(r);
    gp_pool_close(old, 5000);
    gp_config_t on_k1 = cfg; /* the old service (a copy: strings still cfg's) */
    on_k1.db.tenant_key = k1;
    on_k1.db.tenant_key_previous = NULL;
    on_k1.owned_ = NULL;
    assert_int_equal(gp_pool_create(&on_k1, &old, &err), GP_OK);
    assert_int_equal(gp_tenant_query(old, tenant, "SELECT 1", 0, NULL, &r, &err), GP_OK);
    gp_result_free(r);

    /* Its end: k1 and its published secrets are gone. */
    assert_int_equal(gp_migrate(&cfg, NULL, &rep, &err), GP_OK);
    assert_int_equal(rep->tenant_keys, 1);
    assert_int_equal(rep->tenant_keys_removed, 1);
    gp_migrate_report_free(rep);
    char buf[64], sql[200];
    gp__tenant_key_t dk;
    assert_true(gp__tenant_key_decode(k1, 0, &dk));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM growplate_private.tenant_anchors WHERE kid = '%s'", dk.kid);
    assert_string_equal(gp_scratch_value(admin, sql, buf, sizeof buf), "0");
    /* A new connection of the old service fails, saying why. */
    gp_pool_close(old, 5000);
    assert_int_equal(gp_pool_create(&on_k1, &old, &err), GP_OK);
    assert_int_equal(gp_tenant_query(old, tenant, "SELECT 1", 0, NULL, &r, &err), GP_ERR_AUTH);
    assert_string_equal(err.sqlstate, "28000");
    assert_non_null(strstr(err.message, "is not installed"));
    assert_null(strstr(err.message, k1));
    gp_pool_close(old, 5000);
    assert_int_equal(gp_tenant_query(new, tenant, "SELECT 1", 0, NULL, &r, &err), GP_OK);
    gp_result_free(r);
    gp_pool_close(new, 5000);

    /* A key file that does not exist: migrate makes it (0600) and installs
     * it, alongside nothing else (k1 and k2 are gone: it is the only key). */
    char dir[] = "/tmp/gp_migkey_XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tenant.key", dir);
    gp_config_t from_file = cfg;
    from_file.owned_ = NULL;
    from_file.db.tenant_key = NULL;
    from_file.db.tenant_key_file = path;
    assert_int_equal(gp_migrate(&from_file, NULL, &rep, &err), GP_OK);
    assert_int_equal(rep->tenant_keys, 1);
    assert_int_equal(rep->tenant_keys_installed, 1);
    assert_int_equal(rep->tenant_keys_removed, 1);
    gp_migrate_report_free(rep);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 65);
    /* A service reading the same file works; a second migrate keeps it. */
    gp_config_t svc;
    gp_scratch_config(&s, &svc);
    char kerr[GP_ERRBUF_SIZE];
    const char *saved_key = getenv("DATABASE_TENANT_KEY");
    char *env_key = saved_key ? strdup(saved_key) : NULL;
    unsetenv("DATABASE_TENANT_KEY");
    setenv("DATABASE_TENANT_KEY_FILE", path, 1);
    gp_config_t file_cfg;
    assert_int_equal(gp_config_from_env(&file_cfg, kerr, sizeof kerr), GP_OK);
    unsetenv("DATABASE_TENANT_KEY_FILE");
    if (env_key) {
        setenv("DATABASE_TENANT_KEY", env_key, 1);
        free(env_key);
    }
    assert_non_null(file_cfg.db.tenant_key);
    file_cfg.db.url = svc.db.url;
    file_cfg.db.migration_url = svc.db.migration_url;
    gp_pool_t *fp = NULL;
    assert_int_equal(gp_pool_create(&file_cfg, &fp, &err), GP_OK);
    assert_int_equal(gp_tenant_query(fp, tenant, "SELECT 1", 0, NULL, &r, &err), GP_OK);
    gp_result_free(r);
    gp_pool_close(fp, 5000);
    assert_int_equal(gp_migrate(&file_cfg, NULL, &rep, &err), GP_OK);
    assert_int_equal(rep->tenant_keys_installed, 0);
    gp_migrate_report_free(rep);
    gp_config_release(&file_cfg);
    gp_config_release(&svc);
    unlink(path);
    rmdir(dir);

    /* Without a key, migrate leaves the keys alone. */
    cfg.db.tenant_key = NULL;
    assert_int_equal(gp_migrate(&cfg, NULL, &rep, &err), GP_OK);
    assert_int_equal(rep->tenant_keys, 1);
    assert_int_equal(rep->tenant_keys_removed, 0);
    gp_migrate_report_free(rep);
    /* And a pool without one refuses tenant-scoped calls, naming the variable. */
    assert_int_equal(gp_pool_create(&cfg, &old, &err), GP_OK);
    assert_int_equal(gp_tenant_query(old, tenant, "SELECT 1", 0, NULL, &r, &err), GP_ERR_CONFIG);
    assert_non_null(strstr(err.message, "DATABASE_TENANT_KEY is not set"));
    gp_pool_close(old, 5000);
    PQfinish(admin);
    gp_config_release(&cfg);
    gp_scratch_drop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_hmac_vectors),
        cmocka_unit_test(test_tenant_key_rotation),
        cmocka_unit_test(test_embedded_migrations),
        cmocka_unit_test(test_dry_run_then_apply_then_nothing),
        cmocka_unit_test(test_changed_migration_refused),
        cmocka_unit_test(test_failing_migration_rolls_back_alone),
        cmocka_unit_test(test_lock_timeout_and_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
