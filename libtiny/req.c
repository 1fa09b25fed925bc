/*
 * req.c - requests: slot allocation, pipelining, wait/poll/callbacks.
 *
 * A request is cut lazily into units (one slot each, see tiny_proto.h; the
 * cutting is cut.c's); at most min(n_slots, TINY_REQ_INFLIGHT) units of one
 * request are in flight, kept in a ring in submission order. Outputs are
 * copied out in that order: a unit that completes early keeps its slot until
 * the units before it are copied, which is what lets compressed outputs of
 * unknown size be concatenated.
 *
 * Who drives a request:
 *  - a blocking call (tiny_run), the calling thread itself, which waits at
 *    once. Such a request takes a tag (1..TINY_TAGS_MAX-1) while it has
 *    units in flight and receives exactly the messages of type
 *    TINY_MTYPE_REPLY + tag, so a blocking call costs one SUBMIT and one DONE
 *    hop, with no library thread in between. Every tag holder holds a slot,
 *    so tags never run out;
 *  - an asynchronous request (tiny_submit), a progress thread started on
 *    first use: tiny_submit() hands the request over, and that thread alone
 *    submits its units (tag 0), receives their replies, dispatches them by
 *    slot, and runs the callback or wakes tiny_wait(). Nobody else has to
 *    call in for such a request to move, so requests submitted and not yet
 *    waited for cannot sit on slots that a waited one needs.
 *
 * Slots come from a per-connection free list. A thread never blocks for a
 * slot while it holds units in flight that it must drive itself (it only
 * tries); it blocks only when its request holds none. While some thread is
 * blocked for a slot, a request that already has a unit in flight takes no
 * more, so every thread sharing a connection makes progress.
 *
 * A zero-copy request (tiny_buf, buf.c) is one unit in the slot its buf
 * holds: the input is already there, the output stays there, and the slot
 * is the buf's until tiny_buf_put(), so tiny_slot_acquire() and
 * tiny_slot_release() only count it.
 *
 * On an error the request stops submitting, still collects the replies of
 * its units in flight (tinyd owns those slots until it answers, and a
 * staged output must be fetched to the end to be released), then completes
 * with the error. A dead connection ends everything at once.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* Sanitizer builds copy with memcpy(), which they check. */
#if defined(__SSE2__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define TINY_STREAM_STORES 1
#include <emmintrin.h>
#endif

#include "internal.h"

/* ---- slots and tags ---------------------------------------------------- */

/* Takes a slot (and a tag, for a request without callback that has none in
 * flight). Blocks only if @block; -EAGAIN otherwise when none is free. */
int tiny_slot_acquire(tiny_req *req, int block, unsigned *slot)
{
    tiny_conn *c = req->conn;
    int r = 0;

    if (req->buf) {
        /* Its slot is the buf's. A request its caller drives takes a tag;
         * there are more tags than slots. */
        pthread_mutex_lock(&c->lock);
        while (!req->progress && c->n_free_tags == 0 && !atomic_load(&c->dead) && !c->closing &&
               block) {
            c->slot_waiters++; /* so that tiny_slot_release() wakes us */
            pthread_cond_wait(&c->cv, &c->lock);
            c->slot_waiters--;
        }
        if (atomic_load(&c->dead) || c->closing) {
            r = -ECONNRESET;
        } else if (!req->progress && c->n_free_tags == 0) {
            r = -EAGAIN;
        } else {
            if (!req->progress)
                req->tag = c->free_tags[--c->n_free_tags];
            *slot = req->buf->slot;
            req->inflight++;
        }
        pthread_mutex_unlock(&c->lock);
        return r;
    }

    pthread_mutex_lock(&c->lock);
    for (;;) {
        if (atomic_load(&c->dead) || c->closing) {
            r = -ECONNRESET;
            break;
        }
        if (c->n_free > 0 && c->n_free_tags > 0 && (req->inflight == 0 || c->slot_waiters == 0)) {
            *slot = c->free_slots[--c->n_free];
            if (req->inflight == 0 && !req->progress)
                req->tag = c->free_tags[--c->n_free_tags];
            break;
        }
        if (!block) {
            r = -EAGAIN;
            break;
        }
        c->slot_waiters++;
        pthread_cond_wait(&c->cv, &c->lock);
        c->slot_waiters--;
    }
    pthread_mutex_unlock(&c->lock);
    if (r == 0)
        req->inflight++;
    return r;
}

