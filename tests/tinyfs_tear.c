/*
 * tinyfs_tear.c - a read is answered from tinyfs's cache of decoded chunks
 * (tinyfs/file.c and cache.c, tfs_rd), which stays as it is until the reply is sent: a
 * writer of those chunks waits. So no 64 KiB chunk of a reply mixes two
 * versions of the file. (A reply of several chunks may: like a read(2) on
 * a local filesystem, a read is not atomic against a write, only each
 * chunk of it is.)
 *
 *   tinyfs_tear FILE SECONDS
 *
 * FILE (made in a tinyfs mount, removed at the end) is 1 MiB. One thread
 * rewrites all of it, then most of its last chunk, again and again, each
 * time with one byte value, in one O_DIRECT write (one FUSE request); three
 * threads read all of it with O_DIRECT (one request each, straight from
 * tinyfs, not the page cache) and check that every chunk they got holds one
 * value (the last one two: the part the partial writes leave, and theirs).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

#define SIZE    (1u << 20)
#define CHUNK   65536u
#define PART    (CHUNK - 4096) /* the partial writes: the file's last PART bytes */
#define READERS 3

static const char *path;
static double seconds;
static atomic_int stop;

struct result {
    long reads, torn, short_reads, errors;
};

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A page-aligned buffer, as O_DIRECT wants. */
static unsigned char *aligned(void)
{
    void *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

static void *writer(void *arg)
{
    long *writes = arg;
    unsigned char *buf = aligned();
    int fd = open(path, O_WRONLY | O_DIRECT);

    for (unsigned v = 1; buf && fd >= 0 && !stop; v++) {
        /* every other write is of most of the last chunk alone, which a
         * reply copies last: it leaves the chunk dirty in tinyfs's cache,
         * with no compression to wait for, so it comes quickly, often
         * while a reply is being sent */
        size_t len = v % 2 ? SIZE : PART;

        memset(buf, (int)(v % 251 + 1), len);
        if (pwrite(fd, buf, len, (off_t)(SIZE - len)) != (ssize_t)len) {
            *writes = -errno;
            break;
        }
        (*writes)++;
    }
    if (fd >= 0)
        close(fd);
    if (buf)
        munmap(buf, SIZE);
    return NULL;
}

static void *reader(void *arg)
{
    struct result *r = arg;
    unsigned char *buf = aligned();
    int fd = open(path, O_RDONLY | O_DIRECT);

    if (!buf || fd < 0)
        r->errors++;
    while (buf && fd >= 0 && !stop) {
        ssize_t n = pread(fd, buf, SIZE, 0);
        size_t k = 1;

        if (n < 0) {
            r->errors++;
            break;
        }
        r->reads++;
        if (n != (ssize_t)SIZE) {
            r->short_reads++;
            continue;
        }
        while (k < SIZE && (k % CHUNK == 0 || k == SIZE - PART || buf[k] == buf[k - 1]))
            k++;
        if (k < SIZE) {
            if (!r->torn)
                diag("torn chunk: byte %zu is %u, byte %zu is %u", k - 1, buf[k - 1], k, buf[k]);
            r->torn++;
        }
    }
    if (fd >= 0)
        close(fd);
    if (buf)
        munmap(buf, SIZE);
    return NULL;
}

int main(int argc, char **argv)
{
    struct result res[READERS] = {{0}}, all = {0};
    pthread_t w, rd[READERS];
    long writes = 0;
    unsigned char *buf;
    double end;
    int fd;

    if (argc != 3) {
        fprintf(stderr, "usage: tinyfs_tear FILE SECONDS\n");
        return 2;
    }
    path = argv[1];
    seconds = atof(argv[2]);
    plan(4);

    buf = aligned();
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (!buf || fd < 0)
        bail_out("cannot create the file");
    memset(buf, 1, SIZE);
    ok(pwrite(fd, buf, SIZE, 0) == (ssize_t)SIZE && fsync(fd) == 0, "1 MiB written");
    close(fd);
    munmap(buf, SIZE);

    pthread_create(&w, NULL, writer, &writes);
    for (int k = 0; k < READERS; k++)
        pthread_create(&rd[k], NULL, reader, &res[k]);
    end = now() + seconds;
    while (now() < end)
        usleep(10000);
    stop = 1;
    pthread_join(w, NULL);
    for (int k = 0; k < READERS; k++) {
        pthread_join(rd[k], NULL);
        all.reads += res[k].reads;
        all.torn += res[k].torn;
        all.short_reads += res[k].short_reads;
        all.errors += res[k].errors;
    }
    diag("%ld writes, %ld reads", writes, all.reads);
    ok(writes > 10 && all.reads > 10 && !all.errors && !all.short_reads,
       "the writer and the readers ran (%ld writes, %ld reads, %ld errors, %ld short)", writes,
       all.reads, all.errors, all.short_reads);
    is_int(all.torn, 0, "no chunk of a reply mixed two versions");
    ok(unlink(path) == 0, "file removed");
    return done_testing();
}
