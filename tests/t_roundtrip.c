/*
 * t_roundtrip.c - every operation against a real tinyd, at the sizes where
 * unit cutting can go wrong (0, 1, 64 KiB +-1, slot +-1, 100 MiB), for
 * several slot sizes; every corpus file; corrupt and truncated framed
 * streams and malformed raw streams must fail with -EBADMSG; hand-made raw
 * streams with copies across every possible unit boundary, a long literal
 * and a far copy exercise the library's raw stream splitting.
 * Usage: t_roundtrip DATA_DIR [SLOT_SIZE...]   (TINYD_DIR names the daemon)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "tap.h"
#include "tiny.h"
#include "util.h"

#define BIG (100u << 20)

static unsigned char *src;  /* BIG bytes of mixed data; inputs are its prefixes */
static unsigned char *out;  /* scratch outputs */
static unsigned char *back; /* decompressed */
static unsigned char *ref;  /* in-process snappy_compress of the current input */
static size_t out_cap;


/* One size, every op. */
static void check_size(tiny_conn *c, size_t slot, size_t n)
{
    const unsigned char *in = src;
    size_t ref_len = snappy_max_compressed_length(n);
    ssize_t r, z;

    snappy_compress((const char *)in, n, (char *)ref, &ref_len);

    r = tiny_compress(c, in, n, out, tiny_max_output(TINY_OP_COMPRESS, n));
    if (!ok(r == (ssize_t)ref_len && memcmp(out, ref, ref_len) == 0,
            "slot %zu: COMPRESS of %zu bytes is byte-identical to snappy_compress", slot, n))
        diag("got %zd (%s), snappy_compress gives %zu", r, r < 0 ? tiny_strerror((int)r) : "",
             ref_len);

    r = tiny_decompress(c, ref, ref_len, back, n);
    ok(r == (ssize_t)n && memcmp(back, in, n) == 0,
       "slot %zu: DECOMPRESS of %zu bytes gives the original (got %zd)", slot, n, r);

    z = tiny_frame_compress(c, in, n, out, tiny_max_output(TINY_OP_FRAME_COMPRESS, n));
    r = z < 0 ? z : ref_frame_decode(out, (size_t)z, back, n, 1);
    ok(r == (ssize_t)n && memcmp(back, in, n) == 0,
       "slot %zu: FRAME_COMPRESS of %zu bytes is a valid stream of the original (%zd, %zd)", slot,
       n, z, r);
    if (z >= 0) {
        memset(back, 0, n < 64 ? n : 64);
        r = tiny_frame_decompress(c, out, (size_t)z, back, n);
        ok(r == (ssize_t)n && memcmp(back, in, n) == 0,
           "slot %zu: FRAME_DECOMPRESS of %zu bytes gives the original (got %zd)", slot, n, r);
    }

    if (n <= TINY_CHUNK_MAX) {
        size_t whole = 0;
        z = tiny_run(c, TINY_OP_CHUNK_COMPRESS, 0, in, n, out,
                     tiny_max_output(TINY_OP_CHUNK_COMPRESS, n));
        ok(z >= 8 && tiny_frame_scan(out, (size_t)z, &whole, NULL) == 1 && whole == (size_t)z &&
               (out[0] == 0 || out[0] == 1),
           "slot %zu: CHUNK_COMPRESS of %zu bytes is one data chunk (got %zd)", slot, n, z);
        if (z >= 0) {
            r = tiny_run(c, TINY_OP_CHUNK_DECOMPRESS, 0, out, (size_t)z, back, TINY_CHUNK_MAX);
            ok(r == (ssize_t)n && memcmp(back, in, n) == 0,
               "slot %zu: CHUNK_DECOMPRESS of %zu bytes gives the original (got %zd)", slot, n, r);
        }
    } else if (n < (4u << 20)) {
        z = tiny_run(c, TINY_OP_CHUNK_COMPRESS, 0, in, n, out, out_cap);
        is_int(z, -EINVAL, "slot %zu: CHUNK_COMPRESS of %zu bytes (> 64 KiB) is -EINVAL", slot, n);
    }
}

