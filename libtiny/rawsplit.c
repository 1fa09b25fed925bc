/*
 * rawsplit.c - cutting a raw snappy stream into self-contained units.
 *
 * tinyd decodes a raw stream in one step, so a large stream must be cut
 * into several complete streams. The cutter walks the snappy elements
 * (literals with 0-4 extra length bytes, copies with 1, 2 or 4 offset
 * bytes), validating every one against the announced length, and ends a
 * unit after at most out_budget bytes of output, at an output offset that
 * is a multiple of 64 KiB when there is one in reach: every encoder in
 * common use restarts there, so the unit needs no earlier output. When a
 * copy does reach before the unit's start, the unit carries the bytes it
 * needs (its "history", at most TINY_RAW_WINDOW) as a leading literal whose
 * output tinyd drops (arg = hist); the history is taken from the caller's
 * output buffer, so such a unit is sent only once its predecessor has been
 * copied out. A literal longer than a unit's budget is split, each part
 * getting a fresh literal header.
 *
 * The walk costs about a third as much as decoding, and for a blocking call
 * it runs on the caller's thread while tinyd's workers decode, so it must be
 * lean: walk_fast() skips whole elements with only the per-element work the
 * cut needs (input length, output length, how far a copy reaches back),
 * leaving every rare case (a literal with length bytes, a copy with a 4-byte
 * offset, the element that crosses a 64 KiB mark or a budget, the last bytes
 * of the input) to slower paths. Its critical path is one load and one add
 * per element: the input and output lengths of every tag in a small window
 * are computed ahead, 16 tags at a time, so the next element's position
 * never waits for its tag to be decoded. Past a unit's first 64 KiB of
 * output no 1- or 2-byte offset can reach before the unit, so there the
 * loop does no more than add up lengths. Offset 0 is not checked here:
 * tinyd's snappy rejects it.
 *
 * The segment list (struct tiny_src) describing where a unit's bytes come
 * from lives here too: every op uses it to copy a unit into its slot.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define BLOCK 65536u

void tiny_src_reset(struct tiny_src *s)
{
    s->hb_len = 0;
    s->n_seg = 0;
    s->len = 0;
}

void tiny_src_add(struct tiny_src *s, unsigned kind, size_t off, size_t len)
{
    if (len == 0)
        return;
    s->seg[s->n_seg++] = (struct tiny_seg){kind, off, len};
    s->len += len;
}

void tiny_src_hdr(struct tiny_src *s, const unsigned char *p, size_t n)
{
    memcpy(s->hb + s->hb_len, p, n);
    tiny_src_add(s, TINY_SRC_HDR, s->hb_len, n);
    s->hb_len += n;
}

void tiny_src_copy(const struct tiny_src *s, const unsigned char *in, const unsigned char *out,
                   size_t off, unsigned char *dst, size_t n)
{
    for (unsigned i = 0; i < s->n_seg && n > 0; i++) {
        const struct tiny_seg *g = &s->seg[i];
        const unsigned char *base;
        size_t k;

        if (off >= g->len) {
            off -= g->len;
            continue;
        }
        base = g->kind == TINY_SRC_HDR ? s->hb : g->kind == TINY_SRC_IN ? in : out;
        k = g->len - off < n ? g->len - off : n;
        memcpy(dst, base + g->off + off, k);
        dst += k;
        n -= k;
        off = 0;
    }
}

/* Writes a literal tag for @len (>= 1) bytes; returns its length. */
static size_t lit_hdr(unsigned char *p, uint64_t len)
{
    uint64_t n = len - 1;
    size_t k = 0;

    if (n < 60) {
        p[0] = (unsigned char)(n << 2);
        return 1;
    }
    while (k < 4 && (n >> (8 * k)) != 0)
        k++;
    p[0] = (unsigned char)((59 + k) << 2);
    for (size_t i = 0; i < k; i++)
        p[1 + i] = (unsigned char)(n >> (8 * i));
    return 1 + k;
}

static size_t lit_hdr_len(uint64_t len)
{
    unsigned char b[8];

    return lit_hdr(b, len);
}

