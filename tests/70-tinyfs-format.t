#!/bin/bash
# 70-tinyfs-format.t - tinyfs's stored layout without a daemon or a mount:
# the unit tests of tinyfs/format.c, and python3-snappy (a plain framing
# decoder) reading a stored file back to exactly its logical bytes.
. "$(dirname "$0")/lib.sh"

need_build tests/tinyfs_format

tap_run "format" "$TINY_BUILD/tests/tinyfs_format" "$TMP_DIR/sample.stored" "$TMP_DIR/sample.raw"

if /usr/bin/python3 -c 'import snappy' 2>/dev/null; then
    /usr/bin/python3 - "$TMP_DIR/sample.stored" "$TMP_DIR/sample.raw" <<'EOF'
import sys, snappy_compat, snappy.snappy as s
d = s.StreamDecompressor()
out = d.decompress(open(sys.argv[1], 'rb').read())
d.flush()
sys.exit(0 if out == open(sys.argv[2], 'rb').read() else 1)
EOF
    ok $? "python3-snappy decodes a stored file to its logical bytes (header and padding skipped)"
else
    skip "python3-snappy is not installed"
fi

done_testing
