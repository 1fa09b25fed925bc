/*
 * tinyfs_pagecache.c - the pages tinyfs hands the kernel after a random read
 * (tinyfs/pagecache.c): the rest of the chunk becomes resident, holds the
 * file's bytes, and a store never lands after a write or a truncate.
 *
 *   tinyfs_pagecache FILE
 *
 * FILE is made in a tinyfs mount and removed at the end. Run it against a
 * tinyfs started with TINYFS_DEBUG_STORE_DELAY=300, so that every store
 * waits 300 ms before it is made: a writer then opens the file while one
 * store of it is in progress and another is queued. Residency is
 * read with mincore(2) on a read-only mapping, which reads nothing. The
 * kernel keeps a file's pages across opens (tinyfs asks it to), so the
 * test drops the written ones with POSIX_FADV_DONTNEED first.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

#define CHUNK  65536
#define PAGE   4096
#define NCHUNK 32
#define SIZE   (NCHUNK * CHUNK)

static unsigned char pattern(uint64_t off, int gen)
{
    return (unsigned char)(off / 7 + (off >> 12) * 13 + (uint64_t)gen * 31);
}

static void fill(unsigned char *p, uint64_t off, size_t n, int gen)
{
    for (size_t k = 0; k < n; k++)
        p[k] = pattern(off + k, gen);
}

/* The page at @off reads as generation @gen through @fd. */
static int page_is(int fd, uint64_t off, int gen)
{
    unsigned char got[PAGE], want[PAGE];

    if (pread(fd, got, PAGE, (off_t)off) != PAGE)
        return 0;
    fill(want, off, PAGE, gen);
    return memcmp(got, want, PAGE) == 0;
}

static int resident(const void *map, unsigned chunk)
{
    unsigned char v[CHUNK / PAGE];
    int n = 0;

    if (mincore((char *)map + (size_t)chunk * CHUNK, CHUNK, v) < 0)
        return -errno;
    for (unsigned k = 0; k < CHUNK / PAGE; k++)
        n += v[k] & 1;
    return n;
}

/* Waits up to 5 s for all the pages of @chunk; returns how many are in. */
static int wait_resident(const void *map, unsigned chunk)
{
    int n = 0;

    for (int t = 0; t < 500 && (n = resident(map, chunk)) != CHUNK / PAGE; t++)
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    return n;
}

static int write_pages(const char *path, uint64_t off1, uint64_t off2, int gen)
{
    unsigned char buf[PAGE];
    int fd = open(path, O_WRONLY), rc = 0;

    if (fd < 0)
        return -errno;
    fill(buf, off1, PAGE, gen);
    if (pwrite(fd, buf, PAGE, (off_t)off1) != PAGE)
        rc = -1;
    fill(buf, off2, PAGE, gen);
    if (pwrite(fd, buf, PAGE, (off_t)off2) != PAGE)
        rc = -1;
    if (close(fd) < 0)
        rc = -1;
    return rc;
}

int main(int argc, char **argv)
{
    unsigned char *buf = malloc(SIZE), page[PAGE];
    const char *path;
    struct stat st;
    void *map;
    int fd, r, all;

    if (argc != 2 || !buf) {
        fprintf(stderr, "usage: tinyfs_pagecache FILE\n");
        return 2;
    }
    path = argv[1];
    fill(buf, 0, SIZE, 0);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, buf, SIZE) != SIZE || close(fd) < 0)
        bail_out("cannot write the test file");
    /* the kernel releases a closed descriptor in the background; until
     * tinyfs sees that, the file has a writer and nothing is stored */
    nanosleep(&(struct timespec){0, 300000000}, NULL);

    r = open(path, O_RDONLY);
    map = r < 0 ? MAP_FAILED : mmap(NULL, SIZE, PROT_READ, MAP_SHARED, r, 0);
    if (map == MAP_FAILED)
        bail_out("cannot map the test file");
    /* the write left its pages in the kernel's cache, kept across opens */
    is_int(resident(map, 5), CHUNK / PAGE, "the written pages stay cached after close and open");
    is_int(posix_fadvise(r, 0, SIZE, POSIX_FADV_DONTNEED), 0, "POSIX_FADV_DONTNEED");
    is_int(resident(map, 5), 0, "then no page of chunk 5 is cached");

    ok(page_is(r, 5 * CHUNK + 2 * PAGE, 0), "a random 4 KiB read returns the file's bytes");
    is_int(wait_resident(map, 5), CHUNK / PAGE, "the rest of its chunk becomes resident");
    is_int(resident(map, 4) + resident(map, 6), 0, "the chunks around it do not");
    all = 1;
    for (unsigned k = 0; k < CHUNK / PAGE; k++)
        all &= page_is(r, 5 * CHUNK + k * PAGE, 0);
    ok(all, "every page of the chunk holds the file's bytes");
    /* what a store put in the cache is kept across opens too */
    munmap(map, SIZE);
    close(r);
    r = open(path, O_RDONLY);
    map = r < 0 ? MAP_FAILED : mmap(NULL, SIZE, PROT_READ, MAP_SHARED, r, 0);
    if (map == MAP_FAILED)
        bail_out("cannot map the test file again");
    is_int(resident(map, 5), CHUNK / PAGE, "the stored chunk stays cached after close and open");

    /* A writer opens while the store of chunk A is in progress and that of
     * B is queued; what it writes must be what the reader's cache serves. */
    for (int gen = 1; gen <= 3; gen++) {
        uint64_t a = (uint64_t)(8 + 2 * gen) * CHUNK, b = a + CHUNK;

        all = page_is(r, a, 0) && page_is(r, b, 0);
        ok(all, "round %d: random reads of two chunks", gen);
        is_int(write_pages(path, a + 7 * PAGE, b + 7 * PAGE, gen), 0,
               "round %d: a writer opens, writes a page of each and closes", gen);
        all = page_is(r, a + 7 * PAGE, gen) && page_is(r, b + 7 * PAGE, gen);
        ok(all, "round %d: the reader sees the written pages, never older ones", gen);
        /* by now every store of this round is made (or was dropped) */
        nanosleep(&(struct timespec){0, 700000000}, NULL);
        all = page_is(r, a + 7 * PAGE, gen) && page_is(r, b + 7 * PAGE, gen) &&
              page_is(r, a + 9 * PAGE, 0);
        ok(all, "round %d: and still after a store would have been made", gen);
    }

    /* a truncate by name while a store of the cut chunk is in progress */
    ok(page_is(r, 24 * CHUNK, 0), "a random read of chunk 24");
    is_int(truncate(path, 24 * CHUNK + PAGE), 0, "truncate by name to one page of it");
    nanosleep(&(struct timespec){0, 400000000}, NULL);
    is_int(pread(r, page, PAGE, 24 * CHUNK + 2 * PAGE), 0, "a read past the new end gets 0 bytes");
    is_int(fstat(r, &st) == 0 ? st.st_size : -1, 24 * CHUNK + PAGE,
           "the size stays the truncated one");

    munmap(map, SIZE);
    close(r);
    ok(unlink(path) == 0, "unlink");
    free(buf);
    return done_testing();
}
