/*
 * tiny.h - client library of the tinyd snappy compression service.
 *
 * A process connects to a running tinyd, which gives it a private System V
 * message queue and a private shared-memory segment of n_slots slots of
 * slot_size bytes. Every operation below copies its input into free slots,
 * asks tinyd to work on them, and copies the results out; inputs of any size
 * are cut into units that fit and are kept in flight several at a time, so
 * callers never see the slots.
 *
 * Conventions, everywhere in this header:
 *  - functions return 0 or a byte count on success and a negative errno
 *    value on failure; tiny_strerror() describes the codes in tinyd's terms;
 *  - the library never prints, never exits and never raises signals;
 *  - a tiny_conn may be shared by any number of threads; a tiny_req belongs
 *    to whoever submitted it until it is waited for (or its callback ran);
 *  - buffers are owned by the caller; the library reads `in` and writes
 *    `out` only between the submission and the completion of a request.
 *
 * Error codes with a tinyd-specific meaning:
 *   -ECONNREFUSED  no tinyd is listening on the run directory
 *   -ECONNRESET    tinyd exited or restarted; reconnect to go on
 *   -EPROTO        tinyd speaks another protocol version
 *   -EBADMSG       compressed input is corrupt or truncated (bad CRC, bad snappy data)
 *   -ENOSPC        the output buffer is too small for the result
 *   -EUSERS        tinyd serves its maximum number of clients
 *   -ENOMEM        tinyd's or the library's memory limit was reached
 *   -EINVAL        an argument is out of range (geometry, flags, op)
 *   -ENOTSUP       a raw snappy stream larger than one unit refers back
 *                  further than the library's streaming window (see
 *                  TINY_RAW_WINDOW); no encoder in common use does that
 */
#ifndef TINY_H
#define TINY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols exported from libtiny.so; everything else in it is hidden. */
#if defined(__GNUC__)
#define TINY_API __attribute__((visibility("default")))
#else
#define TINY_API
#endif

#define TINY_VERSION_MAJOR 1
#define TINY_VERSION_MINOR 0

/* Environment variable naming tinyd's run directory (overrides the default). */
#define TINY_ENV_DIR "TINYD_DIR"

/* Geometry bounds accepted by tinyd. */
#define TINY_SLOT_SIZE_MIN     4096u
#define TINY_SLOT_SIZE_MAX     (16u << 20)
#define TINY_SLOTS_MAX         128u
#define TINY_SLOT_SIZE_DEFAULT (1u << 20)
#define TINY_SLOTS_DEFAULT     8u

/* Snappy framing format: largest uncompressed payload of one chunk. */
#define TINY_CHUNK_MAX 65536u
/* Bytes a framed chunk adds to its payload: 4 header + 4 masked CRC-32C. */
#define TINY_CHUNK_OVERHEAD 8u
/* The stream identifier chunk that starts every framing-format stream. */
#define TINY_STREAM_ID_LEN 10u

/* How far back, in bytes of output, a raw snappy stream larger than one unit
 * may refer across a unit boundary. Every snappy encoder in common use
 * compresses in independent 64 KiB blocks, so their streams never need more. */
#define TINY_RAW_WINDOW 65536u

/* Opaque handles. */
typedef struct tiny_conn tiny_conn;
typedef struct tiny_req tiny_req;
typedef struct tiny_buf tiny_buf;

/* Operations. Numbers are part of the wire protocol. */
enum tiny_op {
    TINY_OP_COMPRESS = 1,     /* raw snappy; output identical to snappy_compress() */
    TINY_OP_DECOMPRESS,       /* raw snappy; validated */
    TINY_OP_FRAME_COMPRESS,   /* framing format (.sz): stream identifier + chunks */
    TINY_OP_FRAME_DECOMPRESS, /* framing format; every CRC checked */
    TINY_OP_CHUNK_COMPRESS,   /* at most TINY_CHUNK_MAX bytes -> one framed chunk */
    TINY_OP_CHUNK_DECOMPRESS, /* exactly one framed data chunk -> its payload */
};

