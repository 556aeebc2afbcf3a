/* test_config.c — configuration: every variable, every class of bad value,
 * precedence and conflicts, libpq's PG* variables, the refusal to dial the
 * built-in default outside development, redaction. No servers needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gp_test.h"
#include "internal.h"

/* A fake environment: NULL-terminated name/value pairs. */
typedef struct { const char *const *kv; } fake_env_t;

static const char *fake_lookup(void *ud, const char *name)
{
    const fake_env_t *e = ud;
    for (const char *const *p = e->kv; *p; p += 2)
        if (strcmp(p[0], name) == 0)
            return p[1];
    return NULL;
}

static char errbuf[GP_ERRBUF_SIZE];

static gp_status_t load(gp_config_t *cfg, const char *const *kv)
{
    fake_env_t e = {kv};
    gp_config_init(cfg);
    errbuf[0] = 0;
    return gp_config_from_lookup(cfg, fake_lookup, &e, errbuf, sizeof errbuf);
}

/* Expect a load to fail with a message containing every needle. */
static void expect_bad(const char *const *kv, const char *n1, const char *n2)
{
    gp_config_t cfg;
    gp_status_t st = load(&cfg, kv);
    if (st != GP_ERR_CONFIG || !strstr(errbuf, n1) || (n2 && !strstr(errbuf, n2)))
        fprintf(stderr, "unexpected: status %d, message:\n%s\n", st, errbuf);
    assert_int_equal(st, GP_ERR_CONFIG);
    assert_non_null(strstr(errbuf, n1));
    if (n2)
        assert_non_null(strstr(errbuf, n2));
    gp_config_release(&cfg);
}

static void test_defaults(void **state)
{
    (void)state;
    gp_config_t cfg;
    const char *kv[] = {"GROWPLATE_ENV", "development", NULL};
    assert_int_equal(load(&cfg, kv), GP_OK);
    assert_int_equal(cfg.db.pool_min, 2);
    assert_int_equal(cfg.db.pool_max, 10);
    assert_int_equal(cfg.db.connect_timeout_ms, 5000);
    assert_int_equal(cfg.db.acquire_timeout_ms, 5000);
    assert_string_equal(cfg.redis.key_prefix, "growplate:");
    assert_int_equal(cfg.redis.pool_size, 4);
    char d[256];
    assert_string_equal(gp_config_db_display(&cfg.db, d, sizeof d), "postgresql://localhost:5432/growplate_dev");
    assert_string_equal(gp_config_redis_display(&cfg.redis, d, sizeof d), "redis://127.0.0.1:6379/0");
    gp_config_release(&cfg);
}

static void test_every_variable(void **state)
{
    (void)state;
    gp_config_t cfg;
    const char *kv[] = {
        "DATABASE_HOST", "db.example", "DATABASE_PORT", "6543", "DATABASE_NAME", "shop",
        "DATABASE_USER", "svc", "DATABASE_PASSWORD", "s3cret!", "DATABASE_SSLMODE", "require",
        "DATABASE_APPLICATION_NAME", "orders", "DATABASE_MIGRATION_URL", "postgresql://owner:pw@db/shop",
        "DATABASE_POOL_MIN", "3", "DATABASE_POOL_MAX", "20", "DATABASE_TIMEOUT", "30000",
        "DATABASE_ACQUIRE_TIMEOUT", "2s", "DATABASE_IDLE_TIMEOUT", "5m", "DATABASE_MAX_LIFETIME", "1h",
        "DATABASE_STATEMENT_TIMEOUT", "250ms", "DATABASE_VALIDATE_AFTER", "0", "DATABASE_LEAK_THRESHOLD", "10s",
        "REDIS_HOST", "cache.example", "REDIS_PORT", "7000", "REDIS_USERNAME", "app", "REDIS_PASSWORD", "rpw",
        "REDIS_DB", "3", "REDIS_KEY_PREFIX", "gp:", "REDIS_TIMEOUT", "200", "REDIS_CONNECT_TIMEOUT", "1s",
        "REDIS_POOL_SIZE", "8", NULL};
    assert_int_equal(load(&cfg, kv), GP_OK);
    assert_string_equal(cfg.db.host, "db.example");
    assert_int_equal(cfg.db.port, 6543);
    assert_string_equal(cfg.db.name, "shop");
    assert_string_equal(cfg.db.user, "svc");
    assert_string_equal(cfg.db.password, "s3cret!");
    assert_string_equal(cfg.db.sslmode, "require");
    assert_string_equal(cfg.db.application_name, "orders");
    assert_int_equal(cfg.db.pool_min, 3);
    assert_int_equal(cfg.db.pool_max, 20);
    assert_int_equal(cfg.db.connect_timeout_ms, 30000);
    assert_int_equal(cfg.db.acquire_timeout_ms, 2000);
    assert_int_equal(cfg.db.idle_timeout_ms, 300000);
    assert_int_equal(cfg.db.max_lifetime_ms, 3600000);
    assert_int_equal(cfg.db.statement_timeout_ms, 250);
    assert_int_equal(cfg.db.validate_after_ms, 0);
    assert_int_equal(cfg.db.leak_threshold_ms, 10000);
    assert_string_equal(cfg.redis.host, "cache.example");
    assert_int_equal(cfg.redis.port, 7000);
    assert_string_equal(cfg.redis.username, "app");
    assert_string_equal(cfg.redis.password, "rpw");
    assert_int_equal(cfg.redis.db, 3);
    assert_string_equal(cfg.redis.key_prefix, "gp:");
    assert_int_equal(cfg.redis.timeout_ms, 200);
    assert_int_equal(cfg.redis.connect_timeout_ms, 1000);
    assert_int_equal(cfg.redis.pool_size, 8);

    gp__pg_params_t p;
    assert_int_equal(gp__pg_params(&cfg.db, false, &p, NULL, 0), GP_OK);
    bool saw_pw = false, saw_ct = false;
    for (size_t i = 0; p.kw[i]; i++) {
        if (strcmp(p.kw[i], "password") == 0)
            saw_pw = strcmp(p.val[i], "s3cret!") == 0;
        if (strcmp(p.kw[i], "connect_timeout") == 0)
            saw_ct = strcmp(p.val[i], "30") == 0;
    }
    assert_true(saw_pw);
    assert_true(saw_ct);

    char *text = NULL;
    assert_int_equal(gp_config_describe(&cfg, &text), GP_OK);
    assert_null(strstr(text, "s3cret"));
    assert_null(strstr(text, "rpw"));
    assert_null(strstr(text, ":pw@"));
    assert_non_null(strstr(text, "postgresql://svc:********@db.example:6543/shop"));
    free(text);
    assert_int_equal(gp_config_describe_json(&cfg, &text), GP_OK);
    assert_null(strstr(text, "s3cret"));
    assert_non_null(strstr(text, "\"DATABASE_POOL_MAX\":20"));
    free(text);
    gp_config_release(&cfg);
}

