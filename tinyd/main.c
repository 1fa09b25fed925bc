/*
 * main.c - tinyd's entry point: options, run directory, single-instance
 * lock, daemonizing, pid file, signals.
 *
 * Start-up order matters: the lock on <dir>/tinyd.key is taken before
 * anything in the directory is touched, stale IPC objects of a killed
 * predecessor are removed before the registration queue is created, and in
 * the background the parent exits 0 only when the child says it is ready
 * to accept clients (over a pipe), so `tinyd && tiny compress x` works.
 *
 * Signals are blocked in every thread; one thread takes them with
 * sigwait(): SIGINT/SIGTERM stop tinyd, SIGHUP reopens the log file and
 * logs the statistics.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "registry.h"
#include "sched.h"
#include "stats.h"
#include "tinyd.h"

struct tinyd_config tinyd_cfg;

static char run_dir[PATH_MAX];
static pthread_t sig_thread;
static atomic_bool quitting;

uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tinyd [options]\n"
               "snappy compression service for local processes (System V IPC)\n"
               "\n"
               "  -f, --foreground      stay in the foreground, log to stderr (or -l)\n"
               "  -d, --dir DIR         run directory (default $TINYD_DIR, else\n"
               "                        $XDG_RUNTIME_DIR/tinyd, else /tmp/tinyd-$UID)\n"
               "  -l, --log FILE        log to FILE (appended; SIGHUP reopens it)\n"
               "                        instead of stderr or syslog\n"
               "  -w, --workers N       worker threads (default: online cores)\n"
               "      --max-clients N   client limit (default 256)\n"
               "      --max-memory SIZE shared and staging memory limit (default 1G)\n"
               "      --slots N         slots of clients asking for the default (8)\n"
               "      --slot-size SIZE  slot size of clients asking for the default (1M)\n"
               "  -v, --verbose         log every refused request\n"
               "  -h, --help            show this help\n"
               "  -V, --version         show the version\n"
               "\n"
               "SIZE accepts a K, M or G suffix (powers of 1024).\n");
}

static void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "tinyd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'tinyd --help' for more information.\n");
    exit(2);
}

static uint64_t parse_num(const char *s, bool size, const char *what)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    errno = 0;
    if (!*s || *s == '-')
        usage_error(what, s);
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        usage_error(what, s);
    if (size && *end) {
        switch (*end) {
        case 'k':
        case 'K':
            shift = 10;
            break;
        case 'm':
        case 'M':
            shift = 20;
            break;
        case 'g':
        case 'G':
            shift = 30;
            break;
        default:
            usage_error(what, s);
        }
        end++;
        if (*end == 'i')
            end++;
        if (*end == 'B' || *end == 'b')
            end++;
    }
    if (*end || v > (UINT64_MAX >> shift))
        usage_error(what, s);
    return (uint64_t)v << shift;
}

static void parse_args(int argc, char **argv)
{
    enum { OPT_MAX_CLIENTS = 256, OPT_MAX_MEMORY, OPT_SLOTS, OPT_SLOT_SIZE };
    static const struct option opts[] = {
        {"foreground", no_argument, NULL, 'f'},
        {"dir", required_argument, NULL, 'd'},
        {"log", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
        {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
        {"slots", required_argument, NULL, OPT_SLOTS},
        {"slot-size", required_argument, NULL, OPT_SLOT_SIZE},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t v;
    int o;

    tinyd_cfg.workers = cores > 0 ? (unsigned)cores : 1;
    tinyd_cfg.max_clients = 256;
    tinyd_cfg.max_memory = 1ull << 30;
    tinyd_cfg.slots = TINY_SLOTS_DEFAULT;
    tinyd_cfg.slot_size = TINY_SLOT_SIZE_DEFAULT;
    while ((o = getopt_long(argc, argv, "fd:l:w:vhV", opts, NULL)) != -1) {
        switch (o) {
        case 'f':
            tinyd_cfg.foreground = true;
            break;
        case 'd':
            if (!*optarg)
                usage_error("empty run directory%s", "");
            tinyd_cfg.dir = optarg;
            break;
        case 'l':
            if (!*optarg)
                usage_error("empty log file name%s", "");
            tinyd_cfg.log_file = optarg;
            break;
        case 'w':
            v = parse_num(optarg, false, "invalid worker count '%s' (1..256)");
            if (v < 1 || v > 256)
                usage_error("invalid worker count '%s' (1..256)", optarg);
            tinyd_cfg.workers = (unsigned)v;
            break;
        case OPT_MAX_CLIENTS:
            v = parse_num(optarg, false, "invalid client limit '%s' (1..65536)");
            if (v < 1 || v > 65536)
                usage_error("invalid client limit '%s' (1..65536)", optarg);
            tinyd_cfg.max_clients = (unsigned)v;
            break;
        case OPT_MAX_MEMORY:
            v = parse_num(optarg, true, "invalid memory limit '%s'");
            if (v < TINY_SLOT_SIZE_MIN)
                usage_error("memory limit '%s' is too small", optarg);
            tinyd_cfg.max_memory = v;
            break;
        case OPT_SLOTS:
            v = parse_num(optarg, false, "invalid slot count '%s' (1..128)");
            if (v < 1 || v > TINY_SLOTS_MAX)
                usage_error("invalid slot count '%s' (1..128)", optarg);
            tinyd_cfg.slots = (unsigned)v;
            break;
        case OPT_SLOT_SIZE:
            v = parse_num(optarg, true, "invalid slot size '%s' (4K..16M)");
            if (v < TINY_SLOT_SIZE_MIN || v > TINY_SLOT_SIZE_MAX)
                usage_error("invalid slot size '%s' (4K..16M)", optarg);
            tinyd_cfg.slot_size = (size_t)v;
            break;
        case 'v':
            tinyd_cfg.verbose = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("tinyd %d.%d (protocol %d)\n", TINY_VERSION_MAJOR, TINY_VERSION_MINOR,
                   TINY_PROTO_VERSION);
            exit(0);
        default:
            fprintf(stderr, "Try 'tinyd --help' for more information.\n");
            exit(2);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
}

/* Creates or checks the run directory and makes run_dir absolute. */
static int prepare_dir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        tlog(LOG_ERR, "cannot create run directory %s: %s", dir, tiny_errno_text(errno));
        return -errno;
    }
    if (stat(dir, &st) < 0) {
        tlog(LOG_ERR, "cannot use run directory %s: %s", dir, tiny_errno_text(errno));
        return -errno;
    }
    if (!S_ISDIR(st.st_mode)) {
        tlog(LOG_ERR, "cannot use run directory %s: not a directory", dir);
        return -ENOTDIR;
    }
    if (st.st_uid != geteuid()) {
        tlog(LOG_ERR, "refusing run directory %s: owned by uid %u, not by us", dir,
             (unsigned)st.st_uid);
        return -EPERM;
    }
    if (st.st_mode & 022) {
        tlog(LOG_ERR, "refusing run directory %s: it is group or world writable", dir);
        return -EPERM;
    }
    if (!realpath(dir, run_dir)) {
        tlog(LOG_ERR, "cannot resolve run directory %s: %s", dir, tiny_errno_text(errno));
        return -errno;
    }
    tinyd_cfg.dir = run_dir;
    return 0;
}

