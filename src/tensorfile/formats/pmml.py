"""PMML: an XML document whose root is <PMML> in a dmg.org namespace."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..model import CERTAIN, STRONG, Detection, Identification, ModelInfo, TensorInfo
from ..probe import FileProbe
from ..source import open_source
from ..xmlhead import parse_xml, read_root


def detect_file(probe: FileProbe) -> Detection | None:
    root = read_root(probe.head, max_children=16)
    if root is None or root.tag != "PMML":
        return None
    details: dict[str, Any] = {"pmml_version": root.attributes.get("version"), "namespace": root.namespace}
    evidence = [f"XML root <PMML> version {root.attributes.get('version')}"]
    if root.namespace:
        evidence.append(f"namespace {root.namespace}")
    models = [
        c for c in root.children if c.endswith("Model") or c in ("MiningModel", "Scorecard", "NeuralNetwork")
    ]
    if models:
        details["model_elements"] = models
    confidence = CERTAIN if root.namespace and "dmg.org" in root.namespace else STRONG
    return Detection("pmml", confidence, evidence, details)


# --- inspect --------------------------------------------------------------------------------------

# The model elements of PMML 4.x (dmg.org/pmml/v4-4-1/GeneralStructure.html).
MODEL_ELEMENTS = frozenset(
    {
        "AnomalyDetectionModel",
        "AssociationModel",
        "BayesianNetworkModel",
        "BaselineModel",
        "ClusteringModel",
        "GaussianProcessModel",
        "GeneralRegressionModel",
        "MiningModel",
        "NaiveBayesModel",
        "NearestNeighborModel",
        "NeuralNetwork",
        "RegressionModel",
        "RuleSetModel",
        "SequenceModel",
        "Scorecard",
        "SupportVectorMachineModel",
        "TextModel",
        "TimeSeriesModel",
        "TreeModel",
    }
)
# Elements worth counting inside a model: its fitted structure (tree nodes, coefficients, neurons…).
_COUNTED = frozenset(
    {
        "Node",
        "Segment",
        "RegressionTable",
        "NumericPredictor",
        "CategoricalPredictor",
        "PredictorTerm",
        "PCell",
        "Parameter",
        "NeuralLayer",
        "Neuron",
        "Con",
        "SupportVectorMachine",
        "SupportVector",
        "VectorInstance",
        "Cluster",
        "SimpleRule",
        "CompoundRule",
        "Characteristic",
        "Attribute",
        "AssociationRule",
        "BayesInput",
    }
)
_TARGET_USAGE = ("target", "predicted")
_MAX_LISTED = 1000


@dataclass
class _Model:
    element: str
    attrs: dict[str, str]
    depth: int
    inputs: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    other_fields: dict[str, list[str]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    nested: Counter[str] = field(default_factory=Counter)


@dataclass
class _Layer:
    neurons: int = 0
    biases: int = 0
    cons: int = 0
    fan_in: set[int] = field(default_factory=set)


class _PmmlReader:
    """What inspect reports, gathered in one streaming pass; memory is bounded by the lists kept."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.root: dict[str, str] = {}
        self.header: dict[str, Any] = {}
        self.dictionary: dict[str, str] = {}
        self.fields: list[dict[str, Any]] = []
        self.field_count = 0
        self.derived = 0
        self.models: list[_Model] = []
        self.model_stack: list[_Model] = []  # the top-level model and nested ones (segments)
        self.layers: list[tuple[str, _Layer]] = []  # NeuralLayer of every NeuralNetwork, in order
        self.networks = 0
        self.layer_index: Counter[str] = Counter()  # NeuralLayers seen per network
        self.neuron_cons = 0
        self.text: list[str] | None = None

    def start(self, name: str, attrs: dict[str, str]) -> None:
        parent = self.stack[-1] if self.stack else None
        self.stack.append(name)
        depth = len(self.stack)
        if depth == 1:
            if name != "PMML":
                raise FormatError(f"root element is <{name}>, not <PMML>")
            self.root = dict(attrs)
        elif parent == "PMML" and name == "Header":
            self.header.update(
                {k: v for k, v in attrs.items() if k in ("copyright", "description", "modelVersion")}
            )
        elif parent == "Header" and name == "Application":
            self.header["application"] = {"name": attrs.get("name"), "version": attrs.get("version")}
        elif parent == "Header" and name == "Timestamp":
            self.text = []
        elif parent == "PMML" and name == "DataDictionary":
            self.dictionary = dict(attrs)
        elif parent == "DataDictionary" and name == "DataField":
            self.field_count += 1
            if len(self.fields) < _MAX_LISTED:
                keep = ("name", "optype", "dataType")
                self.fields.append({k: attrs.get(k) for k in keep} | {"values": 0})
        elif parent == "DataField" and name == "Value" and self.fields and depth == 4:
            self.fields[-1]["values"] += 1
        elif parent == "TransformationDictionary" and name == "DerivedField":
            self.derived += 1
        elif name in MODEL_ELEMENTS and (parent == "PMML" or self.model_stack):
            self._open_model(name, attrs, depth)
        elif self.model_stack:
            self._in_model(name, parent, attrs, depth)

    def _open_model(self, name: str, attrs: dict[str, str], depth: int) -> None:
        if self.model_stack:
            self.model_stack[0].nested[name] += 1
        model = _Model(name, dict(attrs), depth)
        if not self.model_stack:
            self.models.append(model)
        self.model_stack.append(model)
        if name == "NeuralNetwork":
            self.networks += 1

    def _in_model(self, name: str, parent: str | None, attrs: dict[str, str], depth: int) -> None:
        model = self.model_stack[-1]
        top = self.model_stack[0]
        if name in _COUNTED:
            top.counts[name] += 1
        if model is top and depth == top.depth + 2 and parent == "MiningSchema" and name == "MiningField":
            usage = attrs.get("usageType", "active")
            field_name = attrs.get("name", "")
            bucket = top.inputs if usage == "active" else top.targets if usage in _TARGET_USAGE else None
            if bucket is None:
                bucket = top.other_fields.setdefault(usage, [])
            if len(bucket) < _MAX_LISTED:
                bucket.append(field_name)
        elif model is top and depth == top.depth + 2 and parent == "Output" and name == "OutputField":
            if len(top.outputs) < _MAX_LISTED:
                top.outputs.append(attrs.get("name", ""))
        elif model.element == "NeuralNetwork":
            if name == "NeuralLayer":
                label = model.attrs.get("modelName") or f"NeuralNetwork{self.networks - 1}"
                self.layers.append((f"{label}.layer{self.layer_index[label]}", _Layer()))
                self.layer_index[label] += 1
            elif name == "Neuron" and self.layers:
                layer = self.layers[-1][1]
                layer.neurons += 1
                layer.biases += "bias" in attrs
                self.neuron_cons = 0
            elif name == "Con" and parent == "Neuron" and self.layers:
                self.layers[-1][1].cons += 1
                self.neuron_cons += 1

    def end(self, name: str) -> None:
        depth = len(self.stack)
        self.stack.pop()
        if self.text is not None and name == "Timestamp":
            self.header["timestamp"] = "".join(self.text).strip()[:200]
            self.text = None
        elif (
            self.model_stack and self.model_stack[-1].depth == depth and name == self.model_stack[-1].element
        ):
            self.model_stack.pop()
        elif name == "Neuron" and self.layers and self.model_stack:
            self.layers[-1][1].fan_in.add(self.neuron_cons)

    def text_data(self, data: str) -> None:
        if self.text is not None and sum(map(len, self.text)) < 1000:
            self.text.append(data)


