/*
 * fsck.c - `tiny fsck [--repair] STORE...`: checks every file a tinyfs store
 * holds (docs/format.md) without mounting it.
 *
 * The store is walked once to list its regular files (so the progress bar
 * knows the total), then each tinyfs file is checked slot by slot, as tinyfs
 * reads it: the header and its CRC, the stored length against the logical
 * sizes it can stand for, each slot's record and padding headers, each
 * chunk's CRC (uncompressed chunks here, compressed ones by tinyd, which
 * decompresses and checks them; nothing is decoded in this process) and that
 * each chunk holds exactly the bytes the logical size gives it. Plain files
 * (not in tinyfs's format) are served as they are by tinyfs and skipped.
 *
 * --repair fixes what the chunks themselves tell: a header with a bad CRC is
 * written again, a padding header is rebuilt from its record, and a torn end
 * (the stored length inside a slot, as left by a crash in the middle of an
 * append) is cut back to the last whole chunk, or to the end of a last chunk
 * that is valid on its own. Chunks whose data is damaged cannot be rebuilt:
 * they are reported by byte range and left in place, so every other chunk of
 * the file stays readable through the mount (reads of the damaged range fail
 * with EIO). First of all, the undo journal of in-place chunk rewrites
 * (STORE/.tinyfs-journal) is read: a rewrite interrupted by a crash is
 * reported, and --repair puts the chunk's old record back, as a mount does.
 * Exit status as fsck(8): 0 clean, 1 damage repaired, 4 damage
 * left, 8 operational error, or-ed.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../tinyfs/tinyfs.h"
#include "cli.h"
#include "format.h"

enum { FSCK_OK = 0, FSCK_REPAIRED = 1, FSCK_LEFT = 4, FSCK_OPERR = 8 };

struct item {
    char *path;
    uint64_t size;
};

static struct {
    int repair, quiet, verbose;
    const char *dir;
} o;

static struct item *items;
static size_t n_items, cap_items;
static uint64_t total_bytes, done_bytes;
static size_t done_files;
static int progress;
static int result;
static unsigned long n_plain, n_damaged, n_repaired;
static tiny_conn *conn;

static void clear_bar(void)
{
    if (progress)
        fputs("\r\033[K", stderr);
}

static void bar(void)
{
    static int64_t last_pct = -1;
    int64_t pct = total_bytes ? (int64_t)(done_bytes * 100 / total_bytes) : 100;
    char line[64];
    int w = (int)(pct * 30 / 100);

    if (!progress || pct == last_pct)
        return;
    last_pct = pct;
    memset(line, '#', (size_t)w);
    memset(line + w, '.', (size_t)(30 - w));
    line[30] = 0;
    fprintf(stderr, "\rtiny fsck: [%s] %3" PRId64 "%% %zu/%zu files", line, pct, done_files,
            n_items);
}

__attribute__((format(printf, 2, 3))) static void say(const char *path, const char *fmt, ...)
{
    va_list ap;

    clear_bar();
    fprintf(stderr, "tiny fsck: %s: ", path);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const char *j_store;

__attribute__((format(printf, 1, 2))) static void say_journal(const char *fmt, ...)
{
    va_list ap;

    clear_bar();
    fprintf(stderr, "tiny fsck: %s: ", j_store);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* The undo journal of in-place chunk rewrites (docs/format.md): an
 * interrupted rewrite gets its old record back (--repair) before the files
 * are checked, else it is damage left. */
static void journal(const char *store)
{
    int dfd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

    if (dfd < 0)
        return; /* not a directory: nothing journalled */
    j_store = store;
    r = tfs_journal_replay(dfd, o.repair, say_journal);
    close(dfd);
    if (r < 0) {
        fprintf(stderr, "tiny fsck: %s: cannot %s the journal %s: %s\n", store,
                o.repair ? "replay" : "read", TFS_JOURNAL, cli_errstr(-r));
        result |= FSCK_OPERR;
    } else if (r > 0) {
        result |= o.repair ? FSCK_REPAIRED : FSCK_LEFT;
        if (o.repair)
            n_repaired += (unsigned long)r;
        else
            n_damaged += (unsigned long)r;
    }
}

static int collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    const char *base = path + ftw->base;

    (void)type;
    if (!S_ISREG(st->st_mode) || strncmp(base, ".fuse_hidden", 12) == 0 ||
        (ftw->level == 1 && strcmp(base, TFS_JOURNAL) == 0))
        return 0;
    if (n_items == cap_items) {
        size_t nc = cap_items ? cap_items * 2 : 256;
        struct item *ni = realloc(items, nc * sizeof(*ni));

        if (!ni)
            return -1;
        items = ni;
        cap_items = nc;
    }
    items[n_items].path = strdup(path);
    if (!items[n_items].path)
        return -1;
    items[n_items++].size = (uint64_t)st->st_size;
    total_bytes += (uint64_t)st->st_size;
    return 0;
}

