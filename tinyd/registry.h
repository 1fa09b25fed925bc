/*
 * registry.h - the registration queue, the clients' lifecycle, the reaper
 * and the bookkeeping of IPC objects in <dir>/tinyd.ipc.
 */
#ifndef TINYD_REGISTRY_H
#define TINYD_REGISTRY_H

#include <stdint.h>
#include <sys/ipc.h>

/* Removes what a killed tinyd left behind (the registration queue of @key
 * and the objects listed in tinyd.ipc), then creates the registration
 * queue. Returns 0 or a negative errno (logged). */
int registry_open(key_t key);

/* Starts the reaper thread. Returns 0 or a negative errno. */
int registry_start(void);

/* Serves HELLOs until registry_stop() or an error. Returns 0 when stopped,
 * a negative errno on failure. */
int registry_serve(void);

/* Stops accepting: removes the registration queue. Async-safe enough to be
 * called from the signal thread. */
void registry_stop(void);

/* Frees every client, stops the workers, removes every IPC object tinyd
 * created and tinyd.ipc. */
void registry_shutdown(void);

/* Connected clients and the bytes of their segments. */
void registry_counts(uint32_t *clients, uint64_t *shm_bytes);

#endif
