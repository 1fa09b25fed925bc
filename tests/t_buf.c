/*
 * t_buf.c - zero-copy requests (tiny_buf_*) against a real tinyd: every op
 * in place for several slot sizes, checked against in-process snappy; the
 * input of the compressing ops survives its request; all slots lent at once
 * and submitted together, half waited for and half completed by callbacks;
 * the errors of tiny.h.
 * Usage: t_buf [SLOT_SIZE...]     (TINYD_DIR names the daemon)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "tap.h"
#include "tiny.h"
#include "util.h"

#define NSLOTS 4

static unsigned char *src, *ref, *back;
static const size_t ref_cap = 24u << 20;

/* Compressing op @op on the first @n bytes of src in @b; checks the output
 * and that a second run on the untouched input gives it again. */
static void check_compress(tiny_conn *c, size_t ss, int op, size_t n)
{
    static const char *const names[] = {"", "COMPRESS", "", "FRAME_COMPRESS", "", "CHUNK_COMPRESS"};
    tiny_buf *b = NULL;
    size_t cap = 0, rl = ref_cap;
    void *in = NULL;
    ssize_t r, r2 = -1, d = -1;
    int rc = tiny_buf_get(c, op, &b, &in, &cap);

    if (!ok(rc == 0 && cap > 0, "slot %zu: tiny_buf_get(%s) lends a slot (%s, %zu bytes)", ss,
            names[op], rc < 0 ? tiny_strerror(rc) : "ok", cap)) {
        tiny_buf_put(b);
        return;
    }
    if (n > cap)
        n = cap;
    memcpy(in, src, n);
    r = tiny_buf_run(b, 0, n);
    const unsigned char *o = tiny_buf_output(b);
    if (op == TINY_OP_COMPRESS) {
        snappy_compress((const char *)src, n, (char *)ref, &rl);
        ok(r == (ssize_t)rl && memcmp(o, ref, rl) == 0,
           "slot %zu: COMPRESS of %zu bytes in place is byte-identical to snappy (%zd)", ss, n, r);
    } else {
        if (r >= 0)
            d = ref_frame_decode(o, (size_t)r, back, ref_cap, op == TINY_OP_FRAME_COMPRESS);
        ok(d == (ssize_t)n && memcmp(back, src, n) == 0,
           "slot %zu: %s of %zu bytes in place decodes to its input (%zd, %zd)", ss, names[op], n,
           r, d);
    }
    if (r >= 0) {
        memcpy(ref, o, (size_t)r);
        r2 = tiny_buf_run(b, 0, n);
    }
    ok(r >= 0 && r2 == r && memcmp(ref, tiny_buf_output(b), (size_t)r) == 0,
       "slot %zu: %s input survives its request: a second run gives the same output", ss,
       names[op]);
    tiny_buf_put(b);
}

/* Decompressing op @op of @z (@zl bytes) expecting the first @n bytes of
 * src. */
static void check_decompress(tiny_conn *c, size_t ss, int op, const unsigned char *z, size_t zl,
                             size_t n, const char *what)
{
    tiny_buf *b = NULL;
    size_t cap = 0;
    void *in = NULL;
    ssize_t r;
    int rc = tiny_buf_get(c, op, &b, &in, &cap);

    if (!ok(rc == 0 && zl <= cap, "slot %zu: tiny_buf_get for %s (%zu of %zu bytes)", ss, what, zl,
            cap)) {
        tiny_buf_put(b);
        return;
    }
    memcpy(in, z, zl);
    r = tiny_buf_run(b, 0, zl);
    ok(r == (ssize_t)n && memcmp(tiny_buf_output(b), src, n) == 0,
       "slot %zu: %s in place gives the original %zu bytes (%zd)", ss, what, n, r);
    tiny_buf_put(b);
}

static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cb_cond = PTHREAD_COND_INITIALIZER;
static int cb_done;
static ssize_t cb_res[NSLOTS];

static void buf_done(tiny_req *req, ssize_t result, void *arg)
{
    (void)req;
    pthread_mutex_lock(&cb_lock);
    *(ssize_t *)arg = result;
    cb_done++;
    pthread_cond_signal(&cb_cond);
    pthread_mutex_unlock(&cb_lock);
}

