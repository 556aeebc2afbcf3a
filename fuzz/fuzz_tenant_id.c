/* fuzz_tenant_id.c — gp_tenant_id_valid() (growplate/tenant_id.h) on any
 * bytes. The input, up to its first NUL, is the id.
 *
 * Oracle:
 *  - accepted exactly when an independent checker says "canonical lowercase
 *    UUID" (36 bytes, '-' at 8, 13, 18 and 23, [0-9a-f] elsewhere);
 *  - accepted: `why` is ""; rejected: `why` is one non-empty line of
 *    printable ASCII (nothing a hostile id could inject into a log);
 *  - the message never echoes the id: it is the same for the id with every
 *    byte that is fine where it stands replaced by another such byte (for a
 *    wrong length: with every byte replaced), so it can only depend on the
 *    length and the offending bytes;
 *  - a short `why` buffer gets a NUL-terminated prefix of the same message
 *    and nothing is written past it (whylen 0: nothing at all); why NULL and
 *    id NULL are accepted. */
#include <stdbool.h>

#include "fuzz_common.h"
#include "growplate/tenant_id.h"

static bool lower_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool is_dash_pos(size_t i)
{
    return i == 8 || i == 13 || i == 18 || i == 23;
}

static bool uuid_ok(const char *s)
{
    size_t n = strlen(s);
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_dash_pos(i) ? c != '-' : !lower_hex(c))
            return false;
    }
    return true;
}

static void check_why_shape(const char *id, const char *why, size_t cap)
{
    size_t n = strnlen(why, cap);
    if (n == cap)
        fuzz_fail("why is not NUL-terminated within its %zu bytes", cap);
    if (n == 0) {
        fuzz_show_str("id", id);
        fuzz_fail("rejected without a reason");
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)why[i];
        if (c < 0x20 || c > 0x7e) {
            fuzz_show_str("id", id);
            fuzz_show_str("why", why);
            fuzz_fail("why has byte 0x%02x at %zu: not one line of printable ASCII", c, i);
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_guard_stdout();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The id at the very end of its allocation: ASan sees any over-read. */
    size_t n = strnlen((const char *)data, size);
    char *id = malloc(n + 1);
    if (!id)
        return 0;
    memcpy(id, data, n);
    id[n] = 0;

    char why[256];
    memset(why, 'X', sizeof why);
    bool ok = gp_tenant_id_valid(id, why, sizeof why);
    bool want = uuid_ok(id);
    if (ok != want) {
        fuzz_show_str("id", id);
        fuzz_show_str("why", ok ? "" : why);
        fuzz_fail("gp_tenant_id_valid says %s, the independent checker %s", ok ? "valid" : "invalid",
                  want ? "valid" : "invalid");
    }
    if (ok && why[0] != 0) {
        fuzz_show_str("why", why);
        fuzz_fail("accepted, but why is not empty");
    }
    if (!ok) {
        check_why_shape(id, why, sizeof why);

        /* The same message without the id's bytes. */
        char *other = malloc(n + 1);
        if (other) {
            for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)id[i];
                if (n != 36)
                    c = c == 'z' ? 'y' : c == 1 ? 2 : (unsigned char)(c ^ 1); /* never NUL */
                else if (!is_dash_pos(i) && lower_hex(c))
                    c = (unsigned char)"0123456789abcdef"[(strchr("0123456789abcdef", c) - "0123456789abcdef" + 7) % 16];
                other[i] = (char)c;
            }
            other[n] = 0;
            char why2[256];
            bool ok2 = gp_tenant_id_valid(other, why2, sizeof why2);
            if (ok2 || strcmp(why, why2) != 0) {
                fuzz_show_str("id", id);
                fuzz_show_str("why", why);
                fuzz_show_str("same shape", other);
                fuzz_show_str("its why", ok2 ? "(accepted)" : why2);
                fuzz_fail("the message depends on bytes that are not the problem (it echoes the id)");
            }
            free(other);
        }
    }

    /* Short buffers: a prefix of the same message, nothing written past. */
    static const size_t lens[] = {0, 1, 2, 17, 64};
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        char small[80];
        memset(small, 'Z', sizeof small);
        bool oks = gp_tenant_id_valid(id, small, lens[k]);
        if (oks != ok)
            fuzz_fail("the verdict changes with whylen %zu", lens[k]);
        for (size_t i = lens[k]; i < sizeof small; i++)
            if (small[i] != 'Z')
                fuzz_fail("whylen %zu: byte %zu written past the buffer", lens[k], i);
        if (lens[k] == 0)
            continue;
        size_t sl = strnlen(small, lens[k]);
        if (sl == lens[k])
            fuzz_fail("whylen %zu: not NUL-terminated", lens[k]);
        if (!ok && (sl != (strlen(why) < lens[k] - 1 ? strlen(why) : lens[k] - 1) || memcmp(small, why, sl) != 0)) {
            fuzz_show_str("why", why);
            fuzz_show_str("short", small);
            fuzz_fail("whylen %zu: not a prefix of the full message", lens[k]);
        }
    }
    (void)gp_tenant_id_valid(id, NULL, 100);
    free(id);

    if (size == 0) {
        char w[128];
        if (gp_tenant_id_valid(NULL, w, sizeof w))
            fuzz_fail("NULL accepted");
        check_why_shape("(null)", w, sizeof w);
    }
    fuzz_check_stdout();
    return 0;
}
