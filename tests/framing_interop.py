#!/usr/bin/python3
"""Snappy framing-format interop with python3-snappy, for tests/22-interop.t.

    framing_interop.py compress IN OUT     python3-snappy's stream compressor
    framing_interop.py decompress IN OUT   python3-snappy's stream decompressor
    framing_interop.py craft IN OUT        a stream using every chunk kind a
                                           decoder must accept: compressed and
                                           uncompressed data chunks, padding,
                                           skippable chunks, a repeated stream
                                           identifier (concatenation)

snappy_compat replaces python3-snappy's CRC-32C, broken on Debian 12's Python 3.11.
Exit status: 0 on success, 1 when python3-snappy rejects the input.
"""
import io
import struct
import sys

import snappy
import snappy_compat  # noqa: F401  (patches the CRC-32C)
from snappy_compat import masked


def chunk(kind, body):
    return struct.pack("<L", kind | (len(body) << 8)) + body


def craft(data):
    out = [chunk(0xFF, b"sNaPpY")]
    pos, i = 0, 0
    while pos < len(data):
        piece = data[pos:pos + 50000]
        pos += len(piece)
        k = i % 5
        if k in (0, 3):
            out.append(chunk(0x00, struct.pack("<L", masked(piece)) + snappy.compress(piece)))
        else:
            out.append(chunk(0x01, struct.pack("<L", masked(piece)) + piece))
        if k == 1:
            out.append(chunk(0xFE, b"\0" * 100))
        if k == 2:
            out.append(chunk(0x80 + i % 0x7E, b"skip me" * 9))
        if k == 4:
            out.append(chunk(0xFF, b"sNaPpY"))
        i += 1
    return b"".join(out)


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    mode, src, dst = sys.argv[1:]
    with open(src, "rb") as f:
        data = f.read()
    if mode == "compress":
        out = io.BytesIO()
        snappy.stream_compress(io.BytesIO(data), out)
        result = out.getvalue()
    elif mode == "decompress":
        out = io.BytesIO()
        try:
            snappy.stream_decompress(io.BytesIO(data), out)
        except Exception as e:  # UncompressError and friends
            print("framing_interop.py: %s: %s" % (src, e), file=sys.stderr)
            return 1
        result = out.getvalue()
    elif mode == "craft":
        result = craft(data)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    with open(dst, "wb") as f:
        f.write(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
