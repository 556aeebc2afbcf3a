/* test_redact.c — no password ever shows: every printable ASCII byte and some
 * non-ASCII ones (UTF-8 sequences, lone bytes 0x80..0xff), as a one-byte
 * password and at the start, middle and end of a longer one, raw and
 * percent-encoded, in postgresql://, postgres://, redis:// and rediss://
 * URLs, URL query parameters and conninfo strings (quoted and unquoted),
 * alone and inside longer messages, through gp_redact(), the log, the
 * configuration's messages and displays, and `growplate config check`
 * (text and --json) run as a child process. The rest of each URL (user,
 * host, port, database) must still be shown. No servers needed. */
/* ctest-timeout: 600 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gp_test.h"
#include "internal.h"

/* ---- the secrets ------------------------------------------------------------ */

/* Each "byte" is a short string: one byte, or one UTF-8 character. */
#define NBYTES_MAX 128
static char bytes[NBYTES_MAX][8];
static size_t nbytes;

static void init_bytes(void)
{
    if (nbytes)
        return;
    for (int c = 0x20; c <= 0x7e; c++)
        bytes[nbytes][0] = (char)c, bytes[nbytes++][1] = 0;
    static const char *const extra[] = {
        "\xc3\xa9",         /* é, 2 bytes */
        "\xe2\x82\xac",     /* €, 3 bytes */
        "\xf0\x9f\x94\x91", /* 🔑, 4 bytes */
        "\x80", "\x9f", "\xa0", "\xc0", "\xe9", "\xfe", "\xff", /* lone bytes, not UTF-8 */
        "\t", "\n",         /* an environment value can hold them too */
    };
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++)
        snprintf(bytes[nbytes++], sizeof bytes[0], "%s", extra[i]);
}

/* Markers around the byte in the longer passwords: any partial leak shows
 * one of them (raw, or percent-encoded as the URL had it). */
#define M1 "Qz7"
#define M2 "Wv9"
#define M1_PCT "%51%7A%37"
#define M2_PCT "%57%76%39"

enum { POS_SINGLE, POS_START, POS_MIDDLE, POS_END, NPOS };
static const char *const pos_name[NPOS] = {"single", "start", "middle", "end"};

static void make_password(char *out, size_t len, const char *b, int pos)
{
    switch (pos) {
    case POS_SINGLE: snprintf(out, len, "%s", b); break;
    case POS_START: snprintf(out, len, "%s" M1 M2, b); break;
    case POS_MIDDLE: snprintf(out, len, M1 "%s" M2, b); break;
    default: snprintf(out, len, M1 M2 "%s", b); break;
    }
}

enum { ENC_RAW, ENC_PCT, NENC };
static const char *const enc_name[NENC] = {"raw", "percent-encoded"};

/* Every byte as %XX (uppercase hex), as a careful operator writes it. */
static void pct_all(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < len; p++)
        o += (size_t)snprintf(out + o, len - o, "%%%02X", *p);
    out[o] = 0;
}

static void encode(const char *pw, int enc, char *out, size_t len)
{
    if (enc == ENC_PCT)
        pct_all(pw, out, len);
    else
        snprintf(out, len, "%s", pw);
}

/* conninfo values: quoted ('...' with \' and \\) or unquoted (blanks, quote
 * and backslash escaped with a backslash), as libpq reads them. */
static void conninfo_quoted(const char *pw, char *out, size_t len)
{
    size_t o = 0;
    out[o++] = '\'';
    for (const char *p = pw; *p && o + 4 < len; p++) {
        if (*p == '\'' || *p == '\\')
            out[o++] = '\\';
        out[o++] = *p;
    }
    out[o++] = '\'';
    out[o] = 0;
}

static void conninfo_unquoted(const char *pw, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = pw; *p && o + 3 < len; p++) {
        if (*p == '\'' || *p == '\\' || *p == ' ' || *p == '\t' || *p == '\n')
            out[o++] = '\\';
        out[o++] = *p;
    }
    out[o] = 0;
}

