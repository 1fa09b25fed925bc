/*
 * svcplot.c - the service sweeps behind the plots of docs/benchmarks.md
 * (make bench, via run.sh). Each sweep writes a gnuplot data file into
 * OUTDIR and a markdown table on stdout; progress goes to stderr.
 *
 *  size.dat     COMPRESS latency against input size (4 KiB .. 64 MiB):
 *               in-process snappy, tiny_run (sync), tiny_submit + tiny_wait
 *               (async: the library's progress thread moves the request);
 *  slots.dat    16 MiB COMPRESS latency against slot size (4 KiB .. 16 MiB)
 *               for 1, 3 and 5 slots;
 *  clients.dat  aggregate COMPRESS throughput of 1, 2, 4 and 8 client
 *               processes, each with its own connection (default geometry);
 *  fair.dat     4 KiB round-trip latency (p50, p99) of one client while 0..3
 *               other processes stream 16 MiB COMPRESS requests;
 *  weighted shares: streaming clients of weights 1:1, 1:3 and 3:2:1 for a
 *               fixed time, each with two requests going; the bytes each got
 *               through.
 * Every latency is a median over several repetitions (fewer for the big
 * inputs). Usage: svcplot OUTDIR     (TINYD_DIR names the daemon)
 *   SVC_REPS (default 5)  repetitions of each size point
 *   SVC_SECS (default 3)  seconds of each client-count and weight run
 *   SVC_ONLY              e.g. "fair,size": run only the sweeps named
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <snappy-c.h>

#include "tiny.h"
#include "../util.h"

#define MIB       (1u << 20)
#define STREAM    (16u * MIB) /* request size of the streaming clients */
#define SHARE_REQ (4u * MIB)  /* request size of the weighted-share clients */
#define MIXED_MAX (64u * MIB)

static int reps = 5;
static double secs = 3.0;
static const char *outdir;
static unsigned char *mixed, *outbuf;
static size_t outcap;

static FILE *dat(const char *name, const char *header)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", outdir, name);
    f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fprintf(f, "# %s\n", header);
    return f;
}

/* A connection, retried for a while: tinyd may still be reaping the clients
 * of the previous measurement. */
static tiny_conn *conn(unsigned n_slots, size_t slot_size, unsigned weight)
{
    struct tiny_options opt = {.n_slots = n_slots, .slot_size = slot_size, .weight = weight};
    tiny_conn *c = NULL;
    int rc = 0;

    for (int i = 0; i < 50; i++) {
        rc = tiny_connect(&c, &opt);
        if (rc == 0)
            return c;
        usleep(100000);
    }
    fprintf(stderr, "svcplot: cannot connect to tinyd (%u slots of %zu bytes): %s\n", n_slots,
            slot_size, tiny_strerror(rc));
    exit(1);
}

static void check(ssize_t got, const char *what)
{
    if (got < 0) {
        fprintf(stderr, "svcplot: %s failed: %s\n", what, tiny_strerror((int)got));
        exit(1);
    }
}

/* mode 0: in-process, 1: tiny_run, 2: tiny_submit + tiny_wait */
static uint64_t one(tiny_conn *c, int mode, size_t n)
{
    uint64_t t0 = now_ns();
    size_t ol = outcap;
    tiny_req *r = NULL;

    if (mode == 0) {
        snappy_compress((const char *)mixed, n, (char *)outbuf, &ol);
    } else if (mode == 1) {
        check(tiny_run(c, TINY_OP_COMPRESS, 0, mixed, n, outbuf, outcap), "tiny_run");
    } else {
        check(tiny_submit(c, TINY_OP_COMPRESS, 0, mixed, n, outbuf, outcap, NULL, NULL, &r),
              "tiny_submit");
        check(tiny_wait(r), "tiny_wait");
    }
    return now_ns() - t0;
}

static uint64_t median_of(tiny_conn *c, int mode, size_t n, int k)
{
    uint64_t t[64];

    if (k > 64)
        k = 64;
    for (int i = 0; i < k; i++)
        t[i] = one(c, mode, n);
    return pct(t, (size_t)k, 0.5);
}

