/*
 * mkdata.c - deterministic inputs for tests/bench/fs.sh, written to stdout.
 *   mkdata mixed MIB   text, binary tables, runs and repeats (gen_mixed of
 *                      tests/util.h) in 4 MiB segments, every fourth segment
 *                      random bytes standing for already-compressed data
 *   mkdata random MIB  random bytes only (incompressible)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"

#define SEG (4u << 20)

int main(int argc, char **argv)
{
    long mib = argc > 2 ? atol(argv[2]) : 0;
    int random_only;
    unsigned char *b;

    if (argc < 3 || mib <= 0 || (strcmp(argv[1], "mixed") && strcmp(argv[1], "random"))) {
        fprintf(stderr, "usage: mkdata mixed|random MIB\n");
        return 2;
    }
    random_only = strcmp(argv[1], "random") == 0;
    b = xmalloc(SEG);
    for (long i = 0; i < mib / 4 + (mib % 4 != 0); i++) {
        size_t len = (i + 1) * 4 <= mib ? SEG : (size_t)(mib % 4) << 20;
        if (random_only || i % 4 == 3) {
            uint64_t s = rng_seed((uint64_t)i + 1000);
            for (size_t j = 0; j < SEG; j += 8) {
                uint64_t x = rng_next(&s);
                memcpy(b + j, &x, 8);
            }
        } else {
            gen_mixed(b, SEG, (uint64_t)i);
        }
        if (fwrite(b, 1, len, stdout) != len) {
            perror("mkdata: write");
            return 1;
        }
    }
    free(b);
    return fflush(stdout) ? 1 : 0;
}
