/*
 * fsck.c - `tiny fsck [--repair] STORE...`: checks every file a tinyfs store
 * holds (docs/format.md) without mounting it.
 *
 * The store is walked once to list its regular files (so the progress bar
 * knows the total), then each tinyfs file is checked group by group, as
 * tinyfs reads it: the header and its CRC, the stored length against the
 * last group's index, each group's index and padding header, each chunk's
 * CRC (uncompressed chunks here, compressed ones by tinyd, which
 * decompresses and checks them; nothing is decoded in this process) and that
 * each chunk holds exactly the bytes the logical size gives it. Plain files
 * (not in tinyfs's format) are served as they are by tinyfs and skipped.
 *
 * --repair fixes what the headers themselves tell: a header with a bad CRC
 * is written again, a padding header is rebuilt from its group's index, and
 * a torn end (bytes after the last record its index names, or an index
 * naming records past the end, as left by a crash in the middle of an
 * append) is cut back to the last whole chunk. Chunks whose data is damaged cannot be rebuilt:
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
    /* a file repaired or grown since the walk can take done past total */
    if (pct > 100)
        pct = 100;
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

__attribute__((format(printf, 2, 0))) static void vsay(const char *path, const char *fmt,
                                                       va_list ap)
{
    clear_bar();
    fprintf(stderr, "tiny fsck: %s: ", path);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

__attribute__((format(printf, 2, 3))) static void say(const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsay(path, fmt, ap);
    va_end(ap);
}

static const char *j_store;

__attribute__((format(printf, 1, 2))) static void say_journal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsay(j_store, fmt, ap);
    va_end(ap);
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
                o.repair ? "replay" : "read", TFS_JOURNAL, tiny_errno_text(-r));
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

/* Checks the chunks of group @g (index @x, read from the file unless
 * @have) of a file of @size logical bytes whose last group is @lastg. */
static int check_group(int fd, const char *path, uint64_t g, uint64_t lastg, struct tfs_gidx *x,
                       int have, uint64_t size, unsigned char *rec, unsigned char *out,
                       int *repaired)
{
    uint64_t goff = tfs_group_off(g), off, a = g * TFS_GROUP * (uint64_t)TFS_CHUNK;
    uint32_t want = g < lastg ? TFS_GROUP : (uint32_t)(tfs_nchunks(size) - g * TFS_GROUP);
    int bad = 0;
    ssize_t n;

    if (!have) {
        n = tfs_pread_full(fd, rec, TFS_GIDX_LEN, goff);
        if (n < 0) {
            say(path, "cannot read group %" PRIu64 ": %s", g, tiny_errno_text((int)n));
            result |= FSCK_OPERR;
            return -1;
        }
        if (n < (ssize_t)TFS_GIDX_LEN || tfs_gidx_parse(rec, (size_t)n, x) < 0 || x->n != want ||
            x->last_clen != TFS_CHUNK) {
            say(path,
                "group %" PRIu64 " (bytes %" PRIu64 "-%" PRIu64 ", stored at %" PRIu64
                "): bad index",
                g, a, a + (uint64_t)want * TFS_CHUNK - 1, goff);
            return 1;
        }
    }
    off = goff + TFS_GIDX_LEN;
    for (uint32_t k = 0; k < x->n; k++) {
        uint64_t i = g * TFS_GROUP + k, ca = i * TFS_CHUNK;
        uint32_t clen = tfs_chunk_len(i, size);
        const char *why = NULL;
        int raw, rc;

        n = tfs_pread_full(fd, rec, x->rec[k], off);
        if (n < 0) {
            say(path, "cannot read chunk %" PRIu64 ": %s", i, tiny_errno_text((int)n));
            result |= FSCK_OPERR;
            return -1;
        }
        done_bytes += x->rec[k]; /* st_size counts stored bytes */
        if (n != (ssize_t)x->rec[k] || tfs_chunk_parse(rec, x->rec[k], clen, out, &raw) < 0) {
            why = "bad chunk header or crc";
        } else if (!raw) {
            rc = check_record(rec, x->rec[k], clen, out);
            if (rc == -EBADMSG)
                why = "bad crc or snappy data";
            else if (rc < 0) {
                say(path, "cannot check chunk %" PRIu64 ": %s", i, tiny_strerror(rc));
                result |= FSCK_OPERR;
                return -1;
            }
        }
        if (why) {
            bad = 1;
            say(path,
                "chunk %" PRIu64 " (bytes %" PRIu64 "-%" PRIu64 ", stored at %" PRIu64 "): %s", i,
                ca, ca + clen - 1, off, why);
        }
        off += x->rec[k];
        bar();
    }
    if (g < lastg) {
        /* the padding chunk up to the region's end */
        unsigned char pad[TINY_CHUNK_HDR], want_pad[TINY_CHUNK_HDR];

        tfs_pad_build(want_pad, (uint32_t)(tfs_group_off(g + 1) - off - TINY_CHUNK_HDR));
        n = tfs_pread_full(fd, pad, sizeof(pad), off);
        if (n != (ssize_t)sizeof(pad) || memcmp(pad, want_pad, sizeof(pad)) != 0) {
            if (o.repair && pwrite_full(fd, want_pad, sizeof(pad), off) == 0) {
                say(path, "group %" PRIu64 " (stored at %" PRIu64 "): bad padding header; repaired",
                    g, goff);
                *repaired = 1;
            } else {
                say(path, "group %" PRIu64 " (stored at %" PRIu64 "): bad padding header", g, goff);
                bad = 1;
            }
        }
    }
    return bad;
}