/* Flags for tiny_submit() and tiny_run(). */
enum tiny_flags {
    /* TINY_OP_FRAME_COMPRESS: emit no stream identifier, so the output can be
     * appended to an earlier framed stream. */
    TINY_F_NO_STREAM_ID = 1u << 0,
    /* TINY_OP_FRAME_DECOMPRESS: the input continues a stream, so it need not
     * begin with a stream identifier. */
    TINY_F_CONTINUE = 1u << 1,
};

/* Connection options; zeroed fields take their defaults. */
struct tiny_options {
    const char *dir;  /* run directory; default $TINYD_DIR, else $XDG_RUNTIME_DIR/tinyd,
                       * else /tmp/tinyd-$UID */
    unsigned n_slots; /* slots in the segment, 1..TINY_SLOTS_MAX; default 8 */
    size_t slot_size; /* bytes per slot, TINY_SLOT_SIZE_MIN..MAX; default 1 MiB */
    unsigned weight;  /* fair-share weight 1..1000; default 1 */
};

/* Daemon statistics, as returned by tiny_stats(). Latencies are measured in
 * tinyd from the arrival of a unit to its reply. */
struct tiny_stats {
    uint32_t version;       /* protocol version of the daemon */
    uint32_t workers;       /* worker threads */
    uint32_t clients;       /* connected clients */
    uint32_t clients_max;   /* client limit */
    uint64_t clients_total; /* clients served since start */
    uint64_t requests;      /* units completed */
    uint64_t errors;        /* units answered with an error */
    uint64_t bytes_in;      /* input bytes of completed units */
    uint64_t bytes_out;     /* output bytes of completed units */
    uint64_t compress_in;   /* input bytes of compressing units */
    uint64_t compress_out;  /* their output bytes */
    uint32_t queue_depth;   /* units waiting for a worker now */
    uint32_t in_flight;     /* units accepted and not yet answered */
    uint64_t lat_p50_ns;    /* unit latency percentiles over the last requests */
    uint64_t lat_p90_ns;
    uint64_t lat_p99_ns;
    uint64_t lat_max_ns;
    uint64_t shm_bytes; /* shared memory held by all clients' segments */
    uint64_t uptime_ns;
    int32_t pid; /* tinyd's process id */
    uint32_t reserved[7];
};

/* Completion callback of an asynchronous request: `result` is what
 * tiny_wait() would have returned. It runs on a thread of the library, must
 * not block for long, and may submit new requests. After it returns the
 * request is released; do not wait for it. */
typedef void (*tiny_callback)(tiny_req *req, ssize_t result, void *arg);

/*
 * tiny_connect - register with tinyd and map a private segment.
 * @conn: receives the connection handle on success.
 * @opt:  connection options, or NULL for all defaults.
 *
 * Returns 0, or -ECONNREFUSED (no tinyd), -EPROTO, -EUSERS, -ENOMEM,
 * -EINVAL (geometry out of range) or another negative errno.
 * Blocks until tinyd answers or is known to be absent (at most a few
 * seconds). Thread-safe. The library starts a small watchdog thread per
 * connection that notices a dead tinyd within a second.
 */
TINY_API int tiny_connect(tiny_conn **conn, const struct tiny_options *opt);

/*
 * tiny_disconnect - tell tinyd goodbye and free everything the connection
 * holds. Requests still in flight fail with -ECONNRESET; their callbacks run
 * before it returns. Accepts NULL. Must not race with other calls on the
 * same connection.
 */
TINY_API void tiny_disconnect(tiny_conn *conn);

/* The names of the original TinyFile design. */
static inline int tiny_initialize(tiny_conn **conn, const struct tiny_options *opt)
{
    return tiny_connect(conn, opt);
}
static inline void tiny_finalize(tiny_conn *conn)
{
    tiny_disconnect(conn);
}

/*
 * tiny_submit - start an operation asynchronously.
 * @op, @flags: what to do (enum tiny_op, enum tiny_flags).
 * @in, @in_len: input; must stay valid and unchanged until completion.
 * @out, @out_cap: output buffer; written until completion.
 * @cb, @arg: optional completion callback; NULL to collect the result with
 *            tiny_wait() or tiny_poll().
 * @req: receives the request handle (may be NULL when @cb is given).
 *
 * Returns 0 once the request is accepted; its result comes later.
 * Returns -EINVAL for a bad op or flag, -ECONNRESET if tinyd is gone.
 * Never waits for tinyd or for a slot: a progress thread of the library
 * (started on first use) moves the request through the slots, so requests
 * submitted and not yet waited for keep going by themselves. Thread-safe.
 */
