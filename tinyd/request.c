/*
 * request.c - the checks of a client's messages that need nothing but the
 * message and the client's geometry. The reader thread (reader.c) calls
 * them before it touches a slot; tests/fuzz/fuzz_request.c calls them with
 * arbitrary bytes. Every length and offset is checked without overflow:
 * sums are compared as differences against bounds already checked.
 */
#include <errno.h>

#include "codec.h"
#include "request.h"
#include "tinyd.h"

enum req_verdict req_classify(const struct tiny_msg *m, long n, bool *answer, const char **why)
{
    const struct tiny_msg_submit *s = &m->u.submit;

    *answer = false;
    *why = NULL;
    if (tiny_msg_check(m, n) < 0) {
        /* The tag is only readable in a message of the right size. */
        *answer = n == (long)TINY_MSG_SIZE && s->tag < TINY_TAGS_MAX;
        *why = n == (long)TINY_MSG_SIZE ? "protocol error: bad magic or version"
                                        : "protocol error: bad message size";
        return REQ_DROP;
    }
    if (m->hdr.type == TINY_MSG_BYE)
        return REQ_BYE;
    if (s->tag >= TINY_TAGS_MAX) {
        *why = "protocol error: bad tag";
        return REQ_DROP;
    }
    switch (m->hdr.type) {
    case TINY_MSG_SUBMIT:
    case TINY_MSG_PIECE:
    case TINY_MSG_FETCH:
    case TINY_MSG_STATS:
        return REQ_SERVE;
    }
    *answer = true;
    *why = "protocol error: unexpected message type";
    return REQ_DROP;
}

int req_submit_check(const struct tiny_msg_submit *s, uint32_t n_slots, size_t slot_size)
{
    const uint32_t known = TINY_F_NO_STREAM_ID | TINY_F_CONTINUE | TINY_UF_FIRST | TINY_UF_STAGED;
    struct unit tmp = {0};

    if (s->slot >= n_slots || !tiny_op_known(s->op) || (s->flags & ~known))
        return -EINVAL;
    if (s->flags & TINY_UF_STAGED) {
        if (s->in_off != 0 || s->in_len == 0)
            return -EINVAL;
        if (s->in_len > TINY_STAGE_MAX)
            return -E2BIG;
    } else if (s->in_off > slot_size || s->in_len > slot_size - s->in_off) {
        return -EINVAL;
    }
    tmp.op = s->op;
    tmp.flags = s->flags;
    tmp.in_len = s->in_len;
    tmp.arg = s->arg;
    return codec_check(&tmp);
}

int req_piece_check(uint64_t len, size_t slot_size, uint64_t in_len, uint64_t got)
{
    if (len == 0 || len > slot_size || got > in_len || len > in_len - got)
        return -EINVAL;
    return 0;
}
