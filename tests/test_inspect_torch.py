"""inspect for PyTorch zip, legacy and TorchScript files, checked against torch.load."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tensorfile.errors import FormatError
from tensorfile.inspection import inspect

torch = pytest.importorskip("torch")  # a test dependency: `make test` installs torch==2.13.0

_DTYPES = {
    torch.float32: "F32",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.float16: "F16",
    torch.int32: "I32",
    torch.uint8: "U8",
    torch.bool: "BOOL",
    torch.float64: "F64",
}


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    """Every tensor torch.load returns, keyed like tensorfile names them."""
    out: dict[str, Any] = {}
    if isinstance(value, torch.Tensor):
        out[path] = value
    elif isinstance(value, dict):
        for k, v in value.items():
            out.update(_flatten(v, f"{path}.{k}" if path else str(k)))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{path}.{i}" if path else str(i)))
    return out


def _assert_matches_torch(path: Path, legacy: bool = False) -> None:
    info = inspect(path)
    loaded = _flatten(torch.load(path, weights_only=True))
    assert {t.name for t in info.tensors} == set(loaded)
    for t in info.tensors:
        ref = loaded[t.name]
        assert t.shape == tuple(ref.shape), t.name
        assert t.dtype == _DTYPES[ref.dtype], t.name
        assert t.nbytes == ref.numel() * ref.element_size()
        if t.offset is not None:  # the bytes at the reported offset are the tensor's own
            with path.open("rb") as fh:
                fh.seek(t.offset)
                assert (
                    fh.read(t.nbytes) == ref.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
                ), t.name
    assert info.parameter_count == sum(v.numel() for v in loaded.values())


@pytest.mark.parametrize("fixture", ["pytorch_state_dict", "pytorch_training_checkpoint", "pytorch_legacy"])
def test_counts_dtypes_shapes_offsets_match_torch(made: Callable[[str], Path], fixture: str) -> None:
    _assert_matches_torch(made(fixture))


def test_training_checkpoint_split(made: Callable[[str], Path]) -> None:
    info = inspect(made("pytorch_training_checkpoint"))
    ck = info.checkpoint
    assert ck is not None and ck["kind"] == "training-checkpoint"
    assert ck["counters"] == {"epoch": 3, "step": 120, "loss": 0.25}
    assert ck["model_parameters"] == 4 * 3 + 3
    # AdamW keeps exp_avg and exp_avg_sq per parameter plus a scalar step tensor.
    assert ck["optimizer_parameters"] == 2 * (4 * 3 + 3) + 2
    names = {t.name for t in info.tensors if t.role == "optimizer"}
    assert "optimizer_state_dict.state.0.exp_avg" in names and "optimizer_state_dict.state.1.step" in names


def test_shared_and_strided_tensors(tmp_path: Path) -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    sd = {"base": base, "tied": base, "row": base[2], "transposed": base.t(), "half": torch.ones(3).half()}
    path = tmp_path / "views.pt"
    torch.save(sd, path)
    _assert_matches_torch(path)
    info = {t.name: t for t in inspect(path).tensors}
    assert info["transposed"].offset is None  # not contiguous: no single byte range
    assert info["row"].offset == info["base"].offset + 2 * 6 * 4
    assert info["tied"].offset == info["base"].offset


def test_legacy_views_and_offsets(tmp_path: Path) -> None:
    base = torch.arange(10, dtype=torch.int64)
    path = tmp_path / "legacy_views.pt"
    torch.save(
        {"a": base, "b": base[3:7], "c": torch.zeros(2, 2, dtype=torch.bfloat16)},
        path,
        _use_new_zipfile_serialization=False,
    )
    _assert_matches_torch(path)


def test_full_pickled_module(made: Callable[[str], Path]) -> None:
    info = inspect(made("pytorch_full_module"))
    assert info.checkpoint is not None and info.checkpoint["kind"] == "pickled-object"
    assert {t.name for t in info.tensors} == {"0.weight", "0.bias"}
    assert info.pickle is not None and "torch.nn.modules.container.Sequential" in info.pickle["imports"]


def test_torchscript_parameters_and_buffers(tmp_path: Path) -> None:
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(module), path)
    info = inspect(path)
    expected = torch.jit.load(path).state_dict()
    assert info.format == "torchscript"
    assert {t.name: t.shape for t in info.tensors} == {k: tuple(v.shape) for k, v in expected.items()}
    # TorchScript pickles parameters and buffers alike as plain module attributes.
    assert {t.role for t in info.tensors} == {"weight"}
    assert info.parameter_count == sum(v.numel() for v in expected.values())
    assert info.metadata["code_files"]


def test_missing_storage_member_is_an_error(made: Callable[[str], Path], tmp_path: Path) -> None:
    src = made("pytorch_state_dict")
    dst = tmp_path / "gutted.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if not item.filename.endswith("/data/0"):
                zout.writestr(item, zin.read(item.filename))
    with pytest.raises(FormatError, match="missing"):
        inspect(dst)


def test_truncated_legacy_is_an_error(made: Callable[[str], Path], tmp_path: Path) -> None:
    data = made("pytorch_legacy").read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) - 10])
    with pytest.raises(FormatError):
        inspect(path)


def test_inspect_never_imports_foreign_globals(tmp_path: Path) -> None:
    """A torch zip whose data.pkl would call os.system is described, not executed."""
    marker = tmp_path / "ran"
    payload = f"cos\nsystem\n(Vtouch {marker}\ntR.".encode()
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("evil/data.pkl", payload)
        zf.writestr("evil/version", "3\n")
    info = inspect(path)
    assert info.pickle is not None and "os.system" in info.pickle["imports"]
    assert info.tensor_count == 0
    assert not marker.exists()