static void test_not_numbers(void **state)
{
    (void)state;
    expect_bad((const char *[]){"DATABASE_POOL_MAX", "abc", NULL}, "DATABASE_POOL_MAX", "not a whole number");
    expect_bad((const char *[]){"DATABASE_POOL_MIN", "2.5", NULL}, "DATABASE_POOL_MIN", "not a whole number");
    expect_bad((const char *[]){"DATABASE_PORT", " 5432", NULL}, "DATABASE_PORT", "not a whole number");
    expect_bad((const char *[]){"REDIS_DB", "", NULL}, "REDIS_DB", "not a whole number");
    expect_bad((const char *[]){"DATABASE_TIMEOUT", "5 s", NULL}, "DATABASE_TIMEOUT", "not a duration");
    expect_bad((const char *[]){"REDIS_TIMEOUT", "1d", NULL}, "REDIS_TIMEOUT", "not a duration");
    expect_bad((const char *[]){"DATABASE_IDLE_TIMEOUT", "ms", NULL}, "DATABASE_IDLE_TIMEOUT", "expected");
}

static void test_zero_negative_overflow(void **state)
{
    (void)state;
    expect_bad((const char *[]){"DATABASE_POOL_MAX", "0", NULL}, "DATABASE_POOL_MAX", "out of range");
    expect_bad((const char *[]){"DATABASE_POOL_MAX", "-5", NULL}, "DATABASE_POOL_MAX", "from 1 to 10000");
    expect_bad((const char *[]){"DATABASE_POOL_MIN", "-1", NULL}, "DATABASE_POOL_MIN", "out of range");
    expect_bad((const char *[]){"REDIS_POOL_SIZE", "0", NULL}, "REDIS_POOL_SIZE", "from 1 to 1024");
    expect_bad((const char *[]){"DATABASE_POOL_MAX", "99999999999999999999999", NULL}, "DATABASE_POOL_MAX",
               "out of range");
    expect_bad((const char *[]){"DATABASE_TIMEOUT", "99999999999h", NULL}, "DATABASE_TIMEOUT", "out of range");
    expect_bad((const char *[]){"DATABASE_ACQUIRE_TIMEOUT", "0", NULL}, "DATABASE_ACQUIRE_TIMEOUT",
               "never waits forever");
    expect_bad((const char *[]){"DATABASE_PORT", "70000", NULL}, "DATABASE_PORT", "1 to 65535");
    expect_bad((const char *[]){"REDIS_PORT", "0", NULL}, "REDIS_PORT", "1 to 65535");
    /* Several problems are all reported at once. */
    expect_bad((const char *[]){"DATABASE_POOL_MAX", "x", "REDIS_POOL_SIZE", "-3", NULL}, "DATABASE_POOL_MAX",
               "REDIS_POOL_SIZE");
}

static void test_min_greater_than_max(void **state)
{
    (void)state;
    expect_bad((const char *[]){"DATABASE_POOL_MIN", "20", "DATABASE_POOL_MAX", "5", NULL}, "DATABASE_POOL_MIN",
               "POOL_MIN <= POOL_MAX");
    /* The same check applies to a config filled in code. */
    gp_config_t cfg;
    gp_config_init(&cfg);
    cfg.db.pool_min = 11;
    errbuf[0] = 0;
    assert_int_equal(gp_config_validate(&cfg, errbuf, sizeof errbuf), GP_ERR_CONFIG);
    assert_non_null(strstr(errbuf, "greater than DATABASE_POOL_MAX"));
    cfg.db.pool_min = 10;
    errbuf[0] = 0;
    assert_int_equal(gp_config_validate(&cfg, errbuf, sizeof errbuf), GP_OK);
    cfg.redis.timeout_ms = 0;
    assert_int_equal(gp_config_validate(&cfg, errbuf, sizeof errbuf), GP_ERR_CONFIG);
    assert_non_null(strstr(errbuf, "REDIS_TIMEOUT"));
}

static void test_sslmode_and_strings(void **state)
{
    (void)state;
    expect_bad((const char *[]){"DATABASE_SSLMODE", "sometimes", NULL}, "unknown sslmode 'sometimes'", "verify-full");
    expect_bad((const char *[]){"DATABASE_URL", "postgresql://h/db?sslmode=maybe", NULL}, "DATABASE_URL", "sslmode");
    expect_bad((const char *[]){"DATABASE_HOST", "", NULL}, "DATABASE_HOST", "empty");
    expect_bad((const char *[]){"REDIS_KEY_PREFIX", "bad prefix{", NULL}, "REDIS_KEY_PREFIX", "letters, digits");
    expect_bad((const char *[]){"DATABASE_APPLICATION_NAME",
                                "0123456789012345678901234567890123456789012345678901234567890123456789", NULL},
               "DATABASE_APPLICATION_NAME", "63");
}

