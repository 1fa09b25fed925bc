/*
 * sched.c - start-time fair queueing of unit steps, and the workers.
 *
 * Work is done in steps of at most one 64 KiB chunk. Every client has a
 * virtual time vt. When a client becomes backlogged (gets a runnable unit
 * after having none) its vt is raised to the global virtual time; a worker
 * picks the backlogged client with the smallest vt, takes the oldest unit of
 * that client that is not already executing a step, sets the global virtual
 * time to the client's vt (the start tag) and charges the client
 * cost * 1000 / weight. A client streaming GiBs therefore delays another
 * client's small unit by at most about one step per worker, and backlogged
 * clients get service in proportion to their weights.
 *
 * Units of one client are picked in submission order, but different units
 * of a client may run on different workers at once; the steps of one unit
 * run one after the other. Each execution holds one of `workers` scratch
 * contexts (the "tokens"), so at most `workers` steps run at any time,
 * including steps run inline by a reader thread: when a one-step unit
 * arrives while nothing is queued anywhere, a context is free, the client
 * has nothing queued or running and no other message of it waits in its
 * queue, its reader executes it at once, saving two thread hand-offs on the
 * small-request latency path. A burst of such units (the chunks a
 * filesystem submits together) goes to the workers instead: run inline,
 * one after the other on the reader, it would keep every worker idle.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "log.h"
#include "reader.h"
#include "sched.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct client *clients; /* every known client */
static uint64_t global_vt;
static unsigned runnable;  /* units waiting for a step, all clients */
static unsigned in_flight; /* units accepted and not yet answered */
static bool stopping;
static unsigned n_workers;
static pthread_t *workers;
static struct codec_ctx *ctxs;
static unsigned *free_ctx; /* stack of free context indexes */
static unsigned n_free;

static void make_runnable(struct client *c)
{
    if (c->n_runnable++ == 0 && c->vt < global_vt)
        c->vt = global_vt;
    runnable++;
}

/* Marks @u of @c as executing and charges @c for the step. */
static void start_step(struct client *c, struct unit *u)
{
    u->stepping = true;
    u->state = SLOT_RUNNING;
    c->n_runnable--;
    runnable--;
    if (c->vt > global_vt)
        global_vt = c->vt;
    c->vt += codec_step_cost(u) * 1000u / c->weight;
}

static void fifo_remove(struct client *c, struct unit *u)
{
    struct unit **pp = &c->fifo_head, *prev = NULL;

    while (*pp && *pp != u) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = u->next;
    if (c->fifo_tail == u)
        c->fifo_tail = prev;
    u->next = NULL;
}

/* Runs one step of @u with context @ci; called without the lock, by a
 * thread holding a reference to @c. @again: the caller is a worker that
 * looks for the next step itself right after. */
static void execute(unsigned ci, struct client *c, struct unit *u, bool again)
{
    int r = codec_step(&ctxs[ci], u, c->seg + (size_t)u->slot * c->slot_size, c->slot_size);
    bool done = false;

    pthread_mutex_lock(&mu);
    free_ctx[n_free++] = ci;
    if (c->gone) {
        u->stepping = false;
        in_flight--;
    } else if (r == 0) {
        u->stepping = false;
        make_runnable(c);
    } else {
        /* stays `stepping` until unit_complete() hands it back */
        fifo_remove(c, u);
        done = true;
    }
    /* A worker that stepped a unit not yet complete takes the next step
     * itself (often that unit's, whose data is in its cache): wake another
     * only for work beyond that step, or it wakes up to find nothing. A
     * completed unit is answered first, which may take a while. */
    again = again && !done;
    if (runnable > (unsigned)again && n_free > (unsigned)again)
        pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    if (done)
        unit_complete(c, u, r < 0 ? r : 0);
}

static struct client *pick(struct unit **up)
{
    struct client *best = NULL;
    struct unit *u;

    for (struct client *c = clients; c; c = c->s_next)
        if (c->n_runnable && (!best || c->vt < best->vt))
            best = c;
    for (u = best->fifo_head; u && u->stepping; u = u->next)
        ;
    *up = u;
    return best;
}

