/*
 * format.h - the snappy framing format and raw-stream header, as shared by
 * tinyd (which encodes and decodes) and libtiny (which only walks headers to
 * cut streams into units), with the errno text all the programs print.
 * Internal: not installed.
 *
 * Framing format (snappy's framing_format.txt): a stream is a sequence of
 * chunks, each a 1-byte type, a 3-byte little-endian length, and `length`
 * bytes of data. Data chunks start with the masked CRC-32C of their
 * uncompressed payload.
 */
#ifndef TINY_FORMAT_H
#define TINY_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "tiny.h"

enum tiny_chunk_type {
    TINY_CHUNK_COMPRESSED = 0x00,
    TINY_CHUNK_UNCOMPRESSED = 0x01,
    TINY_CHUNK_RESERVED_UNSKIPPABLE_FIRST = 0x02, /* 0x02..0x7f: reject */
    TINY_CHUNK_RESERVED_UNSKIPPABLE_LAST = 0x7f,
    TINY_CHUNK_SKIPPABLE_FIRST = 0x80, /* 0x80..0xfd: skip */
    TINY_CHUNK_SKIPPABLE_LAST = 0xfd,
    TINY_CHUNK_PADDING = 0xfe,
    TINY_CHUNK_STREAM_ID = 0xff,
};

#define TINY_CHUNK_HDR        4u
#define TINY_CHUNK_CRC        4u
#define TINY_CHUNK_LEN_MAX    0xffffffu /* 24-bit length field */
/* Largest data-chunk body a decoder accepts: CRC + snappy bound of 64 KiB. */
#define TINY_CHUNK_BODY_MAX   (TINY_CHUNK_CRC + 32u + TINY_CHUNK_MAX + TINY_CHUNK_MAX / 6u)
/* Largest framed data chunk a tinyd encoder emits: compressed only when smaller. */
#define TINY_CHUNK_RECORD_MAX (TINY_CHUNK_HDR + TINY_CHUNK_CRC + TINY_CHUNK_MAX)

extern const unsigned char tiny_stream_id[TINY_STREAM_ID_LEN]; /* ff 06 00 00 "sNaPpY" */

/* Worst-case snappy_max_compressed_length() of n bytes, as snappy defines it. */
static inline size_t tiny_snappy_bound(size_t n)
{
    return 32 + n + n / 6;
}

static inline void tiny_put_le24(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
}

static inline uint32_t tiny_get_le24(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

static inline void tiny_put_le32(unsigned char *p, uint32_t v)
{
    tiny_put_le24(p, v);
    p[3] = (unsigned char)(v >> 24);
}

static inline uint32_t tiny_get_le32(const unsigned char *p)
{
    return tiny_get_le24(p) | (uint32_t)p[3] << 24;
}

/* Writes the varint of v (at most 10 bytes) and returns its length. */
size_t tiny_varint_put(unsigned char *p, uint64_t v);

/* Reads a varint of at most 5 bytes (a 32-bit value, as snappy's header).
 * Returns its length, or 0 if it is truncated or too long. */
size_t tiny_varint_get32(const unsigned char *p, size_t n, uint32_t *v);

/* strerror() of @err (either sign) as every message of tinyd, tiny, tinyfs
 * and tiny_strerror() writes it: first letter lowercased unless it starts
 * an acronym. In one of a few thread-local buffers used in turn, so several
 * calls in one message each keep their text. */
const char *tiny_errno_text(int err);

#endif /* TINY_FORMAT_H */
