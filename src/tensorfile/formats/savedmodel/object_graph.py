"""Variables stored twice: the checkpoint's TrackableObjectGraph and saved_model.pb's SavedObjectGraph
tell which checkpoint keys are a second copy of a variable stored under another key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import FormatError, TensorfileError
from ...model import (
    ModelInfo,
    add_warning,
)
from ...protowire import LEN, VARINT, MessageReader, decode_varints
from ...source import BytesSource, CachedSource, open_source, read_exact
from .tensor_bundle import shard_name, varint_at
from .tf_types import map_entry, read_shape

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


def variable_copies(
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
        nodes = _checkpoint_nodes(folder / shard_name(object_graph["shard"], num_shards), object_graph)
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
    length, pos = varint_at(raw, 0, "checkpoint object graph", shard.name)
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
                    _, value = map_entry(entry)
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
            shape = read_shape(reader.submessage(f))
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
