"""TensorFlow's tensor bundle files: the LevelDB-style variables.index table (raw Snappy blocks
included), its BundleEntryProto values and the data shards' names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...errors import FormatError
from ...protowire import I32, LEN, VARINT, MessageReader, decode_varint
from ...source import BytesSource, OpenedSource, open_source, read_exact
from .tf_types import read_shape

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48  # two padded BlockHandles (40 bytes) + 8-byte magic
_BLOCK_TRAILER = 5  # compression type byte + masked crc32c
_MAX_BLOCK = 256 * 1024 * 1024  # index blocks are KBs; anything near this is a lie


def varint_at(buf: bytes, pos: int, what: str, name: str) -> tuple[int, int]:
    try:
        return decode_varint(buf, pos)
    except FormatError:
        raise FormatError(f"{what}: varint cut short or too long", name) from None


def snappy_decompress(data: bytes, name: str = "<snappy>", limit: int = _MAX_BLOCK) -> bytes:
    """Raw (unframed) Snappy, the block compression LevelDB tables use; small enough to own."""
    length, pos = varint_at(data, 0, "snappy block length", name)
    if length > limit:
        raise FormatError(f"snappy block claims {length} bytes, over the {limit}-byte limit", name)
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal; lengths over 60 follow in 1-4 little-endian bytes
            n = tag >> 2
            if n >= 60:
                width = n - 59
                n = int.from_bytes(data[pos : pos + width], "little")
                pos += width
            n += 1
            if pos + n > len(data):
                raise FormatError("snappy literal runs past the block", name)
            out += data[pos : pos + n]
            pos += n
            continue
        if kind == 1:
            n = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | (data[pos] if pos < len(data) else 0)
            pos += 1
        else:
            width = 2 if kind == 2 else 4
            n = (tag >> 2) + 1
            offset = int.from_bytes(data[pos : pos + width], "little")
            pos += width
        if pos > len(data) or offset == 0 or offset > len(out):
            raise FormatError("snappy copy refers before the start of the block", name)
        for _ in range(n):  # byte by byte: copies may overlap their own output
            out.append(out[-offset])
        if len(out) > length:
            break
    if len(out) != length:
        raise FormatError(f"snappy block decodes to {len(out)} bytes, header says {length}", name)
    return bytes(out)


def _read_block(source: OpenedSource, offset: int, size: int, what: str) -> bytes:
    if size > _MAX_BLOCK:
        raise FormatError(f"{what} claims {size} bytes: corrupt block handle", source.name)
    raw = read_exact(source, offset, size + _BLOCK_TRAILER, what)
    kind = raw[size]
    if kind == 0:
        return raw[:size]
    if kind == 1:
        return snappy_decompress(raw[:size], source.name)
    raise FormatError(f"{what} uses unknown compression type {kind}", source.name)


def _block_entries(block: bytes, what: str, name: str) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) pairs of one table block: prefix-compressed keys, restart array at the end."""
    if len(block) < 4:
        raise FormatError(f"{what} is too short to hold its restart count", name)
    restarts = int.from_bytes(block[-4:], "little")
    limit = len(block) - 4 - 4 * restarts
    if limit < 0:
        raise FormatError(f"{what} claims {restarts} restart points, more than fit", name)
    pos = 0
    key = b""
    while pos < limit:
        shared, pos = varint_at(block, pos, what, name)
        unshared, pos = varint_at(block, pos, what, name)
        value_len, pos = varint_at(block, pos, what, name)
        if shared > len(key) or pos + unshared + value_len > limit:
            raise FormatError(f"{what}: entry at {pos} runs past the block", name)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_len]
        pos += value_len


def read_table(path: Path) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of a LevelDB-format table file, reading the index and data blocks only."""
    with open_source(path) as source:
        if source.size < _FOOTER_SIZE:
            raise FormatError(
                f"{source.size} bytes is shorter than the {_FOOTER_SIZE}-byte table footer: truncated",
                path,
            )
        footer = read_exact(source, source.size - _FOOTER_SIZE, _FOOTER_SIZE, "table footer")
        if int.from_bytes(footer[40:], "little") != _TABLE_MAGIC:
            raise FormatError("table footer magic is wrong: not a tensor-bundle index, or truncated", path)
        pos = 0
        handles = []
        for _ in range(4):  # metaindex offset, size; index offset, size
            value, pos = varint_at(footer, pos, "table footer", source.name)
            handles.append(value)
        index = _read_block(source, handles[2], handles[3], "table index block")
        for _sep, handle in _block_entries(index, "table index block", source.name):
            offset, p = varint_at(handle, 0, "block handle", source.name)
            size, _ = varint_at(handle, p, "block handle", source.name)
            if offset + size + _BLOCK_TRAILER > source.size - _FOOTER_SIZE:
                raise FormatError(f"data block at {offset} (+{size}) runs past the index data", path)
            block = _read_block(source, offset, size, "table data block")
            yield from _block_entries(block, "table data block", source.name)


def _bundle_entry(value: bytes, name: str) -> dict[str, Any]:
    """BundleEntryProto: dtype 1, shape 2, shard_id 3, offset 4, size 5, crc32c 6, slices 7."""
    reader = MessageReader(BytesSource(value, name))
    entry: dict[str, Any] = {
        "dtype": 0, "shape": (), "shard": 0, "offset": 0, "size": 0, "crc32c": None, "slices": 0
    }  # fmt: skip
    for f in reader.fields():
        if f.number == 1 and f.wire_type == VARINT:
            entry["dtype"] = f.value
        elif f.number == 2 and f.wire_type == LEN:
            entry["shape"] = read_shape(reader.submessage(f))
        elif f.number in (3, 4, 5) and f.wire_type == VARINT:
            entry[{3: "shard", 4: "offset", 5: "size"}[f.number]] = f.value
        elif f.number == 6 and f.wire_type == I32:
            entry["crc32c"] = f.value
        elif f.number == 7:
            entry["slices"] += 1
    return entry


def shard_name(shard: int, num_shards: int) -> str:
    return f"variables/variables.data-{shard:05d}-of-{num_shards:05d}"
