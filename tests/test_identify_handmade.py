"""Hand-made bytes for what no library here can write (legacy GGML, TensorRT engines) and for
hostile variants of the formats that do have libraries."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

import tensorfile


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("magic", "variant"), [(b"lmgg", "GGML"), (b"fmgg", "GGMF"), (b"tjgg", "GGJT")])
def test_legacy_ggml_containers(tmp_path: Path, magic: bytes, variant: str) -> None:
    # llama.cpp's pre-GGUF files: a uint32 magic, (except GGML) a uint32 version, then hparams.
    data = magic + struct.pack("<I", 3) + struct.pack("<7i", 32000, 4096, 256, 32, 32, 128, 2) + bytes(64)
    result = tensorfile.identify(write(tmp_path, "ggml-model-q4_0.bin", data))
    assert result.format == "gguf"
    assert result.details["variant"] == variant and result.details["legacy"] is True
    assert any("only loads GGUF" in w for w in result.warnings)


def test_big_endian_gguf(tmp_path: Path) -> None:
    data = b"GGUF" + struct.pack(">I", 3) + struct.pack(">QQ", 2, 1) + bytes(32)
    result = tensorfile.identify(write(tmp_path, "be.gguf", data))
    assert result.format == "gguf"
    assert result.details["endianness"] == "big" and result.details["tensor_count"] == 2


def test_gguf_v1_counts(tmp_path: Path) -> None:
    data = b"GGUF" + struct.pack("<I", 1) + struct.pack("<II", 7, 3) + bytes(32)
    result = tensorfile.identify(write(tmp_path, "v1.gguf", data))
    assert result.details == {"version": 1, "endianness": "little", "tensor_count": 7, "metadata_kv_count": 3}


def test_tensorrt_ftrt_without_inner_engine(tmp_path: Path) -> None:
    result = tensorfile.identify(write(tmp_path, "odd.engine", b"ftrt" + bytes(200)))
    assert result.format == "tensorrt"
    assert result.confidence < 1.0
    assert result.warnings


def test_tensorrt_ptrt(tmp_path: Path) -> None:
    result = tensorfile.identify(write(tmp_path, "m.engine", b"ptrt" + struct.pack("<I", 211) + bytes(100)))
    assert result.format == "tensorrt" and result.details["layout"] == "ptrt"


def test_engine_extension_with_other_content_is_unknown(tmp_path: Path) -> None:
    result = tensorfile.identify(write(tmp_path, "model.engine", b"not an engine at all, just text\n"))
    assert result.format == "unknown"
    assert "extension .engine suggests TensorRT engine" in result.warnings[0]


def test_safetensors_header_not_json(tmp_path: Path) -> None:
    header = b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]} GARBAGE'
    data = struct.pack("<Q", len(header)) + header + bytes(4)
    result = tensorfile.identify(write(tmp_path, "bad.safetensors", data))
    assert result.format == "safetensors"
    assert result.confidence < 1.0 and result.warnings


def test_safetensors_oversized_header_claim(tmp_path: Path) -> None:
    data = struct.pack("<Q", 2**40) + b'{"a": {"dtype": "F32"}}'
    result = tensorfile.identify(write(tmp_path, "huge.safetensors", data))
    assert result.format == "safetensors"
    assert any("truncated" in w for w in result.warnings)


def test_sharded_index_with_missing_shard(made: Callable[[str], Path], tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "repo"
    shutil.copytree(made("safetensors_sharded_dir"), folder)
    shard = sorted(folder.glob("*.safetensors"))[0]
    shard.unlink()
    result = tensorfile.identify(folder)
    assert result.format == "safetensors-sharded"
    assert any("missing" in w for w in result.warnings)


def test_onnx_external_data_escaping_folder(tmp_path: Path) -> None:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((2, 2), np.float32), "W")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    graph = helper.make_graph(
        [helper.make_node("Identity", ["W"], ["Y"])],
        "g",
        [],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 2])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "evil.onnx"
    path.write_bytes(model.SerializeToString())
    result = tensorfile.identify(path)
    assert result.format == "onnx"
    assert result.details["external_data"] == ["../../etc/passwd"]
    assert any(
        "'../../etc/passwd' points outside the model folder" in w and "'W'" in w for w in result.warnings
    )


def test_pickle_with_dangerous_global_is_not_executed(tmp_path: Path) -> None:
    # GLOBAL os.system + REDUCE: identify must name the import and never call it.
    marker = tmp_path / "was-run"
    payload = f"cos\nsystem\n(Vtouch {marker}\ntR.".encode()
    result = tensorfile.identify(write(tmp_path, "model.pkl", payload))
    assert result.format == "pickle"
    assert "os.system" in result.details["imports"]
    assert result.can_execute_code is True
    assert not marker.exists()


def test_text_that_looks_like_pickle_opening(tmp_path: Path) -> None:
    result = tensorfile.identify(write(tmp_path, "notes.pkl", b"(this is just a note in parentheses)\n"))
    assert result.format == "unknown"


def test_mlpackage_manifest_pointing_nowhere(tmp_path: Path) -> None:
    import json

    folder = tmp_path / "broken.mlpackage"
    folder.mkdir()
    (folder / "Manifest.json").write_text(
        json.dumps(
            {
                "fileFormatVersion": "1.0.0",
                "rootModelIdentifier": "X",
                "itemInfoEntries": {"X": {"path": "com.apple.CoreML/model.mlmodel"}},
            }
        )
    )
    result = tensorfile.identify(folder)
    assert result.format == "coreml-mlpackage"
    assert any("missing" in w for w in result.warnings)
