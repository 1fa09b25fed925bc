# tests/lib.sh - harness of the TAP test scripts (sourced by tests/*.t).
#
# Every script runs in a private System V IPC namespace when it can (root or
# user namespaces): the ipcs diff of ipc_clean_since then sees only what the
# script created, even while other tinyds run on the machine. Without one,
# the diff is machine-wide and other users' objects are ignored by owner.
#
# Provides:
#   plan N | done_testing            the TAP plan (done_testing prints it last)
#   ok STATUS DESC                   pass when STATUS is 0:  cmp a b; ok $? "same"
#   is GOT EXPECTED DESC             string comparison
#   skip REASON [N]                  N skipped tests
#   skip_all REASON                  skip the whole script
#   diag MSG...                      a comment line
#   tap_run DESC CMD...              run a C test program and splice its TAP in
#   tinyd_start [ARGS...]            private run dir, TINYD_DIR exported, daemon up
#   tinyd_stop                       SIGTERM, wait (<= 10 s), fail otherwise
#   ipc_snapshot / ipc_clean_since   no queue or segment left behind
#   cleanup_add CMD                  run CMD at exit (reverse order)
#
# Environment: TINY_BUILD is the absolute build directory.

set -u
shopt -s lastpipe

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATA_DIR=$TESTS_DIR/data
# Python snippets import snappy_compat (python3-snappy with a working CRC-32C).
export PYTHONPATH=$TESTS_DIR${PYTHONPATH:+:$PYTHONPATH}

if [ -z "${TINY_BUILD:-}" ]; then
    echo "1..0 # SKIP TINY_BUILD is not set (run through make test)"
    exit 0
fi

# Re-run the script inside a private IPC namespace.
if [ -z "${TINY_TEST_IPCNS:-}" ] && command -v unshare >/dev/null &&
    unshare --ipc true 2>/dev/null; then
    export TINY_TEST_IPCNS=1
    exec unshare --ipc -- "$BASH" "$0" "$@"
fi
: "${TINY_TEST_IPCNS:=0}"

_tap_n=0
_tap_failed=0
_tap_planned=

plan() {
    _tap_planned=$1
    echo "1..$1"
}

ok() {
    local status=$1
    shift
    _tap_n=$((_tap_n + 1))
    if [ "$status" -eq 0 ]; then
        echo "ok $_tap_n - $*"
    else
        _tap_failed=$((_tap_failed + 1))
        echo "not ok $_tap_n - $*"
        local i=1
        echo "#   failed at ${BASH_SOURCE[$i]##*/} line ${BASH_LINENO[$((i - 1))]}"
    fi
    return "$status"
}

is() {
    local got=$1 exp=$2
    shift 2
    if [ "$got" = "$exp" ]; then
        ok 0 "$@"
    else
        ok 1 "$@"
        echo "#          got: '$got'"
        echo "#     expected: '$exp'"
        return 1
    fi
}

skip() {
    local reason=$1 n=${2:-1} i
    for ((i = 0; i < n; i++)); do
        _tap_n=$((_tap_n + 1))
        echo "ok $_tap_n # skip $reason"
    done
}

skip_all() {
    echo "1..0 # SKIP $*"
    _tap_planned=0
    exit 0
}

diag() {
    local line
    printf '%s\n' "$*" | while IFS= read -r line; do echo "# $line"; done
}

done_testing() {
    if [ -z "$_tap_planned" ]; then
        echo "1..$_tap_n"
        _tap_planned=$_tap_n
    elif [ "$_tap_planned" -ne "$_tap_n" ]; then
        diag "planned $_tap_planned tests but ran $_tap_n"
        _tap_failed=$((_tap_failed + 1))
    fi
}

