/*
 * ops.c - the FUSE operations of tinyfs (libfuse3 high-level API).
 *
 * Everything but the contents of regular files is passed through to the
 * store directory with the *at() calls relative to one directory fd, so
 * names, directories, symlinks, hard links, permissions, ownership,
 * timestamps and user xattrs are those of the store. Regular files go
 * through file.c. Permission checks are the kernel's (default_permissions);
 * as root, objects are created and then given to the calling user.
 *
 * Open files are keyed by stored inode, not path, so rename, link and
 * unlink need no bookkeeping. An open file that is unlinked is renamed by
 * libfuse to .fuse_hidden* until its last close (so fstat and the other
 * path-based calls of its holder keep working); readdir hides those names.
 */
#define FUSE_USE_VERSION 312

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "format.h"
#include "tinyfs.h"

#define TFS_MAX_WRITE  (1u << 20) /* libfuse's largest (FUSE_MAX_MAX_PAGES) */
#define TFS_ST_BLKSIZE (1u << 20)

int tfs_store_fd = -1;
const char *tfs_store_path;
/* FUSE settings (main.c fills them from the options; docs/man/tinyfs.1) */
unsigned tfs_max_write = TFS_MAX_WRITE;
unsigned tfs_st_blksize = TFS_ST_BLKSIZE;
double tfs_attr_timeout; /* -o attr_timeout */
struct fuse_conn_info_opts *tfs_conn_opts;

static const char *rel(const char *path)
{
    while (path && *path == '/')
        path++;
    /* the journal is not part of the filesystem: a name no call can use */
    if (path && strcmp(path, TFS_JOURNAL) == 0)
        return TFS_JOURNAL "/.";
    return path && *path ? path : ".";
}

static struct tfs_file *F(struct fuse_file_info *fi)
{
    return (struct tfs_file *)(uintptr_t)fi->fh;
}

/* The owner a newly created object gets when we are root: the calling user,
 * and the group of a set-group-ID parent directory. 0 when nothing is to be
 * done. */
static int owner_for(const char *path, uid_t *uid, gid_t *gid)
{
    struct fuse_context *ctx = fuse_get_context();
    char parent[PATH_MAX];
    const char *r = rel(path), *slash = strrchr(r, '/');
    struct stat st;

    if (geteuid() != 0 || (ctx->uid == 0 && ctx->gid == 0))
        return 0;
    *uid = ctx->uid;
    *gid = ctx->gid;
    snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - r) : 1, slash ? r : ".");
    if (fstatat(tfs_store_fd, parent, &st, 0) == 0 && (st.st_mode & S_ISGID))
        *gid = st.st_gid;
    return 1;
}

/* Gives a newly created object to the calling user (when we are root). */
static void own(const char *path)
{
    uid_t uid;
    gid_t gid;

    if (owner_for(path, &uid, &gid))
        fchownat(tfs_store_fd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW);
}

/* Creates the stored file @path holding the tinyfs header, in one step: an
 * unnamed file (O_TMPFILE) gets the header and its owner, then its name. A
 * crash so never leaves an empty stored file, which framing decoders reject.
 * 0, -EEXIST, -EOPNOTSUPP when the store cannot do it, or -errno. */
static int create_stored(const char *path, mode_t mode)
{
    const char *r = rel(path), *slash = strrchr(r, '/');
    unsigned char hdr[TFS_HDR_LEN];
    char parent[PATH_MAX], proc[64];
    uid_t uid;
    gid_t gid;
    int fd, rc = 0;

    snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - r) : 1, slash ? r : ".");
    fd = openat(tfs_store_fd, parent, O_TMPFILE | O_WRONLY | O_CLOEXEC, mode & 07777);
    if (fd < 0)
        return errno == EISDIR || errno == EOPNOTSUPP || errno == EINVAL ? -EOPNOTSUPP : -errno;
    tfs_header_build(hdr);
    if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
        rc = errno ? -errno : -EIO;
    if (rc == 0 && owner_for(path, &uid, &gid))
        fchown(fd, uid, gid);
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (rc == 0 && linkat(AT_FDCWD, proc, tfs_store_fd, r, AT_SYMLINK_FOLLOW) < 0)
        rc = errno == ENOENT && access("/proc/self/fd", X_OK) < 0 ? -EOPNOTSUPP : -errno;
    close(fd);
    return rc;
}

