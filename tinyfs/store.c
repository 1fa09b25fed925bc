/*
 * store.c - the stored bytes of an open file (docs/format.md): where each
 * chunk's record lies, appending a record, rewriting one in place, and
 * cutting the file shorter, every step leaving a valid stream.
 *
 * The logical file is cut into 64 KiB chunks, chunk i packed into group
 * i / 16 of the stored file (format.c) at the place its group index gives
 * (the indexes are cached, direct-mapped by group, so a random reader reads
 * each index once).
 *
 * Store invariants: chunks [0, valid_n) of the stored file hold valid data
 * chunks (chunk valid_n - 1 of last_len bytes, the others full), or are
 * DIRTY/BUSY in the cache (cache.c); logical chunks at or beyond valid_n
 * not in the cache are zeros. Writing chunk j > valid_n first fills the gap
 * with zero chunks (tfs_cache_write_chunk). A flush writes every dirty
 * chunk and fills up to the logical size, after which the stored file is a
 * valid stream of exactly the logical bytes. Appends are safe by their
 * order (record, then index); a chunk rewritten in place, which moves the
 * records after it in its group, has the old bytes saved in the undo
 * journal first (journal_group), dropped once the file is synced at flush
 * (tfs_file_journal_sync).
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

#include "file.h"

int tfs_pwrite_all(int fd, const struct iovec *iov, int n, uint64_t off)
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
ssize_t tfs_preadv_full(int fd, const struct iovec *iov, int n, uint64_t off)
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
 * instead (tfs_cache_prefetch). */
void tfs_store_random(struct tfs_file *f)
{
    posix_fadvise(f->fd, 0, 0, POSIX_FADV_RANDOM);
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
        tfs_pwrite_all(j_fd, &iov, 1, j_len);
        crash_point(1);
    }
    rc = tfs_pwrite_all(j_fd, &iov, 1, j_len);
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
struct gcache *tfs_gidx_find(struct tfs_file *f, uint64_t g)
{
    struct gcache *c;

    if (!f->gc)
        return NULL;
    c = &f->gc[g & (f->ngc - 1)];
    return c->g1 == g + 1 ? c : NULL;
}

void tfs_gidx_set(struct tfs_file *f, uint64_t g, const struct tfs_gidx *x)
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
void tfs_gidx_drop(struct tfs_file *f, uint64_t g)
{
    for (uint32_t i = 0; i < f->ngc; i++)
        if (f->gc[i].g1 > g)
            f->gc[i].g1 = 0;
}

/* What the index of group @g must say, from the file's length. */
void tfs_gidx_expect(const struct tfs_file *f, uint64_t g, uint32_t *n, uint32_t *last)
{
    uint64_t lastg = (f->valid_n - 1) / TFS_GROUP;

    *n = g < lastg ? TFS_GROUP : (uint32_t)(f->valid_n - g * TFS_GROUP);
    *last = g < lastg ? TFS_CHUNK : f->last_len;
}

/* Parses the @got bytes read of group @g's index into @x: 0, or -EIO when
 * it is unreadable or does not say @n chunks, the last of @last bytes. */
int tfs_gidx_check(const unsigned char *b, ssize_t got, uint32_t n, uint32_t last,
                   struct tfs_gidx *x)
{
    if (got != (ssize_t)TFS_GIDX_LEN || tfs_gidx_parse(b, TFS_GIDX_LEN, x) < 0 || x->n != n ||
        x->last_clen != last)
        return -EIO;
    return 0;
}

int tfs_gidx_corrupt(struct tfs_file *f, uint64_t g)
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
    struct gcache *c = tfs_gidx_find(f, g);
    unsigned char b[TFS_GIDX_LEN];
    uint32_t n, last;

    if (c) {
        *x = c->x;
        return 0;
    }
    tfs_gidx_expect(f, g, &n, &last);
    if (tfs_gidx_check(b, tfs_pread_full(f->fd, b, sizeof(b), tfs_group_off(g)), n, last, x) < 0)
        return tfs_gidx_corrupt(f, g);
    tfs_gidx_set(f, g, x);
    return 0;
}

/* gidx_get() for a reader: reads a missing index without the lock. Returns
 * -EAGAIN when the stored file changed meanwhile (the caller starts over). */
int tfs_gidx_get_rd(struct tfs_file *f, uint64_t g, struct tfs_gidx *x)
{
    struct gcache *c = tfs_gidx_find(f, g);
    unsigned char b[TFS_GIDX_LEN];
    uint64_t gen = f->gen;
    uint32_t n, last;
    ssize_t got;

    if (c) {
        *x = c->x;
        return 0;
    }
    tfs_gidx_expect(f, g, &n, &last);
    pthread_mutex_unlock(&f->lock);
    got = tfs_pread_full(f->fd, b, sizeof(b), tfs_group_off(g));
    pthread_mutex_lock(&f->lock);
    if (f->gen != gen)
        return -EAGAIN;
    if (tfs_gidx_check(b, got, n, last, x) < 0)
        return tfs_gidx_corrupt(f, g);
    tfs_gidx_set(f, g, x);
    return 0;
}

