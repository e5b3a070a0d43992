"""Caffe: a protobuf NetParameter (.caffemodel), often with a text .prototxt beside it."""

from __future__ import annotations

import re
from collections import Counter
from math import prod
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..model import CERTAIN, LIKELY, STRONG, Detection, Identification, ModelInfo, TensorInfo, add_warning
from ..probe import FileProbe
from ..protowire import LEN, VARINT, Field, MessageReader, decode_varint
from ..source import CachedSource, open_source, read_exact

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


# --- inspect --------------------------------------------------------------------------------------

# V1LayerParameter.LayerType (caffe.proto), for files in the legacy `layers` layout.
V1_LAYER_TYPES: dict[int, str] = {
    0: "NONE",
    1: "ACCURACY",
    2: "BNLL",
    3: "CONCAT",
    4: "CONVOLUTION",
    5: "DATA",
    6: "DROPOUT",
    7: "EUCLIDEAN_LOSS",
    8: "FLATTEN",
    9: "HDF5_DATA",
    10: "HDF5_OUTPUT",
    11: "IM2COL",
    12: "IMAGE_DATA",
    13: "INFOGAIN_LOSS",
    14: "INNER_PRODUCT",
    15: "LRN",
    16: "MULTINOMIAL_LOGISTIC_LOSS",
    17: "POOLING",
    18: "RELU",
    19: "SIGMOID",
    20: "SOFTMAX",
    21: "SOFTMAX_LOSS",
    22: "SPLIT",
    23: "TANH",
    24: "WINDOW_DATA",
    25: "ELTWISE",
    26: "POWER",
    27: "SIGMOID_CROSS_ENTROPY_LOSS",
    28: "HINGE_LOSS",
    29: "MEMORY_DATA",
    30: "ARGMAX",
    31: "THRESHOLD",
    32: "DUMMY_DATA",
    33: "SLICE",
    34: "MVN",
    35: "ABSVAL",
    36: "SILENCE",
    37: "CONTRASTIVE_LOSS",
    38: "EXP",
    39: "DECONVOLUTION",
}

# Tensor names: `<layer>.<blob name>` where Caffe's layer implementation gives its blobs a meaning,
# `<layer>.<index>` otherwise. BatchNorm's blobs are running statistics, so their role is "buffer".
_WEIGHT_BIAS = ("weight", "bias")
BLOB_NAMES: dict[str, tuple[str, ...]] = {
    "Convolution": _WEIGHT_BIAS,
    "Deconvolution": _WEIGHT_BIAS,
    "InnerProduct": _WEIGHT_BIAS,
    "Embed": _WEIGHT_BIAS,
    "Scale": _WEIGHT_BIAS,
    "Bias": ("bias",),
    "PReLU": ("weight",),
    "BatchNorm": ("mean", "variance", "scale_factor"),
    "CONVOLUTION": _WEIGHT_BIAS,
    "DECONVOLUTION": _WEIGHT_BIAS,
    "INNER_PRODUCT": _WEIGHT_BIAS,
}
_BUFFER_LAYERS = {"BatchNorm"}
MAX_LISTED = 1024
MAX_DIMS = 64
MAX_PROTOTXT = 16 * 1024 * 1024