/* The I/O sizes of regular files: cp and cat size their buffers by
 * st_blksize, and every write() through FUSE is one request, so a large
 * st_blksize and max_write cut the round trips of a sequential writer and
 * reader by as much (tests/bench/fs.sh measured the values). Reads from the
 * store need no alignment, so any size is right. */
static void set_blksize(struct stat *st)
{
    if (S_ISREG(st->st_mode) && tfs_st_blksize)
        st->st_blksize = (blksize_t)tfs_st_blksize;
}

static void *tfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    /* Requests are read into memory: with splice a write's data would be
     * spliced into a pipe and then copied out of it again, as no write_buf
     * operation takes the pipe itself. max_write above 128 KiB makes libfuse
     * raise max_pages, so one request carries a whole cp buffer. The rest are
     * libfuse's defaults (async reads, parallel directory operations). The
     * kernel's write-back cache stays off: each name of a hard-linked file
     * is its own kernel inode in the high-level API, and with that cache
     * the kernel trusts its own size and pages of each, so names would
     * disagree. Options given with -o override all of this. */
    conn->want &= ~(unsigned)FUSE_CAP_SPLICE_READ;
    conn->want &= ~(unsigned)(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    if (tfs_max_write)
        conn->max_write = tfs_max_write;
    if (tfs_conn_opts)
        fuse_apply_conn_info_opts(tfs_conn_opts, conn);
    cfg->use_ino = 1;
    cfg->nullpath_ok = 1;
    /* The high-level API gives each name of a hard-linked file its own kernel
     * inode, so a cached attribute of one name would miss a change made
     * through another; after a link(2) the old name keeps its cached link
     * count and ctime (tar then reports "file changed as we read it").
     * Without cached attributes, though, every path lookup asks for the
     * attributes of each directory on the way (default_permissions), so
     * -o attr_timeout trades the one for the other (tinyfs(1)). */
    cfg->attr_timeout = tfs_attr_timeout;
    umask(0);
    tfs_codec_init();
    return NULL;
}

static void tfs_destroy(void *data)
{
    (void)data;
    tfs_file_journal_close();
    tfs_codec_fini();
}

