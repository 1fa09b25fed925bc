/*
 * ops.c - the FUSE operations of tinyfs (libfuse3 low-level interface).
 *
 * Everything but the contents of regular files is passed through to the
 * store directory with the *at() calls relative to the O_PATH descriptors of
 * inode.c, so names, directories, symlinks, hard links, permissions,
 * ownership, timestamps and user xattrs are those of the store. Regular
 * files go through file.c. Permission checks are the kernel's
 * (default_permissions); as root, objects are created and then given to the
 * calling user.
 *
 * Each stored object is one kernel inode, whatever its names, so an open
 * file that is unlinked stays reachable through its descriptor with nothing
 * renamed, and the kernel's cached attributes and pages of a hard-linked
 * file are those of every name. Opening a file for writing (open, create,
 * a truncate by name) counts as a writer of its inode for pagecache.c, and
 * finishes on its thread when a store to the file's pages is in progress.
 * The undo journal in the store's root is not part of the filesystem: no
 * call finds, makes or removes that name there.
 */
#define FUSE_USE_VERSION 312

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
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
#define ENTRY_TIMEOUT  1.0 /* seconds the kernel keeps a name -> inode answer */

int tfs_store_fd = -1;
const char *tfs_store_path;
/* FUSE settings (main.c fills them from the options; docs/man/tinyfs.1) */
unsigned tfs_max_write = TFS_MAX_WRITE;
unsigned tfs_st_blksize = TFS_ST_BLKSIZE;
double tfs_attr_timeout = 1.0; /* -o attr_timeout */
struct fuse_conn_info_opts *tfs_conn_opts;
struct fuse_session *tfs_se; /* for notifications to the kernel */

static struct tfs_inode *I(fuse_ino_t ino)
{
    return tfs_inode_get(ino);
}

/* fi->fh of a regular file: its struct tfs_file, the low bit set when the
 * handle counts as a writer of its inode (pagecache.c) */
static struct tfs_file *F(struct fuse_file_info *fi)
{
    return (struct tfs_file *)(uintptr_t)(fi->fh & ~(uint64_t)1);
}

