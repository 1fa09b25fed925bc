/*
 * passthrough.c - the uncompressed FUSE baseline of tests/bench/fs.sh: every
 * operation goes to the same object under a backing directory, made the way
 * tinyfs makes it (tinyfs/ops.c, tinyfs/main.c) without the compression, so
 * whatever tinyfs costs beyond this program is compression and its own
 * bookkeeping, not FUSE. The same low-level API and kernel inodes: tinyfs's
 * table (tinyfs/inode.c, linked in) of one O_PATH descriptor per backing
 * object, found by st_dev/st_ino, its address the node id. The same settings:
 * entries cached 1 s, attributes for -o attr_timeout= (default 1 s),
 * default_permissions, max_write 1 MiB, no splice, st_blksize 1 MiB for
 * regular files (-o st_blksize=), the mount's read-ahead raised to 1 MiB as
 * root (-o read_ahead_kb=), fuse_parse_conn_info_opts() options, and the
 * multithreaded loop with at most 10 threads. An open regular file is a
 * plain descriptor of the backing file; reads copy into a malloc'd buffer
 * for fuse_reply_buf() as tinyfs's do.
 * Usage: passthrough BACKING MOUNTPOINT [fuse options]
 */
#define FUSE_USE_VERSION 312
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tinyfs.h"

#define ENTRY_TIMEOUT 1.0 /* tinyfs/ops.c's */
#define ATTR_TIMEOUT  1.0 /* and its default -o attr_timeout */

const char *tfs_store_path; /* the backing directory, for inode.c */
static int store_fd = -1;
static unsigned st_blksize = 1u << 20;
static double attr_timeout;
static struct fuse_conn_info_opts *conn_opts;

struct conf {
    int st_blksize, read_ahead_kb; /* -1: the default */
    double attr_timeout;
};

static const struct fuse_opt opts[] = {
    {"st_blksize=%d", offsetof(struct conf, st_blksize), 0},
    {"read_ahead_kb=%d", offsetof(struct conf, read_ahead_kb), 0},
    {"attr_timeout=%lf", offsetof(struct conf, attr_timeout), 0},
    FUSE_OPT_END,
};

static struct tfs_inode *I(fuse_ino_t ino)
{
    return tfs_inode_get(ino);
}

static int fh(struct fuse_file_info *fi)
{
    return (int)fi->fh;
}

/* tinyfs's owner_for(): as root, a new object goes to the calling user (and
 * the group of a set-group-ID parent). 0 when nothing is to be done. */
static int owner_for(fuse_req_t req, struct tfs_inode *parent, uid_t *uid, gid_t *gid)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    struct stat st;

    if (geteuid() != 0 || (ctx->uid == 0 && ctx->gid == 0))
        return 0;
    *uid = ctx->uid;
    *gid = ctx->gid;
    if (fstatat(parent->fd, "", &st, AT_EMPTY_PATH) == 0 && (st.st_mode & S_ISGID))
        *gid = st.st_gid;
    return 1;
}

/* cp and cat size their buffers by st_blksize: as tinyfs's set_blksize() */
static void set_blksize(struct stat *st)
{
    if (S_ISREG(st->st_mode) && st_blksize)
        st->st_blksize = (blksize_t)st_blksize;
}

static int stat_inode(struct tfs_inode *i, struct fuse_file_info *fi, struct stat *st)
{
    int rc = fi && i->type == S_IFREG ? fstat(fh(fi), st)
                                      : fstatat(i->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);

    if (rc < 0)
        return -errno;
    set_blksize(st);
    return 0;
}

/* Looks @name up in @parent for a reply (taking the kernel's reference). */
static int do_lookup(fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
    struct tfs_inode *i;
    int rc;

    memset(e, 0, sizeof(*e));
    rc = tfs_inode_lookup(I(parent), name, &e->attr, &i);
    if (rc < 0)
        return rc;
    set_blksize(&e->attr);
    e->ino = tfs_inode_id(i);
    e->attr_timeout = attr_timeout;
    e->entry_timeout = ENTRY_TIMEOUT;
    return 0;
}

