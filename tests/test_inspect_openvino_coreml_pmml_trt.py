"""inspect for OpenVINO IR, Core ML, PMML and TensorRT engines.

Ground truth: tests/fixtures/heavy/MANIFEST.json (what openvino, coremltools and sklearn2pmml said about
the files they wrote) and, where present, the shared corpus of real files other people made. Handmade
files cover what those do not: sub-byte element types, quantized and nested Core ML networks, lies,
hostile XML and huge (sparse) weight files.
"""

from __future__ import annotations

import json
import shutil
import struct
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tensorfile.errors import FormatError
from tensorfile.inspection import inspect
from tensorfile.model import ModelInfo

from .conftest import CORPUS, heavy
from .pbwire import varint as _varint

MANIFEST: dict[str, dict[str, Any]] = {
    f["path"]: f
    for f in json.loads((Path(__file__).parent / "fixtures/heavy/MANIFEST.json").read_text())["fixtures"]
}
CORPUS_MANIFEST = CORPUS / "formats" / "manifest.json"
CORPUS_ENTRIES: list[dict[str, Any]] = (
    json.loads(CORPUS_MANIFEST.read_text()) if CORPUS_MANIFEST.exists() else []
)
needs_corpus = pytest.mark.skipif(
    not CORPUS_ENTRIES, reason="../shared/corpus is not present on this machine"
)
DTYPE_OF_ELEMENT = {"f32": "F32", "f16": "F16"}


def corpus_entries(fmt: str) -> list[dict[str, Any]]:
    return [e for e in CORPUS_ENTRIES if e["format"] == fmt]


# --- OpenVINO IR ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["openvino_dense_fp32", "openvino_dense_fp16"])
@pytest.mark.parametrize("entry", ["folder", "model.xml", "model.bin"])
def test_openvino_matches_manifest(fixture: str, entry: str) -> None:
    facts = MANIFEST[fixture]["facts"]
    folder = heavy(fixture)
    info = inspect(folder if entry == "folder" else folder / entry)
    assert info.format == "openvino-ir"
    assert info.tensor_count == facts["tensor_count"]
    assert info.parameter_count == facts["parameter_count"]
    assert [(t.name, t.dtype, list(t.shape), t.offset, t.nbytes) for t in info.tensors] == [
        (c["name"], DTYPE_OF_ELEMENT[c["element_type"]], c["shape"], c["offset"], c["size"])
        for c in facts["constants"]
    ]
    assert {Path(t.file or "").name for t in info.tensors} == {"model.bin"}
    meta = info.metadata
    assert meta["ir_version"] == facts["ir_version"]
    assert meta["model_name"] == facts["net_name"]
    assert meta["layer_count"] == facts["layer_count"]
    assert meta["layer_types"] == dict(Counter(facts["layer_types"]))
    assert list(meta["opsets"]) == facts["layer_versions"]
    assert meta["edge_count"] == facts["edge_count"]
    assert meta["inputs"] == facts["inputs"] and meta["outputs"] == facts["outputs"]
    assert meta["runtime_version"] == facts["runtime_version_rt_info"]
    assert {Path(f["path"]).name: f["size_bytes"] for f in info.files} == MANIFEST[fixture]["files"]
    assert not info.warnings and info.quantization is None


@pytest.mark.parametrize("fixture", ["openvino_dense_fp32", "openvino_dense_fp16"])
def test_openvino_offsets_point_at_the_weights(fixture: str) -> None:
    # Read the constants back by (offset, size) and run the graph: it must give what openvino computed.
    folder = heavy(fixture)
    facts = MANIFEST[fixture]["facts"]
    info = inspect(folder)
    raw = (folder / "model.bin").read_bytes()
    numpy_types = {"F32": np.float32, "F16": np.float16}
    arrays = {
        t.name: np.frombuffer(raw[t.offset : t.offset + t.nbytes], numpy_types[t.dtype]).reshape(t.shape)
        for t in info.tensors
        if t.offset is not None
    }
    kernel, bias = (arrays[c["name"]].astype(np.float32) for c in facts["constants"])
    x = np.array(facts["probe"]["x"], np.float32)
    # openvino's CPU plugin ran the probe at reduced inference precision, hence the tolerance.
    np.testing.assert_allclose(x @ kernel + bias, facts["probe"]["y"], atol=5e-3)


def _ir(tmp_path: Path, layers: str, bin_size: int, rt_info: str = "", name: str = "model") -> Path:
    xml = tmp_path / f"{name}.xml"
    xml.write_text(
        f'<?xml version="1.0"?>\n<net name="hand" version="11">\n<layers>\n{layers}\n</layers>\n'
        f"<edges/>\n{rt_info}</net>\n"
    )
    (tmp_path / f"{name}.bin").write_bytes(bytes(bin_size))
    return xml


