/* growplate/schema.h — GrowPlate's schema: versioned migrations shipped in
 * the library, and the tenant-isolation audit.
 *
 * Row types: gp_gen_types() generates growplate/rows.h and src/rows.c from
 * the migrated catalog.
 *
 * Each opens its own single libpq connection (never the pool): migrations
 * as the schema owner (DATABASE_MIGRATION_URL), the audit and gen-types as
 * the application role (DATABASE_URL).
 *
 * Thread-safety: every function may be called from any thread; calls share
 * no state. Reports are immutable once returned and may cross threads.
 */
#ifndef GROWPLATE_SCHEMA_H
#define GROWPLATE_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "growplate/common.h"
#include "growplate/config.h"
#include "growplate/tenant_id.h" /* GP_TENANT_SETTING */

#ifdef __cplusplus
extern "C" {
#endif

/* The session advisory lock key that serialises migrators
 * (pg_advisory_lock(GP_MIGRATION_LOCK_KEY); "growplat" in ASCII). */
#define GP_MIGRATION_LOCK_KEY 7454142892029534580LL

/* The table in which applied migrations are recorded (schema public). */
#define GP_MIGRATIONS_TABLE "growplate_schema_migrations"

/* ---- the migrations compiled into this build ------------------------------ */

typedef struct gp_migration {
    int version;           /* 1, 2, ... from the file name NNNN_name.sql */
    const char *name;      /* "core_schema" */
    const char *sql;       /* the file's text */
    size_t sql_len;
    const char *checksum;  /* lowercase hex SHA-256 of the text (64 chars) */
} gp_migration_t;

/* How many migrations this build ships, and the i-th one in version order
 * (NULL when i is out of range). Static data: never free it. */
GP_EXPORT size_t gp_migration_count(void);
GP_EXPORT const gp_migration_t *gp_migration_get(size_t i);

/* ---- gp_migrate --------------------------------------------------------------- */

typedef void (*gp_progress_fn)(void *userdata, const char *line);

typedef struct gp_migrate_opts {
    /* Report what would be applied; change nothing (the bookkeeping table
     * is not even created). Checksums of applied migrations are still
     * verified. */
    bool dry_run;
    /* Longest wait for another migrator's advisory lock; 0 = 60000 ms. On
     * expiry gp_migrate fails with GP_ERR_TIMEOUT. */
    int lock_timeout_ms;
    /* Called with one human-readable line per step ("applying 0001
     * core_schema", "waiting for another migrator"), from the calling
     * thread. NULL = silent. */
    gp_progress_fn progress;
    void *progress_userdata;
} gp_migrate_opts_t;

typedef enum gp_migration_state {
    GP_MIGRATION_APPLIED_BEFORE = 0, /* already recorded, checksum verified */
    GP_MIGRATION_APPLIED_NOW = 1,    /* applied by this run */
    GP_MIGRATION_PENDING = 2,        /* would be applied (dry run), or not reached after a failure */
    GP_MIGRATION_FAILED = 3          /* this run tried it and rolled it back */
} gp_migration_state_t;

typedef struct gp_migrate_entry {
    int version;
    char name[64];
    char checksum[65];
    gp_migration_state_t state;
    int64_t duration_us;             /* for APPLIED_NOW and FAILED */
} gp_migrate_entry_t;

typedef struct gp_migrate_report {
    size_t count;                    /* entries, one per migration in this build, in order */
    gp_migrate_entry_t *entries;
    size_t applied;                  /* APPLIED_NOW entries */
    size_t pending;                  /* PENDING entries */
    bool dry_run;
    bool waited_for_lock;            /* another migrator held the lock when we started */
    /* Tenant keys (migration 0004, DATABASE_TENANT_KEY[_PREVIOUS]): how
     * many are installed after the run, how many this run added, and how
     * many it removed (with the tenant secrets published under them). */
    int tenant_keys;
    int tenant_keys_installed;
    int tenant_keys_removed;
} gp_migrate_report_t;

/* Bring the database up to date: connect as DATABASE_MIGRATION_URL (one
 * libpq connection), take a session advisory lock (a second migrator waits
 * for the first, then finds nothing to do), create GP_MIGRATIONS_TABLE if
 * needed, verify the checksum of every applied migration, then apply each
 * pending one in its own transaction together with its bookkeeping row.
 * Idempotent: a second run applies nothing. Then, in one more transaction,
 * install the tenant keys: the HMAC pads of DATABASE_TENANT_KEY and of
 * DATABASE_TENANT_KEY_PREVIOUS (sent as parameters), and remove every other
 * key with the tenant secrets published under it (tenant.h, "Rotating the
 * tenant key"). Without DATABASE_TENANT_KEY the keys are left as they are,
 * unless DATABASE_TENANT_KEY_FILE names a file that does not exist: then a
 * new key (32 bytes from getrandom) is written there (mode 0600, never over
 * an existing file) and installed.
 *
 * Errors: GP_ERR_CONFIG (no migration URL; err->message says which
 * variable), GP_ERR_CONNECT / GP_ERR_AUTH, GP_ERR_TIMEOUT (lock wait),
 * GP_ERR_MIGRATION when an applied migration changed, when the database has
 * a version this build does not know, or when a migration failed: the
 * message names the version (and err->sqlstate etc. carry the server's
 * error); earlier migrations of the run stay applied, the failing one is
 * rolled back and later ones are not attempted. GP_ERR_IO when the key
 * file cannot be created. GP_ERR_NOMEM.
 *
 * `opts` may be NULL (defaults). `out` may be NULL; otherwise *out receives
 * a report (also on GP_ERR_MIGRATION, when it could be built; NULL
 * otherwise) to free with gp_migrate_report_free(). `err` may be NULL. */
GP_EXPORT gp_status_t gp_migrate(const gp_config_t *cfg, const gp_migrate_opts_t *opts,
                                 gp_migrate_report_t **out, gp_error_t *err);

/* Free a report. NULL is accepted. */
GP_EXPORT void gp_migrate_report_free(gp_migrate_report_t *report);

/* A lowercase name for a state ("applied", "applied_now", "pending", "failed"). */
GP_EXPORT const char *gp_migration_state_name(gp_migration_state_t state);

/* ---- the service's own migrations ----------------------------------------------
 * A service versions its own tables with a set of migrations it ships, kept
 * apart from the library's: its own bookkeeping table and advisory lock
 * key, the same rules (each migration in its own transaction with its
 * bookkeeping row, SHA-256 checksums verified, strictly increasing
 * versions, nothing applied out of order, a recorded version the set does
 * not have refused). Apply the library's set first (gp_migrate), then the
 * service's; service migrations may reference the library's tables. Like
 * gp_migrate it connects as DATABASE_MIGRATION_URL. */

typedef struct gp_migration_set {
    /* The bookkeeping table, created in schema public when missing: a plain
     * identifier ([a-z_][a-z0-9_]*, at most 63 bytes), not GP_MIGRATIONS_TABLE. */
    const char *table;
    /* The advisory lock key serialising this set's migrators; 0 = derived
     * from the table (gp_migration_lock_key_for). Never GP_MIGRATION_LOCK_KEY. */
    int64_t lock_key;
    /* The migrations, in strictly increasing version order; a NULL
     * checksum is computed from the text (as gp_migration_set_load does). */
    const gp_migration_t *migrations;
    size_t count;
} gp_migration_set_t;

/* The lock key derived from a bookkeeping table's name: the first 8 bytes
 * of SHA-256("growplate migration lock " + table), big-endian. */
GP_EXPORT int64_t gp_migration_lock_key_for(const char *table);

/* gp_migrate() for a service's set. Report and errors as gp_migrate (the
 * tenant keys are neither installed nor counted); GP_ERR_INVALID for a
 * table name or lock key that is not allowed (the message says why), and
 * nothing is sent. Safe from any thread. */
GP_EXPORT gp_status_t gp_migrate_set(const gp_config_t *cfg, const gp_migration_set_t *set,
                                     const gp_migrate_opts_t *opts, gp_migrate_report_t **out, gp_error_t *err);

/* Read a directory of migration files named NNNN_name.sql (four digits
 * from 0001, then lowercase letters, digits and '_'; other files are
 * ignored) into *out, sorted by version, texts and checksums included.
 * Errors: GP_ERR_IO (the directory or a file cannot be read: the path and
 * the reason), GP_ERR_INVALID (a version used twice, 0000, a name too
 * long, a file that is not UTF-8 text or is empty), GP_ERR_NOMEM. Free
 * with gp_migration_set_free(*out, *count) (NULL accepted). */
GP_EXPORT gp_status_t gp_migration_set_load(const char *dir, gp_migration_t **out, size_t *count, gp_error_t *err);
GP_EXPORT void gp_migration_set_free(gp_migration_t *migrations, size_t count);

/* ---- gp_audit ------------------------------------------------------------------ */

/* Kinds of findings; values are only ever appended. */
typedef enum gp_audit_kind {
    GP_AUDIT_RLS_DISABLED = 1,      /* a tenant table without ENABLE ROW LEVEL SECURITY */
    GP_AUDIT_RLS_NOT_FORCED = 2,    /* ... without FORCE ROW LEVEL SECURITY */
    GP_AUDIT_NO_TENANT_POLICY = 3,  /* a command (SELECT/INSERT/UPDATE/DELETE) with no policy comparing with the verified tenant context */
    GP_AUDIT_LOOSE_POLICY = 4,      /* a permissive policy for the app that is not that comparison (it ORs away isolation) */
    GP_AUDIT_TENANT_ID_NULLABLE = 5,/* tenant_id is not NOT NULL */
    GP_AUDIT_KEY_WITHOUT_TENANT = 6,/* a primary key or unique constraint/index that omits tenant_id */
    GP_AUDIT_FK_WITHOUT_TENANT = 7, /* a foreign key that omits tenant_id or pairs it with another column */
    GP_AUDIT_ROLE_SUPERUSER = 8,    /* the application role is a superuser */
    GP_AUDIT_ROLE_BYPASSRLS = 9,    /* the application role has BYPASSRLS */
    GP_AUDIT_ROLE_OWNS_TABLE = 10,  /* the application role owns (or is a member of the owner of) a tenant table */
    GP_AUDIT_VIEW_NOT_INVOKER = 11, /* a view over tenant tables that is not security_invoker, or a materialized view over them */
    GP_AUDIT_ROLE_MEMBER_BYPASS = 12,     /* the application role is a member (through any chain) of a superuser or BYPASSRLS role */
    GP_AUDIT_DEFINER_WITHOUT_TENANT = 13, /* an executable SECURITY DEFINER function reading tenant tables unconfined, not declared cross-tenant */
    GP_AUDIT_UNSAFE_TABLE_PRIVILEGE = 14, /* TRUNCATE, TRIGGER or REFERENCES on a tenant table for the application role */
    GP_AUDIT_TABLE_WITHOUT_RLS = 15,      /* a table the application role can read or write, without RLS, not declared shared */
    GP_AUDIT_TEMPORARY_GRANTED = 16,      /* the application role may create temporary objects in the database */
    GP_AUDIT_FORGEABLE_CONTEXT = 17,      /* a tenant table's policy for the app that reads a setting (current_setting), e.g. the old app.tenant_id */
    GP_AUDIT_TENANT_CONTEXT_ALTERED = 18, /* the verified tenant context (growplate.tenant_context, its keys and anchors) is not as migration 0004 shipped it */
    GP_AUDIT_KIND_COUNT_            /* not a kind; keep last */
} gp_audit_kind_t;

typedef struct gp_audit_finding {
    gp_audit_kind_t kind;
    char *object;    /* "public.users", "public.users.users_email_key", "public.f(text)", a role's or the database's name */
    char *message;   /* one English sentence saying what is wrong and why it matters */
} gp_audit_finding_t;

typedef struct gp_audit_report {
    char role[64];                /* the role audited (current_user of DATABASE_URL) */
    size_t tables_checked;        /* tables with a tenant_id column */
    size_t count;                 /* findings */
    gp_audit_finding_t *findings; /* sorted by kind, then object */
} gp_audit_report_t;

/* Audit tenant isolation as the application role (DATABASE_URL; one libpq
 * connection, one read-only transaction): every table with a tenant_id
 * column, in every schema but the system ones, must have tenant_id NOT
 * NULL, row-level security ENABLEd and FORCEd, a policy comparing tenant_id
 * with the verified tenant context (GP_TENANT_CONTEXT_VIEW) for every
 * command and no permissive policy for the application that does anything
 * else; every primary key, unique constraint/index and foreign key of such
 * a table must include tenant_id (a foreign key must pair it with the
 * referenced table's tenant_id); the application role must not be a
 * superuser, have BYPASSRLS, be a member (through any chain) of a role that
 * is or has, or own tenant tables, nor hold TRUNCATE, TRIGGER or REFERENCES
 * on them, nor TEMPORARY on the database; views over tenant tables must be
 * security_invoker (materialized views over them always leak); a SECURITY
 * DEFINER function it may EXECUTE must not read a tenant table, as an owner
 * row-level security does not confine to the tenant, without reading the
 * verified context (its body mentions growplate.tenant_context or calls
 * growplate_tenant(); reading GP_TENANT_SETTING does not count), unless its
 * COMMENT declares it "growplate:cross-tenant <reason>"; and a table it can
 * read or write without row-level security (and no tenant_id) must be
 * declared "growplate:shared <reason>" in its COMMENT. Privileges count
 * whether held directly, through PUBLIC or through any role the application
 * role can SET ROLE to.
 *
 * A policy scopes by the tenant only in one shape, compared as text with
 * what pg_get_expr prints: `tenant_id = (SELECT tenant_context.tenant FROM
 * growplate.tenant_context)` (id for the tenants table), as USING and WITH
 * CHECK (or USING alone, which then serves as both), as migration 0004
 * writes it. A policy of a tenant table for the application role that reads
 * a setting (any current_setting call, in USING or WITH CHECK: the
 * forgeable `tenant_id = (SELECT NULLIF(current_setting('app.tenant_id',
 * true), '')::uuid)` of the schemas before 0004, or any other; SQL on the
 * connection can set them) is GP_AUDIT_FORGEABLE_CONTEXT, and is no tenant
 * scoping (so no_tenant_policy or loose_policy may be reported for its table
 * as well).
 *
 * The comparison names the view by name only, so
 * GP_AUDIT_TENANT_CONTEXT_ALTERED reports when what the name stands for is
 * not what migration 0004 shipped: there is no growplate.tenant_context
 * while there are tenant tables; it is not a view, not security_barrier, or
 * not defined as shipped (pg_get_viewdef); the application role is (a member
 * of) the owner of that view, of growplate_private.tenant_keys or
 * .tenant_anchors, of schema growplate or growplate_private, or of
 * growplate.tenant_publish or public.growplate_tenant(); or it holds any
 * privilege on the key or anchor table, any but SELECT on the view, or
 * CREATE on either schema. One finding per cause; the object is the view,
 * table, schema or function. (The key and anchor tables are therefore not
 * reported as GP_AUDIT_TABLE_WITHOUT_RLS.)
 *
 * Function bodies and policy expressions are matched as text: a setting
 * read other than through current_setting (pg_settings, say), or the view
 * spelled with quotes or spaces ("growplate".tenant_context), is not
 * recognised.
 *
 * Returns GP_OK whether or not there are findings (look at (*out)->count);
 * GP_ERR_CONFIG, GP_ERR_CONNECT, GP_ERR_AUTH, GP_ERR_SERVER, GP_ERR_NOMEM
 * otherwise (*out is then NULL). Free *out with gp_audit_report_free(). */
GP_EXPORT gp_status_t gp_audit(const gp_config_t *cfg, gp_audit_report_t **out, gp_error_t *err);

/* Free a report (and every finding's strings). NULL is accepted. */
GP_EXPORT void gp_audit_report_free(gp_audit_report_t *report);

/* A stable lowercase name for a kind ("rls_disabled", "key_without_tenant",
 * ...), as used in `growplate audit --json`. */
GP_EXPORT const char *gp_audit_kind_name(gp_audit_kind_t kind);

/* ---- gp_gen_types ----------------------------------------------------------------- */

/* Generate the C row types of the migrated schema (what `growplate
 * gen-types` writes to include/growplate/rows.h and src/rows.c): read, as
 * the application role (DATABASE_URL; one libpq connection), every enum
 * type and every table of schema public except GP_MIGRATIONS_TABLE from
 * pg_catalog. The text depends only on the catalog (no dates, no paths), so
 * the committed files can be compared byte for byte with a fresh run.
 *
 * *header and *source receive malloc'd NUL-terminated text: free() both.
 * Errors (both NULL then): GP_ERR_TYPE when a column has a type with no C
 * mapping or a name that is not a C identifier (the message names the
 * table and column), GP_ERR_CONFIG, GP_ERR_CONNECT, GP_ERR_AUTH,
 * GP_ERR_SERVER, GP_ERR_NOMEM, GP_ERR_INVALID. */
GP_EXPORT gp_status_t gp_gen_types(const gp_config_t *cfg, char **header, char **source, gp_error_t *err);

/* Which tables gp_gen_types_for() generates, and for which files;
 * zero-initialise ({0}) for gp_gen_types()'s output. */
typedef struct gp_gen_types_opts {
    /* Only these tables (exact names; each must exist: GP_ERR_NOT_FOUND)
     * and/or only tables whose name starts with `prefix` (NULL or "": no
     * prefix). Neither: every table of schema public. Only the enum types
     * the selected tables use are generated. */
    const char *const *tables;
    size_t n_tables;
    const char *prefix;
    /* The path the generated source includes the header by ("menu_svc/rows.h"),
     * named at the top and turned into the include guard; NULL: the
     * library's own files (growplate/rows.h). The source then includes
     * <growplate/rows_support.h>: link it with libgrowplate. */
    const char *include;
} gp_gen_types_opts_t;

/* gp_gen_types() for a service's own tables: the row types of the
 * selected tables only, into files of the service's (so they never clash
 * with the shipped growplate/rows.h). opts NULL: as gp_gen_types(). Errors:
 * as gp_gen_types, GP_ERR_NOT_FOUND for a named table that does not exist,
 * GP_ERR_INVALID for n_tables without tables. */
GP_EXPORT gp_status_t gp_gen_types_for(const gp_config_t *cfg, const gp_gen_types_opts_t *opts, char **header,
                                       char **source, gp_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
