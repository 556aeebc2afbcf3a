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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_committed_files_match_a_fresh_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
