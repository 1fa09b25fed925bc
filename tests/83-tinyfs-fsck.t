#!/bin/bash
# 83-tinyfs-fsck.t - damage in a tinyfs store and `tiny fsck`, `tiny du`:
# flipped data bytes give EIO on that chunk only (the rest reads back) and
# fsck names the file and byte range; a torn end, a bad header CRC and a bad
# padding header are found and repaired by fsck --repair; exit codes 0, 1,
# 4, 8; the progress bar on a terminal; du through the mount and on the store.
. "$(dirname "$0")/lib.sh"

need_build tinyfs tinyd tiny

fs_init
TINY=$TINY_BUILD/tiny

# fsck_rc ARGS...: runs tiny fsck, output in $TMP_DIR/fsck.out, sets RC.
fsck_rc() {
    "$TINY" fsck "$@" >"$TMP_DIR/fsck.out" 2>&1
    RC=$?
}
chunk() { # chunk FILE I: the I-th 64 KiB of FILE
    dd if="$1" bs=65536 skip="$2" count=1 status=none
}
# stored_at FILE I [pad]: where chunk I of the stored FILE is, from its group's
# index (docs/format.md, version 2); with "pad", where the padding header of
# chunk I's group is.
stored_at() {
    /usr/bin/python3 - "$@" <<'EOF'
import struct, sys
f, i = open(sys.argv[1], 'rb'), int(sys.argv[2])
g, k = divmod(i, 16)
off = 38 + g * (80 + 16 * 65544 + 4)
f.seek(off + 4)
n, last, *rec = struct.unpack('<18I', f.read(72))
print(off + 80 + sum(rec[:n if len(sys.argv) > 3 else k]))
EOF
}

start_tinyd_or_bail
ipc_snapshot
mount_fs
ok $? "tinyfs mounts"
for i in 1 2 3; do cat "$DATA_DIR/lcet10.txt"; done >"$TMP_DIR/text"
head -c 300000 /dev/urandom >"$TMP_DIR/rand"
mkdir "$MNT/d"
for f in text rand; do
    for n in victim torn hdr pad; do cp "$TMP_DIR/$f" "$MNT/d/$f.$n"; done
done
cp "$DATA_DIR/alice29.txt" "$DATA_DIR/kppkn.gtb" "$MNT/"
ok $? "files written"

# --- du ----------------------------------------------------------------------------------
"$TINY" du "$MNT/d/text.victim" "$MNT/d/rand.victim" >"$TMP_DIR/du.mnt"
ok $? "tiny du through the mount"
diag "$(cat "$TMP_DIR/du.mnt")"
read -r lg st ratio _ < <(sed -n 2p "$TMP_DIR/du.mnt")
[ "$lg" = "$(stat -c %s "$TMP_DIR/text")" ] && [ "$st" = "$(getfattr --only-values -n user.tinyfs.stored_size "$MNT/d/text.victim" 2>/dev/null || echo "$st")" ] &&
    awk -v r="$ratio" 'BEGIN { exit !(r > 1.5) }'
ok $? "logical size, stored size (the xattr) and a ratio above 1.5 for text"
grep -q "^ *$(($(stat -c %s "$TMP_DIR/text") + 300000)) .* total$" "$TMP_DIR/du.mnt"
ok $? "and a total line"
umount_fs
ok $? "unmount"
"$TINY" du "$STORE/d/text.victim" "$STORE/d/rand.victim" >"$TMP_DIR/du.store"
cmp -s <(awk '{print $1, $2, $3}' "$TMP_DIR/du.mnt") <(awk '{print $1, $2, $3}' "$TMP_DIR/du.store")
ok $? "tiny du on the store gives the same numbers as through the mount"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    chmod 755 "$TMP_DIR"
    setpriv --reuid=65534 --regid=65534 --clear-groups "$TINY" du -s "$STORE/d" >/dev/null
    ok $? "tiny du works for another user"
else
    skip "not root"
fi