class _Handler:
    def __init__(self, reader: _PmmlReader) -> None:
        self.start = reader.start
        self.end = reader.end
        self.text = reader.text_data


def _layer_tensors(layers: list[tuple[str, _Layer]]) -> list[TensorInfo]:
    """NeuralNetwork connection weights and neuron biases, one weight and one bias tensor per layer.

    PMML stores them as decimal text, so there is no file offset; bytes are those of F64 values.
    """
    tensors: list[TensorInfo] = []
    for name, layer in layers:
        if layer.cons:
            fan_in = next(iter(layer.fan_in)) if len(layer.fan_in) == 1 else None
            shape = (layer.neurons, fan_in) if fan_in else (layer.cons,)
            tensors.append(TensorInfo(f"{name}.weight", "F64", shape, layer.cons * 8))
        if layer.biases:
            tensors.append(TensorInfo(f"{name}.bias", "F64", (layer.biases,), layer.biases * 8))
    return tensors


def inspect_pmml(path: Path, ident: Identification) -> ModelInfo:
    reader = _PmmlReader()
    with open_source(path) as source:
        parse_xml(source, _Handler(reader))
        size = source.size
    info = ModelInfo(str(path), "pmml", files=[{"path": str(path), "size_bytes": size}])
    info.tensors = _layer_tensors(reader.layers)
    meta: dict[str, Any] = {
        "pmml_version": reader.root.get("version"),
        "namespace": ident.details.get("namespace"),
    }
    meta.update(reader.header)
    meta["data_field_count"] = reader.field_count
    declared = reader.dictionary.get("numberOfFields")
    if declared is not None and declared.isdigit() and int(declared) != reader.field_count:
        info.warnings.append(
            f"DataDictionary numberOfFields says {declared} but {reader.field_count} DataFields follow"
        )
    meta["data_fields"] = reader.fields
    if reader.derived:
        meta["derived_fields"] = reader.derived
    meta["model_elements"] = [m.element for m in reader.models]
    models = []
    for m in reader.models:
        entry: dict[str, Any] = {"element": m.element}
        for key in ("modelName", "functionName", "algorithmName", "modelType", "multipleModelMethod"):
            if key in m.attrs:
                entry[key] = m.attrs[key]
        entry["input_fields"] = m.inputs
        entry["target_fields"] = m.targets
        entry.update({f"{usage}_fields": names for usage, names in m.other_fields.items()})
        if m.outputs:
            entry["output_fields"] = m.outputs
        if m.counts:
            entry["counts"] = dict(m.counts.most_common())
        if m.nested:
            entry["nested_models"] = dict(m.nested.most_common())
        models.append(entry)
    meta["models"] = models
    if models:  # the first model's fields, at top level: what a caller usually wants
        meta["function_name"] = models[0].get("functionName")
        meta["input_fields"] = models[0]["input_fields"]
        meta["target_fields"] = models[0]["target_fields"]
    if not reader.models:
        info.warnings.append("PMML document holds no model element")
    info.metadata = meta
    return info


INSPECTS = {"pmml": inspect_pmml}
