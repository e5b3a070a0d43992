"""Safetensors: an 8-byte little-endian header length, a JSON header, then raw tensor bytes."""

from __future__ import annotations

import re
import struct
from math import prod
from pathlib import Path
from typing import Any

from ..dtypes import lookup, nbytes
from ..errors import FormatError
from ..model import CERTAIN, LIKELY, STRONG, Detection, Identification, ModelInfo, TensorInfo
from ..probe import DirProbe, FileProbe, load_json
from ..source import is_remote_path, open_source, read_exact

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
            header = load_json(probe.head[8 : 8 + n])
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
        header = load_json(raw)
    except ValueError:
        return None
    return header if isinstance(header, dict) else None


def detect_index(probe: FileProbe) -> Detection | None:
    """`model.safetensors.index.json` (or any *.safetensors.index.json) on its own."""
    if not probe.name.endswith(".index.json") or probe.size > 64 * 1024 * 1024:
        return None
    try:
        index = load_json(probe.read(0, probe.size))
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


# --- inspect --------------------------------------------------------------------------------------


def tensors_from_header(
    header: dict[str, Any], data_start: int, file_size: int, file_label: str
) -> tuple[list[TensorInfo], list[str]]:
    """TensorInfo for every header entry, plus warnings for entries that lie."""
    tensors: list[TensorInfo] = []
    warnings: list[str] = []
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            warnings.append(f"{file_label}: entry {name!r} is not an object")
            continue
        try:
            dtype = lookup(str(entry.get("dtype")))
            shape = tuple(int(d) for d in entry.get("shape", ()))
            begin, end = (int(x) for x in entry.get("data_offsets", ()))
        except (KeyError, TypeError, ValueError):
            warnings.append(f"{file_label}: tensor {name!r} has a malformed dtype, shape or data_offsets")
            continue
        if any(d < 0 for d in shape):
            warnings.append(f"{file_label}: tensor {name!r} has a negative dimension")
            continue
        numel = prod(shape)
        try:
            expected = nbytes(dtype, numel)
        except ValueError:
            expected = -1
        if end - begin != expected:
            warnings.append(
                f"{file_label}: tensor {name!r} spans {end - begin} bytes but {dtype.name}{list(shape)} "
                f"needs {expected}"
            )
        if begin < 0 or end < begin or data_start + end > file_size:
            warnings.append(f"{file_label}: tensor {name!r} data [{begin}, {end}) lies outside the file")
        spans.append((begin, end, name))
        tensors.append(
            TensorInfo(name, dtype.name, shape, max(end - begin, 0), file_label, data_start + begin)
        )
    spans.sort()
    reach, reach_name = 0, ""  # furthest end seen so far: catches spans nested in long ones too
    for begin, end, name in spans:
        if begin < reach and end > begin:
            warnings.append(f"{file_label}: tensors {reach_name!r} and {name!r} overlap")
            break
        if end > reach:
            reach, reach_name = end, name
    return tensors, warnings


def read_file_header(path: Path) -> tuple[dict[str, Any], int, int]:
    """(header, data start offset, file size) of one safetensors file, header bytes only."""
    with open_source(path) as source:
        head = read_exact(source, 0, 8, "safetensors header length")
        n = struct.unpack("<Q", head)[0]
        if n > MAX_HEADER:
            raise FormatError(f"safetensors header claims {n} bytes, over the 100 MB limit", path)
        raw = read_exact(source, 8, n, "safetensors header")
        size = source.size
    try:
        header = load_json(raw)
    except ValueError as exc:
        raise FormatError(f"safetensors header is not valid JSON ({exc})", path) from None
    if not isinstance(header, dict):
        raise FormatError("safetensors header is not a JSON object", path)
    return header, 8 + n, size


def inspect_files(root: Path, files: list[Path], fmt: str) -> ModelInfo:
    info = ModelInfo(str(root), fmt)
    for path, (header, start, size) in zip(files, _read_headers(files), strict=True):
        label = path.name if root.is_dir() or len(files) > 1 else str(path)
        tensors, warnings = tensors_from_header(header, start, size, label)
        info.tensors.extend(tensors)
        info.warnings.extend(warnings)
        info.files.append({"path": label, "size_bytes": size, "header_bytes": start - 8})
        meta = header.get("__metadata__")
        if isinstance(meta, dict) and not info.metadata:
            info.metadata = {str(k): v for k, v in meta.items()}
    return info


def _read_headers(files: list[Path]) -> list[tuple[dict[str, Any], int, int]]:
    """Every file's header; remote shards are asked for at once, since each costs round trips."""
    if len(files) < 2 or not any(is_remote_path(f) for f in files):
        return [read_file_header(f) for f in files]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, len(files))) as pool:
        return list(pool.map(read_file_header, files))


def inspect_single(path: Path, ident: Identification) -> ModelInfo:
    if path.is_dir():
        name = ident.details.get("weights_file")
        if name is None:  # a model folder found by its config: pick the default variant's files
            from .hf import choose_weights

            chosen = choose_weights(path)
            if chosen is None or not chosen.files:
                raise FormatError("folder holds no safetensors weights", path)
            info = inspect_files(path, [path / f for f in chosen.files], "safetensors")
            if chosen.other_variants:
                info.warnings.append(f"other weight variants not counted: {', '.join(chosen.other_variants)}")
            return info
        return inspect_files(path, [path / name], "safetensors")
    return inspect_files(path, [path], "safetensors")


def inspect_sharded(path: Path, ident: Identification) -> ModelInfo:
    folder = path if path.is_dir() else path.parent
    shards = [folder / s for s in ident.details.get("shards", [])]
    missing = [s.name for s in shards if not s.is_file()]
    if missing:
        raise FormatError(f"shard(s) missing: {', '.join(missing[:3])}", path)
    info = inspect_files(folder, shards, "safetensors-sharded")
    info.path = str(path)
    total = ident.details.get("total_size")
    if total is not None and total != info.total_bytes:
        info.warnings.append(
            f"index metadata.total_size is {total} but the shards hold {info.total_bytes} bytes"
        )
    index_name = ident.details.get("index")
    if index_name:
        info.metadata["index"] = index_name
        _check_weight_map(folder / index_name, info)
    return info


def _check_weight_map(index_path: Path, info: ModelInfo) -> None:
    try:
        weight_map = load_json(index_path.read_bytes()).get("weight_map", {})
    except (OSError, ValueError, AttributeError):
        return
    located = {t.name: t.file for t in info.tensors}
    wrong = [n for n, f in weight_map.items() if located.get(n) != f]
    if wrong:
        info.warnings.append(f"{len(wrong)} index entries do not match the shards (e.g. {wrong[0]!r})")
    extra = set(located) - set(weight_map)
    if extra:
        info.warnings.append(f"{len(extra)} tensors in the shards are missing from the index")


INSPECTS = {"safetensors": inspect_single, "safetensors-sharded": inspect_sharded}