def _signed(value: int) -> int:
    """A varint as a signed integer: negative int32/int64 values travel as 10-byte two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _dims(shape: MessageReader) -> list[int]:
    """BlobShape.dim (field 1), packed or not."""
    dims: list[int] = []
    for f in shape.fields(MAX_DIMS + 1):
        if f.number != 1:
            continue
        if f.wire_type == VARINT:
            dims.append(_signed(f.value))
        elif f.wire_type == LEN:
            data = shape.payload(f, limit=10 * MAX_DIMS + 10)
            pos = 0
            while pos < len(data):
                value, pos = decode_varint(data, pos)
                dims.append(_signed(value))
    if len(dims) > MAX_DIMS:
        raise FormatError(f"blob shape has more than {MAX_DIMS} dimensions", shape.source.name)
    return dims


class _CaffeWalk:
    def __init__(self, label: str) -> None:
        self.label = label
        self.tensors: list[TensorInfo] = []
        self.warnings: list[str] = []
        self.layers: list[dict[str, Any]] = []  # the first MAX_LISTED, for the report
        self.layer_types: Counter[str] = Counter()
        self.layer_count = 0
        self.inputs: list[dict[str, Any]] = []

    def warn(self, message: str) -> None:
        add_warning(self.warnings, message)

    def layer(self, msg: MessageReader, v1: bool) -> None:
        # LayerParameter: 1 name, 2 type, 4 top, 7 blobs, 143 input_param.
        # V1LayerParameter: 4 name, 5 type (enum), 3 top, 6 blobs, 1 an embedded V0 layer.
        name_no, type_no, blob_no, top_no = (4, 5, 6, 3) if v1 else (1, 2, 7, 4)
        name, kind = "", ""
        blobs: list[Field] = []
        tops: list[str] = []
        input_shapes: list[list[int]] = []
        for f in msg.fields():
            if f.number == name_no and f.wire_type == LEN:
                name = msg.string(f) or ""
            elif f.number == type_no:
                if v1 and f.wire_type == VARINT:
                    kind = V1_LAYER_TYPES.get(f.value, f"TYPE_{f.value}")
                elif not v1 and f.wire_type == LEN:
                    kind = msg.string(f) or ""
            elif f.number == blob_no and f.wire_type == LEN:
                blobs.append(f)
            elif f.number == top_no and f.wire_type == LEN:
                tops.append(msg.string(f) or "")
            elif not v1 and f.number == 143 and f.wire_type == LEN:
                param = msg.submessage(f)
                input_shapes += [_dims(param.submessage(s)) for s in param.fields() if s.number == 1]
            elif v1 and f.number == 1 and f.wire_type == LEN:
                # V0LayerParameter (pre-2014 files): 1 name, 2 type (string), 50 blobs.
                old = msg.submessage(f)
                for o in old.fields():
                    if o.number == 1 and o.wire_type == LEN and not name:
                        name = old.string(o) or ""
                    elif o.number == 2 and o.wire_type == LEN and not kind:
                        kind = old.string(o) or ""
                    elif o.number == 50 and o.wire_type == LEN:
                        blobs.append(o)
        name = name or f"layer{self.layer_count}"
        self.layer_count += 1
        self.layer_types[kind] += 1
        if len(self.layers) < MAX_LISTED:
            self.layers.append({"name": name, "type": kind, "blobs": len(blobs)})
        for i, shape in enumerate(input_shapes):
            self.inputs.append({"name": tops[i] if i < len(tops) else name, "shape": shape})
        names = BLOB_NAMES.get(kind, ())
        role = "buffer" if kind in _BUFFER_LAYERS else "weight"
        for i, f in enumerate(blobs):
            label = f"{name}.{names[i] if i < len(names) else i}"
            self.blob(msg.submessage(f), label, role)

    def blob(self, msg: MessageReader, name: str, role: str) -> None:
        shape: list[int] | None = None
        legacy: dict[int, int] = {}
        data: dict[int, list[Field]] = {5: [], 8: []}
        for f in msg.fields():
            if f.number == 7 and f.wire_type == LEN:
                shape = _dims(msg.submessage(f))
            elif f.number in (1, 2, 3, 4) and f.wire_type == VARINT:
                legacy[f.number] = _signed(f.value)
            elif f.number in (5, 8):
                data[f.number].append(f)
        # data (5) is packed float, double_data (8) packed double; unpacked fields are legal protobuf.
        number, width, dtype = (8, 8, "F64") if data[8] and not data[5] else (5, 4, "F32")
        fields = data[number]
        count = sum(f.length // width if f.wire_type == LEN else 1 for f in fields)
        contiguous = len(fields) == 1 and fields[0].wire_type == LEN
        if data[5] and data[8]:
            self.warn(f"blob {name!r} holds both float and double data; the float data is used")
        if shape is None:
            shape = [legacy.get(n, 0) for n in (1, 2, 3, 4)] if legacy else [count]
        if any(d < 0 for d in shape):
            self.warn(f"blob {name!r} has a negative dimension {shape}: skipped")
            return
        numel = prod(shape)
        if not fields:
            self.warn(f"blob {name!r} declares {numel} elements but stores no data")
        elif count != numel:
            self.warn(f"blob {name!r} stores {count} values but its shape {shape} needs {numel}")
        offset = fields[0].offset if contiguous else None
        self.tensors.append(TensorInfo(name, dtype, tuple(shape), count * width, self.label, offset, role))


def inspect_caffe(path: Path, ident: Identification) -> ModelInfo:
    """Layer blobs of a .caffemodel; a .prototxt alone gives the layer list and no tensors."""
    if ident.details.get("part") == "network-definition":
        return inspect_prototxt(path, ident)
    info = ModelInfo(str(path), "caffe")
    with open_source(path) as raw:
        source = CachedSource(raw)
        net = MessageReader(source)
        walk = _CaffeWalk(str(path))
        meta: dict[str, Any] = {}
        legacy_inputs: list[str] = []
        legacy_dims: list[int] = []
        legacy_shapes: list[list[int]] = []
        layouts: set[str] = set()
        for f in net.fields():
            if f.number == 1 and f.wire_type == LEN:
                meta["net_name"] = net.string(f)
            elif f.number == 3 and f.wire_type == LEN:
                legacy_inputs.append(net.string(f) or "")
            elif f.number == 4 and f.wire_type == VARINT:
                legacy_dims.append(_signed(f.value))
            elif f.number == 4 and f.wire_type == LEN:
                data = net.payload(f, limit=1 << 16)
                pos = 0
                while pos < len(data):
                    value, pos = decode_varint(data, pos)
                    legacy_dims.append(_signed(value))
            elif f.number == 8 and f.wire_type == LEN:
                legacy_shapes.append(_dims(net.submessage(f)))
            elif f.number in (_LAYER, _V1_LAYERS) and f.wire_type == LEN:
                layouts.add("layer" if f.number == _LAYER else "layers (V1)")
                walk.layer(net.submessage(f), v1=f.number == _V1_LAYERS)
        size = source.size
    # Legacy net inputs: shapes from input_shape, or four input_dim values per input.
    for i, input_name in enumerate(legacy_inputs):
        shape = legacy_shapes[i] if i < len(legacy_shapes) else legacy_dims[4 * i : 4 * i + 4]
        walk.inputs.insert(i, {"name": input_name, "shape": shape})
    meta["layout"] = " + ".join(sorted(layouts)) or None
    meta["layer_count"] = walk.layer_count
    meta["layer_types"] = dict(walk.layer_types.most_common())
    meta["layers"] = walk.layers
    meta["inputs"] = walk.inputs
    if ident.details.get("prototxt"):
        meta["prototxt"] = ident.details["prototxt"]
    info.metadata = {k: v for k, v in meta.items() if v is not None}
    info.tensors = walk.tensors
    info.warnings = walk.warnings
    info.files.append({"path": str(path), "size_bytes": size})
    return info


# --- prototxt (protobuf text format) --------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s+|\#[^\n]*|("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|([{}\[\]<>:;,])|([^\s{}\[\]<>:;,"'\#]+)"""
)
TextMessage = list[tuple[str, Any]]  # (field name, scalar or nested TextMessage), in file order


