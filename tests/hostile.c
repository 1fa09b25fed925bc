/*
 * hostile.c - a hostile client speaking the wire protocol directly
 * (tiny_proto.h) to the tinyd of $TINYD_DIR: garbage on the registration
 * queue, wrong versions, bad geometry, out-of-range slots, offsets, flags
 * and ops, busy slots, mismatched PIECE/FETCH, output past the slot,
 * corrupt data, unanswerable messages, a client that never attaches, a
 * thread flipping bytes of the segment while units run, a client that never
 * collects its replies, a process registering thousands of times (the
 * throughput of a well-behaved client during that flood is compared with
 * its throughput before it), and another uid trying the queues and the
 * segment. Each bad request must get the documented error (or the client
 * dropped), and a well-behaved libtiny client must keep working throughout.
 *
 * Run by a .t script with a tinyd started: tap_run hostile $TINY_BUILD/tests/hostile
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "tap.h"
#include "tiny.h"
#include "tiny_proto.h"
#include "util.h"

struct hconn {
    int qid, shmid;
    unsigned char *seg;
    size_t ss;
    unsigned ns;
};

static int regq;

static long reply_type(void)
{
    return TINY_MTYPE_REPLY + (long)getpid();
}

/* HELLO with the given fields; returns the WELCOME status or -ETIMEDOUT. */
static int hello(uint8_t version, unsigned ns, uint64_t ss, unsigned weight, struct hconn *h,
                 bool attach)
{
    struct tiny_msg m;

    tiny_msg_init(&m, TINY_MTYPE_DAEMON, TINY_MSG_HELLO);
    m.hdr.version = version;
    m.u.hello.pid = getpid();
    m.u.hello.n_slots = ns;
    m.u.hello.slot_size = ss;
    m.u.hello.weight = weight;
    m.u.hello.reply_mtype = reply_type();
    m.u.hello.nonce = 0xfeed;
    if (msgsnd(regq, &m, TINY_MSG_SIZE, 0) < 0)
        return -errno;
    for (int i = 0; i < 500; i++) {
        if (msgrcv(regq, &m, TINY_MSG_SIZE, reply_type(), IPC_NOWAIT) == (ssize_t)TINY_MSG_SIZE)
            break;
        if (i == 499)
            return -ETIMEDOUT;
        usleep(10000);
    }
    if (m.u.welcome.status < 0 || !h)
        return m.u.welcome.status;
    h->qid = m.u.welcome.qid;
    h->shmid = m.u.welcome.shmid;
    h->ss = m.u.welcome.slot_size;
    h->ns = m.u.welcome.n_slots;
    h->seg = NULL;
    if (attach) {
        h->seg = shmat(h->shmid, NULL, 0);
        if (h->seg == (void *)-1)
            return -errno;
        shmctl(h->shmid, IPC_RMID, NULL);
    }
    return 0;
}

static void tx(struct hconn *h, int type, uint32_t tag, uint32_t seq, uint32_t slot, uint32_t op,
               uint32_t flags, uint64_t off, uint64_t len, uint64_t arg)
{
    struct tiny_msg m;

    tiny_msg_init(&m, TINY_MTYPE_DAEMON, type);
    m.u.submit = (struct tiny_msg_submit){tag, seq, slot, op, flags, 0, off, len, arg};
    msgsnd(h->qid, &m, TINY_MSG_SIZE, IPC_NOWAIT);
}

/* The next reply for @tag: its status, or -errno of msgrcv, or -ETIMEDOUT. */
static int rx(struct hconn *h, uint32_t tag, struct tiny_msg *out)
{
    struct tiny_msg m;

    for (int i = 0; i < 500; i++) {
        ssize_t n = msgrcv(h->qid, &m, TINY_MSG_SIZE, TINY_MTYPE_REPLY + tag, IPC_NOWAIT);
        if (n == (ssize_t)TINY_MSG_SIZE) {
            if (out)
                *out = m;
            return m.u.done.status;
        }
        if (n < 0 && errno != ENOMSG)
            return -errno;
        usleep(10000);
    }
    return -ETIMEDOUT;
}

static int submit(struct hconn *h, uint32_t slot, uint32_t op, uint32_t flags, uint64_t off,
                  uint64_t len, uint64_t arg)
{
    tx(h, TINY_MSG_SUBMIT, 7, 1, slot, op, flags, off, len, arg);
    return rx(h, 7, NULL);
}

static bool queue_gone_within(int qid, int ms)
{
    struct msqid_ds ds;

    for (int i = 0; i < ms / 10; i++) {
        if (msgctl(qid, IPC_STAT, &ds) < 0)
            return true;
        usleep(10000);
    }
    return false;
}

