"""Per-core speed of the compiled quantizers (quants/_kernel.c) beside ggml's own reference code.

For every type, on one 2048 x 4096 float32 matrix (N(0, 0.02), 32 MB), one thread each, median
of --repeat: ggml's quantize_row_*_ref through libggml-base (bench/ggml_ref.py, the llama.cpp
referee of bench/llamacpp.py), tensorfile's kernel in each variant this CPU runs (AVX2 and the
4-lane baseline), then the kernel on all cores, and tensorfile's numpy quantizers; every output
is checked byte-equal to ggml's.

    .venv/bin/python bench/quant_kernel_probe.py [--rows 2048] [--cols 4096] [--repeat 3] [--types Q4_K,Q6_K]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TENSORFILE_QUANT_THREADS", "1")  # the numpy quantizers on one core too

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import ggml_ref  # noqa: E402
from tensorfile.convert.quants import QUANT_TYPES, kernel, numpy_quantizer  # noqa: E402

F32 = np.float32


def rate(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, repeat: int) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(x)
        times.append(time.perf_counter() - t)
    return x.nbytes / 1e6 / statistics.median(times), np.asarray(out).reshape(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--types", default=",".join(QUANT_TYPES))
    args = ap.parse_args()
    if not kernel.built():
        raise SystemExit("the compiled quantizers are not built (pip install -e .)")
    if not ggml_ref.available():
        raise SystemExit("libggml-base.so not built: run bench/llamacpp.py first")
    x = np.random.default_rng(0).standard_normal((args.rows, args.cols), dtype=F32) * F32(0.02)
    cores = kernel.usable_cores()
    isas = kernel.isas()
    print(f"{x.nbytes / 1e6:.0f} MB of float32, MB/s, median of {args.repeat}; same = bytes equal ggml's")
    head = " | ".join(f"kernel {i} 1T" for i in isas)
    print(f"| type | ggml ref 1T | {head} | kernel {cores}T | numpy 1T | best 1T / ggml | same |")
    print("|---|---:|" + "---:|" * (len(isas) + 3) + "---|")
    for t in args.types.split(","):
        ggml_rate, want = rate(lambda a, t=t: ggml_ref.quantize(a, t), x, args.repeat)
        same = True
        per_isa = []
        for isa in isas:
            r, got = rate(lambda a, t=t, isa=isa: kernel.quantize_rows(a, t, 1, isa), x, args.repeat)
            per_isa.append(r)
            same &= np.array_equal(got, want)
        all_rate, got = rate(lambda a, t=t: kernel.quantize_rows(a, t, cores), x, args.repeat)
        same &= np.array_equal(got, want)
        numpy_rate, got = rate(numpy_quantizer(t), x, 1)
        same &= np.array_equal(got, want)
        cells = " | ".join(f"{r:.0f}" for r in per_isa)
        ratio = max(per_isa) / ggml_rate
        print(
            f"| {t} | {ggml_rate:.0f} | {cells} | {all_rate:.0f} | {numpy_rate:.0f} | {ratio:.1f}× | "
            f"{'yes' if same else 'NO'} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
