"""JAX/Flax msgpack: flax.serialization.to_bytes of a nested dict, arrays as msgpack ext type 1."""

from __future__ import annotations

import struct
from typing import Any

from ..model import CERTAIN, LIKELY, Detection
from ..probe import FileProbe

EXT_NDARRAY, EXT_NATIVE_COMPLEX, EXT_NPSCALAR = 1, 2, 3
_TRAIN_STATE_KEYS = {"step", "params", "opt_state"}


class _Stop(Exception):
    """The walk ran past the bytes we hold or found what it needed."""


class _Walker:
    """Walks msgpack in a byte prefix without materialising values."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.ext_types: dict[int, int] = {}
        self.visited = 0

    def _need(self, pos: int, n: int) -> None:
        if pos + n > len(self.buf):
            raise _Stop

    def _uint(self, pos: int, n: int) -> int:
        self._need(pos, n)
        return int.from_bytes(self.buf[pos : pos + n], "big")

    def map_header(self, pos: int) -> tuple[int, int] | None:
        self._need(pos, 1)
        b = self.buf[pos]
        if 0x80 <= b <= 0x8F:
            return b & 0x0F, pos + 1
        if b == 0xDE:
            return self._uint(pos + 1, 2), pos + 3
        if b == 0xDF:
            return self._uint(pos + 1, 4), pos + 5
        return None

    def string(self, pos: int) -> tuple[str, int] | None:
        self._need(pos, 1)
        b = self.buf[pos]
        if 0xA0 <= b <= 0xBF:
            n, start = b & 0x1F, pos + 1
        elif b == 0xD9:
            n, start = self._uint(pos + 1, 1), pos + 2
        elif b == 0xDA:
            n, start = self._uint(pos + 1, 2), pos + 3
        elif b == 0xDB:
            n, start = self._uint(pos + 1, 4), pos + 5
        else:
            return None
        self._need(start, n)
        return self.buf[start : start + n].decode("utf-8", "replace"), start + n

    def skip(self, pos: int, depth: int = 0) -> int:
        """Position after the value at `pos`, recording ext types on the way."""
        if depth > 64:
            raise ValueError("nesting too deep")
        self.visited += 1
        self._need(pos, 1)
        b = self.buf[pos]
        if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
            return pos + 1
        if 0x80 <= b <= 0x8F or b in (0xDE, 0xDF):
            n, p = self.map_header(pos)  # type: ignore[misc]
            for _ in range(2 * n):
                p = self.skip(p, depth + 1)
            return p
        if 0x90 <= b <= 0x9F or b in (0xDC, 0xDD):
            n, p = (
                (b & 0x0F, pos + 1)
                if b <= 0x9F
                else ((self._uint(pos + 1, 2), pos + 3) if b == 0xDC else (self._uint(pos + 1, 4), pos + 5))
            )
            for _ in range(n):
                p = self.skip(p, depth + 1)
            return p
        if 0xA0 <= b <= 0xBF or b in (0xD9, 0xDA, 0xDB):
            return self.string(pos)[1]  # type: ignore[index]
        sizes = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xCA: 4, 0xCB: 8}
        if b in sizes:
            return pos + 1 + sizes[b]
        if b in (0xC4, 0xC5, 0xC6):  # bin 8/16/32
            width = {0xC4: 1, 0xC5: 2, 0xC6: 4}[b]
            return pos + 1 + width + self._uint(pos + 1, width)
        if 0xD4 <= b <= 0xD8:  # fixext 1..16
            self._need(pos, 2)
            self._ext(struct.unpack_from("b", self.buf, pos + 1)[0])
            return pos + 2 + (1 << (b - 0xD4))
        if b in (0xC7, 0xC8, 0xC9):  # ext 8/16/32
            width = {0xC7: 1, 0xC8: 2, 0xC9: 4}[b]
            n = self._uint(pos + 1, width)
            self._need(pos + 1 + width, 1)
            self._ext(struct.unpack_from("b", self.buf, pos + 1 + width)[0])
            return pos + 2 + width + n
        raise ValueError(f"byte {b:#x} is not msgpack")

    def _ext(self, code: int) -> None:
        self.ext_types[code] = self.ext_types.get(code, 0) + 1
        if self.ext_types.get(EXT_NDARRAY, 0) >= 4:
            raise _Stop


def detect_file(probe: FileProbe) -> Detection | None:
    walker = _Walker(probe.head)
    try:
        header = walker.map_header(0)
    except _Stop:
        return None
    if header is None or header[0] == 0:
        return None
    count, pos = header
    keys: list[str] = []
    try:
        for _ in range(count):
            key = walker.string(pos)
            if key is None:
                return None
            keys.append(key[0])
            pos = walker.skip(key[1])
    except _Stop:
        pass
    except (ValueError, UnicodeDecodeError):
        return None
    if not keys:
        return None
    arrays = walker.ext_types.get(EXT_NDARRAY, 0) + walker.ext_types.get(EXT_NPSCALAR, 0)
    unknown_ext = set(walker.ext_types) - {EXT_NDARRAY, EXT_NATIVE_COMPLEX, EXT_NPSCALAR}
    if unknown_ext:
        return None
    details: dict[str, Any] = {"top_level_keys": keys[:16]}
    if set(keys) >= _TRAIN_STATE_KEYS:
        details["kind"] = "train-state"
    evidence = [f"msgpack map with string keys ({', '.join(keys[:4])}{'…' if len(keys) > 4 else ''})"]
    if arrays:
        evidence.append("arrays as msgpack ext type 1 (flax.serialization ndarray)")
        return Detection("flax-msgpack", CERTAIN, evidence, details)
    if probe.ext in (".msgpack", ".flax"):
        return Detection("flax-msgpack", LIKELY, evidence, details, ["no array found in the first bytes"])
    return None
