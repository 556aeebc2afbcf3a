/* fuzz_config.c — the configuration (growplate/config.h) from outside input:
 * gp_config_from_lookup() with a lookup fed by the fuzzer, then every text
 * it can show: the error text (full and truncated buffers), a second
 * gp_config_validate(), gp_config_describe(), gp_config_describe_json(),
 * gp_config_db_display() and gp_config_redis_display() (full and short
 * buffers), gp_redact() of every non-secret value, and the log.
 *
 * Input: lines "NAME=value" (a line "NAME" alone sets NAME to ""; '#' starts
 * a comment line). In values, \n \r \t \\ and \xHH (not \x00) stand for
 * those bytes. The last line for a name wins. The lookup hands out a fresh
 * allocation per call and frees it at the next one, as the contract allows
 * ("need only live until the next call"): ASan sees a kept pointer.
 * DATABASE_TENANT_KEY_FILE never names a real path: its first byte picks
 * one of a few files the harness made in a scratch directory (absent, a
 * 0600 file, a 0644 file, a directory) and the rest of the value, when
 * there is one, is written into the file as its content.
 *
 * The oracle: no secret in any of those texts. A secret is
 *  - the value of DATABASE_PASSWORD, REDIS_PASSWORD, DATABASE_TENANT_KEY,
 *    DATABASE_TENANT_KEY_PREVIOUS, and the content of the key file;
 *  - in DATABASE_URL, DATABASE_MIGRATION_URL, REDIS_URL (and DATABASE_NAME
 *    when there is no DATABASE_URL: libpq expands that one), when the value
 *    is a URL (scheme "://"): the text from the first ':' after "://" to the
 *    last '@' (the masking zone gp_redact documents: it holds the password
 *    by every reading, also when the password has a raw '@', '/' or '?'),
 *    libpq's reading of the password (up to the first '@' before a '/') and
 *    the Redis parser's (the last '@' before '/', '?' or '#'), and, for
 *    PostgreSQL, the value of a query key that percent-decodes to password
 *    or sslpassword (any case); when it is a conninfo string, tokenised as
 *    libpq's conninfo_parse does, the value of password / sslpassword, and
 *    the URL password of a value that is itself a URL; each raw and decoded
 *    (percent-decoding, conninfo quotes and escapes).
 * A text leaks when it holds a run of 6 or more bytes of a secret (the
 * whole secret when it has 6 to 8 bytes) — unless that run is also in a
 * non-secret value or the harness's own paths. To make that sound against
 * fixed text (a secret "expected" or "localhost:5432" may well appear in
 * the output for other reasons), a candidate is confirmed by a second run
 * with every secret byte replaced by another of its class (digits, a-f,
 * g-z, A-F, G-Z rotate; punctuation and %XX escapes stay, so the values
 * keep their shape): it is a leak when the second run's same text holds
 * the replaced run and not the original one, i.e. the text follows the
 * secret's bytes. When that run does not confirm it (replacing a whole
 * masking zone can rename a query key in it and change how libpq reads
 * the URL), a few more runs replace only the candidate's own bytes.
 * Reported findings not fixed yet can be stepped over by signature
 * (GP_FUZZ_KNOWN, fuzz/known.txt).
 *
 * Also: the status is GP_OK (then no message and a clean validate) or
 * GP_ERR_CONFIG (then a message); describe / describe_json succeed; the
 * JSON is a valid JSON object (when the input values are UTF-8); a short
 * display or gp_redact buffer gets a prefix of the full text. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "growplate/config.h"

/* ---- the variables ---------------------------------------------------------------- */

enum kind { K_PLAIN, K_SECRET, K_URL, K_DBNAME, K_KEYFILE };

static const struct {
    const char *name;
    enum kind kind;
} VARS[] = {
    {"DATABASE_URL", K_URL},
    {"DATABASE_HOST", K_PLAIN},
    {"DATABASE_PORT", K_PLAIN},
    {"DATABASE_NAME", K_DBNAME},
    {"DATABASE_USER", K_PLAIN},
    {"DATABASE_PASSWORD", K_SECRET},
    {"DATABASE_SSLMODE", K_PLAIN},
    {"DATABASE_APPLICATION_NAME", K_PLAIN},
    {"DATABASE_MIGRATION_URL", K_URL},
    {"DATABASE_POOL_MIN", K_PLAIN},
    {"DATABASE_POOL_MAX", K_PLAIN},
    {"DATABASE_TIMEOUT", K_PLAIN},
    {"DATABASE_ACQUIRE_TIMEOUT", K_PLAIN},
    {"DATABASE_IDLE_TIMEOUT", K_PLAIN},
    {"DATABASE_MAX_LIFETIME", K_PLAIN},
    {"DATABASE_STATEMENT_TIMEOUT", K_PLAIN},
    {"DATABASE_QUERY_TIMEOUT", K_PLAIN},
    {"DATABASE_VALIDATE_AFTER", K_PLAIN},
    {"DATABASE_LEAK_THRESHOLD", K_PLAIN},
    {"DATABASE_TENANT_KEY", K_SECRET},
    {"DATABASE_TENANT_KEY_PREVIOUS", K_SECRET},
    {"DATABASE_TENANT_KEY_FILE", K_KEYFILE},
    {"DATABASE_TENANT_TOKEN_TTL", K_PLAIN},
    {"REDIS_URL", K_URL},
    {"REDIS_HOST", K_PLAIN},
    {"REDIS_PORT", K_PLAIN},
    {"REDIS_USERNAME", K_PLAIN},
    {"REDIS_PASSWORD", K_SECRET},
    {"REDIS_DB", K_PLAIN},
    {"REDIS_KEY_PREFIX", K_PLAIN},
    {"REDIS_TIMEOUT", K_PLAIN},
    {"REDIS_CONNECT_TIMEOUT", K_PLAIN},
    {"REDIS_POOL_SIZE", K_PLAIN},
};
#define NVARS (sizeof VARS / sizeof VARS[0])