static void sweep_size(void)
{
    tiny_conn *c = conn(0, 0, 1);
    FILE *f = dat("size.dat", "bytes inproc_us sync_us async_us (COMPRESS, median)");

    printf("\n### COMPRESS latency against input size (default geometry: 8 slots of 1 MiB)\n\n");
    printf("| input | in-process snappy | tinyd sync (tiny_run) | tinyd async (submit+wait) | "
           "sync / in-process | async / sync |\n|---|---|---|---|---|---|\n");
    for (size_t n = 4096; n <= MIXED_MAX; n *= 4) {
        /* small inputs are cheap and noisy: repeat them more */
        int k = n <= 256 * 1024 ? reps * 8 : n >= 16 * MIB ? (reps + 1) / 2 + 1 : reps;
        uint64_t a = median_of(c, 0, n, k), b = median_of(c, 1, n, k), d = median_of(c, 2, n, k);
        fprintf(f, "%zu %.1f %.1f %.1f\n", n, a / 1e3, b / 1e3, d / 1e3);
        printf("| %zu KiB | %.1f us | %.1f us | %.1f us | %.2fx | %.2fx |\n", n / 1024, a / 1e3,
               b / 1e3, d / 1e3, (double)b / (double)a, (double)d / (double)b);
        fprintf(stderr, "svcplot: size %zu KiB done\n", n / 1024);
    }
    fclose(f);
    tiny_disconnect(c);
}

static void sweep_slots(void)
{
    static const unsigned nslots[] = {1, 3, 5};
    size_t n = STREAM;
    FILE *f = dat("slots.dat", "slot_bytes ms_1slot ms_3slots ms_5slots (16 MiB COMPRESS)");
    uint64_t inproc = median_of(NULL, 0, n, reps);

    printf("\n### 16 MiB COMPRESS latency against slot size (in-process snappy: %.1f ms)\n\n",
           inproc / 1e6);
    printf("| slot size | 1 slot | 3 slots | 5 slots |\n|---|---|---|---|\n");
    for (size_t s = 4096; s <= TINY_SLOT_SIZE_MAX; s *= 4) {
        double ms[3];
        for (int i = 0; i < 3; i++) {
            tiny_conn *c = conn(nslots[i], s, 1);
            ms[i] = median_of(c, 1, n, s < 64 * 1024 ? 3 : reps) / 1e6;
            tiny_disconnect(c);
        }
        fprintf(f, "%zu %.2f %.2f %.2f\n", s, ms[0], ms[1], ms[2]);
        printf("| %zu KiB | %.1f ms | %.1f ms | %.1f ms |\n", s / 1024, ms[0], ms[1], ms[2]);
        fprintf(stderr, "svcplot: slot size %zu KiB done\n", s / 1024);
    }
    fclose(f);
}

struct streamer {
    size_t req;
    tiny_conn *c;
    unsigned char *o;
    size_t cap;
    uint64_t t0, deadline_ns, bytes;
    size_t off;
};

/* Blocking COMPRESS requests of s->req bytes until the deadline. */
static void *stream(void *arg)
{
    struct streamer *s = arg;

    while (now_ns() - s->t0 < s->deadline_ns) {
        check(tiny_run(s->c, TINY_OP_COMPRESS, 0, mixed + s->off, STREAM, s->o, s->cap), "stream");
        s->bytes += STREAM;
        s->off = (s->off + STREAM) % (MIXED_MAX - STREAM + 1);
    }
    return NULL;
}

/* A child process: waits for the go byte, then either streams STREAM-sized
 * COMPRESS requests until the deadline (reports bytes; @small < 0: SHARE_REQ
 * requests from two threads, so that work of its own is always queued in
 * tinyd), or does
 * 4 KiB round trips (@small > 0; reports p50 and p99). Results go to @wfd as
 * three uint64_t. */
