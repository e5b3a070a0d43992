"""TensorFlow Lite: a flatbuffer whose file identifier at bytes 4..8 is 'TFL3'."""

from __future__ import annotations

import struct

from ..model import CERTAIN, Detection
from ..probe import FileProbe


def detect_file(probe: FileProbe) -> Detection | None:
    head = probe.head
    if len(head) < 8 or head[4:8] != b"TFL3":
        return None
    root = struct.unpack_from("<I", head)[0]
    evidence = ["flatbuffer file identifier 'TFL3' at offset 4"]
    warnings = []
    if not 8 <= root < probe.size:
        warnings.append(f"flatbuffer root offset {root} lies outside the file: corrupt")
    details: dict[str, object] = {}
    # Checked before zip on purpose: TFLite files with metadata carry an appended zip archive.
    if b"PK\x05\x06" in probe.tail:
        details["appended_zip"] = True
        evidence.append("appended zip archive (TFLite metadata / associated files)")
    return Detection("tflite", CERTAIN, evidence, details, warnings)