void tiny_slot_release(tiny_req *req, unsigned slot)
{
    tiny_conn *c = req->conn;

    pthread_mutex_lock(&c->lock);
    if (!req->buf) /* a buf keeps its slot until tiny_buf_put() */
        c->free_slots[c->n_free++] = slot;
    req->inflight--;
    if (req->inflight == 0 && !req->progress) {
        c->free_tags[c->n_free_tags++] = req->tag;
        req->tag = 0;
    }
    if (c->slot_waiters)
        pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->lock);
}

/* ---- units in flight --------------------------------------------------- */

unsigned char *tiny_slot_ptr(tiny_conn *c, unsigned slot)
{
    return c->base + (size_t)slot * c->slot_size;
}

static struct tiny_unit *ring_at(tiny_req *req, unsigned i)
{
    return &req->ring[(req->head + i) % TINY_REQ_INFLIGHT];
}

static void ring_pop_free(tiny_req *req)
{
    while (req->count && req->ring[req->head].state == U_FREE) {
        req->head = (req->head + 1) % TINY_REQ_INFLIGHT;
        req->count--;
    }
}

static void msg_for(struct tiny_msg *m, enum tiny_msg_type type, tiny_req *req,
                    const struct tiny_unit *u)
{
    tiny_msg_init(m, TINY_MTYPE_DAEMON, type);
    m->u.submit.tag = req->tag;
    m->u.submit.seq = u->seq;
    m->u.submit.slot = u->slot;
}

/* Submits req->nu on @slot. */
static int send_unit(tiny_req *req, unsigned slot)
{
    tiny_conn *c = req->conn;
    struct tiny_unit *u = ring_at(req, req->count);
    unsigned char *s = tiny_slot_ptr(c, slot);
    size_t len = req->nu.src.len, ss = c->slot_size;
    struct tiny_msg m;
    int r;

    *u = req->nu;
    req->have_next = 0;
    req->count++;
    u->slot = slot;
    u->seq = atomic_fetch_add(&c->seq, 1);
    u->state = U_RUN;
    msg_for(&m, TINY_MSG_SUBMIT, req, u);
    m.u.submit.op = (uint32_t)req->op;
    m.u.submit.flags = u->flags | (u->staged ? TINY_UF_STAGED : 0);
    m.u.submit.in_len = len;
    m.u.submit.arg = u->arg;
    if (u->staged) {
        u->in_sent = len < ss ? len : ss;
        tiny_src_copy(&u->src, req->in, req->out, 0, s, u->in_sent);
    } else if (req->buf) {
        m.u.submit.in_off = req->buf->in_off; /* written there by the caller */
        u->in_sent = len;
    } else {
        /* At the end of the slot: the output grows from its start. */
        m.u.submit.in_off = ss - len;
        tiny_src_copy(&u->src, req->in, req->out, 0, s + ss - len, len);
        u->in_sent = len;
    }
    if (req->progress)
        c->slot_req[slot] = req;
    r = tiny_conn_send(c, &m);
    if (r < 0) {
        u->state = U_FREE;
        tiny_slot_release(req, slot);
        ring_pop_free(req);
    }
    return r;
}

/* Submits units while the request may: not failed, ring not full, a slot. */
static void fill(tiny_req *req, int block)
{
    while (!req->err) {
        unsigned slot;
        int r;

        tiny_req_prepare_next(req);
        if (!req->have_next || req->count >= req->conn->cap)
            return;
        if (req->nu.need_hist && req->out_pos != req->nu.out_start)
            return;
        r = tiny_slot_acquire(req, block && req->inflight == 0, &slot);
        if (r == -EAGAIN)
            return;
        if (r == 0)
            r = send_unit(req, slot);
        if (r < 0)
            req->err = r;
    }
}

static void unit_fail(struct tiny_unit *u, int status)
{
    u->status = status;
    u->state = U_READY;
}

