/* cli_json.c — how the subcommands report failures (stderr, and the one JSON
 * error object of --json) and the JSON string writer they share. */
#include <ctype.h>
#include <stdarg.h>
#include <string.h>

#include "cli.h"

/* ---- JSON strings -------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at p (at most n bytes), 0 if none. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if (len == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))) /* overlong, surrogates */
        return 0;
    if (len == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))) /* overlong, > U+10FFFF */
        return 0;
    return len;
}

void cli_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    while (n) {
        size_t k = utf8_seq(p, n);
        if (k == 0) {
            fputs("\\ufffd", out);
            k = 1;
        } else if (*p == '"' || *p == '\\') {
            fprintf(out, "\\%c", *p);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(out, "\\u%04x", *p);
        } else {
            fwrite(p, 1, k, out);
        }
        p += k;
        n -= k;
    }
    fputc('"', out);
}

/* A JSON string, or null for an empty one. */
static void json_string_or_null(FILE *out, const char *s)
{
    if (s && *s)
        cli_json_string(out, s);
    else
        fputs("null", out);
}

/* ---- the failure kept for --json ------------------------------------------------ */

static struct {
    const char *topic;   /* the subcommand: "config"; "" before one is known */
    const char *command; /* as named in messages: "config check" */
    bool json;           /* --json was given */
    bool printed;        /* a JSON document about the failure is on stdout */
    bool have;           /* a failure is kept */
    int code;            /* its exit code */
    gp_status_t status;
    const char *klass;
    bool retriable;
    bool problems;       /* message: one configuration problem per line */
    char sqlstate[6];
    char message[GP_ERRBUF_SIZE];
    char detail[512];
    char hint[512];
} last = {.topic = "", .command = ""};

void cli_begin(const char *topic, bool json)
{
    last.topic = last.command = topic ? topic : "";
    last.json = json;
}

void cli_set_command(const char *command) { last.command = command; }

void cli_error_reset(void)
{
    const char *topic = last.topic, *command = last.command;
    bool json = last.json;
    memset(&last, 0, sizeof last);
    last.topic = topic;
    last.command = command;
    last.json = json;
}

/* The symbolic name of every status, for scripts ("GP_ERR_CONFIG"). */
static const char *status_name(gp_status_t st)
{
    static const char *const names[GP_STATUS_COUNT_] = {
        [GP_OK] = "GP_OK",
        [GP_ERR_NOMEM] = "GP_ERR_NOMEM",
        [GP_ERR_INVALID] = "GP_ERR_INVALID",
        [GP_ERR_CONFIG] = "GP_ERR_CONFIG",
        [GP_ERR_CONNECT] = "GP_ERR_CONNECT",
        [GP_ERR_AUTH] = "GP_ERR_AUTH",
        [GP_ERR_TIMEOUT] = "GP_ERR_TIMEOUT",
        [GP_ERR_CLOSED] = "GP_ERR_CLOSED",
        [GP_ERR_SERVER] = "GP_ERR_SERVER",
        [GP_ERR_TYPE] = "GP_ERR_TYPE",
        [GP_ERR_NOT_FOUND] = "GP_ERR_NOT_FOUND",
        [GP_ERR_RANGE] = "GP_ERR_RANGE",
        [GP_ERR_TENANT] = "GP_ERR_TENANT",
        [GP_ERR_KEY] = "GP_ERR_KEY",
        [GP_ERR_UNAVAILABLE] = "GP_ERR_UNAVAILABLE",
        [GP_ERR_COMMIT_UNKNOWN] = "GP_ERR_COMMIT_UNKNOWN",
        [GP_ERR_PROTOCOL] = "GP_ERR_PROTOCOL",
        [GP_ERR_CANCELED] = "GP_ERR_CANCELED",
        [GP_ERR_NULL] = "GP_ERR_NULL",
        [GP_ERR_MISS] = "GP_ERR_MISS",
        [GP_ERR_MIGRATION] = "GP_ERR_MIGRATION",
        [GP_ERR_IO] = "GP_ERR_IO",
        [GP_ERR_BUSY] = "GP_ERR_BUSY",
    };
    if ((int)st < 0 || st >= GP_STATUS_COUNT_ || !names[st])
        return "GP_ERR_UNKNOWN";
    return names[st];
}

