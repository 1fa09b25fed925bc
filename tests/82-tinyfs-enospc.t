#!/bin/bash
# 82-tinyfs-enospc.t - a tinyfs store on a full disk (an 8 MiB tmpfs):
# writes fail with ENOSPC, files already there stay readable and intact, an
# in-place rewrite that does not fit changes nothing it cannot finish, every
# stored file stays valid (tiny fsck), and all works again once space is freed.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "mounting a small tmpfs needs root"
need_build tinyfs tinyd tiny

SMALL=$TMP_DIR/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=8m tinytest "$SMALL" || skip_all "cannot mount a tmpfs"
cleanup_add "umount -l '$SMALL'"
fs_init "$SMALL/store"

start_tinyd_or_bail
ipc_snapshot
mount_fs
ok $? "tinyfs mounts a store on an 8 MiB tmpfs"

for i in 1 2 3 4; do cat "$DATA_DIR/alice29.txt" "$DATA_DIR/lcet10.txt"; done >"$TMP_DIR/text"
head -c 1048576 /dev/urandom >"$TMP_DIR/rand1"
head -c 1048576 /dev/urandom >"$TMP_DIR/rand2"
head -c 16777216 /dev/urandom >"$TMP_DIR/fill"
cp "$TMP_DIR/text" "$MNT/text" && cp "$TMP_DIR/rand1" "$MNT/rand1"
ok $? "two files written ($(stat -c %s "$TMP_DIR/text") bytes of text, 1 MiB random)"

# --- fill the disk --------------------------------------------------------------------
cp "$TMP_DIR/fill" "$MNT/fill" 2>"$TMP_DIR/err"
rc=$?
[ $rc -ne 0 ] && grep -q "No space left on device" "$TMP_DIR/err"
ok $? "writing 16 MiB fails with ENOSPC ($(head -1 "$TMP_DIR/err"))"
diag "$(df -k "$SMALL" | tail -1)"
cmp -s "$MNT/text" "$TMP_DIR/text" && cmp -s "$MNT/rand1" "$TMP_DIR/rand1"
ok $? "the files already there read back identical"
n=$(stat -c %s "$MNT/fill")
cmp -s -n "$n" "$MNT/fill" "$TMP_DIR/fill"
ok $? "the file that did not fit holds a readable prefix of its data ($n bytes)"

# an in-place rewrite of compressible chunks with random data needs more space
dd if="$TMP_DIR/rand2" of="$MNT/text" bs=65536 seek=2 count=8 conv=notrunc status=none 2>"$TMP_DIR/err"
rc=$?
diag "in-place rewrite of 8 chunks on the full disk: exit $rc $(head -1 "$TMP_DIR/err")"
bad=0
for i in $(seq 0 $(($(stat -c %s "$TMP_DIR/text") / 65536))); do
    got=$(dd if="$MNT/text" bs=65536 skip=$i count=1 status=none 2>/dev/null | sha1sum | cut -c1-40) || bad=1
    old=$(dd if="$TMP_DIR/text" bs=65536 skip=$i count=1 status=none | sha1sum | cut -c1-40)
    if [ "$i" -ge 2 ] && [ "$i" -lt 10 ]; then
        new=$(dd if="$TMP_DIR/rand2" bs=65536 skip=$((i - 2)) count=1 status=none | sha1sum | cut -c1-40)
        [ "$got" = "$old" ] || [ "$got" = "$new" ] || { bad=1; diag "chunk $i is neither old nor new"; }
    else
        [ "$got" = "$old" ] || { bad=1; diag "chunk $i outside the rewrite changed"; }
    fi
done
ok $bad "every chunk of the rewritten file reads back, old or new, nothing else changed"
# tinyfs has the kernel drop the pages of a file whose change failed (they
# are kept across opens, and may hold bytes that were not stored), from a
# thread of its own: give it a moment, then keep what the mount shows now
sleep 0.3
cp "$MNT/text" "$TMP_DIR/text.seen" && cp "$MNT/fill" "$TMP_DIR/fill.seen"
ok $? "the rewritten file and the one that did not fit read back whole"
: >"$MNT/small-new" 2>/dev/null
echo "more" >>"$MNT/small-new" 2>/dev/null
diag "a small new file on the full disk: $(cat "$MNT/small-new" 2>&1 | head -1)"
fusermount3 -u "$MNT" && wait "$FS_PID"
ok $? "unmount on the full disk"
"$TINY_BUILD/tiny" fsck "$STORE" >"$TMP_DIR/fsck.out" 2>&1
ok $? "tiny fsck: no stored file damaged ($(tail -1 "$TMP_DIR/fsck.out"))" || diag "$(cat "$TMP_DIR/fsck.out")"

# --- free space ---------------------------------------------------------------------------
mount_fs
ok $? "mount again"
cmp -s "$MNT/text" "$TMP_DIR/text.seen" && cmp -s "$MNT/fill" "$TMP_DIR/fill.seen"
ok $? "what the mount showed after the failed writes is what is stored"
rm "$MNT/fill"
ok $? "the big file removed"
cp "$TMP_DIR/rand2" "$MNT/rand2" && cmp -s "$MNT/rand2" "$TMP_DIR/rand2"
ok $? "a new file of 1 MiB is written and reads back identical"
dd if="$TMP_DIR/rand2" of="$MNT/text" bs=65536 seek=2 count=8 conv=notrunc status=none &&
    { head -c 131072 "$TMP_DIR/text"; head -c 524288 "$TMP_DIR/rand2"; tail -c +655361 "$TMP_DIR/text"; } |
    cmp -s - "$MNT/text"
ok $? "the in-place rewrite now succeeds"
cmp -s "$MNT/rand1" "$TMP_DIR/rand1"
ok $? "the older files are intact"
fusermount3 -u "$MNT" && wait "$FS_PID"
ok $? "unmount"
"$TINY_BUILD/tiny" fsck -q "$STORE"
ok $? "tiny fsck: clean"

stop_tinyd_checked
ipc_clean_since
done_testing
