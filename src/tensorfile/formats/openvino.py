"""OpenVINO IR: an XML <net> graph (.xml) whose weights live in a .bin of the same stem."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Any

from ..dtypes import DType, UnknownDType, lookup, padded_nbytes
from ..errors import FormatError
from ..model import CERTAIN, STRONG, Detection, Identification, ModelInfo, TensorInfo
from ..probe import FileProbe
from ..source import open_source
from ..xmlhead import parse_xml, read_root


def detect_file(probe: FileProbe) -> Detection | None:
    root = read_root(probe.head)
    if root is None or root.tag != "net" or root.namespace:
        return None
    if "layers" not in root.children and "version" not in root.attributes:
        return None
    version = root.attributes.get("version")
    details: dict[str, Any] = {"ir_version": version, "name": root.attributes.get("name")}
    evidence = [f"XML root <net> with IR version {version}"]
    if "layers" in root.children:
        evidence.append("<layers> and <edges> graph")
    warnings: list[str] = []
    weights = probe.sibling(probe.path.with_suffix(".bin").name)
    if weights:
        details["weights_file"] = weights.name
        evidence.append(f"weights file {weights.name}")
    else:
        warnings.append(f"weights file {probe.path.with_suffix('.bin').name} not found beside the XML")
    confidence = CERTAIN if version and "layers" in root.children else STRONG
    return Detection("openvino-ir", confidence, evidence, details, warnings)


def detect_weights_bin(probe: FileProbe) -> Detection | None:
    """A .bin whose same-stem .xml is an OpenVINO graph: the weights half of an IR pair."""
    if probe.ext != ".bin":
        return None
    xml = probe.sibling(probe.path.with_suffix(".xml").name)
    if xml is None:
        return None
    try:
        with xml.open("rb") as fh:
            root = read_root(fh.read(4096))
    except OSError:
        return None
    if root is None or root.tag != "net":
        return None
    return Detection(
        "openvino-ir",
        STRONG,
        [f"raw weights beside OpenVINO graph {xml.name}"],
        {"graph_file": xml.name, "part": "weights"},
    )


# --- inspect --------------------------------------------------------------------------------------

_MAX_RT_INFO = 256  # rt_info entries kept; LLM exports carry long chat templates and tokenizer settings
_MAX_RT_VALUE = 4096

# Low-bit weight types that mean the IR was weight-compressed (NNCF compress_weights, optimum-intel).
_COMPRESSED = {"U1", "U2", "U3", "U4", "U6", "U8", "I4", "I8", "NF4", "F4", "F8_E4M3", "F8_E5M2"}
_FRAMEWORK_BY_EXT = {
    ".onnx": "onnx",
    ".pb": "tensorflow",
    ".tflite": "tflite",
    ".pdmodel": "paddle",
    ".pt": "pytorch",
    ".pth": "pytorch",
    ".caffemodel": "caffe",
}


def element_type_dtype(element_type: str) -> DType | None:
    """The table row for an OpenVINO element_type ("f32", "u3", "nf4", "f8e4m3", "boolean", "string"),
    or None for one it does not know ("dynamic", "undefined", a newer type)."""
    try:
        d = lookup(element_type)
    except UnknownDType:
        return None
    return None if d.is_quantized else d  # ggml names are not OpenVINO element types


def packed_size(dtype: DType | None, numel: int) -> int | None:
    """Bytes OpenVINO stores for `numel` elements (Constant::get_byte_size): sub-byte types fill whole
    packing groups, so u3 takes 3 bytes per 8 values and u6 3 per 4; None for strings and unknowns."""
    if dtype is None or not dtype.fixed_size:
        return None
    return padded_nbytes(dtype, numel, "block")


def _port_type(precision: str | None) -> str | None:
    """Port precision ("FP32", "I64", "BOOL") as the element_type spelling ("f32", "i64", "boolean")."""
    if not precision:
        return None
    p = precision.lower()
    if p.startswith("fp"):
        return "f" + p[2:]
    return "boolean" if p == "bool" else p


def _parse_shape(text: str) -> list[int | str]:
    """'3, 2' -> [3, 2]; '' -> []; dynamic dims ('?', '-1', '1..10') stay as text."""
    dims: list[int | str] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            dims.append(int(part))
        except ValueError:
            dims.append(part)
    return dims


@dataclass
class _Port:
    id: str
    precision: str | None
    names: str | None
    dims: list[int] = field(default_factory=list)


@dataclass
class _Layer:
    id: str
    name: str
    type: str
    version: str | None
    attrs: dict[str, str]
    depth: int  # 0 for the main graph, 1+ inside TensorIterator/Loop/If bodies
    data: dict[str, str] = field(default_factory=dict)
    inputs: list[_Port] = field(default_factory=list)
    outputs: list[_Port] = field(default_factory=list)
    blobs: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # IR v7 <blobs> children


@dataclass
class _ConstRef:
    """Where one stored constant lives: a Const layer (IR v10+) or a layer's <blobs> entry (IR v7)."""

    name: str
    element_type: str
    dims: list[int | str] | None  # None: not declared (v7 weights/biases), derived from the size
    shape_text: str
    offset: str | None
    size: str | None