static void *worker_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "tinyd-worker");
    pthread_mutex_lock(&mu);
    for (;;) {
        struct client *c;
        struct unit *u;
        unsigned ci;

        while (!stopping && (runnable == 0 || n_free == 0))
            pthread_cond_wait(&cv, &mu);
        if (stopping)
            break;
        ci = free_ctx[--n_free];
        c = pick(&u);
        start_step(c, u);
        client_ref(c);
        pthread_mutex_unlock(&mu);
        execute(ci, c, u, true);
        client_unref(c);
        pthread_mutex_lock(&mu);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

int sched_start(unsigned n)
{
    int r = -ENOMEM;
    unsigned started = 0;

    workers = calloc(n, sizeof(*workers));
    ctxs = calloc(n, sizeof(*ctxs));
    free_ctx = calloc(n, sizeof(*free_ctx));
    if (!workers || !ctxs || !free_ctx)
        goto fail;
    for (unsigned i = 0; i < n; i++) {
        r = codec_ctx_init(&ctxs[i]);
        if (r < 0)
            goto fail;
        free_ctx[n_free++] = i;
    }
    n_workers = n;
    for (; started < n; started++) {
        r = -pthread_create(&workers[started], NULL, worker_main, NULL);
        if (r < 0) {
            tlog(LOG_ERR, "cannot start worker thread: %s", tiny_errno_text(-r));
            goto fail;
        }
    }
    return 0;
fail:
    n_workers = started;
    sched_stop();
    return r;
}

void sched_stop(void)
{
    pthread_mutex_lock(&mu);
    stopping = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (unsigned i = 0; i < n_workers; i++)
        pthread_join(workers[i], NULL);
    for (unsigned i = 0; ctxs && i < n_free; i++)
        codec_ctx_free(&ctxs[free_ctx[i]]);
    free(workers);
    free(ctxs);
    free(free_ctx);
    workers = NULL;
    ctxs = NULL;
    free_ctx = NULL;
    n_workers = n_free = 0;
}

void sched_add(struct client *c)
{
    pthread_mutex_lock(&mu);
    c->vt = global_vt;
    c->s_prev = NULL;
    c->s_next = clients;
    if (clients)
        clients->s_prev = c;
    clients = c;
    pthread_mutex_unlock(&mu);
}

void sched_forget(struct client *c)
{
    pthread_mutex_lock(&mu);
    if (c->gone) {
        pthread_mutex_unlock(&mu);
        return;
    }
    c->gone = true;
    if (c->s_prev)
        c->s_prev->s_next = c->s_next;
    else
        clients = c->s_next;
    if (c->s_next)
        c->s_next->s_prev = c->s_prev;
    for (uint32_t i = 0; i < c->n_slots; i++) {
        struct unit *u = &c->units[i];
        if (u->stepping || u->state == SLOT_FREE || u->state == SLOT_SENDING)
            continue;
        in_flight--;
        u->state = SLOT_FREE;
    }
    runnable -= c->n_runnable;
    c->n_runnable = 0;
    c->fifo_head = c->fifo_tail = NULL;
    pthread_mutex_unlock(&mu);
}

bool sched_one_step(const struct unit *u)
{
    return u->in_len <= CODEC_STEP_MAX + 64;
}

void sched_submit(struct client *c, struct unit *u, bool alone)
{
    unsigned ci;

    pthread_mutex_lock(&mu);
    if (c->gone) {
        pthread_mutex_unlock(&mu);
        return;
    }
    u->state = SLOT_QUEUED;
    u->next = NULL;
    if (c->fifo_tail)
        c->fifo_tail->next = u;
    else
        c->fifo_head = u;
    c->fifo_tail = u;
    make_runnable(c);
    if (alone && runnable == 1 && n_free > 0 && c->fifo_head == u) {
        ci = free_ctx[--n_free];
        start_step(c, u);
        pthread_mutex_unlock(&mu);
        execute(ci, c, u, false);
        return;
    }
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

int slot_claim(struct client *c, struct unit *u, enum slot_state to, bool count)
{
    int r = 0;

    pthread_mutex_lock(&mu);
    if (c->gone) {
        r = -ECONNRESET;
    } else if (u->state != SLOT_FREE) {
        r = -EBUSY;
    } else {
        u->state = to;
        u->stepping = false;
        if (count)
            in_flight++;
    }
    pthread_mutex_unlock(&mu);
    return r;
}

void slot_release(struct client *c, struct unit *u, bool counted)
{
    pthread_mutex_lock(&mu);
    if (!c->gone) {
        if (counted && u->state != SLOT_FREE)
            in_flight--;
        u->state = SLOT_FREE;
    }
    pthread_mutex_unlock(&mu);
}

bool slot_is(struct unit *u, enum slot_state st)
{
    bool r;

    pthread_mutex_lock(&mu);
    r = u->state == st;
    pthread_mutex_unlock(&mu);
    return r;
}

bool sched_unit_done(struct client *c, struct unit *u, enum slot_state to)
{
    bool alive;

    pthread_mutex_lock(&mu);
    u->stepping = false;
    in_flight--;
    alive = !c->gone;
    if (alive)
        u->state = to;
    pthread_mutex_unlock(&mu);
    return alive;
}

void sched_counts(uint32_t *queued, uint32_t *inflight)
{
    pthread_mutex_lock(&mu);
    *queued = runnable;
    *inflight = in_flight;
    pthread_mutex_unlock(&mu);
}
