/* test_tenant_id.c — the tenant id rule shared by the cache and the tenancy
 * layer: canonical lowercase UUIDs only, and messages that name the problem. */
#include <string.h>

#include "gp_test.h"

static void test_accepts_canonical(void **state)
{
    (void)state;
    char why[256] = "x";
    assert_true(gp_tenant_id_valid("123e4567-e89b-12d3-a456-426614174000", why, sizeof why));
    assert_string_equal(why, "");
    assert_true(gp_tenant_id_valid("00000000-0000-0000-0000-000000000000", NULL, 0));
    assert_true(gp_tenant_id_valid("ffffffff-ffff-ffff-ffff-ffffffffffff", why, sizeof why));
}

static void expect_bad(const char *id, const char *needle)
{
    char why[256];
    assert_false(gp_tenant_id_valid(id, why, sizeof why));
    if (!strstr(why, needle))
        fail_msg("'%s' not in '%s'", needle, why);
    assert_false(gp_tenant_id_valid(id, NULL, 0)); /* no buffer: still rejected, no crash */
}

static void test_rejects_everything_else(void **state)
{
    (void)state;
    expect_bad(NULL, "missing");
    expect_bad("", "has 0 bytes");
    expect_bad("123e4567-e89b-12d3-a456-42661417400", "has 35 bytes");
    expect_bad("123e4567-e89b-12d3-a456-4266141740000", "more than 36 bytes");
    expect_bad("123E4567-e89b-12d3-a456-426614174000", "uppercase 'E' at position 3");
    expect_bad("{23e4567-e89b-12d3-a456-426614174000", "'{' at position 0");
    expect_bad("123e4567-e89b-12d3-a456-42661417400}", "'}' at position 35");
    expect_bad("123e4567:e89b-12d3-a456-426614174000", "':' at position 8; expected '-'");
    expect_bad("123e4567-e89b-12d3-a456-4266141740*0", "'*' at position 34");
    expect_bad("123e4567-e89b-12d3-a456-42661417400 ", "0x20 at position 35");
    expect_bad("123e4567-e89b-12d3-a456-4266141740\n0", "0x0a at position 34");
    expect_bad("123e4567e89b12d3a456426614174000----", "position 8");
    expect_bad("g23e4567-e89b-12d3-a456-426614174000", "'g' at position 0");
    expect_bad("123e4567-e89b-12d3-a456-42661417400\xc3", "0xc3 at position 35");
    /* An embedded NUL ends the C string: what follows is never seen. */
    expect_bad("123e4567-e89b-12d3-a456\0-426614174000", "has 23 bytes");
    /* Very long input: reported without reading it all. */
    char big[10000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    expect_bad(big, "more than 36 bytes");
}

static void test_message_truncates_safely(void **state)
{
    (void)state;
    char why[8];
    assert_false(gp_tenant_id_valid("nope", why, sizeof why));
    assert_int_equal(strlen(why), 7);
    char one[1] = {'x'};
    assert_false(gp_tenant_id_valid("nope", one, 1));
    assert_int_equal(one[0], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_canonical),
        cmocka_unit_test(test_rejects_everything_else),
        cmocka_unit_test(test_message_truncates_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