/* Where chunk @idx (< valid_n) is stored. */
int tfs_chunk_loc(struct tfs_file *f, uint64_t idx, uint64_t *off, uint32_t *len)
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
    return tfs_pwrite_all(f->fd, &iov, 1, tfs_group_off(g));
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
    if (rc && (rc = tfs_file_journal_sync(f)) < 0)
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
int tfs_file_journal_sync(struct tfs_file *f)
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
int tfs_store_drop(struct tfs_file *f, uint64_t keep)
{
    uint64_t g, lastg = (f->valid_n - 1) / TFS_GROUP, end;
    struct tfs_gidx x;
    int rc = tfs_file_journal_sync(f); /* no entry may outlive the bytes it names */

    if (rc < 0)
        return rc;
    f->gen++;
    if (keep == 0) {
        if (ftruncate(f->fd, TFS_HDR_LEN) < 0)
            return -errno;
        tfs_gidx_drop(f, 0);
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
        tfs_gidx_drop(f, g + 1);
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
        tfs_gidx_set(f, g, &x);
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
int tfs_store_append(struct tfs_file *f, const unsigned char *rec, size_t rec_len, uint32_t clen)
{
    uint64_t idx = f->valid_n, g = idx / TFS_GROUP, old = f->stored_len, expect, at;
    uint32_t k = (uint32_t)(idx % TFS_GROUP);
    struct iovec iov = {(void *)rec, rec_len};
    struct tfs_gidx x = {0}, prev;
    int rc;

    if (f->jlast && (rc = tfs_file_journal_sync(f)) < 0)
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
        rc = tfs_pwrite_all(f->fd, &pv, 1, expect);
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
    rc = tfs_pwrite_all(f->fd, &iov, 1, at);
    if (rc == 0)
        rc = write_gidx(f, g, &x);
    if (rc < 0)
        goto undo;
    tfs_gidx_set(f, g, &x);
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

/* Rewrites the @n chunks from @idx (< valid_n, in one group) in place:
 * their records, and when a length changes the records after them in the
 * group (read raw, moved), the group's padding header and its index. The
 * old bytes go to the undo journal first, so a crash leaves the old or the
 * new group; rewriting several chunks at once costs one journal sync. The
 * last group may grow or shrink; the others have room for 16 full
 * records. */
int tfs_store_rewrite(struct tfs_file *f, uint64_t idx, unsigned n, const struct tfs_rec *rec,
                      uint32_t clen)
{
    uint64_t g = idx / TFS_GROUP, goff = tfs_group_off(g), rend = tfs_group_off(g + 1);
    uint32_t k = (uint32_t)(idx % TFS_GROUP);
    int last = g == (f->valid_n - 1) / TFS_GROUP, rc, nr = 0, same = 1;
    uint64_t rec_off, old_end, new_end;
    unsigned char gold[TFS_GIDX_LEN], gnew[TFS_GIDX_LEN];
    unsigned char *oldb = NULL, *newb = NULL;
    size_t olen, nlen, tail, sum_old = 0, sum_new = 0;
    struct tfs_gidx x, nx;
    struct tfs_jrange r[2];
    struct iovec iov;

    if (n == 0 || k + n > TFS_GROUP || idx + n > f->valid_n)
        return -EINVAL;
    rc = gidx_get(f, g, &x);
    if (rc < 0)
        return rc;
    f->gen++;
    nx = x;
    for (unsigned i = 0; i < n; i++) {
        nx.rec[k + i] = (uint32_t)rec[i].len;
        sum_old += x.rec[k + i];
        sum_new += rec[i].len;
        same &= rec[i].len == x.rec[k + i];
    }
    if (idx + n == f->valid_n)
        nx.last_clen = clen;
    rec_off = goff + TFS_GIDX_LEN + tfs_gidx_sum(&x, k);
    old_end = tfs_group_end(g, &x);
    new_end = tfs_group_end(g, &nx);
    tail = same ? 0 : (size_t)(old_end - rec_off - sum_old);
    /* old: the records (and the tail and padding header when they move) */
    olen = same ? sum_old : (size_t)(old_end - rec_off) + (last ? 0 : 4);
    nlen = same ? sum_new : (size_t)(new_end - rec_off) + (last ? 0 : 4);
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
    for (unsigned i = 0, at = 0; i < n; at += (unsigned)rec[i].len, i++)
        memcpy(newb + at, rec[i].p, rec[i].len);
    memcpy(newb + sum_new, oldb + sum_old, tail);
    if (!same && !last)
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
        tfs_pwrite_all(f->fd, &iov, 1, rec_off);
        crash_point(3);
    }
    iov = (struct iovec){newb, nlen};
    rc = tfs_pwrite_all(f->fd, &iov, 1, rec_off);
    if (rc == 0 && nr == 2)
        rc = write_gidx(f, g, &nx);
    if (rc == 0 && last && new_end < f->stored_len && ftruncate(f->fd, (off_t)new_end) < 0)
        rc = -errno;
    if (rc < 0)
        goto out;
    crash_point(4);
    tfs_gidx_set(f, g, &nx);
    if (last)
        f->stored_len = new_end;
    else if (new_end < old_end)
        punch(f, new_end + 4, rend);
    if (idx + n == f->valid_n)
        f->last_len = clen;
out:
    free(oldb);
    free(newb);
    return rc;
}