# --- a clean store -----------------------------------------------------------------------
fsck_rc "$STORE"
is "$RC" 0 "tiny fsck of a clean store exits 0 ($(tail -1 "$TMP_DIR/fsck.out"))"
fsck_rc "$TMP_DIR/nonexistent"
is "$RC" 8 "tiny fsck of a missing store exits 8"
if command -v script >/dev/null; then
    script -qec "'$TINY' fsck '$STORE'" /dev/null >"$TMP_DIR/tty.out" 2>&1
    rc=$?
    grep -q "tiny fsck: \[#*\.*\] *[0-9]*% [0-9]*/[0-9]* files" "$TMP_DIR/tty.out" && [ "$rc" = 0 ]
    ok $? "a progress bar on a terminal, and exit 0 (got $rc)"
else
    skip "no script(1) for a terminal"
fi

# --- flipped bytes in the data of chunk 5 ------------------------------------------------------
at5=$(stored_at "$STORE/d/text.victim" 5)
flip_byte "$STORE/d/text.victim" $((at5 + 100))
flip_byte "$STORE/d/rand.victim" $(($(stored_at "$STORE/d/rand.victim" 2) + 100))
mount_fs
ok $? "mount again"
chunk "$MNT/d/text.victim" 5 >/dev/null 2>"$TMP_DIR/err"
[ $? -ne 0 ] && grep -qi "input/output error" "$TMP_DIR/err"
ok $? "reading the damaged compressed chunk fails with EIO"
chunk "$MNT/d/rand.victim" 2 >/dev/null 2>"$TMP_DIR/err"
[ $? -ne 0 ] && grep -qi "input/output error" "$TMP_DIR/err"
ok $? "reading the damaged uncompressed chunk fails with EIO"
bad=0
n=$((($(stat -c %s "$TMP_DIR/text") + 65535) / 65536))
for ((i = 0; i < n; i++)); do
    [ $i = 5 ] && continue
    cmp -s <(chunk "$MNT/d/text.victim" $i) <(chunk "$TMP_DIR/text" $i) || bad=1
done
for i in 0 1 3 4; do
    cmp -s <(chunk "$MNT/d/rand.victim" $i) <(chunk "$TMP_DIR/rand" $i) || bad=1
done
ok $bad "every other chunk of both files reads back identical"
grep -q "d/text.victim: corrupt chunk 5" "$LOG"
ok $? "a log line names the file and chunk"
umount_fs
fsck_rc "$STORE/d/text.victim" "$STORE/d/rand.victim"
is "$RC" 4 "tiny fsck exits 4 (damage left)"
grep -q "text.victim: chunk 5 (bytes 327680-393215, stored at $at5): bad crc" "$TMP_DIR/fsck.out" &&
    grep -q "rand.victim: chunk 2 (bytes 131072-196607, .*): bad" "$TMP_DIR/fsck.out"
ok $? "it names each file and the damaged byte range" || diag "$(cat "$TMP_DIR/fsck.out")"
fsck_rc --repair "$STORE/d/text.victim"
is "$RC" 4 "fsck --repair cannot rebuild damaged data: still 4, chunk left in place"

# --- a torn end (a crash in the middle of an append) -----------------------------------------
# a record cut short (text), bytes after the last indexed record (rand)
cut=$(($(stored_at "$STORE/d/text.torn" 3) + 5000))
truncate -s $cut "$STORE/d/text.torn"
head -c 3000 /dev/urandom >>"$STORE/d/rand.torn"
fsck_rc "$STORE/d/text.torn" "$STORE/d/rand.torn"
is "$RC" 4 "a torn end is found (exit 4)"
grep -q "text.torn: torn end: stored length $cut ends inside a write (whole chunks up to logical byte 196608)" "$TMP_DIR/fsck.out" &&
    grep -q "rand.torn: torn end: .*logical byte 300000)" "$TMP_DIR/fsck.out"
ok $? "and named: $(grep text.torn "$TMP_DIR/fsck.out" | head -1)"
fsck_rc --repair "$STORE/d/text.torn" "$STORE/d/rand.torn"
is "$RC" 1 "fsck --repair cuts it back to the last whole chunk (exit 1)"
fsck_rc "$STORE/d/text.torn" "$STORE/d/rand.torn"
is "$RC" 0 "then it is clean"

