/* gp_scratch.h — throwaway databases for the schema tests: created by the
 * superuser (GP_PG_ADMIN_CONNINFO) like the development database (owned by
 * growplate_owner), reached through the same roles as DATABASE_URL and
 * DATABASE_MIGRATION_URL, dropped afterwards. Tests that migrate, audit or
 * break a schema use one each, so they never disturb tests running in
 * parallel against growplate_dev. */
#ifndef GP_SCRATCH_H
#define GP_SCRATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "gp_test.h"

typedef struct gp_scratch {
    char db[64];
    char app_url[1024];    /* DATABASE_URL, database replaced */
    char owner_url[1024];  /* DATABASE_MIGRATION_URL, database replaced */
    char admin[1024];      /* GP_PG_ADMIN_CONNINFO with dbname= the scratch database */
} gp_scratch_t;

/* Create database gp_scratch_<tag>_<pid> (dropping a leftover of that name). */
void gp_scratch_create(gp_scratch_t *s, const char *tag);
void gp_scratch_drop(gp_scratch_t *s);

/* gp_test_config(), then point url and migration_url at the scratch
 * database (the strings live in *s). */
void gp_scratch_config(const gp_scratch_t *s, gp_config_t *cfg);

/* Apply the embedded migrations; fails the test on error. */
void gp_scratch_migrate(const gp_scratch_t *s);

/* Connect with a conninfo/URL; fails the test on error. Route notices away. */
PGconn *gp_scratch_connect(const char *conninfo);

/* Run SQL that must succeed (commands or queries); fails the test
 * otherwise. */
void gp_scratch_exec(PGconn *c, const char *sql);

/* Run SQL that must fail with the given SQLSTATE; returns nothing. */
void gp_scratch_exec_fails(PGconn *c, const char *sql, const char *sqlstate);

/* The single value of a one-row query, copied into buf. */
const char *gp_scratch_value(PGconn *c, const char *sql, char *buf, size_t len);

/* The tenant secret of `tenant` expiring at `expires` (unix seconds), made
 * with DATABASE_TENANT_KEY as the library makes it, and the key's id. */
void gp_scratch_tenant_secret(const char *tenant, int64_t expires, char kid[17], char secret[65]);
/* The same with another key (hex). */
void gp_scratch_tenant_secret_with(const char *hexkey, const char *tenant, int64_t expires, char kid[17],
                                   char secret[65]);

/* Publish that secret on c (growplate.tenant_publish); false when the
 * server refused it. */
bool gp_scratch_publish(PGconn *c, const char *tenant, int64_t expires, char secret[65]);

/* Inside a transaction on c: publish a secret for `tenant` valid for five
 * minutes and set it transaction-locally, as the library does. */
void gp_scratch_set_tenant(PGconn *c, const char *tenant);

/* A URL with its database replaced (postgresql://u:p@h:port/DB?opts). */
void gp_scratch_url_with_db(const char *url, const char *db, char *out, size_t len);

#endif
