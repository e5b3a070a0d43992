"""The ONNX inspect entry point: the ModelProto's own fields, its graph and functions walked."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ...errors import FormatError
from ...model import Identification, ModelInfo, add_warning
from ...protowire import LEN, VARINT, signed64
from ...source import CachedSource, open_source
from .external_data import external_problem
from .field_scan import Message
from .walk import MAX_LISTED, OnnxWalk

DOC_CHARS = 500


def _truncate(text: str | None, limit: int = DOC_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + "…"


def inspect_onnx(path: Path, ident: Identification) -> ModelInfo:
    """Initializers and Constant-node tensors (subgraphs and functions too), from the protobuf fields."""
    info = ModelInfo(str(path), "onnx")
    with open_source(path) as raw:
        source = CachedSource(raw)
        model = Message(source, 0, source.size)
        walk = OnnxWalk(path)
        meta: dict[str, Any] = {}
        opsets: dict[str, int] = {}
        props: dict[str, str] = {}
        functions: list[str] = []
        graph_seen = False
        strings = {2: "producer_name", 3: "producer_version", 4: "domain"}
        for number, wire, offset, value in model.fields():
            if number == 1 and wire == VARINT:
                meta["ir_version"] = value
            elif number in strings and wire == LEN:
                meta[strings[number]] = model.text(offset, value)
            elif number == 5 and wire == VARINT:
                meta["model_version"] = signed64(value)
            elif number == 6 and wire == LEN:
                meta["doc_string"] = _truncate(model.text(offset, value, limit=4 * DOC_CHARS))
            elif number == 8 and wire == LEN:
                domain, version = _pair(model.sub(offset, value))
                if isinstance(version, int):
                    opsets[str(domain or "ai.onnx")] = version
            elif number == 14 and wire == LEN and len(props) < MAX_LISTED:
                key, text = _pair(model.sub(offset, value))
                props[str(key)] = _truncate(str(text or "")) or ""
            elif number == 7 and wire == LEN:
                graph_seen = True
                meta.update(walk.graph(model.sub(offset, value), 0, describe=True))
            elif number == 25 and wire == LEN:
                functions.append(_function(walk, model.sub(offset, value)))
        size = source.size
    if not graph_seen:
        raise FormatError("ONNX model has no graph", path)
    meta["opset_import"] = opsets
    if props:
        meta["metadata_props"] = props
    meta["node_count"] = walk.node_count
    meta["op_types"] = dict(walk.op_types.most_common())
    meta["subgraph_count"] = walk.subgraph_count
    if functions:
        meta["functions"] = functions[:MAX_LISTED]
    roles = Counter(t.role for t in walk.tensors)
    meta["initializer_count"] = roles["weight"]
    meta["constant_count"] = roles["constant"]
    info.metadata = meta
    info.tensors = walk.tensors
    info.warnings = walk.warnings
    info.files.append({"path": str(path), "size_bytes": size})
    known = set(ident.details.get("external_data", []))
    for location, (ext_size, problem) in walk.external_files.items():
        if problem is None:
            info.files.append({"path": location, "size_bytes": ext_size or 0})
            continue
        info.files.append({"path": location, "size_bytes": 0, "problem": problem})
        if location not in known:  # the detector named the files of top-level initializers only
            add_warning(info.warnings, external_problem(location, problem, walk.external_tensors[location]))
    return info


def _pair(msg: Message) -> tuple[str | int | None, str | int | None]:
    """Fields 1 and 2 of a small message: OperatorSetIdProto (domain, version) or a key/value entry."""
    found: dict[int, str | int] = {}
    for number, wire, offset, value in msg.fields():
        if number in (1, 2):
            found[number] = msg.text(offset, value, limit=4 * DOC_CHARS) if wire == LEN else value
    return found.get(1), found.get(2)


def _function(walk: OnnxWalk, msg: Message) -> str:
    """A FunctionProto's name; Constant nodes in its body are recorded as `<function>/<output>`."""
    name = ""
    nodes: list[Message] = []
    for number, wire, offset, length in msg.fields():
        if number == 1 and wire == LEN:
            name = msg.text(offset, length)
        elif number == 7 and wire == LEN:
            nodes.append(msg.sub(offset, length))
    for node in nodes:
        walk.node(node, 0, prefix=f"{name}/")
    return name


INSPECTS = {"onnx": inspect_onnx}