static void child(int go, int wfd, unsigned weight, int small, uint64_t deadline_ns)
{
    tiny_conn *c = conn(small > 0 ? 8 : 0, small > 0 ? 65536 : 0, weight);
    unsigned char *o = xmalloc(tiny_max_output(TINY_OP_COMPRESS, STREAM));
    size_t cap = tiny_max_output(TINY_OP_COMPRESS, STREAM);
    uint64_t res[3] = {0, 0, 0}, t0;
    char b;

    if (read(go, &b, 1) != 1)
        _exit(1);
    t0 = now_ns();
    if (small > 0) {
        enum { N = 2000 };
        static uint64_t lat[N];
        for (int i = 0; i < N; i++) {
            uint64_t a = now_ns();
            check(tiny_run(c, TINY_OP_COMPRESS, 0, mixed + (size_t)i * 4096 % MIXED_MAX, 4096, o,
                           cap),
                  "4 KiB tiny_run");
            lat[i] = now_ns() - a;
        }
        res[0] = pct(lat, N, 0.5);
        res[1] = pct(lat, N, 0.99);
    } else {
        struct streamer st[2];
        pthread_t th[2];
        int nt = small < 0 ? 2 : 1;
        for (int i = 0; i < nt; i++) {
            size_t req = small < 0 ? SHARE_REQ : STREAM;
            st[i] = (struct streamer){.req = req,
                                      .c = c,
                                      .o = i ? xmalloc(cap) : o,
                                      .cap = cap,
                                      .t0 = t0,
                                      .deadline_ns = deadline_ns,
                                      .off = (size_t)i * req};
            if (pthread_create(&th[i], NULL, stream, &st[i]) != 0)
                _exit(1);
        }
        for (int i = 0; i < nt; i++) {
            pthread_join(th[i], NULL);
            res[0] += st[i].bytes;
        }
    }
    res[2] = now_ns() - t0;
    if (write(wfd, res, sizeof res) != (ssize_t)sizeof res)
        _exit(1);
    tiny_disconnect(c);
    _exit(0);
}

struct kid {
    pid_t pid;
    int rfd;
    uint64_t res[3];
};

static void spawn(struct kid *k, int go, unsigned weight, int small, uint64_t deadline_ns)
{
    int p[2];

    if (pipe(p) < 0) {
        perror("pipe");
        exit(1);
    }
    fflush(NULL);
    k->pid = fork();
    if (k->pid < 0) {
        perror("fork");
        exit(1);
    }
    if (k->pid == 0) {
        close(p[0]);
        child(go, p[1], weight, small, deadline_ns);
    }
    close(p[1]);
    k->rfd = p[0];
}

static void reap(struct kid *k)
{
    int st;

    if (read(k->rfd, k->res, sizeof k->res) != (ssize_t)sizeof k->res) {
        fprintf(stderr, "svcplot: a child process failed\n");
        exit(1);
    }
    close(k->rfd);
    waitpid(k->pid, &st, 0);
}

/* Runs @n children (flags in @small, weights in @w) and starts them at once. */
static void run_kids(struct kid *k, int n, const unsigned *w, const int *small, uint64_t dl)
{
    int go[2];

    if (pipe(go) < 0) {
        perror("pipe");
        exit(1);
    }
    for (int i = 0; i < n; i++)
        spawn(&k[i], go[0], w[i], small[i], dl);
    usleep(300000); /* let every child connect before the start */
    for (int i = 0; i < n; i++)
        if (write(go[1], "g", 1) != 1) {
            perror("write");
            exit(1);
        }
    close(go[0]);
    close(go[1]);
    for (int i = 0; i < n; i++)
        reap(&k[i]);
}

static void sweep_clients(void)
{
    static const int counts[] = {1, 2, 4, 8};
    unsigned w[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    int small[8] = {0};
    struct kid k[8];
    FILE *f = dat("clients.dat", "clients aggregate_MBps inproc_1thread_MBps");
    double inproc = (double)STREAM / (median_of(NULL, 0, STREAM, reps) / 1e9) / 1e6;

    printf("\n### Aggregate COMPRESS throughput against the number of client processes "
           "(16 MiB requests, %.0f s each)\n\n",
           secs);
    printf("| clients | aggregate | / in-process snappy, 1 thread (%.0f MB/s) | min / max client "
           "|\n|---|---|---|---|\n",
           inproc);
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        int n = counts[i];
        uint64_t bytes = 0, tmax = 0, bmin = UINT64_MAX, bmax = 0;
        run_kids(k, n, w, small, (uint64_t)(secs * 1e9));
        for (int j = 0; j < n; j++) {
            bytes += k[j].res[0];
            tmax = k[j].res[2] > tmax ? k[j].res[2] : tmax;
            bmin = k[j].res[0] < bmin ? k[j].res[0] : bmin;
            bmax = k[j].res[0] > bmax ? k[j].res[0] : bmax;
        }
        double agg = (double)bytes / ((double)tmax / 1e9) / 1e6;
        fprintf(f, "%d %.1f %.1f\n", n, agg, inproc);
        printf("| %d | %.0f MB/s | %.2fx | %.2f |\n", n, agg, agg / inproc,
               (double)bmin / (double)bmax);
        fprintf(stderr, "svcplot: %d clients done\n", n);
    }
    fclose(f);
}

