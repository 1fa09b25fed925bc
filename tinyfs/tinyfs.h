/*
 * tinyfs.h - internal declarations shared by the files of tinyfs, the FUSE
 * filesystem that keeps every regular file of a store directory as a snappy
 * framing-format stream compressed by tinyd. Not installed.
 *
 *   format.c  the stored layout (docs/format.md): pure arithmetic and parsing
 *   journal.c the undo journal of in-place rewrites and its replay
 *   codec.c   the connection to tinyd: chunk compress/decompress, reconnects
 *   file.c    open files: state (file.h), read, write, truncate, flush
 *   cache.c   an open file's decompressed chunks: read-ahead, write-back
 *   store.c   an open file's stored bytes: indexes, appends, rewrites
 *   inode.c   the kernel's inodes: one per stored object
 *   ops.c     the FUSE operations (low-level interface)
 *   main.c    options, starting tinyd, mounting
 */
#ifndef TINYFS_H
#define TINYFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "format.h" /* tiny_errno_text(), the errno text of the messages */
#include "tiny.h"

/* ---- format.c: the stored layout (version 2, docs/format.md) ---- */

#define TFS_CHUNK      65536u /* logical bytes per chunk (the framing maximum) */
#define TFS_HDR_TYPE   0xa1u  /* skippable chunk type of the tinyfs header */
#define TFS_HDR_BODY   24u    /* its body length */
#define TFS_HDR_LEN    38u    /* stream identifier (10) + header chunk (4 + 24) */
#define TFS_VERSION    2u
#define TFS_RECORD_MAX (TFS_CHUNK + 8u) /* largest data chunk tinyfs writes */
#define TFS_PAD_TYPE   0xfeu
#define TFS_GROUP      16u   /* chunks per group (1 MiB of logical bytes) */
#define TFS_GIDX_TYPE  0xa2u /* skippable chunk type of a group index */
#define TFS_GIDX_BODY  76u   /* count, last chunk length, 16 record lengths, CRC */
#define TFS_GIDX_LEN   80u   /* the index chunk with its header */
/* stored bytes of a group region: index, 16 records of at most 64 KiB + 8,
 * padding chunk header */
#define TFS_GSPACE       (TFS_GIDX_LEN + TFS_GROUP * TFS_RECORD_MAX + 4u)
#define TFS_OUT_CAP      (80u << 10) /* output buffer of one CHUNK_COMPRESS */
#define TFS_XATTR_STORED "user.tinyfs.stored_size"
#define TFS_XATTR_FORMAT "user.tinyfs.format"

/* A group index: how many chunks the group holds, the logical length of its
 * last one (the others are full) and the record length of each. */
struct tfs_gidx {
    uint32_t n;
    uint32_t last_clen;
    uint32_t rec[TFS_GROUP];
};

/* Writes the TFS_HDR_LEN bytes that start every tinyfs stored file. */
void tfs_header_build(unsigned char *p);

/* Classifies the first @n bytes of a stored file: 1 = tinyfs format,
 * 0 = a plain file (served as it is), -EPROTONOSUPPORT = a tinyfs header of
 * another version (tfs_header_version says which), -EBADMSG = a tinyfs
 * header with a bad CRC. Pure. */
int tfs_header_parse(const unsigned char *p, size_t n);

/* The format version a tinyfs header states (0 if @p is none). Pure. */
uint32_t tfs_header_version(const unsigned char *p, size_t n);

/* Number of chunks of a file of @size logical bytes. */
uint64_t tfs_nchunks(uint64_t size);

/* Logical length of chunk @idx in a file of @size bytes (0 if beyond). */
uint32_t tfs_chunk_len(uint64_t idx, uint64_t size);

/* Offset of group @g's region (its index chunk) in the stored file. */
static inline uint64_t tfs_group_off(uint64_t g)
{
    return TFS_HDR_LEN + g * (uint64_t)TFS_GSPACE;
}

