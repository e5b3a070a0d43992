"""SavedModel detection: a folder with saved_model.pb(txt), saved_model.pb on its own, or a bare
GraphDef (a TF1 frozen graph) recognised by its first NodeDef messages."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from ...errors import FormatError
from ...model import (
    CERTAIN,
    LIKELY,
    STRONG,
    Detection,
)
from ...probe import DirProbe, FileProbe
from ...protowire import LEN, VARINT, MessageReader
from .graph_def import VARIABLE_OPS, read_versions

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


_GRAPH_FIELDS = {1: LEN, 2: LEN, 3: VARINT, 4: LEN, 5: LEN}
_NODE_FIELDS = {1: LEN, 2: LEN, 3: LEN, 4: LEN, 5: LEN, 6: LEN, 7: LEN}
# Op and function names: TF's op-name pattern, loosened for function-call ops ("__inference_f_12").
_OP_NAME = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.\-/>]*")


_COMMON_OPS = frozenset({"Const", "Placeholder", "PlaceholderWithDefault", "Identity", "NoOp", "MatMul"})


_DETECT_NODES = 16  # nodes whose name and op detection checks


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
                producer = read_versions(reader.submessage(f)).get("graph_def_version")
    except FormatError:
        return None
    details: dict[str, Any] = {"variant": "frozen-graph", "graph_def_version": producer}
    variables = sorted(op for op in ops if op in VARIABLE_OPS)
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
