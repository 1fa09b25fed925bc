/*
 * reader.h - the per-client reader thread and the replies to a client.
 */
#ifndef TINYD_READER_H
#define TINYD_READER_H

#include "tinyd.h"

/* Thread body: receives the client's messages until its queue is removed. */
void *reader_main(void *client);

/* Answers the unit @u whose last step ended with @status (0 or negative):
 * moves the first staged output piece into the slot, frees the slot or
 * keeps it for FETCH, and sends DONE. Called by the step's executor. */
void unit_complete(struct client *c, struct unit *u, int status);

#endif