static void check_slot(size_t ss)
{
    tiny_conn *c = connect_or_bail(NSLOTS, ss, 1);
    size_t sizes[] = {0, 1, 4096, 65535, 65536, 65537, ss / 2, ss};
    unsigned char *z = xmalloc(ref_cap);

    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        check_compress(c, ss, TINY_OP_COMPRESS, sizes[i]);
        check_compress(c, ss, TINY_OP_FRAME_COMPRESS, sizes[i]);
        check_compress(c, ss, TINY_OP_CHUNK_COMPRESS, sizes[i]);
    }

    /* DECOMPRESS: a raw stream whose output fits the slot (and 512 KiB). */
    size_t n = ss < (512u << 10) ? ss : 512u << 10, zl = ref_cap;
    snappy_compress((const char *)src, n, (char *)z, &zl);
    check_decompress(c, ss, TINY_OP_DECOMPRESS, z, zl, n, "DECOMPRESS");

    /* FRAME_DECOMPRESS: its output takes the first half of the slot. */
    n = ss / 2 > 3 * 65536 ? 3 * 65536 : ss / 2;
    zl = ref_frame_encode(src, n, z, 1);
    if (zl <= ss - ss / 2)
        check_decompress(c, ss, TINY_OP_FRAME_DECOMPRESS, z, zl, n, "FRAME_DECOMPRESS");
    else
        ok(1, "slot %zu: FRAME_DECOMPRESS of %zu bytes does not fit half a slot (skipped)", ss, n);

    /* CHUNK_DECOMPRESS: one chunk, headed by its type and length. */
    zl = ref_frame_encode(src, 65536, z, 1);
    if (ss >= 65536) /* the chunk after the stream identifier */
        check_decompress(c, ss, TINY_OP_CHUNK_DECOMPRESS, z + 10, zl - 10, 65536,
                         "CHUNK_DECOMPRESS");
    else {
        tiny_buf *b = NULL;
        void *in;
        size_t cap;
        is_int(tiny_buf_get(c, TINY_OP_CHUNK_DECOMPRESS, &b, &in, &cap), -E2BIG,
               "slot %zu: CHUNK_DECOMPRESS in place needs slots of 64 KiB: -E2BIG", ss);
        tiny_buf_put(b);
    }

    /* Every slot lent at once, submitted together, completed by callbacks. */
    {
        tiny_buf *b[NSLOTS];
        tiny_req *req[NSLOTS];
        size_t cap[NSLOTS], len[NSLOTS];
        void *in[NSLOTS];
        int good = 1;

        for (int k = 0; k < NSLOTS; k++) {
            good &= tiny_buf_get(c, TINY_OP_FRAME_COMPRESS, &b[k], &in[k], &cap[k]) == 0;
            len[k] = cap[k] - (size_t)k;
            memcpy(in[k], src + k * 4096, len[k]);
        }
        {
            tiny_buf *t = b[0];
            size_t tc;
            void *ti;

            is_int(tiny_buf_tryget(c, TINY_OP_COMPRESS, &t, &ti, &tc), -EAGAIN,
                   "slot %zu: tiny_buf_tryget with every slot lent: -EAGAIN", ss);
            ok(t == NULL, "slot %zu: a failed tiny_buf_tryget leaves no buf", ss);
        }
        /* even bufs waited for, odd ones completed by callbacks */
        cb_done = 0;
        for (int k = 0; k < NSLOTS; k++) {
            cb_res[k] = -1;
            good &= tiny_buf_submit(b[k], 0, len[k], k & 1 ? buf_done : NULL, &cb_res[k],
                                    k & 1 ? NULL : &req[k]) == 0;
        }
        is_int(tiny_buf_submit(b[0], 0, 1, NULL, NULL, NULL), -EINVAL,
               "slot %zu: a buf with a request in flight cannot be submitted again", ss);
        pthread_mutex_lock(&cb_lock);
        while (cb_done < NSLOTS / 2)
            pthread_cond_wait(&cb_cond, &cb_lock);
        pthread_mutex_unlock(&cb_lock);
        for (int k = 0; k < NSLOTS; k++) {
            ssize_t r = k & 1 ? cb_res[k] : tiny_wait(req[k]);
            ssize_t d =
                r < 0 ? r : ref_frame_decode(tiny_buf_output(b[k]), (size_t)r, back, ref_cap, 1);
            good &= d == (ssize_t)len[k] && memcmp(back, src + k * 4096, len[k]) == 0;
        }
        ok(good, "slot %zu: %d bufs in flight at once, every output right", ss, NSLOTS);
        tiny_buf_put(b[0]);
        {
            tiny_buf *t = NULL;
            size_t tc = 0;
            void *ti;

            ok(tiny_buf_tryget(c, TINY_OP_COMPRESS, &t, &ti, &tc) == 0 && t && tc > 0,
               "slot %zu: tiny_buf_tryget takes the slot given back", ss);
            tiny_buf_put(t);
        }
        for (int k = 1; k < NSLOTS; k++)
            tiny_buf_put(b[k]);
    }
    free(z);
    tiny_disconnect(c);
}

