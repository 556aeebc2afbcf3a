/* observability.c — structured logs and Prometheus metrics from a
 * service's own process: a JSON-lines log handler (or a syslog one) that
 * receives each message's fields, and gp_metrics_render for the /metrics
 * endpoint. The README's "Structured logs" and "Prometheus" samples are
 * excerpts of this file.
 *   eval "$(scripts/services env)"; build/growplate demo
 *   build/examples/observability json   >metrics.txt   # JSON lines on stderr
 *   build/examples/observability syslog >metrics.txt   # to syslog (and stderr) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <growplate/growplate.h>

/* One JSON object per line on stderr. Messages are UTF-8 text without
 * secrets; quotes, backslashes and control bytes are escaped. */
static void put_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void log_json(void *userdata, const gp_log_record_t *r)
{
    FILE *f = userdata;
    flockfile(f); /* called from any of the library's threads: one line at a time */
    fprintf(f, "{\"level\":\"%s\",\"component\":", gp_log_level_name(r->level));
    put_json_string(f, r->component);
    fputs(",\"message\":", f);
    put_json_string(f, r->message);
    if (r->sqlstate[0])
        fprintf(f, ",\"sqlstate\":\"%s\"", r->sqlstate);
    if (r->klass != GP_ECLASS_NONE)
        fprintf(f, ",\"class\":\"%s\",\"status\":\"%s\"", gp_error_class_name(r->klass), gp_strerror(r->status));
    if (r->tenant[0])
        fprintf(f, ",\"tenant\":\"%s\"", r->tenant); /* a validated UUID: nothing to escape */
    if (r->duration_ns >= 0)
        fprintf(f, ",\"duration_ms\":%.3f", (double)r->duration_ns / 1e6);
    fputs("}\n", f);
    funlockfile(f);
}

/* syslog: the level as the priority, the fields as key=value pairs. */
static void log_syslog(void *userdata, const gp_log_record_t *r)
{
    (void)userdata;
    static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
    int p = (unsigned)r->level < 4 ? prio[r->level] : LOG_ERR;
    syslog(p, "[%s] %s%s%s%s%s", r->component, r->message, r->sqlstate[0] ? " sqlstate=" : "", r->sqlstate,
           r->tenant[0] ? " tenant=" : "", r->tenant);
}

static void respond(int status, const char *content_type, const char *body)
{
    fprintf(stderr, "HTTP %d, Content-Type: %s, %zu bytes\n", status, content_type, strlen(body));
    fputs(body, stdout);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "json";
    if (strcmp(mode, "syslog") == 0) {
        openlog("growplate-example", LOG_PID | LOG_PERROR, LOG_USER); /* LOG_PERROR: a copy on stderr */
        gp_log_set_record_handler(log_syslog, NULL, GP_LOG_INFO);
    } else {
        gp_log_set_record_handler(log_json, stderr, GP_LOG_INFO);
    }

    gp_config_t cfg;
    char problems[GP_ERRBUF_SIZE];
    if (gp_config_from_env(&cfg, problems, sizeof problems) != GP_OK) {
        fprintf(stderr, "%s", problems);
        gp_config_release(&cfg);
        return 2;
    }
    gp_pool_t *pool = NULL, *replica = NULL;
    gp_cache_t *cache = NULL;
    gp_error_t err;
    int rc = 1;
    if (gp_pool_create(&cfg, &pool, &err) != GP_OK || gp_pool_create(&cfg, &replica, &err) != GP_OK ||
        gp_cache_create(&cfg, NULL, &cache, &err) != GP_OK) {
        fprintf(stderr, "setup: %s\n", err.message);
        goto out;
    }

    /* Some work: one tenant's menu, a failing statement, an invalidation
     * (logged at info, with the tenant in the record). */
    char tenant[37] = "";
    gp_result_t *res;
    if (gp_pool_query(pool, "SELECT public.tenant_id_for_slug('trattoria-demo')", 0, NULL, &res, &err) == GP_OK) {
        gp_uuid_t id;
        if (gp_get_uuid(res, 0, 0, &id) == GP_OK)
            gp_uuid_format(&id, tenant);
        gp_result_free(res);
    }
    if (!tenant[0]) {
        fprintf(stderr, "no tenant 'trattoria-demo' (run `growplate demo` first)\n");
        goto out;
    }
    if (gp_tenant_query(pool, tenant, "SELECT name FROM menu_items", 0, NULL, &res, &err) == GP_OK)
        gp_result_free(res);
    gp_pool_exec(pool, "SELECT * FROM no_such_table", 0, NULL, NULL, &err); /* counted under class syntax_or_undefined */
    gp_cache_invalidate_tenant(cache, tenant, &err);

    /* The service's GET /metrics: */
    gp_metrics_source_t sources[] = {{"primary", pool, cache}, {"replica", replica, NULL}};
    char *text;
    if (gp_metrics_render(sources, 2, &text, &err) != GP_OK) {
        respond(500, "text/plain", err.message);
        goto out;
    }
    respond(200, "text/plain; version=0.0.4", text);
    free(text);
    rc = 0;
out:
    gp_cache_close(cache);
    gp_pool_close(replica, 5000);
    gp_pool_close(pool, 5000);
    gp_config_release(&cfg);
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
    return rc;
}
