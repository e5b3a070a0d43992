"""What the parser fuzzer (bench/fuzz_parsers.py) feeds the parsers: where a seed's structure lies,
how to damage it, and hand-built hostile shapes.

`layout(data)` finds a file's structural boundaries (record starts and ends, field starts) and its
length/offset fields, with small walkers of our own for zip, tar, 7z, gzip, protobuf, GGUF,
safetensors, npy, pickle (pickletools.genops, which parses and never executes), msgpack, HDF5
(superblock addresses, the root's object header, the structures' signatures), and for anything
else aligned little-endian words whose value could be a length or an offset.
`mutate(data, layout, rng, kind)` applies one mutation of `KINDS`. `synthetic_cases()` are
small files built to hurt: deep nesting, huge declared lengths, loops, bombs, entity expansion.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import pickletools
import random
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

# --- layouts -----------------------------------------------------------------------------------


@dataclass
class Layout:
    """Structural boundaries and length/offset fields of one file (offsets into its bytes)."""

    boundaries: set[int] = field(default_factory=set)
    # (offset, width in bytes, encoding): "<" / ">" little/big-endian unsigned, "varint",
    # "octal" (tar), "ascii" (decimal digits in text)
    fields: list[tuple[int, int, str]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # which walkers recognised something
    fixup: Callable[[bytearray], None] | None = None  # checksums to recompute after a mutation

    def add(self, other: Layout, base: int) -> None:
        self.boundaries.update(base + b for b in other.boundaries)
        self.fields.extend((base + o, w, e) for o, w, e in other.fields)
        self.kinds.extend(other.kinds)


MAX_FIELDS = 20_000


def layout(data: bytes, depth: int = 0) -> Layout:
    """Every walker that recognises `data` adds what it found; generic words always."""
    out = Layout(boundaries={0, len(data)})
    for walker in _WALKERS:
        try:
            found = walker(data, depth)
        except (ValueError, IndexError, struct.error, EOFError, KeyError, zlib.error, OSError):
            found = None
        if found is not None:
            out.add(found, 0)
            out.fixup = out.fixup or found.fixup
    if depth == 0:
        out.add(_text_numbers(data), 0)
        out.add(_generic_words(data), 0)
    out.boundaries = {b for b in out.boundaries if 0 <= b <= len(data)}
    out.fields = [f for f in out.fields if f[0] >= 0 and f[0] + f[1] <= len(data)][:MAX_FIELDS]
    return out


def _zip(data: bytes, depth: int) -> Layout | None:
    if b"PK\x05\x06" not in data[-66_000:] and not data.startswith(b"PK\x03\x04"):
        return None
    out = Layout(kinds=["zip"])
    for m in re.finditer(rb"PK\x03\x04", data):
        pos = m.start()
        if pos + 30 > len(data):
            continue
        method, _, _, _, csize, _, nlen, xlen = struct.unpack_from("<HHHIIIHH", data, pos + 8)
        start = pos + 30 + nlen + xlen
        out.boundaries.update({pos, pos + 30, start, start + csize})
        out.fields += [(pos + 18, 4, "<"), (pos + 22, 4, "<"), (pos + 26, 2, "<"), (pos + 28, 2, "<")]
        if method == 0 and depth < 2 and 0 < csize <= len(data) - start:
            out.add(layout(data[start : start + csize], depth + 1), start)
    for m in re.finditer(rb"PK\x01\x02", data):
        pos = m.start()
        out.boundaries.update({pos, pos + 46})
        out.fields += [(pos + o, w, "<") for o, w in ((20, 4), (24, 4), (28, 2), (30, 2), (32, 2), (42, 4))]
    for m in re.finditer(rb"PK\x05\x06", data):
        pos = m.start()
        out.boundaries.update({pos, pos + 22})
        out.fields += [(pos + o, w, "<") for o, w in ((8, 2), (10, 2), (12, 4), (16, 4), (20, 2))]
    for m in re.finditer(rb"PK\x06\x06", data):
        pos = m.start()
        out.fields += [(pos + o, 8, "<") for o in (4, 24, 32, 40, 48)]
    for m in re.finditer(rb"PK\x06\x07", data):
        out.fields.append((m.start() + 8, 8, "<"))
    return out


def _tar(data: bytes, depth: int) -> Layout | None:
    if len(data) < 512 or data[257:262] != b"ustar":
        return None
    out = Layout(kinds=["tar"])
    pos = 0
    while pos + 512 <= len(data) and data[pos + 257 : pos + 262] == b"ustar":
        size = int(data[pos + 124 : pos + 136].strip(b"\0 ") or b"0", 8)
        out.boundaries.update({pos, pos + 512, pos + 512 + size})
        out.fields.append((pos + 124, 11, "octal"))
        if depth < 2 and size:
            out.add(layout(data[pos + 512 : pos + 512 + size], depth + 1), pos + 512)
        pos += 512 + (size + 511) // 512 * 512
    out.boundaries.add(pos)
    return out


def _sevenzip(data: bytes, depth: int) -> Layout | None:
    if not data.startswith(b"7z\xbc\xaf\x27\x1c") or len(data) < 32:
        return None
    offset, size = struct.unpack_from("<QQ", data, 12)

    def fix(buf: bytearray) -> None:  # the start header's CRC covers the next-header pointer
        if len(buf) >= 32:
            buf[8:12] = struct.pack("<I", zlib.crc32(bytes(buf[12:32])))

    return Layout(
        boundaries={6, 8, 12, 32, 32 + offset, 32 + offset + size},
        fields=[(12, 8, "<"), (20, 8, "<")],
        kinds=["7z"],
        fixup=fix,
    )


def _compressed(data: bytes, depth: int) -> Layout | None:
    if data.startswith(b"\x1f\x8b"):
        return Layout({10, len(data) - 8}, [(len(data) - 4, 4, "<")], ["gzip"])
    if data.startswith((b"BZh", b"\xfd7zXZ\x00")) or data[:1] == b"\x78":
        return Layout({4, len(data) - 4}, [], ["compressed"])
    return None


def _protobuf(data: bytes, depth: int) -> Layout | None:
    if depth > 0 or not data or data[:1] in (b"{", b"<", b"P", b"\x80", b"\x93", b"G"):
        return None
    out = Layout(kinds=["protobuf"])
    if not _walk_message(data, 0, len(data), out, 0):
        return None
    return out


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while pos < end and shift < 70:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError("bad varint")


def _walk_message(data: bytes, start: int, end: int, out: Layout, level: int) -> bool:
    """Whether [start, end) parses as one message; adds its fields (and its submessages')."""
    pos = start
    found: list[tuple[int, int, str]] = []
    starts: list[int] = []
    nested: list[tuple[int, int]] = []
    while pos < end:
        starts.append(pos)
        try:
            key, pos = _varint(data, pos, end)
            wire = key & 7
            if key >> 3 == 0:
                return False
            if wire == 0:
                _, pos = _varint(data, pos, end)
            elif wire in (1, 5):
                pos += 8 if wire == 1 else 4
            elif wire == 2:
                length_at = pos
                length, pos = _varint(data, pos, end)
                found.append((length_at, pos - length_at, "varint"))
                nested.append((pos, pos + length))
                pos += length
            else:
                return False
        except ValueError:
            return False
        if pos > end or len(out.fields) + len(found) > MAX_FIELDS:
            return False
    out.boundaries.update(starts)
    out.boundaries.add(end)
    out.fields.extend(found)
    if level < 8:
        for a, b in nested:
            if b - a >= 2:
                sub = Layout()
                if _walk_message(data, a, b, sub, level + 1):
                    out.add(sub, 0)
    return True


_GGUF_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _gguf(data: bytes, depth: int) -> Layout | None:
    if not data.startswith(b"GGUF") or len(data) < 24:
        return None
    out = Layout({4, 8, 16, 24}, [(8, 8, "<"), (16, 8, "<")], ["gguf"])
    n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)
    pos = 24

    def string(pos: int) -> int:
        out.fields.append((pos, 8, "<"))
        (n,) = struct.unpack_from("<Q", data, pos)
        return pos + 8 + n

    def value(pos: int, vtype: int) -> int:
        if vtype in _GGUF_SCALARS:
            return pos + _GGUF_SCALARS[vtype]
        if vtype == 8:
            return string(pos)
        if vtype == 9:
            etype, count = struct.unpack_from("<IQ", data, pos)
            out.fields.append((pos + 4, 8, "<"))
            pos += 12
            for _ in range(min(count, 100_000)):
                pos = value(pos, etype)
            return pos
        raise ValueError(vtype)

    for _ in range(min(n_kv, 100_000)):
        out.boundaries.add(pos)
        pos = string(pos)
        (vtype,) = struct.unpack_from("<I", data, pos)
        pos = value(pos + 4, vtype)
    for _ in range(min(n_tensors, 100_000)):
        out.boundaries.add(pos)
        pos = string(pos)
        (n_dims,) = struct.unpack_from("<I", data, pos)
        out.fields.append((pos, 4, "<"))
        out.fields += [(pos + 4 + 8 * i, 8, "<") for i in range(min(n_dims, 8))]
        pos += 4 + 8 * n_dims
        out.fields.append((pos + 4, 8, "<"))  # the tensor's data offset
        pos += 12
    out.boundaries.add(pos)
    return out


