"""TensorRT serialized engines ('ptrt' before TensorRT 8.6, 'ftrt' wrapper with an inner 'ptrt' after)."""

from __future__ import annotations

import struct

from ..model import CERTAIN, STRONG, Detection
from ..probe import FileProbe


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
