#!/bin/bash
# The `tiny` command-line tool against a real tinyd: gzip-like files,
# -c/-k/-f, stdin/stdout, errors and exit codes, `tiny stats`, and
# python3-snappy reading what it writes.
. "$(dirname "$0")/lib.sh"
need_build tinyd tiny tests/client
TINY=$TINY_BUILD/tiny
C=$TINY_BUILD/tests/client
W=$TMP_DIR/cli
mkdir -p "$W"
cd "$W" || exit 1

ipc_snapshot

# Without a daemon: a clear error and exit 1.
export TINYD_DIR=$TMP_DIR/nodaemon
mkdir -p "$TINYD_DIR"
cp "$DATA_DIR/alice29.txt" a
"$TINY" -k a 2>err
is "$?" 1 "no tinyd: exit status 1"
grep -q "cannot connect to tinyd" err
ok $? "no tinyd: says it cannot connect ($(head -1 err))"
[ ! -e a.sz ] && [ -e a ]
ok $? "no tinyd: no output file, input untouched"

start_tinyd_or_bail

# compress FILE -> FILE.sz, original removed; decompress back.
cp "$DATA_DIR/alice29.txt" a
chmod 640 a
touch -d '2001-02-03 04:05:06' a
"$TINY" a
is "$?" 0 "tiny FILE exits 0"
[ -f a.sz ] && [ ! -e a ]
ok $? "tiny FILE writes FILE.sz and removes FILE"
is "$(stat -c %a a.sz)" 640 "the mode is kept"
is "$(stat -c %Y a.sz)" "$(date -d '2001-02-03 04:05:06' +%s)" "the mtime is kept"
"$C" file frame-decompress a.sz a.check && cmp -s a.check "$DATA_DIR/alice29.txt"
ok $? "FILE.sz is a framing-format stream of FILE"
"$TINY" -d a.sz
is "$?" 0 "tiny -d FILE.sz exits 0"
[ -f a ] && [ ! -e a.sz ] && cmp -s a "$DATA_DIR/alice29.txt"
ok $? "tiny -d restores FILE and removes FILE.sz"
"$TINY" compress a && "$TINY" decompress a.sz && cmp -s a "$DATA_DIR/alice29.txt"
ok $? "the compress/decompress subcommands do the same"

# -k, -c, -f
"$TINY" -k a
[ -f a ] && [ -f a.sz ]
ok $? "-k keeps the input"
echo "old" >a.sz
"$TINY" -k a 2>err
is "$?" 2 "an existing FILE.sz is not overwritten: warning exit 2, as gzip"
is "$(cat a.sz)" old "FILE.sz is unchanged"
grep -q "already exists" err
ok $? "saying so ($(head -1 err))"
"$TINY" -k -f a
is "$?" 0 "-f overwrites"
"$TINY" -c a >c.sz
is "$?" 0 "-c exits 0"
[ -f a ] && cmp -s c.sz a.sz
ok $? "-c writes the same stream to stdout and keeps the input"
"$TINY" -d -c a.sz | cmp -s - "$DATA_DIR/alice29.txt"
ok $? "-d -c decompresses to stdout"

# stdin / stdout, several files, sizes at the edges
for n in 0 1 65535 65536 65537 $((5 << 20)); do
    "$C" gen "$n" "$n" "in.$n"
    "$TINY" <"in.$n" | "$TINY" -d | cmp -s - "in.$n"
    ok $? "stdin to stdout round trip of $n bytes"
done
"$C" gen $((20 << 20)) 7 big
"$TINY" -c - <big >big.sz && "$TINY" -d -c big.sz | cmp -s - big
ok $? "'-' is stdin; a 20 MiB file round-trips"
cp "$DATA_DIR/html" h1
cp "$DATA_DIR/urls.10K" h2
"$TINY" h1 h2 && [ -f h1.sz ] && [ -f h2.sz ] && "$TINY" -d h1.sz h2.sz &&
    cmp -s h1 "$DATA_DIR/html" && cmp -s h2 "$DATA_DIR/urls.10K"
ok $? "several files in one call"

# python3-snappy reads what tiny writes, and the reverse
if /usr/bin/python3 -c 'import snappy' 2>/dev/null; then
    /usr/bin/python3 "$TESTS_DIR/framing_interop.py" decompress a.sz a.py && cmp -s a.py a
    ok $? "python3-snappy decompresses tiny's output"
    /usr/bin/python3 "$TESTS_DIR/framing_interop.py" compress h1 p.sz && "$TINY" -d -c p.sz |
        cmp -s - h1
    ok $? "tiny decompresses python3-snappy's output"
else
    skip "no python3-snappy" 2
fi

# errors
printf 'this is not snappy' >bad.sz
"$TINY" -d bad.sz 2>err
is "$?" 1 "garbage: exit 1"
grep -q "not in snappy framing format" err
ok $? "garbage: not in snappy framing format ($(head -1 err))"
[ ! -e bad ]
ok $? "garbage: no output left behind"
head -c $(($(stat -c %s big.sz) / 2)) big.sz >trunc.sz
ls -A >"$TMP_DIR/ls.before"
"$TINY" -d trunc.sz 2>err
is "$?" 1 "truncated stream: exit 1"
grep -q "unexpected end of file" err
ok $? "truncated stream: unexpected end of file ($(head -1 err))"
ls -A >"$TMP_DIR/ls.after"
[ ! -e trunc ] && cmp -s "$TMP_DIR/ls.before" "$TMP_DIR/ls.after"
ok $? "truncated stream: no partial or temporary file left"
cp a.sz flip.sz
flip_byte flip.sz 40
"$TINY" -d -c flip.sz >/dev/null 2>err
is "$?" 1 "a corrupt chunk: exit 1 ($(head -1 err))"
"$TINY" -d h1 2>err
is "$?" 2 "decompressing a name without .sz: warning exit 2"
grep -q "unknown suffix" err
ok $? "saying unknown suffix ($(head -1 err))"
"$TINY" a.sz 2>err
rc=$?
[ "$rc" -eq 2 ] && [ -f a.sz ] && [ ! -e a.sz.sz ]
ok $? "compressing a .sz file is skipped with a warning (exit $rc)"
"$TINY" nosuchfile 2>err
is "$?" 1 "a missing input: exit 1 ($(head -1 err))"
"$TINY" --no-such-option 2>/dev/null
rc=$?
[ "$rc" -ne 0 ]
ok $? "a bad option fails (exit $rc)"

# stats
out=$("$TINY" stats)
is "$?" 0 "tiny stats exits 0"
grep -qi "clients" <<<"$out"
ok $? "tiny stats shows the clients"
grep -qi "p99" <<<"$out"
ok $? "tiny stats shows latency percentiles"
if out=$("$TINY" stats --json 2>/dev/null); then
    /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d else 1)' <<<"$out"
    ok $? "tiny stats --json is JSON"
else
    skip "tiny stats --json failed"
fi
"$TINY" -V >/dev/null
is "$?" 0 "tiny -V exits 0"
"$TINY" -h >/dev/null
is "$?" 0 "tiny -h exits 0"

stop_tinyd_checked
ipc_clean_since
done_testing