def _const(i: int, name: str, element_type: str, shape: str, offset: int, size: int) -> str:
    return (
        f'<layer id="{i}" name="{name}" type="Const" version="opset1">'
        f'<data element_type="{element_type}" shape="{shape}" offset="{offset}" size="{size}"/>'
        f'<output><port id="0" precision="{element_type.upper()}"/></output></layer>'
    )


def test_openvino_sub_byte_element_types(tmp_path: Path) -> None:
    # Sizes as openvino 2026.4 serializes them (Constant.get_byte_size): u3 packs 8 values in 3 bytes,
    # u6 4 in 3, the rest ceil(n * bits / 8).
    cases = [
        ("u1", "5,3", 2, "U1"),
        ("u2", "9", 3, "U2"),
        ("u3", "10", 6, "U3"),
        ("u4", "16,16", 128, "U4"),
        ("i4", "16, 8", 64, "I4"),
        ("u6", "6", 6, "U6"),
        ("nf4", "7", 4, "NF4"),
        ("f4e2m1", "3", 2, "F4"),
        ("f8e4m3", "4,4", 16, "F8_E4M3"),
        ("bf16", "3", 6, "BF16"),
        ("boolean", "5", 5, "BOOL"),
        ("i64", "", 8, "I64"),
    ]
    layers, offset = [], 0
    for i, (element_type, shape, size, _) in enumerate(cases):
        layers.append(_const(i, f"c_{element_type}", element_type, shape, offset, size))
        offset += size
    info = inspect(_ir(tmp_path, "\n".join(layers), offset))
    assert not info.warnings
    assert [(t.dtype, t.nbytes) for t in info.tensors] == [(d, s) for _, _, s, d in cases]
    assert info.parameter_count == 15 + 9 + 10 + 256 + 128 + 6 + 7 + 3 + 16 + 3 + 5 + 1
    assert info.tensors[-1].shape == ()  # a scalar: shape=""
    assert info.quantization is not None and info.quantization["bits"] == 4


def test_openvino_lies_are_warnings(tmp_path: Path) -> None:
    layers = "\n".join(
        [
            _const(0, "ok", "f32", "2", 0, 8),
            _const(1, "wrong_size", "f32", "3", 8, 8),  # f32[3] needs 12
            _const(2, "overlaps", "f32", "2", 4, 8),  # [4, 12) cuts into "ok"
            _const(3, "past_end", "f16", "4", 1 << 40, 8),
            _const(4, "shared", "f32", "2", 0, 8),  # same span as "ok": openvino deduplicates, legal
        ]
    )
    info = inspect(_ir(tmp_path, layers, 16))
    assert info.tensor_count == 5
    text = "\n".join(info.warnings)
    assert "'wrong_size': size 8 bytes but f32[3] needs 12" in text
    assert "overlap" in text and "'overlaps'" in text
    assert "'past_end' data [1099511627776, 1099511627784) lies past the end" in text
    assert "shared" not in text


def test_openvino_missing_bin_still_lists_constants(tmp_path: Path) -> None:
    xml = _ir(tmp_path, _const(0, "w", "f32", "2, 2", 0, 16), 16)
    xml.with_suffix(".bin").unlink()
    info = inspect(xml)
    assert info.tensor_count == 1 and info.parameter_count == 4
    assert any("missing" in w for w in info.warnings)


def test_openvino_body_constants_and_conversion_info(tmp_path: Path) -> None:
    # The shape openvino gives a Loop: its body is a nested <layers> graph whose Consts share the .bin.
    loop = (
        '<layer id="1" name="Loop_14" type="Loop" version="opset5"><port_map/><body><layers>'
        + _const(0, "body_const", "f32", "1,4", 8, 16)
        + '<layer id="1" name="body_out" type="Result" version="opset1"/>'
        + "</layers><edges/></body></layer>"
    )
    rt_info = (
        '<rt_info><info name="OpenVINO Runtime" value="2024.6.0-17404"/>'
        '<Runtime_version value="2024.6.0-17404"/><MO_version value="2023.0.0"/>'
        '<conversion_parameters><input_model value="DIR/convnet.onnx"/>'
        '<is_python_object value="False"/></conversion_parameters>'
        '<nncf><weight_compression><mode value="int4_asym"/><group_size value="128"/></weight_compression>'
        "</nncf></rt_info>"
    )
    info = inspect(_ir(tmp_path, _const(0, "trip", "i64", "", 0, 8) + loop, 24, rt_info))
    assert [t.name for t in info.tensors] == ["trip", "Loop_14/body_const"]
    assert info.parameter_count == 5
    meta = info.metadata
    assert meta["layer_types"] == {"Const": 1, "Loop": 1} and meta["body_layer_count"] == 2
    assert meta["runtime_version"] == "2024.6.0-17404" and meta["mo_version"] == "2023.0.0"
    assert meta["conversion_parameters"] == {"input_model": "DIR/convnet.onnx", "is_python_object": "False"}
    assert meta["framework"] == "onnx"
    assert meta["rt_info"]["nncf.weight_compression.mode"] == "int4_asym"


