/*
 * tap.h - a header-only TAP producer for the C test programs.
 *
 * The programs print "ok N - what" lines and no plan of their own unless
 * they call plan(); tests/lib.sh (tap_run) renumbers their lines into the
 * enclosing .t script's stream, so a program may also be run by hand.
 * done_testing() returns the exit status: non-zero when any test failed,
 * so a crash or a failure both show up in prove's summary. ok() may be
 * called from several threads.
 */
#ifndef TINY_TAP_H
#define TINY_TAP_H

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_count;
static int tap_failed;
static int tap_planned = -1;
static pthread_mutex_t tap_lock = PTHREAD_MUTEX_INITIALIZER;

static inline void plan(int n)
{
    tap_planned = n;
    printf("1..%d\n", n);
    fflush(stdout);
}

static inline void tap_vdiag(const char *fmt, va_list ap)
{
    printf("# ");
    vprintf(fmt, ap);
    printf("\n");
}

static inline void diag(const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&tap_lock);
    va_start(ap, fmt);
    tap_vdiag(fmt, ap);
    va_end(ap);
    fflush(stdout);
    pthread_mutex_unlock(&tap_lock);
}

/* One test line; on failure, where it failed and @detail (may be empty). */
static inline int tap_vresult(int pass, const char *file, int line, const char *detail,
                              const char *fmt, va_list ap)
{
    pthread_mutex_lock(&tap_lock);
    tap_count++;
    if (!pass)
        tap_failed++;
    printf("%sok %d - ", pass ? "" : "not ", tap_count);
    vprintf(fmt, ap);
    printf("\n");
    if (!pass)
        printf("#   failed at %s:%d\n%s", file, line, detail);
    fflush(stdout);
    pthread_mutex_unlock(&tap_lock);
    return pass;
}

static inline int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tap_vresult(pass, file, line, "", fmt, ap);
    va_end(ap);
    return pass;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* is_int(got, expected, fmt, ...): like ok(), and shows both values on failure. */
#define is_int(got, exp, ...)                                                                      \
    tap_is_int((long long)(got), (long long)(exp), __FILE__, __LINE__, __VA_ARGS__)

static inline int tap_is_int(long long got, long long exp, const char *file, int line,
                             const char *fmt, ...)
{
    char detail[96];
    va_list ap;

    snprintf(detail, sizeof detail, "#          got: %lld\n#     expected: %lld\n", got, exp);
    va_start(ap, fmt);
    tap_vresult(got == exp, file, line, detail, fmt, ap);
    va_end(ap);
    return got == exp;
}

/* Stops the program at once with a failing status ("Bail out!" stops prove too). */
static inline void bail_out(const char *why)
{
    printf("Bail out! %s\n", why);
    fflush(stdout);
    exit(255);
}

/* Prints the plan if none was given and returns the exit status for main(). */
static inline int done_testing(void)
{
    if (tap_planned < 0)
        printf("1..%d\n", tap_count);
    else if (tap_planned != tap_count) {
        printf("# planned %d tests but ran %d\n", tap_planned, tap_count);
        tap_failed++;
    }
    if (tap_failed)
        printf("# failed %d of %d tests\n", tap_failed, tap_count);
    fflush(stdout);
    return tap_failed ? 1 : 0;
}

#endif /* TINY_TAP_H */
