/*
 * codec.c - tinyfs's connection to tinyd. All compression happens in tinyd:
 * this file only submits CHUNK_COMPRESS / CHUNK_DECOMPRESS requests.
 *
 * One connection is shared by every FUSE thread (libtiny is thread-safe).
 * When tinyd goes away (-ECONNRESET), the first thread to notice connects
 * again, starting tinyd if needed, and the failed request is run again; the
 * dead connection is kept until unmount because other threads may still
 * hold requests of it.
 *
 * A sequential reader's records are read straight into slots lent by
 * libtiny (tfs_dbuf_get) and decompressed there, which saves libtiny's copy
 * of each record; at most half the slots are lent, and when none is free
 * the record takes the copying way.
 *
 * When tinyd cannot be reached or started, the filesystem keeps going:
 * compression fails at once (at most one connection attempt every
 * RETRY_MS) and cache.c stores the chunk uncompressed; decompression retries
 * for up to wait_ms since tinyd went away, then fails, and reads of that
 * chunk get EIO. Both transitions are logged once.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "tinyfs.h"

#define DEAD_MAX 64
#define RETRY_MS 200 /* between connection attempts while tinyd is away */

static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static tiny_conn *conn;
static tiny_conn *dead[DEAD_MAX];
static unsigned n_dead;
static char tinyd_path[PATH_MAX];
static unsigned wait_ms = 10000;
static int64_t down_since; /* when tinyd went away (ms), 0 while it answers */
static int64_t last_try;   /* last connection attempt while it is away */

static pthread_once_t zero_once = PTHREAD_ONCE_INIT;
static unsigned char zero_data[TFS_CHUNK];
static unsigned char zero_rec[TFS_OUT_CAP];
static ssize_t zero_rec_len = -EAGAIN;

static int executable(const char *p)
{
    return access(p, X_OK) == 0;
}

/* tinyd next to our binary (build tree), in ../sbin (installed), or in PATH. */
static int find_tinyd(const char *argv0)
{
    char self[PATH_MAX - 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    const char *path = getenv("PATH");

    (void)argv0;
    if (n > 0) {
        char *slash;

        self[n] = 0;
        slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            snprintf(tinyd_path, sizeof(tinyd_path), "%s/tinyd", self);
            if (executable(tinyd_path))
                return 0;
            snprintf(tinyd_path, sizeof(tinyd_path), "%s/../sbin/tinyd", self);
            if (executable(tinyd_path))
                return 0;
        }
    }
    while (path && *path) {
        const char *end = strchrnul(path, ':');

        snprintf(tinyd_path, sizeof(tinyd_path), "%.*s/tinyd", (int)(end - path), path);
        if (end > path && executable(tinyd_path))
            return 0;
        path = *end ? end + 1 : end;
    }
    tinyd_path[0] = 0;
    return -ENOENT;
}

/* Runs `tinyd -d DIR`, which returns once the daemon accepts clients. */
static int start_tinyd(void)
{
    char dir[PATH_MAX];
    int status, n = tiny_default_dir(dir, sizeof(dir));
    pid_t pid;

    if (n < 0)
        return n;
    if (!tinyd_path[0])
        return -ENOENT;
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        execl(tinyd_path, "tinyd", "-d", dir, (char *)NULL);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        /* another tinyfs may have started one meanwhile */
        return -ECHILD;
    }
    return 0;
}

static int connect_now(tiny_conn **c)
{
    struct tiny_options opt = {.n_slots = 32, .slot_size = 256u << 10};
    int rc = tiny_connect(c, &opt);

    if (rc == -EINVAL || rc == -ENOMEM)
        rc = tiny_connect(c, NULL);
    return rc;
}

int tfs_codec_ensure_daemon(const char *argv0)
{
    tiny_conn *c = NULL;
    char dir[PATH_MAX];
    int rc;

    find_tinyd(argv0);
    if (tiny_default_dir(dir, sizeof(dir)) < 0)
        snprintf(dir, sizeof(dir), "?");
    rc = connect_now(&c);
    if (rc == -ECONNREFUSED || rc == -ENOENT) {
        if (!tinyd_path[0]) {
            fprintf(stderr, "tinyfs: cannot start tinyd: not found next to tinyfs or in PATH\n");
            return -ENOENT;
        }
        rc = start_tinyd();
        if (rc < 0 && rc != -ECHILD) {
            fprintf(stderr, "tinyfs: cannot start %s: %s\n", tinyd_path, tiny_errno_text(-rc));
            return rc;
        }
        rc = connect_now(&c);
    }
    if (rc < 0) {
        fprintf(stderr, "tinyfs: cannot connect to tinyd in %s: %s\n", dir, tiny_strerror(rc));
        return rc;
    }
    tiny_disconnect(c);
    return 0;
}

