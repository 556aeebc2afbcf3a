/* test_cache_tls.c — the cache over TLS (OpenSSL under its own socket I/O)
 * on a real TLS-only Redis that requires client certificates (scripts/
 * services start redis-tls, with a private GP_SERVICES_KEY and a CA made
 * by openssl): every operation, health and the probe; a wrong CA and a
 * wrong server name refused with GP_ERR_CONNECT naming the variable to
 * check; no client certificate, a plain port, a server that never answers
 * the handshake (the budget holds); a restarted server under an idle
 * connection (no SIGPIPE: the default disposition would end this test);
 * certificate files that do not load; and tenant isolation over TLS. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gp_test.h"
#include "gp_test_cache.h"

static char key[64], url[128], ca[256], cert[256], tkey[256], other_ca[256];

static int setup(void **state)
{
    (void)state;
    snprintf(key, sizeof key, "tls-%d", (int)getpid());
    if (gp_test_key_services(key, "start redis-tls >/dev/null") != 0 ||
        !gp_test_key_env(key, "GP_REDIS_TLS_URL", url, sizeof url) ||
        !gp_test_key_env(key, "GP_REDIS_TLS_CA_FILE", ca, sizeof ca) ||
        !gp_test_key_env(key, "GP_REDIS_TLS_CERT_FILE", cert, sizeof cert) ||
        !gp_test_key_env(key, "GP_REDIS_TLS_KEY_FILE", tkey, sizeof tkey) ||
        !gp_test_key_env(key, "GP_REDIS_TLS_OTHER_CA_FILE", other_ca, sizeof other_ca)) {
        gp_test_key_services(key, "clean >/dev/null 2>&1");
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_test_key_services(key, "clean >/dev/null 2>&1");
    return 0;
}


/* The test environment's configuration, pointed at the TLS Redis. */
static void tls_config(gp_config_t *cfg)
{
    gp_test_config(cfg);
    cfg->redis.url = url;
    cfg->redis.tls_ca_file = ca;
    cfg->redis.tls_cert_file = cert;
    cfg->redis.tls_key_file = tkey;
}

static gp_cache_t *tls_cache(gp_config_t *cfg)
{
    gp_cache_t *c = NULL;
    gp_error_t err;
    gp_cache_options_t o = {.breaker_threshold = 1000}; /* every call connects: the circuit is not the subject */
    if (gp_cache_create(cfg, &o, &c, &err) != GP_OK)
        fail_msg("gp_cache_create: %s", err.message);
    return c;
}

static void test_operations_over_tls(void **state)
{
    (void)state;
    gp_config_t cfg;
    tls_config(&cfg);
    char shown[300];
    gp_config_redis_display(&cfg.redis, shown, sizeof shown);
    assert_non_null(strstr(shown, "rediss://127.0.0.1:"));
    gp_cache_t *c = tls_cache(&cfg);
    char t[37], *v = NULL;
    gp_test_tenant(t);
    gp_error_t err;
    assert_int_equal(gp_cache_set(c, t, "k", "v1", 2, 60000, &err), GP_OK);
    assert_int_equal(gp_cache_get(c, t, "k", &v, NULL, &err), GP_OK);
    assert_string_equal(v, "v1");
    free(v);
    /* a value bigger than one TLS record (16 KiB) both ways */
    size_t big = 100000;
    char *b = malloc(big);
    assert_non_null(b);
    for (size_t i = 0; i < big; i++)
        b[i] = (char)('a' + i % 26);
    assert_int_equal(gp_cache_set(c, t, "big", b, big, 60000, &err), GP_OK);
    size_t len = 0;
    assert_int_equal(gp_cache_get(c, t, "big", &v, &len, &err), GP_OK);
    assert_int_equal(len, big);
    assert_memory_equal(v, b, big);
    free(v);
    free(b);
    const char *keys[3] = {"a", "b", "c"};
    gp_cache_value_t vals[3] = {{"1", 1}, {"2", 1}, {"3", 1}}, got[3];
    assert_int_equal(gp_cache_mset(c, t, 3, keys, vals, 60000, &err), GP_OK);
    assert_int_equal(gp_cache_mget(c, t, 3, keys, got, &err), GP_OK);
    assert_string_equal(got[2].data, "3");
    gp_cache_values_free(got, 3);
    int64_t n = 0;
    assert_int_equal(gp_cache_incr(c, t, "n", 5, 60000, &n, &err), GP_OK);
    assert_int_equal(n, 5);
    assert_int_equal(gp_cache_del(c, t, "k", &err), GP_OK);
    assert_int_equal(gp_cache_ping(c, NULL, &err), GP_OK);

    gp_health_options_t ho = {.cfg = &cfg, .cache = c, .deadline_ms = 3000};
    gp_health_report_t rep;
    gp_health_check(&ho, &rep);
    if (rep.redis.status != GP_OK)
        fail_msg("health: %s", rep.redis.message);
    assert_string_equal(rep.redis.role, "master");
    gp_cache_close(c);

    gp_probe_t p;
    if (gp_probe_redis(&cfg, &p) != GP_OK)
        fail_msg("probe: %s", p.message);
    assert_true(p.server_version[0]);
    gp_config_release(&cfg);
}

