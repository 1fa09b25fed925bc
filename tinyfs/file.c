/*
 * file.c - the state of an open stored file, shared by every FUSE handle of
 * the same stored inode (so hard links and several opens see one file),
 * and the operations on it: open and release (a registry by device and
 * inode), read, write, truncate, flush, fsync, fallocate.
 *
 * The chunks themselves are in cache.c (decompressed, with their
 * write-back through tinyd) and store.c (their stored records); file.h
 * holds the state and says how it is locked. A read is answered from the
 * cache entries themselves (tfs_rd): they stay pinned until the reply is
 * sent, and a writer of one waits for that, so a reply never mixes two
 * versions. A chunk decoded for a read that is not sequential is offered
 * whole to pagecache.c, for the kernel's page cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "file.h"

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tfs_file *reg; /* open files, under reg_lock */

/* The file grows to @size: a partial last chunk becomes longer. */
static int grow(struct tfs_file *f, uint64_t size)
{
    struct entry *e;
    int rc;

    if (f->size % TFS_CHUNK) {
        uint64_t k = f->size / TFS_CHUNK;

        rc = tfs_cache_get(f, k, 1, FILL_DATA, &e);
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
        tfs_cache_submit(f, e);
    }
    tfs_cache_complete_all(f);
    n = tfs_nchunks(f->size);
    if (!f->err && f->valid_n < n) {
        /* the file was extended by truncate: zeros up to the logical size */
        unsigned char *scratch = malloc(TFS_OUT_CAP);
        uint32_t clen = tfs_chunk_len(n - 1, f->size);
        const unsigned char *rec;
        ssize_t r = scratch ? tfs_zero_record(clen, &rec, scratch) : -ENOMEM;

        rc = r < 0 ? (int)r : tfs_cache_write_chunk(f, n - 1, rec, (size_t)r, clen);
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
    rc = tfs_file_journal_sync(f);
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
            rc = tfs_pwrite_all(f->fd, &iov, 1, 0);
            if (rc < 0)
                return rc;
            f->plain = 0;
            f->gen++;
            tfs_store_random(f);
            tfs_gidx_drop(f, 0);
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

        tfs_cache_drop(f, n);
        /* the new last chunk's bytes, before its record goes */
        if (len) {
            rc = tfs_cache_get(f, n - 1, 1, FILL_DATA, &e);
            if (rc < 0)
                return rc;
            tfs_cache_drop(f, n); /* readers may have cached some again meanwhile */
        }
        /* whole chunks go from the end: every step is a valid shorter stream */
        keep = len ? n - 1 : n;
        if (f->valid_n > keep) {
            rc = tfs_store_drop(f, keep);
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
            tfs_cache_prefetch(f, first, last + (seq ? READAHEAD : 0), seq);
        if (!seq || off + size > f->next_off)
            f->next_off = off + size;
    }
    while (done < size) {
        uint64_t pos = off + done, idx = pos / TFS_CHUNK;
        uint32_t a = (uint32_t)(pos % TFS_CHUNK);
        size_t n = TFS_CHUNK - a < size - done ? TFS_CHUNK - a : size - done;
        struct entry *e = tfs_cache_find(f, idx);
        /* one piece more, and the last one may have to be a copy */
        int room = rd->n < TFS_RD_IOV - 1;

        if (!e && idx >= f->valid_n) {
            rc = room ? (rd_add(rd, zeros, n), 0) : rd_copy(rd, size, done, zeros, n);
            if (rc < 0)
                goto out;
        } else {
            /* decoded for this read: its other pages can go to the kernel */
            int decoded = !e || e->state == E_LOADING, r = tfs_cache_get(f, idx, 0, FILL_DATA, &e);

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

/* Writes @size bytes at @off into the cache: those at @buf, or zeros when
 * @buf is NULL; the file already covers them. Returns @size, or a negative
 * errno when a chunk could not be had or a write-back failed meanwhile
 * (that error is then reported once). With @partial, a failure after some
 * bytes returns their count instead, as write(2) does, and its error is
 * reported by the next call. */
static int64_t put_locked(struct tfs_file *f, const char *buf, uint64_t size, uint64_t off,
                          int partial)
{
    uint64_t done = 0;

    while (done < size) {
        uint64_t pos = off + done, idx = pos / TFS_CHUNK;
        uint32_t a = (uint32_t)(pos % TFS_CHUNK);
        size_t n = TFS_CHUNK - a < size - done ? TFS_CHUNK - a : (size_t)(size - done);
        uint32_t clen = tfs_chunk_len(idx, f->size);
        int fill = a > 0 || n < clen ? FILL_DATA : n == TFS_CHUNK ? FILL_NOTHING : FILL_ZEROS;
        struct entry *e;
        int r = tfs_cache_get(f, idx, 1, fill, &e);

        if (r == 0 && f->err) {
            /* a write-back failed meanwhile: stop here, report it */
            r = f->err;
            if (!done || !partial)
                f->err = 0;
        }
        if (r < 0)
            return partial && done ? (int64_t)done : r;
        if (buf)
            memcpy(e->buf + a, buf + done, n);
        else
            memset(e->buf + a, 0, n);
        e->len = clen;
        e->state = E_DIRTY;
        if (a + n == TFS_CHUNK)
            tfs_cache_submit(f, e); /* a full chunk just completed: compress it now */
        done += n;
    }
    return (int64_t)done;
}

/* 0 if @f can be written; else the error to report (a failed write-back is
 * reported once). A plain file is never torn. */
static int writable_locked(struct tfs_file *f)
{
    int rc = f->err;

    if (rc) {
        /* a write-back failed (a full disk): report it now, once */
        f->err = 0;
        return rc;
    }
    return f->torn ? -EIO : 0; /* its end could not be repaired (logged at open) */
}

ssize_t tfs_file_write(struct tfs_file *f, const char *buf, size_t size, uint64_t off, int append)
{
    ssize_t rc = 0;
    uint64_t end;

    wr_lock(f);
    rc = writable_locked(f);
    if (rc < 0)
        goto out;
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
        rc = tfs_pwrite_all(f->fd, &iov, 1, off);
        rc = rc < 0 ? rc : (ssize_t)size;
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
    rc = (ssize_t)put_locked(f, buf, size, off, 1);
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
    uint64_t end = off + len;
    int rc = 0;

    wr_lock(f);
    if (f->plain) {
        rc = fallocate(f->fd, mode, (off_t)off, (off_t)len) < 0 ? -errno : 0;
        goto out;
    }
    if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
        rc = -EOPNOTSUPP;
        goto out;
    }
    if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
        /* A hole is stored as chunks of zeros, as a sparse file's gaps
         * are: about 3 KiB each once compressed. */
        rc = writable_locked(f);
        if (rc == 0 && off < f->size) {
            int64_t w = put_locked(f, NULL, (end < f->size ? end : f->size) - off, off, 0);
            rc = w < 0 ? (int)w : 0;
        }
        if (rc < 0)
            goto out;
    }
    if (!(mode & FALLOC_FL_KEEP_SIZE) && end > f->size)
        rc = truncate_locked(f, end);
out:
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
            tfs_gidx_set(f, t.g, &t.idx);
        tfs_store_random(f);
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
                tfs_store_random(f);
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
    while (tfs_cache_wait_load(f))
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
