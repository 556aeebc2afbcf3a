/* fuzz_cache_key.c — the cache keyspace (src/cache_keys.c, keyspace rules
 * in growplate/cache.h): gp_cache_key_valid(), gp__cache_key_len(),
 * gp__cache_check() and the key builders gp__cache_key() /
 * gp__cache_key_prefix() / gp__cache_put_dec(). No server: the builders
 * only read the cache's prefix.
 *
 * Input: lines (fields may hold any byte but '\n'; a NUL ends the C string,
 * as it does for a caller):
 *     tenant \n key \n prefix \n gen[x] \n tenant2 \n key2 \n gen2[x]
 * A missing field takes a default (prefix "growplate:", gen 1718000000000000,
 * the second triple = the first); a trailing 'x' on a generation picks the
 * kind "x" (XFetch metadata) instead of "" (values).
 *
 * Oracle:
 *  - a key is valid exactly when an independent checker says so: 1 to 512
 *    bytes, each printable ASCII other than space and { } * ? [ ];
 *    gp__cache_key_len() is its length then, 0 otherwise; a rejected key
 *    gets a one-line printable reason;
 *  - gp__cache_check(): GP_ERR_TENANT when the tenant is not a canonical
 *    lowercase UUID (checked first), else GP_ERR_KEY for a bad key, else
 *    GP_OK; the error names why (non-empty message, class client);
 *  - for a valid tenant, key and prefix (REDIS_KEY_PREFIX's rule), the full
 *    key is prefix "t:{" tenant "}:" gen kind ":" key, byte for byte, fits
 *    CACHE_FULLKEY_MAX, its Redis Cluster hash tag (first '{' to the next
 *    '}') is exactly the tenant, and it parses back into (prefix, tenant,
 *    gen, kind, key); the shared prefix plus the key is the full key; two
 *    triples give the same full key only when they are the same triple. */
#include <inttypes.h>
#include <stdbool.h>
#include <ctype.h>

#include "cache_internal.h"
#include "fuzz_common.h"

static gp_cache_t *cache; /* only prefix / prefix_len are read */

static bool key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n < 1 || n > 512)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c < 0x21 || c > 0x7e || strchr("{}*?[]", c))
            return false;
    }
    return true;
}

static bool uuid_ok(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        char c = s[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

static bool prefix_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || strchr(":_.-", s[i])))
            return false;
    return true;
}

static void check_line(const char *what, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        fuzz_fail("%s: not NUL-terminated", what);
    if (n == 0)
        fuzz_fail("%s: empty", what);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
            fuzz_show_str(what, s);
            fuzz_fail("%s: byte 0x%02x at %zu is not printable ASCII", what, (unsigned char)s[i], i);
        }
}

typedef struct triple {
    const char *tenant, *key, *kind;
    uint64_t gen;
} triple_t;

/* Build the full key of t into a CACHE_FULLKEY_MAX-byte allocation and
 * check it; returns it (malloc'd) or NULL when t is not buildable. */
