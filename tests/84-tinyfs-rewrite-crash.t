#!/bin/bash
# 84-tinyfs-rewrite-crash.t - small overwrites inside closed files rewrite
# chunks in place; tinyfs dies in the middle (abort() at each step of the
# journalled rewrite through TINYFS_DEBUG_CRASH, then kill -9 at random
# moments). After fusermount3 -u -z and a remount (which replays the undo
# journal) every chunk of every file holds its content of before or after
# one of the writes of the interrupted round (rw.py below), never EIO, never
# other bytes; tiny fsck is clean and the journal is hidden.
. "$(dirname "$0")/lib.sh"

[ -c /dev/fuse ] || skip_all "/dev/fuse is missing"
command -v fusermount3 >/dev/null || skip_all "fusermount3 is missing"
need_build tinyfs tinyd tiny

PY=/usr/bin/python3
STORE=$TMP_DIR/store
MNT=$TMP_DIR/mnt
REF=$TMP_DIR/ref
LOG=$TMP_DIR/tinyfs.log
FS_PID= FS_SH=
mkdir -p "$STORE" "$MNT" "$REF"
cleanup_add "fusermount3 -u -z '$MNT'"
cleanup_add 'kill -9 $FS_PID' # after an early failure: stop the last tinyfs first
ulimit -c 0

is_mounted() {
    grep -q " $1 fuse" /proc/mounts
}
# start_fs [VAR=VALUE...]: tinyfs -f in the background, FS_PID its pid. It
# runs under a sh that waits for it, FS_SH: when tinyfs dies of a signal,
# that sh exits with a status, and bash has no killed job to report
# ("Killed", "Aborted") in the middle of the test's output.
start_fs() {
    rm -f "$TMP_DIR/fs.pid"
    env "$@" sh -c '"$0" -f "$1" "$2" >>"$3" 2>&1 & echo $! >"$4"; wait $!' \
        "$TINY_BUILD/tinyfs" "$STORE" "$MNT" "$LOG" "$TMP_DIR/fs.pid" 2>/dev/null &
    FS_SH=$!
    wait_until 5000 test -s "$TMP_DIR/fs.pid" && FS_PID=$(cat "$TMP_DIR/fs.pid") &&
        wait_until 10000 is_mounted "$MNT"
}
unmount_dead() {
    kill -9 "$FS_PID" 2>/dev/null # gone already after an abort
    wait "$FS_SH"
    fusermount3 -u -z "$MNT"
    wait_until 5000 sh -c "! grep -q ' $MNT fuse' /proc/mounts"
}

# The writer: rounds of random small overwrites (some growing a file inside
# its last chunk, some over several chunks), one open per file per round.
# REF/NAME holds the content before the round, REF/NAME.new the content the
# round is writing and REF/NAME.edits its writes, in order. A chunk written
# whole is compressed at once and stored when a later write of the round
# touches it again, so after a crash a chunk may hold the content of any
# state the round went through: old, new, or old with the first k writes.
cat >"$TMP_DIR/rw.py" <<'EOF2'
import os, random, struct, sys
mode, mnt, ref = sys.argv[1], sys.argv[2], sys.argv[3]
C = 65536
words = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ".split()
def text(r, n):
    out = bytearray()
    while len(out) < n:
        out += r.choice(words) + b" "
    return bytes(out[:n])
names = ["f0", "f1", "f2"]
if mode == "init":
    r = random.Random(7)
    for k, name in enumerate(names):
        data = text(r, (2 << 20) + 1000 * k + 5)
        if k == 2:  # an incompressible middle: uncompressed chunks too
            data = data[:C * 8] + r.randbytes(C * 4) + data[C * 12:]
        open(os.path.join(ref, name), "wb").write(data)
        open(os.path.join(mnt, name), "wb").write(data)
