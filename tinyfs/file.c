/*
 * file.c - the state of an open stored file, shared by every FUSE handle of
 * the same stored inode (so hard links and several opens see one file).
 *
 * The logical file is cut into 64 KiB chunks, chunk i packed into group
 * i / 16 of the stored file (format.c) at the place its group index gives
 * (the indexes are cached, direct-mapped by group, so a random reader reads
 * each index once). A small cache of decompressed chunks serves
 * reads and absorbs writes: a written chunk becomes DIRTY; once a write
 * reaches the end of a full chunk (the sequential case) it is submitted to
 * tinyd at once (BUSY) and several such chunks stay in flight, so
 * compression of a stream uses every tinyd worker. A BUSY chunk is completed
 * (waited for and written to the store) when its cache entry is needed, when
 * a writer touches it again, and at flush. The chunks of a read of several,
 * and for a sequential reader the next READAHEAD ones, are read with one
 * preadv per group and submitted for decompression at once (LOADING), so
 * reads use every tinyd worker too; the stored data of the next groups is
 * read ahead with fadvise (the kernel's own read-ahead is off on the stored
 * file: it would read the groups' padding holes). Readers hold the file's
 * lock neither while they read the store nor while they wait for tinyd, so
 * the kernel's concurrent read requests overlap (see struct tfs_file). A
 * chunk decoded for a read that is not sequential is offered whole to
 * pagecache.c, for the kernel's page cache. A read is answered from the
 * entries themselves (tfs_rd): they stay pinned until the reply is sent,
 * and a writer of one waits for that, so a reply never mixes two versions.
 * Memory is bounded by NENT entries per open file, whatever the file size.
 *
 * Store invariants: chunks [0, valid_n) of the stored file hold valid data
 * chunks (chunk valid_n - 1 of last_len bytes, the others full), or are
 * DIRTY/BUSY in the cache; logical chunks at or beyond valid_n not in the
 * cache are zeros. Writing chunk j > valid_n first fills the gap with zero
 * chunks. flush() writes every dirty chunk, fills up to the logical size,
 * after which the stored file is a valid stream of exactly the logical
 * bytes. Appends are safe by their order (record, then index); a chunk
 * rewritten in place, which moves the records after it in its group, has
 * the old bytes saved in the undo journal first (journal_group), dropped
 * once the file is synced at flush (journal_sync).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "format.h"
#include "tinyfs.h"

/* Cache entries per open file, their buffers allocated on first use: the
 * kernel keeps two to four 1 MiB read-ahead requests of a sequential reader
 * in flight, each 16 chunks, and READAHEAD more are decoded beyond them;
 * with fewer entries the read-ahead evicts what a request is about to take,
 * which is then read again one chunk at a time (96 * 144 KiB = 13.5 MiB at
 * most). */
#define NENT    96
#define PIN_MAX (NENT / 2) /* entries that replies are being sent from */

/* FREE and CLEAN entries can be taken for another chunk; LOADING ones are
 * being read or decompressed for a reader, with the file's lock dropped. */
enum { E_FREE, E_CLEAN, E_DIRTY, E_BUSY, E_LOADING };

#define READAHEAD 16         /* chunks decompressed ahead of a sequential reader */
#define AHEAD_G   2          /* groups of stored data read ahead of the decompression */
#define SEQ_SLACK (4u << 20) /* how far out of order a sequential request may come */
#define GC_MAX    8192       /* group indexes cached per open file (8 GiB of data) */

/* The group indexes of a file, direct-mapped by group number: a random
 * reader reads each group's index once. Grown with the file up to GC_MAX
 * slots of 80 bytes. */
struct gcache {
    uint64_t g1; /* group + 1; 0: empty */
    struct tfs_gidx x;
};

struct entry {
    uint64_t idx;
    int state;
    int owned;    /* LOADING: a thread works on it without the lock (others wait on cond) */
    int stale;    /* LOADING: its chunk changed or went meanwhile; dropped when done */
    uint32_t len; /* logical bytes; buf beyond len is zero */
    uint64_t lru;
    uint64_t seq;       /* submission order of BUSY entries */
    tiny_req *req;      /* BUSY: compressing; LOADING: decompressing (read-ahead) */
    uint32_t rec_len;   /* LOADING: the record at buf + TFS_CHUNK */
    uint64_t off;       /* LOADING: where that record is stored */
    int pins;           /* replies being sent from buf (tfs_file_read()) */
    int wwait;          /* a writer waits for the pins to go: pin no more */
    unsigned char *buf; /* TFS_CHUNK bytes, then TFS_OUT_CAP bytes of output */
};

/* Locking: f->lock guards everything below; readers drop it while they
 * read records and wait for tinyd (their entries LOADING and owned, other
 * threads waiting on cond), and check f->gen afterwards: any change of the
 * stored file meanwhile voids what they read. Operations that change the
 * file (write, truncate, flush, ...) hold f->wlock throughout, so that
 * where one drops f->lock to wait for a reader's entry, only readers run. */
struct tfs_file {
    pthread_mutex_t lock;
    pthread_mutex_t wlock;
    pthread_cond_t cond;
    dev_t dev;
    ino_t ino;
    int fd;
    int rdwr;
    int refs; /* registry lock */
    int plain;
    uint64_t size;     /* logical size */
    uint64_t valid_n;  /* chunks valid in the store */
    uint32_t last_len; /* stored length of chunk valid_n - 1 */
    uint64_t stored_len;
    uint64_t gen; /* bumped by every change of the stored bytes */
    int err;      /* deferred write-back error, reported at flush */
    int torn;     /* opened with a torn end that could not be cut back */
    int jdirty;   /* rewrote groups in place since its last sync (journal entries live) */
    int jlast;    /* ... its last group among them */
    uint64_t tick, seq;
    int pinned;             /* pins of all entries, at most PIN_MAX */
    uint64_t next_off;      /* where a sequential reader reads next */
    uint64_t ra_g;          /* the first group whose stored data was not read ahead */
    unsigned char *scratch; /* one record */
    char *name;
    struct entry ent[NENT];
    struct gcache *gc; /* ngc slots (a power of two) */
    uint32_t ngc;
    struct tfs_file *next;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

/* For an operation that may change the file (struct tfs_file). */
static void wr_lock(struct tfs_file *f)
{
    pthread_mutex_lock(&f->wlock);
    pthread_mutex_lock(&f->lock);
}

static void wr_unlock(struct tfs_file *f)
{
    pthread_mutex_unlock(&f->lock);
    pthread_mutex_unlock(&f->wlock);
}
static struct tfs_file *reg;

static int pwrite_all(int fd, const struct iovec *iov, int n, uint64_t off)
{
    struct iovec v[3];
    size_t total = 0, done = 0;

    for (int i = 0; i < n; i++) {
        v[i] = iov[i];
        total += iov[i].iov_len;
    }
    while (done < total) {
        ssize_t w = pwritev(fd, v, n, (off_t)(off + done));

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)w;
        for (int i = 0; i < n && w > 0; i++) {
            size_t k = (size_t)w < v[i].iov_len ? (size_t)w : v[i].iov_len;

            v[i].iov_base = (char *)v[i].iov_base + k;
            v[i].iov_len -= k;
            w -= (ssize_t)k;
        }
    }
    return 0;
}

/* tfs_pread_full() into @n buffers (at most TFS_GROUP). */
static ssize_t preadv_full(int fd, const struct iovec *iov, int n, uint64_t off)
{
    struct iovec v[TFS_GROUP];
    size_t done = 0;
    int i = 0;

    memcpy(v, iov, (size_t)n * sizeof(*v));
    while (i < n) {
        ssize_t r = preadv(fd, v + i, n - i, (off_t)(off + done));

        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        done += (size_t)r;
        for (; i < n && (size_t)r >= v[i].iov_len; i++)
            r -= (ssize_t)v[i].iov_len;
        if (i < n) {
            v[i].iov_base = (char *)v[i].iov_base + r;
            v[i].iov_len -= (size_t)r;
        }
    }
    return (ssize_t)done;
}

/* The stored file is read exactly where its chunks are: the kernel's
 * read-ahead would read the holes of the groups' padding (and zero their
 * pages) too. Sequential readers get the data of the next groups read ahead
 * instead (prefetch). */
static void store_random(struct tfs_file *f)
{
    posix_fadvise(f->fd, 0, 0, POSIX_FADV_RANDOM);
}

static int ensure_scratch(struct tfs_file *f)
{
    if (!f->scratch)
        f->scratch = malloc(TFS_OUT_CAP);
    return f->scratch ? 0 : -ENOMEM;
}

/* Reserves the blocks of [off, off + len) without changing the size, so that
 * a full disk fails the write before any stored byte has changed. */
static int reserve(struct tfs_file *f, uint64_t off, uint64_t len)
{
    if (fallocate(f->fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
        return 0;
    return errno == EOPNOTSUPP || errno == ENOSYS ? 0 : -errno;
}

/* Gives back the blocks of [a, b) of a group's padding (best effort). */
static void punch(struct tfs_file *f, uint64_t a, uint64_t b)
{
    a = (a + 4095) & ~4095ull;
    b &= ~4095ull;
    if (b > a && b <= f->stored_len)
        fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)a, (off_t)(b - a));
}