#define MAXPAIRS 64
#define MAXVAL 4096

typedef struct pair {
    char name[64];
    enum kind kind;
    bool read;     /* a name the library reads (in VARS) */
    char *a, *b;   /* the value, and the value with its secret bytes replaced */
    unsigned char *secret; /* per byte: 1 when inside a secret */
} pair_t;

static pair_t pairs[MAXPAIRS];
static size_t npairs;

/* ---- the key file --------------------------------------------------------------- */

static char scratch[256];
static char keyfile_path[4][300];
enum { KF_ABSENT, KF_PRIVATE, KF_OPEN, KF_DIR, KF_N };
static int keyfile_kind = -1;  /* this input's choice, -1 = none */
static char *keyfile_a, *keyfile_b; /* its content (secret) */
static const char default_key[] = "4f1c9a7e2b6d8053e1f7a9c4b2d6e8f0a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1";

static void write_keyfile(const char *content)
{
    if (keyfile_kind != KF_PRIVATE && keyfile_kind != KF_OPEN)
        return;
    const char *path = keyfile_path[keyfile_kind];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        fuzz_fail("cannot write %s: %s", path, strerror(errno));
    size_t n = strlen(content);
    if (write(fd, content, n) != (ssize_t)n)
        fuzz_fail("cannot write %s", path);
    fchmod(fd, keyfile_kind == KF_OPEN ? 0644 : 0600);
    close(fd);
}

/* ---- the lookup ----------------------------------------------------------------- */

static bool use_b;      /* which value the lookup hands out */
static char *handed;    /* the last string handed out: freed at the next call */

static const char *lookup(void *ud, const char *name)
{
    (void)ud;
    free(handed);
    handed = NULL;
    if (!name)
        fuzz_fail("lookup called with a NULL name");
    for (size_t i = npairs; i-- > 0;) {
        if (strcmp(pairs[i].name, name) != 0)
            continue;
        const char *v = use_b ? pairs[i].b : pairs[i].a;
        if (pairs[i].kind == K_KEYFILE)
            v = keyfile_kind >= 0 ? keyfile_path[keyfile_kind] : v;
        handed = strdup(v);
        if (!handed)
            abort();
        return handed;
    }
    return NULL;
}

/* ---- the log --------------------------------------------------------------------- */

static char logbuf[8192];
static size_t loglen;

static void log_capture(void *ud, gp_log_level_t level, const char *component, const char *message)
{
    (void)ud;
    (void)level;
    int n = snprintf(logbuf + loglen, sizeof logbuf - loglen, "%s: %s\n", component, message);
    if (n > 0)
        loglen = loglen + (size_t)n < sizeof logbuf ? loglen + (size_t)n : sizeof logbuf - 1;
}

/* ---- secrets --------------------------------------------------------------------- */

