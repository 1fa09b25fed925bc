/*
 * pagecache.c - hands the kernel the rest of each chunk a random read
 * decoded.
 *
 * A 4 KiB read that misses costs tinyfs a whole chunk: its record read from
 * the store and 64 KiB decoded in tinyd. The kernel keeps only the pages it
 * asked for; given the others (fuse_lowlevel_notify_store), a later read of
 * them is a page-cache hit that never reaches tinyfs. file.c offers such a
 * chunk under the file's lock, before the read is answered (after that,
 * the kernel may release the file and forget the inode at any moment); it
 * is copied into a bounded queue (dropped when the queue is full: it is
 * only a hint) and stored by a thread of its own, because a store locks the
 * pages, and the kernel may hold one of them locked for a read that waits
 * for a tinyfs worker.
 *
 * A store must never land after a write, or the kernel would serve old
 * bytes. Chunks are offered only while no handle that may write the file
 * is open, and opening one (tfs_pc_writer) drops the inode's queued stores
 * and waits for the one in progress; that wait itself needs a free worker
 * for the read the store may wait for, so the opener does not wait in its
 * worker: when a store of the inode is in progress, the rest of the open
 * runs on this thread once the store is done.
 *
 * The kernel keeps a file's pages across opens (keep_cache, ops.c). When a
 * change could not be stored (a full disk), they may hold bytes the store
 * does not: tfs_pc_inval() has this thread drop them
 * (fuse_lowlevel_notify_inval_inode), for the same reason a store is not
 * made by a worker.
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format.h"
#include "tinyfs.h"

#define QLEN 16 /* chunks waiting to be stored (1 MiB) */
#define PAGE 4096u

struct item {
    struct tfs_inode *i; /* holds a lookup reference while queued */
    uint64_t off;        /* file offset of data[0] */
    uint32_t len;
    uint32_t skip_a, skip_b; /* [a, b) of data the read itself returns */
    unsigned char *data;     /* TFS_CHUNK bytes from the pool */
};

/* An inode whose pages the kernel must drop. */
struct inval {
    struct tfs_inode *i; /* holds a lookup reference while queued */
    struct inval *next;
};

/* An open waiting for the store in progress of its inode. */
struct waiter {
    struct tfs_inode *i;
    void (*then)(void *);
    void *arg;
    struct waiter *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct item q[QLEN];
static unsigned q_head, q_n;
static unsigned char *pool[QLEN]; /* free chunk buffers */
static unsigned n_pool;
static struct tfs_inode *busy; /* the inode being stored to, lock dropped */
static struct waiter *waiters;
static struct inval *invals;
static struct fuse_session *se;
static pthread_t thread;
static int running, stopping;
static unsigned delay_ms; /* TINYFS_DEBUG_STORE_DELAY: tests widen the race with writers */

static void store(const struct item *it, uint32_t a, uint32_t b)
{
    struct fuse_bufvec bv = FUSE_BUFVEC_INIT(b - a);

    if (a >= b)
        return;
    bv.buf[0].mem = it->data + a;
    /* -ENOENT: the kernel no longer has the inode; nothing to do */
    fuse_lowlevel_notify_store(se, tfs_inode_id(it->i), it->off + a, &bv, 0);
}

/* Takes the waiters of @i off the list, under the lock. */
static struct waiter *waiters_of(struct tfs_inode *i)
{
    struct waiter *w, **pp = &waiters, *go = NULL;