/* The undo journal (docs/format.md, "Crash safety"): before a group is
 * rewritten in place, its old bytes go to STORE/.tinyfs-journal, synced.
 * Entries live until every file that rewrote groups since the journal was
 * last emptied has been synced (fdatasync at flush); a file synced while
 * others are still dirty gets a barrier entry that voids its older entries
 * instead, so that a later truncate or a reuse of its inode number never
 * meets a stale entry. Appends need no entry: they are safe by themselves. */
#define JOURNAL_SOFT_MAX (64u << 20)

static pthread_mutex_t j_lock = PTHREAD_MUTEX_INITIALIZER;
static int j_fd = -1;
static uint64_t j_len;
static int j_ndirty;     /* files with jdirty set */
static long j_crash_at;  /* tests only: TINYFS_DEBUG_CRASH=K:S */
static int j_crash_step; /* abort() at step S of the K-th journalled rewrite */
static long j_count;

static void crash_point(int step)
{
    if (j_crash_at && j_count == j_crash_at && j_crash_step == step) {
        tfs_log("TINYFS_DEBUG_CRASH: abort at step %d of rewrite %ld", step, j_count);
        abort();
    }
}

static int j_open(void)
{
    const char *dbg;
    struct stat st;

    if (j_fd >= 0)
        return 0;
    j_fd = openat(tfs_store_fd, TFS_JOURNAL, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (j_fd < 0) {
        int rc = -errno;

        tfs_log("cannot open the journal %s: %s", TFS_JOURNAL, tiny_errno_text(errno));
        return rc;
    }
    j_len = fstat(j_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    dbg = getenv("TINYFS_DEBUG_CRASH");
    if (dbg && sscanf(dbg, "%ld:%d", &j_crash_at, &j_crash_step) != 2)
        j_crash_at = 0;
    return 0;
}

static int j_write(const unsigned char *p, size_t len)
{
    struct iovec iov = {(void *)p, len};
    int rc;

    if (j_crash_at && j_count == j_crash_at && j_crash_step == 1) {
        /* a torn entry, never synced */
        iov.iov_len = len / 2;
        pwrite_all(j_fd, &iov, 1, j_len);
        crash_point(1);
    }
    rc = pwrite_all(j_fd, &iov, 1, j_len);
    if (rc == 0 && fdatasync(j_fd) < 0)
        rc = -errno;
    if (rc < 0) {
        tfs_log("cannot write the journal %s: %s", TFS_JOURNAL, tiny_errno_text(-rc));
        if (ftruncate(j_fd, (off_t)j_len) < 0)
            rc = -errno;
        return rc;
    }
    j_len += len;
    return 0;
}

static int journal_sync(struct tfs_file *f);

void tfs_file_journal_close(void)
{
    pthread_mutex_lock(&j_lock);
    if (j_fd >= 0) {
        if (j_ndirty == 0 && ftruncate(j_fd, 0) == 0 && fdatasync(j_fd) == 0)
            unlinkat(tfs_store_fd, TFS_JOURNAL, 0);
        close(j_fd);
        j_fd = -1;
    }
    pthread_mutex_unlock(&j_lock);
}

/* The cached index of group @g, or NULL. */
static struct gcache *gidx_find(struct tfs_file *f, uint64_t g)
{
    struct gcache *c;

    if (!f->gc)
        return NULL;
    c = &f->gc[g & (f->ngc - 1)];
    return c->g1 == g + 1 ? c : NULL;
}

static void gidx_set(struct tfs_file *f, uint64_t g, const struct tfs_gidx *x)
{
    if (g >= f->ngc && f->ngc < GC_MAX) {
        /* the file grew past the cache: a larger one (a miss when out of memory) */
        uint32_t n = f->ngc ? f->ngc : 16;
        struct gcache *c;

        while (n <= g && n < GC_MAX)
            n *= 2;
        c = calloc(n, sizeof(*c));
        if (c) {
            for (uint32_t i = 0; i < f->ngc; i++)
                if (f->gc[i].g1)
                    c[(f->gc[i].g1 - 1) & (n - 1)] = f->gc[i];
            free(f->gc);
            f->gc = c;
            f->ngc = n;
        }
    }
    if (f->gc) {
        struct gcache *c = &f->gc[g & (f->ngc - 1)];

        c->g1 = g + 1;
        c->x = *x;
    }
}

/* Forgets the indexes of groups >= @g (they were cut). */
static void gidx_drop(struct tfs_file *f, uint64_t g)
{
    for (uint32_t i = 0; i < f->ngc; i++)
        if (f->gc[i].g1 > g)
            f->gc[i].g1 = 0;
}

/* What the index of group @g must say, from the file's length. */
static void gidx_expect(const struct tfs_file *f, uint64_t g, uint32_t *n, uint32_t *last)
{
    uint64_t lastg = (f->valid_n - 1) / TFS_GROUP;

    *n = g < lastg ? TFS_GROUP : (uint32_t)(f->valid_n - g * TFS_GROUP);
    *last = g < lastg ? TFS_CHUNK : f->last_len;
}

/* Parses the @got bytes read of group @g's index into @x: 0, or -EIO when
 * it is unreadable or does not say @n chunks, the last of @last bytes. */
static int gidx_check(const unsigned char *b, ssize_t got, uint32_t n, uint32_t last,
                      struct tfs_gidx *x)
{
    if (got != (ssize_t)TFS_GIDX_LEN || tfs_gidx_parse(b, TFS_GIDX_LEN, x) < 0 || x->n != n ||
        x->last_clen != last)
        return -EIO;
    return 0;
}

static int gidx_corrupt(struct tfs_file *f, uint64_t g)
{
    tfs_log("%s: corrupt index of group %llu (logical offset %llu, stored offset %llu)", f->name,
            (unsigned long long)g, (unsigned long long)(g * TFS_GROUP * (uint64_t)TFS_CHUNK),
            (unsigned long long)tfs_group_off(g));
    return -EIO;
}

/* The index of group @g (holding chunks below valid_n); -EIO if it is
 * unreadable or does not fit the file (logged). */
static int gidx_get(struct tfs_file *f, uint64_t g, struct tfs_gidx *x)
{
    struct gcache *c = gidx_find(f, g);
    unsigned char b[TFS_GIDX_LEN];
    uint32_t n, last;

    if (c) {
        *x = c->x;
        return 0;
    }
    gidx_expect(f, g, &n, &last);
    if (gidx_check(b, tfs_pread_full(f->fd, b, sizeof(b), tfs_group_off(g)), n, last, x) < 0)
        return gidx_corrupt(f, g);
    gidx_set(f, g, x);
    return 0;
}

/* gidx_get() for a reader: reads a missing index without the lock. Returns
 * -EAGAIN when the stored file changed meanwhile (the caller starts over). */
static int gidx_get_rd(struct tfs_file *f, uint64_t g, struct tfs_gidx *x)
{
    struct gcache *c = gidx_find(f, g);
    unsigned char b[TFS_GIDX_LEN];
    uint64_t gen = f->gen;
    uint32_t n, last;
    ssize_t got;

    if (c) {
        *x = c->x;
        return 0;
    }
    gidx_expect(f, g, &n, &last);
    pthread_mutex_unlock(&f->lock);
    got = tfs_pread_full(f->fd, b, sizeof(b), tfs_group_off(g));
    pthread_mutex_lock(&f->lock);
    if (f->gen != gen)
        return -EAGAIN;
    if (gidx_check(b, got, n, last, x) < 0)
        return gidx_corrupt(f, g);
    gidx_set(f, g, x);
    return 0;
}

/* Where chunk @idx (< valid_n) is stored. */
static int chunk_loc(struct tfs_file *f, uint64_t idx, uint64_t *off, uint32_t *len)
{
    uint64_t g = idx / TFS_GROUP;
    uint32_t k = (uint32_t)(idx % TFS_GROUP);
    struct tfs_gidx x;
    int rc = gidx_get(f, g, &x);

    if (rc < 0)
        return rc;
    *off = tfs_group_off(g) + TFS_GIDX_LEN + tfs_gidx_sum(&x, k);
    *len = x.rec[k];
    return 0;
}

static int write_gidx(struct tfs_file *f, uint64_t g, const struct tfs_gidx *x)
{
    unsigned char b[TFS_GIDX_LEN];
    struct iovec iov = {b, sizeof(b)};

    tfs_gidx_build(b, x);
    return pwrite_all(f->fd, &iov, 1, tfs_group_off(g));
}

/* Saves the old bytes of the @nr ranges @r of group @g before they are
 * rewritten in place. */
static int journal_group(struct tfs_file *f, uint64_t g, int last, uint64_t hole_a, uint64_t hole_b,
                         const struct tfs_jrange *r, unsigned nr)
{
    unsigned char *buf;
    size_t n;
    int rc;

    pthread_mutex_lock(&j_lock);
    rc = f->jdirty && j_ndirty == 1 && j_len > JOURNAL_SOFT_MAX;
    pthread_mutex_unlock(&j_lock);
    if (rc && (rc = journal_sync(f)) < 0)
        return rc; /* only this file's entries: empty the journal first */
    buf = malloc(tfs_journal_len(f->name, r, nr));
    if (!buf)
        return -ENOMEM;
    n = tfs_journal_build(buf, TFS_JOURNAL_UNDO, f->ino, f->name, tfs_group_off(g), f->stored_len,
                          last, hole_a, hole_b, r, nr);
    pthread_mutex_lock(&j_lock);
    rc = j_open();
    if (rc == 0) {
        j_count++;
        rc = j_write(buf, n);
    }
    if (rc == 0 && !f->jdirty) {
        f->jdirty = 1;
        j_ndirty++;
    }
    pthread_mutex_unlock(&j_lock);
    free(buf);
    if (rc == 0 && last)
        f->jlast = 1;
    crash_point(2);
    return rc;
}

/* The file's rewrites are on disk: its journal entries are no longer
 * needed. */
static int journal_sync(struct tfs_file *f)
{
    unsigned char b[TFS_JOURNAL_FIXED + 4096 + 4];
    int rc = 0;

    if (!f->jdirty)
        return 0;
    if (fdatasync(f->fd) < 0)
        return -errno;
    pthread_mutex_lock(&j_lock);
    f->jdirty = 0;
    if (--j_ndirty == 0) {
        if (ftruncate(j_fd, 0) < 0 || fdatasync(j_fd) < 0)
            rc = -errno;
        else
            j_len = 0;
    } else if (strlen(f->name) < 4096) {
        rc = j_write(
            b, tfs_journal_build(b, TFS_JOURNAL_BARRIER, f->ino, f->name, 0, 0, 0, 0, 0, NULL, 0));
    }
    if (rc < 0) {
        /* its entries are still live */
        f->jdirty = 1;
        j_ndirty++;
    } else {
        f->jlast = 0;
    }
    pthread_mutex_unlock(&j_lock);
    if (rc < 0)
        tfs_log("%s: cannot drop its journal entries: %s", f->name, tiny_errno_text(-rc));
    return rc;
}

/* Keeps chunks [0, @keep) only (chunk keep - 1 must be full). Every step
 * leaves a valid stream: the groups after the new last one are cut, then
 * its index names fewer chunks, then its end is cut. */
static int drop_chunks(struct tfs_file *f, uint64_t keep)
{
    uint64_t g, lastg = (f->valid_n - 1) / TFS_GROUP, end;
    struct tfs_gidx x;
    int rc = journal_sync(f); /* no entry may outlive the bytes it names */

    if (rc < 0)
        return rc;
    f->gen++;
    if (keep == 0) {
        if (ftruncate(f->fd, TFS_HDR_LEN) < 0)
            return -errno;
        gidx_drop(f, 0);
        f->stored_len = TFS_HDR_LEN;
        f->valid_n = 0;
        f->last_len = 0;
        return 0;
    }
    g = (keep - 1) / TFS_GROUP;
    rc = gidx_get(f, g, &x);
    if (rc < 0)
        return rc;
    if (lastg > g) {
        end = tfs_group_end(g, &x);
        if (ftruncate(f->fd, (off_t)end) < 0)
            return -errno;
        gidx_drop(f, g + 1);
        f->stored_len = end;
        f->valid_n = g * TFS_GROUP + x.n;
        f->last_len = x.last_clen;
    }
    if (keep - g * TFS_GROUP < x.n) {
        x.n = (uint32_t)(keep - g * TFS_GROUP);
        x.last_clen = TFS_CHUNK;
        for (uint32_t i = x.n; i < TFS_GROUP; i++)
            x.rec[i] = 0;
        rc = write_gidx(f, g, &x);
        if (rc < 0)
            return rc;
        gidx_set(f, g, &x);
        end = tfs_group_end(g, &x);
        if (ftruncate(f->fd, (off_t)end) < 0)
            return -errno;
        f->stored_len = end;
    }
    f->valid_n = keep;
    f->last_len = TFS_CHUNK;
    return 0;
}

/* Appends chunk valid_n (the stored file ends with a full chunk, or the
 * header): its record after the last one (or, starting a group, the
 * padding of the full group before, then the record after the new index's
 * place), then the index that names it. A crash in between leaves bytes
 * that no index names: a torn end, cut on open. A failed write is undone,
 * so the stored file is always its previous valid stream or the longer one. */
static int append_chunk(struct tfs_file *f, const unsigned char *rec, size_t rec_len, uint32_t clen)
{
    uint64_t idx = f->valid_n, g = idx / TFS_GROUP, old = f->stored_len, expect, at;
    uint32_t k = (uint32_t)(idx % TFS_GROUP);
    struct iovec iov = {(void *)rec, rec_len};
    struct tfs_gidx x = {0}, prev;
    int rc;

    if (f->jlast && (rc = journal_sync(f)) < 0)
        return rc; /* an undo of the last group must not cut what follows */
    f->gen++;
    if (idx == 0) {
        expect = TFS_HDR_LEN;
    } else {
        rc = gidx_get(f, (idx - 1) / TFS_GROUP, &prev);
        if (rc < 0)
            return rc;
        expect = tfs_group_end((idx - 1) / TFS_GROUP, &prev);
    }
    if (f->stored_len != expect) {
        tfs_log("%s: stored length %llu, expected %llu before chunk %llu", f->name,
                (unsigned long long)f->stored_len, (unsigned long long)expect,
                (unsigned long long)idx);
        return -EIO;
    }
    if (k == 0 && idx > 0) {
        /* the full group before gets its padding up to its region's end */
        unsigned char pad[TINY_CHUNK_HDR];
        struct iovec pv = {pad, sizeof(pad)};

        tfs_pad_build(pad, (uint32_t)(tfs_group_off(g) - expect - TINY_CHUNK_HDR));
        rc = pwrite_all(f->fd, &pv, 1, expect);
        if (rc == 0 && ftruncate(f->fd, (off_t)tfs_group_off(g)) < 0)
            rc = -errno;
        if (rc < 0)
            goto undo;
    }
    if (k) {
        x = prev;
    }
    x.n = k + 1;
    x.rec[k] = (uint32_t)rec_len;
    x.last_clen = clen;
    at = k ? expect : tfs_group_off(g) + TFS_GIDX_LEN;
    rc = pwrite_all(f->fd, &iov, 1, at);
    if (rc == 0)
        rc = write_gidx(f, g, &x);
    if (rc < 0)
        goto undo;
    gidx_set(f, g, &x);
    f->stored_len = at + rec_len;
    f->valid_n++;
    f->last_len = clen;
    return 0;
undo:
    if (ftruncate(f->fd, (off_t)old) < 0)
        tfs_log("%s: cannot undo a failed write of chunk %llu: %s", f->name,
                (unsigned long long)idx, tiny_errno_text(errno));
    else if (k)
        write_gidx(f, g, &prev); /* the index write may have failed half-way */
    return rc;
}

/* Rewrites chunk @idx (< valid_n) in place: its record, and when its
 * length changes the records after it in the group (read raw, moved), the
 * group's padding header and its index. The old bytes go to the undo
 * journal first, so a crash leaves the old or the new group. The last group
 * may grow or shrink; the others have room for 16 full records. */
static int rewrite_chunk(struct tfs_file *f, uint64_t idx, const unsigned char *rec, size_t rec_len,
                         uint32_t clen)
{
    uint64_t g = idx / TFS_GROUP, goff = tfs_group_off(g), rend = tfs_group_off(g + 1);
    uint32_t k = (uint32_t)(idx % TFS_GROUP);
    int last = g == (f->valid_n - 1) / TFS_GROUP, rc, nr = 0;
    uint64_t rec_off, old_end, new_end;
    unsigned char gold[TFS_GIDX_LEN], gnew[TFS_GIDX_LEN];
    unsigned char *oldb = NULL, *newb = NULL;
    struct tfs_gidx x, nx;
    struct tfs_jrange r[2];
    size_t olen, nlen, tail;
    struct iovec iov;

    rc = gidx_get(f, g, &x);
    if (rc < 0)
        return rc;
    f->gen++;
    nx = x;
    nx.rec[k] = (uint32_t)rec_len;
    if (idx == f->valid_n - 1)
        nx.last_clen = clen;
    rec_off = goff + TFS_GIDX_LEN + tfs_gidx_sum(&x, k);
    old_end = tfs_group_end(g, &x);
    new_end = tfs_group_end(g, &nx);
    tail = rec_len == x.rec[k] ? 0 : (size_t)(old_end - rec_off - x.rec[k]);
    /* old: the record (and the tail and padding header when they move) */
    olen = rec_len == x.rec[k] ? rec_len : (size_t)(old_end - rec_off) + (last ? 0 : 4);
    nlen = rec_len == x.rec[k] ? rec_len : (size_t)(new_end - rec_off) + (last ? 0 : 4);
    oldb = malloc(olen);
    newb = malloc(nlen);
    if (!oldb || !newb) {
        rc = -ENOMEM;
        goto out;
    }
    if (tfs_pread_full(f->fd, oldb, olen, rec_off) != (ssize_t)olen) {
        rc = -EIO;
        tfs_log("%s: cannot read group %llu to rewrite chunk %llu", f->name, (unsigned long long)g,
                (unsigned long long)idx);
        goto out;
    }
    memcpy(newb, rec, rec_len);
    memcpy(newb + rec_len, oldb + x.rec[k], tail);
    if (rec_len != x.rec[k] && !last)
        tfs_pad_build(newb + nlen - 4, (uint32_t)(rend - new_end - TINY_CHUNK_HDR));
    r[nr++] = (struct tfs_jrange){rec_off, (uint32_t)olen, (uint32_t)nlen, oldb, newb};
    if (memcmp(&x, &nx, sizeof(x)) != 0) {
        tfs_gidx_build(gold, &x);
        tfs_gidx_build(gnew, &nx);
        r[nr++] = (struct tfs_jrange){goff, TFS_GIDX_LEN, TFS_GIDX_LEN, gold, gnew};
    }
    rc = reserve(f, rec_off, nlen);
    if (rc < 0)
        goto out;
    rc = journal_group(f, g, last, old_end + (last ? 0 : 4), last ? 0 : rend, r, (unsigned)nr);
    if (rc < 0)
        goto out;
    if (j_crash_at && j_count == j_crash_at && j_crash_step == 3) {
        /* half the new bytes over the old ones */
        iov = (struct iovec){newb, nlen / 2};
        pwrite_all(f->fd, &iov, 1, rec_off);
        crash_point(3);
    }
    iov = (struct iovec){newb, nlen};
    rc = pwrite_all(f->fd, &iov, 1, rec_off);
    if (rc == 0 && nr == 2)
        rc = write_gidx(f, g, &nx);
    if (rc == 0 && last && new_end < f->stored_len && ftruncate(f->fd, (off_t)new_end) < 0)
        rc = -errno;
    if (rc < 0)
        goto out;
    crash_point(4);
    gidx_set(f, g, &nx);
    if (last)
        f->stored_len = new_end;
    else if (new_end < old_end)
        punch(f, new_end + 4, rend);
    if (idx == f->valid_n - 1)
        f->last_len = clen;
out:
    free(oldb);
    free(newb);
    return rc;
}

static struct entry *find(struct tfs_file *f, uint64_t idx);
static void finish_load(struct tfs_file *f, struct entry *e);
static void writeback_failed(struct tfs_file *f, struct entry *e);
static void submit(struct tfs_file *f, struct entry *e);
static int complete(struct tfs_file *f, struct entry *e);
static int load(struct tfs_file *f, struct entry *e, uint64_t idx);

/* The last stored chunk is a partial one that the logical file has
 * outgrown: writes it back full before anything is stored after it. */
static int fill_last(struct tfs_file *f)
{
    uint64_t j = f->valid_n - 1;
    struct entry *e = find(f, j), tmp = {0};
    ssize_t r;
    int rc;

    if (e && (e->state == E_DIRTY || e->state == E_BUSY) && e->len == TFS_CHUNK) {
        if (e->state == E_DIRTY)
            submit(f, e);
        return complete(f, e);
    }
    /* not cached (an earlier write-back failed): its stored bytes, then zeros */
    tmp.buf = malloc(TFS_CHUNK + TFS_OUT_CAP);
    if (!tmp.buf)
        return -ENOMEM;
    rc = load(f, &tmp, j);
    if (rc == 0) {
        r = tfs_compress(tmp.buf, TFS_CHUNK, tmp.buf + TFS_CHUNK, TFS_OUT_CAP);
        if (r < 0 || tfs_record_check(tmp.buf + TFS_CHUNK, (size_t)r, TFS_CHUNK) < 0)
            r = (ssize_t)tfs_raw_record(tmp.buf, TFS_CHUNK, tmp.buf + TFS_CHUNK);
        rc = rewrite_chunk(f, j, tmp.buf + TFS_CHUNK, (size_t)r, TFS_CHUNK);
    }
    free(tmp.buf);
    return rc;
}

/* Stores every chunk before @idx, in order: cached chunks waiting for
 * write-back first, zero chunks for the holes. The stored file so stays a
 * prefix of the logical file for a sequential writer. */
static int fill_to(struct tfs_file *f, uint64_t idx)
{
    int rc = 0;

    if (f->valid_n && f->last_len < TFS_CHUNK && idx >= f->valid_n) {
        rc = fill_last(f);
        if (rc == 0 && f->last_len < TFS_CHUNK)
            rc = -EIO;
    }
    while (rc == 0 && f->valid_n < idx) {
        uint64_t before = f->valid_n;
        struct entry *e = find(f, before);

        if (e && (e->state == E_DIRTY || e->state == E_BUSY)) {
            if (e->state == E_DIRTY)
                submit(f, e);
            rc = complete(f, e);
        } else {
            const unsigned char *rec;
            ssize_t r = ensure_scratch(f);

            if (r == 0)
                r = tfs_zero_record(TFS_CHUNK, &rec, f->scratch);
            rc = r < 0 ? (int)r : append_chunk(f, rec, (size_t)r, TFS_CHUNK);
        }
        if (rc == 0 && f->valid_n == before)
            rc = -EIO;
    }
    return rc;
}

/* Writes the record of chunk @idx, keeping the stored file a valid stream
 * at every step (docs/format.md, "Crash safety"). */
static int write_chunk(struct tfs_file *f, uint64_t idx, const unsigned char *rec, size_t rec_len,
                       uint32_t clen)
{
    int rc;

    if (idx < f->valid_n)
        return rewrite_chunk(f, idx, rec, rec_len, clen);
    rc = fill_to(f, idx);
    return rc < 0 ? rc : append_chunk(f, rec, rec_len, clen);
}

static int corrupt(struct tfs_file *f, uint64_t idx, uint64_t off, const char *why)
{
    tfs_log("%s: corrupt chunk %llu (logical offset %llu, stored offset %llu): %s", f->name,
            (unsigned long long)idx, (unsigned long long)(idx * TFS_CHUNK), (unsigned long long)off,
            why);
    return -EIO;
}

/* Reads the record of a chunk of @clen logical bytes (@rec bytes at @off)
 * into @rbuf and decodes it into @out (zeros after @clen). Touches nothing
 * of the file but its fd, so it runs with or without the lock. Returns 0;
 * -EBADMSG for a corrupt chunk with *why set; -errno of the read; or the
 * error of the decompression with *why NULL and *dec set. */
static int fetch(int fd, uint64_t off, uint32_t rec, uint32_t clen, unsigned char *rbuf,
                 unsigned char *out, const char **why, int *dec)
{
    ssize_t n = tfs_pread_full(fd, rbuf, rec, off);
    int raw;

    *why = NULL;
    *dec = 0;
    if (n < 0)
        return (int)n;
    if ((size_t)n < rec)
        *why = "stored file is truncated";
    else if (tfs_chunk_parse(rbuf, rec, clen, out, &raw) < 0)
        *why = "bad chunk header or crc";
    if (*why)
        return -EBADMSG;
    if (!raw) {
        ssize_t d = tfs_decompress(rbuf, rec, out, TFS_CHUNK);

        if (d == -EBADMSG)
            *why = "bad crc or snappy data";
        else if (d >= 0 && (size_t)d != clen)
            *why = "wrong chunk length";
        if (*why)
            return -EBADMSG;
        if (d < 0) {
            *dec = 1;
            return (int)d;
        }
    }
    if (clen < TFS_CHUNK)
        memset(out + clen, 0, TFS_CHUNK - clen);
    return 0;
}

/* Logs a failed fetch() of chunk @idx; returns the error for the read. */
static int fetch_failed(struct tfs_file *f, uint64_t idx, uint64_t off, int rc, const char *why,
                        int dec)
{
    if (why)
        return corrupt(f, idx, off, why);
    if (dec) {
        tfs_log("%s: cannot decompress chunk %llu: %s", f->name, (unsigned long long)idx,
                tiny_strerror(rc));
        return -EIO;
    }
    return rc;
}

/* Reads chunk @idx (< valid_n) from its group into @e, under the lock. */
static int load(struct tfs_file *f, struct entry *e, uint64_t idx)
{
    uint32_t clen = idx == f->valid_n - 1 ? f->last_len : TFS_CHUNK, rec;
    const char *why;
    uint64_t off;
    int rc, dec;

    rc = chunk_loc(f, idx, &off, &rec);
    if (rc < 0)
        return rc;
    rc = fetch(f->fd, off, rec, clen, e->buf + TFS_CHUNK, e->buf, &why, &dec);
    if (rc < 0)
        return fetch_failed(f, idx, off, rc, why, dec);
    e->len = clen;
    return 0;
}

/* load() for a reader: the index (when not cached), the record and the
 * decompression without the lock, @e LOADING and owned meanwhile. Returns
 * 0 (@e CLEAN), -EAGAIN when the stored file changed meanwhile (@e FREE;
 * the caller loads under the lock), or the error (@e FREE, logged). */
static int load_rd(struct tfs_file *f, struct entry *e, uint64_t idx)
{
    uint32_t clen = idx == f->valid_n - 1 ? f->last_len : TFS_CHUNK, k = idx % TFS_GROUP;
    uint32_t n = 0, last = 0;
    uint64_t gen = f->gen, g = idx / TFS_GROUP, off = 0;
    struct gcache *c = gidx_find(f, g);
    unsigned char b[TFS_GIDX_LEN];
    struct tfs_gidx x;
    const char *why = NULL;
    int rc = 0, dec = 0, have = c != NULL;

    if (have)
        x = c->x;
    else
        gidx_expect(f, g, &n, &last);
    e->idx = idx;
    e->len = clen;
    e->state = E_LOADING;
    e->owned = 1;
    e->stale = 0;
    e->req = NULL;
    pthread_mutex_unlock(&f->lock);
    if (!have)
        rc = gidx_check(b, tfs_pread_full(f->fd, b, sizeof(b), tfs_group_off(g)), n, last, &x);
    if (rc == 0) {
        off = tfs_group_off(g) + TFS_GIDX_LEN + tfs_gidx_sum(&x, k);
        rc = fetch(f->fd, off, x.rec[k], clen, e->buf + TFS_CHUNK, e->buf, &why, &dec);
    }
    pthread_mutex_lock(&f->lock);
    e->owned = 0;
    e->state = E_FREE;
    pthread_cond_broadcast(&f->cond);
    if (f->gen != gen || e->stale)
        return -EAGAIN;
    if (!have && off == 0)
        return gidx_corrupt(f, g);
    if (!have)
        gidx_set(f, g, &x);
    if (rc < 0)
        return fetch_failed(f, idx, off, rc, why, dec);
    e->state = E_CLEAN;
    return 0;
}

static struct entry *find(struct tfs_file *f, uint64_t idx)
{
    for (int i = 0; i < NENT; i++)
        if (f->ent[i].state != E_FREE && f->ent[i].idx == idx)
            return &f->ent[i];
    return NULL;
}

static void submit(struct tfs_file *f, struct entry *e)
{
    tfs_compress_submit(e->buf, e->len, e->buf + TFS_CHUNK, TFS_OUT_CAP, &e->req);
    e->seq = ++f->seq;
    e->state = E_BUSY;
}

/* A chunk could not be written back (a full disk); the error is reported by
 * the next write or flush. The stored file is then the truth, so that no
 * later write-back invents data: a chunk that could not be rewritten in place
 * reads as it is stored; when the file could not grow, its logical size falls
 * back to what is stored and the cached chunks beyond are dropped (else a
 * later append would fill them with zero chunks). */
static void writeback_failed(struct tfs_file *f, struct entry *e)
{
    uint64_t stored_size;

    e->state = E_FREE;
    if (e->idx < f->valid_n && (e->idx + 1 < f->valid_n || e->len == f->last_len))
        return;
    stored_size = f->valid_n ? (f->valid_n - 1) * TFS_CHUNK + f->last_len : 0;
    for (int i = 0; i < NENT; i++) {
        struct entry *x = &f->ent[i];

        if (x->state == E_FREE || x->idx * TFS_CHUNK + x->len <= stored_size)
            continue;
        if (x->state == E_LOADING) {
            x->stale = 1; /* dropped by whoever waits for it */
            continue;
        }
        if (x->state == E_BUSY && x->req)
            tiny_wait(x->req);
        x->req = NULL;
        x->state = E_FREE;
    }
    if (f->size > stored_size)
        f->size = stored_size;
}

/* Waits for a BUSY entry and writes its record; it becomes CLEAN, or FREE
 * when the write failed. Without tinyd the chunk is stored uncompressed:
 * still a valid stream, never an error. */
static int complete(struct tfs_file *f, struct entry *e)
{
    unsigned char *out = e->buf + TFS_CHUNK;
    ssize_t r = tfs_compress_wait(e->req, e->buf, e->len, out, TFS_OUT_CAP);
    int rc;

    e->req = NULL;
    e->state = E_CLEAN;
    if (r < 0 || tfs_record_check(out, (size_t)r, e->len) < 0)
        r = (ssize_t)tfs_raw_record(e->buf, e->len, out);
    rc = write_chunk(f, e->idx, out, (size_t)r, e->len);
    if (rc < 0) {
        tfs_log("%s: cannot write chunk %llu: %s", f->name, (unsigned long long)e->idx,
                tiny_errno_text(-rc));
        if (!f->err)
            f->err = rc;
        writeback_failed(f, e);
    }
    return rc;
}

/* The BUSY entry submitted first; with @unpinned, among those no reply is
 * being sent from. */
static struct entry *oldest_busy(struct tfs_file *f, int unpinned)
{
    struct entry *best = NULL;

    for (int i = 0; i < NENT; i++)
        if (f->ent[i].state == E_BUSY && !(unpinned && f->ent[i].pins) &&
            (!best || f->ent[i].seq < best->seq))
            best = &f->ent[i];
    return best;
}

static int complete_all(struct tfs_file *f)
{
    struct entry *e;
    int rc = 0;

    while ((e = oldest_busy(f, 0))) {
        int r = complete(f, e);

        if (r < 0 && !rc)
            rc = r;
    }
    return rc;
}

/* Waits for the decompression of the LOADING entry @e (not owned), the
 * lock dropped meanwhile; @e becomes CLEAN, or FREE when the chunk could not
 * be decoded (a synchronous load then logs the error) or went stale. The
 * caller looks its entry up again. */
static void finish_load(struct tfs_file *f, struct entry *e)
{
    tiny_req *req = e->req;
    ssize_t d;

    e->owned = 1;
    e->req = NULL;
    pthread_mutex_unlock(&f->lock);
    d = tfs_decompress_wait(req, e->buf + TFS_CHUNK, e->rec_len, e->buf, TFS_CHUNK);
    if (d == (ssize_t)e->len && e->len < TFS_CHUNK)
        memset(e->buf + e->len, 0, TFS_CHUNK - e->len);
    pthread_mutex_lock(&f->lock);
    e->owned = 0;
    e->state = d == (ssize_t)e->len && !e->stale ? E_CLEAN : E_FREE;
    pthread_cond_broadcast(&f->cond);
}

/* Waits for one LOADING entry (or for its owner); 0 if there is none. */
static int wait_load(struct tfs_file *f)
{
    struct entry *owned = NULL;

    for (int i = 0; i < NENT; i++) {
        struct entry *e = &f->ent[i];

        if (e->state == E_LOADING && !e->owned) {
            finish_load(f, e);
            return 1;
        }
        if (e->state == E_LOADING)
            owned = e;
    }
    if (!owned)
        return 0;
    pthread_cond_wait(&f->cond, &f->lock);
    return 1;
}

static int ensure_buf(struct entry *e)
{
    if (!e->buf)
        e->buf = malloc(TFS_CHUNK + TFS_OUT_CAP);
    return e->buf ? 0 : -ENOMEM;
}

/* A free entry, else the least recently used clean one, to be taken for
 * another chunk; NULL if none. A pinned entry is never taken: a reply is
 * being sent from its buffer. */
static struct entry *pick_entry(struct tfs_file *f)
{
    struct entry *e = NULL;

    for (int i = 0; i < NENT; i++) {
        struct entry *x = &f->ent[i];

        if (x->pins)
            continue;
        if (x->state == E_FREE) {
            e = x;
            break;
        }
        if (x->state == E_CLEAN && (!e || x->lru < e->lru))
            e = x;
    }
    if (e)
        e->wwait = 0;
    return e;
}

/* Starts reading and decompressing the chunks [@a, @b] that are not cached,
 * into free or clean entries while there are some; nothing is evicted that
 * is not clean. The records are read without the lock (the entries LOADING
 * and owned), those of a group with one preadv, and decompressed in tinyd in
 * parallel. */
static void prefetch(struct tfs_file *f, uint64_t a, uint64_t b, int ahead)
{
    struct entry *list[NENT];
    int how[NENT]; /* 0: nothing read (a synchronous load reports why), 1: decoded, 2: in tinyd */
    uint64_t ra[AHEAD_G + 1][2], gen; /* stored ranges to read ahead */
    struct tfs_gidx x;
    int n = 0, nra = 0;

    /* the indexes first (may drop the lock: the file may shrink meanwhile) */
    for (uint64_t g = a / TFS_GROUP; g <= b / TFS_GROUP; g++)
        if (g * TFS_GROUP >= f->valid_n || gidx_get_rd(f, g, &x) < 0)
            break;
    if (ahead) {
        /* the stored data of the next groups (their indexes were read
         * ahead before), and the index of the one after */
        uint64_t g0 = b / TFS_GROUP + 1, g;

        if (f->ra_g < g0 || f->ra_g > g0 + AHEAD_G)
            f->ra_g = g0;
        for (g = f->ra_g; g < g0 + AHEAD_G && g * TFS_GROUP < f->valid_n; g++) {
            if (gidx_get_rd(f, g, &x) < 0)
                break;
            ra[nra][0] = tfs_group_off(g);
            ra[nra++][1] = tfs_group_end(g, &x) - tfs_group_off(g);
            f->ra_g = g + 1;
        }
        if (g == g0 + AHEAD_G && g * TFS_GROUP < f->valid_n && !gidx_find(f, g)) {
            ra[nra][0] = tfs_group_off(g);
            ra[nra++][1] = TFS_GIDX_LEN;
        }
    }
    if (a >= f->valid_n)
        return;
    if (b >= f->valid_n)
        b = f->valid_n - 1;
    /* keep the chunks of the range that are cached */
    for (uint64_t i = a; i <= b; i++) {
        struct entry *e = find(f, i);

        if (e && e->state == E_CLEAN)
            e->lru = ++f->tick;
    }
    for (uint64_t i = a; i <= b && n < NENT; i++) {
        struct gcache *c = gidx_find(f, i / TFS_GROUP);
        uint32_t k = (uint32_t)(i % TFS_GROUP);
        struct entry *e;

        if (find(f, i))
            continue;
        if (!c)
            break;
        e = pick_entry(f);
        if (!e || ensure_buf(e) < 0)
            break;
        e->idx = i;
        e->len = i == f->valid_n - 1 ? f->last_len : TFS_CHUNK;
        e->rec_len = c->x.rec[k];
        e->off = tfs_group_off(i / TFS_GROUP) + TFS_GIDX_LEN + tfs_gidx_sum(&c->x, k);
        e->state = E_LOADING;
        e->owned = 1;
        e->stale = 0;
        e->req = NULL;
        e->lru = ++f->tick;
        list[n++] = e;
    }
    if (!n && !nra)
        return;
    gen = f->gen;
    pthread_mutex_unlock(&f->lock);
    for (int i = 0; i < n;) {
        /* the records of consecutive chunks are contiguous within a group */
        struct iovec iov[TFS_GROUP];
        size_t total = 0;
        int j = 0;
        ssize_t got;

        do {
            iov[j] = (struct iovec){list[i + j]->buf + TFS_CHUNK, list[i + j]->rec_len};
            total += list[i + j]->rec_len;
            j++;
        } while (i + j < n && j < (int)TFS_GROUP && list[i + j]->idx == list[i + j - 1]->idx + 1 &&
                 list[i + j]->off == list[i + j - 1]->off + list[i + j - 1]->rec_len);
        got = preadv_full(f->fd, iov, j, list[i]->off);
        for (int k = i; k < i + j; k++) {
            struct entry *e = list[k];
            int raw;

            how[k] = 0;
            if (got != (ssize_t)total ||
                tfs_chunk_parse(e->buf + TFS_CHUNK, e->rec_len, e->len, e->buf, &raw) < 0)
                continue;
            if (raw && e->len < TFS_CHUNK)
                memset(e->buf + e->len, 0, TFS_CHUNK - e->len);
            how[k] = raw ? 1 : 2;
            if (!raw)
                tfs_decompress_submit(e->buf + TFS_CHUNK, e->rec_len, e->buf, TFS_CHUNK, &e->req);
        }
        i += j;
    }
    for (int i = 0; i < nra; i++)
        posix_fadvise(f->fd, (off_t)ra[i][0], (off_t)ra[i][1], POSIX_FADV_WILLNEED);
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < n; i++) {
        struct entry *e = list[i];

        e->owned = 0;
        if (f->gen != gen)
            e->stale = 1;
        if (how[i] == 2)
            continue; /* decompressing: whoever needs it waits */
        e->state = how[i] == 1 && !e->stale ? E_CLEAN : E_FREE;
    }
    pthread_cond_broadcast(&f->cond);
}

/* What get_chunk() puts in an entry it takes for a chunk not cached. */
enum {
    FILL_ZEROS,   /* zeros: the caller writes all of a last chunk shorter than TFS_CHUNK */
    FILL_DATA,    /* the chunk's current contents */
    FILL_NOTHING, /* the caller writes all TFS_CHUNK bytes */
};

/* The cache entry of chunk @idx, filled as @fill says when it was not
 * cached; waits for it if it is being compressed and @write. A reader
 * (!@write) may drop the lock meanwhile. */
static int get_chunk(struct tfs_file *f, uint64_t idx, int write, int fill, struct entry **out)
{
    int locked = write;

    for (;;) {
        struct entry *e = find(f, idx);
        int rc;

        if (e && e->state == E_LOADING) {
            if (e->owned)
                pthread_cond_wait(&f->cond, &f->lock);
            else
                finish_load(f, e);
            continue; /* the lock was dropped: look again */
        }
        if (e && write && e->pins) {
            /* a reply is being sent from it: the writer changes it after */
            e->wwait = 1;
            pthread_cond_wait(&f->cond, &f->lock);
            continue;
        }
        if (e) {
            if (write && e->state == E_BUSY)
                complete(f, e);
            if (write)
                e->wwait = 0;
            e->lru = ++f->tick;
            *out = e;
            return 0;
        }
        e = pick_entry(f);
        if (!e && wait_load(f))
            continue;
        if (!e) {
            /* at most PIN_MAX of the NENT entries are pinned */
            e = oldest_busy(f, 1);
            if (e) {
                complete(f, e);
            } else {
                /* everything dirty: write the least recently used back */
                for (int i = 0; i < NENT; i++)
                    if (!f->ent[i].pins && (!e || f->ent[i].lru < e->lru))
                        e = &f->ent[i];
                submit(f, e);
                complete(f, e);
            }
            e->wwait = 0;
        }
        if (ensure_buf(e) < 0)
            return -ENOMEM;
        e->lru = ++f->tick;
        if (fill == FILL_DATA && idx < f->valid_n) {
            rc = locked ? load(f, e, idx) : load_rd(f, e, idx);
            if (rc == -EAGAIN) {
                locked = 1;
                continue;
            }
            if (rc < 0) {
                e->state = E_FREE;
                return rc;
            }
        } else {
            if (fill != FILL_NOTHING)
                memset(e->buf, 0, TFS_CHUNK);
            e->len = 0;
        }
        e->idx = idx;
        e->state = E_CLEAN;
        *out = e;
        return 0;
    }
}

/* The file grows to @size: a partial last chunk becomes longer. */
static int grow(struct tfs_file *f, uint64_t size)
{
    struct entry *e;
    int rc;

    if (f->size % TFS_CHUNK) {
        uint64_t k = f->size / TFS_CHUNK;

        rc = get_chunk(f, k, 1, FILL_DATA, &e);
        if (rc == 0 && f->err)
            return 0; /* a write-back failed: the caller reports it */
        if (rc < 0)
            return rc;
        e->len = tfs_chunk_len(k, size);
        e->state = E_DIRTY;
    }
    f->size = size;
    return 0;
}

static int flush_locked(struct tfs_file *f)
{
    uint64_t n;
    int rc = 0;

    if (f->plain)
        return 0;
    /* in chunk order, so the stored file grows as a prefix */
    for (;;) {
        struct entry *e = NULL;

        for (int i = 0; i < NENT; i++)
            if (f->ent[i].state == E_DIRTY && (!e || f->ent[i].idx < e->idx))
                e = &f->ent[i];
        if (!e)
            break;
        submit(f, e);
    }
    complete_all(f);
    n = tfs_nchunks(f->size);
    if (!f->err && f->valid_n < n) {
        /* the file was extended by truncate: zeros up to the logical size */
        unsigned char *scratch = malloc(TFS_OUT_CAP);
        uint32_t clen = tfs_chunk_len(n - 1, f->size);
        const unsigned char *rec;
        ssize_t r = scratch ? tfs_zero_record(clen, &rec, scratch) : -ENOMEM;

        rc = r < 0 ? (int)r : write_chunk(f, n - 1, rec, (size_t)r, clen);
        free(scratch);
        if (rc < 0 && !f->err)
            f->err = rc;
    }
    if (!f->err && !f->torn &&
        (f->valid_n != n || (n && f->last_len != tfs_chunk_len(n - 1, f->size)))) {
        tfs_log("%s: %llu chunks stored instead of %llu after write-back", f->name,
                (unsigned long long)f->valid_n, (unsigned long long)n);
        f->err = -EIO;
    }
    rc = journal_sync(f);
    if (rc < 0 && !f->err)
        f->err = rc;
    rc = f->err;
    f->err = 0;
    return rc;
}

int tfs_file_flush(struct tfs_file *f)
{
    int rc;

    wr_lock(f);
    rc = flush_locked(f);
    wr_unlock(f);
    return rc;
}

/* Drops the cached chunks from @n on (a truncate): those waiting for
 * write-back are written first, those being loaded are dropped when done. */
static void uncache(struct tfs_file *f, uint64_t n)
{
    for (int i = 0; i < NENT; i++) {
        struct entry *x = &f->ent[i];

        if (x->state == E_FREE || x->idx < n)
            continue;
        if (x->state == E_LOADING) {
            x->stale = 1;
            continue;
        }
        if (x->state == E_BUSY)
            complete(f, x);
        x->state = E_FREE;
    }
}

static int truncate_locked(struct tfs_file *f, uint64_t size)
{
    int rc;

    if (f->plain) {
        if (size == 0) {
            unsigned char hdr[TFS_HDR_LEN];
            struct iovec iov = {hdr, sizeof(hdr)};

            if (ftruncate(f->fd, 0) < 0)
                return -errno;
            tfs_header_build(hdr);
            rc = pwrite_all(f->fd, &iov, 1, 0);
            if (rc < 0)
                return rc;
            f->plain = 0;
            f->gen++;
            store_random(f);
            gidx_drop(f, 0);
            f->size = f->valid_n = 0;
            f->last_len = 0;
            f->stored_len = TFS_HDR_LEN;
            return 0;
        }
        return ftruncate(f->fd, (off_t)size) < 0 ? -errno : 0;
    }
    if (f->torn)
        return -EIO;
    if (size > f->size) {
        rc = grow(f, size);
        if (rc < 0)
            return rc;
    } else if (size < f->size) {
        uint64_t n = tfs_nchunks(size), keep;
        uint32_t len = (uint32_t)(size % TFS_CHUNK);
        struct entry *e = NULL;

        uncache(f, n);
        /* the new last chunk's bytes, before its record goes */
        if (len) {
            rc = get_chunk(f, n - 1, 1, FILL_DATA, &e);
            if (rc < 0)
                return rc;
            uncache(f, n); /* readers may have cached some again meanwhile */
        }
        /* whole chunks go from the end: every step is a valid shorter stream */
        keep = len ? n - 1 : n;
        if (f->valid_n > keep) {
            rc = drop_chunks(f, keep);
            if (rc < 0)
                return rc;
        }
        if (e) {
            memset(e->buf + len, 0, TFS_CHUNK - len);
            e->len = len;
            e->state = E_DIRTY;
        }
        f->size = size;
    }
    return flush_locked(f);
}

int tfs_file_truncate(struct tfs_file *f, uint64_t size)
{
    int rc;

    wr_lock(f);
    rc = truncate_locked(f, size);
    wr_unlock(f);
    return rc;
}

/* Appends @n bytes at @p to @rd's reply, merged with the piece before when
 * they follow it in memory. */
static void rd_add(struct tfs_rd *rd, const void *p, size_t n)
{
    struct iovec *last = rd->n ? &rd->iov[rd->n - 1] : NULL;

    if (last && (const char *)last->iov_base + last->iov_len == (const char *)p)
        last->iov_len += n;
    else
        rd->iov[rd->n++] = (struct iovec){(void *)p, n};
}

/* Appends @n bytes at @p to @rd's reply as a copy in its spill buffer, at
 * offset @done of the reply. */
static int rd_copy(struct tfs_rd *rd, size_t size, size_t done, const void *p, size_t n)
{
    if (!rd->spill && !(rd->spill = malloc(size)))
        return -ENOMEM;
    memcpy(rd->spill + done, p, n);
    rd_add(rd, rd->spill + done, n);
    return 0;
}

ssize_t tfs_file_read(struct tfs_file *f, struct tfs_inode *i, size_t size, uint64_t off,
                      struct tfs_rd *rd)
{
    static const unsigned char zeros[TFS_CHUNK];
    size_t done = 0;
    ssize_t rc = 0;
    int seq = 0;

    rd->n = rd->npin = 0;
    rd->spill = NULL;
    pthread_mutex_lock(&f->lock);
    if (f->plain) {
        rc = (rd->spill = malloc(size ? size : 1)) ? tfs_pread_full(f->fd, rd->spill, size, off)
                                                   : -ENOMEM;
        if (rc > 0)
            rd_add(rd, rd->spill, (size_t)rc);
        goto out;
    }
    if (off >= f->size)
        goto out;
    if (size > f->size - off)
        size = (size_t)(f->size - off);
    {
        /* the chunks of a read of several are decompressed in parallel in
         * tinyd, and a sequential reader's next ones too; the kernel's
         * read-ahead requests may arrive a little out of order */
        uint64_t first = off / TFS_CHUNK, last = (off + size - 1) / TFS_CHUNK;

        seq =
            off > 0 && (off == f->next_off || (size > TFS_CHUNK && off <= f->next_off + SEQ_SLACK &&
                                               off + SEQ_SLACK >= f->next_off));

        if (seq || last > first)
            prefetch(f, first, last + (seq ? READAHEAD : 0), seq);
        if (!seq || off + size > f->next_off)
            f->next_off = off + size;
    }
    while (done < size) {
        uint64_t pos = off + done, idx = pos / TFS_CHUNK;
        uint32_t a = (uint32_t)(pos % TFS_CHUNK);
        size_t n = TFS_CHUNK - a < size - done ? TFS_CHUNK - a : size - done;
        struct entry *e = find(f, idx);
        /* one piece more, and the last one may have to be a copy */
        int room = rd->n < TFS_RD_IOV - 1;

        if (!e && idx >= f->valid_n) {
            rc = room ? (rd_add(rd, zeros, n), 0) : rd_copy(rd, size, done, zeros, n);
            if (rc < 0)
                goto out;
        } else {
            /* decoded for this read: its other pages can go to the kernel */
            int decoded = !e || e->state == E_LOADING, r = get_chunk(f, idx, 0, FILL_DATA, &e);

            if (r < 0) {
                rc = r;
                goto out;
            }
            if (room && !e->wwait && f->pinned < PIN_MAX) {
                /* the reply is sent from the entry, which stays as it is
                 * until tfs_file_read_done() */
                e->pins++;
                f->pinned++;
                rd->pin[rd->npin++] = (unsigned char)(e - f->ent);
                rd_add(rd, e->buf + a, n);
            } else if ((rc = rd_copy(rd, size, done, e->buf + a, n)) < 0) {
                goto out;
            }
            if (decoded && !seq && i && f->size > idx * TFS_CHUNK) {
                uint64_t in_file = f->size - idx * TFS_CHUNK;

                /* under the lock: the bytes the reader gets, and no writer */
                tfs_pc_offer(i, idx * TFS_CHUNK, e->buf,
                             in_file < TFS_CHUNK ? (uint32_t)in_file : TFS_CHUNK, a,
                             a + (uint32_t)n);
            }
        }
        done += n;
    }
    rc = (ssize_t)done;
out:
    pthread_mutex_unlock(&f->lock);
    return rc;
}

void tfs_file_read_done(struct tfs_file *f, struct tfs_rd *rd)
{
    int wake = 0;

    if (rd->npin) {
        pthread_mutex_lock(&f->lock);
        for (int k = 0; k < rd->npin; k++) {
            struct entry *e = &f->ent[rd->pin[k]];

            e->pins--;
            f->pinned--;
            wake |= e->wwait && !e->pins;
        }
        /* a writer of an entry, or the file's release, may wait */
        if (wake || !f->pinned)
            pthread_cond_broadcast(&f->cond);
        /* f may be freed as soon as this returns */
        pthread_mutex_unlock(&f->lock);
    }
    rd->npin = 0;
    free(rd->spill);
    rd->spill = NULL;
}

ssize_t tfs_file_write(struct tfs_file *f, const char *buf, size_t size, uint64_t off, int append)
{
    size_t done = 0;
    ssize_t rc = 0;
    uint64_t end;

    wr_lock(f);
    if (f->err) {
        /* a write-back failed (a full disk): report it now, once */
        rc = f->err;
        f->err = 0;
        goto out;
    }
    if (f->plain) {
        struct iovec iov = {(void *)buf, size};
        struct stat st;

        if (append) {
            if (fstat(f->fd, &st) < 0) {
                rc = -errno;
                goto out;
            }
            off = (uint64_t)st.st_size;
        }
        rc = pwrite_all(f->fd, &iov, 1, off);
        rc = rc < 0 ? rc : (ssize_t)size;
        goto out;
    }
    if (f->torn) {
        rc = -EIO; /* its end could not be repaired (logged at open) */
        goto out;
    }
    if (append)
        off = f->size;
    end = off + size;
    if (end > f->size) {
        rc = grow(f, end);
        if (rc == 0 && f->err) {
            rc = f->err;
            f->err = 0;
        }
        if (rc < 0)
            goto out;
    }
    while (done < size) {
        uint64_t pos = off + done, idx = pos / TFS_CHUNK;
        uint32_t a = (uint32_t)(pos % TFS_CHUNK);
        size_t n = TFS_CHUNK - a < size - done ? TFS_CHUNK - a : size - done;
        uint32_t clen = tfs_chunk_len(idx, f->size);
        int fill = a > 0 || n < clen ? FILL_DATA : n == TFS_CHUNK ? FILL_NOTHING : FILL_ZEROS;
        struct entry *e;
        int r = get_chunk(f, idx, 1, fill, &e);

        if (r == 0 && f->err) {
            /* a write-back failed meanwhile: stop here, report it */
            r = f->err;
            if (!done)
                f->err = 0;
        }
        if (r < 0) {
            rc = done ? (ssize_t)done : r;
            goto out;
        }
        memcpy(e->buf + a, buf + done, n);
        e->len = clen;
        e->state = E_DIRTY;
        if (a + n == TFS_CHUNK)
            submit(f, e); /* a full chunk just completed: compress it now */
        done += n;
    }
    rc = (ssize_t)done;
out:
    wr_unlock(f);
    return rc;
}

int tfs_file_fsync(struct tfs_file *f, int datasync)
{
    int rc;

    wr_lock(f);
    rc = flush_locked(f);
    if (rc == 0 && (datasync ? fdatasync(f->fd) : fsync(f->fd)) < 0)
        rc = -errno;
    wr_unlock(f);
    return rc;
}

int tfs_file_fallocate(struct tfs_file *f, int mode, uint64_t off, uint64_t len)
{
    int rc = 0;

    wr_lock(f);
    if (f->plain) {
        rc = fallocate(f->fd, mode, (off_t)off, (off_t)len) < 0 ? -errno : 0;
    } else if (mode & ~FALLOC_FL_KEEP_SIZE) {
        rc = -EOPNOTSUPP;
    } else if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > f->size) {
        rc = truncate_locked(f, off + len);
    }
    wr_unlock(f);
    return rc;
}

