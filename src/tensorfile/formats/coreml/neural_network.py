"""NeuralNetwork specifications: layers, their WeightParams as tensors, and quantization tables."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from math import prod
from typing import Any

from ...model import TensorInfo
from ...protowire import I32, LEN, VARINT, Field, MessageReader
from .walk import MAX_DEPTH, Walk, bits_bytes, packed_varints

# NeuralNetworkLayer.layer oneof (coremltools NeuralNetwork.proto): field number -> layer type.
# fmt: off
LAYER_TYPES = {
    100: "convolution", 120: "pooling", 130: "activation", 140: "innerProduct", 150: "embedding",
    160: "batchnorm", 165: "mvn", 170: "l2normalize", 175: "softmax", 180: "lrn", 190: "crop",
    200: "padding", 210: "upsample", 211: "resizeBilinear", 212: "cropResize", 220: "unary", 230: "add",
    231: "multiply", 240: "average", 245: "scale", 250: "bias", 260: "max", 261: "min", 270: "dot",
    280: "reduce", 290: "loadConstant", 300: "reshape", 301: "flatten", 310: "permute", 320: "concat",
    330: "split", 340: "sequenceRepeat", 345: "reorganizeData", 350: "slice", 400: "simpleRecurrent",
    410: "gru", 420: "uniDirectionalLSTM", 430: "biDirectionalLSTM", 500: "custom", 600: "copy",
    605: "branch", 615: "loop", 620: "loopBreak", 625: "loopContinue", 635: "rangeStatic",
    640: "rangeDynamic", 660: "clip", 665: "ceil", 670: "floor", 680: "sign", 685: "round", 700: "exp2",
    710: "sin", 715: "cos", 720: "tan", 730: "asin", 735: "acos", 740: "atan", 750: "sinh", 755: "cosh",
    760: "tanh", 770: "asinh", 775: "acosh", 780: "atanh", 790: "erf", 795: "gelu", 815: "equal",
    820: "notEqual", 825: "lessThan", 827: "lessEqual", 830: "greaterThan", 832: "greaterEqual",
    840: "logicalOr", 845: "logicalXor", 850: "logicalNot", 855: "logicalAnd", 865: "modBroadcastable",
    870: "minBroadcastable", 875: "maxBroadcastable", 880: "addBroadcastable", 885: "powBroadcastable",
    890: "divideBroadcastable", 895: "floorDivBroadcastable", 900: "multiplyBroadcastable",
    905: "subtractBroadcastable", 920: "tile", 925: "stack", 930: "gather", 935: "scatter",
    940: "gatherND", 945: "scatterND", 950: "softmaxND", 952: "gatherAlongAxis", 954: "scatterAlongAxis",
    960: "reverse", 965: "reverseSeq", 975: "splitND", 980: "concatND", 985: "transpose",
    995: "sliceStatic", 1000: "sliceDynamic", 1005: "slidingWindows", 1015: "topK", 1020: "argMin",
    1025: "argMax", 1040: "embeddingND", 1045: "batchedMatmul", 1065: "getShape", 1070: "loadConstantND",
    1080: "fillLike", 1085: "fillStatic", 1090: "fillDynamic", 1100: "broadcastToLike",
    1105: "broadcastToStatic", 1110: "broadcastToDynamic", 1120: "squeeze", 1125: "expandDims",
    1130: "flattenTo2D", 1135: "reshapeLike", 1140: "reshapeStatic", 1145: "reshapeDynamic",
    1150: "rankPreservingReshape", 1155: "constantPad", 1170: "randomNormalLike",
    1175: "randomNormalStatic", 1180: "randomNormalDynamic", 1190: "randomUniformLike",
    1195: "randomUniformStatic", 1200: "randomUniformDynamic", 1210: "randomBernoulliLike",
    1215: "randomBernoulliStatic", 1220: "randomBernoulliDynamic", 1230: "categoricalDistribution",
    1250: "reduceL1", 1255: "reduceL2", 1260: "reduceMax", 1265: "reduceMin", 1270: "reduceSum",
    1275: "reduceProd", 1280: "reduceMean", 1285: "reduceLogSum", 1290: "reduceSumSquare",
    1295: "reduceLogSumExp", 1313: "whereNonZero", 1315: "matrixBandPart", 1320: "lowerTriangular",
    1325: "upperTriangular", 1330: "whereBroadcastable", 1350: "layerNormalization",
    1400: "NonMaximumSuppression", 1450: "oneHot", 1455: "cumSum", 1460: "clampedReLU", 1461: "argSort",
    1465: "pooling3d", 1466: "globalPooling3d", 1470: "sliceBySize", 1471: "convolution3d",
}
# fmt: on

# Where WeightParams live, read off coremltools' NeuralNetwork.proto descriptors (every message field
# whose type is WeightParams, found recursively). A str value names a WeightParams field ("[]": repeated);
# a tuple is a sub-message with its own table; NETWORK is a nested NeuralNetwork (branch/loop bodies).
NETWORK = "network"
Spec = dict[int, "str | tuple[str, Spec]"]
_ACTIVATION: Spec = {25: ("PReLU", {1: "alpha"}), 71: ("parametricSoftplus", {1: "alpha", 2: "beta"})}
_LSTM_WEIGHTS: Spec = {
    1: "inputGateWeightMatrix",
    2: "forgetGateWeightMatrix",
    3: "blockInputWeightMatrix",
    4: "outputGateWeightMatrix",
    20: "inputGateRecursionMatrix",
    21: "forgetGateRecursionMatrix",
    22: "blockInputRecursionMatrix",
    23: "outputGateRecursionMatrix",
    40: "inputGateBiasVector",
    41: "forgetGateBiasVector",
    42: "blockInputBiasVector",
    43: "outputGateBiasVector",
    60: "inputGatePeepholeVector",
    61: "forgetGatePeepholeVector",
    62: "outputGatePeepholeVector",
}
LAYER_WEIGHTS: dict[int, Spec] = {
    100: {90: "weights", 91: "bias"},
    130: _ACTIVATION,
    140: {20: "weights", 21: "bias"},
    150: {20: "weights", 21: "bias"},
    160: {15: "gamma", 16: "beta", 17: "mean", 18: "variance"},
    245: {2: "scale", 5: "bias"},
    250: {2: "bias"},
    290: {2: "data"},
    400: {10: ("activation", _ACTIVATION), 30: "weightMatrix", 31: "recursionMatrix", 32: "biasVector"},
    410: {
        10: ("activations[]", _ACTIVATION),
        30: "updateGateWeightMatrix",
        31: "resetGateWeightMatrix",
        32: "outputGateWeightMatrix",
        50: "updateGateRecursionMatrix",
        51: "resetGateRecursionMatrix",
        52: "outputGateRecursionMatrix",
        70: "updateGateBiasVector",
        71: "resetGateBiasVector",
        72: "outputGateBiasVector",
    },
    420: {10: ("activations[]", _ACTIVATION), 20: ("weightParams", _LSTM_WEIGHTS)},
    430: {
        10: ("activationsForwardLSTM[]", _ACTIVATION),
        11: ("activationsBackwardLSTM[]", _ACTIVATION),
        20: ("weightParams[]", _LSTM_WEIGHTS),
    },
    500: {20: "weights[]"},
    605: {1: ("ifBranch", {}), 2: ("elseBranch", {})},
    615: {3: ("conditionNetwork", {}), 4: ("bodyNetwork", {})},
    1040: {20: "weights", 21: "bias"},
    1045: {8: "weights", 9: "bias"},
    1070: {2: "data"},
    1350: {3: "gamma", 4: "beta"},
    1471: {60: "weights", 61: "bias"},
}
_NESTED_NETWORKS = {605: (1, 2), 615: (3, 4)}
# Repeated uint64/int64 shape fields that may be packed, per layer type (shape hints only).
_PACKED_SHAPES = {100: (20,), 245: (1, 4), 250: (1,), 290: (1,), 1070: (1,), 1350: (1,)}


def read_neural_network(reader: MessageReader, walk: Walk, prefix: str, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    layers = 0
    before = Counter(walk.layer_types)  # pipelines may hold several networks: count this one's
    for f in reader.fields():
        if f.number == 1 and f.wire_type == LEN:
            layers += 1
            _layer(reader.submessage(f), walk, prefix, depth)
        elif f.number in (100, 101) and f.wire_type == LEN:  # stringClassLabels / int64ClassLabels
            labels = reader.submessage(f)
            out["class_labels"] = sum(
                len(packed_varints(labels, g)) if f.number == 101 else 1 for g in labels.fields()
            )
    out["layer_count"] = layers
    out["layer_types"] = dict((walk.layer_types - before).most_common())
    return out


def _layer(reader: MessageReader, walk: Walk, prefix: str, depth: int) -> None:
    name = ""
    kind: Field | None = None
    for f in reader.fields():
        if f.number == 1 and f.wire_type == LEN:
            name = reader.string(f) or ""
        elif f.number >= 100 and f.wire_type == LEN:  # the layer-type oneof starts at 100
            kind = f
    if kind is None:
        walk.warn(f"layer {name!r} has no layer type")
        return
    walk.layer_types[LAYER_TYPES.get(kind.number, f"layer{kind.number}")] += 1
    spec = LAYER_WEIGHTS.get(kind.number)
    if spec is None:
        return
    params = reader.submessage(kind)
    nested = _NESTED_NETWORKS.get(kind.number)
    if nested:
        if depth >= MAX_DEPTH:
            walk.warn(f"networks nested deeper than {MAX_DEPTH}: the rest is not read")
            return
        for f in params.fields():
            if f.number in nested and f.wire_type == LEN:
                read_neural_network(
                    params.submessage(f), walk, f"{prefix}{name}.{spec[f.number][0]}.", depth + 1
                )
        return
    _weights_in(params, spec, f"{prefix}{name}", walk, kind.number, {}, 0)


def _weights_in(
    reader: MessageReader,
    spec: Spec,
    base: str,
    walk: Walk,
    kind: int,
    scalars: dict[int, list[int]],
    level: int,
) -> None:
    """Every WeightParams the table names in this message (and the sub-messages it names)."""
    if level > 4:
        return
    found: list[tuple[str, Field]] = []
    nested: list[tuple[str, Spec, Field]] = []
    seen: Counter[int] = Counter()
    own: dict[int, list[int]] = {}
    for f in reader.fields():
        entry = spec.get(f.number)
        if entry is None:
            if level == 0 and (f.wire_type == VARINT or f.number in _PACKED_SHAPES.get(kind, ())):
                own.setdefault(f.number, []).extend(packed_varints(reader, f))
            continue
        label = entry if isinstance(entry, str) else entry[0]
        if label.endswith("[]"):
            label = f"{label[:-2]}.{seen[f.number]}"
        seen[f.number] += 1
        if isinstance(entry, str):
            found.append((label, f))
        elif f.wire_type == LEN:
            nested.append((label, entry[1], f))
    hints = _shape_hints(kind, own if level == 0 else scalars)
    for label, f in found:
        _weight_params(reader, f, f"{base}.{label}", hints(label), walk)
    for label, sub_spec, f in nested:
        _weights_in(reader.submessage(f), sub_spec, f"{base}.{label}", walk, kind, own or scalars, level + 1)


def _shape_hints(kind: int, s: dict[int, list[int]]) -> Callable[[str], tuple[int, ...] | None]:
    """The shape a layer's own fields give each of its weights (checked against the data later)."""

    def one(n: int, default: int = 0) -> int:
        return s.get(n, [default])[0]

    table: dict[str, tuple[int, ...]] = {}
    if kind == 140:  # innerProduct: weights [out, in]
        table = {"weights": (one(2), one(1)), "bias": (one(2),)}
    elif kind == 100:  # convolution (kernelSize defaults to 3x3)
        out, kc, groups = one(1), one(2), one(10, 1) or 1
        kernel = tuple(s.get(20, [])) or (3, 3)
        weights = (kc, out // groups, *kernel) if one(60) else (out, kc, *kernel)
        table = {"weights": weights, "bias": (out,)}
    elif kind in (150, 1040):  # embedding / embeddingND: [output size, input dim]
        table = {"weights": (one(2), one(1)), "bias": (one(2),)}
    elif kind == 160:
        table = {k: (one(1),) for k in ("gamma", "beta", "mean", "variance")}
    elif kind == 1045:
        table = {"weights": (one(5), one(6)), "bias": (one(6),)}
    elif kind in (290, 1070):
        table = {"data": tuple(s.get(1, []))}
    elif kind == 245:
        table = {"scale": tuple(s.get(1, [])), "bias": tuple(s.get(4, []))}
    elif kind == 250:
        table = {"bias": tuple(s.get(1, []))}
    elif kind == 1350:
        table = {"gamma": tuple(s.get(1, [])), "beta": tuple(s.get(1, []))}
    elif kind == 1471:
        out, groups = one(1), one(10, 1) or 1
        kernel = (one(20), one(21), one(22))
        table = {"weights": (out, one(2) // groups, *kernel), "bias": (out,)}
    recurrent = kind in (400, 410, 420, 430)
    size_in, size_out = one(1), one(2)

    def hint(label: str) -> tuple[int, ...] | None:
        if recurrent:
            if label.endswith("WeightMatrix"):
                return (size_out, size_in)
            if label.endswith("RecursionMatrix"):
                return (size_out, size_out)
            if label.endswith(("BiasVector", "PeepholeVector")):
                return (size_out,)
            return None
        return table.get(label)

    return hint


def _weight_params(
    reader: MessageReader, f: Field, name: str, hint: tuple[int, ...] | None, walk: Walk
) -> None:
    """One WeightParams: its stored values as a tensor, plus quantization tables as quant-aux."""
    if f.wire_type != LEN:
        walk.warn(f"{name}: weight field is not a message")
        return
    sub = reader.submessage(f)
    stored: list[tuple[str, int, int, Field | None]] = []  # (kind, bits, byte length, field)
    unpacked = 0
    quant: dict[str, Any] | None = None
    for g in sub.fields():
        if g.number == 1 and g.wire_type == LEN and g.length:
            stored.append(("F32", 32, g.length, g))
        elif g.number == 1 and g.wire_type == I32:
            unpacked += 1  # floats written one tag each (proto2 style): not contiguous
        elif g.number == 2 and g.wire_type == LEN and g.length:
            stored.append(("F16", 16, g.length, g))
        elif g.number == 30 and g.wire_type == LEN and g.length:
            stored.append(("raw", 8, g.length, g))
        elif g.number == 31 and g.wire_type == LEN and g.length:
            stored.append(("I8", 8, g.length, g))
        elif g.number == 40 and g.wire_type == LEN:
            quant = _quantization_params(sub.submessage(g), name, walk)
    if unpacked:
        stored.append(("F32", 32, unpacked * 4, None))
    if not stored:
        return  # an empty WeightParams: the layer has no such weight (e.g. hasBias false)
    if len(stored) > 1:
        walk.warn(f"{name}: WeightParams holds {len(stored)} value fields; the first is reported")
    kind, bits, length, value = stored[0]
    dtype = kind
    if kind == "raw":
        bits = int(quant["bits"]) if quant and quant.get("bits") else 8
        if not 1 <= bits <= 8:
            walk.warn(f"{name}: quantization claims {bits} bits (1-8 are valid); read as 8")
            bits = 8
        dtype = f"U{bits}"  # NeuralNetwork quantization allows 1-8 bits: U1…U8 are all table rows
        walk.quantized[(quant["method"] if quant else "raw", bits)] += 1
    elif kind == "I8" and quant:
        walk.quantized[(quant["method"], 8)] += 1
    if (length * 8) % bits and kind != "raw":
        walk.warn(f"{name}: {length} bytes is not a whole number of {dtype} values")
    shape: tuple[int, ...] = (length * 8 // bits,)
    if hint and all(d > 0 for d in hint) and bits_bytes(bits, prod(hint)) == length:
        shape = hint
    offset = value.offset if value is not None else None
    walk.add(TensorInfo(name, dtype, shape, length, walk.label, offset, "weight"))
    for aux_name, aux in (quant or {}).get("tables", []):
        walk.add(
            TensorInfo(
                f"{name}.{aux_name}",
                "F32",
                (aux.length // 4,),
                aux.length,
                walk.label,
                aux.offset,
                "quant-aux",
            )
        )


def _quantization_params(reader: MessageReader, name: str, walk: Walk) -> dict[str, Any]:
    out: dict[str, Any] = {"method": "quantized", "bits": None, "tables": []}
    for f in reader.fields():
        if f.number == 1 and f.wire_type == VARINT:
            out["bits"] = f.value
        elif f.number in (101, 102) and f.wire_type == LEN:
            out["method"] = "linear" if f.number == 101 else "lookup-table"
            sub = reader.submessage(f)
            names = {1: "scale", 2: "quant_bias"} if f.number == 101 else {1: "lut"}
            for g in sub.fields():
                if g.number in names and g.wire_type == LEN and g.length:
                    out["tables"].append((names[g.number], g))
    bits = out["bits"]
    if bits is not None and not 1 <= bits <= 8:
        walk.warn(f"{name}: quantization with {bits} bits is outside 1..8")
        out["bits"] = None
    return out
