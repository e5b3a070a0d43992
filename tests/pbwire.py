"""A tiny protobuf writer for hand-made messages in tests (hostile cases and formats whose
writers are not installed). Only the two wire shapes the tests need: varints and LEN fields."""

from __future__ import annotations


def varint(value: int) -> bytes:
    """Base-128 varint; negative int64 values become ten-byte varints as protobuf writes them."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, payload: bytes | int) -> bytes:
    """Field `number`: a varint (wire type 0) for an int, else length-delimited (wire type 2)."""
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | 2) + varint(len(payload)) + payload