int tfs_file_fd(struct tfs_file *f)
{
    return f->fd;
}

int tfs_file_fstat(struct tfs_file *f, struct stat *st)
{
    int rc = 0;

    pthread_mutex_lock(&f->lock);
    if (fstat(f->fd, st) < 0)
        rc = -errno;
    else if (!f->plain)
        st->st_size = (off_t)f->size;
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* Reads the header of a freshly opened stored file and sets up @f. */
static int setup(struct tfs_file *f, int flags, const struct stat *st)
{
    unsigned char hdr[TFS_HDR_LEN];
    ssize_t n = 0;
    int kind = 0;

    if (st->st_size >= (off_t)TFS_HDR_LEN) {
        n = tfs_pread_full(f->fd, hdr, sizeof(hdr), 0);
        if (n < 0)
            return (int)n;
        kind = tfs_header_parse(hdr, (size_t)n);
    }
    if (kind == -EPROTONOSUPPORT && (flags & O_TRUNC) && f->rdwr &&
        (flags & O_ACCMODE) != O_RDONLY) {
        f->plain = 1; /* its old content goes: stored in this version from now on */
        return 0;
    }
    if (kind == -EPROTONOSUPPORT) {
        tfs_log("%s: stored in tinyfs format version %u, this tinyfs reads version %u only "
                "(docs/format.md: converting a store)",
                f->name, tfs_header_version(hdr, (size_t)n), TFS_VERSION);
        return -EIO;
    }
    if (kind < 0) {
        tfs_log("%s: corrupt tinyfs header: %s", f->name, tiny_errno_text(-kind));
        return -EIO;
    }
    f->stored_len = (uint64_t)st->st_size;
    if (kind == 1) {
        struct tfs_tail t;
        int rc = tfs_locate(f->fd, f->stored_len, &t);

        if (rc < 0)
            return rc;
        if (t.damaged) {
            tfs_log("%s: the index of its last group (%llu) is corrupt: only the %llu bytes "
                    "before it are readable, writes fail",
                    f->name, (unsigned long long)t.g, (unsigned long long)t.size);
            f->torn = 1;
        } else if (t.torn) {
            /* drop the torn end: the file is then a prefix of what was written */
            if (f->rdwr && tfs_tail_repair(f->fd, &t) == 0) {
                tfs_log("%s: dropped a torn end (stored length %llu -> %llu)", f->name,
                        (unsigned long long)f->stored_len, (unsigned long long)t.keep);
                f->stored_len = t.keep;
            } else {
                tfs_log("%s: stored length %llu is torn; writes fail", f->name,
                        (unsigned long long)f->stored_len);
                f->torn = 1;
            }
        }
        f->size = t.size;
        f->valid_n = t.nchunks;
        f->last_len = f->valid_n ? tfs_chunk_len(f->valid_n - 1, f->size) : 0;
        if (f->valid_n && !t.damaged)
            gidx_set(f, t.g, &t.idx);
        store_random(f);
        return 0;
    }
    f->plain = 1;
    /* an empty plain file opened for writing is stored compressed from now on */
    if (st->st_size == 0 && f->rdwr && (flags & O_ACCMODE) != O_RDONLY)
        return truncate_locked(f, 0);
    return 0;
}

int tfs_file_open(int dirfd, const char *path, const char *name, int flags, int create,
                  struct tfs_file **out)
{
    int want_w = (flags & O_ACCMODE) != O_RDONLY;
    int fd, rdwr = 1, rc = 0;
    struct tfs_file *f;
    struct stat st;

    (void)create;
    fd = openat(dirfd, path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && !want_w && (errno == EACCES || errno == EROFS || errno == EPERM)) {
        fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
        rdwr = 0;
    }
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    pthread_mutex_lock(&reg_lock);
    for (f = reg; f; f = f->next)
        if (f->dev == st.st_dev && f->ino == st.st_ino)
            break;
    if (f) {
        f->refs++;
        pthread_mutex_unlock(&reg_lock);
        wr_lock(f);
        if (rdwr && !f->rdwr) {
            dup3(fd, f->fd, O_CLOEXEC);
            f->rdwr = 1;
            if (!f->plain)
                store_random(f);
        }
        close(fd);
        if (want_w && !f->rdwr)
            rc = -EACCES;
        if (rc == 0 && (flags & O_TRUNC))
            rc = truncate_locked(f, 0);
        wr_unlock(f);
        if (rc < 0) {
            tfs_file_release(f);
            return rc;
        }
        *out = f;
        return 0;
    }
    f = calloc(1, sizeof(*f));
    if (!f || !(f->name = strdup(name))) {
        free(f);
        pthread_mutex_unlock(&reg_lock);
        close(fd);
        return -ENOMEM;
    }
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->wlock, NULL);
    pthread_cond_init(&f->cond, NULL);
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->fd = fd;
    f->rdwr = rdwr;
    f->refs = 1;
    rc = setup(f, flags, &st);
    if (rc == 0 && (flags & O_TRUNC) && want_w)
        rc = truncate_locked(f, 0);
    if (rc < 0) {
        pthread_mutex_unlock(&reg_lock);
        close(fd);
        free(f->gc);
        free(f->scratch);
        free(f->name);
        free(f);
        return rc;
    }
    f->next = reg;
    reg = f;
    pthread_mutex_unlock(&reg_lock);
    *out = f;
    return 0;
}

