#!/bin/bash
# 16 client processes, async requests (wait, poll, callbacks), 8 threads on
# one connection (t_concurrency.c).
. "$(dirname "$0")/lib.sh"
need_build tinyd tests/t_concurrency
ipc_snapshot
start_tinyd_or_bail -w 2
tap_run concurrency "$TINY_BUILD/tests/t_concurrency"
C=$TINY_BUILD/tests/client
if [ -x "$C" ]; then
    out=$("$C" stats)
    clients=$(sed -n 's/.*clients=\([0-9]*\) .*/\1/p' <<<"$out")
    is "$clients" 1 "afterwards tinyd counts only the stats client ($out)"
fi
stop_tinyd_checked
ipc_clean_since
done_testing