static void test_bad_urls(void **state)
{
    (void)state;
    expect_bad((const char *[]){"DATABASE_URL", "mysql://u:hunter2@h/db", NULL}, "unknown scheme 'mysql'",
               "postgresql://");
    expect_bad((const char *[]){"DATABASE_URL", "postgresql://u:hunter2@h:notaport/db", NULL}, "DATABASE_URL",
               "bad port");
    expect_bad((const char *[]){"DATABASE_URL", "postgresql://u:hunter2@[::1/db", NULL}, "DATABASE_URL",
               "not a valid PostgreSQL URL");
    expect_bad((const char *[]){"DATABASE_URL", "host=h password=hunter2 bogus", NULL}, "DATABASE_URL", NULL);
    expect_bad((const char *[]){"DATABASE_URL", "postgresql://h/db?nosuchoption=1", NULL}, "DATABASE_URL",
               "nosuchoption");
    expect_bad((const char *[]){"DATABASE_MIGRATION_URL", "http://x", NULL}, "DATABASE_MIGRATION_URL", "scheme");
    expect_bad((const char *[]){"REDIS_URL", "http://h:1", NULL}, "REDIS_URL", "unknown scheme 'http'");
    expect_bad((const char *[]){"REDIS_URL", "rediss://h:1", "REDIS_TLS", "0", NULL}, "REDIS_TLS", "rediss://");
    expect_bad((const char *[]){"REDIS_URL", "redis://h:1", "REDIS_TLS_CA_FILE", "/ca.pem", NULL}, "REDIS_TLS_*", "TLS is off");
    expect_bad((const char *[]){"REDIS_URL", "redis://h:99999", NULL}, "REDIS_URL", "bad port");
    expect_bad((const char *[]){"REDIS_URL", "redis://h:6379/x", NULL}, "REDIS_URL", "database number");
    expect_bad((const char *[]){"REDIS_URL", "localhost:6379", NULL}, "REDIS_URL", "no scheme");
    expect_bad((const char *[]){"REDIS_URL", "redis://:p%zz@h", NULL}, "REDIS_URL", "percent-encode");
    /* No message leaks the password. */
    const char *kv[] = {"DATABASE_URL", "postgresql://u:hunter2@h:x/db", "REDIS_URL", "redis://:hunter2@h:0", NULL};
    gp_config_t cfg;
    assert_int_equal(load(&cfg, kv), GP_ERR_CONFIG);
    assert_null(strstr(errbuf, "hunter2"));
    gp_config_release(&cfg);
    const char *kv2[] = {"DATABASE_URL", "host=h password='hun ter2' port=x=y", NULL};
    assert_int_equal(load(&cfg, kv2), GP_ERR_CONFIG);
    assert_null(strstr(errbuf, "hun"));
    assert_null(strstr(errbuf, "ter2"));
    gp_config_release(&cfg);
}

static void test_precedence(void **state)
{
    (void)state;
    gp_config_t cfg;
    /* A part the URL lacks is added; one it has must agree. */
    const char *ok[] = {"DATABASE_URL", "postgresql://app@db.example:5433/shop", "DATABASE_PASSWORD", "pw",
                        "DATABASE_HOST", "db.example", "DATABASE_PORT", "5433", NULL};
    assert_int_equal(load(&cfg, ok), GP_OK);
    char d[256];
    assert_string_equal(gp_config_db_display(&cfg.db, d, sizeof d), "postgresql://app:********@db.example:5433/shop");
    gp__pg_params_t p;
    assert_int_equal(gp__pg_params(&cfg.db, false, &p, NULL, 0), GP_OK);
    assert_string_equal(p.kw[0], "dbname"); /* the URL, expanded by libpq */
    gp_config_release(&cfg);

    expect_bad((const char *[]){"DATABASE_URL", "postgresql://app@db.example/shop", "DATABASE_HOST", "other", NULL},
               "DATABASE_HOST: 'other' conflicts with the host 'db.example' in DATABASE_URL", NULL);
    expect_bad((const char *[]){"DATABASE_URL", "postgresql://db:5433/shop", "DATABASE_PORT", "5432", NULL},
               "DATABASE_PORT", "conflicts");
    expect_bad((const char *[]){"DATABASE_URL", "postgresql://u:one@db/shop", "DATABASE_PASSWORD", "two", NULL},
               "DATABASE_PASSWORD: conflicts with the password in DATABASE_URL", NULL);
    assert_null(strstr(errbuf, "'one'"));
    assert_null(strstr(errbuf, "'two'"));
    expect_bad((const char *[]){"DATABASE_URL", "postgresql://db/shop", "DATABASE_NAME", "other", NULL},
               "DATABASE_NAME", "conflicts");

    const char *rok[] = {"REDIS_URL", "redis://:pw@cache:7000/2", "REDIS_DB", "2", "DATABASE_HOST", "db", NULL};
    assert_int_equal(load(&cfg, rok), GP_OK);
    assert_string_equal(gp_config_redis_display(&cfg.redis, d, sizeof d), "redis://:********@cache:7000/2");
    gp__redis_target_t t;
    assert_int_equal(gp__redis_target(&cfg.redis, &t, NULL, 0), GP_OK);
    assert_string_equal(t.host, "cache");
    assert_int_equal(t.port, 7000);
    assert_int_equal(t.db, 2);
    assert_string_equal(t.password, "pw");
    gp_config_release(&cfg);
    const char *rparts[] = {"REDIS_URL", "redis://cache", "REDIS_PORT", "7001", "REDIS_PASSWORD", "x",
                            "DATABASE_HOST", "db", NULL};
    assert_int_equal(load(&cfg, rparts), GP_OK);
    assert_int_equal(gp__redis_target(&cfg.redis, &t, NULL, 0), GP_OK);
    assert_int_equal(t.port, 7001);
    assert_string_equal(t.password, "x");
    gp_config_release(&cfg);
    expect_bad((const char *[]){"REDIS_URL", "redis://cache:7000/1", "REDIS_DB", "2", NULL}, "REDIS_DB", "conflicts");
    expect_bad((const char *[]){"REDIS_URL", "redis://cache:7000", "REDIS_HOST", "other", NULL}, "REDIS_HOST",
               "conflicts");
    expect_bad((const char *[]){"REDIS_URL", "redis://:a@cache", "REDIS_PASSWORD", "b", NULL},
               "REDIS_PASSWORD: conflicts", NULL);
}

