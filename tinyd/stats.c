/*
 * stats.c - counters and a log-scale latency histogram.
 *
 * Latencies go into a histogram of 8 sub-buckets per power of two (at most
 * 12.5% error). Two windows of STATS_WINDOW units are kept, the current one
 * and the previous one, so the percentiles describe the last 1..2 windows
 * of requests and old history ages out.
 */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "stats.h"
#include "tiny_proto.h"
#include "tinyd.h"

#define STATS_BUCKETS 512
#define STATS_WINDOW  10000u

struct window {
    uint32_t n;
    uint64_t max;
    uint32_t b[STATS_BUCKETS];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct tiny_stats tot;
static struct window win[2]; /* win[cur] fills, the other is the last full one */
static unsigned cur;
static uint64_t t_start;

static unsigned bucket(uint64_t v)
{
    unsigned e;

    if (v < 8)
        return (unsigned)v;
    e = 63u - (unsigned)__builtin_clzll(v);
    return (e - 2) * 8 + (unsigned)((v >> (e - 3)) & 7);
}

/* Largest value of bucket i. */
static uint64_t bucket_top(unsigned i)
{
    unsigned e, sub;

    if (i < 8)
        return i;
    e = i / 8 + 2;
    sub = i % 8;
    return ((8ull + sub) << (e - 3)) + ((1ull << (e - 3)) - 1);
}

void stats_init(unsigned workers, unsigned clients_max)
{
    pthread_mutex_lock(&mu);
    tot.version = TINY_PROTO_VERSION;
    tot.workers = workers;
    tot.clients_max = clients_max;
    tot.pid = (int32_t)getpid();
    t_start = now_ns();
    pthread_mutex_unlock(&mu);
}

void stats_client(void)
{
    pthread_mutex_lock(&mu);
    tot.clients_total++;
    pthread_mutex_unlock(&mu);
}

void stats_unit(int status, uint64_t in, uint64_t out, bool compressing, uint64_t lat_ns)
{
    struct window *w;

    pthread_mutex_lock(&mu);
    if (status < 0) {
        tot.errors++;
    } else {
        tot.requests++;
        tot.bytes_in += in;
        tot.bytes_out += out;
        if (compressing) {
            tot.compress_in += in;
            tot.compress_out += out;
        }
    }
    w = &win[cur];
    w->b[bucket(lat_ns)]++;
    if (lat_ns > w->max)
        w->max = lat_ns;
    if (++w->n >= STATS_WINDOW) {
        cur ^= 1;
        memset(&win[cur], 0, sizeof(win[cur]));
    }
    pthread_mutex_unlock(&mu);
}

static uint64_t percentile(const uint32_t *b, uint64_t n, uint64_t max, unsigned pct)
{
    uint64_t want = (n * pct + 99) / 100, seen = 0;

    if (want == 0)
        want = 1;
    for (unsigned i = 0; i < STATS_BUCKETS; i++) {
        seen += b[i];
        if (seen >= want) {
            uint64_t v = bucket_top(i);
            return v < max ? v : max;
        }
    }
    return max;
}

void stats_fill(struct tiny_stats *st)
{
    static uint32_t merged[STATS_BUCKETS]; /* under mu */
    uint64_t n, max;

    pthread_mutex_lock(&mu);
    *st = tot;
    n = (uint64_t)win[0].n + win[1].n;
    max = win[0].max > win[1].max ? win[0].max : win[1].max;
    for (unsigned i = 0; i < STATS_BUCKETS; i++)
        merged[i] = win[0].b[i] + win[1].b[i];
    if (n) {
        st->lat_p50_ns = percentile(merged, n, max, 50);
        st->lat_p90_ns = percentile(merged, n, max, 90);
        st->lat_p99_ns = percentile(merged, n, max, 99);
        st->lat_max_ns = max;
    }
    st->uptime_ns = now_ns() - t_start;
    pthread_mutex_unlock(&mu);
}
