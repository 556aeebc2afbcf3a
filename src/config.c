/* config.c — typed configuration: defaults, environment loading, validation,
 * URL resolution (libpq's parser for PostgreSQL) and redacted rendering. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "internal.h"

#define MS_MAX 86400000 /* one day: the longest duration any setting accepts */

/* What the configuration did with one of libpq's environment variables
 * (PG*): growplate reads them through the same lookup as its own, so that
 * `growplate config check` shows what libpq will see. */
typedef enum {
    PGV_AS_SETTING, /* copied into the DATABASE_* setting it stands for, passed to libpq explicitly */
    PGV_LIBPQ,      /* no DATABASE_* counterpart: libpq reads it from the environment itself */
    PGV_UNUSED      /* growplate's own configuration gives that parameter */
} pgv_use_t;

typedef struct pgvar {
    const char *name;    /* owned: "PGHOST" */
    const char *keyword; /* owned: libpq's parameter ("host"); NULL when libpq reads it outside its parameters */
    const char *value;   /* owned copy of what the lookup returned */
    bool secret;         /* libpq displays it as a password */
    pgv_use_t use;
    const char *setting; /* PGV_AS_SETTING: the variable it fills ("DATABASE_HOST"; static) */
    int num;             /* PGV_AS_SETTING for the port: its value */
    char note[160];      /* what was done with it and why, for the description */
} pgvar_t;

typedef struct owned {
    char **v;
    size_t n, cap;
    const char *environment; /* GROWPLATE_ENV (one of v[]); NULL = unset */
    pgvar_t *pg;             /* the PG* variables that were set, in libpq's order */
    size_t npg, pgcap;
} owned_t;

void gp_config_init(gp_config_t *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    gp_db_config_t *d = &cfg->db;
    d->pool_min = 2;
    d->pool_max = 10;
    d->connect_timeout_ms = 5000;
    d->acquire_timeout_ms = 5000;
    d->idle_timeout_ms = 600000;
    d->max_lifetime_ms = 1800000;
    d->statement_timeout_ms = 0;
    d->validate_after_ms = 5000;
    d->leak_threshold_ms = 0;
    d->tenant_token_ttl_ms = 120000;
    d->statement_cache = -1;
    d->tenant_fair = 1;
    d->tenant_max_share_pct = 50;
    d->tenant_max_waiting = 0;
    d->read_max_lag_ms = 1000;
    d->pipeline_batch = 16;
    gp_redis_config_t *r = &cfg->redis;
    r->db = -1;
    r->tls = -1;
    r->key_prefix = "growplate:";
    r->timeout_ms = 1000;
    r->connect_timeout_ms = 1000;
    r->pool_size = 4;
}

void gp_config_release(gp_config_t *cfg)
{
    if (!cfg)
        return;
    owned_t *o = cfg->owned_;
    if (o) {
        for (size_t i = 0; i < o->n; i++) {
            /* Scrub: these may be passwords. */
            volatile char *s = o->v[i];
            while (*s)
                *s++ = 0;
            free(o->v[i]);
        }
        free(o->v);
        free(o->pg);
        free(o);
    }
    gp_config_init(cfg);
}

static char *own(gp_config_t *cfg, const char *s)
{
    owned_t *o = cfg->owned_;
    if (!o) {
        o = calloc(1, sizeof *o);
        if (!o)
            return NULL;
        cfg->owned_ = o;
    }
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        char **v = realloc(o->v, cap * sizeof *v);
        if (!v)
            return NULL;
        o->v = v;
        o->cap = cap;
    }
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    o->v[o->n++] = copy;
    return copy;
}

/* ---- parsing of single values ----------------------------------------- */

/* Show a user's value in a message: bounded, printable. Only ever used for
 * non-secret variables. */
static const char *shown(const char *v, char *buf, size_t len)
{
    size_t o = 0;
    for (const char *p = v; *p && o + 4 < len; p++)
        buf[o++] = isprint((unsigned char)*p) ? *p : '?';
    if (strlen(v) > len - 4)
        buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
    buf[o] = 0;
    return buf;
}

typedef enum { PARSE_OK, PARSE_NOT_NUMBER, PARSE_RANGE } parse_result_t;

static parse_result_t parse_int(const char *s, long long *out)
{
    if (!*s)
        return PARSE_NOT_NUMBER;
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    if (!isdigit((unsigned char)*p))
        return PARSE_NOT_NUMBER;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return PARSE_NOT_NUMBER;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return PARSE_RANGE;
    *out = v;
    return PARSE_OK;
}

/* "250", "250ms", "5s", "2m", "1h" -> milliseconds. */
static parse_result_t parse_duration(const char *s, long long *out)
{
    size_t n = strlen(s), digits = 0;
    const char *p = s;
    if (*p == '-')
        p++, digits = 0;
    while (isdigit((unsigned char)p[digits]))
        digits++;
    if (digits == 0)
        return PARSE_NOT_NUMBER;
    const char *unit = p + digits;
    long long mult;
    if (!*unit || strcmp(unit, "ms") == 0)
        mult = 1;
    else if (strcmp(unit, "s") == 0)
        mult = 1000;
    else if (strcmp(unit, "m") == 0)
        mult = 60000;
    else if (strcmp(unit, "h") == 0)
        mult = 3600000;
    else
        return PARSE_NOT_NUMBER;
    char num[32];
    size_t numlen = (size_t)(unit - s);
    if (numlen >= sizeof num || n > 40)
        return PARSE_RANGE;
    memcpy(num, s, numlen);
    num[numlen] = 0;
    long long v;
    parse_result_t r = parse_int(num, &v);
    if (r != PARSE_OK)
        return r;
    if (v > LLONG_MAX / mult || v < LLONG_MIN / mult)
        return PARSE_RANGE;
    *out = v * mult;
    return PARSE_OK;
}

/* ---- the table of variables ---------------------------------------------- */

typedef enum { V_STR, V_SECRET, V_URL, V_INT, V_MS } vkind_t;

typedef struct var {
    const char *name;
    vkind_t kind;
    size_t offset;       /* into gp_config_t */
    long long min, max;  /* for V_INT / V_MS */
    const char *meaning; /* for messages: what is accepted */
} var_t;

#define DB(f) offsetof(gp_config_t, db.f)
#define TENANT_KEY_MEANING "64 to 128 hex digits (32 to 64 random bytes; for example `openssl rand -hex 32`)"
#define RD(f) offsetof(gp_config_t, redis.f)