static void sweep_fair(void)
{
    unsigned w[4] = {1, 1, 1, 1};
    struct kid k[4];
    FILE *f = dat("fair.dat", "streamers p50_us p99_us (4 KiB COMPRESS round trip)");

    printf("\n### Fairness: one client's 4 KiB round trip while others stream 16 MiB "
           "requests\n\n");
    printf("| streaming clients | 4 KiB p50 | 4 KiB p99 | p99 / idle p99 |\n|---|---|---|---|\n");
    double idle99 = 0;
    for (int s = 0; s <= 3; s++) {
        int small[4] = {1, 0, 0, 0};
        /* the streamers stop on their own a little after the 4 KiB client */
        run_kids(k, s + 1, w, small, (uint64_t)(secs * 1e9));
        double p50 = k[0].res[0] / 1e3, p99 = k[0].res[1] / 1e3;
        if (s == 0)
            idle99 = p99;
        fprintf(f, "%d %.1f %.1f\n", s, p50, p99);
        printf("| %d | %.1f us | %.1f us | %.2fx |\n", s, p50, p99, p99 / idle99);
        fprintf(stderr, "svcplot: fairness with %d streamers done\n", s);
    }
    fclose(f);

    printf("\n### Weighted shares: streaming clients of different weights, %.0f s\n\n"
           "Each client keeps two 4 MiB COMPRESS requests going (two threads), so that each "
           "always has work queued in tinyd: weights divide the service among clients that all "
           "wait for it. With 16 MiB requests the shares drift towards equal (1:3 gave about "
           "0.45 : 0.55 here): the clients' own copies of inputs that no longer fit in the "
           "cache then take much of the two cores, and the kernel, not tinyd, divides that "
           "time equally.\n\n",
           secs);
    printf("| weights | MB per client | shares | expected shares |\n|---|---|---|---|\n");
    static const unsigned ws[3][3] = {{1, 1, 0}, {1, 3, 0}, {3, 2, 1}};
    for (int i = 0; i < 3; i++) {
        int small[3] = {-1, -1, -1}, n = ws[i][2] ? 3 : 2;
        unsigned wsum = 0;
        uint64_t total = 0;
        char wbuf[32] = "", mbuf[64] = "", sbuf[64] = "", ebuf[64] = "";
        run_kids(k, n, ws[i], small, (uint64_t)(secs * 1e9));
        for (int j = 0; j < n; j++)
            wsum += ws[i][j], total += k[j].res[0];
        for (int j = 0; j < n; j++) {
            const char *sep = j ? " : " : "";
            snprintf(wbuf + strlen(wbuf), sizeof wbuf - strlen(wbuf), "%s%u", sep, ws[i][j]);
            snprintf(mbuf + strlen(mbuf), sizeof mbuf - strlen(mbuf), "%s%.0f", sep,
                     k[j].res[0] / 1e6);
            snprintf(sbuf + strlen(sbuf), sizeof sbuf - strlen(sbuf), "%s%.3f", sep,
                     (double)k[j].res[0] / (double)total);
            snprintf(ebuf + strlen(ebuf), sizeof ebuf - strlen(ebuf), "%s%.3f", sep,
                     (double)ws[i][j] / wsum);
        }
        printf("| %s | %s | %s | %s |\n", wbuf, mbuf, sbuf, ebuf);
    }
    fprintf(stderr, "svcplot: weighted shares done\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: svcplot OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    if (getenv("SVC_REPS") && atoi(getenv("SVC_REPS")) > 0)
        reps = atoi(getenv("SVC_REPS"));
    if (getenv("SVC_SECS") && atof(getenv("SVC_SECS")) > 0)
        secs = atof(getenv("SVC_SECS"));
    signal(SIGPIPE, SIG_IGN);
    mixed = xmalloc(MIXED_MAX);
    gen_mixed(mixed, MIXED_MAX, 42);
    outcap = tiny_max_output(TINY_OP_COMPRESS, MIXED_MAX);
    outbuf = xmalloc(outcap);
    /* the children are forked before this process connects anywhere */
    const char *only = getenv("SVC_ONLY");
    if (!only || strstr(only, "clients"))
        sweep_clients();
    if (!only || strstr(only, "fair"))
        sweep_fair();
    if (!only || strstr(only, "size"))
        sweep_size();
    if (!only || strstr(only, "slots"))
        sweep_slots();
    free(outbuf);
    free(mixed);
    return 0;
}