static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    ssize_t w = pwrite(fd, buf, len, (off_t)off);

    if (w < 0)
        return -errno;
    return (size_t)w == len ? 0 : -EIO;
}

/* Checks a record standing alone for a chunk of @clen bytes; 0 or -EBADMSG,
 * or another -errno when tinyd failed (operational). */
static int check_record(const unsigned char *rec, size_t rec_len, uint32_t clen, unsigned char *out)
{
    ssize_t d;

    if (tfs_record_check(rec, rec_len, clen) < 0)
        return -EBADMSG;
    if (rec[0] == TINY_CHUNK_UNCOMPRESSED)
        return tiny_crc32c_masked(rec + 8, clen) == tiny_get_le32(rec + 4) ? 0 : -EBADMSG;
    d = tiny_run(conn, TINY_OP_CHUNK_DECOMPRESS, 0, rec, rec_len, out, TFS_CHUNK);
    if (d == -EBADMSG || d == -EINVAL || d == -EPROTO || d == -EMSGSIZE || d == -ENOSPC)
        return -EBADMSG;
    if (d < 0)
        return (int)d;
    return (size_t)d == clen ? 0 : -EBADMSG;
}

/* The logical length a record claims (snappy preamble or raw length), 0 if
 * it claims nothing sensible. */
static uint32_t record_clen(const unsigned char *rec, size_t avail)
{
    uint32_t body, len;

    if (avail < 9)
        return 0;
    body = tiny_get_le24(rec + 1);
    if (rec[0] == TINY_CHUNK_UNCOMPRESSED)
        return body >= 5 && body - 4 <= TFS_CHUNK ? body - 4 : 0;
    if (rec[0] != TINY_CHUNK_COMPRESSED || body < 5 ||
        !tiny_varint_get32(rec + 8, avail - 8 < body - 4 ? avail - 8 : body - 4, &len))
        return 0;
    return len >= 1 && len <= TFS_CHUNK ? len : 0;
}

/* A torn end: the file stops inside slot @idx (or its length fits no
 * logical size). Finds the longest valid stream it can keep: the slot's own
 * record when it is whole and valid, else the slots before it. Returns the
 * new stored length through *keep and the logical size through *size. */
static int salvage_tail(int fd, uint64_t idx, unsigned char *slot, unsigned char *out,
                        uint64_t *keep, uint64_t *size)
{
    uint64_t off = tfs_slot_off(idx);
    ssize_t n = pread_full(fd, slot, TFS_SLOT, off);
    uint32_t clen;
    size_t rec;

    *keep = off;
    *size = idx * TFS_CHUNK;
    if (n < 0)
        return (int)n;
    clen = record_clen(slot, (size_t)n);
    if (!clen)
        return 0;
    rec = TINY_CHUNK_HDR + tiny_get_le24(slot + 1);
    if (rec + TINY_CHUNK_HDR > (size_t)n || rec + TINY_CHUNK_HDR > clen + TFS_SLOT_EXTRA)
        return 0;
    n = check_record(slot, rec, clen, out);
    if (n == -EBADMSG)
        return 0;
    if (n < 0)
        return (int)n;
    /* a valid last chunk: the file ends with its slot */
    *keep = off + clen + TFS_SLOT_EXTRA;
    *size = idx * TFS_CHUNK + clen;
    return 1;
}