static const var_t vars[] = {
    {"DATABASE_URL", V_URL, DB(url), 0, 0, "a postgres:// or postgresql:// URL, or a libpq conninfo string"},
    {"DATABASE_HOST", V_STR, DB(host), 0, 0, "a host name, IP address or socket directory"},
    {"DATABASE_PORT", V_INT, DB(port), 1, 65535, "a port from 1 to 65535"},
    {"DATABASE_NAME", V_STR, DB(name), 0, 0, "a database name"},
    {"DATABASE_USER", V_STR, DB(user), 0, 0, "a role name"},
    {"DATABASE_PASSWORD", V_SECRET, DB(password), 0, 0, "the role's password"},
    {"DATABASE_SSLMODE", V_STR, DB(sslmode), 0, 0, "disable, allow, prefer, require, verify-ca or verify-full"},
    {"DATABASE_APPLICATION_NAME", V_STR, DB(application_name), 0, 0, "up to 63 bytes of printable ASCII"},
    {"DATABASE_MIGRATION_URL", V_URL, DB(migration_url), 0, 0, "a postgres:// or postgresql:// URL, or a libpq conninfo string"},
    {"DATABASE_POOL_MIN", V_INT, DB(pool_min), 0, 10000, "an integer from 0 to 10000, at most DATABASE_POOL_MAX"},
    {"DATABASE_POOL_MAX", V_INT, DB(pool_max), 1, 10000, "an integer from 1 to 10000"},
    {"DATABASE_TIMEOUT", V_MS, DB(connect_timeout_ms), 1, MS_MAX, "a connect timeout from 1ms to 24h (bare numbers are milliseconds)"},
    {"DATABASE_ACQUIRE_TIMEOUT", V_MS, DB(acquire_timeout_ms), 1, MS_MAX, "a duration from 1ms to 24h; the pool never waits forever"},
    {"DATABASE_IDLE_TIMEOUT", V_MS, DB(idle_timeout_ms), 0, MS_MAX, "a duration from 0 (never) to 24h"},
    {"DATABASE_MAX_LIFETIME", V_MS, DB(max_lifetime_ms), 0, MS_MAX, "a duration from 0 (unlimited) to 24h"},
    {"DATABASE_STATEMENT_TIMEOUT", V_MS, DB(statement_timeout_ms), 0, MS_MAX, "a duration from 0 (none) to 24h"},
    {"DATABASE_QUERY_TIMEOUT", V_MS, DB(query_timeout_ms), 0, MS_MAX, "a client-side deadline from 0 (none) to 24h"},
    {"DATABASE_VALIDATE_AFTER", V_MS, DB(validate_after_ms), 0, MS_MAX, "a duration from 0 (always validate) to 24h"},
    {"DATABASE_LEAK_THRESHOLD", V_MS, DB(leak_threshold_ms), 0, MS_MAX, "a duration from 0 (off) to 24h"},
    {"DATABASE_TENANT_KEY", V_SECRET, DB(tenant_key), 0, 0, TENANT_KEY_MEANING},
    {"DATABASE_TENANT_KEY_PREVIOUS", V_SECRET, DB(tenant_key_previous), 0, 0, TENANT_KEY_MEANING},
    {"DATABASE_TENANT_KEY_FILE", V_STR, DB(tenant_key_file), 0, 0, "the path of a file holding the tenant key (mode 0600)"},
    {"DATABASE_TENANT_TOKEN_TTL", V_MS, DB(tenant_token_ttl_ms), 10000, 3600000, "a duration from 10s to 1h"},
    {"DATABASE_POOLER", V_STR, DB(pooler), 0, 0, "unset (no pooler: one is detected and refused), session (PgBouncer in session mode) or transaction (PgBouncer in transaction mode)"},
    {"DATABASE_READ_URL", V_URL, DB(read_url), 0, 0, "a postgres:// or postgresql:// URL of one or several standbys, or a libpq conninfo string"},
    {"DATABASE_READ_MAX_LAG", V_MS, DB(read_max_lag_ms), 0, MS_MAX, "a replay lag from 0 (no bound) to 24h"},
    {"DATABASE_PIPELINE_BATCH", V_INT, DB(pipeline_batch), 1, 256, "one-shot calls per round trip, from 1 (no sharing) to 256"},
    {"DATABASE_STATEMENT_CACHE", V_INT, DB(statement_cache), -1, 10000, "prepared statements per connection, from 0 (none: for PgBouncer in transaction mode) to 10000, or -1 (the process-wide capacity, the default)"},
    {"DATABASE_TENANT_FAIR", V_INT, DB(tenant_fair), 0, 1, "1 (fair hand-off across tenants, the default) or 0 (first come, first served)"},
    {"DATABASE_TENANT_MAX_SHARE", V_INT, DB(tenant_max_share_pct), 1, 100, "a percentage of DATABASE_POOL_MAX from 1 to 100"},
    {"DATABASE_TENANT_MAX_WAITING", V_INT, DB(tenant_max_waiting), 0, 1000000, "0 (4 x DATABASE_POOL_MAX, at least 16) or a number of callers up to 1000000"},
    {"REDIS_URL", V_URL, RD(url), 0, 0, "a redis://[[user]:password@]host[:port][/db] URL"},
    {"REDIS_HOST", V_STR, RD(host), 0, 0, "a host name or IP address"},
    {"REDIS_PORT", V_INT, RD(port), 1, 65535, "a port from 1 to 65535"},
    {"REDIS_USERNAME", V_STR, RD(username), 0, 0, "a Redis ACL user name"},
    {"REDIS_PASSWORD", V_SECRET, RD(password), 0, 0, "the Redis password"},
    {"REDIS_DB", V_INT, RD(db), 0, 10000, "a database number from 0 to 10000 (Redis has 16 by default)"},
    {"REDIS_KEY_PREFIX", V_STR, RD(key_prefix), 0, 0, "1 to 64 bytes of letters, digits and : _ . -"},
    {"REDIS_TIMEOUT", V_MS, RD(timeout_ms), 1, 600000, "a command timeout from 1ms to 10m"},
    {"REDIS_CONNECT_TIMEOUT", V_MS, RD(connect_timeout_ms), 1, 600000, "a connect timeout from 1ms to 10m"},
    {"REDIS_POOL_SIZE", V_INT, RD(pool_size), 1, 1024, "an integer from 1 to 1024"},
    {"REDIS_SENTINELS", V_STR, RD(sentinels), 0, 0, "a comma-separated list of 1 to 16 sentinels as host:port"},
    {"REDIS_TLS", V_INT, RD(tls), -1, 1, "1 (TLS), 0 (plain TCP) or -1 (the default: TLS when REDIS_URL is rediss://)"},
    {"REDIS_TLS_CA_FILE", V_STR, RD(tls_ca_file), 0, 0, "the path of a PEM file of the CA certificates to verify the server with"},
    {"REDIS_TLS_CERT_FILE", V_STR, RD(tls_cert_file), 0, 0, "the path of the PEM client certificate (chain) for mutual TLS"},
    {"REDIS_TLS_KEY_FILE", V_STR, RD(tls_key_file), 0, 0, "the path of the PEM private key of REDIS_TLS_CERT_FILE"},
    {"REDIS_TLS_SERVER_NAME", V_STR, RD(tls_server_name), 0, 0, "the name (or IP address) the server's certificate must be for"},
    {"REDIS_CLUSTER_NODES", V_STR, RD(cluster_nodes), 0, 0, "a comma-separated list of 1 to 16 Redis Cluster nodes as host:port"},
    {"REDIS_SENTINEL_MASTER", V_STR, RD(sentinel_master), 0, 0, "the master's name in the sentinels' configuration (1 to 127 bytes of letters, digits and . _ -)"},
};
#define NVARS (sizeof vars / sizeof vars[0])

#define FIELD_STR(cfg, v) ((const char **)((char *)(cfg) + (v)->offset))
#define FIELD_INT(cfg, v) ((int *)((char *)(cfg) + (v)->offset))

static void range_msg(char *err, size_t errlen, const var_t *v, const char *value)
{
    char b[96];
    if (value)
        gp__bufappend(err, errlen, "%s: '%s' is out of range; expected %s\n", v->name,
                      shown(value, b, sizeof b), v->meaning);
}

/* DATABASE_TENANT_KEY_FILE: read the key into cfg->db.tenant_key (owned).
 * A file that does not exist is not an error here (gp_migrate makes it). */
static gp_status_t key_from_file(gp_config_t *cfg, char *err, size_t errlen)
{
    const char *path = cfg->db.tenant_key_file;
    char b[96];
    if (cfg->db.tenant_key && *cfg->db.tenant_key) {
        gp__bufappend(err, errlen, "DATABASE_TENANT_KEY_FILE: is set together with DATABASE_TENANT_KEY; set one of "
                                   "them\n");
        return GP_ERR_CONFIG;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return GP_OK;
        gp__bufappend(err, errlen, "DATABASE_TENANT_KEY_FILE: cannot open '%s': %s\n", shown(path, b, sizeof b),
                      strerror(errno));
        return GP_ERR_CONFIG;
    }
    struct stat st;
    char text[160];
    ssize_t n = -1;
    int saved = 0;
    memset(&st, 0, sizeof st);
    if (fstat(fd, &st) != 0)
        saved = errno;
    else if (S_ISREG(st.st_mode) && !(st.st_mode & 077) && (n = read(fd, text, sizeof text - 1)) < 0)
        saved = errno;
    close(fd);
    if (n < 0) {
        if (saved == 0) /* not read: the file's type or mode */
            gp__bufappend(err, errlen, "DATABASE_TENANT_KEY_FILE: '%s' is %s; expected a regular file that only its "
                          "owner can read (chmod 600)\n", shown(path, b, sizeof b),
                          S_ISREG(st.st_mode) ? "readable by others" : "not a regular file");
        else
            gp__bufappend(err, errlen, "DATABASE_TENANT_KEY_FILE: cannot read '%s': %s\n", shown(path, b, sizeof b),
                          strerror(saved));
        return GP_ERR_CONFIG;
    }
    text[n] = 0;
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ' || text[n - 1] == '\t'))
        text[--n] = 0;
    size_t hex = strspn(text, "0123456789abcdefABCDEF");
    if (hex != (size_t)n || n < 64 || n > 128 || n % 2) {
        gp__wipe(text, sizeof text);
        gp__bufappend(err, errlen, "DATABASE_TENANT_KEY_FILE: '%s' does not hold a tenant key (the content is not "
                      "shown: it is a secret); expected one line of " TENANT_KEY_MEANING "\n",
                      shown(path, b, sizeof b));
        return GP_ERR_CONFIG;
    }
    char *copy = own(cfg, text);
    gp__wipe(text, sizeof text);
    if (!copy)
        return GP_ERR_NOMEM;
    cfg->db.tenant_key = copy;
    return GP_OK;
}


/* ---- libpq's environment (PG*) --------------------------------------------------
 *
 * libpq reads a PG* variable for every parameter its connection string leaves
 * out. The policy: growplate's own settings win, and a PG* variable is used
 * only for what DATABASE_URL and the DATABASE_* variables leave out (libpq's
 * own rule, applied to the whole configuration). The variables with a
 * DATABASE_* counterpart are copied into that setting, so that growplate
 * passes them to libpq explicitly (and its defaults, which it passes
 * explicitly too, come after them); libpq reads the others itself. Two
 * that would silently move the connection elsewhere are refused: PGHOSTADDR
 * (libpq would connect to that address, not to the host growplate names)
 * and PGSERVICE without DATABASE_URL (growplate's own host and database
 * would override the service's). */

static const char *pg_opt(const PQconninfoOption *opts, const char *kw);
static const char *const sslmodes[] = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};
#define NSSLMODES (sizeof sslmodes / sizeof *sslmodes)

/* The PG* variables with a DATABASE_* counterpart. */
static const struct pg_part {
    const char *keyword, *setting, *what;
    size_t offset;
    bool is_int;
} pg_parts[] = {
    {"host", "DATABASE_HOST", "host", DB(host), false},
    {"port", "DATABASE_PORT", "port", DB(port), true},
    {"dbname", "DATABASE_NAME", "database name", DB(name), false},
    {"user", "DATABASE_USER", "user", DB(user), false},
    {"password", "DATABASE_PASSWORD", "password", DB(password), false},
    {"sslmode", "DATABASE_SSLMODE", "sslmode", DB(sslmode), false},
    {"application_name", "DATABASE_APPLICATION_NAME", "application_name", DB(application_name), false},
};

/* Variables libpq reads outside its connection parameters (service file
 * location, session settings sent at startup, message catalogs). */
static const char *const libpq_direct[] = {"PGSERVICEFILE", "PGSYSCONFDIR", "PGDATESTYLE", "PGTZ", "PGGEQO",
                                           "PGLOCALEDIR"};

static owned_t *owned(gp_config_t *cfg)
{
    if (!cfg->owned_)
        cfg->owned_ = calloc(1, sizeof(owned_t));
    return cfg->owned_;
}

