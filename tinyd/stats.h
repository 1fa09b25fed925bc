/*
 * stats.h - tinyd's counters and unit latency histogram.
 */
#ifndef TINYD_STATS_H
#define TINYD_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "tiny.h"

void stats_init(unsigned workers, unsigned clients_max);
/* A new client was accepted. */
void stats_client(void);
/* A unit was answered: @status 0 or negative, input and output bytes,
 * whether it compressed, and its latency from SUBMIT to DONE. */
void stats_unit(int status, uint64_t in, uint64_t out, bool compressing, uint64_t lat_ns);
/* Fills the counters and latency fields of @st (not the fields that
 * belong to the registry and scheduler: clients, queue_depth, in_flight,
 * shm_bytes). Thread-safe. */
void stats_fill(struct tiny_stats *st);

#endif