static void handle_msg(tiny_req *req, const struct tiny_msg *m)
{
    const struct tiny_msg_done *d = &m->u.done;
    tiny_conn *c = req->conn;
    size_t ss = c->slot_size;
    struct tiny_unit *u = NULL;

    if (m->hdr.type != TINY_MSG_MORE && m->hdr.type != TINY_MSG_DONE)
        return;
    for (unsigned i = 0; i < req->count; i++) {
        struct tiny_unit *v = ring_at(req, i);

        if (v->state != U_FREE && v->state != U_READY && v->slot == d->slot && v->seq == d->seq) {
            u = v;
            break;
        }
    }
    if (!u)
        return; /* stray: not a unit of ours in flight */
    if (d->status < 0) {
        unit_fail(u, d->status);
        return;
    }
    if (m->hdr.type == TINY_MSG_MORE) {
        struct tiny_msg p;
        size_t n;

        if (!u->staged || u->state != U_RUN || d->piece_off != u->in_sent ||
            u->in_sent >= u->src.len) {
            unit_fail(u, -EPROTO);
            return;
        }
        n = u->src.len - u->in_sent < ss ? u->src.len - u->in_sent : ss;
        tiny_src_copy(&u->src, req->in, req->out, u->in_sent, tiny_slot_ptr(c, u->slot), n);
        u->in_sent += n;
        msg_for(&p, TINY_MSG_PIECE, req, u);
        p.u.submit.in_len = n;
        if (tiny_conn_send(c, &p) < 0)
            req->err = -ECONNRESET;
        return;
    }
    if (!u->staged) {
        if (d->out_len > ss) {
            unit_fail(u, -EPROTO);
            return;
        }
        u->out_len = d->out_len;
        u->piece_off = 0;
        u->piece_len = d->out_len;
    } else {
        if (d->out_len > TINY_STAGE_MAX || d->piece_off != u->copied || d->piece_len > ss ||
            d->piece_off + d->piece_len > d->out_len ||
            (d->piece_len == 0 && d->piece_off < d->out_len) ||
            (u->state == U_FETCH && d->out_len != u->out_len)) {
            unit_fail(u, -EPROTO);
            return;
        }
        u->out_len = d->out_len;
        u->piece_off = d->piece_off;
        u->piece_len = d->piece_len;
    }
    if (u->expect != UINT64_MAX && u->out_len != u->expect) {
        /* Only the last piece's output length matters to a staged unit. */
        unit_fail(u, -EPROTO);
        return;
    }
    u->state = U_READY;
}

static void fetch(tiny_req *req, struct tiny_unit *u)
{
    struct tiny_msg m;

    u->copied = u->piece_off + u->piece_len;
    u->state = U_FETCH;
    msg_for(&m, TINY_MSG_FETCH, req, u);
    if (tiny_conn_send(req->conn, &m) < 0 && !req->err)
        req->err = -ECONNRESET;
}

/*
 * Copies a unit's output to a request's output that cannot stay in the
 * cache anyway: the stores go around the cache, so they do not first read
 * every line they overwrite, and they leave the slots and the input where
 * they are. memcpy() does this only for a single copy larger than most of
 * the cache, and a unit's output is at most a slot.
 */
static void copy_around_cache(unsigned char *dst, const unsigned char *src, size_t n)
{
#ifdef TINY_STREAM_STORES
    size_t head = (size_t)(-(uintptr_t)dst & 15);

    if (head > n)
        head = n;
    memcpy(dst, src, head);
    dst += head, src += head, n -= head;
    for (; n >= 64; n -= 64, dst += 64, src += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)src);
        __m128i b = _mm_loadu_si128((const __m128i *)(src + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(src + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(src + 48));

        _mm_stream_si128((__m128i *)dst, a);
        _mm_stream_si128((__m128i *)(dst + 16), b);
        _mm_stream_si128((__m128i *)(dst + 32), c);
        _mm_stream_si128((__m128i *)(dst + 48), d);
    }
    _mm_sfence(); /* before anyone learns the output is there */
#endif
    memcpy(dst, src, n);
}

