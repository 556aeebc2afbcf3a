/* growplate/config.h — typed configuration for PostgreSQL and Redis, from the
 * environment or filled in code; validation and redaction.
 *
 * Ownership: gp_config_t is a plain struct. Strings you put in it yourself
 * stay yours and must outlive every use of the config (the pool and cache
 * copy what they need when they are created). Strings that
 * gp_config_from_env() puts in it are owned by the config and freed by
 * gp_config_release().
 *
 * Thread-safety: a gp_config_t is not synchronised; fill it in one thread,
 * then share it read-only. The functions here keep no global state.
 *
 * Durations are milliseconds. In the environment they may also carry a unit:
 * "250ms", "5s", "2m", "1h" (a bare number is milliseconds).
 */
#ifndef GROWPLATE_CONFIG_H
#define GROWPLATE_CONFIG_H

#include "growplate/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Recommended size of the message buffers passed to the functions below. */
#define GP_ERRBUF_SIZE 2048

typedef struct gp_db_config {
    /* DATABASE_URL: a postgres:// or postgresql:// URL, or a libpq
     * "key=value" conninfo string. NULL = not set. */
    const char *url;
    /* DATABASE_HOST/PORT/NAME/USER/PASSWORD. NULL / 0 = not set. When both
     * the URL and a part are set: a part the URL lacks is added; a part the
     * URL also gives must agree with it, or validation fails (a conflict is
     * an error, never a silent choice). With neither, a PG* variable
     * (PGHOST...) may fill a part (gp_config_from_env); then the defaults
     * are host localhost, port 5432, database growplate_dev (from the
     * environment: only when GROWPLATE_ENV=development, or when something
     * else names the server), and libpq's defaults for the rest. */
    const char *host;
    int port;
    const char *name;
    const char *user;
    const char *password;
    const char *sslmode;          /* DATABASE_SSLMODE; NULL = libpq default ("prefer") */
    const char *application_name; /* DATABASE_APPLICATION_NAME; NULL = "growplate" */
    const char *migration_url;    /* DATABASE_MIGRATION_URL (owner role); NULL = not set */

    int pool_min;               /* DATABASE_POOL_MIN, default 2, 0..max */
    int pool_max;               /* DATABASE_POOL_MAX, default 10, 1..10000 */
    int connect_timeout_ms;     /* DATABASE_TIMEOUT, default 5000 (libpq rounds up to whole seconds, min 2 s) */
    int acquire_timeout_ms;     /* DATABASE_ACQUIRE_TIMEOUT, default 5000, >0: never wait forever */
    int idle_timeout_ms;        /* DATABASE_IDLE_TIMEOUT, default 600000; 0 = never reap idle */
    int max_lifetime_ms;        /* DATABASE_MAX_LIFETIME, default 1800000; 0 = unlimited */
    int statement_timeout_ms;   /* DATABASE_STATEMENT_TIMEOUT, default 0 = none */
    /* DATABASE_QUERY_TIMEOUT, default 0 = none: the client-side deadline of
     * every operation on a pooled connection (a statement, a pipeline, a
     * transaction's BEGIN/COMMIT, the clean-up on release), which holds
     * even when the server cannot answer at all (a frozen or partitioned
     * server cannot enforce DATABASE_STATEMENT_TIMEOUT). When it passes
     * the call fails with GP_ERR_TIMEOUT and the connection is closed.
     * Set it above DATABASE_STATEMENT_TIMEOUT. */
    int query_timeout_ms;
    int validate_after_ms;      /* DATABASE_VALIDATE_AFTER, default 5000: idle longer -> checked before hand-out */
    int leak_threshold_ms;      /* DATABASE_LEAK_THRESHOLD, default 0 = off */

    /* The tenant key (tenant.h, "The verified tenant context"). A secret:
     * never shown, masked in every display. DATABASE_TENANT_KEY: 64 to 128
     * hex digits (32 to 64 random bytes, e.g. `openssl rand -hex 32`); NULL
     * or "" = not set (tenant-scoped calls then fail with GP_ERR_CONFIG).
     * DATABASE_TENANT_KEY_PREVIOUS: the key being rotated out; only
     * `growplate migrate` reads it (it keeps that key installed too). */
    const char *tenant_key;
    const char *tenant_key_previous;
    /* DATABASE_TENANT_KEY_FILE: a file holding the key instead (hex, one
     * line; mode 0600 or stricter, or the configuration is rejected). When
     * it does not exist, tenant_key stays NULL and `growplate migrate`
     * (gp_migrate) generates a key into it (32 random bytes, created with
     * mode 0600) and installs it. Set this or DATABASE_TENANT_KEY, not
     * both. */
    const char *tenant_key_file;
    /* DATABASE_TENANT_TOKEN_TTL, default 120000 (2 min), 10s..1h: a tenant
     * secret is made for a window of this length and stays valid for one
     * more (so between one and two TTLs from when it was first used). */
    int tenant_token_ttl_ms;

    /* Fairness across tenants (pool.h, "Fairness"). DATABASE_TENANT_FAIR,
     * default 1: a free connection goes to the waiting key (tenant id or
     * label) with the least recent service; 0 = first come, first served.
     * DATABASE_TENANT_MAX_SHARE, default 50 (percent of pool_max, 1..100):
     * a key holding that many gets another only when no key holding fewer
     * waits. DATABASE_TENANT_MAX_WAITING, default 0 = 4 x pool_max (at least
     * 16): the most
     * callers one key may have waiting while other keys use the pool; one
     * more gets GP_ERR_BUSY at once. */
    int tenant_fair;
    int tenant_max_share_pct;
    int tenant_max_waiting;

    /* DATABASE_STATEMENT_CACHE, -1..10000: prepared statements kept per
     * connection of this pool (0 = none: every call uses the unnamed
     * statement, as PgBouncer in transaction mode needs); default -1 = the
     * process-wide gp_query_set_statement_cache() value (128). */
    int statement_cache;

    /* DATABASE_POOLER: what stands between the pool and PostgreSQL. NULL or
     * "" (the default): nothing; a connection that turns out to go through
     * a pooler (the backend PID the server reports differs from the one the
     * connection got: PgBouncer makes one up) is refused with GP_ERR_CONFIG,
     * because in PgBouncer's transaction mode named statements and session
     * state cross between clients. "session": a pooler in session mode (a
     * server connection per client connection): allowed, not checked.
     * "transaction": PgBouncer in transaction mode (pool.h, "Through
     * PgBouncer in transaction mode"): unnamed statements only, every unit
     * of work one transaction that is checked for session state before it
     * commits, the statement timeout set per transaction. */
    const char *pooler;

    /* Read routing (pool.h, "Read replicas"). DATABASE_READ_URL: a URL (or
     * conninfo) of one or several hot standbys, with its own credentials,
     * e.g. postgres://app:pw@replica1,replica2/db?target_session_attrs=standby;
     * NULL = no read pool: reads go to the primary. The read pool has the
     * primary pool's sizes and timeouts. DATABASE_READ_MAX_LAG, default
     * 1000 (ms), 0 = no bound: a standby measured further behind than this
     * (or not measured in the last second and unreachable) is not used, and
     * reads go to the primary. */
    const char *read_url;
    int read_max_lag_ms;

    /* DATABASE_PIPELINE_BATCH, 1..256, default 16: the most one-shot calls
     * of different callers sent in one round trip (query.h, "automatic
     * pipelining"); 1 = every one-shot has a round trip of its own. */
    int pipeline_batch;
} gp_db_config_t;

