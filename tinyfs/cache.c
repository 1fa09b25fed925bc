/*
 * cache.c - the decompressed chunks of an open file: a small cache that
 * serves reads and absorbs writes, bounded by NENT entries per open file
 * whatever the file size.
 *
 * A written chunk becomes DIRTY; once a write reaches the end of a full
 * chunk (the sequential case) it is submitted to tinyd at once (BUSY) and
 * several such chunks stay in flight, so compression of a stream uses every
 * tinyd worker. A BUSY chunk is completed (waited for and its record
 * stored, store.c) when its cache entry is needed, when a writer touches it
 * again, and at flush. The chunks of a read of several, and for a
 * sequential reader the next READAHEAD ones, are read with one preadv per
 * group (into slots of tinyd's segment while some are free, codec.c) and
 * submitted for decompression at once (LOADING), so reads use every tinyd
 * worker too; the stored data of the next groups is read ahead with fadvise
 * (the kernel's own read-ahead is off on the stored file: it would read the
 * groups' padding holes). Readers hold the file's lock
 * neither while they read the store nor while they wait for tinyd, so the
 * kernel's concurrent read requests overlap (see struct tfs_file in
 * file.h). An entry that a reply is being sent from is pinned: it is not
 * taken for another chunk, and a writer of it waits.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "file.h"

static int ensure_scratch(struct tfs_file *f)
{
    if (!f->scratch)
        f->scratch = malloc(TFS_OUT_CAP);
    return f->scratch ? 0 : -ENOMEM;
}

static void finish_load(struct tfs_file *f, struct entry *e);
static void writeback_failed(struct tfs_file *f, struct entry *e);
static int load(struct tfs_file *f, struct entry *e, uint64_t idx);

/* The last stored chunk is a partial one that the logical file has
 * outgrown: writes it back full before anything is stored after it. */
static int fill_last(struct tfs_file *f)
{
    uint64_t j = f->valid_n - 1;
    struct entry *e = tfs_cache_find(f, j), tmp = {0};
    ssize_t r;
    int rc;

    if (e && (e->state == E_DIRTY || e->state == E_BUSY) && e->len == TFS_CHUNK) {
        if (e->state == E_DIRTY)
            tfs_cache_submit(f, e);
        return tfs_cache_complete(f, e);
    }
    /* not cached (an earlier write-back failed): its stored bytes, then zeros */
    tmp.buf = malloc(TFS_CHUNK + TFS_OUT_CAP);
    if (!tmp.buf)
        return -ENOMEM;
    rc = load(f, &tmp, j);
    if (rc == 0) {
        struct tfs_rec rec = {tmp.buf + TFS_CHUNK, 0};

        r = tfs_compress(tmp.buf, TFS_CHUNK, tmp.buf + TFS_CHUNK, TFS_OUT_CAP);
        if (r < 0 || tfs_record_check(tmp.buf + TFS_CHUNK, (size_t)r, TFS_CHUNK) < 0)
            r = (ssize_t)tfs_raw_record(tmp.buf, TFS_CHUNK, tmp.buf + TFS_CHUNK);
        rec.len = (size_t)r;
        rc = tfs_store_rewrite(f, j, 1, &rec, TFS_CHUNK);
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
        struct entry *e = tfs_cache_find(f, before);

        if (e && (e->state == E_DIRTY || e->state == E_BUSY)) {
            if (e->state == E_DIRTY)
                tfs_cache_submit(f, e);
            rc = tfs_cache_complete(f, e);
        } else {
            const unsigned char *rec;
            ssize_t r = ensure_scratch(f);

            if (r == 0)
                r = tfs_zero_record(TFS_CHUNK, &rec, f->scratch);
            rc = r < 0 ? (int)r : tfs_store_append(f, rec, (size_t)r, TFS_CHUNK);
        }
        if (rc == 0 && f->valid_n == before)
            rc = -EIO;
    }
    return rc;
}

/* Writes the record of chunk @idx, keeping the stored file a valid stream
 * at every step (docs/format.md, "Crash safety"). */
int tfs_cache_write_chunk(struct tfs_file *f, uint64_t idx, const unsigned char *rec,
                          size_t rec_len, uint32_t clen)
{
    int rc;

    if (idx < f->valid_n) {
        struct tfs_rec r = {rec, rec_len};

        return tfs_store_rewrite(f, idx, 1, &r, clen);
    }
    rc = fill_to(f, idx);
    return rc < 0 ? rc : tfs_store_append(f, rec, rec_len, clen);
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

    rc = tfs_chunk_loc(f, idx, &off, &rec);
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
    struct gcache *c = tfs_gidx_find(f, g);
    unsigned char b[TFS_GIDX_LEN];
    struct tfs_gidx x;
    const char *why = NULL;
    int rc = 0, dec = 0, have = c != NULL;

    if (have)
        x = c->x;
    else
        tfs_gidx_expect(f, g, &n, &last);
    e->idx = idx;
    e->len = clen;
    e->state = E_LOADING;
    e->owned = 1;
    e->stale = 0;
    e->req = NULL;
    pthread_mutex_unlock(&f->lock);
    if (!have)
        rc = tfs_gidx_check(b, tfs_pread_full(f->fd, b, sizeof(b), tfs_group_off(g)), n, last, &x);
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
        return tfs_gidx_corrupt(f, g);
    if (!have)
        tfs_gidx_set(f, g, &x);
    if (rc < 0)
        return fetch_failed(f, idx, off, rc, why, dec);
    e->state = E_CLEAN;
    return 0;
}

