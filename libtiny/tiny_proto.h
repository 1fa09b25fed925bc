/*
 * tiny_proto.h - the wire protocol between tinyd and libtiny.
 *
 * This header is the single definition of what crosses the process
 * boundary. docs/protocol.md tells the same story with diagrams.
 *
 * Objects
 *   registration queue  msgget(ftok(<run dir>/tinyd.key, TINY_FTOK_PROJ)),
 *                       mode 0600, owned by tinyd.
 *   private queue       one per client, IPC_PRIVATE, mode 0600, created by
 *                       tinyd; carries both directions, told apart by mtype.
 *   segment             one per client, IPC_PRIVATE, mode 0600, created and
 *                       attached by tinyd; n_slots * slot_size bytes. The
 *                       client attaches it and at once marks it for removal
 *                       (IPC_RMID), so it disappears when both have detached,
 *                       whatever happens to either process.
 *
 * Message types (mtype)
 *   TINY_MTYPE_DAEMON            every message to tinyd, on either queue
 *   HELLO.reply_mtype (>= 2)     the WELCOME for that HELLO, on the
 *                                registration queue; the client picks
 *                                TINY_MTYPE_REPLY + its thread id, so no other
 *                                client can receive it, and checks the nonce
 *   TINY_MTYPE_REPLY + tag       replies about the request `tag`, on the
 *                                private queue; one waiting thread receives
 *                                exactly its own replies
 *
 * Every message is one struct tiny_msg of exactly TINY_MSG_SIZE body bytes,
 * with magic and version checked first; anything else is dropped (on the
 * registration queue) or answered with -EPROTO and the client dropped (on a
 * private queue).
 *
 * Handshake
 *   client  -> reg   HELLO{pid, n_slots, slot_size, weight, nonce, reply_mtype}
 *   tinyd   -> reg   WELCOME{status, nonce, qid, shmid, geometry, daemon pid}
 *   client           shmat(shmid); shmctl(shmid, IPC_RMID)
 *   A client that has not attached within TINY_ATTACH_TIMEOUT_MS is dropped.
 *
 * Units
 *   A request of the library is cut into units; each unit is one SUBMIT on
 *   one slot and is answered by one DONE (possibly in pieces, see staging).
 *   The slot belongs to tinyd from SUBMIT until the (last) DONE.
 *
 *   In-slot unit (no TINY_UF_STAGED): the input is at [in_off, in_off+in_len)
 *   of the slot and must lie inside it. tinyd writes the output at [0, out_len)
 *   of the same slot, working in steps of at most one 64 KiB chunk; each step
 *   reads its input into tinyd's private memory before it writes, so the
 *   client places input where the worst-case output cannot overrun the input
 *   not yet read: at the end of the slot for the compressing ops
 *   (tiny_max_output(op, in_len) <= slot_size), and with
 *   in_len + output bound <= slot_size for TINY_OP_FRAME_DECOMPRESS.
 *   Output that would pass the end of the slot fails the unit with -ENOSPC.
 *
 *   Staged unit (TINY_UF_STAGED), for units larger than a small slot: the
 *   input of in_len <= TINY_STAGE_MAX bytes travels in pieces, each at offset
 *   0 of the slot: SUBMIT carries the first min(in_len, slot_size) bytes;
 *   tinyd answers MORE{piece_off = bytes received} and the client sends the
 *   next piece with PIECE{len}, until in_len bytes are in. The output comes
 *   back the same way: DONE{out_len, piece_off, piece_len} with the piece at
 *   offset 0; while piece_off + piece_len < out_len the client asks for the
 *   next piece with FETCH. tinyd keeps the staging memory from the first
 *   piece to the last.
 *
 *   tinyd never computes on shared memory: it copies input in, computes in
 *   private buffers, and copies output out, so a client that changes a slot
 *   while tinyd reads it gets wrong output for its own unit and nothing else.
 *
 * Per-op unit rules (tinyd checks them all; -EINVAL otherwise)
 *   COMPRESS          arg = total uncompressed length of the request when
 *                     TINY_UF_FIRST (tinyd writes it as the varint header);
 *                     every unit but the last holds a multiple of 64 KiB so
 *                     the units concatenate to exactly snappy_compress().
 *   DECOMPRESS        one complete raw snappy stream of at most
 *                     TINY_RAW_UNIT_MAX uncompressed bytes; arg = how many
 *                     leading bytes of its output to drop (the library puts
 *                     up to TINY_RAW_WINDOW bytes of earlier output there as
 *                     a literal, so copies across units resolve).
 *   FRAME_COMPRESS    chunks of at most 64 KiB; TINY_UF_FIRST without
 *                     TINY_F_NO_STREAM_ID writes the stream identifier first.
 *   FRAME_DECOMPRESS  whole chunks only; with TINY_UF_FIRST and without
 *                     TINY_F_CONTINUE the first chunk must be the stream
 *                     identifier. A partial chunk at the end: -EBADMSG.
 *   CHUNK_COMPRESS    at most TINY_CHUNK_MAX bytes -> exactly one data chunk.
 *   CHUNK_DECOMPRESS  exactly one data chunk (type 0x00 or 0x01).
 *
 * Liveness
 *   tinyd checks every TINY_REAP_INTERVAL_MS whether each client's process
 *   still exists and still has its segment attached; if not, it frees the
 *   client. It also frees a client whose queue has been full of tinyd's
 *   replies, untouched, for TINY_STUCK_TIMEOUT_MS (a reply that finds the
 *   queue full drops the client at once). The library checks the same of
 *   tinyd and, when tinyd is gone, removes the private queue itself so
 *   that every blocked receive returns.
 *   When tinyd stops it removes every queue: blocked clients get EIDRM.
 */