def test_openvino_ir_v7_blobs(tmp_path: Path) -> None:
    # IR v7 (OpenVINO <= 2020) kept weights per layer in <blobs> and typed layers by precision.
    xml = tmp_path / "v7.xml"
    xml.write_text(
        '<?xml version="1.0"?><net name="old" version="7" batch="1"><layers>'
        '<layer id="0" name="data" precision="FP32" type="Input"><output><port id="0">'
        "<dim>1</dim><dim>3</dim><dim>8</dim><dim>8</dim></port></output></layer>"
        '<layer id="1" name="conv1" precision="FP16" type="Convolution"><data kernel="3,3" output="4"/>'
        '<output><port id="3"><dim>1</dim><dim>4</dim><dim>6</dim><dim>6</dim></port></output>'
        '<blobs><weights offset="0" size="216"/><biases offset="216" size="8"/></blobs></layer>'
        '<layer id="2" name="axes" precision="I64" type="Const"><output><port id="1"><dim>2</dim></port>'
        '</output><blobs><custom offset="224" size="16"/></blobs></layer>'
        "</layers><edges/></net>"
    )
    (tmp_path / "v7.bin").write_bytes(bytes(240))
    info = inspect(xml)
    assert [(t.name, t.dtype, t.shape, t.offset) for t in info.tensors] == [
        ("conv1.weights", "F16", (108,), 0),
        ("conv1.biases", "F16", (4,), 216),
        ("axes", "I64", (2,), 224),
    ]
    assert info.metadata["ir_version"] == 7
    assert info.metadata["inputs"] == [{"name": "data", "element_type": "f32", "shape": [1, 3, 8, 8]}]
    assert not info.warnings


def test_openvino_folder_with_several_graphs(tmp_path: Path) -> None:
    # optimum-intel exports put tokenizer IRs beside the model: each becomes a component.
    _ir(tmp_path, _const(0, "w", "f32", "4", 0, 16), 16, name="openvino_model")
    _ir(tmp_path, _const(0, "vocab", "u8", "10", 0, 10), 10, name="openvino_tokenizer")
    (tmp_path / "config.json").write_text("{}")
    info = inspect(tmp_path)
    assert info.format == "openvino-ir"
    assert set(info.components) == {"openvino_model", "openvino_tokenizer"}
    assert sorted(t.name for t in info.tensors) == ["openvino_model/w", "openvino_tokenizer/vocab"]
    assert info.parameter_count == 14


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ('<net name="x" version="11"><layers><layer id="0" name="a" type="Const">', "malformed XML"),
        ('<net name="x" version="11"><layers></net>', "malformed XML"),
        (
            '<?xml version="1.0"?><!DOCTYPE net [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            '<net name="&b;" version="11"><layers/></net>',
            "entity",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE net [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<net name="x" version="11"><layers/><x>&x;</x></net>',
            "entity",
        ),
    ],
)
def test_openvino_bad_xml_is_a_format_error(tmp_path: Path, xml: str, message: str) -> None:
    path = tmp_path / "model.xml"
    path.write_text(xml)
    (tmp_path / "model.bin").write_bytes(bytes(8))
    with pytest.raises(FormatError, match=message):
        inspect(path)


def test_openvino_cost_does_not_grow_with_the_weights(tmp_path: Path) -> None:
    # A sparse 64 GB .bin costs no disk, and must cost inspect nothing either.
    xml = _ir(tmp_path, _const(0, "huge", "f16", "32768, 1048576", 0, 1 << 36), 0)
    with xml.with_suffix(".bin").open("wb") as fh:
        fh.truncate(1 << 36)
    start = time.perf_counter()
    info = inspect(xml)
    assert time.perf_counter() - start < 2
    assert info.parameter_count == 1 << 35 and info.total_bytes == 1 << 36 and not info.warnings


# --- Core ML ----------------------------------------------------------------------------------------


def _feature_facts(info: ModelInfo, key: str) -> list[dict[str, Any]]:
    return [{k: f.get(k) for k in ("name", "type", "shape", "data_type")} for f in info.metadata[key]]


