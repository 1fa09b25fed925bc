/*
 * main.c - `tinyfs [options] STORE MOUNTPOINT`: parses the options, makes
 * sure a tinyd runs (starting one when none answers, before daemonizing so
 * failures reach the terminal), mounts with libfuse3 and runs the
 * multithreaded loop. The tinyd connection itself is made in the init
 * callback, in the process that serves the mount.
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <unistd.h>

#include "tinyfs.h"

extern const struct fuse_lowlevel_ops tfs_ops;
extern unsigned tfs_max_write, tfs_st_blksize;
extern double tfs_attr_timeout;
extern struct fuse_session *tfs_se;
extern struct fuse_conn_info_opts *tfs_conn_opts;

int tfs_foreground;

void tfs_log(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (tfs_foreground) {
        fprintf(stderr, "tinyfs: ");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    } else {
        vsyslog(LOG_ERR, fmt, ap);
    }
    va_end(ap);
}

struct conf {
    char *store;
    int version;
    int help;
    int tinyd_wait;    /* seconds, -1: the default */
    int st_blksize;    /* -1: the default */
    int read_ahead_kb; /* -1: the default */
    double attr_timeout;
};

enum { KEY_HELP, KEY_VERSION };

static const struct fuse_opt opts[] = {
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    {"tinyd_wait=%d", offsetof(struct conf, tinyd_wait), 0},
    {"st_blksize=%d", offsetof(struct conf, st_blksize), 0},
    {"read_ahead_kb=%d", offsetof(struct conf, read_ahead_kb), 0},
    {"attr_timeout=%lf", offsetof(struct conf, attr_timeout), 0},
    FUSE_OPT_END,
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
    struct conf *c = data;

    (void)out;
    switch (key) {
    case FUSE_OPT_KEY_NONOPT:
        if (!c->store) {
            c->store = strdup(arg);
            return 0;
        }
        return 1; /* the mount point, for libfuse */
    case KEY_HELP:
        c->help = 1;
        return 1;
    case KEY_VERSION:
        c->version = 1;
        return 1;
    }
    return 1;
}

struct read_ahead {
    char *mnt;
    int kb, quiet;
};

/* Sets the kernel read-ahead of the mount to kb KiB through its backing
 * device info: a FUSE filesystem can only lower it in INIT, and 128 KiB of
 * read-ahead makes a sequential reader pay a request round trip per 128 KiB.
 * INIT would undo an earlier setting, so this runs in its own thread once
 * the loop serves requests: the stat of the mount point waits for INIT and
 * gives the device number, which names the bdi. Needs root. */
static void *read_ahead_thread(void *arg)
{
    struct read_ahead *r = arg;
    char path[96];
    struct stat st;
    int fd, rc = 0;

    pthread_setname_np(pthread_self(), "tinyfs-bdi");

    if (stat(r->mnt, &st) < 0) {
        rc = -errno;
    } else {
        snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
                 minor(st.st_dev));
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || dprintf(fd, "%d\n", r->kb) < 0)
            rc = -errno;
        if (fd >= 0)
            close(fd);
    }
    if (rc < 0 && !r->quiet)
        tfs_log("cannot set the read-ahead of %s to %d KiB: %s", r->mnt, r->kb,
                tiny_errno_text(-rc));
    free(r->mnt);
    free(r);
    return NULL;
}

/* Starts read_ahead_thread(); without root only when asked for (to say why
 * it cannot). */
static void set_read_ahead(const char *mnt, int kb)
{
    struct read_ahead *r;
    pthread_t t;

    if (kb == 0 || (kb < 0 && geteuid() != 0))
        return;
    r = calloc(1, sizeof(*r));
    if (!r || !(r->mnt = strdup(mnt))) {
        free(r);
        return;
    }
    r->quiet = kb < 0;
    r->kb = kb < 0 ? 1024 : kb;
    if (pthread_create(&t, NULL, read_ahead_thread, r) != 0) {
        free(r->mnt);
        free(r);
        return;
    }
    pthread_detach(t);
}

/* The kernel holds a reference to every inode it caches, and each is an
 * open O_PATH descriptor here (inode.c): a tree of many thousand files
 * needs more than the usual soft limit of 1024, so take the hard one. */