def parse_text_proto(text: str, max_depth: int = 64) -> TextMessage:
    """A protobuf text-format message as nested (key, value) lists; iterative, depth-limited."""
    tokens: list[tuple[str, str]] = []  # (kind, text): kind "s" string, "p" punctuation, "w" word
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise FormatError(f"prototxt: unexpected character {text[pos]!r} at offset {pos}")
        pos = match.end()
        if match.group(1) is not None:
            tokens.append(("s", match.group(1)))
        elif match.group(2) is not None:
            tokens.append(("p", match.group(2)))
        elif match.group(3) is not None:
            tokens.append(("w", match.group(3)))
    root: TextMessage = []
    stack: list[TextMessage] = [root]
    i, n = 0, len(tokens)
    while i < n:
        kind, tok = tokens[i]
        if kind == "p" and tok in "}>":
            if len(stack) == 1:
                raise FormatError(f"prototxt: unbalanced {tok!r}")
            stack.pop()
            i += 1
            continue
        if kind == "p" and tok in ";,":
            i += 1
            continue
        if kind != "w":
            raise FormatError(f"prototxt: expected a field name, found {tok!r}")
        key = tok
        i += 1
        if i < n and tokens[i] == ("p", ":"):
            i += 1
        if i >= n:
            raise FormatError(f"prototxt: field {key!r} has no value")
        kind, tok = tokens[i]
        if kind == "p" and tok in "{<":
            if len(stack) > max_depth:
                raise FormatError(f"prototxt: messages nested deeper than {max_depth} levels")
            child: TextMessage = []
            stack[-1].append((key, child))
            stack.append(child)
            i += 1
        elif kind == "p" and tok == "[":  # short form for repeated scalars: dim: [1, 3, 224, 224]
            i += 1
            while i < n and tokens[i] != ("p", "]"):
                if tokens[i][0] != "p":
                    stack[-1].append((key, _scalar(*tokens[i])))
                i += 1
            i += 1
        elif kind == "p":
            raise FormatError(f"prototxt: unexpected {tok!r} after field {key!r}")
        else:
            stack[-1].append((key, _scalar(kind, tok)))
            i += 1
    if len(stack) != 1:
        raise FormatError("prototxt: unterminated message (missing '}')")
    return root


