/*
 * journal.c - the undo journal of tinyfs's in-place chunk rewrites
 * (STORE/.tinyfs-journal, docs/format.md "Crash safety"): building its
 * entries, and replaying it, shared by the mount and by tiny fsck --repair.
 *
 * Before a slot is rewritten in place, its old record goes to the journal,
 * which is synced; replay puts the old record back wherever the newest
 * journalled rewrite of a slot did not complete.
 *
 * Entry, little-endian: magic, type, total length, inode, slot offset, stored
 * length before the rewrite, old clen and record length, new clen, record
 * length and masked CRC-32C of the new record, path length; then the path
 * (relative to the store), the old record, and a masked CRC-32C of all that.
 * A torn entry (its CRC fails) ends the journal: it was never synced, so the
 * rewrite it announced never started.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "tinyfs.h"

#define J_MAGIC 0x314a4654u /* "TFJ1" */

static void put_le64(unsigned char *p, uint64_t v)
{
    tiny_put_le32(p, (uint32_t)v);
    tiny_put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_le64(const unsigned char *p)
{
    return tiny_get_le32(p) | (uint64_t)tiny_get_le32(p + 4) << 32;
}

size_t tfs_journal_build(unsigned char *p, int type, uint64_t ino, const char *path,
                         uint64_t slot_off, uint64_t old_stored, uint32_t old_clen,
                         const unsigned char *old_rec, uint32_t old_rec_len, uint32_t new_clen,
                         const unsigned char *new_rec, uint32_t new_rec_len)
{
    uint32_t plen = (uint32_t)strlen(path);
    size_t len = TFS_JOURNAL_FIXED + plen + old_rec_len + 4;

    tiny_put_le32(p, J_MAGIC);
    tiny_put_le32(p + 4, (uint32_t)type);
    tiny_put_le32(p + 8, (uint32_t)len);
    put_le64(p + 12, ino);
    put_le64(p + 20, slot_off);
    put_le64(p + 28, old_stored);
    tiny_put_le32(p + 36, old_clen);
    tiny_put_le32(p + 40, old_rec_len);
    tiny_put_le32(p + 44, new_clen);
    tiny_put_le32(p + 48, new_rec_len);
    tiny_put_le32(p + 52, new_rec ? tiny_crc32c_masked(new_rec, new_rec_len) : 0);
    tiny_put_le32(p + 56, plen);
    memcpy(p + TFS_JOURNAL_FIXED, path, plen);
    if (old_rec_len)
        memcpy(p + TFS_JOURNAL_FIXED + plen, old_rec, old_rec_len);
    tiny_put_le32(p + len - 4, tiny_crc32c_masked(p, len - 4));
    return len;
}

struct jent {
    const unsigned char *p;
    int type, dead;
    uint64_t ino, slot_off, old_stored;
    uint32_t old_clen, old_rec_len, new_clen, new_rec_len, new_crc, plen;
};

static int jent_parse(const unsigned char *p, size_t n, struct jent *e, size_t *len)
{
    if (n < TFS_JOURNAL_FIXED + 4 || tiny_get_le32(p) != J_MAGIC)
        return -EBADMSG;
    *len = tiny_get_le32(p + 8);
    if (*len < TFS_JOURNAL_FIXED + 4 || *len > n ||
        tiny_crc32c_masked(p, *len - 4) != tiny_get_le32(p + *len - 4))
        return -EBADMSG;
    e->p = p;
    e->type = (int)tiny_get_le32(p + 4);
    e->dead = 0;
    e->ino = get_le64(p + 12);
    e->slot_off = get_le64(p + 20);
    e->old_stored = get_le64(p + 28);
    e->old_clen = tiny_get_le32(p + 36);
    e->old_rec_len = tiny_get_le32(p + 40);
    e->new_clen = tiny_get_le32(p + 44);
    e->new_rec_len = tiny_get_le32(p + 48);
    e->new_crc = tiny_get_le32(p + 52);
    e->plen = tiny_get_le32(p + 56);
    if ((uint64_t)TFS_JOURNAL_FIXED + e->plen + e->old_rec_len + 4 != *len || e->plen == 0 ||
        e->plen >= 4096 || e->old_clen > TFS_CHUNK || e->new_clen > TFS_CHUNK ||
        e->old_rec_len > e->old_clen + 8u || e->new_rec_len > e->new_clen + 8u)
        return -EBADMSG;
    return 0;
}

/* Finds the regular file of inode @ino under @dirfd (a renamed file). */
static int find_ino(int dirfd, uint64_t ino, int depth)
{
    DIR *d;
    struct dirent *de;
    int fd = -1, dfd = dup(dirfd);

    if (dfd < 0 || depth > 64)
        return dfd < 0 ? -1 : (close(dfd), -1);
    d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -1;
    }
    rewinddir(d);
    while (fd < 0 && (de = readdir(d))) {
        struct stat st;

        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISREG(st.st_mode) && st.st_ino == ino) {
            fd = openat(dirfd, de->d_name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

            if (sub >= 0) {
                fd = find_ino(sub, ino, depth + 1);
                close(sub);
            }
        }
    }
    closedir(d);
    return fd;
}

