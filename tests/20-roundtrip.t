#!/bin/bash
# Every op at the edge sizes for 4 KiB, 64 KiB, 1 MiB and 16 MiB slots, the
# corpus, corrupt input -> -EBADMSG (t_roundtrip.c).
. "$(dirname "$0")/lib.sh"
need_build tinyd tests/t_roundtrip
ipc_snapshot
start_tinyd_or_bail
tap_run roundtrip "$TINY_BUILD/tests/t_roundtrip" "$DATA_DIR" 4096 65536 1048576
tap_run "roundtrip 16M slots" "$TINY_BUILD/tests/t_roundtrip" "$DATA_DIR" 16777216
kill -0 "$TINYD_PID" 2>/dev/null
ok $? "tinyd survived every bad input"
stop_tinyd_checked
ipc_clean_since
done_testing
