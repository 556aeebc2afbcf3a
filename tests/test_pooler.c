/* test_pooler.c — a connection pooler between the library and PostgreSQL,
 * on a real PgBouncer in transaction mode (scripts/services start
 * pgbouncer, with a private GP_SERVICES_KEY: the shared servers are not
 * touched). In transaction mode named statements and session state cross
 * between clients, so until growplate supports it, a pool that finds itself
 * behind a pooler refuses the connection with a clear GP_ERR_CONFIG instead
 * of silently mixing clients' statements; migrate refuses too (it needs a
 * session with the server); DATABASE_POOLER=session skips the check;
 * DATABASE_POOLER=transaction is refused by validation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gp_test.h"

static char key[64], pooler_url[512], pooler_owner_url[512], direct_url[512];

static int services(const char *args) { return gp_test_key_services(key, args); }

static bool env_value(const char *name, char *out, size_t len) { return gp_test_key_env(key, name, out, len); }

static int setup(void **state)
{
    (void)state;
    snprintf(key, sizeof key, "pooler-%d", (int)getpid());
    if (services("start postgres >/dev/null") != 0 || services("start pgbouncer >/dev/null") != 0) {
        services("clean >/dev/null 2>&1"); /* nothing left running */
        return -1;
    }
    if (!env_value("DATABASE_POOLER_URL", pooler_url, sizeof pooler_url) ||
        !env_value("DATABASE_POOLER_MIGRATION_URL", pooler_owner_url, sizeof pooler_owner_url) ||
        !env_value("DATABASE_URL", direct_url, sizeof direct_url))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    services("clean >/dev/null 2>&1");
    return 0;
}

static void config_for(gp_config_t *cfg, const char *url)
{
    gp_test_config(cfg);
    cfg->db.url = url;
    cfg->db.pool_min = 0;
    cfg->db.pool_max = 2;
    cfg->db.acquire_timeout_ms = 3000;
}

static void test_pool_refuses_a_pooler(void **state)
{
    (void)state;
    gp_config_t cfg;
    config_for(&cfg, pooler_url);
    gp_pool_t *p = NULL;
    assert_int_equal(gp_pool_create(&cfg, &p, NULL), GP_OK);
    gp_error_t e;
    gp_conn_t *c = NULL;
    assert_int_equal(gp_pool_acquire(p, "through-pgbouncer", -1, &c, &e), GP_ERR_CONFIG);
    assert_null(c);
    assert_non_null(strstr(e.message, "goes through a connection pooler"));
    assert_non_null(strstr(e.message, "DATABASE_POOLER=transaction"));
    assert_null(strstr(e.message, "growplate_app_dev")); /* no password */
    /* One-shots say the same. */
    assert_int_equal(gp_pool_exec(p, "SELECT 1", 0, NULL, NULL, &e), GP_ERR_CONFIG);
    gp_pool_close(p, 1000);
    gp_config_release(&cfg);

    /* The same server directly: fine. */
    config_for(&cfg, direct_url);
    assert_int_equal(gp_pool_create(&cfg, &p, NULL), GP_OK);
    assert_int_equal(gp_pool_exec(p, "SELECT 1", 0, NULL, NULL, &e), GP_OK);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

static void test_session_pooler_is_allowed(void **state)
{
    (void)state;
    gp_config_t cfg;
    config_for(&cfg, pooler_url);
    cfg.db.pooler = "session"; /* the operator vouches for session mode (this one is not: only the check is skipped) */
    cfg.db.statement_cache = 0;
    gp_pool_t *p = NULL;
    assert_int_equal(gp_pool_create(&cfg, &p, NULL), GP_OK);
    gp_error_t e;
    gp_result_t *r = NULL;
    assert_int_equal(gp_pool_query(p, "SELECT 41 + 1", 0, NULL, &r, &e), GP_OK);
    int32_t v = 0;
    assert_int_equal(gp_get_int32(r, 0, 0, &v), GP_OK);
    assert_int_equal(v, 42);
    gp_result_free(r);
    assert_int_equal(gp_pool_close(p, 1000), GP_OK);
    gp_config_release(&cfg);
}

static void test_transaction_mode_validation(void **state)
{
    (void)state;
    gp_config_t cfg;
    config_for(&cfg, pooler_url);
    cfg.db.pooler = "transaction";
    char msg[1024] = "";
    assert_int_equal(gp_config_validate(&cfg, msg, sizeof msg), GP_OK);
    /* Named statements would be other clients' to see or collide with. */
    cfg.db.statement_cache = 16;
    assert_int_equal(gp_config_validate(&cfg, msg, sizeof msg), GP_ERR_CONFIG);
    assert_non_null(strstr(msg, "DATABASE_STATEMENT_CACHE: is 16, but DATABASE_POOLER=transaction needs unnamed"));
    gp_pool_t *p = NULL;
    gp_error_t e;
    assert_int_equal(gp_pool_create(&cfg, &p, &e), GP_ERR_CONFIG);
    cfg.db.statement_cache = -1;
    cfg.db.pooler = "bouncy";
    msg[0] = 0;
    assert_int_equal(gp_config_validate(&cfg, msg, sizeof msg), GP_ERR_CONFIG);
    assert_non_null(strstr(msg, "DATABASE_POOLER: unknown value 'bouncy'"));
    gp_config_release(&cfg);
}

static void test_migrate_refuses_a_pooler(void **state)
{
    (void)state;
    gp_config_t cfg;
    config_for(&cfg, pooler_url);
    cfg.db.migration_url = pooler_owner_url;
    gp_error_t e;
    assert_int_equal(gp_migrate(&cfg, NULL, NULL, &e), GP_ERR_CONFIG);
    assert_non_null(strstr(e.message, "DATABASE_MIGRATION_URL) goes through a connection pooler"));
    assert_non_null(strstr(e.message, "point DATABASE_MIGRATION_URL at the server"));
    assert_null(strstr(e.message, "growplate_owner_dev"));
    gp_config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_refuses_a_pooler),
        cmocka_unit_test(test_session_pooler_is_allowed),
        cmocka_unit_test(test_transaction_mode_validation),
        cmocka_unit_test(test_migrate_refuses_a_pooler),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
