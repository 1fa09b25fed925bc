/*
 * reader.c - one thread per client receives its messages (SUBMIT, PIECE,
 * FETCH, STATS, BYE) from its private queue, validates every field before
 * use (the checks that need no client state are the pure functions of
 * request.c), and either answers at once or hands a complete unit to the
 * scheduler.
 *
 * A client is untrusted: a request that can be answered (valid tag) but is
 * wrong gets DONE with a negative status; a message that cannot be
 * answered (bad size, magic, version or tag) drops the client. Replies use
 * IPC_NOWAIT so that a client that stops collecting them cannot block
 * tinyd; it is dropped instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <unistd.h>

#include "codec.h"
#include "log.h"
#include "reader.h"
#include "registry.h"
#include "request.h"
#include "sched.h"
#include "stats.h"

static void reply_send(struct client *c, struct tiny_msg *m)
{
    for (int tries = 0;; tries++) {
        if (msgsnd(c->qid, m, TINY_MSG_SIZE, IPC_NOWAIT) == 0)
            return;
        if (errno == EINTR)
            continue;
        /* A short grace for a queue that is only momentarily full. */
        if (errno == EAGAIN && tries < 20) {
            usleep(500);
            continue;
        }
        if (errno == EAGAIN)
            client_kill(c, "does not collect its replies");
        else if (errno != EIDRM && errno != EINVAL)
            tlog(LOG_WARNING, "cannot reply to client %u: %s", c->id, tiny_errno_text(errno));
        return;
    }
}

static void send_done(struct client *c, uint32_t tag, uint32_t seq, uint32_t slot, int status,
                      uint64_t out_len, uint64_t off, uint64_t len)
{
    struct tiny_msg m;

    tiny_msg_init(&m, TINY_MTYPE_REPLY + (long)tag, TINY_MSG_DONE);
    m.u.done.tag = tag;
    m.u.done.seq = seq;
    m.u.done.slot = slot;
    m.u.done.status = status;
    m.u.done.out_len = out_len;
    m.u.done.piece_off = off;
    m.u.done.piece_len = len;
    reply_send(c, &m);
}

/* No other message waits in @c's queue: not one for tinyd, and not a reply
 * the client has yet to collect (it may have more requests in flight). */
static bool queue_empty(struct client *c)
{
    struct msqid_ds ds;

    return msgctl(c->qid, IPC_STAT, &ds) == 0 && ds.msg_qnum == 0;
}

static void reject(struct client *c, const struct tiny_msg_submit *s, int status, uint64_t t)
{
    tlog(LOG_DEBUG, "client %u: request on slot %u refused: %s", c->id, s->slot,
         tiny_errno_text(-status));
    stats_unit(status, 0, 0, false, now_ns() - t);
    send_done(c, s->tag, s->seq, s->slot, status, 0, 0, 0);
}

static unsigned char *slot_ptr(struct client *c, uint32_t slot)
{
    return c->seg + (size_t)slot * c->slot_size;
}

static void stage_free(struct unit *u)
{
    free(u->stage_in);
    free(u->stage_out);
    mem_release(u->stage_in_cap + u->stage_out_cap);
    u->stage_in = u->stage_out = NULL;
    u->stage_in_cap = u->stage_out_cap = u->stage_in_got = 0;
}

