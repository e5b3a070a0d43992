"""Zip records read straight from the bytes, tolerant of tampering: the end records, the central
directory, local headers, and local headers found where the directory does not point.

This is not `zipfile`, because the loader that matters (torch.load, through miniz) ignores what
`zipfile` refuses: the records are read as they stand and the caller judges them. Nothing here
decompresses or reports findings.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from ..source import ByteSource
from .archive_context import CHUNK

_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"
_EOCD = b"PK\x05\x06"
_SIGS = (b"\x03\x04", b"\x01\x02", b"\x07\x08", b"\x05\x06", b"\x06\x06", b"\x06\x07")
_U32 = 0xFFFFFFFF


class ZipDirectoryError(Exception):
    """The central directory cannot be used."""


@dataclass
class ZipEntry:
    """A zip entry as the central directory (or, for hidden ones, its local header) gives it."""

    name: str
    flags: int
    method: int
    crc: int
    csize: int | None
    usize: int | None
    offset: int  # of the local header


@dataclass
class LocalHeader(ZipEntry):
    """A local header: the entry as it describes itself, and where its data starts."""

    data_start: int


def entry_from_local(local: LocalHeader, data_end: int) -> ZipEntry:
    """The entry of a member known only by its local header; an unknown size runs to `data_end`."""
    csize = max(0, data_end - local.data_start) if local.csize is None else local.csize
    return ZipEntry(local.name, local.flags, local.method, local.crc, csize, local.usize, local.offset)


def _decode_name(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8", "surrogateescape") if flags & 0x800 else raw.decode("cp437")


def _zip64_sizes(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if tag == 1:
            values = [v[0] for v in struct.iter_unpack("<Q", body[: len(body) // 8 * 8])]
            if usize == _U32 and values:
                usize = values.pop(0)
            if csize == _U32 and values:
                csize = values.pop(0)
            if offset == _U32 and values:
                offset = values.pop(0)
            break
        pos += 4 + length
    return usize, csize, offset


def read_eocd(src: ByteSource) -> tuple[int, int, int]:
    """(central directory start, its size, prepended bytes) from the end records, as zipfile does."""
    if src.size < 22:
        raise ZipDirectoryError("too short to hold a zip directory")
    tail_start = max(0, src.size - (22 + 0xFFFF + 20 + 56))
    tail = src.read_at(tail_start, src.size - tail_start)
    pos = tail.rfind(_EOCD)
    while pos >= 0:
        if pos + 22 <= len(tail):
            _, _, _, _, _, cd_size, cd_off, _ = struct.unpack_from("<4s4H2LH", tail, pos)
            cd_end = tail_start + pos  # where the directory should end (zip64 records come before)
            loc = pos - 20
            if loc >= 0 and tail[loc : loc + 4] == b"PK\x06\x07":
                rec = loc - 56
                if rec >= 0 and tail[rec : rec + 4] == b"PK\x06\x06":
                    cd_size, cd_off = struct.unpack_from("<QQ", tail, rec + 40)
                    cd_end = tail_start + rec
            concat = cd_end - cd_size - cd_off
            if concat >= 0 and cd_size >= 0:
                return cd_off + concat, cd_size, concat
        pos = tail.rfind(_EOCD, 0, pos)
    raise ZipDirectoryError("no end-of-central-directory record (not a zip, or cut short)")


def read_central(
    src: ByteSource, start: int, size: int, concat: int, cap: int
) -> tuple[list[ZipEntry], str | None]:
    """Central directory entries, and why reading stopped early (None when it did not)."""
    entries: list[ZipEntry] = []
    end = start + size
    if end > src.size:
        return entries, f"central directory runs past the end of the file ({end} > {src.size})"
    buf, buf_at = b"", start
    pos = start

    def get(n: int) -> bytes:
        nonlocal buf, buf_at
        if pos < buf_at or pos + n > buf_at + len(buf):
            buf, buf_at = src.read_at(pos, max(n, CHUNK)), pos
        return buf[pos - buf_at : pos - buf_at + n]

    while pos + 46 <= end:
        fixed = get(46)
        if fixed[:4] != _CENTRAL:
            return entries, f"central directory entry at offset {pos} is damaged"
        (_, _, _, _, _, flags, method, _, _, crc, csize, usize, nlen, xlen, clen, _, _, _, off) = (
            struct.unpack("<4s4B4HL2L5H2L", fixed)
        )
        whole = get(46 + nlen + xlen + clen)
        if len(whole) < 46 + nlen + xlen + clen or pos + len(whole) > end:
            return entries, f"central directory entry at offset {pos} is cut short"
        raw = whole[46 : 46 + nlen]
        usize, csize, off = _zip64_sizes(whole[46 + nlen : 46 + nlen + xlen], usize, csize, off)
        entries.append(ZipEntry(_decode_name(raw, flags), flags, method, crc, csize, usize, off + concat))
        if len(entries) > cap:
            break
        pos += 46 + nlen + xlen + clen
    return entries, None


def read_local(src: ByteSource, offset: int) -> LocalHeader | None:
    fixed = src.read_at(offset, 30)
    if len(fixed) < 30 or fixed[:4] != _LOCAL:
        return None
    (_, _, _, flags, method, _, _, crc, csize, usize, nlen, xlen) = struct.unpack("<4s2B4HL2L2H", fixed)
    rest = src.read_at(offset + 30, nlen + xlen)
    if len(rest) < nlen + xlen:
        return None
    usize, csize, _ = _zip64_sizes(rest[nlen:], usize, csize, 0)
    unknown = bool(flags & 0x08) and csize == 0
    return LocalHeader(
        _decode_name(rest[:nlen], flags),
        flags,
        method,
        crc,
        None if unknown else csize,
        None if unknown else usize,
        offset,
        offset + 30 + nlen + xlen,
    )


def _find(src: ByteSource, start: int, end: int, any_record: bool = False) -> int:
    """Offset of the next local header signature (or, `any_record`, any zip record) in [start, end)."""
    pos = start
    while pos < end:
        chunk = src.read_at(pos, min(CHUNK, end - pos) + 3)
        if len(chunk) < 4:
            return -1
        if any_record:
            at = chunk.find(b"PK")
            while at >= 0:
                if chunk[at + 2 : at + 4] in _SIGS and pos + at < end:
                    return pos + at
                at = chunk.find(b"PK", at + 1)
        else:
            at = chunk.find(_LOCAL)
            if at >= 0 and pos + at < end:
                return pos + at
        pos += len(chunk) - 3
    return -1


def scan_locals(src: ByteSource, start: int, end: int) -> Iterator[tuple[LocalHeader, int]]:
    """Local headers found in [start, end), each with where its data ends."""
    pos = start
    while pos < end:
        at = _find(src, pos, end)
        if at < 0:
            return
        local = read_local(src, at)
        if local is None or local.data_start > end:
            pos = at + 4
            continue
        if local.csize is not None:
            data_end = min(local.data_start + local.csize, end)
        else:
            nxt = _find(src, local.data_start, end, any_record=True)
            data_end = nxt if nxt >= 0 else end
        yield local, data_end
        pos = max(data_end, at + 4)
