#!/bin/bash
# tests/bench/run.sh - `make bench`: starts a private tinyd with 2 workers,
# runs $TINY_BUILD/bench/service (tinyd against in-process snappy, side by
# side in one run) and $TINY_BUILD/bench/svcplot (the service sweeps), then
# tests/bench/fs.sh (the filesystems, with its own tinyd), draws the plots
# into docs/bench/*.png (tests/bench/plot.sh, gnuplot) and writes everything
# with a description of the machine to docs/benchmarks.md, followed by the
# hand-written tests/bench/analysis.md. Not part of `make test`. About 10
# minutes on the 2-core VM; progress on stderr.
#   BENCH_MIB (default 256)   size of the generated mixed input of `service`
#   BENCH_REPS (default 5)    repetitions; medians are reported
#   SVC_REPS, SVC_SECS        see tests/bench/svcplot.c
#   BENCH_FS_MIB, BENCH_RAND_MIB, BENCH_RAND_N, BENCH_TREE, BENCH_FS_DIR,
#   BENCH_PERF, BENCH_ROUNDS, BENCH_WORKERS, BENCH_BIG_MIB  see tests/bench/fs.sh
#   BENCH_ONLY=service|fs     run one half (the document then lacks the other)
set -u
cd "$(dirname "$0")/../.." || exit 1
: "${TINY_BUILD:?TINY_BUILD must name the build directory}"
MIB=${BENCH_MIB:-256}
REPS=${BENCH_REPS:-5}
OUT=docs/benchmarks.md

run=$(mktemp -d "${TMPDIR:-/tmp}/tinybench.XXXXXX") || exit 1
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# tinyd's log outlives the run, for a look after a failure
export BENCH_TINYD_LOG=$TINY_BUILD/bench-tinyd.log
: >"$BENCH_TINYD_LOG"
"$TINY_BUILD/tinyd" -d "$run" -w 2 -l "$BENCH_TINYD_LOG" ||
    { echo "bench: tinyd did not start" >&2; exit 1; }
pid=$(cat "$run/tinyd.pid")
export TINYD_DIR=$run

ONLY=${BENCH_ONLY:-}
res=$run/results
mkdir -p "$res"
table="(not run: BENCH_ONLY=$ONLY)" sweeps=
if [ "$ONLY" != fs ]; then
    echo "bench: service against in-process snappy" >&2
    table=$("$TINY_BUILD/bench/service" tests/data "$MIB" "$REPS") || {
        echo "bench: service benchmark failed (tinyd's log: $BENCH_TINYD_LOG)" >&2
        exit 1
    }
    echo "bench: service sweeps" >&2
    sweeps=$("$TINY_BUILD/bench/svcplot" "$res") || {
        echo "bench: service sweeps failed (tinyd's log: $BENCH_TINYD_LOG)" >&2
        exit 1
    }
fi
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
pid=
unset TINYD_DIR
fsmd="(not run)"
if [ "$ONLY" != service ]; then
    echo "bench: filesystems" >&2
    if [ "$(id -u)" != 0 ]; then
        fsmd="Skipped: the filesystem benchmark needs root (drop_caches, loop devices, btrfs)."
    elif tests/bench/fs.sh "$res"; then
        fsmd=$(cat "$res/fs.md")
    else
        echo "bench: filesystem benchmark failed (tinyd's log: $BENCH_TINYD_LOG)" >&2
        exit 1
    fi
fi
rm -f docs/bench/*.png
tests/bench/plot.sh "$res" docs/bench >&2
img() { [ -f "docs/bench/$1.png" ] && echo "![$2](bench/$1.png)"; }
perfsec() {
    [ -s "$res/perf-$1.txt" ] || return 0
    echo "\`perf record -e cpu-clock -a -g\` over the whole machine while tinyfs $2 the mixed file"
    echo "(\`perf report --no-children\`, percentages of all samples, both cores, idle included):"
    echo
    echo '```'
    cat "$res/perf-$1.txt"
    echo '```'
}

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
snappy=$(dpkg-query -W -f='${Version}' libsnappy1v5 2>/dev/null || echo unknown)
{
    echo "# Benchmarks"
    echo
    echo "Produced by \`make bench\` (tests/bench/run.sh, service.c, svcplot.c, fs.sh, plot.sh) on $(date -u +%Y-%m-%d)."
    echo
    echo "Machine: ${cpu:-unknown CPU}, $(nproc) online cores, $(free -g | awk '/^Mem:/ {print $2}') GiB RAM,"
    echo "Linux $(uname -r), snappy $snappy, gcc $(cc -dumpversion). tinyd runs with 2 workers"
    echo "(\`tinyd -w 2\`); the clients use 8 slots of 1 MiB (64 KiB for the 4 KiB round trips)."
    echo "The machine was shared with other work while this ran, so treat small differences as noise."
    echo
    echo "Method: each figure is the median of $REPS repetitions ($((REPS * 2)) for the single-client rows of the mixed input, $((REPS * 5)) for"
    echo "the short corpus runs, where in-process and tinyd runs alternate). Throughput is uncompressed bytes per"
    echo "second (MB = 10^6 bytes). \"In-process snappy\" is snappy-c called in the measuring thread on"
    echo "the same data: whole buffers for the single-client rows, the same 16 MiB pieces one after"
    echo "the other for the parallel rows. The two client processes each time their own work, from"
    echo "the common start to their last reply (their disconnect and exit are not timed). The machine"
    echo "check row runs in-process snappy in two threads, without tinyd: it is the ceiling of the"
    echo "parallel rows on this machine during this run (2.0x on two idle cores; near 1.0x means other"
    echo "work held the second core, and every parallel figure is then meaningless)."
    echo "The mixed input is ${MIB} MiB of generated text, binary"
    echo "tables, random bytes, runs and near/far repeats (tests/util.h). The 4 KiB rows compare"
    echo "tinyd's round trip with a budget: snappy's in-process time for the same 4 KiB plus 1.2 x the"
    echo "round trip of one protocol-sized message between two processes over System V queues,"
    echo "measured in the same run; there the ratio is tinyd / budget, so lower is better."
    echo
    echo "$table"
    echo
    echo "## Service sweeps"
    echo
    echo "tests/bench/svcplot.c, same tinyd, same run: every client is a separate process with its"
    echo "own connection; the input is generated mixed data (tests/util.h)."
    echo "$sweeps"
    echo
    img latency-size "COMPRESS latency against input size"
    img latency-slots "latency against slot size"
    img throughput-clients "throughput against clients"
    img fairness "4 KiB latency under load"
    echo
    echo "## Filesystems"
    echo
    echo "tests/bench/fs.sh, one run, every filesystem on the same data one after the other, then"
    echo "rounds of the phases the targets name, tinyfs and btrfs-lzo alternating."
    echo
    echo "$fsmd"
    echo
    img fs-speed "filesystem throughput"
    img fs-tree "small-file tree"
    echo
    echo "## Where the time goes: perf profiles of tinyfs"
    echo
    perfsec write writes
    echo
    perfsec read "reads (cold)"
    echo
    cat tests/bench/analysis.md
} >"$OUT"
echo "$table"
echo "$sweeps"
echo "$fsmd"
echo
echo "written to $OUT"