static char *build_and_check(const char *prefix, const triple_t *t)
{
    if (!uuid_ok(t->tenant) || !key_ok(t->key) || !prefix_ok(prefix))
        return NULL;
    char *full = malloc(CACHE_FULLKEY_MAX);
    char *shared = malloc(CACHE_FULLKEY_MAX);
    if (!full || !shared) {
        free(full);
        free(shared);
        return NULL;
    }
    size_t n = gp__cache_key(cache, t->tenant, t->gen, t->kind, t->key, full);
    char want[CACHE_FULLKEY_MAX + 64];
    int wn = snprintf(want, sizeof want, "%st:{%s}:%" PRIu64 "%s:%s", prefix, t->tenant, t->gen, t->kind, t->key);
    if (wn < 0 || (size_t)wn != n || strlen(full) != n || memcmp(full, want, n) != 0) {
        fuzz_show("built", full, strnlen(full, CACHE_FULLKEY_MAX));
        fuzz_show("expected", want, strlen(want));
        fuzz_fail("gp__cache_key: not prefix \"t:{\" tenant \"}:\" gen kind \":\" key (returned length %zu)", n);
    }
    if (n + 1 > CACHE_FULLKEY_MAX)
        fuzz_fail("full key of %zu bytes does not fit CACHE_FULLKEY_MAX", n);

    /* The hash tag: from the first '{' to the next '}'. */
    const char *open = strchr(full, '{');
    const char *close = open ? strchr(open + 1, '}') : NULL;
    if (!open || !close || (size_t)(close - open - 1) != 36 || memcmp(open + 1, t->tenant, 36) != 0) {
        fuzz_show_str("full key", full);
        fuzz_fail("the hash tag is not the tenant id");
    }
    if (strchr(close + 1, '{') || strchr(close + 1, '}')) {
        fuzz_show_str("full key", full);
        fuzz_fail("a second brace after the hash tag");
    }

    /* Parse it back. */
    if (open - full < 2 || memcmp(open - 2, "t:", 2) != 0 || (size_t)(open - 2 - full) != strlen(prefix) ||
        memcmp(full, prefix, strlen(prefix)) != 0 || close[1] != ':')
        fuzz_fail("cannot parse the prefix and tag back");
    const char *p = close + 2;
    uint64_t g = 0;
    const char *digits = p;
    while (*p >= '0' && *p <= '9') {
        g = g * 10 + (uint64_t)(*p - '0');
        p++;
    }
    const char *colon = strchr(p, ':');
    if (p == digits || g != t->gen || !colon || (size_t)(colon - p) != strlen(t->kind) ||
        memcmp(p, t->kind, strlen(t->kind)) != 0 || strcmp(colon + 1, t->key) != 0) {
        fuzz_show_str("full key", full);
        fuzz_fail("the full key does not parse back into its generation, kind and key");
    }

    size_t sn = gp__cache_key_prefix(cache, t->tenant, t->gen, t->kind, shared);
    if (sn >= CACHE_FULLKEY_MAX - GP_CACHE_KEY_MAX || sn > n || memcmp(shared, full, sn) != 0 ||
        strcmp(full + sn, t->key) != 0)
        fuzz_fail("gp__cache_key_prefix + key is not gp__cache_key (prefix length %zu)", sn);

    char dec[24], ref[24];
    size_t dn = gp__cache_put_dec(dec, t->gen);
    snprintf(ref, sizeof ref, "%" PRIu64, t->gen);
    if (dn != strlen(ref) || memcmp(dec, ref, dn) != 0)
        fuzz_fail("gp__cache_put_dec(%s) is wrong", ref);
    free(shared);
    return full;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_guard_stdout();
    cache = calloc(1, sizeof *cache);
    if (!cache)
        abort();
    return 0;
}

#define NFIELDS 7

