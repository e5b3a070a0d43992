"""Formats whose libraries are too heavy for the test run: files they wrote once, committed.

tests/fixtures/make_heavy_fixtures.py made them with tensorflow, keras, coremltools, openvino,
flax, sklearn2pmml and protoc (versions in tests/fixtures/heavy/VERSIONS.json); its manifest
records what each library said about its own file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import tensorfile

from .conftest import HEAVY

MANIFEST = json.loads((HEAVY / "MANIFEST.json").read_text())["fixtures"]
# The generator names the text network definition separately; tensorfile reports it as caffe.
_FORMAT_ALIASES = {"caffe-prototxt": "caffe"}

# Facts tensorfile must report per fixture, beyond the format.
DETAILS: dict[str, dict[str, Any]] = {
    "caffe_lenet.caffemodel": {
        "layer_layout": "LayerParameter (field 100)",
        "net_name": "TinyLeNet",
        "layer_count": 6,
    },
    "caffe_lenet_v1.caffemodel": {"layer_layout": "V1LayerParameter (field 2, legacy)"},
    "caffe_lenet_deploy.prototxt": {"part": "network-definition"},
    "keras3_legacy_full.h5": {"variant": "full-model", "keras_version": "3.15.1"},
    "tfkeras2_full.h5": {"variant": "full-model", "keras_version": "2.21.0", "has_optimizer_weights": True},
    "keras3_dense.weights.h5": {"variant": "keras3-weights"},
    "keras3_dense.keras": {"keras_version": "3.15.1", "weights_member": "model.weights.h5"},
    "tflite_with_metadata.tflite": {"appended_zip": True},
    "coreml_dense.mlmodel": {"model_type": "neuralNetwork", "specification_version": 1},
    "flax_trainstate.msgpack": {"kind": "train-state"},
    "iris_tree.pmml": {"pmml_version": "4.4"},
    "savedmodel_dense": {"has_variables": True},
    "keras3_export_savedmodel": {"has_variables": True},
    "onnx_external_data": {"weights_files": ["model.onnx"], "external_data": ["model.onnx.data"]},
    "onnx_external_per_tensor": {"weights_files": ["model.onnx"]},
}


def _entry_ids() -> list[str]:
    return [e["path"] for e in MANIFEST]


@pytest.mark.parametrize("entry", MANIFEST, ids=_entry_ids())
def test_heavy_fixture_identified(entry: dict[str, Any]) -> None:
    result = tensorfile.identify(HEAVY / entry["path"])
    expected = _FORMAT_ALIASES.get(entry["format"], entry["format"])
    assert result.format == expected, (result.reason, result.evidence)
    assert result.confidence >= 0.9
    assert result.kind == entry["kind"]
    for key, value in DETAILS.get(entry["path"], {}).items():
        assert result.details.get(key) == value, (key, result.details)


FILES = [e for e in MANIFEST if e["kind"] == "file"]


@pytest.mark.parametrize("entry", FILES, ids=[e["path"] for e in FILES])
def test_heavy_fixture_under_misleading_name(
    entry: dict[str, Any], renamed: Callable[[Path, str], Path]
) -> None:
    expected = _FORMAT_ALIASES.get(entry["format"], entry["format"])
    wrong = ".pt" if expected != "pickle" else ".onnx"
    result = tensorfile.identify(renamed(HEAVY / entry["path"], "renamed" + wrong))
    assert result.format == expected, (result.reason, result.evidence)
    assert result.warnings[0].startswith(f"extension {wrong} suggests PyTorch")


def test_savedmodel_graph_file_alone() -> None:
    result = tensorfile.identify(HEAVY / "savedmodel_dense" / "saved_model.pb")
    assert result.format == "tf-savedmodel"
    assert result.details["graph_only"] is True


def test_mlpackage_root_model() -> None:
    result = tensorfile.identify(HEAVY / "coreml_program.mlpackage")
    assert result.details["root_model"].endswith("model.mlmodel")
    inner = tensorfile.identify(
        HEAVY / "coreml_program.mlpackage" / "Data" / "com.apple.CoreML" / "model.mlmodel"
    )
    assert inner.format == "coreml-mlmodel"
    assert inner.details["model_type"] == "mlProgram"


def test_openvino_pair_and_missing_weights(tmp_path: Path) -> None:
    folder = HEAVY / "openvino_dense_fp32"
    xml = next(folder.glob("*.xml"))
    result = tensorfile.identify(xml)
    assert result.format == "openvino-ir"
    assert result.details["weights_file"] == xml.with_suffix(".bin").name
    assert result.details["ir_version"] == "11"
    alone = tmp_path / xml.name
    shutil.copy(xml, alone)
    lonely = tensorfile.identify(alone)
    assert lonely.format == "openvino-ir"
    assert any("not found" in w for w in lonely.warnings)
    assert tensorfile.identify(folder).details["ir_version"] == "11"


def test_tflite_checked_before_zip() -> None:
    result = tensorfile.identify(HEAVY / "tflite_with_metadata.tflite")
    assert result.format == "tflite" and result.confidence == 1.0
    assert not result.alternatives


def test_keras_lambda_layer_flagged(tmp_path: Path) -> None:
    """A full-model .h5 whose config holds a Lambda layer: h5py rewrites the config attribute."""
    import h5py

    path = tmp_path / "lambda.h5"
    shutil.copy(HEAVY / "tfkeras2_full.h5", path)
    with h5py.File(path, "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        config["config"]["layers"].append({"class_name": "Lambda", "config": {"function": "..."}})
        h5.attrs["model_config"] = json.dumps(config)
    result = tensorfile.identify(path)
    assert result.details["lambda_layers"] == 1
    assert result.can_execute_code is True
    assert tensorfile.identify(HEAVY / "tfkeras2_full.h5").can_execute_code is False


def test_plain_hdf5_is_unknown_with_reason(tmp_path: Path) -> None:
    import h5py
    import numpy as np

    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as h5:
        h5["table"] = np.arange(4)
    result = tensorfile.identify(path)
    assert result.format == "unknown"
    assert "HDF5 file without Keras markers" in (result.reason or "")