/* A well-behaved client still gets service. */
static void still_serving(tiny_conn *good, const char *when)
{
    static char in[8192], out[16384], back[8192];
    ssize_t n, m;

    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (char)("hostile "[i % 8] + i / 512);
    n = tiny_compress(good, in, sizeof(in), out, sizeof(out));
    m = n > 0 ? tiny_decompress(good, out, (size_t)n, back, sizeof(back)) : n;
    ok(m == (ssize_t)sizeof(in) && memcmp(in, back, sizeof(in)) == 0,
       "a good client is still served %s", when);
}

static void registration_garbage(void)
{
    struct tiny_msg m;
    int st;

    tiny_msg_init(&m, TINY_MTYPE_DAEMON, TINY_MSG_HELLO);
    msgsnd(regq, &m, 5, 0); /* short */
    m.hdr.magic = 0;
    msgsnd(regq, &m, TINY_MSG_SIZE, 0); /* bad magic */
    tiny_msg_init(&m, TINY_MTYPE_DAEMON, TINY_MSG_SUBMIT);
    msgsnd(regq, &m, TINY_MSG_SIZE, 0); /* not a HELLO */
    tiny_msg_init(&m, TINY_MTYPE_DAEMON, TINY_MSG_HELLO);
    m.u.hello.reply_mtype = TINY_MTYPE_DAEMON; /* reserved reply type */
    msgsnd(regq, &m, TINY_MSG_SIZE, 0);
    st = hello(TINY_PROTO_VERSION + 1, 0, 0, 0, NULL, false);
    is_int(st, -EPROTO, "hello with another protocol version -> EPROTO");
    is_int(hello(TINY_PROTO_VERSION, TINY_SLOTS_MAX + 1, 0, 0, NULL, false), -EINVAL,
           "too many slots -> EINVAL");
    is_int(hello(TINY_PROTO_VERSION, 0, TINY_SLOT_SIZE_MIN - 1, 0, NULL, false), -EINVAL,
           "slot size below the minimum -> EINVAL");
    is_int(hello(TINY_PROTO_VERSION, 0, (uint64_t)TINY_SLOT_SIZE_MAX + 1, 0, NULL, false), -EINVAL,
           "slot size above the maximum -> EINVAL");
    is_int(hello(TINY_PROTO_VERSION, 0, 0, 1001, NULL, false), -EINVAL, "weight 1001 -> EINVAL");
}

