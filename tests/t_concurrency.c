/*
 * t_concurrency.c - many things at once against one tinyd: 16 client
 * processes with mixed geometries and mixed-size requests; many requests in
 * flight on one connection with tiny_submit + tiny_wait, + tiny_poll, and
 * with callbacks (some submitting more requests from the callback); one
 * connection shared by 8 threads; a burst of one-chunk requests, which must
 * reach tinyd's workers. Every output is checked against
 * in-process snappy. Each scenario runs in its own child process with a
 * timeout, so a deadlock is reported as such and the others still run.
 * Usage: t_concurrency        (TINYD_DIR names the daemon)
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "tiny.h"
#include "util.h"

#define POOL (16u << 20)

static unsigned char *pool;
static size_t force_size; /* when set, every job has this size */

/* One request and everything needed to check it. */
struct job {
    int op;
    const unsigned char *data; /* the uncompressed data */
    size_t n;
    unsigned char *in; /* op input (data itself, or its compressed form) */
    size_t in_len;
    unsigned char *out;
    size_t cap;
    tiny_req *req;
    ssize_t result;
    atomic_int done;
};

static size_t pick_size(uint64_t *s)
{
    size_t k = rng_below(s, 100);

    if (force_size)
        return force_size;
    if (k < 60)
        return rng_below(s, 65537);
    if (k < 90)
        return 65536 + rng_below(s, 1u << 20);
    return rng_below(s, 6u << 20);
}

static void job_init(struct job *j, uint64_t *s, int op)
{
    j->n = pick_size(s);
    j->data = pool + rng_below(s, POOL - j->n);
    j->op = op ? op : 1 + (int)rng_below(s, 4);
    j->result = 0;
    atomic_store(&j->done, 0);
    switch (j->op) {
    case TINY_OP_COMPRESS:
    case TINY_OP_FRAME_COMPRESS:
        j->in = (unsigned char *)j->data;
        j->in_len = j->n;
        j->cap = tiny_max_output(j->op, j->n);
        break;
    case TINY_OP_DECOMPRESS:
        j->in_len = snappy_max_compressed_length(j->n);
        j->in = xmalloc(j->in_len);
        snappy_compress((const char *)j->data, j->n, (char *)j->in, &j->in_len);
        j->cap = j->n;
        break;
    default:
        j->in = xmalloc(10 + j->n + j->n / 6 + 64 * (j->n / 65536 + 1));
        j->in_len = ref_frame_encode(j->data, j->n, j->in, 0);
        j->cap = j->n;
        break;
    }
    j->out = xmalloc(j->cap);
}

/* 0 when the job's result is right; describes the problem otherwise. */
static int job_check(struct job *j, ssize_t r)
{
    int bad = 0;

    if (r < 0) {
        diag("op %d of %zu bytes failed: %s (%zd)", j->op, j->n, tiny_strerror((int)r), r);
        return 1;
    }
    if (j->op == TINY_OP_COMPRESS) {
        size_t rl = snappy_max_compressed_length(j->n);
        unsigned char *ref = xmalloc(rl);
        snappy_compress((const char *)j->data, j->n, (char *)ref, &rl);
        bad = (size_t)r != rl || memcmp(ref, j->out, rl);
        free(ref);
    } else if (j->op == TINY_OP_FRAME_COMPRESS) {
        unsigned char *back = xmalloc(j->n);
        bad = ref_frame_decode(j->out, (size_t)r, back, j->n, 1) != (ssize_t)j->n ||
              memcmp(back, j->data, j->n);
        free(back);
    } else {
        bad = (size_t)r != j->n || memcmp(j->out, j->data, j->n);
    }
    if (bad)
        diag("op %d of %zu bytes: wrong output (%zd bytes)", j->op, j->n, r);
    return bad;
}

static void job_free(struct job *j)
{
    if (j->in != j->data)
        free(j->in);
    free(j->out);
    j->in = NULL;
    j->out = NULL;
}

/* Runs fn in a child process with a timeout; one test for its outcome. */
static void scenario(const char *name, int (*fn)(void *), void *arg, unsigned timeout)
{
    pid_t pid;
    int st = 0;

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        tap_failed = 0; /* count this scenario's failures only */
        watchdog(timeout);
        int bad = fn(arg);
        fflush(stdout);
        _exit(bad || tap_failed ? 1 : 0);
    }
    waitpid(pid, &st, 0);
    ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s (%s %d)", name,
       WIFEXITED(st) ? (WEXITSTATUS(st) == 3 ? "timed out after" : "exit status")
                     : "killed by signal",
       WIFEXITED(st) ? (WEXITSTATUS(st) == 3 ? (int)timeout : WEXITSTATUS(st)) : WTERMSIG(st));
}

/* --- 16 processes ------------------------------------------------------ */

