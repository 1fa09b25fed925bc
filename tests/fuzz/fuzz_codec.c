/*
 * fuzz_codec.c - libFuzzer target for tinyd's decoders (tinyd/codec.c):
 * FRAME_DECOMPRESS, CHUNK_DECOMPRESS and raw DECOMPRESS units run step by
 * step, exactly as a worker runs them, on arbitrary input, in-slot (input
 * at the end of an exactly sized slot, as libtiny places it) or staged.
 *
 * Input: byte 0 selects the op and flags, byte 1 the slot size and the
 * DECOMPRESS drop count, the rest is the unit's input.
 *
 * Beyond ASan/UBSan it checks: every step ends in 1 or a documented errno;
 * output never passes the slot or TINY_STAGE_MAX; the memory accounting
 * balances; a framed stream the codec accepts is one tiny_frame_scan()
 * accepts whole; a decoded chunk is at most 64 KiB.
 */
#include <snappy-c.h>
#include <stdint.h>
#include <string.h>

#include "../../tinyd/codec.h"
#include "format.h"
#include "stubs.h"

static struct codec_ctx ctx;

static void unit_free(struct unit *u)
{
    free(u->stage_in);
    free(u->stage_out);
    mem_release(u->stage_in_cap + u->stage_out_cap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned ops[4] = {TINY_OP_FRAME_DECOMPRESS, TINY_OP_CHUNK_DECOMPRESS,
                                    TINY_OP_DECOMPRESS, TINY_OP_FRAME_DECOMPRESS};
    struct unit u = {0};
    unsigned char *slot = NULL;
    size_t ss, steps = 0;
    uint8_t sel, geo;
    int r;

    if (!ctx.in && codec_ctx_init(&ctx) < 0)
        abort();
    if (size < 2 || size - 2 > TINY_STAGE_MAX)
        return 0;
    sel = data[0];
    geo = data[1];
    data += 2;
    size -= 2;
    u.op = ops[sel & 3];
    u.flags = (sel & 4 ? TINY_UF_FIRST : 0) | (sel & 8 ? TINY_UF_STAGED : 0) |
              ((sel & 3) == 3 ? TINY_F_CONTINUE : 0);
    u.in_len = size;
    if (u.op == TINY_OP_DECOMPRESS)
        u.arg = (uint64_t)(sel >> 4) * 4096u + (geo >> 4);
    if (codec_check(&u) < 0)
        return 0;
    ss = (size_t)TINY_SLOT_SIZE_MIN << (geo & 7);
    if (!(u.flags & TINY_UF_STAGED) && size > ss)
        u.flags |= TINY_UF_STAGED;
    slot = malloc(ss);
    if (!slot)
        abort();
    memset(slot, 0xa5, ss);
    if (u.flags & TINY_UF_STAGED) {
        if (mem_reserve(size) < 0)
            goto out;
        u.stage_in = malloc(size ? size : 1);
        u.stage_in_cap = size;
        memcpy(u.stage_in, data, size);
    } else {
        u.in_off = ss - size;
        memcpy(slot + u.in_off, data, size);
    }
    do {
        r = codec_step(&ctx, &u, slot, ss);
        CHECK(++steps <= size / 4 + 4);
    } while (r == 0);
    CHECK(r == 1 || r == -EBADMSG || r == -ENOSPC || r == -E2BIG || r == -ENOMEM || r == -EINVAL);
    CHECK(u.out_len <= ((u.flags & TINY_UF_STAGED) ? TINY_STAGE_MAX : ss));
    CHECK(u.out_len <= u.stage_out_cap || !(u.flags & TINY_UF_STAGED));
    if (r == 1) {
        CHECK(u.in_pos == u.in_len);
        if (u.op == TINY_OP_FRAME_DECOMPRESS) {
            size_t whole = 0, out_max = 0;
            CHECK(tiny_frame_scan(data, size, &whole, &out_max) >= 0);
            CHECK(whole == size && u.out_len <= out_max);
        } else if (u.op == TINY_OP_CHUNK_DECOMPRESS) {
            CHECK(u.out_len <= TINY_CHUNK_MAX);
        } else {
            size_t n = 0;
            CHECK(snappy_uncompressed_length((const char *)data, size, &n) == SNAPPY_OK);
            CHECK(n == u.out_len + u.arg);
        }
    }
out:
    unit_free(&u);
    free(slot);
    CHECK(fuzz_mem_used == 0);
    return 0;
}
