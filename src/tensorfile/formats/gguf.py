"""GGUF (llama.cpp) and its legacy predecessors GGML, GGMF and GGJT."""

from __future__ import annotations

import struct

from ..model import CERTAIN, STRONG, Detection
from ..probe import FileProbe

# Legacy magics are uint32 little-endian words: 'ggml' is stored as b"lmgg", and so on.
_LEGACY = {b"lmgg": "GGML", b"fmgg": "GGMF", b"tjgg": "GGJT", b"algg": "GGLA"}


def detect_file(probe: FileProbe) -> Detection | None:
    head = probe.head
    if head[:4] == b"GGUF" and len(head) >= 24:
        version_le = struct.unpack_from("<I", head, 4)[0]
        version_be = struct.unpack_from(">I", head, 4)[0]
        if 1 <= version_le <= 3:
            version, endian = version_le, "little"
        elif 1 <= version_be <= 3:
            version, endian = version_be, "big"
        else:
            return Detection(
                "gguf",
                STRONG,
                ["magic 'GGUF'"],
                {"version": version_le},
                [f"unknown GGUF version {version_le}"],
            )
        fmt = "<" if endian == "little" else ">"
        if version == 1:
            n_tensors, n_kv = struct.unpack_from(fmt + "II", head, 8)
        else:
            n_tensors, n_kv = struct.unpack_from(fmt + "QQ", head, 8)
        details = {
            "version": version,
            "endianness": endian,
            "tensor_count": n_tensors,
            "metadata_kv_count": n_kv,
        }
        warnings = []
        if n_tensors > 10_000_000 or n_kv > 10_000_000:
            warnings.append(f"implausible counts ({n_tensors} tensors, {n_kv} keys): corrupt header")
        return Detection(
            "gguf", CERTAIN, [f"magic 'GGUF', version {version} ({endian}-endian)"], details, warnings
        )
    legacy = _LEGACY.get(head[:4])
    if legacy and len(head) >= 8:
        details: dict[str, object] = {"variant": legacy, "legacy": True}
        evidence = [f"legacy magic '{legacy.lower()}' (pre-GGUF llama.cpp/ggml container)"]
        if legacy != "GGML":
            details["version"] = struct.unpack_from("<I", head, 4)[0]
            evidence[0] += f", version {details['version']}"
        return Detection(
            "gguf",
            STRONG,
            evidence,
            details,
            [f"legacy {legacy} file: current llama.cpp only loads GGUF; convert it first"],
        )
    return None
