/*
 * fuzz_request.c - libFuzzer target for tinyd's request decoding: the
 * bytes a client puts on its private queue go through the reader's pure
 * checks (tinyd/request.c), and a SUBMIT they accept is executed by the
 * codec (tinyd/codec.c) against a segment of exactly n_slots * slot_size
 * bytes filled with client data, as a worker would. ASan then proves that
 * no accepted request reads or writes outside the segment.
 *
 * Input: byte 0 = slots - 1 (low 2 bits), byte 1 = slot size selector,
 * then up to TINY_MSG_SIZE + 64 bytes of message body (as received with
 * MSG_NOERROR), then the segment contents (repeated to fill it).
 */
#include <stdint.h>
#include <string.h>

#include "../../tinyd/codec.h"
#include "../../tinyd/request.h"
#include "stubs.h"

static struct codec_ctx ctx;

static void fill(unsigned char *p, size_t n, const uint8_t *src, size_t len)
{
    if (!len) {
        memset(p, 0, n);
        return;
    }
    for (size_t i = 0; i < n; i += len)
        memcpy(p + i, src, n - i < len ? n - i : len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    union {
        struct tiny_msg m;
        struct {
            long mtype;
            unsigned char body[TINY_MSG_SIZE + 64];
        } raw;
    } rx;
    const struct tiny_msg_submit *s = &rx.m.u.submit;
    uint32_t n_slots;
    size_t ss, n, steps = 0;
    unsigned char *seg, *slot;
    struct unit u = {0};
    const char *why;
    bool answer;
    int r;

    if (!ctx.in && codec_ctx_init(&ctx) < 0)
        abort();
    if (size < 2)
        return 0;
    n_slots = 1 + (data[0] & 3);
    ss = (size_t)TINY_SLOT_SIZE_MIN << (data[1] % 5);
    data += 2;
    size -= 2;
    n = size < sizeof(rx.raw.body) ? size : sizeof(rx.raw.body);
    memset(&rx, 0, sizeof(rx));
    rx.raw.mtype = TINY_MTYPE_DAEMON;
    memcpy(rx.raw.body, data, n);
    data += n;
    size -= n;

    switch (req_classify(&rx.m, (long)n, &answer, &why)) {
    case REQ_DROP:
        CHECK(why != NULL);
        CHECK(!answer || (n == TINY_MSG_SIZE && s->tag < TINY_TAGS_MAX));
        return 0;
    case REQ_BYE:
        CHECK(n == TINY_MSG_SIZE && rx.m.hdr.type == TINY_MSG_BYE);
        return 0;
    case REQ_SERVE:
        CHECK(n == TINY_MSG_SIZE && s->tag < TINY_TAGS_MAX);
        break;
    }
    if (rx.m.hdr.type == TINY_MSG_PIECE) {
        uint64_t in_len = s->arg, got = s->in_off;
        if (req_piece_check(s->in_len, ss, in_len, got) == 0)
            CHECK(s->in_len && s->in_len <= ss && got <= in_len && s->in_len <= in_len - got);
        return 0;
    }
    if (rx.m.hdr.type != TINY_MSG_SUBMIT)
        return 0;
    r = req_submit_check(s, n_slots, ss);
    CHECK(r == 0 || r == -EINVAL || r == -E2BIG);
    if (r < 0)
        return 0;
    CHECK(s->slot < n_slots);
    u.op = s->op;
    u.flags = s->flags;
    u.in_off = s->in_off;
    u.in_len = s->in_len;
    u.arg = s->arg;
    seg = malloc(n_slots * ss);
    fill(seg, n_slots * ss, data, size);
    slot = seg + (size_t)s->slot * ss;
    if (u.flags & TINY_UF_STAGED) {
        CHECK(u.in_off == 0 && u.in_len >= 1 && u.in_len <= TINY_STAGE_MAX);
        if (mem_reserve(u.in_len) < 0)
            goto out;
        u.stage_in = malloc(u.in_len);
        u.stage_in_cap = u.in_len;
        fill(u.stage_in, u.in_len, data, size);
    } else {
        CHECK(u.in_off <= ss && u.in_len <= ss - u.in_off);
    }
    do {
        r = codec_step(&ctx, &u, slot, ss);
        CHECK(++steps <= u.in_len / 4 + 4);
    } while (r == 0);
    CHECK(r == 1 || r == -EBADMSG || r == -ENOSPC || r == -E2BIG || r == -ENOMEM || r == -EINVAL);
    CHECK(u.out_len <= ((u.flags & TINY_UF_STAGED) ? TINY_STAGE_MAX : ss));
out:
    free(u.stage_in);
    free(u.stage_out);
    mem_release(u.stage_in_cap + u.stage_out_cap);
    CHECK(fuzz_mem_used == 0);
    free(seg);
    return 0;
}