static void pt_init(void *data, struct fuse_conn_info *conn)
{
    (void)data;
    /* tinyfs's tfs_init(): requests read into memory, 1 MiB writes; -o wins */
    conn->want &= ~(unsigned)(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    conn->max_write = 1u << 20;
    if (conn_opts)
        fuse_apply_conn_info_opts(conn_opts, conn);
    umask(0);
}

static void pt_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e;
    int rc = do_lookup(parent, name, &e);

    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_entry(req, &e);
}

/* Replies to a call that made @name in @parent (@rc < 0: it failed, errno). */
static void reply_made(fuse_req_t req, fuse_ino_t parent, const char *name, int rc)
{
    uid_t uid;
    gid_t gid;

    if (rc < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    if (owner_for(req, I(parent), &uid, &gid))
        fchownat(I(parent)->fd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
    pt_lookup(req, parent, name);
}

static void pt_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    tfs_inode_forget(I(ino), nlookup);
    fuse_reply_none(req);
}

static void pt_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t k = 0; k < count; k++)
        tfs_inode_forget(I(forgets[k].ino), forgets[k].nlookup);
    fuse_reply_none(req);
}

static void pt_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;
    int rc = stat_inode(I(ino), fi, &st);

    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, attr_timeout);
}

static int set_times(struct tfs_inode *i, const struct stat *attr, int to_set,
                     struct fuse_file_info *fi)
{
    struct timespec tv[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
    char path[PATH_MAX];
    int rc;

    if (to_set & FUSE_SET_ATTR_ATIME_NOW)
        tv[0].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_ATIME)
        tv[0] = attr->st_atim;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW)
        tv[1].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_MTIME)
        tv[1] = attr->st_mtim;
    if (fi && i->type == S_IFREG)
        return futimens(fh(fi), tv) < 0 ? -errno : 0;
    if (i->type == S_IFLNK) {
        /* no descriptor of a symlink takes timestamps: its current path */
        rc = tfs_inode_name(i, path, sizeof(path), 0);
        if (rc < 0)
            return rc;
        return utimensat(AT_FDCWD, path, tv, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
    }
    tfs_inode_path(i, path);
    return utimensat(AT_FDCWD, path, tv, 0) < 0 ? -errno : 0;
}

static int set_size(struct tfs_inode *i, off_t size, struct fuse_file_info *fi)
{
    char path[TFS_PROC_PATH];

    if (size < 0)
        return -EINVAL;
    if (i->type != S_IFREG)
        return i->type == S_IFDIR ? -EISDIR : -EINVAL;
    if (fi)
        return ftruncate(fh(fi), size) < 0 ? -errno : 0;
    tfs_inode_path(i, path);
    return truncate(path, size) < 0 ? -errno : 0;
}

static void pt_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    struct tfs_inode *i = I(ino);
    char path[TFS_PROC_PATH];
    int rc = 0;
    struct stat st;

    if (i->type != S_IFREG)
        fi = NULL; /* only a regular file's handle is a descriptor */
    if (to_set & FUSE_SET_ATTR_MODE) {
        tfs_inode_path(i, path);
        if (i->type == S_IFLNK)
            rc = -EOPNOTSUPP;
        else if ((fi ? fchmod(fh(fi), attr->st_mode) : chmod(path, attr->st_mode)) < 0)
            rc = -errno;
    }
    if (rc == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
        uid_t uid = to_set & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
        gid_t gid = to_set & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;

        if (fchownat(i->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
            rc = -errno;
    }
    if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE))
        rc = set_size(i, attr->st_size, fi);
    if (rc == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
                              FUSE_SET_ATTR_MTIME_NOW)))
        rc = set_times(i, attr, to_set, fi);
    if (rc == 0)
        rc = stat_inode(i, fi, &st);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, attr_timeout);
}

