/*
 * du.c - `tiny du [-s] PATH...`: logical size, stored size and compression
 * ratio of files in a tinyfs mount or in its store, per file and in total.
 *
 * In a mount the stored size is the user.tinyfs.stored_size attribute that
 * tinyfs answers for any user who can stat the file, and st_size is the
 * logical size. In a store (or anywhere else) a file in tinyfs's format is
 * measured from its headers (tfs_measure, docs/format.md): the logical size
 * from the stored length and the last group's index, the stored size as the
 * header plus every group index, record and padding header, without the
 * padding holes. Any other file counts as stored as it is. Directories are walked without following
 * symbolic links.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../tinyfs/tinyfs.h"
#include "cli.h"
#include "format.h"

static uint64_t tot_logical, tot_stored, arg_logical, arg_stored;
static unsigned long n_files;
static int summarize, status;

static void line(uint64_t logical, uint64_t stored, const char *path)
{
    char ratio[16] = "-";

    if (stored)
        snprintf(ratio, sizeof(ratio), "%.2f", (double)logical / (double)stored);
    printf("%14" PRIu64 " %14" PRIu64 " %7s  %s\n", logical, stored, ratio, path);
}

/* Measures a file in tinyfs's format from its headers; 0 or -errno
 * (-ENODATA: not a tinyfs file). */
static int measure_stored(const char *path, uint64_t *logical, uint64_t *stored)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc;

    if (fd < 0)
        return -errno;
    rc = tfs_measure(fd, logical, stored);
    close(fd);
    return rc;
}

static int one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    uint64_t logical = (uint64_t)st->st_size, stored = logical;
    char val[32];
    ssize_t n;
    int rc;

    (void)ftw;
    if (type == FTW_NS || type == FTW_DNR) {
        fprintf(stderr, "tiny du: %s: cannot read\n", path);
        status = 1;
        return 0;
    }
    if (!S_ISREG(st->st_mode))
        return 0;
    n = lgetxattr(path, TFS_XATTR_STORED, val, sizeof(val) - 1);
    if (n > 0) {
        val[n] = 0;
        stored = strtoull(val, NULL, 10);
    } else {
        rc = measure_stored(path, &logical, &stored);
        if (rc < 0 && rc != -ENODATA) {
            fprintf(stderr, "tiny du: %s: %s\n", path, tiny_errno_text(rc));
            status = 1;
            return 0;
        }
    }
    if (!summarize)
        line(logical, stored, path);
    arg_logical += logical;
    arg_stored += stored;
    n_files++;
    return 0;
}

int cli_du(int argc, char **argv)
{
    static const struct option longs[] = {
        {"summarize", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, nargs;

    optind = 0;
    while ((c = getopt_long(argc, argv, "sh", longs, NULL)) != -1) {
        switch (c) {
        case 's':
            summarize = 1;
            break;
        case 'h':
            puts("usage: tiny du [-s] PATH...\n"
                 "Logical size, stored size and ratio (logical / stored) of each file under\n"
                 "PATHs in a tinyfs mount or store, and the total.\n\n"
                 "  -s, --summarize   one line per PATH\n");
            return 0;
        default:
            fprintf(stderr, "usage: tiny du [-s] PATH...\n");
            return 1;
        }
    }
    nargs = argc - optind;
    if (nargs == 0) {
        fprintf(stderr, "tiny du: no path given\n");
        return 1;
    }
    printf("%14s %14s %7s  %s\n", "logical", "stored", "ratio", "path");
    for (int i = optind; i < argc; i++) {
        arg_logical = arg_stored = 0;
        if (nftw(argv[i], one, 32, FTW_PHYS) != 0) {
            fprintf(stderr, "tiny du: %s: %s\n", argv[i], tiny_errno_text(errno));
            status = 1;
            continue;
        }
        if (summarize)
            line(arg_logical, arg_stored, argv[i]);
        tot_logical += arg_logical;
        tot_stored += arg_stored;
    }
    if (n_files > 1 || nargs > 1)
        line(tot_logical, tot_stored, "total");
    return status;
}