static void check_nospc(tiny_conn *c, size_t slot, size_t n)
{
    size_t ref_len = snappy_max_compressed_length(n);
    ssize_t r, z;

    snappy_compress((const char *)src, n, (char *)ref, &ref_len);
    r = tiny_compress(c, src, n, out, ref_len - 1);
    is_int(r, -ENOSPC, "slot %zu: COMPRESS of %zu bytes into %zu is -ENOSPC", slot, n, ref_len - 1);
    r = tiny_decompress(c, ref, ref_len, back, n - 1);
    is_int(r, -ENOSPC, "slot %zu: DECOMPRESS of %zu bytes into %zu is -ENOSPC", slot, n, n - 1);
    z = tiny_frame_compress(c, src, n, out, tiny_max_output(TINY_OP_FRAME_COMPRESS, n));
    if (z > 0) {
        r = tiny_frame_compress(c, src, n, out, (size_t)z - 1);
        is_int(r, -ENOSPC, "slot %zu: FRAME_COMPRESS of %zu bytes into %zd is -ENOSPC", slot, n,
               z - 1);
        r = tiny_frame_decompress(c, out, (size_t)z, back, n - 1);
        is_int(r, -ENOSPC, "slot %zu: FRAME_DECOMPRESS of %zu bytes into %zu is -ENOSPC", slot, n,
               n - 1);
    }
    r = tiny_run(c, 99, 0, src, 10, out, out_cap);
    is_int(r, -EINVAL, "slot %zu: unknown op 99 is -EINVAL", slot);
    r = tiny_run(c, TINY_OP_COMPRESS, 1u << 12, src, 10, out, out_cap);
    is_int(r, -EINVAL, "slot %zu: unknown flag is -EINVAL", slot);
}

static void check_corpus(tiny_conn *c, size_t slot, const char *dir)
{
    char path[4096];
    int good = 1;

    for (size_t i = 0; i < CORPUS_N; i++) {
        size_t n = 0, ref_len;
        unsigned char *in;
        ssize_t r, z;

        snprintf(path, sizeof path, "%s/%s", dir, corpus_files[i]);
        in = read_file(path, &n);
        if (!in) {
            diag("cannot read %s", path);
            good = 0;
            continue;
        }
        ref_len = snappy_max_compressed_length(n);
        snappy_compress((const char *)in, n, (char *)ref, &ref_len);
        r = tiny_compress(c, in, n, out, out_cap);
        if (r != (ssize_t)ref_len || memcmp(out, ref, ref_len)) {
            diag("%s: COMPRESS gives %zd, snappy_compress %zu", corpus_files[i], r, ref_len);
            good = 0;
        }
        r = tiny_decompress(c, ref, ref_len, back, n);
        if (r != (ssize_t)n || memcmp(back, in, n)) {
            diag("%s: DECOMPRESS gives %zd", corpus_files[i], r);
            good = 0;
        }
        z = tiny_frame_compress(c, in, n, out, out_cap);
        r = z < 0 ? z : tiny_frame_decompress(c, out, (size_t)z, back, n);
        if (r != (ssize_t)n || memcmp(back, in, n)) {
            diag("%s: FRAME round trip gives %zd / %zd", corpus_files[i], z, r);
            good = 0;
        }
        free(in);
    }
    ok(good, "slot %zu: every corpus file round-trips through every op", slot);
}

/* Offsets of the chunks of a framed stream. */
static size_t chunk_starts(const unsigned char *s, size_t n, size_t *starts, size_t max)
{
    size_t pos = 0, k = 0;

    while (pos + 4 <= n && k < max) {
        starts[k++] = pos;
        pos += 4 + (util_le32(s + pos) >> 8);
    }
    return k;
}