# --- a bad header CRC, a bad padding header ---------------------------------------------------
flip_byte "$STORE/d/text.hdr" 30
flip_byte "$STORE/d/text.pad" $(($(stored_at "$STORE/d/text.pad" 0 pad) + 1))
fsck_rc "$STORE/d/text.hdr" "$STORE/d/text.pad"
is "$RC" 4 "a bad header crc and a bad padding header are found"
grep -q "text.hdr: header: bad crc" "$TMP_DIR/fsck.out" && grep -q "text.pad: group 0 .*bad padding header" "$TMP_DIR/fsck.out"
ok $? "and named" || diag "$(cat "$TMP_DIR/fsck.out")"
fsck_rc --repair "$STORE/d/text.hdr" "$STORE/d/text.pad"
is "$RC" 1 "fsck --repair rebuilds both (exit 1)"

# --- after the repairs ----------------------------------------------------------------------------
mount_fs
ok $? "mount again"
cmp -s "$MNT/d/text.hdr" "$TMP_DIR/text" && cmp -s "$MNT/d/text.pad" "$TMP_DIR/text"
ok $? "the repaired header and padding files read back identical"
cmp -s "$MNT/d/text.torn" <(head -c $((3 * 65536)) "$TMP_DIR/text") &&
    cmp -s "$MNT/d/rand.torn" "$TMP_DIR/rand"
ok $? "the torn files hold the prefix of whole chunks (all of rand)"
cmp -s "$MNT/kppkn.gtb" "$DATA_DIR/kppkn.gtb" && cmp -s "$MNT/alice29.txt" "$DATA_DIR/alice29.txt"
ok $? "the undamaged files are intact"
umount_fs
fsck_rc "$STORE"
is "$RC" 4 "the whole store: exit 4, only the two damaged chunks left"
is "$(grep -c "bad crc\|bad chunk" "$TMP_DIR/fsck.out")" 2 "exactly two damaged ranges reported"

# --- a file in format version 1: refused clearly, converted by a rewrite ------------------
mkdir "$STORE/v1"
/usr/bin/python3 - "$STORE/v1/old" "$DATA_DIR/alice29.txt" <<'EOF'
import struct, sys, snappy_compat
data = open(sys.argv[2], 'rb').read()[:100000]
body = b"tinyfs\0\0" + struct.pack('<III', 1, 65536, 0)
out = b"\xff\x06\x00\x00sNaPpY" + b"\xa1" + struct.pack('<I', 24)[:3] + body + struct.pack('<I', snappy_compat.masked(body))
for i in range(0, len(data), 65536):   # version 1: one slot per chunk
    c = data[i:i + 65536]
    out += b"\x01" + struct.pack('<I', len(c) + 4)[:3] + struct.pack('<I', snappy_compat.masked(c)) + c
    out += b"\xfe" + struct.pack('<I', 0)[:3]
open(sys.argv[1], 'wb').write(out)
EOF
fsck_rc "$STORE/v1"
[ "$RC" = 4 ] && grep -q "v1/old: tinyfs format version 1, not checked" "$TMP_DIR/fsck.out"
ok $? "tiny fsck names a version 1 file (exit 4)" || diag "$(cat "$TMP_DIR/fsck.out")"
mount_fs
! cat "$MNT/v1/old" >/dev/null 2>&1 && grep -q "v1/old: stored in tinyfs format version 1" "$LOG"
ok $? "reading it through the mount fails, with a log line naming the version"
"$TINY" decompress -c "$STORE/v1/old" >"$TMP_DIR/v1.out" 2>/dev/null &&
    cp "$TMP_DIR/v1.out" "$MNT/v1/old" && cmp -s "$MNT/v1/old" <(head -c 100000 "$DATA_DIR/alice29.txt")
ok $? "converted: decompressed from the store and copied back through the mount"
umount_fs
fsck_rc "$STORE/v1"
is "$RC" 0 "then it is a clean version 2 file"
rm -r "$STORE/v1"

stop_tinyd_checked
ipc_clean_since
done_testing
