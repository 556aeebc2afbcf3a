/* migrate.c — versioned SQL migrations: compiled into the library, applied
 * by one migrator at a time (session advisory lock), each in its own
 * transaction together with its bookkeeping row, checksums verified. */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/random.h>
#include <fcntl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pool_internal.h"
#include "schema_internal.h"

#define DEFAULT_LOCK_TIMEOUT_MS 60000

size_t gp_migration_count(void) { return gp__migrations_embedded_count; }

const gp_migration_t *gp_migration_get(size_t i)
{
    return i < gp__migrations_embedded_count ? &gp__migrations_embedded[i] : NULL;
}

const char *gp_migration_state_name(gp_migration_state_t state)
{
    switch (state) {
    case GP_MIGRATION_APPLIED_BEFORE: return "applied";
    case GP_MIGRATION_APPLIED_NOW: return "applied_now";
    case GP_MIGRATION_PENDING: return "pending";
    case GP_MIGRATION_FAILED: return "failed";
    }
    return "unknown";
}

void gp_migrate_report_free(gp_migrate_report_t *report)
{
    if (!report)
        return;
    free(report->entries);
    free(report);
}

gp_status_t gp_migrate(const gp_config_t *cfg, const gp_migrate_opts_t *opts, gp_migrate_report_t **out,
                       gp_error_t *err)
{
    return gp__migrate_with(cfg, gp__migrations_embedded, gp__migrations_embedded_count, opts, out, err);
}

gp_status_t gp__migrate_with(const gp_config_t *cfg, const gp_migration_t *set, size_t n,
                             const gp_migrate_opts_t *opts, gp_migrate_report_t **out, gp_error_t *err)
{
    return gp__migrate_table(cfg, GP_MIGRATIONS_TABLE, GP_MIGRATION_LOCK_KEY, true, set, n, opts, out, err);
}

typedef struct run {
    PGconn *pg;
    const char *table;  /* the bookkeeping table in schema public (a validated identifier) */
    int64_t lock_key;
    bool builtin;       /* the library's own set: the tenant keys are installed after it */
    const gp_migrate_opts_t *opts;
    gp_migrate_report_t *rep;
    gp_error_t *err; /* never NULL */
} run_t;

static void progress(const run_t *r, const char *fmt, ...) GP__PRINTF(2, 3);
static void progress(const run_t *r, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    gp__log(GP_LOG_INFO, "migrate", "%s", line);
    if (r->opts && r->opts->progress)
        r->opts->progress(r->opts->progress_userdata, line);
}

/* Run one command; on failure fill r->err from the server's report, with
 * `what` (and the server's message) in the message. */
static gp_status_t exec_ok(run_t *r, const char *sql, int nparams, const char *const *params, PGresult **keep,
                           const char *what)
{
    PGresult *res = nparams ? PQexecParams(r->pg, sql, nparams, NULL, params, NULL, NULL, 0) : PQexec(r->pg, sql);
    ExecStatusType s = PQresultStatus(res);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
        if (keep)
            *keep = res;
        else
            PQclear(res);
        return GP_OK;
    }
    gp_error_t *e = r->err;
    gp_status_t st = gp__error_from_pg(r->pg, res, e);
    PQclear(res);
    char msg[sizeof e->message];
    snprintf(msg, sizeof msg, "%s", e->message);
    snprintf(e->message, sizeof e->message, "%s: %s", what, msg);
    return st;
}

static gp_status_t take_lock(run_t *r)
{
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)r->lock_key);
    const char *params[1] = {key};
    PGresult *res = NULL;
    gp_status_t st = exec_ok(r, "SELECT pg_catalog.pg_try_advisory_lock($1::pg_catalog.int8)", 1, params, &res,
                             "taking the migration lock");
    if (st != GP_OK)
        return st;
    bool got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (got)
        return GP_OK;
    r->rep->waited_for_lock = true;
    int ms = r->opts && r->opts->lock_timeout_ms > 0 ? r->opts->lock_timeout_ms : DEFAULT_LOCK_TIMEOUT_MS;
    progress(r, "waiting for another migrator (up to %d ms)", ms);
    char set[64];
    snprintf(set, sizeof set, "SET lock_timeout = %d", ms);
    if ((st = exec_ok(r, set, 0, NULL, NULL, "setting lock_timeout")) != GP_OK)
        return st;
    st = exec_ok(r, "SELECT pg_catalog.pg_advisory_lock($1::pg_catalog.int8)", 1, params, NULL,
                 "waiting for the migration lock");
    if (st != GP_OK) {
        if (strcmp(r->err->sqlstate, "55P03") == 0) {
            snprintf(r->err->message, sizeof r->err->message,
                     "another migrator held the migration lock for more than %d ms", ms);
            r->err->status = GP_ERR_TIMEOUT;
        }
        return r->err->status;
    }
    return exec_ok(r, "RESET lock_timeout", 0, NULL, NULL, "resetting lock_timeout");
}

