#!/bin/bash
# Framing-format interop with python3-snappy, both directions, plus a
# python-made stream using every chunk kind (framing_interop.py).
. "$(dirname "$0")/lib.sh"
need_build tinyd tests/client
PY=/usr/bin/python3
if ! "$PY" -c 'import snappy' 2>/dev/null; then
    skip_all "$PY with python3-snappy is not installed"
fi
INTEROP=$TESTS_DIR/framing_interop.py
C=$TINY_BUILD/tests/client
W=$TMP_DIR/interop
mkdir -p "$W"

# step CMD...: runs CMD, showing its output when it fails.
step() {
    if ! "$@" >"$W/step.out" 2>&1; then
        diag "failed: $*" "$(head -5 "$W/step.out")"
        return 1
    fi
}
# same A B: cmp, describing a difference.
same() {
    cmp -s "$1" "$2" && return 0
    diag "$(basename "$2") differs from $(basename "$1"): $(stat -c %s "$2") bytes instead of $(stat -c %s "$1")"
    return 1
}

ipc_snapshot
start_tinyd_or_bail

"$C" gen $((8 << 20)) 2024 "$W/mixed.bin"
ok $? "generated 8 MiB of mixed data"
inputs=("$W/mixed.bin")
for f in "$DATA_DIR"/*; do
    case $f in *.md | *.snappy) continue ;; esac
    inputs+=("$f")
done
: >"$W/empty"
inputs+=("$W/empty")

for f in "${inputs[@]}"; do
    b=$(basename "$f")
    # python -> tiny (python3-snappy writes nothing at all, not even the
    # stream identifier, for an empty input; tiny rightly refuses that)
    if [ -s "$f" ]; then
        step "$PY" "$INTEROP" compress "$f" "$W/$b.py.sz" &&
            step "$C" file frame-decompress "$W/$b.py.sz" "$W/$b.py.out" &&
            same "$f" "$W/$b.py.out"
        ok $? "$b: python3-snappy compresses, tiny FRAME_DECOMPRESS restores it"
    fi
    # tiny -> python
    step "$C" file frame-compress "$f" "$W/$b.tiny.sz" &&
        step "$PY" "$INTEROP" decompress "$W/$b.tiny.sz" "$W/$b.tiny.out" &&
        same "$f" "$W/$b.tiny.out"
    ok $? "$b: tiny FRAME_COMPRESS, python3-snappy restores it"
    rm -f "$W/$b".*
done

for f in "$DATA_DIR/alice29.txt" "$DATA_DIR/fireworks.jpeg" "$W/mixed.bin"; do
    b=$(basename "$f")
    step "$PY" "$INTEROP" craft "$f" "$W/$b.craft.sz" &&
        step "$PY" "$INTEROP" decompress "$W/$b.craft.sz" "$W/$b.craft.py" &&
        same "$f" "$W/$b.craft.py"
    ok $? "$b: the hand-made stream (all chunk kinds) is valid for python3-snappy"
    step "$C" file frame-decompress "$W/$b.craft.sz" "$W/$b.craft.out" &&
        same "$f" "$W/$b.craft.out"
    ok $? "$b: tiny decodes padding, skippable, uncompressed chunks and a repeated identifier"
done

# python3-snappy rejects what tiny rejects: a flipped byte in a chunk.
cp "$W/mixed.bin" "$W/m2"
step "$C" file frame-compress "$W/m2" "$W/m2.sz"
flip_byte "$W/m2.sz" 30
out=$("$C" file frame-decompress "$W/m2.sz" "$W/m2.out")
rc=$?
[ $rc -ne 0 ] && [[ $out == "error -74 "* ]]
ok $? "a corrupted tiny stream is refused by tiny with -EBADMSG ($out)"
"$PY" "$INTEROP" decompress "$W/m2.sz" "$W/m2.py" 2>/dev/null
[ $? -ne 0 ]
ok $? "and by python3-snappy"

stop_tinyd_checked
ipc_clean_since
done_testing
