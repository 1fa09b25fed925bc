/*
 * stream.c - streams one file descriptor through tinyd in bounded memory.
 *
 * Compression reads BLOCK-sized blocks (a multiple of 64 KiB, so chunk
 * boundaries fall where a single-shot compression would put them) and sends
 * each as one FRAME_COMPRESS request: the first with the stream identifier,
 * the rest with TINY_F_NO_STREAM_ID, so their outputs concatenate to one
 * framed stream. Decompression reads blocks of compressed bytes, cuts them
 * with tiny_frame_scan() after the last whole chunk (and earlier if the
 * decompressed size could pass OUT_LIMIT), sends that prefix as one
 * FRAME_DECOMPRESS request (TINY_F_CONTINUE after the first) and carries the
 * rest over to the next block.
 *
 * Two blocks are in flight: while tinyd works on one, we read the next and
 * write the previous. Requests complete through callbacks, so the library's
 * progress thread drives both while this thread does I/O; outputs are
 * written in submission order.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "format.h"

#define BLOCK     (4u << 20)  /* input bytes read per request */
#define OUT_LIMIT (16u << 20) /* bound of one decompression request's output */
#define NBLK      2           /* requests in flight */

struct blk {
    unsigned char *in, *out;
    size_t in_cap, out_cap;
    size_t filled; /* bytes in `in` */
    size_t in_len; /* bytes of `in` submitted */
    int busy;      /* submitted, not yet collected */
    int done;      /* the callback ran; guarded by mu */
    ssize_t result;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void blk_done(tiny_req *req, ssize_t result, void *arg)
{
    struct blk *b = arg;

    (void)req;
    pthread_mutex_lock(&mu);
    b->result = result;
    b->done = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static int blk_submit(tiny_conn *conn, struct blk *b, int op, unsigned flags)
{
    int r;

    b->done = 0;
    b->busy = 1;
    r = tiny_submit(conn, op, flags, b->in, b->in_len, b->out, b->out_cap, blk_done, b, NULL);
    if (r < 0)
        b->busy = 0;
    return r;
}

static ssize_t blk_wait(struct blk *b)
{
    pthread_mutex_lock(&mu);
    while (!b->done)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    b->busy = 0;
    return b->result;
}

/* Grows a buffer to at least @need bytes; contents are kept. */
static int grow(unsigned char **buf, size_t *cap, size_t need)
{
    unsigned char *p;

    if (*cap >= need)
        return 0;
    p = realloc(*buf, need);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = need;
    return 0;
}

/* Reads until @len bytes are in or end of file; returns the count or -errno. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static int write_full(int fd, const void *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        buf = (const char *)buf + n;
        len -= (size_t)n;
    }
    return 0;
}

/* Progress bar, redrawn at most every 200 ms. */
struct progress {
    int on;
    const char *name;
    uint64_t total;
    struct timespec start, last;
};

static double since(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void progress_start(struct progress *p, const struct cli_stream *s)
{
    p->on = s->progress;
    p->name = s->in_name;
    p->total = s->in_size;
    clock_gettime(CLOCK_MONOTONIC, &p->start);
    p->last = p->start;
}

static void progress_draw(struct progress *p, uint64_t done)
{
    struct winsize ws;
    struct timespec now;
    char bar[64];
    double t, rate;
    int width = 80, pct, fill, barw;

    if (!p->on)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (since(&p->last, &now) < 0.2)
        return;
    p->last = now;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        width = ws.ws_col;
    t = since(&p->start, &now);
    rate = t > 0 ? (double)done / t / (1 << 20) : 0;
    pct = p->total ? (int)(done * 100 / p->total) : 0;
    if (pct > 100)
        pct = 100;
    /* "tiny: NAME 100% [bar] 9999.9 MiB/s": 30 columns besides name and bar */
    barw = width - 30 - (int)strlen(p->name);
    if (barw > (int)sizeof(bar) - 1)
        barw = sizeof(bar) - 1;
    if (barw < 10) {
        fprintf(stderr, "\rtiny: %3d%% %7.1f MiB/s", pct, rate);
        return;
    }
    fill = barw * pct / 100;
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(barw - fill));
    bar[barw] = '\0';
    fprintf(stderr, "\rtiny: %s %3d%% [%s] %7.1f MiB/s", p->name, pct, bar, rate);
}

static void progress_end(struct progress *p)
{
    struct winsize ws;
    int width = 80;

    if (!p->on || since(&p->start, &p->last) == 0)
        return; /* never drawn */
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        width = ws.ws_col;
    fprintf(stderr, "\r%*s\r", width - 1, "");
}

static void report_tinyd(const struct cli_stream *s, int err, const char *what)
{
    if (err == -EBADMSG && !strcmp(what, "decompression"))
        fprintf(stderr, "tiny: %s: invalid compressed data: %s\n", s->in_name, tiny_strerror(err));
    else
        fprintf(stderr, "tiny: %s: %s failed: %s\n", s->in_name, what, tiny_strerror(err));
}

/* Collects the oldest request and writes its output. */
static int collect(struct cli_stream *s, struct blk *b, const char *what)
{
    ssize_t n = blk_wait(b);
    int r;

    if (n < 0) {
        report_tinyd(s, (int)n, what);
        return (int)n;
    }
    s->bytes_out += (uint64_t)n;
    if (s->out_fd < 0)
        return 0;
    r = write_full(s->out_fd, b->out, (size_t)n);
    if (r < 0)
        fprintf(stderr, "tiny: %s: write error: %s\n", s->out_name, tiny_errno_text(r));
    return r;
}

/* Waits for every request still in flight (tinyd owns their buffers). */
static void drain(struct blk *b)
{
    for (int i = 0; i < NBLK; i++)
        if (b[i].busy)
            (void)blk_wait(&b[i]);
}

static void blk_free(struct blk *b)
{
    for (int i = 0; i < NBLK; i++) {
        free(b[i].in);
        free(b[i].out);
    }
}

int cli_compress(tiny_conn *conn, struct cli_stream *s)
{
    struct blk b[NBLK] = {0};
    struct progress pg;
    unsigned long sub = 0, col = 0;
    int eof = 0, r = 0;

    progress_start(&pg, s);
    for (int i = 0; i < NBLK; i++) {
        b[i].in_cap = BLOCK;
        b[i].out_cap = tiny_max_output(TINY_OP_FRAME_COMPRESS, BLOCK);
        b[i].in = malloc(b[i].in_cap);
        b[i].out = malloc(b[i].out_cap);
        if (!b[i].in || !b[i].out) {
            r = -ENOMEM;
            fprintf(stderr, "tiny: %s: %s\n", s->in_name, tiny_errno_text(r));
            goto out;
        }
    }
    while (!eof || col < sub) {
        struct blk *k = &b[col % NBLK];
        ssize_t n;

        if (eof || sub - col == NBLK) {
            r = collect(s, k, "compression");
            if (r < 0)
                goto out;
            col++;
            continue;
        }
        k = &b[sub % NBLK];
        n = read_full(s->in_fd, k->in, BLOCK);
        if (n < 0) {
            r = (int)n;
            fprintf(stderr, "tiny: %s: read error: %s\n", s->in_name, tiny_errno_text(r));
            goto out;
        }
        s->bytes_in += (uint64_t)n;
        progress_draw(&pg, s->bytes_in);
        if ((size_t)n < BLOCK)
            eof = 1;
        if (n == 0 && sub > 0)
            continue;
        if (n == 0) {
            /* An empty input is the bare stream identifier: no data to compress. */
            r = s->out_fd < 0 ? 0 : write_full(s->out_fd, tiny_stream_id, TINY_STREAM_ID_LEN);
            if (r < 0) {
                fprintf(stderr, "tiny: %s: write error: %s\n", s->out_name, tiny_errno_text(r));
                goto out;
            }
            s->bytes_out += TINY_STREAM_ID_LEN;
            break;
        }
        k->in_len = (size_t)n;
        r = blk_submit(conn, k, TINY_OP_FRAME_COMPRESS, sub ? TINY_F_NO_STREAM_ID : 0);
        if (r < 0) {
            report_tinyd(s, r, "compression");
            goto out;
        }
        sub++;
    }
out:
    drain(b);
    blk_free(b);
    progress_end(&pg);
    return r;
}

/* Longest prefix of the @whole bytes of whole chunks at @p whose decompressed
 * size is at most OUT_LIMIT (at least one chunk); its bound in *bound. */
static size_t cut_chunks(const unsigned char *p, size_t whole, size_t *bound)
{
    size_t pos = 0, out = 0;

    while (pos < whole) {
        unsigned type = p[pos];
        size_t len = tiny_get_le24(p + pos + 1), add = 0;

        if (type == TINY_CHUNK_COMPRESSED)
            add = TINY_CHUNK_MAX;
        else if (type == TINY_CHUNK_UNCOMPRESSED)
            add = len - TINY_CHUNK_CRC;
        if (pos > 0 && out + add > OUT_LIMIT)
            break;
        out += add;
        pos += TINY_CHUNK_HDR + len;
    }
    *bound = out;
    return pos;
}

/* Fills @k with the carried-over tail of @prev and more input until it holds
 * at least one whole chunk or the input ends. Returns the number of bytes of
 * whole chunks in k, 0 at the clean end of the input, or -errno (printed). */
static ssize_t fill_chunks(struct cli_stream *s, struct blk *k, const struct blk *prev, int *eof,
                           struct progress *pg)
{
    size_t tail = prev ? prev->filled - prev->in_len : 0, whole;
    ssize_t n;
    int r;

    if (grow(&k->in, &k->in_cap, tail > BLOCK ? tail : BLOCK) < 0)
        goto nomem;
    if (tail)
        memcpy(k->in, prev->in + prev->in_len, tail);
    k->filled = tail;
    for (;;) {
        if (!*eof && k->filled < k->in_cap) {
            n = read_full(s->in_fd, k->in + k->filled, k->in_cap - k->filled);
            if (n < 0) {
                fprintf(stderr, "tiny: %s: read error: %s\n", s->in_name, tiny_errno_text((int)n));
                return n;
            }
            k->filled += (size_t)n;
            s->bytes_in += (uint64_t)n;
            progress_draw(pg, s->bytes_in);
            if (k->filled < k->in_cap)
                *eof = 1;
        }
        if (s->bytes_in < TINY_STREAM_ID_LEN ||
            (!prev && memcmp(k->in, tiny_stream_id, TINY_STREAM_ID_LEN))) {
            /* only a short input can be a prefix of the stream identifier */
            if (s->bytes_in && s->bytes_in < TINY_STREAM_ID_LEN &&
                !memcmp(k->in, tiny_stream_id, s->bytes_in))
                goto truncated;
            fprintf(stderr, "tiny: %s: not in snappy framing format\n", s->in_name);
            return -EBADMSG;
        }
        n = tiny_frame_scan(k->in, k->filled, &whole, NULL);
        if (n < 0) {
            fprintf(stderr, "tiny: %s: invalid compressed data: malformed chunk header\n",
                    s->in_name);
            return n;
        }
        if (whole > 0)
            return (ssize_t)whole;
        if (*eof) {
            if (k->filled > 0)
                goto truncated;
            return 0;
        }
        /* A chunk larger than the buffer (skippable chunks reach 16 MiB). */
        r = grow(&k->in, &k->in_cap, TINY_CHUNK_HDR + (size_t)tiny_get_le24(k->in + 1));
        if (r < 0)
            goto nomem;
    }
truncated:
    fprintf(stderr, "tiny: %s: unexpected end of file\n", s->in_name);
    return -EBADMSG;
nomem:
    fprintf(stderr, "tiny: %s: %s\n", s->in_name, tiny_errno_text(ENOMEM));
    return -ENOMEM;
}

int cli_decompress(tiny_conn *conn, struct cli_stream *s)
{
    struct blk b[NBLK] = {0};
    struct blk *prev = NULL;
    struct progress pg;
    unsigned long sub = 0, col = 0;
    int eof = 0, end = 0, r = 0;

    progress_start(&pg, s);
    while (!end || col < sub) {
        struct blk *k = &b[col % NBLK];
        size_t bound;
        ssize_t whole;

        if (end || sub - col == NBLK) {
            r = collect(s, k, "decompression");
            if (r < 0)
                goto out;
            col++;
            continue;
        }
        k = &b[sub % NBLK];
        whole = fill_chunks(s, k, prev, &eof, &pg);
        if (whole < 0) {
            r = (int)whole;
            goto out;
        }
        if (whole == 0) {
            end = 1;
            continue;
        }
        k->in_len = cut_chunks(k->in, (size_t)whole, &bound);
        if (grow(&k->out, &k->out_cap, bound > TINY_CHUNK_MAX ? bound : TINY_CHUNK_MAX) < 0) {
            r = -ENOMEM;
            fprintf(stderr, "tiny: %s: %s\n", s->in_name, tiny_errno_text(r));
            goto out;
        }
        r = blk_submit(conn, k, TINY_OP_FRAME_DECOMPRESS, sub ? TINY_F_CONTINUE : 0);
        if (r < 0) {
            report_tinyd(s, r, "decompression");
            goto out;
        }
        sub++;
        prev = k;
        if (eof && k->in_len == k->filled)
            end = 1;
    }
out:
    drain(b);
    blk_free(b);
    progress_end(&pg);
    return r;
}
