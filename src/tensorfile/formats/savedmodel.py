"""TensorFlow SavedModel: a folder with saved_model.pb (a SavedModel protobuf) and variables/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..dtypes import UnknownDType, lookup, nbytes
from ..errors import FormatError
from ..model import CERTAIN, STRONG, Detection, Identification, ModelInfo, TensorInfo
from ..probe import DirProbe, FileProbe
from ..protowire import LEN, VARINT, MessageReader, decode_varint, signed64
from ..source import BytesSource, FileSource, read_exact

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
    """saved_model.pb given on its own: a SavedModel protobuf (schema version + meta graphs)."""
    fields, clean = probe.proto_fields
    if not fields or not clean or any(_SAVED_MODEL_FIELDS.get(f.number) != f.wire_type for f in fields):
        return None
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

# TensorFlow's DataType enum (types.proto); *_REF values (100 + n) name the same types.
_TF_DTYPES = {
    1: "DT_FLOAT", 2: "DT_DOUBLE", 3: "DT_INT32", 4: "DT_UINT8", 5: "DT_INT16", 6: "DT_INT8",
    7: "DT_STRING", 8: "DT_COMPLEX64", 9: "DT_INT64", 10: "DT_BOOL", 11: "DT_QINT8", 12: "DT_QUINT8",
    13: "DT_QINT32", 14: "DT_BFLOAT16", 15: "DT_QINT16", 16: "DT_QUINT16", 17: "DT_UINT16",
    18: "DT_COMPLEX128", 19: "DT_HALF", 20: "DT_RESOURCE", 21: "DT_VARIANT", 22: "DT_UINT32",
    23: "DT_UINT64", 24: "DT_FLOAT8_E5M2", 25: "DT_FLOAT8_E4M3FN", 26: "DT_FLOAT8_E4M3FNUZ",
    27: "DT_FLOAT8_E4M3B11FNUZ", 28: "DT_FLOAT8_E5M2FNUZ", 29: "DT_INT4", 30: "DT_UINT4",
    31: "DT_INT2", 32: "DT_UINT2",
}  # fmt: skip
# Quantized TF types have plain storage: report them by their storage type.
_TF_STORAGE = {
    "DT_QINT8": "I8",
    "DT_QUINT8": "U8",
    "DT_QINT16": "I16",
    "DT_QUINT16": "U16",
    "DT_QINT32": "I32",
}


def tf_dtype_name(enum: int) -> str:
    """Canonical dtype for a TF DataType number; non-numeric types keep a readable name (STRING…)."""
    tf_name = _TF_DTYPES.get(enum % 100 if enum > 100 else enum)
    if tf_name is None:
        return f"DT_{enum}"
    if tf_name in _TF_STORAGE:
        return _TF_STORAGE[tf_name]
    try:
        return lookup(tf_name).name
    except UnknownDType:
        return tf_name[3:]  # STRING, RESOURCE, VARIANT, FLOAT8_E4M3B11FNUZ…: not in the dtypes table


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


def _read_block(source: FileSource, offset: int, size: int, what: str) -> bytes:
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
    with FileSource(path) as source:
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
    entry: dict[str, Any] = {"dtype": 0, "shape": (), "shard": 0, "offset": 0, "size": 0, "slices": 0}
    for f in reader.fields():
        if f.number == 1 and f.wire_type == VARINT:
            entry["dtype"] = f.value
        elif f.number == 2 and f.wire_type == LEN:
            entry["shape"] = _shape(reader.submessage(f))
        elif f.number in (3, 4, 5) and f.wire_type == VARINT:
            entry[{3: "shard", 4: "offset", 5: "size"}[f.number]] = f.value
        elif f.number == 7:
            entry["slices"] += 1
    return entry


def _role(key: str) -> str:
    if ".OPTIMIZER_SLOT" in key or key.startswith("optimizer/"):
        return "optimizer"
    if key.startswith("save_counter/") or "/metrics/" in f"/{key}":
        return "buffer"  # checkpoint bookkeeping and metric accumulators, not model weights
    return "weight"


def _inspect_variables(folder: Path, info: ModelInfo) -> None:
    index_path = folder / "variables" / "variables.index"
    if not index_path.is_file():
        info.warnings.append("variables/variables.index is missing: the weights cannot be listed")
        return
    info.files.append({"path": "variables/variables.index", "size_bytes": index_path.stat().st_size})
    num_shards = 1
    shard_sizes: dict[int, int | None] = {}
    sliced = 0
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
        key = raw_key.decode("utf-8", "replace")
        entry = _bundle_entry(value, str(index_path))
        if key == _OBJECT_GRAPH_KEY:
            # A serialized TrackableObjectGraph (a DT_STRING blob describing the object tree), not a variable.
            info.metadata["object_graph_bytes"] = entry["size"]
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
            if shard not in shard_sizes:
                data = folder / "variables" / f"variables.data-{shard:05d}-of-{num_shards:05d}"
                shard_sizes[shard] = data.stat().st_size if data.is_file() else None
                if shard_sizes[shard] is None:
                    info.warnings.append(f"data shard {data.name} is missing")
            tensor.file = f"variables/variables.data-{shard:05d}-of-{num_shards:05d}"
            tensor.offset = entry["offset"]
            size_on_disk = shard_sizes[shard]
            if size_on_disk is not None and entry["offset"] + entry["size"] > size_on_disk:
                info.warnings.append(f"variable {key!r} data runs past the end of {tensor.file}")
            try:
                expected = nbytes(dtype, tensor.numel)
            except (UnknownDType, ValueError):
                expected = None  # strings and other variable-size types
            if expected is not None and expected != entry["size"]:
                info.warnings.append(
                    f"variable {key!r} stores {entry['size']} bytes, {dtype}{list(shape)} needs {expected}"
                )
        info.tensors.append(tensor)
    for shard, size in sorted(shard_sizes.items()):
        if size is not None:
            name = f"variables/variables.data-{shard:05d}-of-{num_shards:05d}"
            info.files.append({"path": name, "size_bytes": size})
    info.metadata["num_shards"] = num_shards
    if sliced:
        info.warnings.append(f"{sliced} partitioned variable(s): offsets are per slice and not shown")
    optimizer = [t for t in info.tensors if t.role == "optimizer"]
    if optimizer:
        info.checkpoint = {
            "optimizer_tensor_count": len(optimizer),
            "optimizer_parameter_count": sum(t.numel for t in optimizer),
        }


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
    with FileSource(path) as source:
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


def inspect_savedmodel(path: Path, ident: Identification) -> ModelInfo:
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
        _inspect_variables(folder, info)
    else:
        info.warnings.append(
            "no variables/ folder: any weights are constants inside the graph, which are not listed"
        )
    return info


INSPECTS = {"tf-savedmodel": inspect_savedmodel}