static int one_process(void *arg)
{
    int id = (int)(intptr_t)arg;
    static const size_t slot_sizes[] = {4096, 65536, 256u << 10, 1u << 20};
    uint64_t s = rng_seed(500 + (unsigned)id);
    tiny_conn *c = connect_or_bail(4 + (unsigned)id % 5, slot_sizes[id % 4], 1);
    int bad = 0;

    for (int i = 0; i < 40; i++) {
        struct job j;
        job_init(&j, &s, 0);
        bad += job_check(&j, tiny_run(c, j.op, 0, j.in, j.in_len, j.out, j.cap));
        job_free(&j);
    }
    tiny_disconnect(c);
    if (bad)
        diag("client process %d: %d of 40 requests wrong", id, bad);
    return bad;
}

static void many_processes(void)
{
    pid_t pids[16];
    int good = 0;

    fflush(stdout);
    for (int i = 0; i < 16; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            watchdog(240);
            _exit(one_process((void *)(intptr_t)i) ? 1 : 0);
        }
    }
    for (int i = 0; i < 16; i++) {
        int st = 0;
        waitpid(pids[i], &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            good++;
        else
            diag("client process %d: %s %d", i, WIFEXITED(st) ? "exit" : "signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
    is_int(good, 16, "16 concurrent client processes x 40 mixed requests, all outputs right");
}

/* --- async on one connection -------------------------------------------- */

struct async_arg {
    int n;       /* requests in flight */
    int poll;    /* drive them with tiny_poll */
    size_t size; /* every request this big, or 0 for mixed sizes */
};

static int async_submit_wait(void *argp)
{
    struct async_arg *a = argp;
    tiny_conn *c = connect_or_bail(8, 1u << 20, 1);
    struct job *jobs = calloc((size_t)a->n, sizeof *jobs);
    uint64_t s = rng_seed(77 + (unsigned)a->n);
    int bad = 0, submitted = 0, spins = 0;

    force_size = a->size;
    for (int i = 0; i < a->n; i++) {
        job_init(&jobs[i], &s, 0);
        int rc = tiny_submit(c, jobs[i].op, 0, jobs[i].in, jobs[i].in_len, jobs[i].out, jobs[i].cap,
                             NULL, NULL, &jobs[i].req);
        if (rc < 0) {
            diag("tiny_submit %d failed: %s", i, tiny_strerror(rc));
            bad++;
            jobs[i].req = NULL;
        } else {
            submitted++;
        }
    }
    if (a->poll) {
        int left = submitted;
        while (left > 0) {
            left = 0;
            for (int i = 0; i < a->n; i++)
                if (jobs[i].req && !atomic_load(&jobs[i].done)) {
                    int p = tiny_poll(jobs[i].req);
                    if (p < 0) {
                        diag("tiny_poll returned %d", p);
                        bad++;
                        atomic_store(&jobs[i].done, 1);
                    } else if (p == 1) {
                        atomic_store(&jobs[i].done, 1);
                    } else {
                        left++;
                    }
                }
            spins++;
            if (left)
                usleep(200);
        }
    }
    for (int i = 0; i < a->n; i++) {
        if (!jobs[i].req)
            continue;
        uint64_t t0 = now_ns();
        ssize_t r = tiny_wait(jobs[i].req);
        if (a->poll && now_ns() - t0 > 100000000ull) {
            diag("tiny_wait after tiny_poll said done took %.1f ms", (double)(now_ns() - t0) / 1e6);
            bad++;
        }
        bad += job_check(&jobs[i], r);
        job_free(&jobs[i]);
    }
    if (a->poll)
        diag("%d requests completed through %d rounds of tiny_poll", submitted, spins);
    free(jobs);
    tiny_disconnect(c);
    ok(bad == 0, "%d requests (%s) in flight on one 8 x 1 MiB connection, collected with %s", a->n,
       a->size ? "16 MiB each" : "mixed sizes", a->poll ? "tiny_poll then tiny_wait" : "tiny_wait");
    return bad;
}

/* The usual pipelining pattern: keep 4 requests of 16 MiB in flight, wait
 * for the oldest, submit the next. */
static int async_window(void *unused)
{
    enum { N = 12, DEPTH = 4 };
    tiny_conn *c = connect_or_bail(8, 1u << 20, 1);
    struct job *jobs = calloc(N, sizeof *jobs);
    uint64_t s = rng_seed(4711);
    int bad = 0, next = 0;

    (void)unused;
    force_size = 16u << 20;
    for (int w = 0; w < N; w++) {
        while (next < N && next < w + DEPTH) {
            job_init(&jobs[next], &s, TINY_OP_COMPRESS);
            int rc = tiny_submit(c, jobs[next].op, 0, jobs[next].in, jobs[next].in_len,
                                 jobs[next].out, jobs[next].cap, NULL, NULL, &jobs[next].req);
            if (rc < 0) {
                diag("tiny_submit %d failed: %s", next, tiny_strerror(rc));
                return 1;
            }
            next++;
        }
        bad += job_check(&jobs[w], tiny_wait(jobs[w].req));
        job_free(&jobs[w]);
    }
    free(jobs);
    tiny_disconnect(c);
    ok(bad == 0,
       "a window of %d requests of 16 MiB in flight over %d requests, tiny_wait on the "
       "oldest",
       DEPTH, N);
    return bad;
}

struct cb_state {
    tiny_conn *c;
    struct job *jobs;
    int n_first, n_total;
    atomic_int next;      /* next job index for chained submissions */
    atomic_int completed; /* callbacks run */
    atomic_int bad;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static void on_done(tiny_req *req, ssize_t result, void *arg);

static void cb_submit(struct cb_state *st, int i)
{
    struct job *j = &st->jobs[i];
    int rc = tiny_submit(st->c, j->op, 0, j->in, j->in_len, j->out, j->cap, on_done, j, NULL);

    if (rc < 0) {
        diag("tiny_submit with callback %d failed: %s", i, tiny_strerror(rc));
        atomic_fetch_add(&st->bad, 1);
        j->result = rc;
        atomic_fetch_add(&st->completed, 1);
        atomic_store(&j->done, 1);
    }
}

static struct cb_state *cb_global;

static void on_done(tiny_req *req, ssize_t result, void *arg)
{
    struct cb_state *st = cb_global;
    struct job *j = arg;

    (void)req;
    j->result = result;
    if (atomic_exchange(&j->done, 1))
        atomic_fetch_add(&st->bad, 1); /* a callback ran twice */
    /* the first completions chain one more request each, from this thread */
    int k = atomic_fetch_add(&st->next, 1);
    if (k < st->n_total)
        cb_submit(st, k);
    pthread_mutex_lock(&st->lock);
    atomic_fetch_add(&st->completed, 1);
    pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

static int async_callbacks(void *unused)
{
    struct cb_state st = {.n_first = 48, .n_total = 64};
    uint64_t s = rng_seed(4242);
    int bad = 0;

    (void)unused;
    cb_global = &st;
    pthread_mutex_init(&st.lock, NULL);
    pthread_cond_init(&st.cond, NULL);
    st.c = connect_or_bail(8, 1u << 20, 1);
    st.jobs = calloc((size_t)st.n_total, sizeof *st.jobs);
    for (int i = 0; i < st.n_total; i++)
        job_init(&st.jobs[i], &s, 0);
    atomic_store(&st.next, st.n_first);
    for (int i = 0; i < st.n_first; i++)
        cb_submit(&st, i);
    pthread_mutex_lock(&st.lock);
    while (atomic_load(&st.completed) < st.n_total)
        pthread_cond_wait(&st.cond, &st.lock);
    pthread_mutex_unlock(&st.lock);
    for (int i = 0; i < st.n_total; i++) {
        if (!atomic_load(&st.jobs[i].done))
            bad++;
        else
            bad += job_check(&st.jobs[i], st.jobs[i].result);
    }
    bad += atomic_load(&st.bad);
    tiny_disconnect(st.c);
    for (int i = 0; i < st.n_total; i++)
        job_free(&st.jobs[i]);
    free(st.jobs);
    ok(bad == 0, "%d requests with callbacks (%d submitted from callbacks), all right", st.n_total,
       st.n_total - st.n_first);
    return bad;
}

/* --- 8 threads, one connection ------------------------------------------ */

struct thr {
    tiny_conn *c;
    int id;
    int bad;
};

static void *thread_main(void *argp)
{
    struct thr *t = argp;
    uint64_t s = rng_seed(900 + (unsigned)t->id);

    for (int i = 0; i < 25; i++) {
        struct job j;
        job_init(&j, &s, 0);
        t->bad += job_check(&j, tiny_run(t->c, j.op, 0, j.in, j.in_len, j.out, j.cap));
        job_free(&j);
        if (i % 5 == 0) {
            struct tiny_stats st;
            if (tiny_stats(t->c, &st) < 0)
                t->bad++;
        }
    }
    return NULL;
}

static int shared_connection(void *unused)
{
    struct thr t[8];
    pthread_t th[8];
    tiny_conn *c = connect_or_bail(8, 256u << 10, 1);
    int bad = 0;

    (void)unused;
    for (int i = 0; i < 8; i++) {
        t[i] = (struct thr){.c = c, .id = i};
        pthread_create(&th[i], NULL, thread_main, &t[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        bad += t[i].bad;
    }
    tiny_disconnect(c);
    ok(bad == 0, "8 threads x 25 mixed requests on one connection (+ tiny_stats), all right");
    return bad;
}

/* --- a burst of one-chunk requests ------------------------------------- */

/* CPU ticks (user + system) of tinyd's threads named @name. */
static long tinyd_ticks(const char *name)
{
    long pid = tinyd_pid(), ticks = 0;
    char path[320], comm[64];
    struct dirent *d;
    DIR *tasks;

    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    tasks = pid > 0 ? opendir(path) : NULL;
    while (tasks && (d = readdir(tasks))) {
        long t;

        snprintf(path, sizeof path, "/proc/%ld/task/%s/stat", pid, d->d_name);
        t = proc_ticks(path, comm, sizeof comm);
        if (t >= 0 && strcmp(comm, name) == 0)
            ticks += t;
    }
    if (tasks)
        closedir(tasks);
    return ticks;
}

/* A file written sequentially through tinyfs: one CHUNK_COMPRESS per 64 KiB,
 * 16 in flight. Each is a single step that a client's reader thread in
 * tinyd could run itself, but a burst of them must reach the workers, or
 * the reader would compress them one after the other while the workers
 * idle. The reader still runs those that arrive while no other message of
 * the client waits, which is most of them when the client is short of CPU;
 * without the workers, the reader did all of them. */
static int chunk_burst(void *unused)
{
    enum { N = 4096, DEPTH = 16 };
    size_t cap = tiny_max_output(TINY_OP_CHUNK_COMPRESS, TINY_CHUNK_MAX);
    unsigned char *out = xmalloc((size_t)DEPTH * cap), *ref = xmalloc(10 + 2 * cap);
    tiny_conn *c = connect_or_bail(32, 256u << 10, 1);
    tiny_req *req[DEPTH];
    long w0 = tinyd_ticks("tinyd-worker"), workers, reader;
    char name[32];
    int bad = 0;

    (void)unused;
    for (int i = 0; i < N + DEPTH; i++) {
        int k = i % DEPTH;

        if (i >= DEPTH) {
            /* the request of chunk i - DEPTH, against the reference chunk */
            size_t off = (size_t)(i - DEPTH) * TINY_CHUNK_MAX % (POOL - TINY_CHUNK_MAX);
            size_t rl = ref_frame_encode(pool + off, TINY_CHUNK_MAX, ref, 1) - 10;
            ssize_t r = tiny_wait(req[k]);

            if (r != (ssize_t)rl || memcmp(out + (size_t)k * cap, ref + 10, rl) != 0)
                bad++;
        }
        if (i < N) {
            size_t off = (size_t)i * TINY_CHUNK_MAX % (POOL - TINY_CHUNK_MAX);
            int rc = tiny_submit(c, TINY_OP_CHUNK_COMPRESS, 0, pool + off, TINY_CHUNK_MAX,
                                 out + (size_t)k * cap, cap, NULL, NULL, &req[k]);
            if (rc < 0) {
                diag("tiny_submit of chunk %d failed: %s", i, tiny_strerror(rc));
                return 1;
            }
        }
    }
    snprintf(name, sizeof name, "tinyd-c%d", (int)getpid());
    reader = tinyd_ticks(name);
    workers = tinyd_ticks("tinyd-worker") - w0;
    tiny_disconnect(c);
    free(ref);
    free(out);
    ok(bad == 0, "%d chunks of 64 KiB, %d in flight: every record is the reference chunk", N,
       DEPTH);
    ok(workers > 0 && workers * 3 >= reader,
       "the workers did a quarter of the work or more (%ld ticks of CPU, the client's reader "
       "thread %ld)",
       workers, reader);
    return bad;
}

int main(void)
{
    static struct async_arg few = {4, 0, 0}, many = {64, 0, 0}, polled = {64, 1, 0};
    static struct async_arg big = {4, 0, 16u << 20}, bigpoll = {4, 1, 16u << 20};

    watchdog(500);
    pool = xmalloc(POOL);
    gen_mixed(pool, POOL, 31337);

    many_processes();
    scenario("async: 4 requests (fewer than slots) submitted then waited", async_submit_wait, &few,
             60);
    scenario("async: 64 requests (more than slots) submitted then waited", async_submit_wait, &many,
             90);
    scenario("async: 64 requests driven by tiny_poll", async_submit_wait, &polled, 90);
    scenario("async: 4 requests of 16 MiB (more units than slots) submitted then waited",
             async_submit_wait, &big, 30);
    scenario("async: 4 requests of 16 MiB driven by tiny_poll", async_submit_wait, &bigpoll, 30);
    scenario("async: sliding window of 4 x 16 MiB requests, oldest waited first", async_window,
             NULL, 30);
    scenario("async: callbacks", async_callbacks, NULL, 90);
    scenario("one connection shared by 8 threads", shared_connection, NULL, 120);
    scenario("async: a burst of one-chunk requests, as tinyfs writes", chunk_burst, NULL, 90);
    free(pool);
    return done_testing();
}