static void test_wrong_ca_is_refused(void **state)
{
    (void)state;
    gp_config_t cfg;
    tls_config(&cfg);
    cfg.redis.tls_ca_file = other_ca;
    gp_cache_t *c = tls_cache(&cfg);
    char t[37], *v = NULL;
    gp_test_tenant(t);
    gp_error_t err;
    assert_int_equal(gp_cache_get(c, t, "k", &v, NULL, &err), GP_ERR_CONNECT);
    assert_null(v);
    assert_false(err.retriable);
    if (!strstr(err.message, "certificate was not accepted") || !strstr(err.message, "REDIS_TLS_CA_FILE"))
        fail_msg("%s", err.message);
    assert_int_equal(gp_test_cache_metrics(c).connected, 0);
    gp_cache_close(c);
    gp_probe_t p;
    assert_int_equal(gp_probe_redis(&cfg, &p), GP_ERR_CONNECT);
    assert_non_null(strstr(p.message, "REDIS_TLS_CA_FILE"));
    /* the system's CAs do not know this one either */
    cfg.redis.tls_ca_file = NULL;
    assert_int_equal(gp_probe_redis(&cfg, &p), GP_ERR_CONNECT);
    gp_config_release(&cfg);
}

static void test_wrong_server_name_is_refused(void **state)
{
    (void)state;
    gp_config_t cfg;
    tls_config(&cfg);
    cfg.redis.tls_server_name = "db.example.com";
    gp_cache_t *c = tls_cache(&cfg);
    char t[37];
    gp_test_tenant(t);
    gp_error_t err;
    assert_int_equal(gp_cache_exists(c, t, "k", &err), GP_ERR_CONNECT);
    if (!strstr(err.message, "REDIS_TLS_SERVER_NAME"))
        fail_msg("%s", err.message);
    gp_cache_close(c);
    /* the name the certificate is for */
    cfg.redis.tls_server_name = "localhost";
    c = tls_cache(&cfg);
    assert_int_equal(gp_cache_exists(c, t, "k", &err), GP_ERR_MISS);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

static void test_handshake_failures(void **state)
{
    (void)state;
    gp_config_t cfg;
    char t[37];
    gp_test_tenant(t);
    gp_error_t err;
    /* No client certificate: the server requires one. */
    tls_config(&cfg);
    cfg.redis.tls_cert_file = cfg.redis.tls_key_file = NULL;
    gp_cache_t *c = tls_cache(&cfg);
    assert_int_equal(gp_cache_exists(c, t, "k", &err), GP_ERR_UNAVAILABLE);
    if (!strstr(err.message, "REDIS_TLS_CERT_FILE"))
        fail_msg("%s", err.message);
    gp_cache_close(c);
    gp_config_release(&cfg);

    /* TLS to a plain port (the shared test Redis). */
    tls_config(&cfg);
    char plain[128];
    snprintf(plain, sizeof plain, "rediss://%s", strstr(getenv("REDIS_URL"), "://") + 3);
    cfg.redis.url = plain;
    c = tls_cache(&cfg);
    assert_int_equal(gp_cache_exists(c, t, "k", &err), GP_ERR_UNAVAILABLE);
    if (!strstr(err.message, "TLS handshake") || !strstr(err.message, "is the server's port TLS?"))
        fail_msg("%s", err.message);
    gp_cache_close(c);
    gp_config_release(&cfg);

    /* A server that accepts the connection and never answers the handshake
     * (a listener nobody accepts on: the kernel completes the connect). The
     * handshake counts in the connect timeout; the call keeps its budget. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    char mute[64];
    snprintf(mute, sizeof mute, "rediss://127.0.0.1:%d/0", ntohs(a.sin_port));
    tls_config(&cfg);
    cfg.redis.url = mute;
    cfg.redis.timeout_ms = 300;
    cfg.redis.connect_timeout_ms = 200;
    c = tls_cache(&cfg);
    int64_t t0 = gp_test_now_ms();
    assert_int_equal(gp_cache_exists(c, t, "k", &err), GP_ERR_UNAVAILABLE);
    int64_t took = gp_test_now_ms() - t0;
    printf("a silent TLS server: the call returned after %lld ms (connect timeout 200, budget 300)\n",
           (long long)took);
    assert_int_equal(err.klass, GP_ECLASS_TIMEOUT);
    if (!strstr(err.message, "TLS handshake not done within REDIS_CONNECT_TIMEOUT"))
        fail_msg("%s", err.message);
    assert_true(took < 300 + 700); /* a deadline kept (the slack is for sanitizer builds), not a speed */
    gp_cache_close(c);
    gp_config_release(&cfg);
    close(fd);

    /* Files that do not load: at create, naming the variable. */
    tls_config(&cfg);
    cfg.redis.tls_ca_file = tkey; /* a key, not certificates */
    assert_int_equal(gp_cache_create(&cfg, NULL, &c, &err), GP_ERR_CONFIG);
    assert_non_null(strstr(err.message, "REDIS_TLS_CA_FILE: cannot load"));
    cfg.redis.tls_ca_file = ca;
    cfg.redis.tls_key_file = cert; /* a certificate, not a key */
    assert_int_equal(gp_cache_create(&cfg, NULL, &c, &err), GP_ERR_CONFIG);
    assert_non_null(strstr(err.message, "REDIS_TLS_KEY_FILE"));
    gp_config_release(&cfg);
}

/* The server restarts under an idle TLS connection: the next call's write
 * fails on a closed socket (EPIPE, never SIGPIPE), and the idempotent call
 * is resent on a fresh connection. */
static void test_restart_under_an_idle_connection(void **state)
{
    (void)state;
    gp_config_t cfg;
    tls_config(&cfg);
    cfg.redis.pool_size = 1;
    gp_cache_t *c = tls_cache(&cfg);
    char t[37];
    gp_test_tenant(t);
    gp_error_t err;
    assert_int_equal(gp_cache_set(c, t, "k", "v", 1, 60000, &err), GP_OK);
    assert_int_equal(gp_test_key_services(key, "restart redis-tls >/dev/null"), 0);
    /* The write may land in the socket before the close is seen: retried
     * once on a fresh connection either way. */
    for (int i = 0; i < 3; i++)
        if (gp_cache_set(c, t, "k", "w", 1, 60000, &err) != GP_OK) {
            gp_cache_metrics_t m = gp_test_cache_metrics(c);
            fail_msg("after the restart (call %d; connects %llu, disconnects %llu, retries %llu): %s", i,
                     (unsigned long long)m.connects, (unsigned long long)m.disconnects,
                     (unsigned long long)m.retries, err.message);
        }
    assert_true(gp_test_cache_metrics(c).retries >= 1);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

/* Tenant isolation holds over TLS as over TCP: B reads, lists, deletes and
 * invalidates nothing of A's. */
static void test_tenant_isolation_over_tls(void **state)
{
    (void)state;
    gp_config_t cfg;
    tls_config(&cfg);
    gp_cache_t *c = tls_cache(&cfg);
    char a[37], b[37], *v = NULL;
    gp_test_tenant(a);
    gp_test_tenant(b);
    gp_error_t err;
    assert_int_equal(gp_cache_set(c, a, "secret", "A's", 3, 60000, &err), GP_OK);
    assert_int_equal(gp_cache_get(c, b, "secret", &v, NULL, &err), GP_ERR_MISS);
    assert_int_equal(gp_cache_exists(c, b, "secret", &err), GP_ERR_MISS);
    int64_t ttl;
    assert_int_equal(gp_cache_ttl(c, b, "secret", &ttl, &err), GP_ERR_MISS);
    const char *keys[2] = {"secret", "other"};
    gp_cache_value_t got[2];
    assert_int_equal(gp_cache_mget(c, b, 2, keys, got, &err), GP_OK);
    assert_null(got[0].data);
    assert_null(got[1].data);
    assert_int_equal(gp_cache_del(c, b, "secret", &err), GP_ERR_MISS);
    assert_int_equal(gp_cache_expire(c, b, "secret", 1, &err), GP_ERR_MISS);
    /* keys that try to name A's keyspace are refused */
    char forged[128];
    snprintf(forged, sizeof forged, "x}:1:{%s", a);
    assert_int_equal(gp_cache_get(c, b, forged, &v, NULL, &err), GP_ERR_KEY);
    assert_int_equal(gp_cache_get(c, a, "secret", &v, NULL, &err), GP_OK);
    assert_string_equal(v, "A's");
    free(v);
    /* B's invalidation leaves A's keys; A's hides them from A */
    assert_int_equal(gp_cache_set(c, b, "mine", "B's", 3, 60000, &err), GP_OK);
    assert_int_equal(gp_cache_invalidate_tenant(c, b, &err), GP_OK);
    assert_int_equal(gp_cache_exists(c, a, "secret", &err), GP_OK);
    assert_int_equal(gp_cache_invalidate_tenant(c, a, &err), GP_OK);
    assert_int_equal(gp_cache_exists(c, a, "secret", &err), GP_ERR_MISS);
    gp_cache_close(c);
    gp_config_release(&cfg);
}

int main(void)
{
    gp_test_require_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operations_over_tls),
        cmocka_unit_test(test_wrong_ca_is_refused),
        cmocka_unit_test(test_wrong_server_name_is_refused),
        cmocka_unit_test(test_handshake_failures),
        cmocka_unit_test(test_restart_under_an_idle_connection),
        cmocka_unit_test(test_tenant_isolation_over_tls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
