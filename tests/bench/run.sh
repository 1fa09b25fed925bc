#!/bin/bash
# tests/bench/run.sh - `make bench`: starts a private tinyd with 2 workers,
# runs $TINY_BUILD/bench/service (tinyd against in-process snappy, side by
# side in one run), prints the table and writes it with a description of the
# machine to docs/benchmarks.md. Not part of `make test`.
#   BENCH_MIB (default 256)   size of the generated mixed input
#   BENCH_REPS (default 5)    repetitions; medians are reported
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

"$TINY_BUILD/tinyd" -d "$run" -w 2 || { echo "bench: tinyd did not start" >&2; exit 1; }
pid=$(cat "$run/tinyd.pid")
export TINYD_DIR=$run

table=$("$TINY_BUILD/bench/service" tests/data "$MIB" "$REPS") || {
    echo "bench: service benchmark failed" >&2
    exit 1
}

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
snappy=$(dpkg-query -W -f='${Version}' libsnappy1v5 2>/dev/null || echo unknown)
{
    echo "# Benchmarks"
    echo
    echo "Produced by \`make bench\` (tests/bench/run.sh, tests/bench/service.c) on $(date -u +%Y-%m-%d)."
    echo
    echo "Machine: ${cpu:-unknown CPU}, $(nproc) online cores, $(free -g | awk '/^Mem:/ {print $2}') GiB RAM,"
    echo "Linux $(uname -r), snappy $snappy, gcc $(cc -dumpversion). tinyd runs with 2 workers"
    echo "(\`tinyd -w 2\`); the clients use 8 slots of 1 MiB (64 KiB for the 4 KiB round trips)."
    echo "The machine was shared with other work while this ran, so treat small differences as noise."
    echo
    echo "Method: each figure is the median of $REPS repetitions ($((REPS * 5)) for the short corpus runs). Throughput is uncompressed bytes per"
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
    cat tests/bench/analysis.md
} >"$OUT"
echo "$table"
echo
echo "written to $OUT"