static int try_connect_locked(tiny_conn *old);

int tfs_codec_init(void)
{
    int rc;

    pthread_mutex_lock(&conn_lock);
    rc = try_connect_locked(NULL);
    pthread_mutex_unlock(&conn_lock);
    return rc;
}

void tfs_codec_fini(void)
{
    pthread_mutex_lock(&conn_lock);
    tiny_disconnect(conn);
    conn = NULL;
    for (unsigned i = 0; i < n_dead; i++)
        tiny_disconnect(dead[i]);
    n_dead = 0;
    pthread_mutex_unlock(&conn_lock);
}

static tiny_conn *get_conn(void)
{
    tiny_conn *c;

    pthread_mutex_lock(&conn_lock);
    c = conn;
    pthread_mutex_unlock(&conn_lock);
    return c;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tfs_codec_set_wait(unsigned ms)
{
    wait_ms = ms;
}

/* Under conn_lock: one attempt to replace the dead or missing connection. */
static int try_connect_locked(tiny_conn *old)
{
    tiny_conn *c = NULL;
    int rc = connect_now(&c);

    if ((rc == -ECONNREFUSED || rc == -ENOENT) && start_tinyd() == 0)
        rc = connect_now(&c);
    last_try = now_ms();
    if (old && conn == old) {
        if (n_dead < DEAD_MAX)
            dead[n_dead++] = old;
        conn = NULL; /* never handed out again */
    }
    if (rc < 0) {
        if (!down_since) {
            down_since = last_try;
            tfs_log("tinyd is unavailable (%s): new chunks are stored uncompressed and reads of "
                    "compressed chunks wait up to %u ms for it",
                    tiny_strerror(rc), wait_ms);
        }
        return rc;
    }
    conn = c;
    if (down_since)
        tfs_log("tinyd is back after %lld ms", (long long)(last_try - down_since));
    else if (old)
        tfs_log("reconnected to tinyd");
    down_since = 0;
    return 0;
}

/* Replaces the connection @old after it failed with -ECONNRESET. @patient:
 * keep trying until wait_ms after tinyd went away (reads); otherwise one
 * attempt at most every RETRY_MS (writes, which can do without tinyd). */
static int reconnect(tiny_conn *old, int patient)
{
    int rc;

    pthread_mutex_lock(&conn_lock);
    for (int first = 1;; first = 0) {
        int64_t t = now_ms();

        if (conn && conn != old) {
            rc = 0; /* another thread did it */
            break;
        }
        /* a read always tries once: tinyd may just have come back */
        if (!down_since || t - last_try >= RETRY_MS || (patient && first)) {
            rc = try_connect_locked(old);
            if (rc == 0)
                break;
            t = now_ms();
        } else {
            rc = -ECONNRESET;
        }
        if (!patient || t - down_since >= (int64_t)wait_ms)
            break;
        pthread_mutex_unlock(&conn_lock);
        usleep(RETRY_MS * 1000 / 2);
        pthread_mutex_lock(&conn_lock);
    }
    pthread_mutex_unlock(&conn_lock);
    return rc;
}

static int dead_conn(ssize_t r)
{
    return r == -ECONNRESET || r == -EIDRM;
}

static ssize_t run(int op, const void *in, size_t len, void *out, size_t cap)
{
    int patient = op == TINY_OP_CHUNK_DECOMPRESS;

    for (int tries = 0;; tries++) {
        tiny_conn *c = get_conn();
        ssize_t r = c ? tiny_run(c, op, 0, in, len, out, cap) : -ECONNRESET;

        if (!dead_conn(r) || tries >= 8)
            return r;
        if (reconnect(c, patient) < 0)
            return r;
    }
}

ssize_t tfs_compress(const void *in, size_t len, void *out, size_t cap)
{
    return run(TINY_OP_CHUNK_COMPRESS, in, len, out, cap);
}

/* Submits @op; on failure leaves *req NULL, so that wait_or_run() runs it
 * synchronously (with its reconnect and fallback). Always 0. */
static int submit(int op, const void *in, size_t len, void *out, size_t cap, tiny_req **req)
{
    tiny_conn *c = get_conn();
    int rc = c ? tiny_submit(c, op, 0, in, len, out, cap, NULL, NULL, req) : -ECONNRESET;

    if (rc < 0)
        *req = NULL;
    return 0;
}

static ssize_t wait_or_run(int op, tiny_req *req, const void *in, size_t len, void *out,
                           size_t cap)
{
    ssize_t r = req ? tiny_wait(req) : -ECONNRESET;

    if (dead_conn(r))
        r = run(op, in, len, out, cap);
    return r;
}

int tfs_compress_submit(const void *in, size_t len, void *out, size_t cap, tiny_req **req)
{
    return submit(TINY_OP_CHUNK_COMPRESS, in, len, out, cap, req);
}

ssize_t tfs_compress_wait(tiny_req *req, const void *in, size_t len, void *out, size_t cap)
{
    return wait_or_run(TINY_OP_CHUNK_COMPRESS, req, in, len, out, cap);
}

ssize_t tfs_decompress(const void *rec, size_t rec_len, void *out, size_t cap)
{
    return run(TINY_OP_CHUNK_DECOMPRESS, rec, rec_len, out, cap);
}

/* Slots lent to read records into (tfs_dbuf_get): at most half of the
 * connection's, because a lent slot stays out until a reader waits for its
 * chunk, and the copying requests, a writer's among them, need the rest. */
static atomic_uint n_dbuf;

/* A slot to read a record of @need bytes into and decompress it in place
 * (tiny_buf), if one is free: saves libtiny's copy of the record. -EAGAIN
 * when none is. */
int tfs_dbuf_get(tiny_buf **b, unsigned char **in, size_t need)
{
    tiny_conn *c = get_conn();
    size_t cap;
    void *p;
    int rc;

    *b = NULL;
    if (!c)
        return -ECONNRESET;
    if (atomic_fetch_add(&n_dbuf, 1) >= tiny_conn_slots(c) / 2) {
        atomic_fetch_sub(&n_dbuf, 1);
        return -EAGAIN;
    }
    rc = tiny_buf_tryget(c, TINY_OP_CHUNK_DECOMPRESS, b, &p, &cap);
    if (rc == 0 && cap < need) {
        tiny_buf_put(*b);
        *b = NULL;
        rc = -E2BIG;
    }
    if (rc < 0) {
        atomic_fetch_sub(&n_dbuf, 1);
        return rc;
    }
    *in = p;
    return 0;
}

int tfs_dbuf_submit(tiny_buf *b, size_t rec_len, tiny_req **req)
{
    return tiny_buf_submit(b, 0, rec_len, NULL, NULL, req);
}

ssize_t tfs_dbuf_wait(tiny_buf *b, tiny_req *req, void *out, size_t len)
{
    ssize_t d = tiny_wait(req);

    if (d == (ssize_t)len)
        memcpy(out, tiny_buf_output(b), len);
    return d;
}

void tfs_dbuf_put(tiny_buf *b)
{
    if (b) {
        tiny_buf_put(b);
        atomic_fetch_sub(&n_dbuf, 1);
    }
}

int tfs_decompress_submit(const void *rec, size_t rec_len, void *out, size_t cap, tiny_req **req)
{
    return submit(TINY_OP_CHUNK_DECOMPRESS, rec, rec_len, out, cap, req);
}

ssize_t tfs_decompress_wait(tiny_req *req, const void *rec, size_t rec_len, void *out, size_t cap)
{
    return wait_or_run(TINY_OP_CHUNK_DECOMPRESS, req, rec, rec_len, out, cap);
}

static void zero_init(void)
{
    zero_rec_len = tfs_compress(zero_data, TFS_CHUNK, zero_rec, sizeof(zero_rec));
    if (zero_rec_len >= 0 && tfs_record_check(zero_rec, (size_t)zero_rec_len, TFS_CHUNK) < 0)
        zero_rec_len = -EPROTO;
}

ssize_t tfs_zero_record(uint32_t len, const unsigned char **rec, unsigned char *scratch)
{
    ssize_t r;

    if (len == TFS_CHUNK) {
        pthread_once(&zero_once, zero_init);
        if (zero_rec_len >= 0) {
            *rec = zero_rec;
            return zero_rec_len;
        }
    }
    r = tfs_compress(zero_data, len, scratch, TFS_OUT_CAP);
    if (r < 0 || tfs_record_check(scratch, (size_t)r, len) < 0)
        r = (ssize_t)tfs_raw_record(zero_data, len, scratch); /* without tinyd */
    *rec = scratch;
    return r;
}