static void bad_requests(void)
{
    const uint32_t F = TINY_UF_FIRST, S = TINY_UF_STAGED;
    struct hconn h;
    struct tiny_msg m;
    unsigned char buf[16384], z[8192];
    size_t n;

    if (!ok(hello(TINY_PROTO_VERSION, 2, 4096, 0, &h, true) == 0, "hostile client connects"))
        return;
    is_int(submit(&h, h.ns, TINY_OP_COMPRESS, F, 0, 10, 10), -EINVAL, "slot out of range");
    is_int(submit(&h, UINT32_MAX, TINY_OP_COMPRESS, F, 0, 10, 10), -EINVAL, "slot UINT32_MAX");
    is_int(submit(&h, 0, 0, 0, 0, 10, 0), -EINVAL, "op 0");
    is_int(submit(&h, 0, 77, 0, 0, 10, 0), -EINVAL, "op 77");
    is_int(submit(&h, 0, TINY_OP_COMPRESS, 1u << 24, 0, 10, 10), -EINVAL, "unknown flag");
    is_int(submit(&h, 0, TINY_OP_COMPRESS, 0, 4090, 10, 0), -EINVAL, "input past the slot");
    is_int(submit(&h, 0, TINY_OP_COMPRESS, 0, UINT64_MAX - 4, 10, 0), -EINVAL, "offset overflow");
    is_int(submit(&h, 0, TINY_OP_COMPRESS, 0, 8, UINT64_MAX - 4, 0), -EINVAL, "length overflow");
    is_int(submit(&h, 0, TINY_OP_COMPRESS, F, 0, 100, 50), -EINVAL,
           "compress total length below the unit");
    is_int(submit(&h, 0, TINY_OP_COMPRESS, S, 0, TINY_STAGE_MAX + 1, 0), -E2BIG,
           "staged unit over TINY_STAGE_MAX -> E2BIG");
    is_int(submit(&h, 0, TINY_OP_COMPRESS, S, 4, 100, 0), -EINVAL, "staged unit not at offset 0");
    is_int(submit(&h, 0, TINY_OP_CHUNK_COMPRESS, S, 0, TINY_CHUNK_MAX + 1, 0), -EINVAL,
           "chunk compress over 64 KiB");

    /* a staged unit left half received keeps its slot busy */
    tx(&h, TINY_MSG_SUBMIT, 9, 5, 0, TINY_OP_COMPRESS, S | F, 0, 10000, 10000);
    is_int(rx(&h, 9, &m), 0, "staged unit asks for more");
    ok(m.hdr.type == TINY_MSG_MORE && m.u.done.piece_off == 4096, "MORE after the first piece");
    is_int(submit(&h, 0, TINY_OP_COMPRESS, 0, 0, 10, 0), -EBUSY, "busy slot -> EBUSY");
    tx(&h, TINY_MSG_FETCH, 9, 5, 0, 0, 0, 0, 0, 0);
    is_int(rx(&h, 9, NULL), -EINVAL, "FETCH while receiving -> EINVAL");
    tx(&h, TINY_MSG_PIECE, 9, 6, 0, 0, 0, 0, 100, 0);
    is_int(rx(&h, 9, NULL), -EINVAL, "PIECE with another seq -> EINVAL");
    tx(&h, TINY_MSG_PIECE, 9, 5, 1, 0, 0, 0, 100, 0);
    is_int(rx(&h, 9, NULL), -EINVAL, "PIECE on another slot -> EINVAL");
    tx(&h, TINY_MSG_PIECE, 9, 5, 0, 0, 0, 0, 5000, 0);
    is_int(rx(&h, 9, NULL), -EINVAL, "PIECE larger than the slot -> EINVAL, unit aborted");
    memcpy(h.seg, "abcdefgh", 8);
    is_int(submit(&h, 0, TINY_OP_COMPRESS, F, 0, 8, 8), 0, "the slot is free again");
    tx(&h, TINY_MSG_FETCH, 9, 5, 1, 0, 0, 0, 0, 0);
    is_int(rx(&h, 9, NULL), -EINVAL, "FETCH on a free slot -> EINVAL");

    /* output that does not fit the slot */
    memset(z, 'x', sizeof(z));
    n = sizeof(buf);
    snappy_compress((char *)z, 8000, (char *)buf, &n);
    memcpy(h.seg, buf, n);
    is_int(submit(&h, 0, TINY_OP_DECOMPRESS, F, 0, n, 0), -ENOSPC,
           "in-slot output past the slot -> ENOSPC");
    is_int(submit(&h, 0, TINY_OP_DECOMPRESS, F, 0, n, 9000), -EINVAL,
           "decompress dropping more than the output -> EINVAL");
    memset(h.seg, 0xff, 64);
    is_int(submit(&h, 0, TINY_OP_DECOMPRESS, F, 0, 64, 0), -EBADMSG, "garbage raw -> EBADMSG");
    memcpy(h.seg, tiny_stream_id, TINY_STREAM_ID_LEN);
    memcpy(h.seg + 10,
           "\x42\x04\x00\x00"
           "abcd",
           8);
    is_int(submit(&h, 0, TINY_OP_FRAME_DECOMPRESS, F, 0, 18, 0), -EBADMSG,
           "reserved chunk type -> EBADMSG");
    memcpy(h.seg + 10, "\x00\xff\x00\x00", 4);
    is_int(submit(&h, 0, TINY_OP_FRAME_DECOMPRESS, F, 0, 18, 0), -EBADMSG,
           "truncated chunk -> EBADMSG");
    is_int(submit(&h, 0, TINY_OP_FRAME_DECOMPRESS, F, 10, 8, 0), -EBADMSG,
           "no stream identifier -> EBADMSG");
    memcpy(h.seg,
           "\x01\x08\x00\x00\x00\x00\x00\x00"
           "zzzz",
           12);
    is_int(submit(&h, 0, TINY_OP_CHUNK_DECOMPRESS, 0, 0, 12, 0), -EBADMSG,
           "chunk with a bad CRC -> EBADMSG");

    /* a bad tag cannot be answered: the client is dropped */
    tx(&h, TINY_MSG_SUBMIT, TINY_TAGS_MAX, 1, 0, TINY_OP_COMPRESS, 0, 0, 0, 0);
    ok(queue_gone_within(h.qid, 2000), "a bad tag drops the client");
    shmdt(h.seg);
}

static void *send_bad_version(void *arg)
{
    struct hconn *h = arg;
    struct tiny_msg m;

    usleep(100000);
    tiny_msg_init(&m, TINY_MTYPE_DAEMON, TINY_MSG_SUBMIT);
    m.hdr.version = TINY_PROTO_VERSION + 1;
    m.u.submit.tag = 3;
    msgsnd(h->qid, &m, TINY_MSG_SIZE, 0);
    return NULL;
}

