/*
 * log.h - tinyd's logging: stderr in the foreground, syslog otherwise.
 */
#ifndef TINYD_LOG_H
#define TINYD_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* Starts logging; in the background, errors also go to stderr until
 * log_ready() so that the starting shell sees why tinyd did not start. */
void log_init(bool foreground, bool verbose);
void log_ready(void);
void log_close(void);

/* Logs one line at a syslog priority (LOG_ERR, LOG_WARNING, LOG_INFO,
 * LOG_DEBUG); LOG_DEBUG only with -v. Thread-safe. */
void tlog(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* strerror() in lowercase, as tinyd's messages are; @err positive or
 * negative. Thread-safe (thread-local buffer). */
const char *errstr(int err);

#endif
