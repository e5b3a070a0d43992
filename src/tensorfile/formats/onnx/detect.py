"""ONNX detection: a protobuf ModelProto (no magic number), recognised by its field layout, and a
folder holding one model whose initializers live in data files beside it."""

from __future__ import annotations

from typing import Any

from ...errors import FormatError, TensorfileError
from ...model import CERTAIN, LIKELY, STRONG, Detection, add_warning
from ...probe import DirProbe, FileProbe
from ...protowire import LEN, VARINT, Field, MessageReader
from .external_data import data_file, external_locations, external_problem
from .field_scan import Message

# ModelProto field number -> wire type.
_MODEL_FIELDS = {
    1: VARINT,
    2: LEN,
    3: LEN,
    4: LEN,
    5: VARINT,
    6: LEN,
    7: LEN,
    8: LEN,
    14: LEN,
    20: LEN,
    25: LEN,
}


def detect_file(probe: FileProbe) -> Detection | None:
    fields, clean = probe.proto_fields
    if not fields or not clean:
        return None
    numbers = {f.number for f in fields}
    if 7 not in numbers or any(_MODEL_FIELDS.get(f.number) != f.wire_type for f in fields):
        return None
    reader = MessageReader(probe.source)
    details: dict[str, Any] = {}
    evidence: list[str] = []
    for f in fields:
        if f.number == 1:
            details["ir_version"] = f.value
        elif f.number in (2, 3, 4):
            text = reader.string(f)
            if text is None:
                return None
            details[{2: "producer_name", 3: "producer_version", 4: "domain"}[f.number]] = text
    if not 1 <= details.get("ir_version", 0) <= 64:
        return None
    opsets = _opsets(reader, [f for f in fields if f.number == 8])
    if opsets is None:
        return None
    details["opset_import"] = opsets
    evidence.append(f"protobuf ModelProto: ir_version {details['ir_version']}, graph field present")
    if opsets:
        evidence.append("opset_import " + ", ".join(f"{d or 'ai.onnx'}:{v}" for d, v in opsets.items()))
    if "producer_name" in details:
        evidence.append(f"producer {details['producer_name']} {details.get('producer_version', '')}".rstrip())
    warnings: list[str] = []
    graph = next(f for f in fields if f.number == 7)
    try:
        external = external_locations(Message(probe.source, graph.offset, graph.end))
    except FormatError as exc:
        external = {}
        warnings.append(f"graph could not be walked: {exc.message}")
    if external:
        details["external_data"] = list(external)
        evidence.append(f"initializers with external data in {len(external)} file(s)")
        for location, names in external.items():
            problem = data_file(probe.path.parent, location)[1]
            if problem:
                add_warning(warnings, external_problem(location, problem, names))
    confidence = CERTAIN if opsets else STRONG
    return Detection("onnx", confidence if "ir_version" in details else LIKELY, evidence, details, warnings)


_MAX_FOLDER_MODELS = 16


def detect_dir(probe: DirProbe) -> Detection | None:
    """A folder holding one ONNX model whose initializers live in data files beside it (model.onnx +
    model.onnx.data, or one file per tensor). The model is found by content among the .onnx files."""
    names = probe.matching(".onnx")
    if not names or len(names) > _MAX_FOLDER_MODELS:
        return None
    models: list[tuple[str, Detection]] = []
    for name in names:
        try:
            file_probe = FileProbe(probe.path / name)
        except (TensorfileError, OSError):
            continue
        try:
            found = detect_file(file_probe)
        except (TensorfileError, OSError, ValueError):
            found = None
        finally:
            file_probe.close()
        if found is not None:
            models.append((name, found))
    if len(models) != 1 or not models[0][1].details.get("external_data"):
        return None  # several models (use -r), or one without data files (a plain model folder)
    name, model = models[0]
    files = model.details["external_data"]
    shown = ", ".join(files[:3]) + ("…" if len(files) > 3 else "")
    return Detection(
        "onnx",
        model.confidence,
        [
            f"{name}: an ONNX model whose initializers live in {len(files)} data file(s): {shown}",
            *model.evidence,
        ],
        {"weights_files": [name], **model.details},
        model.warnings,
    )


def _opsets(reader: MessageReader, fields: list[Field]) -> dict[str, int] | None:
    opsets: dict[str, int] = {}
    for f in fields:
        domain, version = "", None
        for sub in reader.submessage(f).fields(8):
            if sub.number == 1 and sub.wire_type == LEN:
                domain = reader.string(sub) or ""
            elif sub.number == 2 and sub.wire_type == VARINT:
                version = sub.value
            else:
                return None
        if version is None:
            return None
        opsets[domain] = version
    return opsets
