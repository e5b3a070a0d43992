"""TensorRT serialized engines ('ptrt' before TensorRT 8.6, 'ftrt' wrapper with an inner 'ptrt' after)."""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

from ..model import CERTAIN, STRONG, Detection, Identification, ModelInfo
from ..probe import FileProbe
from ..source import open_source


def detect_file(probe: FileProbe) -> Detection | None:
    head = probe.head
    magic = head[:4]
    if magic == b"ptrt":
        details: dict[str, object] = {"layout": "ptrt"}
        if len(head) >= 8:
            details["tag"] = struct.unpack_from("<I", head, 4)[0]
        return Detection(
            "tensorrt", CERTAIN, ["magic 'ptrt' at offset 0 (TensorRT < 8.6 engine layout)"], details
        )
    if magic == b"ftrt":
        inner = head.find(b"ptrt", 4, 4096)
        details = {
            "layout": "ftrt",
            "inner_ptrt_offset": inner if inner >= 0 else None,
            "has_NGNE_section": b"NGNE" in head[:4096],
        }
        evidence = ["magic 'ftrt' at offset 0 (TensorRT >= 8.6 engine layout)"]
        if inner >= 0:
            evidence.append(f"inner 'ptrt' blob at offset {inner}")
            return Detection("tensorrt", CERTAIN, evidence, details)
        return Detection("tensorrt", STRONG, evidence, details, ["no inner 'ptrt' blob found near the start"])
    return None


# --- inspect --------------------------------------------------------------------------------------

SCAN_LIMIT = 4 * 1024 * 1024  # strings are looked for in the first 4 MB only: cost stays flat
_MAX_NAMES = 64
# Serialization version tags seen in TensorRT's "Version tag does not match" errors on public
# issue trackers, with the release that wrote them; a hint, not an exhaustive table.
SERIALIZATION_TAGS = {96: "7.2", 97: "7.2", 205: "8.2", 213: "8.4", 232: "8.5", 236: "8.6"}
# A u64 length below 1280 (low byte, then 0-4, then six zero bytes) right before printable text.
_NAME = re.compile(rb"(?s)(.)([\x00-\x04])\x00{6}([\x20-\x7e]{2,})")
# "accelerators={sm86 }" in Myelin headers, "sm80_xmma_…" in kernel names
_ARCH = re.compile(rb"(?<![A-Za-z0-9])sm_?([0-9]{2,3})[a-z]?(?![0-9])")
_PLUGIN = re.compile(r"(?i)(plugin|_trt$|^trt_)")


def _length_prefixed_strings(data: bytes) -> list[str]:
    """Strings the engine serializer wrote as a u64 length then the bytes (layer, tensor, network names).

    Raw weights are full of short printable runs; requiring the exact length prefix keeps only
    real names.
    """
    found: list[str] = []
    seen: set[str] = set()
    for match in _NAME.finditer(data):
        length = match.group(1)[0] | match.group(2)[0] << 8
        text_bytes = match.group(3)
        if 2 <= length <= min(len(text_bytes), 1024):
            text = text_bytes[:length].decode("ascii")
            if text not in seen:
                seen.add(text)
                found.append(text)
    return found


def inspect_engine(path: Path, ident: Identification) -> ModelInfo:
    with open_source(path) as source:
        size = source.size
        head = source.read_at(0, min(size, SCAN_LIMIT))
    info = ModelInfo(str(path), "tensorrt", files=[{"path": str(path), "size_bytes": size}])
    meta: dict[str, Any] = {"layout": ident.details.get("layout")}
    if head[:4] == b"ftrt" and len(head) >= 64:
        _ftrt_header(head, size, meta, info.warnings)
    elif head[:4] == b"ptrt" and len(head) >= 16:
        tag, _, declared = struct.unpack_from("<III", head, 4)
        meta["serialization_tag"] = tag
        if tag in SERIALIZATION_TAGS:
            meta["tensorrt_version_hint"] = f"{SERIALIZATION_TAGS[tag]} (serialization tag {tag})"
        meta["declared_payload_bytes"] = declared
        # Checked against TensorRT 7 engines only, so only a shortfall (truncation) is reported.
        if declared + 24 > size:
            info.warnings.append(f"header declares {declared + 24} bytes but the file has {size}: truncated")
    else:
        info.warnings.append("engine header is too short to read")
    names = _length_prefixed_strings(head)
    if names:
        meta["network_name"] = names[0]
        meta["plugins"] = [n for n in names if _PLUGIN.search(n)][:_MAX_NAMES]
        meta["names"] = names[:_MAX_NAMES]
        meta["name_count"] = len(names)
    archs = sorted({int(m.group(1)) for m in _ARCH.finditer(head)})
    if archs:
        meta["gpu_architecture_evidence"] = [f"sm_{a}" for a in archs]
    for flag in (b"version_compatible=", b"hardware_forward_compatibility="):
        at = head.find(flag)
        if at >= 0:
            value = head[at + len(flag) : at + len(flag) + 1]
            meta[flag[:-1].decode()] = value == b"1"
    meta["scanned_bytes"] = len(head)
    info.metadata = meta
    info.warnings.append(
        "weights are compiled into the engine: tensors are not listable without the TensorRT runtime"
    )
    return info


def _ftrt_header(head: bytes, size: int, meta: dict[str, Any], warnings: list[str]) -> None:
    """The TensorRT >= 8.6 wrapper: 'ftrt', a version, total size, the runtime's version bytes, then
    sections such as 'NGNE' (the engine proper, an inner 'ptrt' blob)."""
    (declared,) = struct.unpack_from("<Q", head, 16)
    major, minor, patch, build = head[24:28]
    meta["tensorrt_version"] = f"{major}.{minor}.{patch}.{build}"
    meta["declared_size"] = declared
    if declared != size:
        warnings.append(f"ftrt header declares {declared} bytes but the file has {size}")
    sections = []
    pos = 32
    while pos + 24 <= min(len(head), 4096):
        tag = head[pos : pos + 4]
        if not tag.isalpha():
            break
        offset, length = struct.unpack_from("<QQ", head, pos + 8)
        sections.append({"tag": tag.decode(), "offset": offset, "size": length})
        if offset + length > size:
            warnings.append(
                f"section {tag.decode()} [{offset}, {offset + length}) runs past the end of the file"
            )
        pos += 24
        if tag == b"NGNE":
            inner = head[offset : offset + 16] if offset + 16 <= len(head) else b""
            if inner[:4] == b"ptrt":
                (tag_value,) = struct.unpack_from("<I", inner, 8)
                meta["serialization_tag"] = tag_value
                if tag_value in SERIALIZATION_TAGS:
                    meta["tensorrt_version_hint"] = (
                        f"{SERIALIZATION_TAGS[tag_value]} (serialization tag {tag_value})"
                    )
            break
    meta["sections"] = sections


INSPECTS = {"tensorrt": inspect_engine}