static void test_redaction(void **state)
{
    (void)state;
    char out[256];
    assert_string_equal(gp_redact("postgresql://u:p%40ss@h:5432/db", out, sizeof out),
                        "postgresql://u:********@h:5432/db");
    assert_string_equal(gp_redact("redis://:secret@h:1/0 and redis://h:2", out, sizeof out),
                        "redis://:********@h:1/0 and redis://h:2");
    assert_string_equal(gp_redact("host=h password=abc user=u", out, sizeof out), "host=h password=******** user=u");
    assert_null(strstr(gp_redact("host=h password=abc user=u", out, sizeof out), "abc"));
    assert_null(strstr(gp_redact("password = 'a b\\' c' x", out, sizeof out), "b"));
    assert_null(strstr(gp_redact("postgresql://h/db?password=zz&x=1", out, sizeof out), "zz"));
    assert_non_null(strstr(out, "x=1"));
    assert_string_equal(gp_redact("no secrets here", out, sizeof out), "no secrets here");
    char small[8];
    gp_redact("postgresql://u:pw@h", small, sizeof small);
    assert_int_equal(strlen(small), 7);
    /* A user's own db named "password" is not a secret marker. */
    assert_string_equal(gp_redact("mypassword=1", out, sizeof out), "mypassword=1");
}

/* The tenant key: its shape is checked, its text never shown (not in a
 * message, not in a description). */
