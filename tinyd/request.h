/*
 * request.h - validation of the messages a client sends on its private
 * queue, as pure functions (no I/O, no locks, no client state), so that the
 * reader thread and the fuzzer (tests/fuzz/fuzz_request.c) run the same
 * checks.
 */
#ifndef TINYD_REQUEST_H
#define TINYD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tiny_proto.h"

enum req_verdict {
    REQ_SERVE, /* a SUBMIT, PIECE, FETCH or STATS with a valid tag: dispatch it */
    REQ_BYE,   /* the client disconnects */
    REQ_DROP,  /* unanswerable or a protocol error: drop the client */
};

/*
 * req_classify - what to do with the @n bytes received at @m. For REQ_DROP,
 * *why says why (a static string) and *answer whether the tag allows an
 * -EPROTO DONE before the client is dropped. Pure.
 */
enum req_verdict req_classify(const struct tiny_msg *m, long n, bool *answer, const char **why);

/*
 * req_submit_check - the fields of a SUBMIT against the client's geometry
 * (@n_slots slots of @slot_size bytes) and the per-op unit rules of
 * tiny_proto.h. Returns 0, -EINVAL or -E2BIG. Pure. A unit that passes
 * addresses only [in_off, in_off + in_len) of slot @s->slot (in-slot), or
 * offset 0 of it (staged).
 */
int req_submit_check(const struct tiny_msg_submit *s, uint32_t n_slots, size_t slot_size);

/*
 * req_piece_check - a PIECE of @len bytes for a staged unit of @in_len bytes
 * of which @got arrived already. Returns 0 or -EINVAL. Pure.
 */
int req_piece_check(uint64_t len, size_t slot_size, uint64_t in_len, uint64_t got);

#endif