/* What kind of failure, for scripts: usage and config (nothing attempted),
 * out_of_memory, connection, auth, timeout, migration, io, or for anything
 * else the server reported the library's class (gp_error_class_name). */
static const char *class_for(gp_status_t st, gp_error_class_t k)
{
    switch (st) {
    case GP_ERR_CONFIG: return "config";
    case GP_ERR_NOMEM: return "out_of_memory";
    case GP_ERR_CONNECT:
    case GP_ERR_CLOSED:
    case GP_ERR_UNAVAILABLE: return "connection";
    case GP_ERR_AUTH: return "auth";
    case GP_ERR_TIMEOUT:
    case GP_ERR_CANCELED: return "timeout";
    case GP_ERR_MIGRATION: return "migration";
    case GP_ERR_IO: return "io";
    default: return k != GP_ECLASS_NONE && k != GP_ECLASS_CLIENT ? gp_error_class_name(k) : "internal";
    }
}

int cli_failure_code(void) { return last.have ? last.code : CLI_FAILURE; }

int cli_exit_for(gp_status_t st) { return st == GP_ERR_CONFIG ? CLI_INVALID : CLI_FAILURE; }

/* Print one line of a message on stderr, masked. */
static void say(const char *label, const char *text)
{
    char clean[GP_ERRBUF_SIZE];
    gp_redact(text, clean, sizeof clean);
    fprintf(stderr, "growplate%s%s: %s%s\n", *last.command ? " " : "", last.command, label, clean);
}

/* Keep the first failure (masked) for the JSON object. */
static void keep(int code, gp_status_t st, const char *klass, bool retriable, const char *message,
                 const char *sqlstate, const char *detail, const char *hint)
{
    if (last.have)
        return;
    last.have = true;
    last.code = code;
    last.status = st;
    last.klass = klass ? klass : class_for(st, GP_ECLASS_NONE);
    last.retriable = retriable;
    gp_redact(message ? message : "", last.message, sizeof last.message);
    snprintf(last.sqlstate, sizeof last.sqlstate, "%s", sqlstate ? sqlstate : "");
    gp_redact(detail ? detail : "", last.detail, sizeof last.detail);
    gp_redact(hint ? hint : "", last.hint, sizeof last.hint);
}

int cli_usage(const char *fmt, ...)
{
    char msg[1024], full[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "%s; see 'growplate %s%s--help'", msg, last.topic, *last.topic ? " " : "");
    say("", full);
    keep(CLI_INVALID, GP_ERR_INVALID, "usage", false, full, NULL, NULL, NULL);
    return CLI_INVALID;
}

int cli_fail(int code, gp_status_t st, const char *fmt, ...)
{
    char msg[GP_ERRBUF_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    say("", msg);
    keep(code, st, NULL, false, msg, NULL, NULL, NULL);
    return code;
}

int cli_fail_error(int code, const gp_error_t *e, const char *fmt, ...)
{
    char prefix[512] = "", msg[GP_ERRBUF_SIZE], line[GP_ERRBUF_SIZE];
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
    }
    snprintf(msg, sizeof msg, "%s%s%s", prefix, *prefix && *e->message ? ": " : "",
             *e->message ? e->message : *prefix ? "" : gp_strerror(e->status));
    if (*e->sqlstate)
        snprintf(line, sizeof line, "%s (SQLSTATE %s)", msg, e->sqlstate);
    else
        snprintf(line, sizeof line, "%s", msg);
    say("", line);
    if (*e->detail)
        say("detail: ", e->detail);
    if (*e->hint)
        say("hint: ", e->hint);
    keep(code, e->status, class_for(e->status, e->klass), e->retriable != 0, msg, e->sqlstate, e->detail, e->hint);
    return code;
}