int tiny_rawsplit_init(struct tiny_rawsplit *rs, const void *in, size_t in_len, size_t out_budget,
                       size_t in_budget)
{
    uint32_t total;
    size_t n = tiny_varint_get32(in, in_len, &total);

    if (!n)
        return -EBADMSG;
    /* A unit must hold any copy (64 bytes of output, 5 of input) and a
     * literal part with its header. */
    if (out_budget < 64 || in_budget < 64)
        return -EINVAL;
    *rs = (struct tiny_rawsplit){
        .in = in,
        .in_len = in_len,
        .pos = n,
        .total = total,
        .out_budget = out_budget,
        .in_budget = in_budget,
    };
    return 0;
}

/* One element at @p: input and output length, whether it is a literal (and
 * where its data starts), or the copy offset. */
struct elem {
    size_t in_len;
    uint64_t out_len;
    int lit;
    size_t data;
    uint64_t off;
};

static int parse(const unsigned char *in, size_t in_len, size_t p, struct elem *e)
{
    unsigned t = in[p];
    size_t avail = in_len - p;

    switch (t & 3) {
    case 0: {
        uint64_t n = t >> 2;
        size_t extra = 0;

        if (n >= 60) {
            extra = n - 59;
            if (avail < 1 + extra)
                return -EBADMSG;
            n = 0;
            for (size_t i = 0; i < extra; i++)
                n |= (uint64_t)in[p + 1 + i] << (8 * i);
        }
        e->lit = 1;
        e->out_len = n + 1;
        e->data = p + 1 + extra;
        if (in_len - e->data < e->out_len)
            return -EBADMSG;
        e->in_len = 1 + extra + (size_t)e->out_len;
        return 0;
    }
    case 1:
        if (avail < 2)
            return -EBADMSG;
        e->out_len = 4 + ((t >> 2) & 7);
        e->off = (uint64_t)(t >> 5) << 8 | in[p + 1];
        e->in_len = 2;
        break;
    case 2:
        if (avail < 3)
            return -EBADMSG;
        e->out_len = 1 + (t >> 2);
        e->off = (uint64_t)in[p + 1] | (uint64_t)in[p + 2] << 8;
        e->in_len = 3;
        break;
    default:
        if (avail < 5)
            return -EBADMSG;
        e->out_len = 1 + (t >> 2);
        e->off = tiny_get_le32(in + p + 1);
        e->in_len = 5;
        break;
    }
    e->lit = 0;
    return 0;
}

struct cut {
    size_t pos;
    uint64_t out;
    uint64_t hist;
};

/* Tags looked at ahead per window: small, because a long literal jumps out
 * of it and the rest of the window was computed for nothing. */
#define WALK_WIN 128

/* Input bytes of the element whose tag is @t; 0 for a literal whose length
 * is in 1-4 extra bytes and for a copy with a 4-byte offset, the elements
 * the walk takes the slow way. */
static unsigned tag_len(unsigned t)
{
    static const unsigned char copy_len[4] = {0, 2, 3, 0};

    if (t & 3)
        return copy_len[t & 3];
    return (t >> 2) < 60 ? (t >> 2) + 2 : 0;
}

/* Output bytes of the element whose tag is @t (meaningless for a literal
 * with length bytes). */
static unsigned tag_out(unsigned t)
{
    return (t & 3) == 1 ? 4 + ((t >> 2) & 7) : (t >> 2) + 1;
}

#if defined(__GNUC__) || defined(__clang__)
typedef unsigned char walk_v16 __attribute__((vector_size(16)));
#endif

/* tag_len() and tag_out() of each of the @n bytes at @in, as if each began
 * an element. */
static void tag_lens(const unsigned char *in, size_t n, unsigned char *len, unsigned char *out)
{
    size_t i = 0;

#if defined(__GNUC__) || defined(__clang__)
    for (; i + 16 <= n; i += 16) {
        walk_v16 t, ty, lit, copy, is_lit, is_one, r, o;

        memcpy(&t, in + i, 16);
        ty = t & 3;
        is_lit = (walk_v16)(ty == 0);
        is_one = (walk_v16)(ty == 1);
        lit = ((t >> 2) + 2) & ~(walk_v16)((t >> 2) >= 60);
        copy = (2 + ((walk_v16)(ty >= 2) & 1)) & ~(walk_v16)(ty == 3);
        r = (lit & is_lit) | (copy & ~is_lit);
        o = ((4 + ((t >> 2) & 7)) & is_one) | (((t >> 2) + 1) & ~is_one);
        memcpy(len + i, &r, 16);
        memcpy(out + i, &o, 16);
    }
#endif
    for (; i < n; i++) {
        len[i] = (unsigned char)tag_len(in[i]);
        out[i] = (unsigned char)tag_out(in[i]);
    }
}