def _safetensors(data: bytes, depth: int) -> Layout | None:
    if len(data) < 10 or data[8:9] != b"{":
        return None
    (n,) = struct.unpack_from("<Q", data, 0)
    if n > len(data):
        return None
    out = Layout({8, 8 + n}, [(0, 8, "<")], ["safetensors"])
    out.add(_text_numbers(data[8 : 8 + n]), 8)
    return out


def _npy(data: bytes, depth: int) -> Layout | None:
    if not data.startswith(b"\x93NUMPY") or len(data) < 10:
        return None
    if data[6] == 1:
        (n,) = struct.unpack_from("<H", data, 8)
        return Layout({6, 8, 10, 10 + n}, [(8, 2, "<")], ["npy"])
    (n,) = struct.unpack_from("<I", data, 8)
    return Layout({6, 8, 12, 12 + n}, [(8, 4, "<")], ["npy"])


# Pickle opcodes whose argument starts with a byte count: name -> width of the count.
_PICKLE_COUNTS = {
    "BINSTRING": 4,
    "SHORT_BINSTRING": 1,
    "BINBYTES": 4,
    "SHORT_BINBYTES": 1,
    "BINBYTES8": 8,
    "BYTEARRAY8": 8,
    "BINUNICODE": 4,
    "SHORT_BINUNICODE": 1,
    "BINUNICODE8": 8,
    "FRAME": 8,
    "LONG1": 1,
    "LONG4": 4,
}


