"""TensorFlow SavedModel: a folder with saved_model.pb (a SavedModel protobuf) and variables/.

Also TF1 frozen graphs: a bare GraphDef protobuf (frozen_graph.pb, written by tf.io.write_graph after
convert_variables_to_constants) whose weights are Const nodes. They are reported as tf-savedmodel with
variant "frozen-graph": the same graph messages, the same loader family and the same risk (graph ops
run when the graph does); only the container differs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from math import prod
from pathlib import Path
from typing import Any

from ..dtypes import DType, UnknownDType, lookup, nbytes
from ..errors import FormatError, TensorfileError
from ..model import (
    CERTAIN,
    LIKELY,
    STRONG,
    Detection,
    Identification,
    ModelInfo,
    TensorInfo,
    add_warning,
    new_checkpoint,
    optimizer_state,
)
from ..probe import DirProbe, FileProbe
from ..protowire import I32, I64, LEN, VARINT, Field, MessageReader, decode_varint, decode_varints, signed64
from ..source import ByteSource, BytesSource, CachedSource, OpenedSource, open_source, read_exact

_SAVED_MODEL_FIELDS = {1: VARINT, 2: LEN}


def detect_dir(probe: DirProbe) -> Detection | None:
    pb = (
        "saved_model.pb"
        if probe.has("saved_model.pb")
        else "saved_model.pbtxt"
        if probe.has("saved_model.pbtxt")
        else None
    )
    if pb is None:
        return None
    evidence = [f"{pb} present"]
    details: dict[str, Any] = {"graph_file": pb}
    warnings: list[str] = []
    if "variables" in probe.dirs:
        evidence.append("variables/ folder")
        details["has_variables"] = True
    else:
        warnings.append("no variables/ folder: a graph without weights (or a constants-only model)")
    if "assets" in probe.dirs:
        details["has_assets"] = True
    if probe.has("keras_metadata.pb") or probe.has("fingerprint.pb"):
        details["extra"] = [f for f in ("keras_metadata.pb", "fingerprint.pb") if probe.has(f)]
    return Detection(
        "tf-savedmodel", CERTAIN if "variables" in probe.dirs else STRONG, evidence, details, warnings
    )


def detect_file(probe: FileProbe) -> Detection | None:
    """saved_model.pb given on its own (schema version + meta graphs), or a bare GraphDef."""
    fields, clean = probe.proto_fields
    if not fields or not clean:
        return None
    if any(_SAVED_MODEL_FIELDS.get(f.number) != f.wire_type for f in fields):
        return detect_graph_def(probe)
    if not any(f.number == 2 for f in fields):
        return None
    version = next((f.value for f in fields if f.number == 1), None)
    meta_graphs = sum(1 for f in fields if f.number == 2)
    confidence = STRONG if probe.name == "saved_model.pb" else 0.6
    return Detection(
        "tf-savedmodel",
        confidence,
        [f"protobuf SavedModel: schema version {version}, {meta_graphs} meta graph(s)"],
        {"meta_graphs": meta_graphs, "schema_version": version, "graph_only": True},
        ["this is only the graph file; the weights live in the folder's variables/"],
    )


# --- inspect --------------------------------------------------------------------------------------
#
# Weights live in variables/variables.index (a LevelDB-style sorted table, TensorFlow's "tensor
# bundle") plus variables.data-0000N-of-0000M shards. The index maps each checkpoint key to a
# BundleEntryProto (dtype, shape, shard, offset, size), so every tensor is described without
# opening the data shards. Signatures come from saved_model.pb, walked lazily with protowire.

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48  # two padded BlockHandles (40 bytes) + 8-byte magic
_BLOCK_TRAILER = 5  # compression type byte + masked crc32c
_MAX_BLOCK = 256 * 1024 * 1024  # index blocks are KBs; anything near this is a lie
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"

# TensorFlow's DataType enum (types.proto, as tensorflow 2.21 has it), spelled as TF names it; *_REF
# values (100 + n) name the same types.
_TF_ENUM = {
    1: "DT_FLOAT", 2: "DT_DOUBLE", 3: "DT_INT32", 4: "DT_UINT8", 5: "DT_INT16", 6: "DT_INT8",
    7: "DT_STRING", 8: "DT_COMPLEX64", 9: "DT_INT64", 10: "DT_BOOL", 11: "DT_QINT8", 12: "DT_QUINT8",
    13: "DT_QINT32", 14: "DT_BFLOAT16", 15: "DT_QINT16", 16: "DT_QUINT16", 17: "DT_UINT16",
    18: "DT_COMPLEX128", 19: "DT_HALF", 20: "DT_RESOURCE", 21: "DT_VARIANT", 22: "DT_UINT32",
    23: "DT_UINT64", 24: "DT_FLOAT8_E5M2", 25: "DT_FLOAT8_E4M3FN", 26: "DT_FLOAT8_E4M3FNUZ",
    27: "DT_FLOAT8_E4M3B11FNUZ", 28: "DT_FLOAT8_E5M2FNUZ", 29: "DT_INT4", 30: "DT_UINT4",
    31: "DT_INT2", 32: "DT_UINT2", 33: "DT_FLOAT4_E2M1FN",
}  # fmt: skip
# Quantized TF types have plain storage (the scales live in other tensors): report the storage type.
_TF_STORAGE = {
    "DT_QINT8": "I8",
    "DT_QUINT8": "U8",
    "DT_QINT16": "I16",
    "DT_QUINT16": "U16",
    "DT_QINT32": "I32",
}
# Canonical names by enum number; every other DT_ name is an alias in the dtypes table.
TF_DTYPES: dict[int, str] = {n: _TF_STORAGE.get(name) or lookup(name).name for n, name in _TF_ENUM.items()}


def tf_dtype_name(enum: int) -> str:
    """Canonical dtype for a TF DataType number (DT_STRING -> STRING…); "DT_<n>" for an unknown one."""
    return TF_DTYPES.get(enum - 100 if enum > 100 else enum, f"DT_{enum}")


def _varint(buf: bytes, pos: int, what: str, name: str) -> tuple[int, int]:
    try:
        return decode_varint(buf, pos)
    except FormatError:
        raise FormatError(f"{what}: varint cut short or too long", name) from None


def snappy_decompress(data: bytes, name: str = "<snappy>", limit: int = _MAX_BLOCK) -> bytes:
    """Raw (unframed) Snappy, the block compression LevelDB tables use; small enough to own."""
    length, pos = _varint(data, 0, "snappy block length", name)
    if length > limit:
        raise FormatError(f"snappy block claims {length} bytes, over the {limit}-byte limit", name)
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal; lengths over 60 follow in 1-4 little-endian bytes
            n = tag >> 2
            if n >= 60:
                width = n - 59
                n = int.from_bytes(data[pos : pos + width], "little")
                pos += width
            n += 1
            if pos + n > len(data):
                raise FormatError("snappy literal runs past the block", name)
            out += data[pos : pos + n]
            pos += n
            continue
        if kind == 1:
            n = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | (data[pos] if pos < len(data) else 0)
            pos += 1
        else:
            width = 2 if kind == 2 else 4
            n = (tag >> 2) + 1
            offset = int.from_bytes(data[pos : pos + width], "little")
            pos += width
        if pos > len(data) or offset == 0 or offset > len(out):
            raise FormatError("snappy copy refers before the start of the block", name)
        for _ in range(n):  # byte by byte: copies may overlap their own output
            out.append(out[-offset])
        if len(out) > length:
            break
    if len(out) != length:
        raise FormatError(f"snappy block decodes to {len(out)} bytes, header says {length}", name)
    return bytes(out)


def _read_block(source: OpenedSource, offset: int, size: int, what: str) -> bytes:
    if size > _MAX_BLOCK:
        raise FormatError(f"{what} claims {size} bytes: corrupt block handle", source.name)
    raw = read_exact(source, offset, size + _BLOCK_TRAILER, what)
    kind = raw[size]
    if kind == 0:
        return raw[:size]
    if kind == 1:
        return snappy_decompress(raw[:size], source.name)
    raise FormatError(f"{what} uses unknown compression type {kind}", source.name)


def _block_entries(block: bytes, what: str, name: str) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) pairs of one table block: prefix-compressed keys, restart array at the end."""
    if len(block) < 4:
        raise FormatError(f"{what} is too short to hold its restart count", name)
    restarts = int.from_bytes(block[-4:], "little")
    limit = len(block) - 4 - 4 * restarts
    if limit < 0:
        raise FormatError(f"{what} claims {restarts} restart points, more than fit", name)
    pos = 0
    key = b""
    while pos < limit:
        shared, pos = _varint(block, pos, what, name)
        unshared, pos = _varint(block, pos, what, name)
        value_len, pos = _varint(block, pos, what, name)
        if shared > len(key) or pos + unshared + value_len > limit:
            raise FormatError(f"{what}: entry at {pos} runs past the block", name)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_len]
        pos += value_len