struct walk {
    size_t p;
    uint64_t o;
    int64_t need; /* most any copy so far reaches before the unit's start */
};

/* Input and output length of a literal whose length is in the 1-4 bytes @x
 * after its tag @t; 0 when its output would end past @olim, before the
 * input length, which could overflow, is computed. */
static inline int long_literal(unsigned t, uint32_t x, uint64_t o, uint64_t olim, size_t *l,
                               uint64_t *ol)
{
    static const uint32_t mask[5] = {0, 0xff, 0xffff, 0xffffff, 0xffffffff};
    unsigned k = (t >> 2) - 59;

    *ol = (uint64_t)(x & mask[k]) + 1;
    if (o + *ol > olim)
        return 0;
    *l = 1 + k + (size_t)*ol;
    return 1;
}

/*
 * Skips whole elements from w->p (output offset w->o in the unit) while
 * their output ends at most at @olim and their input at most at @plim
 * (<= in_len). Stops before the first element it cannot take; the caller's
 * careful loop takes that one. Corrupt data only stops it early.
 *
 * Once the unit has 64 KiB of output, only a copy with a 4-byte offset can
 * reach before its start, so the window loop drops the reach-back
 * bookkeeping there and takes such a copy the slow way.
 */
static void walk_fast(const unsigned char *in, size_t plim, uint64_t olim, struct walk *w)
{
    static const uint32_t off_mask[4] = {0, 0xff, 0xffff, 0xffffffff};
    unsigned char len[WALK_WIN], olen[WALK_WIN];
    size_t p = w->p;
    uint64_t o = w->o;
    int64_t need = w->need;

    /* Below pstop, the tag and 4 more bytes are readable and a copy fits. */
    while (plim >= 5 && p < plim - 4) {
        size_t base = p, n = plim - 4 - p, q = 0, q0 = 0;
        uint64_t o0 = o;

        if (n > WALK_WIN)
            n = WALK_WIN;
        tag_lens(in + base, n, len, olen);
        if (o >= 65536) {
            while (q < n) {
                size_t l = len[q];
                uint64_t ol = olen[q];

                if (l == 0) {
                    const unsigned char *e = in + base + q;
                    unsigned t = e[0];
                    uint32_t x = tiny_get_le32(e + 1);

                    if ((t & 3) == 3) {
                        int64_t d = (int64_t)x - (int64_t)o;

                        need = d > need ? d : need;
                        l = 5;
                    } else if (!long_literal(t, x, o, olim, &l, &ol)) {
                        break;
                    }
                }
                if (o + ol > olim)
                    break;
                q0 = q;
                o0 = o;
                q += l;
                o += ol;
            }
        } else {
            while (q < n) {
                const unsigned char *e = in + base + q;
                unsigned t = e[0], ty = t & 3;
                uint32_t x = tiny_get_le32(e + 1);
                size_t l = len[q];
                uint64_t ol = olen[q];
                /* Masks, not conditions: the element kinds follow no
                 * pattern a branch predictor could learn. */
                uint64_t one = (uint64_t)0 - (ty == 1);
                uint64_t off = (x & off_mask[ty]) | (((uint64_t)(t >> 5) << 8) & one);
                int64_t d = (int64_t)off - (int64_t)o;

                if (l == 0 && ty == 3)
                    l = 5;
                else if (l == 0 && !long_literal(t, x, o, olim, &l, &ol))
                    break;
                if (o + ol > olim)
                    break;
                need = d > need ? d : need;
                q0 = q;
                o0 = o;
                q += l;
                o += ol;
            }
        }
        p = base + q;
        if (p > plim) {
            /* Only a literal jumps that far, and only as the window's last. */
            p = base + q0;
            o = o0;
            break;
        }
        if (q < n)
            break;
    }
    w->p = p;
    w->o = o;
    w->need = need;
}