def _pickle(data: bytes, depth: int) -> Layout | None:
    if data[:1] != b"\x80" or len(data) < 3:
        return None
    out = Layout(kinds=["pickle"])
    stream = io.BytesIO(data)
    try:
        for i, (op, _arg, pos) in enumerate(pickletools.genops(stream)):
            out.boundaries.add(pos)
            width = _PICKLE_COUNTS.get(op.name)
            if width:
                out.fields.append((pos + 1, width, "<"))
            if i > 200_000:
                break
    except Exception:  # genops raises ValueError and friends on a broken stream: keep what parsed
        pass
    if not out.boundaries:
        return None
    out.boundaries.add(stream.tell())
    return out


_MSGPACK_COUNTS = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4, 0xDC: 2, 0xDD: 4, 0xDE: 2, 0xDF: 4}


def _msgpack(data: bytes, depth: int) -> Layout | None:
    if not data or not (0x80 <= data[0] <= 0x8F or data[0] in (0xDE, 0xDF)) or data.startswith(HDF5_MAGIC):
        return None
    out = Layout(kinds=["msgpack"])
    for pos, byte in enumerate(data[:65536]):
        width = _MSGPACK_COUNTS.get(byte)
        if width:
            out.fields.append((pos + 1, width, ">"))
            out.boundaries.add(pos)
    return out


HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# signatures of HDF5's v2 structures and B-tree/heap nodes: object headers and their
# continuations, v1 B-trees, local heaps, symbol table nodes, global heaps, fractal heaps, v2 B-trees
_HDF5_SIGNATURES = re.compile(rb"OHDR|OCHK|TREE|HEAP|SNOD|GCOL|FRHP|FHDB|FHIB|BTHD|BTIN|BTLF")


def hdf5_start(data: bytes) -> int | None:
    """Where an HDF5 superblock is (offset 0, then powers of two from 512, as libhdf5 looks)."""
    offset = 0
    while offset + 8 <= min(len(data), 1 << 20):
        if data[offset : offset + 8] == HDF5_MAGIC:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


def _hdf5(data: bytes, depth: int) -> Layout | None:
    start = hdf5_start(data)
    if start is None or len(data) < start + 56:
        return None
    out = Layout(kinds=["hdf5"])
    version = data[start + 8]
    root = None
    if version in (0, 1):  # sizes of offsets and lengths, then base, free-space, EOF, driver
        first = start + 24 + (4 if version == 1 else 0)  # addresses and the root's symbol table entry
        out.fields += [(start + 13, 1, "<"), (start + 14, 1, "<")]
        out.fields += [(first + 8 * i, 8, "<") for i in range(6)]
        out.boundaries.update({start, start + 8, first, first + 32, first + 40, first + 80})
        root = struct.unpack_from("<Q", data, first + 40)[0] + start
    elif version in (2, 3):  # base, extension, EOF, root object header
        out.fields += [(start + 9, 1, "<"), (start + 10, 1, "<")]
        out.fields += [(start + 12 + 8 * i, 8, "<") for i in range(4)]
        out.boundaries.update({start, start + 12, start + 44, start + 48})
    if root is not None and root + 16 <= len(data) and data[root] == 1:
        _hdf5_header_v1(data, root, out)
    for m in _HDF5_SIGNATURES.finditer(data):
        pos = m.start()
        out.boundaries.update({pos, pos + 4, pos + 5, pos + 8})
        for at in range(pos + 4, min(pos + 48, len(data) - 7)):  # the addresses and sizes after it
            (value,) = struct.unpack_from("<Q", data, at)
            if 0 < value < len(data):
                out.fields.append((at, 8, "<"))
            elif at % 2 == 0 and 0 < struct.unpack_from("<H", data, at)[0] < len(data):
                out.fields.append((at, 2, "<"))
        if len(out.fields) > MAX_FIELDS // 2:
            break
    return out


def _hdf5_header_v1(data: bytes, addr: int, out: Layout) -> None:
    """The root's v1 object header: message count, header size, then each message's type and size."""
    count, size = struct.unpack_from("<H4xI", data, addr + 2)
    out.fields += [(addr + 2, 2, "<"), (addr + 8, 4, "<")]
    pos, end = addr + 16, min(addr + 16 + size, len(data))
    for _ in range(min(count, 1000)):
        if pos + 8 > end:
            break
        (msize,) = struct.unpack_from("<H", data, pos + 2)
        out.boundaries.update({pos, pos + 8})
        out.fields += [(pos, 2, "<"), (pos + 2, 2, "<")]
        pos += 8 + msize


_WALKERS = (
    _zip,
    _tar,
    _sevenzip,
    _compressed,
    _protobuf,
    _gguf,
    _safetensors,
    _npy,
    _pickle,
    _msgpack,
    _hdf5,
)


def _text_numbers(data: bytes) -> Layout:
    """Decimal numbers in the text parts of the head (JSON, XML, npy headers, prototxt)."""
    out = Layout()
    for m in re.finditer(rb"(?<![\w.])\d{1,19}(?![\w.])", data[:65536]):
        out.fields.append((m.start(), m.end() - m.start(), "ascii"))
        if len(out.fields) > 2000:
            break
    for m in re.finditer(rb"[{}\[\]<>]", data[:65536]):
        out.boundaries.add(m.start())
        if len(out.boundaries) > 2000:
            break
    return out


