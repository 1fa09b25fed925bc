/*
 * service.c - what the tinyd service costs and gains against in-process
 * snappy, measured side by side in one run (make bench, via run.sh).
 *
 *  1. one client, blocking calls: throughput of COMPRESS, DECOMPRESS,
 *     FRAME_COMPRESS and FRAME_DECOMPRESS on the concatenated corpus and on
 *     a generated mixed input, against snappy in the calling thread (target
 *     >= 0.95x);
 *  2. parallelism: one client with several requests in flight, two client
 *     processes, one client of zero-copy requests (tiny_buf), and one of
 *     many one-chunk requests as tinyfs makes them, against single-threaded
 *     in-process snappy (target >= 1.7x with 2 workers);
 *  3. a 4 KiB COMPRESS round trip, p50 and p99, against the in-process time
 *     of the same 4 KiB plus 1.2 x a bare System V message-queue ping-pong
 *     between two processes (target <= 1.0x);
 *  4. a 64 KiB CHUNK_DECOMPRESS round trip as a tinyfs random read makes it,
 *     against in-process snappy on the same chunk (no target);
 *  5. CPU time per byte of client and tinyd against in-process snappy,
 *     which bounds what two workers can reach on two cores.
 * Every figure is the median of several repetitions; in 1. the in-process
 * and the tinyd runs alternate. Prints a markdown table on stdout; progress
 * on stderr.
 * Usage: service DATA_DIR [MIXED_MiB [REPS]]     (TINYD_DIR names the daemon)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tiny.h"
#include "tiny_proto.h"
#include "../util.h"

#define REQ (16u << 20) /* request size of the parallel runs */

static int reps = 5;

static double mbps(size_t bytes, uint64_t ns)
{
    return (double)bytes / ((double)ns / 1e9) / 1e6;
}

static void row(const char *what, double base, double svc, const char *unit, const char *target)
{
    printf("| %s | %.1f %s | %.1f %s | %.2fx | %s |\n", what, base, unit, svc, unit, svc / base,
           target);
    fflush(stdout);
}

/* Time of one operation on the whole input, in-process. */
static uint64_t once_inproc(int op, const unsigned char *in, size_t n, unsigned char *out,
                            size_t cap)
{
    size_t ol = cap;
    uint64_t t0 = now_ns();

    if (op == TINY_OP_COMPRESS)
        snappy_compress((const char *)in, n, (char *)out, &ol);
    else if (op == TINY_OP_DECOMPRESS)
        snappy_uncompress((const char *)in, n, (char *)out, &ol);
    else if (op == TINY_OP_FRAME_DECOMPRESS)
        ref_frame_decode(in, n, out, cap, 1);
    else
        ref_frame_encode(in, n, out, 1);
    return now_ns() - t0;
}

/* Time of one blocking call on the whole input through tinyd. */
static uint64_t once_service(tiny_conn *c, int op, const unsigned char *in, size_t n,
                             unsigned char *out, size_t cap)
{
    uint64_t t0 = now_ns();
    ssize_t got = tiny_run(c, op, 0, in, n, out, cap);
    uint64_t t = now_ns() - t0;

    if (got < 0) {
        fprintf(stderr, "service: op %d of %zu bytes failed: %s\n", op, n, tiny_strerror((int)got));
        exit(1);
    }
    return t;
}

/*
 * Median times of one operation in-process (*inproc) and through tinyd
 * (*svc). The two alternate, each going first in every other repetition,
 * so that a change of the host's speed during the run (other guests,
 * frequency) weighs on both alike instead of on whichever ran later.
 */
static void time_pair(tiny_conn *c, int op, const unsigned char *in, size_t n, unsigned char *out,
                      size_t cap, uint64_t *inproc, uint64_t *svc)
{
    uint64_t *a = xmalloc(sizeof *a * (size_t)reps), *b = xmalloc(sizeof *b * (size_t)reps);

    for (int r = 0; r < reps; r++) {
        if (r % 2 == 0) {
            a[r] = once_inproc(op, in, n, out, cap);
            b[r] = once_service(c, op, in, n, out, cap);
        } else {
            b[r] = once_service(c, op, in, n, out, cap);
            a[r] = once_inproc(op, in, n, out, cap);
        }
    }
    *inproc = pct(a, (size_t)reps, 0.5);
    *svc = pct(b, (size_t)reps, 0.5);
    free(a);
    free(b);
}