/* ---- the checks ----------------------------------------------------------------- */

static char where[512]; /* what is being checked, for failure messages */

static void fail_with(const char *what, const char *text)
{
    fprintf(stderr, "LEAK or wrong output (%s) in case: %s\n--- output ---\n%s\n--------------\n", what, where,
            text);
    fail();
}

/* A visible sign of the password: the markers of the longer ones, and for
 * a one-byte password the contexts it would be shown in (after the user's
 * ':', before the host's '@', quoted as libpq quotes). */
static void assert_no_secret_in(const char *text, const char *pw, const char *encoded, bool json)
{
    if (strstr(text, M1) || strstr(text, M2) || strstr(text, M1_PCT) || strstr(text, M2_PCT))
        fail_with("a marker of the password is visible", text);
    if (strlen(pw) >= strlen(M1 M2) && (strstr(text, pw) || strstr(text, encoded)))
        fail_with("the password is visible", text);
    if (strchr(pw, '*'))
        return; /* the mask is made of '*': the markers above are the check */
    char ctx[64];
    const char *forms[] = {pw, encoded};
    for (size_t i = 0; i < 2; i++) {
        snprintf(ctx, sizeof ctx, "u:%s", forms[i]);
        if (strstr(text, ctx))
            fail_with("the password follows the user name", text);
        snprintf(ctx, sizeof ctx, ":%s@", forms[i]);
        if (strstr(text, ctx))
            fail_with("the password is between ':' and '@'", text);
        snprintf(ctx, sizeof ctx, "\"%s\"", forms[i]);
        /* JSON has "," and ":"; the messages' own words quote "=", "]", ":" and "/" */
        bool words = strlen(forms[i]) == 1 && strchr("\"=]:/", forms[i][0]);
        if (!json && !words && strstr(text, ctx))
            fail_with("the password is quoted", text);
        snprintf(ctx, sizeof ctx, "password=%s", forms[i]);
        if (strstr(text, ctx))
            fail_with("the password follows password=", text);
    }
}

static void assert_no_secret(const char *text, const char *pw, const char *encoded)
{
    assert_no_secret_in(text, pw, encoded, false);
}

static void expect_redact(const char *in, const char *want, const char *pw, const char *encoded)
{
    char out[2048];
    gp_redact(in, out, sizeof out);
    assert_no_secret(out, pw, encoded);
    if (strcmp(out, want) != 0) {
        fprintf(stderr, "input: %s\nwanted: %s\n", in, want);
        fail_with("not the expected redaction", out);
    }
}

static const char *const url_schemes[] = {"postgresql", "postgres", "redis", "rediss"};
#define NSCHEMES (sizeof url_schemes / sizeof *url_schemes)

static bool is_redis(const char *scheme) { return strncmp(scheme, "redis", 5) == 0; }