static void pt_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    char path[TFS_PROC_PATH];
    struct tfs_inode *i = I(ino);

    if (i->type == S_IFLNK) {
        fuse_reply_err(req, 0);
        return;
    }
    tfs_inode_path(i, path);
    fuse_reply_err(req, access(path, mask) < 0 ? errno : 0);
}

static void pt_readlink(fuse_req_t req, fuse_ino_t ino)
{
    char buf[PATH_MAX + 1];
    ssize_t n = readlinkat(I(ino)->fd, "", buf, sizeof(buf) - 1);

    if (n < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    buf[n] = 0;
    fuse_reply_readlink(req, buf);
}

/* tinyfs's open directory: its stream, and the entry read last but not yet
 * given to the kernel (a full reply buffer leaves one behind). */
struct dirh {
    DIR *d;
    struct dirent *pending;
    off_t off; /* telldir() after the entries given so far */
};

static void pt_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct dirh *h = calloc(1, sizeof(*h));
    int fd;

    if (!h) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    fd = openat(I(ino)->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0 && !(h->d = fdopendir(fd))) {
        int e = errno;

        close(fd);
        errno = e;
    }
    if (!h->d) {
        fuse_reply_err(req, errno);
        free(h);
        return;
    }
    fi->fh = (uintptr_t)h;
    if (fuse_reply_open(req, fi) == -ENOENT) {
        closedir(h->d);
        free(h);
    }
}

static void pt_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
    char *buf = malloc(size), *p = buf;
    size_t left = size;
    int err = 0;

    (void)ino;
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (off != h->off) {
        seekdir(h->d, off);
        h->pending = NULL;
        h->off = off;
    }
    for (;;) {
        struct dirent *de = h->pending;
        struct stat st;
        off_t next;
        size_t n;

        if (!de) {
            errno = 0;
            de = readdir(h->d);
            if (!de) {
                err = errno;
                break;
            }
        }
        next = telldir(h->d);
        h->pending = NULL;
        memset(&st, 0, sizeof(st));
        st.st_ino = de->d_ino;
        st.st_mode = (mode_t)DTTOIF(de->d_type);
        n = fuse_add_direntry(req, p, left, de->d_name, &st, next);
        if (n > left) {
            h->pending = de; /* the next call starts with it */
            break;
        }
        p += n;
        left -= n;
        h->off = next;
    }
    if (err && p == buf)
        fuse_reply_err(req, err);
    else
        fuse_reply_buf(req, buf, size - left);
    free(buf);
}

static void pt_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;

    (void)ino;
    closedir(h->d);
    free(h);
    fuse_reply_err(req, 0);
}

static void pt_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    int fd = dirfd(((struct dirh *)(uintptr_t)fi->fh)->d);

    (void)ino;
    fuse_reply_err(req, (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0);
}

static void pt_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    reply_made(req, parent, name, mknodat(I(parent)->fd, name, mode, rdev));
}

static void pt_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    reply_made(req, parent, name, mkdirat(I(parent)->fd, name, mode));
}

static void pt_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
    reply_made(req, parent, name, symlinkat(target, I(parent)->fd, name));
}

static void pt_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, unlinkat(I(parent)->fd, name, 0) < 0 ? errno : 0);
}

static void pt_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, unlinkat(I(parent)->fd, name, AT_REMOVEDIR) < 0 ? errno : 0);
}

static void pt_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    int rc = renameat2(I(parent)->fd, name, I(newparent)->fd, newname, flags);

    fuse_reply_err(req, rc < 0 ? errno : 0);
}

static void pt_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    struct tfs_inode *i = I(ino);
    char path[TFS_PROC_PATH];
    int rc;

    /* without CAP_DAC_READ_SEARCH, through /proc (which links a symlink
     * itself, not its target) */
    rc = linkat(i->fd, "", I(newparent)->fd, newname, AT_EMPTY_PATH);
    if (rc < 0 && (errno == ENOENT || errno == EPERM)) {
        tfs_inode_path(i, path);
        rc = linkat(AT_FDCWD, path, I(newparent)->fd, newname, AT_SYMLINK_FOLLOW);
    }
    if (rc < 0)
        fuse_reply_err(req, errno);
    else
        pt_lookup(req, newparent, newname);
}

