/*
 * t_stream.c - more than 1 GiB through tinyd in bounded memory, the way
 * `tiny` streams files: 64 MiB blocks are framed (the first with the stream
 * identifier, the rest with TINY_F_NO_STREAM_ID) and the concatenated
 * stream is decompressed in pieces cut at arbitrary byte counts, keeping
 * the partial chunk for the next piece (TINY_F_CONTINUE after the first).
 * CRC-32C of everything in and out must match. Then, if the machine has the
 * memory, one raw COMPRESS of more than 1 GiB byte-identical to
 * snappy_compress() and its DECOMPRESS.
 * Usage: t_stream [MiB]      (TINYD_DIR names the daemon; default 1040 MiB)
 */
#include <isa-l/crc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "tiny.h"
#include "util.h"

#define BLOCK (64u << 20)
#define CUT   ((5u << 20) + 777u) /* decompress pieces, deliberately not chunk-aligned */

static uint32_t crc_upd(uint32_t crc, const void *p, size_t n)
{
    return crc32_iscsi((unsigned char *)p, (int)n, crc);
}

static void stream_test(tiny_conn *c, size_t total)
{
    unsigned char *blk = xmalloc(BLOCK);
    size_t zcap = tiny_max_output(TINY_OP_FRAME_COMPRESS, BLOCK);
    unsigned char *carry = xmalloc(zcap + CUT + 8), *outb = NULL;
    size_t carry_len = 0, outb_cap = 0, done_in = 0, done_out = 0, zbytes = 0;
    uint32_t crc_in = 0, crc_out = 0;
    int first_dec = 1, err = 0;
    uint64_t t0 = now_ns();

    for (size_t i = 0; done_in < total && !err; i++) {
        size_t n = total - done_in < BLOCK ? total - done_in : BLOCK;
        int last = done_in + n == total;
        ssize_t z;

        gen_mixed(blk, n, 1000 + i);
        crc_in = crc_upd(crc_in, blk, n);
        z = tiny_run(c, TINY_OP_FRAME_COMPRESS, i ? TINY_F_NO_STREAM_ID : 0, blk, n,
                     carry + carry_len, zcap);
        if (z < 0) {
            diag("FRAME_COMPRESS of block %zu failed: %s (%zd)", i, tiny_strerror((int)z), z);
            err = 1;
            break;
        }
        if (i == 0 && (z < 10 || memcmp(carry, "\xff\x06\x00\x00sNaPpY", 10))) {
            diag("the first block does not start with the stream identifier");
            err = 1;
        }
        if (i > 0 && carry[carry_len] == 0xff) {
            diag("block %zu starts with a stream identifier despite TINY_F_NO_STREAM_ID", i);
            err = 1;
        }
        carry_len += (size_t)z;
        zbytes += (size_t)z;
        done_in += n;

        while (!err && (carry_len >= CUT || (last && carry_len > 0))) {
            size_t take = carry_len < CUT ? carry_len : CUT, whole = 0, omax = 0;
            ssize_t r = tiny_frame_scan(carry, take, &whole, &omax);
            if (r < 0 || whole == 0) {
                diag("frame_scan of the stream failed at byte %zu: %zd", zbytes - carry_len, r);
                err = 1;
                break;
            }
            if (omax > outb_cap) {
                free(outb);
                outb_cap = omax;
                outb = xmalloc(outb_cap);
            }
            r = tiny_run(c, TINY_OP_FRAME_DECOMPRESS, first_dec ? 0 : TINY_F_CONTINUE, carry, whole,
                         outb, outb_cap);
            if (r < 0) {
                diag("FRAME_DECOMPRESS of %zu bytes at stream offset %zu failed: %s (%zd)", whole,
                     zbytes - carry_len, tiny_strerror((int)r), r);
                err = 1;
                break;
            }
            first_dec = 0;
            crc_out = crc_upd(crc_out, outb, (size_t)r);
            done_out += (size_t)r;
            memmove(carry, carry + whole, carry_len - whole);
            carry_len -= whole;
        }
    }
    double s = (double)(now_ns() - t0) / 1e9;
    diag("framed stream: %zu bytes in, %zu compressed, %zu out, %.1f s", done_in, zbytes, done_out,
         s);
    ok(!err, "a %zu MiB stream compressed in 64 MiB blocks and decompressed in %u-byte pieces",
       total >> 20, CUT);
    is_int(done_out, total, "decompressed length equals the input length");
    ok(crc_in == crc_out, "CRC-32C of the output equals that of the input (%08x, %08x)", crc_in,
       crc_out);
    ok(outb_cap <= (512u << 20), "memory stayed bounded (largest output buffer %zu MiB)",
       outb_cap >> 20);
    free(blk);
    free(carry);
    free(outb);
}

static void raw_test(tiny_conn *c, size_t total)
{
    size_t zcap = snappy_max_compressed_length(total), ref_len = zcap;
    unsigned char *in = xmalloc(total), *ref = xmalloc(zcap), *z = xmalloc(zcap);
    ssize_t r;
    uint64_t t0;

    for (size_t off = 0, i = 0; off < total; off += BLOCK, i++)
        gen_mixed(in + off, total - off < BLOCK ? total - off : BLOCK, 5000 + i);
    snappy_compress((const char *)in, total, (char *)ref, &ref_len);
    t0 = now_ns();
    r = tiny_compress(c, in, total, z, zcap);
    diag("raw COMPRESS of %zu bytes: %zd in %.1f s", total, r, (double)(now_ns() - t0) / 1e9);
    ok(r == (ssize_t)ref_len && memcmp(z, ref, ref_len) == 0,
       "raw COMPRESS of %zu MiB is byte-identical to snappy_compress (%zd vs %zu)", total >> 20, r,
       ref_len);
    free(ref);
    memset(in, 0, 4096);
    unsigned char *back = xmalloc(total);
    t0 = now_ns();
    r = tiny_decompress(c, z, ref_len, back, total);
    diag("raw DECOMPRESS: %zd in %.1f s", r, (double)(now_ns() - t0) / 1e9);
    for (size_t off = 0, i = 0; off < total; off += BLOCK, i++)
        gen_mixed(in + off, total - off < BLOCK ? total - off : BLOCK, 5000 + i);
    ok(r == (ssize_t)total && memcmp(back, in, total) == 0,
       "raw DECOMPRESS of it gives the original (got %zd)", r);
    free(back);
    free(z);
    free(in);
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 1040;
    size_t total = (mib << 20) + 12345; /* a short last block and chunk */
    long pages = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    tiny_conn *c;

    watchdog(400);
    c = connect_or_bail(8, 1u << 20, 1);
    stream_test(c, total);
    if (pages > 0 && (double)pages * (double)psz > 5.0 * (double)total)
        raw_test(c, total);
    else
        printf("ok %d # skip not enough free memory for a raw %zu MiB round trip\n", ++tap_count,
               mib);
    tiny_disconnect(c);
    return done_testing();
}
