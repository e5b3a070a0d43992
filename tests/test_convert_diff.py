"""diff: two models compared tensor by tensor, checked against the same arithmetic done by hand.

Files are written by safetensors and torch themselves; expected statuses, max_abs, max_rel and
mismatch counts are computed in float64 from what torch reads back, with the documented rule
|a - b| <= atol + rtol * |b| (NaN matches NaN at the same place).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tensorfile.convert import convert, diff
from tensorfile.errors import TensorfileError

from .conftest import run_cli

torch = pytest.importorskip("torch")  # a test dependency: `make test` installs torch==2.13.0
safetensors_torch = pytest.importorskip("safetensors.torch")

INF, NAN = float("inf"), float("nan")
CHUNK_ELEMENTS = 16 * 1024 * 1024 // 8  # diff steps both sides by this many elements


def write(path: Path, tensors: dict[str, Any]) -> Path:
    safetensors_torch.save_file({k: v.contiguous() for k, v in tensors.items()}, path)
    return path


def pair(tmp_path: Path, a: dict[str, Any], b: dict[str, Any]) -> tuple[Path, Path]:
    return write(tmp_path / "a.safetensors", a), write(tmp_path / "b.safetensors", b)


def statuses(report: Any) -> dict[str, str]:
    return {t.name: t.status for t in report.tensors}


def by_name(report: Any) -> dict[str, Any]:
    return {t.name: t for t in report.tensors}


def expected(a: Any, b: Any, atol: float = 0.0, rtol: float = 0.0) -> tuple[float, float, int]:
    """(max_abs, max_rel, mismatched) by the documented rule, in float64, for finite inputs."""
    wa, wb = a.double().reshape(-1).numpy(), b.double().reshape(-1).numpy()
    delta = np.abs(wa - wb)
    scale = np.abs(wb)
    rel = np.divide(delta, scale, out=np.where(delta > 0, np.inf, 0.0), where=scale > 0)
    return float(delta.max()), float(rel.max()), int(np.count_nonzero(delta > atol + rtol * scale))


# --- identical and different ---------------------------------------------------------------------


def test_identical_files(tmp_path: Path) -> None:
    torch.manual_seed(0)
    t = {"w": torch.randn(4, 5), "h": torch.randn(3).half(), "i": torch.arange(4), "m": torch.tensor([True])}
    a, b = pair(tmp_path, t, t)
    report = diff(a, b)
    assert report.equal and report.exit_code == 0
    assert statuses(report) == dict.fromkeys(t, "identical")
    for d in report.tensors:
        assert d.mismatched == 0 and d.dtype_a == d.dtype_b
    proc = run_cli("diff", "--json", str(a), str(b))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["equal"] is True and doc["summary"]["identical"] == len(t)
    assert all(x["exact"] for x in doc["tensors"])
    table = run_cli("diff", str(a), str(b))
    assert table.returncode == 0 and "equal" in table.stdout


def test_one_value_changed(tmp_path: Path) -> None:
    torch.manual_seed(1)
    x = torch.randn(6, 7)
    y = x.clone()
    y[2, 3] += 0.75
    a, b = pair(tmp_path, {"x": x, "same": torch.ones(3)}, {"x": y, "same": torch.ones(3)})
    report = diff(a, b)
    d = by_name(report)["x"]
    assert d.status == "different" and d.mismatched == 1
    max_abs, max_rel, _ = expected(x, y)
    assert d.max_abs == pytest.approx(max_abs, rel=1e-12)
    assert d.max_abs == pytest.approx(abs(float(x[2, 3]) - float(y[2, 3])), rel=1e-12)
    assert d.max_rel == pytest.approx(max_rel, rel=1e-12)
    assert d.max_rel == pytest.approx(abs(float(x[2, 3]) - float(y[2, 3])) / abs(float(y[2, 3])), rel=1e-12)
    assert by_name(report)["same"].status == "identical"
    assert not report.equal and report.exit_code == 1
    assert report.summary()["different"] == 1
    proc = run_cli("diff", "--json", str(a), str(b))
    assert proc.returncode == 1, proc.stderr
    row = {r["name"]: r for r in json.loads(proc.stdout)["tensors"]}["x"]
    assert row["status"] == "different" and row["mismatched"] == 1 and row["exact"] is False
    table = run_cli("diff", str(a), str(b))
    assert table.returncode == 1 and "different" in table.stdout and "x" in table.stdout


def test_several_values_changed(tmp_path: Path) -> None:
    torch.manual_seed(2)
    x = torch.randn(100)
    y = x.clone()
    y[[3, 50, 99]] += torch.tensor([1e-3, -2.0, 0.5])
    a, b = pair(tmp_path, {"x": x}, {"x": y})
    for atol in (0.0, 1e-2, 0.6, 3.0):
        d = diff(a, b, atol=atol).tensors[0]
        max_abs, max_rel, mismatched = expected(x, y, atol)
        assert d.mismatched == mismatched, atol
        assert d.status == ("different" if mismatched else "close"), atol
        assert d.max_abs == pytest.approx(max_abs, rel=1e-12)
        assert d.max_rel == pytest.approx(max_rel, rel=1e-12)


# --- tolerances ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("va", "vb", "atol", "rtol", "close"),
    [
        (1.0, 1.5, 0.5, 0.0, True),  # |a-b| == atol
        (1.0, 1.5, 0.4999, 0.0, False),
        (3.0, 2.0, 0.0, 0.5, True),  # |a-b| == rtol * |b|
        (3.0, 2.0, 0.0, 0.49, False),
        (2.0, 3.0, 0.0, 0.4, True),  # relative to b (0.4 * |a| = 0.8 would not do)
        (3.0, 2.0, 0.0, 0.4, False),  # the same pair the other way round
        (0.0, 4.0, 2.0, 0.5, True),  # atol + rtol * |b| == 4
        (0.0, 4.0, 1.9, 0.5, False),
        (-1.0, 1.0, 2.0, 0.0, True),
        (-1.0, 1.0, 0.0, 1.0, False),  # 2 > 1 * |b|
        (-1.0, 1.0, 0.0, 2.0, True),
        (5.0, 0.0, 4.0, 100.0, False),  # rtol means nothing when b is zero
    ],
)
def test_tolerance_boundaries(
    tmp_path: Path, va: float, vb: float, atol: float, rtol: float, close: bool
) -> None:
    a, b = pair(tmp_path, {"x": torch.tensor([va, 7.0])}, {"x": torch.tensor([vb, 7.0])})
    report = diff(a, b, atol=atol, rtol=rtol)
    d = report.tensors[0]
    assert d.status == ("close" if close else "different")
    assert d.mismatched == (0 if close else 1)
    assert d.max_abs == abs(va - vb)
    assert report.exit_code == (0 if close else 1)
    assert np.isclose(va, vb, atol=atol, rtol=rtol) == close  # the rule is numpy's


def test_tolerance_options_on_the_cli(tmp_path: Path) -> None:
    a, b = pair(tmp_path, {"x": torch.tensor([2.0, 7.0])}, {"x": torch.tensor([3.0, 7.0])})
    for args, code in (
        (["--rtol", "0.4"], 0),
        (["--atol", "0.99"], 1),
        (["--atol", "0.5", "--rtol", "0.2"], 0),
    ):
        proc = run_cli("diff", "--json", *args, str(a), str(b))
        assert proc.returncode == code, (args, proc.stderr)
        doc = json.loads(proc.stdout)
        assert doc["equal"] is (code == 0)
        assert doc["tensors"][0]["status"] == ("close" if code == 0 else "different")
    for bad in (["--atol", "nan"], ["--atol", "inf"], ["--rtol", "-0.1"]):
        proc = run_cli("diff", *bad, str(a), str(b))
        assert proc.returncode == 2 and proc.stdout == "", bad
        assert proc.stderr.startswith("tensorfile: error: --") and len(proc.stderr.splitlines()) == 1


# --- NaN and infinity ----------------------------------------------------------------------------


def test_nan_at_the_same_places_is_equal(tmp_path: Path) -> None:
    x = torch.tensor([1.0, NAN, 3.0, NAN])
    a, b = pair(tmp_path, {"x": x, "h": x.half()}, {"x": x.clone(), "h": x.bfloat16()})
    report = diff(a, b, rtol=1e-2)
    assert statuses(report) == {"x": "identical", "h": "close"}
    assert by_name(report)["h"].mismatched == 0
    assert report.equal


@pytest.mark.parametrize(
    ("va", "vb"),
    [
        ([1.0, 2.0, 3.0, NAN], [1.0, NAN, 3.0, 4.0]),  # one on each side
        ([1.0, 2.0], [1.0, NAN]),  # only in B
        ([NAN, 2.0], [1.0, 2.0]),  # only in A
        ([NAN, 1.0, 2.0], [NAN, 1.0, NAN]),  # one shared NaN, one only in B
    ],
)
@pytest.mark.parametrize(("atol", "rtol"), [(0.0, 0.0), (1e9, 1e9)])
def test_nan_on_one_side_is_different(
    tmp_path: Path, va: list[float], vb: list[float], atol: float, rtol: float
) -> None:
    a, b = pair(tmp_path, {"x": torch.tensor(va)}, {"x": torch.tensor(vb)})
    report = diff(a, b, atol=atol, rtol=rtol)
    d = report.tensors[0]
    expected_count = sum(math.isnan(p) != math.isnan(q) for p, q in zip(va, vb, strict=True))
    assert d.status == "different" and d.mismatched == expected_count
    assert report.exit_code == 1


def test_infinities(tmp_path: Path) -> None:
    """inf matches inf of the same sign (as numpy.isclose); anything else against inf is different."""
    a_t = {
        "same_inf": torch.tensor([INF, -INF, 1.0]),
        "finite_vs_inf": torch.tensor([1.0, 2.0]),
        "inf_vs_finite": torch.tensor([INF, 2.0]),
        "opposite": torch.tensor([INF, 2.0]),
        "inf_and_change": torch.tensor([INF, 1.0]),
    }
    b_t = {
        "same_inf": torch.tensor([INF, -INF, 1.0]).bfloat16(),  # only the dtype differs
        "finite_vs_inf": torch.tensor([INF, 2.0]),
        "inf_vs_finite": torch.tensor([3.0, 2.0]),
        "opposite": torch.tensor([-INF, 2.0]),
        "inf_and_change": torch.tensor([INF, 1.5]),
    }
    a, b = pair(tmp_path, a_t, b_t)
    for atol, rtol in ((0.0, 0.0), (0.0, 0.01), (1.0, 0.5)):
        report = by_name(diff(a, b, atol=atol, rtol=rtol))
        where = (atol, rtol)
        assert report["same_inf"].status == "close" and report["same_inf"].mismatched == 0, where
        assert report["same_inf"].max_abs == 0.0, where
        for name in ("finite_vs_inf", "inf_vs_finite", "opposite"):
            assert report[name].status == "different" and report[name].mismatched == 1, (name, where)
        change = report["inf_and_change"]
        assert change.max_abs == 0.5, where  # the infinities agree; only 1.0 vs 1.5 differs
        assert change.mismatched == (0 if atol + rtol * 1.5 >= 0.5 else 1), where


def test_signed_zero_and_nan_payloads_are_close_not_different(tmp_path: Path) -> None:
    quiet = torch.tensor([NAN, 0.0])
    other = torch.tensor([NAN, -0.0])
    other.view(torch.int32)[0] |= 1  # another NaN payload
    assert torch.isnan(other[0])
    a, b = pair(tmp_path, {"x": quiet}, {"x": other})
    d = diff(a, b).tensors[0]
    assert d.status in ("close", "identical") and d.mismatched == 0
    assert d.max_abs == 0.0


# --- integers and bools --------------------------------------------------------------------------


def test_integers_and_bools(tmp_path: Path) -> None:
    a_t = {
        "i": torch.tensor([1, 2, 3]),
        "b": torch.tensor([True, False]),
        "u": torch.arange(4, dtype=torch.uint8),
    }
    b_t = {
        "i": torch.tensor([1, 2, 5]),
        "b": torch.tensor([True, True]),
        "u": torch.arange(4, dtype=torch.uint8),
    }
    a, b = pair(tmp_path, a_t, b_t)
    report = by_name(diff(a, b))
    assert report["i"].status == "different" and report["i"].max_abs == 2.0 and report["i"].mismatched == 1
    assert report["b"].status == "different" and report["b"].mismatched == 1
    assert report["u"].status == "identical"
    assert by_name(diff(a, b, atol=2.0))["i"].status == "close"


def test_large_int64_values_are_compared_exactly(tmp_path: Path) -> None:
    """int64 values past 2**53 differ by one: float64 cannot tell them apart, diff must."""
    big = 2**53
    a, b = pair(tmp_path, {"i": torch.tensor([big + 1, 7])}, {"i": torch.tensor([big, 7])})
    report = diff(a, b)
    d = report.tensors[0]
    assert d.status == "different" and d.mismatched == 1
    assert report.exit_code == 1


# --- names, shapes, dtypes -----------------------------------------------------------------------


def test_missing_and_extra_names(tmp_path: Path) -> None:
    a, b = pair(
        tmp_path,
        {"shared": torch.ones(2), "only_a": torch.zeros(3)},
        {"shared": torch.ones(2), "only_b": torch.zeros(3, dtype=torch.float16)},
    )
    report = diff(a, b)
    d = by_name(report)
    assert statuses(report) == {"shared": "identical", "only_a": "missing", "only_b": "extra"}
    assert d["only_a"].dtype_a == "F32" and d["only_a"].dtype_b is None and d["only_a"].shape_a == (3,)
    assert d["only_b"].dtype_b == "F16" and d["only_b"].dtype_a is None and d["only_b"].shape_b == (3,)
    assert report.exit_code == 1
    summary = report.summary()
    assert summary["missing"] == 1 and summary["extra"] == 1
    proc = run_cli("diff", "--json", str(a), str(b))
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["summary"]["missing"] == 1
    assert diff(a, a).exit_code == 0


def test_shape_change(tmp_path: Path) -> None:
    x = torch.arange(12.0)
    a, b = pair(tmp_path, {"x": x.reshape(3, 4), "y": x.clone()}, {"x": x.reshape(4, 3), "y": x[:11].clone()})
    report = diff(a, b, atol=1e9)
    d = by_name(report)
    assert d["x"].status == "shape" and d["x"].shape_a == (3, 4) and d["x"].shape_b == (4, 3)
    assert d["y"].status == "shape" and d["y"].shape_b == (11,)
    assert report.exit_code == 1 and report.summary()["shape"] == 2


def test_dtype_change_is_close_under_a_suitable_rtol(tmp_path: Path) -> None:
    torch.manual_seed(3)
    x = torch.randn(1000) * 10
    a, b = pair(tmp_path, {"x": x, "n": torch.arange(3)}, {"x": x.bfloat16(), "n": torch.arange(3)})
    strict = diff(a, b)
    d = by_name(strict)["x"]
    assert d.dtype_a == "F32" and d.dtype_b == "BF16"
    assert d.status == "different" and d.mismatched > 0
    assert strict.summary()["dtype_changed"] == 1
    loose = diff(a, b, rtol=2.0**-8)  # BF16 rounds to within 2**-9 relative
    d = by_name(loose)["x"]
    assert d.status == "close" and d.mismatched == 0
    max_abs, max_rel, _ = expected(x, x.bfloat16())
    assert d.max_abs == pytest.approx(max_abs, rel=1e-12) and d.max_rel == pytest.approx(max_rel, rel=1e-12)
    assert d.max_rel <= 2.0**-8
    assert loose.equal and loose.exit_code == 0
    proc = run_cli("diff", "--rtol", "0.004", "--json", str(a), str(b))
    assert proc.returncode == 0 and json.loads(proc.stdout)["summary"]["dtype_changed"] == 1


# --- big tensors: more than one chunk ------------------------------------------------------------


def test_tensors_larger_than_one_chunk(tmp_path: Path) -> None:
    torch.manual_seed(4)
    rows, cols = 2500, 2000  # 5M elements, 20 MB as F32: three chunks of 2**21 elements
    assert rows * cols > 2 * CHUNK_ELEMENTS
    base = torch.randn(cols, rows)
    a_value = base.t()  # non-contiguous in the .pt: its chunks come from a strided walk
    torch.save({"w": a_value, "tail": torch.ones(3)}, tmp_path / "a.pt")
    flat = a_value.contiguous().reshape(-1)
    changed = [CHUNK_ELEMENTS - 1, CHUNK_ELEMENTS, 2 * CHUNK_ELEMENTS + 5, rows * cols - 1]
    b32 = flat.clone()
    b32[changed] += torch.tensor([3.0, -4.0, 5.0, 6.0])
    b16 = b32.bfloat16()
    b32, b16 = b32.reshape(rows, cols), b16.reshape(rows, cols)
    write(tmp_path / "b32.safetensors", {"w": b32, "tail": torch.ones(3)})
    write(tmp_path / "b16.safetensors", {"w": b16, "tail": torch.ones(3).bfloat16()})
    write(tmp_path / "same.safetensors", {"w": a_value, "tail": torch.ones(3)})

    same = diff(tmp_path / "a.pt", tmp_path / "same.safetensors")
    assert statuses(same) == {"w": "identical", "tail": "identical"}

    d = by_name(diff(tmp_path / "a.pt", tmp_path / "b32.safetensors"))["w"]
    max_abs, max_rel, mismatched = expected(a_value, b32)
    assert d.status == "different" and d.mismatched == mismatched == len(changed)
    assert d.max_abs == pytest.approx(max_abs, rel=1e-12) and d.max_rel == pytest.approx(max_rel, rel=1e-12)

    rtol = 2.0**-8
    d = by_name(diff(tmp_path / "a.pt", tmp_path / "b16.safetensors", rtol=rtol))["w"]
    max_abs, max_rel, mismatched = expected(a_value, b16, rtol=rtol)
    assert mismatched == len(changed)
    assert d.status == "different" and d.mismatched == mismatched
    assert d.max_abs == pytest.approx(max_abs, rel=1e-12) and d.max_rel == pytest.approx(max_rel, rel=1e-12)
    # and the other way round: B is the wider side
    d = by_name(diff(tmp_path / "b16.safetensors", tmp_path / "a.pt", rtol=rtol))["w"]
    assert d.mismatched == expected(b16, a_value, rtol=rtol)[2] and d.dtype_a == "BF16"


# --- PyTorch sources -----------------------------------------------------------------------------


def _tied_state_dict() -> dict[str, Any]:
    torch.manual_seed(5)
    emb = torch.randn(10, 4)
    x = torch.randn(6, 8)
    return {
        "embed.weight": emb,
        "lm_head.weight": emb,
        "norm.weight": torch.randn(4).bfloat16(),  # (ones: see test_bf16_ones_need_no_trust)
        "proj.weight": x,
        "proj_t": x.t(),
        "window": x[1:4],
        "ids": torch.arange(10),
        "flags": torch.tensor([True, False]),
        "scale": torch.tensor(0.5, dtype=torch.float16),
    }


def test_bin_against_its_conversion(tmp_path: Path) -> None:
    sd = _tied_state_dict()
    src = tmp_path / "pytorch_model.bin"
    torch.save(sd, src)
    dst = tmp_path / "model.safetensors"
    result = convert(src, dst)
    assert result.aliases == {"lm_head.weight": "embed.weight"}
    report = diff(src, dst)
    assert statuses(report) == dict.fromkeys(sd, "identical")  # the alias counts as present
    assert report.equal
    reverse = diff(dst, src)
    assert statuses(reverse) == dict.fromkeys(sd, "identical")
    proc = run_cli("diff", "--json", str(src), str(dst))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"]["identical"] == len(sd)


def test_bin_against_a_cast_conversion(tmp_path: Path) -> None:
    sd = _tied_state_dict()
    src = tmp_path / "pytorch_model.bin"
    torch.save(sd, src)
    dst = tmp_path / "bf16"
    convert(src, dst, dtype="bf16")
    strict = diff(src, dst / "model.safetensors")
    assert not strict.equal
    loose = diff(src, dst, rtol=2.0**-8)
    assert loose.equal
    d = by_name(loose)
    assert d["ids"].status == "identical" and d["flags"].status == "identical"
    assert d["norm.weight"].status == "identical"  # BF16 already
    assert d["proj_t"].dtype_a == "F32" and d["proj_t"].dtype_b == "BF16"
    assert loose.summary()["dtype_changed"] == 6  # five F32 names and the F16 scale


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_checkpoint_against_its_state_dict(tmp_path: Path, legacy: bool) -> None:
    torch.manual_seed(6)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 3)).sum().backward()
    opt.step()
    ckpt = tmp_path / "train.ckpt"
    torch.save(
        {"model_state_dict": model.state_dict(), "optimizer_state_dict": opt.state_dict(), "epoch": 2},
        ckpt,
        _use_new_zipfile_serialization=not legacy,
    )
    plain = write(tmp_path / "plain.safetensors", model.state_dict())
    report = diff(ckpt, plain, trust=legacy)  # trust for legacy: see test_convert_torch
    assert statuses(report) == dict.fromkeys(model.state_dict(), "identical")


def test_diff_refuses_a_hostile_pickle_and_bad_paths(tmp_path: Path) -> None:
    a = write(tmp_path / "a.safetensors", {"x": torch.ones(2)})
    proc = run_cli("diff", str(a), str(tmp_path / "missing.safetensors"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "missing.safetensors" in proc.stderr
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 7)
    with pytest.raises(TensorfileError):
        diff(a, junk)
    proc = run_cli("diff", "--json", str(junk), str(a))
    assert proc.returncode == 2 and proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1


INTERRUPT = """
import sys
from tensorfile.convert import compare
def interrupted(*args, **kwargs):
    raise KeyboardInterrupt
compare._compare = interrupted
from tensorfile.cli import main
sys.argv = ["tensorfile", *sys.argv[1:]]
main()
"""


def test_ctrl_c_is_not_reported_as_a_difference(tmp_path: Path) -> None:
    """Exit 1 means "the models differ": an interrupted diff must not say that."""
    a, b = pair(tmp_path, {"x": torch.ones(2)}, {"x": torch.ones(2)})
    proc = subprocess.run(
        [sys.executable, "-c", INTERRUPT, "diff", str(a), str(b)], capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in proc.stderr
    assert proc.returncode not in (0, 1), (proc.returncode, proc.stderr)