def read_table(path: Path) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of a LevelDB-format table file, reading the index and data blocks only."""
    with open_source(path) as source:
        if source.size < _FOOTER_SIZE:
            raise FormatError(
                f"{source.size} bytes is shorter than the {_FOOTER_SIZE}-byte table footer: truncated",
                path,
            )
        footer = read_exact(source, source.size - _FOOTER_SIZE, _FOOTER_SIZE, "table footer")
        if int.from_bytes(footer[40:], "little") != _TABLE_MAGIC:
            raise FormatError("table footer magic is wrong: not a tensor-bundle index, or truncated", path)
        pos = 0
        handles = []
        for _ in range(4):  # metaindex offset, size; index offset, size
            value, pos = _varint(footer, pos, "table footer", source.name)
            handles.append(value)
        index = _read_block(source, handles[2], handles[3], "table index block")
        for _sep, handle in _block_entries(index, "table index block", source.name):
            offset, p = _varint(handle, 0, "block handle", source.name)
            size, _ = _varint(handle, p, "block handle", source.name)
            if offset + size + _BLOCK_TRAILER > source.size - _FOOTER_SIZE:
                raise FormatError(f"data block at {offset} (+{size}) runs past the index data", path)
            block = _read_block(source, offset, size, "table data block")
            yield from _block_entries(block, "table data block", source.name)


def _shape(reader: MessageReader) -> tuple[int, ...] | None:
    """TensorShapeProto -> dims (-1 for unknown), or None when the rank itself is unknown."""
    dims: list[int] = []
    for f in reader.fields():
        if f.number == 2 and f.wire_type == LEN:
            size = 0
            for g in reader.submessage(f).fields():
                if g.number == 1 and g.wire_type == VARINT:
                    size = signed64(g.value)
            dims.append(size)
        elif f.number == 3 and f.wire_type == VARINT and f.value:
            return None
    return tuple(dims)


def _bundle_entry(value: bytes, name: str) -> dict[str, Any]:
    """BundleEntryProto: dtype 1, shape 2, shard_id 3, offset 4, size 5, crc32c 6, slices 7."""
    reader = MessageReader(BytesSource(value, name))
    entry: dict[str, Any] = {
        "dtype": 0, "shape": (), "shard": 0, "offset": 0, "size": 0, "crc32c": None, "slices": 0
    }  # fmt: skip
    for f in reader.fields():
        if f.number == 1 and f.wire_type == VARINT:
            entry["dtype"] = f.value
        elif f.number == 2 and f.wire_type == LEN:
            entry["shape"] = _shape(reader.submessage(f))
        elif f.number in (3, 4, 5) and f.wire_type == VARINT:
            entry[{3: "shard", 4: "offset", 5: "size"}[f.number]] = f.value
        elif f.number == 6 and f.wire_type == I32:
            entry["crc32c"] = f.value
        elif f.number == 7:
            entry["slices"] += 1
    return entry


def _role(key: str) -> str:
    if ".OPTIMIZER_SLOT" in key or key.startswith("optimizer/"):
        return "optimizer"
    if key.startswith("save_counter/") or "/metrics/" in f"/{key}":
        return "buffer"  # checkpoint bookkeeping and metric accumulators, not model weights
    return "weight"


def _shard_name(shard: int, num_shards: int) -> str:
    return f"variables/variables.data-{shard:05d}-of-{num_shards:05d}"


def _inspect_variables(folder: Path, info: ModelInfo, graph_file: Path | None = None) -> None:
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
    copies = _variable_copies(folder, graph_file, object_graph, entries, num_shards, info)
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
            tensor.file = _shard_name(shard, num_shards)
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
            info.files.append({"path": _shard_name(shard, num_shards), "size_bytes": size})
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


# --- one variable, two checkpoint keys ------------------------------------------------------------
#
# The checkpoint stores one entry per object-graph node that owns a variable, so a variable reached
# from several places (a module's `variables`, `trainable_variables` and a layer's own attribute) is
# one node and one key. Keras 3's Model.export() makes two nodes per variable: its own Variable,
# tracked under `variables` / `trainable_variables` / `non_trainable_variables`, and the tf.Variable
# inside it that the endpoint captured, tracked under `_all_variables`. The checkpoint then holds
# every variable twice, under two keys with two copies of the bytes; tf.saved_model.load restores
# both, but `.variables` and every function use only the first. Such a copy is recognised from the
# two object graphs, never from the key's spelling: a variable node no concrete function binds
# (SavedObjectGraph bound_inputs) whose SavedVariable (name, dtype, shape, trainable) and stored
# bytes (size and crc32c in the bundle entry) equal those of a node a function does bind.

_MAX_OBJECT_GRAPH = 256 * 1024 * 1024
_SavedVariable = tuple[str, int, Any, bool]  # name, dtype, shape, trainable


def _variable_copies(
    folder: Path,
    graph_file: Path | None,
    object_graph: dict[str, Any] | None,
    entries: dict[str, dict[str, Any]],
    num_shards: int,
    info: ModelInfo,
) -> set[str]:
    """Checkpoint keys that hold a second copy of a variable stored under another key."""
    if object_graph is None or graph_file is None or graph_file.suffix != ".pb" or not graph_file.is_file():
        return set()
    try:
        nodes = _checkpoint_nodes(folder / _shard_name(object_graph["shard"], num_shards), object_graph)
        variables, bound = saved_object_graph(graph_file)
    except (OSError, TensorfileError) as exc:
        reason = exc.message if isinstance(exc, TensorfileError) else str(exc)
        add_warning(info.warnings, f"object graph not read, variables stored twice are not found: {reason}")
        return set()

    def identity(key: str) -> tuple[Any, ...] | None:
        node = nodes.get(key, (-1, ""))[0]
        entry = entries[key]
        if node not in variables or entry["crc32c"] is None or variables[node][0] != nodes[key][1]:
            return None  # not a variable node, no checksum, or the two graphs disagree about it
        return (*variables[node], entry["dtype"], entry["shape"], entry["size"], entry["crc32c"])

    used: dict[tuple[Any, ...], list[str]] = {}
    for key in entries:
        if nodes.get(key, (-1, ""))[0] in bound and (found := identity(key)) is not None:
            used.setdefault(found, []).append(key)
    copies: dict[str, str] = {}
    for key in entries:
        if nodes.get(key, (-1, ""))[0] not in bound and (found := identity(key)) in used and used[found]:
            copies[key] = used[found].pop(0)
    names = {key: nodes[key][1] for key in entries if key in nodes and key not in copies}
    if names:
        info.metadata["variable_names"] = names
    if copies:
        info.metadata["duplicate_variables"] = {
            "count": len(copies),
            "bytes": sum(entries[k]["size"] for k in copies),
            "copies": copies,
        }
    return set(copies)


def _checkpoint_nodes(shard: Path, entry: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """checkpoint key -> (object-graph node id, the variable's full name), from the checkpoint's own
    TrackableObjectGraph: a DT_STRING scalar in the data shard (varint length, a 4-byte checksum of the
    length, then the serialized proto; nodes 1, attributes 2: full_name 2, checkpoint_key 3)."""
    if entry["size"] > _MAX_OBJECT_GRAPH:
        raise FormatError(f"object graph claims {entry['size']} bytes, over the read limit", shard)
    with open_source(shard) as source:
        raw = read_exact(source, entry["offset"], entry["size"], "checkpoint object graph")
    length, pos = _varint(raw, 0, "checkpoint object graph", shard.name)
    if pos + 4 + length != len(raw):
        raise FormatError("checkpoint object graph: its string length disagrees with the bundle entry", shard)
    reader = MessageReader(BytesSource(raw[pos + 4 :], str(shard)))
    keys: dict[str, tuple[int, str]] = {}
    nodes = (f for f in reader.fields() if f.number == 1 and f.wire_type == LEN)
    for node_id, f in enumerate(nodes):
        node = reader.submessage(f)
        for g in node.fields():
            if g.number == 2 and g.wire_type == LEN:
                attr = node.submessage(g)
                found = {h.number: attr.string(h) for h in attr.fields() if h.wire_type == LEN}
                if found.get(3):
                    keys[str(found[3])] = (node_id, found.get(2) or "")
    return keys


def saved_object_graph(graph_file: Path) -> tuple[dict[int, _SavedVariable], set[int]]:
    """The first meta graph's SavedObjectGraph (MetaGraphDef field 7): its variable nodes (node id ->
    SavedVariable name, dtype, shape, trainable) and the node ids its concrete functions bind."""
    variables: dict[int, _SavedVariable] = {}
    bound: set[int] = set()
    with open_source(graph_file) as raw:
        top = MessageReader(CachedSource(raw))
        meta = next((top.submessage(f) for f in top.fields() if f.number == 2 and f.wire_type == LEN), None)
        graphs = [] if meta is None else [meta.submessage(g) for g in meta.fields() if g.number == 7]
        for graph in graphs[:1]:
            node_id = 0
            for f in graph.fields():
                if f.number == 1 and f.wire_type == LEN:  # SavedObject: variable 7
                    node = graph.submessage(f)
                    for g in node.fields():
                        if g.number == 7 and g.wire_type == LEN:
                            variables[node_id] = _saved_variable(node.submessage(g))
                    node_id += 1
                elif f.number == 2 and f.wire_type == LEN:  # map<string, SavedConcreteFunction>
                    entry = graph.submessage(f)
                    _, value = _map_entry(entry)
                    if value is not None:
                        bound.update(_bound_inputs(entry.submessage(value)))
    return variables, bound


def _saved_variable(reader: MessageReader) -> _SavedVariable:
    """SavedVariable: dtype 1, shape 2, trainable 3, name 6."""
    name, dtype, shape, trainable = "", 0, None, False
    for f in reader.fields():
        if f.number == 1 and f.wire_type == VARINT:
            dtype = f.value
        elif f.number == 2 and f.wire_type == LEN:
            shape = _shape(reader.submessage(f))
        elif f.number == 3 and f.wire_type == VARINT:
            trainable = bool(f.value)
        elif f.number == 6 and f.wire_type == LEN:
            name = reader.string(f) or ""
    return name, dtype, shape, trainable


def _bound_inputs(reader: MessageReader) -> list[int]:
    """SavedConcreteFunction.bound_inputs (field 2, repeated int32, packed or not)."""
    out: list[int] = []
    for f in reader.fields():
        if f.number == 2 and f.wire_type == VARINT:
            out.append(f.value)
        elif f.number == 2 and f.wire_type == LEN:
            out.extend(decode_varints(reader.payload(f)))
    return out


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


def _tensor_info_summary(reader: MessageReader) -> dict[str, Any]:
    """SignatureDef TensorInfo: name 1, dtype 2, tensor_shape 3 (sparse/composite encodings noted)."""
    out: dict[str, Any] = {"name": None, "dtype": None, "shape": None}
    for f in reader.fields():
        if f.number == 1:
            out["name"] = reader.string(f)
        elif f.number == 2 and f.wire_type == VARINT:
            out["dtype"] = tf_dtype_name(f.value)
        elif f.number == 3 and f.wire_type == LEN:
            shape = _shape(reader.submessage(f))
            out["shape"] = None if shape is None else list(shape)
        elif f.number in (4, 5):
            out["encoding"] = "coo_sparse" if f.number == 4 else "composite"
    return out


def _map_entry(reader: MessageReader) -> tuple[str | None, Any]:
    key, value = None, None
    for f in reader.fields():
        if f.number == 1:
            key = reader.string(f)
        elif f.number == 2 and f.wire_type == LEN:
            value = f
    return key, value


def _signature(reader: MessageReader) -> dict[str, Any]:
    sig: dict[str, Any] = {"method_name": None, "inputs": {}, "outputs": {}}
    for f in reader.fields():
        if f.number in (1, 2) and f.wire_type == LEN:
            entry = reader.submessage(f)
            key, value = _map_entry(entry)
            if key is not None and value is not None:
                sig["inputs" if f.number == 1 else "outputs"][key] = _tensor_info_summary(
                    entry.submessage(value)
                )
        elif f.number == 3:
            sig["method_name"] = reader.string(f)
    return sig


def read_saved_model(path: Path) -> dict[str, Any]:
    """Schema version, and per meta graph its tags, TF version and signatures (graph_def is skipped)."""
    out: dict[str, Any] = {"schema_version": None, "meta_graphs": []}
    with open_source(path) as source:
        reader = MessageReader(source)
        for f in reader.fields():
            if f.number == 1 and f.wire_type == VARINT:
                out["schema_version"] = f.value
            elif f.number == 2 and f.wire_type == LEN:
                graph: dict[str, Any] = {"tags": [], "signatures": {}}
                meta_graph = reader.submessage(f)
                for g in meta_graph.fields():
                    if g.number == 1 and g.wire_type == LEN:  # MetaInfoDef
                        info = meta_graph.submessage(g)
                        for h in info.fields():
                            if h.number == 4:
                                graph["tags"].append(info.string(h))
                            elif h.number == 5:
                                graph["tensorflow_version"] = info.string(h)
                            elif h.number == 6:
                                graph["tensorflow_git_version"] = info.string(h)
                    elif g.number == 5 and g.wire_type == LEN:  # map<string, SignatureDef>
                        entry = meta_graph.submessage(g)
                        key, value = _map_entry(entry)
                        if key is not None and value is not None:
                            graph["signatures"][key] = _signature(entry.submessage(value))
                out["meta_graphs"].append(graph)
    return out


# --- GraphDef: TF1 frozen graphs, and the graph inside a SavedModel ----------------------------------
#
# Field numbers from tensorflow/core/framework/*.proto:
#   GraphDef: node 1, library 2, version 3 (deprecated), versions 4, debug_info 5
#   VersionDef: producer 1, min_consumer 2;  FunctionDefLibrary: function 1
#   FunctionDef: signature 1 (OpDef: name 1), node_def 3
#   NodeDef: name 1, op 2, input 3, device 4, attr 5 (map entry: key 1, value 2), debug info 6, type 7
#   AttrValue: list 1, s 2, i 3, f 4, b 5, type 6, shape 7, tensor 8, placeholder 9, func 10
#   TensorProto: dtype 1, tensor_shape 2, version_number 3, tensor_content 4, then one typed field
#     (float_val 5, double_val 6, int_val 7, string_val 8, scomplex_val 9, int64_val 10, bool_val 11,
#     dcomplex_val 12, half_val 13, resource_handle_val 14, variant_val 15, uint32_val 16,
#     uint64_val 17, float8_val 18 — one bytes field, a byte per value)
# The walk records where tensor_content lies and counts typed values from field lengths; it never reads
# weight bytes (packed varints are counted in chunks, not decoded).

_GRAPH_FIELDS = {1: LEN, 2: LEN, 3: VARINT, 4: LEN, 5: LEN}
_NODE_FIELDS = {1: LEN, 2: LEN, 3: LEN, 4: LEN, 5: LEN, 6: LEN, 7: LEN}
# Op and function names: TF's op-name pattern, loosened for function-call ops ("__inference_f_12").
_OP_NAME = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.\-/>]*")
_CONST_OPS = frozenset({"Const", "HostConst"})
_VARIABLE_OPS = frozenset({"Variable", "VariableV2", "VarHandleOp", "AutoReloadVariable"})
_COMMON_OPS = frozenset({"Const", "Placeholder", "PlaceholderWithDefault", "Identity", "NoOp", "MatMul"})
_NOT_OUTPUTS = _CONST_OPS | _VARIABLE_OPS | {"NoOp", "Placeholder", "PlaceholderWithDefault", "Assert"}
_DETECT_NODES = 16  # nodes whose name and op detection checks
MAX_DIMS = 64
MAX_LISTED = 256
# Typed value fields: bytes per value for fixed-width packed ones (complex: two values per element).
_FIXED_WIDTH = {5: 4, 6: 8, 9: 4, 12: 8, 18: 1}
_PER_FIELD = (8, 14, 15)  # string_val, resource_handle_val, variant_val: one field per value
_CONTIGUOUS = {(5, "F32"), (6, "F64"), (9, "C64"), (12, "C128")}  # values laid out as the dtype is
_HIGH_BYTES = bytes(range(0x80, 0x100))


def tf_nbytes(dtype: str | DType, numel: int) -> int | None:
    """Bytes TensorFlow stores for `numel` elements (tensor_content, tensor bundles), None when the size
    is in the data (strings). TF keeps sub-byte types one per byte (ml_dtypes layout), unpacked."""
    try:
        d = lookup(dtype)
        return numel if d.fixed_size and d.bits < 8 and not d.is_quantized else nbytes(d, numel)
    except (UnknownDType, ValueError):
        return None


def _node_head(reader: MessageReader) -> tuple[str, str] | None:
    """(name, op) of a NodeDef whose fields all have NodeDef's wire types, else None."""
    name = op = None
    for f in reader.fields():
        if _NODE_FIELDS.get(f.number) != f.wire_type:
            return None
        if f.number == 1:
            name = reader.string(f, 4096)
        elif f.number == 2:
            op = reader.string(f, 4096)
    if not name or not op or not _OP_NAME.fullmatch(op):
        return None
    return name, op


