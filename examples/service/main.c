/* main.c — the example service's process: settings from the environment,
 * one pool, one cache, a libmicrohttpd daemon on 127.0.0.1, and a clean
 * shutdown on SIGINT/SIGTERM.
 *   eval "$(scripts/services env)"; build/growplate demo
 *   build/examples/service 8080 &
 *   curl -H 'X-Tenant: trattoria-demo' localhost:8080/menu */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "http.h"

void service_log(const char *level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "service %s: %s\n", level, line); /* one write per line: lines never interleave */
}

/* ---- settings ------------------------------------------------------------------- */

/* A whole number in [min, max], with an optional unit when `duration`
 * ("250ms", "5s", "2m"; bare = ms), as the library reads its own variables. */
static bool parse_number(const char *name, const char *text, bool duration, long long min, long long max,
                         long long *out, char *problems, size_t plen)
{
    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    long long scale = 1;
    if (duration && end != text) {
        if (strcmp(end, "s") == 0)
            scale = 1000, end += 1;
        else if (strcmp(end, "m") == 0)
            scale = 60000, end += 1;
        else if (strcmp(end, "ms") == 0)
            end += 2;
    }
    if (errno || end == text || *end || v > max / scale || v * scale < min || v * scale > max) {
        size_t used = strlen(problems);
        snprintf(problems + used, plen - used, "%s: '%.32s' is not %s from %lld to %lld%s\n", name, text,
                 duration ? "a duration" : "a whole number", min, max, duration ? " ms (or with s, m)" : "");
        return false;
    }
    *out = v * scale;
    return true;
}

/* Read NAME from the environment into *out (an int or size_t per `size`);
 * unset or empty keeps the default. */
static bool setting(const char *name, bool duration, long long min, long long max, void *out, size_t size,
                    char *problems, size_t plen)
{
    const char *text = getenv(name);
    long long v;
    if (!text || !*text)
        return true;
    if (!parse_number(name, text, duration, min, max, &v, problems, plen))
        return false;
    if (size == sizeof(int))
        *(int *)out = (int)v;
    else
        *(size_t *)out = (size_t)v;
    return true;
}

static bool read_settings(service_settings_t *s, int argc, char **argv, char *problems, size_t plen)
{
    *s = (service_settings_t){
        .port = 8080,
        .max_body = 64 * 1024,
        .max_connections = 256,
        .idle_timeout_s = 30,
        .menu_ttl_ms = 60000,
        .orders_ttl_ms = 10000,
        .tenant_ttl_ms = 60000,
        .tenant_negative_ttl_ms = 5000,
        .tenant_map_size = 1024,
        .health_deadline_ms = GP_HEALTH_DEFAULT_DEADLINE_MS,
        .access_log = 0,
    };
    problems[0] = 0;
    bool ok = true;
    ok &= setting("SERVICE_PORT", false, 0, 65535, &s->port, sizeof s->port, problems, plen);
    if (argc > 1) { /* the command line wins over the environment */
        long long v;
        if (parse_number("port (argv[1])", argv[1], false, 0, 65535, &v, problems, plen))
            s->port = (int)v;
        else
            ok = false;
    }
    ok &= setting("SERVICE_MAX_BODY", false, 1024, 16 << 20, &s->max_body, sizeof s->max_body, problems, plen);
    ok &= setting("SERVICE_MAX_CONNECTIONS", false, 1, 10000, &s->max_connections, sizeof(int), problems, plen);
    ok &= setting("SERVICE_IDLE_TIMEOUT", false, 1, 3600, &s->idle_timeout_s, sizeof(int), problems, plen);
    ok &= setting("SERVICE_MENU_TTL", true, 1000, 86400000, &s->menu_ttl_ms, sizeof(int), problems, plen);
    /* The recent-orders version counter lives a day: a list must live far less. */
    ok &= setting("SERVICE_ORDERS_TTL", true, 100, 3600000, &s->orders_ttl_ms, sizeof(int), problems, plen);
    ok &= setting("SERVICE_TENANT_TTL", true, 100, 3600000, &s->tenant_ttl_ms, sizeof(int), problems, plen);
    ok &= setting("SERVICE_TENANT_NEGATIVE_TTL", true, 0, 3600000, &s->tenant_negative_ttl_ms, sizeof(int),
                  problems, plen);
    ok &= setting("SERVICE_TENANT_MAP_SIZE", false, 4, 1 << 20, &s->tenant_map_size, sizeof s->tenant_map_size,
                  problems, plen);
    ok &= setting("SERVICE_HEALTH_DEADLINE", true, 100, 60000, &s->health_deadline_ms, sizeof(int), problems,
                  plen);
    ok &= setting("SERVICE_ACCESS_LOG", false, 0, 1, &s->access_log, sizeof(int), problems, plen);
    return ok;
}

