#!/bin/bash
# 81-tinyfs-crash.t - kill -9 of tinyfs in the middle of copies, then
# fusermount3 -u -z and a remount: every file closed before the kill is
# byte-identical, the file being written holds its old content or a prefix of
# its new data, every other file is untouched, and every stored file is a
# valid framing stream (tiny -t, python3-snappy, tiny fsck). Then fsync and
# fdatasync: data and size survive a kill -9 that follows them.
. "$(dirname "$0")/lib.sh"

need_build tinyfs tinyd tiny

PY=/usr/bin/python3
fs_init

# crash: kill -9 of tinyfs, lazy unmount, remount.
crash_and_remount() {
    kill -9 "$FS_PID"
    wait "$FS_PID" 2>/dev/null
    fusermount3 -u -z "$MNT"
    wait_until 5000 sh -c "! grep -q ' $MNT fuse' /proc/mounts" && mount_fs
}
# prefix_of FILE SRC: FILE holds the first bytes of SRC (maybe none).
prefix_of() {
    local n
    n=$(stat -c %s "$1") || return 1
    [ "$n" -le "$(stat -c %s "$2")" ] && cmp -s -n "$n" "$1" "$2"
}
# stored_valid: every stored file decodes (tiny -t checks every chunk and CRC).
stored_valid() {
    find "$STORE" -type f -print0 | xargs -0 -r "$TINY_BUILD/tiny" -t -q 2>"$TMP_DIR/t.err"
}

# gen DIR SEED: ~22 MiB: 160 files of all sizes, then three big ones (named
# to come last in a sorted walk).
gen() {
    $PY - "$1" "$2" <<'EOF'
import os, random, sys
root, seed = sys.argv[1], int(sys.argv[2])
r = random.Random(seed)
words = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod ".split()
def text(n):
    out = bytearray()
    while len(out) < n:
        out += r.choice(words) + b" "
    return bytes(out[:n])
for d in range(8):
    os.makedirs(os.path.join(root, "d%d" % d))
    for k in range(20):
        size = r.choice([0, 1, 4096, 65535, 65536, 65537, 100000, 200000, 300001])
        data = text(size) if r.random() < 0.7 else r.randbytes(size)
        open(os.path.join(root, "d%d" % d, "f%02d" % k), "wb").write(data)
for k in range(3):
    open(os.path.join(root, "m_big%d" % k), "wb").write(text(3 << 20) + r.randbytes(1 << 20) + text(12345))
EOF
}

gen "$TMP_DIR/old" 1 && gen "$TMP_DIR/new" 2
ok $? "generated two trees with the same names and other contents ($(du -sm "$TMP_DIR/new" | cut -f1) MiB each)"

start_tinyd_or_bail
ipc_snapshot
mount_fs
ok $? "tinyfs mounts"

# --- 1. kill -9 while a copier overwrites a tree, file by file --------------------------
cp -a "$TMP_DIR/old/." "$MNT/t" && diff -r "$TMP_DIR/old" "$MNT/t" >/dev/null
ok $? "the old tree is in the mount"
: >"$TMP_DIR/copier.log"
# The copier logs "start NAME" before opening a file and "done NAME" after
# closing it, so the test knows what was closed before the kill.
$PY - "$TMP_DIR/new" "$MNT/t" "$TMP_DIR/copier.log" <<'EOF' 2>/dev/null &
import os, sys, time
src, dst, log = sys.argv[1:4]
lg = open(log, "w", buffering=1)
names = []
for d, _, files in os.walk(src):
    names += [os.path.relpath(os.path.join(d, f), src) for f in files]
for n in sorted(names):
    lg.write("start %s\n" % n)
    data = open(os.path.join(src, n), "rb").read()
    fd = os.open(os.path.join(dst, n), os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644)
    for i in range(0, len(data), 65536):
        os.write(fd, data[i:i + 65536])
        if n.startswith("m_big"):
            time.sleep(0.004)  # so that the kill lands inside a big file
    os.close(fd)
    lg.write("done %s\n" % n)
EOF
copier=$!
wait_until 20000 grep -q "^start m_big1" "$TMP_DIR/copier.log"
ok $? "the copier reached the big files"
sleep 0.15
crash_and_remount
ok $? "kill -9 of tinyfs, fusermount3 -u -z, mount again"
wait "$copier" 2>/dev/null
inprog=$(tail -1 "$TMP_DIR/copier.log")
ndone=$(grep -c "^done" "$TMP_DIR/copier.log")
diag "killed after $ndone files closed; last line of the copier: $inprog"
stored_valid
ok $? "right after the remount, every stored file is a valid framing stream (tiny -t)" ||
    diag "$(head -5 "$TMP_DIR/t.err")"
bad=0
for n in $(sed -n 's/^done //p' "$TMP_DIR/copier.log"); do
    cmp -s "$MNT/t/$n" "$TMP_DIR/new/$n" || { bad=1; diag "closed file $n differs"; }
