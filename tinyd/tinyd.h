/*
 * tinyd.h - types shared by the modules of tinyd: the configuration, a
 * client and the unit that occupies one of its slots. Internal.
 *
 * Locking: slot states and everything the scheduler reads (unit FIFO,
 * virtual time, `gone`) are guarded by the scheduler lock (sched_lock());
 * the client lists by the registry lock. A client is reference counted so
 * that its segment stays attached until the last worker is done with it.
 */
#ifndef TINYD_H
#define TINYD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tiny_proto.h"

struct tinyd_config {
    const char *dir;      /* run directory */
    const char *log_file; /* NULL: stderr or syslog */
    unsigned workers;     /* worker threads */
    unsigned max_clients; /* client limit */
    uint64_t max_memory;  /* segments + staging buffers */
    unsigned slots;       /* default geometry for clients asking 0 */
    size_t slot_size;
    bool foreground;
    bool verbose;
};

extern struct tinyd_config tinyd_cfg;

enum slot_state {
    SLOT_FREE,
    SLOT_RECEIVING, /* staged input arriving in pieces */
    SLOT_QUEUED,    /* waiting for its first step */
    SLOT_RUNNING,   /* at least one step started */
    SLOT_SENDING,   /* staged output leaving in pieces */
};

struct unit {
    enum slot_state state;
    uint32_t tag, seq, slot, op, flags;
    uint64_t in_off, in_len, arg;
    uint64_t in_pos;  /* input consumed by the steps so far */
    uint64_t out_len; /* output produced so far */
    uint64_t t_arrival;
    bool started;  /* its first step ran */
    bool stepping; /* a step is executing now */
    /* staged units only: private buffers, counted against --max-memory */
    unsigned char *stage_in;
    size_t stage_in_cap, stage_in_got;
    unsigned char *stage_out;
    size_t stage_out_cap, sent;
    struct unit *next; /* the client's FIFO of queued/running units */
};

/* A receive buffer larger than a message, so that oversized ones are
 * truncated (MSG_NOERROR) and then recognised by their length. */
union rxbuf {
    struct tiny_msg m;
    struct {
        long mtype;
        unsigned char body[TINY_MSG_SIZE + 64];
    } raw;
};

struct client {
    unsigned id;
    pid_t pid;
    int qid, shmid;
    unsigned char *seg;
    uint32_t n_slots;
    size_t slot_size;
    unsigned weight;
    int64_t reply_mtype;
    atomic_int refs;
    uint64_t t_created;
    bool attached;                   /* reaper only */
    uint64_t t_stuck;                /* reaper only: its queue found full of replies, or 0 */
    time_t stuck_stime, stuck_rtime; /* reaper only: the queue's times then */
    bool dead;                       /* registry lock */
    bool reader_started;             /* registry lock, once reader_settled */
    bool reader_settled;             /* registry lock: pthread_create() returned */
    pthread_t reader;
    struct unit *units;  /* n_slots */
    struct client *next; /* registry list */
    /* scheduler state, under the scheduler lock */
    bool gone;
    uint64_t vt;
    unsigned n_runnable; /* FIFO units not stepping */
    struct unit *fifo_head, *fifo_tail;
    struct client *s_prev, *s_next;
};

uint64_t now_ns(void);

/* Memory accounting against --max-memory (registry.c). */
int mem_reserve(uint64_t n);
void mem_release(uint64_t n);

/* Client references (registry.c); the last unref detaches the segment. */
void client_ref(struct client *c);
void client_unref(struct client *c);
/* Frees a client at once (idempotent): removes its queue, wakes its reader. */
void client_kill(struct client *c, const char *why);

#endif /* TINYD_H */