static int may_write(int flags)
{
    return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static void release_handle(struct tfs_inode *i, struct fuse_file_info *fi)
{
    tfs_file_release(F(fi));
    if (fi->fh & 1)
        tfs_pc_writer_done(i);
}

/* The rest of a request that opens a file for writing. It must not run
 * while a store to the file's page cache is in progress (pagecache.c), so it
 * runs at once, or later on the store thread. */
struct later {
    void (*fn)(struct later *);
    fuse_req_t req;
    struct tfs_inode *i;
    struct fuse_file_info fi;
    int has_fi;
    struct fuse_entry_param e; /* create */
    int lookup_ref;            /* create: @e's reference, forgotten on failure */
    struct stat attr;          /* setattr */
    int to_set;
};

static void run_later(void *arg)
{
    struct later *l = arg;

    l->fn(l);
    free(l);
}

/* Counts a writer of l->i, then runs l->fn (which replies, and undoes the
 * count if it fails); takes @l. */
static void as_writer(struct later *l)
{
    int rc = tfs_pc_writer(l->i, run_later, l);

    if (rc == 0) {
        run_later(l);
    } else if (rc < 0) {
        if (l->lookup_ref)
            tfs_inode_forget(l->i, 1);
        fuse_reply_err(l->req, -rc);
        free(l);
    }
}

/* A struct later, or NULL with the request answered ENOMEM. */
static struct later *later_new(fuse_req_t req, struct tfs_inode *i, void (*fn)(struct later *),
                               struct fuse_file_info *fi)
{
    struct later *l = calloc(1, sizeof(*l));

    if (!l) {
        fuse_reply_err(req, ENOMEM);
        return NULL;
    }
    l->fn = fn;
    l->req = req;
    l->i = i;
    if (fi) {
        l->fi = *fi;
        l->has_fi = 1;
    }
    return l;
}

/* The journal's name in the store's root. */
static int is_journal(fuse_ino_t parent, const char *name)
{
    return parent == FUSE_ROOT_ID && strcmp(name, TFS_JOURNAL) == 0;
}

/* The owner a newly created object in @parent gets when we are root: the
 * calling user, and the group of a set-group-ID parent directory. 0 when
 * nothing is to be done. */
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

/* Gives the newly created @name in @parent to the calling user. */
static void own(fuse_req_t req, struct tfs_inode *parent, const char *name)
{
    uid_t uid;
    gid_t gid;

    if (owner_for(req, parent, &uid, &gid))
        fchownat(parent->fd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
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

/* The logical attributes of @i: 0 or -errno. */
static int stat_inode(struct tfs_inode *i, struct fuse_file_info *fi, struct stat *st)
{
    int rc = 0;

    if (fi && i->type == S_IFREG && fi->fh) {
        rc = tfs_file_fstat(F(fi), st);
    } else if (fstatat(i->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
        rc = -errno;
    } else {
        tfs_stat_fixup(i, st);
    }
    set_blksize(st);
    return rc;
}

/* Looks @name up in @parent and fills @e for a reply (taking the kernel's
 * lookup reference). 0 or -errno. */
static int do_lookup(fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
    struct tfs_inode *i;
    int rc;

    if (is_journal(parent, name))
        return -ENOENT;
    memset(e, 0, sizeof(*e));
    rc = tfs_inode_lookup(I(parent), name, &e->attr, &i);
    if (rc < 0)
        return rc;
    tfs_stat_fixup(i, &e->attr);
    set_blksize(&e->attr);
    e->ino = tfs_inode_id(i);
    e->attr_timeout = tfs_attr_timeout;
    e->entry_timeout = ENTRY_TIMEOUT;
    return 0;
}

/* Replies with the entry of @name in @parent: a lookup, or a call that made
 * it. */
static void tfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e;
    int rc = do_lookup(parent, name, &e);

    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_entry(req, &e);
}

static void tfs_init(void *data, struct fuse_conn_info *conn)
{
    (void)data;
    /* Requests are read into memory: with splice a write's data would be
     * spliced into a pipe and then copied out of it again, as no write_buf
     * operation takes the pipe itself. max_write above 128 KiB makes libfuse
     * raise max_pages, so one request carries a whole cp buffer. The rest are
     * libfuse's defaults (async reads, parallel directory operations). The
     * kernel's write-back cache stays off: every write reaches tinyfs, which
     * compresses it as it comes; with the cache, pages are copied once more
     * and writes arrive out of order (docs/benchmarks.md: slower).
     * Every change of a file goes through tinyfs, and the kernel updates its
     * pages with it, so its pages stay valid across opens (keep_cache) and
     * a new modification time is no reason to drop them (auto_inval_data
     * off): dropping them while a write is on its way to tinyfs lets a read
     * that fills them again overtake the write (tinyfs(1), BUGS). Where a
     * change could not be stored, tinyfs drops them itself (changed()).
     * Options given with -o override all of this. */
    conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
    conn->want &= ~(unsigned)FUSE_CAP_SPLICE_READ;
    conn->want &= ~(unsigned)(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    if (tfs_max_write)
        conn->max_write = tfs_max_write;
    if (tfs_conn_opts)
        fuse_apply_conn_info_opts(tfs_conn_opts, conn);
    umask(0);
    tfs_codec_init();
}

static void tfs_destroy(void *data)
{
    (void)data;
    tfs_file_journal_close();
    tfs_codec_fini();
}

static void tfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    tfs_inode_forget(I(ino), nlookup);
    fuse_reply_none(req);
}

static void tfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t k = 0; k < count; k++)
        tfs_inode_forget(I(forgets[k].ino), forgets[k].nlookup);
    fuse_reply_none(req);
}

static void tfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;
    int rc = stat_inode(I(ino), fi, &st);

    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, tfs_attr_timeout);
}

/* Sets the timestamps of @i (@fi: an open file's handle). */
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
    /* pending data would move mtime after it was set */
    if (fi && i->type == S_IFREG && fi->fh) {
        tfs_file_flush(F(fi));
        return futimens(tfs_file_fd(F(fi)), tv) < 0 ? -errno : 0;
    }
    if (i->type == S_IFREG)
        tfs_file_by_inode(i->dev, i->ino, 1, NULL);
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

