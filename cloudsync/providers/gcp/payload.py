"""CRC32C of payloads: sent with every value written, checked on every value read.

Secret Manager verifies ``data_crc32c`` on ``AddSecretVersion`` and returns it on
``AccessSecretVersion``; checking both ways catches corruption in transit. A table-driven
pure-Python CRC is plenty for payloads of at most 64 KiB (the service's limit).
"""

from __future__ import annotations


def _table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
