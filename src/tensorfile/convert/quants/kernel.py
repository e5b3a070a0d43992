"""The compiled quantizers (_kernel.c, built at install when a C compiler is there), and the switch
between them and the numpy ones.

Both give ggml's bytes; the compiled ones run ggml's reference arithmetic vectorised across blocks,
with the GIL released and the blocks split over threads, 5-10x faster than ggml's own scalar code
per core. When the extension is absent (no compiler at install) or TENSORFILE_NO_KERNEL=1 is set,
quantizing goes through the numpy modules beside this one.
"""

from __future__ import annotations

import os
from types import ModuleType

import numpy as np

DISABLE_ENV = "TENSORFILE_NO_KERNEL"
THREADS_ENV = "TENSORFILE_QUANT_THREADS"


def _load() -> ModuleType | None:
    try:
        from . import _kernel
    except ImportError:
        return None
    return _kernel


_compiled = _load()


def built() -> bool:
    """Whether the extension was compiled and imports."""
    return _compiled is not None


def available() -> bool:
    """Whether quantizing uses the compiled kernel: built, and not switched off by TENSORFILE_NO_KERNEL."""
    return _compiled is not None and os.environ.get(DISABLE_ENV, "") in ("", "0")


def threads() -> int:
    """Threads per call: TENSORFILE_QUANT_THREADS, else the cores this process may use."""
    env = os.environ.get(THREADS_ENV)
    return max(1, int(env)) if env else usable_cores()


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def isas() -> tuple[str, ...]:
    """The compiled variants this CPU runs, best first ("avx2", "base"); () when not built."""
    return tuple(_compiled.isas()) if _compiled is not None else ()


def block_shape(type_name: str) -> tuple[int, int]:
    """(values per block, bytes per block) of a type the kernel implements."""
    if _compiled is None:
        raise RuntimeError("the compiled quantizers are not built")
    return tuple(_compiled.types()[type_name])  # type: ignore[return-value]


def quantize_rows(
    rows: np.ndarray, type_name: str, n_threads: int | None = None, isa: str = "auto"
) -> np.ndarray:
    """float32 rows (n_rows, n_per_row) → uint8 (n_rows, row_bytes) in ggml's block layout."""
    if _compiled is None:
        raise RuntimeError("the compiled quantizers are not built")
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    block, size = block_shape(type_name)
    if rows.ndim != 2 or rows.shape[1] % block:
        raise ValueError(f"rows must be (n_rows, n_per_row) with n_per_row a multiple of {block}")
    out = np.empty((rows.shape[0], rows.shape[1] // block * size), dtype=np.uint8)
    _compiled.quantize(type_name, rows, out, n_threads or threads(), isa)
    return out