/* Checks (and repairs) one stored file. */
static void check_file(const char *path, unsigned char *slot, unsigned char *out)
{
    unsigned char hdr[TFS_HDR_LEN];
    uint64_t stored, size, nch, keep;
    int fd, kind, torn, damaged = 0, repaired = 0, left = 0;
    struct stat st;
    ssize_t n;

    fd = open(path, (o.repair ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) < 0) {
        say(path, "cannot open: %s", cli_errstr(errno));
        result |= FSCK_OPERR;
        if (fd >= 0)
            close(fd);
        return;
    }
    stored = (uint64_t)st.st_size;
    n = stored >= TFS_HDR_LEN ? pread_full(fd, hdr, sizeof(hdr), 0) : 0;
    if (n < 0) {
        say(path, "cannot read: %s", cli_errstr((int)n));
        result |= FSCK_OPERR;
        goto out;
    }
    kind = tfs_header_parse(hdr, (size_t)n);
    if (kind == 0) {
        n_plain++;
        if (o.verbose)
            say(path, "plain file (not in tinyfs's format), skipped");
        goto out;
    }
    if (kind == -EPROTONOSUPPORT) {
        say(path, "tinyfs header of an unsupported version, not checked");
        left = 1;
        goto out;
    }
    if (kind == -EBADMSG) {
        damaged = 1;
        say(path, "header: bad crc");
        if (o.repair) {
            tfs_header_build(hdr);
            if (pwrite_full(fd, hdr, sizeof(hdr), 0) == 0) {
                say(path, "repaired: header written again");
                repaired = 1;
            } else {
                left = 1;
            }
        } else {
            left = 1;
        }
    }

    /* the stored length: a logical size, or a torn end */
    torn = tfs_logical_size(stored, &size) < 0;
    nch = tfs_nchunks(size);
    if (!torn && nch) {
        uint64_t off = tfs_slot_off(nch - 1);
        uint32_t clen = tfs_chunk_len(nch - 1, size);

        n = pread_full(fd, slot, clen + TFS_SLOT_EXTRA, off);
        if (n >= (ssize_t)TINY_CHUNK_HDR &&
            (slot[0] == TINY_CHUNK_COMPRESSED || slot[0] == TINY_CHUNK_UNCOMPRESSED)) {
            size_t rl = TINY_CHUNK_HDR + tiny_get_le24(slot + 1);

            /* the record or its padding runs past the end of the file */
            if (off + rl + TINY_CHUNK_HDR > stored)
                torn = 1;
            else if (rl + TINY_CHUNK_HDR <= (size_t)n && slot[rl] == TFS_PAD_TYPE &&
                     off + rl + TINY_CHUNK_HDR + tiny_get_le24(slot + rl + 1) > stored)
                torn = 1;
        }
        if (torn)
            nch--;
    }
    if (torn) {
        uint64_t idx = nch, lsize;
        int r;

        damaged = 1;
        r = salvage_tail(fd, idx, slot, out, &keep, &lsize);
        if (r < 0 && r != -EBADMSG) {
            say(path, "cannot check the last chunk: %s", tiny_strerror(r));
            result |= FSCK_OPERR;
            goto out;
        }
        say(path,
            "torn end: stored length %" PRIu64 " ends inside chunk %" PRIu64
            " (logical bytes from %" PRIu64 ")",
            stored, idx, idx * TFS_CHUNK);
        if (o.repair) {
            unsigned char pad[TINY_CHUNK_HDR];
            int rc = 0;

            if (r == 1) {
                tfs_pad_build(pad, TINY_CHUNK_HDR + tiny_get_le24(slot + 1),
                              (uint32_t)(lsize - idx * TFS_CHUNK));
                rc = pwrite_full(fd, pad, sizeof(pad),
                                 tfs_slot_off(idx) + TINY_CHUNK_HDR + tiny_get_le24(slot + 1));
            }
            if (rc == 0 && ftruncate(fd, (off_t)keep) < 0)
                rc = -errno;
            if (rc == 0) {
                say(path,
                    "repaired: stored length %" PRIu64 " -> %" PRIu64 ", logical size %" PRIu64,
                    stored, keep, lsize);
                repaired = 1;
                stored = keep;
                size = lsize;
            } else {
                say(path, "cannot repair: %s", cli_errstr(rc));
                left = 1;
            }
        } else {
            left = 1;
        }
        if (!o.repair || left)
            size = idx * TFS_CHUNK; /* check the chunks before it */
        nch = tfs_nchunks(size);
    }

    /* every chunk */
    for (uint64_t i = 0; i < nch; i++) {
        uint32_t clen = tfs_chunk_len(i, size);
        uint64_t off = tfs_slot_off(i), a = i * TFS_CHUNK;
        const char *why = NULL;
        int raw, rec, rc;

        n = pread_full(fd, slot, clen + TFS_SLOT_EXTRA, off);
        if (n < 0) {
            say(path, "cannot read chunk %" PRIu64 ": %s", i, cli_errstr((int)n));
            result |= FSCK_OPERR;
            goto out;
        }
        done_bytes += clen + TFS_SLOT_EXTRA;
        rec = (size_t)n == clen + TFS_SLOT_EXTRA ? tfs_slot_parse(slot, (size_t)n, clen, out, &raw)
                                                 : -EBADMSG;
        if (rec >= 0) {
            rc = raw ? 0 : check_record(slot, (size_t)rec, clen, out);
            if (rc == -EBADMSG)
                why = "bad crc or snappy data";
            else if (rc < 0) {
                say(path, "cannot check chunk %" PRIu64 ": %s", i, tiny_strerror(rc));
                result |= FSCK_OPERR;
                goto out;
            }
        } else {
            /* is the record good and only its padding header wrong? */
            size_t rl = TINY_CHUNK_HDR + tiny_get_le24(slot + 1);

            why = "bad chunk header or crc";
            if (rl + TINY_CHUNK_HDR <= clen + TFS_SLOT_EXTRA &&
                record_clen(slot, (size_t)n) == clen && check_record(slot, rl, clen, out) == 0) {
                why = "bad padding header";
                if (o.repair) {
                    unsigned char pad[TINY_CHUNK_HDR];

                    tfs_pad_build(pad, rl, clen);
                    if (pwrite_full(fd, pad, sizeof(pad), off + rl) == 0) {
                        damaged = 1;
                        repaired = 1;
                        say(path,
                            "chunk %" PRIu64 " (bytes %" PRIu64 "-%" PRIu64
                            "): bad padding header; repaired",
                            i, a, a + clen - 1);
                        bar();
                        continue;
                    }
                }
            }
        }
        if (why) {
            damaged = 1;
            left = 1;
            say(path,
                "chunk %" PRIu64 " (bytes %" PRIu64 "-%" PRIu64 ", stored at %" PRIu64 "): %s", i,
                a, a + clen - 1, off, why);
        }
        bar();
    }
out:
    if (damaged)
        n_damaged++;
    if (repaired)
        n_repaired++;
    if (left)
        result |= FSCK_LEFT;
    else if (repaired)
        result |= FSCK_REPAIRED;
    close(fd);
}

