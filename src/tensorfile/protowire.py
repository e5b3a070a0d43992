"""Protocol-buffer wire format, read lazily from a byte source.

ONNX, Caffe, Core ML and SavedModel files are protobuf messages without a magic number. We walk
their fields by tag and length and only read the payload of a field when asked, so a 2 GB
`raw_data` field costs a seek, not an allocation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .errors import FormatError
from .source import ByteSource, read_exact

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5


@dataclass(frozen=True)
class Field:
    number: int
    wire_type: int
    offset: int  # where the payload starts (for LEN: after the length prefix)
    length: int  # payload length in bytes (0 for varints: see `value`)
    value: int = 0  # varint value, or the raw little-endian int for I32/I64

    @property
    def end(self) -> int:
        return self.offset + self.length


def decode_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position); FormatError on a varint longer than 10 bytes or cut short."""
    result = 0
    shift = 0
    for i in range(10):
        if pos + i >= len(buf):
            raise FormatError("protobuf varint cut short")
        byte = buf[pos + i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos + i + 1
        shift += 7
    raise FormatError("protobuf varint longer than 10 bytes")


def decode_varints(buf: bytes) -> list[int]:
    """All varints of a packed repeated field."""
    values: list[int] = []
    pos = 0
    while pos < len(buf):
        value, pos = decode_varint(buf, pos)
        values.append(value)
    return values


def signed64(value: int) -> int:
    """An int64 field's varint read back as two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


class MessageReader:
    """Iterates the fields of one message occupying [start, end) of a source."""

    CHUNK = 16

    def __init__(self, source: ByteSource, start: int = 0, end: int | None = None) -> None:
        self.source = source
        self.start = start
        self.end = source.size if end is None else end
        if self.end > source.size:
            raise FormatError("protobuf message runs past the end of the file", source.name)

    def fields(self, max_fields: int | None = None) -> Iterator[Field]:
        pos = self.start
        n = 0
        while pos < self.end:
            if max_fields is not None and n >= max_fields:
                return
            field, pos = self._read_field(pos)
            n += 1
            yield field

    def _read_field(self, pos: int) -> tuple[Field, int]:
        buf = self.source.read_at(pos, min(self.CHUNK + 4, self.end - pos))
        try:
            key, p = decode_varint(buf, 0)
        except FormatError:
            raise FormatError(f"protobuf tag cut short at offset {pos}", self.source.name) from None
        number, wire = key >> 3, key & 7
        if number == 0:
            raise FormatError(f"protobuf field number 0 at offset {pos}", self.source.name)
        if wire == VARINT:
            try:
                value, q = decode_varint(buf, p)
            except FormatError:
                raise FormatError(f"protobuf varint cut short at offset {pos}", self.source.name) from None
            return Field(number, wire, pos + p, 0, value), pos + q
        if wire in (I64, I32):
            size = 8 if wire == I64 else 4
            if pos + p + size > self.end:
                raise FormatError(f"protobuf fixed field past message end at {pos}", self.source.name)
            value = int.from_bytes(self.source.read_at(pos + p, size), "little")
            return Field(number, wire, pos + p, size, value), pos + p + size
        if wire == LEN:
            try:
                length, q = decode_varint(buf, p)
            except FormatError:
                raise FormatError(f"protobuf length cut short at offset {pos}", self.source.name) from None
            begin = pos + q
            if begin + length > self.end:
                raise FormatError(
                    f"protobuf field {number} at offset {pos} claims {length} bytes, past the message end",
                    self.source.name,
                )
            return Field(number, wire, begin, length), begin + length
        raise FormatError(
            f"protobuf wire type {wire} (groups are not used by model files) at {pos}", self.source.name
        )

    def submessage(self, field: Field) -> MessageReader:
        if field.wire_type != LEN:
            raise FormatError(f"protobuf field {field.number} is not a message", self.source.name)
        return MessageReader(self.source, field.offset, field.end)

    def payload(self, field: Field, limit: int = 1 << 20) -> bytes:
        """The bytes of a LEN field; refuses fields over `limit` (weights are never read here)."""
        if field.length > limit:
            raise FormatError(
                f"protobuf field {field.number} is {field.length} bytes, over the read limit",
                self.source.name,
            )
        return read_exact(self.source, field.offset, field.length, f"protobuf field {field.number}")

    def string(self, field: Field, limit: int = 1 << 16) -> str | None:
        """A LEN field as UTF-8 text, or None when it is not text."""
        if field.wire_type != LEN or field.length > limit:
            return None
        try:
            text = self.payload(field, limit).decode("utf-8")
        except UnicodeDecodeError:
            return None
        return text if text.isprintable() or not text else None


def top_level_numbers(source: ByteSource, max_fields: int = 4096) -> tuple[list[Field], bool]:
    """The first top-level fields of a message and whether the whole source parsed cleanly."""
    reader = MessageReader(source)
    fields: list[Field] = []
    try:
        for f in reader.fields():
            fields.append(f)
            if len(fields) >= max_fields:
                return fields, True
    except FormatError:
        return fields, False
    return fields, True
