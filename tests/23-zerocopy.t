#!/bin/bash
# Zero-copy requests: every op in place in 4 KiB, 64 KiB, 1 MiB and 16 MiB
# slots, bufs in flight together, bad input (t_buf.c).
. "$(dirname "$0")/lib.sh"
need_build tinyd tests/t_buf
ipc_snapshot
start_tinyd_or_bail
tap_run "zero-copy" "$TINY_BUILD/tests/t_buf" 4096 65536 1048576 16777216
kill -0 "$TINYD_PID" 2>/dev/null
ok $? "tinyd survived every bad input"
stop_tinyd_checked
ipc_clean_since
done_testing
