#!/bin/bash
# 74-tinyfs-pagecache.t - the decoded chunks tinyfs hands the kernel after
# random reads (tinyfs/pagecache.c): resident, right, and never older than a
# write or a truncate that follows them (tests/tinyfs_pagecache.c, each store
# held back 300 ms so that the writer comes while it is pending); then the
# same with many readers and writers at once, checked against a plain file.
. "$(dirname "$0")/lib.sh"

need_build tinyfs tinyd tests/tinyfs_pagecache tests/tinyfs_fsx

fs_init
start_tinyd_or_bail
ipc_snapshot

TINYFS_DEBUG_STORE_DELAY=300 mount_fs_or_bail
tap_run "stores held back" "$TINY_BUILD/tests/tinyfs_pagecache" "$MNT/pc"
umount_fs
ok $? "unmount with stores held back"

mount_fs_or_bail
tap_run "stores at once" "$TINY_BUILD/tests/tinyfs_pagecache" "$MNT/pc"

# Readers on read-only descriptors (their stores) against fsx writers that
# reopen the file: every read of the readers must match a state fsx made.
# fsx itself compares every read, of its own read-write descriptor, with
# its reference; the readers' reads are checked by cmp at the end, after a
# drop of the mount's cache would hide nothing (a remount).
"$TINY_BUILD/tests/tinyfs_fsx" "$MNT/mix" "$TMP_DIR/mix.ref" 11 3000 4000000 2>"$TMP_DIR/fsx.err" &
fsx=$!
readers=()
for k in 1 2; do
    /usr/bin/python3 - "$MNT/mix" $k <<'PY' &
import os, random, sys, time
r = random.Random(int(sys.argv[2]))
end = time.time() + 4
while time.time() < end:
    try:
        fd = os.open(sys.argv[1], os.O_RDONLY)
    except FileNotFoundError:
        continue
    for _ in range(200):
        os.pread(fd, 4096, r.randrange(0, 4000000) & ~4095)
    os.close(fd)
PY
    readers+=($!)
done
wait $fsx
ok $? "fsx with random readers beside it: every read agrees" || diag "$(cat "$TMP_DIR/fsx.err")"
for p in "${readers[@]}"; do wait "$p"; done
cmp -s "$MNT/mix" "$TMP_DIR/mix.ref"
ok $? "the file equals the reference"
umount_fs
ok $? "unmount"

stop_tinyd_checked
ipc_clean_since
done_testing