static void unanswerable(void)
{
    struct hconn h;
    struct tiny_msg m;

    if (ok(hello(TINY_PROTO_VERSION, 1, 4096, 0, &h, true) == 0, "client for a bad version")) {
        pthread_t t;
        ssize_t n;

        /* tinyd answers, then removes the queue: only a receiver already
         * blocked in msgrcv is sure to get the answer. */
        pthread_create(&t, NULL, send_bad_version, &h);
        n = msgrcv(h.qid, &m, TINY_MSG_SIZE, TINY_MTYPE_REPLY + 3, 0);
        pthread_join(t, NULL);
        is_int(n == (ssize_t)TINY_MSG_SIZE ? m.u.done.status : -errno, -EPROTO,
               "a message of another version -> EPROTO");
        ok(queue_gone_within(h.qid, 2000), "... and the client is dropped");
        shmdt(h.seg);
    }
    if (ok(hello(TINY_PROTO_VERSION, 1, 4096, 0, &h, true) == 0, "client for a short message")) {
        tiny_msg_init(&m, TINY_MTYPE_DAEMON, TINY_MSG_SUBMIT);
        msgsnd(h.qid, &m, 9, 0);
        ok(queue_gone_within(h.qid, 2000), "a short message drops the client");
        shmdt(h.seg);
    }
    if (ok(hello(TINY_PROTO_VERSION, 1, 4096, 0, &h, true) == 0, "client for a long message")) {
        char big[sizeof(long) + TINY_MSG_SIZE + 32] = {0};
        long one = TINY_MTYPE_DAEMON;
        memcpy(big, &one, sizeof(one));
        msgsnd(h.qid, big, TINY_MSG_SIZE + 32, 0);
        ok(queue_gone_within(h.qid, 2000), "an oversized message drops the client");
        shmdt(h.seg);
    }
    if (ok(hello(TINY_PROTO_VERSION, 1, 4096, 0, &h, true) == 0, "client for a foreign type")) {
        tiny_msg_init(&m, TINY_MTYPE_DAEMON, TINY_MSG_WELCOME);
        m.u.submit.tag = 4;
        msgsnd(h.qid, &m, TINY_MSG_SIZE, 0);
        ok(queue_gone_within(h.qid, 2000), "a WELCOME sent to tinyd drops the client");
        shmdt(h.seg);
    }
    {
        unsigned x = 99, answered = 0, dropped = 0, clients = 0;

        /* Random bodies with a valid header: every field out of range. */
        for (int i = 0; i < 40; i++) {
            int hr = hello(TINY_PROTO_VERSION, 2, 4096, 0, &h, true);

            /* the memory of clients just gone may still be held for a
             * moment (their BYE is handled concurrently): retry a refusal */
            for (int w = 0; w < 100 && (hr == -ENOMEM || hr == -EUSERS || hr == -ENOSPC); w++) {
                usleep(50000);
                hr = hello(TINY_PROTO_VERSION, 2, 4096, 0, &h, true);
            }
            if (hr < 0) {
                diag("client %d of the garbage test was refused: %s", i, strerror(-hr));
                break;
            }
            clients++;
            for (int k = 0; k < 25; k++) {
                unsigned char *b = (unsigned char *)&m.u;

                tiny_msg_init(&m, TINY_MTYPE_DAEMON, TINY_MSG_SUBMIT);
                for (size_t j = 0; j < sizeof(m.u); j++) {
                    x = x * 1103515245u + 12345u;
                    b[j] = (unsigned char)(x >> 16);
                }
                static const uint8_t types[5] = {TINY_MSG_SUBMIT, TINY_MSG_PIECE, TINY_MSG_FETCH,
                                                 TINY_MSG_STATS, TINY_MSG_MORE};
                m.hdr.type = types[(x >> 24) % 5];
                m.u.submit.tag = (x >> 20) % 8 ? m.u.submit.tag % TINY_TAGS_MAX : m.u.submit.tag;
                if (msgsnd(h.qid, &m, TINY_MSG_SIZE, IPC_NOWAIT) < 0) {
                    dropped++;
                    break;
                }
                if (m.u.submit.tag < TINY_TAGS_MAX && rx(&h, m.u.submit.tag, NULL) != -ETIMEDOUT)
                    answered++;
            }
            tx(&h, TINY_MSG_BYE, 0, 0, 0, 0, 0, 0, 0, 0);
            shmdt(h.seg);
        }
        diag("%u clients sent random SUBMIT/PIECE/FETCH/STATS bodies: %u answered, %u clients "
             "dropped",
             clients, answered, dropped);
        ok(clients == 40, "random garbage on private queues: tinyd answers or drops, and lives");
    }
    if (ok(hello(TINY_PROTO_VERSION, 1, 4096, 0, &h, false) == 0, "client that never attaches"))
        ok(queue_gone_within(h.qid, TINY_ATTACH_TIMEOUT_MS + 2000),
           "it is dropped after the attach timeout");
}