/* Opens the stored file of @i (file.c), named in log lines and the journal
 * by its path in the store; 0 or -errno. */
static int open_stored(struct tfs_inode *i, int flags, int create, struct tfs_file **f)
{
    char path[TFS_PROC_PATH], name[PATH_MAX];

    tfs_inode_path(i, path);
    if (tfs_inode_name(i, name, sizeof(name), 1) < 0)
        snprintf(name, sizeof(name), "%s", path);
    return tfs_file_open(AT_FDCWD, path, name, flags, create, f);
}

/* Returns @rc, the result of a change of @i; when it failed (a full disk),
 * the kernel's pages of the file may hold bytes that were not stored, and
 * it keeps them across opens: they go. */
static int changed(struct tfs_inode *i, int rc)
{
    if (rc < 0)
        tfs_pc_inval(i);
    return rc;
}

/* Truncates the regular file @i to @size. */
static int set_size(struct tfs_inode *i, off_t size, struct fuse_file_info *fi)
{
    struct tfs_file *f;
    int rc;

    if (size < 0)
        return -EINVAL;
    if (i->type == S_IFDIR)
        return -EISDIR;
    if (i->type != S_IFREG)
        return -EINVAL;
    if (fi && fi->fh)
        return tfs_file_truncate(F(fi), (uint64_t)size);
    rc = open_stored(i, O_WRONLY, 0, &f);
    if (rc < 0)
        return rc;
    rc = tfs_file_truncate(f, (uint64_t)size);
    tfs_file_release(f);
    return rc;
}

static void setattr_now(fuse_req_t req, struct tfs_inode *i, struct stat *attr, int to_set,
                        struct fuse_file_info *fi, int writer)
{
    char path[TFS_PROC_PATH];
    int open_file = fi && i->type == S_IFREG && fi->fh, rc = 0;
    struct stat st;

    if (to_set & FUSE_SET_ATTR_MODE) {
        tfs_inode_path(i, path);
        if (i->type == S_IFLNK)
            rc = -EOPNOTSUPP;
        else if ((open_file ? fchmod(tfs_file_fd(F(fi)), attr->st_mode)
                            : chmod(path, attr->st_mode)) < 0)
            rc = -errno;
    }
    if (rc == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
        uid_t uid = to_set & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
        gid_t gid = to_set & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;

        if (fchownat(i->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
            rc = -errno;
    }
    if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE))
        rc = changed(i, set_size(i, attr->st_size, fi));
    if (writer)
        tfs_pc_writer_done(i);
    if (rc == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
                              FUSE_SET_ATTR_MTIME_NOW)))
        rc = set_times(i, attr, to_set, fi);
    if (rc == 0)
        rc = stat_inode(i, fi, &st);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, tfs_attr_timeout);
}

static void setattr_later(struct later *l)
{
    setattr_now(l->req, l->i, &l->attr, l->to_set, l->has_fi ? &l->fi : NULL, 1);
}

static void tfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                        struct fuse_file_info *fi)
{
    struct tfs_inode *i = I(ino);
    struct later *l;

    /* a size change without a handle opens the file for writing */
    if (!(to_set & FUSE_SET_ATTR_SIZE) || i->type != S_IFREG || (fi && fi->fh)) {
        setattr_now(req, i, attr, to_set, fi, 0);
        return;
    }
    l = later_new(req, i, setattr_later, fi);
    if (!l)
        return;
    l->attr = *attr;
    l->to_set = to_set;
    as_writer(l);
}

static void tfs_access(fuse_req_t req, fuse_ino_t ino, int mask)
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

static void tfs_readlink(fuse_req_t req, fuse_ino_t ino)
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

/* An open directory: its stream, and the offset of the entry read last but
 * not yet given to the kernel (a full reply buffer leaves one behind). */
struct dirh {
    DIR *d;
    struct dirent *pending;
    off_t off; /* telldir() after the entries given so far */
    int root;
};

static void tfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
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
    h->root = ino == FUSE_ROOT_ID;
    fi->fh = (uintptr_t)h;
    if (fuse_reply_open(req, fi) == -ENOENT) {
        closedir(h->d);
        free(h);
    }
}

