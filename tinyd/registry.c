/*
 * registry.c - the registration queue, the clients' lifecycle, the reaper
 * and the bookkeeping of IPC objects.
 *
 * The main thread receives HELLOs on the registration queue and, for each
 * valid one, creates a private queue and a segment, attaches the segment,
 * starts a reader thread and answers WELCOME (IPC_NOWAIT). Every creation
 * and removal of an IPC object rewrites <dir>/tinyd.ipc (in place, see
 * ipc_write()), so that a tinyd started after a kill -9 can remove what it
 * lists.
 *
 * A client dies once (client_kill): its queue and segment are removed at
 * once (its reader wakes with EIDRM, a blocked client with EIDRM too), it
 * moves to the dead list, and the reaper joins its reader and drops the
 * registry's reference. Workers hold references while they execute its
 * steps, so the segment is detached only after the last one is done.
 *
 * The reaper also frees every TINY_REAP_INTERVAL_MS the clients whose
 * process has exited, that detached their segment, or that did not attach
 * within TINY_ATTACH_TIMEOUT_MS, and removes the WELCOMEs (granted or
 * refused) that nobody collected, so that HELLOs with reply types nobody
 * reads cannot fill the registration queue for good.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "reader.h"
#include "registry.h"
#include "sched.h"
#include "stats.h"
#include "tinyd.h"

/* The reader threads need little: no codec buffers live on their stacks. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define READER_STACK (1u << 20)
#else
#define READER_STACK (64u << 10)
#endif

/* Type of the message tinyd sends itself on a new registration queue, so
 * that msg_lrpid names the live tinyd behind the key. */
#define MTYPE_SELF LONG_MAX

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct client *live, *dead;
static unsigned n_live, next_id = 1;
static uint64_t shm_total;
static atomic_int regq = -1;
static atomic_bool stopping;

static pthread_mutex_t mem_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t mem_used;

/* WELCOMEs refusing a client, which nobody may ever collect: a flood of
 * HELLOs with reply types nobody reads would otherwise fill the
 * registration queue for good. Once the queue is half full, the reaper
 * removes those still there after REFUSED_TTL_MS (a live client polls for
 * its WELCOME every few ms). */
#define REFUSED_MAX    4096
#define REFUSED_TTL_MS 500
static pthread_mutex_t refused_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    long mtype;
    uint64_t t;
} refused[REFUSED_MAX];
static unsigned refused_head, refused_n;

static pthread_mutex_t reap_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reap_cv;
static bool reap_stop, reaper_started;
static pthread_t reaper;

int mem_reserve(uint64_t n)
{
    int r = 0;

    pthread_mutex_lock(&mem_mu);
    if (n > tinyd_cfg.max_memory || mem_used > tinyd_cfg.max_memory - n)
        r = -ENOMEM;
    else
        mem_used += n;
    pthread_mutex_unlock(&mem_mu);
    return r;
}

void mem_release(uint64_t n)
{
    pthread_mutex_lock(&mem_mu);
    mem_used -= n;
    pthread_mutex_unlock(&mem_mu);
}

