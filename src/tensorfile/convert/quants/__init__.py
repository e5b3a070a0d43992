"""ggml quantizers, bit-exact with ggml's reference (`quantize_row_*_ref` in ggml-quants.c).

One module per type family; each exports `quantize_rows(rows) -> uint8 array`, taking float32
rows (n_rows, n_per_row) whose length is a multiple of the type's block size, and returning
(n_rows, row_bytes) in ggml's block layout. Dequantizing goes through gguf-py (`gguf.quants`),
ggml's own Python package, which covers every type.

When the optional compiled kernel is built (kernel.py, _kernel.c), `quantize` and `quantizer` use
it: the same bytes, several times faster. TENSORFILE_NO_KERNEL=1 forces the numpy modules.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from importlib import import_module

import numpy as np

# type name → module (relative) that implements it
_MODULES: dict[str, str] = {
    "Q4_0": "legacy",
    "Q4_1": "legacy",
    "Q5_0": "legacy",
    "Q5_1": "legacy",
    "Q8_0": "legacy",
    "Q2_K": "q2_k",
    "Q3_K": "q3_k",
    "Q4_K": "q4_k",
    "Q5_K": "q5_k",
    "Q6_K": "q6_k",
}

QUANT_TYPES: tuple[str, ...] = tuple(_MODULES)


def numpy_quantizer(type_name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The numpy `quantize_rows` function for a ggml type name (e.g. "Q4_K")."""
    module = import_module(f"{__name__}.{_MODULES[type_name]}")
    return module.QUANTIZERS[type_name]


def quantizer(type_name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The `quantize_rows` function for a ggml type name: the compiled one when it is available."""
    from . import kernel

    if type_name in _MODULES and kernel.available():
        return partial(kernel.quantize_rows, type_name=type_name)
    return numpy_quantizer(type_name)


def quantize(rows: np.ndarray, type_name: str) -> np.ndarray:
    """Quantize float32 rows to ggml blocks: (n_rows, n_per_row) → uint8 (n_rows, row_bytes)."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    if rows.ndim == 1:
        rows = rows.reshape(1, -1)
    return quantizer(type_name)(rows)


def dequantize(data: np.ndarray, type_name: str) -> np.ndarray:
    """ggml blocks (uint8, rows last) → float32, by gguf-py's dequantizers."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as _dequantize

    return _dequantize(data, GGMLQuantizationType[type_name])
