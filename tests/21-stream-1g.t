#!/bin/bash
# More than 1 GiB framed in 64 MiB blocks and back in bounded memory, and a
# raw round trip of more than 1 GiB (t_stream.c).
. "$(dirname "$0")/lib.sh"
need_build tinyd tests/t_stream
ipc_snapshot
start_tinyd_or_bail
tap_run stream "$TINY_BUILD/tests/t_stream" 1040
stop_tinyd_checked
ipc_clean_since
done_testing