static int run_path(char *buf, size_t size, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", tinyd_cfg.dir, name);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Rewrites tinyd.ipc in place; under reg_mu. The list only has to
 * survive the death of this process (SysV objects do not survive the
 * machine's), and one pwrite() is whole after a kill -9, so it is neither
 * renamed nor synced: on ext4 a rename over the old file or a truncation to
 * zero starts a flush of its data, and with other writers busy that held
 * up registrations for seconds. */
static void ipc_write(void)
{
    static int fd = -1;
    static size_t old_len;
    char path[PATH_MAX], *buf = NULL;
    struct stat st;
    size_t len = 0;
    FILE *f;
    int r = 0;

    if (fd < 0) {
        if (run_path(path, sizeof(path), TINY_IPC_FILE) < 0)
            return;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            tlog(LOG_ERR, "cannot write %s: %s", path, tiny_errno_text(errno));
            return;
        }
        if (fstat(fd, &st) == 0) /* a dead instance's list, already cleaned */
            old_len = (size_t)st.st_size;
    }
    f = open_memstream(&buf, &len);
    if (!f)
        return;
    fprintf(f, "tinyd %d\n", (int)getpid());
    if (regq >= 0)
        fprintf(f, "q %d\n", regq);
    for (struct client *c = live; c; c = c->next)
        fprintf(f, "q %d\nm %d\n", c->qid, c->shmid);
    /* Blank lines over the rest of a longer old list, so that a death
     * between the write and the truncation leaves no old entry behind. */
    long real = ftell(f);
    for (long n = real; real >= 0 && n < (long)old_len; n++)
        fputc('\n', f);
    if (fclose(f) != 0 || real < 0)
        r = -ENOMEM;
    if (r == 0 && pwrite(fd, buf, len, 0) != (ssize_t)len)
        r = -errno;
    if (r == 0 && ftruncate(fd, (off_t)real) < 0)
        r = -errno;
    if (r == 0)
        old_len = (size_t)real;
    if (r < 0)
        tlog(LOG_ERR, "cannot write %s/%s: %s", tinyd_cfg.dir, TINY_IPC_FILE, tiny_errno_text(-r));
    free(buf);
}

/* Whether the object's owner is us. */
static bool ours(const struct ipc_perm *p)
{
    return p->uid == geteuid() && p->cuid == geteuid();
}

static bool listed(const int *ids, unsigned n, int id)
{
    for (unsigned i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static int cleanup_stale(key_t key)
{
    char path[PATH_MAX], kind;
    int qids[1024], mids[1024], id, old_pid = 0, r = 0;
    unsigned nq = 0, nm = 0, cleaned = 0;
    bool found = false;
    FILE *f;

    if (run_path(path, sizeof(path), TINY_IPC_FILE) < 0)
        return -ENAMETOOLONG;
    f = fopen(path, "re");
    if (f) {
        char word[16];
        found = true;
        if (fscanf(f, "%15s %d", word, &old_pid) != 2 || strcmp(word, "tinyd") != 0)
            old_pid = 0;
        while (fscanf(f, " %c %d", &kind, &id) == 2) {
            if (kind == 'q' && nq < 1024)
                qids[nq++] = id;
            else if (kind == 'm' && nm < 1024)
                mids[nm++] = id;
        }
        fclose(f);
    }
    id = msgget(key, 0);
    if (id >= 0) {
        struct msqid_ds ds;

        found = true;
        if (msgctl(id, IPC_STAT, &ds) < 0 || !ours(&ds.msg_perm)) {
            tlog(LOG_ERR, "ipc key 0x%x of %s is used by a queue that is not ours", (unsigned)key,
                 tinyd_cfg.dir);
            return -EADDRINUSE;
        }
        if (!listed(qids, nq, id) && ds.msg_lrpid > 0 &&
            (kill(ds.msg_lrpid, 0) == 0 || errno == EPERM)) {
            tlog(LOG_ERR, "ipc key 0x%x of %s is in use by another live process (pid %d)",
                 (unsigned)key, tinyd_cfg.dir, (int)ds.msg_lrpid);
            return -EADDRINUSE;
        }
        if (msgctl(id, IPC_RMID, NULL) == 0)
            cleaned++;
    }
    for (unsigned i = 0; i < nq; i++) {
        struct msqid_ds ds;
        if (msgctl(qids[i], IPC_STAT, &ds) == 0 && ours(&ds.msg_perm) &&
            msgctl(qids[i], IPC_RMID, NULL) == 0)
            cleaned++;
    }
    for (unsigned i = 0; i < nm; i++) {
        struct shmid_ds ds;
        if (shmctl(mids[i], IPC_STAT, &ds) == 0 && ours(&ds.shm_perm) &&
            (old_pid == 0 || ds.shm_cpid == old_pid) && shmctl(mids[i], IPC_RMID, NULL) == 0)
            cleaned++;
    }
    if (found)
        tlog(LOG_INFO, "cleaned %u stale ipc objects of a previous tinyd (pid %d)", cleaned,
             old_pid);
    return r;
}

int registry_open(key_t key)
{
    struct {
        long mtype;
        char c;
    } self = {MTYPE_SELF, 0};
    int r = cleanup_stale(key);

    if (r < 0)
        return r;
    regq = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
    if (regq < 0) {
        r = -errno;
        tlog(LOG_ERR, "cannot create registration queue: %s", tiny_errno_text(errno));
        return r;
    }
    /* Leaves our pid in msg_lrpid for the stale check of another tinyd. */
    if (msgsnd(regq, &self, 1, IPC_NOWAIT) == 0)
        (void)msgrcv(regq, &self, 1, MTYPE_SELF, IPC_NOWAIT | MSG_NOERROR);
    pthread_mutex_lock(&reg_mu);
    ipc_write();
    pthread_mutex_unlock(&reg_mu);
    return 0;
}

void registry_stop(void)
{
    atomic_store(&stopping, true);
    if (regq >= 0)
        msgctl(regq, IPC_RMID, NULL);
}

void registry_counts(uint32_t *clients, uint64_t *shm_bytes)
{
    pthread_mutex_lock(&reg_mu);
    *clients = n_live;
    *shm_bytes = shm_total;
    pthread_mutex_unlock(&reg_mu);
}

void client_ref(struct client *c)
{
    atomic_fetch_add(&c->refs, 1);
}

static void client_destroy(struct client *c)
{
    uint64_t seg = (uint64_t)c->n_slots * c->slot_size;

    if (c->seg)
        shmdt(c->seg);
    for (uint32_t i = 0; c->units && i < c->n_slots; i++) {
        struct unit *u = &c->units[i];
        free(u->stage_in);
        free(u->stage_out);
        mem_release(u->stage_in_cap + u->stage_out_cap);
    }
    mem_release(seg);
    pthread_mutex_lock(&reg_mu);
    shm_total -= seg;
    pthread_mutex_unlock(&reg_mu);
    free(c->units);
    free(c);
}

void client_unref(struct client *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1)
        client_destroy(c);
}

void client_kill(struct client *c, const char *why)
{
    struct client **pp;

    pthread_mutex_lock(&reg_mu);
    if (c->dead) {
        pthread_mutex_unlock(&reg_mu);
        return;
    }
    c->dead = true;
    for (pp = &live; *pp && *pp != c; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = c->next;
    c->next = dead;
    dead = c;
    n_live--;
    msgctl(c->qid, IPC_RMID, NULL);
    shmctl(c->shmid, IPC_RMID, NULL);
    ipc_write();
    pthread_mutex_unlock(&reg_mu);
    sched_forget(c);
    tlog(LOG_INFO, "client %u (pid %d) gone: %s; freed %u slots", c->id, (int)c->pid, why,
         c->n_slots);
}

/* Validates a HELLO and creates the client, returned in @out with a
 * reference for the caller. Returns 0 or a negative errno. */
static int client_create(const struct tiny_msg_hello *h, struct client **out)
{
    uint32_t n_slots = h->n_slots ? h->n_slots : tinyd_cfg.slots;
    uint64_t slot_size = h->slot_size ? h->slot_size : tinyd_cfg.slot_size;
    unsigned weight = h->weight ? h->weight : 1;
    uint64_t seg = (uint64_t)n_slots * slot_size;
    struct client *c = NULL;
    pthread_attr_t attr;
    int r;

    if (h->pid <= 0 || n_slots > TINY_SLOTS_MAX || slot_size < TINY_SLOT_SIZE_MIN ||
        slot_size > TINY_SLOT_SIZE_MAX || weight > 1000)
        return -EINVAL;
    pthread_mutex_lock(&reg_mu);
    r = n_live >= tinyd_cfg.max_clients ? -EUSERS : 0;
    pthread_mutex_unlock(&reg_mu);
    if (r < 0)
        return r;
    r = mem_reserve(seg);
    if (r < 0)
        return r;
    c = calloc(1, sizeof(*c));
    if (!c || !(c->units = calloc(n_slots, sizeof(*c->units)))) {
        r = -ENOMEM;
        goto fail_mem;
    }
    c->qid = c->shmid = -1;
    c->pid = h->pid;
    c->n_slots = n_slots;
    c->slot_size = (size_t)slot_size;
    c->weight = weight;
    c->reply_mtype = h->reply_mtype;
    atomic_init(&c->refs, 1);
    c->t_created = now_ns();
    c->qid = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    if (c->qid < 0) {
        r = -errno;
        tlog(LOG_ERR, "cannot create a client queue: %s", tiny_errno_text(errno));
        goto fail_mem;
    }
    c->shmid = shmget(IPC_PRIVATE, seg, IPC_CREAT | 0600);
    if (c->shmid < 0) {
        r = -errno;
        tlog(LOG_ERR, "cannot create a segment of %" PRIu64 " bytes: %s", seg,
             tiny_errno_text(errno));
        goto fail_q;
    }
    c->seg = shmat(c->shmid, NULL, 0);
    if (c->seg == (void *)-1) {
        r = -errno;
        c->seg = NULL;
        tlog(LOG_ERR, "cannot attach segment %d: %s", c->shmid, tiny_errno_text(errno));
        goto fail_shm;
    }
    pthread_mutex_lock(&reg_mu);
    if (n_live >= tinyd_cfg.max_clients) {
        pthread_mutex_unlock(&reg_mu);
        r = -EUSERS;
        goto fail_shm;
    }
    c->id = next_id++;
    c->next = live;
    live = c;
    n_live++;
    shm_total += seg;
    ipc_write();
    pthread_mutex_unlock(&reg_mu);
    sched_add(c);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, READER_STACK);
    r = -pthread_create(&c->reader, &attr, reader_main, c);
    pthread_attr_destroy(&attr);
    /* The caller's reference. The client is live, so the reaper may kill it
     * already, but it frees it only once this is settled (bury_dead). */
    client_ref(c);
    pthread_mutex_lock(&reg_mu);
    c->reader_started = r == 0;
    c->reader_settled = true;
    pthread_mutex_unlock(&reg_mu);
    if (r < 0) {
        tlog(LOG_ERR, "cannot start a reader thread: %s", tiny_errno_text(-r));
        client_kill(c, "no reader thread");
        client_unref(c);
        return r;
    }
    stats_client();
    *out = c;
    return 0;
fail_shm:
    if (c->seg)
        shmdt(c->seg);
    shmctl(c->shmid, IPC_RMID, NULL);
fail_q:
    msgctl(c->qid, IPC_RMID, NULL);
fail_mem:
    if (c)
        free(c->units);
    free(c);
    mem_release(seg);
    return r;
}

static void refused_add(long mtype)
{
    pthread_mutex_lock(&refused_mu);
    if (refused_n == REFUSED_MAX) { /* the oldest is dropped from the list */
        refused_head = (refused_head + 1) % REFUSED_MAX;
        refused_n--;
    }
    refused[(refused_head + refused_n) % REFUSED_MAX].mtype = mtype;
    refused[(refused_head + refused_n) % REFUSED_MAX].t = now_ns();
    refused_n++;
    pthread_mutex_unlock(&refused_mu);
}

/* Removes the refusing WELCOMEs older than REFUSED_TTL_MS still queued,
 * when the registration queue is more than half full: only then, because
 * a refused client that asks again within the TTL on the same reply type
 * might otherwise lose its new WELCOME. */
static void refused_purge(void)
{
    uint64_t limit = now_ns() - (uint64_t)REFUSED_TTL_MS * 1000000u;
    struct msqid_ds ds;
    union rxbuf rx;

    if (msgctl(regq, IPC_STAT, &ds) < 0 || ds.__msg_cbytes <= ds.msg_qbytes / 2)
        return;
    pthread_mutex_lock(&refused_mu);
    while (refused_n && refused[refused_head].t < limit) {
        /* The oldest message of that type: the stale one, if still there. */
        (void)msgrcv(regq, &rx.raw, sizeof(rx.raw.body), refused[refused_head].mtype,
                     IPC_NOWAIT | MSG_NOERROR);
        refused_head = (refused_head + 1) % REFUSED_MAX;
        refused_n--;
    }
    pthread_mutex_unlock(&refused_mu);
}

static void on_hello(const struct tiny_msg *m, long n)
{
    const struct tiny_msg_hello *h = &m->u.hello;
    struct client *c = NULL;
    struct tiny_msg w;
    int status;

    if (n != (long)TINY_MSG_SIZE || m->hdr.magic != TINY_PROTO_MAGIC ||
        m->hdr.type != TINY_MSG_HELLO) {
        tlog(LOG_WARNING, "dropped a malformed registration message (%ld bytes, type %u)", n,
             n >= 4 ? m->hdr.type : 0);
        return;
    }
    if (h->reply_mtype < TINY_MTYPE_REPLY) {
        tlog(LOG_WARNING, "dropped a hello from pid %d: reply type %lld is reserved", (int)h->pid,
             (long long)h->reply_mtype);
        return;
    }
    if (m->hdr.version != TINY_PROTO_VERSION)
        status = -EPROTO;
    else
        status = client_create(h, &c);
    tiny_msg_init(&w, (long)h->reply_mtype, TINY_MSG_WELCOME);
    w.u.welcome.status = status;
    w.u.welcome.pid = (int32_t)getpid();
    w.u.welcome.nonce = h->nonce;
    w.u.welcome.workers = tinyd_cfg.workers;
    if (c) {
        w.u.welcome.qid = c->qid;
        w.u.welcome.shmid = c->shmid;
        w.u.welcome.slot_size = c->slot_size;
        w.u.welcome.n_slots = c->n_slots;
        tlog(LOG_INFO, "client %u (pid %d) connected: %u slots of %zu bytes, weight %u", c->id,
             (int)c->pid, c->n_slots, c->slot_size, c->weight);
    } else {
        tlog(LOG_INFO, "refused client pid %d: %s", (int)h->pid, tiny_errno_text(-status));
    }
    for (;;) {
        if (msgsnd(regq, &w, TINY_MSG_SIZE, IPC_NOWAIT) == 0) {
            if (!c)
                refused_add(w.mtype);
            break;
        }
        if (errno == EINTR)
            continue;
        tlog(LOG_WARNING, "cannot answer pid %d: %s", (int)h->pid, tiny_errno_text(errno));
        if (c)
            client_kill(c, "welcome not sent");
        break;
    }
    if (c)
        client_unref(c);
}

int registry_serve(void)
{
    union rxbuf rx;

    for (;;) {
        ssize_t n = msgrcv(regq, &rx.raw, sizeof(rx.raw.body), TINY_MTYPE_DAEMON, MSG_NOERROR);

        if (n >= 0) {
            on_hello(&rx.m, (long)n);
            continue;
        }
        if (errno == EINTR)
            continue;
        if (atomic_load(&stopping))
            return 0;
        tlog(LOG_ERR, "cannot receive on the registration queue: %s", tiny_errno_text(errno));
        return -errno;
    }
}

/* Whether @c's queue has been full for TINY_STUCK_TIMEOUT_MS with tinyd the
 * last to send and to receive on it and nobody doing either since: the
 * client is not collecting its replies, and no reply can tell it so. A
 * queue full of requests is not that: their sender is the client, or
 * tinyd's reader takes them. The kernel records a sender by its process id
 * but a receiver by its thread id. */
static bool queue_stuck(struct client *c, uint64_t now)
{
    struct msqid_ds q;
    pid_t self = getpid();

    if (msgctl(c->qid, IPC_STAT, &q) < 0 || q.__msg_cbytes + TINY_MSG_SIZE <= q.msg_qbytes ||
        q.msg_lspid != self || syscall(SYS_tgkill, self, q.msg_lrpid, 0) < 0) {
        c->t_stuck = 0;
        return false;
    }
    if (!c->t_stuck || q.msg_stime != c->stuck_stime || q.msg_rtime != c->stuck_rtime) {
        c->t_stuck = now;
        c->stuck_stime = q.msg_stime;
        c->stuck_rtime = q.msg_rtime;
        return false;
    }
    return now - c->t_stuck > (uint64_t)TINY_STUCK_TIMEOUT_MS * 1000000u;
}

/* Why @c must be freed, or NULL. Under reg_mu. */
static const char *reap_reason(struct client *c, uint64_t now)
{
    struct shmid_ds ds;

    if (kill(c->pid, 0) < 0 && errno == ESRCH)
        return "process exited";
    if (shmctl(c->shmid, IPC_STAT, &ds) < 0)
        return "segment removed";
    if (ds.shm_nattch >= 2)
        c->attached = true;
    else if (c->attached)
        return "detached its segment";
    else if (now - c->t_created > (uint64_t)TINY_ATTACH_TIMEOUT_MS * 1000000u)
        return "did not attach in time";
    if (queue_stuck(c, now))
        return "does not collect its replies";
    return NULL;
}

/* Joins the readers of dead clients and drops the registry's reference. */
static void bury_dead(void)
{
    struct client *list;

    pthread_mutex_lock(&reg_mu);
    list = dead;
    dead = NULL;
    /* one killed while client_create() starts its reader waits a round */
    for (struct client **pp = &list, *c; (c = *pp);) {
        if (c->reader_settled) {
            pp = &c->next;
        } else {
            *pp = c->next;
            c->next = dead;
            dead = c;
        }
    }
    pthread_mutex_unlock(&reg_mu);
    while (list) {
        struct client *c = list;
        list = c->next;
        if (c->reader_started)
            pthread_join(c->reader, NULL);
        client_unref(c);
    }
}

static void reap(void)
{
    struct client *victims[64];
    const char *why[64];
    unsigned n = 0;
    uint64_t now = now_ns();

    pthread_mutex_lock(&reg_mu);
    for (struct client *c = live; c && n < 64; c = c->next) {
        const char *w = reap_reason(c, now);
        if (w) {
            client_ref(c);
            victims[n] = c;
            why[n++] = w;
        }
    }
    pthread_mutex_unlock(&reg_mu);
    for (unsigned i = 0; i < n; i++) {
        union rxbuf rx;
        /* A WELCOME nobody collected would fill the registration queue. */
        if (!victims[i]->attached)
            (void)msgrcv(regq, &rx.raw, sizeof(rx.raw.body), victims[i]->reply_mtype,
                         IPC_NOWAIT | MSG_NOERROR);
        client_kill(victims[i], why[i]);
        client_unref(victims[i]);
    }
    refused_purge();
    bury_dead();
}

static void *reaper_main(void *arg)
{
    struct timespec ts;

    (void)arg;
    pthread_setname_np(pthread_self(), "tinyd-reaper");
    pthread_mutex_lock(&reap_mu);
    while (!reap_stop) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += TINY_REAP_INTERVAL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&reap_cv, &reap_mu, &ts);
        if (reap_stop)
            break;
        pthread_mutex_unlock(&reap_mu);
        reap();
        pthread_mutex_lock(&reap_mu);
    }
    pthread_mutex_unlock(&reap_mu);
    return NULL;
}

