/*
 * internal.h - what the files of libtiny share and nobody else sees: the
 * connection object (conn.c), requests and their units (req.c drives them,
 * cut.c cuts them, buf.c is the zero-copy API) and the raw-stream cutter
 * (rawsplit.c). Not installed.
 */
#ifndef TINY_INTERNAL_H
#define TINY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "format.h"
#include "tiny.h"
#include "tiny_proto.h"

/* Units one request keeps in flight at most: min(n_slots, this). Two
 * running and up to six queued, so that the workers still find work while
 * the client, woken late (a wake-up on an idle vCPU costs ~20 us), copies
 * out the oldest unit and cuts the next ones: 8 measured ~8 % faster than 4
 * for raw DECOMPRESS. A second thread sharing the connection still gets
 * slots: a request with a unit in flight takes no more while another thread
 * waits for one (req.c). */
#define TINY_REQ_INFLIGHT 8u

/* Output a unit of a large request aims for: four 64 KiB steps. */
#define TINY_UNIT_TARGET (256u << 10)

/* Requests with this much input or more copy their output out around the
 * cache (req.c): it would not stay there. */
#define TINY_AROUND_CACHE_MIN (8u << 20)

/* A blocking request of at most TINY_SPIN_MAX input bytes is one short
 * step in tinyd, answered a few microseconds after its reader wakes up; the
 * caller polls for the reply for up to TINY_SPIN_NS before it sleeps,
 * because waking a thread on an idle vCPU costs ~20-50 us, more than the
 * work. Polling only pays while tinyd answers that fast: once a poll runs
 * out (tinyd is busy, and a polling caller would take CPU from its
 * workers), a connection stops polling but for one small request in
 * TINY_SPIN_PROBE, which finds out when tinyd is quick again. */
#define TINY_SPIN_MAX   (16u << 10)
#define TINY_SPIN_NS    50000u
#define TINY_SPIN_PROBE 16u

/*
 * Where the input of a unit comes from: a short list of segments, each
 * taken from the unit's own header bytes, the request's input or the
 * request's output (the history of a raw unit). Offsets, not pointers, so a
 * unit can be moved.
 */
enum tiny_src_kind { TINY_SRC_HDR, TINY_SRC_IN, TINY_SRC_OUT };

struct tiny_seg {
    unsigned kind;
    size_t off, len;
};

#define TINY_SRC_SEGS 8

struct tiny_src {
    unsigned char hb[32]; /* header bytes written by the library */
    size_t hb_len;
    struct tiny_seg seg[TINY_SRC_SEGS];
    unsigned n_seg;
    size_t len; /* total bytes */
};

void tiny_src_reset(struct tiny_src *s);
/* Appends @n header bytes to hb and a segment for them. */
void tiny_src_hdr(struct tiny_src *s, const unsigned char *p, size_t n);
void tiny_src_add(struct tiny_src *s, unsigned kind, size_t off, size_t len);
/* Copies bytes [off, off+n) of the unit's input to @dst. */
void tiny_src_copy(const struct tiny_src *s, const unsigned char *in, const unsigned char *out,
                   size_t off, unsigned char *dst, size_t n);

/*
 * Raw snappy stream cutter (rawsplit.c). tiny_rawsplit_next() returns the
 * next unit as a complete raw stream: varint(hist + out_len), a literal of
 * the hist bytes of output before out_start (taken from the caller's output
 * buffer once they are there), then the unit's elements.
 */
struct tiny_rawsplit {
    const unsigned char *in;
    size_t in_len;
    size_t pos;        /* input offset of the next element (or of a split literal's rest) */
    size_t lit_left;   /* bytes of a split literal still to emit at pos */
    uint64_t total;    /* uncompressed length announced by the header */
    uint64_t out;      /* output offset where the next unit starts */
    size_t out_budget; /* output bytes per unit at most */
    size_t in_budget;  /* element bytes (with rewritten literal headers) per unit at most */
};

struct tiny_rawunit {
    struct tiny_src src;
    uint64_t out_start;
    uint64_t out_len;
    size_t hist;
};

/* 0, or -EBADMSG if the header is bad, -EINVAL if a budget is too small. */
int tiny_rawsplit_init(struct tiny_rawsplit *rs, const void *in, size_t in_len, size_t out_budget,
                       size_t in_budget);
/* 1 and a unit, 0 at the end, -EBADMSG for corrupt data, -ENOTSUP for a copy
 * reaching back more than TINY_RAW_WINDOW across the cut. */
int tiny_rawsplit_next(struct tiny_rawsplit *rs, struct tiny_rawunit *u);

/* Connection (conn.c). */
struct tiny_conn {
    int qid;
    int shmid;
    pid_t daemon_pid;
    unsigned char *base;
    size_t slot_size;
    unsigned n_slots;
    unsigned workers;
    unsigned cap; /* units in flight per request */
    atomic_int dead;
    atomic_uint seq;
    atomic_int spin_ok;    /* small replies came while their caller polled */
    atomic_uint spin_tick; /* small blocking requests, for the probe */

