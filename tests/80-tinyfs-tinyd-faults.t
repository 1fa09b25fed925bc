#!/bin/bash
# 80-tinyfs-tinyd-faults.t - tinyd dies under a busy tinyfs mount: kill -9 of
# tinyd again and again during a cp -a of a tree (tinyfs restarts it and
# retries, cp sees no error, the tree is byte-identical); then a tinyd that
# cannot be started: writes go on, stored uncompressed, reads of compressed
# chunks fail with EIO after the bounded wait (-o tinyd_wait) with a log line,
# and everything reads again once a tinyd is back.
. "$(dirname "$0")/lib.sh"

need_build tinyfs tinyd tiny

fs_init
GEN=$TMP_DIR/gen
# tinyds that tinyfs started (not in lib.sh's list)
cleanup_add 'for p in $(cat "$TMP_DIR"/*/tinyd.pid 2>/dev/null); do kill -9 $p; done'

tinyd_pid() {
    cat "$TINYD_DIR/tinyd.pid" 2>/dev/null
}
alive() {
    kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# A tree of about 24 MiB: text and random files of all sizes, three big ones.
/usr/bin/python3 - "$GEN" <<'EOF'
import os, random, sys
root = sys.argv[1]
r = random.Random(80)
words = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod ".split()
def text(n):
    out = bytearray()
    while len(out) < n:
        out += r.choice(words) + b" "
    return bytes(out[:n])
for d in range(8):
    os.makedirs(os.path.join(root, "d%d" % d))
    for k in range(30):
        size = r.choice([0, 1, 4096, 65535, 65536, 65537, 100000, 200000])
        data = text(size) if r.random() < 0.7 else r.randbytes(size)
        open(os.path.join(root, "d%d" % d, "f%d" % k), "wb").write(data)
for k in range(3):
    open(os.path.join(root, "big%d" % k), "wb").write(text(3 << 20) + r.randbytes(1 << 20))
EOF
ok $? "generated a tree of $(find "$GEN" -type f | wc -l) files, $(du -sm "$GEN" | cut -f1) MiB"

# --- 1. kill -9 of tinyd, five times, during a cp -a --------------------------------
FS_BIN=$TINY_BUILD/tinyfs
ipc_snapshot
start_tinyd_or_bail
mount_fs
ok $? "tinyfs mounts"
# three copies of the tree in a row, so the kills land in the middle of work
sh -c 'for i in 1 2 3; do cp -a "$1" "$2/tree$i" || exit 1; done' sh "$GEN" "$MNT" 2>"$TMP_DIR/cp.err" &
cp_pid=$!
kills=0
restarted=0
for i in 1 2 3 4 5 6; do
    sleep 0.1
    alive "$cp_pid" || break
    pid=$(tinyd_pid)
    [ -n "$pid" ] && alive "$pid" || continue
    kill -9 "$pid"
    kills=$((kills + 1))
    # tinyfs notices at its next request and starts a new tinyd on the same dir
    if wait_until 5000 sh -c "p=\$(cat '$TINYD_DIR/tinyd.pid' 2>/dev/null); [ -n \"\$p\" ] && [ \"\$p\" != $pid ] && kill -0 \$p"; then
        restarted=$((restarted + 1))
    elif ! alive "$cp_pid"; then
        break
    fi
done
wait "$cp_pid"
cp_rc=$?
diag "killed tinyd $kills times during the copies; tinyfs restarted it $restarted times"
[ "$kills" -ge 3 ]
ok $? "tinyd was killed at least 3 times while cp ran ($kills)"
ok "$cp_rc" "cp -a saw no error and no delay it could not absorb" || diag "$(cat "$TMP_DIR/cp.err")"
bad=0
for i in 1 2 3; do
    diff -r --no-dereference "$GEN" "$MNT/tree$i" >/dev/null || bad=1
done
ok $bad "the three copied trees are byte-identical"
grep -q "reconnected to tinyd\|tinyd is back" "$LOG"
ok $? "tinyfs logged its reconnections ($(grep -c "reconnected to tinyd\|tinyd is back" "$LOG"))"
umount_fs
ok $? "unmount"
"$TINY_BUILD/tiny" fsck -q "$STORE"
ok $? "tiny fsck finds every stored file intact"

# --- 2. tinyd cannot be started ---------------------------------------------------------
# A tinyfs binary with no tinyd next to it or in PATH.
mkdir -p "$TMP_DIR/bin"
cp "$TINY_BUILD/tinyfs" "$TMP_DIR/bin/tinyfs"
FS_BIN=$TMP_DIR/bin/tinyfs
export PATH_SAVE=$PATH
PATH=/usr/bin:/bin mount_fs -o tinyd_wait=2
ok $? "tinyfs (without a tinyd it could start) mounts, -o tinyd_wait=2"
cp "$DATA_DIR/alice29.txt" "$MNT/before"
ok $? "a file written while tinyd runs"
kill -9 "$(tinyd_pid)"
wait_until 3000 sh -c "! kill -0 $(tinyd_pid) 2>/dev/null"
for i in $(seq 10); do cat "$DATA_DIR/lcet10.txt"; done >"$TMP_DIR/text"
cp "$TMP_DIR/text" "$MNT/after" && cp -a "$GEN/d1" "$MNT/d1"
ok $? "with tinyd dead and impossible to start, writes still succeed"
cmp -s "$TMP_DIR/text" "$MNT/after" && diff -r "$GEN/d1" "$MNT/d1" >/dev/null
ok $? "and read back identical without tinyd"
t=$(od -An -tx1 -j 118 -N1 "$STORE/after" | tr -d ' ') # the first record, after the header and the group index
is "$t" 01 "they are stored as uncompressed chunks (type 0x01)"
t0=$(now_ms)
cat "$MNT/before" >/dev/null 2>"$TMP_DIR/err"
rc=$?
dt=$(($(now_ms) - t0))
[ $rc -ne 0 ] && grep -qi "input/output error" "$TMP_DIR/err"
ok $? "a compressed chunk cannot be read: EIO"
[ "$dt" -ge 1500 ] && [ "$dt" -le 15000 ]
ok $? "after the bounded wait ($dt ms for tinyd_wait=2)"
grep -q "tinyd is unavailable" "$LOG" && grep -q "before: cannot decompress chunk" "$LOG"
ok $? "with log lines: $(grep "tinyd is unavailable" "$LOG" | tail -1 | cut -c1-90)..."
TINYD_REUSE_DIR=$TINYD_DIR tinyd_start
ok $? "tinyd started again by hand"
cmp -s "$MNT/before" "$DATA_DIR/alice29.txt"
ok $? "the compressed file reads again once tinyd is back"
grep -q "tinyd is back" "$LOG"
ok $? "tinyfs logged it: $(grep "tinyd is back" "$LOG" | tail -1)"
umount_fs
ok $? "unmount"
"$TINY_BUILD/tiny" fsck -q "$STORE"
ok $? "tiny fsck: the uncompressed chunks are a valid stream"
if /usr/bin/python3 -c 'import snappy' 2>/dev/null; then
    /usr/bin/python3 - "$STORE/after" "$TMP_DIR/text" <<'EOF'
import sys, snappy_compat, snappy.snappy as s
d = s.StreamDecompressor()
out = d.decompress(open(sys.argv[1], 'rb').read())
d.flush()
sys.exit(0 if out == open(sys.argv[2], 'rb').read() else 1)
EOF
    ok $? "python3-snappy decodes the file written without tinyd"
else
    skip "python3-snappy is not installed"
fi

stop_tinyd_checked
ipc_clean_since "no queue or segment left by the killed and restarted tinyds"
done_testing