#ifndef TINY_PROTO_H
#define TINY_PROTO_H

#include <errno.h>
#include <stdint.h>

#include "tiny.h"

#define TINY_PROTO_VERSION 1
#define TINY_PROTO_MAGIC   0x54 /* 'T' */
#define TINY_FTOK_PROJ     'T'

/* Files in the run directory. */
#define TINY_KEY_FILE  "tinyd.key"  /* ftok() anchor; also holds the daemon's lock */
#define TINY_PID_FILE  "tinyd.pid"
#define TINY_IPC_FILE  "tinyd.ipc"  /* ids of the IPC objects tinyd created */

#define TINY_MTYPE_DAEMON 1L
#define TINY_MTYPE_REPLY  2L

/* Tags a client may use: replies carry TINY_MTYPE_REPLY + tag. */
#define TINY_TAGS_MAX 1024u

/* Largest staged unit (input or output). */
#define TINY_STAGE_MAX (640u << 10)
/* Largest uncompressed length of one DECOMPRESS unit (history included). */
#define TINY_RAW_UNIT_MAX (512u << 10)

#define TINY_ATTACH_TIMEOUT_MS 2000
#define TINY_REAP_INTERVAL_MS  250
#define TINY_STUCK_TIMEOUT_MS  2000

/* Unit flags, in the high bits of tiny_msg_submit.flags; the low bits carry
 * the public enum tiny_flags. */
#define TINY_UF_FIRST      (1u << 16) /* first unit of a request */
#define TINY_UF_STAGED     (1u << 17) /* see "Staged unit" above */
#define TINY_F_PUBLIC_MASK 0xffffu

enum tiny_msg_type {
    TINY_MSG_HELLO = 1, /* client -> registration queue */
    TINY_MSG_WELCOME,   /* registration queue -> client */
    TINY_MSG_SUBMIT,    /* client -> tinyd: a unit */
    TINY_MSG_PIECE,     /* client -> tinyd: next input piece of a staged unit */
    TINY_MSG_FETCH,     /* client -> tinyd: next output piece of a staged unit */
    TINY_MSG_MORE,      /* tinyd -> client: send the next input piece */
    TINY_MSG_DONE,      /* tinyd -> client: result, or one piece of it */
    TINY_MSG_STATS,     /* client -> tinyd: write struct tiny_stats into a slot */
    TINY_MSG_BYE,       /* client -> tinyd: disconnecting; no reply */
};

