/* gentypes.c — `growplate gen-types`: read the migrated schema from
 * pg_catalog and write the C row types (include/growplate/rows.h) and
 * their table-driven decoders (src/rows.c). The output depends only on the
 * catalog, never on time or environment, so it can be compared byte for
 * byte with the committed files. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pool_internal.h"
#include "growplate/rows_support.h"
#include "schema_internal.h"

/* Every enum type of schema public with its labels, in sort order. */
static const char Q_ENUMS[] =
    "SELECT t.typname, e.enumlabel FROM pg_catalog.pg_type t"
    " JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace"
    " JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid WHERE n.nspname = 'public' AND t.typtype = 'e'"
    " ORDER BY t.typname, e.enumsortorder";

/* Every column of every table of schema public but the migrations' own. */
static const char Q_COLUMNS[] =
    "SELECT c.relname, a.attname, a.attnotnull, t.typname, t.typtype, tn.nspname,"
    "       pg_catalog.format_type(a.atttypid, a.atttypmod)"
    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
    " JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
    " JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace"
    " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
    "   AND c.relname <> '" GP_MIGRATIONS_TABLE "'"
    " ORDER BY c.relname, a.attnum";

static const struct {
    const char *typname;
    gp_rows_col_kind_t kind;
    const char *kind_name; /* the GP_ROWS_COL_ constant, in the generated source */
    const char *ctype;     /* the field's C type */
    const char *doc;       /* how the value is represented */
} TYPES[] = {
    {"uuid", GP_ROWS_COL_UUID, "GP_ROWS_COL_UUID", "gp_uuid_t", ""},
    {"text", GP_ROWS_COL_TEXT, "GP_ROWS_COL_TEXT", "char *", "malloc'd"},
    {"varchar", GP_ROWS_COL_TEXT, "GP_ROWS_COL_TEXT", "char *", "malloc'd"},
    {"int2", GP_ROWS_COL_INT16, "GP_ROWS_COL_INT16", "int16_t", ""},
    {"int4", GP_ROWS_COL_INT32, "GP_ROWS_COL_INT32", "int32_t", ""},
    {"int8", GP_ROWS_COL_INT64, "GP_ROWS_COL_INT64", "int64_t", ""},
    {"bool", GP_ROWS_COL_BOOL, "GP_ROWS_COL_BOOL", "bool", ""},
    {"float8", GP_ROWS_COL_DOUBLE, "GP_ROWS_COL_DOUBLE", "double", ""},
    {"numeric", GP_ROWS_COL_NUMERIC, "GP_ROWS_COL_NUMERIC", "char *", "decimal text, malloc'd"},
    {"timestamptz", GP_ROWS_COL_TIMESTAMPTZ, "GP_ROWS_COL_TIMESTAMPTZ", "int64_t", "microseconds since the Unix epoch"},
    {"date", GP_ROWS_COL_DATE, "GP_ROWS_COL_DATE", "int32_t", "days since 1970-01-01"},
    {"json", GP_ROWS_COL_JSON, "GP_ROWS_COL_JSON", "json_t *", "a jansson reference"},
    {"jsonb", GP_ROWS_COL_JSONB, "GP_ROWS_COL_JSONB", "json_t *", "a jansson reference"},
    {"_text", GP_ROWS_COL_TEXT_ARRAY, "GP_ROWS_COL_TEXT_ARRAY", "char **", "one malloc'd block"},
    {"_varchar", GP_ROWS_COL_TEXT_ARRAY, "GP_ROWS_COL_TEXT_ARRAY", "char **", "one malloc'd block"},
};
#define NTYPES (sizeof TYPES / sizeof TYPES[0])
#define ENUM_TYPE ((int)NTYPES)

typedef struct column {
    const char *name, *sqltype, *enum_name;
    bool nullable;
    int type; /* index into TYPES, or ENUM_TYPE */
} column_t;

typedef struct gen {
    FILE *h, *c;
    gp_error_t *err;
} gen_t;

static const char *const C_KEYWORDS[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "bool",
    "true", "false",
};