void unit_complete(struct client *c, struct unit *u, int status)
{
    bool more = false;
    uint64_t piece = 0, out_len = status < 0 ? 0 : u->out_len;
    struct tiny_msg m;

    if (status == 0 && (u->flags & TINY_UF_STAGED)) {
        piece = out_len < c->slot_size ? out_len : c->slot_size;
        memcpy(slot_ptr(c, u->slot), u->stage_out, piece);
        u->sent = piece;
        more = piece < out_len;
    } else if (status == 0) {
        piece = out_len;
    }
    stats_unit(status, u->in_len, out_len, codec_compressing(u->op), now_ns() - u->t_arrival);
    if (status < 0)
        tlog(LOG_DEBUG, "client %u: unit on slot %u failed: %s", c->id, u->slot,
             tiny_errno_text(-status));
    tiny_msg_init(&m, TINY_MTYPE_REPLY + (long)u->tag, TINY_MSG_DONE);
    m.u.done.tag = u->tag;
    m.u.done.seq = u->seq;
    m.u.done.slot = u->slot;
    m.u.done.status = status;
    m.u.done.out_len = out_len;
    m.u.done.piece_off = 0;
    m.u.done.piece_len = piece;
    /* Free before the slot is handed back: the next SUBMIT may stage again. */
    if (!more)
        stage_free(u);
    if (sched_unit_done(c, u, more ? SLOT_SENDING : SLOT_FREE))
        reply_send(c, &m);
}

static void on_submit(struct client *c, const struct tiny_msg_submit *s, uint64_t t)
{
    bool staged = s->flags & TINY_UF_STAGED;
    struct unit *u;
    int r;

    r = req_submit_check(s, c->n_slots, c->slot_size);
    if (r < 0) {
        reject(c, s, r, t);
        return;
    }
    u = &c->units[s->slot];
    r = slot_claim(c, u, staged ? SLOT_RECEIVING : SLOT_QUEUED, true);
    if (r < 0) {
        reject(c, s, r, t);
        return;
    }
    u->tag = s->tag;
    u->seq = s->seq;
    u->slot = s->slot;
    u->op = s->op;
    u->flags = s->flags;
    u->in_off = s->in_off;
    u->in_len = s->in_len;
    u->arg = s->arg;
    u->in_pos = u->out_len = u->sent = 0;
    u->started = false;
    u->t_arrival = t;
    if (staged) {
        size_t first = s->in_len < c->slot_size ? s->in_len : c->slot_size;

        r = mem_reserve(s->in_len);
        if (r == 0) {
            u->stage_in = malloc(s->in_len);
            if (!u->stage_in) {
                mem_release(s->in_len);
                r = -ENOMEM;
            }
        }
        if (r < 0) {
            slot_release(c, u, true);
            reject(c, s, r, t);
            return;
        }
        u->stage_in_cap = s->in_len;
        memcpy(u->stage_in, slot_ptr(c, s->slot), first);
        u->stage_in_got = first;
        if (first < s->in_len) {
            struct tiny_msg m;

            tiny_msg_init(&m, TINY_MTYPE_REPLY + (long)u->tag, TINY_MSG_MORE);
            m.u.done.tag = u->tag;
            m.u.done.seq = u->seq;
            m.u.done.slot = u->slot;
            m.u.done.piece_off = first;
            reply_send(c, &m);
            return;
        }
    }
    sched_submit(c, u, sched_one_step(u) && queue_empty(c));
}

/* The staged unit a PIECE or FETCH names, if it is in state @st. */
static struct unit *staged_unit(struct client *c, const struct tiny_msg_submit *s,
                                enum slot_state st)
{
    struct unit *u;

    if (s->slot >= c->n_slots)
        return NULL;
    u = &c->units[s->slot];
    /* In these states only this thread writes the unit's fields. */
    if (!slot_is(u, st) || u->seq != s->seq || u->tag != s->tag)
        return NULL;
    return u;
}