static gp_status_t add_pgvar(gp_config_t *cfg, const char *name, const char *keyword, bool secret, const char *raw)
{
    if (!raw)
        return GP_OK;
    /* Copy the value first: the lookup's string need only live until its next call. */
    const char *value = own(cfg, raw);
    owned_t *o = owned(cfg);
    if (!value || !o)
        return GP_ERR_NOMEM;
    if (o->npg == o->pgcap) {
        size_t cap = o->pgcap ? o->pgcap * 2 : 8;
        pgvar_t *v = realloc(o->pg, cap * sizeof *v);
        if (!v)
            return GP_ERR_NOMEM;
        o->pg = v;
        o->pgcap = cap;
    }
    pgvar_t *v = &o->pg[o->npg];
    memset(v, 0, sizeof *v);
    v->value = value;
    v->secret = secret;
    if (!(v->name = own(cfg, name)) || (keyword && !(v->keyword = own(cfg, keyword))))
        return GP_ERR_NOMEM;
    o->npg++;
    return GP_OK;
}

/* Ask the lookup for every variable libpq reads: those of its parameter
 * table (this libpq's, so a newer one's are covered too), then the rest. */
static gp_status_t read_pg_env(gp_config_t *cfg, gp_config_lookup_fn lookup, void *ud)
{
    PQconninfoOption *opts = PQconninfoParse("", NULL);
    if (!opts)
        return GP_ERR_NOMEM;
    gp_status_t st = GP_OK;
    for (const PQconninfoOption *o = opts; st == GP_OK && o->keyword; o++)
        if (o->envvar)
            st = add_pgvar(cfg, o->envvar, o->keyword, o->dispchar && o->dispchar[0] == '*', lookup(ud, o->envvar));
    PQconninfoFree(opts);
    for (size_t i = 0; st == GP_OK && i < sizeof libpq_direct / sizeof *libpq_direct; i++)
        st = add_pgvar(cfg, libpq_direct[i], NULL, false, lookup(ud, libpq_direct[i]));
    return st;
}

static const pgvar_t *find_pgvar(const owned_t *o, const char *keyword)
{
    for (size_t i = 0; o && i < o->npg; i++)
        if (o->pg[i].keyword && strcmp(o->pg[i].keyword, keyword) == 0)
            return &o->pg[i];
    return NULL;
}

/* Check a PG* value for the setting it fills, as growplate checks its own. */
static bool pg_value_ok(const pgvar_t *v, const struct pg_part *part, int *port, char *err, size_t errlen)
{
    char b[96];
    const char *why = "(libpq's variable, used because DATABASE_URL and the DATABASE_* variables leave it out)";
    if (part->is_int) {
        long long x;
        if (!isdigit((unsigned char)v->value[0]) || parse_int(v->value, &x) != PARSE_OK || x < 1 || x > 65535) {
            gp__bufappend(err, errlen, "%s: '%s' is not a port; expected a port from 1 to 65535 %s; a list of ports "
                          "for several hosts belongs in DATABASE_URL\n", v->name, shown(v->value, b, sizeof b), why);
            return false;
        }
        *port = (int)x;
    } else if (strcmp(part->keyword, "dbname") == 0 &&
               (strchr(v->value, '=') || strncmp(v->value, "postgres://", 11) == 0 ||
                strncmp(v->value, "postgresql://", 13) == 0)) {
        /* Without DATABASE_URL growplate's dbname is the first one, which
         * libpq expands as a connection string; from the environment libpq
         * never would. */
        gp__bufappend(err, errlen, "%s: looks like a connection string (the value is not shown: it may contain a "
                      "password); libpq does not read one from %s; put it in DATABASE_URL\n", v->name, v->name);
        return false;
    } else if (strcmp(part->keyword, "sslmode") == 0) {
        bool ok = false;
        for (size_t i = 0; i < NSSLMODES; i++)
            ok = ok || strcmp(v->value, sslmodes[i]) == 0;
        if (!ok) {
            gp__bufappend(err, errlen, "%s: unknown sslmode '%s'; expected one of disable, allow, prefer, require, "
                          "verify-ca, verify-full %s\n", v->name, shown(v->value, b, sizeof b), why);
            return false;
        }
    } else if (strcmp(part->keyword, "application_name") == 0) {
        bool ok = strlen(v->value) <= 63;
        for (const char *p = v->value; ok && *p; p++)
            ok = *p >= 32 && *p < 127;
        if (!ok) {
            gp__bufappend(err, errlen, "%s: too long or not printable ASCII; expected up to 63 printable ASCII "
                          "bytes %s\n", v->name, why);
            return false;
        }
    }
    return true;
}

/* Decide, for every PG* variable that is set, what growplate does with it
 * (see the policy above); fills the DATABASE_* settings they stand for.
 * Returns false after writing a message per problem. */
static bool resolve_pg_env(gp_config_t *cfg, char *err, size_t errlen)
{
    owned_t *ow = cfg->owned_;
    if (!ow || !ow->npg)
        return true;
    gp_db_config_t *d = &cfg->db;
    /* NULL for an invalid URL: gp_config_validate reports that. */
    PQconninfoOption *u = d->url ? PQconninfoParse(d->url, NULL) : NULL;
    const pgvar_t *svc = find_pgvar(ow, "service");
    bool service = pg_opt(u, "service") || (svc && *svc->value);
    bool ok = true;
    char b[96];
    for (size_t i = 0; i < ow->npg; i++) {
        pgvar_t *v = &ow->pg[i];
        const char *kw = v->keyword;
        v->use = PGV_UNUSED;
        if (!kw) {
            v->use = PGV_LIBPQ;
            snprintf(v->note, sizeof v->note, "used: libpq reads it itself, outside its connection parameters");
            continue;
        }
        const struct pg_part *part = NULL;
        for (size_t k = 0; k < sizeof pg_parts / sizeof *pg_parts; k++)
            if (strcmp(pg_parts[k].keyword, kw) == 0)
                part = &pg_parts[k];
        if (part) {
            const char **sfield = (const char **)((char *)cfg + part->offset);
            int *ifield = (int *)((char *)cfg + part->offset);
            bool given = part->is_int ? *ifield != 0 : *sfield && **sfield;
            if (given)
                snprintf(v->note, sizeof v->note, "not used: %s is set", part->setting);
            else if (pg_opt(u, kw))
                snprintf(v->note, sizeof v->note, "not used: DATABASE_URL gives the %s", part->what);
            else if (service) {
                v->use = PGV_LIBPQ;
                snprintf(v->note, sizeof v->note, "used by libpq where the service does not give the %s",
                         part->what);
            } else if (!*v->value && v->secret)
                snprintf(v->note, sizeof v->note, "not used: empty (no password)");
            else if (!*v->value) {
                gp__bufappend(err, errlen, "%s: is set but empty, and libpq would use it for the %s; unset it, or "
                              "set %s\n", v->name, part->what, part->setting);
                ok = false;
            } else if (!pg_value_ok(v, part, &v->num, err, errlen)) {
                ok = false;
            } else {
                v->use = PGV_AS_SETTING;
                v->setting = part->setting;
                if (part->is_int)
                    *ifield = v->num;
                else
                    *sfield = v->value;
                snprintf(v->note, sizeof v->note, "used as %s", part->setting);
            }
        } else if (strcmp(kw, "service") == 0) {
            if (pg_opt(u, "service"))
                snprintf(v->note, sizeof v->note, "not used: DATABASE_URL names a service");
            else if (!d->url) {
                gp__bufappend(err, errlen, "%s: '%s' is set but DATABASE_URL is not; growplate uses a service only "
                              "through DATABASE_URL (without it, growplate names the host and database itself, "
                              "overriding the service's); set DATABASE_URL='service=%s', or unset %s\n", v->name,
                              shown(v->value, b, sizeof b), b, v->name);
                ok = false;
            } else if (!*v->value) {
                gp__bufappend(err, errlen, "%s: is set but empty; unset it\n", v->name);
                ok = false;
            } else {
                v->use = PGV_LIBPQ;
                snprintf(v->note, sizeof v->note, "used by libpq: the service gives what DATABASE_URL and the "
                         "DATABASE_* variables leave out");
            }
        } else if (strcmp(kw, "hostaddr") == 0) {
            if (pg_opt(u, "hostaddr"))
                snprintf(v->note, sizeof v->note, "not used: DATABASE_URL gives hostaddr");
            else {
                gp__bufappend(err, errlen, "%s: '%s' is set, and libpq would connect to that address instead of "
                              "the host growplate names; unset it, or give hostaddr= in DATABASE_URL\n", v->name,
                              shown(v->value, b, sizeof b));
                ok = false;
            }
        } else if (strcmp(kw, "connect_timeout") == 0) {
            snprintf(v->note, sizeof v->note, "not used: growplate passes DATABASE_TIMEOUT");
        } else if (pg_opt(u, kw)) {
            snprintf(v->note, sizeof v->note, "not used: DATABASE_URL gives %s", kw);
        } else if (!*v->value) {
            gp__bufappend(err, errlen, "%s: is set but empty, and libpq would use it for %s; unset it, or give %s= "
                          "in DATABASE_URL\n", v->name, kw, kw);
            ok = false;
        } else {
            v->use = PGV_LIBPQ;
            if (strcmp(kw, "options") == 0 && d->statement_timeout_ms > 0)
                snprintf(v->note, sizeof v->note, "used: passed to libpq with DATABASE_STATEMENT_TIMEOUT added");
            else
                snprintf(v->note, sizeof v->note, "used: libpq reads it, DATABASE_URL gives no %s", kw);
        }
    }
    PQconninfoFree(u);
    return ok;
}

static const char *const environments[] = {"development", "test", "staging", "production"};

/* Nothing names the PostgreSQL server: growplate would dial its built-in
 * default, localhost:5432/growplate_dev, which it does only in development. */
