"""ONNX: a protobuf ModelProto (no magic number), recognised by its field layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..model import CERTAIN, LIKELY, STRONG, Detection
from ..probe import FileProbe
from ..protowire import LEN, VARINT, Field, MessageReader

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
_GRAPH_INITIALIZER = 5
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 13, 14
MAX_INITIALIZERS_WALKED = 100_000


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
        external = _external_locations(reader.submessage(graph))
    except FormatError as exc:
        external = []
        warnings.append(f"graph could not be walked: {exc.message}")
    if external:
        details["external_data"] = external
        missing = [loc for loc in external if not (probe.path.parent / loc).is_file()]
        escaping = [loc for loc in external if _escapes(loc)]
        evidence.append(f"initializers with external data in {len(external)} file(s)")
        if missing:
            warnings.append(f"external data file(s) missing: {', '.join(missing[:3])}")
        if escaping:
            warnings.append(f"external data path(s) escape the model folder: {', '.join(escaping[:3])}")
    confidence = CERTAIN if opsets else STRONG
    return Detection("onnx", confidence if "ir_version" in details else LIKELY, evidence, details, warnings)


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


def _external_locations(graph: MessageReader) -> list[str]:
    """Files named by initializers stored outside the model (data_location = EXTERNAL)."""
    locations: list[str] = []
    walked = 0
    for f in graph.fields():
        if f.number != _GRAPH_INITIALIZER or f.wire_type != LEN:
            continue
        walked += 1
        if walked > MAX_INITIALIZERS_WALKED:
            break
        tensor = graph.submessage(f)
        location = None
        external = False
        for tf in tensor.fields():
            if tf.number == _TENSOR_DATA_LOCATION and tf.wire_type == VARINT:
                external = tf.value == 1
            elif tf.number == _TENSOR_EXTERNAL_DATA and tf.wire_type == LEN:
                entry = tensor.submessage(tf)
                kv = {e.number: tensor.string(e) for e in entry.fields(4) if e.wire_type == LEN}
                if kv.get(1) == "location":
                    location = kv.get(2)
        if external and location and location not in locations:
            locations.append(location)
    return locations


def _escapes(location: str) -> bool:
    path = Path(location)
    return path.is_absolute() or ".." in path.parts