void tfs_file_release(struct tfs_file *f)
{
    struct tfs_file **pp;
    int last;

    wr_lock(f);
    flush_locked(f);
    wr_unlock(f);
    pthread_mutex_lock(&reg_lock);
    last = --f->refs == 0;
    if (last)
        for (pp = &reg; *pp; pp = &(*pp)->next)
            if (*pp == f) {
                *pp = f->next;
                break;
            }
    pthread_mutex_unlock(&reg_lock);
    if (!last)
        return;
    pthread_mutex_lock(&f->lock);
    while (wait_load(f))
        ; /* requests still in tinyd (read-ahead nobody read) */
    /* The kernel may release the file as soon as a read is answered, before
     * its thread has unpinned what the reply was sent from. */
    while (f->pinned)
        pthread_cond_wait(&f->cond, &f->lock);
    pthread_mutex_unlock(&f->lock);
    close(f->fd);
    for (int i = 0; i < NENT; i++)
        free(f->ent[i].buf);
    free(f->scratch);
    free(f->name);
    free(f->gc);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->wlock);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

int tfs_file_by_inode(dev_t dev, ino_t ino, int flush, uint64_t *size)
{
    struct tfs_file *f;
    int plain;

    pthread_mutex_lock(&reg_lock);
    for (f = reg; f; f = f->next)
        if (f->dev == dev && f->ino == ino)
            break;
    if (f)
        f->refs++;
    pthread_mutex_unlock(&reg_lock);
    if (!f)
        return 0;
    if (flush)
        wr_lock(f);
    else
        pthread_mutex_lock(&f->lock);
    if (flush)
        flush_locked(f);
    plain = f->plain;
    if (size)
        *size = f->size;
    pthread_mutex_unlock(&f->lock);
    if (flush)
        pthread_mutex_unlock(&f->wlock);
    tfs_file_release(f);
    return plain ? 0 : 1;
}

void tfs_stat_fixup(const struct tfs_inode *i, struct stat *st)
{
    unsigned char hdr[TFS_HDR_LEN];
    char path[TFS_PROC_PATH];
    uint64_t size;
    int fd;

    if (!S_ISREG(st->st_mode))
        return;
    if (tfs_file_by_inode(st->st_dev, st->st_ino, 0, &size)) {
        st->st_size = (off_t)size;
        return;
    }
    if (st->st_size < (off_t)TFS_HDR_LEN)
        return;
    tfs_inode_path(i, path);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOATIME);
    if (fd < 0 && errno == EPERM)
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (tfs_pread_full(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
        tfs_header_parse(hdr, sizeof(hdr)) == 1) {
        struct tfs_tail t;

        if (tfs_locate(fd, (uint64_t)st->st_size, &t) == 0)
            st->st_size = (off_t)t.size;
    }
    close(fd);
}
