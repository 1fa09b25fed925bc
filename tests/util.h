/*
 * util.h - helpers shared by the C test programs and the benchmark: a
 * deterministic generator of mixed test data (text, binary tables, random
 * bytes, runs, and copies of earlier data at near and far distances, so
 * snappy meets every element kind), file loading, clocks, a watchdog that
 * turns a hang into a failure, and a reference framing-format decoder
 * (in-process snappy) to check tinyd's framed output independently.
 */
#ifndef TINY_TEST_UTIL_H
#define TINY_TEST_UTIL_H

#include <errno.h>
#include <signal.h>
#include <snappy-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tiny.h"

static inline uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: fast, deterministic, good enough for test data. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static inline uint64_t rng_seed(uint64_t seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;

    return s ? s : 1;
}

static inline size_t rng_below(uint64_t *s, size_t n)
{
    return n ? (size_t)(rng_next(s) % n) : 0;
}

static const char *const util_words[] = {
    "the ",     "snappy ",   "tinyd ",   "compress ", "of ",     "and ",  "shared ",
    "memory ",  "queue ",    "message ", "segment ",  "a ",      "to ",   "in ",
    "stream ",  "chunk ",    "frame ",   "client ",   "worker ", "slot ", "fair ",
    "latency ", "\n",        ". ",       ", ",        "data ",   "byte ", "offset ",
    "length ",  "checksum ", "error ",   "is ",       "was ",    "it ",   "that ",
};

/*
 * gen_mixed - fill @buf with @len bytes of deterministic mixed data for
 * @seed. Segments of 1..64 KiB alternate between English-like text, a
 * binary table, random bytes, byte runs, and copies of earlier output at a
 * random distance (up to 1 MiB back), so compressed streams contain
 * literals, short and far copies, and incompressible stretches.
 */
static inline void gen_mixed(void *buf, size_t len, uint64_t seed)
{
    unsigned char *p = buf;
    uint64_t s = rng_seed(seed);
    size_t pos = 0;

    while (pos < len) {
        size_t n = 1 + rng_below(&s, 65536);
        unsigned kind = (unsigned)rng_below(&s, 100);

        if (n > len - pos)
            n = len - pos;
        if (kind < 35) { /* text */
            size_t i = 0;
            while (i < n) {
                const char *w = util_words[rng_below(&s, sizeof util_words / sizeof *util_words)];
                size_t wl = strlen(w);
                if (wl > n - i)
                    wl = n - i;
                memcpy(p + pos + i, w, wl);
                i += wl;
            }
        } else if (kind < 50) { /* binary table: small integers in records */
            for (size_t i = 0; i < n; i++)
                p[pos + i] = (unsigned char)((i % 16 < 4) ? (i / 16) & 0xff : (i % 16) * 3);
        } else if (kind < 70) { /* random */
            size_t i = 0;
            for (; i + 8 <= n; i += 8) {
                uint64_t r = rng_next(&s);
                memcpy(p + pos + i, &r, 8);
            }
            for (; i < n; i++)
                p[pos + i] = (unsigned char)rng_next(&s);
        } else if (kind < 80) { /* run */
            memset(p + pos, (int)rng_below(&s, 256), n);
        } else { /* copy of earlier data, near or far */
            if (pos == 0) {
                memset(p, 'x', n);
            } else {
                size_t back = 1 + rng_below(&s, pos < (1u << 20) ? pos : (1u << 20));
                size_t src = pos - back;
                for (size_t i = 0; i < n; i++) /* overlapping copy on purpose */
                    p[pos + i] = p[src + i];
            }
        }
        pos += n;
    }
}

/* read_file - the whole file in a malloc()ed buffer (plus one spare byte). */
static inline unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
        goto out;
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        *len = (size_t)n;
out:
    fclose(f);
    return buf;
}

static inline int write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    int rc = 0;

    if (!f)
        return -errno;
    if (len && fwrite(buf, 1, len, f) != len)
        rc = -EIO;
    if (fclose(f) && !rc)
        rc = -EIO;
    return rc;
}

static inline int util_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The @p-quantile (0..1) of the @n values at @v, which it sorts; 0 if none. */
static inline uint64_t pct(uint64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, util_cmp_u64);
    return v[(size_t)(p * (double)(n - 1) + 0.5)];
}

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p) {
        printf("Bail out! out of memory allocating %zu bytes\n", n);
        exit(255);
    }
    return p;
}

/* The corpus of tests/data (compressible files only; no baddata). */
static const char *const corpus_files[] = {
    "alice29.txt", "asyoulik.txt", "fireworks.jpeg", "geo.protodata", "html",     "html_x_4",
    "kppkn.gtb",   "lcet10.txt",   "paper-100k.pdf", "plrabn12.txt",  "urls.10K",
};
#define CORPUS_N (sizeof corpus_files / sizeof *corpus_files)

static unsigned util_watchdog_s;