static void pt_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct tfs_inode *i = I(ino);
    char path[TFS_PROC_PATH];
    int fd;

    if (i->type != S_IFREG) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    /* the O_PATH descriptor does no I/O: its /proc link reopens the object,
     * as tinyfs's open_file() does (O_NOFOLLOW would refuse the link) */
    tfs_inode_path(i, path);
    fd = open(path, (fi->flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);
    if (fd < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    fi->fh = (uint64_t)fd;
    if (fuse_reply_open(req, fi) == -ENOENT)
        close(fd); /* the opener was interrupted */
}

static void pt_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    struct tfs_inode *p = I(parent), *i;
    int flags = (fi->flags & ~(O_CREAT | O_EXCL)) | O_CLOEXEC | O_NOFOLLOW, fd, rc;
    struct fuse_entry_param e;
    uid_t uid;
    gid_t gid;

    /* O_EXCL first: only a file made here is given to the caller */
    fd = openat(p->fd, name, flags | O_CREAT | O_EXCL, mode);
    if (fd >= 0 && owner_for(req, p, &uid, &gid))
        fchown(fd, uid, gid);
    else if (fd < 0 && errno == EEXIST && !(fi->flags & O_EXCL))
        fd = openat(p->fd, name, flags);
    if (fd < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    rc = do_lookup(parent, name, &e);
    if (rc == 0 && (i = I(e.ino))->type != S_IFREG) {
        rc = i->type == S_IFDIR ? -EISDIR : -EINVAL;
        tfs_inode_forget(i, 1);
    }
    if (rc < 0) {
        close(fd);
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = (uint64_t)fd;
    if (fuse_reply_create(req, &e, fi) == -ENOENT) {
        close(fd);
        tfs_inode_forget(I(e.ino), 1);
    }
}

static void pt_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    /* a copy through memory, not fuse_reply_data() from the descriptor: the
     * work of tinyfs's reads less the decompression */
    char *buf = malloc(size ? size : 1);
    ssize_t n;

    (void)ino;
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    n = pread(fh(fi), buf, size, off);
    if (n < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
}

static void pt_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    ssize_t n = pwrite(fh(fi), buf, size, off);

    (void)ino;
    if (n < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_write(req, (size_t)n);
}

static void pt_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs st;

    (void)ino;
    if (fstatvfs(store_fd, &st) < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_statfs(req, &st);
}

static void pt_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    /* each close() of the mount is one of the backing file (its locks, an
     * NFS write-back), while the handle stays open for the release */
    int fd = dup(fh(fi));

    (void)ino;
    fuse_reply_err(req, fd < 0 || close(fd) < 0 ? errno : 0);
}

static void pt_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    close(fh(fi));
    fuse_reply_err(req, 0);
}

static void pt_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    fuse_reply_err(req, (datasync ? fdatasync(fh(fi)) : fsync(fh(fi))) < 0 ? errno : 0);
}

static void pt_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
    (void)ino;
    fuse_reply_err(req, fallocate(fh(fi), mode, off, len) < 0 ? errno : 0);
}

/* A path the l*xattr() calls take for @i: /proc/self/fd/N reaches every
 * object but a symlink, which is taken by its current path. */
static int xattr_path(struct tfs_inode *i, char *buf, size_t size)
{
    if (i->type == S_IFLNK)
        return tfs_inode_name(i, buf, size, 0);
    tfs_inode_path(i, buf);
    return 0;
}

/* Replies to a get/list xattr call with @n bytes of @value (@n < 0: -errno). */
static void reply_xattr(fuse_req_t req, size_t size, const char *value, ssize_t n)
{
    if (n < 0)
        fuse_reply_err(req, (int)-n);
    else if (size == 0)
        fuse_reply_xattr(req, (size_t)n);
    else
        fuse_reply_buf(req, value, (size_t)n);
}

