"""Core ML: `.mlmodel` protobuf specifications and `.mlpackage` folders."""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..model import CERTAIN, STRONG, Detection, Identification, ModelInfo, TensorInfo
from ..probe import DirProbe, FileProbe
from ..protowire import I32, I64, LEN, VARINT, Field, MessageReader, decode_varint, decode_varints
from ..source import CachedSource, OpenedSource, open_source, read_exact

# Model.Type oneof field numbers (coremltools Model.proto).
MODEL_TYPES = {
    200: "pipelineClassifier",
    201: "pipelineRegressor",
    202: "pipeline",
    300: "glmRegressor",
    301: "supportVectorRegressor",
    302: "treeEnsembleRegressor",
    303: "neuralNetworkRegressor",
    304: "bayesianProbitRegressor",
    400: "glmClassifier",
    401: "supportVectorClassifier",
    402: "treeEnsembleClassifier",
    403: "neuralNetworkClassifier",
    404: "kNearestNeighborsClassifier",
    500: "neuralNetwork",
    501: "itemSimilarityRecommender",
    502: "mlProgram",
    555: "customModel",
    556: "linkedModel",
    560: "classConfidenceThresholding",
    600: "oneHotEncoder",
    601: "imputer",
    602: "featureVectorizer",
    603: "dictVectorizer",
    604: "scaler",
    606: "categoricalMapping",
    607: "normalizer",
    609: "arrayFeatureExtractor",
    610: "nonMaximumSuppression",
    900: "identity",
    2000: "textClassifier",
    2001: "wordTagger",
    2002: "visionFeaturePrint",
    2003: "soundAnalysisPreprocessing",
    2004: "gazetteer",
    2005: "wordEmbedding",
    2006: "audioFeaturePrint",
    3000: "serializedModel",
}
_HEADER_FIELDS = {1: VARINT, 2: LEN, 10: VARINT}


def detect_file(probe: FileProbe) -> Detection | None:
    fields, clean = probe.proto_fields
    if not fields or not clean:
        return None
    types = [f for f in fields if f.number in MODEL_TYPES and f.wire_type == LEN]
    others = [f for f in fields if f.number not in MODEL_TYPES]
    if len(types) != 1 or any(_HEADER_FIELDS.get(f.number) != f.wire_type for f in others):
        return None
    spec = next((f.value for f in fields if f.number == 1), None)
    model_type = MODEL_TYPES[types[0].number]
    details: dict[str, Any] = {"model_type": model_type}
    evidence = [f"protobuf Model with type field {types[0].number} ({model_type})"]
    if spec is not None:
        details["specification_version"] = spec
        evidence.append(f"specificationVersion {spec}")
    updatable = next((bool(f.value) for f in fields if f.number == 10), False)
    details["is_updatable"] = updatable
    confidence = CERTAIN if spec is not None and 1 <= spec <= 64 else STRONG
    return Detection("coreml-mlmodel", confidence, evidence, details)


def detect_dir(probe: DirProbe) -> Detection | None:
    if not probe.has("Manifest.json"):
        return None
    manifest = probe.read_json("Manifest.json")
    if not manifest or "itemInfoEntries" not in manifest:
        return None
    entries = manifest.get("itemInfoEntries") or {}
    root_id = manifest.get("rootModelIdentifier")
    root = entries.get(root_id, {}) if isinstance(entries, dict) else {}
    details: dict[str, Any] = {"root_model": root.get("path"), "items": len(entries) if entries else 0}
    evidence = ["Manifest.json with itemInfoEntries and rootModelIdentifier"]
    warnings = []
    path = root.get("path") if isinstance(root, dict) else None
    if path and not (probe.path / "Data" / path).is_file():
        warnings.append(f"root model Data/{path} is missing")
    elif path:
        evidence.append(f"root model Data/{path}")
    confidence = CERTAIN if probe.ext == ".mlpackage" or path else STRONG
    return Detection("coreml-mlpackage", confidence, evidence, details, warnings)


# --- inspect --------------------------------------------------------------------------------------

MAX_DEPTH = 16  # pipelines of pipelines, branch/loop networks, nested MIL blocks
_MAX_FILES_LISTED = 1000
_WEIGHTS_PREFIX = "@model_path/"
_SCAN_WINDOW = 1 << 20

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