/* The group whose region holds the end of a stored file of @stored
 * (> TFS_HDR_LEN) bytes: its last group. Pure. */
uint64_t tfs_last_group(uint64_t stored);

/* Writes the TFS_GIDX_LEN bytes of the index chunk of @x. */
void tfs_gidx_build(unsigned char *p, const struct tfs_gidx *x);

/* Parses the index chunk at @p (@n bytes available) into @x: 0, or
 * -EBADMSG when it is not a well-formed index with a good CRC (wrong type,
 * count or lengths). Pure. */
int tfs_gidx_parse(const unsigned char *p, size_t n, struct tfs_gidx *x);

/* Stored bytes of the first @k records of @x. */
uint64_t tfs_gidx_sum(const struct tfs_gidx *x, uint32_t k);

/* End of group @g's data (index and records) in the stored file. */
static inline uint64_t tfs_group_end(uint64_t g, const struct tfs_gidx *x)
{
    return tfs_group_off(g) + TFS_GIDX_LEN + tfs_gidx_sum(x, x->n);
}

/* Logical size of a file whose last group is @g with index @x. */
static inline uint64_t tfs_group_size(uint64_t g, const struct tfs_gidx *x)
{
    return (g * TFS_GROUP + x->n - 1) * (uint64_t)TFS_CHUNK + x->last_clen;
}

/* Writes into @p the 4-byte header of a padding chunk of @body bytes. */
void tfs_pad_build(unsigned char *p, uint32_t body);

/* Checks the stored data chunk @rec of @rec_len bytes holding a chunk of
 * @clen logical bytes: types, lengths, the snappy preamble of a compressed
 * one; an uncompressed one also has its CRC checked and its payload copied
 * to @out (*is_raw = 1). Returns 0 or -EBADMSG (the caller logs). Pure. */
int tfs_chunk_parse(const unsigned char *rec, size_t rec_len, uint32_t clen, unsigned char *out,
                    int *is_raw);

/* The logical length a stored record claims (snappy preamble or raw
 * length), 0 if it claims nothing sensible. Pure. */
uint32_t tfs_record_clen(const unsigned char *rec, size_t avail);

/* Writes into @out (>= @len + 8 bytes) the uncompressed data chunk of the
 * @len bytes at @in, as stored when tinyd is unavailable; returns its length. */
size_t tfs_raw_record(const void *in, uint32_t len, unsigned char *out);

/* Checks that a framed data chunk produced for @clen bytes is well formed:
 * 0 or -EBADMSG. */
int tfs_record_check(const unsigned char *rec, size_t rec_len, uint32_t clen);

/* ---- measure.c: a stored file's shape, from its headers ---- */

/* pread() of @len bytes at @off, retried until complete, EOF or an error:
 * the bytes read (fewer only at EOF) or -errno. */
ssize_t tfs_pread_full(int fd, void *buf, size_t len, uint64_t off);

/* Where a stored file ends (tfs_locate). */
struct tfs_tail {
    uint64_t size;       /* logical size (after the repair, if torn) */
    uint64_t nchunks;    /* chunks stored (after the repair) */
    uint64_t keep;       /* stored length (to cut the file to, if torn) */
    uint64_t g;          /* the last group (when nchunks > 0) */
    struct tfs_gidx idx; /* and its index */
    int torn;            /* the file ends inside a write: cut it to keep */
    int fix_idx;         /* ... after writing idx as group g's index */
    int damaged;         /* the last group's index is unreadable: size counts the groups before */
};

/* Finds the logical size of the tinyfs file open as @fd of @stored bytes
 * (its header checked) from the index of its last group, and whether its
 * end is torn (a crash inside an append): *t then says how to cut it back to
 * a valid stream holding a prefix of the data (tfs_tail_repair does it).
 * Returns 0, or -errno of a failed read. */
int tfs_locate(int fd, uint64_t stored, struct tfs_tail *t);

/* Applies the repair tfs_locate found for a torn end: 0 or -errno. */
int tfs_tail_repair(int fd, const struct tfs_tail *t);

