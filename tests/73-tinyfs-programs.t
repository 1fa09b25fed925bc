#!/bin/bash
# 73-tinyfs-programs.t - unmodified programs at work in a tinyfs mount, each
# checked against the same work done in a plain directory:
#   - a compiler: the project's own sources built there with make, gcc, ar
#     and ld (every object, archive and binary byte-identical to the plain
#     build), make's timestamp checks, a program and a shared library
#     executed and loaded from the mount;
#   - editors: vim (its swap file beside the text, an in-place write), ed,
#     sed -i, perl -i, patch, sort -o, dd conv=notrunc, on a file of several
#     chunk groups;
#   - everything again after a remount, and tiny fsck of the store.
. "$(dirname "$0")/lib.sh"

need_build tinyfs tinyd tiny
command -v make >/dev/null && command -v cc >/dev/null || skip_all "make or cc is missing"
# the builds below are a user's plain `make`, also under `make SANITIZE=... test`
unset MAKEFLAGS MFLAGS MAKELEVEL SANITIZE O

SRC=$(cd "$TESTS_DIR/.." && pwd)
PLAIN=$TMP_DIR/plain
fs_init
start_tinyd_or_bail
ipc_snapshot
mount_fs_or_bail

# same_trees A B: the same files, byte for byte (symlinks by their target).
same_trees() {
    diff -r --no-dereference "$1" "$2" >"$TMP_DIR/diff.out" 2>&1 && return 0
    diag "$(head -5 "$TMP_DIR/diff.out")"
    return 1
}

# --- a compiler ---------------------------------------------------------------
# The debug information names the build directory: mapped away, the two
# builds must come out identical.
build() { # build DIR [MAKE ARGS...]: the libraries, the programs, quietly
    local dir=$1
    shift
    (cd "$dir" && CFLAGS="-O2 -g -ffile-prefix-map=$dir=." make -j2 "$@" \
        build/libtiny.a build/libtiny.so.1 build/tinyd build/tiny ${FUSE_OK:+build/tinyfs}) \
        >"$TMP_DIR/make.out" 2>&1
}
FUSE_OK=
pkg-config --exists fuse3 2>/dev/null && FUSE_OK=1
for d in "$PLAIN/src" "$MNT/src"; do
    mkdir -p "$d" && cp -a "$SRC/Makefile" "$SRC/libtiny" "$SRC/tinyd" "$SRC/tiny" "$SRC/tinyfs" "$d/"
done
same_trees "$PLAIN/src" "$MNT/src"
ok $? "cp -a of the sources into the mount"
build "$PLAIN/src"
ok $? "make builds the sources in a plain directory"
build "$MNT/src"
ok $? "make builds the same sources in the mount" || diag "$(tail -5 "$TMP_DIR/make.out")"
same_trees "$PLAIN/src/build" "$MNT/src/build"
ok $? "every object, archive and program built in the mount is byte-identical"
(cd "$MNT/src" && make -q build/tiny build/tinyd build/libtiny.so.1)
ok $? "make -q: the build in the mount is up to date"
touch "$MNT/src/libtiny/req.c"
(cd "$MNT/src" && make -q build/tiny)
is $? 1 "make -q: a touched source makes its program out of date"
build "$MNT/src" && grep -c '  CC ' "$TMP_DIR/make.out" >"$TMP_DIR/ncc"
is "$(cat "$TMP_DIR/ncc")" 2 "make rebuilds only the touched source's two objects"
same_trees "$PLAIN/src/build" "$MNT/src/build"
ok $? "and the rebuilt files are byte-identical again"

"$MNT/src/build/tiny" -c "$DATA_DIR/alice29.txt" >"$TMP_DIR/alice.mnt.sz" &&
    "$TINY_BUILD/tiny" -c "$DATA_DIR/alice29.txt" | cmp -s - "$TMP_DIR/alice.mnt.sz"
ok $? "the tiny built in the mount runs from the mount and compresses like the tested one"

cat >"$MNT/src/hello.c" <<'EOF'
#include <errno.h>
#include <stdio.h>
#include <tiny.h>

int main(void)
{
    tiny_conn *c;
    unsigned char out[64];
    int rc = tiny_connect(&c, NULL);

    if (rc < 0) {
        fprintf(stderr, "hello: %s\n", tiny_strerror(rc));
        return 1;
    }
    rc = (int)tiny_compress(c, "hello, hello, hello", 19, out, sizeof(out));
    tiny_disconnect(c);
    printf("%d\n", rc);
    return rc > 0 ? 0 : 1;
}
EOF
got=$(cd "$MNT/src" && cc -Ilibtiny -o hello hello.c -Lbuild -ltiny 2>&1 &&
    LD_LIBRARY_PATH=$MNT/src/build ./hello)
