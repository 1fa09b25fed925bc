/*
 * buf.c - zero-copy requests (tiny_buf).
 *
 * A buf holds one slot from tiny_buf_get() to tiny_buf_put(). The caller
 * writes its input straight into the slot and reads the output where tinyd
 * wrote it (tiny_buf_output()), so neither is copied. buf_geometry() places
 * the input in the slot so that the output tinyd writes from the slot's
 * start never overwrites input it has yet to read. Each tiny_buf_submit()
 * is a request of one unit in that slot (req.c), checked at submission by
 * tiny_req_plan_buf() against what the slot can hold; a buf runs one
 * request at a time.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/* Where a buf of @op takes its input in a slot of @ss bytes, and how much:
 * the compressing ops leave the worst-case output room before it; the
 * decompressing ones copy their whole input into tinyd before writing
 * output over it, except FRAME_DECOMPRESS, which goes chunk by chunk and
 * so gets the second half, its output the first. */
static size_t buf_geometry(int op, size_t ss, size_t *off)
{
    size_t lo = 0, hi = ss;

    *off = 0;
    switch (op) {
    case TINY_OP_COMPRESS:
    case TINY_OP_FRAME_COMPRESS:
    case TINY_OP_CHUNK_COMPRESS:
        while (lo < hi) {
            size_t mid = lo + (hi - lo + 1) / 2;

            if (mid + tiny_max_output(op, mid) <= ss)
                lo = mid;
            else
                hi = mid - 1;
        }
        if (op == TINY_OP_CHUNK_COMPRESS && lo > TINY_CHUNK_MAX)
            lo = TINY_CHUNK_MAX;
        *off = ss - lo;
        return lo;
    case TINY_OP_DECOMPRESS:
        return ss < TINY_RAW_UNIT_MAX ? ss : TINY_RAW_UNIT_MAX;
    case TINY_OP_CHUNK_DECOMPRESS:
        if (ss < TINY_CHUNK_MAX)
            return 0;
        return ss < TINY_CHUNK_HDR + TINY_CHUNK_BODY_MAX ? ss
                                                         : TINY_CHUNK_HDR + TINY_CHUNK_BODY_MAX;
    case TINY_OP_FRAME_DECOMPRESS:
        *off = ss / 2;
        return ss - ss / 2;
    }
    return 0;
}

/* Checks a buf request at submission, as tiny_req_plan() does for the others: bad
 * arguments are returned, bad data fails the request. */
int tiny_req_plan_buf(tiny_req *req)
{
    tiny_buf *b = req->buf;
    size_t n, whole;
    ssize_t k;

    if (req->in_len > b->in_cap)
        return -EINVAL;
    switch (req->op) {
    case TINY_OP_DECOMPRESS:
        if (tiny_raw_length(req->in, req->in_len, &n) < 0) {
            req->err = -EBADMSG;
            return 0;
        }
        if (n > TINY_RAW_UNIT_MAX || n > req->conn->slot_size)
            return -E2BIG;
        req->raw_total = n;
        return 0;
    case TINY_OP_FRAME_DECOMPRESS:
        if (req->in_len == 0)
            return 0; /* tinyd decides: an empty stream lacks its id */
        k = tiny_frame_scan(req->in, req->in_len, &whole, &n);
        if (k < 0 || whole != req->in_len) {
            req->err = -EBADMSG;
            return 0;
        }
        /* The scan bounds a compressed chunk by 64 KiB; its preamble says
         * exactly (and tinyd checks that it is true). */
        n = 0;
        for (size_t p = 0; p < req->in_len;) {
            const unsigned char *h = req->in + p;
            size_t len = tiny_get_le24(h + 1), m = 0;

            if (h[0] == TINY_CHUNK_UNCOMPRESSED)
                m = len - TINY_CHUNK_CRC;
            else if (h[0] == TINY_CHUNK_COMPRESSED &&
                     tiny_raw_length(h + TINY_CHUNK_HDR + TINY_CHUNK_CRC, len - TINY_CHUNK_CRC,
                                     &m) < 0)
                m = TINY_CHUNK_MAX; /* tinyd rejects it */
            n += m;
            p += TINY_CHUNK_HDR + len;
        }
        return n > b->in_off ? -E2BIG : 0;
    }
    return 0;
}

static int buf_get(tiny_conn *conn, int op, tiny_buf **bufp, void **in, size_t *in_cap, int block)
{
    tiny_req tmp = {.conn = conn, .progress = 1};
    tiny_buf *b;
    unsigned slot;
    int r;

    if (bufp)
        *bufp = NULL;
    if (!conn || !bufp || !in || !in_cap || !tiny_op_known(op))
        return -EINVAL;
    b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->conn = conn;
    b->op = op;
    b->in_cap = buf_geometry(op, conn->slot_size, &b->in_off);
    if (b->in_cap == 0) {
        free(b);
        return -E2BIG;
    }
    r = tiny_slot_acquire(&tmp, block, &slot);
    if (r < 0) {
        free(b);
        return r;
    }
    b->slot = slot;
    *in = tiny_slot_ptr(conn, slot) + b->in_off;
    *in_cap = b->in_cap;
    *bufp = b;
    return 0;
}

int tiny_buf_get(tiny_conn *conn, int op, tiny_buf **bufp, void **in, size_t *in_cap)
{
    return buf_get(conn, op, bufp, in, in_cap, 1);
}

int tiny_buf_tryget(tiny_conn *conn, int op, tiny_buf **bufp, void **in, size_t *in_cap)
{
    return buf_get(conn, op, bufp, in, in_cap, 0);
}

int tiny_buf_submit(tiny_buf *buf, unsigned flags, size_t in_len, tiny_callback cb, void *arg,
                    tiny_req **reqp)
{
    unsigned char *s;
    int r;

    if (reqp)
        *reqp = NULL;
    if (!buf || in_len > buf->in_cap || atomic_exchange(&buf->busy, 1))
        return -EINVAL;
    s = tiny_slot_ptr(buf->conn, buf->slot);
    /* Without a callback the caller's tiny_wait() collects the reply
     * itself, as for tiny_run(): a buf request is one unit, sent here, so
     * nothing is left for a progress thread to move. */
    r = tiny_req_submit(buf->conn, buf->op, flags, s + buf->in_off, in_len, s,
                        buf->op == TINY_OP_FRAME_DECOMPRESS ? buf->in_off : buf->conn->slot_size,
                        cb, arg, !cb, buf, reqp);
    if (r < 0)
        atomic_store(&buf->busy, 0);
    return r;
}

ssize_t tiny_buf_run(tiny_buf *buf, unsigned flags, size_t in_len)
{
    tiny_req *req;
    int r = tiny_buf_submit(buf, flags, in_len, NULL, NULL, &req);

    return r < 0 ? r : tiny_wait(req);
}

const void *tiny_buf_output(const tiny_buf *buf)
{
    return buf ? tiny_slot_ptr(buf->conn, buf->slot) : NULL;
}

void tiny_buf_put(tiny_buf *buf)
{
    tiny_req tmp = {0};

    if (!buf)
        return;
    tmp.conn = buf->conn;
    tmp.progress = 1;
    tmp.inflight = 1;
    tiny_slot_release(&tmp, buf->slot);
    free(buf);
}