    pthread_mutex_t lock;
    pthread_cond_t cv; /* slots and tags freed, callback requests queued, death */
    unsigned *free_slots;
    unsigned n_free;
    unsigned slot_waiters;
    unsigned *free_tags;
    unsigned n_free_tags;
    int closing;

    /* Callback requests: handed over under lock, then owned by the
     * progress thread, which alone touches slot_req and the active list. */
    struct tiny_req *cb_new;
    struct tiny_req **slot_req;
    int progress_started;
    pthread_t progress;

    /* Requests without callback not yet released, for tiny_disconnect(). */
    struct tiny_req *reqs;

    pthread_t watchdog;
    pthread_cond_t wd_cv;
    int wd_stop;
};

/* Marks the connection dead and removes its queue so that every thread
 * blocked on it wakes up. Idempotent. */
void tiny_conn_kill(tiny_conn *conn);
/* msgsnd/msgrcv with EINTR retried and a gone queue mapped to -ECONNRESET.
 * tiny_conn_recv returns 0 and a checked message, -ENOMSG (nowait, none),
 * -EPROTO or -ECONNRESET. */
int tiny_conn_send(tiny_conn *conn, struct tiny_msg *m);
int tiny_conn_recv(tiny_conn *conn, long mtype, int nowait, struct tiny_msg *m);
/* tiny_conn_recv() that polls for up to @spin_ns before it blocks; *@hit
 * tells whether the message came while polling. */
int tiny_conn_recv_spin(tiny_conn *conn, long mtype, uint64_t spin_ns, struct tiny_msg *m,
                        int *hit);
/* Starts a thread with every signal blocked. */
int tiny_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

/*
 * Requests. A request's units run in slots, at most TINY_REQ_INFLIGHT of
 * them in its ring; req->nu is the next one, cut (cut.c) but not yet sent
 * (req.c).
 */
enum unit_state { U_RUN, U_READY, U_FETCH, U_FREE };

struct tiny_unit {
    struct tiny_src src;
    uint64_t arg;
    uint32_t flags; /* public flags | TINY_UF_FIRST */
    int staged;
    int need_hist;      /* raw unit whose input includes earlier output */
    uint64_t out_start; /* where that output ends */
    uint64_t expect;    /* exact output length, or UINT64_MAX */
    /* while in flight */
    uint32_t seq;
    unsigned slot;
    int state;
    int status;
    size_t in_sent;
    uint64_t out_len, piece_off, piece_len, copied;
};

struct tiny_req {
    tiny_conn *conn;
    struct tiny_buf *buf;         /* a zero-copy request: its one unit runs in buf's slot */
    struct tiny_req *next, *prev; /* conn->reqs: not yet released by tiny_wait() */
    struct tiny_req *pnext;       /* the progress thread's lists */
    int op;
    unsigned flags;
    const unsigned char *in;
    size_t in_len;
    unsigned char *out;
    size_t out_cap;
    size_t out_pos;
    tiny_callback cb;
    void *cb_arg;
    int progress; /* driven by the progress thread */
    int done;     /* progress requests: complete, under conn->lock */
    unsigned tag;
    int err;
    int finished;
    ssize_t result;

    /* cutting */
    size_t cut_pos;
    size_t target; /* unit size: input (compressing ops) or output bound */
    int first_done;
    int no_more;
    int have_next;
    int split; /* raw stream cut by rawsplit */
    uint64_t raw_total;
    struct tiny_rawsplit rs;
    struct tiny_unit nu; /* the next unit, cut but not yet sent */

    /* in flight, in submission order */
    struct tiny_unit ring[TINY_REQ_INFLIGHT];
    unsigned head, count, inflight;
};

struct tiny_buf {
    tiny_conn *conn;
    int op;
    unsigned slot;
    size_t in_off, in_cap;
    atomic_int busy; /* a request of this buf is in flight */
};

/* Takes a slot (and a tag) for @req; -EAGAIN if none is free and !@block (req.c). */
int tiny_slot_acquire(tiny_req *req, int block, unsigned *slot);
/* Gives back a slot of tiny_slot_acquire(), and the tag with the last one (req.c). */
void tiny_slot_release(tiny_req *req, unsigned slot);
/* The first byte of @slot in the shared segment (req.c). */
unsigned char *tiny_slot_ptr(tiny_conn *c, unsigned slot);
/* Creates, checks and starts a request; @direct: its caller drives it (req.c). */
int tiny_req_submit(tiny_conn *conn, int op, unsigned flags, const void *in, size_t in_len,
                    void *out, size_t out_cap, tiny_callback cb, void *arg, int direct,
                    tiny_buf *buf, tiny_req **reqp);
/* Per-op checks and unit sizes at submission; bad data sets req->err (cut.c). */
int tiny_req_plan(tiny_req *req);
/* Cuts the next unit into req->nu, or sets req->no_more or req->err (cut.c). */
void tiny_req_prepare_next(tiny_req *req);
/* tiny_req_plan() for a request of a tiny_buf (buf.c). */
int tiny_req_plan_buf(tiny_req *req);

/* Request engine hooks (req.c) used by tiny_disconnect(). */
void *tiny_progress_main(void *arg);
void tiny_reqs_free(tiny_conn *conn);

#endif /* TINY_INTERNAL_H */