static int dir_path(char *buf, size_t size, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", run_dir, name);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int read_pid_file(void)
{
    char path[PATH_MAX];
    int pid = 0;
    FILE *f;

    if (dir_path(path, sizeof(path), TINY_PID_FILE) < 0 || !(f = fopen(path, "re")))
        return 0;
    if (fscanf(f, "%d", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid;
}

/* Opens the ftok anchor and takes the lock that says "tinyd runs here". */
static int lock_dir(int *fd_out)
{
    char path[PATH_MAX];
    int fd;

    if (dir_path(path, sizeof(path), TINY_KEY_FILE) < 0)
        return -ENAMETOOLONG;
    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        tlog(LOG_ERR, "cannot open %s: %s", path, tiny_errno_text(errno));
        return -errno;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        if (e == EWOULDBLOCK)
            tlog(LOG_ERR, "already running on %s (pid %d)", run_dir, read_pid_file());
        else
            tlog(LOG_ERR, "cannot lock %s: %s", path, tiny_errno_text(e));
        close(fd);
        return -e;
    }
    *fd_out = fd;
    return 0;
}

static int write_pid_file(void)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    FILE *f;

    if (dir_path(path, sizeof(path), TINY_PID_FILE) < 0)
        return -ENAMETOOLONG;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "we");
    if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0 || rename(tmp, path) < 0) {
        int e = errno ? errno : EIO;
        tlog(LOG_ERR, "cannot write %s: %s", path, tiny_errno_text(e));
        unlink(tmp);
        return -e;
    }
    return 0;
}

static void remove_run_file(const char *name)
{
    char path[PATH_MAX];

    if (dir_path(path, sizeof(path), name) == 0)
        unlink(path);
}

static void log_stats(void)
{
    struct tiny_stats st;

    stats_fill(&st);
    registry_counts(&st.clients, &st.shm_bytes);
    sched_counts(&st.queue_depth, &st.in_flight);
    tlog(LOG_INFO,
         "stats: %u clients (%llu total), %llu units, %llu errors, %llu bytes in, %llu out, "
         "queue %u, in flight %u, latency p50 %llu p90 %llu p99 %llu max %llu ns",
         st.clients, (unsigned long long)st.clients_total, (unsigned long long)st.requests,
         (unsigned long long)st.errors, (unsigned long long)st.bytes_in,
         (unsigned long long)st.bytes_out, st.queue_depth, st.in_flight,
         (unsigned long long)st.lat_p50_ns, (unsigned long long)st.lat_p90_ns,
         (unsigned long long)st.lat_p99_ns, (unsigned long long)st.lat_max_ns);
}