static void tfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
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
        if (strncmp(de->d_name, ".fuse_hidden", 12) == 0 ||
            (h->root && strcmp(de->d_name, TFS_JOURNAL) == 0)) {
            h->off = next;
            continue;
        }
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

static void tfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;

    (void)ino;
    closedir(h->d);
    free(h);
    fuse_reply_err(req, 0);
}

static void tfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    int fd = dirfd(((struct dirh *)(uintptr_t)fi->fh)->d);

    (void)ino;
    fuse_reply_err(req, (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0);
}

static void tfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    if (is_journal(parent, name)) {
        fuse_reply_err(req, EEXIST);
        return;
    }
    if (mknodat(I(parent)->fd, name, mode, rdev) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    own(req, I(parent), name);
    tfs_lookup(req, parent, name);
}

static void tfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    if (is_journal(parent, name)) {
        fuse_reply_err(req, EEXIST);
        return;
    }
    if (mkdirat(I(parent)->fd, name, mode) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    own(req, I(parent), name);
    tfs_lookup(req, parent, name);
}

static void tfs_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
    if (is_journal(parent, name)) {
        fuse_reply_err(req, EEXIST);
        return;
    }
    if (symlinkat(target, I(parent)->fd, name) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    own(req, I(parent), name);
    tfs_lookup(req, parent, name);
}

static void tfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    if (is_journal(parent, name))
        fuse_reply_err(req, ENOENT);
    else
        fuse_reply_err(req, unlinkat(I(parent)->fd, name, 0) < 0 ? errno : 0);
}

static void tfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    if (is_journal(parent, name))
        fuse_reply_err(req, ENOENT);
    else
        fuse_reply_err(req, unlinkat(I(parent)->fd, name, AT_REMOVEDIR) < 0 ? errno : 0);
}

static void tfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                       const char *newname, unsigned int flags)
{
    if (is_journal(parent, name))
        fuse_reply_err(req, ENOENT);
    else if (is_journal(newparent, newname))
        fuse_reply_err(req, EACCES);
    else
        fuse_reply_err(req, renameat2(I(parent)->fd, name, I(newparent)->fd, newname, flags) < 0
                                ? errno
                                : 0);
}

static void tfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    struct tfs_inode *i = I(ino);
    char path[TFS_PROC_PATH];
    int rc;

    if (is_journal(newparent, newname)) {
        fuse_reply_err(req, EEXIST);
        return;
    }
    /* without CAP_DAC_READ_SEARCH, through /proc (which links a symlink
     * itself, not its target) */
    rc = linkat(i->fd, "", I(newparent)->fd, newname, AT_EMPTY_PATH);
    if (rc < 0 && (errno == ENOENT || errno == EPERM)) {
        tfs_inode_path(i, path);
        rc = linkat(AT_FDCWD, path, I(newparent)->fd, newname, AT_SYMLINK_FOLLOW);
    }
    if (rc < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    tfs_lookup(req, newparent, newname);
}


static void open_now(fuse_req_t req, struct tfs_inode *i, struct fuse_file_info *fi, int writer)
{
    struct tfs_file *f = NULL;
    int rc = open_stored(i, fi->flags, 0, &f);

    if (rc < 0) {
        if (writer)
            tfs_pc_writer_done(i);
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = (uintptr_t)f | (unsigned)writer;
    fi->keep_cache = 1; /* see tfs_init() */
    if (fuse_reply_open(req, fi) == -ENOENT)
        release_handle(i, fi); /* the opener was interrupted */
}

static void open_later(struct later *l)
{
    open_now(l->req, l->i, &l->fi, 1);
}

static void tfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct tfs_inode *i = I(ino);
    struct later *l;

    if (i->type != S_IFREG)
        fuse_reply_err(req, EINVAL);
    else if (!may_write(fi->flags))
        open_now(req, i, fi, 0);
    else if ((l = later_new(req, i, open_later, fi)))
        as_writer(l);
}

/* Creates the stored file @name in @parent holding the tinyfs header, in one
 * step: an unnamed file (O_TMPFILE) gets the header and its owner, then its
 * name. A crash so never leaves an empty stored file, which framing decoders
 * reject. 0, -EEXIST, -EOPNOTSUPP when the store cannot do it, or -errno. */