static void single_client(tiny_conn *c, const char *name, const unsigned char *in, size_t n)
{
    size_t cap = tiny_max_output(TINY_OP_FRAME_COMPRESS, n) + tiny_max_output(TINY_OP_COMPRESS, n);
    unsigned char *z = xmalloc(cap), *out = xmalloc(cap);
    size_t zl = cap;
    char what[160];

    int saved_reps = reps;

    snappy_compress((const char *)in, n, (char *)z, &zl);
    fprintf(stderr, "single client: %s\n", name);
    /* the ratios against the 0.95x target need the most samples; the
     * short runs are the noisiest */
    reps *= n < (64u << 20) ? 5 : 2;

    uint64_t a, b;

    time_pair(c, TINY_OP_COMPRESS, in, n, out, cap, &a, &b);
    snprintf(what, sizeof what, "1 client, blocking: COMPRESS %s", name);
    row(what, mbps(n, a), mbps(n, b), "MB/s", ">= 0.95x");

    time_pair(c, TINY_OP_DECOMPRESS, z, zl, out, cap, &a, &b);
    snprintf(what, sizeof what, "1 client, blocking: DECOMPRESS %s", name);
    row(what, mbps(n, a), mbps(n, b), "MB/s", ">= 0.95x");

    time_pair(c, TINY_OP_FRAME_COMPRESS, in, n, out, cap, &a, &b);
    snprintf(what, sizeof what, "1 client, blocking: FRAME_COMPRESS %s", name);
    row(what, mbps(n, a), mbps(n, b), "MB/s", ">= 0.95x");

    zl = ref_frame_encode(in, n, z, 1);
    time_pair(c, TINY_OP_FRAME_DECOMPRESS, z, zl, out, cap, &a, &b);
    snprintf(what, sizeof what, "1 client, blocking: FRAME_DECOMPRESS %s", name);
    row(what, mbps(n, a), mbps(n, b), "MB/s", ">= 0.95x");
    reps = saved_reps;
    free(z);
    free(out);
}

/* --- CPU per byte ------------------------------------------------------------ */

static uint64_t self_cpu_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* User + system time of process @pid, from /proc. */
static uint64_t pid_cpu_ns(long pid)
{
    char path[64];
    long ticks;

    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    ticks = proc_ticks(path, NULL, 0);
    return ticks < 0 ? 0 : (uint64_t)ticks * (1000000000u / (uint64_t)sysconf(_SC_CLK_TCK));
}

/*
 * Where the CPU goes: for blocking calls on the mixed input, the CPU time of
 * the client process (its copies into and out of the slots, the raw-stream
 * walk, messages) and of tinyd (snappy, its input copies, messages), each
 * against in-process snappy's CPU time for the same bytes. Their sum bounds
 * what two workers can reach on a two-core machine: 2 / sum.
 */
static void cpu_costs(tiny_conn *c, const unsigned char *in, size_t n)
{
    static const int ops[4] = {TINY_OP_COMPRESS, TINY_OP_DECOMPRESS, TINY_OP_FRAME_COMPRESS,
                               TINY_OP_FRAME_DECOMPRESS};
    static const char *const names[4] = {"COMPRESS", "DECOMPRESS", "FRAME_COMPRESS",
                                         "FRAME_DECOMPRESS"};
    size_t cap = tiny_max_output(TINY_OP_FRAME_COMPRESS, n) + tiny_max_output(TINY_OP_COMPRESS, n);
    unsigned char *z = xmalloc(cap), *fz = xmalloc(cap), *out = xmalloc(cap);
    size_t zl = cap, fzl;
    long pid = tinyd_pid();

    if (!pid)
        return;
    fprintf(stderr, "cpu per byte\n");
    snappy_compress((const char *)in, n, (char *)z, &zl);
    fzl = ref_frame_encode(in, n, fz, 1);
    printf(
        "\nCPU time per byte of the mixed input, blocking calls, against in-process snappy's CPU "
        "time for the same bytes (client: the calling process with its library threads; "
        "tinyd: /proc/PID/stat, 10 ms ticks). Two workers can reach at most 2 / total on two "
        "cores, because the client's share runs on the same cores.\n\n");
    printf("| op | client | tinyd | total | bound on 2 cores |\n|---|---|---|---|---|\n");
    for (int k = 0; k < 4; k++) {
        const unsigned char *src = k == 0 || k == 2 ? in : k == 1 ? z : fz;
        size_t len = k == 0 || k == 2 ? n : k == 1 ? zl : fzl;
        uint64_t a = self_cpu_ns(), base, cl, td;
        for (int r = 0; r < reps; r++) {
            size_t ol = cap;
            if (k == 0)
                snappy_compress((const char *)in, n, (char *)out, &ol);
            else if (k == 1)
                snappy_uncompress((const char *)z, zl, (char *)out, &ol);
            else if (k == 2)
                ref_frame_encode(in, n, out, 1);
            else
                ref_frame_decode(fz, fzl, out, cap, 1);
        }
        base = self_cpu_ns() - a;
        a = self_cpu_ns();
        uint64_t d = pid_cpu_ns(pid);
        for (int r = 0; r < reps; r++)
            if (tiny_run(c, ops[k], 0, src, len, out, cap) < 0) {
                fprintf(stderr, "service: cpu pass failed\n");
                exit(1);
            }
        cl = self_cpu_ns() - a;
        td = pid_cpu_ns(pid) - d;
        printf("| %s | %.2fx | %.2fx | %.2fx | %.2fx |\n", names[k], (double)cl / (double)base,
               (double)td / (double)base, (double)(cl + td) / (double)base,
               2.0 * (double)base / (double)(cl + td));
    }
    fflush(stdout);
    free(z);
    free(fz);
    free(out);
}

