/*
 * log.c - one function, tlog(), that writes a line to stderr (foreground),
 * to a log file (--log) or to syslog (background). Before the daemon is
 * ready, errors are copied to stderr as well, because that is where the
 * user who started it looks.
 *
 * A log file is opened O_APPEND and each line goes out in one write(), so
 * lines of concurrent threads never interleave. log_reopen() (SIGHUP) opens
 * the file again by name and dup2()s it over the old descriptor, which a
 * writer in another thread may be using: it then writes to one file or the
 * other, never to a closed descriptor. That is what log rotation needs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static bool fg;
static bool verb;
static atomic_bool ready;
static int file_fd = -1;
static char file_path[PATH_MAX];

static int open_file(void)
{
    int fd = open(file_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);

    return fd < 0 ? -errno : fd;
}

int log_init(bool foreground, bool verbose, const char *file)
{
    fg = foreground;
    verb = verbose;
    if (file) {
        /* absolute, so that a reopen finds it whatever the cwd then is */
        char cwd[PATH_MAX];
        int n;

        if (file[0] == '/')
            n = snprintf(file_path, sizeof(file_path), "%s", file);
        else if (getcwd(cwd, sizeof(cwd)))
            n = snprintf(file_path, sizeof(file_path), "%s/%s", cwd, file);
        else
            return -errno;
        if (n < 0 || n >= (int)sizeof(file_path))
            return -ENAMETOOLONG;
        file_fd = open_file();
        return file_fd < 0 ? file_fd : 0;
    }
    if (!fg)
        openlog("tinyd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    return 0;
}

int log_reopen(void)
{
    int fd;

    if (file_fd < 0)
        return 0;
    fd = open_file();
    if (fd < 0)
        return fd;
    if (fd != file_fd) {
        dup2(fd, file_fd);
        close(fd);
    }
    return 0;
}

void log_ready(void)
{
    atomic_store(&ready, true);
}

void log_close(void)
{
    if (file_fd >= 0) {
        close(file_fd);
        file_fd = -1;
    } else if (!fg) {
        closelog();
    }
}

/* "2026-11-21T18:02:03.123+0100 tinyd[42]: warning: LINE\n", in one write(). */
static void file_line(int prio, const char *line)
{
    static const char *const marks[] = {
        "emerg: ", "alert: ", "crit: ", "error: ", "warning: ", "notice: ", "", ""};
    char buf[640], tz[8];
    struct timespec ts;
    struct tm tm;
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    n = (int)strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(tz, sizeof(tz), "%z", &tm);
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, ".%03ld%s tinyd[%ld]: %s%s\n",
                  ts.tv_nsec / 1000000, tz, (long)getpid(), marks[prio & 7], line);
    if (n >= (int)sizeof(buf)) {
        n = (int)sizeof(buf);
        buf[n - 1] = '\n';
    }
    if (write(file_fd, buf, (size_t)n) < 0) {
        /* nowhere left to say it */
    }
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
    if ((fg && file_fd < 0) || (prio <= LOG_WARNING && !atomic_load(&ready)))
        fprintf(stderr, "tinyd: %s\n", line);
    if (file_fd >= 0)
        file_line(prio, line);
    else if (!fg)
        syslog(prio, "%s", line);
}