/* gp_redact, every secret in every position and form. */
static void test_redact_every_byte(void **state)
{
    (void)state;
    init_bytes();
    char pw[32], enc[128], in[1024], want[1024], q[256];
    for (size_t b = 0; b < nbytes; b++)
        for (int pos = 0; pos < NPOS; pos++)
            for (int e = 0; e < NENC; e++) {
                make_password(pw, sizeof pw, bytes[b], pos);
                encode(pw, e, enc, sizeof enc);
                for (size_t s = 0; s < NSCHEMES; s++) {
                    const char *sc = url_schemes[s];
                    const char *rest = is_redis(sc) ? "cache.example:6379/1" : "db.example:5432/app?sslmode=require";
                    snprintf(where, sizeof where, "gp_redact %s://, byte 0x%02x, %s, %s", sc,
                             (unsigned char)bytes[b][0], pos_name[pos], enc_name[e]);
                    /* alone, with a user and without one */
                    snprintf(in, sizeof in, "%s://u:%s@%s", sc, enc, rest);
                    snprintf(want, sizeof want, "%s://u:********@%s", sc, rest);
                    expect_redact(in, want, pw, enc);
                    snprintf(in, sizeof in, "%s://:%s@%s", sc, enc, rest);
                    snprintf(want, sizeof want, "%s://:********@%s", sc, rest);
                    expect_redact(in, want, pw, enc);
                    /* inside a longer message, quoted */
                    snprintf(in, sizeof in, "could not connect to \"%s://u:%s@%s\": timeout expired\n(retrying)",
                             sc, enc, rest);
                    snprintf(want, sizeof want,
                             "could not connect to \"%s://u:********@%s\": timeout expired\n(retrying)", sc, rest);
                    expect_redact(in, want, pw, enc);
                    /* as libpq quotes a whole URL it cannot parse */
                    snprintf(in, sizeof in,
                             "end of string reached when looking for matching \"]\" in IPv6 host address in "
                             "URI: \"%s://u:%s@[::1/app\"", sc, enc);
                    snprintf(want, sizeof want,
                             "end of string reached when looking for matching \"]\" in IPv6 host address in "
                             "URI: \"%s://u:********@[::1/app\"", sc);
                    expect_redact(in, want, pw, enc);
                }
                /* URL query parameters (libpq decodes keys and values) */
                static const char *const keys[] = {"password", "sslpassword", "p%61ssword", "PASSWORD"};
                for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
                    snprintf(where, sizeof where, "gp_redact ?%s=, byte 0x%02x, %s, %s", keys[k],
                             (unsigned char)bytes[b][0], pos_name[pos], enc_name[e]);
                    snprintf(in, sizeof in, "postgresql://db.example:5432/app?sslmode=require&%s=%s&connect_timeout=10",
                             keys[k], enc);
                    if (e == ENC_RAW && strchr(pw, '@')) /* then the port's ':' may start a password */
                        snprintf(want, sizeof want, "postgresql://db.example:********&connect_timeout=10");
                    else
                        snprintf(want, sizeof want,
                                 "postgresql://db.example:5432/app?sslmode=require&%s=********&connect_timeout=10",
                                 keys[k]);
                    expect_redact(in, want, pw, enc);
                    snprintf(in, sizeof in, "postgresql://db.example/app?%s=%s", keys[k], enc);
                    snprintf(want, sizeof want, "postgresql://db.example/app?%s=********", keys[k]);
                    expect_redact(in, want, pw, enc);
                }
                /* conninfo strings, quoted and unquoted, alone and in a message */
                if (e == ENC_RAW) {
                    const char *forms[2];
                    char quoted[128], unquoted[128];
                    conninfo_quoted(pw, quoted, sizeof quoted);
                    conninfo_unquoted(pw, unquoted, sizeof unquoted);
                    forms[0] = quoted;
                    forms[1] = unquoted;
                    for (int f = 0; f < 2; f++) {
                        snprintf(where, sizeof where, "gp_redact conninfo %s, byte 0x%02x, %s",
                                 f ? "unquoted" : "quoted", (unsigned char)bytes[b][0], pos_name[pos]);
                        snprintf(in, sizeof in,
                                 "host=db.example port=5432 dbname=app user=u password=%s connect_timeout=10",
                                 forms[f]);
                        expect_redact(in,
                                      "host=db.example port=5432 dbname=app user=u password=******** "
                                      "connect_timeout=10",
                                      pw, forms[f]);
                        snprintf(in, sizeof in, "password = %s", forms[f]);
                        expect_redact(in, "password =********", pw, forms[f]);
                        snprintf(in, sizeof in, "sslpassword=%s host=db.example", forms[f]);
                        expect_redact(in, "sslpassword=******** host=db.example", pw, forms[f]);
                        snprintf(q, sizeof q, "connecting with (host=db.example password=%s dbname=app) failed",
                                 forms[f]);
                        expect_redact(q, "connecting with (host=db.example password=******** dbname=app) failed", pw,
                                      forms[f]);
                    }
                }
            }
}