/* --- parallel ---------------------------------------------------------------- */

/* Completions of the callback-driven async pass. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t done;
    int failed;
} acb = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void async_done(tiny_req *req, ssize_t result, void *arg)
{
    (void)req;
    (void)arg;
    pthread_mutex_lock(&acb.lock);
    acb.done++;
    if (result < 0)
        acb.failed = 1;
    pthread_cond_signal(&acb.cond);
    pthread_mutex_unlock(&acb.lock);
}

/* Whole input in @nreq requests of @unit bytes of uncompressed data (the
 * compressed inputs are @in_lens long), @depth of them in flight, completed
 * through callbacks (the library's progress thread drives them all). */
static uint64_t async_pass(tiny_conn *c, int op, const unsigned char *in, size_t n, size_t unit,
                           size_t nreq, unsigned char *out, size_t unit_cap, int depth,
                           const size_t *in_lens)
{
    size_t next = 0, off = 0;
    uint64_t t0 = now_ns();

    acb.done = 0;
    pthread_mutex_lock(&acb.lock);
    while (acb.done < nreq) {
        while (next < nreq && next - acb.done < (size_t)depth) {
            size_t len = in_lens ? in_lens[next] : (n - off < unit ? n - off : unit);
            pthread_mutex_unlock(&acb.lock);
            if (tiny_submit(c, op, 0, in + off, len, out + next * unit_cap, unit_cap, async_done,
                            NULL, NULL) < 0) {
                fprintf(stderr, "service: submit failed\n");
                exit(1);
            }
            pthread_mutex_lock(&acb.lock);
            off += len;
            next++;
        }
        if (acb.done < nreq)
            pthread_cond_wait(&acb.cond, &acb.lock);
    }
    pthread_mutex_unlock(&acb.lock);
    if (acb.failed) {
        fprintf(stderr, "service: an async request failed\n");
        exit(1);
    }
    return now_ns() - t0;
}

/* Half of the REQ-sized pieces, compressed in-process by one thread. */
struct half {
    const unsigned char *in;
    size_t n, first;
    unsigned char *out;
    size_t unit_cap;
};

static void *compress_half(void *arg)
{
    const struct half *h = arg;
    size_t nreq = (h->n + REQ - 1) / REQ;

    for (size_t i = h->first; i < nreq; i += 2) {
        size_t len = h->n - i * REQ < REQ ? h->n - i * REQ : REQ, zl = h->unit_cap;
        snappy_compress((const char *)h->in + i * REQ, len, (char *)h->out + i * h->unit_cap, &zl);
    }
    return NULL;
}

/* What two threads of in-process snappy gain over one on this machine right
 * now: the ceiling of every parallel row, and a measure of how much of the
 * second core other work left to this run. */
static void machine_check(const unsigned char *in, size_t n, unsigned char *out, size_t unit_cap,
                          uint64_t base_c, uint64_t *t)
{
    for (int r = 0; r < reps; r++) {
        struct half h[2] = {{in, n, 0, out, unit_cap}, {in, n, 1, out, unit_cap}};
        pthread_t th;
        uint64_t t0 = now_ns();
        if (pthread_create(&th, NULL, compress_half, &h[1]) != 0)
            exit(1);
        compress_half(&h[0]);
        pthread_join(th, NULL);
        t[r] = now_ns() - t0;
    }
    row("in-process snappy, 2 threads (machine check, no tinyd): COMPRESS", mbps(n, base_c),
        mbps(n, pct(t, (size_t)reps, 0.5)), "MB/s", "(ceiling ~2x)");
}

/*
 * Zero-copy: every slot of one connection lent as a tiny_buf and kept busy.
 * The caller copies each piece into its buf (timed: the caller has to
 * produce its input somewhere) and leaves the output in place, as
 * in-process snappy leaves its output in its buffer. COMPRESS goes through
 * the input in pieces of a buf's capacity; DECOMPRESS through @zp, the same
 * pieces compressed one by one (@zl[i] bytes at @zo[i]). Returns the time of
 * one pass over every piece.
 */
