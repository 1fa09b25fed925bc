/*
 * tinyfs_ops.c - POSIX semantics and errno values of the operations in a
 * tinyfs mount, each compared with what a local filesystem gives.
 *
 *   tinyfs_ops MOUNTDIR
 *
 * MOUNTDIR must be an empty directory inside the mount. Prints TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tap.h"

#define CHECK_ERR(expr, err, ...) ok((expr) < 0 && errno == (err), __VA_ARGS__)

static char buf[1 << 20], buf2[1 << 20];

static int put(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ssize_t w;

    if (fd < 0)
        return -1;
    w = write(fd, data, len);
    return close(fd) == 0 && w == (ssize_t)len ? 0 : -1;
}

static ssize_t get(const char *path, void *data, size_t cap)
{
    int fd = open(path, O_RDONLY);
    ssize_t n, total = 0;

    if (fd < 0)
        return -1;
    while ((n = read(fd, (char *)data + total, cap - (size_t)total)) > 0)
        total += n;
    close(fd);
    return n < 0 ? -1 : total;
}

/* 1 when another process cannot take the lock (flock or fcntl). */
static int locked_elsewhere(const char *path, int use_flock)
{
    pid_t pid = fork();
    int st;

    if (pid == 0) {
        int fd = open(path, O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

        if (fd < 0)
            _exit(2);
        if (use_flock)
            _exit(flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK ? 1 : 0);
        _exit(fcntl(fd, F_SETLK, &fl) < 0 && (errno == EAGAIN || errno == EACCES) ? 1 : 0);
    }
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 1;
}

int main(int argc, char **argv)
{
    char a[PATH_MAX], b[PATH_MAX], c[PATH_MAX];
    struct stat st, st2;
    int fd, fd2;
    ssize_t n;

    if (argc != 2 || chdir(argv[1]) < 0) {
        fprintf(stderr, "usage: tinyfs_ops MOUNTDIR\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (char)("tinyfs test data "[i % 17] + (i / 4096) % 3);

    /* create, open flags */
    ok(put("f", buf, 100000) == 0, "create and write a file");
    ok(stat("f", &st) == 0 && st.st_size == 100000, "stat shows the logical size");
    CHECK_ERR(open("f", O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST, "O_EXCL on an existing file");
    CHECK_ERR(open("nope", O_RDONLY), ENOENT, "open of a missing file: ENOENT");
    CHECK_ERR(open("nope/x", O_RDONLY | O_CREAT, 0644), ENOENT, "create in a missing dir: ENOENT");
    CHECK_ERR(open("f/x", O_RDONLY), ENOTDIR, "a file used as a directory: ENOTDIR");
    fd = open("f", O_WRONLY | O_APPEND);
    ok(fd >= 0 && write(fd, "tail", 4) == 4 && close(fd) == 0, "O_APPEND write");
    ok(get("f", buf2, sizeof(buf2)) == 100004 && memcmp(buf2, buf, 100000) == 0 &&
           memcmp(buf2 + 100000, "tail", 4) == 0,
       "O_APPEND appended at the end");
    fd = open("f", O_RDWR | O_TRUNC);
    ok(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 0, "O_TRUNC empties the file");
    close(fd);
    ok(put("empty", "", 0) == 0 && stat("empty", &st) == 0 && st.st_size == 0 &&
           get("empty", buf2, 10) == 0,
       "an empty file");

    /* holes, truncate both ways */
    fd = open("h", O_RDWR | O_CREAT, 0644);
    ok(fd >= 0 && pwrite(fd, "x", 1, 300000) == 1, "write past EOF");
    ok(fstat(fd, &st) == 0 && st.st_size == 300001, "size after a write past EOF");
    memset(buf2, 1, 300001);
    n = pread(fd, buf2, 300001, 0);
    ok(n == 300001 && buf2[0] == 0 && buf2[299999] == 0 && buf2[300000] == 'x',
       "the hole reads as zeros");
    ok(ftruncate(fd, 70000) == 0 && fstat(fd, &st) == 0 && st.st_size == 70000, "ftruncate down");
    ok(ftruncate(fd, 200000) == 0 && pread(fd, buf2, 10, 150000) == 10 && buf2[0] == 0,
       "ftruncate up reads zeros");
    close(fd);
    ok(truncate("h", 65537) == 0 && stat("h", &st) == 0 && st.st_size == 65537, "truncate by path");
    CHECK_ERR(truncate("nope", 0), ENOENT, "truncate of a missing file");
    CHECK_ERR(ftruncate(open("f", O_RDONLY), 0), EINVAL, "ftruncate of a read-only fd: EINVAL");

    /* directories */
    ok(mkdir("d", 0755) == 0, "mkdir");
    CHECK_ERR(mkdir("d", 0755), EEXIST, "mkdir of an existing name: EEXIST");
    ok(put("d/x", "x", 1) == 0, "a file in a directory");
    CHECK_ERR(rmdir("d"), ENOTEMPTY, "rmdir of a non-empty directory: ENOTEMPTY");
    CHECK_ERR(rmdir("f"), ENOTDIR, "rmdir of a file: ENOTDIR");
    CHECK_ERR(unlink("d"), EISDIR, "unlink of a directory: EISDIR");
    CHECK_ERR(open("d", O_WRONLY), EISDIR, "open of a directory for writing: EISDIR");
    ok(unlink("d/x") == 0 && rmdir("d") == 0, "unlink and rmdir");
    CHECK_ERR(unlink("d"), ENOENT, "unlink of a missing name: ENOENT");

    /* rename */
    ok(put("r1", "one", 3) == 0 && put("r2", "two!", 4) == 0, "two files");
    ok(renameat2(AT_FDCWD, "r1", AT_FDCWD, "r2", RENAME_NOREPLACE) < 0 && errno == EEXIST,
       "RENAME_NOREPLACE onto an existing file: EEXIST");
    ok(renameat2(AT_FDCWD, "r1", AT_FDCWD, "r2", RENAME_EXCHANGE) == 0 &&
           get("r1", buf2, 10) == 4 && memcmp(buf2, "two!", 4) == 0 && get("r2", buf2, 10) == 3 &&
           memcmp(buf2, "one", 3) == 0,
       "RENAME_EXCHANGE swaps the files");
    ok(rename("r1", "r2") == 0 && get("r2", buf2, 10) == 4 && access("r1", F_OK) < 0,
       "rename over an existing file");
    CHECK_ERR(rename("nope", "r3"), ENOENT, "rename of a missing file: ENOENT");
    mkdir("rd", 0755);
    put("rd/x", "x", 1);
    mkdir("rd2", 0755);
    CHECK_ERR(rename("r2", "rd"), EISDIR, "rename a file over a directory: EISDIR");
    ok(rename("rd2", "rd") < 0 && (errno == ENOTEMPTY || errno == EEXIST),
       "rename a directory over a non-empty one: ENOTEMPTY");

    /* editor-style save: write a temporary file, rename it over */
    fd = open("doc", O_WRONLY | O_CREAT, 0600);
    close(fd);
    fd = open("doc", O_RDONLY);
    ok(put(".doc.tmp", buf, 5000) == 0 && rename(".doc.tmp", "doc") == 0 &&
           get("doc", buf2, sizeof(buf2)) == 5000 && memcmp(buf, buf2, 5000) == 0,
       "save by rename replaces the content");
    ok(fd >= 0 && read(fd, buf2, 10) == 0, "the old file stays readable (empty) through its fd");
    close(fd);

    /* unlink of an open file */
    ok(put("u", buf, 200000) == 0, "a file to unlink");
    fd = open("u", O_RDWR);
    ok(fd >= 0 && unlink("u") == 0 && access("u", F_OK) < 0, "unlink while open");
    ok(pread(fd, buf2, 200000, 0) == 200000 && memcmp(buf, buf2, 200000) == 0,
       "the unlinked file is still readable by its holder");
    ok(pwrite(fd, "zz", 2, 10) == 2 && pread(fd, buf2, 4, 9) == 4 && buf2[1] == 'z',
       "and writable");
    ok(fstat(fd, &st) == 0 && st.st_size == 200000 && st.st_nlink == 0,
       "fstat of the unlinked file");
    ok(close(fd) == 0, "close of the unlinked file");

    /* links */
    ok(put("l1", buf, 70000) == 0 && link("l1", "l2") == 0, "link");
    ok(stat("l1", &st) == 0 && stat("l2", &st2) == 0 && st.st_ino == st2.st_ino &&
           st.st_nlink == 2 && st2.st_size == 70000,
       "hard links share the inode, the link count and the size");
    fd = open("l1", O_WRONLY);
    ok(fd >= 0 && pwrite(fd, "LINK", 4, 65534) == 4, "write through one name");
    fd2 = open("l2", O_RDONLY);
    ok(fd2 >= 0 && pread(fd2, buf2, 4, 65534) == 4 && memcmp(buf2, "LINK", 4) == 0,
       "read through the other while both are open");
    close(fd);
    close(fd2);
    CHECK_ERR(link("l1", "l2"), EEXIST, "link onto an existing name: EEXIST");
    ok(symlink("l1", "s") == 0 && readlink("s", c, sizeof(c)) == 2 && memcmp(c, "l1", 2) == 0,
       "symlink and readlink");
    ok(lstat("s", &st) == 0 && S_ISLNK(st.st_mode) && stat("s", &st2) == 0 && st2.st_size == 70000,
       "lstat sees the link, stat the target");
    CHECK_ERR(readlink("l1", c, sizeof(c)), EINVAL, "readlink of a file: EINVAL");
    ok(symlink("dangling/target", "s2") == 0 && lstat("s2", &st) == 0, "dangling symlink");
    CHECK_ERR(symlink("x", "s"), EEXIST, "symlink onto an existing name: EEXIST");

    /* attributes */
    ok(chmod("l1", 0600) == 0 && stat("l1", &st) == 0 && (st.st_mode & 07777) == 0600, "chmod");
    ok(chown("l1", 1234, 5678) == 0 && stat("l1", &st) == 0 && st.st_uid == 1234 &&
           st.st_gid == 5678,
       "chown");
    {
        struct timespec ts[2] = {{1000000000, 5}, {1200000000, 7}};

        fd = open("l1", O_WRONLY);
        ok(fd >= 0 && pwrite(fd, "late", 4, 0) == 4 && futimens(fd, ts) == 0 && close(fd) == 0 &&
               stat("l1", &st) == 0 && st.st_mtim.tv_sec == 1200000000 && st.st_mtim.tv_nsec == 7,
           "futimens after a write sticks past close");
        ok(utimensat(AT_FDCWD, "s", ts, AT_SYMLINK_NOFOLLOW) == 0 && lstat("s", &st) == 0 &&
               st.st_mtim.tv_sec == 1200000000,
           "utimensat on a symlink");
    }
    {
        struct statvfs sv;

        ok(statvfs(".", &sv) == 0 && sv.f_bsize > 0 && sv.f_blocks > 0, "statfs");
    }

    /* xattrs */
    ok(setxattr("l1", "user.test", "value", 5, 0) == 0, "setxattr");
    ok(getxattr("l1", "user.test", c, sizeof(c)) == 5 && memcmp(c, "value", 5) == 0, "getxattr");
    n = listxattr("l1", c, sizeof(c));
    ok(n > 0 && memmem(c, (size_t)n, "user.test", 10) != NULL, "listxattr");
    CHECK_ERR(setxattr("l1", "user.test", "v", 1, XATTR_CREATE), EEXIST,
              "XATTR_CREATE on an existing attribute: EEXIST");
    ok(removexattr("l1", "user.test") == 0, "removexattr");
    CHECK_ERR(getxattr("l1", "user.test", c, sizeof(c)), ENODATA, "removed attribute: ENODATA");
    n = getxattr("l1", "user.tinyfs.stored_size", c, sizeof(c) - 1);
    c[n > 0 ? n : 0] = 0;
    ok(n > 0 && atoll(c) > 0 && atoll(c) < 70000, "user.tinyfs.stored_size = %s (logical 70000)",
       c);

    /* sync, locks, fallocate */
    fd = open("l1", O_RDWR);
    ok(fd >= 0 && fsync(fd) == 0 && fdatasync(fd) == 0, "fsync and fdatasync");
    ok(flock(fd, LOCK_EX) == 0 && locked_elsewhere("l1", 1), "flock excludes other processes");
    flock(fd, LOCK_UN);
    {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

        ok(fcntl(fd, F_SETLK, &fl) == 0 && locked_elsewhere("l1", 0),
           "fcntl locks exclude other processes");
    }
    ok(fallocate(fd, 0, 0, 100000) == 0 && fstat(fd, &st) == 0 && st.st_size == 100000,
       "fallocate extends the file");
    {
        char z[4096], zero[4096] = {0};

        ok(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0 &&
               pread(fd, z, sizeof(z), 0) == (ssize_t)sizeof(z) &&
               memcmp(z, zero, sizeof(z)) == 0 && fstat(fd, &st) == 0 && st.st_size == 100000,
           "fallocate PUNCH_HOLE: zeros, the size kept");
    }
    CHECK_ERR(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 65536), EOPNOTSUPP,
              "fallocate COLLAPSE_RANGE: EOPNOTSUPP");
    close(fd);

    /* mmap */
    ok(put("m", buf, 300000) == 0, "a file to map");
    fd = open("m", O_RDWR);
    {
        char *p =
            fd >= 0 ? mmap(NULL, 300000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;

        ok(p != MAP_FAILED && memcmp(p, buf, 300000) == 0, "mmap reads the file");
        if (p != MAP_FAILED) {
            memcpy(p + 131000, "MMAPWRITE", 9);
            ok(msync(p, 300000, MS_SYNC) == 0 && munmap(p, 300000) == 0, "msync and munmap");
        } else {
            ok(0, "msync and munmap");
        }
        close(fd);
        ok(get("m", buf2, sizeof(buf2)) == 300000 && memcmp(buf2 + 131000, "MMAPWRITE", 9) == 0,
           "a shared writable mapping reaches the file");
    }

    /* names */
    memset(a, 'n', NAME_MAX);
    a[NAME_MAX] = 0;
    ok(put(a, "x", 1) == 0 && stat(a, &st) == 0, "a name of NAME_MAX bytes");
    unlink(a);
    memset(a, 'n', NAME_MAX + 1);
    a[NAME_MAX + 1] = 0;
    CHECK_ERR(open(a, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG, "NAME_MAX + 1: ENAMETOOLONG");
    {
        /* nested directories up to a path of nearly PATH_MAX bytes */
        size_t len = strlen(argv[1]), depth = 0;
        int okp = 1;

        b[0] = 0;
        while (len + strlen(b) + 250 < PATH_MAX - 20 && okp) {
            memset(c, 'p', 200);
            snprintf(c + 200, 20, "%zu", depth++);
            strcat(b, c);
            okp = mkdir(b, 0755) == 0;
            strcat(b, "/");
        }
        strcat(b, "leaf");
        ok(okp && put(b, "deep", 4) == 0 && get(b, buf2, 10) == 4,
           "a path of %zu bytes inside the mount", strlen(b) + len + 1);
    }
    return done_testing();
}