static int hexv(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool blank(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The replacement of one secret byte: another byte of the same class. */
static char rot(char ch)
{
    unsigned char c = (unsigned char)ch;
    if (c >= '0' && c <= '9') return (char)('0' + (c - '0' + 5) % 10);
    if (c >= 'a' && c <= 'f') return (char)('a' + (c - 'a' + 3) % 6);
    if (c >= 'g' && c <= 'z') return (char)('g' + (c - 'g' + 10) % 20);
    if (c >= 'A' && c <= 'F') return (char)('A' + (c - 'A' + 3) % 6);
    if (c >= 'G' && c <= 'Z') return (char)('G' + (c - 'G' + 10) % 20);
    return ch;
}

typedef enum { DEC_NONE, DEC_PCT, DEC_CONNINFO } decoding_t;

typedef struct secret {
    const char *id;   /* which reading, short: zone libpq redis query conninfo value keyfile */
    const char *what; /* the same, for the report */
    const char *var;
    char *a, *b;      /* the two runs' forms, same length */
    size_t n;
    pair_t *pair;     /* where it comes from (NULL: the key file) */
    size_t s, e;      /* its raw span in the value */
    decoding_t how;
    size_t *pos;      /* per byte of the forms: its offset in the span, or NOPOS */
} secret_t;

#define MAXSECRETS 512
static secret_t secrets[MAXSECRETS];
static size_t nsecrets;

/* Decode [s, s+n) into out (*on bytes); pos (may be NULL) gets, for each
 * output byte, the offset in s of the byte it is, or NOPOS for one that a
 * %XX escape produced (which the second run never replaces). */
#define NOPOS ((size_t)-1)
static void decode(const char *s, size_t n, decoding_t how, char *out, size_t *on, size_t *pos)
{
    size_t o = 0, base = 0;
    if (how == DEC_CONNINFO && n && s[0] == '\'') { /* quoted: drop the quotes */
        s++, n--, base = 1;
        if (n && s[n - 1] == '\'')
            n--;
    }
    for (size_t i = 0; i < n; i++) {
        size_t at = base + i;
        if (how == DEC_PCT && s[i] == '%' && i + 2 < n && hexv((unsigned char)s[i + 1]) >= 0 &&
            hexv((unsigned char)s[i + 2]) >= 0) {
            out[o] = (char)(hexv((unsigned char)s[i + 1]) * 16 + hexv((unsigned char)s[i + 2]));
            at = NOPOS;
            i += 2;
        } else if (how == DEC_CONNINFO && s[i] == '\\' && i + 1 < n) {
            out[o] = s[++i];
            at = base + i;
        } else {
            out[o] = s[i];
        }
        if (pos)
            pos[o] = at;
        o++;
    }
    *on = o;
}

/* Mark [s, e) of pair p as secret and record it, raw and decoded `how`;
 * the forms are made once p->b exists (finish_secrets). */
static void add_span(pair_t *p, size_t s, size_t e, const char *id, const char *what, decoding_t how)
{
    if (e <= s)
        return;
    for (size_t i = s; i < e; i++)
        p->secret[i] = 1;
    for (int f = 0; f < (how == DEC_NONE ? 1 : 2) && nsecrets < MAXSECRETS; f++) {
        secret_t *x = &secrets[nsecrets++];
        memset(x, 0, sizeof *x);
        x->id = id;
        x->what = f == 0 ? what : how == DEC_PCT ? "the same, percent-decoded" : "the same, unquoted";
        x->var = p->name;
        x->pair = p;
        x->s = s;
        x->e = e;
        x->how = f == 0 ? DEC_NONE : how;
    }
}

/* Whether [s, s+n) is a URL: a scheme (letters, digits, + - .) and "://". */
static const char *url_scheme_end(const char *s, size_t n)
{
    const char *sep = memmem(s, n, "://", 3);
    if (!sep || sep == s)
        return NULL;
    for (const char *c = s; c < sep; c++)
        if (!(isalnum((unsigned char)*c) || *c == '+' || *c == '-' || *c == '.'))
            return NULL;
    return sep;
}

/* The URL at [s, e) of p's value: the documented masking zone of its user
 * info (first ':' after "://" to the last '@'), libpq's and the Redis
 * parser's readings of its password, and (PostgreSQL) its query's
 * password= / sslpassword= values. */
static void url_secrets(pair_t *p, size_t s, size_t e, bool redis)
{
    const char *v = p->a, *end = v + e;
    const char *sep = url_scheme_end(v + s, e - s);
    if (!sep)
        return;
    const char *a = sep + 3, *last_at = NULL, *query_from = sep + 3;
    for (const char *r = a; r < end; r++)
        if (*r == '@')
            last_at = r;
    if (last_at) {
        const char *colon = memchr(a, ':', (size_t)(last_at - a));
        if (colon)
            add_span(p, (size_t)(colon + 1 - v), (size_t)(last_at - v), "zone", "URL user info, ':' to the last '@'",
                     DEC_PCT);
        /* libpq: the user info ends at the first '@' before the first '/'. */
        size_t ul = 0;
        while (a + ul < end && a[ul] != '/')
            ul++;
        const char *at1 = memchr(a, '@', ul);
        const char *c1 = at1 ? memchr(a, ':', (size_t)(at1 - a)) : NULL;
        if (c1)
            add_span(p, (size_t)(c1 + 1 - v), (size_t)(at1 - v), "libpq", "URL password, libpq's reading", DEC_PCT);
        if (at1) /* a '?' inside libpq's user info is part of the password, not a query */
            query_from = at1 + 1;
        /* The Redis parser: the last '@' before the first '/', '?' or '#'. */
        const char *at2 = NULL;
        for (const char *r = a; r < end && !strchr("/?#", *r); r++)
            if (*r == '@')
                at2 = r;
        const char *c2 = at2 ? memchr(a, ':', (size_t)(at2 - a)) : NULL;
        if (c2)
            add_span(p, (size_t)(c2 + 1 - v), (size_t)(at2 - v), "redis", "URL password, the Redis parser's reading",
                     DEC_PCT);
    }
    if (redis)
        return; /* no query: the Redis parser rejects one */
    for (size_t i = (size_t)(query_from - v); i < e; i++) {
        if (v[i] != '?' && v[i] != '&')
            continue;
        size_t ks = i + 1, kl = 0;
        while (ks + kl < e && v[ks + kl] != '=' && v[ks + kl] != '&')
            kl++;
        if (ks + kl >= e || v[ks + kl] != '=' || kl >= 64)
            continue;
        char key[64];
        size_t kn;
        decode(v + ks, kl, DEC_PCT, key, &kn, NULL);
        key[kn] = 0;
        if (strcasecmp(key, "password") == 0 || strcasecmp(key, "sslpassword") == 0) {
            size_t vs = ks + kl + 1, ve = vs;
            while (ve < e && v[ve] != '&')
                ve++;
            add_span(p, vs, ve, "query", "URL query password", DEC_PCT);
        }
    }
}

/* A libpq conninfo string, tokenised as libpq's conninfo_parse does:
 * blanks, a keyword up to '=' or a blank, blanks, '=', blanks, then a value,
 * '...' quoted or up to the next blank, with backslash escapes. The value of
 * password / sslpassword (any case) is a secret; so is the password part of
 * a value that is itself a URL (dbname=postgresql://...). Stops where
 * libpq would fail ("missing '='"). */
static void conninfo_secrets(pair_t *p)
{
    const char *v = p->a;
    size_t n = strlen(v), i = 0;
    for (;;) {
        while (i < n && blank((unsigned char)v[i]))
            i++;
        if (i >= n)
            return;
        size_t ks = i;
        while (i < n && v[i] != '=' && !blank((unsigned char)v[i]))
            i++;
        size_t ke = i;
        while (i < n && blank((unsigned char)v[i]))
            i++;
        if (i >= n || v[i] != '=')
            return;
        i++;
        while (i < n && blank((unsigned char)v[i]))
            i++;
        size_t vs = i, in_s = i, in_e;
        if (i < n && v[i] == '\'') {
            for (in_s = ++i; i < n && v[i] != '\''; i++)
                if (v[i] == '\\' && i + 1 < n)
                    i++;
            in_e = i;
            if (i < n)
                i++; /* the closing quote */
        } else {
            for (; i < n && !blank((unsigned char)v[i]); i++)
                if (v[i] == '\\' && i + 1 < n)
                    i++;
            in_e = i;
        }
        size_t kl = ke - ks;
        if ((kl == 8 && strncasecmp(v + ks, "password", 8) == 0) ||
            (kl == 11 && strncasecmp(v + ks, "sslpassword", 11) == 0))
            add_span(p, vs, i, "conninfo", "conninfo password", DEC_CONNINFO);
        else
            url_secrets(p, in_s, in_e, false);
    }
}

/* The part of each reading that decides where a secret is. */
static void find_secrets(pair_t *p)
{
    const char *v = p->a;
    size_t n = strlen(v);
    bool redis = strcmp(p->name, "REDIS_URL") == 0;
    if (p->kind == K_SECRET)
        add_span(p, 0, n, "value", "the value", DEC_NONE);
    else if (url_scheme_end(v, n))
        url_secrets(p, 0, n, redis);
    else if (!redis)
        conninfo_secrets(p);
}

/* p->b: p->a with every secret byte replaced, %XX escapes kept (so the
 * second run decodes the same bytes there, and parses the same way). */
static void make_b(pair_t *p)
{
    size_t n = strlen(p->a);
    p->b = malloc(n + 1);
    if (!p->b)
        abort();
    memcpy(p->b, p->a, n + 1);
    bool url = p->kind == K_URL || p->kind == K_DBNAME;
    for (size_t i = 0; i < n; i++) {
        if (url && p->a[i] == '%' && hexv((unsigned char)p->a[i + 1]) >= 0 && i + 2 < n &&
            hexv((unsigned char)p->a[i + 2]) >= 0) {
            i += 2;
            continue;
        }
        if (p->secret[i])
            p->b[i] = rot(p->a[i]);
    }
}

/* Now that p->b exists, both forms of its secrets. */
static void finish_secrets(size_t first)
{
    for (size_t k = first; k < nsecrets; k++) {
        secret_t *x = &secrets[k];
        size_t na, nb, raw = x->e - x->s;
        x->a = malloc(raw + 1);
        x->b = malloc(raw + 1);
        if (!x->a || !x->b)
            abort();
        x->pos = malloc((raw + 1) * sizeof *x->pos);
        if (!x->pos)
            abort();
        decode(x->pair->a + x->s, raw, x->how, x->a, &na, x->pos);
        decode(x->pair->b + x->s, raw, x->how, x->b, &nb, NULL);
        if (na != nb)
            fuzz_fail("harness: the replaced secret decodes to another length");
        x->n = na;
    }
}

/* ---- one run ------------------------------------------------------------------------ */

#define MAXOUT (16 + MAXPAIRS)

typedef struct run {
    int n;
    char *text[MAXOUT];
    size_t len[MAXOUT];
    const char *label[MAXOUT];
    const char *cls[MAXOUT]; /* errors describe json display redact log */
    gp_status_t st;
} run_t;

static void add_out(run_t *r, const char *cls, const char *label, const char *s, size_t n)
{
    if (r->n == MAXOUT)
        abort();
    r->text[r->n] = malloc(n + 1);
    if (!r->text[r->n])
        abort();
    memcpy(r->text[r->n], s, n);
    r->text[r->n][n] = 0;
    r->len[r->n] = n;
    r->label[r->n] = label;
    r->cls[r->n] = cls;
    r->n++;
}

static void free_run(run_t *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->text[i]);
    r->n = 0;
}

/* describe_json's strings as they mean: undo jesc's \" \\ \u00XX. */
static void json_unescape(const char *s, char *out, size_t *on)
{
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1] == 'u' && hexv((unsigned char)s[i + 2]) >= 0 && hexv((unsigned char)s[i + 3]) >= 0 &&
            hexv((unsigned char)s[i + 4]) >= 0 && hexv((unsigned char)s[i + 5]) >= 0) {
            int c = hexv((unsigned char)s[i + 4]) * 16 + hexv((unsigned char)s[i + 5]);
            out[o++] = (char)(c ? c : '?');
            i += 5;
        } else if (s[i] == '\\' && s[i + 1]) {
            out[o++] = s[++i];
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = 0;
    *on = o;
}