static uint64_t zc_pass(tiny_conn *c, int op, const unsigned char *in, size_t n, size_t piece,
                        const unsigned char *zp, const size_t *zo, const size_t *zl)
{
    enum { NB = 8 };
    size_t np = (n + piece - 1) / piece, next = 0, cap[NB];
    tiny_buf *b[NB];
    tiny_req *req[NB] = {0};
    void *dst[NB];
    uint64_t t0;

    for (int k = 0; k < NB; k++)
        if (tiny_buf_get(c, op, &b[k], &dst[k], &cap[k]) < 0 || cap[k] < piece) {
            fprintf(stderr, "service: cannot borrow a slot of %zu bytes\n", piece);
            exit(1);
        }
    t0 = now_ns();
    for (size_t done = 0; done < np;) {
        for (int k = 0; k < NB; k++) {
            if (req[k]) {
                if (tiny_wait(req[k]) < 0) {
                    fprintf(stderr, "service: a zero-copy request failed\n");
                    exit(1);
                }
                req[k] = NULL;
                done++;
            }
            if (next < np) {
                size_t len = op == TINY_OP_COMPRESS
                                 ? (n - next * piece < piece ? n - next * piece : piece)
                                 : zl[next];
                memcpy(dst[k], op == TINY_OP_COMPRESS ? in + next * piece : zp + zo[next], len);
                if (tiny_buf_submit(b[k], 0, len, NULL, NULL, &req[k]) < 0) {
                    fprintf(stderr, "service: zero-copy submit failed\n");
                    exit(1);
                }
                next++;
            }
        }
    }
    t0 = now_ns() - t0;
    for (int k = 0; k < NB; k++)
        tiny_buf_put(b[k]);
    return t0;
}

static void zero_copy(const unsigned char *in, size_t n)
{
    tiny_conn *c = connect_or_bail(8, 1u << 20, 1);
    size_t piece, np, ccap = 0, dcap = 0, zt = 0;
    size_t *zo, *zl;
    unsigned char *zp, *out;
    uint64_t *t = xmalloc(sizeof *t * (size_t)reps), base_c, base_d, svc;
    char label[128];
    tiny_buf *probe;
    void *p;

    fprintf(stderr, "parallel: zero-copy\n");
    /* Pieces as large as both bufs hold, in whole 64 KiB blocks, as a caller
     * filling its buf would use them (448 KiB with 1 MiB slots; compressed,
     * they fit the 512 KiB of a DECOMPRESS buf, checked below). */
    if (tiny_buf_get(c, TINY_OP_COMPRESS, &probe, &p, &ccap) < 0)
        exit(1);
    tiny_buf_put(probe);
    if (tiny_buf_get(c, TINY_OP_DECOMPRESS, &probe, &p, &dcap) < 0)
        exit(1);
    tiny_buf_put(probe);
    piece = (ccap < dcap ? ccap : dcap) & ~(size_t)0xffff;
    if (piece == 0) {
        fprintf(stderr, "service: bufs of %zu and %zu bytes hold no 64 KiB piece\n", ccap, dcap);
        exit(1);
    }
    np = (n + piece - 1) / piece;
    zo = xmalloc(np * sizeof *zo);
    zl = xmalloc(np * sizeof *zl);
    zp = xmalloc(np * tiny_max_output(TINY_OP_COMPRESS, piece));
    out = xmalloc(tiny_max_output(TINY_OP_COMPRESS, piece) + piece);
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = now_ns();
        zt = 0;
        for (size_t i = 0; i < np; i++) {
            size_t len = n - i * piece < piece ? n - i * piece : piece;
            zl[i] = tiny_max_output(TINY_OP_COMPRESS, piece);
            zo[i] = zt;
            snappy_compress((const char *)in + i * piece, len, (char *)zp + zt, &zl[i]);
            zt += zl[i];
        }
        t[r] = now_ns() - t0;
    }
    for (size_t i = 0; i < np; i++)
        if (zl[i] > dcap) {
            fprintf(stderr, "service: piece %zu compressed to %zu bytes, more than a buf holds\n",
                    i, zl[i]);
            exit(1);
        }
    base_c = pct(t, (size_t)reps, 0.5);
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = now_ns();
        for (size_t i = 0; i < np; i++) {
            size_t ol = piece;
            snappy_uncompress((const char *)zp + zo[i], zl[i], (char *)out, &ol);
        }
        t[r] = now_ns() - t0;
    }
    base_d = pct(t, (size_t)reps, 0.5);
    for (int r = 0; r < reps; r++)
        t[r] = zc_pass(c, TINY_OP_COMPRESS, in, n, piece, NULL, NULL, NULL);
    svc = pct(t, (size_t)reps, 0.5);
    snprintf(label, sizeof label, "1 client, zero-copy (tiny_buf, 8 x %zu KiB in flight): COMPRESS",
             piece >> 10);
    row(label, mbps(n, base_c), mbps(n, svc), "MB/s", ">= 1.7x");
    for (int r = 0; r < reps; r++)
        t[r] = zc_pass(c, TINY_OP_DECOMPRESS, in, n, piece, zp, zo, zl);
    svc = pct(t, (size_t)reps, 0.5);
    snprintf(label, sizeof label,
             "1 client, zero-copy (tiny_buf, 8 x %zu KiB in flight): DECOMPRESS", piece >> 10);
    row(label, mbps(n, base_d), mbps(n, svc), "MB/s", ">= 1.7x");
    tiny_disconnect(c);
    free(t);
    free(out);
    free(zp);
    free(zl);
    free(zo);
}

