#!/bin/bash
# tests/bench/fs.sh RESULTS_DIR - the filesystem half of `make bench`.
# tinyfs against a plain directory, the FUSE passthrough of
# tests/bench/passthrough.c (the same FUSE settings as tinyfs, no
# compression) and btrfs compress=lzo / compress=zstd:1 on a loop device (when
# root and btrfs are available; else skipped with a note), on the same data:
# a generated mixed file, a random (incompressible) file, the corpus and a
# tree of thousands of small files (a tar of /usr/include), the FUSE ones
# also with the other setting of auto_inval_data (random reads) and -o attr_timeout=0
# (ls -lR); then tinyfs's memory on a 4 GiB file; rounds of the phases the
# targets name (write, cold read, random reads), tinyfs and btrfs-lzo
# alternating, with tinyfs's write through the kernel's writeback cache;
# tinyfs's write and read with several tinyd worker counts; perf profiles.
# tinyd logs to $BENCH_TINYD_LOG (default TINY_BUILD/bench-tinyd.log).
# Writes RESULTS_DIR/fs.md (markdown), fs-*.dat (gnuplot) and perf-*.txt.
# Needs root for drop_caches, loop devices and btrfs. Progress on stderr.
#   BENCH_FS_MIB (default 1024)   size of the mixed file
#   BENCH_BIG_MIB (default 4096)  size of the file of the memory phase (0 skips it)
#   BENCH_RAND_MIB (default 256)  size of the random file
#   BENCH_RAND_N (default 20000)  random 4 KiB reads per filesystem
#   BENCH_TREE (default /usr/include)  the small-file tree that is tarred
#   BENCH_FS_DIR (default /var/tmp/tinybench-fs)  scratch space (~4x the data)
#   BENCH_WORKERS (default "1 2 4")  tinyd worker counts of the tinyfs write/read sweep
#   BENCH_ROUNDS (default 3)      extra rounds of the target phases, tinyfs and btrfs-lzo
#                                 alternating, whose median ratios the targets use
#   BENCH_PERF (default 1)        0 skips the perf profiles
#   BENCH_KEEP_DATA (default 0)   1 keeps the generated inputs for the next run
set -u
cd "$(dirname "$0")/../.." || exit 1
: "${TINY_BUILD:?TINY_BUILD must name the build directory}"
RES=${1:?usage: fs.sh RESULTS_DIR}
MIB=${BENCH_FS_MIB:-1024}
RMIB=${BENCH_RAND_MIB:-256}
NRAND=${BENCH_RAND_N:-20000}
TREE=${BENCH_TREE:-/usr/include}
W=${BENCH_FS_DIR:-/var/tmp/tinybench-fs}
PERF=${BENCH_PERF:-1}
B=$TINY_BUILD
mkdir -p "$RES" "$W" || exit 1
W=$(cd "$W" && pwd)

log() { echo "fs: $*" >&2; }