int tiny_rawsplit_next(struct tiny_rawsplit *rs, struct tiny_rawunit *u)
{
    const uint64_t S = rs->out;
    uint64_t o = 0, hist = 0;
    size_t ein = 0, p;
    size_t head_off = 0, head_len = 0, tail_off = 0, tail_len = 0;
    size_t elems;
    struct cut last, aligned = {0, 0, 0}, cut;
    int have_aligned = 0, split = 0;
    unsigned char hb[16];
    size_t hn;

    if (rs->lit_left == 0 && rs->pos == rs->in_len)
        return rs->out == rs->total ? 0 : -EBADMSG;

    if (rs->lit_left) {
        size_t room = rs->in_budget - 5;
        size_t take = rs->lit_left;

        if (take > rs->out_budget)
            take = rs->out_budget;
        if (take > room)
            take = room;
        head_off = rs->pos;
        head_len = take;
        rs->pos += take;
        rs->lit_left -= take;
        o = take;
        ein = take + lit_hdr_len(take);
        if (rs->lit_left) {
            cut = (struct cut){rs->pos, o, 0};
            elems = rs->pos;
            goto emit;
        }
    }

    elems = p = rs->pos;
    for (;;) {
        struct elem e = {0};
        int r;

        if (p + 5 <= rs->in_len && (o == 0 || (S + o) % BLOCK != 0)) {
            /* Up to the next 64 KiB mark, where the careful loop records
             * the aligned cut. */
            uint64_t lim = rs->total - S, mark = o + BLOCK - (S + o) % BLOCK;
            size_t plim = rs->in_len;
            struct walk w = {p, o, 0};

            if (lim > rs->out_budget)
                lim = rs->out_budget;
            if (lim > mark)
                lim = mark;
            if (ein > rs->in_budget)
                plim = p;
            else if (rs->in_budget - ein < plim - p)
                plim = p + (rs->in_budget - ein);
            walk_fast(rs->in, plim, lim, &w);
            if (w.need > (int64_t)S)
                return -EBADMSG; /* a copy reaching before the stream */
            if (w.need > (int64_t)hist)
                hist = (uint64_t)w.need;
            ein += w.p - p;
            p = w.p;
            o = w.o;
        }
        last = (struct cut){p, o, hist};
        if (o > 0 && (S + o) % BLOCK == 0) {
            aligned = last;
            have_aligned = 1;
        }
        if (p == rs->in_len) {
            if (S + o != rs->total)
                return -EBADMSG;
            cut = last;
            break;
        }
        r = parse(rs->in, rs->in_len, p, &e);
        if (r < 0)
            return r;
        if (S + o + e.out_len > rs->total)
            return -EBADMSG;
        if (!e.lit && e.off > S + o)
            return -EBADMSG;
        if (o + e.out_len > rs->out_budget || ein + e.in_len > rs->in_budget) {
            if (have_aligned) {
                cut = aligned;
            } else if (e.lit && o < rs->out_budget && ein + 6 < rs->in_budget) {
                size_t take = rs->out_budget - o;

                if (take > rs->in_budget - ein - 5)
                    take = rs->in_budget - ein - 5;
                tail_off = e.data;
                tail_len = take;
                split = 1;
                cut = last;
                rs->lit_left = (size_t)e.out_len - take;
            } else {
                cut = last;
            }
            break;
        }
        if (!e.lit && e.off > o && S + o - e.off < S) {
            uint64_t need = S - (S + o - e.off);

            if (need > hist)
                hist = need;
        }
        p += e.in_len;
        o += e.out_len;
        ein += e.in_len;
    }
    if (cut.hist > TINY_RAW_WINDOW)
        return -ENOTSUP;
    hist = cut.hist;
    o = cut.out + tail_len;
    rs->pos = split ? tail_off + tail_len : cut.pos;

emit:
    rs->out = S + o;
    tiny_src_reset(&u->src);
    u->out_start = S;
    u->out_len = o;
    u->hist = (size_t)hist;
    hn = tiny_varint_put(hb, hist + o);
    if (hist)
        hn += lit_hdr(hb + hn, hist);
    tiny_src_hdr(&u->src, hb, hn);
    tiny_src_add(&u->src, TINY_SRC_OUT, (size_t)(S - hist), (size_t)hist);
    if (head_len) {
        tiny_src_hdr(&u->src, hb, lit_hdr(hb, head_len));
        tiny_src_add(&u->src, TINY_SRC_IN, head_off, head_len);
    }
    tiny_src_add(&u->src, TINY_SRC_IN, elems, cut.pos - elems);
    if (tail_len) {
        tiny_src_hdr(&u->src, hb, lit_hdr(hb, tail_len));
        tiny_src_add(&u->src, TINY_SRC_IN, tail_off, tail_len);
    }
    return 1;
}