static void parallel(const unsigned char *in, size_t n)
{
    size_t nreq = (n + REQ - 1) / REQ, unit_cap = tiny_max_output(TINY_OP_COMPRESS, REQ);
    unsigned char *z = xmalloc(nreq * unit_cap), *out = xmalloc(nreq * unit_cap);
    size_t *zlen = xmalloc(sizeof *zlen * nreq), ztotal = 0;
    uint64_t *t = xmalloc(sizeof *t * (size_t)reps);
    uint64_t base_c, base_d;
    unsigned char *zpacked;

    /* the single-threaded in-process reference, on the same REQ-sized pieces */
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = now_ns();
        for (size_t i = 0; i < nreq; i++) {
            size_t len = n - i * REQ < REQ ? n - i * REQ : REQ;
            zlen[i] = unit_cap;
            snappy_compress((const char *)in + i * REQ, len, (char *)z + i * unit_cap, &zlen[i]);
        }
        t[r] = now_ns() - t0;
    }
    base_c = pct(t, (size_t)reps, 0.5);
    for (size_t i = 0; i < nreq; i++)
        ztotal += zlen[i];
    zpacked = xmalloc(ztotal);
    for (size_t i = 0, o = 0; i < nreq; o += zlen[i], i++)
        memcpy(zpacked + o, z + i * unit_cap, zlen[i]);
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = now_ns();
        for (size_t i = 0, o = 0; i < nreq; o += zlen[i], i++) {
            size_t ol = REQ;
            snappy_uncompress((const char *)zpacked + o, zlen[i], (char *)out + i * REQ, &ol);
        }
        t[r] = now_ns() - t0;
    }
    base_d = pct(t, (size_t)reps, 0.5);
    machine_check(in, n, out, unit_cap, base_c, t);

    /* async, 4 requests in flight on one connection */
    fprintf(stderr, "parallel: async\n");
    tiny_conn *c = connect_or_bail(8, 1u << 20, 1);
    for (int r = 0; r < reps; r++)
        t[r] = async_pass(c, TINY_OP_COMPRESS, in, n, REQ, nreq, out, unit_cap, 4, NULL);
    row("1 client, async (4 x 16 MiB in flight, callbacks): COMPRESS", mbps(n, base_c),
        mbps(n, pct(t, (size_t)reps, 0.5)), "MB/s", ">= 1.7x");
    for (int r = 0; r < reps; r++) {
        memset(out, 0, n);
        t[r] = async_pass(c, TINY_OP_DECOMPRESS, zpacked, ztotal, REQ, nreq, out, REQ, 4, zlen);
        if (memcmp(out, in, n) != 0) {
            size_t k = 0;
            while (out[k] == in[k])
                k++;
            fprintf(stderr, "service: async DECOMPRESS output differs from the input at %zu\n", k);
            exit(1);
        }
    }
    row("1 client, async (4 x 16 MiB in flight, callbacks): DECOMPRESS", mbps(n, base_d),
        mbps(n, pct(t, (size_t)reps, 0.5)), "MB/s", ">= 1.7x");
    tiny_disconnect(c);

    /* Two client processes, each blocking on its half. Each reports when
     * its last request completed, so that neither its disconnect nor its
     * exit (unmapping the inherited buffers) is timed. */
    fprintf(stderr, "parallel: two clients\n");
    for (int k = 0; k < 2; k++) {
        for (int r = 0; r < reps; r++) {
            int p0[2][2], go[2][2];
            pid_t pid[2];
            char ch;
            for (int i = 0; i < 2; i++) {
                if (pipe(p0[i]) || pipe(go[i]))
                    exit(1);
                fflush(stdout);
                pid[i] = fork();
                if (pid[i] == 0) {
                    tiny_conn *cc = connect_or_bail(8, 1u << 20, 1);
                    /* a private, already touched output buffer: writing into
                     * the parent's would time copy-on-write faults */
                    unsigned char *mine = xmalloc(unit_cap);
                    int bad = 0;
                    memset(mine, 0, unit_cap);
                    if (write(p0[i][1], "r", 1) != 1 || read(go[i][0], &ch, 1) != 1)
                        _exit(1);
                    for (size_t q = (size_t)i; q < nreq; q += 2) {
                        size_t len = n - q * REQ < REQ ? n - q * REQ : REQ;
                        ssize_t got;
                        if (k == 0)
                            got = tiny_compress(cc, in + q * REQ, len, mine, unit_cap);
                        else
                            got = tiny_decompress(cc, z + q * unit_cap, zlen[q], mine, unit_cap);
                        bad |= got < 0;
                    }
                    uint64_t end = now_ns();
                    if (write(p0[i][1], &end, sizeof end) != sizeof end)
                        bad = 1;
                    tiny_disconnect(cc);
                    _exit(bad);
                }
                /* the children's ends: a child that dies is then seen as
                 * EOF here, not waited for forever */
                close(p0[i][1]);
                close(go[i][0]);
                if (read(p0[i][0], &ch, 1) != 1) {
                    fprintf(stderr, "service: a client process could not start\n");
                    exit(1);
                }
            }
            uint64_t t0 = now_ns(), t1 = t0;
            for (int i = 0; i < 2; i++)
                if (write(go[i][1], "g", 1) != 1)
                    exit(1);
            for (int i = 0; i < 2; i++) {
                uint64_t end = 0;
                int st;
                if (read(p0[i][0], &end, sizeof end) == sizeof end && end > t1)
                    t1 = end;
                waitpid(pid[i], &st, 0);
                if (!WIFEXITED(st) || WEXITSTATUS(st)) {
                    fprintf(stderr, "service: a client process failed\n");
                    exit(1);
                }
                close(p0[i][0]), close(go[i][1]);
            }
            t[r] = t1 - t0;
        }
        row(k == 0 ? "2 client processes, blocking: COMPRESS"
                   : "2 client processes, blocking: DECOMPRESS",
            mbps(n, k == 0 ? base_c : base_d), mbps(n, pct(t, (size_t)reps, 0.5)), "MB/s",
            ">= 1.7x");
    }
    free(t);
    free(z);
    free(out);
    free(zlen);
    free(zpacked);
}

