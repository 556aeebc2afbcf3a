/* json_codec.h — internal fast text <-> json_t conversion (never installed).
 *
 * The values stay jansson json_t; only the conversion is ours, built on
 * jansson's public API. Both directions have the same contract: the fast
 * path either produces exactly what jansson 2.14 would, or says "fall back"
 * and the caller asks jansson itself:
 *
 *   gp__json_encode  == json_dumpb(v, ..., JSON_COMPACT | JSON_ENCODE_ANY),
 *                       byte for byte
 *   gp__json_decode  == json_loadb(text, len, JSON_DECODE_ANY |
 *                       JSON_ALLOW_NUL, ...): never accepts what jansson
 *                       rejects, never builds a different value
 *
 * The gp__json_dump / gp__json_dumps / gp__json_load wrappers run the fast
 * path and fall back to jansson themselves: call those.
 *
 * Thread-safety: every function is reentrant (no shared state; the decoder
 * reads the calling thread's locale, as jansson's strtod does). */
#ifndef GROWPLATE_JSON_CODEC_H
#define GROWPLATE_JSON_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Containers nested deeper than this (on either side) are left to jansson:
 * the fast paths recurse, so this bounds their stack use, and it is far
 * below jansson's own JSON_PARSER_MAX_DEPTH (2048), so no input the fast
 * decoder accepts can hit jansson's limit. Cycles in a value to encode end
 * here too, and jansson then reports them. */
#define GP__JSON_MAX_DEPTH 128

typedef enum gp__json_rc {
    GP__JSON_OK = 0,
    GP__JSON_FALLBACK, /* fast path only: not handled here, ask jansson */
    GP__JSON_NOMEM,    /* an allocation failed; nothing is leaked */
    GP__JSON_INVALID,  /* wrappers only: jansson rejects it too */
} gp__json_rc_t;

/* An output buffer: starts on a caller-provided (stack) array and moves to
 * the heap when it must grow. data[0..len) is the output; not
 * NUL-terminated. gp__jbuf_free releases the heap copy, if any (accepts a
 * buffer that never grew, and may be called more than once). */
typedef struct gp__jbuf {
    char *data;
    size_t len, cap;
    bool heap;
} gp__jbuf_t;

void gp__jbuf_init(gp__jbuf_t *b, char *initial, size_t cap);
void gp__jbuf_free(gp__jbuf_t *b);

/* Fast path only. Appends the compact encoding of v to out. GP__JSON_OK,
 * GP__JSON_NOMEM, or GP__JSON_FALLBACK (out->len is then back where it
 * was): a string or key that is not valid UTF-8, nesting deeper than
 * GP__JSON_MAX_DEPTH (cycles included) — jansson decides. Reals are
 * formatted by jansson itself (json_dumpb of that node alone). */
gp__json_rc_t gp__json_encode(const json_t *v, gp__jbuf_t *out);

/* Fast path only. Parses text[0..len) (need not be NUL-terminated; never
 * read past len). GP__JSON_OK with *out (a new reference), GP__JSON_NOMEM
 * (everything built is freed), or GP__JSON_FALLBACK for any error and for
 * what it leaves to jansson (NUL in an object key, integers outside
 * json_int_t, reals in an unusual locale or over 63 characters, nesting
 * deeper than GP__JSON_MAX_DEPTH, jansson's leniencies) — *out is NULL
 * then. */
gp__json_rc_t gp__json_decode(const char *text, size_t len, json_t **out);

/* Encode with fallback: appends to out. GP__JSON_OK, GP__JSON_NOMEM, or
 * GP__JSON_INVALID when jansson cannot encode the value either (invalid
 * UTF-8, a cycle). */
gp__json_rc_t gp__json_dump(const json_t *v, gp__jbuf_t *out);

/* Like json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY): a malloc'd,
 * NUL-terminated encoding (the caller frees), *len its length when len is
 * not NULL; NULL when out of memory or not encodable. */
char *gp__json_dumps(const json_t *v, size_t *len);

/* Decode with fallback. GP__JSON_OK with *out; GP__JSON_INVALID when
 * json_loadb rejects it (its error in *err, which may be NULL);
 * GP__JSON_NOMEM when the fast path ran out of memory. */
gp__json_rc_t gp__json_load(const char *text, size_t len, json_t **out, json_error_t *err);

#endif