static bool utf8_valid(const char *s)
{
    json_t *j = json_string(s); /* jansson's own check */
    bool ok = j != NULL;
    json_decref(j);
    return ok;
}

static bool known(const char *cls, const char *id);

static size_t small_len;   /* a short buffer for this input */
static bool inputs_utf8;

static void run_config(bool b, run_t *r)
{
    use_b = b;
    write_keyfile(b ? keyfile_b : keyfile_a);
    loglen = 0;
    logbuf[0] = 0;
    memset(r, 0, sizeof *r);

    gp_config_t cfg;
    memset(&cfg, 0xA5, sizeof cfg); /* documented: need not be initialised */
    char err[GP_ERRBUF_SIZE];
    memset(err, 'E', sizeof err);
    gp_status_t st = gp_config_from_lookup(&cfg, lookup, NULL, err, sizeof err);
    free(handed);
    handed = NULL;
    r->st = st;
    if (strnlen(err, sizeof err) == sizeof err)
        fuzz_fail("the error text is not NUL-terminated");
    if (st != GP_OK && st != GP_ERR_CONFIG)
        fuzz_fail("gp_config_from_lookup returned %d", (int)st);
    if (st == GP_OK && err[0]) {
        fuzz_show_str("err", err);
        fuzz_fail("GP_OK with a message");
    }
    if (st == GP_ERR_CONFIG && !err[0])
        fuzz_fail("GP_ERR_CONFIG without a message");
    add_out(r, "errors", "the error text of gp_config_from_lookup", err, strlen(err));

    /* The same with a short buffer. */
    gp_config_t cfg2;
    char *errs = malloc(small_len);
    if (!errs)
        abort();
    if (gp_config_from_lookup(&cfg2, lookup, NULL, errs, small_len) != st)
        fuzz_fail("the status depends on the size of the error buffer (%zu)", small_len);
    free(handed);
    handed = NULL;
    if (strnlen(errs, small_len) == small_len)
        fuzz_fail("the short error text is not NUL-terminated");
    add_out(r, "errors", "the error text in a short buffer", errs, strlen(errs));
    free(errs);
    gp_config_release(&cfg2);

    char verr[GP_ERRBUF_SIZE] = "";
    gp_status_t vst = gp_config_validate(&cfg, verr, sizeof verr);
    if (st == GP_OK && (vst != GP_OK || verr[0])) {
        fuzz_show_str("validate", verr);
        fuzz_fail("gp_config_from_lookup said GP_OK, gp_config_validate disagrees");
    }
    add_out(r, "errors", "gp_config_validate's text", verr, strlen(verr));

    char *d = NULL;
    if (gp_config_describe(&cfg, &d) != GP_OK || !d)
        fuzz_fail("gp_config_describe failed");
    add_out(r, "describe", "gp_config_describe", d, strlen(d));
    free(d);

    char *j = NULL;
    if (gp_config_describe_json(&cfg, &j) != GP_OK || !j)
        fuzz_fail("gp_config_describe_json failed");
    json_error_t je;
    json_t *parsed = json_loads(j, 0, &je);
    if (!b && inputs_utf8 && (!parsed || !json_is_object(parsed)) && !known("json", "utf8")) {
        fuzz_show_str("json", j);
        fuzz_fail("gp_config_describe_json is not a JSON object: %s (at %d)", je.text, je.position);
    }
    json_decref(parsed);
    size_t un;
    char *u = malloc(strlen(j) + 1);
    if (!u)
        abort();
    json_unescape(j, u, &un);
    add_out(r, "json", "gp_config_describe_json (strings unescaped)", u, un);
    free(u);
    free(j);

    static const char *const dlabel[2][2] = {{"gp_config_db_display", "gp_config_db_display, short buffer"},
                                             {"gp_config_redis_display", "gp_config_redis_display, short buffer"}};
    for (int which = 0; which < 2; which++) {
        char big[1024], *sm = malloc(small_len);
        if (!sm)
            abort();
        memset(big, 'D', sizeof big);
        memset(sm, 'D', small_len);
        if (which == 0) {
            gp_config_db_display(&cfg.db, big, sizeof big);
            gp_config_db_display(&cfg.db, sm, small_len);
        } else {
            gp_config_redis_display(&cfg.redis, big, sizeof big);
            gp_config_redis_display(&cfg.redis, sm, small_len);
        }
        if (strnlen(big, sizeof big) == sizeof big || strnlen(sm, small_len) == small_len)
            fuzz_fail("%s: not NUL-terminated", dlabel[which][0]);
        size_t bl = strlen(big), sl = strlen(sm);
        if (sl != (bl < small_len - 1 ? bl : small_len - 1) || memcmp(big, sm, sl) != 0) {
            fuzz_show_str("full", big);
            fuzz_show_str("short", sm);
            fuzz_fail("%s with %zu bytes is not a prefix of the full text", dlabel[which][0], small_len);
        }
        add_out(r, "display", dlabel[which][0], big, bl);
        add_out(r, "display", dlabel[which][1], sm, sl);
        free(sm);
    }
    (void)gp_config_db_display(&cfg.db, NULL, 10);
    (void)gp_config_redis_display(&cfg.redis, NULL, 0);

    /* gp_redact on each value that is not a secret as a whole. */
    for (size_t i = 0; i < npairs; i++) {
        if (pairs[i].kind == K_SECRET || pairs[i].kind == K_KEYFILE)
            continue;
        const char *v = b ? pairs[i].b : pairs[i].a;
        size_t n = strlen(v);
        char *full = malloc(2 * n + 64), *sm = malloc(small_len);
        if (!full || !sm)
            abort();
        gp_redact(v, full, 2 * n + 64);
        gp_redact(v, sm, small_len);
        size_t fl = strlen(full), sl = strlen(sm);
        if (sl != (fl < small_len - 1 ? fl : small_len - 1) || memcmp(full, sm, sl) != 0) {
            fuzz_show_str("value", v);
            fuzz_show_str("full", full);
            fuzz_show_str("short", sm);
            fuzz_fail("gp_redact with %zu bytes is not a prefix of the full text", small_len);
        }
        static char labels[MAXPAIRS][96];
        snprintf(labels[i], sizeof labels[i], "gp_redact(%s)", pairs[i].name);
        add_out(r, "redact", labels[i], full, fl);
        free(full);
        free(sm);
    }
    add_out(r, "log", "the log", logbuf, loglen);
    gp_config_release(&cfg);
}