def detect_graph_def(probe: FileProbe) -> Detection | None:
    """A bare GraphDef: repeated NodeDef messages whose names and op names are text."""
    fields, _clean = probe.proto_fields
    if any(_GRAPH_FIELDS.get(f.number) != f.wire_type for f in fields):
        return None
    nodes = [f for f in fields if f.number == 1]
    if not nodes:
        return None
    reader = MessageReader(probe.source)
    ops: Counter[str] = Counter()
    producer = None
    try:
        for f in nodes[:_DETECT_NODES]:
            head = _node_head(reader.submessage(f))
            if head is None:
                return None
            ops[head[1]] += 1
        for f in fields:
            if f.number == 4:
                producer = _versions(reader.submessage(f)).get("graph_def_version")
    except FormatError:
        return None
    details: dict[str, Any] = {"variant": "frozen-graph", "graph_def_version": producer}
    variables = sorted(op for op in ops if op in _VARIABLE_OPS)
    if variables:
        details["variable_ops"] = variables
    shown = ", ".join(op for op, _ in ops.most_common(6))
    more = "+" if len(nodes) > _DETECT_NODES or len(fields) >= 4096 else ""
    evidence = [f"protobuf GraphDef: {len(nodes)}{more} NodeDef messages (ops {shown})"]
    if producer is not None:
        evidence.append(f"GraphDef version {producer}")
    warnings = []
    if variables:
        warnings.append(
            f"graph has {', '.join(variables)} nodes: not frozen, its weights live in a checkpoint"
        )
    strong = producer is not None or any(op in _COMMON_OPS for op in ops)
    return Detection("tf-savedmodel", STRONG if strong else LIKELY, evidence, details, warnings)


