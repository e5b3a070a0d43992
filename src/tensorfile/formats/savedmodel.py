"""TensorFlow SavedModel: a folder with saved_model.pb (a SavedModel protobuf) and variables/."""

from __future__ import annotations

from typing import Any

from ..model import CERTAIN, STRONG, Detection
from ..probe import DirProbe, FileProbe
from ..protowire import LEN, VARINT

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
