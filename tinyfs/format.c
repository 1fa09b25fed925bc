/*
 * format.c - the stored layout of tinyfs (docs/format.md, version 2), as
 * pure functions.
 *
 * A stored file is a snappy framing-format stream: the stream identifier, a
 * skippable tinyfs header chunk, then one fixed-size region per group of 16
 * chunks (1 MiB of logical data). Region g starts at TFS_HDR_LEN + g *
 * TFS_GSPACE and holds a skippable group-index chunk (0xa2: chunk count,
 * length of the last chunk, every record length, a CRC), then the group's
 * data chunks packed back to back, then a padding chunk (0xfe) up to the
 * region's end whose body is a hole; the last group has no padding, the
 * stream ends with its last record. A chunk is found from its group's
 * index; the logical size from the stored length (which gives the last
 * group) and that group's index. Only the partial block at the end of each
 * group's data is wasted, not one per chunk.
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

uint32_t tfs_header_version(const unsigned char *p, size_t n)
{
    int kind = tfs_header_parse(p, n);

    if (kind == 0 || kind == -EBADMSG)
        return 0;
    return tiny_get_le32(p + TINY_STREAM_ID_LEN + TINY_CHUNK_HDR + 8);
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

uint64_t tfs_last_group(uint64_t stored)
{
    /* region g spans (off(g), off(g + 1)]: a file ending exactly at a region
     * boundary ends in the padding of the group before */
    return stored <= TFS_HDR_LEN ? 0 : (stored - TFS_HDR_LEN - 1) / TFS_GSPACE;
}

void tfs_gidx_build(unsigned char *p, const struct tfs_gidx *x)
{
    unsigned char *b = p + TINY_CHUNK_HDR;

    p[0] = TFS_GIDX_TYPE;
    tiny_put_le24(p + 1, TFS_GIDX_BODY);
    tiny_put_le32(b, x->n);
    tiny_put_le32(b + 4, x->last_clen);
    for (unsigned i = 0; i < TFS_GROUP; i++)
        tiny_put_le32(b + 8 + 4 * i, i < x->n ? x->rec[i] : 0);
    tiny_put_le32(b + TFS_GIDX_BODY - 4, tiny_crc32c_masked(b, TFS_GIDX_BODY - 4));
}

int tfs_gidx_parse(const unsigned char *p, size_t n, struct tfs_gidx *x)
{
    const unsigned char *b = p + TINY_CHUNK_HDR;

    if (n < TFS_GIDX_LEN || p[0] != TFS_GIDX_TYPE || tiny_get_le24(p + 1) != TFS_GIDX_BODY ||
        tiny_get_le32(b + TFS_GIDX_BODY - 4) != tiny_crc32c_masked(b, TFS_GIDX_BODY - 4))
        return -EBADMSG;
    x->n = tiny_get_le32(b);
    x->last_clen = tiny_get_le32(b + 4);
    if (x->n < 1 || x->n > TFS_GROUP || x->last_clen < 1 || x->last_clen > TFS_CHUNK)
        return -EBADMSG;
    for (unsigned i = 0; i < TFS_GROUP; i++) {
        uint32_t r = tiny_get_le32(b + 8 + 4 * i);
        uint32_t clen = i + 1 == x->n ? x->last_clen : TFS_CHUNK;

        if (i < x->n ? r < TINY_CHUNK_HDR + TINY_CHUNK_CRC + 1 || r > clen + 8 : r != 0)
            return -EBADMSG;
        x->rec[i] = r;
    }
    return 0;
}

uint64_t tfs_gidx_sum(const struct tfs_gidx *x, uint32_t k)
{
    uint64_t s = 0;

    for (uint32_t i = 0; i < k && i < TFS_GROUP; i++)
        s += x->rec[i];
    return s;
}

void tfs_pad_build(unsigned char *p, uint32_t body)
{
    p[0] = TFS_PAD_TYPE;
    tiny_put_le24(p + 1, body);
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

int tfs_chunk_parse(const unsigned char *rec, size_t rec_len, uint32_t clen, unsigned char *out,
                    int *is_raw)
{
    *is_raw = 0;
    if (clen == 0 || clen > TFS_CHUNK || tfs_record_check(rec, rec_len, clen) < 0)
        return -EBADMSG;
    if (rec[0] == TINY_CHUNK_UNCOMPRESSED) {
        const unsigned char *payload = rec + TINY_CHUNK_HDR + TINY_CHUNK_CRC;

        if (tiny_crc32c_masked(payload, clen) != tiny_get_le32(rec + TINY_CHUNK_HDR))
            return -EBADMSG;
        memcpy(out, payload, clen);
        *is_raw = 1;
    } else {
        uint32_t raw_len;

        /* the raw snappy preamble states the uncompressed length */
        if (!tiny_varint_get32(rec + TINY_CHUNK_HDR + TINY_CHUNK_CRC,
                               rec_len - TINY_CHUNK_HDR - TINY_CHUNK_CRC, &raw_len) ||
            raw_len != clen)
            return -EBADMSG;
    }
    return 0;
}

uint32_t tfs_record_clen(const unsigned char *rec, size_t avail)
{
    uint32_t body, len;

    if (avail < TINY_CHUNK_HDR + TINY_CHUNK_CRC + 1)
        return 0;
    body = tiny_get_le24(rec + 1);
    if (rec[0] == TINY_CHUNK_UNCOMPRESSED)
        return body >= 5 && body - 4 <= TFS_CHUNK ? body - 4 : 0;
    if (rec[0] != TINY_CHUNK_COMPRESSED || body < 5 ||
        !tiny_varint_get32(rec + 8, avail - 8 < body - 4 ? avail - 8 : body - 4, &len))
        return 0;
    return len >= 1 && len <= TFS_CHUNK ? len : 0;
}

size_t tfs_raw_record(const void *in, uint32_t len, unsigned char *out)
{
    out[0] = TINY_CHUNK_UNCOMPRESSED;
    tiny_put_le24(out + 1, len + TINY_CHUNK_CRC);
    tiny_put_le32(out + TINY_CHUNK_HDR, tiny_crc32c_masked(in, len));
    memcpy(out + TINY_CHUNK_HDR + TINY_CHUNK_CRC, in, len);
    return (size_t)len + TINY_CHUNK_HDR + TINY_CHUNK_CRC;
}