def _versions(reader: MessageReader) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in reader.fields():
        if f.number == 1 and f.wire_type == VARINT:
            out["graph_def_version"] = signed64(f.value)
        elif f.number == 2 and f.wire_type == VARINT:
            out["min_consumer"] = signed64(f.value)
    return out


def _count_varints(source: ByteSource, field: Field, chunk: int = 1 << 16) -> int:
    """Values in a packed varint field: every value ends in one byte below 0x80. Read in chunks, so a
    huge int_val costs a bounded buffer, never a list of Python ints."""
    count, pos = 0, field.offset
    while pos < field.end:
        data = source.read_at(pos, min(chunk, field.end - pos))
        if not data:
            raise FormatError(f"packed field at {field.offset} runs past the end of the file", source.name)
        count += len(data.translate(None, _HIGH_BYTES))
        pos += len(data)
    return count


class _GraphWalk:
    """One pass over a GraphDef: Const tensors, op counts, placeholders, likely outputs."""

    def __init__(self, source: ByteSource, label: str) -> None:
        self.source = source
        self.label = label
        self.tensors: list[TensorInfo] = []
        self.warnings: list[str] = []
        self.op_types: Counter[str] = Counter()
        self.inputs: list[dict[str, Any]] = []
        self.node_count = 0
        self.function_count = 0
        self.filled = 0  # Consts whose shape holds more values than are stored (TF repeats the last)
        self._consumed: set[str] = set()
        self._sinks: list[str] = []  # top-level nodes that could be outputs, in graph order

    def warn(self, message: str) -> None:
        add_warning(self.warnings, message)

    def graph(self, reader: MessageReader) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        for f in reader.fields():
            if f.number == 1 and f.wire_type == LEN:
                self.node_count += 1
                self.node(reader.submessage(f), "", top=True)
            elif f.number == 2 and f.wire_type == LEN:
                self.library(reader.submessage(f))
            elif f.number == 4 and f.wire_type == LEN:
                meta.update(_versions(reader.submessage(f)))
            elif f.number == 3 and f.wire_type == VARINT:  # the deprecated single version number
                meta.setdefault("graph_def_version", signed64(f.value))
        meta["node_count"] = self.node_count
        meta["function_count"] = self.function_count
        meta["op_types"] = dict(self.op_types.most_common())
        meta["inputs"] = self.inputs[:MAX_LISTED]
        meta["output_candidates"] = [n for n in self._sinks if n not in self._consumed][:MAX_LISTED]
        variables = sum(n for op, n in self.op_types.items() if op in _VARIABLE_OPS)
        if variables:
            meta["variable_nodes"] = variables
        if self.filled:
            meta["filled_constants"] = self.filled
        return meta

    def library(self, reader: MessageReader) -> None:
        for f in reader.fields():
            if f.number != 1 or f.wire_type != LEN:
                continue
            self.function_count += 1
            try:
                self.function(reader.submessage(f))
            except FormatError as exc:
                self.warn(f"function at offset {f.offset} could not be read: {exc.message}")

    def function(self, reader: MessageReader) -> None:
        """A FunctionDef: its body's Consts are named <function>/<node>."""
        name, nodes = "", []
        for g in reader.fields():
            if g.number == 1 and g.wire_type == LEN:  # OpDef signature: name 1
                signature = reader.submessage(g)
                name = next((signature.string(h) or "" for h in signature.fields() if h.number == 1), "")
            elif g.number == 3 and g.wire_type == LEN:
                nodes.append(g)
        prefix = f"{name or f'function{self.function_count}'}/"
        for g in nodes:
            self.node(reader.submessage(g), prefix, top=False)

    def node(self, reader: MessageReader, prefix: str, top: bool) -> None:
        """One NodeDef; a malformed node is a warning, the walk goes on with the next."""
        try:
            self._node(reader, prefix, top)
        except FormatError as exc:
            self.warn(f"node at offset {reader.start} could not be read: {exc.message}")

    def _node(self, reader: MessageReader, prefix: str, top: bool) -> None:
        name, op = "", ""
        attrs: dict[str, tuple[MessageReader, Field]] = {}
        for f in reader.fields():
            if f.wire_type != LEN:
                continue
            if f.number == 1:
                name = reader.string(f, 4096) or ""
            elif f.number == 2:
                op = reader.string(f, 4096) or ""
            elif f.number == 3 and top:
                source = reader.string(f, 4096) or ""
                self._consumed.add(source.lstrip("^").split(":", 1)[0])
            elif f.number == 5:
                entry = reader.submessage(f)
                key, value = _map_entry(entry)
                if key in ("value", "dtype", "shape") and value is not None:
                    attrs[key] = (entry.submessage(value), value)
        self.op_types[op] += 1
        if op in _CONST_OPS:
            tensor = _attr_field(attrs.get("value"), 8)
            if tensor is None:
                self.warn(f"Const {prefix + name!r} has no tensor value")
            else:
                self.tensor(tensor, prefix + name)
        elif top and op in ("Placeholder", "PlaceholderWithDefault") and len(self.inputs) < MAX_LISTED:
            dtype = _attr_field(attrs.get("dtype"), 6)
            shape = _attr_field(attrs.get("shape"), 7)
            dims = _shape(shape) if isinstance(shape, MessageReader) else None
            self.inputs.append(
                {
                    "name": name,
                    "dtype": tf_dtype_name(dtype) if isinstance(dtype, int) else None,
                    "shape": None if dims is None else list(dims),
                }
            )
        if top and op not in _NOT_OUTPUTS:
            self._sinks.append(name)

    def tensor(self, reader: MessageReader, name: str) -> None:
        """A TensorProto: where tensor_content lies, or how many typed values it holds."""
        dtype_enum = 0
        shape: tuple[int, ...] | None = ()
        content: Field | None = None
        values: dict[int, list[Field]] = {}
        for f in reader.fields():
            if f.number == 1 and f.wire_type == VARINT:
                dtype_enum = f.value
            elif f.number == 2 and f.wire_type == LEN:
                shape = _shape(reader.submessage(f))
            elif f.number == 4 and f.wire_type == LEN:
                content = f
            elif 5 <= f.number <= 18:
                values.setdefault(f.number, []).append(f)
        dtype = tf_dtype_name(dtype_enum)
        try:
            row = lookup(dtype)
        except UnknownDType:
            self.warn(f"Const {name!r} has unknown DataType {dtype_enum}: skipped")
            return
        if shape is None or len(shape) > MAX_DIMS or any(d < 0 for d in shape):
            self.warn(f"Const {name!r} has an unknown, negative or absurd shape: skipped")
            return
        numel = prod(shape)
        logical = tf_nbytes(row, numel)
        offset: int | None = None
        if content is not None:
            size: int = content.length
            offset = content.offset
            if logical is not None and size != logical:
                self.warn(
                    f"Const {name!r} holds {size} bytes of tensor_content, "
                    f"{dtype}{list(shape)} needs {logical}"
                )
        else:
            count, stored, contiguous = self._values(values, dtype)
            if count > numel:
                self.warn(f"Const {name!r} holds {count} values but its shape {list(shape)} has {numel}")
            elif count < numel:
                self.filled += 1  # TF repeats the last value (zeros when there is none) to fill the shape
            if logical is None:  # strings: what is stored is all there is
                size = stored
            else:
                size = logical
                offset = contiguous if count == numel else None
        self.tensors.append(TensorInfo(name, row.name, shape, size, self.label, offset, "constant"))

    def _values(self, values: dict[int, list[Field]], dtype: str) -> tuple[int, int, int | None]:
        """(value count, payload bytes, offset when the values are one packed run in dtype layout)."""
        count = stored = 0
        offset: int | None = None
        for number, fields in values.items():
            width = _FIXED_WIDTH.get(number)
            n = 0
            for f in fields:
                stored += f.length
                if number in _PER_FIELD or f.wire_type in (I32, I64, VARINT):
                    n += 1
                elif f.wire_type == LEN:
                    n += f.length // width if width else _count_varints(self.source, f)
            count += n // 2 if number in (9, 12) else n
            in_layout = number == 18 or (number, dtype) in _CONTIGUOUS  # float8_val: the FP8 bytes themselves
            if len(fields) == 1 and fields[0].wire_type == LEN and in_layout:
                offset = fields[0].offset
        return count, stored, offset