static int open_target(int storefd, const struct jent *e, int rw)
{
    char path[4096];
    struct stat st;
    int fd;

    memcpy(path, e->p + TFS_JOURNAL_FIXED, e->plen);
    path[e->plen] = 0;
    fd = openat(storefd, path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_ino == e->ino)
        return fd;
    if (fd >= 0)
        close(fd);
    return find_ino(storefd, e->ino, 0);
}

/* Whether the slot holds the new record (the rewrite completed). */
static int rewrite_done(int fd, const struct jent *e)
{
    size_t n = e->new_rec_len + TINY_CHUNK_HDR;
    unsigned char *buf = malloc(n), pad[TINY_CHUNK_HDR];
    struct stat st;
    int done = 0;

    if (buf && fstat(fd, &st) == 0 &&
        (uint64_t)st.st_size >= e->slot_off + e->new_clen + TFS_SLOT_EXTRA &&
        pread(fd, buf, n, (off_t)e->slot_off) == (ssize_t)n) {
        tfs_pad_build(pad, e->new_rec_len, e->new_clen);
        done = tiny_crc32c_masked(buf, e->new_rec_len) == e->new_crc &&
               memcmp(buf + e->new_rec_len, pad, sizeof(pad)) == 0;
    }
    free(buf);
    return done;
}

static int restore(int fd, const struct jent *e)
{
    const unsigned char *rec = e->p + TFS_JOURNAL_FIXED + e->plen;
    uint64_t end = e->slot_off + e->old_clen + TFS_SLOT_EXTRA;
    uint64_t head = e->slot_off + e->old_rec_len + TINY_CHUNK_HDR;
    unsigned char pad[TINY_CHUNK_HDR];
    struct stat st;

    tfs_pad_build(pad, e->old_rec_len, e->old_clen);
    if (pwrite(fd, rec, e->old_rec_len, (off_t)e->slot_off) != (ssize_t)e->old_rec_len ||
        pwrite(fd, pad, sizeof(pad), (off_t)(e->slot_off + e->old_rec_len)) != (ssize_t)sizeof(pad))
        return -errno ? -errno : -EIO;
    if (fstat(fd, &st) < 0)
        return -errno;
    /* the last slot was growing: back to its old end */
    if (end == e->old_stored && (uint64_t)st.st_size != end && ftruncate(fd, (off_t)end) < 0)
        return -errno;
    head = (head + 4095) & ~4095ull;
    if ((end & ~4095ull) > head)
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)head,
                  (off_t)((end & ~4095ull) - head));
    return fdatasync(fd) < 0 ? -errno : 0;
}

int tfs_journal_replay(int storefd, int repair, void (*say)(const char *fmt, ...))
{
    unsigned char *buf = NULL;
    struct jent *ents = NULL;
    size_t n = 0, cap = 0, off = 0, len;
    struct stat st;
    int fd, rc = 0, count = 0;

    fd = openat(storefd, TFS_JOURNAL, (repair ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (st.st_size == 0)
        goto done;
    buf = malloc((size_t)st.st_size);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
        rc = -EIO;
        goto out;
    }
    while (off < (size_t)st.st_size) {
        if (n == cap) {
            struct jent *ne = realloc(ents, (cap = cap ? cap * 2 : 64) * sizeof(*ne));

            if (!ne) {
                rc = -ENOMEM;
                goto out;
            }
            ents = ne;
        }
        if (jent_parse(buf + off, (size_t)st.st_size - off, &ents[n], &len) < 0)
            break; /* a torn last entry: its rewrite never started */
        off += len;
        n++;
    }
    /* newest first: a barrier voids the older entries of its file; of
     * several rewrites of one slot only the newest can be unfinished */
    for (size_t i = n; i-- > 0;) {
        struct jent *e = &ents[i];
        int tfd;

        if (e->dead)
            continue;
        for (size_t j = 0; j < i; j++)
            if (ents[j].ino == e->ino &&
                (e->type == TFS_JOURNAL_BARRIER || ents[j].slot_off == e->slot_off))
                ents[j].dead = 1;
        if (e->type != TFS_JOURNAL_UNDO)
            continue;
        tfd = open_target(storefd, e, repair);
        if (tfd < 0)
            continue; /* deleted since: nothing to restore */
        if (!rewrite_done(tfd, e)) {
            int r = repair ? restore(tfd, e) : 0;

            if (say)
                say("%.*s: chunk at stored offset %llu: interrupted rewrite%s%s", (int)e->plen,
                    (const char *)e->p + TFS_JOURNAL_FIXED, (unsigned long long)e->slot_off,
                    !repair ? ", old content in the journal"
                    : r     ? ", cannot restore the old content: "
                            : ", old content restored",
                    r ? strerror(-r) : "");
            if (r < 0 && rc == 0)
                rc = r;
            count++;
        }
        close(tfd);
    }
done:
    /* emptied durably before it goes: a journal that came back after a
     * power loss would otherwise undo later rewrites */
    if (repair && rc == 0) {
        if (ftruncate(fd, 0) < 0 || fdatasync(fd) < 0)
            rc = -errno;
        else
            unlinkat(storefd, TFS_JOURNAL, 0);
    }
out:
    free(ents);
    free(buf);
    close(fd);
    return rc < 0 ? rc : count;
}