int registry_start(void)
{
    pthread_condattr_t ca;
    int r;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&reap_cv, &ca);
    pthread_condattr_destroy(&ca);
    r = -pthread_create(&reaper, NULL, reaper_main, NULL);
    if (r < 0) {
        tlog(LOG_ERR, "cannot start the reaper thread: %s", tiny_errno_text(-r));
        return r;
    }
    reaper_started = true;
    return 0;
}

void registry_shutdown(void)
{
    char path[PATH_MAX];

    if (reaper_started) {
        pthread_mutex_lock(&reap_mu);
        reap_stop = true;
        pthread_cond_signal(&reap_cv);
        pthread_mutex_unlock(&reap_mu);
        pthread_join(reaper, NULL);
        reaper_started = false;
    }
    registry_stop();
    for (;;) {
        struct client *c;
        pthread_mutex_lock(&reg_mu);
        c = live;
        if (c)
            client_ref(c);
        pthread_mutex_unlock(&reg_mu);
        if (!c)
            break;
        client_kill(c, "tinyd stopping");
        client_unref(c);
    }
    /* Readers may be running a step inline: join them (bury_dead) before
     * the workers' scratch memory goes away with sched_stop(). */
    bury_dead();
    sched_stop();
    if (run_path(path, sizeof(path), TINY_IPC_FILE) == 0)
        unlink(path);
}
