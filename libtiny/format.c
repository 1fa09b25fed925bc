/*
 * format.c - framing-format helpers that need no codec (the masked CRC-32C
 * through ISA-L, which uses the CPU's CRC32 instruction; varints; the
 * chunk-header walk behind tiny_frame_scan()), the run-directory rule
 * that tinyd and libtiny must agree on, and the errno text of every
 * program's messages.
 */
#include <errno.h>
#include <isa-l/crc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format.h"

const unsigned char tiny_stream_id[TINY_STREAM_ID_LEN] = {
    TINY_CHUNK_STREAM_ID, 0x06, 0x00, 0x00, 's', 'N', 'a', 'P', 'p', 'Y',
};

uint32_t tiny_crc32c_masked(const void *data, size_t len)
{
    uint32_t crc = 0xffffffffu;
    const unsigned char *p = data;

    /* crc32_iscsi takes an int length. */
    while (len > 0) {
        int n = len > (1u << 30) ? 1 << 30 : (int)len;
        crc = crc32_iscsi((unsigned char *)p, n, crc);
        p += n;
        len -= (size_t)n;
    }
    crc ^= 0xffffffffu;
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

size_t tiny_varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

size_t tiny_varint_get32(const unsigned char *p, size_t n, uint32_t *v)
{
    uint64_t r = 0;

    for (size_t i = 0; i < n && i < 5; i++) {
        r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            if (r > 0xffffffffu)
                return 0;
            *v = (uint32_t)r;
            return i + 1;
        }
    }
    return 0;
}

int tiny_raw_length(const void *in, size_t in_len, size_t *len)
{
    uint32_t v;

    if (!tiny_varint_get32(in, in_len, &v))
        return -EBADMSG;
    *len = v;
    return 0;
}

ssize_t tiny_frame_scan(const void *in, size_t in_len, size_t *whole, size_t *out_max)
{
    const unsigned char *p = in;
    size_t pos = 0, out = 0;
    ssize_t chunks = 0;

    while (in_len - pos >= TINY_CHUNK_HDR) {
        unsigned type = p[pos];
        size_t len = tiny_get_le24(p + pos + 1);

        if (type >= TINY_CHUNK_RESERVED_UNSKIPPABLE_FIRST &&
            type <= TINY_CHUNK_RESERVED_UNSKIPPABLE_LAST)
            return -EBADMSG;
        if ((type == TINY_CHUNK_COMPRESSED || type == TINY_CHUNK_UNCOMPRESSED) &&
            (len < TINY_CHUNK_CRC || len > TINY_CHUNK_BODY_MAX))
            return -EBADMSG;
        if (type == TINY_CHUNK_STREAM_ID && len != TINY_STREAM_ID_LEN - TINY_CHUNK_HDR)
            return -EBADMSG;
        if (in_len - pos - TINY_CHUNK_HDR < len)
            break;
        if (type == TINY_CHUNK_COMPRESSED)
            out += TINY_CHUNK_MAX;
        else if (type == TINY_CHUNK_UNCOMPRESSED)
            out += len - TINY_CHUNK_CRC;
        pos += TINY_CHUNK_HDR + len;
        chunks++;
    }
    if (whole)
        *whole = pos;
    if (out_max)
        *out_max = out;
    return chunks;
}

int tiny_default_dir(char *buf, size_t size)
{
    const char *env = getenv(TINY_ENV_DIR);
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;

    if (env && *env)
        n = snprintf(buf, size, "%s", env);
    else if (xdg && *xdg)
        n = snprintf(buf, size, "%s/tinyd", xdg);
    else
        n = snprintf(buf, size, "/tmp/tinyd-%u", (unsigned)getuid());
    if (n < 0 || (size_t)n >= size)
        return -ENAMETOOLONG;
    return n;
}

const char *tiny_errno_text(int err)
{
    static _Thread_local char bufs[4][96];
    static _Thread_local unsigned next;
    char *buf = bufs[next++ % 4];
    const char *s;

    s = strerror_r(err < 0 ? -err : err, buf, sizeof bufs[0]); /* GNU: may return a constant */
    if (s != buf)
        snprintf(buf, sizeof bufs[0], "%s", s);
    /* "Input/output error" -> "input/output error"; a leading acronym stays */
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}
