/*
 * error.c - tiny_strerror(): the error codes of tiny.h in tinyd's terms,
 * and tiny_errno_text() (format.c) for every other code: a string constant
 * or one of a few thread-local buffers used in turn, so concurrent callers
 * never share a buffer and several calls in one printf() each keep their
 * text.
 */
#include <errno.h>

#include "internal.h"

const char *tiny_strerror(int err)
{
    if (err < 0)
        err = -err;
    switch (err) {
    case 0:
        return "success";
    case ECONNREFUSED:
        return "no tinyd is listening on the run directory";
    case ECONNRESET:
        return "tinyd exited or restarted; reconnect to go on";
    case EPROTO:
        return "tinyd speaks another protocol version";
    case EBADMSG:
        return "compressed input is corrupt or truncated";
    case ENOSPC:
        return "output buffer too small for the result";
    case EUSERS:
        return "tinyd serves its maximum number of clients";
    case ENOMEM:
        return "out of memory: tinyd's or the library's limit was reached";
    case EINVAL:
        return "invalid argument: out of range";
    case ENOTSUP:
        return "raw snappy stream refers back further than the streaming window";
    case ETIMEDOUT:
        return "tinyd did not answer in time";
    default:
        return tiny_errno_text(err);
    }
}
