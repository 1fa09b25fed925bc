#!/bin/bash
# tests/fuzz/run.sh BUILD_DIR SECONDS MKSEEDS - runs every fuzz target of
# BUILD_DIR: first over its regression inputs (tests/fuzz/regress/TARGET/,
# crashes found and fixed), then for SECONDS seconds from the seed corpus
# written by MKSEEDS (the program make test uses too) into BUILD_DIR/seeds
# plus the corpus kept in BUILD_DIR/corpus/TARGET. Crashing inputs land in
# BUILD_DIR/artifacts/. Exits non-zero if any target fails.
set -u
B=$1
T=${2:-20}
MKSEEDS=$3
HERE=$(cd "$(dirname "$0")" && pwd)
"$MKSEEDS" "$HERE/../data" "$B/seeds" || exit 1
mkdir -p "$B/artifacts"
rc=0
for t in codec request tinyfs_format rawsplit; do
    bin=$B/fuzz_$t
    mkdir -p "$B/corpus/$t"
    if [ -d "$HERE/regress/$t" ] && [ -n "$(ls -A "$HERE/regress/$t")" ]; then
        if "$bin" "$HERE/regress/$t"/* >"$B/$t.regress.log" 2>&1; then
            echo "fuzz_$t: $(ls "$HERE/regress/$t" | wc -l) regression inputs pass"
        else
            echo "fuzz_$t: a regression input fails (see $B/$t.regress.log)"
            tail -30 "$B/$t.regress.log"
            rc=1
            continue
        fi
    fi
    if "$bin" -max_total_time="$T" -max_len=720000 -timeout=10 -rss_limit_mb=1024 \
        -print_final_stats=1 -artifact_prefix="$B/artifacts/$t-" \
        "$B/corpus/$t" "$B/seeds/$t" >"$B/$t.log" 2>&1; then
        echo "fuzz_$t: ${T}s, $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$B/$t.log" |
            grep -o '[0-9]*$') runs, corpus $(ls "$B/corpus/$t" | wc -l) inputs, no failure"
    else
        echo "fuzz_$t: FAILED (log $B/$t.log, inputs in $B/artifacts/)"
        grep -A25 -m1 'ERROR\|invariant failed\|runtime error' "$B/$t.log"
        rc=1
    fi
done
exit $rc
