#!/bin/bash
# 74-tinyfs-pagecache.t - the decoded chunks tinyfs hands the kernel after
# random reads (tinyfs/pagecache.c): resident, right, and never older than a
# write or a truncate that follows them (tests/tinyfs_pagecache.c, each store
# held back 300 ms so that the writer comes while it is pending); then fsx
# beside random readers, checked against a plain file; then replies sent from
# tinyfs's cache while a writer rewrites it.
. "$(dirname "$0")/lib.sh"

need_build tinyfs tinyd tests/tinyfs_pagecache tests/tinyfs_fsx tests/tinyfs_tear

fs_init
start_tinyd_or_bail
ipc_snapshot

TINYFS_DEBUG_STORE_DELAY=300 mount_fs_or_bail
tap_run "stores held back" "$TINY_BUILD/tests/tinyfs_pagecache" "$MNT/pc"
umount_fs
ok $? "unmount with stores held back"

mount_fs_or_bail
tap_run "stores at once" "$TINY_BUILD/tests/tinyfs_pagecache" "$MNT/pc"

# Readers on read-only descriptors (their reads offer stores) against fsx,
# which writes, truncates, maps and reopens the file: every read of fsx,
# through the page cache, must match its reference. The readers use
# O_DIRECT: their reads still reach tinyfs and offer stores, but they put no
# pages of their own into the cache. With page-cache readers, a page fsx has
# just written whole could be read back old if the kernel dropped it while
# the write was on its way to tinyfs (tinyfs(1), BUGS): tinyfs avoids what
# drops pages then, but not memory pressure, and that is not what this test
# is about.
"$TINY_BUILD/tests/tinyfs_fsx" "$MNT/mix" "$TMP_DIR/mix.ref" 11 3000 4000000 2>"$TMP_DIR/fsx.err" &
fsx=$!
readers=()
for k in 1 2; do
    /usr/bin/python3 - "$MNT/mix" $k <<'PY' &
import mmap, os, random, sys, time
r = random.Random(int(sys.argv[2]))
buf = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT wants
end = time.time() + 4
while time.time() < end:
    try:
        fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
    except FileNotFoundError:
        continue
    for _ in range(200):
        os.preadv(fd, [buf], r.randrange(0, 4000000) & ~4095)
    os.close(fd)
PY
    readers+=($!)
done
wait $fsx
ok $? "fsx with random readers beside it: every read agrees" || diag "$(cat "$TMP_DIR/fsx.err")"
for p in "${readers[@]}"; do wait "$p"; done
cmp -s "$MNT/mix" "$TMP_DIR/mix.ref"
ok $? "the file equals the reference"

# Replies are sent from the cache entries themselves: a writer of a chunk
# waits until they are sent (tests/tinyfs_tear.c).
tap_run "replies against writes" "$TINY_BUILD/tests/tinyfs_tear" "$MNT/tear" 4
umount_fs
ok $? "unmount"

stop_tinyd_checked
ipc_clean_since
done_testing
