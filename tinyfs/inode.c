/*
 * inode.c - the kernel's inodes of a tinyfs mount: one per stored object.
 *
 * The FUSE low-level interface names objects by a node id the filesystem
 * chooses. Each is a struct tfs_inode holding an O_PATH descriptor of the
 * stored object, found by (st_dev, st_ino), so every name of a hard-linked
 * file is one kernel inode and renames need no bookkeeping. The node id is
 * the structure's address (the root is FUSE_ROOT_ID), valid until the kernel
 * forgets its last lookup. The table is a chained hash under one mutex; it
 * doubles when it holds more inodes than buckets.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tinyfs.h"

#define ROOT_ID 1 /* FUSE_ROOT_ID */

static struct tfs_inode root;
static struct tfs_inode **bucket;
static size_t n_bucket, n_inode;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static size_t hash(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;

    return (size_t)(h ^ h >> 29) & (n_bucket - 1);
}

int tfs_inode_init(int storefd)
{
    struct stat st;

    root.fd = openat(storefd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root.fd < 0 || fstat(root.fd, &st) < 0)
        return -errno;
    root.dev = st.st_dev;
    root.ino = st.st_ino;
    root.type = S_IFDIR;
    root.nlookup = 1;
    n_bucket = 1024;
    bucket = calloc(n_bucket, sizeof(*bucket));
    return bucket ? 0 : -ENOMEM;
}

void tfs_inode_fini(void)
{
    for (size_t b = 0; b < n_bucket; b++) {
        struct tfs_inode *i = bucket[b], *next;

        for (; i; i = next) {
            next = i->next;
            close(i->fd);
            free(i);
        }
    }
    free(bucket);
    bucket = NULL;
    n_bucket = n_inode = 0;
    if (root.fd >= 0)
        close(root.fd);
    root.fd = -1;
}

struct tfs_inode *tfs_inode_get(uint64_t id)
{
    return id == ROOT_ID ? &root : (struct tfs_inode *)(uintptr_t)id;
}

uint64_t tfs_inode_id(const struct tfs_inode *i)
{
    return i == &root ? ROOT_ID : (uint64_t)(uintptr_t)i;
}

int tfs_inode_is_root(const struct tfs_inode *i)
{
    return i == &root;
}

/* Doubles the buckets; under the lock. A failed allocation keeps the old
 * table, only longer chains. */
static void grow(void)
{
    size_t old_n = n_bucket;
    struct tfs_inode **old = bucket, **nb = calloc(old_n * 2, sizeof(*nb));

    if (!nb)
        return;
    bucket = nb;
    n_bucket = old_n * 2;
    for (size_t b = 0; b < old_n; b++) {
        struct tfs_inode *i = old[b], *next;

        for (; i; i = next) {
            size_t h = hash(i->dev, i->ino);

            next = i->next;
            i->next = bucket[h];
            bucket[h] = i;
        }
    }
    free(old);
}

int tfs_inode_lookup(struct tfs_inode *parent, const char *name, struct stat *st,
                     struct tfs_inode **out)
{
    int fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC), rc;
    struct tfs_inode *i;
    size_t h;

    if (fd < 0)
        return -errno;
    if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    pthread_mutex_lock(&lock);
    if (st->st_dev == root.dev && st->st_ino == root.ino) {
        i = &root;
    } else {
        h = hash(st->st_dev, st->st_ino);
        for (i = bucket[h]; i; i = i->next)
            if (i->dev == st->st_dev && i->ino == st->st_ino)
                break;
    }
    if (i) {
        i->nlookup++;
        pthread_mutex_unlock(&lock);
        close(fd);
        *out = i;
        return 0;
    }
    i = calloc(1, sizeof(*i));
    if (!i) {
        pthread_mutex_unlock(&lock);
        close(fd);
        return -ENOMEM;
    }
    i->fd = fd;
    i->dev = st->st_dev;
    i->ino = st->st_ino;
    i->type = st->st_mode & S_IFMT;
    i->nlookup = 1;
    i->next = bucket[h];
    bucket[h] = i;
    if (++n_inode > n_bucket)
        grow();
    pthread_mutex_unlock(&lock);
    *out = i;
    return 0;
}

void tfs_inode_hold(struct tfs_inode *i)
{
    if (i == &root)
        return;
    pthread_mutex_lock(&lock);
    i->nlookup++;
    pthread_mutex_unlock(&lock);
}

void tfs_inode_forget(struct tfs_inode *i, uint64_t n)
{
    struct tfs_inode **pp;

    if (i == &root)
        return;
    pthread_mutex_lock(&lock);
    if (i->nlookup > n) {
        i->nlookup -= n;
        pthread_mutex_unlock(&lock);
        return;
    }
    for (pp = &bucket[hash(i->dev, i->ino)]; *pp; pp = &(*pp)->next)
        if (*pp == i) {
            *pp = i->next;
            break;
        }
    n_inode--;
    pthread_mutex_unlock(&lock);
    close(i->fd);
    free(i);
}

void tfs_inode_path(const struct tfs_inode *i, char buf[TFS_PROC_PATH])
{
    snprintf(buf, TFS_PROC_PATH, "/proc/self/fd/%d", i->fd);
}

int tfs_inode_name(const struct tfs_inode *i, char *buf, size_t size, int rel)
{
    char proc[TFS_PROC_PATH];
    size_t sl = strlen(tfs_store_path);
    ssize_t n;

    tfs_inode_path(i, proc);
    n = readlink(proc, buf, size - 1);
    if (n < 0)
        return -errno;
    if ((size_t)n == size - 1)
        return -ENAMETOOLONG;
    buf[n] = 0;
    if (rel && strncmp(buf, tfs_store_path, sl) == 0 && buf[sl] == '/')
        memmove(buf, buf + sl + 1, (size_t)n - sl);
    else if (rel && strcmp(buf, tfs_store_path) == 0)
        strcpy(buf, ".");
    return 0;
}
