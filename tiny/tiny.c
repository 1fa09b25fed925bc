/*
 * tiny.c - the `tiny` command-line tool: gzip-like compression of files to
 * the snappy framing format (.sz), done by tinyd, never in-process.
 *
 * This file parses the command line and applies gzip's rules per file:
 * which files to skip, output names, refusing to overwrite without -f,
 * writing to a temporary name in the output's directory and renaming it
 * into place only when the stream is complete, copying mode, owner and
 * timestamps, removing the input unless -k or -c. The streaming itself is
 * in stream.c, `tiny stats` in stats.c. A signal during a file removes the
 * temporary output before the process dies.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "tiny_proto.h"

#define SUFFIX     ".sz"
#define SUFFIX_LEN 3
#define BIG_INPUT  (16u << 20) /* progress bar from this input size */

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_WARN = 2 };
enum { OPT_SLOTS = 256, OPT_SLOT_SIZE, OPT_JSON };

static struct {
    int decompress, test, to_stdout, keep, force, quiet, verbose, json;
    const char *dir;
    unsigned slots;
    size_t slot_size;
} opt;

static tiny_conn *conn;
static int conn_failed; /* tinyd is unreachable: stop at once */
static int status = EXIT_OK;

/* The temporary output being written, removed by the signal handler. */
static char tmp_path[PATH_MAX];
static volatile sig_atomic_t tmp_active;

static void note(int st)
{
    if (st == EXIT_ERR || (st == EXIT_WARN && status == EXIT_OK))
        status = st;
}

