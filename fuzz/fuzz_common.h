/* fuzz_common.h — what every fuzz target shares: reporting an oracle
 * failure (the message on stderr, then abort(), which libFuzzer records as a
 * crash with the input that caused it), and the "never writes to stdout"
 * check: fd 1 is a pipe that must stay empty. */
#ifndef GP_FUZZ_COMMON_H
#define GP_FUZZ_COMMON_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A string for a report: C-escaped, on one line, in quotes. */
static inline void fuzz_show(const char *label, const char *s, size_t n)
{
    fprintf(stderr, "  %s (%zu bytes): \"", label, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(stderr, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", stderr);
        else if (c >= 0x20 && c < 0x7f)
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fputs("\"\n", stderr);
}

static inline void fuzz_show_str(const char *label, const char *s)
{
    if (s)
        fuzz_show(label, s, strlen(s));
    else
        fprintf(stderr, "  %s: (null)\n", label);
}

__attribute__((format(printf, 1, 2), noreturn)) static inline void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("\n==== fuzz oracle failed: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    fflush(stderr);
    abort();
}

/* ---- stdout must stay empty --------------------------------------------------- */

static int fuzz_stdout_pipe = -1;

/* Make fd 1 a pipe whose other end we read (non-blocking). */
static inline void fuzz_guard_stdout(void)
{
    int p[2];
    if (pipe(p) != 0)
        return;
    fflush(stdout);
    if (dup2(p[1], STDOUT_FILENO) < 0) {
        close(p[0]);
        close(p[1]);
        return;
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    fuzz_stdout_pipe = p[0];
}

/* Fails when anything reached stdout since the last call. */
static inline void fuzz_check_stdout(void)
{
    if (fuzz_stdout_pipe < 0)
        return;
    fflush(stdout);
    char buf[256];
    ssize_t n = read(fuzz_stdout_pipe, buf, sizeof buf);
    if (n > 0) {
        fuzz_show("written to stdout", buf, (size_t)n);
        fuzz_fail("the library wrote to stdout");
    }
}

/* Whether [s, s+n) holds the bytes [w, w+wn). */
static inline bool fuzz_contains(const char *s, size_t n, const char *w, size_t wn)
{
    if (wn == 0)
        return true;
    if (!s || wn > n)
        return false;
    return memmem(s, n, w, wn) != NULL;
}

#endif