typedef struct gp_redis_config {
    /* REDIS_URL: redis://[[user]:password@]host[:port][/db]. NULL = not set.
     * Same merge/conflict rule as DATABASE_URL against REDIS_HOST/PORT/
     * PASSWORD/DB. Defaults: 127.0.0.1, 6379, db 0, no password. */
    const char *url;
    const char *host;
    int port;                   /* 0 = not set */
    const char *username;       /* REDIS_USERNAME (ACL user); NULL = none */
    const char *password;       /* REDIS_PASSWORD; NULL or "" = none */
    int db;                     /* REDIS_DB, 0..15 by default; -1 = not set */
    const char *key_prefix;     /* REDIS_KEY_PREFIX, default "growplate:" */
    int timeout_ms;             /* REDIS_TIMEOUT: per-command deadline, default 1000 */
    int connect_timeout_ms;     /* REDIS_CONNECT_TIMEOUT, default 1000 */
    int pool_size;              /* REDIS_POOL_SIZE, default 4, 1..1024 */
    /* REDIS_SENTINELS: "host:port,host:port,..." (1 to 16 sentinels; IPv6
     * as [addr]:port); NULL = no Sentinel. With it the cache connects to
     * the master the sentinels name for REDIS_SENTINEL_MASTER (required
     * then), and REDIS_URL/REDIS_HOST/REDIS_PORT must not name a host
     * (REDIS_USERNAME, REDIS_PASSWORD and REDIS_DB still apply, to the
     * master; the sentinels are asked without AUTH). */
    const char *sentinels;
    const char *sentinel_master; /* REDIS_SENTINEL_MASTER: the monitored master's name */
    /* REDIS_CLUSTER_NODES: "host:port,..." (1 to 16 seed nodes of a Redis
     * Cluster); NULL = no cluster. The slot map is read from them; every
     * call goes to the master of its tenant's slot. REDIS_URL, REDIS_HOST,
     * REDIS_PORT and REDIS_SENTINELS must not be set with it, REDIS_DB only
     * as 0. */
    const char *cluster_nodes;
    /* TLS (OpenSSL under the cache's own socket I/O), for the node, the
     * master and the sentinels alike. REDIS_TLS: 1 = on, 0 = off, -1 = not
     * set (on when REDIS_URL is rediss://, else off; REDIS_TLS=0 with
     * rediss:// is a conflict). The server's certificate is always
     * verified: against REDIS_TLS_CA_FILE (PEM) or the system's CAs, for
     * REDIS_TLS_SERVER_NAME or else the host connected to (a name or an IP
     * address). REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE (PEM, both or
     * neither): a client certificate for mutual TLS. */
    int tls;
    const char *tls_ca_file;
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_server_name;
} gp_redis_config_t;