static bool check_target(const gp_config_t *cfg, char *err, size_t errlen)
{
    const gp_db_config_t *d = &cfg->db;
    const owned_t *o = cfg->owned_;
    const char *env = o ? o->environment : NULL;
    if (d->url || d->host || d->port || d->name || (env && strcmp(env, "development") == 0))
        return true;
    gp__bufappend(err, errlen,
                  "DATABASE_URL: is not set, and nothing else names the PostgreSQL server (DATABASE_HOST, "
                  "DATABASE_PORT, DATABASE_NAME, PGHOST, PGPORT, PGDATABASE); growplate connects to its built-in "
                  "default localhost:5432/growplate_dev only when GROWPLATE_ENV=development (it is %s%s%s); set "
                  "DATABASE_URL to the server's URL (postgresql://app@db.example:5432/app), or "
                  "GROWPLATE_ENV=development\n",
                  env ? "'" : "", env ? env : "unset", env ? "'" : "");
    return false;
}

gp_status_t gp_config_from_lookup(gp_config_t *cfg, gp_config_lookup_fn lookup, void *ud,
                                  char *err, size_t errlen)
{
    if (!cfg || !lookup)
        return GP_ERR_INVALID;
    if (err && errlen)
        err[0] = 0;
    /* As documented: start from gp_config_init(), never from what *cfg
     * held (a fresh `gp_config_t cfg;` on the stack is garbage). */
    gp_config_init(cfg);
    bool bad = false;
    for (size_t i = 0; i < NVARS; i++) {
        const var_t *v = &vars[i];
        const char *raw = lookup(ud, v->name);
        if (!raw)
            continue;
        char b[96];
        switch (v->kind) {
        case V_STR:
        case V_SECRET:
        case V_URL: {
            if (!*raw && v->kind != V_SECRET) {
                gp__bufappend(err, errlen, "%s: is set but empty; expected %s, or unset it\n",
                              v->name, v->meaning);
                bad = true;
                break;
            }
            char *copy = own(cfg, raw);
            if (!copy)
                return GP_ERR_NOMEM;
            *FIELD_STR(cfg, v) = copy;
            break;
        }
        case V_INT:
        case V_MS: {
            long long x = 0;
            parse_result_t r = v->kind == V_INT ? parse_int(raw, &x) : parse_duration(raw, &x);
            if (r == PARSE_NOT_NUMBER) {
                gp__bufappend(err, errlen, "%s: '%s' is not %s; expected %s\n", v->name,
                              shown(raw, b, sizeof b),
                              v->kind == V_INT ? "a whole number" : "a duration (e.g. 500, 250ms, 5s, 2m)",
                              v->meaning);
                bad = true;
            } else if (r == PARSE_RANGE || x < v->min || x > v->max) {
                range_msg(err, errlen, v, raw);
                bad = true;
            } else {
                *FIELD_INT(cfg, v) = (int)x;
            }
            break;
        }
        }
    }
    if (cfg->db.tenant_key_file) {
        gp_status_t kst = key_from_file(cfg, err, errlen);
        if (kst == GP_ERR_NOMEM)
            return kst;
        bad |= kst != GP_OK;
    }
    bool env_bad = false;
    const char *env = lookup(ud, "GROWPLATE_ENV");
    if (env) {
        bool known = false;
        for (size_t i = 0; i < sizeof environments / sizeof *environments; i++)
            known = known || strcmp(env, environments[i]) == 0;
        char b[96];
        env_bad = !known;
        if (!known) {
            gp__bufappend(err, errlen, "GROWPLATE_ENV: '%s' is not an environment; expected development, test, "
                          "staging or production\n", shown(env, b, sizeof b));
            bad = true;
        } else {
            char *copy = own(cfg, env);
            if (!copy)
                return GP_ERR_NOMEM;
            ((owned_t *)cfg->owned_)->environment = copy;
        }
    }
    gp_status_t pst = read_pg_env(cfg, lookup, ud);
    if (pst != GP_OK)
        return pst;
    bad |= !resolve_pg_env(cfg, err, errlen);
    if (!env_bad)
        bad |= !check_target(cfg, err, errlen);
    /* Report value problems and cross-field problems together. */
    char more[GP_ERRBUF_SIZE] = "";
    gp_status_t st = gp_config_validate(cfg, more, sizeof more);
    if (st != GP_OK) {
        /* Skip repeats of range problems already reported from the raw text. */
        for (char *line = more, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = 0;
            char name[64];
            size_t nl = strcspn(line, ":");
            snprintf(name, sizeof name, "%.*s:", (int)(nl < 60 ? nl : 60), line);
            if (!err || !strstr(err, name) || !strstr(line, "out of range"))
                gp__bufappend(err, errlen, "%s\n", line);
        }
        bad = true;
    }
    return bad ? GP_ERR_CONFIG : GP_OK;
}

static const char *env_lookup(void *ud, const char *name)
{
    (void)ud;
    return getenv(name);
}

gp_status_t gp_config_from_env(gp_config_t *cfg, char *err, size_t errlen)
{
    return gp_config_from_lookup(cfg, env_lookup, NULL, err, errlen);
}

/* ---- the tenant key ---------------------------------------------------------- */

static int hexval(int c);

bool gp__tenant_key_decode(const char *hex, int ttl_ms, gp__tenant_key_t *out)
{
    memset(out, 0, sizeof *out);
    out->ttl_s = ttl_ms / 1000;
    if (!hex || !*hex)
        return true;
    size_t n = strlen(hex);
    if (n < 64 || n > 128 || n % 2)
        return false;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            gp__wipe(out, sizeof *out);
            return false;
        }
        out->key[i] = (unsigned char)(hi << 4 | lo);
    }
    out->len = n / 2;
    unsigned char id[32];
    gp__hmac_sha256(out->key, out->len, GP__TENANT_KID_LABEL, sizeof GP__TENANT_KID_LABEL - 1, id);
    gp__hex(id, 8, out->kid);
    out->set = true;
    return true;
}

/* ---- URLs ------------------------------------------------------------------- */

static bool has_scheme(const char *s, char *scheme, size_t len)
{
    const char *sep = strstr(s, "://");
    if (!sep)
        return false;
    size_t n = (size_t)(sep - s);
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
            return false;
    snprintf(scheme, len, "%.*s", (int)(n < len ? n : len - 1), s);
    return true;
}

/* Whether a PostgreSQL URL or conninfo string can hold a secret at all: a
 * URL's password needs an '@' after it, a password option its keyword
 * (password, sslpassword), and a URL query key may hide that keyword behind
 * percent-encoding. */
static bool may_hold_secret(const char *s)
{
    if (strchr(s, '@') || strchr(s, '%'))
        return true;
    for (const char *p = s; *p; p++)
        if (strncasecmp(p, "password", 8) == 0)
            return true;
    return false;
}

/* The user info of a postgres:// URL ends, for libpq, at the first '@'
 * before the first '/'. Another '@' before the query — in what libpq takes
 * for the host, port or database name — means a raw '@' or '/' in the user
 * name or password: libpq would connect somewhere else with part of the
 * password as host, port or database name, and quote it in its errors. */
static bool pg_url_ambiguous(const char *url)
{
    char scheme[32];
    if (!has_scheme(url, scheme, sizeof scheme))
        return false; /* a conninfo string */
    const char *a = strstr(url, "://") + 3;
    const char *at = memchr(a, '@', strcspn(a, "/"));
    const char *host = at ? at + 1 : a;
    return memchr(host, '@', strcspn(host, "?")) != NULL;
}

/* An '@' anywhere after the user info libpq sees (in the query, say) means
 * the text between the first ':' and the last '@' may, by some reading, be
 * a password: gp_redact masks all of it, and displays built from libpq's
 * parts must not show any of it either. */
static bool pg_url_extra_at(const char *url)
{
    char scheme[32];
    if (!has_scheme(url, scheme, sizeof scheme))
        return false;
    const char *a = strstr(url, "://") + 3;
    const char *at = memchr(a, '@', strcspn(a, "/"));
    return strchr(at ? at + 1 : a, '@') != NULL;
}

static void ambiguous_msg(const char *name, char *err, size_t errlen)
{
    gp__bufappend(err, errlen,
                  "%s: has an '@' after the user info, where libpq would read it as part of the host, port "
                  "or database name (a raw '@' or '/' in the user name or password?); percent-encode them "
                  "as %%40 and %%2F (the value is not shown: it may contain the password)\n", name);
}

/* Parse a PostgreSQL URL or conninfo with libpq. On error, writes a
 * redacted message and returns NULL. Free with PQconninfoFree. */
static PQconninfoOption *pg_parse(const char *name, const char *url, char *err, size_t errlen)
{
    char scheme[32];
    if (has_scheme(url, scheme, sizeof scheme) && strcmp(scheme, "postgres") != 0 &&
        strcmp(scheme, "postgresql") != 0) {
        gp__bufappend(err, errlen,
                      "%s: unknown scheme '%s'; expected postgres:// or postgresql:// (or a libpq "
                      "conninfo string such as 'host=... dbname=...')\n", name, scheme);
        return NULL;
    }
    char *pqerr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &pqerr);
    if (!opts) {
        /* libpq quotes part of the string it could not parse (the password
         * itself, for a bad percent-encoding): show its words only when
         * the string cannot hold a secret. */
        char clean[512];
        const char *phrase = gp__conninfo_error_phrase(pqerr);
        if (!pqerr)
            snprintf(clean, sizeof clean, "out of memory");
        else if (may_hold_secret(url))
            snprintf(clean, sizeof clean, "%s; the value is not shown, it may contain the password",
                     phrase ? phrase : "libpq cannot parse it");
        else
            gp_redact(pqerr, clean, sizeof clean);
        size_t n = strlen(clean);
        while (n && (clean[n - 1] == '\n' || clean[n - 1] == ' '))
            clean[--n] = 0;
        for (char *c = clean; *c; c++)
            if (*c == '\n')
                *c = ' ';
        gp__bufappend(err, errlen,
                      "%s: not a valid PostgreSQL URL or conninfo (%s); expected "
                      "postgresql://user:password@host:port/dbname?option=value\n", name, clean);
        PQfreemem(pqerr);
        return NULL;
    }
    PQfreemem(pqerr);
    if (pg_url_ambiguous(url)) {
        ambiguous_msg(name, err, errlen);
        PQconninfoFree(opts);
        return NULL;
    }
    return opts;
}

