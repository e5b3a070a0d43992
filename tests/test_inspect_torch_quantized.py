"""inspect of torch quantized tensors (`_rebuild_qtensor`), held to what torch.load reports.

Files are written by torch.save (zip and legacy) from torch.quantize_per_tensor / per_channel and
from a model quantized with torch.ao.quantization.quantize_dynamic. For every tensor torch.load
returns: the name, quantized dtype, shape, byte size, the stored integers at the reported offset,
and the qscheme with its scale and zero point (per tensor) or axis and channel count (per channel).
convert refuses such tensors in one line (exit 2) and converts the rest when they are excluded.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from tensorfile.inspection import inspect
from tensorfile.scan import scan_file

from .conftest import run_cli
from .test_inspect_torch import _flatten

torch = pytest.importorskip("torch")  # a test dependency: `make test` installs torch==2.13.0

_DTYPES = {
    torch.qint8: "QINT8",
    torch.quint8: "QUINT8",
    torch.qint32: "QINT32",
    torch.float32: "F32",
    torch.float64: "F64",
    torch.int64: "I64",
}


def _tensors() -> dict[str, Any]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, generator=gen)
    scales = torch.rand(5, generator=gen, dtype=torch.float64) + 0.01
    return {
        "per_tensor_quint8": torch.quantize_per_tensor(x, 0.05, 7, torch.quint8),
        "per_tensor_qint8": torch.quantize_per_tensor(x, 0.02, -3, torch.qint8),
        "per_tensor_qint32": torch.quantize_per_tensor(x, 0.001, 0, torch.qint32),
        "per_channel_axis0": torch.quantize_per_channel(
            x, torch.linspace(0.01, 0.1, 6, dtype=torch.float64), torch.arange(6), 0, torch.qint8
        ),
        "per_channel_axis1": torch.quantize_per_channel(x, scales, torch.arange(5) + 2, 1, torch.quint8),
        "float_qparams": torch.quantize_per_channel(
            x, scales.float(), torch.linspace(-1.0, 1.0, 5), 1, torch.quint8
        ),
        "scalar": torch.quantize_per_tensor(torch.tensor(1.5), 0.5, 1, torch.quint8),
        "plain": x,
    }


def _dynamic_state_dict() -> dict[str, Any]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return quantized.state_dict()


def _save(obj: Any, path: Path, legacy: bool = False) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def _load(path: Path) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage deprecation inside _rebuild_qtensor
        return _flatten(torch.load(path, weights_only=True))


def _assert_matches_torch(path: Path) -> int:
    info = inspect(path)
    loaded = _load(path)
    assert not info.warnings
    assert {t.name for t in info.tensors} == set(loaded)
    quantized = 0
    for t in info.tensors:
        ref = loaded[t.name]
        assert t.shape == tuple(ref.shape), t.name
        assert t.dtype == _DTYPES[ref.dtype], t.name
        assert t.nbytes == ref.numel() * ref.element_size(), t.name
        stored = (ref.int_repr() if ref.is_quantized else ref).detach()
        if t.offset is not None:
            with path.open("rb") as fh:
                fh.seek(t.offset)
                assert fh.read(t.nbytes) == stored.contiguous().numpy().tobytes(), t.name
        if not ref.is_quantized:
            assert t.quantization is None, t.name
            continue
        quantized += 1
        q = t.quantization
        assert q is not None and q["qscheme"] == str(ref.qscheme()).removeprefix("torch."), t.name
        if ref.qscheme() == torch.per_tensor_affine:
            assert q["scale"] == ref.q_scale() and q["zero_point"] == ref.q_zero_point(), t.name
        else:
            assert q["axis"] == ref.q_per_channel_axis(), t.name
            assert q["channels"] == ref.q_per_channel_scales().numel() == ref.shape[q["axis"]], t.name
            assert q["scales_dtype"] == _DTYPES[ref.q_per_channel_scales().dtype], t.name
            assert q["zero_points_dtype"] == _DTYPES[ref.q_per_channel_zero_points().dtype], t.name
    assert info.parameter_count == sum(v.numel() for v in loaded.values())
    assert info.total_bytes == sum(v.numel() * v.element_size() for v in loaded.values())
    if quantized:
        assert info.quantization is not None and info.quantization["method"] == "torch-quantized"
        assert info.quantization["quantized_tensors"] == quantized
        assert set(info.quantization["qschemes"]) == {
            str(v.qscheme()).removeprefix("torch.") for v in loaded.values() if v.is_quantized
        }
    return quantized


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_quantize_per_tensor_and_per_channel_match_torch_load(tmp_path: Path, legacy: bool) -> None:
    path = _save(_tensors(), tmp_path / "q.pt", legacy)
    assert _assert_matches_torch(path) == 7
    assert scan_file(path).verdict("high") == "clean"  # what weights_only accepts scans clean


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_quantize_dynamic_state_dict_matches_torch_load(tmp_path: Path, legacy: bool) -> None:
    path = _save(_dynamic_state_dict(), tmp_path / "dynamic.pt", legacy)
    assert _assert_matches_torch(path) == 2  # the two Linear weights; biases, scales stay float/int
    info = inspect(path)
    assert info.quantization is not None and info.quantization["bits"] == 8
    weight = next(t for t in info.tensors if t.name == "0._packed_params._packed_params.0")
    assert weight.dtype == "QINT8" and weight.shape == (32, 16)


def test_legacy_storages_after_a_per_channel_tensor_are_found(tmp_path: Path) -> None:
    # the scales and zero points are storages of their own, sized by their persistent ids' types:
    # every storage after them is read at the right offset
    tensors = _tensors()
    ordered = {"first": tensors["per_channel_axis0"], "after": tensors["plain"], "q": tensors["scalar"]}
    _assert_matches_torch(_save(ordered, tmp_path / "legacy.pt", legacy=True))


def test_convert_refuses_quantized_tensors_in_one_line(tmp_path: Path) -> None:
    path = _save(_dynamic_state_dict(), tmp_path / "dynamic.pt")
    out = tmp_path / "out.safetensors"
    proc = run_cli("convert", str(path), str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "QINT8" in lines[0] and "torch quantized" in lines[0], proc.stderr
    assert "--exclude" in lines[0] and not out.exists()
    proc = run_cli("convert", str(path), str(out), "--exclude", "*._packed_params._packed_params.0")
    assert proc.returncode == 0, proc.stderr
    from safetensors.numpy import load_file

    written = load_file(out)
    loaded = _load(path)
    assert set(written) == {k for k, v in loaded.items() if not v.is_quantized}
    for name, array in written.items():
        assert (array == loaded[name].detach().numpy()).all(), name
