/*
 * codec.c - the operations of tiny_proto.h, step by step.
 *
 * A step reads at most one 64 KiB chunk of the unit's input into private
 * memory (or uses the private staging buffer) and computes with snappy from
 * there, so no decision snappy takes depends on memory the client can change
 * underneath it. The output goes straight into the slot when the worst case
 * fits there (out_direct()), else into private scratch and is then appended
 * (to the slot, from offset 0, or to the staging buffer). Writing into the
 * slot is safe against a client scribbling on it: snappy's compressor never
 * reads its output, and its decompressor reads back earlier output only at
 * offsets it has validated against positions, never against the bytes it
 * finds there, so a scribbling client only spoils its own output.
 *
 * Raw COMPRESS: snappy 1.1.x compresses in independent 64 KiB blocks, so
 * compressing each 64 KiB block alone and dropping its varint length
 * header gives, concatenated after varint(total length), exactly
 * snappy_compress() of the whole input.
 *
 * snappy_status is converted to an errno in snappy_errno() and nowhere
 * else.
 */
#include <errno.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "format.h"

#define OUT_SCRATCH                                                                                \
    (TINY_RAW_UNIT_MAX > TINY_CHUNK_RECORD_MAX + 64u + TINY_CHUNK_MAX / 6u                         \
         ? TINY_RAW_UNIT_MAX                                                                       \
         : TINY_CHUNK_RECORD_MAX + 64u + TINY_CHUNK_MAX / 6u)

static int snappy_errno(snappy_status st)
{
    switch (st) {
    case SNAPPY_OK:
        return 0;
    case SNAPPY_INVALID_INPUT:
        return -EBADMSG;
    case SNAPPY_BUFFER_TOO_SMALL:
        return -ENOSPC;
    }
    return -EIO;
}

int codec_ctx_init(struct codec_ctx *x)
{
    x->in = malloc(CODEC_RAW_IN_MAX);
    x->out = malloc(OUT_SCRATCH);
    if (!x->in || !x->out) {
        codec_ctx_free(x);
        return -ENOMEM;
    }
    return 0;
}

void codec_ctx_free(struct codec_ctx *x)
{
    if (!x)
        return;
    free(x->in);
    free(x->out);
    x->in = x->out = NULL;
}

bool codec_compressing(unsigned op)
{
    return op == TINY_OP_COMPRESS || op == TINY_OP_FRAME_COMPRESS || op == TINY_OP_CHUNK_COMPRESS;
}

int codec_check(const struct unit *u)
{
    switch (u->op) {
    case TINY_OP_COMPRESS:
        if ((u->flags & TINY_UF_FIRST) && (u->arg < u->in_len || u->arg > UINT32_MAX))
            return -EINVAL;
        return 0;
    case TINY_OP_DECOMPRESS:
        if (u->in_len > CODEC_RAW_IN_MAX)
            return -E2BIG;
        if (u->arg > TINY_RAW_UNIT_MAX)
            return -EINVAL;
        return 0;
    case TINY_OP_FRAME_COMPRESS:
    case TINY_OP_FRAME_DECOMPRESS:
        return 0;
    case TINY_OP_CHUNK_COMPRESS:
        return u->in_len > TINY_CHUNK_MAX ? -EINVAL : 0;
    case TINY_OP_CHUNK_DECOMPRESS:
        return u->in_len > TINY_CHUNK_HDR + TINY_CHUNK_BODY_MAX ? -EINVAL : 0;
    }
    return -EINVAL;
}

uint64_t codec_step_cost(const struct unit *u)
{
    uint64_t rem = u->in_len - u->in_pos;

    /* A fixed part so that empty and tiny units still cost something. */
    if (u->op == TINY_OP_DECOMPRESS)
        return 256 + u->in_len;
    return 256 + (rem < CODEC_STEP_MAX ? rem : CODEC_STEP_MAX);
}

/* Input bytes [off, off+len) of the unit, in private memory. */
static const unsigned char *get_in(struct codec_ctx *x, const struct unit *u,
                                   const unsigned char *slot, uint64_t off, size_t len)
{
    if (u->flags & TINY_UF_STAGED)
        return u->stage_in + off;
    memcpy(x->in, slot + u->in_off + off, len);
    return x->in;
}