def _attr_field(attr: tuple[MessageReader, Field] | None, number: int) -> MessageReader | int | None:
    """Field `number` of an AttrValue: a sub-reader for a message, the value for a varint."""
    if attr is None:
        return None
    reader, _ = attr
    for f in reader.fields():
        if f.number == number:
            if f.wire_type == LEN:
                return reader.submessage(f)
            if f.wire_type == VARINT:
                return f.value
    return None


def inspect_frozen_graph(path: Path, ident: Identification) -> ModelInfo:
    """The Const tensors of a bare GraphDef, header-only: tensor_content is located, never read."""
    info = ModelInfo(str(path), "tf-savedmodel")
    with open_source(path) as raw:
        source = CachedSource(raw)
        walk = _GraphWalk(source, str(path))
        meta = walk.graph(MessageReader(source))
    info.files.append({"path": str(path), "size_bytes": source.size})
    info.metadata = {"variant": "frozen-graph", **meta}
    info.tensors = walk.tensors
    info.warnings = walk.warnings
    if meta.get("variable_nodes") and not ident.details.get("variable_ops"):  # past identify's sample
        info.warnings.append(
            f"{meta['variable_nodes']} variable node(s): not frozen, their weights live in a checkpoint"
        )
    return info


def _graph_constants(graph_file: Path, info: ModelInfo) -> None:
    """Const tensors of the first meta graph's GraphDef (SavedModels without variables/)."""
    with open_source(graph_file) as raw:
        source = CachedSource(raw)
        reader = MessageReader(source)
        for f in reader.fields():
            if f.number != 2 or f.wire_type != LEN:  # SavedModel.meta_graphs
                continue
            meta_graph = reader.submessage(f)
            for g in meta_graph.fields():
                if g.number == 2 and g.wire_type == LEN:  # MetaGraphDef.graph_def
                    walk = _GraphWalk(source, graph_file.name)
                    meta = walk.graph(meta_graph.submessage(g))
                    info.tensors.extend(walk.tensors)
                    info.warnings.extend(walk.warnings)
                    info.metadata["graph"] = {
                        k: meta[k] for k in ("node_count", "function_count", "op_types")
                    }
            return  # the first meta graph is the one loaders serve