/* ---- the oracle ------------------------------------------------------------------------ */

static bool in_public(const char *w, size_t n)
{
    for (size_t i = 0; i < npairs; i++) {
        if (pairs[i].kind != K_PLAIN || !pairs[i].name[0] || !pairs[i].read)
            continue; /* a secret, a value overridden, or one nobody reads */
        if (fuzz_contains(pairs[i].a, strlen(pairs[i].a), w, n))
            return true;
    }
    for (int k = 0; k < KF_N; k++)
        if (fuzz_contains(keyfile_path[k], strlen(keyfile_path[k]), w, n))
            return true;
    return false;
}

#define RUN 6 /* the shortest run of secret bytes that counts */

typedef struct candidate {
    size_t secret, off, len;
    int out;
    bool done;
} candidate_t;

static void report(const run_t *ra, const run_t *rb, const candidate_t *c, const char *wb)
{
    const secret_t *x = &secrets[c->secret];
    fprintf(stderr, "\nLEAK: %s shows %zu bytes of a secret (%s of %s) [signature %s:%s]\n", ra->label[c->out],
            c->len, x->what, x->var, ra->cls[c->out], x->id);
    fuzz_show("secret", x->a, x->n);
    fuzz_show("shown run", x->a + c->off, c->len);
    fuzz_show("text", ra->text[c->out], ra->len[c->out]);
    fuzz_show("replaced run", wb, c->len);
    fuzz_show("same text, with the replaced run", rb->text[c->out], rb->len[c->out]);
    fprintf(stderr, "  inputs:\n");
    for (size_t i = 0; i < npairs; i++) {
        const char *v = pairs[i].kind == K_KEYFILE && keyfile_kind >= 0 ? keyfile_path[keyfile_kind] : pairs[i].a;
        fprintf(stderr, "    %s=", pairs[i].name);
        fuzz_show("", v, strlen(v));
    }
    if (keyfile_a)
        fuzz_show("key file content", keyfile_a, strlen(keyfile_a));
    fuzz_fail("a secret shows in %s", ra->label[c->out]);
}