/* Prints a warning (unless -q) and returns the warning exit status. */
__attribute__((format(printf, 1, 2))) static int warn(const char *fmt, ...)
{
    va_list ap;

    if (!opt.quiet) {
        va_start(ap, fmt);
        fputs("tiny: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    return EXIT_WARN;
}

static void on_signal(int sig)
{
    if (tmp_active)
        unlink(tmp_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGXFSZ};

    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        struct sigaction sa = {0}, old;

        /* Stay ignored when started ignored (nohup, background shells). */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue;
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

static const char *conn_dir(char *buf, size_t size)
{
    if (opt.dir)
        return opt.dir;
    if (tiny_default_dir(buf, size) < 0)
        return "the default directory";
    return buf;
}

/* Connects to tinyd on first use, with the geometry asked for. */
static int need_conn(unsigned slots, size_t slot_size)
{
    struct tiny_options o = {.dir = opt.dir, .n_slots = slots, .slot_size = slot_size};
    char buf[PATH_MAX];
    int r;

    if (conn)
        return 0;
    r = tiny_connect(&conn, &o);
    if (r == -ECONNREFUSED)
        fprintf(stderr,
                "tiny: cannot connect to tinyd in %s: no tinyd is running (start it with "
                "'tinyd')\n",
                conn_dir(buf, sizeof(buf)));
    else if (r < 0)
        fprintf(stderr, "tiny: cannot connect to tinyd in %s: %s\n", conn_dir(buf, sizeof(buf)),
                tiny_strerror(r));
    if (r < 0) {
        conn = NULL;
        conn_failed = 1;
    }
    return r;
}

static int has_suffix(const char *name)
{
    size_t n = strlen(name);
    const char *base = strrchr(name, '/');

    base = base ? base + 1 : name;
    return n >= SUFFIX_LEN && !strcmp(name + n - SUFFIX_LEN, SUFFIX) && strcmp(base, SUFFIX);
}

static void verbose(const struct cli_stream *s, const char *name, const char *what, const char *out)
{
    uint64_t big = opt.decompress ? s->bytes_out : s->bytes_in;
    uint64_t small = opt.decompress ? s->bytes_in : s->bytes_out;
    double saved = big ? 100.0 * (1.0 - (double)small / (double)big) : 0.0;

    if (!opt.verbose)
        return;
    if (opt.test)
        fprintf(stderr, "%s:\t OK\n", name);
    else if (what)
        fprintf(stderr, "%s:\t%5.1f%% -- %s %s\n", name, saved, what, out);
    else
        fprintf(stderr, "%s:\t%5.1f%%\n", name, saved);
}

/* Runs one stream; on a dead connection forgets it so the next file reconnects. */
static int run(struct cli_stream *s)
{
    int r = need_conn(opt.slots, opt.slot_size);

    if (r < 0)
        return r;
    r = opt.decompress ? cli_decompress(conn, s) : cli_compress(conn, s);
    if (r == -ECONNRESET) {
        tiny_disconnect(conn);
        conn = NULL;
    }
    return r;
}

static int do_stdin(void)
{
    struct cli_stream s = {.in_fd = STDIN_FILENO,
                           .out_fd = opt.test ? -1 : STDOUT_FILENO,
                           .in_name = "stdin",
                           .out_name = "stdout"};
    struct stat st;

    if (opt.decompress && !opt.force && isatty(STDIN_FILENO)) {
        fprintf(stderr, "tiny: compressed data not read from a terminal; use -f to force "
                        "decompression\n");
        return EXIT_ERR;
    }
    if (fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode))
        s.in_size = (uint64_t)st.st_size;
    s.progress = !opt.quiet && s.in_size >= BIG_INPUT && isatty(STDERR_FILENO);
    if (run(&s) < 0)
        return EXIT_ERR;
    verbose(&s, "stdin", NULL, NULL);
    return EXIT_OK;
}

/* Makes the output look like the input: owner, then mode (chown clears
 * set-id bits), then times. Best effort, as gzip: a user cannot give away
 * a file. */
static void copy_meta(int fd, const struct stat *st, const char *out)
{
    struct timespec ts[2] = {st->st_atim, st->st_mtim};

    if (fchown(fd, st->st_uid, st->st_gid) < 0 && fchown(fd, (uid_t)-1, st->st_gid) < 0) {
        /* keep our own group */
    }
    if (fchmod(fd, st->st_mode & 07777) < 0 && !opt.quiet)
        fprintf(stderr, "tiny: %s: cannot set mode: %s\n", out, tiny_errno_text(errno));
    futimens(fd, ts);
}

/* Opens a temporary file next to @out. */
static int open_tmp(const char *out)
{
    char dir[PATH_MAX];
    int fd;

    if (snprintf(dir, sizeof(dir), "%s", out) >= (int)sizeof(dir) ||
        snprintf(tmp_path, sizeof(tmp_path), "%s/.tinyXXXXXX", dirname(dir)) >=
            (int)sizeof(tmp_path))
        return -ENAMETOOLONG;
    fd = mkostemp(tmp_path, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    tmp_active = 1;
    return fd;
}

static void drop_tmp(int fd)
{
    if (fd >= 0)
        close(fd);
    tmp_active = 0;
    unlink(tmp_path);
}

static int do_file(const char *arg)
{
    char name[PATH_MAX], out[PATH_MAX];
    struct cli_stream s = {0};
    struct stat st, ost;
    int in = -1, fd = -1, r, ret = EXIT_ERR;
    int to_file = !opt.to_stdout && !opt.test;

    if (snprintf(name, sizeof(name), "%s", arg) >= (int)sizeof(name)) {
        fprintf(stderr, "tiny: %s: %s\n", arg, tiny_errno_text(ENAMETOOLONG));
        return EXIT_ERR;
    }
    if (lstat(name, &st) < 0) {
        r = errno;
        /* gzip -d FILE finds FILE.gz too */
        if (r == ENOENT && opt.decompress && !has_suffix(name) &&
            strlen(name) + SUFFIX_LEN < sizeof(name)) {
            strcat(name, SUFFIX);
            if (lstat(name, &st) == 0)
                goto found;
        }
        fprintf(stderr, "tiny: %s: %s\n", arg, tiny_errno_text(r));
        return EXIT_ERR;
    }
found:
    if (S_ISDIR(st.st_mode))
        return warn("%s is a directory -- ignored", name);
    if (S_ISLNK(st.st_mode) && !opt.force && to_file)
        return warn("%s: is a symbolic link -- ignored", name);
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode) && to_file)
        return warn("%s is not a directory or a regular file -- ignored", name);
    if (!opt.decompress && has_suffix(name) && !opt.force && to_file)
        return warn("%s already has %s suffix -- unchanged", name, SUFFIX);
    if (opt.decompress && !has_suffix(name) && to_file)
        return warn("%s: unknown suffix -- ignored", name);
    if (S_ISREG(st.st_mode) && st.st_nlink > 1 && !opt.force && to_file)
        return warn("%s has %lu other link%s -- unchanged", name, (unsigned long)st.st_nlink - 1,
                    st.st_nlink > 2 ? "s" : "");

    in = open(name, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC |
                        (opt.force || !to_file ? 0 : O_NOFOLLOW));
    if (in < 0 || fstat(in, &st) < 0) {
        fprintf(stderr, "tiny: %s: %s\n", name, tiny_errno_text(errno));
        goto out;
    }
    fcntl(in, F_SETFL, fcntl(in, F_GETFL) & ~O_NONBLOCK);
    if (S_ISDIR(st.st_mode)) {
        ret = warn("%s is a directory -- ignored", name);
        goto out;
    }
    if (!S_ISREG(st.st_mode) && to_file) {
        ret = warn("%s is not a directory or a regular file -- ignored", name);
        goto out;
    }

    s.in_fd = in;
    s.in_name = name;
    s.in_size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    s.progress = !opt.quiet && s.in_size >= BIG_INPUT && isatty(STDERR_FILENO);
    s.out_fd = opt.test ? -1 : STDOUT_FILENO;
    s.out_name = "stdout";
    if (to_file) {
        if (opt.decompress)
            snprintf(out, sizeof(out), "%.*s", (int)(strlen(name) - SUFFIX_LEN), name);
        else if (snprintf(out, sizeof(out), "%s%s", name, SUFFIX) >= (int)sizeof(out)) {
            fprintf(stderr, "tiny: %s%s: %s\n", name, SUFFIX, tiny_errno_text(ENAMETOOLONG));
            goto out;
        }
        if (lstat(out, &ost) == 0 && !opt.force) {
            ret = warn("%s already exists; not overwritten", out);
            goto out;
        }
        /* No temporary file when tinyd is not there. */
        if (need_conn(opt.slots, opt.slot_size) < 0)
            goto out;
        fd = open_tmp(out);
        if (fd < 0) {
            fprintf(stderr, "tiny: %s: cannot create a temporary file: %s\n", out,
                    tiny_errno_text(fd));
            goto out;
        }
        s.out_fd = fd;
        s.out_name = out;
    }

    if (run(&s) < 0)
        goto out;
    if (!to_file) {
        verbose(&s, name, NULL, NULL);
        ret = EXIT_OK;
        goto out;
    }
    copy_meta(fd, &st, out);
    r = close(fd);
    fd = -1;
    if (r < 0) {
        fprintf(stderr, "tiny: %s: write error: %s\n", out, tiny_errno_text(errno));
        goto out;
    }
    r = opt.force ? rename(tmp_path, out)
                  : renameat2(AT_FDCWD, tmp_path, AT_FDCWD, out, RENAME_NOREPLACE);
    if (r < 0 && errno == EINVAL && !opt.force) {
        /* No RENAME_NOREPLACE on this filesystem: link() refuses to replace too. */
        r = link(tmp_path, out);
        if (r == 0)
            unlink(tmp_path);
    }
    if (r < 0) {
        r = errno;
        drop_tmp(-1);
        if (r == EEXIST)
            ret = warn("%s already exists; not overwritten", out);
        else
            fprintf(stderr, "tiny: %s: %s\n", out, tiny_errno_text(r));
        goto out;
    }
    tmp_active = 0;
    ret = EXIT_OK;
    if (opt.keep) {
        verbose(&s, name, "created", out);
    } else if (unlink(name) < 0) {
        fprintf(stderr, "tiny: %s: cannot remove: %s\n", name, tiny_errno_text(errno));
        ret = EXIT_ERR;
    } else {
        verbose(&s, name, "replaced with", out);
    }
out:
    if (tmp_active)
        drop_tmp(fd);
    else if (fd >= 0)
        close(fd);
    if (in >= 0)
        close(in);
    return ret;
}

static void usage(FILE *f)
{
    fputs("usage: tiny [OPTION]... [FILE]...\n"
          "       tiny compress [OPTION]... [FILE]...\n"
          "       tiny decompress [OPTION]... [FILE.sz]...\n"
          "       tiny stats [--json] [-D DIR]\n"
          "       tiny fsck [--repair] [-q] [-v] [-D DIR] STORE...\n"
          "       tiny du [-s] PATH...\n"
          "Compress or decompress FILEs in the snappy framing format (.sz) through tinyd.\n"
          "With no FILE, or when FILE is -, read standard input.\n"
          "\n"
          "  -c, --stdout        write on standard output, keep the input files\n"
          "  -d, --decompress    decompress (as 'tiny decompress')\n"
          "  -f, --force         overwrite existing outputs, compress links and .sz files,\n"
          "                      write compressed data to a terminal\n"
          "  -k, --keep          keep (do not delete) the input files\n"
          "  -t, --test          check the integrity of compressed files\n"
          "  -q, --quiet         suppress all warnings\n"
          "  -v, --verbose       print the name and compression ratio of each file\n"
          "  -D, --dir=DIR       tinyd's run directory (default: $TINYD_DIR,\n"
          "                      else $XDG_RUNTIME_DIR/tinyd, else /tmp/tinyd-UID)\n"
          "      --slots=N       shared-memory slots to ask tinyd for (1-128)\n"
          "      --slot-size=SIZE  bytes per slot, K and M suffixes allowed (4K-16M)\n"
          "      --json          'tiny stats': print JSON\n"
          "  -h, --help          print this help and exit\n"
          "  -V, --version       print the version and exit\n"
          "\n"
          "Exit status: 0 success, 1 error, 2 warning.\n",
          f);
}

static int parse_size(const char *s, unsigned long long *v)
{
    char *end;

    errno = 0;
    *v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return -EINVAL;
    if (*end == 'k' || *end == 'K')
        *v <<= 10, end++;
    else if (*end == 'm' || *end == 'M')
        *v <<= 20, end++;
    if (*end == 'i' && end[1] == 'B')
        end += 2;
    return *end ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
    static const struct option longs[] = {
        {"stdout", no_argument, NULL, 'c'},
        {"to-stdout", no_argument, NULL, 'c'},
        {"decompress", no_argument, NULL, 'd'},
        {"uncompress", no_argument, NULL, 'd'},
        {"force", no_argument, NULL, 'f'},
        {"keep", no_argument, NULL, 'k'},
        {"test", no_argument, NULL, 't'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"dir", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"slots", required_argument, NULL, OPT_SLOTS},
        {"slot-size", required_argument, NULL, OPT_SLOT_SIZE},
        {"json", no_argument, NULL, OPT_JSON},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = NULL;
    unsigned long long v;
    int c, r;

    /* The command is the first non-option argument; find it without
     * permuting, then parse everything else gzip-style. */
    argv[0] = "tiny"; /* getopt's messages */
    opterr = 0;
    while (getopt_long(argc, argv, "+cdfktqvD:hV", longs, NULL) != -1)
        ;
    if (optind < argc && strcmp(argv[optind - 1], "--")) {
        static const char *const cmds[] = {"compress", "decompress", "stats", "du", "fsck"};
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
            if (!strcmp(argv[optind], cmds[i]))
                cmd = cmds[i];
    }
    if (cmd) {
        memmove(&argv[optind], &argv[optind + 1], (size_t)(argc - optind) * sizeof(*argv));
        argc--;
        opt.decompress = !strcmp(cmd, "decompress");
        /* commands with options of their own */
        if (!strcmp(cmd, "fsck"))
            return cli_fsck(argc, argv);
        if (!strcmp(cmd, "du"))
            return cli_du(argc, argv);
    }
    opterr = 1;
    optind = 0;
    while ((c = getopt_long(argc, argv, "cdfktqvD:hV", longs, NULL)) != -1) {
        switch (c) {
        case 'c':
            opt.to_stdout = 1;
            break;
        case 'd':
            if (cmd && !strcmp(cmd, "compress")) {
                fprintf(stderr, "tiny: -d contradicts 'compress'\n");
                return EXIT_ERR;
            }
            opt.decompress = 1;
            break;
        case 'f':
            opt.force = 1;
            break;
        case 'k':
            opt.keep = 1;
            break;
        case 't':
            opt.test = 1;
            opt.decompress = 1;
            break;
        case 'q':
            opt.quiet = 1;
            opt.verbose = 0;
            break;
        case 'v':
            opt.verbose = 1;
            opt.quiet = 0;
            break;
        case 'D':
            opt.dir = optarg;
            break;
        case OPT_SLOTS:
            if (parse_size(optarg, &v) < 0 || v < 1 || v > TINY_SLOTS_MAX) {
                fprintf(stderr, "tiny: invalid slot count '%s': must be 1 to %u\n", optarg,
                        TINY_SLOTS_MAX);
                return EXIT_ERR;
            }
            opt.slots = (unsigned)v;
            break;
        case OPT_SLOT_SIZE:
            if (parse_size(optarg, &v) < 0 || v < TINY_SLOT_SIZE_MIN || v > TINY_SLOT_SIZE_MAX) {
                fprintf(stderr, "tiny: invalid slot size '%s': must be 4K to 16M\n", optarg);
                return EXIT_ERR;
            }
            opt.slot_size = (size_t)v;
            break;
        case OPT_JSON:
            opt.json = 1;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case 'V':
            printf("tiny %d.%d (tinyd protocol %d)\n", TINY_VERSION_MAJOR, TINY_VERSION_MINOR,
                   TINY_PROTO_VERSION);
            return EXIT_OK;
        default:
            fprintf(stderr, "try 'tiny --help' for more information\n");
            return EXIT_ERR;
        }
    }
    if (opt.json && (!cmd || strcmp(cmd, "stats"))) {
        fprintf(stderr, "tiny: --json applies to 'tiny stats' only\n");
        return EXIT_ERR;
    }
    if (cmd && !strcmp(cmd, "stats")) {
        if (optind < argc) {
            fprintf(stderr, "tiny: stats takes no file arguments\n");
            return EXIT_ERR;
        }
        /* One small slot is enough for the answer, unless told otherwise. */
        r = need_conn(opt.slots ? opt.slots : 1,
                      opt.slot_size ? opt.slot_size : TINY_SLOT_SIZE_MIN);
        if (r == 0)
            r = cli_stats(conn, opt.json);
        tiny_disconnect(conn);
        return r < 0 ? EXIT_ERR : EXIT_OK;
    }

    if (!opt.decompress && !opt.force && isatty(STDOUT_FILENO) &&
        (opt.to_stdout || optind == argc)) {
        fprintf(stderr, "tiny: compressed data not written to a terminal; use -f to force "
                        "compression\n");
        return EXIT_ERR;
    }
    catch_signals();
    if (optind == argc)
        note(do_stdin());
    for (int i = optind; i < argc; i++) {
        note(strcmp(argv[i], "-") ? do_file(argv[i]) : do_stdin());
        if (conn_failed)
            break; /* every other file would fail the same way */
    }
    tiny_disconnect(conn);
    if (!opt.test && (opt.to_stdout || optind == argc) && close(STDOUT_FILENO) < 0 &&
        errno != EBADF) {
        fprintf(stderr, "tiny: stdout: write error: %s\n", tiny_errno_text(errno));
        status = EXIT_ERR;
    }
    return status;
}