def _scalar(kind: str, tok: str) -> Any:
    if kind == "s":
        return re.sub(r"\\(.)", r"\1", tok[1:-1])
    for convert in (int, float):
        try:
            return convert(tok)
        except ValueError:
            pass
    return tok  # an enum name or a bare identifier


def _values(msg: TextMessage, key: str) -> list[Any]:
    return [v for k, v in msg if k == key]


def _first(msg: TextMessage, key: str) -> Any:
    found = _values(msg, key)
    return found[0] if found else None


def _text_dims(values: list[Any], path: Path) -> list[int]:
    bad = [v for v in values if not isinstance(v, int)]
    if bad:
        raise FormatError(f"prototxt: dimension {bad[0]!r} is not an integer", path)
    return values


def inspect_prototxt(path: Path, ident: Identification) -> ModelInfo:
    """A network definition alone: layers and inputs from the text, no tensors (weights are elsewhere)."""
    with open_source(path) as source:
        if source.size > MAX_PROTOTXT:
            raise FormatError(f"prototxt is {source.size} bytes, over the {MAX_PROTOTXT} byte limit", path)
        text = read_exact(source, 0, source.size, "prototxt").decode("utf-8", "replace")
        size = source.size
    try:
        net = parse_text_proto(text)
    except FormatError as exc:
        raise FormatError(exc.message, path) from None
    layers: list[dict[str, Any]] = []
    types: Counter[str] = Counter()
    inputs: list[dict[str, Any]] = []
    for key in ("layer", "layers"):
        for layer in _values(net, key):
            if not isinstance(layer, list):
                continue
            entry = {"name": str(_first(layer, "name") or ""), "type": str(_first(layer, "type") or "")}
            types[entry["type"]] += 1
            if len(layers) < MAX_LISTED:
                layers.append(entry)
            param = _first(layer, "input_param")
            if isinstance(param, list):
                tops = [str(t) for t in _values(layer, "top")]
                for i, shape in enumerate(s for s in _values(param, "shape") if isinstance(s, list)):
                    name = tops[i] if i < len(tops) else entry["name"]
                    inputs.append({"name": name, "shape": _text_dims(_values(shape, "dim"), path)})
    legacy_dims = _text_dims(_values(net, "input_dim"), path)
    legacy_shapes = [s for s in _values(net, "input_shape") if isinstance(s, list)]
    for i, name in enumerate(_values(net, "input")):
        shape = (
            _text_dims(_values(legacy_shapes[i], "dim"), path)
            if i < len(legacy_shapes)
            else legacy_dims[4 * i : 4 * i + 4]
        )
        inputs.insert(i, {"name": str(name), "shape": shape})
    info = ModelInfo(str(path), "caffe")
    info.files.append({"path": str(path), "size_bytes": size})
    meta: dict[str, Any] = {
        "part": "network-definition",
        "net_name": _first(net, "name"),
        "layout": "layers (V1)" if _values(net, "layers") else "layer",
        "layer_count": types.total(),
        "layer_types": dict(types.most_common()),
        "layers": layers,
        "inputs": inputs,
    }
    weights = ident.details.get("weights_file")
    if weights:
        meta["weights_file"] = weights
        info.warnings.append(f"network definition only: the weights are in {weights}; inspect that file")
    info.metadata = {k: v for k, v in meta.items() if v is not None}
    return info


INSPECTS = {"caffe": inspect_caffe}