/* --- a thread scribbling on the segment while tinyd runs units on it ------ */

struct flipper {
    unsigned char *seg;
    size_t len;
    atomic_bool stop;
    unsigned long flips;
};

/* The race with tinyd and with this process's own writes is the point:
 * not for ThreadSanitizer to report. */
__attribute__((no_sanitize("thread"))) static void *flip_main(void *arg)
{
    struct flipper *f = arg;
    unsigned x = 12345;

    while (!atomic_load(&f->stop)) {
        for (int i = 0; i < 256; i++) {
            x = x * 1103515245u + 12345u;
            ((volatile unsigned char *)f->seg)[(x >> 4) % f->len] ^= (unsigned char)(x >> 24 | 1);
            f->flips++;
        }
        usleep(20);
    }
    return NULL;
}

/* Runs one unit to its end, fetching staged output; returns its status. */
static int unit_run(struct hconn *h, uint32_t seq, uint32_t slot, uint32_t op, uint32_t flags,
                    uint64_t off, uint64_t len, uint64_t arg)
{
    struct tiny_msg m;
    int st;

    tx(h, TINY_MSG_SUBMIT, 5, seq, slot, op, flags, off, len, arg);
    for (;;) {
        st = rx(h, 5, &m);
        if (st < 0 || m.hdr.type != TINY_MSG_DONE || !(flags & TINY_UF_STAGED) ||
            m.u.done.piece_off + m.u.done.piece_len >= m.u.done.out_len)
            return st;
        tx(h, TINY_MSG_FETCH, 5, seq, slot, 0, 0, 0, 0, 0);
    }
}

static void slot_changed_while_read(tiny_conn *good)
{
    static unsigned char raw[65536], comp[80000];
    unsigned counts[6] = {0}, odd = 0, units = 0;
    struct flipper f = {0};
    struct hconn h;
    pthread_t t;
    size_t n = sizeof(comp);

    if (!ok(hello(TINY_PROTO_VERSION, 4, 65536, 0, &h, true) == 0, "scribbling client connects"))
        return;
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (unsigned char)("scribble"[i % 8] + (i / 4096));
    snappy_compress((char *)raw, 30000, (char *)comp, &n);
    f.seg = h.seg;
    f.len = (size_t)h.ns * h.ss;
    pthread_create(&t, NULL, flip_main, &f);
    for (uint32_t i = 0; i < 240; i++) {
        uint32_t slot = i % h.ns, kind = i % 6, seq = i + 1;
        unsigned char *sp = h.seg + (size_t)slot * h.ss;
        int st = 0;

        switch (kind) {
        case 0: /* raw compress, input at the end of the slot */
            memcpy(sp + h.ss - 40000, raw, 40000);
            st = unit_run(&h, seq, slot, TINY_OP_COMPRESS, TINY_UF_FIRST, h.ss - 40000, 40000,
                          40000);
            break;
        case 1: /* raw decompress */
            memcpy(sp + h.ss - n, comp, n);
            st = unit_run(&h, seq, slot, TINY_OP_DECOMPRESS, TINY_UF_FIRST, h.ss - n, n, 0);
            break;
        case 2: /* framed compress, staged */
            memcpy(sp, raw, 60000);
            st = unit_run(&h, seq, slot, TINY_OP_FRAME_COMPRESS, TINY_UF_FIRST | TINY_UF_STAGED, 0,
                          60000, 0);
            break;
        case 3: /* framed decompress of a stream id and one chunk */
            memcpy(sp + 30000, tiny_stream_id, TINY_STREAM_ID_LEN);
            sp[30010] = TINY_CHUNK_UNCOMPRESSED;
            tiny_put_le24(sp + 30011, 4 + 20000);
            tiny_put_le32(sp + 30014, tiny_crc32c_masked(raw, 20000));
            memcpy(sp + 30018, raw, 20000);
            st = unit_run(&h, seq, slot, TINY_OP_FRAME_DECOMPRESS, TINY_UF_FIRST, 30000, 20018, 0);
            break;
        case 4: /* one chunk */
            memcpy(sp + h.ss - 20000, raw, 20000);
            st = unit_run(&h, seq, slot, TINY_OP_CHUNK_COMPRESS, 0, h.ss - 20000, 20000, 0);
            break;
        case 5: /* stats into the slot */
            tx(&h, TINY_MSG_STATS, 5, seq, slot, 0, 0, 0, 0, 0);
            st = rx(&h, 5, NULL);
            break;
        }
        units++;
        if (st == 0)
            counts[kind]++;
        else if (st != -EBADMSG && st != -ENOSPC && st != -E2BIG && st != -EINVAL) {
            diag("unit %u (kind %u) ended with %d", i, kind, st);
            odd++;
            if (st == -ETIMEDOUT || st == -EIDRM || st == -EINVAL)
                break;
        }
    }
    atomic_store(&f.stop, true);
    pthread_join(t, NULL);
    diag("%u units ran while another thread flipped %lu bytes of the segment; succeeded: "
         "compress %u, decompress %u, frame %u, unframe %u, chunk %u, stats %u (the others "
         "failed with EBADMSG/ENOSPC/E2BIG)",
         units, f.flips, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5]);
    ok(units == 240 && odd == 0,
       "a slot changed while tinyd reads it: every unit answered, only with documented errors");
    still_serving(good, "while another client scribbled on its segment");
    tx(&h, TINY_MSG_BYE, 0, 0, 0, 0, 0, 0, 0, 0);
    shmdt(h.seg);
}