static void check_corrupt(tiny_conn *c, const char *dir)
{
    char path[4096];
    size_t n = 0, starts[64], nch, bad_flips = 0, bad_cuts = 0, tried = 0;
    unsigned char *in, *z, *copy;
    ssize_t zl, r;
    uint64_t s = rng_seed(99);

    snprintf(path, sizeof path, "%s/alice29.txt", dir);
    in = read_file(path, &n);
    if (!ok(in != NULL, "read alice29.txt"))
        return;
    z = xmalloc(tiny_max_output(TINY_OP_FRAME_COMPRESS, n));
    zl = tiny_frame_compress(c, in, n, z, tiny_max_output(TINY_OP_FRAME_COMPRESS, n));
    if (!ok(zl > 0, "frame-compress alice29.txt (%zd)", zl))
        return;
    copy = xmalloc((size_t)zl);
    nch = chunk_starts(z, (size_t)zl, starts, 64);
    ok(nch >= 3 && starts[0] == 0 && z[0] == 0xff, "framed alice29.txt has %zu chunks", nch);

    /* Flip one byte in the body (CRC or data) of data chunks. */
    for (size_t k = 1; k < nch; k++) {
        size_t len = util_le32(z + starts[k]) >> 8;
        for (int t = 0; t < 4; t++) {
            size_t at = starts[k] + 4 + (t == 0 ? 0 : t == 1 ? 3 : rng_below(&s, len));
            memcpy(copy, z, (size_t)zl);
            copy[at] ^= (unsigned char)(1u << rng_below(&s, 8));
            r = tiny_frame_decompress(c, copy, (size_t)zl, back, n);
            tried++;
            if (r != -EBADMSG) {
                diag("flip at %zu (chunk %zu) gave %zd", at, k, r);
                bad_flips++;
            }
        }
    }
    ok(bad_flips == 0, "%zu streams with one flipped byte in a chunk body: all -EBADMSG", tried);

    memcpy(copy, z, (size_t)zl);
    copy[6] ^= 0x20; /* "sNaPpY" -> "snaPpY" */
    is_int(tiny_frame_decompress(c, copy, (size_t)zl, back, n), -EBADMSG,
           "a corrupt stream identifier is -EBADMSG");
    is_int(tiny_frame_decompress(c, z + 10, (size_t)zl - 10, back, n), -EBADMSG,
           "a stream without its identifier is -EBADMSG");
    r = tiny_run(c, TINY_OP_FRAME_DECOMPRESS, TINY_F_CONTINUE, z + 10, (size_t)zl - 10, back, n);
    ok(r == (ssize_t)n && memcmp(back, in, n) == 0,
       "the same with TINY_F_CONTINUE decompresses (got %zd)", r);
    memcpy(copy, z, (size_t)zl);
    copy[starts[2]] = 0x05; /* a reserved unskippable chunk type */
    is_int(tiny_frame_decompress(c, copy, (size_t)zl, back, n), -EBADMSG,
           "a reserved chunk type is -EBADMSG");

    tried = 0;
    for (size_t k = 1; k < nch; k++) {
        size_t len = util_le32(z + starts[k]) >> 8;
        size_t cuts[3] = {starts[k] + 2, starts[k] + 4 + len / 2, starts[k] + 4 + len - 1};
        for (int t = 0; t < 3; t++) {
            r = tiny_frame_decompress(c, z, cuts[t], back, n);
            tried++;
            if (r != -EBADMSG) {
                diag("cut at %zu (inside chunk %zu) gave %zd", cuts[t], k, r);
                bad_cuts++;
            }
        }
    }
    ok(bad_cuts == 0, "%zu streams truncated inside a chunk: all -EBADMSG", tried);

    /* Raw streams. */
    size_t ref_len = snappy_max_compressed_length(n);
    snappy_compress((const char *)in, n, (char *)ref, &ref_len);
    r = tiny_decompress(c, ref, ref_len / 2, back, n);
    is_int(r, -EBADMSG, "a truncated raw stream is -EBADMSG");
    for (int i = 1; i <= 3; i++) {
        size_t bn = 0, blen = 0;
        unsigned char *bd;
        snprintf(path, sizeof path, "%s/baddata%d.snappy", dir, i);
        bd = read_file(path, &bn);
        if (!ok(bd != NULL, "read baddata%d.snappy", i))
            continue;
        if (tiny_raw_length(bd, bn, &blen) < 0 || blen > (64u << 20))
            blen = 1u << 20;
        r = tiny_decompress(c, bd, bn, back, blen);
        is_int(r, -EBADMSG, "DECOMPRESS of baddata%d.snappy is -EBADMSG", i);
        free(bd);
    }
    free(copy);
    free(z);
    free(in);
}

/* A hand-made raw snappy stream: literals and 2-byte-offset copies. */
struct rawgen {
    unsigned char *s;
    size_t len;
    unsigned char *o; /* the output it decodes to */
    size_t olen;
};

static void rg_literal(struct rawgen *g, const unsigned char *d, size_t n)
{
    size_t m = n - 1;

    if (m < 60) {
        g->s[g->len++] = (unsigned char)(m << 2);
    } else if (m < 256) {
        g->s[g->len++] = 60 << 2;
        g->s[g->len++] = (unsigned char)m;
    } else if (m < 65536) {
        g->s[g->len++] = 61 << 2;
        g->s[g->len++] = (unsigned char)m;
        g->s[g->len++] = (unsigned char)(m >> 8);
    } else {
        g->s[g->len++] = 62 << 2;
        g->s[g->len++] = (unsigned char)m;
        g->s[g->len++] = (unsigned char)(m >> 8);
        g->s[g->len++] = (unsigned char)(m >> 16);
    }
    memcpy(g->s + g->len, d, n);
    g->len += n;
    memcpy(g->o + g->olen, d, n);
    g->olen += n;
}

static void rg_copy(struct rawgen *g, size_t off, size_t n) /* n 1..64 */
{
    if (off < 65536) {
        g->s[g->len++] = (unsigned char)(2 | ((n - 1) << 2));
        g->s[g->len++] = (unsigned char)off;
        g->s[g->len++] = (unsigned char)(off >> 8);
    } else {
        g->s[g->len++] = (unsigned char)(3 | ((n - 1) << 2));
        for (int i = 0; i < 4; i++)
            g->s[g->len++] = (unsigned char)(off >> (8 * i));
    }
    for (size_t i = 0; i < n; i++, g->olen++)
        g->o[g->olen] = g->o[g->olen - off];
}

