/*
 * stats.c - `tiny stats`: fetches tinyd's counters with tiny_stats() and
 * prints them for people (sizes in binary units, durations scaled) or, with
 * --json, as one flat JSON object of the raw numbers for scripts.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"

static const char *human_bytes(char *buf, size_t size, uint64_t v)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double d = (double)v;
    int u = 0;

    if (v < 1024) {
        snprintf(buf, size, "%" PRIu64 " B", v);
        return buf;
    }
    while (d >= 1024 && u < 5) {
        d /= 1024;
        u++;
    }
    snprintf(buf, size, "%.1f %s", d, units[u]);
    return buf;
}

static const char *human_ns(char *buf, size_t size, uint64_t ns)
{
    if (ns < 1000)
        snprintf(buf, size, "%" PRIu64 " ns", ns);
    else if (ns < 1000000)
        snprintf(buf, size, "%.1f us", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, size, "%.1f ms", (double)ns / 1e6);
    else
        snprintf(buf, size, "%.2f s", (double)ns / 1e9);
    return buf;
}

static const char *human_uptime(char *buf, size_t size, uint64_t ns)
{
    uint64_t s = ns / 1000000000u;

    if (s >= 86400)
        snprintf(buf, size, "%" PRIu64 "d %02" PRIu64 "h %02" PRIu64 "m", s / 86400, s / 3600 % 24,
                 s / 60 % 60);
    else if (s >= 3600)
        snprintf(buf, size, "%" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s", s / 3600, s / 60 % 60,
                 s % 60);
    else if (s >= 60)
        snprintf(buf, size, "%" PRIu64 "m %02" PRIu64 "s", s / 60, s % 60);
    else
        snprintf(buf, size, "%" PRIu64 "s", s);
    return buf;
}

static void print_json(const struct tiny_stats *st)
{
    double ratio = st->compress_out ? (double)st->compress_in / (double)st->compress_out : 0;

    printf("{\"pid\": %d, \"version\": %u, \"workers\": %u, \"uptime_ns\": %" PRIu64 ", "
           "\"clients\": %u, \"clients_max\": %u, \"clients_total\": %" PRIu64 ", "
           "\"requests\": %" PRIu64 ", \"errors\": %" PRIu64 ", "
           "\"bytes_in\": %" PRIu64 ", \"bytes_out\": %" PRIu64 ", "
           "\"compress_in\": %" PRIu64 ", \"compress_out\": %" PRIu64 ", \"ratio\": %.3f, "
           "\"queue_depth\": %u, \"in_flight\": %u, "
           "\"lat_p50_ns\": %" PRIu64 ", \"lat_p90_ns\": %" PRIu64 ", \"lat_p99_ns\": %" PRIu64
           ", \"lat_max_ns\": %" PRIu64 ", \"shm_bytes\": %" PRIu64 "}\n",
           (int)st->pid, st->version, st->workers, st->uptime_ns, st->clients, st->clients_max,
           st->clients_total, st->requests, st->errors, st->bytes_in, st->bytes_out,
           st->compress_in, st->compress_out, ratio, st->queue_depth, st->in_flight, st->lat_p50_ns,
           st->lat_p90_ns, st->lat_p99_ns, st->lat_max_ns, st->shm_bytes);
}

static void print_text(const struct tiny_stats *st)
{
    char a[32], b[32], c[32], d[32];

    printf("tinyd       pid %d, protocol %u, %u worker%s, up %s\n", (int)st->pid, st->version,
           st->workers, st->workers == 1 ? "" : "s", human_uptime(a, sizeof(a), st->uptime_ns));
    printf("clients     %u connected (this one included, max %u), %" PRIu64 " served\n",
           st->clients, st->clients_max, st->clients_total);
    printf("requests    %" PRIu64 " units done, %" PRIu64 " failed\n", st->requests, st->errors);
    printf("bytes       %s in, %s out\n", human_bytes(a, sizeof(a), st->bytes_in),
           human_bytes(b, sizeof(b), st->bytes_out));
    if (st->compress_out)
        printf("ratio       %.2f:1 (compressed %s to %s)\n",
               (double)st->compress_in / (double)st->compress_out,
               human_bytes(a, sizeof(a), st->compress_in),
               human_bytes(b, sizeof(b), st->compress_out));
    else
        printf("ratio       - (nothing compressed yet)\n");
    printf("queue       %u waiting, %u in flight\n", st->queue_depth, st->in_flight);
    printf("latency     p50 %s, p90 %s, p99 %s, max %s\n", human_ns(a, sizeof(a), st->lat_p50_ns),
           human_ns(b, sizeof(b), st->lat_p90_ns), human_ns(c, sizeof(c), st->lat_p99_ns),
           human_ns(d, sizeof(d), st->lat_max_ns));
    printf("memory      %s of shared memory\n", human_bytes(a, sizeof(a), st->shm_bytes));
}

int cli_stats(tiny_conn *conn, int json)
{
    struct tiny_stats st;
    int r = tiny_stats(conn, &st);

    if (r < 0) {
        fprintf(stderr, "tiny: cannot read tinyd's statistics: %s\n", tiny_strerror(r));
        return r;
    }
    if (json)
        print_json(&st);
    else
        print_text(&st);
    if (fflush(stdout) == EOF || ferror(stdout)) {
        fprintf(stderr, "tiny: stdout: write error: %s\n", tiny_errno_text(errno));
        return -EIO;
    }
    return 0;
}