FEATURE_TYPES = {
    1: "int64Type",
    2: "doubleType",
    3: "stringType",
    4: "imageType",
    5: "multiArrayType",
    6: "dictionaryType",
    7: "sequenceType",
    8: "stateType",
}
ARRAY_DTYPES = {65568: "FLOAT32", 65600: "DOUBLE", 131104: "INT32", 131080: "INT8", 65552: "FLOAT16"}
COLOR_SPACES = {10: "GRAYSCALE", 20: "RGB", 30: "BGR", 40: "GRAYSCALE_FLOAT16"}
# MIL DataType (MIL.proto) -> (canonical dtype, bits); every name is a row of the dtypes table.
MIL_DTYPES: dict[int, tuple[str, int]] = {
    1: ("BOOL", 8),
    10: ("F16", 16),
    11: ("F32", 32),
    12: ("F64", 64),
    13: ("BF16", 16),
    21: ("I8", 8),
    22: ("I16", 16),
    23: ("I32", 32),
    24: ("I64", 64),
    25: ("I4", 4),
    31: ("U8", 8),
    32: ("U16", 16),
    33: ("U32", 32),
    34: ("U64", 64),
    35: ("U4", 4),
    36: ("U2", 2),
    37: ("U1", 1),
    38: ("U6", 6),
    39: ("U3", 3),
    40: ("F8_E4M3", 8),
    41: ("F8_E5M2", 8),
}
_MIL_STRING = 2
_DTYPE_BITS = {name: bits for name, bits in MIL_DTYPES.values()}
# MILBlob BlobDataType (coremltools mlmodel/src/MILBlob/Blob/BlobDataType.hpp).
BLOB_DTYPES: dict[int, str] = {
    1: "F16",
    2: "F32",
    3: "U8",
    4: "I8",
    5: "BF16",
    6: "I16",
    7: "U16",
    8: "I4",
    9: "U1",
    10: "U2",
    11: "U4",
    12: "U3",
    13: "U6",
    14: "I32",
    15: "U32",
    16: "F8_E4M3",
    17: "F8_E5M2",
}
BLOB_SENTINEL = 0xDEADBEEF
_BLOB_HEADER = struct.Struct("<II56x")  # count, version, reserved
_BLOB_METADATA = struct.Struct("<IIQQQ24x")  # sentinel, mil dtype, sizeInBytes, offset, padding bits
# constexpr_* ops keep their quantized payload under these keys; their other tensors are scales,
# zero points, lookup tables and masks.
_CONSTEXPR_PAYLOAD = {"quantized_data", "data", "indices", "nonzero_data"}