static gp_status_t migration_error(run_t *r, const char *fmt, ...) GP__PRINTF(2, 3);
static gp_status_t migration_error(run_t *r, const char *fmt, ...)
{
    gp_error_clear(r->err);
    r->err->status = GP_ERR_MIGRATION;
    r->err->klass = GP_ECLASS_CLIENT;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err->message, sizeof r->err->message, fmt, ap);
    va_end(ap);
    return GP_ERR_MIGRATION;
}

static gp_migrate_entry_t *find_entry(gp_migrate_report_t *rep, int version)
{
    for (size_t i = 0; i < rep->count; i++)
        if (rep->entries[i].version == version)
            return &rep->entries[i];
    return NULL;
}

/* Compare what the database recorded with this build's set. */
static gp_status_t verify_applied(run_t *r)
{
    PGresult *res = NULL;
    char sql[160], what[96];
    snprintf(sql, sizeof sql, "SELECT version, name, checksum FROM public.\"%s\" ORDER BY version", r->table);
    snprintf(what, sizeof what, "reading %s", r->table);
    gp_status_t st = exec_ok(r, sql, 0, NULL, &res, what);
    if (st != GP_OK)
        return st;
    int max_applied = 0;
    for (int i = 0; i < PQntuples(res) && st == GP_OK; i++) {
        int v = atoi(PQgetvalue(res, i, 0));
        const char *name = PQgetvalue(res, i, 1), *sum = PQgetvalue(res, i, 2);
        gp_migrate_entry_t *e = find_entry(r->rep, v);
        if (!e && r->builtin)
            st = migration_error(r, "the database has migration %04d (%s), which this build does not ship: "
                                    "run a newer growplate", v, name);
        else if (!e)
            st = migration_error(r, "%s records migration %04d (%s), which this migration set does not have: "
                                    "a file removed or renamed, or the wrong set for this table", r->table, v, name);
        else if (strcmp(e->checksum, sum) != 0)
            st = migration_error(r, "migration %04d (%s) was changed after it was applied: the database "
                                    "recorded checksum %.12s..., this build has %.12s...; never edit an "
                                    "applied migration, add a new one", v, e->name, sum, e->checksum);
        else
            e->state = GP_MIGRATION_APPLIED_BEFORE;
        if (v > max_applied)
            max_applied = v;
    }
    PQclear(res);
    for (size_t i = 0; i < r->rep->count && st == GP_OK; i++) {
        const gp_migrate_entry_t *e = &r->rep->entries[i];
        if (e->state == GP_MIGRATION_PENDING && e->version < max_applied)
            st = migration_error(r, "migration %04d (%s) is pending but the later migration %04d is already "
                                    "applied; refusing to apply migrations out of order", e->version, e->name,
                                 max_applied);
    }
    return st;
}