/* Reads the logical size and the stored bytes (header, group indexes,
 * records and padding headers, not the padding holes) of the stored file
 * open as @fd. Returns 0, -ENODATA for a file not in tinyfs's format, -EIO
 * or -errno. */
int tfs_measure(int fd, uint64_t *logical, uint64_t *stored);

/* ---- journal.c: the undo journal of in-place chunk rewrites ---- */

#define TFS_JOURNAL         ".tinyfs-journal" /* in the store's root, hidden by the mount */
#define TFS_JOURNAL_FIXED   64u               /* fixed part of an entry */
#define TFS_JOURNAL_RANGE   20u /* per byte range: offset, old and new lengths, new CRC */
#define TFS_JOURNAL_MAXR    4u  /* byte ranges per entry */
#define TFS_JOURNAL_UNDO    1
#define TFS_JOURNAL_BARRIER 2 /* the file's earlier entries are void (it was synced) */

/* One byte range a journalled rewrite changes: @old_len bytes at @off held
 * @old before, @new_len bytes @new after. */
struct tfs_jrange {
    uint64_t off;
    uint32_t old_len, new_len;
    const unsigned char *old, *new_;
};

/* Builds into @p (tfs_journal_len() bytes) a journal entry: before group
 * @key (its region offset) of the stored file @path (inode @ino, stored
 * length @old_stored; @last: the group is the file's last) is rewritten,
 * the @nr (<= TFS_JOURNAL_MAXR) ranges @r held their old bytes; a rewrite
 * undone leaves [@hole_a, @hole_b) a hole again. A barrier has no ranges.
 * Returns the entry length. Pure. */
size_t tfs_journal_build(unsigned char *p, int type, uint64_t ino, const char *path, uint64_t key,
                         uint64_t old_stored, int last, uint64_t hole_a, uint64_t hole_b,
                         const struct tfs_jrange *r, unsigned nr);

/* Length of the entry tfs_journal_build() makes of these. */
size_t tfs_journal_len(const char *path, const struct tfs_jrange *r, unsigned nr);

/* Replays the journal of the store @storefd: every group whose newest
 * journalled rewrite did not complete gets its old bytes back (with
 * @repair; then the journal is emptied), each named through @say. Returns
 * the number of such groups, or -errno. Not thread-safe: before mounting. */
int tfs_journal_replay(int storefd, int repair, void (*say)(const char *fmt, ...));

/* ---- codec.c: tinyd ---- */

/* Starts tinyd if none answers on the default run directory. 0 or -errno;
 * prints its own diagnostics to stderr. Called before mounting. */
int tfs_codec_ensure_daemon(const char *argv0);
/* How long a read waits for tinyd to come back before failing with EIO. */
void tfs_codec_set_wait(unsigned ms);
/* Connects (in the filesystem process, after daemonizing). */
int tfs_codec_init(void);
void tfs_codec_fini(void);

/* One 64 KiB chunk -> one framed data chunk in @out (cap >= TFS_RECORD_MAX),
 * through tinyd. Returns the record length or -errno. Blocking. */
ssize_t tfs_compress(const void *in, size_t len, void *out, size_t cap);
/* Asynchronous version: *req to pass to tfs_compress_wait(). */
int tfs_compress_submit(const void *in, size_t len, void *out, size_t cap, tiny_req **req);
ssize_t tfs_compress_wait(tiny_req *req, const void *in, size_t len, void *out, size_t cap);
/* One framed data chunk -> its payload (exactly @clen bytes expected).
 * Returns the payload length or -errno (-EBADMSG for corrupt data). */
