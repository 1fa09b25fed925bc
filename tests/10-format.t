#!/bin/bash
# The pure functions of libtiny (CRC-32C, varints, frame scanning, bounds,
# error strings): no daemon.
. "$(dirname "$0")/lib.sh"
need_build tests/t_format
ipc_snapshot
tap_run format "$TINY_BUILD/tests/t_format" "$DATA_DIR"
ipc_clean_since
done_testing
