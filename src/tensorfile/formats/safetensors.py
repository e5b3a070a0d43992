"""Safetensors: an 8-byte little-endian header length, a JSON header, then raw tensor bytes."""

from __future__ import annotations

import json
import re
import struct
from typing import Any

from ..model import CERTAIN, LIKELY, STRONG, Detection
from ..probe import DirProbe, FileProbe

MAX_HEADER = 100 * 1024 * 1024  # the safetensors library's own limit
_SHARD = re.compile(r"-\d{5}-of-\d{5}\.safetensors$")
_FIRST_KEY = re.compile(rb'^\{\s*"((?:[^"\\]|\\.){0,512})"\s*:\s*\{')


def header_length(head: bytes) -> int | None:
    return struct.unpack_from("<Q", head)[0] if len(head) >= 8 else None


def detect_file(probe: FileProbe) -> Detection | None:
    n = header_length(probe.head)
    if n is None or n < 2 or probe.head[8:9] != b"{":
        return None
    if n > probe.size - 8:
        return Detection(
            "safetensors",
            LIKELY,
            ["8-byte header length followed by '{'"],
            warnings=[f"header claims {n} bytes but the file has {probe.size - 8}: truncated"],
        )
    evidence = [f"8-byte header length {n} followed by a JSON object"]
    match = _FIRST_KEY.match(probe.head[8 : 8 + min(n, 4096)])
    if not match:
        return None
    first_key = match.group(1).decode("utf-8", "replace")
    details: dict[str, Any] = {"header_bytes": n}
    warnings: list[str] = []
    if n > MAX_HEADER:
        warnings.append(f"header is {n} bytes, over the 100 MB the safetensors library accepts")
    if n + 8 <= len(probe.head):
        try:
            header = json.loads(probe.head[8 : 8 + n])
        except ValueError:
            return Detection(
                "safetensors", LIKELY, evidence, details, ["JSON header does not parse: corrupt header"]
            )
        if not isinstance(header, dict):
            return None
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}
        if not all(isinstance(v, dict) and "dtype" in v and "shape" in v for v in tensors.values()):
            return Detection("safetensors", LIKELY, evidence, details, ["header entries lack dtype/shape"])
        details["tensor_count"] = len(tensors)
        if isinstance(header.get("__metadata__"), dict):
            details["metadata"] = header["__metadata__"]
        details["tensor_names_sample"] = list(tensors)[:8]
        evidence.append(f"header lists {len(tensors)} tensors with dtype/shape/data_offsets")
    else:
        evidence.append(f'first header key "{first_key[:60]}"')
    return Detection("safetensors", CERTAIN, evidence, details, warnings)


def read_header(probe: FileProbe, limit: int = MAX_HEADER) -> dict[str, Any] | None:
    """The parsed JSON header of a safetensors file (None when unreadable or over `limit`)."""
    head = probe.head
    n = header_length(head)
    if n is None or n > limit or n + 8 > probe.size:
        return None
    raw = head[8 : 8 + n] if n + 8 <= len(head) else probe.read(8, n)
    try:
        header = json.loads(raw)
    except ValueError:
        return None
    return header if isinstance(header, dict) else None


def detect_index(probe: FileProbe) -> Detection | None:
    """`model.safetensors.index.json` (or any *.safetensors.index.json) on its own."""
    if not probe.name.endswith(".index.json") or probe.size > 64 * 1024 * 1024:
        return None
    try:
        index = json.loads(probe.read(0, probe.size))
    except ValueError:
        return None
    return _index_detection(index, probe.path.parent, probe.name)


def _index_detection(index: Any, folder: Any, index_name: str) -> Detection | None:
    if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
        return None
    shards = sorted(set(map(str, index["weight_map"].values())))
    if not shards or not all(s.endswith(".safetensors") for s in shards):
        return None
    missing = [s for s in shards if not (folder / s).is_file()]
    details: dict[str, Any] = {
        "index": index_name,
        "shards": shards,
        "tensor_count": len(index["weight_map"]),
    }
    total = index.get("metadata", {}).get("total_size") if isinstance(index.get("metadata"), dict) else None
    if total is not None:
        details["total_size"] = total
    warnings = (
        [f"{len(missing)} of {len(shards)} shards missing: {', '.join(missing[:3])}"] if missing else []
    )
    evidence = [f"{index_name}: weight_map of {len(index['weight_map'])} tensors over {len(shards)} shards"]
    return Detection("safetensors-sharded", CERTAIN, evidence, details, warnings)


def detect_dir(probe: DirProbe) -> Detection | None:
    indexes = [f for f in probe.files if f.endswith(".safetensors.index.json")]
    for name in indexes:
        index = probe.read_json(name)
        found = _index_detection(index, probe.path, name)
        if found:
            return found
    shards = [f for f in probe.files if _SHARD.search(f)]
    if shards:
        return Detection(
            "safetensors-sharded",
            STRONG,
            [f"{len(shards)} files named like *-0000N-of-0000M.safetensors, no index"],
            {"shards": shards},
            ["no *.safetensors.index.json: loaders need the index"],
        )
    singles = probe.matching(".safetensors")
    if len(singles) == 1:
        return Detection(
            "safetensors",
            STRONG,
            [f"folder holds one weights file: {singles[0]}"],
            {"weights_file": singles[0]},
        )
    return None