static gp_status_t apply_one(run_t *r, const gp_migration_t *m, gp_migrate_entry_t *e)
{
    progress(r, "applying %04d %s", m->version, m->name);
    int64_t t0 = gp__now_ns();
    char what[128];
    snprintf(what, sizeof what, "migration %04d (%s) failed", m->version, m->name);
    gp_status_t st = exec_ok(r, "BEGIN", 0, NULL, NULL, what);
    if (st == GP_OK)
        st = exec_ok(r, m->sql, 0, NULL, NULL, what);
    if (st == GP_OK && PQtransactionStatus(r->pg) != PQTRANS_INTRANS)
        st = migration_error(r, "migration %04d (%s) ended the transaction itself; migrations must not "
                                "contain BEGIN, COMMIT or ROLLBACK (each one runs in its own transaction)",
                             m->version, m->name);
    if (st == GP_OK) {
        char ver[16], ms[24];
        snprintf(ver, sizeof ver, "%d", m->version);
        snprintf(ms, sizeof ms, "%" PRId64, (gp__now_ns() - t0) / 1000000);
        const char *params[4] = {ver, m->name, e->checksum, ms};
        char sql[200];
        snprintf(sql, sizeof sql, "INSERT INTO public.\"%s\" (version, name, checksum, execution_ms) "
                 "VALUES ($1::pg_catalog.int4, $2, $3, $4::pg_catalog.int4)", r->table);
        st = exec_ok(r, sql, 4, params, NULL, what);
    }
    if (st == GP_OK)
        st = exec_ok(r, "COMMIT", 0, NULL, NULL, what);
    e->duration_us = (gp__now_ns() - t0) / 1000;
    if (st != GP_OK) {
        if (PQtransactionStatus(r->pg) == PQTRANS_INERROR || PQtransactionStatus(r->pg) == PQTRANS_INTRANS)
            PQclear(PQexec(r->pg, "ROLLBACK"));
        e->state = GP_MIGRATION_FAILED;
        if (r->err->status != GP_ERR_TIMEOUT && r->err->status != GP_ERR_CONNECT)
            r->err->status = GP_ERR_MIGRATION;
        progress(r, "failed %04d %s", m->version, m->name);
        return r->err->status;
    }
    e->state = GP_MIGRATION_APPLIED_NOW;
    r->rep->applied++;
    r->rep->pending--;
    progress(r, "applied %04d %s in %.1f ms", m->version, m->name, (double)e->duration_us / 1000.0);
    return GP_OK;
}

static gp_status_t run_locked(run_t *r, const gp_migration_t *set, size_t n)
{
    gp_status_t st = take_lock(r);
    if (st != GP_OK)
        return st;
    PGresult *res = NULL;
    char sql[400], what[96];
    snprintf(sql, sizeof sql, "SELECT pg_catalog.to_regclass('public.\"%s\"') IS NOT NULL", r->table);
    snprintf(what, sizeof what, "looking for %s", r->table);
    st = exec_ok(r, sql, 0, NULL, &res, what);
    if (st != GP_OK)
        return st;
    bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!exists && !r->rep->dry_run) {
        snprintf(sql, sizeof sql,
                 "CREATE TABLE public.\"%s\" ("
                 " version pg_catalog.int4 PRIMARY KEY CHECK (version > 0),"
                 " name pg_catalog.text NOT NULL,"
                 " checksum pg_catalog.text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),"
                 " applied_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),"
                 " applied_by pg_catalog.text NOT NULL DEFAULT current_user,"
                 " execution_ms pg_catalog.int4 NOT NULL)", r->table);
        snprintf(what, sizeof what, "creating %s", r->table);
        st = exec_ok(r, sql, 0, NULL, NULL, what);
        if (st != GP_OK)
            return st;
        exists = true;
    }
    if (exists && (st = verify_applied(r)) != GP_OK)
        return st;
    if (r->rep->dry_run) {
        for (size_t i = 0; i < n; i++)
            if (r->rep->entries[i].state == GP_MIGRATION_PENDING)
                progress(r, "would apply %04d %s", set[i].version, set[i].name);
        return GP_OK;
    }
    for (size_t i = 0; i < n; i++)
        if (r->rep->entries[i].state == GP_MIGRATION_PENDING && (st = apply_one(r, &set[i], &r->rep->entries[i])) != GP_OK)
            return st;
    if (r->rep->applied == 0)
        progress(r, "nothing to do: all %zu migrations are applied", n);
    return GP_OK;
}

/* ---- tenant keys -------------------------------------------------------------------- */

/* Install the pads of DATABASE_TENANT_KEY and DATABASE_TENANT_KEY_PREVIOUS
 * in growplate_private.tenant_keys (migration 0004) and remove every other
 * key, with the anchors published under it, in one transaction. The pads go
 * as parameters: never in the statement text, so never in pg_stat_activity
 * or a log line. Without DATABASE_TENANT_KEY nothing changes. */
/* DATABASE_TENANT_KEY_FILE names a file that does not exist: make a key
 * (32 bytes from getrandom) and write it there, created with mode 0600 and
 * never over an existing file. */
