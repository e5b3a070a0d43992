"""Which container a file's first bytes open: zip, 7z, tar, or a compressed stream (by content)."""

from __future__ import annotations

from ..decompress import DECODE_ERRORS, new_decompressor
from .archive_context import LZMA_MEMLIMIT


def archive_kind(head: bytes) -> str | None:
    """The container `head` (a file's first bytes) opens, by content; None for anything else.

    A compressed stream whose content is a tar is "tar" (walk_archive reads both layers).
    """
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06") or (
        head[:4] == b"PK\x07\x08" and head[4:8] == b"PK\x03\x04"
    ):
        return "zip"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if _is_tar_header(head):
        return "tar"
    kind = compression_kind(head)
    if kind is None:
        return None
    inner = _peek_decompressed(head, kind)
    if inner is None:
        return None
    return "tar" if _is_tar_header(inner) else kind


def compression_kind(head: bytes) -> str | None:
    """gzip / bz2 / xz / lzma / zlib by magic bytes and header sanity (no decompression)."""
    if len(head) >= 10 and head[:3] == b"\x1f\x8b\x08" and not head[3] & 0xE0:
        return "gzip"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if (
        len(head) >= 10
        and head[:3] == b"BZh"
        and 0x31 <= head[3] <= 0x39
        and head[4:10] in (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")
    ):
        return "bz2"
    zlib_header = len(head) >= 2 and head[0] & 0x0F == 8 and head[0] >> 4 <= 7
    if zlib_header and ((head[0] << 8) | head[1]) % 31 == 0 and not head[1] & 0x20:
        return "zlib"
    if len(head) >= 14 and head[0] < 225 and head[13] == 0:  # the range coder's first byte is 0
        dict_size = int.from_bytes(head[1:5], "little")
        size = int.from_bytes(head[5:13], "little")
        top = 1 << (dict_size.bit_length() - 1) if dict_size else 0
        as_encoders_write = 4096 <= dict_size <= (1 << 30) and dict_size in (top, top | top >> 1)
        if as_encoders_write and (size == (1 << 64) - 1 or size < (1 << 40)):
            return "lzma"
    return None


def _peek_decompressed(head: bytes, kind: str) -> bytes | None:
    """The first bytes `head` decompresses to; None when it does not decompress.

    All of `head` must decode without error (stopping at 1 MiB of output): tensor data that
    happens to start like a zlib or lzma header fails within a few hundred bytes.
    """
    try:
        out = new_decompressor(kind, memlimit=LZMA_MEMLIMIT).decompress(head, 1 << 20)
    except (*DECODE_ERRORS, MemoryError):
        return None
    if not out and kind in ("zlib", "lzma"):
        return None  # the weak magics must prove themselves with some output
    return out


def _is_tar_header(block: bytes) -> bool:
    if len(block) < 512:
        return False
    field_ = block[148:156].replace(b"\x00", b" ").strip()
    if not field_ or any(c not in b"01234567" for c in field_):
        return False
    stored = int(field_, 8)
    unsigned = sum(block[:148]) + 256 + sum(block[156:512])
    signed = unsigned - 2 * sum(1 for b in (*block[:148], *block[156:512]) if b >= 128) * 128
    return stored in (unsigned, signed)