/* The fixed cases: what is kept, and the rule's corners. */
static void test_redact_rule(void **state)
{
    (void)state;
    char out[512];
    /* The last '@' ends the user info, whatever a parser makes of the rest. */
    assert_string_equal(gp_redact("postgresql://u:p@ss/w?o#rd@h:5432/db", out, sizeof out),
                        "postgresql://u:********@h:5432/db");
    /* Everything after the user info is kept: several hosts, IPv6, options. */
    assert_string_equal(gp_redact("postgresql://u:pw@h1:5432,h2:5433/db?target_session_attrs=any", out, sizeof out),
                        "postgresql://u:********@h1:5432,h2:5433/db?target_session_attrs=any");
    assert_string_equal(gp_redact("redis://u:pw@[::1]:6379/0", out, sizeof out), "redis://u:********@[::1]:6379/0");
    /* No password: nothing to mask. */
    assert_string_equal(gp_redact("postgresql://u@h:5432/db", out, sizeof out), "postgresql://u@h:5432/db");
    assert_string_equal(gp_redact("postgresql://h:5432/db", out, sizeof out), "postgresql://h:5432/db");
    assert_string_equal(gp_redact("postgresql://u:@h/db", out, sizeof out), "postgresql://u:@h/db");
    /* A user name with a raw '@' is shown; the password after it is not. */
    assert_string_equal(gp_redact("postgresql://me@corp:pw@h/db", out, sizeof out),
                        "postgresql://me@corp:********@h/db");
    /* Two URLs in one message: both passwords go (the first mask runs to
     * the last '@': when in doubt, more is masked). */
    gp_redact("postgresql://u:one@h/db then redis://:two@r:1/0", out, sizeof out);
    assert_null(strstr(out, "one"));
    assert_null(strstr(out, "two"));
    assert_non_null(strstr(out, "@r:1/0"));
    /* A URL with a password= option and user info. */
    gp_redact("postgresql://u:one@h/db?password=two&sslmode=require", out, sizeof out);
    assert_string_equal(out, "postgresql://u:********@h/db?password=********&sslmode=require");
    /* Cut output never shows a password either. */
    char small[20];
    gp_redact("postgresql://u:secretpassword@h/db", small, sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_null(strstr(small, "sec"));
    /* Words that only end in "password" are not keywords. */
    assert_string_equal(gp_redact("mypassword=1 old_password=2", out, sizeof out), "mypassword=1 old_password=2");
    /* An unterminated quoted value masks to the end. */
    assert_string_equal(gp_redact("host=h password='abc def", out, sizeof out), "host=h password=********");
    /* NULL and empty. */
    assert_string_equal(gp_redact(NULL, out, sizeof out), "");
    assert_string_equal(gp_redact("", out, sizeof out), "");
}

/* gp__log formats in full before it redacts: a long message cut before the
 * URL's '@' would otherwise show the start of the password. */
static void test_log_long_message(void **state)
{
    (void)state;
    char pad[1100];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = 0;
    gp_test_capture_logs(GP_LOG_DEBUG);
    for (size_t cut = 990; cut < 1030; cut++) {
        gp_test_clear_logs();
        gp__log(GP_LOG_WARN, "test", "%.*s postgresql://u:" M1 "longpassword" M2 "@h/db", (int)(cut - 20), pad);
        assert_false(gp_test_logs_contain(M1));
        assert_false(gp_test_logs_contain("longpass"));
    }
    char msg[64];
    gp__redactf(msg, sizeof msg, "%s and postgresql://u:%s@h/db", pad, "s3cr3t");
    assert_null(strstr(msg, "s3cr"));
    gp_log_set_handler(NULL, NULL, GP_LOG_WARN);
}

/* ---- the configuration's own texts --------------------------------------------- */

typedef struct {
    const char *kv[16];
} env_t;

static const char *env_lookup(void *ud, const char *name)
{
    const env_t *e = ud;
    for (size_t i = 0; e->kv[i]; i += 2)
        if (strcmp(e->kv[i], name) == 0)
            return e->kv[i + 1];
    return NULL;
}

/* The environments each secret is tried in. Values are built per case. */
enum { RUN_URLS, RUN_CONNINFO, RUN_QUERY, RUN_REDISS, NRUNS };
static const char *const run_name[NRUNS] = {"URLs", "conninfo", "query option", "rediss"};

typedef struct {
    char db_url[256], mig_url[256], redis_url[256];
    env_t env;
    /* expectations for a valid configuration */
    const char *want_db_line, *want_mig_line, *want_redis_line, *want_pg_effective, *want_redis_effective;
    bool must_be_valid; /* false: either valid or rejected, never leaking */
} run_case_t;

/* Bytes every reading accepts raw in a URL's user info (RFC 3986
 * unreserved and sub-delims, ':'). */
static bool userinfo_safe(const char *b)
{
    return b[1] == 0 && strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:", b[0]);
}

static void build_case(run_case_t *rc, int run, const char *pw, const char *enc, const char *b, int e)
{
    memset(rc, 0, sizeof *rc);
    char quoted[128], unquoted[128];
    conninfo_quoted(pw, quoted, sizeof quoted);
    conninfo_unquoted(pw, unquoted, sizeof unquoted);
    size_t n = 0;
#define SET(k, v) do { rc->env.kv[n++] = (k); rc->env.kv[n++] = (v); } while (0)
    switch (run) {
    case RUN_URLS:
        snprintf(rc->db_url, sizeof rc->db_url, "postgresql://u:%s@db.example:5432/app", enc);
        snprintf(rc->mig_url, sizeof rc->mig_url, "postgres://owner:%s@db.example:5432/app?sslmode=prefer", enc);
        snprintf(rc->redis_url, sizeof rc->redis_url, "redis://u:%s@cache.example:6379/1", enc);
        SET("DATABASE_URL", rc->db_url);
        SET("DATABASE_MIGRATION_URL", rc->mig_url);
        SET("REDIS_URL", rc->redis_url);
        SET("DATABASE_PASSWORD", pw); /* the same password: no conflict */
        SET("REDIS_PASSWORD", pw);
        rc->want_db_line = "postgresql://u:********@db.example:5432/app";
        rc->want_mig_line = "postgres://owner:********@db.example:5432/app?sslmode=prefer";
        rc->want_redis_line = "redis://u:********@cache.example:6379/1";
        rc->want_pg_effective = "postgresql://u:********@db.example:5432/app";
        rc->want_redis_effective = "redis://u:********@cache.example:6379/1";
        rc->must_be_valid = e == ENC_PCT || userinfo_safe(b);
        break;
    case RUN_CONNINFO:
        snprintf(rc->db_url, sizeof rc->db_url,
                 "host=db.example port=5432 dbname=app user=u password=%s connect_timeout=10", quoted);
        snprintf(rc->mig_url, sizeof rc->mig_url, "host=db.example dbname=app user=owner password=%s", unquoted);
        snprintf(rc->redis_url, sizeof rc->redis_url, "redis://:%s@cache.example:6379/1", enc);
        SET("DATABASE_URL", rc->db_url);
        SET("DATABASE_MIGRATION_URL", rc->mig_url);
        SET("REDIS_URL", rc->redis_url);
        rc->want_db_line = "host=db.example port=5432 dbname=app user=u password=******** connect_timeout=10";
        rc->want_mig_line = "host=db.example dbname=app user=owner password=********";
        rc->want_redis_line = "redis://:********@cache.example:6379/1";
        rc->want_pg_effective = "postgresql://u:********@db.example:5432/app";
        rc->want_redis_effective = "redis://:********@cache.example:6379/1";
        rc->must_be_valid = e == ENC_PCT || userinfo_safe(b);
        break;
    case RUN_QUERY: {
        char pct[128];
        pct_all(pw, pct, sizeof pct);
        /* libpq decodes query values; a raw '&' or '=' would split them. */
        snprintf(rc->db_url, sizeof rc->db_url, "postgresql://db.example:5432/app?user=u&password=%s&sslmode=prefer",
                 e == ENC_PCT ? pct : enc);
        snprintf(rc->mig_url, sizeof rc->mig_url, "postgres://:%s@db.example/app", enc);
        SET("DATABASE_URL", rc->db_url);
        SET("DATABASE_MIGRATION_URL", rc->mig_url);
        SET("DATABASE_PASSWORD", pw);
        rc->want_db_line = "postgresql://db.example:5432/app?user=u&password=********&sslmode=prefer";
        rc->want_mig_line = "postgres://:********@db.example/app";
        rc->want_pg_effective = "postgresql://u:********@db.example:5432/app";
        if (e == ENC_RAW && strchr(pw, '@')) {
            /* libpq reads it, but by another reading the user info runs from
             * the port's ':' to that '@': all of it is masked, the display
             * too. */
            rc->want_db_line = "postgresql://db.example:********&sslmode=prefer";
            rc->want_pg_effective = rc->want_db_line;
        }
        rc->want_redis_effective = "redis://127.0.0.1:6379/0";
        rc->must_be_valid = e == ENC_PCT;
        break;
    }
    default: /* TLS: rediss:// is masked like redis:// */
        snprintf(rc->db_url, sizeof rc->db_url, "postgresql://u:%s@db.example:5432/app", enc);
        snprintf(rc->mig_url, sizeof rc->mig_url, "postgres://owner:%s@db.example:5432/app?sslmode=prefer", enc);
        snprintf(rc->redis_url, sizeof rc->redis_url, "rediss://u:%s@cache.example:6380/0", enc);
        SET("DATABASE_URL", rc->db_url);
        SET("DATABASE_MIGRATION_URL", rc->mig_url);
        SET("REDIS_URL", rc->redis_url);
        rc->want_db_line = "postgresql://u:********@db.example:5432/app";
        rc->want_mig_line = "postgres://owner:********@db.example:5432/app?sslmode=prefer";
        rc->want_redis_line = "rediss://u:********@cache.example:6380/0";
        rc->want_pg_effective = "postgresql://u:********@db.example:5432/app";
        rc->want_redis_effective = "rediss://u:********@cache.example:6380/0";
        rc->must_be_valid = e == ENC_PCT || userinfo_safe(b);
        break;
    }
#undef SET
    rc->env.kv[n] = NULL;
}

static bool has_line(const char *text, const char *name, const char *value)
{
    char line[600];
    snprintf(line, sizeof line, "%-27s %s\n", name, value);
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p += n)
        if (p == text || p[-1] == '\n')
            return true;
    return false;
}

