/*
 * t_format.c - the pure functions of libtiny, no daemon: masked CRC-32C
 * against published vectors and a bitwise reference, the raw-stream length
 * header, tiny_frame_scan on good, partial and malformed streams,
 * tiny_max_output bounds, tiny_strerror and tiny_default_dir.
 * Usage: t_format DATA_DIR
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tiny.h"
#include "util.h"

static uint32_t mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

/* Bitwise CRC-32C (Castagnoli, reflected 0x82f63b78): slow and obviously right. */
static uint32_t ref_crc32c(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xffffffffu;

    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
    }
    return ~crc;
}

static void test_crc(void)
{
    unsigned char b[32];
    int good = 1;
    uint64_t s = rng_seed(1);
    unsigned char *big = xmalloc(70000 + 16);

    is_int(tiny_crc32c_masked("123456789", 9), mask(0xe3069283u), "crc32c(\"123456789\")");
    is_int(tiny_crc32c_masked("", 0), mask(0), "crc32c of nothing");
    memset(b, 0, sizeof b);
    is_int(tiny_crc32c_masked(b, 32), mask(0x8a9136aau), "crc32c of 32 zero bytes (RFC 3720)");
    memset(b, 0xff, sizeof b);
    is_int(tiny_crc32c_masked(b, 32), mask(0x62a8ab43u), "crc32c of 32 0xff bytes (RFC 3720)");
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)i;
    is_int(tiny_crc32c_masked(b, 32), mask(0x46dd794eu), "crc32c of 0..31 (RFC 3720)");
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)(31 - i);
    is_int(tiny_crc32c_masked(b, 32), mask(0x113fdb5cu), "crc32c of 31..0 (RFC 3720)");

    gen_mixed(big, 70000 + 16, 7);
    for (int i = 0; i < 200 && good; i++) {
        size_t off = rng_below(&s, 16), n = rng_below(&s, 70000);
        if (i < 70)
            n = (size_t)i;
        if (tiny_crc32c_masked(big + off, n) != mask(ref_crc32c(big + off, n))) {
            diag("crc mismatch at offset %zu length %zu", off, n);
            good = 0;
        }
    }
    ok(good, "crc32c equals a bitwise reference for 200 lengths and alignments");
    free(big);
}

static void test_raw_length(const char *data_dir)
{
    static const struct {
        unsigned char b[6];
        size_t n;
        int rc;
        size_t len;
    } v[] = {
        {{0x00}, 1, 0, 0},
        {{0x7f}, 1, 0, 127},
        {{0x80, 0x01}, 2, 0, 128},
        {{0xfe, 0xff, 0x03}, 3, 0, 65534},
        {{0x80, 0x80, 0x04}, 3, 0, 65536},
        {{0xff, 0xff, 0xff, 0xff, 0x0f}, 5, 0, 0xffffffffu},
        {{0x80, 0x80, 0x80, 0x80, 0x10}, 5, -EBADMSG, 0},       /* 2^32: too large */
        {{0x80}, 1, -EBADMSG, 0},                               /* truncated */
        {{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 6, -EBADMSG, 0}, /* too long */
        {{0}, 0, -EBADMSG, 0},                                  /* empty */
    };
    char path[4096];

    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        size_t len = 12345;
        int rc = tiny_raw_length(v[i].b, v[i].n, &len);
        is_int(rc, v[i].rc, "tiny_raw_length vector %zu returns %d", i, v[i].rc);
        if (v[i].rc == 0)
            is_int(len, v[i].len, "tiny_raw_length vector %zu reads %zu", i, v[i].len);
    }
    for (size_t i = 0; i < CORPUS_N; i++) {
        size_t n = 0, clen, len = 0;
        unsigned char *in, *c;

        snprintf(path, sizeof path, "%s/%s", data_dir, corpus_files[i]);
        in = read_file(path, &n);
        if (!ok(in != NULL, "read %s", corpus_files[i]))
            continue;
        clen = snappy_max_compressed_length(n);
        c = xmalloc(clen);
        snappy_compress((char *)in, n, (char *)c, &clen);
        ok(tiny_raw_length(c, clen, &len) == 0 && len == n,
           "tiny_raw_length of snappy_compress(%s) is its size %zu", corpus_files[i], n);
        free(c);
        free(in);
    }
}