/* The second run's text holds the replaced run where the first showed the
 * secret's, and does not hold the secret's run itself. */
static bool confirmed(const run_t *rb, const candidate_t *c, const char *wb)
{
    const secret_t *x = &secrets[c->secret];
    return fuzz_contains(rb->text[c->out], rb->len[c->out], wb, c->len) &&
           !fuzz_contains(rb->text[c->out], rb->len[c->out], x->a + c->off, c->len);
}

/* Second values that differ from the first only in the window [off,
 * off+len) of secret x (so nothing around it, a query key say, changes how
 * the value parses); *wb gets the window's replaced form (malloc'd). */
static void replace_window_only(const secret_t *x, size_t off, size_t len, char **wb)
{
    for (size_t i = 0; i < npairs; i++)
        memcpy(pairs[i].b, pairs[i].a, strlen(pairs[i].a) + 1);
    if (keyfile_a)
        memcpy(keyfile_b, keyfile_a, strlen(keyfile_a) + 1);
    const char *src = x->pair ? x->pair->a + x->s : keyfile_a;
    char *dst = x->pair ? x->pair->b + x->s : keyfile_b;
    for (size_t k = off; k < off + len; k++)
        if (x->pos[k] != NOPOS)
            dst[x->pos[k]] = rot(src[x->pos[k]]);
    size_t raw = x->pair ? x->e - x->s : strlen(keyfile_a), n;
    char *form = malloc(raw + 1);
    if (!form)
        abort();
    decode(dst, x->pair ? raw : x->n, x->pair ? x->how : DEC_NONE, form, &n, NULL);
    *wb = malloc(len + 1);
    if (!*wb)
        abort();
    memcpy(*wb, form + off, len);
    free(form);
}

