/*
 * tinyfs_fsx.c - a file-system exerciser: applies the same random operations
 * (writes at random offsets, writes past EOF, truncates both ways, reads,
 * mmap writes and reads, fsync, close and reopen, fallocate: holes punched,
 * ranges zeroed, space allocated) to a file in a tinyfs
 * mount and to a reference file elsewhere, and checks that every read and
 * the final contents agree.
 *
 *   tinyfs_fsx TESTFILE REFFILE SEED NOPS [MAXSIZE]
 *
 * Exit 0 when everything agreed; 1 with a message naming the operation.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t rng;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

static void fill(unsigned char *p, size_t n)
{
    static const char words[] = "the quick brown fox jumps over the lazy dog 0123456789\n";
    int kind = (int)below(3);

    for (size_t i = 0; i < n; i++) {
        if (kind == 0)
            p[i] = (unsigned char)rnd();
        else if (kind == 1)
            p[i] = (unsigned char)words[(i + n) % (sizeof(words) - 1)];
        else
            p[i] = (unsigned char)(i / 512);
    }
}

static int die(long op, const char *what)
{
    fprintf(stderr, "tinyfs_fsx: op %ld: %s: %s\n", op, what, strerror(errno));
    exit(1);
}

static void compare(long op, const char *what, const unsigned char *a, const unsigned char *b,
                    size_t n, uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) {
            fprintf(stderr, "tinyfs_fsx: op %ld: %s: byte %llu differs (%02x, expected %02x)\n", op,
                    what, (unsigned long long)(off + i), a[i], b[i]);
            exit(1);
        }
}

static void check_all(long op, int t, int r, unsigned char *a, unsigned char *b)
{
    struct stat st, sr;
    uint64_t off = 0;

    if (fstat(t, &st) < 0 || fstat(r, &sr) < 0)
        die(op, "fstat");
    if (st.st_size != sr.st_size) {
        fprintf(stderr, "tinyfs_fsx: op %ld: size %lld, expected %lld\n", op, (long long)st.st_size,
                (long long)sr.st_size);
        exit(1);
    }
    while (off < (uint64_t)sr.st_size) {
        size_t n = (uint64_t)sr.st_size - off > (1u << 20) ? 1u << 20 : sr.st_size - off;

        if (pread(t, a, n, (off_t)off) != (ssize_t)n)
            die(op, "full read of test file");
        if (pread(r, b, n, (off_t)off) != (ssize_t)n)
            die(op, "full read of reference");
        compare(op, "full compare", a, b, n, off);
        off += n;
    }
}

int main(int argc, char **argv)
{
    const char *tpath, *rpath;
    uint64_t maxsize = 4u << 20;
    unsigned char *a, *b, *d;
    long nops;
    int t, r;

    if (argc < 5) {
        fprintf(stderr, "usage: tinyfs_fsx TESTFILE REFFILE SEED NOPS [MAXSIZE]\n");
        return 2;
    }
    tpath = argv[1];
    rpath = argv[2];
    rng = strtoull(argv[3], NULL, 0) * 0x9e3779b97f4a7c15ull + 1;
    nops = strtol(argv[4], NULL, 0);
    if (argc > 5)
        maxsize = strtoull(argv[5], NULL, 0);
    a = malloc(1u << 20);
    b = malloc(1u << 20);
    d = malloc(1u << 20);
    if (!a || !b || !d)
        return 1;
    t = open(tpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
    r = open(rpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (t < 0 || r < 0)
        die(0, "open");
    for (long op = 1; op <= nops; op++) {
        struct stat st;
        uint64_t size, off, len;
        int what = (int)below(100);

        if (fstat(r, &st) < 0)
            die(op, "fstat");
        size = (uint64_t)st.st_size;
        if (what < 35) { /* write, sometimes past EOF */
            len = 1 + below(below(4) == 0 ? 200000 : 5000);
            off = below(size + (below(4) == 0 ? 300000 : 1));
            if (off + len > maxsize)
                continue;
            fill(d, len);
            if (pwrite(t, d, len, (off_t)off) != (ssize_t)len)
                die(op, "write");
            if (pwrite(r, d, len, (off_t)off) != (ssize_t)len)
                die(op, "write reference");
        } else if (what < 60) { /* read */
            len = 1 + below(200000);
            off = below(size + 1000);
            ssize_t x = pread(t, a, len, (off_t)off), y = pread(r, b, len, (off_t)off);

            if (x != y) {
                fprintf(stderr, "tinyfs_fsx: op %ld: read %zd bytes at %llu, expected %zd\n", op, x,
                        (unsigned long long)off, y);
                return 1;
            }
            if (x > 0)
                compare(op, "read", a, b, (size_t)x, off);
        } else if (what < 70) { /* truncate */
            len = below(4) == 0 ? below(maxsize) : below(size + 100000);
            if (ftruncate(t, (off_t)len) < 0)
                die(op, "ftruncate");
            if (ftruncate(r, (off_t)len) < 0)
                die(op, "ftruncate reference");
        } else if (what < 80 && size > 0) { /* mmap write */
            off = below(size);
            len = 1 + below(size - off < 100000 ? size - off : 100000);
            uint64_t start = off & ~4095ull;
            size_t mlen = (size_t)(off + len - start);
            unsigned char *mt =
                mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_SHARED, t, (off_t)start);
            unsigned char *mr =
                mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_SHARED, r, (off_t)start);

            if (mt == MAP_FAILED || mr == MAP_FAILED)
                die(op, "mmap");
            fill(d, len);
            memcpy(mt + (off - start), d, len);
            memcpy(mr + (off - start), d, len);
            if (below(2) && msync(mt, mlen, MS_SYNC) < 0)
                die(op, "msync");
            munmap(mt, mlen);
            munmap(mr, mlen);
        } else if (what < 88 && size > 0) { /* mmap read */
            off = below(size);
            len = 1 + below(size - off < 100000 ? size - off : 100000);
            uint64_t start = off & ~4095ull;
            size_t mlen = (size_t)(off + len - start);
            unsigned char *mt = mmap(NULL, mlen, PROT_READ, MAP_SHARED, t, (off_t)start);

            if (mt == MAP_FAILED)
                die(op, "mmap read");
            if (pread(r, b, len, (off_t)off) != (ssize_t)len)
                die(op, "read reference");
            compare(op, "mmap read", mt + (off - start), b, len, off);
            munmap(mt, mlen);
        } else if (what < 92) { /* close and reopen */
            close(t);
            t = open(tpath, O_RDWR);
            if (t < 0)
                die(op, "reopen");
        } else if (what < 94) {
            if (fsync(t) < 0)
                die(op, "fsync");
        } else if (what < 95) { /* append */
            len = 1 + below(70000);
            if (size + len > maxsize)
                continue;
            int ta = open(tpath, O_WRONLY | O_APPEND), ra = open(rpath, O_WRONLY | O_APPEND);

            if (ta < 0 || ra < 0)
                die(op, "open O_APPEND");
            fill(d, len);
            if (write(ta, d, len) != (ssize_t)len || write(ra, d, len) != (ssize_t)len)
                die(op, "append");
            close(ta);
            close(ra);
        } else if (what < 97) { /* fallocate, in every mode tinyfs supports */
            static const int modes[] = {
                FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE,
                FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, FALLOC_FL_KEEP_SIZE};
            int mode = modes[below(sizeof(modes) / sizeof(modes[0]))];

            len = 1 + below(below(4) == 0 ? 300000 : 20000);
            off = below(size + 100000);
            if (off + len > maxsize)
                continue;
            if (fallocate(r, mode, (off_t)off, (off_t)len) < 0) {
                if (errno == EOPNOTSUPP) /* the reference's file system lacks it */
                    continue;
                die(op, "fallocate reference");
            }
            if (fallocate(t, mode, (off_t)off, (off_t)len) < 0)
                die(op, "fallocate");
        } else {
            check_all(op, t, r, a, b);
        }
    }
    check_all(nops, t, r, a, b);
    close(t);
    t = open(tpath, O_RDONLY);
    if (t < 0)
        die(nops, "final reopen");
    check_all(nops, t, r, a, b);
    close(t);
    close(r);
    free(a);
    free(b);
    free(d);
    return 0;
}
