/*
 * cli.h - internal interface between the parts of the `tiny` tool:
 * tiny.c (options, gzip-like file handling), stream.c (streaming a file
 * descriptor through tinyd in bounded memory) and stats.c (`tiny stats`).
 */
#ifndef TINY_CLI_H
#define TINY_CLI_H

#include <stdint.h>

#include "format.h" /* tiny_errno_text(), the errno text of the messages */
#include "tiny.h"

/* One input stream to process; the stream functions fill the counters. */
struct cli_stream {
    int in_fd;
    int out_fd;           /* < 0: decompress and discard (--test) */
    const char *in_name;  /* for messages: a file name or "stdin" */
    const char *out_name; /* for messages: a file name or "stdout" */
    uint64_t in_size;     /* size of the input if known (progress bar), else 0 */
    int progress;         /* draw a progress bar on stderr */
    uint64_t bytes_in;    /* bytes read */
    uint64_t bytes_out;   /* bytes written (or that would have been) */
};

/*
 * cli_compress, cli_decompress - stream s->in_fd to s->out_fd in the snappy
 * framing format through tinyd, in blocks, two blocks in flight.
 * Return 0 or a negative errno; the message (`tiny: NAME: reason`) has
 * already been printed. -ECONNRESET means the connection is dead.
 */
int cli_compress(tiny_conn *conn, struct cli_stream *s);
int cli_decompress(tiny_conn *conn, struct cli_stream *s);

/* cli_stats - print tinyd's statistics; json != 0 for JSON. Returns 0 or a
 * negative errno (message printed). */
int cli_stats(tiny_conn *conn, int json);

/* cli_fsck, cli_du - `tiny fsck` (fsck.c) and `tiny du` (du.c): parse their
 * own options from @argv (the command name removed) and return the exit
 * status. */
int cli_fsck(int argc, char **argv);
int cli_du(int argc, char **argv);

#endif /* TINY_CLI_H */
