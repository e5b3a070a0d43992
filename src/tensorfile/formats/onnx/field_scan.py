"""A fast protobuf field scan over windows of the file, and the Message view the ONNX walks use."""

from __future__ import annotations

from collections.abc import Iterator

from ...errors import FormatError
from ...protowire import I32, I64, LEN, VARINT, decode_varint
from ...source import ByteSource, read_exact

WINDOW = 64 * 1024
# A scanned field: (number, wire type, payload offset, value). For LEN fields the value is the payload
# length, for VARINT the decoded value, for I32/I64 the little-endian integer. Plain tuples, not
# protowire.Field objects: a graph of 100k nodes has a million fields and this walk is the hot path.
Scanned = tuple[int, int, int, int]


def scan_fields(source: ByteSource, start: int, end: int) -> Iterator[Scanned]:
    """The fields of the message in [start, end), read a window at a time; payloads are skipped."""
    if end > source.size:
        raise FormatError("protobuf message runs past the end of the file", source.name)
    buf, base, pos = b"", start, start
    want = 256  # grows with each refill: small messages cost a small read, long ones few reads
    while pos < end:
        i = pos - base
        if i + 32 > len(buf) and base + len(buf) < end:  # a tag and a length always fit after a refill
            buf, base, i = source.read_at(pos, min(want, end - pos)), pos, 0
            want = min(want * 4, WINDOW)
        try:
            key = buf[i]
            if key < 0x80:
                i += 1
            else:
                key, i = decode_varint(buf, i)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise FormatError(f"protobuf field number 0 at offset {pos}", source.name)
            if wire == LEN:
                length = buf[i]
                if length < 0x80:
                    i += 1
                else:
                    length, i = decode_varint(buf, i)
                offset = base + i
                if offset + length > end:
                    raise FormatError(
                        f"protobuf field {number} at offset {pos} claims {length} bytes, "
                        "past the message end",
                        source.name,
                    )
                pos = offset + length
                yield number, LEN, offset, length
            elif wire == VARINT:
                value, i = decode_varint(buf, i)
                pos = base + i
                yield number, VARINT, pos, value
            elif wire in (I32, I64):
                size = 4 if wire == I32 else 8
                offset = base + i
                if offset + size > end or i + size > len(buf):
                    raise FormatError(f"protobuf fixed field past message end at {pos}", source.name)
                pos = offset + size
                yield number, wire, offset, int.from_bytes(buf[i : i + size], "little")
            else:
                raise FormatError(f"protobuf wire type {wire} at offset {pos}", source.name)
        except (IndexError, FormatError) as exc:
            if isinstance(exc, FormatError) and exc.path:
                raise
            raise FormatError(f"protobuf field cut short at offset {pos}", source.name) from None


class Message:
    """A protobuf message in [start, end) of a byte source, walked with `scan_fields`."""

    __slots__ = ("end", "source", "start")

    def __init__(self, source: ByteSource, start: int, end: int) -> None:
        self.source, self.start, self.end = source, start, end

    def fields(self) -> Iterator[Scanned]:
        return scan_fields(self.source, self.start, self.end)

    def sub(self, offset: int, length: int) -> Message:
        return Message(self.source, offset, offset + length)

    def payload(self, offset: int, length: int, limit: int = 1 << 20) -> bytes:
        if length > limit:
            raise FormatError(
                f"protobuf field at {offset} is {length} bytes, over the read limit", self.source.name
            )
        return read_exact(self.source, offset, length, "protobuf field")

    def text(self, offset: int, length: int, limit: int = 1 << 16) -> str:
        """A string field, cut at `limit` bytes (names and docs, never weights)."""
        size = min(length, limit)
        data = self.source.read_at(offset, size)
        if len(data) != size:
            raise FormatError(f"protobuf string at {offset} runs past the end of the file", self.source.name)
        return data.decode("utf-8", "replace") + ("…" if length > limit else "")
