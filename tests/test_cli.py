"""The command line: --json documents, exit codes, globs, recursion, reference tables."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from .conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]


def test_json_is_one_document_and_nothing_else(made: Callable[[str], Path]) -> None:
    proc = run_cli("identify", "--json", str(made("safetensors")), str(made("gguf")))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # fails if anything but one JSON document is on stdout
    assert [r["format"] for r in doc["results"]] == ["safetensors", "gguf"]
    first = doc["results"][0]
    for key in (
        "path",
        "format",
        "confidence",
        "family",
        "frameworks",
        "can_execute_code",
        "evidence",
        "warnings",
        "details",
        "size_bytes",
    ):
        assert key in first
    assert doc["summary"] == {"identified": 2, "unknown": 0, "errors": 0}


def test_unknown_gives_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some text, not a model at all\n")
    proc = run_cli("identify", "--json", str(path))
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["results"][0]["reason"] == "plain text, not a model file"


def test_glob_and_recursion(made: Callable[[str], Path], tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(made("npy"), tmp_path / "a.npy")
    shutil.copy(made("onnx"), tmp_path / "sub" / "b.onnx")
    shutil.copy(made("gguf"), tmp_path / "sub" / "deeper" / "c.gguf")
    shutil.copytree(made("safetensors_sharded_dir"), tmp_path / "sub" / "repo")

    globbed = json.loads(run_cli("identify", "--json", str(tmp_path / "*.npy")).stdout)
    assert [Path(r["path"]).name for r in globbed["results"]] == ["a.npy"]

    flat = run_cli("identify", "--json", str(tmp_path))
    assert flat.returncode == 1
    assert "use -r" in json.loads(flat.stdout)["results"][0]["reason"]

    deep = json.loads(run_cli("identify", "-r", "--json", str(tmp_path)).stdout)
    found = {Path(r["path"]).name: r["format"] for r in deep["results"]}
    assert found == {"a.npy": "numpy", "b.onnx": "onnx", "c.gguf": "gguf", "repo": "safetensors-sharded"}


def test_table_output_mentions_format_and_warning(made: Callable[[str], Path], tmp_path: Path) -> None:
    fake = tmp_path / "model.safetensors"
    shutil.copy(made("pickle"), fake)
    proc = run_cli("identify", str(fake))
    assert proc.returncode == 0
    assert "pickle" in proc.stdout
    assert "can run code" in proc.stdout
    assert "extension .safetensors suggests Safetensors" in " ".join(proc.stdout.split())


def test_formats_command() -> None:
    doc = json.loads(run_cli("formats", "--json").stdout)
    ids = {f["id"] for f in doc["formats"]}
    assert {"pytorch-zip", "safetensors", "gguf", "onnx", "tensorrt", "caffe", "numpy"} <= ids
    pt = next(f for f in doc["formats"] if f["id"] == "pytorch-zip")
    assert pt["safe_to_load"] is False and ".pt" in pt["extensions"]
    assert run_cli("formats").returncode == 0
    bad = run_cli("formats", "--family", "nonsense")
    assert bad.returncode == 2 and "unknown family" in bad.stderr


def test_dtypes_command() -> None:
    doc = json.loads(run_cli("dtypes", "--json").stdout)
    names = {d["name"] for d in doc["dtypes"]}
    assert {"F32", "F16", "BF16", "I64", "I32", "I8", "U8", "BOOL", "Q4_K", "Q8_0"} <= names
    explained = json.loads(run_cli("dtypes", "--json", "--explain", "BF16·I32·F32").stdout)
    assert [p["name"] for p in explained["parts"]] == ["BF16", "I32", "F32"]
    assert run_cli("dtypes").returncode == 0
    bad = run_cli("dtypes", "--explain", "XYZ")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.startswith("tensorfile ")
    assert "identify" in run_cli("--help").stdout


def test_readme_demo_files_all_identified() -> None:
    models = sorted(str(p) for p in (ROOT / "examples" / "models").iterdir())
    doc = json.loads(run_cli("identify", "--json", *models).stdout)
    formats = {Path(r["path"]).name: r["format"] for r in doc["results"]}
    assert formats == {
        "classifier.joblib": "pickle",
        "mlp.onnx": "onnx",
        "pytorch_model.bin": "pytorch-zip",
        "suspicious.safetensors": "pickle",
        "tiny-llama-q8_0.gguf": "gguf",
        "tiny-llama.safetensors": "safetensors",
        "training-checkpoint.ckpt": "pytorch-zip",
    }
    suspicious = next(r for r in doc["results"] if r["path"].endswith("suspicious.safetensors"))
    assert suspicious["can_execute_code"] is True and suspicious["warnings"]


def test_inspect_json_document(made: Callable[[str], Path]) -> None:
    proc = run_cli("inspect", "--json", str(made("safetensors")))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    for key in (
        "format",
        "tensor_count",
        "parameter_count",
        "parameters_by_dtype",
        "tensor_types",
        "total_bytes",
        "tensors",
        "metadata",
        "quantization",
    ):
        assert key in doc, key
    assert doc["quantization"] is None
    assert set(doc["tensors"][0]) >= {"name", "dtype", "shape", "nbytes", "file", "offset"}
    filtered = json.loads(
        run_cli(
            "inspect",
            "--json",
            "--filter",
            "layers.*",
            "--sort",
            "size",
            "--limit",
            "2",
            str(made("safetensors")),
        ).stdout
    )
    assert [t["name"] for t in filtered["tensors"]] == [
        "layers.0.attn.q_proj.weight",
        "layers.0.attn.q_proj.bias",
    ]
    assert filtered["tensor_count"] == 5  # the summary still describes the whole model


def test_inspect_table_and_errors(made: Callable[[str], Path], tmp_path: Path) -> None:
    proc = run_cli("inspect", str(made("gguf")))
    assert proc.returncode == 0 and "tensor types" in proc.stdout and "token_embd.weight" in proc.stdout
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    bad = run_cli("inspect", str(text))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not a model file" in bad.stderr
    missing = run_cli("inspect", str(tmp_path / "nope.gguf"))
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