/* Makes room for @len more bytes of staged output. */
static int stage_grow(struct unit *u, size_t len)
{
    size_t need = u->out_len + len, cap;
    unsigned char *p;
    int r;

    if (need <= u->stage_out_cap)
        return 0;
    if (need > TINY_STAGE_MAX)
        return -E2BIG;
    cap = u->stage_out_cap ? u->stage_out_cap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > TINY_STAGE_MAX)
        cap = TINY_STAGE_MAX;
    r = mem_reserve(cap - u->stage_out_cap);
    if (r < 0)
        return r;
    p = realloc(u->stage_out, cap);
    if (!p) {
        mem_release(cap - u->stage_out_cap);
        return -ENOMEM;
    }
    u->stage_out = p;
    u->stage_out_cap = cap;
    return 0;
}

/* Appends output. */
static int put_out(struct unit *u, unsigned char *slot, size_t slot_size, const void *data,
                   size_t len)
{
    /* An empty staged output has no buffer yet: NULL + 0 is undefined. */
    if (len == 0)
        return 0;
    if (u->flags & TINY_UF_STAGED) {
        int r = stage_grow(u, len);
        if (r < 0)
            return r;
        memcpy(u->stage_out + u->out_len, data, len);
    } else {
        if (len > slot_size || u->out_len > slot_size - len)
            return -ENOSPC;
        memcpy(slot + u->out_len, data, len);
    }
    u->out_len += len;
    return 0;
}

/* Where @len bytes of output can be written directly: the slot at the end
 * of the output, when they fit there (in-slot units) without touching input
 * from offset @unread on, which no step has copied yet; else NULL. The
 * bound is the worst case: snappy's compressor may write a few bytes past
 * its output's end. */
static unsigned char *out_direct(const struct unit *u, unsigned char *slot, size_t slot_size,
                                 size_t len, uint64_t unread)
{
    uint64_t end = u->out_len + len;

    if ((u->flags & TINY_UF_STAGED) || len > slot_size || u->out_len > slot_size - len)
        return NULL;
    if (unread < u->in_len && end > u->in_off + unread && u->out_len < u->in_off + u->in_len)
        return NULL;
    return slot + u->out_len;
}

static size_t step_len(const struct unit *u)
{
    uint64_t rem = u->in_len - u->in_pos;
    return rem < CODEC_STEP_MAX ? (size_t)rem : CODEC_STEP_MAX;
}

static int step_compress(struct codec_ctx *x, struct unit *u, unsigned char *slot, size_t ss)
{
    size_t b = step_len(u), olen = OUT_SCRATCH, hl;
    unsigned char saved[10], *dst;
    const unsigned char *src;
    uint32_t v;
    int r;

    if (!u->started && (u->flags & TINY_UF_FIRST)) {
        unsigned char hdr[10];
        r = put_out(u, slot, ss, hdr, tiny_varint_put(hdr, u->arg));
        if (r < 0)
            return r;
    }
    if (b == 0)
        return 1;
    src = get_in(x, u, slot, u->in_pos, b);
    hl = tiny_varint_put(saved, b);
    dst = out_direct(u, slot, ss, snappy_max_compressed_length(b), u->in_pos + b);
    if (dst) {
        /* snappy writes varint(b) first. Let it land on the last hl bytes
         * of the output so far and put those back; the first step of a
         * unit has none, and moves its output down instead. */
        size_t back = u->out_len >= hl ? hl : 0;
        memcpy(saved, dst - back, back);
        olen = snappy_max_compressed_length(b);
        r = snappy_errno(snappy_compress((const char *)src, b, (char *)dst - back, &olen));
        memcpy(dst - back, saved, back);
        if (r < 0)
            return r;
        if (!back)
            memmove(dst, dst + hl, olen - hl);
        u->out_len += olen - hl;
        u->in_pos += b;
        return u->in_pos == u->in_len;
    }
    r = snappy_errno(snappy_compress((const char *)src, b, (char *)x->out, &olen));
    if (r < 0)
        return r;
    hl = tiny_varint_get32(x->out, olen, &v);
    if (!hl)
        return -EIO;
    r = put_out(u, slot, ss, x->out + hl, olen - hl);
    if (r < 0)
        return r;
    u->in_pos += b;
    return u->in_pos == u->in_len;
}

static int step_decompress(struct codec_ctx *x, struct unit *u, unsigned char *slot, size_t ss)
{
    const unsigned char *src = get_in(x, u, slot, 0, u->in_len);
    unsigned char *dst;
    size_t n;
    int r;

    r = snappy_errno(snappy_uncompressed_length((const char *)src, u->in_len, &n));
    if (r < 0)
        return r;
    if (n > TINY_RAW_UNIT_MAX)
        return -E2BIG;
    if (n < u->arg)
        return -EINVAL;
    dst = u->arg == 0 ? out_direct(u, slot, ss, n, u->in_len) : NULL;
    r = snappy_errno(
        snappy_uncompress((const char *)src, u->in_len, (char *)(dst ? dst : x->out), &n));
    if (r < 0)
        return r == -ENOSPC ? -EBADMSG : r;
    if (dst)
        u->out_len += n;
    else if ((r = put_out(u, slot, ss, x->out + u->arg, n - u->arg)) < 0)
        return r;
    u->in_pos = u->in_len;
    return 1;
}