done
ok $bad "all $ndone files closed before the kill are byte-identical"
case $inprog in
"start "*)
    n=${inprog#start }
    if cmp -s "$MNT/t/$n" "$TMP_DIR/old/$n"; then
        what="its old content"
    elif prefix_of "$MNT/t/$n" "$TMP_DIR/new/$n"; then
        what="a prefix of its new data ($(stat -c %s "$MNT/t/$n") of $(stat -c %s "$TMP_DIR/new/$n") bytes)"
    else
        what=
    fi
    [ -n "$what" ]
    ok $? "the file being written ($n) holds ${what:-neither its old content nor a prefix of the new}"
    ;;
*) ok 0 "no file was being written at the kill" ;;
esac
bad=0
untouched=0
for n in $(cd "$TMP_DIR/old" && find . -type f | sed 's|^\./||'); do
    grep -qx "start $n" "$TMP_DIR/copier.log" && continue
    untouched=$((untouched + 1))
    cmp -s "$MNT/t/$n" "$TMP_DIR/old/$n" || { bad=1; diag "untouched file $n differs"; }
done
ok $bad "the $untouched files not reached yet still hold their old content"

# --- 2. kill -9 during a real cp -a ------------------------------------------------------
mkdir "$MNT/cp"
cp -a "$TMP_DIR/new" "$TMP_DIR/old" "$MNT/cp/" 2>/dev/null &
cpid=$!
sleep 0.25
running=$(kill -0 $cpid 2>/dev/null && echo yes || echo no)
crash_and_remount
ok $? "kill -9 of tinyfs during cp -a (still running at the kill: $running), fusermount3 -u -z, mount again"
wait "$cpid" 2>/dev/null
same=0
partial=0
bad=0
while IFS= read -r -d '' f; do
    n=${f#"$MNT/cp/"}
    if cmp -s "$f" "$TMP_DIR/$n"; then
        same=$((same + 1))
    elif prefix_of "$f" "$TMP_DIR/$n"; then
        partial=$((partial + 1))
        diag "$n holds a prefix: $(stat -c %s "$f") of $(stat -c %s "$TMP_DIR/$n") bytes"
    else
        bad=$((bad + 1))
        diag "$n is neither its data nor a prefix of it"
    fi
done < <(find "$MNT/cp" -type f -print0)
[ "$bad" = 0 ] && [ "$partial" -le 1 ]
ok $? "cp -a: $same files identical, $partial a prefix (the one being written), $bad wrong"

# --- 3. fsync and fdatasync ------------------------------------------------------------------
cp "$MNT/t/m_big0" "$TMP_DIR/before0"
$PY - "$MNT" "$TMP_DIR/new/m_big2" "$TMP_DIR/synced" <<'EOF' &
import os, sys, time
mnt, src, flag = sys.argv[1:4]
data = open(src, "rb").read()
a = os.open(mnt + "/fsync", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(a, data)
os.fsync(a)
b = os.open(mnt + "/fdatasync", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(b, data[:1000001])
os.fdatasync(b)
# an existing file rewritten in place and shortened, then synced
c = os.open(mnt + "/t/m_big0", os.O_RDWR)
os.pwrite(c, data[:70000], 5)
os.ftruncate(c, 2000000)
os.fsync(c)
open(flag, "w").write("synced")
time.sleep(60)  # keep the files open: no close, no flush
EOF
syncer=$!
cleanup_add "kill -9 $syncer"
wait_until 20000 test -s "$TMP_DIR/synced"
ok $? "a writer fsynced, fdatasynced and keeps its files open"
crash_and_remount
ok $? "kill -9 of tinyfs, remount"
kill -9 "$syncer" 2>/dev/null
wait "$syncer" 2>/dev/null
cmp -s "$MNT/fsync" "$TMP_DIR/new/m_big2" && [ "$(stat -c %s "$MNT/fsync")" = "$(stat -c %s "$TMP_DIR/new/m_big2")" ]
ok $? "fsync: data and size ($(stat -c %s "$MNT/fsync")) survived"
cmp -s "$MNT/fdatasync" <(head -c 1000001 "$TMP_DIR/new/m_big2") && [ "$(stat -c %s "$MNT/fdatasync")" = 1000001 ]
ok $? "fdatasync: data and size survived"
{ head -c 5 "$TMP_DIR/before0"; head -c 70000 "$TMP_DIR/new/m_big2"; tail -c +70006 "$TMP_DIR/before0"; } |
    head -c 2000000 | cmp -s - "$MNT/t/m_big0"
ok $? "an in-place rewrite and truncate, fsynced, survived"

# --- the store ---------------------------------------------------------------------------------
fusermount3 -u "$MNT" && wait "$FS_PID"
ok $? "unmount"
stored_valid
ok $? "every stored file is a valid framing stream (tiny -t)" || diag "$(head -5 "$TMP_DIR/t.err")"
if $PY -c 'import snappy' 2>/dev/null; then
    $PY - "$STORE" <<'EOF'
import os, sys, snappy_compat, snappy.snappy as s
bad = 0
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        p = os.path.join(d, f)
        if os.path.getsize(p) > 400000:
            continue  # the pure-Python CRC is slow: small files only
        try:
            dec = s.StreamDecompressor()
            dec.decompress(open(p, "rb").read())
            dec.flush()
        except Exception as e:
            print("# python3-snappy rejects %s: %r" % (p, e))
            bad += 1
sys.exit(1 if bad else 0)
EOF
    ok $? "python3-snappy accepts every small stored file"
else
    skip "python3-snappy is not installed"
fi
"$TINY_BUILD/tiny" fsck "$STORE" >"$TMP_DIR/fsck.out" 2>&1
ok $? "tiny fsck: $(tail -1 "$TMP_DIR/fsck.out")"

stop_tinyd_checked
ipc_clean_since
done_testing
