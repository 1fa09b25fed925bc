/*
 * conn.c - connecting to tinyd, disconnecting, and the watchdog that
 * notices a dead tinyd.
 *
 * The handshake goes over the registration queue: a HELLO whose reply type
 * is TINY_MTYPE_REPLY + our thread id, so only this thread can receive the
 * WELCOME, and a random nonce, so a stale WELCOME meant for an earlier
 * attempt of the same thread is ignored. The WELCOME is polled with a short
 * backoff rather than awaited, so that a tinyd that dies meanwhile (its pid
 * file names it) is noticed at once instead of after the timeout.
 *
 * Once connected, a watchdog thread checks every 250 ms that tinyd still
 * exists and still has our segment attached. If not, it removes the private
 * queue: every thread blocked in msgrcv() on it wakes up with EIDRM and the
 * request fails with -ECONNRESET, instead of hanging forever.
 */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/random.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define HANDSHAKE_NS (5ull * 1000000000ull)
#define BACKOFF_MIN  50000L    /* ns */
#define BACKOFF_MAX  10000000L /* ns */
#define WATCHDOG_MS  250

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int gone(int err)
{
    return err == EIDRM || err == EINVAL;
}

int tiny_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    int r;

    /* The library never handles signals: its threads block them all. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -r;
}

void tiny_conn_kill(tiny_conn *conn)
{
    int was = atomic_exchange(&conn->dead, 1);

    if (!was)
        msgctl(conn->qid, IPC_RMID, NULL);
    pthread_mutex_lock(&conn->lock);
    pthread_cond_broadcast(&conn->cv);
    pthread_mutex_unlock(&conn->lock);
}

int tiny_conn_send(tiny_conn *conn, struct tiny_msg *m)
{
    for (;;) {
        if (atomic_load(&conn->dead))
            return -ECONNRESET;
        if (msgsnd(conn->qid, m, TINY_MSG_SIZE, 0) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (gone(errno)) {
            tiny_conn_kill(conn);
            return -ECONNRESET;
        }
        return -errno;
    }
}

int tiny_conn_recv_spin(tiny_conn *conn, long mtype, uint64_t spin_ns, struct tiny_msg *m, int *hit)
{
    uint64_t t0 = now_ns();

    *hit = 1;
    do {
        int r = tiny_conn_recv(conn, mtype, 1, m);

        if (r != -ENOMSG)
            return r;
        sched_yield();
    } while (now_ns() - t0 < spin_ns);
    *hit = 0;
    return tiny_conn_recv(conn, mtype, 0, m);
}

int tiny_conn_recv(tiny_conn *conn, long mtype, int nowait, struct tiny_msg *m)
{
    for (;;) {
        ssize_t n;

        if (atomic_load(&conn->dead))
            return -ECONNRESET;
        n = msgrcv(conn->qid, m, TINY_MSG_SIZE, mtype, MSG_NOERROR | (nowait ? IPC_NOWAIT : 0));
        if (n >= 0)
            return tiny_msg_check(m, (long)n);
        if (errno == EINTR)
            continue;
        if (errno == ENOMSG)
            return -ENOMSG;
        if (gone(errno)) {
            tiny_conn_kill(conn);
            return -ECONNRESET;
        }
        return -errno;
    }
}

/* Reads the start of a small file as a string; returns its length, or 0
 * when it cannot be read or is empty. */
static size_t read_small(const char *path, char *buf, size_t size)
{
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return 0;
    n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return (size_t)n;
}

/* A killed tinyd may stay a zombie until its reaper gets to it; kill(0)
 * still finds it, /proc tells. */
static int is_zombie(pid_t pid)
{
    char path[64], buf[512], *p;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!read_small(path, buf, sizeof buf))
        return 0;
    p = strrchr(buf, ')');
    return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static int is_dead(pid_t pid)
{
    if (pid <= 0)
        return 0;
    if (kill(pid, 0) == -1 && errno == ESRCH)
        return 1;
    return is_zombie(pid);
}

/* tinyd is gone if its process is, or if it no longer has our segment
 * attached (a recycled pid cannot fool that). */
static int daemon_alive(tiny_conn *conn)
{
    struct shmid_ds ds;
    struct msqid_ds qs;

    if (is_dead(conn->daemon_pid))
        return 0;
    if (shmctl(conn->shmid, IPC_STAT, &ds) == -1) {
        if (gone(errno))
            return 0;
    } else if (ds.shm_nattch < 2) {
        return 0;
    }
    if (msgctl(conn->qid, IPC_STAT, &qs) == -1 && gone(errno))
        return 0;
    return 1;
}

static void *watchdog_main(void *arg)
{
    tiny_conn *conn = arg;
    struct timespec ts;

    pthread_setname_np(pthread_self(), "tiny-watchdog");
    pthread_mutex_lock(&conn->lock);
    while (!conn->wd_stop) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += WATCHDOG_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&conn->wd_cv, &conn->lock, &ts);
        if (conn->wd_stop || atomic_load(&conn->dead))
            continue;
        pthread_mutex_unlock(&conn->lock);
        if (!daemon_alive(conn))
            tiny_conn_kill(conn);
        pthread_mutex_lock(&conn->lock);
    }
    pthread_mutex_unlock(&conn->lock);
    return NULL;
}