/* Appends one framed data chunk of @data to @out (compressed unless @raw). */
static size_t put_chunk(unsigned char *out, const unsigned char *data, size_t n, int raw)
{
    uint32_t crc = tiny_crc32c_masked(data, n);
    size_t clen = snappy_max_compressed_length(n);
    unsigned char *tmp = xmalloc(clen);
    size_t body;

    snappy_compress((const char *)data, n, (char *)tmp, &clen);
    if (raw) {
        memcpy(out + 8, data, n);
        body = n;
    } else {
        memcpy(out + 8, tmp, clen);
        body = clen;
    }
    out[0] = raw ? 0x01 : 0x00;
    out[1] = (unsigned char)(body + 4);
    out[2] = (unsigned char)((body + 4) >> 8);
    out[3] = (unsigned char)((body + 4) >> 16);
    out[4] = (unsigned char)crc;
    out[5] = (unsigned char)(crc >> 8);
    out[6] = (unsigned char)(crc >> 16);
    out[7] = (unsigned char)(crc >> 24);
    free(tmp);
    return 8 + body;
}

static void test_frame_scan(void)
{
    size_t data_len = 3 * 65536 + 1000;
    unsigned char *data = xmalloc(data_len);
    unsigned char *st = xmalloc(data_len * 2 + 1024);
    unsigned char *dec = xmalloc(data_len);
    size_t starts[16], pos = 0, whole = 0, out_max = 0;
    int nch = 0, good = 1;
    ssize_t r;

    gen_mixed(data, data_len, 11);
    memcpy(st, "\xff\x06\x00\x00sNaPpY", 10);
    starts[nch++] = 0;
    pos = 10;
    starts[nch++] = pos;
    pos += put_chunk(st + pos, data, 65536, 0);
    starts[nch++] = pos;
    pos += put_chunk(st + pos, data + 65536, 65536, 1);
    starts[nch++] = pos; /* padding chunk of 5 bytes */
    memcpy(st + pos, "\xfe\x05\x00\x00\x00\x00\x00\x00\x00", 9);
    pos += 9;
    starts[nch++] = pos; /* skippable chunk */
    memcpy(st + pos,
           "\x80\x03\x00\x00"
           "abc",
           7);
    pos += 7;
    starts[nch++] = pos;
    pos += put_chunk(st + pos, data + 131072, 65536, 0);
    starts[nch++] = pos;
    pos += put_chunk(st + pos, data + 196608, 1000, 0);

    r = tiny_frame_scan(st, pos, &whole, &out_max);
    is_int(r, nch, "frame_scan counts %d chunks of a whole stream", nch);
    is_int(whole, pos, "frame_scan: the whole stream is whole");
    ok(out_max >= data_len, "frame_scan out_max %zu >= decoded length %zu", out_max, data_len);
    is_int(ref_frame_decode(st, pos, dec, data_len, 1), data_len,
           "the hand-made stream is valid (reference decoder)");
    ok(memcmp(dec, data, data_len) == 0, "reference decoder gives the data back");

    /* Every truncation point: whole = start of the last complete chunk. */
    for (size_t cut = 0; cut < pos && good; cut++) {
        int k = 0;
        while (k + 1 < nch && starts[k + 1] <= cut)
            k++;
        /* chunk k starts at or before the cut and ends after it */
        size_t exp_whole = starts[k];
        int exp_n = k;
        whole = 99999999;
        r = tiny_frame_scan(st, cut, &whole, NULL);
        if (r != exp_n || whole != exp_whole) {
            diag("cut %zu: got %zd chunks whole %zu, expected %d chunks whole %zu", cut, r, whole,
                 exp_n, exp_whole);
            good = 0;
        }
    }
    ok(good, "frame_scan of every truncated prefix leaves the partial chunk out");

    r = tiny_frame_scan(st, 0, &whole, &out_max);
    ok(r == 0 && whole == 0, "frame_scan of nothing: 0 chunks");

    /* Malformed headers. */
    unsigned char bad[32];
    memcpy(bad, "\xff\x06\x00\x00sNaPpY", 10);
    memcpy(bad + 10, "\x02\x04\x00\x00zzzz", 8);
    is_int(tiny_frame_scan(bad, 18, &whole, &out_max), -EBADMSG, "reserved type 0x02 rejected");
    bad[10] = 0x7f;
    is_int(tiny_frame_scan(bad, 18, &whole, &out_max), -EBADMSG, "reserved type 0x7f rejected");
    bad[10] = 0x00;
    bad[11] = 0xff, bad[12] = 0xff, bad[13] = 0x01; /* 128 KiB body */
    is_int(tiny_frame_scan(bad, 18, &whole, &out_max), -EBADMSG,
           "oversized compressed chunk rejected from its header alone");
    bad[10] = 0x01;
    is_int(tiny_frame_scan(bad, 18, &whole, &out_max), -EBADMSG,
           "oversized uncompressed chunk rejected");
    bad[11] = 0x03, bad[12] = 0x00, bad[13] = 0x00; /* data chunk shorter than its CRC */
    is_int(tiny_frame_scan(bad, 18, &whole, &out_max), -EBADMSG,
           "data chunk shorter than its CRC rejected");
    memcpy(bad, "\xff\x07\x00\x00sNaPpYx", 11);
    is_int(tiny_frame_scan(bad, 11, &whole, &out_max), -EBADMSG,
           "stream identifier of the wrong length rejected");
    bad[0] = 0xfe, bad[1] = 0x07; /* padding of 7 is fine */
    r = tiny_frame_scan(bad, 11, &whole, &out_max);
    ok(r == 1 && whole == 11 && out_max == 0, "a padding chunk is whole and yields nothing");
    free(data);
    free(st);
    free(dec);
}