    while ((w = *pp)) {
        if (w->i == i) {
            *pp = w->next;
            w->next = go;
            go = w;
        } else {
            pp = &w->next;
        }
    }
    return go;
}

static void *run(void *unused)
{
    (void)unused;
    pthread_setname_np(pthread_self(), "tinyfs-pgcache");
    pthread_mutex_lock(&lock);
    for (;;) {
        struct waiter *go;
        struct item it;

        while (!q_n && !invals && !stopping)
            pthread_cond_wait(&wake, &lock);
        if (invals) {
            struct inval *v = invals;

            invals = v->next;
            pthread_mutex_unlock(&lock);
            /* -ENOENT: the kernel no longer has the inode, nor its pages */
            fuse_lowlevel_notify_inval_inode(se, tfs_inode_id(v->i), 0, 0);
            tfs_inode_forget(v->i, 1);
            free(v);
            pthread_mutex_lock(&lock);
            continue;
        }
        if (!q_n)
            break;
        it = q[q_head];
        q_head = (q_head + 1) % QLEN;
        q_n--;
        busy = it.i;
        pthread_mutex_unlock(&lock);
        if (delay_ms)
            nanosleep(&(struct timespec){delay_ms / 1000, delay_ms % 1000 * 1000000L}, NULL);
        store(&it, 0, it.skip_a);
        store(&it, it.skip_b, it.len);
        pthread_mutex_lock(&lock);
        busy = NULL;
        pool[n_pool++] = it.data;
        go = waiters_of(it.i);
        pthread_mutex_unlock(&lock);
        tfs_inode_forget(it.i, 1);
        while (go) {
            struct waiter *w = go;

            go = w->next;
            w->then(w->arg);
            free(w);
        }
        pthread_mutex_lock(&lock);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

int tfs_pc_start(struct fuse_session *s)
{
    const char *dbg;
    int rc;

    for (n_pool = 0; n_pool < QLEN; n_pool++) {
        pool[n_pool] = malloc(TFS_CHUNK);
        if (!pool[n_pool]) {
            tfs_pc_stop();
            return -ENOMEM;
        }
    }
    se = s;
    stopping = 0;
    dbg = getenv("TINYFS_DEBUG_STORE_DELAY");
    delay_ms = dbg ? (unsigned)strtoul(dbg, NULL, 10) : 0;
    rc = pthread_create(&thread, NULL, run, NULL);
    if (rc) {
        tfs_pc_stop();
        return -rc;
    }
    running = 1;
    return 0;
}

void tfs_pc_stop(void)
{
    if (running) {
        pthread_mutex_lock(&lock);
        stopping = 1;
        pthread_cond_signal(&wake);
        pthread_mutex_unlock(&lock);
        /* the thread stores what is queued, then ends */
        pthread_join(thread, NULL);
        running = 0;
    }
    while (n_pool)
        free(pool[--n_pool]);
    se = NULL;
}

void tfs_pc_offer(struct tfs_inode *i, uint64_t off, const unsigned char *data, uint32_t len,
                  uint32_t a, uint32_t b)
{
    struct item *it;

    /* the pages of [a, b) are locked by the read being answered */
    a &= ~(PAGE - 1);
    b = (b + PAGE - 1) & ~(PAGE - 1);
    if (b > len)
        b = len;
    if (a == 0 && b >= len)
        return;
    pthread_mutex_lock(&lock);
    if (!running || stopping || i->writers || !n_pool) {
        pthread_mutex_unlock(&lock);
        return;
    }
    it = &q[(q_head + q_n++) % QLEN];
    *it = (struct item){i, off, len, a, b, pool[--n_pool]};
    memcpy(it->data, data, len);
    tfs_inode_hold(i);
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
}

void tfs_pc_inval(struct tfs_inode *i)
{
    struct inval *v = malloc(sizeof(*v));

    pthread_mutex_lock(&lock);
    if (!v || !running || stopping) {
        pthread_mutex_unlock(&lock);
        free(v);
        if (!stopping)
            tfs_log("cannot drop the kernel's cached pages of inode %llu: %s",
                    (unsigned long long)tfs_inode_id(i),
                    v ? "no page-cache thread" : tiny_errno_text(ENOMEM));
        return;
    }
    *v = (struct inval){i, invals};
    invals = v;
    tfs_inode_hold(i);
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
}

int tfs_pc_writer(struct tfs_inode *i, void (*then)(void *), void *arg)
{
    unsigned dropped = 0, kept = 0;
    struct waiter *w = NULL;
    int busy_seen;

    pthread_mutex_lock(&lock);
    i->writers++;
    /* drop the inode's queued stores, keeping the others in order */
    for (unsigned k = 0; k < q_n; k++) {
        struct item *x = &q[(q_head + k) % QLEN];

        if (x->i == i) {
            dropped++;
            pool[n_pool++] = x->data;
        } else {
            q[(q_head + kept++) % QLEN] = *x;
        }
    }
    q_n = kept;
    busy_seen = busy == i;
    if (busy_seen) {
        w = malloc(sizeof(*w));
        if (w) {
            *w = (struct waiter){i, then, arg, waiters};
            waiters = w;
        } else {
            i->writers--;
        }
    }
    pthread_mutex_unlock(&lock);
    if (dropped)
        tfs_inode_forget(i, dropped); /* not the last reference: the opener has one */
    return busy_seen ? (w ? 1 : -ENOMEM) : 0;
}

void tfs_pc_writer_done(struct tfs_inode *i)
{
    pthread_mutex_lock(&lock);
    i->writers--;
    pthread_mutex_unlock(&lock);
}