static pid_t read_pid(const char *dir)
{
    char path[PATH_MAX], buf[32];
    long v;

    if (snprintf(path, sizeof path, "%s/%s", dir, TINY_PID_FILE) >= (int)sizeof path ||
        !read_small(path, buf, sizeof buf))
        return 0;
    v = strtol(buf, NULL, 10);
    return v > 0 && v <= INT_MAX ? (pid_t)v : 0;
}

/* Sends @hello and polls for its WELCOME into @w. */
static int handshake(int regq, struct tiny_msg *hello, pid_t dpid, struct tiny_msg *w)
{
    uint64_t deadline = now_ns() + HANDSHAKE_NS;
    long delay = BACKOFF_MIN;
    int sent = 0;

    for (;;) {
        if (!sent) {
            if (msgsnd(regq, hello, TINY_MSG_SIZE, IPC_NOWAIT) == 0)
                sent = 1;
            else if (gone(errno))
                return -ECONNREFUSED;
            else if (errno != EAGAIN && errno != EINTR)
                return -errno;
        }
        while (sent) {
            ssize_t n = msgrcv(regq, w, TINY_MSG_SIZE, hello->u.hello.reply_mtype,
                               IPC_NOWAIT | MSG_NOERROR);

            if (n < 0) {
                if (errno == ENOMSG || errno == EINTR)
                    break;
                return gone(errno) ? -ECONNREFUSED : -errno;
            }
            if (n >= (ssize_t)sizeof(struct tiny_msg_hdr) && w->hdr.magic == TINY_PROTO_MAGIC &&
                w->hdr.version != TINY_PROTO_VERSION)
                return -EPROTO;
            if (tiny_msg_check(w, (long)n) == 0 && w->hdr.type == TINY_MSG_WELCOME &&
                w->u.welcome.nonce == hello->u.hello.nonce)
                return 0;
        }
        if (is_dead(dpid))
            return -ECONNREFUSED;
        if (now_ns() >= deadline)
            return -ETIMEDOUT;
        nanosleep(&(struct timespec){0, delay}, NULL);
        delay = delay * 2 > BACKOFF_MAX ? BACKOFF_MAX : delay * 2;
    }
}

static uint64_t make_nonce(void)
{
    uint64_t v;

    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
        return v;
    return now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)gettid();
}

static void conn_free(tiny_conn *conn)
{
    if (!conn)
        return;
    if (conn->base)
        shmdt(conn->base);
    pthread_cond_destroy(&conn->wd_cv);
    pthread_cond_destroy(&conn->cv);
    pthread_mutex_destroy(&conn->lock);
    free(conn->slot_req);
    free(conn->free_tags);
    free(conn->free_slots);
    free(conn);
}

static void send_bye(int qid)
{
    struct tiny_msg m;

    tiny_msg_init(&m, TINY_MTYPE_DAEMON, TINY_MSG_BYE);
    msgsnd(qid, &m, TINY_MSG_SIZE, IPC_NOWAIT);
}

static tiny_conn *conn_alloc(unsigned n_slots)
{
    tiny_conn *conn = calloc(1, sizeof *conn);
    pthread_condattr_t ca;

    if (!conn)
        return NULL;
    conn->free_slots = calloc(n_slots, sizeof *conn->free_slots);
    conn->free_tags = calloc(TINY_TAGS_MAX, sizeof *conn->free_tags);
    conn->slot_req = calloc(n_slots, sizeof *conn->slot_req);
    if (!conn->free_slots || !conn->free_tags || !conn->slot_req) {
        free(conn->slot_req);
        free(conn->free_tags);
        free(conn->free_slots);
        free(conn);
        return NULL;
    }
    pthread_mutex_init(&conn->lock, NULL);
    pthread_cond_init(&conn->cv, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&conn->wd_cv, &ca);
    pthread_condattr_destroy(&ca);
    /* Lowest slots and tags first: popped from the end. */
    for (unsigned i = 0; i < n_slots; i++)
        conn->free_slots[i] = n_slots - 1 - i;
    conn->n_free = n_slots;
    for (unsigned t = TINY_TAGS_MAX - 1; t >= 1; t--)
        conn->free_tags[conn->n_free_tags++] = t;
    return conn;
}

