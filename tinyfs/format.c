/*
 * format.c - the stored layout of tinyfs (docs/format.md), as pure functions.
 *
 * A stored file is a snappy framing-format stream: the stream identifier, a
 * skippable tinyfs header chunk, then one fixed-size slot per 64 KiB of
 * logical data. Slot i starts at TFS_HDR_LEN + i * TFS_SLOT and holds the
 * data chunk of logical bytes [i * 64 KiB, (i + 1) * 64 KiB) followed by a
 * padding chunk (0xfe) that fills the slot up to chunk length + 12 bytes.
 * The index is this arithmetic, and the logical size is a function of the
 * stored file's length; the padding bodies are holes, so st_blocks is the
 * compressed size.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "tinyfs.h"

static const unsigned char tfs_magic[8] = {'t', 'i', 'n', 'y', 'f', 's', 0, 0};

void tfs_header_build(unsigned char *p)
{
    unsigned char *b = p + TINY_STREAM_ID_LEN + TINY_CHUNK_HDR;

    memcpy(p, tiny_stream_id, TINY_STREAM_ID_LEN);
    p[TINY_STREAM_ID_LEN] = TFS_HDR_TYPE;
    tiny_put_le24(p + TINY_STREAM_ID_LEN + 1, TFS_HDR_BODY);
    memcpy(b, tfs_magic, sizeof(tfs_magic));
    tiny_put_le32(b + 8, TFS_VERSION);
    tiny_put_le32(b + 12, TFS_CHUNK);
    tiny_put_le32(b + 16, 0); /* flags */
    tiny_put_le32(b + 20, tiny_crc32c_masked(b, 20));
}

int tfs_header_parse(const unsigned char *p, size_t n)
{
    const unsigned char *b = p + TINY_STREAM_ID_LEN + TINY_CHUNK_HDR;

    if (n < TFS_HDR_LEN || memcmp(p, tiny_stream_id, TINY_STREAM_ID_LEN) != 0 ||
        p[TINY_STREAM_ID_LEN] != TFS_HDR_TYPE ||
        tiny_get_le24(p + TINY_STREAM_ID_LEN + 1) != TFS_HDR_BODY ||
        memcmp(b, tfs_magic, sizeof(tfs_magic)) != 0)
        return 0;
    if (tiny_get_le32(b + 20) != tiny_crc32c_masked(b, 20))
        return -EBADMSG;
    if (tiny_get_le32(b + 8) != TFS_VERSION || tiny_get_le32(b + 12) != TFS_CHUNK)
        return -EPROTONOSUPPORT;
    return 1;
}

uint64_t tfs_nchunks(uint64_t size)
{
    return (size + TFS_CHUNK - 1) / TFS_CHUNK;
}

uint32_t tfs_chunk_len(uint64_t idx, uint64_t size)
{
    uint64_t start = idx * TFS_CHUNK;

    if (start >= size)
        return 0;
    return size - start >= TFS_CHUNK ? TFS_CHUNK : (uint32_t)(size - start);
}

uint64_t tfs_stored_len(uint64_t size)
{
    uint64_t n = tfs_nchunks(size);

    if (n == 0)
        return TFS_HDR_LEN;
    return TFS_HDR_LEN + (n - 1) * TFS_SLOT + tfs_chunk_len(n - 1, size) + TFS_SLOT_EXTRA;
}

int tfs_logical_size(uint64_t stored, uint64_t *size)
{
    uint64_t r, q, rem;

    *size = 0;
    if (stored == TFS_HDR_LEN)
        return 0;
    if (stored < TFS_HDR_LEN + TFS_SLOT_EXTRA + 1)
        return -EBADMSG;
    /* The last slot holds 1..64 KiB plus 12 bytes: a range narrower than a
     * slot, so the split is unique. */
    r = stored - TFS_HDR_LEN - TFS_SLOT_EXTRA - 1;
    q = r / TFS_SLOT;
    rem = r % TFS_SLOT;
    if (rem >= TFS_CHUNK) {
        *size = (q + 1) * TFS_CHUNK;
        return -EBADMSG;
    }
    *size = q * TFS_CHUNK + rem + 1;
    return 0;
}

int tfs_record_check(const unsigned char *rec, size_t rec_len, uint32_t clen)
{
    size_t body;

    if (rec_len < TINY_CHUNK_HDR + TINY_CHUNK_CRC || rec_len > (size_t)clen + 8)
        return -EBADMSG;
    if (rec[0] != TINY_CHUNK_COMPRESSED && rec[0] != TINY_CHUNK_UNCOMPRESSED)
        return -EBADMSG;
    body = tiny_get_le24(rec + 1);
    if (body + TINY_CHUNK_HDR != rec_len)
        return -EBADMSG;
    if (rec[0] == TINY_CHUNK_UNCOMPRESSED && body != (size_t)clen + TINY_CHUNK_CRC)
        return -EBADMSG;
    return 0;
}

int tfs_slot_parse(const unsigned char *s, size_t n, uint32_t clen, unsigned char *out, int *is_raw)
{
    size_t body, rec, pad;

    *is_raw = 0;
    if (clen == 0 || clen > TFS_CHUNK || n < TINY_CHUNK_HDR)
        return -EBADMSG;
    body = tiny_get_le24(s + 1);
    rec = TINY_CHUNK_HDR + body;
    /* record + padding header must fit the slot of clen + 12 bytes */
    if (rec + TINY_CHUNK_HDR > n || rec + TINY_CHUNK_HDR > (size_t)clen + TFS_SLOT_EXTRA)
        return -EBADMSG;
    if (tfs_record_check(s, rec, clen) < 0)
        return -EBADMSG;
    pad = tiny_get_le24(s + rec + 1);
    if (s[rec] != TFS_PAD_TYPE || rec + TINY_CHUNK_HDR + pad != (size_t)clen + TFS_SLOT_EXTRA)
        return -EBADMSG;
    if (s[0] == TINY_CHUNK_UNCOMPRESSED) {
        const unsigned char *payload = s + TINY_CHUNK_HDR + TINY_CHUNK_CRC;

        if (tiny_crc32c_masked(payload, clen) != tiny_get_le32(s + TINY_CHUNK_HDR))
            return -EBADMSG;
        memcpy(out, payload, clen);
        *is_raw = 1;
    } else {
        uint32_t raw_len;

        /* the raw snappy preamble states the uncompressed length */
        if (!tiny_varint_get32(s + TINY_CHUNK_HDR + TINY_CHUNK_CRC, body - TINY_CHUNK_CRC,
                               &raw_len) ||
            raw_len != clen)
            return -EBADMSG;
    }
    return (int)rec;
}

void tfs_pad_build(unsigned char *p, size_t rec_len, uint32_t clen)
{
    p[0] = TFS_PAD_TYPE;
    tiny_put_le24(p + 1, (uint32_t)(clen + TFS_SLOT_EXTRA - rec_len - TINY_CHUNK_HDR));
}

size_t tfs_raw_record(const void *in, uint32_t len, unsigned char *out)
{
    out[0] = TINY_CHUNK_UNCOMPRESSED;
    tiny_put_le24(out + 1, len + TINY_CHUNK_CRC);
    tiny_put_le32(out + TINY_CHUNK_HDR, tiny_crc32c_masked(in, len));
    memcpy(out + TINY_CHUNK_HDR + TINY_CHUNK_CRC, in, len);
    return (size_t)len + TINY_CHUNK_HDR + TINY_CHUNK_CRC;
}