/* --- a client that never collects its replies ----------------------------- */

static void never_collects(tiny_conn *good)
{
    struct hconn h;
    struct tiny_msg m;
    unsigned sent = 0, full = 0;
    bool dropped = false;

    if (!ok(hello(TINY_PROTO_VERSION, 8, 4096, 0, &h, true) == 0, "lazy client connects"))
        return;
    memset(h.seg, 'z', (size_t)h.ns * h.ss);
    for (int i = 0; i < 20000 && !dropped; i++) {
        tiny_msg_init(&m, TINY_MTYPE_DAEMON, TINY_MSG_STATS);
        m.u.submit.tag = (uint32_t)i % TINY_TAGS_MAX;
        m.u.submit.slot = (uint32_t)i % h.ns;
        if (msgsnd(h.qid, &m, TINY_MSG_SIZE, IPC_NOWAIT) == 0) {
            sent++;
        } else if (errno == EAGAIN) {
            full++;
            usleep(1000);
        } else {
            dropped = true; /* EIDRM or EINVAL: the queue is gone */
        }
    }
    if (!dropped) /* generous: only a failing run waits for all of it */
        dropped = queue_gone_within(h.qid, 10000);
    diag("lazy client sent %u requests and collected no reply; its queue was full %u times", sent,
         full);
    ok(dropped, "tinyd drops a client that never collects its replies");
    still_serving(good, "after the lazy client");
    shmdt(h.seg);
}

/* --- a client whose queue is full of replies it leaves there ------------------ */

/* Requests one at a time, each answered before the next, until the replies
 * fill the queue: no reply ever finds the queue full, so only the reaper's
 * check of an untouched full queue can notice this client. */
static void leaves_replies(tiny_conn *good)
{
    struct hconn h;
    struct msqid_ds ds;
    struct tiny_msg m;
    unsigned n = 0;
    uint64_t t0;
    bool full = false, gone = false, dropped;

    if (!ok(hello(TINY_PROTO_VERSION, 1, 4096, 0, &h, true) == 0, "idle client connects"))
        return;
    while (!full && n < 4096) {
        tiny_msg_init(&m, TINY_MTYPE_DAEMON, TINY_MSG_STATS);
        m.u.submit.tag = n % TINY_TAGS_MAX;
        if (msgsnd(h.qid, &m, TINY_MSG_SIZE, IPC_NOWAIT) < 0)
            break;
        n++;
        /* wait until tinyd took the request and put its reply there */
        for (int i = 0; i < 2000 && !gone; i++) {
            gone = msgctl(h.qid, IPC_STAT, &ds) < 0;
            if (!gone && ds.msg_lspid != getpid() && ds.msg_lrpid != getpid() && ds.msg_qnum == n)
                break;
            usleep(500);
        }
        if (gone)
            break; /* dropped before its queue filled: reported below */
        full = ds.__msg_cbytes + TINY_MSG_SIZE > ds.msg_qbytes;
    }
    if (!ok(full, "its queue is full of %u replies it does not collect", n)) {
        tx(&h, TINY_MSG_BYE, 0, 0, 0, 0, 0, 0, 0, 0);
        shmdt(h.seg);
        return;
    }
    t0 = now_ns();
    dropped = queue_gone_within(h.qid, TINY_STUCK_TIMEOUT_MS + 3000);
    diag("idle client dropped after %llu ms", (unsigned long long)((now_ns() - t0) / 1000000u));
    ok(dropped, "tinyd drops it within %d ms + a check", TINY_STUCK_TIMEOUT_MS);
    still_serving(good, "after the idle client");
    shmdt(h.seg);
}