/* Requests as tinyfs makes them: one CHUNK_COMPRESS per 64 KiB chunk of a
 * file written sequentially, then one CHUNK_DECOMPRESS per record made
 * (tinyfs reads its uncompressed records itself; here they go to tinyd
 * too), CHUNK_DEPTH of them in flight on tinyfs's geometry (32 slots of
 * 256 KiB), callbacks. Each is a single step that a reader thread of tinyd
 * could run itself; these rows show whether such a burst still uses every
 * worker. Against the framing format made and read in-process, chunk by
 * chunk, with the same CRC-32C (tests/util.h). */
#define CHUNK_DEPTH 16

static void chunk_stream(const unsigned char *in, size_t n)
{
    size_t nch = n / TINY_CHUNK_MAX, cap = tiny_max_output(TINY_OP_CHUNK_COMPRESS, TINY_CHUNK_MAX);
    unsigned char *rec = xmalloc(nch * cap), *packed = xmalloc(nch * cap);
    unsigned char *frame = xmalloc(10 + nch * cap), *out = xmalloc(nch * TINY_CHUNK_MAX);
    size_t *rl = xmalloc(sizeof *rl * nch), total = 0, flen = 0;
    uint64_t *t = xmalloc(sizeof *t * (size_t)reps), base_c, base_d, svc;
    tiny_conn *c;

    n = nch * TINY_CHUNK_MAX;
    fprintf(stderr, "parallel: chunk requests\n");
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = now_ns();
        flen = ref_frame_encode(in, n, frame, 1);
        t[r] = now_ns() - t0;
    }
    base_c = pct(t, (size_t)reps, 0.5);
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = now_ns();
        if (ref_frame_decode(frame, flen, out, n, 1) != (ssize_t)n) {
            fprintf(stderr, "service: in-process framing round trip failed\n");
            exit(1);
        }
        t[r] = now_ns() - t0;
    }
    base_d = pct(t, (size_t)reps, 0.5);

    c = connect_or_bail(32, 256u << 10, 1);
    for (int r = 0; r < reps; r++)
        t[r] = async_pass(c, TINY_OP_CHUNK_COMPRESS, in, n, TINY_CHUNK_MAX, nch, rec, cap,
                          CHUNK_DEPTH, NULL);
    svc = pct(t, (size_t)reps, 0.5);
    row("1 client, async (16 x 64 KiB chunks in flight, as tinyfs writes): CHUNK_COMPRESS",
        mbps(n, base_c), mbps(n, svc), "MB/s", ">= 1.7x");
    /* the records CHUNK_COMPRESS made, one after the other */
    for (size_t i = 0; i < nch; i++) {
        unsigned char *p = rec + i * cap;

        rl[i] = 4 + (util_le32(p) >> 8);
        memcpy(packed + total, p, rl[i]);
        total += rl[i];
    }
    for (int r = 0; r < reps; r++) {
        memset(out, 0, n);
        t[r] = async_pass(c, TINY_OP_CHUNK_DECOMPRESS, packed, total, TINY_CHUNK_MAX, nch, out,
                          TINY_CHUNK_MAX, CHUNK_DEPTH, rl);
        if (memcmp(out, in, n) != 0) {
            fprintf(stderr, "service: CHUNK_DECOMPRESS output differs from the input\n");
            exit(1);
        }
    }
    svc = pct(t, (size_t)reps, 0.5);
    row("1 client, async (16 x 64 KiB chunks in flight, every record): CHUNK_DECOMPRESS",
        mbps(n, base_d), mbps(n, svc), "MB/s", ">= 1.7x");
    tiny_disconnect(c);
    free(t);
    free(rl);
    free(out);
    free(frame);
    free(packed);
    free(rec);
}

