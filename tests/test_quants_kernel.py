"""The compiled quantizers (quants/_kernel.c) give the numpy quantizers' bytes, which are ggml's.

Every type, every compiled variant this CPU runs (AVX2 and the 4-lane baseline), on random data
and on adversarial rows: zeros, constants, ties, huge and tiny magnitudes, subnormals, outliers,
inf and NaN, lone signs of zero; also against the bytes ggml itself wrote (tests/data). And the
switch: TENSORFILE_NO_KERNEL=1 takes the numpy path, which still gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tensorfile.convert.quants import QUANT_TYPES, kernel, numpy_quantizer, quantize, quantizer

DATA = Path(__file__).parent / "data" / "ggml_quants"

pytestmark = pytest.mark.skipif(not kernel.built(), reason="the compiled quantizers are not built")


def _blocks(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """n adversarial blocks of `size` values, one kind per block."""
    out = np.empty((n, size), dtype=np.float32)
    tiny = np.float32(1e-40)  # subnormal
    for i in range(n):
        kind = i % 24
        v = rng.standard_normal(size)
        if kind == 0:
            v = np.zeros(size)
        elif kind == 1:
            v = np.full(size, rng.normal())
        elif kind == 2:
            v = np.full(size, -abs(rng.normal()))
        elif kind == 3:
            v = rng.integers(-8, 8, size) * 0.5  # ties everywhere
        elif kind == 4:
            v[rng.integers(size)] *= 1e4  # one outlier
        elif kind == 5:
            v = v * 1e30
        elif kind == 6:
            v = v * 1e-30
        elif kind == 7:
            v = rng.standard_normal(size) * tiny
        elif kind == 8:
            v = np.where(rng.random(size) < 0.5, 1.0, -1.0)  # ±v ties for the largest magnitude
        elif kind == 9:
            v = rng.uniform(0, 1, size) + 3  # min > 0
        elif kind == 10:
            v = -rng.uniform(0, 1, size) - 3
        elif kind == 11:
            v[rng.integers(0, size, size // 4)] = 0
        elif kind == 12:
            v = np.full(size, -0.0)
        elif kind == 13:
            v[rng.integers(size)] = np.inf
        elif kind == 14:
            v[rng.integers(size)] = -np.inf
        elif kind == 15:
            v[rng.integers(size)] = np.nan
        elif kind == 16:
            v = np.full(size, np.nan)
        elif kind == 17:
            v = rng.standard_t(1.2, size) * 100
        elif kind == 18:
            v = v * np.repeat(10.0 ** rng.uniform(-6, 6, size // 16), 16)
        elif kind == 19:
            v = np.full(size, 3.0e38) * np.where(rng.random(size) < 0.5, 1, -1)  # fp16 overflow
        elif kind == 20:
            v = rng.integers(0, 4, size).astype(np.float64)
        elif kind == 21:
            v = rng.laplace(size=size) + rng.normal() * 3
        elif kind == 22:
            v = np.zeros(size)
            v[: size // 2] = rng.standard_normal(size // 2) * 1e-16  # below GROUP_MAX_EPS in parts
        else:
            v = v * 10.0 ** rng.uniform(-8, 4)
        with np.errstate(all="ignore"):
            out[i] = v
    return out


def _inputs(type_name: str) -> np.ndarray:
    """Rows of 1024 values: normal weights, then adversarial blocks, then a ragged block count."""
    rng = np.random.default_rng(list(type_name.encode()))
    size = 256
    adversarial = _blocks(rng, 96, size).reshape(-1, 1024)
    normal = rng.standard_normal((24, 1024), dtype=np.float32) * np.float32(0.02)
    return np.concatenate([normal, adversarial])


def _numpy(x: np.ndarray, type_name: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        return numpy_quantizer(type_name)(x)


def _first_bad(a: np.ndarray, b: np.ndarray, size: int) -> list[int]:
    return np.flatnonzero((a.reshape(-1, size) != b.reshape(-1, size)).any(axis=1))[:10].tolist()


@pytest.mark.parametrize("isa", kernel.isas())
@pytest.mark.parametrize("type_name", QUANT_TYPES)
def test_kernel_equals_numpy(type_name: str, isa: str) -> None:
    x = _inputs(type_name)
    want = _numpy(x, type_name)
    _, size = kernel.block_shape(type_name)
    for threads in (1, 3):  # the block split over threads does not change a byte
        got = kernel.quantize_rows(x, type_name, threads, isa)
        assert got.shape == want.shape and got.dtype == np.uint8
        assert np.array_equal(got, want), f"{type_name}/{isa}: blocks differ {_first_bad(got, want, size)}"


@pytest.mark.parametrize("isa", kernel.isas())
@pytest.mark.parametrize("type_name", ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"])
def test_legacy_block_counts_not_a_multiple_of_the_lanes(type_name: str, isa: str) -> None:
    """The legacy types run 4 or 8 blocks at once; a row of 1..9 blocks takes the padded tail."""
    rng = np.random.default_rng(7)
    for blocks in range(1, 10):
        x = _blocks(rng, blocks * 3, 32).reshape(3, blocks * 32)
        np.testing.assert_array_equal(kernel.quantize_rows(x, type_name, 2, isa), _numpy(x, type_name))


def _stored_inputs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    cases = []
    with np.load(DATA / "qx_inputs.npz") as f:
        qx = f["x"]
    for t in QUANT_TYPES:
        path = DATA / f"{t.lower()}.npz"
        with np.load(path) as f:
            x = f["x"] if "x" in f.files else qx
            cases.append((t, x, f["expected"]))
    return cases


@pytest.mark.parametrize("isa", kernel.isas())
def test_kernel_equals_stored_ggml_bytes(isa: str) -> None:
    for type_name, x, expected in _stored_inputs():
        got = kernel.quantize_rows(x, type_name, 2, isa)
        _, size = kernel.block_shape(type_name)
        assert np.array_equal(got, expected), f"{type_name}/{isa}: {_first_bad(got, expected, size)}"


def test_quantize_uses_the_kernel_and_the_switch_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = kernel.quantize_rows

    def counting(rows: np.ndarray, type_name: str, *args: object) -> np.ndarray:
        calls.append(type_name)
        return real(rows, type_name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(kernel, "quantize_rows", counting)
    x = _inputs("Q6_K")[:8]
    monkeypatch.delenv(kernel.DISABLE_ENV, raising=False)
    assert kernel.available()
    with_kernel = quantize(x, "Q6_K")
    assert calls == ["Q6_K"]
    monkeypatch.setenv(kernel.DISABLE_ENV, "1")
    assert not kernel.available()
    assert quantizer("Q6_K") is numpy_quantizer("Q6_K")
    without = quantize(x, "Q6_K")
    assert calls == ["Q6_K"]  # the numpy path, not the kernel
    np.testing.assert_array_equal(with_kernel, without)


def test_bad_arguments_are_value_errors() -> None:
    x = np.zeros((2, 256), dtype=np.float32)
    with pytest.raises(ValueError, match="multiple of 256"):
        kernel.quantize_rows(np.zeros((1, 100), dtype=np.float32), "Q4_K")
    with pytest.raises(ValueError, match="unknown isa"):
        kernel.quantize_rows(x, "Q4_K", 1, "sse9")
    from tensorfile.convert.quants import _kernel

    with pytest.raises(ValueError, match="no compiled quantizer"):
        _kernel.quantize("Q7_K", x, np.empty(10, np.uint8), 1)
    with pytest.raises(ValueError, match="output buffer"):
        _kernel.quantize("Q4_K", x, np.empty(10, np.uint8), 1)
    with pytest.raises(TypeError):
        _kernel.quantize("Q4_K", x, b"read-only", 1)
