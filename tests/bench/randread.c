/*
 * randread.c - random 4 KiB reads for tests/bench/fs.sh: N preads of 4 KiB at
 * offsets drawn from a fixed seed (4 KiB aligned), so every filesystem sees
 * the same sequence. Prints "reads seconds reads_per_second" on stdout.
 * Usage: randread FILE [N]        (N defaults to 20000)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util.h"

int main(int argc, char **argv)
{
    char buf[4096];
    struct stat st;
    long n = argc > 2 ? atol(argv[2]) : 20000;
    uint64_t s = rng_seed(7), t0;
    int fd;

    if (argc < 2 || n <= 0) {
        fprintf(stderr, "usage: randread FILE [N]\n");
        return 2;
    }
    fd = open(argv[1], O_RDONLY);
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 4096) {
        fprintf(stderr, "randread: cannot use %s\n", argv[1]);
        return 1;
    }
    size_t blocks = (size_t)st.st_size / 4096;
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        off_t off = (off_t)rng_below(&s, blocks) * 4096;
        if (pread(fd, buf, sizeof buf, off) != (ssize_t)sizeof buf) {
            perror("randread: pread");
            return 1;
        }
    }
    double sec = (double)(now_ns() - t0) / 1e9;
    printf("%ld %.3f %.0f\n", n, sec, (double)n / sec);
    close(fd);
    return 0;
}
