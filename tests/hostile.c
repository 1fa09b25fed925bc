/*
 * hostile.c - a hostile client speaking the wire protocol directly
 * (tiny_proto.h) to the tinyd of $TINYD_DIR: garbage on the registration
 * queue, wrong versions, bad geometry, out-of-range slots, offsets, flags
 * and ops, busy slots, mismatched PIECE/FETCH, output past the slot,
 * corrupt data, unanswerable messages, a client that never attaches. Each
 * bad request must get the documented error (or the client dropped), and
 * a well-behaved libtiny client must keep working throughout.
 *
 * Run by a .t script with a tinyd started: tap_run hostile $TINY_BUILD/tests/hostile
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "tap.h"
#include "tiny.h"
#include "tiny_proto.h"

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
    if (ok(hello(TINY_PROTO_VERSION, 1, 4096, 0, &h, false) == 0, "client that never attaches"))
        ok(queue_gone_within(h.qid, TINY_ATTACH_TIMEOUT_MS + 2000),
           "it is dropped after the attach timeout");
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
    r = tiny_stats(good, &st);
    ok(r == 0 && st.clients == 1, "only the good client is left (%u clients)", st.clients);
    ok(st.errors > 0, "refused units are counted as errors (%llu)", (unsigned long long)st.errors);
    tiny_disconnect(good);
    return done_testing();
}
