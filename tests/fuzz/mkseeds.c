/*
 * mkseeds.c - writes the seed corpora of the fuzz targets from tests/data:
 * framed streams, single chunks and raw snappy streams of pieces of every
 * corpus file, the malformed baddata*.snappy as they are and framed, tinyfs
 * stored files, and SUBMIT messages of every op.
 *
 *   mkseeds DATA_DIR OUT_DIR   (writes OUT_DIR/{codec,request,tinyfs_format,rawsplit}/)
 */
#include <dirent.h>
#include <errno.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../tinyfs/tinyfs.h"
#include "format.h"
#include "tiny_proto.h"

static const char *out_dir;
static unsigned n_written;

/* The first 5 bytes of a rawsplit input: the budgets of a 1 MiB slot, and
 * budgets of 1,064 and 464 bytes, which cut a stream into many units. */
static const unsigned char slot_budgets[5] = {1, 0, 0, 0, 0};
static const unsigned char small_budgets[5] = {0, 250, 0, 100, 0};

static void put(const char *target, const char *name, const void *a, size_t na, const void *b,
                size_t nb)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
    f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "mkseeds: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fwrite(a, 1, na, f);
    if (nb)
        fwrite(b, 1, nb, f);
    fclose(f);
    n_written++;
}

/* One framed data chunk of @len <= 64 KiB bytes; returns its length. */
static size_t chunk(unsigned char *out, const unsigned char *in, size_t len, int raw)
{
    size_t n = TINY_CHUNK_BODY_MAX;

    tiny_put_le32(out + 4, tiny_crc32c_masked(in, len));
    if (!raw && snappy_compress((const char *)in, len, (char *)out + 8, &n) == SNAPPY_OK &&
        n < len) {
        out[0] = TINY_CHUNK_COMPRESSED;
        tiny_put_le24(out + 1, (uint32_t)(n + 4));
        return n + 8;
    }
    out[0] = TINY_CHUNK_UNCOMPRESSED;
    tiny_put_le24(out + 1, (uint32_t)(len + 4));
    memcpy(out + 8, in, len);
    return len + 8;
}

static void seeds_of(const char *name, const unsigned char *d, size_t n)
{
    static unsigned char buf[1u << 20], stored[2 * TFS_GSPACE + TFS_HDR_LEN];
    unsigned char sel[2], msg[TINY_MSG_SIZE + 2];
    struct tiny_msg m;
    size_t len, pos, take;
    char nm[512];

    /* a framed stream of up to 160 KiB, in-slot (64 KiB slot) and staged */
    memcpy(buf, tiny_stream_id, TINY_STREAM_ID_LEN);
    len = TINY_STREAM_ID_LEN;
    for (pos = 0; pos < n && pos < (160u << 10); pos += take) {
        take = n - pos < TINY_CHUNK_MAX ? n - pos : TINY_CHUNK_MAX;
        len += chunk(buf + len, d + pos, take, 0);
    }
    sel[0] = 4, sel[1] = 7;
    snprintf(nm, sizeof(nm), "%s.frame", name);
    put("codec", nm, sel, 2, buf, len);
    sel[0] = 4 | 8;
    snprintf(nm, sizeof(nm), "%s.frame-staged", name);
    put("codec", nm, sel, 2, buf, len);
    /* its first chunk alone */
    sel[0] = 1, sel[1] = 4;
    snprintf(nm, sizeof(nm), "%s.chunk", name);
    put("codec", nm, sel, 2, buf + TINY_STREAM_ID_LEN, 8 + tiny_get_le24(buf + 11) - 4);
    /* the whole file as raw snappy when it is a unit, or as it is */
    len = sizeof(buf);
    take = n < (200u << 10) ? n : (200u << 10);
    if (strstr(name, ".snappy")) {
        memcpy(buf, d, n < sizeof(buf) ? n : sizeof(buf));
        len = n < sizeof(buf) ? n : sizeof(buf);
    } else if (snappy_compress((const char *)d, take, (char *)buf, &len) != SNAPPY_OK) {
        return;
    }
    sel[0] = 2 | 8, sel[1] = 0;
    snprintf(nm, sizeof(nm), "%s.raw", name);
    put("codec", nm, sel, 2, buf, len);
    /* the same stream for the cutter, with both budgets */
    snprintf(nm, sizeof(nm), "%s.raw-slot", name);
    put("rawsplit", nm, slot_budgets, 5, buf, len);
    snprintf(nm, sizeof(nm), "%s.raw-small", name);
    put("rawsplit", nm, small_budgets, 5, buf, len);

    /* a SUBMIT of every op on slot 0 of 16 KiB slots, input at offset 0 */
    for (unsigned op = TINY_OP_COMPRESS; op <= TINY_OP_CHUNK_DECOMPRESS; op++) {
        size_t in = n < 4096 ? n : 4096;
        tiny_msg_init(&m, TINY_MTYPE_DAEMON, TINY_MSG_SUBMIT);
        m.u.submit.tag = 1;
        m.u.submit.op = op;
        m.u.submit.flags = TINY_UF_FIRST | (op & 1 ? TINY_UF_STAGED : 0);
        m.u.submit.in_len = in;
        m.u.submit.arg = op == TINY_OP_COMPRESS ? in : 0;
        msg[0] = 1, msg[1] = 2;
        memcpy(msg + 2, (char *)&m + sizeof(long), TINY_MSG_SIZE);
        snprintf(nm, sizeof(nm), "%s.op%u", name, op);
        put("request", nm, msg, sizeof(msg), d, in);
    }

    /* a tinyfs stored file of up to 10 chunks (one group: the fuzzer's
     * max_len is below a group region), compressed and not */
    tfs_header_build(stored);
    len = TFS_HDR_LEN;
    take = n < 10 * TFS_CHUNK - 100 ? n : 10 * TFS_CHUNK - 100;
    for (uint64_t g = 0; g * TFS_GROUP * TFS_CHUNK < take; g++) {
        struct tfs_gidx x = {0};

        len = tfs_group_off(g) + TFS_GIDX_LEN;
        for (uint32_t k = 0; k < TFS_GROUP; k++) {
            uint64_t i = g * TFS_GROUP + k;
            uint32_t clen = tfs_chunk_len(i, take);

            if (!clen)
                break;
            x.rec[k] = (uint32_t)chunk(stored + len, d + i * TFS_CHUNK, clen, (int)(i & 1));
            len += x.rec[k];
            x.n = k + 1;
            x.last_clen = clen;
        }
        tfs_gidx_build(stored + tfs_group_off(g), &x);
        if ((g + 1) * TFS_GROUP * TFS_CHUNK < take) {
            tfs_pad_build(stored + len, (uint32_t)(tfs_group_off(g + 1) - len - 4));
            memset(stored + len + 4, 0, tfs_group_off(g + 1) - len - 4);
        }
    }
    snprintf(nm, sizeof(nm), "%s.stored", name);
    put("tinyfs_format", nm, stored, len, NULL, 0);
}

