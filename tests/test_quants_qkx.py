"""Q2_K / Q4_K / Q5_K quantizers against ggml's own bytes.

The default run compares with bytes ggml wrote once (tests/data/ggml_quants/, made by
tests/fixtures/make_ggml_quant_refs_qkx.py); the `llamacpp`-marked test fuzzes against the live
library through bench/ggml_ref.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tensorfile.convert.quants import dequantize, quantize, quantizer
from tensorfile.convert.quants.common import nearest_int, seq_sum0
from tensorfile.convert.quants.qkx import get_scale_min_k4, pack_scale_min_k4

DATA = Path(__file__).parent / "data" / "ggml_quants"
TYPES = ("Q2_K", "Q4_K", "Q5_K")
ROW_BYTES_PER_BLOCK = {"Q2_K": 84, "Q4_K": 144, "Q5_K": 176}
# worst |x̂ - x| over a block, as a fraction of the block's max |x|, for ordinary data
ROUND_TRIP_TOL = {"Q2_K": 0.5, "Q4_K": 0.1, "Q5_K": 0.05}
# rmse / std on standard-normal rows
NORMAL_RMSE_TOL = {"Q2_K": 0.4, "Q4_K": 0.1, "Q5_K": 0.05}


def _stored(type_name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    with np.load(DATA / f"{type_name.lower()}.npz") as f:
        return f["x"], f["expected"], [str(c) for c in f["cases"]]


def _quantize(x: np.ndarray, type_name: str) -> np.ndarray:
    with np.errstate(all="ignore"):  # inf/NaN rows are part of the data
        return quantize(x, type_name)


@pytest.mark.parametrize("type_name", TYPES)
def test_matches_stored_ggml_bytes(type_name: str) -> None:
    x, expected, cases = _stored(type_name)
    got = _quantize(x, type_name)
    assert got.dtype == np.uint8
    assert got.shape == expected.shape == (x.shape[0], x.shape[1] // 256 * ROW_BYTES_PER_BLOCK[type_name])
    bad = [c for c, g, e in zip(cases, got, expected, strict=True) if not np.array_equal(g, e)]
    assert not bad, f"{type_name}: rows differ from ggml: {bad}"


@pytest.mark.parametrize("type_name", TYPES)
def test_round_trip_error(type_name: str) -> None:
    x, _, cases = _stored(type_name)
    with np.errstate(all="ignore"):
        back = dequantize(_quantize(x, type_name), type_name)
    assert back.shape == x.shape
    checked = 0
    for case, xr, yr in zip(cases, x, back, strict=True):
        amax = np.abs(xr.astype(np.float64)).reshape(-1, 256).max(axis=1)
        # fp16 super-block scales: non-finite data overflows, and below ~1e-4 the scales underflow
        if not np.isfinite(xr).all() or amax.max() > 6e4 or amax.min() < 1e-3:
            continue
        err = np.abs(yr.astype(np.float64) - xr).reshape(-1, 256).max(axis=1)
        assert np.all(err <= ROUND_TRIP_TOL[type_name] * amax), (case, (err / amax).max())
        if case.startswith("normal"):
            rmse = np.sqrt(np.mean((yr.astype(np.float64) - xr) ** 2))
            assert rmse <= NORMAL_RMSE_TOL[type_name] * xr.std(), (case, rmse / xr.std())
        checked += 1
    assert checked >= 25


def test_zeros_exact_constants_close() -> None:
    x = np.zeros((3, 512), dtype=np.float32)
    x[1] = -1.25  # constant ≤ 0: all levels 0, the value rides on the fp16/6-bit min alone
    x[2, :256] = 0.5
    for t in TYPES:
        back = dequantize(quantize(x, t), t)
        np.testing.assert_array_equal(back[0], 0.0)
        np.testing.assert_array_equal(back[2, 256:], 0.0)
        np.testing.assert_allclose(back[1:], x[1:], rtol=2e-3)


def test_interface() -> None:
    x = np.random.default_rng(0).standard_normal((2, 768)).astype(np.float32)
    for t in TYPES:
        fn = quantizer(t)
        out = fn(x)
        assert out.shape == (2, 3 * ROW_BYTES_PER_BLOCK[t])
        np.testing.assert_array_equal(quantize(x[0], t), out[:1])  # 1-D input is one row
    with pytest.raises(ValueError):
        quantizer("Q4_K")(np.zeros((1, 100), dtype=np.float32))


def test_helpers() -> None:
    # magic-number rounding: half to even, and its wrap-around past 2**22
    v = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 3.49999976, 4194303.0, 4194305.0], dtype=np.float32)
    assert nearest_int(v).tolist() == [0, 2, 2, 0, -2, 3, 4194303, -4194304]
    # float32, in C's order: ((1e8 + 1) - 1e8) + 1 = 1, while 1 + 1 + (1e8 - 1e8) would be 2
    t = np.array([[1e8], [1.0], [-1e8], [1.0]], dtype=np.float32)
    assert seq_sum0(t).tolist() == [1.0]
    assert np.signbit(seq_sum0(np.full((2, 1), -0.0, dtype=np.float32)))[0] == np.False_  # 0 + -0 = +0
    x = np.random.default_rng(2).standard_normal((32, 64)).astype(np.float32)
    loop = np.zeros(64, dtype=np.float32)
    for row in x:
        loop = loop + row
    np.testing.assert_array_equal(seq_sum0(x), loop)
    rng = np.random.default_rng(1)
    ls, lm = rng.integers(0, 64, (2, 5, 8))
    sc, m = get_scale_min_k4(pack_scale_min_k4(ls, lm))
    np.testing.assert_array_equal(sc, ls)
    np.testing.assert_array_equal(m, lm)


def _fuzz_blocks(rng: np.random.Generator, n_blocks: int) -> np.ndarray:
    """Varied 256-value blocks: distributions, scales 1e-8..1e4, offsets, zero runs, ties."""
    out = np.empty((n_blocks, 256), dtype=np.float32)
    for i, kind in enumerate(rng.integers(0, 15, n_blocks)):
        if kind == 0:
            v = rng.standard_normal(256)
        elif kind == 1:
            v = rng.standard_t(1.5, 256)
        elif kind == 2:
            v = rng.uniform(0, 1, 256) + rng.uniform(0, 3)  # min > 0
        elif kind == 3:
            v = -rng.uniform(0, 1, 256) - rng.uniform(0, 3)  # negatives only
        elif kind == 4:
            v = rng.integers(-8, 8, 256) * 0.5  # ties
        elif kind == 5:
            v = rng.standard_normal(256)
            v[rng.integers(256)] *= 1e4
        elif kind == 6:
            v = rng.standard_normal(256)
            v[rng.integers(0, 256, 64)] = 0
        elif kind == 7:
            v = np.where(rng.random(256) < 0.5, 1.0, -1.0) * rng.uniform(0.5, 1.5)
        elif kind == 8:
            v = rng.laplace(size=256) + rng.normal() * 3
        elif kind == 9:
            v = np.full(256, rng.normal())
        elif kind == 10:
            v = rng.standard_normal(256)
            z = rng.integers(0, 15)
            v[16 * z : 16 * z + 32] = 0
        elif kind == 11:
            v = rng.integers(0, 4, 256).astype(np.float64)
        elif kind == 12:
            v = rng.standard_normal(256) * np.repeat(10.0 ** rng.uniform(-3, 3, 16), 16)
        elif kind == 13:
            v = rng.exponential(size=256) * rng.choice([-1, 1])
        else:
            v = rng.integers(0, 63, 256) * 0.5 + rng.integers(-20, 20)
        out[i] = v * 10.0 ** rng.uniform(-8, 4)
    return out


@pytest.mark.llamacpp
@pytest.mark.parametrize("type_name", TYPES)
def test_fuzz_against_live_ggml(type_name: str) -> None:
    from bench import ggml_ref

    if not ggml_ref.available():
        pytest.skip("libggml-base.so not built (bench/llamacpp.py)")
    rng = np.random.default_rng(12345)
    x = _fuzz_blocks(rng, 6144).reshape(-1, 1024)  # 4 blocks per row, several chunks
    ours = _quantize(x, type_name)
    ref = ggml_ref.quantize(x, type_name)
    bs = ROW_BYTES_PER_BLOCK[type_name]
    bad = np.flatnonzero((ours.reshape(-1, bs) != ref.reshape(-1, bs)).any(axis=1))
    assert bad.size == 0, f"{type_name}: {bad.size} of {x.size // 256} blocks differ, first {bad[:10]}"