static bool c_identifier(const char *s)
{
    if (!*s || !(islower((unsigned char)*s) || *s == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
            return false;
    for (size_t i = 0; i < sizeof C_KEYWORDS / sizeof *C_KEYWORDS; i++)
        if (strcmp(s, C_KEYWORDS[i]) == 0)
            return false;
    return true;
}

static void upper(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc(toupper((unsigned char)*s), f);
}

/* An enum label as the tail of a C constant: letters and digits upper-cased,
 * everything else '_'. */
static void label_const(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc(isalnum((unsigned char)*s) ? toupper((unsigned char)*s) : '_', f);
}

/* A C string literal of arbitrary text. */
static void c_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\%03o", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static const char HEADER_INTRO[] =
    "/* growplate/rows.h — row types of GrowPlate's schema. GENERATED by\n"
    " * `growplate gen-types` from the migrated database's catalog: DO NOT EDIT.\n"
    " * Change the schema with a new migration, migrate, regenerate; a test\n"
    " * fails whenever this file and the migrations disagree.\n";

static const char HEADER_DOC[] =
    " *\n"
    " * For each enum type E: gp_E_t (values in the type's sort order),\n"
    " * gp_E_label() and gp_E_parse(). For each table T: gp_row_T_t with one\n"
    " * field per column in column order (a nullable column has a\n"
    " * `bool <column>_is_null` beside it; an array a `size_t <column>_count`),\n"
    " * GP_T_COL_<COLUMN> name constants, GP_T_COLUMNS (the select list), and\n"
    " *   gp_row_T_bind()       find every column in a result by name and check\n"
    " *                         its type: once per result. Errors:\n"
    " *                         GP_ERR_NOT_FOUND (missing column), GP_ERR_TYPE\n"
    " *                         (another type), with table and column named.\n"
    " *   gp_row_T_decode()     decode one row with that map into *out. Errors:\n"
    " *                         GP_ERR_NULL (NULL in a NOT NULL column),\n"
    " *                         GP_ERR_TYPE (an unknown enum label), GP_ERR_RANGE,\n"
    " *                         GP_ERR_NOMEM; *out then owns nothing.\n"
    " *   gp_row_T_decode_all() both, for every row, into a new array.\n"
    " *   gp_row_T_free()       free what a row owns (strings, arrays, JSON) and\n"
    " *                         zero it (not the struct itself); NULL accepted.\n"
    " *   gp_row_T_free_all()   free an array from decode_all and its rows.\n"
    " * Enum columns decode from the enum type itself or from a text cast.\n"
    " *\n"
    " * Thread-safety: no shared state; a result may be decoded from several\n"
    " * threads at once, a row belongs to its caller.\n"
    " */\n";

static const char HEADER_INCLUDES[] =
    "\n"
    "#include <stdbool.h>\n"
    "#include <stddef.h>\n"
    "#include <stdint.h>\n"
    "\n"
    "#include \"growplate/query.h\"\n"
    "\n"
    "#ifdef __cplusplus\n"
    "extern \"C\" {\n"
    "#endif\n";

static const char SOURCE_TOP[] =
    "/* rows.c — decoders of the row types in growplate/rows.h. GENERATED by\n"
    " * `growplate gen-types`: DO NOT EDIT. The logic lives in rows_support.c;\n"
    " * this file only describes the tables. */\n"
    "#include <stddef.h>\n"
    "#include <string.h>\n"
    "\n"
    "#include \"growplate/rows.h\"\n"
    "#include \"growplate/rows_support.h\"\n";

/* Whether a table is in the output (no selection: every table). */
static bool selected(const gp_gen_types_opts_t *o, const char *table)
{
    if (!o || (!o->n_tables && !(o->prefix && *o->prefix)))
        return true;
    if (o->prefix && *o->prefix && strncmp(table, o->prefix, strlen(o->prefix)) == 0)
        return true;
    for (size_t i = 0; i < o->n_tables; i++)
        if (o->tables[i] && strcmp(o->tables[i], table) == 0)
            return true;
    return false;
}

/* The top of both files: the library's, or a service's naming its header. */
static void write_tops(gen_t *g, const gp_gen_types_opts_t *o)
{
    const char *inc = o && o->include && *o->include ? o->include : NULL;
    if (!inc) {
        fprintf(g->h, "%s%s#ifndef GROWPLATE_ROWS_H\n#define GROWPLATE_ROWS_H\n%s", HEADER_INTRO, HEADER_DOC,
                HEADER_INCLUDES);
        fputs(SOURCE_TOP, g->c);
        return;
    }
    fprintf(g->h, "/* %s — row types of the service's own tables. GENERATED by\n"
                  " * `growplate gen-types` from the migrated database's catalog: DO NOT EDIT.\n"
                  " * Link with libgrowplate (the decoders are in growplate/rows_support.h).\n", inc);
    fputs(HEADER_DOC, g->h);
    char guard[160];
    size_t n = 0;
    for (const char *p = inc; *p && n + 2 < sizeof guard; p++)
        guard[n++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    guard[n] = 0;
    fprintf(g->h, "#ifndef %s_\n#define %s_\n%s", guard, guard, HEADER_INCLUDES);
    fprintf(g->c, "/* The decoders of the row types in %s. GENERATED by `growplate gen-types`:\n"
                  " * DO NOT EDIT. The logic lives in libgrowplate; this file only describes the\n"
                  " * tables. */\n"
                  "#include <stddef.h>\n"
                  "#include <string.h>\n"
                  "\n"
                  "#include \"%s\"\n"
                  "#include <growplate/rows_support.h>\n", inc, inc);
}

static void gen_enum(gen_t *g, const char *name, char **labels, int n)
{
    FILE *h = g->h, *c = g->c;
    fprintf(h, "\n/* enum %s */\ntypedef enum gp_%s {\n", name, name);
    for (int i = 0; i < n; i++) {
        fprintf(h, "    GP_");
        upper(h, name);
        fputc('_', h);
        label_const(h, labels[i]);
        fprintf(h, " = %d, /* ", i);
        c_string(h, labels[i]);
        fprintf(h, " */\n");
    }
    fprintf(h, "    GP_");
    upper(h, name);
    fprintf(h, "_COUNT_\n} gp_%s_t;\n", name);
    fprintf(h, "/* The SQL label of v; NULL when v is out of range. */\n");
    fprintf(h, "GP_EXPORT const char *gp_%s_label(gp_%s_t v);\n", name, name);
    fprintf(h, "/* Parse a label (exact). Errors: GP_ERR_TYPE (unknown), GP_ERR_INVALID. */\n");
    fprintf(h, "GP_EXPORT gp_status_t gp_%s_parse(const char *label, gp_%s_t *out);\n", name, name);

    fprintf(c, "\nstatic const char *const %s_labels[] = {", name);
    for (int i = 0; i < n; i++) {
        fprintf(c, "%s", i ? ", " : "");
        c_string(c, labels[i]);
    }
    fprintf(c, "};\n");
    fprintf(c, "_Static_assert(sizeof(gp_%s_t) == sizeof(int), \"enum fields are stored as int\");\n\n", name);
    fprintf(c, "const char *gp_%s_label(gp_%s_t v) { return gp_rows_enum_label(%s_labels, %d, (int)v); }\n\n", name,
            name, name, n);
    fprintf(c,
            "gp_status_t gp_%s_parse(const char *label, gp_%s_t *out)\n"
            "{\n"
            "    int v;\n"
            "    gp_status_t st = gp_rows_enum_parse(%s_labels, %d, label, label ? strlen(label) : 0, &v);\n"
            "    if (st == GP_OK && out)\n"
            "        *out = (gp_%s_t)v;\n"
            "    return out ? st : GP_ERR_INVALID;\n"
            "}\n",
            name, name, name, n, name);
}

static void gen_table(gen_t *g, const char *table, const column_t *cols, int n)
{
    FILE *h = g->h, *c = g->c;
    fprintf(h, "\n/* ---- table public.%s ---- */\n#define GP_", table);
    upper(h, table);
    fprintf(h, "_TABLE \"%s\"\n", table);
    for (int i = 0; i < n; i++) {
        fprintf(h, "#define GP_");
        upper(h, table);
        fprintf(h, "_COL_");
        upper(h, cols[i].name);
        fprintf(h, " \"%s\"\n", cols[i].name);
    }
    fprintf(h, "#define GP_");
    upper(h, table);
    fprintf(h, "_COLUMNS \"");
    for (int i = 0; i < n; i++)
        fprintf(h, "%s%s", i ? ", " : "", cols[i].name);
    fprintf(h, "\"\n#define GP_");
    upper(h, table);
    fprintf(h, "_NCOLS %d\n\ntypedef struct gp_row_%s {\n", n, table);
    for (int i = 0; i < n; i++) {
        const column_t *col = &cols[i];
        char ctype[96];
        if (col->type == ENUM_TYPE)
            snprintf(ctype, sizeof ctype, "gp_%s_t ", col->enum_name);
        else
            snprintf(ctype, sizeof ctype, "%s%s", TYPES[col->type].ctype,
                     TYPES[col->type].ctype[strlen(TYPES[col->type].ctype) - 1] == '*' ? "" : " ");
        const char *doc = col->type == ENUM_TYPE ? "" : TYPES[col->type].doc;
        fprintf(h, "    %s%s; /* %s %s%s%s */\n", ctype, col->name, col->sqltype, col->nullable ? "NULL" : "NOT NULL",
                *doc ? ": " : "", doc);
        if (col->type != ENUM_TYPE && TYPES[col->type].kind == GP_ROWS_COL_TEXT_ARRAY)
            fprintf(h, "    size_t %s_count;\n", col->name);
        if (col->nullable)
            fprintf(h, "    bool %s_is_null;\n", col->name);
    }
    fprintf(h, "} gp_row_%s_t;\n\n", table);
    fprintf(h, "typedef struct gp_row_%s_map { int col[%d]; } gp_row_%s_map_t;\n", table, n, table);
    fprintf(h, "GP_EXPORT gp_status_t gp_row_%s_bind(const gp_result_t *r, gp_row_%s_map_t *map, gp_error_t *err);\n",
            table, table);
    fprintf(h, "GP_EXPORT gp_status_t gp_row_%s_decode(const gp_result_t *r, const gp_row_%s_map_t *map, int row,\n"
               "    gp_row_%s_t *out, gp_error_t *err);\n", table, table, table);
    fprintf(h, "GP_EXPORT gp_status_t gp_row_%s_decode_all(const gp_result_t *r, gp_row_%s_t **rows, size_t *n,\n"
               "    gp_error_t *err);\n", table, table);
    fprintf(h, "GP_EXPORT void gp_row_%s_free(gp_row_%s_t *row);\n", table, table);
    fprintf(h, "GP_EXPORT void gp_row_%s_free_all(gp_row_%s_t *rows, size_t n);\n", table, table);

    fprintf(c, "\n/* ---- public.%s ---- */\nstatic const gp_rows_col_desc_t %s_cols[] = {\n", table, table);
    for (int i = 0; i < n; i++) {
        const column_t *col = &cols[i];
        bool array = col->type != ENUM_TYPE && TYPES[col->type].kind == GP_ROWS_COL_TEXT_ARRAY;
        fprintf(c, "    {\"%s\", %s, %s, offsetof(gp_row_%s_t, %s), ", col->name,
                col->type == ENUM_TYPE ? "GP_ROWS_COL_ENUM" : TYPES[col->type].kind_name, col->nullable ? "true" : "false",
                table, col->name);
        if (col->nullable)
            fprintf(c, "offsetof(gp_row_%s_t, %s_is_null), ", table, col->name);
        else
            fprintf(c, "0, ");
        if (array)
            fprintf(c, "offsetof(gp_row_%s_t, %s_count), ", table, col->name);
        else
            fprintf(c, "0, ");
        if (col->type == ENUM_TYPE)
            fprintf(c, "%s_labels, GP_", col->enum_name);
        else
            fprintf(c, "NULL, 0},\n");
        if (col->type == ENUM_TYPE) {
            upper(c, col->enum_name);
            fprintf(c, "_COUNT_},\n");
        }
    }
    fprintf(c, "};\nstatic const gp_rows_table_desc_t %s_table = {\"%s\", %s_cols, %d, sizeof(gp_row_%s_t)};\n\n", table,
            table, table, n, table);
    fprintf(c,
            "gp_status_t gp_row_%s_bind(const gp_result_t *r, gp_row_%s_map_t *map, gp_error_t *err)\n"
            "{\n    return gp_rows_bind(&%s_table, r, map ? map->col : NULL, err);\n}\n\n",
            table, table, table);
    fprintf(c,
            "gp_status_t gp_row_%s_decode(const gp_result_t *r, const gp_row_%s_map_t *map, int row,\n"
            "    gp_row_%s_t *out, gp_error_t *err)\n"
            "{\n    return gp_rows_decode(&%s_table, r, map ? map->col : NULL, row, out, err);\n}\n\n",
            table, table, table, table);
    fprintf(c,
            "gp_status_t gp_row_%s_decode_all(const gp_result_t *r, gp_row_%s_t **rows, size_t *n,\n"
            "    gp_error_t *err)\n"
            "{\n    return gp_rows_decode_all(&%s_table, r, (void **)rows, n, err);\n}\n\n",
            table, table, table);
    fprintf(c, "void gp_row_%s_free(gp_row_%s_t *row) { gp_rows_free(&%s_table, row); }\n\n", table, table, table);
    fprintf(c, "void gp_row_%s_free_all(gp_row_%s_t *rows, size_t n) { gp_rows_free_all(&%s_table, rows, n); }\n",
            table, table, table);
}

static int type_index(const PGresult *r, int row);

/* Whether enum `name` is in the output: always without a selection, else
 * when a selected table has a column of it. */
static bool enum_used(const gp_gen_types_opts_t *o, const PGresult *columns, const char *name)
{
    if (!o || (!o->n_tables && !(o->prefix && *o->prefix)))
        return true;
    for (int i = 0; i < PQntuples(columns); i++)
        if (type_index(columns, i) == ENUM_TYPE && strcmp(PQgetvalue(columns, i, 3), name) == 0 &&
            selected(o, PQgetvalue(columns, i, 0)))
            return true;
    return false;
}

static gp_status_t gen_enums(gen_t *g, const PGresult *e, const PGresult *columns, const gp_gen_types_opts_t *o)
{
    int rows = PQntuples(e);
    char **labels = calloc((size_t)rows + 1, sizeof *labels);
    if (!labels)
        return gp__client_error(g->err, GP_ERR_NOMEM, "gen-types: out of memory");
    for (int i = 0; i < rows;) {
        const char *name = PQgetvalue(e, i, 0);
        if (!c_identifier(name)) {
            free(labels);
            return gp__client_error(g->err, GP_ERR_TYPE, "gen-types: enum type \"%s\" is not a valid C identifier",
                                    name);
        }
        int n = 0;
        for (; i < rows && strcmp(PQgetvalue(e, i, 0), name) == 0; i++)
            labels[n++] = PQgetvalue(e, i, 1);
        if (enum_used(o, columns, name))
            gen_enum(g, name, labels, n);
    }
    free(labels);
    return GP_OK;
}

static int type_index(const PGresult *r, int row)
{
    const char *typname = PQgetvalue(r, row, 3), *typtype = PQgetvalue(r, row, 4), *nsp = PQgetvalue(r, row, 5);
    if (strcmp(typtype, "e") == 0 && strcmp(nsp, "public") == 0)
        return ENUM_TYPE;
    if (strcmp(nsp, "pg_catalog") != 0)
        return -1;
    for (size_t t = 0; t < NTYPES; t++)
        if (strcmp(TYPES[t].typname, typname) == 0)
            return (int)t;
    return -1;
}

static gp_status_t gen_tables(gen_t *g, const PGresult *r, const gp_gen_types_opts_t *o)
{
    int rows = PQntuples(r);
    column_t *cols = calloc((size_t)rows + 1, sizeof *cols);
    if (!cols)
        return gp__client_error(g->err, GP_ERR_NOMEM, "gen-types: out of memory");
    gp_status_t st = GP_OK;
    for (int i = 0; i < rows && st == GP_OK;) {
        const char *table = PQgetvalue(r, i, 0);
        if (!selected(o, table)) {
            while (i < rows && strcmp(PQgetvalue(r, i, 0), table) == 0)
                i++;
            continue;
        }
        if (!c_identifier(table))
            st = gp__client_error(g->err, GP_ERR_TYPE, "gen-types: table \"%s\" is not a valid C identifier", table);
        int n = 0;
        for (; st == GP_OK && i < rows && strcmp(PQgetvalue(r, i, 0), table) == 0; i++) {
            column_t *col = &cols[n++];
            col->name = PQgetvalue(r, i, 1);
            col->nullable = strcmp(PQgetvalue(r, i, 2), "t") != 0;
            col->type = type_index(r, i);
            col->enum_name = PQgetvalue(r, i, 3);
            col->sqltype = PQgetvalue(r, i, 6);
            if (!c_identifier(col->name))
                st = gp__client_error(g->err, GP_ERR_TYPE, "gen-types: column %s.\"%s\" is not a valid C identifier",
                                      table, col->name);
            else if (col->type < 0)
                st = gp__client_error(g->err, GP_ERR_TYPE,
                                      "gen-types: column %s.%s has type %s, which gen-types does not map to C "
                                      "(supported: uuid, text, varchar, smallint, integer, bigint, boolean, double "
                                      "precision, numeric, timestamptz, date, json, jsonb, text[], public enums)",
                                      table, col->name, col->sqltype);
        }
        /* A generated field name must not collide with a column. */
        for (int a = 0; st == GP_OK && a < n; a++)
            for (int b = 0; st == GP_OK && b < n; b++) {
                size_t la = strlen(cols[a].name);
                if (strncmp(cols[b].name, cols[a].name, la) == 0 &&
                    (strcmp(cols[b].name + la, "_is_null") == 0 || strcmp(cols[b].name + la, "_count") == 0))
                    st = gp__client_error(g->err, GP_ERR_TYPE,
                                          "gen-types: column %s.%s collides with the generated field for %s", table,
                                          cols[b].name, cols[a].name);
            }
        if (st == GP_OK)
            gen_table(g, table, cols, n);
    }
    free(cols);
    return st;
}

gp_status_t gp_gen_types(const gp_config_t *cfg, char **header, char **source, gp_error_t *err)
{
    return gp_gen_types_for(cfg, NULL, header, source, err);
}

/* Every table named in o->tables exists (among the columns read). */
static gp_status_t check_named(const gp_gen_types_opts_t *o, const PGresult *columns, gp_error_t *err)
{
    for (size_t t = 0; o && t < o->n_tables; t++) {
        bool found = false;
        for (int i = 0; i < PQntuples(columns) && !found && o->tables[t]; i++)
            found = strcmp(PQgetvalue(columns, i, 0), o->tables[t]) == 0;
        if (!found) {
            char shown[80];
            gp__redactf(shown, sizeof shown, "%s", o->tables[t] ? o->tables[t] : "(null)");
            return gp__client_error(err, GP_ERR_NOT_FOUND, "gen-types: no table \"%s\" in schema public (migrate "
                                    "the service's set first?)", shown);
        }
    }
    return GP_OK;
}

gp_status_t gp_gen_types_for(const gp_config_t *cfg, const gp_gen_types_opts_t *opts, char **header, char **source,
                             gp_error_t *err)
{
    gp_error_clear(err);
    if (opts && opts->n_tables && !opts->tables)
        return gp__client_error(err, GP_ERR_INVALID, "gp_gen_types_for: n_tables without tables");
    if (!cfg || !header || !source)
        return gp__client_error(err, GP_ERR_INVALID, "gp_gen_types: cfg, header and source are required");
    *header = *source = NULL;
    PGconn *pg = NULL;
    PGresult *enums = NULL, *columns = NULL;
    gp_status_t st = gp__pg_connect_single(&cfg->db, false, &pg, err);
    if (st == GP_OK)
        st = gp__pg_select(pg, Q_ENUMS, &enums, err);
    if (st == GP_OK)
        st = gp__pg_select(pg, Q_COLUMNS, &columns, err);
    PQfinish(pg);
    if (st == GP_OK)
        st = check_named(opts, columns, err);
    if (st != GP_OK) {
        PQclear(enums);
        PQclear(columns);
        return st;
    }
    char *hbuf = NULL, *cbuf = NULL;
    size_t hlen = 0, clen = 0;
    gen_t g = {.h = open_memstream(&hbuf, &hlen), .c = open_memstream(&cbuf, &clen), .err = err};
    if (!g.h || !g.c)
        st = gp__client_error(err, GP_ERR_NOMEM, "gen-types: out of memory");
    if (st == GP_OK) {
        write_tops(&g, opts);
        if ((st = gen_enums(&g, enums, columns, opts)) == GP_OK)
            st = gen_tables(&g, columns, opts);
        fputs("\n#ifdef __cplusplus\n}\n#endif\n#endif\n", g.h);
        if (st == GP_OK && (ferror(g.h) || ferror(g.c)))
            st = gp__client_error(err, GP_ERR_NOMEM, "gen-types: out of memory");
    }
    if (g.h)
        fclose(g.h);
    if (g.c)
        fclose(g.c);
    PQclear(enums);
    PQclear(columns);
    if (st != GP_OK) {
        free(hbuf);
        free(cbuf);
        return st;
    }
    *header = hbuf;
    *source = cbuf;
    return GP_OK;
}