typedef struct gp_config {
    gp_db_config_t db;
    gp_redis_config_t redis;
    void *owned_;               /* private: strings owned by the config */
} gp_config_t;

/* Fill *cfg with the documented defaults (no URL, no parts). Never fails. */
GP_EXPORT void gp_config_init(gp_config_t *cfg);

/* gp_config_init(), then read every GrowPlate variable from the process
 * environment, then gp_config_validate(). On failure, `err` receives every
 * problem found, one per line ("DATABASE_POOL_MAX: 'abc' is not a whole
 * number; expected an integer from 1 to 10000"), secrets redacted, and *cfg
 * is still valid to release. Returns GP_OK, GP_ERR_CONFIG or GP_ERR_NOMEM.
 * *cfg need not be initialised (what it held is overwritten, not freed:
 * release a filled config before filling it again). Always call
 * gp_config_release() afterwards. Reads the environment with
 * getenv(): do not modify the environment concurrently.
 *
 * GROWPLATE_ENV: development, test, staging or production; unset = not
 * development. When nothing names the PostgreSQL server (none of
 * DATABASE_URL, DATABASE_HOST, DATABASE_PORT, DATABASE_NAME, PGHOST, PGPORT,
 * PGDATABASE) the built-in default localhost:5432/growplate_dev is used only
 * with GROWPLATE_ENV=development; otherwise this fails with GP_ERR_CONFIG
 * ("DATABASE_URL: is not set, ..."), so a deployment that lost its
 * DATABASE_URL never dials a local server by accident.
 *
 * libpq's own variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD,
 * PGSSLMODE, PGAPPNAME, PGOPTIONS, PGPASSFILE, PGSERVICE, PGSSL*, ...),
 * which libpq reads for any parameter a connection string leaves out, are
 * read too, and growplate's own settings win: a PG* variable is used only
 * for what DATABASE_URL and the DATABASE_* variables leave out (and before
 * the built-in defaults above).
 * - One with a DATABASE_* counterpart (PGHOST, PGPORT, PGDATABASE, PGUSER,
 *   PGPASSWORD, PGSSLMODE, PGAPPNAME) then fills that field of *cfg (the
 *   config owns the string), is checked like the DATABASE_* variable
 *   (messages name the PG* variable) and is passed to libpq explicitly;
 *   gp_config_describe() shows "(from PGHOST)".
 * - The others are left to libpq, which reads them from the process
 *   environment itself; PGCONNECT_TIMEOUT is never used (growplate passes
 *   DATABASE_TIMEOUT), and PGOPTIONS is kept when DATABASE_STATEMENT_TIMEOUT
 *   makes growplate pass options itself.
 * - When a service is named (PGSERVICE, or service= in DATABASE_URL),
 *   none is copied: libpq applies the service file, then the PG*
 *   variables, to what growplate's settings leave out.
 * - Refused (GP_ERR_CONFIG), as they would silently move the connection:
 *   PGHOSTADDR unless DATABASE_URL gives hostaddr (libpq would connect to
 *   that address instead of the host growplate names), PGSERVICE without
 *   DATABASE_URL (use DATABASE_URL=service=NAME), and a PGDATABASE that is
 *   a connection string (growplate would expand it, libpq never does from
 *   the environment). A PG* variable that would be used but is set and
 *   empty is refused too, except PGPASSWORD (no password).
 * gp_config_describe() and gp_config_describe_json() list every PG*
 * variable that is set with what was done with it, PGPASSWORD masked.
 * DATABASE_MIGRATION_URL is handed to libpq as it is: libpq fills what it
 * leaves out from the same PG* variables. */
