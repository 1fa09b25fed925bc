/*
 * replay.c - runs a fuzz target's LLVMFuzzerTestOneInput over files without
 * libFuzzer, so that `make test` (and its sanitizer build) replays the
 * inputs that once failed (tests/fuzz/regress/) and the corpus files with
 * any compiler. A failing input aborts, which tap_run reports.
 *
 *   replay_TARGET FILE|DIR...
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned n_inputs;

static int replay_file(const char *path)
{
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    FILE *f = fopen(path, "rb");

    if (!f) {
        printf("# cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (n == cap) {
            unsigned char *p = realloc(buf, cap ? 2 * cap : 65536);
            if (!p) {
                fclose(f);
                free(buf);
                return -1;
            }
            buf = p;
            cap = cap ? 2 * cap : 65536;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    /* The size libFuzzer would use: make fuzz runs with -max_len=720000. */
    LLVMFuzzerTestOneInput(buf, n < 720000 ? n : 720000);
    free(buf);
    n_inputs++;
    return 0;
}

static int replay(const char *path)
{
    struct stat st;
    struct dirent *e;
    DIR *d;
    int r = 0;

    if (stat(path, &st) < 0) {
        printf("# cannot stat %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path);
    d = opendir(path);
    if (!d)
        return -1;
    while ((e = readdir(d))) {
        char sub[4096];
        if (e->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        if (replay(sub) < 0)
            r = -1;
    }
    closedir(d);
    return r;
}

int main(int argc, char **argv)
{
    int r = 0;

    for (int i = 1; i < argc; i++) {
        unsigned before = n_inputs;
        if (replay(argv[i]) < 0)
            r = -1;
        printf("%s %d - %u inputs of %s replayed without a failure\n", r < 0 ? "not ok" : "ok", i,
               n_inputs - before, argv[i]);
    }
    printf("1..%d\n", argc - 1);
    return r < 0;
}