ssize_t tfs_decompress(const void *rec, size_t rec_len, void *out, size_t cap);
/* Asynchronous version, for read-ahead. */
int tfs_decompress_submit(const void *rec, size_t rec_len, void *out, size_t cap, tiny_req **req);
ssize_t tfs_decompress_wait(tiny_req *req, const void *rec, size_t rec_len, void *out, size_t cap);
/* Zero-copy decompression of a record: tfs_dbuf_get() lends a slot to read
 * a record of @need bytes into (*@in), or fails (-EAGAIN when none is free:
 * the record then takes tfs_decompress_submit()); tfs_dbuf_submit()
 * decompresses it there; tfs_dbuf_wait() waits and copies the chunk of @len
 * bytes into @out, returning the decompressed length or -errno (the slot
 * then holds neither record nor chunk: read the record again);
 * tfs_dbuf_put() gives the slot back (accepts NULL). Thread-safe. */
int tfs_dbuf_get(tiny_buf **b, unsigned char **in, size_t need);
int tfs_dbuf_submit(tiny_buf *b, size_t rec_len, tiny_req **req);
ssize_t tfs_dbuf_wait(tiny_buf *b, tiny_req *req, void *out, size_t len);
void tfs_dbuf_put(tiny_buf *b);
/* The record of a chunk of @len zero bytes; NULL-free: returns its length
 * and sets *rec to shared read-only memory, or -errno. */
ssize_t tfs_zero_record(uint32_t len, const unsigned char **rec, unsigned char *scratch);

/* ---- inode.c: the kernel's inodes ---- */

/* A stored object the kernel knows, by its node id (tfs_inode_id). */
struct tfs_inode {
    int fd;    /* O_PATH | O_NOFOLLOW descriptor of the stored object */
    dev_t dev; /* its identity in the store */
    ino_t ino;
    mode_t type;      /* S_IFMT bits */
    uint64_t nlookup; /* the kernel's references (lookups not yet forgotten) */
    unsigned writers; /* open handles that may write (pagecache.c's lock) */
    struct tfs_inode *next;
};

#define TFS_PROC_PATH 32 /* "/proc/self/fd/N" */

/* Opens the store's root as the root inode. 0 or -errno. Before mounting. */
int tfs_inode_init(int storefd);
/* Closes every inode (at unmount, after the last request). */
void tfs_inode_fini(void);
/* The inode of a node id the kernel sent, and the node id of an inode. */
struct tfs_inode *tfs_inode_get(uint64_t id);
uint64_t tfs_inode_id(const struct tfs_inode *i);
int tfs_inode_is_root(const struct tfs_inode *i);
/* Finds @name in the directory @parent: fills @st (lstat) and *out, taking
 * one lookup reference (the kernel's, or the caller's to forget). 0 or
 * -errno. Thread-safe. */
int tfs_inode_lookup(struct tfs_inode *parent, const char *name, struct stat *st,
                     struct tfs_inode **out);
/* Takes one more lookup reference, for the caller to forget. Thread-safe. */
void tfs_inode_hold(struct tfs_inode *i);
/* Drops @n lookup references; the last frees @i. Thread-safe. */
void tfs_inode_forget(struct tfs_inode *i, uint64_t n);
/* "/proc/self/fd/N" of @i: opening it reopens the object itself. */
void tfs_inode_path(const struct tfs_inode *i, char buf[TFS_PROC_PATH]);
/* The current path of @i: absolute, or relative to the store with @rel (for
 * log lines and the journal). 0 or -errno. */
int tfs_inode_name(const struct tfs_inode *i, char *buf, size_t size, int rel);

/* ---- file.c: open files ---- */

struct tfs_file;

/* Opens the stored file @path (relative to @dirfd) for a FUSE open with
 * @flags, sharing one state per stored inode. @create: the file was just
 * created empty. @name: its path in the store, for log lines and the
 * journal. */
int tfs_file_open(int dirfd, const char *path, const char *name, int flags, int create,
                  struct tfs_file **f);
void tfs_file_release(struct tfs_file *f);
/* The bytes of a read, for fuse_reply_iov(): pieces of the file's cache of
 * decoded chunks, kept as they are (pinned) until tfs_file_read_done(), and
 * of a buffer of copies. A 1 MiB read spans 17 chunks; a longer one is
 * answered partly from copies. */