static int tfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    if (!path && fi) {
        int rc = tfs_file_fstat(F(fi), st);

        set_blksize(st);
        return rc;
    }
    if (path && strcmp(path, "/" TFS_JOURNAL) == 0)
        return -ENOENT; /* the journal is not part of the filesystem */
    if (fstatat(tfs_store_fd, rel(path), st, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    tfs_stat_fixup(tfs_store_fd, rel(path), st);
    set_blksize(st);
    return 0;
}

static int tfs_access(const char *path, int mask)
{
    return faccessat(tfs_store_fd, rel(path), mask, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int tfs_readlink(const char *path, char *buf, size_t size)
{
    ssize_t n = readlinkat(tfs_store_fd, rel(path), buf, size - 1);

    if (n < 0)
        return -errno;
    buf[n] = 0;
    return 0;
}

static int tfs_opendir(const char *path, struct fuse_file_info *fi)
{
    int fd = openat(tfs_store_fd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d;

    if (fd < 0)
        return -errno;
    d = fdopendir(fd);
    if (!d) {
        int rc = -errno;

        close(fd);
        return rc;
    }
    fi->fh = (uintptr_t)d;
    return 0;
}

/* The undo journal in the store's root is not part of the filesystem. */
static int is_journal(DIR *d, const char *name)
{
    struct stat a, b;

    return strcmp(name, TFS_JOURNAL) == 0 && fstat(dirfd(d), &a) == 0 &&
           fstat(tfs_store_fd, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static int tfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    DIR *d = (DIR *)(uintptr_t)fi->fh;
    struct dirent *de;

    (void)path;
    (void)off;
    (void)flags;
    rewinddir(d);
    errno = 0;
    while ((de = readdir(d))) {
        struct stat st = {.st_ino = de->d_ino, .st_mode = (mode_t)DTTOIF(de->d_type)};

        if (strncmp(de->d_name, ".fuse_hidden", 12) == 0 || is_journal(d, de->d_name))
            continue;
        if (fill(buf, de->d_name, &st, 0, 0))
            return 0;
    }
    return errno ? -errno : 0;
}

static int tfs_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    closedir((DIR *)(uintptr_t)fi->fh);
    return 0;
}

static int tfs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    int fd = dirfd((DIR *)(uintptr_t)fi->fh);

    (void)path;
    return (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
}

static int tfs_mknod(const char *path, mode_t mode, dev_t rdev)
{
    if (mknodat(tfs_store_fd, rel(path), mode, rdev) < 0)
        return -errno;
    own(path);
    return 0;
}

static int tfs_mkdir(const char *path, mode_t mode)
{
    if (mkdirat(tfs_store_fd, rel(path), mode) < 0)
        return -errno;
    own(path);
    return 0;
}

static int tfs_unlink(const char *path)
{
    return unlinkat(tfs_store_fd, rel(path), 0) < 0 ? -errno : 0;
}

static int tfs_rmdir(const char *path)
{
    return unlinkat(tfs_store_fd, rel(path), AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int tfs_symlink(const char *target, const char *path)
{
    if (symlinkat(target, tfs_store_fd, rel(path)) < 0)
        return -errno;
    own(path);
    return 0;
}

static int tfs_rename(const char *from, const char *to, unsigned int flags)
{
    if (renameat2(tfs_store_fd, rel(from), tfs_store_fd, rel(to), flags) < 0)
        return -errno;
    return 0;
}

static int tfs_link(const char *from, const char *to)
{
    return linkat(tfs_store_fd, rel(from), tfs_store_fd, rel(to), 0) < 0 ? -errno : 0;
}

static int tfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    int rc =
        !path && fi ? fchmod(tfs_file_fd(F(fi)), mode) : fchmodat(tfs_store_fd, rel(path), mode, 0);

    return rc < 0 ? -errno : 0;
}

static int tfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    int rc = !path && fi ? fchown(tfs_file_fd(F(fi)), uid, gid)
                         : fchownat(tfs_store_fd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW);

    return rc < 0 ? -errno : 0;
}

static int tfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    struct tfs_file *f;
    int rc;

    if (size < 0)
        return -EINVAL;
    if (fi)
        return tfs_file_truncate(F(fi), (uint64_t)size);
    rc = tfs_file_open(tfs_store_fd, rel(path), O_WRONLY, 0, &f);
    if (rc < 0)
        return rc;
    rc = tfs_file_truncate(f, (uint64_t)size);
    tfs_file_release(f);
    return rc;
}

static int tfs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    struct stat st;
    int rc;

    /* pending data would move mtime after it was set */
    if (!path && fi) {
        tfs_file_flush(F(fi));
        rc = futimens(tfs_file_fd(F(fi)), tv);
    } else {
        if (fstatat(tfs_store_fd, rel(path), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            tfs_file_by_inode(st.st_dev, st.st_ino, 1, NULL);
        rc = utimensat(tfs_store_fd, rel(path), tv, AT_SYMLINK_NOFOLLOW);
    }
    return rc < 0 ? -errno : 0;
}

static int tfs_open(const char *path, struct fuse_file_info *fi)
{
    struct tfs_file *f;
    int rc = tfs_file_open(tfs_store_fd, rel(path), fi->flags, 0, &f);

    if (rc < 0)
        return rc;
    fi->fh = (uintptr_t)f;
    return 0;
}

static int tfs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    struct tfs_file *f;
    int fd, rc = create_stored(path, mode);

    if (rc == -EEXIST && (fi->flags & O_EXCL))
        return rc;
    if (rc < 0 && rc != -EEXIST) {
        if (rc != -EOPNOTSUPP)
            return rc;
        /* no O_TMPFILE: an empty file, made a tinyfs file when opened */
        fd = openat(tfs_store_fd, rel(path), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);
        if (fd >= 0) {
            own(path);
        } else if (errno == EEXIST && !(fi->flags & O_EXCL)) {
            fd = openat(tfs_store_fd, rel(path), O_WRONLY | O_CLOEXEC);
        }
        if (fd < 0)
            return -errno;
        close(fd);
    }
    rc = tfs_file_open(tfs_store_fd, rel(path), fi->flags & ~(O_CREAT | O_EXCL), 1, &f);
    if (rc < 0)
        return rc;
    fi->fh = (uintptr_t)f;
    return 0;
}

static int tfs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)path;
    return (int)tfs_file_read(F(fi), buf, size, (uint64_t)off);
}

static int tfs_write(const char *path, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    (void)path;
    /* the kernel already turned O_APPEND into the end-of-file offset */
    return (int)tfs_file_write(F(fi), buf, size, (uint64_t)off, 0);
}

static int tfs_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    return fstatvfs(tfs_store_fd, st) < 0 ? -errno : 0;
}

