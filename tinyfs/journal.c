/*
 * journal.c - the undo journal of tinyfs's in-place rewrites
 * (STORE/.tinyfs-journal, docs/format.md "Crash safety"): building its
 * entries, and replaying it, shared by the mount and by tiny fsck --repair.
 *
 * Before a group of a stored file is rewritten in place (a chunk replaced,
 * the records after it moved), the old bytes of every range the rewrite
 * changes go to the journal, which is synced; replay puts the old bytes back
 * wherever the newest journalled rewrite of a group did not complete.
 *
 * Entry, little-endian: magic, type, total length, inode, group offset (the
 * key), stored length before the rewrite, flags (1: the group is the file's
 * last), the hole to punch after an undo, the number of ranges, path length;
 * per range its offset, old and new lengths and the masked CRC-32C of the
 * new bytes; then the path (relative to the store), the old bytes of every
 * range, and a masked CRC-32C of all that. A torn entry (its CRC fails) ends
 * the journal: it was never synced, so the rewrite it announced never
 * started.
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

#define J_MAGIC 0x324a4654u /* "TFJ2" */

static void put_le64(unsigned char *p, uint64_t v)
{
    tiny_put_le32(p, (uint32_t)v);
    tiny_put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_le64(const unsigned char *p)
{
    return tiny_get_le32(p) | (uint64_t)tiny_get_le32(p + 4) << 32;
}

size_t tfs_journal_len(const char *path, const struct tfs_jrange *r, unsigned nr)
{
    size_t len = TFS_JOURNAL_FIXED + nr * TFS_JOURNAL_RANGE + strlen(path) + 4;

    for (unsigned i = 0; i < nr; i++)
        len += r[i].old_len;
    return len;
}

size_t tfs_journal_build(unsigned char *p, int type, uint64_t ino, const char *path, uint64_t key,
                         uint64_t old_stored, int last, uint64_t hole_a, uint64_t hole_b,
                         const struct tfs_jrange *r, unsigned nr)
{
    uint32_t plen = (uint32_t)strlen(path);
    size_t len = tfs_journal_len(path, r, nr), pos;

    tiny_put_le32(p, J_MAGIC);
    tiny_put_le32(p + 4, (uint32_t)type);
    tiny_put_le32(p + 8, (uint32_t)len);
    put_le64(p + 12, ino);
    put_le64(p + 20, key);
    put_le64(p + 28, old_stored);
    tiny_put_le32(p + 36, last ? 1 : 0);
    put_le64(p + 40, hole_a);
    put_le64(p + 48, hole_b);
    tiny_put_le32(p + 56, nr);
    tiny_put_le32(p + 60, plen);
    pos = TFS_JOURNAL_FIXED;
    for (unsigned i = 0; i < nr; i++, pos += TFS_JOURNAL_RANGE) {
        put_le64(p + pos, r[i].off);
        tiny_put_le32(p + pos + 8, r[i].old_len);
        tiny_put_le32(p + pos + 12, r[i].new_len);
        tiny_put_le32(p + pos + 16, tiny_crc32c_masked(r[i].new_, r[i].new_len));
    }
    memcpy(p + pos, path, plen);
    pos += plen;
    for (unsigned i = 0; i < nr; i++) {
        memcpy(p + pos, r[i].old, r[i].old_len);
        pos += r[i].old_len;
    }
    tiny_put_le32(p + len - 4, tiny_crc32c_masked(p, len - 4));
    return len;
}

struct jent {
    const unsigned char *p, *path, *old; /* the entry, its path, the old bytes */
    int type, dead, last;
    uint64_t ino, key, old_stored, hole_a, hole_b;
    uint32_t nr, plen;
};

static int jent_parse(const unsigned char *p, size_t n, struct jent *e, size_t *len)
{
    uint64_t need;

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
    e->key = get_le64(p + 20);
    e->old_stored = get_le64(p + 28);
    e->last = tiny_get_le32(p + 36) & 1;
    e->hole_a = get_le64(p + 40);
    e->hole_b = get_le64(p + 48);
    e->nr = tiny_get_le32(p + 56);
    e->plen = tiny_get_le32(p + 60);
    if (e->nr > TFS_JOURNAL_MAXR || e->plen == 0 || e->plen >= 4096)
        return -EBADMSG;
    need = TFS_JOURNAL_FIXED + (uint64_t)e->nr * TFS_JOURNAL_RANGE + e->plen + 4;
    for (uint32_t i = 0; i < e->nr; i++) {
        const unsigned char *r = p + TFS_JOURNAL_FIXED + i * TFS_JOURNAL_RANGE;

        if (tiny_get_le32(r + 8) > TFS_GSPACE || tiny_get_le32(r + 12) > TFS_GSPACE)
            return -EBADMSG;
        need += tiny_get_le32(r + 8);
    }
    if (need != *len)
        return -EBADMSG;
    e->path = p + TFS_JOURNAL_FIXED + e->nr * TFS_JOURNAL_RANGE;
    e->old = e->path + e->plen;
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

    memcpy(path, e->path, e->plen);
    path[e->plen] = 0;
    fd = openat(storefd, path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_ino == e->ino)
        return fd;
    if (fd >= 0)
        close(fd);
    return find_ino(storefd, e->ino, 0);
}

/* Whether every range holds its new bytes (the rewrite completed). */
static int rewrite_done(int fd, const struct jent *e)
{
    unsigned char *buf = malloc(TFS_GSPACE);
    struct stat st;
    int done = buf && fstat(fd, &st) == 0;

    for (uint32_t i = 0; done && i < e->nr; i++) {
        const unsigned char *r = e->p + TFS_JOURNAL_FIXED + i * TFS_JOURNAL_RANGE;
        uint64_t off = get_le64(r);
        uint32_t n = tiny_get_le32(r + 12);

        done = (uint64_t)st.st_size >= off + n && pread(fd, buf, n, (off_t)off) == (ssize_t)n &&
               tiny_crc32c_masked(buf, n) == tiny_get_le32(r + 16);
    }
    free(buf);
    return done;
}

static int restore(int fd, const struct jent *e)
{
    const unsigned char *old = e->old;
    uint64_t a = (e->hole_a + 4095) & ~4095ull, b = e->hole_b & ~4095ull;

    for (uint32_t i = 0; i < e->nr; i++) {
        const unsigned char *r = e->p + TFS_JOURNAL_FIXED + i * TFS_JOURNAL_RANGE;
        uint32_t n = tiny_get_le32(r + 8);

        if (n && pwrite(fd, old, n, (off_t)get_le64(r)) != (ssize_t)n)
            return errno ? -errno : -EIO;
        old += n;
    }
    /* the last group was growing or shrinking: back to its old end */
    if (e->last && ftruncate(fd, (off_t)e->old_stored) < 0)
        return -errno;
    if (b > a)
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)a, (off_t)(b - a));
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
     * several rewrites of one group only the newest can be unfinished */
    for (size_t i = n; i-- > 0;) {
        struct jent *e = &ents[i];
        int tfd;

        if (e->dead)
            continue;
        for (size_t j = 0; j < i; j++)
            if (ents[j].ino == e->ino && (e->type == TFS_JOURNAL_BARRIER || ents[j].key == e->key))
                ents[j].dead = 1;
        if (e->type != TFS_JOURNAL_UNDO)
            continue;
        tfd = open_target(storefd, e, repair);
        if (tfd < 0)
            continue; /* deleted since: nothing to restore */
        if (!rewrite_done(tfd, e)) {
            int r = repair ? restore(tfd, e) : 0;

            if (say)
                say("%.*s: group at stored offset %llu: interrupted rewrite%s%s", (int)e->plen,
                    (const char *)e->path, (unsigned long long)e->key,
                    !repair ? ", old content in the journal"
                    : r     ? ", cannot restore the old content: "
                            : ", old content restored",
                    r ? tiny_errno_text(-r) : "");
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