static gp_status_t generate_key_file(run_t *r, const char *path, char hex[65])
{
    unsigned char key[32];
    if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key)
        return gp__client_error(r->err, GP_ERR_IO, "cannot generate a tenant key: getrandom failed (%s)",
                                strerror(errno));
    gp__hex(key, sizeof key, hex);
    gp__wipe(key, sizeof key);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return gp__client_error(r->err, GP_ERR_IO, "DATABASE_TENANT_KEY_FILE: cannot create '%s': %s", path,
                                strerror(errno));
    char line[66];
    memcpy(line, hex, 64);
    line[64] = '\n';
    bool ok = write(fd, line, 65) == 65 && fsync(fd) == 0;
    int saved = errno;
    gp__wipe(line, sizeof line);
    if (close(fd) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        unlink(path);
        return gp__client_error(r->err, GP_ERR_IO, "DATABASE_TENANT_KEY_FILE: cannot write '%s': %s", path,
                                strerror(saved));
    }
    return GP_OK;
}

static gp_status_t install_keys(run_t *r, const gp_db_config_t *db)
{
    PGresult *res = NULL;
    gp_status_t st = exec_ok(r, "SELECT pg_catalog.to_regclass('growplate_private.tenant_keys') IS NOT NULL", 0, NULL,
                             &res, "looking for growplate_private.tenant_keys");
    if (st != GP_OK)
        return st;
    bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!exists)
        return GP_OK; /* a set of migrations without 0004 */
    char generated[65] = "";
    const char *current = db->tenant_key;
    if ((!current || !*current) && db->tenant_key_file && access(db->tenant_key_file, F_OK) != 0 &&
        errno == ENOENT) {
        if ((st = generate_key_file(r, db->tenant_key_file, generated)) != GP_OK)
            return st;
        current = generated;
    }
    if (!current || !*current) {
        if ((st = exec_ok(r, "SELECT count(*) FROM growplate_private.tenant_keys", 0, NULL, &res,
                          "counting tenant keys")) != GP_OK)
            return st;
        r->rep->tenant_keys = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        if (r->rep->tenant_keys == 0)
            progress(r, "no tenant key installed: set DATABASE_TENANT_KEY (the service's) and run migrate again; "
                        "until then every tenant-scoped call fails");
        return GP_OK;
    }
    const char *hex[2] = {current, db->tenant_key_previous};
    gp__tenant_key_t keys[2];
    char pads[2][2][2 + 128 + 1];
    int nkeys = 0;
    for (int i = 0; i < 2; i++) {
        if (!hex[i] || !*hex[i])
            continue;
        if (!gp__tenant_key_decode(hex[i], 0, &keys[nkeys]) || !keys[nkeys].set) {
            gp__wipe(keys, sizeof keys);
            gp__wipe(generated, sizeof generated);
            return gp__client_error(r->err, GP_ERR_CONFIG, "%s: is not a tenant key; expected 64 to 128 hex digits",
                                    i ? "DATABASE_TENANT_KEY_PREVIOUS" : "DATABASE_TENANT_KEY");
        }
        unsigned char ip[64], op[64];
        gp__hmac_pads(keys[nkeys].key, keys[nkeys].len, ip, op);
        memcpy(pads[nkeys][0], "\\x", 2);
        gp__hex(ip, 64, pads[nkeys][0] + 2);
        memcpy(pads[nkeys][1], "\\x", 2);
        gp__hex(op, 64, pads[nkeys][1] + 2);
        gp__wipe(ip, sizeof ip);
        gp__wipe(op, sizeof op);
        nkeys++;
    }
    char kids[64];
    snprintf(kids, sizeof kids, "{%s%s%s}", keys[0].kid, nkeys > 1 ? "," : "", nkeys > 1 ? keys[1].kid : "");
    st = exec_ok(r, "BEGIN", 0, NULL, NULL, "installing the tenant keys");
    for (int i = 0; st == GP_OK && i < nkeys; i++) {
        const char *params[3] = {keys[i].kid, pads[i][0], pads[i][1]};
        st = exec_ok(r,
                     "INSERT INTO growplate_private.tenant_keys (kid, ipad, opad) VALUES ($1, $2::pg_catalog.bytea, "
                     "$3::pg_catalog.bytea) ON CONFLICT (kid) DO NOTHING",
                     3, params, &res, "installing a tenant key");
        if (st == GP_OK) {
            if (strcmp(PQcmdTuples(res), "1") == 0) {
                r->rep->tenant_keys_installed++;
                progress(r, "tenant key %s (%s): installed", keys[i].kid, i ? "DATABASE_TENANT_KEY_PREVIOUS"
                                                                              : "DATABASE_TENANT_KEY");
            }
            PQclear(res);
        }
    }
    if (generated[0] && st == GP_OK)
        progress(r, "generated a new tenant key in %s (key id %s): give the services the same "
                    "DATABASE_TENANT_KEY_FILE", db->tenant_key_file, keys[0].kid);
    gp__wipe(pads, sizeof pads);
    gp__wipe(keys, sizeof keys);
    gp__wipe(generated, sizeof generated);
    if (st == GP_OK) {
        const char *params[1] = {kids};
        st = exec_ok(r,
                     "DELETE FROM growplate_private.tenant_keys WHERE kid OPERATOR(pg_catalog.<>) ALL "
                     "($1::pg_catalog.text[]) RETURNING kid",
                     1, params, &res, "removing old tenant keys");
        if (st == GP_OK) {
            for (int i = 0; i < PQntuples(res); i++)
                progress(r, "tenant key %s: removed, with its published tenant secrets (neither DATABASE_TENANT_KEY "
                            "nor DATABASE_TENANT_KEY_PREVIOUS)", PQgetvalue(res, i, 0));
            r->rep->tenant_keys_removed += PQntuples(res);
            PQclear(res);
        }
    }
    if (st == GP_OK)
        st = exec_ok(r, "COMMIT", 0, NULL, NULL, "installing the tenant keys");
    if (st != GP_OK) {
        PQclear(PQexec(r->pg, "ROLLBACK"));
        return st;
    }
    r->rep->tenant_keys = nkeys;
    return GP_OK;
}