def _generic_words(data: bytes) -> Layout:
    """Aligned little-endian u32/u64 words whose value could be a length or an offset in the file."""
    out = Layout()
    size = len(data)
    windows = [(0, min(size, 65536))]
    if size > 65536:
        windows.append((size - 4096 - (size % 4), size))
    for start, stop in windows:
        for pos in range(start - start % 4, stop - 3, 4):
            (v,) = struct.unpack_from("<I", data, pos)
            if 0 < v <= size and v not in (0x01010101,):
                out.fields.append((pos, 4, "<"))
                if pos % 8 == 0 and pos + 8 <= size and data[pos + 4 : pos + 8] == b"\0\0\0\0":
                    out.fields.append((pos, 8, "<"))
    return out


# --- mutations ---------------------------------------------------------------------------------

HUGE = (2**31 - 1, 2**31, 2**32 - 1, 2**40, 2**48, 2**62, 2**63 - 1, 2**64 - 1)
INTERESTING = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE)
KINDS = (
    "bitflip",  # 1-8 bits flipped, half of them near a boundary
    "bytes",  # 1-4 bytes set to 0x00 0xff 0x7f 0x80 … or random
    "insert",  # 1-64 bytes inserted at a boundary or anywhere
    "delete",  # 1-64 bytes removed at a boundary or anywhere
    "truncate",  # cut at a structural boundary (or one byte either side)
    "huge-length",  # a length/offset field set to 2^31 … 2^64-1 (a 1 TB header in a small file)
    "past-eof",  # a length/offset field pointing just past the end of the file
    "self-pointer",  # an offset field pointing at itself, at 0, or back to the previous record (loops)
    "duplicate",  # a run between two boundaries copied to another boundary (repeated records)
    "zero-run",  # 1-256 bytes zeroed at a boundary
)


def _near(rng: random.Random, lay: Layout, size: int) -> int:
    """A position: half the time at (or just after) a structural boundary, else uniform."""
    if lay.boundaries and rng.random() < 0.5:
        pos = rng.choice(sorted(lay.boundaries)) + rng.choice((0, 0, 1, 2, 4, 8))
    else:
        pos = rng.randrange(size + 1)
    return min(max(pos, 0), size)


def _write_field(buf: bytearray, spot: tuple[int, int, str], value: int, rng: random.Random) -> bytearray:
    offset, width, encoding = spot
    if encoding in ("<", ">"):
        value &= (1 << (8 * width)) - 1
        buf[offset : offset + width] = value.to_bytes(width, "little" if encoding == "<" else "big")
    elif encoding == "varint":
        if rng.random() < 0.5 and value < 1 << (7 * width):  # same size: the rest stays in place
            raw = bytearray(value >> (7 * i) & 0x7F | 0x80 for i in range(width))
            raw[-1] &= 0x7F
        else:
            raw = bytearray()
            v = value & (1 << 64) - 1
            while True:
                raw.append(v & 0x7F | (0x80 if v > 0x7F else 0))
                v >>= 7
                if not v:
                    break
        buf[offset : offset + width] = raw
    elif encoding == "octal":
        text = f"{value:o}"
        if len(text) > width:  # GNU base-256 for sizes octal cannot hold
            buf[offset : offset + 12] = b"\x80" + (value & (1 << 88) - 1).to_bytes(11, "big")
        else:
            buf[offset : offset + width] = text.rjust(width, "0").encode()
    else:  # ascii digits
        buf[offset : offset + width] = str(value).encode()
    return buf


def _spot(lay: Layout, rng: random.Random) -> tuple[int, int, str] | None:
    return rng.choice(lay.fields) if lay.fields else None


def mutate(data: bytes, lay: Layout, rng: random.Random, kind: str) -> bytes:
    """`data` with one mutation of `kind` (a different one where `kind` needs fields it lacks)."""
    buf = bytearray(data)
    size = len(buf)
    if not size:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 64)))
    if kind in ("huge-length", "past-eof", "self-pointer"):
        spot = _spot(lay, rng)
        if spot is None:
            kind = "bitflip"
        else:
            if kind == "huge-length":
                value = rng.choice(HUGE)
            elif kind == "past-eof":
                value = size - spot[0] + rng.choice((1, 8, 4096, size)) if rng.random() < 0.5 else size + 1
            else:
                earlier = [b for b in lay.boundaries if b < spot[0]]
                value = rng.choice([spot[0], 0, max(earlier, default=0), spot[0] - max(earlier, default=0)])
            buf = _write_field(buf, spot, value, rng)
    if kind == "bitflip":
        for _ in range(rng.randrange(1, 9)):
            pos = min(_near(rng, lay, size - 1), size - 1)
            buf[pos] ^= 1 << rng.randrange(8)
    elif kind == "bytes":
        for _ in range(rng.randrange(1, 5)):
            pos = min(_near(rng, lay, size - 1), size - 1)
            buf[pos] = rng.choice(INTERESTING) if rng.random() < 0.6 else rng.getrandbits(8)
    elif kind == "insert":
        pos = _near(rng, lay, size)
        n = rng.randrange(1, 65)
        if rng.random() < 0.5:
            chunk = bytes(rng.getrandbits(8) for _ in range(n))
        else:
            start = rng.randrange(size)
            chunk = bytes(buf[start : start + n])
        buf[pos:pos] = chunk
    elif kind == "delete":
        pos = _near(rng, lay, size - 1)
        del buf[pos : pos + rng.randrange(1, 65)]
    elif kind == "truncate":
        buf = buf[: max(0, min(size - 1, _near(rng, lay, size) + rng.choice((-1, 0, 0, 1))))]
    elif kind == "duplicate":
        points = sorted(lay.boundaries)
        a, b = sorted(rng.sample(points, 2)) if len(points) >= 2 else (0, size)
        chunk = bytes(buf[a : min(b, a + 65536)])
        at = rng.choice(points)
        buf[at:at] = chunk
    elif kind == "zero-run":
        pos = _near(rng, lay, size - 1)
        n = rng.randrange(1, 257)
        buf[pos : pos + n] = bytes(len(buf[pos : pos + n]))
    if lay.fixup is not None and rng.random() < 0.7:
        lay.fixup(buf)
    return bytes(buf)