static void *signal_main(void *arg)
{
    const sigset_t *set = arg;
    int sig;

    pthread_setname_np(pthread_self(), "tinyd-signals");
    for (;;) {
        if (sigwait(set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            int r = log_reopen();

            if (r < 0)
                tlog(LOG_WARNING, "cannot reopen the log file %s: %s", tinyd_cfg.log_file,
                     tiny_errno_text(r));
            log_stats();
        } else if (sig == SIGINT || sig == SIGTERM) {
            tlog(LOG_INFO, "received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
            registry_stop();
            break;
        } else if (sig == SIGUSR1 && atomic_load(&quitting)) {
            break;
        }
    }
    return NULL;
}

/* Background: forks; the parent waits for the child's readiness byte.
 * Returns (in the child) the write end of the readiness pipe. */
static int daemonize(void)
{
    int p[2];
    pid_t pid;
    char b;

    if (pipe2(p, O_CLOEXEC) < 0) {
        fprintf(stderr, "tinyd: cannot create a pipe: %s\n", tiny_errno_text(errno));
        exit(1);
    }
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "tinyd: cannot fork: %s\n", tiny_errno_text(errno));
        exit(1);
    }
    if (pid > 0) {
        int st;
        ssize_t n;

        close(p[1]);
        while ((n = read(p[0], &b, 1)) < 0 && errno == EINTR)
            ;
        if (n == 1)
            exit(0);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        exit(WIFEXITED(st) && WEXITSTATUS(st) ? WEXITSTATUS(st) : 1);
    }
    close(p[0]);
    setsid();
    return p[1];
}

static void detach_stdio(void)
{
    int fd = open("/dev/null", O_RDWR);

    if (fd < 0)
        return;
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2)
        close(fd);
}

int main(int argc, char **argv)
{
    char dir[PATH_MAX], keypath[PATH_MAX];
    int ready_fd = -1, lock_fd = -1, rc = 1, r;
    bool sched_up = false, sig_up = false, reg_up = false;
    sigset_t set;
    key_t key;

    parse_args(argc, argv);
    if (tinyd_cfg.dir) {
        if (snprintf(dir, sizeof(dir), "%s", tinyd_cfg.dir) >= (int)sizeof(dir))
            usage_error("run directory name too long: %s", tinyd_cfg.dir);
    } else if (tiny_default_dir(dir, sizeof(dir)) < 0) {
        fprintf(stderr, "tinyd: default run directory name too long\n");
        return 1;
    }
    if (!tinyd_cfg.foreground)
        ready_fd = daemonize();
    r = log_init(tinyd_cfg.foreground, tinyd_cfg.verbose, tinyd_cfg.log_file);
    if (r < 0) {
        fprintf(stderr, "tinyd: cannot open the log file %s: %s\n", tinyd_cfg.log_file,
                tiny_errno_text(r));
        return 1;
    }
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    if (prepare_dir(dir) < 0 || lock_dir(&lock_fd) < 0)
        goto out;
    dir_path(keypath, sizeof(keypath), TINY_KEY_FILE); /* lock_dir() checked the length */
    key = ftok(keypath, TINY_FTOK_PROJ);
    if (key == (key_t)-1) {
        tlog(LOG_ERR, "cannot derive an ipc key from %s: %s", keypath, tiny_errno_text(errno));
        goto out;
    }
    stats_init(tinyd_cfg.workers, tinyd_cfg.max_clients);
    if (registry_open(key) < 0)
        goto out;
    reg_up = true;
    if (write_pid_file() < 0)
        goto out;
    if (sched_start(tinyd_cfg.workers) < 0)
        goto out;
    sched_up = true;
    r = -pthread_create(&sig_thread, NULL, signal_main, &set);
    if (r < 0) {
        tlog(LOG_ERR, "cannot start the signal thread: %s", tiny_errno_text(-r));
        goto out;
    }
    sig_up = true;
    if (registry_start() < 0)
        goto out;
    tlog(LOG_INFO, "ready on %s: %u workers, up to %u clients, %llu bytes of memory", run_dir,
         tinyd_cfg.workers, tinyd_cfg.max_clients, (unsigned long long)tinyd_cfg.max_memory);
    log_ready();
    if (ready_fd >= 0) {
        detach_stdio();
        if (write(ready_fd, "R", 1) != 1)
            tlog(LOG_WARNING, "cannot tell the parent that tinyd is ready: %s",
                 tiny_errno_text(errno));
        close(ready_fd);
        ready_fd = -1;
    }
    rc = registry_serve() < 0 ? 1 : 0;
out:
    if (reg_up || sched_up)
        registry_shutdown(); /* stops the workers as well */
    if (reg_up)
        remove_run_file(TINY_PID_FILE);
    if (sig_up) {
        atomic_store(&quitting, true);
        pthread_kill(sig_thread, SIGUSR1);
        pthread_join(sig_thread, NULL);
    }
    if (rc == 0)
        tlog(LOG_INFO, "stopped");
    log_close();
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}
