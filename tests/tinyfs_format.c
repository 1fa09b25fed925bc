/*
 * tinyfs_format.c - unit tests of tinyfs's stored layout, version 2
 * (tinyfs/format.c, tinyfs/measure.c), no daemon needed: header, group
 * arithmetic, group index build and parse with good and corrupt indexes,
 * chunk parsing, and whole stored files written here (compressed records by
 * the in-process snappy, uncompressed ones, padding holes) for tfs_locate
 * and tfs_measure: logical sizes, every torn end a crash can leave and its
 * repair, a damaged index, stored overhead. With output paths it also writes
 * a stored file of 2.5 groups (and the logical bytes next to it) for
 * tests/70-tinyfs-format.t to decode with python3-snappy.
 *
 *   tinyfs_format [STORED_OUT LOGICAL_OUT]
 */
#include <errno.h>
#include <fcntl.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "../tinyfs/format.c"
#include "../tinyfs/measure.c"

static unsigned char rec[TFS_RECORD_MAX + 64], data[TFS_CHUNK], out[TFS_CHUNK];

/* One data chunk of @len bytes at @in, compressed when snappy shrinks it
 * and !@raw; returns its length. */
static size_t record(unsigned char *r, const unsigned char *in, uint32_t len, int raw)
{
    size_t n = TFS_RECORD_MAX;

    if (!raw && snappy_compress((const char *)in, len, (char *)r + 8, &n) == SNAPPY_OK && n < len) {
        r[0] = TINY_CHUNK_COMPRESSED;
        tiny_put_le24(r + 1, (uint32_t)n + 4);
        tiny_put_le32(r + 4, tiny_crc32c_masked(in, len));
        return n + 8;
    }
    return tfs_raw_record(in, len, r);
}

/* The bytes of chunk @i: text-like (compressible) or noise. */
static void fill(unsigned char *d, uint64_t i, uint32_t len, int noise)
{
    uint32_t x = (uint32_t)i * 2654435761u + 1;

    for (uint32_t k = 0; k < len; k++) {
        x = x * 1103515245u + 12345u;
        d[k] = noise ? (unsigned char)(x >> 16) : (unsigned char)("tinyfs packs groups "[k % 20]);
        if (!noise && k % 97 == 0)
            d[k] = (unsigned char)(x >> 24);
    }
}

/* Writes a stored file of @size logical bytes to @fd as tinyfs does (the
 * logical bytes to @lg if not NULL); @noise: incompressible. Returns the
 * stored length, 0 on failure. */
static uint64_t build(int fd, FILE *lg, uint64_t size, int noise)
{
    unsigned char hdr[TFS_HDR_LEN], b[TFS_GIDX_LEN], pad[4];
    uint64_t n = tfs_nchunks(size), end = TFS_HDR_LEN;

    if (ftruncate(fd, 0) < 0)
        return 0;
    tfs_header_build(hdr);
    if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
        return 0;
    for (uint64_t g = 0; g * TFS_GROUP < n; g++) {
        struct tfs_gidx x = {0};
        uint64_t off = tfs_group_off(g) + TFS_GIDX_LEN;

        for (uint32_t k = 0; k < TFS_GROUP && g * TFS_GROUP + k < n; k++) {
            uint64_t i = g * TFS_GROUP + k;
            uint32_t len = tfs_chunk_len(i, size);
            size_t r;

            fill(data, i, len, noise);
            r = record(rec, data, len, (int)(i % 5 == 3));
            if (pwrite(fd, rec, r, (off_t)off) != (ssize_t)r)
                return 0;
            if (lg && fwrite(data, 1, len, lg) != len)
                return 0;
            off += r;
            x.rec[k] = (uint32_t)r;
            x.n = k + 1;
            x.last_clen = len;
        }
        tfs_gidx_build(b, &x);
        if (pwrite(fd, b, sizeof(b), (off_t)tfs_group_off(g)) != (ssize_t)sizeof(b))
            return 0;
        end = off;
        if ((g + 1) * TFS_GROUP < n) {
            tfs_pad_build(pad, (uint32_t)(tfs_group_off(g + 1) - off - 4));
            if (pwrite(fd, pad, 4, (off_t)off) != 4)
                return 0;
            end = tfs_group_off(g + 1);
        }
    }
    return ftruncate(fd, (off_t)end) == 0 ? end : 0;
}