/* GP_FUZZ_KNOWN: reported findings to step over, as a comma-separated list
 * of TEXT:READING (TEXT: errors describe json display redact log; READING:
 * zone libpq redis query conninfo value keyfile), e.g. "errors:zone"; and
 * "json:utf8" for describe_json's invalid UTF-8. A leak of the same bytes
 * under another reading still fails. Unset: none (fuzz/run sets it from
 * fuzz/known.txt). */
static bool known(const char *cls, const char *id)
{
    const char *k = getenv("GP_FUZZ_KNOWN");
    if (!k)
        return false;
    char sig[64];
    snprintf(sig, sizeof sig, "%s:%s", cls, id);
    size_t n = strlen(sig);
    for (const char *p = k; (p = strstr(p, sig)) != NULL; p += n)
        if ((p == k || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return true;
    return false;
}

#define MAXCAND 64
#define WINDOW_RETRIES 8

static void oracle(void)
{
    run_t ra, rb;
    run_config(false, &ra);
    candidate_t cand[MAXCAND];
    size_t nc = 0;
    for (size_t s = 0; s < nsecrets && nc < MAXCAND; s++) {
        const secret_t *x = &secrets[s];
        if (x->n < RUN)
            continue;
        size_t w = x->n <= 8 ? x->n : RUN;
        for (size_t off = 0; off + w <= x->n && nc < MAXCAND; off++) {
            if (memcmp(x->a + off, x->b + off, w) == 0 || in_public(x->a + off, w))
                continue; /* nothing replaced in it, or also a public value */
            for (int o = 0; o < ra.n && nc < MAXCAND; o++)
                if (!known(ra.cls[o], x->id) && fuzz_contains(ra.text[o], ra.len[o], x->a + off, w))
                    cand[nc++] = (candidate_t){s, off, w, o, false};
        }
    }
    if (nc) {
        /* Every secret byte replaced: one run confirms most leaks. */
        run_config(true, &rb);
        if (rb.n != ra.n)
            fuzz_fail("harness: the second run has another number of texts");
        for (size_t i = 0; i < nc; i++)
            if (confirmed(&rb, &cand[i], secrets[cand[i].secret].b + cand[i].off))
                report(&ra, &rb, &cand[i], secrets[cand[i].secret].b + cand[i].off);
        free_run(&rb);
        /* Then only the window of a few of the others: replacing all of a
         * masking zone can change how the URL parses (a query key in it). */
        int tries = 0;
        for (size_t i = 0; i < nc && tries < WINDOW_RETRIES; i++) {
            candidate_t *c = &cand[i];
            bool seen = false;
            for (size_t k = 0; k < i && !seen; k++)
                seen = cand[k].secret == c->secret && cand[k].off == c->off;
            if (seen)
                continue;
            tries++;
            char *wb;
            replace_window_only(&secrets[c->secret], c->off, c->len, &wb);
            run_config(true, &rb);
            if (rb.n != ra.n)
                fuzz_fail("harness: the second run has another number of texts");
            for (size_t k = i; k < nc; k++)
                if (cand[k].secret == c->secret && cand[k].off == c->off && confirmed(&rb, &cand[k], wb))
                    report(&ra, &rb, &cand[k], wb);
            free(wb);
            free_run(&rb);
        }
    }
    free_run(&ra);
}

/* ---- input ------------------------------------------------------------------------------ */

static size_t unescape_value(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o < MAXVAL; i++) {
        char c = s[i];
        if (c == 0)
            break; /* a C string ends there */
        if (c == '\\' && i + 1 < n) {
            char e = s[i + 1];
            if (e == 'n') { out[o++] = '\n'; i++; continue; }
            if (e == 'r') { out[o++] = '\r'; i++; continue; }
            if (e == 't') { out[o++] = '\t'; i++; continue; }
            if (e == '\\') { out[o++] = '\\'; i++; continue; }
            if (e == 'x' && i + 3 < n && hexv((unsigned char)s[i + 2]) >= 0 && hexv((unsigned char)s[i + 3]) >= 0) {
                int v = hexv((unsigned char)s[i + 2]) * 16 + hexv((unsigned char)s[i + 3]);
                i += 3;
                if (v)
                    out[o++] = (char)v;
                continue;
            }
        }
        out[o++] = c;
    }
    out[o] = 0;
    return o;
}

static void reset(void)
{
    for (size_t i = 0; i < npairs; i++) {
        free(pairs[i].a);
        free(pairs[i].b);
        free(pairs[i].secret);
    }
    npairs = 0;
    for (size_t i = 0; i < nsecrets; i++) {
        free(secrets[i].a);
        free(secrets[i].b);
        free(secrets[i].pos);
    }
    nsecrets = 0;
    free(keyfile_a);
    free(keyfile_b);
    keyfile_a = keyfile_b = NULL;
    keyfile_kind = -1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_guard_stdout();
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/gp-fuzz-config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(scratch))
        fuzz_fail("mkdtemp %s: %s", scratch, strerror(errno));
    snprintf(keyfile_path[KF_ABSENT], sizeof keyfile_path[0], "%s/absent.key", scratch);
    snprintf(keyfile_path[KF_PRIVATE], sizeof keyfile_path[0], "%s/private.key", scratch);
    snprintf(keyfile_path[KF_OPEN], sizeof keyfile_path[0], "%s/open.key", scratch);
    snprintf(keyfile_path[KF_DIR], sizeof keyfile_path[0], "%s", scratch);
    gp_log_set_handler(log_capture, NULL, GP_LOG_DEBUG);
    return 0;
}

