"""Core ML detection: a `.mlmodel` is a protobuf Model with one model-type field; an `.mlpackage` a
folder whose Manifest.json names its root model."""

from __future__ import annotations

from typing import Any

from ...model import CERTAIN, STRONG, Detection
from ...probe import DirProbe, FileProbe
from ...protowire import LEN, VARINT

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