/* Builds a stream of about @target output bytes. far: one copy 100000 back. */
static void rg_build(struct rawgen *g, size_t target, uint64_t seed, int long_literal, int far)
{
    uint64_t s = rng_seed(seed);
    unsigned char hdr[10];
    size_t h, body_len;
    unsigned char *body;

    g->len = 0;
    g->olen = 0;
    rg_literal(g, src, 70000);
    while (g->olen < target) {
        size_t k = rng_below(&s, 100);
        if (long_literal && g->olen > 300000 && g->olen < 400000) {
            rg_literal(g, src + 1000, 1u << 20); /* a literal longer than any unit */
        } else if (far && g->olen > 600000 && g->olen < 700000 && k < 2) {
            rg_copy(g, 100000, 64);
            far = 0;
        } else if (k < 30) {
            rg_literal(g, src + rng_below(&s, 1u << 20), 1 + rng_below(&s, 300));
        } else {
            size_t max = g->olen < 65535 ? g->olen : 65535;
            rg_copy(g, 1 + rng_below(&s, max), 1 + rng_below(&s, 64));
        }
    }
    /* prepend the length header */
    h = tiny_varint_put(hdr, g->olen);
    body_len = g->len;
    body = g->s;
    memmove(body + h, body, body_len);
    memcpy(body, hdr, h);
    g->len += h;
}

static void check_rawsplit(tiny_conn *c, size_t slot)
{
    struct rawgen g = {.s = out, .o = ref};
    size_t n = 0;
    ssize_t r;

    for (int v = 0; v < 3; v++) {
        rg_build(&g, (3u << 20) + 12345 * (unsigned)v, 1000 + (unsigned)v + slot, v == 1, v == 2);
        if (snappy_uncompressed_length((char *)g.s, g.len, &n) != SNAPPY_OK || n != g.olen ||
            snappy_validate_compressed_buffer((char *)g.s, g.len) != SNAPPY_OK) {
            ok(0, "hand-made raw stream %d is valid for snappy itself", v);
            continue;
        }
        r = tiny_decompress(c, g.s, g.len, back, g.olen);
        if (v == 2)
            ok((r == (ssize_t)g.olen && memcmp(back, g.o, g.olen) == 0) || r == -ENOTSUP,
               "slot %zu: raw stream of %zu bytes with a copy 100000 back: right or -ENOTSUP "
               "(got %zd)",
               slot, g.olen, r);
        else
            ok(r == (ssize_t)g.olen && memcmp(back, g.o, g.olen) == 0,
               "slot %zu: hand-made raw stream of %zu bytes with copies across unit boundaries%s "
               "(got %zd)",
               slot, g.olen, v == 1 ? " and a 1 MiB literal" : "", r);
    }
}

int main(int argc, char **argv)
{
    static const size_t def_slots[] = {4096, 65536, 1u << 20};
    const char *dir = argc > 1 ? argv[1] : "tests/data";
    size_t slots[8], nslots = 0;

    watchdog(600);
    for (int i = 2; i < argc && nslots < 8; i++)
        slots[nslots++] = strtoul(argv[i], NULL, 0);
    if (!nslots)
        for (size_t i = 0; i < 3; i++)
            slots[nslots++] = def_slots[i];

    out_cap = tiny_max_output(TINY_OP_COMPRESS, BIG + (4u << 20)) + (4u << 20);
    src = xmalloc(BIG + (17u << 20));
    out = xmalloc(out_cap);
    back = xmalloc(BIG + (17u << 20));
    ref = xmalloc(out_cap);
    gen_mixed(src, BIG + (17u << 20), 42);

    for (size_t k = 0; k < nslots; k++) {
        size_t slot = slots[k];
        size_t sizes[] = {0, 1, 65535, 65536, 65537, slot - 1, slot, slot + 1, BIG};
        tiny_conn *c = connect_or_bail(8, slot, 1);

        is_int(tiny_conn_slot_size(c), slot, "connected with slots of %zu bytes", slot);
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            int dup = 0;
            for (size_t j = 0; j < i; j++)
                dup |= sizes[j] == sizes[i];
            if (!dup)
                check_size(c, slot, sizes[i]);
        }
        check_nospc(c, slot, slot + 1);
        check_corpus(c, slot, dir);
        check_rawsplit(c, slot);
        if (k == 0)
            check_corrupt(c, dir);
        /* after all that, tinyd still serves this client */
        ssize_t r = tiny_compress(c, src, 1000, out, out_cap);
        ok(r > 0, "slot %zu: the connection still works at the end (got %zd)", slot, r);
        tiny_disconnect(c);
    }
    free(src);
    free(out);
    free(back);
    free(ref);
    return done_testing();
}