gp_status_t gp__migrate_table(const gp_config_t *cfg, const char *table, int64_t lock_key, bool builtin,
                              const gp_migration_t *set, size_t n, const gp_migrate_opts_t *opts,
                              gp_migrate_report_t **out, gp_error_t *err)
{
    if (out)
        *out = NULL;
    gp_error_t local;
    if (!err)
        err = &local; /* the steps below always report into an error object */
    gp_error_clear(err);
    if (!cfg || (n && !set))
        return gp__client_error(err, GP_ERR_INVALID, "gp_migrate: no configuration or migrations given");
    for (size_t i = 0; i < n; i++) {
        if (set[i].version <= 0 || (i && set[i].version <= set[i - 1].version) || !set[i].sql || !set[i].name)
            return gp__client_error(err, GP_ERR_INVALID,
                                    "gp_migrate: migration #%zu (version %d) is out of order or incomplete", i,
                                    set[i].version);
    }
    gp_migrate_report_t *rep = calloc(1, sizeof *rep);
    if (!rep || (n && !(rep->entries = calloc(n, sizeof *rep->entries)))) {
        free(rep);
        return gp__client_error(err, GP_ERR_NOMEM, "gp_migrate: out of memory");
    }
    rep->count = n;
    rep->pending = n;
    rep->dry_run = opts && opts->dry_run;
    for (size_t i = 0; i < n; i++) {
        gp_migrate_entry_t *e = &rep->entries[i];
        e->version = set[i].version;
        e->state = GP_MIGRATION_PENDING;
        snprintf(e->name, sizeof e->name, "%s", set[i].name);
        if (set[i].checksum)
            snprintf(e->checksum, sizeof e->checksum, "%s", set[i].checksum);
        else
            gp__sha256_hex(set[i].sql, set[i].sql_len, e->checksum);
    }
    run_t r = {.table = table, .lock_key = lock_key, .builtin = builtin, .opts = opts, .rep = rep, .err = err};
    gp_status_t st = gp__pg_connect_single(&cfg->db, true, &r.pg, err);
    if (st == GP_OK) {
        st = run_locked(&r, set, n);
        if (st == GP_OK && !rep->dry_run && builtin)
            st = install_keys(&r, &cfg->db);
        rep->pending = 0;
        for (size_t i = 0; i < n; i++)
            rep->pending += rep->entries[i].state == GP_MIGRATION_PENDING;
        /* Closing the session releases the advisory lock. */
        PQfinish(r.pg);
    }
    if (out && (st == GP_OK || st == GP_ERR_MIGRATION))
        *out = rep;
    else
        gp_migrate_report_free(rep);
    return st;
}