/* libmicrohttpd's own complaints (a client that broke the protocol...). */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = 0;
    service_log("http", "%s", line);
}

int main(int argc, char **argv)
{
    /* SIGINT and SIGTERM are taken by sigwait() below, in this thread only:
     * block them before any thread exists (the pool's, MHD's), so every
     * thread inherits the mask and no handler runs at a random point. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    service_t svc = {0};
    char problems[GP_ERRBUF_SIZE];
    if (!read_settings(&svc.set, argc, argv, problems, sizeof problems)) {
        fprintf(stderr, "%s", problems);
        return 2;
    }
    if (gp_config_from_env(&svc.cfg, problems, sizeof problems) != GP_OK) {
        fprintf(stderr, "%s", problems); /* one line per problem, secrets redacted */
        gp_config_release(&svc.cfg);
        return 2;
    }

    int rc = 1;
    gp_error_t err;
    struct MHD_Daemon *daemon = NULL;
    if (gp_pool_create(&svc.cfg, &svc.pool, &err) != GP_OK ||     /* returns at once; connects in the background */
        gp_cache_create(&svc.cfg, NULL, &svc.cache, &err) != GP_OK) { /* connects on first use */
        fprintf(stderr, "service: %s\n", err.message);
        rc = 2;
        goto out;
    }
    if (!(svc.tenants = tenant_map_new(svc.set.tenant_map_size, svc.set.tenant_ttl_ms,
                                       svc.set.tenant_negative_ttl_ms)) ||
        !(svc.stats = stats_new())) {
        fprintf(stderr, "service: out of memory\n");
        goto out;
    }

    /* A thread per connection: every handler blocks on PostgreSQL or Redis
     * (the library's calls are synchronous), and a blocked handler must not
     * hold up other connections, as it would in a polling thread. The
     * connection limit bounds the threads; the pool bounds the database
     * connections (DATABASE_POOL_MAX), whatever the number of threads. */
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)svc.set.port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* behind a proxy: never exposed directly */
    daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO |
                                  MHD_USE_ERROR_LOG,
                              0, NULL, NULL, http_on_request, &svc,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first, or MHD logs before it */
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                              MHD_OPTION_NOTIFY_COMPLETED, http_on_completed, &svc,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)svc.set.max_connections,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)svc.set.idle_timeout_s,
                              MHD_OPTION_END);
    if (!daemon) {
        fprintf(stderr, "service: cannot listen on 127.0.0.1:%d: %s\n", svc.set.port, strerror(errno));
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    char pg[256], redis[256];
    /* The one line on stdout: scripts (and the test) read the port from it. */
    printf("listening on http://127.0.0.1:%u\n", info ? (unsigned)info->port : (unsigned)svc.set.port);
    fflush(stdout);
    service_log("info", "PostgreSQL %s, Redis %s, pool %d..%d, up to %d HTTP connections",
                gp_config_db_display(&svc.cfg.db, pg, sizeof pg),
                gp_config_redis_display(&svc.cfg.redis, redis, sizeof redis), svc.cfg.db.pool_min,
                svc.cfg.db.pool_max, svc.set.max_connections);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    service_log("info", "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;

out:
    /* In this order: no request runs once the daemon is stopped (it waits
     * for the handlers in flight), so nothing uses the cache when it closes,
     * and no connection is leased when the pool closes. */
    if (daemon)
        MHD_stop_daemon(daemon);
    gp_cache_close(svc.cache);
    if (gp_pool_close(svc.pool, 5000) != GP_OK && svc.pool) {
        service_log("warn", "connections still leased after 5 s");
        rc = rc ? rc : 1;
    }
    tenant_map_free(svc.tenants);
    stats_free(svc.stats);
    gp_config_release(&svc.cfg);
    return rc;
}