static bool has_json(const char *text, const char *name, const char *value)
{
    char frag[600];
    snprintf(frag, sizeof frag, "\"%s\":\"%s\"", name, value);
    return strstr(text, frag) != NULL;
}

/* Check what `config check` printed (or the same texts made in process). */
static void check_outputs(const run_case_t *rc, int run, bool valid, bool json, const char *out, const char *err,
                          const char *pw, const char *enc)
{
    assert_no_secret_in(out, pw, enc, json);
    assert_no_secret(err, pw, enc);
    if (!valid) {
        if (rc->must_be_valid)
            fail_with("a valid configuration is rejected", err);
        return;
    }
    bool (*has)(const char *, const char *, const char *) = json ? has_json : has_line;
    if (!has(out, "DATABASE_URL", rc->want_db_line))
        fail_with("DATABASE_URL is not shown as expected", out);
    if (!has(out, "DATABASE_MIGRATION_URL", rc->want_mig_line))
        fail_with("DATABASE_MIGRATION_URL is not shown as expected", out);
    if (rc->want_redis_line && !has(out, "REDIS_URL", rc->want_redis_line))
        fail_with("REDIS_URL is not shown as expected", out);
    if (json) {
        char frag[600];
        snprintf(frag, sizeof frag, "\"effective\":{\"postgres\":\"%s\",\"redis\":\"%s\"}", rc->want_pg_effective,
                 rc->want_redis_effective);
        if (!strstr(out, frag))
            fail_with("the effective targets are not shown as expected", out);
    } else if (!has_line(out, "effective PostgreSQL", rc->want_pg_effective) ||
               !has_line(out, "effective Redis", rc->want_redis_effective)) {
        fail_with("the effective targets are not shown as expected", out);
    }
}