/* Checks (and repairs) one stored file. */
static void check_file(const char *path, unsigned char *rec, unsigned char *out)
{
    unsigned char hdr[TFS_HDR_LEN];
    uint64_t stored, ngroups, lastg;
    int fd, kind, damaged = 0, repaired = 0, left = 0;
    struct tfs_tail t;
    struct stat st;
    ssize_t n;

    fd = open(path, (o.repair ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) < 0) {
        say(path, "cannot open: %s", tiny_errno_text(errno));
        result |= FSCK_OPERR;
        if (fd >= 0)
            close(fd);
        return;
    }
    stored = (uint64_t)st.st_size;
    n = stored >= TFS_HDR_LEN ? tfs_pread_full(fd, hdr, sizeof(hdr), 0) : 0;
    if (n < 0) {
        say(path, "cannot read: %s", tiny_errno_text((int)n));
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
        say(path, "tinyfs format version %u, not checked (this tiny reads version %u)",
            tfs_header_version(hdr, (size_t)n), TFS_VERSION);
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

    /* the end: the last group's index gives the logical size, or a torn end */
    n = tfs_locate(fd, stored, &t);
    if (n < 0) {
        say(path, "cannot read: %s", tiny_errno_text((int)n));
        result |= FSCK_OPERR;
        goto out;
    }
    if (t.damaged) {
        damaged = left = 1;
        say(path,
            "group %" PRIu64 " (logical bytes from %" PRIu64 ", stored at %" PRIu64
            "): bad index of the last group",
            t.g, t.size, tfs_group_off(t.g));
    } else if (t.torn) {
        damaged = 1;
        say(path,
            "torn end: stored length %" PRIu64 " ends inside a write (whole chunks up to logical "
            "byte %" PRIu64 ")",
            stored, t.size);
        if (o.repair) {
            int rc = tfs_tail_repair(fd, &t);

            if (rc == 0) {
                say(path,
                    "repaired: stored length %" PRIu64 " -> %" PRIu64 ", logical size %" PRIu64,
                    stored, t.keep, t.size);
                repaired = 1;
            } else {
                say(path, "cannot repair: %s", tiny_errno_text(rc));
                left = 1;
            }
        } else {
            left = 1;
        }
    }

    /* every group, every chunk */
    ngroups = (t.nchunks + TFS_GROUP - 1) / TFS_GROUP;
    lastg = t.damaged ? t.g : ngroups - 1;
    for (uint64_t g = 0; g < ngroups; g++) {
        struct tfs_gidx x = t.idx;
        int r = check_group(fd, path, g, lastg, &x, g == lastg && !t.damaged, t.size, rec, out,
                            &repaired);

        if (r < 0)
            goto out;
        if (r > 0)
            damaged = left = 1;
        if (repaired)
            damaged = 1;
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
            fprintf(stderr, "tiny fsck: %s: %s\n", argv[i], tiny_errno_text(errno));
            result |= FSCK_OPERR;
            continue;
        }
        journal(argv[i]);
        if (nftw(argv[i], collect, 32, FTW_PHYS) != 0) {
            fprintf(stderr, "tiny fsck: %s: cannot walk: %s\n", argv[i], tiny_errno_text(errno));
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
    slot = malloc(TFS_GSPACE);
    out = malloc(TFS_CHUNK);
    if (!slot || !out) {
        fprintf(stderr, "tiny fsck: %s\n", tiny_errno_text(ENOMEM));
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
