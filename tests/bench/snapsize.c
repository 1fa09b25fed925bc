/*
 * snapsize.c - the reference for tinyfs's stored size in tests/bench/fs.sh:
 * the bytes of a snappy framing-format stream of FILE made by in-process
 * snappy in 64 KiB chunks (stream identifier, 8 bytes per chunk header,
 * incompressible chunks stored raw), as the format defines. Prints
 * "input_bytes framed_bytes".  Usage: snapsize FILE...
 */
#include <stdio.h>
#include <stdlib.h>

#include <snappy-c.h>

#include "tiny.h"
#include "../util.h"

int main(int argc, char **argv)
{
    static char in[TINY_CHUNK_MAX], out[80000];
    unsigned long long total = 0, framed = 10;

    if (argc < 2) {
        fprintf(stderr, "usage: snapsize FILE...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        size_t n;
        if (!f) {
            perror(argv[i]);
            return 1;
        }
        while ((n = fread(in, 1, sizeof in, f)) > 0) {
            size_t ol = sizeof out;
            snappy_compress(in, n, out, &ol);
            framed += 8 + (ol < n ? ol : n);
            total += n;
        }
        fclose(f);
    }
    printf("%llu %llu\n", total, framed);
    return 0;
}