def truncations(lay: Layout, size: int, most: int) -> list[int]:
    """Cut points for the sweep: every boundary (and one byte short of it), evenly thinned to `most`."""
    points = sorted({p for b in lay.boundaries for p in (b - 1, b) if 0 < p < size})
    if len(points) > most:
        step = len(points) / most
        points = [points[int(i * step)] for i in range(most)]
    return points


def compressed_inner(data: bytes) -> tuple[bytes, Callable[[bytes], bytes]] | None:
    """(content, recompress) for a single compressed stream, so mutations reach what it holds."""
    for magic, module in ((b"\x1f\x8b", gzip), (b"BZh", bz2), (b"\xfd7zXZ\x00", lzma)):
        if data.startswith(magic):
            try:
                return module.decompress(data), module.compress  # type: ignore[attr-defined]
            except (OSError, EOFError, ValueError, lzma.LZMAError):
                return None
    if data[:1] == b"\x78":
        try:
            return zlib.decompress(data), zlib.compress
        except zlib.error:
            return None
    return None


# --- hand-built hostile files ------------------------------------------------------------------

DEEP = 100_000  # nesting depth of the deep cases (JSON, pickles, XML, msgpack)
PROTO_DEEP = 3_000  # protobuf nesting (each level costs a few bytes of length prefix per level above)


def st_header(header: bytes, length: int | None = None) -> bytes:
    return struct.pack("<Q", len(header) if length is None else length) + header


def _gguf_kv(key: bytes, vtype: int, payload: bytes) -> bytes:
    return struct.pack("<Q", len(key)) + key + struct.pack("<I", vtype) + payload