static const char *pg_opt(const PQconninfoOption *opts, const char *kw)
{
    for (const PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, kw) == 0)
            return o->val && *o->val ? o->val : NULL;
    return NULL;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode [s, s+n) into out. */
static bool pct_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return false;
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0 || o + 1 >= outlen)
            return false;
        out[o++] = (char)c;
    }
    out[o] = 0;
    return true;
}

typedef struct redis_url {
    bool tls; /* rediss:// */
    char host[256];
    int port; /* 0 = absent */
    char username[128];
    char password[256];
    bool has_password;
    int db; /* -1 = absent */
} redis_url_t;

static bool redis_parse(const char *name, const char *url, redis_url_t *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->db = -1;
    char scheme[32];
    const char *want = "expected redis[s]://[[user]:password@]host[:port][/db]";
    if (!has_scheme(url, scheme, sizeof scheme)) {
        gp__bufappend(err, errlen, "%s: not a URL (no scheme); %s\n", name, want);
        return false;
    }
    u->tls = strcmp(scheme, "rediss") == 0;
    if (strcmp(scheme, "redis") != 0 && !u->tls) {
        gp__bufappend(err, errlen, "%s: unknown scheme '%s'; %s\n", name, scheme, want);
        return false;
    }
    const char *p = url + strlen(u->tls ? "rediss://" : "redis://");
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *uend = colon ? colon : at;
        if (!pct_decode(p, (size_t)(uend - p), u->username, sizeof u->username)) {
            gp__bufappend(err, errlen, "%s: bad user name encoding; %s\n", name, want);
            return false;
        }
        if (colon) {
            if (!pct_decode(colon + 1, (size_t)(at - colon - 1), u->password, sizeof u->password)) {
                gp__bufappend(err, errlen, "%s: bad password encoding (percent-encode special characters); %s\n",
                              name, want);
                return false;
            }
            u->has_password = true;
        }
        p = at + 1;
    }
    const char *hend;
    if (*p == '[') {
        hend = memchr(p, ']', (size_t)(end - p));
        if (!hend) {
            gp__bufappend(err, errlen, "%s: unterminated IPv6 address; %s\n", name, want);
            return false;
        }
        snprintf(u->host, sizeof u->host, "%.*s", (int)(hend - p - 1), p + 1);
        hend++;
    } else {
        hend = p;
        while (hend < end && *hend != ':')
            hend++;
        if ((size_t)(hend - p) >= sizeof u->host) {
            gp__bufappend(err, errlen, "%s: host name too long; %s\n", name, want);
            return false;
        }
        snprintf(u->host, sizeof u->host, "%.*s", (int)(hend - p), p);
    }
    if (hend < end && *hend == ':') {
        char port[16];
        size_t n = (size_t)(end - hend - 1);
        long long v;
        snprintf(port, sizeof port, "%.*s", (int)(n < 15 ? n : 15), hend + 1);
        if (n == 0 || n > 5 || parse_int(port, &v) != PARSE_OK || v < 1 || v > 65535 || port[0] == '+' || port[0] == '-') {
            gp__bufappend(err, errlen, "%s: bad port; expected a port from 1 to 65535 in %s\n", name,
                          "redis://host:port/db");
            return false;
        }
        u->port = (int)v;
    } else if (hend != end) {
        gp__bufappend(err, errlen, "%s: unexpected text after the host; %s\n", name, want);
        return false;
    }
    if (*end == '/') {
        const char *d = end + 1;
        size_t n = strcspn(d, "?#");
        if (n > 0) {
            char db[16];
            long long v;
            snprintf(db, sizeof db, "%.*s", (int)(n < 15 ? n : 15), d);
            if (n > 5 || parse_int(db, &v) != PARSE_OK || v < 0 || v > 10000 || db[0] == '+' || db[0] == '-') {
                gp__bufappend(err, errlen, "%s: bad database number in the path; expected /0 to /10000\n", name);
                return false;
            }
            u->db = (int)v;
        }
        end = d + n;
    }
    if (*end == '?' || *end == '#') {
        gp__bufappend(err, errlen, "%s: query parameters are not supported; %s\n", name, want);
        return false;
    }
    return true;
}

/* ---- validation --------------------------------------------------------------- */

static bool valid_master_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 127)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
            return false;
    return true;
}

static bool valid_prefix(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == ':' || *p == '_' || *p == '.' || *p == '-'))
            return false;
    return true;
}

/* libpq only checks ports when it connects; check them up front. */
static bool valid_pg_ports(const char *s)
{
    for (;;) {
        size_t n = strcspn(s, ",");
        char buf[8];
        long long v;
        if (n == 0 || n > 5)
            return false;
        snprintf(buf, sizeof buf, "%.*s", (int)n, s);
        if (!isdigit((unsigned char)buf[0]) || parse_int(buf, &v) != PARSE_OK || v < 1 || v > 65535)
            return false;
        if (!s[n])
            return true;
        s += n + 1;
    }
}

/* Does a URL ("scheme://...") have the zone that gp_redact masks: a ':'
 * after the "://" and an '@' after it? */
static bool url_has_masked_zone(const char *url)
{
    const char *sep = strstr(url, "://");
    if (!sep)
        return false;
    const char *colon = strchr(sep + 3, ':');
    return colon && strchr(colon, '@');
}

static void conflict(char *err, size_t errlen, const char *part, const char *url, const char *what,
                     const char *a, const char *b, bool secret)
{
    if (secret)
        gp__bufappend(err, errlen, "%s: conflicts with the %s in %s; unset one of them or make them agree\n",
                      part, what, url);
    else {
        char x[96], y[96];
        gp__bufappend(err, errlen, "%s: '%s' conflicts with the %s '%s' in %s; unset one of them or make them agree\n",
                      part, shown(a, x, sizeof x), what, shown(b, y, sizeof y), url);
    }
}

gp_status_t gp_config_validate(const gp_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg)
        return GP_ERR_INVALID;
    size_t before = err ? strnlen(err, errlen) : 0;
    bool bad = false;
