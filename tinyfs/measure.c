/*
 * measure.c - the shape of a stored file read from its headers only (no
 * decompression), shared by tinyfs and the tiny tool: where the file ends
 * (its logical size from the stored length and the last group's index, and
 * whether a crash left a torn end, with the cut that repairs it), and the
 * stored size that the mount's user.tinyfs.stored_size xattr and `tiny du`
 * report.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "tinyfs.h"

ssize_t tfs_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Rebuilds the index of the group at @off, the last of a file of @stored
 * bytes, by walking its records (their headers say their lengths, their
 * preambles their logical lengths): for an index torn by a crash inside its
 * write. 0, or -EBADMSG when no record chains from the index's end. */
static int gidx_walk(int fd, uint64_t off, uint64_t stored, struct tfs_gidx *x)
{
    uint64_t pos = off + TFS_GIDX_LEN;
    unsigned char h[16];

    memset(x, 0, sizeof(*x));
    for (uint32_t k = 0; k < TFS_GROUP && pos < stored; k++) {
        ssize_t n = tfs_pread_full(fd, h, stored - pos < sizeof(h) ? stored - pos : sizeof(h), pos);
        uint32_t clen = n > 0 ? tfs_record_clen(h, (size_t)n) : 0, rec;

        if (!clen || (k && x->last_clen != TFS_CHUNK))
            break;
        rec = TINY_CHUNK_HDR + tiny_get_le24(h + 1);
        if (rec > clen + 8 || pos + rec > stored)
            break;
        x->rec[k] = rec;
        x->n = k + 1;
        x->last_clen = clen;
        pos += rec;
    }
    return x->n ? 0 : -EBADMSG;
}

int tfs_locate(int fd, uint64_t stored, struct tfs_tail *t)
{
    unsigned char b[TFS_GIDX_LEN];

    memset(t, 0, sizeof(*t));
    for (;;) {
        uint64_t g, off, avail, end;
        ssize_t n;

        if (stored <= TFS_HDR_LEN) {
            t->torn |= stored != TFS_HDR_LEN;
            t->keep = TFS_HDR_LEN;
            return 0;
        }
        g = tfs_last_group(stored);
        off = tfs_group_off(g);
        avail = stored - off;
        n = tfs_pread_full(fd, b, avail < TFS_GIDX_LEN ? avail : TFS_GIDX_LEN, off);
        if (n < 0)
            return (int)n;
        if ((uint64_t)n < TFS_GIDX_LEN || all_zero(b, TFS_GIDX_LEN)) {
            /* the group was being started (its index is written last): the
             * file ends with the group before */
            t->torn = 1;
            stored = g ? off : TFS_HDR_LEN;
            continue;
        }
        t->g = g;
        if (tfs_gidx_parse(b, (size_t)n, &t->idx) < 0 && gidx_walk(fd, off, stored, &t->idx) == 0) {
            /* an index write torn by a crash: rebuilt from the records */
            t->torn = 1;
            t->fix_idx = 1;
        } else if (tfs_gidx_parse(b, (size_t)n, &t->idx) < 0) {
            /* damage, not a crash: the groups before stay readable */
            t->damaged = 1;
            t->nchunks = g * TFS_GROUP;
            t->size = t->nchunks * TFS_CHUNK;
            t->keep = stored;
            return 0;
        }
        end = tfs_group_end(g, &t->idx);
        if (end > stored) {
            /* records the index names are missing: keep the whole ones */
            uint32_t k = 0;

            while (k < t->idx.n && off + TFS_GIDX_LEN + tfs_gidx_sum(&t->idx, k + 1) <= stored)
                k++;
            t->torn = 1;
            if (k == 0) {
                stored = g ? off : TFS_HDR_LEN;
                continue;
            }
            t->idx.n = k;
            t->idx.last_clen = TFS_CHUNK; /* not the old last chunk: a full one */
            t->fix_idx = 1;
            end = tfs_group_end(g, &t->idx);
        }
        if (end < stored)
            t->torn = 1; /* an appended record that its index does not name yet */
        t->keep = end;
        t->nchunks = g * TFS_GROUP + t->idx.n;
        t->size = tfs_group_size(g, &t->idx);
        return 0;
    }
}

int tfs_tail_repair(int fd, const struct tfs_tail *t)
{
    unsigned char b[TFS_GIDX_LEN];

    if (t->fix_idx) {
        tfs_gidx_build(b, &t->idx);
        if (pwrite(fd, b, sizeof(b), (off_t)tfs_group_off(t->g)) != (ssize_t)sizeof(b))
            return errno ? -errno : -EIO;
    }
    return ftruncate(fd, (off_t)t->keep) < 0 ? -errno : 0;
}

int tfs_measure(int fd, uint64_t *logical, uint64_t *stored)
{
    unsigned char hdr[TFS_HDR_LEN], b[TFS_GIDX_LEN];
    uint64_t total = TFS_HDR_LEN, ngroups;
    struct tfs_tail t;
    struct stat st;
    int rc;

    if (fstat(fd, &st) < 0)
        return -errno;
    if (tfs_pread_full(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
        tfs_header_parse(hdr, sizeof(hdr)) != 1)
        return -ENODATA;
    rc = tfs_locate(fd, (uint64_t)st.st_size, &t);
    if (rc < 0)
        return rc;
    *logical = t.size;
    ngroups = (t.nchunks + TFS_GROUP - 1) / TFS_GROUP;
    for (uint64_t g = 0; g < ngroups; g++) {
        struct tfs_gidx x;

        if (g + 1 == ngroups && !t.damaged) {
            x = t.idx;
        } else if (tfs_pread_full(fd, b, sizeof(b), tfs_group_off(g)) != (ssize_t)sizeof(b) ||
                   tfs_gidx_parse(b, sizeof(b), &x) < 0) {
            return -EIO;
        }
        /* index, records, and the padding header of every group but the last */
        total += TFS_GIDX_LEN + tfs_gidx_sum(&x, x.n) + (g + 1 < ngroups ? TINY_CHUNK_HDR : 0);
    }
    *stored = total;
    return 0;
}
