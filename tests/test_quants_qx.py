"""Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 / Q3_K / Q6_K quantizers against ggml's own bytes.

The default run compares with bytes ggml wrote once (tests/data/ggml_quants/, made by
tests/fixtures/make_ggml_quant_refs_qx.py); the `llamacpp`-marked test fuzzes against the live
library through bench/ggml_ref.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tensorfile.convert.quants import dequantize, quantize, quantizer
from tensorfile.convert.quants.common import fp32_to_fp16_bits, nearest_int, seq_sum0
from tensorfile.convert.quants.qx import c_float_to_int8, c_roundf, first_absmax0

DATA = Path(__file__).parent / "data" / "ggml_quants"
TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q3_K", "Q6_K")
# (values per block, bytes per block)
BLOCK = {
    "Q4_0": (32, 18),
    "Q4_1": (32, 20),
    "Q5_0": (32, 22),
    "Q5_1": (32, 24),
    "Q8_0": (32, 34),
    "Q3_K": (256, 110),
    "Q6_K": (256, 210),
}
# worst |x̂ - x| per block, as a fraction of the block's max |x|, for ordinary data: the legacy
# bounds are the format's own (e.g. Q4_0 maps -amax to -8 but +amax only to 7: 1/8), plus slack
# for the fp16 scales
ROUND_TRIP_TOL = dict(zip(TYPES, (0.13, 0.07, 0.066, 0.035, 0.0045, 0.3, 0.03), strict=True))
# rmse / rms on the normal rows
NORMAL_RMSE_TOL = dict(zip(TYPES, (0.12, 0.1, 0.06, 0.05, 0.01, 0.25, 0.025), strict=True))


def _inputs() -> tuple[np.ndarray, list[str]]:
    with np.load(DATA / "qx_inputs.npz") as f:
        return f["x"], [str(c) for c in f["cases"]]


def _expected(type_name: str) -> np.ndarray:
    with np.load(DATA / f"{type_name.lower()}.npz") as f:
        return f["expected"]


def _quantize(x: np.ndarray, type_name: str) -> np.ndarray:
    with np.errstate(all="ignore"):  # inf/NaN rows are part of the data
        return quantize(x, type_name)


@pytest.mark.parametrize("type_name", TYPES)
def test_matches_stored_ggml_bytes(type_name: str) -> None:
    x, cases = _inputs()
    expected = _expected(type_name)
    got = _quantize(x, type_name)
    block, size = BLOCK[type_name]
    assert got.dtype == np.uint8
    assert got.shape == expected.shape == (x.shape[0], x.shape[1] // block * size)
    bad = [c for c, g, e in zip(cases, got, expected, strict=True) if not np.array_equal(g, e)]
    assert not bad, f"{type_name}: rows differ from ggml: {bad}"


@pytest.mark.parametrize("type_name", TYPES)
def test_round_trip_error(type_name: str) -> None:
    x, cases = _inputs()
    with np.errstate(all="ignore"):  # the inf/NaN rows dequantize to inf/NaN
        back = dequantize(_quantize(x, type_name), type_name)
    assert back.shape == x.shape
    checked = 0
    block = BLOCK[type_name][0]
    for case, xr, yr in zip(cases, x, back, strict=True):
        if not np.isfinite(xr).all():  # fp16 scales: non-finite data gives inf/NaN
            continue
        amax = np.abs(xr.astype(np.float64)).reshape(-1, block).max(axis=1)
        if amax.max() > 6e4 or amax.min() < 1e-3:  # fp16 scales overflow / underflow
            continue
        err = np.abs(yr.astype(np.float64) - xr).reshape(-1, block).max(axis=1)
        assert np.all(err <= ROUND_TRIP_TOL[type_name] * amax), (case, (err / amax).max())
        if case in ("normal", "normal_weights"):
            rel = np.sqrt(np.mean((yr.astype(np.float64) - xr) ** 2) / np.mean(xr.astype(np.float64) ** 2))
            assert rel <= NORMAL_RMSE_TOL[type_name], (case, rel)
        checked += 1
    assert checked >= 25


def test_zeros_and_constants_are_exact() -> None:
    x = np.zeros((3, 512), dtype=np.float32)
    # constants whose scales are exact in fp16 for every type (Q8_0: amax/127 = 2**-6, 2**-8)
    x[1] = -127 / 64
    x[2, :256] = 127 / 256
    for t in TYPES:
        np.testing.assert_array_equal(dequantize(quantize(x, t), t), x, err_msg=t)


def test_interface() -> None:
    x = np.random.default_rng(0).standard_normal((2, 768)).astype(np.float32)
    for t in TYPES:
        block, size = BLOCK[t]
        out = quantizer(t)(x)
        assert out.shape == (2, 768 // block * size)
        np.testing.assert_array_equal(quantize(x[0], t), out[:1])  # 1-D input is one row
        with pytest.raises(ValueError):
            quantizer(t)(np.zeros((1, block + 16), dtype=np.float32))


def test_helpers() -> None:
    # magic-number rounding: half to even, and its wrap-around past 2**22
    v = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 3.49999976, 4194303.0, 4194305.0], dtype=np.float32)
    # (4194305 + magic rounds to 2**24, whose low mantissa bits are 0)
    assert nearest_int(v).tolist() == [0, 2, 2, 0, -2, 3, 4194303, -4194304]
    r = c_roundf(np.array([0.5, -0.5, 2.5, 0.49999997, -126.5], dtype=np.float32))
    assert r.tolist() == [1.0, -1.0, 3.0, 0.0, -127.0]
    # (int8_t) of a float: truncation, low byte, and 0 for NaN / inf / beyond 2**31
    f = np.array([15.9, -0.9, 200.0, -129.5, np.nan, np.inf, 3e9, 2.0**31], dtype=np.float32)
    assert c_float_to_int8(f).tolist() == [15, 0, -56, 127, 0, 0, 0, 0]
    t = np.array([[1e8], [1.0], [-1e8], [1.0]], dtype=np.float32)
    assert seq_sum0(t)[0] == np.float32(1.0)  # ((1e8 + 1) - 1e8) + 1 in float32 order
    x = np.array([[0.0, 1.0, np.nan], [-2.0, -1.0, 1.0], [2.0, np.nan, -1.0]], dtype=np.float32)
    assert first_absmax0(x).tolist() == [-2.0, 1.0, 1.0]  # first of equal |x|, NaN never wins
    nan = np.array([0x7FA00001, 0xFFC00000], dtype=np.uint32).view(np.float32)
    assert fp32_to_fp16_bits(nan).tolist() == [0x7E00, 0xFE00]


def _nan_bits(rng: np.random.Generator, k: int) -> np.ndarray:
    bits = rng.integers(1, 1 << 23, k, dtype=np.uint32) | np.uint32(0x7F800000)
    bits |= rng.integers(0, 2, k, dtype=np.uint32) << np.uint32(31)
    return bits.view(np.float32)


def _fuzz_blocks(rng: np.random.Generator, n_blocks: int) -> np.ndarray:
    """Varied 256-value blocks (= 8 legacy blocks): distributions, scales 1e-8..1e4, offsets,
    zero runs, tie grids, outliers, signed zeros, and inf / NaN (also signaling) / subnormals."""
    out = np.empty((n_blocks, 256), dtype=np.float32)
    for i, kind in enumerate(rng.integers(0, 21, n_blocks)):
        scale = 10.0 ** rng.uniform(-8, 4)
        if kind == 0:
            v = rng.standard_normal(256)
        elif kind == 1:
            v = rng.standard_t(1.5, 256)
        elif kind == 2:
            v = rng.uniform(0, 1, 256) + rng.uniform(0, 3)  # positives only
        elif kind == 3:
            v = -rng.uniform(0, 1, 256) - rng.uniform(0, 3)  # negatives only
        elif kind == 4:
            # tie grids: half-steps of the first-pass scale of some type, with its anchor value
            step, anchor, period = [(0.5, -8.0, 32), (0.5, -16.0, 32), (1.0, 127.0, 32), (0.5, -32.0, 16)][
                rng.integers(4)
            ]
            v = rng.integers(-2 * abs(int(anchor)), 2 * abs(int(anchor)), 256) * step * 0.5
            v[::period] = anchor
            scale = 2.0 ** rng.integers(-20, 8)  # powers of two keep the ties exact
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
            v = rng.standard_normal(256) * np.repeat(10.0 ** rng.uniform(-4, 4, 16), 16)
        elif kind == 13:
            v = rng.exponential(size=256) * rng.choice([-1, 1])
        elif kind == 14:
            v = rng.integers(0, 63, 256) * 0.5 + rng.integers(-20, 20)
            scale = 2.0 ** rng.integers(-10, 4)
        elif kind == 15:
            v = rng.standard_normal(256) * (rng.random(256) < 0.1)  # sparse, signed zeros
        elif kind == 16:
            v = rng.standard_cauchy(256)
            scale = 1.0
        elif kind == 17:
            v = rng.standard_normal(256) * 10.0 ** rng.uniform(-45, -36)  # subnormal
            scale = 1.0
        elif kind == 18:
            v = rng.standard_normal(256) * 10.0 ** rng.uniform(4, 38)  # beyond fp16, up to overflow
            scale = 1.0
        elif kind == 19:
            # signed zeros (the sign of a zero min/max reaches the fp16 scales), a few values
            v = np.where(rng.random(256) < 0.5, 0.0, -0.0)
            v[rng.integers(0, 256, rng.integers(0, 4))] = rng.standard_normal() * rng.choice([0, 1])
        else:
            v = rng.standard_normal(256)
            k = rng.integers(1, 4)
            pos = rng.integers(0, 256, k)
            inf = np.float32(np.inf) * rng.choice([-1, 1], k).astype(np.float32)
            special = np.where(rng.random(k) < 0.5, _nan_bits(rng, k), inf)
            out[i] = v * scale
            out[i, pos] = special  # stored as is: arithmetic would quiet the signaling NaNs
            continue
        with np.errstate(all="ignore"):
            out[i] = np.asarray(v, dtype=np.float32) * np.float32(scale)
    return out


def _fuzz_bit_blocks(rng: np.random.Generator, n_blocks: int) -> np.ndarray:
    """256-value blocks of random float32 bit patterns (every exponent, inf, quiet and signaling
    NaN, subnormals); half of them with exponents kept within a band of 6 so they are comparable."""
    bits = rng.integers(0, 1 << 32, (n_blocks, 256), dtype=np.uint64).astype(np.uint32)
    band = rng.integers(0, 254, n_blocks)[:, None]
    e = np.clip(band + rng.integers(0, 6, (n_blocks, 256)), 1, 254).astype(np.uint32)
    banded = (bits & np.uint32(0x807FFFFF)) | (e << np.uint32(23))
    bits[::2] = banded[::2]
    return bits.view(np.float32)


@pytest.mark.llamacpp
@pytest.mark.parametrize("type_name", TYPES)
def test_fuzz_against_live_ggml(type_name: str) -> None:
    from bench import ggml_ref

    if not ggml_ref.available():
        pytest.skip("libggml-base.so not built (bench/llamacpp.py)")
    rng = np.random.default_rng(54321)
    x = np.concatenate([_fuzz_blocks(rng, 6144), _fuzz_bit_blocks(rng, 2048)])
    x = x.reshape(-1, 1024)  # 4 super-blocks per row, several chunks
    ours = _quantize(x, type_name)
    ref = ggml_ref.quantize(x, type_name)
    size = BLOCK[type_name][1]
    bad = np.flatnonzero((ours.reshape(-1, size) != ref.reshape(-1, size)).any(axis=1))
    n_blocks = ours.size // size
    assert bad.size == 0, f"{type_name}: {bad.size} of {n_blocks} blocks differ, first {bad[:10]}"