def _bits_bytes(bits: int, numel: int) -> int:
    return -(-numel * bits // 8)


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed_varints(reader: MessageReader, f: Field) -> list[int]:
    if f.wire_type == VARINT:
        return [f.value]
    if f.wire_type != LEN:
        return []
    return decode_varints(reader.payload(f))


@dataclass
class _Blob:
    source: OpenedSource
    label: str
    seen: set[int] = field(default_factory=set)  # metadata offsets already reported


@dataclass
class _Walk:
    """State shared by one inspection: the report being filled and the weight files opened."""

    info: ModelInfo
    label: str  # the spec file, as tensors name it
    model_dir: Path  # what @model_path means
    package: Path | None  # the .mlpackage root, for file labels
    layer_types: Counter[str] = field(default_factory=Counter)
    op_types: Counter[str] = field(default_factory=Counter)
    quantized: Counter[tuple[str, int]] = field(default_factory=Counter)  # (method, bits) -> weights
    blobs: dict[str, _Blob | None] = field(default_factory=dict)
    string_constants: int = 0
    compressed: set[int] = field(default_factory=set)  # tensors that are constexpr_* payloads
    dense_elements: int = 0  # what those payloads decompress to
    shared_blob_references: int = 0

    def warn(self, message: str) -> None:
        if message not in self.info.warnings and len(self.info.warnings) < 100:
            self.info.warnings.append(message)

    def add(self, tensor: TensorInfo) -> None:
        self.info.tensors.append(tensor)

    def close(self) -> None:
        for blob in self.blobs.values():
            if blob is not None:
                blob.source.close()


# --- Model, ModelDescription, FeatureDescription ---------------------------------------------------


def _read_model(reader: MessageReader, walk: _Walk, prefix: str, depth: int) -> dict[str, Any]:
    """Summary of one Model message (the root or a pipeline stage); tensors go into walk.info."""
    summary: dict[str, Any] = {}
    if depth > MAX_DEPTH:
        walk.warn(f"models nested deeper than {MAX_DEPTH}: the rest is not read")
        return summary
    type_field: Field | None = None
    for f in reader.fields():
        if f.number == 1 and f.wire_type == VARINT:
            summary["specification_version"] = f.value
        elif f.number == 2 and f.wire_type == LEN:
            summary.update(_description(reader.submessage(f)))
        elif f.number == 10 and f.wire_type == VARINT:
            summary["is_updatable"] = bool(f.value)
        elif f.number in MODEL_TYPES and f.wire_type == LEN:
            type_field = f
    if type_field is None:
        walk.warn(f"{prefix or 'model'}: no model type field")
        return summary
    model_type = MODEL_TYPES[type_field.number]
    summary["model_type"] = model_type
    summary.setdefault("is_updatable", False)
    body = reader.submessage(type_field)
    if type_field.number in (303, 403, 500):
        summary.update(_neural_network(body, walk, prefix, depth))
    elif type_field.number == 502:
        summary.update(_program(body, walk, prefix, depth))
    elif type_field.number in (200, 201, 202):
        summary["pipeline"] = _pipeline(body, walk, prefix, depth, nested=type_field.number != 202)
    elif type_field.number in (302, 402):
        summary["tree_ensemble"] = _tree_ensemble(body)
    elif type_field.number in (300, 400):
        summary.update(_glm(body, walk, prefix))
    return summary


def _description(reader: MessageReader) -> dict[str, Any]:
    out: dict[str, Any] = {"inputs": [], "outputs": []}
    for f in reader.fields():
        if f.wire_type != LEN:
            continue
        if f.number == 1:
            out["inputs"].append(_feature(reader.submessage(f)))
        elif f.number == 10:
            out["outputs"].append(_feature(reader.submessage(f)))
        elif f.number == 50:
            out.setdefault("training_inputs", []).append(_feature(reader.submessage(f)))
        elif f.number == 13:
            out.setdefault("states", []).append(_feature(reader.submessage(f)))
        elif f.number == 11:
            out["predicted_feature_name"] = reader.string(f)
        elif f.number == 12:
            out["predicted_probabilities_name"] = reader.string(f)
        elif f.number == 20:
            out.setdefault("function_descriptions", []).append(_function_description(reader.submessage(f)))
        elif f.number == 21:
            out["default_function"] = reader.string(f)
        elif f.number == 100:
            out["metadata"] = _metadata(reader.submessage(f))
    return out


def _function_description(reader: MessageReader) -> dict[str, Any]:
    out: dict[str, Any] = {"name": None, "inputs": [], "outputs": []}
    for f in reader.fields():
        if f.number == 1 and f.wire_type == LEN:
            out["name"] = reader.string(f)
        elif f.number == 2 and f.wire_type == LEN:
            out["inputs"].append(_feature(reader.submessage(f)))
        elif f.number == 3 and f.wire_type == LEN:
            out["outputs"].append(_feature(reader.submessage(f)))
    return out


def _metadata(reader: MessageReader) -> dict[str, Any]:
    names = {1: "shortDescription", 2: "versionString", 3: "author", 4: "license"}
    out: dict[str, Any] = {}
    user: dict[str, str] = {}
    for f in reader.fields():
        if f.number in names and f.wire_type == LEN:
            out[names[f.number]] = reader.string(f)
        elif f.number == 100 and f.wire_type == LEN:
            entry = reader.submessage(f)
            key = value = ""
            for e in entry.fields():
                if e.number == 1:
                    key = entry.string(e) or ""
                elif e.number == 2:
                    value = entry.string(e) or ""
            user[key] = value
    if user:
        out["userDefined"] = user
    return out


def _feature(reader: MessageReader) -> dict[str, Any]:
    out: dict[str, Any] = {"name": None, "type": None}
    for f in reader.fields():
        if f.number == 1 and f.wire_type == LEN:
            out["name"] = reader.string(f)
        elif f.number == 2 and f.wire_type == LEN:
            out["description"] = reader.string(f)
        elif f.number == 3 and f.wire_type == LEN:
            out.update(_feature_type(reader.submessage(f)))
    return out


def _feature_type(reader: MessageReader) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in reader.fields():
        if f.number == 1000 and f.wire_type == VARINT:
            out["optional"] = bool(f.value)
        elif f.number in FEATURE_TYPES and f.wire_type == LEN:
            out["type"] = FEATURE_TYPES[f.number]
            sub = reader.submessage(f)
            if f.number == 5:
                out.update(_array_type(sub))
            elif f.number == 8:  # stateType wraps an array type
                for g in sub.fields():
                    if g.number == 1 and g.wire_type == LEN:
                        out.update(_array_type(sub.submessage(g)))
            elif f.number == 4:
                for g in sub.fields():
                    if g.wire_type == VARINT and g.number in (1, 2):
                        out["width" if g.number == 1 else "height"] = g.value
                    elif g.wire_type == VARINT and g.number == 3:
                        out["color_space"] = COLOR_SPACES.get(g.value, g.value)
            elif f.number == 6:
                for g in sub.fields():
                    if g.number in (1, 2):
                        out["key_type"] = "int64" if g.number == 1 else "string"
    return out


def _array_type(reader: MessageReader) -> dict[str, Any]:
    out: dict[str, Any] = {"shape": []}
    for f in reader.fields():
        if f.number == 1:
            out["shape"].extend(_int64(v) for v in _packed_varints(reader, f))
        elif f.number == 2 and f.wire_type == VARINT:
            out["data_type"] = ARRAY_DTYPES.get(f.value, f.value)
        elif f.number in (21, 31):
            out["flexible_shape"] = "enumerated" if f.number == 21 else "range"
    return out


# --- neural networks ------------------------------------------------------------------------------


def _neural_network(reader: MessageReader, walk: _Walk, prefix: str, depth: int) -> dict[str, Any]:
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
                len(_packed_varints(labels, g)) if f.number == 101 else 1 for g in labels.fields()
            )
    out["layer_count"] = layers
    out["layer_types"] = dict((walk.layer_types - before).most_common())
    return out


