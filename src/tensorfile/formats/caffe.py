"""Caffe: a protobuf NetParameter (.caffemodel), often with a text .prototxt beside it."""

from __future__ import annotations

import re
from typing import Any

from ..errors import FormatError
from ..model import CERTAIN, LIKELY, STRONG, Detection
from ..probe import FileProbe
from ..protowire import LEN, VARINT, MessageReader

# NetParameter field number -> wire type (caffe.proto).
_NET_FIELDS = {1: LEN, 2: LEN, 3: LEN, 4: VARINT, 5: VARINT, 6: LEN, 7: VARINT, 8: LEN, 100: LEN}
_LAYER, _V1_LAYERS = 100, 2


def detect_file(probe: FileProbe) -> Detection | None:
    fields, clean = probe.proto_fields
    if not fields or not clean:
        return None
    if any(_NET_FIELDS.get(f.number) != f.wire_type for f in fields):
        return None
    layers = [f for f in fields if f.number == _LAYER]
    v1_layers = [f for f in fields if f.number == _V1_LAYERS]
    if not layers and not v1_layers:
        return None
    reader = MessageReader(probe.source)
    details: dict[str, Any] = {}
    name_field = next((f for f in fields if f.number == 1), None)
    if name_field is not None:
        name = reader.string(name_field)
        if name is None:
            return None
        details["net_name"] = name
    try:
        first = _first_layer(reader, layers[0] if layers else v1_layers[0], v1=not layers)
    except FormatError:
        return None
    if first is None:
        return None
    details["layer_count"] = len(layers) or len(v1_layers)
    details["layer_layout"] = "LayerParameter (field 100)" if layers else "V1LayerParameter (field 2, legacy)"
    details["first_layer"] = first
    evidence = [
        f"protobuf NetParameter with {details['layer_count']} layers "
        f"({'layer' if layers else 'legacy layers'} field)",
        f"first layer {first.get('name')!r} of type {first.get('type')!r}",
    ]
    companion = _companion(probe)
    if companion:
        details["prototxt"] = companion
        evidence.append(f"companion network definition {companion}")
    confidence = CERTAIN if first.get("name") and first.get("type") else STRONG
    return Detection(
        "caffe", confidence if details.get("net_name") is not None else LIKELY, evidence, details
    )


_PROTOTXT = re.compile(
    rb'^\s*(?:#[^\n]*\n\s*)*(?:name\s*:\s*"[^"]*"\s*)?(?:input[^\n]*\n\s*)*'
    rb"(?:layers?\s*\{|input_shape|input_dim|input\s*:)"
)


def detect_prototxt(probe: FileProbe) -> Detection | None:
    """A text network definition (deploy.prototxt / train_val.prototxt), the weights-less half."""
    head = probe.head[:16384]
    if not _PROTOTXT.match(head) or not re.search(rb'\btype\s*:\s*"?\w+', head):
        return None
    layers = len(re.findall(rb"\blayers?\s*\{", probe.head))
    weights = sorted(p.name for p in probe.path.parent.glob("*.caffemodel"))
    details: dict[str, Any] = {"part": "network-definition", "layers_in_head": layers}
    warnings = []
    if weights:
        details["weights_file"] = weights[0]
    else:
        warnings.append("text network definition only: the weights are in a .caffemodel")
    return Detection(
        "caffe", STRONG, ["protobuf text format NetParameter (name/layer { type: … })"], details, warnings
    )


def _first_layer(reader: MessageReader, field: Any, v1: bool) -> dict[str, Any] | None:
    layer = reader.submessage(field)
    info: dict[str, Any] = {}
    # LayerParameter: 1 name, 2 type (string). V1LayerParameter: 4 name, 5 type (enum).
    name_no, type_no = (4, 5) if v1 else (1, 2)
    for f in layer.fields(64):
        if f.number == name_no and f.wire_type == LEN:
            info["name"] = layer.string(f)
        elif f.number == type_no:
            info["type"] = f.value if v1 and f.wire_type == VARINT else layer.string(f)
    if info.get("name") is None:
        return None
    return info


def _companion(probe: FileProbe) -> str | None:
    candidates = [probe.path.with_suffix(".prototxt").name, "deploy.prototxt"]
    candidates += sorted(p.name for p in probe.path.parent.glob("*.prototxt"))
    for name in candidates:
        if probe.sibling(name):
            return name
    return None
