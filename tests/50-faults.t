#!/bin/bash
# Faults with real processes and real signals: kill -9 of a client mid-
# stream, SIGTERM of tinyd with clients blocked in calls, kill -9 of tinyd
# (blocked client, stale objects, restart on the same dir), a second tinyd,
# a background tinyd logging to a file that is rotated under it.
. "$(dirname "$0")/lib.sh"
need_build tinyd tests/client
C=$TINY_BUILD/tests/client

# stat_field NAME: one field of tiny_stats, through a short-lived client
# (which counts itself among the clients).
stat_field() {
    "$C" stats | sed -n "s/.*\\b$1=\\([0-9]*\\).*/\\1/p"
}

# start_loop NAME SLOT_SIZE REQ_SIZE: a client compressing in a loop; sets
# LOOP_PID once it printed "ready".
start_loop() {
    "$C" loop "$2" "$3" >"$TMP_DIR/$1.out" 2>&1 &
    LOOP_PID=$!
    cleanup_add "kill -9 $LOOP_PID"
    wait_until 5000 grep -q '^ready' "$TMP_DIR/$1.out"
}

# Queue ids (of our uid) that exist now.
queue_ids() {
    awk -v u="$(id -u)" 'NR > 1 && $8 == u { print $2 }' /proc/sysvipc/msg | sort
}
seg_count() {
    awk 'NR > 1' /proc/sysvipc/shm | wc -l
}
queue_exists() {
    awk -v q="$1" 'NR > 1 && $2 == q { f = 1 } END { exit !f }' /proc/sysvipc/msg
}
clients_are() {
    [ "$(stat_field clients)" = "$1" ]
}

ipc_snapshot
start_tinyd_or_bail -w 2

