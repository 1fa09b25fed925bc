#!/bin/bash
# 56-fuzz-regress.t - the fuzz targets of tests/fuzz/ (docs/fuzzing.md) run
# without libFuzzer over the inputs that once made them fail
# (tests/fuzz/regress/TARGET/), over their seeds (tests/fuzz/mkseeds.c: among
# them raw streams whose copies reach into the unit before) and over the
# corpus of tests/data, malformed snappy files included. Under
# make SANITIZE=... this is the sanitizer check of each fix.
. "$(dirname "$0")/lib.sh"
need_build tests/replay_codec tests/replay_request tests/replay_tinyfs_format \
    tests/replay_rawsplit tests/mkseeds
# UBSan only reports by default: a replayed input must fail the test.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
R=$TESTS_DIR/fuzz/regress
"$TINY_BUILD/tests/mkseeds" "$DATA_DIR" "$TMP_DIR/seeds" >/dev/null
ok $? "mkseeds writes the seeds of every target"
for t in codec request tinyfs_format rawsplit; do
    args=()
    [ -d "$R/$t" ] && args+=("$R/$t")
    tap_run "$t" "$TINY_BUILD/tests/replay_$t" "${args[@]}" "$TMP_DIR/seeds/$t" "$DATA_DIR"
done
done_testing
