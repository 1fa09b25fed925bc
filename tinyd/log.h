/*
 * log.h - tinyd's logging: a log file when given, else stderr in the
 * foreground and syslog in the background.
 */
#ifndef TINYD_LOG_H
#define TINYD_LOG_H

#include <stdbool.h>
#include <syslog.h>

#include "format.h" /* tiny_errno_text(), the errno text of the messages */

/* Starts logging, to @file (appended, created 0600) when not NULL. Until
 * log_ready(), errors and warnings also go to stderr, so that the starting
 * shell sees why tinyd did not start. Returns 0 or a negative errno (the
 * file cannot be opened). */
int log_init(bool foreground, bool verbose, const char *file);

/* Opens the log file again by the same name (after a rotation); a no-op
 * without one. Returns 0 or a negative errno, the old file kept then. */
int log_reopen(void);
void log_ready(void);
void log_close(void);

/* Logs one line at a syslog priority (LOG_ERR, LOG_WARNING, LOG_INFO,
 * LOG_DEBUG); LOG_DEBUG only with -v. Thread-safe. */
void tlog(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
