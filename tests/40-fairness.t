#!/bin/bash
# Weighted fair queueing: small-request latency next to a 4 GiB stream (its
# p99 over some 2,000 requests: a shorter stream gives too few for a p99),
# and 3:2:1 weights -> 1/2, 1/3, 1/6 of the bytes (t_fairness.c).
. "$(dirname "$0")/lib.sh"
need_build tinyd tests/t_fairness
ipc_snapshot
start_tinyd_or_bail -w 2
tap_run fairness "$TINY_BUILD/tests/t_fairness" 4096 3
stop_tinyd_checked
ipc_clean_since
done_testing