int cli_fail_config(gp_status_t st, const char *problems)
{
    if (st == GP_ERR_NOMEM)
        return cli_fail(CLI_FAILURE, st, "out of memory reading the configuration");
    char text[GP_ERRBUF_SIZE];
    snprintf(text, sizeof text, "%s", problems ? problems : "");
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        text[--n] = 0;
    if (!*text)
        snprintf(text, sizeof text, "%s", gp_strerror(st));
    for (char *line = text, *next; *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next = 0;
        say("", line);
        if (!next)
            break;
        *next++ = '\n';
    }
    /* The library gives no development hints; the CLI does. */
    const char *hint = strstr(text, "DATABASE_URL: is not set")
                           ? "in a development checkout: scripts/services start, then eval \"$(scripts/services env)\""
                           : NULL;
    if (hint)
        say("hint: ", hint);
    keep(cli_exit_for(st), st, NULL, false, text, NULL, NULL, hint);
    last.problems = last.status == GP_ERR_CONFIG;
    return cli_exit_for(st);
}

void cli_json_error_members(FILE *out, int code)
{
    if (!last.have) /* a failure without a message: say at least what it was */
        keep(code, code == CLI_INVALID ? GP_ERR_INVALID : GP_STATUS_COUNT_ /* "GP_ERR_UNKNOWN" */,
             code == CLI_INVALID ? "usage" : "internal", false, "failed; see the messages on stderr", NULL, NULL, NULL);
    fputs("\"command\":", out);
    json_string_or_null(out, last.command);
    fprintf(out, ",\"error\":{\"status\":\"%s\",\"class\":\"%s\",\"message\":", status_name(last.status), last.klass);
    cli_json_string(out, last.message);
    if (last.problems) {
        fputs(",\"problems\":[", out);
        char text[GP_ERRBUF_SIZE];
        snprintf(text, sizeof text, "%s", last.message);
        bool first = true;
        for (char *line = text, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = 0;
            if (!first)
                fputc(',', out);
            cli_json_string(out, line);
            first = false;
        }
        fputc(']', out);
    }
    fputs(",\"sqlstate\":", out);
    json_string_or_null(out, last.sqlstate);
    fputs(",\"detail\":", out);
    json_string_or_null(out, last.detail);
    fputs(",\"hint\":", out);
    json_string_or_null(out, last.hint);
    fprintf(out, ",\"retriable\":%s},\"exit\":%d", last.retriable ? "true" : "false", code);
    last.printed = true;
}

void cli_json_finish(int code)
{
    if (!last.json || code < CLI_FAILURE || last.printed)
        return;
    fputs("{\"ok\":false,", stdout);
    cli_json_error_members(stdout, code);
    fputs("}\n", stdout);
    fflush(stdout);
}

/* ---- quoting arguments ------------------------------------------------------------ */

const char *cli_shown(const char *arg, char *buf, size_t len)
{
    size_t hexrun = 0, longest = 0;
    for (const char *p = arg; *p; p++) {
        hexrun = isxdigit((unsigned char)*p) ? hexrun + 1 : 0;
        if (hexrun > longest)
            longest = hexrun;
    }
    if (longest >= 32) { /* a tenant key is 64 to 128 hex digits: never quote even part of one */
        snprintf(buf, len, "(not shown: it looks like a key)");
        return buf;
    }
    char red[512];
    gp_redact(arg, red, sizeof red);
    size_t o = 0;
    for (const char *p = red; *p && o + 4 < len && o < 80; p++)
        buf[o++] = isprint((unsigned char)*p) ? *p : '?';
    if (strlen(red) > o)
        buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
    buf[o] = 0;
    return buf;
}