def test_coreml_neural_network_matches_manifest() -> None:
    facts = MANIFEST["coreml_dense.mlmodel"]["facts"]
    info = inspect(heavy("coreml_dense.mlmodel"))
    assert info.format == "coreml-mlmodel"
    assert (info.tensor_count, info.parameter_count) == (facts["tensor_count"], facts["parameter_count"])
    assert {t.dtype for t in info.tensors} == {"F32"}
    assert [(t.name, t.shape) for t in info.tensors] == [("dense.weights", (2, 3)), ("dense.bias", (2,))]
    meta = info.metadata
    assert meta["specification_version"] == facts["specification_version"]
    assert meta["model_type"] == facts["model_type"]
    assert meta["layer_count"] == facts["layer_count"]
    assert list(meta["layer_types"]) == facts["layer_types"]
    assert _feature_facts(info, "inputs") == facts["inputs"]
    assert _feature_facts(info, "outputs") == facts["outputs"]
    assert meta["metadata"] == facts["metadata"]
    # Offsets point into the spec file: the packed floats are exactly where the table says.
    raw = heavy("coreml_dense.mlmodel").read_bytes()
    for t in info.tensors:
        assert t.offset is not None and t.offset + t.nbytes <= len(raw)
        assert np.isfinite(np.frombuffer(raw[t.offset : t.offset + t.nbytes], np.float32)).all()


def test_coreml_ml_program_matches_manifest() -> None:
    record = MANIFEST["coreml_program.mlpackage"]
    facts = record["facts"]
    package = heavy("coreml_program.mlpackage")
    info = inspect(package)
    assert info.format == "coreml-mlpackage"
    assert (info.tensor_count, info.parameter_count) == (facts["tensor_count"], facts["parameter_count"])
    assert {t.dtype for t in info.tensors} == {"F32"}
    meta = info.metadata
    assert meta["specification_version"] == facts["specification_version"]
    assert meta["model_type"] == facts["model_type"]
    assert meta["mil_version"] == facts["mil_version"]
    assert meta["functions"] == facts["functions"] and meta["opsets"] == [facts["function_opset"]]
    assert meta["op_types"] == dict(Counter(facts["ops"]))
    assert _feature_facts(info, "inputs") == facts["inputs"]
    assert _feature_facts(info, "outputs") == facts["outputs"]
    assert meta["metadata"]["author"] == facts["metadata"]["author"]
    assert meta["root_model"] == "Data/" + facts["root_model_path"]
    assert {f["path"]: f["size_bytes"] for f in info.files} == record["files"]
    # The blob-backed weight: located in weight.bin after its 64-byte metadata record.
    weight = next(t for t in info.tensors if t.file == facts["weight_file"])
    assert (weight.shape, weight.nbytes, weight.role) == ((4, 8), 128, "weight")
    blob = (package / facts["weight_file"]).read_bytes()
    assert weight.offset is not None
    assert struct.unpack_from("<I", blob, weight.offset - 64)[0] == 0xDEADBEEF
    assert not info.warnings


def _broken_package(tmp_path: Path) -> tuple[Path, Path]:
    package = tmp_path / "p.mlpackage"
    shutil.copytree(heavy("coreml_program.mlpackage"), package)
    return package, package / "Data/com.apple.CoreML/weights/weight.bin"


def test_coreml_blob_lies_are_warnings(tmp_path: Path) -> None:
    package, blob = _broken_package(tmp_path)
    data = bytearray(blob.read_bytes())
    data[64:68] = b"\0\0\0\0"  # break the sentinel of the only blob
    blob.write_bytes(bytes(data))
    info = inspect(package)
    assert info.parameter_count == 36
    assert any("sentinel 0xDEADBEEF" in w for w in info.warnings)

    blob.write_bytes(bytes(data[:64]) + struct.pack("<IIQQQ", 0xDEADBEEF, 2, 128, 1 << 40, 0) + bytes(24))
    info = inspect(package)
    assert any("lies past the end" in w for w in info.warnings)

    blob.write_bytes(bytes(data[:64]) + struct.pack("<IIQQQ", 0xDEADBEEF, 1, 64, 128, 0) + bytes(24))
    info = inspect(package)
    assert any("blob stores F16" in w for w in info.warnings)
    assert any("blob holds 64 bytes but F32[4, 8] needs 128" in w for w in info.warnings)

    blob.unlink()
    info = inspect(package)
    assert info.tensor_count == 2 and any("is missing" in w for w in info.warnings)


