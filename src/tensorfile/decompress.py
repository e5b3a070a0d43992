"""Decompressed streams: gzip, zlib, raw deflate, bz2, xz and lzma behind one forward-only raw stream.

Shared by the joblib pickle reader (formats/pickle.py) and the archive scanner (scan/archive_streams.py).
The scanner's limits and CRC checks live in its own wrapper around this stream (`GuardedStream`), so
they apply to every member, stored or compressed.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO

from .source import PositionedStream

IN_CHUNK = 64 << 10  # compressed bytes read per refill
SKIP_CHUNK = 1 << 20  # decompressed bytes produced per step of a forward seek
DECODE_ERRORS = (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError)

# Builds a decompressor for a stream; it gets the compressed stream so that a format with its
# own header (zip's LZMA) can read that header first.
DecoderFactory = Callable[[BinaryIO], Any]


class ZlibDecompressor:
    """zlib's decompressobj behind the lzma/bz2 decompressor interface (eof, needs_input, max_length)."""

    def __init__(self, wbits: int) -> None:
        self._d = zlib.decompressobj(wbits)

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def needs_input(self) -> bool:
        return not self._d.unconsumed_tail

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return self._d.decompress(self._d.unconsumed_tail + data, max_length)


_ZLIB_WBITS = {"gzip": 31, "zlib": 15, "deflate": -15}
_LZMA_FORMATS = {"xz": lzma.FORMAT_XZ, "lzma": lzma.FORMAT_ALONE}
KINDS = frozenset({*_ZLIB_WBITS, "bz2", *_LZMA_FORMATS})  # what new_decompressor builds


def new_decompressor(kind: str, *, memlimit: int | None = None) -> Any:
    """A fresh decompressor for gzip / zlib / deflate (raw) / bz2 / xz / lzma (.lzma "alone" files).

    `memlimit` caps what an xz/lzma stream may ask for (its dictionary); ValueError for other kinds.
    """
    if kind in _ZLIB_WBITS:
        return ZlibDecompressor(_ZLIB_WBITS[kind])
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind in _LZMA_FORMATS:
        return lzma.LZMADecompressor(_LZMA_FORMATS[kind], memlimit=memlimit)
    raise ValueError(f"unknown compression {kind!r}")


class DecompressedStream(PositionedStream):
    """Decompressed bytes of a compressed stream, produced a bounded chunk at a time.

    Forward-only: `seek` moves ahead by decompressing and dropping bytes (a backward seek raises
    OSError, a seek past the end stops there). `multi`: concatenated streams are read on (gzip
    members, bz2/xz streams), zero padding between them is skipped and a trailing part that is
    not a valid stream is ignored. `allow_truncated`: compressed data that ends before its stream
    does just ends the output, for readers that report a short read themselves; otherwise it is an
    EOFError. Damaged data raises the decompressor's own error either way.
    """

    def __init__(
        self, src: BinaryIO, make: DecoderFactory, *, multi: bool = False, allow_truncated: bool = False
    ) -> None:
        super().__init__()
        self._src = src
        self._make = make
        self._dec = make(src)
        self._multi = multi
        self._allow_truncated = allow_truncated
        self._feed = b""
        self._later = False  # decoding a stream after the first
        self._produced = 0  # bytes out of the current stream
        self._done = False
        self._pos = 0

    def readinto(self, buffer: Any) -> int:
        out = self._next(len(buffer))
        buffer[: len(out)] = out
        return len(out)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence not in (io.SEEK_SET, io.SEEK_CUR):
            raise io.UnsupportedOperation("a decompressed stream cannot seek from its end")
        target = offset if whence == io.SEEK_SET else self._pos + offset
        if target < self._pos:
            raise OSError("cannot seek backwards in a compressed stream")
        while self._pos < target and self._next(min(target - self._pos, SKIP_CHUNK)):
            pass
        return self._pos

    def _next(self, n: int) -> bytes:
        """Up to `n` decompressed bytes; empty at the end of the data."""
        while not self._done and n > 0:
            dec = self._dec
            if dec.eof:
                if not self._multi or not self._restart(dec.unused_data):
                    self._done = True
                    break
                continue
            exhausted = False
            if dec.needs_input:
                data, self._feed = self._feed or self._src.read(IN_CHUNK), b""
                exhausted = not data
            else:
                data = b""
            try:
                out = dec.decompress(data, n)
            except DECODE_ERRORS:
                if self._later and not self._produced:
                    self._done = True  # trailing bytes that are not a stream: ignored, like gzip/bz2
                    break
                raise
            if out:
                self._produced += len(out)
                self._pos += len(out)
                return out
            if exhausted and not dec.eof:
                if (self._later and not self._produced) or self._allow_truncated:
                    self._done = True
                    break
                raise EOFError("compressed data ends before the end of its stream (truncated)")
        return b""

    def _restart(self, rest: bytes) -> bool:
        """Start decoding the next concatenated stream; False when only zero padding is left."""
        while True:
            rest = rest.lstrip(b"\x00")
            if rest:
                break
            rest = self._src.read(IN_CHUNK)
            if not rest:
                return False
        self._dec = self._make(io.BytesIO(b""))
        self._feed = rest
        self._later = True
        self._produced = 0
        return True

    def close(self) -> None:
        try:
            self._src.close()
        finally:
            super().close()
