/*
 * codec.h - the snappy operations of tinyd, executed one step at a time.
 */
#ifndef TINYD_CODEC_H
#define TINYD_CODEC_H

#include <stddef.h>

#include "tinyd.h"

/* Largest input of one DECOMPRESS unit: a valid stream of TINY_RAW_UNIT_MAX
 * bytes cannot take more than about two input bytes per output byte. */
#define CODEC_RAW_IN_MAX (2u * TINY_RAW_UNIT_MAX + 64u)

/* Largest input of one step of the operations that go by 64 KiB. */
#define CODEC_STEP_MAX TINY_CHUNK_MAX

/* Private scratch memory of one executing thread. */
struct codec_ctx {
    unsigned char *in;  /* CODEC_RAW_IN_MAX */
    unsigned char *out; /* TINY_RAW_UNIT_MAX, and a compressed 64 KiB chunk */
};

int codec_ctx_init(struct codec_ctx *x);
void codec_ctx_free(struct codec_ctx *x);

/* Checks the per-op rules of tiny_proto.h that the SUBMIT alone decides.
 * Returns 0, -EINVAL or -E2BIG. */
int codec_check(const struct unit *u);

/* Whether the op compresses (for the statistics). */
bool codec_compressing(unsigned op);

/*
 * codec_step - execute the next step of @u: at most one 64 KiB chunk of
 * input (a raw DECOMPRESS unit is one step). Reads its input from the
 * private staging buffer or copies it from @slot, computes in @x, and
 * appends the output to the staging buffer or to @slot.
 * Returns 1 when the unit is complete, 0 when steps remain, or a negative
 * errno (-EBADMSG corrupt input, -ENOSPC output past the slot, -E2BIG
 * output past TINY_STAGE_MAX, -ENOMEM memory limit, -EINVAL bad unit).
 * Steps of one unit must not run concurrently.
 */
int codec_step(struct codec_ctx *x, struct unit *u, unsigned char *slot, size_t slot_size);

/* Cost in bytes of the next step of @u, for fair queueing. */
uint64_t codec_step_cost(const struct unit *u);

#endif
