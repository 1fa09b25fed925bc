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
        if (!e.lit && (e.off == 0 || e.off > S + o))
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
