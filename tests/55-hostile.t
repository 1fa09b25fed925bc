#!/bin/bash
# 55-hostile.t - hostile and broken clients against a real tinyd
# (tests/hostile.c): garbage on the registration queue and on a private
# queue, wrong versions, out-of-range slots, offsets and lengths, a segment
# changed while tinyd reads it, a client that never collects its replies, a
# registration flood (with the throughput of a well-behaved client during
# it compared with before it), another uid. tinyd must survive all of it.
. "$(dirname "$0")/lib.sh"
need_build tinyd tests/hostile
ipc_snapshot
start_tinyd_or_bail -w 2 --max-clients 64
tap_run hostile "$TINY_BUILD/tests/hostile"
kill -0 "$TINYD_PID" 2>/dev/null
ok $? "tinyd survived every hostile client"
stop_tinyd_checked
ipc_clean_since
done_testing
