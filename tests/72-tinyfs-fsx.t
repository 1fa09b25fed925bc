#!/bin/bash
# 72-tinyfs-fsx.t - random operations (writes at random offsets and past EOF,
# truncates, reads, mmap writes and reads, fsync, reopen, O_APPEND) on files
# in a tinyfs mount, checked against the same operations on plain files;
# several seeds, two exercisers at a time on different files, then a
# remount and a final comparison, and python3-snappy decoding the results;
# then two more seeds and a copy with the kernel's write-back cache on.
. "$(dirname "$0")/lib.sh"

need_build tinyfs tinyd tests/tinyfs_fsx

fs_init
REF=$TMP_DIR/ref
OPS=${TINYFS_FSX_OPS:-6000}
SEEDS="1 2 3 4 5 6"
mkdir -p "$REF"

start_tinyd_or_bail
ipc_snapshot
mount_fs
ok $? "tinyfs mounts"

set -- $SEEDS
while [ $# -gt 0 ]; do
    a=$1 b=${2:-}
    "$TINY_BUILD/tests/tinyfs_fsx" "$MNT/fsx$a" "$REF/fsx$a" "$a" "$OPS" 2>"$TMP_DIR/err$a" &
    pa=$!
    if [ -n "$b" ]; then
        "$TINY_BUILD/tests/tinyfs_fsx" "$MNT/fsx$b" "$REF/fsx$b" "$b" "$OPS" 6000000 2>"$TMP_DIR/err$b" &
        pb=$!
    fi
    wait $pa
    ok $? "seed $a: $OPS random operations agree with a plain file" || diag "$(cat "$TMP_DIR/err$a")"
    if [ -n "$b" ]; then
        wait $pb
        ok $? "seed $b: $OPS random operations (in parallel) agree" || diag "$(cat "$TMP_DIR/err$b")"
        shift
    fi
    shift
done

fusermount3 -u "$MNT" && wait "$FS_PID"
ok $? "unmount"
mount_fs
ok $? "mount again"
bad=0
for s in $SEEDS; do
    cmp -s "$MNT/fsx$s" "$REF/fsx$s" || { bad=1; diag "fsx$s differs after remount"; }
done
ok $bad "every file is identical after a remount"

if /usr/bin/python3 -c 'import snappy' 2>/dev/null; then
    /usr/bin/python3 - "$STORE" "$REF" $SEEDS <<'PY'
import sys, snappy_compat, snappy.snappy as s
bad = 0
for seed in sys.argv[3:]:
    d = s.StreamDecompressor()
    out = d.decompress(open("%s/fsx%s" % (sys.argv[1], seed), 'rb').read())
    d.flush()
    if out != open("%s/fsx%s" % (sys.argv[2], seed), 'rb').read():
        print("# fsx%s: python3-snappy output differs" % seed)
        bad = 1
sys.exit(bad)
PY
    ok $? "python3-snappy decodes every exercised file to the reference"
else
    skip "python3-snappy is not installed"
fi

fusermount3 -u "$MNT" && wait "$FS_PID"
ok $? "unmount"

# The kernel's write-back cache (tinyfs(1)): writes arrive late, several at a
# time and out of order, and reads may come through a write-only handle.
mount_fs -o writeback_cache
ok $? "mount with -o writeback_cache"
"$TINY_BUILD/tests/tinyfs_fsx" "$MNT/wb7" "$REF/wb7" 7 "$OPS" 2>"$TMP_DIR/err7" &
pa=$!
"$TINY_BUILD/tests/tinyfs_fsx" "$MNT/wb8" "$REF/wb8" 8 "$OPS" 6000000 2>"$TMP_DIR/err8" &
pb=$!
wait $pa
ok $? "writeback cache, seed 7: $OPS random operations agree" || diag "$(cat "$TMP_DIR/err7")"
wait $pb
ok $? "writeback cache, seed 8: $OPS random operations (in parallel) agree" ||
    diag "$(cat "$TMP_DIR/err8")"
for _ in 1 2 3 4 5 6 7 8; do cat tests/data/*; done >"$REF/wbseq"
cp "$REF/wbseq" "$MNT/wbseq" && cmp -s "$REF/wbseq" "$MNT/wbseq"
ok $? "writeback cache: a copied file of $(($(stat -c %s "$REF/wbseq") >> 20)) MiB reads back identical"
fusermount3 -u "$MNT" && wait "$FS_PID"
ok $? "unmount"
mount_fs
ok $? "mount again without the write-back cache"
bad=0
for f in wb7 wb8 wbseq; do
    cmp -s "$MNT/$f" "$REF/$f" || { bad=1; diag "$f differs after remount"; }
done
ok $bad "every file written through the write-back cache is identical after a remount"
fusermount3 -u "$MNT" && wait "$FS_PID"
ok $? "unmount"
stop_tinyd_checked
ipc_clean_since
done_testing
