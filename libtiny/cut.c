/*
 * cut.c - how a request's input becomes units.
 *
 * At submission tiny_req_plan() checks the request per op and fixes the
 * size of its units; after that tiny_req_prepare_next() cuts the next unit
 * into req->nu each time req.c asks for it, so a large request is cut as it
 * is sent, never more than one unit ahead. A unit names its input as a list
 * of segments (struct tiny_src) and copies nothing until req.c sends it:
 *  - COMPRESS and FRAME_COMPRESS: consecutive pieces of whole 64 KiB blocks
 *    (the block the encoders work in, which tiny_max_output() bounds);
 *  - FRAME_DECOMPRESS: whole chunks, as many as fit a slot with their
 *    output and the planned unit size;
 *  - DECOMPRESS: the whole stream, or, when it is too large for one unit,
 *    the self-contained streams that rawsplit.c cuts it into;
 *  - CHUNK_COMPRESS, CHUNK_DECOMPRESS and every zero-copy request: one unit.
 * A unit whose input or output may not fit its slot is staged: tinyd takes
 * the one and gives back the other in slot-sized pieces.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define BLOCK 65536u

size_t tiny_max_output(int op, size_t n)
{
    size_t full = n / BLOCK, rest = n % BLOCK;

    switch (op) {
    case TINY_OP_COMPRESS:
        return 10 + full * tiny_snappy_bound(BLOCK) + (rest ? tiny_snappy_bound(rest) : 0);
    case TINY_OP_FRAME_COMPRESS:
        return TINY_STREAM_ID_LEN + full * (TINY_CHUNK_OVERHEAD + BLOCK) +
               (rest ? TINY_CHUNK_OVERHEAD + rest : 0);
    case TINY_OP_CHUNK_COMPRESS:
        return TINY_CHUNK_OVERHEAD + n;
    default:
        return 0;
    }
}

/* ---- cutting ----------------------------------------------------------- */

static int cut_compress(tiny_req *req, struct tiny_unit *u)
{
    size_t rem = req->in_len - req->cut_pos;
    size_t len = rem < req->target ? rem : req->target;

    if (rem == 0 && req->first_done)
        return 0;
    tiny_src_add(&u->src, TINY_SRC_IN, req->cut_pos, len);
    req->cut_pos += len;
    u->staged = tiny_max_output(req->op, len) > req->conn->slot_size;
    if (!req->first_done && req->op == TINY_OP_COMPRESS)
        u->arg = req->in_len;
    return 1;
}

/* Output bound of a framed chunk at @p, as tiny_frame_scan() counts it. */
static size_t chunk_bound(const unsigned char *p, size_t clen)
{
    if (p[0] == TINY_CHUNK_COMPRESSED)
        return TINY_CHUNK_MAX;
    if (p[0] == TINY_CHUNK_UNCOMPRESSED)
        return clen - TINY_CHUNK_HDR - TINY_CHUNK_CRC;
    return 0;
}

/* Whole chunks per unit; the stream was checked by tiny_frame_scan(). */
static int cut_frame(tiny_req *req, struct tiny_unit *u)
{
    const unsigned char *in = req->in;
    size_t ss = req->conn->slot_size;
    size_t start = req->cut_pos, p = start, bound = 0;

    while (p < req->in_len) {
        size_t clen = TINY_CHUNK_HDR + tiny_get_le24(in + p + 1);
        size_t cb = chunk_bound(in + p, clen);

        if (p == start && clen + cb > ss) {
            if (in[p] > TINY_CHUNK_UNCOMPRESSED) {
                /* A skippable chunk too large for a slot: skip it here, as
                 * tinyd would, unless the stream must start with its id. */
                if (!req->first_done && !(req->flags & TINY_F_CONTINUE))
                    return -EBADMSG;
                start = p = p + clen;
                continue;
            }
            u->staged = 1;
            p += clen;
            break;
        }
        if (p > start && ((p - start) + clen + bound + cb > ss || bound + cb > req->target))
            break;
        p += clen;
        bound += cb;
    }
    req->cut_pos = p;
    if (p == start)
        return 0;
    tiny_src_add(&u->src, TINY_SRC_IN, start, p - start);
    return 1;
}

static int cut_raw(tiny_req *req, struct tiny_unit *u)
{
    size_t ss = req->conn->slot_size;
    struct tiny_rawunit ru;
    int r;

    if (!req->split) {
        if (req->first_done)
            return 0;
        tiny_src_add(&u->src, TINY_SRC_IN, 0, req->in_len);
        u->expect = req->raw_total;
        u->staged = !(req->in_len <= ss && req->raw_total <= ss);
        return 1;
    }
    r = tiny_rawsplit_next(&req->rs, &ru);
    if (r <= 0)
        return r;
    u->src = ru.src;
    u->arg = ru.hist;
    u->need_hist = ru.hist > 0;
    u->out_start = ru.out_start;
    u->expect = ru.out_len;
    u->staged = !(ru.src.len <= ss && ru.out_len <= ss);
    return 1;
}