TINY_API int tiny_submit(tiny_conn *conn, int op, unsigned flags, const void *in, size_t in_len,
                         void *out, size_t out_cap, tiny_callback cb, void *arg, tiny_req **req);

/*
 * tiny_wait - wait for a request without a callback and release it.
 * Returns the number of bytes written to `out`, or a negative errno.
 * Blocks. Call it once per request, from one thread.
 */
TINY_API ssize_t tiny_wait(tiny_req *req);

/*
 * tiny_poll - make progress on a request without blocking.
 * Returns 1 when it has completed (tiny_wait() then returns at once), 0 while
 * it is in progress. Never blocks. Same thread rules as tiny_wait().
 */
TINY_API int tiny_poll(tiny_req *req);

/*
 * tiny_run - the blocking call: a submission followed by tiny_wait(). Since
 * the caller waits at once, its own thread moves the request instead of the
 * progress thread, so a small request costs exactly one message to tinyd and
 * one back. Returns the output length or a negative errno. Thread-safe.
 */
TINY_API ssize_t tiny_run(tiny_conn *conn, int op, unsigned flags, const void *in, size_t in_len,
                          void *out, size_t out_cap);

/* Blocking shorthands of tiny_run(), one per operation. */
TINY_API ssize_t tiny_compress(tiny_conn *conn, const void *in, size_t in_len, void *out,
                               size_t out_cap);
TINY_API ssize_t tiny_decompress(tiny_conn *conn, const void *in, size_t in_len, void *out,
                                 size_t out_cap);
TINY_API ssize_t tiny_frame_compress(tiny_conn *conn, const void *in, size_t in_len, void *out,
                                     size_t out_cap);
TINY_API ssize_t tiny_frame_decompress(tiny_conn *conn, const void *in, size_t in_len, void *out,
                                       size_t out_cap);

/*
 * Zero-copy requests. A tiny_buf lends the caller one slot of the shared
 * segment: the caller writes its input straight into it, tinyd works on it
 * there and leaves the output at its start, where the caller reads it. No
 * byte is copied by the library, so a caller that can produce its input in
 * place (read(2) into it, generate it there) saves both copies of
 * tiny_submit(). One request runs in one slot, so inputs are limited to
 * what the slot holds (tiny_buf_get() says how much); tinyd's workers run
 * several such requests at once when several bufs are submitted.
 */

/*
 * tiny_buf_get - borrow a slot for zero-copy requests of @op.
 * *@in receives where to write the input, *@in_cap how many bytes fit there:
 * for the compressing ops, what leaves room for the worst-case output; for
 * DECOMPRESS and CHUNK_DECOMPRESS, the slot from its start (at most 512 KiB,
 * tinyd's largest raw unit, which also bounds a DECOMPRESS output); for
 * FRAME_DECOMPRESS, the second half of the slot, the first half taking the
 * output.
 * Returns 0, -EINVAL for a bad argument, -E2BIG when the slots are too small
 * for @op in place (a compressed 64 KiB chunk must fit), -ENOMEM, or
 * -ECONNRESET. Blocks until a slot is free: every buf holds one until
 * tiny_buf_put(), so a thread must not wait for a buf while holding all of
 * them. Thread-safe; a buf is used by one thread at a time.
 */
TINY_API int tiny_buf_get(tiny_conn *conn, int op, tiny_buf **buf, void **in, size_t *in_cap);

/* tiny_buf_tryget - tiny_buf_get() without waiting: -EAGAIN when no slot is
 * free. Does not block. Thread-safe. */
TINY_API int tiny_buf_tryget(tiny_conn *conn, int op, tiny_buf **buf, void **in, size_t *in_cap);