/* In process: the same texts the CLI prints, for every case. */
static void test_config_texts_every_byte(void **state)
{
    (void)state;
    init_bytes();
    char pw[32], enc[128];
    for (size_t b = 0; b < nbytes; b++)
        for (int pos = 0; pos < NPOS; pos++)
            for (int e = 0; e < NENC; e++)
                for (int run = 0; run < NRUNS; run++) {
                    make_password(pw, sizeof pw, bytes[b], pos);
                    encode(pw, e, enc, sizeof enc);
                    run_case_t rc;
                    build_case(&rc, run, pw, enc, bytes[b], e);
                    snprintf(where, sizeof where, "config texts, %s, byte 0x%02x, %s, %s", run_name[run],
                             (unsigned char)bytes[b][0], pos_name[pos], enc_name[e]);
                    gp_config_t cfg;
                    gp_config_init(&cfg);
                    char err[GP_ERRBUF_SIZE] = "";
                    gp_status_t st = gp_config_from_lookup(&cfg, env_lookup, &rc.env, err, sizeof err);
                    char *text = NULL, *js = NULL;
                    if (st == GP_OK) {
                        assert_int_equal(gp_config_describe(&cfg, &text), GP_OK);
                        assert_int_equal(gp_config_describe_json(&cfg, &js), GP_OK);
                    } else {
                        assert_int_equal(st, GP_ERR_CONFIG);
                    }
                    /* The displays, and the parameters' error texts, whatever the validity. */
                    char d[512], pe[GP_ERRBUF_SIZE] = "";
                    gp_config_db_display(&cfg.db, d, sizeof d);
                    assert_no_secret(d, pw, enc);
                    gp_config_redis_display(&cfg.redis, d, sizeof d);
                    assert_no_secret(d, pw, enc);
                    gp__pg_params_t p;
                    gp__pg_params(&cfg.db, false, &p, pe, sizeof pe);
                    gp__pg_params(&cfg.db, true, &p, pe, sizeof pe);
                    assert_no_secret(pe, pw, enc);
                    check_outputs(&rc, run, st == GP_OK, false, text ? text : "", err, pw, enc);
                    check_outputs(&rc, run, st == GP_OK, true, js ? js : "", err, pw, enc);
                    free(text);
                    free(js);
                    gp_config_release(&cfg);
                }
}

