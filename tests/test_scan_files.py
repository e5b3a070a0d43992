"""`tensorfile scan` end to end: benign files from real libraries stay clean, hostile ones are caught.

Benign fixtures come from the formats' own libraries (torch, safetensors, numpy, joblib, onnx,
gguf, the committed Keras/TF fixtures). Hostile ones are assembled byte by byte (tests/pickle_asm.py)
or with the library plus one deliberate edit; nothing dangerous is ever pickled live.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tensorfile.scan import scan, scan_file
from tensorfile.scan.findings import rank

from .conftest import HEAVY, LIBRARY_FILES, ROOT, run_cli
from .pbwire import field as _pbfield
from .pickle_asm import Asm

EVIL = Asm(2).call("posix", "system", "echo pwned").stop().build_bytes()


def worst(path: Path) -> str | None:
    result = scan_file(path)
    assert result.status != "error", result.error
    return result.worst


def assert_quiet(path: Path) -> None:
    result = scan_file(path)
    assert result.status == "scanned", (result.status, result.error)
    loud = [f for f in result.findings if rank(f.severity) >= rank("medium")]
    assert not loud, loud


@pytest.mark.parametrize(
    "name",
    [*LIBRARY_FILES, "pytorch_hf_bin", "pytorch_training_checkpoint", "onnx", "pickle_protocol0"],
)
def test_benign_files_from_real_libraries(made: Callable[[str], Path], name: str) -> None:
    path = made(name)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        assert_quiet(file)


def test_full_module_pickle_is_not_critical(made: Callable[[str], Path]) -> None:
    assert rank(worst(made("pytorch_full_module")) or "info") < rank("high")


def test_numpy_object_array_is_low(made: Callable[[str], Path]) -> None:
    result = scan_file(made("npy_object"))
    assert {f.rule for f in result.findings} >= {"numpy-object-array"}
    assert result.worst == "low"


@pytest.mark.parametrize(
    "fixture", ["keras3_dense.keras", "tfkeras2_full.h5", "keras3_legacy_full.h5", "savedmodel_dense"]
)
def test_benign_heavy_fixtures(fixture: str) -> None:
    path = HEAVY / fixture
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        assert_quiet(file)


def _torch_zip_with(
    tmp_path: Path, member: str, payload: bytes, *, edit: Callable[[bytes], bytes] | None = None
) -> Path:
    """A real torch.save zip whose data.pkl is replaced (as done by the published PoCs)."""
    torch = pytest.importorskip("torch")
    source = tmp_path / "real.pt"
    torch.save({"w": torch.zeros(2)}, source)
    target = tmp_path / "evil.pt"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data.pkl"):
                dst.writestr(info.filename.replace("data.pkl", member), payload)
            else:
                dst.writestr(info, data)
    if edit is not None:
        target.write_bytes(edit(target.read_bytes()))
    return target


def test_torch_zip_with_payload(tmp_path: Path) -> None:
    assert worst(_torch_zip_with(tmp_path, "data.pkl", EVIL)) == "critical"


def test_pickle_member_with_innocent_name(tmp_path: Path) -> None:
    assert worst(_torch_zip_with(tmp_path, "notes.txt", EVIL)) == "critical"


@pytest.mark.parametrize("flag", [0x1, 0x20, 0x40])
def test_zip_flag_bits_do_not_hide_members(tmp_path: Path, flag: int) -> None:
    def set_flags(data: bytes) -> bytes:
        out = bytearray(data)
        for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            pos = out.find(sig)
            while pos >= 0:
                (flags,) = struct.unpack_from("<H", out, pos + at)
                struct.pack_into("<H", out, pos + at, flags | flag)
                pos = out.find(sig, pos + 4)
        return bytes(out)

    assert worst(_torch_zip_with(tmp_path, "data.pkl", EVIL, edit=set_flags)) == "critical"


def test_raw_pickle_and_stacked_streams(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(Asm(4).empty_dict().stop().build_bytes() + EVIL)
    assert worst(path) == "critical"


def test_compressed_joblib_payload(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "model.joblib"
    path.write_bytes(gzip.compress(EVIL))
    assert worst(path) == "critical"


def test_nested_archive(tmp_path: Path) -> None:
    import io
    import tarfile

    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("archive/data.pkl", EVIL)
    path = tmp_path / "bundle.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("model.zip")
        info.size = len(inner.getvalue())
        tar.addfile(info, io.BytesIO(inner.getvalue()))
    assert worst(path) == "critical"


def test_seven_zip(tmp_path: Path) -> None:
    py7zr = pytest.importorskip("py7zr")
    payload = tmp_path / "data.pkl"
    payload.write_bytes(EVIL)
    path = tmp_path / "model.7z"
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.write(payload, "archive/data.pkl")
    assert worst(path) == "critical"


def test_npy_object_array_with_payload(tmp_path: Path) -> None:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    path = tmp_path / "evil.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + EVIL)
    assert worst(path) == "critical"


def test_keras_lambda_and_module_references(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    config = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {"class_name": "Dense", "config": {"name": "d", "units": 2}},
                {
                    "class_name": "Lambda",
                    "config": {
                        "name": "evil",
                        "function": ["4wEAAAAAAAAA", None, None],
                        "function_type": "lambda",
                    },
                },
                {"module": "os", "class_name": "function", "config": "system", "registered_name": "system"},
            ]
        },
    }
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(config)
        h5.attrs["keras_version"] = "2.15.0"
    rules = {f.rule: f.severity for f in scan_file(path).findings}
    assert rules["keras-lambda"] == "critical"
    assert rules["keras-dangerous-reference"] == "critical"


def test_onnx_external_data_outside_the_folder(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    tensor = helper.make_tensor("w", TensorProto.FLOAT, [1], [0.0])
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../../../etc/passwd"), ("offset", "0"), ("length", "4")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [], "g", [], [helper.make_tensor_value_info("w", TensorProto.FLOAT, [1])], [tensor]
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("evil.ops", 1)]
    )
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    rules = {f.rule: f.severity for f in scan_file(path).findings}
    assert rules["onnx-external-path"] == "high"
    assert rules["onnx-custom-domain"] == "medium"


def test_gguf_chat_template_escape(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    import numpy as np

    path = tmp_path / "model.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_chat_template("{{ cycler.__init__.__globals__.os.popen('id').read() }}")
    writer.add_tensor("w", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert worst(path) == "critical"


def test_safetensors_header_lies(tmp_path: Path) -> None:
    header = {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
        "c": {"dtype": "F32", "shape": [2], "data_offsets": [8, 4096]},
    }
    raw = json.dumps(header).encode()
    path = tmp_path / "lying.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\x00" * 16)
    found = [f for f in scan_file(path).findings if f.rule == "safetensors-header"]
    evidence = " ".join(f.evidence for f in found)
    assert "a and b" in evidence and "c:" in evidence


def test_savedmodel_with_pyfunc(tmp_path: Path) -> None:
    node = _pbfield(1, b"f") + _pbfield(2, b"PyFunc")
    graph = _pbfield(1, node)
    meta = _pbfield(2, graph)
    saved = _pbfield(1, 1) + _pbfield(2, meta)
    folder = tmp_path / "sm"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(saved)
    rules = {f.rule: f.severity for f in scan_file(folder / "saved_model.pb").findings}
    assert rules.get("tf-dangerous-op") == "critical"


def test_folder_scan_and_report(tmp_path: Path, made: Callable[[str], Path]) -> None:
    (tmp_path / "evil.pkl").write_bytes(EVIL)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "weights.safetensors").write_bytes(made("safetensors").read_bytes())
    report = scan([tmp_path], jobs=1)
    assert report.exit_code == 1
    assert report.verdicts() == {"clean": 1, "unsafe": 1, "incomplete": 0, "error": 0}
    assert report.to_dict()["summary"]["findings_by_severity"]["critical"] >= 1


def test_unreadable_and_missing_fail_closed(tmp_path: Path) -> None:
    report = scan([tmp_path / "missing.pt"])
    assert report.exit_code == 2
    assert report.results[0].status == "error"


def test_cli_exit_codes_json_and_sarif(tmp_path: Path, made: Callable[[str], Path]) -> None:
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(EVIL)
    clean = made("safetensors")
    assert run_cli("scan", str(clean)).returncode == 0
    out = run_cli("scan", str(evil), str(clean), "--json", "--sarif", str(tmp_path / "out.sarif"))
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["summary"]["verdicts"]["unsafe"] == 1
    evil_result = next(r for r in doc["files"] if r["path"].endswith("evil.pkl"))
    assert evil_result["findings"][0]["severity"] == "critical"
    assert evil_result["findings"][0]["evidence"].startswith("posix.system")
    sarif = json.loads((tmp_path / "out.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert any(r["ruleId"] == "pickle-dangerous-global" and r["level"] == "error" for r in results)
    # --sarif - prints the same SARIF document instead of the report, with the same exit code
    piped = run_cli("scan", str(evil), str(clean), "--sarif", "-")
    assert piped.returncode == 1 and json.loads(piped.stdout)["runs"][0]["results"] == results
    assert not (ROOT / "-").exists()  # not a file named "-" where the CLI ran
    both = run_cli("scan", str(clean), "--sarif", "-", "--json")
    assert both.returncode == 2 and both.stdout == "" and "choose one" in both.stderr
    # --fail-on critical still fails; a medium-only file passes at the default level
    assert run_cli("scan", str(evil), "--fail-on", "critical").returncode == 1
    assert run_cli("scan", str(tmp_path / "nope.pt")).returncode == 2
    assert "Traceback" not in run_cli("scan", str(tmp_path / "nope.pt")).stderr


def test_keras_v3_zip_with_lambda(tmp_path: Path) -> None:
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "Lambda",
                    "config": {
                        "name": "l",
                        "function": {"class_name": "__lambda__", "config": {"code": "4wEA"}},
                    },
                },
                {"module": "keras.utils", "class_name": "function", "config": "get_file"},
            ]
        },
    }
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        z.writestr("model.weights.h5", b"")
    result = scan_file(path)
    assert result.format == "keras-v3"
    rules = {f.rule: f.severity for f in result.findings}
    assert rules["keras-lambda"] == "critical"
    assert rules["keras-dangerous-reference"] == "critical"


def test_parallel_scan_matches_serial(tmp_path: Path, made: Callable[[str], Path]) -> None:
    for i in range(6):
        (tmp_path / f"evil{i}.pkl").write_bytes(EVIL)
        (tmp_path / f"ok{i}.safetensors").write_bytes(made("safetensors").read_bytes())
    serial = scan([tmp_path], jobs=1).to_dict()
    parallel = scan([tmp_path], jobs=2).to_dict()
    assert serial == parallel
    assert serial["summary"]["verdicts"] == {"clean": 6, "unsafe": 6, "incomplete": 0, "error": 0}


def test_legacy_torch_tar_and_stack(tmp_path: Path) -> None:
    import io
    import tarfile

    path = tmp_path / "old.pt"
    with tarfile.open(path, "w") as tar:  # torch < 0.4 layout: four pickled members
        for name, data in (("sys_info", Asm(2).empty_dict().stop().build_bytes()), ("pickle", EVIL)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert worst(path) == "critical"
    # legacy stack: magic number, protocol, sys_info, then the payload as the "data" pickle
    magic = Asm(2).raw(b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")).stop().build_bytes()
    stack = tmp_path / "stack.pt"
    stack.write_bytes(
        magic + Asm(2).int_(1001).stop().build_bytes() + Asm(2).empty_dict().stop().build_bytes() + EVIL
    )
    result = scan_file(stack)
    assert result.format == "pytorch-legacy"
    assert result.worst == "critical"


def test_fifo_is_refused_not_read(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "model.pt"
    os.mkfifo(fifo)
    out = run_cli("scan", str(fifo), timeout=60)
    assert out.returncode == 2
    assert "not a regular file" in out.stdout and "Traceback" not in out.stderr


def test_bf16_ones_and_float8_checkpoints_are_clean(tmp_path: Path) -> None:
    """Raw bf16 1.0 values read as `80 3F` (PROTO 63), which pickle.load refuses at once; the
    dtype argument of _rebuild_tensor_v3 (torch.float8_e4m3fn, torch.uint16) is data, not a call."""
    torch = pytest.importorskip("torch")
    norm = tmp_path / "norm.bin"
    torch.save(torch.nn.LayerNorm(64).to(torch.bfloat16).state_dict(), norm)
    f8 = tmp_path / "f8.pt"
    torch.save({"w": torch.randn(4).to(torch.float8_e4m3fn), "u": torch.tensor([1, 2]).to(torch.uint16)}, f8)
    for path in (norm, f8):
        result = scan_file(path)
        assert result.status == "scanned" and result.findings == [], path
    raw = tmp_path / "1"
    raw.write_bytes(b"\x80\x3f" * 64)  # a storage member on its own: not a loadable pickle
    assert [f.rule for f in scan_file(raw).findings] == ["not-a-code-format"]
