"""How fast would a compiled kernel make the slowest numpy quantizer? A measured probe, not product.

Q3_K's make_q3_quants refines each sub-block's levels one value at a time (each step reads the
sums the previous one wrote), so numpy can only run it as 16 x 5 dependent steps over vectors of
sub-blocks. This probe compiles that one function with numba (a strict-IEEE float32 port, no
fastmath) and plugs it into tensorfile's numpy Q3_K pipeline, then compares speed and bytes with
tensorfile's numpy path and ggml's own quantize_row_q3_K_ref (bench/ggml_ref.py, one thread):

    .venv/bin/pip install numba==0.68.0   # not a tensorfile dependency
    .venv/bin/python bench/quant_kernel_probe.py [--rows 1024] [--cols 4096] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TENSORFILE_QUANT_THREADS", "1")  # per-core numbers on every side

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import numba  # noqa: E402

import ggml_ref  # noqa: E402
from tensorfile.convert.quants import q3_k, qx  # noqa: E402
from tensorfile.convert.quants import quantize as tf_quantize  # noqa: E402

F32 = np.float32


@numba.njit(cache=True)
def _nearest_int(f: np.float32) -> int:
    # ggml's bit trick (add 1.5 * 2^23, keep the mantissa) is round-half-even for |f| < 2^22,
    # which is every value here with finite input (levels are clamped to a few units)
    return int(np.rint(f))


@numba.njit(cache=True)
def _make_q3_quants_rmse(xs: np.ndarray, nmax: int, scale: np.ndarray, levels: np.ndarray) -> None:
    """ggml's make_q3_quants(16, nmax, x, L, true) for each row of xs (m, n); levels (n, m)."""
    m, n = xs.shape
    x = xs.T
    for c in range(m):
        amax = F32(0.0)
        mx = F32(0.0)
        for i in range(n):
            ax = abs(x[i, c])
            if ax > amax:
                amax = ax
                mx = x[i, c]
        if not amax >= F32(1e-15):  # GROUP_MAX_EPS
            for i in range(n):
                levels[i, c] = 0
            scale[c] = F32(0.0)
            continue
        iscale = F32(-nmax) / mx
        sumlx = F32(0.0)
        suml2 = F32(0.0)
        for i in range(n):
            v = _nearest_int(F32(iscale * x[i, c]))
            v = max(-nmax, min(nmax - 1, v))
            levels[i, c] = v
            w = F32(x[i, c] * x[i, c])
            lf = F32(v)
            sumlx = F32(sumlx + F32(F32(w * x[i, c]) * lf))
            suml2 = F32(suml2 + F32(F32(w * lf) * lf))
        for _ in range(5):
            changed = 0
            for i in range(n):
                xi = x[i, c]
                w = F32(xi * xi)
                li = F32(levels[i, c])
                slx = F32(sumlx - F32(F32(w * xi) * li))
                if slx > F32(0.0):
                    sl2 = F32(suml2 - F32(F32(w * li) * li))
                    new_l = _nearest_int(F32(F32(xi * sl2) / slx))
                    new_l = max(-nmax, min(nmax - 1, new_l))
                    if new_l != levels[i, c]:
                        nf = F32(new_l)
                        slx = F32(slx + F32(F32(w * xi) * nf))
                        sl2 = F32(sl2 + F32(F32(w * nf) * nf))
                        if sl2 > F32(0.0) and F32(F32(slx * slx) * suml2) > F32(F32(sumlx * sumlx) * sl2):
                            levels[i, c] = new_l
                            sumlx = slx
                            suml2 = sl2
                            changed += 1
            if changed == 0:
                break
        for i in range(n):
            levels[i, c] += nmax
        scale[c] = F32(sumlx / suml2) if suml2 > F32(0.0) else F32(0.0)


def compiled_make_q3_quants_rmse(x: np.ndarray, nmax: int, finite: bool) -> tuple[np.ndarray, np.ndarray]:
    scale = np.empty(x.shape[1], dtype=F32)
    levels = np.empty(x.shape, dtype=np.int16)
    _make_q3_quants_rmse(np.ascontiguousarray(x.T, dtype=F32), nmax, scale, levels)
    return scale, levels


def rate(fn, x: np.ndarray, repeat: int) -> tuple[float, np.ndarray]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(x)
        times.append(time.perf_counter() - t)
    return x.nbytes / 1e6 / statistics.median(times), np.asarray(out).reshape(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    x = np.random.default_rng(0).standard_normal((args.rows, args.cols), dtype=F32) * F32(0.02)
    ggml_rate, ggml_bytes = rate(lambda a: ggml_ref.quantize(a, "Q3_K"), x, args.repeat)
    numpy_rate, numpy_bytes = rate(lambda a: tf_quantize(a, "Q3_K"), x, args.repeat)
    compiled_make_q3_quants_rmse(x[:1, :256].reshape(16, 16), 4, True)  # compile outside the timing
    original = q3_k.make_q3_quants_rmse
    q3_k.make_q3_quants_rmse = compiled_make_q3_quants_rmse
    try:
        compiled_rate, compiled_bytes = rate(lambda a: tf_quantize(a, "Q3_K"), x, args.repeat)
    finally:
        q3_k.make_q3_quants_rmse = original
    assert qx.make_q3_quants_rmse is original
    print(f"Q3_K on {x.nbytes / 1e6:.0f} MB of float32, one thread each, median of {args.repeat}:")
    print(f"  ggml quantize_row_q3_K_ref     {ggml_rate:7.0f} MB/s")
    same = np.array_equal(numpy_bytes, ggml_bytes)
    print(f"  tensorfile numpy               {numpy_rate:7.0f} MB/s  same bytes as ggml: {same}")
    same = np.array_equal(compiled_bytes, ggml_bytes)
    print(f"  numpy + numba make_q3_quants   {compiled_rate:7.0f} MB/s  same bytes as ggml: {same}")


if __name__ == "__main__":
    main()