static void raise_nofile(void)
{
    struct rlimit r;

    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

static void usage(const char *prog)
{
    printf("usage: %s [options] STORE MOUNTPOINT\n\n"
           "Mounts STORE, a directory, at MOUNTPOINT: every regular file written through the\n"
           "mount is stored in STORE as a snappy framing-format stream compressed by tinyd.\n"
           "A tinyd is started on the default run directory when none is running.\n\n"
           "    -o tinyd_wait=SECONDS  how long reads wait for an unavailable tinyd\n"
           "                           before failing with EIO (default 10)\n"
           "    -o st_blksize=BYTES    st_blksize of regular files, the I/O size of cp,\n"
           "                           cat... (default 1048576; 0: the store's)\n"
           "    -o read_ahead_kb=KIB   kernel read-ahead of the mount, set when root\n"
           "                           (default 1024; 0: the kernel's 128)\n"
           "    -o attr_timeout=SECS   how long the kernel caches attributes\n"
           "                           (default 1; 0: every stat asks tinyfs)\n"
           "    -o max_write=BYTES, -o [no_]splice_read... : see fuse_parse_conn_info_opts\n\n",
           prog);
}

int main(int argc, char *argv[])
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_cmdline_opts o = {0};
    struct fuse_loop_config *lc = NULL;
    struct fuse_session *se = NULL;
    struct conf c = {.tinyd_wait = -1, .st_blksize = -1, .read_ahead_kb = -1};
    char *store = NULL, fsopt[PATH_MAX + 64];
    int rc = 1;

    c.attr_timeout = tfs_attr_timeout;
    if (fuse_opt_parse(&args, &c, opts, opt_proc) < 0)
        return 2;
    if (c.version) {
        printf("tinyfs %d.%d (libfuse %s)\n", TINY_VERSION_MAJOR, TINY_VERSION_MINOR,
               fuse_pkgversion());
        fuse_opt_free_args(&args);
        return 0;
    }
    if (c.help) {
        usage(argv[0]);
        fuse_cmdline_help();
        fuse_lowlevel_help();
        fuse_opt_free_args(&args);
        return 0;
    }
    if (!c.store) {
        fprintf(stderr, "tinyfs: no store directory given\n");
        usage(argv[0]);
        return 2;
    }
    /* -o max_write=, [no_]splice_read... override what tfs_init() sets */
    tfs_conn_opts = fuse_parse_conn_info_opts(&args);
    if (!tfs_conn_opts)
        goto out;
    if (c.st_blksize >= 0)
        tfs_st_blksize = (unsigned)c.st_blksize;
    if (c.attr_timeout < 0 || c.attr_timeout > 86400) {
        fprintf(stderr, "tinyfs: attr_timeout must be 0 to 86400 seconds\n");
        rc = 2;
        goto out;
    }
    tfs_attr_timeout = c.attr_timeout;
    store = realpath(c.store, NULL);
    if (!store) {
        fprintf(stderr, "tinyfs: cannot use store %s: %s\n", c.store, tiny_errno_text(errno));
        goto out;
    }
    tfs_store_fd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tfs_store_fd < 0) {
        fprintf(stderr, "tinyfs: cannot open store %s: %s\n", store, tiny_errno_text(errno));
        goto out;
    }
    tfs_store_path = store;
    /* the kernel checks permissions for everybody, as on a local filesystem */
    fuse_opt_add_arg(&args, "-odefault_permissions");
    if (!strchr(store, ',') && !strchr(store, '\\')) {
        snprintf(fsopt, sizeof(fsopt), "-osubtype=tinyfs,fsname=%s", store);
        fuse_opt_add_arg(&args, fsopt);
    }
    if (fuse_parse_cmdline(&args, &o) != 0)
        goto out;
    if (!o.mountpoint) {
        fprintf(stderr, "tinyfs: no mount point given\n");
        rc = 2;
        goto out;
    }
    tfs_foreground = o.foreground;
    /* chunk rewrites that a crash interrupted get their old content back
     * before any file is opened (docs/format.md, "Crash safety") */
    rc = tfs_journal_replay(tfs_store_fd, 1, tfs_log);
    if (rc < 0) {
        fprintf(stderr, "tinyfs: cannot replay the journal %s/%s: %s\n", store, TFS_JOURNAL,
                tiny_errno_text(-rc));
        rc = 1;
        goto out;
    }
    if (rc > 0)
        tfs_log("journal: %d interrupted chunk rewrite%s undone", rc, rc == 1 ? "" : "s");
    rc = 1;
    if (c.tinyd_wait >= 0)
        tfs_codec_set_wait(c.tinyd_wait > 86400 ? 86400000u : (unsigned)c.tinyd_wait * 1000u);
    if (tfs_codec_ensure_daemon(argv[0]) < 0)
        goto out;
    raise_nofile();
    rc = tfs_inode_init(tfs_store_fd);
    if (rc < 0) {
        fprintf(stderr, "tinyfs: cannot open store %s: %s\n", store, tiny_errno_text(-rc));
        rc = 1;
        goto out;
    }
    rc = 1;
    se = fuse_session_new(&args, &tfs_ops, sizeof(tfs_ops), NULL);
    if (!se)
        goto out_inodes;
    tfs_se = se;
    if (fuse_session_mount(se, o.mountpoint) != 0)
        goto out_destroy;
    if (!o.foreground)
        openlog("tinyfs", LOG_PID, LOG_DAEMON);
    if (fuse_daemonize(o.foreground) != 0)
        goto out_unmount;
    if (fuse_set_signal_handlers(se) != 0)
        goto out_unmount;
    set_read_ahead(o.mountpoint, c.read_ahead_kb);
    /* random reads hand the kernel whole decoded chunks (pagecache.c) */
    if (tfs_pc_start(se) < 0)
        tfs_log("cannot start the page-cache thread: random reads will be slower");
    if (o.singlethread) {
        rc = fuse_session_loop(se) ? 1 : 0;
    } else {
        lc = fuse_loop_cfg_create();
        if (!lc)
            goto out_pc;
        fuse_loop_cfg_set_clone_fd(lc, o.clone_fd);
        /* libfuse 3.14 leaves an unset max_threads at -1 and complains */
        fuse_loop_cfg_set_max_threads(
            lc, o.max_threads > 0 && o.max_threads <= 100000 ? o.max_threads : 10);
        if (o.max_idle_threads != UINT_MAX) /* else unset: libfuse's default */
            fuse_loop_cfg_set_idle_threads(lc, o.max_idle_threads);
        rc = fuse_session_loop_mt(se, lc) ? 1 : 0;
        fuse_loop_cfg_destroy(lc);
    }
out_pc:
    tfs_pc_stop();
    fuse_remove_signal_handlers(se);
out_unmount:
    fuse_session_unmount(se);
out_destroy:
    fuse_session_destroy(se);
out_inodes:
    tfs_inode_fini();
out:
    free(o.mountpoint);
    fuse_opt_free_args(&args);
    free(store);
    free(c.store);
    free(tfs_conn_opts);
    return rc;
}
