/* fuzz_page_cursor.c — the page cursors of gp_data_list_menu_items_page
 * (src/data.c, data_internal.h), which come back from a service's clients:
 * any bytes, up to the first NUL, as a cursor.
 *
 * Oracle:
 *  - accepted: formatting the decoded key gives exactly the input back (one
 *    spelling per key, so a cursor cannot be varied to look new);
 *  - rejected: GP_ERR_INVALID (or GP_ERR_NOMEM) with a message that does
 *    not echo the cursor, and nothing to free;
 *  - the other way round: a key made of the input's bytes (a position from
 *    the first four, a category and item name from the rest split at the
 *    first 0xff, NUL bytes left out, an id from the last sixteen) formats
 *    to a cursor that parses back to the same key. */
#include "data_internal.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_guard_stdout();
    return 0;
}

static void forward(const char *s, size_t n)
{
    gp__page_key_t k;
    gp_error_t e;
    gp_status_t st = gp__page_cursor_parse(s, &k, &e);
    if (st == GP_OK) {
        char *again = NULL;
        if (gp__page_cursor_format(&k, &again, &e) == GP_OK && strcmp(again, s) != 0) {
            fuzz_show("cursor", s, n);
            fuzz_show_str("formatted again", again);
            fuzz_fail("an accepted cursor is not the one spelling of its key");
        }
        free(again);
        free(k.category);
        free(k.name);
        return;
    }
    if (st != GP_ERR_INVALID && st != GP_ERR_NOMEM)
        fuzz_fail("rejected with status %d", (int)st);
    if (n >= 8 && strstr(e.message, s)) {
        fuzz_show("cursor", s, n);
        fuzz_fail("the message echoes the cursor");
    }
}

static char *text_of(const uint8_t *p, size_t n)
{
    char *t = malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; t && i < n; i++)
        if (p[i])
            t[k++] = (char)p[i];
    if (t)
        t[k] = 0;
    return t;
}

static void backward(const uint8_t *data, size_t size)
{
    if (size < 20)
        return;
    gp__page_key_t k = {0};
    uint32_t u = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
    memcpy(&k.position, &u, sizeof u);
    memcpy(k.id.bytes, data + size - 16, 16);
    const uint8_t *rest = data + 4;
    size_t rn = size - 20;
    const uint8_t *cut = memchr(rest, 0xff, rn);
    size_t cn = cut ? (size_t)(cut - rest) : rn;
    k.category = text_of(rest, cn);
    k.name = text_of(cut ? cut + 1 : rest + rn, cut ? rn - cn - 1 : 0);
    char *c = NULL;
    gp_error_t e;
    if (k.category && k.name && gp__page_cursor_format(&k, &c, &e) == GP_OK) {
        gp__page_key_t back;
        gp_status_t st = gp__page_cursor_parse(c, &back, &e);
        if (st == GP_ERR_NOMEM) {
            free(c);
            free(k.category);
            free(k.name);
            return;
        }
        if (st != GP_OK) {
            fuzz_show_str("cursor", c);
            fuzz_fail("a cursor the library made is refused: %s", e.message);
        }
        if (back.position != k.position || memcmp(back.id.bytes, k.id.bytes, 16) != 0 ||
            strcmp(back.category, k.category) != 0 || strcmp(back.name, k.name) != 0) {
            fuzz_show_str("cursor", c);
            fuzz_fail("a cursor does not decode to the key it was made from");
        }
        free(back.category);
        free(back.name);
    }
    free(c);
    free(k.category);
    free(k.name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = strnlen((const char *)data, size);
    char *s = malloc(n + 1); /* at the very end of its allocation: ASan sees any over-read */
    if (!s)
        return 0;
    memcpy(s, data, n);
    s[n] = 0;
    forward(s, n);
    free(s);
    backward(data, size);
    fuzz_check_stdout();
    return 0;
}