/* Copies out completed units in order; after an error, only settles them. */
static void deliver(tiny_req *req)
{
    tiny_conn *c = req->conn;

    while (!req->err && req->count) {
        struct tiny_unit *u = ring_at(req, 0);

        if (u->state != U_READY)
            return;
        if (u->status < 0) {
            req->err = u->status;
            break;
        }
        if (u->piece_off == 0 && u->out_len > req->out_cap - req->out_pos) {
            req->err = -ENOSPC;
            break;
        }
        if (u->piece_len && !req->buf) { /* a buf's output stays in its slot */
            unsigned char *dst = req->out + req->out_pos + u->piece_off;

            if (req->in_len >= TINY_AROUND_CACHE_MIN)
                copy_around_cache(dst, tiny_slot_ptr(c, u->slot), u->piece_len);
            else
                memcpy(dst, tiny_slot_ptr(c, u->slot), u->piece_len);
        }
        if (u->piece_off + u->piece_len < u->out_len) {
            fetch(req, u);
            return;
        }
        req->out_pos += u->out_len;
        u->state = U_FREE;
        tiny_slot_release(req, u->slot);
        ring_pop_free(req);
    }
    if (!req->err)
        return;
    for (unsigned i = 0; i < req->count; i++) {
        struct tiny_unit *u = ring_at(req, i);

        if (u->state != U_READY)
            continue;
        if (u->status == 0 && u->staged && u->piece_off + u->piece_len < u->out_len) {
            fetch(req, u);
        } else {
            u->state = U_FREE;
            tiny_slot_release(req, u->slot);
        }
    }
    ring_pop_free(req);
}

/* 1 once the request is complete (result set). */
static int settle(tiny_req *req)
{
    if (req->finished)
        return 1;
    if (req->inflight == 0 && (req->err || (req->no_more && !req->have_next))) {
        req->result = req->err ? req->err : (ssize_t)req->out_pos;
    } else if (atomic_load(&req->conn->dead)) {
        req->result = -ECONNRESET;
    } else {
        return 0;
    }
    req->finished = 1;
    return 1;
}

/* Drives a request without callback; 1 when complete. */
static int drive(tiny_req *req, int block)
{
    struct tiny_msg m;

    for (;;) {
        int r;

        /* Deliver first: it frees slots, so fill() may block for one only
         * when the request truly holds none. */
        deliver(req);
        fill(req, block);
        if (settle(req))
            return 1;
        if (req->inflight == 0)
            return 0; /* not blocking, no slot yet */
        if (block && req->in_len <= TINY_SPIN_MAX &&
            (atomic_load(&req->conn->spin_ok) ||
             atomic_fetch_add(&req->conn->spin_tick, 1) % TINY_SPIN_PROBE == 0)) {
            int hit;

            r = tiny_conn_recv_spin(req->conn, TINY_MTYPE_REPLY + (long)req->tag, TINY_SPIN_NS, &m,
                                    &hit);
            atomic_store(&req->conn->spin_ok, hit);
        } else
            r = tiny_conn_recv(req->conn, TINY_MTYPE_REPLY + (long)req->tag, !block, &m);
        if (r == -ENOMSG)
            return 0;
        if (r == -EPROTO) {
            if (!req->err)
                req->err = r;
            continue;
        }
        if (r < 0) {
            if (!req->err)
                req->err = r;
            req->result = r == -ECONNRESET || atomic_load(&req->conn->dead) ? -ECONNRESET : r;
            req->finished = 1;
            return 1;
        }
        handle_msg(req, &m);
    }
}

/* ---- the progress thread ----------------------------------------------- */

static void progress_complete(tiny_req *req)
{
    tiny_conn *c = req->conn;

    if (req->buf)
        atomic_store(&req->buf->busy, 0);

    if (req->cb) {
        req->cb(req, req->result, req->cb_arg);
        free(req);
        return;
    }
    pthread_mutex_lock(&c->lock);
    req->done = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->lock);
}