static int cut_single(tiny_req *req, struct tiny_unit *u)
{
    size_t ss = req->conn->slot_size;

    if (req->first_done)
        return 0;
    tiny_src_add(&u->src, TINY_SRC_IN, 0, req->in_len);
    if (req->op == TINY_OP_CHUNK_COMPRESS) {
        u->staged = tiny_max_output(req->op, req->in_len) > ss;
    } else {
        if (req->in_len < TINY_CHUNK_HDR + TINY_CHUNK_CRC)
            return -EBADMSG;
        u->staged = req->in_len + chunk_bound(req->in, req->in_len) > ss;
        if (u->staged && req->in_len > TINY_STAGE_MAX)
            return -EBADMSG;
    }
    return 1;
}

void tiny_req_prepare_next(tiny_req *req)
{
    struct tiny_unit *u = &req->nu;
    int r;

    if (req->have_next || req->no_more || req->err)
        return;
    memset(u, 0, sizeof *u);
    u->expect = UINT64_MAX;
    if (req->buf) {
        r = !req->first_done;
        u->src.len = req->in_len;
        if (req->op == TINY_OP_COMPRESS)
            u->arg = req->in_len;
        if (req->op == TINY_OP_DECOMPRESS)
            u->expect = req->raw_total;
    } else {
        switch (req->op) {
        case TINY_OP_COMPRESS:
        case TINY_OP_FRAME_COMPRESS:
            r = cut_compress(req, u);
            break;
        case TINY_OP_FRAME_DECOMPRESS:
            r = cut_frame(req, u);
            break;
        case TINY_OP_DECOMPRESS:
            r = cut_raw(req, u);
            break;
        default:
            r = cut_single(req, u);
            break;
        }
    }
    if (r < 0) {
        req->err = r;
    } else if (r == 0) {
        req->no_more = 1;
    } else {
        u->flags = req->flags | (req->first_done ? 0 : TINY_UF_FIRST);
        req->first_done = 1;
        req->have_next = 1;
    }
}

/* Per-op checks and unit sizes, at submission. Errors in the data make the
 * request fail (returned 0 with req->err set); bad arguments are returned. */
int tiny_req_plan(tiny_req *req)
{
    size_t ss = req->conn->slot_size;

    if (req->buf)
        return tiny_req_plan_buf(req);

    switch (req->op) {
    case TINY_OP_COMPRESS:
    case TINY_OP_FRAME_COMPRESS: {
        size_t blocks = (req->in_len + BLOCK - 1) / BLOCK, k = (blocks + 1) / 2, fit = 0;

        if (req->op == TINY_OP_COMPRESS && req->in_len > UINT32_MAX)
            return -EINVAL;
        /* Half the request per unit so a blocking caller keeps two workers
         * busy, at most TINY_UNIT_TARGET, at least one block. */
        while (fit < 16 && tiny_max_output(req->op, (fit + 1) * BLOCK) <= ss)
            fit++;
        if (k > TINY_UNIT_TARGET / BLOCK)
            k = TINY_UNIT_TARGET / BLOCK;
        if (k < 1)
            k = 1;
        if (fit == 0)
            k = 1; /* staged, one block per unit */
        else if (k > fit)
            k = fit;
        req->target = k * BLOCK;
        return 0;
    }
    case TINY_OP_FRAME_DECOMPRESS: {
        size_t whole, out_max, t;
        ssize_t n;

        if (req->in_len == 0) {
            /* An empty stream continues nothing; a new one lacks its id. */
            if (!(req->flags & TINY_F_CONTINUE))
                req->err = -EBADMSG;
            req->no_more = 1;
            return 0;
        }
        n = tiny_frame_scan(req->in, req->in_len, &whole, &out_max);
        if (n < 0 || whole != req->in_len) {
            req->err = -EBADMSG;
            return 0;
        }
        t = (out_max / 2 + BLOCK - 1) / BLOCK * BLOCK;
        req->target = t < BLOCK ? BLOCK : t > TINY_UNIT_TARGET ? TINY_UNIT_TARGET : t;
        return 0;
    }
    case TINY_OP_DECOMPRESS: {
        size_t total, ob, ib;
        int r;

        if (tiny_raw_length(req->in, req->in_len, &total) < 0) {
            req->err = -EBADMSG;
            return 0;
        }
        if (total > req->out_cap) {
            req->err = -ENOSPC;
            return 0;
        }
        req->raw_total = total;
        if (total <= TINY_RAW_UNIT_MAX &&
            ((req->in_len <= ss && total <= ss) || req->in_len <= TINY_STAGE_MAX))
            return 0;
        /* Slots of 192 KiB or more take in-slot units of at most a slot;
         * smaller ones get staged units. Either way the unit's stream
         * leaves room for TINY_RAW_WINDOW bytes of history. */
        if (ss >= (192u << 10)) {
            ob = ss < TINY_UNIT_TARGET ? ss : TINY_UNIT_TARGET;
            ib = ss - TINY_RAW_WINDOW - 32;
        } else {
            ob = TINY_UNIT_TARGET;
            ib = TINY_STAGE_MAX - TINY_RAW_WINDOW - 32;
        }
        r = tiny_rawsplit_init(&req->rs, req->in, req->in_len, ob, ib);
        if (r < 0) {
            req->err = r;
            return 0;
        }
        req->split = 1;
        return 0;
    }
    case TINY_OP_CHUNK_COMPRESS:
        return req->in_len > TINY_CHUNK_MAX ? -EINVAL : 0;
    case TINY_OP_CHUNK_DECOMPRESS:
        return 0;
    default:
        return -EINVAL;
    }
}