/*
 * tiny_buf_submit - run the buf's op on the first @in_len bytes at its
 * input, asynchronously; like tiny_submit() (@flags, @cb, @arg, @req), and
 * its result is the output length. The input must stay unchanged and the
 * slot must not be read until completion. The output is then at
 * tiny_buf_output(); the input may be overwritten by it (the decompressing
 * ops), except for the compressing ops, where it stays intact.
 * Returns 0 once accepted, -EINVAL (@in_len over the capacity, a bad flag,
 * a request of this buf still in flight), -E2BIG when the output would not
 * fit in its part of the slot (DECOMPRESS, FRAME_DECOMPRESS), -EBADMSG for
 * a framing-format input that does not scan, -ECONNRESET. Does not block.
 * Without @cb the request is driven by the thread that waits for it (one
 * message hop each way, as tiny_run()); with @cb by the progress thread.
 * Thread-safe.
 */
TINY_API int tiny_buf_submit(tiny_buf *buf, unsigned flags, size_t in_len, tiny_callback cb,
                             void *arg, tiny_req **req);

/* tiny_buf_run - tiny_buf_submit() and tiny_wait(): the output length or a
 * negative errno. Blocks. */
TINY_API ssize_t tiny_buf_run(tiny_buf *buf, unsigned flags, size_t in_len);

/* Where the output of the buf's last completed request starts (the start of
 * its slot). Valid until the buf is submitted again or put. */
TINY_API const void *tiny_buf_output(const tiny_buf *buf);

/*
 * tiny_buf_put - give the slot back and free @buf. Accepts NULL. Must not be
 * called while a request of the buf is in flight, nor after
 * tiny_disconnect() of its connection (put every buf first).
 */
TINY_API void tiny_buf_put(tiny_buf *buf);

/*
 * tiny_stats - fetch tinyd's statistics into @st.
 * Returns 0 or a negative errno. Blocks for one round trip. Thread-safe.
 */
TINY_API int tiny_stats(tiny_conn *conn, struct tiny_stats *st);

/*
 * tiny_max_output - an output capacity that always suffices for @op on
 * @in_len input bytes, for the compressing ops. For TINY_OP_DECOMPRESS use
 * tiny_raw_length(); for TINY_OP_FRAME_DECOMPRESS, tiny_frame_scan().
 * Returns 0 for the decompressing ops. Pure, thread-safe.
 */
TINY_API size_t tiny_max_output(int op, size_t in_len);

/*
 * tiny_raw_length - read the uncompressed length at the head of a raw snappy
 * stream. Returns 0 and sets *len, or -EBADMSG. Pure, thread-safe.
 */
TINY_API int tiny_raw_length(const void *in, size_t in_len, size_t *len);

/*
 * tiny_frame_scan - walk the chunk headers of a framing-format stream
 * without decompressing.
 * @whole: set to the length of the longest prefix made of whole chunks.
 * @out_max: set to an upper bound of that prefix's decompressed length.
 * Returns the number of whole chunks, or -EBADMSG if a chunk header is
 * malformed (a reserved unskippable type, an oversized chunk). An incomplete
 * last chunk is not an error: it is left out of @whole, so a streaming
 * reader can call it again with more bytes. Pure, thread-safe.
 */
TINY_API ssize_t tiny_frame_scan(const void *in, size_t in_len, size_t *whole, size_t *out_max);

/*
 * tiny_crc32c_masked - the masked CRC-32C of the framing format, computed
 * with the CPU's CRC instruction where there is one. Pure, thread-safe.
 */
TINY_API uint32_t tiny_crc32c_masked(const void *data, size_t len);

/*
 * tiny_default_dir - write the run directory a connection with dir == NULL
 * would use into @buf. Returns its length or -ENAMETOOLONG.
 */
TINY_API int tiny_default_dir(char *buf, size_t size);

/*
 * tiny_strerror - a short lowercase description of a negative (or positive)
 * error code as tiny functions return it. Never NULL; thread-safe.
 */
TINY_API const char *tiny_strerror(int err);

/* Geometry of a connection, as granted by tinyd. Thread-safe. */
TINY_API unsigned tiny_conn_slots(const tiny_conn *conn);
TINY_API size_t tiny_conn_slot_size(const tiny_conn *conn);

#ifdef __cplusplus
}
#endif

#endif /* TINY_H */