elif mode == "write":
    r = random.Random(int(sys.argv[4]))
    rounds = int(sys.argv[5])
    for _ in range(rounds):
        for name in names:
            old = open(os.path.join(ref, name), "rb").read()
            new = bytearray(old)
            edits = []
            for _ in range(r.randint(1, 10)):
                off = r.randrange(len(new))
                # now and then several chunks of a group, rewritten at once
                n = r.randint(1, 3000) if r.random() < 0.9 else r.randint(C, 3 * C)
                if off + n > len(new) and (len(new) - 1) // C != (off + n - 1) // C:
                    n = len(new) - off  # stay inside the last chunk
                data = text(r, n) if r.random() < 0.8 else r.randbytes(n)
                new[off:off + n] = data
                edits.append((off, data))
            with open(os.path.join(ref, name + ".new"), "wb") as f:
                f.write(new)
            with open(os.path.join(ref, name + ".edits"), "wb") as f:
                for off, data in edits:
                    f.write(struct.pack("<QI", off, len(data)) + data)
            try:
                fd = os.open(os.path.join(mnt, name), os.O_WRONLY)
                for off, data in edits:
                    os.pwrite(fd, data, off)
                os.close(fd)
            except OSError:
                sys.exit(0)  # tinyfs died
            os.replace(os.path.join(ref, name + ".new"), os.path.join(ref, name))
            os.unlink(os.path.join(ref, name + ".edits"))
