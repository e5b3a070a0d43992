"""Q5_K, bit-exact with ggml's quantize_row_q5_K_ref (what llama-quantize runs without an imatrix).

Block (176 bytes per 256 values): d, dmin (fp16), 12 bytes of 6-bit scales/mins, 32 bytes of high
bits, 128 bytes of low nibbles — value = d*sc*q - dmin*m over 8 sub-blocks of 32, q in 0..31.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .common import QK_K, fp16_bytes, quantize_blocks
from .qkx import quantize_scale_min_k4

TYPE_SIZE = 176


def _quantize_chunk(xb: np.ndarray) -> np.ndarray:
    q = quantize_scale_min_k4(xb, nmax=31, rmin=-0.5, nstep=15)
    nb = xb.shape[0]
    lv = q.levels.reshape(nb, QK_K // 64, 2, 32)  # [n/64, half, j]
    # ql[32*k + j] = low nibbles of L[64k + j] and L[64k + 32 + j]
    low = lv & 0xF
    ql = low[:, :, 0, :] | (low[:, :, 1, :] << 4)
    # qh[j] bit 2k (2k+1) = L[64k + j] (L[64k + 32 + j]) > 15
    hi = (lv > 15).astype(np.uint8).reshape(nb, 8, 32)
    qh = np.zeros((nb, 32), dtype=np.uint8)
    for bit in range(8):
        qh |= hi[:, bit, :] << bit
    out = np.empty((nb, TYPE_SIZE), dtype=np.uint8)
    out[:, 0:2] = fp16_bytes(q.d)
    out[:, 2:4] = fp16_bytes(q.dmin)
    out[:, 4:16] = q.scales
    out[:, 16:48] = qh
    out[:, 48:176] = ql.reshape(nb, QK_K // 2)
    return out


def quantize_q5_k(rows: np.ndarray) -> np.ndarray:
    """float32 (n_rows, n_per_row) → uint8 (n_rows, n_per_row / 256 * 176)."""
    return quantize_blocks(rows, QK_K, TYPE_SIZE, _quantize_chunk)


QUANTIZERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"Q5_K": quantize_q5_k}