/* --- a process registering thousands of times ------------------------------ */

/* The flood: HELLOs as fast as the queue takes them, collecting and
 * attaching what is granted (up to the limit), half of them with a reply
 * type nobody ever reads. Runs until killed. */
static void flood(volatile unsigned long *sent)
{
    struct tiny_msg m;
    unsigned long hellos = 0;

    for (;;) {
        bool lost = hellos & 1;

        tiny_msg_init(&m, TINY_MTYPE_DAEMON, TINY_MSG_HELLO);
        m.u.hello.pid = getpid();
        m.u.hello.n_slots = 1;
        m.u.hello.slot_size = 4096;
        m.u.hello.reply_mtype = lost ? (long)getpid() + 5000000L : reply_type();
        m.u.hello.nonce = hellos;
        if (msgsnd(regq, &m, TINY_MSG_SIZE, IPC_NOWAIT) == 0)
            *sent = ++hellos;
        else if (errno == EAGAIN)
            usleep(200);
        else
            _exit(0);
        while (msgrcv(regq, &m, TINY_MSG_SIZE, reply_type(), IPC_NOWAIT) >= 0)
            if (m.u.welcome.status == 0)
                (void)shmat(m.u.welcome.shmid, NULL, SHM_RDONLY);
    }
}

/* MiB/s of compression a libtiny client gets over @ms milliseconds. */
static double throughput(tiny_conn *good, int ms)
{
    static char in[256 << 10], out[300 << 10];
    struct timespec t0, t1;
    double el = 0, bytes = 0;

    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (char)("throughput"[i % 10] + (i >> 12));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (el * 1000 < ms) {
        if (tiny_compress(good, in, sizeof(in), out, sizeof(out)) < 0)
            return -1;
        bytes += sizeof(in);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    }
    return bytes / el / (1 << 20);
}