static uint64_t flen(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* tfs_locate on the file as it is: logical size, torn or not. */
static int locate_is(int fd, uint64_t size, int torn, struct tfs_tail *t)
{
    if (tfs_locate(fd, flen(fd), t) < 0)
        return 0;
    if (t->size != size || t->torn != torn || t->damaged) {
        diag("stored %llu: size %llu torn %d damaged %d, expected %llu torn %d",
             (unsigned long long)flen(fd), (unsigned long long)t->size, t->torn, t->damaged,
             (unsigned long long)size, torn);
        return 0;
    }
    return 1;
}

/* Repairs a torn end and checks that the file is then whole. */
static int repaired_is(int fd, uint64_t size)
{
    struct tfs_tail t;

    return tfs_locate(fd, flen(fd), &t) == 0 && tfs_tail_repair(fd, &t) == 0 &&
           locate_is(fd, size, 0, &t) && t.keep == flen(fd);
}

int main(int argc, char **argv)
{
    static const uint64_t sizes[] = {0,       1,       65535,   65536,    65537,
                                     1048575, 1048576, 1048577, 17 << 16, (33 << 16) + 7};
    char tmpl[] = "/tmp/tinyfs_format.XXXXXX";
    unsigned char hdr[TFS_HDR_LEN], b[TFS_GIDX_LEN];
    struct tfs_gidx x = {0}, y;
    struct tfs_tail t;
    uint64_t st, logical, stored;
    int fd, bad = 0, raw;

    tfs_header_build(hdr);
    ok(tfs_header_parse(hdr, sizeof(hdr)) == 1, "header parses as tinyfs");
    ok(tfs_header_parse(hdr, sizeof(hdr) - 1) == 0, "a short file is plain");
    ok(memcmp(hdr, "\xff\x06\x00\x00sNaPpY", 10) == 0, "stored files start with the stream id");
    ok(hdr[10] >= 0x80 && hdr[10] <= 0xfd, "the header chunk is skippable (0x%02x)", hdr[10]);
    ok(tfs_header_version(hdr, sizeof(hdr)) == 2, "format version 2");
    hdr[30] ^= 1;
    ok(tfs_header_parse(hdr, sizeof(hdr)) == -EBADMSG, "a corrupt header is detected");
    tfs_header_build(hdr);
    hdr[22] = 1; /* version 1 */
    tiny_put_le32(hdr + 34, tiny_crc32c_masked(hdr + 14, 20));
    ok(tfs_header_parse(hdr, sizeof(hdr)) == -EPROTONOSUPPORT &&
           tfs_header_version(hdr, sizeof(hdr)) == 1,
       "a version 1 header is refused and named");
    ok(tfs_header_parse((const unsigned char *)"hello, plain file with text in it......", 39) == 0,
       "plain text is plain");

    /* group arithmetic */
    ok(TFS_GSPACE == 80 + 16 * 65544 + 4 && tfs_group_off(0) == 38 &&
           tfs_group_off(2) == 38 + 2ull * TFS_GSPACE,
       "group regions: %u bytes from offset 38", TFS_GSPACE);
    ok(tfs_last_group(39) == 0 && tfs_last_group(tfs_group_off(1)) == 0 &&
           tfs_last_group(tfs_group_off(1) + 1) == 1 && tfs_last_group(tfs_group_off(7) + 80) == 7,
       "the last group from the stored length (a region boundary ends the group before)");
    ok(TFS_GIDX_TYPE >= 0x80 && TFS_GIDX_TYPE <= 0xfd && TFS_GIDX_TYPE != TFS_HDR_TYPE,
       "the group index chunk is skippable (0x%02x)", TFS_GIDX_TYPE);
    ok(tfs_nchunks(65536) == 1 && tfs_nchunks(65537) == 2 && tfs_chunk_len(1, 65537) == 1 &&
           tfs_chunk_len(0, 65537) == 65536 && tfs_chunk_len(2, 65537) == 0,
       "chunk arithmetic");

    /* the index */
    x.n = 3;
    x.last_clen = 1000;
    x.rec[0] = 20000, x.rec[1] = 65544, x.rec[2] = 1008;
    tfs_gidx_build(b, &x);
    ok(b[0] == TFS_GIDX_TYPE && tiny_get_le24(b + 1) == TFS_GIDX_BODY &&
           tfs_gidx_parse(b, sizeof(b), &y) == 0 && memcmp(&x, &y, sizeof(x)) == 0,
       "an index round trips");
    ok(tfs_gidx_sum(&x, 3) == 86552 && tfs_group_end(1, &x) == tfs_group_off(1) + 80 + 86552 &&
           tfs_group_size(1, &x) == (16 + 2) * 65536ull + 1000,
       "group end and logical size from an index");
    ok(tfs_gidx_parse(b, sizeof(b) - 1, &y) == -EBADMSG, "a short index is refused");
    b[20] ^= 1;
    ok(tfs_gidx_parse(b, sizeof(b), &y) == -EBADMSG, "a flipped index byte fails its CRC");
    x.rec[2] = 1009; /* longer than 1000 bytes can be */
    tfs_gidx_build(b, &x);
    ok(tfs_gidx_parse(b, sizeof(b), &y) == -EBADMSG, "a record too long for its chunk is refused");
    x.rec[2] = 1008, x.n = 17;
    tfs_gidx_build(b, &x);
    ok(tfs_gidx_parse(b, sizeof(b), &y) == -EBADMSG, "more than 16 chunks are refused");
    memset(b, 0, sizeof(b));
    ok(tfs_gidx_parse(b, sizeof(b), &y) == -EBADMSG, "zeros (a hole) are no index");

    /* chunks */
    fill(data, 1, 1000, 1);
    tfs_raw_record(data, 1000, rec);
    ok(tfs_chunk_parse(rec, 1008, 1000, out, &raw) == 0 && raw && memcmp(out, data, 1000) == 0,
       "an uncompressed chunk parses and its CRC checks");
    rec[500] ^= 0x40;
    ok(tfs_chunk_parse(rec, 1008, 1000, out, &raw) == -EBADMSG, "a flipped payload byte fails");
    tfs_raw_record(data, 1000, rec);
    ok(tfs_chunk_parse(rec, 1008, 999, out, &raw) == -EBADMSG,
       "a chunk of the wrong length is refused");
    rec[0] = 0x05;
    ok(tfs_chunk_parse(rec, 1008, 1000, out, &raw) == -EBADMSG, "a reserved type is refused");
    fill(data, 2, 5000, 0);
    {
        size_t r = record(rec, data, 5000, 0);

        ok(rec[0] == 0 && tfs_chunk_parse(rec, r, 5000, out, &raw) == 0 && !raw &&
               tfs_record_clen(rec, r) == 5000,
           "a compressed chunk is recognised (its preamble states 5000 bytes)");
        ok(tfs_chunk_parse(rec, r, 5001, out, &raw) == -EBADMSG,
           "its snappy preamble must state the chunk length");
    }

    /* whole files */
    fd = mkstemp(tmpl);
    if (fd < 0)
        bail_out("cannot create a temporary file");
    unlink(tmpl);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        if (!build(fd, NULL, sizes[i], (int)(i & 1)) || !locate_is(fd, sizes[i], 0, &t) ||
            t.keep != flen(fd) || t.nchunks != tfs_nchunks(sizes[i]) ||
            tfs_measure(fd, &logical, &stored) != 0 || logical != sizes[i]) {
            diag("size %llu", (unsigned long long)sizes[i]);
            bad++;
        }
    }
    ok(!bad, "files of 0 .. 33 chunks: logical size from the last group's index");

    st = build(fd, NULL, 40ull << 16, 1);
    tfs_measure(fd, &logical, &stored);
    ok(st > 0 && stored - (40ull << 16) < (40ull << 16) / 2000 &&
           stored == 38 + 3 * 80 + 40 * 65544 + 2 * 4,
       "incompressible: stored %llu for %llu bytes (< 0.05%% more)", (unsigned long long)stored,
       (unsigned long long)(40ull << 16));

    /* torn ends, as a crash inside an append leaves them */
    build(fd, NULL, (20ull << 16) + 100, 0);
    st = flen(fd);
    if (pwrite(fd, "\x00\x10\x00\x00junk", 8, (off_t)st) != 8)
        bail_out("write");
    ok(locate_is(fd, (20ull << 16) + 100, 1, &t) && t.keep == st,
       "a record its index does not name yet is a torn end");
    ok(repaired_is(fd, (20ull << 16) + 100) && flen(fd) == st, "cut back to the indexed end");

    build(fd, NULL, 20ull << 16, 0);
    st = flen(fd);
    if (ftruncate(fd, (off_t)(st - 10)) < 0)
        bail_out("truncate");
    ok(locate_is(fd, 19ull << 16, 1, &t) && t.fix_idx,
       "an index naming a record past the end: torn, the whole records stay");
    ok(repaired_is(fd, 19ull << 16), "the index is rewritten and the end cut");

    build(fd, NULL, 16ull << 16, 0);
    st = flen(fd);
    {
        unsigned char pad[4];

        tfs_pad_build(pad, (uint32_t)(tfs_group_off(1) - st - 4));
        if (pwrite(fd, pad, 4, (off_t)st) != 4 || ftruncate(fd, (off_t)tfs_group_off(1)) < 0)
            bail_out("write");
    }
    ok(locate_is(fd, 16ull << 16, 1, &t) && t.keep == st,
       "a full group padded, the next one not begun: torn");
    if (pwrite(fd, rec, 100, (off_t)tfs_group_off(1) + 80) != 100)
        bail_out("write");
    ok(locate_is(fd, 16ull << 16, 1, &t) && t.keep == st,
       "the next group's first record without its index: torn");
    ok(repaired_is(fd, 16ull << 16) && flen(fd) == st, "cut back to the end of the full group");

    build(fd, NULL, 5000, 0);
    if (ftruncate(fd, 38 + 50) < 0)
        bail_out("truncate");
    ok(locate_is(fd, 0, 1, &t) && repaired_is(fd, 0) && flen(fd) == 38,
       "a first group without a whole index: cut back to the header");

    build(fd, NULL, (18ull << 16) + 3, 0);
    if (pwrite(fd, "\x01", 1, (off_t)tfs_group_off(1) + 9) != 1)
        bail_out("write");
    ok(locate_is(fd, (18ull << 16) + 3, 1, &t) && t.fix_idx,
       "a last index torn by a crash is rebuilt from its records");
    ok(repaired_is(fd, (18ull << 16) + 3), "and written again");
    if (pwrite(fd, "\x01", 1, (off_t)tfs_group_off(1) + 9) != 1 ||
        pwrite(fd, "\x07", 1, (off_t)tfs_group_off(1) + 80) != 1)
        bail_out("write");
    ok(tfs_locate(fd, flen(fd), &t) == 0 && t.damaged && !t.torn && t.size == 16ull << 16 &&
           t.g == 1,
       "a corrupt last index without valid records is damage (the group before stays readable)");

    if (argc == 3) {
        FILE *lg = fopen(argv[2], "wb");
        int sfd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        uint64_t size = (40ull << 16) + 1234;
        int wr = sfd >= 0 && lg && build(sfd, lg, size, 0) > 0;

        wr = wr && tfs_locate(sfd, flen(sfd), &t) == 0 && t.size == size && !t.torn;
        if (lg)
            wr = !fclose(lg) && wr;
        if (sfd >= 0)
            close(sfd);
        ok(wr, "wrote a sample stored file of %llu logical bytes (3 groups)",
           (unsigned long long)size);
    }
    close(fd);
    return done_testing();
}
