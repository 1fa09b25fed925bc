/*
 * snapsize.c - the reference for tinyfs's stored size in tests/bench/fs.sh:
 * the bytes of a snappy framing-format stream of FILE made by in-process
 * snappy in 64 KiB chunks (stream identifier, 8 bytes per chunk header,
 * incompressible chunks stored raw), as the format defines, one stream
 * per file. Prints "input_bytes framed_bytes framed_blocks_bytes", the last
 * with each file's stream rounded up to whole 4 KiB blocks, as du counts a
 * file on the store's filesystem.  Usage: snapsize FILE...
 */
#include <stdio.h>
#include <stdlib.h>

#include <snappy-c.h>

#include "tiny.h"
#include "../util.h"

int main(int argc, char **argv)
{
    static char in[TINY_CHUNK_MAX], out[80000];
    unsigned long long total = 0, framed = 0, blocks = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: snapsize FILE...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        unsigned long long one = 10; /* the stream identifier */
        size_t n;
        if (!f) {
            perror(argv[i]);
            return 1;
        }
        while ((n = fread(in, 1, sizeof in, f)) > 0) {
            size_t ol = sizeof out;
            snappy_compress(in, n, out, &ol);
            one += 8 + (ol < n ? ol : n);
            total += n;
        }
        fclose(f);
        framed += one;
        blocks += (one + 4095) / 4096 * 4096;
    }
    printf("%llu %llu %llu\n", total, framed, blocks);
    return 0;
}
