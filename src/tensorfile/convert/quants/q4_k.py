"""Q4_K, bit-exact with ggml's quantize_row_q4_K_ref (what llama-quantize runs without an imatrix).

Block (144 bytes per 256 values): d, dmin (fp16), 12 bytes of 6-bit scales/mins, 128 bytes of
4-bit levels — value = d*sc*q - dmin*m over 8 sub-blocks of 32.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .common import QK_K, fp16_bytes, quantize_blocks
from .qkx import quantize_scale_min_k4

TYPE_SIZE = 144


def _quantize_chunk(xb: np.ndarray) -> np.ndarray:
    q = quantize_scale_min_k4(xb, nmax=15, rmin=-1.0, nstep=20)
    nb = xb.shape[0]
    # q[32*k + l] = L[64*k + l] | L[64*k + 32 + l] << 4
    lv = q.levels.reshape(nb, QK_K // 64, 2, 32)
    qs = lv[:, :, 0, :] | (lv[:, :, 1, :] << 4)
    out = np.empty((nb, TYPE_SIZE), dtype=np.uint8)
    out[:, 0:2] = fp16_bytes(q.d)
    out[:, 2:4] = fp16_bytes(q.dmin)
    out[:, 4:16] = q.scales
    out[:, 16:144] = qs.reshape(nb, QK_K // 2)
    return out


def quantize_q4_k(rows: np.ndarray) -> np.ndarray:
    """float32 (n_rows, n_per_row) → uint8 (n_rows, n_per_row / 256 * 144)."""
    return quantize_blocks(rows, QK_K, TYPE_SIZE, _quantize_chunk)


QUANTIZERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"Q4_K": quantize_q4_k}
