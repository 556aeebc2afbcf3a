/* test_smoke.c — connectivity against both private servers, and the
 * failures a misconfigured service meets first: bad password, nothing
 * listening. Messages never carry the password. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_test.h"

static void test_both_reachable(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_test_config(&cfg);
    gp_probe_t p;
    assert_int_equal(gp_probe_postgres(&cfg, &p), GP_OK);
    assert_true(p.latency_ns > 0);
    assert_true(strncmp(p.server_version, "15.", 3) == 0);
    assert_int_equal(gp_probe_redis(&cfg, &p), GP_OK);
    assert_true(p.latency_ns > 0);
    assert_true(strlen(p.server_version) > 0);
    gp_config_release(&cfg);
}

static void test_bad_password(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_test_config(&cfg);
    char url[512];
    const char *port = strrchr(getenv("DATABASE_URL"), ':');
    snprintf(url, sizeof url, "postgresql://growplate_app:Wr0ngPassw0rd@127.0.0.1%s", port);
    cfg.db.url = url;
    gp_probe_t p;
    assert_int_equal(gp_probe_postgres(&cfg, &p), GP_ERR_AUTH);
    assert_null(strstr(p.message, "Wr0ngPassw0rd"));
    assert_non_null(strstr(p.message, "password authentication failed"));
    gp_config_release(&cfg);
}

static void test_nothing_listening(void **state)
{
    (void)state;
    gp_config_t cfg;
    gp_config_init(&cfg);
    cfg.db.url = "postgresql://u:Secr3t@127.0.0.1:1/db";
    cfg.redis.url = "redis://:Secr3t@127.0.0.1:1/0";
    gp_probe_t p;
    assert_int_equal(gp_probe_postgres(&cfg, &p), GP_ERR_CONNECT);
    assert_null(strstr(p.message, "Secr3t"));
    assert_non_null(strstr(p.message, "is the server running"));
    assert_null(strstr(p.message, "scripts/services")); /* no development hints in the library's messages */
    assert_int_equal(gp_probe_redis(&cfg, &p), GP_ERR_CONNECT);
    assert_null(strstr(p.message, "Secr3t"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both_reachable),
        cmocka_unit_test(test_bad_password),
        cmocka_unit_test(test_nothing_listening),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
