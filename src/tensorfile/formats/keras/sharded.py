"""Sharded Keras 3 weights: the `*.weights.json` index, its shards, detection and inspection."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ...errors import FormatError
from ...model import (
    CERTAIN,
    Detection,
    Identification,
    ModelInfo,
    TensorInfo,
    add_warning,
    is_plain_number,
)
from ...probe import DirProbe, FileProbe, load_json
from ...source import open_source
from .h5_weights import read_h5_file
from .training_state import TRAINING_FACTS, split_training_state

# --- sharded Keras 3 weights --------------------------------------------------------------------------
#
# model.save_weights("model.weights.json", max_shard_size=GB) (keras saving_lib.ShardedH5IOStore)
# writes an index {"metadata": {"total_size": bytes}, "weight_map": {"/layers/dense/vars":
# "model_00000.weights.h5", …}} and shards named <base>_NNNNN.weights.h5, each an ordinary Keras 3
# weights file. The map records a variable group only in the shard where it started: when a shard
# fills up in the middle of a group, the rest of the group goes to the next shard under the same
# group path, and a shard holding only such continuations is named by no map entry. So the shards
# are the map's files plus every sibling named <base>_NNNNN.weights.h5.

SHARD_INDEX_SUFFIX = ".weights.json"
_MAX_INDEX = 64 * 1024 * 1024


def _shard_siblings(folder: Path, index_name: str) -> list[str]:
    base = index_name[: -len(SHARD_INDEX_SUFFIX)]  # "model.weights.json" -> "model", as Keras names it
    pattern = re.compile(rf"^{re.escape(base)}_\d{{5}}\.weights\.h5$")
    try:
        return sorted(p.name for p in folder.iterdir() if pattern.match(p.name))
    except OSError:
        return []


def _sharded_index(index: Any, folder: Path, index_name: str) -> Detection | None:
    """A Keras shard index: weight_map values are .weights.h5 file names (or lists of them)."""
    if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
        return None
    named: list[str] = []
    for value in index["weight_map"].values():
        for name in value if isinstance(value, list) else [value]:
            if not isinstance(name, str) or not name.endswith(".weights.h5"):
                return None
            named.append(name)
    if not named:
        return None
    warnings: list[str] = []
    outside = sorted({n for n in named if n != Path(n).name})
    if outside:
        warnings.append(f"weight_map names files outside the folder: {', '.join(outside[:3])}")
    shards = sorted({n for n in named if n == Path(n).name} | set(_shard_siblings(folder, index_name)))
    missing = [s for s in shards if not (folder / s).is_file()]
    if missing:
        warnings.append(f"{len(missing)} of {len(shards)} shards missing: {', '.join(missing[:3])}")
    details: dict[str, Any] = {
        "variant": "keras3-sharded-weights",
        "container": "sharded",
        "index": index_name,
        "shards": shards,
    }
    metadata = index.get("metadata")
    if isinstance(metadata, dict) and is_plain_number(metadata.get("total_size")):
        details["total_size"] = metadata["total_size"]
    evidence = [
        f"{index_name}: Keras weight_map of {len(index['weight_map'])} variable groups "
        f"over {len(shards)} .weights.h5 shards"
    ]
    return Detection("keras-h5", CERTAIN, evidence, details, warnings)


def detect_sharded_index(probe: FileProbe) -> Detection | None:
    """The `*.weights.json` index of sharded Keras 3 weights, given on its own."""
    if not probe.name.endswith(SHARD_INDEX_SUFFIX) or probe.size > _MAX_INDEX:
        return None
    try:
        index = load_json(probe.read(0, probe.size))
    except (ValueError, UnicodeDecodeError):
        return None
    return _sharded_index(index, probe.path.parent, probe.name)


def detect_dir(probe: DirProbe) -> Detection | None:
    """A folder holding sharded Keras 3 weights (the index plus its shards)."""
    for name in probe.matching(SHARD_INDEX_SUFFIX):
        found = _sharded_index(probe.read_json(name), probe.path, name)
        if found is not None:
            return found
    return None


def inspect_sharded(path: Path, ident: Identification) -> ModelInfo:
    """Every shard of sharded Keras 3 weights, read like one .weights.h5 (one isolated read each)."""
    folder = path if path.is_dir() else path.parent
    index_name = str(ident.details.get("index"))
    shards = [str(s) for s in ident.details.get("shards", [])]
    missing = [s for s in shards if not (folder / s).is_file()]
    if missing:
        raise FormatError(f"shard(s) missing: {', '.join(missing[:3])}", path)
    if not shards:
        raise FormatError(f"{index_name} names no shard file in its folder", path)
    try:
        raw = (folder / index_name).read_bytes()[: _MAX_INDEX + 1]
        index = load_json(raw) if len(raw) <= _MAX_INDEX else None
    except (OSError, ValueError, UnicodeDecodeError):
        index = None
    if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
        raise FormatError(f"{index_name} is no longer a readable shard index", path)
    info = ModelInfo(str(path), "keras-h5")
    info.files.append({"path": index_name, "size_bytes": len(raw)})
    tensors: list[TensorInfo] = []
    seen: set[str] = set()
    facts: dict[str, Any] = {}
    for shard in shards:
        with open_source(folder / shard) as source:
            info.files.append({"path": shard, "size_bytes": source.size})
            part, metadata, warnings, _ = read_h5_file(
                source.open_stream, shard, 0, folder / shard, root_attrs=False
            )
        info.warnings.extend(f"{shard}: {w}" for w in warnings)
        for key in TRAINING_FACTS:
            if key in metadata:
                facts.setdefault(key, metadata[key])
        for tensor in part:
            if tensor.name in seen:
                add_warning(info.warnings, f"{shard}: {tensor.name} is already in an earlier shard: skipped")
                continue
            seen.add(tensor.name)
            tensors.append(tensor)
    info.metadata = {"variant": "keras3-sharded-weights", "index": index_name, "shards": len(shards), **facts}
    _check_shard_index(index, tensors, info)
    split_training_state(info, tensors, None)
    return info


def _check_shard_index(index: dict[str, Any], tensors: list[TensorInfo], info: ModelInfo) -> None:
    """Warn where the index and the shards disagree: groups not where the map says, total size."""
    groups = {(t.file, "/" + t.name.rsplit("/", 1)[0]) for t in tensors if "/" in t.name}
    wrong = []
    for group, value in index["weight_map"].items():
        files = value if isinstance(value, list) else [value]
        if not any((f, str(group)) in groups for f in files):
            wrong.append(str(group))
    if wrong:
        add_warning(
            info.warnings,
            f"{len(wrong)} weight_map entries name a shard without that group (e.g. {wrong[0]})",
        )
    total = index.get("metadata", {}).get("total_size") if isinstance(index.get("metadata"), dict) else None
    stored = sum(t.nbytes for t in tensors)
    if is_plain_number(total) and int(total) != stored:
        info.warnings.append(f"index metadata.total_size is {total} but the shards hold {stored} bytes")
    if is_plain_number(total):
        info.metadata["total_size"] = int(total)