#define BAD(...) do { gp__bufappend(err, errlen, __VA_ARGS__); bad = true; } while (0)

    /* Numeric ranges, for configs filled in code too. */
    for (size_t i = 0; i < NVARS; i++) {
        const var_t *v = &vars[i];
        if (v->kind != V_INT && v->kind != V_MS)
            continue;
        int x = *FIELD_INT(cfg, v);
        if ((v->offset == DB(port) || v->offset == RD(port)) && x == 0)
            continue; /* unset */
        if (v->offset == RD(db) && x == -1)
            continue; /* unset */
        if (x < v->min || x > v->max) {
            char num[32];
            snprintf(num, sizeof num, "%d", x);
            range_msg(err, errlen, v, num);
            bad = true;
        }
    }
    const gp_db_config_t *d = &cfg->db;
    if (d->pool_min > d->pool_max && d->pool_max >= 1)
        BAD("DATABASE_POOL_MIN: %d is greater than DATABASE_POOL_MAX (%d); expected POOL_MIN <= POOL_MAX\n",
            d->pool_min, d->pool_max);

    /* The tenant keys: their shape only, never their text. */
    const char *keys[2] = {d->tenant_key, d->tenant_key_previous};
    static const char *const key_names[2] = {"DATABASE_TENANT_KEY", "DATABASE_TENANT_KEY_PREVIOUS"};
    for (int i = 0; i < 2; i++) {
        if (!keys[i] || !*keys[i])
            continue;
        size_t n = strlen(keys[i]), hex = strspn(keys[i], "0123456789abcdefABCDEF");
        if (hex < n)
            BAD("%s: has a character that is not a hex digit at position %zu (the value is not shown: it is a "
                "secret); expected " TENANT_KEY_MEANING "\n", key_names[i], hex + 1);
        else if (n < 64 || n > 128 || n % 2)
            BAD("%s: has %zu hex digits; expected " TENANT_KEY_MEANING "\n", key_names[i], n);
    }
    if (d->tenant_key_previous && *d->tenant_key_previous && !(d->tenant_key && *d->tenant_key))
        BAD("DATABASE_TENANT_KEY_PREVIOUS: is set without DATABASE_TENANT_KEY; during a rotation set both "
            "(the new key in DATABASE_TENANT_KEY)\n");
    else if (d->tenant_key_previous && *d->tenant_key_previous && strcasecmp(d->tenant_key, d->tenant_key_previous) == 0)
        BAD("DATABASE_TENANT_KEY_PREVIOUS: is the same key as DATABASE_TENANT_KEY; expected the key being "
            "rotated out, or unset it\n");

    if (d->pooler && *d->pooler && strcmp(d->pooler, "session") != 0 && strcmp(d->pooler, "transaction") != 0) {
        char b[96];
        BAD("DATABASE_POOLER: unknown value '%s'; expected session, transaction, or unset\n",
            shown(d->pooler, b, sizeof b));
    }
    if (d->pooler && strcmp(d->pooler, "transaction") == 0 && d->statement_cache > 0)
        BAD("DATABASE_STATEMENT_CACHE: is %d, but DATABASE_POOLER=transaction needs unnamed statements (a named "
            "one would be visible to, or collide with, other clients of the pooler); unset it or set 0\n",
            d->statement_cache);
    if (d->sslmode) {
        bool ok = false;
        for (size_t i = 0; i < NSSLMODES; i++)
            ok = ok || strcmp(d->sslmode, sslmodes[i]) == 0;
        char b[96];
        if (!ok)
            BAD("DATABASE_SSLMODE: unknown sslmode '%s'; expected one of disable, allow, prefer, "
                "require, verify-ca, verify-full\n", shown(d->sslmode, b, sizeof b));
    }
    if (d->application_name) {
        bool ok = strlen(d->application_name) <= 63;
        for (const char *p = d->application_name; ok && *p; p++)
            ok = *p >= 32 && *p < 127;
        if (!ok)
            BAD("DATABASE_APPLICATION_NAME: too long or not printable ASCII; expected up to 63 "
                "printable ASCII bytes\n");
    }

    /* DATABASE_URL, checked by libpq, then against its parts. */
    if (d->url) {
        PQconninfoOption *o = pg_parse("DATABASE_URL", d->url, err, errlen);
        /* What libpq read from inside the part of the URL that every
         * display masks (':' after '://' to the last '@': user info, with
         * the password) may be password bytes, whatever libpq took them
         * for (a host, an sslmode: a raw '/' or '?' in a password moves
         * libpq's reading): then no value read from the URL is quoted. */
        bool zone = url_has_masked_zone(d->url);
        if (!o)
            bad = true;
        else {
            struct { const char *part; const char *what; const char *kw; const char *val; bool secret; } parts[] = {
                {"DATABASE_HOST", "host", "host", d->host, false},
                {"DATABASE_NAME", "database name", "dbname", d->name, false},
                {"DATABASE_USER", "user", "user", d->user, false},
                {"DATABASE_PASSWORD", "password", "password", d->password, true},
                {"DATABASE_SSLMODE", "sslmode", "sslmode", d->sslmode, false},
                {"DATABASE_APPLICATION_NAME", "application_name", "application_name", d->application_name, false},
            };
            for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
                const char *in_url = pg_opt(o, parts[i].kw);
                if (parts[i].val && in_url && strcmp(parts[i].val, in_url) != 0) {
                    conflict(err, errlen, parts[i].part, "DATABASE_URL", parts[i].what, parts[i].val, in_url,
                             parts[i].secret || zone);
                    bad = true;
                }
            }
            const char *uport = pg_opt(o, "port");
            if (uport && !valid_pg_ports(uport)) {
                BAD("DATABASE_URL: bad port; expected a port from 1 to 65535 (or a comma-separated list "
                    "for several hosts)\n");
                uport = NULL;
            }
            char pbuf[16];
            snprintf(pbuf, sizeof pbuf, "%d", d->port);
            if (d->port && uport && strcmp(uport, pbuf) != 0) {
                conflict(err, errlen, "DATABASE_PORT", "DATABASE_URL", "port", pbuf, uport, zone);
                bad = true;
            }
            const char *sm = pg_opt(o, "sslmode");
            if (sm && !d->sslmode) {
                bool ok = false;
                for (size_t i = 0; i < NSSLMODES; i++)
                    ok = ok || strcmp(sm, sslmodes[i]) == 0;
                char b[96];
                if (!ok && zone)
                    BAD("DATABASE_URL: unknown sslmode (not shown: the URL has a user-info part, which may hold "
                        "the password); expected one of disable, allow, prefer, require, verify-ca, verify-full\n");
                else if (!ok)
                    BAD("DATABASE_URL: unknown sslmode '%s'; expected one of disable, allow, prefer, "
                        "require, verify-ca, verify-full\n", shown(sm, b, sizeof b));
            }
            PQconninfoFree(o);
        }
    }
    if (d->migration_url) {
        PQconninfoOption *o = pg_parse("DATABASE_MIGRATION_URL", d->migration_url, err, errlen);
        if (!o)
            bad = true;
        PQconninfoFree(o);
    }
    if (d->read_url) {
        PQconninfoOption *o = pg_parse("DATABASE_READ_URL", d->read_url, err, errlen);
        if (!o)
            bad = true;
        PQconninfoFree(o);
    }

    const gp_redis_config_t *r = &cfg->redis;
    if (!r->key_prefix || !valid_prefix(r->key_prefix)) {
        char b[96];
        BAD("REDIS_KEY_PREFIX: '%s' is not allowed; expected 1 to 64 bytes of letters, digits and : _ . -\n",
            r->key_prefix ? shown(r->key_prefix, b, sizeof b) : "(null)");
    }
    if (r->url) {
        redis_url_t u;
        if (!redis_parse("REDIS_URL", r->url, &u, err, errlen))
            bad = true;
        else {
            if (r->host && u.host[0] && strcmp(r->host, u.host) != 0) {
                conflict(err, errlen, "REDIS_HOST", "REDIS_URL", "host", r->host, u.host, false);
                bad = true;
            }
            char a[16], b[16];
            snprintf(a, sizeof a, "%d", r->port);
            snprintf(b, sizeof b, "%d", u.port);
            if (r->port && u.port && r->port != u.port) {
                conflict(err, errlen, "REDIS_PORT", "REDIS_URL", "port", a, b, false);
                bad = true;
            }
            snprintf(a, sizeof a, "%d", r->db);
            snprintf(b, sizeof b, "%d", u.db);
            if (r->db >= 0 && u.db >= 0 && r->db != u.db) {
                conflict(err, errlen, "REDIS_DB", "REDIS_URL", "database number", a, b, false);
                bad = true;
            }
            if (r->password && *r->password && u.has_password && strcmp(r->password, u.password) != 0) {
                conflict(err, errlen, "REDIS_PASSWORD", "REDIS_URL", "password", "", "", true);
                bad = true;
            }
            if (r->username && u.username[0] && strcmp(r->username, u.username) != 0) {
                conflict(err, errlen, "REDIS_USERNAME", "REDIS_URL", "user", r->username, u.username, false);
                bad = true;
            }
            memset(&u, 0, sizeof u);
        }
    }
    {
        bool url_tls = false;
        if (r->url) {
            redis_url_t u;
            url_tls = redis_parse("REDIS_URL", r->url, &u, NULL, 0) && u.tls;
            memset(&u, 0, sizeof u);
        }
        bool tls = r->tls >= 0 ? r->tls == 1 : url_tls;
        if (url_tls && r->tls == 0)
            BAD("REDIS_TLS: is 0 but REDIS_URL is rediss:// (TLS); set REDIS_TLS=1 or use redis://\n");
        if (!tls && (r->tls_ca_file || r->tls_cert_file || r->tls_key_file || r->tls_server_name))
            BAD("REDIS_TLS_*: set, but TLS is off; use a rediss:// REDIS_URL or set REDIS_TLS=1 (or unset the "
                "REDIS_TLS_* variables)\n");
        if (!r->tls_cert_file != !r->tls_key_file)
            BAD("%s: set without %s; a client certificate needs both\n",
                r->tls_cert_file ? "REDIS_TLS_CERT_FILE" : "REDIS_TLS_KEY_FILE",
                r->tls_cert_file ? "REDIS_TLS_KEY_FILE" : "REDIS_TLS_CERT_FILE");
        const char *files[3][2] = {{"REDIS_TLS_CA_FILE", r->tls_ca_file}, {"REDIS_TLS_CERT_FILE", r->tls_cert_file},
                                   {"REDIS_TLS_KEY_FILE", r->tls_key_file}};
        for (int i = 0; i < 3; i++) {
            char b[96];
            if (files[i][1] && access(files[i][1], R_OK) != 0)
                BAD("%s: cannot read '%s': %s\n", files[i][0], shown(files[i][1], b, sizeof b), strerror(errno));
        }
    }
    if (r->cluster_nodes && *r->cluster_nodes) {
        gp__redis_target_t t;
        bool host_set = r->host || r->port || r->url;
        if (gp__redis_target(r, &t, err, errlen) != GP_OK)
            bad = true;
        memset(&t, 0, sizeof t);
        if (host_set)
            BAD("REDIS_CLUSTER_NODES: set together with REDIS_URL, REDIS_HOST or REDIS_PORT; the nodes come from "
                "the cluster: unset those (REDIS_USERNAME, REDIS_PASSWORD and REDIS_TLS still apply)\n");
        if (r->sentinels)
            BAD("REDIS_CLUSTER_NODES: set together with REDIS_SENTINELS; a cache uses one topology: unset one\n");
        if (r->db > 0)
            BAD("REDIS_DB: is %d, but a Redis Cluster has database 0 only; unset it\n", r->db);
    }
    if (r->sentinels && *r->sentinels) {
        gp__redis_target_t t;
        bool host_set = r->host || r->port;
        if (r->url) {
            redis_url_t u;
            host_set |= redis_parse("REDIS_URL", r->url, &u, NULL, 0) && (u.host[0] || u.port);
            memset(&u, 0, sizeof u);
        }
        if (gp__redis_target(r, &t, err, errlen) != GP_OK)
            bad = true;
        memset(&t, 0, sizeof t);
        if (!r->sentinel_master || !*r->sentinel_master)
            BAD("REDIS_SENTINEL_MASTER: not set; with REDIS_SENTINELS it names the master to ask the sentinels for "
                "(the name in their `sentinel monitor` line)\n");
        if (host_set)
            BAD("REDIS_SENTINELS: set together with a Redis host (REDIS_URL, REDIS_HOST or REDIS_PORT); the master's "
                "address comes from the sentinels: unset those (REDIS_USERNAME, REDIS_PASSWORD and REDIS_DB still "
                "apply)\n");
    } else if (r->sentinel_master) {
        BAD("REDIS_SENTINEL_MASTER: set without REDIS_SENTINELS; set both (Sentinel) or neither\n");
    }
    if (r->sentinel_master && *r->sentinel_master && !valid_master_name(r->sentinel_master)) {
        char b[96];
        BAD("REDIS_SENTINEL_MASTER: '%s' is not allowed; expected 1 to 127 bytes of letters, digits and . _ -\n",
            shown(r->sentinel_master, b, sizeof b));
    }
