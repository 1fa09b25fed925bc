/*
 * sched.h - weighted fair queueing of unit steps across clients, and the
 * worker pool that executes them.
 */
#ifndef TINYD_SCHED_H
#define TINYD_SCHED_H

#include "tinyd.h"

/* Starts @workers worker threads, each with private scratch memory.
 * Returns 0 or a negative errno. */
int sched_start(unsigned workers);
/* Stops the workers once their running steps are done, joins them and
 * frees their memory. Units still queued are abandoned. */
void sched_stop(void);

/* Makes @c known to the scheduler. */
void sched_add(struct client *c);
/* Forgets @c: its waiting units are dropped, its running steps finish
 * without replying. Idempotent. */
void sched_forget(struct client *c);

/* The unit is done in one step: sched_submit() may run it inline. */
bool sched_one_step(const struct unit *u);

/* Queues a unit whose input is complete; runs it at once on the calling
 * thread when the service is idle and @alone: the unit is done in one step
 * and nothing else of the client waits to be received (the latency path). */
void sched_submit(struct client *c, struct unit *u, bool alone);

/* Slot ownership, under the scheduler lock. slot_claim() takes a FREE slot
 * into state @to (and counts it in flight if @count); returns -EBUSY or
 * -ECONNRESET if the client is gone. slot_release() frees a slot that is
 * not queued (@counted: it was in flight). slot_is() reads the state. */
int slot_claim(struct client *c, struct unit *u, enum slot_state to, bool count);
void slot_release(struct client *c, struct unit *u, bool counted);
bool slot_is(struct unit *u, enum slot_state st);

/* Called by the executor of a unit's last step, after its output is in
 * place: the unit leaves the in-flight count and takes state @to. Returns
 * false if the client is gone (send nothing). */
bool sched_unit_done(struct client *c, struct unit *u, enum slot_state to);

/* Steps waiting for a worker, and units in flight. */
void sched_counts(uint32_t *queued, uint32_t *in_flight);

#endif