/* One framed data chunk of the @b bytes at @src. */
static int put_chunk(struct codec_ctx *x, struct unit *u, unsigned char *slot, size_t ss,
                     const unsigned char *src, size_t b)
{
    size_t olen = OUT_SCRATCH - TINY_CHUNK_HDR - TINY_CHUNK_CRC;
    unsigned char *h = out_direct(u, slot, ss, 8 + snappy_max_compressed_length(b), u->in_pos + b);
    int r;

    if (h) {
        olen = snappy_max_compressed_length(b);
        r = snappy_errno(snappy_compress((const char *)src, b, (char *)h + 8, &olen));
        if (r < 0)
            return r;
        h[0] = olen < b ? TINY_CHUNK_COMPRESSED : TINY_CHUNK_UNCOMPRESSED;
        if (olen >= b) {
            olen = b;
            memcpy(h + 8, src, b);
        }
        tiny_put_le24(h + 1, (uint32_t)(olen + TINY_CHUNK_CRC));
        tiny_put_le32(h + TINY_CHUNK_HDR, tiny_crc32c_masked(src, b));
        u->out_len += 8 + olen;
        return 0;
    }
    h = x->out;
    tiny_put_le32(h + TINY_CHUNK_HDR, tiny_crc32c_masked(src, b));
    r = snappy_errno(snappy_compress((const char *)src, b, (char *)h + 8, &olen));
    if (r < 0)
        return r;
    if (olen < b) {
        h[0] = TINY_CHUNK_COMPRESSED;
        tiny_put_le24(h + 1, (uint32_t)(olen + TINY_CHUNK_CRC));
        return put_out(u, slot, ss, h, 8 + olen);
    }
    h[0] = TINY_CHUNK_UNCOMPRESSED;
    tiny_put_le24(h + 1, (uint32_t)(b + TINY_CHUNK_CRC));
    r = put_out(u, slot, ss, h, 8);
    if (r < 0)
        return r;
    return put_out(u, slot, ss, src, b);
}

static int step_frame_compress(struct codec_ctx *x, struct unit *u, unsigned char *slot, size_t ss)
{
    size_t b = step_len(u);
    const unsigned char *src;
    int r;

    if (u->op == TINY_OP_FRAME_COMPRESS && !u->started && (u->flags & TINY_UF_FIRST) &&
        !(u->flags & TINY_F_NO_STREAM_ID)) {
        r = put_out(u, slot, ss, tiny_stream_id, TINY_STREAM_ID_LEN);
        if (r < 0)
            return r;
    }
    if (b == 0 && u->op == TINY_OP_FRAME_COMPRESS)
        return 1;
    src = get_in(x, u, slot, u->in_pos, b);
    /* put_chunk() builds in x->out; a copied input lives in x->in. */
    r = put_chunk(x, u, slot, ss, src, b);
    if (r < 0)
        return r;
    u->in_pos += b;
    return u->in_pos == u->in_len;
}

/* Decodes the data chunk of @type whose body (CRC + data) is at @body. */
static int put_data_chunk(struct codec_ctx *x, struct unit *u, unsigned char *slot, size_t ss,
                          unsigned type, const unsigned char *body, size_t len)
{
    uint32_t crc = tiny_get_le32(body);
    const unsigned char *data = body + TINY_CHUNK_CRC;
    size_t dlen = len - TINY_CHUNK_CRC, n;
    unsigned char *dst;
    int r;

    if (type == TINY_CHUNK_COMPRESSED) {
        r = snappy_errno(snappy_uncompressed_length((const char *)data, dlen, &n));
        if (r < 0)
            return r;
        if (n > TINY_CHUNK_MAX)
            return -EBADMSG;
        dst = out_direct(u, slot, ss, n, u->in_pos + TINY_CHUNK_HDR + len);
        r = snappy_errno(
            snappy_uncompress((const char *)data, dlen, (char *)(dst ? dst : x->out), &n));
        if (r < 0)
            return -EBADMSG;
        if (dst) {
            /* The CRC is of what the client will read, whatever it did to
             * its slot meanwhile. */
            if (tiny_crc32c_masked(dst, n) != crc)
                return -EBADMSG;
            u->out_len += n;
            return 0;
        }
        data = x->out;
        dlen = n;
    } else if (dlen > TINY_CHUNK_MAX) {
        return -EBADMSG;
    }
    if (tiny_crc32c_masked(data, dlen) != crc)
        return -EBADMSG;
    return put_out(u, slot, ss, data, dlen);
}