ok $? "a program linked in the mount loads libtiny.so from the mount and calls tinyd" ||
    diag "$got"
LD_LIBRARY_PATH=$MNT/src/build ldd "$MNT/src/hello" | grep -q "libtiny.so.1 => $MNT/src/build/"
ok $? "ldd: the library comes from the mount"

# --- editors --------------------------------------------------------------------
# A text of several chunk groups (16 x 64 KiB each), so that edits move data
# across chunk and group boundaries.
mkdir -p "$PLAIN/ed" "$MNT/ed"
for _ in 1 2 3; do cat "$DATA_DIR/lcet10.txt" "$DATA_DIR/plrabn12.txt" "$DATA_DIR/alice29.txt"; done \
    >"$PLAIN/ed/text"
cp "$PLAIN/ed/text" "$MNT/ed/text"
cmp -s "$PLAIN/ed/text" "$MNT/ed/text"
ok $? "a $(($(stat -c %s "$PLAIN/ed/text") / 1024)) KiB text in both directories"

# edit DESC CMD...: runs CMD with FILE replaced by the text's path, on the
# plain copy and in the mount, and compares the results.
edit() {
    local desc=$1 d rc=0 a
    shift
    for d in "$PLAIN/ed" "$MNT/ed"; do
        local argv=()
        for a in "$@"; do argv+=("${a//FILE/$d/text}"); done
        (cd "$d" && "${argv[@]}") >"$TMP_DIR/edit.out" 2>&1 </dev/null || {
            rc=1
            diag "$desc in $d: $(head -3 "$TMP_DIR/edit.out")"
        }
    done
    [ $rc = 0 ] && cmp "$PLAIN/ed/text" "$MNT/ed/text" >"$TMP_DIR/edit.out" 2>&1 ||
        { rc=1 && diag "$(cat "$TMP_DIR/edit.out")"; }
    ok $rc "$desc"
}

VIM=
for v in vim vim.basic vim.tiny; do command -v $v >/dev/null && VIM=$v && break; done
if [ -n "$VIM" ]; then
    # no -n: the swap file lives next to the text while vim runs
    edit "vim: substitute, delete the empty lines, write" \
        $VIM -N -u NONE -i NONE -es -c '%s/the/THE/g' -c 'g/^$/d' -c 'wq' FILE
    edit "vim: move the first 200 lines to the end, write" \
        $VIM -N -u NONE -i NONE -es -c '1,200m$' -c 'wq' FILE
    [ "$(ls -A "$MNT/ed")" = text ]
    ok $? "vim removes its swap file"
else
    skip "vim is not installed" 3
fi
if command -v ed >/dev/null; then
    edit "ed: delete, append, write in place" \
        sh -c "printf '%s\n' 1,40d '\$a' 'the end' . w q | ed -s FILE"
else
    skip "ed is not installed"
fi
edit "sed -i: a new file renamed over the old" sed -i 's/and/AND/g' FILE
edit "perl -pi: every word capitalised" perl -pi -e 's/(\w+)/\u$1/g' FILE
awk 'NR % 97 == 0 { print "patched " NR; next } { print }' "$PLAIN/ed/text" >"$TMP_DIR/patched"
diff -u "$PLAIN/ed/text" "$TMP_DIR/patched" >"$TMP_DIR/text.diff"
edit "patch: a diff of $(grep -c '^@@' "$TMP_DIR/text.diff") hunks" sh -c "patch -s FILE <'$TMP_DIR/text.diff'"
edit "sort -o onto its own input" sort -o FILE FILE
edit "dd conv=notrunc: 10 KiB overwritten across a chunk boundary" \
    dd if="$DATA_DIR/alice29.txt" of=FILE bs=1024 seek=59 count=10 conv=notrunc status=none
edit "an append with >>" sh -c "cat '$DATA_DIR/alice29.txt' >>FILE"

# --- after a remount ----------------------------------------------------------------
umount_fs
ok $? "unmounts"
mount_fs
ok $? "mounts again"
same_trees "$PLAIN/src/build" "$MNT/src/build" && cmp -s "$PLAIN/ed/text" "$MNT/ed/text"
ok $? "the build and the edited text read back identical after the remount"
"$MNT/src/build/tinyd" --version >/dev/null
ok $? "the tinyd built in the mount runs after the remount"
umount_fs
"$TINY_BUILD/tiny" fsck -q "$STORE" >"$TMP_DIR/fsck.out" 2>&1
ok $? "tiny fsck finds the store sound" || diag "$(head -5 "$TMP_DIR/fsck.out")"

stop_tinyd_checked
ipc_clean_since
done_testing