#undef BAD
    if (!bad && err && before < errlen)
        err[before] = 0;
    return bad ? GP_ERR_CONFIG : GP_OK;
}

/* ---- resolution for the layers above -------------------------------------- */

static void ms_to_pg_seconds(int ms, char *out, size_t len)
{
    int s = (ms + 999) / 1000;
    if (s < 2)
        s = 2; /* libpq treats 1 as 2 anyway; say what it does */
    snprintf(out, len, "%d", s);
}

gp_status_t gp__pg_params(const gp_db_config_t *d, bool migration, gp__pg_params_t *p, char *err,
                          size_t errlen)
{
    memset(p, 0, sizeof *p);
    size_t n = 0;
    /* Never hand libpq a URL it cannot parse or would misread: its
     * connection errors would quote part of the password. */
    const char *url = migration ? d->migration_url : d->url;
    if (url) {
        PQconninfoOption *o = pg_parse(migration ? "DATABASE_MIGRATION_URL" : "DATABASE_URL", url, err, errlen);
        if (!o)
            return GP_ERR_CONFIG;
        PQconninfoFree(o);
    }
#define ADD(k, v) do { p->kw[n] = (k); p->val[n] = (v); n++; } while (0)
    if (migration) {
        if (!d->migration_url) {
            gp__bufappend(err, errlen, "DATABASE_MIGRATION_URL: is not set; expected the URL of the schema "
                          "owner role\n");
            return GP_ERR_CONFIG;
        }
        ADD("dbname", d->migration_url);
    } else {
        if (d->url)
            ADD("dbname", d->url);
        else {
            ADD("host", d->host ? d->host : "localhost");
            snprintf(p->port, sizeof p->port, "%d", d->port ? d->port : 5432);
            ADD("port", p->port);
            ADD("dbname", d->name ? d->name : "growplate_dev");
        }
        if (d->url && d->host)
            ADD("host", d->host);
        if (d->url && d->port) {
            snprintf(p->port, sizeof p->port, "%d", d->port);
            ADD("port", p->port);
        }
        if (d->url && d->name)
            ADD("dbname", d->name);
        if (d->user)
            ADD("user", d->user);
        if (d->password && *d->password)
            ADD("password", d->password);
        if (d->sslmode)
            ADD("sslmode", d->sslmode);
        /* Through PgBouncer in transaction mode the timeout is set in each
         * transaction instead (the query layer): it refuses the options
         * startup parameter, and a server connection serves many clients. */
        bool txpooler = d->pooler && strcmp(d->pooler, "transaction") == 0;
        if (d->statement_timeout_ms > 0 && !txpooler) {
            /* A later keyword overrides the URL's, so keep the URL's options. */
            PQconninfoOption *o = d->url ? PQconninfoParse(d->url, NULL) : NULL;
            const char *given = pg_opt(o, "options");
            /* Without them, PGOPTIONS: what libpq would have read had
             * growplate not passed options itself. */
            const char *env = given ? NULL : getenv("PGOPTIONS");
            if (env && *env)
                given = env;
            snprintf(p->options, sizeof p->options, "%s%s-c statement_timeout=%d", given ? given : "",
                     given ? " " : "", d->statement_timeout_ms);
            PQconninfoFree(o);
            ADD("options", p->options);
        }
    }
    if (d->application_name)
        ADD("application_name", d->application_name);
    ADD("fallback_application_name", "growplate");
    ms_to_pg_seconds(d->connect_timeout_ms, p->connect_timeout, sizeof p->connect_timeout);
    ADD("connect_timeout", p->connect_timeout);
    /* Detect dead peers on idle pooled connections. */
    ADD("keepalives", "1");
    ADD("keepalives_idle", "30");
    ADD("keepalives_interval", "10");
    ADD("keepalives_count", "3");
    ADD(NULL, NULL);
#undef ADD
    return GP_OK;
}

/* REDIS_SENTINELS / REDIS_CLUSTER_NODES: "host:port[,host:port...]" into
 * addrs (GP__SENTINELS_MAX). */
static bool addrs_parse(const char *name, const char *list, struct gp__redis_addr *addrs, int *n_addrs, char *err,
                        size_t errlen)
{
    const char *want = "expected host:port[,host:port...] (IPv6 as [addr]:port), 1 to 16 of them";
    *n_addrs = 0;
    for (const char *p = list;;) {
        size_t n = strcspn(p, ",");
        char item[300], b[96];
        snprintf(item, sizeof item, "%.*s", (int)(n < sizeof item - 1 ? n : sizeof item - 1), p);
        const char *host = item, *colon;
        size_t hlen;
        if (item[0] == '[') {
            char *close = strchr(item, ']');
            if (!close || close[1] != ':') {
                gp__bufappend(err, errlen, "%s: '%s' is not [addr]:port; %s\n", name, shown(item, b, sizeof b),
                              want);
                return false;
            }
            *close = 0;
            host = item + 1;
            colon = close + 1;
            hlen = strlen(host);
        } else {
            colon = strrchr(item, ':');
            hlen = colon ? (size_t)(colon - host) : 0;
        }
        long long port = 0;
        if (n == 0 || n >= sizeof item - 1 || !colon || hlen == 0 || hlen >= 256 ||
            parse_int(colon + 1, &port) != PARSE_OK || port < 1 || port > 65535 || colon[1] == '+' || colon[1] == '-') {
            gp__bufappend(err, errlen, "%s: '%s' is not host:port with a port from 1 to 65535; %s\n", name,
                          shown(item, b, sizeof b), want);
            return false;
        }
        if (*n_addrs == GP__SENTINELS_MAX) {
            gp__bufappend(err, errlen, "%s: more than %d addresses; %s\n", name, GP__SENTINELS_MAX, want);
            return false;
        }
        struct gp__redis_addr *a = &addrs[(*n_addrs)++];
        snprintf(a->host, sizeof a->host, "%.*s", (int)hlen, host);
        a->port = (int)port;
        if (!p[n])
            return true;
        p += n + 1;
    }
}


gp_status_t gp__redis_target(const gp_redis_config_t *r, gp__redis_target_t *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    redis_url_t u;
    memset(&u, 0, sizeof u);
    u.db = -1;
    if (r->url && !redis_parse("REDIS_URL", r->url, &u, err, errlen))
        return GP_ERR_CONFIG;
    snprintf(t->host, sizeof t->host, "%s", r->host ? r->host : u.host[0] ? u.host : "127.0.0.1");
    t->port = r->port ? r->port : u.port ? u.port : 6379;
    t->db = r->db >= 0 ? r->db : u.db >= 0 ? u.db : 0;
    snprintf(t->username, sizeof t->username, "%s", r->username ? r->username : u.username);
    snprintf(t->password, sizeof t->password, "%s",
             r->password && *r->password ? r->password : u.password);
    t->tls = r->tls >= 0 ? r->tls == 1 : u.tls;
    memset(&u, 0, sizeof u);
    t->tls_ca_file = r->tls_ca_file && *r->tls_ca_file ? r->tls_ca_file : NULL;
    t->tls_cert_file = r->tls_cert_file && *r->tls_cert_file ? r->tls_cert_file : NULL;
    t->tls_key_file = r->tls_key_file && *r->tls_key_file ? r->tls_key_file : NULL;
    t->tls_server_name = r->tls_server_name && *r->tls_server_name ? r->tls_server_name : NULL;
    if (r->cluster_nodes && *r->cluster_nodes &&
        !addrs_parse("REDIS_CLUSTER_NODES", r->cluster_nodes, t->cluster, &t->n_cluster, err, errlen))
        return GP_ERR_CONFIG;
    if (r->sentinels && *r->sentinels) {
        if (!addrs_parse("REDIS_SENTINELS", r->sentinels, t->sentinels, &t->n_sentinels, err, errlen))
            return GP_ERR_CONFIG;
        snprintf(t->sentinel_master, sizeof t->sentinel_master, "%s", r->sentinel_master ? r->sentinel_master : "");
    }
    return GP_OK;
}

/* ---- rendering ------------------------------------------------------------------ */

char *gp_config_db_display(const gp_db_config_t *d, char *out, size_t outlen)
{
    gp__pg_params_t p;
    const char *host = NULL, *port = NULL, *dbname = NULL, *user = NULL;
    bool pw = false;
    PQconninfoOption *o = NULL;
    if (!out || outlen == 0)
        return out;
    if (gp__pg_params(d, false, &p, NULL, 0) != GP_OK) {
        snprintf(out, outlen, "(invalid)");
        return out;
    }
    if (d->url && pg_url_extra_at(d->url)) {
        /* libpq's parts may hold bytes that, by another reading, are the
         * password: show the URL itself, masked from its first ':' to its
         * last '@'. */
        gp_redact(d->url, out, outlen);
        return out;
    }
    if (d->url) {
        o = PQconninfoParse(d->url, NULL);
        if (!o) {
            snprintf(out, outlen, "(invalid DATABASE_URL)");
            return out;
        }
        host = pg_opt(o, "host");
        port = pg_opt(o, "port");
        dbname = pg_opt(o, "dbname");
        user = pg_opt(o, "user");
        pw = pg_opt(o, "password") != NULL;
    }
    for (size_t i = 0; p.kw[i]; i++) {
        if (strcmp(p.kw[i], "host") == 0) host = p.val[i];
        else if (strcmp(p.kw[i], "port") == 0) port = p.val[i];
        else if (strcmp(p.kw[i], "dbname") == 0 && !(d->url && p.val[i] == d->url)) dbname = p.val[i];
        else if (strcmp(p.kw[i], "user") == 0) user = p.val[i];
        else if (strcmp(p.kw[i], "password") == 0) pw = true;
    }
    /* Through gp_redact as a last net: a part that itself looks like user
     * info (a conninfo's dbname may be a whole URL) is masked too. */
    gp__redactf(out, outlen, "postgresql://%s%s%s%s%s%s/%s", user ? user : "", pw ? ":********" : "",
                user || pw ? "@" : "", host ? host : "(libpq default host)", port ? ":" : "", port ? port : "",
                dbname ? dbname : "");
    PQconninfoFree(o);
    return out;
}