static uint64_t parse_gen(const char *s, uint64_t dflt, const char **kind)
{
    *kind = "";
    if (!s)
        return dflt;
    size_t n = strlen(s);
    if (n && s[n - 1] == 'x')
        *kind = "x";
    uint64_t v = 0;
    for (const char *p = s; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (uint64_t)(*p - '0'); /* wraps: any u64 is fine */
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[NFIELDS] = {0};
    size_t start = 0;
    for (int i = 0; i < NFIELDS && start <= size; i++) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - data) : size;
        /* Exactly sized: ASan sees any over-read of a key or tenant. */
        f[i] = malloc(end - start + 1);
        if (!f[i])
            goto out;
        memcpy(f[i], data + start, end - start);
        f[i][end - start] = 0;
        start = end + 1;
        if (!nl)
            break;
    }
    const char *tenant = f[0] ? f[0] : "", *key = f[1] ? f[1] : "";
    const char *prefix = f[2] ? f[2] : "growplate:";
    if (strlen(prefix) < sizeof cache->prefix) {
        snprintf(cache->prefix, sizeof cache->prefix, "%s", prefix);
        cache->prefix_len = strlen(cache->prefix);
    } else {
        prefix = "growplate:";
        snprintf(cache->prefix, sizeof cache->prefix, "%s", prefix);
        cache->prefix_len = strlen(prefix);
    }

    /* Validation. */
    for (int i = 0; i < NFIELDS; i++) {
        const char *k = f[i];
        if (!k)
            continue;
        char why[256];
        memset(why, 'X', sizeof why);
        bool ok = gp_cache_key_valid(k, why, sizeof why), want = key_ok(k);
        if (ok != want) {
            fuzz_show_str("key", k);
            fuzz_fail("gp_cache_key_valid says %s, the independent checker %s", ok ? "valid" : "invalid",
                      want ? "valid" : "invalid");
        }
        if (ok && why[0])
            fuzz_fail("valid key, but why is \"%s\"", why);
        if (!ok)
            check_line("why", why, sizeof why);
        size_t kl = gp__cache_key_len(k);
        if (kl != (want ? strlen(k) : 0)) {
            fuzz_show_str("key", k);
            fuzz_fail("gp__cache_key_len = %zu, expected %zu", kl, want ? strlen(k) : 0);
        }
        char small[8];
        memset(small, 'Z', sizeof small);
        if (gp_cache_key_valid(k, small, 4) != ok || (!ok && strnlen(small, 4) == 4) || small[4] != 'Z')
            fuzz_fail("gp_cache_key_valid with whylen 4: wrong verdict, not terminated, or written past");
        (void)gp_cache_key_valid(k, NULL, 100);
    }
    if (gp_cache_key_valid(NULL, NULL, 0))
        fuzz_fail("NULL key accepted");

    /* gp__cache_check. */
    const char *keys[3] = {key, NULL, CACHE_NO_KEY};
    for (int i = 0; i < 3; i++) {
        gp_error_t err;
        memset(&err, 0x55, sizeof err);
        gp_error_clear(&err);
        gp_status_t st = gp__cache_check(tenant, keys[i], &err);
        gp_status_t want = !uuid_ok(tenant)                               ? GP_ERR_TENANT
                           : keys[i] == CACHE_NO_KEY                      ? GP_OK
                           : !keys[i] || !key_ok(keys[i])                 ? GP_ERR_KEY
                                                                          : GP_OK;
        if (st != want) {
            fuzz_show_str("tenant", tenant);
            if (keys[i] && keys[i] != CACHE_NO_KEY)
                fuzz_show_str("key", keys[i]);
            fuzz_fail("gp__cache_check = %d, expected %d", (int)st, (int)want);
        }
        if (st != GP_OK) {
            if (err.status != st || err.klass != GP_ECLASS_CLIENT)
                fuzz_fail("gp__cache_check: err.status %d / klass %d do not match", (int)err.status, (int)err.klass);
            check_line("err.message", err.message, sizeof err.message);
        }
        if (gp__cache_check(tenant, keys[i], NULL) != st)
            fuzz_fail("gp__cache_check with err NULL gives another status");
    }

    /* Building, and injectivity. */
    triple_t a, b;
    a.tenant = tenant;
    a.key = key;
    a.gen = parse_gen(f[3], 1718000000000000ULL, &a.kind);
    b.tenant = f[4] ? f[4] : a.tenant;
    b.key = f[5] ? f[5] : a.key;
    b.gen = f[6] ? parse_gen(f[6], a.gen, &b.kind) : a.gen;
    if (!f[6])
        b.kind = a.kind;
    char *ka = build_and_check(prefix, &a), *kb = build_and_check(prefix, &b);
    if (ka && kb) {
        bool same_key = strcmp(ka, kb) == 0;
        bool same_triple = strcmp(a.tenant, b.tenant) == 0 && strcmp(a.key, b.key) == 0 && a.gen == b.gen &&
                           strcmp(a.kind, b.kind) == 0;
        if (same_key != same_triple) {
            fuzz_show_str("first", ka);
            fuzz_show_str("second", kb);
            fuzz_fail("two different (tenant, generation, kind, key) share a full key, or one gives two");
        }
    }
    free(ka);
    free(kb);
out:
    for (int i = 0; i < NFIELDS; i++)
        free(f[i]);
    fuzz_check_stdout();
    return 0;
}