def _gguf(n_tensors: int, n_kv: int, body: bytes) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + body


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append(value & 0x7F | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint_bytes(number << 3 | 2) + _varint_bytes(len(payload)) + payload


def _nest(numbers: tuple[int, ...], depth: int, core: bytes = b"") -> bytes:
    """A protobuf message nested `depth` times through the field numbers, cycling."""
    msg = core
    for i in range(depth):
        msg = _len_field(numbers[i % len(numbers)], msg)
    return msg


def _onnx_deep() -> bytes:
    # ModelProto.graph(7) → GraphProto.node(1) → NodeProto.attribute(5) → AttributeProto.g(6) → …
    graph = b""
    for _ in range(PROTO_DEEP // 3):
        graph = _len_field(1, _len_field(5, _len_field(1, b"then_branch") + _len_field(6, graph)))
    return _varint_bytes(1 << 3) + b"\x08" + _len_field(7, graph)


def zip_bytes(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return out.getvalue()


def tar_bytes(members: list[tuple[str, bytes]], mode: str = "w") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tf:  # type: ignore[call-overload]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _torch_zip(pickle_bytes: bytes) -> bytes:
    return zip_bytes([("archive/data.pkl", pickle_bytes), ("archive/version", b"3\n")])


def _nested_archives(depth: int) -> bytes:
    data = b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94."  # an empty dict, protocol 4
    for i in range(depth):
        if i % 3 == 0:
            data = zip_bytes([(f"level{i}.zip" if i else "data.pkl", data)])
        elif i % 3 == 1:
            data = tar_bytes([(f"level{i}.tar", data)], "w:gz")
        else:
            data = gzip.compress(data)
    return data


def _zip_entry_count_lie() -> bytes:
    data = bytearray(zip_bytes([("a.pkl", b"\x80\x04N.")]))
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HHII", data, end + 8, 0xFFFF, 0xFFFF, 0xFFFFFFFF, end)  # CD "at" the EOCD
    return bytes(data)


def _zip_cd_loop() -> bytes:
    data = bytearray(zip_bytes([("a.pkl", b"\x80\x04N."), ("b.pkl", b"\x80\x04N.")]))
    end = data.rfind(b"PK\x05\x06")
    cd = struct.unpack_from("<I", data, end + 16)[0]
    struct.pack_into("<I", data, cd + 42, cd)  # the first entry's local header "is" the central directory
    return bytes(data)


def _tar_huge_size() -> bytes:
    data = bytearray(tar_bytes([("model.pkl", b"\x80\x04N.")]))
    data[124:136] = b"\x80" + (2**80).to_bytes(11, "big")  # base-256 size: 1.2e24 bytes
    chk = sum(data[:148]) + 8 * 32 + sum(data[156:512])
    data[148:156] = f"{chk:06o}\0 ".encode()
    return bytes(data)


def _sevenzip_huge() -> bytes:
    body = struct.pack("<QQI", 2**62, 2**40, 0)
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + struct.pack("<I", zlib.crc32(body)) + body


def _hdf5_lie() -> bytes:
    # superblock v0 whose end-of-file address and root object header point at 1 EB
    sb = b"\x89HDF\r\n\x1a\n" + bytes([0, 0, 0, 0, 0, 8, 8, 0]) + struct.pack("<HH", 4, 16) + b"\0" * 4
    sb += struct.pack("<QQQQ", 0, 2**60, 2**60, 2**60) + b"\0" * 40
    return sb


def _xml_laughs(root: str) -> bytes:
    ents = '<!ENTITY a0 "lolololololololololol">' + "".join(
        f'<!ENTITY a{i} "{("&a" + str(i - 1) + ";") * 10}">' for i in range(1, 12)
    )
    return f'<?xml version="1.0"?><!DOCTYPE {root} [{ents}]><{root}>&a11;</{root}>'.encode()


def _xml_external(root: str) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE {root} [<!ENTITY z SYSTEM "file:///dev/zero">'
        f'<!ENTITY r SYSTEM "file:///dev/urandom">]><{root} version="11">&z;&r;</{root}>'
    ).encode()


def _npy_file(header: bytes, version: int = 1) -> bytes:
    header += b"\n"
    width = "<H" if version == 1 else "<I"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(width, len(header)) + header


def _gguf_tensor(n_dims: int, dims: list[int], offset: int = 0) -> bytes:
    return struct.pack("<Q", 1) + b"w" + struct.pack(f"<I{len(dims)}QIQ", n_dims, *dims, 0, offset)


def _deep_text(opening: bytes, closing: bytes, depth: int = DEEP) -> bytes:
    return opening * depth + closing * depth


def _xml(root: str, body: bytes, attrs: str = "") -> bytes:
    return f'<?xml version="1.0"?><{root}{attrs}>'.encode() + body + f"</{root}>".encode()


MANY = 30_000  # entries in the "many" cases: cost must stay linear in the count
_ST_W = b'"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'
_TB = 2**40
_EMPTY_PICKLE = b"\x80\x04N."


def synthetic_cases(
    bomb_bytes: int = 1 << 30, many: int = MANY
) -> Iterator[tuple[str, dict[str, bytes], str]]:
    """(name, files by relative path, entry path) for each hand-built case; the compression bombs
    expand to `bomb_bytes` (none when 0), the "many" cases hold `many` entries. Single-file cases
    are run on that file."""
    huge_shape = b'{"w":{"dtype":"F32","shape":[%d,%d,%d],"data_offsets":[0,%d]}}' % (
        _TB,
        _TB,
        _TB,
        2**64 - 1,
    )
    big_digits = b'{"w":{"dtype":"F32","shape":[' + b"9" * 50_000 + b'],"data_offsets":[0,8]}}'
    shard = b"model-00001-of-00002.safetensors"
    index = json.dumps({"metadata": {}, "weight_map": {"w": shard.decode()}}).encode()
    vtable = struct.pack("<I", 12) + b"TFL3" + struct.pack("<HHii", 4, 8, 4, -4)
    vector = struct.pack("<I", 16) + b"TFL3" + struct.pack("<HHHHiiI", 8, 12, 4, 0, 8, 4, 2**31 - 1)
    keras = zip_bytes(
        [("config.json", _deep_text(b"[", b"]")), ("metadata.json", b"{}"), ("model.weights.h5", b"")]
    )
    single: list[tuple[str, str, bytes]] = [
        ("safetensors-1TB-header", "m.safetensors", st_header(b"{" + _ST_W + b"}", _TB)),
        ("safetensors-u64max-header", "m.safetensors", st_header(b"{}", 2**64 - 1)),
        ("safetensors-deep-array", "m.safetensors", st_header(_deep_text(b"[", b"]"))),
        (
            "safetensors-deep-object",
            "m.safetensors",
            st_header(_deep_text(b'{"a":', b"}").replace(b":}", b":1}", 1)),
        ),
        ("safetensors-huge-shape", "m.safetensors", st_header(huge_shape) + bytes(8)),
        (
            "safetensors-negative-shape",
            "m.safetensors",
            st_header(b"{" + _ST_W.replace(b"[2]", b"[-1,2]") + b"}"),
        ),
        ("safetensors-50k-digit-int", "m.safetensors", st_header(big_digits) + bytes(8)),
        (
            "safetensors-index-deep",
            "model.safetensors.index.json",
            b'{"weight_map":' + _deep_text(b"[", b"]") + b"}",
        ),
        (
            "safetensors-index-self",
            "model.safetensors.index.json",
            index.replace(shard, b"model.safetensors.index.json"),
        ),
        ("gguf-huge-counts", "m.gguf", _gguf(2**62, 2**62, b"")),
        ("gguf-1TB-key", "m.gguf", _gguf(0, 1, struct.pack("<Q", _TB) + b"k")),
        ("gguf-1TB-string", "m.gguf", _gguf(0, 1, _gguf_kv(b"general.name", 8, struct.pack("<Q", _TB)))),
        ("gguf-huge-array", "m.gguf", _gguf(0, 1, _gguf_kv(b"tokens", 9, struct.pack("<IQ", 8, 2**60)))),
        (
            "gguf-1e9-u8-array",
            "m.gguf",
            _gguf(0, 1, _gguf_kv(b"a", 9, struct.pack("<IQ", 0, 10**9)) + bytes(64)),
        ),
        (
            "gguf-deep-array",
            "m.gguf",
            _gguf(0, 1, _gguf_kv(b"a", 9, struct.pack("<IQ", 9, 1) * 20_000 + bytes(12))),
        ),
        ("gguf-2G-dims", "m.gguf", _gguf(1, 0, _gguf_tensor(2**31, [_TB] * 4))),
        ("gguf-1TB-dims-offset", "m.gguf", _gguf(1, 0, _gguf_tensor(4, [_TB] * 4, 2**63))),
        ("npy-4GB-header", "a.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**32 - 1) + b"{'descr'"),
        (
            "npy-huge-shape",
            "a.npy",
            _npy_file(b"{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (b"%d, " % _TB * 8)),
        ),
        (
            "npy-deep-descr",
            "a.npy",
            _npy_file(b"{'descr': " + _deep_text(b"[", b"]", 5000) + b", 'shape': (1,), }", 2),
        ),
        ("onnx-deep-subgraphs", "m.onnx", _onnx_deep()),
        (
            "onnx-1TB-graph",
            "m.onnx",
            b"\x08\x08" + _varint_bytes(7 << 3 | 2) + _varint_bytes(_TB) + b"\x0a\x00",
        ),
        ("onnx-u64-length", "m.onnx", b"\x08\x08:" + b"\xff" * 9 + b"\x01"),
        ("protobuf-deep-pb", "saved_model.pb", _nest((2, 1), PROTO_DEEP)),
        ("caffe-deep", "net.caffemodel", _len_field(1, b"net") + _nest((100, 1), PROTO_DEEP)),
        ("coreml-deep", "m.mlmodel", b"\x08\x04" + _nest((200, 1), PROTO_DEEP)),
        ("caffe-prototxt-deep", "deploy.prototxt", b'name: "x"\n' + _deep_text(b"layer {\n", b"}\n")),
        ("msgpack-deep-map", "p.msgpack", b"\x81\xa1a" * DEEP + b"\xc0"),
        ("msgpack-deep-array", "p.msgpack", b"\x81\xa1a" + b"\x91" * DEEP + b"\xc0"),
        ("msgpack-4GB-bin", "p.msgpack", b"\x81\xa1w\xc6\xff\xff\xff\xff" + bytes(64)),
        ("msgpack-4G-array", "p.msgpack", b"\x81\xa1w\xdd\xff\xff\xff\xff\xc0"),
        ("msgpack-4GB-ext", "p.msgpack", b"\x81\xa1w\xc9\xff\xff\xff\xff\x01"),
        ("tflite-root-loop", "m.tflite", struct.pack("<I", 0) + b"TFL3" + bytes(32)),
        ("tflite-vtable-self", "m.tflite", vtable + bytes(32)),
        ("tflite-2G-vector", "m.tflite", vector + bytes(32)),
        ("pmml-laughs", "m.pmml", _xml_laughs("PMML")),
        ("pmml-external-entity", "m.pmml", _xml_external("PMML")),
        ("pmml-deep", "m.pmml", _xml("PMML", _deep_text(b"<X>", b"</X>"), ' version="4.4"')),
        ("hdf5-1EB-addresses", "m.h5", _hdf5_lie()),
        ("torch-zip-deep-pickle", "m.pt", _torch_zip(b"\x80\x02" + b"(" * DEEP + b".")),
        ("torch-zip-1TB-binbytes", "m.pt", _torch_zip(b"\x80\x04\x8e" + struct.pack("<Q", _TB) + b"x")),
        ("torch-zip-1TB-frame", "m.pt", _torch_zip(b"\x80\x04\x95" + struct.pack("<Q", _TB) + b"N.")),
        (
            "torch-legacy-huge-bytes",
            "m.pt",
            b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02\x8e" + struct.pack("<Q", 2**60),
        ),
        ("pickle-long4-huge", "m.pkl", b"\x80\x02\x8b" + struct.pack("<I", 2**31 - 1) + b"\xff" * 16),
        ("pickle-long-decimal", "m.pkl", b"L" + b"9" * 100_000 + b"L\n."),
        ("keras-deep-config", "m.keras", keras),
        ("zip-entry-count-lie", "a.zip", _zip_entry_count_lie()),
        ("zip-cd-loop", "a.zip", _zip_cd_loop()),
        ("zip-tar-gzip-nested-24", "deep.zip", _nested_archives(24)),
        ("gzip-in-gzip-40", "deep.gz", _gzip_chain(40)),
        ("tar-base256-size", "a.tar", _tar_huge_size()),
        ("7z-huge-next-header", "a.7z", _sevenzip_huge()),
        ("tensorrt-huge", "m.engine", b"ftrt" + struct.pack("<IQQ", 0, 2**62, 2**62) + bytes(64)),
    ]
    for name, filename, data in single:
        yield name, {filename: data}, filename
    ir_bin = {"m.bin": bytes(16)}
    yield (
        "openvino-deep",
        {"m.xml": _xml("net", _deep_text(b"<a>", b"</a>"), ' version="11"'), **ir_bin},
        "m.xml",
    )
    yield "openvino-laughs", {"m.xml": _xml_laughs("net"), **ir_bin}, "m.xml"
    yield "openvino-external-entity", {"m.xml": _xml_external("net"), **ir_bin}, "m.xml"
    deep_json = _deep_text(b"[", b"]")
    near_limit = _deep_text(
        b'{"config":{"layers":[', b"]}}", 320
    )  # 960 levels: json parses it, walks must not
    keras_near = zip_bytes([("config.json", near_limit), ("metadata.json", b"{}"), ("model.weights.h5", b"")])
    yield "keras-config-960-levels", {"m.keras": keras_near}, "m.keras"
    yield "hf-config-960-levels", {"r/config.json": near_limit, "r/model.safetensors": st_header(b"{}")}, "r"
    yield "json-960-levels", {"config.json": near_limit}, "config.json"
    h5 = _h5_with_config(near_limit)
    if h5:
        yield "keras-h5-config-960-levels", {"m.h5": h5}, "m.h5"
    yield (
        "hf-config-deep",
        {"repo/config.json": deep_json, "repo/model.safetensors": st_header(b"{}")},
        "repo",
    )
    manifest = {
        "m.mlpackage/Manifest.json": b'{"itemInfoEntries":' + deep_json + b"}",
        "m.mlpackage/Data/x": b"",
    }
    yield "mlpackage-deep-manifest", manifest, "m.mlpackage"
    saved = {"sm/saved_model.pb": _nest((2, 1), PROTO_DEEP), "sm/variables/variables.index": bytes(8)}
    yield "savedmodel-deep", saved, "sm"
    yield from _many_cases(many)
    if bomb_bytes:
        size = f"{bomb_bytes >> 20}MB"
        yield f"zip-bomb-{size}", {"bomb.pt": bomb("zip", bomb_bytes)}, "bomb.pt"
        yield f"gzip-bomb-{size}", {"bomb.pkl.gz": bomb("gzip", bomb_bytes)}, "bomb.pkl.gz"
        yield f"bz2-bomb-{size}", {"bomb.pkl.bz2": bomb("bz2", bomb_bytes)}, "bomb.pkl.bz2"
        # a valid pickle all the way: NONE, POP, NONE, POP … costs the reader per opcode
        nops = b"\x80\x02" + b"N0" * (bomb_bytes >> 7) + b"N."
        yield f"nop-pickle-{len(nops) >> 20}MB-gzip", {"nop.pkl.gz": gzip.compress(nops, 9)}, "nop.pkl.gz"
        zipped = zip_bytes([("archive/data.pkl", nops), ("archive/version", b"3\n")], zipfile.ZIP_DEFLATED)
        yield f"nop-pickle-{len(nops) >> 20}MB-torch-zip", {"nop.pt": zipped}, "nop.pt"


def _h5_with_config(config: bytes) -> bytes | None:
    """A Keras 2 style .h5 whose model_config attribute is `config` (None without h5py)."""
    try:
        import h5py
    except ImportError:
        return None
    out = io.BytesIO()
    with h5py.File(out, "w") as f:
        f.attrs["model_config"] = config.decode()
        f.attrs["keras_version"] = "2.2.4"
        f.create_group("model_weights")
    return out.getvalue()


def _many_cases(n: int) -> Iterator[tuple[str, dict[str, bytes], str]]:
    """Files with `n` tensors (or keys, members) each: quadratic work shows as a timeout here."""
    header = (
        b"{"
        + b",".join(
            b'"t%d":{"dtype":"F32","shape":[1],"data_offsets":[%d,%d]}' % (i, 4 * i, 4 * i + 4)
            for i in range(n)
        )
        + b"}"
    )
    yield f"safetensors-{n}-tensors", {"m.safetensors": st_header(header) + bytes(4 * n)}, "m.safetensors"
    infos = b"".join(
        struct.pack("<Q", len(b"t%d" % i)) + b"t%d" % i + struct.pack("<IQIQ", 1, 1, 0, 32 * i)
        for i in range(n)
    )
    kv = _gguf_kv(b"general.alignment", 4, struct.pack("<I", 32))
    body = kv + infos
    pad = -(24 + len(body)) % 32
    yield f"gguf-{n}-tensors", {"m.gguf": _gguf(n, 1, body) + bytes(pad + 32 * n)}, "m.gguf"
    inits = b"".join(
        _len_field(5, b"\x08\x01\x10\x01" + _len_field(8, b"w%d" % i) + _len_field(9, bytes(4)))
        for i in range(n)
    )
    yield f"onnx-{n}-initializers", {"m.onnx": b"\x08\x08" + _len_field(7, inits)}, "m.onnx"
    keys = b"".join(b"X" + struct.pack("<I", len(b"k%d" % i)) + b"k%d" % i + b"K\x01" for i in range(n))
    yield f"pickle-dict-{n}-keys", {"m.pkl": b"\x80\x02}(" + keys + b"u."}, "m.pkl"
    yield f"torch-zip-{n}-keys", {"m.pt": _torch_zip(b"\x80\x02}(" + keys + b"u.")}, "m.pt"
    members = [(f"m{i}.pkl", _EMPTY_PICKLE) for i in range(n * 2 // 3)]
    yield f"zip-{len(members)}-members", {"many.zip": zip_bytes(members)}, "many.zip"
    yield f"tar-{n // 3}-members", {"many.tar": tar_bytes(members[: n // 3])}, "many.tar"


_BOMB_CACHE: dict[tuple[str, int], bytes] = {}


def bomb(kind: str, total: int) -> bytes:
    """`total` zero bytes compressed: a deflated zip member named data.pkl, a gzip or a bz2 stream."""
    key = (kind, total)
    if key not in _BOMB_CACHE:
        chunk = bytes(1 << 20)
        if kind == "zip":
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("archive/data.pkl", "w") as w:
                for _ in range(total >> 20):
                    w.write(chunk)
            _BOMB_CACHE[key] = out.getvalue()
        else:
            comp: Any = zlib.compressobj(9, zlib.DEFLATED, 31) if kind == "gzip" else bz2.BZ2Compressor(9)
            parts = [comp.compress(chunk) for _ in range(total >> 20)]
            _BOMB_CACHE[key] = b"".join([*parts, comp.flush()])
    return _BOMB_CACHE[key]


def _gzip_chain(depth: int) -> bytes:
    data = b"\x80\x04N."
    for _ in range(depth):
        data = gzip.compress(data)
    return data