/* "h1:p1,[v6]:p2,..." */
static void addr_list(const struct gp__redis_addr *a, int n, char *out, size_t len)
{
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        bool v6 = strchr(a[i].host, ':') != NULL;
        gp__bufappend(out, len, "%s%s%s%s:%d", i ? "," : "", v6 ? "[" : "", a[i].host, v6 ? "]" : "", a[i].port);
    }
}

char *gp_config_redis_display(const gp_redis_config_t *r, char *out, size_t outlen)
{
    gp__redis_target_t t;
    if (!out || outlen == 0)
        return out;
    if (gp__redis_target(r, &t, NULL, 0) != GP_OK) {
        snprintf(out, outlen, "(invalid REDIS_URL)");
        return out;
    }
    bool ipv6 = strchr(t.host, ':') != NULL;
    if (t.n_cluster) {
        /* redis-cluster[+tls]://[user[:********]@]n1:p1,n2:p2 */
        char list[600];
        addr_list(t.cluster, t.n_cluster, list, sizeof list);
        gp__redactf(out, outlen, "redis-cluster%s://%s%s%s%s", t.tls ? "+tls" : "", t.username,
                    t.password[0] ? ":********" : "", t.username[0] || t.password[0] ? "@" : "", list);
    } else if (t.n_sentinels) {
        /* redis-sentinel://[user[:********]@]s1:p1,s2:p2/<master>/<db> */
        char list[600];
        addr_list(t.sentinels, t.n_sentinels, list, sizeof list);
        gp__redactf(out, outlen, "redis-sentinel%s://%s%s%s%s/%s/%d", t.tls ? "+tls" : "", t.username,
                    t.password[0] ? ":********" : "",
                    t.username[0] || t.password[0] ? "@" : "", list, t.sentinel_master, t.db);
    } else {
        gp__redactf(out, outlen, "redis%s://%s%s%s%s%s%s:%d/%d", t.tls ? "s" : "", t.username,
                    t.password[0] ? ":********" : "",
                    t.username[0] || t.password[0] ? "@" : "", ipv6 ? "[" : "", t.host, ipv6 ? "]" : "", t.port,
                    t.db);
    }
    memset(&t, 0, sizeof t);
    return out;
}

/* JSON string body escape into a small buffer (truncated at a whole
 * character); bytes that are not UTF-8 (a percent-decoded URL part can be
 * anything) become U+FFFD, so the output is always valid JSON. */
static const char *jesc(const char *s, char *out, size_t len)
{
    size_t o = 0, n = strlen(s);
    const unsigned char *p = (const unsigned char *)s;
    bool full = false;
    while (n && !full) {
        long bad = gp__utf8_invalid_at(p, n);
        size_t good = bad < 0 ? n : (size_t)bad, i = 0;
        while (i < good && !full) {
            unsigned char c = p[i];
            size_t k = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2; /* a valid sequence's length */
            if (o + (k > 6 ? k : 6) + 1 >= len)
                full = true;
            else if (c == '"' || c == '\\') { out[o++] = '\\'; out[o++] = (char)c; }
            else if (c < 0x20) o += (size_t)snprintf(out + o, len - o, "\\u%04x", c);
            else { memcpy(out + o, p + i, k); o += k; }
            if (!full)
                i += k;
        }
        if (!full && i < n) { /* the byte the validator stopped at */
            if (o + 7 >= len)
                full = true;
            else {
                o += (size_t)snprintf(out + o, len - o, "\\ufffd");
                i++;
            }
        }
        p += i;
        n -= i;
    }
    out[o] = 0;
    return out;
}

/* The PG* variable a setting's value came from, while the setting still
 * holds it (a config copied and changed in code shows its own value). */
static const pgvar_t *setting_source(const gp_config_t *cfg, const var_t *v)
{
    const owned_t *o = cfg->owned_;
    for (size_t i = 0; o && i < o->npg; i++) {
        const pgvar_t *p = &o->pg[i];
        if (p->use != PGV_AS_SETTING || strcmp(p->setting, v->name) != 0)
            continue;
        if (v->kind == V_INT ? *FIELD_INT(cfg, v) == p->num : *FIELD_STR(cfg, v) == p->value)
            return p;
    }
    return NULL;
}

static gp_status_t describe(const gp_config_t *cfg, char **out, bool json)
{
    if (!cfg || !out)
        return GP_ERR_INVALID;
    const owned_t *ow = cfg->owned_;
    gp__sbuf_t b = {0};
    char val[1024], red[1024];
    if (json)
        gp__sbuf_add(&b, "{");
    bool first = true;
    for (size_t i = 0; i < NVARS; i++) {
        const var_t *v = &vars[i];
        bool is_str = true, set = true;
        switch (v->kind) {
        case V_SECRET: {
            const char *s = *FIELD_STR(cfg, v);
            set = s && *s;
            snprintf(val, sizeof val, "%s", set ? "********" : "");
            break;
        }
        case V_STR:
        case V_URL: {
            const char *s = *FIELD_STR(cfg, v);
            set = s != NULL;
            gp_redact(s ? s : "", red, sizeof red);
            snprintf(val, sizeof val, "%s", red);
            break;
        }
        case V_INT:
        case V_MS: {
            int x = *FIELD_INT(cfg, v);
            is_str = false;
            set = !((v->offset == DB(port) || v->offset == RD(port)) && x == 0) && !(v->offset == RD(db) && x < 0);
            snprintf(val, sizeof val, "%d", x);
            break;
        }
        }
        const pgvar_t *src = set ? setting_source(cfg, v) : NULL;
        if (json) {
            char e[2048];
            if (!set)
                gp__sbuf_add(&b, "%s\"%s\":null", first ? "" : ",", v->name);
            else if (is_str)
                gp__sbuf_add(&b, "%s\"%s\":\"%s\"", first ? "" : ",", v->name, jesc(val, e, sizeof e));
            else
                gp__sbuf_add(&b, "%s\"%s\":%s", first ? "" : ",", v->name, val);
        } else {
            gp__sbuf_add(&b, "%-27s %s%s%s%s%s\n", v->name, set ? val : "(unset)",
                   set && v->kind == V_MS ? " ms" : "", src ? " (from " : "", src ? src->name : "", src ? ")" : "");
        }
        first = false;
    }
    const char *env = ow ? ow->environment : NULL;
    if (json)
        gp__sbuf_add(&b, env ? ",\"GROWPLATE_ENV\":\"%s\"" : ",\"GROWPLATE_ENV\":null", env ? env : "");
    else
        gp__sbuf_add(&b, "%-27s %s\n", "GROWPLATE_ENV", env ? env : "(unset: not development)");
    char t[512];
    if (json) {
        char e[1200];
        gp__sbuf_add(&b, ",\"effective\":{\"postgres\":\"%s\"",
               jesc(gp_config_db_display(&cfg->db, t, sizeof t), e, sizeof e));
        gp__sbuf_add(&b, ",\"redis\":\"%s\"}", jesc(gp_config_redis_display(&cfg->redis, t, sizeof t), e, sizeof e));
        /* Where a setting's value came from, when not from its own variable. */
        gp__sbuf_add(&b, ",\"sources\":{");
        bool any = false;
        for (size_t i = 0; i < NVARS; i++) {
            const pgvar_t *src = setting_source(cfg, &vars[i]);
            if (src) {
                gp__sbuf_add(&b, "%s\"%s\":\"%s\"", any ? "," : "", vars[i].name, src->name);
                any = true;
            }
        }
        gp__sbuf_add(&b, "},\"pg_environment\":{");
        for (size_t i = 0; ow && i < ow->npg; i++) {
            const pgvar_t *p = &ow->pg[i];
            char ev[2048], en[400];
            gp_redact(p->value, red, sizeof red);
            gp__sbuf_add(&b, "%s\"%s\":{\"value\":\"%s\",\"used\":%s,\"note\":\"%s\"}", i ? "," : "", p->name,
                         p->secret && *p->value ? "********" : jesc(red, ev, sizeof ev),
                         p->use == PGV_UNUSED ? "false" : "true", jesc(p->note, en, sizeof en));
        }
        gp__sbuf_add(&b, "}}");
    } else {
        if (ow && ow->npg) {
            gp__sbuf_add(&b, "\nlibpq's variables (PG*), used only for what the settings above leave out:\n");
            for (size_t i = 0; i < ow->npg; i++) {
                const pgvar_t *p = &ow->pg[i];
                gp_redact(p->value, red, sizeof red);
                gp__sbuf_add(&b, "%-27s %s (%s)\n", p->name, p->secret && *p->value ? "********" : red, p->note);
            }
        }
        gp__sbuf_add(&b, "\n%-27s %s\n", "effective PostgreSQL", gp_config_db_display(&cfg->db, t, sizeof t));
        gp__sbuf_add(&b, "%-27s %s\n", "effective Redis", gp_config_redis_display(&cfg->redis, t, sizeof t));
    }
    if (b.oom || !b.s) {
        free(b.s);
        return GP_ERR_NOMEM;
    }
    *out = b.s;
    return GP_OK;
}

gp_status_t gp_config_describe(const gp_config_t *cfg, char **out) { return describe(cfg, out, false); }
gp_status_t gp_config_describe_json(const gp_config_t *cfg, char **out) { return describe(cfg, out, true); }