static void on_piece(struct client *c, const struct tiny_msg_submit *s, uint64_t t)
{
    struct unit *u = staged_unit(c, s, SLOT_RECEIVING);
    struct tiny_msg m;

    if (!u) {
        reject(c, s, -EINVAL, t);
        return;
    }
    if (req_piece_check(s->in_len, c->slot_size, u->in_len, u->stage_in_got) < 0) {
        stage_free(u);
        slot_release(c, u, true);
        reject(c, s, -EINVAL, t);
        return;
    }
    memcpy(u->stage_in + u->stage_in_got, slot_ptr(c, s->slot), s->in_len);
    u->stage_in_got += s->in_len;
    if (u->stage_in_got == u->in_len) {
        sched_submit(c, u, sched_one_step(u) && queue_empty(c));
        return;
    }
    tiny_msg_init(&m, TINY_MTYPE_REPLY + (long)u->tag, TINY_MSG_MORE);
    m.u.done.tag = u->tag;
    m.u.done.seq = u->seq;
    m.u.done.slot = u->slot;
    m.u.done.piece_off = u->stage_in_got;
    reply_send(c, &m);
}

static void on_fetch(struct client *c, const struct tiny_msg_submit *s, uint64_t t)
{
    struct unit *u = staged_unit(c, s, SLOT_SENDING);
    uint64_t off, len, out_len;

    if (!u) {
        reject(c, s, -EINVAL, t);
        return;
    }
    off = u->sent;
    out_len = u->out_len;
    len = out_len - off < c->slot_size ? out_len - off : c->slot_size;
    memcpy(slot_ptr(c, s->slot), u->stage_out + off, len);
    u->sent += len;
    if (u->sent == out_len) {
        stage_free(u);
        slot_release(c, u, false);
    }
    send_done(c, s->tag, s->seq, s->slot, 0, out_len, off, len);
}

static void on_stats(struct client *c, const struct tiny_msg_submit *s, uint64_t t)
{
    struct tiny_stats st;
    struct unit *u;
    int r;

    if (s->slot >= c->n_slots) {
        reject(c, s, -EINVAL, t);
        return;
    }
    u = &c->units[s->slot];
    r = slot_claim(c, u, SLOT_RUNNING, false);
    if (r < 0) {
        reject(c, s, r, t);
        return;
    }
    stats_fill(&st);
    registry_counts(&st.clients, &st.shm_bytes);
    sched_counts(&st.queue_depth, &st.in_flight);
    memcpy(slot_ptr(c, s->slot), &st, sizeof(st));
    slot_release(c, u, false);
    send_done(c, s->tag, s->seq, s->slot, 0, sizeof(st), 0, sizeof(st));
}

/* Returns false when the client is finished with. */
static bool handle(struct client *c, const struct tiny_msg *m, long n, uint64_t t)
{
    const struct tiny_msg_submit *s = &m->u.submit;
    const char *why;
    bool answer;

    switch (req_classify(m, n, &answer, &why)) {
    case REQ_BYE:
        client_kill(c, "disconnected");
        return false;
    case REQ_DROP:
        if (answer)
            send_done(c, s->tag, s->seq, s->slot, -EPROTO, 0, 0, 0);
        client_kill(c, why);
        return false;
    case REQ_SERVE:
        break;
    }
    switch (m->hdr.type) {
    case TINY_MSG_SUBMIT:
        on_submit(c, s, t);
        break;
    case TINY_MSG_PIECE:
        on_piece(c, s, t);
        break;
    case TINY_MSG_FETCH:
        on_fetch(c, s, t);
        break;
    case TINY_MSG_STATS:
        on_stats(c, s, t);
        break;
    }
    return true;
}

void *reader_main(void *arg)
{
    struct client *c = arg;
    union rxbuf rx;
    char name[16];

    /* named after the client, for top -H and perf */
    snprintf(name, sizeof name, "tinyd-c%d", (int)c->pid);
    pthread_setname_np(pthread_self(), name);

    for (;;) {
        ssize_t n = msgrcv(c->qid, &rx.raw, sizeof(rx.raw.body), TINY_MTYPE_DAEMON, MSG_NOERROR);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EIDRM || errno == EINVAL)
                client_kill(c, "queue removed");
            else
                client_kill(c, tiny_errno_text(errno));
            break;
        }
        if (!handle(c, &rx.m, (long)n, now_ns()))
            break;
    }
    return NULL;
}