/* ---- the CLI ---------------------------------------------------------------------- */

static char cli_path[1024];

/* Run `growplate config check [--json]` with exactly this environment (plus
 * the sanitizers' options); capture both streams. Returns the exit code. */
static int run_cli(const env_t *env, bool json, char *out, size_t outlen, char *err, size_t errlen)
{
    int po[2], pe[2];
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    char *envp[24];
    char kv[16][300];
    size_t n = 0;
    for (size_t i = 0; env->kv[i]; i += 2) {
        snprintf(kv[n], sizeof kv[n], "%s=%s", env->kv[i], env->kv[i + 1]);
        envp[n] = kv[n];
        n++;
    }
    static const char *const pass[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS",
                                       "LD_LIBRARY_PATH"};
    static char passbuf[5][512];
    for (size_t i = 0; i < sizeof pass / sizeof *pass; i++) {
        const char *v = getenv(pass[i]);
        if (v && n < 23) {
            snprintf(passbuf[i], sizeof passbuf[i], "%s=%s", pass[i], v);
            envp[n++] = passbuf[i];
        }
    }
    envp[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(po[1], STDOUT_FILENO);
        dup2(pe[1], STDERR_FILENO);
        close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
        char *argv[] = {cli_path, "config", "check", json ? "--json" : NULL, NULL};
        execve(cli_path, argv, envp);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t no = 0, ne = 0;
    struct pollfd fds[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, 10000) <= 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char *buf = i ? err : out;
            size_t *used = i ? &ne : &no, cap = i ? errlen : outlen;
            char tmp[4096];
            ssize_t r = read(fds[i].fd, tmp, sizeof tmp);
            if (r <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            size_t k = (size_t)r < cap - 1 - *used ? (size_t)r : cap - 1 - *used;
            memcpy(buf + *used, tmp, k);
            *used += k;
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    out[no] = 0;
    err[ne] = 0;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void test_cli_every_byte(void **state)
{
    (void)state;
    init_bytes();
    const char *bd = getenv("GP_BUILD_DIR");
    snprintf(cli_path, sizeof cli_path, "%s/growplate", bd ? bd : ".");
    assert_int_equal(access(cli_path, X_OK), 0);
    /* Every byte, form and environment goes through the CLI. Positions: all
     * four for the URLs in a plain build; otherwise one per case, rotating
     * so that each environment sees each position (the in-process test
     * above makes the same texts for every combination; a child costs a few
     * milliseconds, many more under the sanitizers). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    const bool all_positions = false;
#else
    const bool all_positions = true;
#endif
    char pw[32], enc[128], out[16384], err[8192];
    size_t runs = 0;
    for (size_t b = 0; b < nbytes; b++)
        for (int e = 0; e < NENC; e++)
            for (int run = 0; run < NRUNS; run++)
                for (int pos = 0; pos < NPOS; pos++) {
                    if (!(all_positions && run == RUN_URLS) && pos != (int)((b + (size_t)run + (size_t)e) % NPOS))
                        continue;
                    make_password(pw, sizeof pw, bytes[b], pos);
                    encode(pw, e, enc, sizeof enc);
                    run_case_t rc;
                    build_case(&rc, run, pw, enc, bytes[b], e);
                    for (int json = 0; json < (run == RUN_REDISS ? 1 : 2); json++) {
                        snprintf(where, sizeof where, "growplate config check%s, %s, byte 0x%02x, %s, %s",
                                 json ? " --json" : "", run_name[run], (unsigned char)bytes[b][0], pos_name[pos],
                                 enc_name[e]);
                        int code = run_cli(&rc.env, json, out, sizeof out, err, sizeof err);
                        if (code != 0 && code != 3) /* 3: invalid configuration */
                            fail_with("unexpected exit code", err);
                        if (code == 0 && *err)
                            fail_with("a valid configuration wrote to stderr", err);
                        if (code == 3 && !json && *out)
                            fail_with("an invalid configuration wrote to stdout", out);
                        if (code == 3 && json && strncmp(out, "{\"ok\":false,", 12) != 0)
                            fail_with("an invalid configuration with --json is not a JSON error object", out);
                        check_outputs(&rc, run, code == 0, json, out, err, pw, enc);
                        runs++;
                    }
                }
    fprintf(stderr, "# %zu runs of growplate config check\n", runs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_rule),
        cmocka_unit_test(test_redact_every_byte),
        cmocka_unit_test(test_log_long_message),
        cmocka_unit_test(test_config_texts_every_byte),
        cmocka_unit_test(test_cli_every_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
