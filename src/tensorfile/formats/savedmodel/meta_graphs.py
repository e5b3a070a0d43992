"""saved_model.pb's meta graphs: schema version, tags, TensorFlow versions and signatures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...protowire import LEN, VARINT, MessageReader
from ...source import open_source
from .tf_types import map_entry, read_shape, tf_dtype_name


def _tensor_info_summary(reader: MessageReader) -> dict[str, Any]:
    """SignatureDef TensorInfo: name 1, dtype 2, tensor_shape 3 (sparse/composite encodings noted)."""
    out: dict[str, Any] = {"name": None, "dtype": None, "shape": None}
    for f in reader.fields():
        if f.number == 1:
            out["name"] = reader.string(f)
        elif f.number == 2 and f.wire_type == VARINT:
            out["dtype"] = tf_dtype_name(f.value)
        elif f.number == 3 and f.wire_type == LEN:
            shape = read_shape(reader.submessage(f))
            out["shape"] = None if shape is None else list(shape)
        elif f.number in (4, 5):
            out["encoding"] = "coo_sparse" if f.number == 4 else "composite"
    return out


def _signature(reader: MessageReader) -> dict[str, Any]:
    sig: dict[str, Any] = {"method_name": None, "inputs": {}, "outputs": {}}
    for f in reader.fields():
        if f.number in (1, 2) and f.wire_type == LEN:
            entry = reader.submessage(f)
            key, value = map_entry(entry)
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
                        key, value = map_entry(entry)
                        if key is not None and value is not None:
                            graph["signatures"][key] = _signature(entry.submessage(value))
                out["meta_graphs"].append(graph)
    return out
