"""Q3_K, bit-exact with ggml's quantize_row_q3_K_ref (what llama-quantize runs without an imatrix).

Block (110 bytes per 256 values): hmask[32] (bit 2 of each level), qs[64] (low 2 bits), 12 bytes
of 6-bit scales (one per sub-block of 16), then d (fp16) — value = d * (scale - 32) * (q - 4).
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
from .qx import first_absmax_last, make_q3_quants_rmse

TYPE_SIZE = 110


def _pack_scales(ls: np.ndarray) -> np.ndarray:
    """The 12 scale bytes from ls (B, 16) in 0..63: low nibbles of 0..7 | 8..15 in bytes 0..7,
    and the top 2 bits of scale j in byte 8 + j%4 at bit 2*(j/4)."""
    out = np.empty((ls.shape[0], 12), dtype=np.int32)
    out[:, 0:8] = (ls[:, 0:8] & 0xF) | ((ls[:, 8:16] & 0xF) << 4)
    top = (ls >> 4).reshape(-1, 4, 4)  # (B, j/4, j%4)
    out[:, 8:12] = top[:, 0] | (top[:, 1] << 2) | (top[:, 2] << 4) | (top[:, 3] << 6)
    return out.astype(np.uint8)


def _quantize_chunk(xb: np.ndarray) -> np.ndarray:
    nb = xb.shape[0]
    finite = bool(np.isfinite(xb).all())
    xs, x = sub_blocks(xb, 16)  # (m, 16), (16, m)
    scale, l_q3 = make_q3_quants_rmse(x, 4, finite)
    scales = scale.reshape(nb, 16)
    max_scale = first_absmax_last(scales)
    has = max_scale != 0  # `if (max_scale)`; never NaN (NaN scales never win)
    iscale = F32(-32.0) / np.where(has, max_scale, F32(1.0))
    # `int8_t l = nearest_int(iscale*scales[j]); l = MAX(-32, MIN(31, l)) + 32;`
    ls = np.clip(nearest_int(iscale[:, None] * scales).astype(np.int8), -32, 31).astype(np.int32) + 32
    ls[~has] = 0  # memset(y[i].scales, 0, 12)
    d_bits = np.where(has, fp32_to_fp16_bits(F32(1.0) / iscale), np.uint16(0))
    # decoding the packed 6-bit scales gives ls back: sc = ls - 32 (-32 for a memset block)
    d = (fp16_bits_to_fp32(d_bits)[:, None] * (ls - 32).astype(F32)).reshape(-1)
    q = nearest_int(xs / d[:, None])
    levels = (np.clip(q, -4, 3) + 4).astype(np.int16)
    skip = np.flatnonzero(d == 0)  # `if (!d) continue;`: keep make_q3_quants' levels
    if skip.size:
        levels[skip] = l_q3[:, skip].T
    lv = levels.reshape(nb, 8, 32)  # value j = 32*b + m → hmask[m] bit b
    high = lv > 3
    hmask = np.zeros((nb, 32), dtype=np.int32)
    for b in range(8):
        hmask |= high[:, b].astype(np.int32) << b
    lv = np.where(high, lv - 4, lv).reshape(nb, 2, 4, 32)  # (block, half of 128, quarter, l)
    qs = lv[:, :, 0] | (lv[:, :, 1] << 2) | (lv[:, :, 2] << 4) | (lv[:, :, 3] << 6)
    out = np.empty((nb, TYPE_SIZE), dtype=np.uint8)
    out[:, 0:32] = hmask
    out[:, 32:96] = qs.reshape(nb, 64)
    out[:, 96:108] = _pack_scales(ls)
    out[:, 108:110] = fp16_bytes(d_bits)
    return out


def quantize_q3_k(rows: np.ndarray) -> np.ndarray:
    """float32 (n_rows, n_per_row) → uint8 (n_rows, n_per_row / 256 * 110)."""
    # 4x the default chunk: the refinement loops over 16 values x 5 passes on (m,) vectors, and
    # longer vectors amortise numpy's per-call cost (measured: ~1.5x faster on 2 threads)
    return quantize_blocks(rows, QK_K, TYPE_SIZE, _quantize_chunk, 4 * CHUNK_VALUES)


QUANTIZERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"Q3_K": quantize_q3_k}
