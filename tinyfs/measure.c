/*
 * measure.c - the logical and stored sizes of a stored file, read from its
 * header and slot headers only (no decompression): what the mount's
 * user.tinyfs.stored_size xattr and `tiny du` report. Shared by tinyfs and
 * the tiny tool.
 */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "tinyfs.h"

int tfs_measure(int fd, uint64_t *logical, uint64_t *stored)
{
    unsigned char hdr[TFS_HDR_LEN], ch[TINY_CHUNK_HDR];
    uint64_t n, total = TFS_HDR_LEN;
    struct stat st;

    if (fstat(fd, &st) < 0)
        return -errno;
    if (pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
        tfs_header_parse(hdr, sizeof(hdr)) != 1)
        return -ENODATA;
    tfs_logical_size((uint64_t)st.st_size, logical);
    n = tfs_nchunks(*logical);
    for (uint64_t i = 0; i < n; i++) {
        if (pread(fd, ch, sizeof(ch), (off_t)tfs_slot_off(i)) != (ssize_t)sizeof(ch))
            return -EIO;
        /* the data chunk and the padding chunk's header; its body is a hole */
        total += TINY_CHUNK_HDR + tiny_get_le24(ch + 1) + TINY_CHUNK_HDR;
    }
    *stored = total;
    return 0;
}
