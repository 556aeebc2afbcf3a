/* migrate_set.c — a service's own migration set: loaded from a directory
 * of NNNN_name.sql files, applied with the library's machinery under the
 * service's own bookkeeping table and advisory lock key. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "schema_internal.h"

#define MAX_FILE_BYTES (16 * 1024 * 1024)

int64_t gp_migration_lock_key_for(const char *table)
{
    gp__sha256_t c;
    unsigned char d[32];
    gp__sha256_init(&c);
    gp__sha256_update(&c, "growplate migration lock ", 25);
    if (table)
        gp__sha256_update(&c, table, strlen(table));
    gp__sha256_final(&c, d);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | d[i];
    return (int64_t)v;
}

gp_status_t gp_migrate_set(const gp_config_t *cfg, const gp_migration_set_t *set, const gp_migrate_opts_t *opts,
                           gp_migrate_report_t **out, gp_error_t *err)
{
    if (out)
        *out = NULL;
    if (!cfg || !set)
        return gp__client_error(err, GP_ERR_INVALID, "gp_migrate_set: no configuration or migration set given");
    if (!gp__plain_ident(set->table))
        return gp__client_error(err, GP_ERR_INVALID, "gp_migrate_set: the bookkeeping table must be a plain "
                                "identifier ([a-z_][a-z0-9_]*, at most 63 bytes), e.g. \"myservice_migrations\"");
    if (strcmp(set->table, GP_MIGRATIONS_TABLE) == 0)
        return gp__client_error(err, GP_ERR_INVALID, "gp_migrate_set: " GP_MIGRATIONS_TABLE " is the library's "
                                "own bookkeeping table; give the service's set a table of its own");
    int64_t key = set->lock_key ? set->lock_key : gp_migration_lock_key_for(set->table);
    if (key == GP_MIGRATION_LOCK_KEY)
        return gp__client_error(err, GP_ERR_INVALID, "gp_migrate_set: GP_MIGRATION_LOCK_KEY is the library's own "
                                "lock key; give the service's set another (or 0 to derive one from the table)");
    if (set->count && !set->migrations)
        return gp__client_error(err, GP_ERR_INVALID, "gp_migrate_set: %zu migrations announced, none given",
                                set->count);
    return gp__migrate_table(cfg, set->table, key, false, set->migrations, set->count, opts, out, err);
}

void gp_migration_set_free(gp_migration_t *m, size_t count)
{
    if (!m)
        return;
    for (size_t i = 0; i < count; i++) {
        free((char *)m[i].name);
        free((char *)m[i].sql);
        free((char *)m[i].checksum);
    }
    free(m);
}

/* "NNNN_name.sql" -> version and name; false for any other file name. */
static bool parse_name(const char *file, int *version, char *name, size_t len)
{
    size_t n = strlen(file);
    if (n < 10 || strcmp(file + n - 4, ".sql") != 0 || file[4] != '_')
        return false;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        if (file[i] < '0' || file[i] > '9')
            return false;
        v = v * 10 + (file[i] - '0');
    }
    size_t nlen = n - 9;
    if (nlen >= len)
        return false;
    for (size_t i = 0; i < nlen; i++) {
        char c = file[5 + i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    memcpy(name, file + 5, nlen);
    name[nlen] = 0;
    *version = v;
    return true;
}

static gp_status_t read_file(const char *path, char **text, size_t *len, gp_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return gp__client_error(err, GP_ERR_IO, "cannot read migration %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    gp_status_t st = GP_OK;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = cap <= MAX_FILE_BYTES ? realloc(buf, cap) : NULL;
            if (!nb) {
                st = cap > MAX_FILE_BYTES ? gp__client_error(err, GP_ERR_INVALID, "migration %s is larger than "
                                                             "16 MiB; split it", path)
                                          : gp__client_error(err, GP_ERR_NOMEM, "out of memory reading %s", path);
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got < 4096) {
            if (ferror(f))
                st = gp__client_error(err, GP_ERR_IO, "cannot read migration %s: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (st == GP_OK && n == 0)
        st = gp__client_error(err, GP_ERR_INVALID, "migration %s is empty", path);
    if (st == GP_OK && gp__utf8_invalid_at((const unsigned char *)buf, n) >= 0)
        st = gp__client_error(err, GP_ERR_INVALID, "migration %s is not UTF-8 text (or holds a NUL byte) at byte "
                              "%ld", path, gp__utf8_invalid_at((const unsigned char *)buf, n));
    if (st != GP_OK) {
        free(buf);
        return st;
    }
    buf[n] = 0;
    *text = buf;
    *len = n;
    return GP_OK;
}

static int by_version(const void *a, const void *b)
{
    const gp_migration_t *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

gp_status_t gp_migration_set_load(const char *dir, gp_migration_t **out, size_t *count, gp_error_t *err)
{
    if (!out || !count)
        return gp__client_error(err, GP_ERR_INVALID, "gp_migration_set_load: no output given");
    *out = NULL;
    *count = 0;
    if (!dir)
        return gp__client_error(err, GP_ERR_INVALID, "gp_migration_set_load: no directory given");
    DIR *d = opendir(dir);
    if (!d)
        return gp__client_error(err, GP_ERR_IO, "cannot open the migration directory %s: %s", dir, strerror(errno));
    gp_migration_t *set = NULL;
    size_t n = 0, cap = 0;
    gp_status_t st = GP_OK;
    struct dirent *de;
    while (st == GP_OK && (de = readdir(d))) {
        int version;
        char name[64];
        if (!parse_name(de->d_name, &version, name, sizeof name))
            continue;
        if (version == 0) {
            st = gp__client_error(err, GP_ERR_INVALID, "migration %s/%s: versions start at 0001", dir, de->d_name);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            gp_migration_t *ns = realloc(set, cap * sizeof *set);
            if (!ns) {
                st = gp__client_error(err, GP_ERR_NOMEM, "out of memory");
                break;
            }
            set = ns;
        }
        gp_migration_t *m = &set[n];
        memset(m, 0, sizeof *m);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        char *text = NULL, *nm = strdup(name), *sum = malloc(65);
        size_t len = 0;
        if (!nm || !sum) {
            free(nm);
            free(sum);
            st = gp__client_error(err, GP_ERR_NOMEM, "out of memory");
            break;
        }
        if ((st = read_file(path, &text, &len, err)) != GP_OK) {
            free(nm);
            free(sum);
            break;
        }
        gp__sha256_hex(text, len, sum);
        *m = (gp_migration_t){.version = version, .name = nm, .sql = text, .sql_len = len, .checksum = sum};
        n++;
    }
    closedir(d);
    if (st == GP_OK && n > 1) {
        qsort(set, n, sizeof *set, by_version);
        for (size_t i = 1; i < n && st == GP_OK; i++)
            if (set[i].version == set[i - 1].version)
                st = gp__client_error(err, GP_ERR_INVALID, "migrations in %s: version %04d is used twice (%s and "
                                      "%s)", dir, set[i].version, set[i - 1].name, set[i].name);
    }
    if (st != GP_OK) {
        gp_migration_set_free(set, n);
        return st;
    }
    *out = set;
    *count = n;
    if (err)
        gp_error_clear(err);
    return GP_OK;
}