tinyd_pid= fs_pid= loopdev= mounted= wtinyd_pid=
cleanup() {
    for m in $mounted; do
        if mountpoint -q "$m"; then fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m"; fi
    done
    [ -n "$fs_pid" ] && kill "$fs_pid" 2>/dev/null
    [ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
    for p in $tinyd_pid $wtinyd_pid; do
        kill -0 "$p" 2>/dev/null || continue
        kill -TERM "$p"
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    done
    rm -rf "$W/run" "$W/run-w" "$W/mnt" "$W/store" "$W/btrfs.img" "$W/perf-"*.data
    [ "${BENCH_KEEP_DATA:-0}" = 1 ] || rm -f "$W"/mixed-*.bin "$W"/random-*.bin "$W/tree.tar"
    rmdir "$W" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
# seconds taken by a command
timed() {
    local t0 t1
    t0=$(now)
    "$@" || { log "failed: $*"; return 1; }
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)

# --- data ---------------------------------------------------------------------
if [ ! -s "$W/mixed-$MIB.bin" ]; then
    log "generating the $MIB MiB mixed file"
    "$B/bench/mkdata" mixed "$MIB" >"$W/mixed-$MIB.bin" || exit 1
fi
if [ ! -s "$W/random-$RMIB.bin" ]; then
    log "generating the $RMIB MiB random file"
    "$B/bench/mkdata" random "$RMIB" >"$W/random-$RMIB.bin" || exit 1
fi
if [ ! -s "$W/tree.tar" ]; then
    log "tarring $TREE"
    tar -C "$(dirname "$TREE")" -cf "$W/tree.tar" "$(basename "$TREE")" || exit 1
fi
MIXED=$W/mixed-$MIB.bin RANDOM_F=$W/random-$RMIB.bin
NFILES=$(tar -tf "$W/tree.tar" | grep -vc '/$')
TREE_MB=$(du -sm --apparent-size "$TREE" | cut -f1)
# in-process snappy's streams, in the whole blocks du would count for them
read -r _ _ SNAP_MIXED < <("$B/bench/snapsize" "$MIXED")
read -r _ _ SNAP_RANDOM < <("$B/bench/snapsize" "$RANDOM_F")
read -r CORPUS_IN _ SNAP_CORPUS < <("$B/bench/snapsize" tests/data/*)

# --- the filesystems ----------------------------------------------------------
mkdir -p "$W/run" "$W/mnt"
TLOG=${BENCH_TINYD_LOG:-$B/bench-tinyd.log}
"$B/tinyd" -d "$W/run" -w 2 -l "$TLOG" || { log "tinyd did not start"; exit 1; }
tinyd_pid=$(cat "$W/run/tinyd.pid")
export TINYD_DIR=$W/run

BTRFS_NOTE=
have_btrfs=1
if [ "$(id -u)" != 0 ]; then
    have_btrfs=0 BTRFS_NOTE="not root"
elif ! grep -qw btrfs /proc/filesystems && ! modprobe btrfs 2>/dev/null; then
    have_btrfs=0 BTRFS_NOTE="no btrfs in the kernel"
elif ! command -v mkfs.btrfs >/dev/null; then
    have_btrfs=0 BTRFS_NOTE="mkfs.btrfs missing (btrfs-progs)"
fi

wait_mounted() {
    for _ in $(seq 200); do
        grep -q " $1 fuse" /proc/mounts && return 0
        sleep 0.05
    done
    return 1
}

# mount_fs NAME: mounts NAME on $W/mnt, store in $W/store (fresh=1 makes it empty);
# FUSE_OPTS, when set, is passed to the FUSE filesystems
FUSE_OPTS=
mount_fs() {
    local name=$1 fresh=${2:-0} opt
    case $name in
    plain)
        [ "$fresh" = 1 ] && rm -rf "$W/store" && mkdir -p "$W/store"
        MNT=$W/store
        ;;
    passthrough | tinyfs)
        [ "$fresh" = 1 ] && rm -rf "$W/store" && mkdir -p "$W/store"
        MNT=$W/mnt
        if [ "$name" = tinyfs ]; then
            "$B/tinyfs" -f $FUSE_OPTS "$W/store" "$MNT" 2>>"$RES/tinyfs.log" &
        else
            "$B/bench/passthrough" "$W/store" "$MNT" -f $FUSE_OPTS 2>>"$RES/passthrough.log" &
        fi
        fs_pid=$!
        mounted="$MNT"
        wait_mounted "$MNT" || { log "$name did not mount"; exit 1; }
        ;;
    btrfs-*)
        MNT=$W/mnt
        if [ "$fresh" = 1 ]; then
            rm -f "$W/btrfs.img"
            truncate -s $((MIB * 2 + RMIB * 2 + 2048))M "$W/btrfs.img"
            mkfs.btrfs -q -f "$W/btrfs.img" >/dev/null || exit 1
        fi
        loopdev=$(losetup -f --show "$W/btrfs.img") || exit 1
        case $name in
        btrfs-force-*) opt=compress-force=${name#btrfs-force-} ;;
        *) opt=compress=${name#btrfs-} ;;
        esac
        mount -o "$opt" "$loopdev" "$MNT" || exit 1
        mounted="$MNT"
        ;;
    esac
}

# umount_fs NAME: unmounts; for tinyfs, remembers its peak RSS and CPU time
umount_fs() {
    case $1 in
    plain) ;;
    passthrough | tinyfs)
        sync
        if [ "$1" = tinyfs ]; then
            local h c
            h=$(hwm_kib "$fs_pid") c=$(cpu_ticks "$fs_pid")
            [ "$h" -gt "${FS_HWM:-0}" ] && FS_HWM=$h
            FS_CPU=$((${FS_CPU:-0} + c))
        fi
        fusermount3 -u "$MNT"
        wait "$fs_pid"
        fs_pid= mounted=
        ;;
    btrfs-*)
        umount "$MNT" && losetup -d "$loopdev"
        loopdev= mounted=
        ;;
    esac
}

stored_kib() { # stored_kib NAME PATH...: bytes the data takes on disk, in KiB
    local name=$1
    shift
    case $name in
    btrfs-*)
        compsize -b "$@" 2>/dev/null | awk '$1 == "TOTAL" {print int($3 / 1024)}'
        ;;
    *)
        local rel=()
        for p in "$@"; do rel+=("$W/store/${p#"$MNT"/}"); done
        du -sk "${rel[@]}" | awk '{s += $1} END {print s}'
        ;;
    esac
}

declare -A R
FSES="plain passthrough tinyfs"
if [ "$have_btrfs" = 1 ]; then FSES="$FSES btrfs-lzo btrfs-zstd:1 btrfs-force-lzo"; fi
if ! command -v compsize >/dev/null; then
    BTRFS_NOTE="${BTRFS_NOTE:+$BTRFS_NOTE; }compsize missing: btrfs stored sizes unknown"
fi

MIXED_MB=$(echo "$(stat -c %s "$MIXED") / 1000000" | bc -l)
# seq_write: MB/s of a cp of the mixed file into $MNT and a sync, from the
# same start for every filesystem: the previous one's deletions written out,
# the input not cached
seq_write() {
    local t
    drop
    t=$(timed bash -c "cp '$MIXED' '$MNT/mixed.bin' && sync") || return 1
    echo "$MIXED_MB / $t" | bc -l
}
# seq_read: MB/s of a cat of $MNT/mixed.bin (cold: the caller drops the caches)
seq_read() {
    local t
    t=$(timed bash -c "cat '$MNT/mixed.bin' >/dev/null") || return 1
    echo "$MIXED_MB / $t" | bc -l
}
for fs in $FSES; do
    log "$fs: sequential write of $MIB MiB"
    td0=$(cpu_ticks "$tinyd_pid")
    FS_CPU=0 FS_HWM=0
    mount_fs "$fs" 1
    R[$fs,write]=$(seq_write) || exit 1
    umount_fs "$fs"
    R[$fs,fs_cpu_write]=$(echo "$FS_CPU / $HZ" | bc -l)
    R[$fs,fs_hwm_write]=$FS_HWM
    td1=$(cpu_ticks "$tinyd_pid")
    R[$fs,tinyd_cpu_write]=$(echo "($td1 - $td0) / $HZ" | bc -l)

    log "$fs: sequential read, cold"
    drop
    FS_CPU=0 FS_HWM=0
    mount_fs "$fs"
    R[$fs,read]=$(seq_read) || exit 1
    umount_fs "$fs"
    R[$fs,fs_cpu_read]=$(echo "$FS_CPU / $HZ" | bc -l)
    R[$fs,fs_hwm_read]=$FS_HWM
    td2=$(cpu_ticks "$tinyd_pid")
    R[$fs,tinyd_cpu_read]=$(echo "($td2 - $td1) / $HZ" | bc -l)

    log "$fs: $NRAND random 4 KiB reads, cold"
    drop
    mount_fs "$fs"
    read -r _ _ ops < <("$B/bench/randread" "$MNT/mixed.bin" "$NRAND") || exit 1
    R[$fs,rand]=$ops
    if [ "$fs" = passthrough ] || [ "$fs" = tinyfs ]; then
        # the same with the other setting of auto_inval_data (the attribute
        # round trip the kernel makes before a read): libfuse's default,
        # which the passthrough keeps, is on; tinyfs turns it off
        R[$fs,inval_opt]="-o no_auto_inval_data"
        [ "$fs" = tinyfs ] && R[$fs,inval_opt]="-o auto_inval_data"
        log "$fs: $NRAND random 4 KiB reads, cold, ${R[$fs,inval_opt]}"
        umount_fs "$fs"
        drop
        FUSE_OPTS="${R[$fs,inval_opt]}" mount_fs "$fs"
        read -r _ _ ops < <("$B/bench/randread" "$MNT/mixed.bin" "$NRAND") || exit 1
        R[$fs,rand_other]=$ops
        umount_fs "$fs"
        mount_fs "$fs" # the rest with the defaults again
    fi

    log "$fs: random file, corpus, stored sizes"
    cp "$RANDOM_F" "$MNT/random.bin" && cp -r tests/data "$MNT/corpus" && sync
    sleep 1
    R[$fs,st_mixed]=$(stored_kib "$fs" "$MNT/mixed.bin")
    R[$fs,st_random]=$(stored_kib "$fs" "$MNT/random.bin")
    R[$fs,st_corpus]=$(stored_kib "$fs" "$MNT/corpus")
    rm -rf "$MNT/mixed.bin" "$MNT/random.bin" "$MNT/corpus"
    sync

    log "$fs: untar of $NFILES files"
    t=$(timed bash -c "tar -C '$MNT' -xf '$W/tree.tar' && sync") || exit 1
    R[$fs,untar]=$t
    umount_fs "$fs"
    drop
    mount_fs "$fs"
    log "$fs: ls -lR, cold"
    t=$(timed bash -c "ls -lR '$MNT' >/dev/null") || exit 1
    R[$fs,lslr]=$t
    R[$fs,st_tree]=$(stored_kib "$fs" "$MNT/$(basename "$TREE")")
    if [ "$fs" = passthrough ] || [ "$fs" = tinyfs ]; then
        # the same without attributes cached by the kernel
        log "$fs: ls -lR, cold, -o attr_timeout=0"
        umount_fs "$fs"
        drop
        FUSE_OPTS="-o attr_timeout=0" mount_fs "$fs"
        t=$(timed bash -c "ls -lR '$MNT' >/dev/null") || exit 1
        R[$fs,lslr_attr]=$t
    fi
    umount_fs "$fs"
    [ "$fs" = plain ] && rm -rf "$W/store"
    R[tinyd_hwm]=$(hwm_kib "$tinyd_pid")
done
TINYD_SHM=$(awk '/^RssShmem/ {print $2}' "/proc/$tinyd_pid/status")
TINYD_HWM=$(hwm_kib "$tinyd_pid")

# --- memory on a large file -------------------------------------------------------
# tinyfs and tinyd memory while a BIG_MIB file is written (straight from mkdata,
# so the source takes no disk) and read back cold, compared byte for byte with
# mkdata's output. tinyd's figure excludes shared memory: RssAnon + RssFile,
# sampled every 0.1 s, at its highest.
BIG_MIB=${BENCH_BIG_MIB:-4096}
if [ "$BIG_MIB" -gt 0 ]; then
    # sample_rss PID OUT: the highest RssAnon + RssFile of PID, in KiB, into OUT
    sample_rss() {
        local m=0 v
        while kill -0 "$1" 2>/dev/null && [ ! -e "$2.stop" ]; do
            v=$(awk '/^RssAnon|^RssFile/ {s += $2} END {print s + 0}' "/proc/$1/status" 2>/dev/null)
            [ "${v:-0}" -gt "$m" ] && m=$v && echo "$m" >"$2"
            sleep 0.1
        done
    }
    for k in write read; do
        rm -f "$RES/tinyd-rss-$k" "$RES/tinyd-rss-$k.stop"
        sample_rss "$tinyd_pid" "$RES/tinyd-rss-$k" &
        sampler=$!
        FS_CPU=0 FS_HWM=0
        if [ $k = write ]; then
            log "memory: writing a $BIG_MIB MiB file through tinyfs"
            mount_fs tinyfs 1
            t=$(timed bash -c "'$B/bench/mkdata' mixed $BIG_MIB >'$MNT/big.bin' && sync") || exit 1
        else
            log "memory: reading it back cold, compared with its source"
            drop
            mount_fs tinyfs
            t=$(timed cmp <("$B/bench/mkdata" mixed "$BIG_MIB") "$MNT/big.bin") || exit 1
        fi
        R[big,$k]=$(echo "$BIG_MIB * 1.048576 / $t" | bc -l)
        [ $k = read ] && rm -f "$MNT/big.bin"
        umount_fs tinyfs
        touch "$RES/tinyd-rss-$k.stop"
        wait "$sampler"
        R[big,fs_hwm_$k]=$FS_HWM
        R[big,tinyd_$k]=$(cat "$RES/tinyd-rss-$k" 2>/dev/null || echo 0)
    done
fi

# --- rounds of the target phases ------------------------------------------------
# One pass per filesystem leaves each target ratio to one sample of a machine
# whose disk and CPU share change by the minute. The phases the targets name
# are run again, tinyfs and btrfs-lzo alternating (the first of a round
# changes), each round giving its own ratios; the targets use the median over
# these rounds and the pass above. Each round also times tinyfs's write with
# the kernel's writeback cache (-o writeback_cache).
ROUNDS=${BENCH_ROUNDS:-3}
[[ " $FSES " == *" btrfs-lzo "* ]] || ROUNDS=0
# target_phases FS R: the write, cold read and random reads of FS into R[FS,PHASE,R]
target_phases() {
    local fs=$1 r=$2 ops
    mount_fs "$fs" 1
    R[$fs,write,$r]=$(seq_write) || exit 1
    umount_fs "$fs"
    drop
    mount_fs "$fs"
    R[$fs,read,$r]=$(seq_read) || exit 1
    umount_fs "$fs"
    drop
    mount_fs "$fs"
    read -r _ _ ops < <("$B/bench/randread" "$MNT/mixed.bin" "$NRAND") || exit 1
    R[$fs,rand,$r]=$ops
    rm -f "$MNT/mixed.bin"
    umount_fs "$fs"
}
for r in $(seq "$ROUNDS"); do
    order="tinyfs btrfs-lzo"
    [ $((r % 2)) = 0 ] && order="btrfs-lzo tinyfs"
    for fs in $order; do
        log "round $r of $ROUNDS: $fs sequential write, cold read, random reads"
        target_phases "$fs" "$r"
    done
    log "round $r of $ROUNDS: tinyfs sequential write, -o writeback_cache"
    FUSE_OPTS="-o writeback_cache" mount_fs tinyfs 1
    R[tinyfs-wb,write,$r]=$(seq_write) || exit 1
    umount_fs tinyfs
done
rm -rf "$W/store"

# --- tinyd worker counts -----------------------------------------------------------
# tinyfs's sequential write and cold read of the mixed file, served by a tinyd
# of each worker count (its own run directory, so only tinyfs uses it).
WORKERS=${BENCH_WORKERS:-1 2 4}
for w in $WORKERS; do
    log "workers: tinyfs sequential write and cold read with tinyd -w $w"
    rm -rf "$W/run-w" && mkdir -p "$W/run-w"
    "$B/tinyd" -d "$W/run-w" -w "$w" -l "$TLOG" || { log "tinyd -w $w did not start"; exit 1; }
    wtinyd_pid=$(cat "$W/run-w/tinyd.pid")
    TINYD_DIR=$W/run-w
    mount_fs tinyfs 1
    R[w$w,write]=$(seq_write) || exit 1
    umount_fs tinyfs
    drop
    mount_fs tinyfs
    R[w$w,read]=$(seq_read) || exit 1
    umount_fs tinyfs
    TINYD_DIR=$W/run
    kill -TERM "$wtinyd_pid"
    for _ in $(seq 100); do kill -0 "$wtinyd_pid" 2>/dev/null || break; sleep 0.1; done
    wtinyd_pid=
done
rm -rf "$W/run-w"

# --- perf profiles of tinyfs ----------------------------------------------------
if [ "$PERF" = 1 ] && command -v perf >/dev/null; then
    log "perf: tinyfs sequential write and cold read"
    mount_fs tinyfs 1
    perf record -q -e cpu-clock -a -g -o "$W/perf-write.data" -- \
        bash -c "cp '$MIXED' '$MNT/mixed.bin' && sync" 2>/dev/null
    umount_fs tinyfs
    drop
    mount_fs tinyfs
    perf record -q -e cpu-clock -a -g -o "$W/perf-read.data" -- \
        bash -c "cat '$MNT/mixed.bin' >/dev/null" 2>/dev/null
    umount_fs tinyfs
    for k in write read; do
        {
            echo "## by thread name (tinyd-worker, tinyd-c<client pid>, tinyfs-pgcache, tiny-progress...)"
            perf report -i "$W/perf-$k.data" --no-children --sort comm -g none --stdio 2>/dev/null |
                grep -v '^#' | grep -v '^$' | sed 's/ *$//' | head -12
            echo
            echo "## by thread name and symbol, top 30"
            perf report -i "$W/perf-$k.data" --no-children --sort comm,dso,symbol -g none \
                --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/[ -]*$//' | head -30
        } >"$RES/perf-$k.txt"
        rm -f "$W/perf-$k.data"
    done
fi

# --- the tables -------------------------------------------------------------------
f2() { printf '%.2f' "$1"; }
f1() { printf '%.1f' "$1"; }
ratio() { echo "$1 / $2" | bc -l; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# round_median PHASE: the median of tinyfs / btrfs-lzo over the pass and the rounds
round_median() {
    local v=("$(ratio "${R[tinyfs,$1]}" "${R[btrfs-lzo,$1]}")") r
    for r in $(seq "$ROUNDS"); do v+=("$(ratio "${R[tinyfs,$1,$r]}" "${R[btrfs-lzo,$1,$r]}")"); done
    median "${v[@]}"
}
wb_median() {
    local v=() r
    for r in $(seq "$ROUNDS"); do v+=("$(ratio "${R[tinyfs-wb,write,$r]}" "${R[tinyfs,write,$r]}")"); done
    median "${v[@]}"
}
{
    echo "# fs write_MBps read_MBps rand_kops"
    for fs in $FSES; do
        echo "\"$fs\" $(f1 "${R[$fs,write]}") $(f1 "${R[$fs,read]}") $(f1 "$(echo "${R[$fs,rand]} / 1000" | bc -l)")"
    done
} >"$RES/fs-speed.dat"
{
    echo "# fs untar_s lslr_s"
    for fs in $FSES; do echo "\"$fs\" $(f2 "${R[$fs,untar]}") $(f2 "${R[$fs,lslr]}")"; done
} >"$RES/fs-tree.dat"

{
    echo "Data: mixed file $MIB MiB ($(basename "$MIXED"), tests/bench/mkdata.c), random file $RMIB MiB,"
    echo "the corpus (tests/data, $((CORPUS_IN / 1024)) KiB), and a tar of $TREE ($NFILES files, $TREE_MB MB)."
    echo "Sequential write: \`cp\` then \`sync\`, timed from a synced, dropped page cache. Sequential read: \`cat > /dev/null\` after"
    echo "\`echo 3 > /proc/sys/vm/drop_caches\` and a remount of the FUSE filesystems. Random reads:"
    echo "$NRAND preads of 4 KiB at seeded random aligned offsets of the mixed file (tests/bench/randread.c),"
    echo "cold as well. Untar: \`tar -xf\` then \`sync\`; \`ls -lR\` after a remount and drop_caches."
    echo "tinyd runs with 2 workers; tinyfs with its defaults. The scratch directory and the btrfs"
    echo "loop image live on the root filesystem ($(findmnt -n -o FSTYPE -T "$W"), $(findmnt -n -o SOURCE -T "$W"))."
    [ -n "$BTRFS_NOTE" ] && echo "btrfs: $BTRFS_NOTE."
    echo "btrfs-lzo and btrfs-zstd:1 are mounted with compress=ALG (the baseline the targets name): btrfs then"
    echo "stops compressing a file for good once an extent does not shrink, which the random pieces"
    echo "of the mixed file trigger, so compare the stored sizes before the speeds."
    echo "btrfs-force-lzo (compress-force=lzo) compresses every extent and is shown for that reason."
    echo
    echo "| filesystem | seq write | seq read (cold) | random 4 KiB reads (cold) | untar | ls -lR (cold) |"
    echo "|---|---|---|---|---|---|"
    for fs in $FSES; do
        echo "| $fs | $(f1 "${R[$fs,write]}") MB/s | $(f1 "${R[$fs,read]}") MB/s | ${R[$fs,rand]} reads/s | $(f2 "${R[$fs,untar]}") s | $(f2 "${R[$fs,lslr]}") s |"
    done
    if [ -n "${R[tinyfs,rand_other]:-}" ] && [ -n "${R[passthrough,rand_other]:-}" ]; then
        echo
        echo "With the kernel's auto_inval_data (libfuse's default, which the passthrough keeps), a FUSE"
        echo "filesystem answers a GETATTR before a read once the cached attributes are older than"
        echo "attr_timeout (1 s); without it the kernel checks attributes only for reads past the size"
        echo "it knows. tinyfs turns it off (tinyfs(1) says why). The same cold random reads with the"
        echo "other setting:"
        echo
        echo "| filesystem | random 4 KiB reads (cold) | / default options |"
        echo "|---|---|---|"
        for fs in passthrough tinyfs; do
            echo "| $fs ${R[$fs,inval_opt]} | ${R[$fs,rand_other]} reads/s | $(f2 "$(ratio "${R[$fs,rand_other]}" "${R[$fs,rand]}")")x |"
        done
    fi
    if [ -n "${R[tinyfs,lslr_attr]:-}" ] && [ -n "${R[passthrough,lslr_attr]:-}" ]; then
        echo
        echo "Without cached attributes (\`-o attr_timeout=0\`), every path lookup also asks for the"
        echo "attributes of each directory on the way (the kernel checks permissions,"
        echo "default_permissions), so \`ls -lR\` costs both FUSE filesystems a dozen requests or more"
        echo "per file. The same cold \`ls -lR\` with that option:"
        echo
        echo "| filesystem | ls -lR (cold) | time / default options |"
        echo "|---|---|---|"
        for fs in passthrough tinyfs; do
            echo "| $fs -o attr_timeout=0 | $(f2 "${R[$fs,lslr_attr]}") s | $(f2 "$(ratio "${R[$fs,lslr_attr]}" "${R[$fs,lslr]}")")x |"
        done
    fi
    if [ "$ROUNDS" -gt 0 ]; then
        echo
        echo "The target phases again, in $ROUNDS rounds of tinyfs and btrfs-lzo one after the other"
        echo "(alternating which goes first), each on a new store; round 0 is the pass of the table"
        echo "above. The targets below use the median ratio over all rows. The last column is"
        echo "tinyfs's sequential write with the kernel's writeback cache (\`-o writeback_cache\`),"
        echo "made in the same round, against tinyfs's write with its defaults."
        echo
        echo "| round | write / btrfs-lzo | cold read / btrfs-lzo | random reads / btrfs-lzo | write, -o writeback_cache / defaults |"
        echo "|---|---|---|---|---|"
        echo "| 0 | $(f2 "$(ratio "${R[tinyfs,write]}" "${R[btrfs-lzo,write]}")")x | $(f2 "$(ratio "${R[tinyfs,read]}" "${R[btrfs-lzo,read]}")")x | $(f2 "$(ratio "${R[tinyfs,rand]}" "${R[btrfs-lzo,rand]}")")x | |"
        for r in $(seq "$ROUNDS"); do
            echo "| $r | $(f2 "$(ratio "${R[tinyfs,write,$r]}" "${R[btrfs-lzo,write,$r]}")")x | $(f2 "$(ratio "${R[tinyfs,read,$r]}" "${R[btrfs-lzo,read,$r]}")")x | $(f2 "$(ratio "${R[tinyfs,rand,$r]}" "${R[btrfs-lzo,rand,$r]}")")x | $(f2 "$(ratio "${R[tinyfs-wb,write,$r]}" "${R[tinyfs,write,$r]}")")x |"
        done
        echo "| median | $(f2 "$(round_median write)")x | $(f2 "$(round_median read)")x | $(f2 "$(round_median rand)")x | $(f2 "$(wb_median)")x |"
    fi
    if [ -n "$WORKERS" ]; then
        echo
        echo "tinyfs with tinyd's worker count varied: one tinyd per count, used by tinyfs alone, the"
        echo "same sequential write and cold read of the mixed file; ratios to the sweep's own run with"
        echo "2 workers:"
        echo
        echo "| tinyd workers | seq write | / 2 workers | seq read (cold) | / 2 workers |"
        echo "|---|---|---|---|---|"
        for w in $WORKERS; do
            if [ -n "${R[w2,write]:-}" ]; then
                echo "| $w | $(f1 "${R[w$w,write]}") MB/s | $(f2 "$(ratio "${R[w$w,write]}" "${R[w2,write]}")")x | $(f1 "${R[w$w,read]}") MB/s | $(f2 "$(ratio "${R[w$w,read]}" "${R[w2,read]}")")x |"
            else
                echo "| $w | $(f1 "${R[w$w,write]}") MB/s | | $(f1 "${R[w$w,read]}") MB/s | |"
            fi
        done
    fi
    echo
    echo "Stored sizes (du of the store for plain/passthrough/tinyfs, \`compsize\` for btrfs), KiB,"
    echo "and the ratio apparent size / stored size. In-process snappy is the framing format"
    echo "made by snappy in the measuring process (tests/bench/snapsize.c), one stream per file,"
    echo "each counted in whole 4 KiB blocks as du counts a file."
    echo
    echo "| data | apparent | in-process snappy | $(echo $FSES | sed 's/ / | /g') |"
    echo "|---|---|---|$(for _ in $FSES; do printf -- '---|'; done)"
    for d in mixed random corpus; do
        case $d in
        mixed) app=$(($(stat -c %s "$MIXED") / 1024)) snap=$((SNAP_MIXED / 1024)) ;;
        random) app=$(($(stat -c %s "$RANDOM_F") / 1024)) snap=$((SNAP_RANDOM / 1024)) ;;
        corpus) app=$((CORPUS_IN / 1024)) snap=$((SNAP_CORPUS / 1024)) ;;
        esac
        printf '| %s | %s | %s (%sx) |' "$d" "$app" "$snap" "$(f2 "$(ratio "$app" "$snap")")"
        for fs in $FSES; do
            s=${R[$fs,st_$d]:-}
            if [ -n "$s" ] && [ "$s" -gt 0 ]; then printf ' %s (%sx) |' "$s" "$(f2 "$(ratio "$app" "$s")")"; else printf ' n/a |'; fi
        done
        echo
    done
    printf '| small-file tree | %s | |' "$((TREE_MB * 1000000 / 1024))"
    for fs in $FSES; do printf ' %s |' "${R[$fs,st_tree]:-n/a}"; done
    echo
    echo
    echo "CPU time (user + system, from /proc/PID/stat) and peak RSS (VmHWM) of the tinyfs process"
    echo "(one process per mount) and of tinyd during the $MIB MiB sequential write and the cold read:"
    echo
    echo "| phase | tinyfs CPU | tinyfs peak RSS | tinyd CPU |"
    echo "|---|---|---|---|"
    echo "| write | $(f2 "${R[tinyfs,fs_cpu_write]}") s | $((R[tinyfs,fs_hwm_write] / 1024)) MiB | $(f2 "${R[tinyfs,tinyd_cpu_write]}") s |"
    echo "| read | $(f2 "${R[tinyfs,fs_cpu_read]}") s | $((R[tinyfs,fs_hwm_read] / 1024)) MiB | $(f2 "${R[tinyfs,tinyd_cpu_read]}") s |"
    echo
    echo "tinyd over the whole run: peak RSS $((TINYD_HWM / 1024)) MiB, of which shared memory now"
    echo "mapped (RssShmem) $((TINYD_SHM / 1024)) MiB; peak beyond that: $(((TINYD_HWM - TINYD_SHM) / 1024)) MiB"
    echo "(an upper bound: the shared memory of clients already gone is not counted in RssShmem)."
    echo
    if [ "$BIG_MIB" -gt 0 ]; then
        echo "A $BIG_MIB MiB mixed file written into tinyfs straight from \`mkdata\` (then \`sync\`),"
        echo "and read back cold with \`cmp\` against a fresh \`mkdata\` stream (identical):"
        echo "peak RSS (VmHWM) of tinyfs, and tinyd's highest RssAnon + RssFile (its memory"
        echo "beyond the clients' shared segments), sampled every 0.1 s."
        echo
        echo "| phase | throughput | tinyfs peak RSS | tinyd peak beyond shared memory |"
        echo "|---|---|---|---|"
        for k in write read; do
            echo "| $k | $(f1 "${R[big,$k]}") MB/s | $((R[big,fs_hwm_$k] / 1024)) MiB | $((R[big,tinyd_$k] / 1024)) MiB |"
        done
        echo
    fi
    # --- targets
    t=tinyfs
    tgt() { # what measured target cmp_ok_expr detail
        printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4"
    }
    echo "### Targets"
    echo
    echo "| target | measured | goal | verdict |"
    echo "|---|---|---|---|"
    metnot() { # value goal dir(ge|le)
        if [ "$(echo "$1 $([ "$3" = ge ] && echo '>=' || echo '<=') $2" | bc -l)" = 1 ]; then
            echo "met"
        elif [ "$3" = ge ]; then
            echo "NOT met: $(printf '%.0f' "$(echo "(1 - $1 / $2) * 100" | bc -l)")% short"
        else
            echo "NOT met: $(printf '%.0f' "$(echo "($1 / $2 - 1) * 100" | bc -l)")% over"
        fi
    }
    if [[ " $FSES " == *" btrfs-lzo "* ]]; then
        for m in write read rand; do
            goal=1.0
            [ $m = write ] && goal=1.2
            v=$(round_median $m)
            tgt "tinyfs / btrfs lzo, $m (median of $((ROUNDS + 1)))" "$(f2 "$v")x" ">= ${goal}x" "$(metnot "$v" "$goal" ge)"
        done
    else
        tgt "tinyfs / btrfs lzo" "skipped" "" "$BTRFS_NOTE"
    fi
    v=$(ratio "${R[$t,untar]}" "${R[passthrough,untar]}")
    tgt "tinyfs untar time / passthrough" "$(f2 "$v")x" "<= 2.0x" "$(metnot "$v" 2.0 le)"
    v=$(ratio "${R[$t,st_mixed]}" "$((SNAP_MIXED / 1024))")
    tgt "tinyfs stored / in-process snappy, mixed" "$(f2 "$v")x" "<= 1.01x" "$(metnot "$v" 1.01 le)"
    v=$(ratio "${R[$t,st_corpus]}" "$((SNAP_CORPUS / 1024))")
    tgt "tinyfs stored / in-process snappy, corpus" "$(f2 "$v")x" "<= 1.01x" "$(metnot "$v" 1.01 le)"
    app=$(($(stat -c %s "$RANDOM_F") / 1024))
    v=$(echo "(${R[$t,st_random]} - $app) * 100 / $app" | bc -l)
    tgt "tinyfs incompressible overhead" "$(printf '%.3f' "$v")%" "<= 0.05%" "$(metnot "$v" 0.05 le)"
    if [ "$BIG_MIB" -gt 0 ]; then
        for k in write read; do
            v=$((R[big,fs_hwm_$k] / 1024))
            tgt "tinyfs peak RSS, $k of $BIG_MIB MiB" "$v MiB" "<= 64 MiB" "$(metnot "$v" 64 le)"
            v=$((R[big,tinyd_$k] / 1024))
            tgt "tinyd peak beyond shared memory, $k of $BIG_MIB MiB" "$v MiB" "<= 32 MiB" "$(metnot "$v" 32 le)"
        done
    else
        for k in write read; do
            v=$((R[$t,fs_hwm_$k] / 1024))
            tgt "tinyfs peak RSS, $k $MIB MiB (goal is for 4 GiB)" "$v MiB" "<= 64 MiB" "$(metnot "$v" 64 le)"
        done
        v=$(((TINYD_HWM - TINYD_SHM) / 1024))
        tgt "tinyd peak RSS beyond shared memory" "<= $v MiB" "<= 32 MiB" "$(metnot "$v" 32 le)"
    fi
} >"$RES/fs.md"
log "done"
