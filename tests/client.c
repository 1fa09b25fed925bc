/*
 * client.c - a small libtiny client the shell tests drive as a separate
 * process (killed with -9, stopped, left blocked in a call while tinyd
 * dies, or used to run one operation on files).
 *
 *   client file OP IN OUT           OP: compress decompress frame-compress
 *                                   frame-decompress; prints "error N" and
 *                                   exits 1 on failure
 *   client stats                    one line of key=value from tiny_stats
 *   client loop SLOT_SIZE REQ_SIZE  connect, print "ready PID", then
 *                                   compress REQ_SIZE bytes in a loop until
 *                                   a call fails; print "result N requests
 *                                   M"; exit 0 if N is -ECONNRESET
 *   client roundtrip                a few verified round trips; exit 0 if good
 *   client connect                  exit 0 if tiny_connect succeeds, else
 *                                   print "error N" and exit 1
 *   client gen BYTES SEED OUT       write mixed test data (no daemon)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tiny.h"
#include "util.h"

static int op_by_name(const char *s)
{
    if (!strcmp(s, "compress"))
        return TINY_OP_COMPRESS;
    if (!strcmp(s, "decompress"))
        return TINY_OP_DECOMPRESS;
    if (!strcmp(s, "frame-compress"))
        return TINY_OP_FRAME_COMPRESS;
    if (!strcmp(s, "frame-decompress"))
        return TINY_OP_FRAME_DECOMPRESS;
    return -1;
}

static int do_file(tiny_conn *c, const char *opname, const char *inp, const char *outp)
{
    int op = op_by_name(opname);
    size_t n = 0, cap = 0;
    unsigned char *in, *out;
    ssize_t r;

    if (op < 0) {
        fprintf(stderr, "client: unknown op %s\n", opname);
        return 2;
    }
    in = read_file(inp, &n);
    if (!in) {
        fprintf(stderr, "client: cannot read %s\n", inp);
        return 2;
    }
    if (op == TINY_OP_COMPRESS || op == TINY_OP_FRAME_COMPRESS) {
        cap = tiny_max_output(op, n);
    } else if (op == TINY_OP_DECOMPRESS) {
        if (tiny_raw_length(in, n, &cap) < 0)
            cap = 0;
    } else {
        size_t whole;
        if (tiny_frame_scan(in, n, &whole, &cap) < 0)
            cap = 0;
    }
    out = xmalloc(cap);
    r = tiny_run(c, op, 0, in, n, out, cap);
    if (r < 0) {
        printf("error %zd %s\n", r, tiny_strerror((int)r));
        free(in);
        free(out);
        return 1;
    }
    if (write_file(outp, out, (size_t)r) < 0) {
        fprintf(stderr, "client: cannot write %s\n", outp);
        return 2;
    }
    free(in);
    free(out);
    return 0;
}

static int do_loop(size_t slot_size, size_t req)
{
    tiny_conn *c = NULL;
    struct tiny_options opt = {.slot_size = slot_size, .n_slots = 8};
    unsigned char *in = xmalloc(req), *out;
    size_t cap = tiny_max_output(TINY_OP_COMPRESS, req);
    unsigned long long reqs = 0;
    ssize_t r;
    int rc;

    gen_mixed(in, req, 5);
    out = xmalloc(cap);
    rc = tiny_connect(&c, &opt);
    if (rc < 0) {
        printf("connect %d %s\n", rc, tiny_strerror(rc));
        return 2;
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (;;) {
        r = tiny_compress(c, in, req, out, cap);
        if (r < 0)
            break;
        reqs++;
    }
    printf("result %zd requests %llu (%s)\n", r, reqs, tiny_strerror((int)r));
    fflush(stdout);
    tiny_disconnect(c);
    free(in);
    free(out);
    return r == -ECONNRESET ? 0 : 1;
}

static int do_roundtrip(tiny_conn *c)
{
    static const size_t sizes[] = {0, 1, 4096, 65536, 300000, 3u << 20};
    int bad = 0;

    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i], cap = tiny_max_output(TINY_OP_FRAME_COMPRESS, n);
        unsigned char *in = xmalloc(n), *z = xmalloc(cap), *back = xmalloc(n + 1);
        ssize_t zr, br;

        gen_mixed(in, n, 100 + i);
        zr = tiny_frame_compress(c, in, n, z, cap);
        br = zr < 0 ? zr : tiny_frame_decompress(c, z, (size_t)zr, back, n + 1);
        if (br != (ssize_t)n || memcmp(in, back, n)) {
            printf("round trip of %zu bytes failed: %zd / %zd\n", n, zr, br);
            bad = 1;
        }
        free(in);
        free(z);
        free(back);
    }
    return bad;
}

int main(int argc, char **argv)
{
    tiny_conn *c = NULL;
    int rc;

    if (argc < 2) {
        fprintf(stderr, "usage: client file|stats|loop|roundtrip|connect ...\n");
        return 2;
    }
    if (!strcmp(argv[1], "gen") && argc == 5) {
        size_t n = strtoul(argv[2], NULL, 0);
        unsigned char *b = xmalloc(n);
        gen_mixed(b, n, strtoull(argv[3], NULL, 0));
        rc = write_file(argv[4], b, n);
        free(b);
        return rc < 0;
    }
    if (!strcmp(argv[1], "loop")) {
        if (argc != 4)
            return 2;
        return do_loop(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0));
    }
    rc = tiny_connect(&c, NULL);
    if (rc < 0) {
        printf("error %d %s\n", rc, tiny_strerror(rc));
        return 1;
    }
    if (!strcmp(argv[1], "file") && argc == 5) {
        rc = do_file(c, argv[2], argv[3], argv[4]);
    } else if (!strcmp(argv[1], "stats")) {
        struct tiny_stats st;
        rc = tiny_stats(c, &st);
        if (rc == 0)
            printf("clients=%u clients_total=%llu pid=%d workers=%u requests=%llu errors=%llu "
                   "shm_bytes=%llu\n",
                   st.clients, (unsigned long long)st.clients_total, (int)st.pid, st.workers,
                   (unsigned long long)st.requests, (unsigned long long)st.errors,
                   (unsigned long long)st.shm_bytes);
        else
            printf("error %d %s\n", rc, tiny_strerror(rc));
        rc = rc < 0;
    } else if (!strcmp(argv[1], "roundtrip")) {
        rc = do_roundtrip(c);
    } else if (!strcmp(argv[1], "connect")) {
        rc = 0;
    } else {
        fprintf(stderr, "client: bad arguments\n");
        rc = 2;
    }
    tiny_disconnect(c);
    return rc;
}
