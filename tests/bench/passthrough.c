/*
 * passthrough.c - the uncompressed FUSE baseline of tests/bench/fs.sh: every
 * operation goes to the same path under a backing directory, with the FUSE
 * settings of tinyfs (tinyfs/main.c, tinyfs/ops.c): the high-level API,
 * use_ino, nullpath_ok, attr_timeout 0, default_permissions, max_write
 * 1 MiB, no splice, st_blksize 1 MiB for regular files, the mount's
 * read-ahead raised to 1 MiB (as root), the same -o st_blksize=,
 * read_ahead_kb=, attr_timeout= and fuse_parse_conn_info_opts() options,
 * and the multithreaded loop with at most 10 threads. Whatever tinyfs costs beyond
 * this program is compression and its own bookkeeping, not FUSE.
 * Usage: passthrough BACKING MOUNTPOINT [fuse options]
 */
#define FUSE_USE_VERSION 312
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int root = -1;
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

/* "/a/b" -> "a/b", "/" -> "." relative to the backing directory */
static const char *rel(const char *path)
{
    return path[1] ? path + 1 : ".";
}

static void *pt_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    conn->want &= ~(unsigned)(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    conn->max_write = 1u << 20;
    if (conn_opts)
        fuse_apply_conn_info_opts(conn_opts, conn);
    cfg->use_ino = 1;
    cfg->nullpath_ok = 1;
    cfg->attr_timeout = attr_timeout;
    umask(0);
    return NULL;
}

static int pt_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    int rc =
        !path && fi ? fstat((int)fi->fh, st) : fstatat(root, rel(path), st, AT_SYMLINK_NOFOLLOW);
    if (rc == 0 && S_ISREG(st->st_mode) && st_blksize)
        st->st_blksize = (blksize_t)st_blksize;
    return rc < 0 ? -errno : 0;
}

static int pt_access(const char *path, int mask)
{
    return faccessat(root, rel(path), mask, 0) < 0 ? -errno : 0;
}

static int pt_readlink(const char *path, char *buf, size_t size)
{
    ssize_t n = readlinkat(root, rel(path), buf, size - 1);

    if (n < 0)
        return -errno;
    buf[n] = 0;
    return 0;
}

static int pt_opendir(const char *path, struct fuse_file_info *fi)
{
    int fd = openat(root, rel(path), O_RDONLY | O_DIRECTORY);
    DIR *d;

    if (fd < 0)
        return -errno;
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    fi->fh = (uintptr_t)d;
    return 0;
}

static int pt_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    DIR *d = (DIR *)(uintptr_t)fi->fh;
    struct dirent *e;

    (void)path;
    (void)off;
    (void)flags;
    rewinddir(d);
    while ((e = readdir(d))) {
        struct stat st = {.st_ino = e->d_ino, .st_mode = (mode_t)DTTOIF(e->d_type)};
        if (fill(buf, e->d_name, &st, 0, 0))
            break;
    }
    return 0;
}

static int pt_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    closedir((DIR *)(uintptr_t)fi->fh);
    return 0;
}

static int pt_mknod(const char *path, mode_t mode, dev_t rdev)
{
    return mknodat(root, rel(path), mode, rdev) < 0 ? -errno : 0;
}

static int pt_mkdir(const char *path, mode_t mode)
{
    return mkdirat(root, rel(path), mode) < 0 ? -errno : 0;
}

static int pt_unlink(const char *path)
{
    return unlinkat(root, rel(path), 0) < 0 ? -errno : 0;
}

static int pt_rmdir(const char *path)
{
    return unlinkat(root, rel(path), AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int pt_symlink(const char *target, const char *path)
{
    return symlinkat(target, root, rel(path)) < 0 ? -errno : 0;
}

static int pt_rename(const char *from, const char *to, unsigned int flags)
{
    return renameat2(root, rel(from), root, rel(to), flags) < 0 ? -errno : 0;
}

static int pt_link(const char *from, const char *to)
{
    return linkat(root, rel(from), root, rel(to), 0) < 0 ? -errno : 0;
}

static int pt_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    int rc = fi ? fchmod((int)fi->fh, mode) : fchmodat(root, rel(path), mode, 0);
    return rc < 0 ? -errno : 0;
}

static int pt_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    int rc = fi ? fchown((int)fi->fh, uid, gid)
                : fchownat(root, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW);
    return rc < 0 ? -errno : 0;
}

static int pt_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    int rc, fd;

    if (fi)
        return ftruncate((int)fi->fh, size) < 0 ? -errno : 0;
    fd = openat(root, rel(path), O_WRONLY);
    if (fd < 0)
        return -errno;
    rc = ftruncate(fd, size) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int pt_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    int rc = fi ? futimens((int)fi->fh, tv) : utimensat(root, rel(path), tv, AT_SYMLINK_NOFOLLOW);
    return rc < 0 ? -errno : 0;
}