struct entry *tfs_cache_find(struct tfs_file *f, uint64_t idx)
{
    for (int i = 0; i < NENT; i++)
        if (f->ent[i].state != E_FREE && f->ent[i].idx == idx)
            return &f->ent[i];
    return NULL;
}

void tfs_cache_submit(struct tfs_file *f, struct entry *e)
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

/* Waits for the compression of the BUSY entry @e; it becomes CLEAN, its
 * record at e->buf + TFS_CHUNK. Without tinyd the chunk is stored
 * uncompressed: still a valid stream, never an error. */
static struct tfs_rec compressed(struct entry *e)
{
    unsigned char *out = e->buf + TFS_CHUNK;
    ssize_t r = tfs_compress_wait(e->req, e->buf, e->len, out, TFS_OUT_CAP);

    e->req = NULL;
    e->state = E_CLEAN;
    if (r < 0 || tfs_record_check(out, (size_t)r, e->len) < 0)
        r = (ssize_t)tfs_raw_record(e->buf, e->len, out);
    return (struct tfs_rec){out, (size_t)r};
}

/* Waits for a BUSY entry and writes its record; it becomes CLEAN, or FREE
 * when the write failed. A rewrite in place takes the BUSY chunks that
 * follow it in its group along: an overwrite then journals and syncs each
 * group once, not once per chunk. */
