"""Every format detected from a file written by its own library, and again under a misleading name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import tensorfile
from tensorfile import catalog

# (fixture, expected format, facts the detector must report)
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("pytorch_state_dict", "pytorch-zip", {"checkpoint_kind": "state-dict", "container": "zip"}),
    ("pytorch_hf_bin", "pytorch-zip", {"checkpoint_kind": "state-dict"}),
    ("pytorch_training_checkpoint", "pytorch-zip", {"checkpoint_kind": "training-checkpoint"}),
    ("pytorch_full_module", "pytorch-zip", {"checkpoint_kind": "pickled-object"}),
    ("pytorch_legacy", "pytorch-legacy", {"checkpoint_kind": "state-dict", "container": "pickle-stack"}),
    ("torchscript", "torchscript", {"container": "zip"}),
    ("safetensors", "safetensors", {"tensor_count": 5, "metadata": {"format": "pt"}}),
    ("safetensors_sharded_dir", "safetensors-sharded", {"tensor_count": 5}),
    ("safetensors_index", "safetensors-sharded", {"index": "model.safetensors.index.json"}),
    ("gguf", "gguf", {"version": 3, "tensor_count": 2}),
    ("onnx", "onnx", {"producer_name": "tensorfile-tests", "opset_import": {"": 17}}),
    ("onnx_external", "onnx", {"external_data": ["model.onnx.data"]}),
    ("npy", "numpy", {"container": "npy", "shape": [3, 4], "object_arrays": False}),
    ("npy_object", "numpy", {"container": "npy", "object_arrays": True}),
    ("npz", "numpy", {"container": "npz", "arrays": 2}),
    ("pickle", "pickle", {"protocol": 4}),
    ("pickle_protocol0", "pickle", {"protocol": 0}),
    ("joblib", "pickle", {"producer": "joblib"}),
    ("joblib_zlib", "pickle", {"compression": "zlib", "producer": "joblib"}),
    ("joblib_gzip", "pickle", {"compression": "gzip", "producer": "joblib"}),
    ("joblib_bz2", "pickle", {"compression": "bz2", "producer": "joblib"}),
    ("joblib_lzma", "pickle", {"compression": "lzma", "producer": "joblib"}),
    ("joblib_xz", "pickle", {"compression": "xz", "producer": "joblib"}),
    ("awq_dir", "awq", {"container": "safetensors"}),
    ("gptq_dir", "gptq", {"container": "safetensors"}),
    ("bnb_dir", "bitsandbytes", {"container": "safetensors"}),
    ("diffusers_dir", "diffusers", {"pipeline": "StableDiffusionPipeline"}),
]


def _check(result: tensorfile.Identification, fmt: str, facts: dict[str, Any]) -> None:
    assert result.format == fmt, (result.format, result.reason, result.evidence)
    assert result.confidence >= 0.9
    assert result.evidence, "every answer names its evidence"
    info = catalog.get(fmt)
    assert info is not None and result.family == info.family
    assert result.frameworks == list(info.frameworks)
    for key, value in facts.items():
        assert result.details.get(key) == value, (key, result.details)


@pytest.mark.parametrize(("fixture", "fmt", "facts"), CASES, ids=[c[0] for c in CASES])
def test_detects_real_file(
    made: Callable[[str], Path], fixture: str, fmt: str, facts: dict[str, Any]
) -> None:
    result = tensorfile.identify(made(fixture))
    _check(result, fmt, facts)
    assert not [w for w in result.warnings if w.startswith("extension")], result.warnings


@pytest.mark.parametrize(
    ("fixture", "fmt", "facts"),
    [c for c in CASES if not c[0].endswith("_dir")],
    ids=[c[0] for c in CASES if not c[0].endswith("_dir")],
)
def test_detects_content_under_misleading_name(
    made: Callable[[str], Path],
    renamed: Callable[[Path, str], Path],
    fixture: str,
    fmt: str,
    facts: dict[str, Any],
) -> None:
    src = made(fixture)
    wrong = ".safetensors" if fmt != "safetensors" else ".onnx"
    result = tensorfile.identify(renamed(src, "misleading" + wrong))
    facts = {k: v for k, v in facts.items() if k not in ("external_data", "index")}
    if fixture in ("onnx_external", "safetensors_index"):
        return  # their meaning depends on the neighbouring files, checked in place above
    _check(result, fmt, facts)
    assert result.warnings and result.warnings[0].startswith(f"extension {wrong} suggests"), result.warnings


def test_safetensors_named_bin_warns(
    made: Callable[[str], Path], renamed: Callable[[Path, str], Path]
) -> None:
    result = tensorfile.identify(renamed(made("safetensors"), "pytorch_model.bin"))
    assert result.format == "safetensors"
    assert "extension .bin suggests" in result.warnings[0]
    assert result.can_execute_code is False


def test_pickle_named_safetensors_flags_code_execution(
    made: Callable[[str], Path], renamed: Callable[[Path, str], Path]
) -> None:
    result = tensorfile.identify(renamed(made("pytorch_state_dict"), "model.safetensors"))
    assert result.format == "pytorch-zip"
    assert result.can_execute_code is True
    assert "loading it can execute code" in result.warnings[0]


def test_png_named_pt_is_unknown_with_reason(tmp_path: Path) -> None:
    import zlib

    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + bytes(13) + zlib.crc32(b"IHDR").to_bytes(4, "big")
    path = tmp_path / "weights.pt"
    path.write_bytes(png)
    result = tensorfile.identify(path)
    assert result.format == "unknown"
    assert "PNG image" in (result.reason or "")
    assert "extension .pt suggests" in result.warnings[0]


def test_training_checkpoint_reports_counters(made: Callable[[str], Path]) -> None:
    details = tensorfile.identify(made("pytorch_training_checkpoint")).details
    assert details["counters"] == {"epoch": 3, "step": 120, "loss": 0.25}
    assert details["optimizer_keys"] == ["optimizer_state_dict"]


def test_legacy_sys_info(made: Callable[[str], Path]) -> None:
    details = tensorfile.identify(made("pytorch_legacy")).details
    assert details["protocol_version"] == 1001
    assert details["sys_info"]["little_endian"] is True
    assert details["tensor_records"] == 5


def test_numpy_object_arrays_can_execute(made: Callable[[str], Path]) -> None:
    assert tensorfile.identify(made("npy_object")).can_execute_code is True
    assert tensorfile.identify(made("npy")).can_execute_code is False


def test_quantized_config_summary(made: Callable[[str], Path]) -> None:
    gptq = tensorfile.identify(made("gptq_dir"))
    assert gptq.details["quantization"] == {
        "method": "gptq",
        "bits": 4,
        "group_size": 64,
        "desc_act": False,
        "sym": True,
    }
    assert gptq.confidence == 1.0
    bnb = tensorfile.identify(made("bnb_dir"))
    assert bnb.details["quantization"]["bnb_4bit_quant_type"] == "nf4"


def test_quantized_single_file_uses_names_and_sibling_config(made: Callable[[str], Path]) -> None:
    result = tensorfile.identify(made("awq_dir") / "model.safetensors")
    assert result.format == "awq"
    assert result.confidence == 1.0
    assert any("qweight" in e for e in result.evidence)


def test_diffusers_single_component(made: Callable[[str], Path]) -> None:
    result = tensorfile.identify(made("diffusers_dir") / "unet")
    assert result.format == "diffusers"
    assert result.details["single_component"] is True


def test_hf_folder_with_pytorch_bin(made: Callable[[str], Path]) -> None:
    result = tensorfile.identify(made("pytorch_hf_bin").parent)
    assert result.kind == "directory"
    assert result.format == "pytorch-zip"
    assert result.details["weights_files"] == ["pytorch_model.bin"]


def test_torch_legacy_tar(tmp_path: Path) -> None:
    """The pre-1.0 tar layout: torch cannot write it any more, so the members are assembled by tarfile."""
    import io
    import pickle
    import tarfile

    path = tmp_path / "old.tar"
    with tarfile.open(path, "w") as tar:
        for name, payload in (
            ("sys_info", {"protocol_version": 1000}),
            ("pickle", {}),
            ("tensors", []),
            ("storages", []),
        ):
            data = pickle.dumps(payload, protocol=2)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    result = tensorfile.identify(path)
    assert result.format == "pytorch-legacy"
    assert result.details["container"] == "tar"