static void util_watchdog_fired(int sig)
{
    static const char msg[] = "not ok 9999 - watchdog: the test program hung and was stopped\n";

    (void)sig;
    if (write(STDOUT_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing more to do */
    }
    _exit(3);
}

/* watchdog - a hang becomes a failure after @seconds. */
static inline void watchdog(unsigned seconds)
{
    util_watchdog_s = seconds;
    signal(SIGALRM, util_watchdog_fired);
    alarm(seconds);
}

/* The pid in $TINYD_DIR/tinyd.pid; 0 if there is none. */
static inline long tinyd_pid(void)
{
    const char *dir = getenv("TINYD_DIR");
    char path[4096];
    long pid = 0;
    FILE *f;

    if (!dir)
        return 0;
    snprintf(path, sizeof path, "%s/tinyd.pid", dir);
    f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return pid;
}

/* User + system time (clock ticks) from the /proc stat file at @path, of a
 * process or a thread, and its name into @name (@size bytes) unless NULL;
 * -1 if the file cannot be read. */
static inline long proc_ticks(const char *path, char *name, size_t size)
{
    char buf[1024], *lp, *rp;
    unsigned long ut, st;
    FILE *f = fopen(path, "r");
    int got;

    if (!f)
        return -1;
    /* "pid (name) state ...": utime and stime are fields 14 and 15 */
    got = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    if (!got || !(lp = strchr(buf, '(')) || !(rp = strrchr(buf, ')')) || rp < lp ||
        sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    if (name && size) {
        size_t n = (size_t)(rp - lp - 1) < size - 1 ? (size_t)(rp - lp - 1) : size - 1;
        memcpy(name, lp + 1, n);
        name[n] = 0;
    }
    return (long)(ut + st);
}

static inline uint32_t util_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reference framing encoder, in-process: the stream identifier, then a data
 * chunk per 64 KiB; with @raw_unless_smaller a chunk snappy does not shrink
 * is stored uncompressed (as tinyd does), otherwise every chunk is
 * compressed. @o needs 10 + n + n/6 + 40 per chunk. Returns its length. */
static inline size_t ref_frame_encode(const unsigned char *d, size_t n, unsigned char *o,
                                      int raw_unless_smaller)
{
    size_t pos = 10;

    memcpy(o, "\xff\x06\x00\x00sNaPpY", 10);
    for (size_t off = 0; off < n; off += TINY_CHUNK_MAX) {
        size_t k = n - off < TINY_CHUNK_MAX ? n - off : TINY_CHUNK_MAX;
        size_t cl = snappy_max_compressed_length(k);
        uint32_t crc = tiny_crc32c_masked(d + off, k);

        snappy_compress((const char *)d + off, k, (char *)o + pos + 8, &cl);
        o[pos] = 0;
        if (raw_unless_smaller && cl >= k) {
            memcpy(o + pos + 8, d + off, k);
            cl = k;
            o[pos] = 1;
        }
        o[pos + 1] = (unsigned char)(cl + 4);
        o[pos + 2] = (unsigned char)((cl + 4) >> 8);
        o[pos + 3] = (unsigned char)((cl + 4) >> 16);
        o[pos + 4] = (unsigned char)crc;
        o[pos + 5] = (unsigned char)(crc >> 8);
        o[pos + 6] = (unsigned char)(crc >> 16);
        o[pos + 7] = (unsigned char)(crc >> 24);
        pos += 8 + cl;
    }
    return pos;
}

/*
 * ref_frame_decode - decode a framing-format stream in-process, checking
 * every CRC. Returns the output length, or -EBADMSG / -ENOSPC. @need_id: the
 * stream must start with the stream identifier.
 */
static inline ssize_t ref_frame_decode(const unsigned char *in, size_t in_len, unsigned char *out,
                                       size_t out_cap, int need_id)
{
    size_t pos = 0, o = 0;
    int seen_id = 0;

    while (pos < in_len) {
        if (in_len - pos < 4)
            return -EBADMSG;
        unsigned type = in[pos];
        size_t len = util_le32(in + pos) >> 8;
        const unsigned char *body = in + pos + 4;

        if (in_len - pos - 4 < len)
            return -EBADMSG;
        if (need_id && !seen_id && type != 0xff)
            return -EBADMSG;
        if (type == 0xff) {
            if (len != 6 || memcmp(body, "sNaPpY", 6))
                return -EBADMSG;
            seen_id = 1;
        } else if (type == 0x00 || type == 0x01) {
            size_t n;
            if (len < 4)
                return -EBADMSG;
            if (type == 0x00) {
                if (snappy_uncompressed_length((const char *)body + 4, len - 4, &n) != SNAPPY_OK ||
                    n > TINY_CHUNK_MAX)
                    return -EBADMSG;
                if (n > out_cap - o)
                    return -ENOSPC;
                if (snappy_uncompress((const char *)body + 4, len - 4, (char *)out + o, &n) !=
                    SNAPPY_OK)
                    return -EBADMSG;
            } else {
                n = len - 4;
                if (n > TINY_CHUNK_MAX)
                    return -EBADMSG;
                if (n > out_cap - o)
                    return -ENOSPC;
                memcpy(out + o, body + 4, n);
            }
            if (tiny_crc32c_masked(out + o, n) != util_le32(body))
                return -EBADMSG;
            o += n;
        } else if (type >= 0x02 && type <= 0x7f) {
            return -EBADMSG;
        }
        pos += 4 + len;
    }
    if (need_id && !seen_id)
        return -EBADMSG;
    return (ssize_t)o;
}

/* A connection with the given geometry, or a bail-out naming the error. */
static inline tiny_conn *connect_or_bail(unsigned n_slots, size_t slot_size, unsigned weight)
{
    struct tiny_options opt = {.n_slots = n_slots, .slot_size = slot_size, .weight = weight};
    tiny_conn *c = NULL;
    int rc = tiny_connect(&c, &opt);

    if (rc < 0) {
        printf("Bail out! cannot connect to tinyd (slots %u x %zu): %s (%d)\n", n_slots, slot_size,
               tiny_strerror(rc), rc);
        exit(255);
    }
    return c;
}

#endif /* TINY_TEST_UTIL_H */