static void registration_flood(tiny_conn *good)
{
    volatile unsigned long *sent;
    double base, during;
    struct msqid_ds ds = {0};
    struct tiny_stats st = {0};
    tiny_conn *late = NULL;
    pid_t pid;
    int r, late_r;

    base = throughput(good, 1000);
    sent = mmap(NULL, sizeof(*sent), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sent == MAP_FAILED)
        return;
    *sent = 0;
    pid = fork();
    if (pid == 0)
        flood(sent);
    usleep(300000);
    during = throughput(good, 1000);
    late_r = tiny_connect(&late, NULL);
    for (int i = 0; i < 100 && *sent < 3000; i++)
        usleep(50000);
    r = tiny_stats(good, &st);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    diag("a process sent %lu HELLOs, attaching every segment granted, half of them with a reply "
         "type nobody reads",
         *sent);
    diag("good client: %.0f MiB/s alone, %.0f MiB/s during the registration flood (%.0f%%); "
         "tinyd had %u of at most %u clients, %llu served in all",
         base, during, base > 0 ? 100 * during / base : 0, st.clients, st.clients_max,
         (unsigned long long)st.clients_total);
    ok(*sent >= 3000, "the flood registered thousands of times (%lu HELLOs)", *sent);
    munmap((void *)sent, sizeof(*sent));
    ok(r == 0 && st.clients <= st.clients_max && st.clients_total > st.clients_max,
       "thousands of registrations: the client limit holds (%u <= %u)", st.clients, st.clients_max);
    ok(base > 0 && during >= 0.25 * base,
       "a connected client keeps at least a quarter of its throughput during the flood");
    /* The registration queue is shared with the flood: a same-uid process
     * can keep it full, so a new client may also time out meanwhile. */
    ok(late_r == 0 || late_r == -EUSERS || late_r == -ETIMEDOUT,
       "a new client during the flood is served, refused (EUSERS) or times out (%s)",
       late_r ? strerror(-late_r) : "served");
    tiny_disconnect(late);
    for (int i = 0; i < 100; i++) {
        if (tiny_stats(good, &st) == 0 && st.clients == 1)
            break;
        usleep(50000);
    }
    is_int(st.clients, 1, "the flood's clients are freed once it is killed");
    for (int i = 0; i < 40; i++) {
        if (msgctl(regq, IPC_STAT, &ds) == 0 && ds.__msg_cbytes <= ds.msg_qbytes / 2)
            break;
        usleep(50000);
    }
    diag("registration queue after the flood: %lu messages, %lu of %lu bytes",
         (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes, (unsigned long)ds.msg_qbytes);
    ok(ds.__msg_cbytes <= ds.msg_qbytes / 2,
       "uncollected WELCOMEs of the flood do not clog the registration queue for good");
    late = NULL;
    r = tiny_connect(&late, NULL);
    ok(r == 0, "after the flood a new client connects (%d)", r);
    if (r == 0)
        still_serving(late, "(the new client) after the flood");
    tiny_disconnect(late);
}

/* --- another uid ------------------------------------------------------------ */

static void other_uid(void)
{
    struct hconn h;
    int fd[2], res[4] = {0};
    pid_t pid;

    if (geteuid() != 0) {
        ok(1, "# SKIP another uid needs root");
        return;
    }
    if (!ok(hello(TINY_PROTO_VERSION, 1, 4096, 0, &h, false) == 0, "a client to spy on"))
        return;
    if (pipe(fd) < 0)
        return;
    pid = fork();
    if (pid == 0) {
        struct tiny_msg m;
        void *p;

        close(fd[0]);
        if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
            _exit(1);
        tiny_msg_init(&m, TINY_MTYPE_DAEMON, TINY_MSG_HELLO);
        res[0] = msgsnd(regq, &m, TINY_MSG_SIZE, IPC_NOWAIT) < 0 ? errno : 0;
        res[1] = msgrcv(h.qid, &m, TINY_MSG_SIZE, 0, IPC_NOWAIT) < 0 ? errno : 0;
        p = shmat(h.shmid, NULL, 0);
        res[2] = p == (void *)-1 ? errno : 0;
        res[3] = shmctl(h.shmid, IPC_RMID, NULL) < 0 ? errno : 0;
        if (write(fd[1], res, sizeof(res)) != (ssize_t)sizeof(res))
            _exit(1);
        _exit(0);
    }
    close(fd[1]);
    if (read(fd[0], res, sizeof(res)) != (ssize_t)sizeof(res))
        res[0] = res[1] = res[2] = res[3] = -1;
    close(fd[0]);
    waitpid(pid, NULL, 0);
    diag("uid 65534 tried: HELLO on the registration queue, receiving on a private queue, "
         "attaching and removing a segment");
    is_int(res[0], EACCES, "another uid cannot send to the registration queue (EACCES)");
    is_int(res[1], EACCES, "another uid cannot read a client's private queue (EACCES)");
    is_int(res[2], EACCES, "another uid cannot attach a client's segment (EACCES)");
    ok(res[3] == EPERM || res[3] == EACCES, "another uid cannot remove it (%s)", strerror(res[3]));
    h.seg = shmat(h.shmid, NULL, 0);
    ok(h.seg != (void *)-1, "the owner still can attach it");
    if (h.seg != (void *)-1) {
        shmctl(h.shmid, IPC_RMID, NULL);
        tx(&h, TINY_MSG_BYE, 0, 0, 0, 0, 0, 0, 0, 0);
        shmdt(h.seg);
    }
}

int main(void)
{
    char dir[PATH_MAX], key[PATH_MAX + 16];
    tiny_conn *good = NULL;
    struct tiny_stats st;
    int r;

    if (tiny_default_dir(dir, sizeof(dir)) < 0)
        return 1;
    snprintf(key, sizeof(key), "%s/%s", dir, TINY_KEY_FILE);
    regq = msgget(ftok(key, TINY_FTOK_PROJ), 0);
    if (!ok(regq >= 0, "registration queue of %s found", dir))
        return done_testing();
    r = tiny_connect(&good, NULL);
    if (!ok(r == 0, "good client connects (%d)", r))
        return done_testing();
    registration_garbage();
    still_serving(good, "after garbage on the registration queue");
    bad_requests();
    still_serving(good, "after bad requests");
    unanswerable();
    still_serving(good, "after unanswerable messages");
    slot_changed_while_read(good);
    never_collects(good);
    leaves_replies(good);
    registration_flood(good);
    other_uid();
    still_serving(good, "at the end");
    /* The last hostile clients' BYE and exits are handled by their own
     * reader threads and the reaper, concurrently with this request: give
     * them the 2 s tinyd has to notice a client is gone, and a margin. */
    for (int i = 0; i < 150; i++) {
        r = tiny_stats(good, &st);
        if (r < 0 || st.clients == 1)
            break;
        usleep(20000);
    }
    ok(r == 0 && st.clients == 1, "only the good client is left within 3 s (%u clients)",
       st.clients);
    ok(st.errors > 0, "refused units are counted as errors (%llu)", (unsigned long long)st.errors);
    tiny_disconnect(good);
    return done_testing();
}