static void pt_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct tfs_inode *i = I(ino);
    char p[PATH_MAX], *value = NULL;
    ssize_t n;
    int rc = xattr_path(i, p, sizeof(p));

    if (rc == 0 && size && !(value = malloc(size)))
        rc = -ENOMEM;
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    n = i->type == S_IFLNK ? lgetxattr(p, name, value, size) : getxattr(p, name, value, size);
    reply_xattr(req, size, value, n < 0 ? -errno : n);
    free(value);
}

static void pt_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct tfs_inode *i = I(ino);
    char p[PATH_MAX], *list = NULL;
    ssize_t n;
    int rc = xattr_path(i, p, sizeof(p));

    if (rc == 0 && size && !(list = malloc(size)))
        rc = -ENOMEM;
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    n = i->type == S_IFLNK ? llistxattr(p, list, size) : listxattr(p, list, size);
    reply_xattr(req, size, list, n < 0 ? -errno : n);
    free(list);
}

static struct fuse_session *se_now;

static void pt_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
    struct tfs_inode *i = I(ino);
    char p[PATH_MAX];
    int rc = xattr_path(i, p, sizeof(p));

    if (rc == 0 && (i->type == S_IFLNK ? lsetxattr(p, name, value, size, flags)
                                       : setxattr(p, name, value, size, flags)) < 0)
        rc = -errno;
    if (rc == 0 && se_now) /* as tinyfs: the ctime and an ACL's mode changed */
        fuse_lowlevel_notify_inval_inode(se_now, ino, -1, 0);
    fuse_reply_err(req, -rc);
}

static void pt_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    struct tfs_inode *i = I(ino);
    char p[PATH_MAX];
    int rc = xattr_path(i, p, sizeof(p));

    if (rc == 0 && (i->type == S_IFLNK ? lremovexattr(p, name) : removexattr(p, name)) < 0)
        rc = -errno;
    if (rc == 0 && se_now)
        fuse_lowlevel_notify_inval_inode(se_now, ino, -1, 0);
    fuse_reply_err(req, -rc);
}

static const struct fuse_lowlevel_ops pt_ops = {
    .init = pt_init,
    .lookup = pt_lookup,
    .forget = pt_forget,
    .forget_multi = pt_forget_multi,
    .getattr = pt_getattr,
    .setattr = pt_setattr,
    .access = pt_access,
    .readlink = pt_readlink,
    .opendir = pt_opendir,
    .readdir = pt_readdir,
    .releasedir = pt_releasedir,
    .fsyncdir = pt_fsyncdir,
    .mknod = pt_mknod,
    .mkdir = pt_mkdir,
    .unlink = pt_unlink,
    .rmdir = pt_rmdir,
    .symlink = pt_symlink,
    .rename = pt_rename,
    .link = pt_link,
    .open = pt_open,
    .create = pt_create,
    .read = pt_read,
    .write = pt_write,
    .statfs = pt_statfs,
    .flush = pt_flush,
    .release = pt_release,
    .fsync = pt_fsync,
    .fallocate = pt_fallocate,
    .setxattr = pt_setxattr,
    .getxattr = pt_getxattr,
    .listxattr = pt_listxattr,
    .removexattr = pt_removexattr,
};

/* tinyfs/main.c read_ahead_thread(): the mount's bdi read_ahead_kb, once INIT
 * is done (a stat of the mount point waits for it). */
static char *ra_mnt;
static int ra_kb;

