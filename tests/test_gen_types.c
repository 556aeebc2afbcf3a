/* test_gen_types.c — no silent drift: a fresh database, migrated with the
 * shipped migrations, regenerates exactly the committed
 * include/growplate/rows.h and src/rows.c; a column type with no C mapping
 * is refused with the column named. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_scratch.h"

static char *slurp(const char *rel)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", getenv("GP_SOURCE_DIR"), rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        fprintf(stderr, "cannot read %s\n", path);
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = 0;
    fclose(f);
    return buf;
}

/* Byte for byte; on a difference, say where. */
static void assert_same(const char *what, const char *committed, const char *fresh)
{
    if (strcmp(committed, fresh) == 0)
        return;
    size_t i = 0, line = 1;
    while (committed[i] && committed[i] == fresh[i])
        line += committed[i++] == '\n';
    fprintf(stderr, "%s differs from the schema at line %zu: run `growplate migrate && growplate gen-types` "
                    "and commit the result\n", what, line);
    fail();
}

static void test_committed_files_match_a_fresh_schema(void **state)
{
    (void)state;
    gp_scratch_t s;
    gp_scratch_create(&s, "gentypes");
    gp_scratch_migrate(&s);
    gp_config_t cfg;
    gp_scratch_config(&s, &cfg);
    char *header = NULL, *source = NULL;
    gp_error_t err;
    gp_status_t st = gp_gen_types(&cfg, &header, &source, &err);
    if (st != GP_OK)
        fprintf(stderr, "gen-types: %s\n", err.message);
    assert_int_equal(st, GP_OK);
    char *h = slurp("include/growplate/rows.h"), *c = slurp("src/rows.c");
    assert_same("include/growplate/rows.h", h, header);
    assert_same("src/rows.c", c, source);
    /* Deterministic: a second run is identical. */
    char *header2 = NULL, *source2 = NULL;
    assert_int_equal(gp_gen_types(&cfg, &header2, &source2, &err), GP_OK);
    assert_string_equal(header, header2);
    assert_string_equal(source, source2);
    free(header2);
    free(source2);

    /* A schema change is visible: one more column, a different header. */
    PGconn *owner = gp_scratch_connect(s.owner_url);
    gp_scratch_exec(owner, "ALTER TABLE menu_items ADD COLUMN spicy boolean");
    assert_int_equal(gp_gen_types(&cfg, &header2, &source2, &err), GP_OK);
    assert_non_null(strstr(header2, "    bool spicy; /* boolean NULL */\n    bool spicy_is_null;\n"));
    assert_non_null(strstr(header2, "#define GP_MENU_ITEMS_COL_SPICY \"spicy\""));
    assert_true(strcmp(header, header2) != 0);
    free(header2);
    free(source2);
    /* A type gen-types does not map: refused, column named, nothing returned. */
    gp_scratch_exec(owner, "ALTER TABLE orders ADD COLUMN prep_time interval");
    header2 = source2 = (char *)"untouched";
    assert_int_equal(gp_gen_types(&cfg, &header2, &source2, &err), GP_ERR_TYPE);
    assert_null(header2);
    assert_null(source2);
    assert_non_null(strstr(err.message, "column orders.prep_time has type interval"));
    PQfinish(owner);

    free(h);
    free(c);
    free(header);
    free(source);
    gp_config_release(&cfg);
    gp_scratch_drop(&s);
}

/* A service's own tables: only those selected (by prefix or by name), only
 * the enums they use, into files of the service's that name their header. */
static void test_service_tables(void **state)
{
    (void)state;
    gp_scratch_t s;
    gp_scratch_create(&s, "gentypes_svc");
    gp_scratch_migrate(&s);
    gp_config_t cfg;
    gp_scratch_config(&s, &cfg);
    PGconn *owner = gp_scratch_connect(s.owner_url);
    gp_scratch_exec(owner, "CREATE TYPE public.svc_colour AS ENUM ('red', 'green');"
                           "CREATE TABLE public.svc_widgets (id int PRIMARY KEY, colour public.svc_colour NOT NULL,"
                           " label text);"
                           "CREATE TABLE public.svc_gadgets (id bigint PRIMARY KEY)");
    PQfinish(owner);
    char *header = NULL, *source = NULL;
    gp_error_t err;
    gp_gen_types_opts_t o = {.prefix = "svc_", .include = "menu_svc/rows.h"};
    gp_status_t st = gp_gen_types_for(&cfg, &o, &header, &source, &err);
    if (st != GP_OK)
        fprintf(stderr, "gen-types: %s\n", err.message);
    assert_int_equal(st, GP_OK);
    assert_non_null(strstr(header, "/* menu_svc/rows.h — row types of the service's own tables."));
    assert_non_null(strstr(header, "#ifndef MENU_SVC_ROWS_H_\n#define MENU_SVC_ROWS_H_\n"));
    assert_non_null(strstr(header, "} gp_row_svc_widgets_t;"));
    assert_non_null(strstr(header, "} gp_row_svc_gadgets_t;"));
    assert_non_null(strstr(header, "} gp_svc_colour_t;"));
    assert_null(strstr(header, "gp_row_menu_items_t"));   /* the library's tables stay in growplate/rows.h */
    assert_null(strstr(header, "gp_order_status_t"));     /* and so do its enums */
    assert_null(strstr(header, "GROWPLATE_ROWS_H"));
    assert_non_null(strstr(source, "#include \"menu_svc/rows.h\"\n#include <growplate/rows_support.h>\n"));
    assert_null(strstr(source, "growplate/rows.h"));
    free(header);
    free(source);

    const char *one[] = {"svc_gadgets"};
    gp_gen_types_opts_t named = {.tables = one, .n_tables = 1, .include = "g.h"};
    assert_int_equal(gp_gen_types_for(&cfg, &named, &header, &source, &err), GP_OK);
    assert_non_null(strstr(header, "} gp_row_svc_gadgets_t;"));
    assert_null(strstr(header, "gp_row_svc_widgets_t"));
    assert_null(strstr(header, "gp_svc_colour_t"));
    free(header);
    free(source);

    const char *missing[] = {"svc_nope"};
    gp_gen_types_opts_t bad = {.tables = missing, .n_tables = 1};
    header = source = (char *)"untouched";
    assert_int_equal(gp_gen_types_for(&cfg, &bad, &header, &source, &err), GP_ERR_NOT_FOUND);
    assert_null(header);
    assert_null(source);
    assert_non_null(strstr(err.message, "no table \"svc_nope\" in schema public"));
    gp_config_release(&cfg);
    gp_scratch_drop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_committed_files_match_a_fresh_schema),
        cmocka_unit_test(test_service_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