/* --- latency ------------------------------------------------------------------- */

#define LAT_N 20000

/* Round trip of one TINY_MSG_SIZE message between two processes. */
static void pingpong(uint64_t *p50, uint64_t *p99)
{
    int q1 = msgget(IPC_PRIVATE, 0600), q2 = msgget(IPC_PRIVATE, 0600);
    uint64_t *t = xmalloc(sizeof *t * LAT_N);
    struct tiny_msg m;
    pid_t pid;

    if (q1 < 0 || q2 < 0) {
        perror("service: msgget");
        exit(1);
    }
    tiny_msg_init(&m, TINY_MTYPE_DAEMON, TINY_MSG_SUBMIT);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        for (int i = 0; i < LAT_N + 200; i++) {
            if (msgrcv(q1, &m, TINY_MSG_SIZE, 0, 0) < 0 || msgsnd(q2, &m, TINY_MSG_SIZE, 0) < 0)
                _exit(1);
        }
        _exit(0);
    }
    for (int i = 0; i < LAT_N + 200; i++) {
        uint64_t t0 = now_ns();
        if (msgsnd(q1, &m, TINY_MSG_SIZE, 0) < 0 || msgrcv(q2, &m, TINY_MSG_SIZE, 0, 0) < 0)
            break;
        if (i >= 200)
            t[i - 200] = now_ns() - t0;
    }
    waitpid(pid, NULL, 0);
    msgctl(q1, IPC_RMID, NULL);
    msgctl(q2, IPC_RMID, NULL);
    *p99 = pct(t, LAT_N, 0.99);
    *p50 = pct(t, LAT_N, 0.5);
    free(t);
}

static void latency(void)
{
    unsigned char in[4096], out[8192];
    uint64_t *t = xmalloc(sizeof *t * LAT_N);
    uint64_t s50, s99, pp50, pp99, t50, t99;
    tiny_conn *c;

    fprintf(stderr, "latency\n");
    gen_mixed(in, sizeof in, 4);
    for (int i = 0; i < LAT_N; i++) {
        size_t ol = sizeof out;
        uint64_t t0 = now_ns();
        snappy_compress((const char *)in, sizeof in, (char *)out, &ol);
        t[i] = now_ns() - t0;
    }
    s99 = pct(t, LAT_N, 0.99);
    s50 = pct(t, LAT_N, 0.5);
    pingpong(&pp50, &pp99);
    c = connect_or_bail(8, 65536, 1);
    for (int i = 0; i < 500; i++)
        tiny_compress(c, in, sizeof in, out, sizeof out);
    for (int i = 0; i < LAT_N; i++) {
        uint64_t t0 = now_ns();
        if (tiny_compress(c, in, sizeof in, out, sizeof out) < 0) {
            fprintf(stderr, "service: 4 KiB compress failed\n");
            exit(1);
        }
        t[i] = now_ns() - t0;
    }
    t99 = pct(t, LAT_N, 0.99);
    t50 = pct(t, LAT_N, 0.5);
    tiny_disconnect(c);
    fprintf(stderr, "4 KiB snappy p50 %.1f us p99 %.1f us; msg ping-pong p50 %.1f us p99 %.1f us\n",
            s50 / 1e3, s99 / 1e3, pp50 / 1e3, pp99 / 1e3);
    /* ratios here are service / budget, so lower is better */
    printf("| 4 KiB COMPRESS round trip p50 (budget: snappy %.1f us + 1.2 x ping-pong %.1f us) | "
           "%.1f us | %.1f us | %.2fx | <= 1.0x |\n",
           s50 / 1e3, pp50 / 1e3, (s50 + 1.2 * pp50) / 1e3, t50 / 1e3, t50 / (s50 + 1.2 * pp50));
    printf("| 4 KiB COMPRESS round trip p99 (budget: snappy %.1f us + 1.2 x ping-pong %.1f us) | "
           "%.1f us | %.1f us | %.2fx | <= 1.0x |\n",
           s99 / 1e3, pp99 / 1e3, (s99 + 1.2 * pp99) / 1e3, t99 / 1e3, t99 / (s99 + 1.2 * pp99));
    fflush(stdout);
    free(t);
}