# --- 1. kill -9 of a client in the middle of a stream -----------------------
base=$(stat_field clients)
is "$base" 1 "tiny_stats counts the asking client only"
start_loop victim 1048576 $((8 << 20))
ok $? "a streaming client is connected"
vpid=$LOOP_PID
start_loop other 65536 $((1 << 20))
ok $? "a second client streams next to it"
opid=$LOOP_PID
sleep 0.3
is "$(stat_field clients)" 3 "tinyd counts both streaming clients"
names=$(cat /proc/"$TINYD_PID"/task/*/comm | sort | uniq -c | awk '{ print $2 "x" $1 }' | tr '\n' ' ')
case " $names" in
*" tinyd-c$vpid"x1*" tinyd-c$opid"x1*" tinyd-worker"x2*) true ;;
*" tinyd-c$opid"x1*" tinyd-c$vpid"x1*" tinyd-worker"x2*) true ;;
*) false ;;
esac
ok $? "tinyd's threads are named: a reader per client, two workers ($names)"
vq=
for ((i = 0; i < 200; i++)); do
    vq=$(awk -v p="$vpid" 'NR > 1 && ($6 == p || $7 == p) { print $2 }' /proc/sysvipc/msg | head -1)
    [ -n "$vq" ] && break
done
[ -n "$vq" ]
ok $? "found the streaming client's private queue (${vq:-none})"
{ kill -KILL "$vpid"; wait "$vpid"; } 2>/dev/null
wait_until 2000 clients_are 2
ok $? "tinyd freed the killed client within 2 s (stats says 2 clients after $WAITED_MS ms)"
if [ -n "$vq" ]; then
    wait_until 2000 eval '! queue_exists $vq'
    ok $? "its queue $vq is gone within 2 s ($WAITED_MS ms)"
fi
kill -0 "$opid" 2>/dev/null
ok $? "the other client is still streaming"
"$C" roundtrip
ok $? "a new client works after the kill"
{ kill -KILL "$opid"; wait "$opid"; } 2>/dev/null
wait_until 2000 clients_are 1
ok $? "and the other one is freed too when killed"
wait_until 2000 eval '[ "$(seg_count)" = 0 ]'
ok $? "no segment is left once every client is gone ($(seg_count) after $WAITED_MS ms)"

# --- 2. SIGTERM of tinyd while clients are blocked in calls ------------------
pids=()
for i in 1 2 3; do
    start_loop blocked$i 4096 $((32 << 20))
    ok $? "blocked client $i is in a call (4 KiB slots, 32 MiB requests)"
    pids+=("$LOOP_PID")
done
sleep 0.3
t0=$(now_ms)
tinyd_stop
ok $? "tinyd stops on SIGTERM within 10 s with 3 clients in calls ($(($(now_ms) - t0)) ms)"
for i in 1 2 3; do
    pid=${pids[$((i - 1))]}
    _pid_gone "$pid" 3
    ok $? "client $i returned within 3 s of the SIGTERM"
    wait "$pid" 2>/dev/null
    rc=$?
    is "$rc" 0 "client $i's call failed with -ECONNRESET ($(grep result "$TMP_DIR/blocked$i.out"))"
done
ipc_clean_since "ipcs is clean after tinyd's SIGTERM"

# --- 3. kill -9 of tinyd ------------------------------------------------------
ipc_snapshot
start_tinyd_or_bail -w 2
dir=$TINYD_DIR
start_loop blocked 4096 $((32 << 20))
ok $? "a client is in a call"
bpid=$LOOP_PID
start_loop stopped 1048576 $((1 << 20))
ok $? "another client connected, to be stopped (its watchdog cannot clean up)"
spid=$LOOP_PID
sleep 0.2
kill -STOP "$spid"
sleep 0.2
kill -KILL "$TINYD_PID"
t0=$(now_ms)
_pid_gone "$bpid" 3
ok $? "the blocked client returned $(($(now_ms) - t0)) ms after kill -9 of tinyd (<= 3 s)"
wait "$bpid" 2>/dev/null
is "$?" 0 "with -ECONNRESET ($(grep result "$TMP_DIR/blocked.out"))"
stale=$(comm -13 <(awk '$1 == "q" { print $2 }' "$TMP_DIR/ipc.before" | sort) <(queue_ids))
[ -n "$stale" ]
ok $? "the killed tinyd left stale queues behind: $(echo $stale)"
TINYD_REUSE_DIR=$dir start_tinyd_or_bail -w 2
left=
for q in $stale; do
    # the new registration queue may not reuse an old id; anything old must go
    queue_exists "$q" && left="$left $q"
done
if [ "$TINY_TEST_IPCNS" = 1 ]; then
    [ -z "$left" ]
    ok $? "restart on the same dir removed the stale queues (left:${left:- none})"
else
    skip "shared IPC namespace: stale queues cannot be told from others'"
fi
"$C" roundtrip
ok $? "the restarted tinyd serves clients"
kill -CONT "$spid"
_pid_gone "$spid" 3
ok $? "the stopped client, resumed, notices its tinyd is gone within 3 s"
wait "$spid" 2>/dev/null
is "$?" 0 "with -ECONNRESET ($(grep result "$TMP_DIR/stopped.out"))"

# --- 4. a second tinyd on the same dir ----------------------------------------
timeout 10 "$TINY_BUILD/tinyd" -d "$dir" >"$TMP_DIR/second.out" 2>&1
is "$?" 1 "a second tinyd on the same dir exits 1"
grep -q "already running" "$TMP_DIR/second.out"
ok $? "saying it is already running ($(head -1 "$TMP_DIR/second.out"))"
timeout 10 "$TINY_BUILD/tinyd" -f -d "$dir" >"$TMP_DIR/second.out" 2>&1
is "$?" 1 "in the foreground too"
p2=$(cat "$dir/tinyd.pid" 2>/dev/null)
if [ -n "$p2" ] && [ "$p2" != "$TINYD_PID" ]; then
    diag "the second tinyd replaced the pid file ($p2)"
    _tinyd_pids+=("$p2")
fi
kill -0 "$TINYD_PID" 2>/dev/null && "$C" roundtrip
ok $? "the first tinyd still serves"

# --- 5. a log file, rotated -----------------------------------------------------
# A background tinyd with --log: what it says reaches the file (here: a
# killed client freed), a rotation (mv, SIGHUP) moves it to a new file, and
# a log file it cannot open stops it before it creates anything.
first_pid=$TINYD_PID first_dir=$TINYD_DIR
log=$TMP_DIR/tinyd.log
tinyd_start -l "$log"
ok $? "tinyd starts in the background with --log"
grep -q "tinyd\[$TINYD_PID\]: ready on $TINYD_DIR" "$log"
ok $? "its log file has the ready line, with its pid ($(head -1 "$log" | cut -c1-60)...)"
start_loop logged 65536 $((1 << 20))
ok $? "a client streams"
{ kill -KILL "$LOOP_PID"; wait "$LOOP_PID"; } 2>/dev/null
wait_until 3000 grep -q "pid $LOOP_PID) gone: process exited" "$log"
ok $? "the log file says when the killed client is freed"
mv "$log" "$log.1" && kill -HUP "$TINYD_PID"
wait_until 3000 grep -q "stats: " "$log"
ok $? "after mv and SIGHUP, tinyd writes to a new file (the statistics)"
grep -q "stats: " "$log.1"
is $? 1 "and nothing more to the old one"
tinyd_stop
wait_until 3000 grep -q "tinyd\[[0-9]*\]: stopped" "$log"
ok $? "SIGTERM: the new file has the stop"
dir=$(mktemp -d "$TMP_DIR/run.XXXXXX")
"$TINY_BUILD/tinyd" -d "$dir" -l "$TMP_DIR/no/such/dir/tinyd.log" >"$TMP_DIR/nolog.out" 2>&1
is $? 1 "a log file that cannot be opened: exit 1"
grep -q "cannot open the log file $TMP_DIR/no/such/dir/tinyd.log: no such file or directory" \
    "$TMP_DIR/nolog.out"
ok $? "saying which file and why ($(head -1 "$TMP_DIR/nolog.out"))"
[ ! -e "$dir/tinyd.pid" ] && [ ! -e "$dir/tinyd.key" ]
ok $? "before it wrote anything in its run directory"
TINYD_PID=$first_pid TINYD_DIR=$first_dir

stop_tinyd_checked
ipc_clean_since
done_testing
