#!/bin/bash
# 90-valgrind.t - tinyd, libtiny clients, the tiny tool and a tinyfs mount,
# each under valgrind's memcheck on a short real workload: no invalid access,
# no use of uninitialised memory, nothing definitely or indirectly lost at
# exit (tinyd after SIGTERM, tinyfs after unmount). The inputs are small:
# memcheck runs code 20-50 times slower.
. "$(dirname "$0")/lib.sh"

need_build tinyd tiny tinyfs tests/client tests/t_buf
command -v valgrind >/dev/null || skip_all "valgrind is not installed"
if ldd "$TINY_BUILD/tinyd" | grep -q 'lib[at]san'; then
    skip_all "a sanitizer build (memcheck cannot run sanitized programs)"
fi

W=$TMP_DIR/vg
mkdir -p "$W"
cd "$W" || exit 1

# memcheck with an exit status of 99 on a memory error or a leak
VG=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect)

# vg LOG CMD...: CMD under memcheck, its report in LOG.
vg() {
    local log=$1
    shift
    "${VG[@]}" --log-file="$log" "$@"
}

# vg_clean LOG DESC: the test that valgrind reported nothing into LOG.
vg_clean() {
    if [ -s "$1" ]; then
        ok 1 "$2"
        diag "$(head -40 "$1")"
    else
        ok 0 "$2"
    fi
}

ipc_snapshot

# --- tinyd under memcheck, served by clients that are themselves checked -----
export TINYD_DIR=$W/run
mkdir -p "$TINYD_DIR"
"${VG[@]}" --log-file="$W/tinyd.vg" "$TINY_BUILD/tinyd" -f -d "$TINYD_DIR" -w 2 2>"$W/tinyd.log" &
VG_TINYD=$!
cleanup_add "kill -KILL $VG_TINYD"
tinyd_answers() { "$TINY_BUILD/tests/client" connect >/dev/null 2>&1; }
wait_until 60000 tinyd_answers
ok $? "tinyd starts under valgrind"

cp "$DATA_DIR/alice29.txt" "$DATA_DIR/html" "$DATA_DIR/fireworks.jpeg" .
for op in compress frame-compress; do
    de=${op/compress/decompress}
    bad=0
    for f in alice29.txt html fireworks.jpeg; do
        vg "$W/client-$op-$f.vg" "$TINY_BUILD/tests/client" file "$op" "$f" "$f.$op" &&
            vg "$W/client-$de-$f.vg" "$TINY_BUILD/tests/client" file "$de" "$f.$op" "$f.back" &&
            cmp -s "$f" "$f.back" || bad=1
    done
    ok $bad "$op and $de round trips of three corpus files under valgrind"
    cat "$W/client-$op-"*.vg "$W/client-$de-"*.vg >"$W/client-$op.vg" 2>/dev/null
    vg_clean "$W/client-$op.vg" "libtiny: no memory error or leak in $op / $de"
done

printf 'garbage that is no snappy stream' >bad.sz
vg "$W/client-bad.vg" "$TINY_BUILD/tests/client" file decompress bad.sz bad.out >bad.err
is "$?" 1 "a malformed raw stream fails cleanly under valgrind"
vg_clean "$W/client-bad.vg" "libtiny: no memory error or leak on a refused request"

vg "$W/t_buf.vg" "$TINY_BUILD/tests/t_buf" 65536 >t_buf.tap 2>&1
is "$?" 0 "zero-copy requests with callbacks (t_buf, 64 KiB slots) under valgrind"
vg_clean "$W/t_buf.vg" "libtiny: no memory error or leak in zero-copy and asynchronous requests"

vg "$W/tiny.vg" "$TINY_BUILD/tiny" -k alice29.txt &&
    vg "$W/tiny-d.vg" "$TINY_BUILD/tiny" -d -c alice29.txt.sz >alice.back &&
    cmp -s alice29.txt alice.back
ok $? "tiny compress and decompress -c under valgrind"
vg "$W/tiny-stats.vg" "$TINY_BUILD/tiny" stats >stats.out
ok $? "tiny stats under valgrind"
cat "$W"/tiny*.vg >"$W/tiny-all.vg"
vg_clean "$W/tiny-all.vg" "tiny: no memory error or leak"

# --- tinyfs under memcheck ------------------------------------------------------
# read_ahead_kb=0: the thread that sets it stats the mount point, which
# waits for the FUSE loop, and memcheck does not let other threads run during
# a stat (it runs one thread at a time and expects stat not to block).
fs_init
"${VG[@]}" --log-file="$W/tinyfs.vg" \
    "$TINY_BUILD/tinyfs" -f -o read_ahead_kb=0 "$STORE" "$MNT" 2>>"$LOG" &
FS_PID=$!
wait_until 60000 is_mounted "$MNT"
ok $? "tinyfs mounts under valgrind"
"$TINY_BUILD/tests/client" gen 300000 5 gen.bin
cp alice29.txt html fireworks.jpeg gen.bin "$MNT/" &&
    mkdir "$MNT/d" && mv "$MNT/html" "$MNT/d/html" &&
    dd if=alice29.txt of="$MNT/gen.bin" bs=1000 seek=70 conv=notrunc status=none &&
    truncate -s 100000 "$MNT/fireworks.jpeg" && ln "$MNT/alice29.txt" "$MNT/d/link"
ok $? "cp, mkdir, rename, an overwrite, truncate and link in the mount"
dd if=alice29.txt of=gen.bin bs=1000 seek=70 conv=notrunc status=none
truncate -s 100000 fireworks.jpeg
cmp -s alice29.txt "$MNT/d/link" && cmp -s html "$MNT/d/html" && cmp -s gen.bin "$MNT/gen.bin" &&
    cmp -s fireworks.jpeg "$MNT/fireworks.jpeg"
ok $? "every file reads back as written"
rm -r "$MNT/d" "$MNT/gen.bin"
ok $? "rm -r in the mount"
fusermount3 -u "$MNT"
wait "$FS_PID"
is "$?" 0 "tinyfs exits 0 after unmount under valgrind"
vg_clean "$W/tinyfs.vg" "tinyfs: no memory error or leak"

# --- tinyd's exit -----------------------------------------------------------------
kill -TERM "$VG_TINYD"
wait "$VG_TINYD"
is "$?" 0 "tinyd exits 0 on SIGTERM under valgrind"
vg_clean "$W/tinyd.vg" "tinyd: no memory error or leak after serving every client above"
grep -q "stopped" "$W/tinyd.log"
ok $? "tinyd logged its stop"

ipc_clean_since
done_testing