static void *read_ahead_thread(void *arg)
{
    char path[96];
    struct stat st;
    int fd;

    (void)arg;
    if (stat(ra_mnt, &st) < 0)
        return NULL;
    snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
             minor(st.st_dev));
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        dprintf(fd, "%d\n", ra_kb);
        close(fd);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct conf c = {-1, -1, ATTR_TIMEOUT};
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    struct fuse_cmdline_opts o = {0};
    struct fuse_loop_config *lc;
    struct fuse_session *se = NULL;
    struct rlimit rl;
    char *store;
    int rc = 1;

    if (argc < 3) {
        fprintf(stderr, "usage: passthrough BACKING MOUNTPOINT [fuse options]\n");
        return 2;
    }
    /* absolute: inode.c names symlinks by their path for utimensat/l*xattr */
    store = realpath(argv[1], NULL);
    store_fd = store ? open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (store_fd < 0) {
        fprintf(stderr, "passthrough: cannot open %s: %s\n", argv[1], strerror(errno));
        free(store);
        return 1;
    }
    tfs_store_path = store;
    fuse_opt_add_arg(&args, argv[0]);
    for (int i = 2; i < argc; i++)
        fuse_opt_add_arg(&args, argv[i]);
    fuse_opt_add_arg(&args, "-odefault_permissions");
    fuse_opt_add_arg(&args, "-osubtype=passthrough");
    if (fuse_opt_parse(&args, &c, opts, NULL) < 0)
        goto out;
    if (c.st_blksize >= 0)
        st_blksize = (unsigned)c.st_blksize;
    if (c.attr_timeout < 0 || c.attr_timeout > 86400) {
        fprintf(stderr, "passthrough: attr_timeout must be 0 to 86400 seconds\n");
        rc = 2;
        goto out;
    }
    attr_timeout = c.attr_timeout;
    conn_opts = fuse_parse_conn_info_opts(&args);
    if (!conn_opts || fuse_parse_cmdline(&args, &o) != 0)
        goto out;
    if (o.show_help || o.show_version) { /* not mistaken for options to mount with */
        if (o.show_help) {
            printf("usage: passthrough BACKING MOUNTPOINT [fuse options]\n\n");
            fuse_cmdline_help();
            fuse_lowlevel_help();
        } else {
            printf("passthrough (libfuse %s)\n", fuse_pkgversion());
        }
        rc = 0;
        goto out;
    }
    if (!o.mountpoint)
        goto out;
    /* one O_PATH descriptor per inode the kernel caches, as tinyfs */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (tfs_inode_init(store_fd) < 0) {
        fprintf(stderr, "passthrough: cannot open %s: %s\n", store, strerror(errno));
        goto out_inodes;
    }
    se = fuse_session_new(&args, &pt_ops, sizeof(pt_ops), NULL);
    if (!se)
        goto out_inodes;
    se_now = se;
    if (fuse_session_mount(se, o.mountpoint) != 0)
        goto out_destroy;
    if (fuse_daemonize(o.foreground) != 0 || fuse_set_signal_handlers(se) != 0)
        goto out_unmount;
    if (c.read_ahead_kb != 0 && geteuid() == 0) {
        pthread_t t;

        ra_mnt = o.mountpoint;
        ra_kb = c.read_ahead_kb > 0 ? c.read_ahead_kb : 1024;
        if (pthread_create(&t, NULL, read_ahead_thread, NULL) == 0)
            pthread_detach(t);
    }
    if (o.singlethread) {
        rc = fuse_session_loop(se) ? 1 : 0;
    } else if ((lc = fuse_loop_cfg_create())) {
        fuse_loop_cfg_set_clone_fd(lc, o.clone_fd);
        /* libfuse 3.14 leaves an unset max_threads at -1 and complains */
        fuse_loop_cfg_set_max_threads(
            lc, o.max_threads > 0 && o.max_threads <= 100000 ? o.max_threads : 10);
        if (o.max_idle_threads != UINT_MAX)
            fuse_loop_cfg_set_idle_threads(lc, o.max_idle_threads);
        rc = fuse_session_loop_mt(se, lc) ? 1 : 0;
        fuse_loop_cfg_destroy(lc);
    }
    fuse_remove_signal_handlers(se);
out_unmount:
    fuse_session_unmount(se);
out_destroy:
    fuse_session_destroy(se);
out_inodes:
    tfs_inode_fini();
out:
    free(o.mountpoint);
    free(conn_opts);
    fuse_opt_free_args(&args);
    close(store_fd);
    free(store);
    return rc;
}
