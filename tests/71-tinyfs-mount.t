#!/bin/bash
# 71-tinyfs-mount.t - tinyfs on a real mount with a real tinyd: cp, rsync and
# tar round trips of the corpus and of a generated tree, stored files decoded
# by python3-snappy, du of compressible and incompressible data, a 1 GiB
# file, errno checks (tests/tinyfs_ops.c), git, sqlite3 (also in WAL mode), corruption -> EIO,
# plain files in the store, -o attr_timeout, multi-user ownership and
# permissions, remount, daemon mode, starting tinyd when none runs.
. "$(dirname "$0")/lib.sh"

need_build tinyfs tinyd tests/tinyfs_ops

PY=/usr/bin/python3
fs_init

# pydecode STORED ORIG...: python3-snappy decodes each stored file to ORIG.
pydecode() {
    $PY - "$@" <<'EOF'
import sys, snappy_compat, snappy.snappy as s
bad = 0
args = sys.argv[1:]
for i in range(0, len(args), 2):
    d = s.StreamDecompressor()
    try:
        out = d.decompress(open(args[i], 'rb').read())
        d.flush()
    except Exception as e:
        out = repr(e).encode()
    if out != open(args[i + 1], 'rb').read():
        print("# python3-snappy: %s does not decode to %s" % (args[i], args[i + 1]))
        bad += 1
sys.exit(1 if bad else 0)
EOF
}

# blocks_kib PATH: allocated KiB of a file.
blocks_kib() {
    du -k "$1" | cut -f1
}

start_tinyd_or_bail
ipc_snapshot
mount_fs_or_bail