elif mode == "check":
    # every chunk old, new, or as after the first k writes of the round;
    # then the survivor becomes the reference
    def states(old, path):
        out, cur = [old], bytearray(old)
        try:
            raw = open(path, "rb").read()
        except FileNotFoundError:
            return out
        at = 0
        while at < len(raw):
            off, n = struct.unpack_from("<QI", raw, at)
            at += 12
            cur[off:off + n] = raw[at:at + n]
            at += n
            out.append(bytes(cur))
        return out
    bad = 0
    stats = [0, 0, 0]
    for name in names:
        path = os.path.join(ref, name)
        s = states(open(path, "rb").read(), path + ".edits")
        try:
            got = open(os.path.join(mnt, name), "rb").read()
        except OSError as e:
            print("# %s: %s" % (name, e))
            bad += 1
            continue
        if len(got) not in {len(x) for x in s}:
            print("# %s: size %d, not one the round went through" % (name, len(got)))
            bad += 1
            continue
        for i in range(0, max(len(x) for x in s), C):
            g = got[i:i + C]
            if g == s[0][i:i + C]:
                stats[0] += 1
            elif g == s[-1][i:i + C]:
                stats[1] += 1
            elif any(g == x[i:i + C] for x in s[1:-1]):
                stats[2] += 1
            else:
                print("# %s: chunk %d is neither old, new nor between" % (name, i // C))
                bad += 1
        open(path, "wb").write(got)
        for tmp in (path + ".new", path + ".edits"):
            if os.path.exists(tmp):
                os.unlink(tmp)
    print("# chunks: %d as before the round, %d rewritten, %d between" % tuple(stats))
    sys.exit(1 if bad else 0)
EOF2

start_tinyd_or_bail
ipc_snapshot
start_fs
ok $? "tinyfs mounts"
$PY "$TMP_DIR/rw.py" init "$MNT" "$REF"
ok $? "three files of about 2 MiB written and closed"
$PY "$TMP_DIR/rw.py" write "$MNT" "$REF" 1 2
ok $? "rounds of small overwrites without a crash"
$PY "$TMP_DIR/rw.py" check "$MNT" "$REF" >"$TMP_DIR/check.out"
ok $? "they read back $(tail -1 "$TMP_DIR/check.out" | sed 's/^# //')"
[ "$(ls -A "$MNT" | tr '\n' ' ')" = "f0 f1 f2 " ]
ok $? "the journal is hidden from readdir ($(ls -A "$MNT" | tr '\n' ' '))"
[ -e "$STORE/.tinyfs-journal" ] && [ ! -e "$MNT/.tinyfs-journal" ] &&
    ! (echo x >"$MNT/.tinyfs-journal") 2>/dev/null && ! rm "$MNT/.tinyfs-journal" 2>/dev/null
ok $? "and from stat, and cannot be written or removed through the mount"
fusermount3 -u "$MNT" && wait "$FS_SH"
[ ! -e "$STORE/.tinyfs-journal" ]
ok $? "a clean unmount removes the journal"

# --- 1. abort() at each step of a journalled rewrite ---------------------------------
# step 1: torn journal entry; 2: entry synced, slot untouched; 3: half of the
# new record written over the old one; 4: new record written, hole not punched
steps=(1 2 3 4)
fired=0 bad=0
for s in "${steps[@]}"; do
    for k in 1 4 9; do
        start_fs TINYFS_DEBUG_CRASH=$k:$s || break
        $PY "$TMP_DIR/rw.py" write "$MNT" "$REF" "$s$k" 3
        grep -q "abort at step $s of rewrite $k\$" "$LOG" && fired=$((fired + 1))
        unmount_dead
        start_fs || break
        if ! $PY "$TMP_DIR/rw.py" check "$MNT" "$REF" >"$TMP_DIR/check.out"; then
            diag "$(cat "$TMP_DIR/check.out")"
            bad=1
            fusermount3 -u "$MNT" && wait "$FS_SH"
            break 2
        fi
        diag "abort at step $s of rewrite $k: $(tail -1 "$TMP_DIR/check.out" | sed 's/^# //')"
        fusermount3 -u "$MNT" && wait "$FS_SH"
    done
done
[ "$fired" = 12 ] && [ "$bad" = 0 ]
ok $? "every abort fired ($fired of 12) and every chunk survived as old, new or between"
undone=$(grep -c "old content restored" "$LOG")
[ "$undone" -ge 4 ]
ok $? "the journal undid $undone interrupted rewrites on remount"

# --- 2. kill -9 at random moments --------------------------------------------------
RANDOM=84
kills=0 bad=0
for round in $(seq 1 8); do
    start_fs || break
    $PY "$TMP_DIR/rw.py" write "$MNT" "$REF" "$round" 1000 &
    W=$!
    sleep "0.$((RANDOM % 9 + 1))"
    kill -9 "$FS_PID" && kills=$((kills + 1))
    wait "$W"
    unmount_dead
    start_fs || break
    if ! $PY "$TMP_DIR/rw.py" check "$MNT" "$REF" >"$TMP_DIR/check.out"; then
        diag "$(cat "$TMP_DIR/check.out")"
        bad=1
        fusermount3 -u "$MNT" && wait "$FS_SH"
        break
    fi
    diag "kill -9 $round: $(tail -1 "$TMP_DIR/check.out" | sed 's/^# //')"
    fusermount3 -u "$MNT" && wait "$FS_SH"
done
[ "$kills" = 8 ] && [ "$round" = 8 ] && [ "$bad" = 0 ]
ok $? "$kills kill -9 at random moments: every chunk old, new or between after each remount"
grep -qi "input/output error\|corrupt chunk" "$LOG"
ok $((!$?)) "no read failed with EIO, no corrupt chunk logged"
diag "$(grep -c "old content restored" "$LOG") rewrites undone by the journal in all"

"$TINY_BUILD/tiny" fsck "$STORE" >"$TMP_DIR/fsck.out" 2>&1
ok $? "tiny fsck: $(tail -1 "$TMP_DIR/fsck.out")"
find "$STORE" -type f -print0 | xargs -0 -r "$TINY_BUILD/tiny" -t -q
ok $? "every stored file decodes (tiny -t)"

# --- 3. tiny fsck --repair replays a journal left by a crash --------------------------
start_fs TINYFS_DEBUG_CRASH=2:3
$PY "$TMP_DIR/rw.py" write "$MNT" "$REF" 99 3
unmount_dead
"$TINY_BUILD/tiny" fsck "$STORE" >"$TMP_DIR/fsck.out" 2>&1
[ $? = 4 ] && grep -q "interrupted rewrite" "$TMP_DIR/fsck.out"
ok $? "tiny fsck names the interrupted rewrite (exit 4)"
"$TINY_BUILD/tiny" fsck --repair "$STORE" >"$TMP_DIR/fsck.out" 2>&1
[ $? = 1 ] && grep -q "old content restored" "$TMP_DIR/fsck.out" && [ ! -e "$STORE/.tinyfs-journal" ]
ok $? "tiny fsck --repair restores it (exit 1) and removes the journal"
"$TINY_BUILD/tiny" fsck "$STORE" >"$TMP_DIR/fsck.out" 2>&1
ok $? "then tiny fsck is clean: $(tail -1 "$TMP_DIR/fsck.out")"
start_fs
$PY "$TMP_DIR/rw.py" check "$MNT" "$REF" >"$TMP_DIR/check.out"
ok $? "every chunk old, new or between: $(tail -1 "$TMP_DIR/check.out" | sed 's/^# //')"
fusermount3 -u "$MNT" && wait "$FS_SH"

stop_tinyd_checked
ipc_clean_since
done_testing