# A tiny protobuf writer for handmade Core ML specs. Field numbers are coremltools 9.0's
# (Model.proto, NeuralNetwork.proto, TreeEnsemble.proto), read off its generated descriptors.
def _v(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _m(number: int, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _s(number: int, text: str) -> bytes:
    return _m(number, text.encode())


def _floats(number: int, n: int) -> bytes:
    return _m(number, np.arange(n, dtype=np.float32).tobytes())


def _array_feature(name: str, *shape: int) -> bytes:
    return _s(1, name) + _m(3, _m(5, _m(1, b"".join(_varint(d) for d in shape)), _v(2, 65568)))


def _spec(*model: bytes) -> bytes:
    description = _m(2, _m(1, _array_feature("x", 3, 8, 8)), _m(10, _array_feature("y", 10)))
    return _v(1, 4) + description + b"".join(model)


def test_coreml_weights_of_every_kind(tmp_path: Path) -> None:
    conv = _m(
        100,  # ConvolutionLayerParams: out 4, kernelChannels 3, kernelSize [3, 3], fp16 weights, f32 bias
        _v(1, 4),
        _v(2, 3),
        _m(20, _varint(3) + _varint(3)),
        _m(90, _m(2, bytes(4 * 3 * 3 * 3 * 2))),
        _m(91, _floats(1, 4)),
    )
    lut = _m(40, _v(1, 4), _m(102, _floats(1, 16)))  # 4-bit lookup-table quantization
    dense = _m(140, _v(1, 256), _v(2, 10), _m(20, _m(30, bytes(10 * 256 // 2)), lut), _m(21))  # empty bias
    lstm = _m(
        420,  # uniDirectionalLSTM, 5 -> 6, one activation PReLU with weights
        _v(1, 5),
        _v(2, 6),
        _m(10, _m(25, _m(1, _floats(1, 6)))),
        _m(20, _m(1, _floats(1, 30)), _m(20, _floats(1, 36)), _m(40, _floats(1, 6))),
    )
    inner = _m(1, _s(1, "inner"), _m(140, _v(1, 2), _v(2, 2), _m(20, _m(31, bytes(4))), _v(22, 1)))
    branch = _m(605, _m(1, inner), _m(2))  # ifBranch holds a network; elseBranch is empty
    layers = [
        _m(1, _s(1, "conv"), _s(2, "x"), _s(3, "c"), conv),
        _m(1, _s(1, "fc"), dense),
        _m(1, _s(1, "lstm"), lstm),
        _m(1, _s(1, "if"), branch),
        _m(1, _s(1, "relu"), _m(130, _m(10))),
    ]
    path = tmp_path / "nn.mlmodel"
    path.write_bytes(_spec(_m(500, *layers)))
    info = inspect(path)
    assert not info.warnings
    got = {t.name: (t.dtype, t.shape, t.role) for t in info.tensors}
    assert got == {
        "conv.weights": ("F16", (4, 3, 3, 3), "weight"),
        "conv.bias": ("F32", (4,), "weight"),
        "fc.weights": ("U4", (10, 256), "weight"),
        "fc.weights.lut": ("F32", (16,), "quant-aux"),
        "lstm.activations.0.PReLU.alpha": ("F32", (6,), "weight"),
        "lstm.weightParams.inputGateWeightMatrix": ("F32", (6, 5), "weight"),
        "lstm.weightParams.inputGateRecursionMatrix": ("F32", (6, 6), "weight"),
        "lstm.weightParams.inputGateBiasVector": ("F32", (6,), "weight"),
        "if.ifBranch.inner.weights": ("I8", (2, 2), "weight"),
    }
    assert info.metadata["layer_types"] == {
        "convolution": 1,
        "innerProduct": 2,
        "uniDirectionalLSTM": 1,
        "branch": 1,
        "activation": 1,
    }
    assert info.metadata["layer_count"] == 5  # top-level layers; the branch's own is inside it
    quant = info.quantization
    assert quant is not None and quant["method"] == "coreml lookup-table" and quant["bits"] == 4
    assert quant["logical_parameter_count"] == info.parameter_count - 16
    raw = path.read_bytes()
    conv_w = next(t for t in info.tensors if t.name == "conv.weights")
    assert conv_w.offset is not None and raw[conv_w.offset : conv_w.offset + conv_w.nbytes] == bytes(216)


def test_coreml_tree_ensemble_is_summarised(tmp_path: Path) -> None:
    def node(tree: int, node_id: int, leaf: bool) -> bytes:
        body = _v(1, tree) + _v(2, node_id) + _v(3, 6 if leaf else 0)
        if leaf:
            body += _m(20, _v(1, 0) + _varint(2 << 3 | 1) + struct.pack("<d", 0.5))
        else:
            body += _v(10, tree) + _varint(11 << 3 | 1) + struct.pack("<d", 1.5) + _v(12, 1) + _v(13, 2)
        return _m(1, body)

    nodes = [node(t, n, n > 0) for t in range(3) for n in range(3)]
    ensemble = _m(1, *nodes, _v(2, 1), _m(3, struct.pack("<d", 0.25)))
    path = tmp_path / "trees.mlmodel"
    path.write_bytes(_spec(_m(302, ensemble)))
    info = inspect(path)
    assert info.tensor_count == 0
    trees = info.metadata["tree_ensemble"]
    assert trees["trees"] == 3 and trees["nodes"] == 9 and trees["leaves"] == 6
    assert trees["branch_nodes"] == 3 and trees["features_used"] == 3 and trees["leaf_values"] == 6
    assert trees["prediction_dimensions"] == 1 and trees["base_prediction"] == [0.25]


def test_coreml_bad_specs_are_format_errors(tmp_path: Path) -> None:
    # The top level stays well formed (so the file is still identified); deep inside, the weights
    # claim 100 bytes where their WeightParams holds 16.
    lying = _varint(1 << 3 | 2) + _varint(100) + bytes(16)
    spec = _spec(_m(500, _m(1, _s(1, "fc"), _m(140, _v(1, 2), _v(2, 2), _m(20, lying)))))
    path = tmp_path / "lying.mlmodel"
    path.write_bytes(spec)
    with pytest.raises(FormatError, match="past the message end"):
        inspect(path)


def test_coreml_cost_does_not_grow_with_the_weights(tmp_path: Path) -> None:
    # One innerProduct whose 4 GB of packed floats are a sparse hole: only tags are read.
    n = 1 << 30
    head = _spec() + _varint(500 << 3 | 2)
    layer_params = _varint(1 << 3) + _varint(1 << 15) + _varint(2 << 3) + _varint(1 << 15)
    weights = _varint(1 << 3 | 2) + _varint(4 * n)  # WeightParams.floatValue, packed
    weight_params = _varint(20 << 3 | 2) + _varint(len(weights) + 4 * n) + weights
    inner = layer_params + weight_params
    layer = _s(1, "fc") + _varint(140 << 3 | 2) + _varint(len(inner) + 4 * n) + inner
    network = _varint(1 << 3 | 2) + _varint(len(layer) + 4 * n) + layer
    path = tmp_path / "huge.mlmodel"
    with path.open("wb") as fh:
        fh.write(head + _varint(len(network) + 4 * n) + network)
        fh.truncate(fh.tell() + 4 * n)
    start = time.perf_counter()
    info = inspect(path)
    assert time.perf_counter() - start < 2
    assert [(t.name, t.shape) for t in info.tensors] == [("fc.weights", (1 << 15, 1 << 15))]


@needs_corpus
@pytest.mark.parametrize(
    "entry",
    corpus_entries("coreml-mlmodel") + corpus_entries("coreml-mlpackage"),
    ids=lambda e: e["path"],
)
def test_coreml_corpus(entry: dict[str, Any]) -> None:
    truth = entry["ground_truth"]
    info = inspect(CORPUS / "formats" / entry["path"])
    meta = info.metadata
    assert meta["specification_version"] == truth["spec_version"]
    assert meta["model_type"] == truth["model_type"]
    assert [f["name"] for f in meta["inputs"]] == truth["inputs"]
    assert [f["name"] for f in meta["outputs"]] == truth["outputs"]
    assert meta["is_updatable"] == truth["is_updatable"]
    if "tensor_count" in truth:
        assert info.tensor_count == truth["tensor_count"]
        assert info.parameter_count == truth["parameter_count"]
    if truth["model_type"] == "treeEnsembleRegressor":
        assert info.tensor_count == 0 and meta["tree_ensemble"]["nodes"] > 0
    if "manifest_root_item" in truth:
        assert meta["root_model"] == "Data/" + truth["manifest_root_item"]
    assert not info.warnings


# --- PMML -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["iris_tree.pmml", "iris_logreg.pmml"])
def test_pmml_matches_manifest(name: str) -> None:
    facts = MANIFEST[name]["facts"]
    info = inspect(heavy(name))
    assert info.format == "pmml" and info.tensor_count == 0 and not info.warnings
    meta = info.metadata
    assert meta["pmml_version"] == facts["pmml_version"]
    assert meta["namespace"] == facts["namespace"]
    assert meta["application"] == facts["application"]
    assert meta["model_elements"] == facts["model_elements"]
    assert meta["function_name"] == facts["function_name"]
    assert meta["models"][0]["algorithmName"] == facts["algorithm_name"]
    assert meta["data_field_count"] == facts["data_field_count"]
    assert [{k: f[k] for k in ("name", "optype", "dataType")} for f in meta["data_fields"]] == facts[
        "data_fields"
    ]
    assert meta["data_fields"][0]["values"] == len(facts["classes"])
    assert meta["target_fields"] == [facts["target"]]
    assert meta["input_fields"] == [f["name"] for f in facts["data_fields"] if f["name"] != facts["target"]]


@needs_corpus
@pytest.mark.parametrize("entry", corpus_entries("pmml"), ids=lambda e: e["path"])
def test_pmml_corpus(entry: dict[str, Any]) -> None:
    truth = entry["ground_truth"]
    info = inspect(CORPUS / "formats" / entry["path"])
    meta = info.metadata
    assert info.tensor_count == 0
    assert meta["pmml_version"] == truth["pmml_version"] and meta["namespace"] == truth["namespace"]
    assert meta["model_elements"] == truth["model_elements"]
    assert meta["application"] == truth["application"]
    assert meta["data_field_count"] == truth["data_fields"]
    assert meta["input_fields"] == truth["input_fields"]
    assert meta["target_fields"] == truth["target_fields"]


_PMML_HEAD = '<?xml version="1.0"?>\n<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">\n'


def test_pmml_neural_network_and_ensembles(tmp_path: Path) -> None:
    def neuron(nid: str, sources: list[str], bias: bool = True) -> str:
        cons = "".join(f'<Con from="{s}" weight="0.5"/>' for s in sources)
        bias_attr = ' bias="0.1"' if bias else ""
        return f'<Neuron id="{nid}"{bias_attr}>{cons}</Neuron>'

    network = (
        '<NeuralNetwork modelName="mlp" functionName="regression" activationFunction="logistic">'
        '<MiningSchema><MiningField name="a"/><MiningField name="b"/>'
        '<MiningField name="y" usageType="target"/></MiningSchema><NeuralInputs>'
        '<NeuralInput id="i0"/><NeuralInput id="i1"/></NeuralInputs>'
        "<NeuralLayer>" + "".join(neuron(f"h{k}", ["i0", "i1"]) for k in range(3)) + "</NeuralLayer>"
        "<NeuralLayer>" + neuron("o", ["h0", "h1", "h2"], bias=False) + "</NeuralLayer>"
        "</NeuralNetwork>"
    )
    forest = (
        '<MiningModel functionName="regression"><MiningSchema><MiningField name="a"/>'
        '<MiningField name="w" usageType="frequencyWeight"/><MiningField name="y" usageType="predicted"/>'
        '</MiningSchema><Segmentation multipleModelMethod="average">'
        + "".join(
            f'<Segment id="{k}"><True/><TreeModel functionName="regression"><MiningSchema>'
            '<MiningField name="ignored"/></MiningSchema><Node score="1"><True/></Node></TreeModel></Segment>'
            for k in range(4)
        )
        + "</Segmentation></MiningModel>"
    )
    path = tmp_path / "models.pmml"
    path.write_text(
        _PMML_HEAD + '<Header><Application name="hand" version="1"/></Header>'
        '<DataDictionary numberOfFields="5"><DataField name="a" optype="continuous" dataType="double"/>'
        '<DataField name="b" optype="continuous" dataType="double"/>'
        '<DataField name="y" optype="continuous" dataType="double"/></DataDictionary>'
        + network
        + forest
        + "</PMML>"
    )
    info = inspect(path)
    assert info.metadata["model_elements"] == ["NeuralNetwork", "MiningModel"]
    assert [(t.name, t.shape) for t in info.tensors] == [
        ("mlp.layer0.weight", (3, 2)),
        ("mlp.layer0.bias", (3,)),
        ("mlp.layer1.weight", (1, 3)),
    ]
    assert info.parameter_count == 6 + 3 + 3
    mlp, mining = info.metadata["models"]
    assert mlp["input_fields"] == ["a", "b"] and mlp["target_fields"] == ["y"]
    assert mlp["counts"] == {"Neuron": 4, "Con": 9, "NeuralLayer": 2}
    assert mining["nested_models"] == {"TreeModel": 4} and mining["counts"]["Segment"] == 4
    assert mining["input_fields"] == ["a"] and mining["target_fields"] == ["y"]
    assert mining["frequencyWeight_fields"] == ["w"]
    assert any("numberOfFields says 5 but 3" in w for w in info.warnings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_PMML_HEAD + "<Header><Application", "malformed XML"),
        (_PMML_HEAD + "<TreeModel></PMML>", "malformed XML"),
        (
            '<?xml version="1.0"?><!DOCTYPE PMML [<!ENTITY a "xxxxxxxxxx">'
            + "".join(f'<!ENTITY a{i} "{"&a;" * 10}">' for i in range(1))
            + ']><PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header description="&a0;"/></PMML>',
            "entity",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE PMML [<!ENTITY e SYSTEM "http://127.0.0.1:9/x">]>'
            '<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header description="&e;"/></PMML>',
            "entity",
        ),
    ],
)
def test_pmml_bad_xml_is_a_format_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.pmml"
    path.write_text(text)
    with pytest.raises(FormatError, match=message):
        inspect(path)


# --- TensorRT ---------------------------------------------------------------------------------------


def _named(tag: bytes, text: str) -> bytes:
    raw = text.encode()
    return tag + struct.pack("<Q", len(raw)) + raw


def test_tensorrt_ptrt_engine(tmp_path: Path) -> None:
    body = b"\x0d\x00\x01\x00" + _named(b"", "Unnamed Network 0")
    body += (
        _named(b"\x0d\x00\x01\x00", "encoder/dense/MatMul") + b"*" + _named(b"\x0d\x00", "GeluPluginDynamic")
    )
    body += bytes(range(256)) * 64  # weights: random-looking bytes with printable runs that are not names
    head = b"ptrt" + struct.pack("<III", 97, 211, len(body)) + bytes(8)
    path = tmp_path / "model.plan"
    path.write_bytes(head + body)
    info = inspect(path)
    meta = info.metadata
    assert info.tensor_count == 0 and info.parameter_count == 0
    assert meta["layout"] == "ptrt" and meta["serialization_tag"] == 97
    assert meta["tensorrt_version_hint"].startswith("7.2")
    assert meta["network_name"] == "Unnamed Network 0"
    assert meta["names"] == ["Unnamed Network 0", "encoder/dense/MatMul", "GeluPluginDynamic"]
    assert meta["plugins"] == ["GeluPluginDynamic"]
    assert info.warnings == [
        "weights are compiled into the engine: tensors are not listable without the TensorRT runtime"
    ]


def _ftrt(body: bytes, declared: int | None = None) -> bytes:
    inner = b"ptrt" + struct.pack("<IQQ", 0, 236, len(body)) + body
    size = 56 + len(inner)
    head = b"ftrt" + struct.pack("<IIIQ", 0, 1, 0, declared if declared is not None else size)
    head += bytes([8, 6, 1, 6]) + bytes(4) + b"NGNE" + struct.pack("<IQQ", 0, 56, len(inner))
    return head + inner


def test_tensorrt_ftrt_engine(tmp_path: Path) -> None:
    body = _named(b"\x0c\x80\x01\x00", "Unnamed Network 0") + b"header {\n  version_compatible=1\n"
    body += b"  accelerators={sm89 }\n}\n"
    path = tmp_path / "model.engine"
    path.write_bytes(_ftrt(body))
    meta = inspect(path).metadata
    assert meta["layout"] == "ftrt" and meta["tensorrt_version"] == "8.6.1.6"
    assert meta["sections"] == [{"tag": "NGNE", "offset": 56, "size": path.stat().st_size - 56}]
    assert meta["serialization_tag"] == 236 and meta["gpu_architecture_evidence"] == ["sm_89"]
    assert meta["version_compatible"] is True


def test_tensorrt_lying_header_and_flat_cost(tmp_path: Path) -> None:
    path = tmp_path / "big.engine"
    with path.open("wb") as fh:
        fh.write(_ftrt(b"x" * 16, declared=123))
        fh.truncate(1 << 34)  # a sparse 16 GB engine
    start = time.perf_counter()
    info = inspect(path)
    assert time.perf_counter() - start < 2
    assert info.metadata["scanned_bytes"] <= 4 * 1024 * 1024
    assert any("declares 123 bytes" in w for w in info.warnings)


@needs_corpus
@pytest.mark.parametrize("entry", corpus_entries("tensorrt"), ids=lambda e: e["path"])
def test_tensorrt_corpus(entry: dict[str, Any]) -> None:
    truth = entry["ground_truth"]
    info = inspect(CORPUS / "formats" / entry["path"])
    meta = info.metadata
    assert info.tensor_count == 0 and any("TensorRT runtime" in w for w in info.warnings)
    assert meta["layout"] == truth["outer_magic"]
    assert meta["network_name"] == "Unnamed Network 0"
    if truth["outer_magic"] == "ftrt":
        # ">= 8.6" in the manifest; the header's version bytes say which
        assert meta["tensorrt_version"].startswith("8.6")
        assert (
            meta["sections"][0]["tag"] == "NGNE"
            and meta["sections"][0]["offset"] == truth["inner_ptrt_offset"]
        )
    else:  # both ptrt engines are TensorRT 7 era by their repositories
        assert meta["serialization_tag"] == 97 and meta["tensorrt_version_hint"].startswith("7.")
    if "trt_gelu" in truth["version_evidence"]:
        assert "trt_gelu" in meta["plugins"]
    if "policy/dense/Relu" in truth["version_evidence"]:
        assert "policy/dense/Relu" in meta["names"]