static void check_errors(void)
{
    tiny_conn *c = connect_or_bail(2, 65536, 1);
    tiny_buf *b = NULL;
    size_t cap = 0;
    void *in = NULL;

    is_int(tiny_buf_get(c, 99, &b, &in, &cap), -EINVAL, "tiny_buf_get of a bad op: -EINVAL");
    is_int(tiny_buf_get(NULL, TINY_OP_COMPRESS, &b, &in, &cap), -EINVAL,
           "tiny_buf_get without a connection: -EINVAL");
    is_int(tiny_buf_submit(NULL, 0, 0, NULL, NULL, NULL), -EINVAL,
           "tiny_buf_submit(NULL): -EINVAL");
    ok(tiny_buf_output(NULL) == NULL, "tiny_buf_output(NULL) is NULL");
    tiny_buf_put(NULL);
    ok(1, "tiny_buf_put(NULL) does nothing");

    if (tiny_buf_get(c, TINY_OP_COMPRESS, &b, &in, &cap) == 0) {
        is_int(tiny_buf_run(b, 0, cap + 1), -EINVAL, "an input over the buf's capacity: -EINVAL");
        is_int(tiny_buf_run(b, TINY_F_CONTINUE, 1), -EINVAL,
               "a flag the op does not take: -EINVAL");
        tiny_buf_put(b);
    }
    if (tiny_buf_get(c, TINY_OP_DECOMPRESS, &b, &in, &cap) == 0) {
        memset(in, 0xff, 64);
        is_int(tiny_buf_run(b, 0, 64), -EBADMSG, "DECOMPRESS of garbage in place: -EBADMSG");
        /* a valid preamble announcing more than the slot holds */
        unsigned char big[8];
        size_t hl = tiny_varint_put(big, 1u << 20);
        memcpy(in, big, hl);
        is_int(tiny_buf_run(b, 0, hl + 4), -E2BIG,
               "DECOMPRESS in place of an output larger than the slot: -E2BIG");
        /* a corrupt body behind a plausible preamble: tinyd rejects it */
        size_t zl = ref_cap;
        snappy_compress((const char *)src, 60000, (char *)ref, &zl);
        memcpy(in, ref, zl);
        memset((unsigned char *)in + zl / 2, 0xee, 16);
        ssize_t r = tiny_buf_run(b, 0, zl);
        ok(r == -EBADMSG || (r == 60000 && memcmp(tiny_buf_output(b), src, 60000) != 0),
           "DECOMPRESS in place of a damaged stream fails or differs, never crashes (%zd)", r);
        tiny_buf_put(b);
    }
    if (tiny_buf_get(c, TINY_OP_FRAME_DECOMPRESS, &b, &in, &cap) == 0) {
        size_t zl = ref_frame_encode(src, 30000, ref, 1);
        memcpy(in, ref, zl);
        ((unsigned char *)in)[zl - 1] ^= 1;
        is_int(tiny_buf_run(b, 0, zl), -EBADMSG,
               "FRAME_DECOMPRESS in place of a stream with a bad CRC: -EBADMSG");
        memcpy(in, ref, zl);
        is_int(tiny_buf_run(b, 0, zl - 3), -EBADMSG,
               "FRAME_DECOMPRESS in place of a truncated stream: -EBADMSG");
        tiny_buf_put(b);
    }
    tiny_disconnect(c);
}

int main(int argc, char **argv)
{
    watchdog(300);
    src = xmalloc(ref_cap);
    ref = xmalloc(ref_cap);
    back = xmalloc(ref_cap);
    gen_mixed(src, ref_cap, 5);
    for (int i = 1; i < argc; i++)
        check_slot(strtoul(argv[i], NULL, 0));
    if (argc < 2)
        check_slot(1u << 20);
    check_errors();
    free(src);
    free(ref);
    free(back);
    return done_testing();
}
