/* schema_internal.h — shared by migrations, the audit and gen-types; never
 * installed. */
#ifndef GROWPLATE_SCHEMA_INTERNAL_H
#define GROWPLATE_SCHEMA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "growplate/schema.h"
#include "query_internal.h" /* gp__client_error */

/* The migrations compiled in: migrations_embedded.c is generated from
 * migrations/NNNN_name.sql by cmake/embed_migrations.cmake, checksums included
 * (computed by CMake's own SHA-256; a test checks gp__sha256_hex agrees). */
extern const gp_migration_t gp__migrations_embedded[];
extern const size_t gp__migrations_embedded_count;

/* gp_migrate() over an explicit set of migrations in strictly increasing
 * version order (the embedded ones are one such set; tests pass their own).
 * A NULL checksum is computed from the text. */
gp_status_t gp__migrate_with(const gp_config_t *cfg, const gp_migration_t *set, size_t n,
                             const gp_migrate_opts_t *opts, gp_migrate_report_t **out, gp_error_t *err);

/* The same with the bookkeeping table (schema public; a plain identifier
 * the caller validated) and advisory lock key given: the library's own set
 * (builtin: GP_MIGRATIONS_TABLE, GP_MIGRATION_LOCK_KEY, then the tenant
 * keys are installed) or a service's (gp_migrate_set). */
gp_status_t gp__migrate_table(const gp_config_t *cfg, const char *table, int64_t lock_key, bool builtin,
                              const gp_migration_t *set, size_t n, const gp_migrate_opts_t *opts,
                              gp_migrate_report_t **out, gp_error_t *err);

/* Open one libpq connection as the application role (migration == false)
 * or the migration role. On failure returns GP_ERR_CONFIG, GP_ERR_CONNECT,
 * GP_ERR_AUTH, GP_ERR_TIMEOUT or GP_ERR_NOMEM with a redacted message naming
 * the target in err, and *out is NULL. */
gp_status_t gp__pg_connect_single(const gp_db_config_t *db, bool migration, PGconn **out, gp_error_t *err);

/* Run a query that returns rows (text format); on failure fill err from the
 * server's report and leave *out NULL. */
gp_status_t gp__pg_select(PGconn *pg, const char *sql, PGresult **out, gp_error_t *err);

/* Route libpq notices of a tool connection to the log (never stderr). */
void gp__pg_log_notices(PGconn *c, const char *component);

#endif