/* Chunks until one data chunk is decoded or the input ends. */
static int step_frame_decompress(struct codec_ctx *x, struct unit *u, unsigned char *slot,
                                 size_t ss)
{
    bool need_id = !u->started && u->in_pos == 0 && (u->flags & TINY_UF_FIRST) &&
                   !(u->flags & TINY_F_CONTINUE);

    if (need_id && u->in_len == 0)
        return -EBADMSG;
    while (u->in_pos < u->in_len) {
        uint64_t rem = u->in_len - u->in_pos;
        unsigned char hdr[TINY_CHUNK_HDR];
        const unsigned char *body;
        unsigned type;
        size_t len;
        int r;

        if (rem < TINY_CHUNK_HDR)
            return -EBADMSG;
        memcpy(hdr, get_in(x, u, slot, u->in_pos, TINY_CHUNK_HDR), TINY_CHUNK_HDR);
        type = hdr[0];
        len = tiny_get_le24(hdr + 1);
        if (rem - TINY_CHUNK_HDR < len)
            return -EBADMSG;
        if (need_id && type != TINY_CHUNK_STREAM_ID)
            return -EBADMSG;
        need_id = false;
        if (type == TINY_CHUNK_STREAM_ID) {
            if (len != TINY_STREAM_ID_LEN - TINY_CHUNK_HDR)
                return -EBADMSG;
            body = get_in(x, u, slot, u->in_pos, TINY_STREAM_ID_LEN);
            if (memcmp(body, tiny_stream_id, TINY_STREAM_ID_LEN) != 0)
                return -EBADMSG;
            u->in_pos += TINY_STREAM_ID_LEN;
            continue;
        }
        if (type >= TINY_CHUNK_SKIPPABLE_FIRST) {
            u->in_pos += TINY_CHUNK_HDR + len;
            continue;
        }
        if (type > TINY_CHUNK_UNCOMPRESSED || len < TINY_CHUNK_CRC || len > TINY_CHUNK_BODY_MAX)
            return -EBADMSG;
        body = get_in(x, u, slot, u->in_pos + TINY_CHUNK_HDR, len);
        r = put_data_chunk(x, u, slot, ss, type, body, len);
        if (r < 0)
            return r;
        u->in_pos += TINY_CHUNK_HDR + len;
        break;
    }
    return u->in_pos == u->in_len;
}

static int step_chunk_decompress(struct codec_ctx *x, struct unit *u, unsigned char *slot,
                                 size_t ss)
{
    unsigned char hdr[TINY_CHUNK_HDR];
    size_t len;
    int r;

    if (u->in_len < TINY_CHUNK_HDR + TINY_CHUNK_CRC)
        return -EBADMSG;
    memcpy(hdr, get_in(x, u, slot, 0, TINY_CHUNK_HDR), TINY_CHUNK_HDR);
    len = tiny_get_le24(hdr + 1);
    if (hdr[0] > TINY_CHUNK_UNCOMPRESSED || len != u->in_len - TINY_CHUNK_HDR)
        return -EBADMSG;
    r = put_data_chunk(x, u, slot, ss, hdr[0], get_in(x, u, slot, TINY_CHUNK_HDR, len), len);
    if (r < 0)
        return r;
    u->in_pos = u->in_len;
    return 1;
}

int codec_step(struct codec_ctx *x, struct unit *u, unsigned char *slot, size_t slot_size)
{
    int r = -EINVAL;

    switch (u->op) {
    case TINY_OP_COMPRESS:
        r = step_compress(x, u, slot, slot_size);
        break;
    case TINY_OP_DECOMPRESS:
        r = step_decompress(x, u, slot, slot_size);
        break;
    case TINY_OP_FRAME_COMPRESS:
    case TINY_OP_CHUNK_COMPRESS:
        r = step_frame_compress(x, u, slot, slot_size);
        break;
    case TINY_OP_FRAME_DECOMPRESS:
        r = step_frame_decompress(x, u, slot, slot_size);
        break;
    case TINY_OP_CHUNK_DECOMPRESS:
        r = step_chunk_decompress(x, u, slot, slot_size);
        break;
    }
    u->started = true;
    return r;
}
