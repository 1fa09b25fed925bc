#!/usr/bin/python3
"""Snappy framing-format interop with python3-snappy, for tests/22-interop.t.

    framing_interop.py compress IN OUT     python3-snappy's stream compressor
    framing_interop.py decompress IN OUT   python3-snappy's stream decompressor
    framing_interop.py craft IN OUT        a stream using every chunk kind a
                                           decoder must accept: compressed and
                                           uncompressed data chunks, padding,
                                           skippable chunks, a repeated stream
                                           identifier (concatenation)

Debian 12's compiled snappy._crc32c is broken on Python 3.11, so the module's
CRC-32C is replaced by a pure-Python one (table driven, fine for a few MiB).
Exit status: 0 on success, 1 when python3-snappy rejects the input.
"""
import io
import struct
import sys

import snappy
import snappy.snappy as snappy_impl


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t.append(c)
    return t


_T = _table()


def crc32c(data):
    c = 0xFFFFFFFF
    t = _T
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


snappy_impl._crc32c = crc32c


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


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