def graph_op_counts(path: Path) -> Counter[str]:
    """How often each op appears in a bare GraphDef or in every meta graph of a saved_model.pb,
    function bodies included (the scanner looks for ops that touch files or call Python)."""
    counts: Counter[str] = Counter()
    with open_source(path) as raw:
        source = CachedSource(raw)
        top = MessageReader(source)
        fields = list(top.fields())
        if any(f.number == 1 and f.wire_type == LEN for f in fields):  # GraphDef: field 1 is a node
            graphs = [top]
        else:  # SavedModel: meta_graphs (2) → graph_def (2)
            graphs = []
            for f in fields:
                if f.number == 2 and f.wire_type == LEN:
                    meta = top.submessage(f)
                    graphs += [
                        meta.submessage(g) for g in meta.fields() if g.number == 2 and g.wire_type == LEN
                    ]
        for graph in graphs:
            walk = _GraphWalk(source, path.name)
            walk.graph(graph)
            counts.update(walk.op_types)
    return counts


def inspect_savedmodel(path: Path, ident: Identification) -> ModelInfo:
    if ident.details.get("variant") == "frozen-graph" and path.is_file():
        return inspect_frozen_graph(path, ident)
    folder = path if path.is_dir() else path.parent
    info = ModelInfo(str(path), "tf-savedmodel")
    graph_file = folder / ident.details.get("graph_file", "saved_model.pb")
    if not graph_file.is_file() and not path.is_dir():
        graph_file = path
    if graph_file.is_file():
        info.files.append({"path": graph_file.name, "size_bytes": graph_file.stat().st_size})
        if graph_file.suffix == ".pb":
            saved = read_saved_model(graph_file)
            graphs = saved["meta_graphs"]
            info.metadata["saved_model_schema_version"] = saved["schema_version"]
            info.metadata["meta_graph_count"] = len(graphs)
            if graphs:  # the first meta graph is what tf.saved_model.load serves by default
                info.metadata.update(graphs[0])
            if len(graphs) > 1:
                info.metadata["other_meta_graphs"] = graphs[1:]
        else:
            info.warnings.append("saved_model.pbtxt (text format): signatures are not read")
    for extra in ("fingerprint.pb", "keras_metadata.pb"):
        if (folder / extra).is_file():
            info.files.append({"path": extra, "size_bytes": (folder / extra).stat().st_size})
    if (folder / "variables").is_dir():
        _inspect_variables(folder, info, graph_file)
    else:
        info.warnings.append("no variables/ folder: the weights, if any, are the graph's Const nodes")
        if graph_file.is_file() and graph_file.suffix == ".pb":
            _graph_constants(graph_file, info)
    return info


INSPECTS = {"tf-savedmodel": inspect_savedmodel}
