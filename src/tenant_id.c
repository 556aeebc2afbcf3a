/* tenant_id.c — the tenant id rule (canonical lowercase UUID), shared by the
 * cache keyspace and the SQL tenancy layer. */
#include <stdio.h>
#include <string.h>

#include "growplate/tenant_id.h"

#define EXAMPLE "123e4567-e89b-12d3-a456-426614174000"

/* A byte, shown safely: printable ASCII as itself, anything else in hex. */
static const char *show(unsigned char ch, char buf[8])
{
    if (ch >= 0x21 && ch <= 0x7e && ch != '\'')
        snprintf(buf, 8, "'%c'", ch);
    else
        snprintf(buf, 8, "0x%02x", ch);
    return buf;
}

bool gp_tenant_id_valid(const char *id, char *why, size_t whylen)
{
    if (!why)
        whylen = 0;
    if (whylen)
        why[0] = 0;
    if (!id) {
        if (whylen)
            snprintf(why, whylen, "tenant id is missing (NULL); expected a lowercase UUID such as " EXAMPLE);
        return false;
    }
    size_t n = strnlen(id, GP_TENANT_ID_LEN + 1);
    if (n != GP_TENANT_ID_LEN) {
        if (whylen)
            snprintf(why, whylen, "tenant id has %s%zu bytes; expected 36 (a lowercase UUID such as " EXAMPLE ")",
                     n > GP_TENANT_ID_LEN ? "more than " : "", n > GP_TENANT_ID_LEN ? (size_t)GP_TENANT_ID_LEN : n);
        return false;
    }
    for (int i = 0; i < GP_TENANT_ID_LEN; i++) {
        unsigned char ch = (unsigned char)id[i];
        char b[8];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash && ch != '-') {
            if (whylen)
                snprintf(why, whylen, "tenant id has %s at position %d; expected '-' (a lowercase UUID such as " EXAMPLE ")",
                         show(ch, b), i);
            return false;
        }
        if (!dash && !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            if (whylen)
                snprintf(why, whylen,
                         ch >= 'A' && ch <= 'F'
                             ? "tenant id has uppercase %s at position %d; tenant ids are canonical lowercase (such as " EXAMPLE ")"
                             : "tenant id has %s at position %d; expected a lowercase hex digit (a UUID such as " EXAMPLE ")",
                         show(ch, b), i);
            return false;
        }
    }
    return true;
}
