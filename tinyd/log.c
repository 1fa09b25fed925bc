/*
 * log.c - one function, tlog(), that writes a line to stderr (foreground)
 * or to syslog (background). Before the daemon is ready, errors are copied
 * to stderr as well, because that is where the user who started it looks.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static bool fg;
static bool verb;
static atomic_bool ready;

void log_init(bool foreground, bool verbose)
{
    fg = foreground;
    verb = verbose;
    if (!fg)
        openlog("tinyd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_ready(void)
{
    atomic_store(&ready, true);
}

void log_close(void)
{
    if (!fg)
        closelog();
}

void tlog(int prio, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (prio == LOG_DEBUG && !verb)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (fg || (prio <= LOG_WARNING && !atomic_load(&ready)))
        fprintf(stderr, "tinyd: %s\n", line);
    if (!fg)
        syslog(prio, "%s", line);
}

const char *errstr(int err)
{
    static _Thread_local char buf[96];
    const char *s;

    if (err < 0)
        err = -err;
    s = strerror_r(err, buf, sizeof(buf)); /* GNU: may return a static string */
    if (s != buf)
        snprintf(buf, sizeof(buf), "%s", s);
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}
