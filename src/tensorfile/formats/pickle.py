"""Plain pickles and joblib files, raw or compressed with zlib, gzip, bz2, lzma or xz."""

from __future__ import annotations

import bz2
import lzma
import zlib
from typing import Any

from ..errors import FormatError
from ..model import CERTAIN, LIKELY, STRONG, Detection
from ..picklevm import is_pickle_start, parses_as_pickle, read_pickle, scan_globals
from ..probe import FileProbe
from .pytorch import legacy_magic_at

_DECOMPRESSED_PEEK = 256 * 1024


def _decompress_head(head: bytes) -> tuple[str, bytes] | None:
    """(compression name, first decompressed bytes) for a compressed stream, else None."""
    try:
        if head[:2] == b"\x1f\x8b":
            return "gzip", zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, _DECOMPRESSED_PEEK)
        if len(head) > 1 and head[0] == 0x78 and head[1] in (0x01, 0x5E, 0x9C, 0xDA):
            return "zlib", zlib.decompressobj().decompress(head, _DECOMPRESSED_PEEK)
        if head[:6] == b"\xfd7zXZ\x00":
            return "xz", lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(head, _DECOMPRESSED_PEEK)
        if head[:3] == b"\x5d\x00\x00":
            return "lzma", lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(head, _DECOMPRESSED_PEEK)
        if head[:3] == b"BZh" and head[4:10] == b"1AY&SY":
            return "bz2", bz2.BZ2Decompressor().decompress(head, _DECOMPRESSED_PEEK)
        if head[:2] == b"ZF":  # joblib < 0.10: 'ZF' + hex length, then a zlib stream
            zstart = head.find(b"x", 2, 40)
            if zstart > 0:
                return "zlib (joblib<0.10)", zlib.decompressobj().decompress(
                    head[zstart:], _DECOMPRESSED_PEEK
                )
    except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError):
        return None
    return None


def _whole_file_is_one_pickle(data: bytes) -> bool:
    try:
        return read_pickle(data).end == len(data)
    except FormatError:
        return False


def classify_globals(names: list[str]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if names:
        details["imports"] = sorted(set(names))[:32]
    if any(n.startswith(("joblib.", "sklearn.externals.joblib")) for n in names):
        details["producer"] = "joblib"
    roots = sorted(
        {n.split(".", 1)[0] for n in names}
        - {"builtins", "__builtin__", "copy_reg", "copyreg", "collections", "_codecs"}
    )
    if roots:
        details["libraries"] = roots
    return details


def detect_file(probe: FileProbe) -> Detection | None:
    head = probe.head
    compression = None
    decompressed = _decompress_head(head)
    if decompressed is not None:
        compression, head = decompressed
    if legacy_magic_at(head) is not None and compression is None:
        return None  # torch legacy stack: pytorch.py owns it
    protocol = is_pickle_start(head)
    if protocol is None or not parses_as_pickle(head):
        return None
    names = scan_globals(head)
    details: dict[str, Any] = {"protocol": protocol, **classify_globals(names)}
    evidence = [f"pickle protocol {protocol} opcodes" if protocol >= 2 else "pickle (protocol 0/1) opcodes"]
    if compression:
        details["compression"] = compression
        evidence.insert(0, f"{compression}-compressed stream")
    if names:
        evidence.append("imports " + ", ".join(sorted(set(names))[:4]) + ("…" if len(set(names)) > 4 else ""))
    if details.get("producer") == "joblib":
        evidence.append("joblib NumpyArrayWrapper records")
    if any(n.startswith("torch.") for n in names):
        details["holds_torch_tensors"] = True
    confidence = CERTAIN if protocol >= 2 and (names or len(head) > 16) else STRONG if names else LIKELY
    if compression is None and probe.size <= len(head) and _whole_file_is_one_pickle(head):
        confidence = CERTAIN
    return Detection("pickle", confidence, evidence, details)
