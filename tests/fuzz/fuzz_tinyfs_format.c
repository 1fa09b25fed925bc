/*
 * fuzz_tinyfs_format.c - libFuzzer target for tinyfs's stored-file parser
 * (tinyfs/format.c, and tinyfs/measure.c included here): the input is a
 * whole stored file, format version 2. It is classified by its header; its
 * end is located from its length and the last group's index (tfs_locate, on
 * a memfd holding the input) and repaired when torn; every group index is
 * parsed and every record the indexes name is parsed the way tinyfs/cache.c
 * loads a chunk (a buffer of exactly the record's bytes, output of exactly
 * 64 KiB), so ASan sees any overread.
 *
 * Beyond ASan/UBSan it checks: an accepted index rebuilds to the same bytes;
 * the last group's region holds the end of the file; a located end lies
 * inside the file and, once repaired, locates again as whole with the same
 * logical size; an accepted record is well formed, and an uncompressed one
 * really carries clen bytes with the right CRC.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "format.h"
#include "../../tinyfs/tinyfs.h"
#include "../../tinyfs/measure.c"

static void check_records(const uint8_t *data, size_t size, uint64_t g, const struct tfs_gidx *x,
                          uint64_t fsize, unsigned char *out)
{
    uint64_t off = tfs_group_off(g) + TFS_GIDX_LEN;

    for (uint32_t k = 0; k < x->n; k++) {
        uint64_t i = g * TFS_GROUP + k;
        uint32_t clen = tfs_chunk_len(i, fsize), n = x->rec[k];
        unsigned char *s;
        int raw = -1, rc;

        CHECK(clen >= 1 && clen <= TFS_CHUNK);
        if (off > size || size - off < n)
            return; /* cache.c: "stored file is truncated" */
        s = malloc(n);
        memcpy(s, data + off, n);
        rc = tfs_chunk_parse(s, n, clen, out, &raw);
        CHECK(rc == 0 || rc == -EBADMSG);
        if (rc == 0) {
            CHECK(tfs_record_check(s, n, clen) == 0);
            if (raw) {
                CHECK(s[0] == TINY_CHUNK_UNCOMPRESSED && n == clen + 8u);
                CHECK(tiny_crc32c_masked(out, clen) == tiny_get_le32(s + 4));
            } else {
                CHECK(s[0] == TINY_CHUNK_COMPRESSED && tfs_record_clen(s, n) == clen);
            }
        }
        free(s);
        off += n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char b[TFS_GIDX_LEN], *out, *hdr;
    struct tfs_tail t, t2;
    struct tfs_gidx x;
    uint64_t g, ng;
    int kind, fd;

    /* the arithmetic alone, on a 40-bit length taken from the input */
    {
        uint64_t len = 0;

        memcpy(&len, data, size < 5 ? size : 5);
        len += TFS_HDR_LEN + 1;
        g = tfs_last_group(len);
        CHECK(tfs_group_off(g) < len && len <= tfs_group_off(g + 1));
    }
    /* any 80 bytes as an index */
    if (size >= TFS_GIDX_LEN && tfs_gidx_parse(data, TFS_GIDX_LEN, &x) == 0) {
        CHECK(x.n >= 1 && x.n <= TFS_GROUP && tfs_gidx_sum(&x, x.n) <= TFS_GROUP * TFS_RECORD_MAX);
        tfs_gidx_build(b, &x);
        CHECK(memcmp(b, data, TFS_GIDX_LEN) == 0);
    }

    hdr = malloc(size < TFS_HDR_LEN ? size + 1 : TFS_HDR_LEN);
    memcpy(hdr, data, size < TFS_HDR_LEN ? size : TFS_HDR_LEN);
    kind = tfs_header_parse(hdr, size < TFS_HDR_LEN ? size : TFS_HDR_LEN);
    free(hdr);
    CHECK(kind == 0 || kind == 1 || kind == -EBADMSG || kind == -EPROTONOSUPPORT);
    if (kind != 1)
        return 0;

    fd = memfd_create("stored", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    CHECK(tfs_locate(fd, size, &t) == 0);
    CHECK(t.keep <= size && t.nchunks == tfs_nchunks(t.size));
    if (!t.torn && !t.damaged)
        CHECK(t.keep == size);
    out = malloc(TFS_CHUNK);
    ng = (t.nchunks + TFS_GROUP - 1) / TFS_GROUP;
    for (g = 0; g < ng; g++) {
        if (g + 1 == ng && !t.damaged) {
            x = t.idx;
        } else {
            uint64_t off = tfs_group_off(g);

            if (off > size || size - off < TFS_GIDX_LEN)
                break;
            memcpy(b, data + off, TFS_GIDX_LEN);
            if (tfs_gidx_parse(b, TFS_GIDX_LEN, &x) < 0 || x.n != TFS_GROUP ||
                x.last_clen != TFS_CHUNK)
                continue; /* store.c: "corrupt index of group" */
        }
        check_records(data, size, g, &x, t.size, out);
    }
    free(out);
    if (t.torn && !t.damaged) {
        CHECK(tfs_tail_repair(fd, &t) == 0);
        CHECK(tfs_locate(fd, t.keep, &t2) == 0);
        CHECK(!t2.torn && !t2.damaged && t2.size == t.size && t2.keep == t.keep);
    }
    close(fd);
    return 0;
}
