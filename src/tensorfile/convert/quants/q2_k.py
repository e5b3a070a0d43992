"""Q2_K, bit-exact with ggml's quantize_row_q2_K_ref (what llama-quantize runs without an imatrix).

Block (84 bytes per 256 values): 16 bytes of 4-bit scale | 4-bit min per sub-block of 16, 64 bytes
of 2-bit levels, then d and dmin (fp16) — value = d*sc*q - dmin*m.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .common import (
    CHUNK_VALUES,
    F32,
    QK_K,
    fp16_bits_to_fp32,
    fp16_bytes,
    fp32_to_fp16_bits,
    nearest_int,
    quantize_blocks,
    sub_blocks,
)
from .qkx import final_levels, make_qkx2_quants, qkx2_levels, running_max0

TYPE_SIZE = 84
_Q4SCALE = F32(15.0)


def _quantize_chunk(xb: np.ndarray) -> np.ndarray:
    nb = xb.shape[0]
    exact = bool(np.isnan(xb).any())
    xs, x = sub_blocks(xb, 16)  # (m, 16), (16, m)
    w = np.abs(x)
    res = make_qkx2_quants(x, w, 3, -0.5, 0.1, 15, True, exact)
    scales = res.scale.reshape(nb, 16)
    mins = res.the_min.reshape(nb, 16)
    max_scale = running_max0(scales)
    max_min = running_max0(mins)
    has_scale = max_scale > 0
    has_min = max_min > 0
    with np.errstate(all="ignore"):
        ls = nearest_int(np.where(has_scale, _Q4SCALE / max_scale, F32(0.0))[:, None] * scales)
        lm = nearest_int(np.where(has_min, _Q4SCALE / max_min, F32(0.0))[:, None] * mins)
        # `scales[j] = l; scales[j] |= (l << 4);` on a uint8, each part only when its max is > 0
        sc = np.where(has_scale[:, None], ls, 0)
        sc = np.where(has_min[:, None], sc | (lm << 4), sc) & 0xFF
        d_bits = fp32_to_fp16_bits(np.where(has_scale, max_scale / _Q4SCALE, F32(0.0)))
        dmin_bits = fp32_to_fp16_bits(np.where(has_min, max_min / _Q4SCALE, F32(0.0)))
        d = (fp16_bits_to_fp32(d_bits)[:, None] * (sc & 0xF).astype(F32)).reshape(-1)
        dm = (fp16_bits_to_fp32(dmin_bits)[:, None] * (sc >> 4).astype(F32)).reshape(-1)
    levels = final_levels(xs, d, dm, 3, lambda cols: qkx2_levels(x, res, 3, cols))
    # qs[32*h + l] = L[128h + l] | L[128h + 32 + l] << 2 | L[128h + 64 + l] << 4 | L[128h + 96 + l] << 6
    lv = levels.reshape(nb, 2, 4, 32)
    qs = lv[:, :, 0, :] | (lv[:, :, 1, :] << 2) | (lv[:, :, 2, :] << 4) | (lv[:, :, 3, :] << 6)
    out = np.empty((nb, TYPE_SIZE), dtype=np.uint8)
    out[:, 0:16] = sc.astype(np.uint8)
    out[:, 16:80] = qs.reshape(nb, QK_K // 4)
    out[:, 80:82] = fp16_bytes(d_bits)
    out[:, 82:84] = fp16_bytes(dmin_bits)
    return out


def quantize_q2_k(rows: np.ndarray) -> np.ndarray:
    """float32 (n_rows, n_per_row) → uint8 (n_rows, n_per_row / 256 * 84)."""
    # 16 sub-blocks per block: half the blocks per chunk of the 8-sub-block types
    return quantize_blocks(rows, QK_K, TYPE_SIZE, _quantize_chunk, CHUNK_VALUES // 2)


QUANTIZERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"Q2_K": quantize_q2_k}
