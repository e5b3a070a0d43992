"""ggml's own quantizers, called through ctypes: the referee for tensorfile's quantizers.

`bench/llamacpp.py` builds llama.cpp from the llama-cpp-python sdist into a cache outside the
repo; this module loads `libggml-base.so` from there (or from `TENSORFILE_GGML_LIB`) and calls
`ggml_quantize_chunk`, the function llama-quantize itself calls, with no importance matrix.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

CACHE = Path(os.environ.get("TENSORFILE_LLAMACPP_CACHE", Path.home() / ".cache" / "tensorfile-llamacpp"))


def library_path() -> Path | None:
    env = os.environ.get("TENSORFILE_GGML_LIB")
    if env:
        return Path(env)
    found = sorted(CACHE.glob("llama_cpp_python-*/vendor/llama.cpp/build/bin/libggml-base.so"))
    return found[-1] if found else None


@cache
def _lib() -> ctypes.CDLL:
    path = library_path()
    if path is None or not path.exists():
        raise FileNotFoundError("libggml-base.so not built: run bench/llamacpp.py")
    lib = ctypes.CDLL(str(path))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_void_p,
    ]
    return lib


def available() -> bool:
    path = library_path()
    return path is not None and path.exists()


def quantize(rows: np.ndarray, type_name: str, imatrix: np.ndarray | None = None) -> np.ndarray:
    """Quantize float32 rows (n_rows, n_per_row) with ggml; returns uint8 (n_rows, row_bytes)."""
    qtype = GGMLQuantizationType[type_name]
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    n_rows, n_per_row = rows.shape
    block, type_size = GGML_QUANT_SIZES[qtype]
    row_bytes = n_per_row // block * type_size
    out = np.zeros((n_rows, row_bytes), dtype=np.uint8)
    im = None
    if imatrix is not None:
        imatrix = np.ascontiguousarray(imatrix, dtype=np.float32)
        im = imatrix.ctypes.data
    written = _lib().ggml_quantize_chunk(
        int(qtype), rows.ctypes.data, out.ctypes.data, 0, n_rows, n_per_row, im
    )
    assert written == out.nbytes, (written, out.nbytes)
    return out


class _TypeTraits(ctypes.Structure):
    _fields_ = [
        ("type_name", ctypes.c_char_p),
        ("blck_size", ctypes.c_int64),
        ("blck_size_interleave", ctypes.c_int64),
        ("type_size", ctypes.c_size_t),
        ("is_quantized", ctypes.c_bool),
        ("to_float", ctypes.c_void_p),
        ("from_float_ref", ctypes.c_void_p),
    ]


_TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


def dequantize(blocks: np.ndarray, type_name: str) -> np.ndarray:
    """ggml's own to_float for a type: uint8 rows (n_rows, row_bytes) → float32 (n_rows, n_per_row)."""
    qtype = GGMLQuantizationType[type_name]
    lib = _lib()
    lib.ggml_get_type_traits.restype = ctypes.POINTER(_TypeTraits)
    lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
    traits = lib.ggml_get_type_traits(int(qtype)).contents
    if not traits.to_float:
        raise ValueError(f"ggml has no to_float for {type_name}")
    blocks = np.ascontiguousarray(blocks, dtype=np.uint8)
    block, type_size = GGML_QUANT_SIZES[qtype]
    n_rows, row_bytes = blocks.shape
    n_per_row = row_bytes // type_size * block
    out = np.zeros((n_rows, n_per_row), dtype=np.float32)
    _TO_FLOAT(traits.to_float)(blocks.ctypes.data, out.ctypes.data, out.size)
    return out


if __name__ == "__main__":
    x = np.random.default_rng(0).standard_normal((4, 256)).astype(np.float32)
    for name in ("Q8_0", "Q4_0", "Q4_K", "Q6_K"):
        print(name, quantize(x, name).shape)