struct tiny_msg_hdr {
    uint8_t magic;   /* TINY_PROTO_MAGIC */
    uint8_t version; /* TINY_PROTO_VERSION */
    uint8_t type;    /* enum tiny_msg_type */
    uint8_t pad;
};

struct tiny_msg_hello {
    int32_t pid;          /* client process */
    uint32_t n_slots;     /* requested geometry; 0 = tinyd's default */
    uint64_t slot_size;
    int64_t reply_mtype;  /* >= TINY_MTYPE_REPLY */
    uint64_t nonce;
    uint32_t weight;      /* 1..1000; 0 = 1 */
    uint32_t pad;
};

struct tiny_msg_welcome {
    int32_t status;       /* 0 or a negative errno; nothing below is valid if < 0 */
    int32_t pid;          /* tinyd's process */
    int32_t qid;          /* private queue */
    int32_t shmid;        /* segment */
    uint64_t nonce;       /* echoed from HELLO */
    uint64_t slot_size;   /* granted geometry */
    uint32_t n_slots;
    uint32_t workers;
};

/* SUBMIT, PIECE, FETCH, STATS and BYE. */
struct tiny_msg_submit {
    uint32_t tag;         /* < TINY_TAGS_MAX; routes the replies */
    uint32_t seq;         /* echoed; PIECE and FETCH must repeat the SUBMIT's */
    uint32_t slot;        /* < n_slots */
    uint32_t op;          /* enum tiny_op (SUBMIT only) */
    uint32_t flags;       /* enum tiny_flags | TINY_UF_* (SUBMIT only) */
    uint32_t pad;
    uint64_t in_off;      /* in-slot units: input offset in the slot */
    uint64_t in_len;      /* SUBMIT: unit input length; PIECE: this piece's length */
    uint64_t arg;         /* per-op argument, see above */
};

/* DONE and MORE. */
struct tiny_msg_done {
    uint32_t tag;
    uint32_t seq;
    uint32_t slot;
    int32_t status;       /* 0 or a negative errno */
    uint64_t out_len;     /* DONE: total output length of the unit */
    uint64_t piece_off;   /* DONE: offset of this piece in the output; MORE: input received */
    uint64_t piece_len;   /* DONE: bytes at offset 0 of the slot now */
};

struct tiny_msg {
    long mtype;
    struct tiny_msg_hdr hdr;
    union {
        struct tiny_msg_hello hello;
        struct tiny_msg_welcome welcome;
        struct tiny_msg_submit submit;
        struct tiny_msg_done done;
    } u;
};

/* Body size handed to msgsnd() and expected from msgrcv(). */
#define TINY_MSG_SIZE (sizeof(struct tiny_msg) - sizeof(long))

static inline void tiny_msg_init(struct tiny_msg *m, long mtype, enum tiny_msg_type type)
{
    *m = (struct tiny_msg){0};
    m->mtype = mtype;
    m->hdr.magic = TINY_PROTO_MAGIC;
    m->hdr.version = TINY_PROTO_VERSION;
    m->hdr.type = (uint8_t)type;
}

/* 0 if a received message of @n bytes has the right size, magic and
 * version; -EPROTO otherwise. */
static inline int tiny_msg_check(const struct tiny_msg *m, long n)
{
    if (n != (long)TINY_MSG_SIZE || m->hdr.magic != TINY_PROTO_MAGIC ||
        m->hdr.version != TINY_PROTO_VERSION)
        return -EPROTO;
    return 0;
}

/* 1 if @op is one of enum tiny_op. */
static inline int tiny_op_known(int64_t op)
{
    return op >= TINY_OP_COMPRESS && op <= TINY_OP_CHUNK_DECOMPRESS;
}

#endif /* TINY_PROTO_H */