/*
 * What the decompression of a tinyfs random read costs: one 64 KiB chunk of
 * the mixed input, as tinyfs stores it (CHUNK_COMPRESS), decompressed with a
 * blocking CHUNK_DECOMPRESS on tinyfs's geometry, the requests 200 us apart
 * as a reader that waits for the disk between them sends them; against
 * snappy_uncompress() of the same chunk in-process. No target: it says how
 * much of a random read is snappy's own work.
 */
#define CHUNK_N 2000

static void chunk_latency(const unsigned char *in, size_t n)
{
    enum { K = 64 };
    size_t cap = tiny_max_output(TINY_OP_COMPRESS, TINY_CHUNK_MAX) + 64, rl[K], wl[K];
    unsigned char out[TINY_CHUNK_MAX], *rec, *raw;
    uint64_t *t, *s;
    tiny_conn *c;

    if (n < (size_t)K * TINY_CHUNK_MAX)
        return;
    c = connect_or_bail(32, 256u << 10, 1);
    rec = xmalloc(cap * K);
    raw = xmalloc(cap * K);
    t = xmalloc(sizeof *t * CHUNK_N);
    s = xmalloc(sizeof *s * CHUNK_N);
    for (int k = 0; k < K; k++) {
        const unsigned char *p = in + (size_t)k * (n / K);
        ssize_t r = tiny_run(c, TINY_OP_CHUNK_COMPRESS, 0, p, TINY_CHUNK_MAX, rec + cap * k, cap);
        if (r < 0) {
            fprintf(stderr, "service: chunk compress failed: %s\n", tiny_strerror((int)r));
            exit(1);
        }
        rl[k] = (size_t)r;
        wl[k] = cap;
        snappy_compress((const char *)p, TINY_CHUNK_MAX, (char *)raw + cap * k, &wl[k]);
    }
    for (int i = 0; i < CHUNK_N; i++) {
        int k = i % K;
        size_t ol = sizeof out;
        uint64_t t0;

        usleep(200);
        t0 = now_ns();
        if (tiny_run(c, TINY_OP_CHUNK_DECOMPRESS, 0, rec + cap * k, rl[k], out, sizeof out) !=
                TINY_CHUNK_MAX ||
            memcmp(out, in + (size_t)k * (n / K), TINY_CHUNK_MAX) != 0) {
            fprintf(stderr, "service: chunk decompress failed\n");
            exit(1);
        }
        t[i] = now_ns() - t0;
        t0 = now_ns();
        snappy_uncompress((const char *)raw + cap * k, wl[k], (char *)out, &ol);
        s[i] = now_ns() - t0;
    }
    printf("| 64 KiB CHUNK_DECOMPRESS round trip p50, requests 200 us apart (a tinyfs random "
           "read) | %.1f us | %.1f us | %.2fx | (no target) |\n",
           pct(s, CHUNK_N, 0.5) / 1e3, pct(t, CHUNK_N, 0.5) / 1e3,
           (double)pct(t, CHUNK_N, 0.5) / (double)pct(s, CHUNK_N, 0.5));
    fflush(stdout);
    tiny_disconnect(c);
    free(s);
    free(t);
    free(raw);
    free(rec);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/data";
    size_t mixed = (argc > 2 ? strtoul(argv[2], NULL, 0) : 256) << 20;
    size_t corpus_len = 0;
    unsigned char *corpus = NULL, *big;
    char path[4096];
    tiny_conn *c;

    watchdog(1800); /* a hang in the library must not hang make bench */
    if (argc > 3)
        reps = atoi(argv[3]) > 0 ? atoi(argv[3]) : 5;
    for (size_t i = 0; i < CORPUS_N; i++) {
        size_t n = 0;
        unsigned char *f;
        snprintf(path, sizeof path, "%s/%s", dir, corpus_files[i]);
        f = read_file(path, &n);
        if (!f) {
            fprintf(stderr, "service: cannot read %s\n", path);
            return 1;
        }
        corpus = realloc(corpus, corpus_len + n);
        memcpy(corpus + corpus_len, f, n);
        corpus_len += n;
        free(f);
    }
    big = xmalloc(mixed);
    gen_mixed(big, mixed, 2024);

    printf("| measurement | in-process snappy | tinyd | ratio | target |\n");
    printf("|---|---|---|---|---|\n");
    c = connect_or_bail(8, 1u << 20, 1);
    snprintf(path, sizeof path, "corpus (%.1f MB)", corpus_len / 1e6);
    single_client(c, path, corpus, corpus_len);
    snprintf(path, sizeof path, "mixed (%zu MiB)", mixed >> 20);
    single_client(c, path, big, mixed);
    tiny_disconnect(c);
    parallel(big, mixed);
    zero_copy(big, mixed);
    chunk_stream(big, mixed);
    latency();
    chunk_latency(big, mixed);
    c = connect_or_bail(8, 1u << 20, 1);
    cpu_costs(c, big, mixed);
    tiny_disconnect(c);
    free(big);
    free(corpus);
    return 0;
}