GP_EXPORT gp_status_t gp_config_from_env(gp_config_t *cfg, char *err, size_t errlen);

/* The same, reading variables through `lookup` (return NULL for unset; the
 * returned string need only live until the next call). For tests, and for
 * services that keep their settings elsewhere. GROWPLATE_ENV and the PG*
 * variables are asked of the lookup too, so that it decides what the
 * configuration shows and passes explicitly; libpq itself still reads the
 * process environment for the parameters without a DATABASE_* counterpart
 * (PGOPTIONS, PGPASSFILE, PGSSLROOTCERT, ...), so a lookup that is not the
 * environment should return the process's values for those (or the process
 * should not set them). */
typedef const char *(*gp_config_lookup_fn)(void *userdata, const char *name);
GP_EXPORT gp_status_t gp_config_from_lookup(gp_config_t *cfg, gp_config_lookup_fn lookup,
                                            void *userdata, char *err, size_t errlen);

/* Check every field: ranges, pool_min <= pool_max, sslmode, URL syntax and
 * scheme (PostgreSQL URLs and conninfo are parsed by libpq itself), and
 * conflicts between a URL and its parts. Messages name the variable, what
 * is wrong and what is accepted, one per line, secrets redacted. Returns
 * GP_OK or GP_ERR_CONFIG. */
GP_EXPORT gp_status_t gp_config_validate(const gp_config_t *cfg, char *err, size_t errlen);

/* Render the effective configuration as "NAME value" lines, passwords
 * masked as "********" (also inside URLs), a value taken from a PG*
 * variable marked "(from PGHOST)", then GROWPLATE_ENV, then (when any is
 * set) the PG* variables with what was done with each, then the effective
 * targets. *out is malloc'd; free() it. Returns GP_OK or GP_ERR_NOMEM. */
GP_EXPORT gp_status_t gp_config_describe(const gp_config_t *cfg, char **out);

/* The same as a JSON object: keys are the variable names (null = unset),
 * then "GROWPLATE_ENV", "effective" {"postgres","redis"}, "sources" (a
 * setting filled from a PG* variable: {"DATABASE_HOST":"PGHOST"}) and
 * "pg_environment" (every PG* variable set: {"PGHOST":{"value","used",
 * "note"}}, PGPASSWORD's value "********"). */
GP_EXPORT gp_status_t gp_config_describe_json(const gp_config_t *cfg, char **out);

/* Free the strings that gp_config_from_env/_lookup allocated and reset
 * *cfg to defaults. NULL is accepted. */
GP_EXPORT void gp_config_release(gp_config_t *cfg);

/* The redacted effective PostgreSQL target, e.g.
 * "postgresql://growplate_app:********@127.0.0.1:5432/growplate_dev".
 * Writes into out (truncated to outlen) and returns out. */
GP_EXPORT char *gp_config_db_display(const gp_db_config_t *db, char *out, size_t outlen);

/* The redacted effective Redis target, e.g. "redis://127.0.0.1:6379/0". */
GP_EXPORT char *gp_config_redis_display(const gp_redis_config_t *redis, char *out, size_t outlen);

#ifdef __cplusplus
}
#endif
#endif