# tap_run DESC CMD...: runs a C test program (tests/tap.h), renumbering its
# ok lines into this script's sequence; its other output becomes comments.
# One more test asserts that it exited with status 0 (catches crashes).
tap_run() {
    local desc=$1 line rc=
    shift
    { "$@" 2>&1; echo "__tap_exit $?"; } | while IFS= read -r line; do
        case $line in
        "__tap_exit "*) rc=${line#__tap_exit } ;;
        "ok "[0-9]*)
            line=${line#ok }
            line=${line#"${line%%[!0-9]*}"}
            ok 0 "$desc:${line# -}"
            ;;
        "not ok "[0-9]*)
            line=${line#not ok }
            line=${line#"${line%%[!0-9]*}"}
            ok 1 "$desc:${line# -}"
            ;;
        1..*) ;;
        "Bail out!"*) ok 1 "$desc: $line" ;;
        "#"*) echo "$line" ;;
        *) echo "# $line" ;;
        esac
    done
    [ "${rc:-1}" -eq 0 ]
    ok $? "$desc: exited with status 0 (got ${rc:-none})"
}

# --- cleanup -----------------------------------------------------------------

_cleanups=()
cleanup_add() {
    _cleanups+=("$*")
}

_tap_exit() {
    local rc=$? i
    trap - EXIT INT TERM
    for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
        eval "${_cleanups[$i]}" >/dev/null 2>&1
    done
    _tinyd_kill_all
    if [ -n "${TMP_DIR:-}" ] && [ -d "$TMP_DIR" ]; then
        rm -rf "$TMP_DIR"
    fi
    if [ "$_tap_failed" -ne 0 ] && [ "$rc" -eq 0 ]; then
        rc=1
    fi
    exit "$rc"
}
trap _tap_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tinytest.XXXXXX")
export TMP_DIR

# --- tinyd -------------------------------------------------------------------

TINYD_PID=
_tinyd_pids=()
_tinyd_dirs=()

# tinyd_start [ARGS...]: starts a tinyd in the background on a fresh private
# run dir (or on $TINYD_REUSE_DIR when set), exports TINYD_DIR, sets TINYD_PID.
tinyd_start() {
    local dir
    if [ -n "${TINYD_REUSE_DIR:-}" ]; then
        dir=$TINYD_REUSE_DIR
    else
        dir=$(mktemp -d "$TMP_DIR/run.XXXXXX") || return 1
        _tinyd_dirs+=("$dir")
    fi
    export TINYD_DIR=$dir
    if ! "$TINY_BUILD/tinyd" -d "$dir" "$@"; then
        diag "tinyd -d $dir $* failed"
        return 1
    fi
    if [ ! -s "$dir/tinyd.pid" ]; then
        diag "tinyd started but wrote no $dir/tinyd.pid"
        return 1
    fi
    TINYD_PID=$(cat "$dir/tinyd.pid")
    _tinyd_pids+=("$TINYD_PID")
    kill -0 "$TINYD_PID" 2>/dev/null
}

