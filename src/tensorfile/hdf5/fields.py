"""Little-endian fields of one HDF5 structure already read into memory, each read checked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import FormatError

if TYPE_CHECKING:
    from .structures import Reader

MAX_CHUNK = 16 << 20  # one object-header chunk, local-heap segment or global-heap collection
MAX_DEPTH = 64  # B-tree levels, nested datatypes, soft-link hops


class Cursor:
    """Little-endian fields of one structure already read into memory; FormatError past its end."""

    __slots__ = ("data", "h5", "pos", "what")

    def __init__(self, data: bytes, h5: Reader, what: str, pos: int = 0) -> None:
        self.data, self.h5, self.what, self.pos = data, h5, what, pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise FormatError(f"HDF5 {self.what} is cut short: corrupt structure", self.h5.name)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")

    def u8(self) -> int:
        return self.uint(1)

    def u16(self) -> int:
        return self.uint(2)

    def u32(self) -> int:
        return self.uint(4)

    def addr(self) -> int:
        return self.uint(self.h5.so)

    def length(self) -> int:
        return self.uint(self.h5.sl)

    def skip(self, n: int) -> None:
        self.take(n)

    def align(self, start: int = 0) -> None:
        self.pos += (8 - (self.pos - start) % 8) % 8

    def cstring(self) -> bytes:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise FormatError(f"HDF5 {self.what}: unterminated name", self.h5.name)
        text = self.data[self.pos : end]
        self.pos = end + 1
        return text

    def signature(self, expected: bytes) -> None:
        if self.take(len(expected)) != expected:
            raise FormatError(f"HDF5 {self.what}: signature {expected.decode()} missing", self.h5.name)


def enc_size(value: int) -> int:
    """Bytes libhdf5 uses to encode counts up to `value` (H5VM_limit_enc_size)."""
    return (max(value, 1).bit_length() - 1) // 8 + 1