int tfs_cache_complete(struct tfs_file *f, struct entry *e)
{
    struct entry *run[TFS_GROUP] = {e};
    struct tfs_rec rec[TFS_GROUP];
    unsigned n = 1;
    int rc;

    for (uint64_t j = e->idx + 1; e->idx < f->valid_n && j % TFS_GROUP && j < f->valid_n; j++) {
        struct entry *x = tfs_cache_find(f, j);

        if (!x || x->state != E_BUSY)
            break;
        run[n++] = x;
    }
    for (unsigned i = 0; i < n; i++)
        rec[i] = compressed(run[i]);
    if (e->idx < f->valid_n)
        rc = tfs_store_rewrite(f, e->idx, n, rec, run[n - 1]->len);
    else
        rc = tfs_cache_write_chunk(f, e->idx, rec[0].p, rec[0].len, e->len);
    if (rc < 0) {
        if (n > 1)
            tfs_log("%s: cannot write chunks %llu-%llu: %s", f->name, (unsigned long long)e->idx,
                    (unsigned long long)(e->idx + n - 1), tiny_errno_text(-rc));
        else
            tfs_log("%s: cannot write chunk %llu: %s", f->name, (unsigned long long)e->idx,
                    tiny_errno_text(-rc));
        if (!f->err)
            f->err = rc;
        for (unsigned i = 0; i < n; i++)
            writeback_failed(f, run[i]);
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

int tfs_cache_complete_all(struct tfs_file *f)
{
    struct entry *e;
    int rc = 0;

    while ((e = oldest_busy(f, 0))) {
        int r = tfs_cache_complete(f, e);

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
    if (e->tb) {
        /* in its slot; on failure the slot may hold neither record nor
         * chunk, and the synchronous load reads it again */
        d = tfs_dbuf_wait(e->tb, req, e->buf, e->len);
        tfs_dbuf_put(e->tb);
        e->tb = NULL;
    } else {
        d = tfs_decompress_wait(req, e->buf + TFS_CHUNK, e->rec_len, e->buf, TFS_CHUNK);
    }
    if (d == (ssize_t)e->len && e->len < TFS_CHUNK)
        memset(e->buf + e->len, 0, TFS_CHUNK - e->len);
    pthread_mutex_lock(&f->lock);
    e->owned = 0;
    e->state = d == (ssize_t)e->len && !e->stale ? E_CLEAN : E_FREE;
    pthread_cond_broadcast(&f->cond);
}

/* Waits for one LOADING entry (or for its owner); 0 if there is none. */
int tfs_cache_wait_load(struct tfs_file *f)
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
void tfs_cache_prefetch(struct tfs_file *f, uint64_t a, uint64_t b, int ahead)
{
    struct entry *list[NENT];
    int how[NENT]; /* 0: nothing read (a synchronous load reports why), 1: decoded, 2: in tinyd */
    uint64_t ra[AHEAD_G + 1][2], gen; /* stored ranges to read ahead */
    struct tfs_gidx x;
    int n = 0, nra = 0;

    /* the indexes first (may drop the lock: the file may shrink meanwhile) */
    for (uint64_t g = a / TFS_GROUP; g <= b / TFS_GROUP; g++)
        if (g * TFS_GROUP >= f->valid_n || tfs_gidx_get_rd(f, g, &x) < 0)
            break;
    if (ahead) {
        /* the stored data of the next groups (their indexes were read
         * ahead before), and the index of the one after */
        uint64_t g0 = b / TFS_GROUP + 1, g;

        if (f->ra_g < g0 || f->ra_g > g0 + AHEAD_G)
            f->ra_g = g0;
        for (g = f->ra_g; g < g0 + AHEAD_G && g * TFS_GROUP < f->valid_n; g++) {
            if (tfs_gidx_get_rd(f, g, &x) < 0)
                break;
            ra[nra][0] = tfs_group_off(g);
            ra[nra++][1] = tfs_group_end(g, &x) - tfs_group_off(g);
            f->ra_g = g + 1;
        }
        if (g == g0 + AHEAD_G && g * TFS_GROUP < f->valid_n && !tfs_gidx_find(f, g)) {
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
        struct entry *e = tfs_cache_find(f, i);

        if (e && e->state == E_CLEAN)
            e->lru = ++f->tick;
    }
    for (uint64_t i = a; i <= b && n < NENT; i++) {
        struct gcache *c = tfs_gidx_find(f, i / TFS_GROUP);
        uint32_t k = (uint32_t)(i % TFS_GROUP);
        struct entry *e;

        if (tfs_cache_find(f, i))
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
            struct entry *e = list[i + j];
            unsigned char *dst = e->buf + TFS_CHUNK;

            tfs_dbuf_get(&e->tb, &dst, e->rec_len);
            iov[j] = (struct iovec){dst, e->rec_len};
            total += list[i + j]->rec_len;
            j++;
        } while (i + j < n && j < (int)TFS_GROUP && list[i + j]->idx == list[i + j - 1]->idx + 1 &&
                 list[i + j]->off == list[i + j - 1]->off + list[i + j - 1]->rec_len);
        got = tfs_preadv_full(f->fd, iov, j, list[i]->off);
        for (int k = i; k < i + j; k++) {
            struct entry *e = list[k];
            const unsigned char *rec = iov[k - i].iov_base;
            int raw;

            how[k] = 0;
            if (got == (ssize_t)total &&
                tfs_chunk_parse(rec, e->rec_len, e->len, e->buf, &raw) == 0) {
                if (raw && e->len < TFS_CHUNK)
                    memset(e->buf + e->len, 0, TFS_CHUNK - e->len);
                how[k] = raw ? 1 : 2;
            }
            if (how[k] == 2 && e->tb && tfs_dbuf_submit(e->tb, e->rec_len, &e->req) < 0)
                how[k] = 0; /* a synchronous load reads it again */
            if (how[k] != 2) {
                tfs_dbuf_put(e->tb);
                e->tb = NULL;
            } else if (!e->tb) {
                tfs_decompress_submit(e->buf + TFS_CHUNK, e->rec_len, e->buf, TFS_CHUNK, &e->req);
            }
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

/* The cache entry of chunk @idx, filled as @fill says when it was not
 * cached; waits for it if it is being compressed and @write. A reader
 * (!@write) may drop the lock meanwhile. */
int tfs_cache_get(struct tfs_file *f, uint64_t idx, int write, int fill, struct entry **out)
{
    int locked = write;

    for (;;) {
        struct entry *e = tfs_cache_find(f, idx);
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
                tfs_cache_complete(f, e);
            if (write)
                e->wwait = 0;
            e->lru = ++f->tick;
            *out = e;
            return 0;
        }
        e = pick_entry(f);
        if (!e && tfs_cache_wait_load(f))
            continue;
        if (!e) {
            /* at most PIN_MAX of the NENT entries are pinned */
            e = oldest_busy(f, 1);
            if (e) {
                tfs_cache_complete(f, e);
            } else {
                /* everything dirty: write the least recently used back */
                for (int i = 0; i < NENT; i++)
                    if (!f->ent[i].pins && (!e || f->ent[i].lru < e->lru))
                        e = &f->ent[i];
                tfs_cache_submit(f, e);
                tfs_cache_complete(f, e);
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

/* Drops the cached chunks from @n on (a truncate): those waiting for
 * write-back are written first, those being loaded are dropped when done. */
void tfs_cache_drop(struct tfs_file *f, uint64_t n)
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
            tfs_cache_complete(f, x);
        x->state = E_FREE;
    }
}