# _pid_gone PID TIMEOUT_S: waits for a process to exit; a zombie counts as
# gone (a child of ours is left for the caller to `wait` for its status).
_pid_gone() {
    local pid=$1 i st
    for ((i = 0; i < $2 * 50; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            return 0
        fi
        st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)
        if [ "$st" = Z ]; then
            return 0
        fi
        sleep 0.02
    done
    return 1
}

# tinyd_stop [PID]: SIGTERM and wait for the exit (10 s at most, then
# SIGKILL and failure). Returns non-zero when it did not stop in time.
tinyd_stop() {
    local pid=${1:-$TINYD_PID}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    if _pid_gone "$pid" 10; then
        return 0
    fi
    diag "tinyd $pid did not exit within 10 s of SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null
    return 1
}

_tinyd_kill_all() {
    local pid
    for pid in "${_tinyd_pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null
            _pid_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
        fi
    done
}

# --- System V IPC bookkeeping -------------------------------------------------

# Our IPC objects: ids of queues and segments owned by our uid.
_ipc_ids() {
    local uid
    uid=$(id -u)
    awk -v u="$uid" 'NR > 1 && $8 == u { print "q " $2 }' /proc/sysvipc/msg
    awk -v u="$uid" 'NR > 1 && $8 == u { print "m " $2 }' /proc/sysvipc/shm
}

ipc_snapshot() {
    _ipc_ids | sort >"$TMP_DIR/ipc.before"
}

# ipc_clean_since [DESC]: one test, failing when a queue or segment appeared
# since ipc_snapshot and is still there after a grace period (tinyd's reaper
# runs every 250 ms). Leaked objects are listed and removed. Outside a
# private IPC namespace only objects of our tinyds' and our children's
# making can be told apart, so others' are tolerated with a comment.
ipc_clean_since() {
    local desc=${1:-no System V queue or segment left behind} new i t id
    for ((i = 0; i < 30; i++)); do
        _ipc_ids | sort >"$TMP_DIR/ipc.after"
        new=$(comm -13 "$TMP_DIR/ipc.before" "$TMP_DIR/ipc.after")
        [ -z "$new" ] && break
        sleep 0.1
    done
    if [ -n "$new" ] && [ "$TINY_TEST_IPCNS" != 1 ]; then
        diag "not in a private IPC namespace; new objects may be other users':" "$new"
        ok 0 "$desc (shared IPC namespace, not checked)"
        return 0
    fi
    if [ -n "$new" ]; then
        ok 1 "$desc"
        diag "left behind:" "$(ipcs -q -m)"
        echo "$new" | while read -r t id; do
            ipcrm "-$t" "$id" 2>/dev/null
        done
        return 1
    fi
    ok 0 "$desc"
}

# --- misc ---------------------------------------------------------------------

# start_tinyd_or_bail [ARGS...]: tinyd_start, or a failing test and the end.
start_tinyd_or_bail() {
    tinyd_start "$@"
    if ! ok $? "tinyd starts${*:+ with $*}"; then
        done_testing
        exit 1
    fi
}

# stop_tinyd_checked: tinyd_stop as a test.
stop_tinyd_checked() {
    tinyd_stop
    ok $? "tinyd stops on SIGTERM within 10 s"
}

# need_build FILE...: skip the script when a build product is missing.
need_build() {
    local f
    for f in "$@"; do
        [ -x "$TINY_BUILD/$f" ] || skip_all "$TINY_BUILD/$f is not built"
    done
}

# flip_byte FILE OFFSET: inverts one byte of FILE in place.
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "\\x$(printf %02x $((b ^ 0xff)))" |
        dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# now_ms: milliseconds since the epoch.
now_ms() {
    local t
    t=$(date +%s%N)
    echo $((t / 1000000))
}

# wait_until TIMEOUT_MS CMD...: polls CMD every 20 ms until it succeeds.
# Returns 0 on success, 1 on timeout; sets WAITED_MS.
wait_until() {
    local limit=$1 start
    shift
    start=$(now_ms)
    while :; do
        if "$@"; then
            WAITED_MS=$(($(now_ms) - start))
            return 0
        fi
        if [ $(($(now_ms) - start)) -ge "$limit" ]; then
            WAITED_MS=$(($(now_ms) - start))
            return 1
        fi
        sleep 0.02
    done
}

# --- tinyfs mounts ----------------------------------------------------------
# fs_init [STORE]: skips the script without FUSE; sets STORE (default
# $TMP_DIR/store), MNT and LOG, makes the directories, unmounts lazily at exit.
fs_init() {
    [ -c /dev/fuse ] || skip_all "/dev/fuse is missing"
    command -v fusermount3 >/dev/null || skip_all "fusermount3 is missing"
    STORE=${1:-$TMP_DIR/store}
    MNT=$TMP_DIR/mnt
    LOG=$TMP_DIR/tinyfs.log
    FS_PID=
    mkdir -p "$STORE" "$MNT"
    cleanup_add "fusermount3 -u -z '$MNT'"
}

is_mounted() {
    grep -q " $1 fuse" /proc/mounts
}

# mount_fs [OPTIONS...]: tinyfs -f STORE MNT in the background (the binary is
# $FS_BIN, by default the build's), its log appended to $LOG.
mount_fs() {
    "${FS_BIN:-$TINY_BUILD/tinyfs}" -f "$@" "$STORE" "$MNT" 2>>"$LOG" &
    FS_PID=$!
    wait_until 10000 is_mounted "$MNT"
}

umount_fs() {
    fusermount3 -u "$MNT" && wait "$FS_PID"
}

# mount_fs_or_bail [ARGS...]: mount_fs as a test; when it fails, tinyfs's log
# and the end.
mount_fs_or_bail() {
    mount_fs "$@"
    if ! ok $? "tinyfs mounts $STORE on $MNT${*:+ with $*}"; then
        diag "$(cat "$LOG")"
        done_testing
        exit 1
    fi
}