static void test_max_output(void)
{
    static const size_t sizes[] = {0,      1,      100,      65535,          65536,     65537,
                                   131072, 200000, 1u << 20, (1u << 20) + 1, 100u << 20};
    int good = 1;

    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i], chunks = (n + 65535) / 65536;
        if (tiny_max_output(TINY_OP_COMPRESS, n) < (n ? snappy_max_compressed_length(n) : 1)) {
            diag("COMPRESS bound of %zu below snappy's", n);
            good = 0;
        }
        if (tiny_max_output(TINY_OP_FRAME_COMPRESS, n) < 10 + 8 * chunks + n) {
            diag("FRAME_COMPRESS bound of %zu too small", n);
            good = 0;
        }
        if (n <= 65536 && tiny_max_output(TINY_OP_CHUNK_COMPRESS, n) < 8 + n) {
            diag("CHUNK_COMPRESS bound of %zu too small", n);
            good = 0;
        }
    }
    ok(good, "tiny_max_output covers the worst case of every compressing op");
    ok(tiny_max_output(TINY_OP_DECOMPRESS, 1000) == 0 &&
           tiny_max_output(TINY_OP_FRAME_DECOMPRESS, 1000) == 0 &&
           tiny_max_output(TINY_OP_CHUNK_DECOMPRESS, 1000) == 0,
       "tiny_max_output is 0 for the decompressing ops");
}

static void test_strerror(void)
{
    static const int codes[] = {ECONNREFUSED, ECONNRESET, EPROTO, EBADMSG, ENOSPC,
                                EUSERS,       ENOMEM,     EINVAL, ENOTSUP, EIO};
    int good = 1;

    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        const char *m = tiny_strerror(-codes[i]);
        const char *p = tiny_strerror(codes[i]);
        if (!m || !*m || isupper((unsigned char)m[0]) || !p || strcmp(m, p)) {
            diag("tiny_strerror(%d) = \"%s\", (%d) = \"%s\"", -codes[i], m ? m : "(null)", codes[i],
                 p ? p : "(null)");
            good = 0;
        }
    }
    ok(good, "tiny_strerror: lowercase text, same for -e and e");
    ok(tiny_strerror(-123456) != NULL, "tiny_strerror of an unknown code is not NULL");
    ok(strcmp(tiny_strerror(-ECONNREFUSED), tiny_strerror(-ECONNRESET)) != 0,
       "tiny_strerror tells -ECONNREFUSED from -ECONNRESET");
}

static void test_default_dir(void)
{
    char buf[256];

    setenv("TINYD_DIR", "/some/where", 1);
    int n = tiny_default_dir(buf, sizeof buf);
    ok(n == 11 && strcmp(buf, "/some/where") == 0, "tiny_default_dir honours $TINYD_DIR");
    is_int(tiny_default_dir(buf, 5), -ENAMETOOLONG, "tiny_default_dir: -ENAMETOOLONG");
    unsetenv("TINYD_DIR");
    setenv("XDG_RUNTIME_DIR", "/run/user/42", 1);
    n = tiny_default_dir(buf, sizeof buf);
    ok(n > 0 && strcmp(buf, "/run/user/42/tinyd") == 0, "tiny_default_dir uses $XDG_RUNTIME_DIR");
    unsetenv("XDG_RUNTIME_DIR");
    n = tiny_default_dir(buf, sizeof buf);
    ok(n > 0 && strncmp(buf, "/tmp/tinyd-", 11) == 0, "tiny_default_dir falls back to /tmp");
}

int main(int argc, char **argv)
{
    const char *data_dir = argc > 1 ? argv[1] : "tests/data";

    watchdog(120);
    test_crc();
    test_raw_length(data_dir);
    test_frame_scan();
    test_max_output();
    test_strerror();
    test_default_dir();
    return done_testing();
}
