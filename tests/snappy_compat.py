"""python3-snappy's framing code, usable on Debian 12.

Debian 12's compiled snappy._crc32c fails on Python 3.11; importing this
module replaces it with a pure-Python, table-driven CRC-32C (fine for a few
MiB). Test scripts find it through PYTHONPATH, which tests/lib.sh sets.
"""
import snappy.snappy as _impl


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


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


_impl._crc32c = crc32c
