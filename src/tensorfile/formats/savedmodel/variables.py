"""The variables/ folder of a SavedModel or TF checkpoint: every tensor from variables.index, the
shards it lives in, and the optimizer state and counters of a training checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...dtypes import UnknownDType, nbytes
from ...errors import TensorfileError
from ...model import (
    ModelInfo,
    TensorInfo,
    new_checkpoint,
    optimizer_state,
)
from ...protowire import VARINT, MessageReader
from ...source import BytesSource, open_source, read_exact
from .object_graph import variable_copies
from .tensor_bundle import _bundle_entry, read_table, shard_name
from .tf_types import tf_dtype_name, tf_nbytes

# Weights live in variables/variables.index (a LevelDB-style sorted table, TensorFlow's "tensor
# bundle") plus variables.data-0000N-of-0000M shards. The index maps each checkpoint key to a
# BundleEntryProto (dtype, shape, shard, offset, size), so every tensor is described without
# opening the data shards. Signatures come from saved_model.pb, walked lazily with protowire.


_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def _role(key: str) -> str:
    if ".OPTIMIZER_SLOT" in key or key.startswith("optimizer/"):
        return "optimizer"
    if key.startswith("save_counter/") or "/metrics/" in f"/{key}":
        return "buffer"  # checkpoint bookkeeping and metric accumulators, not model weights
    return "weight"


def inspect_variables(folder: Path, info: ModelInfo, graph_file: Path | None = None) -> None:
    index_path = folder / "variables" / "variables.index"
    if not index_path.is_file():
        info.warnings.append("variables/variables.index is missing: the weights cannot be listed")
        return
    info.files.append({"path": "variables/variables.index", "size_bytes": index_path.stat().st_size})
    num_shards = 1
    entries: dict[str, dict[str, Any]] = {}
    for raw_key, value in read_table(index_path):
        if raw_key == b"":  # BundleHeaderProto: num_shards 1, endianness 2, version 3
            for f in MessageReader(BytesSource(value, str(index_path))).fields():
                if f.number == 1 and f.wire_type == VARINT:
                    num_shards = f.value
                elif f.number == 2 and f.wire_type == VARINT and f.value == 1:
                    info.warnings.append("tensor bundle is big-endian")
            continue
        if raw_key[:1] == b"\x00":  # encoded slice keys of partitioned variables: counted via the parent
            continue
        entries[raw_key.decode("utf-8", "replace")] = _bundle_entry(value, str(index_path))
    # A serialized TrackableObjectGraph (a DT_STRING blob describing the object tree), not a variable.
    object_graph = entries.pop(_OBJECT_GRAPH_KEY, None)
    if object_graph is not None:
        info.metadata["object_graph_bytes"] = object_graph["size"]
    copies = variable_copies(folder, graph_file, object_graph, entries, num_shards, info)
    shard_sizes: dict[int, int | None] = {}
    sliced = 0
    for key, entry in entries.items():
        if key in copies:
            continue
        dtype = tf_dtype_name(entry["dtype"])
        shape = entry["shape"]
        if shape is None or any(d < 0 for d in shape):
            info.warnings.append(f"variable {key!r} has an unknown or negative shape")
            shape = tuple(max(d, 0) for d in shape or ())
        tensor = TensorInfo(key, dtype, shape, entry["size"], role=_role(key))
        if entry["slices"]:
            sliced += 1
            try:  # partitioned: the data is in slice entries, so the size is the logical one
                tensor.nbytes = nbytes(dtype, tensor.numel)
            except (UnknownDType, ValueError):
                tensor.nbytes = 0
        else:
            shard = entry["shard"]
            tensor.file = shard_name(shard, num_shards)
            if shard not in shard_sizes:
                data = folder / tensor.file
                shard_sizes[shard] = data.stat().st_size if data.is_file() else None
                if shard_sizes[shard] is None:
                    info.warnings.append(f"data shard {data.name} is missing")
            tensor.offset = entry["offset"]
            size_on_disk = shard_sizes[shard]
            if size_on_disk is not None and entry["offset"] + entry["size"] > size_on_disk:
                info.warnings.append(f"variable {key!r} data runs past the end of {tensor.file}")
            expected = tf_nbytes(dtype, tensor.numel)  # None for strings and other variable-size types
            if expected is not None and expected != entry["size"]:
                info.warnings.append(
                    f"variable {key!r} stores {entry['size']} bytes, {dtype}{list(shape)} needs {expected}"
                )
        info.tensors.append(tensor)
    for shard, size in sorted(shard_sizes.items()):
        if size is not None:
            info.files.append({"path": shard_name(shard, num_shards), "size_bytes": size})
    info.metadata["num_shards"] = num_shards
    if sliced:
        info.warnings.append(f"{sliced} partitioned variable(s): offsets are per slice and not shown")
    optimizer = [t for t in info.tensors if t.role == "optimizer"]
    if optimizer:
        info.checkpoint = new_checkpoint(
            "tf-training-checkpoint",
            "tensorflow",
            [t for t in info.tensors if t.role != "optimizer"],
            optimizer_state(optimizer, slots=[_slot(t.name) for t in optimizer]),
            counters=_counters(folder, info.tensors),
            top_level_keys=dict.fromkeys(t.name.split("/", 1)[0] for t in info.tensors),
        )


_COUNTER_NAMES = {
    "optimizer/iter": "iterations",
    "optimizer/iterations": "iterations",
    "save_counter": "save_counter",
}


def _counters(folder: Path, tensors: list[TensorInfo]) -> dict[str, int]:
    """The optimizer's step count and the save counter: integer scalars read from their shard."""
    counters: dict[str, int] = {}
    for t in tensors:
        name = _COUNTER_NAMES.get(t.name.removesuffix("/.ATTRIBUTES/VARIABLE_VALUE"))
        if name is None or t.shape != () or t.dtype not in ("I64", "I32") or t.file is None:
            continue
        try:
            with open_source(folder / t.file) as shard:
                raw = read_exact(shard, t.offset or 0, t.nbytes, "counter")
        except (OSError, TensorfileError):  # a missing or short shard: the counter stays unknown
            continue
        counters[name] = int.from_bytes(raw, "little", signed=True)
    return counters


def _slot(key: str) -> str:
    """'kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/…' -> 'm'; 'optimizer/iter/…' -> 'iter'."""
    if ".OPTIMIZER_SLOT/" in key:
        after = key.split(".OPTIMIZER_SLOT/", 1)[1].split("/")
        return after[1] if len(after) > 1 else after[0]
    return key.removeprefix("optimizer/").split("/", 1)[0]
