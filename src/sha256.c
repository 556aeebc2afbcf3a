/* sha256.c — a small SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104),
 * written for growplate so the library needs no crypto dependency: for
 * migration checksums and for the tenant secrets (tenant_token.c). No
 * branch and no table index depends on the data, so the time it takes
 * depends only on the length. */
#include <stdint.h>
#include <string.h>

#include "internal.h"

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }

static void block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

void gp__sha256_init(gp__sha256_t *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof iv);
    c->len = 0;
    c->n = 0;
}

void gp__sha256_update(gp__sha256_t *c, const void *data, size_t len)
{
    const unsigned char *p = data;
    c->len += len;
    if (c->n) {
        size_t take = 64 - c->n < len ? 64 - c->n : len;
        memcpy(c->buf + c->n, p, take);
        c->n += take;
        p += take;
        len -= take;
        if (c->n < 64)
            return;
        block(c->h, c->buf);
        c->n = 0;
    }
    for (; len >= 64; len -= 64, p += 64)
        block(c->h, p);
    memcpy(c->buf, p, len);
    c->n = len;
}

void gp__sha256_final(gp__sha256_t *c, unsigned char out[32])
{
    /* The 0x80 marker, zeros, and the 64-bit big-endian bit length fill
     * one or two final blocks. */
    uint64_t bits = c->len * 8;
    unsigned char pad[72] = {0x80};
    size_t padlen = c->n < 56 ? 56 - c->n : 120 - c->n;
    for (int i = 0; i < 8; i++)
        pad[padlen + i] = (unsigned char)(bits >> (56 - 8 * i));
    gp__sha256_update(c, pad, padlen + 8);
    for (int i = 0; i < 32; i++)
        out[i] = (unsigned char)(c->h[i / 4] >> (24 - 8 * (i % 4)));
    gp__wipe(c, sizeof *c);
}

void gp__hex(const unsigned char *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

void gp__sha256_hex(const void *data, size_t len, char hex[65])
{
    gp__sha256_t c;
    unsigned char d[32];
    gp__sha256_init(&c);
    gp__sha256_update(&c, data, len);
    gp__sha256_final(&c, d);
    gp__hex(d, 32, hex);
}

void gp__hmac_pads(const unsigned char *key, size_t keylen, unsigned char ipad[64], unsigned char opad[64])
{
    unsigned char k0[64] = {0};
    if (keylen > 64) {
        gp__sha256_t c;
        gp__sha256_init(&c);
        gp__sha256_update(&c, key, keylen);
        gp__sha256_final(&c, k0);
    } else {
        memcpy(k0, key, keylen);
    }
    for (int i = 0; i < 64; i++) {
        ipad[i] = k0[i] ^ 0x36;
        opad[i] = k0[i] ^ 0x5c;
    }
    gp__wipe(k0, sizeof k0);
}

void gp__hmac_sha256(const unsigned char *key, size_t keylen, const void *msg, size_t len, unsigned char out[32])
{
    unsigned char ipad[64], opad[64], inner[32];
    gp__hmac_pads(key, keylen, ipad, opad);
    gp__sha256_t c;
    gp__sha256_init(&c);
    gp__sha256_update(&c, ipad, 64);
    gp__sha256_update(&c, msg, len);
    gp__sha256_final(&c, inner);
    gp__sha256_init(&c);
    gp__sha256_update(&c, opad, 64);
    gp__sha256_update(&c, inner, 32);
    gp__sha256_final(&c, out);
    gp__wipe(ipad, sizeof ipad);
    gp__wipe(opad, sizeof opad);
    gp__wipe(inner, sizeof inner);
}

void gp__wipe(void *p, size_t n) { explicit_bzero(p, n); /* glibc: never optimised away */ }