static int pt_open(const char *path, struct fuse_file_info *fi)
{
    int fd = openat(root, rel(path), fi->flags & ~O_NOFOLLOW);

    if (fd < 0)
        return -errno;
    fi->fh = (uint64_t)fd;
    return 0;
}

static int pt_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    int fd = openat(root, rel(path), fi->flags | O_CREAT, mode);

    if (fd < 0)
        return -errno;
    fi->fh = (uint64_t)fd;
    return 0;
}

static int pt_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    ssize_t n = pread((int)fi->fh, buf, size, off);

    (void)path;
    return n < 0 ? -errno : (int)n;
}

static int pt_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    ssize_t n = pwrite((int)fi->fh, buf, size, off);

    (void)path;
    return n < 0 ? -errno : (int)n;
}

static int pt_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    return fstatvfs(root, st) < 0 ? -errno : 0;
}

static int pt_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    close((int)fi->fh);
    return 0;
}

static int pt_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    int rc = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);

    (void)path;
    return rc < 0 ? -errno : 0;
}

static const struct fuse_operations pt_ops = {
    .init = pt_init,
    .getattr = pt_getattr,
    .access = pt_access,
    .readlink = pt_readlink,
    .opendir = pt_opendir,
    .readdir = pt_readdir,
    .releasedir = pt_releasedir,
    .mknod = pt_mknod,
    .mkdir = pt_mkdir,
    .unlink = pt_unlink,
    .rmdir = pt_rmdir,
    .symlink = pt_symlink,
    .rename = pt_rename,
    .link = pt_link,
    .chmod = pt_chmod,
    .chown = pt_chown,
    .truncate = pt_truncate,
    .utimens = pt_utimens,
    .open = pt_open,
    .create = pt_create,
    .read = pt_read,
    .write = pt_write,
    .statfs = pt_statfs,
    .release = pt_release,
    .fsync = pt_fsync,
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
    struct conf c = {-1, -1, 0};
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    struct fuse_cmdline_opts o = {0};
    struct fuse_loop_config *lc;
    struct fuse *fuse = NULL;
    int rc = 1;

    if (argc < 3) {
        fprintf(stderr, "usage: passthrough BACKING MOUNTPOINT [fuse options]\n");
        return 2;
    }
    root = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) {
        fprintf(stderr, "passthrough: cannot open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    fuse_opt_add_arg(&args, argv[0]);
    for (int i = 2; i < argc; i++)
        fuse_opt_add_arg(&args, argv[i]);
    fuse_opt_add_arg(&args, "-odefault_permissions");
    fuse_opt_add_arg(&args, "-osubtype=passthrough");
    if (fuse_opt_parse(&args, &c, opts, NULL) < 0)
        goto out;
    if (c.st_blksize >= 0)
        st_blksize = (unsigned)c.st_blksize;
    attr_timeout = c.attr_timeout;
    conn_opts = fuse_parse_conn_info_opts(&args);
    if (!conn_opts || fuse_parse_cmdline(&args, &o) != 0 || !o.mountpoint)
        goto out;
    fuse = fuse_new(&args, &pt_ops, sizeof(pt_ops), NULL);
    if (!fuse)
        goto out;
    if (fuse_mount(fuse, o.mountpoint) != 0)
        goto out_destroy;
    if (fuse_daemonize(o.foreground) != 0 || fuse_set_signal_handlers(fuse_get_session(fuse)) != 0)
        goto out_unmount;
    if (c.read_ahead_kb != 0 && geteuid() == 0) {
        pthread_t t;

        ra_mnt = o.mountpoint;
        ra_kb = c.read_ahead_kb > 0 ? c.read_ahead_kb : 1024;
        if (pthread_create(&t, NULL, read_ahead_thread, NULL) == 0)
            pthread_detach(t);
    }
    lc = fuse_loop_cfg_create();
    if (!lc)
        goto out_unmount;
    fuse_loop_cfg_set_clone_fd(lc, o.clone_fd);
    fuse_loop_cfg_set_max_threads(lc, o.max_threads > 0 && o.max_threads <= 100000 ? o.max_threads
                                                                                   : 10);
    fuse_loop_cfg_set_idle_threads(lc, o.max_idle_threads);
    rc = fuse_loop_mt(fuse, lc) ? 1 : 0;
    fuse_loop_cfg_destroy(lc);
    fuse_remove_signal_handlers(fuse_get_session(fuse));
out_unmount:
    fuse_unmount(fuse);
out_destroy:
    fuse_destroy(fuse);
out:
    free(o.mountpoint);
    free(conn_opts);
    fuse_opt_free_args(&args);
    close(root);
    return rc;
}
