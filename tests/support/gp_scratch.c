/* gp_scratch.c — throwaway databases for the schema tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gp_scratch.h"
#include "growplate/schema.h"
#include "internal.h" /* the tenant key and HMAC */

static void quiet(void *arg, const char *msg) { (void)arg; (void)msg; }

PGconn *gp_scratch_connect(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        char safe[512];
        gp_redact(PQerrorMessage(c), safe, sizeof safe);
        fprintf(stderr, "connect failed: %s\n", safe);
        fail();
    }
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

void gp_scratch_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "SQL failed: %s\n  %s\n", sql, PQresultErrorMessage(r));
        PQclear(r);
        fail();
    }
    PQclear(r);
}

void gp_scratch_exec_fails(PGconn *c, const char *sql, const char *sqlstate)
{
    PGresult *r = PQexec(c, sql);
    const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQresultStatus(r) != PGRES_FATAL_ERROR || !got || strcmp(got, sqlstate) != 0) {
        fprintf(stderr, "expected SQLSTATE %s from: %s\n  got status %s, SQLSTATE %s: %s\n", sqlstate, sql,
                PQresStatus(PQresultStatus(r)), got ? got : "(none)", PQresultErrorMessage(r));
        PQclear(r);
        fail();
    }
    PQclear(r);
}

const char *gp_scratch_value(PGconn *c, const char *sql, char *buf, size_t len)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        fprintf(stderr, "expected one row from: %s\n  %s\n", sql, PQresultErrorMessage(r));
        PQclear(r);
        fail();
    }
    snprintf(buf, len, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return buf;
}

void gp_scratch_url_with_db(const char *url, const char *db, char *out, size_t len)
{
    const char *scheme = strstr(url, "://");
    assert_non_null(scheme);
    const char *path = strchr(scheme + 3, '/');
    size_t head = path ? (size_t)(path - url) : strlen(url);
    const char *query = strchr(path ? path : url, '?');
    snprintf(out, len, "%.*s/%s%s", (int)head, url, db, query ? query : "");
}

void gp_scratch_create(gp_scratch_t *s, const char *tag)
{
    gp_test_require_env();
    const char *admin = getenv("GP_PG_ADMIN_CONNINFO"), *app = getenv("DATABASE_URL"),
               *owner = getenv("DATABASE_MIGRATION_URL");
    assert_non_null(admin);
    assert_non_null(owner);
    memset(s, 0, sizeof *s);
    snprintf(s->db, sizeof s->db, "gp_scratch_%s_%d", tag, (int)getpid());
    gp_scratch_url_with_db(app, s->db, s->app_url, sizeof s->app_url);
    gp_scratch_url_with_db(owner, s->db, s->owner_url, sizeof s->owner_url);
    snprintf(s->admin, sizeof s->admin, "%s dbname=%s", admin, s->db);
    char sql[256];
    PGconn *c = gp_scratch_connect(admin);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", s->db);
    gp_scratch_exec(c, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s OWNER growplate_owner", s->db);
    gp_scratch_exec(c, sql);
    PQfinish(c);
    /* As scripts/services provisions growplate_dev. */
    c = gp_scratch_connect(s->admin);
    snprintf(sql, sizeof sql,
             "REVOKE ALL ON DATABASE %s FROM PUBLIC; GRANT CONNECT ON DATABASE %s TO growplate_app;"
             "REVOKE CREATE ON SCHEMA public FROM PUBLIC; ALTER SCHEMA public OWNER TO growplate_owner;",
             s->db, s->db);
    gp_scratch_exec(c, sql);
    PQfinish(c);
}

void gp_scratch_drop(gp_scratch_t *s)
{
    if (!s->db[0])
        return;
    char sql[256];
    PGconn *c = gp_scratch_connect(getenv("GP_PG_ADMIN_CONNINFO"));
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", s->db);
    gp_scratch_exec(c, sql);
    PQfinish(c);
    s->db[0] = 0;
}

void gp_scratch_config(const gp_scratch_t *s, gp_config_t *cfg)
{
    gp_test_config(cfg);
    cfg->db.url = s->app_url;
    cfg->db.migration_url = s->owner_url;
}

void gp_scratch_migrate(const gp_scratch_t *s)
{
    gp_config_t cfg;
    gp_scratch_config(s, &cfg);
    gp_error_t err;
    gp_status_t st = gp_migrate(&cfg, NULL, NULL, &err);
    if (st != GP_OK)
        fprintf(stderr, "migrate: %s\n", err.message);
    assert_int_equal(st, GP_OK);
    gp_config_release(&cfg);
}

void gp_scratch_tenant_secret(const char *tenant, int64_t expires, char kid[17], char secret[65])
{
    gp_scratch_tenant_secret_with(getenv("DATABASE_TENANT_KEY"), tenant, expires, kid, secret);
}

void gp_scratch_tenant_secret_with(const char *hex, const char *tenant, int64_t expires, char kid[17],
                                   char secret[65])
{
    gp__tenant_key_t k;
    assert_true(gp__tenant_key_decode(hex, 0, &k));
    assert_true(k.set);
    char msg[128];
    int n = snprintf(msg, sizeof msg, "v1.%s.%s.%lld", k.kid, tenant, (long long)expires);
    unsigned char mac[32];
    gp__hmac_sha256(k.key, k.len, msg, (size_t)n, mac);
    gp__hex(mac, sizeof mac, secret);
    memcpy(kid, k.kid, 17);
    gp__wipe(&k, sizeof k);
}

bool gp_scratch_publish(PGconn *c, const char *tenant, int64_t expires, char secret[65])
{
    char kid[17], exp[24];
    gp_scratch_tenant_secret(tenant, expires, kid, secret);
    snprintf(exp, sizeof exp, "%lld", (long long)expires);
    const char *p[4] = {kid, tenant, exp, secret};
    PGresult *r = PQexecParams(c, "SELECT growplate.tenant_publish($1, $2::uuid, $3::int8, $4)", 4, NULL, p, NULL,
                               NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok;
}

void gp_scratch_set_tenant(PGconn *c, const char *tenant)
{
    char secret[65];
    assert_true(gp_scratch_publish(c, tenant, (int64_t)time(NULL) + 300, secret));
    const char *p[1] = {secret};
    PGresult *r = PQexecParams(c, "SELECT set_config('growplate.tenant_token', $1, true)", 1, NULL, p, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
}