void *tiny_progress_main(void *arg)
{
    tiny_conn *c = arg;
    tiny_req *active = NULL;
    struct tiny_msg m;

    pthread_setname_np(pthread_self(), "tiny-progress");
    for (;;) {
        tiny_req **pp;
        unsigned inflight = 0;
        int r;

        pthread_mutex_lock(&c->lock);
        if (c->cb_new) {
            /* Appended, so the oldest request takes free slots first. */
            for (pp = &active; *pp; pp = &(*pp)->pnext)
                ;
            *pp = c->cb_new;
            c->cb_new = NULL;
        }
        pthread_mutex_unlock(&c->lock);

        for (pp = &active; *pp;) {
            tiny_req *req = *pp;

            deliver(req);
            fill(req, 0);
            if (settle(req)) {
                *pp = req->pnext;
                progress_complete(req);
                continue;
            }
            inflight += req->inflight;
            pp = &req->pnext;
        }

        if (inflight) {
            r = tiny_conn_recv(c, TINY_MTYPE_REPLY, 0, &m);
            if (r == 0 && m.u.done.slot < c->n_slots && c->slot_req[m.u.done.slot]) {
                tiny_req *req = c->slot_req[m.u.done.slot];

                for (tiny_req *a = active; a; a = a->pnext)
                    if (a == req)
                        handle_msg(req, &m);
            }
            continue;
        }

        pthread_mutex_lock(&c->lock);
        if (!c->cb_new) {
            if (!active) {
                if (c->closing) {
                    pthread_mutex_unlock(&c->lock);
                    break;
                }
                pthread_cond_wait(&c->cv, &c->lock);
            } else if (!atomic_load(&c->dead) && !c->closing && c->n_free == 0) {
                /* Every active request waits for a slot. */
                c->slot_waiters++;
                pthread_cond_wait(&c->cv, &c->lock);
                c->slot_waiters--;
            }
        }
        pthread_mutex_unlock(&c->lock);
    }
    return NULL;
}

/* ---- public API -------------------------------------------------------- */

static int check_flags(int op, unsigned flags)
{
    unsigned ok = op == TINY_OP_FRAME_COMPRESS     ? TINY_F_NO_STREAM_ID
                  : op == TINY_OP_FRAME_DECOMPRESS ? TINY_F_CONTINUE
                                                   : 0;

    return flags & ~ok ? -EINVAL : 0;
}

/* @direct: the calling thread waits for the request at once and drives it. */
int tiny_req_submit(tiny_conn *conn, int op, unsigned flags, const void *in, size_t in_len,
                    void *out, size_t out_cap, tiny_callback cb, void *arg, int direct,
                    tiny_buf *buf, tiny_req **reqp)
{
    tiny_req *req;
    int r;

    if (reqp)
        *reqp = NULL;
    if (!conn || !tiny_op_known(op) || check_flags(op, flags) < 0 || (!in && in_len) ||
        (!out && out_cap) || (!cb && !reqp))
        return -EINVAL;
    if (atomic_load(&conn->dead))
        return -ECONNRESET;
    req = calloc(1, sizeof *req);
    if (!req)
        return -ENOMEM;
    req->conn = conn;
    req->buf = buf;
    req->op = op;
    req->flags = flags;
    req->in = in;
    req->in_len = in_len;
    req->out = out;
    req->out_cap = out_cap;
    req->cb = cb;
    req->cb_arg = arg;
    req->progress = !direct;
    r = tiny_req_plan(req);
    if (r < 0) {
        free(req);
        return r;
    }

    pthread_mutex_lock(&conn->lock);
    if (conn->closing || atomic_load(&conn->dead)) {
        r = -ECONNRESET;
        goto unlock;
    }
    if (req->progress && !conn->progress_started) {
        r = tiny_thread_start(&conn->progress, tiny_progress_main, conn);
        if (r < 0)
            goto unlock;
        conn->progress_started = 1;
    }
    if (!cb) {
        /* Until released by tiny_wait(); tiny_disconnect() frees the rest. */
        req->next = conn->reqs;
        if (conn->reqs)
            conn->reqs->prev = req;
        conn->reqs = req;
    }
    if (req->progress) {
        tiny_req **tail = &conn->cb_new;

        /* Set before the hand-over: the callback may run at once. In
         * submission order, so earlier requests get slots first. */
        if (reqp)
            *reqp = req;
        while (*tail)
            tail = &(*tail)->pnext;
        *tail = req;
        pthread_cond_broadcast(&conn->cv);
        pthread_mutex_unlock(&conn->lock);
        return 0;
    }
    pthread_mutex_unlock(&conn->lock);

    fill(req, 0);
    *reqp = req;
    return 0;

unlock:
    pthread_mutex_unlock(&conn->lock);
    free(req);
    return r;
}

static void req_release(tiny_req *req)
{
    tiny_conn *c = req->conn;

    pthread_mutex_lock(&c->lock);
    if (req->prev)
        req->prev->next = req->next;
    else
        c->reqs = req->next;
    if (req->next)
        req->next->prev = req->prev;
    pthread_mutex_unlock(&c->lock);
    free(req);
}

