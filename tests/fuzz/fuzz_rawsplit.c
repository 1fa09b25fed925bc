/*
 * fuzz_rawsplit.c - libFuzzer target for libtiny's raw stream cutter
 * (libtiny/rawsplit.c), the parser that runs in the caller's process on
 * whatever it passes to tiny_decompress(): every unit is built exactly as
 * libtiny builds it (tiny_src_copy(), its history taken from the output
 * decoded so far) and decoded with snappy, as tinyd would.
 *
 * Input: byte 0 selects the budgets (odd: those of a 1 MiB slot; even:
 * bytes 1-2 and 3-4 give the output and input budget in 4-byte steps from
 * 64), the rest is the raw stream.
 *
 * Beyond ASan/UBSan it checks: every unit follows the one before, within
 * its budgets, its bytes taken from the input and from output already
 * produced; the cutter fails only with -EBADMSG or -ENOTSUP; a stream
 * snappy accepts whole is never refused as corrupt and each of its units
 * decodes to the same bytes; when the cutter and every unit succeed,
 * snappy accepts the whole stream and the bytes are its bytes, so a
 * corrupt stream can never come back as data.
 */
#include <errno.h>
#include <snappy-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../libtiny/internal.h"
#include "check.h"

#define OUT_MAX (4u << 20) /* larger announced lengths are not tried */

/* A unit's segments lie in their sources: the input, the output decoded
 * before the unit, and the unit's own header bytes. */
static void check_segments(const struct tiny_rawunit *u, size_t in_len)
{
    size_t sum = 0;

    CHECK(u->src.n_seg <= TINY_SRC_SEGS);
    for (unsigned i = 0; i < u->src.n_seg; i++) {
        const struct tiny_seg *g = &u->src.seg[i];
        size_t lim = g->kind == TINY_SRC_HDR  ? u->src.hb_len
                     : g->kind == TINY_SRC_IN ? in_len
                                              : (size_t)u->out_start;

        CHECK(g->len > 0 && g->off <= lim && g->len <= lim - g->off);
        sum += g->len;
    }
    CHECK(sum == u->src.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tiny_rawsplit rs;
    struct tiny_rawunit u;
    unsigned char *ref = NULL, *out = NULL, *unit = NULL, *dec = NULL;
    size_t ob, ib, total, n, produced = 0;
    int whole_ok, r;

    if (size < 5)
        return 0;
    if (data[0] & 1) {
        ob = 256u << 10;
        ib = (1u << 20) - TINY_RAW_WINDOW - 32;
    } else {
        ob = 64 + 4 * (size_t)(data[1] | data[2] << 8);
        ib = 64 + 4 * (size_t)(data[3] | data[4] << 8);
    }
    data += 5;
    size -= 5;
    if (tiny_rawsplit_init(&rs, data, size, ob, ib) < 0)
        return 0;
    total = (size_t)rs.total;
    if (total > OUT_MAX)
        return 0;

    ref = malloc(total + 1);
    out = malloc(total + 1);
    dec = malloc(TINY_RAW_WINDOW + ob + 1);
    CHECK(ref && out && dec);
    n = total;
    whole_ok =
        snappy_uncompress((const char *)data, size, (char *)ref, &n) == SNAPPY_OK && n == total;

    while ((r = tiny_rawsplit_next(&rs, &u)) == 1) {
        size_t want, got;

        CHECK(u.out_start == produced);
        CHECK(u.out_len > 0 && u.out_len <= ob && u.out_len <= total - produced);
        CHECK(u.hist <= TINY_RAW_WINDOW && u.hist <= produced);
        check_segments(&u, size);
        /* varint, the history's literal (both at most 5 bytes), the history,
         * then at most ib bytes of elements */
        CHECK(u.src.len <= 10 + u.hist + ib);

        free(unit);
        unit = malloc(u.src.len);
        CHECK(unit);
        tiny_src_copy(&u.src, data, out, 0, unit, u.src.len);
        want = u.hist + (size_t)u.out_len;
        got = want;
        if (snappy_uncompress((const char *)unit, u.src.len, (char *)dec, &got) != SNAPPY_OK ||
            got != want) {
            /* tinyd fails the request here: fine, unless snappy takes
             * the stream whole */
            CHECK(!whole_ok);
            goto done;
        }
        memcpy(out + produced, dec + u.hist, (size_t)u.out_len);
        if (whole_ok)
            CHECK(memcmp(out + produced, ref + produced, (size_t)u.out_len) == 0);
        produced += (size_t)u.out_len;
    }
    CHECK(r == 0 || r == -EBADMSG || r == -ENOTSUP);
    if (r == 0) {
        CHECK(produced == total);
        CHECK(whole_ok && memcmp(out, ref, total) == 0);
    } else if (whole_ok) {
        CHECK(r == -ENOTSUP);
    }
done:
    free(unit);
    free(dec);
    free(out);
    free(ref);
    return 0;
}
