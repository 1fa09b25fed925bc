/*
 * tinyfs_format.c - unit tests of tinyfs's stored layout (tinyfs/format.c),
 * no daemon needed: header, size arithmetic both ways, slot parsing with
 * good and corrupt chunks. With an output path it also writes a stored
 * file of uncompressed chunks (and the logical bytes next to it) for
 * tests/70-tinyfs-format.t to decode with python3-snappy.
 *
 *   tinyfs_format [STORED_OUT LOGICAL_OUT]
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "../tinyfs/format.c"

/* An uncompressed data chunk and its padding, as tinyfs writes a slot. */
static size_t raw_slot(unsigned char *s, const unsigned char *data, uint32_t len)
{
    s[0] = TINY_CHUNK_UNCOMPRESSED;
    tiny_put_le24(s + 1, len + 4);
    tiny_put_le32(s + 4, tiny_crc32c_masked(data, len));
    memcpy(s + 8, data, len);
    tfs_pad_build(s + 8 + len, 8 + len, len);
    return len + TFS_SLOT_EXTRA;
}

static unsigned char slot[TFS_SLOT + 16], data[TFS_CHUNK], out[TFS_CHUNK];

int main(int argc, char **argv)
{
    static const uint64_t sizes[] = {
        0, 1, 100, 65535, 65536, 65537, 131072, 131073, 1000000, (1ull << 30) + 7, 5ull << 32};
    unsigned char hdr[TFS_HDR_LEN];
    int bad = 0, raw;
    uint64_t s;

    tfs_header_build(hdr);
    ok(tfs_header_parse(hdr, sizeof(hdr)) == 1, "header parses as tinyfs");
    ok(tfs_header_parse(hdr, sizeof(hdr) - 1) == 0, "a short file is plain");
    ok(memcmp(hdr, "\xff\x06\x00\x00sNaPpY", 10) == 0, "stored files start with the stream id");
    ok(hdr[10] >= 0x80 && hdr[10] <= 0xfd, "the header chunk is skippable (0x%02x)", hdr[10]);
    hdr[30] ^= 1;
    ok(tfs_header_parse(hdr, sizeof(hdr)) == -EBADMSG, "a corrupt header is detected");
    tfs_header_build(hdr);
    hdr[22] = 9; /* version */
    tiny_put_le32(hdr + 34, tiny_crc32c_masked(hdr + 14, 20));
    ok(tfs_header_parse(hdr, sizeof(hdr)) == -EPROTONOSUPPORT, "another version is refused");
    ok(tfs_header_parse((const unsigned char *)"hello, plain file with text in it......", 39) == 0,
       "plain text is plain");

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint64_t st = tfs_stored_len(sizes[i]);

        if (tfs_logical_size(st, &s) != 0 || s != sizes[i]) {
            diag("size %llu -> stored %llu -> %llu", (unsigned long long)sizes[i],
                 (unsigned long long)st, (unsigned long long)s);
            bad++;
        }
    }
    ok(!bad, "logical size -> stored length -> logical size round trips");
    bad = 0;
    for (uint64_t st = TFS_HDR_LEN; st < TFS_HDR_LEN + 3 * TFS_SLOT; st++) {
        int rc = tfs_logical_size(st, &s);

        if (rc == 0 && tfs_stored_len(s) != st)
            bad++;
    }
    ok(!bad, "every accepted stored length maps back to itself");
    ok(tfs_logical_size(TFS_HDR_LEN + 5, &s) == -EBADMSG, "a torn stored length is detected");
    ok(tfs_stored_len(1ull << 30) - (1ull << 30) < (1ull << 30) / 1000,
       "stored length overhead < 0.1%% for incompressible data");
    ok(tfs_nchunks(65536) == 1 && tfs_nchunks(65537) == 2 && tfs_chunk_len(1, 65537) == 1 &&
           tfs_chunk_len(0, 65537) == 65536 && tfs_chunk_len(2, 65537) == 0,
       "chunk arithmetic");

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 7 + i / 300);
    raw_slot(slot, data, 1000);
    ok(tfs_slot_parse(slot, 1000 + TFS_SLOT_EXTRA, 1000, out, &raw) == 1008 && raw &&
           memcmp(out, data, 1000) == 0,
       "an uncompressed slot parses and its CRC checks");
    slot[500] ^= 0x40;
    ok(tfs_slot_parse(slot, 1000 + TFS_SLOT_EXTRA, 1000, out, &raw) == -EBADMSG,
       "a flipped payload byte fails the CRC");
    raw_slot(slot, data, 1000);
    ok(tfs_slot_parse(slot, 1000 + TFS_SLOT_EXTRA, 999, out, &raw) == -EBADMSG,
       "a chunk of the wrong length is refused");
    slot[1008] = 0x00;
    ok(tfs_slot_parse(slot, 1000 + TFS_SLOT_EXTRA, 1000, out, &raw) == -EBADMSG,
       "a broken padding chunk is refused");
    raw_slot(slot, data, 1000);
    slot[0] = 0x05;
    ok(tfs_slot_parse(slot, 1000 + TFS_SLOT_EXTRA, 1000, out, &raw) == -EBADMSG,
       "a reserved chunk type is refused");
    memset(slot, 0, sizeof(slot));
    ok(tfs_slot_parse(slot, TFS_SLOT, TFS_CHUNK, out, &raw) == -EBADMSG,
       "a slot of zeros (a hole) is refused");
    raw_slot(slot, data, TFS_CHUNK);
    ok(tfs_slot_parse(slot, TFS_SLOT, TFS_CHUNK, out, &raw) == TFS_CHUNK + 8 && raw &&
           tiny_get_le24(slot + TFS_CHUNK + 9) == 0,
       "a full incompressible slot has an empty padding chunk");
    {
        /* a compressed record of 20 x 'a': varint 20, literal "a", copy 19 at offset 1 */
        unsigned char c[32] = {0x00, 0, 0, 0, 0, 0, 0, 0, 20, 0x00, 'a', 0x4a, 0x01, 0x00};

        tiny_put_le24(c + 1, 4 + 6);
        tiny_put_le32(c + 4, tiny_crc32c_masked("aaaaaaaaaaaaaaaaaaaa", 20));
        tfs_pad_build(c + 14, 14, 20);
        ok(tfs_slot_parse(c, 20 + TFS_SLOT_EXTRA, 20, out, &raw) == 14 && !raw,
           "a compressed slot is recognised and left to tinyd");
        tfs_pad_build(c + 14, 14, 21);
        ok(tfs_slot_parse(c, 21 + TFS_SLOT_EXTRA, 21, out, &raw) == -EBADMSG,
           "its snappy preamble must state the chunk length");
    }

    {
        /* what tinyfs stores when tinyd is unavailable */
        size_t n;

        for (uint32_t k = 0; k < 5000; k++)
            data[k] = (unsigned char)(k * 7 + k / 13);
        n = tfs_raw_record(data, 5000, slot);
        tfs_pad_build(slot + n, n, 5000);
        ok(n == 5008 && tfs_record_check(slot, n, 5000) == 0 &&
               tfs_slot_parse(slot, 5000 + TFS_SLOT_EXTRA, 5000, out, &raw) == 5008 && raw &&
               memcmp(out, data, 5000) == 0,
           "tfs_raw_record builds a valid uncompressed chunk");
    }

    if (argc == 3) {
        /* 3 chunks: 64 KiB, 64 KiB, 1234 bytes */
        FILE *st = fopen(argv[1], "wb"), *lg = fopen(argv[2], "wb");
        uint64_t size = 2 * TFS_CHUNK + 1234;
        int wr = st && lg;

        tfs_header_build(hdr);
        wr = wr && fwrite(hdr, 1, sizeof(hdr), st) == sizeof(hdr);
        for (uint64_t i = 0; i < tfs_nchunks(size) && wr; i++) {
            uint32_t len = tfs_chunk_len(i, size);

            for (uint32_t k = 0; k < len; k++)
                data[k] = (unsigned char)(k * (i + 3) + k / 77);
            raw_slot(slot, data, len);
            wr = fwrite(slot, 1, len + TFS_SLOT_EXTRA, st) == len + TFS_SLOT_EXTRA &&
                 fwrite(data, 1, len, lg) == len;
        }
        wr = wr && ftell(st) == (long)tfs_stored_len(size);
        if (st)
            wr = !fclose(st) && wr;
        if (lg)
            wr = !fclose(lg) && wr;
        ok(wr, "wrote a sample stored file of %llu logical bytes", (unsigned long long)size);
    }
    return done_testing();
}
