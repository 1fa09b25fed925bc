/*
 * file.h - an open stored file, for the three files that implement it:
 * file.c (the operations: open, read, write, truncate, flush, release),
 * cache.c (its cache of decompressed chunks and their write-back) and
 * store.c (its stored bytes: group indexes, appending and rewriting chunk
 * records, the undo journal). Nothing else includes it.
 */
#ifndef TINYFS_FILE_H
#define TINYFS_FILE_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

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
    tiny_buf *tb;       /* LOADING: the slot the record was read into, or NULL */
    uint32_t rec_len;   /* LOADING: the record at buf + TFS_CHUNK, or in tb */
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

/* What tfs_cache_get() puts in an entry it takes for a chunk not cached. */
enum {
    FILL_ZEROS,   /* zeros: the caller writes all of a last chunk shorter than TFS_CHUNK */
    FILL_DATA,    /* the chunk's current contents */
    FILL_NOTHING, /* the caller writes all TFS_CHUNK bytes */
};

/* For an operation that may change the file (struct tfs_file). */
static inline void wr_lock(struct tfs_file *f)
{
    pthread_mutex_lock(&f->wlock);
    pthread_mutex_lock(&f->lock);
}

static inline void wr_unlock(struct tfs_file *f)
{
    pthread_mutex_unlock(&f->lock);
    pthread_mutex_unlock(&f->wlock);
}

/* --- store.c: the stored bytes. Every function is called with f->lock
 * held, except where it says otherwise; they return 0 or -errno. */

/* pwritev(2) of all @n (at most 3) buffers at @off, resumed after short writes. */
int tfs_pwrite_all(int fd, const struct iovec *iov, int n, uint64_t off);
/* tfs_pread_full() into @n buffers (at most TFS_GROUP): the bytes read. */
ssize_t tfs_preadv_full(int fd, const struct iovec *iov, int n, uint64_t off);
/* Turns the kernel's read-ahead on the stored file off. */
void tfs_store_random(struct tfs_file *f);
/* The cached index of group @g, or NULL. */
struct gcache *tfs_gidx_find(struct tfs_file *f, uint64_t g);
/* Caches the index @x of group @g. */
void tfs_gidx_set(struct tfs_file *f, uint64_t g, const struct tfs_gidx *x);
/* Forgets the indexes of groups >= @g (they were cut). */
void tfs_gidx_drop(struct tfs_file *f, uint64_t g);
/* What the index of group @g must say, from the file's length: @n chunks,
 * the last of @last bytes. */
void tfs_gidx_expect(const struct tfs_file *f, uint64_t g, uint32_t *n, uint32_t *last);
/* Parses the @got bytes read of a group's index into @x: 0, or -EIO when
 * it is unreadable or does not say @n chunks, the last of @last bytes. */
int tfs_gidx_check(const unsigned char *b, ssize_t got, uint32_t n, uint32_t last,
                   struct tfs_gidx *x);
/* Logs that the index of group @g is corrupt; returns -EIO. */
int tfs_gidx_corrupt(struct tfs_file *f, uint64_t g);
/* The index of group @g for a reader: a missing one is read with the lock
 * dropped. -EAGAIN when the stored file changed meanwhile (start over). */
int tfs_gidx_get_rd(struct tfs_file *f, uint64_t g, struct tfs_gidx *x);
/* Where chunk @idx (< valid_n) is stored: @off, @len bytes. */
int tfs_chunk_loc(struct tfs_file *f, uint64_t idx, uint64_t *off, uint32_t *len);
/* Appends the record of chunk valid_n (the stored file ends with a full
 * chunk). On failure the stored file is as before. */
int tfs_store_append(struct tfs_file *f, const unsigned char *rec, size_t rec_len, uint32_t clen);
/* A record to store: @len bytes at @p. */
struct tfs_rec {
    const unsigned char *p;
    size_t len;
};
/* Rewrites the records of the @n chunks from @idx (< valid_n, all in one
 * group) in place, journalled; @clen is the logical length of the last. */
int tfs_store_rewrite(struct tfs_file *f, uint64_t idx, unsigned n, const struct tfs_rec *rec,
                      uint32_t clen);
/* Keeps the stored chunks [0, @keep) only (chunk keep - 1 must be full). */
int tfs_store_drop(struct tfs_file *f, uint64_t keep);
/* Syncs the file if it rewrote groups in place, and drops its journal
 * entries. */
int tfs_file_journal_sync(struct tfs_file *f);

/* --- cache.c: the decompressed chunks, with f->lock held. */

/* The entry of chunk @idx, or NULL. */
struct entry *tfs_cache_find(struct tfs_file *f, uint64_t idx);
/* Submits the DIRTY entry @e for compression: it becomes BUSY. */
void tfs_cache_submit(struct tfs_file *f, struct entry *e);
/* Waits for the BUSY entry @e and stores its record: it becomes CLEAN, or
 * FREE when the write failed (logged, kept in f->err). */
int tfs_cache_complete(struct tfs_file *f, struct entry *e);
/* tfs_cache_complete() of every BUSY entry, in submission order. */
int tfs_cache_complete_all(struct tfs_file *f);
/* Stores the record of chunk @idx: in place below valid_n, else after the
 * chunks before it (cached ones written back, holes as zero chunks). */
int tfs_cache_write_chunk(struct tfs_file *f, uint64_t idx, const unsigned char *rec,
                          size_t rec_len, uint32_t clen);
/* The entry of chunk @idx, filled as @fill says when it was not cached;
 * waits for it if it is being compressed and @write. A reader (!@write)
 * may drop the lock meanwhile. */
int tfs_cache_get(struct tfs_file *f, uint64_t idx, int write, int fill, struct entry **out);
/* Starts reading and decompressing chunks [@a, @b] not cached, and with
 * @ahead reads the stored data of the next groups ahead. May drop the lock. */
void tfs_cache_prefetch(struct tfs_file *f, uint64_t a, uint64_t b, int ahead);
/* Waits for one LOADING entry (or its owner); 0 if there is none. */
int tfs_cache_wait_load(struct tfs_file *f);
/* Drops the cached chunks from @n on (a truncate): those waiting for
 * write-back are written first, those being loaded are dropped when done. */
void tfs_cache_drop(struct tfs_file *f, uint64_t n);

#endif