class _IrReader:
    """Collects what inspect needs from an IR .xml in one streaming pass."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.net: dict[str, str] = {}
        self.layer_stack: list[_Layer] = []
        self.port: _Port | None = None
        self.port_side: str | None = None
        self.in_dim = False
        self.dim_text: list[str] = []
        self.consts: list[_ConstRef] = []
        self.params: list[_Layer] = []
        self.results: list[_Layer] = []
        self.histogram: Counter[str] = Counter()
        self.opsets: Counter[str] = Counter()
        self.body_layers = 0
        self.out_names: dict[tuple[str, str], str] = {}  # (layer id, port id) -> tensor names, main graph
        self.result_sources: dict[str, tuple[str, str]] = {}  # Result id -> (from layer, from port)
        self.result_ids: set[str] = set()
        self.edges = 0
        self.rt_info: dict[str, str] = {}
        self.rt_path: list[str] = []
        self.rt_depth = 0  # stack depth of the <rt_info>/<meta_data> being read, 0 when outside
        self.fake_quantize_levels: Counter[str] = Counter()

    def start(self, name: str, attrs: dict[str, str]) -> None:
        parent = self.stack[-1] if self.stack else None
        self.stack.append(name)
        depth = len(self.stack)
        if depth == 1:
            if name != "net":
                raise FormatError(f"root element is <{name}>, not <net>")
            self.net = dict(attrs)
            return
        if self.rt_depth:
            self._rt_entry(name, attrs)
            return
        if depth == 2 and name in ("rt_info", "meta_data"):
            self.rt_depth = depth
            self.rt_path = [] if name == "rt_info" else ["meta_data"]
            return
        if name == "layer" and parent == "layers":
            self._open_layer(attrs)
        elif name == "data" and parent == "layer" and self.layer_stack:
            self.layer_stack[-1].data = dict(attrs)
        elif parent == "blobs" and len(self.stack) >= 3 and self.stack[-3] == "layer" and self.layer_stack:
            self.layer_stack[-1].blobs.append((name, dict(attrs)))
        elif name == "port" and parent in ("input", "output") and self._in_layer_ports():
            self.port = _Port(attrs.get("id", ""), attrs.get("precision"), attrs.get("names"))
            self.port_side = parent
        elif name == "dim" and self.port is not None:
            self.in_dim = True
            self.dim_text = []
        elif name == "edge" and parent == "edges" and depth == 3:
            self.edges += 1
            to = attrs.get("to-layer", "")
            if to in self.result_ids:
                self.result_sources[to] = (attrs.get("from-layer", ""), attrs.get("from-port", ""))

    def _in_layer_ports(self) -> bool:
        # <layer><input|output><port>: the stack ends with layer, input/output, port.
        return len(self.stack) >= 3 and self.stack[-3] == "layer" and bool(self.layer_stack)

    def _open_layer(self, attrs: dict[str, str]) -> None:
        depth = len(self.layer_stack)
        layer = _Layer(
            attrs.get("id", ""),
            attrs.get("name", ""),
            attrs.get("type", ""),
            attrs.get("version"),
            dict(attrs),
            depth,
        )
        self.layer_stack.append(layer)
        if depth:
            self.body_layers += 1
        else:
            self.histogram[layer.type] += 1
            if layer.version:
                self.opsets[layer.version] += 1
            if layer.type == "Result":
                self.result_ids.add(layer.id)

    def end(self, name: str) -> None:
        depth = len(self.stack)
        self.stack.pop()
        if self.rt_depth:
            if depth == self.rt_depth:
                self.rt_depth = 0
            elif self.rt_path:
                self.rt_path.pop()
            return
        if name == "dim" and self.in_dim and self.port is not None:
            self.in_dim = False
            text = "".join(self.dim_text).strip()
            try:
                self.port.dims.append(int(text))
            except ValueError:
                self.port.dims.append(-1)
        elif name == "port" and self.port is not None and len(self.stack) >= 2 and self.stack[-2] == "layer":
            layer = self.layer_stack[-1]
            (layer.inputs if self.port_side == "input" else layer.outputs).append(self.port)
            self.port = None
        elif name == "layer" and self.layer_stack and (not self.stack or self.stack[-1] == "layers"):
            self._close_layer(self.layer_stack.pop())

    def _close_layer(self, layer: _Layer) -> None:
        qualified = "/".join([*(outer.name for outer in self.layer_stack), layer.name])
        data = layer.data
        if layer.type == "Const" and (data or not layer.blobs):
            dims = _parse_shape(data.get("shape", ""))
            self.consts.append(
                _ConstRef(
                    qualified,
                    data.get("element_type", ""),
                    dims,
                    data.get("shape", ""),
                    data.get("offset"),
                    data.get("size"),
                )
            )
        for blob, attrs in layer.blobs:
            # IR v7 stored weights per layer: <blobs><weights|biases|custom offset= size=/></blobs>.
            port = layer.outputs[0] if layer.outputs else None
            precision = (
                attrs.get("precision") or layer.attrs.get("precision") or (port.precision if port else None)
            )
            declared: list[int | str] | None = list(port.dims) if blob == "custom" and port else None
            label = qualified if blob == "custom" else f"{qualified}.{blob}"
            shape_text = ",".join(map(str, declared)) if declared is not None else ""
            self.consts.append(
                _ConstRef(
                    label,
                    _port_type(precision) or "",
                    declared,
                    shape_text,
                    attrs.get("offset"),
                    attrs.get("size"),
                )
            )
        if layer.depth:
            return
        if layer.type in ("Parameter", "Input"):  # "Input" in IR v7
            self.params.append(layer)
        elif layer.type == "Result":
            self.results.append(layer)
        elif layer.type == "FakeQuantize":
            self.fake_quantize_levels[layer.data.get("levels", "?")] += 1
        for port in layer.outputs:
            if port.names:
                self.out_names[(layer.id, port.id)] = port.names

    def text(self, data: str) -> None:
        if self.in_dim:
            self.dim_text.append(data)

    def _rt_entry(self, name: str, attrs: dict[str, str]) -> None:
        # <info name="X" value="Y"/> (IR v11) or <X value="Y"/> nested in groups (conversion_parameters…).
        key = attrs["name"] if name == "info" and "name" in attrs else name
        self.rt_path.append(key)
        if "value" in attrs and len(self.rt_info) < _MAX_RT_INFO:
            self.rt_info[".".join(self.rt_path)] = attrs["value"][:_MAX_RT_VALUE]


def _graph_files(path: Path, ident: Identification) -> list[tuple[Path, Path]]:
    """(xml, bin) pairs to read for the path inspect was given."""
    details = ident.details
    if path.is_dir():
        listed = [n for n in details.get("weights_files", []) if str(n).lower().endswith(".xml")]
        names = listed or sorted(p.name for p in path.glob("*.xml"))
        if not names:
            raise FormatError("folder holds no OpenVINO .xml graph", path)
        return [(path / n, (path / n).with_suffix(".bin")) for n in names]
    if path.suffix.lower() == ".bin" or details.get("part") == "weights":
        graph = details.get("graph_file") or path.with_suffix(".xml").name
        return [(path.with_name(str(graph)), path)]
    weights = details.get("weights_file") or path.with_suffix(".bin").name
    return [(path, path.with_name(str(weights)))]


def inspect_ir(path: Path, ident: Identification) -> ModelInfo:
    pairs = _graph_files(path, ident)
    if len(pairs) == 1:
        return _inspect_pair(path, *pairs[0], folder=path if path.is_dir() else None)
    # optimum-intel folders hold the model beside tokenizer/detokenizer IRs: one component each.
    info = ModelInfo(str(path), "openvino-ir")
    for xml, weights in pairs:
        part = _inspect_pair(xml, xml, weights, folder=path)
        info.components[xml.stem] = part
        info.files.extend(part.files)
        info.warnings.extend(f"{xml.stem}: {w}" for w in part.warnings)
        for t in part.tensors:
            info.tensors.append(
                TensorInfo(f"{xml.stem}/{t.name}", t.dtype, t.shape, t.nbytes, t.file, t.offset, t.role)
            )
    info.metadata = {"graphs": [xml.name for xml, _ in pairs]}
    return info


def _inspect_pair(shown: Path, xml: Path, weights: Path, folder: Path | None) -> ModelInfo:
    info = ModelInfo(str(shown), "openvino-ir")
    reader = _IrReader()
    with open_source(xml) as source:
        parse_xml(source, reader)
        xml_size = source.size
    xml_label = xml.name if folder else str(xml)
    bin_label = weights.name if folder else str(weights)
    info.files.append({"path": xml_label, "size_bytes": xml_size})
    bin_size: int | None = None
    try:
        bin_size = weights.stat().st_size
        info.files.append({"path": bin_label, "size_bytes": bin_size})
    except OSError:
        if reader.consts:
            info.warnings.append(f"weights file {weights.name} is missing: constant offsets are unchecked")
    info.tensors, warnings = _const_tensors(reader, bin_label, bin_size)
    info.warnings.extend(warnings)
    info.metadata = _metadata(reader, info)
    info.quantization = _quantization(reader, info)
    return info


def _const_tensors(
    reader: _IrReader, bin_label: str, bin_size: int | None
) -> tuple[list[TensorInfo], list[str]]:
    tensors: list[TensorInfo] = []
    warnings: list[str] = []
    spans: dict[tuple[int, int], str] = {}
    for ref in reader.consts:
        name, element_type = ref.name, ref.element_type
        row = element_type_dtype(element_type)
        dtype = row.name if row is not None else element_type.strip().upper()
        bits = row.bits if row is not None and row.fixed_size else None
        try:
            offset: int | None = int(ref.offset or "")
            size = int(ref.size or "")
        except ValueError:
            offset, size = None, None
        dims = ref.dims
        if dims is None:  # IR v7 weights/biases: one dimension, as many elements as the bytes hold
            dims = [size * 8 // bits] if size is not None and bits else []
        if any(not isinstance(d, int) or d < 0 for d in dims):
            warnings.append(f"Const {name!r} has an invalid shape {ref.shape_text!r}")
            continue
        shape = tuple(int(d) for d in dims)
        numel = prod(shape)
        if offset is None or size is None:
            warnings.append(f"Const {name!r} has no valid offset/size attributes")
            offset, size = None, packed_size(row, numel) or 0
        if row is None:
            warnings.append(f"Const {name!r} has element type {element_type!r}, unknown to this reader")
        expected = packed_size(row, numel)
        if expected is not None and size != expected:
            warnings.append(
                f"Const {name!r}: size {size} bytes but {element_type}{list(shape)} needs {expected}"
            )
        if offset is not None:
            if offset < 0 or size < 0:
                warnings.append(f"Const {name!r} has a negative offset or size")
            elif bin_size is not None and offset + size > bin_size:
                warnings.append(
                    f"Const {name!r} data [{offset}, {offset + size}) lies past the end of "
                    f"the {bin_size}-byte weights file"
                )
            else:
                spans.setdefault((offset, size), name)
        tensors.append(TensorInfo(name, dtype, shape, max(size, 0), bin_label, offset, "weight"))
    # OpenVINO shares one span among identical constants, so only partial overlaps are lies.
    reach, reach_name = 0, ""
    for (begin, size), name in sorted(spans.items()):
        end = begin + size
        if begin < reach and size:
            warnings.append(f"constants {reach_name!r} and {name!r} overlap in the weights file")
            break
        if end > reach:
            reach, reach_name = end, name
    return tensors, warnings


def _io(layer: _Layer, name: str, port: _Port | None) -> dict[str, Any]:
    precision = port.precision if port and port.precision else layer.attrs.get("precision")
    element_type = layer.data.get("element_type") or _port_type(precision)
    if "shape" in layer.data:
        shape: list[int | str] = _parse_shape(layer.data["shape"])
    else:
        shape = list(port.dims) if port else []
    return {"name": name, "element_type": element_type, "shape": shape}


def _metadata(reader: _IrReader, info: ModelInfo) -> dict[str, Any]:
    net = reader.net
    meta: dict[str, Any] = {}
    version = net.get("version")
    meta["ir_version"] = int(version) if version and version.isdigit() else version
    meta["model_name"] = net.get("name")
    meta["layer_count"] = sum(reader.histogram.values())
    meta["layer_types"] = dict(reader.histogram.most_common())
    meta["opsets"] = dict(reader.opsets.most_common())
    if reader.body_layers:
        meta["body_layer_count"] = reader.body_layers
    meta["edge_count"] = reader.edges
    inputs = []
    for layer in reader.params:
        port = layer.outputs[0] if layer.outputs else None
        names = port.names if port and port.names else layer.name
        inputs.append(_io(layer, names.split(",")[0].strip(), port))
    meta["inputs"] = inputs
    outputs = []
    for layer in reader.results:
        source = reader.result_sources.get(layer.id)
        tensor_names = layer.attrs.get("output_names") or (reader.out_names.get(source) if source else None)
        port = layer.inputs[0] if layer.inputs else None
        outputs.append(_io(layer, (tensor_names or layer.name).split(",")[0].strip(), port))
    meta["outputs"] = outputs
    rt = reader.rt_info
    if rt:
        meta["rt_info"] = rt
        runtime = (
            rt.get("Runtime_version") or rt.get("OpenVINO Runtime") or rt.get("meta_data.Runtime_version")
        )
        if runtime:
            meta["runtime_version"] = runtime
        mo = rt.get("MO_version") or rt.get("meta_data.MO_version")
        if mo:
            meta["mo_version"] = mo
        conversion = {k.split(".", 1)[1]: v for k, v in rt.items() if k.startswith("conversion_parameters.")}
        cli = {k.split(".", 2)[2]: v for k, v in rt.items() if k.startswith("meta_data.cli_parameters.")}
        if conversion or cli:
            meta["conversion_parameters"] = conversion or cli
        framework = (conversion or cli).get("framework")
        model_file = (conversion or cli).get("input_model", "")
        if not framework and model_file:
            framework = _FRAMEWORK_BY_EXT.get(Path(model_file.strip("[]'\" ")).suffix.lower())
        if framework:
            meta["framework"] = framework
    return meta


def _quantization(reader: _IrReader, info: ModelInfo) -> dict[str, Any] | None:
    rt = reader.rt_info
    by_dtype = info.parameters_by_dtype
    low = {d: n for d, n in by_dtype.items() if d in _COMPRESSED}
    if reader.fake_quantize_levels:
        levels = reader.fake_quantize_levels.most_common(1)[0][0]
        bits = int(levels).bit_length() - 1 if levels.isdigit() and int(levels) > 1 else None
        return {
            "method": "FakeQuantize",
            "bits": bits,
            "group_size": None,
            "fake_quantize_layers": sum(reader.fake_quantize_levels.values()),
            "logical_parameter_count": info.parameter_count,
        }
    if not low or sum(low.values()) * 2 < info.parameter_count:
        return None
    dominant = max(low, key=lambda d: low[d])
    mode = rt.get("nncf.weight_compression.mode")
    group = rt.get("nncf.weight_compression.group_size")
    bits = lookup(dominant).bits
    return {
        "method": f"nncf weight compression ({mode})" if mode else "weight compression",
        "bits": bits,
        "group_size": int(group) if group and group.lstrip("-").isdigit() else None,
        # OpenVINO shapes count logical elements, so what is stored is the logical count.
        "logical_parameter_count": info.parameter_count,
        "compressed_parameters": dict(low),
    }


INSPECTS = {"openvino-ir": inspect_ir}
