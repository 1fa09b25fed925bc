/*
 * fuzz_tinyfs_format.c - libFuzzer target for tinyfs's stored-file parser
 * (tinyfs/format.c): the input is a whole stored file. It is classified by
 * its header, its logical size is derived from its length, and every slot
 * is parsed the way tinyfs/file.c loads a chunk (a buffer of exactly the
 * bytes read, output of exactly 64 KiB), so ASan sees any overread.
 *
 * Beyond ASan/UBSan it checks: the size arithmetic round-trips both ways;
 * an accepted slot's record fits the slot, and an uncompressed one really
 * carries clen bytes with the right CRC.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "../../tinyfs/tinyfs.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t logical = 0, x = 0, s2 = 0;
    unsigned char *out, *hdr;
    int kind, r;

    /* The arithmetic alone, on a 48-bit size taken from the input. */
    memcpy(&x, data, size < 6 ? size : 6);
    CHECK(tfs_logical_size(tfs_stored_len(x), &s2) == 0 && s2 == x);
    if (tfs_logical_size(x, &s2) == 0)
        CHECK(tfs_stored_len(s2) == x);

    hdr = malloc(size < TFS_HDR_LEN ? size + 1 : TFS_HDR_LEN);
    memcpy(hdr, data, size < TFS_HDR_LEN ? size : TFS_HDR_LEN);
    kind = tfs_header_parse(hdr, size < TFS_HDR_LEN ? size : TFS_HDR_LEN);
    free(hdr);
    CHECK(kind == 0 || kind == 1 || kind == -EBADMSG || kind == -EPROTONOSUPPORT);
    if (kind != 1)
        return 0;
    r = tfs_logical_size(size, &logical);
    CHECK(r == 0 || r == -EBADMSG);
    CHECK(logical <= size);
    out = malloc(TFS_CHUNK);
    for (uint64_t i = 0; i < tfs_nchunks(logical); i++) {
        uint32_t clen = tfs_chunk_len(i, logical);
        uint64_t off = tfs_slot_off(i);
        size_t n = clen + TFS_SLOT_EXTRA;
        unsigned char *s;
        int raw = -1, rec;

        CHECK(clen >= 1 && clen <= TFS_CHUNK);
        if (off > size || size - off < n)
            break; /* file.c: "stored file is truncated" */
        s = malloc(n);
        memcpy(s, data + off, n);
        rec = tfs_slot_parse(s, n, clen, out, &raw);
        CHECK(rec == -EBADMSG || (rec >= 8 && (size_t)rec + TINY_CHUNK_HDR <= n));
        if (rec >= 0) {
            CHECK(tfs_record_check(s, (size_t)rec, clen) == 0);
            if (raw) {
                CHECK(s[0] == TINY_CHUNK_UNCOMPRESSED && (size_t)rec == clen + 8u);
                CHECK(tiny_crc32c_masked(out, clen) == tiny_get_le32(s + 4));
            } else {
                CHECK(s[0] == TINY_CHUNK_COMPRESSED);
            }
        }
        free(s);
    }
    free(out);
    return 0;
}