static int create_stored(fuse_req_t req, struct tfs_inode *parent, const char *name, mode_t mode)
{
    unsigned char hdr[TFS_HDR_LEN];
    char proc[64];
    uid_t uid;
    gid_t gid;
    int fd, rc = 0;

    fd = openat(parent->fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode & 07777);
    if (fd < 0)
        return errno == EISDIR || errno == EOPNOTSUPP || errno == EINVAL ? -EOPNOTSUPP : -errno;
    tfs_header_build(hdr);
    if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
        rc = errno ? -errno : -EIO;
    if (rc == 0 && owner_for(req, parent, &uid, &gid))
        fchown(fd, uid, gid);
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (rc == 0 && linkat(AT_FDCWD, proc, parent->fd, name, AT_SYMLINK_FOLLOW) < 0)
        rc = errno == ENOENT && access("/proc/self/fd", X_OK) < 0 ? -EOPNOTSUPP : -errno;
    close(fd);
    return rc;
}

/* Opens the file a create made or found, and replies. */
static void create_later(struct later *l)
{
    struct tfs_file *f = NULL;
    int rc = open_stored(l->i, l->fi.flags & ~(O_CREAT | O_EXCL), 1, &f);

    if (rc < 0) {
        tfs_pc_writer_done(l->i);
        tfs_inode_forget(l->i, 1);
        fuse_reply_err(l->req, -rc);
        return;
    }
    l->fi.fh = (uintptr_t)f | 1u;
    l->fi.keep_cache = 1; /* see tfs_init() */
    /* the size the lookup saw may predate an O_TRUNC */
    tfs_file_fstat(f, &l->e.attr);
    set_blksize(&l->e.attr);
    if (fuse_reply_create(l->req, &l->e, &l->fi) == -ENOENT) {
        release_handle(l->i, &l->fi);
        tfs_inode_forget(l->i, 1);
    }
}

static void tfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                       struct fuse_file_info *fi)
{
    struct tfs_inode *p = I(parent), *i;
    struct fuse_entry_param e;
    struct later *l;
    int fd, rc;

    if (is_journal(parent, name)) {
        fuse_reply_err(req, EACCES);
        return;
    }
    rc = create_stored(req, p, name, mode);
    if (rc == -EEXIST && (fi->flags & O_EXCL))
        goto fail;
    if (rc < 0 && rc != -EEXIST) {
        if (rc != -EOPNOTSUPP)
            goto fail;
        /* no O_TMPFILE: an empty file, made a tinyfs file when opened */
        fd = openat(p->fd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd >= 0) {
            own(req, p, name);
        } else if (errno == EEXIST && !(fi->flags & O_EXCL)) {
            fd = openat(p->fd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        }
        if (fd < 0) {
            rc = -errno;
            goto fail;
        }
        close(fd);
    }
    rc = do_lookup(parent, name, &e);
    if (rc < 0)
        goto fail;
    i = I(e.ino);
    if (i->type != S_IFREG) {
        rc = i->type == S_IFDIR ? -EISDIR : -EINVAL;
        tfs_inode_forget(i, 1);
        goto fail;
    }
    l = later_new(req, i, create_later, fi);
    if (!l) {
        tfs_inode_forget(i, 1);
        return;
    }
    l->e = e;
    l->lookup_ref = 1;
    as_writer(l); /* the name may have existed: the file may have pages */
    return;
fail:
    fuse_reply_err(req, -rc);
}

static void tfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    struct tfs_rd rd;
    ssize_t n = tfs_file_read(F(fi), I(ino), size, (uint64_t)off, &rd);

    if (n < 0)
        fuse_reply_err(req, (int)-n);
    else
        fuse_reply_iov(req, rd.iov, rd.n);
    tfs_file_read_done(F(fi), &rd);
}

static void tfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                      struct fuse_file_info *fi)
{
    /* the kernel already turned O_APPEND into the end-of-file offset */
    ssize_t n = tfs_file_write(F(fi), buf, size, (uint64_t)off, 0);

    if (n < 0)
        fuse_reply_err(req, -changed(I(ino), (int)n));
    else
        fuse_reply_write(req, (size_t)n);
}

