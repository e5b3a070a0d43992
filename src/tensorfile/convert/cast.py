"""Element type casts for `convert --dtype`, bit for bit what torch's `.to(dtype)` gives.

Only floating tensors are cast; integers, bools and complex numbers keep their type. Rounding is
to nearest, ties to even (numpy for F16, ml_dtypes for BF16 and FP8). torch converts F64 to the
narrow floats through F32 (its Half/BFloat16/Float8 types are built from a float), so we do the
same: a direct F64 -> BF16 rounding would differ from torch on rare double-rounding ties.
Past the range, E4M3 saturates to ±448 (it has no infinity; torch 2.13 clamps, infinities too)
and E5M2 overflows to infinity, as in torch. NaN stays NaN (its payload bits may differ from torch's).
"""

from __future__ import annotations

import numpy as np

from ..dtypes import lookup, to_numpy
from ..errors import UsageError

# --dtype spellings -> canonical dtype names.
TARGETS = {
    "f32": "F32",
    "f16": "F16",
    "bf16": "BF16",
    "f8_e4m3": "F8_E4M3",
    "f8_e5m2": "F8_E5M2",
}
E4M3_MAX = 448.0
_NARROW = {"F16", "BF16", "F8_E4M3", "F8_E5M2"}


def target_dtype(spelling: str) -> str:
    key = spelling.lower().replace("float", "f").replace("-", "_")
    found = TARGETS.get(key) or (key.upper() if key.upper() in TARGETS.values() else None)
    if found is None:
        raise UsageError(f"--dtype {spelling!r}: use one of {', '.join(TARGETS)}")
    return found


def cast_to(source_dtype: str, target: str | None) -> str:
    """The dtype a tensor of `source_dtype` has after `--dtype target` (non-floats are untouched)."""
    if target is None or lookup(source_dtype).kind != "float":
        return source_dtype
    return target


def cast_chunk(chunk: np.ndarray, source_dtype: str, out_dtype: str) -> np.ndarray:
    """A contiguous chunk converted to `out_dtype` (the same array when nothing changes)."""
    if source_dtype == out_dtype:
        return chunk
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is the defined result
        if source_dtype == "F64" and out_dtype in _NARROW:
            chunk = chunk.astype(np.float32)
        if out_dtype == "F8_E4M3":
            chunk = np.clip(chunk.astype(np.float32, copy=False), -E4M3_MAX, E4M3_MAX)
        return chunk.astype(to_numpy(out_dtype))