static int tfs_flush(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    return tfs_file_flush(F(fi));
}

static int tfs_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    tfs_file_release(F(fi));
    return 0;
}

static int tfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    return tfs_file_fsync(F(fi), datasync);
}

static int tfs_fallocate(const char *path, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
    (void)path;
    if (off < 0 || len <= 0)
        return -EINVAL;
    return tfs_file_fallocate(F(fi), mode, (uint64_t)off, (uint64_t)len);
}

/* l*xattr() need a path: the store's absolute path plus the relative one. */
static int full(char *buf, const char *path)
{
    int n = snprintf(buf, PATH_MAX, "%s/%s", tfs_store_path, rel(path));

    return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* The stored bytes of a tinyfs file: header and chunks without the padding. */
static int stored_size(const char *path, uint64_t *out)
{
    uint64_t logical;
    struct stat st;
    int fd = openat(tfs_store_fd, rel(path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int rc = 0;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -ENODATA;
    }
    tfs_file_by_inode(st.st_dev, st.st_ino, 1, NULL);
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    *out = (uint64_t)st.st_size; /* a plain file */
    rc = tfs_measure(fd, &logical, out);
    if (rc == -ENODATA)
        rc = 0;
out:
    close(fd);
    return rc;
}

static int tfs_getxattr(const char *path, const char *name, char *value, size_t size)
{
    char p[PATH_MAX], num[32];
    ssize_t n;
    int rc;

    if (strcmp(name, TFS_XATTR_STORED) == 0) {
        uint64_t v = 0;

        rc = stored_size(path, &v);
        if (rc < 0)
            return rc;
        n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
        if (size == 0)
            return (int)n;
        if ((size_t)n > size)
            return -ERANGE;
        memcpy(value, num, (size_t)n);
        return (int)n;
    }
    rc = full(p, path);
    if (rc < 0)
        return rc;
    n = lgetxattr(p, name, value, size);
    return n < 0 ? -errno : (int)n;
}

static int tfs_setxattr(const char *path, const char *name, const char *value, size_t size,
                        int flags)
{
    char p[PATH_MAX];
    int rc = full(p, path);

    if (strncmp(name, "user.tinyfs.", 12) == 0)
        return -EPERM;
    if (rc < 0)
        return rc;
    return lsetxattr(p, name, value, size, flags) < 0 ? -errno : 0;
}

static int tfs_listxattr(const char *path, char *list, size_t size)
{
    char p[PATH_MAX];
    int rc = full(p, path);
    ssize_t n;

    if (rc < 0)
        return rc;
    n = llistxattr(p, list, size);
    return n < 0 ? -errno : (int)n;
}

static int tfs_removexattr(const char *path, const char *name)
{
    char p[PATH_MAX];
    int rc = full(p, path);

    if (rc < 0)
        return rc;
    return lremovexattr(p, name) < 0 ? -errno : 0;
}

const struct fuse_operations tfs_ops = {
    .init = tfs_init,
    .destroy = tfs_destroy,
    .getattr = tfs_getattr,
    .access = tfs_access,
    .readlink = tfs_readlink,
    .opendir = tfs_opendir,
    .readdir = tfs_readdir,
    .releasedir = tfs_releasedir,
    .fsyncdir = tfs_fsyncdir,
    .mknod = tfs_mknod,
    .mkdir = tfs_mkdir,
    .unlink = tfs_unlink,
    .rmdir = tfs_rmdir,
    .symlink = tfs_symlink,
    .rename = tfs_rename,
    .link = tfs_link,
    .chmod = tfs_chmod,
    .chown = tfs_chown,
    .truncate = tfs_truncate,
    .utimens = tfs_utimens,
    .open = tfs_open,
    .create = tfs_create,
    .read = tfs_read,
    .write = tfs_write,
    .statfs = tfs_statfs,
    .flush = tfs_flush,
    .release = tfs_release,
    .fsync = tfs_fsync,
    .fallocate = tfs_fallocate,
    .setxattr = tfs_setxattr,
    .getxattr = tfs_getxattr,
    .listxattr = tfs_listxattr,
    .removexattr = tfs_removexattr,
};