/*
 * Raw streams no snappy encoder makes but the format allows: after a 70,000
 * byte literal of @d, copies with 4-byte offsets, between short literals and
 * 2-byte copies. In "window-copies" a copy reaches less than 64 KiB before
 * the 256 KiB unit it falls in (libtiny's units for 1 MiB slots), most of
 * all once the unit has 64 KiB of output, so the cutter must carry history
 * into the next unit; in "far-copies" up to 200,000 bytes back, which it
 * refuses (-ENOTSUP).
 */
static void far_seeds(const unsigned char *d, size_t n, int far)
{
    static unsigned char s[1u << 20];
    uint64_t x = 12345;
    size_t len = 5, o = 0, h;
    unsigned char hdr[5];

    if (n < 70000)
        return;
    s[len++] = 62 << 2; /* a literal with a 3-byte length */
    s[len++] = (unsigned char)(69999 & 0xff);
    s[len++] = (unsigned char)(69999 >> 8 & 0xff);
    s[len++] = (unsigned char)(69999 >> 16);
    memcpy(s + len, d, 70000);
    len += 70000, o += 70000;
    while (o < (600u << 10)) {
        size_t k, off, cl, ou = o % (256u << 10);
        /* far from the cuts, past a unit's first 64 KiB, where the cutter
         * does the least bookkeeping, a copy reaches furthest back */
        size_t reach = far ? 200000 : ou >= 70000 && ou < (252u << 10) ? ou + 64000 : 1000;

        x = x * 6364136223846793005u + 1442695040888963407u;
        k = (size_t)(x >> 33);
        cl = 1 + k % 64;
        if (k % 7 == 0) {
            cl = 1 + k % 60; /* a literal with its length in the tag */
            s[len++] = (unsigned char)((cl - 1) << 2);
            memcpy(s + len, d + k % (n - 64), cl);
            len += cl;
        } else if (k % 7 < 4) {
            off = 1 + (k >> 8) % (o < reach ? o : reach);
            s[len++] = (unsigned char)(3 | (cl - 1) << 2);
            tiny_put_le32(s + len, (uint32_t)off);
            len += 4;
        } else {
            off = 1 + (k >> 8) % (o < 65535 ? o : 65535);
            s[len++] = (unsigned char)(2 | (cl - 1) << 2);
            s[len++] = (unsigned char)off;
            s[len++] = (unsigned char)(off >> 8);
        }
        o += cl;
    }
    h = tiny_varint_put(hdr, o);
    memcpy(s + 5 - h, hdr, h);
    put("rawsplit", far ? "far-copies.raw-slot" : "window-copies.raw-slot", slot_budgets, 5,
        s + 5 - h, len - 5 + h);
}

int main(int argc, char **argv)
{
    static unsigned char d[1u << 20];
    const char *sub[] = {"codec", "request", "tinyfs_format", "rawsplit"};
    char path[4096];
    struct dirent *e;
    DIR *dir;

    if (argc != 3) {
        fprintf(stderr, "usage: mkseeds DATA_DIR OUT_DIR\n");
        return 2;
    }
    out_dir = argv[2];
    mkdir(out_dir, 0755);
    for (size_t i = 0; i < sizeof(sub) / sizeof(*sub); i++) {
        snprintf(path, sizeof(path), "%s/%s", out_dir, sub[i]);
        mkdir(path, 0755);
    }
    dir = opendir(argv[1]);
    if (!dir) {
        fprintf(stderr, "mkseeds: cannot open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    while ((e = readdir(dir))) {
        size_t n;
        FILE *f;

        if (e->d_name[0] == '.' || strstr(e->d_name, ".md"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
        f = fopen(path, "rb");
        if (!f)
            continue;
        n = fread(d, 1, sizeof(d), f);
        fclose(f);
        seeds_of(e->d_name, d, n);
        if (!strcmp(e->d_name, "alice29.txt")) {
            far_seeds(d, n, 0);
            far_seeds(d, n, 1);
        }
    }
    closedir(dir);
    printf("mkseeds: %u seeds in %s\n", n_written, out_dir);
    return 0;
}