int tiny_connect(tiny_conn **connp, const struct tiny_options *opt)
{
    struct tiny_options o = opt ? *opt : (struct tiny_options){0};
    char dir[PATH_MAX], path[PATH_MAX];
    struct tiny_msg hello, w;
    struct shmid_ds ds;
    tiny_conn *conn;
    void *base;
    int regq, r;
    key_t key;
    pid_t dpid;

    if (!connp)
        return -EINVAL;
    *connp = NULL;
    if (o.n_slots > TINY_SLOTS_MAX || o.weight > 1000 ||
        (o.slot_size && (o.slot_size < TINY_SLOT_SIZE_MIN || o.slot_size > TINY_SLOT_SIZE_MAX)))
        return -EINVAL;
    if (o.dir) {
        if (snprintf(dir, sizeof dir, "%s", o.dir) >= (int)sizeof dir)
            return -ENAMETOOLONG;
    } else if ((r = tiny_default_dir(dir, sizeof dir)) < 0) {
        return r;
    }
    if (snprintf(path, sizeof path, "%s/%s", dir, TINY_KEY_FILE) >= (int)sizeof path)
        return -ENAMETOOLONG;
    key = ftok(path, TINY_FTOK_PROJ);
    if (key == -1)
        return errno == ENOENT || errno == ENOTDIR ? -ECONNREFUSED : -errno;
    regq = msgget(key, 0);
    if (regq < 0)
        return errno == ENOENT ? -ECONNREFUSED : -errno;
    dpid = read_pid(dir);
    if (is_dead(dpid))
        return -ECONNREFUSED;

    tiny_msg_init(&hello, TINY_MTYPE_DAEMON, TINY_MSG_HELLO);
    hello.u.hello.pid = getpid();
    hello.u.hello.n_slots = o.n_slots;
    hello.u.hello.slot_size = o.slot_size;
    hello.u.hello.weight = o.weight;
    hello.u.hello.reply_mtype = TINY_MTYPE_REPLY + (long)gettid();
    hello.u.hello.nonce = make_nonce();
    r = handshake(regq, &hello, dpid, &w);
    if (r < 0)
        return r;
    if (w.u.welcome.status < 0)
        return w.u.welcome.status;
    if (w.u.welcome.n_slots < 1 || w.u.welcome.n_slots > TINY_SLOTS_MAX ||
        w.u.welcome.slot_size < TINY_SLOT_SIZE_MIN || w.u.welcome.slot_size > TINY_SLOT_SIZE_MAX ||
        w.u.welcome.qid < 0 || w.u.welcome.shmid < 0 || w.u.welcome.pid <= 0)
        return -EPROTO;

    conn = conn_alloc(w.u.welcome.n_slots);
    if (!conn) {
        send_bye(w.u.welcome.qid);
        return -ENOMEM;
    }
    conn->qid = w.u.welcome.qid;
    conn->shmid = w.u.welcome.shmid;
    conn->daemon_pid = w.u.welcome.pid;
    conn->n_slots = w.u.welcome.n_slots;
    conn->slot_size = (size_t)w.u.welcome.slot_size;
    conn->workers = w.u.welcome.workers;
    conn->cap = conn->n_slots < TINY_REQ_INFLIGHT ? conn->n_slots : TINY_REQ_INFLIGHT;

    base = shmat(conn->shmid, NULL, 0);
    if (base == (void *)-1) {
        r = -errno;
        goto fail;
    }
    conn->base = base;
    /* Marked for removal at once: it vanishes when both sides have
     * detached, however either of them ends. */
    if (shmctl(conn->shmid, IPC_STAT, &ds) == -1) {
        r = -errno;
        shmctl(conn->shmid, IPC_RMID, NULL);
        goto fail;
    }
    shmctl(conn->shmid, IPC_RMID, NULL);
    if (ds.shm_segsz < (size_t)conn->n_slots * conn->slot_size) {
        r = -EPROTO;
        goto fail;
    }
    r = tiny_thread_start(&conn->watchdog, watchdog_main, conn);
    if (r < 0)
        goto fail;
    *connp = conn;
    return 0;

fail:
    send_bye(conn->qid);
    conn_free(conn);
    return r;
}

void tiny_disconnect(tiny_conn *conn)
{
    int progress;

    if (!conn)
        return;
    pthread_mutex_lock(&conn->lock);
    conn->closing = 1;
    progress = conn->progress_started;
    pthread_mutex_unlock(&conn->lock);

    /* BYE lets tinyd free us at once; removing the queue ourselves wakes
     * the progress thread (EIDRM) and leaves nothing behind if tinyd is
     * gone or does not read the BYE. */
    if (!atomic_load(&conn->dead))
        send_bye(conn->qid);
    tiny_conn_kill(conn);
    if (progress)
        pthread_join(conn->progress, NULL);

    pthread_mutex_lock(&conn->lock);
    conn->wd_stop = 1;
    pthread_cond_signal(&conn->wd_cv);
    pthread_mutex_unlock(&conn->lock);
    pthread_join(conn->watchdog, NULL);

    tiny_reqs_free(conn);
    conn_free(conn);
}

unsigned tiny_conn_slots(const tiny_conn *conn)
{
    return conn ? conn->n_slots : 0;
}

size_t tiny_conn_slot_size(const tiny_conn *conn)
{
    return conn ? conn->slot_size : 0;
}