#define TFS_RD_IOV 20
struct tfs_rd {
    struct iovec iov[TFS_RD_IOV];
    int n;
    unsigned char pin[TFS_RD_IOV]; /* the pinned cache entries */
    int npin;
    char *spill; /* the copies */
};
/* Reads up to @size bytes at @off into @rd; returns the count or -errno.
 * Whatever it returns, tfs_file_read_done() must follow, once the reply
 * has been sent: writers of the pinned chunks wait for it. A chunk decoded
 * for a non-sequential read is offered to tfs_pc_offer() for the kernel
 * inode @i (NULL: not). */
ssize_t tfs_file_read(struct tfs_file *f, struct tfs_inode *i, size_t size, uint64_t off,
                      struct tfs_rd *rd);
/* Releases what tfs_file_read() kept for @rd. The kernel may release the
 * file once the reply is sent; its last tfs_file_release() waits for this. */
void tfs_file_read_done(struct tfs_file *f, struct tfs_rd *rd);
ssize_t tfs_file_write(struct tfs_file *f, const char *buf, size_t size, uint64_t off, int append);
int tfs_file_truncate(struct tfs_file *f, uint64_t size);
int tfs_file_flush(struct tfs_file *f);
int tfs_file_fsync(struct tfs_file *f, int datasync);
int tfs_file_fd(struct tfs_file *f);
int tfs_file_fstat(struct tfs_file *f, struct stat *st);
int tfs_file_fallocate(struct tfs_file *f, int mode, uint64_t off, uint64_t len);

/* If the stored inode is open, flushes it (before timestamps are set) and
 * fills st_size; returns 1 if found, 0 if not. */
int tfs_file_by_inode(dev_t dev, ino_t ino, int flush, uint64_t *size);

/* Fixes up @st (an lstat of the stored object @i) to logical values:
 * st_size of an open or tinyfs-format file. */
void tfs_stat_fixup(const struct tfs_inode *i, struct stat *st);

/* ---- pagecache.c: the decoded chunks of random reads for the kernel ---- */

struct fuse_session;

/* Starts the thread that stores chunks into the kernel's page cache of @se's
 * mount; 0 or -errno (then nothing is stored, which is only slower). */
int tfs_pc_start(struct fuse_session *se);
/* Stores what is queued and stops the thread; before unmounting. */
void tfs_pc_stop(void);
/* Queues a copy of the @len bytes at @data, the chunk at file offset @off
 * of @i, for the kernel's page cache, except the pages of [@a, @b) (those
 * the read being answered returns), unless a handle that may write @i is
 * open or the queue is full. Does not block on the kernel. */
void tfs_pc_offer(struct tfs_inode *i, uint64_t off, const unsigned char *data, uint32_t len,
                  uint32_t a, uint32_t b);
/* A handle that may write @i is being opened: drops the stores queued for
 * @i and offers none until tfs_pc_writer_done(). Returns 0 when no store to
 * @i is in progress (the caller goes on), 1 when @then(@arg) will run on
 * the store thread once that store is done (the caller must not wait for
 * it in a FUSE worker: the store may wait for a read that needs one), or
 * -ENOMEM (nothing counted). */
int tfs_pc_writer(struct tfs_inode *i, void (*then)(void *), void *arg);
/* Has the kernel drop its cached pages of @i, soon, from the page-cache
 * thread: a change of the file failed, and they may hold bytes that were
 * not stored. */
void tfs_pc_inval(struct tfs_inode *i);
void tfs_pc_writer_done(struct tfs_inode *i);

/* At unmount: closes the journal and removes it when no entry is live. */
void tfs_file_journal_close(void);

/* Log a line (syslog when daemonized, stderr in the foreground). */
void tfs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

extern int tfs_foreground;
extern int tfs_store_fd;           /* the store directory */
extern const char *tfs_store_path; /* and its absolute path */

#endif /* TINYFS_H */