static void tfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs st;

    (void)ino;
    if (fstatvfs(tfs_store_fd, &st) < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_statfs(req, &st);
}

static void tfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fuse_reply_err(req, -changed(I(ino), tfs_file_flush(F(fi))));
}

static void tfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    release_handle(I(ino), fi);
    fuse_reply_err(req, 0);
}

static void tfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    fuse_reply_err(req, -changed(I(ino), tfs_file_fsync(F(fi), datasync)));
}

static void tfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                          struct fuse_file_info *fi)
{
    if (off < 0 || len <= 0)
        fuse_reply_err(req, EINVAL);
    else
        fuse_reply_err(
            req, -changed(I(ino), tfs_file_fallocate(F(fi), mode, (uint64_t)off, (uint64_t)len)));
}

/* The stored bytes of a tinyfs file: header and chunks without the padding. */
static int stored_size(struct tfs_inode *i, uint64_t *out)
{
    char path[TFS_PROC_PATH];
    uint64_t logical;
    struct stat st;
    int fd, rc = 0;

    if (i->type != S_IFREG)
        return -ENODATA;
    tfs_inode_path(i, path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    tfs_file_by_inode(i->dev, i->ino, 1, NULL);
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

/* A path the l*xattr() calls take for @i: /proc/self/fd/N reaches every
 * object but a symlink, which is taken by its current path. */
static int xattr_path(struct tfs_inode *i, char *buf, size_t size)
{
    if (i->type == S_IFLNK)
        return tfs_inode_name(i, buf, size, 0);
    tfs_inode_path(i, buf);
    return 0;
}

/* A changed xattr changes the ctime, and an ACL (system.posix_acl_access,
 * which cp -a sets) the mode, behind the attributes the kernel caches: they
 * are dropped before the reply. Only attributes, no page: this cannot wait
 * for a lock the kernel holds for the request. */
static void xattr_changed(fuse_ino_t ino)
{
    if (tfs_se)
        fuse_lowlevel_notify_inval_inode(tfs_se, ino, -1, 0);
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

static void tfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct tfs_inode *i = I(ino);
    char p[PATH_MAX], *value = NULL;
    ssize_t n;
    int rc;

    if (strcmp(name, TFS_XATTR_STORED) == 0) {
        uint64_t v = 0;

        rc = stored_size(i, &v);
        n = snprintf(p, sizeof(p), "%llu", (unsigned long long)v);
        if (rc < 0)
            n = rc;
        else if (size && (size_t)n > size)
            n = -ERANGE;
        reply_xattr(req, size, p, n);
        return;
    }
    rc = xattr_path(i, p, sizeof(p));
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

static void tfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
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

static void tfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                         size_t size, int flags)
{
    struct tfs_inode *i = I(ino);
    char p[PATH_MAX];
    int rc;

    if (strncmp(name, "user.tinyfs.", 12) == 0) {
        fuse_reply_err(req, EPERM);
        return;
    }
    rc = xattr_path(i, p, sizeof(p));
    if (rc == 0 && (i->type == S_IFLNK ? lsetxattr(p, name, value, size, flags)
                                       : setxattr(p, name, value, size, flags)) < 0)
        rc = -errno;
    if (rc == 0)
        xattr_changed(ino);
    fuse_reply_err(req, -rc);
}

static void tfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    struct tfs_inode *i = I(ino);
    char p[PATH_MAX];
    int rc = xattr_path(i, p, sizeof(p));

    if (rc == 0 && (i->type == S_IFLNK ? lremovexattr(p, name) : removexattr(p, name)) < 0)
        rc = -errno;
    if (rc == 0)
        xattr_changed(ino);
    fuse_reply_err(req, -rc);
}

const struct fuse_lowlevel_ops tfs_ops = {
    .init = tfs_init,
    .destroy = tfs_destroy,
    .lookup = tfs_lookup,
    .forget = tfs_forget,
    .forget_multi = tfs_forget_multi,
    .getattr = tfs_getattr,
    .setattr = tfs_setattr,
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