__attribute__((destructor)) static void cleanup(void)
{
    if (!scratch[0])
        return;
    unlink(keyfile_path[KF_PRIVATE]);
    unlink(keyfile_path[KF_OPEN]);
    rmdir(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reset();
    const char *s = (const char *)data;
    static char val[MAXVAL + 1];
    for (size_t pos = 0; pos < size && npairs < MAXPAIRS;) {
        const char *nl = memchr(s + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - s) : size;
        const char *line = s + pos;
        size_t ll = end - pos;
        pos = end + 1;
        if (ll == 0 || line[0] == '#')
            continue;
        const char *eq = memchr(line, '=', ll);
        size_t nl_ = eq ? (size_t)(eq - line) : ll;
        if (nl_ == 0 || nl_ >= sizeof pairs[0].name || memchr(line, 0, nl_))
            continue;
        pair_t *p = &pairs[npairs];
        memcpy(p->name, line, nl_);
        p->name[nl_] = 0;
        size_t vn = eq ? unescape_value(eq + 1, ll - nl_ - 1, val) : (val[0] = 0, 0);
        p->a = malloc(vn + 1);
        p->secret = calloc(vn + 1, 1);
        if (!p->a || !p->secret)
            abort();
        memcpy(p->a, val, vn + 1);
        p->kind = K_PLAIN;
        p->read = false;
        for (size_t k = 0; k < NVARS; k++)
            if (strcmp(VARS[k].name, p->name) == 0)
                p->kind = VARS[k].kind, p->read = true;
        npairs++;
    }
    /* Only the last pair of a name counts: drop the others' secrets. */
    bool has_url = false;
    for (size_t i = 0; i < npairs; i++) {
        bool last = true;
        for (size_t k = i + 1; k < npairs; k++)
            last = last && strcmp(pairs[k].name, pairs[i].name) != 0;
        if (!last) {
            pairs[i].name[0] = 0; /* never looked up */
            continue;
        }
        if (strcmp(pairs[i].name, "DATABASE_URL") == 0 && pairs[i].a[0])
            has_url = true;
    }
    inputs_utf8 = true;
    for (size_t i = 0; i < npairs; i++) {
        pair_t *p = &pairs[i];
        if (!p->name[0]) {
            p->b = strdup(p->a);
            if (!p->b)
                abort();
            continue;
        }
        inputs_utf8 = inputs_utf8 && utf8_valid(p->a);
        if (p->kind == K_DBNAME && has_url)
            p->kind = K_PLAIN; /* not expanded by libpq: a name */
        if (p->kind == K_KEYFILE) {
            keyfile_kind = (unsigned char)p->a[0] % KF_N;
            const char *content = p->a[0] && p->a[1] ? p->a + 1 : default_key;
            keyfile_a = strdup(content);
            keyfile_b = strdup(content);
            if (!keyfile_a || !keyfile_b)
                abort();
            for (char *c = keyfile_b; *c; c++)
                *c = rot(*c);
        }
        size_t first = nsecrets;
        if (p->kind == K_SECRET || p->kind == K_URL || p->kind == K_DBNAME)
            find_secrets(p);
        make_b(p);
        finish_secrets(first);
    }
    if (keyfile_a && (keyfile_kind == KF_PRIVATE || keyfile_kind == KF_OPEN)) {
        /* The key as the library reads it: trailing blanks trimmed. */
        size_t n = strlen(keyfile_a);
        while (n && strchr("\n\r \t", keyfile_a[n - 1]))
            n--;
        if (n && nsecrets < MAXSECRETS) {
            secret_t *x = &secrets[nsecrets++];
            x->a = strndup(keyfile_a, n);
            x->b = strndup(keyfile_b, n);
            if (!x->a || !x->b)
                abort();
            x->n = n;
            x->pos = malloc((n + 1) * sizeof *x->pos);
            if (!x->pos)
                abort();
            for (size_t k = 0; k < n; k++)
                x->pos[k] = k;
            x->id = "keyfile";
            x->what = "the content";
            x->var = "DATABASE_TENANT_KEY_FILE";
            x->pair = NULL;
        }
    }
    small_len = 1 + size % 48;
    oracle();
    fuzz_check_stdout();
    return 0;
}