def _layer(reader: MessageReader, walk: _Walk, prefix: str, depth: int) -> None:
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
                _neural_network(params.submessage(f), walk, f"{prefix}{name}.{spec[f.number][0]}.", depth + 1)
        return
    _weights_in(params, spec, f"{prefix}{name}", walk, kind.number, {}, 0)


def _weights_in(
    reader: MessageReader,
    spec: Spec,
    base: str,
    walk: _Walk,
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
                own.setdefault(f.number, []).extend(_packed_varints(reader, f))
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
    reader: MessageReader, f: Field, name: str, hint: tuple[int, ...] | None, walk: _Walk
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
    if hint and all(d > 0 for d in hint) and _bits_bytes(bits, prod(hint)) == length:
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


def _quantization_params(reader: MessageReader, name: str, walk: _Walk) -> dict[str, Any]:
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


# --- other model types ----------------------------------------------------------------------------


def _pipeline(
    reader: MessageReader, walk: _Walk, prefix: str, depth: int, nested: bool
) -> list[dict[str, Any]]:
    if nested:  # PipelineClassifier/PipelineRegressor wrap a Pipeline in field 1
        inner = next((f for f in reader.fields() if f.number == 1 and f.wire_type == LEN), None)
        if inner is None:
            return []
        reader = reader.submessage(inner)
    models = [f for f in reader.fields() if f.number == 1 and f.wire_type == LEN]
    names = [reader.string(f) or "" for f in reader.fields() if f.number == 2 and f.wire_type == LEN]
    stages: list[dict[str, Any]] = []
    for i, f in enumerate(models):
        stage = names[i] if i < len(names) and names[i] else f"model{i}"
        summary = _read_model(reader.submessage(f), walk, f"{prefix}{stage}.", depth + 1)
        stages.append({"name": stage, **{k: v for k, v in summary.items() if k not in ("inputs", "outputs")}})
    return stages


def _tree_ensemble(reader: MessageReader) -> dict[str, Any]:
    """Counts for a tree ensemble: its nodes are the model, so they are summarised, not listed."""
    out: dict[str, Any] = {}
    for f in reader.fields():
        if f.number == 1 and f.wire_type == LEN:
            out.update(_tree_nodes(reader.submessage(f)))
        elif f.number == 2 and f.wire_type == VARINT:
            out["post_evaluation_transform"] = f.value
    return out


def _tree_nodes(reader: MessageReader) -> dict[str, Any]:
    """Node statistics of a TreeEnsembleParameters, in one pass over its bytes.

    A ranker or boosted forest holds ~10^5 TreeNode messages; the generic field walk costs seconds on
    them, so nodes are decoded inline from 1 MB windows (memory stays bounded by the window).
    """
    source, pos, end = reader.source, reader.start, reader.end
    stats = _NodeStats()
    dims: int | None = None
    base: list[float] = []
    buf, buf_start = b"", pos
    while pos < end:
        i = pos - buf_start
        if len(buf) - i < 64 and buf_start + len(buf) < end:
            buf, buf_start, i = source.read_at(pos, min(_SCAN_WINDOW, end - pos)), pos, 0
        key, j = decode_varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, j = decode_varint(buf, j)
            if number == 2:
                dims = value
            pos = buf_start + j
        elif wire == LEN:
            length, j = decode_varint(buf, j)
            if buf_start + j + length > end:
                raise FormatError(f"tree node at offset {pos} runs past its message", source.name)
            if number == 1 and length <= _SCAN_WINDOW // 2:
                if j + length > len(buf):  # the node straddles the window: refill from its start
                    buf, buf_start = source.read_at(pos, min(_SCAN_WINDOW, end - pos)), pos
                    j = j - i
                stats.node(buf, j, j + length, source.name)
            elif number == 1:
                stats.nodes += 1  # an absurdly long node: counted, not decoded
            elif number == 3:
                raw = source.read_at(buf_start + j, min(length, 8 * 16))
                base.extend(struct.unpack(f"<{len(raw) // 8}d", raw[: len(raw) // 8 * 8]))
            pos = buf_start + j + length
        elif wire in (I64, I32):
            if number == 3 and wire == I64 and j + 8 <= len(buf):
                base.append(struct.unpack_from("<d", buf, j)[0])
            pos = buf_start + j + (8 if wire == I64 else 4)
        else:
            raise FormatError(f"protobuf wire type {wire} in a tree ensemble at {pos}", source.name)
    return {
        "trees": len(stats.trees),
        "nodes": stats.nodes,
        "leaves": stats.leaves,
        "branch_nodes": stats.nodes - stats.leaves,
        "leaf_values": stats.leaf_values,
        "features_used": len(stats.features),
        "prediction_dimensions": dims,
        # the thresholds of the branches plus the values of the leaves: what training fitted
        "fitted_values": stats.nodes - stats.leaves + stats.leaf_values,
        "base_prediction": base[:16],
    }


class _NodeStats:
    """Counts over TreeNode messages (treeId 1, nodeBehavior 3, branchFeatureIndex 10, evaluationInfo 20)."""

    def __init__(self) -> None:
        self.nodes = self.leaves = self.leaf_values = 0
        self.trees: set[int] = set()
        self.features: set[int] = set()

    def node(self, buf: bytes, p: int, end: int, name: str) -> None:
        self.nodes += 1
        try:
            self._fields(buf, p, end, name)
        except IndexError:
            raise FormatError("tree node fields run past the node", name) from None

    def _fields(self, buf: bytes, p: int, end: int, name: str) -> None:
        while p < end:
            key = buf[p]
            if key < 0x80:  # one-byte tags cover every field but evaluationInfo and relativeHitRate
                p += 1
            else:
                key, p = decode_varint(buf, p)
            wire = key & 7
            if wire == VARINT:
                value = buf[p]
                if value < 0x80:
                    p += 1
                else:
                    value, p = decode_varint(buf, p)
                number = key >> 3
                if number == 1:
                    self.trees.add(value)
                elif number == 3 and value == 6:  # LeafNode
                    self.leaves += 1
                elif number == 10:
                    self.features.add(value)
            elif wire == I64:
                p += 8
            elif wire == LEN:
                length, p = decode_varint(buf, p)
                if key >> 3 == 20:
                    self.leaf_values += 1
                p += length
            elif wire == I32:
                p += 4
            else:
                raise FormatError(f"protobuf wire type {wire} inside a tree node", name)
        if p != end:
            raise FormatError("tree node fields run past the node", name)


def _glm(reader: MessageReader, walk: _Walk, prefix: str) -> dict[str, Any]:
    rows = 0
    offsets: list[Field] = []
    for f in reader.fields():
        if f.number == 1 and f.wire_type == LEN:
            row = reader.submessage(f)
            for g in row.fields():
                if g.number == 1 and g.wire_type == LEN:
                    walk.add(
                        TensorInfo(
                            f"{prefix}weights.{rows}", "F64", (g.length // 8,), g.length, walk.label, g.offset
                        )
                    )
            rows += 1
        elif f.number == 2 and f.wire_type == LEN and f.length:
            offsets.append(f)
    for f in offsets:
        walk.add(TensorInfo(f"{prefix}offset", "F64", (f.length // 8,), f.length, walk.label, f.offset))
    return {"glm_rows": rows}


# --- ML programs (MIL) ----------------------------------------------------------------------------


def _entries(reader: MessageReader) -> Iterator[tuple[str, Field]]:
    """(key, value field) of a map<string, message> entry message."""
    key = ""
    value: Field | None = None
    for f in reader.fields():
        if f.number == 1 and f.wire_type == LEN:
            key = reader.string(f) or ""
        elif f.number == 2 and f.wire_type == LEN:
            value = f
    if value is not None:
        yield key, value


def _program(reader: MessageReader, walk: _Walk, prefix: str, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {"functions": [], "opsets": []}
    functions: list[tuple[str, Field]] = []
    for f in reader.fields():
        if f.number == 1 and f.wire_type == VARINT:
            out["mil_version"] = f.value
        elif f.number == 2 and f.wire_type == LEN:
            functions.extend(_entries(reader.submessage(f)))
    for name, f in functions:
        out["functions"].append(name)
        fn_prefix = prefix if len(functions) == 1 else f"{prefix}{name}/"
        opset = _function(reader.submessage(f), walk, fn_prefix, depth)
        if opset and opset not in out["opsets"]:
            out["opsets"].append(opset)
    out["op_count"] = sum(walk.op_types.values())
    out["op_types"] = dict(walk.op_types.most_common())
    return out


def _function(reader: MessageReader, walk: _Walk, prefix: str, depth: int) -> str | None:
    opset = None
    blocks: list[tuple[str, Field]] = []
    for f in reader.fields():
        if f.number == 2 and f.wire_type == LEN:
            opset = reader.string(f)
        elif f.number == 3 and f.wire_type == LEN:
            blocks.extend(_entries(reader.submessage(f)))
    # One block per opset specialization; the function's own opset is the one that runs.
    chosen = [b for b in blocks if b[0] == opset] or blocks[:1]
    for _key, f in chosen:
        _block(reader.submessage(f), walk, prefix, depth)
    return opset


def _block(reader: MessageReader, walk: _Walk, prefix: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        walk.warn(f"MIL blocks nested deeper than {MAX_DEPTH}: the rest is not read")
        return
    for f in reader.fields():
        if f.number == 3 and f.wire_type == LEN:
            _operation(reader.submessage(f), walk, prefix, depth)


def _operation(reader: MessageReader, walk: _Walk, prefix: str, depth: int) -> None:
    op_type = ""
    output: str | None = None
    output_type: Field | None = None
    type_reader = reader  # the NamedValueType message output_type belongs to
    attributes: list[tuple[str, Field]] = []
    bound: list[tuple[str, Field]] = []  # values written inline into an input argument
    blocks: list[Field] = []
    for f in reader.fields():
        if f.wire_type != LEN:
            continue
        if f.number == 1:
            op_type = reader.string(f) or ""
        elif f.number == 2:
            for key, arg in _entries(reader.submessage(f)):
                argument = reader.submessage(arg)
                for b in argument.fields():
                    if b.number == 1 and b.wire_type == LEN:
                        binding = argument.submessage(b)
                        for v in binding.fields():
                            if v.number == 2 and v.wire_type == LEN:
                                bound.append((key, v))  # a binding holds a name or a value
        elif f.number == 3 and output is None:
            named = reader.submessage(f)
            for g in named.fields():
                if g.number == 1 and g.wire_type == LEN:
                    output = named.string(g)
                elif g.number == 2 and g.wire_type == LEN:
                    output_type = g
                    type_reader = named
        elif f.number == 4:
            blocks.append(f)
        elif f.number == 5:
            attributes.extend(_entries(reader.submessage(f)))
    walk.op_types[op_type] += 1
    name = f"{prefix}{output or op_type}"
    first = len(walk.info.tensors)
    if op_type == "const":
        for key, value in attributes:
            if key == "val":
                _mil_value(reader, value, name, walk, "constant")
    elif op_type.startswith("constexpr_"):
        for key, value in attributes:
            if key != "name":
                role = "weight" if key in _CONSTEXPR_PAYLOAD else "quant-aux"
                _mil_value(reader, value, f"{name}.{key}", walk, role)
    # iOS18 constexpr ops take their payload as inline input values; elsewhere only blob-backed
    # inputs are stored weights (small inline arguments are like attributes).
    constexpr = op_type.startswith("constexpr_")
    for key, value in bound:
        role = "weight" if not constexpr or key in _CONSTEXPR_PAYLOAD else "quant-aux"
        _mil_value(reader, value, f"{name}.{key}", walk, role, blob_only=not constexpr)
    if constexpr:
        # The op's output type is the dense tensor the compressed payload stands for.
        dense = _tensor_type(type_reader, output_type)[1] if output_type is not None else None
        added = range(first, len(walk.info.tensors))
        walk.compressed.update(added)
        walk.dense_elements += prod(dense) if dense is not None else 0
        payload = [walk.info.tensors[i] for i in added if walk.info.tensors[i].role == "weight"]
        if payload:
            # Bits per dense element: iOS16 palettization packs 4-bit indices into a U8 array.
            bits = _DTYPE_BITS.get(payload[0].dtype, 0)
            if dense:
                bits = max(1, round(payload[0].nbytes * 8 / prod(dense)))
            walk.quantized[(op_type, bits)] += 1
    for f in blocks:
        _block(reader.submessage(f), walk, prefix, depth + 1)


def _tensor_type(reader: MessageReader, value_type: Field) -> tuple[int | None, tuple[int, ...] | None]:
    """(MIL dtype, shape) of a ValueType that is a tensorType; shape None when a dim is unknown."""
    vt = reader.submessage(value_type)
    for f in vt.fields():
        if f.number == 1 and f.wire_type == LEN:
            tt = vt.submessage(f)
            dtype: int | None = None
            dims: list[int] | None = []
            for g in tt.fields():
                if g.number == 1 and g.wire_type == VARINT:
                    dtype = g.value
                elif g.number == 3 and g.wire_type == LEN and dims is not None:
                    dim = tt.submessage(g)
                    size = None
                    for h in dim.fields():
                        if h.number == 1 and h.wire_type == LEN:  # ConstantDimension{size}
                            const = dim.submessage(h)
                            size = next((c.value for c in const.fields() if c.number == 1), 0)
                    if size is None:
                        dims = None
                    else:
                        dims.append(size)
            return dtype, tuple(dims) if dims is not None else None
    return None, None


def _mil_value(
    reader: MessageReader,
    f: Field,
    name: str,
    walk: _Walk,
    role: str,
    blob_only: bool = False,
) -> None:
    """A MIL Value holding a tensor: inline (immediateValue) or in a weight blob (blobFileValue)."""
    value = reader.submessage(f)
    dtype_id: int | None = None
    shape: tuple[int, ...] | None = None
    immediate: Field | None = None
    blob: Field | None = None
    for g in value.fields():
        if g.number == 2 and g.wire_type == LEN:
            dtype_id, shape = _tensor_type(value, g)
        elif g.number == 3 and g.wire_type == LEN:
            immediate = g
        elif g.number == 5 and g.wire_type == LEN:
            blob = g
    if blob_only and blob is None:
        return
    if dtype_id == _MIL_STRING:
        walk.string_constants += 1
        return
    if dtype_id is None or shape is None:
        if immediate is not None or blob is not None:
            walk.warn(f"{name}: value is not a tensor of known shape; not counted")
        return
    dtype, bits = MIL_DTYPES.get(dtype_id, (f"MIL_TYPE_{dtype_id}", 0))
    if not bits:
        walk.warn(f"{name}: MIL data type {dtype_id} is unknown to this reader")
    numel = prod(shape)
    expected = _bits_bytes(bits, numel)
    if blob is not None:
        # A const whose value sits in the weight blob is a weight, not a small constant.
        _blob_tensor(
            value, blob, name, dtype, shape, expected, walk, "weight" if role == "constant" else role
        )
        return
    offset = None
    if immediate is not None:
        offset = _immediate_offset(value, immediate)
    walk.add(TensorInfo(name, dtype, shape, expected, walk.label, offset, role))


def _immediate_offset(reader: MessageReader, immediate: Field) -> int | None:
    """Where packed float/double values of an immediate tensor start (contiguous), else None."""
    imm = reader.submessage(immediate)
    for f in imm.fields():
        if f.number == 1 and f.wire_type == LEN:
            tv = imm.submessage(f)
            for g in tv.fields():
                if g.number in (1, 6) and g.wire_type == LEN:  # floats / doubles
                    rep = tv.submessage(g)
                    packed = next((h for h in rep.fields() if h.number == 1 and h.wire_type == LEN), None)
                    return packed.offset if packed is not None else None
    return None


def _blob_tensor(
    reader: MessageReader,
    blob: Field,
    name: str,
    dtype: str,
    shape: tuple[int, ...],
    expected: int,
    walk: _Walk,
    role: str,
) -> None:
    ref = reader.submessage(blob)
    file_name = ""
    meta_offset: int | None = None
    for f in ref.fields():
        if f.number == 1 and f.wire_type == LEN:
            file_name = ref.string(f) or ""
        elif f.number == 2 and f.wire_type == VARINT:
            meta_offset = f.value
    store = _open_blob(file_name, walk)
    if store is None or meta_offset is None:
        walk.add(TensorInfo(name, dtype, shape, expected, file_name or None, None, role))
        return
    try:
        raw = read_exact(store.source, meta_offset, _BLOB_METADATA.size, "blob metadata")
    except FormatError:
        walk.warn(f"{name}: blob metadata at offset {meta_offset} lies past the end of {store.label}")
        walk.add(TensorInfo(name, dtype, shape, expected, store.label, None, role))
        return
    if meta_offset in store.seen:
        # Multi-function programs point several consts at one stored blob: count the data once.
        walk.shared_blob_references += 1
        return
    store.seen.add(meta_offset)
    sentinel, blob_dtype, size, data_offset, _padding = _BLOB_METADATA.unpack(raw)
    if sentinel != BLOB_SENTINEL:
        walk.warn(f"{name}: no blob metadata (sentinel 0xDEADBEEF) at offset {meta_offset} of {store.label}")
        walk.add(TensorInfo(name, dtype, shape, expected, store.label, None, role))
        return
    stored = BLOB_DTYPES.get(blob_dtype, f"BLOB_TYPE_{blob_dtype}")
    if stored != dtype:
        walk.warn(f"{name}: program says {dtype} but the blob stores {stored}")
    if size != expected:
        walk.warn(f"{name}: blob holds {size} bytes but {dtype}{list(shape)} needs {expected}")
    if data_offset + size > store.source.size:
        walk.warn(
            f"{name}: blob data [{data_offset}, {data_offset + size}) lies past the end of {store.label}"
        )
    walk.add(TensorInfo(name, dtype, shape, size, store.label, data_offset, role))


def _open_blob(file_name: str, walk: _Walk) -> _Blob | None:
    if file_name in walk.blobs:
        return walk.blobs[file_name]
    walk.blobs[file_name] = None
    relative = file_name[len(_WEIGHTS_PREFIX) :] if file_name.startswith(_WEIGHTS_PREFIX) else file_name
    rel = Path(relative)
    if not relative or rel.is_absolute() or ".." in rel.parts:
        walk.warn(f"weight blob path {file_name!r} escapes the model folder: not read")
        return None
    path = walk.model_dir / rel
    label = str(path.relative_to(walk.package)) if walk.package else str(path)
    if not path.is_file():
        walk.warn(f"weight blob {label} is missing: blob tensors have no offsets")
        return None
    store = _Blob(open_source(path), label)
    walk.blobs[file_name] = store
    if all(f["path"] != label for f in walk.info.files):
        walk.info.files.append({"path": label, "size_bytes": store.source.size})
    try:
        count, version = _BLOB_HEADER.unpack(read_exact(store.source, 0, _BLOB_HEADER.size, "blob header"))
    except FormatError:
        walk.warn(f"weight blob {label} is shorter than its 64-byte header")
        return store
    if version != 2:
        walk.warn(f"weight blob {label} has storage version {version}, not 2")
    walk.info.metadata.setdefault("weight_blobs", {})[label] = {"blobs": count, "version": version}
    return store


# --- entry points ---------------------------------------------------------------------------------


def _inspect_spec(info: ModelInfo, spec: Path, label: str, package: Path | None) -> ModelInfo:
    walk = _Walk(info, label, spec.parent, package)
    try:
        with open_source(spec) as source:
            if not package:
                info.files.append({"path": label, "size_bytes": source.size})
            summary = _read_model(MessageReader(CachedSource(source)), walk, "", 0)
    finally:
        walk.close()
    if walk.string_constants:
        summary["string_constants"] = walk.string_constants
    if walk.shared_blob_references:
        summary["shared_blob_references"] = walk.shared_blob_references
    first = ("specification_version", "model_type", "is_updatable")
    info.metadata = {
        **{k: summary[k] for k in first if k in summary},
        **{k: v for k, v in summary.items() if k not in first},
        **info.metadata,
    }
    user = summary.get("metadata", {}).get("userDefined", {})
    if "com.github.apple.coremltools.version" in user:
        info.metadata["coremltools_version"] = user["com.github.apple.coremltools.version"]
    if walk.quantized:
        (method, bits), _ = walk.quantized.most_common(1)[0]
        plain = sum(
            t.numel for i, t in enumerate(info.tensors) if t.role != "quant-aux" and i not in walk.compressed
        )
        info.quantization = {
            "method": f"coreml {method}",
            "bits": bits or None,
            "group_size": None,
            "quantized_tensors": sum(walk.quantized.values()),
            "logical_parameter_count": plain + walk.dense_elements,
        }
    return info


def inspect_mlmodel(path: Path, ident: Identification) -> ModelInfo:
    return _inspect_spec(ModelInfo(str(path), "coreml-mlmodel"), path, str(path), None)


def inspect_mlpackage(path: Path, ident: Identification) -> ModelInfo:
    info = ModelInfo(str(path), "coreml-mlpackage")
    root = ident.details.get("root_model")
    spec = path / "Data" / str(root) if root else None
    if spec is None or not spec.is_file():
        raise FormatError(f"root model Data/{root} named by Manifest.json is missing", path)
    listed = 0
    for file in sorted(path.rglob("*")):
        if file.is_file() and listed < _MAX_FILES_LISTED:
            info.files.append({"path": str(file.relative_to(path)), "size_bytes": file.stat().st_size})
            listed += 1
    info.metadata["root_model"] = f"Data/{root}"
    return _inspect_spec(info, spec, f"Data/{root}", path)


INSPECTS = {"coreml-mlmodel": inspect_mlmodel, "coreml-mlpackage": inspect_mlpackage}
