/*
 * tinyfs.h - internal declarations shared by the files of tinyfs, the FUSE
 * filesystem that keeps every regular file of a store directory as a snappy
 * framing-format stream compressed by tinyd. Not installed.
 *
 *   format.c  the stored layout (docs/format.md): pure arithmetic and parsing
 *   journal.c the undo journal of in-place rewrites and its replay
 *   codec.c   the connection to tinyd: chunk compress/decompress, reconnects
 *   file.c    open-file state: chunk cache, dirty chunks, write-back
 *   ops.c     the FUSE operations
 *   main.c    options, starting tinyd, mounting
 */
#ifndef TINYFS_H
#define TINYFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "tiny.h"

/* ---- format.c: the stored layout ---- */

#define TFS_CHUNK        65536u /* logical bytes per chunk (the framing maximum) */
#define TFS_HDR_TYPE     0xa1u  /* skippable chunk type of the tinyfs header */
#define TFS_HDR_BODY     24u    /* its body length */
#define TFS_HDR_LEN      38u    /* stream identifier (10) + header chunk (4 + 24) */
#define TFS_VERSION      1u
#define TFS_SLOT_EXTRA   12u /* data chunk header + CRC + padding chunk header */
#define TFS_SLOT         (TFS_CHUNK + TFS_SLOT_EXTRA) /* stored bytes reserved per chunk */
#define TFS_RECORD_MAX   (TFS_CHUNK + 8u)             /* largest data chunk tinyfs writes */
#define TFS_PAD_TYPE     0xfeu
#define TFS_OUT_CAP      (80u << 10) /* output buffer of one CHUNK_COMPRESS */
#define TFS_XATTR_STORED "user.tinyfs.stored_size"
#define TFS_XATTR_FORMAT "user.tinyfs.format"

/* Writes the TFS_HDR_LEN bytes that start every tinyfs stored file. */
void tfs_header_build(unsigned char *p);

/* Classifies the first @n bytes of a stored file: 1 = tinyfs format,
 * 0 = a plain file (served as it is), -EPROTONOSUPPORT = a tinyfs header of
 * another version, -EBADMSG = a tinyfs header with a bad CRC. Pure. */
int tfs_header_parse(const unsigned char *p, size_t n);

/* Number of chunks of a file of @size logical bytes. */
uint64_t tfs_nchunks(uint64_t size);

/* Logical length of chunk @idx in a file of @size bytes (0 if beyond). */
uint32_t tfs_chunk_len(uint64_t idx, uint64_t size);

/* Offset of chunk @idx's slot in the stored file. */
static inline uint64_t tfs_slot_off(uint64_t idx)
{
    return TFS_HDR_LEN + idx * (uint64_t)TFS_SLOT;
}

/* Stored file length of a file of @size logical bytes. */
uint64_t tfs_stored_len(uint64_t size);

/* Logical size for a stored file of @stored bytes: 0 and *size, or
 * -EBADMSG when no logical size has that stored length (a torn file); *size
 * is then the size of the whole chunks it holds. Pure. */
int tfs_logical_size(uint64_t stored, uint64_t *size);

/* Checks a stored slot @s of @n bytes holding a chunk of @clen logical bytes
 * and returns the data chunk's record length (header included), or -EBADMSG
 * naming nothing (the caller logs). Checks types, lengths, the padding
 * chunk, and for an uncompressed chunk the CRC and copies its payload to
 * @out (then returns 0 through *is_raw = 1). Pure. */
int tfs_slot_parse(const unsigned char *s, size_t n, uint32_t clen, unsigned char *out,
                   int *is_raw);

/* Writes into @p the 4-byte padding chunk header that follows a record of
 * @rec_len bytes in the slot of a chunk of @clen logical bytes. */
void tfs_pad_build(unsigned char *p, size_t rec_len, uint32_t clen);

/* Writes into @out (>= @len + 8 bytes) the uncompressed data chunk of the
 * @len bytes at @in, as stored when tinyd is unavailable; returns its length. */
size_t tfs_raw_record(const void *in, uint32_t len, unsigned char *out);

/* Checks that a framed data chunk produced for @clen bytes is well formed:
 * 0 or -EBADMSG. */
int tfs_record_check(const unsigned char *rec, size_t rec_len, uint32_t clen);

/* ---- measure.c ---- */

/* Reads the logical size and the stored bytes (chunk records and padding
 * headers, not the padding holes) of the stored file open as @fd. Returns 0,
 * -ENODATA for a file not in tinyfs's format, -EIO or -errno. */
int tfs_measure(int fd, uint64_t *logical, uint64_t *stored);

/* ---- journal.c: the undo journal of in-place chunk rewrites ---- */

#define TFS_JOURNAL         ".tinyfs-journal" /* in the store's root, hidden by the mount */
#define TFS_JOURNAL_FIXED   60u               /* fixed part of an entry */
#define TFS_JOURNAL_UNDO    1
#define TFS_JOURNAL_BARRIER 2 /* the file's earlier entries are void (it was synced) */

/* Builds into @p (TFS_JOURNAL_FIXED + strlen(@path) + @old_rec_len + 4
 * bytes) a journal entry: before the slot at @slot_off of the stored file
 * @path (inode @ino, stored length @old_stored) is rewritten with @new_rec
 * (a chunk of @new_clen bytes), it held @old_rec (a chunk of @old_clen
 * bytes). A barrier has no records. Returns the entry length. Pure. */
size_t tfs_journal_build(unsigned char *p, int type, uint64_t ino, const char *path,
                         uint64_t slot_off, uint64_t old_stored, uint32_t old_clen,
                         const unsigned char *old_rec, uint32_t old_rec_len, uint32_t new_clen,
                         const unsigned char *new_rec, uint32_t new_rec_len);

/* Replays the journal of the store @storefd: every slot whose newest
 * journalled rewrite did not complete gets its old record back (with
 * @repair; then the journal is emptied), each named through @say. Returns
 * the number of such slots, or -errno. Not thread-safe: before mounting. */
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
/* The record of a chunk of @len zero bytes; NULL-free: returns its length
 * and sets *rec to shared read-only memory, or -errno. */
ssize_t tfs_zero_record(uint32_t len, const unsigned char **rec, unsigned char *scratch);

/* ---- file.c: open files ---- */

struct tfs_file;

/* Opens the stored file @path (relative to the store fd @dirfd) for a FUSE
 * open with @flags, sharing one state per stored inode. @create: the file
 * was just created empty. @name: used in log lines. */
int tfs_file_open(int dirfd, const char *path, int flags, int create, struct tfs_file **f);
void tfs_file_release(struct tfs_file *f);
ssize_t tfs_file_read(struct tfs_file *f, char *buf, size_t size, uint64_t off);
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

/* Fixes up @st (an lstat of the stored file @path) to logical values:
 * st_size of an open or tinyfs-format file. */
void tfs_stat_fixup(int dirfd, const char *path, struct stat *st);

/* At unmount: closes the journal and removes it when no entry is live. */
void tfs_file_journal_close(void);

/* Log a line (syslog when daemonized, stderr in the foreground). */
void tfs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

extern int tfs_foreground;
extern int tfs_store_fd; /* the store directory */

#endif /* TINYFS_H */