static void test_tenant_key(void **state)
{
    (void)state;
    static const char key[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    static const char sneaky[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefZ";
    gp_config_t cfg;
    const char *ok[] = {"DATABASE_TENANT_KEY", key, "DATABASE_TENANT_TOKEN_TTL", "30s", "GROWPLATE_ENV", "development",
                        NULL};
    assert_int_equal(load(&cfg, ok), GP_OK);
    assert_int_equal(cfg.db.tenant_token_ttl_ms, 30000);
    char *d = NULL;
    assert_int_equal(gp_config_describe(&cfg, &d), GP_OK);
    assert_null(strstr(d, "00112233"));
    assert_non_null(strstr(d, "DATABASE_TENANT_KEY"));
    assert_non_null(strstr(d, "********"));
    free(d);
    assert_int_equal(gp_config_describe_json(&cfg, &d), GP_OK);
    assert_null(strstr(d, "00112233"));
    free(d);
    gp_config_release(&cfg);

    const char *bad_char[] = {"DATABASE_TENANT_KEY", sneaky, NULL};
    expect_bad(bad_char, "DATABASE_TENANT_KEY: has a character that is not a hex digit at position 64", "not shown");
    assert_null(strstr(errbuf, "0011"));
    const char *short_key[] = {"DATABASE_TENANT_KEY", "abcdef", NULL};
    expect_bad(short_key, "DATABASE_TENANT_KEY: has 6 hex digits", "openssl rand -hex 32");
    assert_null(strstr(errbuf, "abcdef"));
    const char *prev_alone[] = {"DATABASE_TENANT_KEY_PREVIOUS", key, NULL};
    expect_bad(prev_alone, "DATABASE_TENANT_KEY_PREVIOUS: is set without DATABASE_TENANT_KEY", NULL);
    const char *same[] = {"DATABASE_TENANT_KEY", key, "DATABASE_TENANT_KEY_PREVIOUS", key, NULL};
    expect_bad(same, "DATABASE_TENANT_KEY_PREVIOUS: is the same key", NULL);
    const char *ttl[] = {"DATABASE_TENANT_TOKEN_TTL", "2h", NULL};
    expect_bad(ttl, "DATABASE_TENANT_TOKEN_TTL", "10s to 1h");
}

/* DATABASE_TENANT_KEY_FILE: read when it exists (its mode must keep others
 * out), left for migrate to create when it does not, its content never
 * shown, and never together with DATABASE_TENANT_KEY. */
static void test_tenant_key_file(void **state)
{
    (void)state;
    static const char key[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char dir[] = "/tmp/gp_keyfile_XXXXXX", path[64], missing[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/key", dir);
    snprintf(missing, sizeof missing, "%s/none", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", key);
    fclose(f);
    gp_config_t cfg;
    const char *open_mode[] = {"DATABASE_TENANT_KEY_FILE", path, "GROWPLATE_ENV", "development", NULL};
    assert_int_equal(chmod(path, 0644), 0);
    expect_bad(open_mode, "DATABASE_TENANT_KEY_FILE", "readable by others");
    assert_null(strstr(errbuf, "0011"));
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(load(&cfg, open_mode), GP_OK);
    assert_string_equal(cfg.db.tenant_key, key);
    gp_config_release(&cfg);
    const char *absent[] = {"DATABASE_TENANT_KEY_FILE", missing, "GROWPLATE_ENV", "development", NULL};
    assert_int_equal(load(&cfg, absent), GP_OK);
    assert_null(cfg.db.tenant_key);
    gp_config_release(&cfg);
    const char *both[] = {"DATABASE_TENANT_KEY_FILE", path, "DATABASE_TENANT_KEY", key, NULL};
    expect_bad(both, "DATABASE_TENANT_KEY_FILE: is set together with DATABASE_TENANT_KEY", NULL);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%.40s\n", key);
    fclose(f);
    expect_bad(open_mode, "does not hold a tenant key", "not shown");
    assert_null(strstr(errbuf, "0011"));
    const char *a_dir[] = {"DATABASE_TENANT_KEY_FILE", dir, NULL};
    assert_int_equal(chmod(dir, 0700), 0);
    expect_bad(a_dir, "DATABASE_TENANT_KEY_FILE", "not a regular file");
    unlink(path);
    rmdir(dir);
}

/* Found by fuzz_config: values libpq reads from inside a URL's masked zone
 * (a raw '/' or '?' in the password moves its reading) are never quoted,
 * and the JSON description is UTF-8 whatever the URL decodes to. */
static void test_fuzz_findings(void **state)
{
    (void)state;
    const char *host[] = {"DATABASE_URL", "postgresql://app:S3cret/pw?host=Passw0rd@db/app", "DATABASE_HOST", "db",
                          NULL};
    expect_bad(host, "DATABASE_HOST: conflicts with the host in DATABASE_URL", NULL);
    assert_null(strstr(errbuf, "Passw0rd"));
    assert_null(strstr(errbuf, "S3cret"));
    const char *sslmode[] = {"DATABASE_URL", "postgresql://app:longpa/ss?sslmode=word1234@db/app", NULL};
    expect_bad(sslmode, "unknown sslmode (not shown", NULL);
    assert_null(strstr(errbuf, "word1234"));
    gp_config_t cfg;
    const char *utf8[] = {"DATABASE_URL", "postgresql://app@db/caf%C3", NULL};
    assert_int_equal(load(&cfg, utf8), GP_OK);
    char *d = NULL;
    assert_int_equal(gp_config_describe_json(&cfg, &d), GP_OK);
    for (const unsigned char *p = (const unsigned char *)d; *p; p++)
        assert_true(*p < 0x80 || (*p >= 0xC2 && *p <= 0xF4) || (*p & 0xC0) == 0x80); /* no stray 0xC3 alone */
    assert_null(strstr(d, "caf\xc3\""));
    assert_non_null(strstr(d, "\\ufffd"));
    free(d);
    gp_config_release(&cfg);
}

static void test_log_redaction(void **state)
{
    (void)state;
    gp_test_capture_logs(GP_LOG_DEBUG);
    gp_test_clear_logs();
    gp__log(GP_LOG_WARN, "test", "cannot reach postgresql://u:topsecret@h/db\nsecond line");
    gp__log(GP_LOG_DEBUG, "test", "password=alsosecret");
    assert_false(gp_test_logs_contain("topsecret"));
    assert_false(gp_test_logs_contain("alsosecret"));
    assert_true(gp_test_logs_contain("[test] warn: cannot reach postgresql://u:********@h/db second line"));
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
    assert_int_equal(gp_log_get_level(), GP_LOG_WARN);
}

static void test_strerror(void **state)
{
    (void)state;
    for (int s = 0; s < GP_STATUS_COUNT_; s++)
        assert_string_not_equal(gp_strerror((gp_status_t)s), "unknown status");
    assert_string_equal(gp_strerror((gp_status_t)999), "unknown status");
    assert_string_equal(gp_version(), GP_VERSION_STRING);
}

/* The README's pattern: a gp_config_t straight off the stack, never
 * initialised, filled by gp_config_from_lookup (it used to free garbage). */
static const char *only_url(void *ud, const char *name)
{
    (void)ud;
    return strcmp(name, "DATABASE_URL") == 0 ? "postgresql://u:p@127.0.0.1:5/db" : NULL;
}

static void test_from_lookup_on_garbage(void **state)
{
    (void)state;
    gp_config_t cfg;
    memset(&cfg, 0xA5, sizeof cfg);
    char err[512];
    assert_int_equal(gp_config_from_lookup(&cfg, only_url, NULL, err, sizeof err), GP_OK);
    assert_int_equal(cfg.db.pool_max, 10);
    assert_string_equal(cfg.db.url, "postgresql://u:p@127.0.0.1:5/db");
    gp_config_release(&cfg);
}


/* ---- nothing configured -------------------------------------------------------- */

/* With nothing naming the PostgreSQL server, growplate would dial its
 * built-in localhost:5432/growplate_dev: only in development. */
static void test_nothing_configured(void **state)
{
    (void)state;
    gp_config_t cfg;
    const char *none[] = {NULL};
    expect_bad(none, "DATABASE_URL: is not set", "GROWPLATE_ENV=development (it is unset)");
    assert_non_null(strstr(errbuf, "PGHOST"));
    const char *prod[] = {"GROWPLATE_ENV", "production", NULL};
    expect_bad(prod, "DATABASE_URL: is not set", "(it is 'production')");
    /* Settings that do not name the server do not count. */
    const char *others[] = {"DATABASE_USER", "app", "DATABASE_PASSWORD", "pw", "PGUSER", "u", "PGPASSWORD", "pw2",
                            "REDIS_URL", "redis://cache:6379", NULL};
    expect_bad(others, "DATABASE_URL: is not set", NULL);
    assert_null(strstr(errbuf, "pw"));
    /* An unknown environment is reported as such, not as "unset". */
    const char *typo[] = {"GROWPLATE_ENV", "dev", NULL};
    expect_bad(typo, "GROWPLATE_ENV: 'dev' is not an environment", "development, test, staging or production");
    assert_null(strstr(errbuf, "DATABASE_URL"));
    /* Anything that names the server is enough, in any environment. */
    const char *const named[][5] = {
        {"DATABASE_URL", "postgresql://db/app", NULL},
        {"DATABASE_HOST", "db", NULL},
        {"DATABASE_PORT", "6543", NULL},
        {"DATABASE_NAME", "app", NULL},
        {"PGHOST", "db", NULL},
        {"PGPORT", "6543", NULL},
        {"PGDATABASE", "app", "GROWPLATE_ENV", "production", NULL},
    };
    for (size_t i = 0; i < sizeof named / sizeof *named; i++) {
        gp_status_t st = load(&cfg, named[i]);
        if (st != GP_OK)
            fprintf(stderr, "case %zu: %s\n", i, errbuf);
        assert_int_equal(st, GP_OK);
        gp_config_release(&cfg);
    }
    /* Development: the documented defaults. */
    const char *dev[] = {"GROWPLATE_ENV", "development", NULL};
    assert_int_equal(load(&cfg, dev), GP_OK);
    char d[256];
    assert_string_equal(gp_config_db_display(&cfg.db, d, sizeof d), "postgresql://localhost:5432/growplate_dev");
    char *text = NULL;
    assert_int_equal(gp_config_describe(&cfg, &text), GP_OK);
    assert_non_null(strstr(text, "GROWPLATE_ENV               development\n"));
    free(text);
    assert_int_equal(gp_config_describe_json(&cfg, &text), GP_OK);
    assert_non_null(strstr(text, "\"GROWPLATE_ENV\":\"development\""));
    free(text);
    gp_config_release(&cfg);
}

/* ---- libpq's environment (PG*) ------------------------------------------------------ */

static const char *param(const gp__pg_params_t *p, const char *kw)
{
    const char *v = NULL;
    for (size_t i = 0; p->kw[i]; i++)
        if (strcmp(p->kw[i], kw) == 0)
            v = p->val[i]; /* the last one wins, as in libpq */
    return v;
}

/* The lookup is asked for libpq's variables too (so that a test, or a
 * service keeping its settings elsewhere, decides what they are). */
static char asked[4096];
static const char *recording_lookup(void *ud, const char *name)
{
    (void)ud;
    size_t n = strlen(asked);
    snprintf(asked + n, sizeof asked - n, "%s ", name);
    return strcmp(name, "DATABASE_HOST") == 0 ? "db" : NULL;
}

static void test_pg_env_read_through_lookup(void **state)
{
    (void)state;
    asked[0] = 0;
    gp_config_t cfg;
    assert_int_equal(gp_config_from_lookup(&cfg, recording_lookup, NULL, errbuf, sizeof errbuf), GP_OK);
    const char *want[] = {"GROWPLATE_ENV ", "PGHOST ", "PGHOSTADDR ", "PGPORT ", "PGDATABASE ", "PGUSER ",
                          "PGPASSWORD ", "PGPASSFILE ", "PGSERVICE ", "PGSSLMODE ", "PGOPTIONS ", "PGAPPNAME ",
                          "PGSSLROOTCERT ", "PGTARGETSESSIONATTRS ", "PGCONNECT_TIMEOUT ", "PGSERVICEFILE ", "PGTZ "};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        if (!strstr(asked, want[i]))
            fprintf(stderr, "not asked for %s; asked: %s\n", want[i], asked);
        assert_non_null(strstr(asked, want[i]));
    }
    gp_config_release(&cfg);
}

/* A PG* variable fills only what DATABASE_URL and the DATABASE_* variables
 * leave out, and is then passed to libpq explicitly. */
static void test_pg_env_fills_gaps(void **state)
{
    (void)state;
    gp_config_t cfg;
    const char *kv[] = {"DATABASE_URL", "postgresql://app@db.example/shop", "DATABASE_SSLMODE", "require",
                        "PGHOST", "elsewhere", "PGUSER", "bob", "PGDATABASE", "otherdb", "PGSSLMODE", "disable",
                        "PGPORT", "6000", "PGPASSWORD", "pg-Secret-1", "PGAPPNAME", "orders",
                        "PGOPTIONS", "-c geqo=off", "PGCONNECT_TIMEOUT", "1", "PGTZ", "UTC", NULL};
    assert_int_equal(load(&cfg, kv), GP_OK);
    assert_null(cfg.db.host);                 /* the URL gives it: PGHOST not used */
    assert_null(cfg.db.user);                 /* the URL gives it */
    assert_null(cfg.db.name);                 /* the URL gives it */
    assert_string_equal(cfg.db.sslmode, "require"); /* DATABASE_SSLMODE wins */
    assert_int_equal(cfg.db.port, 6000);      /* the URL has no port */
    assert_string_equal(cfg.db.password, "pg-Secret-1");
    assert_string_equal(cfg.db.application_name, "orders");
    gp__pg_params_t p;
    assert_int_equal(gp__pg_params(&cfg.db, false, &p, NULL, 0), GP_OK);
    assert_string_equal(param(&p, "port"), "6000");
    assert_string_equal(param(&p, "password"), "pg-Secret-1");
    assert_string_equal(param(&p, "sslmode"), "require");
    assert_string_equal(param(&p, "application_name"), "orders");
    assert_null(param(&p, "host"));
    assert_null(param(&p, "user"));
    char d[256];
    assert_string_equal(gp_config_db_display(&cfg.db, d, sizeof d), "postgresql://app:********@db.example:6000/shop");

    char *text = NULL;
    assert_int_equal(gp_config_describe(&cfg, &text), GP_OK);
    assert_null(strstr(text, "pg-Secret-1"));
    assert_non_null(strstr(text, "DATABASE_PORT               6000 (from PGPORT)\n"));
    assert_non_null(strstr(text, "DATABASE_PASSWORD           ******** (from PGPASSWORD)\n"));
    assert_non_null(strstr(text, "DATABASE_SSLMODE            require\n"));
    assert_non_null(strstr(text, "PGHOST                      elsewhere (not used: DATABASE_URL gives the host)\n"));
    assert_non_null(strstr(text, "PGSSLMODE                   disable (not used: DATABASE_SSLMODE is set)\n"));
    assert_non_null(strstr(text, "PGPASSWORD                  ******** (used as DATABASE_PASSWORD)\n"));
    assert_non_null(strstr(text, "PGOPTIONS                   -c geqo=off (used: libpq reads it"));
    assert_non_null(strstr(text, "PGCONNECT_TIMEOUT           1 (not used: growplate passes DATABASE_TIMEOUT)\n"));
    assert_non_null(strstr(text, "PGTZ                        UTC (used: libpq reads it itself"));
    free(text);
    assert_int_equal(gp_config_describe_json(&cfg, &text), GP_OK);
    assert_null(strstr(text, "pg-Secret-1"));
    assert_non_null(strstr(text, "\"sources\":{\"DATABASE_PORT\":\"PGPORT\",\"DATABASE_PASSWORD\":\"PGPASSWORD\","
                                 "\"DATABASE_APPLICATION_NAME\":\"PGAPPNAME\"}"));
    assert_non_null(strstr(text, "\"PGPASSWORD\":{\"value\":\"********\",\"used\":true,"));
    assert_non_null(strstr(text, "\"PGUSER\":{\"value\":\"bob\",\"used\":false,"));
    free(text);
    /* Changed in code, a setting no longer claims to come from PG*. */
    gp_config_t copy = cfg;
    copy.db.port = 7000;
    assert_int_equal(gp_config_describe(&copy, &text), GP_OK);
    assert_non_null(strstr(text, "DATABASE_PORT               7000\n"));
    free(text);
    gp_config_release(&cfg);
}

/* Without DATABASE_URL, PG* come before growplate's built-in defaults. */
static void test_pg_env_without_url(void **state)
{
    (void)state;
    gp_config_t cfg;
    const char *kv[] = {"PGHOST", "pg.example", "PGPORT", "6543", "PGDATABASE", "shop", "PGUSER", "bob",
                        "DATABASE_USER", "svc", NULL};
    assert_int_equal(load(&cfg, kv), GP_OK);
    gp__pg_params_t p;
    assert_int_equal(gp__pg_params(&cfg.db, false, &p, NULL, 0), GP_OK);
    assert_string_equal(param(&p, "host"), "pg.example");
    assert_string_equal(param(&p, "port"), "6543");
    assert_string_equal(param(&p, "dbname"), "shop");
    assert_string_equal(param(&p, "user"), "svc"); /* growplate's own wins */
    char d[256];
    assert_string_equal(gp_config_db_display(&cfg.db, d, sizeof d), "postgresql://svc@pg.example:6543/shop");
    gp_config_release(&cfg);
    /* An empty DATABASE_PASSWORD is no password, so PGPASSWORD is used
     * (libpq would read it anyway: an empty parameter is no parameter). */
    const char *pw[] = {"DATABASE_HOST", "db", "DATABASE_PASSWORD", "", "PGPASSWORD", "from-env", NULL};
    assert_int_equal(load(&cfg, pw), GP_OK);
    assert_string_equal(cfg.db.password, "from-env");
    gp_config_release(&cfg);
    /* An empty PGPASSWORD is no password. */
    const char *empty_pw[] = {"DATABASE_HOST", "db", "PGPASSWORD", "", NULL};
    assert_int_equal(load(&cfg, empty_pw), GP_OK);
    assert_null(cfg.db.password);
    gp_config_release(&cfg);
}

/* PG* values are checked like growplate's own, and the messages name them. */
static void test_pg_env_bad_values(void **state)
{
    (void)state;
    expect_bad((const char *[]){"DATABASE_HOST", "db", "PGPORT", "abc", NULL}, "PGPORT: 'abc' is not a port",
               "1 to 65535");
    expect_bad((const char *[]){"DATABASE_HOST", "db", "PGPORT", "5432,5433", NULL}, "PGPORT", "DATABASE_URL");
    expect_bad((const char *[]){"DATABASE_HOST", "db", "PGPORT", "+5432", NULL}, "PGPORT", NULL);
    expect_bad((const char *[]){"DATABASE_HOST", "db", "PGSSLMODE", "maybe", NULL}, "PGSSLMODE: unknown sslmode 'maybe'",
               "verify-full");
    expect_bad((const char *[]){"DATABASE_HOST", "db", "PGSSLMODE", "", NULL}, "PGSSLMODE: is set but empty", NULL);
    expect_bad((const char *[]){"DATABASE_HOST", "db", "PGSSLROOTCERT", "", NULL}, "PGSSLROOTCERT: is set but empty",
               NULL);
    expect_bad((const char *[]){"DATABASE_HOST", "db", "PGAPPNAME", "bad\x01name", NULL}, "PGAPPNAME", "printable");
    /* A connection string in PGDATABASE: libpq never expands one from the
     * environment, and growplate's first dbname it would. */
    expect_bad((const char *[]){"DATABASE_HOST", "db", "PGDATABASE", "postgresql://u:pg-Secret-3@evil/db", NULL},
               "PGDATABASE: looks like a connection string", "DATABASE_URL");
    assert_null(strstr(errbuf, "pg-Secret-3"));
    expect_bad((const char *[]){"DATABASE_HOST", "db", "PGDATABASE", "host=evil dbname=x", NULL},
               "PGDATABASE: looks like a connection string", NULL);
    /* Given by growplate, a PG* value is not used, so not judged either. */
    gp_config_t cfg;
    const char *unused[] = {"DATABASE_URL", "postgresql://db:5432/app?sslmode=require", "PGPORT", "abc", "PGSSLMODE",
                            "", NULL};
    assert_int_equal(load(&cfg, unused), GP_OK);
    gp_config_release(&cfg);
    /* PGPASSWORD never appears, whatever else is wrong. */
    const char *pw[] = {"PGPASSWORD", "pg-Secret-2", "PGPORT", "x", "DATABASE_POOL_MAX", "0", NULL};
    assert_int_equal(load(&cfg, pw), GP_ERR_CONFIG);
    assert_null(strstr(errbuf, "pg-Secret-2"));
    gp_config_release(&cfg);
}

/* Two variables that would silently move the connection are refused. */
static void test_pg_env_refused(void **state)
{
    (void)state;
    gp_config_t cfg;
    expect_bad((const char *[]){"DATABASE_URL", "postgresql://db.example/app", "PGHOSTADDR", "10.0.0.9", NULL},
               "PGHOSTADDR: '10.0.0.9' is set, and libpq would connect to that address", "hostaddr= in DATABASE_URL");
    expect_bad((const char *[]){"GROWPLATE_ENV", "development", "PGHOSTADDR", "10.0.0.9", NULL}, "PGHOSTADDR", NULL);
    const char *own_addr[] = {"DATABASE_URL", "host=db.example hostaddr=10.0.0.1 dbname=app", "PGHOSTADDR", "10.0.0.9",
                              NULL};
    assert_int_equal(load(&cfg, own_addr), GP_OK);
    gp_config_release(&cfg);

    expect_bad((const char *[]){"PGSERVICE", "prod", NULL}, "PGSERVICE: 'prod' is set but DATABASE_URL is not",
               "DATABASE_URL='service=prod'");
    /* With DATABASE_URL, the service fills what it leaves out, before the
     * other PG* variables (libpq's order): growplate copies none of them. */
    const char *svc[] = {"DATABASE_URL", "postgresql:///app", "PGSERVICE", "prod", "PGUSER", "bob", "PGHOST", "h",
                         NULL};
    assert_int_equal(load(&cfg, svc), GP_OK);
    assert_null(cfg.db.user);
    assert_null(cfg.db.host);
    char *text = NULL;
    assert_int_equal(gp_config_describe(&cfg, &text), GP_OK);
    assert_non_null(strstr(text, "PGSERVICE                   prod (used by libpq: the service gives"));
    assert_non_null(strstr(text, "PGUSER                      bob (used by libpq where the service does not give the user)"));
    free(text);
    gp_config_release(&cfg);
    const char *url_svc[] = {"DATABASE_URL", "service=prod", "PGSERVICE", "other", "PGUSER", "bob", NULL};
    assert_int_equal(load(&cfg, url_svc), GP_OK);
    assert_null(cfg.db.user);
    gp_config_release(&cfg);
}

/* DATABASE_STATEMENT_TIMEOUT makes growplate pass options itself: PGOPTIONS
 * (read by libpq otherwise) is kept in them, unless the URL gives options. */
static void test_pg_env_options(void **state)
{
    (void)state;
    gp_config_t cfg;
    const char *kv[] = {"DATABASE_URL", "postgresql://db/app", "DATABASE_STATEMENT_TIMEOUT", "250", "PGOPTIONS",
                        "-c geqo=off", NULL};
    assert_int_equal(setenv("PGOPTIONS", "-c geqo=off", 1), 0);
    assert_int_equal(load(&cfg, kv), GP_OK);
    gp__pg_params_t p;
    assert_int_equal(gp__pg_params(&cfg.db, false, &p, NULL, 0), GP_OK);
    assert_string_equal(param(&p, "options"), "-c geqo=off -c statement_timeout=250");
    char *text = NULL;
    assert_int_equal(gp_config_describe(&cfg, &text), GP_OK);
    assert_non_null(strstr(text, "with DATABASE_STATEMENT_TIMEOUT added"));
    free(text);
    gp_config_release(&cfg);
    const char *url_opts[] = {"DATABASE_URL", "postgresql://db/app?options=-c%20jit%3Doff",
                              "DATABASE_STATEMENT_TIMEOUT", "250", "PGOPTIONS", "-c geqo=off", NULL};
    assert_int_equal(load(&cfg, url_opts), GP_OK);
    assert_int_equal(gp__pg_params(&cfg.db, false, &p, NULL, 0), GP_OK);
    assert_string_equal(param(&p, "options"), "-c jit=off -c statement_timeout=250");
    gp_config_release(&cfg);
    unsetenv("PGOPTIONS");
}

/* The lookup's string need only live until its next call (the fuzzer's
 * lookup frees it): every PG* value is copied at once. */
static char one_buffer[64];
static const char *reusing_lookup(void *ud, const char *name)
{
    (void)ud;
    const char *v = strcmp(name, "PGHOST") == 0 ? "pg-host" : strcmp(name, "PGUSER") == 0 ? "pg-user"
                  : strcmp(name, "PGDATABASE") == 0 ? "pg-db" : NULL;
    if (!v)
        return NULL;
    memset(one_buffer, 'X', sizeof one_buffer - 1);
    snprintf(one_buffer, sizeof one_buffer, "%s", v);
    return one_buffer;
}

static void test_pg_env_lookup_lifetime(void **state)
{
    (void)state;
    gp_config_t cfg;
    assert_int_equal(gp_config_from_lookup(&cfg, reusing_lookup, NULL, errbuf, sizeof errbuf), GP_OK);
    assert_string_equal(cfg.db.host, "pg-host");
    assert_string_equal(cfg.db.user, "pg-user");
    assert_string_equal(cfg.db.name, "pg-db");
    gp_config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_lookup_on_garbage),
        cmocka_unit_test(test_tenant_key),
        cmocka_unit_test(test_tenant_key_file),
        cmocka_unit_test(test_fuzz_findings),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_variable),
        cmocka_unit_test(test_not_numbers),
        cmocka_unit_test(test_zero_negative_overflow),
        cmocka_unit_test(test_min_greater_than_max),
        cmocka_unit_test(test_sslmode_and_strings),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_redaction),
        cmocka_unit_test(test_log_redaction),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_nothing_configured),
        cmocka_unit_test(test_pg_env_read_through_lookup),
        cmocka_unit_test(test_pg_env_fills_gaps),
        cmocka_unit_test(test_pg_env_without_url),
        cmocka_unit_test(test_pg_env_bad_values),
        cmocka_unit_test(test_pg_env_refused),
        cmocka_unit_test(test_pg_env_options),
        cmocka_unit_test(test_pg_env_lookup_lifetime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