# --- the corpus ---------------------------------------------------------------
cp -a "$DATA_DIR" "$MNT/corpus"
ok $? "cp -a of the corpus into the mount"
diff -r "$DATA_DIR" "$MNT/corpus" >/dev/null
ok $? "the corpus reads back identical"
bad=0
for f in "$DATA_DIR"/*; do
    n=$(basename "$f")
    [ "$(stat -c %s "$MNT/corpus/$n")" = "$(stat -c %s "$f")" ] || bad=1
done
ok $bad "ls -l shows the real sizes"
if $PY -c 'import snappy' 2>/dev/null; then
    args=()
    for f in "$DATA_DIR"/*; do
        args+=("$STORE/corpus/$(basename "$f")" "$f")
    done
    pydecode "${args[@]}"
    ok $? "python3-snappy decodes every stored corpus file to the original"
else
    skip "python3-snappy is not installed"
fi
if [ -x "$TINY_BUILD/tiny" ]; then
    "$TINY_BUILD/tiny" -d -c <"$STORE/corpus/alice29.txt" | cmp -s - "$DATA_DIR/alice29.txt"
    ok $? "tiny decompress decodes a stored file"
else
    skip "tiny is not built"
fi

# --- a generated tree ------------------------------------------------------------
GEN=$TMP_DIR/gen
$PY - "$GEN" <<'EOF'
import os, random, sys
root = sys.argv[1]
r = random.Random(7)
words = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ".split()
def text(n):
    out = bytearray()
    while len(out) < n:
        out += r.choice(words) + b" "
    return bytes(out[:n])
n = 0
for d1 in range(10):
    for d2 in range(10):
        d = os.path.join(root, "d%d" % d1, "e%d" % d2)
        os.makedirs(d)
        for k in range(20):
            size = r.choice([0, 1, 100, 4095, 4096, 10000, 65535, 65536, 65537, 70000])
            if size > 60000 and r.random() < 0.7:
                size = r.randrange(0, 5000)
            data = text(size) if r.random() < 0.7 else r.randbytes(size)
            with open(os.path.join(d, "f%d" % k), "wb") as f:
                f.write(data)
            n += 1
        os.symlink("f0", os.path.join(d, "link"))
        os.symlink("../e%d" % ((d2 + 1) % 10), os.path.join(d, "dirlink"))
        os.link(os.path.join(d, "f1"), os.path.join(d, "hard"))
        os.chmod(os.path.join(d, "f2"), 0o600)
for size in (65535, 65536, 65537, 131071, 131072, 131073):
    with open(os.path.join(root, "size%d" % size), "wb") as f:
        f.write(text(size))
os.makedirs(os.path.join(root, "empty/dir"))
EOF
ok $? "generated a tree of $(find "$GEN" -type f | wc -l) files"

rsync -aH "$GEN/" "$MNT/rsync/"
ok $? "rsync -aH into the mount"
diff -r --no-dereference "$GEN" "$MNT/rsync" >/dev/null
ok $? "the rsynced tree reads back identical"
[ "$(stat -c %i "$MNT/rsync/d3/e4/f1")" = "$(stat -c %i "$MNT/rsync/d3/e4/hard")" ] &&
    [ "$(stat -c %h "$MNT/rsync/d3/e4/f1")" = 2 ]
ok $? "hard links are hard links in the mount"
[ "$(stat -c %a "$MNT/rsync/d5/e5/f2")" = 600 ] && [ -L "$MNT/rsync/d5/e5/link" ]
ok $? "modes and symlinks kept"
[ "$(stat -c %Y "$MNT/rsync/d1/e1/f5")" = "$(stat -c %Y "$GEN/d1/e1/f5")" ]
ok $? "mtimes kept"
rsync -aH "$MNT/rsync/" "$TMP_DIR/rsync-out/" && diff -r --no-dereference "$GEN" "$TMP_DIR/rsync-out" >/dev/null
ok $? "rsync -aH out of the mount gives the same tree"

mkdir "$MNT/tar" && tar -C "$GEN" -cf - . | tar -C "$MNT/tar" -xf -
ok $? "tar into the mount"
mkdir "$TMP_DIR/tar-out" && tar -C "$MNT/tar" -cf - . | tar -C "$TMP_DIR/tar-out" -xf - &&
    diff -r --no-dereference "$GEN" "$TMP_DIR/tar-out" >/dev/null
ok $? "tar out of the mount gives the same tree"
cp -a "$GEN" "$MNT/cp" && diff -r --no-dereference "$GEN" "$MNT/cp" >/dev/null
ok $? "cp -a round trip of the tree"
if $PY -c 'import snappy' 2>/dev/null; then
    args=()
    for f in size65535 size65536 size65537 size131073 d0/e0/f0 d4/e2/f3 d9/e9/f19; do
        args+=("$STORE/rsync/$f" "$GEN/$f")
    done
    pydecode "${args[@]}"
    ok $? "python3-snappy decodes stored files of 64 KiB +- 1 and others"
else
    skip "python3-snappy is not installed"
fi

# --- du ---------------------------------------------------------------------------
for i in $(seq 20); do cat "$DATA_DIR/alice29.txt" "$DATA_DIR/kppkn.gtb"; done >"$MNT/text"
head -c 8388608 /dev/urandom >"$TMP_DIR/random"
cp "$TMP_DIR/random" "$MNT/random"
app=$(stat -c %s "$MNT/text")
use=$(($(stat -c %b "$MNT/text") * 512))
diag "compressible: $app bytes apparent, $use allocated"
[ "$use" -lt $((app * 6 / 10)) ]
ok $? "du of compressible data is well below its size"
app=$(stat -c %s "$MNT/random")
use=$(($(stat -c %b "$MNT/random") * 512))
diag "incompressible: $app bytes apparent, $use allocated"
[ "$use" -le $((app + app / 1000)) ] && [ "$use" -ge $((app - app / 1000)) ]
ok $? "du of incompressible data is within 0.1% of its size"
cmp -s "$TMP_DIR/random" "$MNT/random"
ok $? "incompressible data reads back identical"
# The stored-size targets (docs/format.md): the blocks of a stored file
# within 1% of the framing stream that tiny compress makes of the same data
# (0.05% for incompressible data). 64 MiB of mixed data: corpus text and
# random blocks.
for i in $(seq 14); do
    cat "$DATA_DIR"/*
    head -c 2097152 /dev/urandom
done | head -c 67108864 >"$TMP_DIR/mixed"
cp "$TMP_DIR/mixed" "$MNT/mixed"
for f in mixed random; do
    "$TINY_BUILD/tiny" -c "$TMP_DIR/$f" >"$TMP_DIR/$f.sz"
done
sz=$(stat -c %s "$TMP_DIR/mixed.sz")
use=$(($(stat -c %b "$STORE/mixed") * 512))
diag "mixed 64 MiB: $use bytes allocated in the store, framing stream $sz ($(awk -v a="$use" -v b="$sz" 'BEGIN { printf "%.4f", a / b }')x)"
[ "$use" -le $((sz + sz / 100)) ] && cmp -s "$TMP_DIR/mixed" "$MNT/mixed"
ok $? "mixed data: allocated size within 1% of the framing stream"
sz=$(stat -c %s "$TMP_DIR/random.sz")
use=$(($(stat -c %b "$STORE/random") * 512))
diag "incompressible 8 MiB: $use bytes allocated, framing stream $sz ($(awk -v a="$use" -v b="$sz" 'BEGIN { printf "%.5f", a / b }')x)"
[ "$use" -le $((sz + sz / 2000)) ]
ok $? "incompressible data: allocated size within 0.05% of the framing stream"
rm -f "$MNT/mixed" "$TMP_DIR/mixed" "$TMP_DIR/mixed.sz" "$TMP_DIR/random.sz"

# --- fallocate: holes and zeroed ranges --------------------------------------------
# The expected bytes are made with dd, so the check does not depend on the
# file system of TMP_DIR.
zero_at() { # zero_at FILE OFFSET LENGTH
    head -c "$3" /dev/zero | dd of="$1" bs=1M seek="$2" oflag=seek_bytes conv=notrunc status=none
}
cp "$TMP_DIR/random" "$MNT/holes" && cp "$TMP_DIR/random" "$TMP_DIR/holes"
before=$(($(stat -c %b "$STORE/holes") * 512))
fallocate -p -o 1000000 -l 4194304 "$MNT/holes"
ok $? "fallocate --punch-hole"
zero_at "$TMP_DIR/holes" 1000000 4194304
cmp -s "$TMP_DIR/holes" "$MNT/holes" && [ "$(stat -c %s "$MNT/holes")" = 8388608 ]
ok $? "the hole reads as zeros, the rest and the size are kept"
after=$(($(stat -c %b "$STORE/holes") * 512))
diag "stored before the hole: $before bytes, after: $after"
[ $((before - after)) -ge $((4000000 - 4194304 / 64)) ]
ok $? "the hole frees the space of its data"
fallocate -z -o 7000000 -l 3000000 "$MNT/holes" && zero_at "$TMP_DIR/holes" 7000000 3000000
cmp -s "$TMP_DIR/holes" "$MNT/holes" && [ "$(stat -c %s "$MNT/holes")" = 10000000 ]
ok $? "fallocate --zero-range past the end zeroes and extends"
fallocate -z -n -o 9999000 -l 100000 "$MNT/holes" && zero_at "$TMP_DIR/holes" 9999000 1000
cmp -s "$TMP_DIR/holes" "$MNT/holes" && [ "$(stat -c %s "$MNT/holes")" = 10000000 ]
ok $? "fallocate --zero-range --keep-size keeps the size"
out=$(fallocate -c -o 0 -l 65536 "$MNT/holes" 2>&1)
[ $? -ne 0 ] && [[ $out == *"not supported"* ]] && cmp -s "$TMP_DIR/holes" "$MNT/holes"
ok $? "fallocate --collapse-range fails with EOPNOTSUPP and changes nothing"
rm -f "$MNT/holes" "$TMP_DIR/holes"
st=$(getfattr --only-values -n user.tinyfs.stored_size "$MNT/text" 2>/dev/null ||
    $PY -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.tinyfs.stored_size").decode())' "$MNT/text")
[ -n "$st" ] && [ "$st" -gt 0 ] && [ "$st" -lt "$(stat -c %s "$MNT/text")" ]
ok $? "user.tinyfs.stored_size gives the stored size ($st)"

# --- a file of 1 GiB -------------------------------------------------------------
# Mixed data: corpus text and random blocks; checksummed on the way in.
big_sum=$({
    for i in $(seq 220); do
        cat "$DATA_DIR"/*
        head -c 2097152 /dev/urandom
    done | head -c 1073741825
} | tee "$MNT/big" | sha256sum | cut -d' ' -f1)
[ "$(stat -c %s "$MNT/big")" = 1073741825 ]
ok $? "a file of 1 GiB + 1 written through the mount"
[ "$(sha256sum <"$MNT/big" | cut -d' ' -f1)" = "$big_sum" ]
ok $? "it reads back identical"
dd if="$MNT/big" bs=4096 skip=200000 count=1 status=none | cmp -s - <(tail -c +$((200000 * 4096 + 1)) "$MNT/big" | head -c 4096)
ok $? "a random 4 KiB read agrees with a sequential one"

# --- operations and errno values -------------------------------------------------
mkdir "$MNT/ops"
tap_run "ops" "$TINY_BUILD/tests/tinyfs_ops" "$MNT/ops"

# --- programs ---------------------------------------------------------------------
if command -v git >/dev/null; then
    (
        cd "$MNT" && mkdir repo && cd repo && git init -q . &&
            cp "$DATA_DIR/alice29.txt" "$DATA_DIR/urls.10K" . &&
            git add . && git -c user.name=t -c user.email=t@t commit -q -m first &&
            echo more >>alice29.txt && git -c user.name=t -c user.email=t@t commit -q -am second &&
            [ "$(git log --oneline | wc -l)" = 2 ] && git fsck --no-progress && git status --porcelain | [ -z "$(cat)" ]
    ) >/dev/null 2>&1
    ok $? "git init, add, commit, log and fsck in the mount"
else
    skip "git is not installed"
fi
if command -v sqlite3 >/dev/null; then
    {
        echo "create table t(id integer primary key, name text, v real);"
        echo "begin;"
        for i in $(seq 5000); do echo "insert into t(name, v) values('row $i', $i.5);"; done
        echo "commit;"
    } | sqlite3 "$MNT/db.sqlite" &&
        [ "$(sqlite3 "$MNT/db.sqlite" "select count(*), sum(v) from t where name like 'row %';")" = "5000|12505000.0" ] &&
        sqlite3 "$MNT/db.sqlite" "update t set name = 'x' where id % 7 = 0; delete from t where id % 11 = 0; pragma integrity_check;" | grep -qx ok
    ok $? "sqlite3: a table of 5000 rows created, queried, updated, integrity ok"
    # WAL mode: the -shm index is shared through mmap(MAP_SHARED) by every
    # process that has the database open
    sql_pids=()
    sqlite3 "$MNT/wal.sqlite" "pragma journal_mode=wal; create table t(p integer, i integer);" >/dev/null
    for p in 1 2 3 4; do
        { echo ".timeout 20000"; for i in $(seq 300); do echo "insert into t values($p, $i);"; done; } |
            sqlite3 "$MNT/wal.sqlite" &
        sql_pids+=($!)
    done
    for r in 1 2; do
        { echo ".timeout 20000"; for i in $(seq 50); do echo "select count(*) from t;"; done; } |
            sqlite3 "$MNT/wal.sqlite" >/dev/null &
        sql_pids+=($!)
    done
    wait "${sql_pids[@]}" # not tinyfs, which runs in the background too
    [ "$(sqlite3 "$MNT/wal.sqlite" "select count(*), count(distinct p), sum(i) from t; pragma integrity_check;" | tr '\n' ' ')" = "1200|4|180600 ok " ] &&
        [ ! -e "$MNT/wal.sqlite-wal" ] && [ ! -e "$MNT/wal.sqlite-shm" ]
    ok $? "sqlite3 in WAL mode: 4 writers and 2 readers at once, every row, integrity ok, WAL checkpointed away"
else
    skip "sqlite3 is not installed"
fi
printf 'version 1\n' >"$MNT/edit.txt"
printf 'version 2\n' >"$MNT/.edit.txt.swp" && mv "$MNT/.edit.txt.swp" "$MNT/edit.txt" &&
    [ "$(cat "$MNT/edit.txt")" = "version 2" ]
ok $? "editor-style save by rename"

# --- plain files in the store ------------------------------------------------------
cp "$DATA_DIR/lcet10.txt" "$STORE/plain.txt"
cp "$DATA_DIR/baddata1.snappy" "$STORE/foreign.sz"
cmp -s "$MNT/plain.txt" "$DATA_DIR/lcet10.txt" && cmp -s "$MNT/foreign.sz" "$DATA_DIR/baddata1.snappy" &&
    [ "$(stat -c %s "$MNT/plain.txt")" = "$(stat -c %s "$DATA_DIR/lcet10.txt")" ]
ok $? "plain files already in the store are served as they are"
cp "$DATA_DIR/asyoulik.txt" "$MNT/plain.txt" && cmp -s "$MNT/plain.txt" "$DATA_DIR/asyoulik.txt" &&
    [ "$(head -c 10 "$STORE/plain.txt" | od -An -tx1 | tr -d ' \n')" = ff060000734e61507059 ]
ok $? "a plain file is stored compressed once rewritten"

# --- corruption ---------------------------------------------------------------------
cp "$DATA_DIR/lcet10.txt" "$MNT/victim"
umount_fs
ok $? "unmount"
flip_byte "$STORE/victim" 70000
mount_fs
ok $? "mount again"
dd if="$MNT/victim" of=/dev/null bs=4096 skip=16 count=1 status=none 2>"$TMP_DIR/err"
rc=$?
[ $rc -ne 0 ] && grep -qi "input/output error" "$TMP_DIR/err"
ok $? "reading a corrupt chunk fails with EIO"
grep -q "victim" "$LOG"
ok $? "a log line names the corrupt file"
dd if="$MNT/victim" bs=4096 count=16 status=none | cmp -s - <(head -c 65536 "$DATA_DIR/lcet10.txt")
ok $? "the intact chunk before it still reads correctly"

# --- remount ----------------------------------------------------------------------------
diff -r --no-dereference "$GEN" "$MNT/rsync" >/dev/null && diff -r "$DATA_DIR" "$MNT/corpus" >/dev/null &&
    [ "$(sha256sum <"$MNT/big" | cut -d' ' -f1)" = "$big_sum" ]
ok $? "after a remount everything is still there"

# --- -o attr_timeout: attributes cached by the kernel ------------------------------------
# With attr_timeout=0 every stat reaches tinyfs, so a change made in the store
# behind the mount shows at once; with a timeout, the kernel answers from its
# cache, and what is written through the mount is still seen at once (du too).
umount_fs
mount_fs -o attr_timeout=0
ok $? "mount with -o attr_timeout=0"
printf short >"$STORE/behind.txt"
[ "$(stat -c %s "$MNT/behind.txt")" = 5 ] && printf 'much longer' >"$STORE/behind.txt" &&
    [ "$(stat -c %s "$MNT/behind.txt")" = 11 ]
ok $? "with 0 the kernel caches no attributes (a change in the store shows at once)"
umount_fs
mount_fs -o attr_timeout=60
ok $? "mount with -o attr_timeout=60"
printf short >"$STORE/behind.txt"
[ "$(stat -c %s "$MNT/behind.txt")" = 5 ] && printf 'much longer' >"$STORE/behind.txt" &&
    [ "$(stat -c %s "$MNT/behind.txt")" = 5 ]
ok $? "with it, stat answers from the kernel's cache"
cp "$DATA_DIR/alice29.txt" "$MNT/cached.txt" && cmp -s "$MNT/cached.txt" "$DATA_DIR/alice29.txt" &&
    [ "$(stat -c %s "$MNT/cached.txt")" = "$(stat -c %s "$DATA_DIR/alice29.txt")" ] &&
    diff -r "$DATA_DIR" "$MNT/corpus" >/dev/null
ok $? "and files written and read through the mount are right"
# du right after close(2), with st_blocks cached while writing
exec 3>"$MNT/blocks.txt" && cat "$DATA_DIR/alice29.txt" >&3 && stat "$MNT/blocks.txt" >/dev/null &&
    exec 3>&- && [ "$(stat -c %b "$MNT/blocks.txt")" = "$(stat -c %b "$STORE/blocks.txt")" ]
ok $? "st_blocks after close is the stored file's"
ln "$MNT/cached.txt" "$MNT/cached2.txt" &&
    [ "$(stat -c %h:%Z "$MNT/cached.txt")" = "$(stat -c %h:%Z "$STORE/cached.txt")" ] &&
    [ "$(stat -c %i:%h "$MNT/cached2.txt")" = "$(stat -c %i:%h "$MNT/cached.txt")" ]
ok $? "after link(2) both names show the new link count (one kernel inode)"
printf 'through the other name' >>"$MNT/cached2.txt" &&
    [ "$(stat -c %s "$MNT/cached.txt")" = $(($(stat -c %s "$DATA_DIR/alice29.txt") + 22)) ] &&
    tail -c 22 "$MNT/cached.txt" | grep -qx 'through the other name'
ok $? "a write through one name is seen through the other at once"
umount_fs
mount_fs
ok $? "mount again with the defaults"
printf x >"$TMP_DIR/acl-src" && chmod 640 "$TMP_DIR/acl-src" && cp -a "$TMP_DIR/acl-src" "$MNT/acl-dst" &&
    [ "$(stat -c %a "$MNT/acl-dst")" = 640 ] && [ "$(stat -c %a "$STORE/acl-dst")" = 640 ]
ok $? "cp -a: the mode its ACL xattr sets is seen at once, not the cached one of the create"

# --- multi-user: allow_other as root -------------------------------------------------------
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    umount_fs
    mount_fs -o allow_other
    ok $? "mount with -o allow_other"
    as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
    chmod 755 "$TMP_DIR"
    mkdir -m 1777 "$MNT/shared"
    echo secret >"$MNT/shared/rootonly" && chmod 600 "$MNT/shared/rootonly"
    as_nobody sh -c "echo mine > '$MNT/shared/byuser' && mkdir '$MNT/shared/userdir'"
    [ "$(stat -c %u:%g "$MNT/shared/byuser")" = 65534:65534 ] &&
        [ "$(stat -c %u:%g "$STORE/shared/userdir")" = 65534:65534 ]
    ok $? "files and directories created by a user belong to that user"
    ! as_nobody cat "$MNT/shared/rootonly" >/dev/null 2>&1
    ok $? "permissions are enforced for reading (EACCES)"
    ! as_nobody sh -c "echo x >> '$MNT/corpus/alice29.txt'" 2>/dev/null
    ok $? "permissions are enforced for writing"
    ! as_nobody chown 0 "$MNT/shared/byuser" 2>/dev/null
    ok $? "a user cannot give files away"
    as_nobody cat "$MNT/shared/byuser" | grep -qx mine
    ok $? "a user reads its own file"
else
    skip "not root or no setpriv" 6
fi

umount_fs
ok $? "unmount"

# --- daemon mode, and starting tinyd when none runs ----------------------------------------
OLD_TINYD_DIR=$TINYD_DIR
export TINYD_DIR=$TMP_DIR/autorun
"$TINY_BUILD/tinyfs" "$STORE" "$MNT" 2>>"$LOG"
ok $? "tinyfs in the background, with no tinyd running"
auto_pid=$(cat "$TINYD_DIR/tinyd.pid" 2>/dev/null)
[ -n "$auto_pid" ] && kill -0 "$auto_pid"
ok $? "it started tinyd in $TINYD_DIR"
cmp -s "$MNT/corpus/alice29.txt" "$DATA_DIR/alice29.txt" && echo new >"$MNT/new" && [ "$(cat "$MNT/new")" = new ]
ok $? "and serves the store"
[ -n "$auto_pid" ] && tinyd_stop "$auto_pid"
cmp -s "$MNT/corpus/lcet10.txt" "$DATA_DIR/lcet10.txt" && cp "$DATA_DIR/plrabn12.txt" "$MNT/after" &&
    cmp -s "$MNT/after" "$DATA_DIR/plrabn12.txt"
ok $? "after tinyd exits, the next requests reconnect (starting tinyd again)"
auto_pid=$(cat "$TINYD_DIR/tinyd.pid" 2>/dev/null)
fusermount3 -u "$MNT"
ok $? "fusermount3 -u unmounts"
wait_until 5000 sh -c "! grep -q ' $MNT fuse' /proc/mounts"
if [ -x /sbin/mount.fuse3 ]; then
    # what mount -t fuse.tinyfs and fstab lines run (mount(8) itself resets PATH)
    PATH=$TINY_BUILD:$PATH /sbin/mount.fuse3 "$STORE" "$MNT" -t tinyfs -o allow_other &&
        grep -q " $MNT fuse.tinyfs .*allow_other" /proc/mounts && cmp -s "$MNT/after" "$DATA_DIR/plrabn12.txt"
    ok $? "mount.fuse3 STORE MNT -t tinyfs (as mount -t fuse.tinyfs does)"
    fusermount3 -u "$MNT"
    wait_until 5000 sh -c "! grep -q ' $MNT fuse' /proc/mounts"
else
    skip "no /sbin/mount.fuse3"
fi
[ -n "$auto_pid" ] && tinyd_stop "$auto_pid"
export TINYD_DIR=$OLD_TINYD_DIR

stop_tinyd_checked
ipc_clean_since
done_testing
