"""The classic Model specification walk: Model, ModelDescription and FeatureDescription, pipelines and
GLMs; neural networks, ML programs and tree ensembles are read by their own modules."""

from __future__ import annotations

from typing import Any

from ...model import TensorInfo
from ...protowire import LEN, VARINT, Field, MessageReader
from .detect import MODEL_TYPES
from .mil import read_program
from .neural_network import read_neural_network
from .tree_ensemble import read_tree_ensemble
from .walk import MAX_DEPTH, Walk, int64, packed_varints

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


def read_model(reader: MessageReader, walk: Walk, prefix: str, depth: int) -> dict[str, Any]:
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
        summary.update(read_neural_network(body, walk, prefix, depth))
    elif type_field.number == 502:
        summary.update(read_program(body, walk, prefix, depth))
    elif type_field.number in (200, 201, 202):
        summary["pipeline"] = _pipeline(body, walk, prefix, depth, nested=type_field.number != 202)
    elif type_field.number in (302, 402):
        summary["tree_ensemble"] = read_tree_ensemble(body)
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
            out["shape"].extend(int64(v) for v in packed_varints(reader, f))
        elif f.number == 2 and f.wire_type == VARINT:
            out["data_type"] = ARRAY_DTYPES.get(f.value, f.value)
        elif f.number in (21, 31):
            out["flexible_shape"] = "enumerated" if f.number == 21 else "range"
    return out


def _pipeline(
    reader: MessageReader, walk: Walk, prefix: str, depth: int, nested: bool
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
        summary = read_model(reader.submessage(f), walk, f"{prefix}{stage}.", depth + 1)
        stages.append({"name": stage, **{k: v for k, v in summary.items() if k not in ("inputs", "outputs")}})
    return stages


def _glm(reader: MessageReader, walk: Walk, prefix: str) -> dict[str, Any]:
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