int tiny_submit(tiny_conn *conn, int op, unsigned flags, const void *in, size_t in_len, void *out,
                size_t out_cap, tiny_callback cb, void *arg, tiny_req **reqp)
{
    return tiny_req_submit(conn, op, flags, in, in_len, out, out_cap, cb, arg, 0, NULL, reqp);
}

ssize_t tiny_wait(tiny_req *req)
{
    tiny_conn *c;
    ssize_t r;

    if (!req || req->cb)
        return -EINVAL;
    c = req->conn;
    if (req->progress) {
        pthread_mutex_lock(&c->lock);
        while (!req->done)
            pthread_cond_wait(&c->cv, &c->lock);
        pthread_mutex_unlock(&c->lock);
    } else {
        while (!drive(req, 1))
            ;
    }
    r = req->result;
    if (req->buf)
        atomic_store(&req->buf->busy, 0);
    req_release(req);
    return r;
}

int tiny_poll(tiny_req *req)
{
    int done;

    if (!req || req->cb)
        return -EINVAL;
    if (!req->progress)
        return drive(req, 0);
    pthread_mutex_lock(&req->conn->lock);
    done = req->done;
    pthread_mutex_unlock(&req->conn->lock);
    return done;
}

ssize_t tiny_run(tiny_conn *conn, int op, unsigned flags, const void *in, size_t in_len, void *out,
                 size_t out_cap)
{
    tiny_req *req;
    int r = tiny_req_submit(conn, op, flags, in, in_len, out, out_cap, NULL, NULL, 1, NULL, &req);

    if (r < 0)
        return r;
    return tiny_wait(req);
}

ssize_t tiny_compress(tiny_conn *conn, const void *in, size_t in_len, void *out, size_t out_cap)
{
    return tiny_run(conn, TINY_OP_COMPRESS, 0, in, in_len, out, out_cap);
}

ssize_t tiny_decompress(tiny_conn *conn, const void *in, size_t in_len, void *out, size_t out_cap)
{
    return tiny_run(conn, TINY_OP_DECOMPRESS, 0, in, in_len, out, out_cap);
}

ssize_t tiny_frame_compress(tiny_conn *conn, const void *in, size_t in_len, void *out,
                            size_t out_cap)
{
    return tiny_run(conn, TINY_OP_FRAME_COMPRESS, 0, in, in_len, out, out_cap);
}

ssize_t tiny_frame_decompress(tiny_conn *conn, const void *in, size_t in_len, void *out,
                              size_t out_cap)
{
    return tiny_run(conn, TINY_OP_FRAME_DECOMPRESS, 0, in, in_len, out, out_cap);
}

int tiny_stats(tiny_conn *conn, struct tiny_stats *st)
{
    tiny_req req = {.conn = conn};
    struct tiny_unit u = {0};
    struct tiny_msg m;
    unsigned slot;
    int r;

    if (!conn || !st)
        return -EINVAL;
    r = tiny_slot_acquire(&req, 1, &slot);
    if (r < 0)
        return r;
    u.slot = slot;
    u.seq = atomic_fetch_add(&conn->seq, 1);
    msg_for(&m, TINY_MSG_STATS, &req, &u);
    r = tiny_conn_send(conn, &m);
    while (r == 0) {
        r = tiny_conn_recv(conn, TINY_MTYPE_REPLY + (long)req.tag, 0, &m);
        if (r == -EPROTO)
            break;
        if (r < 0)
            return r; /* the connection is gone: nothing to give back */
        if (m.hdr.type != TINY_MSG_DONE || m.u.done.slot != slot || m.u.done.seq != u.seq)
            continue;
        if (m.u.done.status < 0) {
            r = m.u.done.status;
        } else if (m.u.done.out_len > conn->slot_size) {
            r = -EPROTO;
        } else {
            size_t n = m.u.done.out_len < sizeof *st ? m.u.done.out_len : sizeof *st;

            memset(st, 0, sizeof *st);
            memcpy(st, tiny_slot_ptr(conn, slot), n);
        }
        break;
    }
    if (r == -ECONNRESET)
        return r;
    tiny_slot_release(&req, slot);
    return r;
}

void tiny_reqs_free(tiny_conn *conn)
{
    while (conn->reqs) {
        tiny_req *req = conn->reqs;

        conn->reqs = req->next;
        free(req);
    }
}
