/* cmd_gen_types.c — `growplate gen-types`: write (or check) the C row types
 * generated from the migrated schema. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define DEFAULT_HEADER "include/growplate/rows.h"
#define DEFAULT_SOURCE "src/rows.c"

void cmd_gen_types_help(FILE *out)
{
    fprintf(out,
            "usage: growplate gen-types [--header FILE] [--source FILE] [--check]\n"
            "                           [--table NAME]... [--prefix P] [--include PATH]\n"
            "\n"
            "Read the migrated schema from pg_catalog (as DATABASE_URL) and write the C\n"
            "row types: one struct per table, an enum per enum type, explicit\n"
            "nullability, decoders from gp_result_t that map columns by name once per\n"
            "result, a free function per struct, column-name constants.\n"
            "\n"
            "  --header FILE  default " DEFAULT_HEADER "\n"
            "  --source FILE  default " DEFAULT_SOURCE "\n"
            "  --check        write nothing; exit 1 when a file differs from what would\n"
            "                 be generated (names it on stderr)\n"
            "  --table NAME   only this table (repeatable; it must exist)\n"
            "  --prefix P     only tables whose name starts with P\n"
            "  --include PATH how the source includes the header (default: the\n"
            "                 header's file name)\n"
            "With --table or --prefix (a service's own tables), --header and --source\n"
            "are required: the files are the service's, never the library's.\n"
            "\n"
            "Run it from the source tree after `growplate migrate`; commit the files.\n"
            "exit codes: 0 written / up to date; 1 (--check) out of date; 2 failure\n"
            "(connection, a column type with no C mapping, a file not written); 3\n"
            "invalid configuration or usage. No --json (given, it is a usage error,\n"
            "reported as a JSON error object like every failure with --json).\n");
}

/* NULL when the file cannot be read. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0, n;
    char chunk[8192];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (!buf && (buf = malloc(1)))
        len = 0;
    if (buf)
        buf[len] = 0;
    return buf;
}

/* Write through a temporary file and rename, so a reader never sees half. */
static bool write_file(const char *path, const char *text)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        cli_fail(CLI_FAILURE, GP_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
        return false;
    }
    bool ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        cli_fail(CLI_FAILURE, GP_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return false;
    }
    return true;
}

/* true when the file holds exactly `text`. */
static bool same(const char *path, const char *text)
{
    char *old = slurp(path);
    bool eq = old && strcmp(old, text) == 0;
    free(old);
    return eq;
}

int cmd_gen_types(int argc, char **argv)
{
    const char *hpath = NULL, *cpath = NULL;
    bool check = false;
    const char *tables[64];
    gp_gen_types_opts_t opts = {.tables = tables};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check") == 0)
            check = true;
        else if (strcmp(argv[i], "--header") == 0 && i + 1 < argc)
            hpath = argv[++i];
        else if (strcmp(argv[i], "--source") == 0 && i + 1 < argc)
            cpath = argv[++i];
        else if (strcmp(argv[i], "--table") == 0 && i + 1 < argc && opts.n_tables < 64)
            tables[opts.n_tables++] = argv[++i];
        else if (strcmp(argv[i], "--prefix") == 0 && i + 1 < argc)
            opts.prefix = argv[++i];
        else if (strcmp(argv[i], "--include") == 0 && i + 1 < argc)
            opts.include = argv[++i];
        else {
            char b[128];
            return cli_usage("unknown or incomplete option '%s'", cli_shown(argv[i], b, sizeof b));
        }
    }
    bool service = opts.n_tables || (opts.prefix && *opts.prefix);
    if (service && (!hpath || !cpath))
        return cli_usage("--table/--prefix generate a service's own row types: give --header and --source (the "
                         "service's files)");
    if (!service && opts.include)
        return cli_usage("--include is for a service's own row types (with --table or --prefix)");
    if (service && !opts.include) {
        const char *slash = strrchr(hpath, '/');
        opts.include = slash ? slash + 1 : hpath;
    }
    if (!hpath)
        hpath = DEFAULT_HEADER;
    if (!cpath)
        cpath = DEFAULT_SOURCE;
    gp_config_t cfg;
    gp_config_init(&cfg);
    int rc = cli_load_config(&cfg);
    if (rc != CLI_OK) {
        gp_config_release(&cfg);
        return rc;
    }
    char *header = NULL, *source = NULL;
    gp_error_t err;
    gp_error_clear(&err);
    gp_status_t st = gp_gen_types_for(&cfg, service ? &opts : NULL, &header, &source, &err);
    gp_config_release(&cfg);
    if (st != GP_OK) {
        err.status = st;
        free(header);
        free(source);
        return cli_fail_error(cli_exit_for(st), &err, NULL);
    }
    if (check) {
        if (!same(hpath, header)) {
            fprintf(stderr, "growplate gen-types: %s is out of date with the schema\n", hpath);
            rc = CLI_FINDINGS;
        }
        if (!same(cpath, source)) {
            fprintf(stderr, "growplate gen-types: %s is out of date with the schema\n", cpath);
            rc = CLI_FINDINGS;
        }
    } else if (!write_file(hpath, header) || !write_file(cpath, source)) {
        rc = CLI_FAILURE;
    }
    free(header);
    free(source);
    return rc;
}
