/*
 * log.c - tinyfs's messages: to stderr while in the foreground, to syslog
 * once daemonized, with errno texts lowercased as every message of the
 * project writes them ("cannot open store /srv/store: no such file or
 * directory").
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "tinyfs.h"

int tfs_foreground;

void tfs_log(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (tfs_foreground) {
        fprintf(stderr, "tinyfs: ");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    } else {
        vsyslog(LOG_ERR, fmt, ap);
    }
    va_end(ap);
}

const char *tfs_strerror(int err)
{
    static _Thread_local char bufs[4][96];
    static _Thread_local unsigned next;
    char *buf = bufs[next++ % 4];
    const char *s;

    s = strerror_r(err < 0 ? -err : err, buf, sizeof bufs[0]); /* GNU: may return a constant */
    if (s != buf)
        snprintf(buf, sizeof bufs[0], "%s", s);
    /* "Input/output error" -> "input/output error"; a leading acronym stays */
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}