static void usage(FILE *f)
{
    fputs("usage: tiny fsck [--repair] [-q] [-v] [-D DIR] STORE...\n"
          "Check every file of tinyfs stores (chunk CRCs, layout, logical sizes).\n"
          "\n"
          "  -r, --repair    rebuild headers, padding and sizes from the chunks; cut torn\n"
          "                  ends back to the last valid chunk\n"
          "  -q, --quiet     no progress bar and no summary\n"
          "  -v, --verbose   also name the plain files skipped\n"
          "  -D, --dir=DIR   tinyd's run directory (tinyd checks compressed chunks)\n"
          "\n"
          "Exit status: 0 clean, 1 damage repaired, 4 damage left, 8 operational error.\n",
          f);
}

int cli_fsck(int argc, char **argv)
{
    static const struct option longs[] = {
        {"repair", no_argument, NULL, 'r'},  {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'}, {"dir", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},    {NULL, 0, NULL, 0},
    };
    struct tiny_options topt = {.n_slots = 4, .slot_size = 128u << 10};
    unsigned char *slot = NULL, *out = NULL;
    int c, r;

    optind = 0;
    while ((c = getopt_long(argc, argv, "rqvD:h", longs, NULL)) != -1) {
        switch (c) {
        case 'r':
            o.repair = 1;
            break;
        case 'q':
            o.quiet = 1;
            break;
        case 'v':
            o.verbose = 1;
            break;
        case 'D':
            o.dir = optarg;
            break;
        case 'h':
            usage(stdout);
            return FSCK_OK;
        default:
            usage(stderr);
            return FSCK_OPERR;
        }
    }
    if (optind == argc) {
        fprintf(stderr, "tiny fsck: no store given\n");
        usage(stderr);
        return FSCK_OPERR;
    }
    for (int i = optind; i < argc; i++) {
        struct stat st;

        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "tiny fsck: %s: %s\n", argv[i], cli_errstr(errno));
            result |= FSCK_OPERR;
            continue;
        }
        journal(argv[i]);
        if (nftw(argv[i], collect, 32, FTW_PHYS) != 0) {
            fprintf(stderr, "tiny fsck: %s: cannot walk: %s\n", argv[i], cli_errstr(errno));
            result |= FSCK_OPERR;
        }
    }
    topt.dir = o.dir;
    r = tiny_connect(&conn, &topt);
    if (r < 0) {
        fprintf(stderr, "tiny fsck: cannot connect to tinyd (it checks compressed chunks): %s\n",
                tiny_strerror(r));
        result |= FSCK_OPERR;
        goto out;
    }
    slot = malloc(TFS_SLOT);
    out = malloc(TFS_CHUNK);
    if (!slot || !out) {
        fprintf(stderr, "tiny fsck: %s\n", cli_errstr(ENOMEM));
        result |= FSCK_OPERR;
        goto out;
    }
    progress = !o.quiet && isatty(STDERR_FILENO);
    for (size_t i = 0; i < n_items; i++) {
        check_file(items[i].path, slot, out);
        done_files = i + 1;
        bar();
    }
    clear_bar();
    if (!o.quiet)
        printf("tiny fsck: %zu files (%lu plain, not checked), %lu damaged, %lu repaired%s\n",
               n_items, n_plain, n_damaged, n_repaired, result & FSCK_LEFT ? ", damage left" : "");
out:
    tiny_disconnect(conn);
    free(slot);
    free(out);
    for (size_t i = 0; i < n_items; i++)
        free(items[i].path);
    free(items);
    return result;
}
